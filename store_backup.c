/*
 * store_backup.c: the store's backup file. store_backup_begin takes a
 * point-in-time copy of a serving store without stopping it or copying
 * it, and store_backup_read hands the file's bytes out a piece at a time
 * (GET /backup); store_backup_check and store_restore read one offline
 * (`kvstore check`, `kvstore restore`).
 *
 * Why the log is the backup: a write appends a record and never changes
 * one (store.c), so the live file's log from data_start to data_end, taken
 * at one moment between requests, replays to exactly the data set at that
 * moment's seq, whatever is written, compacted or full-synced after it. A
 * descriptor of the file keeps those bytes even when a compaction or a
 * full sync renames another file over its path. So a backup holds one
 * descriptor and a few counters, no copy, and reads the file with pread
 * through the page cache as the client takes it. What it costs: the
 * replaced records and tombstones still in the log (compaction keeps them
 * below a third of the live bytes), and the disk of a replaced file until
 * the backup that holds it ends.
 *
 * THE BACKUP FILE, version 1. Integers are little-endian.
 *
 *      0 +-----------------------------------------------------------+
 *        |  0 magic "KVBACKUP"   8 u32 version (1)   12 u32 flags (0) |
 *        | 16 u8  repl_id[16]: the data set's, when it was taken      |
 *        | 32 u64 seq: its newest write                               |
 *        | 40 u64 keys: live keys at seq                              |
 *        | 48 u64 log_bytes: the records' bytes (a multiple of 8)     |
 *        | 56 u32 hcrc = CRC-32C of bytes 0..55        60 u32 0       |
 *     64 +-----------------------------------------------------------+
 *        | records, byte for byte as in the store's log (store.c's    |
 *        | format: each 8-byte aligned, with its own CRC-32C, seq at  |
 *        | most the header's), in log order: replayed in that order,  |
 *        | a later record of a key overriding and a tombstone         |
 *        | deleting, they give the data set at seq                    |
 *  64 + log_bytes ----------------------------------------------------+
 *        | u32 crc = CRC-32C of every byte before it                  |
 *        +-----------------------------------------------------------+
 *
 * The file is exactly 68 + log_bytes bytes: a truncated one says so by its
 * length, a damaged one by the CRC of the record it hits (which gives its
 * offset) or else by the last CRC. Records keep their flags (an expiry, a
 * transaction's group); the log is taken between two calls of the main
 * thread, so it never ends inside a group, and a check refuses one that does
 * rather than restore part of a transaction. The hash seed is left out,
 * because knowing it one could choose keys that all collide: a restored
 * store draws a new seed, and a new replication id, so that the replicas of
 * the node that serves it full-sync rather than resume a history it is not.
 */

#include <sys/types.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fmt.h"
#include "hash.h"
#include "store.h"
#include "util.h"
#include "store_int.h"

#define BACKUP_MAGIC	"KVBACKUP"	/* 8 bytes, no NUL */
#define BACKUP_VERSION	1
#define HEAD_CRC_AT	56		/* hcrc covers the bytes before it */
#define TAIL		4		/* the trailing crc */
#define RESTORE_SUFFIX	".restore"	/* store_restore's new file */

struct store_backup {
	int		 b_fd;		/* the live file when it began */
	uint64_t	 b_from;	/* its data_start */
	uint64_t	 b_pos;		/* bytes of the backup handed out */
	uint64_t	 b_size;	/* of the whole backup file */
	uint32_t	 b_crc;		/* of the bytes handed out */
	char		 b_head[STORE_BACKUP_HEAD];
};

/* A backup file mapped read-only for store_backup_check and restore. */
struct mapped {
	struct kvfile	 m_f;		/* records only: rec_valid reads it */
	char		*m_map;
	uint64_t	 m_size;
};

static void
put_u32(char *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void
put_u64(char *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static uint64_t
get_u64(const char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static uint32_t
get_u32(const char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

/* ---- Taking a backup (main thread) ---- */

struct store_backup *
store_backup_begin(struct store *s, struct store_backup_info *bi)
{
	struct store_backup *b;
	const struct kvfile *f = &s->s_f;
	char *h;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	if ((b->b_fd = fcntl(f->f_fd, F_DUPFD_CLOEXEC, 3)) == -1) {
		free(b);
		return NULL;
	}
	b->b_from = f->f_start;
	b->b_size = STORE_BACKUP_HEAD + (f->f_end - f->f_start) + TAIL;
	h = b->b_head;
	memcpy(h, BACKUP_MAGIC, 8);
	put_u32(h + 8, BACKUP_VERSION);
	memcpy(h + 16, HDR(f)->h_repl_id, 16);
	put_u64(h + 32, s->s_last_seq);
	put_u64(h + 40, f->f_keys);
	put_u64(h + 48, f->f_end - f->f_start);
	put_u32(h + HEAD_CRC_AT, crc32c(h, HEAD_CRC_AT));
	hex16(HDR(f)->h_repl_id, bi->repl_id);
	bi->seq = s->s_last_seq;
	bi->keys = f->f_keys;
	bi->size = b->b_size;
	return b;
}

/* One region a call: the header, log bytes, or the trailing crc. */
ssize_t
store_backup_read(struct store_backup *b, char *buf, size_t cap)
{
	uint64_t logend = b->b_size - TAIL, left;
	ssize_t n;
	char tail[TAIL];

	if (b->b_pos < STORE_BACKUP_HEAD || b->b_pos >= logend) {
		put_u32(tail, b->b_crc);
		left = b->b_pos < STORE_BACKUP_HEAD ?
		    STORE_BACKUP_HEAD - b->b_pos : b->b_size - b->b_pos;
		n = (ssize_t)(left < cap ? left : cap);
		memcpy(buf, b->b_pos < STORE_BACKUP_HEAD ? b->b_head +
		    b->b_pos : tail + (b->b_pos - logend), (size_t)n);
	} else {
		left = logend - b->b_pos;
		n = pread(b->b_fd, buf, left < cap ? left : cap,
		    (off_t)(b->b_from + b->b_pos - STORE_BACKUP_HEAD));
		if (n == 0)
			errno = EIO;	/* the log cannot be shorter */
		if (n <= 0)
			return -1;
	}
	if (b->b_pos < logend)
		b->b_crc = crc32c_update(b->b_crc, buf, (size_t)n);
	b->b_pos += (uint64_t)n;
	return n;
}

void
store_backup_end(struct store_backup *b)
{
	if (b == NULL)
		return;
	(void)close(b->b_fd);
	free(b);
}

/* ---- Reading a backup file (offline) ---- */

/* Map path read-only; -1 with err. An empty file maps to nothing. */
static int
map_open(const char *path, struct mapped *m, char *err, size_t errlen)
{
	struct stat sb;
	int fd;

	memset(m, 0, sizeof(*m));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &sb) == -1 || (errno = EISDIR, !S_ISREG(sb.st_mode)) ||
	    (m->m_size = (uint64_t)sb.st_size, m->m_size > 0 &&
	    (m->m_map = mmap(NULL, m->m_size, PROT_READ, MAP_SHARED, fd,
	    0)) == MAP_FAILED)) {
		seterr(err, errlen, "%s: %s", path, errstr());
		if (fd != -1)
			(void)close(fd);
		return -1;
	}
	(void)close(fd);
	return 0;
}

static void
map_close(struct mapped *m)
{
	if (m->m_size > 0)
		(void)munmap(m->m_map, m->m_size);
}

/* The header: NULL if sound (bi filled), else what is wrong with it. */
static const char *
check_head(const struct mapped *m, struct store_backup_info *bi)
{
	const char *h = m->m_map;
	uint64_t logb;

	bi->size = m->m_size;
	bi->bad_off = m->m_size;
	if (m->m_size < STORE_BACKUP_HEAD + TAIL)
		return "truncated: shorter than a header";
	bi->bad_off = 0;
	if (get_u32(h + HEAD_CRC_AT) != crc32c(h, HEAD_CRC_AT) ||
	    get_u32(h + 8) != BACKUP_VERSION)
		return "the header fails its checksum, or is not version 1";
	hex16((const uint8_t *)h + 16, bi->repl_id);
	bi->seq = get_u64(h + 32);
	bi->keys = get_u64(h + 40);
	bi->log_bytes = logb = get_u64(h + 48);
	bi->bad_off = m->m_size;
	if (logb % 8 != 0 || logb != m->m_size - STORE_BACKUP_HEAD - TAIL) {
		fmt_buf(bi->why, sizeof(bi->why), "truncated or extended: "
		    "the header says %llu bytes", (unsigned long long)(logb +
		    STORE_BACKUP_HEAD + TAIL));
		return bi->why;
	}
	return NULL;
}

/*
 * Every record in order, each passed to fn (if not NULL): NULL if sound,
 * else what is wrong at bi->bad_off; "" if fn failed.
 */
static const char *
walk(struct mapped *m, struct store_backup_info *bi,
    int (*fn)(void *, const struct rec *, uint64_t), void *arg)
{
	struct kvfile *f = &m->m_f;
	struct rec r;
	uint64_t off;
	int more = 0;

	f->f_map = m->m_map;
	f->f_start = STORE_BACKUP_HEAD;
	f->f_size = STORE_BACKUP_HEAD + bi->log_bytes;
	bi->records = 0;
	for (off = f->f_start; off < f->f_size; off += r.r_size) {
		bi->bad_off = off;
		if (!rec_valid(f, off, &r) || r.r_seq == 0 || r.r_seq > bi->seq)
			return "a record fails its checksum or is malformed";
		if (fn != NULL && fn(arg, &r, off) != 0)
			return "";
		bi->records++;
		more = (r.r_flags & REC_MORE) != 0;
	}
	/* Taken between two calls, a backup never ends inside a group. */
	return more ? "the last transaction is cut short" : NULL;
}

/*
 * Map the backup at path and check it: 0 sound, m mapped for the caller
 * to close; 1 damaged (bi->why); -1 with err.
 */
static int
map_checked(const char *path, struct mapped *m, struct store_backup_info *bi,
    char *err, size_t errlen)
{
	const char *why;
	uint64_t end;

	memset(bi, 0, sizeof(*bi));
	if (map_open(path, m, err, errlen) == -1)
		return -1;
	if (m->m_size < 8 || memcmp(m->m_map, BACKUP_MAGIC, 8) != 0) {
		map_close(m);
		seterr(err, errlen, "%s: not a kvstore backup", path);
		errno = EINVAL;
		return -1;
	}
	if ((why = check_head(m, bi)) == NULL &&
	    (why = walk(m, bi, NULL, NULL)) == NULL) {
		end = m->m_size - TAIL;
		bi->bad_off = end;
		if (get_u32(m->m_map + end) != crc32c(m->m_map, end))
			why = "the file's checksum does not match";
	}
	if (why == NULL)
		return 0;
	if (why != bi->why)
		fmt_buf(bi->why, sizeof(bi->why), "%s", why);
	map_close(m);
	return 1;
}

int
store_backup_check(const char *path, struct store_backup_info *bi,
    char *err, size_t errlen)
{
	struct mapped m;
	int rc = map_checked(path, &m, bi, err, errlen);

	if (rc == 0)
		map_close(&m);
	return rc;
}

/* ---- Restoring ---- */

/* Copy the backup into tmp, a new store; its counts into bi. */
static int
restore_into(struct mapped *m, const char *tmp, struct store_backup_info *bi,
    char *err, size_t errlen)
{
	struct store_stats st;
	struct store *s;
	uint8_t id[16];
	uint64_t keys = bi->keys, most = bi->log_bytes / rec_size(1, 0);

	if (random_bytes(id, sizeof(id)) == -1) {
		seterr(err, errlen, "/dev/urandom: %s", errstr());
		return -1;
	}
	/* The header's count only sizes the buckets: never past what the
	 * records could hold, whatever it says. Synced: a restored store is
	 * a whole data set, never one for recovery to refill (kvstore.c). */
	if ((s = create_loading(tmp, id, NULL, FLAG_SYNCED, bi->seq,
	    keys < most ? keys : most, STORE_FSYNC_NO, err, errlen)) == NULL)
		return -1;
	if (walk(m, bi, salvage_rec, s) != NULL) {
		seterr(err, errlen, "%s: %s", tmp, errstr());
		store_discard(s);
		return -1;
	}
	s->s_loading = 0;
	store_stats(s, &st);
	if (st.keys != bi->keys) {
		seterr(err, errlen, "damaged: it holds %llu keys, its header "
		    "says %llu", (unsigned long long)st.keys,
		    (unsigned long long)bi->keys);
		store_discard(s);
		return -1;
	}
	memcpy(bi->repl_id, st.repl_id, sizeof(bi->repl_id));
	if (store_close(s) == -1) {
		seterr(err, errlen, "%s: %s", tmp, errstr());
		unlink_pair(tmp);
		return -1;
	}
	return 0;
}

int
store_restore(const char *backup, const char *path, const char *kept,
    struct store_backup_info *bi, char *err, size_t errlen)
{
	struct mapped m;
	char *tmp;
	int rc;

	if ((rc = map_checked(backup, &m, bi, err, errlen)) != 0) {
		if (rc == 1)
			seterr(err, errlen, "%s is damaged at offset %llu: %s",
			    backup, (unsigned long long)bi->bad_off, bi->why);
		return -1;
	}
	rc = -1;
	if ((tmp = path_with(path, RESTORE_SUFFIX)) == NULL)
		seterr(err, errlen, "%s", errstr());
	else if (restore_into(&m, tmp, bi, err, errlen) == 0) {
		/* As salvage: the old file keeps its name until the new
		 * one takes it, so a crash leaves one or the other. */
		if ((kept != NULL && link(path, kept) == -1) ||
		    rename_pair(tmp, path) == -1 ||
		    store_sync_dir(path) == -1) {
			seterr(err, errlen, "%s: %s", path, errstr());
			unlink_pair(tmp);
		} else
			rc = 0;
	}
	free(tmp);
	map_close(&m);
	return rc;
}

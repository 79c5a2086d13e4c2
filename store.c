/*
 * store.c: kvstore's storage engine. One file holds a header page and an
 * append-only log of records, another (the index) a fixed-size
 * open-addressing hash table, and both are mmap'd whole: a GET is a hash, a
 * probe or two and a pointer into the page cache, and opening a cleanly
 * closed store reads a page of each whatever its size. No key or value is
 * ever copied to the heap. A write appends a checksummed record and
 * repoints a bucket; only the log is ever flushed for durability, and
 * after a crash open rebuilds the buckets by replaying it. Compaction
 * (store_compact.c) copies the live records into a new file a slice at a
 * time, between and alongside requests, and renames it over the old one;
 * that reclaims space and doubles the buckets. An internal thread runs
 * fdatasync for the fsync policy and for the end of a compaction
 * (durability waits for it, the caller does not), so the caller never
 * waits for the disk, except when the buckets fill faster than a
 * compaction copies. store_check.c checks and salvages a stopped store's
 * file. The structs, and the helpers the store's files share, are in
 * store_int.h.
 */

/*
 * THE ON-DISK FORMAT, version 3: the store file <path> and its index file
 * <path>.idx. Integers are little-endian, the native order of every
 * target we build for (store_open refuses a big-endian host).
 *
 *      0 +-----------------------------------------------------------+
 *        | header page, 4096 bytes                                   |
 *        |   0 magic "KVSTORE\0"          8 u32 version (3)          |
 *        |  12 u32 flags (1: synced, 2: expiring; see below)         |
 *        |  16 u64 nbuckets (2^n, >=1024)                            |
 *        |  24 u64 data_start            32 u8  seed[16]             |
 *        |  48 u8  repl_id[16]           64 u64 base_seq             |
 *        |  72 u32 icrc = CRC-32C of bytes 0..71                     |
 *        |  80 u64 synced_end   88 u32 scrc = CRC-32C of bytes 80..87 |
 *        | 128 u32 mcrc = CRC-32C of bytes 132..175                  |
 *        | 132 u32 clean (1: closed cleanly)                         |
 *        | 136 u64 data_end   144 u64 last_seq    152 u64 keys       |
 *        | 160 u64 live_bytes 168 u64 garbage_bytes                  |
 *        | 176 u64 idx_gen: the index this header trusts, or 0       |
 *        | all other bytes are zero                                  |
 *   data_start = 4096 ------------------------------------------------+
 *        | records, back to back, each starting 8-byte aligned:      |
 *        |   0 u32 crc = CRC-32C of bytes 4 .. 20+klen+vlen+x-1      |
 *        |   4 u8  type: 'P' put, 'D' delete (tombstone), 0 = end    |
 *        |   5 u8  flags      6 u16 klen (1..1024)                   |
 *        |   8 u32 vlen (0 for 'D', at most 2^31)                    |
 *        |  12 u64 seq: the write that made the record               |
 *        |  20 key, then value, then (flag 0x01) a u64 expiry: x = 8 |
 *        |     (else x = 0), then zeros up to a multiple of 8        |
 *   data_end ---------------------------------------------------------+
 *        | zeros up to the end of the file (preallocated)            |
 *        +-----------------------------------------------------------+
 *
 *   <path>.idx, exactly 4096 + 16 * nbuckets bytes:
 *      0 +-----------------------------------------------------------+
 *        |  0 magic "KVINDEX\0"   8 u64 gen (0: trusted by none)     |
 *        | 16 u64 nbuckets       24 u32 crc = CRC-32C of bytes 0..23 |
 *   4096 +-----------------------------------------------------------+
 *        | buckets: nbuckets x { u64 hash, u64 record offset },      |
 *        | offset 0 means empty                                      |
 *        +-----------------------------------------------------------+
 *
 * Record flags: 0x01 (puts only) says the key expires: a u64 of unix
 * milliseconds on the primary's clock follows the value. Absolute, so it
 * survives restarts and copies; only the primary acts on it (store_expire),
 * by logging an ordinary tombstone. 0x02 (puts and deletes) says "more
 * records of this group follow": a group (a transaction, store_group_begin)
 * replays all or none, below. The two combine: a transaction's put with a
 * TTL is 0x03, but its last. Other bits are refused as unknown: 0x02 came
 * within version 2, and a binary from before it takes such a record for a
 * bad one (a torn tail, or damage below synced_end) rather than replay a
 * part of a group as if it stood alone.
 * Version 2 files have no index file: the buckets lie in the store file,
 * from offset 4096, and data_start is 4096 + 16 * nbuckets; the header
 * ends at byte 176, and mcrc covers 132..175. Version 1 files are the
 * same but for flags, always 0 there. Both open as they are: a clean
 * one's buckets are copied into a new index (else the log is replayed
 * into it, as below), and store_open marks the file version 3 (under
 * icrc) before the first write. Its log stays where it was (data_start is
 * either value in version 3; a compaction's copy starts at 4096), and an
 * older binary refuses it ("unsupported format version 3") rather than
 * trust buckets it no longer keeps, or misread an expiry as the next
 * record. The first
 * put with an expiry sets header flag 2 (rewriting icrc; compaction copies
 * the flags): then, or after a recovery, open walks the buckets once to
 * rebuild the in-memory heap of expiries. A store that never had one
 * still opens reading one page.
 *
 * The first part of the header is written when the file is made, and
 * guarded by icrc: if it is wrong the file is damaged and store_open refuses
 * it rather than guess. It is rewritten (icrc with it) only to set a flag
 * and when the buckets double without a compaction (index_grow): that new
 * nbuckets reaches the disk with the next sync, and a replay under an
 * older count doubles the buckets again as it fills them. The second
 * part is rewritten at open (clean = 0, synced before the first write)
 * and at close (clean = 1, written only after everything else is
 * synced); while the store is open, its counters are stale. No flush of
 * the store ever writes the index: what makes a write durable is its
 * record, and the buckets can be rebuilt from the records.
 * A clean close syncs the log, then stamps the index with a new random gen
 * (never 0) and syncs it, and only then writes clean = 1 and idx_gen = gen.
 * A header with clean = 1 and a good mcrc is trusted together with the
 * index whose header names its idx_gen, nbuckets and the right size, so
 * open reads nothing else; it then stamps the index gen 0, synced before
 * any bucket can change, so that the index of a run that crashed is never
 * trusted with the header that trusted it before (a copy of the store
 * file put back, say). A clean header without such an index (missing, or
 * another store's or run's: a crash between a replacement's two renames,
 * below) has a sound log up to data_end: open replays it into a new
 * index, nothing lost. Otherwise the log is the truth, and may be torn:
 * open replays the records from data_start into a new index in order
 * (a later record of a key overrides an earlier one, a tombstone deletes it),
 * stopping at the first record that is zero, malformed, past the end of the
 * file or fails its CRC; everything after that point is zeroed, so it can
 * never be taken for data later. last_seq is then the largest of base_seq
 * and the seqs replayed.
 *
 * The writes of a group carry flag 0x02, all but the last. Replay applies
 * a group only once its last record is there and valid: a group cut short
 * by a crash ends the log as a torn record does, and is zeroed with what
 * follows it. A group is written in one call of the main thread, and the
 * flusher's synced_end is only ever moved to a group's end, so a group
 * that stops below synced_end is damage, like any bad record there.
 * Compaction copies records one by one (a group's replaced records are
 * left out), so it clears 0x02 on each copy: it only ever copies whole
 * groups. A backup (store_backup.c) is taken between two calls, so it
 * ends between groups too.
 *
 * synced_end says how far the log was on disk: it is rewritten (under
 * scrc, apart from the counters) only after a sync that covered it, at
 * open, close, a compaction's end and by the flusher after each of its
 * syncs, so it never claims more than the disk holds; the flusher's mark
 * reaches the disk with its next sync, so after a power cut it may lag one
 * sync behind. Past it a power cut may leave any pattern of pages written
 * back, holes included, and that is a torn tail. A stop below it is
 * damage to written data: open then refuses the file, writing nothing,
 * and leaves the repair to store_check and store_salvage. A bad or missing
 * mark (a file of an earlier version) reads as data_start.
 *
 * A key's hash is SipHash-2-4 keyed by seed (read as two little-endian u64s),
 * with UINT64_MAX folded to UINT64_MAX - 1 (store_scan uses UINT64_MAX for
 * "done"). A key's home bucket is hash >> (64 - log2 nbuckets), so bucket
 * order is hash order. Collisions probe linearly and wrap at the end;
 * deletion shifts the entries after it back, so an entry always lies between
 * its home and the first empty bucket after that. store_scan relies on both.
 *
 * Records are never overwritten. Replacing or deleting a key turns its
 * record into garbage (garbage_bytes counts them, and tombstones). When the
 * buckets of a store of data_start 4096 and at most 2^17 buckets are 3/4
 * full, a new index with twice as many replaces the old one (index_grow),
 * the log untouched. When the garbage outweighs a third of the live
 * records (so the log stays within about 1.5 times them), or bigger
 * buckets are 3/4 full, the live records are
 * copied into "<path>.compact" (same seed and repl_id, twice the buckets
 * when needed), whose log is synced, and which is renamed over the file
 * (its index is synced at a clean close, as ever). Its base_seq is
 * last_seq at the moment of the rename, so sequence numbers never go back
 * even when the newest records were tombstones the copy left out. A
 * ".compact" file found at open is an unfinished copy and is deleted. A
 * clean close cuts the preallocated zeros past data_end.
 *
 * A full sync (store_create) builds the replacement in "<path>.sync" and
 * store_adopt renames it over the file; a ".sync" file found when the live
 * store opens is a sync cut short by a crash and is deleted too. Each
 * such file has its index beside it (".compact.idx", ".sync.idx"), and
 * is renamed into place index first (rename_pair): a crash between the
 * two renames leaves the old store file, which the live store had marked
 * open (replayed) or which names another index (rebuilt), with the new
 * index; after both, the new pair, trusted if the new file was closed
 * cleanly (a full sync's is).
 */

#define _GNU_SOURCE		/* mremap(2), which musl and glibc both have */

#include <sys/types.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fmt.h"
#include "hash.h"
#include "store.h"
#include "util.h"
#include "store_int.h"

#define MAX_KEYS_HINT	((uint64_t)1 << 28)	/* store_create sizes for at
						   most this: 8 GiB of buckets */
#define COPY_FACTOR	4	/* old-log bytes copied per byte written: the
				   copy gains on the writers by three bytes,
				   so little garbage piles up meanwhile */
#define STEP_BYTES	((uint64_t)1 << 20)	/* about 1 ms of hash+memcpy */
#define STEP_NSEC	1000000
#define GATHER_MAX_NS	2000000	/* the longest a sync waits to gather */
#define SCAN_AHEAD	16	/* records store_scan prefetches ahead */
#define SCAN_KEEP	((size_t)256 << 10)	/* of its buffer kept */
#define REPLAY_GROUP	32	/* records recovery prefetches together */
#define SCAN_STEP	((uint64_t)1 << 20)	/* log the scanner passes
						   between reports */
#define WRITEBACK_STEP	((uint64_t)8 << 20)	/* a full sync's copy is
						   written back as it fills */
#define READ_AHEAD	((uint64_t)16 << 20)	/* and read in before it */
#define READ_IN_CHUNK	((uint64_t)2 << 20)	/* mapped at once to read in */
#define GROW_CHUNK	((uint64_t)16 << 20)	/* allocated per grow_job */
#define BG_CHUNK	((uint64_t)256 << 10)	/* of a copy written back
						   between two syncs: ~1 ms */
#define FLUSHER_NICE	10	/* the flusher's, against the loop's 0 */
#define CLOSER_NICE	19	/* close_later's: the least there is */
#define STAGE_BYTES	((uint64_t)256 << 10)	/* a loading store's log
						   written at once */
#define READIN_STEP	((uint64_t)256 << 10)	/* the log read in ahead of
						   writes: ~0.1 ms of zeroing */
#ifndef MADV_POPULATE_READ	/* Linux 5.14; musl 1.2.3 lacks the names */
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif
#define COMPACT_SUFFIX	".compact"	/* a compaction's new file */
#define SYNC_SUFFIX	".sync"		/* store_create's: a full sync */
#define HEAP_SLACK	1024	/* stale expiries kept before a rebuild */
#define EXPIRE_LOOKS	4	/* heap entries looked at per delete */
#define PRUNE_LOOKS	4	/* heap entries a pruning looks at per put */

static void	 write_synced(int, uint64_t);
static void	 trim(struct kvfile *);
static int	 write_all(int, const void *, size_t, off_t);
static void	 readahead_log(struct kvfile *, uint64_t);
static void	 unlink_slot(struct kvfile *, uint64_t);
static uint64_t	 append(struct kvfile *, int, int, const char *, size_t,
		    const char *, size_t, uint64_t, uint64_t);
static uint64_t	 buckets_for(uint64_t);
static int	 create_file(struct store *, const uint8_t *, const uint8_t *,
		    uint64_t, uint32_t, uint64_t, char *, size_t);
static void	*scan_log(void *);
static int	 replay_record(struct store *, uint64_t, uint64_t, uint64_t *,
		    char *, size_t);
static void	 index_prefault(struct kvfile *);
static int	 replay_range(struct store *, uint64_t, uint64_t, uint64_t *,
		    char *, size_t);
static int	 replay(struct store *, uint64_t, uint64_t *, char *, size_t);
static int	 cut_log(struct store *, uint64_t, uint64_t, char *, size_t);
static int	 recover(struct store *, const char *, char *, size_t);
static void	 destroy(struct store *);
static int	 index_cached(int, uint64_t);
static int	 index_empty(struct kvfile *, const char *);
static struct store *store_alloc(const char *, enum store_fsync, char *,
		    size_t);
static int	 open_file(struct store *, struct hdr *, uint64_t *, char *,
		    size_t);
static int	 remove_leftovers(struct store *, int, char *, size_t);
static int	 map_file(struct store *, const struct hdr *, uint64_t, char *,
		    size_t);
static int	 trust_or_recover(struct store *, char *, size_t);
static int	 start_flusher(struct store *, char *, size_t);
static struct store *open_store(const char *, enum store_fsync, int, char *,
		    size_t);
static void	*flusher(void *);
static void	 mark_synced(struct store *, int, uint64_t);
static void	 news_unlocked(struct store *);
static int	 sync_due(const struct store *, uint64_t);
static void	 copy_job(struct store *);
static void	 flush_fd(struct store *, int, int *);
static void	 final_job(struct store *);
static void	 load_job(struct store *, uint64_t *, uint64_t *);
static void	 seal_job(struct store *);
static int	 mark_clean(struct store *);
static void	 read_in(int, uint64_t, uint64_t);
static void	 grow_job(struct store *);
static void	 unbusy(struct store *);
static int	 news(struct store *);
static void	 news_send(struct store *);
static void	 retire_store(struct store *, struct store *);
static int	 check_write(struct store *, size_t, size_t, uint64_t);
static void	 writeback_early(struct store *);
static void	 wrote(struct store *, uint64_t);
static uint64_t	 rec_extra(int);
static void	 heap_up(struct expiry *, size_t);
static void	 heap_down(struct expiry *, size_t, size_t);
static int	 heap_add(struct store *, uint64_t, uint64_t);
static int	 heap_rebuild(struct store *);
static void	 heap_prune(struct store *);
static void	 heap_remove(struct store *, size_t);
static void	 heap_note(struct store *, uint64_t, uint64_t);
static size_t	 expiring_key(struct store *, uint64_t, uint64_t, uint64_t,
		    char *);
static void	 mark_expiring(struct store *);

/* ---- Hashing ---- */

uint64_t
hash_key(const struct store *s, const char *key, size_t klen)
{
	uint64_t h;

	h = siphash(s->s_k0, s->s_k1, (const unsigned char *)key, klen);
	return h == UINT64_MAX ? h - 1 : h;
}

/* ---- Files: headers, growth, syncing ---- */

void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fmt_vbuf(err, errlen, fmt, ap);
	va_end(ap);
}

uint64_t
round_up(uint64_t n, uint64_t to)
{
	return (n + to - 1) / to * to;
}

/* Also where a version 2 file's log starts: it held the buckets inline. */
uint64_t
index_size(uint64_t nbuckets)
{
	return PAGE + round_up(nbuckets * sizeof(struct bucket), PAGE);
}

unsigned
shift_for(uint64_t nbuckets)
{
	unsigned bits = 0;

	while (((uint64_t)1 << bits) < nbuckets)
		bits++;
	return 64 - bits;
}

uint32_t
hdr_icrc(const struct hdr *h)
{
	return crc32c(h, offsetof(struct hdr, h_icrc));
}

/* Up to h_idx_gen from version 3 on: before, the header ended there. */
uint32_t
hdr_mcrc(const struct hdr *h)
{
	return crc32c(&h->h_clean, (h->h_version < 3 ? offsetof(struct hdr,
	    h_idx_gen) : sizeof(*h)) - offsetof(struct hdr, h_clean));
}

/*
 * Record that the log up to end is on disk. Only ever written after the
 * sync that made it true, so whenever it reaches the disk it is.
 */
void
hdr_synced(struct hdr *h, uint64_t end)
{
	h->h_synced = end;
	h->h_scrc = crc32c(&h->h_synced, sizeof(h->h_synced));
}

/*
 * The log offset below which every byte is known to be on disk: what a
 * crash cannot have torn. data_start when the field is unset (files of
 * earlier versions), fails its CRC, or is out of range.
 */
uint64_t
synced_end(const struct kvfile *f)
{
	const struct hdr *h = HDR(f);

	if (h->h_scrc != crc32c(&h->h_synced, sizeof(h->h_synced)) ||
	    h->h_synced < f->f_start || h->h_synced % 8 != 0)
		return f->f_start;
	return h->h_synced;
}

/*
 * The flusher's hdr_synced: through fd, as the main thread may move the
 * mapping. A failed write only leaves the mark lower, which is safe.
 */
static void
write_synced(int fd, uint64_t end)
{
	char buf[12];
	uint32_t crc = crc32c(&end, sizeof(end));

	memcpy(buf, &end, 8);
	memcpy(buf + 8, &crc, 4);
	(void)write_all(fd, buf, sizeof(buf), offsetof(struct hdr, h_synced));
}

void
hdr_init(struct hdr *h, uint64_t nbuckets, const uint8_t *seed,
    const uint8_t *repl_id, uint64_t base_seq, uint32_t flags)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->h_magic, MAGIC, sizeof(h->h_magic));
	h->h_version = FORMAT_VERSION;
	h->h_flags = flags;
	h->h_nbuckets = nbuckets;
	h->h_data_start = PAGE;
	memcpy(h->h_seed, seed, sizeof(h->h_seed));
	memcpy(h->h_repl_id, repl_id, sizeof(h->h_repl_id));
	h->h_base_seq = base_seq;
	h->h_icrc = hdr_icrc(h);
	h->h_data_end = h->h_data_start;
	h->h_last_seq = base_seq;
	h->h_mcrc = hdr_mcrc(h);
}

/* Write f's counters into its mapped header; the caller syncs it. */
void
hdr_store(struct kvfile *f, uint64_t last_seq, int clean)
{
	struct hdr *h = HDR(f);

	h->h_clean = clean;
	h->h_data_end = f->f_end;
	h->h_last_seq = last_seq;
	h->h_keys = f->f_keys;
	h->h_live_bytes = f->f_live;
	h->h_garbage_bytes = f->f_garbage;
	h->h_mcrc = hdr_mcrc(h);
}

/*
 * Grow fd from size to newsize with blocks allocated, so that a full disk
 * shows here as ENOSPC and not later as SIGBUS on a store to the mapping.
 * On failure the file keeps its size.
 */
int
extend(int fd, uint64_t size, uint64_t newsize)
{
	int r;

	r = posix_fallocate(fd, (off_t)size, (off_t)(newsize - size));
	if (r == EINVAL || r == EOPNOTSUPP || r == ENOTSUP) {
		/*
		 * XXX: this filesystem cannot preallocate, so a full disk
		 * will kill the process with SIGBUS instead of failing a put.
		 * Copy-on-write filesystems (btrfs) can do so even after a
		 * successful fallocate.
		 */
		return ftruncate(fd, (off_t)newsize);
	}
	if (r != 0) {
		/* A failed fallocate may leave part of the range behind. */
		if (ftruncate(fd, (off_t)size) == -1)
			kv_log("warn", "ftruncate back to %" PRIu64 ": %s",
			    size, errstr());
		errno = r;
		return -1;
	}
	return 0;
}

/*
 * The size a log of size bytes grows to so that it holds want: by an
 * eighth, at least 1 MiB, so appends cost amortised O(1) syscalls while
 * the unused tail stays small. 0 if that overflows a size_t.
 */
static uint64_t
grown_size(uint64_t size, uint64_t want)
{
	uint64_t grow = want > size ? want - size : 0, newsize;

	if (grow < size / 8)
		grow = size / 8;
	if (grow < GROW_MIN)
		grow = GROW_MIN;
	newsize = round_up(size + grow, PAGE);
	return (size_t)newsize == newsize ? newsize : 0;
}

/*
 * Have the flusher allocate the live log's next growth now (grow_job), so
 * that when the loop gets there it only maps it: allocating blocks may
 * wait for ext4 to read block bitmaps from a busy disk, hundreds of ms.
 */
void
grow_ahead(struct store *s)
{
	struct kvfile *f = &s->s_f;

	pthread_mutex_lock(&s->s_mu);
	s->s_growfd = f->f_fd;
	s->s_grown = f->f_size;
	s->s_growto = grown_size(f->f_size, f->f_size);
	pthread_cond_signal(&s->s_cv);
	pthread_mutex_unlock(&s->s_mu);
}

/*
 * Whether the flusher has f allocated up to newsize. If not, f is the
 * loop's to grow: the flusher's job ends, and whatever it adds from now
 * on is never trusted (a failed extend cuts the file back).
 */
static int
grown_ahead(struct store *s, struct kvfile *f, uint64_t newsize)
{
	int done;

	if (f != &s->s_f)
		return 0;
	pthread_mutex_lock(&s->s_mu);
	done = s->s_growfd == f->f_fd && s->s_grown >= newsize;
	if (!done)
		s->s_growfd = -1;
	pthread_mutex_unlock(&s->s_mu);
	return done;
}

/*
 * A loading store (a full sync's copy, a salvage, a restore) writes its log
 * through a stage: records are built in STAGE_BYTES of memory and written
 * with pwrite, not stored through the mapping, whose every page took a
 * read fault, a write fault, and at write-back a write-protect with a TLB
 * flush (a full sync of 1M keys: 1.24 s of the replica's CPU, now 0.50).
 * Reads of records not yet written find them there (REC_AT); a seal, a close
 * and a compaction write it first (stage_end). Nothing reads the copy's
 * file meanwhile but its flusher, which writes back only what was written.
 *
 * Write the stage to its place in the log, and empty it. A failure is the
 * store's from then on (note_failure), and its seal's: a loading store
 * acknowledged none of what it holds, and is abandoned.
 */
static int
stage_write(struct store *s)
{
	struct kvfile *f = &s->s_f;
	uint64_t off = f->f_stoff;
	ssize_t n;
	int e;

	while (off < f->f_end) {
		n = pwrite(f->f_fd, f->f_stage + (off - f->f_stoff),
		    (size_t)(f->f_end - off), (off_t)off);
		if (n > 0)
			off += (uint64_t)n;
		else if (n == -1 && errno == EINTR)
			continue;
		else {
			e = n == 0 ? EIO : errno;
			pthread_mutex_lock(&s->s_mu);
			if (s->s_ioerr == 0)
				s->s_ioerr = e;
			pthread_mutex_unlock(&s->s_mu);
			note_failure(s, e);
			errno = e;
			return -1;
		}
	}
	f->f_stoff = off;
	return 0;
}

/*
 * Write the stage and give it up, for a seal, a close or a compaction,
 * which copies the log from the mapping. Returns 0, or -1 with errno and
 * the stage kept.
 */
int
stage_end(struct store *s)
{
	struct kvfile *f = &s->s_f;

	if (f->f_stage == NULL)
		return 0;
	if (stage_write(s) == -1)
		return -1;
	free(f->f_stage);
	f->f_stage = NULL;
	return 0;
}

/* The log's end as the file has it: the stage is not written yet. */
static uint64_t
log_end_written(const struct kvfile *f)
{
	return f->f_stage != NULL ? f->f_stoff : f->f_end;
}

/*
 * Make room for need more bytes of log in f: grow the file (grown_size,
 * allocated ahead by the flusher for the live log), and have those bytes
 * read in (readahead_log), or write out the stage when they do not fit
 * there. On failure nothing changed.
 */
int
reserve(struct store *s, struct kvfile *f, uint64_t need)
{
	uint64_t newsize, least;
	void *p;
	int e;

	if (f->f_stage != NULL && f->f_end + need - f->f_stoff > STAGE_BYTES &&
	    stage_write(s) == -1)
		return -1;
	if (f->f_end + need <= f->f_size)
		goto room;
	if ((newsize = grown_size(f->f_size, f->f_end + need)) == 0) {
		errno = EFBIG;
		return -1;
	}
	if (!grown_ahead(s, f, newsize) &&
	    extend(f->f_fd, f->f_size, newsize) == -1) {
		/* A nearly full disk (or a file size limit: EFBIG) may
		 * still hold this write, and refusing it then is wrong. */
		least = round_up(f->f_end + need, PAGE);
		if ((errno != ENOSPC && errno != EDQUOT && errno != EFBIG) ||
		    newsize == least)
			return -1;
		newsize = least;
		if (extend(f->f_fd, f->f_size, newsize) == -1)
			return -1;
	}
	p = mremap(f->f_map, f->f_size, newsize, MREMAP_MAYMOVE);
	if (p == MAP_FAILED) {
		e = errno;
		(void)grown_ahead(s, f, UINT64_MAX);	/* the job ends */
		if (ftruncate(f->f_fd, (off_t)f->f_size) == -1)
			kv_log("warn", "ftruncate back to %" PRIu64 ": %s",
			    f->f_size, errstr());
		errno = e;
		return -1;
	}
	f->f_map = p;
	f->f_size = newsize;
	if (f == &s->s_f)
		grow_ahead(s);
room:
	readahead_log(f, need);
	return 0;
}

/*
 * The file past the log's end is preallocated but not in the page cache,
 * and the first store to such a page makes the kernel read around it: 8
 * MiB of zeros with read_ahead_kb 8192, 15 to 30 ms in one fault. So read
 * in the pages the next need bytes and READIN_STEP more will take, a step
 * at a time (a hint: a page it misses is faulted in as before). Single
 * pages (fadvise's), so a write faults once per page, as it would anyway.
 */
static void
readahead_log(struct kvfile *f, uint64_t need)
{
	uint64_t to = round_up(f->f_end + need + READIN_STEP, PAGE);

	/* (A loading store's f_readin, UINT64_MAX, is always ahead.) */
	if (f->f_readin >= to - READIN_STEP / 2 || f->f_readin >= f->f_size)
		return;
	if (f->f_readin < f->f_end)
		f->f_readin = f->f_end / PAGE * PAGE;
	if (to > f->f_size)
		to = f->f_size;
	(void)posix_fadvise(f->f_fd, (off_t)f->f_readin,
	    (off_t)(to - f->f_readin), POSIX_FADV_WILLNEED);
	f->f_readin = to;
}

/*
 * Two processes writing one store would corrupt it. The lock belongs to
 * the open file (Linux 3.15's OFD locks), not to the process as a plain
 * fcntl lock does, which closing any descriptor of the file would drop:
 * a sendfile's or a backup's dup (store_value_fd, store_backup_begin).
 * type is F_WRLCK, or F_RDLCK for a reader that must not race a writer.
 */
int
lock_file(int fd, short type)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	return fcntl(fd, F_OFD_SETLK, &fl);
}

int
store_sync_dir(const char *path)
{
	const char *slash = last_of(path, '/');
	char *dir;
	int fd, r, e;

	if (slash == NULL)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, slash - path);
	if (dir == NULL)
		return -1;
	fd = open(dir, O_RDONLY | O_CLOEXEC);
	free(dir);
	if (fd == -1)
		return -1;
	r = fsync(fd);
	e = errno;
	(void)close(fd);	/* read-only; the fsync said all there is */
	errno = e;
	return r;
}

static int
write_all(int fd, const void *buf, size_t len, off_t off)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = pwrite(fd, p, len, off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* ---- Records and the index ---- */

uint64_t
rec_size(uint64_t klen, uint64_t vlen)
{
	return round_up(REC_HDR + klen + vlen, 8);
}

/* Bytes after the value: the expiry, if the record has one. */
static uint64_t
rec_extra(int flags)
{
	return (flags & REC_EXPIRES) != 0 ? 8 : 0;
}

/* A valid (or fitting) record's expiry in unix ms, or 0: it never expires. */
uint64_t
rec_expiry(const struct rec *r)
{
	uint64_t at = 0;

	if (rec_extra(r->r_flags) != 0)
		memcpy(&at, r->r_val + r->r_vlen, 8);
	return at;
}

/* Decode the record at off; the caller knows its header is in the file. */
void
rec_read(const struct kvfile *f, uint64_t off, struct rec *r)
{
	const char *p = REC_AT(f, off);
	uint16_t klen;
	uint32_t vlen;

	memcpy(&r->r_crc, p, 4);
	r->r_type = (unsigned char)p[4];
	r->r_flags = (unsigned char)p[5];
	memcpy(&klen, p + 6, 2);
	memcpy(&vlen, p + 8, 4);
	memcpy(&r->r_seq, p + 12, 8);
	r->r_klen = klen;
	r->r_vlen = vlen;
	r->r_key = p + REC_HDR;
	r->r_val = r->r_key + klen;
	r->r_size = rec_size(klen, vlen + rec_extra(r->r_flags));
}

/* Set the flags of the whole record at rec, and its CRC with them. */
void
rec_set_flags(char *rec, int flags)
{
	uint16_t klen;
	uint32_t vlen, crc;

	rec[5] = (char)flags;
	memcpy(&klen, rec + 6, 2);
	memcpy(&vlen, rec + 8, 4);
	crc = crc32c(rec + 4, REC_HDR - 4 + (size_t)klen + vlen +
	    rec_extra(flags));
	memcpy(rec, &crc, 4);
}

/*
 * Could a record that fits in the log start at off? A cleanly closed file
 * is trusted without reading it (that is what makes open instant), so a
 * damaged bucket or record header must never send a read outside the log:
 * every offset taken from a bucket, and every record compaction walks, is
 * checked with this. A few comparisons; the CRC is for recovery.
 */
int
rec_fits(const struct kvfile *f, uint64_t off)
{
	const char *p;
	uint16_t klen;
	uint32_t vlen;

	/* The mapping, not f_end: recovery replays before f_end is set. */
	if (off < f->f_start || off % 8 != 0 || off > f->f_size ||
	    f->f_size - off < REC_HDR)
		return 0;
	p = REC_AT(f, off);
	memcpy(&klen, p + 6, 2);
	memcpy(&vlen, p + 8, 4);
	return klen >= 1 && klen <= STORE_MAX_KEY && rec_size(klen, vlen +
	    rec_extra((unsigned char)p[5])) <= f->f_size - off;
}

/* 1 if a whole, well-formed record with a good CRC starts at off. */
int
rec_valid(const struct kvfile *f, uint64_t off, struct rec *r)
{
	if (off + REC_HDR > f->f_size)
		return 0;
	rec_read(f, off, r);
	if (r->r_type != REC_PUT && r->r_type != REC_DEL)
		return 0;
	if (r->r_klen == 0 || r->r_klen > STORE_MAX_KEY ||
	    r->r_vlen > MAX_VALUE_BYTES ||
	    (r->r_flags & ~REC_FLAGS) != 0 ||
	    (r->r_type == REC_DEL && (r->r_vlen != 0 ||
	    (r->r_flags & REC_EXPIRES) != 0)))
		return 0;
	if (r->r_size > f->f_size - off)
		return 0;
	return crc32c(REC_AT(f, off) + 4, REC_HDR - 4 + r->r_klen +
	    r->r_vlen + rec_extra(r->r_flags)) == r->r_crc;
}

uint64_t
home(const struct kvfile *f, uint64_t h)
{
	return h >> f->f_shift;
}

/*
 * Inserts stop at 15/16 full: every probe then ends at an empty bucket, and
 * clusters stay short enough for GET to be O(1).
 */
uint64_t
cap(const struct kvfile *f)
{
	return f->f_nbuckets - f->f_nbuckets / 16;
}

/*
 * Find key in f's buckets. Returns 1 with *slotp its bucket, or 0 with
 * *slotp the empty bucket where it would go.
 */
int
find(const struct kvfile *f, uint64_t h, const char *key, size_t klen,
    uint64_t *slotp)
{
	const struct bucket *b = BKT(f);
	uint64_t i, n, mask = f->f_nbuckets - 1;
	const char *p;
	uint16_t kl;

	/* n bounds the probe: only a damaged table has no empty bucket. */
	for (i = home(f, h), n = 0; n < f->f_nbuckets; i = (i + 1) & mask,
	    n++) {
		if (b[i].b_off == 0)
			break;
		if (b[i].b_hash != h || !rec_fits(f, b[i].b_off))
			continue;
		p = REC_AT(f, b[i].b_off);
		memcpy(&kl, p + 6, 2);
		if (kl == klen && memcmp(p + REC_HDR, key, klen) == 0) {
			*slotp = i;
			return 1;
		}
	}
	*slotp = i;
	return 0;
}

/*
 * Empty bucket i by shifting back the entries after it that may move
 * (Knuth 6.4, algorithm R), which keeps every entry between its home and
 * the next empty bucket without tombstones in the table.
 */
static void
unlink_slot(struct kvfile *f, uint64_t i)
{
	struct bucket *b = BKT(f);
	uint64_t j = i, k, n, mask = f->f_nbuckets - 1;

	for (n = 0; n < f->f_nbuckets; n++) {
		j = (j + 1) & mask;
		if (b[j].b_off == 0)
			break;
		k = home(f, b[j].b_hash);
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;	/* its home is after the hole */
		b[i] = b[j];
		i = j;
	}
	b[i].b_hash = 0;
	b[i].b_off = 0;
}

/*
 * Point bucket i (found: holding the key; not: where it goes) at the record
 * at off, carrying kvlen bytes of key and value. Returns 1 if the key is new.
 */
int
index_put(struct kvfile *f, int found, uint64_t i, uint64_t h, uint64_t off,
    uint64_t kvlen)
{
	struct bucket *b = BKT(f) + i;
	struct rec old;

	if (found) {
		rec_read(f, b->b_off, &old);
		f->f_garbage += old.r_size;
		f->f_live -= old.r_klen + old.r_vlen;
	} else {
		b->b_hash = h;
		f->f_keys++;
	}
	b->b_off = off;
	f->f_live += kvlen;
	return !found;
}

/* Drop the key in bucket i, whose tombstone of tsize bytes is logged. */
void
index_del(struct kvfile *f, uint64_t i, uint64_t tsize)
{
	struct rec old;

	rec_read(f, BKT(f)[i].b_off, &old);
	f->f_garbage += old.r_size + tsize;
	f->f_live -= old.r_klen + old.r_vlen;
	f->f_keys--;
	unlink_slot(f, i);
}

/*
 * Append a record with flags (REC_MORE or 0), and expiry at (unix ms)
 * unless it is 0; the caller reserved the room, in the stage if it fits
 * there. Returns its offset.
 */
static uint64_t
append(struct kvfile *f, int type, int flags, const char *key,
    size_t klen, const char *val, size_t vlen, uint64_t at, uint64_t seq)
{
	uint64_t off = f->f_end, body = klen + vlen + (at != 0 ? 8 : 0);
	uint64_t size = rec_size(body, 0);
	char *p = REC_AT(f, off);
	uint16_t kl = klen;
	uint32_t vl = vlen, crc;

	if (f->f_stage != NULL && off + size - f->f_stoff > STAGE_BYTES) {
		p = f->f_map + off;	/* too big: written in place */
		f->f_stoff = off + size;
	}

	p[4] = type;
	p[5] = (char)(flags | (at != 0 ? REC_EXPIRES : 0));
	memcpy(p + 6, &kl, 2);
	memcpy(p + 8, &vl, 4);
	memcpy(p + 12, &seq, 8);
	memcpy(p + REC_HDR, key, klen);
	if (vlen > 0)
		memcpy(p + REC_HDR + klen, val, vlen);
	if (at != 0)
		memcpy(p + REC_HDR + klen + vlen, &at, 8);
	memset(p + REC_HDR + body, 0, size - REC_HDR - body);
	crc = crc32c(p + 4, REC_HDR - 4 + body);
	memcpy(p, &crc, 4);
	f->f_end += size;
	return off;
}

/* ---- Open and recovery ---- */

/* Refuse, with a message of its own, any header we did not write. */
int
check_header(const struct hdr *h, uint64_t size, const char *path,
    char *err, size_t errlen)
{
	if (memcmp(h->h_magic, MAGIC, sizeof(h->h_magic)) != 0) {
		seterr(err, errlen, "%s: not a kvstore file (bad magic)",
		    path);
		return -1;
	}
	if (h->h_version < 1 || h->h_version > FORMAT_VERSION) {
		seterr(err, errlen, "%s: unsupported format version %" PRIu32
		    " (this program reads version %d)", path, h->h_version,
		    FORMAT_VERSION);
		return -1;
	}
	if (h->h_icrc != hdr_icrc(h)) {
		seterr(err, errlen, "%s: header checksum mismatch", path);
		return -1;
	}
	if (h->h_nbuckets < MIN_BUCKETS || h->h_nbuckets > MAX_BUCKETS ||
	    (h->h_nbuckets & (h->h_nbuckets - 1)) != 0 ||
	    (h->h_data_start != index_size(h->h_nbuckets) &&
	    (h->h_version < 3 || h->h_data_start != PAGE))) {
		seterr(err, errlen, "%s: corrupt header: %" PRIu64
		    " buckets, data at %" PRIu64, path, h->h_nbuckets,
		    h->h_data_start);
		return -1;
	}
	if (size < h->h_data_start) {
		seterr(err, errlen, "%s: file too short (%" PRIu64
		    " bytes, its log starts at %" PRIu64 ")", path, size,
		    h->h_data_start);
		return -1;
	}
	return 0;
}

/* ---- The index file ---- */

/*
 * Does the index file fd hold the buckets of a store whose header names
 * gen (never 0) and nbuckets? Reads its header only.
 */
int
index_match(int fd, uint64_t nbuckets, uint64_t gen)
{
	struct ihdr ih;
	struct stat st;

	return gen != 0 && fstat(fd, &st) == 0 &&
	    (uint64_t)st.st_size == index_size(nbuckets) &&
	    pread(fd, &ih, sizeof(ih), 0) == (ssize_t)sizeof(ih) &&
	    memcmp(ih.i_magic, IDX_MAGIC, sizeof(ih.i_magic)) == 0 &&
	    ih.i_gen == gen && ih.i_nbuckets == nbuckets &&
	    ih.i_crc == crc32c(&ih, offsetof(struct ihdr, i_crc));
}

/* Write f's index header, naming gen, into its mapping. */
static void
index_stamp(struct kvfile *f, uint64_t gen)
{
	struct ihdr *ih = (struct ihdr *)(void *)f->f_imap;

	memcpy(ih->i_magic, IDX_MAGIC, sizeof(ih->i_magic));
	ih->i_gen = gen;
	ih->i_nbuckets = f->f_nbuckets;
	ih->i_crc = crc32c(ih, offsetof(struct ihdr, i_crc));
}

/*
 * Open and map the index at ipath for f (f_nbuckets set), creating it if
 * need be. Returns 1 if it held the buckets of the store whose header
 * names gen (index_match), 0 if it was made anew with every bucket empty,
 * or -1 with errno. Either way it names no store on return, and when it
 * was trusted that is on disk before any bucket changes can be: a crash
 * from here on leaves an index that no header's generation matches.
 */
int
index_map(struct kvfile *f, const char *ipath, uint64_t gen)
{
	uint64_t size = index_size(f->f_nbuckets);
	int match, reuse, r;

	f->f_ifd = open(ipath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (f->f_ifd == -1)
		return -1;
	match = index_match(f->f_ifd, f->f_nbuckets, gen);
	reuse = !match && index_cached(f->f_ifd, size);
	/* A file of zeros: empty buckets, no write. */
	if (!match && !reuse && (index_empty(f, ipath) == -1 ||
	    extend(f->f_ifd, 0, size) == -1))
		return -1;
	if ((r = index_mmap(f, match)) == 0 && reuse)
		memset(BKT(f), 0, size - PAGE);
	return r;
}

/*
 * Double the buckets without copying the log: a new index file at
 * s_ipath, every entry rehashed into it from the old one, which is
 * retired; the header names the new count (under icrc, as the expiring
 * flag is set), on disk with the next sync. Until then a crash replays
 * under the old count, and the replay grows again (replay_record). The
 * old file was unlinked first: if making the new one fails, the store
 * goes on with the old, and the next open finds no index of its own at
 * s_ipath and rebuilds it. Only for a log at PAGE (a version 3
 * file's or a compaction's): an older file's log starts where its
 * buckets ended, tied to their count (check_header). -1 with errno.
 */
int
index_grow(struct store *s)
{
	struct kvfile *f = &s->s_f, g;
	const struct bucket *from = BKT(f);
	struct bucket *to;
	uint64_t i, j, mask;

	if (f->f_start != PAGE || f->f_nbuckets * 2 > MAX_BUCKETS) {
		errno = ENOSPC;
		return -1;
	}
	memset(&g, 0, sizeof(g));
	g.f_ifd = -1;
	g.f_nbuckets = f->f_nbuckets * 2;
	g.f_shift = shift_for(g.f_nbuckets);
	g.f_size = f->f_size;
	g.f_start = f->f_start;
	if ((unlink(s->s_ipath) == -1 && errno != ENOENT) ||
	    index_map(&g, s->s_ipath, 0) == -1) {
		if (g.f_ifd != -1)
			(void)close(g.f_ifd);	/* empty, and named by none */
		return -1;
	}
	index_prefault(&g);
	to = BKT(&g);
	mask = g.f_nbuckets - 1;
	for (i = 0; i < f->f_nbuckets; i++) {
		if (from[i].b_off == 0)
			continue;
		for (j = home(&g, from[i].b_hash); to[j].b_off != 0;
		    j = (j + 1) & mask)
			;
		to[j] = from[i];
	}
	(void)madvise(g.f_imap, index_size(g.f_nbuckets), MADV_NORMAL);
	unmap_old(s, UINT64_MAX);	/* a retired mapping still going */
	s->s_old[0].o_map = f->f_imap;
	s->s_old[0].o_size = index_size(f->f_nbuckets);
	s->s_old[0].o_fd = f->f_ifd;
	pthread_mutex_lock(&s->s_mu);
	if (s->s_syncifd == f->f_ifd)
		s->s_syncifd = g.f_ifd;
	pthread_mutex_unlock(&s->s_mu);
	f->f_ifd = g.f_ifd;
	f->f_imap = g.f_imap;
	f->f_nbuckets = g.f_nbuckets;
	f->f_shift = g.f_shift;
	HDR(f)->h_nbuckets = f->f_nbuckets;
	HDR(f)->h_icrc = hdr_icrc(HDR(f));
	s->s_igrowths++;
	return 0;
}

/*
 * Whether fd, an untrusted index of the right size, has all of its
 * pages in the page cache (after a kill -9 it has): then it is emptied in
 * place rather than its pages freed and as many new ones zeroed. 50 ms
 * against 0.9 s for 512 MiB in a harness; right after a kill, 0.8 to
 * 2.1 s against 0.7 to 1.3 s, and no faster recovery either way: an
 * index made under MADV_RANDOM is in 4 KiB pages, slow to write all
 * over however it is done. A page it lacks
 * would be read from the disk, one at a time, only to be zeroed. It
 * names no store meanwhile (index_mmap stamps it gen 0 first), so a
 * crash halfway through leaves an index that is rebuilt, like any other.
 */
static int
index_cached(int fd, uint64_t size)
{
	struct stat st;
	unsigned char *vec;
	uint64_t pages = size / PAGE, i, n = 0;
	void *p;

	if (fstat(fd, &st) == -1 || (uint64_t)st.st_size != size ||
	    (vec = malloc(pages)) == NULL)
		return 0;
	p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (p != MAP_FAILED) {
		if (mincore(p, size, vec) == 0)
			for (i = 0; i < pages; i++)
				n += vec[i] & 1;
		(void)munmap(p, size);
	}
	free(vec);
	return n == pages;
}

static void *
close_fd(void *arg)
{
	(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid),
	    CLOSER_NICE);
	(void)close((int)(intptr_t)arg);
	return NULL;
}

/*
 * Close fd on a thread of its own, for an unlinked file: freeing its
 * blocks and pages is the last close's work, 0.2 s for a 10M-key store's
 * 512 MiB index and 1 s for a compaction's 1.9 GB copy, which a recovery
 * would otherwise wait for. At the lowest priority: on a node's one CPU
 * the two closes of a compaction cut short took two thirds of it for the
 * first second of a 10M-key recovery, whose replay then had the rest.
 * Without the thread it is closed here.
 */
static void
close_later(int fd)
{
	pthread_t tid;

	if (start_thread(&tid, close_fd, (void *)(intptr_t)fd) == 0)
		(void)pthread_detach(tid);
	else
		(void)close(fd);
}

/* unlink(2), with what it frees freed by close_later. */
int
unlink_later(const char *path)
{
	int fd, e;

	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (unlink(path) == -1) {
		e = errno;
		if (fd != -1)
			(void)close(fd);
		errno = e;
		return -1;
	}
	if (fd != -1)
		close_later(fd);
	return 0;
}

/*
 * Give index_map an empty file at ipath for f: an old index is replaced
 * by a new file rather than truncated, and closed by close_later (if no
 * new file can be made, it is truncated).
 */
static int
index_empty(struct kvfile *f, const char *ipath)
{
	struct stat st;
	int fd;

	if (fstat(f->f_ifd, &st) == -1)
		return -1;
	if (st.st_size == 0)
		return 0;
	if (unlink(ipath) == -1 || (fd = open(ipath, O_RDWR | O_CREAT |
	    O_EXCL | O_CLOEXEC, 0600)) == -1)
		return ftruncate(f->f_ifd, 0);
	close_later(f->f_ifd);
	f->f_ifd = fd;
	return 0;
}

/* index_map's second half: map f_ifd, which match says is trusted. */
int
index_mmap(struct kvfile *f, int match)
{
	uint64_t size = index_size(f->f_nbuckets);
	void *p;

	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, f->f_ifd, 0);
	if (p == MAP_FAILED)
		return -1;
	f->f_imap = p;
	/*
	 * A new index fills in random order (replay, compaction), and a
	 * fault that read around a fresh page would read 8 MiB of zeros
	 * (read_ahead_kb 8192: 15 to 30 ms): one page per fault until it
	 * is whole (trust_or_recover, compact_finish).
	 */
	if (!match)
		(void)madvise(p, size, MADV_RANDOM);
	index_stamp(f, 0);
	if (match && msync(p, PAGE, MS_SYNC) == -1)
		return -1;
	return match;
}

/*
 * Make the synced log of f's store trust its index: sync the index, named
 * by a new generation, and return that for the header (0 with errno if
 * it failed). Only then may the header say clean = 1.
 */
static uint64_t
index_seal(struct kvfile *f)
{
	uint64_t gen;

	if (random_bytes(&gen, sizeof(gen)) == -1)
		return 0;
	gen |= 1;	/* never 0, which names no index */
	index_stamp(f, gen);
	return fdatasync(f->f_ifd) == -1 ? 0 : gen;
}

/*
 * Rename the store file from, and its index before it, over to. A crash
 * between the two leaves the old store at to, named open (it was live)
 * or with an index of another generation: either is rebuilt from its
 * log. So does a failure of the second rename, after which the old store
 * may go on serving (its own index has no name now, and is not needed).
 * The caller syncs the directory.
 */
int
rename_pair(const char *from, const char *to)
{
	char *fi = path_with(from, IDX_SUFFIX), *ti = path_with(to,
	    IDX_SUFFIX);
	int r = -1;

	if (fi != NULL && ti != NULL && rename(fi, ti) == 0)
		r = rename(from, to);
	free(fi);
	free(ti);
	return r;
}

/*
 * Delete the store file at path and its index, as far as they exist,
 * freeing their blocks off the caller's thread (unlink_later): a full
 * sync's copy abandoned at 10M keys is 1.5 GB.
 */
void
unlink_pair(const char *path)
{
	char *pi = path_with(path, IDX_SUFFIX);

	(void)unlink_later(path);
	if (pi != NULL)
		(void)unlink_later(pi);
	free(pi);
}

/*
 * The buckets for keys keys, as compaction sizes them: the least power of
 * two at least twice keys (so at most half full), no fewer than
 * MIN_BUCKETS, no more than MAX_KEYS_HINT keys' worth.
 */
static uint64_t
buckets_for(uint64_t keys)
{
	uint64_t nb = MIN_BUCKETS;

	if (keys > MAX_KEYS_HINT)
		keys = MAX_KEYS_HINT;
	while (keys > nb / 2)
		nb *= 2;
	return nb;
}

/*
 * Make a new, empty, cleanly closed store at s_path with buckets for keys
 * keys, and a random repl_id and seed where they are NULL. It is built
 * beside it and renamed into place, so a crash never leaves a half-made
 * file there for the next open to refuse.
 */
static int
create_file(struct store *s, const uint8_t *repl_id, const uint8_t *seed,
    uint64_t base_seq, uint32_t flags, uint64_t keys, char *err,
    size_t errlen)
{
	struct hdr h;
	uint8_t rnd[32];
	uint64_t nb = buckets_for(keys), size = PAGE + GROW_MIN;
	const char *what = "read /dev/urandom";
	int fd = -1, e;

	if (random_bytes(rnd, sizeof(rnd)) == -1)
		goto fail;
	hdr_init(&h, nb, seed != NULL ? seed : rnd,
	    repl_id != NULL ? repl_id : rnd + 16, base_seq, flags);
	h.h_clean = 1;
	h.h_mcrc = hdr_mcrc(&h);
	what = "create the .compact file";
	fd = open(s->s_cpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1)
		goto fail;
	what = "write the .compact file";
	if (extend(fd, 0, size) == -1 ||
	    write_all(fd, &h, sizeof(h), 0) == -1 || fsync(fd) == -1)
		goto fail;
	e = close(fd);
	fd = -1;
	if (e == -1)
		goto fail;
	what = "rename it into place";
	if (rename(s->s_cpath, s->s_path) == -1 || store_sync_dir(s->s_path) == -1)
		goto fail;
	return 0;
fail:
	e = errno;
	seterr(err, errlen, "create %s: %s: %s", s->s_path, what,
	    strerror(e));
	if (fd != -1)
		(void)close(fd);
	(void)unlink(s->s_cpath);
	errno = e;
	return -1;
}

/*
 * Recovery's walk of the log, which one thread makes (scan_log) while
 * another replays what it has passed (recover): the CRCs and the first
 * touch of every page on one core, the hashing and the buckets on the
 * other. sc_safe only moves, and only to the end of a whole group.
 */
struct scan {
	const struct kvfile *sc_f;
	pthread_mutex_t	 sc_mu;
	pthread_cond_t	 sc_cond;
	uint64_t	 sc_safe;	/* the records before it are valid */
	int		 sc_done;	/* sc_safe is where the walk stopped */
	uint64_t	 sc_n;		/* the records it passed */
	const char	*sc_stop;	/* what stopped it */
	uint64_t	 sc_last;	/* one past the last non-zero byte */
};

/* Publish that the records before safe are valid (done: and no more). */
static void
scan_report(struct scan *sc, uint64_t safe, int done)
{
	pthread_mutex_lock(&sc->sc_mu);
	sc->sc_safe = safe;
	sc->sc_done = done;
	pthread_cond_signal(&sc->sc_cond);
	pthread_mutex_unlock(&sc->sc_mu);
}

/*
 * Walk the log from data_start while records are whole and valid, reading
 * only, reporting every SCAN_STEP the end of the last whole group passed;
 * then where the walk stopped (sc_safe, sc_n, sc_stop) and, once that is
 * reported, the end of what was written after it (sc_last).
 */
static void *
scan_log(void *arg)
{
	struct scan *sc = arg;
	const struct kvfile *f = sc->sc_f;
	struct rec r;
	uint64_t off = f->f_start, n = 0, gstart = 0, gn = 0, report;
	const char *stop = "end of log";

	for (report = off + SCAN_STEP;; off += r.r_size, n++) {
		if (off + REC_HDR > f->f_size) {
			if (off < f->f_size)
				stop = "record cut short by end of file";
			break;
		}
		if (f->f_map[off + 4] == 0)
			break;
		if (!rec_valid(f, off, &r)) {
			stop = "torn or corrupt record";
			break;
		}
		if ((r.r_flags & REC_MORE) == 0)
			gstart = 0;
		else if (gstart == 0) {
			gstart = off;
			gn = n;
		}
		if (gstart == 0 && off >= report) {
			scan_report(sc, off + r.r_size, 0);
			report = off + SCAN_STEP;
		}
	}
	if (gstart != 0) {
		off = gstart;
		n = gn;
		stop = "a transaction cut short";
	}
	sc->sc_n = n;
	sc->sc_stop = stop;
	scan_report(sc, off, 1);
	sc->sc_last = written_end(f, off);
	return NULL;
}

/* One past the last non-zero byte of f at or after from (or from). */
uint64_t
written_end(const struct kvfile *f, uint64_t from)
{
	uint64_t last = f->f_size, word;

	/*
	 * Reading the preallocated zeros costs a page fault per 4 KiB, and
	 * a byte at a time, 0.1 s of a 10M-key recovery's CPU for the up to
	 * 256 MiB grown past the log: so a word at a time (memcpy: any
	 * alignment), then the bytes of the last one.
	 */
	for (; last >= from + 8; last -= 8) {
		memcpy(&word, f->f_map + last - 8, 8);
		if (word != 0)
			break;
	}
	for (; last > from && f->f_map[last - 1] == 0; last--)
		;
	return last;
}

/*
 * The first valid record at an 8-byte boundary in [from, end), or
 * UINT64_MAX: how recovery and store_check find the log again past a bad
 * record. A candidate must pass rec_valid (type, lengths that fit, and
 * the CRC over header, key and value), so chance alone passes one in
 * about 2^32 plausible headers. XXX: a value that holds a whole valid
 * record at an 8-byte boundary (a store file stored as a value) would pass
 * too, if damage made the walk land inside it.
 */
uint64_t
next_valid(const struct kvfile *f, uint64_t from, uint64_t end)
{
	struct rec r;
	uint64_t off;

	for (off = round_up(from, 8); off < end && off < f->f_size; off += 8)
		if (rec_valid(f, off, &r))
			return off;
	return UINT64_MAX;
}

/* Apply the valid record at off, whose key hashes to h, to the buckets. */
static int
replay_record(struct store *s, uint64_t off, uint64_t h, uint64_t *maxseq,
    char *err, size_t errlen)
{
	struct kvfile *f = &s->s_f;
	struct rec r;
	uint64_t i;
	int found;

	rec_read(f, off, &r);
	found = find(f, h, r.r_key, r.r_klen, &i);
	if (r.r_type == REC_PUT) {
		/* The header's buckets may predate a growth (index_grow). */
		if (!found && f->f_keys + 1 > cap(f) && index_grow(s) == 0)
			found = find(f, h, r.r_key, r.r_klen, &i);
		if (!found && f->f_keys + 1 >= f->f_nbuckets) {
			seterr(err, errlen, "%s: corrupt log: more keys than "
			    "buckets", s->s_path);
			return -1;
		}
		index_put(f, found, i, h, off, r.r_klen + r.r_vlen);
	} else if (found)
		index_del(f, i, r.r_size);
	else
		f->f_garbage += r.r_size;
	if (r.r_seq > *maxseq)
		*maxseq = r.r_seq;
	s->s_replayed_expiry |= (r.r_flags & REC_EXPIRES) != 0;
	return 0;
}

/*
 * A replay writes a new index all over, in random order, and each page
 * of it then costs two faults (the bucket read, then written), 15 us in
 * all on a VM: 2 s of a 10M-key recovery. Faulted in by one call, the
 * pages cost half. Only when the log is at least as big as the index:
 * then records of any usual size touch every page, while a big index
 * over a small log keeps its faults where they fall rather than be made
 * resident for nothing. Best effort: before Linux 5.14 the replay takes
 * the faults.
 */
static void
index_prefault(struct kvfile *f)
{
	uint64_t size = index_size(f->f_nbuckets);

	if (f->f_size - f->f_start >= size)
		(void)madvise(f->f_imap, size, MADV_POPULATE_WRITE);
}

/*
 * Apply the valid records in [from, end) to the buckets, in log order.
 * Each record's bucket is a cache miss on a big table, and so is the
 * record that a key's new one replaces, whose key must be compared; on a
 * VM each is a TLB miss first, and a prefetch that misses the TLB cannot
 * retire until its page walk ends. So the records go in groups of
 * REPLAY_GROUP: read and hashed, then all their buckets prefetched in one
 * tight loop (the walks overlap), then the records those buckets name,
 * then applied. A 10M-key replay (16.6M records) took 2.9 s in a harness
 * with one record a stage, 1.8 s in groups of 32.
 */
static int
replay_range(struct store *s, uint64_t from, uint64_t end, uint64_t *maxseq,
    char *err, size_t errlen)
{
	struct kvfile *f = &s->s_f;
	const struct bucket *b[REPLAY_GROUP];
	struct rec r;
	uint64_t at[REPLAY_GROUP], hash[REPLAY_GROUP];
	unsigned n, i;

	while (from < end) {
		for (n = 0; n < REPLAY_GROUP && from < end; n++) {
			rec_read(f, from, &r);
			at[n] = from;
			hash[n] = hash_key(s, r.r_key, r.r_klen);
			from += r.r_size;
		}
		for (i = 0; i < n; i++) {
			b[i] = &BKT(f)[home(f, hash[i])];
			__builtin_prefetch(b[i], 1);
		}
		for (i = 0; i < n; i++)
			if (b[i]->b_hash == hash[i] && b[i]->b_off < f->f_size)
				__builtin_prefetch(f->f_map + b[i]->b_off);
		/* A growth (replay_record) moves the buckets: b[] was a hint. */
		for (i = 0; i < n; i++)
			if (replay_record(s, at[i], hash[i], maxseq, err,
			    errlen) == -1)
				return -1;
	}
	return 0;
}

/* Rebuild the buckets (a new index: zero) and counters from the valid
 * records before end. */
static int
replay(struct store *s, uint64_t end, uint64_t *maxseq, char *err,
    size_t errlen)
{
	struct kvfile *f = &s->s_f;

	f->f_keys = f->f_live = f->f_garbage = 0;
	index_prefault(f);
	if (replay_range(s, f->f_start, end, maxseq, err, errlen) == -1)
		return -1;
	f->f_end = end;
	return 0;
}

/*
 * Zero the log from off to last (its last non-zero byte) by cutting and
 * regrowing the file, so nothing there is ever taken for data, and sync.
 */
static int
cut_log(struct store *s, uint64_t off, uint64_t last, char *err,
    size_t errlen)
{
	struct kvfile *f = &s->s_f;
	uint64_t newsize = round_up(f->f_size, PAGE);
	void *p;

	if (last > off || newsize != f->f_size) {
		/* The kernel zeroes what was cut. */
		if (ftruncate(f->f_fd, (off_t)off) == -1 ||
		    extend(f->f_fd, off, newsize) == -1 ||
		    fsync(f->f_fd) == -1) {
			seterr(err, errlen, "%s: zero the log after offset %"
			    PRIu64 ": %s", s->s_path, off, errstr());
			return -1;
		}
		if (newsize != f->f_size) {
			p = mremap(f->f_map, f->f_size, newsize,
			    MREMAP_MAYMOVE);
			if (p == MAP_FAILED) {
				seterr(err, errlen, "mremap %s: %s",
				    s->s_path, errstr());
				return -1;
			}
			f->f_map = p;
			f->f_size = newsize;
		}
	}
	/* What was replayed may be in the page cache only: durable_seq will
	 * say it is on disk, so it must be. */
	if (fdatasync(f->f_fd) == -1) {
		seterr(err, errlen, "%s: sync after recovery: %s", s->s_path,
		    errstr());
		return -1;
	}
	return 0;
}

/*
 * Rebuild the buckets and counters of s_f from its log (see the format
 * comment), cut the log after the last good record and sync the result;
 * or, if that record ends before the log's synced end, refuse with the
 * file untouched. why says what made the header untrustworthy.
 */
static int
recover(struct store *s, const char *why, char *err, size_t errlen)
{
	struct kvfile *f = &s->s_f;
	struct scan sc;
	pthread_t tid;
	char after[96] = "";
	uint64_t off, safe, synced, next, maxseq = HDR(f)->h_base_seq;
	int threaded, done = 0, rc = 0;

	memset(&sc, 0, sizeof(sc));
	sc.sc_f = f;
	pthread_mutex_init(&sc.sc_mu, NULL);
	pthread_cond_init(&sc.sc_cond, NULL);
	/* Without a second thread the walk is made first, then the replay. */
	if (!(threaded = start_thread(&tid, scan_log, &sc) == 0))
		(void)scan_log(&sc);
	index_prefault(f);	/* while the log is walked */
	f->f_keys = f->f_live = f->f_garbage = 0;
	for (off = f->f_start; !done && rc == 0; off = safe) {
		pthread_mutex_lock(&sc.sc_mu);
		while (!sc.sc_done && sc.sc_safe <= off)
			pthread_cond_wait(&sc.sc_cond, &sc.sc_mu);
		safe = sc.sc_safe;
		done = sc.sc_done;
		pthread_mutex_unlock(&sc.sc_mu);
		rc = replay_range(s, off, safe, &maxseq, err, errlen);
	}
	if (threaded)
		pthread_join(tid, NULL);
	pthread_cond_destroy(&sc.sc_cond);
	pthread_mutex_destroy(&sc.sc_mu);
	if (rc == -1)
		return -1;
	f->f_end = off;
	synced = synced_end(f);
	if (off < synced) {
		/* Damage where the log was synced: the file stays as it is,
		 * for store_check and store_salvage. */
		seterr(err, errlen, "%s: damaged log: %s at offset %" PRIu64
		    ", below its synced end (offset %" PRIu64 "); the file is "
		    "unchanged", s->s_path, sc.sc_stop, off, synced);
		errno = EUCLEAN;
		return -1;
	}
	/* Past the synced end a power cut may leave holes where pages were
	 * never written back: valid records after a bad one were never
	 * durable, and go with it. */
	if (off < sc.sc_last &&
	    (next = next_valid(f, off + 8, sc.sc_last)) != UINT64_MAX)
		fmt_buf(after, sizeof(after), "; the records from offset %"
		    PRIu64 " on were never synced", next);
	if (cut_log(s, off, sc.sc_last, err, errlen) == -1)
		return -1;
	s->s_last_seq = maxseq;
	s->s_recovered = 1;
	s->s_recovered_records = sc.sc_n;
	s->s_dropped_bytes = sc.sc_last - off;
	kv_log("warn", "%s: %s; replayed %" PRIu64 " records (%" PRIu64
	    " keys) up to offset %" PRIu64 ", dropped %" PRIu64
	    " bytes after it (%s%s)", s->s_path, why, sc.sc_n, f->f_keys, off,
	    sc.sc_last - off, sc.sc_stop, after);
	return 0;
}

/* Free everything s holds; the flusher must be stopped. */
static void
destroy(struct store *s)
{
	prep_cancel(s);
	if (s->s_cphase != C_NONE) {
		drop_file(&s->s_c);
		unlink_pair(s->s_cpath);
	}
	unmap_old(s, UINT64_MAX);
	if (s->s_retirefd != -1)
		(void)close(s->s_retirefd);
	free(s->s_f.f_stage);
	free(s->s_scanbuf);
	drop_file(&s->s_f);
	if (s->s_pipe[0] != -1)
		(void)close(s->s_pipe[0]);
	if (s->s_pipe[1] != -1)
		(void)close(s->s_pipe[1]);
	pthread_mutex_destroy(&s->s_mu);
	pthread_cond_destroy(&s->s_cv);
	free(s->s_heap);
	free(s->s_path);
	free(s->s_cpath);
	free(s->s_ipath);
	free(s->s_cipath);
	free(s);
}

/*
 * Unmap and close f and its index, as far as they were opened. Synced
 * already, or we are failing anyway: close cannot add news.
 */
void
drop_file(struct kvfile *f)
{
	if (f->f_map != NULL)
		(void)munmap(f->f_map, f->f_size);
	if (f->f_imap != NULL)
		(void)munmap(f->f_imap, index_size(f->f_nbuckets));
	if (f->f_fd != -1)
		(void)close(f->f_fd);
	if (f->f_ifd != -1)
		(void)close(f->f_ifd);
	f->f_map = f->f_imap = NULL;
	f->f_fd = f->f_ifd = -1;
}

/* ---- The flusher thread ---- */

/*
 * Group commit's gather, for ALWAYS: PostgreSQL's commit_delay, tuned by
 * itself. Started as soon as a write is waiting, syncs settle into two
 * cohorts: the writes that came during one sync go in the next, while the
 * clients the last sync answered are still on their way back, so each
 * sync takes about half the clients and a write waits about two syncs
 * (64 clients: 27-32 writes per fdatasync, where Redis, which syncs in its
 * loop and answers everyone at once, takes about 50). So a sync waits for
 * as many seqs as the last one took plus those that came during it (the
 * clients in play), for at most as long as that sync lasted and
 * GATHER_MAX_NS: the cohorts merge and a sync takes them all. A write then
 * waits at most that one sync's time more, as it did behind the other
 * cohort; a lone client's target is its own write, and a target not met
 * shrinks at the next sync to what came. Called with s_mu held; returns 1
 * after waiting (the caller looks at every job again), 0 to sync now.
 */
static int
gather(struct store *s, uint64_t *until)
{
	struct timespec ts;
	uint64_t now;

	if (s->s_want - s->s_durable >= s->s_gather)
		return *until = 0, 0;
	now = mono_ns();
	if (*until == 0)
		*until = now + s->s_gather_ns;
	if (now >= *until)
		return *until = 0, 0;
	ts.tv_sec = (time_t)(*until / NSEC_PER_SEC);
	ts.tv_nsec = (long)(*until % NSEC_PER_SEC);
	s->s_gathering = 1;
	pthread_cond_timedwait(&s->s_cv, &s->s_mu, &ts);
	s->s_gathering = 0;
	return 1;
}

/*
 * The only other thread. It syncs the store file for the ALWAYS and
 * EVERYSEC policies, and the compaction file once the copy first catches
 * up, so that the final sync in the main thread has little left to write;
 * it makes a compaction's files (prep_job), and allocates the log's next
 * growth ahead of the loop (grow_job).
 * Each fdatasync covers every write made before it began, so writes that
 * arrive during one share the next (group commit).
 *
 * fdatasync on the fd, not msync on the mapping: the main thread may
 * mremap the mapping at any time. XXX: only Linux promises that fdatasync
 * also writes back pages dirtied through a shared mapping; POSIX promises
 * it of msync alone.
 */
static void *
flusher(void *arg)
{
	struct store *s = arg;
	struct timespec ts;
	uint64_t next = mono_ns() + NSEC_PER_SEC, target, end, t;
	uint64_t ra_log = 0, ra_bkt = 0, until = 0;
	int fd, e, growing, grew = 0, copied = 0;

	/*
	 * Below the event loop: a sync of a large mapping spends CPU in the
	 * kernel (write-protecting each dirty page), and with one core the
	 * loop waited for it, up to 470 ms in a traced 10M-key overwrite.
	 * Linux gives each thread its own nice value.
	 */
	(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid),
	    FLUSHER_NICE);
	pthread_mutex_lock(&s->s_mu);
	for (;;) {
		if (s->s_retirefd != -1) {
			fd = s->s_retirefd;
			s->s_retirefd = -1;
			pthread_mutex_unlock(&s->s_mu);
			(void)close(fd);	/* replaced and unlinked */
			pthread_mutex_lock(&s->s_mu);
			continue;
		}
		/* A copy's sync takes turns with the store's: one
		 * fdatasync of a 16 MiB copy held every write 38 ms. */
		if (s->s_bgfd != -1 && !(copied && sync_due(s, next))) {
			copy_job(s);
			copied = 1;
			continue;
		}
		if (s->s_final == F_ASKED || s->s_final == F_DIR) {
			final_job(s);
			continue;
		}
		if (s->s_loadjob) {
			load_job(s, &ra_log, &ra_bkt);
			continue;
		}
		if (s->s_seal == SEAL_ASKED) {
			seal_job(s);
			continue;
		}
		if (s->s_stop)
			break;
		if (s->s_prep == P_ASKED) {
			prep_job(s);
			continue;
		}
		growing = s->s_growfd != -1 && s->s_grown < s->s_growto;
		if (growing && !grew) {
			grow_job(s);
			grew = 1;	/* a sync's turn next, if one is due */
			continue;
		}
		grew = 0;
		if (sync_due(s, next)) {
			if (s->s_policy == STORE_FSYNC_ALWAYS &&
			    gather(s, &until))
				continue;
			target = s->s_want;
			end = s->s_wantend;
			fd = s->s_syncfd;
			t = mono_ns();
			flush_fd(s, fd, &e);
			t = mono_ns() - t;
			if (e != 0 && s->s_ioerr == 0) {
				/* Waiting writes must hear it: never ok. */
				s->s_ioerr = e;
				notify(s);
			}
			/* Still the live file (no compaction ended since):
			 * mark what the sync covered, for recovery, before
			 * any write it covered is acknowledged. */
			if (e == 0 && fd == s->s_syncfd)
				mark_synced(s, fd, end);
			if (e == 0 && target > s->s_durable) {
				s->s_gather = s->s_want - s->s_durable;
				s->s_gather_ns = t < GATHER_MAX_NS ? t :
				    GATHER_MAX_NS;
				s->s_durable = target;
				if (news(s))
					news_unlocked(s);
			}
			next = mono_ns() + NSEC_PER_SEC;
			copied = 0;
			continue;
		}
		copied = 0;
		if (growing)
			continue;
		if (s->s_policy == STORE_FSYNC_EVERYSEC) {
			if ((t = mono_ns()) >= next)
				next = t + NSEC_PER_SEC;
			ts.tv_sec = next / NSEC_PER_SEC;
			ts.tv_nsec = next % NSEC_PER_SEC;
			pthread_cond_timedwait(&s->s_cv, &s->s_mu, &ts);
		} else
			pthread_cond_wait(&s->s_cv, &s->s_mu);
	}
	pthread_mutex_unlock(&s->s_mu);
	return NULL;
}

/*
 * Mark in fd's header the log end a sync covered, without s_mu held (fd
 * kept as in flush_fd). Called and returns with s_mu held.
 */
static void
mark_synced(struct store *s, int fd, uint64_t end)
{
	s->s_busyfd = fd;
	pthread_mutex_unlock(&s->s_mu);
	write_synced(fd, end);
	pthread_mutex_lock(&s->s_mu);
	unbusy(s);
}

/*
 * news_send without s_mu held. Woken under s_mu, the loop ran at once on
 * this CPU, found s_mu taken, and gave it back: two context switches more
 * per sync, ~30 us. Called and returns with s_mu held.
 */
static void
news_unlocked(struct store *s)
{
	pthread_mutex_unlock(&s->s_mu);
	news_send(s);
	pthread_mutex_lock(&s->s_mu);
}

/* Whether the store's log is due a sync. Called with s_mu held. */
static int
sync_due(const struct store *s, uint64_t next)
{
	return s->s_final == F_NONE && s->s_want > s->s_durable &&
	    s->s_ioerr == 0 && (s->s_policy == STORE_FSYNC_ALWAYS ||
	    (s->s_policy == STORE_FSYNC_EVERYSEC && mono_ns() >= next));
}

/*
 * A compaction's background sync (store_compact.c), one step: write back
 * the next BG_CHUNK of the copy and wait for it, or, past s_bgend, sync
 * the file (what was dirtied since, and its metadata). The disk then
 * serves the store's syncs between two chunks rather than after the whole
 * copy. sync_file_range reports a write-back error to this file
 * descriptor only once, so a chunk's error ends the request. Called and
 * returns with s_mu held, fd as in flush_fd.
 */
static void
copy_job(struct store *s)
{
	int fd = s->s_bgfd, r, e = 0;
	unsigned req = s->s_bgreq;
	uint64_t from = s->s_bgoff, len = s->s_bgend - from;

	if (from < s->s_bgend) {
		if (len > BG_CHUNK)
			len = BG_CHUNK;
		s->s_busyfd = fd;
		pthread_mutex_unlock(&s->s_mu);
		r = sync_file_range(fd, (off_t)from, (off_t)len,
		    SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
		    SYNC_FILE_RANGE_WAIT_AFTER);
		e = r == -1 ? errno : 0;
		pthread_mutex_lock(&s->s_mu);
		unbusy(s);
		if (s->s_bgfd != fd || s->s_bgreq != req)
			return;		/* dropped: the compaction moved on */
		s->s_bgoff = from + len;
		if (e == 0)
			return;
	} else
		flush_fd(s, fd, &e);
	if (s->s_bgfd != fd || s->s_bgreq != req)
		return;
	s->s_bgfd = -1;
	s->s_bgdone = req;
	s->s_bgerr = e;
}

/*
 * The flusher's part of a compaction's end (see F_*): sync the copy, or
 * sync the directory after the rename and let durability move again.
 * Called and returns with s_mu held.
 */
static void
final_job(struct store *s)
{
	int fd, r, e;

	if (s->s_final == F_ASKED) {
		fd = s->s_finalfd;
		flush_fd(s, fd, &e);
		/* A forced finish or an abort may have overtaken us. */
		if (s->s_final == F_ASKED && s->s_finalfd == fd) {
			s->s_final = F_SYNCED;
			s->s_finalerr = e;
			notify(s);	/* the poll loop's next step renames */
		}
		return;
	}
	pthread_mutex_unlock(&s->s_mu);
	r = store_sync_dir(s->s_path);
	e = errno;
	pthread_mutex_lock(&s->s_mu);
	if (s->s_final != F_DIR)
		return;
	s->s_final = F_NONE;
	if (r == -1) {
		if (s->s_ioerr == 0)
			s->s_ioerr = e;
	} else if (s->s_finalseq > s->s_durable)
		s->s_durable = s->s_finalseq;
	notify(s);
}

/*
 * store_seal's work: what a clean close writes (the log synced, the index
 * stamped and synced, the zeros past the log cut, the header marked clean
 * and synced), so that store_close does none of it on the loop. Each sync
 * waits for the disk's write cache to be flushed: on a busy disk the
 * close's syncs of a 10M-key copy held the loop 0.88 s. Nothing writes to
 * a store once it is sealed (store.h). Called and returns with s_mu held.
 */
static void
seal_job(struct store *s)
{
	int e;

	s->s_growfd = -1;	/* nothing grows the file past the cut */
	flush_fd(s, s->s_syncfd, &e);
	s->s_busyfd = s->s_syncfd;
	pthread_mutex_unlock(&s->s_mu);
	if (e == 0)
		e = mark_clean(s);
	pthread_mutex_lock(&s->s_mu);
	unbusy(s);
	if (e != 0 && s->s_ioerr == 0)
		s->s_ioerr = e;
	s->s_seal = SEAL_DONE;
	notify(s);
}

/*
 * fdatasync fd without s_mu held; called and returns with it held. While
 * the sync runs, fd is s_busyfd, and release_fd leaves its closing to us.
 */
static void
flush_fd(struct store *s, int fd, int *errp)
{
	int r, e;

	s->s_busyfd = fd;
	pthread_mutex_unlock(&s->s_mu);
	r = fdatasync(fd);
	e = errno;
	pthread_mutex_lock(&s->s_mu);
	unbusy(s);
	if (r == 0)
		s->s_fsyncs++;
	*errp = r == -1 ? e : 0;
}

/*
 * A loading store's (see writeback_early): read in the log and the buckets
 * the next writes will touch, up to s_ralog and s_rabkt (*ra_log, *ra_bkt:
 * how far that was done), then start writing back the log range asked for.
 * Both are the loop's cost otherwise: a write to a page not yet cached
 * reads around it (8 MiB with read_ahead_kb 8192: 10 to 20 ms in one
 * fault), and sync_file_range waits for the disk's queue and
 * write-protects every page (~1 ms per MiB). Hints: errors show at the
 * last sync. Called and returns with s_mu held, fd as in flush_fd.
 */
static void
load_job(struct store *s, uint64_t *ra_log, uint64_t *ra_bkt)
{
	uint64_t from = s->s_wbfrom, to = s->s_wbto;
	uint64_t ifrom = s->s_iwbfrom, ito = s->s_iwbto;
	uint64_t lfrom = *ra_log > to ? *ra_log : to, lto = s->s_ralog;
	uint64_t bfrom = *ra_bkt, bto = s->s_rabkt;
	int fd = s->s_syncfd, ifd;

	s->s_loadjob = 0;
	*ra_log = lto > lfrom ? lto : lfrom;
	*ra_bkt = bto > bfrom ? bto : bfrom;
	s->s_busyfd = fd;
	/* The index is not s_busyfd, and a compaction's end may close it
	 * meanwhile: work on a descriptor of our own. A failed dup only
	 * skips a hint. */
	ifd = fcntl(s->s_syncifd, F_DUPFD_CLOEXEC, 0);
	pthread_mutex_unlock(&s->s_mu);
	read_in(fd, lfrom, lto);
	if (ifd != -1)
		read_in(ifd, bfrom, bto);
	if (to > from)		/* 0 bytes would mean to the end */
		(void)sync_file_range(fd, (off_t)from, (off_t)(to - from),
		    SYNC_FILE_RANGE_WRITE);
	if (ifd != -1 && ito > ifrom)
		(void)sync_file_range(ifd, (off_t)ifrom, (off_t)(ito - ifrom),
		    SYNC_FILE_RANGE_WRITE);
	if (ifd != -1)
		(void)close(ifd);	/* the last, if it was retired */
	pthread_mutex_lock(&s->s_mu);
	unbusy(s);
}

/*
 * Allocate the next GROW_CHUNK of what grow_ahead asked for: a chunk at a
 * time, so that a sync waits for one chunk at most. It extends the file,
 * past the loop's mapping, which is harmless: zeros, as a torn tail is,
 * cut at a clean close (trim). Called and returns with s_mu held, fd as
 * in flush_fd.
 */
static void
grow_job(struct store *s)
{
	uint64_t from = s->s_grown, len = s->s_growto - from;
	int fd = s->s_growfd, r;

	if (len > GROW_CHUNK)
		len = GROW_CHUNK;
	s->s_busyfd = fd;
	pthread_mutex_unlock(&s->s_mu);
	r = fallocate(fd, 0, (off_t)from, (off_t)len);
	pthread_mutex_lock(&s->s_mu);
	unbusy(s);
	if (s->s_growfd != fd || s->s_grown != from)
		return;		/* the loop took over, or asked anew */
	if (r == 0)
		s->s_grown = from + len;
	else
		s->s_growfd = -1;	/* the loop grows it, and sees why not */
}

/* The end of a job on s_busyfd: close it if it was released meanwhile. */
static void
unbusy(struct store *s)
{
	s->s_busyfd = -1;
	if (s->s_closefd != -1) {
		(void)close(s->s_closefd);	/* synced or abandoned */
		s->s_closefd = -1;
	}
}

/*
 * Read [from, to) of fd into the page cache as the loop's faults would, in
 * the big folios of a read-around: by faulting it, READ_IN_CHUNK at a
 * time, into a mapping of our own, unmapped at once, so that the loop's
 * mremap never races it and its mmap waits little for the process's mmap
 * lock. (fadvise's WILLNEED reads in single pages, and the loop then takes
 * twice the faults; sendfile to /dev/null, smaller folios.) Beyond the end
 * of the file MADV_POPULATE_READ fails rather than raise SIGBUS; before
 * Linux 5.14 it always fails, and the loop reads in for itself.
 */
static void
read_in(int fd, uint64_t from, uint64_t to)
{
	uint64_t off;
	size_t len;
	void *p;

	for (off = from / PAGE * PAGE; off < to; off += len) {
		len = (size_t)(to - off < READ_IN_CHUNK ? to - off :
		    READ_IN_CHUNK);
		p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, (off_t)off);
		if (p == MAP_FAILED)
			return;
		if (madvise(p, len, MADV_POPULATE_READ) == -1)
			off = to;	/* past the end, or an old kernel */
		(void)munmap(p, len);
	}
}

/* Close fd, or have the flusher close it if it is syncing it. Under s_mu. */
void
release_fd(struct store *s, int fd)
{
	if (fd == s->s_growfd)
		s->s_growfd = -1;	/* its number may come back */
	if (fd == s->s_busyfd)
		s->s_closefd = fd;
	else
		(void)close(fd);	/* a synced or abandoned file */
}

/*
 * The last close of a replaced, unlinked file frees its page cache and
 * blocks, which takes time in proportion to its size (~25 ms for 200 MB):
 * leave that to the flusher. Under s_mu.
 */
void
retire_fd(struct store *s, int fd)
{
	if (fd == s->s_growfd)
		s->s_growfd = -1;	/* its number may come back */
	if (fd == s->s_busyfd)
		s->s_closefd = fd;
	else if (s->s_retirefd == -1) {
		s->s_retirefd = fd;
		pthread_cond_signal(&s->s_cv);
	} else
		(void)close(fd);
}

/* Under s_mu. */
void
notify(struct store *s)
{
	if (news(s))
		news_send(s);
}

/*
 * Under s_mu: whether the poll loop needs a byte for news now (news_send,
 * then, with or without s_mu). One byte until it is drained: it wakes the
 * loop as well as many.
 */
static int
news(struct store *s)
{
	if (NEWS(s))
		return 0;
	__atomic_store_n(&s->s_notified, 1, __ATOMIC_RELAXED);
	return 1;
}

static void
news_send(struct store *s)
{
	char c = 0;

	/* EAGAIN: the pipe is full, so the poll loop is due to wake anyway. */
	while (write(s->s_pipe[1], &c, 1) == -1 && errno == EINTR)
		;
}

/*
 * The first flush error stops all writes: none could be acknowledged.
 * Writes already waiting on store_durable_seq learn it from store_error.
 */
void
note_failure(struct store *s, int e)
{
	if (e == 0 || s->s_failed != 0)
		return;
	s->s_failed = e;
	kv_log("error", "%s: flush failed: %s; refusing writes from now on",
	    s->s_path, strerror(e));
}

/* ---- Writes ---- */

static int
check_write(struct store *s, size_t klen, size_t vlen, uint64_t seq)
{
	if (klen == 0 || klen > STORE_MAX_KEY ||
	    (!s->s_loading && seq != 0 && seq <= s->s_last_seq) ||
	    (s->s_loading && (seq == 0 || seq > s->s_last_seq))) {
		errno = EINVAL;
		return -1;
	}
	if (vlen > MAX_VALUE_BYTES) {
		errno = EFBIG;
		return -1;
	}
	if (s->s_failed != 0) {
		errno = s->s_failed;
		return -1;
	}
	return 0;
}

/*
 * A full sync's copy is made durable whole before it is swapped in
 * (store_seal, store_adopt), and that one sync used to write every byte:
 * 0.14 s of a 0.6 s copy of 1M keys here. Have the flusher start writing
 * the log back as it fills, and read in what comes next (load_job). The
 * snapshot comes in hash order, so the buckets fill from the first to the
 * last (s_front), and those more than WRITEBACK_STEP behind it are final
 * but for the few keys that wrap around the table's end: write them back
 * too. At 10M keys the last sync spent 0.8 s of its 1.1 s on the 256 MiB
 * of buckets; now it waits for the tails of both. Keys out of hash order
 * (a source without our seed) move the front to the end at once, and the
 * mark below which the buckets were written back never goes down: those
 * wait for the last sync, as before, but what the first 8 MiB of log had
 * dirtied. Under s_mu.
 */
static void
writeback_early(struct store *s)
{
	struct kvfile *f = &s->s_f;
	uint64_t end = log_end_written(f) / PAGE * PAGE, front, behind, ahead;

	if (s->s_wbdone < f->f_start || s->s_wbdone > end) {
		s->s_wbdone = f->f_start;	/* a new file: read ahead now */
		s->s_iwbdone = PAGE;		/* the header page is not */
	} else if (end - s->s_wbdone < WRITEBACK_STEP)
		return;
	if (!s->s_loadjob) {	/* else the flusher is behind: more */
		s->s_wbfrom = s->s_wbdone;
		s->s_iwbfrom = s->s_iwbdone;
	}
	s->s_wbto = s->s_wbdone = end;
	/* The front's place in the index file: write back behind it. */
	front = PAGE + s->s_front * sizeof(struct bucket);
	behind = front / PAGE * PAGE;
	behind = behind > PAGE + WRITEBACK_STEP ? behind - WRITEBACK_STEP :
	    PAGE;
	if (behind > s->s_iwbdone)
		s->s_iwbdone = behind;
	s->s_iwbto = s->s_iwbdone;
	s->s_ralog = end + READ_AHEAD < f->f_size ? end + READ_AHEAD :
	    f->f_size;
	ahead = front + READ_AHEAD;
	s->s_rabkt = ahead < index_size(f->f_nbuckets) ? ahead :
	    index_size(f->f_nbuckets);
	s->s_loadjob = 1;
	pthread_cond_signal(&s->s_cv);
}

/*
 * After appending nbytes: tell the flusher, then copy a slice of the
 * compaction, twice what was written, or more as free buckets run out, so
 * the copy finishes before the old buckets fill up.
 */
static void
wrote(struct store *s, uint64_t nbytes)
{
	struct kvfile *f = &s->s_f;
	uint64_t slack, left, budget;
	int e;

	if (s->s_group) {
		/* Published at the group's end: the flusher's synced_end
		 * and a compaction copy never stop inside a group. */
		s->s_gbytes += nbytes;
		return;
	}
	pthread_mutex_lock(&s->s_mu);
	if (s->s_loading)
		writeback_early(s);
	s->s_want = s->s_last_seq;
	s->s_wantend = log_end_written(f);
	/* A gathering flusher wakes once its gather is met, not for
	 * each write on the way (a futex call each). */
	if (s->s_policy == STORE_FSYNC_ALWAYS && (!s->s_gathering ||
	    s->s_want - s->s_durable >= s->s_gather))
		pthread_cond_signal(&s->s_cv);
	e = s->s_ioerr;
	pthread_mutex_unlock(&s->s_mu);
	note_failure(s, e);
	unmap_old(s, UNMAP_CHUNK);

	if (s->s_cphase == C_NONE) {
		maybe_compact(s);
		return;
	}
	slack = cap(f) > f->f_keys ? cap(f) - f->f_keys : 0;
	left = f->f_end - s->s_cpos;
	budget = COPY_FACTOR * nbytes;
	if (slack == 0)
		budget = left;
	else if (left / slack > budget)
		budget = left / slack;
	(void)compact_work(s, budget, 0, 0);
}

/*
 * Opening a store, by phase (as LMDB's mdb_env_open2 and
 * mdb_env_read_header): allocate, open and lock the file and check its
 * header, map it, trust its buckets or recover them from the log, then
 * start the flusher. Each phase sets err and returns -1 on failure, and
 * store_open's destroy frees whatever the earlier ones took.
 */

/* path + suffix, malloc'd; NULL with errno ENOMEM. */
char *
path_with(const char *path, const char *suffix)
{
	size_t n = strlen(path), m = strlen(suffix);
	char *p;

	if ((p = malloc(n + m + 1)) == NULL)
		return NULL;
	memcpy(p, path, n);
	memcpy(p + n, suffix, m + 1);
	return p;
}

static struct store *
store_alloc(const char *path, enum store_fsync policy, char *err,
    size_t errlen)
{
	struct store *s;
	pthread_condattr_t ca;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		seterr(err, errlen, "%s", errstr());
		return NULL;
	}
	s->s_f.f_fd = s->s_c.f_fd = s->s_f.f_ifd = s->s_c.f_ifd = -1;
	s->s_pipe[0] = s->s_pipe[1] = -1;
	s->s_busyfd = s->s_closefd = s->s_bgfd = s->s_retirefd = -1;
	s->s_growfd = -1;
	s->s_old[0].o_fd = s->s_old[1].o_fd = -1;
	s->s_policy = policy;
	pthread_mutex_init(&s->s_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->s_cv, &ca);
	pthread_condattr_destroy(&ca);
	s->s_path = strdup(path);
	s->s_cpath = path_with(path, COMPACT_SUFFIX);
	s->s_ipath = path_with(path, IDX_SUFFIX);
	s->s_cipath = path_with(path, COMPACT_SUFFIX IDX_SUFFIX);
	if (s->s_path == NULL || s->s_cpath == NULL || s->s_ipath == NULL ||
	    s->s_cipath == NULL) {
		seterr(err, errlen, "%s", errstr());
		destroy(s);
		return NULL;
	}
	return s;
}

/*
 * Open s_path (creating it if missing), lock it, and read and check its
 * header into h and its size into *sizep. Nothing is written to a file
 * that exists.
 */
static int
open_file(struct store *s, struct hdr *h, uint64_t *sizep, char *err,
    size_t errlen)
{
	struct kvfile *f = &s->s_f;
	struct stat st;
	const char *path = s->s_path;
	ssize_t n;

	f->f_fd = open(path, O_RDWR | O_CLOEXEC);
	if (f->f_fd == -1 && errno == ENOENT) {
		if (create_file(s, NULL, NULL, 0, 0, 0, err, errlen) == -1)
			return -1;
		f->f_fd = open(path, O_RDWR | O_CLOEXEC);
	}
	if (f->f_fd == -1) {
		seterr(err, errlen, "open %s: %s", path, errstr());
		return -1;
	}
	if (lock_file(f->f_fd, F_WRLCK) == -1) {
		if (errno == EACCES || errno == EAGAIN)
			seterr(err, errlen, "%s: in use by another process",
			    path);
		else
			seterr(err, errlen, "lock %s: %s", path,
			    errstr());
		return -1;
	}
	if (fstat(f->f_fd, &st) == -1) {
		seterr(err, errlen, "stat %s: %s", path, errstr());
		return -1;
	}
	if (st.st_size < PAGE) {
		seterr(err, errlen, "%s: file too short (%lld bytes, a "
		    "header takes %d)", path, (long long)st.st_size, PAGE);
		errno = EINVAL;
		return -1;
	}
	n = pread(f->f_fd, h, sizeof(*h), 0);
	if (n != (ssize_t)sizeof(*h)) {
		seterr(err, errlen, "read %s: %s", path,
		    n == -1 ? errstr() : "short read");
		return -1;
	}
	if (check_header(h, st.st_size, path, err, errlen) == -1) {
		errno = EINVAL;
		return -1;
	}
	if ((uint64_t)(size_t)st.st_size != (uint64_t)st.st_size) {
		seterr(err, errlen, "%s: too big to map", path);
		errno = EFBIG;
		return -1;
	}
	*sizep = st.st_size;
	return 0;
}

/*
 * Delete what a crash left beside a live store: an unfinished compaction
 * and, when live, an unfinished full sync (store_create's file) or
 * salvage (which holds a lock on the store while it runs), with their
 * index files. Not the store's own index: open decides on that. Called
 * once the store file is known to be ours, and never for a store_create
 * file itself, whose path ends in the sync suffix.
 */
static int
remove_leftovers(struct store *s, int live, char *err, size_t errlen)
{
	static const char *const suffix[] = { COMPACT_SUFFIX IDX_SUFFIX,
	    SYNC_SUFFIX, SYNC_SUFFIX IDX_SUFFIX, SALVAGE_SUFFIX,
	    SALVAGE_SUFFIX IDX_SUFFIX };
	char *spath;
	int i, r = 0;

	if (unlink_later(s->s_cpath) == -1 && errno != ENOENT) {
		seterr(err, errlen, "unlink %s: %s", s->s_cpath,
		    errstr());
		return -1;
	}
	for (i = 0; i < (live ? 5 : 1) && r == 0; i++) {
		if ((spath = path_with(s->s_path, suffix[i])) == NULL) {
			seterr(err, errlen, "%s", errstr());
			return -1;
		}
		if (unlink_later(spath) == -1 && errno != ENOENT) {
			seterr(err, errlen, "unlink %s: %s", spath,
			    errstr());
			r = -1;
		}
		free(spath);
	}
	return r;
}

/*
 * Not closed cleanly: perhaps because a flush failed, after which the
 * kernel may keep pages the disk never got as clean cached data. Recovery
 * must read what the disk holds, so drop those: the header's page, then
 * the file's from the page that holds the synced mark the disk has (all
 * of it if the mark is bad or past the end). Below the mark every page
 * was synced, and the log never writes below its end again, so what is
 * cached there is what the disk holds. (Dropping the whole file cost a
 * 10M-key store's recovery 0.5 s, and the walk then read 1.5 GB back
 * from a disk still writing the rest.) Dirty pages, left by a kill -9,
 * stay: they are still written.
 */
static void
drop_unsynced(int fd, uint64_t size)
{
	struct hdr h;
	uint64_t from = 0;

	(void)posix_fadvise(fd, 0, PAGE, POSIX_FADV_DONTNEED);
	if (pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) &&
	    h.h_scrc == crc32c(&h.h_synced, sizeof(h.h_synced)) &&
	    h.h_synced <= size)
		from = h.h_synced / PAGE * PAGE;
	(void)posix_fadvise(fd, (off_t)from, 0, POSIX_FADV_DONTNEED);
}

/* Map the whole file, whose header h was checked, and take its geometry. */
static int
map_file(struct store *s, const struct hdr *h, uint64_t size, char *err,
    size_t errlen)
{
	struct kvfile *f = &s->s_f;
	void *p;

	if (h->h_clean != 1)
		drop_unsynced(f->f_fd, size);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, f->f_fd, 0);
	if (p == MAP_FAILED) {
		seterr(err, errlen, "mmap %s: %s", s->s_path,
		    errstr());
		return -1;
	}
	f->f_map = p;
	f->f_size = size;
	f->f_nbuckets = h->h_nbuckets;
	f->f_shift = shift_for(h->h_nbuckets);
	f->f_start = h->h_data_start;
	memcpy(&s->s_k0, h->h_seed, 8);
	memcpy(&s->s_k1, h->h_seed + 8, 8);
	return 0;
}

/*
 * Take the counters from a cleanly closed header, or rebuild them from
 * the log (recover); then mark the file open, on disk before any write.
 * The index is trusted with a clean header that names it (index_map);
 * else it is made anew, and filled from the log (recover, or, after a
 * clean close, replay, as nothing was lost); a version 2 file's buckets,
 * trusted alike, are copied from the file instead.
 */
static int
trust_or_recover(struct store *s, char *err, size_t errlen)
{
	struct kvfile *f = &s->s_f;
	struct hdr *hm = HDR(f);
	const char *why = NULL;
	uint64_t seq = 0;
	int r;

	if (hm->h_clean != 1)
		why = "not closed cleanly";
	else if (hm->h_mcrc != hdr_mcrc(hm))
		why = "header counters fail their checksum";
	else if (hm->h_data_end < f->f_start ||
	    hm->h_data_end > f->f_size || hm->h_data_end % 8 != 0 ||
	    hm->h_keys >= f->f_nbuckets || hm->h_last_seq < hm->h_base_seq ||
	    hm->h_garbage_bytes > hm->h_data_end - f->f_start)
		why = "header counters out of range";
	r = index_map(f, s->s_ipath, why == NULL && hm->h_version >= 3 ?
	    hm->h_idx_gen : 0);
	if (r == -1) {
		seterr(err, errlen, "index %s: %s", s->s_ipath, errstr());
		return -1;
	}
	if (why != NULL) {
		if (recover(s, why, err, errlen) == -1)
			return -1;
		hm = HDR(f);
	} else {
		f->f_end = hm->h_data_end;
		f->f_keys = hm->h_keys;
		f->f_live = hm->h_live_bytes;
		f->f_garbage = hm->h_garbage_bytes;
		s->s_last_seq = hm->h_last_seq;
		if (hm->h_version < 3)
			memcpy(BKT(f), f->f_map + PAGE, f->f_nbuckets *
			    sizeof(struct bucket));
		else if (r == 0) {
			if (replay(s, f->f_end, &seq, err, errlen) == -1)
				return -1;
			if (f->f_end > f->f_start)
				kv_log("info", "%s: index missing or not this "
				    "file's; rebuilt from the log (%" PRIu64
				    " keys)", s->s_path, f->f_keys);
		}
	}
	/* Whole now: its cold pages are read around, as a trusted one's. */
	(void)madvise(f->f_imap, index_size(f->f_nbuckets), MADV_NORMAL);
	if (hm->h_version < FORMAT_VERSION) {	/* the format comment says why */
		hm->h_version = FORMAT_VERSION;
		hm->h_icrc = hdr_icrc(hm);
	}
	/* A crash from here on must be detected, whatever gets written. The
	 * log up to f_end is on disk: closed so, or synced by recover. */
	hdr_store(f, s->s_last_seq, 0);
	hdr_synced(hm, f->f_end);
	if (msync(f->f_map, PAGE, MS_SYNC) == -1) {
		seterr(err, errlen, "msync %s: %s", s->s_path,
		    errstr());
		return -1;
	}
	s->s_want = s->s_durable = s->s_last_seq;
	s->s_wantend = f->f_end;
	s->s_syncfd = f->f_fd;
	s->s_syncifd = f->f_ifd;
	return 0;
}

/* The notify pipe, then the flusher thread. */
static int
start_flusher(struct store *s, char *err, size_t errlen)
{
	int i, fl, e;

	if (pipe(s->s_pipe) == -1) {
		seterr(err, errlen, "pipe: %s", errstr());
		return -1;
	}
	for (i = 0; i < 2; i++) {
		fl = fcntl(s->s_pipe[i], F_GETFL);
		if (fl == -1 ||
		    fcntl(s->s_pipe[i], F_SETFL, fl | O_NONBLOCK) == -1 ||
		    fcntl(s->s_pipe[i], F_SETFD, FD_CLOEXEC) == -1) {
			seterr(err, errlen, "pipe: %s", errstr());
			return -1;
		}
	}
	if ((e = start_thread(&s->s_tid, flusher, s)) != 0) {
		seterr(err, errlen, "pthread_create: %s", strerror(e));
		errno = e;
		return -1;
	}
	return 0;
}

/* store_open, and store_create's open of its file (live = 0). */
static struct store *
open_store(const char *path, enum store_fsync policy, int live, char *err,
    size_t errlen)
{
	struct store *s;
	struct hdr h;
	uint32_t one = 1;
	uint64_t size;
	int e;

	if (errlen > 0)
		err[0] = '\0';
	if (*(unsigned char *)&one != 1) {
		seterr(err, errlen, "big-endian hosts are not supported");
		errno = ENOTSUP;
		return NULL;
	}
	if ((s = store_alloc(path, policy, err, errlen)) == NULL)
		return NULL;
	/* Only once the header checks is the file known to be ours. */
	if (open_file(s, &h, &size, err, errlen) == -1 ||
	    remove_leftovers(s, live, err, errlen) == -1 ||
	    map_file(s, &h, size, err, errlen) == -1 ||
	    trust_or_recover(s, err, errlen) == -1 ||
	    start_flusher(s, err, errlen) == -1)
		goto fail;
	grow_ahead(s);
	/* A replay may have found the first expiry before the header's flag
	 * was on disk. Otherwise no key expires, and the walk, a miss per
	 * key (a second at 10M keys), is saved. */
	if (((HDR(&s->s_f)->h_flags & FLAG_EXPIRING) != 0 ||
	    s->s_replayed_expiry) && heap_rebuild(s) == -1)
		kv_log("warn", "%s: no memory for the expiry heap yet; "
		    "expiring keys are deleted once there is", s->s_path);
	return s;
fail:
	e = errno;
	destroy(s);
	errno = e;
	return NULL;
}

/* ---- Exported functions ---- */

struct store *
store_open(const char *path, enum store_fsync policy, char *err,
    size_t errlen)
{
	return open_store(path, policy, 1, err, errlen);
}

int
store_close(struct store *s)
{
	struct kvfile *f;
	int e = 0;

	if (s == NULL)
		return 0;
	f = &s->s_f;
	pthread_mutex_lock(&s->s_mu);
	s->s_stop = 1;
	s->s_bgfd = -1;		/* an unstarted sync of a copy to drop */
	pthread_cond_signal(&s->s_cv);
	pthread_mutex_unlock(&s->s_mu);
	pthread_join(s->s_tid, NULL);
	if (s->s_cphase != C_NONE)
		compact_abort(s, "info", "the store is closing");

	/* Everything else reaches the disk before clean = 1 does. */
	(void)stage_end(s);	/* a failure is s_ioerr */
	if (s->s_ioerr != 0)
		e = s->s_ioerr;
	else if (s->s_seal == SEAL_DONE)
		;	/* closed cleanly by seal_job */
	else if (msync(f->f_map, f->f_size, MS_SYNC) == -1)
		e = errno;
	else
		e = mark_clean(s);
	if (e != 0)
		kv_log("error", "%s: close: flush failed: %s", s->s_path,
		    strerror(e));
	destroy(s);
	if (e != 0) {
		errno = e;
		return -1;
	}
	return 0;
}

/*
 * The end of a clean close, once the log is synced: the index stamped with
 * a new generation and synced, the zeros past the log cut, and the header
 * marked clean, naming that index, and synced. Returns 0 or an errno.
 */
static int
mark_clean(struct store *s)
{
	struct kvfile *f = &s->s_f;
	uint64_t gen;

	if ((gen = index_seal(f)) == 0)
		return errno;
	trim(f);
	HDR(f)->h_idx_gen = gen;
	hdr_store(f, s->s_last_seq, 1);
	hdr_synced(HDR(f), f->f_end);
	return msync(f->f_map, PAGE, MS_SYNC) == -1 ? errno : 0;
}

/*
 * Give back the preallocated zeros after the log, so that a stopped store
 * takes its data's room on disk and no more; the next write grows it again.
 * (Past the mapping too: the flusher grows the file ahead, grow_job.)
 * Only the header page is touched after this (the mapping past the new end
 * would fault). Failing to trim loses nothing: the zeros stay.
 */
static void
trim(struct kvfile *f)
{
	uint64_t end = round_up(f->f_end, PAGE);

	if (ftruncate(f->f_fd, (off_t)end) == -1)
		kv_log("warn", "ftruncate to %" PRIu64 ": %s", end,
		    errstr());
}

static int
parse_id(const char *hex, uint8_t *id)
{
	static const char digits[] = "0123456789abcdef";
	const char *hi, *lo;
	int i;

	if (strlen(hex) != 32)
		return -1;
	for (i = 0; i < 16; i++) {
		if ((hi = strchr(digits, hex[2 * i])) == NULL ||
		    (lo = strchr(digits, hex[2 * i + 1])) == NULL ||
		    hex[2 * i] == '\0' || hex[2 * i + 1] == '\0')
			return -1;
		id[i] = (uint8_t)((hi - digits) << 4 | (lo - digits));
	}
	return 0;
}

/*
 * Make a new, empty store file at path (replacing any there) from the
 * given header fields, and open it loading: store_create's and
 * store_salvage's. seed NULL: a random one.
 */
struct store *
create_loading(const char *path, const uint8_t *id, const uint8_t *seed,
    uint32_t flags, uint64_t seq, uint64_t keys, enum store_fsync policy,
    char *err, size_t errlen)
{
	struct store tmp;	/* create_file reads the two paths only */
	struct store *s;
	int rc;

	memset(&tmp, 0, sizeof(tmp));
	tmp.s_path = (char *)path;
	if ((tmp.s_cpath = path_with(path, COMPACT_SUFFIX)) == NULL) {
		seterr(err, errlen, "%s", errstr());
		return NULL;
	}
	rc = create_file(&tmp, id, seed, seq, flags, keys, err, errlen);
	free(tmp.s_cpath);
	if (rc == -1 || (s = open_store(path, policy, 0, err, errlen)) == NULL)
		return NULL;
	s->s_loading = 1;
	s->s_f.f_readin = UINT64_MAX;	/* writeback_early's load_job */
	/* Without memory for it, the records go through the mapping. */
	s->s_f.f_stage = malloc(STAGE_BYTES);
	s->s_f.f_stoff = s->s_f.f_end;
	return s;
}

struct store *
store_create(struct store *live, const char *repl_id, const char *seed,
    uint64_t seq, uint64_t keys, enum store_fsync policy, char *err,
    size_t errlen)
{
	struct store *s;
	uint8_t id[16], k[16];
	char *path;

	if (parse_id(repl_id, id) == -1) {
		seterr(err, errlen, "bad replication id \"%.40s\"", repl_id);
		errno = EINVAL;
		return NULL;
	}
	if (seed != NULL && parse_id(seed, k) == -1) {
		seterr(err, errlen, "bad hash seed (not 32 hex digits)");
		errno = EINVAL;
		return NULL;
	}
	if ((path = path_with(live->s_path, SYNC_SUFFIX)) == NULL) {
		seterr(err, errlen, "%s", errstr());
		return NULL;
	}
	s = create_loading(path, id, seed != NULL ? k : NULL, FLAG_SYNCED,
	    seq, keys, policy, err, errlen);
	free(path);
	return s;
}

/*
 * Free cur, whose file a full sync has renamed over, with no flush (no one
 * reads that file again), and without making the loop pay for its size:
 * s, which replaces it, unmaps its mapping a slice at a time (unmap_old,
 * as after a compaction) and has its flusher close it, since that last
 * close frees its page cache (retire_fd: 0.3 s for 500 MB here).
 */
static void
retire_store(struct store *cur, struct store *s)
{
	pthread_mutex_lock(&cur->s_mu);
	cur->s_stop = 1;
	cur->s_bgfd = -1;
	pthread_cond_signal(&cur->s_cv);
	pthread_mutex_unlock(&cur->s_mu);
	pthread_join(cur->s_tid, NULL);
	retire_file(s, &cur->s_f);
	destroy(cur);
}

struct store *
store_adopt(struct store *cur, struct store *fresh, char *err,
    size_t errlen)
{
	struct store *s;
	char *from;

	if ((from = strdup(fresh->s_path)) == NULL) {
		seterr(err, errlen, "%s", errstr());
		store_discard(fresh);
		return NULL;
	}
	/* The new file takes the name; a copy of the old one is moot. */
	prep_cancel(cur);
	if (cur->s_cphase != C_NONE)
		compact_abort(cur, "info", "a full sync replaces the store");
	fresh->s_loading = 0;
	if (store_close(fresh) == -1) {
		seterr(err, errlen, "close %s: %s", from, errstr());
		unlink_pair(from);
		goto fail;
	}
	if (rename_pair(from, cur->s_path) == -1) {
		seterr(err, errlen, "rename %s to %s: %s", from, cur->s_path,
		    errstr());
		goto fail;
	}
	/* cur now holds unnamed files: writes to them would be lost. */
	if (store_sync_dir(cur->s_path) == -1) {
		seterr(err, errlen, "sync the directory of %s: %s",
		    cur->s_path, errstr());
		free(from);
		errno = ESTALE;
		return NULL;
	}
	if ((s = store_open(cur->s_path, cur->s_policy, err, errlen)) == NULL) {
		free(from);
		errno = ESTALE;
		return NULL;
	}
	retire_store(cur, s);
	free(from);
	return s;
fail:
	free(from);
	return NULL;
}

int
store_seal(struct store *s)
{
	int st, e;

	if (stage_end(s) == -1)
		return -1;
	pthread_mutex_lock(&s->s_mu);
	if (s->s_seal == SEAL_NONE) {
		s->s_seal = SEAL_ASKED;
		pthread_cond_signal(&s->s_cv);
	}
	st = s->s_seal;
	e = s->s_ioerr;
	pthread_mutex_unlock(&s->s_mu);
	if (st != SEAL_DONE)
		return 0;
	if (e != 0) {
		errno = e;
		return -1;
	}
	return 1;
}

int
store_set_repl_id(struct store *s, const char *repl_id)
{
	struct hdr *h = HDR(&s->s_f);
	uint8_t id[16];

	if (repl_id == NULL) {
		if (random_bytes(id, sizeof(id)) == -1)
			return -1;
	} else if (parse_id(repl_id, id) == -1) {
		errno = EINVAL;
		return -1;
	}
	memcpy(h->h_repl_id, id, sizeof(id));
	h->h_icrc = hdr_icrc(h);
	return msync(s->s_f.f_map, PAGE, MS_SYNC);
}

void
store_discard(struct store *s)
{
	char *path = strdup(s->s_path);

	(void)store_close(s);
	if (path != NULL)
		unlink_pair(path);
	free(path);
}

/*
 * XXX: the CRC is checked at recovery only: a cleanly closed file is
 * trusted, so bit rot in it is served as data.
 */
int
store_value_fd(struct store *s, const struct store_value *v, uint64_t *off)
{
	const struct kvfile *f = &s->s_f;

	if (v->data < f->f_map || v->len > f->f_size ||
	    (uint64_t)(v->data - f->f_map) > f->f_size - v->len) {
		errno = EINVAL;
		return -1;
	}
	*off = (uint64_t)(v->data - f->f_map);
	return fcntl(f->f_fd, F_DUPFD_CLOEXEC, 0);
}

int
store_get(struct store *s, const char *key, size_t klen,
    struct store_value *v)
{
	struct kvfile *f = &s->s_f;
	struct rec r;
	uint64_t i;

	if (klen == 0 || klen > STORE_MAX_KEY ||
	    !find(f, hash_key(s, key, klen), key, klen, &i))
		return 0;
	rec_read(f, BKT(f)[i].b_off, &r);
	v->data = r.r_val;
	v->len = r.r_vlen;
	v->seq = r.r_seq;
	v->expires = rec_expiry(&r);
	return 1;
}

int
store_put(struct store *s, const char *key, size_t klen, const char *val,
    size_t vlen, uint64_t seq, uint64_t *seqp)
{
	return store_put_exp(s, key, klen, val, vlen, 0, seq, seqp);
}

int
store_put_exp(struct store *s, const char *key, size_t klen,
    const char *val, size_t vlen, uint64_t expires, uint64_t seq,
    uint64_t *seqp)
{
	struct kvfile *f = &s->s_f;
	uint64_t h, i, size, off;
	int found, created;

	if (seqp != NULL)
		*seqp = 0;
	if (check_write(s, klen, vlen, seq) == -1)
		return -1;
	h = hash_key(s, key, klen);
	found = find(f, h, key, klen, &i);
	if (!found && f->f_keys + 1 > cap(f)) {
		if (s->s_group) {	/* store_group_begin made too little */
			errno = ENOSPC;
			return -1;
		}
		if (make_room(s, 1) == -1)
			return -1;
		found = find(f, h, key, klen, &i);
	}
	size = rec_size(klen, vlen + (expires != 0 ? 8 : 0));
	if (reserve(s, f, size) == -1)
		return -1;
	if (seq == 0)
		seq = s->s_last_seq + 1;
	off = append(f, REC_PUT, s->s_group ? REC_MORE : 0, key, klen, val,
	    vlen, expires, seq);
	if (s->s_group)
		s->s_glast = off;
	created = index_put(f, found, i, h, off, klen + vlen);
	if (s->s_loading && i > s->s_front)
		s->s_front = i;
	if (expires != 0)
		heap_note(s, expires, h);
	if (!s->s_loading)
		s->s_last_seq = seq;
	wrote(s, size);
	if (seqp != NULL)
		*seqp = seq;
	return created;
}

void
store_prefetch(struct store *s, const char *key, size_t klen)
{
	struct kvfile *f = &s->s_f;

	__builtin_prefetch(&BKT(f)[home(f, hash_key(s, key, klen))], 1);
}

int
store_del(struct store *s, const char *key, size_t klen, uint64_t seq,
    uint64_t *seqp)
{
	struct kvfile *f = &s->s_f;
	uint64_t h, i, size, off;
	int found;

	if (seqp != NULL)
		*seqp = 0;
	if (check_write(s, klen, 0, seq) == -1)
		return -1;
	h = hash_key(s, key, klen);
	found = find(f, h, key, klen, &i);
	if (!found && seq == 0)
		return 0;
	/*
	 * With an explicit seq, a missing key still gets a tombstone: it
	 * carries seq, so a replica's position survives a crash.
	 */
	size = rec_size(klen, 0);
	if (reserve(s, f, size) == -1)
		return -1;
	if (seq == 0)
		seq = s->s_last_seq + 1;
	off = append(f, REC_DEL, s->s_group ? REC_MORE : 0, key, klen,
	    NULL, 0, 0, seq);
	if (s->s_group)
		s->s_glast = off;
	if (found)
		index_del(f, i, size);
	else
		f->f_garbage += size;
	if (!s->s_loading)
		s->s_last_seq = seq;
	wrote(s, size);
	if (seqp != NULL)
		*seqp = seq;
	return found;
}

int
store_group_begin(struct store *s, uint64_t nkeys, uint64_t nbytes)
{
	if (s->s_failed != 0) {
		errno = s->s_failed;
		return -1;
	}
	if ((s->s_f.f_keys + nkeys > cap(&s->s_f) &&
	    make_room(s, nkeys) == -1) || reserve(s, &s->s_f, nbytes) == -1)
		return -1;
	s->s_group = 1;
	s->s_gbytes = 0;
	s->s_glast = 0;
	return 0;
}

void
store_group_end(struct store *s)
{
	struct kvfile *f = &s->s_f;

	if (!s->s_group)
		return;
	s->s_group = 0;
	if (s->s_glast == 0)
		return;
	rec_set_flags(REC_AT(f, s->s_glast),
	    (unsigned char)REC_AT(f, s->s_glast)[5] & ~REC_MORE);
	wrote(s, s->s_gbytes);
}

struct cand {
	uint64_t	 c_hash;
	uint64_t	 c_off;
};

static int	 cand_cmp(const void *, const void *);
static void	 scan_keep(struct store *, struct cand *, size_t);

static int
cand_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct cand *)a)->c_hash;
	uint64_t y = ((const struct cand *)b)->c_hash;

	return x < y ? -1 : x > y;
}

/*
 * Sort by hash. The walk leaves the entries nearly sorted (each sits a
 * probe or two past its home), so insertion sort costs about a compare
 * per entry, where qsort took 0.44 s of a 2.3 s scan of 10M keys (the
 * scan now takes 1.6 s instead of 2.6 here). A table far from sorted (it
 * cannot be while the seed is secret) goes to qsort once the moves pass
 * 8 per entry.
 */
static void
cand_sort(struct cand *cv, size_t n)
{
	struct cand t;
	size_t i, j, moves = 0;

	for (i = 1; i < n; i++) {
		t = cv[i];
		for (j = i; j > 0 && cv[j - 1].c_hash > t.c_hash; j--)
			cv[j] = cv[j - 1];
		cv[j] = t;
		if ((moves += i - j) > 8 * n) {
			qsort(cv, n, sizeof(*cv), cand_cmp);
			return;
		}
	}
}

/*
 * Walk the buckets from home(lo), keeping entries with hash >= lo. Reaching
 * an empty bucket k, every key hashed in [lo, k << shift) has been seen: its
 * home is in [home(lo), k) and it cannot lie past an empty bucket. So stop
 * at the first empty bucket with limit such keys in hand, sort them and
 * visit the smallest. Entries seen before k that belong past it are those of
 * a cluster wrapping around the end of the table; they are needed, and
 * picked up, only when the walk reaches the end. The cursor is a hash, not
 * a bucket, so it survives any change to the table. The buffer holds limit
 * entries plus those of one cluster.
 */
size_t
store_scan(struct store *s, uint64_t *cursor, size_t limit,
    int (*fn)(void *arg, const char *key, size_t klen,
    const struct store_value *v), void *arg)
{
	struct kvfile *f = &s->s_f;
	const struct bucket *b = BKT(f);
	struct cand *cv, *ncv;
	struct store_value v;
	struct rec r;
	uint64_t lo = *cursor, start, i, bound;
	size_t n = 0, ncv_max, nfit = 0, m, k, j;
	int all = 0, enough = 0;

	if (lo == UINT64_MAX || limit == 0)
		return 0;
	/* Taken, so that a call from fn would not share it. */
	cv = s->s_scanbuf;
	ncv_max = s->s_scancap;
	s->s_scanbuf = NULL;
	s->s_scancap = 0;
	start = home(f, lo);
	for (i = start;; i++) {
		if (i == f->f_nbuckets) {
			all = 1;
			break;
		}
		if (b[i].b_off == 0) {
			if (nfit >= limit)
				break;
			continue;
		}
		/* The record is read (and checked) below, once, in order. */
		if (b[i].b_hash < lo)
			continue;
		if (n == ncv_max) {
			ncv_max = ncv_max == 0 ? (limit < 4096 ? limit : 4096) +
			    64 : ncv_max * 2;
			if ((ncv = resize(cv, n * sizeof(*cv),
			    ncv_max * sizeof(*cv))) == NULL)
				goto fail;
			cv = ncv;
		}
		cv[n].c_hash = b[i].b_hash;
		cv[n++].c_off = b[i].b_off;
		if (home(f, b[i].b_hash) <= i)
			nfit++;
	}
	if (all) {
		/* The cluster that wrapped from the end to the front. */
		for (i = 0; i < start && b[i].b_off != 0; i++) {
			if (b[i].b_hash < lo)
				continue;
			if (n == ncv_max) {
				ncv_max = ncv_max == 0 ? 64 : ncv_max * 2;
				ncv = resize(cv, n * sizeof(*cv),
				    ncv_max * sizeof(*cv));
				if (ncv == NULL)
					goto fail;
				cv = ncv;
			}
			cv[n].c_hash = b[i].b_hash;
			cv[n++].c_off = b[i].b_off;
		}
		m = n;
	} else {
		bound = i << f->f_shift;
		for (j = m = 0; j < n; j++)
			if (cv[j].c_hash < bound)
				cv[m++] = cv[j];
	}
	cand_sort(cv, m);
	k = m < limit ? m : limit;
	if (k > 0 && k < m && cv[k].c_hash == cv[k - 1].c_hash) {
		/* Never split keys of equal hash across pages. */
		for (j = k - 1; j > 0 && cv[j - 1].c_hash == cv[k].c_hash; j--)
			;
		if (j > 0)
			k = j;
		else
			while (k < m && cv[k].c_hash == cv[0].c_hash)
				k++;
	}
	for (j = 0; j < k; j++) {
		/* The cursor resumes at a hash, so a hash is visited whole. */
		if (enough && cv[j].c_hash != cv[j - 1].c_hash) {
			k = j;
			break;
		}
		/*
		 * Records lie in log order, not hash order: each is a cache
		 * miss. Ask for a few ahead so that they overlap.
		 */
		if (j + SCAN_AHEAD < k &&
		    cv[j + SCAN_AHEAD].c_off <= f->f_size - 128) {
			__builtin_prefetch(f->f_map + cv[j + SCAN_AHEAD].c_off);
			__builtin_prefetch(f->f_map + cv[j + SCAN_AHEAD].c_off +
			    64);
		}
		if (!rec_fits(f, cv[j].c_off))
			continue;
		rec_read(f, cv[j].c_off, &r);
		v.data = r.r_val;
		v.len = r.r_vlen;
		v.seq = r.r_seq;
		v.expires = rec_expiry(&r);
		if (fn(arg, r.r_key, r.r_klen, &v))
			enough = 1;
	}
	if (all && k == m)
		*cursor = UINT64_MAX;
	else
		*cursor = cv[k - 1].c_hash + 1;
	scan_keep(s, cv, ncv_max);
	return k;
fail:
	scan_keep(s, cv, ncv_max);
	errno = ENOMEM;
	return 0;
}

/*
 * Keep store_scan's buffer for the next call, up to SCAN_KEEP bytes: a
 * snapshot scans 4,096 keys at a time, and malloc mapped and unmapped
 * their 64 KiB each time (an munmap flushes the TLB of every CPU the
 * process runs on: 11 % of a primary's loop in a full sync).
 */
static void
scan_keep(struct store *s, struct cand *cv, size_t cap)
{
	if (cap * sizeof(*cv) <= SCAN_KEEP && s->s_scanbuf == NULL) {
		s->s_scanbuf = cv;
		s->s_scancap = cap;
	} else
		free(cv);
}

/* ---- Expiry: a min-heap of (expiry, key hash) ---- */

/*
 * The heap holds an entry per put with an expiry, 16 bytes each, found by
 * hash rather than by offset so that compaction and growth leave it valid.
 * A key rewritten or deleted leaves its entry behind, stale: when popped,
 * it names no key that is due, and is dropped. So that renewals cannot
 * grow it without end, it is pruned of its stale entries once it holds
 * twice the entries it kept at its last pruning, plus HEAP_SLACK. A
 * pruning looks at PRUNE_LOOKS entries per put with an expiry, a probe
 * each, from the last entry to the first: a put never waits for more (a
 * million entries in one go held the loop about 100 ms), and the heap
 * grows by a quarter at most meanwhile, so it holds at most 40 bytes per
 * expiring key and 20 KiB besides. Pruning, not a rebuild from the
 * buckets: a lock renewed on a store of 10M keys would have walked them
 * all every 1,024 renewals, about 300 ms on the loop.
 */

static void
heap_up(struct expiry *hp, size_t i)
{
	struct expiry x = hp[i];

	for (; i > 0 && hp[(i - 1) / 2].x_at > x.x_at; i = (i - 1) / 2)
		hp[i] = hp[(i - 1) / 2];
	hp[i] = x;
}

static void
heap_down(struct expiry *hp, size_t n, size_t i)
{
	struct expiry x = hp[i];
	size_t c;

	while ((c = 2 * i + 1) < n) {
		if (c + 1 < n && hp[c + 1].x_at < hp[c].x_at)
			c++;
		if (hp[c].x_at >= x.x_at)
			break;
		hp[i] = hp[c];
		i = c;
	}
	hp[i] = x;
}

/* Add (at, h) to s's heap; -1 with errno ENOMEM. */
static int
heap_add(struct store *s, uint64_t at, uint64_t h)
{
	struct expiry *p;
	size_t cap;

	if (s->s_nheap == s->s_heapcap) {
		cap = s->s_heapcap == 0 ? 64 : s->s_heapcap * 2;
		if ((p = resize(s->s_heap, s->s_heapcap * sizeof(*p),
		    cap * sizeof(*p))) == NULL)
			return -1;
		s->s_heap = p;
		s->s_heapcap = cap;
	}
	s->s_heap[s->s_nheap].x_at = at;
	s->s_heap[s->s_nheap].x_hash = h;
	heap_up(s->s_heap, s->s_nheap++);
	return 0;
}

/*
 * Build the heap from the buckets: at open, and after an allocation failed
 * (s_heaplost). XXX: it reads every bucket and the head of every record,
 * a cache miss each, in one go: about 30 ms per million keys on the loop.
 * Open skips it when no record can have an expiry.
 */
static int
heap_rebuild(struct store *s)
{
	struct kvfile *f = &s->s_f;
	const struct bucket *b = BKT(f);
	struct rec r;
	uint64_t i;

	free(s->s_heap);
	s->s_heap = NULL;
	s->s_nheap = s->s_heapcap = s->s_prunefrom = 0;
	for (i = 0; i < f->f_nbuckets; i++) {
		if (b[i].b_off == 0 || !rec_fits(f, b[i].b_off) ||
		    (REC_AT(f, b[i].b_off)[5] & REC_EXPIRES) == 0)
			continue;
		rec_read(f, b[i].b_off, &r);
		if (heap_add(s, rec_expiry(&r), b[i].b_hash) == -1) {
			s->s_heaplost = 1;
			s->s_heapmark = s->s_nheap;
			return -1;
		}
	}
	s->s_heaplost = 0;
	s->s_heapmark = s->s_nheap;
	if (s->s_nheap > 0)
		mark_expiring(s);	/* a replay may have found the first */
	return 0;
}

/* Flag the files: a record may carry an expiry (see the format). */
static void
mark_expiring(struct store *s)
{
	struct hdr *h = HDR(&s->s_f);

	if ((h->h_flags & FLAG_EXPIRING) == 0) {
		h->h_flags |= FLAG_EXPIRING;
		h->h_icrc = hdr_icrc(h);
	}
	if (s->s_cphase != C_NONE && (HDR(&s->s_c)->h_flags &
	    FLAG_EXPIRING) == 0) {
		HDR(&s->s_c)->h_flags |= FLAG_EXPIRING;
		HDR(&s->s_c)->h_icrc = hdr_icrc(HDR(&s->s_c));
	}
}

/*
 * The next PRUNE_LOOKS steps of the pruning under way: drop the entries
 * that no longer name a key with that expiry. An entry moved up past the
 * pruning's place by a removal is not looked at again: it stays, for the
 * next pruning or its pop.
 */
static void
heap_prune(struct store *s)
{
	size_t i;
	int looks;

	for (looks = 0; looks < PRUNE_LOOKS && s->s_prunefrom > 0; looks++) {
		i = --s->s_prunefrom;
		if (i < s->s_nheap && expiring_key(s, s->s_heap[i].x_hash,
		    s->s_heap[i].x_at, 0, NULL) == 0)
			heap_remove(s, i);
	}
	if (s->s_prunefrom == 0)	/* done: what it kept */
		s->s_heapmark = s->s_nheap > s->s_pruneadded ?
		    s->s_nheap - s->s_pruneadded : 0;
}

/* Remove entry i: the last one takes its place and moves to where it
 * belongs, down or up. */
static void
heap_remove(struct store *s, size_t i)
{
	if (i == --s->s_nheap)
		return;
	s->s_heap[i] = s->s_heap[s->s_nheap];
	heap_down(s->s_heap, s->s_nheap, i);
	heap_up(s->s_heap, i);
}

/* A put of key hash h with expiry at was logged and indexed. */
static void
heap_note(struct store *s, uint64_t at, uint64_t h)
{
	mark_expiring(s);
	if (s->s_prunefrom == 0 &&
	    s->s_nheap >= 2 * s->s_heapmark + HEAP_SLACK) {
		s->s_prunefrom = s->s_nheap;
		s->s_pruneadded = 0;
	}
	if (s->s_prunefrom > 0)
		heap_prune(s);
	if (heap_add(s, at, h) == -1)
		s->s_heaplost = 1;
	else if (s->s_prunefrom > 0)
		s->s_pruneadded++;
}

/*
 * The key of hash h that expires at at, or if at is 0 that is due by now:
 * its length (and the key copied into key, unless NULL), or 0 if none.
 */
static size_t
expiring_key(struct store *s, uint64_t h, uint64_t at, uint64_t now,
    char *key)
{
	struct kvfile *f = &s->s_f;
	const struct bucket *b = BKT(f);
	struct rec r;
	uint64_t i, n, e, mask = f->f_nbuckets - 1;

	for (i = home(f, h), n = 0; n < f->f_nbuckets && b[i].b_off != 0;
	    i = (i + 1) & mask, n++) {
		if (b[i].b_hash != h || !rec_fits(f, b[i].b_off))
			continue;
		rec_read(f, b[i].b_off, &r);
		e = rec_expiry(&r);
		if (at != 0 ? e == at : e != 0 && e <= now) {
			if (key != NULL)
				memcpy(key, r.r_key, r.r_klen);
			return r.r_klen;
		}
	}
	return 0;
}

int
store_expire(struct store *s, uint64_t now, int max,
    void (*fn)(void *arg, const char *key, size_t klen, uint64_t seq),
    void *arg)
{
	char key[STORE_MAX_KEY];
	struct expiry x;
	uint64_t seq;
	size_t klen;
	int n = 0, looks = 0;

	if (s->s_heaplost && heap_rebuild(s) == -1)
		return -1;
	while (n < max && looks++ < EXPIRE_LOOKS * max && s->s_nheap > 0 &&
	    s->s_heap[0].x_at <= now) {
		x = s->s_heap[0];
		s->s_heap[0] = s->s_heap[--s->s_nheap];
		heap_down(s->s_heap, s->s_nheap, 0);
		if ((klen = expiring_key(s, x.x_hash, 0, now, key)) == 0)
			continue;	/* stale */
		if (store_del(s, key, klen, 0, &seq) == -1) {
			(void)heap_add(s, x.x_at, x.x_hash);	/* has room */
			return -1;
		}
		fn(arg, key, klen, seq);
		n++;
	}
	return n;
}

/*
 * Usually well under 1 ms: a compaction's files are made and allocated by
 * the flusher (prep_job), and the loop only maps them. XXX: unless the log
 * outgrows the wait (prep_overdue) and the loop makes them itself, ~2-3 ms
 * at 200 MB; and finishing one (see compact_finish) can take longer.
 */
void
store_step(struct store *s)
{
	int e;

	pthread_mutex_lock(&s->s_mu);
	e = s->s_ioerr;
	pthread_mutex_unlock(&s->s_mu);
	note_failure(s, e);
	unmap_old(s, UNMAP_CHUNK);
	/* Held, a copy that has caught up still ends: under FSYNC=always
	 * durability waits for its rename. */
	if (s->s_chold && (s->s_cphase == C_NONE ||
	    s->s_cpos < s->s_f.f_end))
		return;
	maybe_compact(s);
	if (s->s_cphase != C_NONE)
		(void)compact_work(s, STEP_BYTES, mono_ns() + STEP_NSEC, 0);
}

void
store_hold_compaction(struct store *s, int hold)
{
	s->s_chold = hold;
}

int
store_notify_fd(struct store *s)
{
	return s->s_pipe[0];
}

uint64_t
store_durable_seq(struct store *s)
{
	char buf[64];
	uint64_t d;
	int got;

	/*
	 * s_notified is set (under s_mu) before its byte is written, and
	 * cleared (under s_mu) only once a byte was read: so the pipe is
	 * empty while it is clear (and holds a byte, or is about to, while
	 * it is set), and a write that finds nothing to drain (the usual
	 * case, once per write) costs no system call.
	 */
	pthread_mutex_lock(&s->s_mu);
	if (NEWS(s)) {
		got = 0;
		while (read(s->s_pipe[0], buf, sizeof(buf)) > 0)
			got = 1;
		if (got)
			__atomic_store_n(&s->s_notified, 0, __ATOMIC_RELAXED);
	}
	d = s->s_durable;
	pthread_mutex_unlock(&s->s_mu);
	return d;
}

int
store_error(struct store *s)
{
	int e;

	pthread_mutex_lock(&s->s_mu);
	e = s->s_ioerr;
	pthread_mutex_unlock(&s->s_mu);
	note_failure(s, e);
	return s->s_failed;
}

uint64_t
store_last_seq(struct store *s)
{
	return s->s_last_seq;
}

/* 16 bytes as 32 hex digits and a NUL. */
void
hex16(const uint8_t *in, char *out)
{
	int i;

	for (i = 0; i < 16; i++) {
		out[2 * i] = "0123456789abcdef"[in[i] >> 4];
		out[2 * i + 1] = "0123456789abcdef"[in[i] & 15];
	}
	out[32] = '\0';
}

void
store_seed(struct store *s, char *out)
{
	hex16(HDR(&s->s_f)->h_seed, out);
}

void
store_stats(struct store *s, struct store_stats *st)
{

	memset(st, 0, sizeof(*st));
	st->keys = s->s_f.f_keys;
	st->live_bytes = s->s_f.f_live;
	st->log_bytes = s->s_f.f_end - s->s_f.f_start;
	st->garbage_bytes = s->s_f.f_garbage;
	st->file_bytes = s->s_f.f_size + index_size(s->s_f.f_nbuckets) +
	    (s->s_cphase != C_NONE ? s->s_c.f_size +
	    index_size(s->s_c.f_nbuckets) : 0);
	st->last_seq = s->s_last_seq;
	pthread_mutex_lock(&s->s_mu);
	st->durable_seq = s->s_durable;
	st->fsyncs = s->s_fsyncs;
	pthread_mutex_unlock(&s->s_mu);
	st->compactions = s->s_compactions;
	st->recovered_records = s->s_recovered_records;
	st->dropped_bytes = s->s_dropped_bytes;
	st->expiries = s->s_nheap;
	st->index_growths = s->s_igrowths;
	st->recovered = s->s_recovered;
	st->compacting = s->s_cphase != C_NONE || s->s_prepping;
	st->synced = (HDR(&s->s_f)->h_flags & FLAG_SYNCED) != 0;
	hex16(HDR(&s->s_f)->h_repl_id, st->repl_id);
}

/*
 * store_check.c: a stopped store's file, checked and salvaged: `kvstore
 * check` and `kvstore salvage` (store_check, store_salvage), for the
 * operator of a node that refused to start on a damaged log (see the
 * synced end in store.c's format comment). Both map the file read-only
 * under a read lock, so never while a server has it, and walk its log
 * record by record, finding it again past each bad stretch at the next
 * 8-byte boundary where a whole record passes its CRC (next_valid).
 * store_check changes nothing; store_salvage writes a new file beside the
 * old one from every valid record but those of a transaction cut short
 * (check_walk), then renames it into place, keeping the old file.
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
#include <time.h>
#include <unistd.h>

#include "fmt.h"
#include "hash.h"
#include "store.h"
#include "util.h"
#include "store_int.h"

/*
 * A store file opened read-only for store_check and store_salvage: mapped
 * whole, its header checked as far as it can be, under a read lock so that
 * no server writes it meanwhile (and none can open it).
 */
struct checked {
	struct kvfile	 k_f;
	struct hdr	 k_h;		/* a copy of the header */
	int		 k_hdr_ok;	/* icrc and geometry good */
	uint64_t	 k_k0, k_k1;	/* SipHash key, if k_hdr_ok */
	uint64_t	 k_badidx;	/* records the buckets disagree with */
};

static int	 check_open(const char *, struct checked *,
		    struct store_report *, char *, size_t);
static void	 check_close(struct checked *);
static int	 check_index(const char *, struct checked *);
static int	 check_walk(struct checked *, struct store_report *,
		    int (*)(void *, const struct rec *, uint64_t), void *,
		    void (*)(void *, uint64_t, uint64_t, int, const char *,
		    size_t), void *);
static uint64_t	 key_hash(const struct checked *, const char *, size_t);
static int	 check_rec_index(void *, const struct rec *, uint64_t);
static void	 check_buckets(struct checked *, struct store_report *);
static int	 kept_name(const char *, char *, size_t);
static int	 salvage_into(struct checked *, const char *,
		    const struct store_report *, struct store_report *,
		    char *, size_t);

/* ---- Reading a file ---- */

/*
 * Open and map path read-only into k, its header checked into rep
 * (rep->header says what is wrong; the log is then looked for anywhere
 * past the header page). -1 with err if it cannot be read or is not a
 * store file of this version.
 */
static int
check_open(const char *path, struct checked *k, struct store_report *rep,
    char *err, size_t errlen)
{
	struct kvfile *f = &k->k_f;
	struct stat st;
	char why[128];
	void *p;

	memset(k, 0, sizeof(*k));
	memset(rep, 0, sizeof(*rep));
	f->f_fd = f->f_ifd = -1;
	if ((f->f_fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		seterr(err, errlen, "open %s: %s", path, errstr());
		return -1;
	}
	if (lock_file(f->f_fd, F_RDLCK) == -1) {
		if (errno == EACCES || errno == EAGAIN)
			seterr(err, errlen, "%s: in use by another process "
			    "(stop the server first)", path);
		else
			seterr(err, errlen, "lock %s: %s", path,
			    errstr());
		goto fail;
	}
	if (fstat(f->f_fd, &st) == -1) {
		seterr(err, errlen, "stat %s: %s", path, errstr());
		goto fail;
	}
	if (st.st_size < PAGE ||
	    (uint64_t)(size_t)st.st_size != (uint64_t)st.st_size) {
		seterr(err, errlen, "%s: not a store file (%lld bytes)", path,
		    (long long)st.st_size);
		goto fail;
	}
	p = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED, f->f_fd, 0);
	if (p == MAP_FAILED) {
		seterr(err, errlen, "mmap %s: %s", path, errstr());
		goto fail;
	}
	f->f_map = p;
	f->f_size = st.st_size;
	memcpy(&k->k_h, p, sizeof(k->k_h));
	if (memcmp(k->k_h.h_magic, MAGIC, sizeof(k->k_h.h_magic)) != 0 ||
	    k->k_h.h_version < 1 || k->k_h.h_version > FORMAT_VERSION) {
		/* Not ours, or newer: nothing here may be read as records. */
		(void)check_header(&k->k_h, f->f_size, path, err, errlen);
		goto fail;
	}
	k->k_hdr_ok = check_header(&k->k_h, f->f_size, path, why,
	    sizeof(why)) == 0;
	if (!k->k_hdr_ok) {
		/* Where the log starts is lost: look for records anywhere
		 * past the header page (buckets hold no valid CRC). why
		 * starts with "path: ". */
		seterr(rep->header, sizeof(rep->header), "%s", why +
		    strlen(path) + 2);
		f->f_start = PAGE;
		return 0;
	}
	f->f_nbuckets = k->k_h.h_nbuckets;
	f->f_shift = shift_for(f->f_nbuckets);
	f->f_start = k->k_h.h_data_start;
	memcpy(&k->k_k0, k->k_h.h_seed, 8);
	memcpy(&k->k_k1, k->k_h.h_seed + 8, 8);
	if (k->k_h.h_mcrc != hdr_mcrc(&k->k_h))
		seterr(rep->header, sizeof(rep->header), "header counters "
		    "fail their checksum (an open rebuilds them from the log)");
	else
		rep->clean = k->k_h.h_clean == 1;
	rep->synced_end = synced_end(f);
	return 0;
fail:
	check_close(k);
	return -1;
}

/*
 * Map the buckets a clean open of k would trust, read-only: a version 2
 * file's own, or its index file's if that is the one its header names.
 * -1 if there is none such (open would rebuild it from the log).
 */
static int
check_index(const char *path, struct checked *k)
{
	struct kvfile *f = &k->k_f;
	char *ipath;
	void *p;

	if (k->k_h.h_version < 3) {
		f->f_imap = f->f_map;
		return 0;
	}
	if ((ipath = path_with(path, IDX_SUFFIX)) == NULL)
		return -1;
	f->f_ifd = open(ipath, O_RDONLY | O_CLOEXEC);
	free(ipath);
	if (f->f_ifd == -1 ||
	    !index_match(f->f_ifd, f->f_nbuckets, k->k_h.h_idx_gen))
		return -1;
	p = mmap(NULL, index_size(f->f_nbuckets), PROT_READ, MAP_SHARED,
	    f->f_ifd, 0);
	if (p == MAP_FAILED)
		return -1;
	f->f_imap = p;
	return 0;
}

static void
check_close(struct checked *k)
{
	struct kvfile *f = &k->k_f;

	if (f->f_imap != NULL && f->f_imap != f->f_map)
		(void)munmap(f->f_imap, index_size(f->f_nbuckets));
	if (f->f_map != NULL)
		(void)munmap(f->f_map, f->f_size);
	if (f->f_fd != -1)
		(void)close(f->f_fd);	/* read-only */
	if (f->f_ifd != -1)
		(void)close(f->f_ifd);
}

/*
 * A transaction (a group of records, store.c) as check_walk follows it.
 * Its records are contiguous, so a bad range inside one cuts it: the part
 * before the range is never passed on, and neither is what follows the
 * range up to the next group's end when it may be the rest (may_be_rest).
 */
struct group {
	uint64_t	 g_first;	/* offset of its first record seen */
	uint64_t	 g_n;		/* its records seen */
	uint64_t	 g_last_seq;	/* the seq of the last of them */
	int		 g_open;	/* a group's end is still to come */
	int		 g_rest;	/* what is seen is the rest of a cut one */
};

static int	 walk_rec(struct checked *, struct group *,
		    struct store_report *, const struct rec *, uint64_t,
		    int (*)(void *, const struct rec *, uint64_t), void *);
static void	 cut_group(struct group *, struct store_report *);
static int	 may_be_rest(const struct checked *, const struct group *,
		    uint64_t, uint64_t);

/*
 * Walk every valid record of k's log in order, passing each to rec_fn
 * (if not NULL; nonzero stops the walk with -1) as open would replay it:
 * a transaction's records only once its last is seen, and never those of
 * one cut short (rep->cut_records counts them). Each stretch of log
 * between records that holds none goes to range_fn (as store_check's fn).
 * Fills rep's counts of records, of ranges and of records cut short.
 */
static int
check_walk(struct checked *k, struct store_report *rep,
    int (*rec_fn)(void *, const struct rec *, uint64_t), void *rec_arg,
    void (*range_fn)(void *, uint64_t, uint64_t, int, const char *,
    size_t), void *range_arg)
{
	const struct kvfile *f = &k->k_f;
	struct group g;
	struct rec r, prev;
	uint64_t off = f->f_start, next;
	int damaged, have_prev = 0;

	memset(&g, 0, sizeof(g));
	rep->log_end = round_up(written_end(f, f->f_start), 8);
	if (rep->log_end > f->f_size)
		rep->log_end = f->f_size;
	/* Without a header, the buckets before the first record are none of
	 * the log's. */
	if (!k->k_hdr_ok && (off = next_valid(f, off, rep->log_end)) ==
	    UINT64_MAX)
		off = f->f_start;
	for (;;) {
		for (; off < rep->log_end && rec_valid(f, off, &r);
		    off += r.r_size) {
			if (walk_rec(k, &g, rep, &r, off, rec_fn, rec_arg) != 0)
				return -1;
			rep->records++;
			if (r.r_seq > rep->last_seq)
				rep->last_seq = r.r_seq;
			if (rep->bad_ranges == 0)
				rep->good_seq = rep->last_seq;
			prev = r;
			have_prev = 1;
		}
		if (off >= rep->log_end)
			break;
		next = next_valid(f, off + 8, rep->log_end);
		if (next == UINT64_MAX)
			next = rep->log_end;
		if (g.g_open) {
			cut_group(&g, rep);
			g.g_open = g.g_rest = may_be_rest(k, &g, off, next);
		}
		damaged = !k->k_hdr_ok || off < rep->synced_end;
		if (rep->bad_ranges++ == 0)
			rep->first_bad = off;
		rep->bad_bytes += next - off;
		rep->damaged += damaged;
		if (range_fn != NULL)
			range_fn(range_arg, off, next - off, damaged,
			    have_prev ? prev.r_key : NULL,
			    have_prev ? prev.r_klen : 0);
		off = next;
	}
	if (g.g_open)		/* at the log's end: open drops it too */
		cut_group(&g, rep);
	return 0;
}

/*
 * One valid record at off, for check_walk: a record alone goes to rec_fn
 * at once, a group's once its last record is here (its records are
 * contiguous: read again from the first).
 */
static int
walk_rec(struct checked *k, struct group *g, struct store_report *rep,
    const struct rec *r, uint64_t off,
    int (*rec_fn)(void *, const struct rec *, uint64_t), void *rec_arg)
{
	struct rec gr;
	uint64_t o, i;

	if (!g->g_open && (r->r_flags & REC_MORE) == 0)
		return rec_fn != NULL ? rec_fn(rec_arg, r, off) : 0;
	if (!g->g_open) {
		g->g_open = 1;
		g->g_first = off;
		g->g_n = 0;
	}
	g->g_n++;
	g->g_last_seq = r->r_seq;
	if ((r->r_flags & REC_MORE) != 0)
		return 0;
	g->g_open = 0;
	if (g->g_rest) {
		g->g_rest = 0;
		cut_group(g, rep);
		return 0;
	}
	for (o = g->g_first, i = 0; rec_fn != NULL && i < g->g_n;
	    o += gr.r_size, i++)
		if (!rec_valid(&k->k_f, o, &gr) || rec_fn(rec_arg, &gr, o) != 0)
			return -1;
	return 0;
}

/* Count the records of g seen so far as cut short. */
static void
cut_group(struct group *g, struct store_report *rep)
{
	if (rep->cut_records == 0)
		rep->first_cut = g->g_first;
	rep->cut_records += g->g_n;
	g->g_n = 0;
}

/*
 * Whether the record at next, after a bad range from off that cut g, may
 * be the rest of g. Its writes took contiguous seqs, so it may not if the
 * seqs between g's last and it could not all fit in the range: a record
 * taken for the rest is the cost of a range that hides where g ended.
 */
static int
may_be_rest(const struct checked *k, const struct group *g, uint64_t off,
    uint64_t next)
{
	struct rec r;

	if (!rec_valid(&k->k_f, next, &r) || r.r_seq <= g->g_last_seq)
		return 0;
	return r.r_seq - g->g_last_seq - 1 <= (next - off) / rec_size(1, 0);
}

/* ---- Checking ---- */

/* hash_key's hash, under the checked file's seed. */
static uint64_t
key_hash(const struct checked *k, const char *key, size_t klen)
{
	uint64_t h;

	h = siphash(k->k_k0, k->k_k1, (const unsigned char *)key, klen);
	return h == UINT64_MAX ? h - 1 : h;
}

/*
 * Hold a cleanly closed file's buckets, which store_open trusts, to its
 * log: each bucket must point at a valid put of a key with its hash, no
 * empty bucket may lie between a key's home and it, no record's key may
 * be found at an earlier record, and the count must match the header (a
 * lost bucket shows there: without an index of our own, a put whose key
 * is missing may have been deleted since). Counts the disagreements in
 * rep->bad_buckets.
 */
static int
check_rec_index(void *arg, const struct rec *r, uint64_t off)
{
	struct checked *k = arg;
	const struct kvfile *f = &k->k_f;
	uint64_t i, h;
	int found;

	h = key_hash(k, r->r_key, r->r_klen);
	found = find(f, h, r->r_key, r->r_klen, &i);
	k->k_badidx += found && BKT(f)[i].b_off < off;
	return 0;
}

static void
check_buckets(struct checked *k, struct store_report *rep)
{
	const struct kvfile *f = &k->k_f;
	const struct bucket *b = BKT(f);
	struct rec r;
	uint64_t i, j, h, n = 0, bad = 0;

	for (i = 0; i < f->f_nbuckets; i++) {
		if (b[i].b_off == 0)
			continue;
		n++;
		if (!rec_fits(f, b[i].b_off) || !rec_valid(f, b[i].b_off, &r) ||
		    r.r_type != REC_PUT ||
		    b[i].b_off >= k->k_h.h_data_end) {
			bad++;
			continue;
		}
		h = key_hash(k, r.r_key, r.r_klen);
		if (h != b[i].b_hash) {
			bad++;
			continue;
		}
		for (j = home(f, h); j != i; j = (j + 1) & (f->f_nbuckets - 1))
			if (b[j].b_off == 0) {
				bad++;
				break;
			}
	}
	k->k_badidx = 0;
	(void)check_walk(k, rep, check_rec_index, k, NULL, NULL);
	rep->bad_buckets = bad + k->k_badidx + (n != k->k_h.h_keys);
	rep->keys = n;
}

int
store_check(const char *path, struct store_report *rep,
    void (*fn)(void *, uint64_t, uint64_t, int, const char *, size_t),
    void *arg, char *err, size_t errlen)
{
	struct checked k;
	struct store_report idx;

	if (check_open(path, &k, rep, err, errlen) == -1)
		return -1;
	(void)check_walk(&k, rep, NULL, NULL, fn, arg);
	/* The newest seq the store had, as store_stats would say. */
	if (k.k_hdr_ok && k.k_h.h_base_seq > rep->last_seq)
		rep->last_seq = k.k_h.h_base_seq;
	if (k.k_hdr_ok && rep->header[0] == '\0' &&
	    k.k_h.h_last_seq > rep->last_seq)
		rep->last_seq = k.k_h.h_last_seq;
	if (rep->clean && rep->bad_ranges == 0)
		rep->no_index = check_index(path, &k) == -1;
	if (rep->clean && rep->bad_ranges == 0 && !rep->no_index) {
		idx = *rep;
		idx.records = idx.bad_ranges = 0;
		check_buckets(&k, &idx);
		rep->bad_buckets = idx.bad_buckets;
		rep->keys = idx.keys;
	}
	check_close(&k);
	return rep->damaged > 0 || rep->bad_buckets > 0 ||
	    rep->header[0] != '\0';
}

/* ---- Salvaging ---- */

/*
 * Copy one record into the salvaged or restored store (the store in arg).
 * A record stands alone in the copy, its group flag dropped: check_walk
 * passes a transaction's records only when it has them all, and a backup
 * always ends between groups (store_backup.c).
 */
int
salvage_rec(void *arg, const struct rec *r, uint64_t off)
{
	struct store *s = arg;

	(void)off;
	if (r->r_seq == 0)
		return 0;	/* never written so: no seq to keep */
	if (r->r_type == REC_PUT)
		return store_put_exp(s, r->r_key, r->r_klen, r->r_val,
		    r->r_vlen, rec_expiry(r), r->r_seq, NULL) == -1;
	return store_del(s, r->r_key, r->r_klen, r->r_seq, NULL) == -1;
}

/*
 * "<path>.damaged-<UTC time>" into kept, the time as ISO 8601's basic
 * format (20260101T120000Z).
 */
static int
kept_name(const char *path, char *kept, size_t keptlen)
{
	struct tm tm;
	time_t t = (time_t)(wall_ms() / 1000);

	utc_time(t, &tm);
	return fmt_buf(kept, keptlen, "%s.damaged-%04d%02d%02dT%02d%02d%02dZ",
	    path, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec) < (int)keptlen ? 0 : -1;
}

/*
 * Salvage into tmp: a new store file from every valid record of k, with
 * the old seed where the header holds it, and the old id too if found
 * (store_check's walk) saw nothing lost. The copy's counts go to rep.
 */
static int
salvage_into(struct checked *k, const char *tmp,
    const struct store_report *found, struct store_report *rep, char *err,
    size_t errlen)
{
	struct store_stats st;
	struct store *s;
	uint8_t id[16];
	const uint8_t *seed = NULL;
	uint64_t base = found->last_seq;
	uint32_t flags = 0;

	if (random_bytes(id, sizeof(id)) == -1) {
		seterr(err, errlen, "read /dev/urandom: %s", errstr());
		return -1;
	}
	rep->new_repl_id = 1;
	if (k->k_hdr_ok) {
		seed = k->k_h.h_seed;
		flags = k->k_h.h_flags;
		if (k->k_h.h_base_seq > base)
			base = k->k_h.h_base_seq;
		if (found->header[0] == '\0' && k->k_h.h_last_seq > base)
			base = k->k_h.h_last_seq;
		if (found->bad_ranges == 0 && found->header[0] == '\0') {
			memcpy(id, k->k_h.h_repl_id, sizeof(id));
			rep->new_repl_id = 0;
		}
	}
	/*
	 * A lost record may have held a seq above every one kept (the last
	 * write), and handing it out again would repeat an ETag with another
	 * value: skip as many seqs as the bad bytes could hold records.
	 */
	if (found->bad_ranges > 0)
		base += found->bad_bytes / rec_size(1, 0) + found->bad_ranges;
	if ((s = create_loading(tmp, id, seed, flags, base, found->records,
	    STORE_FSYNC_NO, err, errlen)) == NULL)
		return -1;
	if (check_walk(k, rep, salvage_rec, s, NULL, NULL) == -1) {
		seterr(err, errlen, "write %s: %s", tmp, errstr());
		store_discard(s);
		return -1;
	}
	s->s_loading = 0;
	store_stats(s, &st);
	rep->keys = st.keys;
	rep->last_seq = st.last_seq;
	if (store_close(s) == -1) {
		seterr(err, errlen, "close %s: %s", tmp, errstr());
		unlink_pair(tmp);
		return -1;
	}
	return 0;
}

int
store_salvage(const char *path, struct store_report *rep, char *kept,
    size_t keptlen, char *err, size_t errlen)
{
	struct checked k;
	struct store_report walk;
	char *tmp = NULL;
	int rc = -1;

	if (check_open(path, &k, rep, err, errlen) == -1)
		return -1;
	(void)check_walk(&k, rep, NULL, NULL, NULL, NULL);
	memset(&walk, 0, sizeof(walk));
	walk.synced_end = rep->synced_end;
	if ((tmp = path_with(path, SALVAGE_SUFFIX)) == NULL ||
	    kept_name(path, kept, keptlen) == -1) {
		seterr(err, errlen, "%s: %s", path, strerror(ENAMETOOLONG));
		goto done;
	}
	if (salvage_into(&k, tmp, rep, &walk, err, errlen) == -1)
		goto done;
	rep->keys = walk.keys;
	rep->last_seq = walk.last_seq;
	rep->new_repl_id = walk.new_repl_id;
	/* The old file keeps its name until the new one takes it: a crash
	 * in between leaves a store at path, never none. */
	if (link(path, kept) == -1) {
		seterr(err, errlen, "link %s to %s: %s", path, kept,
		    errstr());
		unlink_pair(tmp);
		goto done;
	}
	if (rename_pair(tmp, path) == -1) {
		seterr(err, errlen, "rename %s to %s: %s", tmp, path,
		    errstr());
		unlink_pair(tmp);
		(void)unlink(kept);
		goto done;
	}
	if (store_sync_dir(path) == -1) {
		seterr(err, errlen, "sync the directory of %s: %s", path,
		    errstr());
		goto done;
	}
	rc = 0;
done:
	free(tmp);
	check_close(&k);
	return rc;
}

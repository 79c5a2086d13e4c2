/*
 * store_compact.c: compaction, the store's garbage collector. When garbage
 * outweighs a third of the live records, or the buckets are 3/4 full, the
 * flusher makes "<path>.compact" and its index with their blocks allocated
 * (a busy disk may take hundreds of ms), then the live records are copied
 * into it a slice at a time: after each write, COPY_FACTOR times its bytes
 * (store.c's wrote), and between requests, about a millisecond's worth
 * (store_step). Once the copy has caught up, the flusher syncs it in the
 * background, a chunk at a time between the store's own syncs (store.c's
 * copy_job), again while much was copied during its last sync; the last
 * sync holds durability still, and then the copy is renamed over the
 * store and the store switches to it.
 * The replaced mapping is unmapped a slice at a time, and its file closed
 * by the flusher. Only when the buckets fill faster than the copy goes
 * does a write wait for a whole copy (make_room). The format of the copy
 * is the store's: see the top of store.c.
 */

#define _GNU_SOURCE	/* madvise(2), as store.c: posix_madvise links more */

#include <sys/types.h>
#include <sys/mman.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "util.h"
#include "store_int.h"

#define COMPACT_MIN_DATA ((uint64_t)1 << 20)	/* below it, garbage is not
						   worth a copy */
#define COMPACT_RETRY_NSEC (10 * NSEC_PER_SEC)	/* after a failed compaction */
#define GROW_INDEX_MAX	((uint64_t)1 << 17)	/* buckets index_grow doubles:
						   2 MiB, rehashed in 8 ms
						   on a VM */
#define SYNC_DELTA	256	/* records copied after a background sync
				   that the final one may write: ~1 ms */
#define COPY_AHEAD	8	/* records compaction hashes ahead */
#define COPY_CLOCK	8	/* records between looks at the clock: each
				   may fault in a page of the copy */
#define SYNC_ROUNDS	4	/* background syncs before finishing anyway */

static int	 want_compact(const struct store *);
static const char *compact_level(struct store *, int);
static void	 copy_plan(struct store *, uint64_t *, uint64_t *, uint64_t *);
static int	 prep_overdue(const struct store *);
static void	 prep_ask(struct store *);
static int	 make_files(struct store *, uint64_t, uint64_t *, uint64_t, int *,
		    int *);
static void	 prep_make(struct store *, uint64_t, uint64_t, uint64_t);
static int	 prep_settle(struct store *);
static int	 compact_begin(struct store *);
static int	 compact_start(struct store *);
static uint64_t	 append_raw(struct kvfile *, const char *, uint64_t);
static int	 copy_records(struct store *, uint64_t, uint64_t);
static int	 final_sync(struct store *);
static int	 compact_finish(struct store *, int);

/* ---- Compaction ---- */

static int
want_compact(const struct store *s)
{
	const struct kvfile *f = &s->s_f;
	uint64_t used = f->f_end - f->f_start;

	return (f->f_garbage > (used - f->f_garbage) / 3 &&
	    used > COMPACT_MIN_DATA) || f->f_keys > f->f_nbuckets / 4 * 3;
}

/*
 * Whether the buckets, 3/4 full, may be doubled by index_grow rather than
 * a compaction: a copy of every live record, its index and a sync of the
 * copy, for a store that only grew (of 120,000 new keys, 205,000 records
 * copied in 8 compactions; FSYNC=always p99 7 ms against 2 ms). Up to
 * GROW_INDEX_MAX buckets, whose rehash is a few ms on the loop; beyond,
 * the copy is done in slices as before. Not while a compaction is under
 * way or asked for, which doubles them too, nor for a full sync's copy.
 */
static int
index_growable(const struct store *s)
{
	const struct kvfile *f = &s->s_f;

	return f->f_keys > f->f_nbuckets / 4 * 3 &&
	    f->f_nbuckets <= GROW_INDEX_MAX && f->f_start == PAGE &&
	    s->s_cphase == C_NONE && !s->s_prepping && !s->s_loading;
}

/*
 * Between requests: start a compaction when one is due, in two steps. The
 * flusher makes its files (prep_job: allocating a copy of the live data
 * may take the disk hundreds of ms); the next step here maps them. Full
 * buckets in a store without much garbage are doubled instead, if small.
 */
void
maybe_compact(struct store *s)
{
	int st, e;

	if (s->s_cphase != C_NONE || s->s_failed != 0)
		return;
	if (!s->s_prepping) {
		if (want_compact(s) && mono_ns() >= s->s_cretry &&
		    (!index_growable(s) || index_grow(s) == -1 ||
		    want_compact(s)))
			prep_ask(s);
		return;
	}
	pthread_mutex_lock(&s->s_mu);
	st = s->s_prep;
	pthread_mutex_unlock(&s->s_mu);
	if (st == P_DONE) {
		if (compact_begin(s) == 0)
			return;
	} else if (!prep_overdue(s) || compact_start(s) == 0)
		return;
	e = errno;
	kv_log(compact_level(s, e), "%s: cannot start compaction: %s; "
	    "retrying every %llu s", s->s_cpath, strerror(e),
	    COMPACT_RETRY_NSEC / NSEC_PER_SEC);
	s->s_cretry = mono_ns() + COMPACT_RETRY_NSEC;
}

/*
 * How loud a failed compaction is. A full disk fails every retry the same
 * way: say so once, then at debug level until a compaction succeeds.
 */
static const char *
compact_level(struct store *s, int e)
{
	if (e == s->s_cerr)
		return "debug";
	s->s_cerr = e;
	return "warn";
}

/*
 * A copy of the live records: twice the buckets while keys would fill more
 * than half of them, and room for the records and a margin for the writes
 * during the copy (*least: without it, on a full disk).
 */
static void
copy_plan(struct store *s, uint64_t *nb, uint64_t *size, uint64_t *least)
{
	struct kvfile *f = &s->s_f;
	uint64_t live = f->f_end - f->f_start - f->f_garbage;

	*nb = f->f_nbuckets;
	while (f->f_keys > *nb / 2)
		*nb *= 2;
	*size = PAGE + round_up(live + live / 4 + GROW_MIN, PAGE);
	*least = PAGE + round_up(live, PAGE);
}

/*
 * Whether the log has grown by a quarter (and COMPACT_MIN_DATA) since the
 * flusher was asked for a compaction's files: a disk slow to allocate,
 * or a flusher that gets no CPU. The loop then makes them itself
 * (compact_start), so that the garbage stays bounded.
 */
static int
prep_overdue(const struct store *s)
{
	const struct kvfile *f = &s->s_f;
	uint64_t used = s->s_prepend - f->f_start;

	return f->f_end - s->s_prepend > used / 4 + COMPACT_MIN_DATA;
}

/* Have the flusher make the files of a compaction (prep_job). */
static void
prep_ask(struct store *s)
{
	uint64_t nb, size, least;

	copy_plan(s, &nb, &size, &least);
	pthread_mutex_lock(&s->s_mu);
	s->s_prep = P_ASKED;
	s->s_prepnb = nb;
	s->s_prepsize = size;
	s->s_prepleast = least;
	pthread_cond_signal(&s->s_cv);
	pthread_mutex_unlock(&s->s_mu);
	s->s_prepping = 1;
	s->s_prepend = s->s_f.f_end;
}

/*
 * Make a compaction's two files, empty and with their blocks allocated:
 * the index of nb buckets, and the copy of *size bytes or, on a full disk,
 * of least (compaction is what frees space: the copy grows as it needs,
 * or is abandoned and retried). Returns 0, or an errno with nothing left.
 */
static int
make_files(struct store *s, uint64_t nb, uint64_t *size, uint64_t least,
    int *fdp, int *ifdp)
{
	int fd = -1, ifd, e;

	ifd = open(s->s_cipath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (ifd == -1)
		return errno;
	if (extend(ifd, 0, index_size(nb)) == -1)
		goto fail;
	fd = open(s->s_cpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1 || lock_file(fd, F_WRLCK) == -1)
		goto fail;
	if (extend(fd, 0, *size) == -1) {
		if ((errno != ENOSPC && errno != EDQUOT) ||
		    extend(fd, 0, least) == -1)
			goto fail;
		*size = least;
	}
	*fdp = fd;
	*ifdp = ifd;
	return 0;
fail:
	e = errno;
	if (fd != -1) {
		(void)close(fd);
		(void)unlink(s->s_cpath);
	}
	(void)close(ifd);
	(void)unlink(s->s_cipath);
	return e;
}

/*
 * Make the files of nb buckets and size (or least) bytes, and leave them,
 * or why not, for compact_begin (P_DONE). Called without s_mu held.
 */
static void
prep_make(struct store *s, uint64_t nb, uint64_t size, uint64_t least)
{
	int fd = -1, ifd = -1, e;

	e = make_files(s, nb, &size, least, &fd, &ifd);
	pthread_mutex_lock(&s->s_mu);
	s->s_prepnb = nb;
	s->s_prepsize = size;
	s->s_prepfd = fd;
	s->s_prepifd = ifd;
	s->s_preperr = e;
	s->s_prep = P_DONE;
	pthread_mutex_unlock(&s->s_mu);
}

/*
 * The flusher's part of starting a compaction: make its files, as asked
 * (prep_ask). Called and returns with s_mu held.
 */
void
prep_job(struct store *s)
{
	uint64_t nb = s->s_prepnb, size = s->s_prepsize;
	uint64_t least = s->s_prepleast;

	s->s_prep = P_BUSY;
	pthread_mutex_unlock(&s->s_mu);
	prep_make(s, nb, size, least);
	pthread_mutex_lock(&s->s_mu);
}

/*
 * Wait for the flusher's prep_job if it is running (a few ms, a second on
 * a busy disk), or take back one it has not begun. Returns P_NONE, or
 * P_DONE with its files (or its error) waiting for compact_begin.
 */
static int
prep_settle(struct store *s)
{
	struct timespec ms = { 0, 1000000 };
	int st;

	for (;;) {
		pthread_mutex_lock(&s->s_mu);
		st = s->s_prep;
		if (st == P_ASKED)
			st = s->s_prep = P_NONE;
		pthread_mutex_unlock(&s->s_mu);
		if (st == P_NONE)
			s->s_prepping = 0;
		if (st != P_BUSY)
			return st;
		nanosleep(&ms, NULL);
	}
}

/* Drop a compaction's files made but not begun (a close, a full sync). */
void
prep_cancel(struct store *s)
{
	if (prep_settle(s) != P_DONE)
		return;
	pthread_mutex_lock(&s->s_mu);
	s->s_prep = P_NONE;
	pthread_mutex_unlock(&s->s_mu);
	s->s_prepping = 0;
	if (s->s_preperr != 0)
		return;
	(void)close(s->s_prepfd);
	(void)close(s->s_prepifd);
	unlink_pair(s->s_cpath);
}

/*
 * Start the copy into the files prep_job made: map them and write the new
 * header. Returns 0, or -1 with errno (the files gone) if either failed.
 */
static int
compact_begin(struct store *s)
{
	struct kvfile *f = &s->s_f, *c = &s->s_c;
	uint64_t size;
	void *p;
	int fd, e;

	/* The copy reads the log through the mapping (append_raw). */
	if (stage_end(s) == -1) {
		prep_cancel(s);
		return -1;
	}
	s->s_prepping = 0;
	pthread_mutex_lock(&s->s_mu);
	s->s_prep = P_NONE;
	e = s->s_preperr;
	fd = s->s_prepfd;
	size = s->s_prepsize;
	memset(c, 0, sizeof(*c));
	c->f_nbuckets = s->s_prepnb;
	c->f_ifd = s->s_prepifd;
	c->f_fd = -1;
	pthread_mutex_unlock(&s->s_mu);
	if (e != 0) {
		c->f_ifd = -1;
		errno = e;
		return -1;
	}
	if (index_mmap(c, 0) == -1)
		goto fail;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		goto fail;
	/*
	 * Every page of the copy is new: a fault that read around (8 MiB of
	 * zeros with read_ahead_kb 8192, 15 to 30 ms) would stop the loop
	 * for nothing. One page per fault instead, as for its index, whose
	 * buckets fill in random order (index_mmap), until it is the store
	 * (compact_finish).
	 */
	(void)madvise(p, size, MADV_RANDOM);
	c->f_fd = fd;
	c->f_map = p;
	c->f_size = size;
	c->f_shift = shift_for(c->f_nbuckets);
	c->f_start = c->f_end = PAGE;
	hdr_init(HDR(c), c->f_nbuckets, HDR(f)->h_seed, HDR(f)->h_repl_id,
	    s->s_last_seq, HDR(f)->h_flags);
	s->s_cpos = f->f_start;
	s->s_cdelta = 0;
	s->s_cprev = UINT64_MAX;
	s->s_crounds = 0;
	s->s_cphase = C_COPY;
	return 0;
fail:
	e = errno;
	(void)close(fd);
	drop_file(c);
	unlink_pair(s->s_cpath);
	errno = e;
	return -1;
}

/*
 * Start a compaction now, for a write that cannot wait (make_room): with
 * the files the flusher made or is making, else made here.
 */
static int
compact_start(struct store *s)
{
	uint64_t nb, size, least;

	if (prep_settle(s) != P_DONE) {
		copy_plan(s, &nb, &size, &least);
		prep_make(s, nb, size, least);
	}
	return compact_begin(s);
}

static uint64_t
append_raw(struct kvfile *f, const char *rec, uint64_t size)
{
	uint64_t off = f->f_end;

	memcpy(f->f_map + off, rec, size);
	/* A copy stands alone: the group it came from was whole (the
	 * format comment in store.c). */
	if ((rec[5] & REC_MORE) != 0)
		rec_set_flags(f->f_map + off,
		    (unsigned char)rec[5] & ~REC_MORE);
	f->f_end += size;
	return off;
}

/*
 * Copy old-log records from s_cpos into the new file until budget bytes of
 * the old log are read or, if deadline is not 0, the clock passes it. A put
 * is copied if the old buckets still point at it; a tombstone is copied,
 * and applied, if its key is in the new file. Both lookups are a cache miss
 * on a big table, so the records are taken COPY_AHEAD at a time: hashed and
 * their buckets prefetched first, the misses overlap instead of queueing.
 * Returns 0, or -1 with errno if the copy cannot go on.
 */
static int
copy_records(struct store *s, uint64_t budget, uint64_t deadline)
{
	struct kvfile *f = &s->s_f, *c = &s->s_c;
	struct rec r;
	uint64_t hash[COPY_AHEAD], h, i, off, pos, n = 0;
	int found, k, j;

	while (s->s_cpos < f->f_end && budget > 0) {
		for (k = 0, pos = s->s_cpos; k < COPY_AHEAD &&
		    pos < f->f_end && rec_fits(f, pos); k++, pos += r.r_size) {
			rec_read(f, pos, &r);
			hash[k] = hash_key(s, r.r_key, r.r_klen);
			__builtin_prefetch(&BKT(f)[home(f, hash[k])]);
			__builtin_prefetch(&BKT(c)[home(c, hash[k])], 1);
		}
		if (k == 0) {
			kv_log("error", "%s: damaged record at offset %" PRIu64
			    "; not compacting", s->s_path, s->s_cpos);
			errno = EIO;
			return -1;
		}
		for (j = 0; j < k && budget > 0; j++) {
			rec_read(f, s->s_cpos, &r);
			h = hash[j];
			if (r.r_type == REC_PUT) {
				if (find(f, h, r.r_key, r.r_klen, &i) &&
				    BKT(f)[i].b_off == s->s_cpos) {
					found = find(c, h, r.r_key, r.r_klen,
					    &i);
					if (!found && c->f_keys + 1 > cap(c)) {
						errno = ENOSPC;
						return -1;
					}
					if (reserve(s, c, r.r_size) == -1)
						return -1;
					off = append_raw(c, f->f_map +
					    s->s_cpos, r.r_size);
					index_put(c, found, i, h, off,
					    r.r_klen + r.r_vlen);
					s->s_cdelta++;
				}
			} else if (find(c, h, r.r_key, r.r_klen, &i)) {
				if (reserve(s, c, r.r_size) == -1)
					return -1;
				(void)append_raw(c, f->f_map + s->s_cpos,
				    r.r_size);
				index_del(c, i, r.r_size);
				s->s_cdelta++;
			}
			s->s_cpos += r.r_size;
			budget = budget > r.r_size ? budget - r.r_size : 0;
			/* A step between requests also ends when writes
			 * became durable: their answers go first. */
			if (deadline != 0 && ++n % COPY_CLOCK == 0 &&
			    (mono_ns() >= deadline || NEWS(s)))
				return 0;
		}
	}
	return 0;
}

/*
 * Copy a slice (copy_records). Once the copy has caught up, ask the
 * flusher to sync the new file; once that is done (or at once if force),
 * finish. Returns -1 after abandoning the compaction, else 0.
 */
int
compact_work(struct store *s, uint64_t budget, uint64_t deadline, int force)
{
	struct kvfile *f = &s->s_f, *c = &s->s_c;
	unsigned done;
	int e;

	if (copy_records(s, budget, deadline) == -1)
		goto fail;
	if (s->s_cpos < f->f_end)
		return 0;
	if (!force && !s->s_cfinal) {
		/*
		 * Every record copied dirties a random bucket page, so let
		 * the flusher sync again while much was copied during its
		 * last sync, and the delta still halves each time (else the
		 * writers outrun the disk, and the old file grows while we
		 * wait): the final sync, which blocks, stays small.
		 */
		if (s->s_cphase == C_COPY) {
			s->s_ccaught = f->f_end;
			s->s_ccopied = c->f_end - c->f_start;
		}
		pthread_mutex_lock(&s->s_mu);
		done = s->s_bgdone == s->s_bgreq && s->s_bgfd == -1;
		e = s->s_bgerr;
		if (s->s_cphase == C_SYNC && f->f_end - s->s_ccaught >
		    COMPACT_MIN_DATA && f->f_end - s->s_ccaught >
		    s->s_ccopied) {
			/* A slow disk: stop the old file growing, and
			 * pay for a bigger final sync. (Against the copy
			 * as it caught up: the copy grows by every write
			 * since, so against its size now this never
			 * held.) s_bgerr is news only if the last
			 * request is done. */
			if (!done)
				e = 0;
			done = 1;
		} else if (s->s_cphase == C_COPY || (done && e == 0 &&
		    s->s_cdelta > SYNC_DELTA && s->s_cdelta < s->s_cprev / 2 &&
		    s->s_crounds < SYNC_ROUNDS)) {
			s->s_cprev = s->s_cphase == C_COPY ? UINT64_MAX :
			    s->s_cdelta;
			/* Records are only appended: what the last round
			 * wrote back stays clean but its last page. */
			s->s_bgoff = s->s_cphase == C_COPY ? 0 :
			    s->s_bgend & ~(uint64_t)(PAGE - 1);
			s->s_bgend = c->f_end;
			s->s_cphase = C_SYNC;
			s->s_cdelta = 0;
			s->s_crounds++;
			s->s_bgfd = c->f_fd;
			s->s_bgreq++;
			pthread_cond_signal(&s->s_cv);
			done = 0;
		}
		pthread_mutex_unlock(&s->s_mu);
		if (!done)
			return 0;
		if (e != 0) {
			errno = e;
			goto fail;
		}
	}
	/*
	 * A slow disk: the old file has grown by more than the copy held
	 * when it caught up while the flusher syncs. Stop it growing, and
	 * pay for the final sync here, as the rounds above would.
	 */
	if (!force && s->s_cfinal && f->f_end - s->s_ccaught >
	    COMPACT_MIN_DATA && f->f_end - s->s_ccaught > s->s_ccopied)
		force = 1;
	if (!force) {
		switch (final_sync(s)) {
		case -1:
			goto fail;
		case 0:
			return 0;	/* the flusher is at it */
		}
	}
	if (compact_finish(s, force) == -1)
		goto fail;
	return 0;
fail:
	e = errno;	/* store_put passes it on: ENOSPC must stay ENOSPC */
	compact_abort(s, compact_level(s, e), strerror(e));
	errno = e;
	return -1;
}

/*
 * The copy has caught up: have the flusher sync it, in the background, with
 * durability held (F_ASKED). Returns 1 once that is done, 0 while it runs
 * (the caller goes on copying what new writes add), -1 if it failed.
 */
static int
final_sync(struct store *s)
{
	int st, e;

	pthread_mutex_lock(&s->s_mu);
	st = s->s_final;
	e = s->s_finalerr;
	if (st == F_NONE) {	/* (F_DIR: the last compaction's, first) */
		s->s_final = F_ASKED;
		s->s_finalfd = s->s_c.f_fd;
		s->s_finalseq = s->s_last_seq;
		s->s_finalend = s->s_c.f_end;
		s->s_cfinal = 1;
		if (s->s_bgfd == s->s_finalfd)
			s->s_bgfd = -1;	/* this sync covers it */
		pthread_cond_signal(&s->s_cv);
	}
	pthread_mutex_unlock(&s->s_mu);
	if (st != F_SYNCED)
		return 0;
	if (e != 0) {
		errno = e;
		return -1;
	}
	return 1;
}

/*
 * Rename the new file over the old one and switch to it. Nothing is
 * written to the store in between, so the new file holds every write.
 * Its contents up to s_finalseq are synced (final_sync), and durability
 * waits for the directory's sync; the records copied since may be torn
 * by a power cut, and were never counted durable. force (the buckets are
 * full, no time to wait): sync it all here, rename and sync the directory
 * in the caller. Returns -1 before the rename only; after it there is no
 * going back.
 */
static int
compact_finish(struct store *s, int force)
{
	struct kvfile *f = &s->s_f, *c = &s->s_c, old;
	struct hdr *h = HDR(c);
	int e = 0;

	if (c->f_keys != f->f_keys || c->f_live != f->f_live) {
		kv_log("error", "%s: copy has %" PRIu64 " keys, store %" PRIu64
		    "; keeping the store", s->s_cpath, c->f_keys, f->f_keys);
		errno = EINVAL;
		return -1;
	}
	/*
	 * base_seq and its CRC share a sector: a cut leaves either whole. So
	 * does the replication id, which may have changed since the copy
	 * began (store_set_repl_id, after a crash).
	 */
	memcpy(h->h_repl_id, HDR(f)->h_repl_id, sizeof(h->h_repl_id));
	h->h_base_seq = s->s_last_seq;
	h->h_icrc = hdr_icrc(h);
	hdr_store(c, s->s_last_seq, 0);
	if (force && msync(c->f_map, c->f_size, MS_SYNC) == -1)
		return -1;
	hdr_synced(h, force ? c->f_end : s->s_finalend);
	if (rename_pair(s->s_cpath, s->s_path) == -1)
		return -1;
	if (force && store_sync_dir(s->s_path) == -1) {
		/* The rename may not survive a power cut; writes to the new
		 * file could then vanish, so none may be acknowledged. */
		e = errno;
		note_failure(s, e);
	}
	old = *f;
	*f = *c;
	/* The store's cold pages are read around again, as at open. */
	(void)madvise(f->f_map, f->f_size, MADV_NORMAL);
	(void)madvise(f->f_imap, index_size(f->f_nbuckets), MADV_NORMAL);
	s->s_cphase = C_NONE;
	s->s_cfinal = 0;
	s->s_compactions++;
	s->s_cerr = 0;
	pthread_mutex_lock(&s->s_mu);
	s->s_syncfd = f->f_fd;
	s->s_syncifd = f->f_ifd;
	s->s_wantend = f->f_end;
	if (s->s_bgfd == f->f_fd)
		s->s_bgfd = -1;	/* a forced finish overtook it */
	if (force) {
		s->s_final = F_NONE;	/* a final sync in flight is moot */
		s->s_fsyncs++;
		if (e != 0 && s->s_ioerr == 0)
			s->s_ioerr = e;
		if (e == 0 && s->s_ioerr == 0 &&
		    s->s_durable < s->s_last_seq) {
			s->s_durable = s->s_last_seq;
			notify(s);
		}
	} else {
		s->s_final = F_DIR;
		pthread_cond_signal(&s->s_cv);
	}
	pthread_mutex_unlock(&s->s_mu);
	grow_ahead(s);
	kv_log("info", "%s: compacted to %" PRIu64 " keys in %" PRIu64
	    " buckets, %" PRIu64 " -> %" PRIu64 " bytes", s->s_path,
	    f->f_keys, f->f_nbuckets, old.f_size, f->f_size);
	/* Unmapping 1 GiB takes ~100 ms; do it in slices from now on. */
	retire_file(s, &old);
	return 0;
}

void
compact_abort(struct store *s, const char *level, const char *why)
{
	struct kvfile *c = &s->s_c;

	kv_log(level, "%s: compaction abandoned: %s", s->s_cpath, why);
	s->s_cfinal = 0;
	pthread_mutex_lock(&s->s_mu);
	if (s->s_final == F_ASKED || s->s_final == F_SYNCED)
		s->s_final = F_NONE;	/* durability moves again */
	if (s->s_bgfd == c->f_fd)
		s->s_bgfd = -1;
	release_fd(s, c->f_fd);
	pthread_mutex_unlock(&s->s_mu);
	c->f_fd = -1;
	drop_file(c);
	/* Freeing a 1.9 GB copy's blocks took 1.3 s: not on this thread. */
	if (unlink_later(s->s_cpath) == -1)
		kv_log("warn", "unlink %s: %s", s->s_cpath, errstr());
	(void)unlink_later(s->s_cipath);
	s->s_cphase = C_NONE;
	s->s_cretry = mono_ns() + COMPACT_RETRY_NSEC;
}

/*
 * The buckets cannot take nkeys more: finish a compaction now, starting
 * one if need be; a second round covers one that began with too few buckets.
 * This is the one place a request may wait on a whole copy, and it is
 * reached only if the copy fell behind the inserts.
 */
int
make_room(struct store *s, uint64_t nkeys)
{
	int i;

	for (i = 0; i < 2 && s->s_f.f_keys + nkeys > cap(&s->s_f); i++) {
		if (index_growable(s) && index_grow(s) == 0)
			continue;
		if (s->s_cphase == C_NONE && compact_start(s) == -1)
			return -1;
		if (compact_work(s, UINT64_MAX, 0, 1) == -1)
			return -1;
	}
	if (s->s_f.f_keys + nkeys > cap(&s->s_f)) {
		errno = ENOSPC;
		return -1;
	}
	return 0;
}

/*
 * Unmap up to max bytes of each replaced mapping in turn (the index, then
 * the log), from its end; close its file once it is gone.
 */
void
unmap_old(struct store *s, uint64_t max)
{
	struct oldmap *o;
	uint64_t n;
	int i;

	for (i = 0; i < 2; i++) {
		o = &s->s_old[i];
		if (o->o_map == NULL)
			continue;
		n = o->o_size;
		if (n > max)
			n = round_up(n - max, UNMAP_CHUNK);	/* page-aligned */
		else
			n = 0;
		if (munmap(o->o_map + n, o->o_size - n) == -1)
			kv_log("warn", "munmap: %s", errstr());
		o->o_size = n;
		if (n > 0)
			return;
		o->o_map = NULL;
		pthread_mutex_lock(&s->s_mu);
		retire_fd(s, o->o_fd);
		pthread_mutex_unlock(&s->s_mu);
		o->o_fd = -1;
	}
}

/*
 * Hand the mappings and files of old, which s no longer uses, to
 * unmap_old (after any it still had). old holds none after.
 */
void
retire_file(struct store *s, struct kvfile *old)
{
	unmap_old(s, UINT64_MAX);
	s->s_old[0].o_map = old->f_imap;
	s->s_old[0].o_size = index_size(old->f_nbuckets);
	s->s_old[0].o_fd = old->f_ifd;
	s->s_old[1].o_map = old->f_map;
	s->s_old[1].o_size = old->f_size;
	s->s_old[1].o_fd = old->f_fd;
	old->f_map = old->f_imap = NULL;
	old->f_fd = old->f_ifd = -1;
}

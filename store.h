/*
 * store.h: the mmap'd fixed-bucket hash file. One store is one file; only
 * the main thread calls these functions (the store's own flusher thread is
 * internal). Pointers into the mapping are valid until the next call that
 * mutates the store (store_put, store_del, store_step).
 */

/* A key is 1 to STORE_MAX_KEY bytes: the API's limit, and a record's klen. */
#define STORE_MAX_KEY	1024

enum store_fsync {
	STORE_FSYNC_NO,		/* the kernel writes back when it likes */
	STORE_FSYNC_EVERYSEC,	/* the flusher syncs once a second if dirty */
	STORE_FSYNC_ALWAYS	/* a write is durable once store_durable_seq >= it */
};

struct store;

struct store_value {
	const char	*data;		/* into the mapping */
	size_t		 len;
	uint64_t	 seq;		/* the write that made this value */
	uint64_t	 expires;	/* unix ms when it expires; 0: never */
};

struct store_stats {
	uint64_t	 keys;
	uint64_t	 live_bytes;	/* key + value bytes of live records */
	uint64_t	 file_bytes;	/* with the index, and the compaction's
					   files, if any */
	uint64_t	 log_bytes;	/* record bytes in the live file's log */
	uint64_t	 garbage_bytes;	/* of those, replaced or deleted ones */
	uint64_t	 last_seq;	/* newest write in the store */
	uint64_t	 durable_seq;	/* newest write known to be on disk */
	uint64_t	 fsyncs;
	uint64_t	 compactions;
	uint64_t	 index_growths;	/* buckets doubled without a copy */
	uint64_t	 recovered_records;	/* scanned at open after a crash */
	uint64_t	 dropped_bytes;	/* torn tail cut at open */
	uint64_t	 expiries;	/* expiry heap entries, stale ones too:
					   16 bytes each in memory */
	int		 recovered;	/* 1 if the last shutdown was not clean */
	int		 compacting;	/* 1 while a compaction copy is open */
	int		 synced;	/* 1 if made by store_create (a full sync) */
	char		 repl_id[33];	/* 32 hex digits, random per data set */
};

/* A store file's health, from store_check or store_salvage. */
struct store_report {
	uint64_t	 records;	/* valid records in the log */
	uint64_t	 keys;		/* a clean file's, or a salvage's */
	uint64_t	 bad_ranges;	/* stretches of log without a record */
	uint64_t	 bad_bytes;	/* their bytes */
	uint64_t	 damaged;	/* of those, below the synced end */
	uint64_t	 first_bad;	/* offset of the first range, if any */
	uint64_t	 good_seq;	/* newest seq before the first range */
	uint64_t	 last_seq;	/* newest seq: records' or header's */
	uint64_t	 log_end;	/* end of the written log */
	uint64_t	 synced_end;	/* log known on disk (header), or 0 */
	uint64_t	 bad_buckets;	/* a clean file's, against its log */
	uint64_t	 cut_records;	/* of transactions cut short by a bad
					   range or the end, or after a range
					   that may be the rest of one: salvage
					   leaves them out, open those at the
					   end */
	uint64_t	 first_cut;	/* offset of the first such record */
	int		 clean;		/* closed cleanly: buckets checked */
	int		 no_index;	/* clean, but the index is missing or
					   another's: open rebuilds it */
	int		 new_repl_id;	/* the salvaged store got a new one */
	char		 header[128];	/* what is wrong with it, or "" */
};

/*
 * Open or create the store file at path. Returns NULL on failure with a
 * one-line reason in err (bad magic, wrong version, short file, corrupt
 * header, or the failing syscall and path). Never modifies a file it does
 * not recognise. A file not closed cleanly is recovered before returning:
 * a torn tail is cut, but a bad record below the log's synced end is
 * damage, refused with errno EUCLEAN, its offset in err and the file
 * untouched (see store_check). Deletes what a crash left beside it:
 * "<path>.compact", "<path>.sync" and "<path>.salvage", and their index
 * files. The store's own index is "<path>.idx", made or rebuilt here when
 * it is missing or not the one a clean close left with the file.
 */
struct store *store_open(const char *path, enum store_fsync policy,
	    char *err, size_t errlen);

/*
 * Start a full sync into live: a fresh store in "<live's path>.sync"
 * (replacing any file there) that continues replication id repl_id (32 hex
 * digits) from sequence seq, marked synced, with buckets for keys keys (0
 * if unknown). Keys hash with seed (32 hex digits: the source's store_seed,
 * so its store_scan cursors hold here too), or a random one when NULL.
 * Until store_adopt it is loading: store_put and store_del take explicit
 * seqs from 1 to seq, in any order, and last_seq stays seq. NULL with err.
 */
struct store *store_create(struct store *live, const char *repl_id,
	    const char *seed, uint64_t seq, uint64_t keys,
	    enum store_fsync policy, char *err, size_t errlen);

/*
 * The hash seed as 32 hex digits into out[33], for a full sync to hand on
 * to store_create. Never show it to clients: knowing it, one could choose
 * keys that all collide.
 */
void	store_seed(struct store *s, char *out);

/*
 * Write fresh (from store_create, every record loaded) to disk in its own
 * thread, closed as cleanly as store_close leaves a file, so that
 * store_adopt does not wait for the disk. Returns 0 while that runs
 * (store_notify_fd becomes readable when it ends; drain it with
 * store_durable_seq), then 1, or -1 with errno if the flush failed, after
 * which store_adopt fails too. Write nothing to fresh from the first call
 * on: only store_adopt or store_discard.
 */
int	store_seal(struct store *fresh);

/*
 * Close fresh (from store_create) cleanly, rename its file and index over
 * cur's and reopen it there; it waits for whatever of fresh is not on disk
 * yet, so store_seal first. Returns the new store, cur closed; or NULL
 * with err set and fresh gone: cur still serves its old data (when only
 * the index was renamed, cur's is rebuilt at its next open), except with
 * errno ESTALE (both renamed, but the directory not synced or the file
 * not reopened), when cur must no longer be written.
 */
struct store *store_adopt(struct store *cur, struct store *fresh,
	    char *err, size_t errlen);

/*
 * Give the data set the replication id repl_id (32 hex digits), or a new
 * random one when it is NULL, on disk before returning: a primary that
 * lost writes in a crash must not let replicas that saw them resume as if
 * they were its history. -1 with errno (EINVAL: not 32 hex digits).
 */
int	store_set_repl_id(struct store *s, const char *repl_id);

/* Close s and delete its file: an abandoned store_create. */
void	store_discard(struct store *s);

/* Flush everything, mark the file clean, unmap, free. -1 if a flush failed. */
int	store_close(struct store *s);

/* 1 and *v filled if key exists, 0 if not (or klen is not 1..STORE_MAX_KEY). */
int	store_get(struct store *s, const char *key, size_t klen,
	    struct store_value *v);

/*
 * A new descriptor (the caller closes it) of the file holding v, from
 * store_get with no write since, and v's offset in it in *off: for
 * sendfile(2). Bytes once written are never changed, and compaction and
 * full syncs rename other files over the path, so v's bytes stay as they
 * are while the descriptor is open. -1 with errno (EMFILE...).
 */
int	store_value_fd(struct store *s, const struct store_value *v,
	    uint64_t *off);

/*
 * Write key=val with sequence number seq, or the next one when seq is 0.
 * Returns 1 if the key was created, 0 if replaced, -1 with errno (ENOSPC,
 * EIO, ...) when nothing was written. *seqp gets the write's sequence.
 * EINVAL: klen not 1..STORE_MAX_KEY, or seq not 0 and not above every
 * earlier seq (durable_seq must stay meaningful). EFBIG: vlen over 2^31.
 * After a failed flush every write fails with that flush's errno. key and
 * val must not point into the mapping (a write may move it). seqp may be
 * NULL; it gets 0 when nothing was written.
 */
int	store_put(struct store *s, const char *key, size_t klen,
	    const char *val, size_t vlen, uint64_t seq, uint64_t *seqp);

/*
 * store_put for a key that expires at expires (unix ms on the primary's
 * clock; 0: never, as store_put). The expiry is kept in the record (see
 * store.c's format), so reopening, compaction and store_scan carry it.
 * A later put without one makes the key permanent again. Anyone writing a
 * key with a TTL calls this: the API, replicas applying a primary's
 * record, and transactions.
 */
int	store_put_exp(struct store *s, const char *key, size_t klen,
	    const char *val, size_t vlen, uint64_t expires, uint64_t seq,
	    uint64_t *seqp);

/*
 * The primary's expiry: delete, as store_del with seq 0, up to max keys
 * whose expiry is at or before now (unix ms), earliest first, found
 * through an in-memory heap (never a scan), and call fn with each deleted
 * key and its tombstone's seq (for replication and watches; fn must not
 * call store functions). Looks at most 4 * max heap entries. Returns the
 * number deleted, or -1 with errno when a delete failed (that key is
 * tried again next call). Only a primary calls it: replicas wait for its
 * deletes, so that every node agrees at every seq whatever the clocks.
 */
int	store_expire(struct store *s, uint64_t now, int max,
	    void (*fn)(void *arg, const char *key, size_t klen, uint64_t seq),
	    void *arg);

/*
 * Make the writes up to store_group_end one unit: after a crash, open
 * replays all of them or none (a transaction, or a replica applying one).
 * Makes room for nkeys new keys and nbytes of records first (the sum of
 * their STORE_RECORD_BYTES; it may finish a compaction or grow the file), so
 * that no write of the group has to: they then fail only on a key or seq
 * store_put would refuse anyway, which the caller checks first. Nothing
 * is flushed, counted or compacted until store_group_end. -1 with errno
 * (a latched flush error, ENOSPC) and no group begun.
 */
int	store_group_begin(struct store *s, uint64_t nkeys, uint64_t nbytes);

/*
 * The bytes a put (vlen) or a delete (vlen 0) of a klen-byte key takes;
 * a put with an expiry takes STORE_RECORD_BYTES(klen, vlen + 8).
 */
#define STORE_RECORD_BYTES(klen, vlen)	(((klen) + (vlen) + 27) / 8 * 8)

/* End the group: its last record says so, and the flusher may take it. */
void	store_group_end(struct store *s);

/*
 * Start loading key's bucket into the cache: a batch of writes calls it a
 * few records ahead, so that their cache misses overlap (a hint only).
 */
void	store_prefetch(struct store *s, const char *key, size_t klen);

/*
 * As store_put: 1 if deleted, 0 if the key did not exist, -1 with errno.
 * A missing key writes nothing when seq is 0; with an explicit seq it
 * still logs a tombstone, so a replica's position survives a crash.
 */
int	store_del(struct store *s, const char *key, size_t klen,
	    uint64_t seq, uint64_t *seqp);

/*
 * Keys in hash order from *cursor (0 to start): calls fn for at most limit
 * keys and advances *cursor; *cursor is UINT64_MAX when none are left. fn
 * returns nonzero when it has had enough for this call (a byte budget): the
 * walk then stops after that key and any others of the same hash. A key
 * present for the whole walk is visited exactly once, whatever writes,
 * growth or compaction happen between calls. fn's pointers are valid only
 * during the call, and fn must not call store functions. Returns the number
 * of keys visited; 0 with *cursor unchanged and errno ENOMEM if out of
 * memory. The cursor belongs to the file's hash seed: it stays valid across
 * reopen and compaction, and in every store created with that seed.
 */
size_t	store_scan(struct store *s, uint64_t *cursor, size_t limit,
	    int (*fn)(void *arg, const char *key, size_t klen,
	    const struct store_value *v), void *arg);

/*
 * Do a bounded slice of background work (compaction, growth); call it from
 * the event loop every few milliseconds. Never takes more than ~2 ms.
 */
void	store_step(struct store *s);

/*
 * While hold is 1, store_step neither starts a compaction nor copies a
 * slice of one (it still ends one whose copy has caught up): a snapshot
 * streaming to a new replica reads the log in hash order on the same
 * loop, and an idle compaction beside it took most of it (a 1M-key
 * resync from a store written 3 times: 2.2 to 3.0 s, held 0.8 to 1.0 s),
 * as Redis holds an AOF rewrite while it saves for a replica. Writes
 * still start and copy (a slice each), so garbage stays bounded under
 * load.
 */
void	store_hold_compaction(struct store *s, int hold);

/*
 * Durability under FSYNC=always: the fd becomes readable whenever
 * store_durable_seq advances, or when store_step has a compaction to end
 * (its rename, after which durability moves again); call store_durable_seq
 * to drain it, and store_step.
 */
int	store_notify_fd(struct store *s);
uint64_t store_durable_seq(struct store *s);

/*
 * 0, or the errno of a flush (fdatasync, msync) that failed. From then on
 * every write fails with it and durable_seq never moves again: after a
 * failed fsync the kernel may have dropped the pages it could not write,
 * so no later fsync can vouch for them (PostgreSQL's "fsyncgate"). Only
 * closing and reopening the store clears it. The notify fd becomes
 * readable when it is set.
 */
int	store_error(struct store *s);

void	store_stats(struct store *s, struct store_stats *st);

/*
 * Read the store file at path, changing nothing, under a read lock (so not
 * while a server has it open): every record's CRC, each stretch of log
 * without a valid record passed to fn (if not NULL) with its offset and
 * length, whether it lies below the synced end (damage; else a torn tail),
 * and the key of the last valid record before it (klen 0: none; bytes
 * from the file, to be escaped), and a clean file's buckets (its index
 * file's, if that is the one it trusts: else no_index) against its log.
 * Returns 0 if sound, 1 if damaged, -1 with err if it cannot read it.
 */
int	store_check(const char *path, struct store_report *rep,
	    void (*fn)(void *arg, uint64_t off, uint64_t len, int damaged,
	    const char *key, size_t klen), void *arg, char *err, size_t errlen);

/*
 * Replace the store file at path with a new one holding every valid record
 * of it, in log order with their seqs (last_seq never goes back), and keep
 * the old file as "<path>.damaged-<UTC time>", named in kept. If a record
 * or the header was bad the new store gets a new replication id, so every
 * replica full-syncs from it when it serves as primary: they lose what it
 * lost. Same lock as store_check. 0, or -1 with err and path unchanged.
 */
int	store_salvage(const char *path, struct store_report *rep, char *kept,
	    size_t keptlen, char *err, size_t errlen);

/* ---- Backups (store_backup.c describes the file) ---- */

#define STORE_BACKUP_HEAD	64	/* the backup file's header bytes */

struct store_backup;

/* What a backup file holds, or where it is damaged. */
struct store_backup_info {
	char		 repl_id[33];	/* the data set's (a restore's: new) */
	uint64_t	 seq;		/* its newest write */
	uint64_t	 keys;		/* live keys at seq */
	uint64_t	 size;		/* of the whole file */
	uint64_t	 log_bytes;	/* of its records */
	uint64_t	 records;	/* checked */
	uint64_t	 bad_off;	/* the first damage found, if any */
	char		 why[160];	/* what is wrong there, or "" */
};

/*
 * A backup of s as it is now (store_last_seq): its header fields into bi.
 * Holds a descriptor of the store file, not a copy: s may go on being
 * written, compacted or replaced. NULL with errno (EMFILE, ENOMEM).
 */
struct store_backup *store_backup_begin(struct store *s,
	    struct store_backup_info *bi);

/*
 * The next bytes of the backup file, at most cap, into buf: their count,
 * 0 at the end, -1 with errno (EIO). Reads the file (pread) and nothing
 * else; any thread, one at a time.
 */
ssize_t	store_backup_read(struct store_backup *b, char *buf, size_t cap);
void	store_backup_end(struct store_backup *b);	/* NULL is fine */

/*
 * Check the backup file at path, changing nothing: 0 sound, 1 damaged
 * (bi->why, bi->bad_off), -1 with err if it cannot read it or it is no
 * backup (errno EINVAL).
 */
int	store_backup_check(const char *path, struct store_backup_info *bi,
	    char *err, size_t errlen);

/*
 * Build a store at path from the backup file after checking it whole: in
 * "<path>.restore", synced, then renamed over path (a crash leaves path
 * as it was). It gets a new replication id (bi->repl_id) and hash seed,
 * and keeps every record's seq. If kept is not NULL, path's old file is
 * kept under that name. 0, or -1 with err and path unchanged.
 */
int	store_restore(const char *backup, const char *path, const char *kept,
	    struct store_backup_info *bi, char *err, size_t errlen);

/* The newest write's seq: store_stats' last_seq, cheap enough per request. */
uint64_t store_last_seq(struct store *s);

/*
 * fsync the directory that holds path: a rename there is durable only
 * then. 0, or -1 with errno set. Any thread.
 */
int	store_sync_dir(const char *path);

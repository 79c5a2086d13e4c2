/*
 * store_int.h: the store's insides, shared by the files that make it up:
 * store.c (the file format, open and recovery, the flusher, reads and
 * writes), store_compact.c (compaction) and store_check.c (check and
 * salvage). No other module includes it: theirs is store.h. The layout
 * below is the one the format comment at the top of store.c draws.
 * Include it after <pthread.h>, <stddef.h>, <stdint.h> and store.h.
 */

/* The format (store.c's comment). */
#define FORMAT_VERSION	3		/* 2: buckets in the file; 1: byte 5 of
					   a record is always 0 */
#define MAGIC		"KVSTORE"	/* 8 bytes with its NUL */
#define IDX_MAGIC	"KVINDEX"	/* the index file's */
#define IDX_SUFFIX	".idx"		/* its name: the store's and this */
#define PAGE		4096		/* the format's unit, not the host's */
#define MIN_BUCKETS	1024		/* 16 KiB of buckets in a new file */
#define MAX_BUCKETS	((uint64_t)1 << 40)	/* beyond: a corrupt header */
#define REC_HDR		20		/* crc, type, pad, klen, vlen, seq */
#define FLAG_SYNCED	0x1		/* the data set came whole from a primary */
#define FLAG_EXPIRING	0x2		/* a record may carry an expiry */
#define REC_PUT		'P'
#define REC_DEL		'D'
#define REC_EXPIRES	0x01		/* record flag: a u64 expiry follows the value */
#define REC_MORE	0x02		/* record flag: more of its group */
#define REC_FLAGS	(REC_EXPIRES | REC_MORE)	/* all flags known */
#define MAX_VALUE_BYTES	((uint64_t)1 << 31)	/* fits vlen, a u32 */

#define GROW_MIN	((uint64_t)1 << 20)	/* so small stores don't grow
						   on every write */
#define UNMAP_CHUNK	((uint64_t)8 << 20)	/* about 1 ms of munmap */
#define NSEC_PER_SEC	1000000000ULL
#define SALVAGE_SUFFIX	".salvage"	/* store_salvage's new file */

enum { C_NONE, C_COPY, C_SYNC };	/* compaction phases */
/*
 * The copy's last sync, in the background: asked by the caller (F_ASKED),
 * done by the flusher (F_SYNCED), then the caller renames and asks for the
 * directory's sync (F_DIR). Durability stands still from F_ASKED until the
 * directory is synced: no write may count as on disk while a power cut
 * could still leave the old file at the path without it.
 */
enum { F_NONE, F_ASKED, F_SYNCED, F_DIR };
/*
 * A compaction's files, made by the flusher before the copy starts (see
 * compact_prepare): asked, being made, made (or failed: s_preperr).
 */
enum { P_NONE, P_ASKED, P_BUSY, P_DONE };
/* store_seal's flush of a loaded store, in the flusher. */
enum { SEAL_NONE, SEAL_ASKED, SEAL_DONE };

struct hdr {
	/* Written once when the file is made; guarded by h_icrc. */
	char		 h_magic[8];
	uint32_t	 h_version;
	uint32_t	 h_flags;
	uint64_t	 h_nbuckets;
	uint64_t	 h_data_start;
	uint8_t		 h_seed[16];
	uint8_t		 h_repl_id[16];
	uint64_t	 h_base_seq;
	uint32_t	 h_icrc;
	uint32_t	 h_pad;
	/* Rewritten after syncs (by the flusher too); guarded by h_scrc. */
	uint64_t	 h_synced;
	uint32_t	 h_scrc;
	char		 h_pad2[36];
	/* Rewritten at open and close; guarded by h_mcrc. */
	uint32_t	 h_mcrc;
	uint32_t	 h_clean;
	uint64_t	 h_data_end;
	uint64_t	 h_last_seq;
	uint64_t	 h_keys;
	uint64_t	 h_live_bytes;
	uint64_t	 h_garbage_bytes;
	uint64_t	 h_idx_gen;	/* version 3: its index's, or 0 */
};

/* store.c's picture is the contract: fail to compile if the struct drifts. */
typedef char hdr_layout_check[sizeof(struct hdr) == 184 &&
    offsetof(struct hdr, h_icrc) == 72 &&
    offsetof(struct hdr, h_synced) == 80 &&
    offsetof(struct hdr, h_scrc) == 88 &&
    offsetof(struct hdr, h_mcrc) == 128 ? 1 : -1];

/* The index file's first bytes; the rest of its first page is zero. */
struct ihdr {
	char		 i_magic[8];
	uint64_t	 i_gen;		/* its store's h_idx_gen, or 0 */
	uint64_t	 i_nbuckets;
	uint32_t	 i_crc;		/* CRC-32C of the bytes before it */
	uint32_t	 i_pad;
};

struct bucket {
	uint64_t	 b_hash;
	uint64_t	 b_off;
};

/* One mapped store file: the live one, or the target of a compaction. */
struct kvfile {
	int		 f_fd;
	char		*f_map;
	uint64_t	 f_size;	/* of the file, all of it mapped */
	int		 f_ifd;		/* its index file, */
	char		*f_imap;	/* all of it mapped */
	uint64_t	 f_nbuckets;
	unsigned	 f_shift;	/* 64 - log2(f_nbuckets) */
	uint64_t	 f_start;	/* data_start */
	uint64_t	 f_end;		/* data_end: the next record's offset */
	uint64_t	 f_keys;
	uint64_t	 f_live;	/* key + value bytes of live records */
	uint64_t	 f_garbage;	/* record bytes no bucket points at */
	uint64_t	 f_readin;	/* the log is read in up to here;
					   UINT64_MAX: by the flusher */
	char		*f_stage;	/* a loading store's log from
					   f_stoff to f_end, not yet written
					   (stage_write); NULL: none */
	uint64_t	 f_stoff;
};

struct rec {
	uint32_t	 r_crc;
	int		 r_type;
	int		 r_flags;	/* REC_* flags, byte 5 */
	size_t		 r_klen;
	size_t		 r_vlen;
	uint64_t	 r_seq;
	const char	*r_key;
	const char	*r_val;
	uint64_t	 r_size;	/* with header, expiry and padding */
};

/* A replaced mapping, being unmapped a slice at a time. */
struct oldmap {
	char		*o_map;
	uint64_t	 o_size;	/* what is left of it */
	int		 o_fd;		/* its file, closed after it */
};

/* A key's expiry in the heap: its record's expiry, and its key's hash. */
struct expiry {
	uint64_t	 x_at;		/* unix ms */
	uint64_t	 x_hash;
};

struct store {
	struct kvfile	 s_f;		/* the store */
	struct kvfile	 s_c;		/* the compaction's new file */
	char		*s_path;
	char		*s_cpath;	/* s_path + ".compact" */
	char		*s_ipath;	/* the index files': s_path + ".idx", */
	char		*s_cipath;	/* s_cpath + ".idx" */
	enum store_fsync s_policy;
	uint64_t	 s_k0, s_k1;	/* SipHash key, from the file's seed */
	uint64_t	 s_last_seq;
	int		 s_failed;	/* latched flush error: no writes */
	int		 s_loading;	/* store_create's: seqs at or below base */
	uint64_t	 s_wbdone;	/* loading: log written back below this, */
	uint64_t	 s_iwbdone;	/* and the index below this */
	uint64_t	 s_front;	/* loading: the highest bucket filled */
	int		 s_cphase;
	uint64_t	 s_cpos;	/* next old-log record to copy */
	uint64_t	 s_cdelta;	/* records copied since the last sync */
	uint64_t	 s_cprev;	/* and during the sync before */
	uint64_t	 s_ccaught;	/* old log's end when first caught up */
	uint64_t	 s_ccopied;	/* and the copy's log bytes then */
	int		 s_crounds;	/* background syncs of this copy */
	int		 s_cfinal;	/* its last sync was asked for */
	int		 s_prepping;	/* its files were asked for (s_prep), */
	uint64_t	 s_prepend;	/* when the log ended here */
	struct oldmap	 s_old[2];	/* a replaced file's index and log */
	uint64_t	 s_cretry;	/* no new compaction before (ns) */
	int		 s_cerr;	/* errno of the last failed one, or 0 */
	uint64_t	 s_compactions;
	uint64_t	 s_igrowths;	/* index_grow's, this run */
	uint64_t	 s_recovered_records;
	uint64_t	 s_dropped_bytes;
	int		 s_recovered;
	int		 s_replayed_expiry;	/* a replayed record had one */
	struct expiry	*s_heap;	/* min-heap of expiries, by x_at */
	size_t		 s_nheap;
	size_t		 s_heapcap;
	size_t		 s_heapmark;	/* entries kept by the last pruning */
	size_t		 s_prunefrom;	/* a pruning's next entry + 1, or 0 */
	size_t		 s_pruneadded;	/* entries added during the pruning */
	int		 s_heaplost;	/* a push failed: rebuild before use */
	int		 s_chold;	/* store_hold_compaction's */
	struct cand	*s_scanbuf;	/* store_scan's, kept (scan_keep) */
	size_t		 s_scancap;	/* its entries */
	int		 s_group;	/* 1 inside store_group_begin/end */
	uint64_t	 s_gbytes;	/* the group's record bytes so far */
	uint64_t	 s_glast;	/* offset of its last record, or 0 */
	int		 s_pipe[2];	/* to the poll loop: durable moved */
	pthread_t	 s_tid;
	/* The rest is shared with the flusher, under s_mu. */
	pthread_mutex_t	 s_mu;
	pthread_cond_t	 s_cv;
	int		 s_stop;
	int		 s_syncfd;	/* what ALWAYS and EVERYSEC sync */
	int		 s_syncifd;	/* its index, for store_seal and loading */
	int		 s_notified;	/* s_pipe holds a byte (notify);
					   written under s_mu, read with NEWS */
	int		 s_busyfd;	/* being synced right now, or -1 */
	int		 s_closefd;	/* close after the sync of s_busyfd */
	int		 s_retirefd;	/* a replaced file for the flusher to
					   close: freeing it takes time */
	uint64_t	 s_want;	/* newest seq written */
	uint64_t	 s_wantend;	/* and the log's end in s_syncfd then */
	uint64_t	 s_durable;	/* newest seq known to be on disk */
	uint64_t	 s_gather;	/* ALWAYS: seqs a sync waits for... */
	uint64_t	 s_gather_ns;	/* ...at most this long (gather) */
	int		 s_gathering;	/* the flusher waits for them now */
	uint64_t	 s_fsyncs;
	int		 s_ioerr;	/* errno of the first failed flush */
	int		 s_bgfd;	/* compaction file to sync, or -1 */
	uint64_t	 s_bgoff;	/* written back from here on... */
	uint64_t	 s_bgend;	/* ...to here, a chunk at a time */
	unsigned	 s_bgreq;	/* number of that request */
	unsigned	 s_bgdone;	/* number of the last one finished */
	int		 s_bgerr;	/* and its errno */
	int		 s_final;	/* F_*, the last sync of a copy */
	int		 s_finalfd;	/* the copy's file */
	int		 s_finalerr;	/* the sync's errno */
	uint64_t	 s_finalseq;	/* every write up to it is in that sync */
	uint64_t	 s_finalend;	/* and the copy's log up to here */
	int		 s_loadjob;	/* loading: for the flusher (load_job): */
	uint64_t	 s_wbfrom;	/* log range [from, to) to write back, */
	uint64_t	 s_wbto;
	uint64_t	 s_iwbfrom;	/* the index's, */
	uint64_t	 s_iwbto;
	uint64_t	 s_ralog;	/* the log to read in up to this, */
	uint64_t	 s_rabkt;	/* and the buckets up to this offset */
	int		 s_seal;	/* SEAL_* */
	int		 s_prep;	/* P_*, a compaction's files: */
	uint64_t	 s_prepnb;	/* its buckets, */
	uint64_t	 s_prepsize;	/* its file's size (the one made), */
	uint64_t	 s_prepleast;	/* or at least this on a full disk */
	int		 s_prepfd;	/* the files made, */
	int		 s_prepifd;
	int		 s_preperr;	/* or why not */
	int		 s_growfd;	/* the log the flusher grows ahead of
					   the loop (grow_job), or -1: */
	uint64_t	 s_grown;	/* its size, allocated, so far */
	uint64_t	 s_growto;	/* and the size asked for */
};

#define HDR(f)	((struct hdr *)(void *)(f)->f_map)
/* The record at off, in the mapping or, not yet written, in the stage. */
#define REC_AT(f, off)	((f)->f_stage != NULL && (off) >= (f)->f_stoff ? \
	(f)->f_stage + ((off) - (f)->f_stoff) : (f)->f_map + (off))
#define BKT(f)	((struct bucket *)(void *)((f)->f_imap + PAGE))
/* The flusher has news for the poll loop (notify), read without s_mu. */
#define NEWS(s)	__atomic_load_n(&(s)->s_notified, __ATOMIC_RELAXED)

/*
 * store.c's helpers: the file, its header, records and the index, each
 * described where it is defined. The main thread's, but for a file that
 * no other thread holds (store_check's, a salvage's).
 */
void	seterr(char *err, size_t errlen, const char *fmt, ...);
char	*path_with(const char *path, const char *suffix);
uint64_t round_up(uint64_t n, uint64_t to);
uint64_t index_size(uint64_t nbuckets);
int	index_match(int fd, uint64_t nbuckets, uint64_t gen);
int	index_map(struct kvfile *f, const char *ipath, uint64_t gen);
int	index_mmap(struct kvfile *f, int match);
int	index_grow(struct store *s);
int	rename_pair(const char *from, const char *to);
void	unlink_pair(const char *path);
int	unlink_later(const char *path);
void	drop_file(struct kvfile *f);
unsigned shift_for(uint64_t nbuckets);
int	check_header(const struct hdr *h, uint64_t size, const char *path,
	    char *err, size_t errlen);
uint32_t hdr_icrc(const struct hdr *h);
uint32_t hdr_mcrc(const struct hdr *h);
void	hdr_init(struct hdr *h, uint64_t nbuckets, const uint8_t *seed,
	    const uint8_t *repl_id, uint64_t base_seq, uint32_t flags);
void	hdr_store(struct kvfile *f, uint64_t last_seq, int clean);
void	hdr_synced(struct hdr *h, uint64_t end);
uint64_t synced_end(const struct kvfile *f);
int	extend(int fd, uint64_t size, uint64_t newsize);
int	reserve(struct store *s, struct kvfile *f, uint64_t need);
void	grow_ahead(struct store *s);
int	lock_file(int fd, short type);
uint64_t rec_size(uint64_t klen, uint64_t vlen);
uint64_t rec_expiry(const struct rec *r);
void	rec_set_flags(char *rec, int flags);
void	rec_read(const struct kvfile *f, uint64_t off, struct rec *r);
int	rec_fits(const struct kvfile *f, uint64_t off);
int	rec_valid(const struct kvfile *f, uint64_t off, struct rec *r);
uint64_t written_end(const struct kvfile *f, uint64_t from);
uint64_t next_valid(const struct kvfile *f, uint64_t from, uint64_t end);
uint64_t hash_key(const struct store *s, const char *key, size_t klen);
uint64_t home(const struct kvfile *f, uint64_t h);
uint64_t cap(const struct kvfile *f);
int	find(const struct kvfile *f, uint64_t h, const char *key,
	    size_t klen, uint64_t *slotp);
int	index_put(struct kvfile *f, int found, uint64_t i, uint64_t h,
	    uint64_t off, uint64_t kvlen);
void	index_del(struct kvfile *f, uint64_t i, uint64_t tsize);
void	hex16(const uint8_t *in, char *out);
struct store *create_loading(const char *path, const uint8_t *id,
	    const uint8_t *seed, uint32_t flags, uint64_t seq, uint64_t keys,
	    enum store_fsync policy, char *err, size_t errlen);

/* store_check.c: one record into a store that is loading (salvage, restore). */
int	salvage_rec(void *store, const struct rec *r, uint64_t off);

/* store.c: the flusher's side of a compaction; all but the last under s_mu. */
void	release_fd(struct store *s, int fd);
void	retire_fd(struct store *s, int fd);
void	notify(struct store *s);
void	note_failure(struct store *s, int e);
int	stage_end(struct store *s);

/* store_compact.c, for the main thread. */
void	maybe_compact(struct store *s);
void	prep_job(struct store *s);
void	prep_cancel(struct store *s);
int	compact_work(struct store *s, uint64_t budget, uint64_t deadline,
	    int force);
void	compact_abort(struct store *s, const char *level, const char *why);
int	make_room(struct store *s, uint64_t nkeys);
void	unmap_old(struct store *s, uint64_t max);
void	retire_file(struct store *s, struct kvfile *old);

/*
 * repl.h: replication. On the primary, one pthread per replica pushes the
 * writes it is sent through repl_enqueue (recover.h: a recovery thread
 * refills a fresh primary from its most advanced replica). On a replica,
 * an announcer thread registers the replica with its primary. The threads
 * are blocking HTTP clients (client.c); the requests they make are
 * answered by the nodes' poll loops (replica.c answers /repl/...). The
 * record codec is shared by both sides.
 *
 * Thread rules: repl_codec functions are pure and any thread may call them.
 * Everything else is called from the main thread only.
 */

/*
 * A node's URL, NUL included: REPLICA_URLS' elements, ADVERTISE_URL,
 * PRIMARY_URL, a registration's body, KV_URL. The one limit for all.
 */
#define REPL_URL_MAX	256

struct sockaddr_storage;
struct store;

enum repl_op {
	REPL_PUT = 'P',
	REPL_DEL = 'D',
	REPL_END = 'E',		/* ends a snapshot; seq is the snapshot's */
	REPL_PUT_EXP = 'X'	/* on the wire only: a put with an expiry,
				   decoded as REPL_PUT with expires set */
};
/* OR'd into a put's or delete's op: more records of its transaction
 * follow (on the wire 'p', 'd', and 'x' for a put with an expiry). */
#define REPL_MORE	0x20

/* One decoded record; key and val point into the decoded buffer. */
struct repl_record {
	int		 op;
	uint64_t	 seq;
	const char	*key;
	size_t		 klen;
	const char	*val;
	size_t		 vlen;
	uint64_t	 expires;	/* a put's expiry, unix ms; 0: never */
	int		 more;		/* REPL_MORE was set: not the last of
					   its transaction */
};

struct repl_config {
	const char	*token;		/* REPL_TOKEN, or "" */
	const char	*self_url;	/* how this node's own loop is reached */
	const char	*advertise_url;	/* how others reach this node */
	const char	*primary_url;	/* replica: where to announce */
	size_t		 backlog_bytes;	/* REPL_BACKLOG_BYTES */
	size_t		 batch_bytes;	/* most bytes in one push */
	int		 timeout_ms;	/* connect, read and write timeouts */
	int		 recover_wait_ms;	/* fresh primary: wait for replicas */
	int		 drop_after_ms;	/* registered, silent this long: drop */
	void		(*on_ack)(void);	/* any thread: a replica acked */
	int		 recover;	/* REPL_RECOVER_*: repl_recover follows */
	struct store	*store;		/* the live store, beside which recovery
					   creates its copy (reads its path
					   only; until recovery is done) */
	const char	*peers_dns;	/* PEERS_DNS: a name listing every pod */
	const char	*peers_port;	/* the port its addresses are asked on */
	int		 max_registered;	/* MAX_REGISTERED_REPLICAS; 64 if 0 */
};

/*
 * An idle pusher sends a heartbeat this often, so a live replica's
 * last_contact_ms stays below it plus one round trip.
 */
#define REPL_HEARTBEAT_MS	1000
#define REPL_BATCH_BYTES	(1 << 20)	/* one push: ~8,000 small writes */
/* No sequence number goes past 2^53: it stays exact as a JSON number, and
 * far from wrapping, which would make every later write "durable". */
#define REPL_SEQ_MAX		((uint64_t)1 << 53)

/* A replica as the primary sees it, for /ready and /metrics. */
struct repl_peer {
	char		 url[REPL_URL_MAX];
	const char	*state;		/* "connecting", "syncing", "streaming", "down" */
	uint64_t	 acked_seq;
	uint64_t	 lag_writes;
	uint64_t	 lag_ms;
	uint64_t	 last_contact_ms;	/* ms since the last answer */
	uint64_t	 full_syncs;
	uint64_t	 partial_syncs;
	int		 registered;	/* 1 if it announced itself */
	char		 alias[REPL_URL_MAX];	/* its other URL, or "" */
};

/* This process's node id (32 hex digits) for /repl/state; after repl_init. */
const char *repl_node_id(void);


/* ---- Codec (any thread) ---- */

/*
 * Encode one record into buf[0..cap). Returns its length, or 0 if it does
 * not fit or breaks the length rules below. Wire format: top of repl.c.
 */
size_t	repl_encode(char *buf, size_t cap, int op, uint64_t seq,
	    const char *key, size_t klen, const char *val, size_t vlen);

/* repl_encode, of a put that expires at expires (0: never); op may carry
 * REPL_MORE, as repl_encode's. */
size_t	repl_encode_exp(char *buf, size_t cap, int op, uint64_t seq,
	    const char *key, size_t klen, const char *val, size_t vlen,
	    uint64_t expires);

/* Bytes repl_encode needs for a record with these lengths (a put with an
 * expiry: vlen + 8). */
size_t	repl_encoded_len(size_t klen, size_t vlen);

/*
 * Decode the record at buf[0..len). Returns the bytes it takes, 0 if buf
 * holds only part of it, -1 if it is malformed (unknown op, key of 0 or over
 * 1024 bytes, value over 2^31).
 */
ssize_t	repl_decode(const char *buf, size_t len, struct repl_record *rec);

/*
 * The bytes of the transaction whose first record is at buf[0..len) (a
 * record without REPL_MORE is one of one), with *nrec its records; 0 if
 * it does not end within len, -1 if a record is malformed.
 */
ssize_t	repl_group_len(const char *buf, size_t len, size_t *nrec);

/* Its records' bytes in a store at most: a record's header is 5 bytes
 * longer there, and padded to 8 (store.h: STORE_RECORD_BYTES); an expiry
 * takes 8 bytes in both. */
#define REPL_GROUP_STORE_BYTES(glen, nrec)	((glen) + 12 * (nrec))

/* ---- Primary ---- */

/*
 * Start the backlog; seq is the store's last sequence, id its repl id.
 * Call it first on either role (the announcer needs its config too); it
 * copies cfg's strings. Returns -1 with errno EINVAL or ENOMEM.
 */
int	repl_init(const struct repl_config *cfg, const char *repl_id,
	    uint64_t seq);

/*
 * Change the id and sequence the backlog continues from (after a sync).
 * replica.c calls it when /repl/sync/end swaps a store in on the primary,
 * before answering, so pushers re-handshake against the new data set.
 */
void	repl_reset(const char *repl_id, uint64_t seq);

/*
 * Feed a replica from now on; idempotent per url string (a registered one
 * that registers again refreshes its last-seen time). from is NULL for a
 * configured replica (REPLICA_URLS); for a registration it is the address
 * the request came from, and the pusher fed from it first resolves url and
 * drops it, never connecting, unless one of its addresses is from: until
 * then it is not a peer anywhere (repl_peers, recovery). Registered
 * replicas are dropped after drop_after_ms unreachable (60 s when 0),
 * until they register again. Returns -1 with errno EINVAL (bad URL),
 * ENAMETOOLONG, ENOSPC (max_registered are registered already) or
 * ECANCELED (shutting down).
 */
int	repl_add_replica(const char *url, const struct sockaddr_storage *from);

/* Append a write the store just made (main thread); op may carry
 * REPL_MORE. Never blocks on the network: a full backlog drops its oldest
 * records. */
void	repl_enqueue(int op, uint64_t seq, const char *key, size_t klen,
	    const char *val, size_t vlen);
/* repl_enqueue of a record whose put expires at expires (0: never); op
 * may carry REPL_MORE. */
void	repl_enqueue_exp(int op, uint64_t seq, const char *key, size_t klen,
	    const char *val, size_t vlen, uint64_t expires);

/* Wake the pushers for what was enqueued since the last call, up to seq
 * upto: the store's durable seq under FSYNC=always, its last otherwise
 * (main thread, once per event loop turn). */
void	repl_flush(uint64_t upto);

/*
 * Fill up to max peers, configured ones (REPLICA_URLS) first, then the
 * registered ones that passed the address check, in the order they came;
 * returns how many there are. last_contact_ms counts from when the peer
 * was added until it first answers.
 */
size_t	repl_peers(struct repl_peer *out, size_t max);

/*
 * After a crash, the primary took a new repl id: replicas that follow
 * old_id at or below seq upto hold a prefix of its history and resume
 * under the new id without a full sync (Redis PSYNC2's replid2). A replica
 * of old_id past upto holds writes this primary never had: it full-syncs.
 * repl_reset forgets it.
 */
void	repl_accept_history(const char *old_id, uint64_t upto);

/* ---- Replica ---- */

/*
 * The records from a seq to the newest, as this node's backlog holds them
 * (a replica enqueues what it applies), read a piece at a time so that
 * neither the copy nor the lock is ever longer than a piece.
 */
struct repl_tail {
	uint64_t	 epoch;		/* the backlog's, at the open */
	uint64_t	 slot;		/* the slot being read (left > 0) */
	uint64_t	 pos;		/* the next byte to read, or slot head */
	uint64_t	 end;		/* the ring's end at the open */
	size_t		 left;		/* of that record: 0 at a slot's head */
};

/*
 * Start t at seq from, up to the newest, *last. -1 with errno ESRCH (the
 * backlog follows another id) or ERANGE (from is not held: it left the
 * ring, or is past the newest + 1). Main thread.
 */
int	repl_tail_open(struct repl_tail *t, const char *id, uint64_t from,
	    uint64_t *last);

/*
 * Copy the next cap bytes of t's records at most into buf: 0 at the end,
 * -1 with errno ERANGE if what is left of them was overwritten or the
 * backlog restarted meanwhile. Main thread.
 */
ssize_t	repl_tail_read(struct repl_tail *t, char *buf, size_t cap);

/*
 * A reader of the backlog (events.c): set seq to the first record wanted,
 * epoch to UINT64_MAX and placed to 0; repl_read keeps the rest.
 */
struct repl_cursor {
	uint64_t	 seq;		/* the next record wanted */
	uint64_t	 epoch;		/* the backlog's, at the first read */
	uint64_t	 pos;		/* seq's ring position, once placed */
	int		 placed;
	uint64_t	 oldest;	/* out: the backlog's oldest seq */
};

/*
 * Copy whole records from cur->seq on into buf[0..cap), as many as fit, in
 * the wire format, and move cur past them. A record bigger than cap is
 * copied alone, its head and key only (an 'X' record keeps its expiry, so
 * vlen 8), with *cut its value's real length. Returns the bytes copied: 0 when nothing is there yet (a seq
 * past the newest waits for it). -1 with errno ERANGE when cur->seq is not
 * in the backlog (it left the ring, or never was: cur->oldest says what
 * is), ESTALE when the backlog restarted since the first read (repl_reset:
 * a full sync; seqs may not go on). Main thread; holds the mutex only for
 * the copy (placing the cursor the first time walks from the nearest
 * mark, as repl_tail does).
 */
ssize_t	repl_read(struct repl_cursor *cur, char *buf, size_t cap,
	    size_t *cut);

/*
 * Announce advertise_url to primary_url now and every few seconds, and
 * look primary_url up each time for repl_from_primary.
 */
int	repl_announce(void);

/*
 * Main thread: did a request from peer, to this node's address local,
 * come from the primary? Its addresses are primary_url's as the announcer
 * last looked them up (a miss has it look again, at most once a second:
 * pod IPs move). If one is 127.0.0.1 or ::1, the primary is on this host,
 * and so are both of those and local itself. Never blocks. 0 without an
 * announcer (no primary_url).
 */
int	repl_from_primary(const struct sockaddr_storage *peer,
	    const struct sockaddr_storage *local);

/* ---- Both ---- */

/* Give the pushers up to drain_ms to deliver what repl_flush let go, then
 * stop and join every thread. Blocks up to drain_ms, plus up to timeout_ms
 * (or the resolver's, resolve.h) for a thread inside connect or
 * resolve_host. */
void	repl_shutdown(int drain_ms);

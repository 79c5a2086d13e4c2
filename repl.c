/*
 * repl.c: replication for kvstore. On the primary, a backlog of recent
 * writes and one pusher thread per replica that streams them; a recovery
 * thread that refills a fresh, empty primary from its most advanced
 * replica. On a replica, an announcer thread that registers it with the
 * primary. Every thread here speaks HTTP/1.1 through client.c's blocking
 * client; the requests it makes are answered by the nodes' poll loops
 * (replica.c answers /repl/...). The record codec below is the format both
 * sides speak.
 *
 * WIRE PROTOCOL
 *
 * Every request carries "X-Kv-Repl-Token: <token>", "none" when REPL_TOKEN
 * is unset: a web page cannot send that header cross-site without a CORS
 * preflight, which no node grants (the token is never logged). Bodies have a Content-Length; answers must
 * too, except the snapshot, which is read to EOF.
 *
 *   GET  /repl/state            200 {"role":..,"repl_id":"<hex>","seq":N,
 *                               "node":"<hex>",..}; node is random per
 *                               process: one replica reached under two
 *                               URLs (REPLICA_URLS and its announcement)
 *                               is fed once, under the first
 *   POST /repl/session?id=I[&prev=J&upto=U]   200 "<token>\n": opens
 *                               the session that every apply names, and
 *                               ends the one before. With prev: a replica
 *                               that follows J at seq <= U takes the id I
 *                               (the primary renamed its history after a
 *                               crash: repl_accept_history);
 *                               403 unless from PRIMARY_URL's address (so
 *                               too sync/begin; repl_from_primary)
 *   POST /repl/apply?id=I&from=F&primary_seq=P&session=T
 *                               body: records F, F+1, ... (empty: heartbeat)
 *                               200 "<applied seq>\n"; 409 "resync: why";
 *                               403 when T is not the open session (a
 *                               newer one began): handshake again
 *   POST /repl/sync/begin?id=I&seq=S[&seed=K][&keys=N]   start a fresh
 *                               store beside the old, hashing keys with
 *                               the source's seed K, so that listing
 *                               cursors hold on every node of the data set
 *                               (no seed: a random one), with buckets for N
 *                               keys; 200 "<token>\n" names this sync
 *   POST /repl/sync/data?id=I&token=T   body: records, any number of times
 *   POST /repl/sync/end?id=I&seq=S&token=T   swap it in; applied seq is S
 *   GET  /repl/snapshot (HTTP/1.0)      headers X-Kv-Repl-Id, X-Kv-Seq: S,
 *                               X-Kv-Seed: K (32 hex digits), X-Kv-Keys: N
 *                               (the live keys at S);
 *                               body: every live key as a 'P' record, then
 *                               one 'E' record with seq S; EOF ends it, and
 *                               no 'E' record means it was cut short
 *   GET  /repl/tail?id=I&from=F  200, X-Kv-Seq: L, body (chunked):
 *                               records F..L, L the node's newest then,
 *                               from its backlog (a replica keeps what
 *                               it applied there), for a primary back
 *                               from a crash that lost them; 409 when
 *                               the backlog does not follow I or no
 *                               longer holds F; cut short (no last
 *                               chunk) if they leave it while sent
 *   POST /repl/register         body: the replica's advertise URL; the
 *                               primary feeds it only once that URL
 *                               resolves to the address the request came
 *                               from (checked before any connect), and
 *                               holds MAX_REGISTERED_REPLICAS at most
 *
 * A primary answers /repl/apply and /repl/sync/... 409: nothing pushes to
 * it. Its recovery (a fresh primary, or one back from a crash) pulls
 * instead: recover.c says how.
 *
 * A record, little-endian, written byte by byte (no struct packing):
 *
 *   0    1          9       11      15          15+klen
 *   +----+----------+-------+-------+-----------+-------------+
 *   | op |   seq    | klen  | vlen  | key bytes | value bytes |
 *   | u8 |   u64    | u16   | u32   |           |             |
 *   +----+----------+-------+-------+-----------+-------------+
 *
 * op is 'P' (put: key 1..1024 bytes, value below 2^31), 'X' (a put of a
 * key that expires: the value bytes are a u64 expiry, unix ms on the
 * primary's clock, never 0, then the value, so vlen is the value's
 * length + 8), 'D' (delete: key 1..1024 bytes, no value; also how a key
 * expires, decided by the primary alone) or 'E' (end of snapshot: no key,
 * no value, seq is the snapshot's). A batch is records back to back, seq
 * ascending and contiguous. Full syncs, tails and the backlog carry 'X'
 * like any record, so every copy of a key keeps its expiry.
 *
 * A transaction (POST /txn) is a group of records: each but its last has
 * op 'p', 'x' or 'd' (REPL_MORE, 0x20, OR'd into 'P', 'X' or 'D': more
 * follow), which are put, put with an expiry and delete too. A replica
 * applies a group in one turn of its loop, so no reader sees part of it,
 * and as one store group (store_group_begin), so a crash keeps all of it
 * or none: a pusher never ends a batch inside a group, and a replica
 * applies nothing of a group whose end is not in the batch (it answers
 * the seq before it, and the pusher handshakes again). The backlog keeps
 * the ops as they came, so /repl/tail carries groups too.
 *
 * Handshake (Redis PSYNC's shape): a pusher asks the replica's state. Same
 * repl id and a seq in [oldest seq in the backlog - 1, our seq]: partial
 * sync, streaming from its seq + 1. Otherwise full sync: the pusher reads
 * GET /repl/snapshot from this node's own loop (self_url) and forwards it to
 * the replica as begin/data.../end, then streams the backlog from the
 * snapshot's seq + 1; if that has already left the backlog, it backs off
 * and full-syncs again.
 *
 * THREAD MODEL
 *
 *   main thread   repl_init, repl_enqueue after each store write,
 *                 repl_add_replica, repl_reset, repl_peers, repl_recover
 *                 (recover.c), repl_announce, repl_shutdown. Never does
 *                 I/O here; it
 *                 only takes the mutex for a copy or a short scan.
 *   pusher (one per replica url)   handshake, sync, stream, back off.
 *   recovery (fresh primary)       recover.c: ask candidates (REPLICA_URLS,
 *                                  PEERS_DNS, checked registrations) until
 *                                  all answered or recover_wait_ms; pull
 *                                  the best one's snapshot into a fresh
 *                                  store; hand it over (hand, under mu,
 *                                  through repl_int.h's repl_lock).
 *   announcer (replica)            register with the primary every 3 s,
 *                                  looking PRIMARY_URL up for
 *                                  repl_from_primary (main thread).
 *
 * Why threads that block, as Redis syncio.c does for its synchronous
 * replication I/O: a replica's conversation is strictly sequential (ask,
 * wait, send, wait for the ack), so a blocking client on its own thread is
 * a few hundred lines where a state machine on the poll loop would be
 * thousands, and a slow replica then stalls only its own thread. Every
 * blocking call has a timeout (client.c: SO_RCVTIMEO, SO_SNDTIMEO, connect
 * through poll), and repl_shutdown unblocks the threads with shutdown(2)
 * on the sockets that client.c's hook publishes (publish below).
 *
 * The threads share one thing, the state below (backlog, peer table and a
 * few flags), behind one mutex and one condition variable. The condition
 * variable is broadcast on every change: new records, acks (for the drain),
 * the end of recovery, and stop. Nothing blocks on I/O with the mutex held.
 *
 * The backlog is a ring of backlog_bytes holding [u64 enqueue ms][record]
 * slots. Positions are absolute 64-bit byte offsets (the ring index is the
 * position modulo its size), so a pusher's position stays meaningful as the
 * ring wraps and "pos < start" says it fell behind. When full, the oldest
 * slots are dropped. A record bigger than the whole ring empties it and the
 * backlog restarts after that seq: pushers behind it full-sync, which the
 * snapshot serves from the store. A seq that does not follow the last one
 * (the store skipped) also restarts the backlog at that seq, so seqs in the
 * backlog are always contiguous.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "fmt.h"
#include "repl.h"
#include "repl_int.h"
#include "resolve.h"
#include "store.h"
#include "util.h"

#define REC_HEAD	15		/* op u8, seq u64, klen u16, vlen u32 */
#define SLOT_HEAD	8		/* enqueue time in front of a ring record */
#define SLOT_MIN	(SLOT_HEAD + REC_HEAD + 1)	/* a 1-byte key's */
#define MARK_EVERY	1024		/* seqs between two ring marks */
#define MAX_VAL		0x7fffffffUL	/* values below 2^31 */
#define DEF_BACKLOG	(16UL << 20)	/* REPL_BACKLOG_BYTES default */
#define DEF_BATCH	(256UL << 10)	/* bytes per push when unset */
#define SYNC_INFLIGHT	4		/* full sync batches sent unanswered */
#define DEF_TIMEOUT_MS	5000
#define BACKOFF_MIN_MS	100
#define BACKOFF_MAX_MS	3000
#define DEF_DROP_MS	60000		/* a registered peer silent this long goes */
#define ANNOUNCE_MS	3000		/* a restarted primary relearns in 3 s */
#define DEF_MAX_REGISTERED 64		/* MAX_REGISTERED_REPLICAS default */
#define MAX_RESYNCS	3		/* then back off: no full-sync storm */

#define LOCK()		(void)pthread_mutex_lock(&mu)
#define UNLOCK()	(void)pthread_mutex_unlock(&mu)

/* An outgoing batch, grown only for a record bigger than batch_bytes. */
struct batch {
	char		*b_buf;
	size_t		 b_cap;
	size_t		 b_len;
};

struct peer {
	char		 url[REPL_URL_MAX];
	char		 alias[REPL_URL_MAX];	/* another URL of it, or "" */
	char		 node[ID_MAX];	/* its /repl/state node, once known */
	int		 is_static;
	int		 registered;
	int		 verified;	/* static, or its URL resolves to from */
	struct sockaddr_storage from;	/* where it registered from */
	const char	*state;
	uint64_t	 acked_seq;
	uint64_t	 ack_pos;	/* ring position of acked_seq + 1 */
	uint64_t	 ack_epoch;	/* ack_pos is valid in this epoch only */
	int		 ack_ok;
	uint64_t	 added;		/* monotonic ms */
	uint64_t	 last_contact;	/* monotonic ms, 0 if never */
	uint64_t	 last_seen;	/* last answer or registration */
	uint64_t	 full_syncs;
	uint64_t	 partial_syncs;
	int		 fd;		/* the replica socket */
	int		 sfd;		/* the snapshot socket during a full sync */
	int		 gone;		/* dropped; waits in the dead list */
	int		 retry;		/* registered while down: end the backoff */
	pthread_t	 thread;
	struct peer	*next;
};

/* A pusher's private state; only its thread touches it. */
struct push {
	struct peer	*p;
	struct client	*rc;		/* to the replica */
	struct client	*sc;		/* to self_url, for the snapshot */
	struct batch	 out;
	uint64_t	 epoch;
	uint64_t	 pos;		/* ring position of next_seq */
	uint64_t	 next_seq;
	uint64_t	 sess;		/* the replica's session, for applies */
	int		 force_full;
	int		 streamed;	/* an apply succeeded: reset the backoff */
	int		 resyncs;	/* in a row, without an apply between */
	int		 down;		/* logged as down; log the way back */
	unsigned	 seed;
	char		 err[ERR_MAX];
};

enum { S_ERR = -1, S_STOP = 0, S_RESYNC = 1 };

static void	*pusher(void *);
static int	 address_matches(const char *, const struct sockaddr_storage *,
		    char *);
static void	*announcer(void *);
static void	 find_primary(void);
static void	 new_node_id(void);

/* ---- Shared state (all of it behind mu) ---- */

static pthread_mutex_t	 mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 cv;	/* every change is broadcast */
static int		 inited;
static char		 node_id[ID_MAX];	/* this process, in /repl/state */
static int		 stopping;	/* threads leave at their next check */
static int		 draining;	/* repl_shutdown started: no new work */
static int		 unannounced;	/* enqueued since repl_flush (main) */
static uint64_t		 announced;	/* bl.pushable, as main last set it */
static struct repl_config cfg;	/* set before any thread starts */
static char		 hdr_get[MAX_TOKEN_BYTES + 32];	/* the token */
static char		 hdr_post[MAX_TOKEN_BYTES + 80];	/* and a type */

static struct {
	char		*buf;
	size_t		 cap;
	uint64_t	 start;		/* absolute position of the oldest slot */
	uint64_t	 end;		/* absolute position after the newest */
	uint64_t	 first_seq;	/* seq at start; last_seq + 1 if empty */
	uint64_t	 last_seq;	/* this node's seq */
	uint64_t	 pushable;	/* pushers send up to here (repl_flush) */
	uint64_t	 epoch;		/* bumped by repl_reset */
	uint64_t	*marks;		/* ring positions of seqs that are
					   multiples of MARK_EVERY, by
					   seq / MARK_EVERY % nmarks */
	size_t		 nmarks;	/* enough for a ring of SLOT_MIN slots */
	char		 id[ID_MAX];
	char		 prev_id[ID_MAX];	/* repl_accept_history's, or "" */
	uint64_t	 prev_upto;
} bl;

static struct peer	*peers;		/* live, in repl_peers order */
static struct peer	*dead;		/* dropped, waiting to be joined */
static pthread_t	 ann_thread;
static int		 ann_started;
static uint64_t		 peers_gen;	/* bumped when a peer can be asked */
static char		 refused_url[REPL_URL_MAX];	/* the last refused */
static int		 ann_fd = -1;
/* A replica's primary: PRIMARY_URL's addresses as the announcer found. */
static struct {
	unsigned char	 a[MAX_ADDRS][16];
	int		 n;
	int		 again;		/* a stranger came: look again */
	uint64_t	 at;		/* when last looked up */
} prim;

static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0xff, 0xff };			/* ::ffff:a.b.c.d is IPv4 a.b.c.d */

/* ---- Small helpers ---- */

/* Wait on cv with mu held until signalled or the monotonic deadline. */
static void
wait_until(uint64_t deadline)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(deadline / 1000);
	ts.tv_nsec = (long)(deadline % 1000) * 1000000L;
	(void)pthread_cond_timedwait(&cv, &mu, &ts);
}

static void
put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void
put32(unsigned char *p, uint32_t v)
{
	int i;

	for (i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void
put64(unsigned char *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* Spelled out, not looped: compilers make each one load. */
static uint16_t
get16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static uint64_t
get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void
seterr(char *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)fmt_vbuf(err, ERR_MAX, fmt, ap);
	va_end(ap);
}

/* Parse decimal digits at s into *v; returns the end, or NULL if none. */
static const char *
parse_u64(const char *s, uint64_t *v)
{
	uint64_t n = 0;
	const char *p;

	for (p = s; *p >= '0' && *p <= '9'; p++) {
		if (n > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return NULL;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	if (p == s)
		return NULL;
	*v = n;
	return p;
}

/* A repl id goes into URLs and logs: hex digits only, or refuse it. */
static int
copy_id(char *dst, const char *src, size_t len)
{
	size_t i;

	if (len == 0 || len >= ID_MAX)
		return -1;
	for (i = 0; i < len; i++)
		if (strchr("0123456789abcdefABCDEF", src[i]) == NULL ||
		    src[i] == '\0')
			return -1;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return 0;
}

/*
 * The tiny scanner for /repl/state: find "name": in a flat JSON object. No
 * JSON library: the answer's shape is ours and has no nesting.
 */
static const char *
json_field(const char *s, const char *name)
{
	size_t n = strlen(name);
	const char *p;

	for (p = s; (p = strchr(p, '"')) != NULL; p++) {
		if (strncmp(p + 1, name, n) != 0 || p[n + 1] != '"')
			continue;
		p += n + 2;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != ':')
			continue;
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		return p;
	}
	return NULL;
}

static int
parse_state(const char *body, char *id, uint64_t *seq, char *node)
{
	const char *p, *q;

	if ((p = json_field(body, "repl_id")) == NULL || *p != '"')
		return -1;
	p++;
	if ((q = strchr(p, '"')) == NULL || copy_id(id, p, (size_t)(q - p)))
		return -1;
	if ((p = json_field(body, "seq")) == NULL ||
	    parse_u64(p, seq) == NULL)
		return -1;
	/* Optional: a node older than the field has none. */
	node[0] = '\0';
	if ((p = json_field(body, "node")) != NULL && *p == '"' &&
	    (q = strchr(p + 1, '"')) != NULL &&
	    copy_id(node, p + 1, (size_t)(q - p - 1)) == -1)
		node[0] = '\0';
	return 0;
}

/* Copy an answer body's first line, printable bytes only, for a log. */
void
reason(char *dst, size_t cap, const char *body, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len && n + 1 < cap && i < 120; i++) {
		if (body[i] == '\n' || body[i] == '\r')
			break;
		dst[n++] = (body[i] >= 0x20 && body[i] < 0x7f) ? body[i] : '?';
	}
	dst[n] = '\0';
}

static char *
dupstr(const char *s)
{
	return strdup(s == NULL ? "" : s);
}

/* ---- Record codec ---- */

size_t
repl_encoded_len(size_t klen, size_t vlen)
{
	if (klen > STORE_MAX_KEY || vlen > MAX_VAL)
		return SIZE_MAX;	/* never fits; no overflow below */
	return REC_HEAD + klen + vlen;
}

/* op without REPL_MORE, which only a put or a delete may carry. */
static int
base_op(int op)
{
	return op == (REPL_PUT | REPL_MORE) || op == (REPL_DEL | REPL_MORE) ||
	    op == (REPL_PUT_EXP | REPL_MORE) ? op & ~REPL_MORE : op;
}

/* A put's op, and REPL_MORE if op has it, for a put that expires. */
static int
exp_op(int op)
{
	return REPL_PUT_EXP | (op & REPL_MORE);
}

/* The length rules of each op, shared by encode and decode. */
static int
valid(int op, uint64_t klen, uint64_t vlen)
{
	switch (base_op(op)) {
	case REPL_PUT:
		return klen >= 1 && klen <= STORE_MAX_KEY && vlen <= MAX_VAL;
	case REPL_PUT_EXP:
		return klen >= 1 && klen <= STORE_MAX_KEY && vlen >= 8 &&
		    vlen <= MAX_VAL;
	case REPL_DEL:
		return klen >= 1 && klen <= STORE_MAX_KEY && vlen == 0;
	case REPL_END:
		return klen == 0 && vlen == 0;
	default:
		return 0;
	}
}

size_t
repl_encode(char *buf, size_t cap, int op, uint64_t seq, const char *key,
    size_t klen, const char *val, size_t vlen)
{
	return repl_encode_exp(buf, cap, op, seq, key, klen, val, vlen, 0);
}

size_t
repl_encode_exp(char *buf, size_t cap, int op, uint64_t seq,
    const char *key, size_t klen, const char *val, size_t vlen,
    uint64_t expires)
{
	unsigned char *p = (unsigned char *)buf;
	size_t n, x = 0;

	if (expires != 0 && base_op(op) == REPL_PUT) {
		op = exp_op(op);
		x = 8;
	}
	if (!valid(op, klen, vlen + x) ||
	    (n = repl_encoded_len(klen, vlen + x)) > cap)
		return 0;
	p[0] = (unsigned char)op;
	put64(p + 1, seq);
	put16(p + 9, (uint16_t)klen);
	put32(p + 11, (uint32_t)(vlen + x));
	if (klen > 0)
		memcpy(p + REC_HEAD, key, klen);
	if (x > 0)
		put64(p + REC_HEAD + klen, expires);
	if (vlen > 0)
		memcpy(p + REC_HEAD + klen + x, val, vlen);
	return n;
}

ssize_t
repl_decode(const char *buf, size_t len, struct repl_record *rec)
{
	const unsigned char *p = (const unsigned char *)buf;
	uint64_t klen, vlen;

	memset(rec, 0, sizeof(*rec));	/* no stale fields after 0 or -1 */
	if (len == 0)
		return 0;
	if (base_op(p[0]) != REPL_PUT && base_op(p[0]) != REPL_DEL &&
	    base_op(p[0]) != REPL_PUT_EXP && p[0] != REPL_END)
		return -1;	/* say so at once: a stream can stop early */
	if (len < REC_HEAD)
		return 0;
	klen = get16(p + 9);
	vlen = get32(p + 11);
	if (!valid(p[0], klen, vlen))
		return -1;
	if (len - REC_HEAD < klen + vlen)
		return 0;
	rec->op = base_op(p[0]);
	rec->more = rec->op != p[0];
	rec->seq = get64(p + 1);
	rec->key = buf + REC_HEAD;
	rec->klen = (size_t)klen;
	rec->val = buf + REC_HEAD + klen;
	rec->vlen = (size_t)vlen;
	if (rec->op == REPL_PUT_EXP) {
		rec->op = REPL_PUT;
		rec->expires = get64(p + REC_HEAD + klen);
		rec->val += 8;
		rec->vlen -= 8;
		if (rec->expires == 0)	/* never sent: 'P' says "never" */
			return -1;
	}
	return (ssize_t)(REC_HEAD + klen + vlen);
}

ssize_t
repl_group_len(const char *buf, size_t len, size_t *nrec)
{
	struct repl_record rec;
	size_t off = 0;
	ssize_t n;

	for (*nrec = 0; off < len;) {
		if ((n = repl_decode(buf + off, len - off, &rec)) <= 0)
			return n;
		off += (size_t)n;
		(*nrec)++;	/* the last one too: it takes room */
		if (!rec.more)
			return (ssize_t)off;
	}
	return 0;
}

/* ---- Requests (client.c does the HTTP) ---- */

/*
 * client.c's socket hook: publish fd where repl_shutdown finds it, and
 * refuse a new one once stopping, so that no thread is left to block in
 * a connect that shutdown cannot see.
 */
int
publish(void *arg, int fd)
{
	int	*slot = arg, refuse;

	LOCK();
	if (!(refuse = fd != -1 && stopping))
		*slot = fd;	/* -1 before close: never a reused fd */
	UNLOCK();
	return refuse ? -1 : 0;
}

/* A client of url whose socket repl_shutdown finds in *slot; or err. */
struct client *
new_client(const char *url, int *slot, char *err)
{
	struct client	*c;

	if ((c = client_new(url, cfg.timeout_ms, publish, slot)) == NULL)
		seterr(err, errno == EINVAL ? "bad URL %s: expected "
		    "http://host[:port]" : "%s: out of memory", url);
	return c;
}

/* Send a request with the token (and a POST's body type); client_error. */
int
req_send(struct client *c, const char *method, const char *target,
    int http10, const char *body, size_t blen)
{
	struct client_request	 rq;

	memset(&rq, 0, sizeof(rq));
	rq.method = method;
	rq.target = target;
	rq.extra = strcmp(method, "POST") == 0 ? hdr_post : hdr_get;
	rq.body = body;
	rq.body_len = blen;
	rq.http10 = http10;
	return client_send(c, &rq);
}

/* One request and its answer, of at most MAX_RESP_BODY bytes. */
static int
call(struct client *c, const char *method, const char *target,
    const char *body, size_t blen, struct client_response *rs)
{
	if (req_send(c, method, target, 0, body, blen) == -1)
		return -1;
	return client_recv(c, rs, MAX_RESP_BODY);
}

/* A POST's answer, which must be 200; anything else fills err. */
static int
post_answer(struct client *c, const char *target,
    struct client_response *rs, char *err)
{
	char	 why[128];

	if (client_recv(c, rs, MAX_RESP_BODY) == -1) {
		seterr(err, "POST %.80s: %s", target, client_error(c));
		return -1;
	}
	if (rs->status != 200) {
		reason(why, sizeof(why), rs->body, rs->body_len);
		seterr(err, "POST %.80s: %d %s", target, rs->status, why);
		return -1;
	}
	return 0;
}

static int
post_send(struct client *c, const char *target, const char *body,
    size_t blen, char *err)
{
	if (req_send(c, "POST", target, 0, body, blen) == -1) {
		seterr(err, "POST %.80s: %s", target, client_error(c));
		return -1;
	}
	return 0;
}

/* A POST that must answer 200; anything else fills err. */
static int
post(struct client *c, const char *target, const char *body, size_t blen,
    struct client_response *rs, char *err)
{
	if (post_send(c, target, body, blen, err) == -1)
		return -1;
	return post_answer(c, target, rs, err);
}

/* GET /repl/state; fills id, seq and node ("" if none). */
int
get_state(struct client *c, char *id, uint64_t *seq, char *node, char *err)
{
	struct client_response	 rs;
	char			 why[128];

	if (call(c, "GET", "/repl/state", NULL, 0, &rs) == -1) {
		seterr(err, "%s", client_error(c));
		return -1;
	}
	if (rs.status != 200) {
		reason(why, sizeof(why), rs.body, rs.body_len);
		seterr(err, "/repl/state answered %d %s%s", rs.status, why,
		    rs.status == 401 ? " (REPL_TOKEN differs?)" : "");
		return -1;
	}
	if (parse_state(rs.body, id, seq, node) == -1) {
		seterr(err, "/repl/state answer lacks repl_id or seq");
		return -1;
	}
	return 0;
}

/* ---- Full sync ---- */

/* What a snapshot's head says. */
struct snap {
	char		 id[ID_MAX];	/* X-Kv-Repl-Id */
	char		 seed[ID_MAX];	/* X-Kv-Seed, "" if none */
	uint64_t	 seq;		/* X-Kv-Seq */
	uint64_t	 keys;		/* X-Kv-Keys, 0 if none */
};

/* One full sync under way: src's snapshot into dst. */
struct sync {
	struct client	*src;
	const char	*src_url;
	struct client	*dst;
	struct batch	*b;
	struct snap	 snap;
	uint64_t	 token;		/* names the sync on dst */
	char		 target[192];	/* the current sync/... request */
	int		 inflight;	/* data batches sent, not answered */
	struct store	*load;		/* recovery: records go here instead */
	struct sync_result *res;
	char		*err;
};

/* Field name of src's answer as hex id into dst: 0, "" if absent, -1. */
static int
id_field(struct client *c, const char *name, char *dst)
{
	const char	*v;
	size_t		 len;

	dst[0] = '\0';
	if ((v = client_header(c, name, &len)) == NULL)
		return 0;
	return copy_id(dst, v, len);
}

/* Field name as a decimal: 0 with *n, 1 if absent, -1 if malformed. */
static int
u64_field(struct client *c, const char *name, uint64_t *n)
{
	const char	*v;
	size_t		 len;

	if ((v = client_header(c, name, &len)) == NULL)
		return 1;
	return parse_u64(v, n) == v + len ? 0 : -1;
}

/* GET /repl/snapshot from src (HTTP/1.0: its body ends at EOF), checked. */
static int
snapshot_open(struct sync *sy)
{
	struct client_response	 rs;
	const char		*bad = NULL, *body;
	char			 why[128];
	ssize_t			 n;
	int			 seq;

	if (req_send(sy->src, "GET", "/repl/snapshot", 1, NULL, 0) == -1 ||
	    client_recv_head(sy->src, &rs) == -1) {
		seterr(sy->err, "snapshot from %s: %s", sy->src_url,
		    client_error(sy->src));
		return -1;
	}
	if (rs.status != 200) {		/* its body says why, in a line */
		n = client_peek(sy->src, sizeof(why), &body);
		reason(why, sizeof(why), body, n > 0 ? (size_t)n : 0);
		seterr(sy->err, "snapshot from %s answered %d %s", sy->src_url,
		    rs.status, why);
		return -1;
	}
	if (id_field(sy->src, "X-Kv-Repl-Id", sy->snap.id) == -1)
		bad = "X-Kv-Repl-Id";
	else if (id_field(sy->src, "X-Kv-Seed", sy->snap.seed) == -1)
		bad = "X-Kv-Seed";
	else if ((seq = u64_field(sy->src, "X-Kv-Seq", &sy->snap.seq)) == -1)
		bad = "X-Kv-Seq";
	else if (u64_field(sy->src, "X-Kv-Keys", &sy->snap.keys) == -1)
		bad = "X-Kv-Keys";
	if (bad != NULL) {
		seterr(sy->err, "snapshot from %s: bad %s", sy->src_url, bad);
		return -1;
	}
	if (sy->snap.id[0] == '\0' || seq != 0) {
		seterr(sy->err, "snapshot from %s: 200 without X-Kv-Repl-Id and "
		    "X-Kv-Seq", sy->src_url);
		return -1;
	}
	return 0;
}

/* POST /repl/sync/begin to dst; its answer is the token naming the sync. */
static int
sync_begin(struct sync *sy)
{
	struct client_response	 rs;

	(void)fmt_buf(sy->target, sizeof(sy->target),
	    "/repl/sync/begin?id=%s&seq=%llu&keys=%llu%s%s", sy->snap.id,
	    (unsigned long long)sy->snap.seq,
	    (unsigned long long)sy->snap.keys,
	    sy->snap.seed[0] != '\0' ? "&seed=" : "", sy->snap.seed);
	if (post(sy->dst, sy->target, NULL, 0, &rs, sy->err) == -1)
		return -1;
	/* Another begin (a second pusher for the same replica) makes our
	 * data and end fail instead of mixing. */
	if (parse_u64(rs.body, &sy->token) == NULL) {
		seterr(sy->err, "sync/begin answered no token");
		return -1;
	}
	(void)fmt_buf(sy->target, sizeof(sy->target),
	    "/repl/sync/data?id=%s&token=%llu", sy->snap.id,
	    (unsigned long long)sy->token);
	return 0;
}

static int
batch_add(struct batch *b, const char *p, size_t n)
{
	char	*nb;
	size_t	 ncap;

	if (b->b_len + n > b->b_cap) {
		ncap = b->b_len + n > b->b_cap * 2 ? b->b_len + n :
		    b->b_cap * 2;
		if ((nb = resize(b->b_buf, b->b_cap, ncap)) == NULL)
			return -1;
		b->b_buf = nb;
		b->b_cap = ncap;
	}
	memcpy(b->b_buf + b->b_len, p, n);
	b->b_len += n;
	return 0;
}

/*
 * Send the batch as sync/data with up to SYNC_INFLIGHT in flight (HTTP/1.1
 * pipelining): the replica applies one while the next ones wait in its
 * socket and we read the snapshot for more, rather than each side in turn.
 */
static int
sync_data(struct sync *sy)
{
	struct client_response	 rs;

	if ((sy->inflight == SYNC_INFLIGHT && post_answer(sy->dst,
	    sy->target, &rs, sy->err) == -1) ||
	    post_send(sy->dst, sy->target, sy->b->b_buf, sy->b->b_len,
	    sy->err) == -1)
		return -1;
	if (sy->inflight < SYNC_INFLIGHT)
		sy->inflight++;
	sy->b->b_len = 0;
	return 0;
}

/* One record into the next batch for dst; a full batch goes first. */
static int
forward_record(struct sync *sy, const char *p, size_t n)
{
	if (sy->b->b_len > 0 && sy->b->b_len + n > cfg.batch_bytes &&
	    sync_data(sy) == -1)
		return -1;
	if (batch_add(sy->b, p, n) == -1) {
		seterr(sy->err, "out of memory for a %zu-byte record", n);
		return -1;
	}
	return 0;
}

/*
 * One record into recovery's copy. A record newer than the snapshot's seq
 * was written while it was read: it is stored as of that seq (nothing
 * existed at seq 0: skipped), as replica.c loads a full sync.
 */
static int
load_record(struct sync *sy, const struct repl_record *rec)
{
	uint64_t	 seq = rec->seq;
	int		 rc;

	if (seq == 0 || seq > REPL_SEQ_MAX) {
		seterr(sy->err, "snapshot from %s: seq %llu out of range",
		    sy->src_url, (unsigned long long)seq);
		return -1;
	}
	if (seq > sy->snap.seq) {
		if (sy->snap.seq == 0)
			return 0;
		seq = sy->snap.seq;
	}
	rc = rec->op == REPL_PUT ? store_put_exp(sy->load, rec->key,
	    rec->klen, rec->val, rec->vlen, rec->expires, seq, NULL) :
	    store_del(sy->load, rec->key,
	    rec->klen, seq, NULL);
	if (rc == -1) {
		seterr(sy->err, "loading the copy: %s", errstr());
		return -1;
	}
	return 0;
}

/*
 * Forward src's records to dst in batches of at most batch_bytes (one
 * bigger record alone), or load them into sy->load, until the END record. The snapshot is streamed,
 * never held whole: src buffers at most one record.
 */
static int
sync_copy(struct sync *sy)
{
	struct repl_record	 rec;
	const unsigned char	*h;
	const char		*p;
	size_t			 want = 1;
	ssize_t			 avail, n;

	for (;;) {
		if ((avail = client_peek(sy->src, want, &p)) == -1) {
			seterr(sy->err, "snapshot from %s: %s", sy->src_url,
			    client_error(sy->src));
			return -1;
		}
		if ((n = repl_decode(p, (size_t)avail, &rec)) == -1) {
			seterr(sy->err, "snapshot from %s: malformed record "
			    "after %llu keys", sy->src_url,
			    (unsigned long long)sy->res->keys);
			return -1;
		}
		if (n == 0 && (size_t)avail < want) {
			seterr(sy->err, "snapshot from %s cut short after "
			    "%llu keys (no END record)", sy->src_url,
			    (unsigned long long)sy->res->keys);
			return -1;
		}
		if (n == 0) {	/* the rest of the record, at least */
			h = (const unsigned char *)p;
			want = avail < REC_HEAD ? REC_HEAD : repl_encoded_len(
			    (size_t)get16(h + 9), (size_t)get32(h + 11));
			continue;
		}
		if (rec.op == REPL_END)
			break;
		if (sy->load != NULL) {
			if (load_record(sy, &rec) == -1)
				return -1;
		} else if (forward_record(sy, p, (size_t)n) == -1)
			return -1;
		client_consume(sy->src, (size_t)n);
		sy->res->bytes += (uint64_t)n;
		sy->res->keys += rec.op == REPL_PUT;
		want = 1;
	}
	if (rec.seq != sy->snap.seq) {
		seterr(sy->err, "snapshot from %s: END seq %llu, X-Kv-Seq "
		    "%llu", sy->src_url, (unsigned long long)rec.seq,
		    (unsigned long long)sy->snap.seq);
		return -1;
	}
	return 0;
}

/* The answers still due, the last batch, then sync/end: swap it in. */
static int
sync_end(struct sync *sy)
{
	struct client_response	 rs;

	for (; sy->inflight > 0; sy->inflight--)
		if (post_answer(sy->dst, sy->target, &rs, sy->err) == -1)
			return -1;
	if (sy->b->b_len > 0 && post(sy->dst, sy->target, sy->b->b_buf,
	    sy->b->b_len, &rs, sy->err) == -1)
		return -1;
	sy->b->b_len = 0;
	(void)fmt_buf(sy->target, sizeof(sy->target),
	    "/repl/sync/end?id=%s&seq=%llu&token=%llu", sy->snap.id,
	    (unsigned long long)sy->snap.seq, (unsigned long long)sy->token);
	return post(sy->dst, sy->target, NULL, 0, &rs, sy->err);
}

/*
 * Copy src's snapshot into dst: GET /repl/snapshot on src, then begin,
 * data..., end on dst: a pusher's full sync (src self, dst a replica;
 * recovery loads with pull_snapshot instead). Returns 0 with res filled,
 * or -1 with err set; src is closed either way (its answer ends at EOF).
 */
static int
full_sync(struct client *src, const char *src_url, struct client *dst,
    struct batch *b, struct sync_result *res, char *err)
{
	struct sync	 sy;
	int		 rc;

	memset(res, 0, sizeof(*res));
	b->b_len = 0;
	if (src == NULL || dst == NULL) {
		seterr(err, "cannot sync: no client for %s", src == NULL ?
		    src_url : "the replica");
		return -1;
	}
	memset(&sy, 0, sizeof(sy));
	sy.src = src;
	sy.src_url = src_url;
	sy.dst = dst;
	sy.b = b;
	sy.res = res;
	sy.err = err;
	rc = snapshot_open(&sy) == -1 || sync_begin(&sy) == -1 ||
	    sync_copy(&sy) == -1 ? -1 : 0;
	client_close(src);	/* HTTP/1.0: done with it */
	if (rc == -1 || sync_end(&sy) == -1)
		return -1;
	memcpy(res->id, sy.snap.id, sizeof(res->id));
	res->seq = sy.snap.seq;
	return 0;
}

/*
 * Recovery's copy: src's snapshot into a fresh store beside cfg.store
 * (store_create), which only this thread touches until the main thread
 * adopts it. Nothing is pushed anywhere: a primary takes no sync. Returns
 * 0 with *out and res filled, or -1 with err and nothing left behind; src
 * is closed either way.
 */
int
pull_snapshot(struct client *src, const char *src_url, struct store **out,
    struct sync_result *res, char *err)
{
	struct sync	 sy;
	char		 why[256];
	uint64_t	 keys;

	*out = NULL;
	memset(res, 0, sizeof(*res));
	memset(&sy, 0, sizeof(sy));
	sy.src = src;
	sy.src_url = src_url;
	sy.res = res;
	sy.err = err;
	if (snapshot_open(&sy) == -1)
		goto fail;
	/*
	 * A peer's hint: a data set at seq N has at most N keys (and
	 * store_create stops at 2^28). No lower bound, for the reason
	 * replica.c's sync/begin gives: the snapshot comes in hash order,
	 * and into fewer buckets than keys the copy is quadratic.
	 */
	keys = sy.snap.keys < sy.snap.seq ? sy.snap.keys : sy.snap.seq;
	if ((sy.load = store_create(cfg.store, sy.snap.id,
	    sy.snap.seed[0] != '\0' ? sy.snap.seed : NULL, sy.snap.seq, keys,
	    STORE_FSYNC_NO, why, sizeof(why))) == NULL) {
		seterr(err, "cannot start the copy: %s", why);
		goto fail;
	}
	if (sync_copy(&sy) == -1)
		goto fail;
	client_close(src);
	memcpy(res->id, sy.snap.id, sizeof(res->id));
	res->seq = sy.snap.seq;
	*out = sy.load;
	return 0;
fail:
	client_close(src);
	if (sy.load != NULL)
		store_discard(sy.load);
	return -1;
}

/* ---- Backlog (all with mu held) ---- */

static void
ring_put(uint64_t pos, const void *src, size_t n)
{
	size_t i = (size_t)(pos % bl.cap), k;

	k = n < bl.cap - i ? n : bl.cap - i;
	memcpy(bl.buf + i, src, k);
	if (k < n)
		memcpy(bl.buf, (const char *)src + k, n - k);
}

static void
ring_get(uint64_t pos, void *dst, size_t n)
{
	size_t i = (size_t)(pos % bl.cap), k;

	k = n < bl.cap - i ? n : bl.cap - i;
	memcpy(dst, bl.buf + i, k);
	if (k < n)
		memcpy((char *)dst + k, bl.buf, n - k);
}

/* Size of the slot at pos, its enqueue time and seq. */
static size_t
ring_slot(uint64_t pos, uint64_t *t, uint64_t *seq)
{
	unsigned char h[SLOT_HEAD + REC_HEAD];

	ring_get(pos, h, sizeof(h));
	if (t != NULL)
		*t = get64(h);
	if (seq != NULL)
		*seq = get64(h + SLOT_HEAD + 1);
	return SLOT_HEAD + REC_HEAD + (size_t)get16(h + SLOT_HEAD + 9) +
	    (size_t)get32(h + SLOT_HEAD + 11);
}

/*
 * Position of seq, first_seq <= seq <= last_seq + 1: from the mark at or
 * below it, MARK_EVERY slots at most, as a walk from the oldest slot took
 * a 16 MiB ring of small records about a millisecond, and a 1 GiB one
 * 0.1 s, holding mu and so the loop's writes. Handshakes and an event
 * stream's first read (from since=) call it. A mark is trusted only if
 * its slot is still in the ring and holds its seq: positions only grow,
 * and a restart of the backlog leaves them all behind bl.start.
 */
static uint64_t
ring_find(uint64_t seq)
{
	uint64_t pos = bl.start, s = bl.first_seq, m, at, mseq;

	m = seq / MARK_EVERY * MARK_EVERY;
	at = bl.marks[m / MARK_EVERY % bl.nmarks];
	if (m > s && at >= bl.start && at < bl.end) {
		(void)ring_slot(at, NULL, &mseq);
		if (mseq == m) {
			pos = at;
			s = m;
		}
	}
	for (; s < seq && pos < bl.end; s++)
		pos += ring_slot(pos, NULL, NULL);
	return pos;
}

/* Does pos, placed in epoch, still point at next_seq inside the backlog? */
static int
in_backlog(uint64_t epoch, uint64_t pos, uint64_t next_seq)
{
	uint64_t seq;

	if (epoch != bl.epoch || pos < bl.start || pos > bl.end)
		return 0;
	if (pos == bl.end)
		return next_seq == bl.last_seq + 1;
	(void)ring_slot(pos, NULL, &seq);
	return seq == next_seq;
}

/* How long the oldest write p has not acknowledged has waited. */
static uint64_t
lag_ms(const struct peer *p, uint64_t now)
{
	uint64_t t, pos;

	if (p->acked_seq >= bl.last_seq || bl.start == bl.end)
		return 0;
	if (p->ack_ok && p->ack_epoch == bl.epoch && p->ack_pos >= bl.start &&
	    p->ack_pos < bl.end)
		pos = p->ack_pos;
	else
		pos = bl.start;	/* unknown or fell out: at least this */
	(void)ring_slot(pos, &t, NULL);
	return now > t ? now - t : 0;
}

/* Free what repl_init copied and the backlog. */
static void
free_state(void)
{
	free((char *)cfg.token);
	free((char *)cfg.self_url);
	free((char *)cfg.advertise_url);
	free((char *)cfg.primary_url);
	free((char *)cfg.peers_dns);
	free((char *)cfg.peers_port);
	free(bl.buf);
	free(bl.marks);
	memset(&cfg, 0, sizeof(cfg));
	memset(&bl, 0, sizeof(bl));
}

int
repl_init(const struct repl_config *c, const char *repl_id, uint64_t seq)
{
	pthread_condattr_t ca;

	if (inited || c == NULL || repl_id == NULL ||
	    strlen(repl_id) >= ID_MAX ||
	    (c->token != NULL && strlen(c->token) > MAX_TOKEN_BYTES)) {
		errno = EINVAL;
		return -1;
	}
	memset(&bl, 0, sizeof(bl));
	new_node_id();
	cfg = *c;
	if (cfg.backlog_bytes == 0)
		cfg.backlog_bytes = DEF_BACKLOG;
	if (cfg.batch_bytes == 0)
		cfg.batch_bytes = DEF_BATCH;
	if (cfg.timeout_ms <= 0)
		cfg.timeout_ms = DEF_TIMEOUT_MS;
	if (cfg.recover_wait_ms < 0)
		cfg.recover_wait_ms = 0;
	if (cfg.drop_after_ms <= 0)
		cfg.drop_after_ms = DEF_DROP_MS;
	if (cfg.max_registered <= 0)
		cfg.max_registered = DEF_MAX_REGISTERED;
	cfg.token = dupstr(c->token);
	cfg.self_url = dupstr(c->self_url);
	cfg.advertise_url = dupstr(c->advertise_url);
	cfg.primary_url = dupstr(c->primary_url);
	cfg.peers_dns = dupstr(c->peers_dns);
	cfg.peers_port = dupstr(c->peers_port != NULL ? c->peers_port : "80");
	bl.cap = cfg.backlog_bytes;
	bl.buf = malloc(bl.cap);	/* pages are touched only as used */
	/* Marks for as many seqs as a ring of the smallest slots holds, so
	 * that none in the ring is overwritten: 8 bytes per 24 KiB of it. */
	bl.nmarks = bl.cap / (SLOT_MIN * MARK_EVERY) + 2;
	bl.marks = calloc(bl.nmarks, sizeof(*bl.marks));
	if (cfg.token == NULL || cfg.self_url == NULL ||
	    cfg.advertise_url == NULL || cfg.primary_url == NULL ||
	    cfg.peers_dns == NULL || cfg.peers_port == NULL || bl.buf == NULL ||
	    bl.marks == NULL)
		goto fail;
	if (pthread_condattr_init(&ca) != 0)
		goto fail;
	if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&cv, &ca) != 0) {
		(void)pthread_condattr_destroy(&ca);
		goto fail;
	}
	(void)pthread_condattr_destroy(&ca);
	(void)fmt_buf(bl.id, sizeof(bl.id), "%s", repl_id);
	bl.first_seq = seq + 1;
	bl.last_seq = bl.pushable = announced = seq;
	/* The token is never logged: client.c never quotes header lines. */
	(void)fmt_buf(hdr_get, sizeof(hdr_get), "X-Kv-Repl-Token: %s\r\n",
	    cfg.token[0] != '\0' ? cfg.token : "none");
	(void)fmt_buf(hdr_post, sizeof(hdr_post), "%sContent-Type: "
	    "application/octet-stream\r\n", hdr_get);
	stopping = draining = 0;
	recover_init(&cfg);	/* no pusher syncs from empty */
	memset(&prim, 0, sizeof(prim));
	peers_gen = 0;
	inited = 1;
	return 0;
fail:
	free_state();
	errno = ENOMEM;
	return -1;
}

void
repl_reset(const char *repl_id, uint64_t seq)
{
	if (!inited)
		return;
	LOCK();
	(void)fmt_buf(bl.id, sizeof(bl.id), "%s", repl_id);
	bl.prev_id[0] = '\0';
	bl.start = bl.end;
	bl.first_seq = seq + 1;
	bl.last_seq = bl.pushable = announced = seq;
	bl.epoch++;
	(void)pthread_cond_broadcast(&cv);
	UNLOCK();
	kv_log("info", "repl: backlog restarts at seq %llu, repl id %s",
	    (unsigned long long)seq + 1, repl_id);
}

void
repl_enqueue(int op, uint64_t seq, const char *key, size_t klen,
    const char *val, size_t vlen)
{
	repl_enqueue_exp(op, seq, key, klen, val, vlen, 0);
}

void
repl_enqueue_exp(int op, uint64_t seq, const char *key, size_t klen, const char *val,
    size_t vlen, uint64_t expires)
{
	unsigned char h[SLOT_HEAD + REC_HEAD], x[8];
	size_t need, xlen = 0;
	int skipped = 0, huge = 0;
	uint64_t last = 0;

	if (expires != 0 && base_op(op) == REPL_PUT) {
		op = exp_op(op);
		put64(x, expires);
		xlen = 8;
	}
	if (!inited || !valid(op, klen, vlen + xlen) || op == REPL_END)
		return;
	need = SLOT_HEAD + repl_encoded_len(klen, vlen + xlen);
	put64(h, mono_ms());
	h[SLOT_HEAD] = (unsigned char)op;
	put64(h + SLOT_HEAD + 1, seq);
	put16(h + SLOT_HEAD + 9, (uint16_t)klen);
	put32(h + SLOT_HEAD + 11, (uint32_t)(vlen + xlen));
	LOCK();
	if (seq != bl.last_seq + 1) {
		/* Contiguity is what makes a position a seq: restart. */
		skipped = 1;
		last = bl.last_seq;
		bl.start = bl.end;
		bl.first_seq = seq;
	}
	if (need > bl.cap) {
		huge = 1;
		bl.start = bl.end;
		bl.first_seq = seq + 1;
	} else {
		while (bl.end - bl.start + need > bl.cap) {
			bl.start += ring_slot(bl.start, NULL, NULL);
			bl.first_seq++;
		}
		if (seq % MARK_EVERY == 0)
			bl.marks[seq / MARK_EVERY % bl.nmarks] = bl.end;
		ring_put(bl.end, h, sizeof(h));
		ring_put(bl.end + sizeof(h), key, klen);
		if (xlen > 0)
			ring_put(bl.end + sizeof(h) + klen, x, xlen);
		if (vlen > 0)
			ring_put(bl.end + sizeof(h) + klen + xlen, val, vlen);
		bl.end += need;
	}
	bl.last_seq = seq;
	UNLOCK();
	unannounced = 1;
	if (skipped)
		kv_log("warn", "repl: seq %llu does not follow %llu; the "
		    "backlog restarts there", (unsigned long long)seq,
		    (unsigned long long)last);
	if (huge)
		kv_log("warn", "repl: write %llu (%zu bytes) is bigger than "
		    "the %zu-byte backlog; replicas behind it will full-sync",
		    (unsigned long long)seq, need, bl.cap);
}

void
repl_accept_history(const char *old_id, uint64_t upto)
{
	if (!inited)
		return;
	LOCK();
	(void)fmt_buf(bl.prev_id, sizeof(bl.prev_id), "%s", old_id);
	bl.prev_upto = upto;
	UNLOCK();
}

int
repl_tail_open(struct repl_tail *t, const char *id, uint64_t from,
    uint64_t *last)
{
	int rc = 0;

	memset(t, 0, sizeof(*t));
	if (!inited) {
		errno = ESRCH;
		return -1;
	}
	LOCK();
	if (strcmp(id, bl.id) != 0) {
		errno = ESRCH;
		rc = -1;
	} else if (from < bl.first_seq || from > bl.last_seq + 1) {
		errno = ERANGE;
		rc = -1;
	} else {
		t->epoch = bl.epoch;
		t->slot = t->pos = ring_find(from);
		t->end = bl.end;
		*last = bl.last_seq;
	}
	UNLOCK();
	return rc;
}

ssize_t
repl_tail_read(struct repl_tail *t, char *buf, size_t cap)
{
	size_t n = 0, k;
	int rc = 0;

	LOCK();
	/* The slot to read from must still be in the ring. */
	if (t->epoch != bl.epoch || (t->left > 0 ? t->slot : t->pos) <
	    bl.start)
		rc = -1;	/* overwritten, or restarted */
	while (rc == 0 && n < cap && t->pos < t->end) {
		if (t->left == 0) {	/* a slot's head: skip its time */
			t->slot = t->pos;
			t->left = ring_slot(t->pos, NULL, NULL) - SLOT_HEAD;
			t->pos += SLOT_HEAD;
		}
		k = t->left < cap - n ? t->left : cap - n;
		ring_get(t->pos, buf + n, k);
		t->pos += k;
		t->left -= k;
		n += k;
	}
	UNLOCK();
	if (rc == -1) {
		errno = ERANGE;
		return -1;
	}
	return (ssize_t)n;
}

ssize_t
repl_read(struct repl_cursor *cur, char *buf, size_t cap, size_t *cut)
{
	unsigned char h[REC_HEAD];
	size_t n = 0, sz, klen, keep;
	int err = 0;

	*cut = 0;
	LOCK();
	cur->oldest = bl.first_seq;
	if (cur->epoch == UINT64_MAX)
		cur->epoch = bl.epoch;
	if (cur->epoch != bl.epoch)
		err = ESTALE;
	else if (!cur->placed && cur->seq > bl.last_seq + 1)
		;	/* not written yet: wait for it */
	else if (cur->placed ? !in_backlog(cur->epoch, cur->pos, cur->seq) :
	    cur->seq < bl.first_seq)
		err = ERANGE;
	else if (!cur->placed) {
		/* From now on, the common case, needs no scan. */
		cur->pos = cur->seq > bl.last_seq ? bl.end :
		    ring_find(cur->seq);
		cur->placed = 1;
	}
	for (; err == 0 && cur->placed && cur->pos < bl.end; cur->seq++) {
		sz = ring_slot(cur->pos, NULL, NULL) - SLOT_HEAD;
		if (n + sz > cap) {
			/*
			 * Alone and too big: its head and key only, and an
			 * 'X' record's expiry, without which it is malformed.
			 */
			ring_get(cur->pos + SLOT_HEAD, h, REC_HEAD);
			klen = get16(h + 9);
			keep = h[0] == REPL_PUT_EXP ? 8 : 0;
			if (n > 0 || cap < REC_HEAD + klen + keep)
				break;
			*cut = get32(h + 11) - keep;
			n = REC_HEAD + klen + keep;
			ring_get(cur->pos + SLOT_HEAD, buf, n);
			put32((unsigned char *)buf + 11, (uint32_t)keep);
			cur->pos += sz + SLOT_HEAD;
			cur->seq++;
			break;
		}
		ring_get(cur->pos + SLOT_HEAD, buf + n, sz);
		n += sz;
		cur->pos += sz + SLOT_HEAD;
	}
	UNLOCK();
	if (err != 0) {
		errno = err;
		return -1;
	}
	return (ssize_t)n;
}

/*
 * Wake the pushers once for everything enqueued since the last call, as
 * Redis writes to its replicas once per event loop turn: a wake per write
 * costs two context switches and sends batches of one record. Nothing past
 * upto is pushed yet: under FSYNC=always what a flush made durable goes
 * out at once, a flush's worth in one batch per replica.
 */
void
repl_flush(uint64_t upto)
{
	if (!unannounced || upto <= announced)
		return;
	LOCK();
	if (upto > bl.last_seq)
		upto = bl.last_seq;
	if (upto > bl.pushable) {
		bl.pushable = upto;
		(void)pthread_cond_broadcast(&cv);
	}
	announced = bl.pushable;
	unannounced = announced < bl.last_seq;
	UNLOCK();
}

/* ---- Addresses ---- */

/* sa's IP as 16 bytes, IPv4 mapped (::ffff:a.b.c.d); -1 if not IP. */
static int
addr16(const void *sa, unsigned char *a)
{
	const struct sockaddr_in *s4 = sa;
	const struct sockaddr_in6 *s6 = sa;

	if (s6->sin6_family == AF_INET6) {
		memcpy(a, &s6->sin6_addr, 16);
		return 0;
	}
	if (s4->sin_family != AF_INET)
		return -1;
	memset(a, 0, 10);
	a[10] = a[11] = 0xff;
	memcpy(a + 12, &s4->sin_addr, 4);
	return 0;
}

/*
 * a as text, for a URL (in brackets: v6) or a log line: dotted when IPv4
 * mapped, else eight hex groups (valid, if not the shortest form).
 */
void
addr_text(const unsigned char *a, char *buf, size_t cap, int v6brackets)
{
	int	 i, o;

	if (memcmp(a, mapped, 12) == 0) {
		(void)fmt_buf(buf, cap, "%u.%u.%u.%u", a[12], a[13], a[14],
		    a[15]);
		return;
	}
	o = fmt_buf(buf, cap, "%s", v6brackets ? "[" : "");
	for (i = 0; i < 16 && o > 0 && (size_t)o < cap; i += 2)
		o += fmt_buf(buf + o, cap - (size_t)o, "%x%s",
		    a[i] << 8 | a[i + 1], i < 14 ? ":" : v6brackets ? "]" :
		    "");
}

/*
 * url's addresses into a[max] (16 bytes each); how many, or -1 with why
 * in err. Blocks in the resolver: never on the loop.
 */
int
url_addrs(const char *url, unsigned char (*a)[16], int max, char *err)
{
	struct sockaddr_storage	 sa[RESOLVE_MAX];
	int			 i, rc, n = 0;

	if ((rc = client_resolve(url, sa, max)) < 0) {
		seterr(err, "%s does not resolve: %s", url,
		    resolve_error(rc));
		return -1;
	}
	for (i = 0; i < rc; i++)
		n += addr16(&sa[i], a[n]) == 0;
	return n;
}

/*
 * Does url's host resolve to from, the address a registration came from?
 * In Kubernetes a pod's name resolves to its IP; locally localhost to
 * 127.0.0.1 and ::1. Otherwise POST /repl/register would make this node
 * connect to any host and port, and /ready tell which answer. Resolves on
 * the calling thread (a pusher, never the loop) and connects nowhere.
 * 1 if so, 0 if not with why in err.
 */
static int
address_matches(const char *url, const struct sockaddr_storage *from,
    char *err)
{
	unsigned char	 f[16], a[MAX_ADDRS][16];
	char		 want[48], got[48];
	int		 i, n;

	if (addr16(from, f) == -1) {
		seterr(err, "it came from no IP address");
		return 0;
	}
	if ((n = url_addrs(url, a, MAX_ADDRS, err)) == -1)
		return 0;
	for (i = 0; i < n; i++)
		if (memcmp(a[i], f, 16) == 0)
			return 1;
	addr_text(f, want, sizeof(want), 0);
	addr_text(a[0], got, sizeof(got), 0);
	seterr(err, "it resolves to %s, not to %s, the address it registered "
	    "from", n > 0 ? got : "nothing", want);
	return 0;
}

/* ---- Pushers ---- */

/*
 * 32 random hex digits: unique per process is all it must be, so when
 * /dev/urandom cannot be read, the clock and the PID make do.
 */
static void
new_node_id(void)
{
	unsigned char r[16];
	uint64_t t = mono_ms() ^ ((uint64_t)getpid() << 32);
	int fd, i, ok = 0;

	if ((fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)) != -1) {
		ok = read(fd, r, sizeof(r)) == (ssize_t)sizeof(r);
		close(fd);
	}
	for (i = 0; !ok && i < 16; i++)
		r[i] = (unsigned char)(t >> (i % 8 * 8) ^ (uint64_t)i * 151);
	for (i = 0; i < 16; i++) {
		node_id[2 * i] = "0123456789abcdef"[r[i] >> 4];
		node_id[2 * i + 1] = "0123456789abcdef"[r[i] & 15];
	}
	node_id[32] = '\0';
}

const char *
repl_node_id(void)
{
	return node_id;
}

int
repl_add_replica(const char *url, const struct sockaddr_storage *from)
{
	struct client *probe;
	struct peer *p, *reap, **pp;
	uint64_t now = mono_ms();
	int rc, ret = -1, registered = from != NULL, nreg = 0;

	if (!inited || url == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (strlen(url) >= REPL_URL_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((probe = client_new(url, 0, NULL, NULL)) == NULL) {
		if (errno == EINVAL)
			kv_log("warn", "repl: bad URL %s: expected "
			    "http://host[:port]", url);
		return -1;
	}
	client_free(probe);
	LOCK();
	reap = dead;	/* join them below, without the mutex */
	dead = NULL;
	if (draining) {
		UNLOCK();
		errno = ECANCELED;
		goto out;
	}
	for (p = peers; p != NULL; p = p->next) {
		if (strcmp(p->url, url) == 0 || strcmp(p->alias, url) == 0)
			break;
		nreg += !p->is_static;
	}
	if (p != NULL) {
		if (registered) {
			p->registered = 1;
			p->last_seen = now;
		}
		/*
		 * A replica announces itself as it starts: feed it now,
		 * not after up to BACKOFF_MAX_MS of backoff.
		 */
		if (registered && strcmp(p->state, "down") == 0) {
			p->retry = 1;
			(void)pthread_cond_broadcast(&cv);
		}
		UNLOCK();
		ret = 0;
		goto out;
	}
	/* Each registration is a thread: a bounded number of them. */
	if (registered && nreg >= cfg.max_registered) {
		UNLOCK();
		kv_log("warn", "repl: refused to register %s: %d replicas are "
		    "registered already (MAX_REGISTERED_REPLICAS)", url,
		    cfg.max_registered);
		errno = ENOSPC;
		goto out;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		UNLOCK();
		errno = ENOMEM;
		goto out;
	}
	(void)fmt_buf(p->url, sizeof(p->url), "%s", url);
	p->is_static = p->verified = !registered;
	p->registered = registered;
	if (registered)
		p->from = *from;
	p->state = "connecting";
	p->added = p->last_seen = now;
	p->fd = p->sfd = -1;
	if ((rc = start_thread(&p->thread, pusher, p)) != 0) {
		UNLOCK();
		free(p);
		errno = rc;
		goto out;
	}
	/* Configured peers first, then registered ones as they came. */
	for (pp = &peers; *pp != NULL && (registered || (*pp)->is_static);
	    pp = &(*pp)->next)
		;
	p->next = *pp;
	*pp = p;
	UNLOCK();
	ret = 0;
	kv_log(registered ? "debug" : "info", "replica %s: added (%s)", url,
	    registered ? "registered; checking its address" : "REPLICA_URLS");
out:
	while (reap != NULL) {
		struct peer *n = reap->next;

		(void)pthread_join(reap->thread, NULL);
		free(reap);
		reap = n;
	}
	return ret;
}

size_t
repl_peers(struct repl_peer *out, size_t max)
{
	struct peer *p;
	struct repl_peer *o;
	uint64_t now = mono_ms();
	size_t n = 0;

	if (!inited)
		return 0;
	LOCK();
	for (p = peers; p != NULL; p = p->next) {
		if (!p->verified)
			continue;	/* not a peer until its address checks */
		if (n++ >= max)
			continue;
		o = &out[n - 1];
		memcpy(o->url, p->url, sizeof(o->url));
		o->state = p->state;
		o->acked_seq = p->acked_seq;
		o->lag_writes = bl.last_seq > p->acked_seq ?
		    bl.last_seq - p->acked_seq : 0;
		o->lag_ms = lag_ms(p, now);
		o->last_contact_ms = now - (p->last_contact != 0 ?
		    p->last_contact : p->added);
		o->full_syncs = p->full_syncs;
		o->partial_syncs = p->partial_syncs;
		o->registered = p->registered;
		memcpy(o->alias, p->alias, sizeof(o->alias));
	}
	UNLOCK();
	return n;
}

/* Note an answer from the replica; log the way back from "down". */
static void
contact(struct push *ps)
{
	LOCK();
	ps->p->last_contact = ps->p->last_seen = mono_ms();
	UNLOCK();
}

/* Whether the backlog holds records for ps that may be pushed. Under mu. */
static int
pushable(const struct push *ps)
{
	return ps->pos < bl.end && ps->next_seq <= bl.pushable;
}

/*
 * Stream the backlog from ps->pos: wait for records or the heartbeat,
 * copy a batch under the mutex, send it without. Returns S_STOP, S_RESYNC
 * (handshake again) or S_ERR.
 */
static int
stream(struct push *ps)
{
	struct peer *p = ps->p;
	struct client_response r;
	char target[160], id[ID_MAX], why[128];
	uint64_t last_send = mono_ms(), pos, first, cnt, pseq, applied;
	uint64_t whole_pos, whole_cnt;	/* after the batch's last whole group */
	size_t n, sz, wire, whole_n;
	char *nb;
	int nomem, open_group;

	for (;;) {
		LOCK();
		for (;;) {
			if (stopping) {
				UNLOCK();
				return S_STOP;
			}
			if (!in_backlog(ps->epoch, ps->pos, ps->next_seq)) {
				UNLOCK();
				kv_log("info", "replica %s: seq %llu is no "
				    "longer in the backlog; handshake again",
				    p->url, (unsigned long long)ps->next_seq);
				return S_RESYNC;
			}
			if (pushable(ps) ||
			    mono_ms() >= last_send + REPL_HEARTBEAT_MS)
				break;
			wait_until(last_send + REPL_HEARTBEAT_MS);
		}
		n = whole_n = 0;
		cnt = whole_cnt = 0;
		nomem = 0;
		whole_pos = ps->pos;
		for (pos = ps->pos; pos < bl.end &&
		    ps->next_seq + cnt <= bl.pushable; pos += sz, cnt++) {
			sz = ring_slot(pos, NULL, NULL);
			wire = sz - SLOT_HEAD;
			/* A transaction may pass batch_bytes: it is bounded
			 * by the API's body limit. */
			if (n > 0 && n + wire > cfg.batch_bytes &&
			    whole_n == n)
				break;
			if (n + wire > ps->out.b_cap) {
				if ((nb = resize(ps->out.b_buf, ps->out.b_cap,
				    n + wire)) == NULL) {
					nomem = 1;	/* send what fits */
					break;
				}
				ps->out.b_buf = nb;
				ps->out.b_cap = n + wire;
			}
			ring_get(pos + SLOT_HEAD, ps->out.b_buf + n, wire);
			n += wire;
			if ((ps->out.b_buf[n - wire] & REPL_MORE) == 0) {
				whole_n = n;
				whole_cnt = cnt + 1;
				whole_pos = pos + sz;
			}
		}
		/* The rest of an open group is being enqueued: next time. */
		open_group = whole_cnt == 0 && !nomem && pushable(ps);
		n = whole_n;
		cnt = whole_cnt;
		pos = whole_pos;
		first = ps->next_seq;
		pseq = bl.last_seq;
		memcpy(id, bl.id, sizeof(id));
		nomem = nomem && cnt == 0;
		UNLOCK();
		if (open_group) {
			(void)poll(NULL, 0, 1);
			continue;
		}
		if (nomem) {
			seterr(ps->err, "out of memory for a batch");
			return S_ERR;
		}
		(void)fmt_buf(target, sizeof(target),
		    "/repl/apply?id=%s&from=%llu&primary_seq=%llu&session=%llu",
		    id, (unsigned long long)first, (unsigned long long)pseq,
		    (unsigned long long)ps->sess);
		last_send = mono_ms();
		if (call(ps->rc, "POST", target, ps->out.b_buf, n, &r) == -1) {
			seterr(ps->err, "apply: %s", client_error(ps->rc));
			return S_ERR;
		}
		if (r.status == 409) {
			reason(why, sizeof(why), r.body, r.body_len);
			kv_log("info", "replica %s: %s; full sync", p->url,
			    why);
			ps->force_full = 1;	/* no partial/409 loop */
			return S_RESYNC;
		}
		if (r.status != 200 || parse_u64(r.body, &applied) == NULL) {
			reason(why, sizeof(why), r.body, r.body_len);
			seterr(ps->err, "apply answered %d %s", r.status, why);
			return S_ERR;
		}
		LOCK();
		p->acked_seq = applied;
		p->last_contact = p->last_seen = mono_ms();
		if (applied == first + cnt - 1) {
			p->ack_pos = pos;
			p->ack_epoch = ps->epoch;
			p->ack_ok = 1;
		}
		(void)pthread_cond_broadcast(&cv);	/* the drain waits */
		UNLOCK();
		if (cfg.on_ack != NULL && cnt > 0)
			cfg.on_ack();	/* writes may wait for this ack */
		if (applied != first + cnt - 1) {
			kv_log("warn", "replica %s: applied %llu, expected "
			    "%llu; handshake again", p->url,
			    (unsigned long long)applied,
			    (unsigned long long)(first + cnt - 1));
			return S_RESYNC;
		}
		ps->pos = pos;
		ps->next_seq += cnt;
		ps->streamed = 1;
		ps->resyncs = 0;
	}
}

/* Position ps at next_seq in the current backlog; -1 if it has left. */
static int
seek(struct push *ps, uint64_t next_seq)
{
	if (next_seq < bl.first_seq || next_seq > bl.last_seq + 1)
		return -1;
	ps->epoch = bl.epoch;
	ps->next_seq = next_seq;
	ps->pos = ring_find(next_seq);
	ps->p->acked_seq = next_seq - 1;
	ps->p->ack_pos = ps->pos;
	ps->p->ack_epoch = bl.epoch;
	ps->p->ack_ok = 1;
	return 0;
}

/*
 * Take p out of the peer table into the dead list, whose threads
 * repl_add_replica joins; p's own thread is on its way out. Under mu.
 */
static void
retire_peer(struct peer *p)
{
	struct peer **pp;

	for (pp = &peers; *pp != NULL; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	p->gone = 1;
	p->next = dead;
	dead = p;
}

/*
 * Is node, which p's URL reaches, fed already under another URL? Then
 * that peer takes p's URL as its alias (a registration under it keeps the
 * peer, and a static URL stays static) and p leaves: one replica, one
 * pusher. Otherwise p remembers its node.
 */
static int
same_node(struct peer *p, const char *node)
{
	struct peer *q;

	if (node[0] == '\0')
		return 0;
	LOCK();
	for (q = peers; q != NULL; q = q->next)
		if (q != p && !q->gone && strcmp(q->node, node) == 0)
			break;
	if (q == NULL) {
		memcpy(p->node, node, sizeof(p->node));
		UNLOCK();
		return 0;
	}
	memcpy(q->alias, p->url, sizeof(q->alias));
	q->is_static |= p->is_static;
	q->registered |= p->registered;
	if (p->last_seen > q->last_seen)
		q->last_seen = p->last_seen;
	retire_peer(p);
	UNLOCK();
	kv_log("info", "replica %s: the same node as %s; fed as that one",
	    p->url, q->url);
	return 1;
}

/*
 * Open the replica's session for data set id: its applies then name it, and
 * nobody else's are taken (a newer session ends this one). prev, if not
 * NULL, is the id the replica follows, an older name of this history up to
 * seq upto (repl_accept_history): the replica takes id. Then stream.
 */
static int
open_and_stream(struct push *ps, const char *id, const char *prev,
    uint64_t upto)
{
	struct client_response rs;
	char target[192];

	if (prev != NULL)
		(void)fmt_buf(target, sizeof(target), "/repl/session?id=%s&"
		    "prev=%s&upto=%llu", id, prev, (unsigned long long)upto);
	else
		(void)fmt_buf(target, sizeof(target), "/repl/session?id=%s",
		    id);
	if (post(ps->rc, target, NULL, 0, &rs, ps->err) == -1)
		return S_ERR;
	if (parse_u64(rs.body, &ps->sess) == NULL) {
		seterr(ps->err, "session answered no token");
		return S_ERR;
	}
	return stream(ps);
}

/* Handshake, sync, stream until something goes wrong. */
static int
session(struct push *ps)
{
	struct peer *p = ps->p;
	struct sync_result res;
	char id[ID_MAX], node[ID_MAX], cur[ID_MAX];
	uint64_t seq, first, last, t0;
	double secs;
	int partial, ok, older;

	if (get_state(ps->rc, id, &seq, node, ps->err) == -1)
		return S_ERR;
	if (same_node(p, node))
		return S_STOP;
	contact(ps);
	if (ps->down) {
		kv_log("info", "replica %s: reachable again", p->url);
		ps->down = 0;
	}
	LOCK();
	if (recover_pending()) {	/* repl_recover began after we did */
		UNLOCK();
		return S_RESYNC;
	}
	first = bl.first_seq;
	last = bl.last_seq;
	memcpy(cur, bl.id, sizeof(cur));
	/* Under an older name of this history, up to where it is ours. */
	older = bl.prev_id[0] != '\0' && strcmp(id, bl.prev_id) == 0 &&
	    seq <= bl.prev_upto;
	partial = !ps->force_full && (strcmp(id, bl.id) == 0 || older) &&
	    seq + 1 >= bl.first_seq && seq <= bl.last_seq &&
	    seek(ps, seq + 1) == 0;
	if (partial) {
		p->partial_syncs++;
		p->state = "streaming";
	} else {
		p->full_syncs++;
		p->state = "syncing";
	}
	UNLOCK();
	if (partial) {
		kv_log("info", "replica %s: partial sync from seq %llu%s%s",
		    p->url, (unsigned long long)seq + 1, older ? ", renamed "
		    "from " : "", older ? id : "");
		return open_and_stream(ps, cur, older ? id : NULL, seq);
	}
	if (first <= last)
		kv_log("info", "replica %s: full sync started (it has %s "
		    "seq %llu; the backlog holds %llu..%llu)", p->url, id,
		    (unsigned long long)seq, (unsigned long long)first,
		    (unsigned long long)last);
	else
		kv_log("info", "replica %s: full sync started (it has %s "
		    "seq %llu; the backlog is empty after %llu)", p->url, id,
		    (unsigned long long)seq, (unsigned long long)last);
	t0 = mono_ms();
	if (full_sync(ps->sc, cfg.self_url, ps->rc, &ps->out, &res,
	    ps->err) == -1)
		return S_ERR;
	contact(ps);
	secs = (double)(mono_ms() - t0) / 1000.0;
	kv_log("info", "replica %s: full sync finished: %llu keys, %.1f MB "
	    "in %.1f s (%.1f MB/s), seq %llu", p->url,
	    (unsigned long long)res.keys, (double)res.bytes / 1e6, secs,
	    secs > 0 ? (double)res.bytes / 1e6 / secs : 0.0,
	    (unsigned long long)res.seq);
	LOCK();
	memcpy(id, bl.id, sizeof(id));
	ok = strcmp(res.id, id) == 0;
	if (ok && (ok = seek(ps, res.seq + 1) == 0) != 0)
		p->state = "streaming";
	first = bl.first_seq;
	UNLOCK();
	ps->force_full = 1;	/* if the stream below fails, start over */
	if (strcmp(res.id, id) != 0) {
		seterr(ps->err, "the snapshot's repl id %s is not the "
		    "backlog's %s (repl_reset not called?)", res.id, id);
		return S_ERR;
	}
	if (!ok) {
		seterr(ps->err, "seq %llu left the backlog (which starts at "
		    "%llu) during the full sync", (unsigned long long)
		    res.seq + 1, (unsigned long long)first);
		return S_ERR;
	}
	ps->force_full = 0;
	return open_and_stream(ps, res.id, NULL, 0);
}

/*
 * One replica's thread: session, and on failure close, back off (100 ms
 * doubling to 3 s, with jitter so replicas do not reconnect in step, cut
 * short when the replica registers) and try again, resolving the name
 * afresh.
 */
static void *
pusher(void *arg)
{
	struct push ps;
	struct peer *p = arg;
	uint64_t backoff = BACKOFF_MIN_MS, wait, now;
	int rc, drop = 0;

	memset(&ps, 0, sizeof(ps));
	ps.p = p;
	ps.seed = ((unsigned)mono_ms() ^ (unsigned)(uintptr_t)p) | 1;
	if (!p->verified) {	/* p->from and p->url are fixed: no lock */
		if (!address_matches(p->url, &p->from, ps.err)) {
			LOCK();
			/* It announces again every 3 s: say it once. */
			rc = strcmp(refused_url, p->url) == 0;
			(void)fmt_buf(refused_url, sizeof(refused_url), "%s",
			    p->url);
			UNLOCK();
			kv_log(rc ? "debug" : "warn", "replica %s: registration "
			    "refused, never connected: %s", p->url, ps.err);
			LOCK();
			if (!stopping)	/* else repl_shutdown joins it */
				retire_peer(p);
			UNLOCK();
			return NULL;
		}
		LOCK();
		p->verified = 1;
		peers_gen++;	/* recovery asks it at once */
		(void)pthread_cond_broadcast(&cv);
		UNLOCK();
		kv_log("info", "replica %s: added (registered; its address "
		    "checks)", p->url);
	}
	if ((ps.sc = new_client(cfg.self_url, &p->sfd, ps.err)) == NULL)
		kv_log("error", "replica %s: self URL: %s; full syncs will "
		    "fail", p->url, ps.err);
	if ((ps.rc = new_client(p->url, &p->fd, ps.err)) == NULL) {
		kv_log("error", "replica %s: %s", p->url, ps.err);
		LOCK();
		p->state = "down";
		while (!stopping)
			(void)pthread_cond_wait(&cv, &mu);
		UNLOCK();
		goto out;
	}
	ps.out.b_cap = cfg.batch_bytes;
	if ((ps.out.b_buf = malloc(ps.out.b_cap)) == NULL)
		ps.out.b_cap = 0;
	for (;;) {
		LOCK();
		while (recover_pending() && !stopping)	/* never from empty */
			(void)pthread_cond_wait(&cv, &mu);
		rc = stopping;
		UNLOCK();
		if (rc)
			break;
		ps.streamed = 0;
		if ((rc = session(&ps)) == S_STOP)
			break;
		if (ps.streamed)	/* failures in a row grow the wait */
			backoff = BACKOFF_MIN_MS;
		if (rc == S_RESYNC && ++ps.resyncs <= MAX_RESYNCS)
			continue;	/* at once, on the same connection */
		if (rc == S_RESYNC)	/* a loop: slow it like a failure */
			seterr(ps.err, "%d resyncs in a row", MAX_RESYNCS + 1);
		client_close(ps.rc);
		if (ps.sc != NULL)
			client_close(ps.sc);
		now = mono_ms();
		LOCK();
		if (stopping) {
			UNLOCK();
			break;
		}
		p->state = "down";
		drop = !p->is_static &&
		    now - p->last_seen >= (uint64_t)cfg.drop_after_ms;
		if (drop)
			retire_peer(p);
		UNLOCK();
		if (!ps.down) {
			kv_log("warn", "replica %s: down: %s", p->url, ps.err);
			ps.down = 1;
		}
		if (drop) {
			kv_log("warn", "replica %s: unreachable for %.1f s; "
			    "dropped until it registers again", p->url,
			    cfg.drop_after_ms / 1000.0);
			break;
		}
		/* xorshift32 for the jitter: rand_r's 57 bytes, spared. */
		ps.seed ^= ps.seed << 13;
		ps.seed ^= ps.seed >> 17;
		ps.seed ^= ps.seed << 5;
		wait = backoff / 2 + (uint64_t)ps.seed % (backoff / 2 + 1);
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
		    backoff * 2;
		kv_log("debug", "replica %s: next attempt in %llu ms", p->url,
		    (unsigned long long)wait);
		now = mono_ms();
		LOCK();
		while (!stopping && !p->retry && mono_ms() < now + wait)
			wait_until(now + wait);
		p->retry = 0;
		UNLOCK();
	}
out:
	client_free(ps.rc);
	client_free(ps.sc);
	free(ps.out.b_buf);
	return NULL;
}

/* ---- For recover.c (repl_int.h): the lock and what it guards ---- */

void
repl_lock(void)
{
	LOCK();
}

void
repl_unlock(void)
{
	UNLOCK();
}

int
repl_stopping(void)
{
	return stopping;
}

void
repl_wait(uint64_t deadline)
{
	if (deadline == 0)
		(void)pthread_cond_wait(&cv, &mu);
	else
		wait_until(deadline);
}

void
repl_broadcast(void)
{
	(void)pthread_cond_broadcast(&cv);
}

uint64_t
repl_peers_gen(void)
{
	return peers_gen;
}

size_t
repl_each_peer(void (*fn)(void *, const char *, int), void *arg)
{
	struct peer	*p;
	size_t		 n = 0;

	for (p = peers; p != NULL; p = p->next, n++)
		if (fn != NULL && p->verified)
			fn(arg, p->url, p->is_static);
	return n;
}

void
repl_history(char *id, uint64_t *seq)
{
	memcpy(id, bl.id, ID_MAX);
	*seq = bl.last_seq;
}

/* ---- Announcer (replica) ---- */

int
repl_announce(void)
{
	int rc;

	if (!inited || ann_started || cfg.primary_url[0] == '\0' ||
	    cfg.advertise_url[0] == '\0') {
		errno = EINVAL;
		return -1;
	}
	if ((rc = start_thread(&ann_thread, announcer, NULL)) != 0) {
		errno = rc;
		return -1;
	}
	ann_started = 1;
	return 0;
}

/* Look PRIMARY_URL up for repl_from_primary; a failure keeps the last. */
static void
find_primary(void)
{
	unsigned char	 a[MAX_ADDRS][16];
	char		 err[ERR_MAX];
	int		 n;

	n = url_addrs(cfg.primary_url, a, MAX_ADDRS, err);
	LOCK();
	if (n >= 0) {
		memcpy(prim.a, a, sizeof(a));
		prim.n = n;
	}
	prim.again = 0;
	prim.at = mono_ms();
	UNLOCK();
}

/* 127.0.0.1 or ::1, the loopback addresses a name like localhost gives. */
static int
is_lo(const unsigned char *a)
{
	static const unsigned char lo6[16] = { [15] = 1 };

	return memcmp(a, lo6, 16) == 0 || (memcmp(a, mapped, 12) == 0 &&
	    a[12] == 127 && a[13] == 0 && a[14] == 0 && a[15] == 1);
}

int
repl_from_primary(const struct sockaddr_storage *peer,
    const struct sockaddr_storage *local)
{
	unsigned char	 f[16], l[16];
	int		 i, ok = 0, here = 0;

	if (!inited || addr16(peer, f) == -1)
		return 0;
	LOCK();
	for (i = 0; i < prim.n && !ok; i++) {
		ok = memcmp(prim.a[i], f, 16) == 0;
		here |= is_lo(prim.a[i]);
	}
	/* The primary is on this host: it may come from any of its names. */
	if (!ok && here)
		ok = is_lo(f) || (addr16(local, l) == 0 &&
		    memcmp(f, l, 16) == 0);
	if (!ok && mono_ms() - prim.at >= 1000) {
		prim.again = 1;		/* at most once a second */
		(void)pthread_cond_broadcast(&cv);
	}
	UNLOCK();
	return ok;
}

/* Register at once, then every ANNOUNCE_MS; log changes, not attempts. */
static void *
announcer(void *arg)
{
	struct client *c;
	struct client_response r;
	char err[ERR_MAX];
	uint64_t next;
	int ok, was = -1, stop;

	(void)arg;
	if ((c = new_client(cfg.primary_url, &ann_fd, err)) == NULL) {
		kv_log("error", "repl: PRIMARY_URL: %s", err);
		return NULL;
	}
	for (;;) {
		find_primary();
		ok = post(c, "/repl/register", cfg.advertise_url,
		    strlen(cfg.advertise_url), &r, err) == 0;
		client_close(c);	/* a fresh lookup each time; no idle fd */
		if (ok && was != 1)
			kv_log("info", "repl: registered %s with the primary "
			    "%s", cfg.advertise_url, cfg.primary_url);
		else if (!ok && was != 0)
			kv_log("warn", "repl: cannot register with the "
			    "primary %s: %s (retrying every %d s)",
			    cfg.primary_url, err, ANNOUNCE_MS / 1000);
		was = ok;
		next = mono_ms() + ANNOUNCE_MS;
		LOCK();
		while (!stopping && mono_ms() < next) {
			if (prim.again) {	/* pod IPs move: look now */
				UNLOCK();
				find_primary();
				LOCK();
			} else
				wait_until(next);
		}
		stop = stopping;
		UNLOCK();
		if (stop)
			break;
	}
	client_free(c);
	return NULL;
}

/* ---- Shutdown ---- */

void
unblock(int fd)
{
	if (fd != -1)
		(void)shutdown(fd, SHUT_RDWR);	/* ENOTCONN is fine */
}

void
repl_shutdown(int drain_ms)
{
	struct peer *p, *all, *n;
	uint64_t deadline = mono_ms() + (uint64_t)(drain_ms > 0 ? drain_ms : 0);
	int pending;

	if (!inited)
		return;
	LOCK();
	draining = 1;
	for (;;) {
		pending = 0;
		for (p = peers; p != NULL; p = p->next)
			if (strcmp(p->state, "streaming") == 0 &&
			    p->acked_seq < bl.pushable)
				pending++;
		if (pending == 0 || mono_ms() >= deadline)
			break;
		wait_until(deadline);
	}
	stopping = 1;
	(void)pthread_cond_broadcast(&cv);
	for (p = peers; p != NULL; p = p->next) {
		unblock(p->fd);
		unblock(p->sfd);
	}
	for (p = dead; p != NULL; p = p->next) {
		unblock(p->fd);
		unblock(p->sfd);
	}
	recover_unblock();
	unblock(ann_fd);
	all = peers;
	peers = NULL;
	UNLOCK();
	if (pending > 0)
		kv_log("warn", "repl: %d replicas not caught up after %d ms; "
		    "stopping anyway", pending, drain_ms);
	/* The threads touch no peer list after stopping is set. */
	for (p = all; p != NULL; p = n) {
		n = p->next;
		(void)pthread_join(p->thread, NULL);
		free(p);
	}
	for (p = dead; p != NULL; p = n) {
		n = p->next;
		(void)pthread_join(p->thread, NULL);
		free(p);
	}
	dead = NULL;
	recover_end();
	if (ann_started)
		(void)pthread_join(ann_thread, NULL);
	ann_started = 0;
	(void)pthread_cond_destroy(&cv);
	free_state();
	inited = 0;
}

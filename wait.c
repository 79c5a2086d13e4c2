/*
 * wait.c: requests that wait on the loop, without a thread: a read for a
 * sequence this node has not applied yet (X-Kv-Min-Seq), a watch
 * (?index=&wait=), and a write waiting for replica acknowledgements
 * (X-Kv-Replicas) or, under FSYNC=always, for its flush. A waiter keeps a
 * copy of its request's head and runs it again (rerun) when its condition
 * holds or its time is up. wait_run looks at them every 10 ms and whenever
 * the loop wakes: linear in waiters, fine for thousands.
 */

#include <sys/types.h>

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "http.h"
#include "repl.h"
#include "recover.h"
#include "store.h"
#include "util.h"
#include "node.h"
#include "wait.h"

#define WATCH_DEFAULT_MS 300000		/* a watch without ?wait=: Consul's 5 min */
#define WATCH_MAX_MS	600000		/* and at most Consul's 10 min */
#define RECOVERY_COPY_MS 60000		/* a write waits for RECOVER_WAIT_MS and
					   then this long for a copy to end */
#define PARKED_BODY_BYTES (64 << 20)	/* bodies of parked writes, in all */

/* A write under FSYNC=always, answered once the flusher passes its seq. */
struct pending {
	uint64_t	 id;
	uint64_t	 seq;
	int		 status;
	const char	*msg;
	char		*body;		/* its own body (malloc'd), or NULL */
	size_t		 blen;
	struct pending	*next;
};

enum wait_kind {
	WAIT_SEQ,	/* a read for a seq not applied yet */
	WAIT_KEY,	/* a watch of a key */
	WAIT_LIST,	/* a watch of a prefix */
	WAIT_ACKS,	/* a write made, waiting for replicas */
	WAIT_RECOVERY	/* a write not made yet: the primary is recovering */
};

struct waiter {
	int		 w_kind;
	uint64_t	 w_id;
	uint64_t	 w_began;	/* monotonic ms */
	uint64_t	 w_deadline;
	uint64_t	 w_seq;		/* SEQ: wanted; KEY, LIST: index; ACKS:
					   the write's */
	int		 w_existed;	/* KEY: the key existed at the start */
	int		 w_fired;	/* LIST: a key under the prefix changed */
	int		 w_replicas;	/* ACKS: acknowledgements wanted */
	int		 w_status;	/* ACKS: the write's answer */
	const char	*w_msg;
	char		*w_body;	/* ACKS: as pending's body */
	size_t		 w_blen;
	char		*w_key;		/* KEY: the key; LIST: the prefix */
	size_t		 w_klen;
	struct http_request *w_req;	/* SEQ, KEY, LIST: to run again */
	struct waiter	*w_next;
};

static struct waiter *park(struct http_request *, int, uint64_t, uint64_t,
		    const char *, size_t);

static struct pending	*pending_head, *pending_tail;
/*
 * Answered ones, kept for the next writes: at most as many as were ever
 * pending at once (a write per connection). Freed after each flush, a
 * flush's worth emptied a page of musl's malloc, which unmapped it and
 * mapped it again for the next: two syscalls and a page fault a flush.
 */
static struct pending	*pending_free;
static struct waiter	*waiters;
static int		 nparked;	/* waiters, against node.max_parked */
static size_t		 parked_bytes;	/* their bodies */
static int		 replaying;	/* rerun answers a watch */
static void		(*rerun)(struct http_request *r);

void
wait_init(void (*fn)(struct http_request *r))
{
	rerun = fn;
}

/* ---- Writes: acknowledged when durable and replicated ---- */

/*
 * A write that was made but whose flush failed under FSYNC=always: it is
 * not on disk and never will be, so it must not be acknowledged.
 */
static void
reply_unflushed(uint64_t id, uint64_t seq, int e)
{
	reply_text(id, 503, "", "the write (seq %llu) is not acknowledged: "
	    "flushing it to disk failed (%s) and it may be lost; this node "
	    "takes no writes until it is restarted",
	    (unsigned long long)seq, strerror(e));
}

/*
 * A write's answer carries its version; a delete leaves no value to tag.
 * A transaction's answer is its JSON (body, freed here) and X-Kv-Seq.
 */
static void
reply_write(uint64_t id, int status, const char *msg, char *jbody,
    size_t jlen, uint64_t seq)
{
	char extra[96], body[32];
	size_t n = strlen(msg);

	reply_version(extra, seq, jbody == NULL && strcmp(msg, "deleted") !=
	    0);
	if (jbody != NULL) {
		http_reply(id, status, "application/json", extra, jbody, jlen);
		free(jbody);
		return;
	}
	memcpy(body, msg, n);		/* a short constant, no printf */
	body[n++] = '\n';
	http_reply(id, status, "text/plain; charset=utf-8", extra, body, n);
}

/*
 * Answer a write: at once, or under FSYNC=always once the flusher has put
 * seq on disk, queued in seq order (tick and the notify fd drain it).
 */
void
wait_ack_write(struct http_request *r, int status, const char *msg,
    uint64_t seq)
{
	wait_ack_body(r, status, msg, NULL, 0, seq);
}

void
wait_ack_body(struct http_request *r, int status, const char *msg,
    char *body, size_t blen, uint64_t seq)
{
	struct pending *p;
	struct waiter *w;
	uint64_t want = 0;

	if (req_header_u64(r, "X-Kv-Replicas", &want) == -1) {
		free(body);
		return;
	}
	if (want > 0) {
		if ((w = park(r, WAIT_ACKS, (uint64_t)node.replicas_wait_ms, seq,
		    NULL, 0)) == NULL) {
			free(body);
			return;
		}
		w->w_replicas = want > NODE_MAX_PEERS ? NODE_MAX_PEERS + 1 :
		    (int)want;
		w->w_status = status;
		w->w_msg = msg;
		w->w_body = body;
		w->w_blen = blen;
		return;
	}
	if (node.fsync != STORE_FSYNC_ALWAYS || store_durable_seq(node.store) >= seq) {
		reply_write(r->id, status, msg, body, blen, seq);
		return;
	}
	if ((p = pending_free) != NULL)
		pending_free = p->next;
	else if ((p = malloc(sizeof(*p))) == NULL) {
		free(body);
		reply_text(r->id, 503, "", "out of memory; the write was "
		    "made but is not yet known to be on disk");
		return;
	}
	p->id = r->id;
	p->seq = seq;
	p->status = status;
	p->msg = msg;
	p->body = body;
	p->blen = blen;
	p->next = NULL;
	if (pending_tail != NULL)
		pending_tail->next = p;
	else
		pending_head = p;
	pending_tail = p;
}

static void
flush_pending(void)
{
	struct pending *p;
	uint64_t durable;
	int e;

	if (pending_head == NULL)
		return;
	durable = store_durable_seq(node.store);
	while ((p = pending_head) != NULL && p->seq <= durable) {
		reply_write(p->id, p->status, p->msg, p->body, p->blen,
		    p->seq);
		pending_head = p->next;
		p->next = pending_free;
		pending_free = p;
	}
	if (pending_head != NULL && (e = store_error(node.store)) != 0) {
		while ((p = pending_head) != NULL) {
			reply_unflushed(p->id, p->seq, e);
			pending_head = p->next;
			free(p->body);
			free(p);
		}
	}
	if (pending_head == NULL)
		pending_tail = NULL;
}

void
wait_on_durable(void *arg)
{
	(void)arg;
	/*
	 * Drain the pipe even with no write waiting (FSYNC=no, everysec):
	 * left readable, it made poll() return at once, forever.
	 */
	(void)store_durable_seq(node.store);
	flush_pending();
}

/* ---- Parked requests ---- */

/* Park r; w_key (if any) is copied. Answers 503 itself on failure. */
static struct waiter *
park(struct http_request *r, int kind, uint64_t wait_ms, uint64_t seq,
    const char *key, size_t klen)
{
	struct waiter *w;

	/* Writes waiting for acks were let in by wait_has_room. */
	if (kind != WAIT_ACKS && !wait_has_room(r))
		return NULL;
	if ((w = calloc(1, sizeof(*w))) == NULL ||
	    (kind != WAIT_ACKS &&
	    (w->w_req = req_copy(r, kind == WAIT_RECOVERY)) == NULL) ||
	    (key != NULL && (w->w_key = malloc(klen + 1)) == NULL)) {
		if (w != NULL)
			free(w->w_req);
		free(w);
		reply_text(r->id, 503, "", "out of memory");
		return NULL;
	}
	if (key != NULL)
		memcpy(w->w_key, key, klen);
	w->w_klen = klen;
	w->w_kind = kind;
	w->w_id = r->id;
	w->w_began = mono_ms();
	w->w_deadline = w->w_began + wait_ms;
	w->w_seq = seq;
	w->w_next = waiters;
	waiters = w;
	nparked++;
	if (kind == WAIT_RECOVERY)
		parked_bytes += r->body_len;
	return w;
}

int
wait_has_room(struct http_request *r)
{
	if (nparked < node.max_parked)
		return 1;
	reply_text(r->id, 503, "Retry-After: 1\r\n", "too many requests are "
	    "waiting (MAX_PARKED=%d); try again later", node.max_parked);
	return 0;
}

/* ?wait= as milliseconds: "30s", "500ms", "5m", or plain seconds. */
static int
wait_ms_of(struct http_request *r, uint64_t *ms)
{
	const char *v;
	size_t len, digits;
	uint64_t n = 0, unit = 1000;

	*ms = WATCH_DEFAULT_MS;
	if ((v = http_query(r, "wait", &len)) == NULL)
		return 0;
	for (digits = 0; digits < len && digits < 9 && v[digits] >= '0' &&
	    v[digits] <= '9'; digits++)
		n = n * 10 + (uint64_t)(v[digits] - '0');
	if (len - digits == 2 && memcmp(v + digits, "ms", 2) == 0)
		unit = 1;
	else if (len - digits == 1 && v[digits] == 'm')
		unit = 60000;
	else if (!(len == digits || (len - digits == 1 && v[digits] == 's')))
		digits = 0;
	if (digits == 0) {
		reply_text(r->id, 400, "", "wait must be a duration such as "
		    "30s, 500ms or 5m");
		return -1;
	}
	*ms = n * unit > WATCH_MAX_MS ? WATCH_MAX_MS : n * unit;
	return 0;
}

/*
 * X-Kv-Min-Seq: n on a read: wait until this node has applied n. Returns
 * 1 if the request was parked or answered, 0 to go on.
 */
int
wait_min_seq(struct http_request *r)
{
	struct store_stats st;
	uint64_t want;
	int rc;

	if ((rc = req_header_u64(r, "X-Kv-Min-Seq", &want)) <= 0)
		return rc == -1;
	store_stats(node.store, &st);
	if (st.last_seq >= want)
		return 0;
	park(r, WAIT_SEQ, (uint64_t)node.min_seq_wait_ms, want, NULL, 0);
	return 1;
}

int
wait_recovery(struct http_request *r)
{
	if (!repl_recovering())
		return 0;
	if (parked_bytes + r->body_len > PARKED_BODY_BYTES) {
		reply_text(r->id, 503, "Retry-After: 1\r\n", "this primary is "
		    "recovering its data from its replicas, and %zu bytes of "
		    "writes already wait for it; nothing was written",
		    parked_bytes);	/* a read has no body: never here */
		return 1;
	}
	park(r, WAIT_RECOVERY, (uint64_t)node.recover_wait_ms + RECOVERY_COPY_MS,
	    0, NULL, 0);
	return 1;
}

/*
 * A watch's ?index= and ?wait=: 0 with both set, -1 if this is no watch
 * (or a watch being answered), 1 if a bad value was answered with 400.
 */
static int
watch_args(struct http_request *r, uint64_t *index, uint64_t *ms)
{
	int rc;

	if (replaying || (rc = req_query_u64(r, "index", index)) == 0)
		return -1;
	if (rc == -1 || wait_ms_of(r, ms) == -1)
		return 1;
	return 0;
}

/* Under ?index=: does the key (v, or NULL if missing) wait for a change? */
int
wait_watch_key(struct http_request *r, const char *key, size_t klen,
    const struct store_value *v)
{
	struct waiter *w;
	uint64_t index, ms;
	int rc;

	if ((rc = watch_args(r, &index, &ms)) != 0)
		return rc == 1;
	/* A missing key may have been deleted since index: say so now. */
	if (v != NULL ? v->seq > index : store_last_seq(node.store) > index)
		return 0;
	if ((w = park(r, WAIT_KEY, ms, index, key, klen)) != NULL)
		w->w_existed = v != NULL;
	return 1;
}

/* Under ?index=: does a listing wait for a change under its prefix? */
int
wait_watch_list(struct http_request *r, const char *prefix, size_t plen)
{
	uint64_t index, ms;
	int rc;

	if ((rc = watch_args(r, &index, &ms)) != 0)
		return rc == 1;
	/* No history per prefix: an index behind the node's answers now. */
	if (store_last_seq(node.store) > index)
		return 0;
	park(r, WAIT_LIST, ms, index, prefix, plen);
	return 1;
}

/* A write of key happened here: wake the listings watching its prefix. */
void
wait_note_write(const char *key, size_t klen)
{
	struct waiter *w;

	for (w = waiters; w != NULL; w = w->w_next)
		if (w->w_kind == WAIT_LIST && klen >= w->w_klen &&
		    memcmp(key, w->w_key, w->w_klen) == 0)
			w->w_fired = 1;
}

/* Replicas that have applied seq. */
static int
replicas_at(uint64_t seq)
{
	struct repl_peer peers[NODE_MAX_PEERS];
	size_t n, i;
	int count = 0;

	n = repl_peers(peers, NODE_MAX_PEERS);
	for (i = 0; i < n && i < NODE_MAX_PEERS; i++)
		count += peers[i].acked_seq >= seq;
	return count;
}

/*
 * MIN_REPLICAS_TO_WRITE: enough replicas streaming and within
 * MAX_REPLICA_LAG_MS? lag_ms ages only unacknowledged writes, so a replica
 * that froze while idle would look caught up until REPL_TIMEOUT_MS marks
 * it down; silence past a heartbeat counts as lag too, as Redis counts the
 * time since a replica's last ack. Answers 503 and returns 0 if not.
 */
int
wait_enough_replicas(struct http_request *r)
{
	struct repl_peer peers[NODE_MAX_PEERS];
	size_t n, i;
	int good = 0;

	if (node.min_replicas == 0)
		return 1;
	n = repl_peers(peers, NODE_MAX_PEERS);
	for (i = 0; i < n && i < NODE_MAX_PEERS; i++)
		good += strcmp(peers[i].state, "streaming") == 0 &&
		    peers[i].lag_ms <= (uint64_t)node.max_replica_lag_ms &&
		    peers[i].last_contact_ms <= (uint64_t)node.max_replica_lag_ms +
		    REPL_HEARTBEAT_MS;
	if (good >= node.min_replicas)
		return 1;
	reply_text(r->id, 503, "Retry-After: 1\r\n", "not enough replicas: "
	    "%d connected and within %d ms, MIN_REPLICAS_TO_WRITE is %d; "
	    "nothing was written", good, node.max_replica_lag_ms,
	    node.min_replicas);
	return 0;
}

/* Run a waiter's request again; its condition holds or its time is up. */
static void
replay(struct waiter *w)
{
	/* A watch answers now; a read that waited for a seq may still watch. */
	replaying = w->w_kind == WAIT_KEY || w->w_kind == WAIT_LIST;
	rerun(w->w_req);
	replaying = 0;
}

/* Is w done? Answers it if so. */
static int
settle(struct waiter *w, uint64_t now, uint64_t last_seq, int changed)
{
	struct store_value v;
	char extra[VERSION_HEADERS];
	int exists, acks, e;

	if (!http_alive(w->w_id))
		return 1;	/* the client left: nothing to answer */
	switch (w->w_kind) {
	case WAIT_SEQ:
		if (last_seq >= w->w_seq) {
			replay(w);
			return 1;
		}
		if (now < w->w_deadline)
			return 0;
		reply_text(w->w_id, 504, "", "waited %llu ms for seq %llu; "
		    "this node has applied %llu", (unsigned long long)(now -
		    w->w_began), (unsigned long long)w->w_seq,
		    (unsigned long long)last_seq);
		return 1;
	case WAIT_KEY:
		if (changed) {
			exists = store_get(node.store, w->w_key, w->w_klen, &v);
			if (exists != w->w_existed ||
			    (exists && v.seq > w->w_seq)) {
				replay(w);
				return 1;
			}
		}
		break;
	case WAIT_LIST:
		if (w->w_fired) {
			replay(w);
			return 1;
		}
		break;
	case WAIT_RECOVERY:
		if (!repl_recovering()) {
			replay(w);
			return 1;
		}
		if (now < w->w_deadline)
			return 0;
		reply_text(w->w_id, 503, "Retry-After: 1\r\n", "waited %llu ms "
		    "for this primary to recover its data from its replicas; "
		    "%s", (unsigned long long)(now - w->w_began),
		    w->w_req->body_len > 0 || !req_is_read(w->w_req) ?
		    "nothing was written" : "try again");
		return 1;
	case WAIT_ACKS:
		if (node.fsync == STORE_FSYNC_ALWAYS &&
		    store_durable_seq(node.store) < w->w_seq &&
		    (e = store_error(node.store)) != 0) {
			reply_unflushed(w->w_id, w->w_seq, e);
			return 1;
		}
		acks = replicas_at(w->w_seq);
		if (acks >= w->w_replicas &&
		    (node.fsync != STORE_FSYNC_ALWAYS ||
		    store_durable_seq(node.store) >= w->w_seq)) {
			reply_write(w->w_id, w->w_status, w->w_msg, w->w_body,
			    w->w_blen, w->w_seq);
			w->w_body = NULL;
			return 1;
		}
		if (now < w->w_deadline)
			return 0;
		/* The write is made: its version still lets the client read
		 * it back (X-Kv-Min-Seq) or compare-and-swap on it. */
		reply_version(extra, w->w_seq, w->w_body == NULL &&
		    strcmp(w->w_msg, "deleted") != 0);
		reply_text(w->w_id, 504, extra, "the write is kept (seq %llu), "
		    "but %d of the %d replicas asked for acknowledged it "
		    "within %llu ms", (unsigned long long)w->w_seq, acks,
		    w->w_replicas, (unsigned long long)(now - w->w_began));
		return 1;
	}
	if (now < w->w_deadline)
		return 0;
	replay(w);	/* a watch whose time is up answers what is there */
	return 1;
}

static void
run_waiters(void)
{
	static uint64_t seen_seq;
	struct store_stats st;
	struct waiter **pw, *w;
	uint64_t now = mono_ms();
	int changed;

	if (waiters == NULL)
		return;
	store_stats(node.store, &st);
	changed = st.last_seq != seen_seq;
	seen_seq = st.last_seq;
	if (node.stopping)	/* answer every wait now rather than cut it */
		for (w = waiters; w != NULL; w = w->w_next)
			w->w_deadline = now;
	for (pw = &waiters; (w = *pw) != NULL;) {
		if (!settle(w, now, st.last_seq, changed)) {
			pw = &w->w_next;
			continue;
		}
		*pw = w->w_next;
		nparked--;
		if (w->w_kind == WAIT_RECOVERY)
			parked_bytes -= w->w_req->body_len;
		free(w->w_req);
		free(w->w_key);
		free(w->w_body);
		free(w);
	}
}

void
wait_run(void)
{
	flush_pending();
	run_waiters();
}

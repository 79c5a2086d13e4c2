/*
 * replica.c: the answering side of the replication protocol that repl.c
 * speaks (its wire format is described at the top of repl.c). A replica
 * applies pushes here, on the main thread, in sequence order: a record at
 * or below the applied sequence is skipped (a repeated batch is harmless)
 * and a batch that starts past applied + 1 is a gap, refused with 409 so
 * that the pusher resynchronises. A full sync loads a fresh store beside
 * the live one (/repl/sync/begin, data, end) and swaps it in at its end,
 * so readers see the old data set or the new one, never half of either.
 * Neither holds the loop: a data batch (1 MiB, some 8,000 records, 10 ms
 * or more of page faults) is applied a slice per loop turn, and the end
 * waits for the store's flusher thread to write the copy to disk
 * (store_seal, 0.5 s for 3M keys) before the swap; each is answered when
 * done. Meanwhile http.c reads nothing more from that connection, so the
 * pusher's next batches wait in the socket.
 * Any node serves /repl/state and /repl/snapshot (a new primary recovers
 * from a replica's snapshot); the primary answers /repl/register.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "parse.h"
#include "http.h"
#include "repl.h"
#include "store.h"
#include "util.h"
#include "node.h"
#include "replica.h"
#include "wait.h"

#define APPLY_AHEAD	8		/* records prefetched ahead of the apply */
#define SNAPSHOT_STAGE_BYTES (1 << 20)	/* a snapshot's staging buffer */
#define SNAPSHOT_SCAN_KEYS 4096		/* keys per store_scan, at most */
#define SNAPSHOT_FIRST_BYTES (64 << 10)	/* grown for big values */
#define APPLY_SLICE_NS	1000000		/* a sync batch's share of a turn */
#define APPLY_CLOCK	8		/* records between looks at the clock */

/* The full sync in progress on this node: a fresh store beside the live. */
static struct store	*sync_store;
static char		 sync_id[33];
static uint64_t		 sync_seq;
static uint64_t		 sync_token;		/* names the sync in progress */
/* The primary's session: only applies that name it are taken. */
static uint64_t		 session_token;
/* A sync/data batch being applied across turns, answered at its end. */
static uint64_t		 batch_id;	/* its request, 0 when none */
static char		*batch_buf;	/* a copy: the connection's moves */
static size_t		 batch_cap, batch_len, batch_off;
/* A sync/end waiting for store_seal, 0 when none, since end_ms. */
static uint64_t		 end_id;
static uint64_t		 end_ms;

/* ---- Requests ---- */

/* Query parameter name as a decimal u64; -1 if absent or not a number. */
static int
query_u64(const struct http_request *r, const char *name, uint64_t *out)
{
	const char *v;
	size_t len, i;
	uint64_t n = 0;

	if ((v = http_query(r, name, &len)) == NULL || len == 0 || len > 20)
		return -1;
	for (i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9' || n > (UINT64_MAX - 9) / 10)
			return -1;
		n = n * 10 + (v[i] - '0');
	}
	*out = n;
	return 0;
}

/* Query parameter name (an id or a seed): 32 hex digits, into id[33]. */
static int
query_id(const struct http_request *r, const char *name, char *id)
{
	const char *v;
	size_t len, i;

	if ((v = http_query(r, name, &len)) == NULL || len != 32)
		return -1;
	for (i = 0; i < len; i++)
		if (strchr("0123456789abcdef", v[i]) == NULL || v[i] == '\0')
			return -1;
	memcpy(id, v, 32);
	id[32] = '\0';
	return 0;
}

/* Answer FSYNC=always writes as the store's flusher reports them. */
static void
watch_store(void)
{
	if (http_watch(store_notify_fd(node.store), wait_on_durable,
	    NULL) == -1)
		kv_log("error", "cannot watch the store's flush notifications "
		    "(%s): writes under FSYNC=always are answered on the "
		    "loop's tick instead", errstr());
}

/* A token nobody can guess (64 random bits, never 0), or -1 with errno. */
static int
new_token(uint64_t *t)
{
	do
		if (random_bytes(t, sizeof(*t)) == -1)
			return -1;
	while (*t == 0);
	return 0;
}

/* A primary never takes a sync: its own recovery pulls (recover.c). */
static int
refuse_on_primary(struct http_request *r)
{
	if (node.role != ROLE_PRIMARY)
		return 0;
	reply_text(r->id, 409, "", "this node is the primary: nothing pushes "
	    "to it");
	return 1;
}

/*
 * After a full sync's swap failed half-way (swap_in), the store in hand is
 * a file with no name: nothing applied or copied now would outlive the
 * restart that the node's status asks for.
 */
static int
refuse_when_stale(struct http_request *r)
{
	if (!node.store_stale)
		return 0;
	reply_text(r->id, 503, "", "a full sync could not be swapped in; "
	    "this replica applies nothing until it is restarted");
	return 1;
}

/*
 * Only the primary opens a session or a full sync: a request from another
 * address gets 403 (with a token set, it needs both). Otherwise anyone who
 * reaches this replica could slip records into its stream, or wipe it.
 */
static int
refuse_stranger(struct http_request *r)
{
	struct sockaddr_storage peer, local;

	if (http_peer(r->id, &peer, &local) == 0 &&
	    repl_from_primary(&peer, &local))
		return 0;
	reply_text(r->id, 403, "", "not from PRIMARY_URL (%s): only the "
	    "primary opens a session or a sync", *node.primary_url != '\0' ?
	    node.primary_url : "unset");
	return 1;
}

/* ---- The endpoints ---- */

void
replica_state(struct http_request *r)
{
	struct store_stats st;
	char body[256];
	int n;

	store_stats(node.store, &st);
	n = fmt_buf(body, sizeof(body), "{\"role\":\"%s\",\"repl_id\":\"%s\","
	    "\"seq\":%llu,\"keys\":%llu,\"synced\":%s,\"node\":\"%s\"}\n",
	    node_role_name(), st.repl_id, (unsigned long long)st.last_seq,
	    (unsigned long long)st.keys, st.synced ? "true" : "false",
	    repl_node_id());
	http_reply(r->id, 200, "application/json", "", body, n);
}

/*
 * Start the bucket of body's record at off on its way into the cache
 * (store_prefetch); returns the offset of the next record, or len when
 * there is none or it is malformed (apply_records says so when it gets
 * there).
 */
static size_t
prefetch_record(struct store *s, const char *body, size_t len, size_t off)
{
	struct repl_record rec;
	ssize_t n;

	if (off >= len || (n = repl_decode(body + off, len - off, &rec)) <= 0)
		return len;
	if (rec.op != REPL_END)
		store_prefetch(s, rec.key, rec.klen);
	return off + (size_t)n;
}

/*
 * Do the records of the group at buf[0..glen) take the seqs from seq on,
 * one each, all puts and deletes in range? Checked before the group's
 * first write: a store group ends only at its last record, so nothing
 * may stop the apply halfway through one.
 */
static int
group_ok(const char *buf, size_t glen, uint64_t seq)
{
	struct repl_record rec;
	size_t off;
	ssize_t n;

	for (off = 0; off < glen; off += (size_t)n, seq++)
		if ((n = repl_decode(buf + off, glen - off, &rec)) <= 0 ||
		    rec.op == REPL_END || rec.seq != seq ||
		    seq > REPL_SEQ_MAX)
			return 0;
	return 1;
}

/*
 * Apply the records of body from *offp on to s. Streaming (s is the
 * node.store): a record at or below *applied is skipped and the next must
 * be *applied + 1. Loading a full sync (s is sync_store, taken at
 * sync_seq): a record newer than sync_seq was written while the snapshot
 * was read, and the stream replays it from sync_seq + 1; it is stored as of
 * sync_seq meanwhile (so readers never miss the key), or skipped when
 * sync_seq is 0 (nothing existed then). Streaming, a transaction's records
 * (REPL_MORE) are made as one store group, or not at all when its end is
 * not in body: *applied then stays before it, and the pusher handshakes
 * again. Returns 0 once all are applied, 1 when the clock passed deadline
 * (0: none) with *offp the next record, never inside a group (a reader
 * would see part of a transaction), or -1 with a reason.
 */
static int
apply_records(struct store *s, const char *body, size_t len, size_t *offp,
    uint64_t *applied, uint64_t deadline, const char **why)
{
	struct repl_record rec;
	uint64_t seq, dummy;
	ssize_t n, glen;
	size_t off, ahead, nrec, gend = 0;
	int rc, k;

	/* ahead runs APPLY_AHEAD records in front, prefetching buckets. */
	for (ahead = *offp, k = 0; k < APPLY_AHEAD; k++)
		ahead = prefetch_record(s, body, len, ahead);
	for (off = *offp, k = 0; off < len; off += n) {
		/* Between groups only: a turn that ended inside one would
		 * let readers see part of a transaction. */
		if (deadline != 0 && ++k >= APPLY_CLOCK && off >= gend) {
			k = 0;
			if (mono_ns() >= deadline) {
				*offp = off;
				return 1;
			}
		}
		ahead = prefetch_record(s, body, len, ahead);
		if ((n = repl_decode(body + off, len - off, &rec)) <= 0) {
			*why = "malformed record";
			return -1;
		}
		if (rec.op == REPL_END)
			continue;
		if (rec.seq == 0 || rec.seq > REPL_SEQ_MAX) {
			*why = "a sequence number out of range";
			return -1;
		}
		seq = rec.seq;
		if (s == sync_store && seq > sync_seq) {
			if (sync_seq == 0)
				continue;
			seq = sync_seq;
		} else if (s != sync_store && seq <= *applied) {
			continue;
		} else if (s != sync_store && seq != *applied + 1) {
			*why = "gap in the sequence";
			return -1;
		}
		if (s != sync_store && rec.more && off >= gend) {
			/* A transaction: all of it, in one store group. */
			if ((glen = repl_group_len(body + off, len - off,
			    &nrec)) == 0)
				return 0;	/* its end is not here */
			if (glen < 0 || !group_ok(body + off, (size_t)glen,
			    seq)) {
				*why = "a malformed transaction";
				return -1;
			}
			if (store_group_begin(s, nrec,
			    REPL_GROUP_STORE_BYTES(glen, nrec)) == -1) {
				*why = strerror(errno);
				return -1;
			}
			gend = off + (size_t)glen;
		}
		rc = rec.op == REPL_PUT ? store_put_exp(s, rec.key, rec.klen,
		    rec.val, rec.vlen, rec.expires, seq, &dummy) :
		    store_del(s, rec.key,
		    rec.klen, seq, &dummy);
		if (off + (size_t)n == gend || rc == -1)
			store_group_end(s);
		if (rc == -1) {
			*why = errstr();
			return -1;
		}
		if (s != sync_store) {
			*applied = seq;
			wait_note_write(rec.key, rec.klen);
			/* Kept for a primary that loses it (/repl/tail). */
			repl_enqueue_exp(rec.op | (rec.more ? REPL_MORE : 0),
			    seq, rec.key, rec.klen, rec.val, rec.vlen,
			    rec.expires);
		}
	}
	return 0;
}

/*
 * The primary renamed its history after a crash (repl_accept_history):
 * follow id, if this node follows prev and holds no write past upto.
 * Returns -1 after answering, if the new id cannot be written.
 */
static int
take_new_name(struct http_request *r)
{
	struct store_stats st;
	char id[33], prev[33];
	uint64_t upto;

	if (http_query(r, "prev", NULL) == NULL)
		return 0;
	store_stats(node.store, &st);
	if (query_id(r, "id", id) == -1 || query_id(r, "prev", prev) == -1 ||
	    query_u64(r, "upto", &upto) == -1 || !st.synced ||
	    strcmp(prev, st.repl_id) != 0 || st.last_seq > upto ||
	    strcmp(id, prev) == 0)
		return 0;	/* its applies will be refused: full sync */
	if (store_set_repl_id(node.store, id) == -1) {
		reply_text(r->id, 500, "", "cannot write the new repl id: %s",
		    errstr());
		return -1;
	}
	repl_reset(id, st.last_seq);
	kv_log("info", "repl: the primary renamed data set %s to %s after a "
	    "crash; this replica's %llu writes are its history", prev, id,
	    (unsigned long long)st.last_seq);
	return 0;
}

void
replica_session(struct http_request *r)
{
	if (refuse_on_primary(r) || refuse_stranger(r))
		return;
	if (take_new_name(r) == -1)
		return;
	if (new_token(&session_token) == -1) {
		reply_text(r->id, 503, "", "no randomness for a session: %s",
		    errstr());
		return;
	}
	kv_log("debug", "repl: a new session from the primary");
	reply_text(r->id, 200, "", "%llu", (unsigned long long)session_token);
}

void
replica_apply(struct http_request *r)
{
	struct store_stats st;
	char id[33];
	const char *why = NULL;
	uint64_t from, applied, pseq, sess;
	size_t off = 0;

	if (refuse_on_primary(r) || refuse_when_stale(r))
		return;
	store_stats(node.store, &st);
	if (query_id(r, "id", id) == -1 || query_u64(r, "from", &from) == -1) {
		reply_text(r->id, 400, "", "apply needs id and from");
		return;
	}
	/* Pushes come only within the session the primary opened. */
	if (query_u64(r, "session", &sess) == -1 || session_token == 0 ||
	    sess != session_token) {
		reply_text(r->id, 403, "", "apply: not the open session; "
		    "POST /repl/session first");
		return;
	}
	if (query_u64(r, "primary_seq", &pseq) == 0 && pseq <= REPL_SEQ_MAX)
		node.primary_seq = pseq;
	applied = st.last_seq;
	if (strcmp(id, st.repl_id) != 0 || !st.synced) {
		reply_text(r->id, 409, "", "resync: this replica follows %s",
		    st.synced ? st.repl_id : "nothing yet");
		return;
	}
	if (r->body_len > 0 && from > applied + 1) {
		reply_text(r->id, 409, "", "resync: gap, applied %llu, batch "
		    "starts at %llu", (unsigned long long)applied,
		    (unsigned long long)from);
		return;
	}
	if (apply_records(node.store, r->body, r->body_len, &off, &applied, 0,
	    &why) == -1) {
		reply_text(r->id, errno == ENOSPC ? 507 : 409, "",
		    "resync: %s after seq %llu", why,
		    (unsigned long long)applied);
		return;
	}
	reply_text(r->id, 200, "", "%llu", (unsigned long long)applied);
}

/*
 * Abandon the full sync in progress, if any: answer what waits on it with
 * 409 and delete its file. XXX: a sync/end still waiting for its flush
 * makes store_discard wait for that too; only a second pusher for one
 * replica gets here then.
 */
static void
sync_drop(const char *why)
{
	if (batch_id != 0)
		reply_text(batch_id, 409, "", "resync: %s", why);
	if (end_id != 0) {
		http_unwatch(store_notify_fd(sync_store));
		reply_text(end_id, 409, "", "resync: %s", why);
	}
	batch_id = end_id = 0;
	batch_len = 0;
	if (sync_store != NULL)
		store_discard(sync_store);
	sync_store = NULL;
}

void
replica_sync_begin(struct http_request *r)
{
	char id[33], seed[33], err[256];
	uint64_t seq, keys = 0;
	size_t len;
	int has_seed = http_query(r, "seed", &len) != NULL;

	if (refuse_on_primary(r) || refuse_stranger(r) ||
	    refuse_when_stale(r))
		return;
	if (query_id(r, "id", id) == -1 || query_u64(r, "seq", &seq) == -1 ||
	    (has_seed && query_id(r, "seed", seed) == -1)) {
		reply_text(r->id, 400, "", "sync/begin needs id and seq (and "
		    "seed, if any, of 32 hex digits)");
		return;
	}
	if (seq > REPL_SEQ_MAX) {
		reply_text(r->id, 400, "", "sync/begin: seq %llu is past the "
		    "largest a data set may reach (2^53)",
		    (unsigned long long)seq);
		return;
	}
	/*
	 * How many keys are coming, when the pusher knows: buckets for
	 * them all at once. Only a hint, and a peer's: a data set at seq N
	 * has at most N keys (and store_create stops at 2^28). No lower
	 * bound: the snapshot comes in hash order, and the copy hashes
	 * with the same seed, so in a table with fewer buckets than keys
	 * every key probes to the end of one growing cluster, and the copy
	 * is quadratic (10M keys into the 8M buckets of a 4M bound never
	 * finished).
	 */
	if (http_query(r, "keys", NULL) != NULL &&
	    query_u64(r, "keys", &keys) == -1) {
		reply_text(r->id, 400, "", "sync/begin: bad keys");
		return;
	}
	if (keys > seq)
		keys = seq;
	sync_drop("another full sync began");
	/*
	 * The source's seed gives this copy its hash order, so a listing
	 * cursor from any node of the data set works on every other (pages
	 * through the read Service). A primary older than this sends none;
	 * a rolling update replaces it last, so that happens.
	 */
	if ((sync_store = store_create(node.store, id, has_seed ? seed : NULL,
	    seq, keys, STORE_FSYNC_NO, err, sizeof(err))) == NULL) {
		kv_log("error", "full sync: %s", err);
		reply_text(r->id, 507, "", "cannot start a full sync: %s", err);
		return;
	}
	memcpy(sync_id, id, sizeof(sync_id));
	sync_seq = seq;
	/* Unguessable: only the pusher that began the sync may feed it. */
	if (new_token(&sync_token) == -1) {
		kv_log("error", "full sync: no randomness: %s",
		    errstr());
		store_discard(sync_store);
		sync_store = NULL;
		reply_text(r->id, 503, "", "cannot start a full sync: no "
		    "randomness");
		return;
	}
	session_token = 0;	/* the data set changes under any session */
	kv_log("info", "full sync from %s begins at seq %llu; serving the "
	    "old data until it ends", id, (unsigned long long)seq);
	reply_text(r->id, 200, "", "%llu", (unsigned long long)sync_token);
}

/* The request names the sync in progress: its id and its token. */
static int
sync_current(struct http_request *r)
{
	char id[33];
	uint64_t token;

	if (query_id(r, "id", id) == -1 ||
	    query_u64(r, "token", &token) == -1 ||
	    sync_store == NULL || strcmp(id, sync_id) != 0 ||
	    token != sync_token) {
		reply_text(r->id, 409, "", "resync: no full sync of that id "
		    "and token in progress (another one began?)");
		return 0;
	}
	return 1;
}

/*
 * The request names the sync in progress, which waits on no other: the
 * pusher waits for each answer, and anyone else is refused.
 */
static int
sync_ready(struct http_request *r)
{
	if (refuse_on_primary(r) || !sync_current(r))
		return 0;
	if (batch_id != 0 || end_id != 0) {
		reply_text(r->id, 409, "", "resync: the sync is busy with "
		    "another request");
		return 0;
	}
	return 1;
}

/*
 * Apply the batch in batch_buf for APPLY_SLICE_NS, or body (the handler's
 * request) when batch_buf holds none, and answer it once it is all in.
 * Returns 1 while records are left: the loop is woken to go on (tick,
 * replica_step) after what else is ready.
 */
static int
batch_step(const char *body, size_t len)
{
	const char *why = NULL;
	uint64_t applied = 0;
	int rc;

	if (batch_len > 0) {
		body = batch_buf;
		len = batch_len;
	}
	rc = apply_records(sync_store, body, len, &batch_off, &applied,
	    mono_ns() + APPLY_SLICE_NS, &why);
	if (rc == 1) {
		http_wake();
		return 1;
	}
	if (rc == -1)
		reply_text(batch_id, 409, "", "resync: %s", why);
	else
		reply_text(batch_id, 200, "", "ok");
	batch_id = 0;
	batch_len = 0;
	return 0;
}

void
replica_sync_data(struct http_request *r)
{
	char *p;

	if (!sync_ready(r))
		return;
	batch_id = r->id;
	batch_off = 0;
	if (batch_step(r->body, r->body_len) == 0)
		return;
	/*
	 * The rest waits for the next turns in a copy (the connection's
	 * buffer moves as it reads). Without memory for one, finish now.
	 */
	if (batch_cap < r->body_len) {
		if ((p = resize(batch_buf, batch_cap, r->body_len)) == NULL) {
			while (batch_step(r->body, r->body_len) == 1)
				;
			return;
		}
		batch_buf = p;
		batch_cap = r->body_len;
	}
	memcpy(batch_buf, r->body, r->body_len);
	batch_len = r->body_len;
}

/* The copy is whole and on disk: swap it in and answer the sync/end id. */
static void
swap_in(uint64_t id)
{
	struct store *adopted;
	struct store_stats st;
	char err[256];

	http_unwatch(store_notify_fd(node.store));
	adopted = store_adopt(node.store, sync_store, err, sizeof(err));
	sync_store = NULL;
	if (adopted == NULL) {
		/*
		 * Renamed but not reopened: the old store must not be written
		 * again, and only a restart serves the new one. Say so on
		 * every channel rather than end the process from a request.
		 */
		if (errno == ESTALE)
			node.store_stale = 1;
		kv_log("error", "full sync: cannot swap the new store in: %s%s",
		    err, node.store_stale ? "; restart to serve it" : "");
		watch_store();
		reply_text(id, 500, "", "resync: %s", err);
		return;
	}
	node.store = adopted;
	node.store_gen++;
	watch_store();
	store_stats(node.store, &st);
	if (node.primary_seq < st.last_seq)
		node.primary_seq = st.last_seq;
	kv_log("info", "full sync done: %llu keys at seq %llu from %s (the "
	    "copy's last flush took %llu ms)", (unsigned long long)st.keys,
	    (unsigned long long)st.last_seq, st.repl_id,
	    (unsigned long long)(mono_ms() - end_ms));
	repl_reset(st.repl_id, st.last_seq);	/* what /repl/tail serves */
	reply_text(id, 200, "", "%llu", (unsigned long long)st.last_seq);
}

/* The sync store's flusher said something: is the copy on disk yet? */
static void
end_step(void *arg)
{
	uint64_t id = end_id;

	(void)arg;
	(void)store_durable_seq(sync_store);	/* drains the notify fd */
	if (store_seal(sync_store) == 0)
		return;
	/* Sealed, or failed: then store_adopt fails and says why. */
	http_unwatch(store_notify_fd(sync_store));
	end_id = 0;
	swap_in(id);
}

void
replica_sync_end(struct http_request *r)
{
	uint64_t seq;

	if (!sync_ready(r))
		return;
	if (query_u64(r, "seq", &seq) == -1 || seq != sync_seq) {
		reply_text(r->id, 409, "", "resync: sync/end for another seq "
		    "than its begin");
		return;
	}
	/* Without the watch, the tick looks every 10 ms (replica_step). */
	end_id = r->id;
	end_ms = mono_ms();
	(void)http_watch(store_notify_fd(sync_store), end_step, NULL);
	end_step(NULL);
}

void
replica_step(void)
{
	if (batch_id != 0)
		(void)batch_step(NULL, 0);
	if (end_id != 0)
		end_step(NULL);
}

/* A snapshot being streamed: records of every key, then an END record. */
struct snapshot {
	uint64_t	 cursor;
	uint64_t	 seq;		/* the node's seq when it began */
	uint64_t	 newest;	/* the newest seq staged, or seq */
	struct stage	 st;
};

/* Stages one key; says "enough" once the staging buffer is full. */
static int
snapshot_key(void *arg, const char *key, size_t klen,
    const struct store_value *v)
{
	struct snapshot *sn = arg;
	size_t need = repl_encoded_len(klen, v->len + 8);

	/* Keep room for the END record after the last key. */
	need += repl_encoded_len(0, 0);
	if (stage_reserve(&sn->st, need, 0) == -1)
		return 1;
	sn->st.len += repl_encode_exp(sn->st.buf + sn->st.len,
	    sn->st.cap - sn->st.len, REPL_PUT, v->seq, key, klen, v->data,
	    v->len, v->expires);
	if (v->seq > sn->newest)
		sn->newest = v->seq;	/* written since it began */
	return sn->st.len >= SNAPSHOT_STAGE_BYTES;
}

/*
 * Stage the next keys: SNAPSHOT_STAGE_BYTES and one record at most, however
 * big the values. Many keys per scan, so that its prefetching overlaps the
 * cache misses of records read in hash order, not log order. The END
 * waits (nothing staged: stage_out says later) until every write the
 * snapshot holds, and its seq, may leave the node as the stream's do:
 * under FSYNC=always, until they are on its disk (a flush, about a
 * millisecond), so that a primary back from a crash never finds a
 * replica ahead of it. A disk that failed first cuts the stream off.
 */
static void
snapshot_refill(void *arg)
{
	struct snapshot *sn = arg;

	store_scan(node.store, &sn->cursor, SNAPSHOT_SCAN_KEYS, snapshot_key, sn);
	if (sn->cursor == UINT64_MAX && !sn->st.failed &&
	    node.replicable_seq < sn->newest) {
		if (store_error(node.store) != 0) {
			kv_log("warn", "snapshot at seq %llu cut off: seq %llu "
			    "is not on this node's disk, which failed",
			    (unsigned long long)sn->seq,
			    (unsigned long long)sn->newest);
			sn->st.failed = 1;
		}
		return;
	}
	if (sn->cursor == UINT64_MAX && !sn->st.failed) {
		/* The staging buffer always has room for a header. */
		sn->st.len += repl_encode(sn->st.buf + sn->st.len,
		    sn->st.cap - sn->st.len, REPL_END, sn->seq, "", 0, "", 0);
		sn->st.finished = 1;
	}
}

static ssize_t
snapshot_produce(void *arg, char *buf, size_t cap)
{
	struct snapshot *sn = arg;
	ssize_t n;

	n = stage_out(&sn->st, sn, snapshot_refill, buf, cap);
	if (n == 0 || n == -1)
		node.snapshots--;	/* ended: sn is freed */
	return n;
}

/* A snapshot of node.store at seq, its last; NULL without memory. */
static struct snapshot *
snapshot_new(uint64_t seq)
{
	struct snapshot *sn;

	if ((sn = calloc(1, sizeof(*sn))) == NULL ||
	    (sn->st.buf = malloc(SNAPSHOT_FIRST_BYTES)) == NULL) {
		free(sn);
		return NULL;
	}
	sn->st.cap = SNAPSHOT_FIRST_BYTES;
	sn->st.gen = node.store_gen;
	sn->seq = sn->newest = seq;
	node.snapshots++;	/* holds idle compaction (tick) */
	return sn;
}

void
replica_snapshot(struct http_request *r)
{
	struct store_stats st;
	struct snapshot *sn;
	char extra[224], seed[33];

	store_stats(node.store, &st);
	if (store_error(node.store) != 0 && node.replicable_seq < st.last_seq) {
		reply_text(r->id, 503, "", "this node's disk failed before "
		    "seq %llu reached it: it serves no snapshot until it is "
		    "restarted", (unsigned long long)st.last_seq);
		return;
	}
	if ((sn = snapshot_new(st.last_seq)) == NULL) {
		reply_text(r->id, 503, "", "out of memory");
		return;
	}
	store_seed(node.store, seed);
	fmt_buf(extra, sizeof(extra), "X-Kv-Repl-Id: %s\r\nX-Kv-Seq: %llu\r\n"
	    "X-Kv-Seed: %s\r\nX-Kv-Keys: %llu\r\n", st.repl_id,
	    (unsigned long long)st.last_seq, seed, (unsigned long long)st.keys);
	kv_log("info", "snapshot of %llu keys at seq %llu requested",
	    (unsigned long long)st.keys, (unsigned long long)st.last_seq);
	if (http_stream(r->id, 200, "application/octet-stream", extra,
	    snapshot_produce, sn) == -1) {
		free(sn->st.buf);
		free(sn);
		node.snapshots--;
	}
}

/*
 * The records of a /repl/tail, a piece per call as the client reads: a
 * backlog of any size is never copied whole, nor held locked. Ended
 * (cut short: the client sees no last chunk) if the backlog overwrote
 * what was still to send.
 */
static ssize_t
tail_produce(void *arg, char *buf, size_t cap)
{
	struct repl_tail *t = arg;
	ssize_t n;

	if (buf == NULL) {
		free(t);
		return 0;
	}
	if ((n = repl_tail_read(t, buf, cap)) == -1)
		kv_log("warn", "repl: the writes asked for by a primary that "
		    "lost them left the backlog while they were sent");
	if (n <= 0)
		free(t);
	return n;
}

void
replica_tail(struct http_request *r)
{
	struct repl_tail *t;
	char id[33], extra[64];
	uint64_t from, last;

	if (query_id(r, "id", id) == -1 || query_u64(r, "from", &from) == -1) {
		reply_text(r->id, 400, "", "tail needs id (32 hex digits) and "
		    "from");
		return;
	}
	if ((t = malloc(sizeof(*t))) == NULL) {
		reply_text(r->id, 503, "", "out of memory");
		return;
	}
	if (repl_tail_open(t, id, from, &last) == -1) {
		reply_text(r->id, 409, "", errno == ESRCH ? "this node's "
		    "backlog follows another data set" : "seq %llu is not in "
		    "this node's backlog", (unsigned long long)from);
		free(t);
		return;
	}
	reply_u64(extra, "X-Kv-Seq: ", last, "\r\n");
	kv_log("info", "repl: giving writes %llu..%llu to a primary that lost "
	    "them", (unsigned long long)from, (unsigned long long)last);
	if (http_stream(r->id, 200, "application/octet-stream", extra,
	    tail_produce, t) == -1)
		free(t);
}

void
replica_register(struct http_request *r)
{
	struct sockaddr_storage from;
	char url[REPL_URL_MAX];
	size_t i;

	if (node.role != ROLE_PRIMARY) {
		reply_text(r->id, 409, "", "this node is a replica; register "
		    "with the primary");
		return;
	}
	if (r->body_len == 0 || r->body_len >= sizeof(url) ||
	    memchr(r->body, '\0', r->body_len) != NULL) {
		reply_text(r->id, 400, "", "register needs the replica's URL "
		    "as the body");
		return;
	}
	memcpy(url, r->body, r->body_len);
	url[r->body_len] = '\0';
	for (i = 0; i < r->body_len; i++)
		if ((unsigned char)url[i] <= ' ' ||
		    (unsigned char)url[i] >= 0x7f) {
			kv_log("warn", "repl: refused to register \"%s\": a "
			    "space or control byte in the URL", url);
			reply_text(r->id, 400, "", "a replica URL has no "
			    "spaces or control bytes");
			return;
		}
	if (strncmp(url, "http://", 7) != 0) {
		reply_text(r->id, 400, "", "cannot feed %s: not an http:// URL",
		    url);
		return;
	}
	/* Its URL must resolve to where it came from: repl.c checks. */
	if (http_peer(r->id, &from, NULL) == -1 ||
	    repl_add_replica(url, &from) == -1) {
		reply_text(r->id, errno == ENOSPC ? 503 : 400, "", "cannot feed "
		    "%s: %s", url, errno == ENOSPC ? "MAX_REGISTERED_REPLICAS "
		    "replicas are registered already" : errstr());
		return;
	}
	reply_text(r->id, 200, "", "ok");
}

void
replica_close(void)
{
	sync_drop("the node is stopping");
	free(batch_buf);
	batch_buf = NULL;
	batch_cap = 0;
}

/*
 * recover.c: a primary's recovery, the third kind of replication thread
 * (repl.c's THREAD MODEL): it shares repl.c's mutex and condition
 * variable, and its blocking client, through repl_int.h.
 *
 * A primary answers /repl/apply and /repl/sync/... 409 (repl.c's WIRE
 * PROTOCOL): nothing pushes to it. A fresh primary's recovery pulls
 * instead: /repl/state from every candidate, then /repl/snapshot from the
 * most advanced into a store of its own (store_create beside the live
 * one), which the main thread adopts. A primary back from an unclean
 * shutdown may have lost its last writes (FSYNC=everysec: up to a second)
 * that its replicas received: it asks the same way, takes the missing
 * records from the most advanced replica of its data set (/repl/tail, or
 * that replica's snapshot when its backlog no longer holds them all), then
 * renames its history with a new id. Replicas at or below the recovered
 * seq resume under the new id; one that was silent and comes back further
 * ahead holds writes this primary reissued, and full-syncs (the case that
 * made Redis rename too).
 *
 * The recovery thread asks each candidate (REPLICA_URLS, PEERS_DNS, checked
 * registrations) until all answered or recover_wait_ms passed, pulls the
 * best one's tail or snapshot, and hands the result to the main thread
 * (hand, under repl.c's mutex), which adopts it and says so
 * (repl_recover_done) or has it copied again. Pushers wait while
 * recovering is set: none syncs from a store that may lack writes its
 * replicas hold.
 */

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "fmt.h"
#include "repl.h"
#include "recover.h"
#include "repl_int.h"
#include "store.h"
#include "util.h"

#define RECOVER_POLL_MS	200		/* a silent candidate is asked again */
#define RECOVER_RETRY_MS 2000		/* after a failed copy from a replica */

#define LOCK()		repl_lock()
#define UNLOCK()	repl_unlock()

static void	*recoverer(void *);

/* ---- State (under repl.c's mutex; cfg is set before any thread) ---- */

static struct repl_config cfg;	/* repl.c's, strings and all */
static int		 inited;
static int		 recovering;	/* pushers wait while it is set */
static pthread_t	 rec_thread;
static int		 rec_started;
static int		 rec_fd[2] = { -1, -1 };
static struct {
	int		 ready;		/* a result waits for the main thread */
	int		 verdict;	/* 1 adopted, -1 copy again, 0 not yet */
	struct repl_recovery r;
} hand;

/* ---- For repl.c (repl_int.h) ---- */

void
recover_init(const struct repl_config *c)
{
	cfg = *c;
	recovering = cfg.recover;
	memset(&hand, 0, sizeof(hand));
	inited = 1;
}

int
recover_pending(void)
{
	return recovering;
}

void
recover_unblock(void)
{
	unblock(rec_fd[0]);
	unblock(rec_fd[1]);
}

void
recover_end(void)
{
	if (rec_started)
		(void)pthread_join(rec_thread, NULL);
	rec_started = 0;
	if (hand.ready && hand.r.fresh != NULL)
		store_discard(hand.r.fresh);	/* a copy never adopted */
	if (hand.ready)
		free(hand.r.tail);
	memset(&hand, 0, sizeof(hand));
	inited = 0;
}

/* ---- The main thread's side ---- */

int
repl_recover(void)
{
	int rc;

	if (!inited || rec_started || !cfg.recover) {
		errno = EINVAL;
		return -1;
	}
	if ((rc = start_thread(&rec_thread, recoverer, NULL)) != 0) {
		LOCK();
		recovering = 0;
		repl_broadcast();
		UNLOCK();
		errno = rc;
		return -1;
	}
	rec_started = 1;
	return 0;
}

int
repl_recovering(void)
{
	int r;

	if (!inited)
		return 0;
	LOCK();
	r = recovering;
	UNLOCK();
	return r;
}

int
repl_recover_result(struct repl_recovery *out)
{
	int r;

	if (!inited)
		return 0;
	LOCK();
	if ((r = hand.ready) != 0) {
		*out = hand.r;
		hand.ready = 0;
		hand.r.fresh = NULL;	/* the caller's now */
		hand.r.tail = NULL;
	}
	UNLOCK();
	return r;
}

void
repl_recover_done(int ok)
{
	if (!inited)
		return;
	LOCK();
	hand.verdict = ok ? 1 : -1;
	if (ok)
		recovering = 0;	/* the pushers go */
	repl_broadcast();
	UNLOCK();
}

/* ---- The recovery thread ---- */

/* A peer recovery asks, and what it said. */
struct cand {
	char		 url[REPL_URL_MAX];
	int		 conf;		/* REPLICA_URLS or PEERS_DNS: not registered */
	int		 answered;
	int		 skip;		/* this node, or one asked under another URL */
	uint64_t	 seq;
	char		 id[ID_MAX];	/* the data set it follows */
	char		 node[ID_MAX];
};

/* What recovery has learnt so far; only its thread touches it. */
struct recovery {
	struct cand	*cs;
	size_t		 n;
	size_t		 cap;
	uint64_t	 deadline;	/* of the wait for silent candidates */
	uint64_t	 gen;		/* peers_gen when the peers were listed */
	int		 dns_ok;	/* PEERS_DNS resolved, at least once */
	char		 dns_err[ERR_MAX];
	char		 own_id[ID_MAX];	/* TAIL: this node's data set */
	uint64_t	 own_seq;	/* and its newest write */
};

/* Add url unless it is there already; 0, or -1 out of memory. */
static int
add_cand(struct recovery *rv, const char *url, int conf)
{
	struct cand	*nc;
	size_t		 i;

	for (i = 0; i < rv->n; i++)
		if (strcmp(rv->cs[i].url, url) == 0) {
			rv->cs[i].conf |= conf;
			return 0;
		}
	if (rv->n == rv->cap) {
		if ((nc = resize(rv->cs, rv->cap * sizeof(*nc),
		    (rv->cap * 2 + 8) * sizeof(*nc))) == NULL)
			return -1;
		rv->cs = nc;
		rv->cap = rv->cap * 2 + 8;
	}
	memset(&rv->cs[rv->n], 0, sizeof(rv->cs[rv->n]));
	rv->cs[rv->n].conf = conf;
	(void)fmt_buf(rv->cs[rv->n++].url, REPL_URL_MAX, "%s", url);
	return 0;
}

/* repl_each_peer's fn: a peer whose address checked is a candidate. */
static void
add_peer(void *arg, const char *url, int is_static)
{
	(void)add_cand(arg, url, is_static);
}

/*
 * Every address of PEERS_DNS as a candidate URL. The headless Service
 * lists every pod, ready or not (publishNotReadyAddresses), this one too:
 * its answer names this node, and it is skipped. Looked up every round,
 * as a pod's record may come late. Blocks in resolve_host (within
 * resolv.conf's timeout x attempts): this thread only.
 */
static void
resolve_peers(struct recovery *rv)
{
	unsigned char	 a[MAX_ADDRS][16];
	char		 url[REPL_URL_MAX], host[48];
	size_t		 had;
	int		 i, n;

	(void)fmt_buf(url, sizeof(url), "http://%s:%s", cfg.peers_dns,
	    cfg.peers_port);
	if ((n = url_addrs(url, a, MAX_ADDRS, rv->dns_err)) == -1)
		return;
	rv->dns_ok = 1;
	for (i = 0; i < n; i++) {
		addr_text(a[i], host, sizeof(host), 1);
		(void)fmt_buf(url, sizeof(url), "http://%s:%s", host,
		    cfg.peers_port);
		had = rv->n;
		if (add_cand(rv, url, 1) == 0 && rv->n > had)
			kv_log("debug", "recovery: %s lists %s", cfg.peers_dns,
			    url);
	}
}

/*
 * The candidates: PEERS_DNS, REPLICA_URLS and registered peers whose
 * address checked (a registration is otherwise anyone's: see
 * address_matches; with REPL_TOKEN it also had to carry the token). The
 * lookup comes first: it may block for seconds, and replicas that register
 * meanwhile must still be asked before the wait ends. Returns -1 if
 * stopping.
 */
static int
list_candidates(struct recovery *rv)
{
	int		 stop;

	if (cfg.peers_dns[0] != '\0')
		resolve_peers(rv);
	LOCK();
	rv->gen = repl_peers_gen();
	(void)repl_each_peer(add_peer, rv);
	stop = repl_stopping();
	UNLOCK();
	return stop ? -1 : 0;
}

/* Ask candidate c for its state, within the wait that is left. */
static void
ask(struct recovery *rv, struct cand *c)
{
	struct client	*cl;
	char		 err[ERR_MAX];
	uint64_t	 now = mono_ms(), left;
	size_t		 i;
	int		 ok;

	left = rv->deadline > now + 200 ? rv->deadline - now : 200;
	if (left > (uint64_t)cfg.timeout_ms)
		left = (uint64_t)cfg.timeout_ms;
	if ((cl = client_new(c->url, (int)left, publish, &rec_fd[0])) ==
	    NULL)
		return;
	ok = get_state(cl, c->id, &c->seq, c->node, err) == 0;
	client_free(cl);
	if (!ok) {
		kv_log("debug", "recovery: %s: %s", c->url, err);
		return;
	}
	c->answered = 1;
	if (strcmp(c->node, repl_node_id()) == 0) {
		c->skip = 1;
		kv_log("debug", "recovery: %s is this node", c->url);
		return;
	}
	for (i = 0; &rv->cs[i] != c; i++)
		if (rv->cs[i].answered && !rv->cs[i].skip &&
		    c->node[0] != '\0' && strcmp(rv->cs[i].node, c->node) == 0) {
			c->skip = 1;	/* one node, two URLs */
			return;
		}
	kv_log("info", "recovery: %s has seq %llu of %s", c->url,
	    (unsigned long long)c->seq, c->id);
}

/*
 * Waiting longer is no use: every candidate answered, one of them a
 * configured peer other than this node. Knowing none (no REPLICA_URLS,
 * PEERS_DNS listing only this node, as in a pod's first seconds), this
 * node cannot tell a new cluster from one whose primary lost its volume,
 * nor know when every replica has announced itself (each does every 3 s):
 * it waits recover_wait_ms, as one that announced later would be
 * full-synced to the empty store.
 */
static int
all_answered(const struct recovery *rv)
{
	size_t	 i;
	int	 known = 0;

	for (i = 0; i < rv->n; i++) {
		if (!rv->cs[i].answered)
			return 0;
		known |= rv->cs[i].conf &&
		    strcmp(rv->cs[i].node, repl_node_id()) != 0;
	}
	return known && (cfg.peers_dns[0] == '\0' || rv->dns_ok);
}

/*
 * Sleep until until, unless stopped first or, with gen not NULL, a peer
 * can be asked (peers_gen moved from *gen). Returns 1 if stopping.
 */
static int
nap(uint64_t until, const uint64_t *gen)
{
	int	 stop;

	LOCK();
	while (!repl_stopping() && mono_ms() < until &&
	    (gen == NULL || repl_peers_gen() == *gen))
		repl_wait(until);
	stop = repl_stopping();
	UNLOCK();
	return stop;
}

/*
 * Ask every candidate until all have answered or recover_wait_ms passes:
 * no polling round after the last answer, and a peer that registers
 * meanwhile is asked the moment its address checks. Returns -1 if
 * stopping.
 */
static int
find_best(struct recovery *rv)
{
	uint64_t	 next;
	size_t		 i;

	for (;;) {
		if (list_candidates(rv) == -1)
			return -1;
		for (i = 0; i < rv->n; i++)
			if (!rv->cs[i].answered)
				ask(rv, &rv->cs[i]);
		if (all_answered(rv) || mono_ms() >= rv->deadline)
			return 0;
		next = mono_ms() + RECOVER_POLL_MS;
		if (nap(next < rv->deadline ? next : rv->deadline, &rv->gen))
			return -1;
	}
}

/*
 * Can c give what recovery looks for? EMPTY: any data set. TAIL: writes
 * of this node's data set past its newest (another id is another
 * history, which a full sync from this node replaces).
 */
static int
useful(const struct recovery *rv, const struct cand *c)
{
	if (cfg.recover == REPL_RECOVER_TAIL)
		return strcmp(c->id, rv->own_id) == 0 && c->seq > rv->own_seq;
	return c->seq > 0;
}

/*
 * What was learnt into r: the most advanced useful answer (rv->n if none)
 * and the candidates that never answered, any of which might have held
 * data.
 */
static size_t
summarise(struct recovery *rv, struct repl_recovery *r)
{
	size_t	 i, best = rv->n, o = 0;
	int	 k;

	memset(r, 0, sizeof(*r));
	for (i = 0; i < rv->n; i++) {
		if (rv->cs[i].answered) {
			if (rv->cs[i].skip)
				continue;
			r->answered++;
			if (useful(rv, &rv->cs[i]) && (best == rv->n ||
			    rv->cs[i].seq > rv->cs[best].seq))
				best = i;
			continue;
		}
		k = fmt_buf(r->silent + o, sizeof(r->silent) - o, "%s%s",
		    o > 0 ? ", " : "", rv->cs[i].url);
		if (k > 0 && (size_t)k < sizeof(r->silent) - o)
			o += (size_t)k;
	}
	if (cfg.peers_dns[0] != '\0' && !rv->dns_ok)
		(void)fmt_buf(r->silent + o, sizeof(r->silent) - o, "%s%s",
		    o > 0 ? ", " : "", rv->dns_err);
	return best;
}

/* Copy rv->cs[best]'s snapshot into r->fresh. Returns 0, or -1 with err. */
static int
copy_best(const struct cand *c, struct repl_recovery *r, char *err)
{
	struct client		*cl;
	struct sync_result	 res;

	if ((cl = new_client(c->url, &rec_fd[0], err)) == NULL)
		return -1;
	if (pull_snapshot(cl, c->url, &r->fresh, &res, err) == -1) {
		client_free(cl);
		return -1;
	}
	client_free(cl);
	(void)fmt_buf(r->source, sizeof(r->source), "%s", c->url);
	(void)fmt_buf(r->repl_id, sizeof(r->repl_id), "%.32s", res.id);
	r->seq = res.seq;
	r->keys = res.keys;
	kv_log("info", "recovery: copied %llu keys at seq %llu from %s",
	    (unsigned long long)res.keys, (unsigned long long)res.seq, c->url);
	return 0;
}

/*
 * TAIL: the records past this node's newest write, from c's backlog into
 * r->tail, checked: contiguous from own_seq + 1 up to the seq c said it
 * has. Returns 0; 1 if c no longer holds them all (they left its backlog,
 * or it restarted since), so its snapshot must do; or -1 with err.
 */
static int
pull_tail(const struct recovery *rv, const struct cand *c,
    struct repl_recovery *r, char *err)
{
	struct client		*cl;
	struct client_response	 rs;
	struct repl_record	 rec;
	char			 target[128], why[128];
	uint64_t		 next = rv->own_seq + 1;
	size_t			 off;
	ssize_t			 n;
	int			 rc = -1;

	if ((cl = new_client(c->url, &rec_fd[0], err)) == NULL)
		return -1;
	(void)fmt_buf(target, sizeof(target), "/repl/tail?id=%s&from=%llu",
	    rv->own_id, (unsigned long long)next);
	if (req_send(cl, "GET", target, 0, NULL, 0) == -1 ||
	    client_recv(cl, &rs, cfg.backlog_bytes + MAX_RESP_BODY) == -1) {
		(void)fmt_buf(err, ERR_MAX, "GET /repl/tail: %s",
		    client_error(cl));
		goto out;
	}
	reason(why, sizeof(why), rs.body, rs.body_len);
	if (rs.status == 409) {
		kv_log("info", "recovery: %s cannot give the writes after seq "
		    "%llu one by one (%s)", c->url,
		    (unsigned long long)rv->own_seq, why);
		rc = 1;
		goto out;
	}
	if (rs.status != 200) {
		(void)fmt_buf(err, ERR_MAX, "GET /repl/tail answered %d %s",
		    rs.status, why);
		goto out;
	}
	for (off = 0; off < rs.body_len; off += (size_t)n, next++)
		if ((n = repl_decode(rs.body + off, rs.body_len - off,
		    &rec)) <= 0 || rec.op == REPL_END || rec.seq != next) {
			(void)fmt_buf(err, ERR_MAX, "/repl/tail: record %llu "
			    "is malformed or out of order",
			    (unsigned long long)next);
			goto out;
		}
	if (next <= c->seq) {
		(void)fmt_buf(err, ERR_MAX, "/repl/tail ended at seq %llu, "
		    "before the %llu its state named",
		    (unsigned long long)next - 1, (unsigned long long)c->seq);
		goto out;
	}
	if ((r->tail = malloc(rs.body_len)) == NULL) {
		(void)fmt_buf(err, ERR_MAX, "out of memory for %zu bytes of "
		    "records", rs.body_len);
		goto out;
	}
	memcpy(r->tail, rs.body, rs.body_len);
	r->tail_len = rs.body_len;
	(void)fmt_buf(r->source, sizeof(r->source), "%s", c->url);
	(void)fmt_buf(r->repl_id, sizeof(r->repl_id), "%.32s", rv->own_id);
	r->seq = next - 1;
	rc = 0;
out:
	client_free(cl);
	return rc;
}

/*
 * Hand r to the main thread and wait for its verdict: 1 adopted, -1 copy
 * again, 0 stopping (repl_shutdown then discards a copy never taken).
 */
static int
hand_over(struct repl_recovery *r)
{
	int	 v;

	LOCK();
	hand.r = *r;
	hand.verdict = 0;
	hand.ready = 1;
	UNLOCK();
	if (cfg.on_ack != NULL)
		cfg.on_ack();	/* wakes the loop, whose tick takes it */
	LOCK();
	while (!repl_stopping() && hand.verdict == 0)
		repl_wait(0);
	v = hand.verdict;
	UNLOCK();
	return v;
}

/* Take what c, the most advanced, can give into r: 0, or -1 with err. */
static int
take(const struct recovery *rv, const struct cand *c,
    struct repl_recovery *r, char *err)
{
	int	 rc;

	if (cfg.recover == REPL_RECOVER_TAIL) {
		kv_log("info", "recovery: %s is ahead (seq %llu; this node has "
		    "%llu): taking the writes this node lost", c->url,
		    (unsigned long long)c->seq,
		    (unsigned long long)rv->own_seq);
		if ((rc = pull_tail(rv, c, r, err)) != 1)
			return rc;
		kv_log("info", "recovery: copying %s's whole data set instead",
		    c->url);
	} else
		kv_log("info", "recovery: this primary is empty; copying from "
		    "%s (seq %llu)", c->url, (unsigned long long)c->seq);
	return copy_best(c, r, err);
}

/*
 * Fresh primary: ask every candidate, then copy the most advanced one's
 * data set into a fresh store and hand it to the main thread. Back from a
 * crash: take the writes this node lost from the most advanced replica of
 * its data set. A failed copy is tried again: a replica holds the data,
 * and going on without it would let the pushers wipe it.
 */
static void *
recoverer(void *arg)
{
	struct recovery		 rv;
	struct repl_recovery	 r;
	char			 err[ERR_MAX];
	size_t			 best, i;
	int			 lone;

	(void)arg;
	memset(&rv, 0, sizeof(rv));
	LOCK();
	lone = repl_each_peer(NULL, NULL) == 0;
	repl_history(rv.own_id, &rv.own_seq);
	UNLOCK();
	if (lone && cfg.peers_dns[0] == '\0')
		kv_log("info", "recovery: no REPLICA_URLS or PEERS_DNS: "
		    "waiting RECOVER_WAIT_MS for replicas to announce "
		    "themselves");
	for (;;) {
		rv.deadline = mono_ms() + (uint64_t)cfg.recover_wait_ms;
		if (find_best(&rv) == -1)
			break;
		best = summarise(&rv, &r);
		if (best < rv.n && take(&rv, &rv.cs[best], &r, err) == -1) {
			kv_log("error", "recovery from %s failed: %s; trying "
			    "again in %d ms (writes wait)", rv.cs[best].url,
			    err, RECOVER_RETRY_MS);
			goto again;
		}
		if (hand_over(&r) != -1)
			break;
again:
		if (nap(mono_ms() + RECOVER_RETRY_MS, NULL))
			break;
		for (i = 0; i < rv.n; i++)
			rv.cs[i].answered = rv.cs[i].skip = 0;
	}
	free(rv.cs);
	return NULL;
}

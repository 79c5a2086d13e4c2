/*
 * kvstore: a small replicated key-value store with an HTTP API.
 *
 * This file is the program's spine: it reads the configuration from the
 * environment, decides the node's role, and orders startup (listen, open
 * the store, start replication, run the loop) and shutdown (drain
 * connections, deliver pending writes to replicas, close the store). The
 * modules below it do the work, and none calls back up into this file:
 *   api.c            the route table; the /kv and web console handlers
 *   wait.c           parked requests (min-seq reads, watches, acks, flushes)
 *   status.c         /health, /ready, /role, /metrics
 *   replica.c        the /repl/ endpoints: the answering side of replication
 *   repl.c           the pushing side: backlog, pushers, announcer, codec
 *   recover.c        a primary's recovery from its replicas, on a thread
 *   client.c         the blocking HTTP/1.1 client of repl.c and the CLI
 *   http.c           sockets, the poll() loop, replies, limits, timeouts
 *   parse.c          the HTTP/1.1 parser, for the server and the client
 *   store.c          the mmap'd hash file: format, recovery, reads, writes
 *   store_compact.c  the store's compaction, a slice at a time
 *   store_check.c    check and salvage of a stopped store's file
 *   hash.c           CRC-32C and SipHash for the store
 *   ui.c             the web console's files, packed at build time
 *   cm.c             the compressor that packs them (and unpacks them)
 *   cli.c            the command-line client (kvstore get, put, check...)
 *   node.c           the node's settings and state, the handlers' kit
 *   fmt.c            printf-style formatting, in place of libc's
 *   util.c           the log, die, randomness, the clocks, JSON, tokens
 */

#define _GNU_SOURCE	/* prlimit(2), which musl and glibc both have */

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fmt.h"
#include "parse.h"
#include "http.h"
#include "repl.h"
#include "recover.h"
#include "store.h"
#include "ui.h"
#include "util.h"
#include "node.h"
#include "api.h"
#include "replica.h"
#include "wait.h"
#include "events.h"

#define REPL_DRAIN_MS	3000		/* SIGTERM: deliver pending writes */

/* What only this file reads; the handlers' settings are in node. */
struct config {
	const char	*port;
	const char	*replica_urls;
	int		 log_level;
	int		 max_conns;
	int		 header_timeout_ms;
	int		 idle_timeout_ms;
	char		 advertise_url[REPL_URL_MAX];
	char		 self_url[64];
	size_t		 backlog_bytes;
	int		 repl_timeout_ms;
	char		 peers_dns[256];	/* PEERS_DNS's name */
	char		 peers_port[8];	/* and its port, PORT's if none */
	int		 max_registered;
};

static struct config	 cfg;
static int		 recovery_mode;	/* primary: REPL_RECOVER_* under way */
static volatile sig_atomic_t stopping;

/* ---- Configuration ---- */

/* A decimal integer in [min, max], or die naming the variable. */
static long long
env_int(const char *name, long long dflt, long long min, long long max)
{
	const char *v = env(name, NULL), *end;
	uint64_t n;

	if (v == NULL)
		return dflt;
	if ((end = parse_dec(v, (uint64_t)max, &n)) == NULL || *end != '\0' ||
	    n < (uint64_t)min)
		die("%s=%s: expected a whole number from %lld to %lld",
		    name, v, min, max);
	return (long long)n;
}

/*
 * The host's name into host[0..len), cut to fit, as gethostname gives it:
 * uname's nodename, without the 160 bytes of musl's gethostname. Dies
 * with what, and why, if uname fails.
 */
static void
host_name(char *host, size_t len, const char *what)
{
	struct utsname u;

	if (uname(&u) == -1)
		die("%s:", what);
	fmt_buf(host, len, "%s", u.nodename);
}

/* The StatefulSet ordinal: the digits after the hostname's last '-'. */
static int
host_ordinal(const char *host)
{
	const char *p = last_of(host, '-'), *end;
	uint64_t n;

	if (p == NULL || (end = parse_dec(p + 1, INT_MAX, &n)) == NULL ||
	    *end != '\0')
		return -1;
	return (int)n;
}

static enum node_role
parse_role(const char *v)
{
	char host[256];
	int ord;

	if (strcmp(v, "primary") == 0)
		return ROLE_PRIMARY;
	if (strcmp(v, "replica") == 0)
		return ROLE_REPLICA;
	if (strcmp(v, "auto") != 0)
		die("ROLE=%s: expected primary, replica or auto", v);
	host_name(host, sizeof(host), "ROLE=auto: gethostname");
	if ((ord = host_ordinal(host)) < 0)
		die("ROLE=auto: hostname %s does not end in -<ordinal> "
		    "(as StatefulSet pods do); set ROLE=primary or replica",
		    host);
	return ord == 0 ? ROLE_PRIMARY : ROLE_REPLICA;
}

static enum store_fsync
parse_fsync(const char *v)
{
	if (strcmp(v, "always") == 0)
		return STORE_FSYNC_ALWAYS;
	if (strcmp(v, "everysec") == 0)
		return STORE_FSYNC_EVERYSEC;
	if (strcmp(v, "no") == 0)
		return STORE_FSYNC_NO;
	die("FSYNC=%s: expected always, everysec or no", v);
	return STORE_FSYNC_EVERYSEC;
}

/* url[0..len) is a URL the replication client can use: http://host:port. */
static void
check_url(const char *name, const char *url, size_t len)
{
	if (len > 0 && (strncmp(url, "http://", 7) != 0 || len <= 7 ||
	    len >= REPL_URL_MAX))
		die("%s: \"%.*s\" is not a URL of the form http://host:port",
		    name, (int)(len >= REPL_URL_MAX ? REPL_URL_MAX - 1 : len),
		    url);
}

/* Call fn for each non-empty element of a comma-separated list. */
static void
each_url(const char *list, void (*fn)(const char *url, size_t len))
{
	const char *p;
	size_t n;

	for (p = list;; p += n + 1) {
		if ((n = (size_t)(strchrnul(p, ',') - p)) > 0)
			fn(p, n);
		if (p[n] == '\0')
			break;
	}
}

static void
check_replica_url(const char *url, size_t len)
{
	check_url("REPLICA_URLS", url, len);
}

static void
add_replica_url(const char *url, size_t len)
{
	char buf[REPL_URL_MAX];

	memcpy(buf, url, len);
	buf[len] = '\0';
	if (repl_add_replica(buf, NULL) == -1)
		die("REPLICA_URLS: cannot feed %s:", buf);
}

/*
 * AUTH_TOKEN, READ_AUTH and REPL_TOKEN. Without its own REPL_TOKEN,
 * replication takes AUTH_TOKEN: otherwise /repl/snapshot would hand the
 * whole data set, and /repl/apply a replica's writes, to anyone.
 */
static void
load_tokens(void)
{
	char why[512];
	const char *v;

	if (token_load(&node.auth, "AUTH_TOKEN", why, sizeof(why)) == -1 ||
	    token_load(&node.repl, "REPL_TOKEN", why, sizeof(why)) == -1)
		die("%s", why);
	if (node.repl.t_len == 0)
		node.repl = node.auth;
	v = env("READ_AUTH", "false");
	if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
		node.read_auth = 1;
	else if (strcmp(v, "false") != 0 && strcmp(v, "0") != 0)
		die("READ_AUTH=%s: expected true or false", v);
	if (node.read_auth && node.auth.t_len == 0)
		die("READ_AUTH=%s needs AUTH_TOKEN or AUTH_TOKEN_FILE", v);
}

/*
 * ALLOWED_HOSTS: names, ".domain"s or "*", comma-separated, that browsers
 * may call this node by (api.c). A port or a path is a mistake to name.
 */
static void
load_allowed_hosts(void)
{
	const char *v = env("ALLOWED_HOSTS", ""), *p;
	size_t n = 0;
	int bad = 0;

	for (p = v; *v != '\0'; p++) {
		if (*p != ',' && *p != '\0') {
			bad |= !((*p >= 'a' && *p <= 'z') ||
			    (*p >= 'A' && *p <= 'Z') ||
			    (*p >= '0' && *p <= '9') || *p == '.' ||
			    (*p == '-' && n > 0));
			n++;
			continue;
		}
		if (n == 0 || (bad && !(n == 1 && p[-1] == '*')))
			die("ALLOWED_HOSTS=%s: expected host names or .domains "
			    "separated by commas, or *", v);
		if (*p == '\0')
			break;
		n = 0;
		bad = 0;
	}
	node.allowed_hosts = v;
}

/*
 * PEERS_DNS=name[:port]: a name that lists every pod (the chart's headless
 * Service). The port is PORT's unless given: every pod listens on the same.
 */
static void
load_peers_dns(void)
{
	const char *v = env("PEERS_DNS", ""), *c = last_of(v, ':'), *e;
	size_t n = c != NULL ? (size_t)(c - v) : strlen(v);
	uint64_t port;

	if (n >= sizeof(cfg.peers_dns) || strchr(v, '/') != NULL ||
	    (c != NULL && ((e = parse_dec(c + 1, 65535, &port)) == NULL ||
	    *e != '\0' || port == 0)))
		die("PEERS_DNS=%s: expected a DNS name, or name:port", v);
	memcpy(cfg.peers_dns, v, n);
	cfg.peers_dns[n] = '\0';
	fmt_buf(cfg.peers_port, sizeof(cfg.peers_port), "%s",
	    c != NULL ? c + 1 : cfg.port);
}

static void
load_config(void)
{
	const char *v;

	v = env("LOG_LEVEL", "info");
	if ((cfg.log_level = log_level_named(v)) < 0)
		die("LOG_LEVEL=%s: expected debug, info, warn or error", v);
	log_set_level(cfg.log_level);
	node.role = parse_role(env("ROLE", "replica"));
	cfg.port = env("PORT", "8080");
	env_int("PORT", 8080, 1, 65535);
	node.data_dir = env("DATA_DIR", "./data");
	cfg.replica_urls = env("REPLICA_URLS", "");
	node.primary_url = env("PRIMARY_URL", "");
	node.max_value = env_int("MAX_VALUE_BYTES", 1 << 20, 0, 1LL << 30);
	node.fsync = parse_fsync(env("FSYNC", "everysec"));
	cfg.max_conns = env_int("MAX_CONNS", 4096, 1, 1000000);
	cfg.header_timeout_ms = env_int("HEADER_TIMEOUT_MS", 10000, 1,
	    3600000);
	cfg.idle_timeout_ms = env_int("IDLE_TIMEOUT_MS", 60000, 1, 86400000);
	load_tokens();
	cfg.backlog_bytes = env_int("REPL_BACKLOG_BYTES", 16 << 20, 1 << 16,
	    1LL << 40);
	cfg.repl_timeout_ms = env_int("REPL_TIMEOUT_MS", 5000, 100, 600000);
	node.recover_wait_ms = env_int("RECOVER_WAIT_MS", 5000, 0, 3600000);
	node.min_seq_wait_ms = env_int("MIN_SEQ_WAIT_MS", 5000, 0, 600000);
	node.replicas_wait_ms = env_int("REPLICAS_WAIT_MS", 5000, 0, 600000);
	node.min_replicas = env_int("MIN_REPLICAS_TO_WRITE", 0, 0,
	    NODE_MAX_PEERS);
	node.max_replica_lag_ms = env_int("MAX_REPLICA_LAG_MS", 10000, 0,
	    86400000);
	/* Half the connections at most: probes must find one free. */
	node.max_parked = env_int("MAX_PARKED", cfg.max_conns / 2, 0,
	    cfg.max_conns / 2);
	cfg.max_registered = env_int("MAX_REGISTERED_REPLICAS", 64, 1, 4096);
	load_peers_dns();
	load_allowed_hosts();
	check_url("PRIMARY_URL", node.primary_url, strlen(node.primary_url));
	each_url(cfg.replica_urls, check_replica_url);
	fmt_buf(cfg.self_url, sizeof(cfg.self_url), "http://127.0.0.1:%s",
	    cfg.port);
	if ((v = env("ADVERTISE_URL", NULL)) != NULL) {
		check_url("ADVERTISE_URL", v, strlen(v));
		fmt_buf(cfg.advertise_url, sizeof(cfg.advertise_url), "%s", v);
	} else {
		char host[REPL_URL_MAX - sizeof("http://:65535")];

		host_name(host, sizeof(host),
		    "ADVERTISE_URL unset and gethostname failed");
		fmt_buf(cfg.advertise_url, sizeof(cfg.advertise_url),
		    "http://%s:%s", host, cfg.port);
	}
}

/*
 * mkdir -p, then check that the directory is writable. (A file made and
 * removed to prove it cost two journalled updates of the directory, which
 * wait out a journal commit in progress: 100 ms of a start, once, on a
 * busy ext4.)
 */
static void
prepare_data_dir(const char *dir)
{
	char path[PATH_MAX], *p;

	if (fmt_buf(path, sizeof(path), "%s", dir) >= (int)sizeof(path))
		die("DATA_DIR %s: path too long", dir);
	for (p = path + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) == -1 && errno != EEXIST)
			die("DATA_DIR: cannot create %s (uid %d):", path,
			    (int)getuid());
		*p = '/';
	}
	if (mkdir(path, 0755) == -1 && errno != EEXIST)
		die("DATA_DIR: cannot create %s (uid %d):", path,
		    (int)getuid());
	if (access(path, W_OK | X_OK) == -1)
		die("DATA_DIR %s is not writable by uid %d (give the "
		    "directory to that user):", dir, (int)getuid());
}

/*
 * Raise the descriptor limit to its hard maximum: every connection is one.
 * prlimit, as musl's getrlimit and setrlimit do first: they would also
 * link their fallbacks for kernels before 2.6.36 (__synccall, 1.4 KB).
 */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (prlimit(0, RLIMIT_NOFILE, NULL, &rl) == 0 &&
	    rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)prlimit(0, RLIMIT_NOFILE, &rl, NULL);
	}
	if (prlimit(0, RLIMIT_NOFILE, NULL, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY &&
	    (rlim_t)cfg.max_conns + 32 > rl.rlim_cur)
		kv_log("warn", "MAX_CONNS=%d but only %llu descriptors are "
		    "allowed; accept will pause when they run out",
		    cfg.max_conns, (unsigned long long)rl.rlim_cur);
}

/* ---- The loop ---- */

/* Put the store recovery copied in place of the empty one. 0, or -1. */
static int
adopt_copy(struct repl_recovery *rr)
{
	struct store *adopted;
	char err[256];

	http_unwatch(store_notify_fd(node.store));
	adopted = store_adopt(node.store, rr->fresh, err, sizeof(err));
	rr->fresh = NULL;
	if (adopted == NULL) {
		if (errno == ESTALE)
			node.store_stale = 1;
		kv_log("error", "recovery: cannot swap the copy in: %s%s", err,
		    node.store_stale ? "; restart to serve it" : "");
	} else {
		node.store = adopted;
		node.store_gen++;
	}
	if (http_watch(store_notify_fd(node.store), wait_on_durable,
	    NULL) == -1)
		kv_log("error", "cannot watch the store's flush notifications: "
		    "%s", errstr());
	return adopted == NULL ? -1 : 0;
}

/*
 * A new store: adopt the data set recovery copied, if any, and say what
 * happened. -1 if the copy must be made again.
 */
static int
empty_done(struct repl_recovery *rr)
{
	struct store_stats st;

	if (rr->fresh != NULL) {
		if (adopt_copy(rr) == -1 && !node.store_stale)
			return -1;
		store_stats(node.store, &st);
		repl_reset(st.repl_id, st.last_seq);
		fmt_buf(node.recovery, sizeof(node.recovery), "recovered %llu "
		    "keys at seq %llu from %s", (unsigned long long)st.keys,
		    (unsigned long long)st.last_seq, rr->source);
		kv_log("warn", "recovery: %s, repl id %s", node.recovery,
		    st.repl_id);
	} else if (rr->silent[0] == '\0') {
		if (rr->answered == 0)
			fmt_buf(node.recovery, sizeof(node.recovery), "new "
			    "data set: no replica registered within "
			    "RECOVER_WAIT_MS");
		else
			fmt_buf(node.recovery, sizeof(node.recovery), "new "
			    "data set: %d replicas answered, none holds data",
			    rr->answered);
		kv_log("info", "recovery: %s; this primary starts a new data "
		    "set", node.recovery);
	} else {
		node.started_empty = 1;
		fmt_buf(node.recovery, sizeof(node.recovery), "started empty");
	}
	return 0;
}

/*
 * The records of tail[0..len), checked by repl.c, up to max of them: made
 * in the store (to_store), or enqueued for the pushers. Returns how many.
 */
static uint64_t
tail_walk(const char *tail, size_t len, uint64_t max, int to_store)
{
	struct repl_record rec;
	uint64_t n = 0, dummy;
	size_t off, nrec, gend = 0;
	ssize_t k, glen;
	int rc;

	for (off = 0; off < len && n < max; off += (size_t)k, n++) {
		if ((k = repl_decode(tail + off, len - off, &rec)) <= 0)
			break;
		if (!to_store) {
			repl_enqueue_exp(rec.op | (rec.more ? REPL_MORE : 0),
			    rec.seq, rec.key, rec.klen, rec.val, rec.vlen,
			    rec.expires);
			continue;
		}
		/* A transaction is taken whole or not at all. */
		if (rec.more && off >= gend) {
			if ((glen = repl_group_len(tail + off, len - off,
			    &nrec)) <= 0 ||
			    store_group_begin(node.store, nrec,
			    REPL_GROUP_STORE_BYTES(glen, nrec)) == -1)
				break;
			gend = off + (size_t)glen;
		}
		rc = rec.op == REPL_PUT ? store_put_exp(node.store, rec.key,
		    rec.klen, rec.val, rec.vlen, rec.expires, rec.seq, &dummy) :
		    store_del(node.store, rec.key, rec.klen, rec.seq, &dummy);
		if (off + (size_t)k == gend || rc == -1)
			store_group_end(node.store);
		if (rc == -1) {
			kv_log("error", "recovery: cannot write seq %llu: %s",
			    (unsigned long long)rec.seq, errstr());
			break;
		}
	}
	return n;
}

/*
 * Back from an unclean shutdown: make the writes recovery took back (or
 * adopt the replica's copy), then give the history a new id, under which
 * the replicas at or below the recovered seq resume (repl_accept_history).
 * The id changes last, so a crash before it asks again. -1 if the copy
 * must be made again.
 */
static int
crash_done(struct repl_recovery *rr)
{
	struct store_stats st;
	char old[33];
	uint64_t from, got = 0;
	int copied = rr->fresh != NULL;	/* adopt_copy clears rr->fresh */

	if (copied && adopt_copy(rr) == -1 && !node.store_stale)
		return -1;
	store_stats(node.store, &st);
	from = st.last_seq;
	memcpy(old, st.repl_id, sizeof(old));
	if (rr->tail != NULL)
		got = tail_walk(rr->tail, rr->tail_len, UINT64_MAX, 1);
	if (store_set_repl_id(node.store, NULL) == -1)
		die("cannot write a new replication id:");
	store_stats(node.store, &st);
	repl_reset(st.repl_id, from);
	(void)tail_walk(rr->tail, rr->tail_len, got, 0);
	repl_accept_history(old, st.last_seq);
	free(rr->tail);
	rr->tail = NULL;
	if (got > 0)
		fmt_buf(node.recovery, sizeof(node.recovery), "unclean "
		    "shutdown: recovered %llu lost writes (seq %llu..%llu) "
		    "from %s", (unsigned long long)got,
		    (unsigned long long)from + 1,
		    (unsigned long long)(from + got), rr->source);
	else if (copied)
		fmt_buf(node.recovery, sizeof(node.recovery), "unclean "
		    "shutdown: copied %llu keys at seq %llu from %s",
		    (unsigned long long)st.keys, (unsigned long long)from,
		    rr->source);
	else
		fmt_buf(node.recovery, sizeof(node.recovery), "unclean "
		    "shutdown: no replica had more (%d answered)",
		    rr->answered);
	kv_log(got > 0 || copied ? "warn" : "info", "recovery: "
	    "%s; new replication id %s: replicas of %s at or below seq %llu "
	    "resume without a full sync", node.recovery, st.repl_id, old,
	    (unsigned long long)st.last_seq);
	return 0;
}

/*
 * Recovery decided: adopt or apply what it took, reset replication to it
 * and say what happened, all before any parked write is made (wait_run
 * follows in the same tick).
 */
static void
recovery_done(struct repl_recovery *rr)
{
	if ((recovery_mode == REPL_RECOVER_TAIL ? crash_done(rr) :
	    empty_done(rr)) == -1) {
		repl_recover_done(0);
		return;
	}
	if (rr->silent[0] != '\0') {
		fmt_buf(node.recovery_warning, sizeof(node.recovery_warning),
		    "%s: no answer within RECOVER_WAIT_MS (%d ms) from %s; "
		    "data only they held was not recovered",
		    recovery_mode == REPL_RECOVER_TAIL ? "back from an "
		    "unclean shutdown" : rr->fresh != NULL ||
		    node.recovery[0] == 'r' ? "recovered from the others" :
		    "this primary started with an empty store",
		    node.recover_wait_ms, rr->silent);
		kv_log("warn", "%s%s", node.started_empty ? "STARTING EMPTY: " :
		    "", node.recovery_warning);
	}
	recovery_mode = REPL_RECOVER_NONE;
	repl_recover_done(1);
}

/*
 * Is recovery's copy, if it made one, on disk yet? Its flusher thread
 * writes it (store_seal), so that the swap does not stop the loop for the
 * whole flush (half a second at 3M keys): probes go on being answered.
 */
static int
copy_sealed(struct repl_recovery *rr)
{
	if (rr->fresh == NULL)
		return 1;
	(void)store_durable_seq(rr->fresh);	/* drains its notify fd */
	return store_seal(rr->fresh) != 0;	/* failed: adopt says why */
}

static void
tick(void)
{
	static struct repl_recovery rr;		/* decided, being sealed */
	static int decided;

	node.stopping = stopping;
	store_hold_compaction(node.store, node.snapshots > 0);
	store_step(node.store);
	replica_step();
	api_expire();
	if (recovery_mode != REPL_RECOVER_NONE &&
	    (decided || repl_recover_result(&rr) == 1)) {
		decided = 1;
		if (copy_sealed(&rr)) {
			decided = 0;
			recovery_done(&rr);
		}
	}
	wait_run();
	/* Under FSYNC=always the stream and a snapshot carry only what is
	 * on this node's disk: the stream a flush's worth per batch. */
	node.replicable_seq = node.fsync == STORE_FSYNC_ALWAYS ?
	    store_durable_seq(node.store) : store_last_seq(node.store);
	repl_flush(node.replicable_seq);
}

/*
 * Start the replication threads. A primary whose store is brand new first
 * looks for a replica holding the data set (its volume was lost): see
 * repl_recover. Static replicas are added after that, as repl.h asks.
 */
static void
start_replication(void)
{
	struct repl_config rc;
	struct store_stats st;

	memset(&rc, 0, sizeof(rc));
	rc.token = node.repl.t_buf;
	rc.self_url = cfg.self_url;
	rc.advertise_url = cfg.advertise_url;
	rc.primary_url = node.primary_url;
	rc.backlog_bytes = cfg.backlog_bytes;
	rc.batch_bytes = REPL_BATCH_BYTES;
	rc.timeout_ms = cfg.repl_timeout_ms;
	rc.recover_wait_ms = node.recover_wait_ms;
	rc.on_ack = http_wake;
	rc.store = node.store;
	rc.peers_dns = cfg.peers_dns;
	rc.peers_port = cfg.peers_port;
	rc.max_registered = cfg.max_registered;
	store_stats(node.store, &st);
	/*
	 * A new store may be a lost volume whose data set the replicas
	 * hold; after an unclean shutdown, writes pushed before they
	 * reached this disk may be on replicas and gone here.
	 */
	if (node.role != ROLE_PRIMARY)
		rc.recover = REPL_RECOVER_NONE;
	else if (st.keys == 0 && st.last_seq == 0 && !st.synced)
		rc.recover = REPL_RECOVER_EMPTY;
	else if (st.recovered)
		rc.recover = REPL_RECOVER_TAIL;
	if (repl_init(&rc, st.repl_id, st.last_seq) == -1)
		die("cannot start replication:");
	if (node.role == ROLE_PRIMARY) {
		each_url(cfg.replica_urls, add_replica_url);
		if (rc.recover != REPL_RECOVER_NONE) {
			kv_log("info", "%s: asking replicas for %s (up to %d "
			    "ms for those that do not answer) before taking "
			    "writes", rc.recover == REPL_RECOVER_EMPTY ?
			    "the store is new" : "unclean shutdown",
			    rc.recover == REPL_RECOVER_EMPTY ? "an existing "
			    "data set" : "writes this node lost",
			    node.recover_wait_ms);
			if (repl_recover() == -1)
				die("cannot start recovery:");
			recovery_mode = rc.recover;
		}
	} else if (*node.primary_url != '\0' && repl_announce() == -1)
		die("cannot start announcing to %s:", node.primary_url);
}

/* ---- Signals and main ---- */

static void
on_signal(int sig)
{
	(void)sig;
	stopping = 1;
	http_stop();
}

static void
install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

int
main(int argc, char **argv)
{
	struct http_config hc;
	struct store_stats st;
	char path[PATH_MAX], err[256];

	if (argc > 1)
		return cli_main(argc, argv);
	load_config();
	install_signals();
	raise_fd_limit();
	prepare_data_dir(node.data_dir);
	if (fmt_buf(path, sizeof(path), "%s/kvstore.db", node.data_dir) >=
	    (int)sizeof(path))
		die("DATA_DIR %s: path too long", node.data_dir);

	memset(&hc, 0, sizeof(hc));
	hc.port = cfg.port;
	hc.max_conns = cfg.max_conns;
	hc.max_body = node.max_value;
	hc.header_timeout_ms = cfg.header_timeout_ms;
	hc.body_timeout_ms = cfg.idle_timeout_ms;
	hc.idle_timeout_ms = cfg.idle_timeout_ms;
	hc.drain_timeout_ms = 5000;
	hc.handler = api_handle;
	hc.tick = tick;
	hc.body_limit = api_body_limit;
	hc.admit = api_admit;
	wait_init(api_handle);
	events_init(env_int("MAX_EVENT_STREAMS", 64, 0, 4096));
	/*
	 * Listen before opening the store: store_open marks the file open
	 * (unclean), so dying after it on a taken port would cost the next
	 * start a recovery and a primary a new replication id.
	 */
	if (http_init(&hc) == -1)
		die("cannot listen on port %s:", cfg.port);
	if ((node.store = store_open(path, node.fsync, err,
	    sizeof(err))) == NULL && errno == EUCLEAN)
		die("cannot open store %s: %s; with the server stopped, run "
		    "`kvstore check %s`, then `kvstore salvage %s`", path, err,
		    node.data_dir, node.data_dir);
	if (node.store == NULL)
		die("cannot open store %s: %s", path, err);
	if (http_watch(store_notify_fd(node.store), wait_on_durable,
	    NULL) == -1)
		die("cannot watch the store's flush notifications:");
	start_replication();
	/*
	 * Last of the steps that can die: a thread still running at exit()
	 * is a leak (ThreadSanitizer reports it), so it is started only once
	 * the way out is through the join below.
	 */
	if (ui_init() == -1)
		die("cannot start unpacking the web console:");

	store_stats(node.store, &st);
	kv_log("info", "kvstore %s starting: role=%s port=%s data=%s keys=%llu "
	    "seq=%llu fsync=%s max_value=%zu auth=%s repl_auth=%s%s",
	    KVSTORE_VERSION, node_role_name(), cfg.port, path,
	    (unsigned long long)st.keys, (unsigned long long)st.last_seq,
	    node_fsync_name(node.fsync), node.max_value,
	    node.auth.t_len == 0 ? "off" : node.read_auth ? "reads,writes" :
	    "writes",
	    node.repl.t_len == 0 ? "off" : "on", st.recovered ? " (recovered "
	    "after an unclean shutdown)" : "");

	if (http_run() == -1)
		kv_log("error", "event loop failed: %s", errstr());
	(void)ui_ready();
	kv_log("info", "shutting down: delivering pending writes to replicas");
	repl_shutdown(REPL_DRAIN_MS);
	replica_close();
	kv_log("info", "flushing the store");
	if (store_close(node.store) == -1)
		die("closing the store failed; the next start will recover:");
	kv_log("info", "stopped cleanly");
	return 0;
}

/*
 * kvstore: a small replicated key-value store with an HTTP API.
 *
 * This file is the program's spine: it reads the configuration from the
 * environment, decides the node's role, and orders startup (listen, open
 * the store, start replication, run the loop) and shutdown (drain
 * connections, deliver pending writes to replicas, close the store). The
 * modules below it do the work, and none calls back up into this file:
 *   api.c	the route table and the /kv handlers
 *   wait.c	parked requests (min-seq reads, watches, acks)
 *   status.c	/health, /ready, /role, /metrics
 *   replica.c	the /repl/ endpoints, the answering side of replication
 *   repl.c	the pushing side: a thread per replica, the backlog
 *   http.c	sockets, the poll() loop, the HTTP/1.1 parser
 *   store.c	the mmap'd hash file
 *   cli.c	the command-line client; util.c, node.c their kits
 */

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "parse.h"
#include "http.h"
#include "repl.h"
#include "store.h"
#include "ui.h"
#include "util.h"
#include "node.h"
#include "api.h"
#include "replica.h"
#include "wait.h"

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
};

static struct config	 cfg;
static int		 recovery_pending;	/* primary: started empty */
static volatile sig_atomic_t stopping;

/* ---- Configuration ---- */

/* A decimal integer in [min, max], or die naming the variable. */
static long long
env_int(const char *name, long long dflt, long long min, long long max)
{
	const char *v = env(name, NULL);
	char *end;
	long long n;

	if (v == NULL)
		return dflt;
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || n < min || n > max)
		die("%s=%s: expected a whole number from %lld to %lld",
		    name, v, min, max);
	return n;
}

/* The StatefulSet ordinal: the digits after the hostname's last '-'. */
static int
host_ordinal(const char *host)
{
	const char *p = strrchr(host, '-');
	char *end;
	long n;

	if (p == NULL || p[1] < '0' || p[1] > '9')
		return -1;
	errno = 0;
	n = strtol(p + 1, &end, 10);
	if (errno != 0 || *end != '\0' || n > INT_MAX)
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
	if (gethostname(host, sizeof(host)) == -1)
		die("ROLE=auto: gethostname:");
	host[sizeof(host) - 1] = '\0';
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
		if ((n = strcspn(p, ",")) > 0)
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
	if (repl_add_replica(buf, 0) == -1)
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
	check_url("PRIMARY_URL", node.primary_url, strlen(node.primary_url));
	each_url(cfg.replica_urls, check_replica_url);
	snprintf(cfg.self_url, sizeof(cfg.self_url), "http://127.0.0.1:%s",
	    cfg.port);
	if ((v = env("ADVERTISE_URL", NULL)) != NULL) {
		check_url("ADVERTISE_URL", v, strlen(v));
		snprintf(cfg.advertise_url, sizeof(cfg.advertise_url), "%s", v);
	} else {
		char host[REPL_URL_MAX - sizeof("http://:65535")];

		if (gethostname(host, sizeof(host)) == -1)
			die("ADVERTISE_URL unset and gethostname failed:");
		host[sizeof(host) - 1] = '\0';
		snprintf(cfg.advertise_url, sizeof(cfg.advertise_url),
		    "http://%s:%s", host, cfg.port);
	}
}

/* mkdir -p, then prove the directory is writable by making a file in it. */
static void
prepare_data_dir(const char *dir)
{
	char path[PATH_MAX], *p;
	FILE *f;

	if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path))
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
	snprintf(path, sizeof(path), "%s/.write-test", dir);
	if ((f = fopen(path, "w")) == NULL)
		die("DATA_DIR %s is not writable by uid %d (give the "
		    "directory to that user):", dir, (int)getuid());
	fclose(f);
	unlink(path);
}

/* Raise the descriptor limit to its hard maximum: every connection is one. */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY &&
	    (rlim_t)cfg.max_conns + 32 > rl.rlim_cur)
		kv_log("warn", "MAX_CONNS=%d but only %llu descriptors are "
		    "allowed; accept will pause when they run out",
		    cfg.max_conns, (unsigned long long)rl.rlim_cur);
}

/* ---- The loop ---- */

/* Recovery ended: say what it found before any parked write is made. */
static void
recovery_done(void)
{
	struct store_stats st;

	recovery_pending = 0;
	store_stats(node.store, &st);
	if (st.keys == 0 && st.last_seq == 0) {
		node.started_empty = 1;
		kv_log("warn", "STARTING EMPTY: this primary's store is new and "
		    "no replica with data answered within %d ms; if replicas "
		    "held older data, it was not recovered",
		    node.recover_wait_ms);
	}
}

static void
tick(void)
{
	node.stopping = stopping;
	store_step(node.store);
	replica_step();
	if (recovery_pending && !repl_recovering())
		recovery_done();
	wait_run();
	repl_flush();
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
	store_stats(node.store, &st);
	if (node.role == ROLE_PRIMARY && st.recovered) {
		/*
		 * Writes pushed before they reached this disk may be on
		 * replicas and gone here: a new id makes every replica
		 * full-sync instead of resuming on a different history
		 * (Redis does the same after an unclean restart).
		 */
		if (store_new_repl_id(node.store) == -1)
			die("cannot write a new replication id:");
		store_stats(node.store, &st);
		kv_log("warn", "unclean shutdown: new replication id %s; "
		    "replicas will full-sync", st.repl_id);
	}
	if (repl_init(&rc, st.repl_id, st.last_seq) == -1)
		die("cannot start replication:");
	if (node.role == ROLE_PRIMARY) {
		if (st.keys == 0 && st.last_seq == 0 && !st.synced) {
			kv_log("info", "the store is new: asking replicas for "
			    "an existing data set for up to %d ms before "
			    "taking writes", node.recover_wait_ms);
			if (repl_recover() == -1)
				die("cannot start recovery:");
			recovery_pending = 1;
		}
		each_url(cfg.replica_urls, add_replica_url);
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
	if (ui_init() == -1)
		die("the web console built into this binary is corrupt");
	install_signals();
	raise_fd_limit();
	prepare_data_dir(node.data_dir);
	if (snprintf(path, sizeof(path), "%s/kvstore.db", node.data_dir) >=
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
	/*
	 * Listen before opening the store: store_open marks the file open
	 * (unclean), so dying after it on a taken port would cost the next
	 * start a recovery and a primary a new replication id.
	 */
	if (http_init(&hc) == -1)
		die("cannot listen on port %s:", cfg.port);
	if ((node.store = store_open(path, node.fsync, err,
	    sizeof(err))) == NULL)
		die("cannot open store %s: %s", path, err);
	if (http_watch(store_notify_fd(node.store), wait_on_durable,
	    NULL) == -1)
		die("cannot watch the store's flush notifications:");
	start_replication();

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
		kv_log("error", "event loop failed: %s", strerror(errno));
	kv_log("info", "shutting down: delivering pending writes to replicas");
	repl_shutdown(REPL_DRAIN_MS);
	replica_close();
	kv_log("info", "flushing the store");
	if (store_close(node.store) == -1)
		die("closing the store failed; the next start will recover:");
	kv_log("info", "stopped cleanly");
	return 0;
}

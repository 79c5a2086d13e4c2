/*
 * kvstore: a small replicated key-value store with an HTTP API.
 *
 * This file is the program: it reads the configuration from the
 * environment, decides the node's role, opens the store, routes each HTTP
 * request (method + path) to its handler, and handles signals. It never
 * touches a socket (http.c does) nor the file layout (store.c does).
 *
 * The API (README.md has the long form):
 *   GET    /kv/{key}	the value, 200; 404 when missing
 *   GET    /kv/		every key, a JSON array, streamed
 *   PUT    /kv/{key}	201 created, 200 replaced; primary only
 *   DELETE /kv/{key}	200 deleted, 404 missing; primary only
 *   GET    /health	liveness, 200 while the loop runs
 *   GET    /ready		readiness, JSON with role and key count
 *   GET    /role		"primary" or "replica"
 *   GET    / and /ui	the web console (ui.c), its parts under /ui/
 * A key is the rest of the path after /kv/, percent-decoded once: 1 to
 * STORE_MAX_KEY bytes, any byte but NUL. With AUTH_TOKEN set, PUT and
 * DELETE (and with READ_AUTH every /kv request) need "Authorization:
 * Bearer <token>", or get 401; /health, /ready, /role and /metrics stay
 * open for probes and Prometheus.
 */

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "http.h"
#include "repl.h"
#include "store.h"
#include "ui.h"
#include "util.h"

#define LIST_BATCH	256		/* keys fetched per listing step */
#define LIST_BUF_BYTES	(LIST_BATCH * (JSON_KEY_MAX + 1) + 64)
#define LIST_TAIL	48		/* a page's "],"next":"..."}" */
#define LIST_PAGE_MAX	1000		/* keys in one page */
#define LIST_PAGE_DEFAULT 100
#define LIST_PAGE_SCAN	100000		/* keys one page may look at */
#define JSON_KEY_MAX	(JSON_STRING_MAX(STORE_MAX_KEY) + 1)
#define REPL_BATCH_BYTES (1 << 20)	/* one push: ~8,000 small writes */
#define APPLY_AHEAD	8		/* records prefetched ahead of the apply */
#define SENDFILE_MIN_BYTES (16 << 10)	/* a value this big goes out by
					   sendfile(2): no copy, no buffer */
#define SNAPSHOT_STAGE_BYTES (1 << 20)	/* a snapshot's staging buffer */
#define SNAPSHOT_SCAN_KEYS 4096		/* keys per store_scan, at most */
#define SNAPSHOT_FIRST_BYTES (64 << 10)	/* grown for big values */
#define PRIMARY_UP_MS	3000		/* heartbeats come every second */
#define MAX_PEERS_SHOWN	64		/* in /ready */
#define REPL_DRAIN_MS	3000		/* SIGTERM: deliver pending writes */
#define WATCH_DEFAULT_MS 300000		/* a watch without ?wait=: Consul's 5 min */
#define WATCH_MAX_MS	600000		/* and at most Consul's 10 min */
#define METRICS_BYTES	(256 << 10)	/* http.c's ~25 KiB, 64 replicas' */

enum role { ROLE_PRIMARY, ROLE_REPLICA };

struct config {
	enum role	 role;
	const char	*port;
	const char	*data_dir;
	const char	*replica_urls;
	const char	*primary_url;
	size_t		 max_value;
	enum store_fsync fsync;
	int		 log_level;
	int		 max_conns;
	int		 header_timeout_ms;
	int		 idle_timeout_ms;
	struct token	 auth;		/* clients' writes (and reads) */
	int		 read_auth;	/* reads of /kv need auth too */
	struct token	 repl;		/* /repl/ requests */
	char		 advertise_url[300];
	char		 self_url[64];
	size_t		 backlog_bytes;
	int		 repl_timeout_ms;
	int		 recover_wait_ms;
	int		 min_seq_wait_ms;
	int		 replicas_wait_ms;
	int		 min_replicas;
	int		 max_replica_lag_ms;
};

/* A write under FSYNC=always, answered once the flusher passes its seq. */
struct pending {
	uint64_t	 id;
	uint64_t	 seq;
	int		 status;
	const char	*msg;
	struct pending	*next;
};

/* A request waiting on the loop; see "Waiting requests". */
enum wait_kind { WAIT_SEQ, WAIT_KEY, WAIT_LIST, WAIT_ACKS };

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
	char		*w_key;		/* KEY: the key; LIST: the prefix */
	size_t		 w_klen;
	struct http_request *w_req;	/* SEQ, KEY, LIST: to run again */
	struct waiter	*w_next;
};

/*
 * A streamed body staged in memory: a refill step writes the next part into
 * buf, and http.c takes it out as the client reads. Listings and snapshots
 * share it (stage_out).
 */
struct stage {
	char		*buf;
	size_t		 len;		/* staged */
	size_t		 off;		/* handed out */
	size_t		 cap;
	int		 finished;	/* the last part is staged */
	int		 failed;	/* out of memory: abort the stream */
	uint64_t	 gen;		/* store_gen when the stream began */
};

/* The state of one listing: streamed whole, or one page of it. */
struct listing {
	uint64_t	 cursor;
	char		 prefix[STORE_MAX_KEY];
	size_t		 plen;
	int		 values;	/* objects with values, not key strings */
	int		 opened;	/* '[' written */
	int		 nkeys;		/* keys written, for the commas */
	struct stage	 st;		/* JSON; finished once ']' is written */
};

static void	load_config(void);
static void	handle(struct http_request *r);
static void	tick(void);
static void	on_durable(void *arg);
static int	watch_key(struct http_request *, const char *, size_t,
		    const struct store_value *);
static int	watch_list(struct http_request *, const char *, size_t);
static void	note_write(const char *, size_t);
static int	header_u64(struct http_request *, const char *, uint64_t *);
static struct waiter *park(struct http_request *, int, uint64_t, uint64_t,
		    const char *, size_t);
static void	reply_write(uint64_t, int, const char *, uint64_t);
static char	*field_u64(char *, const char *, uint64_t, const char *);
static int	enough_replicas(struct http_request *);

static struct config	 cfg;
static struct store	*store;
static uint64_t		 store_gen;	/* bumped when a full sync swaps it */
/* The full sync in progress on this node: a fresh store beside the live. */
static struct store	*sync_store;
static char		 sync_id[33];
static uint64_t		 sync_seq;
static uint64_t		 sync_token;		/* names the sync in progress */
static uint64_t		 primary_heard_ms;	/* replica: last push */
static uint64_t		 primary_seq;		/* replica: as last told */
static int		 recovery_pending;	/* primary: started empty */
static int		 started_empty;		/* and recovered nothing */
static int		 disk_full;	/* the last write found no room */
static struct pending	*pending_head, *pending_tail;
static volatile sig_atomic_t stopping;
static struct waiter	*waiters;
static int		 replaying;	/* handle() runs a parked request */

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

static enum role
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

static const char *
fsync_name(enum store_fsync f)
{
	return f == STORE_FSYNC_ALWAYS ? "always" :
	    f == STORE_FSYNC_NO ? "no" : "everysec";
}

/* url[0..len) is a URL the replication client can use: http://host:port. */
static void
check_url(const char *name, const char *url, size_t len)
{
	if (len > 0 && (strncmp(url, "http://", 7) != 0 || len <= 7 ||
	    len > 255))
		die("%s: \"%.*s\" is not a URL of the form http://host:port",
		    name, (int)(len > 255 ? 255 : len), url);
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
	char buf[256];

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

	if (token_load(&cfg.auth, "AUTH_TOKEN", why, sizeof(why)) == -1 ||
	    token_load(&cfg.repl, "REPL_TOKEN", why, sizeof(why)) == -1)
		die("%s", why);
	if (cfg.repl.t_len == 0)
		cfg.repl = cfg.auth;
	v = env("READ_AUTH", "false");
	if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
		cfg.read_auth = 1;
	else if (strcmp(v, "false") != 0 && strcmp(v, "0") != 0)
		die("READ_AUTH=%s: expected true or false", v);
	if (cfg.read_auth && cfg.auth.t_len == 0)
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
	cfg.role = parse_role(env("ROLE", "replica"));
	cfg.port = env("PORT", "8080");
	env_int("PORT", 8080, 1, 65535);
	cfg.data_dir = env("DATA_DIR", "./data");
	cfg.replica_urls = env("REPLICA_URLS", "");
	cfg.primary_url = env("PRIMARY_URL", "");
	cfg.max_value = env_int("MAX_VALUE_BYTES", 1 << 20, 0, 1LL << 30);
	cfg.fsync = parse_fsync(env("FSYNC", "everysec"));
	cfg.max_conns = env_int("MAX_CONNS", 4096, 1, 1000000);
	cfg.header_timeout_ms = env_int("HEADER_TIMEOUT_MS", 10000, 1,
	    3600000);
	cfg.idle_timeout_ms = env_int("IDLE_TIMEOUT_MS", 60000, 1, 86400000);
	load_tokens();
	cfg.backlog_bytes = env_int("REPL_BACKLOG_BYTES", 16 << 20, 1 << 16,
	    1LL << 40);
	cfg.repl_timeout_ms = env_int("REPL_TIMEOUT_MS", 5000, 100, 600000);
	cfg.recover_wait_ms = env_int("RECOVER_WAIT_MS", 5000, 0, 3600000);
	cfg.min_seq_wait_ms = env_int("MIN_SEQ_WAIT_MS", 5000, 0, 600000);
	cfg.replicas_wait_ms = env_int("REPLICAS_WAIT_MS", 5000, 0, 600000);
	cfg.min_replicas = env_int("MIN_REPLICAS_TO_WRITE", 0, 0,
	    MAX_PEERS_SHOWN);
	cfg.max_replica_lag_ms = env_int("MAX_REPLICA_LAG_MS", 10000, 0,
	    86400000);
	check_url("PRIMARY_URL", cfg.primary_url, strlen(cfg.primary_url));
	each_url(cfg.replica_urls, check_replica_url);
	snprintf(cfg.self_url, sizeof(cfg.self_url), "http://127.0.0.1:%s",
	    cfg.port);
	if ((v = env("ADVERTISE_URL", NULL)) != NULL) {
		check_url("ADVERTISE_URL", v, strlen(v));
		snprintf(cfg.advertise_url, sizeof(cfg.advertise_url), "%s", v);
	} else {
		char host[256];

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

/* ---- Replies ---- */

static void
reply_text(uint64_t id, int status, const char *extra, const char *fmt, ...)
{
	char body[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(body, sizeof(body) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(body) - 2)
		n = sizeof(body) - 2;
	body[n++] = '\n';
	http_reply(id, status, "text/plain; charset=utf-8", extra, body, n);
}

static void
method_not_allowed(struct http_request *r, const char *allow)
{
	char extra[96];

	snprintf(extra, sizeof(extra), "Allow: %s\r\n", allow);
	reply_text(r->id, 405, extra, "method %.*s not allowed here; "
	    "allowed: %s", (int)r->method_len, r->method, allow);
}

static int
method_is(const struct http_request *r, const char *m)
{
	return r->method_len == strlen(m) &&
	    memcmp(r->method, m, r->method_len) == 0;
}

static int
path_is(const struct http_request *r, const char *p)
{
	return r->path_len == strlen(p) && memcmp(r->path, p, r->path_len) == 0;
}

static int
is_read(const struct http_request *r)
{
	return method_is(r, "GET") || method_is(r, "HEAD");
}

/* ---- Streamed bodies ---- */

/* Room for need more staged bytes (plus slack kept free); 0, or -1 and
 * failed set when out of memory. */
static int
stage_reserve(struct stage *st, size_t need, size_t slack)
{
	char *p;

	if (st->len + need <= st->cap)
		return 0;
	if ((p = realloc(st->buf, st->len + need + slack)) == NULL) {
		st->failed = 1;
		return -1;
	}
	st->buf = p;
	st->cap = st->len + need;
	return 0;
}

/*
 * http_producer for a staged body owned by owner (which embeds st): hand
 * out what is staged, refill(owner) when it ran out, free both at the end
 * or when the client went away.
 */
static ssize_t
stage_out(struct stage *st, void *owner, void (*refill)(void *owner),
    char *buf, size_t cap)
{
	size_t n;

	if (buf == NULL || (st->off == st->len && st->finished)) {
		free(st->buf);
		free(owner);
		return 0;
	}
	if (st->off == st->len) {
		st->off = st->len = 0;
		/*
		 * A full sync swapped another data set in: the cursor means
		 * nothing there, and going on would stream part of each
		 * store (keys twice, keys of neither). Cut the stream off;
		 * the client sees it unfinished, never a half store.
		 */
		if (st->gen != store_gen)
			st->failed = 1;
		else
			refill(owner);
		if (st->failed) {
			free(st->buf);
			free(owner);
			return -1;
		}
	}
	n = st->len - st->off < cap ? st->len - st->off : cap;
	memcpy(buf, st->buf + st->off, n);
	st->off += n;
	return (ssize_t)n;
}

/* ---- Listing ---- */

static size_t
base64(char *out, const unsigned char *in, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, o = 0;
	uint32_t v;

	for (i = 0; i + 2 < n; i += 3) {
		v = (uint32_t)in[i] << 16 | in[i + 1] << 8 | in[i + 2];
		out[o++] = tab[v >> 18];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = tab[v >> 6 & 63];
		out[o++] = tab[v & 63];
	}
	if (i < n) {
		v = (uint32_t)in[i] << 16 | (i + 1 < n ? in[i + 1] << 8 : 0);
		out[o++] = tab[v >> 18];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
		out[o++] = '=';
	}
	return o;
}

static int
list_key(void *arg, const char *key, size_t klen, const struct store_value *v)
{
	struct listing *l = arg;
	size_t need;

	if (klen < l->plen || memcmp(key, l->prefix, l->plen) != 0)
		return 0;
	need = klen * 6 + (l->values ? v->len * 6 + 64 : 0) + 8;
	if (stage_reserve(&l->st, need, LIST_TAIL) == -1)
		return 0;
	if (l->nkeys++ > 0)
		l->st.buf[l->st.len++] = ',';
	if (!l->values) {
		l->st.len += json_string(l->st.buf + l->st.len, key, klen);
		return 0;
	}
	l->st.len += sprintf(l->st.buf + l->st.len, "{\"key\":");
	l->st.len += json_string(l->st.buf + l->st.len, key, klen);
	if (utf8_valid(v->data, v->len)) {
		l->st.len += sprintf(l->st.buf + l->st.len, ",\"value\":");
		l->st.len += json_string(l->st.buf + l->st.len, v->data, v->len);
	} else {
		l->st.len += sprintf(l->st.buf + l->st.len, ",\"value_base64\":\"");
		l->st.len += base64(l->st.buf + l->st.len, (const unsigned char *)v->data,
		    v->len);
		l->st.buf[l->st.len++] = '"';
	}
	l->st.len += sprintf(l->st.buf + l->st.len, ",\"version\":%llu}",
	    (unsigned long long)v->seq);
	return 0;
}

/* Scan up to limit keys into l->st.buf; a scan that cannot move is a failure
 * (store_scan is out of memory), never a reason to try forever. */
static size_t
list_step(struct listing *l, size_t limit)
{
	uint64_t before = l->cursor;
	size_t n;

	n = store_scan(store, &l->cursor, limit, list_key, l);
	if (n == 0 && l->cursor == before)
		l->st.failed = 1;
	return n;
}

/* Scan the next batch into l->st.buf, closing the array at the end. */
static size_t
list_more(struct listing *l)
{
	size_t n;

	n = list_step(l, l->values ? 1 : LIST_BATCH);
	if (l->cursor == UINT64_MAX && !l->st.failed) {
		memcpy(l->st.buf + l->st.len, "]\n", 2);
		l->st.len += 2;
		l->st.finished = 1;
	}
	return n + 1;	/* progress even on an empty scan */
}

/*
 * Stream the listing: LIST_BATCH keys at a time into l->st.buf, handed out as
 * http.c asks. The cursor walks in hash order, so a key present for the
 * whole listing appears exactly once even while writes go on.
 */
static void
list_refill(void *arg)
{
	struct listing *l = arg;
	size_t scanned;

	if (!l->opened) {
		l->st.buf[l->st.len++] = '[';
		l->opened = 1;
		return;
	}
	for (scanned = 0; l->st.len == 0 && !l->st.finished &&
	    !l->st.failed && scanned < LIST_PAGE_SCAN;)
		scanned += list_more(l);
	if (l->st.len == 0 && !l->st.finished)
		l->st.buf[l->st.len++] = ' ';	/* 0 would end the stream */
}

static ssize_t
list_produce(void *arg, char *buf, size_t cap)
{
	struct listing *l = arg;

	return stage_out(&l->st, l, list_refill, buf, cap);
}

/*
 * One page: up to limit matching keys from the cursor, scanning at most
 * LIST_PAGE_SCAN keys so that a rare prefix never stalls the loop (a page
 * may then hold fewer keys; the cursor still moves on).
 */
static void
list_page(struct http_request *r, struct listing *l, size_t limit)
{
	char extra[96], next[24];
	size_t scanned = 0;
	int n;

	l->st.buf[l->st.len++] = '[';
	while ((size_t)l->nkeys < limit && l->cursor != UINT64_MAX &&
	    scanned < LIST_PAGE_SCAN && !l->st.failed)
		scanned += list_step(l, limit - l->nkeys);
	if (l->st.failed) {
		reply_text(r->id, 503, "", "out of memory");
		return;
	}
	n = (int)(field_u64(extra, "X-Kv-Index: ", store_last_seq(store),
	    "\r\n") - extra);
	snprintf(next, sizeof(next), "null");
	if (l->cursor != UINT64_MAX) {
		snprintf(next, sizeof(next), "\"%016llx\"",
		    (unsigned long long)l->cursor);
		snprintf(extra + n, sizeof(extra) - n,
		    "X-Kv-Next-Cursor: %016llx\r\n",
		    (unsigned long long)l->cursor);
	}
	/* l->st.cap leaves room for this tail (LIST_TAIL). */
	n = sprintf(l->st.buf + l->st.len, "],\"next\":%s}\n", next);
	l->st.len += n;
	http_reply(r->id, 200, "application/json", extra, l->st.buf, l->st.len);
}

/*
 * GET /kv/: every key as a JSON array, streamed; with prefix= only those
 * keys; with values=true objects with the values; with limit= (and the
 * cursor= of the previous page) one page as {"keys":[...],"next":...}.
 */
static void
list_keys(struct http_request *r)
{
	struct listing *l;
	const char *v;
	char *end, tmp[3 * STORE_MAX_KEY], index[48];
	size_t len;
	ssize_t n;
	long limit = 0;

	if ((l = calloc(1, sizeof(*l))) == NULL ||
	    (l->st.buf = malloc(LIST_BUF_BYTES)) == NULL) {
		free(l);
		reply_text(r->id, 503, "", "out of memory");
		return;
	}
	l->st.cap = LIST_BUF_BYTES - LIST_TAIL;
	l->st.gen = store_gen;
	if ((v = http_query(r, "prefix", &len)) != NULL) {
		if (len > sizeof(tmp) || (n = http_unescape(v, len, tmp)) < 0 ||
		    n > STORE_MAX_KEY) {
			reply_text(r->id, 400, "", "bad prefix: an invalid "
			    "escape, %%00, or over %d bytes", STORE_MAX_KEY);
			goto done;
		}
		memcpy(l->prefix, tmp, n);
		l->plen = n;
	}
	if (watch_list(r, l->prefix, l->plen))
		goto done;
	if ((v = http_query(r, "values", &len)) != NULL)
		l->values = len == 4 && memcmp(v, "true", 4) == 0;
	if ((v = http_query(r, "limit", &len)) != NULL) {
		limit = strtol(v, &end, 10);
		if (end != v + len || limit < 1 || limit > LIST_PAGE_MAX) {
			reply_text(r->id, 400, "", "limit must be 1 to %d",
			    LIST_PAGE_MAX);
			goto done;
		}
	}
	if ((v = http_query(r, "cursor", &len)) != NULL) {
		l->cursor = strtoull(v, &end, 16);
		if (len != 16 || end != v + len ||
		    strspn(v, "0123456789abcdef") < 16) {
			reply_text(r->id, 400, "", "bad cursor: use the \"next\" "
			    "of the previous page");
			goto done;
		}
		if (limit == 0)
			limit = LIST_PAGE_DEFAULT;
	}
	if (limit > 0) {
		memcpy(l->st.buf, "{\"keys\":", 8);
		l->st.len = 8;
		list_page(r, l, limit);
		goto done;
	}
	field_u64(index, "X-Kv-Index: ", store_last_seq(store), "\r\n");
	if (http_stream(r->id, 200, "application/json", index, list_produce,
	    l) == 0)
		return;
done:
	free(l->st.buf);
	free(l);
}

/* ---- Authentication ---- */

/*
 * Whether r may go on under AUTH_TOKEN: writes need it on the primary
 * (a replica answers them 403 whoever asks, naming the primary), reads
 * need it with READ_AUTH. Otherwise answers 401 as RFC 6750 says: a
 * request without a Bearer token gets a bare challenge, a wrong token
 * error="invalid_token". The probes, /role and /metrics never come here.
 */
static int
authorized(struct http_request *r)
{
	const char *h;
	size_t len;

	if (cfg.auth.t_len == 0 ||
	    (is_read(r) ? !cfg.read_auth : cfg.role != ROLE_PRIMARY))
		return 1;
	if ((h = http_header(r, "Authorization", &len)) == NULL || len < 6 ||
	    strncasecmp(h, "Bearer", 6) != 0 || (len > 6 && h[6] != ' ')) {
		reply_text(r->id, 401, "WWW-Authenticate: Bearer "
		    "realm=\"kvstore\"\r\n", "this request needs a token: send "
		    "Authorization: Bearer <AUTH_TOKEN>");
		return 0;
	}
	for (h += 6, len -= 6; len > 0 && *h == ' '; h++, len--)
		;
	if (!token_equal(&cfg.auth, h, len)) {
		reply_text(r->id, 401, "WWW-Authenticate: Bearer "
		    "realm=\"kvstore\", error=\"invalid_token\"\r\n",
		    "the Bearer token is not valid");
		return 0;
	}
	return 1;
}

/* ---- Keys ---- */

/*
 * Decode the key from the path after "/kv/" into key[STORE_MAX_KEY]. On a
 * bad key, answer the request and return -1.
 */
static ssize_t
parse_key(struct http_request *r, char *key)
{
	const char *raw = r->path + 4;
	size_t rawlen = r->path_len - 4;
	char tmp[8192];
	ssize_t n;

	if (rawlen > sizeof(tmp)) {
		reply_text(r->id, 414, "", "key is longer than %d bytes",
		    STORE_MAX_KEY);
		return -1;
	}
	if ((n = http_unescape(raw, rawlen, tmp)) < 0) {
		reply_text(r->id, 400, "", "bad key: invalid percent-escape "
		    "or %%00 in the path");
		return -1;
	}
	if (n > STORE_MAX_KEY) {
		reply_text(r->id, 414, "", "key is %zd bytes; the limit is %d",
		    n, STORE_MAX_KEY);
		return -1;
	}
	memcpy(key, tmp, n);
	return n;
}

static void
reply_readonly(struct http_request *r)
{
	if (*cfg.primary_url != '\0')
		reply_text(r->id, 403, "", "this node is a read-only replica; "
		    "send writes to the primary at %s", cfg.primary_url);
	else
		reply_text(r->id, 403, "", "this node is a read-only replica; "
		    "send writes to the primary");
}

/*
 * A write the store refused. A failed flush is for good (see store_error):
 * 503 until a restart, logged once by the store. A full disk is a state
 * that ends when space is freed: 507, logged when it begins and ends
 * rather than once per refused request.
 */
static void
reply_store_error(struct http_request *r, const char *op)
{
	int saved = errno, failed = store_error(store);

	if (failed != 0) {
		reply_text(r->id, 503, "", "%s refused: writing to the disk "
		    "failed (%s); this node takes no writes until it is "
		    "restarted; reads still work", op, strerror(failed));
		return;
	}
	if (saved == ENOSPC || saved == EDQUOT) {
		if (!disk_full)
			kv_log("error", "the disk is full: refusing writes "
			    "until space is freed in %s", cfg.data_dir);
		disk_full = 1;
		reply_text(r->id, 507, "", "%s failed: the disk is full; "
		    "nothing was changed", op);
		return;
	}
	kv_log("error", "%s failed: %s", op, strerror(saved));
	reply_text(r->id, 500, "", "%s failed: %s; nothing was changed", op,
	    strerror(saved));
}

/*
 * A put went through: a full disk has room again. Not a delete: its
 * tombstone is tiny, and deleting is how users make room.
 */
static void
disk_has_room(void)
{
	if (!disk_full)
		return;
	disk_full = 0;
	kv_log("info", "the disk has room again: writes are accepted");
}

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
 * Append "name<n>end" at p and return the new end (NUL-terminated). By hand:
 * snprintf cost more than the rest of a GET together.
 */
static char *
field_u64(char *p, const char *name, uint64_t n, const char *end)
{
	char digits[20], *d = digits + sizeof(digits);

	do
		*--d = (char)('0' + n % 10);
	while ((n /= 10) > 0);
	p = stpcpy(p, name);
	memcpy(p, d, (size_t)(digits + sizeof(digits) - d));
	p += digits + sizeof(digits) - d;
	return stpcpy(p, end);
}

/*
 * The version headers of a value at p (room for VERSION_HEADERS bytes): its
 * ETag is the seq of its write. Returns the new end.
 */
#define VERSION_HEADERS	72
static char *
version_headers(char *p, uint64_t seq, int etag)
{
	if (etag)
		p = field_u64(p, "ETag: \"", seq, "\"\r\n");
	return field_u64(p, "X-Kv-Seq: ", seq, "\r\n");
}

/* A write's answer carries its version; a delete leaves no value to tag. */
static void
reply_write(uint64_t id, int status, const char *msg, uint64_t seq)
{
	char extra[96], body[32];
	size_t n = strlen(msg);

	version_headers(extra, seq, strcmp(msg, "deleted") != 0);
	memcpy(body, msg, n);		/* a short constant, no printf */
	body[n++] = '\n';
	http_reply(id, status, "text/plain; charset=utf-8", extra, body, n);
}

/*
 * Answer a write: at once, or under FSYNC=always once the flusher has put
 * seq on disk, queued in seq order (tick and the notify fd drain it).
 */
static void
ack_write(struct http_request *r, int status, const char *msg, uint64_t seq)
{
	struct pending *p;
	struct waiter *w;
	uint64_t want = 0;

	if (header_u64(r, "X-Kv-Replicas", &want) == -1)
		return;
	if (want > 0) {
		if ((w = park(r, WAIT_ACKS, (uint64_t)cfg.replicas_wait_ms, seq,
		    NULL, 0)) != NULL) {
			w->w_replicas = want > MAX_PEERS_SHOWN ?
			    MAX_PEERS_SHOWN + 1 : (int)want;
			w->w_status = status;
			w->w_msg = msg;
		}
		return;
	}
	if (cfg.fsync != STORE_FSYNC_ALWAYS || store_durable_seq(store) >= seq) {
		reply_write(r->id, status, msg, seq);
		return;
	}
	if ((p = malloc(sizeof(*p))) == NULL) {
		reply_text(r->id, 503, "", "out of memory; the write was "
		    "made but is not yet known to be on disk");
		return;
	}
	p->id = r->id;
	p->seq = seq;
	p->status = status;
	p->msg = msg;
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
	durable = store_durable_seq(store);
	while ((p = pending_head) != NULL && p->seq <= durable) {
		reply_write(p->id, p->status, p->msg, p->seq);
		pending_head = p->next;
		free(p);
	}
	if (pending_head != NULL && (e = store_error(store)) != 0) {
		while ((p = pending_head) != NULL) {
			reply_unflushed(p->id, p->seq, e);
			pending_head = p->next;
			free(p);
		}
	}
	if (pending_head == NULL)
		pending_tail = NULL;
}

/*
 * Does the If-Match / If-None-Match list hdr name version seq? Entries are
 * "*" (any existing key), "N" and, when weak is allowed, W/"N" (RFC 9110
 * 13.1.1-2: If-Match compares strongly, If-None-Match weakly).
 */
static int
etag_listed(const char *hdr, size_t len, int exists, uint64_t seq, int weak)
{
	const char *p = hdr, *end = hdr + len;
	uint64_t n;
	int is_weak;

	while (p < end) {
		while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
			p++;
		if (p < end && *p == '*') {
			if (exists)
				return 1;
			p++;
			continue;
		}
		is_weak = end - p > 2 && p[0] == 'W' && p[1] == '/';
		if (is_weak)
			p += 2;
		if (p < end && *p == '"') {
			for (n = 0, p++; p < end && *p >= '0' && *p <= '9' &&
			    n <= (UINT64_MAX - 9) / 10; p++)
				n = n * 10 + (uint64_t)(*p - '0');
			if (p < end && *p == '"' && exists && n == seq &&
			    (weak || !is_weak))
				return 1;
		}
		while (p < end && *p != ',')
			p++;
	}
	return 0;
}

/*
 * Check a write's preconditions against key's current version: If-Match
 * must name it, If-None-Match must not (If-None-Match: * creates only).
 * Answers 412 and returns -1 if one fails. An unconditional write, the
 * common case, does not look the key up.
 */
static int
write_allowed(struct http_request *r, const char *key, size_t klen)
{
	struct store_value v;
	const char *im, *inm;
	size_t imlen, inmlen;
	uint64_t seq;
	int exists;

	im = http_header(r, "If-Match", &imlen);
	inm = http_header(r, "If-None-Match", &inmlen);
	if (im == NULL && inm == NULL)
		return 0;
	exists = store_get(store, key, klen, &v);
	seq = exists ? v.seq : 0;
	if (im != NULL && !etag_listed(im, imlen, exists, seq, 0)) {
		reply_text(r->id, 412, "", exists ? "precondition failed: "
		    "the key is at version %llu" : "precondition failed: the "
		    "key does not exist", (unsigned long long)seq);
		return -1;
	}
	if (inm != NULL && etag_listed(inm, inmlen, exists, seq, 1)) {
		reply_text(r->id, 412, "", "precondition failed: the key "
		    "exists, at version %llu", (unsigned long long)seq);
		return -1;
	}
	return 0;
}

static void
get_key(struct http_request *r, const char *key, size_t klen)
{
	struct store_value v;
	const char *h;
	char extra[160], *p;
	uint64_t off;
	size_t len;
	int found, fd;

	found = store_get(store, key, klen, &v);
	if (watch_key(r, key, klen, found ? &v : NULL))
		return;
	p = field_u64(extra, "X-Kv-Index: ", store_last_seq(store), "\r\n");
	if (!found) {
		reply_text(r->id, 404, extra, "key not found");
		return;
	}
	version_headers(p, v.seq, 1);
	if ((h = http_header(r, "If-None-Match", &len)) != NULL &&
	    etag_listed(h, len, 1, v.seq, 1)) {
		http_reply(r->id, 304, NULL, extra, NULL, 0);
		return;
	}
	if (v.len >= SENDFILE_MIN_BYTES &&
	    (fd = store_value_fd(store, &v, &off)) != -1) {
		http_reply_file(r->id, 200, "application/octet-stream", extra,
		    fd, off, v.len);
		return;
	}
	http_reply(r->id, 200, "application/octet-stream", extra, v.data,
	    v.len);
}

static void
put_key(struct http_request *r, const char *key, size_t klen)
{
	uint64_t seq;
	int rc;

	if (write_allowed(r, key, klen) == -1)
		return;
	if ((rc = store_put(store, key, klen, r->body, r->body_len, 0,
	    &seq)) == -1) {
		reply_store_error(r, "write");
		return;
	}
	disk_has_room();
	repl_enqueue(REPL_PUT, seq, key, klen, r->body, r->body_len);
	note_write(key, klen);
	if (rc == 1)
		ack_write(r, 201, "created", seq);
	else
		ack_write(r, 200, "replaced", seq);
}

static void
delete_key(struct http_request *r, const char *key, size_t klen)
{
	uint64_t seq;
	int rc;

	if (write_allowed(r, key, klen) == -1)
		return;
	if ((rc = store_del(store, key, klen, 0, &seq)) == -1) {
		reply_store_error(r, "delete");
		return;
	}
	if (rc == 0) {
		reply_text(r->id, 404, "", "key not found");
		return;
	}
	repl_enqueue(REPL_DEL, seq, key, klen, NULL, 0);
	note_write(key, klen);
	ack_write(r, 200, "deleted", seq);
}

static void
route_kv(struct http_request *r)
{
	char key[STORE_MAX_KEY];
	uint64_t want;
	ssize_t klen;

	if (r->path_len == 4) {		/* "/kv/": the listing */
		if (is_read(r))
			list_keys(r);
		else
			method_not_allowed(r, "GET, HEAD");
		return;
	}
	if (!is_read(r) && !method_is(r, "PUT") && !method_is(r, "DELETE")) {
		method_not_allowed(r, "GET, HEAD, PUT, DELETE");
		return;
	}
	if ((klen = parse_key(r, key)) < 0)
		return;
	if (is_read(r))
		get_key(r, key, klen);
	else if (cfg.role != ROLE_PRIMARY)
		reply_readonly(r);
	else if (repl_recovering())
		reply_text(r->id, 503, "Retry-After: 1\r\n", "this primary "
		    "started with a new, empty store and first asks its "
		    "replicas for their data (up to RECOVER_WAIT_MS=%d ms, or "
		    "until a copy is done); writes resume then",
		    cfg.recover_wait_ms);
	else if (header_u64(r, "X-Kv-Replicas", &want) == -1 ||
	    !enough_replicas(r))
		return;
	else if (method_is(r, "PUT"))
		put_key(r, key, klen);
	else
		delete_key(r, key, klen);
}

/* ---- Waiting requests ---- */

/*
 * Requests that wait on the loop, without a thread: a read for a sequence
 * this node has not applied yet (X-Kv-Min-Seq), a watch (?index=&wait=),
 * and a write waiting for replica acknowledgements (X-Kv-Replicas). A
 * waiter keeps a copy of its request and runs it again when its condition
 * holds or its time is up. tick() looks at them every 10 ms and whenever
 * the loop wakes: linear in waiters, fine for thousands.
 */

/* A copy of r's head (not its body) in one allocation. */
static struct http_request *
save_request(const struct http_request *r)
{
	struct http_request *c;
	size_t n = r->method_len + r->path_len + r->query_len, i;
	char *p;

	for (i = 0; i < r->nheaders; i++)
		n += r->headers[i].name_len + r->headers[i].value_len;
	if ((c = malloc(sizeof(*c) + n)) == NULL)
		return NULL;
	*c = *r;
	p = (char *)(c + 1);
	c->method = memcpy(p, r->method, r->method_len);
	p += r->method_len;
	c->path = memcpy(p, r->path, r->path_len);
	p += r->path_len;
	if (r->query != NULL) {
		c->query = memcpy(p, r->query, r->query_len);
		p += r->query_len;
	}
	for (i = 0; i < r->nheaders; i++) {
		c->headers[i].name = memcpy(p, r->headers[i].name,
		    r->headers[i].name_len);
		p += r->headers[i].name_len;
		c->headers[i].value = memcpy(p, r->headers[i].value,
		    r->headers[i].value_len);
		p += r->headers[i].value_len;
	}
	c->body = NULL;
	c->body_len = 0;
	return c;
}

/* Park r; w_key (if any) is copied. Answers 503 itself on failure. */
static struct waiter *
park(struct http_request *r, int kind, uint64_t wait_ms, uint64_t seq,
    const char *key, size_t klen)
{
	struct waiter *w;

	if ((w = calloc(1, sizeof(*w))) == NULL ||
	    (kind != WAIT_ACKS && (w->w_req = save_request(r)) == NULL) ||
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
	return w;
}

/*
 * A header or query value as a u64: 1 and *out if present and valid, 0
 * if absent, -1 (answered 400) if present and not a number.
 */
static int
number_of(struct http_request *r, const char *v, size_t len,
    const char *name, uint64_t *out)
{
	uint64_t n = 0;
	size_t i;

	if (v == NULL)
		return 0;
	for (i = 0; i < len && v[i] >= '0' && v[i] <= '9' &&
	    n <= (UINT64_MAX - 9) / 10; i++)
		n = n * 10 + (uint64_t)(v[i] - '0');
	if (len == 0 || i != len) {
		reply_text(r->id, 400, "", "%s must be a whole number", name);
		return -1;
	}
	*out = n;
	return 1;
}

static int
header_u64(struct http_request *r, const char *name, uint64_t *out)
{
	size_t len;
	const char *v = http_header(r, name, &len);

	return number_of(r, v, len, name, out);
}

static int
query_number(struct http_request *r, const char *name, uint64_t *out)
{
	size_t len;
	const char *v = http_query(r, name, &len);

	return number_of(r, v, len, name, out);
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
static int
wait_min_seq(struct http_request *r)
{
	struct store_stats st;
	uint64_t want;
	int rc;

	if ((rc = header_u64(r, "X-Kv-Min-Seq", &want)) <= 0)
		return rc == -1;
	store_stats(store, &st);
	if (st.last_seq >= want)
		return 0;
	park(r, WAIT_SEQ, (uint64_t)cfg.min_seq_wait_ms, want, NULL, 0);
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

	if (replaying || (rc = query_number(r, "index", index)) == 0)
		return -1;
	if (rc == -1 || wait_ms_of(r, ms) == -1)
		return 1;
	return 0;
}

/* Under ?index=: does the key (v, or NULL if missing) wait for a change? */
static int
watch_key(struct http_request *r, const char *key, size_t klen,
    const struct store_value *v)
{
	struct waiter *w;
	uint64_t index, ms;
	int rc;

	if ((rc = watch_args(r, &index, &ms)) != 0)
		return rc == 1;
	/* A missing key may have been deleted since index: say so now. */
	if (v != NULL ? v->seq > index : store_last_seq(store) > index)
		return 0;
	if ((w = park(r, WAIT_KEY, ms, index, key, klen)) != NULL)
		w->w_existed = v != NULL;
	return 1;
}

/* Under ?index=: does a listing wait for a change under its prefix? */
static int
watch_list(struct http_request *r, const char *prefix, size_t plen)
{
	uint64_t index, ms;
	int rc;

	if ((rc = watch_args(r, &index, &ms)) != 0)
		return rc == 1;
	/* No history per prefix: an index behind the node's answers now. */
	if (store_last_seq(store) > index)
		return 0;
	park(r, WAIT_LIST, ms, index, prefix, plen);
	return 1;
}

/* A write of key happened here: wake the listings watching its prefix. */
static void
note_write(const char *key, size_t klen)
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
	struct repl_peer peers[MAX_PEERS_SHOWN];
	size_t n, i;
	int count = 0;

	n = repl_peers(peers, MAX_PEERS_SHOWN);
	for (i = 0; i < n && i < MAX_PEERS_SHOWN; i++)
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
static int
enough_replicas(struct http_request *r)
{
	struct repl_peer peers[MAX_PEERS_SHOWN];
	size_t n, i;
	int good = 0;

	if (cfg.min_replicas == 0)
		return 1;
	n = repl_peers(peers, MAX_PEERS_SHOWN);
	for (i = 0; i < n && i < MAX_PEERS_SHOWN; i++)
		good += strcmp(peers[i].state, "streaming") == 0 &&
		    peers[i].lag_ms <= (uint64_t)cfg.max_replica_lag_ms &&
		    peers[i].last_contact_ms <= (uint64_t)cfg.max_replica_lag_ms +
		    REPL_HEARTBEAT_MS;
	if (good >= cfg.min_replicas)
		return 1;
	reply_text(r->id, 503, "Retry-After: 1\r\n", "not enough replicas: "
	    "%d connected and within %d ms, MIN_REPLICAS_TO_WRITE is %d; "
	    "nothing was written", good, cfg.max_replica_lag_ms,
	    cfg.min_replicas);
	return 0;
}

/* Run a waiter's request again; its condition holds or its time is up. */
static void
replay(struct waiter *w)
{
	/* A watch answers now; a read that waited for a seq may still watch. */
	replaying = w->w_kind == WAIT_KEY || w->w_kind == WAIT_LIST;
	handle(w->w_req);
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
			exists = store_get(store, w->w_key, w->w_klen, &v);
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
	case WAIT_ACKS:
		if (cfg.fsync == STORE_FSYNC_ALWAYS &&
		    store_durable_seq(store) < w->w_seq &&
		    (e = store_error(store)) != 0) {
			reply_unflushed(w->w_id, w->w_seq, e);
			return 1;
		}
		acks = replicas_at(w->w_seq);
		if (acks >= w->w_replicas &&
		    (cfg.fsync != STORE_FSYNC_ALWAYS ||
		    store_durable_seq(store) >= w->w_seq)) {
			reply_write(w->w_id, w->w_status, w->w_msg, w->w_seq);
			return 1;
		}
		if (now < w->w_deadline)
			return 0;
		/* The write is made: its version still lets the client read
		 * it back (X-Kv-Min-Seq) or compare-and-swap on it. */
		version_headers(extra, w->w_seq, strcmp(w->w_msg, "deleted") !=
		    0);
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
	store_stats(store, &st);
	changed = st.last_seq != seen_seq;
	seen_seq = st.last_seq;
	if (stopping)	/* answer every wait now rather than cut it */
		for (w = waiters; w != NULL; w = w->w_next)
			w->w_deadline = now;
	for (pw = &waiters; (w = *pw) != NULL;) {
		if (!settle(w, now, st.last_seq, changed)) {
			pw = &w->w_next;
			continue;
		}
		*pw = w->w_next;
		free(w->w_req);
		free(w->w_key);
		free(w);
	}
}

/* ---- Status endpoints ---- */

static const char *
role_name(void)
{
	return cfg.role == ROLE_PRIMARY ? "primary" : "replica";
}

/* Why this node is not ready, or NULL if it is. */
static const char *
not_ready(const struct store_stats *st)
{
	if (stopping)
		return "stopping";
	if (cfg.role == ROLE_PRIMARY && repl_recovering())
		return "recovering";
	if (cfg.role == ROLE_REPLICA && !st->synced)
		return "syncing";
	/* For good: a restart must recover the store from disk. A full
	 * disk is not here: it ends by itself, and reads still work. */
	if (store_error(store) != 0)
		return "disk-failed";
	return NULL;
}

/* Append the replication part of /ready to b (room for all of it). */
static size_t
ready_repl(char *b, const struct store_stats *st)
{
	struct repl_peer peers[MAX_PEERS_SHOWN];
	size_t n, i, o = 0;
	uint64_t now = mono_ms();

	if (cfg.role == ROLE_REPLICA) {
		o += sprintf(b + o, ",\"primary\":{\"url\":");
		o += json_string(b + o, cfg.primary_url, strlen(cfg.primary_url));
		o += sprintf(b + o, ",\"link\":\"%s\",\"last_heard_ms\":",
		    primary_heard_ms != 0 &&
		    now - primary_heard_ms < PRIMARY_UP_MS ? "up" : "down");
		o += primary_heard_ms == 0 ? sprintf(b + o, "null") :
		    sprintf(b + o, "%llu",
		    (unsigned long long)(now - primary_heard_ms));
		o += sprintf(b + o, ",\"applied_seq\":%llu,\"primary_seq\":%llu,"
		    "\"lag_writes\":%llu}", (unsigned long long)st->last_seq,
		    (unsigned long long)primary_seq,
		    (unsigned long long)(primary_seq > st->last_seq ?
		    primary_seq - st->last_seq : 0));
		return o;
	}
	n = repl_peers(peers, MAX_PEERS_SHOWN);
	o += sprintf(b + o, ",\"replicas\":[");
	for (i = 0; i < n && i < MAX_PEERS_SHOWN; i++) {
		o += sprintf(b + o, "%s{\"url\":", i > 0 ? "," : "");
		o += json_string(b + o, peers[i].url, strlen(peers[i].url));
		o += sprintf(b + o, ",\"state\":\"%s\",\"acked_seq\":%llu,"
		    "\"lag_writes\":%llu,\"lag_ms\":%llu,"
		    "\"last_contact_ms\":%llu,\"full_syncs\":%llu,"
		    "\"partial_syncs\":%llu,\"registered\":%s",
		    peers[i].state, (unsigned long long)peers[i].acked_seq,
		    (unsigned long long)peers[i].lag_writes,
		    (unsigned long long)peers[i].lag_ms,
		    (unsigned long long)peers[i].last_contact_ms,
		    (unsigned long long)peers[i].full_syncs,
		    (unsigned long long)peers[i].partial_syncs,
		    peers[i].registered ? "true" : "false");
		if (peers[i].alias[0] != '\0') {
			o += sprintf(b + o, ",\"alias\":");
			o += json_string(b + o, peers[i].alias,
			    strlen(peers[i].alias));
		}
		o += sprintf(b + o, "}");
	}
	o += sprintf(b + o, "]");
	return o;
}

static void
ready(struct http_request *r)
{
	struct store_stats st;
	const char *why;
	char *b;
	size_t o;

	/* Each peer's entry is under 256 bytes beyond its JSON'd URLs. */
	if ((b = malloc(2048 + MAX_PEERS_SHOWN * (256 + 2 * 6 * 256))) ==
	    NULL) {
		reply_text(r->id, 503, "", "out of memory");
		return;
	}
	store_stats(store, &st);
	why = not_ready(&st);
	o = sprintf(b, "{\"status\":\"%s\",\"role\":\"%s\","
	    "\"keys\":%llu,\"seq\":%llu,\"durable_seq\":%llu,"
	    "\"data_bytes\":%llu,\"file_bytes\":%llu,\"fsync\":\"%s\","
	    "\"connections\":%d,\"repl_id\":\"%s\",\"disk\":\"%s\"",
	    why != NULL ? why : "ready", role_name(),
	    (unsigned long long)st.keys, (unsigned long long)st.last_seq,
	    (unsigned long long)st.durable_seq,
	    (unsigned long long)st.live_bytes,
	    (unsigned long long)st.file_bytes, fsync_name(cfg.fsync),
	    http_conns(), st.repl_id, store_error(store) != 0 ? "failed" :
	    disk_full ? "full" : "ok");
	if (started_empty)
		o += sprintf(b + o, ",\"warning\":\"this primary started "
		    "with an empty store and no replica answered within "
		    "RECOVER_WAIT_MS; any older data on replicas was not "
		    "recovered\"");
	o += ready_repl(b + o, &st);
	o += sprintf(b + o, "}\n");
	http_reply(r->id, why != NULL ? 503 : 200, "application/json", "", b,
	    o);
	free(b);
}

/* ---- Replication endpoints ---- */

/*
 * The server side of repl.c's protocol (described at the top of repl.c).
 * A replica applies pushes here, on the main thread, in sequence order:
 * a record at or below the applied sequence is skipped (a repeated batch
 * is harmless) and a batch that starts past applied + 1 is a gap, refused
 * with 409 so that the pusher resynchronises.
 */


/* The request carries REPL_TOKEN (or none is set). */
static int
token_ok(const struct http_request *r)
{
	const char *v;
	size_t len;

	if (cfg.repl.t_len == 0)
		return 1;
	if ((v = http_header(r, "X-Kv-Repl-Token", &len)) == NULL)
		return 0;
	return token_equal(&cfg.repl, v, len);
}

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

static void
repl_state(struct http_request *r)
{
	struct store_stats st;
	char body[256];
	int n;

	store_stats(store, &st);
	n = snprintf(body, sizeof(body), "{\"role\":\"%s\",\"repl_id\":\"%s\","
	    "\"seq\":%llu,\"keys\":%llu,\"synced\":%s,\"node\":\"%s\"}\n",
	    role_name(), st.repl_id, (unsigned long long)st.last_seq,
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
 * Apply the records of body to s. Streaming (s is the store): a record at
 * or below *applied is skipped and the next must be *applied + 1. Loading
 * a full sync (s is sync_store, taken at sync_seq): a record newer than
 * sync_seq was written while the snapshot was read, and the stream replays
 * it from sync_seq + 1; it is stored as of sync_seq meanwhile (so readers
 * never miss the key), or skipped when sync_seq is 0 (nothing existed
 * then). Returns 0, or -1 with a reason.
 */
static int
apply_records(struct store *s, const char *body, size_t len,
    uint64_t *applied, const char **why)
{
	struct repl_record rec;
	uint64_t seq, dummy;
	ssize_t n;
	size_t off, ahead;
	int rc, k;

	/* ahead runs APPLY_AHEAD records in front, prefetching buckets. */
	for (ahead = 0, k = 0; k < APPLY_AHEAD; k++)
		ahead = prefetch_record(s, body, len, ahead);
	for (off = 0; off < len; off += n) {
		ahead = prefetch_record(s, body, len, ahead);
		if ((n = repl_decode(body + off, len - off, &rec)) <= 0) {
			*why = "malformed record";
			return -1;
		}
		if (rec.op == REPL_END)
			continue;
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
		rc = rec.op == REPL_PUT ? store_put(s, rec.key, rec.klen,
		    rec.val, rec.vlen, seq, &dummy) : store_del(s, rec.key,
		    rec.klen, seq, &dummy);
		if (rc == -1) {
			*why = strerror(errno);
			return -1;
		}
		if (s != sync_store) {
			*applied = seq;
			note_write(rec.key, rec.klen);
		}
	}
	return 0;
}

static void
repl_apply(struct http_request *r)
{
	struct store_stats st;
	char id[33];
	const char *why = NULL;
	uint64_t from, applied, pseq;

	store_stats(store, &st);
	if (query_id(r, "id", id) == -1 || query_u64(r, "from", &from) == -1) {
		reply_text(r->id, 400, "", "apply needs id and from");
		return;
	}
	if (query_u64(r, "primary_seq", &pseq) == 0)
		primary_seq = pseq;
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
	if (apply_records(store, r->body, r->body_len, &applied, &why) == -1) {
		reply_text(r->id, errno == ENOSPC ? 507 : 409, "",
		    "resync: %s after seq %llu", why,
		    (unsigned long long)applied);
		return;
	}
	reply_text(r->id, 200, "", "%llu", (unsigned long long)applied);
}

static void
sync_begin(struct http_request *r)
{
	char id[33], seed[33], err[256];
	uint64_t seq, keys = 0;
	size_t len;
	int has_seed = http_query(r, "seed", &len) != NULL;

	if (query_id(r, "id", id) == -1 || query_u64(r, "seq", &seq) == -1 ||
	    (has_seed && query_id(r, "seed", seed) == -1)) {
		reply_text(r->id, 400, "", "sync/begin needs id and seq (and "
		    "seed, if any, of 32 hex digits)");
		return;
	}
	/* How many keys are coming, when the pusher knows: buckets for
	 * them all at once, rather than a rehash at every doubling. */
	if (http_query(r, "keys", NULL) != NULL &&
	    query_u64(r, "keys", &keys) == -1) {
		reply_text(r->id, 400, "", "sync/begin: bad keys");
		return;
	}
	if (sync_store != NULL)
		store_discard(sync_store);
	/*
	 * The source's seed gives this copy its hash order, so a listing
	 * cursor from any node of the data set works on every other (pages
	 * through the read Service). A primary older than this sends none;
	 * a rolling update replaces it last, so that happens.
	 */
	if ((sync_store = store_create(store, id, has_seed ? seed : NULL, seq,
	    keys, STORE_FSYNC_NO, err, sizeof(err))) == NULL) {
		kv_log("error", "full sync: %s", err);
		reply_text(r->id, 507, "", "cannot start a full sync: %s", err);
		return;
	}
	memcpy(sync_id, id, sizeof(sync_id));
	sync_seq = seq;
	sync_token++;
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

static void
sync_data(struct http_request *r)
{
	const char *why = NULL;
	uint64_t applied = 0;

	if (!sync_current(r))
		return;
	if (apply_records(sync_store, r->body, r->body_len, &applied,
	    &why) == -1) {
		reply_text(r->id, 409, "", "resync: %s", why);
		return;
	}
	reply_text(r->id, 200, "", "ok");
}

static void
sync_end(struct http_request *r)
{
	struct store *adopted;
	struct store_stats st;
	char err[256];
	uint64_t seq;

	if (!sync_current(r))
		return;
	if (query_u64(r, "seq", &seq) == -1 || seq != sync_seq) {
		reply_text(r->id, 409, "", "resync: sync/end for another seq "
		    "than its begin");
		return;
	}
	http_unwatch(store_notify_fd(store));
	if ((adopted = store_adopt(store, sync_store, err,
	    sizeof(err))) == NULL) {
		if (errno == ESTALE)	/* renamed, not reopened: stop */
			die("full sync: the new store is in place but cannot "
			    "be opened (%s); restart to serve it", err);
		if (http_watch(store_notify_fd(store), on_durable, NULL) == -1)
			die("cannot watch the store's flush notifications:");
		kv_log("error", "full sync: cannot swap the new store in: %s",
		    err);
		sync_store = NULL;
		reply_text(r->id, 500, "", "resync: %s", err);
		return;
	}
	store = adopted;
	store_gen++;
	sync_store = NULL;
	if (http_watch(store_notify_fd(store), on_durable, NULL) == -1)
		die("cannot watch the store's flush notifications:");
	store_stats(store, &st);
	if (primary_seq < st.last_seq)
		primary_seq = st.last_seq;
	kv_log("info", "full sync done: %llu keys at seq %llu from %s",
	    (unsigned long long)st.keys, (unsigned long long)st.last_seq,
	    st.repl_id);
	if (cfg.role == ROLE_PRIMARY)
		repl_reset(st.repl_id, st.last_seq);
	reply_text(r->id, 200, "", "%llu", (unsigned long long)st.last_seq);
}

/* A snapshot being streamed: records of every key, then an END record. */
struct snapshot {
	uint64_t	 cursor;
	uint64_t	 seq;		/* the node's seq when it began */
	struct stage	 st;
};

/* Stages one key; says "enough" once the staging buffer is full. */
static int
snapshot_key(void *arg, const char *key, size_t klen,
    const struct store_value *v)
{
	struct snapshot *sn = arg;
	size_t need = repl_encoded_len(klen, v->len);

	/* Keep room for the END record after the last key. */
	need += repl_encoded_len(0, 0);
	if (stage_reserve(&sn->st, need, 0) == -1)
		return 1;
	sn->st.len += repl_encode(sn->st.buf + sn->st.len,
	    sn->st.cap - sn->st.len, REPL_PUT, v->seq, key, klen, v->data,
	    v->len);
	return sn->st.len >= SNAPSHOT_STAGE_BYTES;
}

/*
 * Stage the next keys: SNAPSHOT_STAGE_BYTES and one record at most, however
 * big the values. Many keys per scan, so that its prefetching overlaps the
 * cache misses of records read in hash order, not log order.
 */
static void
snapshot_refill(void *arg)
{
	struct snapshot *sn = arg;

	store_scan(store, &sn->cursor, SNAPSHOT_SCAN_KEYS, snapshot_key, sn);
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

	return stage_out(&sn->st, sn, snapshot_refill, buf, cap);
}

static void
snapshot(struct http_request *r)
{
	struct store_stats st;
	struct snapshot *sn;
	char extra[224], seed[33];

	if ((sn = calloc(1, sizeof(*sn))) == NULL ||
	    (sn->st.buf = malloc(SNAPSHOT_FIRST_BYTES)) == NULL) {
		free(sn);
		reply_text(r->id, 503, "", "out of memory");
		return;
	}
	sn->st.cap = SNAPSHOT_FIRST_BYTES;
	sn->st.gen = store_gen;
	store_stats(store, &st);
	sn->seq = st.last_seq;
	store_seed(store, seed);
	snprintf(extra, sizeof(extra), "X-Kv-Repl-Id: %s\r\nX-Kv-Seq: %llu\r\n"
	    "X-Kv-Seed: %s\r\nX-Kv-Keys: %llu\r\n", st.repl_id,
	    (unsigned long long)st.last_seq, seed, (unsigned long long)st.keys);
	kv_log("info", "snapshot of %llu keys at seq %llu requested",
	    (unsigned long long)st.keys, (unsigned long long)st.last_seq);
	if (http_stream(r->id, 200, "application/octet-stream", extra,
	    snapshot_produce, sn) == -1) {
		free(sn->st.buf);
		free(sn);
	}
}

static void
register_replica(struct http_request *r)
{
	char url[300];
	size_t i;

	if (cfg.role != ROLE_PRIMARY) {
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
	if (strncmp(url, "http://", 7) != 0 || repl_add_replica(url, 1) == -1) {
		reply_text(r->id, 400, "", "cannot feed %s: %s", url,
		    strncmp(url, "http://", 7) != 0 ? "not an http:// URL" :
		    strerror(errno));
		return;
	}
	reply_text(r->id, 200, "", "ok");
}

static void
route_repl(struct http_request *r)
{
	int get = is_read(r), post = method_is(r, "POST");

	if (!token_ok(r)) {
		reply_text(r->id, 401, "", "replication needs the right "
		    "X-Kv-Repl-Token");
		return;
	}
	if (post && cfg.role == ROLE_REPLICA &&
	    !path_is(r, "/repl/register"))
		primary_heard_ms = mono_ms();
	if (path_is(r, "/repl/state") && get)
		repl_state(r);
	else if (path_is(r, "/repl/snapshot") && get)
		snapshot(r);
	else if (path_is(r, "/repl/apply") && post) {
		if (cfg.role == ROLE_PRIMARY)
			reply_text(r->id, 409, "", "this node is the primary");
		else
			repl_apply(r);
	} else if (path_is(r, "/repl/sync/begin") && post)
		sync_begin(r);
	else if (path_is(r, "/repl/sync/data") && post)
		sync_data(r);
	else if (path_is(r, "/repl/sync/end") && post)
		sync_end(r);
	else if (path_is(r, "/repl/register") && post)
		register_replica(r);
	else
		reply_text(r->id, 404, "", "no such replication endpoint");
}

/*
 * GET /metrics: the Prometheus text format. http.c counts requests and
 * latency; the store, the replication state and readiness are added here.
 */
static size_t
label_value(char *out, const char *s)
{
	size_t o = 0;

	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"' || *s == '\n')
			out[o++] = '\\';
		out[o++] = *s == '\n' ? 'n' : *s;
	}
	out[o] = '\0';
	return o;
}

/* The primary's families per replica, in replica_value's order. */
static const struct {
	const char	*name, *type, *help;
	int		 ms;	/* a value in ms, shown in seconds */
} replica_families[] = {
	{ "kvstore_replica_up", "gauge", "1 while the replica streams.", 0 },
	{ "kvstore_replica_acked_seq", "gauge",
	    "Newest write the replica acknowledged.", 0 },
	{ "kvstore_replica_lag_writes", "gauge",
	    "Writes not yet acknowledged.", 0 },
	{ "kvstore_replica_lag_seconds", "gauge",
	    "Age of the oldest unacknowledged write.", 1 },
	{ "kvstore_replica_full_syncs_total", "counter", "Full resyncs.", 0 },
	{ "kvstore_replica_partial_syncs_total", "counter",
	    "Partial resyncs.", 0 }
};

/* Every state of repl.h's struct repl_peer. */
static const char *const link_states[] = {
	"connecting", "syncing", "streaming", "down"
};

/* Family f (replica_families) of p as text in out[32]. */
static const char *
replica_value(const struct repl_peer *p, size_t f, char *out)
{
	uint64_t v[] = { strcmp(p->state, "streaming") == 0, p->acked_seq,
	    p->lag_writes, p->lag_ms, p->full_syncs, p->partial_syncs };

	if (replica_families[f].ms)
		snprintf(out, 32, "%llu.%03llu", (unsigned long long)v[f] /
		    1000, (unsigned long long)v[f] % 1000);
	else
		snprintf(out, 32, "%llu", (unsigned long long)v[f]);
	return out;
}

static void
metrics(struct http_request *r)
{
	struct repl_peer peers[MAX_PEERS_SHOWN];
	struct store_stats st;
	char *b, url[2 * sizeof(peers[0].url) + 1], val[32];
	size_t o, n, i, f, cap = METRICS_BYTES;
	uint64_t now = mono_ms();

	if ((b = malloc(cap)) == NULL) {
		reply_text(r->id, 503, "", "out of memory");
		return;
	}
	o = http_metrics(b, cap);
	store_stats(store, &st);
#define EMIT(...) do {							\
	int n_ = snprintf(b + o, o < cap ? cap - o : 0, __VA_ARGS__);	\
	o += n_ > 0 ? (size_t)n_ : 0;					\
} while (0)
#define GAUGE(name, help, value) EMIT("# HELP " name " " help "\n"	\
	"# TYPE " name " gauge\n" name " %llu\n", (unsigned long long)(value))
#define COUNTER(name, help, value) EMIT("# HELP " name " " help "\n"	\
	"# TYPE " name " counter\n" name " %llu\n", (unsigned long long)(value))
	EMIT("# HELP kvstore_info The node's role and version.\n"
	    "# TYPE kvstore_info gauge\n"
	    "kvstore_info{role=\"%s\",version=\"%s\",repl_id=\"%s\"} 1\n",
	    role_name(), KVSTORE_VERSION, st.repl_id);
	GAUGE("kvstore_ready", "1 while /ready answers 200.",
	    not_ready(&st) == NULL);
	GAUGE("kvstore_disk_full", "1 while writes find the disk full.",
	    disk_full);
	GAUGE("kvstore_disk_failed", "1 after a failed flush: no writes "
	    "until a restart.", store_error(store) != 0);
	GAUGE("kvstore_keys", "Keys in the store.", st.keys);
	GAUGE("kvstore_data_bytes", "Key and value bytes of live records.",
	    st.live_bytes);
	GAUGE("kvstore_file_bytes", "Size of the store file(s) on disk.",
	    st.file_bytes);
	GAUGE("kvstore_seq", "Sequence number of the newest write.",
	    st.last_seq);
	GAUGE("kvstore_durable_seq", "Newest write known to be on disk.",
	    st.durable_seq);
	COUNTER("kvstore_fsyncs_total", "fdatasync calls on the store.",
	    st.fsyncs);
	COUNTER("kvstore_compactions_total", "Compactions of the store file.",
	    st.compactions);
	if (cfg.role == ROLE_REPLICA) {
		GAUGE("kvstore_primary_up", "1 if the primary was heard in the "
		    "last 3 s.", primary_heard_ms != 0 &&
		    now - primary_heard_ms < PRIMARY_UP_MS);
		GAUGE("kvstore_primary_seq", "The primary's sequence as last "
		    "told.", primary_seq);
		EMIT("# HELP kvstore_primary_last_heard_seconds Since the "
		    "primary was last heard (-1: never).\n# TYPE "
		    "kvstore_primary_last_heard_seconds gauge\n"
		    "kvstore_primary_last_heard_seconds %.3f\n",
		    primary_heard_ms == 0 ? -1.0 :
		    (double)(now - primary_heard_ms) / 1000);
	}
	n = cfg.role == ROLE_PRIMARY ? repl_peers(peers, MAX_PEERS_SHOWN) : 0;
	if (n > MAX_PEERS_SHOWN)
		n = MAX_PEERS_SHOWN;
	/* The format wants each family in one group: family by family. */
	for (f = 0; n > 0 && f < sizeof(replica_families) /
	    sizeof(replica_families[0]); f++) {
		EMIT("# HELP %s %s\n# TYPE %s %s\n", replica_families[f].name,
		    replica_families[f].help, replica_families[f].name,
		    replica_families[f].type);
		for (i = 0; i < n; i++) {
			label_value(url, peers[i].url);
			EMIT("%s{replica=\"%s\"} %s\n",
			    replica_families[f].name, url,
			    replica_value(&peers[i], f, val));
		}
	}
	if (n > 0)
		EMIT("# HELP kvstore_replica_state The replica's link: 1 for "
		    "the state it is in.\n"
		    "# TYPE kvstore_replica_state gauge\n");
	for (i = 0; i < n; i++) {
		label_value(url, peers[i].url);
		for (f = 0; f < sizeof(link_states) / sizeof(link_states[0]);
		    f++)
			EMIT("kvstore_replica_state{replica=\"%s\","
			    "state=\"%s\"} %d\n", url, link_states[f],
			    strcmp(peers[i].state, link_states[f]) == 0);
	}
#undef GAUGE
#undef COUNTER
#undef EMIT
	if (o >= cap)
		o = cap;	/* cut at a line end below */
	while (o > 0 && b[o - 1] != '\n')
		o--;
	http_reply(r->id, 200, "text/plain; version=0.0.4; charset=utf-8", "",
	    b, o);
	free(b);
}

/* ---- Web console ---- */

/*
 * GET / and /ui: the page; /ui/NAME: its script, style and icon. Each load
 * revalidates (no-cache) against an ETag from the build, so a page never
 * runs with the script of another version.
 */
static void
route_ui(struct http_request *r)
{
	const struct ui_file *f;
	const char *h;
	char extra[512];
	size_t len;

	f = r->path_len <= 3 ? ui_file(NULL, 0) :
	    ui_file(r->path + 4, r->path_len - 4);
	if (f == NULL) {
		reply_text(r->id, 404, "", "no such console file: %.*s",
		    (int)(r->path_len > 200 ? 200 : r->path_len), r->path);
		return;
	}
	if (!is_read(r)) {
		method_not_allowed(r, "GET, HEAD");
		return;
	}
	snprintf(extra, sizeof(extra), "ETag: \"%lu\"\r\n"
	    "Cache-Control: no-cache\r\nContent-Security-Policy: %s\r\n"
	    "X-Content-Type-Options: nosniff\r\n"
	    "Referrer-Policy: no-referrer\r\n", f->etag, UI_CSP);
	if ((h = http_header(r, "If-None-Match", &len)) != NULL &&
	    etag_listed(h, len, 1, f->etag, 1))
		http_reply(r->id, 304, NULL, extra, NULL, 0);
	else
		http_reply(r->id, 200, f->type, extra, f->data, f->len);
}

/* ---- Routing ---- */

static void
handle(struct http_request *r)
{
	if (r->path_len >= 6 && memcmp(r->path, "/repl/", 6) == 0) {
		route_repl(r);
		return;
	}
	/* Before a read can wait or a watch park: they cost memory. */
	if ((path_is(r, "/kv") || (r->path_len >= 4 &&
	    memcmp(r->path, "/kv/", 4) == 0)) && !authorized(r))
		return;
	if (is_read(r) && r->path_len >= 3 && memcmp(r->path, "/kv", 3) == 0 &&
	    wait_min_seq(r))
		return;
	if (r->path_len >= 4 && memcmp(r->path, "/kv/", 4) == 0) {
		route_kv(r);
		return;
	}
	if (path_is(r, "/kv")) {
		if (is_read(r))
			list_keys(r);
		else
			method_not_allowed(r, "GET, HEAD");
		return;
	}
	if (path_is(r, "/") || path_is(r, "/ui") ||
	    (r->path_len >= 4 && memcmp(r->path, "/ui/", 4) == 0)) {
		route_ui(r);
		return;
	}
	if (!path_is(r, "/health") && !path_is(r, "/ready") &&
	    !path_is(r, "/role") && !path_is(r, "/metrics")) {
		reply_text(r->id, 404, "", "no such endpoint: %.*s "
		    "(try /kv/{key}, /kv/, /health, /ready, /role, /metrics, "
		    "or / for the web console)",
		    (int)(r->path_len > 200 ? 200 : r->path_len), r->path);
		return;
	}
	if (!is_read(r))
		method_not_allowed(r, "GET, HEAD");
	else if (path_is(r, "/health"))
		reply_text(r->id, 200, "", "ok");
	else if (path_is(r, "/ready"))
		ready(r);
	else if (path_is(r, "/metrics"))
		metrics(r);
	else
		reply_text(r->id, 200, "", "%s", role_name());
}

static void
tick(void)
{
	struct store_stats st;

	store_step(store);
	flush_pending();
	run_waiters();
	repl_flush();
	if (recovery_pending && !repl_recovering()) {
		recovery_pending = 0;
		store_stats(store, &st);
		if (st.keys == 0 && st.last_seq == 0) {
			started_empty = 1;
			kv_log("warn", "STARTING EMPTY: this primary's store is "
			    "new and no replica with data answered within "
			    "%d ms; if replicas held older data, it was not "
			    "recovered", cfg.recover_wait_ms);
		}
	}
}

/* Replication batches may be bigger than one value; client bodies not. */
static size_t
body_limit(const struct http_request *r)
{
	if (r->path_len >= 6 && memcmp(r->path, "/repl/", 6) == 0)
		return REPL_BATCH_BYTES > cfg.max_value + 2048 ?
		    REPL_BATCH_BYTES : cfg.max_value + 2048;
	return cfg.max_value;
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
	rc.token = cfg.repl.t_buf;
	rc.self_url = cfg.self_url;
	rc.advertise_url = cfg.advertise_url;
	rc.primary_url = cfg.primary_url;
	rc.backlog_bytes = cfg.backlog_bytes;
	rc.batch_bytes = REPL_BATCH_BYTES;
	rc.timeout_ms = cfg.repl_timeout_ms;
	rc.recover_wait_ms = cfg.recover_wait_ms;
	rc.on_ack = http_wake;
	store_stats(store, &st);
	if (cfg.role == ROLE_PRIMARY && st.recovered) {
		/*
		 * Writes pushed before they reached this disk may be on
		 * replicas and gone here: a new id makes every replica
		 * full-sync instead of resuming on a different history
		 * (Redis does the same after an unclean restart).
		 */
		if (store_new_repl_id(store) == -1)
			die("cannot write a new replication id:");
		store_stats(store, &st);
		kv_log("warn", "unclean shutdown: new replication id %s; "
		    "replicas will full-sync", st.repl_id);
	}
	if (repl_init(&rc, st.repl_id, st.last_seq) == -1)
		die("cannot start replication:");
	if (cfg.role == ROLE_PRIMARY) {
		if (st.keys == 0 && st.last_seq == 0 && !st.synced) {
			kv_log("info", "the store is new: asking replicas for "
			    "an existing data set for up to %d ms before "
			    "taking writes", cfg.recover_wait_ms);
			if (repl_recover() == -1)
				die("cannot start recovery:");
			recovery_pending = 1;
		}
		each_url(cfg.replica_urls, add_replica_url);
	} else if (*cfg.primary_url != '\0' && repl_announce() == -1)
		die("cannot start announcing to %s:", cfg.primary_url);
}

static void
on_durable(void *arg)
{
	(void)arg;
	/*
	 * Drain the pipe even with no write waiting (FSYNC=no, everysec):
	 * left readable, it made poll() return at once, forever.
	 */
	(void)store_durable_seq(store);
	flush_pending();
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
	prepare_data_dir(cfg.data_dir);
	if (snprintf(path, sizeof(path), "%s/kvstore.db", cfg.data_dir) >=
	    (int)sizeof(path))
		die("DATA_DIR %s: path too long", cfg.data_dir);

	memset(&hc, 0, sizeof(hc));
	hc.port = cfg.port;
	hc.max_conns = cfg.max_conns;
	hc.max_body = cfg.max_value;
	hc.header_timeout_ms = cfg.header_timeout_ms;
	hc.body_timeout_ms = cfg.idle_timeout_ms;
	hc.idle_timeout_ms = cfg.idle_timeout_ms;
	hc.drain_timeout_ms = 5000;
	hc.handler = handle;
	hc.tick = tick;
	hc.body_limit = body_limit;
	/*
	 * Listen before opening the store: store_open marks the file open
	 * (unclean), so dying after it on a taken port would cost the next
	 * start a recovery and a primary a new replication id.
	 */
	if (http_init(&hc) == -1)
		die("cannot listen on port %s:", cfg.port);
	if ((store = store_open(path, cfg.fsync, err, sizeof(err))) == NULL)
		die("cannot open store %s: %s", path, err);
	if (http_watch(store_notify_fd(store), on_durable, NULL) == -1)
		die("cannot watch the store's flush notifications:");
	start_replication();

	store_stats(store, &st);
	kv_log("info", "kvstore %s starting: role=%s port=%s data=%s keys=%llu "
	    "seq=%llu fsync=%s max_value=%zu auth=%s repl_auth=%s%s",
	    KVSTORE_VERSION, role_name(), cfg.port, path,
	    (unsigned long long)st.keys, (unsigned long long)st.last_seq,
	    fsync_name(cfg.fsync), cfg.max_value, cfg.auth.t_len == 0 ? "off" :
	    cfg.read_auth ? "reads,writes" : "writes",
	    cfg.repl.t_len == 0 ? "off" : "on", st.recovered ? " (recovered "
	    "after an unclean shutdown)" : "");

	if (http_run() == -1)
		kv_log("error", "event loop failed: %s", strerror(errno));
	kv_log("info", "shutting down: delivering pending writes to replicas");
	repl_shutdown(REPL_DRAIN_MS);
	if (sync_store != NULL)
		store_discard(sync_store);
	kv_log("info", "flushing the store");
	flush_pending();
	if (store_close(store) == -1)
		die("closing the store failed; the next start will recover:");
	kv_log("info", "stopped cleanly");
	return 0;
}

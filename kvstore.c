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
 * A key is the rest of the path after /kv/, percent-decoded once: 1 to
 * MAX_KEY_BYTES bytes, any byte but NUL.
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
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "store.h"

#define KVSTORE_VERSION	"0.1.0"
#define MAX_KEY_BYTES	1024		/* the API's documented key limit */
#define LIST_BATCH	256		/* keys fetched per listing step */
#define JSON_KEY_MAX	(MAX_KEY_BYTES * 6 + 3)	/* every byte as \uXXXX */

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
};

/* A write under FSYNC=always, answered once the flusher passes its seq. */
struct pending {
	uint64_t	 id;
	uint64_t	 seq;
	int		 status;
	const char	*msg;
	struct pending	*next;
};

/* The state of one streamed listing. */
struct listing {
	uint64_t	 cursor;
	int		 opened;	/* '[' written */
	int		 nkeys;		/* keys written, for the commas */
	int		 finished;	/* ']' written */
	char		*buf;		/* JSON not yet handed to http.c */
	size_t		 len;
	size_t		 off;
};

static void	die(const char *fmt, ...);
static void	load_config(void);
static void	handle(struct http_request *r);
static void	tick(void);

static struct config	 cfg;
static struct store	*store;
static struct pending	*pending_head, *pending_tail;
static volatile sig_atomic_t stopping;

static const char *const log_levels[] = { "debug", "info", "warn", "error" };

/* ---- Logging and fatal errors ---- */

static int
level_index(const char *level)
{
	size_t i;

	for (i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++)
		if (strcmp(level, log_levels[i]) == 0)
			return (int)i;
	return -1;
}

/* One line per event on stderr: UTC time with milliseconds, level, text.
 * Written with one write(2) so lines from other threads never interleave. */
static void
vlog(const char *level, const char *fmt, va_list ap)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;
	int n, m;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line),
	    "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, level);
	m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	if (m < 0)
		m = 0;
	n += (size_t)m < sizeof(line) - n - 1 ? m : (int)(sizeof(line) - n - 2);
	line[n++] = '\n';
	(void)write(STDERR_FILENO, line, n);
}

void
kv_log(const char *level, const char *fmt, ...)
{
	va_list ap;
	int i;

	i = level_index(level);
	if (i >= 0 && i < cfg.log_level)
		return;
	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

/* Log and exit 1; a trailing ':' in fmt appends strerror(errno). */
static void
die(const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	size_t n;
	int saved = errno;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n = strlen(msg);
	if (n > 0 && msg[n - 1] == ':')
		snprintf(msg + n, sizeof(msg) - n, " %s", strerror(saved));
	kv_log("error", "%s", msg);
	exit(1);
}

/* ---- Configuration ---- */

static const char *
env(const char *name, const char *dflt)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : dflt;
}

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

static void
load_config(void)
{
	const char *v;

	v = env("LOG_LEVEL", "info");
	if ((cfg.log_level = level_index(v)) < 0) {
		cfg.log_level = 1;
		die("LOG_LEVEL=%s: expected debug, info, warn or error", v);
	}
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

/* ---- JSON ---- */

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if invalid. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	uint32_t cp;
	size_t len, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/*
 * Write s[0..n) as a JSON string (with quotes) to out, which has room for
 * n * 6 + 2 bytes. Valid UTF-8 passes through; a byte that is not part of
 * valid UTF-8 becomes \udcXX (XX the byte), Python's "surrogateescape", so
 * every key lists unambiguously whatever bytes it holds.
 */
static size_t
json_string(char *out, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, o = 0, l;

	out[o++] = '"';
	while (i < n) {
		if (u[i] == '"' || u[i] == '\\') {
			out[o++] = '\\';
			out[o++] = u[i++];
		} else if (u[i] < 0x20 || u[i] == 0x7f) {
			o += sprintf(out + o, "\\u%04x", u[i++]);
		} else if ((l = utf8_len(u + i, n - i)) > 0) {
			memcpy(out + o, u + i, l);
			o += l, i += l;
		} else {
			memcpy(out + o, "\\udc", 4);
			out[o + 4] = hex[u[i] >> 4];
			out[o + 5] = hex[u[i] & 15];
			o += 6, i++;
		}
	}
	out[o++] = '"';
	return o;
}

/* ---- Listing ---- */

static void
list_key(void *arg, const char *key, size_t klen, const struct store_value *v)
{
	struct listing *l = arg;

	(void)v;
	if (l->nkeys++ > 0)
		l->buf[l->len++] = ',';
	l->len += json_string(l->buf + l->len, key, klen);
}

/*
 * Stream the listing: fetch LIST_BATCH keys at a time into l->buf, hand
 * it out as http.c asks. The cursor walks in hash order, so a key present
 * for the whole listing appears exactly once even while writes go on.
 */
static ssize_t
list_produce(void *arg, char *buf, size_t cap)
{
	struct listing *l = arg;
	size_t n;

	if (buf == NULL || (l->off == l->len && l->finished)) {
		free(l->buf);
		free(l);
		return 0;
	}
	if (l->off == l->len) {
		l->off = l->len = 0;
		if (!l->opened) {
			l->buf[l->len++] = '[';
			l->opened = 1;
		}
		store_scan(store, &l->cursor, LIST_BATCH, list_key, l);
		if (l->cursor == UINT64_MAX) {
			memcpy(l->buf + l->len, "]\n", 2);
			l->len += 2;
			l->finished = 1;
		}
	}
	n = l->len - l->off < cap ? l->len - l->off : cap;
	memcpy(buf, l->buf + l->off, n);
	l->off += n;
	return (ssize_t)n;
}

static void
list_keys(struct http_request *r)
{
	struct listing *l;

	if ((l = calloc(1, sizeof(*l))) == NULL ||
	    (l->buf = malloc(LIST_BATCH * (JSON_KEY_MAX + 1) + 8)) == NULL) {
		free(l);
		reply_text(r->id, 503, "", "out of memory");
		return;
	}
	http_stream(r->id, 200, "application/json", "", list_produce, l);
}

/* ---- Keys ---- */

/*
 * Decode the key from the path after "/kv/" into key[MAX_KEY_BYTES]. On a
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
		    MAX_KEY_BYTES);
		return -1;
	}
	if ((n = http_unescape(raw, rawlen, tmp)) < 0) {
		reply_text(r->id, 400, "", "bad key: invalid percent-escape "
		    "or %%00 in the path");
		return -1;
	}
	if (n > MAX_KEY_BYTES) {
		reply_text(r->id, 414, "", "key is %zd bytes; the limit is %d",
		    n, MAX_KEY_BYTES);
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

static void
reply_store_error(struct http_request *r, const char *op)
{
	int saved = errno;

	kv_log("error", "%s failed: %s", op, strerror(saved));
	if (saved == ENOSPC || saved == EDQUOT)
		reply_text(r->id, 507, "", "%s failed: the disk is full; "
		    "nothing was changed", op);
	else
		reply_text(r->id, 500, "", "%s failed: %s; nothing was "
		    "changed", op, strerror(saved));
}

/*
 * Answer a write: at once, or under FSYNC=always once the flusher has put
 * seq on disk, queued in seq order (tick and the notify fd drain it).
 */
static void
ack_write(struct http_request *r, int status, const char *msg, uint64_t seq)
{
	struct pending *p;

	if (cfg.fsync != STORE_FSYNC_ALWAYS || store_durable_seq(store) >= seq) {
		reply_text(r->id, status, "", "%s", msg);
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

	if (pending_head == NULL)
		return;
	durable = store_durable_seq(store);
	while ((p = pending_head) != NULL && p->seq <= durable) {
		reply_text(p->id, p->status, "", "%s", p->msg);
		pending_head = p->next;
		free(p);
	}
	if (pending_head == NULL)
		pending_tail = NULL;
}

static void
get_key(struct http_request *r, const char *key, size_t klen)
{
	struct store_value v;

	if (store_get(store, key, klen, &v) == 0) {
		reply_text(r->id, 404, "", "key not found");
		return;
	}
	http_reply(r->id, 200, "application/octet-stream", "", v.data, v.len);
}

static void
put_key(struct http_request *r, const char *key, size_t klen)
{
	uint64_t seq;
	int rc;

	if ((rc = store_put(store, key, klen, r->body, r->body_len, 0,
	    &seq)) == -1) {
		reply_store_error(r, "write");
		return;
	}
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

	if ((rc = store_del(store, key, klen, 0, &seq)) == -1) {
		reply_store_error(r, "delete");
		return;
	}
	if (rc == 0) {
		reply_text(r->id, 404, "", "key not found");
		return;
	}
	ack_write(r, 200, "deleted", seq);
}

static void
route_kv(struct http_request *r)
{
	char key[MAX_KEY_BYTES];
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
	else if (method_is(r, "PUT"))
		put_key(r, key, klen);
	else
		delete_key(r, key, klen);
}

/* ---- Status endpoints ---- */

static const char *
role_name(void)
{
	return cfg.role == ROLE_PRIMARY ? "primary" : "replica";
}

static void
ready(struct http_request *r)
{
	struct store_stats st;
	char body[512];
	int n;

	store_stats(store, &st);
	n = snprintf(body, sizeof(body), "{\"status\":\"%s\",\"role\":\"%s\","
	    "\"keys\":%llu,\"seq\":%llu,\"durable_seq\":%llu,"
	    "\"data_bytes\":%llu,\"file_bytes\":%llu,\"fsync\":\"%s\","
	    "\"connections\":%d,\"repl_id\":\"%s\"}\n",
	    stopping ? "stopping" : "ready", role_name(),
	    (unsigned long long)st.keys, (unsigned long long)st.last_seq,
	    (unsigned long long)st.durable_seq,
	    (unsigned long long)st.live_bytes,
	    (unsigned long long)st.file_bytes, fsync_name(cfg.fsync),
	    http_conns(), st.repl_id);
	http_reply(r->id, stopping ? 503 : 200, "application/json", "", body,
	    n);
}

/* ---- Routing ---- */

static void
handle(struct http_request *r)
{
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
	if (!path_is(r, "/health") && !path_is(r, "/ready") &&
	    !path_is(r, "/role")) {
		reply_text(r->id, 404, "", "no such endpoint: %.*s "
		    "(try /kv/{key}, /kv/, /health, /ready, /role)",
		    (int)(r->path_len > 200 ? 200 : r->path_len), r->path);
		return;
	}
	if (!is_read(r))
		method_not_allowed(r, "GET, HEAD");
	else if (path_is(r, "/health"))
		reply_text(r->id, 200, "", "ok");
	else if (path_is(r, "/ready"))
		ready(r);
	else
		reply_text(r->id, 200, "", "%s", role_name());
}

static void
tick(void)
{
	store_step(store);
	flush_pending();
}

static void
on_durable(void *arg)
{
	(void)arg;
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

	if (argc > 1 && (strcmp(argv[1], "--version") == 0 ||
	    strcmp(argv[1], "version") == 0)) {
		printf("kvstore %s\n", KVSTORE_VERSION);
		return 0;
	}
	if (argc > 1) {
		fprintf(stderr, "usage: kvstore (configured by environment "
		    "variables; see README.md)\n");
		return 2;
	}
	load_config();
	install_signals();
	raise_fd_limit();
	prepare_data_dir(cfg.data_dir);
	if (snprintf(path, sizeof(path), "%s/kvstore.db", cfg.data_dir) >=
	    (int)sizeof(path))
		die("DATA_DIR %s: path too long", cfg.data_dir);
	if ((store = store_open(path, cfg.fsync, err, sizeof(err))) == NULL)
		die("cannot open store %s: %s", path, err);

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
	if (http_init(&hc) == -1)
		die("cannot listen on port %s:", cfg.port);
	if (http_watch(store_notify_fd(store), on_durable, NULL) == -1)
		die("cannot watch the store's flush notifications:");

	store_stats(store, &st);
	kv_log("info", "kvstore %s starting: role=%s port=%s data=%s keys=%llu "
	    "seq=%llu fsync=%s max_value=%zu%s", KVSTORE_VERSION, role_name(),
	    cfg.port, path, (unsigned long long)st.keys,
	    (unsigned long long)st.last_seq, fsync_name(cfg.fsync),
	    cfg.max_value, st.recovered ? " (recovered after an unclean "
	    "shutdown)" : "");

	if (http_run() == -1)
		kv_log("error", "event loop failed: %s", strerror(errno));
	kv_log("info", "shutting down: flushing the store");
	flush_pending();
	if (store_close(store) == -1)
		die("closing the store failed; the next start will recover:");
	kv_log("info", "stopped cleanly");
	return 0;
}

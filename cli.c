/*
 * cli.c: the command-line client. `kvstore get|put|del|ls|txn|watch|health|
 * status` talk to KV_URL, so that a scratch image (no curl, no shell) can
 * check itself: the HEALTHCHECK and the chart's helm test run these, and
 * `volume-permissions` is the chart's init container. `check` and
 * `salvage` work on a stopped server's store file (store_check); `backup`
 * takes GET /backup into a file, which `check` verifies and `restore`
 * turns into a stopped server's store (store_backup.c). Exit
 * codes are a contract for scripts: 0 ok, 1 not found (check: damaged;
 * txn: a compare failed), 2 usage, 3 server, network or file error.
 */

#define _GNU_SOURCE		/* vfork(2) and strchrnul, which musl and glibc
				   both have */

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "cm.h"
#include "fmt.h"
#include "repl.h"
#include "store.h"
#include "util.h"

#define CLI_TIMEOUT_MS	5000
#define CLI_RETRY_MS	200		/* between tries of get --wait */
#define CLI_WATCH_S	30		/* one watch request of kvstore watch */
#define CLI_EVENTS_MS	30000		/* three of the server's pings */
#define CLI_EVENTS_TRIES 5		/* connections failed in a row */
#define REPLICAS_CLI_TIMEOUT_MS 605000	/* REPLICAS_WAIT_MS's maximum + 5 s */
#define CLI_MAX_BODY	((size_t)INT32_MAX)	/* values are below 2^31 */
#define LOCK_TTL	"15s"		/* kvstore lock's default --ttl */
#define LOCK_WAIT_S	60		/* and --wait */
#define LOCK_POLL_MS	50		/* the held command is checked */

enum { EXIT_OK, EXIT_NOT_FOUND, EXIT_USAGE, EXIT_SERVER };
#define EXIT_DAMAGED	EXIT_NOT_FOUND	/* kvstore check found damage */
#define STORE_FILE	"kvstore.db"	/* in DATA_DIR, as kvstore.c names it */
#define CHECK_KEY_SHOWN	64		/* key bytes a report prints */

/*
 * The usage text, ui/usage.txt, packed at build time by ui/pack into
 * ui/usage.h as the web console is (cm.c): half its 1 KB of binary.
 */
#include "ui/usage.h"

static int	cli_lock(int, char **);

static volatile int exec_errno;	/* lock's child could not run its command */

/* stdout and stderr, buffered as stdio's are; cli_main sets them up. */
static struct out sout, serr;

/* The usage text into o, unpacked the first time. */
static void
put_usage(struct out *o)
{
	static char text[UI_USAGE_LEN];
	static int unpacked;

	if (!unpacked && cm_unpack(ui_usage, sizeof(ui_usage), text,
	    sizeof(text)) == -1) {
		fmt_out(o, "kvstore: usage: %s\n", errstr());
		return;
	}
	unpacked = 1;
	out_put(o, text, sizeof(text));
}

static int
usage(void)
{
	put_usage(&serr);
	return EXIT_USAGE;
}

/* exit, with what stdout holds written first. */
static void
quit(int code)
{
	(void)out_flush(&sout);
	exit(code);
}

static const char *url_flag;	/* backup --url, instead of KV_URL */

/* KV_URL without a trailing slash, checked. */
static const char *
cli_url(void)
{
	static char url[REPL_URL_MAX];
	const char *v = url_flag != NULL ? url_flag :
	    env("KV_URL", "http://localhost:8080");
	size_t n = strlen(v);

	while (n > 0 && v[n - 1] == '/')
		n--;
	if (strncmp(v, "http://", 7) != 0 || n <= 7 || n >= sizeof(url)) {
		fmt_out(&serr, "kvstore: KV_URL=%s: expected http://host:port\n",
		    v);
		quit(EXIT_USAGE);
	}
	memcpy(url, v, n);
	url[n] = '\0';
	return url;
}

/*
 * "/kv/" and key percent-encoded (every byte but the unreserved ones),
 * then "?ttl=" and ttl unless it is NULL.
 */
static char *
key_target(const char *key, const char *ttl)
{
	static const char hex[] = "0123456789ABCDEF";
	char *t, *o;
	const unsigned char *k;

	if ((t = malloc(4 + strlen(key) * 3 + (ttl != NULL ? strlen(ttl) +
	    5 : 0) + 1)) == NULL)
		return NULL;
	o = t + fmt_str(t, "/kv/");
	for (k = (const unsigned char *)key; *k != '\0'; k++) {
		if ((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') ||
		    (*k >= '0' && *k <= '9') || strchr("-._~", *k) != NULL) {
			*o++ = *k;
			continue;
		}
		*o++ = '%';
		*o++ = hex[*k >> 4];
		*o++ = hex[*k & 15];
	}
	*o = '\0';
	if (ttl != NULL)
		fmt_str(o, "?ttl=%s", ttl);
	return t;
}

/*
 * The Authorization header line from AUTH_TOKEN or AUTH_TOKEN_FILE, as the
 * server reads them, or "" when neither is set; exits 2 on a bad one.
 */
static const char *
cli_auth(void)
{
	static char line[MAX_TOKEN_BYTES + 32];
	static int loaded;
	struct token t;
	char why[512];

	if (loaded)
		return line;
	if (token_load(&t, "AUTH_TOKEN", why, sizeof(why)) == -1) {
		fmt_out(&serr, "kvstore: %s\n", why);
		quit(EXIT_USAGE);
	}
	if (t.t_len > 0)
		fmt_buf(line, sizeof(line), "Authorization: Bearer %s\r\n",
		    t.t_buf);
	loaded = 1;
	return line;
}

/* The decimal value of the last answer's field name, 0 if none. */
static uint64_t
header_u64(const struct client *c, const char *name)
{
	const char *v;
	size_t len, i;
	uint64_t n = 0;

	if ((v = client_header(c, name, &len)) == NULL)
		return 0;
	for (i = 0; i < len && v[i] >= '0' && v[i] <= '9'; i++)
		n = n * 10 + (uint64_t)(v[i] - '0');
	return i == len ? n : 0;
}

/*
 * One request with extra header lines and a timeout; returns the status
 * (or -1, having said why on stderr unless quiet) with the body in *out
 * for the caller to free. *index gets X-Kv-Index (a write's X-Kv-Seq)
 * when index is not NULL.
 * HTTP/1.0, one connection per request: a CLI run makes one or a few.
 */
static int
cli_request(const char *method, const char *target, const char *extra,
    const char *body, size_t blen, int timeout_ms, char **out,
    size_t *outlen, uint64_t *index, int quiet)
{
	struct client_request rq;
	struct client_response rs;
	struct client *c;
	char head[MAX_TOKEN_BYTES + 128];
	const char *url = cli_url(), *why = NULL;
	int status = -1;

	*out = NULL;
	*outlen = 0;
	if ((size_t)fmt_buf(head, sizeof(head), "%s%s", cli_auth(), extra) >=
	    sizeof(head)) {
		fmt_out(&serr, "kvstore: %s %s: header lines too long\n",
		    method, target);
		return -1;
	}
	if ((c = client_new(url, timeout_ms, NULL, NULL)) == NULL) {
		if (!quiet)
			fmt_out(&serr, "kvstore: %s %s: %s: %s\n", method,
			    target, url, errstr());
		return -1;
	}
	memset(&rq, 0, sizeof(rq));
	rq.method = method;
	rq.target = target;
	rq.extra = head;
	rq.body = body;
	rq.body_len = blen;
	rq.http10 = 1;
	if (client_call(c, &rq, &rs, CLI_MAX_BODY) == -1)
		why = client_error(c);
	else if ((*out = malloc(rs.body_len + 1)) == NULL)
		why = "out of memory";
	else {
		memcpy(*out, rs.body, rs.body_len + 1);
		*outlen = rs.body_len;
		status = rs.status;
		if (index != NULL)
			*index = header_u64(c, strcmp(method, "GET") == 0 ?
			    "X-Kv-Index" : "X-Kv-Seq");
	}
	if (why != NULL && !quiet)
		fmt_out(&serr, "kvstore: %s %s: %s: %s\n", method, target,
		    url, why);
	client_free(c);
	return status;
}

static int
cli_call(const char *method, const char *target, const char *body,
    size_t blen, char **out, size_t *outlen, int quiet)
{
	return cli_request(method, target, "", body, blen, CLI_TIMEOUT_MS,
	    out, outlen, NULL, quiet);
}

/*
 * Write server bytes s[0..n) where a person reads them (stderr, or stdout
 * on a terminal): as util.c's kv_log does, a byte outside printable ASCII
 * becomes \xNN, so an answer can carry no terminal escape. With lines, LF
 * and HT stay as they are. Values (get, watch) are data, written raw.
 */
static void
put_text(struct out *o, const char *s, size_t n, int lines)
{
	unsigned char c;
	size_t i;

	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if ((c >= 0x20 && c < 0x7f) || (lines && (c == '\n' ||
		    c == '\t')))
			out_put(o, s + i, 1);
		else
			fmt_out(o, "\\x%02x", c);
	}
}

/* Server text on stdout: escaped for a terminal, raw for a pipe. */
static void
put_answer(const char *s, size_t n)
{
	if (out_tty(STDOUT_FILENO))
		put_text(&sout, s, n, 1);
	else
		out_put(&sout, s, n);
}

/* Say what the server answered, for an unexpected status. */
static int
cli_fail(const char *method, const char *target, int status, const char *body)
{
	size_t n;

	if (status == -1)
		return EXIT_SERVER;
	fmt_out(&serr, "kvstore: %s %s: %d ", method, target, status);
	for (n = 0; body[n] != '\0' && body[n] != '\n'; n++)
		;
	put_text(&serr, body, n, 0);
	out_put(&serr, "\n", 1);
	return EXIT_SERVER;
}

static int
cli_get(int argc, char **argv)
{
	const char *expect = NULL, *key;
	char *target, *out = NULL;
	const char *end;
	size_t len = 0;
	uint64_t wait_s = 0;
	uint64_t deadline;
	int status, i, rc, match;

	for (i = 2; i < argc - 1; i += 2) {
		if (strcmp(argv[i], "--wait") == 0) {
			end = parse_dec(argv[i + 1], 86400, &wait_s);
			if (end == NULL || *end != '\0')
				return usage();
		} else if (strcmp(argv[i], "--expect") == 0)
			expect = argv[i + 1];
		else
			return usage();
	}
	if (i != argc - 1)
		return usage();
	key = argv[i];
	if ((target = key_target(key, NULL)) == NULL)
		return EXIT_SERVER;
	deadline = mono_ms() + wait_s * 1000;
	for (;;) {
		free(out);
		out = NULL;
		status = cli_call("GET", target, NULL, 0, &out, &len,
		    mono_ms() < deadline);
		match = status == 200 && (expect == NULL ||
		    (len == strlen(expect) && memcmp(out, expect, len) == 0));
		if (match || mono_ms() >= deadline)
			break;
		/* A nap: nanosleep would link 150 bytes more than poll. */
		(void)poll(NULL, 0, CLI_RETRY_MS);
	}
	if (match && expect == NULL) {
		out_put(&sout, out, len);	/* o_err: a write failed */
		rc = sout.o_err ? EXIT_SERVER : EXIT_OK;
	} else if (match)
		rc = EXIT_OK;
	else if (status == 200) {
		fmt_out(&serr, "kvstore: %s is \"", key);
		put_text(&serr, out, len > 80 ? 80 : len, 0);
		fmt_out(&serr, "\", not \"%s\"\n", expect);
		rc = EXIT_NOT_FOUND;
	} else if (status == 404) {
		fmt_out(&serr, "kvstore: %s: not found\n", key);
		rc = EXIT_NOT_FOUND;
	} else
		rc = cli_fail("GET", target, status, out);
	free(out);
	free(target);
	return rc;
}

/* All of stdin, for put without a value. */
static char *
read_stdin(size_t *len)
{
	char *buf = NULL, *p;
	size_t cap = 0;
	ssize_t n;

	*len = 0;
	do {
		cap = cap == 0 ? 65536 : cap * 2;
		if ((p = resize(buf, *len, cap)) == NULL ||
		    (n = read_full(STDIN_FILENO, p + *len, cap - *len)) == -1) {
			free(p != NULL ? p : buf);
			return NULL;
		}
		buf = p;
		*len += (size_t)n;
	} while (*len == cap);
	return buf;
}

static int
cli_write(const char *method, const char *key, const char *val, size_t vlen,
    const char *extra, const char *ttl)
{
	char *target, *out = NULL;
	size_t len;
	int status, rc;

	if ((target = key_target(key, ttl)) == NULL)
		return EXIT_SERVER;
	/* With X-Kv-Replicas the server may wait up to REPLICAS_WAIT_MS. */
	status = cli_request(method, target, extra, val, vlen, *extra != '\0' ?
	    REPLICAS_CLI_TIMEOUT_MS : CLI_TIMEOUT_MS, &out, &len, NULL, 0);
	if (status == 200 || status == 201) {
		put_answer(out, len);
		rc = EXIT_OK;
	} else if (status == 404) {
		fmt_out(&serr, "kvstore: %s: not found\n", key);
		rc = EXIT_NOT_FOUND;
	} else
		rc = cli_fail(method, target, status, out);
	free(out);
	free(target);
	return rc;
}

/* A TTL option's value, checked as the server will (exits 2 if bad). */
static const char *
ttl_arg(const char *v)
{
	uint64_t ms;

	if (parse_ttl(v, strlen(v), &ms) == -1) {
		fmt_out(&serr, "kvstore: bad TTL %s (e.g. 300ms, 30s, 5m, "
		    "2h)\n", v);
		quit(EXIT_USAGE);
	}
	return v;
}

/* put [--replicas N] [--ttl TTL] KEY [VALUE] */
static int
cli_put(int argc, char **argv)
{
	char extra[64] = "", *val;
	const char *end, *ttl = NULL;
	size_t vlen;
	uint64_t n;
	int rc, i;

	for (i = 2; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--ttl") == 0)
			ttl = ttl_arg(argv[i + 1]);
		else if (strcmp(argv[i], "--replicas") != 0)
			break;
		else if ((end = parse_dec(argv[i + 1], 64, &n)) == NULL ||
		    *end != '\0')
			return usage();
		else
			fmt_buf(extra, sizeof(extra), "X-Kv-Replicas: %u\r\n",
			    (unsigned)n);
	}
	if (argc == i + 2)
		return cli_write("PUT", argv[i], argv[i + 1],
		    strlen(argv[i + 1]), extra, ttl);
	if (argc != i + 1)
		return usage();
	if ((val = read_stdin(&vlen)) == NULL) {
		fmt_out(&serr, "kvstore: reading the value from stdin: %s\n",
		    errstr());
		return EXIT_SERVER;
	}
	rc = cli_write("PUT", argv[i], val, vlen, extra, ttl);
	free(val);
	return rc;
}

/* ---- kvstore lock ---- */

/*
 * One conditional write of a lock: If-None-Match: * while *seq is 0 (take
 * it), else If-Match its version (renew, release). Returns the status, or
 * -1 without an answer; on 200 or 201 *seq is the new version.
 */
static int
lock_call(const char *method, const char *target, uint64_t *seq,
    const char *val)
{
	char cond[48], *out;
	size_t len;
	uint64_t got = 0;
	int status;

	if (*seq == 0)
		fmt_buf(cond, sizeof(cond), "If-None-Match: *\r\n");
	else
		fmt_buf(cond, sizeof(cond), "If-Match: \"%llu\"\r\n",
		    (unsigned long long)*seq);
	status = cli_request(method, target, cond, val, strlen(val),
	    CLI_TIMEOUT_MS, &out, &len, &got, 1);
	free(out);
	if (status == 200 || status == 201)
		*seq = got;
	return status;
}

/*
 * execvp(argv[0], argv), as musl does it, for 350 bytes less: argv[0] as
 * it is if it has a '/', else in each directory of PATH (musl's default
 * when unset; an empty one is the current directory) until one runs.
 * Returns only on failure, with errno EACCES if a file was found that
 * could not be run, else why the last try failed. Safe after vfork: it
 * writes only to its own stack.
 */
static void
exec_path(char **argv)
{
	const char *file = argv[0], *p, *z, *path = getenv("PATH");
	char b[PATH_MAX];
	size_t k = strlen(file), n;
	int eacces = 0;

	errno = ENOENT;
	if (k == 0)
		return;
	if (strchr(file, '/') != NULL) {
		(void)execv(file, argv);
		return;
	}
	if (path == NULL)
		path = "/usr/local/bin:/bin:/usr/bin";
	for (p = path;; p = z + 1) {
		z = strchrnul(p, ':');
		n = (size_t)(z - p);
		if (n + 1 + k < sizeof(b)) {
			memcpy(b, p, n);
			b[n] = '/';
			memcpy(b + n + (n > 0), file, k + 1);
			(void)execv(b, argv);
			if (errno == EACCES)
				eacces = 1;
			else if (errno != ENOENT && errno != ENOTDIR)
				return;
		}
		if (*z == '\0')
			break;
	}
	if (eacces)
		errno = EACCES;
}

/*
 * Run argv[0..] as a child while holding the lock at target (version
 * *seq), renewing it every third of ttl_ms. Returns the child's exit
 * status (128 + signal if killed), or -1 if the lock was lost: a renewal
 * found it gone or taken, or none got through within ttl_ms. Then the
 * child got SIGTERM, and was waited for.
 */
static int
lock_run(char **argv, const char *name, const char *target, uint64_t *seq,
    uint64_t ttl_ms, const char *val)
{
	uint64_t renewed = mono_ms();
	pid_t pid, w;
	int st, status, lost = 0;

	/* vfork: fork's atfork machinery would cost a kilobyte of binary. */
	if ((pid = vfork()) == -1) {
		fmt_out(&serr, "kvstore: vfork: %s\n", errstr());
		return -1;
	}
	if (pid == 0) {
		exec_path(argv);
		exec_errno = errno;	/* shared memory: for the parent */
		_exit(127);
	}
	while ((w = waitpid(pid, &st, WNOHANG)) == 0) {
		(void)poll(NULL, 0, LOCK_POLL_MS);
		if (lost || mono_ms() - renewed < ttl_ms / 3)
			continue;
		status = lock_call("PUT", target, seq, val);
		if (status == 200)
			renewed = mono_ms();
		else if (status == 404 || status == 412 ||
		    mono_ms() - renewed >= ttl_ms) {
			fmt_out(&serr, "kvstore: lock %s lost (renewal: %d); "
			    "sending the command SIGTERM\n", name, status);
			(void)kill(pid, SIGTERM);
			lost = 1;
		}
	}
	if (exec_errno != 0)
		fmt_out(&serr, "kvstore: %s: %s\n", argv[0],
		    strerror(exec_errno));
	if (w == -1 || lost)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/*
 * lock NAME [--ttl TTL] [--wait SECONDS] -- COMMAND [ARG...]: take the key
 * NAME with PUT ?ttl= and If-None-Match: *, retrying while another holds
 * it, for up to --wait seconds; run the command (lock_run), then delete
 * the key with If-Match and exit with the command's status. A lock whose
 * holder dies unannounced frees itself when its TTL runs out.
 */
static int
cli_lock(int argc, char **argv)
{
	const char *ttl = LOCK_TTL, *end;
	char *put, *del, val[32];
	uint64_t wait_s = LOCK_WAIT_S, ms, seq = 0, deadline;
	int i, status, rc;

	for (i = 3; i + 1 < argc && strcmp(argv[i], "--") != 0; i += 2) {
		if (strcmp(argv[i], "--ttl") == 0)
			ttl = ttl_arg(argv[i + 1]);
		else if (strcmp(argv[i], "--wait") != 0 ||
		    (end = parse_dec(argv[i + 1], 86400, &wait_s)) == NULL ||
		    *end != '\0')
			return usage();
	}
	if (argc < 3 || i + 1 >= argc || strcmp(argv[i], "--") != 0)
		return usage();
	(void)parse_ttl(ttl, strlen(ttl), &ms);
	put = key_target(argv[2], ttl);
	del = key_target(argv[2], NULL);
	fmt_buf(val, sizeof(val), "pid %ld\n", (long)getpid());
	deadline = mono_ms() + wait_s * 1000;
	while (put != NULL && (status = lock_call("PUT", put, &seq, val)) ==
	    412 && mono_ms() < deadline)
		(void)poll(NULL, 0, CLI_RETRY_MS);
	if (put == NULL || del == NULL)
		rc = EXIT_SERVER;
	else if (status == 412) {
		fmt_out(&serr, "kvstore: lock %s: still held after %llu s\n",
		    argv[2], (unsigned long long)wait_s);
		rc = EXIT_NOT_FOUND;
	} else if (status != 201)
		rc = cli_fail("PUT", put, status, "");
	else if ((rc = lock_run(argv + i + 1, argv[2], put, &seq, ms,
	    val)) == -1)
		rc = EXIT_SERVER;
	else if ((status = lock_call("DELETE", del, &seq, "")) != 200)
		fmt_out(&serr, "kvstore: lock %s: release: %d\n", argv[2],
		    status);
	free(put);
	free(del);
	return rc;
}

/*
 * txn: POST stdin to /txn and print the answer. 0 if the compares held
 * (the success branch ran), 1 if one failed (the failure branch, if any,
 * ran: 200, else 412 with the same answer).
 */
static int
cli_txn(void)
{
	char *body, *out = NULL;
	size_t blen, len;
	int status, rc;

	if ((body = read_stdin(&blen)) == NULL) {
		fmt_out(&serr, "kvstore: reading the transaction from stdin: "
		    "%s\n", errstr());
		return EXIT_SERVER;
	}
	status = cli_request("POST", "/txn", "Content-Type: application/json"
	    "\r\n", body, blen, CLI_TIMEOUT_MS, &out, &len, NULL, 0);
	if (status == 200 || status == 412) {
		put_answer(out, len);
		rc = strncmp(out, "{\"succeeded\":true", 17) == 0 ? EXIT_OK :
		    EXIT_NOT_FOUND;
	} else
		rc = cli_fail("POST", "/txn", status, out);
	free(out);
	free(body);
	return rc;
}

/*
 * One line of an event stream, p[0..n) without its newline: a write's data
 * is printed as a JSON line and *since goes past its id. Returns 1 at the
 * blank line that ends the server's last event (follow again), else 0;
 * exits on a reset.
 */
static int
cli_event_line(const char *p, size_t n, uint64_t *since, int *last)
{
	if (strncmp(p, "id: ", 4) == 0 &&
	    parse_dec(p + 4, REPL_SEQ_MAX, since) != NULL)
		++*since;
	else if (strncmp(p, "event: reset", 12) == 0) {
		fmt_out(&serr, "kvstore: watch: the backlog restarted (a "
		    "full sync): seqs may not go on; list the prefix again\n");
		quit(EXIT_SERVER);
	} else if (strncmp(p, "event: ", 7) == 0)
		*last = 1;
	else if (strncmp(p, "data: ", 6) == 0 && !*last) {
		out_put(&sout, p + 6, n - 6);
		out_put(&sout, "\n", 1);
		(void)out_flush(&sout);
	}
	return n == 0 && *last;
}

/*
 * watch --prefix P [--since N]: every write under P from N (or from now)
 * as JSON lines, from an event stream. A cut (lagged, shutdown, a lost
 * connection) follows again from the next seq, trying CLI_EVENTS_TRIES
 * times a second apart; exits 1 when that seq left the backlog (410).
 */
static int
cli_events(const char *prefix, uint64_t since)
{
	struct client_request rq = { "GET", NULL, NULL, NULL, 0, 1 };
	struct client_response rs;
	struct client *c;
	char *esc = key_target(prefix, NULL), *t;
	const char *p, *nl;
	ssize_t n, want;
	int fails = 0, last;

	if (esc == NULL || (t = malloc(strlen(esc) + 64)) == NULL)
		return EXIT_SERVER;
	rq.target = t;
	rq.extra = cli_auth();
	for (;; client_free(c)) {
		n = fmt_str(t, "/kv/?watch=events&prefix=%s", esc + 4);
		if (since > 0)
			fmt_str(t + n, "&since=%llu", (unsigned long long)since);
		if ((c = client_new(cli_url(), CLI_EVENTS_MS, NULL, NULL)) ==
		    NULL)
			return EXIT_SERVER;
		if (client_send(c, &rq) == -1 ||
		    client_recv_head(c, &rs) == -1) {
			if (++fails > CLI_EVENTS_TRIES) {
				fmt_out(&serr, "kvstore: watch: %s: %s\n",
				    cli_url(), client_error(c));
				return EXIT_SERVER;
			}
			poll(NULL, 0, 1000);
			continue;
		}
		if (rs.status == 410) {
			fmt_out(&serr, "kvstore: watch: seq %llu is no longer "
			    "held: the oldest is %llu; list the prefix again\n",
			    (unsigned long long)since, (unsigned long long)
			    header_u64(c, "X-Kv-Oldest-Seq"));
			return EXIT_NOT_FOUND;
		}
		if (rs.status != 200) {
			n = client_peek(c, 512, &p);
			fmt_out(&serr, "kvstore: watch: %d ", rs.status);
			put_text(&serr, p, n > 0 ? (size_t)n : 0, 1);
			return EXIT_SERVER;
		}
		fails = last = 0;
		if (since == 0)
			since = header_u64(c, "X-Kv-Index") + 1;
		for (want = 1; (n = client_peek(c, (size_t)want, &p)) >= want;) {
			want = n + 1;	/* no whole line yet */
			if ((nl = memchr(p, '\n', (size_t)n)) == NULL)
				continue;
			if (cli_event_line(p, (size_t)(nl - p), &since, &last))
				break;
			client_consume(c, (size_t)(nl + 1 - p));
			want = 1;
		}
	}
}

/*
 * watch KEY: print the value now and each new value as it is written, one
 * per line, through watches of CLI_WATCH_S each. Runs until interrupted
 * or the server fails; a delete is reported on stderr.
 */
static int
cli_watch(int argc, char **argv)
{
	char *target, *full, *out = NULL, *last = NULL;
	size_t len, n, last_len = 0;
	uint64_t index = 0;
	int status, last_status = 0;

	if (argc >= 4 && strcmp(argv[2], "--prefix") == 0) {
		if (argc == 6 && strcmp(argv[4], "--since") == 0 &&
		    (target = (char *)parse_dec(argv[5], REPL_SEQ_MAX,
		    &index)) != NULL && *target == '\0' && index > 0)
			return cli_events(argv[3], index);
		return argc == 4 ? cli_events(argv[3], 0) : usage();
	}
	if (argc != 3 || (target = key_target(argv[2], NULL)) == NULL)
		return usage();
	n = strlen(target) + 64;
	if ((full = malloc(n)) == NULL)
		return EXIT_SERVER;
	for (;;) {
		fmt_buf(full, n, "%s?index=%llu&wait=%ds", target,
		    (unsigned long long)index, CLI_WATCH_S);
		free(out);
		out = NULL;
		status = cli_request("GET", full, "", NULL, 0,
		    CLI_WATCH_S * 1000 + CLI_TIMEOUT_MS, &out, &len, &index, 0);
		/* A wait that ends unchanged answers the same again. */
		if (status == last_status && (status != 200 ||
		    (len == last_len && memcmp(out, last, len) == 0)))
			continue;
		if (status == 200) {
			out_put(&sout, out, len);
			out_put(&sout, "\n", 1);
			(void)out_flush(&sout);
		} else if (status == 404)
			fmt_out(&serr, "kvstore: %s: not found\n", argv[2]);
		else
			break;
		free(last);
		if ((last = malloc(len + 1)) == NULL)
			break;
		memcpy(last, out, len);
		last_len = len;
		last_status = status;
	}
	cli_fail("GET", full, status, out);
	free(out);
	free(last);
	free(full);
	free(target);
	return EXIT_SERVER;
}

/* The four hex digits at p (of a \uXXXX escape); stops at a non-digit. */
static unsigned
hex4(const char *p)
{
	const char *digits = "0123456789abcdef", *d;
	unsigned v = 0;
	int i;

	for (i = 0; i < 4 && p[i] != '\0' &&
	    (d = strchr(digits, p[i] | 0x20)) != NULL; i++)
		v = v << 4 | (unsigned)(d - digits);
	return v;
}

/*
 * Print each key of a JSON array of strings on its own line, undoing the
 * server's escapes (\udcXX gives back the raw byte XX).
 */
static void
print_keys(const char *p, const char *prefix)
{
	char key[JSON_STRING_MAX(STORE_MAX_KEY) + 1];
	unsigned long cp;
	size_t n, plen = strlen(prefix);

	while ((p = strchr(p, '"')) != NULL) {
		for (n = 0, p++; *p != '"' && *p != '\0' &&
		    n < sizeof(key) - 4; p++) {
			if (*p != '\\') {
				key[n++] = *p;
				continue;
			}
			p++;
			if (*p == 'u') {
				cp = hex4(p + 1);
				p += 4;
				if (cp >= 0xdc80 && cp <= 0xdcff)
					key[n++] = (char)(cp & 0xff);
				else if (cp < 0x80)
					key[n++] = (char)cp;
				else if (cp < 0x800) {
					key[n++] = (char)(0xc0 | cp >> 6);
					key[n++] = (char)(0x80 | (cp & 0x3f));
				} else {
					key[n++] = (char)(0xe0 | cp >> 12);
					key[n++] = (char)(0x80 | (cp >> 6 & 0x3f));
					key[n++] = (char)(0x80 | (cp & 0x3f));
				}
			} else
				key[n++] = *p == 'n' ? '\n' : *p == 't' ? '\t' :
				    *p == 'r' ? '\r' : *p == 'b' ? '\b' :
				    *p == 'f' ? '\f' : *p;
		}
		if (*p == '\0')
			return;
		p++;
		if (n >= plen && memcmp(key, prefix, plen) == 0) {
			out_put(&sout, key, n);
			out_put(&sout, "\n", 1);
		}
	}
}

static int
cli_ls(int argc, char **argv)
{
	char *out = NULL;
	size_t len;
	int status, rc = EXIT_OK;

	if (argc > 3)
		return usage();
	status = cli_call("GET", "/kv/", NULL, 0, &out, &len, 0);
	if (status == 200)
		print_keys(out, argc == 3 ? argv[2] : "");
	else
		rc = cli_fail("GET", "/kv/", status, out);
	free(out);
	return rc;
}

/* GET path: print the body; 0 on 200, 3 otherwise. */
static int
cli_show(const char *path)
{
	char *out = NULL;
	size_t len;
	int status;

	status = cli_call("GET", path, NULL, 0, &out, &len, 0);
	if (out != NULL && status == 200)
		put_answer(out, len);
	else if (out != NULL)
		put_text(&serr, out, len, 1);
	free(out);
	return status == 200 ? EXIT_OK : EXIT_SERVER;
}

/* chown -R without following symbolic links. */
static int
chown_tree(const char *path, uid_t uid, gid_t gid)
{
	char child[PATH_MAX];
	struct dirent *d;
	struct stat st;
	DIR *dir;
	int rc = 0;

	if (lchown(path, uid, gid) == -1) {
		fmt_out(&serr, "kvstore: chown %s: %s\n", path,
		    errstr());
		return -1;
	}
	if (lstat(path, &st) == -1 || !S_ISDIR(st.st_mode))
		return 0;
	if ((dir = opendir(path)) == NULL) {
		fmt_out(&serr, "kvstore: open %s: %s\n", path,
		    errstr());
		return -1;
	}
	while ((d = readdir(dir)) != NULL) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		if (fmt_buf(child, sizeof(child), "%s/%s", path, d->d_name) >=
		    (int)sizeof(child) || chown_tree(child, uid, gid) == -1)
			rc = -1;
	}
	closedir(dir);
	return rc;
}

/*
 * The chart's init container: give the data directory to the user the
 * server runs as. fsGroup does not apply to hostPath volumes (minikube's
 * default), and a scratch image has no shell or chown of its own.
 */
static int
cli_volume_permissions(int argc, char **argv)
{
	uint64_t uid, gid;
	const char *end;

	if (argc != 4)
		return usage();
	if ((end = parse_dec(argv[3], UINT32_MAX - 1, &uid)) == NULL ||
	    *end != ':' ||
	    (end = parse_dec(end + 1, UINT32_MAX - 1, &gid)) == NULL ||
	    *end != '\0')
		return usage();
	if (mkdir(argv[2], 0750) == -1 && errno != EEXIST) {
		fmt_out(&serr, "kvstore: mkdir %s: %s\n", argv[2],
		    errstr());
		return EXIT_SERVER;
	}
	if (chown_tree(argv[2], (uid_t)uid, (gid_t)gid) == -1)
		return EXIT_SERVER;
	fmt_out(&sout, "kvstore: %s now belongs to %llu:%llu\n", argv[2],
	    (unsigned long long)uid, (unsigned long long)gid);
	return EXIT_OK;
}

/* ---- Store files: check and salvage (the server stopped) ---- */

/* DIR's store file, as the server names it (kvstore.c's main). */
static int
store_path(const char *dir, char *path, size_t len)
{
	if (fmt_buf(path, len, "%s/" STORE_FILE, dir) < (int)len)
		return 0;
	fmt_out(&serr, "kvstore: %s: path too long\n", dir);
	return -1;
}

/*
 * store_check's fn: a stretch of log without a valid record, and the key
 * before it, its bytes from the file escaped as put_text does (the first
 * CHECK_KEY_SHOWN of them).
 */
static void
print_range(void *arg, uint64_t off, uint64_t len, int damaged,
    const char *key, size_t klen)
{
	(void)arg;
	fmt_out(&sout, "  %s at offset %llu: %llu bytes without a valid record",
	    damaged ? "DAMAGED" : "torn (never synced)",
	    (unsigned long long)off, (unsigned long long)len);
	if (klen > 0) {
		fmt_out(&sout, ", after key \"");
		put_text(&sout, key, klen > CHECK_KEY_SHOWN ?
		    CHECK_KEY_SHOWN : klen, 0);
		fmt_out(&sout, "\"%s", klen > CHECK_KEY_SHOWN ? "..." : "");
	}
	out_put(&sout, "\n", 1);
}

static void
print_report(const struct store_report *r)
{
	fmt_out(&sout, "  %s, %llu valid records, log ends at offset %llu, "
	    "synced to %llu\n", r->clean ? "closed cleanly" :
	    "not closed cleanly", (unsigned long long)r->records,
	    (unsigned long long)r->log_end,
	    (unsigned long long)r->synced_end);
	if (r->header[0] != '\0')
		fmt_out(&sout, "  header: %s\n", r->header);
	if (r->no_index)
		fmt_out(&sout, "  index: missing or not this file's (the next "
		    "start rebuilds it from the log)\n");
	else if (r->clean && r->bad_ranges == 0)
		fmt_out(&sout, "  index: %llu keys, %llu buckets disagree with the "
		    "log\n", (unsigned long long)r->keys,
		    (unsigned long long)r->bad_buckets);
	if (r->cut_records > 0)
		fmt_out(&sout, "  %llu records of transactions cut short, the "
		    "first at offset %llu: salvage leaves them out, and a "
		    "start drops those at the log's end as a torn tail\n",
		    (unsigned long long)r->cut_records,
		    (unsigned long long)r->first_cut);
	fmt_out(&sout, "  newest seq: %llu", (unsigned long long)r->last_seq);
	if (r->bad_ranges > 0)
		fmt_out(&sout, " (%llu before the first bad range)",
		    (unsigned long long)r->good_seq);
	out_put(&sout, "\n", 1);
}

/* The one line on what a backup file holds. */
static void
print_backup(const char *file, const struct store_backup_info *bi)
{
	fmt_out(&sout, "%s: backup of %llu keys at seq %llu, data set %s, %llu "
	    "bytes\n", file, (unsigned long long)bi->keys,
	    (unsigned long long)bi->seq, bi->repl_id,
	    (unsigned long long)bi->size);
}

/* Check a backup file, as `kvstore check FILE`: 0 sound, 1 damaged, 3. */
static int
check_backup(const char *file)
{
	struct store_backup_info bi;
	char err[512];
	int rc;

	if ((rc = store_backup_check(file, &bi, err, sizeof(err))) == -1) {
		fmt_out(&serr, "kvstore: %s%s\n", err, errno == EINVAL ? "; "
		    "check takes a backup file or a data directory" : "");
		return EXIT_SERVER;
	}
	if (rc == 1) {
		fmt_out(&sout, "%s: DAMAGED at offset %llu: %s\n", file,
		    (unsigned long long)bi.bad_off, bi.why);
		return EXIT_DAMAGED;
	}
	print_backup(file, &bi);
	fmt_out(&sout, "OK: %llu records, every checksum matches\n",
	    (unsigned long long)bi.records);
	return EXIT_OK;
}

/*
 * kvstore check DIR: report on DIR's store file, changing nothing. 0 sound
 * (a torn tail is not damage: the next start cuts it), 1 damaged, 3 error.
 */
static int
cli_check(int argc, char **argv)
{
	struct store_report r;
	struct stat st;
	char path[PATH_MAX], err[512];
	int rc;

	if (argc != 3)
		return usage();
	if (stat(argv[2], &st) == 0 && !S_ISDIR(st.st_mode))
		return check_backup(argv[2]);
	if (store_path(argv[2], path, sizeof(path)) == -1)
		return EXIT_USAGE;
	fmt_out(&sout, "%s:\n", path);
	if ((rc = store_check(path, &r, print_range, NULL, err,
	    sizeof(err))) == -1) {
		fmt_out(&serr, "kvstore: %s\n", err);
		return EXIT_SERVER;
	}
	print_report(&r);
	if (rc == 0) {
		fmt_out(&sout, "sound\n");
		return EXIT_OK;
	}
	fmt_out(&sout, "damaged: with the server stopped, `kvstore salvage %s` "
	    "writes a new store from every valid record and keeps this "
	    "file\n", argv[2]);
	return EXIT_DAMAGED;
}

/* kvstore salvage DIR: a new store from every valid record; 0 or 3. */
static int
cli_salvage(int argc, char **argv)
{
	struct store_report r;
	char path[PATH_MAX], kept[PATH_MAX + 32], err[512];

	if (argc != 3)
		return usage();
	if (store_path(argv[2], path, sizeof(path)) == -1)
		return EXIT_USAGE;
	fmt_out(&sout, "%s:\n", path);
	if (store_check(path, &r, print_range, NULL, err, sizeof(err)) ==
	    -1 || store_salvage(path, &r, kept, sizeof(kept), err,
	    sizeof(err)) == -1) {
		fmt_out(&serr, "kvstore: %s\n", err);
		return EXIT_SERVER;
	}
	fmt_out(&sout, "salvaged %llu keys, newest seq %llu; the old file is "
	    "kept as %s\n", (unsigned long long)r.keys,
	    (unsigned long long)r.last_seq, kept);
	if (r.cut_records > 0)
		fmt_out(&sout, "left out %llu records of transactions cut "
		    "short, so that none is applied in part; the old file "
		    "keeps them\n", (unsigned long long)r.cut_records);
	if (r.new_repl_id)
		fmt_out(&sout, "records were lost, so the store has a new replication "
		    "id: as a primary, every replica full-syncs from it and "
		    "loses them too; a replica full-syncs from its primary\n");
	return EXIT_OK;
}

/* ---- Backups: backup, restore (check FILE is above) ---- */

/* The body of GET /backup into fd, with progress on stderr each second. */
static const char *
receive_backup(struct client *c, int fd)
{
	uint64_t got = 0, total = header_u64(c, "X-Kv-Backup-Bytes"), next = 0;
	const char *p;
	ssize_t n;

	while ((n = client_peek(c, 65536, &p)) > 0) {
		if (write(fd, p, (size_t)n) != n)
			return "write failed (disk full?)";
		client_consume(c, (size_t)n);
		got += (uint64_t)n;
		if (mono_ms() >= next) {
			fmt_out(&serr, "kvstore: backup: %llu of %llu bytes\n",
			    (unsigned long long)got, (unsigned long long)total);
			next = mono_ms() + 1000;
		}
	}
	if (n == -1)
		return client_error(c);
	return got == total ? NULL : "cut short";
}

/*
 * kvstore backup [--url URL] FILE: GET /backup into FILE.tmp, synced and
 * checked whole, then renamed to FILE: a FILE that exists is a sound
 * backup, however the command died. FILE may be a directory, to which
 * it adds kvstore-<seq>.backup (a CronJob has no shell to name files).
 * Without AUTH_TOKEN it sends "Bearer none": /backup wants the header,
 * which no web page can send.
 */
static int
cli_backup(int argc, char **argv)
{
	struct client_request rq = { "GET", "/backup", NULL, NULL, 0, 1 };
	struct client_response rs;
	struct store_backup_info bi;
	struct client *c;
	struct stat st;
	char file[PATH_MAX], tmp[PATH_MAX + 4], err[512];
	const char *why = NULL, *p;
	ssize_t n;
	int fd;

	if (argc == 5 && strcmp(argv[2], "--url") == 0)
		url_flag = argv[3];
	else if (argc != 3)
		return usage();
	if ((c = client_new(cli_url(), CLI_TIMEOUT_MS, NULL, NULL)) == NULL)
		return usage();
	rq.extra = *cli_auth() != '\0' ? cli_auth() :
	    "Authorization: Bearer none\r\n";
	if (client_send(c, &rq) == -1 || client_recv_head(c, &rs) == -1) {
		fmt_out(&serr, "kvstore: GET /backup: %s\n", client_error(c));
		client_free(c);
		return EXIT_SERVER;
	}
	if (rs.status != 200) {
		n = client_peek(c, sizeof(err) - 1, &p);
		fmt_buf(err, sizeof(err), "%.*s", n > 0 ? (int)n : 0, p);
		client_free(c);
		return cli_fail("GET", "/backup", rs.status, err);
	}
	if (stat(argv[argc - 1], &st) == 0 && S_ISDIR(st.st_mode))
		fmt_buf(file, sizeof(file), "%s/kvstore-%llu.backup",
		    argv[argc - 1], (unsigned long long)header_u64(c,
		    "X-Kv-Seq"));
	else
		fmt_buf(file, sizeof(file), "%s", argv[argc - 1]);
	fmt_buf(tmp, sizeof(tmp), "%s.tmp", file);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) == -1)
		why = errstr();
	else {
		if ((why = receive_backup(c, fd)) == NULL && fsync(fd) == -1)
			why = errstr();
		(void)close(fd);
		if (why == NULL && store_backup_check(tmp, &bi, err,
		    sizeof(err)) != 0)
			why = "the copy received is damaged";
		else if (why == NULL && (rename(tmp, file) == -1 ||
		    store_sync_dir(file) == -1))
			why = errstr();
		if (why != NULL)
			(void)unlink(tmp);
	}
	client_free(c);
	if (why != NULL) {
		fmt_out(&serr, "kvstore: backup to %s: %s\n", file, why);
		return EXIT_SERVER;
	}
	print_backup(file, &bi);
	return EXIT_OK;
}

/*
 * Why DATA_DIR cannot take a restore, or NULL: a server has its store
 * open (its lock), or, without force, it holds anything but lost+found
 * (a new volume's).
 */
static const char *
restore_blocked(const char *dir, const char *path, int force)
{
	struct flock fl = { .l_type = F_RDLCK };
	struct dirent *d;
	DIR *dp;
	int fd, busy = 0, full = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) != -1) {
		busy = fcntl(fd, F_SETLK, &fl) == -1;
		(void)close(fd);
	}
	if (busy)
		return "a server has it open: stop it first";
	if (!force && (dp = opendir(dir)) != NULL) {
		while ((d = readdir(dp)) != NULL)
			full |= d->d_name[0] != '.' &&
			    strcmp(d->d_name, "lost+found") != 0;
		closedir(dp);
	}
	return full ? "not empty: --force replaces its store, keeping the old "
	    "file beside it" : NULL;
}

/* kvstore restore [--force] FILE DATA_DIR: a new store from a backup. */
static int
cli_restore(int argc, char **argv)
{
	struct store_backup_info bi;
	struct stat st;
	char path[PATH_MAX], kept[PATH_MAX + 48], err[512];
	const char *dir = argv[argc - 1], *why;
	int force = argc == 5 && strcmp(argv[2], "--force") == 0;

	if ((argc != 4 && !force) || store_path(dir, path, sizeof(path)) == -1)
		return usage();
	fmt_buf(kept, sizeof(kept), "%s.before-restore-%lld", path,
	    (long long)(wall_ms() / 1000));
	if (mkdir(dir, 0750) == -1 && errno != EEXIST)
		why = errstr();
	else
		why = restore_blocked(dir, path, force);
	if (why == NULL && store_restore(argv[argc - 2], path,
	    stat(path, &st) == 0 ? kept : NULL, &bi, err, sizeof(err)) == -1)
		why = err;
	if (why != NULL) {
		fmt_out(&serr, "kvstore: restore into %s: %s\n", dir, why);
		return EXIT_SERVER;
	}
	fmt_out(&sout, "restored %llu keys at seq %llu into %s as data set %s (a new "
	    "id: replicas full-sync)\n", (unsigned long long)bi.keys,
	    (unsigned long long)bi.seq, path, bi.repl_id);
	if (stat(kept, &st) == 0)
		fmt_out(&sout, "the old store is kept as %s\n", kept);
	return EXIT_OK;
}

static int
run(int argc, char **argv)
{
	const char *cmd = argv[1];

	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
		put_usage(&sout);
		return EXIT_OK;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
		fmt_out(&sout, "kvstore %s\n", KVSTORE_VERSION);
		return EXIT_OK;
	}
	if (strcmp(cmd, "get") == 0)
		return argc >= 3 ? cli_get(argc, argv) : usage();
	if (strcmp(cmd, "put") == 0)
		return cli_put(argc, argv);
	if (strcmp(cmd, "del") == 0)
		return argc == 3 ? cli_write("DELETE", argv[2], NULL, 0, "",
		    NULL) : usage();
	if (strcmp(cmd, "lock") == 0)
		return cli_lock(argc, argv);
	if (strcmp(cmd, "watch") == 0)
		return cli_watch(argc, argv);
	if (strcmp(cmd, "ls") == 0)
		return cli_ls(argc, argv);
	if (strcmp(cmd, "txn") == 0)
		return argc == 2 ? cli_txn() : usage();
	if (strcmp(cmd, "health") == 0)
		return argc == 2 ? cli_show("/health") : usage();
	if (strcmp(cmd, "status") == 0)
		return argc == 2 ? cli_show("/ready") : usage();
	if (strcmp(cmd, "volume-permissions") == 0)
		return cli_volume_permissions(argc, argv);
	if (strcmp(cmd, "check") == 0)
		return cli_check(argc, argv);
	if (strcmp(cmd, "salvage") == 0)
		return cli_salvage(argc, argv);
	if (strcmp(cmd, "backup") == 0)
		return cli_backup(argc, argv);
	if (strcmp(cmd, "restore") == 0)
		return cli_restore(argc, argv);
	fmt_out(&serr, "kvstore: unknown command \"%s\"\n", cmd);
	return usage();
}

int
cli_main(int argc, char **argv)
{
	int rc;

	sout.o_fd = STDOUT_FILENO;
	sout.o_mode = OUT_STDOUT;
	serr.o_fd = STDERR_FILENO;
	serr.o_mode = OUT_UNBUFFERED;
	rc = run(argc, argv);
	(void)out_flush(&sout);
	return rc;
}

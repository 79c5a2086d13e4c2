/*
 * cli.c: the command-line client. `kvstore get|put|del|ls|watch|health|
 * status` talk to KV_URL, so that a scratch image (no curl, no shell) can
 * check itself: the HEALTHCHECK and the chart's helm test run these, and
 * `volume-permissions` is the chart's init container. `check` and
 * `salvage` work on a stopped server's store file (store_check). Exit
 * codes are a contract for scripts: 0 ok, 1 not found (check: damaged),
 * 2 usage, 3 server, network or file error.
 */

#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <poll.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
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

enum { EXIT_OK, EXIT_NOT_FOUND, EXIT_USAGE, EXIT_SERVER };
#define EXIT_DAMAGED	EXIT_NOT_FOUND	/* kvstore check found damage */
#define STORE_FILE	"kvstore.db"	/* in DATA_DIR, as kvstore.c names it */
#define CHECK_KEY_SHOWN	64		/* key bytes a report prints */

static const char usage_text[] =
    "usage: kvstore                      run the server (configured by the "
    "environment; see README.md)\n"
    "       kvstore get [--wait SECONDS] [--expect VALUE] KEY\n"
    "       kvstore put [--replicas N] KEY [VALUE]   (VALUE from stdin "
    "when omitted)\n"
    "       kvstore del KEY\n"
    "       kvstore ls [PREFIX]\n"
    "       kvstore watch KEY            (each new value, one per line)\n"
    "       kvstore watch --prefix P [--since SEQ]   (every write, as "
    "JSON lines)\n"
    "       kvstore health | status\n"
    "       kvstore volume-permissions DIR UID:GID\n"
    "       kvstore check DIR | salvage DIR   (the store file in DIR, "
    "server stopped)\n"
    "       kvstore --help | --version\n"
    "Client commands talk to KV_URL (default http://localhost:8080), "
    "sending\nAUTH_TOKEN (or the one in AUTH_TOKEN_FILE) as a Bearer token "
    "when set.\n"
    "Exit status: 0 ok, 1 not found, 2 usage, 3 server or network error;\n"
    "check: 0 sound, 1 damaged, 3 cannot read the file.\n";

static int
usage(void)
{
	fputs(usage_text, stderr);
	return EXIT_USAGE;
}

/* KV_URL without a trailing slash, checked. */
static const char *
cli_url(void)
{
	static char url[REPL_URL_MAX];
	const char *v = env("KV_URL", "http://localhost:8080");
	size_t n = strlen(v);

	while (n > 0 && v[n - 1] == '/')
		n--;
	if (strncmp(v, "http://", 7) != 0 || n <= 7 || n >= sizeof(url)) {
		fprintf(stderr, "kvstore: KV_URL=%s: expected http://host:port\n",
		    v);
		exit(EXIT_USAGE);
	}
	memcpy(url, v, n);
	url[n] = '\0';
	return url;
}

/* "/kv/" and key percent-encoded: every byte but the unreserved ones. */
static char *
key_target(const char *key)
{
	static const char hex[] = "0123456789ABCDEF";
	char *t, *o;
	const unsigned char *k;

	if ((t = malloc(4 + strlen(key) * 3 + 1)) == NULL)
		return NULL;
	o = t + sprintf(t, "/kv/");
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
		fprintf(stderr, "kvstore: %s\n", why);
		exit(EXIT_USAGE);
	}
	if (t.t_len > 0)
		snprintf(line, sizeof(line), "Authorization: Bearer %s\r\n",
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
 * for the caller to free. *index gets X-Kv-Index when index is not NULL.
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
	if ((size_t)snprintf(head, sizeof(head), "%s%s", cli_auth(), extra) >=
	    sizeof(head)) {
		fprintf(stderr, "kvstore: %s %s: header lines too long\n",
		    method, target);
		return -1;
	}
	if ((c = client_new(url, timeout_ms, NULL, NULL)) == NULL) {
		if (!quiet)
			fprintf(stderr, "kvstore: %s %s: %s: %s\n", method,
			    target, url, strerror(errno));
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
			*index = header_u64(c, "X-Kv-Index");
	}
	if (why != NULL && !quiet)
		fprintf(stderr, "kvstore: %s %s: %s: %s\n", method, target,
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
put_text(FILE *f, const char *s, size_t n, int lines)
{
	unsigned char c;
	size_t i;

	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if ((c >= 0x20 && c < 0x7f) || (lines && (c == '\n' ||
		    c == '\t')))
			putc(c, f);
		else
			fprintf(f, "\\x%02x", c);
	}
}

/* Server text on stdout: escaped for a terminal, raw for a pipe. */
static void
put_answer(const char *s, size_t n)
{
	if (isatty(STDOUT_FILENO))
		put_text(stdout, s, n, 1);
	else
		fwrite(s, 1, n, stdout);
}

/* Say what the server answered, for an unexpected status. */
static int
cli_fail(const char *method, const char *target, int status, const char *body)
{
	if (status == -1)
		return EXIT_SERVER;
	fprintf(stderr, "kvstore: %s %s: %d ", method, target, status);
	put_text(stderr, body, strcspn(body, "\n"), 0);
	putc('\n', stderr);
	return EXIT_SERVER;
}

static int
cli_get(int argc, char **argv)
{
	struct timespec retry = { 0, CLI_RETRY_MS * 1000000L };
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
	if ((target = key_target(key)) == NULL)
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
		nanosleep(&retry, NULL);
	}
	if (match && expect == NULL)
		rc = fwrite(out, 1, len, stdout) == len ? EXIT_OK : EXIT_SERVER;
	else if (match)
		rc = EXIT_OK;
	else if (status == 200) {
		fprintf(stderr, "kvstore: %s is \"", key);
		put_text(stderr, out, len > 80 ? 80 : len, 0);
		fprintf(stderr, "\", not \"%s\"\n", expect);
		rc = EXIT_NOT_FOUND;
	} else if (status == 404) {
		fprintf(stderr, "kvstore: %s: not found\n", key);
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
	size_t cap = 0, n;

	*len = 0;
	do {
		if (*len == cap) {
			cap = cap == 0 ? 65536 : cap * 2;
			if ((p = realloc(buf, cap)) == NULL) {
				free(buf);
				return NULL;
			}
			buf = p;
		}
		n = fread(buf + *len, 1, cap - *len, stdin);
		*len += n;
	} while (n > 0);
	if (ferror(stdin)) {
		free(buf);
		return NULL;
	}
	return buf;
}

static int
cli_write(const char *method, const char *key, const char *val, size_t vlen,
    const char *extra)
{
	char *target, *out = NULL;
	size_t len;
	int status, rc;

	if ((target = key_target(key)) == NULL)
		return EXIT_SERVER;
	/* With X-Kv-Replicas the server may wait up to REPLICAS_WAIT_MS. */
	status = cli_request(method, target, extra, val, vlen, *extra != '\0' ?
	    REPLICAS_CLI_TIMEOUT_MS : CLI_TIMEOUT_MS, &out, &len, NULL, 0);
	if (status == 200 || status == 201) {
		put_answer(out, len);
		rc = EXIT_OK;
	} else if (status == 404) {
		fprintf(stderr, "kvstore: %s: not found\n", key);
		rc = EXIT_NOT_FOUND;
	} else
		rc = cli_fail(method, target, status, out);
	free(out);
	free(target);
	return rc;
}

/* put [--replicas N] KEY [VALUE] */
static int
cli_put(int argc, char **argv)
{
	char extra[64] = "", *val;
	const char *end;
	size_t vlen;
	uint64_t n;
	int rc, i = 2;

	if (argc > 3 && strcmp(argv[2], "--replicas") == 0) {
		end = parse_dec(argv[3], 64, &n);
		if (end == NULL || *end != '\0')
			return usage();
		snprintf(extra, sizeof(extra), "X-Kv-Replicas: %u\r\n",
		    (unsigned)n);
		i = 4;
	}
	if (argc == i + 2)
		return cli_write("PUT", argv[i], argv[i + 1],
		    strlen(argv[i + 1]), extra);
	if (argc != i + 1)
		return usage();
	if ((val = read_stdin(&vlen)) == NULL) {
		fprintf(stderr, "kvstore: reading the value from stdin: %s\n",
		    strerror(errno));
		return EXIT_SERVER;
	}
	rc = cli_write("PUT", argv[i], val, vlen, extra);
	free(val);
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
		fputs("kvstore: watch: the backlog restarted (a full sync): "
		    "seqs may not go on; list the prefix again\n", stderr);
		exit(EXIT_SERVER);
	} else if (strncmp(p, "event: ", 7) == 0)
		*last = 1;
	else if (strncmp(p, "data: ", 6) == 0 && !*last) {
		fwrite(p + 6, 1, n - 6, stdout);
		putchar('\n');
		fflush(stdout);
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
	char *esc = key_target(prefix), *t;
	const char *p, *nl;
	ssize_t n, want;
	int fails = 0, last;

	if (esc == NULL || (t = malloc(strlen(esc) + 64)) == NULL)
		return EXIT_SERVER;
	rq.target = t;
	rq.extra = cli_auth();
	for (;; client_free(c)) {
		n = sprintf(t, "/kv/?watch=events&prefix=%s", esc + 4);
		if (since > 0)
			sprintf(t + n, "&since=%llu", (unsigned long long)since);
		if ((c = client_new(cli_url(), CLI_EVENTS_MS, NULL, NULL)) ==
		    NULL)
			return EXIT_SERVER;
		if (client_send(c, &rq) == -1 ||
		    client_recv_head(c, &rs) == -1) {
			if (++fails > CLI_EVENTS_TRIES) {
				fprintf(stderr, "kvstore: watch: %s: %s\n",
				    cli_url(), client_error(c));
				return EXIT_SERVER;
			}
			poll(NULL, 0, 1000);
			continue;
		}
		if (rs.status == 410) {
			fprintf(stderr, "kvstore: watch: seq %llu is no longer "
			    "held: the oldest is %llu; list the prefix again\n",
			    (unsigned long long)since, (unsigned long long)
			    header_u64(c, "X-Kv-Oldest-Seq"));
			return EXIT_NOT_FOUND;
		}
		if (rs.status != 200) {
			n = client_peek(c, 512, &p);
			fprintf(stderr, "kvstore: watch: %d ", rs.status);
			put_text(stderr, p, n > 0 ? (size_t)n : 0, 1);
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
	if (argc != 3 || (target = key_target(argv[2])) == NULL)
		return usage();
	n = strlen(target) + 64;
	if ((full = malloc(n)) == NULL)
		return EXIT_SERVER;
	for (;;) {
		snprintf(full, n, "%s?index=%llu&wait=%ds", target,
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
			fwrite(out, 1, len, stdout);
			putchar('\n');
			fflush(stdout);
		} else if (status == 404)
			fprintf(stderr, "kvstore: %s: not found\n", argv[2]);
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
			fwrite(key, 1, n, stdout);
			putchar('\n');
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
		put_text(stderr, out, len, 1);
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
		fprintf(stderr, "kvstore: chown %s: %s\n", path,
		    strerror(errno));
		return -1;
	}
	if (lstat(path, &st) == -1 || !S_ISDIR(st.st_mode))
		return 0;
	if ((dir = opendir(path)) == NULL) {
		fprintf(stderr, "kvstore: open %s: %s\n", path,
		    strerror(errno));
		return -1;
	}
	while ((d = readdir(dir)) != NULL) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		if (snprintf(child, sizeof(child), "%s/%s", path, d->d_name) >=
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
		fprintf(stderr, "kvstore: mkdir %s: %s\n", argv[2],
		    strerror(errno));
		return EXIT_SERVER;
	}
	if (chown_tree(argv[2], (uid_t)uid, (gid_t)gid) == -1)
		return EXIT_SERVER;
	printf("kvstore: %s now belongs to %llu:%llu\n", argv[2],
	    (unsigned long long)uid, (unsigned long long)gid);
	return EXIT_OK;
}

/* ---- Store files: check and salvage (the server stopped) ---- */

/* DIR's store file, as the server names it (kvstore.c's main). */
static int
store_path(const char *dir, char *path, size_t len)
{
	if (snprintf(path, len, "%s/" STORE_FILE, dir) < (int)len)
		return 0;
	fprintf(stderr, "kvstore: %s: path too long\n", dir);
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
	printf("  %s at offset %llu: %llu bytes without a valid record",
	    damaged ? "DAMAGED" : "torn (never synced)",
	    (unsigned long long)off, (unsigned long long)len);
	if (klen > 0) {
		printf(", after key \"");
		put_text(stdout, key, klen > CHECK_KEY_SHOWN ?
		    CHECK_KEY_SHOWN : klen, 0);
		printf("\"%s", klen > CHECK_KEY_SHOWN ? "..." : "");
	}
	putchar('\n');
}

static void
print_report(const struct store_report *r)
{
	printf("  %s, %llu valid records, log ends at offset %llu, "
	    "synced to %llu\n", r->clean ? "closed cleanly" :
	    "not closed cleanly", (unsigned long long)r->records,
	    (unsigned long long)r->log_end,
	    (unsigned long long)r->synced_end);
	if (r->header[0] != '\0')
		printf("  header: %s\n", r->header);
	if (r->clean && r->bad_ranges == 0)
		printf("  index: %llu keys, %llu buckets disagree with the "
		    "log\n", (unsigned long long)r->keys,
		    (unsigned long long)r->bad_buckets);
	printf("  newest seq: %llu", (unsigned long long)r->last_seq);
	if (r->bad_ranges > 0)
		printf(" (%llu before the first bad range)",
		    (unsigned long long)r->good_seq);
	putchar('\n');
}

/*
 * kvstore check DIR: report on DIR's store file, changing nothing. 0 sound
 * (a torn tail is not damage: the next start cuts it), 1 damaged, 3 error.
 */
static int
cli_check(int argc, char **argv)
{
	struct store_report r;
	char path[PATH_MAX], err[512];
	int rc;

	if (argc != 3)
		return usage();
	if (store_path(argv[2], path, sizeof(path)) == -1)
		return EXIT_USAGE;
	printf("%s:\n", path);
	if ((rc = store_check(path, &r, print_range, NULL, err,
	    sizeof(err))) == -1) {
		fprintf(stderr, "kvstore: %s\n", err);
		return EXIT_SERVER;
	}
	print_report(&r);
	if (rc == 0) {
		printf("sound\n");
		return EXIT_OK;
	}
	printf("damaged: with the server stopped, `kvstore salvage %s` "
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
	printf("%s:\n", path);
	if (store_check(path, &r, print_range, NULL, err, sizeof(err)) ==
	    -1 || store_salvage(path, &r, kept, sizeof(kept), err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "kvstore: %s\n", err);
		return EXIT_SERVER;
	}
	printf("salvaged %llu keys, newest seq %llu; the old file is "
	    "kept as %s\n", (unsigned long long)r.keys,
	    (unsigned long long)r.last_seq, kept);
	if (r.new_repl_id)
		printf("records were lost, so the store has a new replication "
		    "id: as a primary, every replica full-syncs from it and "
		    "loses them too; a replica full-syncs from its primary\n");
	return EXIT_OK;
}

int
cli_main(int argc, char **argv)
{
	const char *cmd = argv[1];

	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
		printf("kvstore %s\n", KVSTORE_VERSION);
		return EXIT_OK;
	}
	if (strcmp(cmd, "get") == 0)
		return argc >= 3 ? cli_get(argc, argv) : usage();
	if (strcmp(cmd, "put") == 0)
		return cli_put(argc, argv);
	if (strcmp(cmd, "del") == 0)
		return argc == 3 ? cli_write("DELETE", argv[2], NULL, 0, "") :
		    usage();
	if (strcmp(cmd, "watch") == 0)
		return cli_watch(argc, argv);
	if (strcmp(cmd, "ls") == 0)
		return cli_ls(argc, argv);
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
	fprintf(stderr, "kvstore: unknown command \"%s\"\n", cmd);
	return usage();
}

/*
 * api.c: the HTTP API: one route table, and the handlers of /kv (keys,
 * listings, preconditions) and of the web console. Every request comes in
 * through api_handle, which finds its route (exactly: /kvx is no /kv),
 * answers 404 or 405 (with Allow) from the table, checks who may call it,
 * then runs the handler; the status and replication endpoints live in
 * status.c and replica.c. README.md has the API in its long form.
 *
 * A key is the rest of the path after /kv/, percent-decoded once: 1 to
 * STORE_MAX_KEY bytes, any byte but NUL. Who may call what:
 *   open	/health, /ready, /role, /metrics and the console: probes and
 *		Prometheus never need a token
 *   client	/kv: with AUTH_TOKEN, writes need "Authorization: Bearer
 *		<token>" (and reads too with READ_AUTH), or get 401
 *   peers	/repl/: X-Kv-Repl-Token (REPL_TOKEN, else AUTH_TOKEN)
 *   backup	/backup, every value at once: "Authorization: Bearer
 *		<AUTH_TOKEN>" on every role, and with no AUTH_TOKEN a Bearer
 *		header all the same (any token): a web page cannot send one
 *		cross-site without a CORS preflight, which no node grants, so
 *		no page a user opens can read a backup
 * Those header guards hold against pages on other sites. A page can also
 * point its own name at a node (DNS rebinding) and call it same-origin,
 * where every header is allowed; so a browser's request (one with Origin
 * or Sec-Fetch-Site, which only browsers send) must name the node by a
 * Host no other site can own, on every route (browser_host_ok).
 */

#include <sys/types.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
#include "status.h"
#include "wait.h"
#include "events.h"
#include "txn.h"

#define LIST_BATCH	256		/* keys fetched per listing step */
#define LIST_BUF_BYTES	(LIST_BATCH * (JSON_KEY_MAX + 1) + 64)
#define LIST_TAIL	48		/* a page's "],"next":"..."}" */
#define LIST_PAGE_MAX	1000		/* keys in one page */
#define LIST_PAGE_DEFAULT 100
#define LIST_PAGE_SCAN	100000		/* keys one page may look at */
#define LIST_PAGE_BYTES	(1 << 20)	/* JSON one page may hold, but for its
					   last key */
#define LIST_VALUE_MAX	(256 << 10)	/* a bigger value is listed by size:
					   escaping it would hold the loop */
#define JSON_KEY_MAX	(JSON_STRING_MAX(STORE_MAX_KEY) + 1)
#define SENDFILE_MIN_BYTES (16 << 10)	/* a value this big goes out by
					   sendfile(2): no copy, no buffer */
#define EXPIRE_PER_TICK	256		/* keys expired per loop turn: about
					   0.3 ms of deletes */
#define MAX_BACKUPS	2		/* streaming at once: each holds a
					   descriptor, and maybe the disk of
					   a file compaction replaced */

/* The state of one listing: streamed whole, or one page of it. */
struct listing {
	uint64_t	 cursor;
	char		 prefix[STORE_MAX_KEY];
	size_t		 plen;
	int		 values;	/* objects with values, not key strings */
	int		 opened;	/* '[' written */
	int		 nkeys;		/* keys written, for the commas */
	size_t		 budget;	/* a page's bytes, or 0: streamed */
	struct stage	 st;		/* JSON; finished once ']' is written */
};

/* Methods, as the route table's bits. GET stands for HEAD too. */
#define M_GET		0x01
#define M_PUT		0x02
#define M_DELETE	0x04
#define M_POST		0x08

enum access {
	OPEN,		/* anyone: probes, metrics, the console */
	CLIENT,		/* AUTH_TOKEN for writes; for reads with READ_AUTH */
	PEERS,		/* REPL_TOKEN */
	BACKUP		/* a Bearer header always, AUTH_TOKEN when set */
};

/* Bytes for the small fields: 32 bytes a route, where ints made 40. */
struct route {
	const char	*path;
	unsigned char	 plen;		/* strlen(path): looked up twice a PUT */
	unsigned char	 prefix;	/* path is a prefix, not the whole */
	unsigned char	 methods;
	unsigned char	 access;	/* enum access */
	void		(*fn)(struct http_request *r);
	const char	*help;		/* named in a 404's help, or NULL */
};

static void	list_request(struct http_request *);
static void	key_request(struct http_request *);
static void	kv_root(struct http_request *);
static void	route_ui(struct http_request *);
static int	live(const struct store_value *);
static char	*expires_in(char *, const char *, const struct store_value *,
		    const char *);
static void	backup(struct http_request *);
static void	txn_route(struct http_request *);

/* First match wins: the exact /kv/ (the listing) before its prefix. */
#define R(path)	path, sizeof(path) - 1
static const struct route routes[] = {
	{ R("/kv/"), 0, M_GET, CLIENT, list_request, "/kv/" },
	{ R("/kv"), 0, M_GET | M_PUT | M_DELETE, CLIENT, kv_root, NULL },
	{ R("/kv/"), 1, M_GET | M_PUT | M_DELETE, CLIENT, key_request,
	    "/kv/{key}" },
	{ R("/txn"), 0, M_POST, CLIENT, txn_route, "/txn" },
	{ R("/health"), 0, M_GET, OPEN, status_health, "/health" },
	{ R("/ready"), 0, M_GET, OPEN, status_ready, "/ready" },
	{ R("/role"), 0, M_GET, OPEN, status_role, "/role" },
	{ R("/metrics"), 0, M_GET, OPEN, status_metrics, "/metrics" },
	{ R("/backup"), 0, M_GET, BACKUP, backup, "/backup" },
	{ R("/"), 0, M_GET, OPEN, route_ui, "/ (the web console)" },
	{ R("/ui"), 0, M_GET, OPEN, route_ui, NULL },
	{ R("/ui/"), 1, M_GET, OPEN, route_ui, NULL },
	{ R("/repl/state"), 0, M_GET, PEERS, replica_state, NULL },
	{ R("/repl/snapshot"), 0, M_GET, PEERS, replica_snapshot, NULL },
	{ R("/repl/tail"), 0, M_GET, PEERS, replica_tail, NULL },
	{ R("/repl/session"), 0, M_POST, PEERS, replica_session, NULL },
	{ R("/repl/apply"), 0, M_POST, PEERS, replica_apply, NULL },
	{ R("/repl/sync/begin"), 0, M_POST, PEERS, replica_sync_begin, NULL },
	{ R("/repl/sync/data"), 0, M_POST, PEERS, replica_sync_data, NULL },
	{ R("/repl/sync/end"), 0, M_POST, PEERS, replica_sync_end, NULL },
	{ R("/repl/register"), 0, M_POST, PEERS, replica_register, NULL }
};

#define NROUTES	(sizeof(routes) / sizeof(routes[0]))

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

/* Key and value of a listing with values, as one JSON object. */
static void
list_object(struct listing *l, const char *key, size_t klen,
    const struct store_value *v)
{
	struct stage *st = &l->st;

	memcpy(st->buf + st->len, "{\"key\":", 7);
	st->len += 7;
	st->len += json_string(st->buf + st->len, key, klen);
	if (v->len > LIST_VALUE_MAX)
		st->len += fmt_str(st->buf + st->len, ",\"value_bytes\":%zu",
		    v->len);
	else if (utf8_valid(v->data, v->len)) {
		st->len += fmt_str(st->buf + st->len, ",\"value\":");
		st->len += json_string(st->buf + st->len, v->data, v->len);
	} else {
		st->len += fmt_str(st->buf + st->len, ",\"value_base64\":\"");
		st->len += base64(st->buf + st->len,
		    (const unsigned char *)v->data, v->len);
		st->buf[st->len++] = '"';
	}
	st->len += fmt_str(st->buf + st->len, ",\"version\":%llu",
	    (unsigned long long)v->seq);
	st->len = expires_in(st->buf + st->len, ",\"expires_in\":", v, "") -
	    st->buf;
	st->buf[st->len++] = '}';
}

/* store_scan's visitor: stage key; "enough" once a page's budget is spent. */
static int
list_key(void *arg, const char *key, size_t klen, const struct store_value *v)
{
	struct listing *l = arg;
	size_t need, vlen = v->len > LIST_VALUE_MAX ? 0 : v->len;

	if (klen < l->plen || memcmp(key, l->prefix, l->plen) != 0 ||
	    !live(v))
		return 0;
	need = JSON_STRING_MAX(klen) + (l->values ? vlen * 6 + 128 : 0) + 8;
	if (stage_reserve(&l->st, need, LIST_TAIL) == -1)
		return 1;
	if (l->nkeys++ > 0)
		l->st.buf[l->st.len++] = ',';
	if (l->values)
		list_object(l, key, klen, v);
	else
		l->st.len += json_string(l->st.buf + l->st.len, key, klen);
	return l->budget != 0 && l->st.len >= l->budget;
}

/* Scan up to limit keys into l->st.buf; a scan that cannot move is a failure
 * (store_scan is out of memory), never a reason to try forever. */
static size_t
list_step(struct listing *l, size_t limit)
{
	uint64_t before = l->cursor;
	size_t n;

	n = store_scan(node.store, &l->cursor, limit, list_key, l);
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
 * LIST_PAGE_SCAN keys so that a rare prefix never stalls the loop, and
 * ending once it holds LIST_PAGE_BYTES, so that big values never build a
 * big answer (a page may then hold fewer keys; next goes on from there).
 */
static void
list_page(struct http_request *r, struct listing *l, size_t limit)
{
	char extra[96], next[24];
	size_t scanned = 0;
	int n;

	l->st.buf[l->st.len++] = '[';
	l->budget = LIST_PAGE_BYTES;
	while ((size_t)l->nkeys < limit && l->cursor != UINT64_MAX &&
	    scanned < LIST_PAGE_SCAN && l->st.len < l->budget &&
	    !l->st.failed)
		scanned += list_step(l, limit - l->nkeys);
	if (l->st.failed) {
		reply_text(r->id, 503, "", "out of memory");
		return;
	}
	n = (int)(reply_u64(extra, "X-Kv-Index: ", store_last_seq(node.store),
	    "\r\n") - extra);
	fmt_buf(next, sizeof(next), "null");
	if (l->cursor != UINT64_MAX) {
		fmt_buf(next, sizeof(next), "\"%016llx\"",
		    (unsigned long long)l->cursor);
		fmt_buf(extra + n, sizeof(extra) - n,
		    "X-Kv-Next-Cursor: %016llx\r\n",
		    (unsigned long long)l->cursor);
	}
	/* l->st.cap leaves room for this tail (LIST_TAIL). */
	n = fmt_str(l->st.buf + l->st.len, "],\"next\":%s}\n", next);
	l->st.len += n;
	http_reply(r->id, 200, "application/json", extra, l->st.buf, l->st.len);
}

/*
 * A page's cursor: exactly 16 lowercase hex digits, read within v[0..len)
 * (a parked request's copy ends right after its query: nothing may be
 * read past len).
 */
static int
parse_cursor(const char *v, size_t len, uint64_t *out)
{
	const char *hex = "0123456789abcdef", *d;
	uint64_t n = 0;
	size_t i;

	if (len != 16)
		return -1;
	for (i = 0; i < len; i++) {
		if (v[i] == '\0' || (d = strchr(hex, v[i])) == NULL)
			return -1;
		n = n << 4 | (uint64_t)(d - hex);
	}
	*out = n;
	return 0;
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
	char tmp[3 * STORE_MAX_KEY], index[48];
	uint64_t limit = 0;
	size_t len;
	ssize_t n;
	int rc;

	if ((l = calloc(1, sizeof(*l))) == NULL ||
	    (l->st.buf = malloc(LIST_BUF_BYTES)) == NULL) {
		free(l);
		reply_text(r->id, 503, "", "out of memory");
		return;
	}
	l->st.cap = LIST_BUF_BYTES - LIST_TAIL;
	l->st.gen = node.store_gen;
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
	if (events_follow(r, l->prefix, l->plen) ||
	    wait_watch_list(r, l->prefix, l->plen))
		goto done;
	if ((v = http_query(r, "values", &len)) != NULL)
		l->values = len == 4 && memcmp(v, "true", 4) == 0;
	if ((rc = req_query_u64(r, "limit", &limit)) == -1)
		goto done;
	if (rc == 1 && (limit < 1 || limit > LIST_PAGE_MAX)) {
		reply_text(r->id, 400, "", "limit must be 1 to %d",
		    LIST_PAGE_MAX);
		goto done;
	}
	if ((v = http_query(r, "cursor", &len)) != NULL) {
		if (parse_cursor(v, len, &l->cursor) == -1) {
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
	reply_u64(index, "X-Kv-Index: ", store_last_seq(node.store), "\r\n");
	if (http_stream(r->id, 200, "application/json", index, list_produce,
	    l) == 0)
		return;
done:
	free(l->st.buf);
	free(l);
}

/* ---- Backup ---- */

static int	backups;		/* streaming now */

/* A backup's stream, as store_backup.c reads it; logs how it ended. */
static ssize_t
backup_produce(void *arg, char *buf, size_t cap)
{
	ssize_t n = buf == NULL ? 0 : store_backup_read(arg, buf, cap);

	if (n > 0)
		return n;
	kv_log(n == 0 && buf != NULL ? "info" : "warn", "backup %s",
	    n == 0 && buf != NULL ? "sent" : n == 0 ? "cut short: the client "
	    "went away" : errstr());
	store_backup_end(arg);
	backups--;
	return n;
}

/*
 * GET /backup: the data set at this moment's seq, streamed from the store
 * file as the client reads (store_backup.c), while writes go on. Its
 * fields come first as headers too, for the client's progress.
 */
static void
backup(struct http_request *r)
{
	struct store_backup_info bi;
	struct store_backup *b;
	char extra[192];

	if (backups >= MAX_BACKUPS) {
		reply_text(r->id, 503, "Retry-After: 10\r\n", "%d backups are "
		    "streaming already, the most at once; try again later",
		    MAX_BACKUPS);
		return;
	}
	if ((b = store_backup_begin(node.store, &bi)) == NULL) {
		reply_text(r->id, 503, "", "cannot start a backup: %s",
		    errstr());
		return;
	}
	fmt_buf(extra, sizeof(extra), "X-Kv-Repl-Id: %s\r\nX-Kv-Seq: %llu\r\n"
	    "X-Kv-Keys: %llu\r\nX-Kv-Backup-Bytes: %llu\r\n", bi.repl_id,
	    (unsigned long long)bi.seq, (unsigned long long)bi.keys,
	    (unsigned long long)bi.size);
	backups++;
	kv_log("info", "backup of %llu keys at seq %llu (%llu bytes) started",
	    (unsigned long long)bi.keys, (unsigned long long)bi.seq,
	    (unsigned long long)bi.size);
	if (http_stream(r->id, 200, "application/octet-stream", extra,
	    backup_produce, b) == -1)
		(void)backup_produce(b, NULL, 0);
}

/* ---- Who may call ---- */

/*
 * Whether r may go on under AUTH_TOKEN: writes need it on the primary
 * (a replica answers them 403 whoever asks, naming the primary), reads
 * need it with READ_AUTH. Otherwise answers 401 as RFC 6750 says: a
 * request without a Bearer token gets a bare challenge, a wrong token
 * error="invalid_token". The probes, /role and /metrics never come here.
 */
/*
 * The token of r's "Authorization: Bearer <token>" into *len, or NULL
 * when it has none.
 */
static const char *
bearer(const struct http_request *r, size_t *len)
{
	const char *h;

	if ((h = http_header(r, "Authorization", len)) == NULL || *len < 6 ||
	    !http_ci_same(h, "Bearer", 6) || (*len > 6 && h[6] != ' '))
		return NULL;
	for (h += 6, *len -= 6; *len > 0 && *h == ' '; h++, (*len)--)
		;
	return h;
}

/* Whether r's Bearer token is AUTH_TOKEN (any, if none is set); 401 if not. */
static int
bearer_ok(struct http_request *r)
{
	const char *h;
	size_t len;

	if ((h = bearer(r, &len)) == NULL) {
		reply_text(r->id, 401, "WWW-Authenticate: Bearer "
		    "realm=\"kvstore\"\r\n", "this request needs a token: send "
		    "Authorization: Bearer <AUTH_TOKEN>%s", node.auth.t_len ==
		    0 ? " (any token: none is set)" : "");
		return 0;
	}
	if (node.auth.t_len > 0 && !token_equal(&node.auth, h, len)) {
		reply_text(r->id, 401, "WWW-Authenticate: Bearer "
		    "realm=\"kvstore\", error=\"invalid_token\"\r\n",
		    "the Bearer token is not valid");
		return 0;
	}
	return 1;
}

static int
authorized(struct http_request *r)
{
	if (node.auth.t_len == 0 ||
	    (req_is_read(r) ? !node.read_auth : node.role != ROLE_PRIMARY))
		return 1;
	return bearer_ok(r);
}

/* The request carries X-Kv-Repl-Token: REPL_TOKEN, or any when none is set. */
static int
repl_token_ok(const struct http_request *r)
{
	const char *v;
	size_t len;

	/*
	 * Present even when no token is set: a web page cannot send it
	 * cross-site without a CORS preflight, which no node grants, so no
	 * page a user opens can drive replication.
	 */
	if ((v = http_header(r, "X-Kv-Repl-Token", &len)) == NULL)
		return 0;
	return node.repl.t_len == 0 || token_equal(&node.repl, v, len);
}

/* Whether the name h[0..len) ends in suffix[0..n), any case. */
static int
ends_in(const char *h, size_t len, const char *suffix, size_t n)
{
	return len >= n && http_ci_same(h + len - n, suffix, n);
}

/*
 * Whether ALLOWED_HOSTS lets browsers use the name h[0..len): "*" any,
 * ".example.com" that name and every name under it, else one exact name.
 */
static int
host_listed(const char *h, size_t len)
{
	const char *p, *e;
	size_t n;

	for (p = node.allowed_hosts; p != NULL && *p != '\0'; p = e + (*e ==
	    ',')) {
		for (e = p; *e != '\0' && *e != ','; e++)
			;
		n = (size_t)(e - p);
		if ((n == 1 && *p == '*') ||
		    (n == len && http_ci_same(p, h, n)) ||
		    (*p == '.' && (ends_in(h, len, p, n) ||
		    (n - 1 == len && http_ci_same(p + 1, h, len)))))
			return 1;
	}
	return 0;
}

/*
 * A browser's request names a host that no other site can own: an IP
 * literal, localhost and names under it (browsers resolve those to
 * loopback themselves), a name of one label (found through the local
 * search list, which no stranger's DNS answers), or one of ALLOWED_HOSTS.
 * Answers 403 if not. Requests without Origin and Sec-Fetch-Site come from
 * no browser (curl, scripts, probes, peers) and are never asked: a name is
 * all rebinding needs, and only a page can be made to rebind it.
 */
static int
browser_host_ok(struct http_request *r)
{
	const char *h, *c;
	size_t len, i;

	if ((http_header(r, "Origin", &len) == NULL &&
	    http_header(r, "Sec-Fetch-Site", &len) == NULL) ||
	    (h = http_header(r, "Host", &len)) == NULL || len == 0 ||
	    *h == '[')
		return 1;
	if ((c = memchr(h, ':', len)) != NULL)
		len = (size_t)(c - h);
	if (len > 0 && h[len - 1] == '.')
		len--;
	if (memchr(h, '.', len) == NULL || ends_in(h, len, ".localhost", 10) ||
	    host_listed(h, len))
		return 1;
	for (i = 0; i < len && (h[i] == '.' || (h[i] >= '0' && h[i] <= '9'));
	    i++)
		;
	if (i == len)
		return 1;
	reply_text(r->id, 403, "", "a browser must name this node by its IP "
	    "address, localhost, or a name in ALLOWED_HOSTS, not %.*s",
	    (int)(len > 253 ? 253 : len), h);
	return 0;
}

/* ---- Keys ---- */

/*
 * Whether a key is there to be seen. On the primary, a key past its
 * expiry is gone at once, though its delete comes with the next sweep
 * (api_expire). A replica shows it until that delete arrives: it never
 * judges by its own clock, so every node answers the same at each seq.
 */
static int
live(const struct store_value *v)
{
	return v->expires == 0 || node.role != ROLE_PRIMARY ||
	    v->expires > wall_ms();
}

/* name, v's time to live in seconds with 3 decimals and end, at p. */
static char *
expires_in(char *p, const char *name, const struct store_value *v,
    const char *end)
{
	uint64_t now = wall_ms(), left;

	if (v->expires == 0)
		return p;
	left = v->expires > now ? v->expires - now : 0;
	return p + fmt_str(p, "%s%llu.%03u%s", name,
	    (unsigned long long)(left / 1000), (unsigned)(left % 1000), end);
}

/* A key expired, or was deleted: tell the replicas and the watches. */
static void
deleted(void *arg, const char *key, size_t klen, uint64_t seq)
{
	(void)arg;
	repl_enqueue(REPL_DEL, seq, key, klen, NULL, 0);
	wait_note_write(key, klen);
}

void
api_expire(void)
{
	if (node.role == ROLE_PRIMARY && !node.store_stale &&
	    !repl_recovering())
		(void)store_expire(node.store, wall_ms(), EXPIRE_PER_TICK,
		    deleted, NULL);
}


/*
 * A write's ?ttl= (see parse_ttl) as an expiry into *expires, 0 without
 * one. Answers 400 and returns -1 if it is malformed or not on a PUT.
 */
static int
ttl_expiry(struct http_request *r, uint64_t *expires)
{
	const char *v;
	size_t len;
	uint64_t ms;

	*expires = 0;
	if ((v = http_query(r, "ttl", &len)) == NULL)
		return 0;
	if (!req_is(r, "PUT")) {
		reply_text(r->id, 400, "", "ttl= goes with PUT only");
		return -1;
	}
	if (parse_ttl(v, len, &ms) == -1) {
		reply_text(r->id, 400, "", "bad ttl: use a whole number and "
		    "ms, s, m or h (30s), from 1 ms to 10 years");
		return -1;
	}
	*expires = wall_ms() + ms;
	return 0;
}

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

	/* /kv?key=K: the keys "." and ".." that a browser cannot put in a
	 * path (it resolves them, %2E%2E too, as segments). */
	if (r->path_len == 3 &&
	    (raw = http_query(r, "key", &rawlen)) != NULL && rawlen == 0) {
		reply_text(r->id, 400, "", "bad key: empty");
		return -1;
	}

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
	if (*node.primary_url != '\0')
		reply_text(r->id, 403, "", "this node is a read-only replica; "
		    "send writes to the primary at %s", node.primary_url);
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
	int saved = errno, failed = store_error(node.store);

	if (failed != 0) {
		reply_text(r->id, 503, "", "%s refused: writing to the disk "
		    "failed (%s); this node takes no writes until it is "
		    "restarted; reads still work", op, strerror(failed));
		return;
	}
	if (saved == ENOSPC || saved == EDQUOT) {
		if (!node.disk_full)
			kv_log("error", "the disk is full: refusing writes "
			    "until space is freed in %s", node.data_dir);
		node.disk_full = 1;
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
	if (!node.disk_full)
		return;
	node.disk_full = 0;
	kv_log("info", "the disk has room again: writes are accepted");
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
	exists = store_get(node.store, key, klen, &v) && live(&v);
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
	char extra[200], *p;
	uint64_t off;
	size_t len;
	int found, fd;

	/* Else a client would take the value for the stream it asked for. */
	if (r->query != NULL && (http_query(r, "watch", &len) != NULL ||
	    http_query(r, "since", &len) != NULL)) {
		reply_text(r->id, 400, "", "watch= and since= follow a prefix "
		    "(GET /kv/?prefix=P&watch=events), not a key; a key's "
		    "watch is ?index=");
		return;
	}
	if ((found = store_get(node.store, key, klen, &v)) && !live(&v)) {
		/* Delete it now: a watch parked on it sees the delete. */
		api_expire();
		found = 0;
	}
	if (wait_watch_key(r, key, klen, found ? &v : NULL))
		return;
	p = reply_u64(extra, "X-Kv-Index: ", store_last_seq(node.store), "\r\n");
	if (!found) {
		reply_text(r->id, 404, extra, "key not found");
		return;
	}
	(void)expires_in(reply_version(p, v.seq, 1), "X-Kv-Expires-In: ", &v,
	    "\r\n");
	if ((h = http_header(r, "If-None-Match", &len)) != NULL &&
	    etag_listed(h, len, 1, v.seq, 1)) {
		http_reply(r->id, 304, NULL, extra, NULL, 0);
		return;
	}
	if (v.len >= SENDFILE_MIN_BYTES &&
	    (fd = store_value_fd(node.store, &v, &off)) != -1) {
		http_reply_file(r->id, 200, "application/octet-stream", extra,
		    fd, off, v.len);
		return;
	}
	http_reply(r->id, 200, "application/octet-stream", extra, v.data,
	    v.len);
}

static void
put_key(struct http_request *r, const char *key, size_t klen,
    uint64_t expires)
{
	uint64_t seq;
	int rc;

	if (write_allowed(r, key, klen) == -1)
		return;
	if ((rc = store_put_exp(node.store, key, klen, r->body, r->body_len,
	    expires, 0, &seq)) == -1) {
		reply_store_error(r, "write");
		return;
	}
	disk_has_room();
	repl_enqueue_exp(REPL_PUT, seq, key, klen, r->body, r->body_len,
	    expires);
	wait_note_write(key, klen);
	if (rc == 1)
		wait_ack_write(r, 201, "created", seq);
	else
		wait_ack_write(r, 200, "replaced", seq);
}

static void
delete_key(struct http_request *r, const char *key, size_t klen)
{
	uint64_t seq;
	int rc;

	if (write_allowed(r, key, klen) == -1)
		return;
	if ((rc = store_del(node.store, key, klen, 0, &seq)) == -1) {
		reply_store_error(r, "delete");
		return;
	}
	if (rc == 0) {
		reply_text(r->id, 404, "", "key not found");
		return;
	}
	deleted(NULL, key, klen, seq);
	wait_ack_write(r, 200, "deleted", seq);
}

/*
 * May this node make r's write now? Answers (403 on a replica, 400 for a
 * bad ?ttl=, 503...) and returns 0 if not; a write waiting for replicas
 * needs a parking spot. A PUT's ?ttl= goes into *expires (ttl_expiry).
 */
static int
may_write(struct http_request *r, uint64_t *expires)
{
	uint64_t want;

	if (node.role != ROLE_PRIMARY)
		reply_readonly(r);
	else if (node.store_stale)
		reply_text(r->id, 503, "", "a full sync could not be swapped "
		    "in; this node takes no writes until it is restarted");
	else if (ttl_expiry(r, expires) == -1 ||
	    req_header_u64(r, "X-Kv-Replicas", &want) == -1 ||
	    !wait_enough_replicas(r) || (want > 0 && !wait_has_room(r)))
		;
	else
		return 1;
	return 0;
}

/* /kv/{key}: GET, HEAD, PUT, DELETE (the route table checked the method). */
static void
key_request(struct http_request *r)
{
	char key[STORE_MAX_KEY];
	uint64_t expires;
	ssize_t klen;

	if ((klen = parse_key(r, key)) < 0)
		return;
	if (node.role == ROLE_PRIMARY && wait_recovery(r))
		return;
	if (req_is_read(r))
		get_key(r, key, klen);
	else if (!may_write(r, &expires))
		return;
	else {
		/* Due keys go first, so that the write meets its key as
		 * clients see it (a PUT over a lapsed lock creates it). Only
		 * when over EXPIRE_PER_TICK are due at once may this one be
		 * left for the sweep: hidden from If-(None-)Match all the
		 * same, but a PUT says "replaced", a DELETE "deleted". */
		api_expire();
		if (req_is(r, "PUT"))
			put_key(r, key, klen, expires);
		else
			delete_key(r, key, klen);
	}
}

/*
 * POST /txn (txn.c), once a recovering primary has its data back. Due
 * keys go first, as for a PUT: its compares meet the keys as clients see
 * them.
 */
static void
txn_route(struct http_request *r)
{
	uint64_t expires;

	if (node.role == ROLE_PRIMARY && wait_recovery(r))
		return;
	if (!may_write(r, &expires))
		return;
	api_expire();
	txn_request(r);
}

/* /kv/: the listing, once a recovering primary has its data back. */
static void
list_request(struct http_request *r)
{
	if (node.role == ROLE_PRIMARY && wait_recovery(r))
		return;
	list_keys(r);
}

/* /kv: the listing, or with ?key= one key, as /kv/{key} is. */
static void
kv_root(struct http_request *r)
{
	if (http_query(r, "key", NULL) != NULL)
		key_request(r);
	else if (req_is_read(r))
		list_request(r);
	else
		reply_text(r->id, 400, "", "%.*s /kv needs ?key=: the key to "
		    "write (or use /kv/{key})", (int)r->method_len, r->method);
}

/* ---- The web console ---- */

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

	if (ui_ready() == -1) {
		reply_text(r->id, 500, "", "the web console built into this "
		    "binary is corrupt: rebuild it");
		return;
	}
	f = r->path_len <= 3 ? ui_file(NULL, 0) :
	    ui_file(r->path + 4, r->path_len - 4);
	if (f == NULL) {
		reply_text(r->id, 404, "", "no such console file: %.*s",
		    (int)(r->path_len > 200 ? 200 : r->path_len), r->path);
		return;
	}
	fmt_buf(extra, sizeof(extra), "ETag: \"%lu\"\r\n"
	    "Cache-Control: no-cache\r\nContent-Security-Policy: %s\r\n"
	    "Referrer-Policy: no-referrer\r\n", f->etag, UI_CSP);
	if ((h = http_header(r, "If-None-Match", &len)) != NULL &&
	    etag_listed(h, len, 1, f->etag, 1))
		http_reply(r->id, 304, NULL, extra, NULL, 0);
	else
		http_reply(r->id, 200, f->type, extra, f->data, f->len);
}

/* ---- Routing ---- */

static const struct route *
find_route(const struct http_request *r)
{
	const struct route *rt;
	size_t n;

	for (rt = routes; rt < routes + NROUTES; rt++) {
		n = rt->plen;
		if (rt->prefix ? r->path_len > n : r->path_len == n)
			if (memcmp(r->path, rt->path, n) == 0)
				return rt;
	}
	return NULL;
}

static unsigned
method_bit(const struct http_request *r)
{
	if (req_is_read(r))
		return M_GET;
	if (req_is(r, "PUT"))
		return M_PUT;
	if (req_is(r, "DELETE"))
		return M_DELETE;
	return req_is(r, "POST") ? M_POST : 0;
}

/* The Allow field's value for methods, e.g. "GET, HEAD, PUT, DELETE". */
static const char *
allow_of(unsigned methods, char *out, size_t cap)
{
	fmt_buf(out, cap, "%s%s%s%s", methods & M_GET ? "GET, HEAD" : "",
	    methods & M_PUT ? ", PUT" : "", methods & M_DELETE ? ", DELETE" : "",
	    methods & M_POST ? (methods & M_GET ? ", POST" : "POST") : "");
	return out;
}

static void
not_found(struct http_request *r)
{
	char help[256];
	size_t o = 0, i, left;
	int path_len = (int)(r->path_len > 200 ? 200 : r->path_len);

	if (r->path_len >= 6 && memcmp(r->path, "/repl/", 6) == 0) {
		reply_text(r->id, 404, "", "no such replication endpoint");
		return;
	}
	help[0] = '\0';
	for (left = 0, i = 0; i < NROUTES; i++)
		left += routes[i].help != NULL;
	for (i = 0; i < NROUTES; i++) {
		if (routes[i].help == NULL)
			continue;
		left--;
		o += (size_t)fmt_buf(help + o, sizeof(help) - o, "%s%s",
		    o == 0 ? "" : left == 0 ? ", or " : ", ", routes[i].help);
		if (o >= sizeof(help))
			break;
	}
	reply_text(r->id, 404, "", "no such endpoint: %.*s (try %s)",
	    path_len, r->path, help);
}

/* Whether the caller may use rt; answers 401 if not. */
static int
may_call(struct http_request *r, const struct route *rt)
{
	if (!browser_host_ok(r))
		return 0;
	switch (rt->access) {
	case OPEN:
		return 1;
	case CLIENT:
		return authorized(r);
	case BACKUP:
		return bearer_ok(r);
	case PEERS:
		if (!repl_token_ok(r)) {
			reply_text(r->id, 401, "", "replication needs "
			    "X-Kv-Repl-Token: the REPL_TOKEN (any value "
			    "when none is set)");
			return 0;
		}
		/* A replica hears its primary through its pushes. */
		if (node.role == ROLE_REPLICA && req_is(r, "POST") &&
		    rt->fn != replica_register)
			node.primary_heard_ms = mono_ms();
		return 1;
	}
	return 0;
}

void
api_handle(struct http_request *r)
{
	const struct route *rt;
	char allow[64];

	if ((rt = find_route(r)) == NULL) {
		not_found(r);
		return;
	}
	/* Before a read can wait or a watch park: they cost memory. */
	if (!may_call(r, rt))
		return;
	if ((method_bit(r) & rt->methods) == 0) {
		reply_not_allowed(r, allow_of(rt->methods, allow,
		    sizeof(allow)));
		return;
	}
	if (rt->access == CLIENT && req_is_read(r) && wait_min_seq(r))
		return;
	rt->fn(r);
}

int
api_admit(struct http_request *r)
{
	const struct route *rt;
	char allow[64];

	/* Only a body is worth refusing early; the rest waits for api_handle. */
	if (r->content_length <= 0 && !r->chunked)
		return 0;
	if ((rt = find_route(r)) == NULL) {
		not_found(r);
		return 1;
	}
	if (!may_call(r, rt))
		return 1;
	if ((method_bit(r) & rt->methods) == 0) {
		reply_not_allowed(r, allow_of(rt->methods, allow,
		    sizeof(allow)));
		return 1;
	}
	if (rt->access == CLIENT && !req_is_read(r) &&
	    node.role != ROLE_PRIMARY) {
		reply_readonly(r);
		return 1;
	}
	return 0;
}

size_t
api_body_limit(const struct http_request *r)
{
	const struct route *rt = find_route(r);

	/* Replication batches may be bigger than one value. */
	if (rt != NULL && rt->access == PEERS)
		return REPL_BATCH_BYTES > node.max_value + 2048 ?
		    REPL_BATCH_BYTES : node.max_value + 2048;
	return node.max_value;
}

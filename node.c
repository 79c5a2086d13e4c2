/*
 * node.c: the node's settings and state, and the kit every request handler
 * answers with: plain-text answers, numbers from requests, version fields,
 * and bodies staged in memory and streamed out.
 */

#include <sys/types.h>

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
#include "store.h"
#include "util.h"
#include "node.h"

struct node	 node;

void
reply_text(uint64_t id, int status, const char *extra, const char *fmt, ...)
{
	char body[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = fmt_vbuf(body, sizeof(body) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(body) - 2)
		n = sizeof(body) - 2;
	body[n++] = '\n';
	http_reply(id, status, "text/plain; charset=utf-8", extra, body, n);
}

void
reply_not_allowed(struct http_request *r, const char *allow)
{
	char extra[96];

	fmt_buf(extra, sizeof(extra), "Allow: %s\r\n", allow);
	reply_text(r->id, 405, extra, "method %.*s not allowed here; "
	    "allowed: %s", (int)r->method_len, r->method, allow);
}

/* Whether s[0..n) is the C string c: no strlen, in the path of every
 * request; it stops at the first difference. */
static int
same(const char *s, size_t n, const char *c)
{
	size_t i;

	for (i = 0; i < n && s[i] == c[i]; i++)
		;
	return i == n && c[n] == '\0';
}

int
req_is(const struct http_request *r, const char *m)
{
	return same(r->method, r->method_len, m);
}

int
req_path_is(const struct http_request *r, const char *p)
{
	return same(r->path, r->path_len, p);
}

int
req_is_read(const struct http_request *r)
{
	return req_is(r, "GET") || req_is(r, "HEAD");
}

struct http_request *
req_copy(const struct http_request *r, int with_body)
{
	struct http_request *c;
	size_t n = r->method_len + r->path_len + r->query_len, i;
	char *p;

	if (with_body)
		n += r->body_len;

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
	if (with_body && r->body_len > 0) {
		c->body = memcpy(p, r->body, r->body_len);
		c->body_len = r->body_len;
	}
	return c;
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

int
req_header_u64(struct http_request *r, const char *name, uint64_t *out)
{
	size_t len;
	const char *v = http_header(r, name, &len);

	return number_of(r, v, len, name, out);
}

int
req_query_u64(struct http_request *r, const char *name, uint64_t *out)
{
	size_t len;
	const char *v = http_query(r, name, &len);

	return number_of(r, v, len, name, out);
}

/* By hand: snprintf cost more than the rest of a GET together. */
char *
reply_u64(char *p, const char *name, uint64_t n, const char *end)
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

char *
reply_version(char *p, uint64_t seq, int etag)
{
	if (etag)
		p = reply_u64(p, "ETag: \"", seq, "\"\r\n");
	return reply_u64(p, "X-Kv-Seq: ", seq, "\r\n");
}

/* Room for need more staged bytes (plus slack kept free); 0, or -1 and
 * failed set when out of memory. */
int
stage_reserve(struct stage *st, size_t need, size_t slack)
{
	size_t cap;
	char *p;

	if (st->len + need <= st->cap)
		return 0;
	/* Doubling: a body staged in many steps is copied O(n) times. */
	cap = st->len + need > 2 * st->cap ? st->len + need : 2 * st->cap;
	if ((p = resize(st->buf, st->len, cap + slack)) == NULL) {
		st->failed = 1;
		return -1;
	}
	st->buf = p;
	st->cap = cap;
	return 0;
}

/*
 * http_producer for a staged body owned by owner (which embeds st): hand
 * out what is staged, refill(owner) when it ran out, free both at the end
 * or when the client went away.
 */
ssize_t
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
		if (st->gen != node.store_gen)
			st->failed = 1;
		else
			refill(owner);
		if (st->failed) {
			free(st->buf);
			free(owner);
			return -1;
		}
		if (st->len == 0 && !st->finished)
			return HTTP_STREAM_LATER;	/* the owner waits */
	}
	n = st->len - st->off < cap ? st->len - st->off : cap;
	memcpy(buf, st->buf + st->off, n);
	st->off += n;
	return (ssize_t)n;
}

const char *
node_role_name(void)
{
	return node.role == ROLE_PRIMARY ? "primary" : "replica";
}

const char *
node_fsync_name(enum store_fsync f)
{
	return f == STORE_FSYNC_ALWAYS ? "always" :
	    f == STORE_FSYNC_NO ? "no" : "everysec";
}

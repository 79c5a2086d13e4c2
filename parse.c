/*
 * parse.c: the HTTP/1.1 message parser, picohttpparser's role: request
 * heads (the server's), answer heads (client.c's), chunked bodies and
 * percent-decoding. It is pure: no I/O, no allocation, no state but what
 * the caller passes in; tests/http_test.c and tests/fuzz/fuzz_http.c drive
 * it directly.
 */

/*
 * The accepted subset of HTTP/1.1 (RFC 9112; RFC 9110 for semantics).
 *
 *   request   = *( CRLF ) request-line *( field-line ) CRLF [ body ]
 *   request-line = method SP request-target SP "HTTP/1." DIGIT CRLF
 *
 * - Empty lines before the request line are skipped (9112 2.2). A line may
 *   end in CRLF or a lone LF (2.2 allows LF); a CR not followed by LF is
 *   refused (400) everywhere, in the head and in chunk lines.
 * - The method is a token (9110 5.6.2). The target is origin-form ("/..."),
 *   asterisk-form ("*", reported as path "*"), or absolute-form
 *   ("http://host/path", 9112 3.2.2), of which only the path and query are
 *   kept. Authority-form (CONNECT) is refused. Target bytes are visible ASCII
 *   or obs-text (0x80-0xff, passed through as is); anything else is 400.
 *   Targets over HTTP_MAX_TARGET_BYTES (8 KiB; 9112 3 asks for at least
 *   8000) get 414.
 * - The version is "HTTP/1." and one digit; a higher minor is served as
 *   1.1 (9110 2.5). Another well-formed major gets 505; anything else 400.
 * - Field lines are token ":" OWS value OWS (9112 5). Whitespace before the
 *   colon (5.1), a line starting with SP or HT (obs-fold, 5.2, and the
 *   whitespace after the start line that 2.2 warns of), an empty name, and
 *   a NUL, CTL or DEL in the head (HT is allowed in values) get 400. Values
 *   may carry obs-text. At most HTTP_MAX_HEADERS fields and
 *   HTTP_MAX_HEAD_BYTES (16 KiB, counting leading empty lines and the
 *   final CRLF) for the whole head; beyond either, 431 (RFC 6585 5).
 * - HTTP/1.1 needs exactly one Host (9112 3.2); two Hosts get 400 on any
 *   version, and so does a value that is not uri-host [":" port] (RFC
 *   3986 3.2.2: a reg-name, IPv4 address, or IP-literal in brackets); the
 *   empty value is allowed (9110 7.2), an empty host before a port is not.
 * - Framing (9112 6): Content-Length is digits only, at most INT64_MAX; a
 *   list or repeated field of equal values ("1, 1") is taken as one value
 *   (9110 8.6), differing values are 400. Transfer-Encoding must be exactly
 *   "chunked" (case-insensitive); another coding is 501, chunked twice is
 *   400, an empty value is 400, and so is Transfer-Encoding in an HTTP/1.0
 *   request (9112 6.1 calls that framing faulty). Both Content-Length and
 *   Transfer-Encoding: 400 (6.3 allows rejecting; it is how smuggling
 *   starts). Neither: no body.
 * - Chunked bodies (9112 7.1): 1 to 16 hex digits, no leading whitespace,
 *   optional BWS and extensions (ignored, each line at most MAX_CHUNK_LINE),
 *   CRLF, data, CRLF: a bare LF ending a size line or data is 400. Trailer
 *   fields are checked as field lines (no colon: 400) and discarded
 *   (HTTP_MAX_HEAD_BYTES in all).
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "parse.h"

#define MAX_CHUNK_DIGITS 16	/* 16 hex digits fill a uint64_t */
#define MAX_CHUNK_LINE	4096	/* a size line with its extensions */

enum chunk_phase {
	CH_SIZE,	/* zeroed state starts here */
	CH_SIZE_WS,	/* BWS after the size, before ';' */
	CH_EXT,
	CH_SIZE_LF,
	CH_DATA,
	CH_DATA_CR,
	CH_DATA_LF,
	CH_TRAILER,	/* a trailer line's start or name */
	CH_TRAILER_VAL,
	CH_TRAILER_LF,
	CH_DONE
};

static int	 ci_eq(const char *, size_t, const char *);
static int	 hexval(int);
static int	 next_token(const char **, const char *, const char **,
		    size_t *);
static int	 parse_cl(const char *, size_t, int64_t *);

/* ---- Character classes ---- */

/*
 * One table of classes, a bit each: tchar (RFC 9110 5.6.2), one load per
 * byte of every method and field name, where a function of comparisons
 * cost a tenth of a PUT; and reg-name bytes (RFC 3986 3.2.2): unreserved
 * and sub-delims, '%' starting a pct-encoded triple, checked apart.
 * Locale-free.
 */
#define C_T	1			/* tchar */
#define C_R	2			/* reg-name */
#define C_TR	(C_T | C_R)
static const unsigned char chclass[256] = {
	['!'] = C_TR, ['#'] = C_T, ['$'] = C_TR, ['%'] = C_T, ['&'] = C_TR,
	['\''] = C_TR, ['('] = C_R, [')'] = C_R, ['*'] = C_TR, ['+'] = C_TR,
	[','] = C_R, ['-'] = C_TR, ['.'] = C_TR, [';'] = C_R, ['='] = C_R,
	['^'] = C_T, ['_'] = C_TR, ['`'] = C_T, ['|'] = C_T, ['~'] = C_TR,
	['0'] = C_TR, ['1'] = C_TR, ['2'] = C_TR, ['3'] = C_TR, ['4'] = C_TR,
	['5'] = C_TR, ['6'] = C_TR, ['7'] = C_TR, ['8'] = C_TR, ['9'] = C_TR,
	['A'] = C_TR, ['B'] = C_TR, ['C'] = C_TR, ['D'] = C_TR, ['E'] = C_TR,
	['F'] = C_TR, ['G'] = C_TR, ['H'] = C_TR, ['I'] = C_TR, ['J'] = C_TR,
	['K'] = C_TR, ['L'] = C_TR, ['M'] = C_TR, ['N'] = C_TR, ['O'] = C_TR,
	['P'] = C_TR, ['Q'] = C_TR, ['R'] = C_TR, ['S'] = C_TR, ['T'] = C_TR,
	['U'] = C_TR, ['V'] = C_TR, ['W'] = C_TR, ['X'] = C_TR, ['Y'] = C_TR,
	['Z'] = C_TR,
	['a'] = C_TR, ['b'] = C_TR, ['c'] = C_TR, ['d'] = C_TR, ['e'] = C_TR,
	['f'] = C_TR, ['g'] = C_TR, ['h'] = C_TR, ['i'] = C_TR, ['j'] = C_TR,
	['k'] = C_TR, ['l'] = C_TR, ['m'] = C_TR, ['n'] = C_TR, ['o'] = C_TR,
	['p'] = C_TR, ['q'] = C_TR, ['r'] = C_TR, ['s'] = C_TR, ['t'] = C_TR,
	['u'] = C_TR, ['v'] = C_TR, ['w'] = C_TR, ['x'] = C_TR, ['y'] = C_TR,
	['z'] = C_TR,
};
#define is_tchar(ch)	((chclass[(unsigned char)(ch)] & C_T) != 0)
#define is_regchar(ch)	((chclass[(unsigned char)(ch)] & C_R) != 0)

static int
hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/*
 * Are a[0..n) and b[0..n) the same, ignoring ASCII case? Stops at the
 * first difference, so b may be a shorter C string. (strncasecmp calls
 * tolower, a function of the locale, for every byte: a tenth of a PUT.)
 */
int
http_ci_same(const char *a, const char *b, size_t n)
{
	unsigned char	 x, y;
	size_t		 i;

	for (i = 0; i < n; i++) {
		x = (unsigned char)a[i];
		y = (unsigned char)b[i];
		if (x >= 'A' && x <= 'Z')
			x += 'a' - 'A';
		if (y >= 'A' && y <= 'Z')
			y += 'a' - 'A';
		if (x != y)
			return 0;
	}
	return 1;
}

/* Does s[0..len) equal the word w, ignoring case? s holds no NUL. */
static int
ci_eq(const char *s, size_t len, const char *w)
{
	return http_ci_same(s, w, len) && w[len] == '\0';
}

/* ---- Message parsing ---- */

/*
 * The parse phases follow picohttpparser's split: start line, header
 * fields, then the fields that frame the message. Each phase reads
 * [p, end) and returns where it stopped, or NULL with e set: status 0 when
 * the bytes ran out (incomplete), else the status of the error (400, 414,
 * 431, 501 or 505) and why. http_parse and http_parse_response are the
 * phases in order; parse_headers and the framing code serve both.
 */
struct perr {
	int		 status;	/* 0: incomplete */
	const char	*why;
};

#define NEED(n)	do {							\
		if (end - p < (ptrdiff_t)(n)) {				\
			e->status = 0;					\
			return NULL;					\
		}							\
	} while (0)
#define BAD(st, msg)	do {						\
		e->status = (st);					\
		e->why = (msg);						\
		return NULL;						\
	} while (0)

/* The end of a line at p: CRLF or a lone LF (9112 2.2); a bare CR is 400. */
static const char *
parse_eol(const char *p, const char *end, struct perr *e, const char *why)
{
	NEED(1);
	if (*p == '\n')
		return p + 1;
	if (*p != '\r')
		BAD(400, why);
	NEED(2);
	if (p[1] != '\n')
		BAD(400, "bare CR");
	return p + 2;
}

/* "HTTP/1." DIGIT into *minor; another major is 505. */
static const char *
parse_version(const char *p, const char *end, int *minor, struct perr *e)
{
	size_t	 i;

	for (i = 0; i < 8; i++) {
		NEED(i + 1);
		if (i < 5 ? p[i] != "HTTP/"[i] :
		    i == 6 ? p[i] != '.' : (p[i] < '0' || p[i] > '9'))
			BAD(400, "invalid HTTP version");
	}
	if (p[5] != '1')
		BAD(505, "HTTP version not supported");
	*minor = p[7] - '0';
	return p + 8;
}

/*
 * The path and query of a target t[0..te): origin-form, asterisk-form or
 * absolute-form (9112 3.2), of which only the path and query are kept.
 */
static int
split_target(const char *t, const char *te, struct http_request *r)
{
	const char	*q;

	if (*t == '*' && te - t == 1) {
		r->path = t;
		r->path_len = 1;
		return 0;
	}
	if (*t != '/') {
		if (te - t > 7 && http_ci_same(t, "http://", 7))
			t += 7;
		else if (te - t > 8 && http_ci_same(t, "https://", 8))
			t += 8;
		else
			return -1;
		while (t < te && *t != '/' && *t != '?')
			t++;
	}
	for (q = t; q < te && *q != '?'; q++)
		;
	if (q == t) {
		r->path = "/";	/* "http://host" or "http://host?q" */
		r->path_len = 1;
	} else {
		r->path = t;
		r->path_len = q - t;
	}
	if (q < te) {
		r->query = q + 1;
		r->query_len = te - q - 1;
	}
	return 0;
}

/* request-line = method SP request-target SP HTTP-version CRLF */
static const char *
parse_request_line(const char *p, const char *end, struct http_request *r,
    struct perr *e)
{
	const char	*start;

	/* Empty lines before the request line (RFC 9112 2.2). */
	for (;;) {
		NEED(1);
		if (*p != '\r' && *p != '\n')
			break;
		if ((p = parse_eol(p, end, e, "")) == NULL)
			return NULL;
	}
	start = p;
	while (p < end && is_tchar((unsigned char)*p))
		p++;
	NEED(1);
	if (*p != ' ' || p == start)
		BAD(400, "invalid method");
	r->method = start;
	r->method_len = p - start;
	start = ++p;
	while (p < end && (unsigned char)*p > ' ' && *p != 0x7f) {
		p++;
		if (p - start > HTTP_MAX_TARGET_BYTES)
			BAD(414, "request-target too long");
	}
	NEED(1);
	if (*p != ' ' || p == start || split_target(start, p, r) == -1)
		BAD(400, "invalid request-target");
	if ((p = parse_version(p + 1, end, &r->minor, e)) == NULL)
		return NULL;
	return parse_eol(p, end, e, "invalid request line");
}

/*
 * status-line = HTTP-version SP 3DIGIT SP [ reason-phrase ] CRLF (9112
 * 4). Like picohttpparser, a line that ends right after the code is taken
 * too. The reason is visible ASCII, SP, HT or obs-text.
 */
static const char *
parse_status_line(const char *p, const char *end, struct http_response *rs,
    struct perr *e)
{
	const char	*start;

	if ((p = parse_version(p, end, &rs->minor, e)) == NULL)
		return NULL;
	NEED(5);
	if (p[0] != ' ' || p[1] < '1' || p[1] > '5' || p[2] < '0' ||
	    p[2] > '9' || p[3] < '0' || p[3] > '9')
		BAD(400, "invalid status line");
	rs->status = (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0');
	p += 4;
	if (*p == ' ')
		p++;
	else if (*p != '\r' && *p != '\n')
		BAD(400, "invalid status line");
	start = p;
	while (p < end && *p != '\r' && *p != '\n') {
		if (((unsigned char)*p < ' ' && *p != '\t') || *p == 0x7f)
			BAD(400, "invalid character in reason phrase");
		p++;
	}
	rs->reason = start;
	rs->reason_len = p - start;
	return parse_eol(p, end, e, "invalid status line");
}

/*
 * field-line = field-name ":" OWS field-value OWS, each ending in CRLF
 * or LF, up to the empty line (9112 5). Fills hs[0..*n).
 */
static const char *
parse_headers(const char *p, const char *end, struct http_header *hs,
    size_t *n, struct perr *e)
{
	struct http_header	*h;
	const char		*start, *vs, *ve;

	for (;;) {
		NEED(1);
		if (*p == '\r' || *p == '\n')
			return parse_eol(p, end, e, "");
		if (*p == ' ' || *p == '\t')
			BAD(400, "obs-fold or whitespace before a field name");
		start = p;
		while (p < end && is_tchar((unsigned char)*p))
			p++;
		NEED(1);
		if (*p != ':') {
			if (*p == ' ' || *p == '\t')
				BAD(400, "whitespace before colon");
			BAD(400, "invalid header line");
		}
		if (p == start)
			BAD(400, "empty field name");
		if (*n == HTTP_MAX_HEADERS)
			BAD(431, "too many header fields");
		h = &hs[*n];
		h->name = start;
		h->name_len = p - start;
		p++;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		vs = p;
		while (p < end && *p != '\r' && *p != '\n') {
			if (((unsigned char)*p < ' ' && *p != '\t') ||
			    *p == 0x7f)
				BAD(400, "invalid character in field value");
			p++;
		}
		ve = p;
		if ((p = parse_eol(p, end, e, "")) == NULL)
			return NULL;
		while (ve > vs && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		h->value = vs;
		h->value_len = ve - vs;
		(*n)++;
	}
}

#undef NEED
#undef BAD

/*
 * The next element of a comma-separated list (RFC 9110 5.6.1) in
 * [*p, end), OWS trimmed; empty elements are skipped, as 5.6.1 asks.
 * Returns 0 at the end of the list.
 */
static int
next_token(const char **p, const char *end, const char **tok, size_t *len)
{
	const char	*s, *e, *comma;

	while (*p < end) {
		if ((comma = memchr(*p, ',', end - *p)) == NULL)
			comma = end;
		s = *p;
		e = comma;
		*p = comma < end ? comma + 1 : end;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e > s) {
			*tok = s;
			*len = e - s;
			return 1;
		}
	}
	return 0;
}

/*
 * Content-Length, as a list of one or more equal values (RFC 9110 8.6).
 * Sets *v on the first call (*v == -1) or checks equality after. Returns 0,
 * or -1 if any element is not plain digits, overflows, or differs.
 */
static int
parse_cl(const char *s, size_t len, int64_t *v)
{
	size_t	 i = 0, digits;
	int64_t	 n;

	for (;;) {
		while (i < len && (s[i] == ' ' || s[i] == '\t'))
			i++;
		n = 0;
		digits = 0;
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			if (n > (INT64_MAX - (s[i] - '0')) / 10)
				return -1;
			n = n * 10 + (s[i] - '0');
			digits++;
			i++;
		}
		if (digits == 0)
			return -1;
		if (*v != -1 && *v != n)
			return -1;
		*v = n;
		while (i < len && (s[i] == ' ' || s[i] == '\t'))
			i++;
		if (i == len)
			return 0;
		if (s[i] != ',')
			return -1;
		i++;
	}
}

/* What the fields that frame a message and steer its connection said. */
struct framing {
	int64_t		 cl;		/* -1 if absent */
	int		 cl_seen;
	int		 te_seen;
	int		 te_unknown;
	int		 chunked;
	int		 close_tok;
	int		 ka_tok;
};

/*
 * Note h in f if it is Content-Length, Transfer-Encoding or Connection:
 * requests and answers are framed by the same code. Returns 1 if it was
 * one of those, 0 if not, -1 with e set (400) if it is malformed.
 */
static int
frame_field(struct framing *f, const struct http_header *h, struct perr *e)
{
	const char	*t, *tok, *vend = h->value + h->value_len;
	size_t		 tlen, ntok = 0;

	if (ci_eq(h->name, h->name_len, "content-length")) {
		f->cl_seen = 1;
		if (parse_cl(h->value, h->value_len, &f->cl) == 0)
			return 1;
		e->why = "invalid Content-Length";
	} else if (ci_eq(h->name, h->name_len, "connection")) {
		for (t = h->value; next_token(&t, vend, &tok, &tlen); ) {
			if (ci_eq(tok, tlen, "close"))
				f->close_tok = 1;
			else if (ci_eq(tok, tlen, "keep-alive"))
				f->ka_tok = 1;
		}
		return 1;
	} else if (ci_eq(h->name, h->name_len, "transfer-encoding")) {
		f->te_seen = 1;
		for (t = h->value; next_token(&t, vend, &tok, &tlen); ntok++) {
			if (f->chunked) {	/* 9112 6.1: only last, once */
				e->status = 400;
				e->why = "chunked is not the last coding";
				return -1;
			}
			if (ci_eq(tok, tlen, "chunked"))
				f->chunked = 1;
			else
				f->te_unknown = 1;
		}
		if (ntok > 0)
			return 1;
		e->why = "empty Transfer-Encoding";
	} else
		return 0;
	e->status = 400;
	return -1;
}

/*
 * The framing fields together (9112 6.1, 6.3) in a message of HTTP/1.minor.
 * Returns whether the connection persists after it (9112 9.3), or -1 with
 * e set.
 */
static int
frame_check(const struct framing *f, int minor, struct perr *e)
{
	e->status = 400;
	if (f->cl_seen && f->te_seen)
		e->why = "both Content-Length and Transfer-Encoding";
	else if (f->te_seen && minor == 0)
		e->why = "Transfer-Encoding in HTTP/1.0";
	else if (f->te_unknown) {
		e->status = 501;
		e->why = "transfer coding not implemented";
	} else if (minor >= 1)
		return !f->close_tok;
	else
		return f->ka_tok && !f->close_tok;
	return -1;
}

/*
 * IP-literal = "[" ( IPv6address / IPvFuture ) "]" (RFC 3986 3.2.2), the
 * part between the brackets in s[0..len).
 */
static int
ip_literal(const char *s, size_t len)
{
	struct in6_addr	 a;
	char		 buf[INET6_ADDRSTRLEN];
	size_t		 i;

	if (len > 0 && (*s == 'v' || *s == 'V')) {
		/* IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ) */
		for (i = 1; i < len && hexval((unsigned char)s[i]) != -1; i++)
			;
		if (i == 1 || i + 1 >= len || s[i] != '.')
			return 0;
		for (i++; i < len; i++)
			if (!is_regchar(s[i]) && s[i] != ':')
				return 0;
		return 1;
	}
	if (len == 0 || len >= sizeof(buf))
		return 0;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return inet_pton(AF_INET6, buf, &a) == 1;
}

/*
 * Is v[0..len) a Host value (RFC 9112 3.2): uri-host [ ":" port ], where
 * uri-host is an IP-literal or a reg-name (IPv4address is one) and port is
 * digits. The empty value is allowed (RFC 9110 7.2: a target without an
 * authority); an empty host before a port is not (9110 4.2.1).
 */
static int
valid_host(const char *v, size_t len)
{
	const char	*p = v, *end = v + len, *rb;

	if (len == 0)
		return 1;
	if (*p == '[') {
		if ((rb = memchr(p, ']', len)) == NULL ||
		    !ip_literal(p + 1, (size_t)(rb - p - 1)))
			return 0;
		p = rb + 1;
	} else {
		while (p < end && *p != ':') {
			if (*p == '%' && end - p >= 3 &&
			    hexval((unsigned char)p[1]) != -1 &&
			    hexval((unsigned char)p[2]) != -1)
				p += 3;
			else if (is_regchar(*p))
				p++;
			else
				return 0;
		}
		if (p == v)
			return 0;
	}
	if (p == end)
		return 1;
	if (*p++ != ':')
		return 0;
	while (p < end && *p >= '0' && *p <= '9')
		p++;
	return p == end;
}

/* The fields of a parsed request head: framing, Host, Expect. */
static int
request_fields(struct http_request *r, struct perr *e)
{
	struct framing		 f;
	struct http_header	*h;
	size_t			 i;
	int			 hosts = 0, exp_100 = 0, exp_other = 0, rc;

	memset(&f, 0, sizeof(f));
	f.cl = -1;
	for (i = 0; i < r->nheaders; i++) {
		h = &r->headers[i];
		if ((rc = frame_field(&f, h, e)) == -1)
			return -1;
		if (rc == 1)
			continue;
		if (ci_eq(h->name, h->name_len, "host")) {
			if (!valid_host(h->value, h->value_len)) {
				e->status = 400;
				e->why = "invalid Host";
				return -1;
			}
			hosts++;
		} else if (ci_eq(h->name, h->name_len, "expect")) {
			if (ci_eq(h->value, h->value_len, "100-continue"))
				exp_100 = 1;
			else
				exp_other = 1;
		}
	}
	if ((r->keep_alive = frame_check(&f, r->minor, e)) == -1)
		return -1;
	r->content_length = f.cl;
	r->chunked = f.chunked;
	e->status = 400;
	if (hosts > 1)
		e->why = "duplicate Host";
	else if (hosts == 0 && r->minor >= 1)
		e->why = "missing Host";
	else if (r->minor >= 1 && exp_other) {
		e->status = 417;
		e->why = "expectation not supported";
	} else {
		r->expect_continue = r->minor >= 1 && exp_100;
		return 0;
	}
	return -1;
}

/*
 * The outcome of a head that did not parse: -2 if incomplete below the
 * head limit, else -1 with *status and *why.
 */
static int
parse_failed(const struct perr *e, size_t len, int *status,
    const char **why, const char *toolarge)
{
	if (e->status == 0 && len < HTTP_MAX_HEAD_BYTES)
		return -2;
	*status = e->status != 0 ? e->status : 431;
	*why = e->status != 0 ? e->why : toolarge;
	return -1;
}

int
http_parse(const char *buf, size_t len, struct http_request *r)
{
	struct perr	 e = { 0, NULL };
	const char	*p, *end;

	/*
	 * No stale field survives a -1 or -2. The 2 KiB of headers[] need no
	 * zeroing (nheaders bounds them) and cost more than the parse did.
	 */
	memset(r, 0, offsetof(struct http_request, headers));
	memset(&r->nheaders, 0, sizeof(*r) -
	    offsetof(struct http_request, nheaders));
	r->content_length = -1;
	/* Bytes past the limit are never read: running out there is 431. */
	end = buf + (len < HTTP_MAX_HEAD_BYTES ? len : HTTP_MAX_HEAD_BYTES);
	if ((p = parse_request_line(buf, end, r, &e)) == NULL ||
	    (p = parse_headers(p, end, r->headers, &r->nheaders, &e)) == NULL)
		return parse_failed(&e, len, &r->status, &r->error,
		    "request head too large");
	if (request_fields(r, &e) == -1) {
		r->status = e.status;
		r->error = e.why;
		return -1;
	}
	return (int)(p - buf);
}

int
http_parse_response(const char *buf, size_t len, struct http_response *rs)
{
	struct perr	 e = { 0, NULL };
	struct framing	 f;
	const char	*p, *end;
	size_t		 i;
	int		 status = 0;

	memset(rs, 0, offsetof(struct http_response, headers));
	memset(&rs->nheaders, 0, sizeof(*rs) -
	    offsetof(struct http_response, nheaders));
	rs->content_length = -1;
	end = buf + (len < HTTP_MAX_HEAD_BYTES ? len : HTTP_MAX_HEAD_BYTES);
	if ((p = parse_status_line(buf, end, rs, &e)) == NULL ||
	    (p = parse_headers(p, end, rs->headers, &rs->nheaders, &e)) ==
	    NULL)
		return parse_failed(&e, len, &status, &rs->error,
		    "answer head too large");
	memset(&f, 0, sizeof(f));
	f.cl = -1;
	for (i = 0; i < rs->nheaders; i++)
		if (frame_field(&f, &rs->headers[i], &e) == -1) {
			rs->error = e.why;
			return -1;
		}
	if ((rs->keep_alive = frame_check(&f, rs->minor, &e)) == -1) {
		rs->error = e.why;
		return -1;
	}
	rs->chunked = f.chunked;
	rs->content_length = f.cl;
	if ((rs->status >= 100 && rs->status < 200) || rs->status == 204 ||
	    rs->status == 304) {
		rs->chunked = 0;	/* 9112 6.3: never a body */
		rs->content_length = 0;
	} else if (!rs->chunked && rs->content_length == -1)
		rs->keep_alive = 0;	/* the body ends at EOF */
	return (int)(p - buf);
}

/* ---- Chunked bodies ---- */

/*
 * One byte of a chunk-size line: 1 to 16 hex digits, BWS, extensions,
 * CRLF (9112 7.1; a bare LF is refused here, unlike in the head, since
 * 2.2's leniency is for the start line and fields, and a parser that
 * takes it where another does not is how chunk smuggling starts). Returns
 * 0, 1 at the end of the line, -1 if malformed.
 */
static int
size_byte(struct http_chunk_state *st, int ch)
{
	int	 d;

	switch (st->phase) {
	case CH_SIZE:
		if ((d = hexval(ch)) != -1) {
			if (st->linelen == MAX_CHUNK_DIGITS)
				return -1;
			st->remaining = st->remaining << 4 | (uint64_t)d;
			st->linelen++;
			return 0;
		}
		if (st->linelen == 0)
			return -1;	/* whitespace or garbage */
		if (ch == ';')
			st->phase = CH_EXT;
		else if (ch == ' ' || ch == '\t')
			st->phase = CH_SIZE_WS;
		else if (ch == '\r')
			st->phase = CH_SIZE_LF;
		else
			return -1;
		return 0;
	case CH_SIZE_WS:
		if (ch == ';')
			st->phase = CH_EXT;
		else if (ch != ' ' && ch != '\t')
			return -1;
		return ++st->linelen > MAX_CHUNK_LINE ? -1 : 0;
	case CH_EXT:
		if (ch == '\r')
			st->phase = CH_SIZE_LF;
		else if ((ch < ' ' && ch != '\t') || ch == 0x7f ||
		    ++st->linelen > MAX_CHUNK_LINE)
			return -1;
		return 0;
	default:	/* CH_SIZE_LF */
		return ch == '\n' ? 1 : -1;
	}
}

/*
 * One byte of the trailer section: field lines (a token name, a colon,
 * a value without CTLs; a line without a colon is refused) up to an empty
 * line, each ending in CRLF or LF as head fields do, and discarded.
 * remaining counts its bytes, at most HTTP_MAX_HEAD_BYTES. Returns 0, 1 at
 * its end, -1 if malformed.
 */
static int
trailer_byte(struct http_chunk_state *st, int ch)
{
	int	 in_name = st->phase == CH_TRAILER && st->linelen > 0;

	if (ch == '\n') {
		if (in_name)
			return -1;	/* a name and no colon */
		if (st->linelen == 0)
			return 1;
		st->linelen = 0;
		st->phase = CH_TRAILER;
	} else if (st->phase == CH_TRAILER_LF)
		return -1;
	else if (ch == '\r') {
		if (in_name)
			return -1;
		st->phase = CH_TRAILER_LF;
	} else if (st->phase == CH_TRAILER) {
		if (ch == ':' && st->linelen > 0)
			st->phase = CH_TRAILER_VAL;
		else if (!is_tchar(ch))
			return -1;	/* whitespace, obs-fold, empty name */
		st->linelen++;
	} else if ((ch < ' ' && ch != '\t') || ch == 0x7f)
		return -1;
	else
		st->linelen++;
	return ++st->remaining > HTTP_MAX_HEAD_BYTES ? -1 : 0;
}

/* One byte outside chunk data: 0, 1 at the body's end, -1, or -2 (413). */
static int
chunk_byte(struct http_chunk_state *st, int ch)
{
	int	 rc;

	switch (st->phase) {
	case CH_DATA_CR:	/* the CRLF after data, strictly as above */
		if (ch != '\r')
			return -1;
		st->phase = CH_DATA_LF;
		return 0;
	case CH_DATA_LF:
		if (ch != '\n')
			return -1;
		st->phase = CH_SIZE;
		st->linelen = 0;
		st->remaining = 0;
		return 0;
	case CH_TRAILER:
	case CH_TRAILER_VAL:
	case CH_TRAILER_LF:
		if ((rc = trailer_byte(st, ch)) == 1)
			st->phase = CH_DONE;
		return rc;
	default:
		if ((rc = size_byte(st, ch)) != 1)
			return rc;
		st->linelen = 0;
		if (st->remaining == 0) {
			st->phase = CH_TRAILER;	/* remaining counts it */
			return 0;
		}
		if (st->remaining > st->max - st->total)
			return -2;
		st->phase = CH_DATA;
		return 0;
	}
}

int
http_dechunk(struct http_chunk_state *st, const char *buf, size_t len,
    char *dst, size_t *consumed, size_t *out)
{
	size_t		 i = 0, o = 0, n;
	int		 ret = 0;

	while (i < len && ret == 0 && st->phase != CH_DONE) {
		if (st->phase != CH_DATA) {
			if ((ret = chunk_byte(st, (unsigned char)buf[i])) >= 0)
				i++;
			continue;
		}
		n = len - i;
		if (n > st->remaining)
			n = (size_t)st->remaining;
		memmove(dst + o, buf + i, n);	/* dst may be buf */
		i += n;
		o += n;
		st->remaining -= n;
		st->total += n;
		if (st->remaining == 0)
			st->phase = CH_DATA_CR;
	}
	if (st->phase == CH_DONE)
		ret = 1;
	*consumed = i;
	*out = o;
	return ret;
}

/* ---- Request helpers ---- */

ssize_t
http_unescape(const char *src, size_t len, char *dst)
{
	size_t	 i, o = 0;
	int	 hi, lo;

	for (i = 0; i < len; i++) {
		if (src[i] == '\0')
			return -1;
		if (src[i] != '%') {
			dst[o++] = src[i];
			continue;
		}
		if (len - i < 3 ||
		    (hi = hexval((unsigned char)src[i + 1])) == -1 ||
		    (lo = hexval((unsigned char)src[i + 2])) == -1)
			return -1;
		if (hi == 0 && lo == 0)
			return -1;	/* a NUL would cut the key short in C */
		dst[o++] = (char)(hi << 4 | lo);
		i += 2;
	}
	return (ssize_t)o;
}

const char *
http_header(const struct http_request *r, const char *name, size_t *len)
{
	size_t	 i, n;

	/* No strlen(name): a PUT looks up eight names, and most differ
	 * from a header at its first byte. A header name has no NUL, so
	 * http_ci_same stops at name's end if name is shorter. */
	for (i = 0; i < r->nheaders; i++) {
		n = r->headers[i].name_len;
		if (http_ci_same(r->headers[i].name, name, n) &&
		    name[n] == '\0') {
			if (len != NULL)
				*len = r->headers[i].value_len;
			return r->headers[i].value;
		}
	}
	return NULL;
}

const char *
http_query(const struct http_request *r, const char *name, size_t *len)
{
	const char	*p, *end, *amp, *eq;
	size_t		 nlen = strlen(name);

	if (r->query == NULL)
		return NULL;
	end = r->query + r->query_len;
	for (p = r->query; p <= end; p = amp + 1) {
		if ((amp = memchr(p, '&', end - p)) == NULL)
			amp = end;
		if ((eq = memchr(p, '=', amp - p)) == NULL)
			eq = amp;
		if ((size_t)(eq - p) == nlen && memcmp(p, name, nlen) == 0) {
			if (len != NULL)
				*len = eq == amp ? 0 : (size_t)(amp - eq - 1);
			return eq == amp ? amp : eq + 1;
		}
		if (amp == end)
			break;
	}
	return NULL;
}

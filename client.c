/*
 * client.c: the blocking HTTP/1.1 client that the replication threads and
 * the command-line client share. A struct client holds one URL's
 * connection, its read buffer and the last answer; it resolves the host
 * on every connect (pod addresses change) and keeps the connection alive
 * until the server or an error closes it. Requests may be pipelined:
 * answers are read back in order.
 *
 * Why blocking, as Redis syncio.c: each caller has a strictly sequential
 * conversation on its own thread (or process), so a blocking call with a
 * timeout on every step is the whole state machine. Connect is a
 * non-blocking connect(2) and poll(2) within the timeout; sends and
 * receives time out through SO_SNDTIMEO and SO_RCVTIMEO, reported as
 * ETIMEDOUT.
 *
 * Answers are parsed by http.c's http_parse_response, the same field code
 * that parses requests (picohttpparser's split). A body is framed by
 * Content-Length, chunked (http_dechunk) or the end of the connection,
 * and never grows past the bound the caller gives. The head of the last
 * answer is copied aside so that client_header works while its body is
 * read.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "client.h"
#include "fmt.h"
#include "parse.h"
#include "resolve.h"
#include "util.h"

#define READ_CHUNK	65536		/* the read buffer's first size */
#define ERR_MAX		256
#define DEF_TIMEOUT_MS	5000
#define REQ_SLACK	96	/* request line and fields around the parts */
#define MAX_INFLIGHT	64		/* pipelined; the bits of c_heads */

struct client {
	int		 c_fd;
	int		 c_timeout;	/* ms */
	int		(*c_hook)(void *, int);
	void		*c_arg;
	char		*c_host;	/* for resolve_host */
	char		 c_port[6];
	int		 c_portnum;
	char		*c_hosthdr;	/* the Host field's value */

	char		*c_buf;		/* read, not consumed: [c_off, c_len) */
	size_t		 c_cap;
	size_t		 c_off;
	size_t		 c_len;
	char		*c_req;		/* the request head being sent */
	size_t		 c_reqcap;
	unsigned	 c_inflight;	/* requests sent, not answered */
	uint64_t	 c_heads;	/* bit i: the i-th of them is HEAD */

	char		 c_head[HTTP_MAX_HEAD_BYTES];	/* the last answer's */
	struct http_response c_rs;	/* parsed from c_head */
	char		*c_body;
	size_t		 c_bodycap;
	char		 c_err[ERR_MAX];
};

static int	 fail(struct client *, int, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

/* ---- Errors ---- */

/* Note why, close the connection, set errno; returns -1. */
static int
fail(struct client *c, int err, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	(void)fmt_vbuf(c->c_err, sizeof(c->c_err), fmt, ap);
	va_end(ap);
	client_close(c);
	errno = err;
	return -1;
}

/* errno after a send or recv on a socket with a timeout. */
static int
io_errno(void)
{
	return errno == EAGAIN || errno == EWOULDBLOCK ? ETIMEDOUT : errno;
}

const char *
client_error(const struct client *c)
{
	return c->c_err;
}

/* ---- Set-up ---- */

/*
 * Split "http://host[:port][/]" (IPv6 literals in brackets) into c's
 * host, port (default 80) and Host value. Returns 0, or -1 with errno
 * EINVAL or ENOMEM.
 */
static int
url_split(struct client *c, const char *url)
{
	const char	*p = url, *h, *he, *pt = "80";
	size_t		 hl, pl = 2;
	uint64_t	 port = 80;

	errno = EINVAL;
	if (strncmp(p, "http://", 7) != 0)
		return -1;
	p += 7;
	if (*p == '[') {
		h = p + 1;
		if ((he = strchr(h, ']')) == NULL)
			return -1;
		p = he + 1;
	} else {
		h = p;
		while (*p != '\0' && *p != ':' && *p != '/')
			p++;
		he = p;
	}
	hl = (size_t)(he - h);
	if (*p == ':') {
		pt = p + 1;
		if ((p = parse_dec(pt, 65535, &port)) == NULL || port < 1 ||
		    p - pt > 5)
			return -1;
		pl = (size_t)(p - pt);
	}
	if (*p == '/')
		p++;
	if (*p != '\0' || hl == 0)
		return -1;
	errno = ENOMEM;
	if ((c->c_host = malloc(hl + 1)) == NULL ||
	    (c->c_hosthdr = malloc(hl + pl + 4)) == NULL)
		return -1;
	memcpy(c->c_host, h, hl);
	c->c_host[hl] = '\0';
	memcpy(c->c_port, pt, pl);
	c->c_port[pl] = '\0';
	c->c_portnum = (int)port;
	(void)fmt_buf(c->c_hosthdr, hl + pl + 4,
	    memchr(h, ':', hl) != NULL ? "[%s]:%s" : "%s:%s", c->c_host,
	    c->c_port);
	return 0;
}

struct client *
client_new(const char *url, int timeout_ms, int (*hook)(void *, int),
    void *arg)
{
	struct client	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->c_fd = -1;
	c->c_timeout = timeout_ms > 0 ? timeout_ms : DEF_TIMEOUT_MS;
	c->c_hook = hook;
	c->c_arg = arg;
	if (url_split(c, url) == -1) {
		client_free(c);	/* keeps errno */
		return NULL;
	}
	return c;
}

void
client_close(struct client *c)
{
	if (c->c_fd == -1)
		return;
	if (c->c_hook != NULL)
		(void)c->c_hook(c->c_arg, -1);	/* no reused fd for others */
	(void)close(c->c_fd);
	c->c_fd = -1;
	c->c_off = c->c_len = 0;
	c->c_inflight = 0;
	c->c_heads = 0;
}

void
client_free(struct client *c)
{
	int	 saved = errno;

	if (c == NULL)
		return;
	client_close(c);
	free(c->c_host);
	free(c->c_hosthdr);
	free(c->c_buf);
	free(c->c_req);
	free(c->c_body);
	free(c);
	errno = saved;
}

/* ---- Connecting ---- */

/* Connect fd to sa within the timeout; then the I/O timeouts. */
static int
dial(struct client *c, int fd, const struct sockaddr_storage *sa)
{
	struct pollfd	 pfd;
	struct timeval	 tv;
	socklen_t	 sl;
	int		 fl, one = 1, soerr = 0, rc;

	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
		return fail(c, errno, "fcntl: %s", errstr());
	sl = sa->ss_family == AF_INET ? sizeof(struct sockaddr_in) :
	    sizeof(struct sockaddr_in6);
	if (connect(fd, (const struct sockaddr *)sa, sl) == -1) {
		if (errno != EINPROGRESS && errno != EINTR)
			return fail(c, errno, "connect: %s", errstr());
		pfd.fd = fd;
		pfd.events = POLLOUT;
		while ((rc = poll(&pfd, 1, c->c_timeout)) == -1 &&
		    errno == EINTR)
			;
		if (rc == -1)
			return fail(c, errno, "poll: %s", errstr());
		if (rc == 0)
			return fail(c, ETIMEDOUT, "connect: timed out after "
			    "%d ms", c->c_timeout);
		sl = sizeof(soerr);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == -1)
			soerr = errno;
		if (soerr != 0)
			return fail(c, soerr, "connect: %s", strerror(soerr));
	}
	tv.tv_sec = c->c_timeout / 1000;
	tv.tv_usec = (c->c_timeout % 1000) * 1000;
	if (fcntl(fd, F_SETFL, fl) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1)
		return fail(c, errno, "socket options: %s", errstr());
	return 0;
}

int
client_resolve(const char *url, struct sockaddr_storage *out, int max)
{
	struct client	*c;
	int		 rc;

	if ((c = client_new(url, 0, NULL, NULL)) == NULL)
		return RESOLVE_ESYS;
	rc = resolve_host(c->c_host, c->c_portnum, out, max);
	client_free(c);
	return rc;
}

/*
 * Resolve the host again (an address is never cached) and connect to the
 * first address that answers.
 */
static int
connect_url(struct client *c)
{
	struct sockaddr_storage	 sa[RESOLVE_MAX];
	int			 fd, i, n;

	if ((n = resolve_host(c->c_host, c->c_portnum, sa, RESOLVE_MAX)) < 0)
		return fail(c, n == RESOLVE_ESYS ? errno : EADDRNOTAVAIL,
		    "resolve %s: %s", c->c_host, resolve_error(n));
	for (i = 0; i < n; i++) {
		if ((fd = socket(sa[i].ss_family, SOCK_STREAM, 0)) == -1) {
			(void)fail(c, errno, "socket: %s", errstr());
			continue;
		}
		if (c->c_hook != NULL && c->c_hook(c->c_arg, fd) == -1) {
			(void)close(fd);
			(void)fail(c, ECANCELED, "stopping");
			break;
		}
		c->c_fd = fd;
		if (dial(c, fd, &sa[i]) == 0)
			break;	/* dial closed it on failure */
	}
	return c->c_fd == -1 ? -1 : 0;
}

/* ---- Requests ---- */

/* All of iov[0..n) on the socket, or -1 with the connection closed. */
static int
send_iov(struct client *c, struct iovec *iov, int n)
{
	struct msghdr	 m;
	ssize_t		 w;

	while (n > 0) {
		memset(&m, 0, sizeof(m));
		m.msg_iov = iov;
		m.msg_iovlen = n;
		if ((w = sendmsg(c->c_fd, &m, MSG_NOSIGNAL)) == -1) {
			if (errno == EINTR)
				continue;
			return fail(c, io_errno(), "send: %s", io_errno() ==
			    ETIMEDOUT ? "timed out" : errstr());
		}
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

int
client_send(struct client *c, const struct client_request *rq)
{
	struct iovec	 iov[2];
	const char	*extra = rq->extra != NULL ? rq->extra : "";
	size_t		 need;
	int		 n, sized;
	char		*p;

	if (c->c_inflight == MAX_INFLIGHT)
		return fail(c, EBUSY, "over %d requests unanswered",
		    MAX_INFLIGHT);
	/* 9110 8.6: a length when there is a body or one is expected. */
	sized = rq->body_len > 0 || strcmp(rq->method, "PUT") == 0 ||
	    strcmp(rq->method, "POST") == 0;
	need = strlen(rq->method) + strlen(rq->target) +
	    strlen(c->c_hosthdr) + strlen(extra) + REQ_SLACK;
	if (need > c->c_reqcap) {
		if ((p = resize(c->c_req, c->c_reqcap, need)) == NULL)
			return fail(c, ENOMEM, "out of memory");
		c->c_req = p;
		c->c_reqcap = need;
	}
	n = fmt_buf(c->c_req, c->c_reqcap, "%s %s HTTP/1.%d\r\nHost: %s\r\n"
	    "%s", rq->method, rq->target, rq->http10 ? 0 : 1, c->c_hosthdr,
	    extra);
	if (sized)
		n += fmt_buf(c->c_req + n, c->c_reqcap - (size_t)n,
		    "Content-Length: %zu\r\n", rq->body_len);
	n += fmt_buf(c->c_req + n, c->c_reqcap - (size_t)n, "\r\n");
	if (c->c_fd == -1 && connect_url(c) == -1)
		return -1;
	iov[0].iov_base = c->c_req;
	iov[0].iov_len = (size_t)n;
	iov[1].iov_base = (void *)(uintptr_t)rq->body;
	iov[1].iov_len = rq->body_len;
	if (send_iov(c, iov, rq->body_len > 0 ? 2 : 1) == -1)
		return -1;
	if (strcmp(rq->method, "HEAD") == 0)
		c->c_heads |= (uint64_t)1 << c->c_inflight;
	c->c_inflight++;
	return 0;
}

/* ---- Answers ---- */

/* Room for need unread bytes in c_buf, moving them to its start. */
static int
reserve(struct client *c, size_t need)
{
	size_t	 ncap;
	char	*nb;

	if (c->c_off > 0) {
		memmove(c->c_buf, c->c_buf + c->c_off, c->c_len - c->c_off);
		c->c_len -= c->c_off;
		c->c_off = 0;
	}
	if (need <= c->c_cap)
		return 0;
	ncap = c->c_cap * 2 > need ? c->c_cap * 2 : need;
	if (ncap < READ_CHUNK)
		ncap = READ_CHUNK;
	if ((nb = resize(c->c_buf, c->c_cap, ncap)) == NULL)
		return fail(c, ENOMEM, "out of memory for %zu bytes", need);
	c->c_buf = nb;
	c->c_cap = ncap;
	return 0;
}

/* recv into dst[0..cap): bytes read, 0 at EOF, -1 with the conn closed. */
static ssize_t
recv_some(struct client *c, char *dst, size_t cap)
{
	ssize_t	 n;

	while ((n = recv(c->c_fd, dst, cap, 0)) == -1 && errno == EINTR)
		;
	if (n == -1)
		return fail(c, io_errno(), "recv: %s", io_errno() ==
		    ETIMEDOUT ? "timed out" : errstr());
	return n;
}

/* Read more into c_buf: bytes read, 0 at EOF, -1. */
static ssize_t
fill(struct client *c)
{
	ssize_t	 n;

	if ((c->c_len == c->c_cap || c->c_cap == 0) &&
	    reserve(c, c->c_len - c->c_off + READ_CHUNK) == -1)
		return -1;
	if ((n = recv_some(c, c->c_buf + c->c_len, c->c_cap - c->c_len)) > 0)
		c->c_len += (size_t)n;
	return n;
}

/*
 * Read and parse the next final answer's head into c_head and c_rs,
 * skipping interim (1xx) answers; c_off moves past it.
 */
static int
read_head(struct client *c)
{
	ssize_t	 got;
	int	 n;

	if (c->c_fd == -1)
		return fail(c, ECONNRESET, "connection closed before an "
		    "answer");
	if (c->c_inflight == 0)
		return fail(c, EINVAL, "no request to answer");
	for (;;) {
		n = http_parse_response(c->c_buf + c->c_off,
		    c->c_len - c->c_off, &c->c_rs);
		if (n == -1)
			return fail(c, EPROTO, "bad answer: %s",
			    c->c_rs.error);
		if (n == -2) {
			if ((got = fill(c)) == -1)
				return -1;
			if (got == 0)
				return fail(c, ECONNRESET, "connection closed "
				    "before an answer");
			continue;
		}
		if (c->c_rs.status == 101)
			return fail(c, EPROTO, "bad answer: 101 to no "
			    "Upgrade");
		if (c->c_rs.status >= 200) {
			/* Its fields must outlive c_buf's moves. */
			memcpy(c->c_head, c->c_buf + c->c_off, (size_t)n);
			(void)http_parse_response(c->c_head, (size_t)n,
			    &c->c_rs);
			c->c_off += (size_t)n;
			return 0;
		}
		c->c_off += (size_t)n;
	}
}

/* Make room in c_body for n bytes and a NUL. */
static int
body_room(struct client *c, size_t n)
{
	size_t	 cap;
	char	*p;

	if (n + 1 <= c->c_bodycap)
		return 0;
	cap = c->c_bodycap * 2 > n + 1 ? c->c_bodycap * 2 : n + 1;
	if ((p = resize(c->c_body, c->c_bodycap, cap)) == NULL)
		return fail(c, ENOMEM, "out of memory for a %zu-byte answer",
		    n);
	c->c_body = p;
	c->c_bodycap = cap;
	return 0;
}

/* A body of exactly want bytes: what is buffered, then straight in. */
static int
read_sized(struct client *c, size_t want)
{
	size_t	 have = c->c_len - c->c_off, len;
	ssize_t	 n;

	if (have > want)
		have = want;
	if (body_room(c, want) == -1)
		return -1;
	memcpy(c->c_body, c->c_buf + c->c_off, have);
	c->c_off += have;
	for (len = have; len < want; len += (size_t)n) {
		if ((n = recv_some(c, c->c_body + len, want - len)) == -1)
			return -1;
		if (n == 0)
			return fail(c, ECONNRESET, "connection closed "
			    "mid-answer");
	}
	c->c_body[want] = '\0';
	return 0;
}

/*
 * A body that ends at EOF, at most max bytes: read whole into c_buf,
 * stopping one read past max, then copied out.
 */
static int
read_to_eof(struct client *c, size_t max, size_t *len)
{
	ssize_t	 n;

	for (;;) {
		if (c->c_len - c->c_off > max)
			return fail(c, EMSGSIZE, "answer body over %zu bytes",
			    max);
		if ((n = fill(c)) == -1)
			return -1;
		if (n == 0)
			break;
	}
	*len = c->c_len - c->c_off;
	if (body_room(c, *len) == -1)
		return -1;
	memcpy(c->c_body, c->c_buf + c->c_off, *len);
	c->c_body[*len] = '\0';
	client_close(c);	/* EOF ended it */
	return 0;
}

/* A chunked body decoded into c_body, at most max bytes. */
static int
read_chunked(struct client *c, size_t max, size_t *len)
{
	struct http_chunk_state	 st;
	size_t			 used, made, have;
	ssize_t			 got;
	int			 rc;

	memset(&st, 0, sizeof(st));
	st.max = max;
	*len = 0;
	for (;;) {
		have = c->c_len - c->c_off;
		if (body_room(c, *len + (have < max - *len ? have :
		    max - *len)) == -1)
			return -1;
		rc = http_dechunk(&st, c->c_buf + c->c_off, have,
		    c->c_body + *len, &used, &made);
		c->c_off += used;
		*len += made;
		if (rc == 1)
			break;
		if (rc == -2)
			return fail(c, EMSGSIZE, "answer body over %zu bytes",
			    max);
		if (rc == -1)
			return fail(c, EPROTO, "bad answer: invalid chunked "
			    "body");
		if ((got = fill(c)) == -1)
			return -1;
		if (got == 0)
			return fail(c, ECONNRESET, "connection closed "
			    "mid-answer");
	}
	c->c_body[*len] = '\0';
	return 0;
}

/* The answer's body into c_body, by its framing. */
static int
read_body(struct client *c, int head, size_t max, size_t *len)
{
	const struct http_response	*rs = &c->c_rs;

	if (head || rs->content_length == 0) {
		*len = 0;
		if (body_room(c, 0) == -1)
			return -1;
		c->c_body[0] = '\0';
		return 0;
	}
	if (rs->chunked)
		return read_chunked(c, max, len);
	if (rs->content_length == -1)
		return read_to_eof(c, max, len);
	if ((uint64_t)rs->content_length > max)
		return fail(c, EMSGSIZE, "answer body of %lld bytes is over "
		    "%zu", (long long)rs->content_length, max);
	*len = (size_t)rs->content_length;
	return read_sized(c, *len);
}

/* The oldest request is answered: was it HEAD? */
static int
answered(struct client *c)
{
	int	 head = (int)(c->c_heads & 1);

	c->c_heads >>= 1;
	c->c_inflight--;
	return head;
}

int
client_recv(struct client *c, struct client_response *rs, size_t max)
{
	int	 head;

	memset(rs, 0, sizeof(*rs));
	if (read_head(c) == -1)
		return -1;
	head = answered(c);
	if (read_body(c, head, max, &rs->body_len) == -1)
		return -1;
	rs->status = c->c_rs.status;
	rs->body = c->c_body;
	if (!c->c_rs.keep_alive)
		client_close(c);
	return 0;
}

int
client_call(struct client *c, const struct client_request *rq,
    struct client_response *rs, size_t max)
{
	if (client_send(c, rq) == -1)
		return -1;
	return client_recv(c, rs, max);
}

int
client_recv_head(struct client *c, struct client_response *rs)
{
	memset(rs, 0, sizeof(*rs));
	if (read_head(c) == -1)
		return -1;
	(void)answered(c);
	rs->status = c->c_rs.status;
	rs->body = "";
	return 0;
}

ssize_t
client_peek(struct client *c, size_t want, const char **p)
{
	ssize_t	 n;

	if (c->c_fd == -1)
		return fail(c, ENOTCONN, "not connected");
	while (c->c_len - c->c_off < want) {
		if (c->c_cap - c->c_off < want && reserve(c, want) == -1)
			return -1;
		if ((n = fill(c)) == -1)
			return -1;
		if (n == 0)
			break;
	}
	*p = c->c_buf + c->c_off;
	return (ssize_t)(c->c_len - c->c_off);
}

void
client_consume(struct client *c, size_t n)
{
	if (n > c->c_len - c->c_off)
		n = c->c_len - c->c_off;
	c->c_off += n;
}

const char *
client_header(const struct client *c, const char *name, size_t *len)
{
	const struct http_header	*h;
	size_t				 i, nlen = strlen(name);

	for (i = 0; i < c->c_rs.nheaders; i++) {
		h = &c->c_rs.headers[i];
		if (h->name_len == nlen &&
		    http_ci_same(h->name, name, nlen)) {
			if (len != NULL)
				*len = h->value_len;
			return h->value;
		}
	}
	return NULL;
}

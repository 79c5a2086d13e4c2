/*
 * http.c: kvstore's HTTP/1.1 server. One thread runs one poll() loop over the
 * listening socket, a self-pipe (http_wake, http_stop), the fds the program
 * watches (http_watch) and every client connection. Connections live in a
 * table indexed by fd; each owns an input buffer (the request being parsed,
 * its body, and pipelined bytes after it) and an output buffer (responses
 * queued in order, written with one send() per loop pass). Heads and
 * chunked bodies are parsed by parse.c, which is pure.
 * The module never knows what a key is: the program's handler answers each
 * request, at once or later (deferred) through the request's id.
 */

/*
 * What the server does with parsed requests (parse.c has the grammar).
 *
 * - Connection: "close" ends the connection after the response; HTTP/1.0
 *   persists only with "keep-alive", echoed back (9112 9.3). Expect:
 *   "100-continue" on 1.1 gets an interim 100 when the body has not arrived
 *   yet; another expectation is 417; on 1.0 expectations are ignored (9110
 *   10.1.1).
 * - The program's admit callback sees each head before any 100 Continue
 *   or body byte, and may answer it (401, 403, 413) instead of the
 *   handler; a body still to come is then never read (the answer closes).
 * - A body over max_body (or what body_limit says for the request) gets
 *   413: at once from Content-Length, or while decoding chunks. After any error answered here (400, 408, 413, 414,
 *   417, 431, 501, 503, 505) the response says Connection: close and the
 *   connection closes gracefully: send, shutdown(SHUT_WR), read and discard
 *   for up to LINGER_MS, close (9112 9.6), so that the client reads the
 *   error instead of a reset.
 * - Responses are HTTP/1.1 with Date, Server, X-Content-Type-Options:
 *   nosniff with every Content-Type, and Content-Length (none for
 *   204 and 304), or chunked from http_stream (to a 1.0 client: no length,
 *   then close). HEAD gets the head GET would get. Pipelined requests are
 *   answered in order (9112 9.3.2): the next is parsed only once the
 *   previous reply is fully queued. A body from http_reply_file is not
 *   queued: sendfile(2) moves it from the page cache to the socket after
 *   the head, so a big value costs no buffer and no copy here.
 * - Output is bounded per connection: with more than OUT_HIGH (256 KiB) of
 *   answers waiting to be sent, its input is neither parsed nor read (no
 *   POLLIN) until the client has read them below that. A client that sends
 *   requests and never reads costs OUT_HIGH plus one answer, the input limit
 *   of its state and what the kernel's socket buffers take, until the send
 *   timeout below closes it.
 * - A half-close (the client's FIN after its requests) is not an abort:
 *   every request read is answered, a deferred answer too, then the server
 *   closes. TCP cannot tell it from a client that went away; that one is
 *   seen when its answer is sent (or poll says POLLHUP), so a request
 *   waiting for its answer keeps the connection until its wait ends.
 * - Timeouts (9112 9.5): the whole head must arrive within
 *   header_timeout_ms of its first byte (408; slowloris), body bytes within
 *   body_timeout_ms of each other (408), the next request within
 *   idle_timeout_ms (silent close), and a client must accept some output
 *   every idle_timeout_ms.
 */

#include <sys/types.h>
#include <sys/sendfile.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

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

#include "fmt.h"
#include "parse.h"
#include "http.h"
#include "util.h"

#define IN_INIT		2048	/* curl's and wrk's heads fit; grows as needed */
#define IN_SLACK	4096	/* room to read pipelined bytes with a body */
#define IN_KEEP		65536	/* shrink a buffer above this once idle */
#define IN_KEEP_MS	1000	/* for this long after its last request */
#define OUT_HIGH	(256 * 1024)	/* stop reading with this much queued */
#define STREAM_LOW	(64 * 1024)	/* refill a stream below this */
#define STREAM_PIECE	16384	/* one producer call, one chunk */
#define FILE_PIECE	(1024 * 1024)	/* at most per sendfile call */
#define CHUNK_HDR	18	/* 16 hex digits + CRLF */
#define LINGER_MS	2000	/* discard input this long after our FIN */
#define TICK_MS		10	/* cfg->tick cadence and timer resolution */
#define PAUSE_MS	100	/* listener rest after EMFILE/ENFILE */
#define WARN_EVERY_MS	1000	/* accept errors come in floods */
#define ACCEPT_BATCH	64	/* accepts per pass, so reads are not starved */
#define TURN_NS		2000000	/* requests dispatched per pass, then poll
				   again: a request waits about this long
				   behind others, whatever each one costs */
#define LISTEN_BACKLOG	511	/* Redis's, nginx's; Linux caps: somaxconn */
#define MAX_WATCHES	16

/* Defaults for zero fields of struct http_config. */
#define DEF_MAX_CONNS	1024
#define DEF_MAX_BODY	(1024 * 1024)
#define DEF_HEADER_MS	10000
#define DEF_BODY_MS	30000
#define DEF_IDLE_MS	60000
#define DEF_DRAIN_MS	10000

enum state {
	S_HEAD,		/* reading or parsing a request head */
	S_BODY,		/* reading the body of c_req */
	S_WAIT,		/* the handler has the request; no reply yet */
	S_STREAM,	/* http_stream's producer is filling c_out */
	S_FILE,		/* http_reply_file's body follows c_out */
	S_CLOSING,	/* no more requests: flush c_out, then half-close */
	S_LINGER,	/* half-closed: discard input until EOF or LINGER_MS */
	S_DEAD		/* to be closed by the loop (c_why says why) */
};

struct conn {
	int		 c_fd;
	enum state	 c_state;
	uint32_t	 c_gen;		/* of the request in S_WAIT; in r.id */
	int		 c_live;	/* counted against max_conns */
	const char	*c_why;		/* close reason, once decided */

	char		*c_in;
	size_t		 c_incap;
	size_t		 c_inoff;	/* start of the current request */
	size_t		 c_inlen;	/* end of the bytes read */
	int		 c_rdeof;
	int		 c_inpause;	/* no memory to read; until answered */
	unsigned	 c_inmoves;	/* times c_in's bytes moved */
	unsigned	 c_parsedat;	/* c_inmoves when c_req was parsed */

	char		*c_out;
	size_t		 c_outcap;
	size_t		 c_outoff;	/* first byte not yet sent */
	size_t		 c_outlen;
	int		 c_file;	/* S_FILE: the body's file, or -1 */
	off_t		 c_fileoff;
	size_t		 c_fileleft;

	struct http_request c_req;
	size_t		 c_headlen;
	size_t		 c_maxbody;	/* this request's body limit */
	size_t		 c_reqlen;	/* head + body bytes, from c_inoff */
	size_t		 c_bodylen;	/* decoded so far (chunked) */
	struct http_chunk_state c_chunk;
	int		 c_minor;
	int		 c_head_only;	/* a HEAD request: no body in replies */
	int		 c_method;	/* index into method_names, for metrics */
	uint64_t	 c_t0;		/* ns when the head was parsed */
	int		 c_keepalive;
	int		 c_more;	/* input may hold a request to parse */
	int		 c_served;	/* requests answered so far */

	http_producer	*c_fn;
	void		*c_fnarg;
	int		 c_chunked;	/* stream framing; else close at end */

	int64_t		 c_t_head;	/* first byte of this head, or -1 */
	int64_t		 c_t_read;	/* last body bytes */
	int64_t		 c_t_idle;	/* last request finished */
	int64_t		 c_t_write;	/* last output progress */
	int64_t		 c_t_linger;
};

struct watch {
	int		 w_fd;
	void		(*w_fn)(void *);
	void		*w_arg;
};

static void	 accept_conns(void);
static int	 admit(struct conn *);
static void	 begin_close(struct conn *, const char *);
static int	 body_step(struct conn *);
static int	 build_pollfds(int *);
static struct conn *conn_by_id(uint64_t);
static void	 conn_close(struct conn *, const char *);
static void	 conn_open(int);
static void	 dispatch(struct conn *);
static void	 drain_start(void);
static int	 drain_step(void);
static void	 fill_stream(struct conn *);
static void	 finish_request(struct conn *);
static void	 flush_out(struct conn *);
static void	 handle_events(int, int);
static int	 head_step(struct conn *);
static int	 in_room(struct conn *);
static size_t	 in_limit(const struct conn *);
static void	 make_date(time_t);
static void	 new_id(struct conn *);
static int	 method_index(const struct http_request *);
static void	 count_reply(struct conn *, int);
static int	 open_listener(int, int);
static int	 out_append(struct conn *, const void *, size_t);
static size_t	 buf_pending(const struct conn *);
static size_t	 out_pending(const struct conn *);
static int	 send_file(struct conn *);
static int	 out_reserve(struct conn *, size_t);
static int	 poll_timeout(int64_t);
static int	 process(struct conn *);
static void	 read_conn(struct conn *);
static void	 run_conns(void);
static int	 reply_head(struct conn *, int, const char *, const char *,
		    const char *, size_t);
static void	 send_error(struct conn *, int, const char *);
static int	 set_nonblock(int);
static void	 timers(int64_t *);
static int	 wants_read(const struct conn *);

static struct http_config cfg;
static int	 lfd = -1;		/* listener; -1 once draining */
static int	 wake_rd = -1, wake_wr = -1;
static volatile sig_atomic_t stop_flag;
static int	 draining;
static int64_t	 drain_deadline;
static int64_t	 pause_until;		/* listener rests until then */
static int64_t	 warned_at = -1;	/* last accept warning */
static int	 unwarned;		/* accept errors not logged since */
static int64_t	 now;			/* this pass's monotonic ms */
static struct conn **conns;		/* by fd */
static int	 nslots;
static int	 nconns, nlive;
static uint32_t	 gen_seq;
static int	 work_pending;		/* a reply made a conn runnable */
static unsigned	 next_fd;		/* run_conns goes on there, modulo nslots */
static struct watch watches[MAX_WATCHES];
static int	 nwatches;
static struct pollfd *pfds;
static int	 npfds;
static time_t	 date_sec = -1;
static char	 date_buf[40];
static size_t	 date_len;

/* ---- Replies' words ---- */

const char *
http_reason(int status)
{
	/*
	 * Three digits and the phrase, each NUL-terminated, the last by the
	 * literal's own NUL too: a scan, where a switch took 660 bytes more
	 * of binary in jump tables; 200 is found second.
	 */
	static const char reasons[] =
	    "100Continue\0" "200OK\0" "201Created\0" "202Accepted\0"
	    "204No Content\0" "206Partial Content\0" "301Moved Permanently\0"
	    "302Found\0" "303See Other\0" "304Not Modified\0"
	    "307Temporary Redirect\0" "308Permanent Redirect\0"
	    "400Bad Request\0" "401Unauthorized\0" "403Forbidden\0"
	    "404Not Found\0" "405Method Not Allowed\0" "406Not Acceptable\0"
	    "408Request Timeout\0" "409Conflict\0" "410Gone\0"
	    "411Length Required\0" "412Precondition Failed\0"
	    "413Content Too Large\0" "414URI Too Long\0"
	    "415Unsupported Media Type\0" "416Range Not Satisfiable\0"
	    "417Expectation Failed\0" "422Unprocessable Content\0"
	    "425Too Early\0" "428Precondition Required\0"
	    "429Too Many Requests\0" "431Request Header Fields Too Large\0"
	    "500Internal Server Error\0" "501Not Implemented\0"
	    "502Bad Gateway\0" "503Service Unavailable\0"
	    "504Gateway Timeout\0" "505HTTP Version Not Supported\0"
	    "507Insufficient Storage\0";
	const char *p;

	for (p = reasons; *p != '\0'; p += strlen(p) + 1)
		if ((p[0] - '0') * 100 + (p[1] - '0') * 10 + p[2] - '0' ==
		    status)
			return p + 3;
	return "Unknown";
}

/* ---- Time ---- */

/* IMF-fixdate (RFC 9110 5.6.7), by hand so no locale can change it. */
static void
make_date(time_t t)
{
	static const char days[7][4] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
	};
	static const char months[12][4] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
	};
	struct tm	 tm;

	if (t == date_sec)
		return;
	date_sec = t;
	utc_time(t, &tm);
	date_len = (size_t)fmt_buf(date_buf, sizeof(date_buf),
	    "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7],
	    tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900,
	    tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (date_len >= sizeof(date_buf))
		date_len = sizeof(date_buf) - 1;
}

/* ---- Output ---- */

/* Bytes queued in c_out. */
static size_t
buf_pending(const struct conn *c)
{
	return c->c_outlen - c->c_outoff;
}

/* Bytes still to send: c_out and a file body after it. */
static size_t
out_pending(const struct conn *c)
{
	return buf_pending(c) + c->c_fileleft;
}

static int
out_reserve(struct conn *c, size_t n)
{
	size_t	 cap;
	char	*p;

	if (c->c_outcap - c->c_outlen >= n)
		return 0;
	if (c->c_outoff > 0) {
		memmove(c->c_out, c->c_out + c->c_outoff, buf_pending(c));
		c->c_outlen -= c->c_outoff;
		c->c_outoff = 0;
		if (c->c_outcap - c->c_outlen >= n)
			return 0;
	}
	cap = c->c_outcap ? c->c_outcap : 1024;
	while (cap - c->c_outlen < n)
		cap *= 2;
	if ((p = resize(c->c_out, c->c_outcap, cap)) == NULL)
		return -1;
	c->c_out = p;
	c->c_outcap = cap;
	return 0;
}

static int
out_append(struct conn *c, const void *p, size_t n)
{
	if (out_reserve(c, n) == -1)
		return -1;
	if (out_pending(c) == 0)
		c->c_t_write = now;	/* the stall clock starts now */
	if (n > 0)
		memcpy(c->c_out + c->c_outlen, p, n);
	c->c_outlen += n;
	return 0;
}

/* n in decimal, ending at end: returns where it starts. */
static char *
decimal(char *end, uint64_t n)
{
	do
		*--end = (char)('0' + n % 10);
	while ((n /= 10) > 0);
	return end;
}

static char *
put(char *p, const void *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

/*
 * Queue a status line and the common fields. len is the Content-Length, or
 * (size_t)-1 for a stream (chunked, or close-delimited for HTTP/1.0). The
 * head is measured, then written in place with one reservation: piece by
 * piece through out_append it was a tenth of a GET.
 */
static int
reply_head(struct conn *c, int status, const char *ctype, const char *extra,
    const char *conn_hdr, size_t len)
{
	const char	*reason = http_reason(status);
	char		 num[20], *nums = num + sizeof(num), *p;
	size_t		 rlen, tlen, clen, xlen, n;
	int		 has_len = len != (size_t)-1 && status != 204 &&
			    status != 304;

	count_reply(c, status);
	if (status < 100 || status > 999)
		status = 500;
	rlen = strlen(reason);
	tlen = ctype != NULL ? strlen(ctype) : 0;
	clen = conn_hdr != NULL ? strlen(conn_hdr) : 0;
	xlen = extra != NULL ? strlen(extra) : 0;
	if (has_len)
		nums = decimal(num + sizeof(num), len);
	n = 13 + rlen + 25 + date_len + 2 +
	    (tlen > 0 ? 14 + tlen + 2 + 33 : 0) +
	    (has_len ? 16 + (size_t)(num + sizeof(num) - nums) + 2 : 0) +
	    (len == (size_t)-1 && c->c_chunked ? 28 : 0) +
	    (clen > 0 ? 12 + clen + 2 : 0) + xlen + 2;
	if (out_reserve(c, n) == -1)
		return -1;
	if (out_pending(c) == 0)
		c->c_t_write = now;	/* the stall clock starts now */
	p = put(c->c_out + c->c_outlen, "HTTP/1.1 ", 9);
	*p++ = (char)('0' + status / 100);
	*p++ = (char)('0' + status / 10 % 10);
	*p++ = (char)('0' + status % 10);
	*p++ = ' ';
	p = put(p, reason, rlen);
	p = put(p, "\r\nServer: kvstore\r\nDate: ", 25);
	p = put(p, date_buf, date_len);
	p = put(p, "\r\n", 2);
	if (tlen > 0) {
		p = put(p, "Content-Type: ", 14);
		p = put(p, ctype, tlen);
		/* The type is the type: no browser guesses HTML in a value. */
		p = put(p, "\r\nX-Content-Type-Options: nosniff\r\n", 35);
	}
	if (has_len) {
		p = put(p, "Content-Length: ", 16);
		p = put(p, nums, (size_t)(num + sizeof(num) - nums));
		p = put(p, "\r\n", 2);
	} else if (len == (size_t)-1 && c->c_chunked)
		p = put(p, "Transfer-Encoding: chunked\r\n", 28);
	if (clen > 0) {
		p = put(p, "Connection: ", 12);
		p = put(p, conn_hdr, clen);
		p = put(p, "\r\n", 2);
	}
	if (xlen > 0)
		p = put(p, extra, xlen);
	p = put(p, "\r\n", 2);
	c->c_outlen = (size_t)(p - c->c_out);
	return 0;
}

/*
 * An error answered by http.c itself: one readable line, then close. msg is
 * a static string; it is also the reason logged when the conn closes.
 */
static void
send_error(struct conn *c, int status, const char *msg)
{
	const char	*pre = status == 400 ? "bad request: " : "";
	size_t		 plen = strlen(pre), len = strlen(msg);

	c->c_keepalive = 0;
	if (reply_head(c, status, "text/plain", NULL, "close",
	    plen + len + 1) == -1 ||
	    (!c->c_head_only && (out_append(c, pre, plen) == -1 ||
	    out_append(c, msg, len) == -1 ||
	    out_append(c, "\n", 1) == -1))) {
		c->c_state = S_DEAD;
		c->c_why = "out of memory";
		return;
	}
	begin_close(c, msg);
}

/* Wrap producer output as chunks until STREAM_LOW is queued or it ends. */
static void
fill_stream(struct conn *c)
{
	char	 hdr[CHUNK_HDR + 1];
	ssize_t	 n;
	int	 hl;
	char	*p;

	while (c->c_state == S_STREAM && buf_pending(c) < STREAM_LOW) {
		if (out_reserve(c, CHUNK_HDR + STREAM_PIECE + 2) == -1) {
			c->c_state = S_DEAD;
			c->c_why = "out of memory";
			return;
		}
		/* A chunk's size goes in front once known: leave room. */
		p = c->c_out + c->c_outlen + (c->c_chunked ? CHUNK_HDR : 0);
		n = c->c_fn(c->c_fnarg, p, STREAM_PIECE);
		if (n == HTTP_STREAM_LATER)
			return;
		if (n < 0 || n > STREAM_PIECE) {
			c->c_fn = NULL;	/* the producer freed its arg */
			c->c_state = S_DEAD;
			c->c_why = "stream aborted by producer";
			return;
		}
		if (buf_pending(c) == 0)
			c->c_t_write = now;
		if (n == 0) {
			c->c_fn = NULL;
			if (c->c_chunked)
				out_append(c, "0\r\n\r\n", 5);	/* reserved */
			else
				c->c_keepalive = 0;	/* 1.0: EOF ends it */
			finish_request(c);
			return;
		}
		if (!c->c_chunked) {
			c->c_outlen += (size_t)n;
			continue;
		}
		hl = fmt_buf(hdr, sizeof(hdr), "%zx\r\n", (size_t)n);
		p -= CHUNK_HDR;
		memcpy(p, hdr, (size_t)hl);
		memmove(p + hl, p + CHUNK_HDR, (size_t)n);
		memcpy(p + hl + n, "\r\n", 2);
		c->c_outlen += (size_t)hl + (size_t)n + 2;
	}
}

/* One send per pass: everything queued, as far as the socket takes it. */
static void
flush_out(struct conn *c)
{
	ssize_t	 n;

	if (c->c_state == S_STREAM)
		fill_stream(c);
	if (c->c_state == S_DEAD) {
		conn_close(c, c->c_why);
		return;
	}
	if (buf_pending(c) > 0) {
		/* A file body follows: let the head share its first packet. */
		n = send(c->c_fd, c->c_out + c->c_outoff, buf_pending(c),
		    MSG_NOSIGNAL | (c->c_state == S_FILE ? MSG_MORE : 0));
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == EINTR)
				return;
			conn_close(c, errstr());
			return;
		}
		c->c_outoff += (size_t)n;
		c->c_t_write = now;
		if (buf_pending(c) > 0)
			return;
		c->c_outoff = c->c_outlen = 0;
		if (c->c_outcap > OUT_HIGH) {
			/* A big reply is gone; idle connections stay small. */
			free(c->c_out);
			c->c_out = NULL;
			c->c_outcap = 0;
		}
		if (c->c_state == S_STREAM)
			fill_stream(c);	/* next pass writes it */
	}
	if (c->c_state == S_FILE && send_file(c) == -1)
		return;
	if (c->c_state == S_CLOSING && out_pending(c) == 0) {
		if (c->c_rdeof) {
			conn_close(c, c->c_why);
			return;
		}
		/* Lingering close (RFC 9112 9.6): our FIN, then drain. */
		shutdown(c->c_fd, SHUT_WR);
		c->c_state = S_LINGER;
		c->c_t_linger = now;
	}
}

/*
 * Send the file body of an S_FILE reply, page cache to socket, as far as
 * the socket takes it; at its end the request is finished. Returns -1
 * after closing the connection.
 */
static int
send_file(struct conn *c)
{
	ssize_t	 n;

	while (c->c_fileleft > 0) {
		n = sendfile(c->c_fd, c->c_file, &c->c_fileoff,
		    c->c_fileleft < FILE_PIECE ? c->c_fileleft : FILE_PIECE);
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		    errno == EINTR))
			return 0;
		if (n <= 0) {
			/* Framing promised the bytes: only closing is honest. */
			conn_close(c, n == 0 ? "file body ended early" :
			    errstr());
			return -1;
		}
		c->c_fileleft -= (size_t)n;
		c->c_t_write = now;
	}
	close(c->c_file);
	c->c_file = -1;
	finish_request(c);
	return 0;
}

/* ---- Connections ---- */

static int
set_nonblock(int fd)
{
	int	 fl;

	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
		return -1;
	return 0;
}

static void
conn_open(int fd)
{
	struct conn	**t;
	struct conn	 *c;
	int		  n, one = 1;

	if (fd >= nslots) {
		n = nslots ? nslots : 64;
		while (n <= fd)
			n *= 2;
		if ((t = resize(conns, nslots * sizeof(*t),
		    n * sizeof(*t))) == NULL)
			goto fail;
		memset(t + nslots, 0, (n - nslots) * sizeof(*t));
		conns = t;
		nslots = n;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto fail;
	/* Replies go out in one send; Nagle would only add delay. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->c_fd = fd;
	c->c_file = -1;
	c->c_state = S_HEAD;
	c->c_t_head = -1;
	c->c_t_idle = c->c_t_read = c->c_t_write = now;
	conns[fd] = c;
	nconns++;
	if (nlive >= cfg.max_conns) {
		/* Exhaustion is a state: say so, then close gracefully. */
		send_error(c, 503, "server busy: too many connections");
		return;
	}
	c->c_live = 1;
	nlive++;
	return;
fail:
	kv_log("warn", "http: accept: out of memory");
	close(fd);
}

/* The only way a connection ends: frees what it owns, logs why once. */
static void
conn_close(struct conn *c, const char *why)
{
	kv_log("debug", "http: fd %d closed: %s", c->c_fd,
	    why != NULL ? why : "unknown");
	if (c->c_fn != NULL)
		c->c_fn(c->c_fnarg, NULL, 0);	/* lets the app free arg */
	if (c->c_file != -1)
		close(c->c_file);
	if (c->c_live)
		nlive--;
	nconns--;
	conns[c->c_fd] = NULL;
	close(c->c_fd);
	free(c->c_in);
	free(c->c_out);
	free(c);
}

/* Stop taking requests; the loop flushes, half-closes and lingers. */
static void
begin_close(struct conn *c, const char *why)
{
	if (c->c_state == S_DEAD)
		return;
	c->c_state = S_CLOSING;
	if (c->c_why == NULL)
		c->c_why = why;
	if (c->c_live) {
		c->c_live = 0;	/* a closing conn no longer blocks new ones */
		nlive--;
	}
}

static struct conn *
conn_by_id(uint64_t id)
{
	uint32_t	 fd = (uint32_t)id;
	struct conn	*c;

	if (fd >= (uint32_t)nslots || (c = conns[fd]) == NULL ||
	    c->c_gen != (uint32_t)(id >> 32) || c->c_state != S_WAIT)
		return NULL;
	return c;
}

int
http_peer(uint64_t id, struct sockaddr_storage *peer,
    struct sockaddr_storage *local)
{
	struct conn	*c;
	socklen_t	 len = sizeof(*peer), llen = sizeof(*local);

	if ((c = conn_by_id(id)) == NULL ||
	    getpeername(c->c_fd, (struct sockaddr *)peer, &len) == -1)
		return -1;
	return local == NULL ? 0 : getsockname(c->c_fd,
	    (struct sockaddr *)local, &llen);
}

/* The request is answered: drop its bytes, go on to the next or close. */
static void
finish_request(struct conn *c)
{
	c->c_inoff += c->c_reqlen;
	c->c_reqlen = 0;
	c->c_gen = 0;
	c->c_head_only = 0;
	c->c_inpause = 0;
	c->c_served++;
	if (!c->c_keepalive || draining)
		begin_close(c, "connection not persistent");
	else {
		c->c_state = S_HEAD;
		c->c_t_head = -1;
		c->c_t_idle = now;
	}
	c->c_more = 1;
	work_pending = 1;
}

/* The request in c_req gets an id: it may be answered from now on. */
static void
new_id(struct conn *c)
{
	if (++gen_seq == 0)
		gen_seq = 1;
	c->c_gen = gen_seq;
	c->c_req.id = (uint64_t)c->c_gen << 32 | (uint32_t)c->c_fd;
	c->c_state = S_WAIT;
}

/*
 * Ask cfg.admit whether the head in c_req may go on, before a 100 or a
 * body byte. It may answer and refuse: then a body never read would be
 * taken for the next request, so an answer to a request with one says
 * close, and lingering discards the body (as for our own errors).
 * Returns 1 if admitted.
 */
static int
admit(struct conn *c)
{
	struct http_request	*r = &c->c_req;
	int			 refused;

	r->body = NULL;
	r->body_len = 0;
	c->c_reqlen = c->c_headlen;
	if (r->chunked || r->content_length > 0)
		c->c_keepalive = 0;
	new_id(c);
	refused = cfg.admit(r) != 0;
	if (c->c_state != S_WAIT)
		return 0;	/* answered: a refusal, whatever it said */
	if (refused) {
		send_error(c, 500, "request refused without an answer");
		return 0;
	}
	c->c_state = S_HEAD;
	c->c_gen = 0;
	c->c_keepalive = r->keep_alive;
	return 1;
}

/* Hand the request in c_in to the handler. */
static void
dispatch(struct conn *c)
{
	struct http_request	*r = &c->c_req;
	char			*base = c->c_in + c->c_inoff;

	/* Reading the body moved c_in: parse again for the pointers. */
	if (c->c_parsedat != c->c_inmoves)
		http_parse(base, c->c_headlen, r);
	if (r->chunked) {
		r->body_len = c->c_bodylen;
		c->c_reqlen = c->c_headlen + c->c_bodylen;
	} else if (r->content_length > 0) {
		r->body_len = (size_t)r->content_length;
		c->c_reqlen = c->c_headlen + r->body_len;
	} else
		c->c_reqlen = c->c_headlen;
	r->body = base + c->c_headlen;
	new_id(c);
	cfg.handler(r);
}

/*
 * S_HEAD: parse the next head in c_in and start its request: 413 from its
 * length, an interim 100, or straight to the handler when it has no body.
 * Returns 1 to go on, 0 to stop until more input or an answer.
 */
static int
head_step(struct conn *c)
{
	struct http_request	*r = &c->c_req;
	char			*base = c->c_in + c->c_inoff;
	size_t			 avail = c->c_inlen - c->c_inoff;
	int			 n;

	/*
	 * XXX The head is parsed again from its start after every read:
	 * quadratic for a head trickled a byte at a time, bounded by
	 * HTTP_MAX_HEAD_BYTES and the header timeout. picohttpparser's
	 * last_len would fix it.
	 */
	if (out_pending(c) > OUT_HIGH) {
		c->c_more = 1;	/* again once it reads */
		return 0;
	}
	n = http_parse(base, avail, r);
	if (n == -2) {
		if (c->c_rdeof)
			begin_close(c, avail ? "peer closed mid-request" :
			    "peer closed");
		else if (avail > 0 && c->c_t_head == -1)
			c->c_t_head = now;
		return 0;
	}
	c->c_method = method_index(n > 0 ? r : NULL);
	c->c_t0 = mono_ns();
	c->c_head_only = n > 0 && r->method_len == 4 &&
	    memcmp(r->method, "HEAD", 4) == 0;
	if (n == -1) {
		send_error(c, r->status, r->error);
		return 0;
	}
	c->c_headlen = (size_t)n;
	c->c_parsedat = c->c_inmoves;
	c->c_minor = r->minor;
	c->c_keepalive = r->keep_alive;
	c->c_bodylen = 0;
	c->c_t_head = -1;
	if (cfg.admit != NULL && !admit(c))
		return 0;
	c->c_maxbody = cfg.body_limit != NULL ? cfg.body_limit(r) :
	    cfg.max_body;
	if (r->content_length > 0 &&
	    (uint64_t)r->content_length > c->c_maxbody) {
		send_error(c, 413, "request body too large");
		return 0;
	}
	if (!r->chunked && r->content_length <= 0) {
		dispatch(c);
		return 1;
	}
	memset(&c->c_chunk, 0, sizeof(c->c_chunk));
	c->c_chunk.max = c->c_maxbody;
	c->c_t_read = now;
	c->c_state = S_BODY;
	if (r->expect_continue && avail == (size_t)n &&
	    out_append(c, "HTTP/1.1 100 Continue\r\n\r\n", 25) == -1) {
		c->c_state = S_DEAD;
		c->c_why = "out of memory";
		return 0;
	}
	return 1;
}

/*
 * S_BODY: take in the body bytes read so far, decoding chunks in place;
 * the handler gets the request once its body is whole. Returns 1 to go
 * on, 0 to stop, -1 when the body needs more input.
 */
static int
body_step(struct conn *c)
{
	struct http_request	*r = &c->c_req;
	char			*body = c->c_in + c->c_inoff + c->c_headlen;
	size_t			 avail, used, made;
	int			 n;

	avail = c->c_inlen - c->c_inoff - c->c_headlen;
	if (!r->chunked) {
		if (avail < (size_t)r->content_length)
			return -1;
		dispatch(c);
		return 1;
	}
	/*
	 * Decode in place: decoded bytes follow the head, and raw bytes not
	 * yet decoded always follow them.
	 */
	n = http_dechunk(&c->c_chunk, body + c->c_bodylen,
	    avail - c->c_bodylen, body + c->c_bodylen, &used, &made);
	if (n == -1 || n == -2) {
		send_error(c, n == -1 ? 400 : 413, n == -1 ?
		    "invalid chunked encoding" : "request body too large");
		return 0;
	}
	memmove(body + c->c_bodylen + made, body + c->c_bodylen + used,
	    avail - c->c_bodylen - used);
	c->c_inlen -= used - made;
	c->c_bodylen += made;
	if (n == 0)
		return -1;
	dispatch(c);
	return 1;
}

/*
 * Parse and dispatch buffered requests until one is answered (c_more set
 * by finish_request: another may follow) or left waiting for its answer
 * (S_WAIT): returns 1, a handler ran. Returns 0 when the input ends
 * before a whole request or one was refused.
 */
static int
process(struct conn *c)
{
	int	 served = c->c_served, rc = 1, steps;

	c->c_more = 0;
	for (steps = 0; rc == 1 && c->c_served == served; steps++) {
		if (c->c_state == S_HEAD)
			rc = head_step(c);
		else if (c->c_state == S_BODY)
			rc = body_step(c);
		else
			return steps > 0 && c->c_state == S_WAIT;
	}
	if (rc == -1 && c->c_rdeof)
		begin_close(c, "peer closed mid-body");
	return c->c_served != served;
}

/* How far c_in may grow in this state (offsets from c_inoff). */
static size_t
in_limit(const struct conn *c)
{
	switch (c->c_state) {
	case S_HEAD:
		return HTTP_MAX_HEAD_BYTES;
	case S_BODY:
		if (c->c_req.chunked)
			return c->c_headlen + c->c_maxbody + IN_SLACK;
		return c->c_headlen + (size_t)c->c_req.content_length +
		    IN_SLACK;
	case S_WAIT:
		return c->c_reqlen + HTTP_MAX_HEAD_BYTES;
	default:
		return 0;
	}
}

/* Make room to read into c_in; returns 0 if the state's limit is reached. */
static int
in_room(struct conn *c)
{
	size_t	 lim, cap;
	char	*p;

	if (c->c_inoff > 0) {
		c->c_inmoves++;
		memmove(c->c_in, c->c_in + c->c_inoff,
		    c->c_inlen - c->c_inoff);
		c->c_inlen -= c->c_inoff;
		c->c_inoff = 0;
	}
	lim = in_limit(c);
	if (c->c_state == S_HEAD && c->c_incap > IN_KEEP &&
	    c->c_inlen < IN_INIT && now - c->c_t_idle >= IN_KEEP_MS &&
	    (p = resize(c->c_in, c->c_incap, IN_INIT)) != NULL) {
		/*
		 * Give back what a big body took once the conn has rested:
		 * a stream of them (a full sync's batches) keeps it, where
		 * each unmap and map again of 1 MiB waited for the mmap
		 * lock, held by a flusher reading in (5 to 69 ms each in a
		 * 10M-key resync).
		 */
		c->c_in = p;
		c->c_incap = IN_INIT;
		c->c_inmoves++;
	}
	if (c->c_incap - c->c_inlen >= IN_INIT / 4 || c->c_incap >= lim)
		return c->c_incap > c->c_inlen;
	cap = c->c_incap ? c->c_incap * 2 : IN_INIT;
	if (cap < c->c_inlen + IN_INIT)
		cap = c->c_inlen + IN_INIT;
	if (cap > lim)
		cap = lim;
	if (cap <= c->c_incap)
		return c->c_incap > c->c_inlen;
	if ((p = resize(c->c_in, c->c_incap, cap)) == NULL) {
		if (c->c_incap > c->c_inlen)
			return 1;
		/*
		 * Out of memory with a full buffer: waiting for POLLIN would
		 * spin. A request the handler has keeps its bytes and reading
		 * pauses until it is answered; one still arriving gets 503.
		 */
		if (c->c_state == S_WAIT)
			c->c_inpause = 1;
		else
			send_error(c, 503, "out of memory for the request");
		return 0;
	}
	c->c_in = p;
	c->c_incap = cap;
	c->c_inmoves++;
	return 1;
}

static int
wants_read(const struct conn *c)
{
	switch (c->c_state) {
	case S_HEAD:
	case S_BODY:
		/*
		 * Requests still buffered are parsed first: the socket
		 * holds the rest, and the buffer stays one read.
		 */
		if (out_pending(c) > OUT_HIGH || c->c_more)
			return 0;
		/* FALLTHROUGH */
	case S_WAIT:
		return !c->c_rdeof && !c->c_inpause &&
		    (c->c_incap > c->c_inlen ||
		    c->c_incap - c->c_inoff < in_limit(c));
	case S_CLOSING:
	case S_LINGER:
		return !c->c_rdeof;
	default:
		return 0;
	}
}

static void
read_conn(struct conn *c)
{
	char	 junk[4096];
	ssize_t	 n;

	if (c->c_state == S_CLOSING || c->c_state == S_LINGER) {
		n = read(c->c_fd, junk, sizeof(junk));
		if (n == 0 || (n == -1 && errno != EAGAIN &&
		    errno != EWOULDBLOCK && errno != EINTR)) {
			c->c_rdeof = 1;
			if (c->c_state == S_LINGER || out_pending(c) == 0)
				conn_close(c, c->c_why);
		}
		return;
	}
	if (!in_room(c))
		return;
	n = read(c->c_fd, c->c_in + c->c_inlen, c->c_incap - c->c_inlen);
	if (n == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		conn_close(c, errstr());
		return;
	}
	if (n == 0)
		c->c_rdeof = 1;	/* a half-close, not an abort: see the top */
	c->c_inlen += (size_t)n;
	if (c->c_state == S_BODY)
		c->c_t_read = now;
	c->c_more = 1;	/* run_conns parses it, in its turn */
}

/* ---- Timers ---- */

/* Expire deadlines; *next gets the earliest one still ahead. */
static void
timers(int64_t *next)
{
	struct conn	*c;
	int64_t		 dl, t;
	int		 fd, ms;

#define AT(when, ms)	((dl = (when) + (ms)) <= now)
#define AHEAD()		do { if (dl < *next) *next = dl; } while (0)

	for (fd = 0; fd < nslots; fd++) {
		if ((c = conns[fd]) == NULL)
			continue;
		if (out_pending(c) > 0) {
			if (AT(c->c_t_write, cfg.idle_timeout_ms)) {
				conn_close(c, "send timeout");
				continue;
			}
			AHEAD();
		}
		switch (c->c_state) {
		case S_HEAD:
			if (c->c_t_head != -1) {
				if (AT(c->c_t_head, cfg.header_timeout_ms)) {
					send_error(c, 408, "request timeout");
					break;
				}
				AHEAD();
			} else if (c->c_inlen == c->c_inoff &&
			    out_pending(c) == 0) {
				t = c->c_t_idle > c->c_t_write ?
				    c->c_t_idle : c->c_t_write;
				/*
				 * A conn that never sent a byte gets no more
				 * time than a slow head would: else silent
				 * conns hold every slot of max_conns.
				 */
				ms = cfg.idle_timeout_ms;
				if (c->c_served == 0 &&
				    cfg.header_timeout_ms < ms)
					ms = cfg.header_timeout_ms;
				if (AT(t, ms)) {
					conn_close(c, "idle timeout");
					break;
				}
				AHEAD();
			}
			break;
		case S_BODY:
			if (AT(c->c_t_read, cfg.body_timeout_ms)) {
				send_error(c, 408, "request timeout");
				break;
			}
			AHEAD();
			break;
		case S_LINGER:
			if (AT(c->c_t_linger, LINGER_MS)) {
				conn_close(c, c->c_why);
				break;
			}
			AHEAD();
			break;
		default:
			break;
		}
	}
#undef AT
#undef AHEAD
}

/* ---- Listening ---- */

static int
open_listener(int family, int port)
{
	struct sockaddr_in6	 sin6;
	struct sockaddr_in	 sin;
	struct sockaddr		*sa;
	socklen_t		 salen;
	int			 fd, one = 1, zero = 0, saved;

	if ((fd = socket(family, SOCK_STREAM, 0)) == -1)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
		goto fail;
	if (family == AF_INET6) {
		/* One socket for both families; some systems default to 1. */
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero,
		    sizeof(zero)) == -1)
			goto fail;
		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons((uint16_t)port);
		sin6.sin6_addr = in6addr_any;
		sa = (struct sockaddr *)&sin6;
		salen = sizeof(sin6);
	} else {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)port);
		sin.sin_addr.s_addr = htonl(INADDR_ANY);
		sa = (struct sockaddr *)&sin;
		salen = sizeof(sin);
	}
	if (bind(fd, sa, salen) == -1 || listen(fd, LISTEN_BACKLOG) == -1 ||
	    set_nonblock(fd) == -1)
		goto fail;
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

int
http_init(const struct http_config *c)
{
	const char *end;
	uint64_t port;
	int	 p[2];

	if (c == NULL || c->handler == NULL || c->port == NULL) {
		errno = EINVAL;
		return -1;
	}
	if ((end = parse_dec(c->port, 65535, &port)) == NULL || *end != '\0') {
		errno = EINVAL;
		return -1;
	}
	cfg = *c;
	if (cfg.max_conns <= 0)
		cfg.max_conns = DEF_MAX_CONNS;
	if (cfg.max_body == 0)
		cfg.max_body = DEF_MAX_BODY;
	if (cfg.header_timeout_ms <= 0)
		cfg.header_timeout_ms = DEF_HEADER_MS;
	if (cfg.body_timeout_ms <= 0)
		cfg.body_timeout_ms = DEF_BODY_MS;
	if (cfg.idle_timeout_ms <= 0)
		cfg.idle_timeout_ms = DEF_IDLE_MS;
	if (cfg.drain_timeout_ms <= 0)
		cfg.drain_timeout_ms = DEF_DRAIN_MS;

	if ((lfd = open_listener(AF_INET6, (int)port)) == -1) {
		/*
		 * No IPv6 in this kernel or namespace: IPv4 only
		 * (test.sh fakes such a kernel with tests/noipv6).
		 */
		if (errno != EAFNOSUPPORT && errno != EPROTONOSUPPORT &&
		    errno != EADDRNOTAVAIL && errno != EINVAL)
			return -1;
		if ((lfd = open_listener(AF_INET, (int)port)) == -1)
			return -1;
	}
	if (pipe(p) == -1 || set_nonblock(p[0]) == -1 ||
	    set_nonblock(p[1]) == -1) {
		close(lfd);
		lfd = -1;
		return -1;
	}
	wake_rd = p[0];
	wake_wr = p[1];
	now = (int64_t)mono_ms();
	make_date((time_t)(wall_ms() / 1000));
	return 0;
}

static void
accept_conns(void)
{
	int	 fd, i;

	for (i = 0; i < ACCEPT_BATCH; i++) {
		if ((fd = accept(lfd, NULL, NULL)) == -1) {
			switch (errno) {
			case EINTR:
			case ECONNABORTED:
			case EPROTO:
				continue;
			case EAGAIN:
#if EWOULDBLOCK != EAGAIN
			case EWOULDBLOCK:
#endif
				return;
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				/* Out of fds: rest instead of spinning. */
				pause_until = now + PAUSE_MS;
				/* FALLTHROUGH */
			default:
				/* Once a second at most: it lasts a while. */
				if (warned_at != -1 &&
				    now - warned_at < WARN_EVERY_MS) {
					unwarned++;
					return;
				}
				kv_log("warn", "http: accept: %s (%d more "
				    "since last said)", errstr(),
				    unwarned);
				warned_at = now;
				unwarned = 0;
				return;
			}
		}
		if (set_nonblock(fd) == -1) {
			kv_log("warn", "http: accept: %s", errstr());
			close(fd);
			continue;
		}
		conn_open(fd);
	}
}

/* ---- The loop ---- */

static void
drain_start(void)
{
	struct conn	*c;
	int		 fd;

	draining = 1;
	drain_deadline = now + cfg.drain_timeout_ms;
	if (lfd != -1) {
		close(lfd);
		lfd = -1;
	}
	for (fd = 0; fd < nslots; fd++) {
		if ((c = conns[fd]) == NULL)
			continue;
		c->c_keepalive = 0;
		/* Nothing in flight: no need to linger. */
		if (c->c_state == S_HEAD && c->c_inlen == c->c_inoff &&
		    out_pending(c) == 0)
			conn_close(c, "shutting down");
	}
}

/*
 * Start draining on http_stop, and end it: 0 when every connection has
 * gone or the drain timed out (closing what is left), else 1 to go on.
 */
static int
drain_step(void)
{
	struct conn	*c;
	int		 fd;

	if (stop_flag && !draining)
		drain_start();
	if (!draining)
		return 1;
	if (nconns == 0)
		return 0;
	if (now < drain_deadline)
		return 1;
	for (fd = 0; fd < nslots; fd++)
		if ((c = conns[fd]) != NULL)
			conn_close(c, "drain timeout");
	return 0;
}

/*
 * Fill pfds: the wake pipe, the listener unless it rests, the watched fds,
 * then every connection from *base on. Returns how many, or -1 (ENOMEM).
 */
static int
build_pollfds(int *base)
{
	struct conn	*c;
	int		 i, n, fd;

	if (npfds < 2 + nwatches + nconns) {
		n = 2 + nwatches + nconns + 64;
		if ((pfds = resize(pfds, npfds * sizeof(*pfds),
		    n * sizeof(*pfds))) == NULL) {
			npfds = 0;
			errno = ENOMEM;
			return -1;
		}
		npfds = n;
	}
	n = 0;
	pfds[n].fd = wake_rd;
	pfds[n++].events = POLLIN;
	if (lfd != -1 && now >= pause_until) {
		pfds[n].fd = lfd;
		pfds[n++].events = POLLIN;
	}
	for (i = 0; i < nwatches; i++) {
		pfds[n].fd = watches[i].w_fd;
		pfds[n++].events = POLLIN;
	}
	*base = n;
	for (fd = 0; fd < nslots; fd++) {
		if ((c = conns[fd]) == NULL)
			continue;
		pfds[n].fd = fd;
		pfds[n].events = (wants_read(c) ? POLLIN : 0) |
		    (out_pending(c) > 0 ? POLLOUT : 0);
		n++;
	}
	return n;
}

/* How long poll may sleep: until the next deadline, or sooner. */
static int
poll_timeout(int64_t next)
{
	int	 timeout;

	timeout = work_pending ? 0 : (int)(next - now);
	if (timeout < 0)
		timeout = 0;
	if (cfg.tick != NULL && timeout > TICK_MS)
		timeout = TICK_MS;
	if (lfd != -1 && now < pause_until && timeout > PAUSE_MS)
		timeout = PAUSE_MS;
	if (draining && timeout > TICK_MS)
		timeout = TICK_MS;
	work_pending = 0;
	return timeout;
}

/* What poll reported: the wake pipe, accepts, watches, then reads. */
static void
handle_events(int base, int n)
{
	struct conn	*c;
	char		 buf[64];
	int		 i, w;

	for (i = 0; i < base; i++) {
		if (pfds[i].revents == 0)
			continue;
		if (pfds[i].fd == wake_rd) {
			while (read(wake_rd, buf, sizeof(buf)) > 0)
				;
		} else if (pfds[i].fd == lfd)
			accept_conns();
		else {
			for (w = 0; w < nwatches; w++)
				if (watches[w].w_fd == pfds[i].fd) {
					watches[w].w_fn(watches[w].w_arg);
					break;
				}
		}
	}
	for (i = base; i < n; i++) {
		if (pfds[i].revents == 0 || (c = conns[pfds[i].fd]) == NULL)
			continue;
		if (pfds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
			if (wants_read(c))
				read_conn(c);
			else if (c->c_state == S_WAIT &&
			    pfds[i].revents & (POLLHUP | POLLERR))
				conn_close(c, "peer hung up");
		}
	}
}

/*
 * Parse what the reads and replies made ready, then send. Connections
 * take turns one request at a time, so one client's pipelined batch does
 * not hold back another's request; and once TURN_NS has gone by, the loop
 * polls again and goes on from where it stopped, so a request waits for
 * about that long whatever the others cost (a handler may take 100 us).
 * A connection sends as soon as it has no request left to dispatch
 * (c_more clear: one send per batch read, wherever turns cut it), so a
 * probe's answer does not wait for the turn's end; at the end, those
 * whose answers wait for the client to read them (past OUT_HIGH), and a
 * file's or a stream's next piece, one per pass.
 */
static void
run_conns(void)
{
	struct conn	*c;
	uint64_t	 end = mono_ns() + TURN_NS;
	int		 fd, idle;

	/*
	 * idle: slots visited since a handler last ran. A request left
	 * waiting for its answer (a write under FSYNC=always) counts: its
	 * handler cost as much as one answered. The clock is read only
	 * then: c_more brings the loop back after every answer, mostly to
	 * find no whole request, and reading it there too doubled its reads.
	 */
	for (idle = 0; idle < nslots; ) {
		fd = (int)(next_fd++ % (unsigned)nslots);
		if ((c = conns[fd]) == NULL || !c->c_more) {
			idle++;
			continue;
		}
		if (!process(c)) {
			idle++;
			if ((c = conns[fd]) != NULL && !c->c_more &&
			    buf_pending(c) > 0 && (c->c_state == S_HEAD ||
			    c->c_state == S_BODY || c->c_state == S_WAIT))
				flush_out(c);
			continue;
		}
		idle = 0;
		if (mono_ns() >= end) {
			work_pending = 1;
			break;
		}
	}
	for (fd = 0; fd < nslots; fd++)
		if ((c = conns[fd]) != NULL && (!c->c_more ||
		    out_pending(c) > OUT_HIGH))
			flush_out(c);
	if (!draining)
		return;
	for (fd = 0; fd < nslots; fd++)
		if ((c = conns[fd]) != NULL && c->c_state == S_HEAD &&
		    c->c_inlen == c->c_inoff && out_pending(c) == 0)
			conn_close(c, "shutting down");
}

/* As Redis's aeMain: each pass is deadlines, poll, events, work. */
int
http_run(void)
{
	int64_t		 next;
	int		 n, base, timeout;

	for (;;) {
		now = (int64_t)mono_ms();
		make_date((time_t)(wall_ms() / 1000));
		if (drain_step() == 0)
			return 0;
		next = now + 1000;
		timers(&next);
		if ((n = build_pollfds(&base)) == -1)
			return -1;
		timeout = poll_timeout(next);
		if (poll(pfds, (nfds_t)n, timeout) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		now = (int64_t)mono_ms();
		handle_events(base, n);
		if (cfg.tick != NULL)
			cfg.tick();
		run_conns();
	}
}

void
http_stop(void)
{
	stop_flag = 1;
	http_wake();
}

void
http_wake(void)
{
	int	 saved = errno;	/* a signal handler must not change it */

	if (wake_wr != -1)
		(void)!write(wake_wr, "", 1);	/* full pipe: already awake */
	errno = saved;
}

/* ---- Replies ---- */

/*
 * The Connection field of a reply with a length: "close" when this is the
 * last (or the server drains), "keep-alive" to a 1.0 client that asked for
 * it (ab -k waits for it), else none.
 */
static const char *
conn_header(struct conn *c)
{
	if (draining)
		c->c_keepalive = 0;
	if (!c->c_keepalive)
		return "close";
	return c->c_minor == 0 ? "keep-alive" : NULL;
}

int
http_reply(uint64_t id, int status, const char *ctype, const char *extra,
    const void *body, size_t len)
{
	struct conn	*c;
	const char	*conn_hdr = NULL;

	if ((c = conn_by_id(id)) == NULL) {
		errno = ENOTCONN;
		return -1;
	}
	conn_hdr = conn_header(c);
	c->c_chunked = 0;
	if (reply_head(c, status, ctype, extra, conn_hdr, len) == -1 ||
	    (!c->c_head_only && status != 204 && status != 304 &&
	    out_append(c, body, len) == -1)) {
		c->c_state = S_DEAD;
		c->c_why = "out of memory";
		work_pending = 1;
		return 0;	/* the reply was accepted; the conn died */
	}
	finish_request(c);
	return 0;
}

int
http_reply_file(uint64_t id, int status, const char *ctype,
    const char *extra, int fd, uint64_t off, size_t len)
{
	struct conn	*c;
	const char	*conn_hdr = NULL;

	if ((c = conn_by_id(id)) == NULL) {
		close(fd);
		errno = ENOTCONN;
		return -1;
	}
	conn_hdr = conn_header(c);
	c->c_chunked = 0;
	if (reply_head(c, status, ctype, extra, conn_hdr, len) == -1) {
		close(fd);
		c->c_state = S_DEAD;
		c->c_why = "out of memory";
		work_pending = 1;
		return 0;
	}
	if (c->c_head_only || len == 0) {
		close(fd);
		finish_request(c);
		return 0;
	}
	c->c_file = fd;
	c->c_fileoff = (off_t)off;
	c->c_fileleft = len;
	c->c_state = S_FILE;
	work_pending = 1;
	return 0;
}

int
http_stream(uint64_t id, int status, const char *ctype, const char *extra,
    http_producer *fn, void *arg)
{
	struct conn	*c;
	const char	*conn_hdr = NULL;

	if ((c = conn_by_id(id)) == NULL) {
		errno = ENOTCONN;
		return -1;
	}
	if (draining)
		c->c_keepalive = 0;
	c->c_chunked = c->c_minor >= 1;
	if (!c->c_chunked)
		c->c_keepalive = 0;	/* the end of the body is our FIN */
	if (!c->c_keepalive)
		conn_hdr = "close";
	if (reply_head(c, status, ctype, extra, conn_hdr, (size_t)-1) == -1) {
		c->c_state = S_DEAD;
		c->c_why = "out of memory";
		c->c_fn = fn;		/* conn_close frees arg */
		c->c_fnarg = arg;
		work_pending = 1;
		return 0;
	}
	if (c->c_head_only) {
		fn(arg, NULL, 0);
		finish_request(c);
		return 0;
	}
	c->c_fn = fn;
	c->c_fnarg = arg;
	c->c_state = S_STREAM;
	work_pending = 1;
	return 0;
}

int
http_watch(int fd, void (*fn)(void *), void *arg)
{
	if (nwatches == MAX_WATCHES || fn == NULL || fd < 0) {
		errno = nwatches == MAX_WATCHES ? ENOSPC : EINVAL;
		return -1;
	}
	watches[nwatches].w_fd = fd;
	watches[nwatches].w_fn = fn;
	watches[nwatches].w_arg = arg;
	nwatches++;
	return 0;
}

void
http_unwatch(int fd)
{
	int i;

	for (i = 0; i < nwatches; i++)
		if (watches[i].w_fd == fd) {
			watches[i] = watches[--nwatches];
			return;
		}
}

/* ---- Metrics ---- */

/*
 * Answers counted by method and status, and a latency histogram per method
 * from the parsed head to the queued answer (waiting replies included).
 * Linear in the distinct (method, status) pairs seen: a few dozen.
 */
static const char *const method_names[] = {
	"GET", "HEAD", "PUT", "DELETE", "POST", "other"
};
#define NMETHODS	(sizeof(method_names) / sizeof(method_names[0]))
#define MAX_COUNTS	128		/* distinct (method, status) pairs */
/* The histogram's bucket bounds, in microseconds (le_label shows them). */
static const uint32_t latency_us[] = { 100, 250, 500, 1000, 2500, 5000,
	10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000,
	10000000 };
#define NBOUNDS		(sizeof(latency_us) / sizeof(latency_us[0]))

static struct {
	int		 method;
	int		 status;
	uint64_t	 n;
} counts[MAX_COUNTS];
static size_t	 ncounts;
static uint64_t	 latency[NMETHODS][NBOUNDS + 1];	/* not cumulative */
static double	 latency_sum[NMETHODS];

static int
method_index(const struct http_request *r)
{
	size_t i;

	for (i = 0; r != NULL && i < NMETHODS - 1; i++)
		if (r->method_len == strlen(method_names[i]) &&
		    memcmp(r->method, method_names[i], r->method_len) == 0)
			return (int)i;
	return NMETHODS - 1;
}

static void
count_reply(struct conn *c, int status)
{
	uint64_t ns;
	size_t i, b;

	for (i = 0; i < ncounts; i++)
		if (counts[i].method == c->c_method &&
		    counts[i].status == status)
			break;
	if (i == ncounts && ncounts < MAX_COUNTS) {
		counts[i].method = c->c_method;
		counts[i].status = status;
		ncounts++;
	}
	if (i < ncounts)
		counts[i].n++;
	ns = c->c_t0 != 0 ? mono_ns() - c->c_t0 : 0;
	for (b = 0; b < NBOUNDS && ns > latency_us[b] * 1000ULL; b++)
		;
	latency[c->c_method][b]++;
	latency_sum[c->c_method] += (double)ns / 1e9;
}

/* A bound as Prometheus shows it, in seconds as short as it goes. */
static const char *
le_label(char le[16], uint32_t us)
{
	size_t n = (size_t)fmt_buf(le, 16, "%u.%06u", (unsigned)(us / 1000000),
	    (unsigned)(us % 1000000));

	while (le[n - 1] == '0')
		n--;
	le[n - (le[n - 1] == '.')] = '\0';	/* 2.5, 1, 0.0001 */
	return le;
}

size_t
http_metrics(char *buf, size_t cap)
{
	char le[16];
	size_t o = 0, i, m, b;
	uint64_t cum;

#define EMIT(...) do {							\
	int n_ = fmt_buf(buf + o, o < cap ? cap - o : 0, __VA_ARGS__);	\
	o += n_ > 0 ? (size_t)n_ : 0;					\
} while (0)
	EMIT("# HELP kvstore_http_requests_total HTTP requests answered, by "
	    "method and status code.\n"
	    "# TYPE kvstore_http_requests_total counter\n");
	for (i = 0; i < ncounts; i++)
		EMIT("kvstore_http_requests_total{method=\"%s\",code=\"%d\"} "
		    "%llu\n", method_names[counts[i].method], counts[i].status,
		    (unsigned long long)counts[i].n);
	EMIT("# HELP kvstore_http_request_duration_seconds From a request's "
	    "head to its answer, waits included.\n"
	    "# TYPE kvstore_http_request_duration_seconds histogram\n");
	for (m = 0; m < NMETHODS; m++) {
		for (b = 0, cum = 0; b <= NBOUNDS; b++) {
			cum += latency[m][b];
			if (b < NBOUNDS)
				EMIT("kvstore_http_request_duration_seconds_bucket"
				    "{method=\"%s\",le=\"%s\"} %llu\n",
				    method_names[m], le_label(le, latency_us[b]),
				    (unsigned long long)cum);
			else
				EMIT("kvstore_http_request_duration_seconds_bucket"
				    "{method=\"%s\",le=\"+Inf\"} %llu\n",
				    method_names[m], (unsigned long long)cum);
		}
		EMIT("kvstore_http_request_duration_seconds_sum{method=\"%s\"} "
		    "%.6f\n", method_names[m], latency_sum[m]);
		EMIT("kvstore_http_request_duration_seconds_count"
		    "{method=\"%s\"} %llu\n", method_names[m],
		    (unsigned long long)cum);
	}
	EMIT("# HELP kvstore_http_connections Open client connections.\n"
	    "# TYPE kvstore_http_connections gauge\n"
	    "kvstore_http_connections %d\n", nconns);
#undef EMIT
	return o;
}

int
http_alive(uint64_t id)
{
	return conn_by_id(id) != NULL;
}

int
http_conns(void)
{
	return nconns;
}

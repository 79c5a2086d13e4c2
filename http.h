/*
 * http.h: the HTTP/1.1 server: listening sockets, the poll() loop,
 * connections, the request parser and the response writer. Everything here
 * runs on the main thread except http_wake, which any thread may call.
 */

#define HTTP_MAX_HEADERS	64	/* fields in a head; more: 431 */
#define HTTP_MAX_HEAD_BYTES	16384	/* nginx's 4 x 8k; Node's 16k */
#define HTTP_MAX_TARGET_BYTES	8192	/* 9112 3: at least 8000; more: 414 */

struct http_header {
	const char	*name;
	size_t		 name_len;
	const char	*value;
	size_t		 value_len;
};

/*
 * One parsed request. All pointers point into the connection's buffer and
 * are valid only until the handler returns; a handler that defers its
 * reply copies what it needs and keeps only id.
 */
struct http_request {
	const char	*method;
	size_t		 method_len;
	const char	*path;		/* the target up to '?', not decoded */
	size_t		 path_len;
	const char	*query;		/* after '?', not decoded, or NULL */
	size_t		 query_len;
	int		 minor;		/* HTTP/1.minor */
	/* http_parse zeroes all but headers[]: keep nheaders right after. */
	struct http_header headers[HTTP_MAX_HEADERS];
	size_t		 nheaders;
	/* Set by http_parse from the headers. */
	int64_t		 content_length;	/* -1 if absent */
	int		 chunked;
	int		 keep_alive;
	int		 expect_continue;
	/* Set by the server before calling the handler. */
	const char	*body;
	size_t		 body_len;
	uint64_t	 id;		/* names the connection in http_reply */
	int		 status;	/* http_parse's verdict on -1 */
	const char	*error;		/* and why, a static string */
};

/* One parsed answer head (the client's side); pointers into the buffer. */
struct http_response {
	int		 minor;		/* HTTP/1.minor */
	int		 status;
	const char	*reason;
	size_t		 reason_len;
	/* http_parse_response zeroes all but headers[]. */
	struct http_header headers[HTTP_MAX_HEADERS];
	size_t		 nheaders;
	int64_t		 content_length;	/* -1: absent; 0 if no body */
	int		 chunked;
	int		 keep_alive;	/* else the server closes after it */
	const char	*error;		/* why, on -1 */
};

/* Where http_dechunk is inside a chunked body; zero it, set max, then call. */
struct http_chunk_state {
	int		 phase;
	uint64_t	 remaining;	/* bytes left in the current chunk */
	size_t		 total;		/* decoded so far */
	size_t		 max;		/* decoded bytes allowed; -2 beyond */
	size_t		 linelen;	/* bytes of the size or trailer line */
};

/* Zero numeric fields get defaults: 1024 conns, 1 MiB, 10/30/60/10 s. */
struct http_config {
	const char	*port;			/* decimal */
	int		 max_conns;		/* above it: 503 and close */
	size_t		 max_body;		/* above it: 413 */
	/* Optional: the body limit for this request, from its head. */
	size_t		(*body_limit)(const struct http_request *r);
	/*
	 * Optional: called on each parsed head (r->id set, no body yet)
	 * before any 100 Continue or body byte. Non-zero: it has answered
	 * (401, 403, 413...) with http_reply; the body is never read (with
	 * one to come, the answer closes the connection) nor handler called.
	 */
	int		(*admit)(struct http_request *r);
	int		 header_timeout_ms;	/* whole head must arrive */
	int		 body_timeout_ms;	/* between body bytes */
	int		 idle_timeout_ms;	/* keep-alive wait */
	int		 drain_timeout_ms;	/* on shutdown */
	void		(*handler)(struct http_request *r);
	void		(*tick)(void);		/* every ~10 ms and on wake */
};

/*
 * Produces the next piece of a streamed body: up to cap bytes into buf.
 * Returns the bytes written, 0 at the end, -1 to abort the connection; after
 * 0 or -1 it is not called again. If the stream ends otherwise (the client
 * went away, the request was HEAD, shutdown timed out), it is called once
 * with buf NULL and cap 0 so that it can free arg.
 */
typedef ssize_t	http_producer(void *arg, char *buf, size_t cap);


/*
 * Parse one request head from buf[0..len). Returns the bytes consumed, -2 if
 * incomplete, or -1 if malformed with r->status set (400, 414, 417, 431, 501
 * or 505) and r->error to one line saying why. Fields of r point into buf;
 * nothing is allocated. Pure: any thread may call it.
 */
int	http_parse(const char *buf, size_t len, struct http_request *r);

/*
 * Parse one answer head, with the header code http_parse uses. Returns
 * the bytes consumed, -2 if incomplete, or -1 with rs->error set. Framing
 * is read as for requests: Content-Length and chunked (both: -1), and
 * keep_alive from the version and Connection. An answer that can have no
 * body (1xx, 204, 304; 9112 6.3) gets content_length 0; one with neither
 * field is read to EOF, so keep_alive is 0. The caller knows whether it
 * asked HEAD. Pure: any thread may call it.
 */
int	http_parse_response(const char *buf, size_t len,
	    struct http_response *rs);

/*
 * Decode chunked body bytes in place, across as many calls as the bytes
 * take to arrive. buf[0..len) holds raw bytes not yet consumed; the decoded
 * bytes are written to dst (which may be buf itself: decoding never runs
 * ahead of reading). Sets *consumed (raw bytes used) and *out (decoded bytes
 * written). Returns 1 when the body and its trailers ended, 0 if more input
 * is needed, -1 if malformed (400), -2 if the body exceeds st->max (413).
 * Chunk extensions are ignored and trailers discarded (RFC 9112 7.1).
 */
int	http_dechunk(struct http_chunk_state *st, const char *buf, size_t len,
	    char *dst, size_t *consumed, size_t *out);

/*
 * Percent-decode src[0..len) into dst (at least len bytes). Returns the
 * decoded length, or -1 on a bad escape or a decoded NUL. '+' stays '+'.
 */
ssize_t	http_unescape(const char *src, size_t len, char *dst);

/* The value of header name (case-insensitive) or NULL; *len its length. */
const char *http_header(const struct http_request *r, const char *name,
	    size_t *len);

/* The raw (still escaped) value of query parameter name or NULL. */
const char *http_query(const struct http_request *r, const char *name,
	    size_t *len);

/* Listen on [::]:port (dual-stack), or 0.0.0.0:port without IPv6. */
int	http_init(const struct http_config *cfg);

/*
 * Run the loop until http_stop is called and the connections drained, or the
 * drain timeout passed. Handlers, tick and watch callbacks run inside it.
 * Returns 0, or -1 with errno if poll failed.
 */
int	http_run(void);

/* Ask the loop to stop accepting and drain; safe from a signal handler. */
void	http_stop(void);

/* Wake the loop so that tick runs soon; safe from any thread and signals. */
void	http_wake(void);

/*
 * Answer request id, from the handler or later (main thread only). extra is
 * "" or complete header lines ending in CRLF. Copies body. Returns -1 with
 * errno ENOTCONN if the connection is gone or id was already answered. For
 * a HEAD request only the head is sent; 204 and 304 get no body.
 */
int	http_reply(uint64_t id, int status, const char *ctype,
	    const char *extra, const void *body, size_t len);

/*
 * Like http_reply, with a 200-style body of len bytes read from fd at off
 * by sendfile(2), page cache to socket, never copied here. The connection
 * owns fd from the call on (closed when sent, on -1 at once); the caller
 * guarantees those bytes stay as they are until then.
 */
int	http_reply_file(uint64_t id, int status, const char *ctype,
	    const char *extra, int fd, uint64_t off, size_t len);

/*
 * Answer with a chunked body produced by fn(arg) as the client reads (to an
 * HTTP/1.0 client: no framing, then close). On 0, fn and arg belong to the
 * connection until fn ends; on -1 (ENOTCONN) fn is never called.
 */
int	http_stream(uint64_t id, int status, const char *ctype,
	    const char *extra, http_producer *fn, void *arg);

/* Call fn(arg) when fd becomes readable; fn must drain it. At most 16. */
int	http_watch(int fd, void (*fn)(void *arg), void *arg);

/* Stop watching fd (before it is closed or replaced). */
void	http_unwatch(int fd);

/*
 * Write the HTTP metrics in the Prometheus text format into buf (at most
 * cap bytes). Returns the length they need; more than cap means cut.
 */
size_t	http_metrics(char *buf, size_t cap);

/* 1 while request id still has a connection waiting for its answer. */
int	http_alive(uint64_t id);

/* Open connections right now. */
int	http_conns(void);

/* The standard reason phrase of status, "Unknown" if none. */
const char *http_reason(int status);

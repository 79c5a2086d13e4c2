/*
 * http.h: the HTTP/1.1 server: listening sockets, the poll() loop,
 * connections and the response writer, over parse.h's requests.
 * Everything here runs on the main thread except http_wake, which any
 * thread may call.
 */

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
 * 0 or -1 it is not called again. HTTP_STREAM_LATER: nothing yet; it is
 * asked again on the loop's next pass (every 10 ms at most). If the stream
 * ends otherwise (the client went away, the request was HEAD, shutdown
 * timed out), it is called once with buf NULL and cap 0 so that it can
 * free arg.
 */
typedef ssize_t	http_producer(void *arg, char *buf, size_t cap);
#define HTTP_STREAM_LATER	(-2)

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

/*
 * The address request id came from (getpeername of its connection) into
 * *peer and, if local is not NULL, the one it came to (getsockname); an
 * IPv4 client of the dual-stack listener shows as ::ffff:a.b.c.d. 0, or
 * -1 if the request is gone or the socket cannot say.
 */
struct sockaddr_storage;
int	http_peer(uint64_t id, struct sockaddr_storage *peer,
	    struct sockaddr_storage *local);

/* The standard reason phrase of status, "Unknown" if none. */
const char *http_reason(int status);

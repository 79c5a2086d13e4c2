/*
 * client.h: one blocking HTTP/1.1 client for the replication threads and
 * the command-line client. A struct client is one URL's connection, opened
 * on demand and kept alive; every connect, send and receive times out
 * (ETIMEDOUT); answers are parsed by http.c's http_parse_response. Any
 * thread may use a client, one thread at a time.
 */

struct client;

struct client_request {
	const char	*method;
	const char	*target;	/* origin-form: "/path?query" */
	const char	*extra;		/* NULL, or lines ending in CRLF */
	const void	*body;		/* sent with a Content-Length when */
	size_t		 body_len;	/* not empty, or the method PUT/POST */
	int		 http10;	/* as HTTP/1.0: answer never chunked */
};

struct client_response {
	int		 status;
	const char	*body;		/* NUL-ended; the client's until its */
	size_t		 body_len;	/* next call */
};

/*
 * A client of url, "http://host[:port][/]" (an IPv6 literal in brackets),
 * not connected yet. timeout_ms bounds each connect, send and receive.
 * hook, when set, gets each new socket before it connects (-1 from it
 * refuses: ECANCELED) and -1 before the socket is closed, so that another
 * thread can shutdown(2) it. NULL with errno EINVAL (bad URL) or ENOMEM.
 */
struct client *client_new(const char *url, int timeout_ms,
	    int (*hook)(void *arg, int fd), void *arg);
void	client_free(struct client *c);	/* closes it too */

/*
 * The addresses of url's host with its port, as client_new splits it,
 * into out[0..max): how many, or a RESOLVE_E code (RESOLVE_ESYS with
 * errno EINVAL for a bad URL). Blocks in resolve_host (resolve.h).
 */
struct sockaddr_storage;
int	client_resolve(const char *url, struct sockaddr_storage *out,
	    int max);

/* Close the connection; the next request resolves and connects again. */
void	client_close(struct client *c);

/*
 * Send a request, connecting first if need be; answers come back in order
 * (pipelining) from client_recv or client_recv_head. Returns 0, or -1
 * with errno and client_error set and the connection closed.
 */
int	client_send(struct client *c, const struct client_request *rq);

/*
 * Read the oldest unanswered request's answer, its body at most max bytes
 * (Content-Length, chunked or to EOF; over max: EMSGSIZE). Skips 1xx;
 * closes when the server does. 0, or -1 as client_send (EPROTO: garbled).
 */
int	client_recv(struct client *c, struct client_response *rs,
	    size_t max);

/* client_send, then client_recv. */
int	client_call(struct client *c, const struct client_request *rq,
	    struct client_response *rs, size_t max);

/*
 * Only the next answer's head: its body is then read raw to EOF with
 * client_peek and client_consume (a streamed snapshot), then closed.
 */
int	client_recv_head(struct client *c, struct client_response *rs);

/*
 * Block until want bytes follow the head (fewer only at EOF); *p gets
 * them. Returns how many are buffered, or -1 with errno.
 */
ssize_t	client_peek(struct client *c, size_t want, const char **p);
void	client_consume(struct client *c, size_t n);

/* Field name of the last answer's head, case-insensitive, or NULL. */
const char *client_header(const struct client *c, const char *name,
	    size_t *len);

/* One line on why the last call failed; it never quotes header lines. */
const char *client_error(const struct client *c);

/*
 * parse.h: the HTTP/1.1 message parser: request and answer heads, chunked
 * bodies, percent-decoding, field and query lookup. Pure functions over the
 * caller's buffers; any thread may call them.
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

/*
 * Are a[0..n) and b[0..n) the same, ignoring ASCII case? Stops at the
 * first difference, so b may be a shorter C string.
 */
int	http_ci_same(const char *a, const char *b, size_t n);

/* The value of header name (case-insensitive) or NULL; *len its length. */
const char *http_header(const struct http_request *r, const char *name,
	    size_t *len);

/* The raw (still escaped) value of query parameter name or NULL. */
const char *http_query(const struct http_request *r, const char *name,
	    size_t *len);

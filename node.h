/*
 * node.h: the node every request handler serves: its settings, its state,
 * and the small kit the handlers (api.c, wait.c, status.c, replica.c)
 * answer with. kvstore.c fills the settings before the loop starts; all of
 * it belongs to the main thread.
 */

#define NODE_MAX_PEERS	64	/* replicas shown in /ready and /metrics and
				   counted for MIN_REPLICAS_TO_WRITE */

enum node_role { ROLE_PRIMARY, ROLE_REPLICA };

struct node {
	/* Settings, fixed once the loop runs. */
	enum node_role	 role;
	const char	*data_dir;
	const char	*primary_url;	/* a replica's primary, or "" */
	size_t		 max_value;	/* MAX_VALUE_BYTES */
	enum store_fsync fsync;
	struct token	 auth;		/* clients' writes (and reads) */
	int		 read_auth;	/* reads of /kv need auth too */
	struct token	 repl;		/* /repl/ requests */
	int		 recover_wait_ms;
	int		 min_seq_wait_ms;
	int		 replicas_wait_ms;
	int		 min_replicas;
	int		 max_replica_lag_ms;
	int		 max_parked;	/* requests waiting at once */
	const char	*allowed_hosts;	/* ALLOWED_HOSTS: names browsers may
					   use, beside the safe ones */
	/* State. */
	struct store	*store;		/* a full sync replaces it whole */
	uint64_t	 store_gen;	/* counts those replacements */
	int		 snapshots;	/* streaming from this node now */
	int		 started_empty;	/* a new primary recovered nothing */
	char		 recovery[384];	/* what a new primary's recovery did */
	char		 recovery_warning[768];	/* whom it did not hear */
	int		 stopping;	/* SIGTERM or SIGINT came */
	int		 disk_full;	/* the last write found no room */
	int		 store_stale;	/* a full sync's swap failed half-way:
					   write nothing until a restart */
	uint64_t	 primary_heard_ms;	/* replica: the last push */
	uint64_t	 primary_seq;	/* replica: the primary's, as last told */
	uint64_t	 replicable_seq;	/* writes up to it may leave the
					   node (the stream, a snapshot):
					   under FSYNC=always its durable
					   seq, else its last; each pass */
};

extern struct node node;

/* "primary" or "replica"; "no", "everysec" or "always". */
const char *node_role_name(void);
const char *node_fsync_name(enum store_fsync f);

/* ---- Requests ---- */

/* Whether r's method is m; GET or HEAD; whether its path is exactly p. */
int	req_is(const struct http_request *r, const char *m);
int	req_is_read(const struct http_request *r);
int	req_path_is(const struct http_request *r, const char *p);

/*
 * A copy of r's head, and of its body if with_body, in one allocation that
 * ends where its last field ends (free it whole): for a request answered
 * after its handler returned (wait.c). NULL if out of memory.
 */
struct http_request *req_copy(const struct http_request *r, int with_body);

/*
 * Header or query field name as a decimal u64: 1 and *out if present and
 * valid, 0 if absent, -1 if malformed (then r is answered 400).
 */
int	req_header_u64(struct http_request *r, const char *name,
	    uint64_t *out);
int	req_query_u64(struct http_request *r, const char *name,
	    uint64_t *out);

/* ---- Answers ---- */

/* A text/plain answer: the formatted line, then "\n"; extra as http_reply. */
void	reply_text(uint64_t id, int status, const char *extra,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* 405 with an Allow field listing allow ("GET, HEAD"). */
void	reply_not_allowed(struct http_request *r, const char *allow);

/* Append "name<n>end" at p; returns the new end (NUL-terminated). */
char	*reply_u64(char *p, const char *name, uint64_t n, const char *end);

/*
 * A value's version fields at p (room for VERSION_HEADERS bytes): ETag
 * (the seq of its write) when etag is set, and X-Kv-Seq. Returns the end.
 */
#define VERSION_HEADERS	72
char	*reply_version(char *p, uint64_t seq, int etag);

/* ---- Bodies staged in memory ---- */

/*
 * A streamed body staged in memory: a refill step writes the next part into
 * buf, and http.c takes it out as the client reads (listings, snapshots).
 */
struct stage {
	char		*buf;
	size_t		 len;		/* staged */
	size_t		 off;		/* handed out */
	size_t		 cap;
	int		 finished;	/* the last part is staged */
	int		 failed;	/* out of memory: abort the stream */
	uint64_t	 gen;		/* node.store_gen when it began */
};

/* Room for need more bytes (and slack); 0, or -1 with failed set. */
int	stage_reserve(struct stage *st, size_t need, size_t slack);

/*
 * The http_producer of a body staged in st, which owner embeds: hands out
 * what is staged, calls refill(owner) when it ran out (staging nothing
 * and not finished: asked again on a later pass), and frees buf and
 * owner at the end or when the client went away. A full sync that swaps
 * the store cuts the stream off: a cursor means nothing in another store.
 */
ssize_t	stage_out(struct stage *st, void *owner, void (*refill)(void *owner),
	    char *buf, size_t cap);

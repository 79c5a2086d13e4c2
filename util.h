/*
 * util.h: the small kit every module shares: the log, fatal errors, the
 * monotonic clock and JSON strings. It calls nothing above it.
 */

#define KVSTORE_VERSION	"0.1.0"

/* Log levels, least to most severe; kv_log takes their names. */
enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/*
 * One line on stderr (or the sink): UTC time, level ("debug", "info",
 * "warn", "error"), text. Bytes outside printable ASCII are escaped, so a
 * message may carry bytes from the network. Any thread; one write(2).
 */
void	kv_log(const char *level, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/* Lines below level are dropped; the default is LOG_INFO. */
void	log_set_level(enum log_level level);

/* The level named name ("debug" ... "error"), or -1. */
int	log_level_named(const char *name);

/*
 * Send each message, unformatted and unescaped, to fn instead of stderr
 * (the unit tests read what a module logged). NULL restores stderr.
 */
void	log_set_sink(void (*fn)(const char *level, const char *msg));

/*
 * realloc(p, n) for a p whose first used bytes are all that matter: a new
 * block, those bytes copied (as many as fit), p freed. musl's realloc is
 * 1.2 KB of binary, and for the sizes that move it copies too (past 128
 * KiB it would mremap instead). NULL with p untouched when out of memory.
 */
void	*resize(void *p, size_t used, size_t n);

/* The last c in s, or NULL: strrchr, without the memrchr musl's calls. */
const char *last_of(const char *s, int c);

/* strerror(errno): one call where there were two, at some 80 places. */
const char *errstr(void);

/* Log at "error" and exit 1; a trailing ':' appends strerror(errno). */
void	die(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

/*
 * Up to len bytes from fd into buf: reads until len or the end of the file,
 * through signals. Returns the bytes read, or -1 with errno set.
 */
ssize_t	read_full(int fd, void *buf, size_t len);

/*
 * pthread_create of a thread that never takes a signal: SIGTERM and SIGINT
 * must run the program's handler on the main thread, whose poll loop acts
 * on it (and whose state the handler writes). Returns 0 or an errno.
 */
int	start_thread(pthread_t *t, void *(*fn)(void *), void *arg);

/* len unpredictable bytes from the kernel (/dev/urandom); -1 with errno. */
int	random_bytes(void *buf, size_t len);

/* The monotonic clock in milliseconds and in nanoseconds. */
uint64_t mono_ms(void);
uint64_t mono_ns(void);

/* Unix time in milliseconds: what expiries are, on the primary's clock. */
uint64_t wall_ms(void);

/*
 * A TTL, s[0..len): digits and a unit, "ms", "s", "m" or "h" (digits
 * alone: seconds), from 1 ms to TTL_MAX_MS, into *ms. -1 if it is not one.
 */
#define TTL_MAX_MS	(3650ULL * 24 * 3600 * 1000)	/* ten years */
int	parse_ttl(const char *s, size_t len, uint64_t *ms);

/*
 * secs since the epoch as a UTC date and time into tm (the year, month, day, hour, minute,
 * second and weekday fields). By hand: gmtime_r links musl's time zone
 * code, which UTC does not need.
 */
struct tm;
void	utc_time(int64_t secs, struct tm *tm);

/*
 * Write s[0..n) as a JSON string, quotes included, to out, which has room
 * for JSON_STRING_MAX(n) bytes; returns the bytes written. Valid UTF-8
 * passes through; any other byte b becomes \udcXX (Python's
 * "surrogateescape"), so every key lists unambiguously.
 */
#define JSON_STRING_MAX(n)	((n) * 6 + 2)
size_t	json_string(char *out, const char *s, size_t n);

/* 1 if s[0..n) is valid UTF-8. */
int	utf8_valid(const char *s, size_t n);

/*
 * The decimal digits at s, at least one, as a number no greater than max
 * into *n. Returns the first byte after them, or NULL (no digit, or past
 * max; *n is then unchanged). No sign, no space: numbers from the wire and
 * the command line mean exactly their digits.
 */
const char *parse_dec(const char *s, uint64_t max, uint64_t *n);

/* ---- Settings from the environment ---- */

#define MAX_TOKEN_BYTES	256		/* 8x a 32-byte random token */

/*
 * A shared secret (AUTH_TOKEN, REPL_TOKEN), zero-padded to its full size so
 * that token_equal reads the same bytes whatever its length.
 */
struct token {
	char		 t_buf[MAX_TOKEN_BYTES + 1];	/* NUL-terminated */
	size_t		 t_len;				/* 0: not set */
};

/* $name, or dflt when it is unset or empty. */
const char *env(const char *name, const char *dflt);

/*
 * Load token name from $name, or from the file that $name_FILE names (a
 * Kubernetes Secret mounted as a file; one trailing newline is dropped).
 * Neither set leaves t_len 0. Returns 0, or -1 with why saying what is
 * wrong, never quoting the token. The server and the CLI alike use it.
 */
int	token_load(struct token *t, const char *name, char *why,
	    size_t whylen);

/*
 * Whether v[0..len) is the token, in a time that tells nothing of it: all
 * MAX_TOKEN_BYTES padded bytes are compared without an early exit, so
 * neither the first difference nor the token's length shows.
 */
int	token_equal(const struct token *t, const char *v, size_t len);

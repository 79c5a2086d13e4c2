/*
 * util.c: the kit every module shares: one log line per event, fatal
 * errors, the monotonic clock and JSON strings. Nothing here knows about
 * HTTP, the store or replication, and nothing here calls up into them.
 */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fmt.h"
#include "util.h"

#define LOG_LINE_MAX	1024		/* one log line, escapes included */
#define DIE_MSG_MAX	768		/* leaves room for strerror's words */

static const char *const level_names[] = { "debug", "info", "warn", "error" };
static const char hex[] = "0123456789abcdef";

static enum log_level	 min_level = LOG_INFO;
static void		(*sink)(const char *level, const char *msg);

/* ---- The log ---- */

int
log_level_named(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(name, level_names[i]) == 0)
			return (int)i;
	return -1;
}

void
log_set_level(enum log_level level)
{
	min_level = level;
}

void
log_set_sink(void (*fn)(const char *level, const char *msg))
{
	sink = fn;
}

/*
 * Messages carry bytes from requests and peers (URLs, keys, answers), so
 * every byte outside printable ASCII is written as \xNN and a backslash as
 * \\: a line can neither be forged nor carry a terminal escape. One write(2)
 * a line, so that lines from other threads never interleave. A message cut
 * at LOG_LINE_MAX ends in "...".
 */
static void
write_line(const char *level, const char *msg, size_t mlen, int cut)
{
	char line[LOG_LINE_MAX];
	struct timespec ts;
	struct tm tm;
	size_t i, n;

	clock_gettime(CLOCK_REALTIME, &ts);
	utc_time(ts.tv_sec, &tm);
	n = (size_t)fmt_buf(line, sizeof(line),
	    "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, level);
	for (i = 0; i < mlen; i++) {
		unsigned char c = (unsigned char)msg[i];

		if (n + 4 > sizeof(line) - 4) {		/* "...\n" must fit */
			cut = 1;
			break;
		}
		if (c == '\\') {
			line[n++] = '\\';
			line[n++] = '\\';
		} else if (c >= 0x20 && c < 0x7f)
			line[n++] = (char)c;
		else {
			line[n++] = '\\';
			line[n++] = 'x';
			line[n++] = hex[c >> 4];
			line[n++] = hex[c & 15];
		}
	}
	if (cut) {
		memcpy(line + n, "...", 3);
		n += 3;
	}
	line[n++] = '\n';
	(void)write(STDERR_FILENO, line, n);
}

void
kv_log(const char *level, const char *fmt, ...)
{
	char msg[LOG_LINE_MAX];
	va_list ap;
	int i, m;

	i = log_level_named(level);
	if (i >= 0 && i < (int)min_level)
		return;
	va_start(ap, fmt);
	m = fmt_vbuf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	if (sink != NULL)
		sink(level, msg);
	else if ((size_t)m >= sizeof(msg))
		write_line(level, msg, sizeof(msg) - 1, 1);
	else
		write_line(level, msg, (size_t)m, 0);
}

void *
resize(void *p, size_t used, size_t n)
{
	void *q = malloc(n);

	if (q == NULL || p == NULL)
		return q;
	memcpy(q, p, used < n ? used : n);
	free(p);
	return q;
}

const char *
last_of(const char *s, int c)
{
	const char *p = NULL;

	for (; *s != '\0'; s++)
		if (*s == c)
			p = s;
	return p;
}

const char *
errstr(void)
{
	return strerror(errno);
}

void
die(const char *fmt, ...)
{
	char msg[DIE_MSG_MAX];
	va_list ap;
	size_t n;
	int saved = errno;

	va_start(ap, fmt);
	fmt_vbuf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n = strlen(msg);
	if (n > 0 && msg[n - 1] == ':')
		fmt_buf(msg + n, sizeof(msg) - n, " %s", strerror(saved));
	kv_log("error", "%s", msg);
	exit(1);
}

/* ---- Randomness and clocks ---- */

ssize_t
read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = read(fd, (char *)buf + got, len - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

int
start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int e;

	(void)sigfillset(&all);
	(void)pthread_sigmask(SIG_SETMASK, &all, &old);
	e = pthread_create(t, NULL, fn, arg);
	(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
	return e;
}

int
random_bytes(void *buf, size_t len)
{
	ssize_t n;
	int fd, e;

	if ((fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read_full(fd, buf, len);
	e = n == -1 ? errno : EIO;	/* short: the end of the file */
	(void)close(fd);
	if (n != (ssize_t)len) {
		errno = e;
		return -1;
	}
	return 0;
}

uint64_t
mono_ns(void)
{
	struct timespec ts;

	/* Cannot fail with CLOCK_MONOTONIC, which Linux always has. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t
clock_ms(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
mono_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

/*
 * The civil date of day 0 = 1970-01-01 and on, by the proleptic Gregorian
 * calendar, counting in 400-year eras that start on March 1st, so that
 * the leap day ends a year (Howard Hinnant's days-to-civil algorithm).
 */
void
utc_time(int64_t secs, struct tm *tm)
{
	int64_t days, era, doe, yoe, doy, mp;

	days = secs / 86400 - (secs % 86400 < 0);
	secs -= days * 86400;
	tm->tm_hour = (int)(secs / 3600);
	tm->tm_min = (int)(secs / 60 % 60);
	tm->tm_sec = (int)(secs % 60);
	tm->tm_wday = (int)((days % 7 + 11) % 7);	/* day 0: Thursday */
	days += 719468;				/* from 0000-03-01 */
	era = (days >= 0 ? days : days - 146096) / 146097;
	doe = days - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	tm->tm_mday = (int)(doy - (153 * mp + 2) / 5 + 1);
	tm->tm_mon = (int)(mp < 10 ? mp + 2 : mp - 10);
	tm->tm_year = (int)(yoe + era * 400 + (tm->tm_mon < 2) - 1900);
}

uint64_t
wall_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

int
parse_ttl(const char *s, size_t len, uint64_t *ms)
{
	char buf[24];
	const char *u;
	uint64_t n, unit;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if ((u = parse_dec(buf, TTL_MAX_MS, &n)) == NULL)
		return -1;
	unit = strcmp(u, "ms") == 0 ? 1 : *u == '\0' || strcmp(u, "s") == 0 ?
	    1000 : strcmp(u, "m") == 0 ? 60000 : strcmp(u, "h") == 0 ?
	    3600000 : 0;
	if (unit == 0 || n == 0 || n > TTL_MAX_MS / unit)
		return -1;
	*ms = n * unit;
	return 0;
}

/* ---- JSON strings ---- */

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if invalid. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	uint32_t cp;
	size_t len, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

int
utf8_valid(const char *s, size_t n)
{
	size_t i, l;

	for (i = 0; i < n; i += l)
		if ((l = utf8_len((const unsigned char *)s + i, n - i)) == 0)
			return 0;
	return 1;
}

/* "\u00XX" or "\udcXX": a six-byte escape of one byte. */
static size_t
escape_byte(char *out, const char *prefix, unsigned char b)
{
	memcpy(out, prefix, 4);
	out[4] = hex[b >> 4];
	out[5] = hex[b & 15];
	return 6;
}

size_t
json_string(char *out, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, o = 0, l;

	out[o++] = '"';
	while (i < n) {
		if (u[i] == '"' || u[i] == '\\') {
			out[o++] = '\\';
			out[o++] = (char)u[i++];
		} else if (u[i] < 0x20 || u[i] == 0x7f) {
			o += escape_byte(out + o, "\\u00", u[i++]);
		} else if ((l = utf8_len(u + i, n - i)) > 0) {
			memcpy(out + o, u + i, l);
			o += l, i += l;
		} else {
			o += escape_byte(out + o, "\\udc", u[i++]);
		}
	}
	out[o++] = '"';
	return o;
}

/* ---- Numbers ---- */

const char *
parse_dec(const char *s, uint64_t max, uint64_t *n)
{
	uint64_t v = 0, d;
	const char *p;

	for (p = s; *p >= '0' && *p <= '9'; p++) {
		d = (uint64_t)(*p - '0');
		if (d > max || v > (max - d) / 10)
			return NULL;
		v = v * 10 + d;
	}
	if (p == s)
		return NULL;
	*n = v;
	return p;
}

/* ---- Settings from the environment ---- */

const char *
env(const char *name, const char *dflt)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : dflt;
}

int
token_load(struct token *t, const char *name, char *why, size_t whylen)
{
	char fname[32], src[300], buf[MAX_TOKEN_BYTES + 2];
	const char *v, *path, *p;
	size_t n, i;
	ssize_t r;
	int fd;

	memset(t, 0, sizeof(*t));
	fmt_buf(fname, sizeof(fname), "%s_FILE", name);
	v = env(name, NULL);
	path = env(fname, NULL);
	if (v != NULL && path != NULL) {
		fmt_buf(why, whylen, "%s and %s are both set; set one", name,
		    fname);
		return -1;
	}
	if (path != NULL) {
		fmt_buf(src, sizeof(src), "%s=%.255s", fname, path);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		r = fd == -1 ? -1 : read_full(fd, buf, sizeof(buf));
		if (r == -1)
			fmt_buf(why, whylen, "%s: cannot read: %s", src,
			    errstr());
		if (fd != -1)
			(void)close(fd);
		if (r == -1)
			return -1;
		n = (size_t)r;
		if (n > 0 && n <= MAX_TOKEN_BYTES + 1 && buf[n - 1] == '\n')
			n--;
		p = buf;
	} else if (v != NULL) {
		fmt_buf(src, sizeof(src), "%s", name);
		n = strlen(v);
		p = v;
	} else
		return 0;
	if (n == 0) {
		fmt_buf(why, whylen, "%s: the token is empty", src);
		return -1;
	}
	if (n > MAX_TOKEN_BYTES) {
		fmt_buf(why, whylen, "%s: the token is longer than %d bytes",
		    src, MAX_TOKEN_BYTES);
		return -1;
	}
	/* It travels in a header: no spaces, no control bytes, no UTF-8. */
	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] <= ' ' || (unsigned char)p[i] >= 0x7f) {
			fmt_buf(why, whylen, "%s: the token must be printable "
			    "ASCII without spaces (byte %zu is 0x%02x)", src,
			    i + 1, (unsigned char)p[i]);
			return -1;
		}
	memcpy(t->t_buf, p, n);
	t->t_len = n;
	return 0;
}

int
token_equal(const struct token *t, const char *v, size_t len)
{
	unsigned char diff;
	size_t i;

	if (len > MAX_TOKEN_BYTES)
		return 0;
	diff = len != t->t_len;
	for (i = 0; i < MAX_TOKEN_BYTES; i++)
		diff |= (unsigned char)t->t_buf[i] ^
		    (unsigned char)(i < len ? v[i] : 0);
	return diff == 0;
}

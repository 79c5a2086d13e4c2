/*
 * util.c: the kit every module shares: one log line per event, fatal
 * errors, the monotonic clock and JSON strings. Nothing here knows about
 * HTTP, the store or replication, and nothing here calls up into them.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
	gmtime_r(&ts.tv_sec, &tm);
	n = (size_t)snprintf(line, sizeof(line),
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
	m = vsnprintf(msg, sizeof(msg), fmt, ap);
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

void
die(const char *fmt, ...)
{
	char msg[DIE_MSG_MAX];
	va_list ap;
	size_t n;
	int saved = errno;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n = strlen(msg);
	if (n > 0 && msg[n - 1] == ':')
		snprintf(msg + n, sizeof(msg) - n, " %s", strerror(saved));
	kv_log("error", "%s", msg);
	exit(1);
}

/* ---- Randomness and clocks ---- */

int
random_bytes(void *buf, size_t len)
{
	ssize_t n;
	size_t got = 0;
	int fd, e;

	if ((fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	while (got < len) {
		n = read(fd, (char *)buf + got, len - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			e = n == 0 ? EIO : errno;
			(void)close(fd);
			errno = e;
			return -1;
		}
		got += (size_t)n;
	}
	(void)close(fd);
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

uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
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
	FILE *f;

	memset(t, 0, sizeof(*t));
	snprintf(fname, sizeof(fname), "%s_FILE", name);
	v = env(name, NULL);
	path = env(fname, NULL);
	if (v != NULL && path != NULL) {
		snprintf(why, whylen, "%s and %s are both set; set one", name,
		    fname);
		return -1;
	}
	if (path != NULL) {
		snprintf(src, sizeof(src), "%s=%.255s", fname, path);
		if ((f = fopen(path, "r")) == NULL) {
			snprintf(why, whylen, "%s: cannot read: %s", src,
			    strerror(errno));
			return -1;
		}
		n = fread(buf, 1, sizeof(buf), f);
		if (ferror(f)) {
			snprintf(why, whylen, "%s: cannot read: %s", src,
			    strerror(errno));
			fclose(f);
			return -1;
		}
		fclose(f);
		if (n > 0 && n <= MAX_TOKEN_BYTES + 1 && buf[n - 1] == '\n')
			n--;
		p = buf;
	} else if (v != NULL) {
		snprintf(src, sizeof(src), "%s", name);
		n = strlen(v);
		p = v;
	} else
		return 0;
	if (n == 0) {
		snprintf(why, whylen, "%s: the token is empty", src);
		return -1;
	}
	if (n > MAX_TOKEN_BYTES) {
		snprintf(why, whylen, "%s: the token is longer than %d bytes",
		    src, MAX_TOKEN_BYTES);
		return -1;
	}
	/* It travels in a header: no spaces, no control bytes, no UTF-8. */
	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] <= ' ' || (unsigned char)p[i] >= 0x7f) {
			snprintf(why, whylen, "%s: the token must be printable "
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

/*
 * fmt.c: printf-style formatting, only what kvstore's formats use. musl's
 * vfprintf is 10.5 KB of a binary that must stay under 200 KiB, and it
 * brings its float and wide-character code whatever the format asks;
 * this is about 1 KB. Every caller is checked by the compiler
 * (format(printf) on each prototype), so a conversion outside the subset
 * is a bug caught at build time, and printed as "%?" if it slips through.
 *
 * The subset: conversions d i u x c s % and f (fixed point, at most 9
 * decimals, for metrics and logs: it rounds the scaled value half up, so
 * where printf rounds an exact binary tie to even, the last digit may
 * differ); the flags - (left-justify) and 0 (pad
 * with zeros); a width; a precision (.N or .*: the decimals of %f, the
 * most bytes %s takes, the fewest digits of an integer); the length
 * modifiers l, ll and z.
 *
 * It writes into buffers and into streams (struct out, fmt.h), which take
 * the place of stdio's FILE for the CLI's stdout and stderr: stdio would
 * add some 4 KB of binary for two file descriptors.
 */

#include <sys/ioctl.h>

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "fmt.h"

/* Where the output goes: a bounded buffer, or a stream. */
struct sink {
	char		*buf;
	size_t		 size;		/* of buf, the NUL included */
	struct out	*out;
	size_t		 len;		/* bytes produced, kept or not */
};

static void	append(struct out *, const char *, size_t);

static void
put(struct sink *o, const char *s, size_t n)
{
	if (o->out != NULL)
		append(o->out, s, n);
	else if (o->len + 1 < o->size) {
		size_t room = o->size - 1 - o->len;

		memcpy(o->buf + o->len, s, n < room ? n : room);
	}
	o->len += n;
}

static void
pad(struct sink *o, char c, size_t n)
{
	while (n-- > 0)
		put(o, &c, 1);
}

/* One field: s[0..n), padded to width on the side the flags say. */
static void
field(struct sink *o, const char *s, size_t n, size_t width, int left,
    int zero)
{
	size_t fill = width > n ? width - n : 0;

	if (zero && !left && fill > 0 && n > 0 && s[0] == '-') {
		put(o, s, 1);		/* the sign goes before the zeros */
		s++, n--;
	}
	if (!left)
		pad(o, zero ? '0' : ' ', fill);
	put(o, s, n);
	if (left)
		pad(o, ' ', fill);
}

/*
 * v in base (10 or 16), at least mindigits digits, with a '-' if neg,
 * right-aligned into the end of a 32-byte tmp; returns the first byte.
 */
static char *
digits(char tmp[32], uint64_t v, unsigned base, size_t mindigits, int neg)
{
	char *p = tmp + 32;

	while (v != 0 || (size_t)(tmp + 32 - p) < mindigits) {
		*--p = "0123456789abcdef"[v % base];
		v /= base;
	}
	if (neg)
		*--p = '-';
	return p;
}

/*
 * v with prec decimals, rounded half away from zero, into tmp; returns
 * the length. Values beyond 2^64 / 10^prec print as "overflow": nothing
 * kvstore prints comes near it.
 */
static size_t
fixed(char tmp[64], double v, size_t prec)
{
	uint64_t scale = 1, whole;
	size_t n = 0;
	char *p;
	int neg = v < 0;

	if (v != v)
		return (size_t)(memcpy(tmp, "nan", 3), 3);
	if (prec > 9)
		prec = 9;
	while (n++ < prec)
		scale *= 10;
	if (neg)
		v = -v;
	if (v >= 18446744073709551615.0 / (double)scale)
		return (size_t)(memcpy(tmp, "overflow", 8), 8);
	whole = (uint64_t)(v * (double)scale + 0.5);
	p = digits(tmp, whole / scale, 10, 1, neg && whole != 0);
	n = (size_t)(tmp + 32 - p);
	memmove(tmp, p, n);
	if (prec > 0) {
		tmp[n++] = '.';
		p = digits(tmp + 32, whole % scale, 10, prec, 0);
		memmove(tmp + n, p, prec);
		n += prec;
	}
	return n;
}

static void
format(struct sink *o, const char *f, va_list ap)
{
	char tmp[64], *s;
	size_t width, prec, n;
	int left, zero, longs, has_prec;
	uint64_t u;
	int64_t d;

	for (; *f != '\0'; f++) {
		if (*f != '%') {
			for (n = 1; f[n] != '\0' && f[n] != '%'; n++)
				;
			put(o, f, n);
			f += n - 1;
			continue;
		}
		left = zero = longs = has_prec = 0;
		for (f++; *f == '-' || *f == '0'; f++)
			if (*f == '-')
				left = 1;
			else
				zero = 1;
		for (width = 0; *f >= '0' && *f <= '9'; f++)
			width = width * 10 + (size_t)(*f - '0');
		prec = 0;
		if (*f == '.') {
			has_prec = 1;
			if (*++f == '*') {
				int p = va_arg(ap, int);

				prec = p > 0 ? (size_t)p : 0;
				f++;
			} else
				for (; *f >= '0' && *f <= '9'; f++)
					prec = prec * 10 + (size_t)(*f - '0');
		}
		for (; *f == 'l' || *f == 'z'; f++)
			longs = *f == 'z' ? 2 : longs + 1;
		switch (*f) {
		case 'd':
		case 'i':
			d = longs == 0 ? va_arg(ap, int) : longs == 1 ?
			    va_arg(ap, long) : longs == 2 ?
			    (int64_t)va_arg(ap, ptrdiff_t) :
			    va_arg(ap, long long);
			u = d < 0 ? -(uint64_t)d : (uint64_t)d;
			s = digits(tmp, u, 10, has_prec ? prec : 1, d < 0);
			field(o, s, (size_t)(tmp + 32 - s), width, left,
			    zero && !has_prec);
			break;
		case 'u':
		case 'x':
			u = longs == 0 ? va_arg(ap, unsigned) : longs == 1 ?
			    va_arg(ap, unsigned long) : longs == 2 ?
			    va_arg(ap, size_t) : va_arg(ap, unsigned long long);
			s = digits(tmp, u, *f == 'x' ? 16 : 10,
			    has_prec ? prec : 1, 0);
			field(o, s, (size_t)(tmp + 32 - s), width, left,
			    zero && !has_prec);
			break;
		case 'f':
			n = fixed(tmp, va_arg(ap, double), has_prec ? prec : 6);
			field(o, tmp, n, width, left, zero);
			break;
		case 's':
			s = va_arg(ap, char *);
			if (s == NULL)
				s = "(null)";
			n = has_prec ? strnlen(s, prec) : strlen(s);
			field(o, s, n, width, left, 0);
			break;
		case 'c':
			tmp[0] = (char)va_arg(ap, int);
			field(o, tmp, 1, width, left, 0);
			break;
		case '%':
			put(o, "%", 1);
			break;
		default:
			put(o, "%?", 2);
			if (*f == '\0')
				return;
		}
	}
}

int
fmt_vbuf(char *buf, size_t size, const char *f, va_list ap)
{
	struct sink o = { buf, size, NULL, 0 };

	format(&o, f, ap);
	if (size > 0)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return o.len > INT32_MAX ? INT32_MAX : (int)o.len;
}

int
fmt_buf(char *buf, size_t size, const char *f, ...)
{
	va_list ap;
	int n;

	va_start(ap, f);
	n = fmt_vbuf(buf, size, f, ap);
	va_end(ap);
	return n;
}

int
fmt_str(char *buf, const char *f, ...)
{
	va_list ap;
	int n;

	va_start(ap, f);
	n = fmt_vbuf(buf, SIZE_MAX, f, ap);
	va_end(ap);
	return n;
}

/* ---- Streams ---- */

/* All of s[0..n) to fd, through short writes and signals. */
static int
write_all(int fd, const char *s, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, s, n)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

int
out_tty(int fd)
{
	struct winsize ws;

	return ioctl(fd, TIOCGWINSZ, &ws) == 0;
}

int
out_flush(struct out *o)
{
	size_t n = o->o_len;

	if (o->o_mode == OUT_STDOUT)
		o->o_mode = out_tty(o->o_fd) ? OUT_LINES : OUT_FULL;
	o->o_len = 0;
	if (write_all(o->o_fd, o->o_buf, n) == -1) {
		o->o_err = 1;
		return -1;
	}
	return 0;
}

/* Into o_buf; what cannot fit there even when empty goes out at once. */
static void
append(struct out *o, const char *s, size_t n)
{
	if (n > sizeof(o->o_buf) - o->o_len) {
		(void)out_flush(o);
		if (n >= sizeof(o->o_buf)) {
			if (write_all(o->o_fd, s, n) == -1)
				o->o_err = 1;
			return;
		}
	}
	memcpy(o->o_buf + o->o_len, s, n);
	o->o_len += n;
}

/* The end of a call that wrote s[0..n): what the buffering mode asks. */
static void
settle(struct out *o, const char *s, size_t n)
{
	if (o->o_mode == OUT_UNBUFFERED || (o->o_mode != OUT_FULL &&
	    memchr(s, '\n', n) != NULL))
		(void)out_flush(o);
}

void
out_put(struct out *o, const char *s, size_t n)
{
	append(o, s, n);
	settle(o, s, n);
}

int
fmt_out(struct out *o, const char *f, ...)
{
	struct sink k = { NULL, 0, o, 0 };
	va_list ap;

	va_start(ap, f);
	format(&k, f, ap);
	va_end(ap);
	settle(o, o->o_buf, o->o_len);
	return k.len > INT32_MAX ? INT32_MAX : (int)k.len;
}

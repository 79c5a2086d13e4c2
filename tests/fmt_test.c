/*
 * fmt_test.c: fmt.c checked against libc's printf, format by format, in
 * buffers big and small (truncation must match snprintf's to the byte and
 * in the returned length), and util.c's utc_time against gmtime_r over
 * four centuries; fmt.c's streams (struct out) and util.c's read_full
 * through a pipe, and its resize. A failed check prints one line naming the case; the
 * last line counts the checks, and the exit status is 0 only if all
 * passed.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fmt.h"
#include "util.h"

static int	 passed, failed;

/*
 * fmt_buf and snprintf with the same format and arguments, into a buffer
 * of each size below; both the bytes and the returned lengths must match.
 * The compiler checks each format against its arguments for both.
 */
#define SAME(...) do {							\
	static const size_t sizes_[] = { 0, 1, 2, 5, 200 };		\
	char want_[200], got_[200];					\
	size_t i_;							\
	int wn_, gn_;							\
	for (i_ = 0; i_ < sizeof(sizes_) / sizeof(sizes_[0]); i_++) {	\
		memset(want_, 'w', sizeof(want_));			\
		memset(got_, 'w', sizeof(got_));			\
		wn_ = snprintf(want_, sizes_[i_], __VA_ARGS__);		\
		gn_ = fmt_buf(got_, sizes_[i_], __VA_ARGS__);		\
		check(wn_ == gn_ && memcmp(want_, got_, sizeof(want_)) == 0, \
		    #__VA_ARGS__, sizes_[i_], want_, got_);		\
	}								\
} while (0)

static void
check(int ok, const char *what, size_t size, const char *want,
    const char *got)
{
	if (ok) {
		passed++;
		return;
	}
	failed++;
	printf("FAIL: %s in %zu bytes: want \"%.60s\", got \"%.60s\"\n", what,
	    size, size > 0 ? want : "", size > 0 ? got : "");
}

static void
test_integers(void)
{
	SAME("%d %d %d", 0, -1, INT_MIN);
	SAME("%d|%5d|%-5d|%05d|%05d", INT_MAX, 42, 42, 42, -42);
	SAME("%u %u", 0u, UINT_MAX);
	SAME("%lu %ld", ULONG_MAX, LONG_MIN);
	SAME("%llu %lld %lld", ULLONG_MAX, LLONG_MIN, 123456789012345LL);
	SAME("%zu %zd %zx", (size_t)-1, (ptrdiff_t)-7, (size_t)0xbeef);
	SAME("%x %02x %02x %016llx", 255u, 7u, 0xabu, 0x1234abcdULL);
	SAME("%016llx %016llx", 0ULL, ULLONG_MAX);
	SAME("%03llu %03llu %04d-%02d-%02d", 7ULL, 1234ULL, 2026, 1, 31);
	SAME("%.3d %.0d|%i", 5, 0, -99);
}

static void
test_strings(void)
{
	const char *key = "a key with spaces";

	SAME("%s", "");
	SAME("[%s] [%10s] [%-10s] [%-5s]", "x", "right", "left", "warn");
	SAME("%.*s|%.*s|%.*s", 3, key, 0, key, 100, key);
	SAME("%.4s|%.80s", key, key);
	SAME("%c%c%c", 'a', '%', '\n');
	SAME("100%% of %s", "writes");
	SAME("a long line: %s %s %s %s %s %s %s %s %s %s %s", key, key, key,
	    key, key, key, key, key, key, key, key);
}

/* Exact ties (2.5, or 0.15 scaled to 1.5) are left out: see fmt.c. */
static void
test_fixed(void)
{
	SAME("%f %f %f", 0.0, 1.0, -2.5);
	SAME("%.1f %.1f %.1f %.1f", 0.04, 0.26, 12.34, 99.99);
	SAME("%.3f %.3f %.3f", -1.0, 0.0004, 123456.789);
	SAME("%.6f %.6f", 0.000123, 3.25);
	SAME("%.0f %.0f %8.2f|%-8.2f|", 2.4, 7.0, 3.14159, 3.14159);
}

/* utc_time against gmtime_r, every 7 hours and a bit, 1601 to 2400. */
static void
test_utc_time(void)
{
	struct tm want, got;
	int64_t t;
	int bad = 0;

	for (t = -11644473600LL; t < 13569465600LL; t += 25307) {
		time_t tt = (time_t)t;

		memset(&got, 0, sizeof(got));
		utc_time(t, &got);
		gmtime_r(&tt, &want);
		if (got.tm_year != want.tm_year || got.tm_mon != want.tm_mon ||
		    got.tm_mday != want.tm_mday ||
		    got.tm_hour != want.tm_hour ||
		    got.tm_min != want.tm_min || got.tm_sec != want.tm_sec ||
		    got.tm_wday != want.tm_wday) {
			if (bad++ == 0)
				printf("FAIL: utc_time(%lld): %d-%d-%d %d:%d:%d "
				    "day %d\n", (long long)t, got.tm_year,
				    got.tm_mon, got.tm_mday, got.tm_hour,
				    got.tm_min, got.tm_sec, got.tm_wday);
		}
	}
	bad == 0 ? passed++ : failed++;
}

/* What the pipe holds now, NUL-terminated, or "" (its read end is O_NONBLOCK). */
static const char *
drain(int fd)
{
	static char got[8192];
	ssize_t n = read(fd, got, sizeof(got) - 1);

	got[n > 0 ? n : 0] = '\0';
	return got;
}

#define OUT_CHECK(what, cond) check((cond), (what), 0, "", "")

/* Each buffering mode: what reaches the descriptor, and when. */
static void
test_out(void)
{
	static struct out o;
	static char big[3000], want[3100];
	int p[2];

	if (pipe(p) == -1 || fcntl(p[0], F_SETFL, O_NONBLOCK) == -1) {
		check(0, "pipe", 0, "", "");
		return;
	}
	memset(big, 'b', sizeof(big) - 1);
	o.o_fd = p[1];
	o.o_mode = OUT_FULL;
	OUT_CHECK("full: fmt_out's length", fmt_out(&o, "%s %d", "x", 5) == 3);
	OUT_CHECK("full: held", *drain(p[0]) == '\0' && o.o_len == 3);
	OUT_CHECK("full: flushed", out_flush(&o) == 0 &&
	    strcmp(drain(p[0]), "x 5") == 0 && o.o_len == 0);
	out_put(&o, big, 1000);
	OUT_CHECK("full: 1000 held", *drain(p[0]) == '\0');
	out_put(&o, "0123456789", 10);
	OUT_CHECK("full: 1010 held", *drain(p[0]) == '\0' && o.o_len == 1010);
	out_put(&o, "abcdefghijklmnopq", 17);	/* no room: 1010 go */
	OUT_CHECK("full: a full buffer goes", strlen(drain(p[0])) == 1010 &&
	    o.o_len == 17);
	fmt_out(&o, "%s", big);	/* over the buffer: all of it at once */
	snprintf(want, sizeof(want), "abcdefghijklmnopq%s", big);
	OUT_CHECK("full: a long one goes at once", strcmp(drain(p[0]),
	    want) == 0 && o.o_len == 0);
	OUT_CHECK("full: fmt_out's long length", fmt_out(&o, "%s!%s", big,
	    big) == 2 * 2999 + 1 && strlen(drain(p[0])) == 2 * 2999 + 1);
	o.o_mode = OUT_LINES;
	out_put(&o, "abc", 3);
	OUT_CHECK("lines: held", *drain(p[0]) == '\0');
	fmt_out(&o, "d%ce", '\n');
	OUT_CHECK("lines: a newline flushes", strcmp(drain(p[0]),
	    "abcd\ne") == 0);
	o.o_mode = OUT_UNBUFFERED;
	fmt_out(&o, "kvstore: %s: %d\n", "k", 404);
	OUT_CHECK("unbuffered: each call", strcmp(drain(p[0]),
	    "kvstore: k: 404\n") == 0);
	out_put(&o, "x", 1);
	OUT_CHECK("unbuffered: out_put", strcmp(drain(p[0]), "x") == 0);
	o.o_mode = OUT_STDOUT;		/* musl's stdout, on a pipe */
	out_put(&o, "a", 1);
	OUT_CHECK("stdout: held", *drain(p[0]) == '\0');
	out_put(&o, "b\n", 2);
	OUT_CHECK("stdout: the first line goes", strcmp(drain(p[0]),
	    "ab\n") == 0 && o.o_mode == OUT_FULL);
	out_put(&o, "c\n", 2);
	OUT_CHECK("stdout: then held, as not a terminal", *drain(p[0]) ==
	    '\0' && out_flush(&o) == 0 && strcmp(drain(p[0]), "c\n") == 0);
	OUT_CHECK("no error yet", o.o_err == 0);
	o.o_mode = OUT_FULL;
	o.o_fd = -1;
	out_put(&o, "lost", 4);
	OUT_CHECK("a failed write", out_flush(&o) == -1 && errno == EBADF &&
	    o.o_err == 1 && o.o_len == 0);
	close(p[1]);
	close(p[0]);
}

/* resize: realloc's contract for the used bytes, small and mmap'd sizes. */
static void
test_resize(void)
{
	static const size_t sizes[] = { 1, 16, 100, 4096, 200000, 3000000,
	    50, 0 };
	unsigned char *p, *q;
	size_t i, j, have;
	int ok = 1;

	OUT_CHECK("resize: from NULL", (p = resize(NULL, 0, 10)) != NULL);
	memset(p, 7, 10);
	have = 10;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]) && ok; i++) {
		if ((q = resize(p, have, sizes[i])) == NULL) {
			ok = sizes[i] == 0;
			break;
		}
		for (j = 0; j < have && j < sizes[i]; j++)
			ok &= q[j] == (unsigned char)(j < 10 ? 7 : j * 31);
		for (j = have; j < sizes[i]; j++)
			q[j] = (unsigned char)(j < 10 ? 7 : j * 31);
		p = q;
		have = sizes[i];
	}
	OUT_CHECK("resize: the bytes kept, growing and shrinking", ok);
	q = resize(p, 0, 64);		/* none used: none copied */
	OUT_CHECK("resize: nothing used", q != NULL);
	free(q);
}

/* read_full: to len or the end of the file, whatever each read gives. */
static void
test_read_full(void)
{
	char buf[16];
	int p[2];

	if (pipe(p) == -1) {
		check(0, "pipe", 0, "", "");
		return;
	}
	(void)!write(p[1], "abc", 3);
	(void)!write(p[1], "defgh", 5);
	OUT_CHECK("read_full: to len", read_full(p[0], buf, 5) == 5 &&
	    memcmp(buf, "abcde", 5) == 0);
	close(p[1]);
	OUT_CHECK("read_full: to the end", read_full(p[0], buf,
	    sizeof(buf)) == 3 && memcmp(buf, "fgh", 3) == 0);
	OUT_CHECK("read_full: at the end", read_full(p[0], buf,
	    sizeof(buf)) == 0);
	OUT_CHECK("read_full: none asked", read_full(p[0], buf, 0) == 0);
	close(p[0]);
	OUT_CHECK("read_full: an error", read_full(p[0], buf, 1) == -1 &&
	    errno == EBADF);
}

int
main(void)
{
	test_integers();
	test_strings();
	test_fixed();
	test_utc_time();
	test_out();
	test_read_full();
	test_resize();
	printf("fmt_test: %d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}

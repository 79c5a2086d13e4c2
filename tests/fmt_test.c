/*
 * fmt_test.c: fmt.c checked against libc's printf, format by format, in
 * buffers big and small (truncation must match snprintf's to the byte and
 * in the returned length), and util.c's utc_time against gmtime_r over
 * four centuries. A failed check prints one line naming the case; the
 * last line counts the checks, and the exit status is 0 only if all
 * passed.
 */

#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

int
main(void)
{
	test_integers();
	test_strings();
	test_fixed();
	test_utc_time();
	printf("fmt_test: %d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}

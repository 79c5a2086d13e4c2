/*
 * ui_test.c: tests of ui.c's unpacker, run as "ui_test PACK SCRATCH_DIR".
 * A table of packed bytes, worked out by hand from LZ4's block format,
 * pins the format; then inputs made to need every length extension go
 * through ui/pack (PACK) and back. A failed check prints one line naming
 * the case; the last line counts the checks, and the exit status is 0 only
 * if all passed.
 */

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui.h"

#define MAX_OUT		(1 << 16)

struct unpack_case {
	const char	*name;
	const char	*in;		/* packed, as a C string of bytes */
	size_t		 inlen;
	const char	*want;		/* NULL: must be refused */
	size_t		 wantlen;
};

#define PACKED(s)	s, sizeof(s) - 1
#define PLAIN(s)	s, sizeof(s) - 1
#define REFUSED		NULL, 0

static const struct unpack_case cases[] = {
	{ "empty", PACKED("\x00"), PLAIN("") },
	{ "literals only", PACKED("\x30" "abc"), PLAIN("abc") },
	{ "a match after literals", PACKED("\x20" "ab" "\x02\x00"),
	    PLAIN("ababab") },
	{ "an overlapping match repeats one byte", PACKED("\x13" "x"
	    "\x01\x00"), PLAIN("xxxxxxxx") },
	{ "literals after a match", PACKED("\x10" "a" "\x01\x00" "\x10" "b"),
	    PLAIN("aaaaab") },
	{ "15 literals: one extension byte, 0", PACKED("\xf0\x00"
	    "0123456789abcde"), PLAIN("0123456789abcde") },
	{ "match length 19: one extension byte, 0", PACKED("\x1f" "z"
	    "\x01\x00\x00"), PLAIN("zzzzzzzzzzzzzzzzzzzz") },
	{ "offset 0", PACKED("\x10" "a" "\x00\x00"), REFUSED },
	{ "offset before the start", PACKED("\x10" "a" "\x02\x00"), REFUSED },
	{ "a cut offset", PACKED("\x10" "a" "\x01"), REFUSED },
	{ "literals past the end", PACKED("\x50" "abc"), REFUSED },
	{ "a cut length extension", PACKED("\xf0"), REFUSED },
	{ "a cut match extension", PACKED("\x1f" "a" "\x01\x00\xff"),
	    REFUSED },
};

static int	 passed, failed;
static const char *tcase;

#define CHECK(cond)	check((cond) != 0, #cond, __LINE__)

static void
check(int ok, const char *what, int line)
{
	if (ok) {
		passed++;
		return;
	}
	failed++;
	printf("FAIL %s: %s (line %d)\n", tcase, what, line);
}

static char out[MAX_OUT];

static void
test_table(void)
{
	const struct unpack_case *c;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		c = &cases[i];
		tcase = c->name;
		if (c->want == NULL) {
			CHECK(ui_unpack((const unsigned char *)c->in, c->inlen,
			    out, 64) == -1);
			continue;
		}
		CHECK(ui_unpack((const unsigned char *)c->in, c->inlen, out,
		    c->wantlen) == 0 && memcmp(out, c->want, c->wantlen) == 0);
		/* exactly cap bytes: one more or one less is refused */
		CHECK(ui_unpack((const unsigned char *)c->in, c->inlen, out,
		    c->wantlen + 1) == -1);
		if (c->wantlen > 0)
			CHECK(ui_unpack((const unsigned char *)c->in,
			    c->inlen, out, c->wantlen - 1) == -1);
	}
}

/* Pack in[0..n) with the real ui/pack, then unpack it here. */
static void
round_trip(const char *name, const char *pack, const char *dir,
    const char *in, size_t n)
{
	static unsigned char packed[MAX_OUT * 2];
	char path[512], cmd[1200], line[256], *p;
	size_t len = 0;
	unsigned v;
	FILE *f;

	tcase = name;
	snprintf(path, sizeof(path), "%s/ui_test.in", dir);
	if ((f = fopen(path, "wb")) == NULL || fwrite(in, 1, n, f) != n ||
	    fclose(f) != 0) {
		CHECK(!"write the input");
		return;
	}
	snprintf(cmd, sizeof(cmd), "'%s' t <'%s'", pack, path);
	if ((f = popen(cmd, "r")) == NULL) {
		CHECK(!"run ui/pack");
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL)
		for (p = line; (p = strstr(p, "0x")) != NULL; p += 4)
			if (sscanf(p, "0x%2x,", &v) == 1 && len < sizeof(packed))
				packed[len++] = (unsigned char)v;
	CHECK(pclose(f) == 0);
	CHECK(len > 0 && ui_unpack(packed, len, out, n) == 0 &&
	    memcmp(out, in, n) == 0);
	if (n > 1000)	/* long repeats must pack well */
		CHECK(len < n / 10 + 64);
}

int
main(int argc, char **argv)
{
	static char in[MAX_OUT];
	size_t i;
	unsigned seed = 1;

	if (argc != 3) {
		fprintf(stderr, "usage: ui_test PACK SCRATCH_DIR\n");
		return 2;
	}
	test_table();
	round_trip("nothing", argv[1], argv[2], "", 0);
	round_trip("one byte", argv[1], argv[2], "x", 1);
	/* 15, 270 and 525 cross the literal length extensions (15 + 255k) */
	for (i = 0; i < 600; i++) {
		seed = seed * 1103515245 + 12345;
		in[i] = (char)(seed >> 16);
	}
	round_trip("15 random bytes", argv[1], argv[2], in, 15);
	round_trip("270 random bytes", argv[1], argv[2], in, 270);
	round_trip("600 random bytes", argv[1], argv[2], in, 600);
	/* one long run: a match whose length needs many extension bytes */
	memset(in, 'a', 40000);
	round_trip("40000 times one byte", argv[1], argv[2], in, 40000);
	/* text with repeats at many distances, past a 64 KiB window */
	for (i = 0; i < MAX_OUT; i++)
		in[i] = "kvstore web console "[i % 20] ^ (char)(i / 7000);
	round_trip("64 KiB of text", argv[1], argv[2], in, MAX_OUT);
	printf("ui_test: %d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}

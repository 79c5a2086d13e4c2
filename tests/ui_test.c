/*
 * ui_test.c: tests of ui.c and its unpacker (cm.c), run as "ui_test PACK
 * SCRATCH_DIR": inputs of every kind (none, one byte, random bytes, long
 * runs, text) go through the real ui/pack (PACK) and back through
 * cm_unpack; garbage unpacks to the length asked without harm; and the
 * console's own files unpack and match their checksums (ui_init). A
 * failed check prints one line naming the case; the last line counts the
 * checks, and the exit status is 0 only if all passed.
 */

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm.h"
#include "ui.h"

#define MAX_OUT		(1 << 16)

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

/* The console's files, as the server serves them. */
static void
test_files(void)
{
	const struct ui_file *f;

	tcase = "ui_init";
	CHECK(ui_init() == 0 && ui_ready() == 0 && ui_ready() == 0);
	f = ui_file(NULL, 0);
	CHECK(f != NULL && f->len > 0 && strcmp(f->type,
	    "text/html; charset=utf-8") == 0 && memcmp(f->data,
	    "<!doctype html>", 15) == 0);
	f = ui_file("app.js", 6);
	CHECK(f != NULL && f->len > 1000 && strcmp(f->type,
	    "text/javascript; charset=utf-8") == 0);
	CHECK(ui_file("app.css", 7) != NULL && ui_file("icon.svg", 8) != NULL);
	CHECK(ui_file("app.j", 5) == NULL && ui_file("nope", 4) == NULL);
}

/* Bytes cm_pack never made: any length comes out, and nothing breaks. */
static void
test_garbage(void)
{
	static const unsigned char junk[] = "\xff\x00\x13\x37garbage";

	tcase = "garbage";
	memset(out, 0, sizeof(out));
	CHECK(cm_unpack(junk, sizeof(junk) - 1, out, 1000) == 0);
	CHECK(cm_unpack(junk, 0, out, 100) == 0);
	CHECK(cm_unpack(junk, 1, out, 0) == 0);
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
	CHECK(len > 0 && cm_unpack(packed, len, out, n) == 0 &&
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
	test_files();
	test_garbage();
	round_trip("nothing", argv[1], argv[2], "", 0);
	round_trip("one byte", argv[1], argv[2], "x", 1);
	/* bytes no model predicts */
	for (i = 0; i < 600; i++) {
		seed = seed * 1103515245 + 12345;
		in[i] = (char)(seed >> 16);
	}
	round_trip("15 random bytes", argv[1], argv[2], in, 15);
	round_trip("270 random bytes", argv[1], argv[2], in, 270);
	round_trip("600 random bytes", argv[1], argv[2], in, 600);
	/* one long run: certainty, where the coder's range is thinnest */
	memset(in, 'a', 40000);
	round_trip("40000 times one byte", argv[1], argv[2], in, 40000);
	/* text with repeats at many distances, past a 64 KiB window */
	for (i = 0; i < MAX_OUT; i++)
		in[i] = "kvstore web console "[i % 20] ^ (char)(i / 7000);
	round_trip("64 KiB of text", argv[1], argv[2], in, MAX_OUT);
	printf("ui_test: %d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}

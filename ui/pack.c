/*
 * pack: a build-time tool, run on the build machine (HOSTCC), never part of
 * kvstore. It reads one web console file on stdin and prints it as a C byte
 * array in the packed form that ui.c unpacks at start, halving what the
 * console adds to the binary without any library.
 *
 * The packed form is LZ4's block format: a run of sequences, each
 *   token     1 byte: literal count (high 4 bits), match length - 4 (low 4)
 *   [count]   when a nibble is 15: more bytes added to it, until one < 255
 *   literals  copied as they are
 *   offset    2 bytes, little-endian: the match starts this far back
 *   [length]  extension bytes for the match length, as for the count
 * and the last sequence is literals only. Matching is greedy over the whole
 * input (files are a few KiB, so a plain search takes milliseconds).
 *
 * Usage: pack NAME <file  prints ui_NAME[], UI_NAME_LEN and UI_NAME_ETAG
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IN		(1 << 20)	/* the console is a few tens of KiB */
#define MIN_MATCH	4
#define MAX_OFFSET	65535

static unsigned char in[MAX_IN];
static unsigned char out[MAX_IN + MAX_IN / 255 + 16];
static size_t olen;

static void
length(size_t n)
{
	for (; n >= 255; n -= 255)
		out[olen++] = 255;
	out[olen++] = (unsigned char)n;
}

static void
sequence(const unsigned char *lit, size_t nlit, size_t off, size_t mlen)
{
	size_t m = mlen >= MIN_MATCH ? mlen - MIN_MATCH : 0;

	out[olen++] = (unsigned char)((nlit < 15 ? nlit : 15) << 4 |
	    (m < 15 ? m : 15));
	if (nlit >= 15)
		length(nlit - 15);
	memcpy(out + olen, lit, nlit);
	olen += nlit;
	if (mlen == 0)
		return;
	out[olen++] = off & 0xff;
	out[olen++] = off >> 8;
	if (m >= 15)
		length(m - 15);
}

static void
pack(size_t n)
{
	size_t i = 0, lit = 0, j, k, best, off;

	while (i < n) {
		best = off = 0;
		for (j = i > MAX_OFFSET ? i - MAX_OFFSET : 0; j < i; j++) {
			for (k = 0; i + k < n && in[j + k] == in[i + k]; k++)
				;
			if (k >= best && k >= MIN_MATCH) {	/* nearest */
				best = k;
				off = i - j;
			}
		}
		if (best == 0) {
			i++;
			continue;
		}
		sequence(in + lit, i - lit, off, best);
		i += best;
		lit = i;
	}
	sequence(in + lit, n - lit, 0, 0);
}

int
main(int argc, char **argv)
{
	size_t n, i;
	uint32_t h = 2166136261u;	/* FNV-1a: the ETag */
	char upper[64];

	if (argc != 2 || strlen(argv[1]) >= sizeof(upper)) {
		fprintf(stderr, "usage: pack NAME <file\n");
		return 2;
	}
	n = fread(in, 1, sizeof(in), stdin);
	if (ferror(stdin) || !feof(stdin)) {
		fprintf(stderr, "pack: %s: read error or over %d bytes\n",
		    argv[1], MAX_IN - 1);
		return 1;
	}
	for (i = 0; i < n; i++)
		h = (h ^ in[i]) * 16777619u;
	for (i = 0; argv[1][i] != '\0'; i++)
		upper[i] = (char)(argv[1][i] >= 'a' && argv[1][i] <= 'z' ?
		    argv[1][i] - 'a' + 'A' : argv[1][i]);
	upper[i] = '\0';
	pack(n);
	printf("/* %zu bytes, packed into %zu */\n", n, olen);
	printf("static const unsigned char ui_%s[] = {", argv[1]);
	for (i = 0; i < olen; i++)
		printf("%s0x%02x,", i % 16 == 0 ? "\n" : "", out[i]);
	printf("\n};\n#define UI_%s_LEN %zu\n#define UI_%s_ETAG %lu\n",
	    upper, n, upper, (unsigned long)h);
	return fflush(stdout) == 0 ? 0 : 1;
}

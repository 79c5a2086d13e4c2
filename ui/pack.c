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
 * and the last sequence is literals only. The parse is optimal (pack) and
 * each match search plain (files are a few KiB: milliseconds).
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
#define LONG_MATCH	64	/* past this, a match is extended, not sought */

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

/*
 * The longest earlier match of in[i..n), nearest first among equals, into
 * *off; returns its length (0 if under MIN_MATCH).
 */
static size_t
longest(size_t i, size_t n, size_t *off)
{
	size_t j, k, best = 0;

	for (j = i > MAX_OFFSET ? i - MAX_OFFSET : 0; j < i; j++) {
		for (k = 0; i + k < n && in[j + k] == in[i + k]; k++)
			;
		if (k >= best && k >= MIN_MATCH) {
			best = k;
			*off = i - j;
		}
	}
	return best;
}

/* Bytes a match of mlen costs: token, offset, length extensions. */
static size_t
match_cost(size_t mlen)
{
	size_t m = mlen - MIN_MATCH;

	return 3 + (m >= 15 ? (m - 15) / 255 + 1 : 0);
}

/*
 * Optimal parsing, as LZ4's high-compression mode does: cost[i] is the
 * fewest bytes that encode in[i..n), a literal costing one and a match of
 * any length up to the longest there its match_cost; the shortest path
 * from 0 is the packing. A prefix of the longest match is a match too, so
 * each position needs only its longest. About a tenth smaller than taking
 * each longest match greedily.
 */
static void
pack(size_t n)
{
	static size_t cost[MAX_IN + 1], take[MAX_IN], moff[MAX_IN];
	size_t i, lit = 0, len, l, c;

	cost[n] = 1;	/* the last sequence's token */
	for (i = n, len = 0; i-- > 0;) {
		cost[i] = cost[i + 1] + 1;
		take[i] = 0;
		/*
		 * In a long repeat, the match one byte on, one byte longer:
		 * searching again at each of its bytes would be quadratic.
		 */
		if (len >= LONG_MATCH && i >= moff[i + 1] &&
		    in[i - moff[i + 1]] == in[i]) {
			moff[i] = moff[i + 1];
			len++;
		} else
			len = longest(i, n, &moff[i]);
		/* Past 2 * LONG_MATCH, only the whole match is tried. */
		for (l = MIN_MATCH; l <= len; l = l < 2 * LONG_MATCH ? l + 1 :
		    len > l ? len : l + 1)
			if ((c = match_cost(l) + cost[i + l]) < cost[i]) {
				cost[i] = c;
				take[i] = l;
			}
	}
	for (i = 0; i < n;) {
		if (take[i] == 0) {
			i++;
			continue;
		}
		sequence(in + lit, i - lit, moff[i], take[i]);
		i += take[i];
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

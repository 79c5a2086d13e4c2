/*
 * pack: a build-time tool, run on the build machine (HOSTCC), never part of
 * kvstore. It reads one web console file on stdin and prints it as a C byte
 * array packed by cm.c's cm_pack, which ui.c unpacks at start with
 * cm_unpack, the same model run the other way: about a third of the
 * console's bytes, without any library.
 *
 * Usage: pack NAME <file  prints ui_NAME[], UI_NAME_LEN and UI_NAME_ETAG
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm.h"

#define MAX_IN		(1 << 20)	/* the console is a few tens of KiB */

static unsigned char in[MAX_IN];
static unsigned char out[MAX_IN + MAX_IN / 8 + 64];
static size_t olen;

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
	if ((olen = cm_pack(in, n, out)) == 0) {
		fprintf(stderr, "pack: %s: out of memory\n", argv[1]);
		return 1;
	}
	printf("/* %zu bytes, packed into %zu */\n", n, olen);
	printf("static const unsigned char ui_%s[] = {", argv[1]);
	for (i = 0; i < olen; i++)
		printf("%s0x%02x,", i % 16 == 0 ? "\n" : "", out[i]);
	printf("\n};\n#define UI_%s_LEN %zu\n#define UI_%s_ETAG %lu\n",
	    upper, n, upper, (unsigned long)h);
	return fflush(stdout) == 0 ? 0 : 1;
}

/*
 * libFuzzer target: the JSON reader (json.c) fed arbitrary bytes, with a
 * token array too small for some inputs, and its answer checked: as many
 * tokens as it said, each one's children inside it, each string inside
 * the decoded buffer, which is exactly as long as the text (make fuzz),
 * so that a decode running past it is caught.
 */

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define MAX_TOKENS	64

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_tok tok[MAX_TOKENS];
	const char *why;
	char *text, *sbuf;
	size_t pos;
	int n, i;

	/* Copies of exactly size bytes: a read or write past is reported. */
	if ((text = malloc(size + 1)) == NULL ||
	    (sbuf = malloc(size + 1)) == NULL) {
		free(text);
		return 0;
	}
	memcpy(text, data, size);
	n = json_parse(text, size, tok, MAX_TOKENS, sbuf, &pos, &why);
	if (n == -1 && (pos > size || why == NULL))
		abort();
	for (i = 0; i < n; i++) {
		if (tok[i].t_end <= (size_t)i || tok[i].t_end > (size_t)n ||
		    tok[i].t_end > tok[0].t_end || tok[i].t_pos >= size)
			abort();
		if (tok[i].t_type == JSON_STRING && (tok[i].t_str < sbuf ||
		    tok[i].t_str + tok[i].t_n > sbuf + size))
			abort();
		if (tok[i].t_type == JSON_OBJECT && tok[i].t_n > 0 &&
		    json_member(tok, i, "key") < -1)
			abort();
	}
	free(text);
	free(sbuf);
	return 0;
}

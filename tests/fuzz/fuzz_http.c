/*
 * libFuzzer target: the HTTP request and answer parsers, the chunked
 * decoder behind either, and percent-decoding, fed arbitrary bytes (make
 * fuzz). The same bytes go to both parsers: they share the field code.
 */

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "util.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* What the code under test logs is not looked at here. */
static void
quiet(const char *level, const char *msg)
{
	(void)level;
	(void)msg;
}

/* The body after a head of n bytes as it would arrive, in two reads. */
static void
dechunk(const char *buf, size_t size, size_t n, char *out)
{
	struct http_chunk_state st;
	size_t consumed, decoded, more;

	memset(&st, 0, sizeof(st));
	st.max = 1 << 20;
	if (http_dechunk(&st, buf + n, (size - n) / 2, out, &consumed,
	    &decoded) == 0) {
		n += consumed;
		(void)http_dechunk(&st, buf + n, size - n, out + decoded,
		    &consumed, &more);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_request r;
	struct http_response rs;
	const char *buf = (const char *)data;
	char *out;
	int n;

	log_set_sink(quiet);

	if ((out = malloc(size + 1)) == NULL)
		return 0;
	n = http_parse(buf, size, &r);
	if (n > 0 && r.chunked)
		dechunk(buf, size, (size_t)n, out);
	n = http_parse_response(buf, size, &rs);
	if (n > 0 && rs.chunked)
		dechunk(buf, size, (size_t)n, out);
	if (n == -1 && rs.error == NULL)
		__builtin_trap();	/* -1 always says why */
	(void)http_unescape(buf, size, out);
	free(out);
	return 0;
}

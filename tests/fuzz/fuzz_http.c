/*
 * libFuzzer target: the HTTP request parser, the chunked decoder and
 * percent-decoding, fed arbitrary bytes (make fuzz).
 */

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "util.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* What the code under test logs is not looked at here. */
static void
quiet(const char *level, const char *msg)
{
	(void)level;
	(void)msg;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_request r;
	struct http_chunk_state st;
	const char *buf = (const char *)data;
	char *out;
	size_t consumed, decoded, off;
	int n;

	log_set_sink(quiet);

	if ((out = malloc(size + 1)) == NULL)
		return 0;
	n = http_parse(buf, size, &r);
	if (n > 0 && r.chunked) {
		/* The body as it would arrive, in two reads. */
		memset(&st, 0, sizeof(st));
		st.max = 1 << 20;
		off = (size_t)n;
		if (http_dechunk(&st, buf + off, (size - off) / 2, out,
		    &consumed, &decoded) == 0) {
			off += consumed;
			(void)http_dechunk(&st, buf + off, size - off, out,
			    &consumed, &decoded);
		}
	}
	(void)http_unescape(buf, size, out);
	free(out);
	return 0;
}

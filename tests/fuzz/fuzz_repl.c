/*
 * libFuzzer target: the replication record decoder, over a whole batch
 * as a replica receives it (make fuzz).
 */

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "repl.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

void
kv_log(const char *level, const char *fmt, ...)
{
	(void)level;
	(void)fmt;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct repl_record rec;
	char again[2048];
	ssize_t n;
	size_t off;

	for (off = 0; off < size; off += (size_t)n) {
		if ((n = repl_decode((const char *)data + off, size - off,
		    &rec)) <= 0)
			break;
		/* What decodes must encode back to the same bytes. */
		if ((size_t)n <= sizeof(again) && (repl_encode(again,
		    sizeof(again), rec.op, rec.seq, rec.key, rec.klen, rec.val,
		    rec.vlen) != (size_t)n || memcmp(again, data + off, n) != 0))
			__builtin_trap();
	}
	return 0;
}

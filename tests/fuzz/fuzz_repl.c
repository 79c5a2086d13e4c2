/*
 * libFuzzer target: the replication record decoder, over a whole batch
 * as a replica receives it (make fuzz).
 */

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "repl.h"
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
	struct repl_record rec;
	char again[2048];
	ssize_t n;
	size_t off;

	log_set_sink(quiet);

	for (off = 0; off < size; off += (size_t)n) {
		if ((n = repl_decode((const char *)data + off, size - off,
		    &rec)) <= 0)
			break;
		/* What decodes must encode back to the same bytes. */
		if ((size_t)n <= sizeof(again) && (repl_encode_exp(again,
		    sizeof(again), rec.op, rec.seq, rec.key, rec.klen, rec.val,
		    rec.vlen, rec.expires) != (size_t)n ||
		    memcmp(again, data + off, n) != 0))
			__builtin_trap();
	}
	return 0;
}

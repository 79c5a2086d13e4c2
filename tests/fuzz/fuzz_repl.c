/*
 * libFuzzer target: the replication record decoder, over a whole batch
 * as a replica receives it (make fuzz): every record must encode back to
 * its bytes (a transaction's 'p', 'x' and 'd' too), and repl_group_len
 * must agree with the records it spans.
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
	ssize_t n, glen;
	size_t off, gend = 0, nrec = 0, seen = 0;

	log_set_sink(quiet);

	for (off = 0; off < size; off += (size_t)n) {
		if (off == gend) {	/* a group starts here: its length */
			glen = repl_group_len((const char *)data + off,
			    size - off, &nrec);
			gend = glen > 0 ? off + (size_t)glen : size + 1;
			seen = 0;
		}
		if ((n = repl_decode((const char *)data + off, size - off,
		    &rec)) <= 0)
			break;
		/* What decodes must encode back to the same bytes. */
		if ((size_t)n <= sizeof(again) && (repl_encode_exp(again,
		    sizeof(again), rec.op | (rec.more ? REPL_MORE : 0),
		    rec.seq, rec.key, rec.klen, rec.val, rec.vlen,
		    rec.expires) != (size_t)n ||
		    memcmp(again, data + off, n) != 0))
			__builtin_trap();
		/* A whole group ends at its first record without REPL_MORE,
		 * and counts every record up to it. */
		seen++;
		if (gend <= size && (off + (size_t)n == gend) != !rec.more)
			__builtin_trap();
		if (gend <= size && off + (size_t)n == gend && seen != nrec)
			__builtin_trap();
	}
	return 0;
}

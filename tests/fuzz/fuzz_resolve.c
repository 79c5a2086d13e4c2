/*
 * libFuzzer target: resolve.c's answer parser fed arbitrary bytes as the
 * answer to a fixed query (A or AAAA by the first byte), with the input's
 * id bytes set to the query's, so that inputs reach past the id check
 * (make fuzz). The answer is a copy of exactly its size, so that a read
 * past it is caught; the count must fit the room given.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "resolve.h"

#define MAX_OUT	4	/* smaller than RESOLVE_MAX: the bound is tried */

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char	 q[RESOLVE_UDP_MAX], out[MAX_OUT][16], *a;
	int		 qlen, n;

	if (size < 2 || (a = malloc(size)) == NULL)
		return 0;
	qlen = resolve_query(q, "kvstore-0.kvstore.default.svc.cluster.local",
	    data[0] & 1 ? RESOLVE_T_AAAA : RESOLVE_T_A, 0x4b1d);
	memcpy(a, data, size);
	a[0] = q[0];
	a[1] = q[1];
	n = resolve_parse(a, size, q, (size_t)qlen, out, MAX_OUT);
	if (n > MAX_OUT || (n < 0 && n != RESOLVE_ENONAME &&
	    n != RESOLVE_EFAIL && n != RESOLVE_EFOREIGN))
		abort();
	free(a);
	return 0;
}

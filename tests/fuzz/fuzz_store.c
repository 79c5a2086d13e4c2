/*
 * libFuzzer target: opening (and so recovering) a store from arbitrary file
 * bytes, then reading, scanning and writing what it recovered (make fuzz).
 */

#include <sys/types.h>

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "util.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* What the code under test logs is not looked at here. */
static void
quiet(const char *level, const char *msg)
{
	(void)level;
	(void)msg;
}

static int
visit(void *arg, const char *key, size_t klen, const struct store_value *v)
{
	struct store *s = arg;
	struct store_value again;

	/* A damaged but clean file may list what get cannot find: only
	 * memory safety is asserted here (the sanitizers). */
	(void)v;
	(void)store_get(s, key, klen, &again);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	struct store *s;
	char err[256];
	uint64_t cursor = 0, seq;
	int fd;

	log_set_sink(quiet);

	if (path[0] == '\0')
		snprintf(path, sizeof(path), "/tmp/kvstore-fuzz-%d.db",
		    (int)getpid());
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	close(fd);
	if ((s = store_open(path, STORE_FSYNC_NO, err, sizeof(err))) != NULL) {
		while (cursor != UINT64_MAX)
			store_scan(s, &cursor, 64, visit, s);
		(void)store_put(s, "fuzz", 4, "value", 5, 0, &seq);
		(void)store_del(s, "fuzz", 4, 0, &seq);
		store_close(s);
	}
	unlink(path);
	return 0;
}

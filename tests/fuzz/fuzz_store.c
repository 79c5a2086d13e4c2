/*
 * libFuzzer target: opening (and so recovering) a store from arbitrary file
 * bytes, then reading, scanning and writing what it recovered; and
 * checking and salvaging the same bytes, then opening the salvaged store,
 * which must open (make fuzz).
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

static void
range(void *arg, uint64_t off, uint64_t len, int damaged, const char *key,
    size_t klen)
{
	size_t i;

	/* The key is read as the CLI would print it. */
	for (i = 0; i < klen; i++)
		*(unsigned *)arg += (unsigned char)key[i];
	(void)off;
	(void)len;
	(void)damaged;
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

/* Open path, list and read it all, write and delete a key, close. */
static int
use(const char *path)
{
	struct store *s;
	char err[256];
	uint64_t cursor = 0, seq;

	if ((s = store_open(path, STORE_FSYNC_NO, err, sizeof(err))) == NULL)
		return -1;
	while (cursor != UINT64_MAX)
		store_scan(s, &cursor, 64, visit, s);
	(void)store_put(s, "fuzz", 4, "value", 5, 0, &seq);
	(void)store_del(s, "fuzz", 4, 0, &seq);
	store_close(s);
	return 0;
}

/* The input as the file at path. */
static int
write_input(const char *path, const uint8_t *data, size_t size)
{
	int fd, r = 0;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1)
		return -1;
	if (write(fd, data, size) != (ssize_t)size)
		r = -1;
	close(fd);
	return r;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64], ipath[72];
	struct store_report rep;
	char err[256], kept[128];
	unsigned sum = 0;
	int rc;

	log_set_sink(quiet);

	if (path[0] == '\0') {
		snprintf(path, sizeof(path), "/tmp/kvstore-fuzz-%d.db",
		    (int)getpid());
		snprintf(ipath, sizeof(ipath), "%s.idx", path);
	}
	/* Recovery on the bytes as they are, then check and salvage. */
	if (write_input(path, data, size) == -1)
		return 0;
	(void)use(path);
	if (write_input(path, data, size) == -1)
		return 0;
	rc = store_check(path, &rep, range, &sum, err, sizeof(err));
	if (rc != -1 && store_salvage(path, &rep, kept, sizeof(kept), err,
	    sizeof(err)) == 0) {
		/* What salvage writes is a sound store. */
		if (use(path) == -1 ||
		    store_check(path, &rep, NULL, NULL, err, sizeof(err)) != 0)
			abort();
		unlink(kept);
	}
	unlink(path);
	unlink(ipath);	/* left by an open: never the next input's */
	return 0;
}

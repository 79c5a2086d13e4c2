/*
 * libFuzzer target: the request handlers behind the route table (api.c,
 * wait.c, events.c, replica.c, status.c) fed whole requests, each first
 * copied as wait.c copies a parked request (req_copy), so that a handler
 * reading past its request's bytes is caught (make fuzz). An input is a
 * sequence of requests, so that the replica's full sync runs through
 * begin, data and end with numbers out of order and out of range. Its
 * first byte picks the node's role. /repl/register is left out: it would
 * start a pusher that connects to whatever URL the input names.
 *
 * replica.c is built into this file (a unity build) to reach its sync
 * token, which is random, so that an input's "token=0" can stand for the
 * sync in progress. Its requests come from the primary's address
 * (tests/from_primary.c: no input has a connection), or no sync would
 * begin.
 */

#include "../../replica.c"

#include <stdio.h>
#include <unistd.h>

#include "api.h"
#include "events.h"
#include "wait.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char	 dir[] = "/tmp/kvstore-fuzz-api-XXXXXX";
static const char *const files[] = { "kvstore.db", "kvstore.db.sync",
	"kvstore.db.compact" };

/* What the code under test logs is not looked at here. */
static void
quiet(const char *level, const char *msg)
{
	(void)level;
	(void)msg;
}

/* At exit: the store's files and their directory. */
static void
cleanup(void)
{
	char path[sizeof(dir) + 32];
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		(void)unlink(path);
	}
	(void)rmdir(dir);
}

/* The next "\n--\n" in p[0..len), or NULL. */
static const char *
separator(const char *p, size_t len)
{
	size_t i;

	for (i = 0; i + 4 <= len; i++)
		if (memcmp(p + i, "\n--\n", 4) == 0)
			return p + i;
	return NULL;
}

static int
setup(void)
{
	struct repl_config rc;
	struct store_stats st;
	char path[sizeof(dir) + 16], err[256];

	log_set_sink(quiet);
	if (mkdtemp(dir) == NULL)
		return -1;
	atexit(cleanup);
	snprintf(path, sizeof(path), "%s/kvstore.db", dir);
	if ((node.store = store_open(path, STORE_FSYNC_NO, err,
	    sizeof(err))) == NULL)
		return -1;
	node.data_dir = dir;
	node.primary_url = "";
	node.max_value = 1 << 16;
	node.max_parked = 64;
	node.min_seq_wait_ms = 0;
	node.replicas_wait_ms = 0;
	memset(&rc, 0, sizeof(rc));
	rc.token = "";
	rc.self_url = "http://127.0.0.1:9";
	rc.advertise_url = "http://127.0.0.1:9";
	rc.primary_url = "";
	store_stats(node.store, &st);
	wait_init(api_handle);
	events_init(4);
	return repl_init(&rc, st.repl_id, st.last_seq);
}

/* One request from data[0..size): the handlers see a copy of it. */
static void
one(const char *data, size_t size)
{
	struct http_request r, *c;
	char query[512];
	const char *t;
	size_t tlen, qlen;
	int n;

	if ((n = http_parse(data, size, &r)) <= 0)
		return;
	if (r.path_len >= 14 && memcmp(r.path, "/repl/register", 14) == 0)
		return;
	/* "token=0" names the sync in progress, which no input can guess. */
	if (r.query != NULL && r.query_len < sizeof(query) - 24 &&
	    (t = http_query(&r, "token", &tlen)) != NULL && tlen == 1 &&
	    *t == '0') {
		qlen = (size_t)snprintf(query, sizeof(query), "%.*s%llu%.*s",
		    (int)(t - r.query), r.query, (unsigned long long)sync_token,
		    (int)(r.query_len - (size_t)(t + 1 - r.query)), t + 1);
		r.query = query;
		r.query_len = qlen;
	}
	r.body = data + n;
	r.body_len = size - (size_t)n;
	r.id = 1;	/* no such connection: answers go nowhere */
	if ((c = req_copy(&r, 1)) == NULL)
		return;
	api_handle(c);
	free(c);
	wait_run();
	/* The loop's next turns: a sync batch's slices, the end's swap. */
	while (batch_id != 0 || end_id != 0)
		replica_step();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	const char *p = (const char *)data, *end, *next;

	if (!ready) {
		if (setup() == -1)
			abort();
		ready = 1;
	}
	if (size == 0)
		return 0;
	node.role = data[0] & 1 ? ROLE_PRIMARY : ROLE_REPLICA;
	/* Requests are separated by a line "--": each one's body runs to it. */
	for (p++, end = (const char *)data + size; p < end; p = next) {
		const char *sep = separator(p, (size_t)(end - p));

		next = sep != NULL ? sep + 4 : end;
		one(p, (size_t)((sep != NULL ? sep : end) - p));
	}
	return 0;
}

/*
 * replica_test: unit tests for replica.c's full sync, driven as the poll
 * loop drives it (a handler per request, then the tick) but without the
 * loop: the answers are caught on their way out (http_reply, wrapped) and
 * so are the wake-ups (http_wake). They check what keeps the loop turning
 * while a replica takes a full sync: a data batch is applied a slice per
 * turn and answered at its end, with other requests answered in between,
 * and sync/end is answered only once the copy is on disk; a slice ends
 * between a transaction's records, never inside their group. No timing is
 * asserted: a slice is 1 ms, and a batch of BIG_RECORDS takes far longer on
 * any machine, so it takes more than one; the group tests pass a deadline
 * long past, so every look at the clock says stop. Prints a line per failure
 * and ends with "replica_test: N passed, M failed"; exits 0 only if all
 * passed.
 *
 * Build (make tests/replica_test): replica.c is built into this file, as
 * in tests/fuzz/fuzz_api.c, to reach its state; the other modules are
 * linked with -Wl,--wrap=http_reply,--wrap=http_wake, and with
 * tests/from_primary.c: no request here has a connection, and each is
 * taken as the primary's.
 */

#include "../replica.c"

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define ID_A		"0123456789abcdef0123456789abcdef"
#define BIG_RECORDS	100000	/* some 12 MiB: ~100 ms to apply */
#define VALUE_BYTES	100
#define MAX_STEPS	1000000	/* turns before a test gives up */
#define MAX_WAIT_SEC	60	/* for the copy's flush */
#define GROUP_RECORDS	(3 * APPLY_CLOCK + 3)	/* the clock is read inside */
#define TTL_MS		3600000	/* a group's expiring puts: an hour on */

int	__wrap_http_reply(uint64_t, int, const char *, const char *,
	    const void *, size_t);
void	__wrap_http_wake(void);

static int passed, failed;
static char dir[] = "/tmp/kvstore-replica-test-XXXXXX";

/* The answers caught, by request id: one each, as http.c allows. */
static struct {
	uint64_t	 id;
	int		 status;
	char		 body[256];
} answers[64];
static int nanswers;
static int wakes;

#define CHECK(cond, ...) check((cond), __LINE__, __VA_ARGS__)

static void
check(int ok, int line, const char *fmt, ...)
{
	va_list ap;

	if (ok) {
		passed++;
		return;
	}
	failed++;
	fprintf(stdout, "FAIL line %d: ", line);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
}

int
__wrap_http_reply(uint64_t id, int status, const char *ctype,
    const char *extra, const void *body, size_t len)
{
	(void)ctype;
	(void)extra;
	if (nanswers == (int)(sizeof(answers) / sizeof(answers[0])))
		nanswers = 0;	/* tests look at recent answers */
	answers[nanswers].id = id;
	answers[nanswers].status = status;
	if (len >= sizeof(answers[0].body))
		len = sizeof(answers[0].body) - 1;
	memcpy(answers[nanswers].body, body, len);
	answers[nanswers].body[len] = '\0';
	nanswers++;
	return 0;
}

void
__wrap_http_wake(void)
{
	wakes++;
}

/* The status id was answered with, or 0 while it waits. */
static int
answer(uint64_t id, const char **body)
{
	int i;

	for (i = nanswers - 1; i >= 0; i--)
		if (answers[i].id == id) {
			if (body != NULL)
				*body = answers[i].body;
			return answers[i].status;
		}
	return 0;
}

/* What replica.c logs is not looked at here. */
static void
quiet(const char *level, const char *msg)
{
	(void)level;
	(void)msg;
	if (getenv("REPLICA_TEST_VERBOSE") != NULL)
		fprintf(stderr, "  [%s] %s\n", level, msg);
}

/*
 * Hand "POST target" with body to handler as request id, as http.c would
 * (the request's bytes are gone once the handler returns).
 */
static void
post(void (*handler)(struct http_request *), uint64_t id, const char *target,
    const char *body, size_t len)
{
	struct http_request r;
	char *buf;
	int n, head;

	head = snprintf(NULL, 0, "POST %s HTTP/1.1\r\nHost: t\r\n"
	    "Content-Length: %zu\r\n\r\n", target, len);
	if ((buf = malloc((size_t)head + len + 1)) == NULL) {
		CHECK(0, "out of memory for a request");
		return;
	}
	snprintf(buf, (size_t)head + 1, "POST %s HTTP/1.1\r\nHost: t\r\n"
	    "Content-Length: %zu\r\n\r\n", target, len);
	memcpy(buf + head, body, len);
	if ((n = http_parse(buf, (size_t)head + len, &r)) != head) {
		CHECK(0, "the request to %s parses (%d)", target, n);
		free(buf);
		return;
	}
	r.body = buf + head;
	r.body_len = len;
	r.id = id;
	handler(&r);
	memset(buf, 'x', (size_t)head + len);	/* as a moved buffer */
	free(buf);
}

/* POST /repl/sync/begin for seq records; the token, or 0. */
static uint64_t
begin(uint64_t id, uint64_t seq)
{
	char target[160];
	const char *body = "";

	snprintf(target, sizeof(target), "/repl/sync/begin?id=%s&seq=%llu"
	    "&keys=%llu", ID_A, (unsigned long long)seq,
	    (unsigned long long)seq);
	post(replica_sync_begin, id, target, "", 0);
	if (answer(id, &body) != 200)
		return 0;
	return strtoull(body, NULL, 10);
}

/* Records k<first>.. k<first + n - 1>, seqs first + 1.., into *lenp bytes. */
static char *
records(int first, int n, size_t *lenp)
{
	char key[32], val[VALUE_BYTES], *buf;
	size_t cap, len = 0;
	int i;

	memset(val, 'v', sizeof(val));
	cap = (size_t)n * repl_encoded_len(sizeof(key), sizeof(val));
	if ((buf = malloc(cap)) == NULL)
		return NULL;
	for (i = first; i < first + n; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		len += repl_encode(buf + len, cap - len, REPL_PUT,
		    (uint64_t)i + 1, key, strlen(key), val, sizeof(val));
	}
	*lenp = len;
	return buf;
}

/*
 * Begin a sync of BIG_RECORDS records (request begin_id), and set *batchp
 * to them, *lenp to their length and target[cap] to the sync/data target.
 * Returns 0, or -1 having said why.
 */
static int
big_sync(uint64_t begin_id, char **batchp, size_t *lenp, char *target,
    size_t cap)
{
	uint64_t token;

	if ((token = begin(begin_id, BIG_RECORDS)) == 0) {
		CHECK(0, "sync/begin answers a token");
		return -1;
	}
	if ((*batchp = records(0, BIG_RECORDS, lenp)) == NULL) {
		CHECK(0, "out of memory for a batch");
		return -1;
	}
	snprintf(target, cap, "/repl/sync/data?id=%s&token=%llu", ID_A,
	    (unsigned long long)token);
	return 0;
}

/* Turns of the loop (its tick) until id is answered; how many it took. */
static int
turns_until(uint64_t id)
{
	int n;

	for (n = 0; n < MAX_STEPS && answer(id, NULL) == 0; n++)
		replica_step();
	return n;
}

/*
 * A big sync/data batch: the handler returns with it unanswered and the
 * loop woken, the tick applies it a slice at a time, another request is
 * answered between slices, and the batch's answer comes at its end.
 */
static void
test_batch_in_slices(void)
{
	char target[160], *batch;
	const char *body = "";
	size_t len;
	int n, w;

	if (big_sync(1, &batch, &len, target, sizeof(target)) == -1)
		return;
	w = wakes;
	post(replica_sync_data, 2, target, batch, len);
	CHECK(answer(2, NULL) == 0, "a %zu-byte batch is not applied in "
	    "its handler's turn", len);
	CHECK(wakes > w, "the loop is woken to go on with it");
	CHECK(batch_off > 0 && batch_off < len, "one slice applied part of "
	    "it (%zu of %zu bytes)", batch_off, len);

	/* A probe between two slices is answered at once. */
	post(replica_state, 3, "/repl/state", "", 0);
	CHECK(answer(3, NULL) == 200, "a request between slices is "
	    "answered in its turn");
	CHECK(answer(2, NULL) == 0, "while the batch still waits");

	post(replica_sync_data, 4, target, batch, len);
	CHECK(answer(4, &body) == 409 && strstr(body, "busy") != NULL,
	    "a second batch meanwhile is refused: %s", body);

	n = turns_until(2);
	CHECK(answer(2, &body) == 200, "the batch is answered once applied: "
	    "%d %s", answer(2, NULL), body);
	CHECK(n >= 1, "over more turns (%d after its own)", n);
	CHECK(batch_id == 0 && batch_len == 0, "nothing is left pending");
	free(batch);
}

/*
 * sync/end: not answered in its handler's turn (the flusher writes the
 * copy to disk first), then swapped in and answered; the store holds
 * every key of the batch.
 */
static void
test_end_waits_for_the_flush(void)
{
	struct store_value v;
	struct store_stats st;
	struct pollfd pfd;
	char target[160];
	const char *body = "";
	uint64_t gen = node.store_gen;
	time_t end = time(NULL) + MAX_WAIT_SEC;

	snprintf(target, sizeof(target), "/repl/sync/end?id=%s&seq=%d"
	    "&token=%llu", ID_A, BIG_RECORDS, (unsigned long long)sync_token);
	post(replica_sync_end, 5, target, "", 0);
	CHECK(answer(5, NULL) == 0, "sync/end is not answered in its "
	    "handler's turn");
	CHECK(end_id == 5, "it waits for the copy's flush");
	CHECK(node.store_gen == gen, "the old store serves meanwhile");
	post(replica_state, 6, "/repl/state", "", 0);
	CHECK(answer(6, NULL) == 200, "a request meanwhile is answered");

	/* The loop waits on the copy's notify fd (its watch), or ticks. */
	while (answer(5, NULL) == 0 && time(NULL) < end) {
		pfd.fd = store_notify_fd(sync_store);
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 10) > 0)
			end_step(NULL);
		else
			replica_step();
	}
	CHECK(answer(5, &body) == 200, "sync/end is answered once the "
	    "copy is on disk and swapped in: %d %s", answer(5, NULL), body);
	CHECK(node.store_gen == gen + 1, "the new store serves");
	store_stats(node.store, &st);
	CHECK(st.keys == BIG_RECORDS && st.last_seq == BIG_RECORDS &&
	    st.synced, "it holds every key (%llu) at seq %llu",
	    (unsigned long long)st.keys, (unsigned long long)st.last_seq);
	CHECK(store_get(node.store, "k0", 2, &v) == 1 && v.seq == 1 &&
	    v.len == VALUE_BYTES, "the first key");
	CHECK(store_get(node.store, "k99999", 6, &v) == 1 &&
	    v.seq == BIG_RECORDS, "the last key");
}

/*
 * Append n records to buf[cap] at *lenp: keys "<name>0".., seqs from *seq
 * on, put "v", as one transaction's group (all but the last 'p' or 'x')
 * when group is set; every third put expires at expires unless it is 0.
 */
static void
add_records(char *buf, size_t cap, size_t *lenp, const char *name, int n,
    int group, uint64_t *seq, uint64_t expires)
{
	char key[32];
	size_t k;
	int i, op;

	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "%s%d", name, i);
		op = REPL_PUT | (group && i + 1 < n ? REPL_MORE : 0);
		k = repl_encode_exp(buf + *lenp, cap - *lenp, op, (*seq)++, key,
		    strlen(key), "v", 1, i % 3 == 0 ? expires : 0);
		CHECK(k > 0, "record %s fits", key);
		*lenp += k;
	}
}

/* How many of the keys "<name>0".. "<name><n - 1>" node.store holds. */
static int
count_keys(const char *name, int n)
{
	struct store_value v;
	char key[32];
	int i, found = 0;

	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "%s%d", name, i);
		found += store_get(node.store, key, strlen(key), &v);
	}
	return found;
}

/*
 * apply_records with a deadline long past, as a sync batch's slices are
 * applied: it stops at each look at the clock, every APPLY_CLOCK records,
 * but never inside a transaction's group, which takes more than that.
 * After each stop the store holds all of the group or none of it, and
 * the group's puts keep their expiries ('x' records).
 */
static void
test_clock_never_stops_inside_a_group(void)
{
	struct store_value v;
	char buf[8192];
	const char *why = "";
	uint64_t seq, applied, expires = wall_ms() + TTL_MS;
	size_t len = 0, off = 0, gstart, gend;
	int rc, n, stops = 0, inside = 0;

	applied = store_last_seq(node.store);
	seq = applied + 1;
	add_records(buf, sizeof(buf), &len, "lone-a", APPLY_CLOCK / 2, 0, &seq,
	    0);
	gstart = len;
	add_records(buf, sizeof(buf), &len, "grp", GROUP_RECORDS, 1, &seq,
	    expires);
	gend = len;
	add_records(buf, sizeof(buf), &len, "lone-b", 2 * APPLY_CLOCK, 0, &seq,
	    0);
	do {
		rc = apply_records(node.store, buf, len, &off, &applied, 1,
		    &why);
		n = count_keys("grp", GROUP_RECORDS);
		stops += rc == 1;
		inside += rc == 1 && off > gstart && off < gend;
		CHECK(n == 0 || n == GROUP_RECORDS, "stopped at byte %zu (the "
		    "group is %zu..%zu), the store holds %d of the group's %d "
		    "keys", off, gstart, gend, n, GROUP_RECORDS);
	} while (rc == 1 && stops < 100);
	CHECK(rc == 0, "the batch is applied in the end: %d %s", rc, why);
	CHECK(inside == 0, "no stop inside the group (%d)", inside);
	CHECK(stops >= 2, "the clock stopped it more than once (%d)", stops);
	CHECK(applied == seq - 1, "every record applied: %llu of %llu",
	    (unsigned long long)applied, (unsigned long long)seq - 1);
	CHECK(store_get(node.store, "grp0", 4, &v) == 1 &&
	    v.expires == expires, "a group's put with an expiry keeps it");
	CHECK(store_get(node.store, "grp1", 4, &v) == 1 && v.expires == 0,
	    "and one without has none");
}

/*
 * A group that could not be applied to its end is not begun: none of it
 * is written, the apply fails, and the next batch applies as if it never
 * came. Each case is a group of 3 from the next seq; bad names the record
 * that is wrong.
 */
static void
test_malformed_group_applies_nothing(void)
{
	static const struct {
		const char	*what;
		int		 bad;		/* 1 or 2 */
		int		 gap;		/* its seq skips one */
		int		 end;		/* it is an 'E' record */
	} cases[] = {
		{ "a gap inside", 1, 1, 0 },
		{ "a gap at the end", 2, 1, 0 },
		{ "an END record for an end", 2, 0, 1 },
	};
	char buf[1024], key[32];
	const char *why;
	uint64_t applied, before, seq;
	size_t len, off, i;
	int j, op;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		before = applied = store_last_seq(node.store);
		seq = applied + 1;
		len = off = 0;
		why = "";
		for (j = 0; j < 3; j++) {
			snprintf(key, sizeof(key), "bad%zu-%d", i, j);
			op = j < 2 ? REPL_PUT | REPL_MORE : REPL_PUT;
			if (j == cases[i].bad && cases[i].gap)
				seq++;
			if (j == cases[i].bad && cases[i].end)
				len += repl_encode(buf + len, sizeof(buf) - len,
				    REPL_END, seq++, NULL, 0, NULL, 0);
			else
				len += repl_encode(buf + len, sizeof(buf) - len,
				    op, seq++, key, strlen(key), "v", 1);
		}
		CHECK(apply_records(node.store, buf, len, &off, &applied, 0,
		    &why) == -1 && strstr(why, "transaction") != NULL,
		    "%s: the apply fails: %s", cases[i].what, why);
		snprintf(key, sizeof(key), "bad%zu-", i);
		CHECK(count_keys(key, 3) == 0 && applied == before &&
		    store_last_seq(node.store) == before,
		    "%s: none of it is applied (%d keys, seq %llu)",
		    cases[i].what, count_keys(key, 3),
		    (unsigned long long)store_last_seq(node.store));
	}
	/* The next group applies whole. */
	len = off = 0;
	applied = store_last_seq(node.store);
	seq = applied + 1;
	add_records(buf, sizeof(buf), &len, "after", 3, 1, &seq, 0);
	CHECK(apply_records(node.store, buf, len, &off, &applied, 0,
	    &why) == 0 && count_keys("after", 3) == 3 && applied == seq - 1,
	    "a good group after them applies whole");
}

/* A new sync/begin answers the batch still being applied, and drops it. */
static void
test_begin_drops_a_pending_batch(void)
{
	char target[160], *batch;
	const char *body = "";
	size_t len;

	if (big_sync(7, &batch, &len, target, sizeof(target)) == -1)
		return;
	post(replica_sync_data, 8, target, batch, len);
	CHECK(answer(8, NULL) == 0, "the batch waits");
	CHECK(begin(9, 10) != 0, "another sync begins");
	CHECK(answer(8, &body) == 409 && strstr(body, "another full sync")
	    != NULL, "the batch is answered 409: %s", body);
	CHECK(batch_id == 0, "and dropped");
	replica_step();
	CHECK(answer(8, NULL) == 409, "and never applied further");
	free(batch);
	replica_close();
	CHECK(sync_store == NULL, "replica_close drops the sync");
}

/*
 * A snapshot's END leaves only once every write it carries, and its seq,
 * may leave the node (node.replicable_seq: under FSYNC=always, what is on
 * its disk); a key written after the snapshot began, and staged, holds it
 * back too. Meanwhile the producer says "later", never "the end". While
 * it streams, node.snapshots counts it (the tick holds idle compaction),
 * until it ends or its client goes away.
 */
static void
test_snapshot_end_waits(void)
{
	struct snapshot *sn;
	char out[1 << 16], end[64];
	size_t len = 0, elen;
	uint64_t seq;
	ssize_t n = 0;
	int i;

	for (i = 0; i < 100; i++) {
		snprintf(out, sizeof(out), "s%d", i);
		CHECK(store_put(node.store, out, strlen(out), "v", 1, 0,
		    NULL) == 1, "put %s", out);
	}
	seq = store_last_seq(node.store);
	if ((sn = snapshot_new(seq)) == NULL) {
		CHECK(0, "snapshot_new: out of memory");
		return;
	}
	CHECK(node.snapshots == 1, "a snapshot streaming: %d", node.snapshots);
	CHECK(store_put(node.store, "late", 4, "v", 1, 0, NULL) == 1,
	    "a put after the snapshot began");
	node.replicable_seq = seq;
	for (i = 0; i < 100 && (n = snapshot_produce(sn, out + len,
	    sizeof(out) - len)) > 0; i++)
		len += (size_t)n;
	CHECK(n == HTTP_STREAM_LATER, "the keys, then later: %zd", n);
	CHECK(snapshot_produce(sn, out + len, sizeof(out) - len) ==
	    HTTP_STREAM_LATER, "and later again");
	elen = repl_encode(end, sizeof(end), REPL_END, seq, "", 0, "", 0);
	CHECK(len > elen && memcmp(out + len - elen, end, elen) != 0,
	    "no END while the late put is not replicable");
	node.replicable_seq = seq + 1;
	n = snapshot_produce(sn, out + len, sizeof(out) - len);
	CHECK(n == (ssize_t)elen && memcmp(out + len, end, elen) == 0,
	    "the END once it is: %zd bytes", n);
	CHECK(snapshot_produce(sn, out, sizeof(out)) == 0, "then the end");
	CHECK(node.snapshots == 0, "none streaming once it ended: %d",
	    node.snapshots);

	/* Cut short: its client went away (the connection calls with no
	 * buffer), and it no longer holds compaction either. */
	if ((sn = snapshot_new(seq)) == NULL) {
		CHECK(0, "snapshot_new: out of memory");
		return;
	}
	CHECK(snapshot_produce(sn, out, 100) > 0, "a first piece");
	CHECK(snapshot_produce(sn, NULL, 0) == 0, "the connection closed");
	CHECK(node.snapshots == 0, "none streaming once cut short: %d",
	    node.snapshots);
}

int
main(void)
{
	char path[sizeof(dir) + 16], err[256];

	log_set_level(LOG_DEBUG);
	log_set_sink(quiet);
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/kvstore.db", dir);
	if ((node.store = store_open(path, STORE_FSYNC_NO, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "store_open: %s\n", err);
		return 2;
	}
	node.role = ROLE_REPLICA;
	node.data_dir = dir;
	node.primary_url = "";
	node.max_value = 1 << 20;
	test_snapshot_end_waits();
	test_batch_in_slices();
	test_end_waits_for_the_flush();
	test_clock_never_stops_inside_a_group();
	test_malformed_group_applies_nothing();
	test_begin_drops_a_pending_batch();
	if (store_close(node.store) == -1)
		CHECK(0, "store_close: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/kvstore.db", dir);
	(void)unlink(path);
	(void)rmdir(dir);
	printf("replica_test: %d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}

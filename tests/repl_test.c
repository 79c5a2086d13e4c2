/*
 * repl_test: unit tests for repl.c. The codec is checked with tables; the
 * backlog, pushers, recovery and announcer through the public API against
 * fake nodes: threads on 127.0.0.1 that speak just enough HTTP/1.1 to
 * answer /repl/state, apply, sync, snapshot and register the way
 * kvstore.c's loop does. Prints a line per failure and ends with
 * "repl_test: N passed, M failed"; exits 0 only if all passed.
 *
 * Build: cc -I. -o tests/repl_test tests/repl_test.c repl.c client.c resolve.c
 * http.c util.c -Wl,--wrap=resolve_host -lpthread
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "repl.h"
#include "recover.h"
#include "resolve.h"
#include "store.h"
#include "util.h"

#define ID_A	"0123456789abcdef0123456789abcdef"
#define ID_B	"fedcba9876543210fedcba9876543210"
#define TOKEN	"sekrit-token"
#define MAXC	64		/* connections a fake keeps at once */
#define MARK_EVERY	1024		/* repl.c's: seqs between two ring marks */

static int passed, failed;
static pthread_mutex_t logmu = PTHREAD_MUTEX_INITIALIZER;
static int token_logged;	/* a log line carried the token */
static int verbose;
static char logbuf[1 << 16];	/* the latest lines, for logged() */
static size_t loglen;

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

/* repl.c's logger; also checks that no line ever carries the token. */
static void
log_sink(const char *level, const char *msg)
{
	pthread_mutex_lock(&logmu);
	if (strstr(msg, TOKEN) != NULL)
		token_logged = 1;
	if (verbose)
		fprintf(stderr, "  [%s] %s\n", level, msg);
	if (loglen + strlen(msg) + 2 > sizeof(logbuf))
		loglen = 0;	/* start over; tests look at recent lines */
	loglen += (size_t)snprintf(logbuf + loglen, sizeof(logbuf) - loglen,
	    "%s\n", msg);
	pthread_mutex_unlock(&logmu);
}

static void
sleep_ms(int ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Wait up to ms for a log line containing s. */
static int
logged(const char *s, int ms)
{
	uint64_t end = mono_ms() + (uint64_t)ms;
	int found;

	for (;;) {
		pthread_mutex_lock(&logmu);
		found = strstr(logbuf, s) != NULL;
		pthread_mutex_unlock(&logmu);
		if (found || mono_ms() >= end)
			return found;
		sleep_ms(10);
	}
}

static void
log_clear(void)
{
	pthread_mutex_lock(&logmu);
	loglen = 0;
	logbuf[0] = '\0';
	pthread_mutex_unlock(&logmu);
}

/* ---- Growable byte strings ---- */

struct bytes {
	char	*p;
	size_t	 len;
	size_t	 cap;
};

static void
bytes_add(struct bytes *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 64;
		if ((b->p = realloc(b->p, b->cap)) == NULL)
			abort();
	}
	if (n > 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
}

/* Encode one record onto b. */
static void
add_rec(struct bytes *b, int op, uint64_t seq, const char *k, size_t kl,
    const char *v, size_t vl)
{
	char buf[4096];
	size_t n;

	n = repl_encode(buf, sizeof(buf), op, seq, k, kl, v, vl);
	if (n == 0)
		abort();
	bytes_add(b, buf, n);
}

/* ---- Codec tables ---- */

static void
test_codec(void)
{
	static const struct {
		int		 op;
		uint64_t	 seq;
		const char	*key;
		size_t		 klen;
		const char	*val;
		size_t		 vlen;
	} ok[] = {
		{ 'P', 1, "k", 1, "v", 1 },
		{ 'P', 2, "a\0b\xff", 4, "\0\r\n\xfe", 4 },
		{ 'P', UINT64_MAX, "key", 3, "", 0 },
		{ 'D', 0x0102030405060708ULL, "\x80gone", 5, NULL, 0 },
		{ 'E', 42, NULL, 0, NULL, 0 },
	};
	static char bigkey[1025], buf[2048];
	struct repl_record r;
	size_t i, n, k;
	ssize_t d;
	int prefix_ok;

	memset(bigkey, 'x', sizeof(bigkey));
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		n = repl_encode(buf, sizeof(buf), ok[i].op, ok[i].seq,
		    ok[i].key, ok[i].klen, ok[i].val, ok[i].vlen);
		CHECK(n == repl_encoded_len(ok[i].klen, ok[i].vlen) && n ==
		    15 + ok[i].klen + ok[i].vlen, "encode %zu: length %zu",
		    i, n);
		d = repl_decode(buf, n, &r);
		CHECK(d == (ssize_t)n && r.op == ok[i].op &&
		    r.seq == ok[i].seq && r.klen == ok[i].klen &&
		    r.vlen == ok[i].vlen &&
		    memcmp(r.key, ok[i].key == NULL ? "" : ok[i].key,
		    r.klen) == 0 &&
		    memcmp(r.val, ok[i].val == NULL ? "" : ok[i].val,
		    r.vlen) == 0, "round trip %zu: decode gave %zd", i, d);
		prefix_ok = 1;
		for (k = 0; k < n; k++)
			if (repl_decode(buf, k, &r) != 0)
				prefix_ok = 0;
		CHECK(prefix_ok, "record %zu: a proper prefix is not 0", i);
		CHECK(repl_encode(buf, n - 1, ok[i].op, ok[i].seq, ok[i].key,
		    ok[i].klen, ok[i].val, ok[i].vlen) == 0,
		    "encode %zu into a short buffer", i);
	}
	/* little-endian, byte by byte */
	n = repl_encode(buf, sizeof(buf), 'P', 0x0102030405060708ULL, "ab", 2,
	    "xyz", 3);
	CHECK(n == 20 && memcmp(buf, "P\x08\x07\x06\x05\x04\x03\x02\x01"
	    "\x02\x00\x03\x00\x00\x00" "abxyz", 20) == 0, "wire layout");
	/* a record followed by the next one: decode takes just the first */
	memcpy(buf + n, buf, n);
	CHECK(repl_decode(buf, 2 * n, &r) == (ssize_t)n, "two records");

	/* malformed: -1 */
	/* a put with an expiry: 'X', the expiry before the value */
	n = repl_encode_exp(buf, sizeof(buf), 'P', 9, "ab", 2, "xyz", 3,
	    0x1122334455667788ULL);
	CHECK(n == 28 && memcmp(buf, "X\x09\0\0\0\0\0\0\0\x02\0\x0b\0\0\0"
	    "ab\x88\x77\x66\x55\x44\x33\x22\x11xyz", 28) == 0,
	    "X wire layout");
	CHECK(repl_decode(buf, n, &r) == (ssize_t)n && r.op == 'P' &&
	    r.seq == 9 && r.expires == 0x1122334455667788ULL && r.vlen == 3 &&
	    memcmp(r.val, "xyz", 3) == 0 && r.klen == 2, "X decodes as P");
	CHECK(repl_decode(buf, n - 1, &r) == 0, "X cut short");
	CHECK(repl_encode_exp(buf, 27, 'P', 9, "ab", 2, "xyz", 3, 1) == 0,
	    "X does not fit");
	CHECK(repl_encode_exp(buf, sizeof(buf), 'D', 9, "ab", 2, "", 0, 5) ==
	    17 && buf[0] == 'D', "a delete has no expiry");
	memcpy(buf, "X\1\0\0\0\0\0\0\0\1\0\7\0\0\0k1234567", 23);
	CHECK(repl_decode(buf, 23, &r) == -1, "X shorter than its expiry");
	memcpy(buf, "X\1\0\0\0\0\0\0\0\1\0\x08\0\0\0k\0\0\0\0\0\0\0\0", 24);
	CHECK(repl_decode(buf, 24, &r) == -1, "X with expiry 0 (P says never)");
	CHECK(repl_decode(buf, 1, &r) == 0, "X, 1 byte");
	/* a transaction's put with an expiry, more of its group to come: 'x' */
	n = repl_encode_exp(buf, sizeof(buf), 'P' | REPL_MORE, 9, "ab", 2,
	    "xyz", 3, 0x1122334455667788ULL);
	CHECK(n == 28 && memcmp(buf, "x\x09\0\0\0\0\0\0\0\x02\0\x0b\0\0\0"
	    "ab\x88\x77\x66\x55\x44\x33\x22\x11xyz", 28) == 0,
	    "x wire layout: X with REPL_MORE");
	CHECK(repl_decode(buf, n, &r) == (ssize_t)n && r.op == 'P' && r.more &&
	    r.expires == 0x1122334455667788ULL && r.vlen == 3 &&
	    memcmp(r.val, "xyz", 3) == 0, "x decodes as a P that expires, "
	    "more to come");
	CHECK(repl_encode_exp(buf, sizeof(buf), 'P' | REPL_MORE, 9, "ab", 2,
	    "xyz", 3, 0) == 20 && buf[0] == 'p', "no expiry: 'p'");
	n = repl_encode_exp(buf, sizeof(buf), 'D' | REPL_MORE, 9, "ab", 2, "",
	    0, 5);
	CHECK(n == 17 && buf[0] == 'd', "a group's delete has no expiry");
	memcpy(buf, "x\1\0\0\0\0\0\0\0\1\0\x08\0\0\0k\0\0\0\0\0\0\0\0", 24);
	CHECK(repl_decode(buf, 24, &r) == -1, "x with expiry 0");
	memcpy(buf, "e\1\0\0\0\0\0\0\0\0\0\0\0\0\0", 15);
	CHECK(repl_decode(buf, 15, &r) == -1 && repl_decode(buf, 1, &r) == -1,
	    "no 'e': an END is in no group");
	r.expires = 1;
	CHECK(repl_decode("P\1\0\0\0\0\0\0\0\1\0\0\0\0\0k", 16, &r) == 16 &&
	    r.expires == 0, "P never expires");
	memcpy(buf, "Q\1\0\0\0\0\0\0\0\1\0\0\0\0\0k", 16);
	CHECK(repl_decode(buf, 16, &r) == -1, "bad op");
	CHECK(repl_decode(buf, 1, &r) == -1, "bad op, 1 byte");
	memcpy(buf, "P\1\0\0\0\0\0\0\0\0\0\1\0\0\0v", 16);
	CHECK(repl_decode(buf, 16, &r) == -1, "P with klen 0");
	memcpy(buf, "P\1\0\0\0\0\0\0\0\x01\x04\0\0\0\0", 15);
	CHECK(repl_decode(buf, 15, &r) == -1, "P with klen 1025");
	memcpy(buf, "P\1\0\0\0\0\0\0\0\x00\x04\0\0\0\0", 15);
	CHECK(repl_decode(buf, 15, &r) == 0, "P with klen 1024: incomplete");
	memcpy(buf, "P\1\0\0\0\0\0\0\0\1\0\0\0\0\x80", 15);
	CHECK(repl_decode(buf, 15, &r) == -1, "P with vlen 2^31");
	memcpy(buf, "D\1\0\0\0\0\0\0\0\1\0\1\0\0\0kv", 17);
	CHECK(repl_decode(buf, 17, &r) == -1, "D with vlen 1");
	memcpy(buf, "D\1\0\0\0\0\0\0\0\0\0\0\0\0\0", 15);
	CHECK(repl_decode(buf, 15, &r) == -1, "D with klen 0");
	memcpy(buf, "E\1\0\0\0\0\0\0\0\1\0\0\0\0\0k", 16);
	CHECK(repl_decode(buf, 16, &r) == -1, "E with a key");
	CHECK(repl_encode(buf, sizeof(buf), 'P', 1, "", 0, "v", 1) == 0,
	    "encode P klen 0");
	CHECK(repl_encode(buf, sizeof(buf), 'P', 1, bigkey, 1025, "", 0) == 0,
	    "encode P klen 1025");
	CHECK(repl_encode(buf, sizeof(buf), 'P', 1, bigkey, 1024, "", 0) ==
	    1039, "encode P klen 1024");
	CHECK(repl_encode(buf, sizeof(buf), 'D', 1, "k", 1, "v", 1) == 0,
	    "encode D with a value");
	CHECK(repl_encode(buf, sizeof(buf), 'Q', 1, "k", 1, "", 0) == 0,
	    "encode bad op");
}

/* ---- A fake node ---- */

struct fake {
	pthread_mutex_t	 mu;
	int		 lfd;
	int		 port;
	char		 url[64];
	const char	*token;
	pthread_t	 acceptor;
	pthread_t	 thr[256];
	int		 nthr;
	int		 fds[MAXC];
	int		 stop;
	int		 refuse;	/* close connections at once */
	int		 fail_state;	/* answer /repl/state 503 */
	int		 delay_ms;	/* before answering an apply */
	/* its replica state */
	char		 id[65];
	uint64_t	 seq;
	struct bytes	 log;		/* records applied through apply */
	struct bytes	 synclog;	/* records from sync/data */
	uint64_t	 froms[64];	/* from= of non-empty applies */
	int		 nfroms;
	int		 applies, heartbeats, states, begins, datas, ends;
	unsigned long long session;	/* the one open, 0 before any */
	int		 sessions;	/* opened so far */
	int		 no_session;	/* applies that named none or another */
	int		 badtokens;	/* sync data or end without the begin's token */
	int		 registers, snapshots, unauthorized, conflicts;
	int		 split_groups;	/* batches ending inside a group */
	uint64_t	 state_at[16];	/* when the first /repl/states came */
	uint64_t	 hb_at[16];	/* when the first heartbeats came */
	uint64_t	 reg_at[16];	/* when the first registrations came */
	size_t		 max_body;
	char		 regbody[256];
	/* what it serves as /repl/snapshot */
	struct bytes	 snap;
	char		 snap_id[65];
	char		 snap_seed[33];	/* its X-Kv-Seed, none if "" */
	uint64_t	 snap_seq;
	char		 begin_seed[80];	/* seed= of the last sync/begin */
};

static const char *
param(const char *target, const char *name, char *out, size_t cap)
{
	const char *p = strchr(target, '?');
	size_t n = strlen(name), l;

	while (p != NULL) {
		p++;
		if (strncmp(p, name, n) == 0 && p[n] == '=') {
			p += n + 1;
			l = strcspn(p, "& ");
			if (l >= cap)
				l = cap - 1;
			memcpy(out, p, l);
			out[l] = '\0';
			return out;
		}
		p = strchr(p, '&');
	}
	out[0] = '\0';
	return NULL;
}

static int
reply(int fd, int v10, int status, const char *extra, const char *body,
    size_t blen)
{
	char head[512];
	int n;

	n = snprintf(head, sizeof(head), "HTTP/1.%d %d X\r\n%s"
	    "Content-Length: %zu\r\n\r\n", v10 ? 0 : 1, status, extra, blen);
	if (send(fd, head, (size_t)n, MSG_NOSIGNAL) != n)
		return -1;
	if (blen > 0 && send(fd, body, blen, MSG_NOSIGNAL) != (ssize_t)blen)
		return -1;
	return 0;
}

/* Apply a batch the way a replica would: contiguous seqs from seq + 1. */
static int
apply(struct fake *f, const char *body, size_t len)
{
	struct repl_record r;
	size_t off = 0;
	ssize_t n;

	r.more = 0;
	while (off < len) {
		n = repl_decode(body + off, len - off, &r);
		if (n <= 0 || r.seq != f->seq + 1)
			return -1;
		f->seq = r.seq;
		off += (size_t)n;
	}
	f->split_groups += r.more;
	return 0;
}

static void
handle(struct fake *f, int fd, const char *method, const char *target,
    int v10, const char *tok, const char *body, size_t blen)
{
	char out[512], id[80], num[32];
	uint64_t from;
	int n, delay;

	pthread_mutex_lock(&f->mu);
	if (f->token != NULL && strcmp(tok, f->token) != 0) {
		f->unauthorized++;
		pthread_mutex_unlock(&f->mu);
		reply(fd, v10, 401, "", "bad token\n", 10);
		return;
	}
	if (strcmp(target, "/repl/state") == 0) {
		if (f->states < 16)
			f->state_at[f->states] = mono_ms();
		f->states++;
		if (f->fail_state) {
			pthread_mutex_unlock(&f->mu);
			reply(fd, v10, 503, "", "busy\n", 5);
			return;
		}
		n = snprintf(out, sizeof(out), "{\"role\":\"replica\","
		    "\"repl_id\":\"%s\",\"seq\":%llu,\"keys\":0,"
		    "\"synced\":true}", f->id, (unsigned long long)f->seq);
		pthread_mutex_unlock(&f->mu);
		reply(fd, v10, 200, "", out, (size_t)n);
		return;
	}
	/* A session, as a replica opens one; applies must name it. */
	if (strncmp(target, "/repl/session?", 14) == 0) {
		f->session = (unsigned long long)f->sessions++ * 7919 + 101;
		n = snprintf(out, sizeof(out), "%llu\n", f->session);
		pthread_mutex_unlock(&f->mu);
		reply(fd, v10, 200, "", out, (size_t)n);
		return;
	}
	if (strncmp(target, "/repl/apply?", 12) == 0) {
		param(target, "session", num, sizeof(num));
		if (f->session == 0 || strtoull(num, NULL, 10) != f->session) {
			f->no_session++;
			pthread_mutex_unlock(&f->mu);
			reply(fd, v10, 403, "", "no session\n", 11);
			return;
		}
		param(target, "id", id, sizeof(id));
		param(target, "from", num, sizeof(num));
		from = strtoull(num, NULL, 10);
		if (strcmp(id, f->id) != 0 || from != f->seq + 1 ||
		    apply(f, body, blen) == -1) {
			f->conflicts++;
			pthread_mutex_unlock(&f->mu);
			reply(fd, v10, 409, "", "resync: gap\n", 12);
			return;
		}
		if (blen == 0) {
			if (f->heartbeats < 16)
				f->hb_at[f->heartbeats] = mono_ms();
			f->heartbeats++;
		} else {
			f->applies++;
			if (f->nfroms < 64)
				f->froms[f->nfroms++] = from;
			bytes_add(&f->log, body, blen);
		}
		if (blen > f->max_body)
			f->max_body = blen;
		n = snprintf(out, sizeof(out), "%llu\n",
		    (unsigned long long)f->seq);
		delay = f->delay_ms;
		pthread_mutex_unlock(&f->mu);
		if (delay > 0)
			sleep_ms(delay);
		reply(fd, v10, 200, "", out, (size_t)n);
		return;
	}
	if (strncmp(target, "/repl/sync/begin?", 17) == 0) {
		f->begins++;
		param(target, "seed", f->begin_seed, sizeof(f->begin_seed));
		f->synclog.len = 0;
		/* The token names the sync; data and end must carry it. */
		n = snprintf(out, sizeof(out), "%d\n", f->begins);
		pthread_mutex_unlock(&f->mu);
		reply(fd, v10, 200, "", out, (size_t)n);
		return;
	} else if (strncmp(target, "/repl/sync/data?", 16) == 0) {
		param(target, "token", num, sizeof(num));
		if (atoi(num) != f->begins)
			f->badtokens++;
		f->datas++;
		bytes_add(&f->synclog, body, blen);
		if (blen > f->max_body)
			f->max_body = blen;
	} else if (strncmp(target, "/repl/sync/end?", 15) == 0) {
		param(target, "token", num, sizeof(num));
		if (atoi(num) != f->begins)
			f->badtokens++;
		f->ends++;
		param(target, "id", f->id, sizeof(f->id));
		param(target, "seq", num, sizeof(num));
		f->seq = strtoull(num, NULL, 10);
		f->log.len = 0;
	} else if (strcmp(target, "/repl/register") == 0) {
		if (f->registers < 16)
			f->reg_at[f->registers] = mono_ms();
		f->registers++;
		snprintf(f->regbody, sizeof(f->regbody), "%.*s", (int)blen,
		    body);
	} else if (strcmp(target, "/repl/snapshot") == 0 && v10 &&
	    strcmp(method, "GET") == 0) {
		f->snapshots++;
		n = snprintf(out, sizeof(out), "HTTP/1.0 200 OK\r\n"
		    "X-Kv-Repl-Id: %s\r\nX-Kv-Seq: %llu\r\n%s%s%s\r\n",
		    f->snap_id, (unsigned long long)f->snap_seq,
		    f->snap_seed[0] != '\0' ? "X-Kv-Seed: " : "", f->snap_seed,
		    f->snap_seed[0] != '\0' ? "\r\n" : "");
		send(fd, out, (size_t)n, MSG_NOSIGNAL);
		send(fd, f->snap.p, f->snap.len, MSG_NOSIGNAL);
		pthread_mutex_unlock(&f->mu);
		return;
	} else {
		pthread_mutex_unlock(&f->mu);
		reply(fd, v10, 404, "", "no\n", 3);
		return;
	}
	pthread_mutex_unlock(&f->mu);
	reply(fd, v10, 200, "", "ok\n", 3);
}

struct cargs {
	struct fake	*f;
	int		 fd;
	int		 slot;
};

static char *
find_end(char *buf, size_t len)
{
	size_t i;

	for (i = 0; i + 4 <= len; i++)
		if (memcmp(buf + i, "\r\n\r\n", 4) == 0)
			return buf + i;
	return NULL;
}

/* One connection: requests until EOF, an HTTP/1.0 request or stop. */
static void *
serve(void *arg)
{
	struct cargs *a = arg;
	struct fake *f = a->f;
	char *buf, method[16], target[512], tok[128], *e, *h, *v;
	size_t len = 0, cap = 1 << 20, hl, clen;
	ssize_t n;
	int v10;

	buf = malloc(cap);
	for (;;) {
		while ((e = find_end(buf, len)) == NULL) {
			if (len == cap ||
			    (n = recv(a->fd, buf + len, cap - len, 0)) <= 0)
				goto out;
			len += (size_t)n;
		}
		hl = (size_t)(e - buf) + 4;
		*e = '\0';
		if (sscanf(buf, "%15s %511s HTTP/1.", method, target) != 2)
			goto out;
		v10 = strstr(buf, " HTTP/1.0\r\n") != NULL;
		clen = 0;
		tok[0] = '\0';
		for (h = strstr(buf, "\r\n"); h != NULL;
		    h = strstr(h + 2, "\r\n")) {
			v = strchr(h + 2, ':');
			if (v == NULL)
				continue;
			if (strncasecmp(h + 2, "Content-Length:", 15) == 0)
				clen = strtoul(v + 1, NULL, 10);
			if (strncasecmp(h + 2, "X-Kv-Repl-Token:", 16) == 0)
				sscanf(v + 1, " %127[^\r]", tok);
		}
		while (len < hl + clen) {
			if (hl + clen > cap ||
			    (n = recv(a->fd, buf + len, cap - len, 0)) <= 0)
				goto out;
			len += (size_t)n;
		}
		handle(f, a->fd, method, target, v10, tok, buf + hl, clen);
		memmove(buf, buf + hl + clen, len - hl - clen);
		len -= hl + clen;
		if (v10)
			break;
	}
out:
	pthread_mutex_lock(&f->mu);
	f->fds[a->slot] = -1;
	pthread_mutex_unlock(&f->mu);
	close(a->fd);
	free(buf);
	free(a);
	return NULL;
}

static void *
acceptor(void *arg)
{
	struct fake *f = arg;
	struct cargs *a;
	int fd, i, one = 1;

	for (;;) {
		if ((fd = accept(f->lfd, NULL, NULL)) == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			break;
		}
		pthread_mutex_lock(&f->mu);
		for (i = 0; i < MAXC && f->fds[i] != -1; i++)
			;
		if (f->stop || f->refuse || i == MAXC || f->nthr == 256) {
			pthread_mutex_unlock(&f->mu);
			close(fd);
			continue;
		}
		/* answers go out as head + body; no Nagle stall between */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		a = malloc(sizeof(*a));
		a->f = f;
		a->fd = fd;
		a->slot = i;
		f->fds[i] = fd;
		if (pthread_create(&f->thr[f->nthr], NULL, serve, a) != 0) {
			f->fds[i] = -1;
			close(fd);
			free(a);
		} else
			f->nthr++;
		pthread_mutex_unlock(&f->mu);
	}
	return NULL;
}

static struct fake *
fake_start(const char *id, uint64_t seq, const char *token)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int i, one = 1;

	pthread_mutex_init(&f->mu, NULL);
	for (i = 0; i < MAXC; i++)
		f->fds[i] = -1;
	snprintf(f->id, sizeof(f->id), "%s", id);
	f->seq = seq;
	f->token = token;
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    listen(f->lfd, 64) == -1 ||
	    getsockname(f->lfd, (struct sockaddr *)&sa, &sl) == -1) {
		perror("fake");
		exit(2);
	}
	f->port = ntohs(sa.sin_port);
	snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d/", f->port);
	pthread_create(&f->acceptor, NULL, acceptor, f);
	return f;
}

/* Drop every connection, as a restarting node would; keep listening. */
static void
fake_drop(struct fake *f)
{
	int i;

	pthread_mutex_lock(&f->mu);
	for (i = 0; i < MAXC; i++)
		if (f->fds[i] != -1)
			shutdown(f->fds[i], SHUT_RDWR);
	pthread_mutex_unlock(&f->mu);
}

static void
fake_stop(struct fake *f)
{
	int i;

	pthread_mutex_lock(&f->mu);
	f->stop = 1;
	pthread_mutex_unlock(&f->mu);
	shutdown(f->lfd, SHUT_RDWR);
	pthread_join(f->acceptor, NULL);
	close(f->lfd);
	fake_drop(f);
	for (i = 0; i < f->nthr; i++)
		pthread_join(f->thr[i], NULL);
	free(f->log.p);
	free(f->synclog.p);
	free(f->snap.p);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

/* Read a field of f under its mutex. */
static uint64_t
fget(struct fake *f, const uint64_t *u, const int *i)
{
	uint64_t v;

	pthread_mutex_lock(&f->mu);
	v = u != NULL ? *u : (uint64_t)*i;
	pthread_mutex_unlock(&f->mu);
	return v;
}

/* Wait up to ms for f's seq to reach want. */
static int
wait_seq(struct fake *f, uint64_t want, int ms)
{
	uint64_t end = mono_ms() + (uint64_t)ms;

	while (mono_ms() < end) {
		if (fget(f, &f->seq, NULL) == want)
			return 1;
		sleep_ms(10);
	}
	return 0;
}

static int
wait_int(struct fake *f, const int *field, int want, int ms)
{
	uint64_t end = mono_ms() + (uint64_t)ms;

	while (mono_ms() < end) {
		if ((int)fget(f, NULL, field) >= want)
			return 1;
		sleep_ms(10);
	}
	return 0;
}

static struct repl_peer
peer0(void)
{
	struct repl_peer p[4];

	memset(p, 0, sizeof(p));
	if (repl_peers(p, 4) < 1)
		p[0].state = "none";
	return p[0];
}

static int
wait_acked(uint64_t seq, int ms)
{
	uint64_t end = mono_ms() + (uint64_t)ms;

	while (mono_ms() < end) {
		if (peer0().acked_seq == seq)
			return 1;
		sleep_ms(10);
	}
	return 0;
}

static int
wait_state(const char *state, int ms)
{
	uint64_t end = mono_ms() + (uint64_t)ms;

	while (mono_ms() < end) {
		if (strcmp(peer0().state, state) == 0)
			return 1;
		sleep_ms(10);
	}
	return 0;
}

/* Where a registration came from: 127.0.0.1, or an address elsewhere. */
static const struct sockaddr_storage *
from_addr(const char *ip)
{
	static struct sockaddr_storage ss[2];
	static int k;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss[k ^= 1];

	memset(sin, 0, sizeof(ss[0]));
	sin->sin_family = AF_INET;
	(void)inet_pton(AF_INET, ip, &sin->sin_addr);
	return &ss[k];
}

static const struct sockaddr_storage *
from_lo(void)
{
	return from_addr("127.0.0.1");
}

/* Until repl_peers counts n (registered peers count once checked). */
static int
wait_peers(size_t n, int ms)
{
	uint64_t end = mono_ms() + (uint64_t)ms;

	while (repl_peers(NULL, 0) != n && mono_ms() < end)
		sleep_ms(10);
	return repl_peers(NULL, 0) == n;
}

static void
config(struct repl_config *c, const char *self, size_t backlog, size_t batch)
{
	memset(c, 0, sizeof(*c));
	c->token = TOKEN;
	c->self_url = self;
	c->advertise_url = "";
	c->primary_url = "";
	c->backlog_bytes = backlog;
	c->batch_bytes = batch;
	c->timeout_ms = 2000;
	c->recover_wait_ms = 0;
}

/* A fresh primary's: recovery on, waiting wait_ms, its copy beside live. */
static void
recovering_config(struct repl_config *c, const char *self, int wait_ms,
    struct store *live)
{
	config(c, self, 1 << 16, 4096);
	c->recover_wait_ms = wait_ms;
	c->recover = 1;
	c->store = live;
}

/* Stream to the fake replica r (backlog 1 MiB, batches of batch bytes). */
static void
stream_to(struct fake *r, size_t batch)
{
	struct repl_config c;

	config(&c, r->url, 1 << 20, batch);
	CHECK(repl_init(&c, ID_A, 0) == 0, "repl_init");
	CHECK(repl_add_replica(r->url, NULL) == 0, "add replica");
	CHECK(wait_state("streaming", 2000), "streaming (%s)", peer0().state);
}

/* Enqueue write seq (a put with a binary key, or every 7th a delete). */
static void
enqueue_one(struct bytes *expect, uint64_t seq, size_t vmax)
{
	char key[32], val[4096];
	size_t kl, vl, i;

	kl = (size_t)snprintf(key, sizeof(key), "k\x01%llu",
	    (unsigned long long)seq % 97);
	key[kl++] = '\0';	/* a NUL inside the key */
	key[kl++] = (char)0xff;
	vl = vmax > 0 ? (size_t)(seq * 37 % vmax) : 0;
	for (i = 0; i < vl; i++)
		val[i] = (char)(seq + i);
	if (seq % 7 == 0) {
		repl_enqueue('D', seq, key, kl, NULL, 0);
		if (expect != NULL)
			add_rec(expect, 'D', seq, key, kl, NULL, 0);
	} else {
		repl_enqueue('P', seq, key, kl, val, vl);
		if (expect != NULL)
			add_rec(expect, 'P', seq, key, kl, val, vl);
	}
}

/* enqueue_one, then push it, as the main loop's turn ends. */
static void
write_one(struct bytes *expect, uint64_t seq, size_t vmax)
{
	enqueue_one(expect, seq, vmax);
	repl_flush(seq);
}

/* The records for seqs [from, to] that write_one makes. */
static void
expected(struct bytes *b, uint64_t from, uint64_t to, size_t vmax)
{
	char key[32], val[4096];
	size_t kl, vl, i;
	uint64_t seq;

	for (seq = from; seq <= to; seq++) {
		kl = (size_t)snprintf(key, sizeof(key), "k\x01%llu",
		    (unsigned long long)seq % 97);
		key[kl++] = '\0';
		key[kl++] = (char)0xff;
		vl = vmax > 0 ? (size_t)(seq * 37 % vmax) : 0;
		for (i = 0; i < vl; i++)
			val[i] = (char)(seq + i);
		if (seq % 7 == 0)
			add_rec(b, 'D', seq, key, kl, NULL, 0);
		else
			add_rec(b, 'P', seq, key, kl, val, vl);
	}
}

static int
same(struct fake *f, const struct bytes *log, const struct bytes *want)
{
	int r;

	pthread_mutex_lock(&f->mu);
	r = log->len == want->len && memcmp(log->p, want->p, want->len) == 0;
	pthread_mutex_unlock(&f->mu);
	return r;
}

/* ---- The command-line client's request ---- */

/* Leave ones in the stack below the caller: a field read but never set
 * then reads as set, whatever the compiler left there. */
static void
dirty_stack(void)
{
	volatile unsigned char junk[16384];
	size_t i;

	for (i = 0; i < sizeof(junk); i++)
		junk[i] = 0xff;
}

/*
 * The client reads an HTTP/1.0 answer without Content-Length (the streamed
 * listing of kvstore ls, the snapshot) to its end: a stale has_len once
 * made it report the connection closed mid-answer. It never reads a body
 * past the caller's bound (issue 14: it once read any size).
 */
static void
test_client(void)
{
	struct fake *f = fake_start(ID_A, 0, NULL);
	struct client_request rq;
	struct client_response rs;
	struct client *c;
	int rc;

	bytes_add(&f->snap, "every byte to the end", 21);
	snprintf(f->snap_id, sizeof(f->snap_id), "%s", ID_A);
	memset(&rq, 0, sizeof(rq));
	rq.method = "GET";
	rq.target = "/repl/snapshot";
	rq.http10 = 1;
	c = client_new(f->url, 2000, NULL, NULL);
	CHECK(c != NULL, "client_new %s", f->url);
	if (c == NULL)
		return;
	dirty_stack();
	rc = client_call(c, &rq, &rs, 21);
	CHECK(rc == 0 && rs.status == 200 && rs.body_len == 21 &&
	    memcmp(rs.body, "every byte to the end", 21) == 0 &&
	    rs.body[21] == '\0', "an answer without a length is read to its "
	    "end (%d, %s)", rc, client_error(c));
	rc = client_call(c, &rq, &rs, 20);
	CHECK(rc == -1 && errno == EMSGSIZE, "and not past the bound (%d, %s)",
	    rc, client_error(c));
	/* With a length: one byte over the bound fails before reading. */
	rq.target = "/repl/state";
	rq.http10 = 0;
	rc = client_call(c, &rq, &rs, 4096);
	CHECK(rc == 0 && rs.status == 200 && rs.body_len > 20, "a sized "
	    "answer (%d, %s)", rc, client_error(c));
	rc = client_call(c, &rq, &rs, rs.body_len - 1);
	CHECK(rc == -1 && errno == EMSGSIZE, "over the bound (%d, %s)", rc,
	    client_error(c));
	client_free(c);
	CHECK(client_new("http://h:0", 1, NULL, NULL) == NULL &&
	    errno == EINVAL, "port 0 is no URL");
	CHECK(client_new("ftp://h", 1, NULL, NULL) == NULL &&
	    errno == EINVAL, "nor another scheme");
	fake_stop(f);
}

/* ---- Streaming, heartbeats, partial resync, drain ---- */

static void
test_stream(void)
{
	struct repl_config c;
	struct fake *r = fake_start(ID_A, 0, TOKEN);
	struct bytes want = { NULL, 0, 0 };
	struct repl_peer p;
	uint64_t seq, t0, gap;
	int hb;

	config(&c, r->url, 1 << 20, 4096);
	CHECK(repl_init(&c, ID_A, 0) == 0, "repl_init");
	CHECK(repl_add_replica(r->url, NULL) == 0, "add replica");
	CHECK(repl_add_replica(r->url, NULL) == 0 && repl_peers(NULL, 0) == 1,
	    "the same url twice is one peer");
	CHECK(repl_add_replica("ftp://x", NULL) == -1, "a bad url is refused");
	for (seq = 1; seq <= 1000; seq++)
		write_one(NULL, seq, 300);
	expected(&want, 1, 1000, 300);
	CHECK(wait_seq(r, 1000, 5000), "replica reached seq 1000 (at %llu)",
	    (unsigned long long)fget(r, &r->seq, NULL));
	CHECK(same(r, &r->log, &want), "replica got exactly the records "
	    "enqueued, in order (%zu vs %zu bytes)", r->log.len, want.len);
	CHECK(fget(r, NULL, &r->applies) > 1 && r->max_body <= 4096,
	    "batched: %d applies, largest %zu bytes", r->applies,
	    r->max_body);
	CHECK(fget(r, NULL, &r->unauthorized) == 0, "token sent");
	CHECK(fget(r, NULL, &r->sessions) == 1 &&
	    fget(r, NULL, &r->no_session) == 0, "one session opened, and "
	    "every apply named it (%d sessions, %d applies without)",
	    r->sessions, r->no_session);
	CHECK(wait_acked(1000, 1000), "the pusher saw the ack of 1000");
	p = peer0();
	CHECK(strcmp(p.state, "streaming") == 0 && p.acked_seq == 1000 &&
	    p.lag_writes == 0 && p.lag_ms == 0 && p.partial_syncs == 1 &&
	    p.full_syncs == 0 && p.registered == 0, "peer: %s acked %llu "
	    "lag %llu/%llu ms partial %llu full %llu", p.state,
	    (unsigned long long)p.acked_seq, (unsigned long long)p.lag_writes,
	    (unsigned long long)p.lag_ms,
	    (unsigned long long)p.partial_syncs,
	    (unsigned long long)p.full_syncs);

	/* idle: a heartbeat at least every second */
	hb = (int)fget(r, NULL, &r->heartbeats);
	gap = UINT64_MAX;
	if (hb + 3 <= 16 && wait_int(r, &r->heartbeats, hb + 3, 4000)) {
		pthread_mutex_lock(&r->mu);
		gap = r->hb_at[hb + 1] - r->hb_at[hb];
		if (r->hb_at[hb + 2] - r->hb_at[hb + 1] > gap)
			gap = r->hb_at[hb + 2] - r->hb_at[hb + 1];
		pthread_mutex_unlock(&r->mu);
	}
	CHECK(gap <= 1400, "a heartbeat at least every second when idle (the "
	    "longest gap %llu ms)", (unsigned long long)gap);

	/* the replica restarts having lost its last 5 writes */
	pthread_mutex_lock(&r->mu);
	r->seq = 995;
	r->log.len = 0;
	r->nfroms = 0;
	pthread_mutex_unlock(&r->mu);
	fake_drop(r);
	for (seq = 1001; seq <= 1010; seq++)
		write_one(NULL, seq, 300);
	want.len = 0;
	expected(&want, 996, 1010, 300);
	CHECK(wait_seq(r, 1010, 5000), "replica caught up after restart");
	CHECK(same(r, &r->log, &want), "partial resync resent 996..1010 "
	    "exactly (%zu vs %zu bytes)", r->log.len, want.len);
	CHECK(r->nfroms > 0 && r->froms[0] == 996, "first apply after the "
	    "restart is from 996 (got %llu)",
	    (unsigned long long)r->froms[0]);
	p = peer0();
	CHECK(p.partial_syncs == 2 && p.full_syncs == 0,
	    "second partial sync (partial %llu full %llu)",
	    (unsigned long long)p.partial_syncs,
	    (unsigned long long)p.full_syncs);

	/* shutdown drains what is pending, then joins */
	for (seq = 1011; seq <= 1500; seq++)
		write_one(NULL, seq, 300);
	t0 = mono_ms();
	repl_shutdown(3000);
	CHECK(fget(r, &r->seq, NULL) == 1500, "drained to 1500 before "
	    "stopping (at %llu)", (unsigned long long)r->seq);
	CHECK(mono_ms() - t0 < 3000, "shutdown took %llu ms",
	    (unsigned long long)(mono_ms() - t0));
	fake_stop(r);
	free(want.p);
}

/*
 * Under load, everything pending goes in one request: with a replica 20 ms
 * away, 2,000 writes made at once go in batches filled to batch_bytes, not
 * one round trip each.
 */
static void
test_batching(void)
{
	struct fake *r = fake_start(ID_A, 0, TOKEN);
	struct bytes want = { NULL, 0, 0 };
	uint64_t seq;
	size_t largest;
	int applies;

	r->delay_ms = 20;
	stream_to(r, 4096);
	for (seq = 1; seq <= 2000; seq++)
		write_one(NULL, seq, 300);
	expected(&want, 1, 2000, 300);
	CHECK(wait_seq(r, 2000, 20000), "replica reached seq 2000 (at %llu)",
	    (unsigned long long)fget(r, &r->seq, NULL));
	CHECK(same(r, &r->log, &want), "in order, each once");
	pthread_mutex_lock(&r->mu);
	applies = r->applies;
	largest = r->max_body;
	pthread_mutex_unlock(&r->mu);
	CHECK(largest <= 4096 && applies <= (int)(want.len / 2048) + 2,
	    "batches of up to 4096 bytes, half full at least: %d applies for "
	    "%zu bytes, the largest %zu", applies, want.len, largest);
	repl_shutdown(0);
	fake_stop(r);
	free(want.p);
}

/*
 * Nothing past repl_flush's upto is pushed (under FSYNC=always, what is
 * not yet durable); once upto moves, all that it covers goes in one batch.
 * An upto past the newest write pushes everything, and no further.
 */
static void
test_pushable(void)
{
	struct fake *r = fake_start(ID_A, 0, TOKEN);
	struct bytes want = { NULL, 0, 0 };
	uint64_t seq;
	int applies;

	stream_to(r, 1 << 20);
	for (seq = 1; seq <= 100; seq++)
		enqueue_one(&want, seq, 300);
	repl_flush(40);
	CHECK(wait_seq(r, 40, 5000), "pushed up to 40 (at %llu)",
	    (unsigned long long)fget(r, &r->seq, NULL));
	applies = (int)fget(r, NULL, &r->applies);
	sleep_ms(200);
	CHECK(fget(r, &r->seq, NULL) == 40, "and no further (at %llu)",
	    (unsigned long long)fget(r, &r->seq, NULL));
	repl_flush(30);
	repl_flush(100);
	CHECK(wait_seq(r, 100, 5000), "pushed up to 100 (at %llu)",
	    (unsigned long long)fget(r, &r->seq, NULL));
	CHECK(fget(r, NULL, &r->applies) == (uint64_t)applies + 1,
	    "41..100 in one batch (%d applies)",
	    (int)fget(r, NULL, &r->applies) - applies);
	for (seq = 101; seq <= 110; seq++)
		enqueue_one(&want, seq, 300);
	repl_flush(UINT64_MAX);
	CHECK(wait_seq(r, 110, 5000), "an upto past the newest: 110 (at %llu)",
	    (unsigned long long)fget(r, &r->seq, NULL));
	CHECK(same(r, &r->log, &want), "in order, each once");
	repl_shutdown(0);
	fake_stop(r);
	free(want.p);
}

/*
 * repl_group_len: a group is its records up to the first without
 * REPL_MORE, 'x' as 'p'; 0 until that one is whole, -1 if a record is
 * malformed.
 */
static void
test_group_len(void)
{
	char buf[256];
	size_t n = 0, nrec, whole;

	n += repl_encode_exp(buf + n, sizeof(buf) - n, 'P' | REPL_MORE, 1,
	    "a", 1, "1", 1, 1000);
	n += repl_encode(buf + n, sizeof(buf) - n, 'D' | REPL_MORE, 2, "b", 1,
	    NULL, 0);
	n += repl_encode_exp(buf + n, sizeof(buf) - n, 'P', 3, "c", 1, "3", 1,
	    2000);
	whole = n;
	n += repl_encode(buf + n, sizeof(buf) - n, 'P', 4, "d", 1, "4", 1);
	CHECK(buf[0] == 'x' && buf[25] == 'd' && buf[whole - 25] == 'X',
	    "x, d, then X");
	nrec = 0;
	CHECK(repl_group_len(buf, n, &nrec) == (ssize_t)whole && nrec == 3,
	    "x d X is one group of 3, the P after it another (%zu records)",
	    nrec);
	CHECK(repl_group_len(buf, whole - 1, &nrec) == 0, "cut short: 0");
	CHECK(repl_group_len(buf + whole, n - whole, &nrec) == 17 &&
	    nrec == 1, "a lone record is a group of one");
	buf[25] = 'Q';
	CHECK(repl_group_len(buf, n, &nrec) == -1, "a bad op inside: -1");
}

/*
 * A transaction's records travel in one batch: with batches of 4096 bytes
 * and groups of five ~330-byte records, cutting by size alone would end
 * most batches inside a group. The flag itself survives the round trip,
 * with an expiry too ('x'): the replica gets the bytes as enqueued.
 */
static void
test_batching_groups(void)
{
	struct repl_record rec;
	struct bytes want = { NULL, 0, 0 };
	struct fake *r = fake_start(ID_A, 0, TOKEN);
	char val[300], buf[400];
	uint64_t seq, exp;
	size_t n;
	int split, op;

	memset(val, 'g', sizeof(val));
	CHECK(repl_decode(buf, repl_encode(buf, sizeof(buf), 'D' | REPL_MORE,
	    7, "k", 1, NULL, 0), &rec) == 16 && rec.op == 'D' && rec.more &&
	    buf[0] == 'd', "'d': a delete, more follow");
	r->delay_ms = 20;
	stream_to(r, 4096);
	for (seq = 1; seq <= 1000; seq++) {
		op = 'P' | (seq % 5 != 0 ? REPL_MORE : 0);
		exp = seq % 3 == 0 ? 1700000000000ULL + seq : 0;
		repl_enqueue_exp(op, seq, "key", 3, val, sizeof(val), exp);
		n = repl_encode_exp(buf, sizeof(buf), op, seq, "key", 3, val,
		    sizeof(val), exp);
		bytes_add(&want, buf, n);
	}
	repl_flush(1000);
	CHECK(wait_seq(r, 1000, 20000), "replica reached seq 1000 (at %llu)",
	    (unsigned long long)fget(r, &r->seq, NULL));
	split = (int)fget(r, NULL, &r->split_groups);
	CHECK(split == 0, "no batch ended inside a group (%d did)", split);
	CHECK(same(r, &r->log, &want), "p, x, P and X, as enqueued");
	repl_shutdown(0);
	fake_stop(r);
	free(want.p);
}

/* ---- The tail a replica keeps for a primary that lost it ---- */

/*
 * The records of repl_tail_open(id, from), read piece bytes at a time
 * into *out (malloc'd, *len bytes); -1 as repl_tail_open or
 * repl_tail_read.
 */
static int
tail_all(const char *id, uint64_t from, size_t piece, char **out,
    size_t *len, uint64_t *last)
{
	struct repl_tail t;
	char *p;
	ssize_t n;

	*out = NULL;
	*len = 0;
	if (repl_tail_open(&t, id, from, last) == -1)
		return -1;
	do {
		if ((p = realloc(*out, *len + piece)) == NULL)
			return -1;
		*out = p;
		if ((n = repl_tail_read(&t, *out + *len, piece)) == -1)
			return -1;
		*len += (size_t)n;
	} while (n > 0);
	return 0;
}

/*
 * repl_tail gives the backlog's records from a seq, byte for byte as they
 * were enqueued, in pieces of any size, and refuses what it cannot give
 * whole: another data set, a seq that left the ring, one past the newest
 * + 1, and what the ring overwrote or a reset dropped while it was read.
 */
static void
test_tail(void)
{
	static const size_t pieces[] = { 1, 7, 200, 4096 };
	struct repl_config c;
	struct repl_tail t;
	struct bytes want = { NULL, 0, 0 };
	char *out, buf[64];
	size_t len, i;
	uint64_t seq, last = 0;

	config(&c, "http://127.0.0.1:9", 4096, 1024);
	CHECK(repl_init(&c, ID_A, 10) == 0, "repl_init");
	for (seq = 11; seq <= 70; seq++)
		write_one(NULL, seq, 200);
	expected(&want, 61, 70, 200);
	for (i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		CHECK(tail_all(ID_A, 61, pieces[i], &out, &len, &last) == 0 &&
		    last == 70 && len == want.len &&
		    memcmp(out, want.p, len) == 0, "61..70 in pieces of %zu, "
		    "as enqueued (%zu bytes, %zu expected, last %llu)",
		    pieces[i], len, want.len, (unsigned long long)last);
		free(out);
	}
	CHECK(tail_all(ID_A, 71, 64, &out, &len, &last) == 0 && len == 0 &&
	    last == 70, "nothing after the newest");
	free(out);
	errno = 0;
	CHECK(repl_tail_open(&t, ID_A, 11, &last) == -1 && errno == ERANGE,
	    "11 left the 4 KiB ring: ERANGE (%s)", strerror(errno));
	errno = 0;
	CHECK(repl_tail_open(&t, ID_A, 72, &last) == -1 && errno == ERANGE,
	    "past the newest + 1: ERANGE");
	errno = 0;
	CHECK(repl_tail_open(&t, ID_B, 61, &last) == -1 && errno == ESRCH,
	    "another data set: ESRCH");
	/* Overwritten while read: what is left is gone, never skipped. */
	CHECK(repl_tail_open(&t, ID_A, 61, &last) == 0 &&
	    repl_tail_read(&t, buf, 10) == 10, "a piece of 61");
	for (seq = 71; seq <= 130; seq++)
		write_one(NULL, seq, 200);
	errno = 0;
	CHECK(repl_tail_read(&t, buf, sizeof(buf)) == -1 && errno == ERANGE,
	    "61 overwritten meanwhile: ERANGE");
	CHECK(repl_tail_open(&t, ID_A, 121, &last) == 0 && last == 130 &&
	    repl_tail_read(&t, buf, sizeof(buf)) > 0, "121 on");
	repl_reset(ID_B, 130);
	errno = 0;
	CHECK(repl_tail_read(&t, buf, sizeof(buf)) == -1 && errno == ERANGE,
	    "a reset meanwhile: ERANGE");
	CHECK(tail_all(ID_B, 131, 64, &out, &len, &last) == 0 && len == 0,
	    "after a reset: the new data set, empty");
	free(out);
	repl_shutdown(0);
	free(want.p);
}

/* ---- A reader of the backlog: event streams ---- */

/*
 * repl_read copies whole records from a cursor on; one too big for the
 * buffer comes alone without its value, and an 'X' one keeps its expiry
 * (without which it would be malformed). Then: nothing new; a seq before
 * the backlog; a restarted backlog.
 */
static void
test_read(void)
{
	static char big[40000];
	struct repl_config c;
	struct repl_cursor cur;
	struct repl_record r;
	char buf[1024];
	const char *p;
	size_t cut;
	ssize_t n, k;
	uint64_t exp = 1733450000123ULL;

	config(&c, "http://127.0.0.1:9", 1 << 17, 1024);
	CHECK(repl_init(&c, ID_A, 10) == 0, "repl_init");
	memset(big, 'b', sizeof(big));
	repl_enqueue('P', 11, "k11", 3, "v", 1);
	repl_enqueue_exp('P', 12, "k12", 3, "vv", 2, exp);
	repl_enqueue_exp('P', 13, "k13", 3, big, sizeof(big), exp + 1);
	repl_enqueue('P', 14, "k14", 3, big, sizeof(big));
	repl_enqueue('D', 15, "k15", 3, NULL, 0);
	memset(&cur, 0, sizeof(cur));
	cur.seq = 11;
	cur.epoch = UINT64_MAX;
	n = repl_read(&cur, buf, sizeof(buf), &cut);
	p = buf;
	CHECK(n > 0 && cut == 0 && cur.seq == 13 && cur.oldest == 11,
	    "11 and 12 fit, 13 does not (%zd bytes, next %llu)", n,
	    (unsigned long long)cur.seq);
	CHECK((k = repl_decode(p, (size_t)n, &r)) > 0 && r.seq == 11 &&
	    r.expires == 0 && r.vlen == 1, "11: a put");
	p += k;
	CHECK(repl_decode(p, (size_t)(n - k), &r) == n - k && r.seq == 12 &&
	    r.op == REPL_PUT && r.expires == exp && r.vlen == 2 &&
	    memcmp(r.val, "vv", 2) == 0, "12: a put with its expiry");
	n = repl_read(&cur, buf, sizeof(buf), &cut);
	CHECK(n > 0 && repl_decode(buf, (size_t)n, &r) == n &&
	    r.seq == 13 && r.op == REPL_PUT && r.expires == exp + 1 &&
	    r.vlen == 0 && cut == sizeof(big),
	    "13, too big, alone: no value, its expiry, cut %zu", cut);
	n = repl_read(&cur, buf, sizeof(buf), &cut);
	CHECK(n > 0 && repl_decode(buf, (size_t)n, &r) == n &&
	    r.seq == 14 && r.expires == 0 && r.vlen == 0 &&
	    cut == sizeof(big), "14, too big, alone: no value, cut %zu", cut);
	n = repl_read(&cur, buf, sizeof(buf), &cut);
	CHECK(n > 0 && repl_decode(buf, (size_t)n, &r) == n &&
	    r.seq == 15 && r.op == REPL_DEL && cut == 0, "15: a delete");
	CHECK(repl_read(&cur, buf, sizeof(buf), &cut) == 0 && cur.seq == 16,
	    "then nothing new");
	memset(&cur, 0, sizeof(cur));
	cur.seq = 10;
	cur.epoch = UINT64_MAX;
	errno = 0;
	CHECK(repl_read(&cur, buf, sizeof(buf), &cut) == -1 &&
	    errno == ERANGE && cur.oldest == 11, "10 is not held: ERANGE");
	memset(&cur, 0, sizeof(cur));
	cur.seq = 20;
	cur.epoch = UINT64_MAX;
	CHECK(repl_read(&cur, buf, sizeof(buf), &cut) == 0,
	    "20, not written yet: nothing, and no error");
	repl_reset(ID_B, 15);
	errno = 0;
	CHECK(repl_read(&cur, buf, sizeof(buf), &cut) == -1 &&
	    errno == ESTALE, "after a reset: ESTALE");
	repl_shutdown(0);
}

/*
 * A cursor is placed from the ring's marks (a seq every MARK_EVERY): for
 * seqs around the marks, the oldest held and the newest, in a ring that
 * wrapped many times over records of many sizes, the first record read is
 * the one asked for. Then in a backlog restarted at a seq that does not
 * follow (positions go on, the old marks are behind it) and after a reset.
 */
static uint64_t
read_first(uint64_t seq)
{
	struct repl_cursor cur;
	struct repl_record r;
	char buf[4096];
	size_t cut;
	ssize_t n;

	memset(&cur, 0, sizeof(cur));
	cur.seq = seq;
	cur.epoch = UINT64_MAX;
	n = repl_read(&cur, buf, sizeof(buf), &cut);
	if (n <= 0 || repl_decode(buf, (size_t)n, &r) <= 0)
		return 0;
	return r.seq;
}

static void
find_around_marks(uint64_t first, uint64_t last)
{
	uint64_t seq, m, want[8], got;
	int i, bad = 0;

	for (m = (first / MARK_EVERY + 1) * MARK_EVERY; m <= last;
	    m += MARK_EVERY) {
		want[0] = m - 1;
		want[1] = m;
		want[2] = m + 1;
		want[3] = m + MARK_EVERY / 2;
		for (i = 0; i < 4; i++)
			if (want[i] >= first && want[i] <= last &&
			    (got = read_first(want[i])) != want[i]) {
				if (bad++ == 0)
					CHECK(0, "from %llu: %llu first",
					    (unsigned long long)want[i],
					    (unsigned long long)got);
			}
	}
	CHECK(bad == 0, "%d seqs around the marks in %llu..%llu", bad,
	    (unsigned long long)first, (unsigned long long)last);
	for (seq = first; seq < first + 3; seq++)
		CHECK(read_first(seq) == seq, "the oldest: %llu",
		    (unsigned long long)seq);
	CHECK(read_first(last) == last, "the newest: %llu",
	    (unsigned long long)last);
}

/* The oldest seq the backlog holds. */
static uint64_t
oldest_held(void)
{
	struct repl_cursor cur;
	char buf[64];
	size_t cut;

	memset(&cur, 0, sizeof(cur));
	cur.epoch = UINT64_MAX;
	(void)repl_read(&cur, buf, sizeof(buf), &cut);	/* seq 0: ERANGE */
	return cur.oldest;
}

static void
test_find(void)
{
	struct repl_config c;
	uint64_t seq, from = 100000 + 3 * MARK_EVERY - 5;

	config(&c, "http://127.0.0.1:9", 1 << 18, 1024);
	CHECK(repl_init(&c, ID_A, 0) == 0, "repl_init");
	for (seq = 1; seq <= 100000; seq++)
		enqueue_one(NULL, seq, 300);
	CHECK(oldest_held() > 90000, "the ring wrapped: %llu is the oldest",
	    (unsigned long long)oldest_held());
	find_around_marks(oldest_held(), 100000);
	/* A seq that does not follow: the backlog restarts there. */
	for (seq = from; seq <= from + 600; seq++)
		enqueue_one(NULL, seq, 30);
	CHECK(oldest_held() == from, "restarted at %llu",
	    (unsigned long long)from);
	find_around_marks(from, from + 600);
	repl_reset(ID_B, 50);
	for (seq = 51; seq <= 3 * MARK_EVERY; seq++)
		enqueue_one(NULL, seq, 30);
	CHECK(oldest_held() == 51, "reset at 51");
	find_around_marks(51, 3 * MARK_EVERY);
	repl_shutdown(0);
}

/* ---- Full sync when the replica is behind the backlog ---- */

static void
test_full_sync(void)
{
	struct repl_config c;
	struct fake *r = fake_start(ID_A, 0, TOKEN);
	struct bytes want = { NULL, 0, 0 };
	struct repl_peer p;
	char k[16], v[100];
	uint64_t seq;
	int i;

	/* the fake is also this node's own loop: it serves the snapshot */
	for (i = 0; i < 40; i++) {
		snprintf(k, sizeof(k), "key%d", i);
		memset(v, 'a' + i % 26, sizeof(v));
		add_rec(&r->snap, 'P', 0, k, strlen(k), v, (size_t)i * 2);
	}
	bytes_add(&want, r->snap.p, r->snap.len);
	add_rec(&r->snap, 'E', 300, NULL, 0, NULL, 0);
	snprintf(r->snap_id, sizeof(r->snap_id), "%s", ID_A);
	snprintf(r->snap_seed, sizeof(r->snap_seed), "%s", ID_B);
	r->snap_seq = 300;

	config(&c, r->url, 2048, 512);
	CHECK(repl_init(&c, ID_A, 0) == 0, "repl_init");
	for (seq = 1; seq <= 300; seq++)
		write_one(NULL, seq, 20);
	CHECK(repl_add_replica(r->url, from_lo()) == 0, "add replica");
	CHECK(wait_int(r, &r->ends, 1, 5000), "sync/end arrives");
	CHECK(fget(r, NULL, &r->badtokens) == 0,
	    "sync/data and sync/end carry the token sync/begin gave");
	CHECK(wait_seq(r, 300, 2000), "replica at the snapshot's seq");
	CHECK(fget(r, NULL, &r->begins) == 1 && r->datas >= 2 &&
	    r->max_body <= 512, "one begin, %d data posts of at most 512 "
	    "bytes (%zu)", r->datas, r->max_body);
	CHECK(same(r, &r->synclog, &want), "sync/data carried the snapshot's "
	    "records (%zu vs %zu bytes)", r->synclog.len, want.len);
	CHECK(strcmp(r->id, ID_A) == 0, "sync/end carried the id");
	CHECK(strcmp(r->begin_seed, ID_B) == 0, "sync/begin handed on the "
	    "snapshot's seed (\"%s\")", r->begin_seed);
	for (seq = 301; seq <= 310; seq++)
		write_one(NULL, seq, 20);
	want.len = 0;
	expected(&want, 301, 310, 20);
	CHECK(wait_seq(r, 310, 3000), "streams after the full sync");
	CHECK(same(r, &r->log, &want), "streamed 301..310 exactly");
	p = peer0();
	CHECK(p.full_syncs == 1 && p.partial_syncs == 0 && p.registered == 1,
	    "counted one full sync (full %llu partial %llu)",
	    (unsigned long long)p.full_syncs,
	    (unsigned long long)p.partial_syncs);
	CHECK(repl_add_replica(r->url, from_lo()) == 0 && wait_peers(1, 1000),
	    "re-registering is one peer");

	/* a write bigger than the whole backlog: full sync again */
	pthread_mutex_lock(&r->mu);
	r->snap.len = 0;
	memset(v, 'z', sizeof(v));
	add_rec(&r->snap, 'P', 0, "huge", 4, v, sizeof(v));
	add_rec(&r->snap, 'E', 311, NULL, 0, NULL, 0);
	r->snap_seq = 311;
	pthread_mutex_unlock(&r->mu);
	{
		static char hv[3000];

		memset(hv, 'z', sizeof(hv));
		repl_enqueue('P', 311, "huge", 4, hv, sizeof(hv));
		repl_flush(311);
	}
	CHECK(wait_int(r, &r->ends, 2, 5000), "a record bigger than the "
	    "backlog leads to a full sync");
	write_one(NULL, 312, 20);
	CHECK(wait_seq(r, 312, 3000), "streams after it (at %llu)",
	    (unsigned long long)fget(r, &r->seq, NULL));
	p = peer0();
	CHECK(p.full_syncs == 2, "two full syncs (%llu)",
	    (unsigned long long)p.full_syncs);

	/* a 409 on a heartbeat (its id changed): back to a full sync */
	pthread_mutex_lock(&r->mu);
	snprintf(r->id, sizeof(r->id), "%s", ID_B);
	pthread_mutex_unlock(&r->mu);
	CHECK(wait_int(r, &r->ends, 3, 4000), "a 409 leads to a full sync");
	CHECK(wait_state("streaming", 2000) && peer0().full_syncs == 3 &&
	    fget(r, NULL, &r->conflicts) >= 1 && strcmp(r->id, ID_A) == 0,
	    "streaming again with our id after the 409");

	repl_shutdown(1000);
	fake_stop(r);
	free(want.p);
}

/* ---- Recovery of an empty primary ---- */

static int	closed_port(void);

static char tmpdir[] = "/tmp/repl_test.XXXXXX";

/* A new empty store, the "live" one a recovering primary has. */
static struct store *
live_store(const char *name)
{
	struct store *s;
	char path[256], err[256];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	if ((s = store_open(path, STORE_FSYNC_NO, err, sizeof(err))) == NULL)
		CHECK(0, "store_open %s: %s", path, err);
	return s;
}

/*
 * What kvstore.c's tick does: take recovery's result, adopt the copy,
 * reset the backlog to it, let the pushers go. 1 if it came within ms.
 */
static int
finish_recovery(struct store **live, struct repl_recovery *rr, int ms)
{
	struct store_stats st;
	struct store *s;
	char err[256];
	uint64_t end = mono_ms() + (uint64_t)ms;

	while (repl_recover_result(rr) == 0) {
		if (mono_ms() >= end)
			return 0;
		sleep_ms(2);
	}
	if (rr->fresh != NULL) {
		if ((s = store_adopt(*live, rr->fresh, err, sizeof(err))) ==
		    NULL) {
			CHECK(0, "store_adopt: %s", err);
			repl_recover_done(0);
			return 0;
		}
		*live = s;
		rr->fresh = NULL;	/* closed by store_adopt */
		store_stats(s, &st);
		repl_reset(st.repl_id, st.last_seq);
	}
	repl_recover_done(1);
	return 1;
}

static void
test_recover(void)
{
	struct repl_config c;
	struct fake *r = fake_start(ID_B, 50, TOKEN);	/* replica with data */
	struct fake *r2 = fake_start(ID_B, 40, TOKEN);	/* less advanced */
	struct fake *self = fake_start(ID_A, 0, TOKEN);	/* our own loop */
	struct store *live = live_store("recover.db");
	struct repl_recovery rr;
	struct repl_peer ps[4];
	struct store_stats st;
	struct store_value v;
	uint64_t end, t0;
	size_t n, i;
	int ok;

	for (i = 0; i < 5; i++)
		add_rec(&r->snap, 'P', 10 + i, &"abcde"[i], 1, "v", 1);
	add_rec(&r->snap, 'E', 50, NULL, 0, NULL, 0);
	snprintf(r->snap_id, sizeof(r->snap_id), "%s", ID_B);
	r->snap_seq = 50;
	/* once recovered, our own loop serves the same data to pushers */
	bytes_add(&self->snap, r->snap.p, r->snap.len);
	snprintf(self->snap_id, sizeof(self->snap_id), "%s", ID_B);
	self->snap_seq = 50;

	recovering_config(&c, self->url, 4000, live);
	CHECK(repl_init(&c, ID_A, 0) == 0 && repl_recovering() == 1,
	    "recovering from repl_init on");
	repl_add_replica(r2->url, NULL);
	repl_add_replica(r->url, NULL);
	t0 = mono_ms();
	CHECK(repl_recover() == 0, "repl_recover");
	CHECK(finish_recovery(&live, &rr, 6000), "recovery decided");
	CHECK(mono_ms() - t0 < 1000, "as soon as both answered (%llu ms)",
	    (unsigned long long)(mono_ms() - t0));
	CHECK(!repl_recovering(), "recovery finished");
	CHECK(strcmp(rr.source, r->url) == 0 && rr.seq == 50 && rr.keys == 5 &&
	    rr.answered == 2 && rr.silent[0] == '\0', "copied from the seq-50 "
	    "replica (%s seq %llu keys %llu)", rr.source,
	    (unsigned long long)rr.seq, (unsigned long long)rr.keys);
	store_stats(live, &st);
	CHECK(st.keys == 5 && st.last_seq == 50 && strcmp(st.repl_id,
	    ID_B) == 0, "the adopted store holds its data set");
	CHECK(store_get(live, "c", 1, &v) == 1 && v.seq == 12 &&
	    v.len == 1, "with each record's own seq");
	CHECK(fget(self, NULL, &self->begins) == 0, "nothing was pushed into "
	    "this node: recovery pulls");
	CHECK(fget(r, NULL, &r->begins) == 0, "the source replica was not "
	    "full-synced during recovery");
	/* afterwards the seq-50 one streams, the seq-40 one full-syncs */
	end = mono_ms() + 4000;
	do {
		ok = 0;
		n = repl_peers(ps, 4);
		for (i = 0; i < n && i < 4; i++)
			if (strcmp(ps[i].state, "streaming") == 0)
				ok++;
		if (ok == 2)
			break;
		sleep_ms(20);
	} while (mono_ms() < end);
	CHECK(ok == 2, "both stream after recovery");
	CHECK(fget(r, NULL, &r->begins) == 0, "the source replica was never "
	    "full-synced from the empty primary");
	CHECK(fget(r2, NULL, &r2->ends) == 1 && strcmp(r2->id, ID_B) == 0,
	    "the older replica got the recovered data set");
	for (i = 0; i < n && i < 4; i++) {
		if (strcmp(ps[i].url, r->url) == 0)
			CHECK(ps[i].partial_syncs == 1 && ps[i].full_syncs == 0,
			    "the source replica resumes partially");
		else
			CHECK(ps[i].full_syncs == 1, "the older replica is "
			    "full-synced");
	}
	repl_shutdown(0);
	(void)store_close(live);
	fake_stop(r);
	fake_stop(r2);
	fake_stop(self);
}

/* New replicas that all answer "no data": decided at once, no warning. */
static void
test_recover_at_once(void)
{
	struct repl_config c;
	struct fake *a = fake_start(ID_B, 0, TOKEN), *b = fake_start(ID_B, 0,
	    TOKEN), *late = fake_start(ID_B, 0, TOKEN);
	struct store *live = live_store("atonce.db");
	struct repl_recovery rr;
	char silent[64];
	uint64_t t0, reg;

	recovering_config(&c, "", 5000, live);
	CHECK(repl_init(&c, ID_A, 0) == 0, "repl_init");
	repl_add_replica(a->url, NULL);
	repl_add_replica(b->url, NULL);
	CHECK(repl_recover() == 0, "repl_recover");
	CHECK(finish_recovery(&live, &rr, 6000), "decided");
	/*
	 * From the later answer, not from the start: under valgrind the
	 * asking alone can take 200 ms, while a second polling round would
	 * add RECOVER_POLL_MS (200) after the answers.
	 */
	pthread_mutex_lock(&a->mu);
	t0 = a->state_at[0];
	pthread_mutex_unlock(&a->mu);
	pthread_mutex_lock(&b->mu);
	t0 = b->state_at[0] > t0 ? b->state_at[0] : t0;
	pthread_mutex_unlock(&b->mu);
	CHECK(mono_ms() - t0 < 150, "the moment both answered, no second "
	    "round (%llu ms after the later answer)",
	    (unsigned long long)(mono_ms() - t0));
	CHECK(rr.source[0] == '\0' && rr.answered == 2 && rr.silent[0] == '\0',
	    "nothing to copy, nobody silent: no warning (\"%s\")", rr.silent);
	repl_shutdown(0);

	/* A silent peer keeps it waiting; one that registers is asked at once. */
	snprintf(silent, sizeof(silent), "http://127.0.0.1:%d", closed_port());
	recovering_config(&c, "", 1500, live);
	CHECK(repl_init(&c, ID_A, 0) == 0, "repl_init");
	repl_add_replica(silent, NULL);
	t0 = mono_ms();
	CHECK(repl_recover() == 0, "repl_recover");
	sleep_ms(300);
	reg = mono_ms();
	repl_add_replica(late->url, from_lo());
	CHECK(wait_int(late, &late->states, 1, 1000), "the registered one is "
	    "asked");
	CHECK(fget(late, NULL, &late->states) >= 1 && late->state_at[0] - reg <
	    150, "at once (%llu ms after it registered)",
	    (unsigned long long)(late->state_at[0] - reg));
	CHECK(finish_recovery(&live, &rr, 4000), "decided");
	CHECK(mono_ms() - t0 >= 1400, "at recover_wait_ms, for the silent one");
	CHECK(strcmp(rr.silent, silent) == 0 && rr.answered == 1,
	    "the silent one is named, alone (\"%s\")", rr.silent);
	repl_shutdown(0);

	/*
	 * No configured peer: registrations are all it can know, so one that
	 * answered at once is no reason to stop waiting for the others.
	 */
	recovering_config(&c, "", 1000, live);
	CHECK(repl_init(&c, ID_A, 0) == 0, "repl_init");
	t0 = mono_ms();
	CHECK(repl_recover() == 0, "repl_recover");
	repl_add_replica(late->url, from_lo());
	CHECK(finish_recovery(&live, &rr, 3000), "decided");
	CHECK(mono_ms() - t0 >= 950 && rr.answered == 1 && rr.silent[0] ==
	    '\0', "alone, at recover_wait_ms though the registered one "
	    "answered (%llu ms)", (unsigned long long)(mono_ms() - t0));
	repl_shutdown(0);
	(void)store_close(live);
	fake_stop(a);
	fake_stop(b);
	fake_stop(late);
}

static void
test_recover_nobody(void)
{
	struct repl_config c;
	struct fake *self = fake_start(ID_A, 0, TOKEN);
	struct store *live = live_store("nobody.db");
	struct repl_recovery rr;
	uint64_t t0;

	recovering_config(&c, self->url, 600, live);
	c.timeout_ms = 300;
	CHECK(repl_init(&c, ID_A, 0) == 0, "repl_init");
	repl_add_replica("http://127.0.0.1:1", NULL);	/* nobody there */
	t0 = mono_ms();
	CHECK(repl_recover() == 0, "repl_recover");
	CHECK(finish_recovery(&live, &rr, 3000), "decided");
	CHECK(mono_ms() - t0 >= 550, "gave up after recover_wait_ms (%llu ms)",
	    (unsigned long long)(mono_ms() - t0));
	CHECK(rr.source[0] == '\0' && strcmp(rr.silent, "http://127.0.0.1:1") == 0,
	    "starts empty, naming the silent peer (\"%s\")", rr.silent);
	CHECK(fget(self, NULL, &self->begins) == 0, "no sync into self");
	repl_shutdown(0);
	(void)store_close(live);
	fake_stop(self);
}

/*
 * A "replica" registered from an address its URL does not resolve to is
 * never asked nor copied (it claims seq 999); PEERS_DNS finds a real one.
 */
/*
 * A PEERS_DNS lookup that blocks past recover_wait_ms: a replica that
 * registered meanwhile is still asked, and copied, before the decision.
 */
static void
test_recover_slow_dns(void)
{
	struct repl_config c;
	struct fake *r = fake_start(ID_B, 5, TOKEN);
	struct store *live = live_store("slowdns.db");
	struct repl_recovery rr;

	add_rec(&r->snap, 'P', 5, "kept", 4, "v", 1);
	add_rec(&r->snap, 'E', 5, NULL, 0, NULL, 0);
	snprintf(r->snap_id, sizeof(r->snap_id), "%s", ID_B);
	r->snap_seq = 5;
	recovering_config(&c, "", 1000, live);
	c.peers_dns = "slow.test";
	c.peers_port = "8080";
	CHECK(repl_init(&c, ID_A, 0) == 0, "repl_init");
	CHECK(repl_recover() == 0, "repl_recover");
	sleep_ms(200);
	repl_add_replica(r->url, from_lo());
	CHECK(finish_recovery(&live, &rr, 5000), "decided");
	CHECK(strcmp(rr.source, r->url) == 0 && rr.seq == 5, "copied from the "
	    "replica that registered during the lookup (\"%s\")", rr.source);
	CHECK(strstr(rr.silent, "slow.test") != NULL, "and named the name "
	    "that did not resolve (\"%s\")", rr.silent);
	repl_shutdown(0);
	(void)store_close(live);
	fake_stop(r);
}

static void
test_recover_untrusted(void)
{
	struct repl_config c;
	struct fake *fake = fake_start(ID_B, 999, TOKEN);
	struct fake *pod = fake_start(ID_B, 7, TOKEN);
	struct store *live = live_store("untrusted.db");
	struct repl_recovery rr;
	char url[64], port[16], silent[64];

	add_rec(&fake->snap, 'P', 999, "evil", 4, "x", 1);
	add_rec(&fake->snap, 'E', 999, NULL, 0, NULL, 0);
	snprintf(fake->snap_id, sizeof(fake->snap_id), "%s", ID_B);
	fake->snap_seq = 999;
	add_rec(&pod->snap, 'P', 7, "good", 4, "y", 1);
	add_rec(&pod->snap, 'E', 7, NULL, 0, NULL, 0);
	snprintf(pod->snap_id, sizeof(pod->snap_id), "%s", ID_B);
	pod->snap_seq = 7;

	snprintf(silent, sizeof(silent), "http://127.0.0.1:%d", closed_port());
	recovering_config(&c, "", 1000, live);
	CHECK(repl_init(&c, ID_A, 0) == 0, "repl_init");
	repl_add_replica(silent, NULL);
	log_clear();
	CHECK(repl_recover() == 0, "repl_recover");
	/* peers.test resolves to 127.0.0.1; it came "from" 10.255.255.1 */
	snprintf(url, sizeof(url), "http://peers.test:%d", fake->port);
	CHECK(repl_add_replica(url, from_addr("10.255.255.1")) == 0,
	    "the registration is taken, to be checked");
	CHECK(logged("registration refused, never connected", 1000),
	    "then refused");
	CHECK(finish_recovery(&live, &rr, 3000), "decided");
	CHECK(rr.source[0] == '\0', "nothing copied from the fake (%s)",
	    rr.source);
	CHECK(fget(fake, NULL, &fake->states) == 0 &&
	    fget(fake, NULL, &fake->snapshots) == 0, "the fake was never "
	    "asked anything");
	CHECK(repl_peers(NULL, 0) == 1, "nor is it a peer");
	repl_shutdown(0);

	/* PEERS_DNS: every address of the name is asked, and copied from. */
	snprintf(port, sizeof(port), "%d", pod->port);
	recovering_config(&c, "", 5000, live);
	c.peers_dns = "peers.test";
	c.peers_port = port;
	CHECK(repl_init(&c, ID_A, 0) == 0, "repl_init");
	CHECK(repl_recover() == 0, "repl_recover");
	CHECK(finish_recovery(&live, &rr, 3000), "decided at once");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", pod->port);
	CHECK(strcmp(rr.source, url) == 0 && rr.seq == 7,
	    "recovered from the pod PEERS_DNS lists (%s)", rr.source);
	CHECK(store_last_seq(live) == 7, "its data set adopted");
	repl_shutdown(0);
	(void)store_close(live);
	fake_stop(fake);
	fake_stop(pod);
}

/* ---- Timeouts, backoff, name lookups, dropping ---- */

/* Listen on 127.0.0.1 and never accept; the port goes in *port. */
static int
listener(int backlog, int *port)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd == -1 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    listen(fd, backlog) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == -1) {
		perror("listener");
		exit(2);
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

/* A port nothing listens on: connecting to it is refused at once. */
static int
closed_port(void)
{
	int port;

	close(listener(1, &port));
	return port;
}

/* Connect to port; with wait_ms 0, block. Returns the fd or -1. */
static int
dial_port(int port, int wait_ms)
{
	struct sockaddr_in sa;
	struct pollfd pfd;
	int fd;

	fd = socket(AF_INET, SOCK_STREAM | (wait_ms > 0 ? SOCK_NONBLOCK : 0),
	    0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	pfd.fd = fd;
	pfd.events = POLLOUT;
	if (wait_ms > 0 && errno == EINPROGRESS &&
	    poll(&pfd, 1, wait_ms) == 1)
		return fd;
	close(fd);
	return -1;
}

/*
 * A replica that accepts but never answers hits the read timeout; one whose
 * SYNs go unanswered (a full accept queue: Linux then drops them, as a
 * dead host would) hits the connect timeout.
 */
static void
test_timeouts(void)
{
	struct repl_config c;
	char qurl[64], furl[64], line[128];
	uint64_t t0, ms;
	int quiet, full, filler, probe, qport, fport;

	quiet = listener(8, &qport);
	full = listener(0, &fport);
	filler = dial_port(fport, 0);
	probe = dial_port(fport, 200);
	CHECK(filler != -1 && probe == -1, "a full accept queue drops SYNs");
	if (probe != -1)
		close(probe);
	snprintf(qurl, sizeof(qurl), "http://127.0.0.1:%d", qport);
	snprintf(furl, sizeof(furl), "http://127.0.0.1:%d", fport);
	config(&c, "", 1 << 16, 4096);
	c.timeout_ms = 300;
	CHECK(repl_init(&c, ID_A, 0) == 0, "repl_init");

	log_clear();
	t0 = mono_ms();
	repl_add_replica(qurl, NULL);
	snprintf(line, sizeof(line), "%s: down: recv: timed out", qurl);
	CHECK(logged(line, 3000), "a replica that never answers: read "
	    "timeout");
	ms = mono_ms() - t0;
	CHECK(ms >= 280 && ms < 1500, "after timeout_ms (%llu ms)",
	    (unsigned long long)ms);

	t0 = mono_ms();
	repl_add_replica(furl, NULL);
	snprintf(line, sizeof(line), "%s: down: connect: timed out after 300 "
	    "ms", furl);
	CHECK(logged(line, 3000), "a replica that never completes the "
	    "handshake: connect timeout");
	ms = mono_ms() - t0;
	CHECK(ms >= 280 && ms < 1500, "after timeout_ms (%llu ms)",
	    (unsigned long long)ms);
	t0 = mono_ms();
	repl_shutdown(0);
	CHECK(mono_ms() - t0 < 1000, "shutdown does not wait them out");
	close(filler);
	close(full);
	close(quiet);
}

/*
 * Reconnects back off exponentially with jitter, capped: the wait before
 * attempt i + 1 is in [b / 2, b], b doubling from 100 ms to 3 s. Uncapped,
 * the seventh wait would be at least 3.2 s. The waits are read from the
 * pusher's debug lines, so a loaded machine cannot fail the test; the
 * attempts' times only show that each wait was kept (never shorter).
 */
static void
test_backoff(void)
{
	static const uint64_t b[7] = { 100, 200, 400, 800, 1600, 3000, 3000 };
	static const char tag[] = "next attempt in ";
	struct repl_config c;
	struct fake *r = fake_start(ID_A, 0, TOKEN);
	uint64_t iv[7], w[7];
	const char *p;
	int i, bounded = 1, kept = 1, jittered = 0;

	r->fail_state = 1;
	config(&c, r->url, 1 << 16, 4096);
	log_clear();
	CHECK(repl_init(&c, ID_A, 0) == 0, "repl_init");
	repl_add_replica(r->url, NULL);
	CHECK(wait_int(r, &r->states, 8, 15000), "8 attempts (%d)",
	    (int)fget(r, NULL, &r->states));
	repl_shutdown(0);
	pthread_mutex_lock(&logmu);
	for (i = 0, p = logbuf; i < 7 && (p = strstr(p, tag)) != NULL; i++) {
		p += sizeof(tag) - 1;
		w[i] = strtoull(p, NULL, 10);
	}
	pthread_mutex_unlock(&logmu);
	CHECK(i == 7, "a debug line for each wait (%d of 7)", i);
	pthread_mutex_lock(&r->mu);
	for (; i < 7; i++)
		w[i] = 0;
	for (i = 0; i < 7; i++) {
		iv[i] = r->state_at[i + 1] - r->state_at[i];
		if (w[i] < b[i] / 2 || w[i] > b[i])
			bounded = 0;
		if (iv[i] + 2 < w[i])
			kept = 0;
		if (w[i] < b[i] * 9 / 10)
			jittered = 1;
	}
	pthread_mutex_unlock(&r->mu);
	CHECK(bounded, "waits double from 100 ms up to 3 s: %llu %llu %llu "
	    "%llu %llu %llu %llu ms", (unsigned long long)w[0],
	    (unsigned long long)w[1], (unsigned long long)w[2],
	    (unsigned long long)w[3], (unsigned long long)w[4],
	    (unsigned long long)w[5], (unsigned long long)w[6]);
	CHECK(kept, "no attempt before its wait ended: %llu %llu %llu %llu "
	    "%llu %llu %llu ms", (unsigned long long)iv[0],
	    (unsigned long long)iv[1], (unsigned long long)iv[2],
	    (unsigned long long)iv[3], (unsigned long long)iv[4],
	    (unsigned long long)iv[5], (unsigned long long)iv[6]);
	CHECK(jittered, "with jitter: not each the full backoff");
	fake_stop(r);
}

/*
 * Linked with --wrap=resolve_host, repl.c's lookups come here. The name
 * moving.test stands for a pod whose address changes when it restarts: it
 * resolves to 127.0.0.1 and whatever port moving_port says.
 */
int	__real_resolve_host(const char *, int, struct sockaddr_storage *,
	    int);
int	__wrap_resolve_host(const char *, int, struct sockaddr_storage *,
	    int);

static pthread_mutex_t dnsmu = PTHREAD_MUTEX_INITIALIZER;
static int moving_port, moving_lookups;

int
__wrap_resolve_host(const char *host, int port, struct sockaddr_storage *out,
    int max)
{
	if (strcmp(host, "peers.test") == 0)
		return __real_resolve_host("127.0.0.1", port, out, max);
	if (strcmp(host, "slow.test") == 0) {
		sleep_ms(1500);	/* a DNS server that does not answer */
		return RESOLVE_ETIMEDOUT;
	}
	if (strcmp(host, "moving.test") != 0)
		return __real_resolve_host(host, port, out, max);
	pthread_mutex_lock(&dnsmu);
	moving_lookups++;
	port = moving_port;
	pthread_mutex_unlock(&dnsmu);
	return __real_resolve_host("127.0.0.1", port, out, max);
}

/* A replica that comes back at another address is found there. */
static void
test_resolve(void)
{
	struct repl_config c;
	struct fake *a = fake_start(ID_A, 0, TOKEN), *b;
	uint64_t seq;
	int lookups;

	pthread_mutex_lock(&dnsmu);
	moving_port = a->port;
	pthread_mutex_unlock(&dnsmu);
	config(&c, "", 1 << 20, 4096);
	CHECK(repl_init(&c, ID_A, 0) == 0, "repl_init");
	repl_add_replica("http://moving.test:8080", NULL);
	for (seq = 1; seq <= 100; seq++)
		write_one(NULL, seq, 50);
	CHECK(wait_seq(a, 100, 3000), "fed at its first address");
	/* it restarts elsewhere with its data */
	b = fake_start(ID_A, 100, TOKEN);
	pthread_mutex_lock(&dnsmu);
	moving_port = b->port;
	pthread_mutex_unlock(&dnsmu);
	fake_stop(a);
	for (seq = 101; seq <= 200; seq++)
		write_one(NULL, seq, 50);
	pthread_mutex_lock(&dnsmu);
	lookups = moving_lookups;
	pthread_mutex_unlock(&dnsmu);
	CHECK(wait_seq(b, 200, 5000), "fed at its new address after a "
	    "reconnect (at %llu, %d lookups)",
	    (unsigned long long)fget(b, &b->seq, NULL), lookups);
	repl_shutdown(0);
	fake_stop(b);
}

/* A registered replica unreachable for drop_after_ms goes; a static stays. */
static void
test_drop(void)
{
	struct repl_config c;
	char gone[64], fixed[64];
	uint64_t end;
	struct repl_peer p;

	snprintf(gone, sizeof(gone), "http://127.0.0.1:%d", closed_port());
	snprintf(fixed, sizeof(fixed), "http://127.0.0.1:%d", closed_port());
	config(&c, "", 1 << 16, 4096);
	c.drop_after_ms = 500;
	CHECK(repl_init(&c, ID_A, 0) == 0, "repl_init");
	log_clear();
	repl_add_replica(gone, from_lo());
	repl_add_replica(fixed, NULL);
	sleep_ms(200);
	CHECK(repl_peers(NULL, 0) == 2, "both kept before drop_after_ms");
	end = mono_ms() + 4000;
	while (repl_peers(NULL, 0) == 2 && mono_ms() < end)
		sleep_ms(10);
	p = peer0();
	CHECK(repl_peers(NULL, 0) == 1 && strcmp(p.url, fixed) == 0,
	    "the registered one was dropped, the REPLICA_URLS one kept (%s)",
	    p.url);
	/* The pusher logs it just after leaving the table. */
	CHECK(logged("dropped until it registers again", 2000), "and logged");
	CHECK(repl_add_replica(gone, from_lo()) == 0 && wait_peers(2, 1000),
	    "registering again brings it back, once its address checks");
	repl_shutdown(0);
}

/* ---- Token refused, announce ---- */

static void
test_token_refused(void)
{
	struct repl_config c;
	struct fake *r = fake_start(ID_A, 0, "another-token");

	config(&c, r->url, 1 << 16, 4096);
	CHECK(repl_init(&c, ID_A, 0) == 0, "repl_init");
	repl_add_replica(r->url, NULL);
	CHECK(wait_state("down", 3000), "a 401 puts the peer down (%s)",
	    peer0().state);
	repl_shutdown(0);
	CHECK(fget(r, NULL, &r->unauthorized) >= 1, "the fake said 401");
	fake_stop(r);
}

static void
test_announce(void)
{
	struct repl_config c;
	struct fake *pr = fake_start(ID_A, 0, TOKEN);
	uint64_t t0;

	config(&c, "", 1 << 16, 4096);
	c.primary_url = pr->url;
	c.advertise_url = "http://replica-1.kv:8080";
	CHECK(repl_init(&c, ID_A, 0) == 0, "repl_init");
	CHECK(repl_announce() == 0, "repl_announce");
	CHECK(wait_int(pr, &pr->registers, 1, 2000), "registered at once");
	pthread_mutex_lock(&pr->mu);
	CHECK(strcmp(pr->regbody, c.advertise_url) == 0, "body is the "
	    "advertise url (%s)", pr->regbody);
	pthread_mutex_unlock(&pr->mu);
	CHECK(wait_int(pr, &pr->registers, 2, 4500), "and again, so that a "
	    "restarted primary relearns it");
	pthread_mutex_lock(&pr->mu);
	t0 = pr->reg_at[1] - pr->reg_at[0];
	pthread_mutex_unlock(&pr->mu);
	CHECK(t0 >= 2500 && t0 <= 3500, "every 3 s (%llu ms)",
	    (unsigned long long)t0);
	t0 = mono_ms();
	repl_shutdown(0);
	CHECK(mono_ms() - t0 < 1000, "shutdown wakes the announcer (%llu ms)",
	    (unsigned long long)(mono_ms() - t0));
	fake_stop(pr);
}

int
main(void)
{
	verbose = getenv("REPL_TEST_VERBOSE") != NULL;
	log_set_level(LOG_DEBUG);
	log_set_sink(log_sink);
	test_codec();
	test_client();	/* first: it is for a process without repl_init */
	test_stream();
	test_batching();
	test_pushable();
	test_group_len();
	test_batching_groups();
	test_tail();
	test_read();
	test_find();
	test_full_sync();
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_recover();
	test_recover_at_once();
	test_recover_nobody();
	test_recover_untrusted();
	test_recover_slow_dns();
	test_timeouts();
	test_backoff();
	test_resolve();
	test_drop();
	test_token_refused();
	test_announce();
	CHECK(!token_logged, "the token never appears in a log line");
	printf("repl_test: %d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}

/*
 * abuse: hostile and heavy clients against one running kvstore, all from
 * one poll() loop, for tests/suite_abuse.sh.
 *
 *   abuse attack [-t secs] [-H header_ms] [-W min_seq_ms] [-m KiB] [-s seed]
 *       PORT PID
 *   abuse load [-t secs] [-c conns] [-k keys] [-m KiB] PORT PID
 *
 * attack, for -t seconds, all at once: slowloris connections sending one
 * head byte a second (each must get 408 once the server's -H header
 * timeout passes); oversized heads (431) and bodies (413 from the head
 * alone, and from a chunked body as it passes the limit); rounds of 10,000
 * pipelined GETs on one connection, every answer counted and checked in
 * order; a client that sends GETs and never reads (the server must stop
 * reading from it, and answer every request once it reads); half-closed
 * connections (requests, then shutdown(SHUT_WR)): every answer must arrive,
 * deferred ones too (a watch that waits out its time, a read waiting -W ms
 * for a sequence number); and random bytes. Meanwhile a prober thread, so
 * that what it times is the server and not this loop, sends a GET every
 * PROBE_EVERY_MS on a connection of its own: every answer must come within
 * PROBE_MAX_MS. Afterwards /health must answer 200, the server must hold
 * as many descriptors as before, and its RssAnon must be at most -m KiB
 * above what it was before (-m 0: not checked, as under ASan).
 *
 * load opens -c keep-alive connections, each with one request in flight
 * at a time as soon as it is open, and once all are open goes on for -t
 * seconds: GET and PUT, LOAD_GET_PCT to the rest, over -k keys written
 * first. Every answer must be 200 (or 201), except 503 to a connection
 * above the server's MAX_CONNS, which reconnects; every connection must
 * have been open at the same time. The server's RssAnon is sampled each
 * second; its peak must stay within -m KiB of the baseline.
 *
 * Both print a line a second and a summary, and exit 0 if every check
 * held, else 1 after a "FAIL:" line for each that did not. Loopback only.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define PROBE_EVERY_MS	10	/* the well-behaved client */
#define PROBE_MAX_MS	100	/* and the answer time it must get */
#define PROBE_GIVEUP_MS	2000	/* an answer this late counts as lost */
#define NSLOW		48	/* "dozens" of slowloris connections */
#define NBIGHEAD	2
#define NBIGBODY	2
#define NHALF		4
#define NRANDOM		3
#define PIPE_REQS	10000	/* the pipelined requests */
#define PIPE_KEYS	100	/* ab-p0..: request i reads key i % PIPE_KEYS */
#define NOREAD_VALUE	1000	/* bytes of each answer the never-reader gets */
#define NOREAD_SNDBUF	65536
#define STALL_MS	1500	/* no write progress this long: not reading */
#define NOREAD_MAX_MS	6000	/* never stalled by then: a failure */
#define WATCH_WAIT_MS	1000	/* a half-closed watch's ?wait= */
#define BIG_CL		"10737418240"	/* 10 GiB: over any MAX_VALUE_BYTES */
#define CHUNK_BYTES	32768	/* one chunk of the oversized chunked body */
#define HEAD_FILL	17000	/* over the server's 16 KiB head limit */
#define MANY_HEADERS	70	/* over its 64 fields */
#define RANDOM_MAX	4096	/* random bytes per connection, at most */
#define SETTLE_MS	6000	/* for the server to close what we closed */
#define MAX_FAILS_SHOWN	20
#define LOAD_GET_PCT	80
#define CONNECTING_MAX	128	/* connects in flight; the backlog is 511 */
#define RAMP_MS		60000	/* to open every connection, at most */
#define LAT_BUCKETS	100000	/* 0.1 ms each: up to 10 s, then the last */
#define READ_CHUNK	65536

enum kind {
	K_SLOW, K_BIGHEAD, K_BIGBODY, K_PIPE, K_NOREAD, K_HALF, K_RANDOM,
	K_LOAD, NKINDS
};

static const char *const kind_names[NKINDS] = {
	"slowloris", "oversized head", "oversized body", "pipelined",
	"never-reader", "half-closed", "random bytes", "load"
};

struct buf {
	char	*b_p;
	size_t	 b_off;		/* consumed (out: sent) */
	size_t	 b_len;
	size_t	 b_cap;
};

struct resp {
	int		 status;
	const char	*body;
	size_t		 body_len;
};

struct actor {
	enum kind	 a_kind;
	int		 a_fd;
	int		 a_connected;
	int		 a_variant;	/* what this cycle does */
	long		 a_cycles;	/* started so far */
	struct buf	 a_in;
	struct buf	 a_out;
	int64_t		 a_t0;		/* this cycle's connect, us */
	int64_t		 a_wake;	/* next timed step or restart, us */
	int64_t		 a_deadline;	/* the cycle must be over by then */
	int64_t		 a_progress;	/* last write that moved bytes */
	int		 a_answered;	/* got the answer; waiting for EOF */
	int		 a_shut;	/* our FIN is sent */
	int		 a_reading;	/* the never-reader reads now */
	long		 a_expect;	/* answers due this cycle */
	long		 a_got;
	size_t		 a_sent;	/* bytes written this cycle */
	uint64_t	 a_rng;
};

struct stats {
	long	 ok[NKINDS];		/* cycles that passed */
	long	 status[600];		/* answers by status code */
	long	 slow_ms_max;		/* slowloris: first byte to 408 */
	long	 noread_reqs_max;	/* taken before the server stopped */
	long	 noread_reqs_min;
	long	 rss_stall_kb;		/* peak while the never-reader stalls */
	long	 half_deferred;		/* half-closed deferred answers */
	long	 random_status[600];	/* answers to random bytes */
};

static int		 port;
static pid_t		 server_pid;
static int		 nfails;
static struct stats	 st;
static int64_t		 now;
static int		 header_ms = 10000, min_seq_ms = 5000;

/* The prober's shared state, behind probe_mu. */
static pthread_mutex_t	 probe_mu = PTHREAD_MUTEX_INITIALIZER;
static int		 probe_stop;
static long		 probe_n, probe_late, probe_lost;
static int64_t		 probe_max_us;	/* CPU waits taken out */
static int64_t		 probe_raw_max_us;
static int64_t		*probe_lat;	/* every latency, for p99 */
static int64_t		*probe_raw;
static size_t		 probe_cap;

/* The load's counters. */
static long		 lat_hist[LAT_BUCKETS];
static int64_t		 lat_max_us;
static long		 load_reqs, load_errors, load_capped;
static int		 load_open, load_open_max, load_connecting;
static long		 load_keys = 1000;
static int		 load_conns, load_secs;
static long		 put_counter;
static int64_t		 load_start;	/* all connections open: the clock */
static long		 load_start_reqs;	/* answered before it */
static int64_t		 run_end;	/* actors start no new cycle after */

/* ---- Small helpers ---- */

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
fail(const char *fmt, ...)
{
	va_list ap;

	if (nfails++ >= MAX_FAILS_SHOWN)
		return;
	va_start(ap, fmt);
	printf("FAIL: ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
}

static void
die(const char *what)
{
	fprintf(stderr, "abuse: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* xorshift64*: reproducible from the seed printed at the start. */
static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static void
buf_reserve(struct buf *b, size_t n)
{
	size_t cap;

	if (b->b_off > 0 && b->b_off == b->b_len)
		b->b_off = b->b_len = 0;
	if (b->b_cap - b->b_len >= n)
		return;
	if (b->b_off > 0) {
		memmove(b->b_p, b->b_p + b->b_off, b->b_len - b->b_off);
		b->b_len -= b->b_off;
		b->b_off = 0;
		if (b->b_cap - b->b_len >= n)
			return;
	}
	cap = b->b_cap ? b->b_cap : 4096;
	while (cap - b->b_len < n)
		cap *= 2;
	if ((b->b_p = realloc(b->b_p, cap)) == NULL)
		die("realloc");
	b->b_cap = cap;
}

static void
buf_add(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->b_p + b->b_len, p, n);
	b->b_len += n;
}

static void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	buf_reserve(b, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(b->b_p + b->b_len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->b_len += (size_t)n;
}

static void
buf_free(struct buf *b)
{
	free(b->b_p);
	memset(b, 0, sizeof(*b));
}

static size_t
buf_pending(const struct buf *b)
{
	return b->b_len - b->b_off;
}

/* A value from /proc/PID/status, in kB, or -1. */
static long
proc_status_kb(const char *field)
{
	char path[64], line[256];
	size_t flen = strlen(field);
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)server_pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
			v = strtol(line + flen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static long
rss_anon_kb(void)
{
	return proc_status_kb("RssAnon");
}

/*
 * How long a thread has waited for a CPU while runnable, in us: the second
 * field of /proc/.../schedstat (Linux), or 0 if it cannot be read.
 */
static int64_t
run_delay_us(const char *path)
{
	unsigned long long on_cpu, waited;
	int64_t us = 0;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL)
		return 0;
	if (fscanf(f, "%llu %llu", &on_cpu, &waited) == 2)
		us = (int64_t)(waited / 1000);
	fclose(f);
	return us;
}

/* Open descriptors of the server, or -1 if it is gone. */
static int
server_fds(void)
{
	char path[64];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%ld/fd", (long)server_pid);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static int
dial(int nonblock)
{
	struct sockaddr_in sa;
	int fd, one = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (nonblock && fcntl(fd, F_SETFL, O_NONBLOCK) == -1) {
		close(fd);
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 &&
	    errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

/* ---- Responses ---- */

/*
 * One response from buf[0..len): the bytes it takes, 0 if incomplete, -1
 * if it is not HTTP/1.1 with a Content-Length (the server always sends one
 * outside of streams, which these clients never ask for).
 */
static ssize_t
parse_resp(const char *buf, size_t len, struct resp *r)
{
	const char *eoh = NULL, *p, *line;
	size_t i, hlen;
	long long cl = -1;

	for (i = 3; i < len; i++)
		if (buf[i] == '\n' && buf[i - 1] == '\r' &&
		    buf[i - 2] == '\n' && buf[i - 3] == '\r') {
			eoh = buf + i + 1;
			break;
		}
	if (eoh == NULL)
		return len > 65536 || (len >= 5 &&
		    memcmp(buf, "HTTP/", 5) != 0) ? -1 : 0;
	if (len < 13 || memcmp(buf, "HTTP/1.1 ", 9) != 0)
		return -1;
	r->status = atoi(buf + 9);
	if (r->status < 100 || r->status > 599)
		return -1;
	for (line = buf; line < eoh; line = p + 1) {
		if ((p = memchr(line, '\n', eoh - line)) == NULL)
			break;
		if (p - line > 16 &&
		    strncasecmp(line, "Content-Length: ", 16) == 0)
			cl = strtoll(line + 16, NULL, 10);
	}
	if (cl < 0) {
		if (r->status != 204 && r->status != 304)
			return -1;
		cl = 0;
	}
	hlen = (size_t)(eoh - buf);
	if (len - hlen < (size_t)cl)
		return 0;
	r->body = eoh;
	r->body_len = (size_t)cl;
	return (ssize_t)(hlen + (size_t)cl);
}

static int
body_is(const struct resp *r, const char *want)
{
	return r->body_len == strlen(want) &&
	    memcmp(r->body, want, r->body_len) == 0;
}

/* A blocking request on fd: 0 and *r (body in rb), or -1. */
static int
roundtrip(int fd, const char *req, struct buf *rb, struct resp *r)
{
	size_t len = strlen(req), off = 0;
	ssize_t n;

	while (off < len) {
		if ((n = write(fd, req + off, len - off)) <= 0)
			return -1;
		off += (size_t)n;
	}
	rb->b_off = rb->b_len = 0;
	for (;;) {
		if ((n = parse_resp(rb->b_p, rb->b_len, r)) != 0)
			return n > 0 ? 0 : -1;
		buf_reserve(rb, READ_CHUNK);
		if ((n = read(fd, rb->b_p + rb->b_len, READ_CHUNK)) <= 0)
			return -1;
		rb->b_len += (size_t)n;
	}
}

/* PUT key = value on fd; exits on failure (setup must work). */
static void
setup_put(int fd, const char *key, const char *value)
{
	struct buf req = { 0 }, rb = { 0 };
	struct resp r;

	buf_printf(&req, "PUT /kv/%s HTTP/1.1\r\nHost: x\r\n"
	    "Content-Length: %zu\r\n\r\n%s", key, strlen(value), value);
	buf_add(&req, "", 1);
	if (roundtrip(fd, req.b_p, &rb, &r) == -1 ||
	    (r.status != 200 && r.status != 201)) {
		fprintf(stderr, "abuse: setup PUT %s failed\n", key);
		exit(2);
	}
	buf_free(&req);
	buf_free(&rb);
}

/* GET /health on a new connection: its status, or -1. */
static int
health(void)
{
	struct buf rb = { 0 };
	struct resp r;
	int fd, status = -1;

	if ((fd = dial(0)) == -1)
		return -1;
	if (roundtrip(fd, "GET /health HTTP/1.1\r\nHost: x\r\n"
	    "Connection: close\r\n\r\n", &rb, &r) == 0)
		status = r.status;
	close(fd);
	buf_free(&rb);
	return status;
}

/* Until the server holds want descriptors or SETTLE_MS pass: how many. */
static int
settle_fds(int want)
{
	struct timespec ts = { 0, 50000000 };
	int64_t until = now_us() + SETTLE_MS * 1000;
	int n;

	while ((n = server_fds()) > want && now_us() < until)
		nanosleep(&ts, NULL);
	return n;
}

/* ---- The prober ---- */

/*
 * us is the answer's time; waited, how long the server's loop or this
 * thread (whichever more) sat runnable without a CPU meanwhile. On a
 * shared machine that is other programs' doing, so the bound applies to
 * us - waited; both are reported.
 */
static void
probe_record(int64_t us, int64_t waited, int lost)
{
	int64_t own = us - waited;

	pthread_mutex_lock(&probe_mu);
	if (lost)
		probe_lost++;
	else {
		if (probe_n == (long)probe_cap) {
			probe_cap = probe_cap ? probe_cap * 2 : 4096;
			probe_lat = realloc(probe_lat,
			    probe_cap * sizeof(*probe_lat));
			probe_raw = realloc(probe_raw,
			    probe_cap * sizeof(*probe_raw));
			if (probe_lat == NULL || probe_raw == NULL)
				die("realloc");
		}
		probe_lat[probe_n] = own;
		probe_raw[probe_n++] = us;
		if (own > probe_max_us)
			probe_max_us = own;
		if (us > probe_raw_max_us)
			probe_raw_max_us = us;
		if (own > PROBE_MAX_MS * 1000 &&
		    probe_late++ < MAX_FAILS_SHOWN)
			printf("late probe: %.1f ms, %.1f of them waiting for "
			    "a CPU\n", (double)us / 1000,
			    (double)waited / 1000);
	}
	pthread_mutex_unlock(&probe_mu);
}

/* One GET every PROBE_EVERY_MS, timed from its write to its last byte. */
static void *
probe_main(void *arg)
{
	static const char req[] =
	    "GET /kv/ab-probe HTTP/1.1\r\nHost: x\r\n\r\n";
	struct buf rb = { 0 };
	struct pollfd pfd;
	struct resp r;
	struct timespec ts;
	char server_path[64];
	int64_t t0, left, sw, pw;
	ssize_t n;
	int fd = -1, stop, lost;

	(void)arg;
	snprintf(server_path, sizeof(server_path), "/proc/%ld/schedstat",
	    (long)server_pid);
	for (;;) {
		pthread_mutex_lock(&probe_mu);
		stop = probe_stop;
		pthread_mutex_unlock(&probe_mu);
		if (stop)
			break;
		sw = run_delay_us(server_path);
		pw = run_delay_us("/proc/thread-self/schedstat");
		t0 = now_us();
		lost = 0;
		if (fd == -1 && (fd = dial(0)) == -1)
			lost = 1;
		if (!lost && write(fd, req, sizeof(req) - 1) !=
		    (ssize_t)sizeof(req) - 1)
			lost = 1;
		rb.b_off = rb.b_len = 0;
		while (!lost) {
			if ((n = parse_resp(rb.b_p, rb.b_len, &r)) != 0) {
				if (n < 0 || r.status != 200 ||
				    !body_is(&r, "probe"))
					lost = 1;
				break;
			}
			left = t0 + PROBE_GIVEUP_MS * 1000 - now_us();
			pfd.fd = fd;
			pfd.events = POLLIN;
			if (left <= 0 || poll(&pfd, 1,
			    (int)(left / 1000) + 1) <= 0) {
				lost = 1;
				break;
			}
			buf_reserve(&rb, 4096);
			if ((n = read(fd, rb.b_p + rb.b_len, 4096)) <= 0) {
				lost = 1;
				break;
			}
			rb.b_len += (size_t)n;
		}
		left = now_us() - t0;
		sw = run_delay_us(server_path) - sw;
		pw = run_delay_us("/proc/thread-self/schedstat") - pw;
		probe_record(left, sw > pw ? sw : pw, lost);
		if (lost && fd != -1) {
			close(fd);
			fd = -1;
		}
		left = t0 + PROBE_EVERY_MS * 1000 - now_us();
		if (left > 0) {
			ts.tv_sec = 0;
			ts.tv_nsec = (long)left * 1000;
			nanosleep(&ts, NULL);
		}
	}
	if (fd != -1)
		close(fd);
	buf_free(&rb);
	return NULL;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* ---- Actors ---- */

static void
actor_close(struct actor *a)
{
	if (a->a_fd != -1) {
		close(a->a_fd);
		if (a->a_kind == K_LOAD) {
			if (a->a_connected)
				load_open--;
			else
				load_connecting--;
		}
	}
	a->a_fd = -1;
	a->a_connected = 0;
	a->a_in.b_off = a->a_in.b_len = 0;
	a->a_out.b_off = a->a_out.b_len = 0;
}

/* The cycle is over, passed or not; the next starts after delay_ms. */
static void
cycle_end(struct actor *a, int ok, int delay_ms)
{
	if (ok)
		st.ok[a->a_kind]++;
	actor_close(a);
	a->a_wake = now + (int64_t)delay_ms * 1000;
}

static void
cycle_fail(struct actor *a, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fail("%s #%ld%s: %s", kind_names[a->a_kind], a->a_cycles,
	    a->a_kind != K_HALF ? "" : a->a_variant == 0 ? " (3 GETs)" :
	    a->a_variant == 1 ? " (watch)" : " (min-seq read)", msg);
	cycle_end(a, 0, 100);
}

static const char slow_head[] =
    "GET /kv/ab-slow HTTP/1.1\r\nHost: x\r\nX-Slowloris: ";

/* Queue the never-reader's requests; all have the same length. */
static const char noread_req[] =
    "GET /kv/ab-noread HTTP/1.1\r\nHost: x\r\n\r\n";
#define NOREAD_LEN	(sizeof(noread_req) - 1)

static void
start_cycle(struct actor *a)
{
	size_t i;
	char c;
	int n;

	if ((a->a_fd = dial(1)) == -1) {
		if (a->a_kind == K_LOAD && (errno == EMFILE || errno == ENFILE))
			die("socket (raise ulimit -n)");
		fail("%s: connect: %s", kind_names[a->a_kind],
		    strerror(errno));
		a->a_wake = now + 100000;
		return;
	}
	a->a_cycles++;
	if (a->a_kind == K_LOAD)
		load_connecting++;
	a->a_t0 = a->a_progress = now;
	a->a_wake = 0;
	a->a_deadline = now + 10000000;
	a->a_answered = a->a_shut = a->a_reading = 0;
	a->a_got = a->a_expect = 0;
	a->a_sent = 0;
	a->a_variant = (int)(a->a_cycles % 3);
	switch (a->a_kind) {
	case K_LOAD:
		a->a_deadline = INT64_MAX;	/* run_end ends it */
		break;
	case K_SLOW:
		a->a_wake = now;	/* the first byte at once */
		a->a_deadline = now + ((int64_t)header_ms + 5000) * 1000;
		break;
	case K_BIGHEAD:
		buf_printf(&a->a_out, "GET /kv/ab-p1 HTTP/1.1\r\nHost: x\r\n");
		if (a->a_variant == 0) {
			buf_printf(&a->a_out, "X-Big: ");
			buf_reserve(&a->a_out, HEAD_FILL);
			memset(a->a_out.b_p + a->a_out.b_len, 'h', HEAD_FILL);
			a->a_out.b_len += HEAD_FILL;
			buf_printf(&a->a_out, "\r\n");
		} else
			for (i = 0; i < MANY_HEADERS; i++)
				buf_printf(&a->a_out, "X-H%zu: %zu\r\n", i, i);
		buf_printf(&a->a_out, "\r\n");
		break;
	case K_BIGBODY:
		/*
		 * Never a body byte unless chunked: 413 from the head, and
		 * instead of 100 Continue when the client asks for it.
		 */
		if (a->a_variant == 1)
			buf_printf(&a->a_out, "PUT /kv/ab-big HTTP/1.1\r\n"
			    "Host: x\r\nTransfer-Encoding: chunked\r\n\r\n");
		else
			buf_printf(&a->a_out, "PUT /kv/ab-big HTTP/1.1\r\n"
			    "Host: x\r\nContent-Length: " BIG_CL "\r\n%s\r\n",
			    a->a_variant == 2 ?
			    "Expect: 100-continue\r\n" : "");
		break;
	case K_PIPE:
		for (i = 0; i < PIPE_REQS; i++)
			buf_printf(&a->a_out, "GET /kv/ab-p%zu HTTP/1.1\r\n"
			    "Host: x\r\n\r\n", i % PIPE_KEYS);
		a->a_expect = PIPE_REQS;
		a->a_deadline = now + 60000000;
		break;
	case K_NOREAD:
		/* A small send buffer: what it sends reaches the server. */
		n = NOREAD_SNDBUF;
		setsockopt(a->a_fd, SOL_SOCKET, SO_SNDBUF, &n, sizeof(int));
		a->a_deadline = now + 120000000;
		break;
	case K_HALF:
		if (a->a_variant == 0) {
			for (i = 1; i <= 3; i++)
				buf_printf(&a->a_out, "GET /kv/ab-p%zu "
				    "HTTP/1.1\r\nHost: x\r\n\r\n", i);
			a->a_expect = 3;
		} else if (a->a_variant == 1) {
			/* An index far ahead: it waits out its time. */
			buf_printf(&a->a_out, "GET /kv/ab-watch?index="
			    "1000000000000&wait=%dms HTTP/1.1\r\nHost: x\r\n"
			    "\r\n", WATCH_WAIT_MS);
			a->a_expect = 1;
		} else {
			buf_printf(&a->a_out, "GET /kv/ab-watch HTTP/1.1\r\n"
			    "Host: x\r\nX-Kv-Min-Seq: 1000000000000\r\n\r\n");
			a->a_expect = 1;
		}
		break;
	case K_RANDOM:
		if (a->a_variant == 1)
			buf_printf(&a->a_out, "GET / HTTP/1.1\r\n");
		n = 1 + (int)(rnd(&a->a_rng) % RANDOM_MAX);
		for (i = 0; i < (size_t)n; i++) {
			c = (char)rnd(&a->a_rng);
			if (a->a_variant == 2)	/* printable, with CRLFs */
				c = rnd(&a->a_rng) % 16 == 0 ? '\n' :
				    (char)(' ' + (unsigned char)c % 95);
			buf_add(&a->a_out, &c, 1);
		}
		if (a->a_variant == 2)
			buf_printf(&a->a_out, "\r\n\r\n");
		a->a_deadline = now + ((int64_t)header_ms + 3000) * 1000;
		break;
	default:
		break;
	}
}

/* The next request of a load connection. */
static void
load_request(struct actor *a)
{
	uint64_t k = rnd(&a->a_rng) % (uint64_t)load_keys;
	char val[32];
	int n;

	a->a_variant = rnd(&a->a_rng) % 100 < LOAD_GET_PCT;	/* a GET */
	if (a->a_variant)
		buf_printf(&a->a_out, "GET /kv/ld-%llu HTTP/1.1\r\n"
		    "Host: x\r\n\r\n", (unsigned long long)k);
	else {
		n = snprintf(val, sizeof(val), "v%ld", ++put_counter);
		buf_printf(&a->a_out, "PUT /kv/ld-%llu HTTP/1.1\r\nHost: x\r\n"
		    "Content-Length: %d\r\n\r\n%s", (unsigned long long)k, n,
		    val);
	}
	a->a_t0 = now;
}

static void
lat_record(int64_t us)
{
	int64_t b = us / 100;

	lat_hist[b < LAT_BUCKETS ? b : LAT_BUCKETS - 1]++;
	if (us > lat_max_us)
		lat_max_us = us;
}

/* Handle one answer; 0 to go on reading, -1 if the actor's cycle ended. */
static int
on_answer(struct actor *a, const struct resp *r)
{
	char want[32];
	int64_t ms = (now - a->a_t0) / 1000;

	switch (a->a_kind) {
	case K_SLOW:
		if (r->status != 408) {
			cycle_fail(a, "answered %d, not 408", r->status);
			return -1;
		}
		if (ms > st.slow_ms_max)
			st.slow_ms_max = (long)ms;
		a->a_answered = 1;
		a->a_out.b_off = a->a_out.b_len = 0;
		a->a_wake = 0;
		return 0;
	case K_BIGHEAD:
	case K_BIGBODY:
		if (r->status != (a->a_kind == K_BIGHEAD ? 431 : 413)) {
			cycle_fail(a, "variant %d answered %d", a->a_variant,
			    r->status);
			return -1;
		}
		a->a_answered = 1;
		a->a_out.b_off = a->a_out.b_len = 0;	/* send no more */
		return 0;
	case K_PIPE:
		snprintf(want, sizeof(want), "v%ld", a->a_got % PIPE_KEYS);
		if (r->status != 200 || !body_is(r, want)) {
			cycle_fail(a, "answer %ld: %d, not 200 %s", a->a_got,
			    r->status, want);
			return -1;
		}
		if (++a->a_got == a->a_expect) {
			cycle_end(a, 1, 100);
			return -1;
		}
		return 0;
	case K_NOREAD:
		if (r->status != 200 || r->body_len != NOREAD_VALUE) {
			cycle_fail(a, "answer %ld: %d with %zu bytes",
			    a->a_got, r->status, r->body_len);
			return -1;
		}
		if (++a->a_got == a->a_expect && buf_pending(&a->a_out) == 0) {
			cycle_end(a, 1, 500);
			return -1;
		}
		return 0;
	case K_HALF:
		if (a->a_variant == 0) {
			snprintf(want, sizeof(want), "v%ld", a->a_got + 1);
			if (r->status != 200 || !body_is(r, want)) {
				cycle_fail(a, "answer %ld: %d", a->a_got,
				    r->status);
				return -1;
			}
		} else if (a->a_variant == 1) {
			if (r->status != 200 || !body_is(r, "w") ||
			    ms < WATCH_WAIT_MS - 100) {
				cycle_fail(a, "watch: %d after %lld ms",
				    r->status, (long long)ms);
				return -1;
			}
			st.half_deferred++;
		} else {
			if (r->status != 504 || ms < min_seq_ms - 100) {
				cycle_fail(a, "min-seq read: %d after %lld ms",
				    r->status, (long long)ms);
				return -1;
			}
			st.half_deferred++;
		}
		if (++a->a_got == a->a_expect)
			a->a_answered = 1;	/* now the server's FIN */
		return 0;
	case K_RANDOM:
		st.random_status[r->status]++;
		if (r->status < 400) {
			cycle_fail(a, "random bytes answered %d", r->status);
			return -1;
		}
		a->a_answered = 1;
		return 0;
	case K_LOAD:
		lat_record(now - a->a_t0);
		load_reqs++;
		if (r->status == 503 && r->body_len >= 11 &&
		    memcmp(r->body, "server busy", 11) == 0) {
			load_capped++;	/* above MAX_CONNS: documented */
			cycle_end(a, 1, 100);
			return -1;
		}
		if (r->status != 200 && r->status != 201) {
			load_errors++;
			fail("load: answered %d: %.*s", r->status,
			    (int)(r->body_len > 80 ? 80 : r->body_len),
			    r->body);
			cycle_end(a, 0, 100);
			return -1;
		}
		if (a->a_variant && (r->status != 200 || r->body_len == 0 ||
		    r->body[0] != 'v')) {
			load_errors++;
			fail("load: a GET answered %.*s", (int)r->body_len,
			    r->body);
		}
		return 1;	/* send the next request */
	default:
		return 0;
	}
}

/* The server closed (or reset) the connection. */
static void
on_eof(struct actor *a, int err)
{
	if (a->a_kind == K_LOAD) {
		load_errors++;
		fail("load: connection %s after %ld answers",
		    err ? strerror(err) : "closed", a->a_got);
		cycle_end(a, 0, 100);
		return;
	}
	if (err != 0) {
		cycle_fail(a, "%s before the answer ended", strerror(err));
		return;
	}
	if (a->a_kind == K_RANDOM) {
		cycle_end(a, 1, 20);	/* an answer or not, a clean close */
		return;
	}
	if (!a->a_answered) {
		cycle_fail(a, "closed by the server after %ld of %ld answers",
		    a->a_got, a->a_expect > 0 ? a->a_expect : 1);
		return;
	}
	cycle_end(a, 1, a->a_kind == K_SLOW ? 0 : 50);
}

static void	do_write(struct actor *);

/* Read what is there and hand each answer over. */
static void
do_read(struct actor *a)
{
	struct resp r;
	ssize_t n;
	int rc;

	buf_reserve(&a->a_in, READ_CHUNK);
	n = read(a->a_fd, a->a_in.b_p + a->a_in.b_len, READ_CHUNK);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		on_eof(a, n == 0 ? 0 : errno);
		return;
	}
	a->a_in.b_len += (size_t)n;
	while (a->a_fd != -1) {
		n = parse_resp(a->a_in.b_p + a->a_in.b_off,
		    a->a_in.b_len - a->a_in.b_off, &r);
		if (n == 0)
			break;
		if (n < 0) {
			if (a->a_kind == K_LOAD) {
				load_errors++;
				fail("load: malformed answer");
				cycle_end(a, 0, 100);
			} else
				cycle_fail(a, "malformed answer");
			return;
		}
		a->a_in.b_off += (size_t)n;
		st.status[r.status]++;
		if ((rc = on_answer(a, &r)) == -1)
			return;
		if (rc == 1) {
			a->a_got++;
			if (now >= run_end) {
				cycle_end(a, 1, 0);
				return;
			}
			load_request(a);
			do_write(a);
		}
	}
}

/* Write what is queued; the never-reader and chunked body refill first. */
static void
do_write(struct actor *a)
{
	ssize_t n;
	int err = 0;
	socklen_t len = sizeof(err);

	if (!a->a_connected) {
		if (getsockopt(a->a_fd, SOL_SOCKET, SO_ERROR, &err, &len) ==
		    -1 || err != 0) {
			if (a->a_kind == K_LOAD) {
				load_errors++;
				fail("load: connect: %s", strerror(err));
				cycle_end(a, 0, 100);
			} else
				cycle_fail(a, "connect: %s", strerror(err));
			return;
		}
		a->a_connected = 1;
		if (a->a_kind == K_LOAD) {
			load_connecting--;
			if (++load_open > load_open_max)
				load_open_max = load_open;
			if (load_open == load_conns && load_start == 0) {
				load_start = now;
				load_start_reqs = load_reqs;
				run_end = now + (int64_t)load_secs * 1000000;
			}
			if (now >= run_end) {
				cycle_end(a, 1, 0);
				return;
			}
			load_request(a);
		}
	}
	if (a->a_kind == K_NOREAD && !a->a_reading)
		while (buf_pending(&a->a_out) < READ_CHUNK)
			buf_add(&a->a_out, noread_req, NOREAD_LEN);
	if (a->a_kind == K_BIGBODY && a->a_variant == 1 && !a->a_answered &&
	    buf_pending(&a->a_out) == 0) {
		buf_printf(&a->a_out, "%x\r\n", CHUNK_BYTES);
		buf_reserve(&a->a_out, CHUNK_BYTES + 2);
		memset(a->a_out.b_p + a->a_out.b_len, 'b', CHUNK_BYTES);
		a->a_out.b_len += CHUNK_BYTES;
		buf_add(&a->a_out, "\r\n", 2);
	}
	if (buf_pending(&a->a_out) > 0) {
		n = send(a->a_fd, a->a_out.b_p + a->a_out.b_off,
		    buf_pending(&a->a_out), MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			/* The server may close on an error mid-upload. */
			if ((errno == EPIPE || errno == ECONNRESET) &&
			    a->a_kind != K_LOAD && a->a_kind != K_HALF &&
			    a->a_kind != K_PIPE && a->a_kind != K_NOREAD) {
				a->a_out.b_off = a->a_out.b_len = 0;
				return;
			}
			on_eof(a, errno);
			return;
		}
		a->a_out.b_off += (size_t)n;
		a->a_sent += (size_t)n;
		a->a_progress = now;
	}
	if (a->a_kind == K_HALF && !a->a_shut && buf_pending(&a->a_out) == 0) {
		shutdown(a->a_fd, SHUT_WR);	/* the half-close */
		a->a_shut = 1;
	}
}

/* The never-reader has stalled (or never did): now it reads everything. */
static void
noread_turn(struct actor *a)
{
	long rss = rss_anon_kb();
	size_t part = a->a_sent % NOREAD_LEN;
	long reqs = (long)(a->a_sent / NOREAD_LEN);

	if (now - a->a_t0 >= (int64_t)NOREAD_MAX_MS * 1000) {
		cycle_fail(a, "the server took %ld requests in %d ms and did "
		    "not stop reading (RssAnon %ld KiB)", reqs, NOREAD_MAX_MS,
		    rss);
		return;
	}
	if (rss > st.rss_stall_kb)
		st.rss_stall_kb = rss;
	if (reqs > st.noread_reqs_max)
		st.noread_reqs_max = reqs;
	if (st.noread_reqs_min == 0 || reqs < st.noread_reqs_min)
		st.noread_reqs_min = reqs;
	/* Keep only the rest of a request cut short, then read. */
	a->a_out.b_len = a->a_out.b_off + (part ? NOREAD_LEN - part : 0);
	a->a_expect = reqs + (part ? 1 : 0);
	a->a_reading = 1;
}

/* Timed steps: slowloris bytes, deadlines, restarts. */
static void
on_timer(struct actor *a, int running)
{
	size_t i;

	if (a->a_fd == -1) {
		if (running && a->a_wake != 0 && now >= a->a_wake)
			start_cycle(a);
		return;
	}
	if (now >= a->a_deadline && a->a_kind != K_LOAD) {
		cycle_fail(a, "not over after %lld ms (%ld of %ld answers, "
		    "%zu bytes sent)", (long long)(now - a->a_t0) / 1000,
		    a->a_got, a->a_expect, a->a_sent);
		return;
	}
	if (a->a_kind == K_SLOW && a->a_wake != 0 && now >= a->a_wake) {
		i = a->a_sent + buf_pending(&a->a_out);
		buf_add(&a->a_out, i < sizeof(slow_head) - 1 ?
		    &slow_head[i] : "s", 1);
		a->a_wake += 1000000;	/* a byte a second */
	}
	if (a->a_kind == K_NOREAD && !a->a_reading && a->a_connected &&
	    (now - a->a_progress >= (int64_t)STALL_MS * 1000 ||
	    now - a->a_t0 >= (int64_t)NOREAD_MAX_MS * 1000))
		noread_turn(a);
}

static short
poll_events(const struct actor *a)
{
	short ev = 0;

	if (!a->a_connected)
		return POLLOUT;
	if (a->a_kind != K_NOREAD || a->a_reading)
		ev |= POLLIN;
	if (buf_pending(&a->a_out) > 0 ||
	    (a->a_kind == K_NOREAD && !a->a_reading) ||
	    (a->a_kind == K_BIGBODY && a->a_variant == 1 && !a->a_answered) ||
	    (a->a_kind == K_HALF && !a->a_shut))
		ev |= POLLOUT;
	return ev;
}

/*
 * Run the actors until run_end; each starts its first cycle at its a_wake.
 * progress() prints a line a second.
 */
static void
run(struct actor *as, size_t n, void (*progress)(int))
{
	struct pollfd *pfds;
	size_t *idx, i, np;
	int64_t next_tick = now_us() + 1000000, wake;
	int secs = 0, timeout, running;

	if ((pfds = calloc(n, sizeof(*pfds))) == NULL ||
	    (idx = calloc(n, sizeof(*idx))) == NULL)
		die("calloc");
	for (;;) {
		now = now_us();
		running = now < run_end;
		if (now >= next_tick) {
			progress(++secs);
			next_tick += 1000000;
		}
		np = 0;
		wake = next_tick;
		for (i = 0; i < n; i++) {
			if (as[i].a_kind == K_LOAD && as[i].a_fd == -1 &&
			    load_connecting >= CONNECTING_MAX)
				continue;
			on_timer(&as[i], running);
			if (as[i].a_fd == -1) {
				if (running && as[i].a_wake != 0 &&
				    as[i].a_wake < wake)
					wake = as[i].a_wake;
				continue;
			}
			if (as[i].a_wake != 0 && as[i].a_wake < wake)
				wake = as[i].a_wake;
			if (as[i].a_deadline < wake)
				wake = as[i].a_deadline;
			pfds[np].fd = as[i].a_fd;
			pfds[np].events = poll_events(&as[i]);
			idx[np++] = i;
		}
		if (!running && np == 0)
			break;
		if (!running && now >= run_end + (int64_t)SETTLE_MS * 1000)
			break;
		timeout = (int)((wake - now) / 1000);
		if (timeout < 0)
			timeout = 0;
		if (timeout > 10)
			timeout = 10;
		if (poll(pfds, (nfds_t)np, timeout) == -1) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		now = now_us();
		for (i = 0; i < np; i++) {
			struct actor *a = &as[idx[i]];

			if (pfds[i].revents == 0 || a->a_fd != pfds[i].fd)
				continue;
			if (a->a_kind == K_NOREAD && !a->a_reading &&
			    pfds[i].revents & (POLLHUP | POLLERR)) {
				cycle_fail(a, "connection broken while the "
				    "client did not read");
				continue;
			}
			if (pfds[i].revents & POLLOUT)
				do_write(a);
			if (a->a_fd != -1 && pfds[i].revents &
			    (POLLIN | POLLHUP | POLLERR) &&
			    (a->a_kind != K_NOREAD || a->a_reading))
				do_read(a);
		}
		if (!running)
			for (i = 0; i < n; i++)
				if (as[i].a_kind != K_LOAD && as[i].a_fd != -1)
					actor_close(&as[i]);
	}
	free(pfds);
	free(idx);
}

/* ---- attack ---- */

static long	 rss_base;

static void
attack_progress(int secs)
{
	long n, late, lost;
	int64_t mx;

	pthread_mutex_lock(&probe_mu);
	n = probe_n;
	late = probe_late;
	lost = probe_lost;
	mx = probe_max_us;
	pthread_mutex_unlock(&probe_mu);
	printf("  %2ds probe %ld (max %.1f ms, late %ld, lost %ld) | 408 %ld "
	    "| 431 %ld | 413 %ld | pipelined %ld | never-reader %ld | "
	    "half-closed %ld | random %ld | failed %d | RssAnon %ld KiB\n",
	    secs, n, (double)mx / 1000, late, lost, st.ok[K_SLOW],
	    st.ok[K_BIGHEAD], st.ok[K_BIGBODY], st.ok[K_PIPE],
	    st.ok[K_NOREAD], st.ok[K_HALF], st.ok[K_RANDOM], nfails,
	    rss_anon_kb());
	fflush(stdout);
}

static int
attack(int secs, long rss_slack_kb, uint64_t seed)
{
	struct actor as[NSLOW + NBIGHEAD + NBIGBODY + 1 + 1 + NHALF +
	    NRANDOM];
	char key[32], val[NOREAD_VALUE + 1];
	pthread_t th;
	size_t n = 0, i;
	int64_t p99, raw99;
	long rss_after, fd_base, fd_after;
	int fd, h;

	fd_base = server_fds();
	if (fd_base == -1 || (rss_base = rss_anon_kb()) == -1) {
		fprintf(stderr, "abuse: no /proc/%ld\n", (long)server_pid);
		return 2;
	}
	if ((fd = dial(0)) == -1)
		die("connect");
	for (i = 0; i < PIPE_KEYS; i++) {
		snprintf(key, sizeof(key), "ab-p%zu", i);
		snprintf(val, sizeof(val), "v%zu", i);
		setup_put(fd, key, val);
	}
	memset(val, 'n', NOREAD_VALUE);
	val[NOREAD_VALUE] = '\0';
	setup_put(fd, "ab-noread", val);
	setup_put(fd, "ab-probe", "probe");
	setup_put(fd, "ab-watch", "w");
	close(fd);
	settle_fds((int)fd_base);
	rss_base = rss_anon_kb();
	printf("attack on port %d (pid %ld) for %d s, seed %llu: %d "
	    "descriptors, RssAnon %ld KiB\n", port, (long)server_pid, secs,
	    (unsigned long long)seed, (int)fd_base, rss_base);

	memset(as, 0, sizeof(as));
#define ADD(k, count) for (i = 0; i < (count); i++, n++) {		\
		as[n].a_kind = (k);					\
		as[n].a_fd = -1;					\
		as[n].a_rng = seed + n * 7919 + 1;			\
		as[n].a_wake = now_us() + (int64_t)n * 20000;		\
	}
	ADD(K_SLOW, NSLOW);
	ADD(K_BIGHEAD, NBIGHEAD);
	ADD(K_BIGBODY, NBIGBODY);
	ADD(K_PIPE, 1);
	ADD(K_NOREAD, 1);
	ADD(K_HALF, NHALF);
	ADD(K_RANDOM, NRANDOM);
#undef ADD
	if (pthread_create(&th, NULL, probe_main, NULL) != 0)
		die("pthread_create");
	run_end = now_us() + (int64_t)secs * 1000000;
	run(as, n, attack_progress);
	pthread_mutex_lock(&probe_mu);
	probe_stop = 1;
	pthread_mutex_unlock(&probe_mu);
	pthread_join(th, NULL);
	for (i = 0; i < n; i++) {
		buf_free(&as[i].a_in);
		buf_free(&as[i].a_out);
	}

	fd_after = settle_fds((int)fd_base);
	h = health();
	rss_after = rss_anon_kb();
	qsort(probe_lat, (size_t)probe_n, sizeof(*probe_lat), cmp_i64);
	qsort(probe_raw, (size_t)probe_n, sizeof(*probe_raw), cmp_i64);
	p99 = probe_n > 0 ? probe_lat[(size_t)(probe_n * 99 / 100)] : 0;
	raw99 = probe_n > 0 ? probe_raw[(size_t)(probe_n * 99 / 100)] : 0;

	printf("probe: %ld answers, p99 %.1f ms, max %.1f ms; less the "
	    "waits for a CPU: p99 %.1f ms, max %.1f ms (bound %d ms); %ld "
	    "late, %ld lost\n", probe_n, (double)raw99 / 1000,
	    (double)probe_raw_max_us / 1000, (double)p99 / 1000,
	    (double)probe_max_us / 1000, PROBE_MAX_MS, probe_late,
	    probe_lost);
	printf("slowloris: %ld connections answered 408, the slowest %ld ms "
	    "after connecting (HEADER_TIMEOUT_MS %d)\n", st.ok[K_SLOW],
	    st.slow_ms_max, header_ms);
	printf("oversized: %ld heads answered 431; %ld bodies answered 413 "
	    "(from the head alone, or while a chunked body was still being "
	    "sent)\n", st.ok[K_BIGHEAD], st.ok[K_BIGBODY]);
	printf("pipelined: %ld rounds of %d requests on one connection, "
	    "every answer in order\n", st.ok[K_PIPE], PIPE_REQS);
	printf("never-reader: %ld rounds; the server stopped reading after "
	    "%ld to %ld requests (about %ld KiB of answers), RssAnon then %ld "
	    "KiB; all answered once read\n", st.ok[K_NOREAD],
	    st.noread_reqs_min, st.noread_reqs_max,
	    st.noread_reqs_max * (NOREAD_VALUE + 150) / 1024, st.rss_stall_kb);
	printf("half-closed: %ld connections, every answer arrived (%ld of "
	    "them deferred: watches and min-seq reads)\n", st.ok[K_HALF],
	    st.half_deferred);
	printf("random bytes: %ld connections closed cleanly; answers:",
	    st.ok[K_RANDOM]);
	for (i = 0; i < 600; i++)
		if (st.random_status[i] > 0)
			printf(" %zu x%ld", i, st.random_status[i]);
	printf("\n");
	printf("after: /health %d; descriptors %ld before, %ld after; "
	    "RssAnon %ld KiB before, %ld KiB after (%+ld)\n", h, fd_base,
	    fd_after, rss_base, rss_after, rss_after - rss_base);

	if (probe_late > 0 || probe_lost > 0)
		fail("probe: %ld answers over %d ms, %ld lost (max %.1f ms)",
		    probe_late, PROBE_MAX_MS, probe_lost,
		    (double)probe_max_us / 1000);
	if (probe_n < secs)
		fail("probe: only %ld answers in %d s", probe_n, secs);
	for (i = 0; i < NKINDS; i++)
		if (i != K_LOAD && st.ok[i] == 0)
			fail("%s: no cycle completed", kind_names[i]);
	if (st.half_deferred == 0)
		fail("half-closed: no deferred answer arrived");
	if (h != 200)
		fail("/health answered %d after the attack", h);
	if (fd_after != fd_base)
		fail("descriptors: %ld before, %ld after", fd_base, fd_after);
	if (rss_slack_kb > 0 && rss_after > rss_base + rss_slack_kb)
		fail("RssAnon grew by %ld KiB (bound %ld KiB)",
		    rss_after - rss_base, rss_slack_kb);
	printf("%s: %d failures\n", nfails ? "FAILED" : "ok", nfails);
	return nfails ? 1 : 0;
}

/* ---- load ---- */

static long	 rss_max;
static long	 last_reqs;

static void
load_progress(int secs)
{
	long rss = rss_anon_kb();

	if (rss > rss_max)
		rss_max = rss;
	printf("  %2ds %d open | %ld req/s | 200 %ld, 201 %ld, 503 %ld, "
	    "errors %ld | RssAnon %ld KiB\n", secs, load_open,
	    load_reqs - last_reqs, st.status[200], st.status[201],
	    st.status[503], load_errors, rss);
	fflush(stdout);
	last_reqs = load_reqs;
}

static int64_t
lat_pct(double pct)
{
	long total = 0, want, seen = 0;
	int b;

	for (b = 0; b < LAT_BUCKETS; b++)
		total += lat_hist[b];
	want = (long)(total * pct / 100);
	for (b = 0; b < LAT_BUCKETS; b++)
		if ((seen += lat_hist[b]) > want)
			return (int64_t)b * 100 + 100;
	return lat_max_us;
}

static int
load(int secs, int conns, long rss_budget_kb, uint64_t seed)
{
	struct actor *as;
	struct timespec ts = { 1, 0 };
	char key[32], val[32];
	int64_t t0, t1;
	long rss_base_kb, rss_after, i;
	int fd;

	if ((fd = dial(0)) == -1)
		die("connect");
	for (i = 0; i < load_keys; i++) {
		snprintf(key, sizeof(key), "ld-%ld", i);
		snprintf(val, sizeof(val), "v%ld", i);
		setup_put(fd, key, val);
	}
	close(fd);
	rss_base_kb = rss_max = rss_anon_kb();
	printf("load on port %d (pid %ld): %d connections for %d s, "
	    "%d%% GET over %ld keys; RssAnon %ld KiB\n", port,
	    (long)server_pid, conns, secs, LOAD_GET_PCT, load_keys,
	    rss_base_kb);
	if ((as = calloc((size_t)conns, sizeof(*as))) == NULL)
		die("calloc");
	t0 = now_us();
	load_secs = secs;
	load_conns = conns;
	run_end = t0 + (int64_t)RAMP_MS * 1000;	/* until all are open */
	for (i = 0; i < conns; i++) {
		as[i].a_kind = K_LOAD;
		as[i].a_fd = -1;
		as[i].a_rng = seed + (uint64_t)i * 7919 + 1;
		as[i].a_wake = t0;
	}
	run(as, (size_t)conns, load_progress);
	t1 = run_end;
	for (i = 0; i < conns; i++) {
		actor_close(&as[i]);
		buf_free(&as[i].a_in);
		buf_free(&as[i].a_out);
	}
	free(as);
	nanosleep(&ts, NULL);
	rss_after = rss_anon_kb();

	if (load_start != 0)
		printf("load: %d connections open after %.1f s; then %ld "
		    "answers in %.1f s, %.0f req/s\n", conns,
		    (double)(load_start - t0) / 1e6, load_reqs -
		    load_start_reqs, (double)(t1 - load_start) / 1e6,
		    (load_reqs - load_start_reqs) /
		    ((double)(t1 - load_start) / 1e6));
	printf("load: %ld answers in all; 200: %ld, 201: %ld, 503 above the "
	    "cap: %ld, errors: %ld; latency p50 %.1f ms, p99 %.1f ms, max "
	    "%.1f ms\n", load_reqs, st.status[200], st.status[201],
	    load_capped, load_errors, (double)lat_pct(50) / 1000,
	    (double)lat_pct(99) / 1000, (double)lat_max_us / 1000);
	printf("load: RssAnon %ld KiB before, %ld KiB at most (%+ld), %ld KiB "
	    "once the connections closed\n", rss_base_kb, rss_max,
	    rss_max - rss_base_kb, rss_after);
	if (load_errors > 0)
		fail("load: %ld errors", load_errors);
	if (load_capped == 0 && load_open_max < conns)
		fail("load: only %d of %d connections were open at once",
		    load_open_max, conns);
	if (load_reqs == 0)
		fail("load: nothing answered");
	if (rss_budget_kb > 0 && rss_max > rss_base_kb + rss_budget_kb)
		fail("load: RssAnon rose %ld KiB, over the %ld KiB budget",
		    rss_max - rss_base_kb, rss_budget_kb);
	printf("%s: %d failures\n", nfails ? "FAILED" : "ok", nfails);
	return nfails ? 1 : 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: abuse attack [-t secs] [-H header_ms] "
	    "[-W min_seq_ms] [-m KiB] [-s seed] PORT PID\n"
	    "       abuse load [-t secs] [-c conns] [-k keys] [-m KiB] "
	    "PORT PID\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *mode;
	uint64_t seed = (uint64_t)time(NULL);
	long mem_kb = 0;
	int secs = 10, conns = 2000, ch;

	if (argc < 2)
		usage();
	mode = argv[1];
	argv++;
	argc--;
	while ((ch = getopt(argc, argv, "t:H:W:m:s:c:k:")) != -1) {
		switch (ch) {
		case 't': secs = atoi(optarg); break;
		case 'H': header_ms = atoi(optarg); break;
		case 'W': min_seq_ms = atoi(optarg); break;
		case 'm': mem_kb = atol(optarg); break;
		case 's': seed = strtoull(optarg, NULL, 10); break;
		case 'c': conns = atoi(optarg); break;
		case 'k': load_keys = atol(optarg); break;
		default: usage();
		}
	}
	if (argc - optind != 2 || secs <= 0 || conns <= 0 || load_keys <= 0)
		usage();
	port = atoi(argv[optind]);
	server_pid = (pid_t)atol(argv[optind + 1]);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(mode, "attack") == 0)
		return attack(secs, mem_kb, seed);
	if (strcmp(mode, "load") == 0)
		return load(secs, conns, mem_kb, seed);
	usage();
	return 2;
}

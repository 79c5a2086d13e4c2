/*
 * bench/load: an exact number of HTTP/1.1 requests to kvstore, as fast as
 * it answers, for the bench scenarios that need a count rather than a
 * duration (filling a store with a million keys, make profile), and a
 * start-up timer. libc only; wrk cannot stop after N requests.
 *
 *   load put ADDR N CONNS DEPTH VALUE_BYTES [PREFIX [FIRST]]
 *	PUT /kv/PREFIX<i> for i = FIRST .. FIRST+N-1 (PREFIX "k", FIRST 0
 *	by default), every value VALUE_BYTES bytes, the N requests dealt
 *	over CONNS keep-alive connections with up to DEPTH of them in flight
 *	(pipelined) on each. Run it again with the same PREFIX to overwrite.
 *   load set ADDR N CONNS DEPTH VALUE_BYTES [PREFIX [FIRST]]
 *	The same writes to Redis: SET PREFIX<i> in RESP, each answer one
 *	line (+OK, or -ERR counted in non2xx), so that kvstore and Redis are
 *	measured by one client, the same way (bench/fsync_redis.sh).
 *   load get ADDR N CONNS DEPTH KEY [COUNT]
 *	N GETs of /kv/KEY, the same way; with COUNT, of KEY<i % COUNT> for
 *	i = 0 .. N-1 (the keys a put with PREFIX KEY wrote), so that no one
 *	key's place in the hash table decides the cost. N may be 0: the
 *	connections are opened and closed and nothing else (a baseline for
 *	make profile).
 *   load health ADDR TIMEOUT_S [PATH]
 *	Connect and GET PATH (/health) until the answer is 200, then print
 *	the wall-clock time it came (t=, seconds since the epoch, to compare
 *	with bash's $EPOCHREALTIME taken before the server started). Tries
 *	every 0.1 ms, or every 1/200 of the time waited so far when that is
 *	longer: 0.5% resolution with little load on a slow starter.
 *   load probe ADDR PID SECONDS
 *	GET /health every 10 ms on one keep-alive connection, as a liveness
 *	probe does but often enough for a p99, until SIGINT or SIGTERM (or
 *	SECONDS), then print requests, p50_ms, p99_ms and max_ms (from
 *	sending a request to its whole answer), the same with the waits for
 *	a CPU taken out (adj_p99_ms, adj_max_ms: during each request, the
 *	longer of the time PID's main thread, the server's event loop, and
 *	this one were runnable but not running, from /proc/.../schedstat, as
 *	tests/abuse.c's prober does), the loop's whole wait (waited_ms), and
 *	late (answers over 1 s: a liveness probe's timeout). Tries to connect
 *	until the server listens; an answer not 200 or a lost connection
 *	ends the run with status 1.
 *
 * ADDR is 127.0.0.1:PORT (numeric IPv4). The result is one line of
 * key=value pairs on stdout: requests, non2xx (answers not 2xx), secs,
 * rps, mbs (request plus answer bytes, 10^6 per second), and p50_ms,
 * p99_ms and max_ms: each request's time from the write that sent it
 * (its first byte) to its whole answer, as wrk and redis-benchmark
 * measure it. A failed
 * connection or a malformed answer ends the run with a line on stderr and
 * exit status 1; so does a run that makes no progress for 10 s.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS	1024
#define IN_BYTES	(1 << 16)	/* answer heads; bodies are skipped */
#define REQ_HEAD	1200		/* method, 1 KiB key, headers */
#define STALL_MS	10000		/* no byte moved: give up */
#define HEALTH_POLL_S	0.0001		/* the shortest pause between tries */
#define PROBE_EVERY_S	0.010		/* load probe's pace */
#define PROBE_LATE_S	1.0		/* the chart's liveness timeoutSeconds */

struct conn {
	int	 fd;
	char	*out;		/* requests not yet sent */
	size_t	 outlen, outoff;
	char	 in[IN_BYTES];
	size_t	 inlen;
	size_t	 skip;		/* body bytes of the current answer left */
	long	 inflight;	/* sent or queued, not yet answered */
	double	*sent;		/* when each of them was sent: a ring */
	long	 shead;		/* the oldest, answered next */
	long	 unsent;	/* the newest ones, queued but not sent */
};

static int	 cmp_double(const void *, const void *);
static double	 quantile_ms(const double *, size_t, double);

static long depth;		/* requests in flight on each connection */
static double *took;		/* each answered request's time, seconds */

static struct sockaddr_in sa;
static const char *host;	/* ADDR, for the Host header */

static double
now_s(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
fail(const char *what)
{
	fprintf(stderr, "load: %s: %s\n", what, errno != 0 ? strerror(errno) :
	    "failed");
	exit(1);
}

static int
parse_addr(const char *hostport)
{
	char h[64];
	const char *colon = strrchr(hostport, ':');
	size_t hl;

	memset(&sa, 0, sizeof(sa));
	if (colon == NULL || (hl = (size_t)(colon - hostport)) >= sizeof(h))
		return -1;
	memcpy(h, hostport, hl);
	h[hl] = '\0';
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	host = hostport;
	return inet_pton(AF_INET, h, &sa.sin_addr) == 1 ? 0 : -1;
}

static int
dial(void)
{
	int fd, one = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* ---- The request stream ---- */

static const char *method, *prefix, *value;
static size_t vlen;
static long first, total, queued, answered, non2xx, nkeys;
static uint64_t bytes;

/* Append the next request of the run to c's output. */
static void
queue_one(struct conn *c)
{
	int n;

	if (*method == 'P')
		n = sprintf(c->out + c->outlen, "PUT /kv/%s%ld HTTP/1.1\r\n"
		    "Host: %s\r\nContent-Length: %zu\r\n\r\n", prefix,
		    first + queued, host, vlen);
	else if (*method == 'S')
		n = sprintf(c->out + c->outlen, "*3\r\n$3\r\nSET\r\n$%zu\r\n"
		    "%s%ld\r\n$%zu\r\n", strlen(prefix) + (size_t)snprintf(
		    NULL, 0, "%ld", first + queued), prefix, first + queued,
		    vlen);
	else if (nkeys > 0)
		n = sprintf(c->out + c->outlen, "GET /kv/%s%ld HTTP/1.1\r\n"
		    "Host: %s\r\n\r\n", prefix, queued % nkeys, host);
	else
		n = sprintf(c->out + c->outlen, "GET /kv/%s HTTP/1.1\r\n"
		    "Host: %s\r\n\r\n", prefix, host);
	c->outlen += (size_t)n;
	if (*method != 'G') {
		memcpy(c->out + c->outlen, value, vlen);
		c->outlen += vlen;
	}
	if (*method == 'S') {
		memcpy(c->out + c->outlen, "\r\n", 2);
		c->outlen += 2;
	}
	queued++;
	c->inflight++;
	c->unsent++;
}

/* Stamp the requests c's write t just began to send. */
static void
stamp_sent(struct conn *c, double t)
{
	long i;

	for (i = c->inflight - c->unsent; c->unsent > 0; i++, c->unsent--)
		c->sent[(c->shead + i) % depth] = t;
}

/* The oldest request in flight on c was answered at t. */
static void
answer_done(struct conn *c, double t)
{
	took[answered++] = t - c->sent[c->shead];
	c->shead = (c->shead + 1) % depth;
	c->inflight--;
}

/* Count the complete RESP answers (one line each) in c's input. */
static void
take_lines(struct conn *c, double t)
{
	char *end;
	size_t k;

	c->in[c->inlen] = '\0';
	while ((end = strstr(c->in, "\r\n")) != NULL) {
		if (c->in[0] == '-')
			non2xx++;
		else if (c->in[0] != '+') {
			errno = EPROTO;
			fail("answer line");
		}
		k = (size_t)(end - c->in) + 2;
		memmove(c->in, c->in + k, c->inlen - k + 1);
		c->inlen -= k;
		answer_done(c, t);
	}
	if (c->inlen >= IN_BYTES - 1) {
		errno = EMSGSIZE;
		fail("answer line");
	}
}

/* Case-insensitive Content-Length of the head h[0..n), or 0. */
static size_t
content_length(const char *h, size_t n)
{
	static const char name[] = "\ncontent-length:";
	size_t i, l = sizeof(name) - 1;

	for (i = 0; i + l < n; i++)
		if (strncasecmp(h + i, name, l) == 0)
			return strtoul(h + i + l, NULL, 10);
	return 0;
}

/* Count the complete answers in c's input (answered at t); skip their
 * bodies. */
static void
take_answers(struct conn *c, double t)
{
	char *end;
	size_t hlen, k;
	int status;

	for (;;) {
		if (c->skip > 0) {
			k = c->skip < c->inlen ? c->skip : c->inlen;
			memmove(c->in, c->in + k, c->inlen - k);
			c->inlen -= k;
			c->skip -= k;
			if (c->skip > 0)
				return;
			answer_done(c, t);
		}
		c->in[c->inlen] = '\0';
		if ((end = strstr(c->in, "\r\n\r\n")) == NULL) {
			if (c->inlen >= IN_BYTES - 1) {
				errno = EMSGSIZE;
				fail("answer head");
			}
			return;
		}
		hlen = (size_t)(end - c->in) + 4;
		if (sscanf(c->in, "HTTP/1.%*d %d", &status) != 1) {
			errno = EPROTO;
			fail("answer status line");
		}
		if (status < 200 || status > 299)
			non2xx++;
		c->skip = content_length(c->in, hlen);
		memmove(c->in, c->in + hlen, c->inlen - hlen);
		c->inlen -= hlen;
		if (c->skip == 0)
			answer_done(c, t);
	}
}

static int
run(int argc, char **argv)
{
	static struct conn conns[MAX_CONNS];
	static struct pollfd pfds[MAX_CONNS];
	long nconns, i;
	double t0, secs, heard, t;
	uint64_t before;
	ssize_t n;
	char *v;

	if (argc < 5 || parse_addr(argv[0]) == -1 ||
	    (total = atol(argv[1])) < 0 || (nconns = atol(argv[2])) < 1 ||
	    nconns > MAX_CONNS || (depth = atol(argv[3])) < 1)
		return 2;
	if (*method != 'G') {
		vlen = strtoul(argv[4], NULL, 10);
		prefix = argc > 5 ? argv[5] : "k";
		first = argc > 6 ? atol(argv[6]) : 0;
		if ((v = malloc(vlen + 1)) == NULL)
			fail("malloc");
		memset(v, 'v', vlen);
		value = v;
	} else {
		prefix = argv[4];
		if (argc > 5 && (nkeys = atol(argv[5])) < 1)
			return 2;
	}
	if (strlen(prefix) > 1024)
		return 2;
	if ((took = malloc(((size_t)total + 1) * sizeof(*took))) == NULL)
		fail("malloc");
	for (i = 0; i < nconns; i++) {
		conns[i].out = malloc((size_t)depth * (REQ_HEAD + vlen));
		conns[i].sent = malloc((size_t)depth * sizeof(double));
		if (conns[i].out == NULL || conns[i].sent == NULL)
			fail("malloc");
		if ((conns[i].fd = dial()) == -1)
			fail("connect");
		fcntl(conns[i].fd, F_SETFL, O_NONBLOCK);
		pfds[i].fd = conns[i].fd;
	}
	t0 = heard = now_s(CLOCK_MONOTONIC);
	while (answered < total) {
		for (i = 0; i < nconns; i++) {
			struct conn *c = &conns[i];

			if (c->outoff == c->outlen)
				c->outlen = c->outoff = 0;
			while (c->inflight < depth && queued < total &&
			    c->outoff == 0)
				queue_one(c);
			pfds[i].events = POLLIN |
			    (c->outoff < c->outlen ? POLLOUT : 0);
		}
		if (poll(pfds, (nfds_t)nconns, 1000) == -1 && errno != EINTR)
			fail("poll");
		before = bytes;
		for (i = 0; i < nconns; i++) {
			struct conn *c = &conns[i];

			if (pfds[i].revents & POLLOUT) {
				n = write(c->fd, c->out + c->outoff,
				    c->outlen - c->outoff);
				if (n == -1 && errno != EAGAIN)
					fail("write");
				if (n > 0) {
					stamp_sent(c, now_s(CLOCK_MONOTONIC));
					c->outoff += (size_t)n;
					bytes += (uint64_t)n;
				}
			}
			if (pfds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
				n = read(c->fd, c->in + c->inlen,
				    IN_BYTES - 1 - c->inlen);
				if (n == 0)
					errno = ECONNRESET;
				if (n == 0 || (n == -1 && errno != EAGAIN))
					fail("read");
				if (n > 0) {
					t = now_s(CLOCK_MONOTONIC);
					c->inlen += (size_t)n;
					bytes += (uint64_t)n;
					if (*method == 'S')
						take_lines(c, t);
					else
						take_answers(c, t);
				}
			}
		}
		if (bytes > before)
			heard = now_s(CLOCK_MONOTONIC);
		else if ((now_s(CLOCK_MONOTONIC) - heard) * 1000 > STALL_MS) {
			errno = ETIMEDOUT;
			fail("no progress for 10 s");
		}
	}
	secs = now_s(CLOCK_MONOTONIC) - t0;
	for (i = 0; i < nconns; i++)
		close(conns[i].fd);
	qsort(took, (size_t)answered, sizeof(*took), cmp_double);
	printf("requests=%ld non2xx=%ld secs=%.3f rps=%.0f mbs=%.1f "
	    "p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n", answered, non2xx, secs,
	    secs > 0 ? (double)answered / secs : 0.0,
	    secs > 0 ? (double)bytes / 1e6 / secs : 0.0,
	    quantile_ms(took, (size_t)answered, 0.5),
	    quantile_ms(took, (size_t)answered, 0.99),
	    quantile_ms(took, (size_t)answered, 1));
	free(took);
	return 0;
}

/* ---- Start-up timing ---- */

static int
health(int argc, char **argv)
{
	struct timespec pause;
	char req[1200], buf[256];
	double t0, deadline, wait;
	long tries = 0;
	ssize_t n;
	int fd, len;

	if (argc < 2 || parse_addr(argv[0]) == -1 || atoi(argv[1]) <= 0)
		return 2;
	len = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n"
	    "Connection: close\r\n\r\n", argc > 2 ? argv[2] : "/health",
	    host);
	if (len < 0 || len >= (int)sizeof(req))
		return 2;
	t0 = now_s(CLOCK_MONOTONIC);
	deadline = t0 + atoi(argv[1]);
	while (now_s(CLOCK_MONOTONIC) < deadline) {
		tries++;
		if ((fd = dial()) != -1) {
			n = -1;
			if (write(fd, req, (size_t)len) == len)
				n = read(fd, buf, sizeof(buf) - 1);
			close(fd);
			if (n > 12 && memcmp(buf + 8, " 200", 4) == 0) {
				printf("t=%.6f tries=%ld\n",
				    now_s(CLOCK_REALTIME), tries);
				return 0;
			}
		}
		wait = (now_s(CLOCK_MONOTONIC) - t0) / 200;
		if (wait < HEALTH_POLL_S)
			wait = HEALTH_POLL_S;
		pause.tv_sec = (time_t)wait;
		pause.tv_nsec = (long)((wait - (double)pause.tv_sec) * 1e9);
		nanosleep(&pause, NULL);
	}
	fprintf(stderr, "load: %s: no 200 from %s in %s s\n", argv[0],
	    argc > 2 ? argv[2] : "/health", argv[1]);
	return 1;
}

/* ---- Probing ---- */

static volatile sig_atomic_t probe_stop;

static void
on_stop(int sig)
{
	(void)sig;
	probe_stop = 1;
}

/* Seconds path's thread waited for a CPU while runnable; 0 if unknown. */
static double
run_delay_s(const char *path)
{
	unsigned long long on_cpu, waited;
	double s = 0;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL)
		return 0;
	if (fscanf(f, "%llu %llu", &on_cpu, &waited) == 2)
		s = (double)waited / 1e9;
	fclose(f);
	return s;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The q-quantile of v[0..n), sorted, in ms (nearest rank, as wrk). */
static double
quantile_ms(const double *v, size_t n, double q)
{
	size_t i = (size_t)(q * (double)n);

	if (n == 0)
		return 0;
	return 1000 * v[i < n ? i : n - 1];
}

/*
 * One GET /health on fd: 0 with the answer whole, -1 if it was not a 200
 * or the connection failed.
 */
static int
probe_one(int fd, const char *req, size_t len)
{
	char buf[1024], *end, *cl;
	size_t have = 0, want = 0;
	ssize_t n;

	if (write(fd, req, len) != (ssize_t)len)
		return -1;
	for (;;) {
		if ((n = read(fd, buf + have, sizeof(buf) - 1 - have)) <= 0)
			return -1;
		have += (size_t)n;
		buf[have] = '\0';
		if (want == 0 && (end = strstr(buf, "\r\n\r\n")) != NULL) {
			if (have < 12 || memcmp(buf + 8, " 200", 4) != 0)
				return -1;
			cl = strstr(buf, "\r\nContent-Length:");	/* as kvstore spells it */
			want = (size_t)(end + 4 - buf) +
			    (cl != NULL && cl < end ? (size_t)atol(cl + 17) : 0);
		}
		if (want > 0 && have >= want)
			return 0;
		if (have == sizeof(buf) - 1)
			return -1;
	}
}

static int
probe(int argc, char **argv)
{
	struct sigaction sa_stop;
	struct timespec pause;
	char req[256], server[64];
	double *lat = NULL, *adj = NULL, *p, t0, t, deadline, sw, pw, w0;
	size_t n = 0, cap = 0, late = 0;
	int fd = -1, len;

	if (argc < 3 || parse_addr(argv[0]) == -1 || atoi(argv[1]) <= 0 ||
	    atoi(argv[2]) <= 0)
		return 2;
	len = snprintf(req, sizeof(req), "GET /health HTTP/1.1\r\nHost: %s"
	    "\r\n\r\n", host);
	snprintf(server, sizeof(server), "/proc/%d/schedstat", atoi(argv[1]));
	memset(&sa_stop, 0, sizeof(sa_stop));
	sa_stop.sa_handler = on_stop;
	sigaction(SIGINT, &sa_stop, NULL);
	sigaction(SIGTERM, &sa_stop, NULL);
	deadline = now_s(CLOCK_MONOTONIC) + atoi(argv[2]);
	w0 = run_delay_s(server);
	while (!probe_stop && now_s(CLOCK_MONOTONIC) < deadline) {
		t0 = now_s(CLOCK_MONOTONIC);
		if (fd == -1 && (fd = dial()) == -1) {
			w0 = run_delay_s(server);	/* not up yet */
		} else {
			if (n == cap) {
				cap = cap ? 2 * cap : 4096;
				if ((p = realloc(lat, cap * sizeof(*lat))) == NULL)
					fail("out of memory");
				lat = p;
				if ((p = realloc(adj, cap * sizeof(*adj))) == NULL)
					fail("out of memory");
				adj = p;
			}
			sw = run_delay_s(server);
			pw = run_delay_s("/proc/thread-self/schedstat");
			t0 = now_s(CLOCK_MONOTONIC);
			if (probe_one(fd, req, (size_t)len) == -1) {
				if (probe_stop)
					break;
				fprintf(stderr, "load: %s: /health failed after "
				    "%zu answers\n", argv[0], n);
				return 1;
			}
			t = now_s(CLOCK_MONOTONIC) - t0;
			sw = run_delay_s(server) - sw;
			pw = run_delay_s("/proc/thread-self/schedstat") - pw;
			lat[n] = t;
			adj[n] = t - (sw > pw ? sw : pw);
			if (adj[n] < 0)
				adj[n] = 0;
			late += t > PROBE_LATE_S;
			n++;
		}
		t = t0 + PROBE_EVERY_S - now_s(CLOCK_MONOTONIC);
		if (t > 0) {
			pause.tv_sec = 0;
			pause.tv_nsec = (long)(t * 1e9);
			nanosleep(&pause, NULL);
		}
	}
	qsort(lat, n, sizeof(*lat), cmp_double);
	qsort(adj, n, sizeof(*adj), cmp_double);
	printf("requests=%zu p50_ms=%.3f p99_ms=%.3f max_ms=%.3f "
	    "adj_p99_ms=%.3f adj_max_ms=%.3f waited_ms=%.0f late=%zu\n", n,
	    quantile_ms(lat, n, 0.5), quantile_ms(lat, n, 0.99),
	    quantile_ms(lat, n, 1), quantile_ms(adj, n, 0.99),
	    quantile_ms(adj, n, 1), 1000 * (run_delay_s(server) - w0), late);
	free(lat);
	free(adj);
	return 0;
}

int
main(int argc, char **argv)
{
	int rc = 2;

	if (argc > 1 && (strcmp(argv[1], "put") == 0 ||
	    strcmp(argv[1], "set") == 0 || strcmp(argv[1], "get") == 0)) {
		method = strcmp(argv[1], "put") == 0 ? "PUT" :
		    strcmp(argv[1], "set") == 0 ? "SET" : "GET";
		rc = run(argc - 2, argv + 2);
	} else if (argc > 1 && strcmp(argv[1], "health") == 0)
		rc = health(argc - 2, argv + 2);
	else if (argc > 1 && strcmp(argv[1], "probe") == 0)
		rc = probe(argc - 2, argv + 2);
	if (rc == 2)
		fprintf(stderr, "usage: load put ADDR N CONNS DEPTH VALUE_BYTES "
		    "[PREFIX [FIRST]]\n       load set ADDR N CONNS DEPTH "
		    "VALUE_BYTES [PREFIX [FIRST]]\n       load get ADDR N CONNS DEPTH "
		    "KEY [COUNT]\n       load health ADDR TIMEOUT_S [PATH]\n"
		    "       load probe ADDR PID SECONDS\n");
	return rc;
}

/*
 * bench/lag: replication lag and convergence probes for kvstore's bench.
 * libc only: raw sockets, HTTP/1.1 keep-alive, one connection per node.
 *
 *   lag sample PRIMARY REPLICA SAMPLES INTERVAL_MS MAX_S [RAW_FILE]
 *	SAMPLES times: PUT a unique key/value to PRIMARY, note when its 201
 *	arrived, then GET the key from REPLICA on another keep-alive
 *	connection, as fast as answers come, until the value is there.
 *	lag = arrival of the matching GET answer - arrival of the 201.
 *	Sleeps INTERVAL_MS between samples so they spread over a load run.
 *	Stops early after MAX_S seconds. A sample still not visible after
 *	5 s counts as a timeout. RAW_FILE gets each lag, in ms, one a line.
 *
 *   lag converge TIMEOUT_S PRIMARY REPLICA...
 *	Reads "seq" from PRIMARY's /ready, then polls each REPLICA's /ready
 *	until its "seq" reaches it (and again while the primary's seq still
 *	moves), 1 ms apart; prints the milliseconds that took.
 *
 * Nodes are HOST:PORT with a numeric IPv4 HOST (127.0.0.1). The result is
 * one line of key=value pairs on stdout, for bench/lib.sh to read; failures
 * go to stderr and the exit code is 1.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE	(1 << 16)
#define SAMPLE_TIMEOUT_NS	(5 * 1000000000LL)

struct conn {
	const char		*name;	/* HOST:PORT as given */
	struct sockaddr_in	 sa;
	int			 fd;
	char			 buf[BUF_SIZE];
	size_t			 len;	/* bytes in buf */
};

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static int
conn_init(struct conn *c, const char *hostport)
{
	char host[64];
	const char *colon = strrchr(hostport, ':');
	size_t hl;

	memset(&c->sa, 0, sizeof(c->sa));
	c->name = hostport;
	c->fd = -1;
	c->len = 0;
	if (colon == NULL || (hl = (size_t)(colon - hostport)) >= sizeof(host))
		return -1;
	memcpy(host, hostport, hl);
	host[hl] = '\0';
	c->sa.sin_family = AF_INET;
	c->sa.sin_port = htons((uint16_t)atoi(colon + 1));
	return inet_pton(AF_INET, host, &c->sa.sin_addr) == 1 ? 0 : -1;
}

static void
conn_close(struct conn *c)
{
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
	c->len = 0;
}

static int
conn_open(struct conn *c)
{
	struct timeval tv = { 5, 0 };
	int one = 1;

	conn_close(c);
	if ((c->fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(c->fd, (struct sockaddr *)&c->sa, sizeof(c->sa)) == -1) {
		conn_close(c);
		return -1;
	}
	return 0;
}

/* Case-insensitive search for header name hdr in the head [h, h+n). */
static const char *
find_header(const char *h, size_t n, const char *hdr)
{
	size_t hl = strlen(hdr), i;

	for (i = 0; i + hl + 2 < n; i++)
		if (h[i] == '\n' && strncasecmp(h + i + 1, hdr, hl) == 0 &&
		    h[i + 1 + hl] == ':')
			return h + i + 2 + hl;
	return NULL;
}

/*
 * One request/answer on c's keep-alive connection (opened on demand).
 * Fills *status and body (up to cap bytes; *blen the full length).
 * Returns 0, or -1 when the connection failed (it is then closed).
 */
static int
http_call(struct conn *c, const char *method, const char *path,
    const char *body, size_t blen_in, int *status, char *out, size_t cap,
    size_t *blen)
{
	char req[4096];
	const char *end, *cl, *co;
	size_t hlen, clen, total, off;
	ssize_t n;
	int len, keep;

	if (c->fd == -1 && conn_open(c) == -1)
		return -1;
	len = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: %s\r\n"
	    "Content-Length: %zu\r\n\r\n", method, path, c->name, blen_in);
	if (len < 0 || (size_t)len + blen_in > sizeof(req))
		return -1;
	memcpy(req + len, body, blen_in);
	len += (int)blen_in;
	for (off = 0; off < (size_t)len; off += (size_t)n)
		if ((n = send(c->fd, req + off, (size_t)len - off,
		    MSG_NOSIGNAL)) <= 0)
			goto fail;
	for (;;) {
		c->buf[c->len < BUF_SIZE ? c->len : BUF_SIZE - 1] = '\0';
		if ((end = strstr(c->buf, "\r\n\r\n")) != NULL)
			break;
		if (c->len >= BUF_SIZE - 1)
			goto fail;
		if ((n = recv(c->fd, c->buf + c->len, BUF_SIZE - 1 - c->len,
		    0)) <= 0)
			goto fail;
		c->len += (size_t)n;
	}
	hlen = (size_t)(end - c->buf) + 4;
	if (sscanf(c->buf, "HTTP/1.%*d %d", status) != 1)
		goto fail;
	cl = find_header(c->buf, hlen, "Content-Length");
	clen = cl != NULL ? strtoul(cl, NULL, 10) : 0;
	co = find_header(c->buf, hlen, "Connection");
	keep = co == NULL || strncasecmp(co + strspn(co, " \t"), "close",
	    5) != 0;
	total = hlen + clen;
	if (total > BUF_SIZE)
		goto fail;
	while (c->len < total) {
		if ((n = recv(c->fd, c->buf + c->len, BUF_SIZE - c->len,
		    0)) <= 0)
			goto fail;
		c->len += (size_t)n;
	}
	*blen = clen;
	memcpy(out, c->buf + hlen, clen < cap ? clen : cap);
	memmove(c->buf, c->buf + total, c->len - total);
	c->len -= total;
	if (!keep)
		conn_close(c);
	return 0;
fail:
	conn_close(c);
	return -1;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of the sorted v[0..n), in milliseconds. */
static double
pct_ms(const int64_t *v, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(p / 100.0 * (double)n + 0.999999);
	i = i == 0 ? 0 : i - 1;
	return (double)v[i < n ? i : n - 1] / 1e6;
}

static int
sample(int argc, char **argv)
{
	static struct conn pc, rc;
	char path[128], val[128], got[256];
	int64_t *lag, *put_ns, t0, t1, deadline, end, poll_ns = 0;
	long n, interval, i, done = 0, timeouts = 0, errors = 0, non201 = 0;
	long polls = 0;
	size_t vlen, blen;
	int status;
	FILE *raw = NULL;

	if (argc < 5 || conn_init(&pc, argv[0]) == -1 ||
	    conn_init(&rc, argv[1]) == -1 || (n = atol(argv[2])) <= 0 ||
	    (interval = atol(argv[3])) < 0 || atol(argv[4]) <= 0) {
		fprintf(stderr, "usage: lag sample PRIMARY REPLICA SAMPLES "
		    "INTERVAL_MS MAX_S [RAW_FILE]\n");
		return 2;
	}
	end = now_ns() + atol(argv[4]) * 1000000000LL;
	if (argc > 5 && (raw = fopen(argv[5], "w")) == NULL) {
		perror(argv[5]);
		return 1;
	}
	lag = calloc((size_t)n, sizeof(*lag));
	put_ns = calloc((size_t)n, sizeof(*put_ns));
	if (lag == NULL || put_ns == NULL)
		return 1;
	for (i = 0; i < n && now_ns() < end; i++) {
		if (i > 0 && interval > 0)
			sleep_ms(interval);
		snprintf(path, sizeof(path), "/kv/lag-%ld-%ld", (long)getpid(),
		    i);
		vlen = (size_t)snprintf(val, sizeof(val), "v%ld-%lld", i,
		    (long long)now_ns());
		t0 = now_ns();
		if (http_call(&pc, "PUT", path, val, vlen, &status, got,
		    sizeof(got), &blen) == -1) {
			errors++;
			continue;
		}
		t1 = now_ns();
		if (status != 201) {
			non201++;
			continue;
		}
		put_ns[done] = t1 - t0;
		t0 = t1;
		deadline = t0 + SAMPLE_TIMEOUT_NS;
		for (;;) {
			int64_t s = now_ns();

			status = 0;
			if (http_call(&rc, "GET", path, "", 0, &status, got,
			    sizeof(got), &blen) == -1) {
				errors++;
				sleep_ms(1);
			}
			t1 = now_ns();
			polls++;
			poll_ns += t1 - s;
			if (status == 200 && blen == vlen &&
			    memcmp(got, val, vlen) == 0)
				break;
			if (t1 > deadline)
				break;
		}
		if (t1 > deadline) {
			timeouts++;
			continue;
		}
		lag[done++] = t1 - t0;
		if (raw != NULL)
			fprintf(raw, "%.3f\n", (double)(t1 - t0) / 1e6);
	}
	if (raw != NULL)
		fclose(raw);
	qsort(lag, (size_t)done, sizeof(*lag), cmp_i64);
	qsort(put_ns, (size_t)done, sizeof(*put_ns), cmp_i64);
	printf("samples=%ld timeouts=%ld errors=%ld non201=%ld "
	    "p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f "
	    "put_p50_ms=%.3f put_p99_ms=%.3f get_rtt_ms=%.3f polls=%.1f\n",
	    done, timeouts, errors, non201, pct_ms(lag, (size_t)done, 50),
	    pct_ms(lag, (size_t)done, 90), pct_ms(lag, (size_t)done, 99),
	    pct_ms(lag, (size_t)done, 100), pct_ms(put_ns, (size_t)done, 50),
	    pct_ms(put_ns, (size_t)done, 99),
	    polls > 0 ? (double)poll_ns / (double)polls / 1e6 : 0.0,
	    done > 0 ? (double)polls / (double)done : 0.0);
	return done > 0 ? 0 : 1;
}

/* The node's "seq" from its /ready (any status), or -1. */
static long long
node_seq(struct conn *c)
{
	static char body[65536];
	const char *p;
	size_t blen;
	int status;

	if (http_call(c, "GET", "/ready", "", 0, &status, body,
	    sizeof(body) - 1, &blen) == -1)
		return -1;
	body[blen < sizeof(body) - 1 ? blen : sizeof(body) - 1] = '\0';
	/* "seq" with its quote: not durable_seq, applied_seq, acked_seq. */
	if ((p = strstr(body, "\"seq\":")) == NULL)
		return -1;
	return atoll(p + 6);
}

static int
converge(int argc, char **argv)
{
	static struct conn nodes[16];
	long long target, s, polls = 0;
	int64_t t0 = now_ns(), deadline;
	int i, n = argc - 1, behind;

	if (argc < 3 || n > 16 || atoi(argv[0]) <= 0) {
		fprintf(stderr, "usage: lag converge TIMEOUT_S PRIMARY "
		    "REPLICA...\n");
		return 2;
	}
	deadline = t0 + (int64_t)atoi(argv[0]) * 1000000000LL;
	for (i = 0; i < n; i++)
		if (conn_init(&nodes[i], argv[i + 1]) == -1) {
			fprintf(stderr, "lag: bad node %s\n", argv[i + 1]);
			return 2;
		}
	if ((target = node_seq(&nodes[0])) < 0) {
		fprintf(stderr, "lag: no seq from %s\n", argv[1]);
		return 1;
	}
	for (;;) {
		behind = 0;
		for (i = 1; i < n; i++) {
			polls++;
			if ((s = node_seq(&nodes[i])) < target)
				behind++;
		}
		if (behind == 0) {
			/* Done unless the primary moved on meanwhile. */
			if ((s = node_seq(&nodes[0])) <= target)
				break;
			target = s;
			continue;
		}
		if (now_ns() > deadline) {
			printf("converge_ms=timeout seq=%lld behind=%d\n",
			    target, behind);
			return 1;
		}
		sleep_ms(1);	/* 1 ms resolution, little load on the nodes */
	}
	printf("converge_ms=%.1f seq=%lld polls=%lld\n",
	    (double)(now_ns() - t0) / 1e6, target, polls);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "sample") == 0)
		return sample(argc - 2, argv + 2);
	if (argc > 1 && strcmp(argv[1], "converge") == 0)
		return converge(argc - 2, argv + 2);
	fprintf(stderr, "usage: lag sample PRIMARY REPLICA SAMPLES "
	    "INTERVAL_MS MAX_S [RAW_FILE]\n       lag converge TIMEOUT_S PRIMARY "
	    "REPLICA...\n");
	return 2;
}

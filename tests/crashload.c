/*
 * crashload: write load for kill -9 tests, and the check that follows the
 * restart. test.sh (tests/suite_crash.sh) kills the server at a random
 * moment while "write" runs, restarts it, and runs "check".
 *
 * write: CONNS threads, each on one keep-alive connection, write until the
 * server goes away (or SECONDS pass). Each thread owns its keys, so the
 * order of its operations is the order of the writes to them: puts over a
 * pool of POOL keys (creates, then overwrites), deletes from that pool, and
 * puts of fresh keys that are never written again. Every value is unique
 * (its tag names the round, the thread and the operation) and of a random
 * length. Each outcome is appended to LOG as one line, with one write(2)
 * on an O_APPEND descriptor, only once it is known:
 *
 *   A key tag len     a put answered 2xx: key holds tag's value of len bytes
 *   A key -           a delete answered 200 or 404: key is absent
 *   U key tag len     sent, but the server died before answering: the put
 *   U key -           (or delete) may or may not have happened
 *
 * check: replays LOG into the states each key may be in (the last
 * acknowledged one, or one of the unacknowledged ones sent after it) and
 * GETs every key: a key in any other state is a lost or corrupted write.
 *
 * slowget: GET PATH over HTTP/1.0 (so EOF ends the body) with a small
 * receive buffer, reading RATE bytes a second (none while the file HOLD
 * exists; "-" for none), and print the answer: a slow client. HEADER, a
 * whole "Name: value" line, goes with the request. The server can hand
 * a few MB of a long answer to the kernel at once; it must produce the
 * rest piece by piece, over seconds, as the client reads.
 *
 * Usage: crashload write PORT LOG CONNS ROUND [SECONDS]
 *        crashload check PORT LOG
 *        crashload slowget PORT PATH RATE [HOLD [HEADER]]
 * Exit status: 0 ok, 1 a wrong answer or a lost write, 2 usage or setup.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS	16
#define POOL		256		/* pool keys per thread: overwrites */
#define FRESH_PCT	10		/* of operations: a key never seen */
#define DELETE_PCT	20
#define BIG_PCT		2		/* values of BIG_LEN: the file grows */
#define SMALL_LEN	3000		/* most values are up to this long */
#define BIG_LEN		(96 << 10)
#define TAG_MAX		40
#define KEY_MAX		64
#define MAX_STATES	16		/* a key's acked state + later unknowns */
#define HEAD_MAX	4096
#define BUF_MAX		(BIG_LEN + HEAD_MAX)
#define CHECK_CONNS	4
#define SLOW_RCVBUF	8192		/* the kernel then holds little for us */
#define SLOW_PIECE	4096

/* A state a key may be in: absent (len -1) or the value of tag. */
struct state {
	char		 tag[TAG_MAX];
	long		 len;
};

struct key {
	char		 name[KEY_MAX];
	struct state	 st[MAX_STATES];
	int		 nst;
};

static int		 port;
static int		 logfd;
static long		 round_no;
static time_t		 deadline;
static struct key	*keys;
static size_t		 nkeys, capkeys;
static size_t		*slots;		/* hash index: 1 + index into keys */
static size_t		 nslots;
static size_t		 next_check;	/* check: the next key to claim */
static pthread_mutex_t	 mu = PTHREAD_MUTEX_INITIALIZER;
static long		 acked, unknown, failures, present, absent;

/* Value bytes of tag: the tag itself, then a pattern up to len. */
static void
fill(char *buf, const char *tag, long len)
{
	size_t tl = strlen(tag);
	long i;

	for (i = 0; i < len; i++)
		buf[i] = (size_t)i < tl ? tag[i] : 'a' + (char)(i * 7 % 26);
}

/* A connection to the server; rcvbuf, if not 0, is set before connect so
 * that the window is small from the start. */
static int
dial(int rcvbuf)
{
	struct sockaddr_in sa;
	int fd, one = 1;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (rcvbuf != 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
		    sizeof(rcvbuf));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
send_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, p, n)) <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Read one response into buf: its status, and its body in buf[*boff ..
 * *boff + *blen). -1 if the connection ended first.
 */
static int
response(int fd, char *buf, size_t cap, size_t *boff, size_t *blen)
{
	char *eoh, *cl;
	size_t len = 0, need = 0;
	ssize_t n;

	for (;;) {
		if (len == cap - 1)
			return -1;
		if ((n = read(fd, buf + len, cap - 1 - len)) <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
		if (need == 0) {
			if ((eoh = strstr(buf, "\r\n\r\n")) == NULL)
				continue;
			*boff = (size_t)(eoh + 4 - buf);
			*blen = 0;
			cl = strstr(buf, "\r\nContent-Length: ");
			if (cl != NULL && cl < eoh)
				*blen = strtoul(cl + 18, NULL, 10);
			need = *boff + *blen;
			if (need >= cap)
				return -1;
		}
		if (len >= need)
			break;
	}
	return atoi(buf + 9);
}

static void
record(const char *what, const char *key, const char *tag, long len)
{
	char line[KEY_MAX + TAG_MAX + 32];
	int n;

	if (tag == NULL)
		n = snprintf(line, sizeof(line), "%s %s -\n", what, key);
	else
		n = snprintf(line, sizeof(line), "%s %s %s %ld\n", what, key,
		    tag, len);
	if (write(logfd, line, n) != n) {
		perror("crashload: log");
		exit(2);
	}
}

/* ---- write ---- */

static void *
writer(void *arg)
{
	char key[KEY_MAX], tag[TAG_MAX], head[HEAD_MAX];
	char *buf;
	size_t boff, blen;
	long t = (long)(intptr_t)arg, n, len;
	unsigned seed;
	int fd, r, hn, status, del;

	seed = (unsigned)time(NULL) ^ (unsigned)getpid() << 8 ^ (unsigned)t;
	if ((buf = malloc(BUF_MAX)) == NULL)
		return NULL;
	if ((fd = dial(0)) == -1) {
		free(buf);
		return NULL;	/* the server is already gone */
	}
	for (n = 1; time(NULL) < deadline; n++) {
		r = rand_r(&seed) % 100;
		del = r < DELETE_PCT;
		if (r >= 100 - FRESH_PCT)
			snprintf(key, sizeof(key), "f%ld.%ld.%ld", round_no, t,
			    n);
		else
			snprintf(key, sizeof(key), "p%ld.%d", t,
			    rand_r(&seed) % POOL);
		snprintf(tag, sizeof(tag), "r%ld.t%ld.n%ld", round_no, t, n);
		len = rand_r(&seed) % 100 < BIG_PCT ? BIG_LEN :
		    rand_r(&seed) % SMALL_LEN;
		if (len < (long)strlen(tag))
			len = (long)strlen(tag);
		if (del)
			hn = snprintf(head, sizeof(head), "DELETE /kv/%s "
			    "HTTP/1.1\r\nHost: x\r\n\r\n", key);
		else
			hn = snprintf(head, sizeof(head), "PUT /kv/%s HTTP/1.1"
			    "\r\nHost: x\r\nContent-Length: %ld\r\n\r\n", key,
			    len);
		fill(buf, tag, len);
		if (send_all(fd, head, hn) == -1 ||
		    (!del && send_all(fd, buf, len) == -1) ||
		    (status = response(fd, buf, BUF_MAX, &boff, &blen)) == -1) {
			record("U", key, del ? NULL : tag, len);
			pthread_mutex_lock(&mu);
			unknown++;
			pthread_mutex_unlock(&mu);
			break;
		}
		if (del ? status != 200 && status != 404 :
		    status != 200 && status != 201) {
			fprintf(stderr, "crashload: %s %s answered %d: %.*s\n",
			    del ? "DELETE" : "PUT", key, status, (int)blen,
			    buf + boff);
			pthread_mutex_lock(&mu);
			failures++;
			pthread_mutex_unlock(&mu);
			break;
		}
		record("A", key, del ? NULL : tag, len);
		pthread_mutex_lock(&mu);
		acked++;
		pthread_mutex_unlock(&mu);
	}
	close(fd);
	free(buf);
	return NULL;
}

static int
do_write(int conns, long seconds)
{
	pthread_t t[MAX_CONNS];
	int i;

	deadline = time(NULL) + seconds;
	for (i = 0; i < conns; i++)
		if (pthread_create(&t[i], NULL, writer,
		    (void *)(intptr_t)i) != 0) {
			fprintf(stderr, "crashload: pthread_create failed\n");
			return 2;
		}
	for (i = 0; i < conns; i++)
		pthread_join(t[i], NULL);
	printf("crashload: round %ld: %ld acknowledged, %ld unanswered\n",
	    round_no, acked, unknown);
	return failures > 0 ? 1 : 0;
}

/* ---- check ---- */

static size_t
hash(const char *s)
{
	size_t h = 14695981039346656037ULL;

	while (*s != '\0')
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

/* The key named name, added (absent before its first write) if new. */
static struct key *
find_key(const char *name)
{
	size_t i, j;

	if (2 * (nkeys + 1) > nslots) {
		free(slots);
		nslots = nslots ? nslots * 2 : 4096;
		if ((slots = calloc(nslots, sizeof(*slots))) == NULL)
			goto oom;
		for (j = 0; j < nkeys; j++) {
			for (i = hash(keys[j].name) & (nslots - 1); slots[i];)
				i = (i + 1) & (nslots - 1);
			slots[i] = j + 1;
		}
	}
	for (i = hash(name) & (nslots - 1); slots[i]; i = (i + 1) & (nslots - 1))
		if (strcmp(keys[slots[i] - 1].name, name) == 0)
			return &keys[slots[i] - 1];
	if (nkeys == capkeys) {
		capkeys = capkeys ? capkeys * 2 : 1024;
		if ((keys = realloc(keys, capkeys * sizeof(*keys))) == NULL)
			goto oom;
	}
	slots[i] = nkeys + 1;
	memset(&keys[nkeys], 0, sizeof(keys[nkeys]));
	snprintf(keys[nkeys].name, KEY_MAX, "%s", name);
	keys[nkeys].st[0].len = -1;
	keys[nkeys].nst = 1;
	return &keys[nkeys++];
oom:
	perror("crashload");
	exit(2);
}

/*
 * Replay LOG: an acknowledged outcome is the key's only possible state
 * from then on; an unanswered one adds a possible state.
 */
static int
replay(const char *path)
{
	char line[256], what[4], name[KEY_MAX], tag[TAG_MAX];
	struct state s;
	struct key *k;
	FILE *f;
	int n;

	if ((f = fopen(path, "r")) == NULL) {
		perror(path);
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		s.len = -1;
		n = sscanf(line, "%3s %63s %39s %ld", what, name, tag, &s.len);
		if (n < 3 || (strcmp(tag, "-") != 0 && n != 4)) {
			fprintf(stderr, "crashload: bad log line: %s", line);
			fclose(f);
			return -1;
		}
		snprintf(s.tag, sizeof(s.tag), "%s", tag);
		k = find_key(name);
		if (what[0] == 'A') {
			k->st[0] = s;
			k->nst = 1;
			acked++;
		} else {
			if (k->nst == MAX_STATES) {
				fprintf(stderr, "crashload: %s: too many "
				    "unanswered writes\n", name);
				fclose(f);
				return -1;
			}
			k->st[k->nst++] = s;
			unknown++;
		}
	}
	fclose(f);
	return 0;
}

/* Does status + body match one of k's possible states? */
static int
matches(const struct key *k, int status, const char *body, size_t blen,
    char *expect)
{
	int i;

	for (i = 0; i < k->nst; i++) {
		if (k->st[i].len == -1 && status == 404)
			return 1;
		if (k->st[i].len != -1 && status == 200 &&
		    blen == (size_t)k->st[i].len) {
			fill(expect, k->st[i].tag, k->st[i].len);
			if (memcmp(body, expect, blen) == 0)
				return 1;
		}
	}
	return 0;
}

static void *
checker(void *arg)
{
	char head[HEAD_MAX], *buf, *expect;
	struct key *k;
	size_t i, boff, blen;
	int fd, hn, status, ok;

	(void)arg;
	if ((buf = malloc(BUF_MAX)) == NULL ||
	    (expect = malloc(BUF_MAX)) == NULL || (fd = dial(0)) == -1) {
		perror("crashload: check");
		exit(2);
	}
	for (;;) {
		pthread_mutex_lock(&mu);
		i = next_check++;
		pthread_mutex_unlock(&mu);
		if (i >= nkeys)
			break;
		k = &keys[i];
		hn = snprintf(head, sizeof(head), "GET /kv/%s HTTP/1.1\r\n"
		    "Host: x\r\n\r\n", k->name);
		if (send_all(fd, head, hn) == -1 ||
		    (status = response(fd, buf, BUF_MAX, &boff, &blen)) == -1) {
			fprintf(stderr, "crashload: GET %s: no answer\n",
			    k->name);
			exit(1);
		}
		ok = matches(k, status, buf + boff, blen, expect);
		pthread_mutex_lock(&mu);
		if (!ok && failures++ < 10)
			fprintf(stderr, "crashload: LOST %s: answered %d "
			    "(%zu bytes: %.24s), expected %s%s\n", k->name,
			    status, blen, status == 200 ? buf + boff : "",
			    k->st[0].len == -1 ? "absent" : k->st[0].tag,
			    k->nst > 1 ? " or a later unanswered write" : "");
		else if (ok && status == 200)
			present++;
		else if (ok)
			absent++;
		pthread_mutex_unlock(&mu);
	}
	close(fd);
	free(buf);
	free(expect);
	return NULL;
}

static int
do_check(const char *path)
{
	pthread_t t[CHECK_CONNS];
	int i;

	if (replay(path) == -1)
		return 2;
	for (i = 0; i < CHECK_CONNS; i++)
		if (pthread_create(&t[i], NULL, checker, NULL) != 0)
			return 2;
	for (i = 0; i < CHECK_CONNS; i++)
		pthread_join(t[i], NULL);
	printf("crashload: %zu keys checked (%ld present, %ld absent) "
	    "against %ld acknowledged writes (%ld unanswered): %s\n",
	    nkeys, present, absent, acked, unknown,
	    failures > 0 ? "WRITES LOST" : "ok");
	return failures > 0 ? 1 : 0;
}

/* ---- slowget ---- */

static int
do_slowget(const char *path, long rate, const char *hold,
    const char *header)
{
	struct timespec ts, pause = { 0, 10000000 };
	char buf[SLOW_PIECE], head[HEAD_MAX];
	int fd, hn;
	ssize_t n;

	if ((fd = dial(SLOW_RCVBUF)) == -1) {
		perror("crashload: slowget");
		return 2;
	}
	hn = snprintf(head, sizeof(head), "GET %s HTTP/1.0\r\n%s%s\r\n", path,
	    header != NULL ? header : "", header != NULL ? "\r\n" : "");
	if (hn < 0 || hn >= (int)sizeof(head))
		return 2;
	if (send_all(fd, head, hn) == -1)
		return 1;
	ts.tv_sec = 0;
	ts.tv_nsec = (long)(1000000000.0 * SLOW_PIECE / rate);
	for (;;) {
		while (hold != NULL && access(hold, F_OK) == 0)
			nanosleep(&pause, NULL);
		if ((n = read(fd, buf, sizeof(buf))) <= 0)
			break;
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			return 2;
		nanosleep(&ts, NULL);
	}
	close(fd);
	return n == 0 ? 0 : 1;
}

static void
usage(void)
{
	fprintf(stderr, "usage: crashload write PORT LOG CONNS ROUND "
	    "[SECONDS]\n       crashload check PORT LOG\n"
	    "       crashload slowget PORT PATH RATE [HOLD [HEADER]]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	int conns;

	if (argc < 4)
		usage();
	/* A dead server must end a write with an error, not the client. */
	signal(SIGPIPE, SIG_IGN);
	port = atoi(argv[2]);
	if (strcmp(argv[1], "check") == 0 && argc == 4)
		return do_check(argv[3]);
	if (strcmp(argv[1], "slowget") == 0 && argc >= 5 && argc <= 7 &&
	    atol(argv[4]) >= SLOW_PIECE)
		return do_slowget(argv[3], atol(argv[4]),
		    argc >= 6 && strcmp(argv[5], "-") != 0 ? argv[5] : NULL,
		    argc == 7 ? argv[6] : NULL);
	if (strcmp(argv[1], "write") != 0 || argc < 6 || argc > 7 ||
	    (conns = atoi(argv[4])) < 1 || conns > MAX_CONNS)
		usage();
	round_no = atol(argv[5]);
	if ((logfd = open(argv[3], O_WRONLY | O_APPEND | O_CREAT, 0644)) == -1) {
		perror(argv[3]);
		return 2;
	}
	return do_write(conns, argc == 7 ? atol(argv[6]) : 60);
}

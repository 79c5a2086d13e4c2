/*
 * resolve.c: a stub resolver, in place of musl's getaddrinfo, which brings
 * its own DNS code, strstr, mbsrtowcs, strtoul and stdio with it (some 20
 * KB of a 200 KB binary; this file is under 5 KB). What this program
 * resolves is the URL of a primary, a replica or a peer, and PEERS_DNS, a
 * headless Service that lists every pod: all addresses of one name, A and
 * AAAA. In order:
 *
 *   1. an IPv4 or IPv6 literal (inet_pton), looked up nowhere;
 *   2. localhost (and localhost.): 127.0.0.1 and ::1 (RFC 6761 6.3);
 *   3. /etc/hosts, where Kubernetes puts the pod's own names;
 *   4. DNS: the A and AAAA queries at once, over UDP, to each of
 *      resolv.conf's name servers, sent again each timeout, for each name
 *      of the search list in turn until one has an address.
 *
 * resolv.conf (resolv.conf(5)): nameserver (the first 3, IPv4 or IPv6
 * literals; none: 127.0.0.1), search and domain (the last one wins, up to
 * 6 domains), options ndots:N (0-15, default 1), timeout:N (1-30 s,
 * default 5) and attempts:N (1-5, default 2). A name with fewer dots than
 * ndots tries the search list first and then itself; one with more tries
 * itself first; one ending in '.' is tried alone. Kubernetes writes
 * ndots:5 and three search domains, so "kvstore-0.kvstore" is found as
 * kvstore-0.kvstore.<ns>.svc.cluster.local. The first 64 KiB of each file
 * are read, afresh at each lookup (pods come and go).
 *
 * One deadline bounds a lookup: timeout x attempts from its start (and
 * RESOLVE_MAX_MS), whatever the number of names searched; an NXDOMAIN or
 * an empty answer goes on to the next name, a timeout or a failure ends
 * it (as musl and glibc do). Once one family answered with addresses, the
 * other gets one timeout more, then what came is used.
 *
 * Message (RFC 1035 4.1), all numbers big-endian:
 *
 *   0   id | QR opcode AA TC RD | RA Z rcode | qd | an | ns | ar  (12 bytes)
 *   12  question: name | type | class
 *   ..  answers:  name | type | class | ttl (4) | rdlength | rdata
 *
 * A name is labels (a length byte, 1-63, then the bytes) ending in a zero
 * byte, or ending in a pointer (two bytes, top bits 11) to the rest of a
 * name elsewhere in the message. Every answer is hostile until checked:
 * it must come from a name server's address and port, carry the query's
 * id (16 random bits), and echo its question (name, any case, type and
 * class); pointers are followed at most MAX_HOPS times, a name is at most
 * 255 bytes, and no length is trusted past the end of the message. Only
 * the records of the queried name, and of the names its CNAMEs lead to
 * (at most MAX_CNAMES), count. An answer truncated to 512 bytes (TC) is
 * used as it came (some 28 A records fit); there is no retry over TCP.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "resolve.h"
#include "util.h"

#define RESOLV_CONF	"/etc/resolv.conf"
#define HOSTS		"/etc/hosts"
#define FILE_MAX	65536		/* bytes read of either */
#define MAX_NS		3		/* resolv.conf(5)'s MAXNS */
#define MAX_SEARCH	6		/* glibc's MAXDNSRCH */
#define NAME_MAX_LEN	253		/* in text, without the final dot */
#define WIRE_MAX	255		/* a name in labels (RFC 1035 2.3.4) */
#define LABEL_MAX	63
#define MAX_HOPS	32		/* compression pointers in one name */
#define MAX_CNAMES	8		/* links in a CNAME chain */
#define DNS_PORT	53
#define T_CNAME		5
#define C_IN		1
#define HEAD		12		/* the header's bytes */
#define WAITING		(-100)		/* a query's rc before its answer */

struct conf {
	unsigned char	 ns[MAX_NS][16];	/* IPv4 mapped */
	int		 nns;
	char		 search[MAX_SEARCH][NAME_MAX_LEN + 1];
	int		 nsearch;
	int		 ndots;
	int		 timeout_ms;	/* per try */
	int		 attempts;
};

/* One query of a lookup: A or AAAA. */
struct query {
	unsigned char	 q[RESOLVE_UDP_MAX];
	int		 qlen;
	int		 rc;		/* WAITING, then a count or a code */
	int		 fails;		/* servers that said SERVFAIL or REFUSED */
	unsigned char	 a[RESOLVE_MAX][16];
};

static const unsigned char mapped[12] = { [10] = 0xff, [11] = 0xff };

/* ---- Text files ---- */

/* The first FILE_MAX bytes of path, NUL-ended, to free; NULL if none. */
static char *
slurp(const char *path)
{
	char	*buf;
	ssize_t	 n;
	int	 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return NULL;
	if ((buf = malloc(FILE_MAX + 1)) != NULL &&
	    (n = read_full(fd, buf, FILE_MAX)) >= 0)
		buf[n] = '\0';
	else {
		free(buf);
		buf = NULL;
	}
	(void)close(fd);
	return buf;
}

/*
 * The next line at *p, cut at its comment, NUL-ended; *p moves past it.
 * NULL at the end.
 */
static char *
next_line(char **p)
{
	char	*l = *p, *e;

	if (*l == '\0')
		return NULL;
	for (e = l; *e != '\0' && *e != '\n'; e++)
		if (*e == '#' || *e == ';')
			*e = '\0';	/* the rest is comment */
	*p = *e == '\0' ? e : e + 1;
	*e = '\0';
	return l;
}

/* The next word of a line at *p, NUL-ended, or NULL; *p moves past it. */
static char *
next_word(char **p)
{
	char	*w = *p;

	while (*w == ' ' || *w == '\t' || *w == '\r')
		w++;
	if (*w == '\0')
		return NULL;
	for (*p = w; **p != '\0' && **p != ' ' && **p != '\t' &&
	    **p != '\r'; (*p)++)
		;
	if (**p != '\0')
		*(*p)++ = '\0';
	return w;
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 'a' - 'A' : c;
}

/* The same host name, in any case, either with a final dot. */
static int
same_name(const char *a, const char *b)
{
	while (*a != '\0' && lower((unsigned char)*a) ==
	    lower((unsigned char)*b)) {
		a++;
		b++;
	}
	return (*a == '\0' || (*a == '.' && a[1] == '\0')) &&
	    (*b == '\0' || (*b == '.' && b[1] == '\0'));
}

/* s as an IPv4 or IPv6 literal into a; -1 if it is not one. */
static int
literal(const char *s, unsigned char *a)
{
	if (inet_pton(AF_INET, s, a + 12) == 1) {
		memcpy(a, mapped, 12);
		return 0;
	}
	return inet_pton(AF_INET6, s, a) == 1 ? 0 : -1;
}

/* "name:N" of an options line: N into *v, within [lo, hi]. */
static void
option(const char *w, const char *name, int lo, int hi, int *v)
{
	size_t		 n = strlen(name);
	uint64_t	 x;

	if (strncmp(w, name, n) != 0 || w[n] != ':' ||
	    parse_dec(w + n + 1, UINT32_MAX, &x) == NULL)
		return;
	*v = x < (uint64_t)lo ? lo : x > (uint64_t)hi ? hi : (int)x;
}

static void
load_conf(struct conf *c)
{
	char	*buf, *p, *l, *w;
	int	 timeout = 5;

	memset(c, 0, sizeof(*c));
	c->ndots = 1;
	c->attempts = 2;
	if ((p = buf = slurp(RESOLV_CONF)) != NULL)
		while ((l = next_line(&p)) != NULL) {
			if ((w = next_word(&l)) == NULL)
				continue;
			if (strcmp(w, "nameserver") == 0) {
				if (c->nns < MAX_NS &&
				    (w = next_word(&l)) != NULL &&
				    literal(w, c->ns[c->nns]) == 0)
					c->nns++;
			} else if (strcmp(w, "search") == 0 ||
			    strcmp(w, "domain") == 0) {
				c->nsearch = 0;
				while (c->nsearch < MAX_SEARCH &&
				    (w = next_word(&l)) != NULL)
					if (strlen(w) <= NAME_MAX_LEN)
						(void)strcpy(c->search[
						    c->nsearch++], w);
			} else if (strcmp(w, "options") == 0)
				while ((w = next_word(&l)) != NULL) {
					option(w, "ndots", 0, 15, &c->ndots);
					option(w, "timeout", 1, 30, &timeout);
					option(w, "attempts", 1, 5,
					    &c->attempts);
				}
		}
	free(buf);
	c->timeout_ms = timeout * 1000;
	if (c->nns == 0) {	/* resolv.conf(5): the local server */
		(void)literal("127.0.0.1", c->ns[0]);
		c->nns = 1;
	}
}

/* name's addresses in /etc/hosts (every line that names it). */
static int
from_hosts(const char *name, unsigned char (*out)[16], int max)
{
	char		*buf, *p, *l, *w;
	unsigned char	 a[16];
	int		 n = 0;

	if ((p = buf = slurp(HOSTS)) == NULL)
		return 0;
	while (n < max && (l = next_line(&p)) != NULL) {
		if ((w = next_word(&l)) == NULL || literal(w, a) == -1)
			continue;
		while ((w = next_word(&l)) != NULL)
			if (same_name(w, name)) {
				memcpy(out[n++], a, 16);
				break;
			}
	}
	free(buf);
	return n;
}

/* ---- The wire format ---- */

static unsigned
get16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

int
resolve_query(unsigned char *q, const char *name, int type, unsigned id)
{
	size_t	 o = HEAD, len;
	int	 c;

	memset(q, 0, HEAD);
	q[0] = (unsigned char)(id >> 8);
	q[1] = (unsigned char)id;
	q[2] = 1;			/* RD: the server recurses */
	q[5] = 1;			/* one question */
	if (*name == '\0' || strcmp(name, ".") == 0)
		return -1;
	while (*name != '\0') {
		for (len = 0; (c = (unsigned char)name[len]) != '\0' &&
		    c != '.'; len++)
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' &&
			    c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
			    c == '_'))
				return -1;
		if (len == 0 || len > LABEL_MAX || o - HEAD + len + 2 >
		    WIRE_MAX)
			return -1;
		q[o++] = (unsigned char)len;
		memcpy(q + o, name, len);
		o += len;
		name += len;
		if (*name == '.')
			name++;
	}
	q[o++] = 0;
	q[o++] = 0;
	q[o++] = (unsigned char)type;
	q[o++] = 0;
	q[o++] = C_IN;
	return (int)o;
}

/*
 * The name at a[off], pointers followed, lowercased, into out (WIRE_MAX
 * bytes) as labels; *end gets the offset past it where it is written.
 * Its length, or -1 if it is malformed or runs off the message.
 */
static int
get_name(const unsigned char *a, size_t alen, size_t off,
    unsigned char *out, size_t *end)
{
	size_t	 o = 0, i, c;
	int	 hops = 0;

	*end = 0;	/* no name ends at 0: the header is there */
	for (;;) {
		if (off >= alen)
			return -1;
		c = a[off];
		if ((c & 0xc0) == 0xc0) {
			if (off + 1 >= alen || ++hops > MAX_HOPS)
				return -1;
			if (*end == 0)
				*end = off + 2;
			off = (c & 0x3f) << 8 | a[off + 1];
			continue;
		}
		if (c > LABEL_MAX || off + 1 + c > alen ||
		    o + 1 + c + (c != 0) > WIRE_MAX)
			return -1;
		out[o++] = (unsigned char)c;
		for (i = 1; i <= c; i++)
			out[o++] = (unsigned char)lower(a[off + i]);
		off += 1 + c;
		if (c == 0)
			break;
	}
	if (*end == 0)
		*end = off;
	return (int)o;
}

/* One record: its owner name (len bytes), type, class and rdata. */
struct rr {
	unsigned char	 owner[WIRE_MAX];
	int		 len;
	unsigned	 type, class;
	size_t		 rd, rdlen;	/* offset and length in a */
};

/* The record at *off; *off moves past it. -1 if it is cut short. */
static int
get_rr(const unsigned char *a, size_t alen, size_t *off, struct rr *r)
{
	size_t	 p;

	if ((r->len = get_name(a, alen, *off, r->owner, &p)) == -1 ||
	    alen - p < 10)
		return -1;
	r->type = get16(a + p);
	r->class = get16(a + p + 2);
	r->rd = p + 10;
	r->rdlen = get16(a + p + 8);
	if (r->rdlen > alen - r->rd)
		return -1;
	*off = r->rd + r->rdlen;
	return 0;
}

int
resolve_parse(const unsigned char *a, size_t alen, const unsigned char *q,
    size_t qlen, unsigned char (*out)[16], int max)
{
	unsigned char	 cur[WIRE_MAX];
	struct rr	 r;
	size_t		 off, i, end, n, an;
	unsigned	 qtype;
	int		 len, hop, found, k = 0;

	if (qlen < HEAD + 5 || alen < qlen || a[0] != q[0] || a[1] != q[1] ||
	    (a[2] & 0xf8) != 0x80 || get16(a + 4) != 1)
		return RESOLVE_EFOREIGN;	/* QR set, opcode 0, 1 question */
	for (i = HEAD; i < qlen - 4; i++)
		if (lower(a[i]) != lower(q[i]))
			return RESOLVE_EFOREIGN;
	if (memcmp(a + i, q + i, 4) != 0)
		return RESOLVE_EFOREIGN;
	if ((a[3] & 15) == 3)
		return RESOLVE_ENONAME;
	if ((a[3] & 15) != 0)
		return RESOLVE_EFAIL;
	qtype = get16(q + qlen - 4);
	an = get16(a + 6);
	if ((len = get_name(q, qlen, HEAD, cur, &end)) == -1)
		return RESOLVE_EFOREIGN;
	/* Follow the CNAMEs from the question's name, in any order. */
	for (hop = 0, found = 1; found && hop < MAX_CNAMES; hop++)
		for (found = 0, off = qlen, n = 0; !found && n < an &&
		    get_rr(a, alen, &off, &r) == 0; n++)
			if (r.type == T_CNAME && r.class == C_IN &&
			    r.len == len && memcmp(r.owner, cur, (size_t)len)
			    == 0 && (len = get_name(a, r.rd + r.rdlen, r.rd,
			    cur, &end)) != -1)
				found = 1;
	if (len == -1)
		return 0;	/* a bad CNAME target: nothing is its */
	for (off = qlen, n = 0; k < max && n < an &&
	    get_rr(a, alen, &off, &r) == 0; n++) {
		if (r.type != qtype || r.class != C_IN || r.len != len ||
		    memcmp(r.owner, cur, (size_t)len) != 0 ||
		    r.rdlen != (qtype == RESOLVE_T_A ? 4u : 16u))
			continue;
		if (qtype == RESOLVE_T_A) {
			memcpy(out[k], mapped, 12);
			memcpy(out[k++] + 12, a + r.rd, 4);
		} else
			memcpy(out[k++], a + r.rd, 16);
	}
	return k;
}

/* ---- Asking the name servers ---- */

/* Address a and port as a socket address; its length. */
static socklen_t
sockaddr_of(const unsigned char *a, int port, struct sockaddr_storage *ss)
{
	struct sockaddr_in	*s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (memcmp(a, mapped, 12) == 0) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		memcpy(&s4->sin_addr, a + 12, 4);
		return sizeof(*s4);
	}
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons((uint16_t)port);
	memcpy(&s6->sin6_addr, a, 16);
	return sizeof(*s6);
}

/* Does ss come from one of c's name servers, port 53? */
static int
from_server(const struct conf *c, const struct sockaddr_storage *ss)
{
	const struct sockaddr_in	*s4 = (const void *)ss;
	const struct sockaddr_in6	*s6 = (const void *)ss;
	unsigned char			 a[16];
	int				 i;

	if (ss->ss_family == AF_INET && ntohs(s4->sin_port) == DNS_PORT) {
		memcpy(a, mapped, 12);
		memcpy(a + 12, &s4->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6 &&
	    ntohs(s6->sin6_port) == DNS_PORT)
		memcpy(a, &s6->sin6_addr, 16);
	else
		return 0;
	for (i = 0; i < c->nns; i++)
		if (memcmp(c->ns[i], a, 16) == 0)
			return 1;
	return 0;
}

/* Each query still waiting, to each server; -1 if none could be sent. */
static int
send_all(const struct conf *c, struct pollfd *fd, struct query *qs)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sl;
	int			 i, j, v6, sent = 0;

	for (i = 0; i < c->nns; i++) {
		sl = sockaddr_of(c->ns[i], DNS_PORT, &ss);
		v6 = ss.ss_family == AF_INET6;
		if (fd[v6].fd == -1 && (fd[v6].fd = socket(ss.ss_family,
		    SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1)
			continue;	/* no IPv6 here: its servers wait */
		for (j = 0; j < 2; j++)
			if (qs[j].rc == WAITING && sendto(fd[v6].fd, qs[j].q,
			    (size_t)qs[j].qlen, MSG_NOSIGNAL,
			    (struct sockaddr *)&ss, sl) != -1)
				sent++;
	}
	return sent > 0 ? 0 : -1;
}

/* Every datagram waiting on fd, each checked against the queries. */
static void
receive(const struct conf *c, int fd, struct query *qs)
{
	unsigned char		 buf[RESOLVE_UDP_MAX];
	struct sockaddr_storage	 ss;
	socklen_t		 sl;
	ssize_t			 n;
	int			 i, rc;

	for (;;) {
		sl = sizeof(ss);
		if ((n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT,
		    (struct sockaddr *)&ss, &sl)) == -1) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (!from_server(c, &ss))
			continue;
		for (i = 0; i < 2; i++) {
			if (qs[i].rc != WAITING)
				continue;
			rc = resolve_parse(buf, (size_t)n, qs[i].q,
			    (size_t)qs[i].qlen, qs[i].a, RESOLVE_MAX);
			if (rc == RESOLVE_EFAIL && ++qs[i].fails < c->nns)
				continue;	/* another server may know */
			if (rc != RESOLVE_EFOREIGN)
				qs[i].rc = rc;
		}
	}
}

/*
 * name's A and AAAA records, by *deadline (which it may bring forward),
 * into out: IPv4 first. How many, or a RESOLVE_E code.
 */
static int
ask(const struct conf *c, const char *name, uint64_t *deadline,
    unsigned char (*out)[16], int max)
{
	struct query	 qs[2];
	struct pollfd	 fd[2] = { { .fd = -1, .events = POLLIN },
			    { .fd = -1, .events = POLLIN } };
	unsigned char	 id[4];
	uint64_t	 now, resend = 0, until;
	int		 i, j, n = 0, rc = RESOLVE_ETIMEDOUT;

	if (random_bytes(id, sizeof(id)) == -1)
		return RESOLVE_ESYS;
	for (i = 0; i < 2; i++) {
		qs[i].qlen = resolve_query(qs[i].q, name, i == 0 ?
		    RESOLVE_T_A : RESOLVE_T_AAAA, get16(id + 2 * i));
		if (qs[i].qlen == -1)
			return RESOLVE_EBADNAME;
		qs[i].rc = WAITING;
		qs[i].fails = 0;
	}
	while ((qs[0].rc == WAITING || qs[1].rc == WAITING) &&
	    (now = mono_ms()) < *deadline) {
		if (qs[0].rc == RESOLVE_ENONAME || qs[1].rc == RESOLVE_ENONAME)
			break;
		if (now >= resend) {
			if (send_all(c, fd, qs) == -1) {
				rc = RESOLVE_ESYS;
				break;
			}
			resend = now + (uint64_t)c->timeout_ms;
		}
		until = resend < *deadline ? resend : *deadline;
		if (poll(fd, 2, (int)(until - now)) == -1 && errno != EINTR) {
			rc = RESOLVE_ESYS;
			break;
		}
		for (i = 0; i < 2; i++)
			if (fd[i].fd != -1 && (fd[i].revents & POLLIN))
				receive(c, fd[i].fd, qs);
		/* One family has addresses: the other one more try. */
		if ((qs[0].rc > 0 || qs[1].rc > 0) && *deadline > mono_ms() +
		    (uint64_t)c->timeout_ms)
			*deadline = mono_ms() + (uint64_t)c->timeout_ms;
	}
	for (i = 0; i < 2; i++)
		if (fd[i].fd != -1)
			(void)close(fd[i].fd);
	for (i = 0; i < 2; i++)
		for (j = 0; j < qs[i].rc && n < max; j++)
			memcpy(out[n++], qs[i].a[j], 16);
	if (n > 0)
		return n;
	if (qs[0].rc == RESOLVE_ENONAME || qs[1].rc == RESOLVE_ENONAME)
		return RESOLVE_ENONAME;
	if (qs[0].rc == 0 && qs[1].rc == 0)
		return RESOLVE_ENODATA;
	if (qs[0].rc == RESOLVE_EFAIL || qs[1].rc == RESOLVE_EFAIL)
		return RESOLVE_EFAIL;
	return rc;
}

/* ---- Lookups ---- */

/* name through the search list, as resolv.conf says (top of file). */
static int
search(const char *name, unsigned char (*out)[16], int max)
{
	struct conf	 c;
	char		 fq[NAME_MAX_LEN + 2];
	const char	*p;
	uint64_t	 deadline, ms;
	size_t		 len = strlen(name);
	int		 dots = 0, i, rc, last = RESOLVE_ENONAME;

	load_conf(&c);
	ms = (uint64_t)c.timeout_ms * (uint64_t)c.attempts;
	deadline = mono_ms() + (ms < RESOLVE_MAX_MS ? ms : RESOLVE_MAX_MS);
	for (p = name; *p != '\0'; p++)
		dots += *p == '.';
	if (name[len - 1] == '.')
		c.nsearch = 0;		/* absolute */
	/* i == -1: the name itself, first or last by its dots */
	for (i = dots >= c.ndots ? -1 : 0; i < c.nsearch + (dots < c.ndots);
	    i++) {
		if (i == -1 || i == c.nsearch)
			p = name;
		else if (len + 1 + strlen(c.search[i]) <= NAME_MAX_LEN + 1) {
			memcpy(fq, name, len);
			fq[len] = '.';
			(void)strcpy(fq + len + 1, c.search[i]);
			p = fq;
		} else
			continue;
		rc = ask(&c, p, &deadline, out, max);
		if (rc > 0 || (rc != RESOLVE_ENONAME && rc != RESOLVE_ENODATA))
			return rc;
		if (last != RESOLVE_ENODATA)
			last = rc;
	}
	return last;
}

int
resolve_host(const char *host, int port, struct sockaddr_storage *out,
    int max)
{
	unsigned char	 a[RESOLVE_MAX][16];
	int		 i, k = 0, n = 0;

	if (max > RESOLVE_MAX)
		max = RESOLVE_MAX;
	if (max <= 0 || strlen(host) > NAME_MAX_LEN + 1)
		return RESOLVE_EBADNAME;
	if (literal(host, a[0]) == 0)
		n = 1;
	else if (same_name(host, "localhost")) {
		(void)literal("127.0.0.1", a[0]);
		(void)literal("::1", a[1]);
		n = max < 2 ? max : 2;
	} else if (*host == '\0' || *host == '.')
		return RESOLVE_EBADNAME;
	else if ((n = from_hosts(host, a, max)) == 0 &&
	    (n = search(host, a, max)) < 0)
		return n;
	/* IPv4 first: a server on [::] takes both, one on 0.0.0.0 only it */
	for (i = 0; i < n; i++)
		if (memcmp(a[i], mapped, 12) == 0)
			(void)sockaddr_of(a[i], port, &out[k++]);
	for (i = 0; i < n; i++)
		if (memcmp(a[i], mapped, 12) != 0)
			(void)sockaddr_of(a[i], port, &out[k++]);
	return n;
}

const char *
resolve_error(int rc)
{
	switch (rc) {
	case RESOLVE_EBADNAME:
		return "not a valid host name";
	case RESOLVE_ENONAME:
		return "no such name in /etc/hosts or DNS (NXDOMAIN)";
	case RESOLVE_ENODATA:
		return "the name has no IPv4 or IPv6 address";
	case RESOLVE_EFAIL:
		return "the DNS servers failed (SERVFAIL or REFUSED); "
		    "trying again may work";
	case RESOLVE_ETIMEDOUT:
		return "no answer from the DNS servers in /etc/resolv.conf "
		    "in time";
	default:
		return errstr();
	}
}

/*
 * resolve_test.c: resolve.c's query builder and answer parser against
 * crafted packets: good answers, CNAME chains in either order, wrong ids
 * and questions, server errors, compression loops, records cut short,
 * lengths past the end, every prefix of a good answer; then resolve_host
 * on literals, localhost and bad names (none of which asks a server). A
 * failed check prints one line naming the case; the last line counts the
 * checks, and the exit status is 0 only if all passed.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "resolve.h"

#define QNAME	"kvstore-0.kvstore.default.svc.cluster.local"
#define ID	0x4b1d

static int	 passed, failed;

#define CHECK(c, ...) do {						\
	if (c)								\
		passed++;						\
	else {								\
		failed++;						\
		printf("FAIL: ");					\
		printf(__VA_ARGS__);					\
		printf("\n");						\
	}								\
} while (0)

/* ---- Building answers ---- */

struct pkt {
	unsigned char	 b[2048];
	size_t		 n;
};

static unsigned char	 q[RESOLVE_UDP_MAX];
static int		 qlen;

static void
u8(struct pkt *p, unsigned v)
{
	p->b[p->n++] = (unsigned char)v;
}

static void
u16(struct pkt *p, unsigned v)
{
	u8(p, v >> 8);
	u8(p, v);
}

/* A dotted name as labels, ending in a zero byte. */
static void
name(struct pkt *p, const char *s)
{
	size_t	 l;

	while (*s != '\0') {
		l = strcspn(s, ".");
		u8(p, (unsigned)l);
		memcpy(p->b + p->n, s, l);
		p->n += l;
		s += l + (s[l] == '.');
	}
	u8(p, 0);
}

static void
ptr(struct pkt *p, unsigned off)
{
	u16(p, 0xc000 | off);
}

/* A record's fields after its owner: type, class IN, ttl, rdlength. */
static void
rr(struct pkt *p, unsigned type, unsigned rdlen)
{
	u16(p, type);
	u16(p, 1);
	u16(p, 0);
	u16(p, 30);
	u16(p, rdlen);
}

/* An answer to the query of type: its header and question, rcode, an. */
static void
answer(struct pkt *p, int type, unsigned rcode, unsigned an)
{
	qlen = resolve_query(q, QNAME, type, ID);
	memcpy(p->b, q, (size_t)qlen);
	p->n = (size_t)qlen;
	p->b[2] = 0x81;		/* QR, RD */
	p->b[3] = (unsigned char)(0x80 | rcode);
	p->b[6] = (unsigned char)(an >> 8);
	p->b[7] = (unsigned char)an;
}

/* An A record of the question's name (a pointer to it), 10.0.0.x. */
static void
a_rec(struct pkt *p, unsigned x)
{
	ptr(p, 12);
	rr(p, RESOLVE_T_A, 4);
	u8(p, 10);
	u8(p, 0);
	u8(p, 0);
	u8(p, x);
}

static int
parse(const struct pkt *p, unsigned char (*out)[16], int max)
{
	return resolve_parse(p->b, p->n, q, (size_t)qlen, out, max);
}

/* ---- The query ---- */

static void
test_query(void)
{
	static const struct {
		const char	*name;
		int		 ok;
	} t[] = {
		{ "a", 1 }, { "a.", 1 }, { QNAME, 1 }, { QNAME ".", 1 },
		{ "_dns.x-y.Z9", 1 }, { "", 0 }, { ".", 0 }, { "a..b", 0 },
		{ ".a", 0 }, { "a b", 0 }, { "a/b", 0 }, { "caf\xc3\xa9", 0 },
		{ "a\tb", 0 },
	};
	unsigned char	 buf[RESOLVE_UDP_MAX];
	char		 s[300];
	size_t		 i;
	int		 n;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		n = resolve_query(buf, t[i].name, RESOLVE_T_A, 7);
		CHECK((n > 0) == t[i].ok, "query for \"%s\": %d", t[i].name,
		    n);
	}
	n = resolve_query(buf, "ab.c", RESOLVE_T_AAAA, 0x1234);
	CHECK(n == 12 + 6 + 4 && memcmp(buf, "\x12\x34\x01\x00\0\x01\0\0"
	    "\0\0\0\0\x02" "ab\x01" "c\0\0\x1c\0\x01", (size_t)n) == 0,
	    "the bytes of a query for ab.c AAAA");
	/* labels: 63 bytes fit, 64 do not */
	memset(s, 'x', 64);
	s[63] = '\0';
	CHECK(resolve_query(buf, s, RESOLVE_T_A, 1) > 0, "a 63-byte label");
	s[63] = 'x';
	s[64] = '\0';
	CHECK(resolve_query(buf, s, RESOLVE_T_A, 1) == -1, "a 64-byte label");
	/* names: 253 bytes fit (255 in labels), 254 do not */
	for (i = 0; i < 253; i++)
		s[i] = i % 2 == 0 ? 'y' : '.';
	s[253] = '\0';
	CHECK(resolve_query(buf, s, RESOLVE_T_A, 1) > 0, "a 253-byte name");
	s[253] = '.';
	s[254] = 'y';
	s[255] = '\0';
	CHECK(resolve_query(buf, s, RESOLVE_T_A, 1) == -1, "a 255-byte name");
}

/* ---- Answers ---- */

static void
test_answers(void)
{
	unsigned char	 out[RESOLVE_MAX][16];
	struct pkt	 p;
	size_t		 at;
	int		 n, i;

	answer(&p, RESOLVE_T_A, 0, 2);
	a_rec(&p, 1);
	a_rec(&p, 2);
	n = parse(&p, out, RESOLVE_MAX);
	CHECK(n == 2 && out[0][10] == 0xff && out[0][12] == 10 &&
	    out[0][15] == 1 && out[1][15] == 2, "two A records: %d", n);
	CHECK(parse(&p, out, 1) == 1, "as many as fit");

	p.b[0] ^= 1;
	CHECK(parse(&p, out, RESOLVE_MAX) == RESOLVE_EFOREIGN, "another id");
	p.b[0] ^= 1;
	p.b[2] &= 0x7f;
	CHECK(parse(&p, out, RESOLVE_MAX) == RESOLVE_EFOREIGN, "a query");
	p.b[2] = 0x81 | 0x08;
	CHECK(parse(&p, out, RESOLVE_MAX) == RESOLVE_EFOREIGN, "opcode 1");
	p.b[2] = 0x81;
	p.b[5] = 0;
	CHECK(parse(&p, out, RESOLVE_MAX) == RESOLVE_EFOREIGN, "no question");
	p.b[5] = 1;
	p.b[14] ^= 1;		/* a letter of the name */
	CHECK(parse(&p, out, RESOLVE_MAX) == RESOLVE_EFOREIGN,
	    "another name in the question");
	p.b[14] ^= 1;
	p.b[13] ^= 0x20;	/* 'k' -> 'K': the same name */
	CHECK(parse(&p, out, RESOLVE_MAX) == 2, "the question in another "
	    "case");
	p.b[13] ^= 0x20;
	p.b[qlen - 3] = RESOLVE_T_AAAA;
	CHECK(parse(&p, out, RESOLVE_MAX) == RESOLVE_EFOREIGN,
	    "another type in the question");
	p.b[qlen - 3] = RESOLVE_T_A;
	CHECK(resolve_parse(p.b, (size_t)qlen - 1, q, (size_t)qlen, out,
	    RESOLVE_MAX) == RESOLVE_EFOREIGN, "shorter than the question");

	/* every prefix: never more than the whole, never a crash */
	for (at = 0; at < p.n; at++) {
		n = resolve_parse(p.b, at, q, (size_t)qlen, out, RESOLVE_MAX);
		CHECK(n == RESOLVE_EFOREIGN || (n >= 0 && n <= 1 + (at >=
		    p.n)), "a prefix of %zu bytes: %d", at, n);
	}
	n = resolve_parse(p.b, p.n - 1, q, (size_t)qlen, out, RESOLVE_MAX);
	CHECK(n == 1, "the second record cut short: the first counts (%d)",
	    n);

	answer(&p, RESOLVE_T_A, 3, 0);
	CHECK(parse(&p, out, RESOLVE_MAX) == RESOLVE_ENONAME, "NXDOMAIN");
	answer(&p, RESOLVE_T_A, 2, 0);
	CHECK(parse(&p, out, RESOLVE_MAX) == RESOLVE_EFAIL, "SERVFAIL");
	answer(&p, RESOLVE_T_A, 5, 0);
	CHECK(parse(&p, out, RESOLVE_MAX) == RESOLVE_EFAIL, "REFUSED");
	answer(&p, RESOLVE_T_A, 0, 0);
	CHECK(parse(&p, out, RESOLVE_MAX) == 0, "no records: NODATA");
	p.b[2] |= 0x02;		/* TC: what came is used */
	a_rec(&p, 9);
	p.b[7] = 1;
	CHECK(parse(&p, out, RESOLVE_MAX) == 1, "truncated (TC), one record");

	/* AAAA; a 5-byte A and a record of another name do not count */
	answer(&p, RESOLVE_T_AAAA, 0, 3);
	ptr(&p, 12);
	rr(&p, RESOLVE_T_AAAA, 16);
	for (i = 0; i < 16; i++)
		u8(&p, (unsigned)i);
	ptr(&p, 12);
	rr(&p, RESOLVE_T_A, 4);
	u16(&p, 0x0a00);
	u16(&p, 0x0001);
	name(&p, "evil.example");
	rr(&p, RESOLVE_T_AAAA, 16);
	for (i = 0; i < 16; i++)
		u8(&p, 0xee);
	n = parse(&p, out, RESOLVE_MAX);
	CHECK(n == 1 && out[0][0] == 0 && out[0][15] == 15,
	    "one AAAA of the name, not the A nor another name's: %d", n);

	answer(&p, RESOLVE_T_A, 0, 1);
	ptr(&p, 12);
	rr(&p, RESOLVE_T_A, 5);
	u16(&p, 0x0a00);
	u16(&p, 0x0001);
	u8(&p, 0);
	CHECK(parse(&p, out, RESOLVE_MAX) == 0, "an A of 5 bytes");

	answer(&p, RESOLVE_T_A, 0, 1);
	ptr(&p, 12);
	rr(&p, RESOLVE_T_A, 400);
	u16(&p, 0x0a00);
	u16(&p, 0x0001);
	CHECK(parse(&p, out, RESOLVE_MAX) == 0, "rdlength past the end");

	answer(&p, RESOLVE_T_A, 0, 0xffff);
	a_rec(&p, 1);
	CHECK(parse(&p, out, RESOLVE_MAX) == 1, "65535 records said, one "
	    "there");

	answer(&p, RESOLVE_T_A, 0, 40);
	for (i = 0; i < 40; i++)
		a_rec(&p, (unsigned)i);
	CHECK(parse(&p, out, RESOLVE_MAX) == RESOLVE_MAX, "40 records: the "
	    "first RESOLVE_MAX");
}

static void
test_cnames(void)
{
	unsigned char	 out[RESOLVE_MAX][16];
	struct pkt	 p;
	size_t		 t;
	int		 n;

	/* name -> a.example -> b.example (compressed) -> 10.0.0.7 */
	answer(&p, RESOLVE_T_A, 0, 3);
	ptr(&p, 12);
	rr(&p, 5, 11);
	t = p.n;
	name(&p, "a.example");
	ptr(&p, (unsigned)t);
	rr(&p, 5, 4);
	u8(&p, 1);
	u8(&p, 'b');
	ptr(&p, (unsigned)t + 2);	/* "example" */
	u8(&p, 1);
	u8(&p, 'b');
	ptr(&p, (unsigned)t + 2);
	rr(&p, RESOLVE_T_A, 4);
	u16(&p, 0x0a00);
	u16(&p, 0x0007);
	n = parse(&p, out, RESOLVE_MAX);
	CHECK(n == 1 && out[0][15] == 7, "a chain of two CNAMEs: %d", n);

	/* the address first, then the CNAME that leads to it */
	answer(&p, RESOLVE_T_A, 0, 2);
	t = p.n;
	name(&p, "c.example");
	rr(&p, RESOLVE_T_A, 4);
	u16(&p, 0x0a00);
	u16(&p, 0x0008);
	ptr(&p, 12);
	rr(&p, 5, 2);
	ptr(&p, (unsigned)t);
	n = parse(&p, out, RESOLVE_MAX);
	CHECK(n == 1 && out[0][15] == 8, "a CNAME after its target: %d", n);

	/* x -> y -> x: bounded, nothing */
	answer(&p, RESOLVE_T_A, 0, 3);
	ptr(&p, 12);
	rr(&p, 5, 11);
	t = p.n;
	name(&p, "y.example");
	ptr(&p, (unsigned)t);
	rr(&p, 5, 2);
	ptr(&p, 12);
	a_rec(&p, 1);	/* of the question's name, which is a CNAME */
	n = parse(&p, out, RESOLVE_MAX);
	CHECK(n >= 0 && n <= 1, "a CNAME loop ends: %d", n);

	/* a CNAME whose target runs off its rdata */
	answer(&p, RESOLVE_T_A, 0, 2);
	ptr(&p, 12);
	rr(&p, 5, 3);
	u8(&p, 9);
	u16(&p, 0x6161);
	a_rec(&p, 1);
	CHECK(parse(&p, out, RESOLVE_MAX) == 0, "a CNAME cut short: %d",
	    parse(&p, out, RESOLVE_MAX));
}

static void
test_compression(void)
{
	unsigned char	 out[RESOLVE_MAX][16];
	struct pkt	 p;
	size_t		 t;

	/* an owner that points at itself */
	answer(&p, RESOLVE_T_A, 0, 1);
	ptr(&p, (unsigned)p.n);
	rr(&p, RESOLVE_T_A, 4);
	u16(&p, 0x0a00);
	u16(&p, 0x0001);
	CHECK(parse(&p, out, RESOLVE_MAX) == 0, "a pointer to itself");

	/* two pointers at each other */
	answer(&p, RESOLVE_T_A, 0, 1);
	t = p.n;
	ptr(&p, (unsigned)t + 2);
	ptr(&p, (unsigned)t);
	CHECK(parse(&p, out, RESOLVE_MAX) == 0, "two pointers in a loop");

	/* a label then a pointer back to it: grows until 255 bytes */
	answer(&p, RESOLVE_T_A, 0, 1);
	t = p.n;
	u8(&p, 1);
	u8(&p, 'a');
	ptr(&p, (unsigned)t);
	CHECK(parse(&p, out, RESOLVE_MAX) == 0, "a label loop");

	/* a pointer past the end, and a reserved label type (0x40) */
	answer(&p, RESOLVE_T_A, 0, 1);
	ptr(&p, 0x3fff);
	rr(&p, RESOLVE_T_A, 4);
	CHECK(parse(&p, out, RESOLVE_MAX) == 0, "a pointer past the end");
	answer(&p, RESOLVE_T_A, 0, 1);
	u8(&p, 0x41);
	rr(&p, RESOLVE_T_A, 4);
	CHECK(parse(&p, out, RESOLVE_MAX) == 0, "a reserved label type");

	/* 33 pointers in a chain: one more than allowed */
	answer(&p, RESOLVE_T_A, 0, 1);
	for (t = 0; t < 33; t++)
		ptr(&p, (unsigned)p.n + 2);
	ptr(&p, 12);
	CHECK(parse(&p, out, RESOLVE_MAX) == 0, "a chain of 34 pointers");
}

/* ---- resolve_host without a server ---- */

static void
test_host(void)
{
	struct sockaddr_storage	 ss[RESOLVE_MAX];
	struct sockaddr_in	*s4 = (struct sockaddr_in *)&ss[0];
	struct sockaddr_in6	*s6 = (struct sockaddr_in6 *)&ss[1];
	int			 n, i, j;
	static const int	 codes[] = { RESOLVE_EBADNAME, RESOLVE_ENONAME,
	    RESOLVE_ENODATA, RESOLVE_EFAIL, RESOLVE_ETIMEDOUT };

	n = resolve_host("10.1.2.3", 8080, ss, RESOLVE_MAX);
	CHECK(n == 1 && s4->sin_family == AF_INET && ntohs(s4->sin_port) ==
	    8080 && ntohl(s4->sin_addr.s_addr) == 0x0a010203, "an IPv4 "
	    "literal: %d", n);
	n = resolve_host("fd00::1", 80, &ss[1], RESOLVE_MAX);
	CHECK(n == 1 && s6->sin6_family == AF_INET6 && ntohs(s6->sin6_port)
	    == 80 && s6->sin6_addr.s6_addr[0] == 0xfd &&
	    s6->sin6_addr.s6_addr[15] == 1, "an IPv6 literal: %d", n);
	n = resolve_host("LocalHost.", 1, ss, RESOLVE_MAX);
	CHECK(n == 2 && ss[0].ss_family == AF_INET && ss[1].ss_family ==
	    AF_INET6 && ntohl(s4->sin_addr.s_addr) == 0x7f000001 &&
	    s6->sin6_addr.s6_addr[15] == 1, "localhost: 127.0.0.1, then "
	    "::1: %d", n);
	CHECK(resolve_host("localhost", 1, ss, 1) == 1, "localhost in one");
	CHECK(resolve_host("", 1, ss, RESOLVE_MAX) == RESOLVE_EBADNAME,
	    "an empty name");
	CHECK(resolve_host(".", 1, ss, RESOLVE_MAX) == RESOLVE_EBADNAME,
	    "the root");
	CHECK(resolve_host("a..b", 1, ss, RESOLVE_MAX) == RESOLVE_EBADNAME,
	    "an empty label");
	CHECK(resolve_host("a b", 1, ss, RESOLVE_MAX) == RESOLVE_EBADNAME,
	    "a space");
	for (i = 0; i < 5; i++)
		for (j = 0; j < i; j++)
			CHECK(strcmp(resolve_error(codes[i]),
			    resolve_error(codes[j])) != 0, "messages %d and "
			    "%d differ", codes[i], codes[j]);
}

int
main(void)
{
	test_query();
	test_answers();
	test_cnames();
	test_compression();
	test_host();
	printf("resolve_test: %d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}

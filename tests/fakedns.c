/*
 * fakedns: a DNS server for the suite, answering over UDP from a zone
 * file, inside a network namespace of the test's own (it brings the
 * namespace's loopback up first). Each line of the zone is
 *
 *   name A 10.0.0.1 | name AAAA fd00::1 | name CNAME target
 *
 * and a name may have many lines. A name in the zone gets its records of
 * the type asked (and its CNAME, then the target's records); any other
 * name gets NXDOMAIN. Every query is logged on stdout ("? name type") so
 * that a test can tell which names were tried, in which order.
 *
 * Usage: tests/fakedns ZONE ADDRESS (e.g. 127.0.0.1; port 53).
 */

#define _DEFAULT_SOURCE	/* struct ifreq, IFF_UP */

#include <sys/ioctl.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAX_RECS	64

struct rec {
	char		 name[256];
	int		 type;		/* 1 A, 5 CNAME, 28 AAAA */
	unsigned char	 rd[256];
	int		 rdlen;
};

static struct rec	 zone[MAX_RECS];
static int		 nzone;

/* A dotted name as labels into p; its length. */
static int
labels(unsigned char *p, const char *s)
{
	int	 n = 0, l;

	while (*s != '\0') {
		l = (int)strcspn(s, ".");
		p[n++] = (unsigned char)l;
		memcpy(p + n, s, (size_t)l);
		n += l;
		s += l + (s[l] == '.');
	}
	p[n++] = 0;
	return n;
}

static void
load(const char *path)
{
	char	 line[512], name[256], type[16], val[256];
	FILE	*f;

	if ((f = fopen(path, "r")) == NULL) {
		perror(path);
		exit(1);
	}
	while (fgets(line, sizeof(line), f) != NULL && nzone < MAX_RECS) {
		struct rec *r = &zone[nzone];

		if (sscanf(line, "%255s %15s %255s", name, type, val) != 3)
			continue;
		snprintf(r->name, sizeof(r->name), "%s", name);
		if (strcmp(type, "A") == 0 && inet_pton(AF_INET, val, r->rd))
			r->type = 1, r->rdlen = 4;
		else if (strcmp(type, "AAAA") == 0 &&
		    inet_pton(AF_INET6, val, r->rd))
			r->type = 28, r->rdlen = 16;
		else if (strcmp(type, "CNAME") == 0)
			r->type = 5, r->rdlen = labels(r->rd, val);
		else
			continue;
		nzone++;
	}
	fclose(f);
}

/* The name in labels at q[o] as dotted text; the offset past it. */
static int
dotted(const unsigned char *q, int len, int o, char *out)
{
	int	 n = 0;

	while (o < len && q[o] != 0 && q[o] < 64 && o + 1 + q[o] < len) {
		if (n > 0)
			out[n++] = '.';
		memcpy(out + n, q + o + 1, q[o]);
		n += q[o];
		o += 1 + q[o];
	}
	out[n] = '\0';
	return o + 1;
}

static int
add_rr(unsigned char *a, int o, const char *owner, const struct rec *r)
{
	o += labels(a + o, owner);
	a[o++] = 0;
	a[o++] = (unsigned char)r->type;
	a[o++] = 0;
	a[o++] = 1;
	memset(a + o, 0, 3);
	a[o + 3] = 30;
	o += 4;
	a[o++] = 0;
	a[o++] = (unsigned char)r->rdlen;
	memcpy(a + o, r->rd, (size_t)r->rdlen);
	return o + r->rdlen;
}

/* The answer to q into a; its length. */
static int
answer(const unsigned char *q, int len, unsigned char *a)
{
	char	 name[256], target[256];
	int	 o, type, i, an = 0, known = 0, hops;

	o = dotted(q, len, 12, name);
	if (o + 4 > len)
		return 0;
	type = q[o] << 8 | q[o + 1];
	printf("? %s %d\n", name, type);
	fflush(stdout);
	memcpy(a, q, (size_t)o + 4);
	a[2] = 0x81;
	a[3] = 0x80;
	o += 4;
	for (hops = 0; hops < 8; hops++) {
		int cname = -1;

		for (i = 0; i < nzone; i++) {
			if (strcasecmp(zone[i].name, name) != 0)
				continue;
			known = 1;
			if (zone[i].type == type) {
				o = add_rr(a, o, name, &zone[i]);
				an++;
			} else if (zone[i].type == 5)
				cname = i;
		}
		if (cname == -1)
			break;
		o = add_rr(a, o, name, &zone[cname]);
		an++;
		dotted(zone[cname].rd, zone[cname].rdlen, 0, target);
		snprintf(name, sizeof(name), "%s", target);
	}
	if (!known)
		a[3] |= 3;	/* NXDOMAIN */
	a[6] = (unsigned char)(an >> 8);
	a[7] = (unsigned char)an;
	return o;
}

/* ifconfig lo up: a new network namespace's loopback starts down. */
static void
lo_up(void)
{
	struct ifreq	 ifr;
	int		 s = socket(AF_INET, SOCK_DGRAM, 0);

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (s == -1 || ioctl(s, SIOCGIFFLAGS, &ifr) == -1)
		return;
	ifr.ifr_flags |= IFF_UP;
	(void)ioctl(s, SIOCSIFFLAGS, &ifr);
	close(s);
}

int
main(int argc, char *argv[])
{
	struct sockaddr_in	 sin;
	struct sockaddr_storage	 from;
	socklen_t		 fl;
	unsigned char		 q[512], a[4096];
	ssize_t			 n;
	int			 s, alen;

	if (argc != 3) {
		fprintf(stderr, "usage: fakedns ZONE ADDRESS\n");
		return 2;
	}
	load(argv[1]);
	lo_up();
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(53);
	if (inet_pton(AF_INET, argv[2], &sin.sin_addr) != 1 ||
	    (s = socket(AF_INET, SOCK_DGRAM, 0)) == -1 ||
	    bind(s, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		perror("fakedns: bind");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		fl = sizeof(from);
		if ((n = recvfrom(s, q, sizeof(q), 0,
		    (struct sockaddr *)&from, &fl)) < 12)
			continue;
		if ((alen = answer(q, (int)n, a)) > 0)
			(void)sendto(s, a, (size_t)alen, 0,
			    (struct sockaddr *)&from, fl);
	}
}

/*
 * resolve.h: host names to addresses: IP literals, localhost, /etc/hosts,
 * then DNS over UDP to /etc/resolv.conf's name servers, with its search
 * list, ndots, timeout and attempts. Our own, in place of getaddrinfo
 * (some 20 KB of musl). No state between calls: any thread, at once.
 */

#define RESOLVE_MAX	16	/* addresses kept of one name */
#define RESOLVE_MAX_MS	30000	/* no lookup takes longer (below) */

/* What went wrong: resolve_host's negative returns. */
enum {
	RESOLVE_ESYS = -1,	/* errno says (a socket, no memory) */
	RESOLVE_EBADNAME = -2,	/* not a host name */
	RESOLVE_ENONAME = -3,	/* NXDOMAIN for every name searched */
	RESOLVE_ENODATA = -4,	/* a name, with no A or AAAA record */
	RESOLVE_EFAIL = -5,	/* each server said SERVFAIL or REFUSED */
	RESOLVE_ETIMEDOUT = -6,	/* no server answered in time */
	RESOLVE_EFOREIGN = -7	/* resolve_parse: not an answer to q */
};

/*
 * The addresses of host (a name, or an IPv4 or IPv6 literal) with port,
 * into out[0..max): IPv4 first, then IPv6, in the order they came. Returns
 * how many (at least 1), or a RESOLVE_E code. Blocks at most resolv.conf's
 * timeout x attempts (5 s x 2 by default), and never past RESOLVE_MAX_MS.
 */
struct sockaddr_storage;
int	resolve_host(const char *host, int port, struct sockaddr_storage *out,
	    int max);

/* One line on a RESOLVE_E code (strerror(errno) for RESOLVE_ESYS). */
const char *resolve_error(int rc);

/* ---- The wire format, for the unit tests and the fuzzer ---- */

#define RESOLVE_T_A	1
#define RESOLVE_T_AAAA	28
#define RESOLVE_UDP_MAX	512	/* RFC 1035 4.2.1, without EDNS */

/*
 * A query for name's records of type, with id, into q (RESOLVE_UDP_MAX
 * bytes): its length, or -1 if name is not a host name.
 */
int	resolve_query(unsigned char *q, const char *name, int type,
	    unsigned id);

/*
 * Answer a[0..alen) to query q[0..qlen): its addresses of q's name (after
 * its CNAMEs) as 16 bytes each (IPv4 mapped, ::ffff:a.b.c.d) into
 * out[0..max). Returns how many, RESOLVE_ENONAME, RESOLVE_EFAIL, or
 * RESOLVE_EFOREIGN if it is no answer to q (id, question). A record cut
 * short ends the answer there: the records before it count.
 */
int	resolve_parse(const unsigned char *a, size_t alen,
	    const unsigned char *q, size_t qlen, unsigned char (*out)[16],
	    int max);

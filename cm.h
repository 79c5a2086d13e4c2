/*
 * cm.h: the compressor of the web console's files, a small context-mixing
 * coder (cm.c says how it works).
 */

/*
 * Pack in[0..n) into out, which has room for n + n / 8 + 64 bytes; returns
 * the bytes written, or 0 if out of memory. For ui/pack, at build time.
 */
size_t	cm_pack(const unsigned char *in, size_t n, unsigned char *out);

/*
 * Unpack in[0..n), packed by cm_pack, into out[0..len). Returns 0, or -1
 * with errno ENOMEM. Whatever in holds, len bytes come out: the caller
 * checks them. Allocates 4 MB for its run; one thread at a time (its
 * static tables).
 */
int	cm_unpack(const unsigned char *in, size_t n, char *out, size_t len);

/*
 * hash.c: the checksum and the hash of the store's records: CRC-32C
 * (sliced by 8 in software, or the SSE4.2 instruction where the CPU has
 * it) and SipHash-2-4. Pure functions; the CRC tables are filled before
 * main.
 */

#if defined(__x86_64__) && defined(__GNUC__) && !defined(KV_SOFT_CRC)
#include <cpuid.h>
#endif
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "hash.h"

static uint32_t		crc_table[8][256];
#if defined(__x86_64__) && defined(__GNUC__) && !defined(KV_SOFT_CRC)
static int		crc_sse42;	/* the CPU has the crc32 instruction */
#endif

/*
 * CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), sliced by 8: about
 * 1.5 GB/s in software, which keeps replaying a big log at open quick. On
 * x86-64 with SSE4.2 (every such CPU since 2008) the crc32 instruction
 * computes the same polynomial several times faster: a fifth of a
 * replica's time applying small writes went to the tables. KV_SOFT_CRC
 * builds the tables alone (tests/store_test_softcrc).
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(KV_SOFT_CRC)
__attribute__((target("sse4.2")))
static uint32_t
crc32c_sse42(uint32_t crc, const unsigned char *p, size_t len)
{
	uint64_t c = crc ^ 0xffffffff, w;

	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
	}
	while (len-- > 0)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return (uint32_t)c ^ 0xffffffff;
}
#endif

/*
 * Before main, as a constructor: single-threaded there, where a
 * pthread_once that every crc32c caller went through linked 344 bytes.
 * It costs every run, the CLI's too, some microseconds.
 */
__attribute__((constructor)) static void
crc_init(void)
{
	uint32_t c;
	int i, j;

#if defined(__x86_64__) && defined(__GNUC__) && !defined(KV_SOFT_CRC)
	unsigned eax, ebx, ecx, edx;

	/*
	 * cpuid leaf 1 says it in ecx, asked directly: libgcc's
	 * __builtin_cpu_supports links 4.5 KB of CPU-model tables.
	 */
	crc_sse42 = __get_cpuid(1, &eax, &ebx, &ecx, &edx) &&
	    (ecx & bit_SSE4_2) != 0;
#endif

	for (i = 0; i < 256; i++) {
		c = i;
		for (j = 0; j < 8; j++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78 : c >> 1;
		crc_table[0][i] = c;
	}
	for (i = 0; i < 256; i++)
		for (j = 1; j < 8; j++)
			crc_table[j][i] = (crc_table[j - 1][i] >> 8) ^
			    crc_table[0][crc_table[j - 1][i] & 0xff];
}

uint32_t
crc32c(const void *buf, size_t len)
{
	return crc32c_update(0, buf, len);
}

uint32_t
crc32c_update(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint32_t c = crc ^ 0xffffffff;
	uint64_t w;

#if defined(__x86_64__) && defined(__GNUC__) && !defined(KV_SOFT_CRC)
	if (crc_sse42)
		return crc32c_sse42(crc, p, len);
#endif
	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&w, p, 8);	/* little-endian: first byte lowest */
		w ^= c;
		c = crc_table[7][w & 0xff] ^
		    crc_table[6][(w >> 8) & 0xff] ^
		    crc_table[5][(w >> 16) & 0xff] ^
		    crc_table[4][(w >> 24) & 0xff] ^
		    crc_table[3][(w >> 32) & 0xff] ^
		    crc_table[2][(w >> 40) & 0xff] ^
		    crc_table[1][(w >> 48) & 0xff] ^
		    crc_table[0][w >> 56];
	}
	while (len-- > 0)
		c = crc_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffff;
}

#define ROTL(x, b)	(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND do {							\
	v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);	\
	v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;				\
	v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;				\
	v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);	\
} while (0)

/*
 * SipHash-2-4 (Aumasson and Bernstein), keyed per file: clients choose the
 * keys, and a fixed hash would let them pile every key into one cluster.
 */
uint64_t
siphash(uint64_t k0, uint64_t k1, const unsigned char *p, size_t len)
{
	uint64_t v0 = k0 ^ 0x736f6d6570736575ULL;
	uint64_t v1 = k1 ^ 0x646f72616e646f6dULL;
	uint64_t v2 = k0 ^ 0x6c7967656e657261ULL;
	uint64_t v3 = k1 ^ 0x7465646279746573ULL;
	uint64_t m, b = (uint64_t)len << 56;
	size_t i;

	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&m, p, 8);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (i = 0; i < len; i++)
		b |= (uint64_t)p[i] << (8 * i);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

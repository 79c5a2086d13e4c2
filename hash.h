/*
 * hash.h: CRC-32C, the checksum of every record and header of the store
 * file, and SipHash-2-4, its keyed hash of keys. Any thread.
 */

/* CRC-32C (Castagnoli, reflected 0x82f63b78) of buf[0..len). */
uint32_t crc32c(const void *buf, size_t len);

/*
 * The CRC-32C of a stream, a piece at a time: crc is the CRC of what came
 * before (0 at the start), so crc32c_update(crc32c(a), b) is crc32c(ab).
 */
uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len);

/* SipHash-2-4 of p[0..len) under the key (k0, k1). */
uint64_t siphash(uint64_t k0, uint64_t k1, const unsigned char *p, size_t len);

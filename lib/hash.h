/* hash.h — the digests Cairn uses, over mbedtls: SHA-256 and HMAC-SHA-256 (SigV4), MD5
 * (ETags, Content-MD5), CRC32C (checksums of stored bytes; SSE4.2 when the CPU has it),
 * plus hex and base64 helpers. */
#ifndef CAIRN_HASH_H
#define CAIRN_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32
#define MD5_LEN 16

/* Incremental contexts; opaque storage big enough for mbedtls' contexts. */
struct sha256_ctx { _Alignas(16) unsigned char opaque[256]; };
struct md5_ctx { _Alignas(16) unsigned char opaque[128]; };

void sha256_init(struct sha256_ctx *c);
void sha256_update(struct sha256_ctx *c, const void *buf, size_t len);
void sha256_final(struct sha256_ctx *c, unsigned char out[SHA256_LEN]);
void sha256(const void *buf, size_t len, unsigned char out[SHA256_LEN]);
/* The portable path whatever the CPU, and whether sha256_init() uses the SHA extensions.
 * For tests and benchmarks. */
void sha256_init_sw(struct sha256_ctx *c);
bool sha256_hw_available(void);

void hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
		 unsigned char out[SHA256_LEN]);

void md5_init(struct md5_ctx *c);
void md5_update(struct md5_ctx *c, const void *buf, size_t len);
void md5_final(struct md5_ctx *c, unsigned char out[MD5_LEN]);

uint32_t crc32c(uint32_t crc, const void *buf, size_t len);	/* crc32c(0, ...) to start */
/* The portable (table) path, whatever the CPU; and whether crc32c() uses SSE4.2. For tests
 * and for comparing the two paths. */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);
bool crc32c_hw_available(void);

/* The value of one hex digit (either case), or -1. */
int hex_value(char ch);
/* Lower-case hex; out must hold 2*len+1 bytes; NUL-terminated. */
void hex_encode(const unsigned char *in, size_t len, char *out);
/* Returns bytes written or -1 on a bad digit / odd length / overflow. */
int hex_decode(const char *in, size_t len, unsigned char *out, size_t out_max);
/* Standard base64 with padding. encode: out holds 4*((len+2)/3)+1; decode: -1 if invalid. */
size_t base64_encode(const unsigned char *in, size_t len, char *out);
int base64_decode(const char *in, size_t len, unsigned char *out, size_t out_max);

#endif

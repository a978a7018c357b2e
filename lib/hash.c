/* hash.c — Cairn's digests: SHA-256, HMAC-SHA-256 and MD5 over mbedtls 2.28, CRC32C
 * (slicing-by-8 in C, SSE4.2 crc32 instructions when the CPU has them), and the hex and
 * base64 codecs used for signatures, ETags and Content-MD5. */
#include "hash.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include <mbedtls/md5.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <nmmintrin.h>
#endif

/* The opaque storage in hash.h must hold mbedtls' contexts; a bigger mbedtls breaks here,
 * at compile time, not in memory. */
_Static_assert(_Alignof(mbedtls_sha256_context) <= 16, "sha256 context alignment");
_Static_assert(sizeof(mbedtls_md5_context) <= sizeof(((struct md5_ctx *)0)->opaque),
	       "struct md5_ctx too small for mbedtls_md5_context");
_Static_assert(_Alignof(mbedtls_md5_context) <= 16, "md5 context alignment");

#define HMAC_BLOCK	64	/* SHA-256 block size */
#define HMAC_IPAD	0x36
#define HMAC_OPAD	0x5c
#define CRC32C_POLY	0x82f63b78u	/* Castagnoli, reflected */
#define CRC_TABLES	8		/* slicing-by-8 */

/* --- SHA-256 ---
 * mbedtls does the portable work. On CPUs with the SHA extensions (most x86 servers since
 * 2017) the block function runs on them instead: SigV4 hashes every signed payload byte,
 * and that hash was the single largest cost of a PUT. */

struct sha_ni_state {
	uint32_t h[8];
	uint64_t total;
	unsigned char buf[64];
	unsigned used;
};

struct sha_impl {
	int ni;
	union {
		mbedtls_sha256_context mb;
		struct sha_ni_state st;
	} u;
};

_Static_assert(sizeof(struct sha_impl) <= sizeof(((struct sha256_ctx *)0)->opaque),
	       "struct sha256_ctx too small");

static pthread_once_t sha_once = PTHREAD_ONCE_INIT;
static bool sha_hw;

#if defined(__x86_64__)
static void sha_detect(void)
{
	unsigned a, b, c, d;

	/* SHA (leaf 7 EBX bit 29), SSSE3 and SSE4.1 (leaf 1 ECX bits 9 and 19). */
	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 9)) || !(c & (1u << 19)))
		return;
	if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 29)))
		sha_hw = true;
}

static const uint32_t sha_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

/* Compresses n 64-byte blocks with the SHA-NI instructions. The state is kept in the
 * ABEF/CDGH register layout those instructions use, converted on entry and exit. */
__attribute__((target("sha,sse4.1,ssse3")))
static void sha_ni_blocks(uint32_t h[8], const unsigned char *p, size_t n)
{
	const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
	__m128i s0, s1, t, abef, cdgh, msg[4];

	t = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[0]), 0xb1);	/* CDAB */
	s1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[4]), 0x1b);	/* EFGH */
	s0 = _mm_alignr_epi8(t, s1, 8);						/* ABEF */
	s1 = _mm_blend_epi16(s1, t, 0xf0);					/* CDGH */
	for (; n; n--, p += 64) {
		abef = s0;
		cdgh = s1;
		for (int i = 0; i < 4; i++)
			msg[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), bswap);
		for (int i = 0; i < 16; i++) {
			t = _mm_add_epi32(msg[i & 3], _mm_loadu_si128((const __m128i *)&sha_k[4 * i]));
			s1 = _mm_sha256rnds2_epu32(s1, s0, t);
			s0 = _mm_sha256rnds2_epu32(s0, s1, _mm_shuffle_epi32(t, 0x0e));
			if (i < 12) {	/* the schedule for rounds 4(i+4) .. 4(i+4)+3 */
				t = _mm_sha256msg1_epu32(msg[i & 3], msg[(i + 1) & 3]);
				t = _mm_add_epi32(t, _mm_alignr_epi8(msg[(i + 3) & 3], msg[(i + 2) & 3], 4));
				msg[i & 3] = _mm_sha256msg2_epu32(t, msg[(i + 3) & 3]);
			}
		}
		s0 = _mm_add_epi32(s0, abef);
		s1 = _mm_add_epi32(s1, cdgh);
	}
	t = _mm_shuffle_epi32(s0, 0x1b);		/* FEBA */
	s1 = _mm_shuffle_epi32(s1, 0xb1);		/* DCHG */
	_mm_storeu_si128((__m128i *)&h[0], _mm_blend_epi16(t, s1, 0xf0));	/* DCBA */
	_mm_storeu_si128((__m128i *)&h[4], _mm_alignr_epi8(s1, t, 8));	/* HGFE */
}
#else
static void sha_detect(void)
{
}

static void sha_ni_blocks(uint32_t h[8], const unsigned char *p, size_t n)
{
	(void)h; (void)p; (void)n;	/* never called: sha_hw stays false */
}
#endif

static void ni_update(struct sha_ni_state *st, const unsigned char *p, size_t len)
{
	st->total += len;
	if (st->used) {
		size_t take = 64 - st->used < len ? 64 - st->used : len;

		memcpy(st->buf + st->used, p, take);
		st->used += (unsigned)take;
		p += take;
		len -= take;
		if (st->used < 64)
			return;
		sha_ni_blocks(st->h, st->buf, 1);
		st->used = 0;
	}
	if (len >= 64) {
		sha_ni_blocks(st->h, p, len / 64);
		p += len & ~(size_t)63;
		len &= 63;
	}
	memcpy(st->buf, p, len);
	st->used = (unsigned)len;
}

static void ni_final(struct sha_ni_state *st, unsigned char out[SHA256_LEN])
{
	uint64_t bits = st->total * 8;
	unsigned char pad[72] = { 0x80 };
	size_t padlen = (st->used < 56 ? 56 : 120) - st->used;

	for (int i = 0; i < 8; i++)
		pad[padlen + (size_t)i] = (unsigned char)(bits >> (56 - 8 * i));
	ni_update(st, pad, padlen + 8);
	for (int i = 0; i < 8; i++) {
		out[4 * i] = (unsigned char)(st->h[i] >> 24);
		out[4 * i + 1] = (unsigned char)(st->h[i] >> 16);
		out[4 * i + 2] = (unsigned char)(st->h[i] >> 8);
		out[4 * i + 3] = (unsigned char)st->h[i];
	}
	mbedtls_platform_zeroize(st, sizeof(*st));
}

static void sha_init_impl(struct sha256_ctx *c, bool allow_hw)
{
	static const uint32_t iv[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
		0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
	};
	struct sha_impl *s = (struct sha_impl *)(void *)c->opaque;

	pthread_once(&sha_once, sha_detect);
	s->ni = allow_hw && sha_hw;
	if (s->ni) {
		memcpy(s->u.st.h, iv, sizeof(iv));
		s->u.st.total = 0;
		s->u.st.used = 0;
		return;
	}
	mbedtls_sha256_init(&s->u.mb);
	/* Cannot fail for the software implementation with valid arguments. */
	(void)mbedtls_sha256_starts_ret(&s->u.mb, 0);
}

void sha256_init(struct sha256_ctx *c)
{
	sha_init_impl(c, true);
}

void sha256_init_sw(struct sha256_ctx *c)
{
	sha_init_impl(c, false);
}

bool sha256_hw_available(void)
{
	pthread_once(&sha_once, sha_detect);
	return sha_hw;
}

void sha256_update(struct sha256_ctx *c, const void *buf, size_t len)
{
	struct sha_impl *s = (struct sha_impl *)(void *)c->opaque;

	if (!len)
		return;
	if (s->ni)
		ni_update(&s->u.st, buf, len);
	else
		(void)mbedtls_sha256_update_ret(&s->u.mb, buf, len);
}

void sha256_final(struct sha256_ctx *c, unsigned char out[SHA256_LEN])
{
	struct sha_impl *s = (struct sha_impl *)(void *)c->opaque;

	if (s->ni) {
		ni_final(&s->u.st, out);
		return;
	}
	(void)mbedtls_sha256_finish_ret(&s->u.mb, out);
	mbedtls_sha256_free(&s->u.mb);	/* zeroises the state */
}

void sha256(const void *buf, size_t len, unsigned char out[SHA256_LEN])
{
	struct sha256_ctx c;

	sha256_init(&c);
	sha256_update(&c, buf, len);
	sha256_final(&c, out);
}

/* --- HMAC-SHA-256 (RFC 2104), done by hand: avoids mbedtls_md's info lookup per call --- */

void hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
		 unsigned char out[SHA256_LEN])
{
	unsigned char k[HMAC_BLOCK] = { 0 }, pad[HMAC_BLOCK], inner[SHA256_LEN];
	struct sha256_ctx c;

	if (key_len > HMAC_BLOCK)
		sha256(key, key_len, k);
	else if (key_len)
		memcpy(k, key, key_len);

	for (int i = 0; i < HMAC_BLOCK; i++)
		pad[i] = k[i] ^ HMAC_IPAD;
	sha256_init(&c);
	sha256_update(&c, pad, sizeof(pad));
	sha256_update(&c, msg, msg_len);
	sha256_final(&c, inner);

	for (int i = 0; i < HMAC_BLOCK; i++)
		pad[i] = k[i] ^ HMAC_OPAD;
	sha256_init(&c);
	sha256_update(&c, pad, sizeof(pad));
	sha256_update(&c, inner, sizeof(inner));
	sha256_final(&c, out);

	/* The padded key is secret material (SigV4 signing keys). */
	mbedtls_platform_zeroize(k, sizeof(k));
	mbedtls_platform_zeroize(pad, sizeof(pad));
}

/* --- MD5 --- */

static mbedtls_md5_context *md5_ctx_of(struct md5_ctx *c)
{
	return (mbedtls_md5_context *)(void *)c->opaque;
}

void md5_init(struct md5_ctx *c)
{
	mbedtls_md5_init(md5_ctx_of(c));
	(void)mbedtls_md5_starts_ret(md5_ctx_of(c));
}

void md5_update(struct md5_ctx *c, const void *buf, size_t len)
{
	if (len)
		(void)mbedtls_md5_update_ret(md5_ctx_of(c), buf, len);
}

void md5_final(struct md5_ctx *c, unsigned char out[MD5_LEN])
{
	(void)mbedtls_md5_finish_ret(md5_ctx_of(c), out);
	mbedtls_md5_free(md5_ctx_of(c));
}

/* --- CRC32C --- */

static uint32_t crc_table[CRC_TABLES][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static bool crc_hw;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1)));
		crc_table[0][i] = c;
	}
	/* Table t[k][i] is the CRC of byte i followed by k zero bytes. */
	for (int t = 1; t < CRC_TABLES; t++)
		for (int i = 0; i < 256; i++)
			crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^
					  crc_table[0][crc_table[t - 1][i] & 0xff];
#if defined(__x86_64__)
	__builtin_cpu_init();	/* harmless if done; needed if we run before constructors */
	crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t load_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* crc is the raw (non-inverted) register. */
static uint32_t crc_sw_raw(uint32_t crc, const unsigned char *p, size_t len)
{
	while (len >= 8) {
		uint32_t lo = load_le32(p) ^ crc, hi = load_le32(p + 4);

		crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
		      crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
		      crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
		      crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
	return crc;
}

#if defined(__x86_64__)
/* The target attribute lets this file build without -msse4.2; it only runs after
 * crc_init() saw the CPU flag. */
__attribute__((target("sse4.2")))
static uint32_t crc_hw_raw(uint32_t crc, const unsigned char *p, size_t len)
{
	uint64_t c = crc;

	while (len && ((uintptr_t)p & 7)) {
		c = _mm_crc32_u8((uint32_t)c, *p++);
		len--;
	}
	while (len >= 8) {
		uint64_t v;

		memcpy(&v, p, sizeof(v));
		c = _mm_crc32_u64(c, v);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	return (uint32_t)c;
}
#endif

uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&crc_once, crc_init);
	return ~crc_sw_raw(~crc, buf, len);
}

bool crc32c_hw_available(void)
{
	pthread_once(&crc_once, crc_init);
	return crc_hw;
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&crc_once, crc_init);
#if defined(__x86_64__)
	if (crc_hw)
		return ~crc_hw_raw(~crc, buf, len);
#endif
	return ~crc_sw_raw(~crc, buf, len);
}

/* --- hex --- */

static const char hex_digits[] = "0123456789abcdef";

void hex_encode(const unsigned char *in, size_t len, char *out)
{
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hex_digits[in[i] >> 4];
		out[2 * i + 1] = hex_digits[in[i] & 0xf];
	}
	out[2 * len] = '\0';
}

int hex_value(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int hex_decode(const char *in, size_t len, unsigned char *out, size_t out_max)
{
	if ((len & 1) || len / 2 > out_max || len / 2 > (size_t)INT32_MAX)
		return -1;
	for (size_t i = 0; i < len; i += 2) {
		int hi = hex_value(in[i]), lo = hex_value(in[i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i / 2] = (unsigned char)(hi << 4 | lo);
	}
	return (int)(len / 2);
}

/* --- base64 (RFC 4648, with padding) --- */

static const char b64_chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encode(const unsigned char *in, size_t len, char *out)
{
	size_t o = 0, i = 0;

	for (; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = b64_chars[v >> 18];
		out[o++] = b64_chars[(v >> 12) & 63];
		out[o++] = b64_chars[(v >> 6) & 63];
		out[o++] = b64_chars[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)in[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		out[o++] = b64_chars[v >> 18];
		out[o++] = b64_chars[(v >> 12) & 63];
		out[o++] = i + 1 < len ? b64_chars[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

static int b64_val(char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

/* Strict: length a multiple of 4, '=' only as the last one or two characters. */
int base64_decode(const char *in, size_t len, unsigned char *out, size_t out_max)
{
	size_t o = 0, pad = 0;

	if (len % 4 || len / 4 * 3 > (size_t)INT32_MAX)
		return -1;
	if (len && in[len - 1] == '=')
		pad = (len >= 2 && in[len - 2] == '=') ? 2 : 1;
	if (len / 4 * 3 - pad > out_max)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		bool last = i + 4 == len;

		for (int k = 0; k < 4; k++) {
			bool is_pad = last && k >= 4 - (int)pad;

			v[k] = is_pad ? 0 : b64_val(in[i + k]);
			if (v[k] < 0)
				return -1;
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
			     (uint32_t)v[2] << 6 | (uint32_t)v[3];
		size_t n = last ? 3 - pad : 3;

		for (size_t k = 0; k < n; k++)
			out[o++] = (unsigned char)(w >> (16 - 8 * k));
	}
	return (int)o;
}

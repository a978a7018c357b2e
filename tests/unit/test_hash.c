/* test_hash.c — SHA-256, HMAC-SHA-256 (RFC 4231), MD5 (RFC 1321), CRC32C (RFC 3720
 * vectors, both the table and the SSE4.2 paths), hex and base64 (RFC 4648). */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>

#include "../../lib/hash.h"

static void hexstr(const unsigned char *d, size_t n, char *out)
{
	hex_encode(d, n, out);
}

TEST(hash_sha256_vectors)
{
	unsigned char d[SHA256_LEN];
	char hex[2 * SHA256_LEN + 1];
	struct sha256_ctx c;

	sha256("", 0, d);
	hexstr(d, sizeof(d), hex);
	CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	sha256("abc", 3, d);
	hexstr(d, sizeof(d), hex);
	CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

	/* Incremental, split mid-block, equals one shot. */
	const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	sha256_init(&c);
	sha256_update(&c, m, 10);
	sha256_update(&c, m + 10, 0);
	sha256_update(&c, m + 10, strlen(m) - 10);
	sha256_final(&c, d);
	hexstr(d, sizeof(d), hex);
	CHECK_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(hash_hmac_sha256_rfc4231)
{
	unsigned char key[131], d[SHA256_LEN];
	char hex[2 * SHA256_LEN + 1];
	const char *big = "Test Using Larger Than Block-Size Key - Hash Key First";

	memset(key, 0x0b, 20);
	hmac_sha256(key, 20, "Hi There", 8, d);
	hexstr(d, sizeof(d), hex);
	CHECK_STR(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");

	hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, d);
	hexstr(d, sizeof(d), hex);
	CHECK_STR(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

	memset(key, 0xaa, sizeof(key));
	hmac_sha256(key, sizeof(key), big, strlen(big), d);
	hexstr(d, sizeof(d), hex);
	CHECK_STR(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void md5_hex(const char *s, char out[2 * MD5_LEN + 1])
{
	struct md5_ctx c;
	unsigned char d[MD5_LEN];
	size_t n = strlen(s);

	md5_init(&c);
	md5_update(&c, s, n / 2);
	md5_update(&c, s + n / 2, n - n / 2);
	md5_final(&c, d);
	hex_encode(d, sizeof(d), out);
}

TEST(hash_md5_vectors)
{
	char hex[2 * MD5_LEN + 1];

	md5_hex("", hex);
	CHECK_STR(hex, "d41d8cd98f00b204e9800998ecf8427e");
	md5_hex("abc", hex);
	CHECK_STR(hex, "900150983cd24fb0d6963f7d28e17f72");
	md5_hex("The quick brown fox jumps over the lazy dog", hex);
	CHECK_STR(hex, "9e107d9d372bb6826bd81d3542a419d6");
	md5_hex("12345678901234567890123456789012345678901234567890123456789012345678901234567890",
		hex);
	CHECK_STR(hex, "57edf4a22be3c955ac49da2e2107b67a");
}

/* Runs the RFC 3720 vectors through one CRC path. */
static int crc_vectors(uint32_t (*f)(uint32_t, const void *, size_t))
{
	unsigned char buf[32];

	if (f(0, "123456789", 9) != 0xE3069283u)
		return 1;
	memset(buf, 0, sizeof(buf));
	if (f(0, buf, sizeof(buf)) != 0x8A9136AAu)
		return 2;
	memset(buf, 0xff, sizeof(buf));
	if (f(0, buf, sizeof(buf)) != 0x62A8AB43u)
		return 3;
	for (int i = 0; i < 32; i++)
		buf[i] = (unsigned char)i;
	if (f(0, buf, sizeof(buf)) != 0x46DD794Eu)
		return 4;
	for (int i = 0; i < 32; i++)
		buf[i] = (unsigned char)(31 - i);
	if (f(0, buf, sizeof(buf)) != 0x113FDB5Cu)
		return 5;
	if (f(0, "", 0) != 0)
		return 6;
	/* Chaining: crc(a || b) == crc(crc(a), b). */
	if (f(f(0, "1234", 4), "56789", 5) != 0xE3069283u)
		return 7;
	return 0;
}

TEST(hash_crc32c_vectors_both_paths)
{
	CHECK_INT(crc_vectors(crc32c_sw), 0);
	CHECK_INT(crc_vectors(crc32c), 0);	/* SSE4.2 when the CPU has it */
	printf("     (crc32c hardware path %s)\n",
	       crc32c_hw_available() ? "used" : "not available on this CPU");
}

TEST(hash_crc32c_paths_agree)
{
	unsigned char buf[4096 + 16];

	srand(42);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)rand();
	/* Every alignment and the short tails around the 8-byte steps. */
	for (size_t off = 0; off < 16; off++)
		for (size_t len = 0; len < 64; len++)
			CHECK_INT(crc32c(0, buf + off, len), crc32c_sw(0, buf + off, len));
	CHECK_INT(crc32c(0, buf + 3, 4096), crc32c_sw(0, buf + 3, 4096));
	CHECK_INT(crc32c(crc32c(0, buf, 1001), buf + 1001, 3000), crc32c_sw(0, buf, 4001));
}

TEST(hash_hex)
{
	unsigned char in[] = { 0x00, 0x01, 0xab, 0xff }, out[8];
	char hex[9];

	hex_encode(in, sizeof(in), hex);
	CHECK_STR(hex, "0001abff");
	CHECK_INT(hex_decode("0001ABff", 8, out, sizeof(out)), 4);
	CHECK_MEM(out, in, 4);
	CHECK_INT(hex_decode("", 0, out, sizeof(out)), 0);
	CHECK_INT(hex_decode("abc", 3, out, sizeof(out)), -1);		/* odd */
	CHECK_INT(hex_decode("0g", 2, out, sizeof(out)), -1);		/* bad digit */
	CHECK_INT(hex_decode("00112233", 8, out, 3), -1);		/* overflow */
	hex_encode(in, 0, hex);
	CHECK_STR(hex, "");
}

TEST(hash_base64_rfc4648)
{
	static const char *plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *enc[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
				     "Zm9vYmFy" };
	char out[16];
	unsigned char dec[16];

	for (int i = 0; i < 7; i++) {
		size_t n = base64_encode((const unsigned char *)plain[i], strlen(plain[i]), out);

		CHECK_INT(n, strlen(enc[i]));
		CHECK_STR(out, enc[i]);
		CHECK_INT(base64_decode(enc[i], strlen(enc[i]), dec, sizeof(dec)),
			  strlen(plain[i]));
		CHECK_MEM(dec, plain[i], strlen(plain[i]));
	}
}

TEST(hash_base64_invalid)
{
	unsigned char dec[16];
	const char *bad[] = { "Zg=", "Z===", "====", "Zm9v!A==", "=Zm9", "Zg==Zm9v", "Zm=v",
			      "Zm9vY" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_INT(base64_decode(bad[i], strlen(bad[i]), dec, sizeof(dec)), -1);
	CHECK_INT(base64_decode("Zm9vYmFy", 8, dec, 5), -1);	/* out too small */
	CHECK_INT(base64_decode("Zm9vYmE=", 8, dec, 5), 5);	/* exactly fits */
}

TEST(hash_base64_content_md5)
{
	/* Content-MD5 of "" as S3 clients send it. */
	unsigned char d[MD5_LEN], back[MD5_LEN];
	struct md5_ctx c;
	char b64[25];

	md5_init(&c);
	md5_final(&c, d);
	CHECK_INT(base64_encode(d, sizeof(d), b64), 24);
	CHECK_STR(b64, "1B2M2Y8AsgTpgAmY7PhCfg==");
	CHECK_INT(base64_decode(b64, 24, back, sizeof(back)), MD5_LEN);
	CHECK_MEM(back, d, MD5_LEN);
}

TEST(hash_base64_round_trip)
{
	unsigned char in[64], dec[64];
	char enc[4 * 22 + 1];

	srand(7);
	for (size_t len = 0; len <= sizeof(in); len++) {
		for (size_t i = 0; i < len; i++)
			in[i] = (unsigned char)rand();
		size_t n = base64_encode(in, len, enc);

		CHECK_INT(n, 4 * ((len + 2) / 3));
		CHECK_INT(base64_decode(enc, n, dec, sizeof(dec)), len);
		CHECK_MEM(dec, in, len);
	}
}

/* The SHA-NI path and the portable path must agree on every length and split. */
TEST(sha256_hw_matches_sw)
{
	static unsigned char data[4099];
	unsigned seed = 12345;

	for (size_t i = 0; i < sizeof(data); i++) {
		seed = seed * 1103515245u + 12345u;
		data[i] = (unsigned char)(seed >> 16);
	}
	if (!sha256_hw_available())
		fprintf(stderr, "  (no SHA extensions on this CPU: comparing the portable path with itself)\n");
	for (size_t len = 0; len < sizeof(data); len += 1 + len / 3) {
		unsigned char a[SHA256_LEN], b[SHA256_LEN];
		struct sha256_ctx hw, sw;
		size_t cut = len / 3;

		sha256_init(&hw);
		sha256_update(&hw, data, cut);
		sha256_update(&hw, data + cut, len - cut);
		sha256_final(&hw, a);
		sha256_init_sw(&sw);
		sha256_update(&sw, data, len);
		sha256_final(&sw, b);
		if (memcmp(a, b, SHA256_LEN) != 0) {
			test_fail(__FILE__, __LINE__, "sha256 paths differ at len %zu", len);
			return;
		}
	}
}

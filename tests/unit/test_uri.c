/* test_uri.c — percent-decoding, SigV4 percent-encoding, and query-string splitting. */
#include "test.h"

#include <stdlib.h>

#include "../../lib/uri.h"

TEST(uri_decode_basic)
{
	char out[32];
	int n;

	n = uri_decode("%41%2f+b%7E", 11, out, sizeof(out), false);
	CHECK_INT(n, 5);
	CHECK_MEM(out, "A/+b~", 5);
	n = uri_decode("a+b%20c", 7, out, sizeof(out), true);
	CHECK_INT(n, 5);
	CHECK_MEM(out, "a b c", 5);
	CHECK_INT(uri_decode("", 0, out, sizeof(out), false), 0);
	CHECK_INT(uri_decode("%00", 3, out, sizeof(out), false), 1);
	CHECK_INT(out[0], 0);
}

TEST(uri_decode_malformed)
{
	char out[8];

	CHECK_INT(uri_decode("%", 1, out, sizeof(out), false), -1);
	CHECK_INT(uri_decode("a%4", 3, out, sizeof(out), false), -1);
	CHECK_INT(uri_decode("%zz", 3, out, sizeof(out), false), -1);
	CHECK_INT(uri_decode("%4g", 3, out, sizeof(out), false), -1);
	/* Only as long as the input says: the escape's digits lie beyond len. */
	CHECK_INT(uri_decode("%41", 2, out, sizeof(out), false), -1);
	CHECK_INT(uri_decode("abcd", 4, out, 3, false), -1);	/* out too small */
	CHECK_INT(uri_decode("abc", 3, out, 3, false), 3);
}

TEST(uri_encode_basic)
{
	char out[64];
	size_t n;

	n = uri_encode("a b/~-._*+%", 11, out, sizeof(out), false);
	CHECK_INT(n, 19);
	CHECK_MEM(out, "a%20b/~-._%2A%2B%25", 19);
	n = uri_encode("a/b", 3, out, sizeof(out), true);
	CHECK_INT(n, 5);
	CHECK_MEM(out, "a%2Fb", 5);
	n = uri_encode("\xff\x80", 2, out, sizeof(out), true);
	CHECK_INT(n, 6);
	CHECK_MEM(out, "%FF%80", 6);
	n = uri_encode("AZaz09", 6, out, sizeof(out), true);
	CHECK_INT(n, 6);
	CHECK_MEM(out, "AZaz09", 6);
}

TEST(uri_encode_short_buffer)
{
	char out[8];

	memset(out, '#', sizeof(out));
	/* Full length is reported; no partial escape is written. */
	CHECK_INT(uri_encode("ab c", 4, out, 4, true), 6);
	CHECK_MEM(out, "ab##", 4);
	CHECK_INT(uri_encode("abc", 3, out, 0, true), 3);
}

TEST(uri_round_trip)
{
	unsigned char in[256];
	char enc[3 * 256], dec[256];

	for (int i = 0; i < 256; i++)
		in[i] = (unsigned char)i;
	size_t n = uri_encode((const char *)in, sizeof(in), enc, sizeof(enc), true);

	CHECK(n <= sizeof(enc));
	CHECK_INT(uri_decode(enc, n, dec, sizeof(dec), false), 256);
	CHECK_MEM(dec, in, 256);

	srand(3);
	for (int round = 0; round < 200; round++) {
		size_t len = (size_t)rand() % 64;

		for (size_t i = 0; i < len; i++)
			in[i] = (unsigned char)rand();
		n = uri_encode((const char *)in, len, enc, sizeof(enc), round & 1);
		CHECK_INT(uri_decode(enc, n, dec, sizeof(dec), false), len);
		CHECK_MEM(dec, in, len);
	}
}

TEST(uri_query_parse_basic)
{
	struct uri_param p[URI_MAX_PARAMS];
	const char *q = "a=1&uploads&&c=&d=x=y&";
	int n = uri_query_parse(q, strlen(q), p, URI_MAX_PARAMS);

	CHECK_INT(n, 4);
	CHECK(p[0].name_len == 1 && p[0].value_len == 1 && p[0].value[0] == '1' && p[0].has_value);
	CHECK(p[1].name_len == 7 && !memcmp(p[1].name, "uploads", 7));
	CHECK(!p[1].has_value && p[1].value_len == 0 && p[1].value[0] == '\0');
	CHECK(p[2].has_value && p[2].value_len == 0);
	CHECK(p[3].value_len == 3 && !memcmp(p[3].value, "x=y", 3));

	CHECK(uri_query_get(p, n, "uploads") == &p[1]);
	CHECK(uri_query_get(p, n, "d") == &p[3]);
	CHECK(uri_query_get(p, n, "upload") == NULL);
	CHECK(uri_query_get(p, n, "A") == NULL);	/* exact, case-sensitive */
	CHECK_INT(uri_query_parse("", 0, p, URI_MAX_PARAMS), 0);
	CHECK_INT(uri_query_parse("&&", 2, p, URI_MAX_PARAMS), 0);
}

TEST(uri_query_parse_limit)
{
	struct uri_param p[3];

	CHECK_INT(uri_query_parse("a&b&c", 5, p, 3), 3);
	CHECK_INT(uri_query_parse("a&b&c&d", 7, p, 3), -1);
	/* Respects len, not the NUL. */
	CHECK_INT(uri_query_parse("a=1&b=2", 3, p, 3), 1);
	CHECK_INT(p[0].value_len, 1);
}

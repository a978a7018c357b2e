/* fuzz_uri.c — libFuzzer target for lib/uri.c: query splitting, percent-decoding in both
 * '+' modes, and the encode/decode round trip (aborts if decode(encode(x)) != x), with
 * output buffers sized exactly so ASan sees any overrun. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/uri.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* encode then decode must give the input back; short buffers must never overflow. */
static void round_trip(const char *s, size_t n)
{
	size_t enc_len = uri_encode(s, n, NULL, 0, true);
	char *enc = malloc(enc_len ? enc_len : 1), *dec = malloc(n ? n : 1);

	if (!enc || !dec)
		goto out;
	if (uri_encode(s, n, enc, enc_len, (n & 1) != 0) > enc_len)
		abort();	/* keeping '/' can only make it shorter */
	if (uri_encode(s, n, enc, enc_len, true) != enc_len)
		abort();
	if (uri_decode(enc, enc_len, dec, n, false) != (int)n || memcmp(dec, s, n) != 0)
		abort();
	/* A buffer one short: no partial escape, nothing past the end. */
	if (enc_len)
		uri_encode(s, n, enc, enc_len - 1, true);
out:
	free(enc);
	free(dec);
}

static void decode_both(const char *s, size_t n)
{
	char *out = malloc(n ? n : 1);
	int a, b;

	if (!out)
		return;
	a = uri_decode(s, n, out, n, false);
	b = uri_decode(s, n, out, n, true);
	if ((a < 0) != (b < 0) || a > (int)n)
		abort();	/* '+' handling must not change validity or length */
	if (a >= 0)
		round_trip(out, (size_t)a);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *q = malloc(size ? size : 1);
	struct uri_param params[URI_MAX_PARAMS];
	int n;

	if (!q)
		return 0;
	memcpy(q, data, size);
	n = uri_query_parse(q, size, params, URI_MAX_PARAMS);
	for (int i = 0; i < n; i++) {
		if (params[i].name < q || params[i].name + params[i].name_len > q + size)
			abort();
		decode_both(params[i].name, params[i].name_len);
		decode_both(params[i].value, params[i].value_len);
		if (uri_query_get(params, n, "X-Amz-Signature") == &params[i] &&
		    params[i].name_len != strlen("X-Amz-Signature"))
			abort();
	}
	decode_both(q, size);
	round_trip(q, size);
	free(q);
	return 0;
}

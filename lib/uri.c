/* uri.c — percent-decoding, the AWS (SigV4) flavour of percent-encoding, and splitting a
 * query string into parameters in place. Pure functions over caller buffers. */
#include "uri.h"

#include <limits.h>
#include <string.h>

#include "hash.h"

#define ESCAPE_LEN 3	/* "%XY" */

static const char upper_hex[] = "0123456789ABCDEF";

int uri_decode(const char *in, size_t len, char *out, size_t out_max, bool plus_is_space)
{
	size_t o = 0;

	if (len > INT_MAX)	/* the result must fit the int return */
		return -1;
	for (size_t i = 0; i < len; i++) {
		char ch = in[i];

		if (ch == '%') {
			int hi, lo;

			if (len - i < ESCAPE_LEN)
				return -1;
			hi = hex_value(in[i + 1]);
			lo = hex_value(in[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			ch = (char)(hi << 4 | lo);
			i += ESCAPE_LEN - 1;
		} else if (ch == '+' && plus_is_space) {
			ch = ' ';
		}
		if (o == out_max)
			return -1;
		out[o++] = ch;
	}
	return (int)o;
}

/* RFC 3986 unreserved characters: the only ones SigV4 leaves as they are. */
static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

size_t uri_encode(const char *in, size_t len, char *out, size_t out_max, bool encode_slash)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (unreserved(c) || (c == '/' && !encode_slash)) {
			if (o < out_max)
				out[o] = (char)c;
			o++;
			continue;
		}
		/* Write the escape only when all of it fits, so a short buffer never ends in a
		 * partial "%X". */
		if (out_max >= ESCAPE_LEN && o <= out_max - ESCAPE_LEN) {
			out[o] = '%';
			out[o + 1] = upper_hex[c >> 4];
			out[o + 2] = upper_hex[c & 0xf];
		}
		o += ESCAPE_LEN;
	}
	return o;
}

int uri_query_parse(const char *q, size_t len, struct uri_param *params, int max)
{
	int n = 0;
	size_t i = 0;

	while (i < len) {
		const char *seg = q + i, *amp = memchr(seg, '&', len - i);
		size_t seg_len = amp ? (size_t)(amp - seg) : len - i;
		const char *eq;

		i += seg_len + 1;
		if (seg_len == 0)	/* "a=1&&b=2", a trailing '&': nothing there */
			continue;
		if (n == max)
			return -1;
		eq = memchr(seg, '=', seg_len);
		params[n].name = seg;
		if (eq) {
			params[n].name_len = (size_t)(eq - seg);
			params[n].value = eq + 1;
			params[n].value_len = seg_len - params[n].name_len - 1;
			params[n].has_value = true;
		} else {
			params[n].name_len = seg_len;
			params[n].value = "";
			params[n].value_len = 0;
			params[n].has_value = false;
		}
		n++;
	}
	return n;
}

const struct uri_param *uri_query_get(const struct uri_param *params, int n, const char *name)
{
	size_t len = strlen(name);

	for (int i = 0; i < n; i++)
		if (params[i].name_len == len && memcmp(params[i].name, name, len) == 0)
			return &params[i];
	return NULL;
}

/* fuzz_http1.c — libFuzzer target for lib/http1.c's head parser, as a request and as a
 * reply, and the target splitting/percent-decoding of an accepted request: strings must
 * stay inside the buffer, and a parsed head's fields obey the parser's own rules. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(const char *p, const char *buf, size_t size)
{
	if (p && (p < buf || p + strlen(p) >= buf + size))
		abort();
}

static void request(char *buf, size_t size)
{
	struct http1_head h;
	char path[HTTP1_PATH_MAX];
	const char *query;
	int err = http1_parse_head(buf, size, true, &h);

	if (err && err != -EPROTO)
		abort();
	if (err)
		return;
	inside(h.method, buf, size);
	inside(h.target, buf, size);
	inside(h.ctype, buf, size);
	inside(h.authorization, buf, size);
	if (!h.method || !*h.method || !h.target || !*h.target ||
	    (h.transfer_encoding && h.content_length >= 0))
		abort();
	if (http1_split_target((char *)h.target, path, sizeof(path), &query) == 0) {
		if (path[0] != '/' || strlen(path) >= sizeof(path))
			abort();
		if (*query)
			inside(query, buf, size);	/* else the literal "" */
	}
}

static void reply(char *buf, size_t size)
{
	struct http1_head h;
	int err = http1_parse_head(buf, size, false, &h);

	if (err && err != -EPROTO)
		abort();
	if (err)
		return;
	if (h.status < 100 || h.status > 599 || h.content_length < -1)
		abort();
	inside(h.ctype, buf, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *a, *b;

	if (size > HTTP1_HEAD_MAX)
		return 0;
	a = malloc(size ? size : 1);
	b = malloc(size ? size : 1);
	if (a && b) {
		memcpy(a, data, size);
		memcpy(b, data, size);
		request(a, size);
		reply(b, size);
	}
	free(a);
	free(b);
	return 0;
}

/* fuzz_http.c — libFuzzer target for lib/http_parse.c: request heads, and for chunked
 * requests the rest of the input through the chunked decoder in 1-3 pieces, decoded in
 * place the way http_server.c does it. Aborts on any broken invariant. */
#include "../../lib/http.h"

#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_PIECES 3

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_span(const char *p, size_t n, const char *lo, const char *hi)
{
	if (n && (!p || p < lo || p + n > hi))
		abort();
}

static void check_head(const char *buf, size_t len, int r, const struct http_req *req)
{
	const char *end = buf + r;

	if ((size_t)r > len || r > HTTP_MAX_HEAD || req->nhdr > HTTP_MAX_HEADERS ||
	    req->target_len > HTTP_MAX_TARGET || (req->chunked && req->content_length >= 0))
		abort();
	check_span(req->method_str, req->method_len, buf, end);
	check_span(req->target, req->target_len, buf, end);
	check_span(req->path, req->path_len, buf, end);
	check_span(req->query, req->query_len, buf, end);
	for (int i = 0; i < req->nhdr; i++) {
		check_span(req->hdr[i].name, req->hdr[i].name_len, buf, end);
		check_span(req->hdr[i].value, req->hdr[i].value_len, buf, end);
	}
	http_req_header(req, "content-length");
	http_req_header(req, "x-amz-decoded-content-length");
}

/* The body arrives in pieces; each piece is decoded over itself, as in the server. */
static void fuzz_chunked(char *body, size_t len, unsigned pieces)
{
	struct http_chunked ch;
	size_t pos = 0;
	bool done = false;

	http_chunked_init(&ch);
	for (unsigned k = 1; k <= pieces && !done; k++) {
		size_t avail = len * k / pieces, dst = pos;

		while (pos < avail && !done) {
			const char *run;
			size_t run_len;
			ssize_t r = http_chunked_feed(&ch, body + pos, avail - pos, &run, &run_len, &done);

			if (r < 0)
				return;
			if ((size_t)r > avail - pos || (r == 0 && !done))
				abort();
			check_span(run, run_len, body + pos, body + pos + r);
			if (run_len)
				memmove(body + dst, run, run_len);
			dst += run_len;
			pos += (size_t)r;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http_req req;
	const char *buf = (const char *)data;
	int r = http_parse_head(buf, size, &req);
	char *body;

	if (r < HTTP_PARSE_TE || r > (int)size)
		abort();
	if (r <= 0)
		return 0;
	check_head(buf, size, r, &req);
	if (!req.chunked || !(body = malloc(size - (size_t)r + 1)))
		return 0;
	memcpy(body, buf + r, size - (size_t)r);
	fuzz_chunked(body, size - (size_t)r, 1 + (unsigned)(size % FUZZ_MAX_PIECES));
	free(body);
	return 0;
}

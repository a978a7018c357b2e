/* fuzz_sigv4.c — libFuzzer target for SigV4: the input is a request head written as
 * "METHOD target\nName: value\n...", then a blank line and an aws-chunked body. The head is
 * verified (at the time of AWS's examples, so the seed corpus reaches the signature code),
 * the body is fed to the chunk decoder in input-chosen fragments, and the target is signed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../storagefs/auth/sigv4.h"

#define FUZZ_NOW	((time_t)1369353600)	/* 20130524T000000Z */
#define FUZZ_TARGET_MAX	512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct sigv4_cred creds[] = {
	{ "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" },
	{ "K2", "s2" },
};

/* Splits the head into the request line and headers; pointers into buf. */
static void build_req(char *buf, size_t len, struct http_req *req)
{
	char *end = buf + len, *line = buf, *nl, *sp, *q;

	memset(req, 0, sizeof(*req));
	req->content_length = -1;
	nl = memchr(line, '\n', len);
	if (!nl)
		nl = end;
	sp = memchr(line, ' ', (size_t)(nl - line));
	req->method_str = line;
	req->method_len = sp ? (size_t)(sp - line) : (size_t)(nl - line);
	req->target = req->path = sp ? sp + 1 : nl;
	req->target_len = (size_t)(nl - req->target);
	q = memchr(req->target, '?', req->target_len);
	req->path_len = q ? (size_t)(q - req->path) : req->target_len;
	if (q) {
		req->query = q + 1;
		req->query_len = (size_t)(nl - req->query);
	}
	while (nl < end && req->nhdr < HTTP_MAX_HEADERS) {
		struct http_header *h = &req->hdr[req->nhdr];
		char *colon;

		line = nl + 1;
		nl = memchr(line, '\n', (size_t)(end - line));
		if (!nl)
			nl = end;
		colon = memchr(line, ':', (size_t)(nl - line));
		if (!colon)
			continue;
		h->name = line;
		h->name_len = (size_t)(colon - line);
		h->value = colon + 1;
		h->value_len = (size_t)(nl - h->value);
		while (h->value_len && *h->value == ' ')
			h->value++, h->value_len--;
		req->nhdr++;
	}
}

static int sink(void *ctx, const char *buf, size_t len)
{
	size_t *sum = ctx;

	for (size_t i = 0; i < len; i++)	/* touch every byte for ASan */
		*sum += (unsigned char)buf[i];
	return 0;
}

/* Feeds body in fragments whose sizes come from the body's own bytes. */
static void feed_chunked(const struct sigv4_auth *auth, const char *body, size_t len)
{
	struct sigv4_chunked d;
	size_t sum = 0, off = 0;
	unsigned step = len ? (unsigned char)body[0] % 17 + 1 : 1;

	sigv4_chunked_init(&d, auth);
	while (off < len) {
		size_t n = step < len - off ? step : len - off;

		if (sigv4_chunked_feed(&d, body + off, n, sink, &sum) < 0)
			break;
		off += n;
		step = step * 7 % 97 + 1;
	}
}

static void sign_target(const struct http_req *req)
{
	char path[FUZZ_TARGET_MAX], query[FUZZ_TARGET_MAX], authz[1024], date[17];
	struct sigv4_sign_req r = { .method = "GET", .host = "h", .path = path,
				    .payload_sha256_hex = "UNSIGNED-PAYLOAD",
				    .region = "us-east-1", .now = FUZZ_NOW, .cred = &creds[0] };

	if (req->path_len >= sizeof(path) || req->query_len >= sizeof(query) ||
	    memchr(req->path, 0, req->path_len) || (req->query &&
						    memchr(req->query, 0, req->query_len)))
		return;
	memcpy(path, req->path, req->path_len);
	path[req->path_len] = '\0';
	if (req->query) {
		memcpy(query, req->query, req->query_len);
		query[req->query_len] = '\0';
		r.query = query;
	}
	sigv4_sign(&r, authz, sizeof(authz), date);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1), *sep;
	struct http_req *req = malloc(sizeof(*req));
	struct sigv4_auth auth, fake = { .payload = SIGV4_PAYLOAD_STREAMING, .decoded_length = -1,
					 .seed_signature = "4f232c4386841ef735655705268965c4"
							   "4a0e4690baa4adea153f7db9fa80a0a9",
					 .amz_date = "20130524T000000Z",
					 .scope = "20130524/us-east-1/s3/aws4_request" };
	size_t head_len = size;

	if (!buf || !req)
		goto out;
	memcpy(buf, data, size);
	sep = size >= 2 ? memmem(buf, size, "\n\n", 2) : NULL;
	if (sep)
		head_len = (size_t)(sep - buf);
	build_req(buf, head_len, req);
	if (sigv4_verify(req, creds, 2, "us-east-1", FUZZ_NOW, &auth) == SIGV4_OK &&
	    (auth.payload == SIGV4_PAYLOAD_STREAMING ||
	     auth.payload == SIGV4_PAYLOAD_STREAMING_UNSIGNED_TRAILER) && sep)
		feed_chunked(&auth, sep + 2, size - head_len - 2);
	sign_target(req);
	if (sep) {
		/* The decoder on its own, in both framings, whatever the head said. */
		feed_chunked(&fake, sep + 2, size - head_len - 2);
		fake.payload = SIGV4_PAYLOAD_STREAMING_UNSIGNED_TRAILER;
		feed_chunked(&fake, sep + 2, size - head_len - 2);
	}
out:
	free(req);
	free(buf);
	return 0;
}

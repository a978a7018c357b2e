/* s3_body.c — request bodies for S3 operations: decoding aws-chunked payloads, checking
 * SigV4 payload hashes and Content-MD5, streaming into the store or buffering small XML,
 * and handing blocking store calls to the worker pool and back to the loop. */
#include "s3_req.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/log.h"
#include "../../lib/workq.h"

/* Payload bytes, after any aws-chunked framing was removed. */
static int body_payload(void *ctx, const char *buf, size_t len)
{
	struct s3_req *r = ctx;
	int err;

	r->body_len += (int64_t)len;
	if (r->auth.payload == SIGV4_PAYLOAD_SIGNED)
		sha256_update(&r->sha, buf, len);
	if (r->body_kind == S3_BODY_STORE) {
		if (r->body_len > S3_PUT_MAX) {
			s3_error(r, S3E_ENTITY_TOO_LARGE);
			return -EFBIG;
		}
		md5_update(&r->md5, buf, len);
		err = cstore_put_write(r->put, buf, len);
		if (err < 0) {
			log_warnx("s3_put_write_failed bucket=%s err=%d request_id=%s", r->bucket,
				  err, r->request_id);
			s3_error(r, s3_err_from_errno(err));
			return err;
		}
		return 0;
	}
	if (r->buf_len + len > S3_XML_BODY_MAX) {
		s3_error(r, S3E_MALFORMED_XML);
		return -EFBIG;
	}
	if (r->buf_len + len + 1 > r->buf_cap) {
		size_t cap = r->buf_cap ? r->buf_cap : 4096;
		char *nb;

		while (cap < r->buf_len + len + 1)
			cap *= 2;
		nb = realloc(r->buf, cap);
		if (!nb) {
			s3_error(r, S3E_INTERNAL);
			return -ENOMEM;
		}
		r->buf = nb;
		r->buf_cap = cap;
	}
	memcpy(r->buf + r->buf_len, buf, len);
	r->buf_len += len;
	return 0;
}

static int body_data(void *ctx, const char *buf, size_t len)
{
	struct s3_req *r = ctx;
	int rc;

	if (r->done)
		return -ECANCELED;
	if (r->auth.payload != SIGV4_PAYLOAD_STREAMING &&
	    r->auth.payload != SIGV4_PAYLOAD_STREAMING_UNSIGNED_TRAILER)
		return body_payload(r, buf, len);
	if (r->chunked_done)
		return 0;	/* bytes after the final chunk are ignored, as S3 does */
	rc = sigv4_chunked_feed(&r->chunked, buf, len, body_payload, r);
	if (rc == 1) {
		r->chunked_done = true;
		return 0;
	}
	if (rc < 0 && !r->done)
		s3_error(r, rc == -EACCES ? S3E_SIGNATURE_MISMATCH : S3E_INCOMPLETE_BODY);
	return rc < 0 ? rc : 0;
}

static void body_end(void *ctx, int err)
{
	struct s3_req *r = ctx;
	bool streaming = r->auth.payload == SIGV4_PAYLOAD_STREAMING ||
			 r->auth.payload == SIGV4_PAYLOAD_STREAMING_UNSIGNED_TRAILER;

	if (r->done)
		return;
	if (err < 0) {
		log_info("s3_body_incomplete request_id=%s err=%d received=%lld", r->request_id,
			 err, (long long)r->body_len);
		s3_error(r, err == -ETIMEDOUT ? S3E_INCOMPLETE_BODY : S3E_BAD_REQUEST);
		return;
	}
	if (streaming && (!r->chunked_done ||
			  (r->body_expect >= 0 && r->body_len != r->body_expect))) {
		s3_error(r, S3E_INCOMPLETE_BODY);
		return;
	}
	if (r->body_kind == S3_BODY_BUFFER && r->buf)
		r->buf[r->buf_len] = 0;
	r->body_done(r);
}

static void body_start(struct s3_req *r, enum s3_body_kind kind, void (*done)(struct s3_req *r))
{
	struct http_body_sink sink = { body_data, body_end, r };
	bool streaming = r->auth.payload == SIGV4_PAYLOAD_STREAMING ||
			 r->auth.payload == SIGV4_PAYLOAD_STREAMING_UNSIGNED_TRAILER;

	r->body_kind = kind;
	r->body_done = done;
	r->body_len = 0;
	r->body_expect = streaming ? r->auth.decoded_length : r->h->content_length;
	if (r->auth.payload == SIGV4_PAYLOAD_SIGNED)
		sha256_init(&r->sha);
	if (kind == S3_BODY_STORE)
		md5_init(&r->md5);
	if (streaming)
		sigv4_chunked_init(&r->chunked, &r->auth);
	http_conn_read_body(r->c, &sink);
}

void s3_body_read_buffer(struct s3_req *r, void (*done)(struct s3_req *r))
{
	if (r->h->content_length > S3_XML_BODY_MAX) {
		s3_error(r, S3E_MALFORMED_XML);
		return;
	}
	body_start(r, S3_BODY_BUFFER, done);
}

void s3_body_read_store(struct s3_req *r, void (*done)(struct s3_req *r))
{
	body_start(r, S3_BODY_STORE, done);
}

bool s3_body_check_sha(struct s3_req *r)
{
	unsigned char got[SHA256_LEN];

	if (r->auth.payload != SIGV4_PAYLOAD_SIGNED)
		return true;
	sha256_final(&r->sha, got);
	if (memcmp(got, r->auth.payload_sha256, SHA256_LEN) != 0) {
		s3_error(r, S3E_SHA256_MISMATCH);
		return false;
	}
	return true;
}

bool s3_body_etag(struct s3_req *r, char etag[STORE_ETAG_MAX + 1])
{
	unsigned char md5[MD5_LEN], want[MD5_LEN + 8];
	const struct http_header *h;

	md5_final(&r->md5, md5);
	hex_encode(md5, MD5_LEN, etag);
	h = http_req_header(r->h, "content-md5");
	if (!h)
		return true;
	if (base64_decode(h->value, h->value_len, want, sizeof(want)) != MD5_LEN) {
		s3_error(r, S3E_INVALID_DIGEST);
		return false;
	}
	if (memcmp(want, md5, MD5_LEN) != 0) {
		s3_error(r, S3E_BAD_DIGEST);
		return false;
	}
	return true;
}

/* --- offloading --- */

static void offload_back(struct http_conn *c, void *arg)
{
	struct s3_req *r = arg;

	r->job_done(r);
}

static void offload_run(void *arg)
{
	struct s3_req *r = arg;

	r->job_work(r);
	if (http_conn_post(r->c, offload_back, r) < 0)
		log_errorx("s3_offload_post_failed request_id=%s", r->request_id);
}

void s3_offload(struct s3_req *r, void (*work)(struct s3_req *r), void (*done)(struct s3_req *r))
{
	r->job_work = work;
	r->job_done = done;
	if (workq_submit(r->s3->cfg.wq, offload_run, r) < 0)
		s3_error(r, S3E_SLOW_DOWN);
}

/* s3_object.c — single-object operations: GetObject and HeadObject (ranges, conditions,
 * response-* overrides, checksum-verified streaming with sendfile, or through a buffer over
 * TLS), PutObject (streamed into the store, committed on a worker) and DeleteObject. */
#include "s3_req.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../../lib/log.h"

/* Answers a failed store_obj_open: NoSuchBucket or NoSuchKey as S3 distinguishes them. */
static void open_error(struct s3_req *r, int err)
{
	struct store_bucket b;

	if (err == -ENOENT)
		s3_error(r, cstore_bucket_get(r->s3->cfg.store, r->bucket, &b) == -ENOENT
			    ? S3E_NO_SUCH_BUCKET : S3E_NO_SUCH_KEY);
	else
		s3_error(r, S3E_INTERNAL);
}

static void object_headers(struct s3_req *r, const struct store_objinfo *info)
{
	char date[32];

	s3_http_date(info->mtime_ms, date);
	http_resp_headerf(r->c, "ETag", "\"%s\"", info->etag);
	http_resp_header(r->c, "Last-Modified", date);
}

_Static_assert(HTTP_SCRATCH >= STORE_SEND_SPAN, "store_obj_send needs a larger scratch buffer");

static ssize_t get_send(void *ctx, int sock, size_t max)
{
	struct s3_req *r = ctx;
	int64_t left = r->send_end - r->send_pos;

	if ((int64_t)max > left)
		max = (size_t)left;
	return cstore_obj_send(r->obj, sock, &r->send_pos, max, http_conn_scratch(r->c));
}

/* TLS connections: the same bytes through a buffer. Reads end on checksum-block bounds,
 * since a read that covers part of a block verifies all of it. */
static ssize_t get_read(void *ctx, void *buf, size_t max)
{
	struct s3_req *r = ctx;
	int64_t left = r->send_end - r->send_pos;
	int64_t to_bound = STORE_BLOCK - r->send_pos % STORE_BLOCK;
	size_t n = (int64_t)max < left ? max : (size_t)left;
	int err;

	if ((int64_t)n > to_bound && to_bound < STORE_BLOCK)
		n = (size_t)to_bound;
	if ((err = cstore_obj_read(r->obj, r->send_pos, buf, n)) < 0)
		return err;
	r->send_pos += (int64_t)n;
	return (ssize_t)n;
}

static void get_done(void *ctx, int err)
{
	struct s3_req *r = ctx;

	if (err < 0 && err != -EPIPE && err != -ECONNRESET)
		log_warnx("s3_get_aborted bucket=%s err=%d sent=%lld request_id=%s", r->bucket,
			  err, (long long)r->send_pos, r->request_id);
	s3_req_release(r);
}

/* Evaluates Range; false when it answered 416. */
static bool get_range(struct s3_req *r, const struct store_objinfo *info, int *status)
{
	const struct http_header *h = http_req_header(r->h, "range");
	int rc;

	r->send_pos = 0;
	r->send_end = info->size;
	*status = 200;
	if (!h)
		return true;
	rc = s3_parse_range(h->value, h->value_len, info->size, &r->send_pos, &r->send_end);
	if (rc < 0) {
		r->err_hdr = "Content-Range";
		snprintf(r->err_val, sizeof(r->err_val), "bytes */%lld", (long long)info->size);
		s3_error(r, S3E_INVALID_RANGE);
		return false;
	}
	if (rc == 1)
		*status = 206;
	return true;
}

/* The object is open in r->obj: conditions, range, headers, body. */
static void get_serve(struct s3_req *r)
{
	const struct store_objinfo *info;
	int64_t len;
	int err, status;
	enum s3_err e;
	void *small = NULL;

	info = cstore_obj_info(r->obj);
	e = s3_check_conditions(r, "", info);
	if (e != S3E_COUNT) {
		if (e == S3E_NOT_MODIFIED) {
			s3_resp_begin(r, 304);
			object_headers(r, info);
			s3_send(r);
		} else {
			s3_error(r, e);
		}
		return;
	}
	if (!get_range(r, info, &status))
		return;
	len = r->send_end - r->send_pos;
	if (!r->head && len <= S3_SMALL_GET) {
		/* Small bodies are verified completely before the status line goes out, so a
		 * corrupt object gets a clean 500 instead of a truncated 200. */
		small = http_conn_scratch(r->c);
		err = cstore_obj_read(r->obj, r->send_pos, small, (size_t)len);
		if (err < 0) {
			log_warnx("s3_get_failed bucket=%s err=%d request_id=%s", r->bucket, err,
				  r->request_id);
			s3_error(r, S3E_INTERNAL);
			return;
		}
	}
	s3_resp_begin(r, status);
	object_headers(r, info);
	http_resp_header(r->c, "Accept-Ranges", "bytes");
	if (status == 206)
		http_resp_headerf(r->c, "Content-Range", "bytes %lld-%lld/%lld",
				  (long long)r->send_pos, (long long)r->send_end - 1,
				  (long long)info->size);
	s3_meta_to_response(r, info);
	if (r->head) {
		http_resp_content_length(r->c, len);
		s3_send(r);
	} else if (small) {
		http_resp_body(r->c, small, (size_t)len);
		s3_send(r);
	} else {
		struct http_body_source src = { get_send, get_done, r };

		r->done = true;
		http_resp_stream_rd(r->c, len, &src, get_read);
	}
}

/* In a cluster the copy may be a peer's: opened (and fetched) on a worker. */
static void get_open_work(struct s3_req *r)
{
	struct cstore *cs = r->s3->cfg.store;

	r->job_err = r->head ? cstore_obj_stat(cs, r->bucket, r->key, r->key_len, &r->obj)
			     : cstore_obj_open(cs, r->bucket, r->key, r->key_len, &r->obj);
}

static void get_open_done(struct s3_req *r)
{
	if (r->job_err < 0)
		open_error(r, r->job_err);
	else
		get_serve(r);
}

void s3_get_object(struct s3_req *r)
{
	int err;

	if (cstore_remote(r->s3->cfg.store)) {
		s3_offload(r, get_open_work, get_open_done);
		return;
	}
	err = cstore_obj_open(r->s3->cfg.store, r->bucket, r->key, r->key_len, &r->obj);
	if (err < 0) {
		open_error(r, err);
		return;
	}
	get_serve(r);
}

/* --- PutObject (and the body half of UploadPart) --- */

static void put_work(struct s3_req *r)
{
	struct cstore_put *p = r->put;

	r->put = NULL;	/* store_put_commit frees it whatever happens */
	r->job_err = cstore_put_commit(p, &r->info);
}

static void put_done(struct s3_req *r)
{
	if (r->job_err < 0) {
		log_warnx("s3_put_commit_failed bucket=%s err=%d request_id=%s", r->bucket,
			  r->job_err, r->request_id);
		s3_error(r, s3_err_from_errno(r->job_err));
		return;
	}
	s3_resp_begin(r, 200);
	http_resp_headerf(r->c, "ETag", "\"%s\"", r->info.etag);
	s3_send(r);
}

static void put_body_done(struct s3_req *r)
{
	if (!s3_body_check_sha(r) || !s3_body_etag(r, r->info.etag))
		return;
	if (r->body_expect >= 0 && r->body_len != r->body_expect) {
		s3_error(r, S3E_INCOMPLETE_BODY);
		return;
	}
	s3_offload(r, put_work, put_done);
}

/* Checks the announced size; false when it answered. */
static bool put_size_ok(struct s3_req *r)
{
	bool streaming = r->auth.payload == SIGV4_PAYLOAD_STREAMING ||
			 r->auth.payload == SIGV4_PAYLOAD_STREAMING_UNSIGNED_TRAILER;
	int64_t size = streaming ? r->auth.decoded_length : r->h->content_length;

	if (size < 0 && (streaming || !r->h->chunked)) {
		s3_error(r, S3E_MISSING_CONTENT_LENGTH);
		return false;
	}
	if (size > S3_PUT_MAX) {
		s3_error(r, S3E_ENTITY_TOO_LARGE);
		return false;
	}
	return true;
}

void s3_put_stream(struct s3_req *r)
{
	if (!put_size_ok(r)) {
		s3_req_release(r);
		return;
	}
	s3_body_read_store(r, put_body_done);
}

void s3_put_object(struct s3_req *r)
{
	enum s3_err e;
	int err;

	if (!put_size_ok(r))
		return;
	e = s3_meta_from_request(r, &r->info);
	if (e != S3E_COUNT) {
		s3_error(r, e);
		return;
	}
	err = cstore_put_begin(r->s3->cfg.store, r->bucket, r->key, r->key_len, &r->put);
	if (err < 0) {
		s3_error(r, err == -ENOENT ? S3E_NO_SUCH_BUCKET : s3_err_from_errno(err));
		return;
	}
	s3_body_read_store(r, put_body_done);
}

/* --- DeleteObject --- */

static void delete_work(struct s3_req *r)
{
	r->job_err = cstore_obj_delete(r->s3->cfg.store, r->bucket, r->key, r->key_len);
}

static void delete_done(struct s3_req *r)
{
	if (r->job_err == -ENOENT) {
		s3_error(r, S3E_NO_SUCH_BUCKET);
	} else if (r->job_err < 0) {
		s3_error(r, s3_err_from_errno(r->job_err));
	} else {
		s3_resp_begin(r, 204);
		s3_send(r);
	}
}

void s3_delete_object(struct s3_req *r)
{
	s3_offload(r, delete_work, delete_done);
}

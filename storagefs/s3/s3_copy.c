/* s3_copy.c — server-side copies: CopyObject (metadata COPY or REPLACE,
 * x-amz-copy-source-if-* conditions) and UploadPartCopy (with a source byte range).
 * The source is read with checksums verified and written as a new upload on a worker; in
 * a cluster it is opened on a worker too (it may be a peer's copy). */
#include "s3_req.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../lib/log.h"

struct copy_job {
	char *buf;
	int64_t start, end;	/* source byte range */
	bool part;
	bool self;		/* the source is the destination */
	size_t skey_len;
	char sbucket[STORE_BUCKET_MAX + 1];
	char skey[STORE_KEY_MAX];
};

static void copy_job_free(void *p)
{
	struct copy_job *j = p;

	free(j->buf);
	free(j);
}

/* Reads x-amz-copy-source into a new job (r->job); false when it answered. */
static bool parse_source(struct s3_req *r)
{
	const struct http_header *h = http_req_header(r->h, "x-amz-copy-source");
	char *src = http_conn_scratch(r->c), *slash, *q;
	struct copy_job *j;
	int n;

	n = uri_decode(h->value, h->value_len, src, STORE_KEY_MAX + STORE_BUCKET_MAX + 64, false);
	if (n < 0) {
		s3_error_msg(r, S3E_INVALID_ARGUMENT, "Copy Source must mention the source bucket and key: sourcebucket/sourcekey");
		return false;
	}
	src[n] = 0;
	q = strstr(src, "?versionId=");
	if (q) {
		if (strcmp(q + 11, "null") != 0) {
			s3_error_msg(r, S3E_INVALID_ARGUMENT, "Invalid version id specified");
			return false;
		}
		*q = 0;
		n = (int)(q - src);
	}
	if (src[0] == '/')
		memmove(src, src + 1, (size_t)n--);
	slash = memchr(src, '/', (size_t)n);
	if (!slash || slash == src || (size_t)(slash - src) > STORE_BUCKET_MAX || slash + 1 == src + n ||
	    (size_t)(src + n - slash - 1) > STORE_KEY_MAX) {
		s3_error_msg(r, S3E_INVALID_ARGUMENT, "Copy Source must mention the source bucket and key: sourcebucket/sourcekey");
		return false;
	}
	if (!(j = calloc(1, sizeof(*j)))) {
		s3_error(r, S3E_INTERNAL);
		return false;
	}
	memcpy(j->sbucket, src, (size_t)(slash - src));
	j->skey_len = (size_t)(src + n - slash - 1);
	memcpy(j->skey, slash + 1, j->skey_len);
	/* The same object copied onto itself must change something (S3's rule). */
	j->self = strcmp(j->sbucket, r->bucket) == 0 && j->skey_len == r->key_len &&
		  memcmp(j->skey, r->key, r->key_len) == 0;
	r->job = j;
	r->job_free = copy_job_free;
	return true;
}

static void source_open_work(struct s3_req *r)
{
	struct copy_job *j = r->job;

	r->job_err = cstore_obj_open(r->s3->cfg.store, j->sbucket, j->skey, j->skey_len, &r->obj);
}

/* Opens the parsed source into r->obj, then calls opened (on the loop either way). */
static void open_source(struct s3_req *r, void (*opened)(struct s3_req *r))
{
	if (cstore_remote(r->s3->cfg.store)) {
		s3_offload(r, source_open_work, opened);
		return;
	}
	source_open_work(r);
	opened(r);
}

/* After open_source: false when the source could not be opened (answered). */
static bool source_opened(struct s3_req *r)
{
	struct copy_job *j = r->job;
	struct store_bucket b;

	if (r->job_err >= 0)
		return true;
	s3_error(r, r->job_err != -ENOENT ? S3E_INTERNAL
		    : cstore_bucket_get(r->s3->cfg.store, j->sbucket, &b) == -ENOENT
		    ? S3E_NO_SUCH_BUCKET : S3E_NO_SUCH_KEY);
	return false;
}

static void copy_work(struct s3_req *r)
{
	struct copy_job *j = r->job;
	struct md5_ctx md5;
	unsigned char sum[MD5_LEN];
	struct cstore_put *p = r->put;
	int err = 0;

	md5_init(&md5);
	for (int64_t pos = j->start; pos < j->end && err == 0;) {
		size_t n = (size_t)(j->end - pos < S3_COPY_BUF ? j->end - pos : S3_COPY_BUF);

		err = cstore_obj_read(r->obj, pos, j->buf, n);
		if (err == 0)
			err = cstore_put_write(p, j->buf, n);
		md5_update(&md5, j->buf, n);
		pos += (int64_t)n;
	}
	md5_final(&md5, sum);
	hex_encode(sum, MD5_LEN, r->info.etag);
	r->put = NULL;
	if (err < 0) {
		cstore_put_abort(p);
		r->job_err = err;
		return;
	}
	r->job_err = cstore_put_commit(p, &r->info);
}

static void copy_done(struct s3_req *r)
{
	struct copy_job *j = r->job;
	char date[32];

	if (r->job_err < 0) {
		log_warnx("s3_copy_failed bucket=%s err=%d request_id=%s", r->bucket, r->job_err,
			  r->request_id);
		s3_error(r, s3_err_from_errno(r->job_err));
		return;
	}
	s3_iso_date(r->info.mtime_ms, date);
	s3_xml_begin(r, 200);
	http_resp_bodyf(r->c, "<%s xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LastModified>%s</LastModified><ETag>&quot;%s&quot;</ETag></%s>",
			j->part ? "CopyPartResult" : "CopyObjectResult", date, r->info.etag,
			j->part ? "CopyPartResult" : "CopyObjectResult");
	s3_send(r);
}

/* Common tail: conditions, the job, the offload. The destination put is open. */
static void copy_start(struct s3_req *r, int64_t start, int64_t end, bool part)
{
	struct copy_job *j = r->job;

	if (!(j->buf = malloc(S3_COPY_BUF))) {
		s3_error(r, S3E_INTERNAL);
		return;
	}
	j->start = start;
	j->end = end;
	j->part = part;
	r->job_err = 0;
	s3_offload(r, copy_work, copy_done);
}

static bool copy_conditions(struct s3_req *r)
{
	enum s3_err e = s3_check_conditions(r, "x-amz-copy-source-", cstore_obj_info(r->obj));

	if (e != S3E_COUNT) {
		s3_error(r, S3E_PRECONDITION_FAILED);
		return false;
	}
	return true;
}

static void copy_object_opened(struct s3_req *r)
{
	struct copy_job *j = r->job;
	const struct store_objinfo *src;
	char dir[16];
	bool replace;
	int err;

	if (!source_opened(r) || !copy_conditions(r))
		return;
	src = cstore_obj_info(r->obj);
	replace = s3_header_str(r, "x-amz-metadata-directive", dir, sizeof(dir)) >= 0 &&
		  strcasecmp(dir, "REPLACE") == 0;
	if (j->self && !replace) {
		s3_error_msg(r, S3E_INVALID_REQUEST, "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.");
		return;
	}
	if (replace) {
		enum s3_err e = s3_meta_from_request(r, &r->info);
		if (e != S3E_COUNT) {
			s3_error(r, e);
			return;
		}
	} else {
		memcpy(r->info.meta, src->meta, src->meta_len);
		r->info.meta_len = src->meta_len;
	}
	err = cstore_put_begin(r->s3->cfg.store, r->bucket, r->key, r->key_len, &r->put);
	if (err < 0) {
		s3_error(r, err == -ENOENT ? S3E_NO_SUCH_BUCKET : s3_err_from_errno(err));
		return;
	}
	copy_start(r, 0, src->size, false);
}

void s3_copy_object(struct s3_req *r)
{
	if (parse_source(r))
		open_source(r, copy_object_opened);
}

static void part_copy_opened(struct s3_req *r)
{
	const struct http_header *h;
	int64_t start, end, size;
	int err;

	if (!source_opened(r) || !copy_conditions(r))
		return;
	size = cstore_obj_info(r->obj)->size;
	start = 0;
	end = size;
	h = http_req_header(r->h, "x-amz-copy-source-range");
	if (h && s3_parse_range(h->value, h->value_len, size, &start, &end) != 1) {
		s3_error_msg(r, S3E_INVALID_ARGUMENT, "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy");
		return;
	}
	err = cstore_part_begin(r->s3->cfg.store, r->bucket, r->upload_id, r->part_no, &r->put);
	if (err < 0) {
		s3_error(r, err == -ENOENT ? S3E_NO_SUCH_UPLOAD : s3_err_from_errno(err));
		return;
	}
	r->info.meta_len = 0;
	copy_start(r, start, end, true);
}

void s3_upload_part_copy(struct s3_req *r)
{
	char v[16];

	if (s3_param_str(r, "partNumber", v, sizeof(v)) < 0 || (r->part_no = atoi(v)) < 1 ||
	    r->part_no > STORE_PARTS_MAX) {
		s3_error(r, S3E_INVALID_PART_NUMBER);
		return;
	}
	if (s3_param_str(r, "uploadId", r->upload_id, sizeof(r->upload_id)) <= 0) {
		s3_error(r, S3E_NO_SUCH_UPLOAD);
		return;
	}
	if (parse_source(r))
		open_source(r, part_copy_opened);
}

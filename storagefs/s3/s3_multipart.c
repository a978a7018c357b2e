/* s3_multipart.c — multipart uploads: Create, UploadPart, Complete (part validation and
 * the "-N" ETag), Abort, ListParts and ListMultipartUploads. Parts are stored by the
 * engine as they arrive; Complete stitches them without copying data. */
#include "s3_req.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/log.h"
#include "../../lib/xml.h"

static const char xmlns[] = "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"";

/* Reads ?uploadId; false when it answered. */
static bool upload_id(struct s3_req *r)
{
	if (s3_param_str(r, "uploadId", r->upload_id, sizeof(r->upload_id)) <= 0) {
		s3_error(r, S3E_NO_SUCH_UPLOAD);
		return false;
	}
	return true;
}

static void answer_errno(struct s3_req *r, int err)
{
	struct store_bucket b;

	if (err == -ENOENT)
		s3_error(r, cstore_bucket_get(r->s3->cfg.store, r->bucket, &b) == -ENOENT
			    ? S3E_NO_SUCH_BUCKET : S3E_NO_SUCH_UPLOAD);
	else
		s3_error(r, s3_err_from_errno(err));
}

/* --- CreateMultipartUpload --- */

static void create_work(struct s3_req *r)
{
	r->job_err = cstore_mpu_create(r->s3->cfg.store, r->bucket, r->key, r->key_len,
				      r->info.meta, r->info.meta_len, r->upload_id);
}

static void create_done(struct s3_req *r)
{
	if (r->job_err < 0) {
		s3_error(r, r->job_err == -ENOENT ? S3E_NO_SUCH_BUCKET : s3_err_from_errno(r->job_err));
		return;
	}
	s3_xml_begin(r, 200);
	http_resp_bodyf(r->c, "<InitiateMultipartUploadResult %s><Bucket>%s</Bucket>", xmlns,
			r->bucket);
	s3_xml_text(r, "Key", r->key, r->key_len);
	http_resp_bodyf(r->c, "<UploadId>%s</UploadId></InitiateMultipartUploadResult>",
			r->upload_id);
	s3_send(r);
}

void s3_create_multipart(struct s3_req *r)
{
	enum s3_err e = s3_meta_from_request(r, &r->info);

	if (e != S3E_COUNT) {
		s3_error(r, e);
		return;
	}
	s3_offload(r, create_work, create_done);
}

/* --- UploadPart --- */

void s3_upload_part(struct s3_req *r)
{
	char v[16];
	int err;

	if (s3_param_str(r, "partNumber", v, sizeof(v)) < 0 || (r->part_no = atoi(v)) < 1 ||
	    r->part_no > STORE_PARTS_MAX) {
		s3_error(r, S3E_INVALID_PART_NUMBER);
		return;
	}
	if (!upload_id(r))
		return;
	err = cstore_part_begin(r->s3->cfg.store, r->bucket, r->upload_id, r->part_no, &r->put);
	if (err < 0) {
		answer_errno(r, err);
		return;
	}
	r->info.meta_len = 0;
	s3_put_stream(r);
}

/* --- CompleteMultipartUpload --- */

struct complete_job {
	bool bad;
	int n;
	int cur_no;		/* the <Part> being read */
	char cur_etag[STORE_ETAG_MAX + 1];
	bool has_no, has_etag;
	struct store_mpu_part parts[STORE_PARTS_MAX];
};

static int complete_elem(void *ctx, const char *name, const char *parent, int depth,
			 char *text, size_t len)
{
	struct complete_job *j = ctx;

	if (depth == 1) {
		j->bad = j->bad || strcmp(name, "CompleteMultipartUpload") != 0;
	} else if (strcmp(parent, "Part") == 0 && strcmp(name, "PartNumber") == 0) {
		char *end;
		long no = strtol(text, &end, 10);

		j->cur_no = (*text && !*end && no > 0 && no <= STORE_PARTS_MAX) ? (int)no : -1;
		j->has_no = true;
	} else if (strcmp(parent, "Part") == 0 && strcmp(name, "ETag") == 0) {
		/* ETags arrive quoted, sometimes as &quot; entities (already decoded here). */
		if (len >= 2 && text[0] == '"' && text[len - 1] == '"') {
			text++;
			len -= 2;
		}
		if (len > STORE_ETAG_MAX)
			len = STORE_ETAG_MAX;
		memcpy(j->cur_etag, text, len);
		j->cur_etag[len] = 0;
		j->has_etag = true;
	} else if (strcmp(name, "Part") == 0) {
		if (!j->has_no || !j->has_etag || j->cur_no < 0 || j->n == STORE_PARTS_MAX) {
			j->bad = true;
			return 1;
		}
		j->parts[j->n].part_no = j->cur_no;
		memcpy(j->parts[j->n].etag, j->cur_etag, sizeof(j->cur_etag));
		j->n++;
		j->has_no = j->has_etag = false;
	}
	return 0;
}

static void complete_work(struct s3_req *r)
{
	struct complete_job *j = r->job;

	r->job_err = cstore_mpu_complete(r->s3->cfg.store, r->bucket, r->upload_id, j->parts,
					j->n, &r->info);
}

static void complete_done(struct s3_req *r)
{
	switch (r->job_err) {
	case 0:
		break;
	case -EDOM: s3_error(r, S3E_INVALID_PART_ORDER); return;
	case -EINVAL: s3_error(r, S3E_INVALID_PART); return;
	case -ERANGE: s3_error(r, S3E_ENTITY_TOO_SMALL); return;
	default: answer_errno(r, r->job_err); return;
	}
	log_info("s3_multipart_completed bucket=%s parts=%d size=%lld request_id=%s", r->bucket,
		 r->info.nparts, (long long)r->info.size, r->request_id);
	s3_xml_begin(r, 200);
	http_resp_bodyf(r->c, "<CompleteMultipartUploadResult %s>", xmlns);
	s3_xml_key(r, "Location", r->h->path, r->h->path_len, false);
	http_resp_bodyf(r->c, "<Bucket>%s</Bucket>", r->bucket);
	s3_xml_text(r, "Key", r->key, r->key_len);
	http_resp_bodyf(r->c, "<ETag>&quot;%s&quot;</ETag></CompleteMultipartUploadResult>",
			r->info.etag);
	s3_send(r);
}

static void complete_body_done(struct s3_req *r)
{
	struct complete_job *j;

	if (!s3_body_check_sha(r))
		return;
	j = calloc(1, sizeof(*j));
	if (!j) {
		s3_error(r, S3E_INTERNAL);
		return;
	}
	r->job = j;
	r->job_free = free;
	if (!r->buf || xml_parse(r->buf, r->buf_len, complete_elem, j) != 0 || j->bad || !j->n) {
		s3_error(r, S3E_MALFORMED_XML);
		return;
	}
	s3_offload(r, complete_work, complete_done);
}

void s3_complete_multipart(struct s3_req *r)
{
	if (upload_id(r))
		s3_body_read_buffer(r, complete_body_done);
}

/* --- AbortMultipartUpload --- */

static void abort_work(struct s3_req *r)
{
	r->job_err = cstore_mpu_abort(r->s3->cfg.store, r->bucket, r->upload_id);
}

static void abort_done(struct s3_req *r)
{
	if (r->job_err < 0) {
		answer_errno(r, r->job_err);
		return;
	}
	s3_resp_begin(r, 204);
	s3_send(r);
}

void s3_abort_multipart(struct s3_req *r)
{
	if (upload_id(r))
		s3_offload(r, abort_work, abort_done);
}

/* --- ListParts --- */

/* The page of parts, gathered first (in a cluster, at the upload's home: on a worker). */
struct parts_job {
	int after, max, n;
	bool truncated;
	size_t key_len;
	char key[STORE_KEY_MAX];
	struct store_mpu_part parts[1000];
};

static int part_collect(void *ctx, const struct store_mpu_part *p)
{
	struct parts_job *j = ctx;

	if (j->n == (int)(sizeof(j->parts) / sizeof(j->parts[0])))
		return -EOVERFLOW;
	j->parts[j->n++] = *p;
	return 0;
}

static void parts_work(struct s3_req *r)
{
	struct parts_job *j = r->job;

	r->job_err = cstore_mpu_parts(r->s3->cfg.store, r->bucket, r->upload_id, j->key,
				     &j->key_len, j->after, j->max, part_collect, j, &j->truncated);
}

static void parts_done(struct s3_req *r)
{
	struct parts_job *j = r->job;
	char date[32];

	if (r->job_err < 0) {
		answer_errno(r, r->job_err);
		return;
	}
	s3_xml_begin(r, 200);
	http_resp_bodyf(r->c, "<ListPartsResult %s><Bucket>%s</Bucket>", xmlns, r->bucket);
	s3_xml_text(r, "Key", j->key, j->key_len);
	http_resp_bodyf(r->c, "<UploadId>%s</UploadId>", r->upload_id);
	s3_xml_owner(r);
	http_resp_bodyf(r->c, "<StorageClass>STANDARD</StorageClass><PartNumberMarker>%d</PartNumberMarker><MaxParts>%d</MaxParts>",
			j->after, j->max);
	for (int i = 0; i < j->n; i++) {
		const struct store_mpu_part *p = &j->parts[i];

		s3_iso_date(p->mtime_ms, date);
		http_resp_bodyf(r->c, "<Part><PartNumber>%d</PartNumber><LastModified>%s</LastModified><ETag>&quot;%s&quot;</ETag><Size>%lld</Size></Part>",
				p->part_no, date, p->etag, (long long)p->size);
	}
	http_resp_bodyf(r->c, "<IsTruncated>%s</IsTruncated>", j->truncated ? "true" : "false");
	if (j->truncated && j->n)
		http_resp_bodyf(r->c, "<NextPartNumberMarker>%d</NextPartNumberMarker>",
				j->parts[j->n - 1].part_no);
	http_resp_bodyf(r->c, "</ListPartsResult>");
	s3_send(r);
}

void s3_list_parts(struct s3_req *r)
{
	struct parts_job *j;
	int after, max;

	if (!upload_id(r) || !s3_param_int(r, "part-number-marker", 0, STORE_PARTS_MAX, &after) ||
	    !s3_param_int(r, "max-parts", 1000, 1000, &max))
		return;
	if (!(j = calloc(1, sizeof(*j)))) {
		s3_error(r, S3E_INTERNAL);
		return;
	}
	j->after = after;
	j->max = max;
	r->job = j;
	r->job_free = free;
	if (cstore_remote(r->s3->cfg.store)) {
		s3_offload(r, parts_work, parts_done);
		return;
	}
	parts_work(r);
	parts_done(r);
}

/* --- ListMultipartUploads --- */

struct uploads_list {
	struct s3_req *r;
	char last_key[STORE_KEY_MAX];
	size_t last_key_len;
	char last_id[STORE_UPLOAD_ID_MAX + 1];
};

static int upload_entry(void *ctx, const struct store_mpu_upload *u)
{
	struct uploads_list *l = ctx;
	char date[32];

	s3_iso_date(u->created_ms, date);
	http_resp_bodyf(l->r->c, "<Upload>");
	s3_xml_text(l->r, "Key", u->key, u->key_len);
	http_resp_bodyf(l->r->c, "<UploadId>%s</UploadId>", u->upload_id);
	s3_xml_owner(l->r);
	http_resp_bodyf(l->r->c, "<Initiator><ID>cairn</ID><DisplayName>cairn</DisplayName></Initiator><StorageClass>STANDARD</StorageClass><Initiated>%s</Initiated></Upload>",
			date);
	memcpy(l->last_key, u->key, u->key_len);
	l->last_key_len = u->key_len;
	snprintf(l->last_id, sizeof(l->last_id), "%s", u->upload_id);
	return 0;
}

void s3_list_multipart_uploads(struct s3_req *r)
{
	struct uploads_list *l = calloc(1, sizeof(*l));
	char prefix[STORE_KEY_MAX + 1], marker[STORE_KEY_MAX + 1], idm[STORE_UPLOAD_ID_MAX + 1];
	int plen, mlen, max, err;
	bool truncated = false;
	struct store_bucket b;

	if (!l) {
		s3_error(r, S3E_INTERNAL);
		return;
	}
	r->job = l;
	r->job_free = free;
	l->r = r;
	plen = s3_param_str(r, "prefix", prefix, sizeof(prefix));
	mlen = s3_param_str(r, "key-marker", marker, sizeof(marker));
	if (s3_param_str(r, "upload-id-marker", idm, sizeof(idm)) < 0)
		idm[0] = 0;
	if (plen < -1 || mlen < -1) {
		s3_error(r, S3E_INVALID_ARGUMENT);
		return;
	}
	if (!s3_param_int(r, "max-uploads", 1000, 1000, &max))
		return;
	if (cstore_bucket_get(r->s3->cfg.store, r->bucket, &b) < 0) {
		s3_error(r, S3E_NO_SUCH_BUCKET);
		return;
	}
	s3_xml_begin(r, 200);
	http_resp_bodyf(r->c, "<ListMultipartUploadsResult %s><Bucket>%s</Bucket>", xmlns, r->bucket);
	s3_xml_text(r, "KeyMarker", marker, mlen > 0 ? (size_t)mlen : 0);
	http_resp_bodyf(r->c, "<UploadIdMarker>%s</UploadIdMarker><MaxUploads>%d</MaxUploads>",
			idm, max);
	s3_xml_text(r, "Prefix", prefix, plen > 0 ? (size_t)plen : 0);
	err = cstore_mpu_list_uploads(r->s3->cfg.store, r->bucket, prefix, plen > 0 ? (size_t)plen : 0,
				     marker, mlen > 0 ? (size_t)mlen : 0, idm, max, upload_entry, l,
				     &truncated);
	if (err < 0)
		log_warnx("s3_list_uploads_failed err=%d request_id=%s", err, r->request_id);
	http_resp_bodyf(r->c, "<IsTruncated>%s</IsTruncated>", truncated ? "true" : "false");
	if (truncated) {
		s3_xml_text(r, "NextKeyMarker", l->last_key, l->last_key_len);
		http_resp_bodyf(r->c, "<NextUploadIdMarker>%s</NextUploadIdMarker>", l->last_id);
	}
	http_resp_bodyf(r->c, "</ListMultipartUploadsResult>");
	s3_send(r);
}

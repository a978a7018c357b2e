/* s3_delete.c — DeleteObjects (multi-delete): parses the <Delete> document, deletes up to
 * 1000 keys on a worker, and reports each key as deleted or failed (quiet mode reports
 * only failures). */
#include "s3_req.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/log.h"
#include "../../lib/xml.h"

struct del_key {
	const char *key;	/* points into r->buf (decoded in place) */
	size_t len;
	int err;
};

struct del_job {
	bool quiet;
	bool bad;		/* a document we do not accept */
	int n;
	struct del_key keys[S3_DELETE_MAX];
};

static int del_elem(void *ctx, const char *name, const char *parent, int depth, char *text,
		    size_t len)
{
	struct del_job *j = ctx;

	if (depth == 1) {
		j->bad = j->bad || strcmp(name, "Delete") != 0;
	} else if (strcmp(name, "Quiet") == 0 && strcmp(parent, "Delete") == 0) {
		j->quiet = strcmp(text, "true") == 0;
	} else if (strcmp(name, "Key") == 0 && strcmp(parent, "Object") == 0) {
		if (j->n == S3_DELETE_MAX || len == 0 || len > STORE_KEY_MAX) {
			j->bad = true;
			return 1;
		}
		j->keys[j->n].key = text;
		j->keys[j->n].len = len;
		j->keys[j->n].err = 0;
		j->n++;
	}
	return 0;
}

static void del_work(struct s3_req *r)
{
	struct del_job *j = r->job;

	for (int i = 0; i < j->n; i++)
		j->keys[i].err = cstore_obj_delete(r->s3->cfg.store, r->bucket, j->keys[i].key,
						  j->keys[i].len);
}

static void del_done(struct s3_req *r)
{
	struct del_job *j = r->job;

	s3_xml_begin(r, 200);
	http_resp_bodyf(r->c, "<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
	for (int i = 0; i < j->n; i++) {
		struct del_key *k = &j->keys[i];

		if (k->err == 0 && j->quiet)
			continue;
		http_resp_bodyf(r->c, k->err ? "<Error>" : "<Deleted>");
		s3_xml_text(r, "Key", k->key, k->len);
		if (k->err) {
			log_warnx("s3_multi_delete_failed bucket=%s err=%d request_id=%s", r->bucket,
				  k->err, r->request_id);
			http_resp_bodyf(r->c, "<Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>");
		} else {
			http_resp_bodyf(r->c, "</Deleted>");
		}
	}
	http_resp_bodyf(r->c, "</DeleteResult>");
	s3_send(r);
}

static void del_body_done(struct s3_req *r)
{
	struct del_job *j;
	struct store_bucket b;
	const struct http_header *h = http_req_header(r->h, "content-md5");

	if (!s3_body_check_sha(r))
		return;
	if (h) {
		unsigned char want[MD5_LEN + 8], got[MD5_LEN];
		struct md5_ctx md5;

		md5_init(&md5);
		md5_update(&md5, r->buf ? r->buf : "", r->buf_len);
		md5_final(&md5, got);
		if (base64_decode(h->value, h->value_len, want, sizeof(want)) != MD5_LEN) {
			s3_error(r, S3E_INVALID_DIGEST);
			return;
		}
		if (memcmp(want, got, MD5_LEN) != 0) {
			s3_error(r, S3E_BAD_DIGEST);
			return;
		}
	}
	j = calloc(1, sizeof(*j));
	if (!j) {
		s3_error(r, S3E_INTERNAL);
		return;
	}
	r->job = j;
	r->job_free = free;
	if (!r->buf || xml_parse(r->buf, r->buf_len, del_elem, j) != 0 || j->bad || j->n == 0) {
		s3_error(r, S3E_MALFORMED_XML);
		return;
	}
	if (cstore_bucket_get(r->s3->cfg.store, r->bucket, &b) < 0) {
		s3_error(r, S3E_NO_SUCH_BUCKET);
		return;
	}
	s3_offload(r, del_work, del_done);
}

void s3_delete_objects(struct s3_req *r)
{
	s3_body_read_buffer(r, del_body_done);
}

/* s3_bucket.c — bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket,
 * GetBucketLocation, GetBucketVersioning (always unversioned), GetBucketAcl (owner full
 * control) and the "no such configuration" answers tools probe for. */
#include "s3_req.h"

#include <errno.h>
#include <string.h>

#include "../../lib/log.h"
#include "../../lib/xml.h"

static int list_one(void *ctx, const struct store_bucket *b)
{
	struct s3_req *r = ctx;
	char date[32];

	s3_iso_date(b->created_ms, date);
	http_resp_bodyf(r->c, "<Bucket><Name>%s</Name><CreationDate>%s</CreationDate></Bucket>",
			b->name, date);
	return 0;
}

void s3_list_buckets(struct s3_req *r)
{
	int err;

	s3_xml_begin(r, 200);
	http_resp_bodyf(r->c, "<ListAllMyBucketsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
	s3_xml_owner(r);
	http_resp_bodyf(r->c, "<Buckets>");
	err = cstore_bucket_list(r->s3->cfg.store, list_one, r);
	if (err < 0)
		log_warnx("s3_list_buckets_failed err=%d request_id=%s", err, r->request_id);
	http_resp_bodyf(r->c, "</Buckets></ListAllMyBucketsResult>");
	s3_send(r);
}

/* Bucket existence, answering NoSuchBucket itself; false when it answered. */
static bool bucket_exists(struct s3_req *r)
{
	struct store_bucket b;
	int err = cstore_bucket_get(r->s3->cfg.store, r->bucket, &b);

	if (err == -ENOENT) {
		s3_error(r, S3E_NO_SUCH_BUCKET);
		return false;
	}
	if (err < 0) {
		s3_error(r, S3E_INTERNAL);
		return false;
	}
	return true;
}

static void create_work(struct s3_req *r)
{
	r->job_err = cstore_bucket_create(r->s3->cfg.store, r->bucket);
}

static void create_done(struct s3_req *r)
{
	if (r->job_err == -EEXIST) {
		s3_error(r, S3E_BUCKET_EXISTS_OWNED);
		return;
	}
	if (r->job_err < 0) {
		s3_error(r, s3_err_from_errno(r->job_err));
		return;
	}
	log_info("s3_bucket_created bucket=%s request_id=%s", r->bucket, r->request_id);
	s3_resp_begin(r, 200);
	http_resp_headerf(r->c, "Location", "/%s", r->bucket);
	s3_send(r);
}

struct location_scan { bool ok; bool seen; char location[64]; };

static int location_elem(void *ctx, const char *name, const char *parent, int depth,
			 char *text, size_t len)
{
	struct location_scan *s = ctx;

	if (depth == 1 && strcmp(name, "CreateBucketConfiguration") != 0)
		s->ok = false;
	if (strcmp(name, "LocationConstraint") == 0 && len < sizeof(s->location)) {
		memcpy(s->location, text, len + 1);
		s->seen = true;
	}
	return 0;
}

static void create_body_done(struct s3_req *r)
{
	struct location_scan s = { .ok = true };

	if (!s3_body_check_sha(r))
		return;
	if (r->buf_len) {
		if (xml_parse(r->buf, r->buf_len, location_elem, &s) != 0 || !s.ok) {
			s3_error(r, S3E_MALFORMED_XML);
			return;
		}
		if (s.seen && s.location[0] && strcmp(s.location, r->s3->cfg.region) != 0) {
			s3_error_msg(r, S3E_INVALID_ARGUMENT /* InvalidLocationConstraint */,
				     "The specified location-constraint is not valid");
			return;
		}
	}
	s3_offload(r, create_work, create_done);
}

void s3_create_bucket(struct s3_req *r)
{
	if (!s3_bucket_name_valid(r->bucket)) {
		s3_error(r, S3E_INVALID_BUCKET_NAME);
		return;
	}
	s3_body_read_buffer(r, create_body_done);
}

void s3_head_bucket(struct s3_req *r)
{
	if (!bucket_exists(r))
		return;
	s3_resp_begin(r, 200);
	http_resp_header(r->c, "x-amz-bucket-region", r->s3->cfg.region);
	http_resp_content_length(r->c, 0);
	s3_send(r);
}

static void delete_work(struct s3_req *r)
{
	r->job_err = cstore_bucket_delete(r->s3->cfg.store, r->bucket);
}

static void delete_done(struct s3_req *r)
{
	if (r->job_err == -ENOENT) {
		s3_error(r, S3E_NO_SUCH_BUCKET);
	} else if (r->job_err == -ENOTEMPTY) {
		s3_error(r, S3E_BUCKET_NOT_EMPTY);
	} else if (r->job_err < 0) {
		s3_error(r, s3_err_from_errno(r->job_err));
	} else {
		log_info("s3_bucket_deleted bucket=%s request_id=%s", r->bucket, r->request_id);
		s3_resp_begin(r, 204);
		s3_send(r);
	}
}

void s3_delete_bucket(struct s3_req *r)
{
	s3_offload(r, delete_work, delete_done);
}

void s3_get_bucket_location(struct s3_req *r)
{
	if (!bucket_exists(r))
		return;
	s3_xml_begin(r, 200);
	/* us-east-1 is reported as an empty constraint, as S3 does. */
	http_resp_bodyf(r->c, "<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">%s</LocationConstraint>",
			strcmp(r->s3->cfg.region, "us-east-1") == 0 ? "" : r->s3->cfg.region);
	s3_send(r);
}

void s3_get_bucket_versioning(struct s3_req *r)
{
	if (!bucket_exists(r))
		return;
	s3_xml_begin(r, 200);
	http_resp_bodyf(r->c, "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>");
	s3_send(r);
}

static void acl_body(struct s3_req *r)
{
	const char *ak = r->s3->cfg.creds[r->auth.cred].access_key;

	s3_xml_begin(r, 200);
	http_resp_bodyf(r->c, "<AccessControlPolicy xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
	s3_xml_owner(r);
	http_resp_bodyf(r->c, "<AccessControlList><Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\"><ID>%s</ID><DisplayName>%s</DisplayName></Grantee><Permission>FULL_CONTROL</Permission></Grant></AccessControlList></AccessControlPolicy>",
			ak, ak);
	s3_send(r);
}

void s3_get_bucket_acl(struct s3_req *r)
{
	if (bucket_exists(r))
		acl_body(r);
}

static void object_stat_work(struct s3_req *r)
{
	struct cstore_obj *o;

	r->job_err = cstore_obj_stat(r->s3->cfg.store, r->bucket, r->key, r->key_len, &o);
	if (r->job_err >= 0)
		cstore_obj_close(o);
}

/* Object existence for the subresource probes, then `then` on the loop (in a cluster the
 * object may be a peer's: looked up on a worker). */
static void object_probe(struct s3_req *r, void (*then)(struct s3_req *r))
{
	if (cstore_remote(r->s3->cfg.store)) {
		s3_offload(r, object_stat_work, then);
		return;
	}
	object_stat_work(r);
	then(r);
}

/* After object_probe: false when the object is not there (answered). */
static bool object_found(struct s3_req *r)
{
	if (r->job_err >= 0)
		return true;
	s3_error(r, r->job_err == -ENOENT ? S3E_NO_SUCH_KEY : S3E_INTERNAL);
	return false;
}

static void object_acl_probed(struct s3_req *r)
{
	if (object_found(r))
		acl_body(r);
}

void s3_get_object_acl(struct s3_req *r)
{
	object_probe(r, object_acl_probed);
}

static void object_tagging_probed(struct s3_req *r)
{
	if (!object_found(r))
		return;
	s3_xml_begin(r, 200);
	http_resp_bodyf(r->c, "<Tagging xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><TagSet/></Tagging>");
	s3_send(r);
}

void s3_get_object_tagging(struct s3_req *r)
{
	object_probe(r, object_tagging_probed);
}

void s3_get_bucket_missing_config(struct s3_req *r)
{
	static const struct { const char *subres; enum s3_err err; } missing[] = {
		{ "policy", S3E_NO_SUCH_POLICY }, { "cors", S3E_NO_SUCH_CORS },
		{ "lifecycle", S3E_NO_SUCH_LIFECYCLE }, { "tagging", S3E_NO_SUCH_TAGSET },
		{ "encryption", S3E_NO_SUCH_ENCRYPTION },
	};

	if (!bucket_exists(r))
		return;
	for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
		if (s3_param(r, missing[i].subres)) {
			s3_error(r, missing[i].err);
			return;
		}
	}
	s3_error(r, S3E_NOT_IMPLEMENTED);
}

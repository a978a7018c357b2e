/* s3.c — request entry for the S3 API: finds the bucket and key (path- or
 * virtual-host-style), authenticates with SigV4, picks the operation from one table,
 * and owns the error table and the response helpers every operation uses. */
#include "s3_req.h"
#include "s3_metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "../../lib/log.h"
#include "../../lib/xml.h"

static const struct { const char *code; int status; const char *msg; } s3_errors[S3E_COUNT] = {
	[S3E_ACCESS_DENIED] = { "AccessDenied", 403, "Access Denied" },
	[S3E_AUTH_HEADER_MALFORMED] = { "AuthorizationHeaderMalformed", 400, "The authorization header is malformed." },
	[S3E_AUTH_QUERY_ERROR] = { "AuthorizationQueryParametersError", 400, "The authorization query parameters are malformed." },
	[S3E_BAD_DIGEST] = { "BadDigest", 400, "The Content-MD5 you specified did not match what we received." },
	[S3E_BUCKET_EXISTS_OWNED] = { "BucketAlreadyOwnedByYou", 409, "Your previous request to create the named bucket succeeded and you already own it." },
	[S3E_BUCKET_NOT_EMPTY] = { "BucketNotEmpty", 409, "The bucket you tried to delete is not empty." },
	[S3E_ENTITY_TOO_SMALL] = { "EntityTooSmall", 400, "Your proposed upload is smaller than the minimum allowed object size." },
	[S3E_ENTITY_TOO_LARGE] = { "EntityTooLarge", 400, "Your proposed upload exceeds the maximum allowed object size." },
	[S3E_INCOMPLETE_BODY] = { "IncompleteBody", 400, "You did not provide the number of bytes specified by the Content-Length HTTP header." },
	[S3E_INTERNAL] = { "InternalError", 500, "We encountered an internal error. Please try again." },
	[S3E_INVALID_ACCESS_KEY] = { "InvalidAccessKeyId", 403, "The AWS access key Id you provided does not exist in our records." },
	[S3E_INVALID_ARGUMENT] = { "InvalidArgument", 400, "Invalid Argument" },
	[S3E_INVALID_BUCKET_NAME] = { "InvalidBucketName", 400, "The specified bucket is not valid." },
	[S3E_INVALID_DIGEST] = { "InvalidDigest", 400, "The Content-MD5 you specified is not valid." },
	[S3E_INVALID_PART] = { "InvalidPart", 400, "One or more of the specified parts could not be found." },
	[S3E_INVALID_PART_ORDER] = { "InvalidPartOrder", 400, "The list of parts was not in ascending order." },
	[S3E_INVALID_RANGE] = { "InvalidRange", 416, "The requested range is not satisfiable" },
	[S3E_INVALID_REQUEST] = { "InvalidRequest", 400, "Invalid Request" },
	[S3E_KEY_TOO_LONG] = { "KeyTooLongError", 400, "Your key is too long" },
	[S3E_MALFORMED_XML] = { "MalformedXML", 400, "The XML you provided was not well-formed or did not validate against our published schema." },
	[S3E_METADATA_TOO_LARGE] = { "MetadataTooLarge", 400, "Your metadata headers exceed the maximum allowed metadata size." },
	[S3E_METHOD_NOT_ALLOWED] = { "MethodNotAllowed", 405, "The specified method is not allowed against this resource." },
	[S3E_MISSING_CONTENT_LENGTH] = { "MissingContentLength", 411, "You must provide the Content-Length HTTP header." },
	[S3E_NO_SUCH_BUCKET] = { "NoSuchBucket", 404, "The specified bucket does not exist" },
	[S3E_NO_SUCH_KEY] = { "NoSuchKey", 404, "The specified key does not exist." },
	[S3E_NO_SUCH_UPLOAD] = { "NoSuchUpload", 404, "The specified multipart upload does not exist." },
	[S3E_NOT_IMPLEMENTED] = { "NotImplemented", 501, "A header or query you provided implies functionality that is not implemented." },
	[S3E_NOT_MODIFIED] = { "NotModified", 304, "Not Modified" },
	[S3E_PRECONDITION_FAILED] = { "PreconditionFailed", 412, "At least one of the pre-conditions you specified did not hold" },
	[S3E_TIME_SKEWED] = { "RequestTimeTooSkewed", 403, "The difference between the request time and the current time is too large." },
	[S3E_SIGNATURE_MISMATCH] = { "SignatureDoesNotMatch", 403, "The request signature we calculated does not match the signature you provided. Check your key and signing method." },
	[S3E_SHA256_MISMATCH] = { "XAmzContentSHA256Mismatch", 400, "The provided 'x-amz-content-sha256' header does not match what was computed." },
	[S3E_SLOW_DOWN] = { "SlowDown", 503, "Please reduce your request rate." },
	[S3E_STORAGE_FULL] = { "InsufficientStorage", 507, "Not enough free space on the storage to complete the request." },
	[S3E_BAD_REQUEST] = { "BadRequest", 400, "The request could not be parsed." },
	[S3E_HEADERS_TOO_LARGE] = { "RequestHeaderSectionTooLarge", 431, "Your request header section exceeds the maximum allowed size." },
	[S3E_URI_TOO_LONG] = { "UriTooLong", 414, "The request URI is too long." },
	[S3E_HTTP_VERSION] = { "HttpVersionNotSupported", 505, "The HTTP version specified is not supported." },
	[S3E_NO_SUCH_POLICY] = { "NoSuchBucketPolicy", 404, "The bucket policy does not exist" },
	[S3E_NO_SUCH_CORS] = { "NoSuchCORSConfiguration", 404, "The CORS configuration does not exist" },
	[S3E_NO_SUCH_LIFECYCLE] = { "NoSuchLifecycleConfiguration", 404, "The lifecycle configuration does not exist" },
	[S3E_NO_SUCH_TAGSET] = { "NoSuchTagSet", 404, "The TagSet does not exist" },
	[S3E_NO_SUCH_ENCRYPTION] = { "ServerSideEncryptionConfigurationNotFoundError", 404, "The server side encryption configuration was not found" },
	[S3E_SERVICE_UNAVAILABLE] = { "ServiceUnavailable", 503, "Too few disks are available to store the object durably. Please retry." },
	[S3E_INVALID_PART_NUMBER] = { "InvalidArgument", 400, "Part number must be an integer between 1 and 10000, inclusive" },
};

/* The operation table: the first row whose method, target and selector match wins, so
 * rows with a subresource or header selector come before their plain form. */
static const struct s3_op s3_ops[] = {
	{ "CairnStatus", HTTP_GET, S3_SERVICE, "cairn-status", NULL, s3_cairn_status },
	{ "CairnMetrics", HTTP_GET, S3_SERVICE, "cairn-metrics", NULL, s3_cairn_metrics },
	{ "ListBuckets", HTTP_GET, S3_SERVICE, NULL, NULL, s3_list_buckets },
	{ "GetBucketLocation", HTTP_GET, S3_BUCKET, "location", NULL, s3_get_bucket_location },
	{ "GetBucketVersioning", HTTP_GET, S3_BUCKET, "versioning", NULL, s3_get_bucket_versioning },
	{ "ListObjectVersions", HTTP_GET, S3_BUCKET, "versions", NULL, s3_list_object_versions },
	{ "ListMultipartUploads", HTTP_GET, S3_BUCKET, "uploads", NULL, s3_list_multipart_uploads },
	{ "GetBucketAcl", HTTP_GET, S3_BUCKET, "acl", NULL, s3_get_bucket_acl },
	{ "GetBucketPolicy", HTTP_GET, S3_BUCKET, "policy", NULL, s3_get_bucket_missing_config },
	{ "GetBucketCors", HTTP_GET, S3_BUCKET, "cors", NULL, s3_get_bucket_missing_config },
	{ "GetBucketLifecycle", HTTP_GET, S3_BUCKET, "lifecycle", NULL, s3_get_bucket_missing_config },
	{ "GetBucketTagging", HTTP_GET, S3_BUCKET, "tagging", NULL, s3_get_bucket_missing_config },
	{ "GetBucketEncryption", HTTP_GET, S3_BUCKET, "encryption", NULL, s3_get_bucket_missing_config },
	{ "ListObjectsV2", HTTP_GET, S3_BUCKET, "list-type", NULL, s3_list_objects_v2 },
	{ "ListObjects", HTTP_GET, S3_BUCKET, NULL, NULL, s3_list_objects },
	{ "CreateBucket", HTTP_PUT, S3_BUCKET, NULL, NULL, s3_create_bucket },
	{ "HeadBucket", HTTP_HEAD, S3_BUCKET, NULL, NULL, s3_head_bucket },
	{ "DeleteBucket", HTTP_DELETE, S3_BUCKET, NULL, NULL, s3_delete_bucket },
	{ "DeleteObjects", HTTP_POST, S3_BUCKET, "delete", NULL, s3_delete_objects },
	{ "UploadPartCopy", HTTP_PUT, S3_OBJECT, "uploadId", "x-amz-copy-source", s3_upload_part_copy },
	{ "UploadPart", HTTP_PUT, S3_OBJECT, "uploadId", NULL, s3_upload_part },
	{ "CopyObject", HTTP_PUT, S3_OBJECT, NULL, "x-amz-copy-source", s3_copy_object },
	{ "PutObject", HTTP_PUT, S3_OBJECT, NULL, NULL, s3_put_object },
	{ "ListParts", HTTP_GET, S3_OBJECT, "uploadId", NULL, s3_list_parts },
	{ "GetObjectAcl", HTTP_GET, S3_OBJECT, "acl", NULL, s3_get_object_acl },
	{ "GetObjectTagging", HTTP_GET, S3_OBJECT, "tagging", NULL, s3_get_object_tagging },
	{ "GetObject", HTTP_GET, S3_OBJECT, NULL, NULL, s3_get_object },
	{ "HeadObject", HTTP_HEAD, S3_OBJECT, NULL, NULL, s3_get_object },
	{ "AbortMultipartUpload", HTTP_DELETE, S3_OBJECT, "uploadId", NULL, s3_abort_multipart },
	{ "DeleteObject", HTTP_DELETE, S3_OBJECT, NULL, NULL, s3_delete_object },
	{ "CreateMultipartUpload", HTTP_POST, S3_OBJECT, "uploads", NULL, s3_create_multipart },
	{ "CompleteMultipartUpload", HTTP_POST, S3_OBJECT, "uploadId", NULL, s3_complete_multipart },
};

/* Subresources we do not implement: asking for one must not fall through to a plain
 * GET/PUT/DELETE of the bucket or object (a PUT ?acl must never overwrite an object). */
static const char *const s3_unsupported_subres[] = {
	"accelerate", "analytics", "inventory", "logging", "metrics", "notification",
	"object-lock", "ownershipControls", "policyStatus", "publicAccessBlock", "replication",
	"requestPayment", "restore", "retention", "legal-hold", "select", "torrent", "website",
	"acl", "policy", "cors", "lifecycle", "tagging", "encryption", "versioning", "attributes",
	"intelligent-tiering",
};

#define S3_NOPS ((int)(sizeof(s3_ops) / sizeof(s3_ops[0])))
_Static_assert(sizeof(s3_ops) / sizeof(s3_ops[0]) < S3M_FAMILIES, "raise S3M_FAMILIES");

int s3_op_family(const struct s3_op *op)
{
	return op ? (int)(op - s3_ops) + 1 : 0;
}

const char *s3_op_family_name(int family)
{
	return family == 0 ? "none" : family <= S3_NOPS ? s3_ops[family - 1].name : NULL;
}

struct s3_metrics *s3_ctx_metrics(struct s3_ctx *s3)
{
	return &s3->metrics;
}

int s3_ctx_new(const struct s3_config *cfg, struct s3_ctx **out)
{
	struct s3_ctx *s3 = calloc(1, sizeof(*s3));

	if (!s3)
		return -ENOMEM;
	s3->cfg = *cfg;
	if (getrandom(&s3->boot_id, sizeof(s3->boot_id), 0) != sizeof(s3->boot_id))
		s3->boot_id = (uint32_t)time(NULL);
	*out = s3;
	return 0;
}

void s3_ctx_free(struct s3_ctx *s3)
{
	free((struct s3_ctx_block *)(void *)s3);	/* ctx is its first member */
}

size_t s3_conn_state_size(void)
{
	return sizeof(struct s3_req);
}

/* --- responses --- */

void s3_resp_begin(struct s3_req *r, int status)
{
	http_resp_status(r->c, status);
	http_resp_header(r->c, "x-amz-request-id", r->request_id);
	if (r->err_hdr)
		http_resp_header(r->c, r->err_hdr, r->err_val);
}

void s3_xml_begin(struct s3_req *r, int status)
{
	static const char decl[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

	s3_resp_begin(r, status);
	http_resp_header(r->c, "Content-Type", "application/xml");
	http_resp_body(r->c, decl, sizeof(decl) - 1);
}

void s3_xml_text(struct s3_req *r, const char *tag, const char *s, size_t len)
{
	char *esc = http_conn_scratch(r->c);
	size_t n;

	/* Escaping stays in the lowest quarter of the scratch buffer: callers keep state
	 * above it. Keys are at most 1 KiB, far below this cap. */
	if (len > HTTP_SCRATCH / 24)
		len = HTTP_SCRATCH / 24;
	n = xml_escape(s, len, esc, HTTP_SCRATCH / 4);
	http_resp_bodyf(r->c, "<%s>%.*s</%s>", tag, (int)n, esc, tag);
}

void s3_xml_key(struct s3_req *r, const char *tag, const char *s, size_t len, bool url)
{
	char *enc;
	size_t n;

	if (!url) {
		s3_xml_text(r, tag, s, len);
		return;
	}
	enc = (char *)http_conn_scratch(r->c) + HTTP_SCRATCH / 2;
	if (len > HTTP_SCRATCH / 24)
		len = HTTP_SCRATCH / 24;
	n = uri_encode(s, len, enc, HTTP_SCRATCH / 8, false);
	s3_xml_text(r, tag, enc, n);
}

void s3_xml_owner(struct s3_req *r)
{
	const char *ak = r->s3->cfg.creds[r->auth.cred].access_key;

	http_resp_bodyf(r->c, "<Owner><ID>%s</ID><DisplayName>%s</DisplayName></Owner>", ak, ak);
}

void s3_req_release(struct s3_req *r)
{
	if (r->put) {
		cstore_put_abort(r->put);
		r->put = NULL;
	}
	if (r->obj) {
		cstore_obj_close(r->obj);
		r->obj = NULL;
	}
	if (r->job) {
		if (r->job_free)
			r->job_free(r->job);
		r->job = NULL;
	}
	free(r->buf);
	r->buf = NULL;
	r->buf_len = r->buf_cap = 0;
}

void s3_send(struct s3_req *r)
{
	r->done = true;
	http_resp_send(r->c);
	s3_req_release(r);
}

static void error_body(struct s3_req *r, enum s3_err e, const char *msg)
{
	s3_xml_begin(r, s3_errors[e].status);
	http_resp_bodyf(r->c, "<Error><Code>%s</Code>", s3_errors[e].code);
	s3_xml_text(r, "Message", msg, strlen(msg));
	if (r->bucket[0])
		s3_xml_text(r, "BucketName", r->bucket, strlen(r->bucket));
	if (r->has_key)
		s3_xml_text(r, "Key", r->key, r->key_len);
	if (r->h)
		s3_xml_text(r, "Resource", r->h->path, r->h->path_len);
	http_resp_bodyf(r->c, "<RequestId>%s</RequestId><HostId>%s</HostId></Error>",
			r->request_id, r->request_id);
}

void s3_error_msg(struct s3_req *r, enum s3_err e, const char *msg)
{
	if (r->done)
		return;
	log_debug("s3_error op=%s code=%s request_id=%s", r->op ? r->op->name : "-",
		  s3_errors[e].code, r->request_id);
	if (r->head || e == S3E_NOT_MODIFIED) {
		/* HEAD and 304 responses carry no body; the status says it all. */
		s3_resp_begin(r, s3_errors[e].status);
		http_resp_content_length(r->c, 0);
	} else {
		error_body(r, e, msg);
	}
	if (r->body_kind != S3_BODY_NONE && r->body_expect != 0 && !r->chunked_done &&
	    r->body_len < r->body_expect)
		http_resp_close(r->c);
	s3_send(r);
}

void s3_error(struct s3_req *r, enum s3_err e)
{
	s3_error_msg(r, e, s3_errors[e].msg);
}

enum s3_err s3_err_from_errno(int err)
{
	switch (err) {
	case -ENOSPC:
	case -EDQUOT:
		return S3E_STORAGE_FULL;
	case -EAGAIN:
	case -EBUSY:
		return S3E_SLOW_DOWN;
	case -ENAMETOOLONG:
		return S3E_KEY_TOO_LONG;
	case -STORE_ENOQUORUM:		/* fewer than W replicas durable: nothing acknowledged */
		return S3E_SERVICE_UNAVAILABLE;
	default:
		return S3E_INTERNAL;
	}
}

/* --- request helpers --- */

const struct uri_param *s3_param(const struct s3_req *r, const char *name)
{
	return uri_query_get(r->q, r->nq, name);
}

int s3_param_str(const struct s3_req *r, const char *name, char *out, size_t out_max)
{
	const struct uri_param *p = s3_param(r, name);
	int n;

	if (!p)
		return -1;
	n = uri_decode(p->value, p->value_len, out, out_max - 1, false);
	if (n < 0)
		return -2;
	out[n] = 0;
	return n;
}

bool s3_param_int(struct s3_req *r, const char *name, int def, int max, int *out)
{
	char v[16], msg[96], *end;
	long n;

	*out = def;
	if (s3_param_str(r, name, v, sizeof(v)) < 0)
		return true;
	n = strtol(v, &end, 10);
	if (!v[0] || *end || n < 0) {
		snprintf(msg, sizeof(msg), "Provided %s not an integer or within integer range", name);
		s3_error_msg(r, S3E_INVALID_ARGUMENT, msg);
		return false;
	}
	*out = n > max ? max : (int)n;
	return true;
}

int s3_header_str(const struct s3_req *r, const char *name, char *out, size_t out_max)
{
	const struct http_header *h = http_req_header(r->h, name);
	size_t n;

	if (!h)
		return -1;
	n = h->value_len < out_max - 1 ? h->value_len : out_max - 1;
	memcpy(out, h->value, n);
	out[n] = 0;
	return (int)n;
}

bool s3_bucket_name_valid(const char *name)
{
	size_t n = strlen(name);
	bool all_digits_dots = true;

	if (n < 3 || n > STORE_BUCKET_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');

		if (!alnum && ch != '-' && ch != '.')
			return false;
		if ((i == 0 || i == n - 1) && !alnum)
			return false;
		if (ch == '.' && (name[i + 1] == '.' || name[i + 1] == '-' || name[i - 1] == '-'))
			return false;
		if (ch >= 'a' && ch <= 'z')
			all_digits_dots = false;
	}
	return !all_digits_dots;	/* "192.168.5.4" looks like an IP address */
}

/* --- dispatch --- */

/* Copies the decoded bucket from a path segment; false if it cannot be a bucket name. */
static bool set_bucket(struct s3_req *r, const char *s, size_t len)
{
	int n;

	if (len > STORE_BUCKET_MAX * 3)
		return false;
	n = uri_decode(s, len, r->bucket, sizeof(r->bucket) - 1, false);
	if (n < 0)
		return false;
	r->bucket[n] = 0;
	return memchr(r->bucket, 0, (size_t)n) == NULL;
}

/* The bucket named by a Host of "<bucket>.<domain>[:port]", if any. */
static bool vhost_bucket(struct s3_req *r, const char **b, size_t *blen)
{
	const struct http_header *host = http_req_header(r->h, "host");
	const char *domain = r->s3->cfg.domain;
	size_t hlen, dlen;
	const char *colon;

	if (!host || !domain || !*domain)
		return false;
	colon = memchr(host->value, ':', host->value_len);
	hlen = colon ? (size_t)(colon - host->value) : host->value_len;
	dlen = strlen(domain);
	if (hlen <= dlen + 1 || host->value[hlen - dlen - 1] != '.' ||
	    strncasecmp(host->value + hlen - dlen, domain, dlen) != 0)
		return false;
	*b = host->value;
	*blen = hlen - dlen - 1;
	return true;
}

/* Splits the target into bucket, key and query. Returns an error or S3E_COUNT. */
static enum s3_err parse_target(struct s3_req *r)
{
	const char *p = r->h->path, *end = p + r->h->path_len, *vb, *slash;
	size_t vblen;
	int n;

	r->nq = 0;
	if (r->h->query && (r->nq = uri_query_parse(r->h->query, r->h->query_len, r->q,
						    URI_MAX_PARAMS)) < 0)
		return S3E_INVALID_ARGUMENT;
	if (p == end || *p != '/')
		return S3E_INVALID_REQUEST;
	p++;
	if (vhost_bucket(r, &vb, &vblen)) {
		if (!set_bucket(r, vb, vblen))
			return S3E_INVALID_BUCKET_NAME;
	} else if (p < end) {
		slash = memchr(p, '/', (size_t)(end - p));
		if (!set_bucket(r, p, (size_t)((slash ? slash : end) - p)))
			return S3E_INVALID_BUCKET_NAME;
		p = slash ? slash + 1 : end;
	}
	if (p < end) {
		if ((size_t)(end - p) > STORE_KEY_MAX * 3)
			return S3E_KEY_TOO_LONG;
		n = uri_decode(p, (size_t)(end - p), r->key, sizeof(r->key) - 1, false);
		if (n < 0)
			return n == -1 && (size_t)(end - p) > STORE_KEY_MAX ? S3E_KEY_TOO_LONG
									     : S3E_INVALID_ARGUMENT;
		if ((size_t)n > STORE_KEY_MAX)
			return S3E_KEY_TOO_LONG;
		r->key[n] = 0;
		r->key_len = (size_t)n;
		r->has_key = n > 0;
	}
	return S3E_COUNT;
}

static const struct s3_op *find_op(struct s3_req *r)
{
	enum s3_target t = r->has_key ? S3_OBJECT : r->bucket[0] ? S3_BUCKET : S3_SERVICE;
	enum http_method m = r->h->method;

	for (size_t i = 0; i < sizeof(s3_ops) / sizeof(s3_ops[0]); i++) {
		const struct s3_op *op = &s3_ops[i];

		if (op->method != m || op->target != t)
			continue;
		if (op->subres && !s3_param(r, op->subres))
			continue;
		if (op->header && !http_req_header(r->h, op->header))
			continue;
		if (!op->subres) {
			bool other = false;
			for (size_t j = 0; j < sizeof(s3_unsupported_subres) / sizeof(char *); j++)
				other = other || s3_param(r, s3_unsupported_subres[j]);
			/* The plain PUT/DELETE/GET forms must not swallow an unknown subresource. */
			if (other)
				return NULL;
		}
		return op;
	}
	return NULL;
}

static enum s3_err auth_error(enum sigv4_status st)
{
	switch (st) {
	case SIGV4_ANONYMOUS: return S3E_ACCESS_DENIED;
	case SIGV4_MALFORMED: return S3E_AUTH_HEADER_MALFORMED;
	case SIGV4_QUERY_MALFORMED: return S3E_AUTH_QUERY_ERROR;
	case SIGV4_UNSUPPORTED: return S3E_INVALID_REQUEST;
	case SIGV4_BAD_ACCESS_KEY: return S3E_INVALID_ACCESS_KEY;
	case SIGV4_BAD_SIGNATURE: return S3E_SIGNATURE_MISMATCH;
	case SIGV4_SKEWED: return S3E_TIME_SKEWED;
	case SIGV4_EXPIRED: return S3E_ACCESS_DENIED;
	case SIGV4_BAD_CONTENT_SHA: return S3E_INVALID_ARGUMENT;
	case SIGV4_MISSING_DATE: return S3E_ACCESS_DENIED;
	case SIGV4_WRONG_REGION: return S3E_AUTH_HEADER_MALFORMED;
	default: return S3E_INTERNAL;
	}
}

static const char *auth_message(enum sigv4_status st, const char *region)
{
	static __thread char msg[128];

	switch (st) {
	case SIGV4_EXPIRED: return "Request has expired";
	case SIGV4_UNSUPPORTED: return "Please use AWS4-HMAC-SHA256.";
	case SIGV4_MISSING_DATE: return "AWS authentication requires a valid Date or x-amz-date header";
	case SIGV4_WRONG_REGION:
		snprintf(msg, sizeof(msg), "The authorization header is malformed; the region is wrong; expecting '%s'", region);
		return msg;
	default: return NULL;
	}
}

/* Resets the per-request part of the connection state (the rest is set before use). */
static void req_reset(struct s3_req *r, struct s3_ctx *s3, struct http_conn *c,
		      struct http_req *h)
{
	if (!r->s3) {
		r->s3 = s3;
		r->conn_id = __atomic_add_fetch(&s3->next_conn, 1, __ATOMIC_RELAXED);
	}
	r->c = c;
	r->h = h;
	r->op = NULL;
	r->seq++;
	snprintf(r->request_id, sizeof(r->request_id), "%08X%04X%04X", s3->boot_id,
		 r->conn_id & 0xffff, r->seq & 0xffff);
	r->head = h && h->method == HTTP_HEAD;
	r->done = false;
	r->err_hdr = NULL;
	r->bucket[0] = 0;
	r->key[0] = 0;
	r->key_len = 0;
	r->has_key = false;
	r->nq = 0;
	r->body_kind = S3_BODY_NONE;
	r->body_done = NULL;
	r->chunked_done = false;
	r->body_len = 0;
	r->body_expect = -1;
	r->part_no = 0;
	r->upload_id[0] = 0;
	r->job_err = 0;
	r->job_free = NULL;
	memset(&r->auth, 0, sizeof(r->auth));
}

void s3_on_request(struct http_conn *c, struct http_req *h, void *ud)
{
	struct s3_req *r = http_conn_udata(c);
	enum sigv4_status st;
	enum s3_err e;
	const char *msg;

	req_reset(r, ud, c, h);
	e = parse_target(r);
	if (e != S3E_COUNT) {
		s3_error(r, e);
		return;
	}
	st = sigv4_verify(h, r->s3->cfg.creds, r->s3->cfg.ncreds, r->s3->cfg.region,
			  time(NULL), &r->auth);
	if (st != SIGV4_OK) {
		log_info("s3_auth_denied peer=%s status=%d request_id=%s", http_conn_peer(c),
			 (int)st, r->request_id);
		msg = auth_message(st, r->s3->cfg.region);
		if (msg)
			s3_error_msg(r, auth_error(st), msg);
		else
			s3_error(r, auth_error(st));
		return;
	}
	r->op = find_op(r);
	if (!r->op) {
		s3_error(r, h->method == HTTP_OTHER || h->method == HTTP_OPTIONS
			    ? S3E_METHOD_NOT_ALLOWED : S3E_NOT_IMPLEMENTED);
		return;
	}
	if (r->op->target != S3_SERVICE && r->op->fn != s3_create_bucket &&
	    strlen(r->bucket) > STORE_BUCKET_MAX) {
		s3_error(r, S3E_NO_SUCH_BUCKET);
		return;
	}
	log_debug("s3_request op=%s bucket=%s request_id=%s", r->op->name, r->bucket,
		  r->request_id);
	r->op->fn(r);
}

void s3_on_error(struct http_conn *c, int status, const char *reason, void *ud)
{
	struct s3_req *r = http_conn_udata(c);
	enum s3_err e;

	req_reset(r, ud, c, NULL);
	switch (status) {
	case 431: e = S3E_HEADERS_TOO_LARGE; break;
	case 414: e = S3E_URI_TOO_LONG; break;
	case 501: e = S3E_NOT_IMPLEMENTED; break;
	case 505: e = S3E_HTTP_VERSION; break;
	case 503: e = S3E_SLOW_DOWN; break;
	default: e = S3E_BAD_REQUEST; break;
	}
	log_info("http_bad_request peer=%s status=%d reason=%s", http_conn_peer(c), status, reason);
	http_resp_close(c);
	s3_error(r, e);
}

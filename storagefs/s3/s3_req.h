/* s3_req.h — what the S3 operation files share: the per-connection request state, the
 * error table, the operation table entry, and helpers for responses, request bodies,
 * offloading blocking store calls, stored metadata and dates. Internal to storagefs/s3. */
#ifndef CAIRN_S3_REQ_H
#define CAIRN_S3_REQ_H

#include <stdbool.h>
#include <stdint.h>

#include "../../lib/hash.h"
#include "../../lib/http.h"
#include "../../lib/uri.h"
#include "s3.h"
#include "s3_metrics.h"

#define S3_XML_BODY_MAX		(2 * 1024 * 1024)	/* 1000 escaped 1 KiB keys fit */
#define S3_USER_META_MAX	2048			/* x-amz-meta-* names + values, as S3 */
#define S3_PUT_MAX		(5LL * 1024 * 1024 * 1024)
#define S3_DELETE_MAX		1000
#define S3_LIST_MAX		1000
#define S3_SMALL_GET		(HTTP_SCRATCH)	/* verified fully before the status line */
#define S3_COPY_BUF		(1024 * 1024)

enum s3_err {
	S3E_ACCESS_DENIED, S3E_AUTH_HEADER_MALFORMED, S3E_AUTH_QUERY_ERROR, S3E_BAD_DIGEST,
	S3E_BUCKET_EXISTS_OWNED, S3E_BUCKET_NOT_EMPTY, S3E_ENTITY_TOO_SMALL, S3E_ENTITY_TOO_LARGE,
	S3E_INCOMPLETE_BODY, S3E_INTERNAL, S3E_INVALID_ACCESS_KEY, S3E_INVALID_ARGUMENT,
	S3E_INVALID_BUCKET_NAME, S3E_INVALID_DIGEST, S3E_INVALID_PART, S3E_INVALID_PART_ORDER,
	S3E_INVALID_RANGE, S3E_INVALID_REQUEST, S3E_KEY_TOO_LONG, S3E_MALFORMED_XML,
	S3E_METADATA_TOO_LARGE, S3E_METHOD_NOT_ALLOWED, S3E_MISSING_CONTENT_LENGTH,
	S3E_NO_SUCH_BUCKET, S3E_NO_SUCH_KEY, S3E_NO_SUCH_UPLOAD, S3E_NOT_IMPLEMENTED,
	S3E_NOT_MODIFIED, S3E_PRECONDITION_FAILED, S3E_TIME_SKEWED, S3E_SIGNATURE_MISMATCH,
	S3E_SHA256_MISMATCH, S3E_SLOW_DOWN, S3E_STORAGE_FULL, S3E_BAD_REQUEST,
	S3E_HEADERS_TOO_LARGE, S3E_URI_TOO_LONG, S3E_NO_SUCH_POLICY, S3E_NO_SUCH_CORS,
	S3E_NO_SUCH_LIFECYCLE, S3E_NO_SUCH_TAGSET, S3E_NO_SUCH_ENCRYPTION, S3E_INVALID_PART_NUMBER,
	S3E_HTTP_VERSION, S3E_SERVICE_UNAVAILABLE, S3E_COUNT
};

struct s3_ctx {
	struct s3_config cfg;
	uint32_t boot_id;		/* distinguishes request ids across restarts */
	uint32_t next_conn;		/* atomic */
	struct s3_metrics metrics;	/* request counters (s3_metrics.c) */
};

struct s3_req;
typedef void (*s3_handler)(struct s3_req *r);

enum s3_target { S3_SERVICE, S3_BUCKET, S3_OBJECT };

struct s3_op {
	const char *name;
	enum http_method method;
	enum s3_target target;
	const char *subres;	/* query parameter that selects it; NULL: none */
	const char *header;	/* request header that selects it; NULL: none */
	s3_handler fn;
};

enum s3_body_kind { S3_BODY_NONE, S3_BODY_STORE, S3_BODY_BUFFER };

struct s3_req {
	struct s3_ctx *s3;
	struct http_conn *c;
	struct http_req *h;
	const struct s3_op *op;
	uint32_t conn_id;
	uint32_t seq;
	char request_id[20];
	bool head;			/* a HEAD request: no response body */
	bool done;			/* the response has been handed to the server */
	const char *err_hdr;		/* one extra header for an error response, or NULL */
	char err_val[64];

	char bucket[STORE_BUCKET_MAX + 2];
	char key[STORE_KEY_MAX + 1];	/* NUL-terminated for logs; may hold NULs */
	size_t key_len;
	bool has_key;
	struct uri_param q[URI_MAX_PARAMS];
	int nq;
	struct sigv4_auth auth;

	/* request body */
	enum s3_body_kind body_kind;
	void (*body_done)(struct s3_req *r);	/* on the loop, once the body arrived intact */
	struct sigv4_chunked chunked;
	bool chunked_done;
	struct sha256_ctx sha;
	struct md5_ctx md5;
	int64_t body_len;		/* payload bytes received */
	int64_t body_expect;		/* payload bytes announced, -1 when unknown */
	struct cstore_put *put;
	char *buf;			/* S3_BODY_BUFFER: XML bodies, freed after the response */
	size_t buf_len;
	size_t buf_cap;

	/* reading and operation state */
	struct cstore_obj *obj;
	int64_t send_pos;
	int64_t send_end;
	int part_no;
	char upload_id[STORE_UPLOAD_ID_MAX + 1];
	int job_err;
	void *job;			/* an operation's heap state for offloaded work */
	void (*job_free)(void *job);
	void (*job_work)(struct s3_req *r);
	void (*job_done)(struct s3_req *r);
	struct store_objinfo info;	/* metadata to store, or as stored */
};

/* --- s3.c: errors and responses --- */
void s3_error(struct s3_req *r, enum s3_err e);
void s3_error_msg(struct s3_req *r, enum s3_err e, const char *msg);
enum s3_err s3_err_from_errno(int err);
/* Starts a response: status + x-amz-request-id. */
void s3_resp_begin(struct s3_req *r, int status);
/* Starts an XML response: s3_resp_begin + Content-Type + the XML declaration. */
void s3_xml_begin(struct s3_req *r, int status);
void s3_xml_text(struct s3_req *r, const char *tag, const char *s, size_t len);
/* A key or prefix, URL-encoded when the client asked for encoding-type=url. */
void s3_xml_key(struct s3_req *r, const char *tag, const char *s, size_t len, bool url);
void s3_xml_owner(struct s3_req *r);
/* Sends the response and releases the request's resources. */
void s3_send(struct s3_req *r);
/* Releases what the request holds (store handles, buffers, job). */
void s3_req_release(struct s3_req *r);

/* Query parameters (raw lookup, decoded copy). */
const struct uri_param *s3_param(const struct s3_req *r, const char *name);
/* Decodes a parameter into out (NUL-terminated); returns length, -1 absent, -2 invalid. */
int s3_param_str(const struct s3_req *r, const char *name, char *out, size_t out_max);
/* An integer parameter clamped to max (def when absent); false after answering
 * InvalidArgument for a malformed or negative value. */
bool s3_param_int(struct s3_req *r, const char *name, int def, int max, int *out);
/* A header's value copied NUL-terminated into out; returns length or -1 when absent. */
int s3_header_str(const struct s3_req *r, const char *name, char *out, size_t out_max);
bool s3_bucket_name_valid(const char *name);

/* --- s3_body.c: request bodies and offloading --- */
/* Reads the body into r->buf (at most S3_XML_BODY_MAX), then calls done on the loop. */
void s3_body_read_buffer(struct s3_req *r, void (*done)(struct s3_req *r));
/* Streams the body into r->put (verifying SigV4 payload hashes / chunk signatures and
 * computing MD5), then calls done on the loop. r->put must be open. */
void s3_body_read_store(struct s3_req *r, void (*done)(struct s3_req *r));
/* Runs work(r) on a worker thread, then done(r) back on r's loop. */
void s3_offload(struct s3_req *r, void (*work)(struct s3_req *r), void (*done)(struct s3_req *r));
/* The MD5 of the body as a hex ETag; checks Content-MD5 (false: error already sent). */
bool s3_body_etag(struct s3_req *r, char etag[STORE_ETAG_MAX + 1]);
/* Checks the body against x-amz-content-sha256 (false: error already sent). */
bool s3_body_check_sha(struct s3_req *r);

/* --- s3_meta.c: stored headers, dates, conditions --- */
/* Collects Content-Type & co. and x-amz-meta-* from the request into info->meta. */
enum s3_err s3_meta_from_request(struct s3_req *r, struct store_objinfo *info);
/* Emits the stored headers, with response-* query overrides applied. */
void s3_meta_to_response(struct s3_req *r, const struct store_objinfo *info);
void s3_http_date(int64_t ms, char out[32]);
void s3_iso_date(int64_t ms, char out[32]);
/* Parses an HTTP date (IMF-fixdate, RFC 850 or asctime); -1 when invalid. */
int64_t s3_parse_http_date(const char *s);
/* Evaluates If-Match & co. (prefix "" or "x-amz-copy-source-"); S3E_COUNT when the
 * request may proceed, else S3E_NOT_MODIFIED or S3E_PRECONDITION_FAILED. */
enum s3_err s3_check_conditions(struct s3_req *r, const char *prefix,
				const struct store_objinfo *info);
/* Parses "bytes=a-b" for an object of size; returns 1 with [*start, *end) when it
 * applies, 0 to serve the whole object, -1 when unsatisfiable (416). */
int s3_parse_range(const char *v, size_t len, int64_t size, int64_t *start, int64_t *end);

/* --- operations (one file per family) --- */
/* Reads the body into the open r->put and commits it, answering with the ETag
 * (PutObject and UploadPart). */
void s3_put_stream(struct s3_req *r);

void s3_list_buckets(struct s3_req *r);
void s3_cairn_status(struct s3_req *r);
void s3_cairn_metrics(struct s3_req *r);
void s3_create_bucket(struct s3_req *r);
void s3_head_bucket(struct s3_req *r);
void s3_delete_bucket(struct s3_req *r);
void s3_get_bucket_location(struct s3_req *r);
void s3_get_bucket_versioning(struct s3_req *r);
void s3_get_bucket_acl(struct s3_req *r);
void s3_get_bucket_missing_config(struct s3_req *r);
void s3_list_objects(struct s3_req *r);
void s3_list_objects_v2(struct s3_req *r);
void s3_list_object_versions(struct s3_req *r);
void s3_get_object(struct s3_req *r);
void s3_put_object(struct s3_req *r);
void s3_delete_object(struct s3_req *r);
void s3_copy_object(struct s3_req *r);
void s3_upload_part_copy(struct s3_req *r);
void s3_delete_objects(struct s3_req *r);
void s3_create_multipart(struct s3_req *r);
void s3_upload_part(struct s3_req *r);
void s3_complete_multipart(struct s3_req *r);
void s3_abort_multipart(struct s3_req *r);
void s3_list_parts(struct s3_req *r);
void s3_list_multipart_uploads(struct s3_req *r);
void s3_get_object_acl(struct s3_req *r);
void s3_get_object_tagging(struct s3_req *r);

#endif

/* sigv4.h — AWS Signature Version 4 for S3: the Authorization header and presigned URLs,
 * the aws-chunked streaming payload with per-chunk signatures, and signing for our own
 * clients (the benchmark). No allocation; everything works on the parsed request. */
#ifndef CAIRN_SIGV4_H
#define CAIRN_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "../../lib/hash.h"
#include "../../lib/http.h"

#define SIGV4_MAX_SKEW_S	(15 * 60)	/* RequestTimeTooSkewed beyond this */
#define SIGV4_MAX_EXPIRES_S	(7 * 24 * 3600)	/* presigned URL lifetime cap */
#define SIGV4_KEY_MAX		128

struct sigv4_cred {
	char access_key[SIGV4_KEY_MAX];
	char secret_key[SIGV4_KEY_MAX];
};

enum sigv4_status {
	SIGV4_OK = 0,
	SIGV4_ANONYMOUS,	/* no credentials at all: AccessDenied */
	SIGV4_MALFORMED,	/* AuthorizationHeaderMalformed */
	SIGV4_QUERY_MALFORMED,	/* AuthorizationQueryParametersError */
	SIGV4_UNSUPPORTED,	/* SigV2 or another algorithm: InvalidRequest */
	SIGV4_BAD_ACCESS_KEY,	/* InvalidAccessKeyId */
	SIGV4_BAD_SIGNATURE,	/* SignatureDoesNotMatch */
	SIGV4_SKEWED,		/* RequestTimeTooSkewed */
	SIGV4_EXPIRED,		/* AccessDenied, "Request has expired" */
	SIGV4_BAD_CONTENT_SHA,	/* x-amz-content-sha256 missing/invalid: InvalidArgument */
	SIGV4_MISSING_DATE,	/* no valid X-Amz-Date/Date: AccessDenied */
	SIGV4_WRONG_REGION,	/* scope names another region: AuthorizationHeaderMalformed */
};

enum sigv4_payload {
	SIGV4_PAYLOAD_SIGNED,		/* x-amz-content-sha256 = hex SHA-256 of the body */
	SIGV4_PAYLOAD_UNSIGNED,		/* UNSIGNED-PAYLOAD (and presigned URLs) */
	SIGV4_PAYLOAD_STREAMING,	/* STREAMING-AWS4-HMAC-SHA256-PAYLOAD (aws-chunked) */
	SIGV4_PAYLOAD_STREAMING_UNSIGNED_TRAILER, /* STREAMING-UNSIGNED-PAYLOAD-TRAILER */
};

/* What a verified request proved, and what is needed to check its payload. */
struct sigv4_auth {
	int cred;			/* index into the credentials that matched */
	bool presigned;
	enum sigv4_payload payload;
	unsigned char payload_sha256[SHA256_LEN];	/* for SIGV4_PAYLOAD_SIGNED */
	unsigned char signing_key[SHA256_LEN];		/* for chunk signatures */
	char seed_signature[65];	/* hex, the request's own signature */
	char amz_date[17];		/* YYYYMMDDTHHMMSSZ */
	char scope[96];			/* date/region/s3/aws4_request */
	int64_t decoded_length;		/* x-amz-decoded-content-length, -1 if absent */
};

/* Verifies the request's signature (header or query form) against creds. region is the
 * server's region. now is the current Unix time. */
enum sigv4_status sigv4_verify(const struct http_req *req, const struct sigv4_cred *creds,
			       int ncreds, const char *region, time_t now,
			       struct sigv4_auth *out);

/* --- aws-chunked bodies (STREAMING-*) --- */

struct sigv4_chunked {
	const struct sigv4_auth *auth;
	int state;
	uint64_t remaining;
	char prev_sig[65];
	char line[192];			/* the chunk header line being collected */
	unsigned line_len;
	struct sha256_ctx chunk_sha;
	uint64_t decoded;		/* payload bytes delivered so far */
};

void sigv4_chunked_init(struct sigv4_chunked *d, const struct sigv4_auth *auth);
/* Feeds raw body bytes; delivers payload bytes to out(ctx, ...) (an out() error is
 * returned as is). Returns 0 to continue, 1 once the final chunk (and trailers) is read
 * and verified, -EBADMSG on bad framing, -EACCES on a chunk signature mismatch. */
int sigv4_chunked_feed(struct sigv4_chunked *d, const char *in, size_t len,
		       int (*out)(void *ctx, const char *buf, size_t len), void *ctx);

/* --- signing, for our own clients (benchmark, tests) --- */

struct sigv4_sign_req {
	const char *method;
	const char *host;		/* Host header value */
	const char *path;		/* already URI-encoded path, e.g. "/bucket/my%20key" */
	const char *query;		/* raw query without '?', or NULL */
	const char *payload_sha256_hex;	/* or "UNSIGNED-PAYLOAD" */
	const char *region;
	time_t now;
	const struct sigv4_cred *cred;
};
/* Writes the Authorization header value and the x-amz-date value (signed headers are
 * host;x-amz-content-sha256;x-amz-date). Returns 0 or -ENOSPC. */
int sigv4_sign(const struct sigv4_sign_req *r, char *authz, size_t authz_max,
	       char amz_date[17]);

#endif

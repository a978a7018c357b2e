/* http1.h — blocking HTTP/1.1 on a tls_conn for the control plane: one request per
 * connection (Connection: close), bodies held in memory up to HTTP1_BODY_MAX. The client
 * side sends a request and reads the reply; the server side reads one request and writes
 * one reply. Not for the S3 data path (that is lib/http_server.c). */
#ifndef CAIRN_HTTP1_H
#define CAIRN_HTTP1_H

#include <stddef.h>

#include "tls.h"

#define HTTP1_HEAD_MAX	8192
#define HTTP1_BODY_MAX	(1024 * 1024)
#define HTTP1_PATH_MAX	1024

/* A client request. ctype/body may be NULL/0; bearer adds "Authorization: Bearer <it>". */
struct http1_req {
	const char *method, *host, *path;
	const char *ctype;
	const void *body;
	size_t body_len;
	const char *bearer;
};

/* A reply read by the client: body is malloc'ed, NUL-terminated; free it with free(). */
struct http1_resp {
	int status;
	char ctype[128];
	char *body;
	size_t body_len;
};

/* Sends req on c and reads the reply. 0 (any status), -EPROTO (malformed reply), -EFBIG
 * (body over HTTP1_BODY_MAX), -errno. */
int http1_call(struct tls_conn *c, const struct http1_req *req, struct http1_resp *out);

/* A request read by the server: method/path/query point into head; body is malloc'ed
 * (NUL-terminated, may be empty); free with http1_srv_req_fini. */
struct http1_srv_req {
	char head[HTTP1_HEAD_MAX + 1];
	const char *method;
	char path[HTTP1_PATH_MAX];	/* percent-decoded, without the query */
	const char *query;		/* raw, after '?', or "" */
	char bearer[256];		/* the Authorization: Bearer token, or "" */
	char ctype[128];
	char *body;
	size_t body_len;
};

/* Reads one request (Content-Length bodies only; chunked is -ENOTSUP -> 411). 0, -EPROTO
 * (malformed: answer 400), -EFBIG (answer 413), -ETIMEDOUT, -errno. */
int http1_read_request(struct tls_conn *c, struct http1_srv_req *r);
void http1_srv_req_fini(struct http1_srv_req *r);
/* Writes a whole reply with Content-Length and Connection: close. */
int http1_reply(struct tls_conn *c, int status, const char *ctype, const void *body,
		size_t len);

#endif

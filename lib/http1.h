/* http1.h — blocking HTTP/1.1 on a tls_conn for the control plane: one request per
 * connection (Connection: close), bodies held in memory up to HTTP1_BODY_MAX. The client
 * side sends a request and reads the reply; the server side reads one request and writes
 * one reply. Not for the S3 data path (that is lib/http_server.c). */
#ifndef CAIRN_HTTP1_H
#define CAIRN_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* A request read by the server: method/path/query point into head, which the parser
 * splits in place (NULs for each CR and each field's ':'); body is malloc'ed
 * (NUL-terminated, may be empty); free with http1_srv_req_fini. */
struct http1_srv_req {
	char head[HTTP1_HEAD_MAX + 1];
	const char *method;
	char path[HTTP1_PATH_MAX];	/* percent-decoded, without the query */
	const char *query;		/* raw, after '?', or "" */
	char bearer[256];		/* the Authorization: Bearer token, or "" */
	char ctype[128];
	char host[256];			/* the Host field, or "" */
	char *body;
	size_t body_len;
};

/* Reads one request (Content-Length bodies only; chunked is -ENOTSUP -> 411). 0, -EPROTO
 * (malformed: answer 400), -EFBIG (answer 413), -ETIMEDOUT, -ENODATA (the peer closed
 * before sending a byte: answer nothing), -errno. A request with "Expect: 100-continue" is
 * sent the 100 before its body is read. Only the Bearer scheme fills `bearer`. */
int http1_read_request(struct tls_conn *c, struct http1_srv_req *r);
void http1_srv_req_fini(struct http1_srv_req *r);
/* The reason phrase of a status code ("Status" for one not listed). */
const char *http1_reason(int status);
/* Writes a whole reply with Content-Length and Connection: close. ctype may be NULL. */
int http1_reply(struct tls_conn *c, int status, const char *ctype, const void *body,
		size_t len);

/* The parser behind both sides, exported for tests/fuzz/fuzz_http1.c. A head is a request
 * line or a status line, then header fields; strings point into the parsed buffer. */
struct http1_head {
	const char *method, *target;	/* a request */
	int status;			/* a reply: 100..599 */
	int64_t content_length;		/* -1: none */
	const char *ctype, *authorization, *host;	/* NULL: absent */
	bool transfer_encoding;		/* any Transfer-Encoding (none is supported) */
	bool expect_continue;
};

/* Parses buf[0..len), one whole head ending in CRLF CRLF, writing NULs into it. Strict:
 * CRLF line ends only, no obs-fold, token field names, no control characters, at most one
 * Content-Length / Content-Type / Authorization / Host, never both Content-Length and
 * Transfer-Encoding. 0 or -EPROTO. */
int http1_parse_head(char *buf, size_t len, bool request, struct http1_head *h);
/* Splits an origin-form target ("/path?query") in place: the path percent-decoded into
 * path[max] (no %00, no control characters), *query the raw text after '?' or "".
 * 0 or -EPROTO. */
int http1_split_target(char *target, char *path, size_t max, const char **query);

#endif

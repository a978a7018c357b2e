/* http1_stream.h — blocking HTTP/1.1 on a tls_conn with streamed bodies, for the cluster's
 * internal API: one message head read and parsed (lib/http1.c's strict parser), any header
 * field looked up, then the Content-Length body read or written in chunks of the caller's
 * size. One request per connection (Connection: close), as lib/http1.h. */
#ifndef CAIRN_HTTP1_STREAM_H
#define CAIRN_HTTP1_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "http1.h"
#include "tls.h"

/* Heads carry the object's serialized metadata (8 KiB, base64) besides the usual fields. */
#define HTTP1S_HEAD_MAX		(24 * 1024)
#define HTTP1S_TARGET_MAX	(4 * 1024 + 256)	/* a percent-encoded bucket and key */

/* A message head read from the peer (a request on the server, a reply on the client) and
 * where its body stands. Large: allocate it, do not put it on a small stack. */
struct http1s_msg {
	char head[HTTP1S_HEAD_MAX + 1];	/* parsed in place */
	char raw[HTTP1S_HEAD_MAX + 1];	/* the same head unparsed, for field lookups */
	size_t head_len;
	struct http1_head h;
	char target[HTTP1S_TARGET_MAX];	/* a request's target, raw (still percent-encoded) */
	const char *pre;		/* body bytes read with the head */
	size_t pre_len;
	int64_t body_left;		/* body bytes not yet returned; -1: up to the end */
};

/* Reads and parses one head. request: a request line (Transfer-Encoding: -ENOTSUP; no
 * Content-Length: no body; an "Expect: 100-continue" gets its 100) or a status line
 * (head_only: the reply to a HEAD, no body whatever Content-Length says; no Content-Length:
 * the body runs to the end of the stream). 0, -EPROTO (malformed or too large), -ENODATA
 * (the peer closed before a byte), -ETIMEDOUT, -errno. */
int http1s_read_head(struct tls_conn *c, bool request, bool head_only, struct http1s_msg *m);
/* The value of the first field `name` (case-insensitive), blanks around it cut, into
 * out[max]: its length, -ENOENT (absent), -ENAMETOOLONG. */
int http1s_field(const struct http1s_msg *m, const char *name, char *out, size_t max);
/* Reads up to len body bytes: > 0, 0 at the end of the body, -EPROTO (the stream ended
 * early), -ETIMEDOUT, -errno. */
ssize_t http1s_read_body(struct tls_conn *c, struct http1s_msg *m, void *buf, size_t len);
/* Reads and drops what is left of the body (at most max bytes, else -EFBIG). */
int http1s_drain(struct tls_conn *c, struct http1s_msg *m, int64_t max);

/* Writes a request head. target is sent as is (already encoded); extra is "" or more
 * header lines, each "Name: value\r\n"; body_len < 0: no Content-Length; keep: the
 * connection may carry another request after this one (else Connection: close). 0, -EINVAL
 * (a bad target or extra line), -errno. The body then goes with tls_write. */
int http1s_write_request(struct tls_conn *c, const char *method, const char *host,
			 const char *target, const char *extra, int64_t body_len, bool keep);
/* Writes a reply head with Content-Length len (ctype may be NULL; extra as above), and
 * Connection: close unless keep. */
int http1s_write_reply(struct tls_conn *c, int status, const char *ctype, int64_t len,
		       const char *extra, bool keep);
/* true when the message said Connection: close. */
bool http1s_closes(const struct http1s_msg *m);

#endif

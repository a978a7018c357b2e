/* http.h — an HTTP/1.1 server: per-thread epoll loops own the connections, request heads
 * are parsed in place in a fixed per-connection buffer, bodies are streamed to a sink,
 * responses come from memory or a streaming source (sendfile). A second listener may serve
 * the same requests over TLS (lib/transport.h). Handlers never block on the network;
 * blocking disk work is posted to a worker and resumed with http_conn_post(). */
#ifndef CAIRN_HTTP_H
#define CAIRN_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HTTP_MAX_HEAD		16384	/* request line + all headers, bytes */
#define HTTP_MAX_HEADERS	100
#define HTTP_MAX_TARGET		8192	/* request target (path + query), bytes */
#define HTTP_IN_BUF		65536	/* per-connection input buffer (head + body chunks) */
#define HTTP_OUT_BUF		16384	/* per-connection output buffer; grows for a large
					   response, trimmed back after it */

enum http_method {
	HTTP_OTHER, HTTP_GET, HTTP_HEAD, HTTP_PUT, HTTP_POST, HTTP_DELETE, HTTP_OPTIONS,
};

struct http_header {
	const char *name;	/* as sent; compare case-insensitively */
	size_t name_len;
	const char *value;	/* leading/trailing blanks trimmed */
	size_t value_len;
};

/* A parsed request head. Every pointer points into the connection's input buffer and is
 * valid until the response has been sent. Nothing is NUL-terminated. */
struct http_req {
	enum http_method method;
	const char *method_str;
	size_t method_len;
	const char *target;	/* raw request target as sent, e.g. "/b/k%20x?uploads" */
	size_t target_len;
	const char *path;	/* raw (percent-encoded) path: target up to '?' */
	size_t path_len;
	const char *query;	/* raw query after '?', NULL if none */
	size_t query_len;
	int minor;		/* HTTP/1.<minor> */
	struct http_header hdr[HTTP_MAX_HEADERS];
	int nhdr;
	int64_t content_length;	/* -1 when absent */
	bool chunked;		/* Transfer-Encoding: chunked (the server decodes it) */
	bool expect_continue;	/* Expect: 100-continue */
	bool keep_alive;	/* after HTTP/1.0 / Connection rules */
};

/* --- the request parser (pure; fuzzed) --- */

enum http_parse_err {
	HTTP_PARSE_INCOMPLETE = 0,	/* need more bytes */
	HTTP_PARSE_BAD = -1,		/* malformed: 400 */
	HTTP_PARSE_TOO_LARGE = -2,	/* head > HTTP_MAX_HEAD or too many headers: 431 */
	HTTP_PARSE_URI_TOO_LONG = -3,	/* 414 */
	HTTP_PARSE_VERSION = -4,	/* not HTTP/1.x: 505 */
	HTTP_PARSE_TE = -5,		/* unsupported Transfer-Encoding / CL+TE conflict: 501/400 */
};

/* Parses a request head at buf[0..len). Returns the head's length in bytes (> 0) once the
 * blank line has arrived, or an enum http_parse_err (<= 0). */
int http_parse_head(const char *buf, size_t len, struct http_req *req);

/* Case-insensitive header lookup; NULL when absent. */
const struct http_header *http_req_header(const struct http_req *req, const char *name);

/* Decoder for Transfer-Encoding: chunked. Feed raw bytes; decoded payload bytes are
 * reported as [out, out + *out_len) pointing into the input (decoding is in place). */
struct http_chunked {
	int state;
	uint64_t remaining;	/* bytes left in the current chunk */
	unsigned line_len;	/* guards chunk-size / trailer lines */
};
void http_chunked_init(struct http_chunked *ch);
/* Consumes up to len bytes of in. Returns bytes consumed (>= 0) or -1 when malformed;
 * out and out_len receive payload bytes found (possibly none); done is set at the final chunk
 * and its trailers. Call repeatedly until consumed == len. */
ssize_t http_chunked_feed(struct http_chunked *ch, const char *in, size_t len,
			  const char **out, size_t *out_len, bool *done);

/* --- the server --- */

struct http_conn;
struct http_server;

/* Called on a loop thread once a complete head has arrived. The handler must eventually
 * send exactly one response (http_resp_send / http_resp_stream), possibly later from a
 * callback posted with http_conn_post(). */
typedef void (*http_handler_fn)(struct http_conn *c, struct http_req *req, void *ud);

/* Called instead of the handler when a request cannot be parsed (status 400/413/414/431/
 * 501/505, reason a short code such as "BadRequest"). It writes a response the same way;
 * the server then closes the connection. */
typedef void (*http_error_fn)(struct http_conn *c, int status, const char *reason, void *ud);

/* What the server measured of one request, reported once when it ends: its response was
 * written, or the connection died first. */
struct http_req_stats {
	int status;		/* the status the handler chose (0: none) */
	uint64_t bytes_in;	/* request body bytes handed to the sink (after chunked decoding) */
	uint64_t bytes_out;	/* response body bytes written */
	uint64_t duration_ns;	/* from the complete head to the end of the response */
};

/* Optional: called on the loop thread as each request ends (see http_req_stats). It must
 * not send anything; http_conn_udata() still holds the handler's state of that request. */
typedef void (*http_done_fn)(struct http_conn *c, const struct http_req_stats *st, void *ud);

struct http_server_config {
	const char *listen;		/* "127.0.0.1:9000", "[::1]:9000", ":9000" */
	int threads;			/* event-loop threads; 0 = number of CPUs */
	int max_conns;			/* over this, new connections get 503 and are closed */
	int header_timeout_ms;		/* whole head must arrive within this */
	int idle_timeout_ms;		/* keep-alive idle */
	int io_timeout_ms;		/* no progress reading a body / writing a response */
	size_t conn_udata_size;		/* bytes of per-connection handler state, zeroed once */
	http_handler_fn on_request;
	http_error_fn on_error;
	http_done_fn on_done;		/* optional: per-request figures (metrics) */
	void *ud;
	/* Optional second listener serving the same requests over TLS 1.2 (mbedtls): its
	 * address, and the certificate (PEM, then any chain) and key, read by
	 * http_server_listen() (each loop thread parses its own copy). */
	const char *tls_listen;
	const char *tls_cert_pem, *tls_key_pem;
};

int http_server_new(const struct http_server_config *cfg, struct http_server **out);
/* Binds and listens (so the caller can log "ready" after it); 0 or -errno. */
int http_server_listen(struct http_server *srv);
/* The address actually bound (useful with port 0), as "host:port". */
const char *http_server_addr(const struct http_server *srv);
/* The TLS listener's, or "" when there is none. */
const char *http_server_tls_addr(const struct http_server *srv);
/* Runs the loops until http_server_stop(); returns 0 or -errno. */
int http_server_run(struct http_server *srv);
/* Async-signal-safe: stop accepting, let in-flight requests finish (up to drain_ms),
 * close idle connections, then make http_server_run() return. */
void http_server_stop(struct http_server *srv, int drain_ms);
void http_server_free(struct http_server *srv);

/* Per-connection handler state (conn_udata_size bytes), stable for the connection's life. */
void *http_conn_udata(struct http_conn *c);
/* A per-loop-thread scratch buffer of HTTP_SCRATCH bytes for the current callback only. */
#define HTTP_SCRATCH (256 * 1024)
void *http_conn_scratch(struct http_conn *c);
/* Peer address as text, for logs. */
const char *http_conn_peer(const struct http_conn *c);
/* Whether the connection came through the TLS listener. */
bool http_conn_is_tls(const struct http_conn *c);

/* --- request bodies --- */

struct http_body_sink {
	/* Decoded body bytes (chunked framing already removed). Return 0 to continue; a
	 * negative value stops reading: the handler has sent or will send a response, and the
	 * connection closes after it, since the rest of the body was not read. */
	int (*data)(void *ctx, const char *buf, size_t len);
	/* Once: err == 0 when the whole body arrived; < 0 when the client went away, timed out
	 * or sent bad chunked framing (the handler must still call http_resp_* once; with the
	 * client gone the response is discarded). */
	void (*end)(void *ctx, int err);
	void *ctx;
};
/* Start delivering the body (sends "100 Continue" first if the client asked for it).
 * With no body (Content-Length 0 or absent), end(ctx, 0) is called right away. */
void http_conn_read_body(struct http_conn *c, const struct http_body_sink *sink);

/* --- responses --- */

/* Begins the response. Date, Server, Content-Length and Connection are added by the server. */
void http_resp_status(struct http_conn *c, int status);
void http_resp_header(struct http_conn *c, const char *name, const char *value);
void http_resp_headerf(struct http_conn *c, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Appends body bytes (copied into the output buffer, which grows as needed). */
void http_resp_body(struct http_conn *c, const void *buf, size_t len);
void http_resp_bodyf(struct http_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Marks the response as final: the connection will close after it. */
void http_resp_close(struct http_conn *c);
/* Sends status + headers + the body appended so far. For HEAD requests the handler
 * sets Content-Length itself via http_resp_content_length() and appends no body. */
void http_resp_send(struct http_conn *c);
void http_resp_content_length(struct http_conn *c, int64_t len);

/* A streaming response body of a known length, produced when the socket is writable. */
struct http_body_source {
	/* Writes at most max bytes into sock (non-blocking; sendfile() or write()). Returns
	 * bytes written (> 0), -EAGAIN when the socket is full, or another -errno to abort the
	 * connection (e.g. -EBADMSG on a checksum mismatch: the client sees a short body). */
	ssize_t (*send)(void *ctx, int sock, size_t max);
	/* Once, when the body is complete or the connection died. */
	void (*done)(void *ctx, int err);
	void *ctx;
};
/* Sends status + headers, then len bytes from src. On a TLS connection it answers 500
 * instead (src->done gets -EOPNOTSUPP): the kernel cannot send bytes there, see below. */
void http_resp_stream(struct http_conn *c, int64_t len, const struct http_body_source *src);
/* Copies the source's next at most max bytes (up to 64 KiB; whole checksum blocks are
 * best) into buf: bytes copied (> 0) or -errno, as http_body_source.send. */
typedef ssize_t (*http_body_read_fn)(void *ctx, void *buf, size_t max);
/* As http_resp_stream, for a source that can also fill a buffer: a TLS connection takes the
 * body through read (and encrypts it), a plain one through src->send as before. */
void http_resp_stream_rd(struct http_conn *c, int64_t len, const struct http_body_source *src,
			 http_body_read_fn read);

/* --- leaving and re-entering the loop --- */

/* Runs fn(c, arg) on c's loop thread. Thread-safe: this is how a worker thread that did
 * blocking disk work hands the request back. The connection stays alive until then. */
int http_conn_post(struct http_conn *c, void (*fn)(struct http_conn *c, void *arg), void *arg);

#endif

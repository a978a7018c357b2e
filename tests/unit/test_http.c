/* test_http.c — unit tests of lib/http_parse.c (request heads, chunked decoding) and of
 * lib/http_server.c end to end over loopback sockets with a small echo handler. */
#include "test.h"
#include "../../lib/http.h"
#include "../../lib/workq.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define PARSE(s, req) http_parse_head((s), strlen(s), (req))

static struct http_req req;	/* big: keep it off the test stacks */

static int hdr_is(const struct http_req *r, const char *name, const char *val)
{
	const struct http_header *h = http_req_header(r, name);

	return h && h->value_len == strlen(val) && !memcmp(h->value, val, h->value_len);
}

TEST(http_parse_simple_get)
{
	const char *s = "GET /b/k%20x?uploads&x=1 HTTP/1.1\r\nHost: h\r\nX-Sp:  a b \t\r\n"
			"Range: bytes=0-9\r\n\r\nextra";

	CHECK_INT(PARSE(s, &req), strlen(s) - 5);
	CHECK_INT(req.method, HTTP_GET);
	CHECK_INT(req.minor, 1);
	CHECK(req.target_len == 20 && !memcmp(req.target, "/b/k%20x?uploads&x=1", 20));
	CHECK(req.path_len == 8 && !memcmp(req.path, "/b/k%20x", 8));
	CHECK(req.query_len == 11 && !memcmp(req.query, "uploads&x=1", 11));
	CHECK_INT(req.nhdr, 3);
	CHECK(hdr_is(&req, "x-sp", "a b"));
	CHECK(hdr_is(&req, "RANGE", "bytes=0-9"));
	CHECK(!http_req_header(&req, "Content-Length"));
	CHECK_INT(req.content_length, -1);
	CHECK(req.keep_alive && !req.chunked && !req.expect_continue);
}

TEST(http_parse_methods_and_forms)
{
	CHECK(PARSE("PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", &req) > 0);
	CHECK_INT(req.method, HTTP_PUT);
	CHECK_INT(req.content_length, 0);
	CHECK(!req.query);
	CHECK(PARSE("PATCH /x HTTP/1.1\r\nHost: h\r\n\r\n", &req) > 0);
	CHECK_INT(req.method, HTTP_OTHER);
	CHECK(req.method_len == 5 && !memcmp(req.method_str, "PATCH", 5));
	CHECK(PARSE("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", &req) > 0);
	CHECK(PARSE("GET http://h:9/a/b?q HTTP/1.1\r\nHost: h\r\n\r\n", &req) > 0);
	CHECK(req.path_len == 4 && !memcmp(req.path, "/a/b", 4));
	CHECK(req.query_len == 1);
	CHECK_INT(PARSE("GET x HTTP/1.1\r\nHost: h\r\n\r\n", &req), HTTP_PARSE_BAD);
	CHECK_INT(PARSE("get / HTTP/1.1\r\nHost: h\r\n\r\n", &req) > 0, 1);
	CHECK_INT(req.method, HTTP_OTHER);	/* methods are case-sensitive */
}

TEST(http_parse_keep_alive_rules)
{
	CHECK(PARSE("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", &req) > 0);
	CHECK(!req.keep_alive);
	CHECK(PARSE("GET / HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive, CLOSE\r\n\r\n", &req) > 0);
	CHECK(!req.keep_alive);
	CHECK(PARSE("GET / HTTP/1.0\r\n\r\n", &req) > 0);
	CHECK(!req.keep_alive);
	CHECK_INT(req.minor, 0);
	CHECK(PARSE("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &req) > 0);
	CHECK(req.keep_alive);
	CHECK(PARSE("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n",
		    &req) > 0);
	CHECK(req.expect_continue);
	CHECK(PARSE("PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", &req) > 0);
	CHECK(!req.expect_continue);	/* 1.0 clients cannot mean it */
}

TEST(http_parse_line_endings)
{
	CHECK(PARSE("GET / HTTP/1.1\nHost: h\n\n", &req) == 24);
	CHECK(PARSE("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", &req) == 31);
	CHECK_INT(PARSE("\r", &req), HTTP_PARSE_INCOMPLETE);
	CHECK_INT(PARSE("GET / HTTP/1.1\rHost: h\r\n\r\n", &req), HTTP_PARSE_BAD);
	CHECK_INT(PARSE("GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", &req), HTTP_PARSE_BAD);
}

TEST(http_parse_incomplete_every_prefix)
{
	const char *s = "PUT /bucket/key HTTP/1.1\r\nHost: localhost\r\nContent-Length: 11\r\n"
			"x-amz-content-sha256: UNSIGNED-PAYLOAD\r\n\r\n";
	size_t n = strlen(s);

	for (size_t i = 0; i < n; i++)
		CHECK_INT(http_parse_head(s, i, &req), HTTP_PARSE_INCOMPLETE);
	CHECK_INT(http_parse_head(s, n, &req), n);
	CHECK_INT(req.content_length, 11);
}

TEST(http_parse_pipelined)
{
	const char *s = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nHEAD /2 HTTP/1.1\r\nHost: h\r\n\r\nGET /3";
	int a, b;

	a = PARSE(s, &req);
	CHECK_INT(a, 28);
	b = http_parse_head(s + a, strlen(s) - (size_t)a, &req);
	CHECK_INT(b, 29);
	CHECK_INT(req.method, HTTP_HEAD);
	CHECK(req.path_len == 2 && !memcmp(req.path, "/2", 2));
	CHECK_INT(http_parse_head(s + a + b, strlen(s) - (size_t)(a + b), &req), HTTP_PARSE_INCOMPLETE);
}

TEST(http_parse_bad_heads)
{
	static const char nul[] = "GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n";
	static const char *bad[] = {
		"GET / HTTP/1.1\r\nHost: h\r\nX : y\r\n\r\n",		/* space before colon */
		"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n folded\r\n\r\n",	/* obs-fold */
		"GET / HTTP/1.1\r\nHost: h\r\nX: a\x01\r\n\r\n",	/* control in value */
		"GET / HTTP/1.1\r\nHost: h\r\nX\x7f: a\r\n\r\n",	/* control in name */
		"GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n",
		"GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.1 \r\nHost: h\r\n\r\n",
		"GET /\r\n\r\n",					/* HTTP/0.9 */
		"GET / HTTX/1.1\r\nHost: h\r\n\r\n",
		"GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n",
		"G(T / HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.1\r\n\r\n",				/* no Host */
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
		"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n",
		"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n",
		"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
		"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n",
		"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775808\r\n\r\n",
		"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n",
		"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
		"PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
		"PUT / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
		"\x16\x03\x01\x02\x00\x01",				/* TLS hello, early reject */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = PARSE(bad[i], &req);

		if (r != HTTP_PARSE_BAD)
			test_fail(__FILE__, __LINE__, "case %zu: got %d", i, r);
	}
	CHECK_INT(http_parse_head(nul, sizeof(nul) - 1, &req), HTTP_PARSE_BAD);
	CHECK(PARSE("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775807\r\n\r\n", &req) > 0);
	CHECK(req.content_length == INT64_MAX);
}

TEST(http_parse_error_classes)
{
	static char big[HTTP_MAX_HEAD + 2048];
	char *p;

	CHECK_INT(PARSE("GET / HTTP/2.0\r\nHost: h\r\n\r\n", &req), HTTP_PARSE_VERSION);
	CHECK_INT(PARSE("GET / HTTP/1.2\r\nHost: h\r\n\r\n", &req), HTTP_PARSE_VERSION);
	CHECK_INT(PARSE("GET / HTTP/0.9\r\nHost: h\r\n\r\n", &req), HTTP_PARSE_VERSION);
	CHECK_INT(PARSE("PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", &req),
		  HTTP_PARSE_TE);
	CHECK_INT(PARSE("PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", &req),
		  HTTP_PARSE_TE);
	/* a target over the limit: 414 whether or not the line is complete */
	memcpy(big, "GET /", 5);
	memset(big + 5, 'a', HTTP_MAX_TARGET);
	CHECK_INT(http_parse_head(big, 5 + HTTP_MAX_TARGET, &req), HTTP_PARSE_URI_TOO_LONG);
	strcpy(big + 5 + HTTP_MAX_TARGET, " HTTP/1.1\r\nHost: h\r\n\r\n");
	CHECK_INT(PARSE(big, &req), HTTP_PARSE_URI_TOO_LONG);
	big[4 + HTTP_MAX_TARGET] = ' ';	/* exactly HTTP_MAX_TARGET long: fine */
	memmove(big + 4 + HTTP_MAX_TARGET, big + 5 + HTTP_MAX_TARGET, strlen(big + 5 + HTTP_MAX_TARGET) + 1);
	CHECK(PARSE(big, &req) > 0);
	/* a head over HTTP_MAX_HEAD: 431, complete or not */
	p = big + sprintf(big, "GET / HTTP/1.1\r\nHost: h\r\n");
	while (p < big + HTTP_MAX_HEAD)
		p += sprintf(p, "X-Pad: %01000d\r\n", 0);
	CHECK_INT(http_parse_head(big, (size_t)(p - big), &req), HTTP_PARSE_TOO_LARGE);
	strcpy(p, "\r\n");
	CHECK_INT(PARSE(big, &req), HTTP_PARSE_TOO_LARGE);
	/* too many headers */
	p = big + sprintf(big, "GET / HTTP/1.1\r\nHost: h\r\n");
	for (int i = 0; i < HTTP_MAX_HEADERS; i++)
		p += sprintf(p, "X-%d: v\r\n", i);
	strcpy(p, "\r\n");
	CHECK_INT(PARSE(big, &req), HTTP_PARSE_TOO_LARGE);
}

/* --- chunked --- */

/* Feeds in pieces of `step` bytes (0 = all at once); collects payload into out. */
static ssize_t chunked_run(const char *in, size_t len, size_t step, char *out, size_t *out_len,
			   bool *done)
{
	struct http_chunked ch;
	size_t pos = 0, avail = 0;

	http_chunked_init(&ch);
	*out_len = 0;
	*done = false;
	while (pos < len && !*done) {
		const char *run;
		size_t run_len;
		ssize_t r;

		if (avail <= pos)
			avail = step && pos + step < len ? pos + step : len;
		r = http_chunked_feed(&ch, in + pos, avail - pos, &run, &run_len, done);
		if (r < 0)
			return -1;
		memcpy(out + *out_len, run ? run : "", run_len);
		*out_len += run_len;
		pos += (size_t)r;
		if (r == 0 && !*done && avail == len)
			break;
	}
	return (ssize_t)pos;
}

TEST(http_chunked_basic_and_bytewise)
{
	const char *s = "5\r\nhello\r\n6;name=val;x\r\n world\r\nA \r\n0123456789\r\n"
			"0\r\nX-Trailer: t\r\nY: z\r\n\r\nNEXT";
	char out[64];
	size_t n;
	bool done;

	for (size_t step = 0; step < 4; step++) {
		CHECK_INT(chunked_run(s, strlen(s), step, out, &n, &done), strlen(s) - 4);
		CHECK(done);
		CHECK_INT(n, 21);
		CHECK_MEM(out, "hello world0123456789", 21);
	}
	CHECK_INT(chunked_run("0\r\n\r\n", 5, 1, out, &n, &done), 5);
	CHECK(done && n == 0);
}

TEST(http_chunked_after_done)
{
	struct http_chunked ch;
	const char *run;
	size_t run_len;
	bool done;

	http_chunked_init(&ch);
	CHECK_INT(http_chunked_feed(&ch, "0\r\n\r\nGET", 8, &run, &run_len, &done), 5);
	CHECK(done);
	CHECK_INT(http_chunked_feed(&ch, "GET", 3, &run, &run_len, &done), 0);
	CHECK(done && run_len == 0);
}

TEST(http_chunked_malformed)
{
	static const char *bad[] = {
		"\r\nhello\r\n0\r\n\r\n",		/* no size */
		"g\r\n",
		"5\nhello\r\n",				/* LF only */
		"5\r\nhelloX\r\n",			/* missing CRLF after data */
		"5\r\nhello\n0\r\n\r\n",
		"5 5\r\n",
		"-5\r\n",
		"0x5\r\n",
		"10000000000000000\r\n",		/* 2^64 */
		"8000000000000000\r\n",			/* > INT64_MAX */
		"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF\r\n",
		"5;a\x01\r\n",				/* control in extension */
		"0\r\nX: a\x01\r\n\r\n",		/* control in trailer */
		"0\r\nX: a\rb\r\n\r\n",
		"0\r\n\rx",
	};
	char out[64];
	size_t n;
	bool done;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		for (size_t step = 0; step < 2; step++)
			if (chunked_run(bad[i], strlen(bad[i]), step, out, &n, &done) != -1)
				test_fail(__FILE__, __LINE__, "case %zu step %zu accepted", i, step);
}

TEST(http_chunked_limits)
{
	static char line[8192];
	struct http_chunked ch;
	const char *run;
	size_t run_len;
	bool done;

	/* 7fffffffffffffff is the largest size accepted; leading zeros are fine */
	http_chunked_init(&ch);
	CHECK_INT(http_chunked_feed(&ch, "0007fffffffffffffff\r\nab", 23, &run, &run_len, &done), 23);
	CHECK(run_len == 2 && !done);
	CHECK(ch.remaining == (uint64_t)INT64_MAX - 2);
	/* an endless extension, fed in pieces, is cut at the line limit */
	http_chunked_init(&ch);
	memset(line, 'a', sizeof(line));
	line[0] = '1';
	line[1] = ';';
	CHECK_INT(http_chunked_feed(&ch, line, 2000, &run, &run_len, &done), 2000);
	CHECK_INT(http_chunked_feed(&ch, line + 2000, sizeof(line) - 2000, &run, &run_len, &done), -1);
	/* trailers too */
	http_chunked_init(&ch);
	memcpy(line, "0\r\nX:", 5);
	memset(line + 5, 'v', sizeof(line) - 5);
	CHECK_INT(http_chunked_feed(&ch, line, sizeof(line), &run, &run_len, &done), -1);
}

/* --- the server, over loopback --- */

#define ECHO_MAX	(256 * 1024)
#define STREAM_LEN	300000
#define CLIENT_BUF	(2 * 1024 * 1024)
#define CLIENT_WAIT_MS	3000	/* a receive that takes longer is a failure */

struct echo {			/* the per-connection handler state (conn_udata) */
	struct http_conn *c;
	struct http_req *req;
	size_t len, sent;
	char body[ECHO_MAX];
};

struct tsrv {
	struct http_server *srv;
	struct workq *wq;
	pthread_t th;
	int port, run_rc;
};

static char pattern[STREAM_LEN];
static atomic_int stream_done_calls, stream_done_err;

static void respond_echo(struct echo *e, int status)
{
	http_resp_status(e->c, status);
	http_resp_header(e->c, "X-Echo", "yes");
	http_resp_headerf(e->c, "X-Path", "%.*s", (int)e->req->path_len, e->req->path);
	http_resp_body(e->c, e->body, e->len);
	http_resp_send(e->c);
}

static int echo_data(void *ctx, const char *buf, size_t len)
{
	struct echo *e = ctx;

	if (e->len + len > ECHO_MAX)
		return -1;
	memcpy(e->body + e->len, buf, len);
	e->len += len;
	return 0;
}

static void echo_end(void *ctx, int err)
{
	struct echo *e = ctx;

	if (err) {
		e->len = 0;
		respond_echo(e, 400);
	} else {
		respond_echo(e, 200);
	}
}

static ssize_t stream_send(void *ctx, int sock, size_t max)
{
	struct echo *e = ctx;
	size_t n = STREAM_LEN - e->sent;
	ssize_t r;

	if (n > max)
		n = max;
	if (n > 70000)
		n = 70000;	/* several calls, like sendfile in slices */
	r = send(sock, pattern + e->sent, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (r < 0)
		return -errno;
	e->sent += (size_t)r;
	return r;
}

static void stream_done(void *ctx, int err)
{
	(void)ctx;
	atomic_store(&stream_done_err, err);
	atomic_fetch_add(&stream_done_calls, 1);
}

static void async_respond(struct http_conn *c, void *arg)
{
	http_resp_status(c, 200);
	http_resp_bodyf(c, "async %s", (const char *)arg);
	http_resp_send(c);
}

static void async_job(void *arg)
{
	struct http_conn *c = arg;

	usleep(20 * 1000);
	if (http_conn_post(c, async_respond, "done") < 0)
		abort();
}

static bool path_is(const struct http_req *r, const char *p)
{
	return r->path_len == strlen(p) && !memcmp(r->path, p, r->path_len);
}

static void on_request(struct http_conn *c, struct http_req *r, void *ud)
{
	struct echo *e = http_conn_udata(c);
	struct http_body_sink sink = { echo_data, echo_end, e };
	struct http_body_source src = { stream_send, stream_done, e };

	e->c = c;
	e->req = r;
	e->len = e->sent = 0;
	if (path_is(r, "/stream")) {
		http_resp_status(c, 200);
		http_resp_stream(c, STREAM_LEN, &src);
	} else if (path_is(r, "/async")) {
		if (workq_submit(ud, async_job, c) < 0)
			abort();
	} else if (path_is(r, "/noread")) {
		http_resp_status(c, 403);
		http_resp_send(c);
	} else if (path_is(r, "/big")) {
		http_resp_status(c, 200);
		for (int i = 0; i < 10; i++)
			http_resp_body(c, pattern, STREAM_LEN / 2);	/* 1.5 MB */
		http_resp_send(c);
	} else if (r->method == HTTP_HEAD) {
		http_resp_status(c, 200);
		http_resp_content_length(c, 42);
		http_resp_send(c);
	} else {
		http_conn_read_body(c, &sink);
	}
}

static void on_error(struct http_conn *c, int status, const char *reason, void *ud)
{
	(void)ud;
	http_resp_status(c, status);
	http_resp_header(c, "X-Error", reason);
	http_resp_bodyf(c, "<Error>%s</Error>", reason);
	http_resp_send(c);
}

static void *tsrv_main(void *arg)
{
	struct tsrv *t = arg;

	t->run_rc = http_server_run(t->srv);
	return NULL;
}

/* cfg may override timeouts/limits; listen, handlers and udata are filled in here. */
static int tsrv_start(struct tsrv *t, struct http_server_config *cfg)
{
	const char *addr;

	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < STREAM_LEN; i++)
		pattern[i] = (char)('a' + i * 7 % 26);
	memset(t, 0, sizeof(*t));
	if (workq_new(2, "twq", &t->wq) < 0)
		return -1;
	cfg->listen = "127.0.0.1:0";
	cfg->threads = cfg->threads ? cfg->threads : 2;
	cfg->conn_udata_size = sizeof(struct echo);
	cfg->on_request = on_request;
	cfg->on_error = on_error;
	cfg->ud = t->wq;
	if (http_server_new(cfg, &t->srv) < 0 || http_server_listen(t->srv) < 0)
		return -1;
	addr = http_server_addr(t->srv);
	if (strncmp(addr, "127.0.0.1:", 10) != 0)
		return -1;
	t->port = atoi(addr + 10);
	return pthread_create(&t->th, NULL, tsrv_main, t) == 0 && t->port > 0 ? 0 : -1;
}

static int tsrv_stop(struct tsrv *t, int drain_ms)
{
	http_server_stop(t->srv, drain_ms);
	pthread_join(t->th, NULL);
	workq_free(t->wq);
	http_server_free(t->srv);
	return t->run_rc;
}

struct client {
	int fd;
	size_t len;
	char buf[CLIENT_BUF];
};

struct resp {
	int status;
	char head[4096];
	size_t body_len;
	const char *body;	/* into a static buffer, valid until the next read */
};

static struct client *client_new(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { CLIENT_WAIT_MS / 1000, 0 };
	struct client *cl = calloc(1, sizeof(*cl));
	int one = 1;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cl->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(cl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(cl->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(cl->fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		close(cl->fd);
		free(cl);
		return NULL;
	}
	return cl;
}

static void client_free(struct client *cl)
{
	if (cl) {
		close(cl->fd);
		free(cl);
	}
}

static int client_send(struct client *cl, const char *s, size_t len)
{
	while (len) {
		ssize_t n = send(cl->fd, s, len, MSG_NOSIGNAL);

		if (n <= 0)
			return -1;
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

#define SEND(cl, s) client_send((cl), (s), strlen(s))

/* Waits until at least n bytes are buffered; 0 on EOF/timeout before that. */
static int client_fill(struct client *cl, size_t n)
{
	while (cl->len < n) {
		ssize_t r = recv(cl->fd, cl->buf + cl->len, sizeof(cl->buf) - cl->len, 0);

		if (r <= 0)
			return 0;
		cl->len += (size_t)r;
	}
	return 1;
}

static void client_consume(struct client *cl, size_t n)
{
	memmove(cl->buf, cl->buf + n, cl->len - n);
	cl->len -= n;
}

static const char *hdr_val(const struct resp *r, const char *name)
{
	static char val[256];
	char key[64];
	const char *p, *e;

	snprintf(key, sizeof(key), "\r\n%s: ", name);
	if (!(p = strstr(r->head, key)))
		return NULL;
	p += strlen(key);
	e = strstr(p, "\r\n");
	snprintf(val, sizeof(val), "%.*s", (int)(e - p), p);
	return val;
}

/* Reads one response; for HEAD requests no body is expected whatever Content-Length says. */
static int read_resp(struct client *cl, struct resp *r, bool head_req)
{
	static char body[CLIENT_BUF];
	const char *end, *cl_hdr;
	size_t hlen;

	memset(r, 0, sizeof(*r));
	for (;;) {
		cl->buf[cl->len] = 0;
		if (cl->len && (end = memmem(cl->buf, cl->len, "\r\n\r\n", 4)))
			break;
		if (!client_fill(cl, cl->len + 1))
			return -1;
	}
	hlen = (size_t)(end + 4 - cl->buf);
	if (hlen >= sizeof(r->head))
		return -1;
	memcpy(r->head, cl->buf, hlen);
	if (sscanf(r->head, "HTTP/1.1 %d ", &r->status) != 1)
		return -1;
	cl_hdr = hdr_val(r, "Content-Length");
	r->body_len = head_req || !cl_hdr ? 0 : strtoul(cl_hdr, NULL, 10);
	if (!client_fill(cl, hlen + r->body_len))
		return -1;
	memcpy(body, cl->buf + hlen, r->body_len);
	body[r->body_len] = 0;
	r->body = body;
	client_consume(cl, hlen + r->body_len);
	return 0;
}

/* done() runs on the server thread just after the last byte went out: give it a moment. */
static int wait_calls(atomic_int *v, int want)
{
	for (int i = 0; i < 1000 && atomic_load(v) < want; i++)
		usleep(1000);
	return atomic_load(v);
}

/* True when the server closed the connection (no further bytes). */
static bool client_eof(struct client *cl)
{
	char b;

	return cl->len == 0 && recv(cl->fd, &b, 1, 0) == 0;
}

TEST(http_server_keepalive)
{
	struct http_server_config cfg = { 0 };
	struct tsrv t;
	struct client *cl;
	struct resp r;

	CHECK_INT(tsrv_start(&t, &cfg), 0);
	CHECK((cl = client_new(t.port)));
	for (int i = 0; i < 2; i++) {
		CHECK_INT(SEND(cl, "GET /a/b?x=1 HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
		CHECK_INT(read_resp(cl, &r, false), 0);
		CHECK_INT(r.status, 200);
		CHECK_STR(hdr_val(&r, "X-Path"), "/a/b");
		CHECK_STR(hdr_val(&r, "Server"), "Cairn");
		CHECK_STR(hdr_val(&r, "Content-Length"), "0");
		CHECK(hdr_val(&r, "Date") && strlen(hdr_val(&r, "Date")) == 29);
		CHECK(!hdr_val(&r, "Connection"));
	}
	/* HTTP/1.0 without keep-alive: answered, then closed */
	CHECK_INT(SEND(cl, "GET /c HTTP/1.0\r\n\r\n"), 0);
	CHECK_INT(read_resp(cl, &r, false), 0);
	CHECK_STR(hdr_val(&r, "Connection"), "close");
	CHECK(client_eof(cl));
	client_free(cl);
	CHECK_INT(tsrv_stop(&t, 0), 0);
}

TEST(http_server_pipelined)
{
	struct http_server_config cfg = { 0 };
	struct tsrv t;
	struct client *cl;
	struct resp r;

	CHECK_INT(tsrv_start(&t, &cfg), 0);
	CHECK((cl = client_new(t.port)));
	CHECK_INT(SEND(cl, "PUT /p1 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
			   "GET /p2 HTTP/1.1\r\nHost: t\r\n\r\n"
			   "HEAD /p3 HTTP/1.1\r\nHost: t\r\n\r\n"
			   "PUT /p4 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyz"), 0);
	CHECK_INT(read_resp(cl, &r, false), 0);
	CHECK_STR(hdr_val(&r, "X-Path"), "/p1");
	CHECK_STR(r.body, "hello");
	CHECK_INT(read_resp(cl, &r, false), 0);
	CHECK_STR(hdr_val(&r, "X-Path"), "/p2");
	CHECK_INT(r.body_len, 0);
	CHECK_INT(read_resp(cl, &r, true), 0);
	CHECK_STR(hdr_val(&r, "Content-Length"), "42");
	CHECK_INT(read_resp(cl, &r, false), 0);
	CHECK_STR(hdr_val(&r, "X-Path"), "/p4");
	CHECK_STR(r.body, "xyz");
	client_free(cl);
	CHECK_INT(tsrv_stop(&t, 0), 0);
}

TEST(http_server_chunked_put)
{
	struct http_server_config cfg = { 0 };
	struct tsrv t;
	struct client *cl;
	struct resp r;

	CHECK_INT(tsrv_start(&t, &cfg), 0);
	CHECK((cl = client_new(t.port)));
	CHECK_INT(SEND(cl, "PUT /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
			   "5\r\nhello\r\n"), 0);
	usleep(10 * 1000);	/* the rest in a separate segment */
	CHECK_INT(SEND(cl, "6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n"
			   "GET /after HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
	CHECK_INT(read_resp(cl, &r, false), 0);
	CHECK_INT(r.status, 200);
	CHECK_STR(r.body, "hello world");
	CHECK_INT(read_resp(cl, &r, false), 0);
	CHECK_STR(hdr_val(&r, "X-Path"), "/after");
	/* bad framing: the handler hears -EBADMSG, answers, and the connection closes */
	CHECK_INT(SEND(cl, "PUT /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
			   "5\r\nhelloXX"), 0);
	CHECK_INT(read_resp(cl, &r, false), 0);
	CHECK_INT(r.status, 400);
	CHECK_STR(hdr_val(&r, "Connection"), "close");
	CHECK(client_eof(cl));
	client_free(cl);
	CHECK_INT(tsrv_stop(&t, 0), 0);
}

TEST(http_server_expect_continue)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	struct http_server_config cfg = { 0 };
	struct tsrv t;
	struct client *cl;
	struct resp r;

	CHECK_INT(tsrv_start(&t, &cfg), 0);
	CHECK((cl = client_new(t.port)));
	CHECK_INT(SEND(cl, "PUT /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
			   "Content-Length: 5\r\n\r\n"), 0);
	CHECK(client_fill(cl, sizeof(cont) - 1));
	CHECK_MEM(cl->buf, cont, sizeof(cont) - 1);
	client_consume(cl, sizeof(cont) - 1);
	CHECK_INT(SEND(cl, "hello"), 0);
	CHECK_INT(read_resp(cl, &r, false), 0);
	CHECK_INT(r.status, 200);
	CHECK_STR(r.body, "hello");
	/* answered without reading: no 100, and the connection closes */
	CHECK_INT(SEND(cl, "PUT /noread HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
			   "Content-Length: 5\r\n\r\n"), 0);
	CHECK_INT(read_resp(cl, &r, false), 0);
	CHECK_INT(r.status, 403);
	CHECK_STR(hdr_val(&r, "Connection"), "close");
	CHECK(client_eof(cl));
	client_free(cl);
	CHECK_INT(tsrv_stop(&t, 0), 0);
}

TEST(http_server_bad_requests)
{
	static const struct { const char *req; int status; const char *reason; } cases[] = {
		{ "GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505, "HttpVersionNotSupported" },
		{ "GET / HTTP/1.1\r\nHost : t\r\n\r\n", 400, "BadRequest" },
		{ "PUT / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "NotImplemented" },
		{ "\x16\x03\x01", 400, "BadRequest" },
	};
	static char big[HTTP_MAX_HEAD + 64];
	struct http_server_config cfg = { 0 };
	struct tsrv t;
	struct client *cl;
	struct resp r;

	CHECK_INT(tsrv_start(&t, &cfg), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK((cl = client_new(t.port)));
		CHECK_INT(SEND(cl, cases[i].req), 0);
		CHECK_INT(read_resp(cl, &r, false), 0);
		CHECK_INT(r.status, cases[i].status);
		CHECK_STR(hdr_val(&r, "X-Error"), cases[i].reason);
		CHECK_STR(hdr_val(&r, "Connection"), "close");
		CHECK(strstr(r.body, cases[i].reason));
		CHECK(client_eof(cl));
		client_free(cl);
	}
	/* an endless target: 414 before the line is even complete */
	memset(big, 'a', sizeof(big) - 1);
	memcpy(big, "GET /", 5);
	CHECK((cl = client_new(t.port)));
	CHECK_INT(SEND(cl, big), 0);
	CHECK_INT(read_resp(cl, &r, false), 0);
	CHECK_INT(r.status, 414);
	client_free(cl);
	/* a head over the limit: 431 */
	CHECK((cl = client_new(t.port)));
	CHECK_INT(SEND(cl, "GET / HTTP/1.1\r\nX: "), 0);
	CHECK_INT(SEND(cl, big), 0);
	CHECK_INT(read_resp(cl, &r, false), 0);
	CHECK_INT(r.status, 431);
	client_free(cl);
	CHECK_INT(tsrv_stop(&t, 0), 0);
}

TEST(http_server_bytewise_head)
{
	const char *s = "PUT /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc";
	struct http_server_config cfg = { 0 };
	struct tsrv t;
	struct client *cl;
	struct resp r;

	CHECK_INT(tsrv_start(&t, &cfg), 0);
	CHECK((cl = client_new(t.port)));
	for (size_t i = 0; s[i]; i++) {
		CHECK_INT(client_send(cl, s + i, 1), 0);
		if (i % 16 == 0)
			usleep(1000);	/* make sure some bytes arrive on their own */
	}
	CHECK_INT(read_resp(cl, &r, false), 0);
	CHECK_INT(r.status, 200);
	CHECK_STR(hdr_val(&r, "X-Path"), "/slow");
	CHECK_STR(r.body, "abc");
	client_free(cl);
	CHECK_INT(tsrv_stop(&t, 0), 0);
}

TEST(http_server_stream_and_big)
{
	struct http_server_config cfg = { 0 };
	struct tsrv t;
	struct client *cl;
	struct resp r;

	atomic_store(&stream_done_calls, 0);
	CHECK_INT(tsrv_start(&t, &cfg), 0);
	CHECK((cl = client_new(t.port)));
	CHECK_INT(SEND(cl, "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
	CHECK_INT(read_resp(cl, &r, false), 0);
	CHECK_INT(r.status, 200);
	CHECK_INT(r.body_len, STREAM_LEN);
	CHECK_MEM(r.body, pattern, STREAM_LEN);
	CHECK_INT(wait_calls(&stream_done_calls, 1), 1);
	CHECK_INT(atomic_load(&stream_done_err), 0);
	/* HEAD of a stream: headers only, done() still called */
	CHECK_INT(SEND(cl, "HEAD /stream HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
	CHECK_INT(read_resp(cl, &r, true), 0);
	CHECK_INT(strtol(hdr_val(&r, "Content-Length"), NULL, 10), STREAM_LEN);
	/* a response bigger than the output buffer, on the same connection */
	CHECK_INT(SEND(cl, "GET /big HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
	CHECK_INT(read_resp(cl, &r, false), 0);
	CHECK_INT(r.body_len, STREAM_LEN / 2 * 10);
	CHECK_MEM(r.body + STREAM_LEN / 2 * 9, pattern, STREAM_LEN / 2);
	CHECK_INT(wait_calls(&stream_done_calls, 2), 2);
	client_free(cl);
	CHECK_INT(tsrv_stop(&t, 0), 0);
}

TEST(http_server_async_post_and_drain)
{
	struct http_server_config cfg = { 0 };
	struct tsrv t;
	struct client *cl, *idle;
	struct resp r;

	CHECK_INT(tsrv_start(&t, &cfg), 0);
	CHECK((cl = client_new(t.port)));
	CHECK((idle = client_new(t.port)));
	CHECK_INT(SEND(cl, "GET /async HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
	CHECK_INT(read_resp(cl, &r, false), 0);
	CHECK_STR(r.body, "async done");
	/* stop while a request is with a worker: it still gets its answer, then close */
	CHECK_INT(SEND(cl, "GET /async HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
	usleep(5 * 1000);
	http_server_stop(t.srv, 2000);
	CHECK(client_eof(idle));
	CHECK_INT(read_resp(cl, &r, false), 0);
	CHECK_STR(r.body, "async done");
	CHECK_STR(hdr_val(&r, "Connection"), "close");
	CHECK(client_eof(cl));
	client_free(cl);
	client_free(idle);
	CHECK_INT(tsrv_stop(&t, 0), 0);
}

TEST(http_server_timeouts)
{
	struct http_server_config cfg = { .header_timeout_ms = 200, .idle_timeout_ms = 300,
					  .io_timeout_ms = 300, .threads = 1 };
	struct tsrv t;
	struct client *cl;
	struct resp r;
	struct timespec a, b;

	CHECK_INT(tsrv_start(&t, &cfg), 0);
	clock_gettime(CLOCK_MONOTONIC, &a);
	CHECK((cl = client_new(t.port)));
	CHECK_INT(SEND(cl, "GET / HTTP/1.1\r\nHost: t\r\n"), 0);	/* never finished */
	CHECK(client_eof(cl));
	clock_gettime(CLOCK_MONOTONIC, &b);
	CHECK((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < 900);
	client_free(cl);
	/* a body that stops coming: the sink hears -ETIMEDOUT, the handler answers 400 */
	CHECK((cl = client_new(t.port)));
	CHECK_INT(SEND(cl, "PUT / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc"), 0);
	CHECK_INT(read_resp(cl, &r, false), 0);
	CHECK_INT(r.status, 400);
	CHECK_STR(hdr_val(&r, "Connection"), "close");
	client_free(cl);
	/* idle keep-alive */
	CHECK((cl = client_new(t.port)));
	CHECK_INT(SEND(cl, "GET / HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
	CHECK_INT(read_resp(cl, &r, false), 0);
	CHECK(client_eof(cl));
	client_free(cl);
	CHECK_INT(tsrv_stop(&t, 0), 0);
}

TEST(http_server_max_conns)
{
	struct http_server_config cfg = { .max_conns = 1, .threads = 1 };
	struct tsrv t;
	struct client *c1, *c2;
	struct resp r;

	CHECK_INT(tsrv_start(&t, &cfg), 0);
	CHECK((c1 = client_new(t.port)));
	CHECK_INT(SEND(c1, "GET / HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
	CHECK_INT(read_resp(c1, &r, false), 0);
	CHECK((c2 = client_new(t.port)));
	CHECK_INT(read_resp(c2, &r, false), 0);
	CHECK_INT(r.status, 503);
	CHECK(client_eof(c2));
	client_free(c2);
	/* the first one is still served */
	CHECK_INT(SEND(c1, "GET / HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
	CHECK_INT(read_resp(c1, &r, false), 0);
	CHECK_INT(r.status, 200);
	client_free(c1);
	CHECK_INT(tsrv_stop(&t, 0), 0);
}

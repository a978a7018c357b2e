/* test_tls.c — lib/tls.c and lib/http1.c over loopback: a server thread on 127.0.0.1 (an
 * ephemeral port) and a client in the test: trust and CN checks, fetching the CA for the
 * pin, mutual TLS, plain streams, timeouts, and HTTP/1.1 requests and replies, plus the
 * head parser on its own. */
#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../lib/http1.h"
#include "../../lib/pki.h"
#include "../../lib/tls.h"

struct party {
	char key[PKI_PEM_MAX], crt[PKI_PEM_MAX];
};

/* One cluster CA with a server and a node, and a foreign CA with a node of its own. */
static struct pki_world {
	struct party ca, srv, node, other_ca, rogue;
	int err;
} W;
static pthread_once_t w_once = PTHREAD_ONCE_INIT;

static int issue(struct party *ca, struct party *p, const char *cn, uint64_t serial, int server)
{
	char csr[PKI_PEM_MAX];
	int err = pki_key_new(p->key);

	if (!err)
		err = pki_csr_new(p->key, cn, csr);
	return err ? err : pki_sign(ca->key, ca->crt, csr, cn, serial, 1, server, p->crt);
}

static void world_make(void)
{
	int e = pki_key_new(W.ca.key);

	e = e ? e : pki_ca_new(W.ca.key, "cairn-ca-test", 1, W.ca.crt);
	e = e ? e : pki_key_new(W.other_ca.key);
	e = e ? e : pki_ca_new(W.other_ca.key, "cairn-ca-test", 1, W.other_ca.crt);
	e = e ? e : issue(&W.ca, &W.srv, "cairn-controller", 1, 1);
	e = e ? e : issue(&W.ca, &W.node, "node-0001", 2, PKI_CLIENT_SERVER);
	e = e ? e : issue(&W.other_ca, &W.rogue, "node-0001", 2, 0);
	W.err = e;
}

static const struct pki_world *world(void)
{
	pthread_once(&w_once, world_make);
	return W.err ? NULL : &W;
}

/* --- the server thread: accepts one connection, then echoes or answers one request --- */

enum srv_mode { SRV_ECHO, SRV_HTTP, SRV_HTTP_NO_READ };

struct srv {
	int lfd;
	char port[8];
	struct tls_server *ts;
	enum srv_mode mode;
	pthread_t th;
	/* what the server saw */
	int accept_err, req_err;
	char peer_cn[PKI_CN_MAX];
	char method[16], path[HTTP1_PATH_MAX], query[64], bearer[256], ctype[128], host[256];
	size_t body_len;
};

static void srv_echo(struct tls_conn *c)
{
	char buf[256];
	ssize_t n;

	while ((n = tls_read(c, buf, sizeof(buf))) > 0)
		if (tls_write(c, buf, (size_t)n) != 0)
			break;
}

static void srv_http(struct srv *s, struct tls_conn *c)
{
	static struct http1_srv_req r;	/* one server thread at a time */
	int err = http1_read_request(c, &r);

	s->req_err = err;
	if (err) {
		http1_reply(c, err == -EFBIG ? 413 : err == -ENOTSUP ? 411 : 400,
			    "text/plain", "no\n", 3);
	} else {
		snprintf(s->method, sizeof(s->method), "%s", r.method);
		snprintf(s->path, sizeof(s->path), "%s", r.path);
		snprintf(s->query, sizeof(s->query), "%s", r.query);
		snprintf(s->bearer, sizeof(s->bearer), "%s", r.bearer);
		snprintf(s->ctype, sizeof(s->ctype), "%s", r.ctype);
		snprintf(s->host, sizeof(s->host), "%s", r.host);
		s->body_len = r.body_len;
		http1_reply(c, r.body_len ? 200 : 404, "application/json", r.body, r.body_len);
	}
	http1_srv_req_fini(&r);
}

static void *srv_main(void *arg)
{
	struct srv *s = arg;
	struct tls_conn *c;
	int fd = accept(s->lfd, NULL, NULL);

	if (fd < 0) {
		s->accept_err = -errno;
		return NULL;
	}
	s->accept_err = tls_accept(s->ts, fd, &c);
	if (s->accept_err)
		return NULL;
	snprintf(s->peer_cn, sizeof(s->peer_cn), "%s", tls_peer_cn(c));
	if (s->mode == SRV_ECHO)
		srv_echo(c);
	else if (s->mode == SRV_HTTP)
		srv_http(s, c);
	tls_close(c);
	return NULL;
}

/* tls: the server's TLS setup (NULL: plain); client_ca: ask for client certificates. */
static int srv_start(struct srv *s, bool tls, bool client_ca, enum srv_mode mode)
{
	struct tls_server_opts o = { .timeout_ms = 5000 };

	memset(s, 0, sizeof(*s));
	s->mode = mode;
	if (tls) {
		o.cert_pem = W.srv.crt;
		o.key_pem = W.srv.key;
		o.chain_pem = W.ca.crt;
		o.client_ca_pem = client_ca ? W.ca.crt : NULL;
	}
	if (tls_server_new(&o, &s->ts) != 0)
		return -1;
	s->lfd = test_listen_any(s->port);
	if (s->lfd < 0 || pthread_create(&s->th, NULL, srv_main, s) != 0) {
		tls_server_free(s->ts);
		return -1;
	}
	return 0;
}

static void srv_join(struct srv *s)
{
	pthread_join(s->th, NULL);
	close(s->lfd);
	tls_server_free(s->ts);
}

static struct tls_client_opts client_opts(void)
{
	return (struct tls_client_opts){ .ca_pem = W.ca.crt, .peer_cn = "cairn-controller",
					 .cert_pem = W.node.crt, .key_pem = W.node.key,
					 .timeout_ms = 5000 };
}

/* Writes msg and reads its echo back. */
static int ping(struct tls_conn *c, const char *msg)
{
	char buf[64];
	size_t got = 0, n = strlen(msg);
	ssize_t r;

	if (tls_write(c, msg, n) != 0)
		return -1;
	while (got < n && (r = tls_read(c, buf + got, sizeof(buf) - got)) > 0)
		got += (size_t)r;
	return got == n && memcmp(buf, msg, n) == 0 ? 0 : -1;
}

TEST(tls_mutual_ok)
{
	struct tls_client_opts o;
	struct tls_conn *c = NULL;
	struct srv s;
	int err;

	CHECK(world() != NULL);
	o = client_opts();
	CHECK_INT(srv_start(&s, true, true, SRV_ECHO), 0);
	err = tls_connect("127.0.0.1", s.port, &o, &c);
	if (!err) {
		err = ping(c, "hello over tls");
		CHECK_STR(tls_peer_cn(c), "cairn-controller");
		CHECK(strncmp(tls_peer_addr(c), "127.0.0.1:", 10) == 0);
	}
	tls_close(c);
	srv_join(&s);
	CHECK_INT(err, 0);
	CHECK_INT(s.accept_err, 0);
	CHECK_STR(s.peer_cn, "node-0001");
}

TEST(tls_wrong_ca_rejected)
{
	struct tls_client_opts o;
	struct tls_conn *c = NULL;
	struct srv s;
	int err;

	CHECK(world() != NULL);
	o = client_opts();
	o.ca_pem = W.other_ca.crt;
	CHECK_INT(srv_start(&s, true, false, SRV_ECHO), 0);
	err = tls_connect("127.0.0.1", s.port, &o, &c);
	srv_join(&s);
	CHECK_INT(err, -EKEYREJECTED);
	CHECK(c == NULL);
	CHECK(s.accept_err < 0);
}

TEST(tls_wrong_peer_cn_rejected)
{
	struct tls_client_opts o;
	struct tls_conn *c = NULL;
	struct srv s;
	int err;

	CHECK(world() != NULL);
	o = client_opts();
	o.peer_cn = "node-0001";	/* a valid certificate of the CA, but not the server's */
	CHECK_INT(srv_start(&s, true, false, SRV_ECHO), 0);
	err = tls_connect("127.0.0.1", s.port, &o, &c);
	srv_join(&s);
	CHECK_INT(err, -EKEYREJECTED);
}

TEST(tls_fetch_ca_matches_pin)
{
	char pem[PKI_PEM_MAX], pin[PKI_PIN_HEX], want[PKI_PIN_HEX], srv_pin[PKI_PIN_HEX];
	struct srv s;
	int err;

	CHECK(world() != NULL);
	CHECK_INT(srv_start(&s, true, true, SRV_ECHO), 0);
	err = tls_fetch_ca("127.0.0.1", s.port, 5000, pem);
	srv_join(&s);
	CHECK_INT(err, 0);
	CHECK_INT(pki_pin(pem, pin), 0);
	CHECK_INT(pki_pin(W.ca.crt, want), 0);
	CHECK_INT(pki_pin(W.srv.crt, srv_pin), 0);
	CHECK_STR(pin, want);
	CHECK(strcmp(pin, srv_pin) != 0);
	CHECK_STR(pem, W.ca.crt);
}

TEST(tls_client_cert_of_other_ca_not_named)
{
	struct tls_client_opts o;
	struct tls_conn *c = NULL;
	struct srv s;
	int err;

	CHECK(world() != NULL);
	o = client_opts();
	o.cert_pem = W.rogue.crt;
	o.key_pem = W.rogue.key;
	CHECK_INT(srv_start(&s, true, true, SRV_ECHO), 0);
	err = tls_connect("127.0.0.1", s.port, &o, &c);
	if (!err)
		err = ping(c, "x");
	tls_close(c);
	srv_join(&s);
	CHECK_INT(err, 0);
	CHECK_INT(s.accept_err, 0);
	CHECK_STR(s.peer_cn, "");

	/* No client certificate at all: the same. */
	o.cert_pem = o.key_pem = NULL;
	CHECK_INT(srv_start(&s, true, true, SRV_ECHO), 0);
	err = tls_connect("127.0.0.1", s.port, &o, &c);
	tls_close(c);
	srv_join(&s);
	CHECK_INT(err, 0);
	CHECK_STR(s.peer_cn, "");
}

TEST(tls_plain_round_trip)
{
	struct tls_client_opts o = { .timeout_ms = 5000 };
	struct tls_conn *c = NULL;
	struct srv s;
	int err;

	CHECK(world() != NULL);
	CHECK_INT(srv_start(&s, false, false, SRV_ECHO), 0);
	err = tls_connect("localhost", s.port, &o, &c);
	if (!err) {
		err = ping(c, "plain");
		CHECK_STR(tls_peer_cn(c), "");
	}
	tls_close(c);
	srv_join(&s);
	CHECK_INT(err, 0);
	CHECK_INT(s.accept_err, 0);
}

TEST(tls_timeouts_and_refused)
{
	struct tls_client_opts o = { .timeout_ms = 200 };
	struct tls_conn *c = NULL;
	char port[8], pem[PKI_PEM_MAX], buf[4];
	int lfd = test_listen_any(port), err;

	CHECK(world() != NULL);
	CHECK(lfd >= 0);
	/* The kernel completes the TCP handshake; nobody ever speaks TLS. */
	o.ca_pem = W.ca.crt;
	err = tls_connect("127.0.0.1", port, &o, &c);
	CHECK_INT(err, -ETIMEDOUT);
	CHECK_INT(tls_fetch_ca("127.0.0.1", port, 200, pem), -ETIMEDOUT);
	o.ca_pem = NULL;
	err = tls_connect("127.0.0.1", port, &o, &c);
	if (!err)
		err = (int)tls_read(c, buf, sizeof(buf));
	tls_close(c);
	close(lfd);
	CHECK_INT(err, -ETIMEDOUT);
	CHECK_INT(tls_connect("127.0.0.1", port, &o, &c), -ECONNREFUSED);
}

/* The controller handshakes on several threads at once with one tls_server. */
#define PAR 4

struct par {
	struct srv *s;
	int err;
	char cn[PKI_CN_MAX];
};

static void *par_srv_main(void *arg)
{
	struct par *p = arg;
	struct tls_conn *c;
	int fd = accept(p->s->lfd, NULL, NULL);

	p->err = fd < 0 ? -errno : tls_accept(p->s->ts, fd, &c);
	if (p->err)
		return NULL;
	snprintf(p->cn, sizeof(p->cn), "%s", tls_peer_cn(c));
	srv_echo(c);
	tls_close(c);
	return NULL;
}

static void *par_cli_main(void *arg)
{
	struct tls_client_opts o = client_opts();
	struct par *p = arg;
	struct tls_conn *c;

	p->err = tls_connect("127.0.0.1", p->s->port, &o, &c);
	if (p->err)
		return NULL;
	snprintf(p->cn, sizeof(p->cn), "%s", tls_peer_cn(c));
	p->err = ping(c, "parallel");
	tls_close(c);
	return NULL;
}

TEST(tls_parallel_handshakes)
{
	struct par sp[PAR], cp[PAR];
	pthread_t st[PAR], ct[PAR];
	struct srv s;

	CHECK(world() != NULL);
	/* srv_start's own thread takes the first connection; PAR - 1 more here. */
	CHECK_INT(srv_start(&s, true, true, SRV_ECHO), 0);
	for (int i = 0; i < PAR; i++) {
		sp[i] = (struct par){ .s = &s, .err = -1 };
		cp[i] = (struct par){ .s = &s, .err = -1 };
		if (i > 0)
			pthread_create(&st[i], NULL, par_srv_main, &sp[i]);
		pthread_create(&ct[i], NULL, par_cli_main, &cp[i]);
	}
	for (int i = 0; i < PAR; i++) {
		pthread_join(ct[i], NULL);
		if (i > 0)
			pthread_join(st[i], NULL);
	}
	srv_join(&s);
	CHECK_INT(s.accept_err, 0);
	CHECK_STR(s.peer_cn, "node-0001");
	for (int i = 0; i < PAR; i++) {
		CHECK_INT(cp[i].err, 0);
		CHECK_STR(cp[i].cn, "cairn-controller");
		if (i > 0) {
			CHECK_INT(sp[i].err, 0);
			CHECK_STR(sp[i].cn, "node-0001");
		}
	}
}

/* --- HTTP/1.1 --- */

TEST(tls_http1_round_trip)
{
	static const char body[] = "{\"token\": \"t\"}";
	struct http1_req q = { .method = "POST", .host = "ctl", .path = "/v1/nodes/a%20b?x=1&y",
			       .ctype = "application/json", .body = body,
			       .body_len = sizeof(body) - 1, .bearer = "s3cr3t" };
	struct tls_client_opts o;
	struct http1_resp resp = { 0 };
	struct tls_conn *c = NULL;
	struct srv s;
	int err;

	CHECK(world() != NULL);
	o = client_opts();
	CHECK_INT(srv_start(&s, true, true, SRV_HTTP), 0);
	err = tls_connect("127.0.0.1", s.port, &o, &c);
	if (!err)
		err = http1_call(c, &q, &resp);
	tls_close(c);
	srv_join(&s);
	CHECK_INT(err, 0);
	CHECK_INT(s.req_err, 0);
	CHECK_STR(s.method, "POST");
	CHECK_STR(s.path, "/v1/nodes/a b");
	CHECK_STR(s.query, "x=1&y");
	CHECK_STR(s.bearer, "s3cr3t");
	CHECK_STR(s.ctype, "application/json");
	CHECK_STR(s.host, "ctl");
	CHECK_STR(s.peer_cn, "node-0001");
	CHECK_INT(resp.status, 200);
	CHECK_STR(resp.ctype, "application/json");
	CHECK_INT(resp.body_len, sizeof(body) - 1);
	CHECK(resp.body && strcmp(resp.body, body) == 0);
	free(resp.body);
}

TEST(tls_http1_get_without_body)
{
	struct http1_req q = { .method = "GET", .host = "ctl", .path = "/v1/nodes" };
	struct tls_client_opts o = { .timeout_ms = 5000 };
	struct http1_resp resp = { 0 };
	struct tls_conn *c = NULL;
	struct srv s;
	int err;

	CHECK(world() != NULL);
	CHECK_INT(srv_start(&s, false, false, SRV_HTTP), 0);
	err = tls_connect("127.0.0.1", s.port, &o, &c);
	if (!err)
		err = http1_call(c, &q, &resp);
	tls_close(c);
	srv_join(&s);
	CHECK_INT(err, 0);
	CHECK_INT(s.req_err, 0);
	CHECK_STR(s.query, "");
	CHECK_STR(s.bearer, "");
	CHECK_INT(resp.status, 404);
	CHECK(resp.body && resp.body_len == 0 && resp.body[0] == '\0');
	free(resp.body);
}

TEST(tls_http1_oversize_413)
{
	struct http1_req q = { .method = "PUT", .host = "ctl", .path = "/big",
			       .body_len = HTTP1_BODY_MAX + 1 };
	struct tls_client_opts o;
	struct http1_resp resp = { 0 };
	struct tls_conn *c = NULL;
	char *big = calloc(1, q.body_len);
	struct srv s;
	int err;

	CHECK(world() != NULL && big);
	q.body = big;
	o = client_opts();
	if (srv_start(&s, true, true, SRV_HTTP) != 0) {
		free(big);
		CHECK(0);
	}
	err = tls_connect("127.0.0.1", s.port, &o, &c);
	if (!err)
		err = http1_call(c, &q, &resp);
	tls_close(c);
	srv_join(&s);
	free(big);
	CHECK_INT(err, 0);
	CHECK_INT(s.req_err, -EFBIG);
	CHECK_INT(resp.status, 413);
	CHECK_STR(resp.body, "no\n");
	free(resp.body);
}

TEST(tls_http1_reply_too_big_for_client)
{
	struct http1_req q = { .method = "GET", .host = "h", .path = "/" };
	struct tls_client_opts o = { .timeout_ms = 5000 };
	struct http1_resp resp = { 0 };
	struct tls_conn *c = NULL;
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 1048577\r\n\r\n";
	char port[8];
	int lfd = test_listen_any(port), fd = -1, err;

	CHECK(lfd >= 0);
	err = tls_connect("127.0.0.1", port, &o, &c);
	if (!err)
		fd = accept(lfd, NULL, NULL);
	if (fd >= 0 && write(fd, head, sizeof(head) - 1) == (ssize_t)(sizeof(head) - 1))
		err = http1_call(c, &q, &resp);
	tls_close(c);
	if (fd >= 0)
		close(fd);
	close(lfd);
	CHECK_INT(err, -EFBIG);
	CHECK(resp.body == NULL);
}

static int head(const char *text, bool request, struct http1_head *h)
{
	static char buf[1024];
	size_t n = strlen(text);

	memcpy(buf, text, n + 1);
	return http1_parse_head(buf, n, request, h);
}

TEST(tls_http1_parse_head)
{
	struct http1_head h;

	CHECK_INT(head("GET /a?b HTTP/1.1\r\nHost: x\r\nContent-Length:  12 \r\n"
		       "content-type: text/plain\r\nAuthorization: Bearer t\r\n"
		       "Expect: 100-continue\r\n\r\n", true, &h), 0);
	CHECK_STR(h.method, "GET");
	CHECK_STR(h.target, "/a?b");
	CHECK_INT(h.content_length, 12);
	CHECK_STR(h.ctype, "text/plain");
	CHECK_STR(h.authorization, "Bearer t");
	CHECK_STR(h.host, "x");
	CHECK(h.expect_continue && !h.transfer_encoding);
	CHECK_INT(head("HTTP/1.1 404 Not Found\r\n\r\n", false, &h), 0);
	CHECK_INT(h.status, 404);
	CHECK_INT(h.content_length, -1);
	CHECK_INT(head("HTTP/1.0 200\r\n\r\n", false, &h), 0);
	CHECK_INT(head("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", true, &h), 0);
	CHECK(h.transfer_encoding);
}

TEST(tls_http1_parse_head_malformed)
{
	static const char *bad_req[] = {
		"GET / HTTP/1.1\r\n", "GET / HTTP/1.1\n\n", "GET /  HTTP/1.1\r\n\r\n",
		"GET / HTTP/2.0\r\n\r\n", "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
		"GET / HTTP/1.1\r\n x: y\r\n\r\n", "GET / HTTP/1.1\r\nx\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 1234567890123456789\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", "GET / HTTP/1.1\r\nA: b\nc: d\r\n\r\n",
		"G@T / HTTP/1.1\r\n\r\n", " GET / HTTP/1.1\r\n\r\n", "GET /\x7f HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\nA: \x01\r\n\r\n", "GET / HTTP/1.1\r\n\r\n\r\n", "\r\n\r\n",
		"GET / HTTP/1.1\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n",
	};
	static const char *bad_resp[] = {
		"HTTP/1.1 99 x\r\n\r\n", "HTTP/1.1 600 x\r\n\r\n", "HTTP/1.1 2000\r\n\r\n",
		"HTTP/1.1  200\r\n\r\n", "HTTP/1.2 200 OK\r\n\r\n", "HTTP/1.1 200 O\x01K\r\n\r\n",
		"HTTP/1.1 20x\r\n\r\n",
	};
	struct http1_head h;

	for (size_t i = 0; i < sizeof(bad_req) / sizeof(bad_req[0]); i++) {
		if (head(bad_req[i], true, &h) != -EPROTO) {
			test_fail(__FILE__, __LINE__, "accepted bad request head #%zu", i);
			return;
		}
	}
	for (size_t i = 0; i < sizeof(bad_resp) / sizeof(bad_resp[0]); i++) {
		if (head(bad_resp[i], false, &h) != -EPROTO) {
			test_fail(__FILE__, __LINE__, "accepted bad reply head #%zu", i);
			return;
		}
	}
}

TEST(tls_http1_split_target)
{
	char t[64], path[16];
	const char *q;

	strcpy(t, "/v1/nodes/n%2D1?a=%20");
	CHECK_INT(http1_split_target(t, path, sizeof(path), &q), 0);
	CHECK_STR(path, "/v1/nodes/n-1");
	CHECK_STR(q, "a=%20");
	strcpy(t, "/a%00b");
	CHECK_INT(http1_split_target(t, path, sizeof(path), &q), -EPROTO);
	strcpy(t, "/a%0ab");
	CHECK_INT(http1_split_target(t, path, sizeof(path), &q), -EPROTO);
	strcpy(t, "/a%zz");
	CHECK_INT(http1_split_target(t, path, sizeof(path), &q), -EPROTO);
	strcpy(t, "http://h/a");
	CHECK_INT(http1_split_target(t, path, sizeof(path), &q), -EPROTO);
	strcpy(t, "/0123456789abcde");			/* 16 bytes: no room for the NUL */
	CHECK_INT(http1_split_target(t, path, sizeof(path), &q), -EPROTO);
	strcpy(t, "/0123456789abcd");
	CHECK_INT(http1_split_target(t, path, sizeof(path), &q), 0);
}

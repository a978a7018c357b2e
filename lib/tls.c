/* tls.c — TLS 1.2 with mbedtls 2.28: blocking streams for the control plane (and the plain
 * TCP streams behind the same calls), driven with poll() deadlines in our own bio callbacks;
 * and non-blocking server sessions for an event loop (the S3 listener). mbedtls is built
 * without MBEDTLS_THREADING_C for the image, so every blocking connection owns its DRBG,
 * ssl config and context, and a server shares only keys and certificates parsed once, made
 * read-only before any thread can use them (see ecp_warm); an event loop owns all of it. */
#include "tls.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "log.h"

#define TLS_TIMEOUT_MS		10000
#define TLS_LINGER_MS		2000		/* a server waits this long for the client's end */
#define TLS_LINGER_BYTES	(4 << 20)	/* ... and discards at most this much of it */
#define TLS_ADDR_MAX		64

static const int tls_suites[] = {
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	0
};

struct tls_conn {
	int fd;
	bool tls, server, handshaken, broken;
	int timeout_ms;
	int64_t deadline;		/* CLOCK_MONOTONIC ms: the current operation's end */
	int io_err;			/* errno of the last failed socket call in a bio */
	mbedtls_entropy_context ent;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_ssl_config conf;
	mbedtls_ssl_context ssl;
	mbedtls_x509_crt ca, own;	/* client side: its trust anchor and certificate */
	mbedtls_pk_context own_key;
	char peer_cn[PKI_CN_MAX];
	char peer_addr[TLS_ADDR_MAX];
};

struct tls_server {
	bool tls, client_auth;
	int timeout_ms;
	mbedtls_x509_crt chain;		/* the server's certificate, then chain_pem */
	mbedtls_pk_context key;
	mbedtls_x509_crt client_ca;
};

/* --- sockets with deadlines --- */

static void fd_close(int fd, const char *peer)
{
	if (close(fd) != 0)
		log_warn("tls_close_failed peer=%s", peer);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool tls_idle_ok(const struct tls_conn *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };

	return c->fd >= 0 && poll(&p, 1, 0) == 0;
}

void tls_set_timeout(struct tls_conn *c, int ms)
{
	c->timeout_ms = ms > 0 ? ms : TLS_TIMEOUT_MS;
}

static void deadline_in(struct tls_conn *c, int ms)
{
	c->deadline = now_ms() + ms;
	c->io_err = 0;
}

static int wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	int64_t left;
	int n;

	for (;;) {
		left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&p, 1, (int)(left > INT32_MAX ? INT32_MAX : left));
		if (n > 0)
			return 0;	/* ready, or an error the next call reports */
		if (n == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

static ssize_t raw_send(struct tls_conn *c, const void *buf, size_t len)
{
	ssize_t n;
	int err;

	for (;;) {
		n = send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		err = wait_fd(c->fd, POLLOUT, c->deadline);
		if (err)
			return err;
	}
}

static ssize_t raw_recv(struct tls_conn *c, void *buf, size_t len)
{
	ssize_t n;
	int err;

	for (;;) {
		n = recv(c->fd, buf, len, MSG_DONTWAIT);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		err = wait_fd(c->fd, POLLIN, c->deadline);
		if (err)
			return err;
	}
}

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
	struct tls_conn *c = ctx;
	ssize_t n = raw_send(c, buf, len);

	if (n < 0) {
		c->io_err = (int)-n;
		return MBEDTLS_ERR_NET_SEND_FAILED;
	}
	return (int)n;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
	struct tls_conn *c = ctx;
	ssize_t n = raw_recv(c, buf, len);

	if (n < 0) {
		c->io_err = (int)-n;
		return MBEDTLS_ERR_NET_RECV_FAILED;
	}
	return (int)n;
}

/* The one place mbedtls errors become errnos. */
static int tls_err(struct tls_conn *c, int ret)
{
	c->broken = true;
	if (c->io_err)
		return -c->io_err;
	switch (ret) {
	case MBEDTLS_ERR_X509_CERT_VERIFY_FAILED:
		return -EKEYREJECTED;
	case MBEDTLS_ERR_SSL_CONN_EOF:
		return -ECONNRESET;	/* the peer left without close_notify */
	case MBEDTLS_ERR_SSL_ALLOC_FAILED:
		return -ENOMEM;
	default:
		return -EPROTO;
	}
}

static void addr_format(const struct sockaddr *sa, socklen_t len, char out[TLS_ADDR_MAX])
{
	char host[INET6_ADDRSTRLEN], serv[8];	/* numeric: they fit, with "[]:" */

	if (getnameinfo(sa, len, host, sizeof(host), serv, sizeof(serv),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(out, TLS_ADDR_MAX, "?");
	else if (sa->sa_family == AF_INET6)
		snprintf(out, TLS_ADDR_MAX, "[%s]:%s", host, serv);
	else
		snprintf(out, TLS_ADDR_MAX, "%s:%s", host, serv);
}

static int connect_one(const struct addrinfo *ai, int64_t deadline, int *out)
{
	int fd, err = 0, one = 1;
	socklen_t len = sizeof(err);

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
	if (fd < 0)
		return -errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		err = errno == EINPROGRESS ? wait_fd(fd, POLLOUT, deadline) : -errno;
		if (!err && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err > 0)
			err = -err;
	}
	if (err) {
		fd_close(fd, "-");
		return err == -ENETUNREACH ? -EHOSTUNREACH : err;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));	/* best effort */
	*out = fd;
	return 0;
}

/* Tries each address of host:port until one connects, within c's deadline. */
static int tcp_connect(struct tls_conn *c, const char *host, const char *port)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res, *ai;
	int err = -EHOSTUNREACH;

	if (getaddrinfo(host, port, &hints, &res) != 0)
		return -EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next) {
		err = connect_one(ai, c->deadline, &c->fd);
		if (!err) {
			addr_format(ai->ai_addr, ai->ai_addrlen, c->peer_addr);
			break;
		}
		if (err == -ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	return err;
}

/* --- connections --- */

static struct tls_conn *conn_new(int fd, int timeout_ms)
{
	struct tls_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->fd = fd;
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : TLS_TIMEOUT_MS;
	mbedtls_entropy_init(&c->ent);
	mbedtls_ctr_drbg_init(&c->drbg);
	mbedtls_ssl_config_init(&c->conf);
	mbedtls_ssl_init(&c->ssl);
	mbedtls_x509_crt_init(&c->ca);
	mbedtls_x509_crt_init(&c->own);
	mbedtls_pk_init(&c->own_key);
	return c;
}

/* Frees without a goodbye: for connections that failed. */
static void conn_free(struct tls_conn *c)
{
	mbedtls_ssl_free(&c->ssl);
	mbedtls_ssl_config_free(&c->conf);
	mbedtls_ctr_drbg_free(&c->drbg);
	mbedtls_entropy_free(&c->ent);
	mbedtls_x509_crt_free(&c->ca);
	mbedtls_x509_crt_free(&c->own);
	mbedtls_pk_free(&c->own_key);
	if (c->fd >= 0)
		fd_close(c->fd, tls_peer_addr(c));
	free(c);
}

/* The ssl config every stream starts from: TLS 1.2, ECDHE-ECDSA AEAD suites, own DRBG. */
static int conf_init(struct tls_conn *c, int endpoint)
{
	static const char pers[] = "cairn-tls";

	if (mbedtls_ctr_drbg_seed(&c->drbg, mbedtls_entropy_func, &c->ent,
				  (const unsigned char *)pers, sizeof(pers) - 1) != 0)
		return -EIO;
	if (mbedtls_ssl_config_defaults(&c->conf, endpoint, MBEDTLS_SSL_TRANSPORT_STREAM,
					MBEDTLS_SSL_PRESET_DEFAULT) != 0)
		return -ENOMEM;
	mbedtls_ssl_conf_min_version(&c->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
				     MBEDTLS_SSL_MINOR_VERSION_3);
	mbedtls_ssl_conf_max_version(&c->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
				     MBEDTLS_SSL_MINOR_VERSION_3);
	mbedtls_ssl_conf_ciphersuites(&c->conf, tls_suites);
	mbedtls_ssl_conf_rng(&c->conf, mbedtls_ctr_drbg_random, &c->drbg);
	return 0;
}

static int ssl_start(struct tls_conn *c)
{
	if (mbedtls_ssl_setup(&c->ssl, &c->conf) != 0)
		return -ENOMEM;
	mbedtls_ssl_set_bio(&c->ssl, c, bio_send, bio_recv, NULL);
	return 0;
}

static int handshake(struct tls_conn *c)
{
	int ret;

	deadline_in(c, c->timeout_ms);
	do
		ret = mbedtls_ssl_handshake(&c->ssl);
	while (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE);
	if (ret != 0)
		return tls_err(c, ret);
	c->tls = c->handshaken = true;
	return 0;
}

/* The CN of the peer's certificate once it verified, else "". */
static void peer_cn_set(struct tls_conn *c)
{
	const mbedtls_x509_crt *crt = mbedtls_ssl_get_peer_cert(&c->ssl);
	const mbedtls_x509_name *n;

	c->peer_cn[0] = '\0';
	if (!crt || mbedtls_ssl_get_verify_result(&c->ssl) != 0)
		return;
	for (n = &crt->subject; n; n = n->next) {
		if (n->oid.p && MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0 &&
		    n->val.len < PKI_CN_MAX && !memchr(n->val.p, '\0', n->val.len)) {
			memcpy(c->peer_cn, n->val.p, n->val.len);
			c->peer_cn[n->val.len] = '\0';
			return;
		}
	}
}

static int pem_parse_crt(mbedtls_x509_crt *crt, const char *pem)
{
	return mbedtls_x509_crt_parse(crt, (const unsigned char *)pem, strlen(pem) + 1) == 0 ?
	       0 : -EINVAL;
}

static int pem_parse_key(mbedtls_pk_context *pk, const char *pem)
{
	return mbedtls_pk_parse_key(pk, (const unsigned char *)pem, strlen(pem) + 1, NULL, 0) == 0 ?
	       0 : -EINVAL;
}

/* --- client --- */

static int client_setup(struct tls_conn *c, const struct tls_client_opts *o)
{
	int err = conf_init(c, MBEDTLS_SSL_IS_CLIENT);

	if (!err)
		err = pem_parse_crt(&c->ca, o->ca_pem);
	if (err)
		return err;
	mbedtls_ssl_conf_ca_chain(&c->conf, &c->ca, NULL);
	mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
	if (o->cert_pem && o->key_pem) {
		err = pem_parse_crt(&c->own, o->cert_pem);
		if (!err)
			err = pem_parse_key(&c->own_key, o->key_pem);
		if (!err && mbedtls_ssl_conf_own_cert(&c->conf, &c->own, &c->own_key) != 0)
			err = -ENOMEM;
		if (err)
			return err;
	}
	err = ssl_start(c);
	/* mbedtls checks the CN against the "hostname" when the certificate has no SAN. */
	if (!err && o->peer_cn && mbedtls_ssl_set_hostname(&c->ssl, o->peer_cn) != 0)
		err = -EINVAL;
	return err;
}

int tls_connect(const char *host, const char *port, const struct tls_client_opts *o,
		struct tls_conn **out)
{
	struct tls_conn *c = conn_new(-1, o->timeout_ms);
	int err;

	*out = NULL;
	if (!c)
		return -ENOMEM;
	/* A host that is down or cut off never answers a SYN: a short connect deadline lets the
	 * caller move on, while a slow transfer keeps the full one. */
	deadline_in(c, o->connect_timeout_ms > 0 && o->connect_timeout_ms < c->timeout_ms ?
		    o->connect_timeout_ms : c->timeout_ms);
	err = tcp_connect(c, host, port);
	if (!err)
		deadline_in(c, c->timeout_ms);
	if (!err && o->ca_pem)
		err = client_setup(c, o);
	if (!err && o->ca_pem)
		err = handshake(c);
	if (err) {
		conn_free(c);
		return err;
	}
	if (c->tls)
		peer_cn_set(c);
	*out = c;
	return 0;
}

/* The last certificate of the peer's chain as PEM. */
static int last_cert_pem(struct tls_conn *c, char *ca_pem)
{
	const mbedtls_x509_crt *crt = mbedtls_ssl_get_peer_cert(&c->ssl);
	size_t olen;

	if (!crt)
		return -EPROTO;
	while (crt->next && crt->next->raw.p)
		crt = crt->next;
	if (mbedtls_pem_write_buffer("-----BEGIN CERTIFICATE-----\n", "-----END CERTIFICATE-----\n",
				     crt->raw.p, crt->raw.len, (unsigned char *)ca_pem,
				     PKI_PEM_MAX, &olen) != 0)
		return -ENOSPC;
	return 0;
}

int tls_fetch_ca(const char *host, const char *port, int timeout_ms, char *ca_pem)
{
	struct tls_conn *c = conn_new(-1, timeout_ms);
	int err;

	if (!c)
		return -ENOMEM;
	deadline_in(c, c->timeout_ms);
	err = tcp_connect(c, host, port);
	if (!err)
		err = conf_init(c, MBEDTLS_SSL_IS_CLIENT);
	if (!err) {
		/* Trusting nothing yet: the caller checks the pin of what we return. */
		mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_NONE);
		err = ssl_start(c);
	}
	if (!err)
		err = handshake(c);
	if (!err)
		err = last_cert_pem(c, ca_pem);
	if (err) {
		conn_free(c);
		return err;
	}
	tls_close(c);
	return 0;
}

/* --- server --- */

/* mbedtls caches the fixed-base table of an EC group on its first k*G (grp->T), from any
 * thread. Computing it here, once, makes the shared keys read-only during handshakes. */
static int ecp_warm(mbedtls_pk_context *pk, mbedtls_ctr_drbg_context *drbg)
{
	mbedtls_ecp_keypair *ec;
	mbedtls_ecp_point r;
	mbedtls_mpi one;
	int ret;

	if (!mbedtls_pk_can_do(pk, MBEDTLS_PK_ECKEY))
		return 0;
	ec = mbedtls_pk_ec(*pk);
	mbedtls_ecp_point_init(&r);
	mbedtls_mpi_init(&one);
	ret = mbedtls_mpi_lset(&one, 1);
	if (ret == 0)
		ret = mbedtls_ecp_mul(&ec->grp, &r, &one, &ec->grp.G, mbedtls_ctr_drbg_random, drbg);
	mbedtls_mpi_free(&one);
	mbedtls_ecp_point_free(&r);
	return ret == 0 ? 0 : -EIO;
}

static int server_warm(struct tls_server *s)
{
	mbedtls_entropy_context ent;
	mbedtls_ctr_drbg_context drbg;
	int err = -EIO;

	mbedtls_entropy_init(&ent);
	mbedtls_ctr_drbg_init(&drbg);
	if (mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &ent, NULL, 0) != 0)
		goto out;
	err = ecp_warm(&s->key, &drbg);
	for (mbedtls_x509_crt *crt = &s->client_ca; !err && s->client_auth && crt && crt->raw.p;
	     crt = crt->next)
		err = ecp_warm(&crt->pk, &drbg);
out:
	mbedtls_ctr_drbg_free(&drbg);
	mbedtls_entropy_free(&ent);
	return err;
}

static int server_parse(struct tls_server *s, const struct tls_server_opts *o)
{
	int err = pem_parse_crt(&s->chain, o->cert_pem);

	if (!err && o->chain_pem)
		err = pem_parse_crt(&s->chain, o->chain_pem);
	if (!err && o->key_pem)
		err = pem_parse_key(&s->key, o->key_pem);
	else if (!err)
		err = -EINVAL;
	if (!err && mbedtls_pk_check_pair(&s->chain.pk, &s->key) != 0)
		err = -EINVAL;
	if (!err && o->client_ca_pem) {
		err = pem_parse_crt(&s->client_ca, o->client_ca_pem);
		s->client_auth = true;
	}
	return err ? err : server_warm(s);
}

int tls_server_new(const struct tls_server_opts *o, struct tls_server **out)
{
	struct tls_server *s = calloc(1, sizeof(*s));
	int err = 0;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : TLS_TIMEOUT_MS;
	mbedtls_x509_crt_init(&s->chain);
	mbedtls_pk_init(&s->key);
	mbedtls_x509_crt_init(&s->client_ca);
	s->tls = o->cert_pem != NULL;
	if (s->tls)
		err = server_parse(s, o);
	if (err) {
		tls_server_free(s);
		return err;
	}
	*out = s;
	return 0;
}

void tls_server_free(struct tls_server *s)
{
	if (!s)
		return;
	mbedtls_x509_crt_free(&s->chain);
	mbedtls_pk_free(&s->key);
	mbedtls_x509_crt_free(&s->client_ca);
	free(s);
}

static int server_setup(struct tls_server *s, struct tls_conn *c)
{
	int err = conf_init(c, MBEDTLS_SSL_IS_SERVER);

	if (err)
		return err;
	/* s->chain and s->key are shared read-only; the config that points at them is ours. */
	if (mbedtls_ssl_conf_own_cert(&c->conf, &s->chain, &s->key) != 0)
		return -ENOMEM;
	if (s->client_auth) {
		mbedtls_ssl_conf_ca_chain(&c->conf, &s->client_ca, NULL);
		mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_OPTIONAL);
	} else {
		mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_NONE);
	}
	return ssl_start(c);
}

int tls_accept(struct tls_server *s, int fd, struct tls_conn **out)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct tls_conn *c = conn_new(fd, s->timeout_ms);
	int err = 0, one = 1;

	*out = NULL;
	if (!c) {
		fd_close(fd, "-");
		return -ENOMEM;
	}
	c->server = true;
	if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
		addr_format((struct sockaddr *)&ss, len, c->peer_addr);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));	/* best effort */
	if (s->tls)
		err = server_setup(s, c);
	if (!err && s->tls)
		err = handshake(c);
	if (err) {
		conn_free(c);
		return err;
	}
	if (s->client_auth)
		peer_cn_set(c);
	*out = c;
	return 0;
}

/* --- streams --- */

ssize_t tls_read(struct tls_conn *c, void *buf, size_t len)
{
	int ret;

	if (len == 0)
		return 0;
	if (len > INT32_MAX)
		len = INT32_MAX;
	deadline_in(c, c->timeout_ms);
	if (!c->tls) {
		ssize_t n = raw_recv(c, buf, len);

		if (n < 0)
			c->broken = true;
		return n;
	}
	do
		ret = mbedtls_ssl_read(&c->ssl, buf, len);
	while (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE);
	if (ret > 0)
		return ret;
	if (ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
		return 0;
	/* mbedtls says 0 for an end without close_notify: a truncation, not an end. */
	return tls_err(c, ret == 0 ? MBEDTLS_ERR_SSL_CONN_EOF : ret);
}

int tls_write(struct tls_conn *c, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	ssize_t n;
	int ret;

	deadline_in(c, c->timeout_ms);
	while (len > 0) {
		if (c->tls) {
			ret = mbedtls_ssl_write(&c->ssl, p, len);
			if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE)
				continue;
			if (ret < 0)
				return tls_err(c, ret);
			n = ret;
		} else {
			n = raw_send(c, p, len);
			if (n < 0) {
				c->broken = true;
				return (int)n;
			}
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

const char *tls_peer_cn(const struct tls_conn *c)
{
	return c->peer_cn;
}

const char *tls_peer_addr(const struct tls_conn *c)
{
	return c->peer_addr[0] ? c->peer_addr : "?";
}

/* A server that closes with unread input makes the kernel send a reset, which can destroy
 * the reply the client has not read yet (a 413 sent before the body). So it ends its side
 * and discards what the client still sends, for a bounded time. */
static void linger(struct tls_conn *c)
{
	char sink[4096];
	size_t total = 0;
	ssize_t n;

	if (shutdown(c->fd, SHUT_WR) != 0)
		return;
	deadline_in(c, c->timeout_ms < TLS_LINGER_MS ? c->timeout_ms : TLS_LINGER_MS);
	while (total < TLS_LINGER_BYTES && (n = raw_recv(c, sink, sizeof(sink))) > 0)
		total += (size_t)n;
}

void tls_close(struct tls_conn *c)
{
	if (!c)
		return;
	if (c->tls && c->handshaken && !c->broken) {
		deadline_in(c, c->timeout_ms);
		mbedtls_ssl_close_notify(&c->ssl);
	}
	if (c->server && !c->broken)
		linger(c);
	conn_free(c);
}

/* --- non-blocking server sessions --- */

#define TLS_SUITES_MAX		128

/* Preferred for the S3 listener, before the rest of mbedtls's defaults. ChaCha20-Poly1305
 * first: mbedtls 2.28's GCM multiplies one block per call, and ChaCha20 encrypted 16 KiB
 * records about twice as fast here (docs/TLS.md, "Cost, measured"). */
static const int public_suites[] = {
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
};

struct tls_loop {
	mbedtls_entropy_context ent;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_ssl_config conf;
	mbedtls_x509_crt chain;
	mbedtls_pk_context key;
	int suites[TLS_SUITES_MAX + 1];
};

struct tls_sess {
	mbedtls_ssl_context ssl;
	int fd;
	int io_err;		/* errno of the last failed socket call */
	int last_ret;		/* the mbedtls code of the last failure */
	size_t pend;		/* length of a record made but not all sent (tls_sess_send) */
	bool used, want_write, heard;
};

/* The preferred suites mbedtls supports, then its default list without repeats. */
static void suites_build(int *out)
{
	const int *def = mbedtls_ssl_list_ciphersuites();
	size_t n = 0;

	for (size_t i = 0; i < sizeof(public_suites) / sizeof(public_suites[0]); i++)
		if (mbedtls_ssl_ciphersuite_from_id(public_suites[i]))
			out[n++] = public_suites[i];
	for (; *def && n < TLS_SUITES_MAX; def++) {
		size_t j = 0;

		while (j < n && out[j] != *def)
			j++;
		if (j == n)
			out[n++] = *def;
	}
	out[n] = 0;
}

static int loop_keys(struct tls_loop *l, const char *cert_pem, const char *key_pem)
{
	int ret = mbedtls_x509_crt_parse(&l->chain, (const unsigned char *)cert_pem,
					 strlen(cert_pem) + 1);

	if (ret != 0 || !l->chain.raw.p)
		return ret == MBEDTLS_ERR_X509_ALLOC_FAILED ? -ENOMEM : -EBADMSG;
	if (pem_parse_key(&l->key, key_pem) != 0)
		return -ENOKEY;
	if (mbedtls_pk_check_pair(&l->chain.pk, &l->key) != 0)
		return -EKEYREJECTED;
	return 0;
}

static int loop_conf(struct tls_loop *l)
{
	static const char pers[] = "cairn-tls-loop";

	if (mbedtls_ctr_drbg_seed(&l->drbg, mbedtls_entropy_func, &l->ent,
				  (const unsigned char *)pers, sizeof(pers) - 1) != 0)
		return -EIO;
	if (mbedtls_ssl_config_defaults(&l->conf, MBEDTLS_SSL_IS_SERVER,
					MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT) != 0)
		return -ENOMEM;
	mbedtls_ssl_conf_min_version(&l->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
				     MBEDTLS_SSL_MINOR_VERSION_3);
	mbedtls_ssl_conf_max_version(&l->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
				     MBEDTLS_SSL_MINOR_VERSION_3);
	suites_build(l->suites);
	mbedtls_ssl_conf_ciphersuites(&l->conf, l->suites);
	mbedtls_ssl_conf_rng(&l->conf, mbedtls_ctr_drbg_random, &l->drbg);
	mbedtls_ssl_conf_authmode(&l->conf, MBEDTLS_SSL_VERIFY_NONE);
	return mbedtls_ssl_conf_own_cert(&l->conf, &l->chain, &l->key) == 0 ? 0 : -ENOMEM;
}

int tls_loop_new(const char *cert_pem, const char *key_pem, struct tls_loop **out)
{
	struct tls_loop *l = calloc(1, sizeof(*l));
	int err;

	*out = NULL;
	if (!l)
		return -ENOMEM;
	mbedtls_entropy_init(&l->ent);
	mbedtls_ctr_drbg_init(&l->drbg);
	mbedtls_ssl_config_init(&l->conf);
	mbedtls_x509_crt_init(&l->chain);
	mbedtls_pk_init(&l->key);
	err = loop_keys(l, cert_pem, key_pem);
	if (!err)
		err = loop_conf(l);
	if (err) {
		tls_loop_free(l);
		return err;
	}
	*out = l;
	return 0;
}

void tls_loop_free(struct tls_loop *l)
{
	if (!l)
		return;
	mbedtls_ssl_config_free(&l->conf);
	mbedtls_x509_crt_free(&l->chain);
	mbedtls_pk_free(&l->key);
	mbedtls_ctr_drbg_free(&l->drbg);
	mbedtls_entropy_free(&l->ent);
	free(l);
}

static int sess_bio_send(void *ctx, const unsigned char *buf, size_t len)
{
	struct tls_sess *s = ctx;
	ssize_t n;

	do
		n = send(s->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return (int)n;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return MBEDTLS_ERR_SSL_WANT_WRITE;
	s->io_err = errno;
	return MBEDTLS_ERR_NET_SEND_FAILED;
}

static int sess_bio_recv(void *ctx, unsigned char *buf, size_t len)
{
	struct tls_sess *s = ctx;
	ssize_t n;

	do
		n = recv(s->fd, buf, len, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		s->heard = true;
	if (n >= 0)
		return (int)n;	/* 0: mbedtls reports MBEDTLS_ERR_SSL_CONN_EOF */
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return MBEDTLS_ERR_SSL_WANT_READ;
	s->io_err = errno;
	return MBEDTLS_ERR_NET_RECV_FAILED;
}

int tls_sess_new(struct tls_loop *l, struct tls_sess **out)
{
	struct tls_sess *s = calloc(1, sizeof(*s));

	*out = NULL;
	if (!s)
		return -ENOMEM;
	mbedtls_ssl_init(&s->ssl);
	if (mbedtls_ssl_setup(&s->ssl, &l->conf) != 0) {
		tls_sess_free(s);
		return -ENOMEM;
	}
	s->fd = -1;
	mbedtls_ssl_set_bio(&s->ssl, s, sess_bio_send, sess_bio_recv, NULL);
	*out = s;
	return 0;
}

void tls_sess_free(struct tls_sess *s)
{
	if (!s)
		return;
	mbedtls_ssl_free(&s->ssl);
	free(s);
}

int tls_sess_start(struct tls_sess *s, int fd)
{
	if (s->used && mbedtls_ssl_session_reset(&s->ssl) != 0)
		return -ENOMEM;
	s->used = true;
	s->fd = fd;
	s->io_err = s->last_ret = 0;
	s->pend = 0;
	s->want_write = s->heard = false;
	return 0;
}

void tls_sess_end(struct tls_sess *s)
{
	if (s->used && mbedtls_ssl_session_reset(&s->ssl) == 0)
		s->used = false;
	s->fd = -1;
}

/* The one place a session's mbedtls codes become errnos. */
static int sess_err(struct tls_sess *s, int ret)
{
	if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE) {
		s->want_write = ret == MBEDTLS_ERR_SSL_WANT_WRITE;
		return -EAGAIN;
	}
	s->last_ret = ret;
	if (s->io_err)
		return -s->io_err;
	switch (ret) {
	case MBEDTLS_ERR_SSL_CONN_EOF:
	case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY:
		return -ECONNRESET;
	case MBEDTLS_ERR_SSL_ALLOC_FAILED:
		return -ENOMEM;
	default:
		return -EPROTO;
	}
}

int tls_sess_handshake(struct tls_sess *s)
{
	int ret = mbedtls_ssl_handshake(&s->ssl);

	return ret == 0 ? 0 : sess_err(s, ret);
}

bool tls_sess_handshaking(const struct tls_sess *s)
{
	return s->ssl.state != MBEDTLS_SSL_HANDSHAKE_OVER;
}

bool tls_sess_heard(const struct tls_sess *s)
{
	return s->heard;
}

bool tls_sess_wants_write(const struct tls_sess *s)
{
	return s->want_write;
}

ssize_t tls_sess_recv(struct tls_sess *s, void *buf, size_t len)
{
	int ret;

	if (len > INT32_MAX)
		len = INT32_MAX;
	ret = mbedtls_ssl_read(&s->ssl, buf, len);
	if (ret > 0)
		return ret;
	/* The server reads requests: an end without close_notify is still an end. */
	if (ret == 0 || ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || ret == MBEDTLS_ERR_SSL_CONN_EOF)
		return 0;
	return sess_err(s, ret);
}

ssize_t tls_sess_send(struct tls_sess *s, const void *buf, size_t len)
{
	int ret;

	if (len > TLS_RECORD_MAX)
		len = TLS_RECORD_MAX;
	/* mbedtls finishes the pending record and then reports the length it is given. */
	if (s->pend) {
		if (len < s->pend)
			return -EINVAL;
		len = s->pend;
	}
	if (len == 0)
		return 0;
	ret = mbedtls_ssl_write(&s->ssl, buf, len);
	if (ret == MBEDTLS_ERR_SSL_WANT_WRITE || ret == MBEDTLS_ERR_SSL_WANT_READ) {
		s->pend = len;
		return sess_err(s, ret);
	}
	s->pend = 0;
	return ret >= 0 ? ret : sess_err(s, ret);
}

int tls_sess_close_notify(struct tls_sess *s)
{
	int ret = mbedtls_ssl_close_notify(&s->ssl);

	return ret == 0 ? 0 : sess_err(s, ret);
}

void tls_sess_strerror(const struct tls_sess *s, char *buf, size_t len)
{
	char msg[128];

	if (s->io_err) {
		snprintf(buf, len, "errno=%d %s", s->io_err, strerror(s->io_err));
		return;
	}
	if (!s->last_ret) {
		snprintf(buf, len, "none");
		return;
	}
	mbedtls_strerror(s->last_ret, msg, sizeof(msg));
	snprintf(buf, len, "mbedtls=-0x%04x %s", (unsigned)-s->last_ret, msg);
}

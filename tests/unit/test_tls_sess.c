/* test_tls_sess.c — lib/tls.c's non-blocking server sessions and lib/transport.c over
 * loopback, the way an event loop drives them: a blocking tls.h client in a thread, the
 * server side in the test with poll() waits. Key checks, held decrypted bytes, 1 MiB back
 * through a small socket buffer (partial records retried), the body-source buffer path,
 * plaintext refused, plain streams. */
#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../lib/pki.h"
#include "../../lib/tls.h"
#include "../../lib/transport.h"

#define BIG	(1 << 20)

struct keypair {
	char key[PKI_PEM_MAX], crt[PKI_PEM_MAX];
};

/* A CA, the server's certificate (CN cairn-s3) and another key. */
static struct {
	struct keypair ca, srv, other;
	int err;
} K;
static pthread_once_t k_once = PTHREAD_ONCE_INIT;

static void keys_make(void)
{
	char csr[PKI_PEM_MAX];
	int e = pki_key_new(K.ca.key);

	e = e ? e : pki_ca_new(K.ca.key, "cairn-sess-ca", 1, K.ca.crt);
	e = e ? e : pki_key_new(K.srv.key);
	e = e ? e : pki_csr_new(K.srv.key, "cairn-s3", csr);
	e = e ? e : pki_sign(K.ca.key, K.ca.crt, csr, "cairn-s3", 7, 1, PKI_SERVER, K.srv.crt);
	e = e ? e : pki_key_new(K.other.key);
	K.err = e;
}

static bool keys(void)
{
	pthread_once(&k_once, keys_make);
	return K.err == 0;
}

/* --- the client thread --- */

enum cli_mode { CLI_ECHO_BIG, CLI_ONE_RECORD, CLI_PLAINTEXT, CLI_READ_BIG };

struct cli {
	char port[8];
	enum cli_mode mode;
	pthread_t th;
	int err;		/* 0 when the client saw what it expected */
};

static unsigned char pattern(size_t i)
{
	return (unsigned char)(i * 7 + i / 251);
}

static int read_all(struct tls_conn *c, unsigned char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len && (n = tls_read(c, buf + got, len - got)) > 0)
		got += (size_t)n;
	return got == len ? 0 : -EIO;
}

/* Sends BIG bytes, then reads them back (slowly at first: the server's sends block). */
static int cli_echo_big(struct tls_conn *c)
{
	unsigned char *buf = malloc(BIG);
	int err = -ENOMEM;

	if (!buf)
		return err;
	for (size_t i = 0; i < BIG; i++)
		buf[i] = pattern(i);
	err = tls_write(c, buf, BIG);
	memset(buf, 0, BIG);
	usleep(200 * 1000);
	if (!err)
		err = read_all(c, buf, BIG);
	for (size_t i = 0; !err && i < BIG; i++)
		if (buf[i] != pattern(i))
			err = -EBADMSG;
	free(buf);
	return err;
}

static int cli_read_big(struct tls_conn *c)
{
	unsigned char *buf = malloc(BIG);
	int err = buf ? read_all(c, buf, BIG) : -ENOMEM;

	for (size_t i = 0; !err && i < BIG; i++)
		if (buf[i] != pattern(i))
			err = -EBADMSG;
	free(buf);
	return err;
}

static int cli_plaintext(const char *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons((uint16_t)atoi(port)) };
	static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), err = 0;
	char buf[64];

	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1))
		err = -errno;
	while (!err && read(fd, buf, sizeof(buf)) > 0)	/* until the server closes */
		;
	close(fd);
	return err;
}

static void *cli_main(void *arg)
{
	struct cli *cl = arg;
	struct tls_client_opts o = { .ca_pem = K.ca.crt, .peer_cn = "cairn-s3", .timeout_ms = 10000 };
	struct tls_conn *c;
	char rec[10000];

	if (cl->mode == CLI_PLAINTEXT) {
		cl->err = cli_plaintext(cl->port);
		return NULL;
	}
	if ((cl->err = tls_connect("127.0.0.1", cl->port, &o, &c)) != 0)
		return NULL;
	if (cl->mode == CLI_ECHO_BIG) {
		cl->err = cli_echo_big(c);
	} else if (cl->mode == CLI_READ_BIG) {
		cl->err = cli_read_big(c);
	} else {
		memset(rec, 'r', sizeof(rec));
		cl->err = tls_write(c, rec, sizeof(rec));	/* one record */
		if (!cl->err)
			cl->err = tls_read(c, rec, 1) == 0 ? 0 : -EPROTO;	/* the server's end */
	}
	tls_close(c);
	return NULL;
}

/* --- the server side, as an event loop drives it --- */

struct srv {
	int lfd, fd;
	struct tls_loop *tl;
	struct transport t;
	int blocked;		/* -EAGAIN seen while sending */
};

/* Listens, starts the client, accepts its connection non-blocking with a small send buffer. */
static int srv_start(struct srv *s, struct cli *cl, enum cli_mode mode)
{
	int small = 4096;

	memset(s, 0, sizeof(*s));
	memset(cl, 0, sizeof(*cl));
	transport_init(&s->t);
	s->fd = -1;
	cl->mode = mode;
	if (tls_loop_new(K.srv.crt, K.srv.key, &s->tl) != 0 || (s->lfd = test_listen_any(cl->port)) < 0)
		return -1;
	if (pthread_create(&cl->th, NULL, cli_main, cl) != 0)
		return -1;
	s->fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (s->fd < 0)
		return -1;
	setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	return transport_open(&s->t, s->fd, s->tl);
}

static void srv_stop(struct srv *s, struct cli *cl)
{
	if (s->fd >= 0) {
		transport_detach(&s->t);
		shutdown(s->fd, SHUT_RDWR);
		close(s->fd);
	}
	pthread_join(cl->th, NULL);
	transport_fini(&s->t);
	tls_loop_free(s->tl);
	close(s->lfd);
}

/* Waits (at most 10 s) the way the transport's last -EAGAIN asks. */
static int srv_wait(struct srv *s)
{
	struct pollfd p = { .fd = s->fd, .events = transport_wants_write(&s->t) ? POLLOUT : POLLIN };

	return poll(&p, 1, 10000) == 1 ? 0 : -ETIMEDOUT;
}

static int srv_handshake(struct srv *s)
{
	int err;

	while ((err = transport_handshake(&s->t)) == -EAGAIN)
		if (srv_wait(s))
			return -ETIMEDOUT;
	return err;
}

static int srv_recv_all(struct srv *s, unsigned char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = transport_recv(&s->t, buf + got, len - got);

		if (n == -EAGAIN && srv_wait(s) == 0)
			continue;
		if (n <= 0)
			return n < 0 ? (int)n : -ECONNRESET;
		got += (size_t)n;
	}
	return 0;
}

static int srv_flush(struct srv *s)
{
	int err;

	while ((err = transport_flush(&s->t)) == -EAGAIN) {
		s->blocked++;
		if (srv_wait(s))
			return -ETIMEDOUT;
	}
	return err;
}

/* Sends buf through transport_writev in small uneven pieces, so that records in flight are
 * short and more bytes queue behind them (a retry must not take those). */
static int srv_send_all(struct srv *s, const unsigned char *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		struct iovec v[2] = { { (void *)(buf + off), 0 }, { 0, 0 } };
		size_t a = len - off < 700 ? len - off : 700, b = len - off - a;
		ssize_t n;

		v[0].iov_len = a;
		v[1] = (struct iovec){ (void *)(buf + off + a), b < 2000 ? b : 2000 };
		n = transport_writev(&s->t, v, 2);
		if (n == -EAGAIN) {
			s->blocked++;
			if (srv_wait(s))
				return -ETIMEDOUT;
			continue;
		}
		if (n <= 0)
			return n < 0 ? (int)n : -EIO;
		off += (size_t)n;
	}
	return srv_flush(s);
}

/* --- cases --- */

TEST(tls_sess_key_checks)
{
	struct tls_loop *l = NULL;

	CHECK(keys());
	CHECK_INT(tls_loop_new(K.srv.crt, K.srv.key, &l), 0);
	CHECK(l != NULL);
	tls_loop_free(l);
	CHECK_INT(tls_loop_new(K.srv.crt, K.other.key, &l), -EKEYREJECTED);
	CHECK(l == NULL);
	CHECK_INT(tls_loop_new(K.srv.key, K.srv.key, &l), -EBADMSG);
	CHECK_INT(tls_loop_new("", K.srv.key, &l), -EBADMSG);
	CHECK_INT(tls_loop_new(K.srv.crt, "not a key", &l), -ENOKEY);
	/* a chain: the certificate then its CA */
	{
		char chain[2 * PKI_PEM_MAX];

		snprintf(chain, sizeof(chain), "%s%s", K.srv.crt, K.ca.crt);
		CHECK_INT(tls_loop_new(chain, K.srv.key, &l), 0);
		tls_loop_free(l);
	}
}

TEST(tls_sess_echo_through_small_buffers)
{
	unsigned char *buf = malloc(BIG);
	struct srv s;
	struct cli cl;
	int err;

	CHECK(keys() && buf);
	err = srv_start(&s, &cl, CLI_ECHO_BIG);
	if (!err)
		err = srv_handshake(&s);
	if (!err)
		err = transport_handshaking(&s.t) ? -EPROTO : 0;
	if (!err)
		err = srv_recv_all(&s, buf, BIG);
	if (!err)
		err = srv_send_all(&s, buf, BIG);
	srv_stop(&s, &cl);
	free(buf);
	CHECK_INT(err, 0);
	CHECK_INT(cl.err, 0);
	CHECK(s.blocked > 0);	/* the partial-record path was taken */
}

/* A body source fills the empty write buffer whole, as the HTTP server's TLS stream does. */
TEST(tls_sess_buffer_fill_path)
{
	struct srv s;
	struct cli cl;
	size_t sent = 0;
	int err;

	CHECK(keys());
	err = srv_start(&s, &cl, CLI_READ_BIG);
	if (!err)
		err = srv_handshake(&s);
	while (!err && sent < BIG) {
		size_t room;
		unsigned char *p;

		if ((err = srv_flush(&s)))
			break;
		p = (unsigned char *)transport_space(&s.t, &room);
		if (!p || room != TRANSPORT_WBUF) {
			err = -EFAULT;
			break;
		}
		room = room < BIG - sent ? room : BIG - sent;
		for (size_t i = 0; i < room; i++)
			p[i] = pattern(sent + i);
		transport_commit(&s.t, room);
		sent += room;
		/* Not empty: no room until the flush. */
		if (transport_space(&s.t, &room) || room)
			err = -EFAULT;
	}
	if (!err)
		err = srv_flush(&s);
	srv_stop(&s, &cl);
	CHECK_INT(err, 0);
	CHECK_INT(cl.err, 0);
}

/* One 10000-byte record read 100 bytes at a time: the rest is held by the session and comes
 * without the socket being readable again. */
TEST(tls_sess_held_bytes_need_no_readiness)
{
	unsigned char buf[100];
	size_t got = 0;
	struct srv s;
	struct cli cl;
	ssize_t n = 0;
	int err;

	CHECK(keys());
	err = srv_start(&s, &cl, CLI_ONE_RECORD);
	if (!err)
		err = srv_handshake(&s);
	while (!err && got == 0) {	/* the first bytes: wait for the socket */
		n = transport_recv(&s.t, buf, sizeof(buf));
		if (n == -EAGAIN)
			err = srv_wait(&s);
		else if (n > 0)
			got = (size_t)n;
		else
			err = -EIO;
	}
	while (!err && got < 10000 && (n = transport_recv(&s.t, buf, sizeof(buf))) > 0)
		got += (size_t)n;
	if (!err)
		err = transport_shutdown(&s.t);
	srv_stop(&s, &cl);
	CHECK_INT(err, 0);
	CHECK_INT(got, 10000);
	CHECK_INT(cl.err, 0);
}

TEST(tls_sess_plaintext_refused)
{
	char msg[160];
	struct srv s;
	struct cli cl;
	int err;

	CHECK(keys());
	err = srv_start(&s, &cl, CLI_PLAINTEXT);
	if (!err)
		err = srv_handshake(&s);
	transport_strerror(&s.t, msg, sizeof(msg));
	srv_stop(&s, &cl);
	CHECK_INT(err, -EPROTO);
	CHECK(strncmp(msg, "mbedtls=-0x", 11) == 0);
	CHECK_INT(cl.err, 0);
}

TEST(tls_sess_plain_transport)
{
	struct iovec v[2] = { { "hello ", 6 }, { "world", 5 } };
	struct transport t;
	char buf[32];
	size_t room;
	int sv[2];

	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
	transport_init(&t);
	CHECK_INT(transport_open(&t, sv[0], NULL), 0);
	CHECK(!transport_is_tls(&t) && !transport_handshaking(&t));
	CHECK_INT(transport_handshake(&t), 0);
	CHECK_INT(transport_writev(&t, v, 2), 11);
	CHECK_INT(transport_flush(&t), 0);
	CHECK_INT(transport_pending(&t), 0);
	CHECK(transport_space(&t, &room) == NULL && room == 0);
	CHECK_INT(read(sv[1], buf, sizeof(buf)), 11);
	CHECK_MEM(buf, "hello world", 11);
	CHECK_INT(transport_recv(&t, buf, sizeof(buf)), -EAGAIN);
	CHECK(!transport_wants_write(&t));
	CHECK_INT(write(sv[1], "x", 1), 1);
	CHECK_INT(transport_recv(&t, buf, sizeof(buf)), 1);
	CHECK_INT(transport_shutdown(&t), 0);
	CHECK_INT(read(sv[1], buf, sizeof(buf)), 0);	/* our end arrived */
	transport_detach(&t);
	transport_fini(&t);
	close(sv[0]);
	close(sv[1]);
}

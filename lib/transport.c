/* transport.c — plain or TLS byte streams of event-loop connections (transport.h): the
 * socket calls for plain streams, tls.c's non-blocking sessions plus a write buffer for TLS. */
#include "transport.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

void transport_init(struct transport *t)
{
	memset(t, 0, sizeof(*t));
	t->fd = -1;
}

void transport_fini(struct transport *t)
{
	tls_sess_free(t->sess);
	free(t->wbuf);
	transport_init(t);
}

int transport_open(struct transport *t, int fd, struct tls_loop *tl)
{
	int err;

	t->fd = fd;
	t->tls = tl != NULL;
	t->shut = t->want_write = false;
	t->wpos = t->wlen = 0;
	if (!t->tls)
		return 0;
	if (!t->wbuf && !(t->wbuf = malloc(TRANSPORT_WBUF)))
		return -ENOMEM;
	if (!t->sess && (err = tls_sess_new(tl, &t->sess)) < 0)
		return err;
	return tls_sess_start(t->sess, fd);
}

void transport_detach(struct transport *t)
{
	if (t->tls && t->sess)
		tls_sess_end(t->sess);
	t->fd = -1;
	t->wpos = t->wlen = 0;
}

bool transport_is_tls(const struct transport *t)
{
	return t->tls;
}

bool transport_wants_write(const struct transport *t)
{
	return t->want_write;
}

/* Errors of the calls below pass through here: -EAGAIN notes which way to wait. */
static ssize_t blocked(struct transport *t, ssize_t err, bool plain_write)
{
	if (err == -EAGAIN || err == -EWOULDBLOCK) {
		t->want_write = t->tls ? tls_sess_wants_write(t->sess) : plain_write;
		return -EAGAIN;
	}
	return err;
}

int transport_handshake(struct transport *t)
{
	if (!t->tls)
		return 0;
	return (int)blocked(t, tls_sess_handshake(t->sess), false);
}

bool transport_handshaking(const struct transport *t)
{
	return t->tls && t->sess && tls_sess_handshaking(t->sess);
}

bool transport_heard(const struct transport *t)
{
	return !t->tls || tls_sess_heard(t->sess);
}

ssize_t transport_recv(struct transport *t, void *buf, size_t len)
{
	ssize_t n;

	if (t->tls)
		return blocked(t, tls_sess_recv(t->sess, buf, len), false);
	do
		n = recv(t->fd, buf, len, 0);
	while (n < 0 && errno == EINTR);
	return n >= 0 ? n : blocked(t, -errno, false);
}

int transport_flush(struct transport *t)
{
	while (t->tls && t->wpos < t->wlen) {
		ssize_t n = tls_sess_send(t->sess, t->wbuf + t->wpos, t->wlen - t->wpos);

		if (n < 0)
			return (int)blocked(t, n, true);
		t->wpos += (size_t)n;
	}
	t->wpos = t->wlen = 0;
	return 0;
}

size_t transport_pending(const struct transport *t)
{
	return t->wlen - t->wpos;
}

static ssize_t plain_writev(struct transport *t, const struct iovec *iov, int iovcnt)
{
	struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
	ssize_t n;

	do
		n = sendmsg(t->fd, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n >= 0 ? n : blocked(t, -errno, true);
}

/* Appends to the buffer behind bytes still unsent (a record in flight keeps its place). */
ssize_t transport_writev(struct transport *t, const struct iovec *iov, int iovcnt)
{
	size_t took = 0;
	int err;

	if (!t->tls)
		return plain_writev(t, iov, iovcnt);
	err = transport_flush(t);
	if (err < 0 && err != -EAGAIN)
		return err;
	for (int i = 0; i < iovcnt && t->wlen < TRANSPORT_WBUF; i++) {
		size_t n = TRANSPORT_WBUF - t->wlen;

		n = n < iov[i].iov_len ? n : iov[i].iov_len;
		memcpy(t->wbuf + t->wlen, iov[i].iov_base, n);
		t->wlen += n;
		took += n;
	}
	if (!took)
		return err;	/* -EAGAIN: full, and the flush above blocked */
	err = transport_flush(t);
	return err < 0 && err != -EAGAIN ? err : (ssize_t)took;
}

char *transport_space(struct transport *t, size_t *room)
{
	*room = t->tls && t->wlen == 0 ? TRANSPORT_WBUF : 0;
	return *room ? t->wbuf : NULL;
}

void transport_commit(struct transport *t, size_t n)
{
	t->wlen += n;
}

int transport_shutdown(struct transport *t)
{
	if (t->tls && !t->shut) {
		int err = tls_sess_close_notify(t->sess);

		if (err < 0)
			return (int)blocked(t, err, true);
		t->shut = true;
	}
	return shutdown(t->fd, SHUT_WR) < 0 ? -errno : 0;
}

void transport_strerror(const struct transport *t, char *buf, size_t len)
{
	if (t->tls && t->sess)
		tls_sess_strerror(t->sess, buf, len);
	else if (len)
		buf[0] = '\0';
}

/* transport.h — an accepted connection's byte stream for an event loop: the non-blocking
 * socket itself, or a TLS session over it (tls.h), behind one set of calls, so the HTTP
 * state machine reads and writes without caring which. Writes over TLS go through a buffer
 * owned here (records must be retried with the same bytes); plain writes go straight to the
 * socket, and only a plain stream may be handed to sendfile (transport_is_tls). */
#ifndef CAIRN_TRANSPORT_H
#define CAIRN_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "tls.h"

#define TRANSPORT_WBUF	(64 * 1024)	/* TLS write buffer: a body source fills it whole */

/* Embedded in the connection. The session and the buffer are allocated on the first TLS
 * connection and kept while the connection object is reused; transport_fini frees them. */
struct transport {
	int fd;			/* -1 when detached */
	bool tls, shut;		/* this stream is TLS; close_notify is out */
	bool want_write;	/* the last -EAGAIN waits for writability (else readability) */
	struct tls_sess *sess;
	char *wbuf;
	size_t wpos, wlen;	/* wbuf[wpos..wlen) is still to be sent */
};

void transport_init(struct transport *t);
/* Frees the session and the buffer (after transport_detach). */
void transport_fini(struct transport *t);
/* Starts a stream on the non-blocking socket fd (not owned): plain when tl is NULL, else a
 * TLS server session of that loop. 0 or -ENOMEM. */
int transport_open(struct transport *t, int fd, struct tls_loop *tl);
/* Forgets the socket (the caller closes it) and wipes the session's keys. */
void transport_detach(struct transport *t);

bool transport_is_tls(const struct transport *t);
/* After -EAGAIN from any call: true to wait for EPOLLOUT, false for EPOLLIN. */
bool transport_wants_write(const struct transport *t);
/* The TLS handshake: 0 once done (at once for plain), -EAGAIN, or an error. */
int transport_handshake(struct transport *t);
bool transport_handshaking(const struct transport *t);
/* TLS: whether the peer sent any byte yet (plain: true). */
bool transport_heard(const struct transport *t);
/* > 0 bytes, 0 at the peer's end, -EAGAIN, or -errno. Over TLS, decrypted bytes may be held
 * inside after a short read: keep reading until -EAGAIN, never wait on epoll before it. */
ssize_t transport_recv(struct transport *t, void *buf, size_t len);
/* Takes bytes from iov: the count taken (> 0), -EAGAIN, or -errno. Plain: sent. TLS: copied
 * into the write buffer, of which as much as the socket takes is sent at once. */
ssize_t transport_writev(struct transport *t, const struct iovec *iov, int iovcnt);
/* TLS: sends the write buffer: 0 once empty, -EAGAIN, -errno. Plain: 0. */
int transport_flush(struct transport *t);
size_t transport_pending(const struct transport *t);
/* TLS, with the write buffer empty (after transport_flush returned 0): room for a producer
 * to fill, TRANSPORT_WBUF bytes, then transport_commit(n) queues the n bytes written. */
char *transport_space(struct transport *t, size_t *room);
void transport_commit(struct transport *t, size_t n);
/* Ends our side: close_notify (TLS) and shutdown(SHUT_WR). 0, -EAGAIN, -errno. */
int transport_shutdown(struct transport *t);
/* The last TLS failure as text for logs ("" for plain). */
void transport_strerror(const struct transport *t, char *buf, size_t len);

#endif

/* tls.h — blocking TLS 1.2 streams over a socket with mbedtls, for the control plane (the
 * join protocol, heartbeats, nodectl): a client that trusts exactly one CA and checks the
 * peer's CN, and a server that may ask for a client certificate from the same CA. A stream
 * can also be plain TCP (tests, loopback admin), behind the same read/write calls. */
#ifndef CAIRN_TLS_H
#define CAIRN_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "pki.h"

struct tls_conn;

/* What a client trusts and presents. ca_pem NULL: plain TCP (no TLS at all). */
struct tls_client_opts {
	const char *ca_pem;		/* the only trust anchor */
	const char *peer_cn;		/* required subject CN of the server, or NULL: any */
	const char *cert_pem, *key_pem;	/* client certificate (mutual TLS), or NULL */
	int timeout_ms;			/* connect, handshake and each read/write; 0: 10 s */
	int connect_timeout_ms;		/* the TCP connect alone, if shorter; 0: timeout_ms */
};

/* Connects to host:port (numeric or name) and completes the handshake.
 * -ECONNREFUSED/-ETIMEDOUT/-EHOSTUNREACH (network), -EKEYREJECTED (certificate not from the
 * CA, or wrong CN), -EPROTO (other TLS failure). */
int tls_connect(const char *host, const char *port, const struct tls_client_opts *o,
		struct tls_conn **out);

/* Fetches the server's certificate chain WITHOUT trusting it, to check it against a pin:
 * the last certificate the server sends (its CA, PEM) into ca_pem[PKI_PEM_MAX]. The caller
 * compares pki_pin(ca_pem) with its pin before it trusts anything. */
int tls_fetch_ca(const char *host, const char *port, int timeout_ms, char *ca_pem);

struct tls_server;

struct tls_server_opts {
	const char *cert_pem, *key_pem;	/* the server's certificate and key */
	const char *chain_pem;		/* sent after cert_pem (the CA), or NULL */
	const char *client_ca_pem;	/* verify client certificates against it (optional
					 * for the client: tls_conn_peer_cn says who), or NULL */
	int timeout_ms;			/* handshake and each read/write; 0: 10 s */
};

/* Server context (keys parsed once). cert_pem NULL: plain TCP streams. Read-only once made:
 * tls_accept may run on several threads at once with the same server. */
int tls_server_new(const struct tls_server_opts *o, struct tls_server **out);
void tls_server_free(struct tls_server *s);
/* Handshakes on an accepted socket (takes ownership of fd, closes it on failure). */
int tls_accept(struct tls_server *s, int fd, struct tls_conn **out);

/* Reads up to len bytes: > 0, 0 at a clean end of stream, -ETIMEDOUT, -EPROTO, -errno.
 * Over TLS an end without close_notify (a possible truncation) is -ECONNRESET. */
ssize_t tls_read(struct tls_conn *c, void *buf, size_t len);
/* Writes all len bytes: 0 or -errno. */
int tls_write(struct tls_conn *c, const void *buf, size_t len);
/* An idle kept-alive stream still fit for a request: nothing arrived since (a peer that
 * closed or restarted has sent its FIN or reset by now). */
bool tls_idle_ok(const struct tls_conn *c);
/* The time each later read or write may take (ms): a server waiting for the next request
 * on a kept-alive connection waits longer than one in the middle of a request. */
void tls_set_timeout(struct tls_conn *c, int ms);
/* The verified peer certificate's CN ("" when none was presented or verified). */
const char *tls_peer_cn(const struct tls_conn *c);
/* The peer's address as "ip:port". */
const char *tls_peer_addr(const struct tls_conn *c);
/* Sends close_notify (when TLS), closes the socket, frees. NULL is fine. On an accepted
 * stream it first waits (at most 2 s) for the client's end, discarding unread input, so the
 * kernel does not reset the connection under a reply sent early (a 413). */
void tls_close(struct tls_conn *c);

/* --- non-blocking server sessions, for an event loop (the S3 listener) ---
 *
 * A loop thread owns one tls_loop: its own parsed copy of the certificate chain and key, its
 * DRBG and ssl config (mbedtls is built without MBEDTLS_THREADING_C for the image, and an RSA
 * key's blinding values change with every signature: nothing is shared between threads).
 * Suites: mbedtls's defaults, ECDHE-ECDSA/RSA with AES-GCM first (then ChaCha20). TLS 1.2. */

struct tls_loop;
struct tls_sess;

/* Parses cert_pem (the certificate, then any chain) and key_pem. 0, -EBADMSG (a certificate
 * does not parse), -ENOKEY (the key does not parse), -EKEYREJECTED (the key is not the
 * certificate's), -ENOMEM, -EIO (no randomness). */
int tls_loop_new(const char *cert_pem, const char *key_pem, struct tls_loop **out);
void tls_loop_free(struct tls_loop *l);	/* after every session of it was freed */

/* One connection's session with its record buffers, reusable for the next connection of the
 * same loop (tls_sess_start). 0 or -ENOMEM. */
int tls_sess_new(struct tls_loop *l, struct tls_sess **out);
void tls_sess_free(struct tls_sess *s);
/* Begins a server handshake on the non-blocking socket fd (not owned). 0 or -ENOMEM. */
int tls_sess_start(struct tls_sess *s, int fd);
/* Wipes the session's keys and forgets the socket (the caller closes it). */
void tls_sess_end(struct tls_sess *s);
/* Calls below return -EAGAIN when the socket would block; tls_sess_wants_write() then says
 * whether to wait for it to become writable (else readable). Other errors: -EPROTO (a TLS
 * failure; tls_sess_strerror says which), -ECONNRESET (the peer left), -errno (socket). */
int tls_sess_handshake(struct tls_sess *s);	/* 0 once complete */
bool tls_sess_handshaking(const struct tls_sess *s);
/* Whether the peer sent anything yet (a connect-and-close probe did not). */
bool tls_sess_heard(const struct tls_sess *s);
bool tls_sess_wants_write(const struct tls_sess *s);
/* Decrypted bytes: > 0, 0 at the peer's end (close_notify or EOF), or an error. Bytes of a
 * record already read may be held inside: only -EAGAIN means "wait for the socket". */
ssize_t tls_sess_recv(struct tls_sess *s, void *buf, size_t len);
/* Encrypts and sends one record of at most TLS_RECORD_MAX of buf's len bytes: the count
 * taken (> 0) or an error. After -EAGAIN the record is made but not all out: call again with
 * the same bytes (at least as many); that call finishes it and returns its count. */
ssize_t tls_sess_send(struct tls_sess *s, const void *buf, size_t len);
/* Sends close_notify: 0, -EAGAIN (call again), or an error. */
int tls_sess_close_notify(struct tls_sess *s);
/* The last failure as text for logs: "mbedtls=-0x7780 SSL - ..." or "errno=104 ...". */
void tls_sess_strerror(const struct tls_sess *s, char *buf, size_t len);

#define TLS_RECORD_MAX	16384	/* plaintext bytes per record */

#endif

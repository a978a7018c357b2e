/* tls.h — blocking TLS 1.2 streams over a socket with mbedtls, for the control plane (the
 * join protocol, heartbeats, nodectl): a client that trusts exactly one CA and checks the
 * peer's CN, and a server that may ask for a client certificate from the same CA. A stream
 * can also be plain TCP (tests, loopback admin), behind the same read/write calls. */
#ifndef CAIRN_TLS_H
#define CAIRN_TLS_H

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
/* The verified peer certificate's CN ("" when none was presented or verified). */
const char *tls_peer_cn(const struct tls_conn *c);
/* The peer's address as "ip:port". */
const char *tls_peer_addr(const struct tls_conn *c);
/* Sends close_notify (when TLS), closes the socket, frees. NULL is fine. On an accepted
 * stream it first waits (at most 2 s) for the client's end, discarding unread input, so the
 * kernel does not reset the connection under a reply sent early (a 413). */
void tls_close(struct tls_conn *c);

#endif

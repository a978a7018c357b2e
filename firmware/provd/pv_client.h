/* pv_client.h — one JSON request to the controller: connect (TLS trusting only the cluster
 * CA and requiring the CN cairn-controller, with the node certificate once there is one),
 * send, read the reply, close; and the controller's error body decoded. */
#ifndef CAIRN_PV_CLIENT_H
#define CAIRN_PV_CLIENT_H

#include <stddef.h>

#include "../../lib/http1.h"

#define PV_PEER_CN	"cairn-controller"
#define PV_TIMEOUT_MS	10000
#define PV_ERR_MAX	64

struct pv_conn_opts {
	const char *host, *port;
	const char *ca_pem;
	const char *cert_pem, *key_pem;		/* NULL before the join */
};

/* POSTs body (JSON) to path. 0 with resp filled (any status; free resp->body), or -errno
 * from the connection (-ECONNREFUSED, -ETIMEDOUT, -EKEYREJECTED: the server is not the
 * cluster's controller...). */
int pv_post(const struct pv_conn_opts *o, const char *path, const char *body, size_t len,
	    struct http1_resp *resp);
/* The "error" and "message" of an error reply ("" when absent or not JSON). */
void pv_error_body(const struct http1_resp *resp, char err[PV_ERR_MAX], char *msg, size_t max);
/* host:port as one string for logs and node.json. */
void pv_hostport(const char *host, const char *port, char *out, size_t max);

#endif

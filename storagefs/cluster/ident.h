/* ident.h — the node's cluster identity as cairn-provd keeps it in its state directory:
 * node.json (node id, cluster id, controller address), node.key, node.crt and ca.crt (the
 * certificate the node presents on both sides of the internal API, and the one CA). */
#ifndef CAIRN_CLUSTER_IDENT_H
#define CAIRN_CLUSTER_IDENT_H

#include "../../lib/pki.h"

#define IDENT_ID_MAX	64
#define IDENT_ADDR_MAX	192

struct ident {
	char node_id[IDENT_ID_MAX];
	char cluster_id[IDENT_ID_MAX];
	char controller[IDENT_ADDR_MAX];	/* host:port, or "" (no controller) */
	char key_pem[PKI_PEM_MAX];
	char cert_pem[PKI_PEM_MAX];
	char ca_pem[PKI_PEM_MAX];
};

/* Loads dir's identity and checks that node.crt is issued by ca.crt for node_id.
 * 0, -ENOENT (a file missing), -EINVAL (malformed), -EKEYREJECTED (certificate not from
 * the CA, or naming another node). Logs why. */
int ident_load(const char *dir, struct ident *out);

#endif

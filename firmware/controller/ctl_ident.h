/* ctl_ident.h — the controller's identity in its state directory: cluster.json (cluster id,
 * S3 keys, replicas, heartbeat period), the cluster CA, the controller's TLS certificate and
 * the admin token. Made at first start, each file durably; read back on every start. */
#ifndef CAIRN_CTL_IDENT_H
#define CAIRN_CTL_IDENT_H

#include "../../lib/pki.h"

#define CTL_CA_DAYS		7305		/* 20 years */
#define CTL_SERVER_DAYS		3650
#define CTL_SERVER_CN		"cairn-controller"
#define CTL_SERVER_SERIAL_BASE	(1ULL << 40)	/* above every node number */

struct ctl_ident {
	char cluster_id[33];
	char access_key[32], secret_key[64];
	int replicas, heartbeat_s;
	char admin_token[65];
	char pin_hex[PKI_PIN_HEX];
	char ca_key[PKI_PEM_MAX], ca_cert[PKI_PEM_MAX];
	char server_key[PKI_PEM_MAX], server_cert[PKI_PEM_MAX];
};

/* Loads dir's identity into id, creating dir (0700) and whatever file is missing.
 * 0, or -errno after logging which file failed. */
int ctl_ident_load(const char *dir, struct ctl_ident *id);

#endif

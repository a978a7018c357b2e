/* pv_state.h — the agent's files: its identity in the state directory (node.key 0600,
 * node.crt, ca.crt, node.json 0600 with the storage keys), moving it from RAM to the first
 * data disk, and the storagefsd config it hands to the image's supervisor. */
#ifndef CAIRN_PV_STATE_H
#define CAIRN_PV_STATE_H

#include "../../lib/pki.h"
#include "pv_cmdline.h"

#define PV_ID_MAX	64
#define PV_KEY_MAX	128

/* What the join gave this node; node.json holds all but the PEMs. */
struct pv_ident {
	char node_id[PV_ID_MAX];
	char cluster_id[PV_ID_MAX];
	char controller[PV_HOST_MAX + PV_PORT_MAX + 4];	/* host:port */
	char access_key[PV_KEY_MAX];
	char secret_key[PV_KEY_MAX];
	int replicas;
	int heartbeat_s;
	char key_pem[PKI_PEM_MAX];
	char cert_pem[PKI_PEM_MAX];
	char ca_pem[PKI_PEM_MAX];
};

/* Loads the identity in dir: 0, -ENOENT (none: node.json absent), -EUCLEAN (a file missing
 * or malformed). */
int pv_state_load(const char *dir, struct pv_ident *id);
/* Writes it durably (creating dir 0700); node.json last, so a crash leaves none or all. */
int pv_state_save(const char *dir, const struct pv_ident *id);
/* Saves the identity in to and then removes it from `from` (moving out of RAM). */
int pv_state_move(const char *from, const char *to, const struct pv_ident *id);
/* The node.json text into buf[max]: its length or -ENOSPC. */
int pv_state_node_json(const struct pv_ident *id, char *buf, size_t max);

/* What storagefsd's config says besides the identity's keys. */
struct pv_sfsconf {
	const char *region;
	const char *cluster_dir;	/* the identity directory: storagefsd --cluster; NULL: none */
	long internal_port;		/* with cluster_dir: --internal-listen 0.0.0.0:PORT */
	const char *const *dirs;	/* the data directories */
	int ndirs;
};

/* storagefsd's --config file ("name = value" lines, lib/config.c): access-key, secret-key,
 * region, cluster + internal-listen, and one `data` line per directory; 0600, durable. */
int pv_sfsconf_write(const char *path, const struct pv_ident *id, const struct pv_sfsconf *sc);
/* true when s is fit to be a config value (printable, no blanks at the ends, no '#'). */
int pv_conf_value_ok(const char *s);

#endif

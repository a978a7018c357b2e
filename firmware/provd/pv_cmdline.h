/* pv_cmdline.h — the agent's boot settings: the cairn.* keys of the kernel command line
 * (cairn.controller, cairn.token, cairn.ca-hash, cairn.wipe), also read one `key=value` a
 * line from a config file. Parsing and checking only; nothing here touches the network. */
#ifndef CAIRN_PV_CMDLINE_H
#define CAIRN_PV_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>

#include "../../lib/pki.h"

#define PV_DEFAULT_PORT	"7443"
#define PV_HOST_MAX	256
#define PV_PORT_MAX	8
#define PV_TOKEN_MAX	128
#define PV_WIPE_MAX	32
#define PV_DEV_MAX	32

struct pv_boot {
	char host[PV_HOST_MAX];		/* "" when cairn.controller was not given */
	char port[PV_PORT_MAX];
	char token[PV_TOKEN_MAX];	/* "" when absent */
	char pin[PKI_PIN_HEX];		/* lowercase hex, "" when absent */
	char wipe[PV_WIPE_MAX][PV_DEV_MAX];
	int nwipe;
};

/* Applies a kernel command line (words split on blanks; double quotes group, as the kernel
 * does: key="a b" or "key=a b"). Words not cairn.* are ignored. Later keys override earlier
 * ones. 0, or -EINVAL with a human reason in why[len] (a bad value). */
int pv_cmdline_parse(struct pv_boot *b, const char *text, char *why, size_t len);
/* The same keys from a file of key=value lines ('#' comments, blank lines); an unknown
 * cairn.* key or a line without '=' is -EINVAL. */
int pv_cmdline_parse_conf(struct pv_boot *b, const char *text, char *why, size_t len);
/* Sets one key (with its "cairn." prefix); unknown cairn.* keys are -ENOENT. */
int pv_boot_set(struct pv_boot *b, const char *key, const char *val, char *why, size_t len);
/* What a first join needs: controller, token and pin. -EINVAL naming the missing keys. */
int pv_boot_check_join(const struct pv_boot *b, char *why, size_t len);
/* true when dev (e.g. "vdb") is listed in cairn.wipe. */
bool pv_boot_wipe_has(const struct pv_boot *b, const char *dev);
/* Splits "host:port" / "[v6]:port" / "host" (default port); -EINVAL when malformed. */
int pv_split_hostport(const char *s, char *host, size_t hmax, char *port, size_t pmax);

#endif

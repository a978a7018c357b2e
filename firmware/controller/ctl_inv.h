/* ctl_inv.h — a node's hardware inventory as sent in POST /v1/join: the rules it must
 * follow (docs/PROVISIONING.md, "Inventory") and its normalized copy for the journal. */
#ifndef CAIRN_CTL_INV_H
#define CAIRN_CTL_INV_H

#include <stddef.h>

#include "../../lib/json.h"

#define CTL_INV_NICS_MAX	64
#define CTL_INV_DISKS_MAX	256
#define CTL_INV_JSON_MAX	(64 * 1024)	/* the normalized copy */

/* Checks the inventory object toks[inv] and copies it, normalized, into a new malloc'ed
 * string (*json; free() it). machine_id/hostname receive those fields (hostname "" when
 * absent). 0, or -EINVAL with *why naming the first rule broken. */
int ctl_inv_check(const char *text, const struct json_tok *toks, int inv, char **json,
		  char machine_id[256], char hostname[256], const char **why);

#endif

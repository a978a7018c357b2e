/* pv_join.h — the first contact with the controller: fetch its CA without trusting it,
 * check it against cairn.ca-hash, make a key and CSR, POST /v1/join with the token and
 * the inventory, and check what comes back before it becomes this node's identity. */
#ifndef CAIRN_PV_JOIN_H
#define CAIRN_PV_JOIN_H

#include <stddef.h>

#include "pv_cmdline.h"
#include "pv_inventory.h"
#include "pv_state.h"

/* Fetches the controller's CA into ca_pem[PKI_PEM_MAX] and checks its pin. 0,
 * -EKEYREJECTED on a mismatch (logged provd_pin_mismatch want= got=), or -errno. */
int pv_join_fetch_ca(const struct pv_boot *b, char *ca_pem);

/* Joins: 0 with id filled (not yet saved), or
 *   -EKEYREJECTED  the pin does not match (retry later, never proceed),
 *   -EACCES        the controller refused (4xx: why holds its error code and message),
 *   -EBADMSG       the reply is unusable (its CA is not the pinned one, bad certificate),
 *   -errno         the controller is unreachable or failed (5xx: -EIO).
 * Each step logs one line. */
int pv_join(const struct pv_boot *b, const struct pv_inv *inv, struct pv_ident *id,
	    char *why, size_t len);

/* The join request body into a malloc'ed string (grows as the inventory needs). */
int pv_join_body(const char *token, const char *csr, const struct pv_inv *inv, char **out,
		 size_t *len);

#endif

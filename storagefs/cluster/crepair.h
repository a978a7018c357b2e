/* crepair.h — cluster repair (docs/CLUSTER.md "Repair and rebalance"): one background
 * thread per node that walks the node's own rows, pushes each to the key's owner nodes
 * that lack it or hold an older version, and drops the node's copy of keys it does not
 * own once every owner holds it. */
#ifndef CAIRN_CLUSTER_CREPAIR_H
#define CAIRN_CLUSTER_CREPAIR_H

#include "cstore.h"

#define CREPAIR_PAGE		256	/* rows read from the index at once */
#define CREPAIR_PAGE_PAUSE_MS	100	/* between pages: at most ~2.5k rows a second */

struct crepair;

/* Starts the thread on cs (a cluster's coordinator, kept by the caller until
 * crepair_stop): a full pass, then rest_s seconds of rest, and again; the bytes it pushes
 * are paced to rate_bytes_s a second (0: no cap), so a rebalance leaves the disks and the
 * network to the clients. The thread registers with cs (cstore_cluster_status). */
int crepair_start(struct cstore *cs, int rest_s, int64_t rate_bytes_s, struct crepair **out);
void crepair_status(struct crepair *r, struct crepair_status *out);
/* Stops the thread (after the row in hand) and frees. NULL is fine. */
void crepair_stop(struct crepair *r);

#endif

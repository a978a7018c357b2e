/* cmap_sync.h — the node's current cluster map: read by every thread (a counted reference
 * to an immutable map), replaced only by a newer version, which is saved to map.json before
 * anyone sees it; and the thread that long-polls the controller for new versions. */
#ifndef CAIRN_CLUSTER_CMAP_SYNC_H
#define CAIRN_CLUSTER_CMAP_SYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "cmap.h"
#include "ident.h"

#define CMAP_POLL_TIMEOUT_MS	45000	/* the controller holds a long poll up to 30 s */
#define CMAP_BACKOFF_MIN_MS	1000
#define CMAP_BACKOFF_MAX_MS	30000

struct cmap_sync;

/* Starts with <dir>/map.json when there is one (a bad one is logged and ignored). */
int cmap_sync_new(const char *dir, struct cmap_sync **out);
/* Stops the fetch thread (if any) and frees; references must all be put back. Returns at
 * once even during a long poll: the thread then frees everything itself when the poll
 * ends (it keeps its own copy of the keys and touches nothing of the caller's). */
void cmap_sync_free(struct cmap_sync *s);
/* The current map with a reference (NULL: none yet); give it back with cmap_sync_put. */
const struct cmap *cmap_sync_get(struct cmap_sync *s);
void cmap_sync_put(struct cmap_sync *s, const struct cmap *m);
/* The current version (0: none). */
uint64_t cmap_sync_version(struct cmap_sync *s);
/* Whether node_id is in the current map. */
bool cmap_sync_member(struct cmap_sync *s, const char *node_id);
/* A map to fill and offer (or to free with cmap_sync_map_free); NULL when out of memory. */
struct cmap *cmap_sync_map_new(void);
void cmap_sync_map_free(struct cmap *m);
/* Takes m (from cmap_sync_map_new; freed here in every case): installs it when newer than
 * the current map, after saving it. 1 installed, 0 not newer, -errno (not saved: not
 * installed). */
int cmap_sync_offer(struct cmap_sync *s, struct cmap *m);
/* Starts the thread that long-polls GET /v1/map?since=N on id->controller with the node's
 * certificate (server CN cairn-controller), backing off on failures. */
int cmap_sync_fetch_start(struct cmap_sync *s, const struct ident *id);

#endif

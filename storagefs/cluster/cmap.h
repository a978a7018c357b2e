/* cmap.h — the cluster map (docs/CLUSTER.md): the controller's versioned list of nodes,
 * parsed strictly, written back as JSON, kept in <cluster dir>/map.json, and placement over
 * its nodes: the same weighted rendezvous hash as the disks (store/place.c). Pure values: no
 * threads, no network (cmap_sync.h keeps the current map and fetches new ones). */
#ifndef CAIRN_CLUSTER_CMAP_H
#define CAIRN_CLUSTER_CMAP_H

#include <stddef.h>
#include <stdint.h>

#include "../store/place.h"

#define CMAP_NODES_MAX	PLACE_MAX	/* nodes ranked at once */
#define CMAP_ID_MAX	64
#define CMAP_ADDR_MAX	128
#define CMAP_URL_MAX	256
#define CMAP_JSON_MAX	(128 * 1024)	/* a map's text, both ways */
#define CMAP_REPLICAS_MAX 16

enum cmap_state { CMAP_JOINING, CMAP_UP, CMAP_DOWN, CMAP_DRAINING };

struct cmap_node {
	char node_id[CMAP_ID_MAX];
	enum cmap_state state;
	uint64_t seed;			/* placement identity, never changes */
	uint64_t weight;		/* capacity in GiB, >= 1 */
	char internal_addr[CMAP_ADDR_MAX];	/* host:port of its internal API, or "" */
	char s3_endpoint[CMAP_URL_MAX];		/* or "" */
};

struct cmap {
	uint64_t version;
	char cluster_id[CMAP_ID_MAX];
	int replicas, write_quorum;
	int nnodes;
	struct cmap_node nodes[CMAP_NODES_MAX];
};

/* Parses the controller's map (unknown members are ignored; known ones are checked: types,
 * ranges, states, 16-hex seeds, unique node ids, 1 <= write_quorum <= replicas).
 * 0, -EINVAL (malformed), -E2BIG (more than CMAP_NODES_MAX nodes, or too many tokens). */
int cmap_parse(const char *text, size_t len, struct cmap *out);
/* The map as JSON (the same format) into buf[cap]: its length, or -ENOSPC. */
int cmap_json(const struct cmap *m, char *buf, size_t cap);
/* The key's preference order over the nodes (indices into m->nodes), best first: nodes
 * in state joining, up or down by rendezvous rank, then the draining ones by rank. Fills
 * at most max; returns how many. The first `replicas` are the key's owners. */
int cmap_owners(const struct cmap *m, const char *bucket, const void *key, size_t key_len,
		int *out, int max);
/* The index of node_id in m, or -1. */
int cmap_find(const struct cmap *m, const char *node_id);
const char *cmap_state_name(enum cmap_state s);

/* <dir>/map.json: load (0, -ENOENT, -EINVAL) and save durably (temp, fsync, rename,
 * fsync of dir). */
int cmap_load(const char *dir, struct cmap *out);
int cmap_save(const char *dir, const struct cmap *m);

#endif

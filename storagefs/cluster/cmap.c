/* cmap.c — the cluster map as a value: strict parsing of the controller's JSON, writing it
 * back, map.json on disk, and the preference order of a key over the nodes (rendezvous
 * ranks from store/place.c, draining nodes moved behind the others). */
#include "cmap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/fileio.h"
#include "../../lib/hash.h"
#include "../../lib/json.h"

#define CMAP_TOKS_PER_NODE	48	/* 6 members + room for ones added later */
#define CMAP_TOKS_MAX		(64 + CMAP_TOKS_PER_NODE * CMAP_NODES_MAX)
#define CMAP_WEIGHT_MAX		(1LL << 40)	/* GiB */
#define SEED_HEX		16

static const char *const state_names[] = {
	[CMAP_JOINING] = "joining", [CMAP_UP] = "up", [CMAP_DOWN] = "down",
	[CMAP_DRAINING] = "draining",
};

const char *cmap_state_name(enum cmap_state s)
{
	return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "?";
}

static int state_parse(const char *s, enum cmap_state *out)
{
	for (unsigned i = 0; i < sizeof(state_names) / sizeof(state_names[0]); i++) {
		if (strcmp(s, state_names[i]) == 0) {
			*out = (enum cmap_state)i;
			return 0;
		}
	}
	return -EINVAL;
}

static int seed_parse(const char *hex, uint64_t *out)
{
	unsigned char b[8];

	if (strlen(hex) != SEED_HEX || hex_decode(hex, SEED_HEX, b, sizeof(b)) != 8)
		return -EINVAL;
	*out = 0;
	for (int i = 0; i < 8; i++)
		*out = *out << 8 | b[i];
	return 0;
}

/* An optional string member: absent or null is "". */
static int opt_str(const char *text, const struct json_tok *t, int obj, const char *key,
		   char *out, size_t max)
{
	int i = json_find(text, t, obj, key);

	out[0] = '\0';
	if (i < 0 || t[i].type == JSON_NULL)
		return 0;
	return json_get_str(text, t, i, out, max) ? -EINVAL : 0;
}

static int node_parse(const char *text, const struct json_tok *t, int i, struct cmap_node *n)
{
	char state[16], seed[SEED_HEX + 2];
	int64_t w;

	if (t[i].type != JSON_OBJ ||
	    json_str(text, t, i, "node_id", n->node_id, sizeof(n->node_id)) || !n->node_id[0] ||
	    json_str(text, t, i, "state", state, sizeof(state)) || state_parse(state, &n->state) ||
	    json_str(text, t, i, "seed", seed, sizeof(seed)) || seed_parse(seed, &n->seed) ||
	    json_int(text, t, i, "weight", &w) || w < 1 || w > CMAP_WEIGHT_MAX)
		return -EINVAL;
	n->weight = (uint64_t)w;
	if (opt_str(text, t, i, "internal_addr", n->internal_addr, sizeof(n->internal_addr)) ||
	    opt_str(text, t, i, "s3_endpoint", n->s3_endpoint, sizeof(n->s3_endpoint)))
		return -EINVAL;
	return 0;
}

static int nodes_parse(const char *text, const struct json_tok *t, int arr, struct cmap *m)
{
	if (arr < 0 || t[arr].type != JSON_ARR)
		return -EINVAL;
	if (t[arr].size > CMAP_NODES_MAX)
		return -E2BIG;
	for (int k = 0; k < t[arr].size; k++) {
		struct cmap_node *n = &m->nodes[k];
		int err = node_parse(text, t, json_elem(t, arr, k), n);

		if (err)
			return err;
		if (cmap_find(m, n->node_id) >= 0)
			return -EINVAL;		/* a node listed twice */
		m->nnodes = k + 1;
	}
	return 0;
}

static int head_parse(const char *text, const struct json_tok *t, struct cmap *m)
{
	int64_t v, r, w;

	if (t[0].type != JSON_OBJ || json_int(text, t, 0, "version", &v) || v < 0 ||
	    json_str(text, t, 0, "cluster_id", m->cluster_id, sizeof(m->cluster_id)) ||
	    json_int(text, t, 0, "replicas", &r) || r < 1 || r > CMAP_REPLICAS_MAX ||
	    json_int(text, t, 0, "write_quorum", &w) || w < 1 || w > r)
		return -EINVAL;
	m->version = (uint64_t)v;
	m->replicas = (int)r;
	m->write_quorum = (int)w;
	return 0;
}

int cmap_parse(const char *text, size_t len, struct cmap *out)
{
	struct json_tok *t = malloc(CMAP_TOKS_MAX * sizeof(*t));
	int n, err;

	if (!t)
		return -ENOMEM;
	memset(out, 0, sizeof(*out));
	n = json_parse(text, len, t, CMAP_TOKS_MAX);
	err = n == -ENOSPC ? -E2BIG : n < 1 ? -EINVAL : head_parse(text, t, out);
	if (!err)
		err = nodes_parse(text, t, json_find(text, t, 0, "nodes"), out);
	free(t);
	if (err)
		memset(out, 0, sizeof(*out));
	return err;
}

static void node_json(struct json_w *w, const struct cmap_node *n)
{
	char seed[SEED_HEX + 1];

	snprintf(seed, sizeof(seed), "%016llx", (unsigned long long)n->seed);
	json_w_obj(w);
	json_w_kstr(w, "node_id", n->node_id);
	json_w_kstr(w, "state", cmap_state_name(n->state));
	json_w_kstr(w, "seed", seed);
	json_w_kint(w, "weight", (int64_t)n->weight);
	json_w_kstr(w, "internal_addr", n->internal_addr);
	json_w_kstr(w, "s3_endpoint", n->s3_endpoint);
	json_w_obj_end(w);
}

int cmap_json(const struct cmap *m, char *buf, size_t cap)
{
	struct json_w w;

	json_w_init(&w, buf, cap);
	json_w_obj(&w);
	json_w_kint(&w, "version", (int64_t)m->version);
	json_w_kstr(&w, "cluster_id", m->cluster_id);
	json_w_kint(&w, "replicas", m->replicas);
	json_w_kint(&w, "write_quorum", m->write_quorum);
	json_w_key(&w, "nodes");
	json_w_arr(&w);
	for (int i = 0; i < m->nnodes; i++)
		node_json(&w, &m->nodes[i]);
	json_w_arr_end(&w);
	json_w_obj_end(&w);
	return json_w_end(&w);
}

int cmap_find(const struct cmap *m, const char *node_id)
{
	for (int i = 0; i < m->nnodes; i++)
		if (strcmp(m->nodes[i].node_id, node_id) == 0)
			return i;
	return -1;
}

int cmap_owners(const struct cmap *m, const char *bucket, const void *key, size_t key_len,
		int *out, int max)
{
	struct place_item items[CMAP_NODES_MAX];
	int order[CMAP_NODES_MAX], n = 0;

	for (int i = 0; i < m->nnodes; i++)
		items[i] = (struct place_item){ m->nodes[i].seed, m->nodes[i].weight };
	place_rank(place_hash(bucket, key, key_len), items, m->nnodes, order);
	/* Two stable passes: the others in rank order, then the draining ones. */
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < m->nnodes && n < max; i++)
			if ((m->nodes[order[i]].state == CMAP_DRAINING) == (pass == 1))
				out[n++] = order[i];
	return n;
}

static int map_path(const char *dir, char *path, size_t max)
{
	return snprintf(path, max, "%s/map.json", dir) >= (int)max ? -ENAMETOOLONG : 0;
}

int cmap_load(const char *dir, struct cmap *out)
{
	char path[4096], *text = malloc(CMAP_JSON_MAX);
	ssize_t n = text ? map_path(dir, path, sizeof(path)) : -ENOMEM;

	if (!n)
		n = file_read_small(path, text, CMAP_JSON_MAX);
	if (n >= 0)
		n = cmap_parse(text, (size_t)n, out);
	free(text);
	return (int)n;
}

int cmap_save(const char *dir, const struct cmap *m)
{
	char path[4096], *text = malloc(CMAP_JSON_MAX);
	int n = text ? map_path(dir, path, sizeof(path)) : -ENOMEM;

	if (!n && (n = cmap_json(m, text, CMAP_JSON_MAX - 1)) >= 0) {
		text[n] = '\n';
		n = file_write_atomic(path, text, (size_t)n + 1, 0644);
	}
	free(text);
	return n < 0 ? n : 0;
}

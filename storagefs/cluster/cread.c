/* cread.c — reading a key in a cluster: this node's copy when it is an owner and holds a
 * live version; else the rows of the first R reachable nodes of the key's order (further
 * nodes while none has a row: a key moving after a map change) decide the newest version
 * (a newest tombstone: no such key), and its body is fetched from the first of them
 * holding it into a spool file, falling through to the next on a failed or short transfer. */
#include "cstore_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lib/log.h"

struct rread {
	struct cstore *cs;
	const struct cmap *m;
	const char *bucket, *key;
	size_t key_len;
	int self;
	int order[CMAP_NODES_MAX];
	int n;
	int idx[CMAP_NODES_MAX];	/* the nodes that answered, in order */
	struct store_row *rows;		/* their rows (version 0: none) */
	int nrows;
};

static int row_of(struct rread *rr, int idx, struct store_row *row)
{
	struct peer p = { rr->m->nodes[idx].node_id, rr->m->nodes[idx].internal_addr };

	memset(row, 0, sizeof(*row));
	if (idx == rr->self)
		return store_row_get(rr->cs->st, rr->bucket, rr->key, rr->key_len, row);
	return peer_head(&rr->cs->peer, &p, rr->bucket, rr->key, rr->key_len, row);
}

/* Asks nodes in order until R answered (a row or none), and on while none of them has a
 * row: after a map change a key may still live only on its old holders, further down the
 * order, until repair moves it. Returns the index of the newest row among the answers, or
 * -1 when no node has one. */
static int gather(struct rread *rr)
{
	int best = -1, want = rr->m->replicas;

	for (int i = 0; i < rr->n && (rr->nrows < want || best < 0); i++) {
		struct store_row *row = &rr->rows[rr->nrows];
		int rc = row_of(rr, rr->order[i], row);

		if (rc && rc != -ENOENT) {
			log_warnx("cluster_read_head_failed bucket=%s node=%s err=%d", rr->bucket,
				  rr->m->nodes[rr->order[i]].node_id, rc);
			continue;
		}
		if (rc)
			row->info.size = -1;	/* no live copy here */
		rr->idx[rr->nrows] = rr->order[i];
		if (row->version && (best < 0 || row->version > rr->rows[best].version))
			best = rr->nrows;
		rr->nrows++;
	}
	return best;
}

/* The body of version `ver` from node idx into a spool; 0 or -errno. */
static int fetch(struct rread *rr, int idx, const struct store_row *want, struct cstore_obj *o)
{
	struct peer p = { rr->m->nodes[idx].node_id, rr->m->nodes[idx].internal_addr };
	struct store_row *got = malloc(sizeof(*got));
	int rc = got ? cs_spool(rr->cs, &o->fd) : -ENOMEM;

	if (!rc)
		rc = peer_get_fd(&rr->cs->peer, &p, rr->bucket, rr->key, rr->key_len, o->fd, got);
	if (!rc && (got->version != want->version || got->info.size != want->info.size ||
		    lseek(o->fd, 0, SEEK_CUR) != want->info.size))
		rc = -EAGAIN;		/* it changed meanwhile, or came short */
	if (rc && o->fd >= 0) {
		close(o->fd);
		o->fd = -1;
	}
	free(got);
	return rc;
}

static int open_from(struct rread *rr, int i, bool meta_only, struct cstore_obj *o)
{
	int idx = rr->idx[i];

	if (idx == rr->self)
		return store_obj_open(rr->cs->st, rr->bucket, rr->key, rr->key_len, &o->so);
	o->info = rr->rows[i].info;
	return meta_only ? 0 : fetch(rr, idx, &rr->rows[i], o);
}

/* The newest version among the owners; -ENOENT, -EIO (no copy could be read). */
static int open_newest(struct rread *rr, bool meta_only, struct cstore_obj *o)
{
	int best = gather(rr), rc = -EIO;
	uint64_t ver;

	if (rr->nrows == 0)
		return -EIO;		/* nobody answered */
	if (best < 0 || rr->rows[best].tomb)
		return -ENOENT;
	ver = rr->rows[best].version;
	for (int i = 0; i < rr->nrows && rc; i++) {
		if (rr->rows[i].version != ver || rr->rows[i].tomb)
			continue;
		rc = open_from(rr, i, meta_only, o);
		if (rc)
			log_warnx("cluster_read_failed bucket=%s node=%s version=%llu err=%d",
				  rr->bucket, rr->m->nodes[rr->idx[i]].node_id,
				  (unsigned long long)ver, rc);
	}
	return rc ? -EIO : 0;
}

/* This node serves the read itself when it is among the key's first R nodes and holds a
 * live version. */
static bool local_first(struct rread *rr)
{
	struct store_row *row;
	bool owner = false, live;

	for (int i = 0; i < rr->n && i < rr->m->replicas; i++)
		owner |= rr->order[i] == rr->self;
	if (!owner || !(row = malloc(sizeof(*row))))
		return false;
	live = store_row_get(rr->cs->st, rr->bucket, rr->key, rr->key_len, row) == 0 && !row->tomb;
	free(row);
	return live;
}

int cs_open(struct cstore *cs, const char *bucket, const char *key, size_t key_len,
	    bool meta_only, struct cstore_obj **out)
{
	struct rread rr = { .cs = cs, .bucket = bucket, .key = key, .key_len = key_len };
	struct cstore_obj *o = calloc(1, sizeof(*o));
	struct store_bucket b;
	int rc = o ? store_bucket_get(cs->st, bucket, &b) : -ENOMEM;

	if (rc)
		goto out_free;
	o->fd = -1;
	if (!(rr.m = cmap_sync_get(cs->maps))) {
		rc = store_obj_open(cs->st, bucket, key, key_len, &o->so);	/* no map yet */
		goto out_free;
	}
	rr.self = cs_self(cs, rr.m);
	rr.n = cstore_order(rr.m, bucket, key, key_len, rr.self, rr.order);
	if (local_first(&rr) &&
	    !(rc = store_obj_open(cs->st, bucket, key, key_len, &o->so)))
		goto out_put;
	if (!(rr.rows = calloc((size_t)(rr.n ? rr.n : 1), sizeof(*rr.rows))))
		rc = -ENOMEM;
	else
		rc = open_newest(&rr, meta_only, o);
	free(rr.rows);
out_put:
	cmap_sync_put(cs->maps, rr.m);
out_free:
	if (rc) {
		free(o);
		return rc;
	}
	*out = o;
	return 0;
}

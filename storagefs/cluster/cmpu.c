/* cmpu.c — multipart uploads through the facade: an upload and its parts live on the node
 * where it was created, its home; in a cluster its id starts with the home's seed (16 hex),
 * so any node forwards UploadPart, Complete, Abort and ListParts there (peer_mpu_*).
 * Complete builds the object at the home, which replicates it to the key's owners like a
 * PUT (same version). */
#include "cstore_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lib/log.h"

#define HOME_HEX	16	/* the home's seed at the start of a cluster upload id */
#define LOCAL_HEX	32	/* the store's own id (16 random bytes) */

int cs_mpu_home(struct cstore *cs, const char *upload_id, const struct cmap **m, int *idx,
		const char **local)
{
	const struct cmap *map;
	uint64_t seed = 0;
	int i;

	*local = upload_id;
	if (!cs->maps || strlen(upload_id) != HOME_HEX + LOCAL_HEX ||
	    strspn(upload_id, "0123456789abcdef") != HOME_HEX + LOCAL_HEX)
		return 0;	/* a single node's id, or one made before ids named their home */
	for (i = 0; i < HOME_HEX; i++)
		seed = seed << 4 | (uint64_t)(upload_id[i] <= '9' ? upload_id[i] - '0' : upload_id[i] - 'a' + 10);
	*local = upload_id + HOME_HEX;
	if (!(map = cmap_sync_get(cs->maps)))
		return -ENOENT;
	for (i = 0; i < map->nnodes && map->nodes[i].seed != seed; i++)
		;
	if (i == map->nnodes || i == cs_self(cs, map)) {
		cmap_sync_put(cs->maps, map);
		return i == map->nnodes ? -ENOENT : 0;
	}
	*m = map;
	*idx = i;
	return 1;
}

int cstore_mpu_create(struct cstore *cs, const char *bucket, const char *key, size_t key_len,
		      const void *meta, size_t meta_len,
		      char upload_id[STORE_UPLOAD_ID_MAX + 1])
{
	char local[STORE_UPLOAD_ID_MAX + 1];
	const struct cmap *m;
	int rc = store_mpu_create(cs->st, bucket, key, key_len, meta, meta_len, local), self;

	if (rc)
		return rc;
	snprintf(upload_id, STORE_UPLOAD_ID_MAX + 1, "%s", local);
	if (!cs->maps || strlen(local) != LOCAL_HEX || !(m = cmap_sync_get(cs->maps)))
		return 0;
	/* The home's seed first: any node can tell where the upload lives. */
	if ((self = cs_self(cs, m)) >= 0)
		snprintf(upload_id, STORE_UPLOAD_ID_MAX + 1, "%016llx%.32s",
			 (unsigned long long)m->nodes[self].seed, local);
	cmap_sync_put(cs->maps, m);
	return 0;
}

int cs_part_remote(struct cstore *cs, const struct cmap *m, int idx, const char *bucket,
		   const char *local, int part_no, struct cstore_put **out)
{
	struct cstore_put *p = calloc(1, sizeof(*p));
	int rc;

	if (!p)
		return -ENOMEM;
	p->cs = cs;
	p->part_no = part_no;
	snprintf(p->bucket, sizeof(p->bucket), "%s", bucket);
	snprintf(p->upload_id, sizeof(p->upload_id), "%s", local);
	snprintf(p->node_id, sizeof(p->node_id), "%s", m->nodes[idx].node_id);
	snprintf(p->addr, sizeof(p->addr), "%s", m->nodes[idx].internal_addr);
	if ((rc = cs_spool(cs, &p->fd))) {
		free(p);
		return rc;
	}
	*out = p;
	return 0;
}

int cs_part_commit(struct cstore_put *p, struct store_objinfo *info)
{
	struct peer home = { p->node_id, p->addr };
	struct store_objinfo got = { .size = 0 };
	int rc = peer_mpu_part(&p->cs->peer, &home, p->bucket, p->upload_id, p->part_no, p->fd,
			       p->size, info->etag, &got);

	if (rc)
		return rc == -ENOENT ? -ENOENT : rc;
	info->size = got.size;
	info->mtime_ms = got.mtime_ms;
	return 0;
}

/* The finished object, read back (verified) into a spool file. */
static int mpu_spool(struct cstore *cs, const char *bucket, const char *key, size_t key_len,
		     struct store_row *row, int *fd)
{
	struct store_rep *rp;
	char *buf = malloc(PEER_CHUNK);
	int rc = buf ? store_rep_open(cs->st, bucket, key, key_len, row, &rp) : -ENOMEM;

	if (rc)
		goto out_free;
	if ((rc = cs_spool(cs, fd)))
		goto out_close;
	for (int64_t pos = 0; pos < row->info.size && !rc; pos += PEER_CHUNK) {
		size_t n = (size_t)(row->info.size - pos < PEER_CHUNK ? row->info.size - pos
								      : PEER_CHUNK);

		if (!(rc = store_rep_read(rp, pos, buf, n)) && pwrite(*fd, buf, n, pos) != (ssize_t)n)
			rc = -EIO;
	}
	if (rc) {
		close(*fd);
		*fd = -1;
	}
out_close:
	store_rep_close(rp);
out_free:
	free(buf);
	return rc;
}

int cstore_mpu_complete(struct cstore *cs, const char *bucket, const char *upload_id,
			const struct store_mpu_part *parts, int nparts,
			struct store_objinfo *out)
{
	char key[STORE_KEY_MAX];
	size_t key_len;
	struct store_row *row;
	const struct cmap *m;
	const char *local;
	int rc, fd = -1, idx;

	if (!cs->maps)
		return store_mpu_complete(cs->st, bucket, upload_id, parts, nparts, out);
	if ((rc = cs_mpu_home(cs, upload_id, &m, &idx, &local)) < 0)
		return rc;
	if (rc == 1) {
		struct peer home = { m->nodes[idx].node_id, m->nodes[idx].internal_addr };

		rc = peer_mpu_complete(&cs->peer, &home, bucket, local, parts, nparts, out);
		cmap_sync_put(cs->maps, m);
		return rc;
	}
	upload_id = local;
	if ((rc = store_mpu_get(cs->st, bucket, upload_id, key, &key_len)) ||
	    (rc = store_mpu_complete(cs->st, bucket, upload_id, parts, nparts, out)))
		return rc;
	if (!(row = calloc(1, sizeof(*row))))
		return -ENOMEM;
	/* The local copy has the version; the owners get that version (this node, when it is
	 * one, already holds it and says so). */
	if (!(rc = mpu_spool(cs, bucket, key, key_len, row, &fd)))
		rc = cs_replicate(cs, bucket, key, key_len, fd, row);
	if (rc)
		log_warnx("cluster_mpu_replicate_failed bucket=%s upload=%s err=%d", bucket,
			  upload_id, rc);
	if (fd >= 0)
		close(fd);
	free(row);
	return rc;
}

int cstore_mpu_abort(struct cstore *cs, const char *bucket, const char *upload_id)
{
	const struct cmap *m;
	const char *local;
	int rc, idx;

	if ((rc = cs_mpu_home(cs, upload_id, &m, &idx, &local)) < 0)
		return rc;
	if (rc == 1) {
		struct peer home = { m->nodes[idx].node_id, m->nodes[idx].internal_addr };

		rc = peer_mpu_abort(&cs->peer, &home, bucket, local);
		cmap_sync_put(cs->maps, m);
		return rc;
	}
	return store_mpu_abort(cs->st, bucket, local);
}

static int no_part(void *ctx, const struct store_mpu_part *p)
{
	(void)ctx;
	(void)p;
	return 0;
}

int cstore_mpu_get(struct cstore *cs, const char *bucket, const char *upload_id,
		   char key[STORE_KEY_MAX], size_t *key_len)
{
	return cstore_mpu_parts(cs, bucket, upload_id, key, key_len, 0, 0, no_part, NULL, NULL);
}

int cstore_mpu_parts(struct cstore *cs, const char *bucket, const char *upload_id,
		     char key[STORE_KEY_MAX], size_t *key_len, int after, int max,
		     int (*fn)(void *ctx, const struct store_mpu_part *p), void *ctx,
		     bool *truncated)
{
	const struct cmap *m;
	const char *local;
	bool trunc = false;
	int rc, idx;

	if ((rc = cs_mpu_home(cs, upload_id, &m, &idx, &local)) < 0)
		return rc;
	if (rc == 1) {
		struct peer home = { m->nodes[idx].node_id, m->nodes[idx].internal_addr };

		rc = peer_mpu_parts(&cs->peer, &home, bucket, local, after, max, key, key_len, fn,
				    ctx, &trunc);
		cmap_sync_put(cs->maps, m);
	} else if (!(rc = store_mpu_get(cs->st, bucket, local, key, key_len)) && max > 0) {
		rc = store_mpu_list_parts(cs->st, bucket, local, after, max, fn, ctx, &trunc);
	}
	if (truncated)
		*truncated = trunc;
	return rc;
}

/* ListMultipartUploads lists this node's uploads, under the ids clients know them by. */
struct uploads_as {
	int (*fn)(void *ctx, const struct store_mpu_upload *u);
	void *ctx;
	uint64_t seed;
};

static int upload_as(void *ctx, const struct store_mpu_upload *u)
{
	struct uploads_as *a = ctx;
	struct store_mpu_upload v = *u;
	char id[STORE_UPLOAD_ID_MAX + 1];

	if (strlen(u->upload_id) == LOCAL_HEX) {
		snprintf(id, sizeof(id), "%016llx%.32s", (unsigned long long)a->seed, u->upload_id);
		v.upload_id = id;
	}
	return a->fn(a->ctx, &v);
}

int cstore_mpu_list_uploads(struct cstore *cs, const char *bucket,
			    const char *prefix, size_t prefix_len,
			    const char *key_marker, size_t key_marker_len,
			    const char *upload_id_marker, int max,
			    int (*fn)(void *ctx, const struct store_mpu_upload *u), void *ctx,
			    bool *truncated)
{
	struct uploads_as a = { fn, ctx, 0 };
	const struct cmap *m = cs->maps ? cmap_sync_get(cs->maps) : NULL;
	int self = m ? cs_self(cs, m) : -1, rc;

	if (self >= 0) {
		a.seed = m->nodes[self].seed;
		if (upload_id_marker && strlen(upload_id_marker) == HOME_HEX + LOCAL_HEX)
			upload_id_marker += HOME_HEX;
	}
	if (m)
		cmap_sync_put(cs->maps, m);
	rc = store_mpu_list_uploads(cs->st, bucket, prefix, prefix_len, key_marker,
				    key_marker_len, upload_id_marker, max,
				    self >= 0 ? upload_as : fn, self >= 0 ? (void *)&a : ctx,
				    truncated);
	return rc;
}

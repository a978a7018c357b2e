/* cstore.c — the facade between the S3 layer and the store: a single node's calls go
 * straight to its store; a cluster node's put and read handles hold spooled bodies, and
 * its writes, reads, listings and bucket changes go through cwrite.c, cread.c, clist.c
 * and the bucket broadcast below. Multipart uploads stay on their node. */
#include "cstore_int.h"
#include "crepair.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "../../lib/log.h"

int cstore_new(const struct cstore_config *cfg, struct cstore **out)
{
	struct cstore *cs = calloc(1, sizeof(*cs));

	if (!cs)
		return -ENOMEM;
	cs->st = cfg->st;
	cs->maps = cfg->maps;
	cs->peer = cfg->peer;
	if (cfg->maps && peer_health_new(&cs->peer.health)) {
		free(cs);
		return -ENOMEM;
	}
	cs->buckets = cfg->buckets;
	cs->local_auto = cfg->local_replicas_auto && cfg->maps;
	if (cs->local_auto) {
		struct store_status s;

		store_status(cs->st, &s, NULL, 0);
		cs->ndisks = s.disks;
	}
	if (cfg->self_id)
		snprintf(cs->self_id, sizeof(cs->self_id), "%s", cfg->self_id);
	snprintf(cs->spool_dir, sizeof(cs->spool_dir), "%s", cfg->spool_dir ? cfg->spool_dir : ".");
	pthread_mutex_init(&cs->mu, NULL);
	pthread_cond_init(&cs->cv, NULL);
	*out = cs;
	return 0;
}

void cstore_free(struct cstore *cs)
{
	if (!cs)
		return;
	pthread_mutex_lock(&cs->mu);
	while (cs->bg > 0)
		pthread_cond_wait(&cs->cv, &cs->mu);
	pthread_mutex_unlock(&cs->mu);
	pthread_cond_destroy(&cs->cv);
	pthread_mutex_destroy(&cs->mu);
	peer_health_free(cs->peer.health);
	free(cs);
}

void cs_bg_begin(struct cstore *cs)
{
	pthread_mutex_lock(&cs->mu);
	cs->bg++;
	pthread_mutex_unlock(&cs->mu);
}

void cs_bg_end(struct cstore *cs)
{
	pthread_mutex_lock(&cs->mu);
	if (--cs->bg == 0)
		pthread_cond_broadcast(&cs->cv);
	pthread_mutex_unlock(&cs->mu);
}

bool cstore_remote(const struct cstore *cs)
{
	return cs->maps != NULL;
}

struct store *cstore_local(const struct cstore *cs)
{
	return cs->st;
}

int cs_self(const struct cstore *cs, const struct cmap *m)
{
	return cmap_find(m, cs->self_id);
}

int cs_spool(struct cstore *cs, int *fd)
{
	char path[PATH_MAX + 32];

	*fd = open(cs->spool_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (*fd >= 0)
		return 0;
	/* File systems without O_TMPFILE: a named file, unlinked at once. */
	if (snprintf(path, sizeof(path), "%s/.cstore-spool-XXXXXX", cs->spool_dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	*fd = mkostemp(path, O_CLOEXEC);
	if (*fd < 0)
		return -errno;
	if (unlink(path) < 0) {
		int err = -errno;

		close(*fd);
		*fd = -1;
		return err;
	}
	return 0;
}

void cs_local_replicas(struct cstore *cs, const struct cmap *m)
{
	int n = 0, r, err;

	if (!cs->local_auto || !m || cs->local_for == m->version)
		return;
	cs->local_for = m->version;
	for (int i = 0; i < m->nnodes; i++)
		n += m->nodes[i].state != CMAP_DRAINING;
	if (n == 0)
		n = m->nnodes > 0 ? m->nnodes : 1;
	r = (m->replicas + n - 1) / n;
	r = r < 1 ? 1 : r > cs->ndisks ? cs->ndisks : r;
	r = r > STORE_REPLICAS_MAX ? STORE_REPLICAS_MAX : r;
	if ((err = store_set_replicas(cs->st, r, r / 2 + 1)))
		log_warnx("cluster_local_replicas_failed replicas=%d err=%d", r, err);
}

static int count_live(void *ctx, const struct cbucket_ent *e)
{
	*(int *)ctx += !e->deleted;
	return 0;
}

int cstore_cluster_status(struct cstore *cs, struct cstore_cluster_status *out)
{
	const struct cmap *m;

	if (!cs->maps)
		return -ENOENT;
	memset(out, 0, sizeof(*out));
	snprintf(out->self_id, sizeof(out->self_id), "%s", cs->self_id);
	if ((m = cmap_sync_get(cs->maps))) {
		out->map_version = m->version;
		out->replicas = m->replicas;
		out->write_quorum = m->write_quorum;
		out->nodes = m->nnodes;
		for (int i = 0; i < m->nnodes; i++) {
			enum cmap_state s = m->nodes[i].state;

			out->up += s == CMAP_UP;
			out->down += s == CMAP_DOWN;
			out->joining += s == CMAP_JOINING;
			out->draining += s == CMAP_DRAINING;
		}
		cmap_sync_put(cs->maps, m);
	}
	if (cs->buckets)
		cbucket_each(cs->buckets, count_live, &out->buckets);
	pthread_mutex_lock(&cs->mu);
	if (cs->repair) {
		out->repair_on = true;
		crepair_status(cs->repair, &out->repair);
	}
	pthread_mutex_unlock(&cs->mu);
	return 0;
}

/* --- buckets --- */

int cstore_bucket_get(struct cstore *cs, const char *name, struct store_bucket *out)
{
	return store_bucket_get(cs->st, name, out);
}

int cstore_bucket_list(struct cstore *cs, int (*fn)(void *ctx, const struct store_bucket *b),
		       void *ctx)
{
	return store_bucket_list(cs->st, fn, ctx);
}

/* Runs the bucket change on every other node of the map with an address; returns the
 * nodes where it holds now (ok_err counts as holding: it already did), and *nodes. */
static int bucket_broadcast(struct cstore *cs, const char *name, bool create, uint64_t version,
			    int *nodes, int *not_empty)
{
	const struct cmap *m = cmap_sync_get(cs->maps);
	int self, ok = 0;

	*nodes = 1;
	if (!m)
		return 0;
	self = cs_self(cs, m);
	*nodes = m->nnodes > 0 ? m->nnodes : 1;
	for (int i = 0; i < m->nnodes; i++) {
		struct peer p = { m->nodes[i].node_id, m->nodes[i].internal_addr };
		int rc;

		if (i == self || !p.addr[0])
			continue;
		rc = create ? peer_bucket_create(&cs->peer, &p, name, version)
			    : peer_bucket_delete(&cs->peer, &p, name, version);
		if (rc == 0 || rc == (create ? -EEXIST : -ENOENT))
			ok++;
		else if (rc == -ENOTEMPTY)
			(*not_empty)++;
		if (rc && rc != (create ? -EEXIST : -ENOENT))
			log_warnx("cluster_bucket_%s_failed bucket=%s node=%s err=%d",
				  create ? "create" : "delete", name, p.node_id, rc);
	}
	if (self < 0)
		(*nodes)++;
	cmap_sync_put(cs->maps, m);
	return ok;
}

uint64_t cs_bucket_version(struct cstore *cs, const char *bucket)
{
	struct cbucket_ent e;

	if (!cs->buckets || cbucket_get(cs->buckets, bucket, &e) || e.deleted)
		return 0;
	return e.version;
}

/* Logs a bucket change this node made (a new version, newer than any it has seen). */
static int bucket_log(struct cstore *cs, const char *name, bool deleted, uint64_t *version)
{
	struct cbucket_ent e = { .deleted = deleted };
	int rc;

	snprintf(e.name, sizeof(e.name), "%s", name);
	e.version = *version = cbucket_stamp(cs->buckets);
	rc = cbucket_record(cs->buckets, &e);
	if (rc < 0)
		log_errorx("cluster_bucket_log_failed bucket=%s err=%d", name, rc);
	return rc < 0 ? rc : 0;
}

int cstore_bucket_create(struct cstore *cs, const char *name)
{
	int rc = store_bucket_create(cs->st, name), nodes, ok, not_empty = 0, err;
	uint64_t version;

	if (!cs->maps || (rc && rc != -EEXIST))
		return rc;
	version = cs_bucket_version(cs, name);
	if ((!rc || !version) && (err = bucket_log(cs, name, false, &version)))
		return err;
	/* An existing bucket is still announced: a node that missed its create gets it. */
	ok = bucket_broadcast(cs, name, true, version, &nodes, &not_empty) + 1;
	if (rc)
		return rc;
	return ok >= nodes / 2 + 1 ? 0 : -STORE_ENOQUORUM;
}

static int any_key(void *ctx, const struct store_list_entry *e)
{
	(void)e;
	*(bool *)ctx = true;
	return 1;
}

int cstore_bucket_delete(struct cstore *cs, const char *name)
{
	struct store_list_query q = { .max = 1 };
	bool truncated, used = false;
	int rc, nodes, ok, not_empty = 0;
	uint64_t version;

	if (!cs->maps)
		return store_bucket_delete(cs->st, name);
	rc = cs_list(cs, name, &q, any_key, &used, &truncated);
	if (rc < 0)
		return rc;
	if (used)
		return -ENOTEMPTY;
	if ((rc = store_bucket_delete(cs->st, name)) || (rc = bucket_log(cs, name, true, &version)))
		return rc;
	ok = bucket_broadcast(cs, name, false, version, &nodes, &not_empty) + 1;
	if (not_empty)
		return -ENOTEMPTY;
	return ok >= nodes / 2 + 1 ? 0 : -STORE_ENOQUORUM;
}

/* --- writing --- */

static int put_new(struct cstore *cs, struct cstore_put **out)
{
	struct cstore_put *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->cs = cs;
	p->fd = -1;
	*out = p;
	return 0;
}

int cstore_put_begin(struct cstore *cs, const char *bucket, const char *key, size_t key_len,
		     struct cstore_put **out)
{
	struct store_bucket b;
	struct cstore_put *p;
	int rc;

	if ((rc = put_new(cs, &p)))
		return rc;
	if (!cs->maps) {
		rc = store_put_begin(cs->st, bucket, key, key_len, &p->sp);
	} else if (key_len > STORE_KEY_MAX || strlen(bucket) > STORE_BUCKET_MAX) {
		rc = -ENAMETOOLONG;
	} else if (!(rc = store_bucket_get(cs->st, bucket, &b)) && !(rc = cs_spool(cs, &p->fd))) {
		memcpy(p->bucket, bucket, strlen(bucket) + 1);
		memcpy(p->key, key, key_len);
		p->key_len = key_len;
	}
	if (rc) {
		free(p);
		return rc;
	}
	*out = p;
	return 0;
}

int cstore_part_begin(struct cstore *cs, const char *bucket, const char *upload_id,
		      int part_no, struct cstore_put **out)
{
	const struct cmap *m;
	struct cstore_put *p;
	const char *local;
	int rc, idx;

	if ((rc = cs_mpu_home(cs, upload_id, &m, &idx, &local)) < 0)
		return rc;
	if (rc == 1) {
		rc = cs_part_remote(cs, m, idx, bucket, local, part_no, out);
		cmap_sync_put(cs->maps, m);
		return rc;
	}
	if ((rc = put_new(cs, &p)))
		return rc;
	if ((rc = store_part_begin(cs->st, bucket, local, part_no, &p->sp))) {
		free(p);
		return rc;
	}
	*out = p;
	return 0;
}

int cstore_put_write(struct cstore_put *p, const void *buf, size_t len)
{
	const char *c = buf;

	if (p->sp)
		return store_put_write(p->sp, buf, len);
	while (len > 0) {
		ssize_t n = write(p->fd, c, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		c += n;
		len -= (size_t)n;
		p->size += n;
	}
	return 0;
}

int64_t cstore_put_size(const struct cstore_put *p)
{
	return p->sp ? store_put_size(p->sp) : p->size;
}

/* A cluster put: one version, then the owners. */
static int put_replicate(struct cstore_put *p, struct store_objinfo *info)
{
	struct store_row *row = calloc(1, sizeof(*row));
	int rc;

	if (!row)
		return -ENOMEM;
	row->info = *info;
	row->info.size = p->size;
	row->info.nparts = 0;
	row->version = store_stamp(p->cs->st, &row->info.mtime_ms);
	rc = cs_replicate(p->cs, p->bucket, p->key, p->key_len, p->fd, row);
	if (!rc) {
		info->size = row->info.size;
		info->mtime_ms = row->info.mtime_ms;
		info->nparts = 0;
	}
	free(row);
	return rc;
}

int cstore_put_commit(struct cstore_put *p, struct store_objinfo *info)
{
	int rc;

	if (p->sp) {
		rc = store_put_commit(p->sp, info);
		p->sp = NULL;
	} else if (p->part_no) {
		rc = cs_part_commit(p, info);
	} else {
		rc = put_replicate(p, info);
	}
	cstore_put_abort(p);
	return rc;
}

void cstore_put_abort(struct cstore_put *p)
{
	if (!p)
		return;
	if (p->sp)
		store_put_abort(p->sp);
	if (p->fd >= 0)
		close(p->fd);
	free(p);
}

/* --- reading --- */

static int obj_local(struct cstore *cs, const char *bucket, const char *key, size_t key_len,
		     struct cstore_obj **out)
{
	struct cstore_obj *o = calloc(1, sizeof(*o));
	int rc;

	if (!o)
		return -ENOMEM;
	o->fd = -1;
	if ((rc = store_obj_open(cs->st, bucket, key, key_len, &o->so))) {
		free(o);
		return rc;
	}
	*out = o;
	return 0;
}

int cstore_obj_open(struct cstore *cs, const char *bucket, const char *key, size_t key_len,
		    struct cstore_obj **out)
{
	if (!cs->maps)
		return obj_local(cs, bucket, key, key_len, out);
	return cs_open(cs, bucket, key, key_len, false, out);
}

int cstore_obj_stat(struct cstore *cs, const char *bucket, const char *key, size_t key_len,
		    struct cstore_obj **out)
{
	if (!cs->maps)
		return obj_local(cs, bucket, key, key_len, out);
	return cs_open(cs, bucket, key, key_len, true, out);
}

const struct store_objinfo *cstore_obj_info(const struct cstore_obj *o)
{
	return o->so ? store_obj_info(o->so) : &o->info;
}

int cstore_obj_read(struct cstore_obj *o, int64_t pos, void *buf, size_t len)
{
	char *c = buf;

	if (o->so)
		return store_obj_read(o->so, pos, buf, len);
	if (o->fd < 0 || pos < 0 || pos + (int64_t)len > o->info.size)
		return -EINVAL;
	while (len > 0) {
		ssize_t n = pread(o->fd, c, len, pos);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		c += n;
		pos += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t cstore_obj_send(struct cstore_obj *o, int sock, int64_t *pos, size_t max,
			void *scratch)
{
	off_t off;
	ssize_t n;

	if (o->so)
		return store_obj_send(o->so, sock, pos, max, scratch);
	if (o->fd < 0)
		return -EINVAL;
	off = (off_t)*pos;
	n = sendfile(sock, o->fd, &off, max);
	if (n < 0)
		return -errno;
	if (n == 0 && max > 0)
		return -EIO;	/* the spool is shorter than the object */
	*pos = off;
	return n;
}

void cstore_obj_close(struct cstore_obj *o)
{
	if (!o)
		return;
	if (o->so)
		store_obj_close(o->so);
	if (o->fd >= 0)
		close(o->fd);
	free(o);
}

int cstore_obj_delete(struct cstore *cs, const char *bucket, const char *key, size_t key_len)
{
	struct store_bucket b;
	struct store_row *row;
	int rc;

	if (!cs->maps)
		return store_obj_delete(cs->st, bucket, key, key_len);
	if ((rc = store_bucket_get(cs->st, bucket, &b)))
		return rc;
	if (!(row = calloc(1, sizeof(*row))))
		return -ENOMEM;
	row->tomb = true;
	row->version = store_stamp(cs->st, &row->info.mtime_ms);
	rc = cs_replicate(cs, bucket, key, key_len, -1, row);
	free(row);
	return rc;
}

int cstore_list(struct cstore *cs, const char *bucket, const struct store_list_query *q,
		int (*fn)(void *ctx, const struct store_list_entry *e), void *ctx,
		bool *truncated)
{
	if (!cs->maps)
		return store_list(cs->st, bucket, q, fn, ctx, truncated);
	return cs_list(cs, bucket, q, fn, ctx, truncated);
}

int cstore_status(struct cstore *cs, struct store_status *out, struct store_disk_status *disks,
		  int max)
{
	return store_status(cs->st, out, disks, max);
}

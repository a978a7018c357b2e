/* store.c — the disk set: opening every volume, placing objects on volumes (rendezvous
 * hashing), the version clock, buckets (kept on every volume, the first one deciding) and
 * object deletion. Writing, reading, listing and multipart live in put.c, obj.c, list.c
 * and mpu.c. */
#include "store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include "../../lib/hash.h"
#include "../../lib/log.h"

#define NS_PER_MS	1000000

/* --- placement and versions --- */

void store_place(const struct store *st, const char *bucket, const char *key,
		 size_t key_len, int *order)
{
	place_rank(place_hash(bucket, key, key_len), st->items, st->nvols, order);
}

int store_targets(const struct store *st, const char *bucket, const char *key,
		  size_t key_len, int *vols)
{
	int order[STORE_VOLS_MAX], n = 0;

	store_place(st, bucket, key, key_len, order);
	for (int i = 0; i < st->nvols && n < st->replicas; i++) {
		if (vol_online(store_vol(st, order[i])))
			vols[n++] = order[i];
	}
	return n;
}

int store_write_targets(const struct store *st, const char *bucket, const char *key,
			size_t key_len, int *vols)
{
	int order[STORE_VOLS_MAX], full[STORE_VOLS_MAX], n = 0, nfull = 0;

	store_place(st, bucket, key, key_len, order);
	for (int i = 0; i < st->nvols && n < st->replicas; i++) {
		struct vol *v = store_vol(st, order[i]);

		if (!vol_online(v))
			continue;
		if (vol_full(v))
			full[nfull++] = order[i];
		else
			vols[n++] = order[i];
	}
	for (int i = 0; i < nfull && n < st->replicas; i++)
		vols[n++] = full[i];	/* may still take a small object; else -ENOSPC */
	return n;
}

int store_quorum_err(int rc)
{
	switch (rc) {
	case -EIO: case -ENODEV: case -ENXIO: case -EROFS: case -EBADMSG: case -ESTALE:
		return -STORE_ENOQUORUM;
	default:
		return rc ? rc : -STORE_ENOQUORUM;
	}
}

int store_row_version(struct vol *v, struct vconn *c, const char *bucket, const char *key,
		      size_t key_len, uint64_t *version, bool *tomb)
{
	sqlite3_stmt *s = c->st[VS_OBJ_VER];
	int rc;

	sqlite3_bind_text(s, 1, bucket, -1, SQLITE_STATIC);
	store_bind_blob(s, 2, key, key_len);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*version = (uint64_t)sqlite3_column_int64(s, 0);
		*tomb = sqlite3_column_int(s, 1) < 0;
	}
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : vol_fault(v, vol_sqlerr(v, c->db, rc, "obj_ver"), "sql");
}

uint64_t store_version(struct store *st)
{
	struct timespec ts;
	uint64_t now, last, next;

	clock_gettime(CLOCK_REALTIME, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	last = __atomic_load_n(&st->last_version, __ATOMIC_RELAXED);
	do {
		next = now > last ? now : last + 1;
	} while (!__atomic_compare_exchange_n(&st->last_version, &last, next, false,
					      __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	return next;
}

int64_t store_version_ms(uint64_t version)
{
	return (int64_t)(version / NS_PER_MS);
}

int store_check_bucket(const char *bucket)
{
	size_t n = bucket ? strlen(bucket) : 0;

	return n == 0 || n > STORE_BUCKET_MAX ? -EINVAL : 0;
}

int store_check_key(size_t key_len)
{
	if (key_len == 0)
		return -EINVAL;
	return key_len > STORE_KEY_MAX ? -ENAMETOOLONG : 0;
}

/* --- lookups shared by the other files --- */

static int bucket_get_on(struct vol *v, struct vconn *c, const char *name,
			 struct store_bucket *out)
{
	sqlite3_stmt *s = c->st[VS_BUCKET_GET];
	int rc;

	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && out) {
		snprintf(out->name, sizeof(out->name), "%s", name);
		out->created_ms = sqlite3_column_int64(s, 0);
	}
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : vol_sqlerr(v, c->db, rc, "bucket_get");
}

int store_bucket_check_tx(struct vol *v, struct vconn *w, const char *bucket)
{
	return bucket_get_on(v, w, bucket, NULL);
}

int store_bucket_get(struct store *st, const char *name, struct store_bucket *out)
{
	struct vconn *c;
	int rc = store_check_bucket(name);

	if (rc)
		return rc == -EINVAL ? -ENOENT : rc;
	c = vol_reader(store_vol(st, 0));
	rc = bucket_get_on(store_vol(st, 0), c, name, out);
	vol_reader_put(c);
	return rc;
}

int store_bucket_check(struct store *st, const char *bucket)
{
	return store_bucket_get(st, bucket, NULL);
}

int store_upload_vols(struct store *st, const char *bucket, const char *upload_id, int *vols)
{
	int n = 0;

	for (int i = 0; i < st->nvols; i++) {
		struct vol *v = store_vol(st, i);
		struct vconn *c;
		sqlite3_stmt *s;
		int rc;

		if (!vol_online(v))
			continue;
		c = vol_reader(v);
		s = c->st[VS_UPLOAD_GET];
		sqlite3_bind_text(s, 1, bucket, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, upload_id, -1, SQLITE_STATIC);
		rc = sqlite3_step(s);
		sqlite3_reset(s);
		vol_reader_put(c);
		if (rc == SQLITE_ROW)
			vols[n++] = i;
		else if (rc != SQLITE_DONE)
			vol_fault(v, vol_sqlerr(v, NULL, rc, "upload_get"), "sql");
	}
	return n ? n : -ENOENT;
}

int store_upload_vol(struct store *st, const char *bucket, const char *upload_id,
		     struct vol **out)
{
	int vols[STORE_VOLS_MAX];
	int n = store_upload_vols(st, bucket, upload_id, vols);

	if (n < 0)
		return n;
	*out = store_vol(st, vols[0]);
	return 0;
}

int store_gc_object(struct vol *v, struct vconn *w, const char *bucket, const char *key,
		    size_t key_len)
{
	sqlite3_stmt *s = w->st[VS_OBJ_SEGS];
	unsigned char *segs = NULL;
	size_t len = 0;
	int rc;

	sqlite3_bind_text(s, 1, bucket, -1, SQLITE_STATIC);
	store_bind_blob(s, 2, key, key_len);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) == SQLITE_BLOB) {
		len = (size_t)sqlite3_column_bytes(s, 0);
		segs = malloc(len ? len : 1);
		if (segs)
			memcpy(segs, sqlite3_column_blob(s, 0), len);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return vol_sqlerr(v, w->db, rc, "obj_segs");
	if (len && !segs)
		return -ENOMEM;
	rc = 0;
	for (size_t off = 0; !rc && off + SEG_REC <= len; off += SEG_REC)
		rc = vol_tx_garbage(v, segs + off);
	free(segs);
	return rc;
}

/* --- buckets: a row on every volume; the first volume is the commit point --- */

static int bucket_ins(struct vol *v, const char *name, int64_t created_ms)
{
	struct vconn *w;
	int rc = vol_tx_begin(v, &w);

	if (rc)
		return rc;
	sqlite3_bind_text(w->st[VS_BUCKET_INS], 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(w->st[VS_BUCKET_INS], 2, created_ms);
	return vol_tx_end(v, vol_exec(v, w, VS_BUCKET_INS));
}

static int bucket_del(struct vol *v, const char *name)
{
	struct vconn *w;
	int rc = vol_tx_begin(v, &w);

	if (rc)
		return rc;
	/* Only tombstones can be left (bucket_used ignores them): they go with the bucket. */
	sqlite3_bind_text(w->st[VS_TOMBS_DEL], 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(w->st[VS_BUCKET_DEL], 1, name, -1, SQLITE_STATIC);
	if (!(rc = vol_exec(v, w, VS_TOMBS_DEL)))
		rc = vol_exec(v, w, VS_BUCKET_DEL);
	return vol_tx_end(v, rc);
}

/* 1 when the bucket holds an object or an upload on v, 0 if not, or -errno. */
static int bucket_used(struct vol *v, const char *name)
{
	static const enum vol_stmt q[] = { VS_BUCKET_HAS_OBJ, VS_BUCKET_HAS_UPLOAD };
	struct vconn *c = vol_reader(v);
	int used = 0;

	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]) && !used; i++) {
		sqlite3_stmt *s = c->st[q[i]];
		int rc;

		sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
		rc = sqlite3_step(s);
		sqlite3_reset(s);
		if (rc == SQLITE_ROW)
			used = 1;
		else if (rc != SQLITE_DONE)
			used = vol_sqlerr(v, c->db, rc, "bucket_used");
	}
	vol_reader_put(c);
	return used;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / NS_PER_MS;
}

/* The other volumes first, the first volume last: until its row commits the bucket does
 * not exist, and store_open's reconcile removes the others' rows after a crash. */
int store_bucket_create(struct store *st, const char *name)
{
	int64_t created = wall_ms();
	int rc = store_check_bucket(name), i;

	if (rc)
		return rc;
	pthread_rwlock_wrlock(&st->bucket_lock);
	rc = store_bucket_check(st, name);
	if (rc == 0)
		rc = -EEXIST;
	if (rc != -ENOENT)
		goto out_unlock;
	rc = 0;
	for (i = st->nvols - 1; i >= 0 && !rc; i--) {
		rc = bucket_ins(store_vol(st, i), name, created);
		if (rc == -EEXIST && i > 0)
			rc = 0;		/* a leftover of a crashed create; reused */
	}
	if (rc) {
		for (i += 2; i < st->nvols; i++) {
			int undo = bucket_del(store_vol(st, i), name);

			if (undo)
				log_warnx("store_bucket_undo vol=%s bucket=%s rc=%d",
					  store_vol(st, i)->path, name, undo);
		}
	}
out_unlock:
	pthread_rwlock_unlock(&st->bucket_lock);
	return rc;
}

/* The first volume's delete is the commit point; the others follow, and a failure there
 * is repaired by store_open's reconcile. */
int store_bucket_delete(struct store *st, const char *name)
{
	int rc = store_check_bucket(name);

	if (rc)
		return -ENOENT;
	pthread_rwlock_wrlock(&st->bucket_lock);
	if ((rc = store_bucket_check(st, name)))
		goto out_unlock;
	for (int i = 0; i < st->nvols && !rc; i++) {
		rc = bucket_used(store_vol(st, i), name);
		if (rc > 0)
			rc = -ENOTEMPTY;
	}
	if (rc || (rc = bucket_del(store_vol(st, 0), name)))
		goto out_unlock;
	for (int i = 1; i < st->nvols; i++) {
		int err = bucket_del(store_vol(st, i), name);

		if (err)
			log_warnx("store_bucket_delete_partial vol=%s bucket=%s rc=%d",
				  store_vol(st, i)->path, name, err);
	}
out_unlock:
	pthread_rwlock_unlock(&st->bucket_lock);
	return rc;
}

static int bucket_list_on(struct vol *v, int (*fn)(void *ctx, const struct store_bucket *b),
			  void *ctx)
{
	struct vconn *c = vol_reader(v);
	sqlite3_stmt *s = c->st[VS_BUCKET_LIST];
	struct store_bucket b;
	int rc, stop = 0;

	while (!stop && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		snprintf(b.name, sizeof(b.name), "%s", (const char *)sqlite3_column_text(s, 0));
		b.created_ms = sqlite3_column_int64(s, 1);
		stop = fn(ctx, &b);
	}
	if (!stop && rc != SQLITE_DONE)
		stop = vol_sqlerr(v, c->db, rc, "bucket_list");
	sqlite3_reset(s);
	vol_reader_put(c);
	return stop;
}

int store_bucket_list(struct store *st, int (*fn)(void *ctx, const struct store_bucket *b),
		      void *ctx)
{
	return bucket_list_on(store_vol(st, 0), fn, ctx);
}

struct bucket_vec {
	struct store_bucket *b;
	size_t n, cap;
};

static int bucket_collect(void *ctx, const struct store_bucket *b)
{
	struct bucket_vec *vec = ctx;

	if (vec->n == vec->cap) {
		size_t cap = vec->cap ? 2 * vec->cap : 64;
		void *p = realloc(vec->b, cap * sizeof(*vec->b));

		if (!p)
			return -ENOMEM;
		vec->b = p;
		vec->cap = cap;
	}
	vec->b[vec->n++] = *b;
	return 0;
}

/* A bucket exists on vol 0 => make it exist on v; only on v => drop it from v, unless
 * something already lives in it there (then it is restored on vol 0 and kept). */
static int reconcile_one(struct vol *first, struct vol *v, const struct store_bucket *b,
			 bool on_first)
{
	int used;

	log_warnx("store_bucket_reconcile vol=%s bucket=%s on_first=%d", v->path, b->name,
		  on_first);
	if (on_first)
		return bucket_ins(v, b->name, b->created_ms);
	used = bucket_used(v, b->name);
	if (used < 0)
		return used;
	return used ? bucket_ins(first, b->name, b->created_ms) : bucket_del(v, b->name);
}

int store_buckets_reconcile(struct store *st, struct vol *first, struct vol *v)
{
	struct bucket_vec a = { 0 }, b = { 0 };
	size_t i = 0, j = 0;
	int rc;

	if ((rc = bucket_list_on(first, bucket_collect, &a)) ||
	    (rc = bucket_list_on(v, bucket_collect, &b)))
		goto out_free;
	while (!rc && (i < a.n || j < b.n)) {
		int cmp = i == a.n ? 1 : j == b.n ? -1 : strcmp(a.b[i].name, b.b[j].name);

		if (cmp < 0)
			rc = reconcile_one(first, v, &a.b[i++], true);
		else if (cmp > 0)
			rc = reconcile_one(first, v, &b.b[j++], false);
		else
			i++, j++;
	}
out_free:
	free(a.b);
	free(b.b);
	return rc;
}

/* --- naps the background threads take --- */

bool store_nap(struct store *st, int64_t ms, const bool *wake)
{
	struct timespec ts;
	bool stop;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * NS_PER_MS;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&st->mu);
	while (!st->stopping && !(wake && *wake) &&
	       pthread_cond_timedwait(&st->cv, &st->mu, &ts) != ETIMEDOUT)
		;
	stop = st->stopping;
	pthread_mutex_unlock(&st->mu);
	return stop;
}

/* --- the repair queue --- */

struct heal_job {
	struct store *st;
	char bucket[STORE_BUCKET_MAX + 1];
	size_t key_len;
	char key[STORE_KEY_MAX];
};

void store_bg_begin(struct store *st)
{
	pthread_mutex_lock(&st->mu);
	st->heal_pending++;
	pthread_mutex_unlock(&st->mu);
}

void store_bg_end(struct store *st)
{
	pthread_mutex_lock(&st->mu);
	st->heal_pending--;
	pthread_cond_broadcast(&st->cv);
	pthread_mutex_unlock(&st->mu);
}

static void heal_run(void *arg)
{
	struct heal_job *j = arg;
	struct store *st = j->st;
	int rc = store_heal(st, j->bucket, j->key, j->key_len);

	if (rc)
		log_warnx("store_heal_failed bucket=%s key_len=%zu rc=%d", j->bucket, j->key_len, rc);
	free(j);
	__atomic_fetch_sub(&st->heal_queued, 1, __ATOMIC_RELAXED);
	store_bg_end(st);
}

/* Rare (a failed replica, a corrupt block): the one allocation is fine here. */
void store_heal_queue(struct store *st, const char *bucket, const char *key, size_t key_len)
{
	struct heal_job *j = malloc(sizeof(*j));

	if (!j) {
		log_warnx("store_heal_queue_failed bucket=%s rc=%d", bucket, -ENOMEM);
		return;
	}
	j->st = st;
	snprintf(j->bucket, sizeof(j->bucket), "%s", bucket);
	memcpy(j->key, key, key_len);
	j->key_len = key_len;
	store_bg_begin(st);
	__atomic_fetch_add(&st->heal_queued, 1, __ATOMIC_RELAXED);
	if (workq_submit(st->healq, heal_run, j)) {
		log_warnx("store_heal_queue_failed bucket=%s rc=%d", bucket, -ENOMEM);
		__atomic_fetch_sub(&st->heal_queued, 1, __ATOMIC_RELAXED);
		store_bg_end(st);
		free(j);
	}
}

void store_heal_drain(struct store *st)
{
	pthread_mutex_lock(&st->mu);
	while (st->heal_pending > 0)
		pthread_cond_wait(&st->cv, &st->mu);
	pthread_mutex_unlock(&st->mu);
}

/* --- status --- */

static void disk_status(struct store *st, int i, struct store_disk_status *d)
{
	struct vol *v = store_vol(st, i);
	struct statvfs vfs;

	memset(d, 0, sizeof(*d));
	snprintf(d->path, sizeof(d->path), "%s", v->path);
	snprintf(d->id, sizeof(d->id), "%s", v->id_hex);
	d->online = vol_online(v);
	d->full = vol_full(v);
	if (d->online && fstatvfs(v->dirfd, &vfs) == 0) {
		d->size_bytes = (uint64_t)vfs.f_blocks * vfs.f_frsize;
		d->free_bytes = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	}
	d->reads = __atomic_load_n(&v->n_reads, __ATOMIC_RELAXED);
	d->read_bytes = __atomic_load_n(&v->n_read_bytes, __ATOMIC_RELAXED);
	d->writes = __atomic_load_n(&v->n_writes, __ATOMIC_RELAXED);
	d->write_bytes = __atomic_load_n(&v->n_write_bytes, __ATOMIC_RELAXED);
	d->errors = __atomic_load_n(&v->n_errors, __ATOMIC_RELAXED);
	store_scrub_stats(st, i, d);
}

int store_status(struct store *st, struct store_status *out, struct store_disk_status *disks,
		 int max)
{
	int n = 0;

	memset(out, 0, sizeof(*out));
	out->disks = st->nvols;
	out->replicas = st->replicas;
	out->write_quorum = st->quorum;
	out->heal_queue = __atomic_load_n(&st->heal_queued, __ATOMIC_RELAXED);
	out->healed = __atomic_load_n(&st->healed, __ATOMIC_RELAXED);
	for (int i = 0; i < st->nvols; i++) {
		out->online += vol_online(store_vol(st, i));
		out->full += vol_full(store_vol(st, i));
		if (n < max)
			disk_status(st, i, &disks[n++]);
	}
	return n;
}

/* --- open / close --- */

void store_close(struct store *st)
{
	if (!st)
		return;
	pthread_mutex_lock(&st->mu);
	st->stopping = true;
	pthread_cond_broadcast(&st->cv);
	pthread_mutex_unlock(&st->mu);
	if (st->prober_on)
		pthread_join(st->prober, NULL);
	if (st->scrubber_on)
		pthread_join(st->scrubber, NULL);
	free(st->scrub);
	/* Background replica commits may queue repairs: the disks' pools go first. */
	for (int i = 0; i < st->nvols; i++) {
		if (st->wq[i])
			workq_free(st->wq[i]);
	}
	if (st->healq)
		workq_free(st->healq);
	for (int i = 0; i < st->nvols; i++)
		vol_close(store_vol(st, i));
	while (st->retired) {
		struct vol *v = st->retired;

		st->retired = v->retired_next;
		vol_close(v);
	}
	pthread_rwlock_destroy(&st->bucket_lock);
	pthread_cond_destroy(&st->cv);
	pthread_mutex_destroy(&st->mu);
	pthread_mutex_destroy(&st->probe_mu);
	free(st);
}

/* The cluster and node ids: from the first labelled directory, or new. A directory listed
 * twice (same inode) is refused. */
static int store_identity(const struct store_config *cfg, const char *cluster_id,
			  struct vol_label *id)
{
	struct stat sb[STORE_VOLS_MAX];
	bool found = false;
	int rc;

	for (int i = 0; i < cfg->ndirs; i++) {
		if (stat(cfg->dirs[i], &sb[i]) < 0) {
			sb[i].st_ino = 0;
			continue;
		}
		for (int j = 0; j < i; j++) {
			if (sb[j].st_ino && sb[j].st_dev == sb[i].st_dev && sb[j].st_ino == sb[i].st_ino) {
				log_errorx("store_dir_duplicate dir=%s same_as=%s", cfg->dirs[i],
					   cfg->dirs[j]);
				return -EINVAL;
			}
		}
		if (!found && vol_label_read(cfg->dirs[i], id) == 0)
			found = true;
	}
	if (!found && ((rc = vol_random(id->cluster, VOL_ID_LEN)) ||
		       (rc = vol_random(id->node, VOL_ID_LEN))))
		return rc;
	if (cluster_id && (strlen(cluster_id) != 2 * VOL_ID_LEN ||
			   hex_decode(cluster_id, 2 * VOL_ID_LEN, id->cluster, VOL_ID_LEN) !=
			   VOL_ID_LEN)) {
		log_errorx("store_bad_cluster_id id=%s", cluster_id);
		return -EINVAL;
	}
	id->has_place = false;		/* each new disk gets its own seed */
	return 0;
}

int store_set_replicas(struct store *st, int replicas, int write_quorum)
{
	int max = st->nvols < STORE_REPLICAS_MAX ? st->nvols : STORE_REPLICAS_MAX;

	if (replicas < 1 || replicas > max || write_quorum < 1 || write_quorum > replicas)
		return -EINVAL;
	if (st->replicas == replicas && st->quorum == write_quorum)
		return 0;
	/* W first when R shrinks, R first when it grows: W <= R holds all along. */
	if (replicas < st->replicas) {
		st->quorum = write_quorum;
		st->replicas = replicas;
	} else {
		st->replicas = replicas;
		st->quorum = write_quorum;
	}
	log_info("store_replicas replicas=%d write_quorum=%d", replicas, write_quorum);
	return 0;
}

static int store_check_rw(const struct store_config *cfg, struct store *st)
{
	int max = cfg->ndirs < STORE_REPLICAS_MAX ? cfg->ndirs : STORE_REPLICAS_MAX;

	st->replicas = cfg->replicas ? cfg->replicas : (cfg->ndirs < 3 ? cfg->ndirs : 3);
	st->quorum = cfg->write_quorum ? cfg->write_quorum : st->replicas / 2 + 1;
	if (st->replicas < 1 || st->replicas > max || st->quorum < 1 ||
	    st->quorum > st->replicas) {
		log_errorx("store_bad_replicas replicas=%d write_quorum=%d disks=%d msg=\"need 1 <= W <= R <= disks\"",
			   st->replicas, st->quorum, cfg->ndirs);
		return -EINVAL;
	}
	return 0;
}

static int store_open_vols(const struct store_config *cfg, const char *cluster_id,
			   struct store *st)
{
	struct vol_label id;
	int rc;

	if ((rc = store_identity(cfg, cluster_id, &id)))
		return rc;
	st->ident = id;
	for (int i = 0; i < cfg->ndirs && !rc; i++) {
		rc = vol_open(cfg->dirs[i], &id, &st->vols[i]);
		if (!rc) {
			st->nvols++;
			st->items[i].seed = store_vol(st, i)->seed;
			st->items[i].weight = store_vol(st, i)->weight;
			if (store_vol(st, i)->max_version > st->last_version)
				st->last_version = store_vol(st, i)->max_version;
			rc = workq_new(STORE_DISK_THREADS, "disk", &st->wq[i]);
		}
	}
	for (int i = 1; i < st->nvols && !rc; i++) {
		for (int j = 0; j < i && !rc; j++) {
			if (!memcmp(store_vol(st, i)->id, store_vol(st, j)->id, VOL_ID_LEN))
				rc = -EEXIST;	/* a copied volume: placement needs distinct ids */
		}
		if (!rc)
			rc = store_buckets_reconcile(st, store_vol(st, 0), store_vol(st, i));
	}
	return rc;
}

int store_open(const struct store_config *cfg, struct store **out)
{
	return store_open_cluster(cfg, NULL, out);
}

int store_open_cluster(const struct store_config *cfg, const char *cluster_id,
		       struct store **out)
{
	struct store *st;
	int rc;

	if (cfg->ndirs < 1 || cfg->ndirs > STORE_VOLS_MAX)
		return -EINVAL;
	if (sqlite3_threadsafe() == 0)
		return -ENOTSUP;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	pthread_rwlock_init(&st->bucket_lock, NULL);
	pthread_mutex_init(&st->mu, NULL);
	pthread_mutex_init(&st->probe_mu, NULL);
	pthread_cond_init(&st->cv, NULL);
	st->keep_tombs = cluster_id != NULL;
	if ((rc = store_check_rw(cfg, st)) || (rc = store_open_vols(cfg, cluster_id, st)) ||
	    (rc = workq_new(1, "heal", &st->healq)))
		goto out_close;
	if ((rc = store_prober_start(st)))
		goto out_close;
	st->scrub_pct = cfg->scrub_budget_pct;
	if ((rc = store_scrub_start(st)))
		goto out_close;
	log_info("store_open disks=%d replicas=%d write_quorum=%d scrub_budget_pct=%d",
		 st->nvols, st->replicas, st->quorum, st->scrub_pct);
	*out = st;
	return 0;

out_close:
	log_errorx("store_open_failed ndirs=%d rc=%d", cfg->ndirs, rc);
	store_close(st);
	return rc;
}

/* --- object deletion --- */

static int obj_drop_on(struct vol *v, const char *bucket, const char *key, size_t key_len,
		       uint64_t below)
{
	uint64_t ver;
	bool tomb;
	struct vconn *w;
	int rc = vol_tx_begin(v, &w);

	if (rc)
		return rc;
	rc = store_row_version(v, w, bucket, key, key_len, &ver, &tomb);
	if (rc <= 0 || ver >= below)
		goto out_end;
	rc = store_gc_object(v, w, bucket, key, key_len);
	if (!rc) {
		sqlite3_bind_text(w->st[VS_OBJ_DEL], 1, bucket, -1, SQLITE_STATIC);
		store_bind_blob(w->st[VS_OBJ_DEL], 2, key, key_len);
		rc = vol_exec(v, w, VS_OBJ_DEL);
	}
out_end:
	return vol_tx_end(v, rc < 0 ? rc : 0);
}

/* In a transaction of its own on v: removes the key's row when its version is below
 * `below` (a stale copy, or an agreed tombstone with below = its version + 1). */
int store_row_drop(struct vol *v, const char *bucket, const char *key, size_t key_len,
		   uint64_t below)
{
	int rc = obj_drop_on(v, bucket, key, key_len, below);

	if (rc)
		log_warnx("store_row_drop vol=%s bucket=%s key_len=%zu rc=%d", v->path, bucket,
			  key_len, rc);
	return vol_fault(v, rc, "io");
}

/* Newest live row anywhere: 1 when the key exists (a live newest version), 0 if not. */
static int obj_live(struct store *st, const char *bucket, const char *key, size_t key_len,
		    bool *all_online)
{
	uint64_t best = 0, ver;
	bool best_tomb = true, tomb;

	*all_online = true;
	for (int i = 0; i < st->nvols; i++) {
		struct vol *v = store_vol(st, i);
		struct vconn *c;
		int rc;

		if (!vol_online(v)) {
			*all_online = false;
			continue;
		}
		c = vol_reader(v);
		rc = store_row_version(v, c, bucket, key, key_len, &ver, &tomb);
		vol_reader_put(c);
		if (rc < 0)
			return rc;
		if (rc == 1 && ver > best) {
			best = ver;
			best_tomb = tomb;
		}
	}
	return !best_tomb;
}

/* A tombstone on the placed disks (quorum as for a put); copies on other disks are
 * dropped afterwards. A key that no disk holds (and no disk is offline) costs nothing. */
int store_obj_delete(struct store *st, const char *bucket, const char *key, size_t key_len)
{
	bool all_online;
	int rc = store_check_key(key_len);

	if (rc || (rc = store_bucket_check(st, bucket)))
		return rc;
	rc = obj_live(st, bucket, key, key_len, &all_online);
	if (rc < 0 || (rc == 0 && all_online))
		return rc;
	return store_put_tomb(st, bucket, key, key_len);
}

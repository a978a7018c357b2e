/* store.c — the disk set: opening every volume, placing objects on volumes (rendezvous
 * hashing), the version clock, buckets (kept on every volume, the first one deciding) and
 * object deletion. Writing, reading, listing and multipart live in put.c, obj.c, list.c
 * and mpu.c. */
#include "store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../lib/log.h"

#define FNV_OFFSET	0xcbf29ce484222325ULL
#define FNV_PRIME	0x100000001b3ULL
#define NS_PER_MS	1000000

/* --- placement and versions --- */

static uint64_t fnv1a(uint64_t h, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * FNV_PRIME;
	return h;
}

/* MurmurHash3's finalizer: full avalanche, so seeds that differ in one bit still rank
 * volumes independently. */
static uint64_t fmix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

void store_place(const struct store *st, const char *bucket, const char *key,
		 size_t key_len, int *order)
{
	uint64_t score[STORE_VOLS_MAX];
	uint64_t h = fnv1a(FNV_OFFSET, bucket, strlen(bucket) + 1);

	h = fnv1a(h, key, key_len);
	/* Insertion sort by descending score: a handful of volumes. */
	for (int i = 0; i < st->nvols; i++) {
		uint64_t s = fmix64(h ^ fmix64(st->vols[i]->seed));
		int j = i;

		while (j > 0 && score[j - 1] < s) {
			score[j] = score[j - 1];
			order[j] = order[j - 1];
			j--;
		}
		score[j] = s;
		order[j] = i;
	}
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
	c = vol_reader(st->vols[0]);
	rc = bucket_get_on(st->vols[0], c, name, out);
	vol_reader_put(c);
	return rc;
}

int store_bucket_check(struct store *st, const char *bucket)
{
	return store_bucket_get(st, bucket, NULL);
}

int store_upload_vol(struct store *st, const char *bucket, const char *upload_id,
		     struct vol **out)
{
	for (int i = 0; i < st->nvols; i++) {
		struct vconn *c = vol_reader(st->vols[i]);
		sqlite3_stmt *s = c->st[VS_UPLOAD_GET];
		int rc;

		sqlite3_bind_text(s, 1, bucket, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, upload_id, -1, SQLITE_STATIC);
		rc = sqlite3_step(s);
		sqlite3_reset(s);
		vol_reader_put(c);
		if (rc == SQLITE_ROW) {
			*out = st->vols[i];
			return 0;
		}
		if (rc != SQLITE_DONE)
			return vol_sqlerr(st->vols[i], NULL, rc, "upload_get");
	}
	return -ENOENT;
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
	sqlite3_bind_text(w->st[VS_BUCKET_DEL], 1, name, -1, SQLITE_STATIC);
	return vol_tx_end(v, vol_exec(v, w, VS_BUCKET_DEL));
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
		rc = bucket_ins(st->vols[i], name, created);
		if (rc == -EEXIST && i > 0)
			rc = 0;		/* a leftover of a crashed create; reused */
	}
	if (rc) {
		for (i += 2; i < st->nvols; i++) {
			int undo = bucket_del(st->vols[i], name);

			if (undo)
				log_warnx("store_bucket_undo vol=%s bucket=%s rc=%d",
					  st->vols[i]->path, name, undo);
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
		rc = bucket_used(st->vols[i], name);
		if (rc > 0)
			rc = -ENOTEMPTY;
	}
	if (rc || (rc = bucket_del(st->vols[0], name)))
		goto out_unlock;
	for (int i = 1; i < st->nvols; i++) {
		int err = bucket_del(st->vols[i], name);

		if (err)
			log_warnx("store_bucket_delete_partial vol=%s bucket=%s rc=%d",
				  st->vols[i]->path, name, err);
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
	return bucket_list_on(st->vols[0], fn, ctx);
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

static int reconcile_buckets(struct store *st, struct vol *v)
{
	struct bucket_vec a = { 0 }, b = { 0 };
	size_t i = 0, j = 0;
	int rc;

	if ((rc = bucket_list_on(st->vols[0], bucket_collect, &a)) ||
	    (rc = bucket_list_on(v, bucket_collect, &b)))
		goto out_free;
	while (!rc && (i < a.n || j < b.n)) {
		int cmp = i == a.n ? 1 : j == b.n ? -1 : strcmp(a.b[i].name, b.b[j].name);

		if (cmp < 0)
			rc = reconcile_one(st->vols[0], v, &a.b[i++], true);
		else if (cmp > 0)
			rc = reconcile_one(st->vols[0], v, &b.b[j++], false);
		else
			i++, j++;
	}
out_free:
	free(a.b);
	free(b.b);
	return rc;
}

/* --- open / close --- */

void store_close(struct store *st)
{
	if (!st)
		return;
	for (int i = 0; i < st->nvols; i++)
		vol_close(st->vols[i]);
	pthread_rwlock_destroy(&st->bucket_lock);
	free(st);
}

int store_open(const struct store_config *cfg, struct store **out)
{
	struct store *st;
	int rc = 0;

	if (cfg->ndirs < 1 || cfg->ndirs > STORE_VOLS_MAX)
		return -EINVAL;
	if (sqlite3_threadsafe() == 0)
		return -ENOTSUP;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	pthread_rwlock_init(&st->bucket_lock, NULL);
	for (int i = 0; i < cfg->ndirs && !rc; i++) {
		rc = vol_open(cfg->dirs[i], &st->vols[i]);
		if (!rc)
			st->nvols++;
	}
	for (int i = 1; i < st->nvols && !rc; i++) {
		for (int j = 0; j < i && !rc; j++) {
			if (!memcmp(st->vols[i]->id, st->vols[j]->id, VOL_ID_LEN))
				rc = -EEXIST;	/* a copied volume: placement needs distinct ids */
		}
		if (!rc)
			rc = reconcile_buckets(st, st->vols[i]);
	}
	if (rc) {
		log_errorx("store_open_failed ndirs=%d rc=%d", cfg->ndirs, rc);
		store_close(st);
		return rc;
	}
	*out = st;
	return 0;
}

/* --- object deletion --- */

static int obj_exists_on(struct vol *v, const char *bucket, const char *key, size_t key_len)
{
	struct vconn *c = vol_reader(v);
	sqlite3_stmt *s = c->st[VS_OBJ_SEGS];
	int rc;

	sqlite3_bind_text(s, 1, bucket, -1, SQLITE_STATIC);
	store_bind_blob(s, 2, key, key_len);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	vol_reader_put(c);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : vol_sqlerr(v, NULL, rc, "obj_exists");
}

/* Every volume: a copy left where an older disk set placed the key must not resurface. */
int store_obj_delete(struct store *st, const char *bucket, const char *key, size_t key_len)
{
	int rc = store_check_key(key_len);

	if (rc || (rc = store_bucket_check(st, bucket)))
		return rc;
	for (int i = 0; i < st->nvols && rc >= 0; i++) {
		struct vol *v = st->vols[i];
		struct vconn *w;

		if ((rc = obj_exists_on(v, bucket, key, key_len)) <= 0)
			continue;
		if ((rc = vol_tx_begin(v, &w)))
			break;
		rc = store_gc_object(v, w, bucket, key, key_len);
		if (!rc) {
			sqlite3_bind_text(w->st[VS_OBJ_DEL], 1, bucket, -1, SQLITE_STATIC);
			store_bind_blob(w->st[VS_OBJ_DEL], 2, key, key_len);
			rc = vol_exec(v, w, VS_OBJ_DEL);
		}
		rc = vol_tx_end(v, rc);
	}
	return rc < 0 ? rc : 0;
}

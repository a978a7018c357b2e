/* put.c — writing an object or a multipart part to its R disks: bytes buffered in memory
 * up to STORE_INLINE_MAX, then appended to one temp file per disk, CRC32C per block as they
 * arrive; the commit runs on every disk's own worker pool in parallel and succeeds as soon
 * as W disks made it durable (fsync, index transaction, rename); the rest finish behind. */
#include "store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lib/fileio.h"
#include "../../lib/hash.h"
#include "../../lib/log.h"

#define CRCS_MIN	16

/* One disk's copy. */
struct put_rep {
	struct store_put *p;
	int vi;				/* index in st->vols */
	struct vol *v;
	int fd;				/* the temp file, -1 while the body is in buf */
	bool file;			/* the temp file exists (fd may be closed already) */
	unsigned char id[VOL_ID_LEN];
	int err;			/* this copy failed (the others go on) */
};

struct store_put {
	struct store *st;
	bool part, tomb;
	int part_no;
	char upload_id[STORE_UPLOAD_ID_MAX + 1];
	char bucket[STORE_BUCKET_MAX + 1];
	size_t key_len;
	char key[STORE_KEY_MAX];
	int nrep, need;			/* copies, and how many must be durable (W) */
	struct put_rep rep[STORE_REPLICAS_MAX];
	bool file;			/* the body outgrew memory: every copy has a file */
	int err;			/* sticky: the first fatal error fails the commit */
	int64_t size;
	uint32_t crc;			/* of the current, incomplete block */
	uint32_t *crcs;			/* of the complete blocks */
	size_t ncrcs, capcrcs;
	/* The commit: shared with the disks' workers, freed by whoever drops the last ref. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int ok, pending, refs, first_err;
	uint64_t version;
	struct store_objinfo info;
	unsigned char buf[STORE_INLINE_MAX];
};

static int put_new(struct store *st, const int *vols, int n, const char *bucket,
		   struct store_put **out)
{
	struct store_put *p;

	if (n < st->quorum)
		return -STORE_ENOQUORUM;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->st = st;
	p->nrep = n;
	p->need = st->quorum;
	for (int i = 0; i < n; i++) {
		p->rep[i].p = p;
		p->rep[i].vi = vols[i];
		p->rep[i].v = store_vol(st, vols[i]);
		p->rep[i].fd = -1;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	snprintf(p->bucket, sizeof(p->bucket), "%s", bucket);
	*out = p;
	return 0;
}

/* A new object goes where there is space; a tombstone goes where the key belongs (full
 * disks included: it takes no data and frees the replaced object's files there). */
static int put_begin_key(struct store *st, const char *bucket, const char *key,
			 size_t key_len, bool tomb, struct store_put **out)
{
	int vols[STORE_VOLS_MAX];
	int n = tomb ? store_targets(st, bucket, key, key_len, vols)
		     : store_write_targets(st, bucket, key, key_len, vols);
	int rc = put_new(st, vols, n, bucket, out);

	if (rc)
		return rc;
	memcpy((*out)->key, key, key_len);
	(*out)->key_len = key_len;
	return 0;
}

int store_put_begin(struct store *st, const char *bucket, const char *key, size_t key_len,
		    struct store_put **out)
{
	int rc = store_check_key(key_len);

	if (rc || (rc = store_bucket_check(st, bucket)))
		return rc;
	return put_begin_key(st, bucket, key, key_len, false, out);
}

int store_part_begin(struct store *st, const char *bucket, const char *upload_id,
		     int part_no, struct store_put **out)
{
	int vols[STORE_VOLS_MAX];
	int rc;

	if (part_no < 1 || part_no > STORE_PARTS_MAX)
		return -EINVAL;
	if (store_check_bucket(bucket) || !upload_id || strlen(upload_id) > STORE_UPLOAD_ID_MAX)
		return -ENOENT;
	if ((rc = store_upload_vols(st, bucket, upload_id, vols)) < 0 ||
	    (rc = put_new(st, vols, rc, bucket, out)))
		return rc;
	(*out)->part = true;
	(*out)->part_no = part_no;
	snprintf((*out)->upload_id, sizeof((*out)->upload_id), "%s", upload_id);
	return 0;
}

/* Counts the copies still going; too few fail the whole put. */
static int put_live(struct store_put *p, int rc)
{
	int live = 0;

	for (int i = 0; i < p->nrep; i++)
		live += !p->rep[i].err;
	return live >= p->need ? 0 : store_quorum_err(rc);
}

static void rep_fail(struct put_rep *r, int rc, const char *what)
{
	if (rc != -ENOSPC)	/* a full disk is logged once, by vol_fault */
		log_warnx("store_%s vol=%s bucket=%s rc=%d", what, r->v->path, r->p->bucket, rc);
	r->err = vol_fault(r->v, rc, what);
}

/* Data stops at the disk's headroom, so that deletes (index rows) still fit when full. */
static void rep_write(struct put_rep *r, const void *buf, size_t len)
{
	int rc;

	if (r->err)
		return;
	if ((rc = vol_space_check(r->v, (int64_t)len)) ||
	    (rc = file_write_all(r->fd, buf, len)))
		rep_fail(r, rc, "write");
}

/* The body outgrew memory (or is a part, always a file): a temp file on every disk. */
static int put_materialize(struct store_put *p)
{
	int rc = 0;

	p->file = true;
	for (int i = 0; i < p->nrep; i++) {
		struct put_rep *r = &p->rep[i];

		if (r->err)
			continue;
		if ((rc = vol_tmp_create(r->v, r->id, &r->fd))) {
			rep_fail(r, rc, "tmp_create");
			continue;
		}
		r->file = true;
		rep_write(r, p->buf, (size_t)p->size);
		rc = r->err;
	}
	return put_live(p, rc);
}

static int crc_push(struct store_put *p)
{
	if (p->ncrcs == p->capcrcs) {
		size_t cap = p->capcrcs ? 2 * p->capcrcs : CRCS_MIN;
		void *n = realloc(p->crcs, cap * sizeof(*p->crcs));

		if (!n)
			return -ENOMEM;
		p->crcs = n;
		p->capcrcs = cap;
	}
	p->crcs[p->ncrcs++] = p->crc;
	p->crc = 0;
	return 0;
}

/* Extends the block checksums over buf, which starts at offset p->size. */
static int crc_update(struct store_put *p, const unsigned char *buf, size_t len)
{
	int64_t pos = p->size;
	int rc = 0;

	while (len && !rc) {
		size_t room = (size_t)(STORE_BLOCK - pos % STORE_BLOCK);
		size_t n = len < room ? len : room;

		p->crc = crc32c(p->crc, buf, n);
		buf += n;
		len -= n;
		pos += (int64_t)n;
		if (pos % STORE_BLOCK == 0)
			rc = crc_push(p);
	}
	return rc;
}

int store_put_write(struct store_put *p, const void *buf, size_t len)
{
	int rc = p->err;

	if (rc || len == 0)
		return rc;
	if ((int64_t)len > STORE_PUT_MAX - p->size) {
		rc = -EFBIG;
		goto out_fail;
	}
	if (!p->file && p->size + (int64_t)len <= STORE_INLINE_MAX) {
		memcpy(p->buf + p->size, buf, len);
	} else {
		if (!p->file && (rc = put_materialize(p)))
			goto out_fail;
		for (int i = 0; i < p->nrep; i++) {
			rep_write(&p->rep[i], buf, len);
			rc = p->rep[i].err ? p->rep[i].err : rc;
		}
		if ((rc = put_live(p, rc)))
			goto out_fail;
	}
	if ((rc = crc_update(p, buf, len)))
		goto out_fail;
	p->size += (int64_t)len;
	return 0;

out_fail:
	p->err = rc;
	return rc;
}

int64_t store_put_size(const struct store_put *p)
{
	return p->size;
}

static void put_free(struct store_put *p)
{
	for (int i = 0; i < p->nrep; i++) {
		if (p->rep[i].fd >= 0 && close(p->rep[i].fd) < 0)
			log_warn("store_close vol=%s", p->rep[i].v->path);
	}
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p->crcs);
	free(p);
}

void store_put_abort(struct store_put *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->nrep; i++) {
		if (p->rep[i].file)
			vol_tmp_unlink(p->rep[i].v, p->rep[i].id);
	}
	put_free(p);
}

/* --- commit --- */

int store_obj_row_put(struct vol *v, struct vconn *w, const struct obj_row *r)
{
	sqlite3_stmt *s = w->st[VS_OBJ_PUT];

	sqlite3_bind_text(s, 1, r->bucket, -1, SQLITE_STATIC);
	store_bind_blob(s, 2, r->key, r->key_len);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)r->version);
	sqlite3_bind_int64(s, 4, r->info->size);
	sqlite3_bind_int64(s, 5, r->info->mtime_ms);
	sqlite3_bind_text(s, 6, r->info->etag, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 7, r->info->nparts);
	store_bind_blob(s, 8, r->info->meta, r->info->meta_len);
	store_bind_blob(s, 9, r->crcs, r->ncrcs * CRC_LEN);
	if (r->segs) {
		sqlite3_bind_null(s, 10);
		store_bind_blob(s, 11, r->segs, r->segs_len);
	} else {
		store_bind_blob(s, 10, r->inl, (size_t)r->info->size);
		sqlite3_bind_null(s, 11);
	}
	return vol_exec(v, w, VS_OBJ_PUT);
}

/* The file's bytes and its name in tmp/ reach the disk before any row names it. */
static int put_sync(struct put_rep *r)
{
	int rc = 0;

	if (fsync(r->fd) < 0) {
		rc = -errno;
		log_warn("store_fsync vol=%s bucket=%s", r->v->path, r->p->bucket);
	}
	if (close(r->fd) < 0 && !rc) {
		rc = -errno;
		log_warn("store_close vol=%s bucket=%s", r->v->path, r->p->bucket);
	}
	r->fd = -1;
	return rc ? rc : vol_tmp_sync_dir(r->v);
}

/* Ends a transaction; a failed COMMIT may still have reached the disk, so the caller
 * must leave the temp file for recovery to decide. */
static int tx_finish(struct vol *v, int rc, bool *uncertain)
{
	if (rc)
		return vol_tx_end(v, rc);
	rc = vol_tx_end(v, 0);
	*uncertain = rc != 0 && rc != -ENOSPC;	/* a WAL write out of space: not committed */
	return rc;
}

/* 1 when v already holds a newer version of the key (this copy is then moot). */
static int newer_there(struct put_rep *r, struct vconn *w)
{
	struct store_put *p = r->p;
	uint64_t ver;
	bool tomb;
	int rc = store_row_version(r->v, w, p->bucket, p->key, p->key_len, &ver, &tomb);

	return rc == 1 ? ver > p->version : rc;
}

static int commit_obj(struct put_rep *r, bool *uncertain, bool *moot)
{
	struct store_put *p = r->p;
	unsigned char seg[SEG_REC];
	struct obj_row row = { p->bucket, p->key, p->key_len, p->version, &p->info, p->crcs,
			       p->ncrcs, p->buf, NULL, 0 };
	struct vconn *w;
	int rc;

	if (p->file) {
		memcpy(seg, r->id, VOL_ID_LEN);
		memcpy(seg + VOL_ID_LEN, &p->size, sizeof(p->size));
		row.segs = seg;
		row.segs_len = sizeof(seg);
	}
	pthread_rwlock_rdlock(&p->st->bucket_lock);
	if ((rc = vol_tx_begin(r->v, &w)))
		goto out_unlock;
	if ((rc = store_bucket_check_tx(r->v, w, p->bucket)) || (rc = newer_there(r, w)) < 0)
		goto out_end;
	if (rc == 1) {
		*moot = true;		/* newest wins: a later write already landed here */
		rc = 0;
		goto out_end;
	}
	if ((rc = store_gc_object(r->v, w, p->bucket, p->key, p->key_len)))
		goto out_end;
	if (p->file && (rc = vol_tx_file(r->v, r->id)))
		goto out_end;
	rc = store_obj_row_put(r->v, w, &row);
out_end:
	rc = tx_finish(r->v, rc, uncertain);
out_unlock:
	pthread_rwlock_unlock(&p->st->bucket_lock);
	return rc;
}

static int part_put_row(struct put_rep *r, struct vconn *w)
{
	struct store_put *p = r->p;
	sqlite3_stmt *s = w->st[VS_PART_PUT];

	sqlite3_bind_text(s, 1, p->bucket, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, p->upload_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, p->part_no);
	sqlite3_bind_int64(s, 4, p->size);
	sqlite3_bind_text(s, 5, p->info.etag, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, p->info.mtime_ms);
	store_bind_blob(s, 7, r->id, VOL_ID_LEN);
	store_bind_blob(s, 8, p->crcs, p->ncrcs * CRC_LEN);
	return vol_exec(r->v, w, VS_PART_PUT);
}

/* 1 and the part's file id when the part exists, 0 if not, or -errno. */
static int part_file(struct put_rep *r, struct vconn *w, unsigned char id[VOL_ID_LEN])
{
	struct store_put *p = r->p;
	sqlite3_stmt *s = w->st[VS_PART_GET];
	int rc, found = 0;

	sqlite3_bind_text(s, 1, p->bucket, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, p->upload_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, p->part_no);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(s, 0) == VOL_ID_LEN) {
		memcpy(id, sqlite3_column_blob(s, 0), VOL_ID_LEN);
		found = 1;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return vol_sqlerr(r->v, w->db, rc, "part_get");
	return found;
}

static int upload_exists_tx(struct put_rep *r, struct vconn *w)
{
	sqlite3_stmt *s = w->st[VS_UPLOAD_GET];
	int rc;

	sqlite3_bind_text(s, 1, r->p->bucket, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, r->p->upload_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : vol_sqlerr(r->v, w->db, rc, "upload_get");
}

static int commit_part(struct put_rep *r, bool *uncertain)
{
	unsigned char old[VOL_ID_LEN];
	struct vconn *w;
	int rc = vol_tx_begin(r->v, &w);

	if (rc)
		return rc;
	if ((rc = upload_exists_tx(r, w)) || (rc = part_file(r, w, old)) < 0)
		goto out_end;
	if (rc == 1 && (rc = vol_tx_garbage(r->v, old)))
		goto out_end;
	if (!(rc = vol_tx_file(r->v, r->id)))
		rc = part_put_row(r, w);
out_end:
	return tx_finish(r->v, rc, uncertain);
}

/* One disk's commit: fsync, transaction, rename. */
static int rep_commit(struct put_rep *r)
{
	struct store_put *p = r->p;
	bool uncertain = false, moot = false;
	int rc = 0;

	if (p->file && (rc = put_sync(r)))
		goto out_unlink;
	rc = p->part ? commit_part(r, &uncertain) : commit_obj(r, &uncertain, &moot);
	if (rc && uncertain) {
		log_warnx("store_commit_uncertain vol=%s bucket=%s rc=%d", r->v->path, p->bucket, rc);
		return vol_fault(r->v, rc, "commit");
	}
	if (rc || moot)
		goto out_unlink;
	/* Committed: a failed rename only delays the move, readers look in tmp/ too. */
	if (p->file)
		vol_file_publish(r->v, r->id);
	vol_count(&r->v->n_writes, 1);
	vol_count(&r->v->n_write_bytes, (uint64_t)p->size);
	return 0;

out_unlink:
	if (p->file)
		vol_tmp_unlink(r->v, r->id);
	return vol_fault(r->v, rc, "commit");
}

/* Drops a reference; the last one frees p. Called with p->mu held; releases it. */
static void put_unref_unlock(struct store_put *p)
{
	struct store *st = p->st;
	bool last = --p->refs == 0;

	pthread_mutex_unlock(&p->mu);
	if (last) {
		put_free(p);
		store_bg_end(st);
	}
}

static void rep_job(void *arg)
{
	struct put_rep *r = arg;
	struct store_put *p = r->p;
	int rc = rep_commit(r);

	if (!rc && !vol_online(r->v))
		rc = -ENODEV;	/* landed on a disk that went away meanwhile: not a copy */
	if (rc && !p->part && rc != -ENOENT)
		store_heal_queue(p->st, p->bucket, p->key, p->key_len);
	pthread_mutex_lock(&p->mu);
	if (rc && !p->first_err)
		p->first_err = rc;
	p->ok += !rc;
	p->pending--;
	pthread_cond_broadcast(&p->cv);
	put_unref_unlock(p);
}

/* Every copy on its disk's pool; returns once W are durable or W can no longer be. */
static int put_replicate(struct store_put *p)
{
	int rc, live = 0;

	store_bg_begin(p->st);
	pthread_mutex_lock(&p->mu);
	p->refs = 1;
	for (int i = 0; i < p->nrep; i++) {
		struct put_rep *r = &p->rep[i];

		if (r->err) {
			if (r->file)
				vol_tmp_unlink(r->v, r->id);
			continue;
		}
		p->refs++;
		p->pending++;
		live++;
		if (workq_submit(p->st->wq[r->vi], rep_job, r)) {
			p->refs--;
			p->pending--;
			r->err = -ENOMEM;
		}
	}
	while (p->ok < p->need && p->ok + p->pending >= p->need)
		pthread_cond_wait(&p->cv, &p->mu);
	rc = p->ok >= p->need ? 0 : store_quorum_err(p->first_err);
	if (!rc && live < p->st->replicas && !p->part)
		store_heal_queue(p->st, p->bucket, p->key, p->key_len);	/* a disk was out */
	if (rc)
		log_warnx("store_no_quorum bucket=%s ok=%d need=%d rc=%d", p->bucket, p->ok,
			  p->need, rc);
	put_unref_unlock(p);
	return rc;
}

/* An object kept in memory becomes index rows: each disk needs room for it above its
 * headroom, checked before any copy commits so a refused put leaves nothing behind. */
static int put_space_rows(struct store_put *p, const struct store_objinfo *info)
{
	int rc = 0;

	if (p->file || p->tomb)
		return 0;
	for (int i = 0; i < p->nrep; i++) {
		struct put_rep *r = &p->rep[i];

		if (!r->err && (rc = vol_space_check(r->v, p->size + (int64_t)info->meta_len)))
			rep_fail(r, rc, "space");
	}
	return put_live(p, rc);
}

/* Freezes the body and stamps the version; the copies then commit. */
static int put_commit_ver(struct store_put *p, struct store_objinfo *info, uint64_t *version)
{
	int rc = p->err;

	if (rc || (p->part && !p->file && (rc = put_materialize(p))) ||
	    (rc = put_space_rows(p, info)))
		goto out_abort;
	if (p->size % STORE_BLOCK && (rc = crc_push(p)))
		goto out_abort;
	*version = p->version = store_version(p->st);
	info->size = p->size;
	info->mtime_ms = store_version_ms(p->version);
	if (!p->part)
		info->nparts = p->tomb ? VOL_TOMB : 0;
	p->info = *info;
	return put_replicate(p);

out_abort:
	store_put_abort(p);
	return rc;
}

int store_put_commit(struct store_put *p, struct store_objinfo *info)
{
	uint64_t version;

	return put_commit_ver(p, info, &version);
}

int store_put_tomb(struct store *st, const char *bucket, const char *key, size_t key_len)
{
	struct store_objinfo info = { .size = 0 };
	int vols[STORE_VOLS_MAX], n;
	struct store_put *p;
	uint64_t version;
	int rc = put_begin_key(st, bucket, key, key_len, true, &p);

	if (rc)
		return rc;
	p->tomb = true;
	if ((rc = put_commit_ver(p, &info, &version)))
		return rc;
	/* Copies an older disk set left elsewhere: gone (the tombstone outranks them anyway). */
	n = store_targets(st, bucket, key, key_len, vols);
	for (int i = 0; i < st->nvols; i++) {
		bool target = false;

		for (int j = 0; j < n; j++)
			target |= vols[j] == i;
		if (!target && vol_online(store_vol(st, i)))
			store_row_drop(store_vol(st, i), bucket, key, key_len, version);
	}
	return 0;
}

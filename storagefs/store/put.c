/* put.c — writing an object or a multipart part: bytes buffered in memory up to
 * STORE_INLINE_MAX, then appended to a temp file, CRC32C per block as they arrive; the
 * commit (fsync, index transaction, rename, garbage) that makes them durable and visible. */
#include "store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lib/hash.h"
#include "../../lib/log.h"

#define CRCS_MIN	16

struct store_put {
	struct store *st;
	struct vol *v;
	bool part;
	int part_no;
	char upload_id[STORE_UPLOAD_ID_MAX + 1];
	char bucket[STORE_BUCKET_MAX + 1];
	size_t key_len;
	char key[STORE_KEY_MAX];
	int fd;				/* the temp file, -1 while the body is in buf */
	bool file;			/* the temp file exists (fd may be closed already) */
	unsigned char id[VOL_ID_LEN];
	int err;			/* sticky: the first write error fails the commit */
	int64_t size;
	uint32_t crc;			/* of the current, incomplete block */
	uint32_t *crcs;			/* of the complete blocks */
	size_t ncrcs, capcrcs;
	unsigned char buf[STORE_INLINE_MAX];
};

static int put_new(struct store *st, struct vol *v, const char *bucket, struct store_put **out)
{
	struct store_put *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->st = st;
	p->v = v;
	p->fd = -1;
	snprintf(p->bucket, sizeof(p->bucket), "%s", bucket);
	*out = p;
	return 0;
}

int store_put_begin(struct store *st, const char *bucket, const char *key, size_t key_len,
		    struct store_put **out)
{
	int order[STORE_VOLS_MAX];
	int rc = store_check_key(key_len);

	if (rc || (rc = store_bucket_check(st, bucket)))
		return rc;
	store_place(st, bucket, key, key_len, order);
	if ((rc = put_new(st, st->vols[order[0]], bucket, out)))
		return rc;
	memcpy((*out)->key, key, key_len);
	(*out)->key_len = key_len;
	return 0;
}

int store_part_begin(struct store *st, const char *bucket, const char *upload_id,
		     int part_no, struct store_put **out)
{
	struct vol *v;
	int rc;

	if (part_no < 1 || part_no > STORE_PARTS_MAX)
		return -EINVAL;
	if (store_check_bucket(bucket) || !upload_id || strlen(upload_id) > STORE_UPLOAD_ID_MAX)
		return -ENOENT;
	if ((rc = store_upload_vol(st, bucket, upload_id, &v)) ||
	    (rc = put_new(st, v, bucket, out)))
		return rc;
	(*out)->part = true;
	(*out)->part_no = part_no;
	snprintf((*out)->upload_id, sizeof((*out)->upload_id), "%s", upload_id);
	return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The body outgrew memory (or is a part, always a file): create the temp file. */
static int put_materialize(struct store_put *p)
{
	int rc = vol_tmp_create(p->v, p->id, &p->fd);

	if (rc)
		return rc;
	p->file = true;
	rc = write_all(p->fd, p->buf, (size_t)p->size);
	if (rc)
		log_warnx("store_write vol=%s bucket=%s rc=%d", p->v->path, p->bucket, rc);
	return rc;
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
	if (p->fd < 0 && p->size + (int64_t)len <= STORE_INLINE_MAX) {
		memcpy(p->buf + p->size, buf, len);
	} else {
		if (p->fd < 0 && (rc = put_materialize(p)))
			goto out_fail;
		if ((rc = write_all(p->fd, buf, len))) {
			log_warnx("store_write vol=%s bucket=%s rc=%d", p->v->path, p->bucket, rc);
			goto out_fail;
		}
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
	if (p->fd >= 0 && close(p->fd) < 0)
		log_warn("store_close vol=%s", p->v->path);
	free(p->crcs);
	free(p);
}

void store_put_abort(struct store_put *p)
{
	if (!p)
		return;
	if (p->file)
		vol_tmp_unlink(p->v, p->id);
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
static int put_sync(struct store_put *p)
{
	int rc = 0;

	if (fsync(p->fd) < 0) {
		rc = -errno;
		log_warn("store_fsync vol=%s bucket=%s", p->v->path, p->bucket);
	}
	if (close(p->fd) < 0 && !rc) {
		rc = -errno;
		log_warn("store_close vol=%s bucket=%s", p->v->path, p->bucket);
	}
	p->fd = -1;
	return rc ? rc : vol_tmp_sync_dir(p->v);
}

/* Ends a transaction; a failed COMMIT may still have reached the disk, so the caller
 * must leave the temp file for recovery to decide. */
static int tx_finish(struct vol *v, int rc, bool *uncertain)
{
	if (rc)
		return vol_tx_end(v, rc);
	rc = vol_tx_end(v, 0);
	*uncertain = rc != 0;
	return rc;
}

static int commit_obj(struct store_put *p, struct store_objinfo *info, uint64_t version,
		      bool *uncertain)
{
	unsigned char seg[SEG_REC];
	struct obj_row r = { p->bucket, p->key, p->key_len, version, info, p->crcs, p->ncrcs,
			     p->buf, NULL, 0 };
	struct vconn *w;
	int rc;

	info->nparts = 0;
	if (p->file) {
		memcpy(seg, p->id, VOL_ID_LEN);
		memcpy(seg + VOL_ID_LEN, &p->size, sizeof(p->size));
		r.segs = seg;
		r.segs_len = sizeof(seg);
	}
	pthread_rwlock_rdlock(&p->st->bucket_lock);
	if ((rc = vol_tx_begin(p->v, &w)))
		goto out_unlock;
	if ((rc = store_bucket_check_tx(p->v, w, p->bucket)) ||
	    (rc = store_gc_object(p->v, w, p->bucket, p->key, p->key_len)))
		goto out_end;
	if (p->file && (rc = vol_tx_file(p->v, p->id)))
		goto out_end;
	rc = store_obj_row_put(p->v, w, &r);
out_end:
	rc = tx_finish(p->v, rc, uncertain);
out_unlock:
	pthread_rwlock_unlock(&p->st->bucket_lock);
	return rc;
}

static int part_put_row(struct store_put *p, struct vconn *w, const struct store_objinfo *info)
{
	sqlite3_stmt *s = w->st[VS_PART_PUT];

	sqlite3_bind_text(s, 1, p->bucket, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, p->upload_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, p->part_no);
	sqlite3_bind_int64(s, 4, p->size);
	sqlite3_bind_text(s, 5, info->etag, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, info->mtime_ms);
	store_bind_blob(s, 7, p->id, VOL_ID_LEN);
	store_bind_blob(s, 8, p->crcs, p->ncrcs * CRC_LEN);
	return vol_exec(p->v, w, VS_PART_PUT);
}

/* 1 and the part's file id when the part exists, 0 if not, or -errno. */
static int part_file(struct store_put *p, struct vconn *w, unsigned char id[VOL_ID_LEN])
{
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
		return vol_sqlerr(p->v, w->db, rc, "part_get");
	return found;
}

static int upload_exists_tx(struct store_put *p, struct vconn *w)
{
	sqlite3_stmt *s = w->st[VS_UPLOAD_GET];
	int rc;

	sqlite3_bind_text(s, 1, p->bucket, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, p->upload_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : vol_sqlerr(p->v, w->db, rc, "upload_get");
}

static int commit_part(struct store_put *p, struct store_objinfo *info, bool *uncertain)
{
	unsigned char old[VOL_ID_LEN];
	struct vconn *w;
	int rc = vol_tx_begin(p->v, &w);

	if (rc)
		return rc;
	if ((rc = upload_exists_tx(p, w)) || (rc = part_file(p, w, old)) < 0)
		goto out_end;
	if (rc == 1 && (rc = vol_tx_garbage(p->v, old)))
		goto out_end;
	if (!(rc = vol_tx_file(p->v, p->id)))
		rc = part_put_row(p, w, info);
out_end:
	return tx_finish(p->v, rc, uncertain);
}

int store_put_commit(struct store_put *p, struct store_objinfo *info)
{
	bool uncertain = false;
	uint64_t version;
	int rc = p->err;

	if (rc || (p->part && !p->file && (rc = put_materialize(p))))
		goto out_abort;
	if (p->size % STORE_BLOCK && (rc = crc_push(p)))
		goto out_abort;
	if (p->file && (rc = put_sync(p)))
		goto out_abort;
	version = store_version(p->st);
	info->size = p->size;
	info->mtime_ms = store_version_ms(version);
	rc = p->part ? commit_part(p, info, &uncertain) : commit_obj(p, info, version, &uncertain);
	if (rc && uncertain) {
		log_warnx("store_commit_uncertain vol=%s bucket=%s rc=%d", p->v->path, p->bucket, rc);
		put_free(p);
		return rc;
	}
	if (rc)
		goto out_abort;
	/* Committed: a failed rename only delays the move, readers look in tmp/ too. */
	if (p->file)
		vol_file_publish(p->v, p->id);
	put_free(p);
	return 0;

out_abort:
	store_put_abort(p);
	return rc;
}

/* apply.c — what a cluster needs from a node's store: a replica or a tombstone written with
 * the coordinator's version (it lands only if newer than what the node holds), a row read
 * with its version (its listing, store_rows_list, shares list.c's merge). Built on the
 * store's internal row, volume and replica functions, beside put.c's own write path. */
#include "store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lib/fileio.h"
#include "../../lib/hash.h"
#include "../../lib/log.h"

#define APPLY_CRCS_MIN	16
#define APPLY_CHUNK	(256 * 1024)	/* read from a file at a time */
#define REP_OPEN_TRIES	3		/* a newer write replaced the version between scan and open */

/* Versions from other nodes move this node's clock past them: its own later stamps (as a
 * coordinator) must outrank every write it has seen. */
static void clock_pass(struct store *st, uint64_t version)
{
	uint64_t last = __atomic_load_n(&st->last_version, __ATOMIC_RELAXED);

	while (last < version &&
	       !__atomic_compare_exchange_n(&st->last_version, &last, version, false,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

static int check_names(struct store *st, const char *bucket, size_t key_len)
{
	int rc = store_check_key(key_len);

	if (rc)
		return rc;
	return store_check_bucket(bucket) ? -ENOENT : store_bucket_check(st, bucket);
}

/* --- which disks hold the newest version --- */

struct row_view {
	uint64_t version;		/* 0: no disk has a row */
	bool tomb;
	int ncand;			/* disks holding that version, placement order */
	int cand[STORE_VOLS_MAX];
};

static void row_scan(struct store *st, const char *bucket, const char *key, size_t key_len,
		     struct row_view *rv)
{
	int order[STORE_VOLS_MAX];

	memset(rv, 0, sizeof(*rv));
	store_place(st, bucket, key, key_len, order);
	for (int i = 0; i < st->nvols; i++) {
		struct vol *v = store_vol(st, order[i]);
		struct vconn *c;
		uint64_t ver;
		bool tomb;
		int rc;

		if (!vol_online(v))
			continue;
		c = vol_reader(v);
		rc = store_row_version(v, c, bucket, key, key_len, &ver, &tomb);
		vol_reader_put(c);
		if (rc == 1 && ver > rv->version) {
			rv->version = ver;
			rv->tomb = tomb;
			rv->ncand = 0;
		}
		if (rc == 1 && ver == rv->version)
			rv->cand[rv->ncand++] = order[i];
	}
}

/* --- reading a replica with its version --- */

struct store_rep {
	struct store *st;
	struct row_view rv;
	int ci;				/* the candidate r was opened from */
	struct rep_obj *r;
};

/* Candidate ci's replica if it still holds the version (-ESTALE: replaced meanwhile). */
static int rep_cand(struct store_rep *p, int ci, const char *bucket, const char *key,
		    size_t key_len, struct rep_obj **out)
{
	int rc = rep_open(store_vol(p->st, p->rv.cand[ci]), bucket, key, key_len, out);

	if (rc == 0 && (*out)->version != p->rv.version) {
		rep_close(*out);
		rc = -ESTALE;
	}
	return rc;
}

/* One scan and the first candidate that opens: 0, 1 (none or a tombstone), -ESTALE. */
static int rep_first(struct store_rep *p, const char *bucket, const char *key, size_t key_len)
{
	int rc = -ESTALE;

	row_scan(p->st, bucket, key, key_len, &p->rv);
	if (!p->rv.ncand || p->rv.tomb)
		return 1;
	for (p->ci = 0; p->ci < p->rv.ncand; p->ci++) {
		rc = rep_cand(p, p->ci, bucket, key, key_len, &p->r);
		if (rc == 0)
			return 0;
		if (rc != -ESTALE && rc != -ENOENT)
			store_heal_queue(p->st, bucket, key, key_len);	/* a bad row or file */
	}
	return rc == -ENOENT ? -ESTALE : rc;
}

int store_rep_open(struct store *st, const char *bucket, const char *key, size_t key_len,
		   struct store_row *row, struct store_rep **out)
{
	struct store_rep *p;
	int rc = check_names(st, bucket, key_len);

	memset(row, 0, sizeof(*row));
	if (rc)
		return rc;
	if (!(p = calloc(1, sizeof(*p))))
		return -ENOMEM;
	p->st = st;
	for (int i = 0; i < REP_OPEN_TRIES; i++)
		if ((rc = rep_first(p, bucket, key, key_len)) != -ESTALE)
			break;
	row->version = p->rv.version;
	row->tomb = p->rv.tomb;
	if (rc == 1) {
		row->info.mtime_ms = row->tomb ? store_version_ms(row->version) : 0;
		rc = -ENOENT;
	}
	if (rc) {
		free(p);
		return rc == -ESTALE ? -EIO : rc;
	}
	row->info = p->r->info;
	*out = p;
	return 0;
}

/* A bad block on the current replica: move to the next disk holding the same version. */
static bool rep_switch(struct store_rep *p, int rc)
{
	struct rep_obj *cur = p->r, *next = NULL;
	int n;

	if (rc != -EBADMSG && rc != -EIO)
		return false;
	vol_fault(cur->v, rc, "read");
	store_heal_queue(p->st, cur->bucket, cur->key, cur->key_len);
	for (n = 1; n < p->rv.ncand && !next; n++) {
		int ci = (p->ci + n) % p->rv.ncand;

		if (rep_cand(p, ci, cur->bucket, cur->key, cur->key_len, &next) == 0)
			p->ci = ci;
		else
			next = NULL;
	}
	if (!next)
		return false;
	rep_close(cur);
	p->r = next;
	return true;
}

int store_rep_read(struct store_rep *p, int64_t pos, void *buf, size_t len)
{
	int64_t size = p->r->info.size;
	unsigned char *out = buf;
	int rc = 0;

	if (pos < 0 || (int64_t)len > size || pos > size - (int64_t)len)
		return -EINVAL;
	while (len && !rc) {
		size_t n = (size_t)(STORE_BLOCK - pos % STORE_BLOCK);

		n = n < len ? n : len;
		for (int tries = 1; (rc = rep_read(p->r, pos, out, n)) && tries < p->rv.ncand &&
		     rep_switch(p, rc); tries++)
			;
		out += n;
		pos += (int64_t)n;
		len -= n;
	}
	return rc;
}

void store_rep_close(struct store_rep *p)
{
	if (!p)
		return;
	rep_close(p->r);
	free(p);
}

int store_row_get(struct store *st, const char *bucket, const char *key, size_t key_len,
		  struct store_row *out)
{
	struct store_rep *p;
	int rc = store_rep_open(st, bucket, key, key_len, out, &p);

	if (rc == 0)
		store_rep_close(p);
	return rc == -ENOENT && out->tomb ? 0 : rc;
}

/* --- writing a replica --- */

/* One disk's copy. */
struct apply_rep {
	struct vol *v;
	int fd;				/* the temp file, -1 while the body is in memory */
	bool file;			/* the temp file exists */
	unsigned char id[VOL_ID_LEN];
	int err;
};

struct store_apply {
	struct store *st;
	char bucket[STORE_BUCKET_MAX + 1];
	size_t key_len;
	char key[STORE_KEY_MAX];
	int nrep;
	struct apply_rep rep[STORE_VOLS_MAX];
	bool file;			/* the body outgrew memory: every copy has a file */
	int err;			/* sticky */
	int64_t size;
	uint32_t crc;			/* of the current, incomplete block */
	uint32_t *crcs;
	size_t ncrcs, capcrcs;
	unsigned char buf[STORE_INLINE_MAX];
};

int store_apply_begin(struct store *st, const char *bucket, const char *key, size_t key_len,
		      struct store_apply **out)
{
	int vols[STORE_VOLS_MAX], n;
	struct store_apply *a;
	int rc = check_names(st, bucket, key_len);

	if (rc)
		return rc;
	n = store_write_targets(st, bucket, key, key_len, vols);
	if (n < st->quorum)
		return -STORE_ENOQUORUM;
	if (!(a = calloc(1, sizeof(*a))))
		return -ENOMEM;
	a->st = st;
	snprintf(a->bucket, sizeof(a->bucket), "%s", bucket);
	memcpy(a->key, key, key_len);
	a->key_len = key_len;
	a->nrep = n;
	for (int i = 0; i < n; i++) {
		a->rep[i].v = store_vol(st, vols[i]);
		a->rep[i].fd = -1;
	}
	*out = a;
	return 0;
}

static int live_check(struct store_apply *a, int rc)
{
	int live = 0;

	for (int i = 0; i < a->nrep; i++)
		live += !a->rep[i].err;
	return live >= a->st->quorum ? 0 : store_quorum_err(rc);
}

static void rep_fail(struct store_apply *a, struct apply_rep *r, int rc, const char *what)
{
	if (rc != -ENOSPC)
		log_warnx("store_apply_%s vol=%s bucket=%s rc=%d", what, r->v->path, a->bucket, rc);
	r->err = vol_fault(r->v, rc, what);
}

static void rep_write(struct store_apply *a, struct apply_rep *r, const void *buf, size_t len)
{
	int rc;

	if (!r->err && ((rc = vol_space_check(r->v, (int64_t)len)) ||
			(rc = file_write_all(r->fd, buf, len))))
		rep_fail(a, r, rc, "write");
}

static int materialize(struct store_apply *a)
{
	int rc = 0;

	a->file = true;
	for (int i = 0; i < a->nrep; i++) {
		struct apply_rep *r = &a->rep[i];

		if (r->err)
			continue;
		if ((rc = vol_tmp_create(r->v, r->id, &r->fd))) {
			rep_fail(a, r, rc, "tmp_create");
			continue;
		}
		r->file = true;
		rep_write(a, r, a->buf, (size_t)a->size);
		rc = r->err ? r->err : rc;
	}
	return live_check(a, rc);
}

static int crc_push(struct store_apply *a)
{
	if (a->ncrcs == a->capcrcs) {
		size_t cap = a->capcrcs ? 2 * a->capcrcs : APPLY_CRCS_MIN;
		void *n = realloc(a->crcs, cap * sizeof(*a->crcs));

		if (!n)
			return -ENOMEM;
		a->crcs = n;
		a->capcrcs = cap;
	}
	a->crcs[a->ncrcs++] = a->crc;
	a->crc = 0;
	return 0;
}

static int crc_update(struct store_apply *a, const unsigned char *buf, size_t len)
{
	int64_t pos = a->size;
	int rc = 0;

	while (len && !rc) {
		size_t room = (size_t)(STORE_BLOCK - pos % STORE_BLOCK);
		size_t n = len < room ? len : room;

		a->crc = crc32c(a->crc, buf, n);
		buf += n;
		len -= n;
		pos += (int64_t)n;
		if (pos % STORE_BLOCK == 0)
			rc = crc_push(a);
	}
	return rc;
}

int store_apply_write(struct store_apply *a, const void *buf, size_t len)
{
	int rc = a->err;

	if (rc || len == 0)
		return rc;
	if ((int64_t)len > STORE_APPLY_MAX - a->size) {
		rc = -EFBIG;
	} else if (!a->file && a->size + (int64_t)len <= STORE_INLINE_MAX) {
		memcpy(a->buf + a->size, buf, len);
	} else if (a->file || !(rc = materialize(a))) {
		for (int i = 0; i < a->nrep; i++) {
			rep_write(a, &a->rep[i], buf, len);
			rc = a->rep[i].err ? a->rep[i].err : rc;
		}
		rc = live_check(a, rc);
	}
	if (!rc)
		rc = crc_update(a, buf, len);
	if (rc)
		return a->err = rc;
	a->size += (int64_t)len;
	return 0;
}

void store_apply_abort(struct store_apply *a)
{
	if (!a)
		return;
	for (int i = 0; i < a->nrep; i++) {
		struct apply_rep *r = &a->rep[i];

		if (r->fd >= 0 && close(r->fd) < 0)
			log_warn("store_close vol=%s", r->v->path);
		if (r->file)
			vol_tmp_unlink(r->v, r->id);
	}
	free(a->crcs);
	free(a);
}

/* In one transaction on v: the row, unless v holds row->version or a newer one (1, and
 * *there says which). *uncertain: a failed COMMIT that may have reached the disk. */
static int row_tx(struct store *st, struct vol *v, const struct obj_row *row,
		  const unsigned char *file_id, uint64_t *there, bool *uncertain)
{
	struct vconn *w;
	uint64_t ver;
	bool tomb;
	int rc;

	pthread_rwlock_rdlock(&st->bucket_lock);
	if ((rc = vol_tx_begin(v, &w)))
		goto out_unlock;
	if ((rc = store_bucket_check_tx(v, w, row->bucket)) ||
	    (rc = store_row_version(v, w, row->bucket, row->key, row->key_len, &ver, &tomb)) < 0)
		goto out_end;
	if (rc == 1 && ver >= row->version) {
		*there = ver;
		goto out_end;		/* rolls back, returns 1 */
	}
	rc = store_gc_object(v, w, row->bucket, row->key, row->key_len);
	if (!rc && file_id)
		rc = vol_tx_file(v, file_id);
	if (!rc)
		rc = store_obj_row_put(v, w, row);
	if (!rc) {
		rc = vol_tx_end(v, 0);
		*uncertain = rc != 0 && rc != -ENOSPC;
		goto out_unlock;
	}
out_end:
	rc = vol_tx_end(v, rc);
out_unlock:
	pthread_rwlock_unlock(&st->bucket_lock);
	return rc;
}

/* The temp file's bytes and its name reach the disk before a row names it. */
static int rep_sync(struct apply_rep *r)
{
	int rc = fsync(r->fd) < 0 ? -errno : 0;

	if (close(r->fd) < 0 && !rc)
		rc = -errno;
	r->fd = -1;
	return rc ? rc : vol_tmp_sync_dir(r->v);
}

/* One disk: 0 landed, 1 it holds that version or newer (*there), -errno. */
static int rep_commit(struct store_apply *a, struct apply_rep *r, const struct obj_row *row,
		      uint64_t *there)
{
	bool uncertain = false;
	int rc = a->file ? rep_sync(r) : 0;

	if (!rc)
		rc = row_tx(a->st, r->v, row, a->file ? r->id : NULL, there, &uncertain);
	if (rc < 0 && uncertain) {
		log_warnx("store_commit_uncertain vol=%s bucket=%s rc=%d", r->v->path, a->bucket, rc);
		r->file = false;	/* recovery decides about the file: never unlinked here */
		return vol_fault(r->v, rc, "commit");
	}
	if (rc == 0 && a->file)
		vol_file_publish(r->v, r->id);
	else if (a->file)
		vol_tmp_unlink(r->v, r->id);
	r->file = false;
	if (rc == 0) {
		vol_count(&r->v->n_writes, 1);
		vol_count(&r->v->n_write_bytes, (uint64_t)a->size);
	}
	return rc == 1 ? 1 : vol_fault(r->v, rc, "commit");
}

static bool row_ok(const struct store_row *row)
{
	const struct store_objinfo *i = &row->info;

	return row->version > 0 && !row->tomb && i->nparts >= 0 && i->nparts <= STORE_PARTS_MAX &&
	       i->meta_len <= STORE_META_MAX && memchr(i->etag, 0, sizeof(i->etag));
}

/* Inline rows need room above each disk's headroom, checked before any copy commits. */
static int space_rows(struct store_apply *a, const struct store_objinfo *info)
{
	int rc = 0;

	for (int i = 0; !a->file && i < a->nrep; i++) {
		struct apply_rep *r = &a->rep[i];

		if (!r->err && (rc = vol_space_check(r->v, a->size + (int64_t)info->meta_len)))
			rep_fail(a, r, rc, "space");
	}
	return live_check(a, rc);
}

/* Commits every live copy (one disk after the other: a node in a cluster has few); a file
 * copy's row names that disk's file (seg, which row->segs points to). */
static int commit_all(struct store_apply *a, const struct obj_row *row, unsigned char *seg,
		      uint64_t *held)
{
	int ok = 0, live = 0, landed = 0, first_err = 0;

	*held = 0;
	for (int i = 0; i < a->nrep; i++) {
		uint64_t there = 0;
		int rc;

		if (a->rep[i].err)
			continue;
		live++;
		if (a->file)
			memcpy(seg, a->rep[i].id, VOL_ID_LEN);
		rc = rep_commit(a, &a->rep[i], row, &there);
		if (rc == 0 && !vol_online(a->rep[i].v))
			rc = -ENODEV;	/* landed on a disk that went away meanwhile */
		ok += rc >= 0;
		landed += rc == 0;
		*held = rc == 1 && there > *held ? there : *held;
		first_err = rc < 0 && !first_err ? rc : first_err;
	}
	if (ok < a->st->quorum) {
		log_warnx("store_no_quorum op=apply bucket=%s ok=%d need=%d rc=%d", a->bucket, ok,
			  a->st->quorum, first_err);
		return store_quorum_err(first_err);
	}
	if (live < a->st->replicas || first_err)
		store_heal_queue(a->st, a->bucket, a->key, a->key_len);
	if (*held > row->version || !landed)
		return 1;
	*held = row->version;
	return 0;
}

int store_apply_commit(struct store_apply *a, const struct store_row *row, uint64_t *held)
{
	unsigned char seg[SEG_REC];
	struct store_objinfo *info = NULL;
	struct obj_row r;
	int rc = a->err;

	if (!rc && !row_ok(row))
		rc = -EINVAL;
	if (!rc && a->size % STORE_BLOCK)
		rc = crc_push(a);
	if (!rc && !(info = malloc(sizeof(*info))))
		rc = -ENOMEM;
	if (rc)
		goto out_free;
	*info = row->info;
	info->size = a->size;
	if (info->mtime_ms <= 0)
		info->mtime_ms = store_version_ms(row->version);
	if ((rc = space_rows(a, info)))
		goto out_free;
	clock_pass(a->st, row->version);
	r = (struct obj_row){ a->bucket, a->key, a->key_len, row->version, info, a->crcs,
			      a->ncrcs, a->buf, NULL, 0 };
	if (a->file) {
		memcpy(seg + VOL_ID_LEN, &a->size, sizeof(a->size));
		r.segs = seg;
		r.segs_len = sizeof(seg);
	}
	rc = commit_all(a, &r, seg, held);
out_free:
	free(info);
	store_apply_abort(a);
	return rc;
}

int store_apply_fd(struct store *st, const char *bucket, const char *key, size_t key_len,
		   int fd, const struct store_row *row, uint64_t *held)
{
	unsigned char *buf = malloc(APPLY_CHUNK);
	struct store_apply *a = NULL;
	int64_t pos = 0;
	int rc = buf ? store_apply_begin(st, bucket, key, key_len, &a) : -ENOMEM;

	while (!rc && pos < row->info.size) {
		size_t want = row->info.size - pos < APPLY_CHUNK ? (size_t)(row->info.size - pos) :
								   APPLY_CHUNK;
		ssize_t n = pread(fd, buf, want, pos);

		if (n < 0 && errno == EINTR)
			continue;
		rc = n < 0 ? -errno : n == 0 ? -EIO : store_apply_write(a, buf, (size_t)n);
		pos += n > 0 ? n : 0;
	}
	free(buf);
	if (rc) {
		store_apply_abort(a);
		return rc;
	}
	return store_apply_commit(a, row, held);
}

/* --- tombstones --- */

int store_apply_tomb(struct store *st, const char *bucket, const char *key, size_t key_len,
		     uint64_t version, uint64_t *held)
{
	struct store_objinfo info = { .nparts = VOL_TOMB, .mtime_ms = store_version_ms(version) };
	struct obj_row row = { bucket, key, key_len, version, &info, NULL, 0, "", NULL, 0 };
	bool target[STORE_VOLS_MAX] = { false };
	int vols[STORE_VOLS_MAX], n, ok = 0, landed = 0, first_err = 0;
	int rc = version ? check_names(st, bucket, key_len) : -EINVAL;

	if (rc)
		return rc;
	*held = 0;
	clock_pass(st, version);
	n = store_targets(st, bucket, key, key_len, vols);
	for (int i = 0; i < n; i++) {
		uint64_t there = 0;
		bool uncertain = false;

		target[vols[i]] = true;
		rc = row_tx(st, store_vol(st, vols[i]), &row, NULL, &there, &uncertain);
		if (rc < 0)
			rc = vol_fault(store_vol(st, vols[i]), rc, "tomb");
		ok += rc >= 0;
		landed += rc == 0;
		*held = rc == 1 && there > *held ? there : *held;
		first_err = rc < 0 && !first_err ? rc : first_err;
	}
	if (ok < st->quorum)
		return store_quorum_err(first_err);
	/* Copies an older disk set left elsewhere go (the tombstone outranks them anyway). */
	for (int i = 0; i < st->nvols; i++)
		if (!target[i] && vol_online(store_vol(st, i)))
			store_row_drop(store_vol(st, i), bucket, key, key_len, version);
	if (n < st->replicas || first_err)
		store_heal_queue(st, bucket, key, key_len);
	if (*held > version || !landed)
		return 1;
	*held = version;
	return 0;
}

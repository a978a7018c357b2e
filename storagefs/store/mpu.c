/* mpu.c — multipart uploads: creating, completing (the object row whose segments are the
 * chosen part files, in one transaction), aborting, and reading uploads and parts. Parts
 * are written by put.c (store_part_begin). An upload lives on the R disks its key places on
 * (W must take it); its parts are written to each, and Complete commits the object row on
 * each with one version stamp. */
#include "store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../../lib/hash.h"
#include "../../lib/log.h"

#define UPLOAD_ID_BYTES	16
#define MD5_HEX		(2 * MD5_LEN)

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int upload_ins(struct vol *v, struct vconn *w, const char *bucket, const char *uid,
		      const char *key, size_t key_len, const void *meta, size_t meta_len)
{
	sqlite3_stmt *s = w->st[VS_UPLOAD_INS];

	sqlite3_bind_text(s, 1, bucket, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, uid, -1, SQLITE_STATIC);
	store_bind_blob(s, 3, key, key_len);
	store_bind_blob(s, 4, meta, meta_len);
	sqlite3_bind_int64(s, 5, wall_ms());
	return vol_exec(v, w, VS_UPLOAD_INS);
}

static int upload_ins_on(struct store *st, struct vol *v, const char *bucket,
			const char *uid, const char *key, size_t key_len, const void *meta,
			size_t meta_len)
{
	struct vconn *w;
	int rc;

	pthread_rwlock_rdlock(&st->bucket_lock);
	if ((rc = vol_tx_begin(v, &w)))
		goto out_unlock;
	rc = store_bucket_check_tx(v, w, bucket);
	if (!rc)
		rc = upload_ins(v, w, bucket, uid, key, key_len, meta, meta_len);
	rc = vol_tx_end(v, rc);
out_unlock:
	pthread_rwlock_unlock(&st->bucket_lock);
	return vol_fault(v, rc, "upload");
}

static int upload_abort_on(struct vol *v, const char *bucket, const char *uid);

int store_mpu_create(struct store *st, const char *bucket, const char *key, size_t key_len,
		     const void *meta, size_t meta_len, char upload_id[STORE_UPLOAD_ID_MAX + 1])
{
	unsigned char rnd[UPLOAD_ID_BYTES];
	int vols[STORE_VOLS_MAX], ok[STORE_VOLS_MAX];
	int n, nok = 0, err = 0, rc = store_check_key(key_len);

	if (rc)
		return rc;
	if (meta_len > STORE_META_MAX)
		return -EMSGSIZE;
	if (store_check_bucket(bucket))
		return -ENOENT;
	if ((rc = vol_random(rnd, sizeof(rnd))))
		return rc;
	hex_encode(rnd, sizeof(rnd), upload_id);
	if ((n = store_write_targets(st, bucket, key, key_len, vols)) < st->quorum)
		return -STORE_ENOQUORUM;
	for (int i = 0; i < n; i++) {
		rc = upload_ins_on(st, store_vol(st, vols[i]), bucket, upload_id, key, key_len, meta,
				   meta_len);
		if (!rc)
			ok[nok++] = vols[i];
		else if (!err)
			err = rc;
	}
	if (nok >= st->quorum)
		return 0;
	for (int i = 0; i < nok; i++)
		upload_abort_on(store_vol(st, ok[i]), bucket, upload_id);
	return nok ? -STORE_ENOQUORUM : store_quorum_err(err);
}

/* The upload's key (and meta when wanted) from connection c; -ENOENT. */
static int upload_get(struct vol *v, struct vconn *c, const char *bucket, const char *uid,
		      char key[STORE_KEY_MAX], size_t *key_len, struct store_objinfo *meta)
{
	sqlite3_stmt *s = c->st[VS_UPLOAD_GET];
	int rc;

	sqlite3_bind_text(s, 1, bucket, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, uid, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		size_t kl = (size_t)sqlite3_column_bytes(s, 0);
		size_t ml = (size_t)sqlite3_column_bytes(s, 1);

		if (kl > STORE_KEY_MAX || ml > STORE_META_MAX) {
			rc = -EBADMSG;
			goto out_reset;
		}
		memcpy(key, sqlite3_column_blob(s, 0), kl);
		*key_len = kl;
		if (meta) {
			if (ml)
				memcpy(meta->meta, sqlite3_column_blob(s, 1), ml);
			meta->meta_len = ml;
		}
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? -ENOENT : vol_sqlerr(v, c->db, rc, "upload_get");
	}
out_reset:
	sqlite3_reset(s);
	return rc;
}

int store_mpu_get(struct store *st, const char *bucket, const char *upload_id,
		  char key[STORE_KEY_MAX], size_t *key_len)
{
	struct vconn *c;
	struct vol *v;
	int rc;

	if (store_check_bucket(bucket) || !upload_id)
		return -ENOENT;
	if ((rc = store_upload_vol(st, bucket, upload_id, &v)))
		return rc;
	c = vol_reader(v);
	rc = upload_get(v, c, bucket, upload_id, key, key_len, NULL);
	vol_reader_put(c);
	return rc;
}

int store_mpu_list_parts(struct store *st, const char *bucket, const char *upload_id,
			 int after, int max,
			 int (*fn)(void *ctx, const struct store_mpu_part *p), void *ctx,
			 bool *truncated)
{
	struct store_mpu_part part;
	struct vconn *c;
	struct vol *v;
	sqlite3_stmt *s;
	int rc, n = 0, stop = 0;

	*truncated = false;
	if (store_check_bucket(bucket) || !upload_id)
		return -ENOENT;
	if ((rc = store_upload_vol(st, bucket, upload_id, &v)))
		return rc;
	c = vol_reader(v);
	s = c->st[VS_PART_LIST];
	sqlite3_bind_text(s, 1, bucket, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, upload_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, after);
	while (!stop && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n++ == max) {
			*truncated = true;
			break;
		}
		part.part_no = sqlite3_column_int(s, 0);
		part.size = sqlite3_column_int64(s, 1);
		snprintf(part.etag, sizeof(part.etag), "%s", (const char *)sqlite3_column_text(s, 2));
		part.mtime_ms = sqlite3_column_int64(s, 3);
		stop = fn(ctx, &part);
	}
	if (!stop && rc != SQLITE_ROW && rc != SQLITE_DONE)
		stop = vol_sqlerr(v, c->db, rc, "part_list");
	sqlite3_reset(s);
	vol_reader_put(c);
	return stop;
}

/* --- abort --- */

static int parts_drop(struct vol *v, struct vconn *w, const char *bucket, const char *uid)
{
	int rc;

	sqlite3_bind_text(w->st[VS_PARTS_DEL], 1, bucket, -1, SQLITE_STATIC);
	sqlite3_bind_text(w->st[VS_PARTS_DEL], 2, uid, -1, SQLITE_STATIC);
	if ((rc = vol_exec(v, w, VS_PARTS_DEL)))
		return rc;
	sqlite3_bind_text(w->st[VS_UPLOAD_DEL], 1, bucket, -1, SQLITE_STATIC);
	sqlite3_bind_text(w->st[VS_UPLOAD_DEL], 2, uid, -1, SQLITE_STATIC);
	return vol_exec(v, w, VS_UPLOAD_DEL);
}

static int parts_garbage_all(struct vol *v, struct vconn *w, const char *bucket,
			     const char *uid)
{
	sqlite3_stmt *s = w->st[VS_PARTS_ALL];
	int rc = 0, step;

	sqlite3_bind_text(s, 1, bucket, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, uid, -1, SQLITE_STATIC);
	while (!rc && (step = sqlite3_step(s)) == SQLITE_ROW) {
		if (sqlite3_column_bytes(s, 3) == VOL_ID_LEN)
			rc = vol_tx_garbage(v, sqlite3_column_blob(s, 3));
	}
	if (!rc && step != SQLITE_DONE)
		rc = vol_sqlerr(v, w->db, step, "parts_all");
	sqlite3_reset(s);
	return rc;
}

static int upload_abort_on(struct vol *v, const char *bucket, const char *uid)
{
	char key[STORE_KEY_MAX];
	size_t key_len;
	struct vconn *w;
	int rc = vol_tx_begin(v, &w);

	if (rc)
		return rc;
	if (!(rc = upload_get(v, w, bucket, uid, key, &key_len, NULL)) &&
	    !(rc = parts_garbage_all(v, w, bucket, uid)))
		rc = parts_drop(v, w, bucket, uid);
	return vol_fault(v, vol_tx_end(v, rc), "abort");
}

/* Every disk holding the upload; it is gone once one abort succeeded (the others are
 * retried by the next abort, or found by listing). */
int store_mpu_abort(struct store *st, const char *bucket, const char *upload_id)
{
	int vols[STORE_VOLS_MAX];
	int n, done = 0, err = 0;

	if (store_check_bucket(bucket) || !upload_id)
		return -ENOENT;
	if ((n = store_upload_vols(st, bucket, upload_id, vols)) < 0)
		return n;
	for (int i = 0; i < n; i++) {
		int rc = upload_abort_on(store_vol(st, vols[i]), bucket, upload_id);

		done += !rc;
		err = rc && !err ? rc : err;
	}
	return done ? 0 : err;
}

/* --- complete --- */

struct mp_part {
	int no;
	int64_t size;
	char etag[STORE_ETAG_MAX + 1];
	unsigned char id[VOL_ID_LEN];
	size_t crc0, ncrcs;		/* its block checksums in mp_set.crcs */
	bool chosen;
};

struct mp_set {
	struct mp_part *p;
	size_t n, cap;
	uint32_t *crcs;
	size_t ncrcs, capcrcs;
};

static int grow(void **buf, size_t *cap, size_t need, size_t elem)
{
	size_t n = *cap ? *cap : 16;
	void *p;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	p = realloc(*buf, n * elem);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

static int mp_push(struct mp_set *set, sqlite3_stmt *s)
{
	size_t nc = (size_t)sqlite3_column_bytes(s, 4) / CRC_LEN;
	struct mp_part *p;
	int rc;

	if ((rc = grow((void **)&set->p, &set->cap, set->n + 1, sizeof(*set->p))) ||
	    (rc = grow((void **)&set->crcs, &set->capcrcs, set->ncrcs + nc, CRC_LEN)))
		return rc;
	p = &set->p[set->n++];
	p->no = sqlite3_column_int(s, 0);
	p->size = sqlite3_column_int64(s, 1);
	snprintf(p->etag, sizeof(p->etag), "%s", (const char *)sqlite3_column_text(s, 2));
	if (sqlite3_column_bytes(s, 3) != VOL_ID_LEN || (int64_t)nc != store_nblocks(p->size))
		return -EBADMSG;
	memcpy(p->id, sqlite3_column_blob(s, 3), VOL_ID_LEN);
	p->crc0 = set->ncrcs;
	p->ncrcs = nc;
	p->chosen = false;
	if (nc)
		memcpy(set->crcs + set->ncrcs, sqlite3_column_blob(s, 4), nc * CRC_LEN);
	set->ncrcs += nc;
	return 0;
}

static int mp_load(struct vol *v, struct vconn *w, const char *bucket, const char *uid,
		   struct mp_set *set)
{
	sqlite3_stmt *s = w->st[VS_PARTS_ALL];
	int rc = 0, step;

	sqlite3_bind_text(s, 1, bucket, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, uid, -1, SQLITE_STATIC);
	while (!rc && (step = sqlite3_step(s)) == SQLITE_ROW)
		rc = mp_push(set, s);
	if (!rc && step != SQLITE_DONE)
		rc = vol_sqlerr(v, w->db, step, "parts_all");
	sqlite3_reset(s);
	return rc;
}

/* Both lists ascend: one walk pairs each named part with its row (the order was checked).
 * A missing part or ETag mismatch wins over a part that is too small. */
static int mp_match(struct mp_set *set, const struct store_mpu_part *parts, int nparts)
{
	bool small = false;
	size_t j = 0;

	for (int i = 0; i < nparts; i++) {
		while (j < set->n && set->p[j].no < parts[i].part_no)
			j++;
		if (j == set->n || set->p[j].no != parts[i].part_no ||
		    strcasecmp(set->p[j].etag, parts[i].etag))
			return -EINVAL;
		if (i < nparts - 1 && set->p[j].size < STORE_PART_MIN)
			small = true;
		set->p[j].chosen = true;
	}
	return small ? -ERANGE : 0;
}

/* The new object: segments and checksums of the chosen non-empty parts, and the ETag
 * md5(binary MD5s of the parts)-N. Allocates r->segs and r->crcs. */
static int mp_build(const struct mp_set *set, int nparts, struct obj_row *r,
		    struct store_objinfo *info)
{
	unsigned char *segs = malloc((size_t)nparts * SEG_REC + 1);
	uint32_t *crcs = malloc(set->ncrcs * CRC_LEN + 1);
	unsigned char bin[MD5_LEN];
	char hex[MD5_HEX + 1];
	struct md5_ctx md5;
	size_t nseg = 0, nc = 0;

	if (!segs || !crcs) {
		free(segs);
		free(crcs);
		return -ENOMEM;
	}
	md5_init(&md5);
	info->size = 0;
	for (size_t i = 0; i < set->n; i++) {
		const struct mp_part *p = &set->p[i];
		size_t elen = strlen(p->etag);

		if (!p->chosen)
			continue;
		if (elen == MD5_HEX && hex_decode(p->etag, elen, bin, sizeof(bin)) == MD5_LEN)
			md5_update(&md5, bin, sizeof(bin));
		else
			md5_update(&md5, p->etag, elen);	/* not an MD5: hash what it is */
		info->size += p->size;
		if (!p->size)
			continue;
		memcpy(segs + nseg * SEG_REC, p->id, VOL_ID_LEN);
		memcpy(segs + nseg * SEG_REC + VOL_ID_LEN, &p->size, sizeof(p->size));
		nseg++;
		memcpy(crcs + nc, set->crcs + p->crc0, p->ncrcs * CRC_LEN);
		nc += p->ncrcs;
	}
	md5_final(&md5, bin);
	hex_encode(bin, sizeof(bin), hex);
	snprintf(info->etag, sizeof(info->etag), "%s-%d", hex, nparts);
	info->nparts = nparts;
	r->segs = segs;
	r->segs_len = nseg * SEG_REC;
	r->crcs = crcs;
	r->ncrcs = nc;
	return 0;
}

/* Parts not named, and named empty ones (no segment needs them), become garbage. */
static int mp_garbage(struct vol *v, const struct mp_set *set)
{
	int rc = 0;

	for (size_t i = 0; i < set->n && !rc; i++) {
		if (!set->p[i].chosen || set->p[i].size == 0)
			rc = vol_tx_garbage(v, set->p[i].id);
	}
	return rc;
}

/* Inside the transaction: everything between reading the upload and writing the row. */
static int mp_complete_tx(struct vol *v, struct vconn *w, const char *bucket,
			  const char *uid, const struct store_mpu_part *parts, int nparts,
			  uint64_t version, struct store_objinfo *out)
{
	struct obj_row r = { .bucket = bucket, .version = version, .info = out };
	struct mp_set set = { 0 };
	char key[STORE_KEY_MAX];
	int rc;

	if ((rc = upload_get(v, w, bucket, uid, key, &r.key_len, out)))
		return rc;
	r.key = key;
	for (int i = 1; i < nparts; i++) {
		if (parts[i].part_no <= parts[i - 1].part_no)
			return -EDOM;
	}
	if ((rc = mp_load(v, w, bucket, uid, &set)) || (rc = mp_match(&set, parts, nparts)) ||
	    (rc = mp_build(&set, nparts, &r, out)))
		goto out_free;
	out->mtime_ms = store_version_ms(version);
	if (!(rc = mp_garbage(v, &set)) &&
	    !(rc = store_gc_object(v, w, bucket, key, r.key_len)) &&
	    !(rc = store_obj_row_put(v, w, &r)))
		rc = parts_drop(v, w, bucket, uid);
	free((void *)r.segs);
	free((void *)r.crcs);
out_free:
	free(set.p);
	free(set.crcs);
	return rc;
}

static int mpu_complete_on(struct store *st, struct vol *v, const char *bucket,
			   const char *upload_id, const struct store_mpu_part *parts, int nparts,
			   uint64_t version, struct store_objinfo *out)
{
	struct vconn *w;
	int rc;

	pthread_rwlock_rdlock(&st->bucket_lock);
	if ((rc = vol_tx_begin(v, &w)))
		goto out_unlock;
	rc = store_bucket_check_tx(v, w, bucket);
	if (!rc)
		rc = mp_complete_tx(v, w, bucket, upload_id, parts, nparts, version, out);
	rc = vol_tx_end(v, rc);
out_unlock:
	pthread_rwlock_unlock(&st->bucket_lock);
	return vol_fault(v, rc, "complete");
}

/* The same version on every disk of the upload; W must succeed. A disk that failed
 * (a part replica it missed) drops its upload and gets a repair of the object. */
int store_mpu_complete(struct store *st, const char *bucket, const char *upload_id,
		       const struct store_mpu_part *parts, int nparts,
		       struct store_objinfo *out)
{
	int vols[STORE_VOLS_MAX], failed[STORE_VOLS_MAX];
	int n, nok = 0, nfail = 0, err = 0;
	char key[STORE_KEY_MAX];
	uint64_t version;
	size_t key_len;

	if (store_check_bucket(bucket) || !upload_id)
		return -ENOENT;
	if ((n = store_mpu_get(st, bucket, upload_id, key, &key_len)) ||
	    (n = store_upload_vols(st, bucket, upload_id, vols)) < 0)
		return n;
	if (nparts < 1 || nparts > STORE_PARTS_MAX)
		return -EINVAL;
	version = store_version(st);
	for (int i = 0; i < n; i++) {
		int rc = mpu_complete_on(st, store_vol(st, vols[i]), bucket, upload_id, parts, nparts,
					 version, out);

		if (!rc)
			nok++;
		else
			failed[nfail++] = vols[i];
		err = rc && !err ? rc : err;
	}
	if (nok == 0)
		return store_quorum_err(err);
	for (int i = 0; i < nfail; i++)
		upload_abort_on(store_vol(st, failed[i]), bucket, upload_id);
	if (nfail || nok < st->replicas)
		store_heal_queue(st, bucket, key, key_len);
	return nok >= st->quorum ? 0 : -STORE_ENOQUORUM;
}

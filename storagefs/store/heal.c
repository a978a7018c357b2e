/* heal.c — repairing one key across its disks: find the newest version, verify each placed
 * replica end to end, copy a verified replica onto the placed disks that lack it (temp
 * files, fsync, one transaction that lands only if nothing newer arrived), drop stale
 * copies on other disks, and purge a tombstone that every disk agrees on. */
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lib/log.h"

/* What every online disk holds for the key. */
struct heal_view {
	uint64_t best;			/* the newest version, 0 when no disk has a row */
	bool tomb;			/* ... and it is a tombstone */
	bool all_online;
	bool has[STORE_VOLS_MAX];
	uint64_t ver[STORE_VOLS_MAX];
};

static int heal_scan(struct store *st, const char *bucket, const char *key, size_t key_len,
		     struct heal_view *hv)
{
	memset(hv, 0, sizeof(*hv));
	hv->all_online = true;
	for (int i = 0; i < st->nvols; i++) {
		struct vol *v = store_vol(st, i);
		struct vconn *c;
		bool tomb;
		int rc;

		if (!vol_online(v)) {
			hv->all_online = false;
			continue;
		}
		c = vol_reader(v);
		rc = store_row_version(v, c, bucket, key, key_len, &hv->ver[i], &tomb);
		vol_reader_put(c);
		if (rc < 0)
			return rc;
		hv->has[i] = rc == 1;
		if (rc == 1 && hv->ver[i] > hv->best) {
			hv->best = hv->ver[i];
			hv->tomb = tomb;
		}
	}
	return 0;
}

/* v's replica of version best, read end to end (every block verified). */
static int heal_good(struct vol *v, const char *bucket, const char *key, size_t key_len,
		     uint64_t best, unsigned char *buf, struct rep_obj **out)
{
	struct rep_obj *o;
	int rc = rep_open(v, bucket, key, key_len, &o);

	if (rc)
		return rc;
	if (o->version != best)
		rc = -ESTALE;
	for (int64_t pos = 0; !rc && pos < o->info.size; pos += STORE_BLOCK) {
		int64_t n = o->info.size - pos < STORE_BLOCK ? o->info.size - pos : STORE_BLOCK;

		rc = rep_read(o, pos, buf, (size_t)n);
	}
	if (rc) {
		rep_close(o);
		return rc;
	}
	*out = o;
	return 0;
}

/* One segment of src into a new, synced temp file on v. */
static int heal_copy_seg(struct rep_obj *src, int i, struct vol *v, unsigned char *id,
			 unsigned char *buf)
{
	const struct obj_seg *g = &src->segs[i];
	int fd, rc = vol_space_check(v, g->size);

	if (rc || (rc = vol_tmp_create(v, id, &fd)))
		return rc;
	for (int64_t pos = 0; !rc && pos < g->size; pos += STORE_BLOCK) {
		int64_t n = g->size - pos < STORE_BLOCK ? g->size - pos : STORE_BLOCK;

		if (!(rc = rep_read(src, g->off + pos, buf, (size_t)n)))
			rc = store_write_all(fd, buf, (size_t)n);
	}
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	if (rc)
		vol_tmp_unlink(v, id);
	return rc;
}

/* The row on v, unless v got something newer meanwhile. */
static int heal_row(struct store *st, struct vol *v, const struct obj_row *row,
		    const unsigned char *ids, int nids, bool *uncertain)
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
	if (rc == 1 && ver > row->version) {
		rc = -ESTALE;		/* a newer write landed: nothing to repair */
		goto out_end;
	}
	rc = store_gc_object(v, w, row->bucket, row->key, row->key_len);
	for (int i = 0; !rc && i < nids; i++)
		rc = vol_tx_file(v, ids + (size_t)i * SEG_REC);
	if (!rc)
		rc = store_obj_row_put(v, w, row);
out_end:
	if (!rc)	/* recovery decides, unless the WAL ran out of space (not committed) */
		*uncertain = (rc = vol_tx_end(v, 0)) != 0 && rc != -ENOSPC;
	else
		rc = vol_tx_end(v, rc);
out_unlock:
	pthread_rwlock_unlock(&st->bucket_lock);
	return rc;
}

/* src's replica onto v: its files segment by segment (same sizes, so the same block
 * checksums), then the row with src's version. */
static int heal_copy(struct store *st, struct rep_obj *src, struct vol *v, unsigned char *buf)
{
	struct obj_row row = { src->bucket, src->key, src->key_len, src->version, &src->info,
			       src->crcs, src->info.size ? 1 : 0, src->inl, NULL, 0 };
	unsigned char *segs = calloc((size_t)src->nsegs + 1, SEG_REC);
	bool uncertain = false;
	int rc = segs ? 0 : -ENOMEM, done;

	if (!rc && src->inl)
		rc = vol_space_check(v, src->info.size + (int64_t)src->info.meta_len);
	for (done = 0; !rc && done < src->nsegs; done++) {
		unsigned char *rec = segs + (size_t)done * SEG_REC;

		memcpy(rec + VOL_ID_LEN, &src->segs[done].size, sizeof(int64_t));
		if ((rc = heal_copy_seg(src, done, v, rec, buf)))
			break;
	}
	if (!rc && src->nsegs)
		rc = vol_tmp_sync_dir(v);
	if (!rc) {
		if (!src->inl) {
			row.segs = segs;
			row.segs_len = (size_t)src->nsegs * SEG_REC;
			row.ncrcs = src->nsegs ? (size_t)(src->segs[src->nsegs - 1].crc0 +
					store_nblocks(src->segs[src->nsegs - 1].size)) : 0;
		}
		rc = heal_row(st, v, &row, segs, src->nsegs, &uncertain);
	}
	if (!rc) {
		vol_count(&v->n_writes, 1);
		vol_count(&v->n_write_bytes, (uint64_t)src->info.size);
	}
	for (int i = 0; i < done && !uncertain; i++) {
		if (rc)
			vol_tmp_unlink(v, segs + (size_t)i * SEG_REC);
		else
			vol_file_publish(v, segs + (size_t)i * SEG_REC);
	}
	free(segs);
	return rc;
}

static int heal_tomb(struct store *st, struct vol *v, const char *bucket, const char *key,
		     size_t key_len, uint64_t version)
{
	struct store_objinfo info = { .nparts = VOL_TOMB, .mtime_ms = store_version_ms(version) };
	struct obj_row row = { bucket, key, key_len, version, &info, NULL, 0, "", NULL, 0 };

	bool uncertain = false;

	return heal_row(st, v, &row, NULL, 0, &uncertain);
}

/* A verified copy of the newest version: the placed disks first, then any other. */
static int heal_source(struct store *st, const char *bucket, const char *key, size_t key_len,
		       const struct heal_view *hv, const int *tg, int nt, bool *good,
		       unsigned char *buf, struct rep_obj **src)
{
	int order[STORE_VOLS_MAX];

	*src = NULL;
	for (int i = 0; i < nt; i++) {
		struct rep_obj *o;
		int t = tg[i];

		if (!hv->has[t] || hv->ver[t] != hv->best)
			continue;
		if (heal_good(store_vol(st, t), bucket, key, key_len, hv->best, buf, &o) == 0) {
			good[t] = true;
			if (!*src)
				*src = o;
			else
				rep_close(o);
		}
	}
	store_place(st, bucket, key, key_len, order);
	for (int i = 0; !*src && i < st->nvols; i++) {
		int t = order[i];

		if (hv->has[t] && hv->ver[t] == hv->best)
			heal_good(store_vol(st, t), bucket, key, key_len, hv->best, buf, src);
	}
	return *src ? 0 : -EBADMSG;
}

/* Once the R placed disks hold the newest version: copies elsewhere go, and a tombstone
 * that every disk has seen goes too. */
static void heal_tidy(struct store *st, const char *bucket, const char *key, size_t key_len,
		      const struct heal_view *hv, const int *tg, int nt)
{
	bool target[STORE_VOLS_MAX] = { false };

	for (int i = 0; i < nt; i++)
		target[tg[i]] = true;
	for (int i = 0; i < st->nvols; i++) {
		if (hv->has[i] && !target[i] && vol_online(store_vol(st, i)))
			store_row_drop(store_vol(st, i), bucket, key, key_len, hv->best + 1);
	}
	if (!hv->tomb || !hv->all_online)
		return;
	for (int i = 0; i < nt; i++)
		store_row_drop(store_vol(st, tg[i]), bucket, key, key_len, hv->best + 1);
	log_debug("store_tomb_purged bucket=%s key_len=%zu", bucket, key_len);
}

int store_heal(struct store *st, const char *bucket, const char *key, size_t key_len)
{
	int fixed;

	return store_heal_count(st, bucket, key, key_len, &fixed);
}

int store_heal_count(struct store *st, const char *bucket, const char *key, size_t key_len,
		     int *fixed)
{
	bool good[STORE_VOLS_MAX] = { false };
	unsigned char *buf = malloc(STORE_BLOCK);
	int tg[STORE_VOLS_MAX], nt;
	struct rep_obj *src = NULL;
	struct heal_view hv;
	int rc = buf ? heal_scan(st, bucket, key, key_len, &hv) : -ENOMEM;

	*fixed = 0;
	if (rc || !hv.best)
		goto out_free;
	nt = store_targets(st, bucket, key, key_len, tg);
	for (int i = 0; hv.tomb && i < nt; i++)
		good[tg[i]] = hv.has[tg[i]] && hv.ver[tg[i]] == hv.best;
	if (!hv.tomb && (rc = heal_source(st, bucket, key, key_len, &hv, tg, nt, good, buf, &src))) {
		log_warnx("store_heal_no_good_copy bucket=%s key_len=%zu", bucket, key_len);
		goto out_free;
	}
	for (int i = 0; i < nt; i++) {
		int t = tg[i], err;

		if (good[t])
			continue;
		if (!hv.tomb && vol_full(store_vol(st, t)))
			err = -ENOSPC;	/* the copy elsewhere stays until there is room */
		else if (hv.tomb)
			err = heal_tomb(st, store_vol(st, t), bucket, key, key_len, hv.best);
		else
			err = heal_copy(st, src, store_vol(st, t), buf);
		if (err == -ESTALE)
			err = 0;	/* superseded by a newer write: nothing to do here */
		log_msg(err == -ENOSPC ? LOG_LVL_DEBUG : err ? LOG_LVL_WARN : LOG_LVL_INFO, 0,
			"store_heal_replica vol=%s bucket=%s key_len=%zu version=%llu rc=%d",
			store_vol(st, t)->path, bucket, key_len, (unsigned long long)hv.best, err);
		rc = rc ? rc : vol_fault(store_vol(st, t), err, "heal");
		*fixed += !err;
		if (!err)
			__atomic_fetch_add(&st->healed, 1, __ATOMIC_RELAXED);
		good[t] = !err;
	}
	if (!rc && nt == st->replicas)
		heal_tidy(st, bucket, key, key_len, &hv, tg, nt);
out_free:
	rep_close(src);
	free(buf);
	return rc;
}

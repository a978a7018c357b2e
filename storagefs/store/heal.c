/* heal.c — repairing one key across its disks: find the newest version, verify each placed
 * replica end to end, copy a verified replica onto the placed disks that lack it (temp
 * files, fsync, one transaction that lands only if nothing newer arrived), drop stale
 * copies on other disks, and purge a tombstone that every disk agrees on. And the
 * rebuild's copies onto a new disk: one copy read (verified) per key, written with direct
 * I/O, committed in batches (the files' fsyncs, one tmp-directory fsync and one transaction
 * per disk and batch). */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lib/fileio.h"
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
			rc = file_write_all(fd, buf, (size_t)n);
	}
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	if (rc)
		vol_tmp_unlink(v, id);
	return rc;
}

/* In v's open transaction: the row, unless v got something newer meanwhile (-ESTALE) or
 * the bucket went (-ENOENT); the old row's files go to garbage. */
static int heal_row_tx(struct vol *v, struct vconn *w, const struct obj_row *row,
		       const unsigned char *ids, int nids)
{
	uint64_t ver;
	bool tomb;
	int rc;

	if ((rc = store_bucket_check_tx(v, w, row->bucket)) ||
	    (rc = store_row_version(v, w, row->bucket, row->key, row->key_len, &ver, &tomb)) < 0)
		return rc;
	if (rc == 1 && ver > row->version)
		return -ESTALE;		/* a newer write landed: nothing to repair */
	rc = store_gc_object(v, w, row->bucket, row->key, row->key_len);
	for (int i = 0; !rc && i < nids; i++)
		rc = vol_tx_file(v, ids + (size_t)i * SEG_REC);
	return rc ? rc : store_obj_row_put(v, w, row);
}

/* The row on v in a transaction of its own. */
static int heal_row(struct store *st, struct vol *v, const struct obj_row *row,
		    const unsigned char *ids, int nids, bool *uncertain)
{
	struct vconn *w;
	int rc;

	pthread_rwlock_rdlock(&st->bucket_lock);
	if ((rc = vol_tx_begin(v, &w)))
		goto out_unlock;
	if (!(rc = heal_row_tx(v, w, row, ids, nids)))	/* recovery decides, unless the WAL */
		*uncertain = (rc = vol_tx_end(v, 0)) != 0 && rc != -ENOSPC;	/* ran out of space */
	else
		rc = vol_tx_end(v, rc);
out_unlock:
	pthread_rwlock_unlock(&st->bucket_lock);
	return rc;
}

/* The row that copies src, whose files are the new ones in segs (SEG_REC each). */
static void heal_row_of(const struct rep_obj *src, const unsigned char *segs,
			struct obj_row *row)
{
	*row = (struct obj_row){ src->bucket, src->key, src->key_len, src->version, &src->info,
				 src->crcs, src->info.size ? 1 : 0, src->inl, NULL, 0 };
	if (src->inl)
		return;
	row->segs = segs;
	row->segs_len = (size_t)src->nsegs * SEG_REC;
	row->ncrcs = src->nsegs ? (size_t)(src->segs[src->nsegs - 1].crc0 +
			store_nblocks(src->segs[src->nsegs - 1].size)) : 0;
}

/* src's replica onto v: its files segment by segment (same sizes, so the same block
 * checksums), then the row with src's version. */
static int heal_copy(struct store *st, struct rep_obj *src, struct vol *v, unsigned char *buf)
{
	unsigned char *segs = calloc((size_t)src->nsegs + 1, SEG_REC);
	struct obj_row row;
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
		heal_row_of(src, segs, &row);
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
	if (!hv->tomb || !hv->all_online || st->keep_tombs)
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

/* --- the rebuild's copies, committed in batches --- */

#define HB_KEYS		64		/* copies per commit */
#define HB_BYTES	(64LL << 20)	/* bytes per commit (a larger object goes alone) */
#define HB_FILES	64		/* temp files kept open for the commit's fsyncs */
#define HB_CHUNK	(1 << 20)	/* read (verified) and written at a time */
#define HB_ALIGN	4096		/* direct I/O: buffer, offsets and lengths */

/* One key's copy onto one disk, waiting for the batch's commit. */
struct hb_copy {
	struct rep_obj *src;		/* the row to write, its files closed */
	bool owns_src;			/* the first copy of the key frees it */
	struct vol *v;			/* the disk it goes to */
	unsigned char *segs;		/* SEG_REC per segment: the new temp files */
	int nfiles;			/* of them created so far */
	int rc;				/* 0 committed, else why not */
};

struct heal_batch {
	struct store *st;
	int n;
	struct hb_copy c[HB_KEYS];
	int64_t bytes;
	int nopen;			/* fds[]: temp files written, not yet fsynced */
	int fds[HB_FILES];
	struct vol *fd_v[HB_FILES];
	unsigned char *buf;		/* HB_CHUNK */
};

int heal_batch_new(struct store *st, struct heal_batch **out)
{
	struct heal_batch *b = calloc(1, sizeof(*b));

	if (!b || !(b->buf = aligned_alloc(HB_ALIGN, HB_CHUNK))) {
		free(b);
		return -ENOMEM;
	}
	b->st = st;
	*out = b;
	return 0;
}

void heal_batch_free(struct heal_batch *b)
{
	if (!b)
		return;
	heal_batch_commit(b, NULL);	/* never left uncommitted: files would linger */
	free(b->buf);
	free(b);
}

/* The new file's fd: kept for the commit's fsync while there is room, else synced now. */
static int hb_keep_fd(struct heal_batch *b, struct vol *v, int fd)
{
	int rc = 0;

	if (b->nopen < HB_FILES) {
		/* Start the write-back of what went through the page cache now, so that the
		 * commit's fsyncs find it done and one journal commit covers the batch. */
		sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
		b->fd_v[b->nopen] = v;
		b->fds[b->nopen++] = fd;
		return 0;
	}
	if (fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	return rc;
}

static int hb_pwrite(int fd, const unsigned char *p, size_t len, int64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* Writes len bytes at off: the whole HB_ALIGN blocks with direct I/O while the file has
 * it, the tail (and everything, once the file system refused direct I/O) through the
 * page cache. Direct I/O spares the page cache a page allocated and filled per 4 KiB of
 * the new disk, which is most of a copy's cost, and leaves the cached data of reads be. */
static int hb_write(int fd, bool *direct, const unsigned char *buf, size_t len, int64_t off)
{
	size_t head = *direct ? len / HB_ALIGN * HB_ALIGN : 0;
	int rc = head ? hb_pwrite(fd, buf, head, off) : 0;

	if (rc == -EINVAL && off == 0) {	/* no direct I/O here: the page cache then */
		head = 0;
		rc = 0;
	}
	if (!rc && head < len && *direct) {
		*direct = false;
		if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_DIRECT) < 0)
			rc = -errno;
	}
	return rc || head == len ? rc : hb_pwrite(fd, buf + head, len - head, off + (int64_t)head);
}

/* Segment i of c->src into a new temp file on c->v, every block verified as it is read. */
static int hb_copy_seg(struct heal_batch *b, struct hb_copy *c, int i)
{
	const struct obj_seg *g = &c->src->segs[i];
	unsigned char *rec = c->segs + (size_t)i * SEG_REC;
	int fd, rc = vol_space_check(c->v, g->size);
	bool direct;

	memcpy(rec + VOL_ID_LEN, &g->size, sizeof(int64_t));
	if (rc || (rc = vol_tmp_create(c->v, rec, &fd)))
		return rc;
	c->nfiles++;
	direct = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_DIRECT) == 0;
	for (int64_t pos = 0; !rc && pos < g->size; pos += HB_CHUNK) {
		int64_t n = g->size - pos < HB_CHUNK ? g->size - pos : HB_CHUNK;

		if (!(rc = rep_read(c->src, g->off + pos, b->buf, (size_t)n)))
			rc = hb_write(fd, &direct, b->buf, (size_t)n, pos);
	}
	if (!rc)
		return hb_keep_fd(b, c->v, fd);
	if (close(fd) < 0)
		log_warn("store_close vol=%s", c->v->path);
	return rc;
}

static void hb_unlink(struct hb_copy *c)
{
	for (int i = 0; i < c->nfiles; i++)
		vol_tmp_unlink(c->v, c->segs + (size_t)i * SEG_REC);
	c->nfiles = 0;
}

/* src onto slot vi as the batch's next copy; on failure nothing of it is left. */
static int hb_copy(struct heal_batch *b, struct rep_obj *src, bool owns, int vi)
{
	struct hb_copy *c = &b->c[b->n];
	int rc = 0;

	*c = (struct hb_copy){ .src = src, .owns_src = owns, .v = store_vol(b->st, vi) };
	if (!(c->segs = calloc((size_t)src->nsegs + 1, SEG_REC)))
		return -ENOMEM;
	if (src->inl)
		rc = vol_space_check(c->v, src->info.size + (int64_t)src->info.meta_len);
	for (int i = 0; !rc && i < src->nsegs; i++)
		rc = hb_copy_seg(b, c, i);
	if (rc) {
		hb_unlink(c);	/* (a file still open in fds is unlinked: its fsync is moot) */
		free(c->segs);
		return rc;
	}
	b->n++;
	b->bytes += src->info.size;
	return 0;
}

/* In one transaction on v: the rows of the batch's copies onto v. A copy that something
 * newer overtook, or whose bucket went, is left out (c->rc says why); any other error
 * rolls the whole transaction back. */
static int hb_tx(struct heal_batch *b, struct vol *v, bool *uncertain)
{
	struct obj_row row;
	struct vconn *w;
	int rc;

	pthread_rwlock_rdlock(&b->st->bucket_lock);
	if ((rc = vol_tx_begin(v, &w)))
		goto out_unlock;
	for (int i = 0; !rc && i < b->n; i++) {
		struct hb_copy *c = &b->c[i];

		if (c->v != v)
			continue;
		heal_row_of(c->src, c->segs, &row);
		c->rc = heal_row_tx(v, w, &row, c->segs, c->src->nsegs);
		if (c->rc != -ESTALE && c->rc != -ENOENT)
			rc = c->rc;
	}
	if (!rc)
		*uncertain = (rc = vol_tx_end(v, 0)) != 0 && rc != -ENOSPC;
	else
		rc = vol_tx_end(v, rc);
out_unlock:
	pthread_rwlock_unlock(&b->st->bucket_lock);
	return rc;
}

/* The batch's fsyncs on v: every new file, then its tmp directory once. */
static int hb_sync(struct heal_batch *b, struct vol *v)
{
	bool files = false;
	int rc = 0;

	for (int i = 0; i < b->nopen; i++) {
		if (b->fds[i] < 0 || b->fd_v[i] != v)
			continue;
		if (fsync(b->fds[i]) < 0 && !rc)
			rc = -errno;
		if (close(b->fds[i]) < 0 && !rc)
			rc = -errno;
		b->fds[i] = -1;
	}
	if (rc)
		log_warnx("store_fsync vol=%s rc=%d", v->path, rc);
	for (int i = 0; i < b->n; i++)
		files |= b->c[i].v == v && b->c[i].nfiles > 0;
	return !rc && files ? vol_tmp_sync_dir(v) : rc;
}

/* v's share of the batch: synced, committed in one transaction, then renamed into data/. */
static int hb_commit_vol(struct heal_batch *b, struct vol *v, struct heal_tally *t)
{
	bool uncertain = false;
	int64_t copies = 0, bytes = 0;
	int rc = vol_online(v) ? hb_sync(b, v) : -ENODEV;	/* gone meanwhile: none lands */

	if (!rc)
		rc = hb_tx(b, v, &uncertain);
	for (int i = 0; i < b->n; i++) {
		struct hb_copy *c = &b->c[i];

		if (c->v != v)
			continue;
		c->rc = rc ? rc : c->rc;
		if (c->rc) {
			if (!uncertain)	/* else recovery decides by the index */
				hb_unlink(c);
			continue;
		}
		for (int j = 0; j < c->nfiles; j++)
			vol_file_publish(v, c->segs + (size_t)j * SEG_REC);
		copies++;
		bytes += c->src->info.size;
	}
	vol_count(&v->n_writes, (uint64_t)copies);
	vol_count(&v->n_write_bytes, (uint64_t)bytes);
	__atomic_fetch_add(&b->st->healed, copies, __ATOMIC_RELAXED);
	t->copied += copies;
	t->bytes += bytes;
	if (rc) {
		t->errors++;
		log_warnx("store_rebuild_commit vol=%s rc=%d uncertain=%d", v->path, rc, uncertain);
		vol_fault(v, rc, "rebuild");
	}
	log_debug("store_rebuild_batch vol=%s copies=%lld bytes=%lld rc=%d", v->path,
		  (long long)copies, (long long)bytes, rc);
	return rc;
}

int heal_batch_commit(struct heal_batch *b, struct heal_tally *t)
{
	struct heal_tally none = { 0 };
	int rc = 0;

	for (int i = 0; i < b->n; i++) {
		bool seen = false;

		for (int j = 0; j < i && !seen; j++)
			seen = b->c[j].v == b->c[i].v;
		if (!seen) {
			int err = hb_commit_vol(b, b->c[i].v, t ? t : &none);

			rc = rc ? rc : err;
		}
	}
	for (int i = 0; i < b->nopen; i++) {	/* files of copies that failed */
		if (b->fds[i] >= 0 && close(b->fds[i]) < 0)
			log_warn("store_close vol=%s", b->fd_v[i]->path);
	}
	for (int i = 0; i < b->n; i++) {
		free(b->c[i].segs);
		if (b->c[i].owns_src)
			rep_close(b->c[i].src);
	}
	b->n = b->nopen = 0;
	b->bytes = 0;
	return rc;
}

/* What the rebuild must do for the key: 1 with need[] (the rebuilt slots lacking it) and
 * the slot to copy from; 0 when the key needs the full repair (a tombstone, copies that
 * disagree, copies off their disks, a missing one elsewhere, too few disks); -1 when
 * there is nothing to do. */
static int hb_plan(struct store *st, uint64_t fill, const char *bucket, const char *key,
		   size_t key_len, int *need, int *nneed, int *from)
{
	bool target[STORE_VOLS_MAX] = { false };
	int tg[STORE_VOLS_MAX], nt;
	struct heal_view hv;

	if (heal_scan(st, bucket, key, key_len, &hv) || hv.tomb)
		return 0;
	if (!hv.best)
		return -1;
	if ((nt = store_targets(st, bucket, key, key_len, tg)) != st->replicas)
		return 0;
	*nneed = 0;
	*from = -1;
	for (int i = 0; i < nt; i++) {
		int t = tg[i];

		target[t] = true;
		if (hv.has[t] && hv.ver[t] == hv.best)
			*from = *from < 0 ? t : *from;
		else if (!hv.has[t] && (fill >> t & 1) && !vol_full(store_vol(st, t)))
			need[(*nneed)++] = t;
		else
			return 0;
	}
	for (int i = 0; i < st->nvols; i++) {
		if (hv.has[i] && !target[i])
			return 0;	/* the full repair drops it once the copies are made */
	}
	return !*nneed ? -1 : *from < 0 ? 0 : 1;
}

int heal_batch_add(struct heal_batch *b, uint64_t fill, const char *bucket, const char *key,
		   size_t key_len, struct heal_tally *t)
{
	int need[STORE_VOLS_MAX], nneed, from, done = 0;
	struct rep_obj *src;
	int rc = hb_plan(b->st, fill, bucket, key, key_len, need, &nneed, &from);

	if (rc <= 0)
		return rc < 0;
	/* The one copy read is verified as it is read; the others wait for the next pass. */
	if (rep_open(store_vol(b->st, from), bucket, key, key_len, &src))
		return 0;
	if (b->n + nneed > HB_KEYS || (b->n && b->bytes + src->info.size > HB_BYTES))
		heal_batch_commit(b, t);
	for (int i = 0; i < nneed; i++)
		done += hb_copy(b, src, done == 0, need[i]) == 0;
	if (src->fd >= 0 && close(src->fd) < 0)
		log_warn("store_close vol=%s", src->v->path);
	src->fd = src->cur = -1;
	if (!done)
		rep_close(src);
	return done == nneed;
}

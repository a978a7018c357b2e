/* obj.c — reading an object: the newest version across the disks, one replica's row in one
 * allocation (info, segments, block checksums, inline bytes or a scratch block), lazy
 * opening of segment files, reads and sends that verify the CRC32C of every block before
 * any of its bytes leave, and switching to another replica when a block is bad. */
#include "store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../lib/hash.h"
#include "../../lib/log.h"

#define OPEN_TRIES	3	/* row lookups when the file vanished under a concurrent replace */
#define LOG_KEY_MAX	128

static void log_corrupt(const struct rep_obj *o, const char *what, int seg, int64_t blk)
{
	char key[LOG_KEY_MAX + 1];
	size_t n = o->key_len < LOG_KEY_MAX ? o->key_len : LOG_KEY_MAX;

	/* Keys are arbitrary bytes; the log line must stay one greppable line. */
	for (size_t i = 0; i < n; i++)
		key[i] = o->key[i] > ' ' && o->key[i] < 0x7f && o->key[i] != '"' ? o->key[i] : '?';
	key[n] = 0;
	log_warnx("store_%s vol=%s bucket=%s key=\"%s\" segment=%d block=%lld", what,
		  o->v->path, o->bucket, key, seg, (long long)blk);
}

/* Checks the row's shape: what the lengths say must agree with the size. */
static int row_shape(sqlite3_stmt *s, int64_t size, int *nsegs, size_t *ncrcs)
{
	int64_t total = 0, blocks = 0;
	size_t seglen = (size_t)sqlite3_column_bytes(s, 7);
	const unsigned char *segs = sqlite3_column_blob(s, 7);

	*ncrcs = (size_t)sqlite3_column_bytes(s, 5) / CRC_LEN;
	if (sqlite3_column_type(s, 7) == SQLITE_NULL) {
		*nsegs = 0;
		total = sqlite3_column_bytes(s, 6);
		blocks = store_nblocks(total);
	} else {
		if (seglen % SEG_REC)
			return -EBADMSG;
		*nsegs = (int)(seglen / SEG_REC);
		for (int i = 0; i < *nsegs; i++) {
			int64_t n;

			memcpy(&n, segs + (size_t)i * SEG_REC + VOL_ID_LEN, sizeof(n));
			total += n;
			blocks += store_nblocks(n);
		}
	}
	if (total != size || blocks != (int64_t)*ncrcs ||
	    (size_t)sqlite3_column_bytes(s, 5) % CRC_LEN ||
	    (size_t)sqlite3_column_bytes(s, 4) > STORE_META_MAX ||
	    (size_t)sqlite3_column_bytes(s, 2) > STORE_ETAG_MAX)
		return -EBADMSG;
	return 0;
}

static void fill_segs(struct rep_obj *o, const unsigned char *segs)
{
	int64_t off = 0, crc0 = 0;

	for (int i = 0; i < o->nsegs; i++) {
		struct obj_seg *g = &o->segs[i];

		memcpy(g->id, segs + (size_t)i * SEG_REC, VOL_ID_LEN);
		memcpy(&g->size, segs + (size_t)i * SEG_REC + VOL_ID_LEN, sizeof(g->size));
		g->off = off;
		g->crc0 = crc0;
		off += g->size;
		crc0 += store_nblocks(g->size);
	}
}

/* sqlite3_column_blob is NULL for an empty blob; memcpy wants a pointer regardless. */
static const void *col_blob(sqlite3_stmt *s, int i)
{
	const void *p = sqlite3_column_blob(s, i);

	return p ? p : "";
}

/* One allocation from the current row of VS_OBJ_GET. */
static int obj_from_row(sqlite3_stmt *s, struct rep_obj **out)
{
	int64_t size = sqlite3_column_int64(s, 0);
	size_t ncrcs, tail;
	struct rep_obj *o;
	int nsegs, rc = row_shape(s, size, &nsegs, &ncrcs);

	if (rc)
		return rc;
	tail = nsegs ? STORE_BLOCK : (size_t)size;
	o = malloc(sizeof(*o) + (size_t)nsegs * sizeof(struct obj_seg) + ncrcs * CRC_LEN + tail);
	if (!o)
		return -ENOMEM;
	o->nsegs = nsegs;
	o->segs = (struct obj_seg *)(void *)o->mem;
	o->crcs = (uint32_t *)(void *)(o->segs + nsegs);
	o->scratch = (unsigned char *)(o->crcs + ncrcs);
	o->inl = nsegs ? NULL : o->scratch;
	if (!nsegs && sqlite3_column_type(s, 7) != SQLITE_NULL)
		o->inl = NULL;		/* a multipart object of empty parts only */
	o->info.size = size;
	o->info.mtime_ms = sqlite3_column_int64(s, 1);
	snprintf(o->info.etag, sizeof(o->info.etag), "%s", (const char *)sqlite3_column_text(s, 2));
	o->info.nparts = sqlite3_column_int(s, 3);
	o->version = (uint64_t)sqlite3_column_int64(s, 8);
	o->info.meta_len = (size_t)sqlite3_column_bytes(s, 4);
	memcpy(o->info.meta, col_blob(s, 4), o->info.meta_len);
	memcpy(o->crcs, col_blob(s, 5), ncrcs * CRC_LEN);
	if (o->inl)
		memcpy(o->scratch, col_blob(s, 6), (size_t)size);
	fill_segs(o, sqlite3_column_blob(s, 7));
	o->inl_ok = false;
	o->cur = o->ok_seg = -1;
	o->fd = -1;
	*out = o;
	return 0;
}

static int obj_load(struct vol *v, const char *bucket, const char *key, size_t key_len,
		    struct rep_obj **out)
{
	struct vconn *c = vol_reader(v);
	sqlite3_stmt *s = c->st[VS_OBJ_GET];
	int rc;

	sqlite3_bind_text(s, 1, bucket, -1, SQLITE_STATIC);
	store_bind_blob(s, 2, key, key_len);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && sqlite3_column_int(s, 3) < 0)
		rc = -ENOENT;		/* a tombstone */
	else if (rc == SQLITE_ROW)
		rc = obj_from_row(s, out);
	else if (rc == SQLITE_DONE)
		rc = -ENOENT;
	else
		rc = vol_fault(v, vol_sqlerr(v, c->db, rc, "obj_get"), "sql");
	sqlite3_reset(s);
	vol_reader_put(c);
	if (rc == -EBADMSG)
		log_warnx("store_bad_row vol=%s bucket=%s key_len=%zu", v->path, bucket, key_len);
	if (rc)
		return rc;
	(*out)->v = v;
	vol_count(&v->n_reads, 1);
	snprintf((*out)->bucket, sizeof((*out)->bucket), "%s", bucket);
	memcpy((*out)->key, key, key_len);
	(*out)->key_len = key_len;
	return 0;
}

/* Opens the first segment now: a file unlinked by a concurrent overwrite between the row
 * lookup and the open means "look the row up again". */
int rep_open(struct vol *v, const char *bucket, const char *key, size_t key_len,
	     struct rep_obj **out)
{
	for (int i = 0; i < OPEN_TRIES; i++) {
		struct rep_obj *o = NULL;
		int rc = obj_load(v, bucket, key, key_len, &o);

		if (rc)
			return rc;
		if (o->nsegs == 0) {
			*out = o;
			return 0;
		}
		o->fd = vol_file_open(v, o->segs[0].id);
		if (o->fd >= 0) {
			o->cur = 0;
			*out = o;
			return 0;
		}
		rc = o->fd;
		if (rc != -ENOENT) {
			log_corrupt(o, "open_failed", 0, 0);
			free(o);
			return rc;
		}
		if (i == OPEN_TRIES - 1)
			log_corrupt(o, "file_missing", 0, 0);
		free(o);
	}
	return -EIO;
}

void rep_close(struct rep_obj *o)
{
	if (!o)
		return;
	if (o->fd >= 0 && close(o->fd) < 0)
		log_warn("store_close vol=%s", o->v->path);
	free(o);
}

/* --- verified reads --- */

static int seg_at(const struct rep_obj *o, int64_t pos)
{
	int lo = 0, hi = o->nsegs - 1;

	while (lo < hi) {
		int mid = lo + (hi - lo + 1) / 2;

		if (o->segs[mid].off <= pos)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

/* Later segments open lazily (a 10,000-part object must not hold 10,000 fds); one that
 * vanished meanwhile was replaced under this reader. */
static int seg_fd(struct rep_obj *o, int i)
{
	int fd;

	if (o->cur == i)
		return o->fd;
	fd = vol_file_open(o->v, o->segs[i].id);
	if (fd < 0) {
		log_corrupt(o, "segment_open", i, 0);
		return fd == -ENOENT ? -ESTALE : fd;
	}
	if (o->fd >= 0 && close(o->fd) < 0)
		log_warn("store_close vol=%s", o->v->path);
	o->fd = fd;
	o->cur = i;
	return fd;
}

static int pread_full(int fd, void *buf, size_t len, int64_t off)
{
	unsigned char *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EBADMSG;	/* shorter than committed: lost bytes */
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* Reads block blk of segment i (len bytes) into dst and checks it. */
/* Reads len bytes of segment i from block blk on (one pread, so a send of several blocks
 * costs one read) into dst and checks every block's CRC; len covers whole blocks but for
 * the segment's last. */
static int read_blocks(struct rep_obj *o, int i, int64_t blk, void *dst, size_t len)
{
	const unsigned char *p = dst;
	int fd = seg_fd(o, i);
	int rc;

	if (fd < 0)
		return fd;
	rc = pread_full(fd, dst, len, blk * STORE_BLOCK);
	if (rc == -EBADMSG)
		log_corrupt(o, "short_file", i, blk);
	if (rc)
		return rc;
	for (size_t off = 0; off < len; off += STORE_BLOCK, blk++) {
		size_t n = len - off < STORE_BLOCK ? len - off : STORE_BLOCK;

		if (crc32c(0, p + off, n) != o->crcs[o->segs[i].crc0 + blk]) {
			log_corrupt(o, "crc_mismatch", i, blk);
			vol_count(&o->v->n_errors, 1);
			return -EBADMSG;
		}
	}
	vol_count(&o->v->n_read_bytes, len);
	return 0;
}

static int read_block(struct rep_obj *o, int i, int64_t blk, void *dst, size_t len)
{
	return read_blocks(o, i, blk, dst, len);
}

static int inline_check(struct rep_obj *o)
{
	if (o->inl_ok || o->info.size == 0)
		return 0;
	if (crc32c(0, o->inl, (size_t)o->info.size) != o->crcs[0]) {
		log_corrupt(o, "crc_mismatch", -1, 0);
		vol_count(&o->v->n_errors, 1);
		return -EBADMSG;
	}
	vol_count(&o->v->n_read_bytes, (uint64_t)o->info.size);
	o->inl_ok = true;
	return 0;
}

/* Where pos falls: segment, block, offset in the block, length of the block. */
struct obj_pos {
	int seg;
	int64_t rel, blk, boff, blen;
};

static struct obj_pos locate(const struct rep_obj *o, int64_t pos)
{
	struct obj_pos p;
	int64_t left;

	p.seg = seg_at(o, pos);
	p.rel = pos - o->segs[p.seg].off;
	p.blk = p.rel / STORE_BLOCK;
	p.boff = p.rel % STORE_BLOCK;
	left = o->segs[p.seg].size - p.blk * STORE_BLOCK;
	p.blen = left < STORE_BLOCK ? left : STORE_BLOCK;
	return p;
}

int rep_read(struct rep_obj *o, int64_t pos, void *buf, size_t len)
{
	unsigned char *out = buf;
	int rc;

	if (pos < 0 || (int64_t)len > o->info.size || pos > o->info.size - (int64_t)len)
		return -EINVAL;
	if (len == 0)
		return 0;
	if (o->inl) {
		if ((rc = inline_check(o)))
			return rc;
		memcpy(out, o->inl + pos, len);
		return 0;
	}
	while (len) {
		struct obj_pos p = locate(o, pos);
		size_t n = (size_t)(p.blen - p.boff);

		n = n < len ? n : len;
		if (p.boff == 0 && (int64_t)n == p.blen) {
			rc = read_block(o, p.seg, p.blk, out, n);
		} else {
			rc = read_block(o, p.seg, p.blk, o->scratch, (size_t)p.blen);
			if (!rc)
				memcpy(out, o->scratch + p.boff, n);
		}
		if (rc)
			return rc;
		out += n;
		len -= n;
		pos += (int64_t)n;
	}
	return 0;
}

static ssize_t send_inline(struct rep_obj *o, int sock, int64_t *pos, size_t max,
			   bool *sending)
{
	size_t n = (size_t)(o->info.size - *pos);
	ssize_t sent;
	int rc = inline_check(o);

	if (rc)
		return rc;
	*sending = true;
	n = n < max ? n : max;
	sent = send(sock, o->inl + *pos, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (sent < 0 && errno == ENOTSOCK)
		sent = write(sock, o->inl + *pos, n);
	if (sent < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	*pos += sent;
	return sent;
}

/* Up to STORE_SEND_SPAN bytes of whole blocks per call: read and verify them into scratch,
 * then sendfile() the wanted range from the (immutable) file; a partial send resumes without
 * verifying again. */
static ssize_t rep_send(struct rep_obj *o, int sock, int64_t *pos, size_t max, void *scratch,
			bool *sending)
{
	int64_t seg_size, verified_end;
	struct obj_pos p;
	ssize_t sent;
	off_t off;
	size_t n;
	int rc, fd;

	if (*pos < 0 || *pos > o->info.size)
		return -EINVAL;
	if (*pos == o->info.size || max == 0)
		return 0;
	if (o->inl)
		return send_inline(o, sock, pos, max, sending);
	p = locate(o, *pos);
	seg_size = o->segs[p.seg].size;
	if (o->ok_seg != p.seg || p.blk < o->ok_lo || p.blk >= o->ok_hi) {
		int64_t start = p.blk * STORE_BLOCK;
		int64_t end = p.rel + (int64_t)max < seg_size ? p.rel + (int64_t)max : seg_size;

		/* Whole blocks covering what was asked, at most one span. */
		end = (end - start + STORE_BLOCK - 1) / STORE_BLOCK * STORE_BLOCK + start;
		if (end - start > STORE_SEND_SPAN)
			end = start + STORE_SEND_SPAN;
		if (end > seg_size)
			end = seg_size;
		if ((rc = read_blocks(o, p.seg, p.blk, scratch, (size_t)(end - start))))
			return rc;	/* nothing of these blocks went out: another replica may serve them */
		o->ok_seg = p.seg;
		o->ok_lo = p.blk;
		o->ok_hi = p.blk + (end - start + STORE_BLOCK - 1) / STORE_BLOCK;
	}
	if ((fd = seg_fd(o, p.seg)) < 0)
		return fd;
	*sending = true;
	verified_end = o->ok_hi * STORE_BLOCK < seg_size ? o->ok_hi * STORE_BLOCK : seg_size;
	n = (size_t)(verified_end - p.rel);
	n = n < max ? n : max;
	off = (off_t)p.rel;
	sent = sendfile(sock, fd, &off, n);
	if (sent < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if (sent == 0)
		return -EIO;
	*pos += sent;
	return sent;
}

/* --- the object across replicas --- */

struct store_obj {
	struct store *st;
	struct rep_obj *first;		/* its info is the object's for the handle's life */
	struct rep_obj *r;		/* the replica being read */
	uint64_t version;
	int ncand, ci;			/* volumes holding the newest version, placement order */
	int first_ci;			/* the candidate first is read from */
	int cand[STORE_VOLS_MAX];
};

/* The newest version on any online volume, and which volumes hold it: 1, 0 (none or a
 * tombstone), -errno. */
static int obj_newest(struct store *st, const char *bucket, const char *key, size_t key_len,
		      struct store_obj *o)
{
	int order[STORE_VOLS_MAX];
	bool tomb = false;

	store_place(st, bucket, key, key_len, order);
	for (int i = 0; i < st->nvols; i++) {
		struct vol *v = store_vol(st, order[i]);
		struct vconn *c;
		uint64_t ver;
		bool t;
		int rc;

		if (!vol_online(v))
			continue;
		c = vol_reader(v);
		rc = store_row_version(v, c, bucket, key, key_len, &ver, &t);
		vol_reader_put(c);
		if (rc == 1 && ver > o->version) {
			o->version = ver;
			o->ncand = 0;
			tomb = t;
		}
		if (rc == 1 && ver == o->version)
			o->cand[o->ncand++] = order[i];
	}
	return o->ncand && !tomb;
}

/* Opens the next candidate replica of the same version; -ENOENT when none is left. */
static int obj_next(struct store_obj *o, const char *bucket, const char *key, size_t key_len,
		    struct rep_obj **out)
{
	int rc = -ENOENT;

	while (++o->ci < o->ncand) {
		rc = rep_open(store_vol(o->st, o->cand[o->ci]), bucket, key, key_len, out);
		if (rc == 0 && (*out)->version == o->version)
			return 0;
		if (rc == 0) {
			rep_close(*out);	/* replaced meanwhile: not this version */
			rc = -ENOENT;
		}
		if (rc != -ENOENT)
			return rc;
	}
	return rc;
}

int store_obj_open(struct store *st, const char *bucket, const char *key, size_t key_len,
		   struct store_obj **out)
{
	struct store_obj *o;
	int err = 0, rc = store_check_key(key_len);

	if (rc)
		return rc;
	if (store_check_bucket(bucket))
		return -ENOENT;
	if (!(o = malloc(sizeof(*o))))
		return -ENOMEM;
	o->st = st;
	o->version = 0;
	o->ncand = 0;
	o->ci = -1;
	if ((rc = obj_newest(st, bucket, key, key_len, o)) <= 0)
		goto out_free;
	/* A candidate that fails to open (bad row, I/O) yields to the next; it gets a repair. */
	while ((rc = obj_next(o, bucket, key, key_len, &o->first)) && rc != -ENOENT) {
		err = err ? err : rc;
		store_heal_queue(st, bucket, key, key_len);
	}
	if (rc) {
		rc = err ? err : rc;
		goto out_free;
	}
	o->r = o->first;
	o->first_ci = o->ci;
	*out = o;
	return 0;

out_free:
	free(o);
	return rc ? rc : -ENOENT;
}

const struct store_objinfo *store_obj_info(const struct store_obj *o)
{
	return &o->first->info;
}

void store_obj_close(struct store_obj *o)
{
	if (!o)
		return;
	if (o->r != o->first)
		rep_close(o->r);
	rep_close(o->first);
	free(o);
}

/* Opens candidate ci if it still holds the version (first is reused, never reopened). */
static struct rep_obj *obj_cand(struct store_obj *o, int ci)
{
	struct rep_obj *cur = o->r, *r = NULL;

	if (ci == o->first_ci)
		return o->first;
	if (rep_open(store_vol(o->st, o->cand[ci]), cur->bucket, cur->key, cur->key_len, &r))
		return NULL;
	if (r->version != o->version) {
		rep_close(r);	/* replaced meanwhile: not this version */
		return NULL;
	}
	return r;
}

/* A bad block (or an unreadable file) on the current replica: queue its repair and move
 * to the next candidate holding the same version, wrapping around (another block may be
 * bad on that one: the caller retries each block on at most every candidate once). */
static bool obj_switch(struct store_obj *o, int rc)
{
	struct rep_obj *cur = o->r, *next = NULL;
	int n;

	if (rc != -EBADMSG && rc != -EIO)
		return false;
	vol_fault(cur->v, rc, "read");
	store_heal_queue(o->st, cur->bucket, cur->key, cur->key_len);
	for (n = 1; n < o->ncand && !next; n++)
		next = obj_cand(o, (o->ci + n) % o->ncand);
	if (!next)
		return false;
	o->ci = (o->ci + n - 1) % o->ncand;
	log_warnx("store_replica_switch from=%s to=%s bucket=%s", cur->v->path, next->v->path,
		  cur->bucket);
	if (cur != o->first)
		rep_close(cur);
	o->r = next;
	return true;
}

/* Block by block, so that each block may come from a different replica. */
int store_obj_read(struct store_obj *o, int64_t pos, void *buf, size_t len)
{
	unsigned char *out = buf;
	int rc = 0;

	int64_t size = o->first->info.size;

	if (pos < 0 || (int64_t)len > size || pos > size - (int64_t)len)
		return -EINVAL;
	while (len && !rc) {
		size_t n = (size_t)(STORE_BLOCK - pos % STORE_BLOCK);

		n = n < len ? n : len;
		for (int tries = 1; (rc = rep_read(o->r, pos, out, n)) && tries < o->ncand &&
		     obj_switch(o, rc); tries++)
			;
		out += n;
		pos += (int64_t)n;
		len -= n;
	}
	return rc;
}

ssize_t store_obj_send(struct store_obj *o, int sock, int64_t *pos, size_t max, void *scratch)
{
	bool sending = false;
	ssize_t n;

	for (int tries = 1; (n = rep_send(o->r, sock, pos, max, scratch, &sending)) < 0 &&
	     !sending && tries < o->ncand && obj_switch(o, (int)n); tries++)
		;
	return n;
}

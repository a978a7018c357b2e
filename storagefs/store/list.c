/* list.c — listings over every volume: a k-way merge of per-volume cursors in byte order
 * where the newest version of a key wins and a winning tombstone hides it,
 * delimiter roll-up that seeks past a common prefix instead of reading its keys, and the
 * multipart upload listing, and the rows listing of the cluster (tombstones and versions
 * included). Memory per call: one cursor per volume and two key buffers. */
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/log.h"

#define BOUND_MAX	(STORE_KEY_MAX + 1)	/* a key plus the 0x00 that makes it exclusive */

/* A volume's position in VS_LIST or VS_UPLOAD_LIST; head is valid until the next step. */
struct cursor {
	struct vol *v;
	struct vconn *c;
	sqlite3_stmt *s;
	bool live;
	const unsigned char *key;
	size_t key_len;
};

struct list_run {
	const char *bucket;
	const char *prefix;
	size_t prefix_len;
	struct cursor cur[STORE_VOLS_MAX];
	int n;
	int err;
};

static int keycmp(const void *a, size_t alen, const void *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static bool has_prefix(const void *key, size_t len, const void *prefix, size_t plen)
{
	return len >= plen && memcmp(key, prefix, plen) == 0;
}

/* Steps to the next row; a key outside the prefix ends the cursor (rows are ordered). */
static void cur_step(struct list_run *r, struct cursor *c)
{
	int rc = sqlite3_step(c->s);

	c->live = false;
	if (rc == SQLITE_ROW) {
		c->key = sqlite3_column_blob(c->s, 0);
		c->key_len = (size_t)sqlite3_column_bytes(c->s, 0);
		c->live = c->key && has_prefix(c->key, c->key_len, r->prefix, r->prefix_len);
	} else if (rc != SQLITE_DONE && !r->err) {
		r->err = vol_sqlerr(c->v, c->c->db, rc, "list_step");
	}
}

static void cur_seek(struct list_run *r, struct cursor *c, const void *bound, size_t len)
{
	sqlite3_reset(c->s);
	sqlite3_bind_text(c->s, 1, r->bucket, -1, SQLITE_STATIC);
	store_bind_blob(c->s, 2, bound, len);
	cur_step(r, c);
}

static void run_open(struct list_run *r, struct store *st, enum vol_stmt stmt,
		     const void *bound, size_t len)
{
	/* Ascending volume order: the reader pools are always taken in the same order. */
	r->n = 0;
	for (int i = 0; i < st->nvols; i++) {
		struct cursor *c = &r->cur[r->n];

		if (!vol_online(store_vol(st, i)))
			continue;	/* its replicas are on the other disks */
		r->n++;
		c->v = store_vol(st, i);
		c->c = vol_reader(c->v);
		c->s = c->c->st[stmt];
		cur_seek(r, c, bound, len);
	}
}

static void run_close(struct list_run *r)
{
	for (int i = 0; i < r->n; i++) {
		sqlite3_reset(r->cur[i].s);
		vol_reader_put(r->cur[i].c);
	}
}

/* The smallest key to list: max(prefix, after + 0x00), which is after + 0x00 exactly when
 * after >= prefix. A key never exceeds STORE_KEY_MAX, so a longer after can be cut there:
 * no key lies strictly between the cut and after. plen <= STORE_KEY_MAX. */
static size_t lower_bound(const char *prefix, size_t plen, const char *after, size_t alen,
			  unsigned char out[BOUND_MAX])
{
	if (alen && keycmp(after, alen, prefix, plen) >= 0) {
		alen = alen < STORE_KEY_MAX ? alen : STORE_KEY_MAX;
		memcpy(out, after, alen);
		out[alen] = 0;
		return alen + 1;
	}
	memcpy(out, prefix, plen);
	return plen;
}

/* The smallest string above every string starting with p: drop trailing 0xff bytes, then
 * increment the last one. 0 when there is none (p is all 0xff). */
static size_t successor(const unsigned char *p, size_t len, unsigned char out[BOUND_MAX])
{
	while (len && p[len - 1] == 0xff)
		len--;
	if (len == 0)
		return 0;
	memcpy(out, p, len);
	out[len - 1]++;
	return len;
}

/* --- objects --- */

/* The cursor with the smallest head; equal heads on other volumes (a replica, or a copy
 * an older disk set left) lose to the higher version and are stepped past. */
static struct cursor *run_min(struct list_run *r)
{
	struct cursor *m = NULL;

	for (int i = 0; i < r->n; i++) {
		struct cursor *c = &r->cur[i];
		int cmp;

		if (!c->live)
			continue;
		cmp = m ? keycmp(c->key, c->key_len, m->key, m->key_len) : -1;
		if (cmp == 0 && sqlite3_column_int64(c->s, 4) > sqlite3_column_int64(m->s, 4)) {
			cur_step(r, m);
			m = c;
		} else if (cmp == 0) {
			cur_step(r, c);
		} else if (cmp < 0) {
			m = c;
		}
	}
	return m;
}

/* Every cursor inside the common prefix cp moves past it, without reading its keys. */
static void run_skip(struct list_run *r, const unsigned char *cp, size_t cp_len)
{
	unsigned char next[BOUND_MAX];
	size_t next_len = successor(cp, cp_len, next);

	for (int i = 0; i < r->n; i++) {
		struct cursor *c = &r->cur[i];

		if (!c->live || !has_prefix(c->key, c->key_len, cp, cp_len))
			continue;
		if (next_len)
			cur_seek(r, c, next, next_len);
		else
			c->live = false;
	}
}

static int emit_key(struct cursor *m, int (*fn)(void *, const struct store_list_entry *),
		    void *ctx)
{
	struct store_list_entry e = {
		.key = (const char *)m->key, .key_len = m->key_len, .is_prefix = false,
		.size = sqlite3_column_int64(m->s, 1), .mtime_ms = sqlite3_column_int64(m->s, 2),
		.etag = (const char *)sqlite3_column_text(m->s, 3),
	};

	return fn(ctx, &e);
}

/* Length of the common prefix the key rolls up into, 0 if it does not. */
static size_t rollup_len(const struct cursor *m, const struct store_list_query *q)
{
	const unsigned char *d;

	if (!q->delim_len)
		return 0;
	d = memmem(m->key + q->prefix_len, m->key_len - q->prefix_len, q->delim, q->delim_len);
	return d ? (size_t)(d - m->key) + q->delim_len : 0;
}

static int list_loop(struct list_run *r, const struct store_list_query *q,
		     int (*fn)(void *, const struct store_list_entry *), void *ctx,
		     bool *truncated)
{
	unsigned char cp[STORE_KEY_MAX];
	struct cursor *m;
	int emitted = 0, stop = 0;

	while (!stop && !r->err && (m = run_min(r))) {
		size_t cp_len;

		if (sqlite3_column_int(m->s, 5) < 0) {
			cur_step(r, m);		/* the newest version is a tombstone: deleted */
			continue;
		}
		cp_len = rollup_len(m, q);

		if (cp_len)
			memcpy(cp, m->key, cp_len);	/* m->key dies when m seeks */
		if (cp_len && q->after_len && keycmp(cp, cp_len, q->after, q->after_len) <= 0) {
			run_skip(r, cp, cp_len);	/* reported on an earlier page */
			continue;
		}
		if (emitted == q->max) {
			*truncated = true;
			break;
		}
		emitted++;
		if (cp_len) {
			struct store_list_entry e = { .key = (const char *)cp, .key_len = cp_len,
						      .is_prefix = true, .etag = "" };

			stop = fn(ctx, &e);
			run_skip(r, cp, cp_len);
		} else {
			stop = emit_key(m, fn, ctx);
			cur_step(r, m);
		}
	}
	return r->err ? r->err : stop;
}

int store_list(struct store *st, const char *bucket, const struct store_list_query *q,
	       int (*fn)(void *ctx, const struct store_list_entry *e), void *ctx,
	       bool *truncated)
{
	unsigned char bound[BOUND_MAX];
	struct list_run r = { .bucket = bucket, .prefix = q->prefix, .prefix_len = q->prefix_len };
	size_t len;
	int rc;

	*truncated = false;
	if ((rc = store_bucket_check(st, bucket)))
		return rc;
	if (q->max <= 0 || q->prefix_len > STORE_KEY_MAX)
		return 0;
	if (!r.prefix)
		r.prefix = "";
	len = lower_bound(r.prefix, q->prefix_len, q->after, q->after_len, bound);
	run_open(&r, st, VS_LIST, bound, len);
	rc = list_loop(&r, q, fn, ctx, truncated);
	run_close(&r);
	return rc;
}

/* --- rows with their versions (the cluster's repair and listing merge) --- */

/* The same merge as store_list, but every row is reported, tombstones included, with its
 * version: no delimiter, no hiding. */
int store_rows_list(struct store *st, const char *bucket, const char *prefix,
		    size_t prefix_len, const char *after, size_t after_len, int max,
		    int (*fn)(void *ctx, const struct store_row_entry *e), void *ctx,
		    bool *truncated)
{
	unsigned char bound[BOUND_MAX];
	struct list_run r = { .bucket = bucket, .prefix = prefix ? prefix : "",
			      .prefix_len = prefix_len };
	struct cursor *m;
	int emitted = 0, stop = 0;

	*truncated = false;
	if (store_check_bucket(bucket) || store_bucket_check(st, bucket))
		return -ENOENT;
	if (max <= 0 || max > STORE_ROWS_PAGE_MAX || prefix_len > STORE_KEY_MAX)
		return -EINVAL;
	run_open(&r, st, VS_LIST, bound,
		 lower_bound(r.prefix, prefix_len, after ? after : "", after ? after_len : 0, bound));
	while (!stop && !r.err && (m = run_min(&r))) {
		const unsigned char *etag = sqlite3_column_text(m->s, 3);
		struct store_row_entry e = {
			.key = (const char *)m->key, .key_len = m->key_len,
			.version = (uint64_t)sqlite3_column_int64(m->s, 4),
			.tomb = sqlite3_column_int(m->s, 5) < 0,
			.size = sqlite3_column_int64(m->s, 1),
			.mtime_ms = sqlite3_column_int64(m->s, 2),
			.etag = etag ? (const char *)etag : "",
		};

		if (emitted == max) {
			*truncated = true;
			break;
		}
		emitted++;
		stop = fn(ctx, &e);
		cur_step(&r, m);
	}
	run_close(&r);
	return r.err ? r.err : stop;
}

/* --- multipart uploads --- */

struct upl_marker {
	const char *key;
	size_t key_len;
	const char *uid;	/* NULL or "": every upload of the marker key was listed */
};

/* Steps past the uploads at or before the marker (all sit at the marker key). */
static void upl_settle(struct list_run *r, struct cursor *c, const struct upl_marker *mk)
{
	while (c->live && mk->key_len && !keycmp(c->key, c->key_len, mk->key, mk->key_len) &&
	       (!mk->uid || !*mk->uid ||
		strcmp((const char *)sqlite3_column_text(c->s, 1), mk->uid) <= 0))
		cur_step(r, c);
}

static struct cursor *upl_min(struct list_run *r)
{
	struct cursor *m = NULL;

	for (int i = 0; i < r->n; i++) {
		struct cursor *c = &r->cur[i];
		int cmp;

		if (!c->live)
			continue;
		cmp = m ? keycmp(c->key, c->key_len, m->key, m->key_len) : -1;
		if (cmp == 0)
			cmp = strcmp((const char *)sqlite3_column_text(c->s, 1),
				     (const char *)sqlite3_column_text(m->s, 1));
		if (cmp == 0)
			cur_step(r, c);		/* the same upload on another of its disks */
		else if (cmp < 0)
			m = c;
	}
	return m;
}

int store_mpu_list_uploads(struct store *st, const char *bucket,
			   const char *prefix, size_t prefix_len,
			   const char *key_marker, size_t key_marker_len,
			   const char *upload_id_marker, int max,
			   int (*fn)(void *ctx, const struct store_mpu_upload *u), void *ctx,
			   bool *truncated)
{
	struct upl_marker mk = { key_marker, key_marker_len, upload_id_marker };
	struct list_run r = { .bucket = bucket, .prefix = prefix ? prefix : "",
			      .prefix_len = prefix_len };
	unsigned char bound[BOUND_MAX];
	struct cursor *m;
	int rc, emitted = 0, stop = 0;
	size_t len;

	*truncated = false;
	if ((rc = store_bucket_check(st, bucket)))
		return rc;
	if (max <= 0 || prefix_len > STORE_KEY_MAX)
		return 0;
	/* Inclusive of the marker key: its later upload ids may still be due. */
	if (key_marker_len && keycmp(key_marker, key_marker_len, r.prefix, prefix_len) > 0) {
		len = key_marker_len < STORE_KEY_MAX ? key_marker_len : STORE_KEY_MAX;
		memcpy(bound, key_marker, len);
	} else {
		len = prefix_len;
		memcpy(bound, r.prefix, len);
	}
	run_open(&r, st, VS_UPLOAD_LIST, bound, len);
	for (int i = 0; i < r.n; i++)
		upl_settle(&r, &r.cur[i], &mk);
	while (!stop && !r.err && (m = upl_min(&r))) {
		struct store_mpu_upload u = {
			.key = (const char *)m->key, .key_len = m->key_len,
			.upload_id = (const char *)sqlite3_column_text(m->s, 1),
			.created_ms = sqlite3_column_int64(m->s, 2),
		};

		if (emitted++ == max) {
			*truncated = true;
			break;
		}
		stop = fn(ctx, &u);
		cur_step(&r, m);
	}
	run_close(&r);
	return r.err ? r.err : stop;
}

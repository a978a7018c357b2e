/* clist.c — a listing over nodes: every source (this node's store, each peer) is read a
 * page of rows at a time and the pages are merged in key order; the newest version of a
 * key wins and a winning tombstone hides it; delimiter roll-up moves every source past a
 * common prefix (re-paging from after it). The S3 semantics are store_list's. */
#include "cstore_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/log.h"

#define CLIST_PAGE_MIN	64

struct crow {
	char *key;
	size_t key_len;
	uint64_t version;
	bool tomb;
	int64_t size, mtime_ms;
	char etag[STORE_ETAG_MAX + 1];
};

struct csrc {
	struct clist_src *src;
	struct crow *rows;
	int n, pos, cap;
	bool more, dead;
	char after[STORE_KEY_MAX];	/* where the next page starts (exclusive) */
	size_t after_len;
};

struct cmerge {
	const char *bucket;
	const struct store_list_query *q;
	struct csrc *s;
	int ns, page;
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

static void rows_free(struct csrc *s)
{
	for (int i = 0; i < s->n; i++)
		free(s->rows[i].key);
	s->n = s->pos = 0;
}

static int take_row(void *ctx, const struct store_row_entry *e)
{
	struct csrc *s = ctx;
	struct crow *r;

	if (s->n == s->cap || !e->key_len || e->key_len > STORE_KEY_MAX)
		return s->n == s->cap ? -EOVERFLOW : 0;
	r = &s->rows[s->n];
	if (!(r->key = malloc(e->key_len)))
		return -ENOMEM;
	memcpy(r->key, e->key, e->key_len);
	r->key_len = e->key_len;
	r->version = e->version;
	r->tomb = e->tomb;
	r->size = e->size;
	r->mtime_ms = e->mtime_ms;
	snprintf(r->etag, sizeof(r->etag), "%s", e->etag ? e->etag : "");
	s->n++;
	return 0;
}

/* Makes s's head valid (next page when the buffered one is used up); false at its end. */
static bool head(struct cmerge *mg, struct csrc *s)
{
	const struct store_list_query *q = mg->q;
	bool truncated = false;
	int rc;

	if (s->pos < s->n)
		return true;
	if (s->dead || !s->more)
		return false;
	rows_free(s);
	rc = s->src->page(s->src->ctx, mg->bucket, q->prefix, q->prefix_len, s->after,
			  s->after_len, mg->page, take_row, s, &truncated);
	if (rc < 0) {
		rows_free(s);
		s->dead = true;
		if (s->src->required && !mg->err)
			mg->err = rc;
		else
			log_warnx("cluster_list_source_failed bucket=%s err=%d", mg->bucket, rc);
		return false;
	}
	s->more = truncated && s->n > 0;
	if (s->n) {
		memcpy(s->after, s->rows[s->n - 1].key, s->rows[s->n - 1].key_len);
		s->after_len = s->rows[s->n - 1].key_len;
	}
	return s->n > 0;
}

/* The smallest key over the heads, and the newest row for it (copied to *out, key into
 * kbuf); every source steps past it. false at the end. */
static bool next_row(struct cmerge *mg, struct crow *out, char *kbuf)
{
	struct crow *m = NULL;

	for (int i = 0; i < mg->ns; i++) {
		struct crow *h;
		int cmp;

		if (!head(mg, &mg->s[i]))
			continue;
		h = &mg->s[i].rows[mg->s[i].pos];
		cmp = m ? keycmp(h->key, h->key_len, m->key, m->key_len) : -1;
		if (cmp < 0 || (cmp == 0 && h->version > m->version))
			m = h;
	}
	if (!m || mg->err)
		return false;
	*out = *m;
	memcpy(kbuf, m->key, m->key_len);
	out->key = kbuf;
	for (int i = 0; i < mg->ns; i++) {
		struct csrc *s = &mg->s[i];

		if (s->pos < s->n && !keycmp(s->rows[s->pos].key, s->rows[s->pos].key_len,
					     out->key, out->key_len))
			s->pos++;
	}
	return true;
}

/* Every source moves past the keys starting with cp: buffered rows are dropped; a page
 * used up starts again after cp followed by 0xff bytes (no key within cp is above it but
 * the longest, which the caller's check skips). */
static void skip_prefix(struct cmerge *mg, const char *cp, size_t cp_len)
{
	for (int i = 0; i < mg->ns; i++) {
		struct csrc *s = &mg->s[i];

		while (s->pos < s->n && has_prefix(s->rows[s->pos].key, s->rows[s->pos].key_len,
						   cp, cp_len))
			s->pos++;
		if (s->pos == s->n && s->more && cp_len < STORE_KEY_MAX - 1) {
			size_t len = STORE_KEY_MAX - 1;

			memcpy(s->after, cp, cp_len);
			memset(s->after + cp_len, 0xff, len - cp_len);
			s->after_len = len;
		}
	}
}

static size_t rollup_len(const struct crow *r, const struct store_list_query *q)
{
	const char *d;

	if (!q->delim_len)
		return 0;
	d = memmem(r->key + q->prefix_len, r->key_len - q->prefix_len, q->delim, q->delim_len);
	return d ? (size_t)(d - r->key) + q->delim_len : 0;
}

static int merge_loop(struct cmerge *mg, int (*fn)(void *, const struct store_list_entry *),
		      void *ctx, bool *truncated)
{
	const struct store_list_query *q = mg->q;
	char *kbuf = malloc(STORE_KEY_MAX), *cp = malloc(STORE_KEY_MAX);
	size_t cp_len = 0;
	int emitted = 0, stop = kbuf && cp ? 0 : -ENOMEM;
	struct crow r;

	while (!stop && next_row(mg, &r, kbuf)) {
		size_t n;

		if (r.tomb || (cp_len && has_prefix(r.key, r.key_len, cp, cp_len)))
			continue;	/* deleted, or inside a prefix already rolled up */
		n = rollup_len(&r, q);
		if (n && q->after_len && keycmp(r.key, n, q->after, q->after_len) <= 0) {
			memcpy(cp, r.key, cp_len = n);
			skip_prefix(mg, cp, cp_len);	/* reported on an earlier page */
			continue;
		}
		if (emitted == q->max) {
			*truncated = true;
			break;
		}
		emitted++;
		if (n) {
			struct store_list_entry e = { .key = r.key, .key_len = n, .is_prefix = true,
						      .etag = "" };

			memcpy(cp, r.key, cp_len = n);
			stop = fn(ctx, &e);
			skip_prefix(mg, cp, cp_len);
		} else {
			struct store_list_entry e = { .key = r.key, .key_len = r.key_len,
						      .size = r.size, .mtime_ms = r.mtime_ms,
						      .etag = r.etag };

			stop = fn(ctx, &e);
		}
	}
	free(kbuf);
	free(cp);
	return mg->err ? mg->err : stop;
}

int clist_merge(const char *bucket, struct clist_src *srcs, int nsrcs,
		const struct store_list_query *q,
		int (*fn)(void *ctx, const struct store_list_entry *e), void *ctx,
		bool *truncated)
{
	struct cmerge mg = { .bucket = bucket, .q = q, .ns = nsrcs };
	int rc = 0;

	*truncated = false;
	if (q->max <= 0 || q->prefix_len > STORE_KEY_MAX)
		return 0;
	mg.page = q->max + 1 < CLIST_PAGE_MIN ? CLIST_PAGE_MIN : q->max + 1;
	if (mg.page > STORE_ROWS_PAGE_MAX)
		mg.page = STORE_ROWS_PAGE_MAX;
	if (!(mg.s = calloc((size_t)nsrcs, sizeof(*mg.s))))
		return -ENOMEM;
	for (int i = 0; i < nsrcs && !rc; i++) {
		struct csrc *s = &mg.s[i];

		s->src = &srcs[i];
		s->more = true;
		s->cap = mg.page;
		if (!(s->rows = calloc((size_t)s->cap, sizeof(*s->rows))))
			rc = -ENOMEM;
		s->after_len = q->after_len < STORE_KEY_MAX ? q->after_len : STORE_KEY_MAX;
		if (q->after_len)
			memcpy(s->after, q->after, s->after_len);
	}
	if (!rc)
		rc = merge_loop(&mg, fn, ctx, truncated);
	for (int i = 0; i < nsrcs; i++) {
		if (mg.s[i].rows)
			rows_free(&mg.s[i]);
		free(mg.s[i].rows);
	}
	free(mg.s);
	return rc;
}

/* --- the sources: this node's store and its peers --- */

struct peer_src {
	struct cstore *cs;
	struct peer p;
};

static int local_page(void *ctx, const char *bucket, const char *prefix, size_t prefix_len,
		      const char *after, size_t after_len, int max,
		      int (*fn)(void *, const struct store_row_entry *), void *fctx,
		      bool *truncated)
{
	return store_rows_list(((struct cstore *)ctx)->st, bucket, prefix, prefix_len, after,
			       after_len, max, fn, fctx, truncated);
}

static int peer_page(void *ctx, const char *bucket, const char *prefix, size_t prefix_len,
		     const char *after, size_t after_len, int max,
		     int (*fn)(void *, const struct store_row_entry *), void *fctx,
		     bool *truncated)
{
	struct peer_src *ps = ctx;
	int rc = peer_list(&ps->cs->peer, &ps->p, bucket, prefix, prefix_len, after, after_len,
			   max, fn, fctx, truncated);

	if (rc == -ENOENT) {		/* it missed the bucket's create: nothing there */
		*truncated = false;
		return 0;
	}
	return rc;
}

int cs_list(struct cstore *cs, const char *bucket, const struct store_list_query *q,
	    int (*fn)(void *ctx, const struct store_list_entry *e), void *ctx, bool *truncated)
{
	const struct cmap *m = cmap_sync_get(cs->maps);
	struct clist_src srcs[CMAP_NODES_MAX + 1];
	struct peer_src *ps = calloc(CMAP_NODES_MAX, sizeof(*ps));
	int n = 1, self, rc;

	srcs[0] = (struct clist_src){ local_page, cs, true };
	if (!ps) {
		rc = -ENOMEM;
		goto out;
	}
	self = m ? cs_self(cs, m) : -1;
	for (int i = 0; m && i < m->nnodes; i++) {
		if (i == self || !m->nodes[i].internal_addr[0])
			continue;
		ps[n - 1] = (struct peer_src){ cs, { m->nodes[i].node_id, m->nodes[i].internal_addr } };
		srcs[n] = (struct clist_src){ peer_page, &ps[n - 1], false };
		n++;
	}
	rc = clist_merge(bucket, srcs, n, q, fn, ctx, truncated);
out:
	free(ps);
	if (m)
		cmap_sync_put(cs->maps, m);
	return rc;
}

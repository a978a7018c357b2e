/* test_cstore.c — the coordinator's pure parts: the listing merge over nodes (newest
 * version wins, tombstones hide, delimiter roll-up, paging, a failed node left out) and a
 * key's order over reachable nodes. */
#include "test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../storagefs/cluster/cstore.h"

struct frow {
	const char *key;
	uint64_t version;
	bool tomb;
	int64_t size;
};

struct fsrc {
	const struct frow *rows;
	int n;
	int fail;		/* -errno returned by every page */
	int calls;
};

static int kcmp(const char *a, size_t al, const char *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	return c ? c : (al < bl ? -1 : al > bl);
}

/* store_rows_list over a sorted array. */
static int fake_page(void *ctx, const char *bucket, const char *prefix, size_t plen,
		     const char *after, size_t alen, int max,
		     int (*fn)(void *, const struct store_row_entry *), void *fctx, bool *truncated)
{
	struct fsrc *s = ctx;
	int out = 0;

	s->calls++;
	*truncated = false;
	if (s->fail)
		return s->fail;
	for (int i = 0; i < s->n; i++) {
		const struct frow *r = &s->rows[i];
		size_t kl = strlen(r->key);
		struct store_row_entry e = { r->key, kl, r->version, r->tomb, r->size, 1000, "e" };
		int rc;

		if (kl < plen || memcmp(r->key, prefix, plen) || kcmp(r->key, kl, after, alen) <= 0)
			continue;
		if (out == max) {
			*truncated = true;
			break;
		}
		out++;
		if ((rc = fn(fctx, &e)))
			return rc;
	}
	return 0;
}

struct got {
	char text[8192];
	int n;
	char last[64];
};

static int collect(void *ctx, const struct store_list_entry *e)
{
	struct got *g = ctx;
	size_t len = strlen(g->text);

	snprintf(g->text + len, sizeof(g->text) - len, "%s%.*s%s:%lld", g->n ? " " : "",
		 (int)e->key_len, e->key, e->is_prefix ? "(p)" : "", (long long)e->size);
	snprintf(g->last, sizeof(g->last), "%.*s", (int)e->key_len, e->key);
	g->n++;
	return 0;
}

static int run(struct fsrc *fs, int n, const char *prefix, const char *delim,
	       const char *after, int max, struct got *g, bool *truncated)
{
	struct clist_src srcs[8];
	struct store_list_query q = {
		.prefix = prefix, .prefix_len = strlen(prefix), .delim = delim,
		.delim_len = strlen(delim), .after = after, .after_len = strlen(after), .max = max,
	};

	for (int i = 0; i < n; i++)
		srcs[i] = (struct clist_src){ fake_page, &fs[i], i == 0 };
	memset(g, 0, sizeof(*g));
	return clist_merge("b", srcs, n, &q, collect, g, truncated);
}

static const struct frow A[] = {
	{ "a", 1, false, 1 }, { "b", 5, false, 5 }, { "d", 9, true, 0 }, { "e", 1, false, 1 },
};
static const struct frow B[] = {
	{ "a", 3, false, 3 }, { "b", 4, true, 0 }, { "c", 2, true, 0 }, { "d", 8, false, 8 },
};
static const struct frow C[] = {
	{ "c", 1, false, 1 }, { "f", 2, false, 2 },
};

TEST(clist_newest_wins_tombstones_hide)
{
	struct fsrc fs[3] = { { A, 4, 0, 0 }, { B, 4, 0, 0 }, { C, 2, 0, 0 } };
	struct got g;
	bool t;

	CHECK_INT(run(fs, 3, "", "", "", 1000, &g, &t), 0);
	/* a: B's v3; b: A's live v5 over B's tombstone v4; c: B's tombstone v2 hides C's
	 * v1; d: A's tombstone v9 hides B's v8. */
	CHECK_STR(g.text, "a:3 b:5 e:1 f:2");
	CHECK(!t);
}

TEST(clist_pages_with_after_and_max)
{
	struct fsrc fs[3] = { { A, 4, 0, 0 }, { B, 4, 0, 0 }, { C, 2, 0, 0 } };
	char all[256] = "", after[64] = "";
	struct got g;
	bool t = true;
	int pages = 0;

	while (t) {
		CHECK_INT(run(fs, 3, "", "", after, 1, &g, &t), 0);
		CHECK_INT(g.n, 1);
		strcat(all, g.text);
		strcat(all, " ");
		snprintf(after, sizeof(after), "%s", g.last);
		pages++;
	}
	CHECK_STR(all, "a:3 b:5 e:1 f:2 ");
	CHECK_INT(pages, 4);
	CHECK_INT(run(fs, 3, "", "", "", 0, &g, &t), 0);
	CHECK_INT(g.n, 0);
}

TEST(clist_delimiter_rollup_and_markers)
{
	static const struct frow X[] = {
		{ "top", 1, false, 7 }, { "x/1", 1, false, 1 }, { "x/2", 1, false, 2 },
		{ "y/gone", 1, true, 0 }, { "z/a/b", 1, false, 3 },
	};
	static const struct frow Y[] = { { "x/3", 1, false, 3 }, { "y/gone", 0, false, 4 } };
	struct fsrc fs[2] = { { X, 5, 0, 0 }, { Y, 2, 0, 0 } };
	struct got g;
	bool t;

	CHECK_INT(run(fs, 2, "", "/", "", 1000, &g, &t), 0);
	CHECK_STR(g.text, "top:7 x/(p):0 z/(p):0");	/* y/ holds only a deleted key */
	CHECK_INT(run(fs, 2, "", "/", "", 2, &g, &t), 0);
	CHECK_STR(g.text, "top:7 x/(p):0");
	CHECK(t);
	CHECK_INT(run(fs, 2, "", "/", "x/", 2, &g, &t), 0);	/* the marker is a prefix */
	CHECK_STR(g.text, "z/(p):0");
	CHECK(!t);
	CHECK_INT(run(fs, 2, "z/", "/", "", 10, &g, &t), 0);
	CHECK_STR(g.text, "z/a/(p):0");
	CHECK_INT(run(fs, 2, "x/", "", "", 10, &g, &t), 0);
	CHECK_STR(g.text, "x/1:1 x/2:2 x/3:3");
}

TEST(clist_rollup_seeks_past_a_large_prefix)
{
	enum { N = 3000 };
	struct frow *rows = calloc(N + 1, sizeof(*rows));
	char (*keys)[16] = calloc(N, sizeof(*keys));
	struct fsrc fs[1];
	struct got g;
	bool t;

	CHECK(rows && keys);
	for (int i = 0; i < N; i++) {
		snprintf(keys[i], sizeof(keys[i]), "p/%05d", i);
		rows[i] = (struct frow){ keys[i], 1, false, 1 };
	}
	rows[N] = (struct frow){ "q", 1, false, 9 };
	fs[0] = (struct fsrc){ rows, N + 1, 0, 0 };
	CHECK_INT(run(fs, 1, "", "/", "", 5, &g, &t), 0);
	CHECK_STR(g.text, "p/(p):0 q:9");
	CHECK(fs[0].calls <= 3);	/* not a page per 64 keys of p/ */
	free(rows);
	free(keys);
}

TEST(clist_failed_node_left_out_required_fails)
{
	struct fsrc fs[3] = { { A, 4, 0, 0 }, { B, 4, -ECONNREFUSED, 0 }, { C, 2, 0, 0 } };
	struct got g;
	bool t;

	CHECK_INT(run(fs, 3, "", "", "", 1000, &g, &t), 0);
	CHECK_STR(g.text, "a:1 b:5 c:1 e:1 f:2");	/* B's versions and tombstones unseen */
	fs[0].fail = -ENOENT;
	fs[1].fail = 0;
	CHECK_INT(run(fs, 3, "", "", "", 1000, &g, &t), -ENOENT);
}

TEST(cstore_order_skips_nodes_without_address)
{
	static struct cmap m;
	int order[CMAP_NODES_MAX], all[CMAP_NODES_MAX], n, k, j = 0;

	memset(&m, 0, sizeof(m));
	m.version = 1;
	m.replicas = 3;
	m.write_quorum = 2;
	m.nnodes = 5;
	for (int i = 0; i < m.nnodes; i++) {
		snprintf(m.nodes[i].node_id, sizeof(m.nodes[i].node_id), "node-%04d", i + 1);
		m.nodes[i].seed = 0x1234567ULL * (uint64_t)(i + 3);
		m.nodes[i].weight = 1;
		m.nodes[i].state = CMAP_UP;
		snprintf(m.nodes[i].internal_addr, sizeof(m.nodes[i].internal_addr),
			 i == 2 || i == 4 ? "" : "10.0.0.%d:7480", i + 1);
	}
	k = cmap_owners(&m, "b", "key-1", 5, all, CMAP_NODES_MAX);
	CHECK_INT(k, 5);
	n = cstore_order(&m, "b", "key-1", 5, 4, order);
	CHECK_INT(n, 4);	/* node 3 has no address; node 5 is self */
	for (int i = 0; i < k; i++) {
		if (all[i] == 2)
			continue;
		CHECK_INT(order[j], all[i]);
		j++;
	}
	m.nodes[1].state = CMAP_DRAINING;
	n = cstore_order(&m, "b", "key-1", 5, -1, order);
	CHECK_INT(n, 3);
	CHECK_INT(order[2], 1);	/* draining: last */
}

/* test_cluster.c — the cluster foundations: the map (parse, malformed input, JSON round
 * trip, map.json), placement over nodes (stable, weighted, draining last, minimal
 * movement), the store's replica API (newest version wins, tombstones, listing with
 * versions), the internal API server and client over loopback mutual TLS (members only,
 * the server's CN checked), and the map fetch thread against a fake controller. */
#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../lib/http1_stream.h"
#include "../../lib/pki.h"
#include "../../lib/tls.h"
#include "../../storagefs/cluster/cmap.h"
#include "../../storagefs/cluster/cmap_sync.h"
#include "../../storagefs/cluster/iapi.h"
#include "../../storagefs/cluster/peer.h"
#include "../../storagefs/store/store.h"

#define SEED(i)	(0x1111111111111111ULL * (uint64_t)(i))

/* --- the map --- */

static const char map3[] =
	"{\"version\": 12, \"cluster_id\": \"0123456789abcdef0123456789abcdef\", \"replicas\": 2,"
	" \"write_quorum\": 2, \"future_field\": [1, {\"x\": null}], \"nodes\": ["
	"{\"node_id\": \"node-0001\", \"state\": \"up\", \"seed\": \"00000000000000a1\", \"weight\": 64,"
	" \"internal_addr\": \"10.0.0.11:7480\", \"s3_endpoint\": \"http://10.0.0.11:9000\"},"
	"{\"node_id\": \"node-0002\", \"state\": \"draining\", \"seed\": \"00000000000000B2\","
	" \"weight\": 1},"
	"{\"node_id\": \"node-0003\", \"state\": \"joining\", \"seed\": \"ffffffffffffffff\","
	" \"weight\": 3, \"internal_addr\": null, \"extra\": true}]}";

TEST(cmap_parse_fields)
{
	static struct cmap m;

	CHECK_INT(cmap_parse(map3, sizeof(map3) - 1, &m), 0);
	CHECK_INT(m.version, 12);
	CHECK_STR(m.cluster_id, "0123456789abcdef0123456789abcdef");
	CHECK_INT(m.replicas, 2);
	CHECK_INT(m.write_quorum, 2);
	CHECK_INT(m.nnodes, 3);
	CHECK_STR(m.nodes[0].node_id, "node-0001");
	CHECK_INT(m.nodes[0].state, CMAP_UP);
	CHECK(m.nodes[0].seed == 0xa1);
	CHECK_INT(m.nodes[0].weight, 64);
	CHECK_STR(m.nodes[0].internal_addr, "10.0.0.11:7480");
	CHECK_STR(m.nodes[0].s3_endpoint, "http://10.0.0.11:9000");
	CHECK_INT(m.nodes[1].state, CMAP_DRAINING);
	CHECK(m.nodes[1].seed == 0xb2);
	CHECK_STR(m.nodes[1].internal_addr, "");
	CHECK_INT(m.nodes[2].state, CMAP_JOINING);
	CHECK(m.nodes[2].seed == UINT64_MAX);
	CHECK_INT(cmap_find(&m, "node-0003"), 2);
	CHECK_INT(cmap_find(&m, "node-0004"), -1);
}

TEST(cmap_json_round_trip)
{
	static struct cmap a, b;
	static char buf[CMAP_JSON_MAX];
	int n;

	CHECK_INT(cmap_parse(map3, sizeof(map3) - 1, &a), 0);
	n = cmap_json(&a, buf, sizeof(buf));
	CHECK(n > 0);
	CHECK_INT(cmap_parse(buf, (size_t)n, &b), 0);
	CHECK_MEM(&a, &b, sizeof(a));
	CHECK_INT(cmap_json(&a, buf, 40), -ENOSPC);
}

/* Each is the valid map3 with one thing broken. */
static const char *const bad_maps[] = {
	"", "[]", "null", "{}", "{\"version\": 1}",
	"{\"version\": -1, \"cluster_id\": \"c\", \"replicas\": 1, \"write_quorum\": 1, \"nodes\": []}",
	"{\"version\": 1.5, \"cluster_id\": \"c\", \"replicas\": 1, \"write_quorum\": 1, \"nodes\": []}",
	"{\"version\": 1, \"cluster_id\": 7, \"replicas\": 1, \"write_quorum\": 1, \"nodes\": []}",
	"{\"version\": 1, \"cluster_id\": \"c\", \"replicas\": 0, \"write_quorum\": 1, \"nodes\": []}",
	"{\"version\": 1, \"cluster_id\": \"c\", \"replicas\": 2, \"write_quorum\": 3, \"nodes\": []}",
	"{\"version\": 1, \"cluster_id\": \"c\", \"replicas\": 17, \"write_quorum\": 1, \"nodes\": []}",
	"{\"version\": 1, \"cluster_id\": \"c\", \"replicas\": 1, \"write_quorum\": 1, \"nodes\": {}}",
	"{\"version\": 1, \"cluster_id\": \"c\", \"replicas\": 1, \"write_quorum\": 1}",
	"{\"version\": 1, \"cluster_id\": \"c\", \"replicas\": 1, \"write_quorum\": 1, \"nodes\": [7]}",
	"{\"version\": 1, \"cluster_id\": \"c\", \"replicas\": 1, \"write_quorum\": 1, \"nodes\": "
	"[{\"node_id\": \"\", \"state\": \"up\", \"seed\": \"00000000000000a1\", \"weight\": 1}]}",
	"{\"version\": 1, \"cluster_id\": \"c\", \"replicas\": 1, \"write_quorum\": 1, \"nodes\": "
	"[{\"node_id\": \"n\", \"state\": \"gone\", \"seed\": \"00000000000000a1\", \"weight\": 1}]}",
	"{\"version\": 1, \"cluster_id\": \"c\", \"replicas\": 1, \"write_quorum\": 1, \"nodes\": "
	"[{\"node_id\": \"n\", \"state\": \"up\", \"seed\": \"a1\", \"weight\": 1}]}",
	"{\"version\": 1, \"cluster_id\": \"c\", \"replicas\": 1, \"write_quorum\": 1, \"nodes\": "
	"[{\"node_id\": \"n\", \"state\": \"up\", \"seed\": \"00000000000000g1\", \"weight\": 1}]}",
	"{\"version\": 1, \"cluster_id\": \"c\", \"replicas\": 1, \"write_quorum\": 1, \"nodes\": "
	"[{\"node_id\": \"n\", \"state\": \"up\", \"seed\": \"00000000000000a1\", \"weight\": 0}]}",
	"{\"version\": 1, \"cluster_id\": \"c\", \"replicas\": 1, \"write_quorum\": 1, \"nodes\": "
	"[{\"node_id\": \"n\", \"state\": \"up\", \"seed\": \"00000000000000a1\", \"weight\": 1,"
	" \"internal_addr\": 5}]}",
	"{\"version\": 1, \"cluster_id\": \"c\", \"replicas\": 1, \"write_quorum\": 1, \"nodes\": "
	"[{\"node_id\": \"n\", \"state\": \"up\", \"seed\": \"00000000000000a1\", \"weight\": 1},"
	" {\"node_id\": \"n\", \"state\": \"up\", \"seed\": \"00000000000000a2\", \"weight\": 1}]}",
	"{\"version\": 1, \"cluster_id\": \"c\", \"replicas\": 1, \"write_quorum\": 1, \"nodes\": [] ",
	"{\"version\": 1, \"cluster_id\": \"c\", \"replicas\": 1, \"write_quorum\": 1, \"nodes\": []} x",
};

TEST(cmap_parse_rejects_malformed)
{
	static struct cmap m;

	for (size_t i = 0; i < sizeof(bad_maps) / sizeof(bad_maps[0]); i++) {
		int rc = cmap_parse(bad_maps[i], strlen(bad_maps[i]), &m);

		if (rc != -EINVAL) {
			test_fail(__FILE__, __LINE__, "bad map %zu: rc=%d", i, rc);
			return;
		}
		CHECK_INT(m.nnodes, 0);
	}
	/* A truncation of a good map never parses. */
	for (size_t n = 0; n < sizeof(map3) - 1; n += 7)
		CHECK(cmap_parse(map3, n, &m) != 0);
}

TEST(cmap_parse_too_many_nodes)
{
	static char text[CMAP_JSON_MAX];
	static struct cmap m;
	size_t n = (size_t)snprintf(text, sizeof(text), "{\"version\": 1, \"cluster_id\": \"c\","
				    " \"replicas\": 1, \"write_quorum\": 1, \"nodes\": [");

	for (int i = 0; i <= CMAP_NODES_MAX; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s{\"node_id\": \"n%d\", \"state\":"
				      " \"up\", \"seed\": \"%016x\", \"weight\": 1}", i ? "," : "",
				      i, i + 1);
	snprintf(text + n, sizeof(text) - n, "]}");
	CHECK_INT(cmap_parse(text, strlen(text), &m), -E2BIG);
}

static void map_make(struct cmap *m, int n, const uint64_t *weights)
{
	memset(m, 0, sizeof(*m));
	m->version = 1;
	m->replicas = 3;
	m->write_quorum = 2;
	m->nnodes = n;
	for (int i = 0; i < n; i++) {
		snprintf(m->nodes[i].node_id, sizeof(m->nodes[i].node_id), "node-%04d", i + 1);
		m->nodes[i].state = CMAP_UP;
		m->nodes[i].seed = SEED(i + 1) ^ 0x5a5a5a5a12345678ULL;
		m->nodes[i].weight = weights ? weights[i] : 1;
	}
}

TEST(cmap_owners_stable_and_complete)
{
	static struct cmap m;
	int a[CMAP_NODES_MAX], b[CMAP_NODES_MAX];
	char key[32];

	map_make(&m, 5, NULL);
	for (int k = 0; k < 200; k++) {
		int n = snprintf(key, sizeof(key), "obj-%d", k), seen = 0;

		CHECK_INT(cmap_owners(&m, "b", key, (size_t)n, a, CMAP_NODES_MAX), 5);
		CHECK_INT(cmap_owners(&m, "b", key, (size_t)n, b, CMAP_NODES_MAX), 5);
		CHECK_MEM(a, b, 5 * sizeof(int));
		for (int i = 0; i < 5; i++)
			seen |= 1 << a[i];
		CHECK_INT(seen, 0x1f);
		CHECK_INT(cmap_owners(&m, "b", key, (size_t)n, b, 2), 2);
		CHECK_MEM(a, b, 2 * sizeof(int));
	}
}

TEST(cmap_owners_weighted)
{
	static const uint64_t w[4] = { 1, 1, 1, 4 };
	static struct cmap m;
	int first[4] = { 0 }, o[4];
	char key[32];

	map_make(&m, 4, w);
	for (int k = 0; k < 14000; k++) {
		int n = snprintf(key, sizeof(key), "k%d", k);

		cmap_owners(&m, "bkt", key, (size_t)n, o, 4);
		first[o[0]]++;
	}
	/* Expected shares 1/7 each and 4/7: 2000 and 8000. */
	for (int i = 0; i < 3; i++)
		CHECK(first[i] > 1700 && first[i] < 2300);
	CHECK(first[3] > 7500 && first[3] < 8500);
}

TEST(cmap_owners_draining_last)
{
	static struct cmap m;
	int o[CMAP_NODES_MAX];
	char key[32];

	map_make(&m, 6, NULL);
	m.nodes[1].state = CMAP_DRAINING;
	m.nodes[4].state = CMAP_DRAINING;
	m.nodes[2].state = CMAP_DOWN;
	for (int k = 0; k < 300; k++) {
		int n = snprintf(key, sizeof(key), "x/%d", k);

		CHECK_INT(cmap_owners(&m, "b", key, (size_t)n, o, CMAP_NODES_MAX), 6);
		for (int i = 0; i < 4; i++)
			CHECK(o[i] != 1 && o[i] != 4);
		CHECK(o[4] == 1 || o[4] == 4);
		CHECK(o[5] == 1 || o[5] == 4);
	}
}

/* A new node takes keys only for itself: the others' relative order is unchanged. */
TEST(cmap_owners_minimal_movement)
{
	static struct cmap m5, m6;
	int a[CMAP_NODES_MAX], b[CMAP_NODES_MAX], moved = 0;
	char key[32];

	map_make(&m6, 6, NULL);
	m5 = m6;
	m5.nnodes = 5;
	for (int k = 0; k < 3000; k++) {
		int n = snprintf(key, sizeof(key), "m%d", k), j = 0;

		cmap_owners(&m5, "b", key, (size_t)n, a, 5);
		cmap_owners(&m6, "b", key, (size_t)n, b, 6);
		for (int i = 0; i < 6; i++)
			if (b[i] != 5)
				CHECK_INT(b[i], a[j++]);
		moved += b[0] == 5;
	}
	CHECK(moved > 350 && moved < 650);	/* about 1/6 */
}

TEST(cmap_save_load)
{
	static struct cmap a, b;
	char path[512];

	CHECK_INT(cmap_load(test_tmpdir(), &b), -ENOENT);
	CHECK_INT(cmap_parse(map3, sizeof(map3) - 1, &a), 0);
	CHECK_INT(cmap_save(test_tmpdir(), &a), 0);
	CHECK_INT(cmap_load(test_tmpdir(), &b), 0);
	CHECK_MEM(&a, &b, sizeof(a));
	snprintf(path, sizeof(path), "%s/map.json.tmp", test_tmpdir());
	CHECK(access(path, F_OK) != 0);
	snprintf(path, sizeof(path), "%s/map.json", test_tmpdir());
	FILE *f = fopen(path, "w");
	CHECK(f);
	fputs("{\"version\": 3", f);
	fclose(f);
	CHECK_INT(cmap_load(test_tmpdir(), &b), -EINVAL);
}

static struct cmap *map_new(uint64_t version, int n)
{
	struct cmap *m = cmap_sync_map_new();

	if (m) {
		map_make(m, n, NULL);
		m->version = version;
	}
	return m;
}

TEST(cmap_sync_offer_newer_only)
{
	static struct cmap back;
	struct cmap_sync *s, *s2;
	const struct cmap *cur;

	CHECK_INT(cmap_sync_new(test_tmpdir(), &s), 0);
	CHECK(cmap_sync_get(s) == NULL);
	CHECK(!cmap_sync_member(s, "node-0001"));
	CHECK_INT(cmap_sync_offer(s, map_new(5, 2)), 1);
	cur = cmap_sync_get(s);			/* held across the swap below */
	CHECK(cur && cur->version == 5 && cur->nnodes == 2);
	CHECK_INT(cmap_sync_offer(s, map_new(4, 3)), 0);	/* older: ignored */
	CHECK_INT(cmap_sync_offer(s, map_new(5, 3)), 0);	/* same version: ignored */
	CHECK_INT(cmap_sync_version(s), 5);
	CHECK_INT(cmap_sync_offer(s, map_new(9, 3)), 1);
	CHECK_INT(cur->nnodes, 2);		/* the old one stays valid until put */
	cmap_sync_put(s, cur);
	CHECK(cmap_sync_member(s, "node-0003"));
	CHECK(!cmap_sync_member(s, "node-0004"));
	CHECK_INT(cmap_load(test_tmpdir(), &back), 0);	/* saved before installed */
	CHECK_INT(back.version, 9);
	cmap_sync_free(s);
	CHECK_INT(cmap_sync_new(test_tmpdir(), &s2), 0);	/* a restart starts from it */
	CHECK_INT(cmap_sync_version(s2), 9);
	cmap_sync_free(s2);
}

/* --- the store's replica API --- */

struct sfx {
	char dirs[3][256];
	const char *ptrs[3];
	struct store_config cfg;
	struct store *st;
};

static int sfx_open(struct sfx *fx, int n, int r, int w)
{
	memset(fx, 0, sizeof(*fx));
	for (int i = 0; i < n; i++) {
		snprintf(fx->dirs[i], sizeof(fx->dirs[i]), "%s/disk%d", test_tmpdir(), i);
		fx->ptrs[i] = fx->dirs[i];
	}
	fx->cfg = (struct store_config){ .dirs = fx->ptrs, .ndirs = n, .replicas = r,
					 .write_quorum = w };
	return store_open(&fx->cfg, &fx->st) ? -1 : store_bucket_create(fx->st, "b");
}

static void fill(unsigned char *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)(seed * 37 + i * 11 + (i >> 10));
}

static struct store_row row_of(uint64_t version, const char *etag, int64_t size)
{
	struct store_row r = { .version = version };

	snprintf(r.info.etag, sizeof(r.info.etag), "%s", etag);
	r.info.size = size;
	r.info.mtime_ms = 1700000000123;
	r.info.nparts = 3;
	r.info.meta_len = 5;
	memcpy(r.info.meta, "m\0eta", 5);
	return r;
}

/* Applies len bytes of data in odd chunks: the store's return, *held filled. */
static int apply(struct store *st, const char *key, const unsigned char *data, size_t len,
		 const struct store_row *row, uint64_t *held)
{
	struct store_apply *a;
	int rc = store_apply_begin(st, "b", key, strlen(key), &a);

	for (size_t off = 0; !rc && off < len; off += 7777)
		rc = store_apply_write(a, data + off, len - off < 7777 ? len - off : 7777);
	if (rc) {
		store_apply_abort(a);
		return rc;
	}
	return store_apply_commit(a, row, held);
}

/* 0 when key reads back as (version, data) through the replica reader. */
static int readback(struct store *st, const char *key, uint64_t version, const unsigned char *want,
		    size_t len)
{
	unsigned char *got = malloc(len + 1);
	struct store_row row;
	struct store_rep *r;
	int rc = store_rep_open(st, "b", key, strlen(key), &row, &r);

	if (!rc) {
		rc = row.version != version || row.info.size != (int64_t)len ? -ESTALE :
		     store_rep_read(r, 0, got, len);
		if (!rc && memcmp(got, want, len))
			rc = -EILSEQ;
		store_rep_close(r);
	}
	free(got);
	return rc;
}

TEST(apply_newest_version_wins)
{
	static unsigned char big[3 * 65536 + 999], small[100], other[3 * 65536 + 999];
	struct store_row r100 = row_of(100, "aa-3", sizeof(big)), row;
	struct store_row r50 = row_of(50, "bb", sizeof(small));
	struct store_row r200 = row_of(200, "cc", sizeof(small));
	uint64_t held = 0;
	struct sfx fx;

	fill(big, sizeof(big), 1);
	fill(other, sizeof(other), 2);
	fill(small, sizeof(small), 3);
	CHECK_INT(sfx_open(&fx, 3, 2, 2), 0);
	CHECK_INT(store_row_get(fx.st, "b", "k", 1, &row), -ENOENT);
	CHECK_INT(apply(fx.st, "k", big, sizeof(big), &r100, &held), 0);
	CHECK_INT(held, 100);
	CHECK_INT(readback(fx.st, "k", 100, big, sizeof(big)), 0);
	CHECK_INT(store_row_get(fx.st, "b", "k", 1, &row), 0);
	CHECK(!row.tomb && row.version == 100 && row.info.size == (int64_t)sizeof(big));
	CHECK_STR(row.info.etag, "aa-3");
	CHECK_INT(row.info.mtime_ms, 1700000000123);
	CHECK_INT(row.info.nparts, 3);
	CHECK_INT(row.info.meta_len, 5);
	CHECK_MEM(row.info.meta, "m\0eta", 5);
	/* Older: refused, the held version said, the data unchanged. Same: already there. */
	CHECK_INT(apply(fx.st, "k", small, sizeof(small), &r50, &held), 1);
	CHECK_INT(held, 100);
	r100.info.size = sizeof(other);
	CHECK_INT(apply(fx.st, "k", other, sizeof(other), &r100, &held), 1);
	CHECK_INT(held, 100);
	CHECK_INT(readback(fx.st, "k", 100, big, sizeof(big)), 0);
	/* Newer lands, inline this time; the S3 read path sees it too. */
	CHECK_INT(apply(fx.st, "k", small, sizeof(small), &r200, &held), 0);
	CHECK_INT(held, 200);
	CHECK_INT(readback(fx.st, "k", 200, small, sizeof(small)), 0);
	struct store_obj *o;
	CHECK_INT(store_obj_open(fx.st, "b", "k", 1, &o), 0);
	CHECK_STR(store_obj_info(o)->etag, "cc");
	store_obj_close(o);
	/* The node's own next stamp is newer than anything applied. */
	struct store_row far = row_of(4000000000000000000ULL, "dd", 1);
	CHECK_INT(apply(fx.st, "far", small, 1, &far, &held), 0);
	CHECK_INT(store_obj_delete(fx.st, "b", "far", 3), 0);
	CHECK_INT(store_row_get(fx.st, "b", "far", 3, &row), 0);
	CHECK(row.tomb && row.version > 4000000000000000000ULL);
	store_close(fx.st);
}

TEST(apply_tombstones_by_version)
{
	static unsigned char data[20000];
	struct store_row r10 = row_of(10, "e1", sizeof(data)), r30 = row_of(30, "e3", 5), row;
	uint64_t held;
	struct sfx fx;

	fill(data, sizeof(data), 4);
	CHECK_INT(sfx_open(&fx, 2, 2, 1), 0);
	CHECK_INT(apply(fx.st, "t", data, sizeof(data), &r10, &held), 0);
	CHECK_INT(store_apply_tomb(fx.st, "b", "t", 1, 5, &held), 1);	/* older delete */
	CHECK_INT(held, 10);
	CHECK_INT(readback(fx.st, "t", 10, data, sizeof(data)), 0);
	CHECK_INT(store_apply_tomb(fx.st, "b", "t", 1, 20, &held), 0);
	CHECK_INT(held, 20);
	CHECK_INT(store_row_get(fx.st, "b", "t", 1, &row), 0);
	CHECK(row.tomb && row.version == 20);
	struct store_rep *rp;
	CHECK_INT(store_rep_open(fx.st, "b", "t", 1, &row, &rp), -ENOENT);
	CHECK(row.tomb && row.version == 20);
	struct store_obj *o;
	CHECK_INT(store_obj_open(fx.st, "b", "t", 1, &o), -ENOENT);
	/* A replica older than the tombstone does not resurrect the key; a newer one does. */
	CHECK_INT(apply(fx.st, "t", data, sizeof(data), &r10, &held), 1);
	CHECK_INT(held, 20);
	CHECK_INT(apply(fx.st, "t", data, 5, &r30, &held), 0);
	CHECK_INT(readback(fx.st, "t", 30, data, 5), 0);
	/* A tombstone for a key nobody has is written (it outranks copies elsewhere). */
	CHECK_INT(store_apply_tomb(fx.st, "b", "never", 5, 7, &held), 0);
	CHECK_INT(store_row_get(fx.st, "b", "never", 5, &row), 0);
	CHECK(row.tomb && row.version == 7);
	CHECK_INT(store_apply_tomb(fx.st, "nob", "x", 1, 7, &held), -ENOENT);
	CHECK_INT(store_apply_tomb(fx.st, "b", "x", 1, 0, &held), -EINVAL);
	store_close(fx.st);
}

struct rows {
	int n;
	char keys[8][16];
	uint64_t ver[8];
	bool tomb[8];
	int64_t size[8];
};

static int rows_cb(void *ctx, const struct store_row_entry *e)
{
	struct rows *r = ctx;

	if (r->n == 8)
		return -ENOSPC;
	snprintf(r->keys[r->n], sizeof(r->keys[0]), "%.*s", (int)e->key_len, e->key);
	r->ver[r->n] = e->version;
	r->tomb[r->n] = e->tomb;
	r->size[r->n] = e->size;
	r->n++;
	return 0;
}

TEST(apply_rows_list_with_tombstones)
{
	static unsigned char data[100];
	const char *keys[] = { "a/1", "a/2", "a/3", "b/1" };
	struct rows r = { 0 };
	uint64_t held;
	bool trunc;
	struct sfx fx;

	CHECK_INT(sfx_open(&fx, 3, 2, 2), 0);
	for (int i = 0; i < 4; i++) {
		struct store_row row = row_of(100 + (uint64_t)i, "e", 10 + i);

		CHECK_INT(apply(fx.st, keys[i], data, 10 + (size_t)i, &row, &held), 0);
	}
	CHECK_INT(store_apply_tomb(fx.st, "b", "a/2", 3, 500, &held), 0);
	CHECK_INT(store_rows_list(fx.st, "b", "a/", 2, NULL, 0, 1000, rows_cb, &r, &trunc), 0);
	CHECK(!trunc);
	CHECK_INT(r.n, 3);
	CHECK_STR(r.keys[0], "a/1");
	CHECK_STR(r.keys[1], "a/2");
	CHECK(r.tomb[1] && r.ver[1] == 500 && !r.tomb[0] && r.ver[0] == 100 && r.size[2] == 12);
	memset(&r, 0, sizeof(r));
	CHECK_INT(store_rows_list(fx.st, "b", "", 0, "a/1", 3, 2, rows_cb, &r, &trunc), 0);
	CHECK(trunc);
	CHECK_INT(r.n, 2);
	CHECK_STR(r.keys[0], "a/2");
	CHECK_STR(r.keys[1], "a/3");
	CHECK_INT(store_rows_list(fx.st, "zz", "", 0, NULL, 0, 5, rows_cb, &r, &trunc), -ENOENT);
	CHECK_INT(store_rows_list(fx.st, "b", "", 0, NULL, 0, 0, rows_cb, &r, &trunc), -EINVAL);
	CHECK_INT(store_bucket_delete(fx.st, "b"), -ENOTEMPTY);
	store_close(fx.st);
}

TEST(apply_fd_and_bad_rows)
{
	static unsigned char data[200000];
	struct store_row row = row_of(77, "ff", sizeof(data));
	char path[512];
	uint64_t held;
	struct sfx fx;
	int fd;

	fill(data, sizeof(data), 9);
	snprintf(path, sizeof(path), "%s/src", test_tmpdir());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, data, sizeof(data)) == (ssize_t)sizeof(data));
	CHECK_INT(sfx_open(&fx, 1, 1, 1), 0);
	CHECK_INT(store_apply_fd(fx.st, "b", "f", 1, fd, &row, &held), 0);
	CHECK_INT(readback(fx.st, "f", 77, data, sizeof(data)), 0);
	row.info.size = sizeof(data) + 10;	/* the file is shorter than said */
	row.version = 78;
	CHECK_INT(store_apply_fd(fx.st, "b", "f", 1, fd, &row, &held), -EIO);
	close(fd);
	row.version = 0;
	CHECK_INT(apply(fx.st, "g", data, 10, &row, &held), -EINVAL);
	row = row_of(5, "e", 1);
	row.info.meta_len = STORE_META_MAX + 1;
	CHECK_INT(apply(fx.st, "g", data, 1, &row, &held), -EINVAL);
	CHECK_INT(readback(fx.st, "f", 77, data, sizeof(data)), 0);
	struct store_apply *a;
	CHECK_INT(store_apply_begin(fx.st, "nob", "g", 1, &a), -ENOENT);
	CHECK_INT(store_apply_begin(fx.st, "b", "g", 0, &a), -EINVAL);
	store_close(fx.st);
}

/* --- the internal API over loopback --- */

struct party {
	char key[PKI_PEM_MAX], crt[PKI_PEM_MAX];
};

/* pki_sign makes certificates for one TLS role, so the server side of node-0001 and the
 * client side of node-0002 are separate certificates here. */
static struct pworld {
	struct party ca, srv1, cli2, cli9, ctl, other_ca, rogue2;
	int err;
} PW;
static pthread_once_t pw_once = PTHREAD_ONCE_INIT;

static int issue(struct party *ca, struct party *p, const char *cn, uint64_t serial, int server)
{
	char csr[PKI_PEM_MAX];
	int err = pki_key_new(p->key);

	if (!err)
		err = pki_csr_new(p->key, cn, csr);
	return err ? err : pki_sign(ca->key, ca->crt, csr, cn, serial, 1, server, p->crt);
}

static void pw_make(void)
{
	int e = pki_key_new(PW.ca.key);

	e = e ? e : pki_ca_new(PW.ca.key, "cairn-ca-test", 1, PW.ca.crt);
	e = e ? e : pki_key_new(PW.other_ca.key);
	e = e ? e : pki_ca_new(PW.other_ca.key, "cairn-ca-test", 1, PW.other_ca.crt);
	e = e ? e : issue(&PW.ca, &PW.srv1, "node-0001", 1, 1);
	e = e ? e : issue(&PW.ca, &PW.cli2, "node-0002", 2, 0);
	e = e ? e : issue(&PW.ca, &PW.cli9, "node-0009", 3, 0);
	e = e ? e : issue(&PW.ca, &PW.ctl, "cairn-controller", 4, 1);
	e = e ? e : issue(&PW.other_ca, &PW.rogue2, "node-0002", 2, 0);
	PW.err = e;
}

static const struct pworld *pworld(void)
{
	pthread_once(&pw_once, pw_make);
	return PW.err ? NULL : &PW;
}

struct ifx {
	struct sfx s;
	struct cbucket *log;
	struct cmap_sync *maps;
	struct iapi *api;
	struct peer_cfg pc;
	struct peer p;
};

static int ifx_open(struct ifx *fx, const struct pworld *w)
{
	struct iapi_config cfg = { .listen = "127.0.0.1:0", .cert_pem = w->srv1.crt,
				   .key_pem = w->srv1.key, .ca_pem = w->ca.crt, .timeout_ms = 5000 };
	struct cmap *m;
	int err = sfx_open(&fx->s, 2, 1, 1);

	if (err || (err = cmap_sync_new(test_tmpdir(), &fx->maps)))
		return err ? err : -1;
	if (!(m = cmap_sync_map_new()))
		return -ENOMEM;
	map_make(m, 2, NULL);			/* node-0001 (this one), node-0002 */
	if (cmap_sync_offer(fx->maps, m) != 1)
		return -1;
	cfg.st = fx->s.st;
	cfg.maps = fx->maps;
	if ((err = cbucket_open(test_tmpdir(), fx->s.st, &fx->log)))
		return err;
	cfg.buckets = fx->log;
	if ((err = iapi_start(&cfg, &fx->api)))
		return err;
	fx->pc = (struct peer_cfg){ w->ca.crt, w->cli2.crt, w->cli2.key, 5000, NULL };
	fx->p = (struct peer){ "node-0001", iapi_addr(fx->api) };
	return 0;
}

static void ifx_close(struct ifx *fx)
{
	iapi_stop(fx->api);
	cbucket_free(fx->log);
	cmap_sync_free(fx->maps);
	store_close(fx->s.st);
}

struct sinkbuf {
	unsigned char *buf;
	size_t len, cap;
};

static int sink(void *ctx, const void *buf, size_t n)
{
	struct sinkbuf *s = ctx;

	if (s->len + n > s->cap)
		return -EOVERFLOW;
	memcpy(s->buf + s->len, buf, n);
	s->len += n;
	return 0;
}

static int tmpfile_with(const void *data, size_t len)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/body-XXXXXX", test_tmpdir());
	fd = mkstemp(path);
	if (fd >= 0 && write(fd, data, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	return fd;
}

TEST(iapi_replica_round_trip)
{
	static unsigned char data[700001], got[700001];
	const struct pworld *w = pworld();
	struct sinkbuf sb = { got, 0, sizeof(got) };
	const char *key = "dir/obj name+%\xc3\xa9?&=#";
	struct store_row row = row_of(1000, "abc-2", sizeof(data)), back;
	uint64_t held;
	struct ifx fx;
	int fd;

	CHECK(w);
	fill(data, sizeof(data), 5);
	CHECK_INT(ifx_open(&fx, w), 0);
	CHECK_INT(peer_bucket_create(&fx.pc, &fx.p, "b2", 0), 0);
	CHECK_INT(peer_bucket_create(&fx.pc, &fx.p, "b2", 0), -EEXIST);
	fd = tmpfile_with(data, sizeof(data));
	CHECK(fd >= 0);
	CHECK_INT(peer_put_fd(&fx.pc, &fx.p, "b2", key, strlen(key), fd, &row, &held), 0);
	CHECK_INT(held, 1000);
	CHECK_INT(peer_head(&fx.pc, &fx.p, "b2", key, strlen(key), &back), 0);
	CHECK(back.version == 1000 && !back.tomb && back.info.size == (int64_t)sizeof(data));
	CHECK_STR(back.info.etag, "abc-2");
	CHECK_INT(back.info.nparts, 3);
	CHECK_INT(back.info.mtime_ms, 1700000000123);
	CHECK_INT(back.info.meta_len, 5);
	CHECK_MEM(back.info.meta, "m\0eta", 5);
	CHECK_INT(peer_get(&fx.pc, &fx.p, "b2", key, strlen(key), 0, -1, sink, &sb, &back), 0);
	CHECK_INT(sb.len, sizeof(data));
	CHECK_MEM(got, data, sizeof(data));
	sb.len = 0;
	CHECK_INT(peer_get(&fx.pc, &fx.p, "b2", key, strlen(key), 65530, 70000, sink, &sb,
			   &back), 0);
	CHECK_INT(sb.len, 70000);
	CHECK_MEM(got, data + 65530, 70000);
	CHECK_INT(back.info.size, sizeof(data));
	/* An older version: refused with the held one, the bytes unchanged. */
	row.version = 999;
	CHECK_INT(peer_put_fd(&fx.pc, &fx.p, "b2", key, strlen(key), fd, &row, &held), 1);
	CHECK_INT(held, 1000);
	close(fd);
	CHECK_INT(peer_delete(&fx.pc, &fx.p, "b2", key, strlen(key), 2000, &held), 0);
	CHECK_INT(held, 2000);
	CHECK_INT(peer_head(&fx.pc, &fx.p, "b2", key, strlen(key), &back), -ENOENT);
	CHECK(back.tomb && back.version == 2000);
	CHECK_INT(peer_head(&fx.pc, &fx.p, "b2", "nope", 4, &back), -ENOENT);
	CHECK(!back.tomb && back.version == 0);
	CHECK_INT(peer_head(&fx.pc, &fx.p, "nob", "nope", 4, &back), -ENOENT);
	CHECK_INT(peer_delete(&fx.pc, &fx.p, "b2", key, strlen(key), 1500, &held), 1);
	CHECK_INT(held, 2000);
	ifx_close(&fx);
}

struct prow {
	int n;
	char key[4][64];
	bool tomb[4];
	uint64_t ver[4];
};

static int prow_cb(void *ctx, const struct store_row_entry *e)
{
	struct prow *r = ctx;

	if (r->n == 4)
		return -ENOSPC;
	snprintf(r->key[r->n], sizeof(r->key[0]), "%.*s", (int)e->key_len, e->key);
	r->tomb[r->n] = e->tomb;
	r->ver[r->n++] = e->version;
	return 0;
}

static int bucket_cb(void *ctx, const struct store_bucket *b)
{
	char *names = ctx;

	strcat(names, b->name);
	strcat(names, ",");
	return 0;
}

TEST(iapi_list_and_buckets)
{
	const struct pworld *w = pworld();
	struct store_row row = row_of(10, "e", 3);
	struct prow r = { 0 };
	char names[256] = "";
	uint64_t held;
	bool trunc;
	struct ifx fx;
	int fd;

	CHECK(w);
	CHECK_INT(ifx_open(&fx, w), 0);
	fd = tmpfile_with("abc", 3);
	CHECK(fd >= 0);
	CHECK_INT(peer_put_fd(&fx.pc, &fx.p, "b", "p/a", 3, fd, &row, &held), 0);
	CHECK_INT(peer_put_fd(&fx.pc, &fx.p, "b", "p/b c", 5, fd, &row, &held), 0);
	CHECK_INT(peer_put_fd(&fx.pc, &fx.p, "b", "q", 1, fd, &row, &held), 0);
	close(fd);
	CHECK_INT(peer_delete(&fx.pc, &fx.p, "b", "p/a", 3, 20, &held), 0);
	CHECK_INT(peer_list(&fx.pc, &fx.p, "b", "p/", 2, NULL, 0, 1000, prow_cb, &r, &trunc), 0);
	CHECK(!trunc);
	CHECK_INT(r.n, 2);
	CHECK_STR(r.key[0], "p/a");
	CHECK(r.tomb[0] && r.ver[0] == 20);
	CHECK_STR(r.key[1], "p/b c");
	CHECK(!r.tomb[1] && r.ver[1] == 10);
	memset(&r, 0, sizeof(r));
	CHECK_INT(peer_list(&fx.pc, &fx.p, "b", NULL, 0, "p/a", 3, 1, prow_cb, &r, &trunc), 0);
	CHECK(trunc && r.n == 1);
	CHECK_STR(r.key[0], "p/b c");
	CHECK_INT(peer_list(&fx.pc, &fx.p, "nob", NULL, 0, NULL, 0, 5, prow_cb, &r, &trunc),
		  -ENOENT);
	CHECK_INT(peer_bucket_create(&fx.pc, &fx.p, "c", 0), 0);
	CHECK_INT(peer_buckets(&fx.pc, &fx.p, bucket_cb, names), 0);
	CHECK_STR(names, "b,c,");
	CHECK_INT(peer_bucket_delete(&fx.pc, &fx.p, "b", 0), -ENOTEMPTY);
	CHECK_INT(peer_bucket_delete(&fx.pc, &fx.p, "c", 0), 0);
	CHECK_INT(peer_bucket_delete(&fx.pc, &fx.p, "c", 0), -ENOENT);
	ifx_close(&fx);
}

/* --- the bucket log --- */

static struct cbucket_ent bent(const char *name, uint64_t version, bool deleted)
{
	struct cbucket_ent e = { .version = version, .deleted = deleted };

	snprintf(e.name, sizeof(e.name), "%s", name);
	return e;
}

static int bent_cat(void *ctx, const struct cbucket_ent *e)
{
	char *out = ctx;

	sprintf(out + strlen(out), "%s@%llu%s,", e->name, (unsigned long long)e->version,
		e->deleted ? "x" : "");
	return 0;
}

TEST(cbucket_newer_wins_and_survives_restart)
{
	struct cbucket *b, *b2;
	struct cbucket_ent e;
	char all[256] = "", again[256] = "", json[1024];
	uint64_t s1, s2;
	int len;

	CHECK_INT(cbucket_open(test_tmpdir(), NULL, &b), 0);
	e = bent("photos", 100, false);
	CHECK_INT(cbucket_record(b, &e), 1);
	CHECK_INT(cbucket_record(b, &e), 0);			/* the same: not newer */
	e = bent("photos", 100, true);
	CHECK_INT(cbucket_record(b, &e), 1);			/* a tie: the delete wins */
	e = bent("photos", 99, false);
	CHECK_INT(cbucket_record(b, &e), 0);			/* an older create: ignored */
	e = bent("logs", 7, false);
	CHECK_INT(cbucket_record(b, &e), 1);
	e = bent("bad/name", 8, false);
	CHECK_INT(cbucket_record(b, &e), -EINVAL);
	e = bent("zero", 0, false);
	CHECK_INT(cbucket_record(b, &e), -EINVAL);
	CHECK_INT(cbucket_get(b, "photos", &e), 0);
	CHECK(e.deleted && e.version == 100);
	CHECK_INT(cbucket_get(b, "nope", &e), -ENOENT);
	s1 = cbucket_stamp(b);
	s2 = cbucket_stamp(b);
	CHECK(s1 > 100 && s2 > s1);
	CHECK_INT(cbucket_each(b, bent_cat, all), 0);
	CHECK_STR(all, "logs@7,photos@100x,");
	len = cbucket_json(b, json, sizeof(json));
	CHECK(len > 0);
	CHECK_INT(cbucket_parse(json, (size_t)len, bent_cat, again), 0);
	CHECK_STR(again, all);
	CHECK_INT(cbucket_json(b, json, 10), -ENOSPC);
	cbucket_free(b);
	CHECK_INT(cbucket_open(test_tmpdir(), NULL, &b2), 0);	/* buckets.json: the same log */
	again[0] = '\0';
	CHECK_INT(cbucket_each(b2, bent_cat, again), 0);
	CHECK_STR(again, all);
	CHECK(cbucket_stamp(b2) > 100);
	cbucket_free(b2);
}

TEST(cbucket_parse_refuses_malformed)
{
	char out[256] = "";
	const char *bad[] = {
		"", "[]", "{}", "{\"buckets\": {}}",
		"{\"buckets\": [{\"name\": \"a\", \"version\": 0, \"deleted\": false}]}",
		"{\"buckets\": [{\"name\": \"a\", \"version\": 5}]}",
		"{\"buckets\": [{\"name\": \"../x\", \"version\": 5, \"deleted\": true}]}",
		"{\"buckets\": [{\"name\": \"\", \"version\": 5, \"deleted\": true}]}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_INT(cbucket_parse(bad[i], strlen(bad[i]), bent_cat, out), -EINVAL);
	CHECK_STR(out, "");
}

TEST(cbucket_store_follows_the_log)
{
	struct sfx fx;
	struct cbucket *b;
	struct cbucket_ent e;
	struct store_bucket sb;
	struct store_row row = row_of(10, "e", 3);
	uint64_t held;
	int fd;

	CHECK_INT(sfx_open(&fx, 2, 1, 1), 0);			/* bucket "b", made before the log */
	CHECK_INT(store_bucket_create(fx.st, "full"), 0);
	fd = tmpfile_with("abc", 3);
	CHECK(fd >= 0);
	CHECK_INT(store_apply_fd(fx.st, "full", "k", 1, fd, &row, &held), 0);
	close(fd);
	CHECK_INT(cbucket_open(test_tmpdir(), fx.st, &b), 0);
	CHECK_INT(cbucket_get(b, "b", &e), 0);			/* adopted with its creation time */
	CHECK(!e.deleted && e.version > 1600000000000ull);
	e = bent("b", e.version + 1, true);
	CHECK_INT(cbucket_record(b, &e), 1);
	e = bent("full", cbucket_stamp(b), true);
	CHECK_INT(cbucket_record(b, &e), 1);
	e = bent("learned", cbucket_stamp(b), false);
	CHECK_INT(cbucket_record(b, &e), 1);
	CHECK_INT(cbucket_apply(b, fx.st), 2);			/* b gone, learned made */
	CHECK_INT(store_bucket_get(fx.st, "b", &sb), -ENOENT);
	CHECK_INT(store_bucket_get(fx.st, "learned", &sb), 0);
	CHECK_INT(store_bucket_get(fx.st, "full", &sb), 0);	/* rows left: kept for now */
	CHECK_INT(cbucket_apply(b, fx.st), 0);
	cbucket_free(b);
	store_close(fx.st);
}

static int bent_log_cb(void *ctx, const struct cbucket_ent *e)
{
	return bent_cat(ctx, e);
}

TEST(iapi_bucket_versions)
{
	const struct pworld *w = pworld();
	struct store_bucket sb;
	char got[512] = "";
	struct ifx fx;

	CHECK(w);
	CHECK_INT(ifx_open(&fx, w), 0);
	CHECK_INT(peer_bucket_create(&fx.pc, &fx.p, "v", 100), 0);
	CHECK_INT(peer_bucket_delete(&fx.pc, &fx.p, "v", 200), 0);
	/* A create older than the delete (late, replayed, or from a stale node) loses. */
	CHECK_INT(peer_bucket_create(&fx.pc, &fx.p, "v", 150), -ENOENT);
	CHECK_INT(store_bucket_get(fx.s.st, "v", &sb), -ENOENT);
	/* A delete of a bucket this node never had is still logged. */
	CHECK_INT(peer_bucket_delete(&fx.pc, &fx.p, "never", 50), -ENOENT);
	CHECK_INT(peer_bucket_log(&fx.pc, &fx.p, bent_log_cb, got), 0);
	CHECK(strstr(got, "never@50x,") && strstr(got, "v@200x,"));
	CHECK_INT(peer_bucket_create(&fx.pc, &fx.p, "v", 300), 0);	/* made again, later */
	CHECK_INT(store_bucket_get(fx.s.st, "v", &sb), 0);
	ifx_close(&fx);
}

TEST(peer_suspect_fails_fast)
{
	const struct pworld *w = pworld();
	struct peer_health *h;
	struct store_row back;
	struct ifx fx;
	int64_t t0;

	CHECK(w);
	CHECK_INT(ifx_open(&fx, w), 0);
	CHECK_INT(peer_health_new(&h), 0);
	fx.pc.health = h;
	/* node-0003 at a port nobody listens on: refused once, then failed at once */
	struct peer down = { "node-0003", "127.0.0.1:1" };
	CHECK_INT(peer_head(&fx.pc, &down, "b", "k", 1, &back), -ECONNREFUSED);
	t0 = (int64_t)time(NULL);
	for (int i = 0; i < 100; i++)
		CHECK_INT(peer_head(&fx.pc, &down, "b", "k", 1, &back), -EHOSTDOWN);
	CHECK((int64_t)time(NULL) - t0 <= 1);
	/* another node is not affected */
	CHECK_INT(peer_bucket_create(&fx.pc, &fx.p, "h", 0), 0);
	peer_health_free(h);
	ifx_close(&fx);
}

TEST(iapi_members_only)
{
	const struct pworld *w = pworld();
	struct store_row back;
	struct ifx fx;

	CHECK(w);
	CHECK_INT(ifx_open(&fx, w), 0);
	/* A node of the CA that is not in the map. */
	struct peer_cfg pc9 = { w->ca.crt, w->cli9.crt, w->cli9.key, 5000, NULL };
	CHECK_INT(peer_head(&pc9, &fx.p, "b", "k", 1, &back), -EACCES);
	/* A certificate from another CA, and none at all. */
	struct peer_cfg rogue = { w->ca.crt, w->rogue2.crt, w->rogue2.key, 5000, NULL };
	CHECK_INT(peer_head(&rogue, &fx.p, "b", "k", 1, &back), -EACCES);
	struct peer_cfg anon = { w->ca.crt, NULL, NULL, 5000, NULL };
	CHECK_INT(peer_head(&anon, &fx.p, "b", "k", 1, &back), -EACCES);
	/* The server must be the node meant. */
	struct peer other = { "node-0002", fx.p.addr };
	CHECK_INT(peer_head(&fx.pc, &other, "b", "k", 1, &back), -EKEYREJECTED);
	CHECK_INT(peer_head(&fx.pc, &fx.p, "b", "k", 1, &back), -ENOENT);
	ifx_close(&fx);
}

/* --- the fetch thread against a fake controller --- */

struct fake_ctl {
	int lfd;
	char port[8];
	struct tls_server *ts;
	pthread_t th;
	const char *map;		/* the first reply */
	char first_target[128];
	int served;
};

static void *fake_ctl_main(void *arg)
{
	struct fake_ctl *f = arg;
	struct http1s_msg *m = malloc(sizeof(*m));

	for (int i = 0; i < 2 && m; i++) {
		struct tls_conn *c;
		int fd = accept(f->lfd, NULL, NULL);

		if (fd < 0 || tls_accept(f->ts, fd, &c))
			break;
		if (http1s_read_head(c, true, false, m) == 0 && i == 0) {
			snprintf(f->first_target, sizeof(f->first_target), "%.100s", m->target);
			http1s_write_reply(c, 200, "application/json", (int64_t)strlen(f->map), NULL,
					   false);
			tls_write(c, f->map, strlen(f->map));
			f->served++;
		} else if (i == 1) {	/* a long poll: held until the read times out */
			char b;

			f->served++;
			tls_read(c, &b, 1);
		}
		tls_close(c);
	}
	free(m);
	return NULL;
}

static int fake_ctl_start(struct fake_ctl *f, const struct pworld *w)
{
	struct tls_server_opts o = { .cert_pem = w->ctl.crt, .key_pem = w->ctl.key,
				     .client_ca_pem = w->ca.crt, .timeout_ms = 2000 };
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);

	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(f->lfd, 4) || getsockname(f->lfd, (struct sockaddr *)&a, &len) ||
	    tls_server_new(&o, &f->ts))
		return -1;
	snprintf(f->port, sizeof(f->port), "%d", ntohs(a.sin_port));
	return pthread_create(&f->th, NULL, fake_ctl_main, f) ? -1 : 0;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

TEST(cmap_fetch_installs_and_stops_during_long_poll)
{
	const struct pworld *w = pworld();
	static struct ident id;
	static struct cmap saved;
	struct fake_ctl f = { .map = map3 };
	struct cmap_sync *s;
	int64_t t0;

	CHECK(w);
	CHECK_INT(fake_ctl_start(&f, w), 0);
	memset(&id, 0, sizeof(id));
	snprintf(id.node_id, sizeof(id.node_id), "node-0002");
	snprintf(id.controller, sizeof(id.controller), "127.0.0.1:%s", f.port);
	memcpy(id.ca_pem, w->ca.crt, sizeof(id.ca_pem));
	memcpy(id.cert_pem, w->cli2.crt, sizeof(id.cert_pem));
	memcpy(id.key_pem, w->cli2.key, sizeof(id.key_pem));
	CHECK_INT(cmap_sync_new(test_tmpdir(), &s), 0);
	CHECK_INT(cmap_sync_fetch_start(s, &id), 0);
	for (t0 = mono_ms(); cmap_sync_version(s) != 12 && mono_ms() - t0 < 10000;)
		usleep(10000);
	CHECK_INT(cmap_sync_version(s), 12);
	CHECK_STR(f.first_target, "/v1/map?since=0");
	CHECK_INT(cmap_load(test_tmpdir(), &saved), 0);
	CHECK_INT(saved.version, 12);
	for (t0 = mono_ms(); f.served < 2 && mono_ms() - t0 < 10000;)
		usleep(10000);
	CHECK_INT(f.served, 2);		/* the next poll is held by the controller */
	t0 = mono_ms();
	cmap_sync_free(s);		/* returns during the poll: no 30 s wait */
	CHECK(mono_ms() - t0 < 1000);
	pthread_join(f.th, NULL);	/* the controller ends the poll; the thread then frees */
	tls_server_free(f.ts);
	close(f.lfd);
}

/* In a cluster the scrubber must keep a tombstone even when every local disk agrees: other
 * nodes may still hold the deleted key. A single node purges it (its disks are all). */
TEST(apply_cluster_store_keeps_tombstones)
{
	static const char cluster[] = "00112233445566778899aabbccddeeff";
	struct store_row row;
	uint64_t held;
	struct sfx fx;

	for (int clustered = 0; clustered < 2; clustered++) {
		memset(&fx, 0, sizeof(fx));
		for (int i = 0; i < 2; i++) {
			snprintf(fx.dirs[i], sizeof(fx.dirs[i]), "%s/c%d-disk%d", test_tmpdir(),
				 clustered, i);
			fx.ptrs[i] = fx.dirs[i];
		}
		fx.cfg = (struct store_config){ .dirs = fx.ptrs, .ndirs = 2, .replicas = 2,
						.write_quorum = 2 };
		CHECK_INT(store_open_cluster(&fx.cfg, clustered ? cluster : NULL, &fx.st), 0);
		CHECK_INT(store_bucket_create(fx.st, "b"), 0);
		CHECK_INT(store_apply_tomb(fx.st, "b", "gone", 4, 40, &held), 0);
		CHECK_INT(store_scrub_once(fx.st), 0);
		if (clustered) {
			CHECK_INT(store_row_get(fx.st, "b", "gone", 4, &row), 0);
			CHECK(row.tomb && row.version == 40);
		} else {
			CHECK_INT(store_row_get(fx.st, "b", "gone", 4, &row), -ENOENT);
		}
		store_close(fx.st);
	}
}

/* test_store.c — the storage engine: buckets, inline and file objects (read and send),
 * overwrite and delete, odd keys, listing against a brute-force model, several volumes,
 * multipart uploads and their errors, crash recovery, and corruption detection. */
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../lib/hash.h"
#include "../../storagefs/store/store.h"

#define VOLS_MAX	3
#define BIG		(3 * STORE_BLOCK + 1234)	/* multi-block, not block-aligned */
#define MODEL_KEYS	300
#define MODEL_QUERIES	120

struct fixture {
	char dirs[VOLS_MAX][256];
	const char *ptrs[VOLS_MAX];
	struct store_config cfg;
	struct store *st;
};

static int fx_open(struct fixture *fx, int n)
{
	for (int i = 0; i < n; i++) {
		snprintf(fx->dirs[i], sizeof(fx->dirs[i]), "%s/vol%d", test_tmpdir(), i);
		fx->ptrs[i] = fx->dirs[i];
	}
	fx->cfg.dirs = fx->ptrs;
	fx->cfg.ndirs = n;
	/* One copy: these tests check where rows land; test_replica.c covers R > 1. */
	fx->cfg.replicas = 1;
	fx->cfg.write_quorum = 1;
	fx->cfg.scrub_budget_pct = 0;
	return store_open(&fx->cfg, &fx->st);
}

static int fx_reopen(struct fixture *fx)
{
	store_close(fx->st);
	fx->st = NULL;
	return store_open(&fx->cfg, &fx->st);
}

static void fill(unsigned char *buf, size_t len, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (unsigned char)x;
	}
}

/* Puts in chunks of odd sizes so block boundaries fall inside writes. */
static int put(struct store *st, const char *b, const char *key, size_t klen,
	       const void *data, size_t len, struct store_objinfo *info)
{
	struct store_put *p;
	const unsigned char *d = data;
	size_t off = 0, chunk = 7777;
	int rc = store_put_begin(st, b, key, klen, &p);

	if (rc)
		return rc;
	while (off < len) {
		size_t n = len - off < chunk ? len - off : chunk;

		if ((rc = store_put_write(p, d + off, n))) {
			store_put_abort(p);
			return rc;
		}
		off += n;
	}
	memset(info, 0, sizeof(*info));
	snprintf(info->etag, sizeof(info->etag), "etag%zu", len);
	info->meta_len = 3;
	memcpy(info->meta, "m=1", 3);
	return store_put_commit(p, info);
}

static int put_s(struct store *st, const char *b, const char *key, const void *d, size_t len)
{
	struct store_objinfo info;

	return put(st, b, key, strlen(key), d, len, &info);
}

/* Reads the whole object; 0 and *out (malloc) or -errno. */
static int get(struct store *st, const char *b, const char *key, size_t klen,
	       unsigned char **out, size_t *len)
{
	struct store_obj *o;
	int rc = store_obj_open(st, b, key, klen, &o);

	if (rc)
		return rc;
	*len = (size_t)store_obj_info(o)->size;
	*out = malloc(*len + 1);
	rc = store_obj_read(o, 0, *out, *len);
	store_obj_close(o);
	if (rc)
		free(*out);
	return rc;
}

/* Sends the whole object through a socketpair, draining the other end as it goes. */
static int send_all(struct store *st, const char *b, const char *key, unsigned char *out,
		    size_t cap, size_t *got)
{
	static unsigned char scratch[STORE_SEND_SPAN];
	struct store_obj *o;
	int sv[2], rc;
	int64_t pos = 0;

	if ((rc = store_obj_open(st, b, key, strlen(key), &o)))
		return rc;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		return -errno;
	*got = 0;
	rc = 0;
	while (pos < store_obj_info(o)->size || !rc) {
		ssize_t n = pos < store_obj_info(o)->size ?
			store_obj_send(o, sv[0], &pos, 100000, scratch) : 0;

		if (n < 0 && n != -EAGAIN) {
			rc = (int)n;
			break;
		}
		for (;;) {
			ssize_t r = recv(sv[1], out + *got, cap - *got, MSG_DONTWAIT);

			if (r <= 0)
				break;
			*got += (size_t)r;
		}
		if (pos >= store_obj_info(o)->size)
			break;
	}
	close(sv[0]);
	close(sv[1]);
	store_obj_close(o);
	return rc;
}

/* Counts files under DIR/data (and .cairn/tmp with tmp set). */
static int count_files(const char *vol, bool tmp)
{
	char path[512];
	int n = 0;

	for (int i = 0; i < (tmp ? 1 : 256); i++) {
		struct dirent *de;
		DIR *d;

		if (tmp)
			snprintf(path, sizeof(path), "%s/.cairn/tmp", vol);
		else
			snprintf(path, sizeof(path), "%s/data/%02x", vol, i);
		d = opendir(path);
		if (!d)
			continue;
		while ((de = readdir(d)))
			n += de->d_name[0] != '.';
		closedir(d);
	}
	return n;
}

/* The path of the one data file of a volume. */
static int find_file(const char *vol, char *out, size_t cap, char name[64])
{
	char path[512];

	for (int i = 0; i < 256; i++) {
		struct dirent *de;
		DIR *d;

		snprintf(path, sizeof(path), "%s/data/%02x", vol, i);
		d = opendir(path);
		while (d && (de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(out, cap, "%.400s/%.40s", path, de->d_name);
			snprintf(name, 64, "%.40s", de->d_name);
			closedir(d);
			return 0;
		}
		if (d)
			closedir(d);
	}
	return -ENOENT;
}

static int sql(const char *vol, const char *q)
{
	char path[512];
	sqlite3 *db;
	int rc;

	snprintf(path, sizeof(path), "%s/.cairn/index.db", vol);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		return -1;
	rc = sqlite3_exec(db, q, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

static long long sql_int(const char *vol, const char *q)
{
	char path[512];
	sqlite3_stmt *s;
	sqlite3 *db;
	long long v = -1;

	snprintf(path, sizeof(path), "%s/.cairn/index.db", vol);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(db, q, -1, &s, NULL) == SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW)
			v = sqlite3_column_int64(s, 0);
		sqlite3_finalize(s);
	}
	sqlite3_close(db);
	return v;
}

static int collect_bucket(void *ctx, const struct store_bucket *b)
{
	char *out = ctx;

	strcat(out, b->name);
	strcat(out, ",");
	return 0;
}

/* --- buckets --- */

TEST(store_bucket_basics)
{
	struct fixture fx;
	struct store_bucket b;
	char names[256] = "";

	CHECK_INT(fx_open(&fx, 1), 0);
	CHECK_INT(store_bucket_get(fx.st, "b1", &b), -ENOENT);
	CHECK_INT(store_bucket_create(fx.st, "zeta"), 0);
	CHECK_INT(store_bucket_create(fx.st, "alpha"), 0);
	CHECK_INT(store_bucket_create(fx.st, "mid"), 0);
	CHECK_INT(store_bucket_create(fx.st, "mid"), -EEXIST);
	CHECK_INT(store_bucket_get(fx.st, "alpha", &b), 0);
	CHECK_STR(b.name, "alpha");
	CHECK(b.created_ms > 1600000000000LL);
	CHECK_INT(store_bucket_list(fx.st, collect_bucket, names), 0);
	CHECK_STR(names, "alpha,mid,zeta,");
	CHECK_INT(store_bucket_delete(fx.st, "mid"), 0);
	CHECK_INT(store_bucket_delete(fx.st, "mid"), -ENOENT);
	CHECK_INT(store_bucket_get(fx.st, "mid", &b), -ENOENT);
	CHECK_INT(fx_reopen(&fx), 0);
	names[0] = 0;
	CHECK_INT(store_bucket_list(fx.st, collect_bucket, names), 0);
	CHECK_STR(names, "alpha,zeta,");
	store_close(fx.st);
}

TEST(store_bucket_not_empty)
{
	struct fixture fx;
	char uid[STORE_UPLOAD_ID_MAX + 1];

	CHECK_INT(fx_open(&fx, 2), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	CHECK_INT(put_s(fx.st, "b", "k", "x", 1), 0);
	CHECK_INT(store_bucket_delete(fx.st, "b"), -ENOTEMPTY);
	CHECK_INT(store_obj_delete(fx.st, "b", "k", 1), 0);
	CHECK_INT(store_mpu_create(fx.st, "b", "up", 2, "", 0, uid), 0);
	CHECK_INT(store_bucket_delete(fx.st, "b"), -ENOTEMPTY);
	CHECK_INT(store_mpu_abort(fx.st, "b", uid), 0);
	CHECK_INT(store_bucket_delete(fx.st, "b"), 0);
	CHECK_INT(put_s(fx.st, "b", "k", "x", 1), -ENOENT);
	store_close(fx.st);
}

/* A crash between the volumes' bucket rows: the first volume decides at the next open. */
TEST(store_bucket_reconcile)
{
	struct fixture fx;
	struct store_bucket b;

	CHECK_INT(fx_open(&fx, 2), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	store_close(fx.st);
	CHECK_INT(sql(fx.dirs[1], "DELETE FROM buckets WHERE name='b';"
		      "INSERT INTO buckets VALUES('ghost', 1);"), 0);
	CHECK_INT(store_open(&fx.cfg, &fx.st), 0);
	CHECK_INT(store_bucket_get(fx.st, "ghost", &b), -ENOENT);
	CHECK_INT(store_bucket_create(fx.st, "ghost"), 0);
	for (int i = 0; i < 40; i++) {	/* lands on both volumes */
		char key[16];

		snprintf(key, sizeof(key), "k%d", i);
		CHECK_INT(put_s(fx.st, "b", key, "x", 1), 0);
	}
	store_close(fx.st);
}

/* --- objects --- */

static void check_obj(struct store *st, const char *key, const unsigned char *want, size_t len)
{
	unsigned char *got, *sent = malloc(len + 1);
	size_t glen = 0, slen = 0;

	CHECK_INT(get(st, "b", key, strlen(key), &got, &glen), 0);
	CHECK_INT(glen, len);
	CHECK_MEM(got, want, len);
	free(got);
	CHECK_INT(send_all(st, "b", key, sent, len + 1, &slen), 0);
	CHECK_INT(slen, len);
	CHECK_MEM(sent, want, len);
	free(sent);
}

TEST(store_put_get_sizes)
{
	static const size_t sizes[] = { 0, 1, 100, STORE_INLINE_MAX, STORE_INLINE_MAX + 1,
					STORE_BLOCK - 1, STORE_BLOCK, STORE_BLOCK + 1, BIG,
					4 * STORE_BLOCK };
	struct fixture fx;
	unsigned char *data = malloc(BIG + 4 * STORE_BLOCK);

	CHECK_INT(fx_open(&fx, 1), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char key[32];

		snprintf(key, sizeof(key), "obj%zu", sizes[i]);
		fill(data, sizes[i], (uint32_t)i);
		CHECK_INT(put_s(fx.st, "b", key, data, sizes[i]), 0);
		check_obj(fx.st, key, data, sizes[i]);
	}
	/* inline objects cost no file: 6 of the sizes are above STORE_INLINE_MAX */
	CHECK_INT(count_files(fx.dirs[0], false), 6);
	CHECK_INT(count_files(fx.dirs[0], true), 0);
	free(data);
	store_close(fx.st);
}

TEST(store_info_and_ranges)
{
	struct fixture fx;
	struct store_objinfo info;
	struct store_obj *o;
	unsigned char *data = malloc(BIG), buf[3 * STORE_BLOCK];

	fill(data, BIG, 7);
	CHECK_INT(fx_open(&fx, 1), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	CHECK_INT(put(fx.st, "b", "k", 1, data, BIG, &info), 0);
	CHECK_INT(info.size, BIG);
	CHECK(info.mtime_ms > 1600000000000LL);
	CHECK_INT(store_obj_open(fx.st, "b", "k", 1, &o), 0);
	CHECK_INT(store_obj_info(o)->size, BIG);
	CHECK_STR(store_obj_info(o)->etag, info.etag);
	CHECK_INT(store_obj_info(o)->meta_len, 3);
	CHECK_MEM(store_obj_info(o)->meta, "m=1", 3);
	CHECK_INT(store_obj_info(o)->nparts, 0);
	for (int i = 0; i < 200; i++) {
		int64_t pos = rand() % BIG;
		size_t len = (size_t)(rand() % (int)sizeof(buf));

		if (pos + (int64_t)len > BIG)
			len = (size_t)(BIG - pos);
		CHECK_INT(store_obj_read(o, pos, buf, len), 0);
		CHECK_MEM(buf, data + pos, len);
	}
	CHECK_INT(store_obj_read(o, BIG - 1, buf, 2), -EINVAL);
	store_obj_close(o);
	CHECK_INT(store_obj_open(fx.st, "b", "nope", 4, &o), -ENOENT);
	CHECK_INT(store_obj_open(fx.st, "nob", "k", 1, &o), -ENOENT);
	free(data);
	store_close(fx.st);
}

TEST(store_overwrite_and_delete)
{
	struct fixture fx;
	unsigned char *a = malloc(BIG), *b = malloc(BIG);
	char path1[512], path2[512], name[64];
	struct store_obj *o;

	fill(a, BIG, 1);
	fill(b, BIG, 2);
	CHECK_INT(fx_open(&fx, 1), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	CHECK_INT(put_s(fx.st, "b", "k", a, BIG), 0);
	CHECK_INT(find_file(fx.dirs[0], path1, sizeof(path1), name), 0);
	CHECK_INT(put_s(fx.st, "b", "k", b, BIG - 5), 0);
	CHECK_INT(count_files(fx.dirs[0], false), 1);
	CHECK_INT(find_file(fx.dirs[0], path2, sizeof(path2), name), 0);
	CHECK(strcmp(path1, path2) != 0);
	CHECK(access(path1, F_OK) < 0);
	check_obj(fx.st, "k", b, BIG - 5);
	CHECK_INT(put_s(fx.st, "b", "k", "tiny", 4), 0);	/* file -> inline */
	CHECK_INT(count_files(fx.dirs[0], false), 0);
	check_obj(fx.st, "k", (const unsigned char *)"tiny", 4);
	CHECK_INT(put_s(fx.st, "b", "k", a, BIG), 0);
	CHECK_INT(store_obj_delete(fx.st, "b", "k", 1), 0);
	CHECK_INT(count_files(fx.dirs[0], false), 0);
	CHECK_INT(store_obj_open(fx.st, "b", "k", 1, &o), -ENOENT);
	CHECK_INT(store_obj_delete(fx.st, "b", "k", 1), 0);
	CHECK_INT(store_obj_delete(fx.st, "nob", "k", 1), -ENOENT);
	/* the garbage rows of the unlinked files are gone after the next transaction */
	CHECK_INT(put_s(fx.st, "b", "z", "z", 1), 0);
	store_close(fx.st);
	CHECK_INT(sql_int(fx.dirs[0], "SELECT count(*) FROM garbage"), 0);
	CHECK_INT(sql_int(fx.dirs[0], "SELECT count(*) FROM files"), 0);
	free(a);
	free(b);
}

TEST(store_put_abort_and_errors)
{
	struct fixture fx;
	struct store_put *p;
	unsigned char *data = malloc(BIG);
	struct store_obj *o;

	fill(data, BIG, 3);
	CHECK_INT(fx_open(&fx, 1), 0);
	CHECK_INT(store_put_begin(fx.st, "b", "k", 1, &p), -ENOENT);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	CHECK_INT(store_put_begin(fx.st, "b", "k", 0, &p), -EINVAL);
	CHECK_INT(store_put_begin(fx.st, "b", "k", STORE_KEY_MAX + 1, &p), -ENAMETOOLONG);
	CHECK_INT(put_s(fx.st, "b", "k", "old", 3), 0);
	CHECK_INT(store_put_begin(fx.st, "b", "k", 1, &p), 0);
	CHECK_INT(store_put_write(p, data, BIG), 0);
	CHECK_INT(store_put_size(p), BIG);
	CHECK_INT(count_files(fx.dirs[0], true), 1);
	store_put_abort(p);
	CHECK_INT(count_files(fx.dirs[0], true), 0);
	check_obj(fx.st, "k", (const unsigned char *)"old", 3);
	/* the bucket vanishing before the commit: nothing visible, nothing left */
	CHECK_INT(store_obj_delete(fx.st, "b", "k", 1), 0);
	CHECK_INT(store_put_begin(fx.st, "b", "k2", 2, &p), 0);
	CHECK_INT(store_put_write(p, data, BIG), 0);
	CHECK_INT(store_bucket_delete(fx.st, "b"), 0);
	{
		struct store_objinfo info = { .etag = "e" };

		CHECK_INT(store_put_commit(p, &info), -ENOENT);
	}
	CHECK_INT(count_files(fx.dirs[0], true), 0);
	CHECK_INT(count_files(fx.dirs[0], false), 0);
	CHECK_INT(store_obj_open(fx.st, "b", "k2", 2, &o), -ENOENT);
	free(data);
	store_close(fx.st);
}

static int collect_keys(void *ctx, const struct store_list_entry *e);

struct keyset {
	char keys[64][STORE_KEY_MAX + 1];
	size_t lens[64];
	int n;
};

static int collect_keys(void *ctx, const struct store_list_entry *e)
{
	struct keyset *ks = ctx;

	memcpy(ks->keys[ks->n], e->key, e->key_len);
	ks->lens[ks->n++] = e->key_len;
	return 0;
}

TEST(store_odd_keys)
{
	static char k1024[STORE_KEY_MAX];
	const char *keys[] = { "a/b", "..", "../x", "//", "a//b", "%2F%00", "with space",
			       "\x01", "\xff", "\xff\xff", "ü/ñ", "/lead", "trail/", k1024 };
	size_t n = sizeof(keys) / sizeof(keys[0]);
	struct store_list_query q = { .max = 1000 };
	struct keyset *ks = calloc(1, sizeof(*ks));
	struct fixture fx;
	bool trunc;

	memset(k1024, 'k', sizeof(k1024));
	CHECK_INT(fx_open(&fx, 2), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	for (size_t i = 0; i < n; i++) {
		struct store_objinfo info;
		size_t kl = keys[i] == k1024 ? STORE_KEY_MAX : strlen(keys[i]);
		unsigned char *got;
		size_t glen;

		CHECK_INT(put(fx.st, "b", keys[i], kl, keys[i], kl, &info), 0);
		CHECK_INT(get(fx.st, "b", keys[i], kl, &got, &glen), 0);
		CHECK_INT(glen, kl);
		CHECK_MEM(got, keys[i], kl);
		free(got);
	}
	CHECK_INT(store_list(fx.st, "b", &q, collect_keys, ks, &trunc), 0);
	CHECK_INT(ks->n, n);
	CHECK(!trunc);
	for (int i = 1; i < ks->n; i++) {	/* byte order, 0xff last */
		size_t m = ks->lens[i - 1] < ks->lens[i] ? ks->lens[i - 1] : ks->lens[i];
		int c = memcmp(ks->keys[i - 1], ks->keys[i], m);

		CHECK(c < 0 || (c == 0 && ks->lens[i - 1] < ks->lens[i]));
	}
	CHECK_MEM(ks->keys[n - 1], "\xff\xff", 2);
	free(ks);
	store_close(fx.st);
}

/* --- listing against a brute-force model --- */

struct mkey {
	unsigned char k[8];
	size_t len;
};

static int mkey_cmp(const void *a, const void *b)
{
	const struct mkey *x = a, *y = b;
	size_t m = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->k, y->k, m);

	return c ? c : (x->len > y->len) - (x->len < y->len);
}

static int bytes_cmp(const void *a, size_t al, const void *b, size_t bl)
{
	size_t m = al < bl ? al : bl;
	int c = memcmp(a, b, m);

	return c ? c : (al > bl) - (al < bl);
}

struct page {
	char keys[1000][16];
	size_t lens[1000];
	bool pfx[1000];
	int n;
};

static int page_add(void *ctx, const struct store_list_entry *e)
{
	struct page *pg = ctx;

	memcpy(pg->keys[pg->n], e->key, e->key_len);
	pg->lens[pg->n] = e->key_len;
	pg->pfx[pg->n++] = e->is_prefix;
	return 0;
}

static bool model_list(const struct mkey *keys, int n, const struct store_list_query *q,
		       struct page *pg)
{
	for (int i = 0; i < n; i++) {
		const unsigned char *k = keys[i].k, *d;
		size_t len = keys[i].len;
		struct store_list_entry e = { .key = (const char *)k, .key_len = len };

		if (len < q->prefix_len || (q->prefix_len && memcmp(k, q->prefix, q->prefix_len)))
			continue;
		d = q->delim_len ? memmem(k + q->prefix_len, len - q->prefix_len, q->delim,
					  q->delim_len) : NULL;
		if (d) {
			e.key_len = (size_t)(d - k) + q->delim_len;
			e.is_prefix = true;
		}
		if (q->after_len && bytes_cmp(k, e.key_len, q->after, q->after_len) <= 0)
			continue;
		if (pg->n && pg->lens[pg->n - 1] == e.key_len &&
		    !memcmp(pg->keys[pg->n - 1], k, e.key_len))
			continue;	/* the same common prefix again */
		if (pg->n == q->max)
			return true;
		page_add(pg, &e);
	}
	return false;
}

static void random_key(struct mkey *k)
{
	static const unsigned char alpha[] = { 'a', 'b', '/', '-', 0x01, 0xff };

	k->len = 1 + (size_t)(rand() % 6);
	for (size_t i = 0; i < k->len; i++)
		k->k[i] = alpha[rand() % (int)(i % 2 ? sizeof(alpha) : 3)];
}

static void random_query(const struct mkey *keys, int n, struct store_list_query *q,
			 char *pbuf, char *abuf)
{
	static const char *const delims[] = { "", "/", "-/", "a" };
	static const int maxes[] = { 1, 2, 3, 7, 1000 };
	const struct mkey *src = &keys[rand() % n];

	q->prefix_len = (size_t)(rand() % 4);
	if (q->prefix_len > src->len)
		q->prefix_len = src->len;
	memcpy(pbuf, src->k, q->prefix_len);
	q->prefix = pbuf;
	q->delim = delims[rand() % 4];
	q->delim_len = strlen(q->delim);
	src = &keys[rand() % n];
	q->after_len = rand() % 2 ? (size_t)(rand() % (int)src->len + 1) : 0;
	memcpy(abuf, src->k, q->after_len);
	q->after = abuf;
	q->max = maxes[rand() % 5];
}

/* Pages through one query, comparing each page with the model's. */
static void check_query(struct store *st, const struct mkey *keys, int n,
			struct store_list_query q, struct page *a, struct page *b)
{
	char after[16];

	for (int pages = 0; pages < 1000; pages++) {
		bool ta, tb;

		a->n = b->n = 0;
		CHECK_INT(store_list(st, "b", &q, page_add, a, &ta), 0);
		tb = model_list(keys, n, &q, b);
		CHECK_INT(a->n, b->n);
		CHECK_INT(ta, tb);
		for (int i = 0; i < a->n; i++) {
			CHECK_INT(a->lens[i], b->lens[i]);
			CHECK_MEM(a->keys[i], b->keys[i], a->lens[i]);
			CHECK_INT(a->pfx[i], b->pfx[i]);
		}
		if (!ta)
			return;
		memcpy(after, a->keys[a->n - 1], a->lens[a->n - 1]);
		q.after = after;
		q.after_len = a->lens[a->n - 1];
	}
	CHECK(!"listing did not end");
}

static void model_run(int nvols)
{
	struct mkey *keys = calloc(MODEL_KEYS, sizeof(*keys));
	struct page *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	struct store_list_query q;
	char pbuf[8], abuf[8];
	struct fixture fx;
	int n = 0;

	srand(42 + nvols);
	CHECK_INT(fx_open(&fx, nvols), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	for (int i = 0; i < MODEL_KEYS; i++) {
		struct store_objinfo info;

		random_key(&keys[n]);
		CHECK_INT(put(fx.st, "b", (const char *)keys[n].k, keys[n].len, "v", 1, &info), 0);
		n++;
	}
	qsort(keys, (size_t)n, sizeof(*keys), mkey_cmp);
	{	/* a key put twice is one object */
		int j = 0;

		for (int i = 0; i < n; i++) {
			if (j == 0 || mkey_cmp(&keys[i], &keys[j - 1]))
				keys[j++] = keys[i];
		}
		n = j;
	}
	for (int i = 0; i < MODEL_QUERIES; i++) {
		random_query(keys, n, &q, pbuf, abuf);
		check_query(fx.st, keys, n, q, a, b);
	}
	memset(&q, 0, sizeof(q));
	q.max = 1;
	check_query(fx.st, keys, n, q, a, b);	/* every key, one per page */
	store_close(fx.st);
	free(keys);
	free(a);
	free(b);
}

TEST(store_list_model_one_volume)
{
	model_run(1);
}

TEST(store_list_model_three_volumes)
{
	model_run(3);
}

/* --- several volumes --- */

struct counter {
	int n;
	char last[64];
	size_t last_len;
	bool sorted;
	char etag[64];
};

static int count_entry(void *ctx, const struct store_list_entry *e)
{
	struct counter *c = ctx;

	if (c->n && bytes_cmp(c->last, c->last_len, e->key, e->key_len) >= 0)
		c->sorted = false;
	memcpy(c->last, e->key, e->key_len);
	c->last_len = e->key_len;
	snprintf(c->etag, sizeof(c->etag), "%s", e->etag);
	c->n++;
	return 0;
}

TEST(store_three_volumes)
{
	struct fixture fx;
	struct counter c = { .sorted = true };
	struct store_list_query q = { .max = 1000 };
	long long per[VOLS_MAX];
	unsigned char *data = malloc(BIG);
	bool trunc;

	fill(data, BIG, 9);
	CHECK_INT(fx_open(&fx, 3), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	for (int i = 0; i < 300; i++) {
		char key[32];

		snprintf(key, sizeof(key), "key%04d", i);
		CHECK_INT(put_s(fx.st, "b", key, data, i % 50 ? 10 : BIG), 0);
	}
	check_obj(fx.st, "key0050", data, BIG);
	CHECK_INT(store_list(fx.st, "b", &q, count_entry, &c, &trunc), 0);
	CHECK_INT(c.n, 300);
	CHECK(c.sorted && !trunc);
	store_close(fx.st);
	for (int i = 0; i < 3; i++) {
		per[i] = sql_int(fx.dirs[i], "SELECT count(*) FROM objects");
		CHECK(per[i] > 50);	/* spread: ~100 each */
	}
	CHECK_INT(per[0] + per[1] + per[2], 300);
	/* The same key on two volumes (a stale copy): listed once, the higher version wins. */
	for (int i = 0; i < 3; i++) {
		if (sql_int(fx.dirs[i], "SELECT count(*) FROM objects WHERE key=CAST('key0007' AS BLOB)"))
			continue;
		CHECK_INT(sql(fx.dirs[i], "INSERT INTO objects VALUES('b', CAST('key0007' AS BLOB), 1,"
			      " 1, 1, 'stale', 0, x'', x'', x'00', NULL)"), SQLITE_OK);
		break;
	}
	CHECK_INT(store_open(&fx.cfg, &fx.st), 0);
	memset(&c, 0, sizeof(c));
	c.sorted = true;
	CHECK_INT(store_list(fx.st, "b", &q, count_entry, &c, &trunc), 0);
	CHECK_INT(c.n, 300);
	CHECK(c.sorted);
	memset(&c, 0, sizeof(c));
	q.prefix = "key0007";
	q.prefix_len = 7;
	CHECK_INT(store_list(fx.st, "b", &q, count_entry, &c, &trunc), 0);
	CHECK_INT(c.n, 1);
	CHECK_STR(c.etag, "etag10");
	/* delete reaches every volume */
	CHECK_INT(store_obj_delete(fx.st, "b", "key0007", 7), 0);
	memset(&c, 0, sizeof(c));
	CHECK_INT(store_list(fx.st, "b", &q, count_entry, &c, &trunc), 0);
	CHECK_INT(c.n, 0);
	store_close(fx.st);
	free(data);
}

/* --- multipart --- */

static int put_part(struct store *st, const char *uid, int no, const void *d, size_t len,
		    char etag[STORE_ETAG_MAX + 1])
{
	struct store_objinfo info = { 0 };
	unsigned char md[MD5_LEN];
	struct md5_ctx c;
	struct store_put *p;
	int rc = store_part_begin(st, "b", uid, no, &p);

	if (rc)
		return rc;
	if ((rc = store_put_write(p, d, len))) {
		store_put_abort(p);
		return rc;
	}
	md5_init(&c);
	md5_update(&c, d, len);
	md5_final(&c, md);
	hex_encode(md, MD5_LEN, info.etag);
	snprintf(etag, STORE_ETAG_MAX + 1, "%s", info.etag);
	return store_put_commit(p, &info);
}

static int count_part(void *ctx, const struct store_mpu_part *p)
{
	((int *)ctx)[0]++;
	((int *)ctx)[1] += p->part_no;
	return 0;
}

static int count_upload(void *ctx, const struct store_mpu_upload *u)
{
	(*(int *)ctx)++;
	return 0;
}

#define PART (STORE_PART_MIN + 1000)

TEST(store_mpu_happy)
{
	struct fixture fx;
	char uid[STORE_UPLOAD_ID_MAX + 1], key[STORE_KEY_MAX], want_etag[64];
	struct store_mpu_part parts[3];
	struct store_objinfo info;
	unsigned char *data = malloc(2 * PART + 777), md[3][MD5_LEN], all[MD5_LEN];
	int cnt[2] = { 0, 0 }, ups = 0;
	size_t klen;
	bool trunc;

	fill(data, 2 * PART + 777, 11);
	CHECK_INT(fx_open(&fx, 2), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	CHECK_INT(store_mpu_create(fx.st, "b", "big/obj", 7, "meta!", 5, uid), 0);
	CHECK_INT(strlen(uid), 32);
	CHECK_INT(store_mpu_get(fx.st, "b", uid, key, &klen), 0);
	CHECK_INT(klen, 7);
	CHECK_MEM(key, "big/obj", 7);
	CHECK_INT(put_part(fx.st, uid, 2, data + PART, PART, parts[1].etag), 0);
	CHECK_INT(put_part(fx.st, uid, 1, data, PART, parts[0].etag), 0);
	CHECK_INT(put_part(fx.st, uid, 3, data + 2 * PART, 777, parts[2].etag), 0);
	for (int i = 0; i < 3; i++) {
		parts[i].part_no = i + 1;
		hex_decode(parts[i].etag, 32, md[i], MD5_LEN);
	}
	CHECK_INT(store_mpu_list_parts(fx.st, "b", uid, 0, 2, count_part, cnt, &trunc), 0);
	CHECK_INT(cnt[0], 2);
	CHECK(trunc);
	CHECK_INT(store_mpu_list_parts(fx.st, "b", uid, 2, 10, count_part, cnt, &trunc), 0);
	CHECK_INT(cnt[0], 3);
	CHECK_INT(cnt[1], 6);
	CHECK(!trunc);
	CHECK_INT(store_mpu_list_uploads(fx.st, "b", "big", 3, NULL, 0, NULL, 10, count_upload,
					 &ups, &trunc), 0);
	CHECK_INT(ups, 1);
	CHECK_INT(store_mpu_complete(fx.st, "b", uid, parts, 3, &info), 0);
	{
		struct md5_ctx c;

		md5_init(&c);
		md5_update(&c, md, sizeof(md));
		md5_final(&c, all);
		hex_encode(all, MD5_LEN, want_etag);
		strcat(want_etag, "-3");
	}
	CHECK_STR(info.etag, want_etag);
	CHECK_INT(info.size, 2 * PART + 777);
	CHECK_INT(info.nparts, 3);
	check_obj(fx.st, "big/obj", data, 2 * PART + 777);
	{
		struct store_obj *o;
		unsigned char buf[3000];

		CHECK_INT(store_obj_open(fx.st, "b", "big/obj", 7, &o), 0);
		CHECK_INT(store_obj_info(o)->meta_len, 5);
		CHECK_INT(store_obj_info(o)->nparts, 3);
		CHECK_INT(store_obj_read(o, PART - 1500, buf, 3000), 0);	/* across parts */
		CHECK_MEM(buf, data + PART - 1500, 3000);
		store_obj_close(o);
	}
	CHECK_INT(store_mpu_get(fx.st, "b", uid, key, &klen), -ENOENT);
	ups = 0;
	CHECK_INT(store_mpu_list_uploads(fx.st, "b", "", 0, NULL, 0, NULL, 10, count_upload,
					 &ups, &trunc), 0);
	CHECK_INT(ups, 0);
	CHECK_INT(count_files(fx.dirs[0], false) + count_files(fx.dirs[1], false), 3);
	/* overwriting the multipart object frees all three part files */
	CHECK_INT(put_s(fx.st, "b", "big/obj", "x", 1), 0);
	CHECK_INT(count_files(fx.dirs[0], false) + count_files(fx.dirs[1], false), 0);
	free(data);
	store_close(fx.st);
}

TEST(store_mpu_errors)
{
	struct fixture fx;
	char uid[STORE_UPLOAD_ID_MAX + 1], etag[STORE_ETAG_MAX + 1];
	struct store_mpu_part parts[3] = { { .part_no = 1 }, { .part_no = 2 }, { .part_no = 3 } };
	struct store_objinfo info;
	unsigned char *data = malloc(PART);
	struct store_put *p;
	int files;

	fill(data, PART, 5);
	CHECK_INT(fx_open(&fx, 1), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	CHECK_INT(store_mpu_create(fx.st, "nob", "k", 1, "", 0, uid), -ENOENT);
	CHECK_INT(store_mpu_create(fx.st, "b", "k", 1, "", 0, uid), 0);
	CHECK_INT(store_part_begin(fx.st, "b", "nosuchupload", 1, &p), -ENOENT);
	CHECK_INT(store_part_begin(fx.st, "b", uid, 0, &p), -EINVAL);
	CHECK_INT(store_part_begin(fx.st, "b", uid, STORE_PARTS_MAX + 1, &p), -EINVAL);
	CHECK_INT(put_part(fx.st, uid, 1, data, 1000, parts[0].etag), 0);	/* small */
	CHECK_INT(put_part(fx.st, uid, 2, data, PART, parts[1].etag), 0);
	CHECK_INT(put_part(fx.st, uid, 3, data, 10, parts[2].etag), 0);
	CHECK_INT(put_part(fx.st, uid, 4, data, 10, etag), 0);			/* never named */
	CHECK_INT(count_files(fx.dirs[0], false), 4);
	CHECK_INT(store_mpu_complete(fx.st, "b", "nosuch", parts, 3, &info), -ENOENT);
	{
		struct store_mpu_part rev[2] = { parts[1], parts[0] };
		struct store_mpu_part dup[2] = { parts[1], parts[1] };

		CHECK_INT(store_mpu_complete(fx.st, "b", uid, rev, 2, &info), -EDOM);
		CHECK_INT(store_mpu_complete(fx.st, "b", uid, dup, 2, &info), -EDOM);
	}
	{
		struct store_mpu_part bad[2] = { parts[1], { .part_no = 9, .etag = "x" } };

		CHECK_INT(store_mpu_complete(fx.st, "b", uid, bad, 2, &info), -EINVAL);
		bad[1] = parts[2];
		bad[1].etag[0] ^= 1;
		CHECK_INT(store_mpu_complete(fx.st, "b", uid, bad, 2, &info), -EINVAL);
	}
	CHECK_INT(store_mpu_complete(fx.st, "b", uid, parts, 3, &info), -ERANGE);
	/* re-uploading part 1 replaces it (its old file goes) and fixes the size */
	CHECK_INT(put_part(fx.st, uid, 1, data, PART, parts[0].etag), 0);
	CHECK_INT(count_files(fx.dirs[0], false), 4);
	CHECK_INT(store_mpu_complete(fx.st, "b", uid, parts, 3, &info), 0);
	files = count_files(fx.dirs[0], false);
	CHECK_INT(files, 3);	/* part 4 was not named: garbage */
	CHECK_INT(store_mpu_complete(fx.st, "b", uid, parts, 3, &info), -ENOENT);
	CHECK_INT(store_part_begin(fx.st, "b", uid, 1, &p), -ENOENT);
	free(data);
	store_close(fx.st);
}

TEST(store_mpu_abort_and_uploads)
{
	struct fixture fx;
	char uid[4][STORE_UPLOAD_ID_MAX + 1], etag[STORE_ETAG_MAX + 1];
	struct store_put *p;
	int ups = 0;
	bool trunc;

	CHECK_INT(fx_open(&fx, 2), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	CHECK_INT(store_mpu_create(fx.st, "b", "a", 1, "", 0, uid[0]), 0);
	CHECK_INT(store_mpu_create(fx.st, "b", "a", 1, "", 0, uid[1]), 0);
	CHECK_INT(store_mpu_create(fx.st, "b", "b", 1, "", 0, uid[2]), 0);
	CHECK_INT(store_mpu_create(fx.st, "b", "c", 1, "", 0, uid[3]), 0);
	CHECK_INT(put_part(fx.st, uid[0], 1, "abc", 3, etag), 0);
	CHECK_INT(put_part(fx.st, uid[0], 2, "abc", 3, etag), 0);
	/* a part started before the abort cannot land after it */
	CHECK_INT(store_part_begin(fx.st, "b", uid[0], 3, &p), 0);
	CHECK_INT(store_put_write(p, "zz", 2), 0);
	CHECK_INT(store_mpu_abort(fx.st, "b", uid[0]), 0);
	{
		struct store_objinfo info = { .etag = "e" };

		CHECK_INT(store_put_commit(p, &info), -ENOENT);
	}
	CHECK_INT(count_files(fx.dirs[0], false) + count_files(fx.dirs[1], false), 0);
	CHECK_INT(count_files(fx.dirs[0], true) + count_files(fx.dirs[1], true), 0);
	CHECK_INT(store_mpu_abort(fx.st, "b", uid[0]), -ENOENT);
	CHECK_INT(store_mpu_list_uploads(fx.st, "b", "", 0, NULL, 0, NULL, 2, count_upload,
					 &ups, &trunc), 0);
	CHECK_INT(ups, 2);
	CHECK(trunc);
	ups = 0;	/* after key "a" entirely */
	CHECK_INT(store_mpu_list_uploads(fx.st, "b", "", 0, "a", 1, NULL, 10, count_upload,
					 &ups, &trunc), 0);
	CHECK_INT(ups, 2);
	ups = 0;	/* after (a, uid[1]): nothing more of "a" */
	CHECK_INT(store_mpu_list_uploads(fx.st, "b", "", 0, "a", 1, uid[1], 10, count_upload,
					 &ups, &trunc), 0);
	CHECK_INT(ups, 2);
	ups = 0;
	CHECK_INT(store_mpu_list_uploads(fx.st, "b", "", 0, "a", 1, "0", 10, count_upload,
					 &ups, &trunc), 0);
	CHECK_INT(ups, 3);
	store_close(fx.st);
}

/* --- crash recovery --- */

TEST(store_recover_orphan_tmp)
{
	struct fixture fx;
	char path[512];
	int fd;

	CHECK_INT(fx_open(&fx, 1), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	store_close(fx.st);
	/* an upload that never committed, and a stray name */
	snprintf(path, sizeof(path), "%s/.cairn/tmp/0123456789abcdef0123456789abcdef", fx.dirs[0]);
	fd = open(path, O_CREAT | O_WRONLY, 0640);
	CHECK(fd >= 0);
	CHECK_INT(write(fd, "junk", 4), 4);
	close(fd);
	snprintf(path, sizeof(path), "%s/.cairn/tmp/stray", fx.dirs[0]);
	close(open(path, O_CREAT | O_WRONLY, 0640));
	CHECK_INT(count_files(fx.dirs[0], true), 2);
	CHECK_INT(store_open(&fx.cfg, &fx.st), 0);
	CHECK_INT(count_files(fx.dirs[0], true), 0);
	CHECK_INT(count_files(fx.dirs[0], false), 0);
	store_close(fx.st);
}

TEST(store_recover_unrenamed)
{
	struct fixture fx;
	unsigned char *data = malloc(BIG);
	char path[512], tmp[512], name[64];

	fill(data, BIG, 21);
	CHECK_INT(fx_open(&fx, 1), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	CHECK_INT(put_s(fx.st, "b", "k", data, BIG), 0);
	CHECK_INT(find_file(fx.dirs[0], path, sizeof(path), name), 0);
	snprintf(tmp, sizeof(tmp), "%s/.cairn/tmp/%s", fx.dirs[0], name);
	/* between commit and rename, readers find the file in tmp/ */
	CHECK_INT(rename(path, tmp), 0);
	check_obj(fx.st, "k", data, BIG);
	/* a crash before the rename: the reopen finishes it */
	store_close(fx.st);
	CHECK_INT(store_open(&fx.cfg, &fx.st), 0);
	CHECK_INT(access(path, F_OK), 0);
	CHECK(access(tmp, F_OK) < 0);
	check_obj(fx.st, "k", data, BIG);
	/* a crash after a replace committed but before its unlink: garbage is swept */
	CHECK_INT(put_s(fx.st, "b", "k", "new", 3), 0);
	store_close(fx.st);
	{
		int fd = open(path, O_CREAT | O_WRONLY, 0640);	/* resurrect the old file */

		CHECK(fd >= 0);
		close(fd);
	}
	{
		char q[256];

		snprintf(q, sizeof(q), "INSERT OR IGNORE INTO garbage VALUES(x'%s')", name);
		CHECK_INT(sql(fx.dirs[0], q), SQLITE_OK);
	}
	CHECK_INT(store_open(&fx.cfg, &fx.st), 0);
	CHECK(access(path, F_OK) < 0);
	store_close(fx.st);
	CHECK_INT(sql_int(fx.dirs[0], "SELECT count(*) FROM garbage"), 0);
	free(data);
}

TEST(store_volume_locked)
{
	struct fixture fx;
	struct store *st2;

	CHECK_INT(fx_open(&fx, 1), 0);
	CHECK_INT(store_open(&fx.cfg, &st2), -EBUSY);
	store_close(fx.st);
}

/* --- corruption --- */

static ssize_t send_once(struct store *st, const char *key, int64_t pos)
{
	static unsigned char scratch[STORE_SEND_SPAN];
	struct store_obj *o;
	int sv[2];
	ssize_t n;

	if (store_obj_open(st, "b", key, strlen(key), &o))
		return -ENOENT;
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
	n = store_obj_send(o, sv[0], &pos, 1000, scratch);
	close(sv[0]);
	close(sv[1]);
	store_obj_close(o);
	return n;
}

TEST(store_corrupt_file)
{
	struct fixture fx;
	unsigned char *data = malloc(BIG), *got, buf[100];
	char path[512], name[64];
	struct store_obj *o;
	size_t len;
	int fd;

	fill(data, BIG, 31);
	CHECK_INT(fx_open(&fx, 1), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	CHECK_INT(put_s(fx.st, "b", "k", data, BIG), 0);
	CHECK_INT(find_file(fx.dirs[0], path, sizeof(path), name), 0);
	fd = open(path, O_WRONLY);
	CHECK(fd >= 0);
	buf[0] = data[STORE_BLOCK + 5] ^ 0x40;
	CHECK_INT(pwrite(fd, buf, 1, STORE_BLOCK + 5), 1);
	close(fd);
	CHECK_INT(get(fx.st, "b", "k", 1, &got, &len), -EBADMSG);
	CHECK_INT(store_obj_open(fx.st, "b", "k", 1, &o), 0);
	CHECK_INT(store_obj_read(o, 10, buf, 100), 0);		/* block 0 is fine */
	CHECK_MEM(buf, data + 10, 100);
	CHECK_INT(store_obj_read(o, 2 * STORE_BLOCK - 50, buf, 100), -EBADMSG);
	store_obj_close(o);
	CHECK_INT(send_once(fx.st, "k", STORE_BLOCK + 4000), -EBADMSG);
	CHECK(send_once(fx.st, "k", 0) > 0);
	/* a truncated file is corrupt too */
	CHECK_INT(truncate(path, STORE_BLOCK + 10), 0);
	CHECK_INT(send_once(fx.st, "k", 3 * STORE_BLOCK), -EBADMSG);
	free(data);
	store_close(fx.st);
}

TEST(store_corrupt_inline)
{
	struct fixture fx;
	unsigned char *got;
	size_t len;

	CHECK_INT(fx_open(&fx, 1), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	CHECK_INT(put_s(fx.st, "b", "k", "hello world", 11), 0);
	CHECK_INT(sql(fx.dirs[0], "UPDATE objects SET inline=CAST('hellO world' AS BLOB)"),
		  SQLITE_OK);
	CHECK_INT(get(fx.st, "b", "k", 1, &got, &len), -EBADMSG);
	CHECK_INT(send_once(fx.st, "k", 0), -EBADMSG);
	/* a row whose lengths disagree is refused, not served */
	CHECK_INT(sql(fx.dirs[0], "UPDATE objects SET inline=CAST('hello' AS BLOB)"), SQLITE_OK);
	CHECK_INT(get(fx.st, "b", "k", 1, &got, &len), -EBADMSG);
	store_close(fx.st);
}

/* --- a bigger listing: rows bulk-loaded into the index, as the put path would leave them --- */

#define SANITY_KEYS	20000
#define SANITY_DIRS	200

static int bulk_load(const char *vol, int n)
{
	char path[512], key[64];
	uint32_t crc = crc32c(0, "x", 1);
	sqlite3_stmt *s;
	sqlite3 *db;
	int rc = 0;

	snprintf(path, sizeof(path), "%s/.cairn/index.db", vol);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		return -1;
	sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	sqlite3_prepare_v2(db, "INSERT INTO objects VALUES('b', ?1, 1, 1, 1, 'e', 0, x'', ?2,"
			   " CAST('x' AS BLOB), NULL)", -1, &s, NULL);
	for (int i = 0; i < n && !rc; i++) {
		int len = snprintf(key, sizeof(key), "dir%03d/file%05d", i % SANITY_DIRS, i);

		sqlite3_bind_blob(s, 1, key, len, SQLITE_STATIC);
		sqlite3_bind_blob(s, 2, &crc, sizeof(crc), SQLITE_STATIC);
		rc = sqlite3_step(s) == SQLITE_DONE ? 0 : -1;
		sqlite3_reset(s);
	}
	sqlite3_finalize(s);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

TEST(store_list_20k_pages)
{
	struct fixture fx;
	struct store_list_query q = { .max = 1000 };
	struct counter c = { .sorted = true };
	double t0;
	int pages = 0;
	bool trunc = true;

	CHECK_INT(fx_open(&fx, 1), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	store_close(fx.st);
	CHECK_INT(bulk_load(fx.dirs[0], SANITY_KEYS), 0);
	CHECK_INT(store_open(&fx.cfg, &fx.st), 0);
	t0 = now_s();
	while (trunc) {
		char after[64];

		CHECK_INT(store_list(fx.st, "b", &q, count_entry, &c, &trunc), 0);
		memcpy(after, c.last, c.last_len);
		q.after = after;
		q.after_len = c.last_len;
		pages++;
	}
	CHECK_INT(c.n, SANITY_KEYS);
	CHECK_INT(pages, SANITY_KEYS / 1000);
	CHECK(c.sorted);
	CHECK(now_s() - t0 < 2.0);
	/* the roll-up seeks: 200 common prefixes in one page, without reading 20,000 keys */
	memset(&c, 0, sizeof(c));
	q = (struct store_list_query){ .delim = "/", .delim_len = 1, .max = 1000 };
	CHECK_INT(store_list(fx.st, "b", &q, count_entry, &c, &trunc), 0);
	CHECK_INT(c.n, SANITY_DIRS);
	CHECK(!trunc);
	memset(&c, 0, sizeof(c));
	q.prefix = "dir007/";
	q.prefix_len = 7;
	CHECK_INT(store_list(fx.st, "b", &q, count_entry, &c, &trunc), 0);
	CHECK_INT(c.n, SANITY_KEYS / SANITY_DIRS);
	store_close(fx.st);
}

/* --- threads: puts, overwrites of one shared key, reads and listings at once --- */

#define THREADS		4
#define THREAD_ITERS	25

struct worker {
	struct store *st;
	int id;
	int errors;
};

/* The shared key always holds one writer's pattern, whole: never a mix, never corrupt. */
static int read_shared(struct store *st)
{
	unsigned char *got;
	size_t len;
	int rc = get(st, "b", "shared", 6, &got, &len);

	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	for (size_t i = 1; i < len; i++) {
		if (got[i] != got[0])
			rc = -EBADMSG;
	}
	free(got);
	return rc;
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	unsigned char *data = malloc(BIG);
	struct store_list_query q = { .max = 1000 };
	struct counter c;
	char key[32];
	bool trunc;

	for (int i = 0; i < THREAD_ITERS; i++) {
		size_t len = i % 3 ? 100 : BIG;
		unsigned char *got;
		size_t glen;

		snprintf(key, sizeof(key), "t%d/k%02d", w->id, i);
		fill(data, len, (uint32_t)(w->id * 100 + i));
		w->errors += put_s(w->st, "b", key, data, len) != 0;
		w->errors += get(w->st, "b", key, strlen(key), &got, &glen) != 0;
		if (glen == len && !memcmp(got, data, len))
			free(got);
		else
			w->errors++;
		memset(data, 'a' + w->id, BIG);
		w->errors += put_s(w->st, "b", "shared", data, i % 2 ? BIG : 10) != 0;
		w->errors += read_shared(w->st) != 0;
		memset(&c, 0, sizeof(c));
		q.prefix = key;
		q.prefix_len = 3;
		w->errors += store_list(w->st, "b", &q, count_entry, &c, &trunc) != 0;
		w->errors += c.n != i + 1;
	}
	free(data);
	return NULL;
}

TEST(store_threads)
{
	struct fixture fx;
	struct worker w[THREADS];
	pthread_t t[THREADS];

	CHECK_INT(fx_open(&fx, 2), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ fx.st, i, 0 };
		CHECK_INT(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		CHECK_INT(w[i].errors, 0);
	}
	/* each thread's big keys (every third); the shared key ended small (inline) */
	CHECK_INT(count_files(fx.dirs[0], false) + count_files(fx.dirs[1], false),
		  THREADS * ((THREAD_ITERS + 2) / 3));
	CHECK_INT(count_files(fx.dirs[0], true) + count_files(fx.dirs[1], true), 0);
	store_close(fx.st);
}

/* test_replica.c — replication over a node's disks: placement (distribution, minimal
 * movement), R copies per put, reads that survive a corrupt replica and its repair, a
 * vanished disk, no quorum, newest-version-wins, tombstones, multipart, disk labels, and
 * disks replaced or moved while the store runs. */
#include "test.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../lib/hash.h"
#include "../../storagefs/store/place.h"
#include "../../storagefs/store/store.h"
#include "../../storagefs/store/vol.h"

#define RDIRS		5
#define RBIG		(2 * STORE_BLOCK + 777)
#define PLACE_KEYS	60000

struct rfx {
	char dirs[RDIRS][256];
	const char *ptrs[RDIRS];
	struct store_config cfg;
	struct store *st;
};

static int rfx_open(struct rfx *fx, int n, int r, int w)
{
	memset(fx, 0, sizeof(*fx));
	for (int i = 0; i < n; i++) {
		snprintf(fx->dirs[i], sizeof(fx->dirs[i]), "%s/disk%d", test_tmpdir(), i);
		fx->ptrs[i] = fx->dirs[i];
	}
	fx->cfg = (struct store_config){ .dirs = fx->ptrs, .ndirs = n, .replicas = r,
					 .write_quorum = w };
	return store_open(&fx->cfg, &fx->st);
}

static void pattern(unsigned char *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)(seed * 131 + i * 7 + (i >> 9));
}

static int rput(struct store *st, const char *key, const void *d, size_t len)
{
	struct store_objinfo info = { .size = 0 };
	struct store_put *p;
	int rc = store_put_begin(st, "b", key, strlen(key), &p);

	if (rc)
		return rc;
	for (size_t off = 0; off < len && !rc; off += 5000)
		rc = store_put_write(p, (const char *)d + off, len - off < 5000 ? len - off : 5000);
	if (rc) {
		store_put_abort(p);
		return rc;
	}
	snprintf(info.etag, sizeof(info.etag), "e%zu", len);
	return store_put_commit(p, &info);
}

/* 0 when the object reads back (read and send) exactly as want. */
static int rcheck(struct store *st, const char *key, const unsigned char *want, size_t len)
{
	static unsigned char scratch[STORE_SEND_SPAN];
	unsigned char *got = malloc(len + 1);
	struct store_obj *o;
	int64_t pos = 0;
	size_t n = 0;
	int sv[2], rc = store_obj_open(st, "b", key, strlen(key), &o);

	if (rc)
		goto out_free;
	rc = store_obj_info(o)->size == (int64_t)len ? store_obj_read(o, 0, got, len) : -EINVAL;
	if (!rc && memcmp(got, want, len))
		rc = -EILSEQ;
	store_obj_close(o);
	if (rc || (rc = store_obj_open(st, "b", key, strlen(key), &o)))
		goto out_free;
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	while (pos < (int64_t)len) {
		ssize_t s = store_obj_send(o, sv[0], &pos, 60000, scratch);

		if (s <= 0) {
			rc = s ? (int)s : -EIO;
			break;
		}
		for (ssize_t got_n = 0; got_n < s;)
			got_n += read(sv[1], got + n + (size_t)got_n, (size_t)(s - got_n));
		n += (size_t)s;
	}
	close(sv[0]);
	close(sv[1]);
	store_obj_close(o);
	if (!rc && (n != len || memcmp(got, want, len)))
		rc = -EILSEQ;
out_free:
	free(got);
	return rc;
}

static long long q_int(const char *vol, const char *q)
{
	char path[512];
	sqlite3_stmt *s;
	sqlite3 *db;
	long long v = -1;

	snprintf(path, sizeof(path), "%s/.cairn/index.db", vol);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		sqlite3_close(db);	/* a handle is allocated even on failure */
		return -1;
	}
	if (sqlite3_prepare_v2(db, q, -1, &s, NULL) == SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW)
			v = sqlite3_column_int64(s, 0);
		sqlite3_finalize(s);
	}
	sqlite3_close(db);
	return v;
}

static int q_exec(const char *vol, const char *q)
{
	char path[512];
	sqlite3 *db;
	int rc;

	snprintf(path, sizeof(path), "%s/.cairn/index.db", vol);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		sqlite3_close(db);	/* a handle is allocated even on failure */
		return -1;
	}
	rc = sqlite3_exec(db, q, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

/* Rows (live or tombstone) for key on each disk; returns on how many disks. */
static int rows_of(struct rfx *fx, int n, const char *key, bool *on)
{
	char q[256];
	int cnt = 0;

	snprintf(q, sizeof(q), "SELECT count(*) FROM objects WHERE key=CAST('%s' AS BLOB)", key);
	for (int i = 0; i < n; i++) {
		on[i] = q_int(fx->dirs[i], q) == 1;
		cnt += on[i];
	}
	return cnt;
}

/* The path of key's (first) data file on vol. */
static int data_path(const char *vol, const char *key, char *out, size_t cap)
{
	char path[512], hex[40] = "";
	sqlite3_stmt *s;
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/.cairn/index.db", vol);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		sqlite3_close(db);	/* a handle is allocated even on failure */
		return -1;
	}
	if (sqlite3_prepare_v2(db, "SELECT lower(hex(substr(segments, 1, 16))) FROM objects"
			       " WHERE key=CAST(?1 AS BLOB)", -1, &s, NULL) == SQLITE_OK) {
		sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
		if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
			snprintf(hex, sizeof(hex), "%s", (const char *)sqlite3_column_text(s, 0));
		sqlite3_finalize(s);
	}
	sqlite3_close(db);
	snprintf(out, cap, "%s/data/%.2s/%s", vol, hex, hex);
	return strlen(hex) == 32 ? 0 : -1;
}

/* "Pulls" a disk: renames its directory away (or back) and lets the probe notice. */
static int pull_disk(struct rfx *fx, int i, bool back)
{
	char away[300];

	snprintf(away, sizeof(away), "%s.away", fx->dirs[i]);
	if (back ? rename(away, fx->dirs[i]) : rename(fx->dirs[i], away))
		return -errno;
	if (fx->st)
		store_probe(fx->st);
	return 0;
}

/* --- placement --- */

TEST(place_distribution)
{
	struct place_item it[5];
	int first[5] = { 0 }, order[5];

	for (int i = 0; i < 5; i++)
		it[i] = (struct place_item){ .seed = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1),
					     .weight = i == 4 ? 2 : 1 };
	for (int k = 0; k < PLACE_KEYS; k++) {
		char key[32];
		int n = snprintf(key, sizeof(key), "obj/%d", k);

		place_rank(place_hash("b", key, (size_t)n), it, 5, order);
		first[order[0]]++;
	}
	/* weights 1,1,1,1,2: shares 1/6 each and 2/6, within 10% */
	for (int i = 0; i < 4; i++)
		CHECK(first[i] > PLACE_KEYS / 6 * 9 / 10 && first[i] < PLACE_KEYS / 6 * 11 / 10);
	CHECK(first[4] > PLACE_KEYS / 3 * 9 / 10 && first[4] < PLACE_KEYS / 3 * 11 / 10);
}

TEST(place_add_disk_moves_only_to_it)
{
	struct place_item it[5];
	int before[5], after[5], moved = 0;

	for (int i = 0; i < 5; i++)
		it[i] = (struct place_item){ .seed = 0x51afd7ed558ccdULL * (uint64_t)(i + 3), .weight = 1 };
	for (int k = 0; k < PLACE_KEYS; k++) {
		char key[32];
		int n = snprintf(key, sizeof(key), "k%d", k);
		uint64_t h = place_hash("b", key, (size_t)n);

		place_rank(h, it, 4, before);
		place_rank(h, it, 5, after);
		for (int j = 0; j < 3; j++) {	/* R = 3: the new top 3 minus the new disk */
			bool was = false;

			for (int m = 0; m < 3; m++)
				was |= before[m] == after[j];
			CHECK(was || after[j] == 4);
			moved += !was;
		}
	}
	/* the new disk takes ~3/5 of the keys' third copies: 3 * 60000 / 5 copies */
	CHECK(moved > PLACE_KEYS * 3 / 5 * 9 / 10 && moved < PLACE_KEYS * 3 / 5 * 11 / 10);
}

/* --- replicated writes and reads --- */

TEST(replica_put_lands_on_r_disks)
{
	unsigned char *data = malloc(RBIG);
	struct rfx fx;
	bool on[RDIRS];

	pattern(data, RBIG, 1);
	CHECK_INT(rfx_open(&fx, 5, 3, 2), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	for (int i = 0; i < 40; i++) {
		char key[16];

		snprintf(key, sizeof(key), "k%02d", i);
		CHECK_INT(rput(fx.st, key, data, i % 4 ? 100 : RBIG), 0);
	}
	store_close(fx.st);	/* lets the background copies finish */
	for (int i = 0; i < 40; i++) {
		char key[16];

		snprintf(key, sizeof(key), "k%02d", i);
		CHECK_INT(rows_of(&fx, 5, key, on), 3);
	}
	free(data);
}

TEST(replica_corrupt_read_and_repair)
{
	unsigned char *data = malloc(RBIG), b = 0;
	char path[512];
	struct rfx fx;
	bool on[RDIRS], on2[RDIRS];
	int bad = -1, fd;

	pattern(data, RBIG, 2);
	CHECK_INT(rfx_open(&fx, 4, 3, 2), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	CHECK_INT(rput(fx.st, "big", data, RBIG), 0);
	CHECK_INT(rput(fx.st, "small", "hello world", 11), 0);
	store_close(fx.st);
	CHECK_INT(store_open(&fx.cfg, &fx.st), 0);
	CHECK_INT(rows_of(&fx, 4, "small", on2), 3);
	CHECK_INT(rows_of(&fx, 4, "big", on), 3);
	/* flip a byte in block 1 of a disk holding both objects */
	for (int i = 0; i < 4; i++) {
		if (!on[i] || !on2[i] || data_path(fx.dirs[i], "big", path, sizeof(path)))
			continue;
		fd = open(path, O_RDWR);
		CHECK(fd >= 0);
		CHECK_INT(pread(fd, &b, 1, STORE_BLOCK + 9), 1);
		b ^= 0x20;
		CHECK_INT(pwrite(fd, &b, 1, STORE_BLOCK + 9), 1);
		close(fd);
		bad = i;
		break;
	}
	CHECK(bad >= 0);
	CHECK_INT(q_exec(fx.dirs[bad], "UPDATE objects SET inline=CAST('hellO world' AS BLOB)"
			 " WHERE key=CAST('small' AS BLOB)"), SQLITE_OK);
	/* every read succeeds (whichever replica it starts on) */
	for (int i = 0; i < 3; i++) {
		CHECK_INT(rcheck(fx.st, "big", data, RBIG), 0);
		CHECK_INT(rcheck(fx.st, "small", (const unsigned char *)"hello world", 11), 0);
	}
	CHECK_INT(store_heal(fx.st, "b", "big", 3), 0);
	CHECK_INT(store_heal(fx.st, "b", "small", 5), 0);
	store_heal_drain(fx.st);
	CHECK_INT(q_int(fx.dirs[bad], "SELECT count(*) FROM objects WHERE key=CAST('small' AS BLOB)"
			" AND inline=CAST('hello world' AS BLOB)"), 1);
	/* the repaired replica alone serves correct bytes: pull the other two */
	for (int i = 0; i < 4; i++) {
		if (on[i] && i != bad)
			CHECK_INT(pull_disk(&fx, i, false), 0);
	}
	CHECK_INT(rcheck(fx.st, "big", data, RBIG), 0);
	CHECK_INT(rcheck(fx.st, "small", (const unsigned char *)"hello world", 11), 0);
	for (int i = 0; i < 4; i++) {
		if (on[i] && i != bad)
			CHECK_INT(pull_disk(&fx, i, true), 0);
	}
	store_close(fx.st);
	free(data);
}

TEST(replica_disk_vanishes)
{
	unsigned char *data = malloc(RBIG);
	struct rfx fx;
	bool on[RDIRS];
	int gone = -1;

	pattern(data, RBIG, 3);
	CHECK_INT(rfx_open(&fx, 4, 3, 2), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	CHECK_INT(rput(fx.st, "a", data, RBIG), 0);
	store_heal_drain(fx.st);
	CHECK_INT(rows_of(&fx, 4, "a", on), 3);
	for (int i = 0; i < 4 && gone < 0; i++)
		gone = on[i] ? i : -1;
	CHECK_INT(pull_disk(&fx, gone, false), 0);
	CHECK_INT(rcheck(fx.st, "a", data, RBIG), 0);
	/* writes go to the next disks: still 3 copies with 3 disks left */
	CHECK_INT(rput(fx.st, "b1", data, RBIG), 0);
	CHECK_INT(rput(fx.st, "a", data, 1000), 0);
	store_close(fx.st);
	fx.st = NULL;
	CHECK_INT(rows_of(&fx, 4, "b1", on), 3);
	CHECK(!on[gone]);
	CHECK_INT(pull_disk(&fx, gone, true), 0);
	CHECK_INT(store_open(&fx.cfg, &fx.st), 0);
	/* the disk came back with the old "a": the newer version wins */
	CHECK_INT(rcheck(fx.st, "a", data, 1000), 0);
	CHECK_INT(store_heal(fx.st, "b", "a", 1), 0);
	CHECK_INT(rows_of(&fx, 4, "a", on), 3);
	store_close(fx.st);
	free(data);
}

TEST(replica_probe_online_again)
{
	struct rfx fx;

	CHECK_INT(rfx_open(&fx, 3, 3, 2), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	CHECK_INT(pull_disk(&fx, 1, false), 0);
	CHECK_INT(pull_disk(&fx, 2, false), 0);
	/* two of three down, W = 2: refused, nothing acknowledged */
	CHECK_INT(rput(fx.st, "x", "data", 4), -STORE_ENOQUORUM);
	CHECK_INT(rcheck(fx.st, "x", (const unsigned char *)"data", 4), -ENOENT);
	CHECK_INT(store_obj_delete(fx.st, "b", "x", 1), -STORE_ENOQUORUM);
	CHECK_INT(pull_disk(&fx, 1, true), 0);
	CHECK_INT(pull_disk(&fx, 2, true), 0);
	CHECK_INT(rput(fx.st, "x", "data", 4), 0);
	CHECK_INT(rcheck(fx.st, "x", (const unsigned char *)"data", 4), 0);
	store_close(fx.st);
}

TEST(replica_older_never_wins)
{
	struct rfx fx;
	bool on[RDIRS];
	long long v;

	CHECK_INT(rfx_open(&fx, 3, 3, 2), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	CHECK_INT(rput(fx.st, "k", "old", 3), 0);
	store_heal_drain(fx.st);
	CHECK_INT(pull_disk(&fx, 0, false), 0);
	CHECK_INT(rput(fx.st, "k", "newer", 5), 0);
	CHECK_INT(pull_disk(&fx, 0, true), 0);
	for (int i = 0; i < 5; i++)
		CHECK_INT(rcheck(fx.st, "k", (const unsigned char *)"newer", 5), 0);
	store_close(fx.st);
	CHECK_INT(rows_of(&fx, 3, "k", on), 3);
	/* the clock never goes backwards: seeded from the highest version on disk */
	CHECK_INT(q_exec(fx.dirs[1], "UPDATE objects SET version=version+1000000000000000"), SQLITE_OK);
	v = q_int(fx.dirs[1], "SELECT version FROM objects");
	CHECK_INT(store_open(&fx.cfg, &fx.st), 0);
	CHECK_INT(rput(fx.st, "k2", "z", 1), 0);
	store_close(fx.st);
	CHECK(q_int(fx.dirs[1], "SELECT version FROM objects WHERE key=CAST('k2' AS BLOB)") > v);
}

static int count_cb(void *ctx, const struct store_list_entry *e)
{
	(*(int *)ctx)++;
	return 0;
}

TEST(replica_tombstone_overrules)
{
	struct store_list_query q = { .max = 100 };
	struct rfx fx;
	bool on[RDIRS], trunc;
	int n = 0;

	CHECK_INT(rfx_open(&fx, 3, 3, 2), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	CHECK_INT(rput(fx.st, "k", "live", 4), 0);
	CHECK_INT(rput(fx.st, "other", "x", 1), 0);
	store_heal_drain(fx.st);
	CHECK_INT(pull_disk(&fx, 2, false), 0);
	CHECK_INT(store_obj_delete(fx.st, "b", "k", 1), 0);	/* disk 2 misses it */
	CHECK_INT(pull_disk(&fx, 2, true), 0);
	CHECK_INT(rcheck(fx.st, "k", (const unsigned char *)"live", 4), -ENOENT);
	CHECK_INT(store_list(fx.st, "b", &q, count_cb, &n, &trunc), 0);
	CHECK_INT(n, 1);
	store_heal_drain(fx.st);
	CHECK_INT(store_heal(fx.st, "b", "k", 1), 0);	/* every disk agrees now: purged */
	CHECK_INT(rows_of(&fx, 3, "k", on), 0);
	CHECK_INT(store_obj_delete(fx.st, "b", "other", 5), 0);
	CHECK_INT(store_bucket_delete(fx.st, "b"), 0);	/* tombstones do not keep it */
	store_close(fx.st);
}

TEST(replica_multipart)
{
	size_t big = STORE_PART_MIN + 1000;
	unsigned char *data = malloc(big + 5000);
	struct store_mpu_part parts[2] = { { .part_no = 1 }, { .part_no = 2 } };
	char uid[STORE_UPLOAD_ID_MAX + 1];
	struct store_objinfo out;
	struct rfx fx;
	bool on[RDIRS];

	pattern(data, big + 5000, 4);
	CHECK_INT(rfx_open(&fx, 4, 3, 2), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	CHECK_INT(store_mpu_create(fx.st, "b", "mp", 2, "", 0, uid), 0);
	for (int i = 0; i < 2; i++) {
		struct store_objinfo info = { .size = 0 };
		struct store_put *p;
		size_t off = i ? big : 0, len = i ? 5000 : big;

		CHECK_INT(store_part_begin(fx.st, "b", uid, i + 1, &p), 0);
		CHECK_INT(store_put_write(p, data + off, len), 0);
		snprintf(info.etag, sizeof(info.etag), "p%d", i);
		snprintf(parts[i].etag, sizeof(parts[i].etag), "p%d", i);
		CHECK_INT(store_put_commit(p, &info), 0);
	}
	CHECK_INT(store_mpu_complete(fx.st, "b", uid, parts, 2, &out), 0);
	CHECK_INT(rcheck(fx.st, "mp", data, big + 5000), 0);
	store_close(fx.st);
	CHECK_INT(rows_of(&fx, 4, "mp", on), 3);
	free(data);
}

/* --- labels --- */

TEST(replica_labels)
{
	struct rfx fx, other;
	char copy[300];
	const char *twice[2];
	struct store_config cfg = { .dirs = twice, .ndirs = 2, .replicas = 1, .write_quorum = 1 };
	struct store *st = NULL;

	CHECK_INT(rfx_open(&fx, 2, 2, 2), 0);
	store_close(fx.st);
	snprintf(copy, sizeof(copy), "%s/.cairn/format", fx.dirs[0]);
	CHECK_INT(access(copy, R_OK), 0);
	/* the same directory twice */
	twice[0] = fx.dirs[0];
	twice[1] = fx.dirs[0];
	CHECK_INT(store_open(&cfg, &st), -EINVAL);
	/* a directory of another node */
	snprintf(copy, sizeof(copy), "%s/foreign", test_tmpdir());
	other.ptrs[0] = copy;
	other.cfg = (struct store_config){ .dirs = other.ptrs, .ndirs = 1 };
	CHECK_INT(store_open(&other.cfg, &other.st), 0);
	store_close(other.st);
	twice[1] = copy;
	CHECK_INT(store_open(&cfg, &st), -EXDEV);
	/* R and W are checked */
	cfg.dirs = fx.ptrs;
	cfg.replicas = 3;
	CHECK_INT(store_open(&cfg, &st), -EINVAL);
	cfg.replicas = 2;
	cfg.write_quorum = 3;
	CHECK_INT(store_open(&cfg, &st), -EINVAL);
}

/* --- the scrubber --- */

TEST(replica_scrub_restores_and_purges)
{
	unsigned char *data = malloc(RBIG);
	struct rfx fx;
	bool on[RDIRS];
	char q[128];
	int victim = -1;

	pattern(data, RBIG, 5);
	CHECK_INT(rfx_open(&fx, 4, 3, 2), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	for (int i = 0; i < 30; i++) {
		char key[16];

		snprintf(key, sizeof(key), "s%02d", i);
		CHECK_INT(rput(fx.st, key, data, i % 3 ? 50 : RBIG), 0);
	}
	CHECK_INT(rput(fx.st, "gone", "x", 1), 0);
	store_heal_drain(fx.st);
	/* a replica row lost on one disk, and a tombstone one disk missed */
	CHECK_INT(rows_of(&fx, 4, "s00", on), 3);
	for (int i = 0; i < 4 && victim < 0; i++)
		victim = on[i] ? i : -1;
	CHECK_INT(q_exec(fx.dirs[victim], "DELETE FROM objects WHERE key=CAST('s00' AS BLOB)"),
		  SQLITE_OK);
	CHECK_INT(rows_of(&fx, 4, "gone", on), 3);
	for (int i = 0; i < 4; i++) {
		if (!on[i])
			continue;
		CHECK_INT(pull_disk(&fx, i, false), 0);
		CHECK_INT(store_obj_delete(fx.st, "b", "gone", 4), 0);
		CHECK_INT(pull_disk(&fx, i, true), 0);
		break;
	}
	store_heal_drain(fx.st);
	CHECK_INT(store_scrub_once(fx.st), 0);
	CHECK_INT(rows_of(&fx, 4, "s00", on), 3);
	CHECK_INT(rcheck(fx.st, "s00", data, RBIG), 0);
	CHECK_INT(rows_of(&fx, 4, "gone", on), 0);
	store_close(fx.st);
	/* the checkpoint: a finished pass is recorded in every index */
	snprintf(q, sizeof(q), "SELECT pass FROM scrub WHERE id=1");
	for (int i = 0; i < 4; i++)
		CHECK_INT(q_int(fx.dirs[i], q), 1);
	free(data);
}

TEST(replica_status_counters)
{
	struct store_disk_status d[RDIRS];
	struct store_status s;
	struct rfx fx;
	uint64_t writes = 0;

	CHECK_INT(rfx_open(&fx, 3, 3, 2), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	CHECK_INT(rput(fx.st, "k", "12345", 5), 0);
	store_heal_drain(fx.st);
	CHECK_INT(rcheck(fx.st, "k", (const unsigned char *)"12345", 5), 0);
	CHECK_INT(pull_disk(&fx, 0, false), 0);
	CHECK_INT(store_status(fx.st, &s, d, RDIRS), 3);
	CHECK_INT(s.disks, 3);
	CHECK_INT(s.online, 2);
	CHECK_INT(s.replicas, 3);
	CHECK_INT(s.write_quorum, 2);
	CHECK(!d[0].online && d[1].online && d[1].size_bytes > 0);
	for (int i = 0; i < 3; i++)
		writes += d[i].writes;
	CHECK_INT(writes, 3);
	CHECK(d[0].reads + d[1].reads + d[2].reads >= 2);
	CHECK_INT(pull_disk(&fx, 0, true), 0);
	store_close(fx.st);
}

TEST(replica_rebuild_replaced_disk)
{
	unsigned char *data = malloc(RBIG);
	char cmd[600];
	struct rfx fx;
	bool on[RDIRS];

	pattern(data, RBIG, 6);
	CHECK_INT(rfx_open(&fx, 4, 3, 2), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	for (int i = 0; i < 24; i++) {
		char key[16];

		snprintf(key, sizeof(key), "r%02d", i);
		CHECK_INT(rput(fx.st, key, data, i % 2 ? 300 : RBIG), 0);
	}
	store_close(fx.st);
	/* disk 1 replaced by an empty one in the same slot */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx.dirs[1]);
	CHECK_INT(system(cmd), 0);
	CHECK_INT(store_open(&fx.cfg, &fx.st), 0);
	CHECK_INT(store_scrub_once(fx.st), 0);
	for (int i = 0; i < 24; i++) {
		char key[16];

		snprintf(key, sizeof(key), "r%02d", i);
		CHECK_INT(rows_of(&fx, 4, key, on), 3);
		CHECK_INT(rcheck(fx.st, key, data, i % 2 ? 300 : RBIG), 0);
	}
	CHECK(q_int(fx.dirs[1], "SELECT count(*) FROM objects") > 10);	/* ~3/4 of 24 */
	store_close(fx.st);
	free(data);
}

TEST(replica_each_block_from_a_good_copy)
{
	unsigned char *data = malloc(RBIG), b = 0;
	char path[512];
	struct rfx fx;
	bool on[RDIRS];
	int blk = 0, fd;

	pattern(data, RBIG, 7);
	CHECK_INT(rfx_open(&fx, 3, 3, 2), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	CHECK_INT(rput(fx.st, "k", data, RBIG), 0);
	store_close(fx.st);
	CHECK_INT(rows_of(&fx, 3, "k", on), 3);
	/* block 0 bad on disk 0, block 1 on disk 1, block 2 on disk 2: no replica is whole */
	for (int i = 0; i < 3; i++, blk++) {
		CHECK_INT(data_path(fx.dirs[i], "k", path, sizeof(path)), 0);
		fd = open(path, O_RDWR);
		CHECK(fd >= 0);
		CHECK_INT(pread(fd, &b, 1, blk * STORE_BLOCK + 3), 1);
		b ^= 1;
		CHECK_INT(pwrite(fd, &b, 1, blk * STORE_BLOCK + 3), 1);
		close(fd);
	}
	CHECK_INT(store_open(&fx.cfg, &fx.st), 0);
	for (int i = 0; i < 3; i++)
		CHECK_INT(rcheck(fx.st, "k", data, RBIG), 0);
	store_close(fx.st);
	free(data);
}

/* --- disks replaced or moved while the store runs --- */

/* The label's place line of vol (0 when missing). */
static unsigned long long label_place(const char *vol)
{
	char path[512], text[600], *p;
	unsigned long long v = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/.cairn/format", vol);
	if (!(f = fopen(path, "r")))
		return 0;
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = 0;
	if ((p = strstr(text, "\nplace ")))
		v = strtoull(p + 7, NULL, 16);
	return v;
}

TEST(replica_label_place_line)
{
	struct vol_label l;
	char dir[300], path[400], cmd[800];
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/lbl", test_tmpdir());
	snprintf(path, sizeof(path), "%s/.cairn/format", dir);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s/.cairn'", dir);
	CHECK_INT(system(cmd), 0);
	/* a label of before the place line: still read, seed from the disk id */
	f = fopen(path, "w");
	CHECK(f != NULL);
	fprintf(f, "cairn-disk 1\ncluster %032x\nnode %032x\ndisk %032x\n", 1, 2, 3);
	fclose(f);
	CHECK_INT(vol_label_read(dir, &l), 0);
	CHECK(!l.has_place);
	f = fopen(path, "w");
	CHECK(f != NULL);
	fprintf(f, "cairn-disk 1\ncluster %032x\nnode %032x\ndisk %032x\nplace 00000000deadbeef\n",
		1, 2, 3);
	fclose(f);
	CHECK_INT(vol_label_read(dir, &l), 0);
	CHECK(l.has_place);
	CHECK_INT(l.place, 0xdeadbeefULL);
	f = fopen(path, "w");
	CHECK(f != NULL);
	fprintf(f, "cairn-disk 1\ncluster %032x\nnode %032x\ndisk %032x\nplace 12x\n", 1, 2, 3);
	fclose(f);
	CHECK_INT(vol_label_read(dir, &l), -EUCLEAN);
}

static int disk_of(struct store *st, int i, struct store_disk_status *d)
{
	struct store_disk_status all[RDIRS];
	struct store_status s;
	int n = store_status(st, &s, all, RDIRS);

	if (i >= n)
		return -1;
	*d = all[i];
	return s.online;
}

TEST(replica_runtime_replace_empty_disk)
{
	unsigned char *data = malloc(RBIG);
	struct store_disk_status d0, d1;
	char cmd[600];
	unsigned long long place;
	struct rfx fx;
	bool on[RDIRS];

	pattern(data, RBIG, 8);
	CHECK_INT(rfx_open(&fx, 4, 3, 2), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	CHECK_INT(store_bucket_create(fx.st, "empty"), 0);
	for (int i = 0; i < 24; i++) {
		char key[16];

		snprintf(key, sizeof(key), "r%02d", i);
		CHECK_INT(rput(fx.st, key, data, i % 2 ? 300 : RBIG), 0);
	}
	store_heal_drain(fx.st);
	place = label_place(fx.dirs[1]);
	CHECK(place != 0);
	CHECK_INT(disk_of(fx.st, 1, &d0), 4);
	/* pulled, then an empty directory in its place: taken up at once, same placement */
	CHECK_INT(pull_disk(&fx, 1, false), 0);
	CHECK_INT(disk_of(fx.st, 1, &d1), 3);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s/lost+found'", fx.dirs[1]);
	CHECK_INT(system(cmd), 0);
	store_probe(fx.st);
	CHECK_INT(disk_of(fx.st, 1, &d1), 4);
	CHECK(strcmp(d0.id, d1.id) != 0);
	CHECK(d1.rebuilding);
	CHECK_INT(label_place(fx.dirs[1]), place);
	/* before the rebuild: every read served from the other disks, nothing lost */
	for (int i = 0; i < 24; i++) {
		char key[16];

		snprintf(key, sizeof(key), "r%02d", i);
		CHECK_INT(rcheck(fx.st, key, data, i % 2 ? 300 : RBIG), 0);
	}
	CHECK_INT(rput(fx.st, "new", data, RBIG), 0);	/* buckets copied: a put lands */
	CHECK_INT(store_scrub_once(fx.st), 0);
	CHECK_INT(disk_of(fx.st, 1, &d1), 4);
	CHECK(!d1.rebuilding);
	for (int i = 0; i < 24; i++) {
		char key[16];

		snprintf(key, sizeof(key), "r%02d", i);
		CHECK_INT(rows_of(&fx, 4, key, on), 3);
		CHECK_INT(rcheck(fx.st, key, data, i % 2 ? 300 : RBIG), 0);
	}
	/* same seed, same placement: the new disk holds what the old one did, no more */
	snprintf(cmd, sizeof(cmd), "%s.away", fx.dirs[1]);
	CHECK_INT(q_int(fx.dirs[1], "SELECT count(*) FROM objects WHERE key != CAST('new' AS BLOB)"),
		  q_int(cmd, "SELECT count(*) FROM objects"));
	CHECK_INT(q_int(fx.dirs[1], "SELECT count(*) FROM buckets"), 2);
	store_close(fx.st);
	/* and it stays: a restart keeps the slot's placement seed from the label */
	CHECK_INT(store_open(&fx.cfg, &fx.st), 0);
	CHECK_INT(rcheck(fx.st, "r00", data, RBIG), 0);
	CHECK_INT(store_heal(fx.st, "b", "r00", 3), 0);
	CHECK_INT(rows_of(&fx, 4, "r00", on), 3);
	store_close(fx.st);
	free(data);
}

TEST(replica_runtime_replace_refused)
{
	char path[400];
	struct store_disk_status d;
	struct rfx fx;
	FILE *f;

	CHECK_INT(rfx_open(&fx, 3, 2, 1), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	CHECK_INT(pull_disk(&fx, 2, false), 0);
	/* an unlabelled directory holding something is never taken (nor written to) */
	CHECK_INT(mkdir(fx.dirs[2], 0750), 0);
	snprintf(path, sizeof(path), "%s/precious", fx.dirs[2]);
	f = fopen(path, "w");
	CHECK(f != NULL);
	fclose(f);
	store_probe(fx.st);
	store_probe(fx.st);
	CHECK_INT(disk_of(fx.st, 2, &d), 2);
	snprintf(path, sizeof(path), "%s/.cairn", fx.dirs[2]);
	CHECK(access(path, F_OK) != 0);
	snprintf(path, sizeof(path), "%s/precious", fx.dirs[2]);
	CHECK_INT(unlink(path), 0);
	store_probe(fx.st);
	CHECK_INT(disk_of(fx.st, 2, &d), 3);
	CHECK_INT(rput(fx.st, "k", "data", 4), 0);
	store_close(fx.st);
}

TEST(replica_runtime_disk_moved)
{
	unsigned char *data = malloc(RBIG);
	struct store_disk_status d0, d1;
	char cmd[800];
	struct rfx fx;

	pattern(data, RBIG, 9);
	CHECK_INT(rfx_open(&fx, 3, 3, 2), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	CHECK_INT(rput(fx.st, "k", data, RBIG), 0);
	store_heal_drain(fx.st);
	CHECK_INT(disk_of(fx.st, 0, &d0), 3);
	CHECK_INT(pull_disk(&fx, 0, false), 0);
	CHECK_INT(disk_of(fx.st, 0, &d1), 2);
	/* the same disk back as another directory (a copy, as after a remount) */
	snprintf(cmd, sizeof(cmd), "cp -a '%s.away' '%s'", fx.dirs[0], fx.dirs[0]);
	CHECK_INT(system(cmd), 0);
	store_probe(fx.st);
	CHECK_INT(disk_of(fx.st, 0, &d1), 3);
	CHECK_STR(d1.id, d0.id);
	CHECK(!d1.rebuilding);
	CHECK_INT(rcheck(fx.st, "k", data, RBIG), 0);
	CHECK_INT(rput(fx.st, "k2", data, 1000), 0);
	CHECK_INT(rcheck(fx.st, "k2", data, 1000), 0);
	store_close(fx.st);
	free(data);
}

/* --- the rebuild's copies --- */

/* 1 when vol's copy of key has exactly want's bytes in its (one) data file. */
static int copy_is(const char *vol, const char *key, const unsigned char *want, size_t len)
{
	unsigned char *got = malloc(len + 1);
	char path[512];
	int fd, ok = 0;

	if (data_path(vol, key, path, sizeof(path)) == 0 && (fd = open(path, O_RDONLY)) >= 0) {
		ok = read(fd, got, len + 1) == (ssize_t)len && memcmp(got, want, len) == 0;
		close(fd);
	}
	free(got);
	return ok;
}

static int flip_byte(const char *vol, const char *key, off_t off)
{
	char path[512];
	unsigned char b;
	int fd, rc = -1;

	if (data_path(vol, key, path, sizeof(path)) || (fd = open(path, O_RDWR)) < 0)
		return -1;
	if (pread(fd, &b, 1, off) == 1) {
		b ^= 0x20;
		rc = pwrite(fd, &b, 1, off) == 1 ? 0 : -1;
	}
	close(fd);
	return rc;
}

static long long dir_files(const char *dir)
{
	char cmd[600];
	long long n = -1;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "find '%s' -type f | wc -l", dir);
	if ((f = popen(cmd, "r"))) {
		if (fscanf(f, "%lld", &n) != 1)
			n = -1;
		pclose(f);
	}
	return n;
}

/* A rebuild pass reads (and verifies) one copy per key, the first placed one: a bad source
 * sends the key to the full repair (both copies verified, the good one copied, the bad one
 * restored); a bad copy that was not the source is left to the regular pass after it. */
TEST(replica_rebuild_reads_one_copy)
{
	unsigned char *data = malloc(RBIG);
	struct place_item it[3];
	int src[8], other[8];
	char cmd[600], key[16];
	struct rfx fx;
	bool on[RDIRS];

	pattern(data, RBIG, 10);
	CHECK_INT(rfx_open(&fx, 3, 3, 2), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	for (int i = 0; i < 8; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		CHECK_INT(rput(fx.st, key, data, RBIG), 0);
	}
	store_close(fx.st);
	for (int i = 0; i < 3; i++)	/* one file system: equal weights */
		it[i] = (struct place_item){ .seed = label_place(fx.dirs[i]), .weight = 1 };
	for (int i = 0; i < 8; i++) {
		int order[3], n = snprintf(key, sizeof(key), "k%d", i);

		place_rank(place_hash("b", key, (size_t)n), it, 3, order);
		src[i] = order[0] == 1 ? order[1] : order[0];	/* disk 1 is replaced below */
		other[i] = 2 - src[i];
		/* even keys: the source copy is bad; odd keys: the other one */
		CHECK_INT(flip_byte(fx.dirs[i % 2 ? other[i] : src[i]], key, STORE_BLOCK + 9), 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx.dirs[1]);
	CHECK_INT(system(cmd), 0);
	CHECK_INT(store_open(&fx.cfg, &fx.st), 0);
	CHECK_INT(store_scrub_once(fx.st), 0);	/* the rebuild pass */
	for (int i = 0; i < 8; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		CHECK_INT(rows_of(&fx, 3, key, on), 3);
		CHECK(copy_is(fx.dirs[1], key, data, RBIG));
		CHECK(copy_is(fx.dirs[src[i]], key, data, RBIG));
		CHECK_INT(copy_is(fx.dirs[other[i]], key, data, RBIG), i % 2 == 0);
	}
	CHECK_INT(store_scrub_once(fx.st), 0);	/* a regular pass: every copy verified */
	for (int i = 0; i < 8; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		for (int d = 0; d < 3; d++)
			CHECK(copy_is(fx.dirs[d], key, data, RBIG));
	}
	store_close(fx.st);
	free(data);
}

/* Of k00..k39 and mp, how many the same scrub walk repairs as key, with disk 1 replaced:
 * the walk of disk 0 or 2, whichever ranks first for the key. */
static int same_walk(struct rfx *fx, const char *key)
{
	struct place_item it[3];
	int n = 0, mine = -1;

	for (int i = 0; i < 3; i++)
		it[i] = (struct place_item){ .seed = label_place(fx->dirs[i]), .weight = 1 };
	for (int k = -1; k <= 40; k++) {
		char name[16];
		int order[3], len = k < 0 ? snprintf(name, sizeof(name), "%s", key) : k == 40 ?
			  snprintf(name, sizeof(name), "mp") : snprintf(name, sizeof(name), "k%02d", k);
		int walk;

		place_rank(place_hash("b", name, (size_t)len), it, 3, order);
		walk = order[0] == 1 ? order[1] : order[0];
		if (k < 0)
			mine = walk;
		else
			n += walk == mine;
	}
	return n;
}

/* The rebuild commits its copies in batches (one transaction per disk): a transaction that
 * fails lands none of its rows and leaves no temp file; the keys are copied by the next
 * pass. A crash after such a commit, before the renames, is finished by recovery. */
TEST(replica_rebuild_batch_fails_whole)
{
	size_t big = STORE_PART_MIN + 1000;
	unsigned char *data = malloc(big + 5000);
	struct store_mpu_part parts[2] = { { .part_no = 1 }, { .part_no = 2 } };
	char uid[STORE_UPLOAD_ID_MAX + 1], key[16], tmp[300], cmd[900];
	struct store_objinfo out;
	struct rfx fx;
	bool on[RDIRS];

	pattern(data, big + 5000, 11);
	CHECK_INT(rfx_open(&fx, 3, 3, 2), 0);
	CHECK_INT(store_bucket_create(fx.st, "b"), 0);
	for (int i = 0; i < 40; i++) {
		snprintf(key, sizeof(key), "k%02d", i);
		CHECK_INT(rput(fx.st, key, data, i % 3 == 0 ? RBIG : i % 3 == 1 ? 300 : 0), 0);
	}
	CHECK_INT(store_mpu_create(fx.st, "b", "mp", 2, "", 0, uid), 0);
	for (int i = 0; i < 2; i++) {	/* a 2-segment object, the first over a MiB */
		struct store_objinfo info = { .size = 0 };
		struct store_put *p;

		CHECK_INT(store_part_begin(fx.st, "b", uid, i + 1, &p), 0);
		CHECK_INT(store_put_write(p, data + (i ? big : 0), i ? 5000 : big), 0);
		snprintf(info.etag, sizeof(info.etag), "p%d", i);
		snprintf(parts[i].etag, sizeof(parts[i].etag), "p%d", i);
		CHECK_INT(store_put_commit(p, &info), 0);
	}
	CHECK_INT(store_mpu_complete(fx.st, "b", uid, parts, 2, &out), 0);
	store_close(fx.st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx.dirs[1]);
	CHECK_INT(system(cmd), 0);
	CHECK_INT(store_open(&fx.cfg, &fx.st), 0);
	/* the new disk's index refuses one row: its whole batch must roll back */
	CHECK_INT(q_exec(fx.dirs[1], "CREATE TRIGGER boom BEFORE INSERT ON objects"
		  " WHEN NEW.key = CAST('k03' AS BLOB) BEGIN SELECT RAISE(ABORT, 'boom'); END"),
		  SQLITE_OK);
	CHECK_INT(store_scrub_once(fx.st), 0);
	CHECK_INT(rows_of(&fx, 3, "k03", on), 2);
	CHECK(!on[1]);
	/* the batch of the walk that met k03 (disk 0's or disk 2's, whichever ranks first)
	 * landed nothing, the other walk's batch everything */
	CHECK_INT(q_int(fx.dirs[1], "SELECT count(*) FROM objects"), 41 - same_walk(&fx, "k03"));
	snprintf(tmp, sizeof(tmp), "%s/.cairn/tmp", fx.dirs[1]);
	CHECK_INT(dir_files(tmp), 0);
	snprintf(cmd, sizeof(cmd), "%s/data", fx.dirs[1]);
	CHECK_INT(dir_files(cmd), q_int(fx.dirs[1], "SELECT count(*) FROM files"));
	CHECK_INT(q_exec(fx.dirs[1], "DROP TRIGGER boom"), SQLITE_OK);
	CHECK_INT(store_scrub_once(fx.st), 0);	/* the next pass copies the rest */
	CHECK_INT(q_int(fx.dirs[1], "SELECT count(*) FROM objects"), 41);
	store_close(fx.st);
	/* committed, renames lost: recovery puts the files in place */
	snprintf(cmd, sizeof(cmd), "find '%s/data' -type f -exec mv {} '%s' ';'", fx.dirs[1], tmp);
	CHECK_INT(system(cmd), 0);
	CHECK(dir_files(tmp) > 10);
	CHECK_INT(store_open(&fx.cfg, &fx.st), 0);
	CHECK_INT(dir_files(tmp), 0);
	/* the new disk alone serves every object */
	CHECK_INT(pull_disk(&fx, 0, false), 0);
	CHECK_INT(pull_disk(&fx, 2, false), 0);
	for (int i = 0; i < 40; i++) {
		snprintf(key, sizeof(key), "k%02d", i);
		CHECK_INT(rcheck(fx.st, key, data, i % 3 == 0 ? RBIG : i % 3 == 1 ? 300 : 0), 0);
	}
	CHECK_INT(rcheck(fx.st, "mp", data, big + 5000), 0);
	CHECK_INT(pull_disk(&fx, 0, true), 0);
	CHECK_INT(pull_disk(&fx, 2, true), 0);
	store_close(fx.st);
	free(data);
}

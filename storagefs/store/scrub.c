/* scrub.c — the scrubber: a background thread that walks each volume's index in key order
 * within an I/O budget and repairs every key it meets (store_heal: verify every placed
 * replica, restore missing or corrupt ones, purge agreed tombstones). Its position is
 * checkpointed in the index (table scrub) so a restart resumes; progress is logged. A
 * rebuild (a replaced disk) is a pass whose walks all start over, with its own progress,
 * that copies what only the new disks lack in batches (heal_batch, one copy verified) and
 * leaves the other copies' verification to the regular passes after it; a disk that
 * returns or is replaced wakes the scrubber from its rest. */
#include "store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../lib/log.h"

#define SCRUB_BATCH	64		/* keys read from the index at a time */
#define SCRUB_START_MS	5000		/* after open, before the first batch */
#define SCRUB_IDLE_MS	60000		/* between two passes over every volume */
#define SCRUB_LOG_MS	10000		/* one progress line per volume this often */
#define SCRUB_NAP_MAX	10000

struct scrub_key {
	char bucket[STORE_BUCKET_MAX + 1];
	size_t key_len;
	char key[STORE_KEY_MAX];
	int64_t size;
};

/* The walk over one volume: the checkpoint, and this pass's counters. */
struct scrub_vol {
	struct scrub_key at;		/* the last key done ("" / 0: from the start) */
	int64_t pass, objects, bytes, repaired, errors, total;
	int64_t start_ms, logged_ms;
	bool loaded;
};

/* The rebuild pass: which slots it fills, and its progress over every walk. */
struct scrub_rebuild {
	uint64_t mask;			/* slots being rebuilt (atomic: status reads it) */
	int64_t objects, total;		/* rows walked, rows to walk (atomics) */
	int64_t copied, bytes;		/* replicas restored, their bytes (atomics) */
	int64_t start_ms, logged_ms;	/* atomic start_ms */
};

struct store_scrub {
	bool rebuild;			/* a new disk joined: every walk starts over */
	struct scrub_rebuild rb;
	struct scrub_vol vol[STORE_VOLS_MAX];
	struct scrub_key keys[SCRUB_BATCH];
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- the checkpoint: one row of table scrub, written with the volume's transactions --- */

static int ckpt_load(struct vol *v, struct scrub_vol *sv)
{
	struct vconn *w;
	sqlite3_stmt *s;
	int rc = vol_tx_begin(v, &w), step;

	if (rc)
		return rc;
	s = w->st[VS_SCRUB_GET];
	step = sqlite3_step(s);
	if (step == SQLITE_ROW && (size_t)sqlite3_column_bytes(s, 1) <= STORE_KEY_MAX) {
		snprintf(sv->at.bucket, sizeof(sv->at.bucket), "%s",
			 (const char *)sqlite3_column_text(s, 0));
		sv->at.key_len = (size_t)sqlite3_column_bytes(s, 1);
		if (sv->at.key_len)
			memcpy(sv->at.key, sqlite3_column_blob(s, 1), sv->at.key_len);
		sv->pass = sqlite3_column_int64(s, 2);
	} else if (step != SQLITE_ROW && step != SQLITE_DONE) {
		rc = vol_sqlerr(v, w->db, step, "scrub_get");
	}
	sqlite3_reset(s);
	return vol_tx_end(v, rc);
}

static int ckpt_save(struct vol *v, const struct scrub_vol *sv)
{
	struct vconn *w;
	sqlite3_stmt *s;
	int rc = vol_tx_begin(v, &w);

	if (rc)
		return rc;
	s = w->st[VS_SCRUB_PUT];
	sqlite3_bind_text(s, 1, sv->at.bucket, -1, SQLITE_STATIC);
	store_bind_blob(s, 2, sv->at.key, sv->at.key_len);
	sqlite3_bind_int64(s, 3, sv->pass);
	sqlite3_bind_int64(s, 4, wall_ms());
	return vol_tx_end(v, vol_exec(v, w, VS_SCRUB_PUT));
}

/* --- the walk --- */

/* The next keys after the checkpoint, into sc->keys; returns how many or -errno. */
static int scrub_read(struct vol *v, const struct scrub_vol *sv, struct scrub_key *keys)
{
	struct vconn *c = vol_reader(v);
	sqlite3_stmt *s = c->st[VS_SCRUB_NEXT];
	int n = 0, rc;

	sqlite3_bind_text(s, 1, sv->at.bucket, -1, SQLITE_STATIC);
	store_bind_blob(s, 2, sv->at.key, sv->at.key_len);
	sqlite3_bind_int(s, 3, SCRUB_BATCH);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && n < SCRUB_BATCH) {
		struct scrub_key *k = &keys[n];

		k->key_len = (size_t)sqlite3_column_bytes(s, 1);
		if (k->key_len > STORE_KEY_MAX || !sqlite3_column_text(s, 0))
			continue;
		snprintf(k->bucket, sizeof(k->bucket), "%s", (const char *)sqlite3_column_text(s, 0));
		memcpy(k->key, sqlite3_column_blob(s, 1), k->key_len);
		k->size = sqlite3_column_int64(s, 2);
		n++;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		n = vol_fault(v, vol_sqlerr(v, c->db, rc, "scrub_next"), "sql");
	sqlite3_reset(s);
	vol_reader_put(c);
	return n;
}

/* The key is repaired from the walk of the first online volume (placement order) that
 * holds it, so each key is verified once per pass, not once per replica. */
static bool scrub_owner(struct store *st, int vi, const struct scrub_key *k)
{
	int order[STORE_VOLS_MAX];

	store_place(st, k->bucket, k->key, k->key_len, order);
	for (int i = 0; i < st->nvols && order[i] != vi; i++) {
		struct vol *v = store_vol(st, order[i]);
		struct vconn *c;
		uint64_t ver;
		bool tomb;
		int rc;

		if (!vol_online(v))
			continue;
		c = vol_reader(v);
		rc = store_row_version(v, c, k->bucket, k->key, k->key_len, &ver, &tomb);
		vol_reader_put(c);
		if (rc == 1)
			return false;
	}
	return true;
}

static void scrub_log(struct store *st, int vi, struct scrub_vol *sv, bool done)
{
	int64_t now = mono_ms(), el = now - sv->start_ms;
	int64_t eta = sv->objects ? (sv->total - sv->objects) * el / sv->objects / 1000 : -1;

	sv->logged_ms = now;
	log_info("store_scrub_%s vol=%s pass=%lld objects=%lld total=%lld bytes=%lld repaired=%lld errors=%lld elapsed_s=%lld eta_s=%lld",
		 done ? "pass_done" : "progress", store_vol(st, vi)->path, (long long)sv->pass,
		 (long long)sv->objects, (long long)sv->total, (long long)sv->bytes,
		 (long long)sv->repaired, (long long)sv->errors, (long long)(el / 1000),
		 (long long)(eta < 0 ? 0 : eta));
}

static void scrub_begin_pass(struct store *st, int vi, struct scrub_vol *sv)
{
	struct vol *v = store_vol(st, vi);
	struct vconn *c = vol_reader(v);
	sqlite3_stmt *s = NULL;

	__atomic_store_n(&sv->objects, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&sv->repaired, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&sv->total, 0, __ATOMIC_RELAXED);
	sv->bytes = sv->errors = 0;
	sv->start_ms = sv->logged_ms = mono_ms();
	if (sqlite3_prepare_v2(c->db, "SELECT count(*) FROM objects", -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		__atomic_store_n(&sv->total, sqlite3_column_int64(s, 0), __ATOMIC_RELAXED);
	sqlite3_finalize(s);
	vol_reader_put(c);
}

static int64_t vol_rows(struct vol *v)
{
	struct vconn *c = vol_reader(v);
	sqlite3_stmt *s = NULL;
	int64_t n = 0;

	if (sqlite3_prepare_v2(c->db, "SELECT count(*) FROM objects", -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	vol_reader_put(c);
	return n;
}

/* Every walk starts over (checkpoints ignored) so every key is repaired onto the slots in
 * mask; progress counts the rows of every online disk. */
static void rebuild_start(struct store *st, uint64_t mask)
{
	struct store_scrub *sc = st->scrub;
	struct scrub_rebuild *rb = &sc->rb;
	int64_t total = 0;

	sc->rebuild = true;
	for (int vi = 0; vi < st->nvols; vi++) {
		sc->vol[vi].loaded = false;
		if (vol_online(store_vol(st, vi)))
			total += vol_rows(store_vol(st, vi));
	}
	__atomic_store_n(&rb->objects, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&rb->copied, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&rb->bytes, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&rb->total, total, __ATOMIC_RELAXED);
	__atomic_store_n(&rb->start_ms, mono_ms(), __ATOMIC_RELAXED);
	rb->logged_ms = mono_ms();
	__atomic_or_fetch(&rb->mask, mask, __ATOMIC_RELAXED);
	for (int vi = 0; vi < st->nvols; vi++) {
		if (mask & (1ULL << vi))
			log_info("store_rebuild_start vol=%s id=%s total=%lld msg=\"a new disk joined: a full pass copies its share to it\"",
				 store_vol(st, vi)->path, store_vol(st, vi)->id_hex, (long long)total);
	}
}

static int64_t rebuild_eta_s(const struct scrub_rebuild *rb)
{
	int64_t done = __atomic_load_n(&rb->objects, __ATOMIC_RELAXED);
	int64_t total = __atomic_load_n(&rb->total, __ATOMIC_RELAXED);
	int64_t el = mono_ms() - __atomic_load_n(&rb->start_ms, __ATOMIC_RELAXED);

	if (done <= 0)
		return -1;
	return total > done ? (total - done) * el / done / 1000 : 0;
}

static void rebuild_log(struct store *st, const char *what)
{
	struct scrub_rebuild *rb = &st->scrub->rb;
	uint64_t mask = __atomic_load_n(&rb->mask, __ATOMIC_RELAXED);

	rb->logged_ms = mono_ms();
	for (int vi = 0; vi < st->nvols; vi++) {
		if (!(mask & (1ULL << vi)))
			continue;
		log_info("store_rebuild_%s vol=%s objects=%lld total=%lld copied=%lld bytes=%lld elapsed_s=%lld eta_s=%lld",
			 what, store_vol(st, vi)->path, (long long)rb->objects, (long long)rb->total,
			 (long long)rb->copied, (long long)rb->bytes,
			 (long long)((rb->logged_ms - rb->start_ms) / 1000),
			 (long long)rebuild_eta_s(rb));
	}
}

/* A pass over every volume ended without a new replacement: the rebuild is complete. */
static void rebuild_finish(struct store *st)
{
	struct store_scrub *sc = st->scrub;

	if (!__atomic_load_n(&sc->rb.mask, __ATOMIC_RELAXED))
		return;
	rebuild_log(st, "done");
	__atomic_store_n(&sc->rb.mask, 0, __ATOMIC_RELAXED);
	sc->rebuild = false;
}

/* Takes the wake-up and rebuild requests (store_scrub_wake) at the start of a pass. */
static void scrub_take(struct store *st)
{
	uint64_t req;

	pthread_mutex_lock(&st->mu);
	req = __atomic_exchange_n(&st->scrub_rebuild, 0, __ATOMIC_RELAXED);
	st->scrub_wake = false;
	pthread_mutex_unlock(&st->mu);
	if (req)
		rebuild_start(st, req);
}

static bool rebuild_asked(struct store *st)
{
	return __atomic_load_n(&st->scrub_rebuild, __ATOMIC_RELAXED) != 0;
}

void store_scrub_wake(struct store *st, int rebuild_vi)
{
	pthread_mutex_lock(&st->mu);
	st->scrub_wake = true;
	if (rebuild_vi >= 0)
		__atomic_or_fetch(&st->scrub_rebuild, 1ULL << rebuild_vi, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&st->cv);
	pthread_mutex_unlock(&st->mu);
}

/* One key of volume vi's walk: during a rebuild, a key that only the new disks lack joins
 * the batch of copies; anything else gets the full repair (every placed copy verified). */
static void scrub_key(struct store *st, int vi, const struct scrub_key *k,
		      struct heal_batch *hb, uint64_t fill, struct heal_tally *t)
{
	struct scrub_vol *sv = &st->scrub->vol[vi];
	int fixed = 0, rc;

	if (!scrub_owner(st, vi, k))
		return;
	sv->bytes += k->size * st->replicas;
	if (hb && heal_batch_add(hb, fill, k->bucket, k->key, k->key_len, t))
		return;
	rc = store_heal_count(st, k->bucket, k->key, k->key_len, &fixed);
	t->errors += rc != 0;		/* logged by heal; the walk goes on */
	t->copied += fixed;
	t->bytes += fixed * k->size;
}

/* One batch on volume vi: repairs its keys, advances and saves the checkpoint. Returns the
 * keys read, 0 when the pass over vi is complete (the checkpoint starts over), or -errno. */
static int scrub_step(struct store *st, int vi)
{
	struct scrub_vol *sv = &st->scrub->vol[vi];
	struct scrub_rebuild *rb = &st->scrub->rb;
	uint64_t fill = __atomic_load_n(&rb->mask, __ATOMIC_RELAXED);
	struct vol *v = store_vol(st, vi);
	struct heal_tally t = { 0 };
	struct heal_batch *hb = NULL;
	int n, rc;

	if (!sv->loaded) {
		if ((rc = ckpt_load(v, sv)))
			return rc;
		if (st->scrub->rebuild)
			memset(&sv->at, 0, sizeof(sv->at));
		sv->loaded = true;
		scrub_begin_pass(st, vi, sv);
	}
	if ((n = scrub_read(v, sv, st->scrub->keys)) < 0)
		return n;
	if (fill && n && heal_batch_new(st, &hb))
		hb = NULL;		/* out of memory: the full repair, key by key */
	for (int i = 0; i < n; i++) {
		scrub_key(st, vi, &st->scrub->keys[i], hb, fill, &t);
		__atomic_fetch_add(&sv->objects, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&rb->objects, 1, __ATOMIC_RELAXED);
	}
	/* The copies commit before the checkpoint passes their keys. */
	if (hb)
		heal_batch_commit(hb, &t);
	heal_batch_free(hb);
	if (n)
		sv->at = st->scrub->keys[n - 1];
	sv->errors += t.errors;
	__atomic_fetch_add(&sv->repaired, t.copied, __ATOMIC_RELAXED);
	__atomic_fetch_add(&rb->copied, t.copied, __ATOMIC_RELAXED);
	__atomic_fetch_add(&rb->bytes, t.bytes, __ATOMIC_RELAXED);
	if (fill && mono_ms() - rb->logged_ms >= SCRUB_LOG_MS)
		rebuild_log(st, "progress");
	if (n == 0) {
		scrub_log(st, vi, sv, true);
		memset(&sv->at, 0, sizeof(sv->at));
		__atomic_fetch_add(&sv->pass, 1, __ATOMIC_RELAXED);
		scrub_begin_pass(st, vi, sv);
	} else if (mono_ms() - sv->logged_ms >= SCRUB_LOG_MS) {
		scrub_log(st, vi, sv, false);
	}
	rc = ckpt_save(v, sv);
	return rc ? vol_fault(v, rc, "scrub") : n;
}

void store_scrub_stats(struct store *st, int vi, struct store_disk_status *d)
{
	const struct scrub_vol *sv;

	if (!st->scrub)
		return;
	/* Read without the scrubber's cooperation: figures for humans, a batch apart at worst. */
	sv = &st->scrub->vol[vi];
	d->scrub_pass = __atomic_load_n(&sv->pass, __ATOMIC_RELAXED);
	d->scrub_objects = __atomic_load_n(&sv->objects, __ATOMIC_RELAXED);
	d->scrub_total = __atomic_load_n(&sv->total, __ATOMIC_RELAXED);
	d->scrub_repaired = __atomic_load_n(&sv->repaired, __ATOMIC_RELAXED);
	d->rebuilding = (__atomic_load_n(&st->scrub_rebuild, __ATOMIC_RELAXED) |
			 __atomic_load_n(&st->scrub->rb.mask, __ATOMIC_RELAXED)) & (1ULL << vi);
	d->rebuild_eta_s = -1;
	if (!(__atomic_load_n(&st->scrub->rb.mask, __ATOMIC_RELAXED) & (1ULL << vi)))
		return;		/* not started yet (the scrubber takes it within a batch) */
	d->rebuild_objects = __atomic_load_n(&st->scrub->rb.objects, __ATOMIC_RELAXED);
	d->rebuild_total = __atomic_load_n(&st->scrub->rb.total, __ATOMIC_RELAXED);
	d->rebuild_copied = __atomic_load_n(&st->scrub->rb.copied, __ATOMIC_RELAXED);
	d->rebuild_bytes = __atomic_load_n(&st->scrub->rb.bytes, __ATOMIC_RELAXED);
	d->rebuild_eta_s = rebuild_eta_s(&st->scrub->rb);
}

int store_scrub_once(struct store *st)
{
	int rc = 0;

	scrub_take(st);
	for (int vi = 0; vi < st->nvols && !rc; vi++) {
		int n;

		if (!vol_online(store_vol(st, vi)))
			continue;
		while ((n = scrub_step(st, vi)) > 0)
			;
		rc = n;
	}
	if (!rc)
		rebuild_finish(st);
	return rc;
}

/* Busy for t, then asleep for t * (100 - pct) / pct: the scrubber's reads take at most pct%
 * of the time, so at most pct% of what the disks can deliver. */
static bool scrub_budget(struct store *st, int64_t busy_ms)
{
	int64_t nap = busy_ms * (100 - st->scrub_pct) / st->scrub_pct;

	return store_nap(st, nap < 1 ? 1 : nap > SCRUB_NAP_MAX ? SCRUB_NAP_MAX : nap, NULL);
}

enum walk_end { WALK_DONE, WALK_RESTART, WALK_STOP };

/* Volume vi's walk to the end of its pass (or until it goes offline), within the budget;
 * a replacement meanwhile restarts the whole pass as a rebuild. */
static enum walk_end scrub_walk(struct store *st, int vi)
{
	int n = 1;

	while (n > 0 && vol_online(store_vol(st, vi))) {
		int64_t t0 = mono_ms();

		n = scrub_step(st, vi);
		if (n < 0)
			log_warnx("store_scrub_error vol=%s rc=%d", store_vol(st, vi)->path, n);
		if (scrub_budget(st, mono_ms() - t0))
			return WALK_STOP;
		if (rebuild_asked(st))
			return WALK_RESTART;
	}
	return WALK_DONE;
}

static void *scrub_main(void *arg)
{
	struct store *st = arg;

	if (store_nap(st, SCRUB_START_MS, &st->scrub_wake))
		return NULL;
	for (;;) {
		enum walk_end end = WALK_DONE;

		scrub_take(st);
		for (int vi = 0; vi < st->nvols && end == WALK_DONE; vi++)
			end = scrub_walk(st, vi);
		if (end == WALK_STOP)
			return NULL;
		if (end == WALK_RESTART)
			continue;
		rebuild_finish(st);
		/* Rest, unless a disk returned or was replaced meanwhile. */
		if (store_nap(st, SCRUB_IDLE_MS, &st->scrub_wake))
			return NULL;
	}
}

int store_scrub_start(struct store *st)
{
	uint64_t fresh = 0;
	bool labelled = false;
	int rc;

	st->scrub = calloc(1, sizeof(*st->scrub));
	if (!st->scrub)
		return -ENOMEM;
	/* A replaced (empty, newly labelled) disk among labelled ones: rebuild it now. */
	for (int i = 0; i < st->nvols; i++) {
		if (store_vol(st, i)->fresh && store_vol(st, i)->max_version == 0)
			fresh |= 1ULL << i;
		else
			labelled = true;
	}
	if (labelled)
		st->scrub_rebuild = fresh;
	if (st->scrub_pct <= 0)
		return 0;		/* only store_scrub_once (tests, tools) */
	if ((rc = -pthread_create(&st->scrubber, NULL, scrub_main, st)))
		return rc;
	st->scrubber_on = true;
	return 0;
}

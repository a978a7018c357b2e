/* cbucket.c — the cluster's bucket log (cbucket.h): a sorted array under a mutex, saved
 * whole on every change (buckets change seldom and are few), and the step that makes the
 * local store follow it. */
#include "cbucket.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "../../lib/fileio.h"
#include "../../lib/json.h"
#include "../../lib/log.h"

#define CBUCKET_FILE		"buckets.json"
#define CBUCKET_TOKS		(CBUCKET_MAX * 7 + 8)

struct cbucket {
	pthread_mutex_t mu;
	char path[PATH_MAX];
	struct cbucket_ent *v;		/* sorted by name */
	int n;
	uint64_t last;			/* the highest version seen */
	char *buf;			/* the saved text is made here (CBUCKET_JSON_MAX) */
};

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The index of name, or -(insertion point) - 1. */
static int find(const struct cbucket *b, const char *name)
{
	int lo = 0, hi = b->n - 1;

	while (lo <= hi) {
		int mid = lo + (hi - lo) / 2, c = strcmp(b->v[mid].name, name);

		if (c == 0)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -lo - 1;
}

/* Names come from peers too: the shape a store accepts, and nothing a path could misuse. */
static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > STORE_BUCKET_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == '/' || s[i] == 0x7f)
			return false;
	return true;
}

static bool newer(const struct cbucket_ent *a, const struct cbucket_ent *than)
{
	return a->version > than->version || (a->version == than->version && a->deleted && !than->deleted);
}

static int json_locked(const struct cbucket *b, char *buf, size_t cap)
{
	struct json_w w;

	json_w_init(&w, buf, cap);
	json_w_obj(&w);
	json_w_key(&w, "buckets");
	json_w_arr(&w);
	for (int i = 0; i < b->n; i++) {
		json_w_obj(&w);
		json_w_kstr(&w, "name", b->v[i].name);
		json_w_kint(&w, "version", (int64_t)b->v[i].version);
		json_w_kbool(&w, "deleted", b->v[i].deleted);
		json_w_obj_end(&w);
	}
	json_w_arr_end(&w);
	json_w_obj_end(&w);
	return json_w_end(&w);
}

/* Puts e at index i (an existing entry, or an insertion point), saves, and undoes the
 * change in memory when the save fails: the file and the log never disagree. */
static int put_locked(struct cbucket *b, int i, bool insert, const struct cbucket_ent *e)
{
	struct cbucket_ent old;
	int len, rc;

	if (insert) {
		if (b->n >= CBUCKET_MAX)
			return -ENOSPC;
		memmove(&b->v[i + 1], &b->v[i], (size_t)(b->n - i) * sizeof(*b->v));
		b->n++;
	} else {
		old = b->v[i];
	}
	b->v[i] = *e;
	len = json_locked(b, b->buf, CBUCKET_JSON_MAX);
	rc = len < 0 ? len : file_write_atomic(b->path, b->buf, (size_t)len, 0600);
	if (rc) {
		if (insert) {
			memmove(&b->v[i], &b->v[i + 1], (size_t)(b->n - i - 1) * sizeof(*b->v));
			b->n--;
		} else {
			b->v[i] = old;
		}
		return rc;
	}
	if (e->version > b->last)
		b->last = e->version;
	return 0;
}

int cbucket_record(struct cbucket *b, const struct cbucket_ent *e)
{
	int i, rc;

	if (!name_ok(e->name) || e->version == 0)
		return -EINVAL;
	pthread_mutex_lock(&b->mu);
	i = find(b, e->name);
	if (i >= 0 && !newer(e, &b->v[i]))
		rc = 0;
	else if (!(rc = put_locked(b, i >= 0 ? i : -i - 1, i < 0, e)))
		rc = 1;
	pthread_mutex_unlock(&b->mu);
	return rc;
}

uint64_t cbucket_stamp(struct cbucket *b)
{
	uint64_t now = wall_ms(), v;

	pthread_mutex_lock(&b->mu);
	v = b->last = now > b->last ? now : b->last + 1;
	pthread_mutex_unlock(&b->mu);
	return v;
}

int cbucket_get(struct cbucket *b, const char *name, struct cbucket_ent *out)
{
	int i;

	pthread_mutex_lock(&b->mu);
	i = find(b, name);
	if (i >= 0)
		*out = b->v[i];
	pthread_mutex_unlock(&b->mu);
	return i >= 0 ? 0 : -ENOENT;
}

int cbucket_each(struct cbucket *b, int (*fn)(void *ctx, const struct cbucket_ent *e), void *ctx)
{
	struct cbucket_ent e;
	int rc = 0;

	/* A copy per call, the lock dropped around fn: fn may record, or block. */
	for (int i = 0; !rc; i++) {
		pthread_mutex_lock(&b->mu);
		if (i >= b->n) {
			pthread_mutex_unlock(&b->mu);
			break;
		}
		e = b->v[i];
		pthread_mutex_unlock(&b->mu);
		rc = fn(ctx, &e);
	}
	return rc;
}

int cbucket_json(struct cbucket *b, char *buf, size_t cap)
{
	int len;

	pthread_mutex_lock(&b->mu);
	len = json_locked(b, buf, cap);
	pthread_mutex_unlock(&b->mu);
	return len;
}

int cbucket_parse(const char *text, size_t len,
		  int (*fn)(void *ctx, const struct cbucket_ent *e), void *ctx)
{
	struct json_tok *t = malloc(CBUCKET_TOKS * sizeof(*t));
	int n, arr, rc = 0;

	if (!t)
		return -ENOMEM;
	n = json_parse(text, len, t, CBUCKET_TOKS);
	arr = n > 0 && t[0].type == JSON_OBJ ? json_find(text, t, 0, "buckets") : -1;
	if (arr < 0 || t[arr].type != JSON_ARR)
		rc = -EINVAL;
	for (int k = 0; !rc && k < t[arr].size; k++) {
		struct cbucket_ent e = { .name = "" };
		int o = json_elem(t, arr, k);
		int64_t v;

		if (o < 0 || t[o].type != JSON_OBJ ||
		    json_str(text, t, o, "name", e.name, sizeof(e.name)) ||
		    json_int(text, t, o, "version", &v) || v <= 0 ||
		    json_bool(text, t, o, "deleted", &e.deleted) || !name_ok(e.name)) {
			rc = -EINVAL;
			break;
		}
		e.version = (uint64_t)v;
		rc = fn(ctx, &e);
	}
	free(t);
	return rc;
}

/* Loading keeps entries in memory only: the file is already what they say. */
static int load_one(void *ctx, const struct cbucket_ent *e)
{
	struct cbucket *b = ctx;
	int i = find(b, e->name);

	if (i >= 0) {
		if (newer(e, &b->v[i]))
			b->v[i] = *e;
	} else {
		if (b->n >= CBUCKET_MAX)
			return -E2BIG;
		i = -i - 1;
		memmove(&b->v[i + 1], &b->v[i], (size_t)(b->n - i) * sizeof(*b->v));
		b->v[i] = *e;
		b->n++;
	}
	if (e->version > b->last)
		b->last = e->version;
	return 0;
}

static int adopt_store_bucket(void *ctx, const struct store_bucket *sb)
{
	struct cbucket *b = ctx;
	struct cbucket_ent e = { .version = sb->created_ms > 0 ? (uint64_t)sb->created_ms : 1 };
	int i = find(b, sb->name);

	if (i >= 0)
		return 0;
	snprintf(e.name, sizeof(e.name), "%s", sb->name);
	return put_locked(b, -i - 1, true, &e);
}

static int load(struct cbucket *b, struct store *st)
{
	ssize_t len = file_read_small(b->path, b->buf, CBUCKET_JSON_MAX);
	int rc = len == -ENOENT ? 0 : len < 0 ? (int)len : cbucket_parse(b->buf, (size_t)len, load_one, b);

	/* A damaged log is set aside, not fatal: every entry it held is also in the peers'
	 * logs, and the next repair pass merges them back (the store's buckets carry their
	 * creation times, older than any delete the peers know). */
	if (rc == -EINVAL || rc == -E2BIG) {
		log_errorx("cluster_bucket_log_bad path=%s err=%d msg=\"starting from the store's buckets; peers fill in the rest\"",
			   b->path, rc);
		b->n = 0;
		rc = 0;
	}
	if (!rc && st)
		rc = store_bucket_list(st, adopt_store_bucket, b);
	return rc;
}

int cbucket_open(const char *dir, struct store *st, struct cbucket **out)
{
	struct cbucket *b = calloc(1, sizeof(*b));
	int rc = -ENOMEM;

	if (!b)
		return rc;
	pthread_mutex_init(&b->mu, NULL);
	if (snprintf(b->path, sizeof(b->path), "%s/" CBUCKET_FILE, dir) >= (int)sizeof(b->path))
		rc = -ENAMETOOLONG;
	else if ((b->v = calloc(CBUCKET_MAX, sizeof(*b->v))) && (b->buf = malloc(CBUCKET_JSON_MAX)))
		rc = load(b, st);
	if (rc) {
		cbucket_free(b);
		return rc;
	}
	*out = b;
	return 0;
}

void cbucket_free(struct cbucket *b)
{
	if (!b)
		return;
	pthread_mutex_destroy(&b->mu);
	free(b->v);
	free(b->buf);
	free(b);
}

struct apply_ctx {
	struct store *st;
	int changed;
};

static int apply_one(void *ctx, const struct cbucket_ent *e)
{
	struct apply_ctx *a = ctx;
	struct store_bucket sb;
	int have = store_bucket_get(a->st, e->name, &sb), rc;

	if (have && have != -ENOENT)
		return have;
	if (!e->deleted && have == -ENOENT) {
		rc = store_bucket_create(a->st, e->name);
		if (rc && rc != -EEXIST)
			return rc;
		log_info("cluster_bucket_learned bucket=%s version=%llu", e->name,
			 (unsigned long long)e->version);
		a->changed++;
	} else if (e->deleted && have == 0) {
		rc = store_bucket_delete(a->st, e->name);
		if (rc == -ENOTEMPTY) {
			/* Rows the cluster deleted, not yet repaired here: next time. */
			log_warnx("cluster_bucket_delete_pending bucket=%s msg=\"deleted in the cluster, still holds rows here\"",
				  e->name);
			return 0;
		}
		if (rc && rc != -ENOENT)
			return rc;
		log_info("cluster_bucket_forgot bucket=%s version=%llu", e->name,
			 (unsigned long long)e->version);
		a->changed++;
	}
	return 0;
}

int cbucket_apply(struct cbucket *b, struct store *st)
{
	struct apply_ctx a = { .st = st };
	int rc = cbucket_each(b, apply_one, &a);

	return rc ? rc : a.changed;
}

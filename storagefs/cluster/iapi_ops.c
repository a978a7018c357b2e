/* iapi_ops.c — the internal API's handlers: a replica received in chunks into the store's
 * replica API (or drained when the node already holds that version or a newer one), a
 * tombstone, a replica sent in verified chunks (Range honoured), a page of rows with
 * versions and tombstones, and bucket create/delete/list. */
#include "iapi_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/json.h"
#include "../../lib/log.h"
#include "../../lib/uri.h"

#define LIST_REPLY_START	(256 * 1024)
#define LIST_ROW_JSON		(6 * STORE_KEY_MAX + 256)	/* a row, escapes and all */

static void reply_version(struct ireq *q, uint64_t held)
{
	char hdr[64];

	snprintf(hdr, sizeof(hdr), "X-Cairn-Version: %llu\r\n", (unsigned long long)held);
	q->status = 200;
	if (http1s_write_reply(q->c, 200, NULL, 0, hdr, iapi_keep(q)))
		q->keep_after = false;
}

void iapi_reply_json(struct ireq *q, const char *body, size_t len)
{
	q->status = 200;
	if (http1s_write_reply(q->c, 200, "application/json", (int64_t)len, NULL, iapi_keep(q)) ||
	    tls_write(q->c, body, len))
		q->keep_after = false;
}

/* The object's 404: a tombstone says so, with its version. */
static void reply_absent(struct ireq *q, const struct store_row *row)
{
	char hdrs[IWIRE_HDRS_MAX];
	struct store_bucket b;

	if (row->tomb && iwire_row_headers(row, hdrs, sizeof(hdrs)) > 0)
		return iapi_reply_err(q, IW_NO_SUCH_KEY, "deleted", hdrs);
	if (store_bucket_get(q->st, q->bucket, &b) == -ENOENT)
		return iapi_reply_err(q, IW_NO_SUCH_BUCKET, "no such bucket", NULL);
	iapi_reply_err(q, IW_NO_SUCH_KEY, "no such key", NULL);
}

/* --- PUT: a replica --- */

/* The body into the store; on a failed read nothing is answered (the peer went away). */
static int receive(struct ireq *q, struct store_apply *a, bool *answered)
{
	ssize_t n;
	int rc = 0;

	while ((n = http1s_read_body(q->c, q->m, q->buf, IAPI_CHUNK)) > 0)
		if ((rc = store_apply_write(a, q->buf, (size_t)n)))
			break;
	*answered = n < 0;	/* nobody to answer */
	return n < 0 ? (int)n : rc;
}

void iapi_obj_put(struct ireq *q)
{
	struct store_row row, cur;
	struct store_apply *a;
	uint64_t held;
	bool gone = false;
	int rc;

	if (q->m->h.content_length < 0)
		return iapi_reply_err(q, IW_LENGTH, "Content-Length required", NULL);
	if (iwire_row_parse(q->m, &row) || row.tomb)
		return iapi_reply_err(q, IW_BAD_REQUEST, "bad X-Cairn-* replica headers", NULL);
	if (q->m->h.content_length > STORE_APPLY_MAX)
		return iapi_reply_err(q, IW_TOO_LARGE, "replica too large", NULL);
	row.info.size = q->m->h.content_length;
	rc = store_row_get(q->st, q->bucket, q->key, q->key_len, &cur);
	if (rc == 0 && cur.version >= row.version) {
		/* Newest wins: the bytes are not needed, the connection's end is. */
		if (http1s_drain(q->c, q->m, STORE_APPLY_MAX) == 0)
			reply_version(q, cur.version);
		return;
	}
	if ((rc = store_apply_begin(q->st, q->bucket, q->key, q->key_len, &a)))
		return iapi_reply_err(q, iapi_err_of(rc), strerror(-rc), NULL);
	if ((rc = receive(q, a, &gone))) {
		store_apply_abort(a);
		if (!gone)
			iapi_reply_err(q, iapi_err_of(rc), strerror(-rc), NULL);
		return;
	}
	rc = store_apply_commit(a, &row, &held);
	if (rc < 0)
		return iapi_reply_err(q, iapi_err_of(rc), strerror(-rc), NULL);
	log_debug("iapi_replica peer=%s bucket=%s key_len=%zu version=%llu held=%llu", q->peer,
		  q->bucket, q->key_len, (unsigned long long)row.version, (unsigned long long)held);
	reply_version(q, held);
}

/* --- DELETE: a tombstone --- */

void iapi_obj_delete(struct ireq *q)
{
	struct store_row row;
	uint64_t held;
	int rc;

	if (iwire_row_parse(q->m, &row))
		return iapi_reply_err(q, IW_BAD_REQUEST, "X-Cairn-Version required", NULL);
	rc = store_apply_tomb(q->st, q->bucket, q->key, q->key_len, row.version, &held);
	if (rc < 0)
		return iapi_reply_err(q, iapi_err_of(rc), strerror(-rc), NULL);
	reply_version(q, held);
}

/* --- GET / HEAD --- */

/* "bytes=a-b", "bytes=a-" or "bytes=-n" against size: 1 and [*from, *to], 0 without a
 * Range field, -ERANGE when it cannot be satisfied or is malformed. */
static int range_parse(const struct http1s_msg *m, int64_t size, int64_t *from, int64_t *to)
{
	char v[96], *dash;
	uint64_t a = 0, b = 0;
	bool has_a, has_b;

	if (http1s_field(m, "Range", v, sizeof(v)) < 0)
		return 0;
	if (strncmp(v, "bytes=", 6) != 0 || !(dash = strchr(v + 6, '-')))
		return -ERANGE;
	*dash = '\0';
	has_a = v[6] != '\0';
	has_b = dash[1] != '\0';
	if ((has_a && iwire_u64(v + 6, &a)) || (has_b && iwire_u64(dash + 1, &b)) ||
	    (!has_a && !has_b) || a > INT64_MAX || b > INT64_MAX)
		return -ERANGE;
	if (!has_a) {			/* the last b bytes */
		if (b == 0 || size == 0)
			return -ERANGE;
		*from = (int64_t)b >= size ? 0 : size - (int64_t)b;
		*to = size - 1;
		return 1;
	}
	if ((int64_t)a >= size || (has_b && b < a))
		return -ERANGE;
	*from = (int64_t)a;
	*to = has_b && (int64_t)b < size ? (int64_t)b : size - 1;
	return 1;
}

/* Sends [pos, end) in verified chunks; the first one was read before the status line. A
 * short body ends the connection. */
static void send_body(struct ireq *q, struct store_rep *r, int64_t pos, int64_t end, size_t first)
{
	int rc = tls_write(q->c, q->buf, first);

	for (pos += (int64_t)first; !rc && pos < end; pos += (int64_t)first) {
		first = end - pos < IAPI_CHUNK ? (size_t)(end - pos) : IAPI_CHUNK;
		if ((rc = store_rep_read(r, pos, q->buf, first)) == 0)
			rc = tls_write(q->c, q->buf, first);
		else	/* the peer sees a short body, never bad bytes */
			log_warnx("iapi_read_failed bucket=%s key_len=%zu pos=%lld rc=%d", q->bucket,
				  q->key_len, (long long)pos, rc);
	}
	if (rc)
		q->keep_after = false;
}

static int get_headers(struct ireq *q, const struct store_row *row, int ranged, int64_t from,
		       int64_t to, char *hdrs, size_t cap)
{
	int n = iwire_row_headers(row, hdrs, cap);

	if (n >= 0 && ranged)
		n = snprintf(hdrs + n, cap - (size_t)n, "Content-Range: bytes %lld-%lld/%lld\r\n",
			     (long long)from, (long long)to, (long long)row->info.size);
	return n < 0 || (size_t)n >= cap ? -ENOSPC : 0;
}

void iapi_obj_get(struct ireq *q, bool head)
{
	char hdrs[IWIRE_HDRS_MAX], cr[64];
	struct store_row row;
	struct store_rep *r;
	int64_t from = 0, to = -1;
	size_t first = 0;
	int rc = store_rep_open(q->st, q->bucket, q->key, q->key_len, &row, &r), ranged;

	if (rc == -ENOENT)
		return reply_absent(q, &row);
	if (rc)
		return iapi_reply_err(q, iapi_err_of(rc), strerror(-rc), NULL);
	to = row.info.size - 1;
	if ((ranged = range_parse(q->m, row.info.size, &from, &to)) < 0) {
		snprintf(cr, sizeof(cr), "Content-Range: bytes */%lld\r\n", (long long)row.info.size);
		iapi_reply_err(q, IW_BAD_RANGE, "range not satisfiable", cr);
		goto out_close;
	}
	first = to + 1 - from < IAPI_CHUNK ? (size_t)(to + 1 - from) : IAPI_CHUNK;
	if (!head && first && (rc = store_rep_read(r, from, q->buf, first))) {
		iapi_reply_err(q, IW_INTERNAL, "replica unreadable", NULL);
		goto out_close;
	}
	if (get_headers(q, &row, ranged, from, to, hdrs, sizeof(hdrs))) {
		iapi_reply_err(q, IW_INTERNAL, "headers too large", NULL);
		goto out_close;
	}
	q->status = ranged ? 206 : 200;
	if (http1s_write_reply(q->c, q->status, "application/octet-stream", to + 1 - from,
			       hdrs, iapi_keep(q)))
		q->keep_after = false;
	else if (!head && first)
		send_body(q, r, from, to + 1, first);
out_close:
	store_rep_close(r);
}

/* --- listing --- */

struct list_page {
	struct json_w w;
	int rows;
};

static int list_row(void *ctx, const struct store_row_entry *e)
{
	struct json_w *w = &((struct list_page *)ctx)->w;

	json_w_obj(w);
	json_w_key(w, "key");
	json_w_strn(w, e->key, e->key_len);
	json_w_kint(w, "version", (int64_t)e->version);
	json_w_kint(w, "size", e->tomb ? 0 : e->size);
	json_w_kstr(w, "etag", e->tomb ? "" : e->etag);
	json_w_kint(w, "mtime_ms", e->mtime_ms);
	json_w_kbool(w, "tomb", e->tomb);
	json_w_obj_end(w);
	((struct list_page *)ctx)->rows++;
	return w->overflow ? -ENOSPC : 0;
}

int iapi_param(const struct uri_param *p, int n, const char *name, char *out, size_t max)
{
	const struct uri_param *v = uri_query_get(p, n, name);

	return v ? uri_decode(v->value, v->value_len, out, max, true) : 0;
}

static int list_query(struct ireq *q, char *prefix, int *plen, char *after, int *alen, int *max)
{
	struct uri_param p[URI_MAX_PARAMS];
	char num[16];
	int n = uri_query_parse(q->query, strlen(q->query), p, URI_MAX_PARAMS), k;

	if (n < 0 || (*plen = iapi_param(p, n, "prefix", prefix, STORE_KEY_MAX)) < 0 ||
	    (*alen = iapi_param(p, n, "after", after, STORE_KEY_MAX)) < 0 ||
	    (k = iapi_param(p, n, "max", num, sizeof(num) - 1)) < 0)
		return -EINVAL;
	num[k] = '\0';
	*max = k ? atoi(num) : STORE_ROWS_PAGE_MAX;
	return *max < 1 || *max > STORE_ROWS_PAGE_MAX ? -EINVAL : 0;
}

/* One page into a buffer that doubles until it fits (the page is listed again). */
static int list_build(struct ireq *q, const char *prefix, int plen, const char *after,
		      int alen, int max, char **out, int *len)
{
	size_t cap = LIST_REPLY_START;
	struct list_page pg;
	bool truncated;
	int rc;

	for (;;) {
		char *buf = malloc(cap);

		if (!buf)
			return -ENOMEM;
		pg.rows = 0;
		json_w_init(&pg.w, buf, cap);
		json_w_obj(&pg.w);
		json_w_key(&pg.w, "rows");
		json_w_arr(&pg.w);
		rc = store_rows_list(q->st, q->bucket, prefix, (size_t)plen, after, (size_t)alen,
				     max, list_row, &pg, &truncated);
		json_w_arr_end(&pg.w);
		json_w_kbool(&pg.w, "truncated", truncated);
		json_w_obj_end(&pg.w);
		*len = rc ? rc : json_w_end(&pg.w);
		if (*len >= 0) {
			*out = buf;
			return 0;
		}
		free(buf);
		if (*len != -ENOSPC || cap >= IAPI_LIST_REPLY_MAX)
			return *len;
		cap *= 4;
	}
}

void iapi_list(struct ireq *q)
{
	char *prefix = malloc(STORE_KEY_MAX), *after = malloc(STORE_KEY_MAX), *body = NULL;
	int plen = 0, alen = 0, max = 0, len = 0, rc = prefix && after ? 0 : -ENOMEM;

	if (!rc && list_query(q, prefix, &plen, after, &alen, &max))
		iapi_reply_err(q, IW_BAD_REQUEST, "bad after, prefix or max", NULL);
	else if (!rc && !(rc = list_build(q, prefix, plen, after, alen, max, &body, &len)))
		iapi_reply_json(q, body, (size_t)len);
	if (rc)
		iapi_reply_err(q, iapi_err_of(rc), strerror(-rc), NULL);
	free(body);
	free(prefix);
	free(after);
}

/* --- buckets --- */

/* The change's bucket-log entry: X-Cairn-Version when the caller sent it, else stamped
 * here. 0, or -EINVAL (a malformed version). */
static int bucket_ent(struct ireq *q, bool deleted, struct cbucket_ent *e)
{
	char v[24];

	memset(e, 0, sizeof(*e));
	snprintf(e->name, sizeof(e->name), "%s", q->bucket);
	e->deleted = deleted;
	if (http1s_field(q->m, "X-Cairn-Version", v, sizeof(v)) >= 0)
		return iwire_u64(v, &e->version) || e->version == 0 || e->version > INT64_MAX ? -EINVAL : 0;
	e->version = cbucket_stamp(q->buckets);
	return 0;
}

void iapi_bucket_put(struct ireq *q)
{
	struct cbucket_ent e, cur;
	int rc;

	if (q->buckets) {
		if (bucket_ent(q, false, &e))
			return iapi_reply_err(q, IW_BAD_REQUEST, "bad X-Cairn-Version", NULL);
		if ((rc = cbucket_record(q->buckets, &e)) < 0)
			return iapi_reply_err(q, iapi_err_of(rc), "cannot log the bucket", NULL);
		/* A delete newer than this create: the create lost (a late or replayed one). */
		if (rc == 0 && !cbucket_get(q->buckets, q->bucket, &cur) && cur.deleted)
			return iapi_reply_err(q, IW_NO_SUCH_BUCKET, "deleted later in the cluster", NULL);
	}
	rc = store_bucket_create(q->st, q->bucket);
	if (rc)
		return iapi_reply_err(q, iapi_err_of(rc), rc == -EEXIST ? "bucket exists" :
				      strerror(-rc), NULL);
	log_info("iapi_bucket_created peer=%s bucket=%s", q->peer, q->bucket);
	iapi_reply_json(q, "{}\n", 3);
}

void iapi_bucket_delete(struct ireq *q)
{
	struct cbucket_ent e;
	int rc;

	if (q->buckets && bucket_ent(q, true, &e))
		return iapi_reply_err(q, IW_BAD_REQUEST, "bad X-Cairn-Version", NULL);
	rc = store_bucket_delete(q->st, q->bucket);
	/* Logged also where the bucket never was: that node must not learn it from a stale peer. */
	if ((!rc || rc == -ENOENT) && q->buckets) {
		int err = cbucket_record(q->buckets, &e);

		if (err < 0)
			return iapi_reply_err(q, iapi_err_of(err), "cannot log the bucket", NULL);
	}
	if (rc)
		return iapi_reply_err(q, iapi_err_of(rc), rc == -ENOTEMPTY ? "bucket not empty" :
				      strerror(-rc), NULL);
	log_info("iapi_bucket_deleted peer=%s bucket=%s", q->peer, q->bucket);
	iapi_reply_json(q, "{}\n", 3);
}

static int bucket_row(void *ctx, const struct store_bucket *b)
{
	struct json_w *w = ctx;

	json_w_obj(w);
	json_w_kstr(w, "name", b->name);
	json_w_kint(w, "created_ms", b->created_ms);
	json_w_obj_end(w);
	return w->overflow ? -ENOSPC : 0;
}

void iapi_buckets(struct ireq *q)
{
	struct json_w w;
	int rc, len;

	/* Buckets are few (names <= 63 bytes): the chunk buffer holds thousands. */
	json_w_init(&w, (char *)q->buf, IAPI_CHUNK);
	json_w_obj(&w);
	json_w_key(&w, "buckets");
	json_w_arr(&w);
	rc = store_bucket_list(q->st, bucket_row, &w);
	json_w_arr_end(&w);
	json_w_obj_end(&w);
	len = rc ? rc : json_w_end(&w);
	if (len < 0)
		return iapi_reply_err(q, iapi_err_of(len), "cannot list buckets", NULL);
	iapi_reply_json(q, (const char *)q->buf, (size_t)len);
}

void iapi_bucket_log(struct ireq *q)
{
	char *buf;
	int len;

	if (!q->buckets)
		return iapi_reply_json(q, "{\"buckets\": []}\n", 16);
	/* Rare (once per repair pass per peer) and up to CBUCKET_JSON_MAX: its own buffer. */
	if (!(buf = malloc(CBUCKET_JSON_MAX)))
		return iapi_reply_err(q, IW_INTERNAL, "out of memory", NULL);
	len = cbucket_json(q->buckets, buf, CBUCKET_JSON_MAX);
	if (len < 0)
		iapi_reply_err(q, iapi_err_of(len), "cannot write the bucket log", NULL);
	else
		iapi_reply_json(q, buf, (size_t)len);
	free(buf);
}

/* iapi_mpu.c — the internal API of a multipart upload at its home node (docs/CLUSTER.md,
 * "Multipart"): another node forwards the parts it receives, the Complete, the Abort and
 * ListParts of an upload this node created. The upload id here is this node's own. */
#include "iapi_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/json.h"
#include "../../lib/log.h"

#define MPU_PARTS_TOKS	(8 + 5 * STORE_PARTS_MAX)
#define MPU_LIST_JSON	(STORE_KEY_MAX * 6 + 1000 * 160 + 256)

static enum iwire_err mpu_err(int rc)
{
	switch (rc) {
	case -ENOENT: return IW_NO_SUCH_UPLOAD;
	case -EINVAL: return IW_INVALID_PART;
	case -EDOM: return IW_PART_ORDER;
	case -ERANGE: return IW_PART_SMALL;
	default: return iapi_err_of(rc);
	}
}

static void reply_info(struct ireq *q, const struct store_objinfo *info)
{
	char body[256];
	struct json_w w;
	int len;

	json_w_init(&w, body, sizeof(body));
	json_w_obj(&w);
	json_w_kstr(&w, "etag", info->etag);
	json_w_kint(&w, "size", info->size);
	json_w_kint(&w, "mtime_ms", info->mtime_ms);
	json_w_kint(&w, "nparts", info->nparts);
	json_w_obj_end(&w);
	if ((len = json_w_end(&w)) < 0)
		return iapi_reply_err(q, IW_INTERNAL, "reply too large", NULL);
	iapi_reply_json(q, body, (size_t)len);
}

/* PUT ?part=N: the part's bytes, its ETag (the S3 layer's MD5) in X-Cairn-ETag. */
void iapi_mpu_part(struct ireq *q, int part_no)
{
	struct store_objinfo info = { .meta_len = 0 };
	struct store_put *sp;
	ssize_t n;
	int rc;

	if (q->m->h.content_length < 0)
		return iapi_reply_err(q, IW_LENGTH, "Content-Length required", NULL);
	if (http1s_field(q->m, "X-Cairn-ETag", info.etag, sizeof(info.etag)) <= 0)
		return iapi_reply_err(q, IW_BAD_REQUEST, "X-Cairn-ETag required", NULL);
	if ((rc = store_part_begin(q->st, q->bucket, q->key, part_no, &sp)))
		return iapi_reply_err(q, mpu_err(rc), strerror(-rc), NULL);
	rc = 0;
	while (!rc && (n = http1s_read_body(q->c, q->m, q->buf, IAPI_CHUNK)) > 0)
		rc = store_put_write(sp, q->buf, (size_t)n);
	if (rc || n < 0 || store_put_size(sp) != q->m->h.content_length) {
		store_put_abort(sp);
		if (n >= 0)	/* else nobody to answer */
			iapi_reply_err(q, iapi_err_of(rc ? rc : -EPROTO), "part not stored", NULL);
		return;
	}
	if ((rc = store_put_commit(sp, &info)) < 0)
		return iapi_reply_err(q, mpu_err(rc), strerror(-rc), NULL);
	reply_info(q, &info);
}

/* The part list: {"parts": [{"n": 1, "etag": "..."}, ...]}. */
static int parts_parse(const char *text, size_t len, struct store_mpu_part *parts, int *n)
{
	struct json_tok *t = malloc(MPU_PARTS_TOKS * sizeof(*t));
	int arr, rc = 0;

	if (!t)
		return -ENOMEM;
	*n = 0;
	if (json_parse(text, len, t, MPU_PARTS_TOKS) < 1 || t[0].type != JSON_OBJ ||
	    (arr = json_find(text, t, 0, "parts")) < 0 || t[arr].type != JSON_ARR ||
	    t[arr].size > STORE_PARTS_MAX)
		rc = -EINVAL;
	for (int k = 0; !rc && k < t[arr].size; k++) {
		int o = json_elem(t, arr, k);
		int64_t no;

		if (json_int(text, t, o, "n", &no) || no < 1 || no > STORE_PARTS_MAX ||
		    json_str(text, t, o, "etag", parts[k].etag, sizeof(parts[k].etag)))
			rc = -EINVAL;
		parts[k].part_no = (int)no;
		*n = k + 1;
	}
	free(t);
	return rc;
}

/* POST ?complete: the part list in the body; the object made here and replicated. */
void iapi_mpu_complete(struct ireq *q)
{
	struct store_mpu_part *parts = NULL;
	struct store_objinfo *info = NULL;
	char *body = NULL;
	size_t len = 0;
	ssize_t n = 1;
	int np, rc;

	if (!q->cfg->mpu_complete)
		return iapi_reply_err(q, IW_NOT_FOUND, "uploads are not served here", NULL);
	if (q->m->h.content_length < 0 || q->m->h.content_length > IWIRE_COMPLETE_MAX)
		return iapi_reply_err(q, IW_LENGTH, "Content-Length required (at most 1 MiB)", NULL);
	body = malloc((size_t)q->m->h.content_length + 1);
	parts = calloc(STORE_PARTS_MAX, sizeof(*parts));
	info = calloc(1, sizeof(*info));
	if (!body || !parts || !info) {
		iapi_reply_err(q, IW_INTERNAL, "out of memory", NULL);
		goto out;
	}
	while (n > 0 && len < (size_t)q->m->h.content_length)
		if ((n = http1s_read_body(q->c, q->m, body + len, (size_t)q->m->h.content_length - len)) > 0)
			len += (size_t)n;
	if (n < 0)
		goto out;	/* the peer went away */
	if (parts_parse(body, len, parts, &np) || np == 0) {
		iapi_reply_err(q, IW_BAD_REQUEST, "bad part list", NULL);
		goto out;
	}
	rc = q->cfg->mpu_complete(q->cfg->mpu_ctx, q->bucket, q->key, parts, np, info);
	if (rc < 0) {
		iapi_reply_err(q, mpu_err(rc), strerror(-rc), NULL);
		goto out;
	}
	log_info("iapi_mpu_completed peer=%s bucket=%s upload=%s parts=%d", q->peer, q->bucket,
		 q->key, np);
	reply_info(q, info);
out:
	free(info);
	free(parts);
	free(body);
}

void iapi_mpu_abort(struct ireq *q)
{
	int rc = store_mpu_abort(q->st, q->bucket, q->key);

	if (rc < 0)
		return iapi_reply_err(q, mpu_err(rc), strerror(-rc), NULL);
	iapi_reply_json(q, "{}\n", 3);
}

static int part_json(void *ctx, const struct store_mpu_part *p)
{
	struct json_w *w = ctx;

	json_w_obj(w);
	json_w_kint(w, "n", p->part_no);
	json_w_kstr(w, "etag", p->etag);
	json_w_kint(w, "size", p->size);
	json_w_kint(w, "mtime_ms", p->mtime_ms);
	json_w_obj_end(w);
	return w->overflow ? -ENOSPC : 0;
}

/* An optional decimal parameter in [lo, hi] into *out: 0, or -1 when malformed. */
static int query_int(const struct uri_param *p, int n, const char *name, int lo, int hi, int *out)
{
	char num[16], *end;
	int len = iapi_param(p, n, name, num, sizeof(num) - 1);
	long v;

	if (len <= 0)
		return len;
	num[len] = '\0';
	v = strtol(num, &end, 10);
	if (*end || v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

/* GET ?after=N&max=M: {"key": ..., "parts": [...], "truncated": bool}. */
void iapi_mpu_parts(struct ireq *q)
{
	char key[STORE_KEY_MAX], *body = malloc(MPU_LIST_JSON);
	struct uri_param p[URI_MAX_PARAMS];
	int n = uri_query_parse(q->query, strlen(q->query), p, URI_MAX_PARAMS), after = 0;
	int max = 1000, rc, len;
	size_t key_len;
	bool truncated = false;
	struct json_w w;

	if (!body)
		return iapi_reply_err(q, IW_INTERNAL, "out of memory", NULL);
	if (n < 0 || query_int(p, n, "after", 0, STORE_PARTS_MAX, &after) ||
	    query_int(p, n, "max", 0, 1000, &max)) {
		iapi_reply_err(q, IW_BAD_REQUEST, "bad after or max", NULL);
		goto out;
	}
	if ((rc = store_mpu_get(q->st, q->bucket, q->key, key, &key_len))) {
		iapi_reply_err(q, mpu_err(rc), strerror(-rc), NULL);
		goto out;
	}
	json_w_init(&w, body, MPU_LIST_JSON);
	json_w_obj(&w);
	json_w_key(&w, "key");
	json_w_strn(&w, key, key_len);
	json_w_key(&w, "parts");
	json_w_arr(&w);
	rc = max ? store_mpu_list_parts(q->st, q->bucket, q->key, after, max, part_json, &w,
					&truncated) : 0;
	json_w_arr_end(&w);
	json_w_kbool(&w, "truncated", truncated);
	json_w_obj_end(&w);
	if (rc < 0 || (len = json_w_end(&w)) < 0) {
		iapi_reply_err(q, IW_INTERNAL, "cannot list the parts", NULL);
		goto out;
	}
	iapi_reply_json(q, body, (size_t)len);
out:
	free(body);
}

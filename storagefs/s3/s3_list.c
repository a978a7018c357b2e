/* s3_list.c — listing a bucket: ListObjects (v1), ListObjectsV2 and ListObjectVersions
 * (an unversioned bucket: each object once, version "null"). The store does the ordered
 * walk with prefix/delimiter roll-up; this file turns parameters and entries into XML. */
#include "s3_req.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/log.h"

enum list_kind { LIST_V1, LIST_V2, LIST_VERSIONS };

struct list_req {
	struct s3_req *r;
	enum list_kind kind;
	bool url;		/* encoding-type=url */
	bool owner;		/* v1 and versions always; v2 with fetch-owner=true */
	int count;
	char prefix[STORE_KEY_MAX + 1];
	char delim[64];
	char after[STORE_KEY_MAX + 1];	/* marker / start-after / decoded token */
	char start_after[STORE_KEY_MAX + 1];
	char last[STORE_KEY_MAX + 1];	/* the last key or prefix reported */
	size_t last_len;
	struct store_list_query q;
	struct list_job *pre;	/* a cluster's listing, gathered on a worker */
};

/* A cluster's listing waits for the network on a worker: the entries are gathered there
 * and replayed into the XML on the loop. */
struct list_ent {
	char *key;
	size_t key_len;
	bool is_prefix;
	int64_t size, mtime_ms;
	char etag[STORE_ETAG_MAX + 1];
};

struct list_job {
	struct list_req l;
	const char *root;
	struct list_ent *ents;
	int n, cap, err;
	bool truncated;
};

static int list_entry(void *ctx, const struct store_list_entry *e)
{
	struct list_req *l = ctx;
	struct s3_req *r = l->r;
	char date[32];

	memcpy(l->last, e->key, e->key_len);
	l->last_len = e->key_len;
	l->count++;
	if (e->is_prefix) {
		http_resp_bodyf(r->c, "<CommonPrefixes>");
		s3_xml_key(r, "Prefix", e->key, e->key_len, l->url);
		http_resp_bodyf(r->c, "</CommonPrefixes>");
		return 0;
	}
	s3_iso_date(e->mtime_ms, date);
	http_resp_bodyf(r->c, l->kind == LIST_VERSIONS ? "<Version>" : "<Contents>");
	s3_xml_key(r, "Key", e->key, e->key_len, l->url);
	if (l->kind == LIST_VERSIONS)
		http_resp_bodyf(r->c, "<VersionId>null</VersionId><IsLatest>true</IsLatest>");
	http_resp_bodyf(r->c, "<LastModified>%s</LastModified><ETag>&quot;%s&quot;</ETag><Size>%lld</Size>",
			date, e->etag, (long long)e->size);
	if (l->owner)
		s3_xml_owner(r);
	http_resp_bodyf(r->c, "<StorageClass>STANDARD</StorageClass>%s",
			l->kind == LIST_VERSIONS ? "</Version>" : "</Contents>");
	return 0;
}

/* Reads a decoded parameter into out; false (after answering) when it is malformed. */
static bool param(struct s3_req *r, const char *name, char *out, size_t max, size_t *len)
{
	int n = s3_param_str(r, name, out, max);

	if (n == -2) {
		s3_error_msg(r, S3E_INVALID_ARGUMENT, name);
		return false;
	}
	*len = n < 0 ? 0 : (size_t)n;
	if (n < 0)
		out[0] = 0;
	return true;
}

/* Parameters common to the three forms; false when it answered with an error. */
static bool list_params(struct list_req *l, const char *after_param)
{
	struct s3_req *r = l->r;
	char enc[8];
	size_t n;

	if (!param(r, "prefix", l->prefix, sizeof(l->prefix), &l->q.prefix_len) ||
	    !param(r, "delimiter", l->delim, sizeof(l->delim), &l->q.delim_len) ||
	    !param(r, after_param, l->after, sizeof(l->after), &l->q.after_len) ||
	    !param(r, "encoding-type", enc, sizeof(enc), &n) ||
	    !s3_param_int(r, "max-keys", S3_LIST_MAX, S3_LIST_MAX, &l->q.max))
		return false;
	if (n && strcmp(enc, "url") != 0) {
		s3_error_msg(r, S3E_INVALID_ARGUMENT, "Invalid Encoding Method specified in Request");
		return false;
	}
	l->url = n != 0;
	l->q.prefix = l->prefix;
	l->q.delim = l->delim;
	l->q.after = l->after;
	return true;
}

static void list_run(struct list_req *l, const char *root)
{
	struct s3_req *r = l->r;
	bool truncated = false;
	int err = 0;

	s3_xml_begin(r, 200);
	http_resp_bodyf(r->c, "<%s xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>%s</Name>",
			root, r->bucket);
	s3_xml_key(r, "Prefix", l->prefix, l->q.prefix_len, l->url);
	if (l->q.delim_len)
		s3_xml_key(r, "Delimiter", l->delim, l->q.delim_len, l->url);
	http_resp_bodyf(r->c, "<MaxKeys>%d</MaxKeys>", l->q.max);
	if (l->url)
		http_resp_bodyf(r->c, "<EncodingType>url</EncodingType>");
	if (l->pre) {
		for (int i = 0; i < l->pre->n; i++) {
			const struct list_ent *g = &l->pre->ents[i];
			struct store_list_entry e = { g->key, g->key_len, g->is_prefix, g->size,
						      g->mtime_ms, g->etag };

			list_entry(l, &e);
		}
		truncated = l->pre->truncated;
		err = l->pre->err;
	} else if (l->q.max > 0) {
		err = cstore_list(r->s3->cfg.store, r->bucket, &l->q, list_entry, l, &truncated);
	}
	if (err < 0)
		log_warnx("s3_list_failed bucket=%s err=%d request_id=%s", r->bucket, err,
			  r->request_id);
	http_resp_bodyf(r->c, "<IsTruncated>%s</IsTruncated>", truncated ? "true" : "false");
	if (l->kind == LIST_V1) {
		s3_xml_key(r, "Marker", l->after, l->q.after_len, l->url);
		if (truncated)
			s3_xml_key(r, "NextMarker", l->last, l->last_len, l->url);
	} else if (l->kind == LIST_VERSIONS) {
		s3_xml_key(r, "KeyMarker", l->after, l->q.after_len, l->url);
		http_resp_bodyf(r->c, "<VersionIdMarker></VersionIdMarker>");
		if (truncated) {
			s3_xml_key(r, "NextKeyMarker", l->last, l->last_len, l->url);
			http_resp_bodyf(r->c, "<NextVersionIdMarker>null</NextVersionIdMarker>");
		}
	} else {
		char *tok = (char *)http_conn_scratch(r->c) + HTTP_SCRATCH / 4;
		char sa[STORE_KEY_MAX + 1];
		int san = s3_param_str(r, "start-after", sa, sizeof(sa));

		http_resp_bodyf(r->c, "<KeyCount>%d</KeyCount>", l->count);
		if (s3_param(r, "continuation-token")) {
			const struct uri_param *p = s3_param(r, "continuation-token");
			int n = uri_decode(p->value, p->value_len, tok, HTTP_SCRATCH / 8, false);
			s3_xml_text(r, "ContinuationToken", tok, n > 0 ? (size_t)n : 0);
		}
		if (san >= 0)
			s3_xml_key(r, "StartAfter", sa, (size_t)san, l->url);
		if (truncated) {
			size_t n = base64_encode((unsigned char *)l->last, l->last_len, tok);
			http_resp_bodyf(r->c, "<NextContinuationToken>%.*s</NextContinuationToken>",
					(int)n, tok);
		}
	}
	http_resp_bodyf(r->c, "</%s>", root);
	s3_send(r);
}

/* The list state lives at the top of the loop's scratch buffer (the XML helpers use
 * only its lower half for escaping), so a listing allocates nothing. */
static struct list_req *list_state(struct s3_req *r)
{
	struct list_req *l = (struct list_req *)((char *)http_conn_scratch(r->c) + HTTP_SCRATCH -
						 sizeof(struct list_req));

	memset(l, 0, sizeof(*l));
	return l;
}

static void list_job_free(void *p)
{
	struct list_job *j = p;

	for (int i = 0; i < j->n; i++)
		free(j->ents[i].key);
	free(j->ents);
	free(j);
}

static int list_gather(void *ctx, const struct store_list_entry *e)
{
	struct list_job *j = ctx;
	struct list_ent *g;

	if (j->n == j->cap) {
		int cap = j->cap ? 2 * j->cap : 64;
		struct list_ent *n = realloc(j->ents, (size_t)cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		j->ents = n;
		j->cap = cap;
	}
	g = &j->ents[j->n];
	if (!(g->key = malloc(e->key_len + 1)))
		return -ENOMEM;
	memcpy(g->key, e->key, e->key_len);
	g->key_len = e->key_len;
	g->is_prefix = e->is_prefix;
	g->size = e->size;
	g->mtime_ms = e->mtime_ms;
	snprintf(g->etag, sizeof(g->etag), "%s", e->etag ? e->etag : "");
	j->n++;
	return 0;
}

/* The query's strings point into the list state they live in. */
static void list_fix(struct list_req *l)
{
	l->q.prefix = l->prefix;
	l->q.delim = l->delim;
	l->q.after = l->after;
}

static void list_work(struct s3_req *r)
{
	struct list_job *j = r->job;

	list_fix(&j->l);
	if (j->l.q.max > 0)
		j->err = cstore_list(r->s3->cfg.store, r->bucket, &j->l.q, list_gather, j,
				     &j->truncated);
}

static void list_done(struct s3_req *r)
{
	struct list_job *j = r->job;
	struct list_req *l = list_state(r);

	*l = j->l;
	list_fix(l);
	l->r = r;
	l->pre = j;
	list_run(l, j->root);
}

static void list_start(struct list_req *l, const char *root)
{
	struct s3_req *r = l->r;
	struct list_job *j;

	if (!cstore_remote(r->s3->cfg.store)) {
		list_run(l, root);
		return;
	}
	if (!(j = calloc(1, sizeof(*j)))) {
		s3_error(r, S3E_INTERNAL);
		return;
	}
	j->l = *l;
	j->root = root;
	r->job = j;
	r->job_free = list_job_free;
	s3_offload(r, list_work, list_done);
}

/* Listing a missing bucket must say so before any XML is written. */
static bool bucket_ok(struct s3_req *r)
{
	struct store_bucket b;
	int err = cstore_bucket_get(r->s3->cfg.store, r->bucket, &b);

	if (err < 0) {
		s3_error(r, err == -ENOENT ? S3E_NO_SUCH_BUCKET : S3E_INTERNAL);
		return false;
	}
	return true;
}

void s3_list_objects(struct s3_req *r)
{
	struct list_req *l = list_state(r);

	l->r = r;
	l->kind = LIST_V1;
	l->owner = true;
	if (!list_params(l, "marker") || !bucket_ok(r))
		return;
	list_start(l, "ListBucketResult");
}

void s3_list_object_versions(struct s3_req *r)
{
	struct list_req *l = list_state(r);

	l->r = r;
	l->kind = LIST_VERSIONS;
	l->owner = true;
	if (!list_params(l, "key-marker") || !bucket_ok(r))
		return;
	list_start(l, "ListVersionsResult");
}

void s3_list_objects_v2(struct s3_req *r)
{
	struct list_req *l = list_state(r);
	char v[8];
	const struct uri_param *tok;

	l->r = r;
	l->kind = LIST_V2;
	if (s3_param_str(r, "list-type", v, sizeof(v)) < 0 || strcmp(v, "2") != 0) {
		s3_error_msg(r, S3E_INVALID_ARGUMENT, "Invalid list-type");
		return;
	}
	l->owner = s3_param_str(r, "fetch-owner", v, sizeof(v)) > 0 && strcmp(v, "true") == 0;
	if (!list_params(l, "start-after"))
		return;
	tok = s3_param(r, "continuation-token");
	if (tok) {
		char raw[2 * STORE_KEY_MAX];
		int n = uri_decode(tok->value, tok->value_len, raw, sizeof(raw), false);

		n = n < 0 ? -1 : base64_decode(raw, (size_t)n, (unsigned char *)l->after,
					       STORE_KEY_MAX);
		if (n < 0) {
			s3_error_msg(r, S3E_INVALID_ARGUMENT, "The continuation token provided is incorrect");
			return;
		}
		l->q.after_len = (size_t)n;
	}
	if (!bucket_ok(r))
		return;
	list_start(l, "ListBucketResult");
}

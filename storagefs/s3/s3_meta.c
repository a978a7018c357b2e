/* s3_meta.c — an object's stored HTTP headers (Content-Type & co. and x-amz-meta-*) in
 * the store's opaque meta blob, the date formats S3 speaks, conditional requests and
 * byte ranges.
 * Meta blob format: repeated "name\0value\0", names lower-case, in request order. */
#include "s3_req.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *const stored_headers[] = {
	"content-type", "content-encoding", "content-disposition", "content-language",
	"cache-control", "expires",
};

static bool meta_append(struct store_objinfo *info, const char *name, size_t nlen,
			const char *val, size_t vlen)
{
	if (info->meta_len + nlen + vlen + 2 > STORE_META_MAX)
		return false;
	for (size_t i = 0; i < nlen; i++)
		info->meta[info->meta_len++] = (unsigned char)tolower((unsigned char)name[i]);
	info->meta[info->meta_len++] = 0;
	memcpy(info->meta + info->meta_len, val, vlen);
	info->meta_len += vlen;
	info->meta[info->meta_len++] = 0;
	return true;
}

/* Content-Encoding without the "aws-chunked" token S3 strips from stored objects. */
static size_t strip_aws_chunked(const char *v, size_t len, char *out)
{
	size_t o = 0, i = 0;

	while (i < len) {
		size_t s = i, e;

		while (i < len && v[i] != ',')
			i++;
		e = i++;
		while (s < e && v[s] == ' ')
			s++;
		while (e > s && v[e - 1] == ' ')
			e--;
		if (e - s == 11 && strncasecmp(v + s, "aws-chunked", 11) == 0)
			continue;
		if (e == s)
			continue;
		if (o)
			out[o++] = ',';
		memcpy(out + o, v + s, e - s);
		o += e - s;
	}
	return o;
}

enum s3_err s3_meta_from_request(struct s3_req *r, struct store_objinfo *info)
{
	size_t user = 0;
	char enc[512];

	info->meta_len = 0;
	for (int i = 0; i < r->h->nhdr; i++) {
		const struct http_header *h = &r->h->hdr[i];
		bool keep = h->name_len > 11 && strncasecmp(h->name, "x-amz-meta-", 11) == 0;
		const char *val = h->value;
		size_t vlen = h->value_len;

		if (keep) {
			user += h->name_len - 11 + h->value_len;
			if (user > S3_USER_META_MAX)
				return S3E_METADATA_TOO_LARGE;
		}
		for (size_t j = 0; !keep && j < sizeof(stored_headers) / sizeof(char *); j++)
			keep = strlen(stored_headers[j]) == h->name_len &&
			       strncasecmp(h->name, stored_headers[j], h->name_len) == 0;
		if (!keep)
			continue;
		if (h->name_len == 16 && strncasecmp(h->name, "content-encoding", 16) == 0) {
			if (vlen >= sizeof(enc))
				return S3E_METADATA_TOO_LARGE;
			vlen = strip_aws_chunked(val, vlen, enc);
			val = enc;
			if (!vlen)
				continue;
		}
		if (!meta_append(info, h->name, h->name_len, val, vlen))
			return S3E_METADATA_TOO_LARGE;
	}
	return S3E_COUNT;
}

/* The response-* query overrides (GetObject), keyed by the header they replace. */
static const struct { const char *param; const char *header; } overrides[] = {
	{ "response-content-type", "Content-Type" },
	{ "response-content-language", "Content-Language" },
	{ "response-expires", "Expires" },
	{ "response-cache-control", "Cache-Control" },
	{ "response-content-disposition", "Content-Disposition" },
	{ "response-content-encoding", "Content-Encoding" },
};

static bool overridden(struct s3_req *r, const char *name)
{
	for (size_t i = 0; i < sizeof(overrides) / sizeof(overrides[0]); i++)
		if (strcasecmp(name, overrides[i].header) == 0 && s3_param(r, overrides[i].param))
			return true;
	return false;
}

void s3_meta_to_response(struct s3_req *r, const struct store_objinfo *info)
{
	const unsigned char *p = info->meta, *end = info->meta + info->meta_len;
	bool have_type = false;
	char val[1024];

	while (p < end) {
		const char *name = (const char *)p;
		const char *v = name + strlen(name) + 1;

		if ((const unsigned char *)v >= end)
			break;
		p = (const unsigned char *)v + strlen(v) + 1;
		if (strcmp(name, "content-type") == 0)
			have_type = true;
		if (!overridden(r, name))
			http_resp_header(r->c, name, v);
	}
	if (!have_type && !overridden(r, "content-type"))
		http_resp_header(r->c, "Content-Type", "binary/octet-stream");
	for (size_t i = 0; i < sizeof(overrides) / sizeof(overrides[0]); i++)
		if (s3_param_str(r, overrides[i].param, val, sizeof(val)) >= 0)
			http_resp_header(r->c, overrides[i].header, val);
}

/* --- dates --- */

void s3_http_date(int64_t ms, char out[32])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

void s3_iso_date(int64_t ms, char out[32])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char base[24];

	gmtime_r(&t, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 32, "%s.%03dZ", base, (int)(ms % 1000));
}

int64_t s3_parse_http_date(const char *s)
{
	static const char *const fmts[] = {
		"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y",
		"%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.000Z",
	};

	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		struct tm tm;
		const char *end;

		memset(&tm, 0, sizeof(tm));
		end = strptime(s, fmts[i], &tm);
		if (end && *end == 0)
			return (int64_t)timegm(&tm);
	}
	return -1;
}

/* --- conditions --- */

/* Whether an If-Match / If-None-Match list names the ETag ("*" matches any). */
static bool etag_listed(const char *list, const char *etag)
{
	size_t elen = strlen(etag);
	const char *p = list;

	while (*p) {
		const char *s, *e;

		while (*p == ' ' || *p == ',')
			p++;
		if (!*p)
			break;
		s = p;
		while (*p && *p != ',')
			p++;
		e = p;
		while (e > s && e[-1] == ' ')
			e--;
		if (e - s >= 2 && s[0] == 'W' && s[1] == '/')
			s += 2;
		if (e - s == 1 && *s == '*')
			return true;
		if (e - s >= 2 && *s == '"' && e[-1] == '"') {
			s++;
			e--;
		}
		if ((size_t)(e - s) == elen && memcmp(s, etag, elen) == 0)
			return true;
	}
	return false;
}

static int cond_header(struct s3_req *r, const char *prefix, const char *name, char *out,
		       size_t max)
{
	char full[64];

	snprintf(full, sizeof(full), "%s%s", prefix, name);
	return s3_header_str(r, full, out, max);
}

enum s3_err s3_check_conditions(struct s3_req *r, const char *prefix,
				const struct store_objinfo *info)
{
	char v[512];
	int64_t t, mtime = info->mtime_ms / 1000;
	bool copy = *prefix != 0;
	bool match_ok = false, none_match_failed = false;

	if (cond_header(r, prefix, "if-match", v, sizeof(v)) >= 0) {
		if (!etag_listed(v, info->etag))
			return S3E_PRECONDITION_FAILED;
		match_ok = true;
	}
	if (!match_ok && cond_header(r, prefix, "if-unmodified-since", v, sizeof(v)) >= 0 &&
	    (t = s3_parse_http_date(v)) >= 0 && mtime > t)
		return S3E_PRECONDITION_FAILED;
	if (cond_header(r, prefix, "if-none-match", v, sizeof(v)) >= 0) {
		if (etag_listed(v, info->etag))
			none_match_failed = true;
	}
	if (none_match_failed)
		return (copy || (r->h->method != HTTP_GET && r->h->method != HTTP_HEAD))
		       ? S3E_PRECONDITION_FAILED : S3E_NOT_MODIFIED;
	if (cond_header(r, prefix, "if-none-match", v, sizeof(v)) < 0 &&
	    cond_header(r, prefix, "if-modified-since", v, sizeof(v)) >= 0 &&
	    (t = s3_parse_http_date(v)) >= 0 && mtime <= t && t <= time(NULL))
		return copy ? S3E_PRECONDITION_FAILED : S3E_NOT_MODIFIED;
	return S3E_COUNT;
}

/* --- ranges --- */

static bool parse_i64(const char *s, const char *e, int64_t *out)
{
	int64_t v = 0;

	if (s == e)
		return false;
	for (; s < e; s++) {
		if (*s < '0' || *s > '9' || v > (INT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (*s - '0');
	}
	*out = v;
	return true;
}

int s3_parse_range(const char *v, size_t len, int64_t size, int64_t *start, int64_t *end)
{
	const char *p = v, *e = v + len, *dash;
	int64_t a, b;

	if (len < 7 || strncmp(v, "bytes=", 6) != 0)
		return 0;
	p += 6;
	if (memchr(p, ',', (size_t)(e - p)))
		return 0;	/* multiple ranges: S3 serves the whole object */
	dash = memchr(p, '-', (size_t)(e - p));
	if (!dash)
		return 0;
	if (dash == p) {	/* suffix: the last b bytes */
		if (!parse_i64(dash + 1, e, &b))
			return 0;
		if (b == 0 || size == 0)
			return -1;
		*start = b >= size ? 0 : size - b;
		*end = size;
		return 1;
	}
	if (!parse_i64(p, dash, &a))
		return 0;
	if (dash + 1 == e) {
		b = size - 1;
	} else if (!parse_i64(dash + 1, e, &b) || b < a) {
		return 0;
	}
	if (a >= size)
		return -1;
	*start = a;
	*end = (b >= size ? size - 1 : b) + 1;
	return 1;
}

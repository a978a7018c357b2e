/* iwire.c — encodings of the internal API: one table of error codes, names percent-encoded
 * into request targets, and a replica's row carried in X-Cairn-* header fields (metadata
 * in base64, an ETag of safe characters only). */
#include "iwire.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../../lib/hash.h"
#include "../../lib/uri.h"

static const struct { int status; const char *code; int err; } iw_errs[IW_COUNT] = {
	[IW_BAD_REQUEST] = { 400, "bad_request", -EINVAL },
	[IW_NO_CLIENT_CERT] = { 401, "no_client_cert", -EACCES },
	[IW_NOT_A_MEMBER] = { 403, "not_a_member", -EACCES },
	[IW_NO_SUCH_KEY] = { 404, "no_such_key", -ENOENT },
	[IW_NO_SUCH_BUCKET] = { 404, "no_such_bucket", -ENOENT },
	[IW_NOT_FOUND] = { 404, "not_found", -ENOENT },
	[IW_METHOD] = { 405, "method_not_allowed", -EINVAL },
	[IW_BUCKET_NOT_EMPTY] = { 409, "bucket_not_empty", -ENOTEMPTY },
	[IW_BUCKET_EXISTS] = { 409, "bucket_exists", -EEXIST },
	[IW_LENGTH] = { 411, "length_required", -EINVAL },
	[IW_TOO_LARGE] = { 413, "too_large", -EFBIG },
	[IW_BAD_RANGE] = { 416, "bad_range", -ERANGE },
	[IW_INTERNAL] = { 500, "internal", -EIO },
	[IW_NO_QUORUM] = { 503, "no_quorum", -EHOSTDOWN },
	[IW_FULL] = { 507, "full", -ENOSPC },
	[IW_NO_SUCH_UPLOAD] = { 404, "no_such_upload", -ENOENT },
	[IW_INVALID_PART] = { 400, "invalid_part", -EINVAL },
	[IW_PART_ORDER] = { 400, "invalid_part_order", -EDOM },
	[IW_PART_SMALL] = { 400, "entity_too_small", -ERANGE },
};

int iwire_status(enum iwire_err e)
{
	return iw_errs[e].status;
}

const char *iwire_code(enum iwire_err e)
{
	return iw_errs[e].code;
}

int iwire_errno(int status, const char *code)
{
	int by_status = 0;

	for (int i = 0; i < IW_COUNT; i++) {
		if (iw_errs[i].status != status)
			continue;
		if (code && strcmp(code, iw_errs[i].code) == 0)
			return iw_errs[i].err;
		by_status = by_status ? by_status : iw_errs[i].err;
	}
	return by_status ? by_status : -EPROTO;
}

static int put(char *out, size_t cap, size_t *n, const char *s, size_t len, bool encode)
{
	size_t need = encode ? uri_encode(s, len, NULL, 0, true) : len;

	if (*n + need >= cap)
		return -ENAMETOOLONG;
	if (encode)
		uri_encode(s, len, out + *n, cap - *n, true);
	else
		memcpy(out + *n, s, len);
	*n += need;
	out[*n] = '\0';
	return 0;
}

int iwire_target(char *out, size_t cap, const char *prefix, const char *bucket,
		 const char *key, size_t key_len, const char *query)
{
	size_t n = 0;
	int err = put(out, cap, &n, prefix, strlen(prefix), false);

	if (!err && bucket)
		err = put(out, cap, &n, bucket, strlen(bucket), true);
	if (!err && key && !(err = put(out, cap, &n, "/", 1, false)))
		err = put(out, cap, &n, key, key_len, true);
	if (!err && query && *query && !(err = put(out, cap, &n, "?", 1, false)))
		err = put(out, cap, &n, query, strlen(query), false);
	return err;
}

/* ETags travel unquoted: hex digits and '-' ("hex32-N"), nothing that could break a line. */
static bool etag_ok(const char *s)
{
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= 'A' && *s <= 'Z') || *s == '-'))
			return false;
	return true;
}

int iwire_row_headers(const struct store_row *row, char *out, size_t cap)
{
	const struct store_objinfo *i = &row->info;
	char meta[4 * ((STORE_META_MAX + 2) / 3) + 1];
	int n;

	if (row->tomb)
		n = snprintf(out, cap, "X-Cairn-Version: %llu\r\nX-Cairn-Tombstone: 1\r\n"
			     "X-Cairn-Mtime-Ms: %lld\r\n", (unsigned long long)row->version,
			     (long long)i->mtime_ms);
	else if (!etag_ok(i->etag) || i->meta_len > STORE_META_MAX)
		return -EINVAL;
	else
		n = snprintf(out, cap, "X-Cairn-Version: %llu\r\nX-Cairn-ETag: %s\r\n"
			     "X-Cairn-Mtime-Ms: %lld\r\nX-Cairn-Parts: %d\r\nX-Cairn-Meta: %s\r\n",
			     (unsigned long long)row->version, i->etag, (long long)i->mtime_ms,
			     i->nparts, (base64_encode(i->meta, i->meta_len, meta), meta));
	return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

int iwire_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s || strlen(s) > 20)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

static int field_u64(const struct http1s_msg *m, const char *name, uint64_t max, uint64_t *out)
{
	char v[32];
	int n = http1s_field(m, name, v, sizeof(v));

	if (n == -ENOENT)
		return 1;
	return n < 0 || iwire_u64(v, out) || *out > max ? -EINVAL : 0;
}

int iwire_row_parse(const struct http1s_msg *m, struct store_row *row)
{
	char meta[4 * ((STORE_META_MAX + 2) / 3) + 8], tomb[8];
	struct store_objinfo *i = &row->info;
	uint64_t v;
	int n;

	memset(row, 0, sizeof(*row));
	if (field_u64(m, "X-Cairn-Version", INT64_MAX, &row->version) || row->version == 0)
		return -EINVAL;
	row->tomb = http1s_field(m, "X-Cairn-Tombstone", tomb, sizeof(tomb)) >= 0 &&
		    strcmp(tomb, "1") == 0;
	if ((n = field_u64(m, "X-Cairn-Mtime-Ms", INT64_MAX, &v)) < 0)
		return -EINVAL;
	i->mtime_ms = n ? 0 : (int64_t)v;
	if ((n = field_u64(m, "X-Cairn-Parts", STORE_PARTS_MAX, &v)) < 0)
		return -EINVAL;
	i->nparts = n ? 0 : (int)v;
	n = http1s_field(m, "X-Cairn-ETag", i->etag, sizeof(i->etag));
	if ((n < 0 && n != -ENOENT) || !etag_ok(n < 0 ? "" : i->etag))
		return -EINVAL;
	n = http1s_field(m, "X-Cairn-Meta", meta, sizeof(meta));
	if (n == -ENOENT)
		return 0;
	if (n < 0 || (n = base64_decode(meta, (size_t)n, i->meta, sizeof(i->meta))) < 0)
		return -EINVAL;
	i->meta_len = (size_t)n;
	return 0;
}

/* sigv4.c — AWS Signature Version 4 as S3 checks it: the Authorization header and
 * presigned-URL forms, the aws-chunked body decoder with its chained chunk signatures, and
 * signing for our own clients. No heap: the canonical request is hashed as it is produced. */
#include "sigv4.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../../lib/log.h"
#include "../../lib/uri.h"

#define ALGORITHM		"AWS4-HMAC-SHA256"
#define CHUNK_ALGORITHM		"AWS4-HMAC-SHA256-PAYLOAD"
#define SIGV2_PREFIX		"AWS "
#define SERVICE			"s3"
#define TERMINATOR		"aws4_request"
#define UNSIGNED_PAYLOAD	"UNSIGNED-PAYLOAD"
#define STREAMING_SIGNED	"STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
#define STREAMING_TRAILER	"STREAMING-UNSIGNED-PAYLOAD-TRAILER"
#define EMPTY_SHA256_HEX	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define CHUNK_SIG_PREFIX	";chunk-signature="
#define AMZ_PREFIX		"x-amz-"

#define SIG_HEX_LEN	(2 * SHA256_LEN)
#define AMZ_DATE_LEN	16		/* YYYYMMDDTHHMMSSZ */
#define DATE_LEN	8		/* YYYYMMDD */
#define HTTP_DATE_LEN	29		/* "Fri, 24 May 2013 00:00:00 GMT" */
#define REGION_MAX	64		/* keeps the scope within sigv4_auth.scope */
#define CRED_MAX	(SIGV4_KEY_MAX + 128)	/* AK/date/region/s3/aws4_request */
#define SIGNED_HDRS_MAX	4096		/* decoded X-Amz-SignedHeaders */
#define SMALL_PARAM_MAX	96		/* decoded algorithm, date, expires, signature */
#define STS_MAX		320		/* string to sign: ~17+17+96+65 (+65+65 for chunks) */
#define CANON_STAGE	512		/* bytes gathered before each SHA-256 update */
#define CHUNK_SIZE_DIGITS 16		/* hex digits of a chunk size: 64 bits */
#define MAX_TRAILERS	16		/* trailer lines after the last aws-chunked chunk */
#define DECIMAL_DIGITS_MAX 18		/* fits int64 without overflow checks */

_Static_assert(9 + REGION_MAX + sizeof("/" SERVICE "/" TERMINATOR) <=
	       sizeof(((struct sigv4_auth *)0)->scope), "scope buffer too small");
_Static_assert(sizeof(((struct sigv4_chunked *)0)->line) > sizeof(CHUNK_SIG_PREFIX) +
	       CHUNK_SIZE_DIGITS + SIG_HEX_LEN + 2, "chunk header line buffer too small");

static const char upper_hex[] = "0123456789ABCDEF";

/* ---------- small string helpers ---------- */

static bool span_eq(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

static bool span_ieq(const char *a, size_t an, const char *b, size_t bn)
{
	return an == bn && strncasecmp(a, b, an) == 0;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static bool all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return n > 0;
}

/* Non-negative decimal, at most DECIMAL_DIGITS_MAX digits; -1 when invalid. */
static int64_t parse_decimal(const char *s, size_t n)
{
	int64_t v = 0;

	if (!all_digits(s, n) || n > DECIMAL_DIGITS_MAX)
		return -1;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

/* Signature comparison that does not stop at the first differing byte. */
static bool ct_equal(const char *a, const char *b, size_t n)
{
	unsigned char d = 0;

	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

/* Every '%' followed by two hex digits, so the encoders below never see a broken escape. */
static bool escapes_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '%') {
			if (n - i < 3 || hex_value(s[i + 1]) < 0 || hex_value(s[i + 2]) < 0)
				return false;
			i += 2;
		}
	return true;
}

/* ---------- dates ---------- */

static bool fields(const char *s, const int *pos, const int *len, int n, int *out)
{
	for (int i = 0; i < n; i++) {
		int64_t v = parse_decimal(s + pos[i], (size_t)len[i]);

		if (v < 0)
			return false;
		out[i] = (int)v;
	}
	return true;
}

/* Builds the time and rejects what timegm() would silently normalise (Feb 30, 25:00). */
static bool make_time(int y, int mo, int d, int h, int mi, int s, time_t *t)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
			 .tm_hour = h, .tm_min = mi, .tm_sec = s };
	struct tm chk;

	if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59)
		return false;
	*t = timegm(&tm);
	if (!gmtime_r(t, &chk))
		return false;
	return chk.tm_mday == d && chk.tm_mon == mo - 1;
}

static bool parse_amz_date(const char *s, size_t n, time_t *t)
{
	static const int pos[] = { 0, 4, 6, 9, 11, 13 }, len[] = { 4, 2, 2, 2, 2, 2 };
	int f[6];

	if (n != AMZ_DATE_LEN || s[8] != 'T' || s[15] != 'Z' || !fields(s, pos, len, 6, f))
		return false;
	return make_time(f[0], f[1], f[2], f[3], f[4], f[5], t);
}

/* RFC 7231 IMF-fixdate only ("Fri, 24 May 2013 00:00:00 GMT"), which every SDK sends. */
static bool parse_http_date(const char *s, size_t n, time_t *t)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	static const int pos[] = { 5, 12, 17, 20, 23 }, len[] = { 2, 4, 2, 2, 2 };
	int f[5], mon = -1;

	if (n != HTTP_DATE_LEN || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' ||
	    s[16] != ' ' || s[19] != ':' || s[22] != ':' || memcmp(s + 25, " GMT", 4) != 0 ||
	    !fields(s, pos, len, 5, f))
		return false;
	for (int i = 0; i < 12; i++)
		if (memcmp(s + 8, months + 3 * i, 3) == 0)
			mon = i + 1;
	return mon > 0 && make_time(f[1], mon, f[0], f[2], f[3], f[4], t);
}

static void format_amz_date(time_t t, char out[AMZ_DATE_LEN + 1])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, AMZ_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm);
}

/* ---------- the canonical request, hashed as it is produced ---------- */

struct canon {
	struct sha256_ctx sha;
	size_t n;
	char buf[CANON_STAGE];
};

static void canon_flush(struct canon *c)
{
	sha256_update(&c->sha, c->buf, c->n);
	c->n = 0;
}

static void canon_putc(struct canon *c, char ch)
{
	if (c->n == sizeof(c->buf))
		canon_flush(c);
	c->buf[c->n++] = ch;
}

static void canon_put(struct canon *c, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		canon_putc(c, s[i]);
}

/* Yields the S3 form of a raw URI component one character at a time: percent-decoded, then
 * re-encoded with upper-case hex and only unreserved characters (and '/' in paths) left
 * as they are. The input's escapes must have passed escapes_ok(). */
struct enc_it {
	const char *p, *end;
	bool keep_slash;
	int npend;
	char pend[2];
};

static void enc_init(struct enc_it *it, const char *s, size_t n, bool keep_slash)
{
	*it = (struct enc_it){ .p = s, .end = s + n, .keep_slash = keep_slash };
}

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

static int enc_next(struct enc_it *it)
{
	unsigned char b;

	if (it->npend)
		return it->pend[2 - it->npend--];
	if (it->p == it->end)
		return -1;
	if (*it->p == '%') {
		b = (unsigned char)(hex_value(it->p[1]) << 4 | hex_value(it->p[2]));
		it->p += 3;
	} else {
		b = (unsigned char)*it->p++;
	}
	if (unreserved(b) || (b == '/' && it->keep_slash))
		return b;
	it->pend[0] = upper_hex[b >> 4];
	it->pend[1] = upper_hex[b & 0xf];
	it->npend = 2;
	return '%';
}

static void canon_put_encoded(struct canon *c, const char *s, size_t n, bool keep_slash)
{
	struct enc_it it;
	int ch;

	enc_init(&it, s, n, keep_slash);
	while ((ch = enc_next(&it)) >= 0)
		canon_putc(c, (char)ch);
}

/* Orders two raw components by their canonical (re-encoded) bytes, as S3 sorts them. */
static int enc_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	struct enc_it ia, ib;

	enc_init(&ia, a, an, false);
	enc_init(&ib, b, bn, false);
	for (;;) {
		int ca = enc_next(&ia), cb = enc_next(&ib);

		if (ca != cb)
			return ca - cb;
		if (ca < 0)
			return 0;
	}
}

static int param_cmp(const struct uri_param *a, const struct uri_param *b)
{
	int r = enc_cmp(a->name, a->name_len, b->name, b->name_len);

	return r ? r : enc_cmp(a->value, a->value_len, b->value, b->value_len);
}

/* Sorted query, "name=value" joined by '&'. Insertion sort on indexes: at most
 * URI_MAX_PARAMS entries, and qsort() may allocate. */
static void canon_query(struct canon *c, const struct uri_param *p, int np, bool skip_sig)
{
	int idx[URI_MAX_PARAMS], n = 0;

	for (int i = 0; i < np && n < URI_MAX_PARAMS; i++) {
		int j;

		if (skip_sig && span_eq(p[i].name, p[i].name_len, "X-Amz-Signature"))
			continue;
		for (j = n++; j > 0 && param_cmp(&p[idx[j - 1]], &p[i]) > 0; j--)
			idx[j] = idx[j - 1];
		idx[j] = i;
	}
	for (int k = 0; k < n; k++) {
		const struct uri_param *q = &p[idx[k]];

		if (k)
			canon_putc(c, '&');
		canon_put_encoded(c, q->name, q->name_len, false);
		canon_putc(c, '=');
		canon_put_encoded(c, q->value, q->value_len, false);
	}
	canon_putc(c, '\n');
}

static void canon_lower(struct canon *c, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		canon_putc(c, (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i]);
}

/* A header value trimmed, with inner runs of blanks collapsed to one space. */
static void canon_value(struct canon *c, const char *v, size_t n)
{
	size_t i = 0;
	bool gap = false;

	while (n && is_blank(v[n - 1]))
		n--;
	while (i < n && is_blank(v[i]))
		i++;
	for (; i < n; i++) {
		if (is_blank(v[i])) {
			gap = true;
			continue;
		}
		if (gap)
			canon_putc(c, ' ');
		gap = false;
		canon_putc(c, v[i]);
	}
}

/* "name:v1,v2\n": every occurrence of the header, in request order. */
static void canon_header(struct canon *c, const struct http_req *req, const char *name,
			 size_t nlen)
{
	bool first = true;

	canon_lower(c, name, nlen);
	canon_putc(c, ':');
	for (int i = 0; i < req->nhdr; i++) {
		const struct http_header *h = &req->hdr[i];

		if (!span_ieq(h->name, h->name_len, name, nlen))
			continue;
		if (!first)
			canon_putc(c, ',');
		canon_value(c, h->value, h->value_len);
		first = false;
	}
	canon_putc(c, '\n');
}

/* Walks a SignedHeaders list: returns false at its end. *bad is set for an empty or
 * unreasonable name. */
static bool next_signed(const char **p, const char *end, const char **name, size_t *nlen,
			bool *bad)
{
	const char *s = *p, *semi;

	if (s >= end)
		return false;
	semi = memchr(s, ';', (size_t)(end - s));
	*name = s;
	*nlen = semi ? (size_t)(semi - s) : (size_t)(end - s);
	*p = s + *nlen + 1;
	if (*nlen == 0 || (semi && semi + 1 == end))
		*bad = true;
	for (size_t i = 0; i < *nlen; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == ':' || (unsigned char)s[i] >= 0x7f)
			*bad = true;
	return true;
}

static bool signed_list_has(const char *list, size_t len, const char *name, size_t nlen)
{
	const char *p = list, *end = list + len, *n;
	size_t l;
	bool bad = false;

	while (next_signed(&p, end, &n, &l, &bad))
		if (span_ieq(n, l, name, nlen))
			return true;
	return false;
}

/* The signed-header list is usable: well formed, bounded, includes host, and no x-amz-*
 * header of the request is left out of it (S3's "headers present which were not signed",
 * which stops anyone adding e.g. x-amz-copy-source to a captured request). */
static bool signed_list_ok(const struct http_req *req, const char *list, size_t len)
{
	const char *p = list, *end = list + len, *n;
	size_t l;
	bool bad = false;
	int count = 0;

	while (next_signed(&p, end, &n, &l, &bad))
		count++;
	if (bad || count == 0 || count > HTTP_MAX_HEADERS ||
	    !signed_list_has(list, len, "host", 4))
		return false;
	for (int i = 0; i < req->nhdr; i++) {
		const struct http_header *h = &req->hdr[i];

		if (h->name_len >= strlen(AMZ_PREFIX) &&
		    strncasecmp(h->name, AMZ_PREFIX, strlen(AMZ_PREFIX)) == 0 &&
		    !signed_list_has(list, len, h->name, h->name_len))
			return false;
	}
	return true;
}

/* What one canonical request is made of. */
struct canon_in {
	const struct http_req *req;
	const struct uri_param *params;
	int nparams;
	bool skip_sig;			/* presigned: X-Amz-Signature is not signed */
	const char *signed_hdrs;
	size_t signed_len;
	const char *payload;		/* the canonical request's last line */
	size_t payload_len;
};

/* SHA-256 of the canonical request; -1 when the path or query has a broken escape. */
static int canonical_hash(const struct canon_in *in, unsigned char out[SHA256_LEN])
{
	const struct http_req *req = in->req;
	const char *p = in->signed_hdrs, *end = p + in->signed_len, *name;
	size_t nlen;
	bool bad = false;
	struct canon c;

	if (!escapes_ok(req->path, req->path_len) ||
	    (req->query && !escapes_ok(req->query, req->query_len)))
		return -1;
	c.n = 0;
	sha256_init(&c.sha);
	canon_put(&c, req->method_str, req->method_len);
	canon_putc(&c, '\n');
	/* No normalisation of "//" or "..": S3 signs the key as sent. */
	if (req->path_len)
		canon_put_encoded(&c, req->path, req->path_len, true);
	else
		canon_putc(&c, '/');
	canon_putc(&c, '\n');
	canon_query(&c, in->params, in->nparams, in->skip_sig);
	while (next_signed(&p, end, &name, &nlen, &bad))
		canon_header(&c, req, name, nlen);
	canon_putc(&c, '\n');
	canon_lower(&c, in->signed_hdrs, in->signed_len);
	canon_putc(&c, '\n');
	canon_put(&c, in->payload, in->payload_len);
	canon_flush(&c);
	sha256_final(&c.sha, out);
	return 0;
}

/* ---------- keys and signatures ---------- */

static void derive_key(const char *secret, const char *date, const char *region,
		       size_t region_len, unsigned char key[SHA256_LEN])
{
	char k0[4 + SIGV4_KEY_MAX];
	unsigned char a[SHA256_LEN], b[SHA256_LEN];
	size_t slen = strnlen(secret, SIGV4_KEY_MAX);

	memcpy(k0, "AWS4", 4);
	memcpy(k0 + 4, secret, slen);
	hmac_sha256(k0, 4 + slen, date, DATE_LEN, a);
	hmac_sha256(a, sizeof(a), region, region_len, b);
	hmac_sha256(b, sizeof(b), SERVICE, strlen(SERVICE), a);
	hmac_sha256(a, sizeof(a), TERMINATOR, strlen(TERMINATOR), key);
	explicit_bzero(k0, sizeof(k0));		/* secret material; a memset may be elided */
	explicit_bzero(a, sizeof(a));
	explicit_bzero(b, sizeof(b));
}

/* The request's signature as hex, and the string to sign (for the debug log). */
static int request_signature(const struct canon_in *in, const char *amz_date,
			     const char *scope, const unsigned char key[SHA256_LEN],
			     char sig[SIG_HEX_LEN + 1], char sts[STS_MAX])
{
	unsigned char h[SHA256_LEN], mac[SHA256_LEN];
	char hex[SIG_HEX_LEN + 1];
	int n;

	if (canonical_hash(in, h) < 0)
		return -1;
	hex_encode(h, sizeof(h), hex);
	n = snprintf(sts, STS_MAX, ALGORITHM "\n%s\n%s\n%s", amz_date, scope, hex);
	if (n < 0 || n >= STS_MAX)
		return -1;
	hmac_sha256(key, SHA256_LEN, sts, (size_t)n, mac);
	hex_encode(mac, sizeof(mac), sig);
	return 0;
}

/* ---------- verification ---------- */

/* Everything one verification carries between its steps. */
struct vctx {
	const struct http_req *req;
	const struct uri_param *params;
	int nparams;
	const struct sigv4_cred *creds;
	int ncreds;
	const char *region;
	time_t now;
	enum sigv4_status bad;		/* MALFORMED or QUERY_MALFORMED, per form */
	bool presigned;
	const char *cred, *signed_hdrs, *sig, *payload;
	size_t cred_len, signed_len, sig_len, payload_len;
	size_t ak_len, region_off, region_len;
	char amz_date[AMZ_DATE_LEN + 1];
	time_t when;
	struct sigv4_auth *out;
};

/* Credential = AK/YYYYMMDD/region/s3/aws4_request; fills the scope. */
static enum sigv4_status check_scope(struct vctx *v)
{
	const char *part[5], *end = v->cred + v->cred_len, *p = v->cred;
	size_t len[5];

	for (int i = 0; i < 5; i++) {
		const char *slash = memchr(p, '/', (size_t)(end - p));

		if ((i < 4) != (slash != NULL))
			return v->bad;
		part[i] = p;
		len[i] = slash ? (size_t)(slash - p) : (size_t)(end - p);
		p += len[i] + 1;
	}
	if (len[0] == 0 || len[0] >= SIGV4_KEY_MAX || !span_eq(part[3], len[3], SERVICE) ||
	    !span_eq(part[4], len[4], TERMINATOR) || len[2] == 0 || len[2] > REGION_MAX ||
	    len[1] != DATE_LEN || memcmp(part[1], v->amz_date, DATE_LEN) != 0)
		return v->bad;
	if (!span_eq(part[2], len[2], v->region))
		return SIGV4_WRONG_REGION;
	v->ak_len = len[0];
	v->region_off = (size_t)(part[2] - v->cred);
	v->region_len = len[2];
	memcpy(v->out->scope, part[1], (size_t)(end - part[1]));
	v->out->scope[end - part[1]] = '\0';
	return SIGV4_OK;
}

static int find_cred(const struct vctx *v)
{
	for (int i = 0; i < v->ncreds; i++) {
		const char *ak = v->creds[i].access_key;

		if (strnlen(ak, SIGV4_KEY_MAX) == v->ak_len && memcmp(ak, v->cred, v->ak_len) == 0)
			return i;
	}
	return -1;
}

/* Last common step of both forms: key lookup, signature, and filling *out. */
static enum sigv4_status check_signature(struct vctx *v)
{
	struct canon_in in = { v->req, v->params, v->nparams, v->presigned, v->signed_hdrs,
			       v->signed_len, v->payload, v->payload_len };
	struct sigv4_auth *out = v->out;
	char expect[SIG_HEX_LEN + 1], sts[STS_MAX];
	int ci;

	if (v->sig_len != SIG_HEX_LEN || !is_lower_hex(v->sig, v->sig_len) ||
	    !signed_list_ok(v->req, v->signed_hdrs, v->signed_len))
		return v->bad;
	ci = find_cred(v);
	if (ci < 0)
		return SIGV4_BAD_ACCESS_KEY;
	derive_key(v->creds[ci].secret_key, v->amz_date, v->cred + v->region_off,
		   v->region_len, out->signing_key);
	if (request_signature(&in, v->amz_date, out->scope, out->signing_key, expect, sts) < 0)
		return v->bad;
	if (!ct_equal(expect, v->sig, SIG_HEX_LEN)) {
		/* What S3 would return as StringToSign, to compare with a client's debug log. */
		log_debug("sigv4_mismatch access_key=%.*s amz_date=%s scope=%s canonical_sha256=%s",
			  (int)v->ak_len, v->cred, v->amz_date, out->scope, strrchr(sts, '\n') + 1);
		return SIGV4_BAD_SIGNATURE;	/* sigv4_verify() wipes *out */
	}
	out->cred = ci;
	out->presigned = v->presigned;
	memcpy(out->seed_signature, expect, sizeof(out->seed_signature));
	memcpy(out->amz_date, v->amz_date, sizeof(out->amz_date));
	return SIGV4_OK;
}

/* Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=... */
static enum sigv4_status parse_authz(struct vctx *v, const char *s, size_t n)
{
	const char *end = s + n;
	size_t alen = strlen(ALGORITHM);

	if (n >= strlen(SIGV2_PREFIX) && memcmp(s, SIGV2_PREFIX, strlen(SIGV2_PREFIX)) == 0)
		return SIGV4_UNSUPPORTED;
	if (n < alen || memcmp(s, ALGORITHM, alen) != 0 || (n > alen && !is_blank(s[alen])))
		return SIGV4_UNSUPPORTED;
	for (s += alen; s < end;) {
		const char *comma, *eq, **dst;
		size_t plen, *dlen;

		while (s < end && is_blank(*s))
			s++;
		comma = memchr(s, ',', (size_t)(end - s));
		plen = comma ? (size_t)(comma - s) : (size_t)(end - s);
		while (plen && is_blank(s[plen - 1]))
			plen--;
		eq = memchr(s, '=', plen);
		if (!eq)
			return SIGV4_MALFORMED;
		if (span_eq(s, (size_t)(eq - s), "Credential"))
			dst = &v->cred, dlen = &v->cred_len;
		else if (span_eq(s, (size_t)(eq - s), "SignedHeaders"))
			dst = &v->signed_hdrs, dlen = &v->signed_len;
		else if (span_eq(s, (size_t)(eq - s), "Signature"))
			dst = &v->sig, dlen = &v->sig_len;
		else
			return SIGV4_MALFORMED;
		if (*dst)	/* the same part twice */
			return SIGV4_MALFORMED;
		*dst = eq + 1;
		*dlen = plen - (size_t)(eq + 1 - s);
		s = comma ? comma + 1 : end;
	}
	return v->cred && v->signed_hdrs && v->sig ? SIGV4_OK : SIGV4_MALFORMED;
}

/* x-amz-date, else Date, as the string-to-sign timestamp. */
static enum sigv4_status header_date(struct vctx *v)
{
	const struct http_header *h = http_req_header(v->req, "x-amz-date");

	if (h) {
		if (!parse_amz_date(h->value, h->value_len, &v->when))
			return SIGV4_MISSING_DATE;
		memcpy(v->amz_date, h->value, AMZ_DATE_LEN);
		v->amz_date[AMZ_DATE_LEN] = '\0';
		return SIGV4_OK;
	}
	h = http_req_header(v->req, "date");
	if (!h || !parse_http_date(h->value, h->value_len, &v->when))
		return SIGV4_MISSING_DATE;
	format_amz_date(v->when, v->amz_date);
	return SIGV4_OK;
}

static enum sigv4_status content_sha(struct vctx *v)
{
	const struct http_header *h = http_req_header(v->req, "x-amz-content-sha256");
	struct sigv4_auth *out = v->out;

	if (!h)
		return SIGV4_BAD_CONTENT_SHA;
	v->payload = h->value;
	v->payload_len = h->value_len;
	if (span_eq(h->value, h->value_len, UNSIGNED_PAYLOAD))
		out->payload = SIGV4_PAYLOAD_UNSIGNED;
	else if (span_eq(h->value, h->value_len, STREAMING_SIGNED))
		out->payload = SIGV4_PAYLOAD_STREAMING;
	else if (span_eq(h->value, h->value_len, STREAMING_TRAILER))
		out->payload = SIGV4_PAYLOAD_STREAMING_UNSIGNED_TRAILER;
	else if (hex_decode(h->value, h->value_len, out->payload_sha256, SHA256_LEN) ==
		 SHA256_LEN)
		out->payload = SIGV4_PAYLOAD_SIGNED;
	else
		return SIGV4_BAD_CONTENT_SHA;
	return SIGV4_OK;
}

static int64_t llabs64(int64_t x)
{
	return x < 0 ? -x : x;
}

static enum sigv4_status verify_header(struct vctx *v, const struct http_header *authz)
{
	const struct http_header *dl;
	enum sigv4_status st;

	v->bad = SIGV4_MALFORMED;
	st = parse_authz(v, authz->value, authz->value_len);
	if (st == SIGV4_OK)
		st = header_date(v);
	if (st == SIGV4_OK)
		st = content_sha(v);
	if (st == SIGV4_OK)
		st = check_scope(v);
	if (st != SIGV4_OK)
		return st;
	if (llabs64((int64_t)v->now - (int64_t)v->when) > SIGV4_MAX_SKEW_S)
		return SIGV4_SKEWED;
	dl = http_req_header(v->req, "x-amz-decoded-content-length");
	if (dl)
		v->out->decoded_length = parse_decimal(dl->value, dl->value_len);
	return check_signature(v);
}

/* Decodes query parameter `name` into buf (NUL-terminated); -1 if absent or invalid. */
static int query_value(const struct vctx *v, const char *name, char *buf, size_t max)
{
	const struct uri_param *p = uri_query_get(v->params, v->nparams, name);
	int n;

	if (!p || !p->has_value)
		return -1;
	n = uri_decode(p->value, p->value_len, buf, max - 1, false);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

/* Presigned URL: X-Amz-Algorithm, -Credential, -Date, -Expires, -SignedHeaders,
 * -Signature in the query; the payload is never signed. */
static enum sigv4_status verify_query(struct vctx *v)
{
	char algo[SMALL_PARAM_MAX], date[SMALL_PARAM_MAX], exp[SMALL_PARAM_MAX];
	char sig[SMALL_PARAM_MAX], cred[CRED_MAX], shdrs[SIGNED_HDRS_MAX];
	int an, dn, en, sn, cn, hn;
	int64_t expires;
	enum sigv4_status st;

	v->bad = SIGV4_QUERY_MALFORMED;
	an = query_value(v, "X-Amz-Algorithm", algo, sizeof(algo));
	dn = query_value(v, "X-Amz-Date", date, sizeof(date));
	en = query_value(v, "X-Amz-Expires", exp, sizeof(exp));
	sn = query_value(v, "X-Amz-Signature", sig, sizeof(sig));
	cn = query_value(v, "X-Amz-Credential", cred, sizeof(cred));
	hn = query_value(v, "X-Amz-SignedHeaders", shdrs, sizeof(shdrs));
	if (an < 0 || dn < 0 || en < 0 || sn < 0 || cn < 0 || hn < 0 ||
	    !span_eq(algo, (size_t)an, ALGORITHM) ||
	    !parse_amz_date(date, (size_t)dn, &v->when))
		return SIGV4_QUERY_MALFORMED;
	expires = parse_decimal(exp, (size_t)en);
	if (expires < 1 || expires > SIGV4_MAX_EXPIRES_S)
		return SIGV4_QUERY_MALFORMED;
	memcpy(v->amz_date, date, sizeof(v->amz_date));
	v->cred = cred, v->cred_len = (size_t)cn;
	v->sig = sig, v->sig_len = (size_t)sn;
	v->signed_hdrs = shdrs, v->signed_len = (size_t)hn;
	v->payload = UNSIGNED_PAYLOAD, v->payload_len = strlen(UNSIGNED_PAYLOAD);
	v->out->payload = SIGV4_PAYLOAD_UNSIGNED;
	st = check_scope(v);
	if (st != SIGV4_OK)
		return st;
	if ((int64_t)v->when - (int64_t)v->now > SIGV4_MAX_SKEW_S)
		return SIGV4_SKEWED;	/* not valid yet */
	if ((int64_t)v->now - (int64_t)v->when > expires)
		return SIGV4_EXPIRED;
	return check_signature(v);
}

enum sigv4_status sigv4_verify(const struct http_req *req, const struct sigv4_cred *creds,
			       int ncreds, const char *region, time_t now,
			       struct sigv4_auth *out)
{
	struct uri_param params[URI_MAX_PARAMS];
	const struct http_header *authz = http_req_header(req, "authorization");
	struct vctx v = { .req = req, .params = params, .creds = creds, .ncreds = ncreds,
			  .region = region, .now = now, .out = out };
	bool query_auth;
	enum sigv4_status st;

	memset(out, 0, sizeof(*out));
	out->cred = -1;
	out->decoded_length = -1;
	v.nparams = req->query ? uri_query_parse(req->query, req->query_len, params,
						 URI_MAX_PARAMS) : 0;
	if (v.nparams < 0) {
		st = authz ? SIGV4_MALFORMED : SIGV4_QUERY_MALFORMED;
		goto out;
	}
	query_auth = uri_query_get(params, v.nparams, "X-Amz-Algorithm") ||
		     uri_query_get(params, v.nparams, "X-Amz-Signature") ||
		     uri_query_get(params, v.nparams, "X-Amz-Credential");
	if (authz && query_auth)
		st = SIGV4_MALFORMED;	/* S3: only one auth mechanism allowed */
	else if (authz)
		st = verify_header(&v, authz);
	else if (query_auth) {
		v.presigned = true;
		st = verify_query(&v);
	} else if (uri_query_get(params, v.nparams, "Signature") ||
		   uri_query_get(params, v.nparams, "AWSAccessKeyId"))
		st = SIGV4_UNSUPPORTED;
	else
		st = SIGV4_ANONYMOUS;
out:
	if (st != SIGV4_OK) {
		explicit_bzero(out, sizeof(*out));	/* no signing key left behind */
		out->cred = -1;
		out->decoded_length = -1;
	}
	return st;
}

/* ---------- signing for our own clients ---------- */

int sigv4_sign(const struct sigv4_sign_req *r, char *authz, size_t authz_max,
	       char amz_date[17])
{
	static const char signed_hdrs[] = "host;x-amz-content-sha256;x-amz-date";
	struct http_req req;
	struct uri_param params[URI_MAX_PARAMS];
	struct canon_in in = { .req = &req, .params = params, .signed_hdrs = signed_hdrs,
			       .signed_len = strlen(signed_hdrs), .payload = r->payload_sha256_hex,
			       .payload_len = strlen(r->payload_sha256_hex) };
	unsigned char key[SHA256_LEN];
	char scope[sizeof(((struct sigv4_auth *)0)->scope)], sig[SIG_HEX_LEN + 1], sts[STS_MAX];
	size_t qlen = r->query ? strlen(r->query) : 0;
	int np, n, rc = -EINVAL;

	format_amz_date(r->now, amz_date);
	np = uri_query_parse(r->query ? r->query : "", qlen, params, URI_MAX_PARAMS);
	if (np < 0 || strlen(r->region) > REGION_MAX)
		goto out;
	memset(&req, 0, sizeof(req));
	req.method_str = r->method, req.method_len = strlen(r->method);
	req.path = r->path, req.path_len = strlen(r->path);
	req.query = r->query, req.query_len = qlen;
	req.hdr[0] = (struct http_header){ "host", 4, r->host, strlen(r->host) };
	req.hdr[1] = (struct http_header){ "x-amz-content-sha256", 20, r->payload_sha256_hex,
					   strlen(r->payload_sha256_hex) };
	req.hdr[2] = (struct http_header){ "x-amz-date", 10, amz_date, AMZ_DATE_LEN };
	req.nhdr = 3;
	snprintf(scope, sizeof(scope), "%.8s/%s/" SERVICE "/" TERMINATOR, amz_date, r->region);
	derive_key(r->cred->secret_key, amz_date, r->region, strlen(r->region), key);
	in.nparams = np;
	if (request_signature(&in, amz_date, scope, key, sig, sts) < 0)
		goto out;
	n = snprintf(authz, authz_max, ALGORITHM " Credential=%.*s/%s, SignedHeaders=%s, "
		     "Signature=%s", (int)strnlen(r->cred->access_key, SIGV4_KEY_MAX),
		     r->cred->access_key, scope, signed_hdrs, sig);
	rc = (n < 0 || (size_t)n >= authz_max) ? -ENOSPC : 0;
out:
	explicit_bzero(key, sizeof(key));
	return rc;
}

/* ---------- aws-chunked bodies ---------- */

enum chunk_state {
	CH_SIZE,	/* collecting "<hex>[;chunk-signature=<sig>]\r\n" */
	CH_DATA,	/* forwarding the chunk's bytes */
	CH_DATA_CR,	/* the CRLF after a chunk's data */
	CH_DATA_LF,
	CH_TRAILER,	/* after the zero-size chunk: trailer lines up to an empty one */
	CH_DONE,
	CH_ERR_BADMSG,	/* errors are sticky: the stream cannot resynchronise */
	CH_ERR_ACCES,
	CH_ERR_MODE,	/* the request's payload is not aws-chunked */
};

static bool chunk_signed(const struct sigv4_chunked *d)
{
	return d->auth->payload == SIGV4_PAYLOAD_STREAMING;
}

void sigv4_chunked_init(struct sigv4_chunked *d, const struct sigv4_auth *auth)
{
	memset(d, 0, sizeof(*d));
	d->auth = auth;
	d->state = (auth->payload == SIGV4_PAYLOAD_STREAMING ||
		    auth->payload == SIGV4_PAYLOAD_STREAMING_UNSIGNED_TRAILER) ? CH_SIZE
									: CH_ERR_MODE;
	memcpy(d->prev_sig, auth->seed_signature, sizeof(d->prev_sig));
	d->prev_sig[SIG_HEX_LEN] = '\0';
}

/* Adds one byte to the line; 1 once CRLF ends it (line NUL-terminated, CRLF dropped). */
static int collect_line(struct sigv4_chunked *d, char c)
{
	if (c == '\n') {
		if (d->line_len == 0 || d->line[d->line_len - 1] != '\r')
			return -EBADMSG;
		d->line[--d->line_len] = '\0';
		return 1;
	}
	if (d->line_len >= sizeof(d->line) - 1)
		return -EBADMSG;
	d->line[d->line_len++] = c;
	return 0;
}

/* The chunk just read was signed by whoever holds the key: its signature chains the
 * previous one, so chunks cannot be dropped, reordered or replayed. The claimed
 * signature waits in line[0..64). */
static int chunk_verify(struct sigv4_chunked *d)
{
	const struct sigv4_auth *a = d->auth;
	unsigned char h[SHA256_LEN], mac[SHA256_LEN];
	char hex[SIG_HEX_LEN + 1], expect[SIG_HEX_LEN + 1], sts[STS_MAX];
	int n;

	sha256_final(&d->chunk_sha, h);
	hex_encode(h, sizeof(h), hex);
	n = snprintf(sts, sizeof(sts), CHUNK_ALGORITHM "\n%s\n%s\n%s\n" EMPTY_SHA256_HEX "\n%s",
		     a->amz_date, a->scope, d->prev_sig, hex);
	if (n < 0 || (size_t)n >= sizeof(sts))
		return -EBADMSG;
	hmac_sha256(a->signing_key, SHA256_LEN, sts, (size_t)n, mac);
	hex_encode(mac, sizeof(mac), expect);
	if (!ct_equal(expect, d->line, SIG_HEX_LEN))
		return -EACCES;
	memcpy(d->prev_sig, d->line, SIG_HEX_LEN);
	return 0;
}

/* "<hex-size>;chunk-signature=<64 hex>" (signed) or "<hex-size>" (unsigned trailer). */
static int on_size_line(struct sigv4_chunked *d)
{
	const char *l = d->line;
	size_t digits = strspn(l, "0123456789abcdefABCDEF"), plen = strlen(CHUNK_SIG_PREFIX);
	int64_t want = d->auth->decoded_length;
	uint64_t size = 0;

	if (digits == 0 || digits > CHUNK_SIZE_DIGITS)
		return -EBADMSG;
	for (size_t i = 0; i < digits; i++)
		size = size << 4 | (uint64_t)hex_value(l[i]);
	if (chunk_signed(d)) {
		if (d->line_len != digits + plen + SIG_HEX_LEN ||
		    memcmp(l + digits, CHUNK_SIG_PREFIX, plen) != 0 ||
		    !is_lower_hex(l + digits + plen, SIG_HEX_LEN))
			return -EBADMSG;
		memmove(d->line, l + digits + plen, SIG_HEX_LEN);
		sha256_init(&d->chunk_sha);
	} else if (d->line_len != digits) {
		return -EBADMSG;
	}
	if (size > UINT64_MAX - d->decoded || (want >= 0 && size > (uint64_t)want - d->decoded))
		return -EBADMSG;	/* more than x-amz-decoded-content-length announced */
	d->line_len = 0;
	d->remaining = size;
	if (size)
		d->state = CH_DATA;
	else
		d->state = CH_TRAILER;
	return (size == 0 && chunk_signed(d)) ? chunk_verify(d) : 0;
}

/* Trailer lines ("x-amz-checksum-crc32:...") are only allowed unsigned; an empty line
 * ends the body. remaining counts the trailer lines here. */
static int on_trailer_line(struct sigv4_chunked *d)
{
	int64_t want = d->auth->decoded_length;

	if (d->line_len == 0) {
		if (want >= 0 && d->decoded != (uint64_t)want)
			return -EBADMSG;
		d->state = CH_DONE;
		return 1;
	}
	if (chunk_signed(d) || ++d->remaining > MAX_TRAILERS || !strchr(d->line, ':'))
		return -EBADMSG;
	d->line_len = 0;
	return 0;
}

/* Forwards what the input holds of the current chunk; checks its signature at its end. */
static int chunk_data(struct sigv4_chunked *d, const char *in, size_t *len,
		      int (*out)(void *ctx, const char *buf, size_t len), void *ctx)
{
	size_t n = *len < d->remaining ? *len : (size_t)d->remaining;
	int rc;

	if (chunk_signed(d))
		sha256_update(&d->chunk_sha, in, n);
	*len = n;
	d->remaining -= n;
	d->decoded += n;
	rc = out(ctx, in, n);
	if (rc < 0)
		return rc;
	if (d->remaining)
		return 0;
	d->state = CH_DATA_CR;
	return chunk_signed(d) ? chunk_verify(d) : 0;
}

static int chunk_step(struct sigv4_chunked *d, const char *in, size_t *len,
		      int (*out)(void *ctx, const char *buf, size_t len), void *ctx)
{
	int rc;

	switch (d->state) {
	case CH_DATA:
		return chunk_data(d, in, len, out, ctx);
	case CH_DATA_CR:
	case CH_DATA_LF:
		*len = 1;
		if (*in != (d->state == CH_DATA_CR ? '\r' : '\n'))
			return -EBADMSG;
		d->state = d->state == CH_DATA_CR ? CH_DATA_LF : CH_SIZE;
		return 0;
	case CH_SIZE:
	case CH_TRAILER:
		*len = 1;
		rc = collect_line(d, *in);
		if (rc <= 0)
			return rc;
		return d->state == CH_SIZE ? on_size_line(d) : on_trailer_line(d);
	default:
		return -EBADMSG;	/* bytes after the end */
	}
}

int sigv4_chunked_feed(struct sigv4_chunked *d, const char *in, size_t len,
		       int (*out)(void *ctx, const char *buf, size_t len), void *ctx)
{
	int rc = 0;

	switch (d->state) {
	case CH_ERR_BADMSG:
		return -EBADMSG;
	case CH_ERR_ACCES:
		return -EACCES;
	case CH_ERR_MODE:
		return -EINVAL;
	case CH_DONE:
		return len ? -EBADMSG : 1;
	}
	while (len && rc == 0) {
		size_t n = len;

		rc = chunk_step(d, in, &n, out, ctx);
		in += n;
		len -= n;
	}
	if (rc == 1 && len)
		rc = -EBADMSG;		/* garbage after the last chunk */
	if (rc == -EBADMSG)
		d->state = CH_ERR_BADMSG;
	else if (rc == -EACCES)
		d->state = CH_ERR_ACCES;
	return rc;
}

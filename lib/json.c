/* json.c — the control plane's JSON: a strict RFC 8259 tokenizer (valid UTF-8, validated
 * numbers, escapes and surrogate pairs, bounded depth) laying out jsmn-style tokens over the
 * caller's text, typed lookups that unescape on demand, and a bounded writer. */
#include "json.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

struct jp {
	const unsigned char *s;
	int len, pos;
	struct json_tok *toks;
	int max, n;
};

static int parse_value(struct jp *p, int depth);

static void skip_ws(struct jp *p)
{
	while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
				   p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
		p->pos++;
}

static int tok_new(struct jp *p, enum json_type type)
{
	if (p->n >= p->max)
		return -ENOSPC;
	p->toks[p->n] = (struct json_tok){ .type = type, .start = p->pos, .end = -1 };
	return p->n++;
}

static void tok_close(struct jp *p, int t)
{
	p->toks[t].end = p->pos;
	p->toks[t].skip = p->n;
}

/* --- strings --- */

static int hex4(const unsigned char *s, uint32_t *out)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++) {
		unsigned char c = s[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
			c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;

		if (d < 0)
			return -EINVAL;
		v = v << 4 | (uint32_t)d;
	}
	*out = v;
	return 0;
}

/* The length of the UTF-8 sequence at s[0..n) if it is well-formed (no overlongs, no
 * surrogates, nothing past U+10FFFF), else 0. */
static int utf8_len(const unsigned char *s, int n)
{
	unsigned char c = s[0];
	int need;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 1, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		need = 2, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		need = 3, cp = c & 0x07;
	else
		return 0;
	if (n < need + 1)
		return 0;
	for (int i = 1; i <= need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return need + 1;
}

/* Decodes one character of an escaped string at s[*pos..end) into a code point.
 * Surrogate pairs are joined; a lone surrogate or a bad escape is -EINVAL. Raw
 * characters are returned as bytes of UTF-8 (cp > 0xff never): *raw says which. */
static int str_next(const unsigned char *s, int *pos, int end, uint32_t *cp, int *raw)
{
	int i = *pos, n;
	uint32_t lo;

	if (s[i] != '\\') {
		if (s[i] < 0x20 || s[i] == '"')
			return -EINVAL;
		n = utf8_len(s + i, end - i);
		if (n == 0)
			return -EINVAL;
		*cp = (uint32_t)i;	/* the caller copies n raw bytes from here */
		*raw = n;
		*pos = i + n;
		return 0;
	}
	*raw = 0;
	if (i + 1 >= end)
		return -EINVAL;
	switch (s[i + 1]) {
	case '"': *cp = '"'; break;
	case '\\': *cp = '\\'; break;
	case '/': *cp = '/'; break;
	case 'b': *cp = '\b'; break;
	case 'f': *cp = '\f'; break;
	case 'n': *cp = '\n'; break;
	case 'r': *cp = '\r'; break;
	case 't': *cp = '\t'; break;
	case 'u':
		if (end - i < 6 || hex4(s + i + 2, cp) != 0)
			return -EINVAL;
		if (*cp >= 0xdc00 && *cp <= 0xdfff)
			return -EINVAL;
		if (*cp >= 0xd800 && *cp <= 0xdbff) {
			if (end - i < 12 || s[i + 6] != '\\' || s[i + 7] != 'u' ||
			    hex4(s + i + 8, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff)
				return -EINVAL;
			*cp = 0x10000 + ((*cp - 0xd800) << 10) + (lo - 0xdc00);
			*pos = i + 12;
			return 0;
		}
		*pos = i + 6;
		return 0;
	default:
		return -EINVAL;
	}
	*pos = i + 2;
	return 0;
}

/* Finds the closing quote of the string opened at s[pos - 1], validating it. */
static int scan_string(struct jp *p)
{
	uint32_t cp;
	int raw, err;

	while (p->pos < p->len && p->s[p->pos] != '"') {
		err = str_next(p->s, &p->pos, p->len, &cp, &raw);
		if (err)
			return err;
	}
	return p->pos < p->len ? 0 : -EINVAL;
}

static int parse_string(struct jp *p)
{
	int t, err;

	p->pos++;
	t = tok_new(p, JSON_STR);
	if (t < 0)
		return t;
	err = scan_string(p);
	if (err)
		return err;
	tok_close(p, t);
	p->pos++;
	return 0;
}

/* --- scalars --- */

static int digits(struct jp *p)
{
	int from = p->pos;

	while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
		p->pos++;
	return p->pos > from ? 0 : -EINVAL;
}

static int parse_number(struct jp *p)
{
	int t = tok_new(p, JSON_NUM);

	if (t < 0)
		return t;
	if (p->s[p->pos] == '-')
		p->pos++;
	if (p->pos < p->len && p->s[p->pos] == '0')
		p->pos++;
	else if (digits(p) != 0)
		return -EINVAL;
	if (p->pos < p->len && p->s[p->pos] == '.') {
		p->pos++;
		if (digits(p) != 0)
			return -EINVAL;
	}
	if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
		p->pos++;
		if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
			p->pos++;
		if (digits(p) != 0)
			return -EINVAL;
	}
	tok_close(p, t);
	return 0;
}

static int parse_literal(struct jp *p, const char *word, enum json_type type)
{
	int n = (int)strlen(word), t;

	if (p->len - p->pos < n || memcmp(p->s + p->pos, word, (size_t)n) != 0)
		return -EINVAL;
	t = tok_new(p, type);
	if (t < 0)
		return t;
	p->pos += n;
	tok_close(p, t);
	return 0;
}

/* --- containers --- */

/* After an item: ',' then another item, or the closing bracket. 1: closed, 0: more. */
static int next_item(struct jp *p, unsigned char close)
{
	skip_ws(p);
	if (p->pos >= p->len)
		return -EINVAL;
	if (p->s[p->pos] == close) {
		p->pos++;
		return 1;
	}
	if (p->s[p->pos] != ',')
		return -EINVAL;
	p->pos++;
	skip_ws(p);
	return 0;
}

static int parse_member(struct jp *p, int depth)
{
	int err;

	if (p->pos >= p->len || p->s[p->pos] != '"')
		return -EINVAL;
	err = parse_string(p);
	if (err)
		return err;
	skip_ws(p);
	if (p->pos >= p->len || p->s[p->pos] != ':')
		return -EINVAL;
	p->pos++;
	return parse_value(p, depth);
}

static int parse_container(struct jp *p, int depth, bool obj)
{
	unsigned char close = obj ? '}' : ']';
	int t, err;

	if (depth + 1 > JSON_MAX_DEPTH)
		return -EINVAL;
	t = tok_new(p, obj ? JSON_OBJ : JSON_ARR);
	if (t < 0)
		return t;
	p->pos++;
	skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == close) {
		p->pos++;
		tok_close(p, t);
		return 0;
	}
	for (;;) {
		err = obj ? parse_member(p, depth + 1) : parse_value(p, depth + 1);
		if (err)
			return err;
		p->toks[t].size++;
		err = next_item(p, close);
		if (err < 0)
			return err;
		if (err == 1)
			break;
	}
	tok_close(p, t);
	return 0;
}

static int parse_value(struct jp *p, int depth)
{
	skip_ws(p);
	if (p->pos >= p->len)
		return -EINVAL;
	switch (p->s[p->pos]) {
	case '{': return parse_container(p, depth, true);
	case '[': return parse_container(p, depth, false);
	case '"': return parse_string(p);
	case 't': return parse_literal(p, "true", JSON_BOOL);
	case 'f': return parse_literal(p, "false", JSON_BOOL);
	case 'n': return parse_literal(p, "null", JSON_NULL);
	default:
		if (p->s[p->pos] == '-' || (p->s[p->pos] >= '0' && p->s[p->pos] <= '9'))
			return parse_number(p);
		return -EINVAL;
	}
}

int json_parse(const char *text, size_t len, struct json_tok *toks, int max)
{
	struct jp p = { .s = (const unsigned char *)text, .toks = toks, .max = max };
	int err;

	if (len >= INT_MAX || max < 0)
		return -EINVAL;
	p.len = (int)len;
	err = parse_value(&p, 0);
	if (err)
		return err;
	skip_ws(&p);
	return p.pos == p.len ? p.n : -EINVAL;
}

/* --- lookups --- */

/* Appends the UTF-8 of cp to out (4 bytes of room). */
static int utf8_put(uint32_t cp, unsigned char *out)
{
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (unsigned char)(0xc0 | cp >> 6);
		out[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (unsigned char)(0xe0 | cp >> 12);
		out[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (unsigned char)(0xf0 | cp >> 18);
	out[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/* The next unescaped bytes of the string token [*pos, end) into out[4]: count, or -EINVAL
 * (including for \u0000, which a C string cannot hold). */
static int str_bytes(const char *text, int *pos, int end, unsigned char out[4])
{
	const unsigned char *s = (const unsigned char *)text;
	uint32_t cp;
	int raw, err = str_next(s, pos, end, &cp, &raw);

	if (err)
		return err;
	if (raw) {
		memcpy(out, s + cp, (size_t)raw);
		return raw;
	}
	return cp == 0 ? -EINVAL : utf8_put(cp, out);
}

static bool key_eq(const char *text, const struct json_tok *t, const char *key)
{
	size_t k = 0, klen = strlen(key);
	unsigned char b[4];
	int pos = t->start, n;

	while (pos < t->end) {
		n = str_bytes(text, &pos, t->end, b);
		if (n < 0 || klen - k < (size_t)n || memcmp(key + k, b, (size_t)n) != 0)
			return false;
		k += (size_t)n;
	}
	return k == klen;
}

int json_find(const char *text, const struct json_tok *toks, int obj, const char *key)
{
	int i;

	if (obj < 0 || toks[obj].type != JSON_OBJ)
		return -1;
	i = obj + 1;
	for (int m = 0; m < toks[obj].size; m++) {
		if (key_eq(text, &toks[i], key))
			return i + 1;
		i = toks[i + 1].skip;
	}
	return -1;
}

int json_elem(const struct json_tok *toks, int arr, int i)
{
	int j;

	if (arr < 0 || toks[arr].type != JSON_ARR || i < 0 || i >= toks[arr].size)
		return -1;
	j = arr + 1;
	while (i-- > 0)
		j = toks[j].skip;
	return j;
}

int json_get_str(const char *text, const struct json_tok *toks, int i, char *out, size_t max)
{
	const struct json_tok *t;
	unsigned char b[4];
	size_t len = 0;
	int pos, n;

	if (i < 0)
		return -ENOENT;
	t = &toks[i];
	if (t->type != JSON_STR)
		return -EINVAL;
	for (pos = t->start; pos < t->end; len += (size_t)n) {
		n = str_bytes(text, &pos, t->end, b);
		if (n < 0)
			return n;
		if (max == 0 || max - 1 - len < (size_t)n)
			return -ENAMETOOLONG;
		memcpy(out + len, b, (size_t)n);
	}
	if (max == 0)
		return -ENAMETOOLONG;
	out[len] = '\0';
	return 0;
}

int json_get_int(const char *text, const struct json_tok *toks, int i, int64_t *out)
{
	const struct json_tok *t;
	uint64_t v = 0, lim;
	bool neg;
	int pos;

	if (i < 0)
		return -ENOENT;
	t = &toks[i];
	if (t->type != JSON_NUM)
		return -EINVAL;
	neg = text[t->start] == '-';
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (pos = t->start + neg; pos < t->end; pos++) {
		unsigned d = (unsigned)(text[pos] - '0');

		if (d > 9 || v > (lim - d) / 10)
			return -EINVAL;	/* a fraction, an exponent, or out of range */
		v = v * 10 + d;
	}
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

int json_get_bool(const char *text, const struct json_tok *toks, int i, bool *out)
{
	if (i < 0)
		return -ENOENT;
	if (toks[i].type != JSON_BOOL)
		return -EINVAL;
	*out = text[toks[i].start] == 't';
	return 0;
}

int json_str(const char *text, const struct json_tok *toks, int obj, const char *key,
	     char *out, size_t max)
{
	return json_get_str(text, toks, json_find(text, toks, obj, key), out, max);
}

int json_int(const char *text, const struct json_tok *toks, int obj, const char *key,
	     int64_t *out)
{
	return json_get_int(text, toks, json_find(text, toks, obj, key), out);
}

int json_bool(const char *text, const struct json_tok *toks, int obj, const char *key,
	      bool *out)
{
	return json_get_bool(text, toks, json_find(text, toks, obj, key), out);
}

/* --- writer --- */

void json_w_init(struct json_w *w, char *buf, size_t cap)
{
	memset(w, 0, sizeof(*w));
	w->buf = buf;
	w->cap = cap;
	w->first[0] = true;
	w->overflow = cap == 0;
}

/* Appends n bytes, always keeping room for the final NUL. */
static void w_raw(struct json_w *w, const char *s, size_t n)
{
	if (w->overflow)
		return;
	if (w->cap - w->len <= n) {
		w->overflow = true;
		return;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
}

static bool w_in_obj(const struct json_w *w)
{
	return w->depth > 0 && (w->obj_mask >> w->depth & 1);
}

/* Before a value: the comma, and a check that a value may go here. */
static void w_value(struct json_w *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (w_in_obj(w) || (w->depth == 0 && !w->first[0]))
		w->invalid = true;	/* a value without its key, or a second top value */
	if (!w->first[w->depth])
		w_raw(w, ",", 1);
	w->first[w->depth] = false;
}

static void w_open(struct json_w *w, bool obj)
{
	w_value(w);
	if (w->depth + 1 >= JSON_MAX_DEPTH) {
		w->invalid = true;
		return;
	}
	w_raw(w, obj ? "{" : "[", 1);
	w->depth++;
	w->first[w->depth] = true;
	w->obj_mask = (w->obj_mask & ~(1u << w->depth)) | (uint32_t)obj << w->depth;
}

static void w_close(struct json_w *w, bool obj)
{
	if (w->depth == 0 || w_in_obj(w) != obj || w->after_key) {
		w->invalid = true;
		return;
	}
	w_raw(w, obj ? "}" : "]", 1);
	w->depth--;
}

void json_w_obj(struct json_w *w) { w_open(w, true); }
void json_w_obj_end(struct json_w *w) { w_close(w, true); }
void json_w_arr(struct json_w *w) { w_open(w, false); }
void json_w_arr_end(struct json_w *w) { w_close(w, false); }

/* The quoted, escaped string; invalid UTF-8 becomes U+FFFD, so the output always parses. */
static void w_quoted(struct json_w *w, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	char esc[8];
	size_t i = 0, run;
	int l;

	w_raw(w, "\"", 1);
	while (i < n && !w->overflow) {
		for (run = i; run < n && u[run] >= 0x20 && u[run] < 0x80 && u[run] != '"' &&
			      u[run] != '\\'; run++)
			;
		w_raw(w, s + i, run - i);
		if ((i = run) >= n)
			break;
		if (u[i] == '"' || u[i] == '\\') {
			esc[0] = '\\', esc[1] = (char)u[i];
			w_raw(w, esc, 2);
			i++;
		} else if (u[i] < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", u[i]);
			w_raw(w, esc, 6);
			i++;
		} else if ((l = utf8_len(u + i, (int)(n - i < 4 ? n - i : 4))) > 0) {
			w_raw(w, s + i, (size_t)l);
			i += (size_t)l;
		} else {
			w_raw(w, "\\ufffd", 6);
			i++;
		}
	}
	w_raw(w, "\"", 1);
}

void json_w_key(struct json_w *w, const char *key)
{
	if (!w_in_obj(w) || w->after_key) {
		w->invalid = true;
		return;
	}
	if (!w->first[w->depth])
		w_raw(w, ",", 1);
	w->first[w->depth] = false;
	w_quoted(w, key, strlen(key));
	w_raw(w, ":", 1);
	w->after_key = true;
}

void json_w_strn(struct json_w *w, const char *s, size_t n)
{
	w_value(w);
	w_quoted(w, s, n);
}

void json_w_str(struct json_w *w, const char *s)
{
	json_w_strn(w, s, strlen(s));
}

void json_w_int(struct json_w *w, int64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%" PRId64, v);

	w_value(w);
	w_raw(w, num, (size_t)n);
}

void json_w_bool(struct json_w *w, bool v)
{
	w_value(w);
	w_raw(w, v ? "true" : "false", v ? 4 : 5);
}

void json_w_null(struct json_w *w)
{
	w_value(w);
	w_raw(w, "null", 4);
}

void json_w_kstr(struct json_w *w, const char *key, const char *s)
{
	json_w_key(w, key);
	json_w_str(w, s);
}

void json_w_kint(struct json_w *w, const char *key, int64_t v)
{
	json_w_key(w, key);
	json_w_int(w, v);
}

void json_w_kbool(struct json_w *w, const char *key, bool v)
{
	json_w_key(w, key);
	json_w_bool(w, v);
}

int json_w_end(struct json_w *w)
{
	if (w->overflow)
		return -ENOSPC;
	if (w->invalid || w->depth != 0 || w->after_key || w->first[0] || w->len > INT_MAX)
		return -EINVAL;
	w->buf[w->len] = '\0';
	return (int)w->len;
}

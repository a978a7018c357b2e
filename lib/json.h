/* json.h — the control plane's JSON: a strict, non-allocating tokenizer (tokens point into
 * the caller's text, jsmn-style) with typed lookups, and a writer into a fixed buffer that
 * escapes strings and tracks commas. Bodies are small (the join protocol, heartbeats). */
#ifndef CAIRN_JSON_H
#define CAIRN_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH	32

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUM, JSON_STR, JSON_ARR, JSON_OBJ };

/* One value. For JSON_STR, [start, end) is the raw text between the quotes (still escaped);
 * for the others it is the whole value. size: an object's member count or an array's
 * element count. An object's members are laid out key token, value token (and the value's
 * own sub-tokens), in order; `skip` is the index just past this token's last sub-token. */
struct json_tok {
	enum json_type type;
	int start, end;
	int size;
	int skip;
};

/* Parses text[0..len) (one value, optional surrounding whitespace; nothing else) into at
 * most max tokens. Returns the token count, -EINVAL (malformed, depth > JSON_MAX_DEPTH,
 * a bad escape, a lone surrogate, invalid UTF-8 or a control character in a string) or
 * -ENOSPC (more than max tokens). A container counts one level; a scalar at the top none. */
int json_parse(const char *text, size_t len, struct json_tok *toks, int max);

/* The index of the member `key` of the object at toks[obj] (the value's token), or -1. */
int json_find(const char *text, const struct json_tok *toks, int obj, const char *key);
/* The index of element i of the array at toks[arr], or -1. */
int json_elem(const struct json_tok *toks, int arr, int i);

/* Typed reads of toks[i]; all return 0, -ENOENT (i < 0), -EINVAL (wrong type or out of
 * range) or -ENAMETOOLONG (string longer than max - 1). Strings are unescaped (\uXXXX to
 * UTF-8, surrogate pairs joined) and NUL-terminated; an embedded \u0000 is -EINVAL. */
int json_get_str(const char *text, const struct json_tok *toks, int i, char *out, size_t max);
int json_get_int(const char *text, const struct json_tok *toks, int i, int64_t *out);
int json_get_bool(const char *text, const struct json_tok *toks, int i, bool *out);
/* Shortcuts: the member `key` of object obj. */
int json_str(const char *text, const struct json_tok *toks, int obj, const char *key,
	     char *out, size_t max);
int json_int(const char *text, const struct json_tok *toks, int obj, const char *key,
	     int64_t *out);
int json_bool(const char *text, const struct json_tok *toks, int obj, const char *key,
	      bool *out);

/* The writer. Every call after an overflow is a no-op; json_w_end reports it. Strings are
 * escaped (", \\, control characters as \u00XX); bytes that are not valid UTF-8 are written
 * as \ufffd, so the output always passes json_parse. At most JSON_MAX_DEPTH - 1 levels. */
struct json_w {
	char *buf;
	size_t cap, len;
	int depth;
	bool overflow;
	bool first[JSON_MAX_DEPTH];	/* no comma needed before the next item at this depth */
	bool after_key;
	bool invalid;			/* misuse: a value without a key, unbalanced ends */
	uint32_t obj_mask;		/* bit d: the container at depth d is an object */
};

void json_w_init(struct json_w *w, char *buf, size_t cap);
void json_w_obj(struct json_w *w);		/* { */
void json_w_obj_end(struct json_w *w);		/* } */
void json_w_arr(struct json_w *w);		/* [ */
void json_w_arr_end(struct json_w *w);		/* ] */
void json_w_key(struct json_w *w, const char *key);
void json_w_str(struct json_w *w, const char *s);
void json_w_strn(struct json_w *w, const char *s, size_t n);
void json_w_int(struct json_w *w, int64_t v);
void json_w_bool(struct json_w *w, bool v);
void json_w_null(struct json_w *w);
/* key + value in one call, for flat objects. */
void json_w_kstr(struct json_w *w, const char *key, const char *s);
void json_w_kint(struct json_w *w, const char *key, int64_t v);
void json_w_kbool(struct json_w *w, const char *key, bool v);
/* NUL-terminates; returns the length, or -ENOSPC on overflow or -EINVAL when unbalanced,
 * empty, or misused (a key outside an object, a value in an object without its key). */
int json_w_end(struct json_w *w);

#endif

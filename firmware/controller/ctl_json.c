/* ctl_json.c — normalizing copies of JSON values (see ctl_json.h) and log-safe strings. */
#include "ctl_json.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int copy_value(struct json_w *w, const char *text, const struct json_tok *toks, int i,
		      int depth);

static int copy_container(struct json_w *w, const char *text, const struct json_tok *toks,
			  int i, int depth)
{
	char key[CTL_JSON_STR_MAX];
	int obj = toks[i].type == JSON_OBJ, err;

	if (obj)
		json_w_obj(w);
	else
		json_w_arr(w);
	for (int k = 0, j = i + 1; k < toks[i].size; k++) {
		if (obj) {
			err = json_get_str(text, toks, j, key, sizeof(key));
			if (err)
				return err;
			json_w_key(w, key);
			j++;
		}
		err = copy_value(w, text, toks, j, depth + 1);
		if (err)
			return err;
		j = toks[j].skip;
	}
	if (obj)
		json_w_obj_end(w);
	else
		json_w_arr_end(w);
	return 0;
}

/* depth: containers around toks[i] in the copied value. */
static int copy_value(struct json_w *w, const char *text, const struct json_tok *toks, int i,
		      int depth)
{
	char s[CTL_JSON_STR_MAX];
	int64_t v;
	bool b;
	int err;

	switch (toks[i].type) {
	case JSON_NULL:
		json_w_null(w);
		return 0;
	case JSON_BOOL:
		err = json_get_bool(text, toks, i, &b);
		if (!err)
			json_w_bool(w, b);
		return err;
	case JSON_NUM:
		err = json_get_int(text, toks, i, &v);
		if (!err)
			json_w_int(w, v);
		return err;
	case JSON_STR:
		err = json_get_str(text, toks, i, s, sizeof(s));
		if (!err)
			json_w_str(w, s);
		return err;
	case JSON_ARR:
	case JSON_OBJ:
		return depth < CTL_JSON_DEPTH_MAX ? copy_container(w, text, toks, i, depth) : -EINVAL;
	}
	return -EINVAL;
}

int ctl_json_copy(struct json_w *w, const char *text, const struct json_tok *toks, int i)
{
	return copy_value(w, text, toks, i, 0);
}

int ctl_json_parse(const char *text, size_t len, int max_toks, struct json_tok **toks)
{
	int n;

	*toks = malloc((size_t)max_toks * sizeof(**toks));
	if (!*toks)
		return -ENOMEM;
	n = json_parse(text, len, *toks, max_toks);
	if (n < 0) {
		free(*toks);
		*toks = NULL;
	}
	return n;
}

int ctl_json_embed(struct json_w *w, const char *json)
{
	size_t len = strlen(json);
	struct json_tok *toks;
	int n, err;

	/* Every token but the outermost takes at least two bytes (itself and a separator). */
	n = ctl_json_parse(json, len, (int)(len / 2 + 2), &toks);
	if (n < 0)
		return n;
	err = ctl_json_copy(w, json, toks, 0);
	free(toks);
	return err;
}

int ctl_json_dup(const char *text, const struct json_tok *toks, int i, size_t max, char **out)
{
	struct json_w w;
	char *buf = malloc(max);
	int err;

	*out = NULL;
	if (!buf)
		return -ENOMEM;
	json_w_init(&w, buf, max);
	err = ctl_json_copy(&w, text, toks, i);
	if (!err && json_w_end(&w) < 0)
		err = -E2BIG;
	if (err) {
		free(buf);
		return err;
	}
	*out = buf;
	return 0;
}

const char *ctl_log_safe(const char *s, char *out, size_t max)
{
	size_t i;

	if (max == 0)
		return "";
	if (!s || !*s) {
		strncpy(out, "-", max - 1);
		out[max - 1] = 0;
		return out;
	}
	for (i = 0; s[i] && i + 1 < max; i++) {
		char c = s[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			 strchr("._:@/+-", c) != NULL;

		out[i] = ok ? c : '?';
	}
	out[i] = 0;
	return out;
}

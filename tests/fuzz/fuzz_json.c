/* fuzz_json.c — libFuzzer target for lib/json.c: the tokenizer's layout invariants (tokens
 * inside the text, skip/size consistent), every typed read, and the writer round trip
 * (a decoded string written back must parse and decode to the same bytes). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NTOK	256
#define STR_MAX	512

/* The children of toks[i] tile [i + 1, skip): each member/element starts where the last
 * one's sub-tokens end. */
static void check_layout(const struct json_tok *t, int n, size_t size)
{
	for (int i = 0; i < n; i++) {
		int j = i + 1, kids = t[i].type == JSON_OBJ ? 2 * t[i].size :
				      t[i].type == JSON_ARR ? t[i].size : 0;

		if (t[i].start < 0 || t[i].end < t[i].start || (size_t)t[i].end > size ||
		    t[i].skip <= i || t[i].skip > n)
			abort();
		for (int k = 0; k < kids; k++) {
			if (j >= t[i].skip || t[j].start < t[i].start || t[j].end > t[i].end)
				abort();
			j = t[j].skip;
		}
		if (j != t[i].skip)
			abort();
	}
}

/* Writes s[0..n) (no NUL) as a JSON string; it must parse back. exact: s is valid UTF-8
 * (a string json_get_str decoded), so it must also decode to the same bytes. */
static void round_trip(const char *s, size_t n, bool exact)
{
	char buf[6 * STR_MAX + 8], back[3 * STR_MAX + 1];
	struct json_tok t[2];
	struct json_w w;
	int len;

	json_w_init(&w, buf, sizeof(buf));
	json_w_strn(&w, s, n);
	len = json_w_end(&w);
	if (len < 0 || json_parse(buf, (size_t)len, t, 2) != 1 ||
	    json_get_str(buf, t, 0, back, sizeof(back)) != 0)
		abort();
	if (exact && (strlen(back) != n || memcmp(back, s, n) != 0))
		abort();
}

static void reads(const char *text, const struct json_tok *t, int n)
{
	char out[STR_MAX];
	int64_t v;
	bool b;

	for (int i = 0; i < n; i++) {
		if (json_get_str(text, t, i, out, sizeof(out)) == 0)
			round_trip(out, strlen(out), true);
		json_get_int(text, t, i, &v);
		json_get_bool(text, t, i, &b);
		if (t[i].type == JSON_OBJ) {
			json_find(text, t, i, "a");
			json_find(text, t, i, "node_id");
		}
		if (t[i].type == JSON_ARR && t[i].size > 0 && json_elem(t, i, t[i].size - 1) < 0)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_tok *t = malloc(NTOK * sizeof(*t));
	char *text = malloc(size ? size : 1);
	int n;

	if (!t || !text)
		goto out;
	memcpy(text, data, size);	/* exactly size bytes: ASan sees any overread */
	n = json_parse(text, size, t, NTOK);
	if (n == 0 || (n < 0 && n != -EINVAL && n != -ENOSPC))
		abort();
	if (n > 0) {
		check_layout(t, n, size);
		reads(text, t, n);
	}
	if (size <= STR_MAX)
		round_trip(text, strnlen(text, size), false);	/* bad UTF-8 becomes \ufffd */
out:
	free(text);
	free(t);
	return 0;
}

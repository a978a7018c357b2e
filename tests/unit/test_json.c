/* test_json.c — the strict JSON tokenizer (token layout, malformed inputs, escapes and
 * surrogates, limits), typed lookups, and the writer (escaping, misuse, overflow). */
#include "test.h"

#include <errno.h>
#include <stdio.h>

#include "../../lib/json.h"

#define NTOK 64

static int parse(const char *s, struct json_tok *t)
{
	return json_parse(s, strlen(s), t, NTOK);
}

TEST(json_parse_layout)
{
	const char *s = " {\"a\": [1, {\"b\": null}], \"c\": \"x\", \"d\": true} ";
	struct json_tok t[NTOK];

	CHECK_INT(parse(s, t), 11);
	CHECK_INT(t[0].type, JSON_OBJ);
	CHECK_INT(t[0].size, 3);
	CHECK_INT(t[0].skip, 11);
	CHECK_INT(t[0].start, 1);
	CHECK_INT(t[0].end, (int)strlen(s) - 1);
	CHECK_INT(t[1].type, JSON_STR);			/* key "a" */
	CHECK_INT(t[1].end - t[1].start, 1);
	CHECK_INT(t[2].type, JSON_ARR);
	CHECK_INT(t[2].size, 2);
	CHECK_INT(t[2].skip, 7);
	CHECK_INT(t[4].type, JSON_OBJ);
	CHECK_INT(t[6].type, JSON_NULL);
	CHECK_INT(json_find(s, t, 0, "c"), 8);
	CHECK_INT(json_find(s, t, 0, "d"), 10);
	CHECK_INT(t[10].type, JSON_BOOL);
	CHECK_INT(json_find(s, t, 0, "b"), -1);		/* not a member of the top object */
	CHECK_INT(json_find(s, t, 2, "a"), -1);		/* not an object */
	CHECK_INT(json_elem(t, 2, 1), 4);
	CHECK_INT(json_elem(t, 2, 2), -1);
	CHECK_INT(json_elem(t, 0, 0), -1);
	CHECK_INT(json_find(s, t, 4, "b"), 6);
}

TEST(json_parse_scalars)
{
	struct json_tok t[NTOK];
	int64_t v;
	bool b;

	CHECK_INT(parse("0", t), 1);
	CHECK_INT(parse(" -12.5e+3 ", t), 1);
	CHECK_INT(t[0].type, JSON_NUM);
	CHECK_INT(t[0].end - t[0].start, 8);
	CHECK_INT(parse("\"\"", t), 1);
	CHECK_INT(t[0].start, 1);
	CHECK_INT(t[0].end, 1);
	CHECK_INT(parse("[]", t), 1);
	CHECK_INT(parse("{}", t), 1);
	CHECK_INT(parse("-9223372036854775808", t), 1);
	CHECK_INT(json_get_int("-9223372036854775808", t, 0, &v), 0);
	CHECK(v == INT64_MIN);
	CHECK_INT(parse("9223372036854775807", t), 1);
	CHECK_INT(json_get_int("9223372036854775807", t, 0, &v), 0);
	CHECK(v == INT64_MAX);
	CHECK_INT(parse("9223372036854775808", t), 1);
	CHECK_INT(json_get_int("9223372036854775808", t, 0, &v), -EINVAL);
	CHECK_INT(parse("1.5", t), 1);
	CHECK_INT(json_get_int("1.5", t, 0, &v), -EINVAL);
	CHECK_INT(parse("1e3", t), 1);
	CHECK_INT(json_get_int("1e3", t, 0, &v), -EINVAL);
	CHECK_INT(parse("false", t), 1);
	CHECK_INT(json_get_bool("false", t, 0, &b), 0);
	CHECK(!b);
	CHECK_INT(json_get_bool("false", t, -1, &b), -ENOENT);
	CHECK_INT(json_get_int("false", t, 0, &v), -EINVAL);
}

TEST(json_parse_malformed)
{
	static const char *bad[] = {
		"", " ", "{", "}", "[1,]", "{\"a\":1,}", "[1 2]", "{\"a\" 1}", "{a:1}",
		"{\"a\":}", "{,}", "[,1]", "01", "-", "+1", "1.", ".5", "1e", "1e+", "0x10",
		"tru", "truex", "nul", "NaN", "Infinity", "'a'", "\"abc", "\"a\\\"",
		"// c\n1", "/* c */ 1", "1 2", "{} x", "[1]]", "\"\\x\"", "\"\\u12\"",
		"\"\\u12G4\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"",
		"\"\\ud800x\"", "\"a\tb\"", "\"a\nb\"", "\"\x01\"", "\"\xff\"",
		"\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xe2\x82\"",
		"[\"a\",]", "{\"a\":1 \"b\":2}", "\x00",
	};
	struct json_tok t[NTOK];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i], t) != -EINVAL) {
			test_fail(__FILE__, __LINE__, "accepted bad input #%zu", i);
			return;
		}
	}
	CHECK_INT(json_parse("1\0", 2, t, NTOK), -EINVAL);	/* NUL after the value */
}

TEST(json_parse_depth_and_space)
{
	char deep[2 * JSON_MAX_DEPTH + 8];
	struct json_tok t[NTOK];
	int d;

	for (d = 0; d < JSON_MAX_DEPTH; d++)
		deep[d] = '[';
	for (int i = 0; i < JSON_MAX_DEPTH; i++)
		deep[d + i] = ']';
	deep[2 * JSON_MAX_DEPTH] = '\0';
	CHECK_INT(parse(deep, t), JSON_MAX_DEPTH);
	memmove(deep + 1, deep, strlen(deep) + 1);
	deep[0] = '[';
	strcat(deep, "]");
	CHECK_INT(parse(deep, t), -EINVAL);
	CHECK_INT(json_parse("[1,2,3]", 7, t, 4), 4);
	CHECK_INT(json_parse("[1,2,3]", 7, t, 3), -ENOSPC);
	CHECK_INT(json_parse("{\"a\":1}", 7, t, 2), -ENOSPC);
	CHECK_INT(json_parse("1", 1, t, 0), -ENOSPC);
}

TEST(json_strings)
{
	const char *s = "{\"k\\u00e9y\": \"a\\\"b\\\\c\\/\\n\\t\\u20ac\\ud83d\\ude00\xc3\xa9\","
			" \"nul\": \"x\\u0000y\", \"n\": 5}";
	struct json_tok t[NTOK];
	char out[64];

	CHECK_INT(parse(s, t), 7);
	CHECK_INT(json_str(s, t, 0, "k\xc3\xa9y", out, sizeof(out)), 0);
	CHECK_STR(out, "a\"b\\c/\n\t\xe2\x82\xac\xf0\x9f\x98\x80\xc3\xa9");
	CHECK_INT(strlen(out), 17);
	CHECK_INT(json_str(s, t, 0, "k\xc3\xa9y", out, 18), 0);	/* exactly fits */
	CHECK_INT(json_str(s, t, 0, "k\xc3\xa9y", out, 17), -ENAMETOOLONG);
	CHECK_INT(json_str(s, t, 0, "k\xc3\xa9y", out, 0), -ENAMETOOLONG);
	CHECK_INT(json_str(s, t, 0, "nul", out, sizeof(out)), -EINVAL);
	CHECK_INT(json_str(s, t, 0, "n", out, sizeof(out)), -EINVAL);	/* a number */
	CHECK_INT(json_str(s, t, 0, "missing", out, sizeof(out)), -ENOENT);
	CHECK_INT(json_str(s, t, 0, "k", out, sizeof(out)), -ENOENT);	/* prefix only */
	CHECK_INT(json_str(s, t, 0, "k\xc3\xa9yz", out, sizeof(out)), -ENOENT);
}

TEST(json_typed_shortcuts)
{
	const char *s = "{\"a\": 42, \"b\": false, \"a2\": -7, \"s\": \"v\"}";
	struct json_tok t[NTOK];
	int64_t v = 0;
	bool b = true;

	CHECK(parse(s, t) > 0);
	CHECK_INT(json_int(s, t, 0, "a", &v), 0);
	CHECK_INT(v, 42);
	CHECK_INT(json_int(s, t, 0, "a2", &v), 0);
	CHECK_INT(v, -7);
	CHECK_INT(json_bool(s, t, 0, "b", &b), 0);
	CHECK(!b);
	CHECK_INT(json_int(s, t, 0, "s", &v), -EINVAL);
	CHECK_INT(json_bool(s, t, 0, "x", &b), -ENOENT);
	CHECK_INT(json_int(s, t, -1, "a", &v), -ENOENT);
}

TEST(json_writer_round_trip)
{
	char buf[256], out[64];
	struct json_tok t[NTOK];
	struct json_w w;
	int64_t v;
	int n;

	json_w_init(&w, buf, sizeof(buf));
	json_w_obj(&w);
	json_w_kstr(&w, "s", "q\"b\\\n\x01\x7f\xc3\xa9");
	json_w_kint(&w, "i", INT64_MIN);
	json_w_kbool(&w, "t", true);
	json_w_key(&w, "arr");
	json_w_arr(&w);
	json_w_int(&w, 1);
	json_w_null(&w);
	json_w_obj(&w);
	json_w_obj_end(&w);
	json_w_strn(&w, "a\0b", 3);
	json_w_arr_end(&w);
	json_w_obj_end(&w);
	n = json_w_end(&w);
	CHECK_STR(buf, "{\"s\":\"q\\\"b\\\\\\u000a\\u0001\x7f\xc3\xa9\",\"i\":-9223372036854775808,"
		       "\"t\":true,\"arr\":[1,null,{},\"a\\u0000b\"]}");
	CHECK_INT(n, (int)strlen(buf));
	CHECK_INT(json_parse(buf, (size_t)n, t, NTOK), 13);
	CHECK_INT(json_str(buf, t, 0, "s", out, sizeof(out)), 0);
	CHECK_STR(out, "q\"b\\\n\x01\x7f\xc3\xa9");
	CHECK_INT(json_int(buf, t, 0, "i", &v), 0);
	CHECK(v == INT64_MIN);
}

TEST(json_writer_invalid_utf8)
{
	char buf[64];
	struct json_tok t[4];
	struct json_w w;
	int n;

	json_w_init(&w, buf, sizeof(buf));
	json_w_str(&w, "a\xff" "b\xc3");
	n = json_w_end(&w);
	CHECK_STR(buf, "\"a\\ufffdb\\ufffd\"");
	CHECK_INT(json_parse(buf, (size_t)n, t, 4), 1);
}

TEST(json_writer_overflow)
{
	char buf[16];
	struct json_w w;

	for (size_t cap = 0; cap <= 8; cap++) {
		memset(buf, 'X', sizeof(buf));
		json_w_init(&w, buf, cap);
		json_w_obj(&w);
		json_w_kint(&w, "a", 1);
		json_w_obj_end(&w);
		/* "{"a":1}" is 7 bytes + NUL */
		CHECK_INT(json_w_end(&w), cap >= 8 ? 7 : -ENOSPC);
		for (size_t i = cap; i < sizeof(buf); i++)
			CHECK(buf[i] == 'X');	/* never past cap */
	}
	json_w_init(&w, buf, 4);
	json_w_str(&w, "abcdefgh");
	CHECK_INT(json_w_end(&w), -ENOSPC);
	json_w_init(&w, buf, sizeof(buf));
	json_w_str(&w, "\x01\x01\x01");	/* escapes: 2 + 18 bytes */
	CHECK_INT(json_w_end(&w), -ENOSPC);
}

TEST(json_writer_misuse)
{
	char buf[64];
	struct json_w w;

	json_w_init(&w, buf, sizeof(buf));
	CHECK_INT(json_w_end(&w), -EINVAL);		/* empty */
	json_w_init(&w, buf, sizeof(buf));
	json_w_obj(&w);
	CHECK_INT(json_w_end(&w), -EINVAL);		/* unclosed */
	json_w_init(&w, buf, sizeof(buf));
	json_w_obj(&w);
	json_w_int(&w, 1);				/* value without key */
	json_w_obj_end(&w);
	CHECK_INT(json_w_end(&w), -EINVAL);
	json_w_init(&w, buf, sizeof(buf));
	json_w_arr(&w);
	json_w_key(&w, "k");				/* key in an array */
	json_w_arr_end(&w);
	CHECK_INT(json_w_end(&w), -EINVAL);
	json_w_init(&w, buf, sizeof(buf));
	json_w_arr(&w);
	json_w_obj_end(&w);				/* mismatched */
	CHECK_INT(json_w_end(&w), -EINVAL);
	json_w_init(&w, buf, sizeof(buf));
	json_w_int(&w, 1);
	json_w_int(&w, 2);				/* two top values */
	CHECK_INT(json_w_end(&w), -EINVAL);
	json_w_init(&w, buf, sizeof(buf));
	json_w_obj(&w);
	json_w_key(&w, "k");
	json_w_obj_end(&w);				/* key without value */
	CHECK_INT(json_w_end(&w), -EINVAL);
	json_w_init(&w, buf, sizeof(buf));
	for (int i = 0; i < JSON_MAX_DEPTH; i++)
		json_w_arr(&w);
	for (int i = 0; i < JSON_MAX_DEPTH; i++)
		json_w_arr_end(&w);
	CHECK_INT(json_w_end(&w), -EINVAL);		/* too deep */
}

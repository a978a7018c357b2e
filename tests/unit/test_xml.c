/* test_xml.c — XML escaping and the leaf-element parser used for S3 request bodies. */
#include "test.h"

#include <stdio.h>
#include <string.h>

#include "../../lib/xml.h"

struct seen { int n; char out[2048]; };

static int collect(void *ctx, const char *name, const char *parent, int depth, char *text,
		   size_t len)
{
	struct seen *s = ctx;
	size_t used = strlen(s->out);

	snprintf(s->out + used, sizeof(s->out) - used, "%s/%s@%d=%.*s;", parent, name, depth,
		 (int)len, text);
	s->n++;
	return 0;
}

static int parse(const char *doc, struct seen *s)
{
	char buf[2048];
	size_t n = strlen(doc);

	memset(s, 0, sizeof(*s));
	memcpy(buf, doc, n + 1);
	return xml_parse(buf, n, collect, s);
}

TEST(xml_escape_specials_and_controls)
{
	char out[128];
	size_t n = xml_escape("a<b>&\"c'\x01", 9, out, sizeof(out));

	out[n] = 0;
	CHECK_STR(out, "a&lt;b&gt;&amp;&quot;c&apos;&#x01;");
}

TEST(xml_escape_truncates_safely)
{
	char out[6];
	size_t n = xml_escape("&&&", 3, out, sizeof(out));

	CHECK_INT(n, 5);
}

TEST(xml_parse_complete_multipart)
{
	struct seen s;
	int rc = parse("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		       "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		       "<Part><ETag>&quot;abc&quot;</ETag><PartNumber>1</PartNumber></Part>"
		       "<Part><ETag>\"def\"</ETag><PartNumber>2</PartNumber></Part>"
		       "</CompleteMultipartUpload>", &s);

	CHECK_INT(rc, 0);
	CHECK_STR(s.out, "Part/ETag@3=\"abc\";Part/PartNumber@3=1;CompleteMultipartUpload/Part@2=;"
			 "Part/ETag@3=\"def\";Part/PartNumber@3=2;CompleteMultipartUpload/Part@2=;"
			 "/CompleteMultipartUpload@1=;");
}

TEST(xml_parse_entities_and_utf8)
{
	struct seen s;

	CHECK_INT(parse("<a><k>x&amp;y&#x20AC;&#65;&lt;</k></a>", &s), 0);
	CHECK_STR(s.out, "a/k@2=x&y\xe2\x82\xac" "A<;/a@1=;");
}

TEST(xml_parse_prefixes_comments_empty)
{
	struct seen s;

	CHECK_INT(parse("<!-- c --><s3:Delete xmlns:s3=\"x\"><s3:Quiet>true</s3:Quiet><Object/></s3:Delete>  ", &s), 0);
	CHECK_STR(s.out, "Delete/Quiet@2=true;Delete/Object@2=;/Delete@1=;");
}

TEST(xml_parse_rejects_malformed)
{
	struct seen s;
	const char *bad[] = {
		"", "<a>", "<a></b>", "<a><b></a></b>", "text<a/>", "<a/><b/>", "<a>&bogus;</a>",
		"<a>&#0;</a>", "<a>&#xD800;</a>", "<!DOCTYPE a><a/>", "<a><![CDATA[x]]></a>",
		"<a x=\"1></a>", "<>", "</a>", "<a/>junk",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i], &s) != -1) {
			test_fail(__FILE__, __LINE__, "accepted: %s", bad[i]);
			return;
		}
	}
}

TEST(xml_parse_depth_limit)
{
	char doc[1024] = "";
	struct seen s;

	for (int i = 0; i < XML_MAX_DEPTH + 1; i++)
		strcat(doc, "<a>");
	for (int i = 0; i < XML_MAX_DEPTH + 1; i++)
		strcat(doc, "</a>");
	CHECK_INT(parse(doc, &s), -1);
}

static int stop_at_two(void *ctx, const char *name, const char *parent, int depth, char *text,
		       size_t len)
{
	int *n = ctx;

	return ++*n == 2 ? 7 : 0;
}

TEST(xml_parse_callback_stops)
{
	char doc[] = "<a><b/><c/><d/></a>";
	int n = 0;

	CHECK_INT(xml_parse(doc, strlen(doc), stop_at_two, &n), 7);
	CHECK_INT(n, 2);
}

/* test_s3.c — the S3 layer's pure helpers: byte ranges, HTTP dates, bucket names. */
#include "test.h"

#include "../../storagefs/s3/s3_req.h"

static int range(const char *v, int64_t size, int64_t *a, int64_t *b)
{
	*a = *b = -7;
	return s3_parse_range(v, strlen(v), size, a, b);
}

TEST(s3_range_forms)
{
	int64_t a, b;

	CHECK_INT(range("bytes=0-9", 100, &a, &b), 1);
	CHECK_INT(a, 0); CHECK_INT(b, 10);
	CHECK_INT(range("bytes=10-", 100, &a, &b), 1);
	CHECK_INT(a, 10); CHECK_INT(b, 100);
	CHECK_INT(range("bytes=-5", 100, &a, &b), 1);
	CHECK_INT(a, 95); CHECK_INT(b, 100);
	CHECK_INT(range("bytes=-500", 100, &a, &b), 1);
	CHECK_INT(a, 0); CHECK_INT(b, 100);
	CHECK_INT(range("bytes=90-1000", 100, &a, &b), 1);
	CHECK_INT(a, 90); CHECK_INT(b, 100);
	CHECK_INT(range("bytes=99-99", 100, &a, &b), 1);
	CHECK_INT(a, 99); CHECK_INT(b, 100);
}

TEST(s3_range_unsatisfiable_and_ignored)
{
	int64_t a, b;

	CHECK_INT(range("bytes=100-", 100, &a, &b), -1);
	CHECK_INT(range("bytes=100-200", 100, &a, &b), -1);
	CHECK_INT(range("bytes=-0", 100, &a, &b), -1);
	CHECK_INT(range("bytes=0-", 0, &a, &b), -1);
	/* Malformed or multi-range headers are ignored: the whole object is served. */
	CHECK_INT(range("bytes=5-2", 100, &a, &b), 0);
	CHECK_INT(range("bytes=0-1,5-6", 100, &a, &b), 0);
	CHECK_INT(range("items=0-1", 100, &a, &b), 0);
	CHECK_INT(range("bytes=a-b", 100, &a, &b), 0);
	CHECK_INT(range("bytes=99999999999999999999-", 100, &a, &b), 0);
}

TEST(s3_http_dates_round_trip)
{
	char buf[32];

	s3_http_date(784111777000LL, buf);
	CHECK_STR(buf, "Sun, 06 Nov 1994 08:49:37 GMT");
	CHECK_INT(s3_parse_http_date(buf), 784111777);
	CHECK_INT(s3_parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777);
	CHECK_INT(s3_parse_http_date("Sun Nov  6 08:49:37 1994"), 784111777);
	CHECK_INT(s3_parse_http_date("yesterday"), -1);
	s3_iso_date(784111777123LL, buf);
	CHECK_STR(buf, "1994-11-06T08:49:37.123Z");
}

TEST(s3_bucket_names)
{
	const char *good[] = { "abc", "my-bucket.1", "a1b", "123abc" };
	const char *bad[] = { "ab", "ABC", "-abc", "abc-", "a..b", "a.-b", "a_b", "192.168.1.1",
			      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CHECK(s3_bucket_name_valid(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(!s3_bucket_name_valid(bad[i]));
}

/* test_fileio.c — lib/fileio.c: durable whole-file writes and bounded reads. */
#include "test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../lib/config.h"
#include "../../lib/fileio.h"

TEST(fileio_write_atomic_replaces_with_mode)
{
	char path[512], buf[600];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/a/b/key", test_tmpdir());
	CHECK_INT(file_write_atomic(path, "x", 1, 0600), -ENOENT);	/* no parent yet */
	snprintf(buf, sizeof(buf), "%s/a/b", test_tmpdir());
	CHECK_INT(file_mkdirs(buf, 0700), 0);
	CHECK_INT(file_mkdirs(buf, 0700), 0);			/* exists: fine */
	CHECK_INT(file_write_atomic(path, "first", 5, 0644), 0);
	CHECK_INT(file_write_atomic(path, "second", 6, 0600), 0);
	CHECK_INT(file_read_small(path, buf, sizeof(buf)), 6);
	CHECK_STR(buf, "second");
	CHECK(stat(path, &sb) == 0);
	CHECK_INT(sb.st_mode & 0777, 0600);
	snprintf(buf, sizeof(buf), "%s.tmp", path);
	CHECK(access(buf, F_OK) != 0);			/* no temp file left */
}

TEST(fileio_read_small_bounds)
{
	char path[512], buf[6];

	snprintf(path, sizeof(path), "%s/f", test_tmpdir());
	CHECK_INT(file_read_small(path, buf, sizeof(buf)), -ENOENT);
	CHECK_INT(file_write_atomic(path, "12345", 5, 0644), 0);
	CHECK_INT(file_read_small(path, buf, sizeof(buf)), 5);	/* fits with its NUL */
	CHECK_INT(file_write_atomic(path, "123456", 6, 0644), 0);
	CHECK_INT(file_read_small(path, buf, sizeof(buf)), -EFBIG);
	CHECK_INT(file_read_small(path, buf, 0), -EINVAL);
}

TEST(fileio_random_fills)
{
	unsigned char a[32] = { 0 }, b[32] = { 0 };

	CHECK_INT(file_random(a, sizeof(a)), 0);
	CHECK_INT(file_random(b, sizeof(b)), 0);
	CHECK(memcmp(a, b, sizeof(a)) != 0);
}

/* lib/config.c: flags after the file win, and the file's replaced string is not kept. */
TEST(config_file_then_flags)
{
	const char *listen = NULL, *region = NULL;
	struct config_list data = { 0 };
	const struct config_opt opts[] = {
		{ "listen", CONFIG_STR, &listen, 0, 0, "ADDR", "" },
		{ "region", CONFIG_STR, &region, 0, 0, "R", "" },
		{ "data", CONFIG_LIST, &data, 0, 0, "DIR", "" },
	};
	char *argv[] = { "prog", "--listen", "127.0.0.1:1", "--data", "/b", NULL };
	char path[512];

	snprintf(path, sizeof(path), "%s/cfg.conf", test_tmpdir());
	CHECK_INT(file_write_atomic(path, "listen = 0.0.0.0:9\nregion = r1\ndata = /a\n", 41, 0600), 0);
	CHECK_INT(config_parse_file_args(opts, 3, path, 5, argv), 0);
	CHECK_STR(listen, "127.0.0.1:1");		/* the flag (argv's own string) */
	CHECK_STR(region, "r1");			/* the file's */
	CHECK_INT(data.n, 2);				/* both */
	CHECK_STR(data.v[0], "/a");
	CHECK_STR(data.v[1], "/b");
	/* what the file allocated and is still used is the caller's (ASan: no leak) */
	free((char *)region);
	free((char *)data.v[0]);
}

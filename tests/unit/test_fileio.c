/* test_fileio.c — lib/fileio.c: durable whole-file writes and bounded reads. */
#include "test.h"

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

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

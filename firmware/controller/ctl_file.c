/* ctl_file.c — the controller's state files by directory + name, over lib/fileio.c, and
 * its randomness (identifiers, secrets). */
#include "ctl_file.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>

#include "../../lib/fileio.h"
#include "../../lib/hash.h"

int ctl_file_write(const char *dir, const char *name, const void *data, size_t len, mode_t mode)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	return file_write_atomic(path, data, len, mode);
}

ssize_t ctl_file_read(const char *dir, const char *name, char *buf, size_t max)
{
	char path[PATH_MAX];

	if (dir && snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	return file_read_small(dir ? path : name, buf, max);
}

int ctl_random(void *buf, size_t n)
{
	return file_random(buf, n);
}

int ctl_random_hex(char *out, size_t n)
{
	unsigned char raw[64];
	int err;

	if (n > sizeof(raw))
		return -EINVAL;
	err = file_random(raw, n);
	if (err)
		return err;
	hex_encode(raw, n, out);
	return 0;
}

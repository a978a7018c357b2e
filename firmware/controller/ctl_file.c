/* ctl_file.c — whole-file writes that survive a crash at any point, whole-file reads, and
 * the controller's randomness (identifiers, secrets). */
#include "ctl_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../lib/hash.h"

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int err = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		err = -errno;
	if (close(fd) < 0 && !err)
		err = -errno;
	return err;
}

int ctl_file_write(const char *dir, const char *name, const void *data, size_t len, mode_t mode)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	int fd, err;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path) ||
	    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	/* The mode of an existing temp file (or the umask) must not widen a key's access. */
	err = fchmod(fd, mode) < 0 ? -errno : 0;
	if (!err)
		err = write_all(fd, data, len);
	if (!err && fsync(fd) < 0)
		err = -errno;
	if (close(fd) < 0 && !err)
		err = -errno;
	if (!err && rename(tmp, path) < 0)
		err = -errno;
	if (err) {
		unlink(tmp);
		return err;
	}
	return fsync_dir(dir);
}

ssize_t ctl_file_read(const char *dir, const char *name, char *buf, size_t max)
{
	char path[PATH_MAX];
	size_t len = 0;
	ssize_t n;
	int fd;

	if (max == 0)
		return -EINVAL;
	if (dir && snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(dir ? path : name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while ((n = read(fd, buf + len, max - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			n = -errno;
			goto out_close;
		}
		len += (size_t)n;
		if (len == max) {
			n = -EFBIG;
			goto out_close;
		}
	}
	buf[len] = 0;
	n = (ssize_t)len;
out_close:
	close(fd);
	return n;
}

int ctl_random(void *buf, size_t n)
{
	unsigned char *p = buf;

	while (n) {
		ssize_t got = getrandom(p, n, 0);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		p += got;
		n -= (size_t)got;
	}
	return 0;
}

int ctl_random_hex(char *out, size_t n)
{
	unsigned char raw[64];
	int err;

	if (n > sizeof(raw))
		return -EINVAL;
	err = ctl_random(raw, n);
	if (err)
		return err;
	hex_encode(raw, n, out);
	return 0;
}

/* fileio.c — durable whole-file writes, whole-file reads, directory fsync; see fileio.h. */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

int file_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;	/* no progress: never spin */
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int file_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		err = -errno;
	if (close(fd) < 0 && !err)
		err = -errno;
	return err;
}

int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[PATH_MAX], dir[PATH_MAX], *slash;
	int fd, err;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp) ||
	    snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = 0;
	else
		*slash = 0;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	/* An old temp file's mode (or the umask) must not widen a key's access. */
	err = fchmod(fd, mode) < 0 ? -errno : 0;
	if (!err)
		err = file_write_all(fd, data, len);
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
	return file_fsync_dir(dir);
}

ssize_t file_read_small(const char *path, char *buf, size_t max)
{
	size_t len = 0;
	ssize_t n;
	int fd;

	if (max == 0)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
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
	close(fd);	/* read-only: nothing to lose */
	return n;
}

int file_mkdirs(const char *path, mode_t mode)
{
	char p[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(p))
		return len ? -ENAMETOOLONG : -EINVAL;
	memcpy(p, path, len + 1);
	for (char *s = p + 1; ; s++) {
		if (*s != '/' && *s != 0)
			continue;
		char c = *s;

		*s = 0;
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return -errno;
		*s = c;
		if (!c)
			break;
	}
	return 0;
}

int file_random(void *buf, size_t n)
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

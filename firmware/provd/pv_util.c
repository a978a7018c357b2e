/* pv_util.c — file and string helpers for the agent; see pv_util.h. */
#include "pv_util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void pv_copy(char *dst, size_t max, const char *src)
{
	size_t n = strlen(src);

	if (!max)
		return;
	if (n >= max)
		n = max - 1;
	memcpy(dst, src, n);
	dst[n] = 0;
}

int pv_read_small(const char *path, char *buf, size_t max)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
	char extra;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, max - 1);
	if (n < 0)
		rc = -errno;
	else if ((size_t)n == max - 1 && read(fd, &extra, 1) == 1)
		rc = -EFBIG;
	close(fd);	/* read-only: nothing to lose */
	if (rc)
		return rc;
	while (n > 0 && isspace((unsigned char)buf[n - 1]))
		n--;
	buf[n] = 0;
	return (int)n;
}

int pv_read_alloc(const char *path, size_t max, char **out, size_t *len)
{
	char *buf = NULL;
	size_t have = 0, cap = 4096;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n;

		if (have + 1 >= cap || !buf) {
			char *nb;

			if (buf)
				cap *= 2;
			if (cap > max + 1)
				cap = max + 1;
			if (have + 1 >= cap) {
				rc = -EFBIG;
				break;
			}
			nb = realloc(buf, cap);
			if (!nb) {
				rc = -ENOMEM;
				break;
			}
			buf = nb;
		}
		n = read(fd, buf + have, cap - 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : 0;
			break;
		}
		have += (size_t)n;
	}
	close(fd);	/* read-only */
	if (rc) {
		free(buf);
		return rc;
	}
	buf[have] = 0;
	*out = buf;
	if (len)
		*len = have;
	return 0;
}

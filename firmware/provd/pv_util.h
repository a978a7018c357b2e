/* pv_util.h — small file and string helpers the agent's modules share: bounded copies and
 * reading a small file whole (durable writes are lib/fileio.h's). */
#ifndef CAIRN_PV_UTIL_H
#define CAIRN_PV_UTIL_H

#include <stddef.h>
#include <sys/types.h>

/* Copies src into dst[max], cut to fit, always NUL-terminated. */
void pv_copy(char *dst, size_t max, const char *src);
/* Reads a small text file whole into buf (NUL-terminated, trailing blanks trimmed): the
 * length, or -errno (-EFBIG when it does not fit). */
int pv_read_small(const char *path, char *buf, size_t max);
/* Reads a file whole into a malloc'ed NUL-terminated buffer (at most max bytes): 0 or -errno. */
int pv_read_alloc(const char *path, size_t max, char **out, size_t *len);

#endif

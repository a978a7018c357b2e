/* pv_util.h — small file and string helpers the agent's modules share: bounded copies,
 * reading a small file whole, and the durable write (temp, fsync, rename, fsync dir). */
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
/* Writes path durably: path.tmp with mode, fsync, rename over path, fsync the directory. */
int pv_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* mkdir -p with mode for the directories it creates. */
int pv_mkdirs(const char *path, mode_t mode);

#endif

/* ctl_file.h — the controller's small state files (keys, certificates, tokens, cluster.json):
 * written whole and durably (temp file, fsync, rename, fsync of the directory) so a crash
 * leaves either the old file or the new one, and read back whole. */
#ifndef CAIRN_CTL_FILE_H
#define CAIRN_CTL_FILE_H

#include <stddef.h>
#include <sys/types.h>

/* Writes dir/name = data[0..len) with this mode. 0 or -errno. */
int ctl_file_write(const char *dir, const char *name, const void *data, size_t len, mode_t mode);
/* Reads dir/name (dir may be NULL: name is a path) into buf[max], NUL-terminated.
 * Returns the length, -ENOENT, -EFBIG (does not fit) or -errno. */
ssize_t ctl_file_read(const char *dir, const char *name, char *buf, size_t max);
/* Fills buf with n random bytes (getrandom). 0 or -errno. */
int ctl_random(void *buf, size_t n);
/* n random bytes as 2n lowercase hex digits into out[2n+1]. 0 or -errno. */
int ctl_random_hex(char *out, size_t n);

#endif

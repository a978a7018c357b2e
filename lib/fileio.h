/* fileio.h — whole small files written so that a crash leaves the old or the new content
 * (temp file, fsync, rename, fsync of the directory), read back whole; write(2) until done;
 * directory fsync; random bytes. Shared by the daemons' state files (keys, certificates,
 * journals' side files, maps); the store's data path has its own, fd-relative, I/O. */
#ifndef CAIRN_FILEIO_H
#define CAIRN_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

/* write(2) until all len bytes are written (EINTR and short writes retried): 0 or -errno. */
int file_write_all(int fd, const void *buf, size_t len);
/* fsync of a directory (so a rename or a new entry in it is durable): 0 or -errno. */
int file_fsync_dir(const char *dir);
/* Replaces path with data[0..len), mode `mode` (also forced on the temp file, whatever the
 * umask), durably: path.tmp, fsync, rename, fsync of the parent. 0 or -errno; on failure the
 * old file is untouched and the temp file removed. */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* Reads path into buf[max], NUL-terminated: the length, -ENOENT, -EFBIG (does not fit in
 * max - 1 bytes) or -errno. */
ssize_t file_read_small(const char *path, char *buf, size_t max);
/* mkdir -p with mode for the directories it creates: 0 or -errno. */
int file_mkdirs(const char *path, mode_t mode);
/* n random bytes (getrandom): 0 or -errno. */
int file_random(void *buf, size_t n);

#endif

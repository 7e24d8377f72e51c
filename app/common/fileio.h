/*
 * fileio — reading a small file whole, and writing one atomically and
 * privately: what config-like files (credentials, state, an agent's summary)
 * need, with the care each would otherwise repeat.
 *
 * Memory: fileio_read's result is the caller's (free). Reentrant; blocking.
 */
#ifndef PATCHBAY_FILEIO_H
#define PATCHBAY_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

/* open(2) of a file that must be a regular one: never following a symbolic
 * link at the end of the path, never blocking on a FIFO (opened with
 * O_NONBLOCK, which changes nothing for a regular file), close-on-exec. A
 * FIFO, device or socket is closed again and refused with EINVAL. For files
 * in places an agent can write (its scratch directory, the work tree). */
int fileio_open_regular(const char *path, int flags, mode_t mode);

/* At most max bytes of path, NUL-terminated, not following a symbolic link
 * at the end of the path. NULL with errno when it cannot be read; EINVAL when
 * it is not a regular file (a FIFO, a device, a socket: refused without
 * blocking, since the files read this way may come from an agent). len may
 * be NULL. */
char *fileio_read(const char *path, size_t max, size_t *len);

/* The last `max` bytes of path (starting on a UTF-8 boundary), NUL-terminated,
 * not following a symbolic link at the end of the path; NULL when it cannot
 * be read or is not a regular file (as fileio_read). len may be NULL. */
char *fileio_read_tail(const char *path, size_t max, size_t *len);

/* Replaces dir/name with text, mode 0600: written to dir/name.tmp, fsync'd,
 * renamed, the directory fsync'd. Makes dir (0700) when missing. 0, or -1
 * with errno. */
int fileio_write_private(const char *dir, const char *name, const char *text, size_t len);

#endif

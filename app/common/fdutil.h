/*
 * fdutil — small descriptor and file facts that the code forking helpers
 * (the sandbox, its network jail) needs in several places.
 *
 * Reentrant; async-signal-safe where noted (between fork and exec).
 */
#ifndef PATCHBAY_FDUTIL_H
#define PATCHBAY_FDUTIL_H

/* Closes *fd when open and sets it to -1. Async-signal-safe. */
void fdutil_close(int *fd);

/* A close-on-exec duplicate of fd numbered at least low, closing fd, so a
 * child can dup2 its standard descriptors over low numbers without clobbering
 * it. -1 (and fd closed) when it cannot; fd < 0 passes through as -1. */
int fdutil_raise(int fd, int low);

/* Whether path is a regular file this process may execute. */
int fdutil_is_executable(const char *path);

#endif

/*
 * fstree — directory trees on disk: made (mkdir -p), measured (disk usage)
 * and removed (rm -rf), each without following a symbolic link out of the
 * tree. Work trees, mirrors, the sandbox's scratch and the image store all
 * need these, and each tree may hold what an agent left (a directory with no
 * permissions, a symlink to /), so the care lives in one place.
 *
 * Reentrant; blocking (disk). Returns 0 or -errno where it can fail.
 */
#ifndef PATCHBAY_FSTREE_H
#define PATCHBAY_FSTREE_H

#include <stdint.h>
#include <sys/types.h>

/* mkdir -p, with mode for the directories it makes; -ENOTDIR when path
 * exists and is not a directory. */
int fstree_mkdirs(const char *path, mode_t mode);

/* rm -rf path (a file or a directory): symbolic links are removed, never
 * followed; directories an agent left without permissions are opened up
 * first. 0 when it is gone (or was never there). */
int fstree_remove(const char *path);

/* Bytes of disk under path (st_blocks, so a sparse file counts as written),
 * not following links, not crossing into another filesystem, and not into
 * the subtrees named in skip (paths relative to path; may be NULL). 0 when
 * it cannot be read. */
uint64_t fstree_disk_usage(const char *path, const char *const *skip);

#endif

/* fstree — see fstree.h. */
#include "fstree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FSTREE_DEPTH_MAX 256 /* deeper is an agent's trick, not a repository */

int fstree_mkdirs(const char *path, mode_t mode)
{
    char *p = strdup(path);
    if (p == NULL)
        return -ENOMEM;
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, mode) != 0 && errno != EEXIST) {
                rc = -errno;
                break;
            }
            *s = c;
            if (c == '\0')
                break;
        }
    }
    if (rc == 0) {
        struct stat st;
        if (stat(path, &st) != 0)
            rc = -errno;
        else if (!S_ISDIR(st.st_mode))
            rc = -ENOTDIR;
    }
    free(p);
    return rc;
}

/* Empties the directory open at dirfd (closed here). An agent may have left
 * directories without permissions: each is opened up before it is read. */
static int remove_at(int dirfd, int depth)
{
    int rc = 0;
    DIR *d = fdopendir(dirfd);
    if (d == NULL) {
        rc = -errno;
        close(dirfd);
        return rc;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if ((st.st_mode & 0700) != 0700)
                fchmodat(dirfd, de->d_name, 0700, 0);
            int sub = depth < FSTREE_DEPTH_MAX ? openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                                               : -1;
            int r = sub < 0 ? (depth < FSTREE_DEPTH_MAX ? -errno : -ELOOP) : remove_at(sub, depth + 1);
            if (r == 0 && unlinkat(dirfd, de->d_name, AT_REMOVEDIR) != 0 && errno != ENOENT)
                r = -errno;
            if (r != 0 && rc == 0)
                rc = r;
        } else if (unlinkat(dirfd, de->d_name, 0) != 0 && errno != ENOENT && rc == 0) {
            rc = -errno;
        }
    }
    closedir(d);
    return rc;
}

int fstree_remove(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode))
        return unlink(path) == 0 ? 0 : -errno;
    if ((st.st_mode & 0700) != 0700)
        chmod(path, 0700);
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = remove_at(fd, 0);
    if (rc == 0 && rmdir(path) != 0 && errno != ENOENT)
        rc = -errno;
    return rc;
}

static int skipped(const char *rel, const char *const *skip)
{
    for (size_t i = 0; skip != NULL && skip[i] != NULL; i++)
        if (strcmp(rel, skip[i]) == 0)
            return 1;
    return 0;
}

/* Closes dirfd. */
static uint64_t usage_at(int dir_fd, dev_t dev, const char *rel, const char *const *skip, int depth)
{
    uint64_t total = 0;
    DIR *d = fdopendir(dir_fd);
    if (d == NULL) {
        close(dir_fd);
        return 0;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_dev != dev)
            continue;
        total += (uint64_t)st.st_blocks * 512u;
        if (!S_ISDIR(st.st_mode) || depth >= FSTREE_DEPTH_MAX)
            continue;
        char sub[PATH_MAX];
        if (snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "", de->d_name) >= (int)sizeof(sub) ||
            skipped(sub, skip))
            continue;
        int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0)
            total += usage_at(fd, dev, sub, skip, depth + 1);
    }
    closedir(d);
    return total;
}

uint64_t fstree_disk_usage(const char *path, const char *const *skip)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return 0;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return 0;
    }
    return usage_at(fd, st.st_dev, "", skip, 0);
}

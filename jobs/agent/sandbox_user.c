/* sandbox_user — see sandbox_user.h. */
#include "sandbox_user.h"
#include "app/common/fstree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define GIVE_DEPTH_MAX 256

int sandbox_user_acquire(sandbox_user_t *u, const char *data_dir, uid_t base, unsigned count, char *err,
                         size_t err_len)
{
    u->uid = 0;
    u->gid = 0;
    u->lock_fd = -1;
    if (geteuid() != 0 || count == 0)
        return 0;
    char dir[PATH_MAX], path[PATH_MAX + 32];
    snprintf(dir, sizeof(dir), "%s/sandbox/users", data_dir);
    int e = fstree_mkdirs(dir, 0700);
    if (e != 0) {
        snprintf(err, err_len, "cannot make %s: %s", dir, strerror(-e));
        return -1;
    }
    /* start somewhere else each time, so busy slots are not re-tried in order */
    unsigned first = (unsigned)getpid() % count;
    for (unsigned k = 0; k < count; k++) {
        unsigned slot = (first + k) % count;
        snprintf(path, sizeof(path), "%s/%u.lock", dir, slot);
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
            continue;
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            u->uid = (uid_t)(base + slot);
            u->gid = (gid_t)(base + slot);
            u->lock_fd = fd;
            return 0;
        }
        close(fd);
    }
    snprintf(err, err_len, "all %u sandbox users (from %u) are taken by running jobs", count, (unsigned)base);
    return -1;
}

void sandbox_user_release(sandbox_user_t *u)
{
    if (u->lock_fd >= 0)
        close(u->lock_fd); /* the lock goes with the descriptor */
    u->lock_fd = -1;
    u->uid = 0;
    u->gid = 0;
}

static int kept(const char *rel, const char *const *keep)
{
    for (size_t i = 0; keep != NULL && keep[i] != NULL; i++)
        if (strcmp(rel, keep[i]) == 0)
            return 1;
    return 0;
}

/* Closes dir_fd. */
static int give_at(const sandbox_user_t *u, int dir_fd, dev_t dev, const char *rel, const char *const *keep, int depth,
                   char *err, size_t err_len)
{
    DIR *d = fdopendir(dir_fd);
    if (d == NULL) {
        close(dir_fd);
        snprintf(err, err_len, "cannot read %s: %s", rel[0] ? rel : ".", strerror(errno));
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char sub[PATH_MAX];
        snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "", e->d_name);
        if (kept(sub, keep))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_dev != dev)
            continue;
        if (fchownat(dirfd(d), e->d_name, u->uid, u->gid, AT_SYMLINK_NOFOLLOW) != 0) {
            snprintf(err, err_len, "cannot give %s to the sandbox's user: %s", sub, strerror(errno));
            rc = -1;
            break;
        }
        if (!S_ISDIR(st.st_mode))
            continue;
        if (depth >= GIVE_DEPTH_MAX) {
            snprintf(err, err_len, "%s is nested too deep", sub);
            rc = -1;
            break;
        }
        int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || give_at(u, fd, dev, sub, keep, depth + 1, err, err_len) != 0) {
            if (fd < 0)
                snprintf(err, err_len, "cannot open %s: %s", sub, strerror(errno));
            rc = -1;
        }
    }
    closedir(d);
    return rc;
}

int sandbox_user_give(const sandbox_user_t *u, const char *dir, const char *const *keep, char *err, size_t err_len)
{
    if (u->uid == 0)
        return 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || fchown(fd, u->uid, u->gid) != 0) {
        snprintf(err, err_len, "cannot give %s to the sandbox's user: %s", dir, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return give_at(u, fd, st.st_dev, "", keep, 0, err, err_len);
}

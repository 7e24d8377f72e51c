/* fileio — see fileio.h. */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* O_NONBLOCK: a FIFO someone put where a file was expected opens at once
 * (instead of waiting for a writer forever) and is then refused, as are
 * devices and sockets. On a regular file the flag changes nothing. */
int fileio_open_regular(const char *path, int flags, mode_t mode)
{
    int fd = open(path, flags | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, mode);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        errno = EINVAL;
        return -1;
    }
    return fd;
}

char *fileio_read(const char *path, size_t max, size_t *len)
{
    int fd = fileio_open_regular(path, O_RDONLY, 0);
    if (fd < 0)
        return NULL;
    char *buf = malloc(max + 1);
    size_t got = 0;
    while (buf != NULL && got < max) {
        ssize_t n = read(fd, buf + got, max - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int saved = errno;
            free(buf);
            close(fd);
            errno = saved;
            return NULL;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (buf == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    buf[got] = '\0';
    if (len != NULL)
        *len = got;
    return buf;
}

int fileio_write_private(const char *dir, const char *name, const char *text, size_t len)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path) ||
        snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, name) >= (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    int ok = done == len && fchmod(fd, 0600) == 0 && fsync(fd) == 0;
    int saved = errno;
    if (close(fd) != 0 && ok) {
        ok = 0;
        saved = errno;
    }
    if (!ok || rename(tmp, path) != 0) {
        saved = ok ? errno : saved;
        unlink(tmp);
        errno = saved;
        return -1;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

char *fileio_read_tail(const char *path, size_t max, size_t *len)
{
    int fd = fileio_open_regular(path, O_RDONLY, 0);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return NULL;
    }
    off_t start = st.st_size > (off_t)max ? st.st_size - (off_t)max : 0;
    char *buf = malloc(max + 1);
    ssize_t n = buf ? pread(fd, buf, max, start) : -1;
    close(fd);
    if (n < 0) {
        free(buf);
        return NULL;
    }
    size_t skip = 0;
    while (start > 0 && skip < (size_t)n && ((unsigned char)buf[skip] & 0xC0) == 0x80)
        skip++; /* do not begin inside a UTF-8 sequence */
    memmove(buf, buf + skip, (size_t)n - skip);
    buf[(size_t)n - skip] = '\0';
    if (len)
        *len = (size_t)n - skip;
    return buf;
}

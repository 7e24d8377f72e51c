/* fdutil — see fdutil.h. */
#include "fdutil.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

void fdutil_close(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

int fdutil_raise(int fd, int low)
{
    if (fd < 0)
        return -1;
    int hi = fcntl(fd, F_DUPFD_CLOEXEC, low);
    close(fd);
    return hi;
}

int fdutil_is_executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* secret — see secret.h. */
#include "secret.h"
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Crockford's base32: no I, L, O or U, so nothing reads as something else. */
static const char code_alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

#define CODE_CHARS 16
#define CODE_GROUP 4

int secret_random_hex(char *out, size_t out_len, size_t nbytes)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[64];
    if (nbytes > sizeof(raw) || out_len < 2 * nbytes + 1 || RAND_bytes(raw, (int)nbytes) != 1)
        return -1;
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * nbytes] = '\0';
    OPENSSL_cleanse(raw, sizeof(raw));
    return 0;
}

int secret_random_code(char *out)
{
    unsigned char raw[CODE_CHARS];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < CODE_CHARS; i++) {
        if (i > 0 && i % CODE_GROUP == 0)
            out[o++] = '-';
        out[o++] = code_alphabet[raw[i] & 31]; /* 32 letters: the low 5 bits are uniform */
    }
    out[o] = '\0';
    OPENSSL_cleanse(raw, sizeof(raw));
    return 0;
}

int secret_code_normalize(const char *typed, size_t len, char *out)
{
    size_t n = 0, o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = typed[i];
        if (c == '-' || c == ' ' || c == '\t')
            continue;
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (c == 'O')
            c = '0';
        else if (c == 'I' || c == 'L')
            c = '1';
        if (c == '\0' || strchr(code_alphabet, c) == NULL || n == CODE_CHARS)
            return -1;
        if (n > 0 && n % CODE_GROUP == 0)
            out[o++] = '-';
        out[o++] = c;
        n++;
    }
    out[o] = '\0';
    return n == CODE_CHARS ? 0 : -1;
}

int secret_file_read(const char *dir, const char *name, char *out, size_t out_len)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
        return errno = ENAMETOOLONG, -1;
    size_t len = 0;
    char *text = fileio_read(path, 1024, &len);
    if (text == NULL)
        return -1;
    size_t n = strcspn(text, "\r\n");
    int rc = 0;
    if (n == 0 || n >= out_len) {
        errno = EINVAL;
        rc = -1;
    } else {
        memcpy(out, text, n);
        out[n] = '\0';
    }
    OPENSSL_cleanse(text, len);
    free(text);
    return rc;
}

int secret_file_ensure(const char *dir, const char *name, const char *fresh, char *out, size_t out_len,
                       int *created)
{
    *created = 0;
    if (secret_file_read(dir, name, out, out_len) == 0)
        return 0;
    if (errno != ENOENT)
        return -1;
    char path[PATH_MAX], tmp[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path) ||
        snprintf(tmp, sizeof(tmp), "%s/.%s.%ld", dir, name, (long)getpid()) >= (int)sizeof(tmp))
        return errno = ENAMETOOLONG, -1;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    size_t len = strlen(fresh);
    int ok = fchmod(fd, 0600) == 0 && write(fd, fresh, len) == (ssize_t)len && write(fd, "\n", 1) == 1 &&
             fsync(fd) == 0;
    int saved = errno;
    close(fd);
    /* link(2) never replaces: whoever links first made the value in effect */
    int linked = ok && link(tmp, path) == 0;
    if (ok && !linked)
        saved = errno;
    unlink(tmp);
    if (linked) {
        *created = 1;
        return secret_file_read(dir, name, out, out_len);
    }
    if (ok && saved == EEXIST)
        return secret_file_read(dir, name, out, out_len);
    errno = saved;
    return -1;
}

int secret_file_replace(const char *dir, const char *name, const char *value)
{
    char line[1100];
    int n = snprintf(line, sizeof(line), "%s\n", value);
    if (n < 0 || (size_t)n >= sizeof(line))
        return errno = EINVAL, -1;
    int rc = fileio_write_private(dir, name, line, (size_t)n);
    OPENSSL_cleanse(line, sizeof(line));
    return rc;
}

int secret_equals(const char *expected, const char *given, size_t given_len)
{
    size_t n = strlen(expected);
    /* the length is not the secret: 64 hex digits or 19 code characters */
    return n > 0 && given != NULL && given_len == n && CRYPTO_memcmp(expected, given, n) == 0;
}

/*
 * spool — see spool.h. Strings are stored with their NUL so a drained record
 * can point straight into the mapped file.
 */
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SPOOL_MAGIC "PBS1"
#define SPOOL_HEADER_BYTES 12
/* a record is a delivery body (<= 25 MiB by default) plus small fields; refuse
 * lengths no configuration could produce, so a corrupt header cannot make us
 * allocate gigabytes */
#define SPOOL_RECORD_MAX_BYTES (1024u * 1024u * 1024u)

/* The file is opened for each batch rather than kept open: an operator who
 * moves or deletes it, or a disk swapped under it, is seen at the next
 * write instead of writing into a file nobody will read. One open per
 * fsync'd batch costs nothing next to the fsync. */
struct spool_s {
    char *path;
    size_t depth;
};

static uint32_t crc32c(const unsigned char *p, size_t n)
{
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8), p[2] = (unsigned char)(v >> 16), p[3] = (unsigned char)(v >> 24);
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- record encoding ---- */

static size_t str_bytes(size_t n)
{
    return 4 + n + 1;
}

static unsigned char *put_str(unsigned char *p, const char *s, size_t n)
{
    put_u32(p, (uint32_t)n);
    memcpy(p + 4, s, n);
    p[4 + n] = '\0';
    return p + str_bytes(n);
}

int spool_record_encode(spool_record_t *out, const queue_delivery_t *d)
{
    size_t n = str_bytes(strlen(d->delivery)) + 8 + str_bytes(d->payload_len) + 4;
    for (size_t i = 0; i < d->fields->count; i++)
        n += str_bytes(strlen(d->fields->items[i].name)) + str_bytes(strlen(d->fields->items[i].value));
    out->data = NULL;
    out->len = 0;
    if (n > SPOOL_RECORD_MAX_BYTES)
        return -1;
    unsigned char *rec = malloc(SPOOL_HEADER_BYTES + n);
    if (rec == NULL)
        return -1;
    unsigned char *p = rec + SPOOL_HEADER_BYTES;
    p = put_str(p, d->delivery, strlen(d->delivery));
    uint64_t ms = (uint64_t)d->received_ms;
    put_u32(p, (uint32_t)ms);
    put_u32(p + 4, (uint32_t)(ms >> 32));
    p += 8;
    p = put_str(p, d->payload, d->payload_len);
    put_u32(p, (uint32_t)d->fields->count);
    p += 4;
    for (size_t i = 0; i < d->fields->count; i++) {
        p = put_str(p, d->fields->items[i].name, strlen(d->fields->items[i].name));
        p = put_str(p, d->fields->items[i].value, strlen(d->fields->items[i].value));
    }
    memcpy(rec, SPOOL_MAGIC, 4);
    put_u32(rec + 4, (uint32_t)n);
    put_u32(rec + 8, 0); /* spool_append fills in the checksum */
    out->data = rec;
    out->len = SPOOL_HEADER_BYTES + n;
    return 0;
}

void spool_record_free(spool_record_t *r)
{
    free(r->data);
    r->data = NULL;
    r->len = 0;
}

typedef struct {
    const unsigned char *p, *end;
} reader_t;

static int get_str(reader_t *r, const char **s, size_t *n)
{
    if (r->end - r->p < 4)
        return -1;
    uint32_t len = get_u32(r->p);
    if ((size_t)(r->end - r->p) < str_bytes(len) || r->p[4 + len] != '\0')
        return -1;
    *s = (const char *)r->p + 4;
    *n = len;
    r->p += str_bytes(len);
    return 0;
}

static int decode(const unsigned char *p, size_t n, queue_delivery_t *d, job_fields_t *fields)
{
    reader_t r = {p, p + n};
    size_t len;
    if (get_str(&r, &d->delivery, &len) != 0 || len > QUEUE_DELIVERY_MAX_BYTES || r.end - r.p < 8)
        return -1;
    d->received_ms = (int64_t)((uint64_t)get_u32(r.p) | (uint64_t)get_u32(r.p + 4) << 32);
    r.p += 8;
    if (get_str(&r, &d->payload, &d->payload_len) != 0 || r.end - r.p < 4)
        return -1;
    uint32_t count = get_u32(r.p);
    r.p += 4;
    if (count > JOB_MAX_FIELDS)
        return -1;
    fields->count = 0;
    for (uint32_t i = 0; i < count; i++) {
        const char *name, *value;
        if (get_str(&r, &name, &len) != 0 || get_str(&r, &value, &len) != 0)
            return -1;
        job_fields_add(fields, name, value);
    }
    d->fields = fields;
    return r.p == r.end ? 0 : -1;
}

/* Walks whole, valid records from the start; returns the offset where the
 * valid prefix ends, and counts records in *count. */
static size_t scan(const unsigned char *base, size_t size, size_t *count)
{
    size_t off = 0;
    *count = 0;
    while (size - off >= SPOOL_HEADER_BYTES && memcmp(base + off, SPOOL_MAGIC, 4) == 0) {
        uint32_t n = get_u32(base + off + 4);
        if (n > SPOOL_RECORD_MAX_BYTES || size - off - SPOOL_HEADER_BYTES < n ||
            crc32c(base + off + SPOOL_HEADER_BYTES, n) != get_u32(base + off + 8))
            break;
        off += SPOOL_HEADER_BYTES + n;
        (*count)++;
    }
    return off;
}

/* ---- the file ---- */

/* Opens (creating) and locks the file; -1 with errno set. */
static int open_locked(const spool_t *s)
{
    int fd = open(s->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
    }
    return fd;
}

/* Closing drops the lock too. */
static void close_unlock(int fd)
{
    close(fd);
}

/* Maps the file read-only; *base NULL for an empty file. */
static int map_file(int fd, const unsigned char **base, size_t *size)
{
    struct stat st;
    *base = NULL;
    *size = 0;
    if (fstat(fd, &st) != 0)
        return -1;
    if (st.st_size == 0 || !S_ISREG(st.st_mode))
        return 0;
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED)
        return -1;
    *base = m;
    *size = (size_t)st.st_size;
    return 0;
}

spool_t *spool_open(const char *data_dir, char *err, size_t err_len)
{
    spool_t *s = calloc(1, sizeof(*s));
    char dir[4096];
    if (s == NULL) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    snprintf(dir, sizeof(dir), "%s/spool", data_dir);
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, err_len, "cannot create %s: %s", data_dir, strerror(errno));
        goto fail;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, err_len, "cannot create %s: %s", dir, strerror(errno));
        goto fail;
    }
    if (asprintf(&s->path, "%s/spool.log", dir) < 0) {
        s->path = NULL;
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    int fd = open_locked(s);
    if (fd < 0) {
        snprintf(err, err_len, "cannot open %s: %s", s->path, strerror(errno));
        goto fail;
    }
    const unsigned char *base;
    size_t size;
    if (map_file(fd, &base, &size) != 0) {
        snprintf(err, err_len, "cannot read %s: %s", s->path, strerror(errno));
        close_unlock(fd);
        goto fail;
    }
    scan(base, size, &s->depth);
    if (base != NULL)
        munmap((void *)base, size);
    close_unlock(fd);
    return s;
fail:
    spool_close(s);
    return NULL;
}

void spool_close(spool_t *s)
{
    if (s == NULL)
        return;
    free(s->path);
    free(s);
}

size_t spool_depth(const spool_t *s)
{
    return s->depth;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int spool_append(spool_t *s, spool_record_t *records, size_t n, char *err, size_t err_len)
{
    int fd = open_locked(s);
    if (fd < 0) {
        snprintf(err, err_len, "cannot open %s: %s", s->path, strerror(errno));
        return -1;
    }
    int rc = -1;
    off_t start = lseek(fd, 0, SEEK_END);
    if (start < 0) {
        snprintf(err, err_len, "cannot seek %s: %s", s->path, strerror(errno));
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char *rec = records[i].data;
        put_u32(rec + 8, crc32c(rec + SPOOL_HEADER_BYTES, records[i].len - SPOOL_HEADER_BYTES));
        if (write_all(fd, rec, records[i].len) != 0) {
            snprintf(err, err_len, "cannot write %s: %s", s->path, strerror(errno));
            goto undo;
        }
    }
    if (fdatasync(fd) != 0) {
        snprintf(err, err_len, "cannot sync %s: %s", s->path, strerror(errno));
        goto undo;
    }
    s->depth += n;
    rc = 0;
    goto done;
undo:
    /* leave no half batch behind: those deliveries get a 503 and GitHub keeps them */
    if (ftruncate(fd, start) == 0)
        fdatasync(fd);
done:
    close_unlock(fd);
    return rc;
}

long spool_drain(spool_t *s, spool_drain_cb cb, void *ctx, char *err, size_t err_len)
{
    int fd = open_locked(s);
    if (fd < 0) {
        snprintf(err, err_len, "cannot open %s: %s", s->path, strerror(errno));
        return -1;
    }
    const unsigned char *base;
    size_t size;
    long taken = 0;
    if (map_file(fd, &base, &size) != 0) {
        snprintf(err, err_len, "cannot read %s: %s", s->path, strerror(errno));
        close_unlock(fd);
        return -1;
    }
    size_t count;
    size_t valid = scan(base, size, &count);
    int stopped = 0;
    for (size_t off = 0; off < valid;) {
        uint32_t n = get_u32(base + off + 4);
        queue_delivery_t d;
        job_fields_t fields;
        if (decode(base + off + SPOOL_HEADER_BYTES, n, &d, &fields) == 0) {
            if (cb(&d, ctx) != 0) {
                stopped = 1;
                break;
            }
        }
        /* a record that passed its CRC but does not decode was written by a
         * different version; it cannot be enqueued, so it is dropped */
        taken++;
        off += SPOOL_HEADER_BYTES + n;
    }
    if (base != NULL)
        munmap((void *)base, size);
    if (stopped) {
        /* keep the whole file: the records already taken are replayed next
         * time, and the enqueue script's dedup answers "duplicate" for them */
        s->depth = count;
        close_unlock(fd);
        return taken;
    }
    if (size > 0 && (ftruncate(fd, 0) != 0 || fdatasync(fd) != 0)) {
        snprintf(err, err_len, "cannot truncate %s: %s", s->path, strerror(errno));
        close_unlock(fd);
        return -1;
    }
    s->depth = 0;
    close_unlock(fd);
    return taken;
}

/*
 * redisproc — the private redis-server that `patchbay run` starts when no
 * REDIS_URL is given, so a single machine needs nothing but patchbay.
 *
 * It lives in <data_dir>/redis/: a unix socket (no TCP port, so nothing else
 * on the machine can reach it by accident), redis.conf, redis.log and an
 * append-only file, so queued jobs survive a restart of patchbay or of the
 * machine. The child gets PR_SET_PDEATHSIG, so it dies with patchbay even when
 * patchbay is killed with SIGKILL, and a second patchbay pointed at the same
 * data dir is refused instead of sharing it unknowingly.
 *
 * Memory: a redisproc_t owns its strings; redisproc_stop frees them.
 * Main thread only (the death signal follows the thread that forked).
 */
#ifndef PATCHBAY_REDISPROC_H
#define PATCHBAY_REDISPROC_H

#include <stddef.h>
#include <sys/types.h>

typedef struct {
    pid_t pid;
    char *dir;
    char *socket_path;
    char *url; /* unix://<socket_path> */
} redisproc_t;

#define REDISPROC_START_TIMEOUT_MS 10000
#define REDISPROC_STOP_TIMEOUT_MS 10000

/* Starts redis-server (server_path: the binary, found on PATH if not a path)
 * and waits until it answers PING. Returns 0, or -1 with a reason in err. */
int redisproc_start(redisproc_t *rp, const char *data_dir, const char *server_path, const char *appendfsync, char *err,
                    size_t err_len);
/* Where the queue is: redis_url (REDIS_URL) when set, else the private Redis
 * that `patchbay run` keeps under data_dir. Returns 1 for the latter (so an
 * error can say to start `patchbay run`), 0 for the former. */
int redisproc_queue_url(char *out, size_t out_len, const char *redis_url, const char *data_dir);

/* SIGTERM (Redis then writes its append-only file out), then SIGKILL after
 * REDISPROC_STOP_TIMEOUT_MS; frees rp's strings. Safe on a zeroed rp. */
void redisproc_stop(redisproc_t *rp);

#endif

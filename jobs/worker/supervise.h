/*
 * supervise — the worker pool's supervisor loop for `patchbay work`: the
 * pool started, then every signal taken in one place (sigtimedwait) so worker
 * deaths, stop requests and the pool's timers are handled in order.
 *
 * It runs in `patchbay work` itself, or in patchbay-supervisor
 * (app/supervisor_main.c), a small executable that links only what this needs
 * (no libcurl, libgit2 or agents), which `patchbay work` becomes with exec
 * when it is installed next to it: the process that stays up the longest
 * then maps a few libraries instead of forty.
 *
 * Main thread only; blocks the signals it handles.
 */
#ifndef PATCHBAY_SUPERVISE_H
#define PATCHBAY_SUPERVISE_H

#include "app/common/config.h"

#define SUPERVISE_PROGRAM "patchbay-supervisor"

/* Runs `concurrency` workers of `program` (NULL: this binary) until SIGTERM
 * or SIGINT and every worker has stopped: 0, or -1 when the pool could not be
 * run (logged). */
int supervise_run(const config_t *cfg, int concurrency, const char *program);

#endif

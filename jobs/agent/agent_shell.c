/* agent_shell — see agent_shell.h. */
#include "agent_shell.h"
#include "jobs/workspace/workspace.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void agent_shell_opts(sandbox_opts_t *o, const agent_settings_t *s, const char *workdir, const char *scratch,
                      const agent_hooks_t *hooks)
{
    sandbox_opts_init(o);
    o->workdir = workdir;
    o->scratch_dir = scratch;
    o->network = s->network;
    o->isolation = s->isolation;
    o->ro_overlays = workspace_shared_paths;
    o->limits = s->limits;
    o->egress_allow = s->egress_allow;
    o->path_dirs = s->path_dirs;
    o->ro_paths = s->read_only;
    o->bwrap_path = s->bwrap_path;
    o->slirp4netns_path = s->slirp4netns_path;
    o->uid = s->uid;
    o->rootfs = s->rootfs;
    o->rootfs_env = s->rootfs_env;
    o->gid = s->gid;
    o->log_job = s->job;
    if (hooks != NULL) {
        o->should_stop = hooks->should_stop;
        o->pgid = hooks->pgid;
        o->hook_arg = hooks->arg;
    }
}

int agent_shell_run(sandbox_result_t *out, const agent_settings_t *s, const char *workdir, const char *scratch,
                const char *cmd, const char *output_path, int64_t timeout_ms, const agent_hooks_t *hooks, char *err,
                size_t err_len)
{
    const char *argv[] = {"sh", "-c", cmd, NULL};
    sandbox_opts_t o;
    agent_shell_opts(&o, s, workdir, scratch, hooks);
    o.argv = argv;
    o.output_path = output_path;
    o.output_limit_bytes = AGENT_OUTPUT_LIMIT_BYTES;
    o.timeout_ms = timeout_ms;
    return sandbox_run(out, &o, err, err_len);
}

int agent_probe(const config_t *cfg, char *err, size_t err_len)
{
    char root[PATH_MAX], work[PATH_MAX + 16], scratch[PATH_MAX + 16], out[PATH_MAX + 16];
    char *abs = realpath(cfg->data_dir, NULL);
    int n = snprintf(root, sizeof(root), "%s/sandbox-probe-XXXXXX", abs ? abs : cfg->data_dir);
    free(abs);
    if (n < 0 || (size_t)n >= sizeof(root) || mkdtemp(root) == NULL) {
        snprintf(err, err_len, "cannot make a directory under %s to try the sandbox in: %s", cfg->data_dir,
                 strerror(errno));
        return SANDBOX_ERR_START;
    }
    snprintf(work, sizeof(work), "%s/work", root);
    snprintf(scratch, sizeof(scratch), "%s/scratch", root);
    snprintf(out, sizeof(out), "%s/out.log", root);
    int rc = SANDBOX_ERR_START;
    if (mkdir(work, 0755) != 0 || mkdir(scratch, 0700) != 0) {
        snprintf(err, err_len, "cannot make %s: %s", work, strerror(errno));
        goto done;
    }
    agent_settings_t s;
    agent_settings_init(&s, cfg, NULL, NULL, NULL);
    sandbox_result_t r;
    rc = agent_shell_run(&r, &s, work, scratch, "true", out, 30000, NULL, err, err_len);
    if (rc == 0 && !(r.end == SANDBOX_EXITED && r.exit_code == 0)) {
        char what[96];
        snprintf(err, err_len, "a trial command %s", sandbox_describe(&r, what, sizeof(what)));
        rc = SANDBOX_ERR_START;
    }
done:;
    /* what the trial made: its scratch's home, tmp and etc, the output file */
    static const char *const leaves[] = {"scratch/home", "scratch/tmp", "scratch/etc/passwd", "scratch/etc/group",
                                         "scratch/etc", "scratch", "work", "out.log", NULL};
    char path[PATH_MAX + 32];
    for (size_t i = 0; leaves[i] != NULL; i++) {
        snprintf(path, sizeof(path), "%s/%s", root, leaves[i]);
        if (rmdir(path) != 0)
            unlink(path);
    }
    rmdir(root);
    return rc;
}

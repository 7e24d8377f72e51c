/* agent_shell — see agent_shell.h. */
#include "agent_shell.h"
#include "jobs/workspace/workspace.h"

void agent_shell_opts(sandbox_opts_t *o, const agent_settings_t *s, const char *workdir, const char *scratch,
                      const agent_hooks_t *hooks)
{
    sandbox_opts_init(o);
    o->workdir = workdir;
    o->scratch_dir = scratch;
    o->network = s->network;
    o->isolation = s->isolation;
    o->ro_overlays = workspace_shared_paths;
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

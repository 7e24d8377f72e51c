/*
 * agent_shell — one sandboxed run with an agent's settings: the sandbox
 * options every run of a job shares (work tree, scratch, network, isolation,
 * the job's cancel hooks), and a repository's own `setup:` or `test:` command
 * run with them. The backends build on it; so do the job kinds for the
 * repository's commands.
 *
 * The scratch files below live in the job's scratch directory (outside the
 * work tree, writable inside the sandbox).
 *
 * Blocking; any thread. Options borrow from the settings.
 */
#ifndef PATCHBAY_AGENT_SHELL_H
#define PATCHBAY_AGENT_SHELL_H

#include "agent.h"
#include "sandbox.h"
#include "app/common/config.h"

#define AGENT_ENV_MAX 64
#define AGENT_PROMPT_FILE "prompt.md"
#define AGENT_SUMMARY_FILE "summary.md"
#define AGENT_OUTPUT_FILE "agent-output.log"
#define AGENT_FINDINGS_FILE "findings.json"

/* Sandbox options for a run in workdir with these settings; hooks may be NULL. */
void agent_shell_opts(sandbox_opts_t *o, const agent_settings_t *s, const char *workdir, const char *scratch,
                      const agent_hooks_t *hooks);

/* A repository's setup or test command (`sh -c cmd`) in the agent's sandbox.
 * The output file gets its output; *out as from sandbox_run. */
int agent_shell_run(sandbox_result_t *out, const agent_settings_t *s, const char *workdir, const char *scratch,
                    const char *cmd, const char *output_path, int64_t timeout_ms, const agent_hooks_t *hooks,
                    char *err, size_t err_len);

/* Whether a job's commands can run here as the config says (bubblewrap, and
 * the network policy when the network is on): runs `true` that way in a
 * scratch directory under cfg->data_dir, which it removes. 0 when it ran;
 * else the SANDBOX_ERR_* a job would meet, with the reason in err. With
 * agent.isolation none it proves only that a command starts. For worker
 * start-up, check-config and the status page; blocking, a few tens of ms. */
int agent_probe(const config_t *cfg, char *err, size_t err_len);

#endif

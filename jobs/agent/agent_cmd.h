/*
 * agent_cmd — the `command` backend: any agent CLI (Claude Code, Codex,
 * aider...) run in the sandbox with the task in PATCHBAY_PROMPT_FILE and on
 * stdin, its summary from PATCHBAY_SUMMARY_FILE (else the tail of its
 * output), its findings from PATCHBAY_REVIEW_FILE, and nothing of patchbay's
 * in its environment but the keys named in agent.env.
 *
 * Called through agent_run (agent.h). Blocking; any thread.
 */
#ifndef PATCHBAY_AGENT_CMD_H
#define PATCHBAY_AGENT_CMD_H

#include "agent.h"

int agent_cmd_run(agent_result_t *out, const agent_settings_t *s, const char *workdir, const char *scratch,
                  const char *task, size_t task_len, const agent_hooks_t *hooks, char *err, size_t err_len);

#endif

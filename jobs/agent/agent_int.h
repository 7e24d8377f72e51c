/*
 * agent_int — what the agent backends share inside jobs/ (not an interface
 * for the rest of patchbay: that is agent.h).
 */
#ifndef PATCHBAY_AGENT_INT_H
#define PATCHBAY_AGENT_INT_H

#include "agent.h"

#define AGENT_ENV_MAX 64

/* The backends, dispatched by agent_run. */
int agent_cmd_run(agent_result_t *out, const agent_settings_t *s, const char *workdir, const char *scratch,
                  const char *task, size_t task_len, const agent_hooks_t *hooks, char *err, size_t err_len);
int agent_openai_run(agent_result_t *out, const agent_settings_t *s, const char *workdir, const char *scratch,
                     const char *task, size_t task_len, const agent_hooks_t *hooks, agent_session_t *session,
                     char *err, size_t err_len);

/* The scratch files every backend uses. */
#define AGENT_PROMPT_FILE "prompt.md"
#define AGENT_SUMMARY_FILE "summary.md"
#define AGENT_OUTPUT_FILE "agent-output.log"
#define AGENT_FINDINGS_FILE "findings.json"

#endif

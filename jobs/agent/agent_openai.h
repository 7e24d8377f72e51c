/*
 * agent_openai — the `openai` backend: patchbay's own tool-calling loop over
 * any OpenAI-compatible /chat/completions endpoint, with the file tools of
 * agent_tools.h, `run` through agent_shell.h, and budgets for steps, tokens,
 * time and cost. The model's key stays in this process.
 *
 * Called through agent_run (agent.h). Blocking; any thread (one curl handle
 * per run).
 */
#ifndef PATCHBAY_AGENT_OPENAI_H
#define PATCHBAY_AGENT_OPENAI_H

#include "agent.h"

/* session may be NULL: a conversation of its own, freed at the end. */
int agent_openai_run(agent_result_t *out, const agent_settings_t *s, const char *workdir, const char *scratch,
                     const char *task, size_t task_len, const agent_hooks_t *hooks, agent_session_t *session,
                     char *err, size_t err_len);

#endif

/* agent — settings, sessions and the choice of backend; see agent.h. */
#include "agent.h"
#include "agent_cmd.h"
#include "agent_openai.h"

#include <stdlib.h>
#include <string.h>

static const char *env_value(char *const *environ_, const char *name)
{
    size_t n = name ? strlen(name) : 0;
    for (char *const *e = environ_; n > 0 && e != NULL && *e != NULL; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=' && (*e)[n + 1] != '\0')
            return *e + n + 1;
    return NULL;
}

/* A repository can ask for less than the operator allows, never for more. */
static void lower(uint64_t *limit, unsigned long long wanted)
{
    if (wanted > 0 && wanted < *limit)
        *limit = wanted;
}

void agent_settings_init(agent_settings_t *s, const config_t *cfg, const repoconfig_t *rc, char *const *environ_,
                         const char *job)
{
    memset(s, 0, sizeof(*s));
    s->backend = rc && rc->agent.backend ? rc->agent.backend : cfg->agent.backend;
    s->command = rc && rc->agent.command ? rc->agent.command : cfg->agent.command.items;
    /* the operator's timeout is also the most a repository may ask for */
    int timeout = cfg->agent.timeout;
    if (rc && rc->agent.timeout > 0 && rc->agent.timeout < timeout)
        timeout = rc->agent.timeout;
    s->timeout_ms = (int64_t)timeout * 1000;
    s->network = rc && rc->agent.network >= 0 ? rc->agent.network : cfg->agent.network;
    /* only the operator's config can say none; "auto" is the old name of bwrap */
    s->isolation = strcmp(cfg->agent.isolation, "none") == 0 ? SANDBOX_ISOLATE_NONE : SANDBOX_ISOLATE_BWRAP;
    s->limits.memory_bytes = cfg->sandbox.memory_bytes;
    s->limits.processes = (uint64_t)cfg->sandbox.processes;
    s->limits.file_size_bytes = cfg->sandbox.file_size_bytes;
    s->limits.open_files = (uint64_t)cfg->sandbox.open_files;
    s->limits.cpu_seconds = (uint64_t)cfg->sandbox.cpu_seconds;
    s->limits.tree_bytes = cfg->sandbox.tree_bytes;
    if (rc != NULL) {
        lower(&s->limits.memory_bytes, rc->sandbox.memory_bytes);
        lower(&s->limits.processes, (unsigned long long)rc->sandbox.processes);
        lower(&s->limits.file_size_bytes, rc->sandbox.file_size_bytes);
        lower(&s->limits.open_files, (unsigned long long)rc->sandbox.open_files);
        lower(&s->limits.cpu_seconds, (unsigned long long)rc->sandbox.cpu_seconds);
        lower(&s->limits.tree_bytes, rc->sandbox.tree_bytes);
    }
    s->egress_allow = (const char *const *)cfg->sandbox.egress_allow.items;
    s->path_dirs = (const char *const *)cfg->sandbox.path.items;
    s->read_only = (const char *const *)cfg->sandbox.read_only.items;
    s->bwrap_path = cfg->sandbox.bwrap_path;
    s->slirp4netns_path = cfg->sandbox.slirp4netns_path;
    s->pass_env = (const char *const *)cfg->agent.env.items;
    s->environ_ = environ_;
    s->job = job;

    const char *url = rc && rc->agent.base_url ? rc->agent.base_url : cfg->agent.openai.base_url;
    s->openai.base_url = url;
    s->openai.model = rc && rc->agent.model ? rc->agent.model : cfg->agent.openai.model;
    /* a repository may choose its endpoint, but not send the server's key elsewhere */
    if (strcmp(url, cfg->agent.openai.base_url) == 0)
        s->openai.api_key = env_value(environ_, cfg->agent.openai.api_key_env);
    s->openai.max_steps = cfg->agent.openai.max_steps;
    s->openai.max_tokens = cfg->agent.openai.max_tokens;
    s->openai.context_tokens = cfg->agent.openai.context_tokens;
    s->openai.max_output_tokens = cfg->agent.openai.max_output_tokens;
    s->openai.request_timeout_s = cfg->agent.openai.request_timeout;
    s->openai.input_price = strtod(cfg->agent.openai.input_price, NULL);
    s->openai.output_price = strtod(cfg->agent.openai.output_price, NULL);
    s->openai.max_cost = strtod(cfg->agent.openai.max_cost, NULL);
}

int agent_settings_untrusted(agent_settings_t *s, const config_t *cfg, char *const *environ_, const char *job)
{
    const config_list_t *u = &cfg->review.untrusted_agent;
    int builtin = u->count == 1 && strcmp(u->items[0], "builtin") == 0;
    agent_settings_init(s, cfg, NULL, environ_, job);
    if (builtin || (u->count == 0 && strcmp(cfg->agent.backend, "openai") == 0)) {
        s->backend = "openai";
        s->no_run = 1;
        return 0;
    }
    if (u->count > 0) {
        s->backend = "command";
        s->command = u->items;
        return 0;
    }
    memset(s, 0, sizeof(*s));
    return -1;
}

/* The operator's ask value (else agent.*), lowered by the repository's. */
static int ask_budget(int operator_ask, int operator_agent, int repo)
{
    int v = operator_ask > 0 ? operator_ask : operator_agent;
    return repo > 0 && repo < v ? repo : v;
}

void agent_settings_ask(agent_settings_t *s, const config_t *cfg, const repoconfig_t *rc)
{
    s->ask = 1;
    s->kind = "ask";
    int repo_timeout = rc == NULL ? 0 : rc->ask.timeout > 0 ? rc->ask.timeout : rc->agent.timeout;
    s->timeout_ms = (int64_t)ask_budget(cfg->ask.timeout, cfg->agent.timeout, repo_timeout) * 1000;
    s->openai.max_steps = ask_budget(cfg->ask.max_steps, cfg->agent.openai.max_steps, rc ? rc->ask.max_steps : 0);
    s->openai.max_tokens = ask_budget(cfg->ask.max_tokens, cfg->agent.openai.max_tokens, 0);
}

void agent_secrets(redact_set_t *set, const agent_settings_t *s)
{
    memset(set, 0, sizeof(*set));
    for (size_t i = 0; s->pass_env != NULL && s->pass_env[i] != NULL; i++)
        redact_set_add(set, s->pass_env[i], env_value(s->environ_, s->pass_env[i]));
    redact_set_add(set, "the model API key", s->openai.api_key);
}

void agent_session_free(agent_session_t *session)
{
    json_decref(session->messages);
    memset(session, 0, sizeof(*session));
}

void agent_result_free(agent_result_t *r)
{
    free(r->summary);
    free(r->output_tail);
    r->summary = r->output_tail = NULL;
}

int agent_run(agent_result_t *out, const agent_settings_t *s, const char *workdir, const char *scratch,
              const char *task, size_t task_len, const agent_hooks_t *hooks, agent_session_t *session, char *err,
              size_t err_len)
{
    memset(out, 0, sizeof(*out));
    if (s->backend != NULL && strcmp(s->backend, "openai") == 0)
        return agent_openai_run(out, s, workdir, scratch, task, task_len, hooks, session, err, err_len);
    return agent_cmd_run(out, s, workdir, scratch, task, task_len, hooks, err, err_len);
}

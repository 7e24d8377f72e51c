/* agent_cmd — see agent_cmd.h. */
#include "agent_cmd.h"
#include "agent_shell.h"
#include "agent_summary.h"
#include "app/common/fileio.h"
#include "app/common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


/* The agent's own keys from patchbay's environment, as "NAME=value". */
static size_t collect_env(char **out, size_t max, const agent_settings_t *s)
{
    size_t n = 0;
    for (size_t i = 0; s->pass_env != NULL && s->pass_env[i] != NULL && n < max; i++) {
        size_t nl = strlen(s->pass_env[i]);
        for (char *const *e = s->environ_; e != NULL && *e != NULL; e++)
            if (strncmp(*e, s->pass_env[i], nl) == 0 && (*e)[nl] == '=' && (*e)[nl + 1] != '\0') {
                out[n++] = *e;
                break;
            }
    }
    out[n] = NULL;
    return n;
}


int agent_cmd_run(agent_result_t *out, const agent_settings_t *s, const char *workdir, const char *scratch,
                  const char *task, size_t task_len, const agent_hooks_t *hooks, char *err, size_t err_len)
{
    char prompt[4096], summary[4096], output[4096], review[4096];
    snprintf(prompt, sizeof(prompt), "%s/" AGENT_PROMPT_FILE, scratch);
    snprintf(summary, sizeof(summary), "%s/" AGENT_SUMMARY_FILE, scratch);
    snprintf(output, sizeof(output), "%s/" AGENT_OUTPUT_FILE, scratch);
    snprintf(review, sizeof(review), "%s/" AGENT_FINDINGS_FILE, scratch);
    int pfd = fileio_open_regular(prompt, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    FILE *f = pfd >= 0 ? fdopen(pfd, "w") : NULL;
    if (f == NULL && pfd >= 0)
        close(pfd);
    if (f == NULL || fwrite(task, 1, task_len, f) != task_len) {
        snprintf(err, err_len, "cannot write %s: %s", prompt, strerror(errno));
        if (f)
            fclose(f);
        return SANDBOX_ERR_START;
    }
    fclose(f);
    unlink(summary);

    char vars[4][4200];
    snprintf(vars[0], sizeof(vars[0]), "PATCHBAY_PROMPT_FILE=%s", prompt);
    snprintf(vars[1], sizeof(vars[1]), "PATCHBAY_SUMMARY_FILE=%s", summary);
    snprintf(vars[2], sizeof(vars[2]), "PATCHBAY_REVIEW_FILE=%s", review);
    /* one script can serve every kind: a question is answered, not fixed */
    snprintf(vars[3], sizeof(vars[3]), "PATCHBAY_JOB_KIND=%s", s->kind ? s->kind : "");
    char *env[AGENT_ENV_MAX + 5];
    size_t n = collect_env(env, AGENT_ENV_MAX, s);
    env[n++] = vars[0];
    env[n++] = vars[1];
    env[n++] = vars[2];
    if (s->kind != NULL)
        env[n++] = vars[3];
    env[n] = NULL;

    sandbox_opts_t o;
    agent_shell_opts(&o, s, workdir, scratch, hooks);
    o.argv = (const char *const *)s->command;
    o.env = (const char *const *)env;
    o.stdin_path = prompt;
    o.output_path = output;
    o.output_limit_bytes = AGENT_OUTPUT_LIMIT_BYTES;
    o.timeout_ms = s->timeout_ms;
    sandbox_result_t r;
    int rc = sandbox_run(&r, &o, err, err_len);
    if (rc != 0)
        return rc;
    out->elapsed_ms = r.elapsed_ms;
    out->isolated = r.isolated;
    sandbox_describe(&r, out->describe, sizeof(out->describe));
    out->end = r.end == SANDBOX_TIMEOUT     ? AGENT_TIMEOUT
               : r.end == SANDBOX_CANCELLED ? AGENT_CANCELLED
               : r.end == SANDBOX_EXITED && r.exit_code == 0 ? AGENT_DONE
                                                              : AGENT_FAILED;
    /* what people read: text, never a terminal's escapes (opencode colours
     * everything), and from the output only the answer at its end */
    size_t tail_len = 0, written_len = 0;
    char *tail = fileio_read_tail(output, AGENT_TAIL_BYTES, &tail_len);
    char *written = fileio_read(summary, AGENT_SUMMARY_MAX_BYTES, &written_len);
    out->output_tail = tail ? agent_summary_clean(tail, tail_len) : NULL;
    out->summary = written ? agent_summary_clean(written, written_len) : NULL;
    out->summary_written = out->summary != NULL && out->summary[strspn(out->summary, " \t\r\n")] != '\0';
    if (!out->summary_written) {
        free(out->summary);
        out->summary = agent_summary_from_output(tail, tail ? tail_len : 0, r.output_bytes > tail_len);
    }
    free(tail);
    free(written);
    if (out->summary == NULL)
        out->summary = calloc(1, 1);
    log_info(NULL, s->job, "agent %s after %lld ms%s", out->describe, (long long)out->elapsed_ms,
             out->isolated ? " (bubblewrap)" : "");
    return 0;
}

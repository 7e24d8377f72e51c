/*
 * repoconfig — a repository's own settings for patchbay, from
 * .github/patchbay.yml on its default branch (never from a pull request's
 * branch, which an outsider controls):
 *
 *   setup: [npm ci]                 # commands run before the agent, in the sandbox
 *   test: npm test                  # one command; its result goes into the pull request
 *   forbidden_paths: [secrets, "*.pem"]  # globs the agent must not change
 *   branch_prefix: patchbay/        # branches are <prefix><number>-<slug>
 *   draft: false                    # open pull requests as drafts
 *   review: { auto: false, drafts: false, request_changes: false, synchronize: false }
 *   agent: { backend: command, command: [claude, -p], timeout: 1800, test_rounds: 2, network: true, attempts: 1,
 *            openai: { model: ..., base_url: ... } }
 *   environment: node20             # one of the operator's environments (an OCI image)
 *   ask: { timeout: 300, max_steps: 30 }   # what a question may spend (only lowers the operator's)
 *   sandbox: { memory_bytes: 2GiB, processes: 256, file_size_bytes: 1GiB, open_files: 1024, cpu_seconds: 600,
 *              tree_bytes: 2GiB }
 *
 * What a repository sets runs with the operator's keys, so it can choose but
 * not bring: agent.command names a program on the sandbox's PATH (never a
 * path), and limits and timeouts can only be lowered (agent_settings_init).
 *
 * Every key is optional; unknown keys and wrong types are errors that name the
 * key and its line, so a repository owner learns what to fix from the comment
 * patchbay leaves. An absent file is the defaults.
 *
 * Memory: repoconfig_t owns everything in it (repoconfig_free). Reentrant.
 */
#ifndef PATCHBAY_REPOCONFIG_H
#define PATCHBAY_REPOCONFIG_H

#include <stddef.h>

#define REPOCONFIG_PATH ".github/patchbay.yml"
#define REPOCONFIG_MAX_BYTES (64 * 1024)
#define REPOCONFIG_MAX_ITEMS 64
#define REPOCONFIG_ERR_BYTES 256
#define REPOCONFIG_ATTEMPTS_MAX 8

typedef struct {
    char **setup; /* NULL-terminated; never NULL */
    size_t nsetup;
    char *test; /* or NULL: no test command */
    char **forbidden; /* NULL-terminated; defaults to the workflows directory */
    size_t nforbidden;
    char *branch_prefix; /* "patchbay/" */
    char *environment;   /* a name from the operator's environments (or, when allowed, a docker:// image); NULL */
    int draft;
    struct {
        int auto_review;
        int drafts;
        int request_changes;
        int synchronize; /* review again on every push (auto reviews only) */
    } review;
    struct {
        char *backend;  /* NULL: the server's */
        char **command; /* NULL: the server's; else NULL-terminated argv */
        int timeout;    /* 0: the server's */
        int test_rounds; /* -1: the server's */
        int network;    /* -1: the server's */
        int attempts;   /* best of N; 0: the server's */
        char *model;    /* openai.model, or NULL */
        char *base_url; /* openai.base_url, or NULL */
    } agent;
    struct { /* 0: the operator's; more than the operator's is lowered to it */
        unsigned long long memory_bytes, file_size_bytes, tree_bytes;
        int processes, open_files, cpu_seconds;
    } sandbox;
    struct { /* 0: the operator's ask.* (else agent.*); more is lowered to it */
        int timeout, max_steps;
    } ask;
} repoconfig_t;

/* Parses text (len bytes; NULL = no file: defaults). Returns 0, or -1 with
 * "line N: key 'x': why" in err and *out left at the defaults. */
int repoconfig_parse(repoconfig_t *out, const char *text, size_t len, char *err, size_t err_len);
void repoconfig_defaults(repoconfig_t *out);
void repoconfig_free(repoconfig_t *c);

#endif

/*
 * fakegh — the fake GitHub (tests/fakes/github.py) from C tests and
 * benchmarks: start it as a child process, drive its control API, mint real
 * installation tokens (an App JWT signed here with OpenSSL, exchanged at
 * POST /app/installations/N/access_tokens, as patchbay does in production),
 * read its call log, and run git against its bare repositories.
 *
 * Memory: json_t results are the caller's (json_decref); strings returned
 * are the caller's (free). A fakegh_t is owned by one test thread.
 * Failures abort the test with a message (these are test helpers).
 */
#ifndef PATCHBAY_TESTS_FAKEGH_H
#define PATCHBAY_TESTS_FAKEGH_H

#include <jansson.h>
#include <sys/types.h>

#define FAKEGH_APP_ID 1234
#define FAKEGH_APP_SLUG "patchbay"
#define FAKEGH_BOT_ID (100000000 + FAKEGH_APP_ID) /* the fake's rule for the bot user's id */

typedef struct {
    pid_t pid;
    int port;
    char base_url[64];  /* http://127.0.0.1:PORT */
    char dir[128];      /* temp dir: key, ready file, log, git root */
    char git_root[160]; /* bare repos: <git_root>/<owner>/<repo>.git */
    void *key;          /* EVP_PKEY *, the App's private key */
} fakegh_t;

/* Starts the fake (fresh key pair, temp dir) and waits until it listens. */
void fakegh_start(fakegh_t *f);
/* SIGTERM, wait, delete the temp dir. */
void fakegh_stop(fakegh_t *f);

/* One HTTP request to the fake; body is JSON text or NULL. Returns the parsed
 * answer (or a JSON string of the raw text) and the status in *status. */
json_t *fakegh_http(fakegh_t *f, const char *method, const char *path, const char *body, const char *auth, long *status);
/* POST /_fake/<route> with a JSON body (printf format); aborts unless 2xx. */
json_t *fakegh_control(fakegh_t *f, const char *route, const char *json_fmt, ...) __attribute__((format(printf, 3, 4)));

/* A private repo "o/r" with files (JSON object text, e.g. {"a.txt":"x"}) and
 * an installation `installation_id` of its owner covering all its repos.
 * Private, so git over HTTP needs the token (public ones are readable
 * anonymously, as on GitHub). */
void fakegh_repo(fakegh_t *f, const char *full_name, const char *files_json, long installation_id);
/* An installation token, minted through the real API with an App JWT. */
char *fakegh_token(fakegh_t *f, long installation_id);
/* The call log (GET /_fake/calls?path=REGEX); since = 0 for all. */
json_t *fakegh_calls(fakegh_t *f, const char *path_regex);
/* How many calls in the log have this method and a path matching the regex. */
size_t fakegh_count(fakegh_t *f, const char *method, const char *path_regex);
void fakegh_reset_calls(fakegh_t *f);

/* Runs a shell command; returns its stdout (caller frees) and exit status. */
char *fakegh_sh(int *status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* `git --git-dir=<bare repo of full_name> <args>`, stdout trimmed; aborts on failure. */
char *fakegh_git(fakegh_t *f, const char *full_name, const char *args_fmt, ...) __attribute__((format(printf, 3, 4)));

#endif

/*
 * appcreds — the GitHub App credentials the set-up page saved (appsetup.h):
 * <data_dir>/github-app/app.json and private-key.pem, 0600 files in a 0700
 * directory. Read by config_load, the webhook threads and the workers; kept
 * apart from the set-up flow so that reading them needs no HTTP client.
 *
 * Memory: appcreds_t is plain data. Reentrant; blocking file I/O.
 */
#ifndef PATCHBAY_APPCREDS_H
#define PATCHBAY_APPCREDS_H

#include <jansson.h>
#include <limits.h>
#include <stddef.h>

#define APPSETUP_DIR "github-app"

typedef struct {
    char app_id[32];
    char slug[128];
    char name[128];
    char html_url[512];
    char webhook_secret[256];
    char key_path[PATH_MAX]; /* <data_dir>/github-app/private-key.pem */
} appcreds_t;

/* The saved credentials. 0 when they are there and whole; -1 otherwise. */
int appcreds_load(const char *data_dir, appcreds_t *out);

/* Saves a manifest conversion's answer (id, slug, name, html_url, pem,
 * webhook_secret). 0, or -1 with a reason. */
int appcreds_save(const char *data_dir, const json_t *conversion, appcreds_t *out, char *err, size_t err_len);

/* <data_dir>/github-app[/name] into out. 0, or -1 when it does not fit. */
int appcreds_path(char *out, size_t len, const char *data_dir, const char *name);

/* Replaces <data_dir>/github-app/name privately and atomically (fileio.h). */
int appcreds_write(const char *data_dir, const char *name, const char *text, size_t len);

#endif

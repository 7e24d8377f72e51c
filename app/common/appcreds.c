/* appcreds — see appcreds.h. */
#include "appcreds.h"
#include "fileio.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define APP_FILE "app.json"
#define KEY_FILE "private-key.pem"

/* ---- files ---- */

int appcreds_path(char *out, size_t len, const char *data_dir, const char *name)
{
    int n = name ? snprintf(out, len, "%s/" APPSETUP_DIR "/%s", data_dir, name)
                 : snprintf(out, len, "%s/" APPSETUP_DIR, data_dir);
    return n > 0 && (size_t)n < len ? 0 : -1;
}

int appcreds_write(const char *data_dir, const char *name, const char *text, size_t len)
{
    char dir[PATH_MAX];
    if (appcreds_path(dir, sizeof(dir), data_dir, NULL) != 0)
        return errno = ENAMETOOLONG, -1;
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST)
        return -1;
    return fileio_write_private(dir, name, text, len);
}

static void copy_field(char *out, size_t len, const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (json_is_integer(v))
        snprintf(out, len, "%lld", (long long)json_integer_value(v));
    else
        snprintf(out, len, "%s", json_string_value(v) ? json_string_value(v) : "");
}

int appcreds_load(const char *data_dir, appcreds_t *out)
{
    memset(out, 0, sizeof(*out));
    char path[PATH_MAX];
    if (data_dir == NULL || appcreds_path(path, sizeof(path), data_dir, APP_FILE) != 0 ||
        appcreds_path(out->key_path, sizeof(out->key_path), data_dir, KEY_FILE) != 0)
        return -1;
    char *text = fileio_read(path, 64 * 1024, NULL);
    json_t *app = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    if (app == NULL)
        return -1;
    copy_field(out->app_id, sizeof(out->app_id), app, "id");
    copy_field(out->slug, sizeof(out->slug), app, "slug");
    copy_field(out->name, sizeof(out->name), app, "name");
    copy_field(out->html_url, sizeof(out->html_url), app, "html_url");
    copy_field(out->webhook_secret, sizeof(out->webhook_secret), app, "webhook_secret");
    json_decref(app);
    struct stat st;
    if (out->app_id[0] == '\0' || out->webhook_secret[0] == '\0' || stat(out->key_path, &st) != 0 ||
        !S_ISREG(st.st_mode) || st.st_size == 0) {
        OPENSSL_cleanse(out->webhook_secret, sizeof(out->webhook_secret));
        return -1;
    }
    return 0;
}

int appcreds_save(const char *data_dir, const json_t *conv, appcreds_t *out, char *err, size_t err_len)
{
    const char *pem = json_string_value(json_object_get(conv, "pem"));
    const char *secret = json_string_value(json_object_get(conv, "webhook_secret"));
    if (!json_is_integer(json_object_get(conv, "id")) || pem == NULL || secret == NULL || secret[0] == '\0') {
        snprintf(err, err_len, "GitHub's answer lacks the App's id, private key or webhook secret");
        return -1;
    }
    /* the key first: app.json is what says "registered" */
    if (appcreds_write(data_dir, KEY_FILE, pem, strlen(pem)) != 0) {
        snprintf(err, err_len, "cannot write %s/" APPSETUP_DIR "/" KEY_FILE ": %s", data_dir, strerror(errno));
        return -1;
    }
    json_t *app = json_pack("{s:O, s:O?, s:O?, s:O?, s:O?, s:O?, s:s}", "id", json_object_get(conv, "id"), "slug",
                            json_object_get(conv, "slug"), "name", json_object_get(conv, "name"), "html_url",
                            json_object_get(conv, "html_url"), "client_id", json_object_get(conv, "client_id"),
                            "client_secret", json_object_get(conv, "client_secret"), "webhook_secret", secret);
    char *text = app ? json_dumps(app, JSON_INDENT(2)) : NULL;
    json_decref(app);
    int rc = text ? appcreds_write(data_dir, APP_FILE, text, strlen(text)) : -1;
    if (text) {
        OPENSSL_cleanse(text, strlen(text));
        free(text);
    }
    if (rc != 0) {
        snprintf(err, err_len, "cannot write %s/" APPSETUP_DIR "/" APP_FILE ": %s", data_dir, strerror(errno));
        return -1;
    }
    if (appcreds_load(data_dir, out) != 0) {
        snprintf(err, err_len, "the saved credentials do not read back");
        return -1;
    }
    return 0;
}


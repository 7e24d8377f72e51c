/* appsetup — see appsetup.h. */
#include "appsetup.h"
#include "ghapi.h"
#include "app/common/appcreds.h"
#include "app/common/fileio.h"
#include "app/common/log.h"
#include "app/common/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

extern const unsigned char app_manifest_yml[];
extern const size_t app_manifest_yml_len;

#define STATE_FILE "setup-state"
#define CODE_FILE APPSETUP_CODE_FILE

/* ---- the manifest ---- */

static json_t *node_json(yaml_document_t *doc, yaml_node_t *n, int depth)
{
    if (n == NULL || depth > 16)
        return NULL;
    if (n->type == YAML_SCALAR_NODE) {
        const char *v = (const char *)n->data.scalar.value;
        if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && strcmp(v, "true") == 0)
            return json_true();
        if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && strcmp(v, "false") == 0)
            return json_false();
        return json_stringn(v, n->data.scalar.length);
    }
    if (n->type == YAML_SEQUENCE_NODE) {
        json_t *a = json_array();
        for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++)
            json_array_append_new(a, node_json(doc, yaml_document_get_node(doc, *i), depth + 1));
        return a;
    }
    json_t *o = json_object();
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        if (k != NULL && k->type == YAML_SCALAR_NODE)
            json_object_set_new(o, (const char *)k->data.scalar.value,
                                node_json(doc, yaml_document_get_node(doc, p->value), depth + 1));
    }
    return o;
}

json_t *appsetup_manifest(const char *base_url, const char *webhook_path)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        return NULL;
    yaml_parser_set_input_string(&parser, app_manifest_yml, app_manifest_yml_len);
    json_t *m = NULL;
    if (yaml_parser_load(&parser, &doc)) {
        m = node_json(&doc, yaml_document_get_root_node(&doc), 0);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    if (!json_is_object(m)) {
        json_decref(m);
        return NULL;
    }
    char url[2048];
    snprintf(url, sizeof(url), "%s%s", base_url, webhook_path);
    json_t *hook = json_object_get(m, "hook_attributes");
    if (json_is_object(hook))
        json_object_set_new(hook, "url", json_string(url));
    snprintf(url, sizeof(url), "%s/setup/callback", base_url);
    json_object_set_new(m, "redirect_url", json_string(url));
    json_object_set_new(m, "url", json_string(base_url));
    return m;
}

/* ---- the set-up code and the browser that presented it ---- */

static int app_dir(const char *data_dir, char *dir, size_t len)
{
    if (appcreds_path(dir, len, data_dir, NULL) != 0)
        return errno = ENAMETOOLONG, -1;
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

int appsetup_code_new(const char *data_dir, char *code)
{
    char dir[PATH_MAX];
    if (app_dir(data_dir, dir, sizeof(dir)) != 0 || secret_random_code(code) != 0)
        return -1;
    /* a fresh code per start: one copied out of an old log opens nothing */
    return secret_file_replace(dir, CODE_FILE, code);
}

static int code_now(const char *data_dir, char *code)
{
    char dir[PATH_MAX];
    if (appcreds_path(dir, sizeof(dir), data_dir, NULL) != 0)
        return -1;
    return secret_file_read(dir, CODE_FILE, code, SECRET_CODE_BYTES + 1);
}

int appsetup_code_check(const char *data_dir, const char *typed, size_t len)
{
    char code[SECRET_CODE_BYTES + 1], given[SECRET_CODE_BYTES + 1];
    int ok = code_now(data_dir, code) == 0 && secret_code_normalize(typed, len, given) == 0 &&
             secret_equals(code, given, strlen(given));
    OPENSSL_cleanse(code, sizeof(code));
    OPENSSL_cleanse(given, sizeof(given));
    return ok ? 0 : -1;
}

/* HMAC-SHA256(code, "patchbay set-up <made> <nonce>") in hex: a session
 * cookie is good only under the code it was made with. */
static int session_mac(const char *data_dir, long long made, const char *nonce, char out[65])
{
    char code[SECRET_CODE_BYTES + 1], msg[128];
    unsigned char md[32];
    unsigned int md_len = 0;
    if (code_now(data_dir, code) != 0)
        return -1;
    int n = snprintf(msg, sizeof(msg), "patchbay set-up %lld %s", made, nonce);
    int ok = HMAC(EVP_sha256(), code, (int)strlen(code), (const unsigned char *)msg, (size_t)n, md, &md_len) != NULL;
    OPENSSL_cleanse(code, sizeof(code));
    for (unsigned int i = 0; ok && i < md_len; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return ok ? 0 : -1;
}

int appsetup_session_new(const char *data_dir, char *cookie, size_t len)
{
    char nonce[APPSETUP_NONCE_BYTES + 1], mac[65];
    long long made = (long long)time(NULL);
    if (secret_random_hex(nonce, sizeof(nonce), APPSETUP_NONCE_BYTES / 2) != 0 ||
        session_mac(data_dir, made, nonce, mac) != 0)
        return -1;
    int n = snprintf(cookie, len, "%lld.%s.%s", made, nonce, mac);
    OPENSSL_cleanse(mac, sizeof(mac));
    return n > 0 && (size_t)n < len ? 0 : -1;
}

int appsetup_session_check(const char *data_dir, const char *cookie, size_t len, char *nonce)
{
    /* "<made>.<nonce>.<mac>" */
    char buf[128], mac[65];
    if (cookie == NULL || len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, cookie, len);
    buf[len] = '\0';
    char *dot1 = strchr(buf, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (dot2 == NULL || (size_t)(dot2 - dot1 - 1) != APPSETUP_NONCE_BYTES || strlen(dot2 + 1) != 64)
        return -1;
    *dot1 = *dot2 = '\0';
    char *end = NULL;
    long long made = strtoll(buf, &end, 10);
    long long now = (long long)time(NULL);
    if (end == buf || *end != '\0' || made > now + 60 || made + APPSETUP_SESSION_TTL_S < now ||
        strspn(dot1 + 1, "0123456789abcdef") != APPSETUP_NONCE_BYTES)
        return -1;
    int ok = session_mac(data_dir, made, dot1 + 1, mac) == 0 && secret_equals(mac, dot2 + 1, 64);
    OPENSSL_cleanse(mac, sizeof(mac));
    if (ok)
        memcpy(nonce, dot1 + 1, APPSETUP_NONCE_BYTES + 1);
    return ok ? 0 : -1;
}

/* ---- the state token ---- */

/* The state file: "<state> <made> <nonce of the session it belongs to>". */
static int read_state(const char *path, char state[65], long long *made, char nonce[APPSETUP_NONCE_BYTES + 1])
{
    char *text = fileio_read(path, 256, NULL);
    int ok = text != NULL && sscanf(text, "%64s %lld %32s", state, made, nonce) == 3 && strlen(state) == 64 &&
             strlen(nonce) == APPSETUP_NONCE_BYTES && *made + APPSETUP_STATE_TTL_S > (long long)time(NULL);
    free(text);
    return ok ? 0 : -1;
}

int appsetup_state(const char *data_dir, const char *nonce, char out[65])
{
    char path[PATH_MAX], bound[APPSETUP_NONCE_BYTES + 1];
    long long made = 0;
    if (appcreds_path(path, sizeof(path), data_dir, STATE_FILE) != 0)
        return errno = ENAMETOOLONG, -1;
    /* the live state, when it belongs to this browser: a reload shows the same forms */
    if (read_state(path, out, &made, bound) == 0 && strcmp(bound, nonce) == 0)
        return 0;
    if (secret_random_hex(out, 65, 32) != 0)
        return errno = EIO, -1;
    char line[160];
    int n = snprintf(line, sizeof(line), "%s %lld %s\n", out, (long long)time(NULL), nonce);
    return appcreds_write(data_dir, STATE_FILE, line, (size_t)n);
}

int appsetup_state_take(const char *data_dir, const char *state, const char *nonce)
{
    char path[PATH_MAX], live[65] = "", bound[APPSETUP_NONCE_BYTES + 1] = "";
    long long made = 0;
    if (state == NULL || strlen(state) != 64 || appcreds_path(path, sizeof(path), data_dir, STATE_FILE) != 0)
        return -1;
    int ok = read_state(path, live, &made, bound) == 0 && secret_equals(live, state, 64) &&
             secret_equals(bound, nonce, strlen(nonce));
    if (ok)
        unlink(path); /* single use */
    return ok ? 0 : -1;
}

void appsetup_finish(const char *data_dir)
{
    char path[PATH_MAX];
    if (appcreds_path(path, sizeof(path), data_dir, CODE_FILE) == 0)
        unlink(path);
    if (appcreds_path(path, sizeof(path), data_dir, STATE_FILE) == 0)
        unlink(path);
}

/* ---- the exchange ---- */

int appsetup_exchange(json_t **out, const char *api_url, const char *code, int timeout_ms, char *err, size_t err_len)
{
    *out = NULL;
    size_t n = code ? strlen(code) : 0;
    for (size_t i = 0; i < n; i++)
        if (!((code[i] >= '0' && code[i] <= '9') || (code[i] >= 'a' && code[i] <= 'z') ||
              (code[i] >= 'A' && code[i] <= 'Z') || code[i] == '-' || code[i] == '_'))
            n = 0;
    if (n == 0 || n > 200) {
        snprintf(err, err_len, "the code GitHub sent is not one");
        return -1;
    }
    /* no App yet: an anonymous client, with the usual retries */
    ghapi_options_t o = GHAPI_OPTIONS_INIT;
    o.api_url = api_url;
    o.anonymous = 1;
    o.timeout_ms = timeout_ms;
    o.max_wait_ms = 10000;
    ghapi_app_t *app = NULL;
    if (ghapi_app_new(&app, &o, err, err_len) != GHAPI_OK)
        return -1;
    ghapi_t *gh = ghapi_new(app);
    int rc = gh ? ghapi_manifest_conversion(out, gh, code) : GHAPI_ERR_PERMANENT;
    if (rc != GHAPI_OK)
        snprintf(err, err_len, "GitHub answered %s", gh ? ghapi_error(gh) : "nothing (out of memory)");
    ghapi_free(gh);
    ghapi_app_free(app);
    return rc == GHAPI_OK ? 0 : -1;
}

/* ---- the page ---- */

static void form(strbuf_t *html, const char *action, const char *manifest_text, const char *button)
{
    strbuf_append(html, "<form method=\"post\" action=\"");
    strbuf_append_html(html, action);
    strbuf_append(html, "\"><input type=\"hidden\" name=\"manifest\" value=\"");
    strbuf_append_html(html, manifest_text);
    strbuf_append(html, "\"><button type=\"submit\">");
    strbuf_append_html(html, button);
    strbuf_append(html, "</button></form>");
}

void appsetup_render_code_form(strbuf_t *html, const char *note)
{
    strbuf_append(html, "<h2>Set-up code</h2><p>Registering the App is for whoever runs this patchbay. It printed a "
                        "one-time set-up code when it started (in its log, and in the file <code>" APPSETUP_DIR
                        "/" CODE_FILE "</code> in its data directory); enter it here.</p>");
    if (note != NULL) {
        strbuf_append(html, "<p class=\"bad\">");
        strbuf_append_html(html, note);
        strbuf_append(html, "</p>");
    }
    strbuf_append(html, "<form method=\"post\" action=\"/setup/code\"><p><input name=\"code\" required "
                        "autocomplete=\"off\" spellcheck=\"false\" placeholder=\"XXXX-XXXX-XXXX-XXXX\" size=\"22\"> "
                        "<button type=\"submit\">Continue</button></p></form>");
}

void appsetup_render(strbuf_t *html, const char *github_url, const char *base_url, const char *webhook_path,
                     const char *state, const char *org)
{
    json_t *m = appsetup_manifest(base_url, webhook_path);
    char *text = m ? json_dumps(m, JSON_COMPACT) : NULL;
    json_decref(m);
    if (text == NULL) {
        strbuf_append(html, "<p class=\"bad\">The App manifest built into this binary does not parse.</p>");
        return;
    }
    size_t glen = strlen(github_url);
    while (glen > 0 && github_url[glen - 1] == '/')
        glen--;
    strbuf_t action = STRBUF_INIT;
    strbuf_append(html, "<h2>Register the GitHub App</h2><p>GitHub creates the App from patchbay’s manifest "
                        "(its permissions and events, the webhook at <code>");
    strbuf_append_html(html, base_url);
    strbuf_append_html(html, webhook_path);
    strbuf_append(html, "</code>) and sends you back here; patchbay keeps its credentials in its data directory "
                        "and uses them at once. Then install the App on your repositories.</p>");
    if (org != NULL) {
        strbuf_appendf(&action, "%.*s/organizations/", (int)glen, github_url);
        for (const char *p = org; *p; p++)
            if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-')
                strbuf_appendn(&action, p, 1);
        strbuf_appendf(&action, "/settings/apps/new?state=%s", state);
        char button[160];
        snprintf(button, sizeof(button), "Register GitHub App for %.100s", org);
        form(html, action.data, text, button);
    } else {
        strbuf_appendf(&action, "%.*s/settings/apps/new?state=%s", (int)glen, github_url, state);
        form(html, action.data, text, "Register GitHub App on my account");
        strbuf_append(html, "<form method=\"get\" action=\"/setup/org\"><p>Or for an organization: "
                            "<input name=\"org\" required pattern=\"[A-Za-z0-9-]+\" placeholder=\"organization\"> "
                            "<button type=\"submit\">Continue</button></p></form>");
    }
    strbuf_free(&action);
    free(text);
}

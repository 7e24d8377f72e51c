/* appsetup — see appsetup.h. */
#include "appsetup.h"
#include "ghapi.h"
#include "app/common/appcreds.h"
#include "app/common/fileio.h"
#include "app/common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
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

/* ---- the state token ---- */

int appsetup_state(const char *data_dir, char out[65])
{
    char path[PATH_MAX];
    if (appcreds_path(path, sizeof(path), data_dir, STATE_FILE) != 0)
        return errno = ENAMETOOLONG, -1;
    char *text = fileio_read(path, 128, NULL);
    long long made = 0;
    if (text != NULL && sscanf(text, "%64s %lld", out, &made) == 2 && strlen(out) == 64 &&
        made + APPSETUP_STATE_TTL_S > (long long)time(NULL)) {
        free(text);
        return 0;
    }
    free(text);
    unsigned char raw[32];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return errno = EIO, -1;
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    char line[128];
    int n = snprintf(line, sizeof(line), "%s %lld\n", out, (long long)time(NULL));
    return appcreds_write(data_dir, STATE_FILE, line, (size_t)n);
}

int appsetup_state_take(const char *data_dir, const char *state)
{
    char path[PATH_MAX], live[65] = "";
    if (state == NULL || strlen(state) != 64 || appcreds_path(path, sizeof(path), data_dir, STATE_FILE) != 0)
        return -1;
    char *text = fileio_read(path, 128, NULL);
    long long made = 0;
    int ok = text != NULL && sscanf(text, "%64s %lld", live, &made) == 2 && strlen(live) == 64 &&
             made + APPSETUP_STATE_TTL_S > (long long)time(NULL) && CRYPTO_memcmp(live, state, 64) == 0;
    free(text);
    if (ok)
        unlink(path); /* single use */
    return ok ? 0 : -1;
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

/* pages — see pages.h. */
#include "pages.h"
#include "httpq.h"
#include "respond.h"
#include "app/common/appcreds.h"
#include "app/common/log.h"
#include "app/common/secret.h"
#include "app/common/strbuf.h"
#include "app/github/appsetup.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void pages_init(pages_t *s, const config_t *cfg, metrics_t *metrics, qstats_t *qstats)
{
    memset(s, 0, sizeof(*s));
    s->cfg = cfg;
    s->metrics = metrics;
    s->qstats = qstats;
    config_errors_t errs = {0};
    config_check_credentials(s->cfg, &errs);
    strbuf_t b;
    strbuf_init_fixed(&b, s->missing, sizeof(s->missing));
    for (size_t i = 0; i < errs.count; i++) {
        if (i > 0)
            strbuf_append(&b, "\n");
        strbuf_append(&b, errs.items[i].message);
    }
    config_errors_free(&errs);
    appcreds_t saved;
    if (s->missing[0] != '\0' && appcreds_load(cfg->data_dir, &saved) != 0) {
        /* unconfigured: a new set-up code for this start */
        if (appsetup_code_new(cfg->data_dir, s->setup_code) != 0) {
            snprintf(s->setup_problem, sizeof(s->setup_problem), "cannot keep a set-up code in %s/" APPSETUP_DIR
                     ": %s", cfg->data_dir, strerror(errno));
            s->setup_code[0] = '\0';
        }
    }
    OPENSSL_cleanse(saved.webhook_secret, sizeof(saved.webhook_secret));
}

void pages_announce(pages_t *s, const char *base_url)
{
    if (s->missing[0] == '\0')
        return;
    if (s->setup_code[0] == '\0' && s->setup_problem[0] == '\0')
        return; /* an App was registered already; the workers will say what is missing, if anything */
    if (s->setup_code[0] == '\0')
        log_error(NULL, NULL, "not connected to GitHub yet, and set-up is closed (%s); set what is missing:",
                  s->setup_problem);
    else /* the deliberate print: whoever reads this log or this terminal holds the machine */
        log_warn(NULL, NULL, "not connected to GitHub yet: open %s/ and enter the set-up code %s to register the App "
                 "(it is also in %s/" APPSETUP_DIR "/" APPSETUP_CODE_FILE "; a new one is made at every start), or set "
                 "what is missing:", base_url, s->setup_code, s->cfg->data_dir);
    /* the status page's checklist, a line each */
    for (const char *p = s->missing; *p != '\0';) {
        const char *nl = strchr(p, '\n');
        int n = nl ? (int)(nl - p) : (int)strlen(p);
        log_warn(NULL, NULL, "missing: %.*s", n, p);
        p += n + (nl != NULL);
    }
    if (s->setup_code[0] != '\0' && isatty(STDERR_FILENO) && strcmp(s->cfg->log.format, "json") == 0)
        fprintf(stderr, "\n  patchbay set-up code: %s\n  open %s/ and enter it\n\n", s->setup_code, base_url);
    OPENSSL_cleanse(s->setup_code, sizeof(s->setup_code));
}

/* ---- status endpoints ---- */

void pages_healthz(h2o_req_t *req)
{
    respond_send(req, 200, "text/plain; charset=utf-8", H2O_STRLIT("ok\n"));
}

void pages_readyz(const pages_t *p, const rasync_t *redis, h2o_req_t *req)
{
    if (p->sandbox_problem[0] != '\0') {
        char msg[600];
        int n = snprintf(msg, sizeof(msg), "sandbox cannot start: %s\n", p->sandbox_problem);
        respond_send(req, 503, "text/plain; charset=utf-8", msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
        return;
    }
    /* the connection's own state: it notices a dead Redis on the next write
     * or within one reconnect attempt, without a round trip per probe */
    if (rasync_connected(redis)) {
        respond_send(req, 200, "text/plain; charset=utf-8", H2O_STRLIT("ready\n"));
        return;
    }
    char msg[256];
    int n = snprintf(msg, sizeof(msg), "Redis unreachable: %s\n", rasync_last_error(redis));
    respond_send(req, 503, "text/plain; charset=utf-8", msg, (size_t)n);
}

void pages_metrics(pages_t *s, h2o_req_t *req)
{
    strbuf_t b = STRBUF_INIT;
    metrics_render(s->metrics, &b);
    qstats_render(s->qstats, &b);
    respond_send(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.data ? b.data : "", b.len);
    strbuf_free(&b);
}

static void page_start(strbuf_t *b)
{
    strbuf_append(b, "<!doctype html><html><head><meta charset=\"utf-8\"><title>patchbay</title>"
                     "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:46em;margin:2em auto;padding:0 1em}"
                     "code,pre{background:#f3f3f3;padding:.1em .3em}.bad{color:#b00}.ok{color:#070}"
                     "button{font:inherit;padding:.3em 1em}</style></head><body><h1>patchbay</h1>");
}

static void page_send(pages_t *s, h2o_req_t *req, int status, strbuf_t *b)
{
    strbuf_append(b, "</body></html>\n");
    /* the set-up forms post to GitHub; nothing else leaves this origin */
    strbuf_t csp = STRBUF_INIT;
    strbuf_append(&csp, "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'; "
                        "form-action 'self' ");
    strbuf_append(&csp, s->cfg->github.url);
    respond_page_headers(req, csp.data);
    strbuf_free(&csp);
    respond_send(req, status, "text/html; charset=utf-8", b->data ? b->data : "", b->len);
}

/* Where GitHub and browsers reach this server: server.public_url, else the
 * address this browser used. */
static void base_url(pages_t *s, h2o_req_t *req, char *out, size_t len)
{
    const char *pub = s->cfg->server.public_url;
    if (pub != NULL && pub[0] != '\0') {
        size_t n = strlen(pub);
        while (n > 0 && pub[n - 1] == '/')
            n--;
        snprintf(out, len, "%.*s", (int)n, pub);
    } else {
        snprintf(out, len, "http://%.*s", (int)req->authority.len, req->authority.base);
    }
}

/* The set-up session this browser holds (the cookie it got for the code):
 * 0 with its nonce, -1 when it has none that is live. */
static int session_of(pages_t *s, h2o_req_t *req, char *nonce)
{
    h2o_iovec_t c = httpq_cookie(req, APPSETUP_COOKIE);
    return c.base != NULL ? appsetup_session_check(s->cfg->data_dir, c.base, c.len, nonce) : -1;
}

static void setup_forms(pages_t *s, h2o_req_t *req, strbuf_t *b, const char *nonce, const char *org)
{
    char state[65], base[1024];
    if (appsetup_state(s->cfg->data_dir, nonce, state) != 0) {
        strbuf_append(b, "<p class=\"bad\">The data directory cannot be written, so the App cannot be registered "
                         "from here: ");
        strbuf_append_html(b, strerror(errno));
        strbuf_append(b, "</p>");
        return;
    }
    base_url(s, req, base, sizeof(base));
    appsetup_render(b, s->cfg->github.url, base, s->cfg->server.webhook_path, state, org);
}

void pages_status(pages_t *s, const rasync_t *redis, h2o_req_t *req)
{
    strbuf_t b = STRBUF_INIT;
    page_start(&b);
    appcreds_t saved;
    if (s->missing[0] != '\0' && appcreds_load(s->cfg->data_dir, &saved) == 0) {
        strbuf_append(&b, "<p class=\"ok\">GitHub App <strong>");
        strbuf_append_html(&b, saved.name[0] ? saved.name : saved.slug);
        strbuf_append(&b, "</strong> registered by this page. Install it on your repositories: <a href=\"");
        strbuf_append_html(&b, saved.html_url);
        strbuf_append(&b, "/installations/new\">");
        strbuf_append_html(&b, saved.html_url);
        strbuf_append(&b, "/installations/new</a></p>");
        OPENSSL_cleanse(saved.webhook_secret, sizeof(saved.webhook_secret));
    } else if (s->missing[0] != '\0') {
        /* a checklist, one line per missing setting, then the way that sets them all */
        strbuf_append(&b, "<h2 class=\"bad\">Not connected to GitHub yet</h2><p>Missing:</p><ul class=\"missing\">");
        for (const char *p = s->missing; *p != '\0';) {
            const char *nl = strchr(p, '\n');
            size_t n = nl ? (size_t)(nl - p) : strlen(p);
            char item[sizeof(s->missing)];
            snprintf(item, sizeof(item), "%.*s", (int)n, p);
            strbuf_append(&b, "<li>");
            strbuf_append_html(&b, item);
            strbuf_append(&b, "</li>");
            p += n + (nl != NULL);
        }
        strbuf_append(&b, "</ul><p>Register the App here and all of them are set:</p>");
        char nonce[APPSETUP_NONCE_BYTES + 1];
        if (session_of(s, req, nonce) == 0)
            setup_forms(s, req, &b, nonce, NULL);
        else
            appsetup_render_code_form(&b, NULL);
        strbuf_append(&b, "<p>Or register it by hand with <code>config/app-manifest.yml</code> (README, “GitHub App "
                          "setup”), set the above and start patchbay again.</p>");
    } else {
        strbuf_append(&b, "<p class=\"ok\">GitHub App configured. Webhook path: <code>");
        strbuf_append_html(&b, s->cfg->server.webhook_path);
        strbuf_append(&b, "</code></p>");
    }
    if (s->sandbox_problem[0] != '\0') {
        strbuf_append(&b, "<p class=\"bad\"><strong>Sandbox: cannot start</strong>, so every job that runs code fails: ");
        strbuf_append_html(&b, s->sandbox_problem);
        strbuf_append(&b, "</p>");
    } else if (s->sandbox_off) {
        strbuf_append(&b, "<p class=\"bad\"><strong>Sandbox: off</strong> (<code>agent.isolation: none</code>): "
                          "agents and repositories' commands run beside patchbay's secrets.</p>");
    }
    strbuf_appendf(&b, "<p>Redis: <span class=\"%s\">%s</span></p>", rasync_connected(redis) ? "ok" : "bad",
                   rasync_connected(redis) ? "connected" : "unreachable");
    strbuf_appendf(&b, "<p>Deliveries waiting in the spool: %lld</p>",
                   (long long)atomic_load(&s->metrics->spool_depth));
    strbuf_append(&b, "<p><a href=\"/jobs\">jobs</a> · <a href=\"/metrics\">metrics</a> · <a href=\"/healthz\">"
                      "healthz</a> · <a href=\"/readyz\">readyz</a></p>");
    page_send(s, req, 200, &b);
    strbuf_free(&b);
}

/* Whether patchbay has an App already: set-up must not replace it. */
static int registered(pages_t *s)
{
    appcreds_t c;
    if (s->missing[0] == '\0')
        return 1;
    int saved = appcreds_load(s->cfg->data_dir, &c) == 0;
    OPENSSL_cleanse(c.webhook_secret, sizeof(c.webhook_secret));
    return saved;
}

void pages_setup(pages_t *s, h2o_req_t *req, int callback)
{
    strbuf_t b = STRBUF_INIT;
    page_start(&b);
    int status = 200;
    char org[64], code[256], state[80], nonce[APPSETUP_NONCE_BYTES + 1];
    if (registered(s)) {
        status = 409;
        strbuf_append(&b, "<p class=\"bad\">patchbay already has a GitHub App; set-up does not replace it. To start "
                          "over, stop patchbay, remove its credentials and start it again.</p>");
    } else if (session_of(s, req, nonce) != 0) {
        status = 403;
        appsetup_render_code_form(&b, "Set-up needs the set-up code first (or this browser's set-up has expired).");
    } else if (!callback) {
        if (httpq_decoded(req, "org", org, sizeof(org)) != 0 || org[0] == '\0') {
            status = 400;
            strbuf_append(&b, "<p class=\"bad\">Which organization? Go back to <a href=\"/\">the start</a>.</p>");
        } else {
            setup_forms(s, req, &b, nonce, org);
        }
    } else if (httpq_decoded(req, "state", state, sizeof(state)) != 0 ||
               appsetup_state_take(s->cfg->data_dir, state, nonce) != 0) {
        status = 400;
        log_warn(NULL, NULL, "set-up callback with an unknown or expired state: refused");
        strbuf_append(&b, "<p class=\"bad\">This set-up link is expired or was not made here. Start again from "
                          "<a href=\"/\">the start</a>.</p>");
    } else if (httpq_decoded(req, "code", code, sizeof(code)) != 0) {
        status = 400;
        strbuf_append(&b, "<p class=\"bad\">GitHub sent no code. Start again from <a href=\"/\">the start</a>.</p>");
    } else {
        /* Blocking, on purpose: this happens once, before any delivery can be
         * verified, and the answer is what the person is waiting for. */
        json_t *conv = NULL;
        appcreds_t c;
        char err[512];
        if (appsetup_exchange(&conv, s->cfg->github.api_url, code, s->cfg->github.timeout_ms, err, sizeof(err)) != 0 ||
            appcreds_save(s->cfg->data_dir, conv, &c, err, sizeof(err)) != 0) {
            status = 502;
            log_error(NULL, NULL, "GitHub App registration failed: %s", err);
            strbuf_append(&b, "<p class=\"bad\">The App could not be registered: ");
            strbuf_append_html(&b, err);
            strbuf_append(&b, "</p><p><a href=\"/\">Start again</a></p>");
        } else {
            appsetup_finish(s->cfg->data_dir);
            log_info(NULL, NULL, "GitHub App %s (id %s) registered; credentials saved under %s/" APPSETUP_DIR, c.slug,
                     c.app_id, s->cfg->data_dir);
            strbuf_append(&b, "<p class=\"ok\">Registered the GitHub App <strong>");
            strbuf_append_html(&b, c.name[0] ? c.name : c.slug);
            strbuf_append(&b, "</strong>. patchbay uses it from now on.</p><p>Now install it on the repositories it "
                              "should work on: <a href=\"");
            strbuf_append_html(&b, c.html_url);
            strbuf_append(&b, "/installations/new\">");
            strbuf_append_html(&b, c.html_url);
            strbuf_append(&b, "/installations/new</a></p>");
            OPENSSL_cleanse(c.webhook_secret, sizeof(c.webhook_secret));
        }
        if (conv != NULL) {
            json_t *pem = json_object_get(conv, "pem");
            if (json_is_string(pem))
                OPENSSL_cleanse((void *)json_string_value(pem), json_string_length(pem));
        }
        json_decref(conv);
    }
    page_send(s, req, status, &b);
    strbuf_free(&b);
}

void pages_setup_code(pages_t *s, h2o_req_t *req)
{
    strbuf_t b = STRBUF_INIT;
    page_start(&b);
    int status = 403;
    char typed[64], cookie[160];
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        status = 405;
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("POST"));
        strbuf_append(&b, "<p class=\"bad\">The set-up code is sent from <a href=\"/\">the status page</a>.</p>");
    } else if (registered(s)) {
        status = 409;
        strbuf_append(&b, "<p class=\"bad\">patchbay already has a GitHub App; set-up does not replace it.</p>");
    } else if (httpq_form_decoded(req, "code", typed, sizeof(typed)) != 0 ||
               appsetup_code_check(s->cfg->data_dir, typed, strlen(typed)) != 0) {
        /* said without the value: it may be a near miss of the real code */
        log_warn(NULL, NULL, "set-up: a wrong set-up code was entered");
        appsetup_render_code_form(&b, "That is not the set-up code patchbay printed at its last start.");
    } else if (appsetup_session_new(s->cfg->data_dir, cookie, sizeof(cookie)) != 0) {
        status = 503;
        strbuf_append(&b, "<p class=\"bad\">The set-up session could not be made; see patchbay's log.</p>");
    } else {
        /* Lax, not Strict: GitHub's redirect back to /setup/callback is a
         * cross-site navigation, and it must carry this cookie */
        char *header = h2o_mem_alloc_pool(&req->pool, sizeof(cookie) + 128);
        int n = snprintf(header, sizeof(cookie) + 128, "%s=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Lax",
                         APPSETUP_COOKIE, cookie, APPSETUP_SESSION_TTL_S);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_SET_COOKIE, NULL, header, (size_t)n);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL, H2O_STRLIT("/"));
        status = 303;
        strbuf_append(&b, "<p><a href=\"/\">Continue</a></p>");
        log_info(NULL, NULL, "set-up: the set-up code was entered; this browser may register the App for an hour");
    }
    OPENSSL_cleanse(typed, sizeof(typed));
    OPENSSL_cleanse(cookie, sizeof(cookie));
    page_send(s, req, status, &b);
    strbuf_free(&b);
}

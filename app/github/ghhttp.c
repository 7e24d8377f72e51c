/* ghhttp — see ghhttp.h. */
#include "ghhttp.h"
#include "app/common/clock.h"

#include <curl/curl.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define GHHTTP_DEFAULT_ACCEPT "application/vnd.github+json"
/* GitHub's REST API is versioned by date; answers follow this version's shapes. */
#define GHHTTP_API_VERSION "2022-11-28"
#define GHHTTP_MAX_REDIRECTS 3

struct ghhttp_s {
    CURL *curl;
    char *user_agent;
    int connect_timeout_ms;
    int timeout_ms;
    char errbuf[CURL_ERROR_SIZE];
};

/* curl_global_init is not guaranteed thread-safe; do it once, whoever comes first. */
static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

ghhttp_t *ghhttp_new(const char *user_agent, int connect_timeout_ms, int timeout_ms)
{
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return NULL;
    ghhttp_t *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->curl = curl_easy_init();
    h->user_agent = strdup(user_agent ? user_agent : "patchbay");
    if (h->curl == NULL || h->user_agent == NULL) {
        ghhttp_free(h);
        return NULL;
    }
    h->connect_timeout_ms = connect_timeout_ms;
    h->timeout_ms = timeout_ms;
    return h;
}

void ghhttp_free(ghhttp_t *h)
{
    if (h == NULL)
        return;
    if (h->curl != NULL)
        curl_easy_cleanup(h->curl);
    free(h->user_agent);
    free(h);
}

void ghhttp_response_clear(ghhttp_response_t *r)
{
    strbuf_free(&r->body);
    free(r->etag);
    free(r->link_next);
    free(r->content_type);
    memset(r, 0, sizeof(*r));
    r->rl_limit = r->rl_remaining = r->rl_reset_s = r->rl_used = r->retry_after_s = -1;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    strbuf_t *b = ud;
    size_t len = size * n;
    if (b->len + len > GHHTTP_BODY_MAX_BYTES)
        return 0; /* libcurl stops with CURLE_WRITE_ERROR */
    strbuf_appendn(b, data, len);
    return b->truncated ? 0 : len;
}

/* ---------------------------------------------------------------------------
 * Headers
 * ------------------------------------------------------------------------- */

static const char *header(CURL *curl, const char *name)
{
    struct curl_header *h = NULL;
    /* request -1: the last response, after any redirect */
    if (curl_easy_header(curl, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK || h == NULL)
        return NULL;
    return h->value;
}

static int64_t header_int(CURL *curl, const char *name)
{
    const char *v = header(curl, name);
    if (v == NULL)
        return -1;
    while (*v == ' ')
        v++;
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    if (end == v || n < 0)
        return -1;
    while (*end == ' ')
        end++;
    return *end == '\0' ? (int64_t)n : -1;
}

static char *header_dup(CURL *curl, const char *name)
{
    const char *v = header(curl, name);
    return v ? strdup(v) : NULL;
}

/* Whether the rel parameter inside params[0..n) lists "next" (rel may be
 * quoted and may hold several space-separated values: rel="prev next"). */
static int rel_is_next(const char *params, size_t n)
{
    for (size_t i = 0; i + 4 <= n; i++) {
        if (strncasecmp(params + i, "rel=", 4) != 0)
            continue;
        size_t j = i + 4;
        int quoted = j < n && params[j] == '"';
        if (quoted)
            j++;
        while (j < n) {
            size_t w = 0;
            while (j + w < n && params[j + w] != ' ' && params[j + w] != '"' && params[j + w] != ';' &&
                   params[j + w] != ',')
                w++;
            if (w == 4 && strncasecmp(params + j, "next", 4) == 0)
                return 1;
            j += w;
            if (!quoted || j >= n || params[j] != ' ')
                break;
            j++;
        }
    }
    return 0;
}

char *ghhttp_link_next(const char *link)
{
    /* <url>; rel="next", <url>; rel="last" — URLs may hold commas, so entries
     * are found by their angle brackets rather than by splitting on ','. */
    const char *p = link;
    while ((p = strchr(p, '<')) != NULL) {
        const char *end = strchr(p, '>');
        if (end == NULL)
            return NULL;
        const char *params = end + 1, *stop = strchr(params, '<');
        size_t plen = stop ? (size_t)(stop - params) : strlen(params);
        if (rel_is_next(params, plen)) {
            size_t ulen = (size_t)(end - p - 1);
            char *url = malloc(ulen + 1);
            if (url != NULL) {
                memcpy(url, p + 1, ulen);
                url[ulen] = '\0';
            }
            return url;
        }
        p = end + 1;
    }
    return NULL;
}

/* ---------------------------------------------------------------------------
 * libcurl's failures, sorted once
 * ------------------------------------------------------------------------- */

static ghhttp_transport_t transport_of(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return GHHTTP_TRANSPORT_OK;
    /* the network or the far end failed this time */
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_AGAIN:
        return GHHTTP_TRANSPORT_RETRYABLE;
    default:
        /* a bad URL, a refused certificate, an answer over our cap, no memory */
        return GHHTTP_TRANSPORT_PERMANENT;
    }
}

/* ---------------------------------------------------------------------------
 * The exchange
 * ------------------------------------------------------------------------- */

int ghhttp_perform(ghhttp_t *h, const ghhttp_request_t *req, ghhttp_response_t *resp)
{
    CURL *c = h->curl;
    struct curl_slist *hdrs = NULL;
    char line[8192];
    ghhttp_response_clear(resp);

    /* A reused handle keeps every option set before it: reset the ones a
     * previous request may have changed (TOOLCHAIN.md), then set ours. */
    curl_easy_reset(c);
    h->errbuf[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, req->url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
    curl_easy_setopt(c, CURLOPT_USERAGENT, h->user_agent);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)h->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)h->timeout_ms);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    /* GitHub redirects API calls for renamed repositories (301/307); libcurl
     * does not send our Authorization header to another host. */
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long)GHHTTP_MAX_REDIRECTS);
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp->body);

    snprintf(line, sizeof(line), "Accept: %s", req->accept ? req->accept : GHHTTP_DEFAULT_ACCEPT);
    hdrs = curl_slist_append(hdrs, line);
    hdrs = curl_slist_append(hdrs, "X-GitHub-Api-Version: " GHHTTP_API_VERSION);
    if (req->authorization != NULL) {
        snprintf(line, sizeof(line), "Authorization: %s", req->authorization);
        hdrs = curl_slist_append(hdrs, line);
        /* the header line held a credential: do not leave it on the stack */
        memset(line, 0, sizeof(line));
    }
    if (req->if_none_match != NULL) {
        snprintf(line, sizeof(line), "If-None-Match: %s", req->if_none_match);
        hdrs = curl_slist_append(hdrs, line);
    }
    if (strcmp(req->method, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
        if (req->body != NULL || strcmp(req->method, "DELETE") != 0) {
            hdrs = curl_slist_append(hdrs, "Content-Type: application/json; charset=utf-8");
            /* no "Expect: 100-continue" round trip for larger bodies */
            hdrs = curl_slist_append(hdrs, "Expect:");
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? req->body : "");
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(req->body ? req->body_len : 0));
        }
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);

    uint64_t t0 = clock_mono_us();
    CURLcode rc = hdrs ? curl_easy_perform(c) : CURLE_OUT_OF_MEMORY;
    resp->elapsed_us = (int64_t)(clock_mono_us() - t0);
    resp->transport = transport_of(rc);
    if (rc != CURLE_OK) {
        if (rc == CURLE_WRITE_ERROR)
            snprintf(resp->error, sizeof(resp->error), "the answer is larger than %d bytes", GHHTTP_BODY_MAX_BYTES);
        else
            snprintf(resp->error, sizeof(resp->error), "%s", h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc));
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
        resp->etag = header_dup(c, "etag");
        resp->content_type = header_dup(c, "content-type");
        const char *link = header(c, "link");
        resp->link_next = link ? ghhttp_link_next(link) : NULL;
        resp->rl_limit = header_int(c, "x-ratelimit-limit");
        resp->rl_remaining = header_int(c, "x-ratelimit-remaining");
        resp->rl_reset_s = header_int(c, "x-ratelimit-reset");
        resp->rl_used = header_int(c, "x-ratelimit-used");
        resp->retry_after_s = header_int(c, "retry-after");
    }
    /* the list holds the Authorization line: wipe it before freeing */
    for (struct curl_slist *s = hdrs; s != NULL; s = s->next)
        if (strncasecmp(s->data, "Authorization:", 14) == 0)
            memset(s->data, 0, strlen(s->data));
    curl_slist_free_all(hdrs);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    return resp->transport;
}

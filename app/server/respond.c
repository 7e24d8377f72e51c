/* respond — see respond.h. */
#include "respond.h"
#include "app/common/strbuf.h"

#include <string.h>

static const struct {
    int status;
    const char *reason;
} reasons[] = {
    {200, "OK"},           {202, "Accepted"},  {204, "No Content"},         {303, "See Other"},
    {400, "Bad Request"},  {401, "Unauthorized"}, {403, "Forbidden"},      {404, "Not Found"},
    {405, "Method Not Allowed"}, {408, "Request Timeout"}, {409, "Conflict"}, {411, "Length Required"},
    {413, "Payload Too Large"}, {417, "Expectation Failed"}, {421, "Misdirected Request"},
    {429, "Too Many Requests"}, {431, "Request Header Fields Too Large"}, {500, "Internal Server Error"},
    {501, "Not Implemented"}, {502, "Bad Gateway"}, {503, "Service Unavailable"},
};

const char *respond_reason(int status)
{
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (reasons[i].status == status)
            return reasons[i].reason;
    return "Error";
}

void respond_send(h2o_req_t *req, int status, const char *content_type, const void *body, size_t len)
{
    req->res.status = status;
    req->res.reason = respond_reason(status);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    req->res.content_length = len;
    h2o_send_inline(req, body, len);
}

void respond_json_body(strbuf_t *out, const char *key, const char *value)
{
    strbuf_append(out, "{\"");
    strbuf_append(out, key);
    strbuf_append(out, "\":");
    strbuf_append_json_string(out, value, strlen(value) > 400 ? 400 : strlen(value));
    strbuf_append(out, "}\n");
}

void respond_json(h2o_req_t *req, int status, const char *key, const char *value)
{
    char mem[512];
    strbuf_t b;
    strbuf_init_fixed(&b, mem, sizeof(mem));
    respond_json_body(&b, key, value);
    respond_send(req, status, "application/json", b.data, b.len);
}

void respond_page_headers(h2o_req_t *req, const char *csp)
{
    size_t n = strlen(csp);
    char *policy = h2o_mem_alloc_pool(&req->pool, n + 1);
    memcpy(policy, csp, n + 1);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("content-security-policy"), 0, NULL, policy, n);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-content-type-options"), 0, NULL,
                          H2O_STRLIT("nosniff"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("referrer-policy"), 0, NULL,
                          H2O_STRLIT("no-referrer"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-frame-options"), 0, NULL, H2O_STRLIT("DENY"));
}

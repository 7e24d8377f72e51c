/* fakegh — see fakegh.h. */
#include "fakegh.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef TESTS_DIR
#error "TESTS_DIR must point at tests/"
#endif

#define START_TIMEOUT_MS 30000

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fakegh: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(99);
}

static char *xstrdup_printf(const char *fmt, va_list ap)
{
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        die("out of memory");
    return s;
}

static char *strf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = xstrdup_printf(fmt, ap);
    va_end(ap);
    return s;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---------------------------------------------------------------------------
 * Process
 * ------------------------------------------------------------------------- */

static void write_public_key(fakegh_t *f, const char *path)
{
    EVP_PKEY *key = EVP_RSA_gen(2048);
    if (key == NULL)
        die("RSA key generation failed");
    FILE *fp = fopen(path, "w");
    if (fp == NULL || PEM_write_PUBKEY(fp, key) != 1)
        die("cannot write %s", path);
    fclose(fp);
    f->key = key;
}

void fakegh_start(fakegh_t *f)
{
    memset(f, 0, sizeof(*f));
    strcpy(f->dir, "/tmp/pbfakegh-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        die("mkdtemp: %s", strerror(errno));
    snprintf(f->git_root, sizeof(f->git_root), "%s/git", f->dir);
    char pub[256], ready[256], logp[256], script[512];
    snprintf(pub, sizeof(pub), "%s/app.pub.pem", f->dir);
    snprintf(ready, sizeof(ready), "%s/port", f->dir);
    snprintf(logp, sizeof(logp), "%s/fake.log", f->dir);
    snprintf(script, sizeof(script), "%s/fakes/github.py", TESTS_DIR);
    write_public_key(f, pub);
    const char *python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
    char app_id[16];
    snprintf(app_id, sizeof(app_id), "%d", FAKEGH_APP_ID);

    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* a crashed test takes its fake with it */
        int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execlp(python, python, "-B", script, "--port", "0", "--app-id", app_id, "--app-slug", FAKEGH_APP_SLUG, "--public-key",
               pub, "--git-root", f->git_root, "--ready-file", ready, (char *)NULL);
        _exit(127);
    }
    f->pid = pid;
    for (int waited = 0;; waited += 20) {
        FILE *fp = fopen(ready, "r");
        if (fp != NULL) {
            int port = 0;
            if (fscanf(fp, "%d", &port) == 1 && port > 0) {
                fclose(fp);
                f->port = port;
                break;
            }
            fclose(fp);
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            f->pid = 0;
            char *log = fakegh_sh(NULL, "cat %s", logp);
            die("the fake GitHub exited at start:\n%s", log);
        }
        if (waited > START_TIMEOUT_MS)
            die("the fake GitHub did not start within %d ms", START_TIMEOUT_MS);
        sleep_ms(20);
    }
    snprintf(f->base_url, sizeof(f->base_url), "http://127.0.0.1:%d", f->port);
}

void fakegh_stop(fakegh_t *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        int st;
        for (int i = 0; i < 500 && waitpid(f->pid, &st, WNOHANG) == 0; i++)
            sleep_ms(20);
        if (waitpid(f->pid, &st, WNOHANG) == 0) {
            kill(f->pid, SIGKILL);
            waitpid(f->pid, &st, 0);
        }
        f->pid = 0;
    }
    if (f->key != NULL)
        EVP_PKEY_free(f->key);
    f->key = NULL;
    if (f->dir[0] != '\0') {
        char *out = fakegh_sh(NULL, "rm -rf '%s'", f->dir);
        free(out);
        f->dir[0] = '\0';
    }
}

/* ---------------------------------------------------------------------------
 * HTTP
 * ------------------------------------------------------------------------- */

typedef struct {
    char *data;
    size_t len;
} buf_t;

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    buf_t *b = arg;
    size_t add = size * n;
    char *d = realloc(b->data, b->len + add + 1);
    if (d == NULL)
        return 0;
    memcpy(d + b->len, p, add);
    b->len += add;
    d[b->len] = '\0';
    b->data = d;
    return add;
}

json_t *fakegh_http(fakegh_t *f, const char *method, const char *path, const char *body, const char *auth, long *status)
{
    CURL *c = curl_easy_init();
    if (c == NULL)
        die("curl_easy_init");
    buf_t b = {NULL, 0};
    char *url = strf("%s%s", f->base_url, path);
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Accept: application/vnd.github+json");
    h = curl_slist_append(h, "User-Agent: patchbay-tests");
    char *authh = NULL;
    if (auth != NULL) {
        authh = strf("Authorization: %s", auth);
        h = curl_slist_append(h, authh);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (body != NULL)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK)
        die("%s %s: %s", method, url, curl_easy_strerror(rc));
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (status != NULL)
        *status = code;
    json_t *j = b.data ? json_loads(b.data, JSON_DECODE_ANY, NULL) : NULL;
    if (j == NULL)
        j = json_string(b.data ? b.data : "");
    free(b.data);
    free(url);
    free(authh);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return j;
}

json_t *fakegh_control(fakegh_t *f, const char *route, const char *json_fmt, ...)
{
    va_list ap;
    va_start(ap, json_fmt);
    char *body = xstrdup_printf(json_fmt, ap);
    va_end(ap);
    char *path = strf("/_fake/%s", route);
    long status = 0;
    json_t *j = fakegh_http(f, "POST", path, body, NULL, &status);
    if (status < 200 || status > 299) {
        char *txt = json_dumps(j, JSON_ENCODE_ANY);
        die("control %s %s: %ld %s", route, body, status, txt ? txt : "");
    }
    free(body);
    free(path);
    return j;
}

void fakegh_repo(fakegh_t *f, const char *full_name, const char *files_json, long installation_id)
{
    json_decref(fakegh_control(f, "repos", "{\"full_name\":\"%s\",\"private\":true,\"files\":%s}", full_name, files_json));
    char owner[64];
    snprintf(owner, sizeof(owner), "%.*s", (int)(strchr(full_name, '/') - full_name), full_name);
    json_decref(
        fakegh_control(f, "installations", "{\"id\":%ld,\"account\":\"%s\",\"repositories\":\"all\"}", installation_id, owner));
}

/* ---------------------------------------------------------------------------
 * App JWT (RS256) and installation tokens
 * ------------------------------------------------------------------------- */

static char *b64url(const unsigned char *p, size_t n)
{
    size_t cap = 4 * ((n + 2) / 3) + 1;
    char *out = malloc(cap);
    if (out == NULL)
        die("out of memory");
    int len = EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    while (len > 0 && out[len - 1] == '=')
        len--;
    out[len] = '\0';
    for (int i = 0; i < len; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    return out;
}

static char *app_jwt(fakegh_t *f)
{
    long now = (long)time(NULL);
    char payload[128];
    snprintf(payload, sizeof(payload), "{\"iat\":%ld,\"exp\":%ld,\"iss\":%d}", now - 60, now + 540, FAKEGH_APP_ID);
    const char *header = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
    char *h = b64url((const unsigned char *)header, strlen(header));
    char *p = b64url((const unsigned char *)payload, strlen(payload));
    char *signing = strf("%s.%s", h, p);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t siglen = 0;
    if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, f->key) != 1 ||
        EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)signing, strlen(signing)) != 1)
        die("JWT signing failed");
    unsigned char *sig = malloc(siglen);
    if (sig == NULL || EVP_DigestSign(md, sig, &siglen, (const unsigned char *)signing, strlen(signing)) != 1)
        die("JWT signing failed");
    char *s = b64url(sig, siglen);
    char *jwt = strf("%s.%s", signing, s);
    EVP_MD_CTX_free(md);
    free(sig);
    free(s);
    free(signing);
    free(h);
    free(p);
    return jwt;
}

char *fakegh_token(fakegh_t *f, long installation_id)
{
    char *jwt = app_jwt(f);
    char *auth = strf("Bearer %s", jwt);
    char *path = strf("/app/installations/%ld/access_tokens", installation_id);
    long status = 0;
    json_t *j = fakegh_http(f, "POST", path, "{}", auth, &status);
    const char *tok = json_string_value(json_object_get(j, "token"));
    if (status != 201 || tok == NULL)
        die("minting a token for installation %ld: HTTP %ld", installation_id, status);
    char *out = strdup(tok);
    json_decref(j);
    free(path);
    free(auth);
    free(jwt);
    return out;
}

json_t *fakegh_calls(fakegh_t *f, const char *path_regex)
{
    char *esc = NULL;
    CURL *c = curl_easy_init();
    char *q = path_regex ? curl_easy_escape(c, path_regex, 0) : NULL;
    esc = strf("/_fake/calls%s%s", q ? "?path=" : "", q ? q : "");
    curl_free(q);
    curl_easy_cleanup(c);
    long status = 0;
    json_t *j = fakegh_http(f, "GET", esc, NULL, NULL, &status);
    free(esc);
    if (status != 200 || !json_is_array(j))
        die("reading the call log: HTTP %ld", status);
    return j;
}

size_t fakegh_count(fakegh_t *f, const char *method, const char *path_regex)
{
    json_t *calls = fakegh_calls(f, path_regex);
    size_t n = 0, i;
    json_t *c;
    json_array_foreach(calls, i, c)
    {
        if (method == NULL || strcmp(json_string_value(json_object_get(c, "method")), method) == 0)
            n++;
    }
    json_decref(calls);
    return n;
}

void fakegh_reset_calls(fakegh_t *f)
{
    json_decref(fakegh_control(f, "reset_calls", "{}"));
}

/* ---------------------------------------------------------------------------
 * Shell and git
 * ------------------------------------------------------------------------- */

static char *sh_va(int *status, const char *fmt, va_list ap)
{
    char *cmd = xstrdup_printf(fmt, ap);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        die("popen %s", cmd);
    buf_t b = {NULL, 0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
        on_body(chunk, 1, n, &b);
    int st = pclose(p);
    if (status != NULL)
        *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    free(cmd);
    if (b.data == NULL)
        b.data = strdup("");
    while (b.len > 0 && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == ' '))
        b.data[--b.len] = '\0';
    return b.data;
}

char *fakegh_sh(int *status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = sh_va(status, fmt, ap);
    va_end(ap);
    return out;
}

char *fakegh_git(fakegh_t *f, const char *full_name, const char *args_fmt, ...)
{
    va_list ap;
    va_start(ap, args_fmt);
    char *args = xstrdup_printf(args_fmt, ap);
    va_end(ap);
    int st = 0;
    char *out = fakegh_sh(&st,
                          "GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null git -c safe.directory='*' "
                          "--git-dir='%s/%s.git' %s 2>&1",
                          f->git_root, full_name, args);
    if (st != 0)
        die("git %s in %s: %s", args, full_name, out);
    free(args);
    return out;
}

/*
 * cmd_replay — `patchbay replay FILE... [--event NAME] [--url URL]`: posts
 * payload files to a running patchbay exactly as GitHub would (signed with
 * WEBHOOK_SECRET, a fresh X-GitHub-Delivery each), for local development
 * and for reproducing what a delivery did.
 *
 * The event is --event, or else read from the file name: GitHub's own names
 * (issue_comment.json, issue_comment.created.json, issue_comment-42.json).
 */
#include "cmd.h"
#include "app/webhook/verify.h"

#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define REPLAY_BODY_MAX_BYTES (25u * 1024u * 1024u)
#define REPLAY_TIMEOUT_S 30

static int usage(void)
{
    fprintf(stderr, "usage: patchbay replay FILE... [--event NAME] [--url URL] [--delivery ID]\n");
    return CMD_USAGE;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = malloc(REPLAY_BODY_MAX_BYTES + 1);
    size_t n = buf ? fread(buf, 1, REPLAY_BODY_MAX_BYTES + 1, f) : 0;
    int bad = buf == NULL || ferror(f) || n > REPLAY_BODY_MAX_BYTES;
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* "dir/issue_comment.created.json" -> "issue_comment" */
static int event_from_name(const char *path, char *out, size_t cap)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = 0;
    while (base[n] != '\0' && (base[n] == '_' || (base[n] >= 'a' && base[n] <= 'z')))
        n++;
    if (n == 0 || n >= cap || (base[n] != '.' && base[n] != '-'))
        return -1;
    memcpy(out, base, n);
    out[n] = '\0';
    return 0;
}

/* A random version-4 UUID, the form GitHub's delivery ids take. */
static void make_delivery_id(char out[37])
{
    unsigned char r[16];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
        memset(r, 0x42, sizeof(r));
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3],
             r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
}

typedef struct {
    char data[1024];
    size_t len;
} answer_t;

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    answer_t *a = arg;
    size_t take = size * n;
    size_t room = sizeof(a->data) - 1 - a->len;
    memcpy(a->data + a->len, p, take < room ? take : room);
    a->len += take < room ? take : room;
    a->data[a->len] = '\0';
    return size * n;
}

static int post(CURL *curl, const char *url, const char *secret, const char *event, const char *delivery,
                const char *body, size_t len, long *status, answer_t *answer)
{
    char sig[VERIFY_HEADER_LEN + 1], h_sig[128], h_event[128], h_delivery[128];
    verify_sign(secret, strlen(secret), body, len, sig);
    snprintf(h_sig, sizeof(h_sig), "X-Hub-Signature-256: %s", sig);
    snprintf(h_event, sizeof(h_event), "X-GitHub-Event: %s", event);
    snprintf(h_delivery, sizeof(h_delivery), "X-GitHub-Delivery: %s", delivery);
    struct curl_slist *headers = NULL;
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "User-Agent: GitHub-Hookshot/patchbay-replay");
    headers = curl_slist_append(headers, h_sig);
    headers = curl_slist_append(headers, h_event);
    headers = curl_slist_append(headers, h_delivery);
    headers = curl_slist_append(headers, "Expect:");
    answer->len = 0;
    answer->data[0] = '\0';
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, answer);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)REPLAY_TIMEOUT_S);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(curl);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) {
        snprintf(answer->data, sizeof(answer->data), "%s", curl_easy_strerror(rc));
        return -1;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
    return 0;
}

int cmd_replay(int argc, char **argv)
{
    const char *event_opt = NULL, *url_opt = NULL, *delivery_opt = NULL;
    static const struct option opts[] = {{"event", required_argument, NULL, 'e'},
                                         {"url", required_argument, NULL, 'u'},
                                         {"delivery", required_argument, NULL, 'd'},
                                         {0}};
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'e': event_opt = optarg; break;
        case 'u': url_opt = optarg; break;
        case 'd': delivery_opt = optarg; break;
        default: return usage();
        }
    }
    if (optind == argc)
        return usage();
    if (delivery_opt != NULL && argc - optind > 1) {
        fprintf(stderr, "patchbay: --delivery names one delivery; give one FILE with it\n");
        return CMD_USAGE;
    }
    config_t *cfg = NULL;
    int rc = cmd_load_config(&cfg, NULL);
    if (rc != CMD_OK)
        return rc;
    if (cfg->github.webhook_secret == NULL) {
        fprintf(stderr, "patchbay: replay signs with WEBHOOK_SECRET, which is not set\n");
        config_free(cfg);
        return CMD_USAGE;
    }
    char url[2048];
    if (url_opt != NULL)
        snprintf(url, sizeof(url), "%s", url_opt);
    else
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", cfg->server.port, cfg->server.webhook_path);

    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *curl = curl_easy_init();
    rc = curl ? CMD_OK : CMD_FAIL;
    for (int i = optind; curl != NULL && i < argc; i++) {
        char event[64], delivery[40];
        if (event_opt != NULL)
            snprintf(event, sizeof(event), "%s", event_opt);
        else if (event_from_name(argv[i], event, sizeof(event)) != 0) {
            fprintf(stderr, "patchbay: %s: cannot tell the event from the file name; give --event NAME\n", argv[i]);
            rc = CMD_USAGE;
            break;
        }
        if (delivery_opt != NULL)
            snprintf(delivery, sizeof(delivery), "%s", delivery_opt);
        else
            make_delivery_id(delivery);
        size_t len = 0;
        char *body = read_file(argv[i], &len);
        if (body == NULL) {
            fprintf(stderr, "patchbay: %s: cannot read it (or it is over 25 MiB)\n", argv[i]);
            rc = CMD_FAIL;
            continue;
        }
        long status = 0;
        answer_t answer;
        if (post(curl, url, cfg->github.webhook_secret, event, delivery, body, len, &status, &answer) != 0) {
            fprintf(stderr, "patchbay: %s: cannot post to %s: %s\n", argv[i], url, answer.data);
            rc = CMD_FAIL;
        } else {
            size_t n = answer.len;
            while (n > 0 && (answer.data[n - 1] == '\n' || answer.data[n - 1] == '\r'))
                answer.data[--n] = '\0';
            printf("%s %s %s %ld %s\n", argv[i], event, delivery, status, answer.data);
            if (status < 200 || status >= 300)
                rc = CMD_FAIL;
        }
        free(body);
    }
    if (curl)
        curl_easy_cleanup(curl);
    curl_global_cleanup();
    config_free(cfg);
    return rc;
}

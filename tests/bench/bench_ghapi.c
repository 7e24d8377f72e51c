/*
 * bench_ghapi — what a GitHub call costs patchbay against the local fake
 * GitHub, once the installation token is cached, and how many tokens 1,000
 * calls from 8 concurrent workers mint (the goal is one). Prints figures;
 * the fake's own time (Python) dominates the per-call latency, so compare
 * patchbay's CPU per call, not the wall time.
 *   bench_ghapi [calls]
 */
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "fakegh.h"
#include "app/common/clock.h"
#include "app/github/ghapi.h"

static fakegh_t fake;

typedef struct {
    ghapi_app_t *app;
    int calls, failures;
} worker_t;

static void *work(void *p)
{
    worker_t *w = p;
    ghapi_t *gh = ghapi_new(w->app);
    const ghapi_repo_t r = {7, "octo/hello"};
    for (int i = 0; i < w->calls; i++) {
        json_t *j = NULL;
        if (ghapi_repo_get(&j, gh, &r) != GHAPI_OK)
            w->failures++;
        json_decref(j);
    }
    ghapi_free(gh);
    return NULL;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static long mints(void)
{
    long status;
    json_t *st = fakegh_http(&fake, "GET", "/_fake/state", NULL, NULL, &status);
    long n = (long)json_integer_value(json_object_get(st, "mint_count"));
    json_decref(st);
    return n;
}

int main(int argc, char **argv)
{
    int calls = argc > 1 ? atoi(argv[1]) : 1000;
    if (calls < 8 || calls > 100000)
        calls = 1000;
    fakegh_start(&fake);
    fakegh_repo(&fake, "octo/hello", "{\"README.md\":\"hi\\n\"}", 7);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, fake.key, NULL, NULL, 0, NULL, NULL);
    char *pem;
    long n = BIO_get_mem_data(b, &pem);
    char *key = strndup(pem, (size_t)n);
    BIO_free(b);

    ghapi_options_t o = GHAPI_OPTIONS_INIT;
    o.api_url = fake.base_url;
    o.app_id = "1234";
    o.private_key = key;
    ghapi_app_t *app = NULL;
    char err[256];
    if (ghapi_app_new(&app, &o, err, sizeof(err)) != GHAPI_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    /* one sequential client: the cached-token call */
    worker_t one = {app, 1, 0};
    work(&one); /* mints, warms the connection */
    long m0 = mints();
    one.calls = calls / 4;
    double c0 = cpu_seconds();
    int64_t t0 = (int64_t)clock_mono_us();
    work(&one);
    double per_call_us = ((int64_t)clock_mono_us() - t0) / (double)one.calls;
    double cpu_us = (cpu_seconds() - c0) * 1e6 / one.calls;
    printf("cached-token GET, one client: %.0f us per call (wall, mostly the fake), %.1f us of patchbay CPU per call\n",
           per_call_us, cpu_us);

    /* 8 workers, a fresh App (no token in memory yet), all asking at once */
    ghapi_app_t *fresh = NULL;
    ghapi_app_new(&fresh, &o, err, sizeof(err));
    json_decref(fakegh_control(&fake, "expire_tokens", "{}"));
    m0 = mints();
    pthread_t t[8];
    worker_t w[8];
    t0 = (int64_t)clock_mono_us();
    for (int i = 0; i < 8; i++) {
        w[i] = (worker_t){fresh, calls / 8, 0};
        pthread_create(&t[i], NULL, work, &w[i]);
    }
    int failures = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        failures += w[i].failures;
    }
    double secs = ((int64_t)clock_mono_us() - t0) / 1e6;
    printf("%d calls from 8 concurrent workers: %ld token mint(s) (goal 1), %d failures, %.0f calls/s\n",
           8 * (calls / 8), mints() - m0, failures, 8 * (calls / 8) / secs);
    ghapi_app_free(fresh);
    ghapi_app_free(app);
    free(key);
    fakegh_stop(&fake);
    return 0;
}

/*
 * server — see server.h. This file is the event-loop half: threads, the
 * route table, start and stop. Connections are the front's (front.c: every
 * accepted socket, the webhook path's requests, the cap); what each other
 * route does lives in pages.c (status, set-up, health, metrics) and
 * dashboard.c (/jobs, /api/), and the webhook's meaning in delivery.c.
 */
#include "server.h"
#include "access.h"
#include "dashboard.h"
#include "delivery.h"
#include "front.h"
#include "ingress.h"
#include "metrics.h"
#include "pages.h"
#include "qstats.h"
#include "rasync.h"
#include "respond.h"
#include "app/common/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SERVER_LOOP_WAIT_MS 100
#define SERVER_LISTEN_BACKLOG 4096
#define SERVER_CLOSE_MS 1000

typedef struct server_thread_s server_thread_t;

struct server_s {
    const config_t *cfg;
    h2o_globalconf_t globalconf;
    redisconn_url_t redis_url;
    char *redis_desc;
    ingress_t *ingress;
    metrics_t metrics;
    qstats_t *qstats; /* the queue's metrics, read by a background thread */
    dashboard_t *dashboard;
    delivery_conf_t delivery;
    front_conf_t front;
    pages_t pages;
    access_t access;
    int nthreads;
    server_thread_t *threads;
    atomic_int stopping;
    int port;
    int started;
};

struct server_thread_s {
    server_t *server;
    pthread_t tid;
    int listen_fd;
    h2o_evloop_t *loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    rasync_t *redis;
    int redis_up; /* last state counted in metrics */
    h2o_multithread_queue_t *mtqueue;
    front_loop_t front; /* the listener and every connection */
    delivery_loop_t delivery;
    dashboard_loop_t dashboard;
};

typedef struct {
    h2o_handler_t super;
    server_t *server;
} server_handler_t;

/* ---- dispatch ---- */

static int path_is(h2o_req_t *req, const char *path)
{
    return h2o_memis(req->path_normalized.base, req->path_normalized.len, path, strlen(path));
}

static void route_healthz(server_thread_t *t, h2o_req_t *req)
{
    (void)t;
    pages_healthz(req);
}

static void route_readyz(server_thread_t *t, h2o_req_t *req)
{
    pages_readyz(&t->server->pages, t->redis, req);
}

static void route_metrics(server_thread_t *t, h2o_req_t *req)
{
    pages_metrics(&t->server->pages, req);
}

static void route_status(server_thread_t *t, h2o_req_t *req)
{
    pages_status(&t->server->pages, t->redis, req);
}

static void route_setup_org(server_thread_t *t, h2o_req_t *req)
{
    pages_setup(&t->server->pages, req, 0);
}

static void route_setup_callback(server_thread_t *t, h2o_req_t *req)
{
    pages_setup(&t->server->pages, req, 1);
}

static void route_setup_code(server_thread_t *t, h2o_req_t *req)
{
    pages_setup_code(&t->server->pages, req);
}

/* Exact paths. The webhook's is not here: the front reads every request to
 * it (front.h), under every spelling h2o would normalise to it. Anything
 * else is the dashboard's (/jobs..., /api/..., /assets/...) or a 404. */
static const struct {
    const char *path;
    void (*handle)(server_thread_t *t, h2o_req_t *req);
} routes[] = {
    {"/healthz", route_healthz},
    {"/readyz", route_readyz},
    {"/metrics", route_metrics},
    {"/", route_status},
    {"/setup/org", route_setup_org},
    {"/setup/callback", route_setup_callback},
    {"/setup/code", route_setup_code},
};

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    server_thread_t *t = H2O_STRUCT_FROM_MEMBER(server_thread_t, ctx, req->conn->ctx);
    front_keep_alive(&t->front, req); /* the connection's next request is the front's again */
    /* every route answers only to its own names (access.h); the webhook,
     * which its signature authenticates, never comes here: the front has it */
    if (access_refuse_host(&t->server->access, req))
        return 0;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (path_is(req, routes[i].path)) {
            routes[i].handle(t, req);
            return 0;
        }
    }
    if (!dashboard_handle(&t->dashboard, req))
        respond_json(req, 404, "error", "no such path");
    return 0;
}

/* ---- threads ---- */

static void track_redis_state(server_thread_t *t)
{
    int up = rasync_connected(t->redis);
    if (up != t->redis_up) {
        atomic_fetch_add(&t->server->metrics.redis_connections_up, up ? 1 : -1);
        t->redis_up = up;
    }
}

/* Everything h2o makes for a loop is made and disposed of on the loop's own
 * thread: an h2o socket's empty input buffer is a __thread prototype of the
 * thread that created it, so a socket created or closed on another thread
 * reads that thread's TLS (after the thread exited, unmapped memory). */
static void thread_init(server_thread_t *t)
{
    server_t *s = t->server;
    t->loop = h2o_evloop_create();
    h2o_context_init(&t->ctx, t->loop, &s->globalconf);
    t->accept_ctx.ctx = &t->ctx;
    t->accept_ctx.hosts = s->globalconf.hosts;
    t->mtqueue = h2o_multithread_create_queue(t->loop);
    t->redis = rasync_new(t->loop, &s->redis_url);
    delivery_loop_init(&t->delivery, &s->delivery, &t->ctx, t->mtqueue, t->redis);
    dashboard_loop_init(&t->dashboard, s->dashboard, t->mtqueue, &s->metrics.inflight);
    /* Accept only once this loop's Redis connection is up, or its first
     * attempt failed (at most redis_timeout_ms): the front answers a delivery
     * within the turn it arrives in, and one that came in the first
     * milliseconds would be spooled for want of a connection about to exist.
     * Connections wait in the listen backlog meanwhile. */
    uint64_t until = h2o_now(t->loop) + (uint64_t)s->cfg->server.redis_timeout_ms;
    while (t->redis != NULL && rasync_connecting(t->redis) && h2o_now(t->loop) < until)
        h2o_evloop_run(t->loop, 10);
    front_loop_init(&t->front, &s->front, &t->ctx, &t->accept_ctx, &t->delivery, t->listen_fd);
    t->listen_fd = -1; /* the front's listener owns it now */
}

static void thread_dispose(server_thread_t *t)
{
    front_loop_dispose(&t->front);
    delivery_loop_dispose(&t->delivery);
    rasync_free(t->redis);
    t->redis = NULL;
    dashboard_loop_dispose(&t->dashboard);
    h2o_multithread_destroy_queue(t->mtqueue);
    /* h2o 2.2.5's evloop build closes the queue's pipe but never frees the
     * queue itself; it came from malloc (h2o_mem_alloc) */
    free(t->mtqueue);
    h2o_context_dispose(&t->ctx);
    free(t->ctx.queue); /* the same h2o 2.2.5 omission */
    /* let h2o run the closes it scheduled before the loop goes */
    h2o_evloop_run(t->loop, 0);
    h2o_evloop_destroy(t->loop);
    t->loop = NULL;
}

static void *thread_main(void *arg)
{
    server_thread_t *t = arg;
    server_t *s = t->server;

    thread_init(t);
    while (!atomic_load(&s->stopping)) {
        h2o_evloop_run(t->loop, SERVER_LOOP_WAIT_MS);
        track_redis_state(t);
    }
    /* stop taking connections; finish the deliveries already here */
    front_loop_stop_accepting(&t->front);
    uint64_t until = h2o_now(t->loop) + SERVER_DRAIN_MS;
    while (atomic_load(&s->metrics.inflight) > 0 && h2o_now(t->loop) < until)
        h2o_evloop_run(t->loop, 10);
    size_t open = front_loop_close_all(&t->front, SERVER_CLOSE_MS);
    if (open > 0 || atomic_load(&s->metrics.inflight) > 0) {
        /* something h2o or another thread still holds: disposing would abort
         * or free what they will touch, so leave it to the process's exit */
        log_warn(NULL, NULL, "%zu connections still open at exit", open);
        return NULL;
    }
    thread_dispose(t);
    return NULL;
}

static int bind_listener(const config_t *cfg, int port, char *err, size_t err_len)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%d", port);
    int gai = getaddrinfo(cfg->server.host, portstr, &hints, &res);
    if (gai != 0) {
        snprintf(err, err_len, "cannot resolve HOST %s: %s", cfg->server.host, gai_strerror(gai));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int on = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, SERVER_LISTEN_BACKLOG) != 0) {
        snprintf(err, err_len, "cannot listen on %s:%d: %s", cfg->server.host, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    return fd;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
}

server_t *server_new(const config_t *cfg, const char *redis_url, char *err, size_t err_len)
{
    server_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    s->cfg = cfg;
    metrics_init(&s->metrics);

    if (redisconn_url_parse(&s->redis_url, redis_url, err, err_len) != 0)
        goto fail;
    s->redis_desc = redisconn_url_describe(&s->redis_url);

    s->nthreads = cfg->server.threads > 0 ? cfg->server.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (s->nthreads < 1)
        s->nthreads = 1;
    s->threads = calloc((size_t)s->nthreads, sizeof(*s->threads));
    if (s->threads == NULL) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    for (int i = 0; i < s->nthreads; i++)
        s->threads[i].listen_fd = -1;
    s->port = cfg->server.port;
    for (int i = 0; i < s->nthreads; i++) {
        s->threads[i].server = s;
        if ((s->threads[i].listen_fd = bind_listener(cfg, s->port, err, err_len)) < 0)
            goto fail;
        if (s->port == 0) /* the first bind picked a port; the others share it */
            s->port = bound_port(s->threads[i].listen_fd);
    }

    s->ingress = ingress_start(cfg->data_dir, &s->redis_url, (int64_t)cfg->workers.retention_days * 86400,
                               &s->metrics, err, err_len);
    if (s->ingress == NULL)
        goto fail;
    delivery_conf_init(&s->delivery, cfg, &s->metrics, s->ingress);
    front_conf_init(&s->front, cfg, &s->metrics, s->nthreads);
    s->qstats = qstats_start(&s->redis_url);
    pages_init(&s->pages, cfg, &s->metrics, s->qstats);
    access_init(&s->access, cfg);
    if ((s->dashboard = dashboard_new(cfg, &s->redis_url, err, err_len)) == NULL)
        goto fail;

    h2o_config_init(&s->globalconf);
    s->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("patchbay"));
    /* h2o sees only requests the front has read whole (front.h); this is a
     * second fence behind the front's own limit */
    s->globalconf.max_request_entity_size = FRONT_PAGE_BODY_MAX_BYTES;
    s->globalconf.http1.req_timeout = (uint64_t)cfg->server.request_timeout_ms;
    s->globalconf.http1.upgrade_to_http2 = 0;
    s->globalconf.http2.idle_timeout = (uint64_t)cfg->server.request_timeout_ms;
    h2o_hostconf_t *host = h2o_config_register_host(&s->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    server_handler_t *handler = (server_handler_t *)h2o_create_handler(path, sizeof(*handler));
    handler->super.on_req = on_req;
    handler->server = s;
    return s;
fail:
    server_free(s);
    return NULL;
}

void server_set_sandbox(server_t *s, const char *problem, int off)
{
    snprintf(s->pages.sandbox_problem, sizeof(s->pages.sandbox_problem), "%s", problem ? problem : "");
    s->pages.sandbox_off = off;
}

int server_port(const server_t *s)
{
    return s->port;
}

int server_start(server_t *s, char *err, size_t err_len)
{
    for (int i = 0; i < s->nthreads; i++) {
        server_thread_t *t = &s->threads[i];
        if (pthread_create(&t->tid, NULL, thread_main, t) != 0) {
            snprintf(err, err_len, "cannot start event-loop thread %d", i);
            atomic_store(&s->stopping, 1);
            return -1;
        }
        s->started++;
    }
    log_info(NULL, NULL, "listening on %s:%d (%d event loops), webhook path %s, Redis at %s", s->cfg->server.host,
             s->port, s->nthreads, s->cfg->server.webhook_path, s->redis_desc);
    log_info(NULL, NULL, "up to %lld connections (open-file limit %ld), up to %zu bytes of request bodies in memory",
             (long long)s->metrics.connections_limit, s->front.nofile, s->cfg->server.inflight_body_bytes);
    if (s->front.clamped)
        log_warn(NULL, NULL,
                 "server.max_connections %d is more than the open-file limit %ld allows; keeping %lld "
                 "(raise the limit, e.g. LimitNOFILE= in the systemd unit)",
                 s->cfg->server.max_connections, s->front.nofile, (long long)s->metrics.connections_limit);
    /* where a browser on this machine reaches us, unless PUBLIC_URL says where everyone does */
    char base[1100];
    const char *pub = s->cfg->server.public_url, *host = s->cfg->server.host;
    if (pub != NULL)
        snprintf(base, sizeof(base), "%.*s", (int)(strlen(pub) - (pub[0] && pub[strlen(pub) - 1] == '/')), pub);
    else if (strchr(host, ':') != NULL)
        snprintf(base, sizeof(base), "http://[%s]:%d", strcmp(host, "::") == 0 ? "::1" : host, s->port);
    else
        snprintf(base, sizeof(base), "http://%s:%d", strcmp(host, "0.0.0.0") == 0 ? "127.0.0.1" : host, s->port);
    if (pub == NULL && strcmp(host, "0.0.0.0") != 0 && strcmp(host, "::") != 0 &&
        !access_name_is_loopback(host, strlen(host)))
        log_warn(NULL, NULL, "PUBLIC_URL is not set: the pages and the dashboard answer only to localhost and "
                 "PUBLIC_URL's name, so %s/ is refused (421) until PUBLIC_URL=%s", base, base);
    pages_announce(&s->pages, base);
    dashboard_announce(s->dashboard, base);
    return 0;
}

void server_stop(server_t *s)
{
    atomic_store(&s->stopping, 1);
    for (int i = 0; i < s->started; i++)
        pthread_join(s->threads[i].tid, NULL);
    s->started = 0;
    /* after the loops: the ingress thread may still be answering them */
    ingress_stop(s->ingress);
    s->ingress = NULL;
    qstats_stop(s->qstats);
    s->qstats = NULL;
    dashboard_free(s->dashboard);
    s->dashboard = NULL;
}

void server_free(server_t *s)
{
    if (s == NULL)
        return;
    if (s->started)
        server_stop(s);
    ingress_stop(s->ingress);
    qstats_stop(s->qstats);
    dashboard_free(s->dashboard);
    /* the loops disposed of themselves on their threads (thread_dispose);
     * only listeners of threads that never started are left */
    for (int i = 0; s->threads != NULL && i < s->nthreads; i++)
        if (s->threads[i].listen_fd >= 0)
            close(s->threads[i].listen_fd);
    free(s->threads);
    if (s->globalconf.hosts != NULL)
        h2o_config_dispose(&s->globalconf);
    redisconn_url_free(&s->redis_url);
    free(s->redis_desc);
    free(s);
}

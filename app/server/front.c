/*
 * front — see front.h. This file is one connection's life:
 *
 *   accept -> IDLE -> HEAD -+-> webhook: BODY (via CONTINUE) -> WAIT -> WRITE -+-> IDLE (keep-alive)
 *                           |                                                 +-> DISCARD -> IDLE
 *                           |                                                 +-> LINGER -> closed
 *                           +-> other path: PAGE_BODY -> LENT (h2o) -> IDLE
 *                           +-> refused: WRITE -> ...
 *
 * Each state sits on one of the loop's three lists (idle, reading, busy),
 * least recently active first, which is all eviction needs.
 */
#include "front.h"
#include "respond.h"
#include "app/common/log.h"
#include "app/common/strbuf.h"

#include <h2o/http1.h>

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- picohttpparser ----
 * libh2o-evloop exports it (nm -D: phr_parse_request, phr_decode_chunked)
 * but Debian installs no header for it, so its documented interface is
 * declared here. phr_chunked_decoder is the 2018 layout h2o 2.2.5 carries;
 * the decoder below gets spare room in case a library build has a longer one. */
struct phr_header {
    const char *name; /* NULL for an obsolete folded continuation line */
    size_t name_len;
    const char *value;
    size_t value_len;
};
/* bytes of the head on success; -2 incomplete; -1 broken */
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path,
                      size_t *path_len, int *minor_version, struct phr_header *headers, size_t *num_headers,
                      size_t last_len);
struct phr_chunked_decoder {
    size_t bytes_left_in_chunk;
    char consume_trailer;
    char _hex_count;
    char _state;
};
/* Decodes in place: buf[0, *bufsz) is then the decoded data. -2: needs more;
 * -1: broken; >= 0: done, and that many undecoded bytes (what follows the
 * body) come right after the decoded data. */
ssize_t phr_decode_chunked(struct phr_chunked_decoder *decoder, char *buf, size_t *bufsz);

#define FRONT_MAX_HEADERS 100          /* h2o's H2O_MAX_HEADERS */
#define FRONT_READ_STEP 4096
#define FRONT_READ_BURST (1024 * 1024) /* body bytes from one connection per wake-up: fair to the others */
#define FRONT_CHUNK_STEP (64 * 1024)   /* a chunked body's budget grows by at least this */
#define FRONT_ACCEPTS_PER_WAKE 16      /* fair to the other loops' listeners */
#define FRONT_FD_PER_LOOP 8            /* listener, epoll, the loop's pipes and Redis connection */
#define FRONT_MIN_CONNECTIONS 16
#define FRONT_ANSWER_BYTES 1024
#define FRONT_WARN_INTERVAL_MS 10000

typedef enum {
    FRONT_IDLE,      /* waiting for a request's first byte */
    FRONT_HEAD,      /* part of a head is in */
    FRONT_PAGE_BODY, /* another path's body is arriving, before h2o gets the request */
    FRONT_BODY,      /* a webhook body is arriving */
    FRONT_CONTINUE,  /* writing 100 Continue */
    FRONT_WAIT,      /* the body is in; delivery is deciding (Redis, the spool) */
    FRONT_WRITE,     /* writing the answer */
    FRONT_DISCARD,   /* answered early: dropping the rest of a small body to keep the connection */
    FRONT_LINGER,    /* answered, closing: dropping what the client still sends, so it reads the answer */
    FRONT_LENT,      /* h2o has it for one request */
} front_state_t;

struct front_conn_s {
    h2o_linklist_t link; /* on the loop's list for its state */
    front_loop_t *loop;
    h2o_socket_t *sock;
    front_state_t state;
    uint64_t active_ms; /* when it last changed state or sent something: its place on its list */
    h2o_timeout_entry_t timer;
    /* the request being read or answered */
    unsigned keep_alive : 1, chunked : 1, expect_continue : 1, head_only : 1, webhook : 1;
    unsigned body_unread : 1;  /* a body was announced and not all of it read */
    unsigned length_unknown : 1; /* ... and how much of it is left is unknown (chunked, or broken framing) */
    unsigned close_after : 1, linger : 1, peer_closed : 1;
    size_t content_length;
    size_t received; /* body bytes read (decoded, for chunked) */
    size_t capacity; /* of body */
    size_t reserved; /* budget this connection holds */
    size_t discard;  /* body bytes still to drop before the next request */
    size_t request_bytes; /* head and body of a request for h2o */
    char *body;
    union {
        struct phr_chunked_decoder d;
        char room[64];
    } decoder;
    delivery_head_t head;
    delivery_t *pending; /* while delivery decides */
    char *answer;        /* while it is written */
};

static void on_read(h2o_socket_t *sock, const char *err);
static void next_request(front_conn_t *c);
static void parse_head(front_conn_t *c);

/* ---- the body budget ----
 * One counter for the server, in metrics_t, taken with compare-and-swap: a
 * body is admitted only if all of it fits. `total` is how large the body is
 * (or has grown to): past CONFIG_SMALL_BODY_BYTES it may not use the part
 * kept for small ones. */

static int budget_take(front_loop_t *f, size_t n, size_t total)
{
    metrics_t *m = f->conf->metrics;
    int64_t limit = f->conf->budget - (total <= CONFIG_SMALL_BODY_BYTES ? 0 : CONFIG_SMALL_BODY_RESERVE_BYTES);
    int64_t cur = atomic_load_explicit(&m->body_bytes, memory_order_relaxed);
    do {
        if ((int64_t)n > limit - cur)
            return 0;
    } while (!atomic_compare_exchange_weak_explicit(&m->body_bytes, &cur, cur + (int64_t)n, memory_order_relaxed,
                                                    memory_order_relaxed));
    return 1;
}

static void budget_give(front_loop_t *f, size_t n)
{
    if (n > 0)
        atomic_fetch_sub_explicit(&f->conf->metrics->body_bytes, (int64_t)n, memory_order_relaxed);
}

/* ---- small helpers ---- */

static void warn_rate_limited(front_loop_t *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn_rate_limited(front_loop_t *f, const char *fmt, ...)
{
    uint64_t now = h2o_now(f->ctx->loop);
    if (f->last_warn_ms != 0 && now - f->last_warn_ms < FRONT_WARN_INTERVAL_MS) {
        f->suppressed_warns++;
        return;
    }
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (f->suppressed_warns > 0)
        log_warn(NULL, NULL, "%s (and %u more such events in the last %d s)", msg, f->suppressed_warns,
                 FRONT_WARN_INTERVAL_MS / 1000);
    else
        log_warn(NULL, NULL, "%s", msg);
    f->last_warn_ms = now;
    f->suppressed_warns = 0;
}

static const char *http_date(front_loop_t *f)
{
    time_t now = time(NULL);
    if (now != f->date_at) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(f->date, sizeof(f->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        f->date_at = now;
    }
    return f->date;
}

static int name_is(const struct phr_header *h, const char *name)
{
    size_t n = strlen(name);
    return h->name_len == n && strncasecmp(h->name, name, n) == 0;
}

/* Whether the comma-separated list s holds token (case-insensitive). */
static int list_has(const char *s, size_t len, const char *token)
{
    size_t tl = strlen(token);
    while (len > 0) {
        const char *comma = memchr(s, ',', len);
        size_t n = comma != NULL ? (size_t)(comma - s) : len;
        const char *a = s, *b = s + n;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if ((size_t)(b - a) == tl && strncasecmp(a, token, tl) == 0)
            return 1;
        if (comma == NULL)
            break;
        s += n + 1;
        len -= n + 1;
    }
    return 0;
}

/* Content-Length: digits only, no sign, no list. */
static int parse_length(const char *s, size_t len, size_t *out)
{
    size_t v = 0;
    if (len == 0 || len > 18)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (size_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* h2o decides routes on the normalised path (percent-decoding, dot
 * segments, the query cut off); deciding here with the same function means
 * every spelling h2o would route to the webhook is the front's. */
static int path_is_webhook(front_loop_t *f, const char *path, size_t len)
{
    const char *want = f->conf->cfg->server.webhook_path;
    h2o_mem_pool_t pool;
    size_t query_at, *norm_indexes;
    h2o_mem_init_pool(&pool);
    h2o_iovec_t norm = h2o_url_normalize_path(&pool, path, len, &query_at, &norm_indexes);
    int is = h2o_memis(norm.base, norm.len, want, strlen(want));
    h2o_mem_clear_pool(&pool);
    return is;
}

/* ---- lists and timers ---- */

static h2o_linklist_t *list_for(front_loop_t *f, front_state_t s)
{
    switch (s) {
    case FRONT_IDLE:
    case FRONT_LINGER: return &f->idle;
    case FRONT_HEAD:
    case FRONT_PAGE_BODY:
    case FRONT_BODY:
    case FRONT_DISCARD: return &f->reading;
    default: return &f->busy;
    }
}

/* Moves c to state s, at the recent end of its list. */
static void set_state(front_conn_t *c, front_state_t s)
{
    c->state = s;
    c->active_ms = h2o_now(c->loop->ctx->loop);
    h2o_linklist_unlink(&c->link);
    h2o_linklist_insert(list_for(c->loop, s), &c->link);
}

/* Something arrived: c is the most recently active on its list. */
static void touch(front_conn_t *c)
{
    set_state(c, c->state);
}

static void timer_stop(front_conn_t *c)
{
    if (h2o_timeout_is_linked(&c->timer))
        h2o_timeout_unlink(&c->timer);
}

static void timer_start(front_conn_t *c, h2o_timeout_t *timeout)
{
    timer_stop(c);
    h2o_timeout_link(c->loop->ctx->loop, timeout, &c->timer);
}

/* From 3/4 of the cap on, idle connections get the short timeout. Changing
 * an h2o_timeout_t's duration moves every entry already linked to it: they
 * expire at registered_at + timeout, read when the timeouts run. */
static void update_pressure(front_loop_t *f)
{
    int p = f->nconns * 4 >= f->conf->cap_per_loop * 3;
    if (p == f->pressure)
        return;
    f->pressure = p;
    f->idle_timeout.timeout = p ? f->conf->pressure_idle_ms : f->conf->idle_ms;
}

/* ---- a connection's request ---- */

/* Forgets the request: its body and budget, a delivery still deciding. */
static void request_reset(front_conn_t *c)
{
    if (c->pending != NULL) {
        delivery_abandon(c->pending);
        c->pending = NULL;
    }
    delivery_head_clear(&c->head);
    free(c->body);
    c->body = NULL;
    budget_give(c->loop, c->reserved);
    c->reserved = 0;
    c->keep_alive = c->chunked = c->expect_continue = c->head_only = c->webhook = 0;
    c->body_unread = c->length_unknown = c->close_after = c->linger = 0;
    c->content_length = c->received = c->capacity = c->discard = c->request_bytes = 0;
    memset(&c->decoder, 0, sizeof(c->decoder));
}

static void on_conn_close(void *arg)
{
    front_conn_t *c = arg;
    front_loop_t *f = c->loop;
    timer_stop(c);
    request_reset(c);
    free(c->answer);
    h2o_linklist_unlink(&c->link);
    f->nconns--;
    atomic_fetch_sub_explicit(&f->conf->metrics->connections, 1, memory_order_relaxed);
    free(c);
    update_pressure(f);
}

static void conn_close(front_conn_t *c)
{
    h2o_socket_close(c->sock); /* on_conn_close frees c */
}

typedef enum { READ_AGAIN, READ_SOME, READ_END } read_result_t;

static read_result_t read_fd(front_conn_t *c, void *buf, size_t len, size_t *got)
{
    ssize_t r;
    while ((r = read(h2o_socket_get_fd(c->sock), buf, len)) < 0 && errno == EINTR)
        ;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return READ_AGAIN;
    if (r <= 0) {
        c->peer_closed = 1;
        return READ_END;
    }
    *got = (size_t)r;
    return READ_SOME;
}

/* Reads what is there into the socket's input, until it holds `cap`. */
static read_result_t read_input(front_conn_t *c, size_t cap)
{
    read_result_t res = READ_AGAIN;
    for (int i = 0; i < 4 && c->sock->input->size < cap; i++) {
        size_t room = cap - c->sock->input->size, got = 0;
        h2o_iovec_t buf = h2o_buffer_reserve(&c->sock->input, room < FRONT_READ_STEP ? room : FRONT_READ_STEP);
        size_t want = buf.len < room ? buf.len : room;
        read_result_t r = read_fd(c, buf.base, want, &got);
        if (r != READ_SOME)
            return res == READ_SOME && r == READ_AGAIN ? READ_SOME : r;
        c->sock->input->size += got;
        res = READ_SOME;
        if (got < want)
            break;
    }
    return res;
}

/* ---- answers ---- */

static void on_answer_written(h2o_socket_t *sock, const char *err);

static void start_linger(front_conn_t *c)
{
    front_loop_t *f = c->loop;
    request_reset(c);
    if (c->sock->input->size > 0)
        h2o_buffer_consume(&c->sock->input, c->sock->input->size);
    shutdown(h2o_socket_get_fd(c->sock), SHUT_WR);
    set_state(c, FRONT_LINGER);
    timer_start(c, &f->linger_timeout);
    h2o_socket_read_start(c->sock, on_read);
}

/* Writes {key: value} as the answer. What is left of the request decides
 * whether the connection carries another: a small unread body is dropped,
 * a large or chunked one (or one the client waits to send) ends it. */
static void respond(front_conn_t *c, int status, const char *key, const char *value)
{
    front_loop_t *f = c->loop;
    assert(c->answer == NULL);
    delivery_head_clear(&c->head);
    c->discard = 0;
    if (c->body_unread) {
        size_t left = c->content_length - c->received;
        if (!c->length_unknown && !c->expect_continue && left <= FRONT_DISCARD_MAX_BYTES && status != 408) {
            c->discard = left;
        } else {
            c->close_after = 1;
            c->linger = status != 408; /* a stalled sender is cut off, not waited for */
        }
    }
    if (!c->keep_alive || c->peer_closed)
        c->close_after = 1;

    set_state(c, FRONT_WRITE);
    timer_start(c, &f->request_timeout); /* a client that never reads its answer is not kept */
    h2o_socket_read_stop(c->sock);       /* a pipelined request waits for this answer */
    if ((c->answer = malloc(FRONT_ANSWER_BYTES)) == NULL) {
        /* callers go on using c after this returns: no closing here */
        static const char oom[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        h2o_iovec_t buf = h2o_iovec_init(oom, sizeof(oom) - 1);
        c->close_after = 1;
        c->linger = 0;
        h2o_socket_write(c->sock, &buf, 1, on_answer_written);
        return;
    }
    char mem[512];
    strbuf_t body;
    strbuf_init_fixed(&body, mem, sizeof(mem));
    respond_json_body(&body, key, value);
    int n = snprintf(c->answer, FRONT_ANSWER_BYTES,
                     "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: patchbay\r\nContent-Type: application/json\r\n"
                     "Cache-Control: no-store\r\n%s%sContent-Length: %zu\r\nConnection: %s\r\n\r\n%.*s",
                     status, respond_reason(status), http_date(f),
                     status == 503 ? "Retry-After: " H2O_TO_STR(FRONT_RETRY_AFTER_S) "\r\n" : "",
                     status == 405 ? "Allow: POST\r\n" : "", body.len, c->close_after ? "close" : "keep-alive",
                     c->head_only ? 0 : (int)body.len, body.data);
    assert(n > 0 && n < FRONT_ANSWER_BYTES);
    h2o_iovec_t buf = h2o_iovec_init(c->answer, (size_t)n);
    h2o_socket_write(c->sock, &buf, 1, on_answer_written);
}

static void refuse(front_conn_t *c, metrics_refused_t why, int status, const char *message)
{
    metrics_refused(c->loop->conf->metrics, why);
    respond(c, status, "error", message);
}

/* A request the connection cannot be trusted past: answer, then close,
 * lingering in case a body of unknown length is still on its way. */
static void refuse_closing(front_conn_t *c, metrics_refused_t why, int status, const char *message)
{
    c->keep_alive = 0;
    c->body_unread = c->length_unknown = 1;
    refuse(c, why, status, message);
}

static void on_answer_written(h2o_socket_t *sock, const char *err)
{
    front_conn_t *c = sock->data;
    free(c->answer);
    c->answer = NULL;
    if (err != NULL) {
        conn_close(c);
        return;
    }
    if (c->close_after) {
        if (c->linger)
            start_linger(c);
        else
            conn_close(c);
        return;
    }
    size_t discard = c->discard;
    request_reset(c);
    size_t n = discard < sock->input->size ? discard : sock->input->size;
    if (n > 0)
        h2o_buffer_consume(&sock->input, n);
    if ((c->discard = discard - n) > 0) {
        set_state(c, FRONT_DISCARD);
        timer_start(c, &c->loop->request_timeout);
        h2o_socket_read_start(sock, on_read);
        return;
    }
    next_request(c);
}

/* A delivery's answer (delivery_answer_cb). */
static void on_delivery_answer(void *owner, int status, const char *key, const char *value)
{
    front_conn_t *c = owner;
    c->pending = NULL;
    /* delivery is done with the body: its bytes leave the budget now */
    free(c->body);
    c->body = NULL;
    budget_give(c->loop, c->reserved);
    c->reserved = 0;
    respond(c, status, key, value);
}

/* ---- webhook bodies ---- */

static void body_complete(front_conn_t *c)
{
    c->body_unread = 0;
    set_state(c, FRONT_WAIT);
    timer_stop(c);
    h2o_socket_read_stop(c->sock);
    delivery_t *p = delivery_finish(c->loop->delivery, &c->head, c->body, c->received, on_delivery_answer, c);
    if (p != NULL)
        c->pending = p;
}

/* Room for `more` decoded bytes of a chunked body: the buffer and its budget
 * grow together, at least by FRONT_CHUNK_STEP, never past the body limit. */
static int body_grow(front_conn_t *c, size_t more)
{
    front_loop_t *f = c->loop;
    size_t limit = f->conf->cfg->server.body_limit_bytes;
    if (c->received + more > limit) {
        refuse(c, METRICS_REFUSED_TOO_LARGE, 413, "the body is larger than server.body_limit_bytes");
        return -1;
    }
    if (c->received + more <= c->capacity)
        return 0;
    size_t cap = c->capacity * 2 > c->received + more ? c->capacity * 2 : c->received + more;
    if (cap < c->capacity + FRONT_CHUNK_STEP)
        cap = c->capacity + FRONT_CHUNK_STEP;
    if (cap > limit)
        cap = limit;
    if (!budget_take(f, cap - c->reserved, cap)) {
        refuse(c, METRICS_REFUSED_BODY_BUDGET, 503,
               "patchbay holds as many request bodies as server.inflight_body_bytes allows; retry later");
        return -1;
    }
    c->reserved = cap;
    char *grown = realloc(c->body, cap);
    if (grown == NULL) {
        respond(c, 503, "error", "out of memory");
        return -1;
    }
    c->body = grown;
    c->capacity = cap;
    return 0;
}

/* Decodes what the input holds. -1: answered; 0: needs more; 1: complete. */
static int chunked_feed(front_conn_t *c)
{
    h2o_buffer_t *in = c->sock->input;
    if (in->size == 0)
        return 0;
    size_t decoded = in->size;
    ssize_t rest = phr_decode_chunked(&c->decoder.d, in->bytes, &decoded);
    if (rest == -1) {
        refuse(c, METRICS_REFUSED_BAD_REQUEST, 400, "broken chunked encoding");
        return -1;
    }
    if (decoded > 0) {
        if (body_grow(c, decoded) != 0)
            return -1;
        memcpy(c->body + c->received, in->bytes, decoded);
        delivery_feed(&c->head, in->bytes, decoded);
        c->received += decoded;
    }
    /* what follows the body (a pipelined request) stays in the input */
    in->size = decoded + (rest >= 0 ? (size_t)rest : 0);
    if (decoded > 0)
        h2o_buffer_consume(&c->sock->input, decoded);
    return rest >= 0 ? 1 : 0;
}

static void read_body(front_conn_t *c);

/* Body bytes that came with the head; then the rest, which has usually
 * arrived with them: reading it now saves a turn of the loop. */
static void body_from_input(front_conn_t *c)
{
    if (c->chunked) {
        int fed = chunked_feed(c);
        if (fed == 1)
            body_complete(c);
        else if (fed == 0 && c->peer_closed)
            conn_close(c);
        else if (fed == 0)
            read_body(c);
        return;
    }
    h2o_buffer_t *in = c->sock->input;
    size_t n = c->content_length - c->received < in->size ? c->content_length - c->received : in->size;
    if (n > 0) {
        memcpy(c->body + c->received, in->bytes, n);
        delivery_feed(&c->head, in->bytes, n);
        c->received += n;
        h2o_buffer_consume(&c->sock->input, n);
    }
    if (c->received == c->content_length)
        body_complete(c);
    else if (c->peer_closed)
        conn_close(c); /* the client closed its side before the body was in */
    else
        read_body(c);
}

static void read_body(front_conn_t *c)
{
    size_t left = FRONT_READ_BURST, got = 0;
    int progress = 0;
    read_result_t r = READ_AGAIN;
    if (!c->chunked) {
        /* straight into the body's own buffer: no copy, no growth */
        while (c->received < c->content_length && left > 0) {
            size_t want = c->content_length - c->received < left ? c->content_length - c->received : left;
            if ((r = read_fd(c, c->body + c->received, want, &got)) != READ_SOME)
                break;
            delivery_feed(&c->head, c->body + c->received, got);
            c->received += got;
            left -= got;
            progress = 1;
            if (got < want)
                break;
        }
        if (c->received == c->content_length) {
            body_complete(c);
            return;
        }
    } else {
        while (left > 0) {
            size_t before = c->sock->input->size;
            if ((r = read_input(c, before + FRONT_CHUNK_STEP)) != READ_SOME)
                break;
            size_t got_now = c->sock->input->size - before;
            left -= got_now < left ? got_now : left;
            progress = 1;
            int fed = chunked_feed(c);
            if (fed < 0)
                return;
            if (fed == 1) {
                body_complete(c);
                return;
            }
        }
    }
    if (r == READ_END) {
        conn_close(c); /* the client went before its body was in */
        return;
    }
    if (progress)
        touch(c);
}

/* ---- requests for h2o ---- */

/* The request (head and body) is in the input: h2o parses it from there,
 * answers, and front_keep_alive's ostream hands the socket back. */
static void lend(front_conn_t *c)
{
    front_loop_t *f = c->loop;
    set_state(c, FRONT_LENT);
    timer_stop(c);
    h2o_socket_read_stop(c->sock);
    h2o_socket_dont_read(c->sock, 0);
    /* h2o may answer, or close, before this returns: c is not touched after */
    h2o_accept(f->accept_ctx, c->sock);
}

static void read_page_body(front_conn_t *c)
{
    read_result_t r = read_input(c, c->request_bytes);
    if (c->sock->input->size >= c->request_bytes) {
        lend(c);
        return;
    }
    if (r == READ_END) {
        conn_close(c);
        return;
    }
    if (r == READ_SOME)
        touch(c);
}

static void on_continue_written(h2o_socket_t *sock, const char *err)
{
    front_conn_t *c = sock->data;
    if (err != NULL) {
        conn_close(c);
        return;
    }
    h2o_socket_read_start(sock, on_read);
    if (c->webhook) {
        set_state(c, FRONT_BODY);
        body_from_input(c);
    } else {
        set_state(c, FRONT_PAGE_BODY);
        read_page_body(c);
    }
}

/* Sent only once the body is admitted: a client that waits for it never
 * sends a byte the server would refuse. */
static void send_continue(front_conn_t *c)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    h2o_iovec_t buf = h2o_iovec_init(cont, sizeof(cont) - 1);
    set_state(c, FRONT_CONTINUE);
    h2o_socket_read_stop(c->sock);
    h2o_socket_write(c->sock, &buf, 1, on_continue_written);
}

/* Another path: h2o answers it, once its (small) body is in. */
static void page_head(front_conn_t *c, size_t head_len)
{
    if (c->chunked) {
        h2o_buffer_consume(&c->sock->input, head_len);
        refuse(c, METRICS_REFUSED_BAD_REQUEST, 411, "a body to this path needs a Content-Length");
        return;
    }
    if (c->content_length > FRONT_PAGE_BODY_MAX_BYTES) {
        h2o_buffer_consume(&c->sock->input, head_len);
        refuse(c, METRICS_REFUSED_TOO_LARGE, 413, "the body is larger than this path takes (64 KiB)");
        return;
    }
    if (c->content_length > 0 && !budget_take(c->loop, c->content_length, c->content_length)) {
        h2o_buffer_consume(&c->sock->input, head_len);
        refuse(c, METRICS_REFUSED_BODY_BUDGET, 503,
               "patchbay holds as many request bodies as server.inflight_body_bytes allows; retry later");
        return;
    }
    c->reserved = c->content_length;
    c->request_bytes = head_len + c->content_length;
    if (c->sock->input->size >= c->request_bytes) {
        lend(c);
        return;
    }
    if (c->peer_closed) {
        conn_close(c);
        return;
    }
    if (c->expect_continue) {
        send_continue(c);
        return;
    }
    set_state(c, FRONT_PAGE_BODY);
}

/* The webhook path: everything is decided before a byte of the body is read. */
static void webhook_head(front_conn_t *c, const delivery_request_t *r, size_t head_len)
{
    front_loop_t *f = c->loop;
    c->webhook = 1;
    if (c->content_length > f->conf->cfg->server.body_limit_bytes) {
        h2o_buffer_consume(&c->sock->input, head_len);
        refuse(c, METRICS_REFUSED_TOO_LARGE, 413, "the body is larger than server.body_limit_bytes");
        return;
    }
    /* the header values point into the input: consumed only after this */
    int rc = delivery_begin(f->delivery, &c->head, r, on_delivery_answer, c);
    h2o_buffer_consume(&c->sock->input, head_len);
    if (rc != 0)
        return; /* refused: the answer is being written */

    size_t need = c->chunked ? FRONT_CHUNK_STEP : c->content_length;
    if (need > 0 && !budget_take(f, need, need)) {
        refuse(c, METRICS_REFUSED_BODY_BUDGET, 503,
               "patchbay holds as many request bodies as server.inflight_body_bytes allows; retry later");
        return;
    }
    c->reserved = need;
    c->capacity = need;
    if ((c->body = malloc(need > 0 ? need : 1)) == NULL) {
        respond(c, 503, "error", "out of memory");
        return;
    }
    if (c->expect_continue && c->body_unread && !c->peer_closed) {
        send_continue(c);
        return;
    }
    set_state(c, FRONT_BODY);
    body_from_input(c);
}

/* A complete head: framing first (the same rules for every path), then the
 * path decides who reads the rest. */
static void handle_head(front_conn_t *c, const char *method, size_t method_len, const char *path, size_t path_len,
                        int minor, const struct phr_header *h, size_t nh, size_t head_len)
{
    int bad = 0, has_length = 0, other_coding = 0, other_expectation = 0;
    delivery_request_t r = {.method = h2o_iovec_init(method, method_len)};

    c->keep_alive = minor >= 1;
    c->head_only = method_len == 4 && memcmp(method, "HEAD", 4) == 0;
    for (size_t i = 0; i < nh; i++) {
        if (h[i].name == NULL) { /* obsolete line folding: RFC 9112 5.2 allows refusing it */
            bad = 1;
        } else if (name_is(&h[i], "content-length")) {
            size_t v = 0;
            if (parse_length(h[i].value, h[i].value_len, &v) != 0 || (has_length && v != c->content_length))
                bad = 1;
            has_length = 1;
            c->content_length = v;
        } else if (name_is(&h[i], "transfer-encoding")) {
            if (!c->chunked && h2o_lcstris(h[i].value, h[i].value_len, H2O_STRLIT("chunked")))
                c->chunked = 1;
            else
                other_coding = 1;
        } else if (name_is(&h[i], "connection")) {
            if (list_has(h[i].value, h[i].value_len, "close"))
                c->keep_alive = 0;
            else if (list_has(h[i].value, h[i].value_len, "keep-alive"))
                c->keep_alive = 1;
        } else if (name_is(&h[i], "expect")) {
            if (h2o_lcstris(h[i].value, h[i].value_len, H2O_STRLIT("100-continue")))
                c->expect_continue = 1;
            else
                other_expectation = 1;
        } else if (name_is(&h[i], "x-github-event") && r.event.base == NULL) {
            r.event = h2o_iovec_init(h[i].value, h[i].value_len);
        } else if (name_is(&h[i], "x-github-delivery") && r.delivery.base == NULL) {
            r.delivery = h2o_iovec_init(h[i].value, h[i].value_len);
        } else if (name_is(&h[i], "x-hub-signature-256") && r.signature.base == NULL) {
            r.signature = h2o_iovec_init(h[i].value, h[i].value_len);
        }
    }
    c->body_unread = c->chunked || c->content_length > 0;
    c->length_unknown = c->chunked;
    c->decoder.d.consume_trailer = 1; /* else a trailer would be read as the next request */
    if (c->peer_closed)
        c->keep_alive = 0;

    if (bad || (c->chunked && has_length)) {
        /* both framings at once is how requests are smuggled (RFC 9112 6.1):
         * nothing after this head can be trusted, so the connection ends */
        refuse_closing(c, METRICS_REFUSED_BAD_REQUEST, 400, "the request's framing is malformed or ambiguous");
        return;
    }
    if (other_coding) {
        refuse_closing(c, METRICS_REFUSED_BAD_REQUEST, 501, "only the chunked transfer coding is understood");
        return;
    }
    if (other_expectation) {
        refuse_closing(c, METRICS_REFUSED_BAD_REQUEST, 417, "only Expect: 100-continue is understood");
        return;
    }
    if (path_is_webhook(c->loop, path, path_len))
        webhook_head(c, &r, head_len);
    else
        page_head(c, head_len);
}

static void parse_head(front_conn_t *c)
{
    h2o_buffer_t *in = c->sock->input;
    if (c->state == FRONT_IDLE) {
        set_state(c, FRONT_HEAD);
        timer_start(c, &c->loop->request_timeout); /* from the request's first byte */
    }
    const char *method, *path;
    size_t method_len, path_len, nh = FRONT_MAX_HEADERS;
    int minor;
    struct phr_header h[FRONT_MAX_HEADERS];
    size_t len = in->size < FRONT_HEAD_MAX_BYTES ? in->size : FRONT_HEAD_MAX_BYTES;
    int n = phr_parse_request(in->bytes, len, &method, &method_len, &path, &path_len, &minor, h, &nh, 0);
    if (n == -2 && len < FRONT_HEAD_MAX_BYTES) {
        if (c->peer_closed)
            conn_close(c);
        return;
    }
    if (n == -2) {
        refuse_closing(c, METRICS_REFUSED_BAD_REQUEST, 431, "the request head is larger than 8 KiB");
        return;
    }
    if (n < 0) {
        refuse_closing(c, METRICS_REFUSED_BAD_REQUEST, 400, "not an HTTP/1.1 request");
        return;
    }
    handle_head(c, method, method_len, path, path_len, minor, h, nh, (size_t)n);
}

/* ---- reading ---- */

static void read_head(front_conn_t *c)
{
    read_result_t r = read_input(c, FRONT_HEAD_MAX_BYTES);
    if (c->sock->input->size == 0) {
        if (r == READ_END)
            conn_close(c);
        return;
    }
    if (r == READ_SOME)
        touch(c);
    /* a client that sent its request and closed its side still gets the
     * answer; one that closed half-way is closed in parse_head */
    if (r == READ_END)
        h2o_socket_read_stop(c->sock);
    parse_head(c);
}

/* DISCARD and LINGER: read and drop. */
static void read_drop(front_conn_t *c)
{
    front_loop_t *f = c->loop;
    for (int i = 0; i < 16; i++) {
        size_t want = sizeof(f->drop), got = 0;
        if (c->state == FRONT_DISCARD && c->discard < want)
            want = c->discard;
        read_result_t r = read_fd(c, f->drop, want, &got);
        if (r == READ_AGAIN)
            return;
        if (r == READ_END) {
            conn_close(c);
            return;
        }
        if (c->state == FRONT_DISCARD && (c->discard -= got) == 0) {
            next_request(c);
            return;
        }
    }
}

static void on_read(h2o_socket_t *sock, const char *err)
{
    front_conn_t *c = sock->data;
    if (err != NULL) {
        conn_close(c);
        return;
    }
    switch (c->state) {
    case FRONT_IDLE:
    case FRONT_HEAD: read_head(c); break;
    case FRONT_PAGE_BODY: read_page_body(c); break;
    case FRONT_BODY: read_body(c); break;
    case FRONT_DISCARD:
    case FRONT_LINGER: read_drop(c); break;
    default: h2o_socket_read_stop(sock); break; /* not ours to read now */
    }
}

/* The connection waits for its next request (or has one in the input
 * already: pipelining). */
static void next_request(front_conn_t *c)
{
    front_loop_t *f = c->loop;
    request_reset(c);
    c->sock->data = c;
    set_state(c, FRONT_IDLE);
    if (c->peer_closed) {
        if (c->sock->input->size == 0) {
            conn_close(c);
            return;
        }
    } else {
        timer_start(c, &f->idle_timeout);
        h2o_socket_read_start(c->sock, on_read);
    }
    if (c->sock->input->size > 0)
        parse_head(c);
}

/* ---- handing connections back from h2o ---- */

typedef struct {
    h2o_req_prefilter_t super;
    front_loop_t *loop;
} keepalive_prefilter_t;

typedef struct {
    h2o_ostream_t super;
    front_loop_t *loop;
} keepalive_ostream_t;

static void on_handed_back(void *data, h2o_socket_t *sock, size_t request_bytes)
{
    (void)data;
    if (sock == NULL)
        return; /* the answer could not be written: h2o closed the socket, and on_conn_close freed ours */
    front_conn_t *c = sock->on_close.data; /* h2o never touches on_close: still ours */
    if (request_bytes > 0)
        h2o_buffer_consume(&sock->input, request_bytes);
    h2o_socket_dont_read(sock, 1);
    next_request(c);
}

static void keepalive_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                           h2o_send_state_t state)
{
    keepalive_ostream_t *os = (keepalive_ostream_t *)self;
    /* every patchbay answer is one final send (h2o_send_inline): written with
     * the headers, after which h2o lets go of the socket */
    if (state == H2O_SEND_STATE_FINAL && req->http1_is_persistent && req->version == 0x101) {
        h2o_http1_upgrade(req, bufs, bufcnt, on_handed_back, os->loop);
        return;
    }
    /* anything else stays h2o's to the end: then the connection must end
     * with it, or h2o would read the next request (and its body) itself */
    req->http1_is_persistent = 0;
    h2o_ostream_send_next(self, req, bufs, bufcnt, state);
}

static void keepalive_setup(h2o_req_prefilter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    keepalive_ostream_t *os = (keepalive_ostream_t *)h2o_add_ostream(req, sizeof(*os), slot);
    os->super.do_send = keepalive_send;
    os->loop = ((keepalive_prefilter_t *)self)->loop;
    h2o_setup_next_prefilter(self, req, &os->super.next);
}

void front_keep_alive(front_loop_t *f, h2o_req_t *req)
{
    keepalive_prefilter_t *p = (keepalive_prefilter_t *)h2o_add_prefilter(req, sizeof(*p));
    p->super.on_setup_ostream = keepalive_setup;
    p->loop = f;
}

/* ---- accepting ---- */

/* Closes the connection idle longest (if idle for at least min_idle_ms),
 * else, with `readers`, the one slowest to send its request; never one
 * waiting for its answer. 1: closed one (its descriptor is free now); 0: none
 * to close. */
static int evict_one(front_loop_t *f, const front_conn_t *except, int readers, uint64_t min_idle_ms, const char *why)
{
    h2o_linklist_t *lists[] = {&f->idle, &f->reading};
    uint64_t now = h2o_now(f->ctx->loop);
    for (size_t i = 0; i < (readers ? 2u : 1u); i++) {
        for (h2o_linklist_t *n = lists[i]->next; n != lists[i]; n = n->next) {
            front_conn_t *c = H2O_STRUCT_FROM_MEMBER(front_conn_t, link, n);
            if (c == except)
                continue;
            if (i == 0 && now - c->active_ms < min_idle_ms)
                break; /* oldest first: the rest are younger still */
            atomic_fetch_add_explicit(&f->conf->metrics->connections_evicted, 1, memory_order_relaxed);
            warn_rate_limited(f, "%s: closing the connections %s", why,
                              i == 0 ? "idle longest" : "slowest to send a request");
            conn_close(c);
            return 1;
        }
    }
    return 0;
}

static void on_accept(h2o_socket_t *listener, const char *err);
static void on_timer(h2o_timeout_entry_t *entry);

static void on_resume_listener(h2o_timeout_entry_t *entry)
{
    front_loop_t *f = H2O_STRUCT_FROM_MEMBER(front_loop_t, resume_listener, entry);
    if (f->listener != NULL)
        h2o_socket_read_start(f->listener, on_accept);
}

/* No descriptor, nothing to close: epoll would report the listener readable
 * again at once (level-triggered), so stop polling it for a moment. */
static void pause_accepting(front_loop_t *f, int err)
{
    atomic_fetch_add_explicit(&f->conf->metrics->accept_paused, 1, memory_order_relaxed);
    warn_rate_limited(f, "cannot accept a connection (%s, open-file limit %ld): pausing for %d ms", strerror(err),
                      f->conf->nofile, FRONT_ACCEPT_PAUSE_MS);
    h2o_socket_read_stop(f->listener);
    if (!h2o_timeout_is_linked(&f->resume_listener))
        h2o_timeout_link(f->ctx->loop, &f->pause_timeout, &f->resume_listener);
}

static void refuse_connection(front_loop_t *f, h2o_socket_t *sock)
{
#define BUSY_BODY "{\"error\":\"patchbay is answering all the requests it can; retry\"}\n"
    _Static_assert(sizeof(BUSY_BODY) - 1 == 65, "Content-Length below");
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: " H2O_TO_STR(FRONT_RETRY_AFTER_S)
                               "\r\nContent-Type: application/json\r\nContent-Length: 65\r\nConnection: close\r\n\r\n" BUSY_BODY;
    metrics_refused(f->conf->metrics, METRICS_REFUSED_CONNECTIONS);
    /* best effort: a new socket's buffer takes this much */
    ssize_t w = write(h2o_socket_get_fd(sock), busy, sizeof(busy) - 1);
    (void)w;
    h2o_socket_close(sock);
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    front_loop_t *f = listener->data;
    if (err != NULL)
        return;
    for (int i = 0; i < FRONT_ACCEPTS_PER_WAKE; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL) {
            int e = errno;
            if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
                /* the newcomer is still in the backlog, unknown: only a
                 * connection that has been idle a while is worth less than it
                 * (one accepted a moment ago may be sending its request right
                 * now; the cap, set below the limit, is where slow senders
                 * are made to give way) */
                if (evict_one(f, NULL, 0, FRONT_ACCEPT_PAUSE_MS, "no file descriptor free"))
                    continue;
                pause_accepting(f, e);
            }
            return;
        }
        front_conn_t *c = calloc(1, sizeof(*c));
        if (c == NULL) {
            h2o_socket_close(sock);
            continue;
        }
        c->loop = f;
        c->sock = sock;
        c->timer.cb = on_timer;
        sock->data = c;
        sock->on_close.cb = on_conn_close;
        sock->on_close.data = c;
        c->state = FRONT_IDLE;
        c->active_ms = h2o_now(f->ctx->loop);
        h2o_linklist_insert(&f->idle, &c->link);
        f->nconns++;
        atomic_fetch_add_explicit(&f->conf->metrics->connections, 1, memory_order_relaxed);
        if (f->nconns > f->conf->cap_per_loop && !evict_one(f, c, 1, 0, "connection limit reached")) {
            refuse_connection(f, sock);
            continue;
        }
        update_pressure(f);
        h2o_socket_dont_read(sock, 1); /* we read(2) ourselves, into buffers we size */
        timer_start(c, &f->idle_timeout);
        h2o_socket_read_start(sock, on_read);
        /* a client usually sends its request with the connection: reading it
         * now saves a loop turn, and a connection with its request in the
         * kernel is not left looking idle to the next accept's eviction */
        read_head(c);
    }
}

/* ---- the loop ---- */

static void on_timer(h2o_timeout_entry_t *entry)
{
    front_conn_t *c = H2O_STRUCT_FROM_MEMBER(front_conn_t, timer, entry);
    switch (c->state) {
    case FRONT_HEAD:
    case FRONT_PAGE_BODY:
    case FRONT_BODY:
        c->keep_alive = 0;
        refuse(c, METRICS_REFUSED_TIMEOUT, 408, "the request did not arrive within server.request_timeout_ms");
        break;
    default:
        conn_close(c);
        break;
    }
}

void front_conf_init(front_conf_t *c, const config_t *cfg, metrics_t *metrics, int nloops)
{
    memset(c, 0, sizeof(*c));
    c->cfg = cfg;
    c->metrics = metrics;
    struct rlimit rl;
    c->nofile = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? (long)rl.rlim_cur : 1L << 20;
    long allowed = c->nofile - FRONT_FD_RESERVE - (long)FRONT_FD_PER_LOOP * nloops;
    if (allowed < FRONT_MIN_CONNECTIONS * nloops)
        allowed = FRONT_MIN_CONNECTIONS * nloops;
    long cap = allowed;
    if (cfg->server.max_connections > 0) {
        cap = cfg->server.max_connections;
        if (cap > allowed) {
            cap = allowed;
            c->clamped = 1;
        }
    }
    c->cap_per_loop = (size_t)(cap / nloops > 0 ? cap / nloops : 1);
    c->budget = (int64_t)cfg->server.inflight_body_bytes;
    c->idle_ms = (uint64_t)cfg->server.request_timeout_ms;
    c->pressure_idle_ms = c->idle_ms < FRONT_PRESSURE_IDLE_MS ? c->idle_ms : FRONT_PRESSURE_IDLE_MS;
    metrics->connections_limit = (int64_t)(c->cap_per_loop * (size_t)nloops);
    metrics->body_bytes_limit = c->budget;
}

void front_loop_init(front_loop_t *f, const front_conf_t *c, h2o_context_t *ctx, h2o_accept_ctx_t *accept_ctx,
                     delivery_loop_t *delivery, int listen_fd)
{
    memset(f, 0, sizeof(*f));
    f->conf = c;
    f->ctx = ctx;
    f->accept_ctx = accept_ctx;
    f->delivery = delivery;
    h2o_linklist_init_anchor(&f->idle);
    h2o_linklist_init_anchor(&f->reading);
    h2o_linklist_init_anchor(&f->busy);
    h2o_timeout_init(ctx->loop, &f->idle_timeout, c->idle_ms);
    h2o_timeout_init(ctx->loop, &f->request_timeout, (uint64_t)c->cfg->server.request_timeout_ms);
    h2o_timeout_init(ctx->loop, &f->linger_timeout, FRONT_LINGER_MS);
    h2o_timeout_init(ctx->loop, &f->pause_timeout, FRONT_ACCEPT_PAUSE_MS);
    f->resume_listener.cb = on_resume_listener;
    f->listener = h2o_evloop_socket_create(ctx->loop, listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    f->listener->data = f;
    h2o_socket_read_start(f->listener, on_accept);
}

void front_loop_stop_accepting(front_loop_t *f)
{
    if (h2o_timeout_is_linked(&f->resume_listener))
        h2o_timeout_unlink(&f->resume_listener);
    if (f->listener != NULL) {
        h2o_socket_read_stop(f->listener);
        h2o_socket_close(f->listener);
        f->listener = NULL;
    }
}

size_t front_loop_close_all(front_loop_t *f, uint64_t wait_ms)
{
    h2o_linklist_t *lists[] = {&f->idle, &f->reading, &f->busy};
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        h2o_linklist_t *n = lists[i]->next;
        while (n != lists[i]) {
            front_conn_t *c = H2O_STRUCT_FROM_MEMBER(front_conn_t, link, n);
            n = n->next; /* closing c unlinks it */
            if (c->state == FRONT_LENT)
                /* h2o's until its answer: the end of the stream makes h2o
                 * close it through its own path, which unlinks its timers */
                shutdown(h2o_socket_get_fd(c->sock), SHUT_RDWR);
            else
                conn_close(c);
        }
    }
    uint64_t until = h2o_now(f->ctx->loop) + wait_ms;
    while (f->nconns > 0 && h2o_now(f->ctx->loop) < until)
        h2o_evloop_run(f->ctx->loop, 10);
    return f->nconns;
}

void front_loop_dispose(front_loop_t *f)
{
    assert(f->nconns == 0);
    front_loop_stop_accepting(f);
    h2o_timeout_dispose(f->ctx->loop, &f->idle_timeout);
    h2o_timeout_dispose(f->ctx->loop, &f->request_timeout);
    h2o_timeout_dispose(f->ctx->loop, &f->linger_timeout);
    h2o_timeout_dispose(f->ctx->loop, &f->pause_timeout);
}

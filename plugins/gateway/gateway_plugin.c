/*
 * gateway_plugin.c -- the gateway plugin: HTTP/JSON API, the event stream
 * and the dashboard, on libevent's evhttp in the instance's own event loop.
 *
 * This file is the glue: configuration, routing, authentication, rate
 * limiting, publishing order commands, answering requests when the matcher's
 * order_events arrive, and fanning market data out to stream clients. The
 * logic it glues lives in files of its own, each tested directly:
 * order_json.c (request bodies), read_model.c (state from the matcher's
 * topics), views.c (response JSON), api_keys.c, rate_limit.c, routes.c,
 * and http_conn.c (the listening socket and the per-connection socket work
 * under evhttp).
 * It never talks to the matcher except through the bus, and every read is
 * answered from the read model.
 *
 * Config ([plugin gateway], load = gateway.so):
 *   listen = 127.0.0.1:8080          address:port, port 0 picks a free one
 *   api_key.<name> = <key>:<account>  or sha256:<64 hex>:<account>
 *   account_name.<account> = <label>  shown on the dashboard's PnL board
 *   timeout_ms = 2000                 how long POST/DELETE wait for the matcher
 *   max_body = 65536                  bytes; larger bodies get 413
 *   rate_limit = 1000, rate_burst = 2000   requests per second per key
 *   idle_timeout_s = 30               idle and slow connections are closed
 *   stream_buffer_limit = 1048576     bytes queued for one stream client
 *   max_streams = 256, max_pending = 65536
 *   heartbeat_ms = 15000, stream_interval_ms = 100, stream_depth = 10
 *   trade_history = 1000, order_history = 100000
 *   max_open_orders = 100000          per account: open orders are never
 *                                     forgotten, so this bounds their memory
 *   public_reads = true               market data readable without a key
 *   pnl_board_unnamed = 5             unnamed accounts listed on the PnL board
 *                                     (the rest are summed as "others")
 *   order_id_space = <0..65535>       default: the host id's low 16 bits
 *   service_alive_ms = 3 x [host] announce_ms   GET /v1/services calls a host
 *   service_dead_ms = 10 x [host] announce_ms   alive, stale or dead by how
 *                                     long it has been silent (gone: it sent
 *                                     a tombstone); announce_ms 0 counts as 2000
 *   max_services = 256                hosts remembered (the longest silent
 *                                     is forgotten first)
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api_keys.h"
#include "arb/instrument.h"
#include "arb/plugin.h"
#include "arb/wire.h"
#include "arb/wire_json.h"
#include "assets.h"
#include "http_conn.h"
#include "order_json.h"
#include "rate_limit.h"
#include "read_model.h"
#include "recover.h"
#include "routes.h"
#include "services.h"
#include "views.h"

#define GW_STATE_VERSION 1u
#define GW_STATE_MAGIC 0x31574754u /* "TGW1" */

/* Topics a stream client may ask for. */
enum {
    ST_TRADES = 1u << 0,
    ST_BOOK = 1u << 1,
    ST_TICKS = 1u << 2,
    ST_MARKET = 1u << 3,
    ST_PNL = 1u << 4,
    ST_ALL = (1u << 5) - 1,
};

typedef struct gateway gateway;

/* A POST or DELETE waiting for the matcher's answer. */
enum { P_NEW = 1, P_CANCEL = 2 };
typedef struct pending {
    struct evhttp_request *req;
    uint64_t order_id;
    uint8_t kind;
    uint8_t ready;               /* on the ready list */
    uint8_t cmd_rejected;        /* the matcher refused this cancel */
    int64_t deadline;            /* monotonic ns */
    int64_t started;             /* monotonic ns, for the latency histogram */
    struct pending *prev, *next; /* deadline order (all share one timeout) */
    struct pending *order_next;  /* others waiting on the same order */
    struct pending *ready_next;
} pending;

/* An order command waiting for the end of this loop turn (see send_batch). */
typedef struct batched_cmd {
    struct evhttp_request *req;
    arb_order_cmd cmd;
    uint8_t async;
} batched_cmd;
#define GW_BATCH_MAX 256

typedef struct stream_client {
    gateway *gw;
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    unsigned topics;
    struct stream_client *prev, *next;
} stream_client;

typedef struct account_name {
    uint64_t account;
    char *name;
} account_name;

struct gateway {
    arb_ctx *ctx;

    /* config */
    const char *listen;
    int64_t timeout_ms, max_body, rate, burst, idle_s, stream_limit, max_streams, max_pending;
    int64_t heartbeat_ms, stream_ms, stream_depth, trade_history, order_history, board_unnamed;
    int64_t max_open, svc_alive_ms, svc_dead_ms, max_services;
    int public_reads;
    uint64_t id_space;
    arb_instrument_table instruments;
    gw_key_table keys;
    account_name *names;
    size_t n_names;

    /* state */
    uint64_t next_seq; /* low 48 bits of the next order id */
    gw_read_model *rm;
    gw_recovery recovery; /* what the rebuild at start took (skipped when delivered) */
    gw_services services; /* from service_registry */
    struct event_base *base;
    struct evhttp *http;
    gw_conns conns;
    char bound_addr[64];
    struct event *flush_ev, *deadline_ev, *heartbeat_ev, *stream_ev;
    gw_u64map pending_by_order; /* order id -> first pending */
    pending *p_head, *p_tail;
    size_t n_pending;
    pending *ready_head;
    batched_cmd *batch; /* commands of this loop turn, sent together */
    size_t n_batch;
    struct event *batch_ev;
    stream_client *streams;
    size_t n_streams;
    uint64_t *book_sent; /* book version last streamed, per instrument */
    uint8_t tick_rec[ARB_TICK_LEN];
    int tick_dirty, pnl_dirty;
    int64_t pnl_last_ns;
    struct evbuffer *scratch;

    /* metrics */
    arb_counter *m_2xx, *m_4xx, *m_5xx, *m_orders, *m_stream_cut, *m_timeouts;
    arb_histogram *m_order_latency;
    arb_gauge *m_streams, *m_pending;
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Real time, whatever the simulated clock says: announcements carry it. */
static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static struct timeval ms_tv(int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    return tv;
}

/* ---- replies ---- */

static void count_status(gateway *gw, int status)
{
    arb_counter_add(status >= 500 ? gw->m_5xx : status >= 400 ? gw->m_4xx : gw->m_2xx, 1);
}

/* Sends whatever the handler wrote into the request's output buffer. */
static void reply(gateway *gw, struct evhttp_request *req, int status, const char *content_type)
{
    count_status(gw, status);
    gw_conn_send(&gw->conns, req, status, content_type);
}

static void reply_json(gateway *gw, struct evhttp_request *req, int status)
{
    reply(gw, req, status, "application/json");
}

__attribute__((format(printf, 5, 6))) static void reply_error(gateway *gw,
                                                              struct evhttp_request *req,
                                                              int status, const char *code,
                                                              const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    evbuffer_drain(out, evbuffer_get_length(out));
    gw_render_error(out, code, msg);
    reply_json(gw, req, status);
}

/* ---- pending requests ---- */

static void pending_unlink(gateway *gw, pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        gw->p_head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        gw->p_tail = p->prev;
    pending *head = gw_map_get(&gw->pending_by_order, p->order_id);
    if (head == p) {
        if (p->order_next)
            gw_map_put(&gw->pending_by_order, p->order_id, p->order_next);
        else
            gw_map_del(&gw->pending_by_order, p->order_id);
    } else {
        for (pending *q = head; q; q = q->order_next)
            if (q->order_next == p) {
                q->order_next = p->order_next;
                break;
            }
    }
    gw->n_pending--;
    arb_gauge_set(gw->m_pending, (int64_t)gw->n_pending);
}

static void arm_deadline(gateway *gw)
{
    if (!gw->p_head || evtimer_pending(gw->deadline_ev, NULL))
        return;
    int64_t wait = gw->p_head->deadline - mono_ns();
    if (wait < 0)
        wait = 0;
    struct timeval tv = {(time_t)(wait / 1000000000LL), (suseconds_t)(wait % 1000000000LL / 1000)};
    evtimer_add(gw->deadline_ev, &tv);
}

static int pending_add(gateway *gw, struct evhttp_request *req, uint64_t order_id, int kind)
{
    pending *p = calloc(1, sizeof *p);
    if (!p)
        return -1;
    p->req = req;
    p->order_id = order_id;
    p->kind = (uint8_t)kind;
    p->started = mono_ns();
    p->deadline = p->started + gw->timeout_ms * 1000000LL;
    p->order_next = gw_map_get(&gw->pending_by_order, order_id);
    if (gw_map_put(&gw->pending_by_order, order_id, p)) {
        free(p);
        return -1;
    }
    p->prev = gw->p_tail;
    if (gw->p_tail)
        gw->p_tail->next = p;
    else
        gw->p_head = p;
    gw->p_tail = p;
    gw->n_pending++;
    arb_gauge_set(gw->m_pending, (int64_t)gw->n_pending);
    arm_deadline(gw);
    return 0;
}

/* The answer to a POST or DELETE, from the order's state now. */
static void answer(gateway *gw, pending *p)
{
    struct evhttp_request *req = p->req;
    gw_order *o = gw_rm_order(gw->rm, p->order_id);
    arb_hist_observe(gw->m_order_latency, (uint64_t)(mono_ns() - p->started));
    if (!o) {
        reply_error(gw, req, 404, "order_not_found", "order %llu is no longer known",
                    (unsigned long long)p->order_id);
        return;
    }
    if (p->kind == P_CANCEL &&
        (p->cmd_rejected || (gw_status_terminal(o->status) && o->status != GW_ST_CANCELLED))) {
        reply_error(gw, req, 409, "order_not_open", "order %llu cannot be cancelled: %s",
                    (unsigned long long)o->order_id,
                    p->cmd_rejected ? arb_reason_name(o->reason) : gw_status_name(o->status));
        return;
    }
    gw_render_order(evhttp_request_get_output_buffer(req), gw->rm, o);
    reply_json(gw, req, 200);
}

/* Marks the requests waiting on an order as ready; they are answered from the
 * flush event, which runs after the bus has delivered everything it had, so
 * an order that trades against several resting orders is answered with all
 * of its fills rather than the first. */
static void order_changed(gateway *gw, gw_order *o, int effect)
{
    for (pending *p = gw_map_get(&gw->pending_by_order, o->order_id); p; p = p->order_next) {
        int done;
        if (p->kind == P_NEW)
            done = o->status != GW_ST_PENDING;
        else
            done = effect == GW_EFF_CMD_REJECTED || gw_status_terminal(o->status);
        if (effect == GW_EFF_CMD_REJECTED && p->kind == P_CANCEL)
            p->cmd_rejected = 1;
        if (done && !p->ready) {
            p->ready = 1;
            p->ready_next = gw->ready_head;
            gw->ready_head = p;
        }
    }
    if (gw->ready_head)
        event_active(gw->flush_ev, EV_TIMEOUT, 0);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    gateway *gw = arg;
    while (gw->ready_head) {
        pending *p = gw->ready_head;
        gw->ready_head = p->ready_next;
        pending_unlink(gw, p);
        answer(gw, p);
        free(p);
    }
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    gateway *gw = arg;
    int64_t now = mono_ns();
    while (gw->p_head && gw->p_head->deadline <= now) {
        pending *p = gw->p_head;
        if (p->ready) {
            /* Already due an answer this turn: give it the answer. */
            on_flush(-1, 0, gw);
            continue;
        }
        pending_unlink(gw, p);
        arb_counter_add(gw->m_timeouts, 1);
        struct evbuffer *out = evhttp_request_get_output_buffer(p->req);
        evbuffer_add_printf(out,
                            "{\"error\":{\"code\":\"matcher_timeout\",\"message\":\"the matcher "
                            "did not answer within %lld ms; the order may still be processed\","
                            "\"order_id\":\"%llu\"}}",
                            (long long)gw->timeout_ms, (unsigned long long)p->order_id);
        reply_json(gw, p->req, 504);
        free(p);
    }
    arm_deadline(gw);
}

/* ---- authentication ---- */

/* Returns the caller's key, or NULL after answering 401 or 429. */
static gw_api_key *authenticate(gateway *gw, struct evhttp_request *req)
{
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    const char *token;
    size_t len;
    gw_api_key *key = NULL;
    if (gw_bearer_token(h, &token, &len) == 0)
        key = gw_keys_find(&gw->keys, token, len);
    if (!key) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Bearer realm=\"arb\"");
        reply_error(gw, req, 401, "unauthorized",
                    h ? "the API key is not valid"
                      : "an Authorization: Bearer <key> header "
                        "is required");
        return NULL;
    }
    int64_t retry_ms;
    if (!gw_bucket_take(&key->bucket, mono_ns(), &retry_ms)) {
        char secs[24];
        snprintf(secs, sizeof secs, "%lld", (long long)((retry_ms + 999) / 1000));
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", secs);
        reply_error(gw, req, 429, "rate_limited",
                    "more than %lld requests per second for this key; retry in %lld ms",
                    (long long)key->bucket.rate, (long long)retry_ms);
        return NULL;
    }
    return key;
}

/* Market data routes: public unless public_reads = false. */
static int allow_read(gateway *gw, struct evhttp_request *req)
{
    return gw->public_reads || authenticate(gw, req) != NULL;
}

/* ---- query strings ---- */

typedef struct query_args {
    struct evkeyvalq kv;
    int parsed;
} query_args;

static int query_parse(query_args *q, struct evhttp_request *req)
{
    TAILQ_INIT(&q->kv);
    q->parsed = 1;
    const char *s = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    return s ? evhttp_parse_query_str(s, &q->kv) : 0;
}

static const char *query_get(query_args *q, const char *key)
{
    return evhttp_find_header(&q->kv, key);
}

static void query_free(query_args *q)
{
    if (q->parsed)
        evhttp_clear_headers(&q->kv);
}

/* A non-negative integer parameter in [min, max]; def when absent. */
static int query_int(query_args *q, const char *key, long def, long min, long max, long *out)
{
    const char *s = query_get(q, key);
    if (!s) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int is_async(struct evhttp_request *req)
{
    const char *s = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    if (!s)
        return 0;
    query_args q;
    int async = 0;
    if (query_parse(&q, req) == 0) {
        const char *v = query_get(&q, "async");
        async = v && (!strcmp(v, "1") || !strcmp(v, "true"));
    }
    query_free(&q);
    return async;
}

/* ---- order commands ---- */

static int publish_cmd(gateway *gw, const arb_order_cmd *cmd)
{
    uint8_t buf[ARB_ORDER_CMD_LEN];
    uint32_t n = arb_order_cmd_encode(cmd, buf, sizeof buf);
    return arb_publish(gw->ctx, ARB_TOPIC_ORDER_COMMANDS,
                       arb_instrument_key(cmd->venue, cmd->symbol), buf, n);
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* A command the bus refused: the request waiting for it is answered 503
 * (unless an event for its order already made it due an answer, which then
 * stands), and a new order is forgotten. */
static void batch_refused(gateway *gw, batched_cmd *b, int rc)
{
    if (!b->async)
        for (pending *p = gw_map_get(&gw->pending_by_order, b->cmd.order_id); p; p = p->order_next)
            if (p->req == b->req) {
                if (p->ready)
                    return;
                pending_unlink(gw, p);
                free(p);
                break;
            }
    if (b->cmd.action == ARB_CMD_NEW)
        gw_rm_order_drop(gw->rm, b->cmd.order_id);
    evhttp_add_header(evhttp_request_get_output_headers(b->req), "Retry-After", "1");
    reply_error(gw, b->req, 503, "matcher_unavailable",
                rc == ARB_EFULL ? "the matcher's queue is full; retry shortly"
                                : "the command could not be sent to the matcher");
}

/* Publishes the turn's commands and answers the asynchronous ones (202). */
static void send_batch(gateway *gw)
{
    size_t n = gw->n_batch;
    gw->n_batch = 0;
    for (size_t i = 0; i < n; i++) {
        batched_cmd *b = &gw->batch[i];
        int rc = publish_cmd(gw, &b->cmd);
        if (rc != ARB_OK) {
            batch_refused(gw, b, rc);
            continue;
        }
        if (b->cmd.action == ARB_CMD_NEW)
            arb_counter_add(gw->m_orders, 1);
        if (b->async) {
            gw_order *o = gw_rm_order(gw->rm, b->cmd.order_id);
            if (o)
                gw_render_order(evhttp_request_get_output_buffer(b->req), gw->rm, o);
            reply_json(gw, b->req, 202);
        }
    }
}

static void send_batch_cb(void *user) { send_batch(user); }

/* Order commands are published together at the end of the loop turn that
 * read their requests, as one arb_batch: the matcher's loop is woken once
 * for the batch (arb/plugin.h), where a publish from this event of the
 * gateway's own would wake it once per order. Under load that is one wake
 * (a system call and, on a busy machine, a context switch) per batch. */
static void publish_batch(gateway *gw)
{
    if (gw->n_batch)
        arb_batch(gw->ctx, send_batch_cb, gw);
}

static void on_batch(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    publish_batch(arg);
}

static void batch_push(gateway *gw, struct evhttp_request *req, const arb_order_cmd *cmd, int async)
{
    if (gw->n_batch == GW_BATCH_MAX)
        publish_batch(gw);
    gw->batch[gw->n_batch++] = (batched_cmd){req, *cmd, (uint8_t)async};
    if (gw->n_batch == 1)
        event_active(gw->batch_ev, EV_TIMEOUT, 0);
}

static void handle_order_new(gateway *gw, struct evhttp_request *req)
{
    gw_api_key *key = authenticate(gw, req);
    if (!key)
        return;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if ((int64_t)len > gw->max_body) {
        reply_error(gw, req, 413, "body_too_large", "the body is %zu bytes; the limit is %lld", len,
                    (long long)gw->max_body);
        return;
    }
    gw_order_request rq;
    gw_error err;
    const char *body = len ? (const char *)evbuffer_pullup(in, (ev_ssize_t)len) : "";
    if (gw_order_parse(body, len, &gw->instruments, &rq, &err)) {
        reply_error(gw, req, err.status, err.code, "%s", err.message);
        return;
    }
    /* Parsed (rq holds copies): the body's buffer goes back now rather
     * than when the matcher answers. Dozens of orders wait at a time, and
     * their 1 KiB buffers kept until then overflow malloc's per-thread
     * cache, sending every later one down its slow path. */
    evbuffer_drain(in, len);
    int async = is_async(req);
    if (!async && gw->n_pending >= (size_t)gw->max_pending) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
        reply_error(gw, req, 503, "too_many_pending",
                    "%zu orders are waiting for the matcher; retry shortly", gw->n_pending);
        return;
    }
    /* Open orders stay in memory until the matcher finishes them, so their
     * number per account is what bounds the read model if the matcher
     * stops answering while a client keeps sending. */
    const gw_account *acct = gw_rm_account(gw->rm, key->account, 0);
    if (acct && acct->open_count >= (size_t)gw->max_open) {
        reply_error(gw, req, 429, "too_many_open_orders",
                    "the account has %zu open orders; the limit is %lld", acct->open_count,
                    (long long)gw->max_open);
        return;
    }
    uint64_t order_id = gw->id_space << 48 | (gw->next_seq++ & 0xffffffffffffull);
    gw_order *o = gw_rm_order_add(gw->rm, order_id, key->account, &rq, arb_now(gw->ctx));
    if (!o) {
        reply_error(gw, req, 503, "out_of_memory", "the gateway cannot take more orders now");
        return;
    }
    arb_order_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.action = ARB_CMD_NEW;
    cmd.side = rq.side;
    cmd.type = rq.type;
    cmd.tif = rq.tif;
    cmd.flags = rq.flags;
    arb_fixstr_set(cmd.venue, ARB_VENUE_LEN, rq.instrument->venue);
    arb_fixstr_set(cmd.symbol, ARB_SYMBOL_LEN, rq.instrument->symbol);
    cmd.order_id = order_id;
    cmd.account = key->account;
    cmd.price = rq.price;
    cmd.qty = rq.qty;
    cmd.ts = o->created_ts;
    cmd.client_ref = rq.client_order_id[0] ? fnv1a(rq.client_order_id) : 0;
    /* Wait before publishing: a matcher on this loop answers inside the
     * batch's publish. */
    if (!async && pending_add(gw, req, order_id, P_NEW)) {
        gw_rm_order_drop(gw->rm, order_id);
        reply_error(gw, req, 503, "out_of_memory", "the gateway cannot take more orders now");
        return;
    }
    batch_push(gw, req, &cmd, async);
}

/* The caller's order named by the path, or NULL after answering 400/403/404. */
static gw_order *owned_order(gateway *gw, struct evhttp_request *req, const gw_api_key *key,
                             const gw_path_params *pp)
{
    uint64_t id;
    if (gw_parse_order_id(pp->value[0], pp->len[0], &id)) {
        reply_error(gw, req, 400, "invalid_order_id", "an order id is a positive decimal number");
        return NULL;
    }
    gw_order *o = gw_rm_order(gw->rm, id);
    if (!o) {
        reply_error(gw, req, 404, "order_not_found", "no order %llu", (unsigned long long)id);
        return NULL;
    }
    if (o->account != key->account) {
        reply_error(gw, req, 403, "forbidden", "order %llu belongs to another account",
                    (unsigned long long)id);
        return NULL;
    }
    return o;
}

static void handle_order_get(gateway *gw, struct evhttp_request *req, const gw_path_params *pp)
{
    gw_api_key *key = authenticate(gw, req);
    gw_order *o = key ? owned_order(gw, req, key, pp) : NULL;
    if (!o)
        return;
    gw_render_order(evhttp_request_get_output_buffer(req), gw->rm, o);
    reply_json(gw, req, 200);
}

static void handle_order_cancel(gateway *gw, struct evhttp_request *req, const gw_path_params *pp)
{
    gw_api_key *key = authenticate(gw, req);
    gw_order *o = key ? owned_order(gw, req, key, pp) : NULL;
    if (!o)
        return;
    if (gw_status_terminal(o->status)) {
        reply_error(gw, req, 409, "order_not_open", "order %llu is already %s",
                    (unsigned long long)o->order_id, gw_status_name(o->status));
        return;
    }
    int async = is_async(req);
    if (!async && gw->n_pending >= (size_t)gw->max_pending) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
        reply_error(gw, req, 503, "too_many_pending", "too many requests wait for the matcher");
        return;
    }
    const arb_instrument *in = &gw->instruments.items[o->instrument];
    arb_order_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.action = ARB_CMD_CANCEL;
    cmd.side = o->side;
    cmd.type = o->type;
    cmd.tif = o->tif;
    arb_fixstr_set(cmd.venue, ARB_VENUE_LEN, in->venue);
    arb_fixstr_set(cmd.symbol, ARB_SYMBOL_LEN, in->symbol);
    cmd.order_id = o->order_id;
    cmd.account = o->account;
    cmd.ts = arb_now(gw->ctx);
    /* Wait before publishing: a matcher on this loop answers inside the
     * batch's publish. */
    if (!async && pending_add(gw, req, o->order_id, P_CANCEL)) {
        reply_error(gw, req, 503, "out_of_memory", "the gateway cannot take more requests now");
        return;
    }
    batch_push(gw, req, &cmd, async);
}

static void handle_order_list(gateway *gw, struct evhttp_request *req)
{
    gw_api_key *key = authenticate(gw, req);
    if (!key)
        return;
    query_args q;
    long limit = 0;
    if (query_parse(&q, req)) {
        reply_error(gw, req, 400, "invalid_query", "the query string is malformed");
    } else if (query_get(&q, "status") && strcmp(query_get(&q, "status"), "open")) {
        reply_error(gw, req, 400, "invalid_status",
                    "status must be 'open' (finished orders are read one by one by id)");
    } else if (query_int(&q, "limit", 0, 0, 100000, &limit)) {
        reply_error(gw, req, 400, "invalid_limit", "limit must be an integer from 0 to 100000");
    } else {
        gw_render_open_orders(evhttp_request_get_output_buffer(req), gw->rm,
                              gw_rm_account(gw->rm, key->account, 0), (size_t)limit);
        reply_json(gw, req, 200);
    }
    query_free(&q);
}

/* ---- market data reads ---- */

/* Percent-decodes a path segment into out (NUL-terminated). */
static int decode_segment(const char *s, size_t len, char *out, size_t cap)
{
    char raw[GW_PARAM_MAX + 1];
    if (len > GW_PARAM_MAX)
        return -1;
    memcpy(raw, s, len);
    raw[len] = 0;
    size_t n = 0;
    char *dec = evhttp_uridecode(raw, 0, &n);
    if (!dec)
        return -1;
    int ok = n < cap && strlen(dec) == n;
    if (ok)
        memcpy(out, dec, n + 1);
    free(dec);
    return ok ? 0 : -1;
}

static void handle_book(gateway *gw, struct evhttp_request *req, const gw_path_params *pp)
{
    if (!allow_read(gw, req))
        return;
    char venue[GW_PARAM_MAX + 1], symbol[GW_PARAM_MAX + 1];
    int idx = -1;
    if (!decode_segment(pp->value[0], pp->len[0], venue, sizeof venue) &&
        !decode_segment(pp->value[1], pp->len[1], symbol, sizeof symbol))
        idx = gw_rm_instrument_by_name(gw->rm, venue, symbol);
    if (idx < 0) {
        reply_error(gw, req, 404, "unknown_instrument", "no such instrument");
        return;
    }
    query_args q;
    long depth;
    if (query_parse(&q, req) || query_int(&q, "depth", 10, 1, ARB_MD_MAX_LEVELS, &depth)) {
        reply_error(gw, req, 400, "invalid_depth", "depth must be an integer from 1 to %u",
                    ARB_MD_MAX_LEVELS);
    } else {
        gw_render_book(evhttp_request_get_output_buffer(req), gw->rm, idx, (unsigned)depth);
        reply_json(gw, req, 200);
    }
    query_free(&q);
}

static void handle_trades(gateway *gw, struct evhttp_request *req)
{
    if (!allow_read(gw, req))
        return;
    query_args q;
    long limit;
    if (query_parse(&q, req)) {
        reply_error(gw, req, 400, "invalid_query", "the query string is malformed");
        query_free(&q);
        return;
    }
    const char *venue = query_get(&q, "venue"), *symbol = query_get(&q, "symbol");
    if (venue && !*venue)
        venue = NULL;
    if (symbol && !*symbol)
        symbol = NULL;
    if (query_int(&q, "limit", 100, 1, (long)gw->trade_history, &limit)) {
        reply_error(gw, req, 400, "invalid_limit", "limit must be an integer from 1 to %lld",
                    (long long)gw->trade_history);
        query_free(&q);
        return;
    }
    int idx = -1, matched = 0;
    uint8_t *mask = calloc(gw->instruments.count + 1, 1);
    for (size_t i = 0; mask && i < gw->instruments.count; i++) {
        const arb_instrument *in = &gw->instruments.items[i];
        if ((!venue || !strcmp(venue, in->venue)) && (!symbol || !strcmp(symbol, in->symbol))) {
            mask[i] = 1;
            idx = (int)i;
            matched++;
        }
    }
    if (!mask) {
        reply_error(gw, req, 503, "out_of_memory", "try again");
    } else if (matched == 0 && (venue || symbol)) {
        reply_error(gw, req, 404, "unknown_instrument", "no instrument matches venue and symbol");
    } else {
        gw_render_trades(evhttp_request_get_output_buffer(req), gw->rm, matched == 1 ? idx : -1,
                         matched == 1 ? NULL : mask, (unsigned)limit);
        reply_json(gw, req, 200);
    }
    free(mask);
    query_free(&q);
}

static const char *account_label(void *user, uint64_t account)
{
    gateway *gw = user;
    for (size_t i = 0; i < gw->n_names; i++)
        if (gw->names[i].account == account)
            return gw->names[i].name;
    for (size_t i = 0; i < gw->keys.count; i++)
        if (gw->keys.items[i].account == account)
            return gw->keys.items[i].name;
    return NULL;
}

/* ---- the event stream ---- */

static void stream_free(gateway *gw, stream_client *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        gw->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    gw->n_streams--;
    arb_gauge_set(gw->m_streams, (int64_t)gw->n_streams);
    free(s);
}

/* The client went away or timed out: evhttp has detached the request from
 * the dying connection, and ending the reply is what frees it. */
static void on_stream_closed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    stream_client *s = arg;
    gateway *gw = s->gw;
    if (evhttp_request_get_connection(s->req) == NULL)
        evhttp_send_reply_end(s->req);
    stream_free(gw, s);
}

/* Drops a client whose unsent output passed the limit: frees its connection
 * (and the buffered bytes with it) at once. */
static void stream_cut(gateway *gw, stream_client *s)
{
    arb_counter_add(gw->m_stream_cut, 1);
    arb_warn(gw->ctx, "stream client cut off: more than %lld bytes unread",
             (long long)gw->stream_limit);
    struct evhttp_connection *evcon = s->evcon;
    evhttp_connection_set_closecb(evcon, NULL, NULL);
    stream_free(gw, s);
    evhttp_connection_free(evcon);
}

/* Queues text for one client; returns -1 if the client was cut off. */
static int stream_send(gateway *gw, stream_client *s, const void *data, size_t len)
{
    evbuffer_add(gw->scratch, data, len);
    evhttp_send_reply_chunk(s->req, gw->scratch);
    evbuffer_drain(gw->scratch, evbuffer_get_length(gw->scratch));
    struct bufferevent *bev = evhttp_connection_get_bufferevent(s->evcon);
    if ((int64_t)evbuffer_get_length(bufferevent_get_output(bev)) > gw->stream_limit) {
        stream_cut(gw, s);
        return -1;
    }
    return 0;
}

/* Sends one rendered event to every client that asked for the topic. */
static void broadcast(gateway *gw, unsigned topic, struct evbuffer *event)
{
    size_t len = evbuffer_get_length(event);
    const void *data = evbuffer_pullup(event, (ev_ssize_t)len);
    for (stream_client *s = gw->streams, *next; s; s = next) {
        next = s->next;
        if (s->topics & topic)
            stream_send(gw, s, data, len);
    }
}

static int have_subscribers(gateway *gw, unsigned topic)
{
    for (stream_client *s = gw->streams; s; s = s->next)
        if (s->topics & topic)
            return 1;
    return 0;
}

static void event_book(gateway *gw, struct evbuffer *ev, int idx)
{
    evbuffer_add(ev, "event: book\ndata: ", 18);
    gw_render_book(ev, gw->rm, idx, (unsigned)gw->stream_depth);
    evbuffer_add(ev, "\n\n", 2);
}

static void event_pnl(gateway *gw, struct evbuffer *ev)
{
    evbuffer_add(ev, "event: pnl\ndata: ", 17);
    gw_render_accounts(ev, gw->rm, account_label, gw, (size_t)gw->board_unnamed);
    evbuffer_add(ev, "\n\n", 2);
}

/* Records are rendered by arb/wire_json.h; the buffer fits any tick or
 * market event with room to spare. */
static void event_record(struct evbuffer *ev, const char *name, const void *rec, size_t len,
                         const arb_instrument_table *t)
{
    char text[1024];
    int n = arb_wire_json(rec, len, t, text, sizeof text);
    if (n < 0 || (size_t)n >= sizeof text)
        return;
    evbuffer_add_printf(ev, "event: %s\ndata: ", name);
    evbuffer_add(ev, text, (size_t)n);
    evbuffer_add(ev, "\n\n", 2);
}

/* Coalesced topics: each changed book, the last tick and the PnL board are
 * sent at most once per stream interval (PnL once a second), so a fast
 * market costs the stream a bounded rate whatever the matcher publishes. */
static void on_stream_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    gateway *gw = arg;
    if (!gw->streams)
        return;
    struct evbuffer *ev = evbuffer_new();
    if (!ev)
        return;
    if (have_subscribers(gw, ST_BOOK))
        for (size_t i = 0; i < gw->instruments.count; i++) {
            if (gw->rm->books[i].version == gw->book_sent[i])
                continue;
            gw->book_sent[i] = gw->rm->books[i].version;
            evbuffer_drain(ev, evbuffer_get_length(ev));
            event_book(gw, ev, (int)i);
            broadcast(gw, ST_BOOK, ev);
        }
    if (gw->tick_dirty) {
        gw->tick_dirty = 0;
        evbuffer_drain(ev, evbuffer_get_length(ev));
        event_record(ev, "tick", gw->tick_rec, sizeof gw->tick_rec, &gw->instruments);
        broadcast(gw, ST_TICKS, ev);
    }
    int64_t now = mono_ns();
    if (gw->pnl_dirty && now - gw->pnl_last_ns >= 1000000000LL) {
        gw->pnl_dirty = 0;
        gw->pnl_last_ns = now;
        evbuffer_drain(ev, evbuffer_get_length(ev));
        event_pnl(gw, ev);
        broadcast(gw, ST_PNL, ev);
    }
    evbuffer_free(ev);
}

static void on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    gateway *gw = arg;
    char line[64];
    int n = snprintf(line, sizeof line, ": heartbeat %lld\n\n", (long long)arb_now(gw->ctx));
    for (stream_client *s = gw->streams, *next; s; s = next) {
        next = s->next;
        stream_send(gw, s, line, (size_t)n);
    }
}

static int parse_topics(const char *s, unsigned *out)
{
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {{"trades", ST_TRADES},
                 {"book", ST_BOOK},
                 {"ticks", ST_TICKS},
                 {"market", ST_MARKET},
                 {"pnl", ST_PNL}};
    unsigned topics = 0;
    while (*s) {
        size_t n = strcspn(s, ",");
        size_t i = 0;
        while (i < sizeof names / sizeof *names &&
               (strlen(names[i].name) != n || strncmp(names[i].name, s, n)))
            i++;
        if (i == sizeof names / sizeof *names)
            return -1;
        topics |= names[i].bit;
        s += n;
        if (*s == ',')
            s++;
    }
    if (!topics)
        return -1;
    *out = topics;
    return 0;
}

static void handle_stream(gateway *gw, struct evhttp_request *req)
{
    if (!allow_read(gw, req))
        return;
    query_args q;
    unsigned topics = ST_ALL;
    int bad = query_parse(&q, req) != 0;
    const char *t = bad ? NULL : query_get(&q, "topics");
    if (t && parse_topics(t, &topics))
        bad = 1;
    query_free(&q);
    if (bad) {
        reply_error(gw, req, 400, "invalid_topics",
                    "topics is a comma-separated list of trades, book, ticks, market, pnl");
        return;
    }
    if (gw->n_streams >= (size_t)gw->max_streams) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "5");
        reply_error(gw, req, 503, "too_many_streams", "the gateway serves %lld streams at most",
                    (long long)gw->max_streams);
        return;
    }
    stream_client *s = calloc(1, sizeof *s);
    if (!s) {
        reply_error(gw, req, 503, "out_of_memory", "try again");
        return;
    }
    s->gw = gw;
    s->req = req;
    s->evcon = evhttp_request_get_connection(req);
    s->topics = topics;
    s->next = gw->streams;
    if (gw->streams)
        gw->streams->prev = s;
    gw->streams = s;
    gw->n_streams++;
    arb_gauge_set(gw->m_streams, (int64_t)gw->n_streams);
    count_status(gw, 200);

    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "text/event-stream");
    evhttp_add_header(h, "Cache-Control", "no-cache");
    evhttp_add_header(h, "X-Accel-Buffering", "no");
    evhttp_send_reply_start(req, 200, "OK");
    gw_conn_drop(&gw->conns, s->evcon);
    evhttp_connection_set_closecb(s->evcon, on_stream_closed, s);
    /* A stream only writes: no read timeout (the client sends nothing), but
     * a write that makes no progress for idle_timeout_s ends it. */
    struct timeval wtv = {(time_t)gw->idle_s, 0};
    bufferevent_set_timeouts(evhttp_connection_get_bufferevent(s->evcon), NULL, &wtv);

    /* The current state first, so a page renders before the next change. */
    struct evbuffer *ev = evbuffer_new();
    if (!ev)
        return;
    evbuffer_add_printf(ev, "retry: 2000\n\n");
    if (topics & ST_BOOK)
        for (size_t i = 0; i < gw->instruments.count; i++)
            event_book(gw, ev, (int)i);
    if (topics & ST_PNL)
        event_pnl(gw, ev);
    if (topics & ST_TRADES) {
        /* The recent tape, oldest first. */
        for (size_t i = 0; i < gw->instruments.count; i++) {
            const gw_trade_ring *r = &gw->rm->trades[i];
            size_t n = r->count < 20 ? r->count : 20;
            for (size_t k = n; k-- > 0;) {
                evbuffer_add(ev, "event: trade\ndata: ", 19);
                gw_render_trade(ev, gw->rm, (int)i, &r->items[(r->head + r->cap - 1 - k) % r->cap]);
                evbuffer_add(ev, "\n\n", 2);
            }
        }
    }
    size_t len = evbuffer_get_length(ev);
    stream_send(gw, s, evbuffer_pullup(ev, (ev_ssize_t)len), len);
    evbuffer_free(ev);
}

/* ---- static files ---- */

static void handle_asset(gateway *gw, struct evhttp_request *req, gw_asset a, const char *type)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    if (!strncmp(type, "text/html", 9))
        evhttp_add_header(h, "Content-Security-Policy",
                          "default-src 'self'; script-src 'self' 'unsafe-inline'; "
                          "style-src 'self' 'unsafe-inline'; connect-src 'self'; "
                          "img-src 'self' data:");
    evbuffer_add_reference(evhttp_request_get_output_buffer(req), a.data, a.len, NULL, NULL);
    reply(gw, req, 200, type);
}

/* ---- dispatch ---- */

static const char *method_name(enum evhttp_cmd_type c)
{
    switch (c) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_PATCH: return "PATCH";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    }
    return "?";
}

static void on_request(struct evhttp_request *req, void *arg)
{
    gateway *gw = arg;
    gw_conn_wait(&gw->conns, evhttp_request_get_connection(req));
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path || !*path)
        path = "/";
    gw_path_params pp;
    char allow[64];
    int route = gw_route_match(method_name(evhttp_request_get_command(req)), path, &pp, allow,
                               sizeof allow);
    switch (route) {
    case GW_ROUTE_NOT_FOUND:
        reply_error(gw, req, 404, "route_not_found", "no route for this path");
        return;
    case GW_METHOD_NOT_ALLOWED:
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
        reply_error(gw, req, 405, "method_not_allowed", "this path accepts %s", allow);
        return;
    case GW_R_DASHBOARD:
        handle_asset(gw, req, gw_asset_dashboard(), "text/html; charset=utf-8");
        return;
    case GW_R_OPENAPI: handle_asset(gw, req, gw_asset_openapi(), "application/json"); return;
    case GW_R_ORDER_NEW: handle_order_new(gw, req); return;
    case GW_R_ORDER_LIST: handle_order_list(gw, req); return;
    case GW_R_ORDER_GET: handle_order_get(gw, req, &pp); return;
    case GW_R_ORDER_CANCEL: handle_order_cancel(gw, req, &pp); return;
    case GW_R_INSTRUMENTS:
        if (!allow_read(gw, req))
            return;
        gw_render_instruments(evhttp_request_get_output_buffer(req), &gw->instruments);
        reply_json(gw, req, 200);
        return;
    case GW_R_BOOK: handle_book(gw, req, &pp); return;
    case GW_R_TRADES: handle_trades(gw, req); return;
    case GW_R_ACCOUNTS:
        if (!allow_read(gw, req))
            return;
        gw_render_accounts(evhttp_request_get_output_buffer(req), gw->rm, account_label, gw,
                           (size_t)gw->board_unnamed);
        reply_json(gw, req, 200);
        return;
    case GW_R_STREAM: handle_stream(gw, req); return;
    case GW_R_SERVICES:
        if (!allow_read(gw, req))
            return;
        gw_render_services(evhttp_request_get_output_buffer(req), &gw->services, wall_ns(),
                           gw->svc_alive_ms * 1000000LL, gw->svc_dead_ms * 1000000LL);
        reply_json(gw, req, 200);
        return;
    }
    reply_error(gw, req, 404, "route_not_found", "no route for this path");
}

/* ---- bus subscriptions ---- */

static void on_order_event(void *user, const arb_msg *msg)
{
    gateway *gw = user;
    arb_order_event ev;
    if (arb_order_event_decode(msg->data, msg->len, &ev))
        return;
    if (arb_replay_seen(&gw->recovery.events, msg))
        return;
    gw_order *o;
    int effect = gw_rm_apply_event(gw->rm, &ev, &o);
    if (effect != GW_EFF_NONE)
        order_changed(gw, o, effect);
}

static void on_trade(void *user, const arb_msg *msg)
{
    gateway *gw = user;
    arb_trade t;
    if (arb_replay_seen(&gw->recovery.trades, msg) || arb_trade_decode(msg->data, msg->len, &t))
        return;
    int idx = gw_rm_apply_trade(gw->rm, &t);
    if (idx < 0)
        return;
    gw->pnl_dirty = 1;
    if (!have_subscribers(gw, ST_TRADES))
        return;
    const gw_trade_ring *r = &gw->rm->trades[idx];
    struct evbuffer *out = evbuffer_new();
    if (!out)
        return;
    evbuffer_add(out, "event: trade\ndata: ", 19);
    gw_render_trade(out, gw->rm, idx, &r->items[(r->head + r->cap - 1) % r->cap]);
    evbuffer_add(out, "\n\n", 2);
    broadcast(gw, ST_TRADES, out);
    evbuffer_free(out);
}

static void on_market_data(void *user, const arb_msg *msg)
{
    gateway *gw = user;
    arb_market_data md;
    if (arb_market_data_decode(msg->data, msg->len, &md))
        return;
    gw_rm_apply_market_data(gw->rm, &md);
}

static void on_tick(void *user, const arb_msg *msg)
{
    gateway *gw = user;
    arb_tick t;
    if (msg->len != ARB_TICK_LEN || arb_tick_decode(msg->data, msg->len, &t))
        return;
    memcpy(gw->tick_rec, msg->data, ARB_TICK_LEN);
    gw->tick_dirty = 1;
}

static void on_market_event(void *user, const arb_msg *msg)
{
    gateway *gw = user;
    if (!have_subscribers(gw, ST_MARKET))
        return;
    struct evbuffer *ev = evbuffer_new();
    if (!ev)
        return;
    event_record(ev, "market", msg->data, msg->len, &gw->instruments);
    if (evbuffer_get_length(ev))
        broadcast(gw, ST_MARKET, ev);
    evbuffer_free(ev);
}

static void on_service(void *user, const arb_msg *msg)
{
    gateway *gw = user;
    arb_service rec;
    if (arb_service_decode(msg->data, msg->len, &rec))
        return;
    if (gw_services_apply(&gw->services, &rec, wall_ns()) == GW_SVC_NOMEM)
        arb_warn(gw->ctx, "out of memory: a service_registry record was not taken");
}

/* ---- lifecycle ---- */

typedef struct cfg_walk {
    gateway *gw;
    int rc;
} cfg_walk;

static int cfg_entry(void *user, const char *key, const char *value)
{
    cfg_walk *w = user;
    gateway *gw = w->gw;
    if (!strncmp(key, "api_key.", 8)) {
        char err[160];
        int rc = gw_keys_add(&gw->keys, key + 8, value, err, sizeof err);
        if (rc) {
            w->rc = arb_cfg_reject(gw->ctx, key, "%s", err);
            return 1;
        }
        return 0;
    }
    if (!strncmp(key, "account_name.", 13)) {
        char *end;
        errno = 0;
        unsigned long long acct = strtoull(key + 13, &end, 10);
        if (!key[13] || *end || errno || acct == 0 || !*value || strlen(value) > 64) {
            w->rc = arb_cfg_reject(gw->ctx, key,
                                   "account_name.<account> needs a positive account number "
                                   "and a label of 1 to 64 characters");
            return 1;
        }
        account_name *grown = realloc(gw->names, (gw->n_names + 1) * sizeof *grown);
        char *copy = strdup(value);
        if (!grown || !copy) {
            free(copy);
            if (grown)
                gw->names = grown;
            w->rc = ARB_ENOMEM;
            return 1;
        }
        gw->names = grown;
        gw->names[gw->n_names++] = (account_name){acct, copy};
    }
    return 0;
}

static void gw_destroy(void *self);

static int gw_create(arb_ctx *ctx, void **self)
{
    gateway *gw = calloc(1, sizeof *gw);
    if (!gw)
        return ARB_ENOMEM;
    gw->ctx = ctx;
    *self = gw;
    int64_t id_space, announce_ms;
    int rc;
    if ((rc = arb_cfg_str(ctx, "listen", "127.0.0.1:8080", &gw->listen)) ||
        (rc = arb_cfg_int(ctx, "timeout_ms", 2000, 1, 600000, &gw->timeout_ms)) ||
        (rc = arb_cfg_int(ctx, "max_body", 65536, 256, 64 << 20, &gw->max_body)) ||
        (rc = arb_cfg_int(ctx, "rate_limit", 1000, 0, 100000000, &gw->rate)) ||
        (rc = arb_cfg_int(ctx, "rate_burst", gw->rate ? 2 * gw->rate : 1, 1, 100000000,
                          &gw->burst)) ||
        (rc = arb_cfg_int(ctx, "idle_timeout_s", 30, 1, 86400, &gw->idle_s)) ||
        (rc = arb_cfg_int(ctx, "stream_buffer_limit", 1 << 20, 4096, 1LL << 30,
                          &gw->stream_limit)) ||
        (rc = arb_cfg_int(ctx, "max_streams", 256, 0, 100000, &gw->max_streams)) ||
        (rc = arb_cfg_int(ctx, "max_pending", 65536, 1, 10000000, &gw->max_pending)) ||
        (rc = arb_cfg_int(ctx, "heartbeat_ms", 15000, 10, 3600000, &gw->heartbeat_ms)) ||
        (rc = arb_cfg_int(ctx, "stream_interval_ms", 100, 1, 60000, &gw->stream_ms)) ||
        (rc = arb_cfg_int(ctx, "stream_depth", 10, 1, 1000, &gw->stream_depth)) ||
        (rc = arb_cfg_int(ctx, "trade_history", 1000, 1, 1000000, &gw->trade_history)) ||
        (rc = arb_cfg_int(ctx, "order_history", 100000, 1, 100000000, &gw->order_history)) ||
        (rc = arb_cfg_bool(ctx, "public_reads", 1, &gw->public_reads)) ||
        (rc = arb_cfg_int(ctx, "pnl_board_unnamed", 5, 0, 10000, &gw->board_unnamed)) ||
        (rc = arb_cfg_int(ctx, "max_open_orders", 100000, 1, 100000000, &gw->max_open)) ||
        (rc = arb_cfg_int(ctx, "order_id_space", (int64_t)(arb_host_id(ctx) & 0xffff), 0, 0xffff,
                          &id_space)) ||
        (rc = arb_cfg_int_in(ctx, "host", "announce_ms", 2000, 0, 3600000, &announce_ms)))
        goto fail;
    if (announce_ms == 0)
        announce_ms = 2000;
    if ((rc = arb_cfg_int(ctx, "service_alive_ms", 3 * announce_ms, 1, 86400000,
                          &gw->svc_alive_ms)) ||
        (rc = arb_cfg_int(ctx, "service_dead_ms",
                          10 * announce_ms > gw->svc_alive_ms ? 10 * announce_ms : gw->svc_alive_ms,
                          gw->svc_alive_ms, 864000000, &gw->svc_dead_ms)) ||
        (rc = arb_cfg_int(ctx, "max_services", 256, 1, 100000, &gw->max_services)))
        goto fail;
    gw->id_space = (uint64_t)id_space;
    struct sockaddr_storage ss;
    int sslen = sizeof ss;
    if (evutil_parse_sockaddr_port(gw->listen, (struct sockaddr *)&ss, &sslen)) {
        rc = arb_cfg_reject(ctx, "listen", "'%s' is not address:port", gw->listen);
        goto fail;
    }
    cfg_walk w = {gw, ARB_OK};
    if ((rc = arb_cfg_each(ctx, NULL, cfg_entry, &w)) || (rc = w.rc))
        goto fail;
    if ((rc = arb_instruments_load(ctx, &gw->instruments)))
        goto fail;
    if (gw->instruments.count == 0)
        arb_warn(ctx, "no [instrument ...] sections: every order will be rejected");
    if (gw->keys.count == 0)
        arb_warn(ctx, "no api_key.<name> entries: order endpoints will answer 401");
    int64_t now = mono_ns();
    for (size_t i = 0; i < gw->keys.count; i++)
        gw_bucket_init(&gw->keys.items[i].bucket, gw->rate, gw->burst, now);
    /* Ids must not repeat across restarts of this gateway: start from the
     * wall clock in microseconds (48 bits last nine years), which stays
     * ahead of any earlier run that issued fewer than a million orders a
     * second on average. */
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    gw->next_seq =
        ((uint64_t)wall.tv_sec * 1000000u + (uint64_t)wall.tv_nsec / 1000u) & 0xffffffffffffull;
    return ARB_OK;
fail:
    gw_destroy(gw);
    *self = NULL;
    return rc ? rc : ARB_EINVAL;
}

static int admin_listen(void *user, const char *method, const char *path, const char *query,
                        struct evbuffer *out)
{
    (void)method, (void)path, (void)query;
    gateway *gw = user;
    evbuffer_add_printf(out, "{\"listen\":\"%s\",\"streams\":%zu,\"pending\":%zu}\n",
                        gw->bound_addr, gw->n_streams, gw->n_pending);
    return 200;
}

static void request_snapshots(gateway *gw)
{
    for (size_t i = 0; i < gw->instruments.count; i++) {
        arb_order_cmd cmd;
        memset(&cmd, 0, sizeof cmd);
        cmd.action = ARB_CMD_SNAPSHOT;
        arb_fixstr_set(cmd.venue, ARB_VENUE_LEN, gw->instruments.items[i].venue);
        arb_fixstr_set(cmd.symbol, ARB_SYMBOL_LEN, gw->instruments.items[i].symbol);
        cmd.ts = arb_now(gw->ctx);
        if (publish_cmd(gw, &cmd) != ARB_OK)
            arb_warn(gw->ctx, "could not ask for a snapshot of %s:%s; the book fills from updates",
                     gw->instruments.items[i].venue, gw->instruments.items[i].symbol);
    }
}

static void gw_stop(void *self);

static int gw_start(void *self)
{
    gateway *gw = self;
    arb_ctx *ctx = gw->ctx;
    gw->base = arb_event_base(ctx);
    gw_conns_init(&gw->conns, gw->base);
    gw->rm = gw_rm_new(&gw->instruments, (size_t)gw->trade_history, (size_t)gw->order_history);
    gw->book_sent = calloc(gw->instruments.count + 1, sizeof *gw->book_sent);
    gw->scratch = evbuffer_new();
    gw_services_init(&gw->services, (size_t)gw->max_services, gw->svc_dead_ms * 1000000LL);
    gw->m_2xx = arb_counter_new(ctx, "gateway_responses_total", "class=\"2xx\"", "HTTP responses");
    gw->m_4xx = arb_counter_new(ctx, "gateway_responses_total", "class=\"4xx\"", "HTTP responses");
    gw->m_5xx = arb_counter_new(ctx, "gateway_responses_total", "class=\"5xx\"", "HTTP responses");
    gw->m_orders = arb_counter_new(ctx, "gateway_orders_total", NULL, "orders sent to the matcher");
    gw->m_timeouts =
        arb_counter_new(ctx, "gateway_matcher_timeouts_total", NULL, "requests answered 504");
    gw->m_stream_cut = arb_counter_new(ctx, "gateway_stream_cutoffs_total", NULL,
                                       "stream clients dropped for reading too slowly");
    gw->m_order_latency = arb_histogram_new(ctx, "gateway_matcher_answer_ns", NULL,
                                            "time from publish to the matcher's answer");
    gw->m_streams = arb_gauge_new(ctx, "gateway_streams", NULL, "open stream clients");
    gw->m_pending = arb_gauge_new(ctx, "gateway_pending", NULL, "requests waiting for the matcher");
    if (!gw->base || !gw->rm || !gw->book_sent || !gw->scratch || !gw->m_2xx || !gw->m_4xx ||
        !gw->m_5xx || !gw->m_orders || !gw->m_timeouts || !gw->m_stream_cut ||
        !gw->m_order_latency || !gw->m_streams || !gw->m_pending)
        goto nomem;

    gw->flush_ev = event_new(gw->base, -1, 0, on_flush, gw);
    gw->batch_ev = event_new(gw->base, -1, 0, on_batch, gw);
    gw->batch = calloc(GW_BATCH_MAX, sizeof *gw->batch);
    gw->deadline_ev = evtimer_new(gw->base, on_deadline, gw);
    gw->heartbeat_ev = event_new(gw->base, -1, EV_PERSIST, on_heartbeat, gw);
    gw->stream_ev = event_new(gw->base, -1, EV_PERSIST, on_stream_timer, gw);
    gw->http = evhttp_new(gw->base);
    if (!gw->flush_ev || !gw->batch_ev || !gw->batch || !gw->deadline_ev || !gw->heartbeat_ev ||
        !gw->stream_ev || !gw->http)
        goto nomem;
    struct timeval hb = ms_tv(gw->heartbeat_ms), st = ms_tv(gw->stream_ms);
    event_add(gw->heartbeat_ev, &hb);
    event_add(gw->stream_ev, &st);

    /* Every method reaches on_request, which answers unknown ones with a
     * JSON 405 instead of evhttp's HTML 501. */
    evhttp_set_allowed_methods(gw->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                             EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                             EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                             EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    /* evhttp's own cap sits above max_body so that most oversized bodies
     * reach the handler and get a JSON 413; past the cap evhttp refuses
     * the body itself (also 413, without reading it if Content-Length says
     * so), which bounds the memory one connection can make us hold. */
    evhttp_set_max_body_size(gw->http, (ev_ssize_t)(gw->max_body * 4));
    evhttp_set_max_headers_size(gw->http, 16384);
    /* Every connection's read and write timeouts have this one duration,
     * and evhttp re-arms them around every request: as one of libevent's
     * common timeouts they go on a queue in O(1) instead of in and out of
     * the loop's timer heap each time (same expiry, same effect). */
    struct timeval idle = {(time_t)gw->idle_s, 0};
    const struct timeval *common = event_base_init_common_timeout(gw->base, &idle);
    evhttp_set_timeout_tv(gw->http, common ? common : &idle);
    evhttp_set_default_content_type(gw->http, "application/json");
    evhttp_set_gencb(gw->http, on_request, gw);

    evutil_socket_t fd = gw_http_listen(gw->listen, gw->bound_addr, sizeof gw->bound_addr);
    if (fd < 0 || !evhttp_accept_socket_with_handle(gw->http, fd)) {
        arb_error(ctx, "cannot listen on %s: %s", gw->listen, strerror(errno));
        if (fd >= 0)
            close(fd);
        gw_stop(gw);
        return ARB_ERROR;
    }
    arb_info(ctx, "gateway listening on http://%s/ (%zu instruments, %zu api keys)", gw->bound_addr,
             gw->instruments.count, gw->keys.count);
    arb_admin_route(ctx, "listen", admin_listen, gw);

    /* Orders placed here before a restart, positions and trades: from what
     * the transport stored, before the first live record. */
    gw_recover(ctx, gw->rm, gw->id_space, &gw->recovery);
    if (arb_subscribe(ctx, ARB_TOPIC_ORDER_EVENTS, on_order_event, gw) < 0 ||
        arb_subscribe(ctx, ARB_TOPIC_TRADE_EXECUTED, on_trade, gw) < 0 ||
        arb_subscribe(ctx, ARB_TOPIC_MARKET_DATA, on_market_data, gw) < 0 ||
        arb_subscribe(ctx, ARB_TOPIC_SYSTEM_TICKS, on_tick, gw) < 0 ||
        arb_subscribe(ctx, ARB_TOPIC_MARKET_EVENTS, on_market_event, gw) < 0 ||
        arb_subscribe(ctx, ARB_TOPIC_SERVICE_REGISTRY, on_service, gw) < 0) {
        arb_error(ctx, "cannot subscribe to the matcher's topics");
        gw_stop(gw);
        return ARB_ERROR;
    }
    request_snapshots(gw);
    return ARB_OK;
nomem:
    gw_stop(gw);
    return ARB_ENOMEM;
}

static void gw_stop(void *self)
{
    gateway *gw = self;
    /* Streams and waiting requests end before evhttp_free frees their
     * connections: no pointer into evhttp may outlive this call. */
    while (gw->streams) {
        stream_client *s = gw->streams;
        struct evhttp_connection *evcon = s->evcon;
        evhttp_connection_set_closecb(evcon, NULL, NULL);
        stream_free(gw, s);
        evhttp_connection_free(evcon);
    }
    /* Unsent commands: the waiting ones are answered with the pending below. */
    for (size_t i = 0; i < gw->n_batch; i++)
        if (gw->batch[i].async)
            reply_error(gw, gw->batch[i].req, 503, "shutting_down", "the gateway is stopping");
    gw->n_batch = 0;
    free(gw->batch);
    gw->batch = NULL;
    while (gw->p_head) {
        pending *p = gw->p_head;
        pending_unlink(gw, p);
        reply_error(gw, p->req, 503, "shutting_down", "the gateway is stopping");
        free(p);
    }
    gw->ready_head = NULL;
    gw_map_free(&gw->pending_by_order);
    if (gw->http)
        evhttp_free(gw->http);
    gw->http = NULL;
    gw_conns_free(&gw->conns);
    struct event **evs[] = {&gw->flush_ev, &gw->batch_ev, &gw->deadline_ev, &gw->heartbeat_ev,
                            &gw->stream_ev};
    for (size_t i = 0; i < sizeof evs / sizeof *evs; i++)
        if (*evs[i]) {
            event_free(*evs[i]);
            *evs[i] = NULL;
        }
    if (gw->scratch)
        evbuffer_free(gw->scratch);
    gw->scratch = NULL;
    free(gw->book_sent);
    gw->book_sent = NULL;
    gw_rm_free(gw->rm);
    gw->rm = NULL;
    gw_recovery_free(&gw->recovery);
    gw_services_free(&gw->services);
}

static void gw_destroy(void *self)
{
    gateway *gw = self;
    if (!gw)
        return;
    gw_keys_free(&gw->keys);
    arb_instruments_free(&gw->instruments);
    for (size_t i = 0; i < gw->n_names; i++)
        free(gw->names[i].name);
    free(gw->names);
    free(gw);
}

/* Hot reload keeps the order id sequence, so a new instance never reuses an
 * id the old one sent. Read models are rebuilt: books from the snapshot
 * asked for at start, the rest from the topics as they flow. */
static int gw_save(void *self, void **bytes, size_t *len)
{
    gateway *gw = self;
    uint8_t *b = malloc(16);
    if (!b)
        return ARB_ENOMEM;
    arb_put_u32(b, GW_STATE_MAGIC);
    arb_put_u32(b + 4, 0);
    arb_put_u64(b + 8, gw->next_seq);
    *bytes = b;
    *len = 16;
    return ARB_OK;
}

static int gw_restore(void *self, uint32_t state_version, const void *bytes, size_t len)
{
    gateway *gw = self;
    const uint8_t *b = bytes;
    if (state_version != GW_STATE_VERSION || len != 16 || arb_get_u32(b) != GW_STATE_MAGIC)
        return ARB_EREFUSED;
    uint64_t seq = arb_get_u64(b + 8);
    if (seq > gw->next_seq)
        gw->next_seq = seq;
    return ARB_OK;
}

static const char *const gw_publishes[] = {"order_commands", NULL};
static const char *const gw_subscribes[] = {
    "order_events",  "trade_executed",   "market_data", "system_ticks",
    "market_events", "service_registry", NULL};

static const arb_plugin gateway_plugin = {
    .abi_version = ARB_ABI_VERSION,
    .size = sizeof(arb_plugin),
    .name = "gateway",
    .version = "1.0.0",
    .state_version = GW_STATE_VERSION,
    .publishes = gw_publishes,
    .subscribes = gw_subscribes,
    .create = gw_create,
    .start = gw_start,
    .stop = gw_stop,
    .destroy = gw_destroy,
    .save = gw_save,
    .restore = gw_restore,
};

ARB_PLUGIN_DEFINE(gateway_plugin)

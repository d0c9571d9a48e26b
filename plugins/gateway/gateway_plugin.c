/*
 * gateway_plugin.c -- the gateway plugin: HTTP/JSON API, the event stream
 * and the dashboard, on libevent's evhttp in the instance's own event loop.
 *
 * This file is the glue: configuration, routing, authentication, rate
 * limiting, publishing order commands, and answering requests when the
 * matcher's order_events arrive. The logic it glues lives in files of its
 * own, each tested directly: order_json.c (request bodies), read_model.c
 * (state from the matcher's topics), views.c (response JSON), api_keys.c,
 * rate_limit.c, routes.c, http_framing.c (the request's framing), stream.c
 * (the event stream), and http_conn.c (the listening socket, the
 * per-connection socket work under evhttp and the connection guard).
 * gateway_internal.h holds the state they share.
 * It never talks to the matcher except through the bus, and every read is
 * answered from the read model.
 *
 * Config ([plugin gateway], load = gateway.so):
 *   listen = 127.0.0.1:8080          address:port, port 0 picks a free one
 *   api_key.<name> = <key>:<account>  or sha256:<64 hex>:<account>
 *   account_name.<account> = <label>  shown on the dashboard's PnL board
 *   public_accounts = 10 11 20        accounts whose positions and PnL anyone
 *                                     may read (GET /v1/accounts, the stream's
 *                                     pnl board); every other account's data
 *                                     only with that account's key
 *   timeout_ms = 2000                 how long POST/DELETE wait for the matcher
 *   max_body = 65536                  bytes; larger bodies get 413
 *   rate_limit = 1000, rate_burst = 2000   requests per second per key
 *   idle_timeout_s = 30               idle and slow connections are closed
 *   request_timeout_ms = 5000         a request's head and body must arrive within
 *                                     this of the connection's opening (first
 *                                     request) or of its first byte (408, closed)
 *   max_connections = min(10000, RLIMIT_NOFILE / 2)   open HTTP connections
 *   max_connections_per_addr = 256    from one client address (503, closed)
 *   anon_rate_limit = 50, anon_rate_burst = 200   per client address: requests
 *                                     without a key and with a wrong one
 *   stream_buffer_limit = 262144      bytes queued for one stream client
 *   stream_stall_ms = 10000           a stream whose queue has not emptied for
 *                                     this long is cut off
 *   max_streams = 256, max_pending = 65536
 *   max_streams_per_addr = 8, max_streams_per_key = 8
 *   heartbeat_ms = 15000, stream_interval_ms = 100, stream_depth = 10
 *   trade_history = 1000, order_history = 100000
 *   client_order_id_window_s = 86400  a POST repeating a client_order_id of the
 *                                     same account within this window returns
 *                                     the first order (0: never)
 *   max_open_orders = 100000          per account: open orders are never
 *                                     forgotten, so this bounds their memory
 *   public_reads = true               market data readable without a key
 *   public_agents = true              agents of this config ([plugin] sections with an
 *                                     `account`) named and public on the PnL board
 *   runs_dir = var/runs               serve the run reports there under /runs/
 *                                     (arbctl report --html); default "": off
 *   pnl_board_unnamed = 5             unnamed accounts listed on the PnL board
 *                                     (the rest are summed as "others")
 *   order_id_space = <0..65535>       default: the host id's low 16 bits
 *   service_alive_ms = 3 x [host] announce_ms   GET /v1/services calls a host
 *   service_dead_ms = 10 x [host] announce_ms   alive, stale or dead by how
 *                                     long it has been silent (gone: it sent
 *                                     a tombstone); announce_ms 0 counts as 2000
 *   max_services = 256                hosts remembered (the longest silent
 *                                     is forgotten first)
 *   snapshot_topic = gateway_snapshots   where snapshots of the read models go
 *                                     (recover.h), if the transport stores it;
 *                                     "": none (every start replays it all)
 *   snapshot_records = 2000           a snapshot once this many order events
 *                                     and trades were applied since the last,
 *   snapshot_interval_ms = 1000       checked this often (also the least time
 *                                     between two); POST /plugins/<instance>/
 *                                     snapshot on the admin endpoint takes one
 *                                     now, GET says where they stand
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api_keys.h"
#include "arb/instrument.h"
#include "arb/plugin.h"
#include "arb/wire.h"
#include "assets.h"
#include "http_conn.h"
#include "http_framing.h"
#include "order_json.h"
#include "rate_limit.h"
#include "read_model.h"
#include "recover.h"
#include "routes.h"
#include "services.h"
#include "views.h"
#include "gateway_internal.h"

#define GW_STATE_VERSION 1u
#define GW_STATE_MAGIC 0x31574754u /* "TGW1" */
/* Request line and header fields, bytes (evhttp's max_headers_size too). */
#define GW_MAX_HEAD 16384

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

void gw_count_status(gateway *gw, int status)
{
    arb_counter_add(status >= 500 ? gw->m_5xx : status >= 400 ? gw->m_4xx : gw->m_2xx, 1);
}

/* Sends whatever the handler wrote into the request's output buffer. A HEAD
 * request is answered as its GET would be, with the body's length and no
 * body (evhttp adds no Content-Length to a HEAD answer itself). */
void gw_reply(gateway *gw, struct evhttp_request *req, int status, const char *content_type)
{
    gw_count_status(gw, status);
    if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
        struct evbuffer *out = evhttp_request_get_output_buffer(req);
        char len[24];
        snprintf(len, sizeof len, "%zu", evbuffer_get_length(out));
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Length", len);
        evbuffer_drain(out, evbuffer_get_length(out));
    }
    gw_conn_send(&gw->conns, req, status, content_type);
}

void gw_reply_json(gateway *gw, struct evhttp_request *req, int status)
{
    gw_reply(gw, req, status, "application/json");
}

void gw_reply_error(gateway *gw, struct evhttp_request *req, int status, const char *code,
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
    gw_reply_json(gw, req, status);
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
    int64_t wait = gw->p_head->deadline - gw_mono_ns();
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
    p->started = gw_mono_ns();
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
    arb_hist_observe(gw->m_order_latency, (uint64_t)(gw_mono_ns() - p->started));
    if (!o) {
        gw_reply_error(gw, req, 404, "order_not_found", "order %llu is no longer known",
                       (unsigned long long)p->order_id);
        return;
    }
    if (p->kind == P_CANCEL &&
        (p->cmd_rejected || (gw_status_terminal(o->status) && o->status != GW_ST_CANCELLED))) {
        gw_reply_error(gw, req, 409, "order_not_open", "order %llu cannot be cancelled: %s",
                       (unsigned long long)o->order_id,
                       p->cmd_rejected ? arb_reason_name(o->reason) : gw_status_name(o->status));
        return;
    }
    gw_render_order(evhttp_request_get_output_buffer(req), gw->rm, o);
    gw_reply_json(gw, req, 200);
}

/* Marks the requests waiting on an order as ready; they are answered from the
 * flush event, which runs after the bus has delivered everything it had, so
 * an order that trades against several resting orders is answered with all
 * of its fills rather than the first. */
/* An order's state changed by an event (`last`: the event was the last one
 * the matcher produced for the command, ARB_EVF_LAST): an order waiting for
 * its answer gets it once its state is final for that command, so the answer
 * carries every fill the command made however the transport split the
 * events over deliveries. A terminal state is final whatever the flag. */
static void order_changed(gateway *gw, gw_order *o, int effect, int last)
{
    for (pending *p = gw_map_get(&gw->pending_by_order, o->order_id); p; p = p->order_next) {
        int done;
        if (p->kind == P_NEW)
            done = o->status != GW_ST_PENDING && (last || gw_status_terminal(o->status));
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

/* 504 for a command that went to the matcher and has no answer yet: it
 * may still take effect, and GET /v1/orders/{id} will give its fate. */
static void reply_unconfirmed(gateway *gw, pending *p, const char *code, const char *why)
{
    struct evbuffer *out = evhttp_request_get_output_buffer(p->req);
    evbuffer_add_printf(out,
                        "{\"error\":{\"code\":\"%s\",\"message\":\"%s; the %s may still be "
                        "processed: GET /v1/orders/%llu gives its fate\",\"order_id\":\"%llu\"}}",
                        code, why, p->kind == P_CANCEL ? "cancel" : "order",
                        (unsigned long long)p->order_id, (unsigned long long)p->order_id);
    gw_reply_json(gw, p->req, 504);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    gateway *gw = arg;
    int64_t now = gw_mono_ns();
    while (gw->p_head && gw->p_head->deadline <= now) {
        pending *p = gw->p_head;
        if (p->ready) {
            /* Already due an answer this turn: give it the answer. */
            on_flush(-1, 0, gw);
            continue;
        }
        pending_unlink(gw, p);
        arb_counter_add(gw->m_timeouts, 1);
        char why[96];
        snprintf(why, sizeof why, "the matcher did not answer within %lld ms",
                 (long long)gw->timeout_ms);
        reply_unconfirmed(gw, p, "matcher_timeout", why);
        free(p);
    }
    arm_deadline(gw);
}

/* ---- authentication ---- */

/* Requests without a key, and with a wrong one, share one token bucket per
 * client address (anon_rate_limit): they cost the gateway as much as any
 * other, and nothing else bounds them. Returns 1 if the request may go on,
 * 0 after answering 429. At most 65536 addresses are remembered; past that
 * every bucket starts afresh (full), which only ever errs towards letting a
 * request through. */
static int anon_allowed(gateway *gw, struct evhttp_request *req)
{
    if (!gw->anon_rate)
        return 1;
    uint64_t addr = gw_conn_addr(&gw->conns, evhttp_request_get_connection(req));
    if (!addr)
        return 1;
    int64_t now = gw_mono_ns();
    gw_token_bucket *b = gw_map_get(&gw->anon_buckets, addr);
    if (!b) {
        if (gw->anon_buckets.count >= 65536) {
            for (size_t i = 0; i < gw->anon_buckets.cap; i++)
                if (gw->anon_buckets.slots[i].key)
                    free(gw->anon_buckets.slots[i].val);
            gw_map_free(&gw->anon_buckets);
        }
        if (!(b = malloc(sizeof *b)))
            return 1;
        gw_bucket_init(b, gw->anon_rate, gw->anon_burst, now);
        if (gw_map_put(&gw->anon_buckets, addr, b)) {
            free(b);
            return 1;
        }
    }
    int64_t retry_ms;
    if (gw_bucket_take(b, now, &retry_ms))
        return 1;
    arb_counter_add(gw->m_anon_limited, 1);
    char secs[24];
    snprintf(secs, sizeof secs, "%lld", (long long)((retry_ms + 999) / 1000));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", secs);
    gw_reply_error(gw, req, 429, "rate_limited",
                   "more than %lld requests per second without a valid key from this address",
                   (long long)gw->anon_rate);
    return 0;
}

/* Returns the caller's key, or NULL after answering 401 or 429. */
static gw_api_key *authenticate(gateway *gw, struct evhttp_request *req)
{
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    const char *token;
    size_t len;
    gw_api_key *key = NULL;
    if (gw_bearer_token(h, &token, &len) == 0)
        key = gw_keys_find(&gw->keys, token, len);
    /* A request without a key was counted on the way in (on_request). */
    if (!key && h && !anon_allowed(gw, req))
        return NULL;
    if (!key) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Bearer realm=\"arb\"");
        gw_reply_error(gw, req, 401, "unauthorized",
                       h ? "the API key is not valid"
                         : "an Authorization: Bearer <key> header "
                           "is required");
        return NULL;
    }
    int64_t retry_ms;
    if (!gw_bucket_take(&key->bucket, gw_mono_ns(), &retry_ms)) {
        char secs[24];
        snprintf(secs, sizeof secs, "%lld", (long long)((retry_ms + 999) / 1000));
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", secs);
        gw_reply_error(gw, req, 429, "rate_limited",
                       "more than %lld requests per second for this key; retry in %lld ms",
                       (long long)key->bucket.rate, (long long)retry_ms);
        return NULL;
    }
    return key;
}

/* Market data routes: public unless public_reads = false. */
int gw_allow_read(gateway *gw, struct evhttp_request *req)
{
    return gw->public_reads || authenticate(gw, req) != NULL;
}

/* ---- query strings ---- */

int gw_query_parse(gw_query_args *q, struct evhttp_request *req)
{
    TAILQ_INIT(&q->kv);
    q->parsed = 1;
    const char *s = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    return s ? evhttp_parse_query_str(s, &q->kv) : 0;
}

const char *gw_query_get(gw_query_args *q, const char *key)
{
    return evhttp_find_header(&q->kv, key);
}

void gw_query_free(gw_query_args *q)
{
    if (q->parsed)
        evhttp_clear_headers(&q->kv);
}

/* A non-negative integer parameter in [min, max]; def when absent. */
static int query_int(gw_query_args *q, const char *key, long def, long min, long max, long *out)
{
    const char *s = gw_query_get(q, key);
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
    gw_query_args q;
    int async = 0;
    if (gw_query_parse(&q, req) == 0) {
        const char *v = gw_query_get(&q, "async");
        async = v && (!strcmp(v, "1") || !strcmp(v, "true"));
    }
    gw_query_free(&q);
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
    const char *why = rc == ARB_EFULL ? "the matcher's queue is full; retry shortly"
                                      : "the command could not be sent to the matcher";
    if (b->cmd.action == ARB_CMD_NEW) {
        /* Retries of this order (same client_order_id) that wait for it get
         * the same answer, and a later retry makes a new order. */
        for (pending *p = gw_map_get(&gw->pending_by_order, b->cmd.order_id), *next; p; p = next) {
            next = p->order_next;
            if (p->ready)
                continue;
            pending_unlink(gw, p);
            evhttp_add_header(evhttp_request_get_output_headers(p->req), "Retry-After", "1");
            gw_reply_error(gw, p->req, 503, "matcher_unavailable", "%s", why);
            free(p);
        }
        gw_rm_order_drop(gw->rm, b->cmd.order_id);
    }
    evhttp_add_header(evhttp_request_get_output_headers(b->req), "Retry-After", "1");
    gw_reply_error(gw, b->req, 503, "matcher_unavailable", "%s", why);
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
            gw_reply_json(gw, b->req, 202);
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

/* A POST that repeats an order's client_order_id (a client retrying after a
 * timeout or a lost connection) gets that order's answer and creates
 * nothing: the order as it stands, or, while the matcher has not yet
 * answered it, the same wait for that answer. The same id with other terms
 * is a client error, not a retry. */
static void repeat_order(gateway *gw, struct evhttp_request *req, gw_order *o,
                         const gw_order_request *rq, int async)
{
    if (o->instrument != (uint32_t)(rq->instrument - gw->instruments.items) ||
        o->side != rq->side || o->type != rq->type || o->tif != rq->tif || o->flags != rq->flags ||
        o->price != rq->price || o->qty != rq->qty) {
        gw_reply_error(gw, req, 409, "client_order_id_reused",
                       "client_order_id '%s' was used for order %llu with other terms",
                       o->client_order_id, (unsigned long long)o->order_id);
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Idempotent-Replay", "true");
    if (o->status == GW_ST_PENDING && !async) {
        if (gw->n_pending >= (size_t)gw->max_pending || pending_add(gw, req, o->order_id, P_NEW)) {
            evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
            gw_reply_error(gw, req, 503, "too_many_pending",
                           "%zu orders are waiting for the matcher; retry shortly", gw->n_pending);
        }
        return;
    }
    gw_render_order(evhttp_request_get_output_buffer(req), gw->rm, o);
    gw_reply_json(gw, req, o->status == GW_ST_PENDING ? 202 : 200);
}

static void handle_order_new(gateway *gw, struct evhttp_request *req)
{
    gw_api_key *key = authenticate(gw, req);
    if (!key)
        return;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if ((int64_t)len > gw->max_body) {
        gw_reply_error(gw, req, 413, "body_too_large", "the body is %zu bytes; the limit is %lld",
                       len, (long long)gw->max_body);
        return;
    }
    gw_order_request rq;
    gw_error err;
    const char *body = len ? (const char *)evbuffer_pullup(in, (ev_ssize_t)len) : "";
    if (gw_order_parse(body, len, &gw->instruments, &rq, &err)) {
        gw_reply_error(gw, req, err.status, err.code, "%s", err.message);
        return;
    }
    /* Parsed (rq holds copies): the body's buffer goes back now rather
     * than when the matcher answers. Dozens of orders wait at a time, and
     * their 1 KiB buffers kept until then overflow malloc's per-thread
     * cache, sending every later one down its slow path. */
    evbuffer_drain(in, len);
    int async = is_async(req);
    if (gw->client_window_s && rq.client_order_id[0]) {
        gw_order *first = gw_rm_order_by_client(gw->rm, key->account, rq.client_order_id,
                                                gw_mono_ns() - gw->client_window_s * 1000000000LL);
        if (first) {
            repeat_order(gw, req, first, &rq, async);
            return;
        }
    }
    if (!async && gw->n_pending >= (size_t)gw->max_pending) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
        gw_reply_error(gw, req, 503, "too_many_pending",
                       "%zu orders are waiting for the matcher; retry shortly", gw->n_pending);
        return;
    }
    /* Open orders stay in memory until the matcher finishes them, so their
     * number per account is what bounds the read model if the matcher
     * stops answering while a client keeps sending. */
    const gw_account *acct = gw_rm_account(gw->rm, key->account, 0);
    if (acct && acct->open_count >= (size_t)gw->max_open) {
        gw_reply_error(gw, req, 429, "too_many_open_orders",
                       "the account has %zu open orders; the limit is %lld", acct->open_count,
                       (long long)gw->max_open);
        return;
    }
    uint64_t order_id = gw->id_space << 48 | (gw->next_seq++ & 0xffffffffffffull);
    gw_order *o = gw_rm_order_add(gw->rm, order_id, key->account, &rq, arb_now(gw->ctx));
    if (!o) {
        gw_reply_error(gw, req, 503, "out_of_memory", "the gateway cannot take more orders now");
        return;
    }
    o->placed_ns = gw_mono_ns();
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
        gw_reply_error(gw, req, 503, "out_of_memory", "the gateway cannot take more orders now");
        return;
    }
    batch_push(gw, req, &cmd, async);
}

/* The caller's order named by the path, or NULL after answering 400/404. */
static gw_order *owned_order(gateway *gw, struct evhttp_request *req, const gw_api_key *key,
                             const gw_path_params *pp)
{
    uint64_t id;
    if (gw_parse_order_id(pp->value[0], pp->len[0], &id)) {
        gw_reply_error(gw, req, 400, "invalid_order_id",
                       "an order id is a positive decimal number");
        return NULL;
    }
    /* Another account's order is answered exactly as an unknown one: a
     * different answer would confirm that a guessed id exists. */
    gw_order *o = gw_rm_order(gw->rm, id);
    if (!o || o->account != key->account) {
        gw_reply_error(gw, req, 404, "order_not_found", "no order %llu", (unsigned long long)id);
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
    gw_reply_json(gw, req, 200);
}

static void handle_order_cancel(gateway *gw, struct evhttp_request *req, const gw_path_params *pp)
{
    gw_api_key *key = authenticate(gw, req);
    gw_order *o = key ? owned_order(gw, req, key, pp) : NULL;
    if (!o)
        return;
    if (gw_status_terminal(o->status)) {
        gw_reply_error(gw, req, 409, "order_not_open", "order %llu is already %s",
                       (unsigned long long)o->order_id, gw_status_name(o->status));
        return;
    }
    int async = is_async(req);
    if (!async && gw->n_pending >= (size_t)gw->max_pending) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
        gw_reply_error(gw, req, 503, "too_many_pending", "too many requests wait for the matcher");
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
        gw_reply_error(gw, req, 503, "out_of_memory", "the gateway cannot take more requests now");
        return;
    }
    batch_push(gw, req, &cmd, async);
}

static void handle_order_list(gateway *gw, struct evhttp_request *req)
{
    gw_api_key *key = authenticate(gw, req);
    if (!key)
        return;
    gw_query_args q;
    long limit = 0;
    if (gw_query_parse(&q, req)) {
        gw_reply_error(gw, req, 400, "invalid_query", "the query string is malformed");
    } else if (gw_query_get(&q, "status") && strcmp(gw_query_get(&q, "status"), "open")) {
        gw_reply_error(gw, req, 400, "invalid_status",
                       "status must be 'open' (finished orders are read one by one by id)");
    } else if (query_int(&q, "limit", 0, 0, 100000, &limit)) {
        gw_reply_error(gw, req, 400, "invalid_limit", "limit must be an integer from 0 to 100000");
    } else {
        gw_render_open_orders(evhttp_request_get_output_buffer(req), gw->rm,
                              gw_rm_account(gw->rm, key->account, 0), (size_t)limit);
        gw_reply_json(gw, req, 200);
    }
    gw_query_free(&q);
}

/* GET /v1/fills?limit=N&before=CURSOR: the key's own fills, newest first;
 * "next" in the answer is the cursor of the following page. */
static void handle_fills(gateway *gw, struct evhttp_request *req)
{
    gw_api_key *key = authenticate(gw, req);
    if (!key)
        return;
    gw_query_args q;
    long limit = 100;
    long long before_ts = 0;
    unsigned long long before_trade = 0;
    const char *before;
    if (gw_query_parse(&q, req)) {
        gw_reply_error(gw, req, 400, "invalid_query", "the query string is malformed");
    } else if (query_int(&q, "limit", 100, 1, 1000, &limit)) {
        gw_reply_error(gw, req, 400, "invalid_limit", "limit must be an integer from 1 to 1000");
    } else if ((before = gw_query_get(&q, "before")) &&
               (sscanf(before, "%lld.%llu", &before_ts, &before_trade) != 2 || before_ts <= 0)) {
        gw_reply_error(gw, req, 400, "invalid_cursor",
                       "before is the \"next\" of a previous answer");
    } else if (gw_render_fills(evhttp_request_get_output_buffer(req), gw->rm, key->account,
                               (size_t)limit, before_ts, before_trade)) {
        gw_reply_error(gw, req, 503, "out_of_memory", "try again");
    } else {
        gw_reply_json(gw, req, 200);
    }
    gw_query_free(&q);
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
    if (!gw_allow_read(gw, req))
        return;
    char venue[GW_PARAM_MAX + 1], symbol[GW_PARAM_MAX + 1];
    int idx = -1;
    if (!decode_segment(pp->value[0], pp->len[0], venue, sizeof venue) &&
        !decode_segment(pp->value[1], pp->len[1], symbol, sizeof symbol))
        idx = gw_rm_instrument_by_name(gw->rm, venue, symbol);
    if (idx < 0) {
        gw_reply_error(gw, req, 404, "unknown_instrument", "no such instrument");
        return;
    }
    gw_query_args q;
    long depth;
    if (gw_query_parse(&q, req) || query_int(&q, "depth", 10, 1, ARB_MD_MAX_LEVELS, &depth)) {
        gw_reply_error(gw, req, 400, "invalid_depth", "depth must be an integer from 1 to %u",
                       ARB_MD_MAX_LEVELS);
    } else {
        gw_render_book(evhttp_request_get_output_buffer(req), gw->rm, idx, (unsigned)depth);
        gw_reply_json(gw, req, 200);
    }
    gw_query_free(&q);
}

static void handle_trades(gateway *gw, struct evhttp_request *req)
{
    if (!gw_allow_read(gw, req))
        return;
    gw_query_args q;
    long limit;
    if (gw_query_parse(&q, req)) {
        gw_reply_error(gw, req, 400, "invalid_query", "the query string is malformed");
        gw_query_free(&q);
        return;
    }
    const char *venue = gw_query_get(&q, "venue"), *symbol = gw_query_get(&q, "symbol");
    if (venue && !*venue)
        venue = NULL;
    if (symbol && !*symbol)
        symbol = NULL;
    if (query_int(&q, "limit", 100, 1, (long)gw->trade_history, &limit)) {
        gw_reply_error(gw, req, 400, "invalid_limit", "limit must be an integer from 1 to %lld",
                       (long long)gw->trade_history);
        gw_query_free(&q);
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
        gw_reply_error(gw, req, 503, "out_of_memory", "try again");
    } else if (matched == 0 && (venue || symbol)) {
        gw_reply_error(gw, req, 404, "unknown_instrument",
                       "no instrument matches venue and symbol");
    } else {
        gw_render_trades(evhttp_request_get_output_buffer(req), gw->rm, matched == 1 ? idx : -1,
                         matched == 1 ? NULL : mask, (unsigned)limit);
        gw_reply_json(gw, req, 200);
    }
    free(mask);
    gw_query_free(&q);
}

int gw_account_visible(void *user, uint64_t account)
{
    const board_view *v = user;
    if (account == v->viewer)
        return 1;
    for (size_t i = 0; i < v->gw->n_public; i++)
        if (v->gw->public_ids[i] == account)
            return 1;
    return 0;
}

const char *gw_account_label(void *user, uint64_t account)
{
    gateway *gw = ((board_view *)user)->gw;
    for (size_t i = 0; i < gw->n_names; i++)
        if (gw->names[i].account == account)
            return gw->names[i].name;
    for (size_t i = 0; i < gw->keys.count; i++)
        if (gw->keys.items[i].account == account)
            return gw->keys.items[i].name;
    return NULL;
}

/* The connection guard's counts into the metrics. */
void gw_sync_conn_stats(gateway *gw)
{
    const gw_conn_stats *now = &gw->conns.stats;
    gw_conn_stats *seen = &gw->conn_stats_seen;
    arb_counter_add(gw->m_conn_refused, now->refused - seen->refused);
    arb_counter_add(gw->m_req_timeouts, now->timed_out - seen->timed_out);
    arb_counter_add(gw->m_accept_pauses, now->accept_pauses - seen->accept_pauses);
    *seen = *now;
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
    gw_reply(gw, req, 200, type);
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
    /* evhttp takes any HTTP/x.y and answers in the client's version: the
     * gateway speaks HTTP/1.1 (and 1.0), answers a later 1.x as 1.1, and
     * refuses other majors. The version lives in evhttp's request struct,
     * which has no accessor. */
    if (req->major != 1 || req->minor < 0) {
        int malformed = req->major == 1;
        req->major = 1;
        req->minor = 1;
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        if (malformed)
            gw_reply_error(gw, req, 400, "malformed_request", "the HTTP version is malformed");
        else
            gw_reply_error(gw, req, 505, "http_version_not_supported",
                           "the gateway speaks HTTP/1.1");
        return;
    }
    if (req->minor > 1)
        req->minor = 1;
    gw_framing_error fe;
    int bad = gw_conn_request_error(&gw->conns, evhttp_request_get_connection(req), &fe);
    if (bad) {
        /* Bytes evhttp took that the scan refused (a chunk size "0x5",
         * chunk data not ended by CRLF, ...): what evhttp read after them
         * is not served. */
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        gw_reply_error(gw, req, bad, fe.code, "%s", fe.message);
        return;
    }
    /* Framing first: an answer that keeps the connection (429 below) must
     * not come before the check that what evhttp read next is a request. */
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    int body_allowed = cmd != EVHTTP_REQ_HEAD && cmd != EVHTTP_REQ_TRACE;
    if (gw_http_check_framing(evhttp_request_get_input_headers(req), body_allowed, &fe) ||
        gw_http_check_host(evhttp_request_get_input_headers(req), req->minor >= 1, &fe)) {
        /* Whatever evhttp framed after this request is not served. */
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        gw_reply_error(gw, req, 400, fe.code, "%s", fe.message);
        return;
    }
    if (!evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization") &&
        !anon_allowed(gw, req))
        return;
    gw_path_params pp;
    char allow[64];
    /* HEAD is served by every GET route. */
    int route = gw_route_match(cmd == EVHTTP_REQ_HEAD ? "GET" : method_name(cmd), path, &pp, allow,
                               sizeof allow - 6);
    if (route == GW_METHOD_NOT_ALLOWED && strstr(allow, "GET"))
        strcat(allow, ", HEAD");
    switch (route) {
    case GW_ROUTE_NOT_FOUND:
        gw_reply_error(gw, req, 404, "route_not_found", "no route for this path");
        return;
    case GW_METHOD_NOT_ALLOWED:
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
        gw_reply_error(gw, req, 405, "method_not_allowed", "this path accepts %s", allow);
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
        if (!gw_allow_read(gw, req))
            return;
        gw_render_instruments(evhttp_request_get_output_buffer(req), &gw->instruments);
        gw_reply_json(gw, req, 200);
        return;
    case GW_R_BOOK: handle_book(gw, req, &pp); return;
    case GW_R_TRADES: handle_trades(gw, req); return;
    case GW_R_ACCOUNTS: {
        /* The public accounts for anyone; with a key, its account too. */
        board_view v = {gw, 0};
        if (gw->public_reads == 0 ||
            evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization")) {
            gw_api_key *key = authenticate(gw, req);
            if (!key)
                return;
            v.viewer = key->account;
        }
        gw_render_accounts(evhttp_request_get_output_buffer(req), gw->rm, gw_account_label,
                           gw_account_visible, &v, (size_t)gw->board_unnamed);
        gw_reply_json(gw, req, 200);
        return;
    }
    case GW_R_STREAM: gw_stream_handle(gw, req); return;
    case GW_R_FILLS: handle_fills(gw, req); return;
    case GW_R_RUNS: gw_run_pages_index(gw, req); return;
    case GW_R_RUN_PAGE: gw_run_page(gw, req, pp.value[0], pp.len[0]); return;
    case GW_R_SERVICES:
        if (!gw_allow_read(gw, req))
            return;
        gw_render_services(evhttp_request_get_output_buffer(req), &gw->services, wall_ns(),
                           gw->svc_alive_ms * 1000000LL, gw->svc_dead_ms * 1000000LL);
        gw_reply_json(gw, req, 200);
        return;
    }
    gw_reply_error(gw, req, 404, "route_not_found", "no route for this path");
}

/* ---- bus subscriptions ---- */

static void on_order_event(void *user, const arb_msg *msg)
{
    gateway *gw = user;
    if (arb_replay_seen(&gw->recovery.events, msg))
        return;
    gw_recovery_mark(&gw->recovery, ARB_TOPIC_ORDER_EVENTS, msg);
    arb_order_event ev;
    if (arb_order_event_decode(msg->data, msg->len, &ev))
        return;
    gw_order *o;
    /* An order of ours the model does not know is adopted: its events came
     * again from the matcher's replay after a crash its client got no
     * answer from, and its owner must be able to see and cancel it
     * (gw_adopt leaves a known order alone). */
    gw_adopt(gw->rm, gw->id_space, &ev);
    int effect = gw_rm_apply_event(gw->rm, &ev, &o);
    if (effect != GW_EFF_NONE)
        order_changed(gw, o, effect, (ev.flags & ARB_EVF_LAST) != 0);
    /* The private stream: the account's own order events and fills. */
    if (gw->streams && gw_stream_wanted_by(gw, ST_ORDERS | ST_FILLS, ev.account)) {
        struct evbuffer *out = evbuffer_new();
        if (!out)
            return;
        evbuffer_add(out, "event: order\ndata: ", 19);
        gw_render_order_event(out, gw->rm, &ev);
        evbuffer_add(out, "\n\n", 2);
        gw_stream_to_account(gw, ST_ORDERS, ev.account, out);
        if (ev.last_qty > 0 && (ev.kind == ARB_EV_PARTIAL || ev.kind == ARB_EV_FILLED)) {
            evbuffer_drain(out, evbuffer_get_length(out));
            evbuffer_add(out, "event: fill\ndata: ", 18);
            gw_render_fill_event(out, gw->rm, &ev);
            evbuffer_add(out, "\n\n", 2);
            gw_stream_to_account(gw, ST_FILLS, ev.account, out);
        }
        evbuffer_free(out);
    }
}

static void on_trade(void *user, const arb_msg *msg)
{
    gateway *gw = user;
    if (arb_replay_seen(&gw->recovery.trades, msg))
        return;
    gw_recovery_mark(&gw->recovery, ARB_TOPIC_TRADE_EXECUTED, msg);
    arb_trade t;
    if (arb_trade_decode(msg->data, msg->len, &t))
        return;
    int idx = gw_rm_apply_trade(gw->rm, &t);
    if (idx < 0)
        return;
    gw->pnl_dirty = 1;
    if (!gw_stream_wanted(gw, ST_TRADES))
        return;
    const gw_trade_ring *r = &gw->rm->trades[idx];
    struct evbuffer *out = evbuffer_new();
    if (!out)
        return;
    evbuffer_add(out, "event: trade\ndata: ", 19);
    gw_render_trade(out, gw->rm, idx, &r->items[(r->head + r->cap - 1) % r->cap]);
    evbuffer_add(out, "\n\n", 2);
    gw_stream_broadcast(gw, ST_TRADES, out);
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
    if (!gw_stream_wanted(gw, ST_MARKET))
        return;
    struct evbuffer *ev = evbuffer_new();
    if (!ev)
        return;
    gw_stream_event_record(ev, "market", msg->data, msg->len, &gw->instruments);
    if (evbuffer_get_length(ev))
        gw_stream_broadcast(gw, ST_MARKET, ev);
    evbuffer_free(ev);
}

static int take_agent(gateway *gw, uint64_t acct, const char *name);

static void on_service(void *user, const arb_msg *msg)
{
    gateway *gw = user;
    arb_service rec;
    if (arb_service_decode(msg->data, msg->len, &rec))
        return;
    if (gw_services_apply(&gw->services, &rec, wall_ns()) == GW_SVC_NOMEM)
        arb_warn(gw->ctx, "out of memory: a service_registry record was not taken");
    /* Agents of other hosts (the split system) are named on the board as
     * this host's own are (agent_section). */
    if (rec.status != ARB_SVC_ALIVE)
        return;
    for (uint32_t i = 0; i < rec.n_plugins; i++) {
        arb_service_plugin p;
        arb_service_get_plugin(&rec, i, &p);
        char name[ARB_SVC_NAME_LEN + 1];
        arb_fixstr(name, p.instance, ARB_SVC_NAME_LEN);
        if (p.account && take_agent(gw, p.account, name) != ARB_OK)
            arb_warn(gw->ctx, "out of memory: agent %s not named on the board", name);
    }
}

/* ---- lifecycle ---- */

typedef struct cfg_walk {
    gateway *gw;
    int rc;
} cfg_walk;

/* The board's label for an account. ARB_OK or ARB_ENOMEM. */
static int add_name(gateway *gw, uint64_t account, const char *label)
{
    account_name *grown = realloc(gw->names, (gw->n_names + 1) * sizeof *grown);
    if (grown)
        gw->names = grown;
    char *copy = grown ? strdup(label) : NULL;
    if (!copy)
        return ARB_ENOMEM;
    gw->names[gw->n_names++] = (account_name){account, copy};
    return ARB_OK;
}

static int cfg_entry(void *user, const char *key, const char *value)
{
    cfg_walk *w = user;
    gateway *gw = w->gw;
    /* The keys taken here are read, so the host knows them (any other key
     * the walk shows is read by its own arb_cfg_* call, or unknown). */
    if (!strncmp(key, "api_key.", 8) || !strncmp(key, "account_name.", 13) ||
        !strcmp(key, "public_accounts"))
        arb_cfg_str(gw->ctx, key, "", &value);
    if (!strncmp(key, "api_key.", 8)) {
        char err[160];
        int rc = gw_keys_add(&gw->keys, key + 8, value, err, sizeof err);
        if (rc) {
            w->rc = arb_cfg_reject(gw->ctx, key, "%s", err);
            return 1;
        }
        return 0;
    }
    if (!strcmp(key, "public_accounts")) {
        for (const char *p = value; *p;) {
            p += strspn(p, " ,\t");
            if (!*p)
                break;
            char *end;
            errno = 0;
            unsigned long long acct = strtoull(p, &end, 10);
            if (end == p || errno || acct == 0 || (*end && !strchr(" ,\t", *end))) {
                w->rc = arb_cfg_reject(gw->ctx, key,
                                       "public_accounts is a list of positive account numbers");
                return 1;
            }
            uint64_t *grown = realloc(gw->public_ids, (gw->n_public + 1) * sizeof *grown);
            if (!grown) {
                w->rc = ARB_ENOMEM;
                return 1;
            }
            gw->public_ids = grown;
            gw->public_ids[gw->n_public++] = acct;
            p = end;
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
        if ((w->rc = add_name(gw, acct, value)))
            return 1;
    }
    return 0;
}

/* The agents of this host's configuration: every [plugin NAME] section with
 * an `account` names that account NAME on the board (unless account_name
 * says otherwise) and, with public_agents (default true), makes it public,
 * so an agent added to the config shows up by name with no gateway key.
 * An agent with a population is shown by its first account. */
/* An agent's account on the board: named NAME unless account_name (or an
 * earlier agent) named it, and public with public_agents (default true).
 * ARB_OK or ARB_ENOMEM. */
static int take_agent(gateway *gw, uint64_t acct, const char *name)
{
    int named = 0, is_public = 0;
    for (size_t i = 0; i < gw->n_names; i++)
        named |= gw->names[i].account == acct;
    for (size_t i = 0; i < gw->n_public; i++)
        is_public |= gw->public_ids[i] == acct;
    if (!named && add_name(gw, acct, name))
        return ARB_ENOMEM;
    if (!is_public && gw->public_agents) {
        uint64_t *grown = realloc(gw->public_ids, (gw->n_public + 1) * sizeof *grown);
        if (!grown)
            return ARB_ENOMEM;
        gw->public_ids = grown;
        gw->public_ids[gw->n_public++] = acct;
    }
    return ARB_OK;
}

static int agent_section(void *user, const char *section, const char *unused)
{
    (void)unused;
    cfg_walk *w = user;
    int64_t acct = 0;
    if (arb_cfg_int_in(w->gw->ctx, section, "account", 0, 0, INT64_MAX, &acct) != ARB_OK || !acct)
        return 0;
    return (w->rc = take_agent(w->gw, (uint64_t)acct, section + strlen("plugin "))) != ARB_OK;
}

static void gw_destroy(void *self);

/* Half the descriptors the process may open, at most 10000: the rest stay
 * for the host, the admin endpoint, the bus and the other plugins, so that
 * no flood of connections to the gateway can starve them. */
static int64_t default_max_conns(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY)
        return 10000;
    int64_t half = (int64_t)(rl.rlim_cur / 2);
    return half < 1 ? 1 : half > 10000 ? 10000 : half;
}

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
        (rc = arb_cfg_int(ctx, "stream_buffer_limit", 256 << 10, 4096, 1LL << 30,
                          &gw->stream_limit)) ||
        (rc = arb_cfg_int(ctx, "stream_stall_ms", 10000, 10, 3600000, &gw->stream_stall_ms)) ||
        (rc = arb_cfg_int(ctx, "max_streams_per_addr", 8, 0, 100000, &gw->max_streams_per_addr)) ||
        (rc = arb_cfg_int(ctx, "max_streams_per_key", 8, 0, 100000, &gw->max_streams_per_key)) ||
        (rc = arb_cfg_int(ctx, "request_timeout_ms", 5000, 10, 600000, &gw->request_timeout_ms)) ||
        (rc = arb_cfg_int(ctx, "max_connections", default_max_conns(), 1, 10000000,
                          &gw->max_conns)) ||
        (rc = arb_cfg_int(ctx, "max_connections_per_addr", 256, 1, 10000000,
                          &gw->max_conns_per_addr)) ||
        (rc = arb_cfg_int(ctx, "anon_rate_limit", 50, 0, 100000000, &gw->anon_rate)) ||
        (rc = arb_cfg_int(ctx, "anon_rate_burst", 200, 1, 100000000, &gw->anon_burst)) ||
        (rc = arb_cfg_int(ctx, "max_streams", 256, 0, 100000, &gw->max_streams)) ||
        (rc = arb_cfg_int(ctx, "max_pending", 65536, 1, 10000000, &gw->max_pending)) ||
        (rc = arb_cfg_int(ctx, "heartbeat_ms", 15000, 10, 3600000, &gw->heartbeat_ms)) ||
        (rc = arb_cfg_int(ctx, "stream_interval_ms", 100, 1, 60000, &gw->stream_ms)) ||
        (rc = arb_cfg_int(ctx, "stream_depth", 10, 1, 1000, &gw->stream_depth)) ||
        (rc = arb_cfg_int(ctx, "trade_history", 1000, 1, 1000000, &gw->trade_history)) ||
        (rc = arb_cfg_int(ctx, "order_history", 100000, 1, 100000000, &gw->order_history)) ||
        (rc = arb_cfg_bool(ctx, "public_reads", 1, &gw->public_reads)) ||
        (rc = arb_cfg_str(ctx, "runs_dir", "", &gw->runs_dir)) ||
        (rc = arb_cfg_int(ctx, "pnl_board_unnamed", 5, 0, 10000, &gw->board_unnamed)) ||
        (rc = arb_cfg_int(ctx, "max_open_orders", 100000, 1, 100000000, &gw->max_open)) ||
        (rc = arb_cfg_int(ctx, "client_order_id_window_s", 86400, 0, 30 * 86400,
                          &gw->client_window_s)) ||
        (rc = arb_cfg_int(ctx, "order_id_space", (int64_t)(arb_host_id(ctx) & 0xffff), 0, 0xffff,
                          &id_space)) ||
        (rc = arb_cfg_str(ctx, "snapshot_topic", "gateway_snapshots", &gw->snap_topic_name)) ||
        (rc = arb_cfg_int(ctx, "snapshot_records", 2000, 1, 1000000000, &gw->snap_records)) ||
        (rc = arb_cfg_int(ctx, "snapshot_interval_ms", 1000, 10, 3600000, &gw->snap_interval_ms)) ||
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
    if ((rc = arb_cfg_bool(ctx, "public_agents", 1, &gw->public_agents)))
        goto fail;
    if ((rc = arb_cfg_sections(ctx, "plugin ", agent_section, &w)) || (rc = w.rc))
        goto fail;
    if ((rc = arb_instruments_load(ctx, &gw->instruments)))
        goto fail;
    if (gw->instruments.count == 0)
        arb_warn(ctx, "no [instrument ...] sections: every order will be rejected");
    if (gw->keys.count == 0)
        arb_warn(ctx, "no api_key.<name> entries: order endpoints will answer 401");
    int64_t now = gw_mono_ns();
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

/* ---- snapshots of the read models (recover.h) ---- */

static int snapshot_now(gateway *gw)
{
    int64_t encode_ns = 0;
    int rc = gw_snapshot_take(gw->ctx, &gw->recovery, gw->rm, &encode_ns);
    if (rc != ARB_OK)
        return rc;
    arb_counter_add(gw->m_snapshots, 1);
    arb_gauge_set(gw->m_snap_bytes, (int64_t)gw->recovery.last_bytes);
    arb_hist_observe(gw->m_snap_encode, (uint64_t)encode_ns);
    return ARB_OK;
}

static void on_snapshot_tick(void *user)
{
    gateway *gw = user;
    gw_snapshot_check(gw->ctx, &gw->recovery);
    if (gw->recovery.since >= (uint64_t)gw->snap_records)
        snapshot_now(gw);
}

static int admin_snapshot(void *user, const char *method, const char *path, const char *query,
                          struct evbuffer *out)
{
    (void)path, (void)query;
    gateway *gw = user;
    gw_recovery *r = &gw->recovery;
    int status = 200;
    if (!strcmp(method, "POST")) {
        int rc = snapshot_now(gw);
        status = rc == ARB_OK ? 200 : rc == ARB_ESTATE ? 409 : 503;
    } else if (strcmp(method, "GET")) {
        evbuffer_add_printf(out, "{\"error\":{\"code\":\"method_not_allowed\","
                                 "\"message\":\"GET or POST\"}}\n");
        return 405;
    }
    int stored = gw_snapshot_check(gw->ctx, r);
    evbuffer_add_printf(out,
                        "{\"enabled\":%s,\"topic\":\"%s\",\"partition\":%d,\"position\":%lld,"
                        "\"since\":%llu,\"taken\":%llu,\"bytes\":%zu,\"snapshot_position\":%lld,"
                        "\"stored\":%s,\"rebuild\":{\"from_snapshot\":%s,\"order_events\":%llu,"
                        "\"trades\":%llu,\"ms\":%lld}}\n",
                        r->topic >= 0 && r->marks_ok ? "true" : "false", gw->snap_topic_name,
                        r->topic >= 0 ? (int)r->partition : -1,
                        (long long)(gw_marks_sum(&r->at_events) + gw_marks_sum(&r->at_trades)),
                        (unsigned long long)r->since, (unsigned long long)r->taken, r->last_bytes,
                        (long long)r->last_position, stored ? "true" : "false",
                        r->from_snapshot ? "true" : "false", (unsigned long long)r->events.records,
                        (unsigned long long)r->trades.records,
                        (long long)(r->rebuild_ns / 1000000));
    return status;
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

static void log_warning(void *user, const char *message)
{
    arb_warn(((gateway *)user)->ctx, "%s", message);
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
    gw_services_init(&gw->services, (size_t)gw->max_services, gw->svc_dead_ms * 1000000LL);
    gw->m_2xx = arb_counter_new(ctx, "gateway_responses_total", "class=\"2xx\"", "HTTP responses");
    gw->m_4xx = arb_counter_new(ctx, "gateway_responses_total", "class=\"4xx\"", "HTTP responses");
    gw->m_5xx = arb_counter_new(ctx, "gateway_responses_total", "class=\"5xx\"", "HTTP responses");
    gw->m_orders = arb_counter_new(ctx, "gateway_orders_total", NULL, "orders sent to the matcher");
    gw->m_timeouts =
        arb_counter_new(ctx, "gateway_matcher_timeouts_total", NULL, "requests answered 504");
    gw->m_stream_cut = arb_counter_new(ctx, "gateway_stream_cutoffs_total", NULL,
                                       "stream clients dropped for reading too slowly");
    gw->m_conn_refused = arb_counter_new(ctx, "gateway_connections_refused_total", NULL,
                                         "connections over max_connections(_per_addr), closed");
    gw->m_req_timeouts = arb_counter_new(ctx, "gateway_request_timeouts_total", NULL,
                                         "requests not whole within request_timeout_ms (408)");
    gw->m_accept_pauses = arb_counter_new(ctx, "gateway_accept_pauses_total", NULL,
                                          "episodes of accept failing for lack of descriptors");
    gw->m_anon_limited = arb_counter_new(ctx, "gateway_anon_rate_limited_total", NULL,
                                         "requests without a valid key refused (429)");
    gw->m_order_latency = arb_histogram_new(ctx, "gateway_matcher_answer_ns", NULL,
                                            "time from publish to the matcher's answer");
    gw->m_streams = arb_gauge_new(ctx, "gateway_streams", NULL, "open stream clients");
    gw->m_pending = arb_gauge_new(ctx, "gateway_pending", NULL, "requests waiting for the matcher");
    gw->m_snapshots = arb_counter_new(ctx, "gateway_snapshots_total", NULL,
                                      "snapshots of the read models published");
    gw->m_snap_bytes =
        arb_gauge_new(ctx, "gateway_snapshot_bytes", NULL, "size of the newest snapshot");
    gw->m_snap_encode = arb_histogram_new(ctx, "gateway_snapshot_encode_ns", NULL,
                                          "time to encode a snapshot (the loop waits)");
    gw->m_rebuild_events =
        arb_gauge_new(ctx, "gateway_rebuild_records", "topic=\"order_events\"",
                      "stored records read at start (after the snapshot, if one was used)");
    gw->m_rebuild_trades =
        arb_gauge_new(ctx, "gateway_rebuild_records", "topic=\"trade_executed\"",
                      "stored records read at start (after the snapshot, if one was used)");
    gw->m_rebuild_from_snap = arb_gauge_new(ctx, "gateway_rebuild_from_snapshot", NULL,
                                            "1: the read models at start came from a snapshot");
    if (!gw->base || !gw->rm || !gw->book_sent || !gw->m_2xx || !gw->m_4xx || !gw->m_5xx ||
        !gw->m_orders || !gw->m_timeouts || !gw->m_stream_cut || !gw->m_order_latency ||
        !gw->m_streams || !gw->m_pending || !gw->m_conn_refused || !gw->m_req_timeouts ||
        !gw->m_accept_pauses || !gw->m_anon_limited || !gw->m_snapshots || !gw->m_snap_bytes ||
        !gw->m_snap_encode || !gw->m_rebuild_events || !gw->m_rebuild_trades ||
        !gw->m_rebuild_from_snap)
        goto nomem;

    gw->flush_ev = event_new(gw->base, -1, 0, on_flush, gw);
    gw->batch_ev = event_new(gw->base, -1, 0, on_batch, gw);
    gw->batch = calloc(GW_BATCH_MAX, sizeof *gw->batch);
    gw->deadline_ev = evtimer_new(gw->base, on_deadline, gw);
    gw->heartbeat_ev = event_new(gw->base, -1, EV_PERSIST, gw_stream_on_heartbeat, gw);
    gw->stream_ev = event_new(gw->base, -1, EV_PERSIST, gw_stream_on_timer, gw);
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
    evhttp_set_max_headers_size(gw->http, GW_MAX_HEAD);
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
    struct evhttp_bound_socket *bound =
        fd < 0 ? NULL : evhttp_accept_socket_with_handle(gw->http, fd);
    if (!bound) {
        arb_error(ctx, "cannot listen on %s: %s", gw->listen, strerror(errno));
        if (fd >= 0)
            close(fd);
        gw_stop(gw);
        return ARB_ERROR;
    }
    /* The scan's head limit is evhttp's, line ends included: the scan
     * always sees a head over it first, so it is answered 431 (or 414)
     * rather than evhttp's 400. max_body bounds a chunked body at each
     * chunk's size line, where evhttp's higher cap would wait for the
     * chunk's data. */
    gw_conn_limits limits = {gw->request_timeout_ms, (size_t)gw->max_conns,
                             (size_t)gw->max_conns_per_addr, GW_MAX_HEAD, (uint64_t)gw->max_body};
    if (gw_conns_guard(&gw->conns, gw->http, bound, &limits, log_warning, gw))
        goto nomem;
    arb_info(ctx, "gateway listening on http://%s/ (%zu instruments, %zu api keys)", gw->bound_addr,
             gw->instruments.count, gw->keys.count);
    arb_admin_route(ctx, "listen", admin_listen, gw);

    /* Orders placed here before a restart, positions and trades: from what
     * the transport stored, before the first live record; from the newest
     * snapshot of them on, if there is one. */
    int snap_topic = gw->snap_topic_name[0] ? arb_topic(ctx, gw->snap_topic_name) : -1;
    gw_recover(ctx, &gw->rm, gw->id_space, snap_topic, &gw->recovery);
    arb_gauge_set(gw->m_rebuild_events, (int64_t)gw->recovery.events.records);
    arb_gauge_set(gw->m_rebuild_trades, (int64_t)gw->recovery.trades.records);
    arb_gauge_set(gw->m_rebuild_from_snap, gw->recovery.from_snapshot);
    arb_admin_route(ctx, "snapshot", admin_snapshot, gw);
    if (gw->recovery.topic >= 0 && arb_timer_start(ctx, (uint64_t)gw->snap_interval_ms * 1000000u,
                                                   1, on_snapshot_tick, gw) < 0)
        arb_warn(ctx, "no snapshot timer: the read models are not snapshotted");
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
    gw_streams_close_all(gw);
    /* A command still in this turn's batch never went out: 503, nothing
     * happened. One that went out may still be executed (the bus and the
     * matcher go on through a reconfiguration): 504 with its id, as for a
     * timeout, never a 503 that a client would retry into a second order. */
    while (gw->p_head) {
        pending *p = gw->p_head;
        pending_unlink(gw, p);
        int unsent = 0;
        for (size_t i = 0; i < gw->n_batch && !unsent; i++)
            unsent = gw->batch[i].req == p->req;
        if (unsent)
            gw_reply_error(gw, p->req, 503, "shutting_down", "the gateway is stopping");
        else
            reply_unconfirmed(gw, p, "gateway_stopped",
                              "the gateway stopped before the matcher answered");
        free(p);
    }
    for (size_t i = 0; i < gw->n_batch; i++)
        if (gw->batch[i].async)
            gw_reply_error(gw, gw->batch[i].req, 503, "shutting_down", "the gateway is stopping");
    gw->n_batch = 0;
    free(gw->batch);
    gw->batch = NULL;
    gw->ready_head = NULL;
    gw_map_free(&gw->pending_by_order);
    if (gw->http)
        evhttp_free(gw->http);
    gw->http = NULL;
    gw_conns_free(&gw->conns);
    for (size_t i = 0; i < gw->anon_buckets.cap; i++)
        if (gw->anon_buckets.slots[i].key)
            free(gw->anon_buckets.slots[i].val);
    gw_map_free(&gw->anon_buckets);
    struct event **evs[] = {&gw->flush_ev, &gw->batch_ev, &gw->deadline_ev, &gw->heartbeat_ev,
                            &gw->stream_ev};
    for (size_t i = 0; i < sizeof evs / sizeof *evs; i++)
        if (*evs[i]) {
            event_free(*evs[i]);
            *evs[i] = NULL;
        }
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
    free(gw->public_ids);
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

static const char *const gw_publishes[] = {"order_commands", "gateway_snapshots", NULL};
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

/*
 * matcher_plugin.c -- the matcher service: the order book engine (book.c)
 * on the bus. It consumes order_commands and publishes order_events (keyed
 * by account), trade_executed and market_data (keyed by instrument).
 *
 *   [plugin matcher]
 *   load = matcher.so
 *   instruments = XA:BTCUSD XB:BTCUSD ; books to serve (default: every
 *                                     ; [instrument] section); commands for
 *                                     ; other configured books are left to
 *                                     ; the matcher that serves them
 *   stp = cancel_resting              ; or cancel_incoming, none: self-trade
 *                                     ; prevention when an order names none
 *   max_open_orders = 0               ; resting orders per account, 0 = no limit
 *   snapshot_levels = 0               ; levels per side in a snapshot, 0 = all
 *   order_capacity = 65536            ; resting orders allocated up front
 *   stamp = matcher                   ; matcher: outputs carry the host's time
 *                                     ; (simulated time in a sim); command:
 *                                     ; they carry the command's ts (replay)
 *
 * The admin endpoint serves GET /plugins/<instance>/book?venue=XA&symbol=
 * BTCUSD[&depth=N] as JSON (arbctl book XA BTCUSD); an ARB_CMD_SNAPSHOT
 * command on order_commands answers with a full-depth ARB_MD_SNAPSHOT.
 * Hot reload carries the whole engine across, and any output still waiting
 * for the bus (save/restore). Trade ids are unique across books because each book's
 * id is its instrument's position in the shared instrument table: append new
 * instruments at the end of that file, never reorder it.
 *
 * If the bus refuses a record (a full queue), the output waits here, in
 * order, and a timer retries; nothing is dropped unless the backlog passes
 * its cap. Not here: the matching rules (book.h) or any Kafka/host detail.
 */
#include <arb/instrument.h>
#include <arb/plugin.h>
#include <arb/wire.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <sys/queue.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "book.h"

#define BACKLOG_CAP (256u << 20) /* bytes of unpublished output before dropping */
#define RETRY_NS 1000000ull
#define DECODE_LOG_INTERVAL_NS 1000000000ll

typedef struct book_metrics {
    arb_gauge *orders, *bid_levels, *ask_levels;
} book_metrics;

/* Output the bus refused for now, oldest first. */
typedef struct backlog {
    uint8_t *bytes; /* records back to back, each: u16 topic | u32 len | u64 key | data */
    size_t len, cap, head;
    uint64_t records;
} backlog;

typedef struct matcher {
    arb_ctx *ctx;
    book_engine *engine;
    arb_instrument_table all; /* every configured instrument */
    int stamp_command;
    uint8_t *buf; /* encode buffer, ARB_WIRE_MAX bytes */
    backlog pending;
    int retry_timer;
    int64_t decode_logged_at;
    uint64_t decode_suppressed;
    book_metrics *book_m; /* by order_book_index */
    arb_counter *m_commands, *m_trades, *m_events, *m_md, *m_decode_errors, *m_not_ours;
    arb_counter *m_refused, *m_dropped;
    arb_counter *m_rejects[ARB_R_REASON_MAX + 1];
    arb_gauge *m_backlog;
    arb_histogram *m_latency;
} matcher;

static int64_t mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* ---- config ---- */

typedef struct name_list {
    matcher *m;
    book_config *cfg;
    int rc;
} name_list;

static int parse_stp(const char *s, uint8_t *out)
{
    if (!strcmp(s, "cancel_resting"))
        *out = ARB_STP_CANCEL_RESTING;
    else if (!strcmp(s, "cancel_incoming"))
        *out = ARB_STP_CANCEL_INCOMING;
    else if (!strcmp(s, "none"))
        *out = ARB_STP_NONE;
    else
        return ARB_EINVAL;
    return ARB_OK;
}

/* Adds the books named in `instruments` (all when empty) to the engine. */
static int add_books(matcher *m, const char *names)
{
    if (!names[0]) {
        for (size_t i = 0; i < m->all.count; i++)
            if (book_engine_add_instrument_id(m->engine, &m->all.items[i], (uint32_t)i + 1))
                return arb_cfg_reject(m->ctx, "instruments", "cannot add %s:%s",
                                      m->all.items[i].venue, m->all.items[i].symbol);
        return ARB_OK;
    }
    char *copy = strdup(names);
    if (!copy)
        return ARB_ENOMEM;
    int rc = ARB_OK;
    char *save = NULL;
    for (char *tok = strtok_r(copy, " \t,", &save); tok && !rc;
         tok = strtok_r(NULL, " \t,", &save)) {
        char venue[ARB_VENUE_LEN], symbol[ARB_SYMBOL_LEN];
        char v[ARB_VENUE_LEN + 1], s[ARB_SYMBOL_LEN + 1];
        const arb_instrument *in = NULL;
        if (!arb_instrument_parse_name(tok, venue, symbol))
            in = arb_instrument_find(&m->all, arb_fixstr(v, venue, ARB_VENUE_LEN),
                                     arb_fixstr(s, symbol, ARB_SYMBOL_LEN));
        if (!in)
            rc = arb_cfg_reject(m->ctx, "instruments",
                                "'%s' is not a configured [instrument VENUE:SYMBOL]", tok);
        else if (book_engine_add_instrument_id(m->engine, in, (uint32_t)(in - m->all.items) + 1))
            rc = arb_cfg_reject(m->ctx, "instruments", "'%s' is listed twice", tok);
    }
    free(copy);
    return rc;
}

static void matcher_destroy(void *self);

static int matcher_create(arb_ctx *ctx, void **self)
{
    const char *stp_s, *names, *stamp;
    int64_t max_open, snap_levels, capacity;
    book_config cfg = {0};
    int rc;
    if ((rc = arb_cfg_str(ctx, "stp", "cancel_resting", &stp_s)) ||
        (rc = arb_cfg_int(ctx, "max_open_orders", 0, 0, UINT32_MAX, &max_open)) ||
        (rc = arb_cfg_int(ctx, "snapshot_levels", 0, 0, ARB_MD_MAX_LEVELS / 2, &snap_levels)) ||
        (rc = arb_cfg_int(ctx, "order_capacity", 65536, 16, BOOK_MAX_ORDERS, &capacity)) ||
        (rc = arb_cfg_str(ctx, "instruments", "", &names)) ||
        (rc = arb_cfg_str(ctx, "stamp", "matcher", &stamp)))
        return rc;
    if (parse_stp(stp_s, &cfg.stp_default))
        return arb_cfg_reject(ctx, "stp", "'%s': use cancel_resting, cancel_incoming or none",
                              stp_s);
    if (strcmp(stamp, "matcher") && strcmp(stamp, "command"))
        return arb_cfg_reject(ctx, "stamp", "'%s': use matcher or command", stamp);
    cfg.max_open_orders = (uint32_t)max_open;
    cfg.snapshot_levels = (uint32_t)snap_levels;
    cfg.order_capacity = (uint32_t)capacity;

    matcher *m = calloc(1, sizeof *m);
    if (!m)
        return ARB_ENOMEM;
    m->ctx = ctx;
    m->retry_timer = -1;
    m->stamp_command = !strcmp(stamp, "command");
    if ((rc = arb_instruments_load(ctx, &m->all))) {
        free(m);
        return rc;
    }
    if (!m->all.count) {
        matcher_destroy(m);
        return arb_cfg_reject(ctx, "instruments",
                              "no [instrument VENUE:SYMBOL] sections: nothing to match");
    }
    m->buf = malloc(ARB_WIRE_MAX);
    if (!m->buf || book_engine_new(&cfg, &m->engine)) {
        matcher_destroy(m);
        return ARB_ENOMEM;
    }
    if ((rc = add_books(m, names))) {
        matcher_destroy(m);
        return rc;
    }
    *self = m;
    return ARB_OK;
}

static void matcher_destroy(void *self)
{
    matcher *m = self;
    if (!m)
        return;
    book_engine_free(m->engine);
    arb_instruments_free(&m->all);
    free(m->pending.bytes);
    free(m->book_m);
    free(m->buf);
    free(m);
}

/* ---- publishing, with a backlog when the bus is full ---- */

#define BACKLOG_HDR 14u

static int backlog_push(matcher *m, int topic, uint64_t key, const void *data, uint32_t len)
{
    backlog *q = &m->pending;
    size_t need = q->len - q->head + BACKLOG_HDR + len;
    if (need > BACKLOG_CAP) {
        arb_counter_add(m->m_dropped, 1);
        return ARB_EFULL;
    }
    if (q->head && q->len + BACKLOG_HDR + len > q->cap) {
        memmove(q->bytes, q->bytes + q->head, q->len - q->head);
        q->len -= q->head;
        q->head = 0;
    }
    if (q->len + BACKLOG_HDR + len > q->cap) {
        size_t cap = q->cap ? q->cap : 1 << 16;
        while (cap < q->len + BACKLOG_HDR + len)
            cap *= 2;
        uint8_t *p = realloc(q->bytes, cap);
        if (!p) {
            arb_counter_add(m->m_dropped, 1);
            return ARB_ENOMEM;
        }
        q->bytes = p;
        q->cap = cap;
    }
    uint8_t *p = q->bytes + q->len;
    arb_put_u16(p, (uint16_t)topic);
    arb_put_u32(p + 2, len);
    arb_put_u64(p + 6, key);
    memcpy(p + BACKLOG_HDR, data, len);
    q->len += BACKLOG_HDR + len;
    q->records++;
    arb_gauge_set(m->m_backlog, (int64_t)q->records);
    return ARB_OK;
}

/* Publishes what waits, in order; stops at the first refusal. */
static void backlog_flush(matcher *m)
{
    backlog *q = &m->pending;
    while (q->head < q->len) {
        const uint8_t *p = q->bytes + q->head;
        uint32_t len = arb_get_u32(p + 2);
        if (arb_publish(m->ctx, arb_get_u16(p), arb_get_u64(p + 6), p + BACKLOG_HDR, len) != ARB_OK)
            break;
        q->head += BACKLOG_HDR + len;
        q->records--;
    }
    if (q->head == q->len)
        q->head = q->len = 0;
    arb_gauge_set(m->m_backlog, (int64_t)q->records);
}

static void on_retry(void *user)
{
    matcher *m = user;
    backlog_flush(m);
    if (m->pending.records == 0 && m->retry_timer >= 0) {
        arb_timer_stop(m->ctx, m->retry_timer);
        m->retry_timer = -1;
    }
}

static void publish(matcher *m, int topic, uint64_t key, const void *data, uint32_t len)
{
    if (m->pending.records == 0) {
        int rc = arb_publish(m->ctx, topic, key, data, len);
        if (rc == ARB_OK)
            return;
        arb_counter_add(m->m_refused, 1);
        if (rc != ARB_EFULL) {
            arb_counter_add(m->m_dropped, 1);
            return;
        }
    }
    /* Keep the order: once something waits, everything queues behind it. */
    if (backlog_push(m, topic, key, data, len) == ARB_OK && m->retry_timer < 0)
        m->retry_timer = arb_timer_start(m->ctx, RETRY_NS, 1, on_retry, m);
}

static void publish_output(matcher *m, book_output *o)
{
    for (uint32_t i = 0; i < o->n_events; i++) {
        const arb_order_event *ev = &o->events[i];
        uint32_t len = arb_order_event_encode(ev, m->buf, ARB_WIRE_MAX);
        publish(m, ARB_TOPIC_ORDER_EVENTS, ev->account, m->buf, len);
        if (ev->kind == ARB_EV_REJECTED && ev->reason >= 1 && ev->reason <= ARB_R_REASON_MAX)
            arb_counter_add(m->m_rejects[ev->reason], 1);
    }
    for (uint32_t i = 0; i < o->n_trades; i++) {
        const arb_trade *t = &o->trades[i];
        uint32_t len = arb_trade_encode(t, m->buf, ARB_WIRE_MAX);
        publish(m, ARB_TOPIC_TRADE_EXECUTED, arb_instrument_key(t->venue, t->symbol), m->buf, len);
    }
    for (uint32_t i = 0; i < o->n_md; i++) {
        const book_md *md = &o->md[i];
        uint32_t len = arb_market_data_encode(&md->head, m->buf, ARB_WIRE_MAX);
        for (uint32_t k = 0; k < md->head.n_levels; k++)
            arb_md_put_level(m->buf, k, &o->levels[md->first_level + k]);
        publish(m, ARB_TOPIC_MARKET_DATA, arb_instrument_key(md->head.venue, md->head.symbol),
                m->buf, len);
    }
    arb_counter_add(m->m_events, o->n_events);
    arb_counter_add(m->m_trades, o->n_trades);
    arb_counter_add(m->m_md, o->n_md);
    if (o->dropped) {
        arb_counter_add(m->m_dropped, o->dropped);
        o->dropped = 0;
    }
}

/* ---- commands ---- */

static void update_book_metrics(matcher *m, const order_book *b)
{
    book_metrics *bm = &m->book_m[order_book_index(b)];
    order_book_stats st;
    order_book_get_stats(m->engine, b, &st);
    arb_gauge_set(bm->orders, st.orders);
    arb_gauge_set(bm->bid_levels, order_book_level_count(b, ARB_SIDE_BUY));
    arb_gauge_set(bm->ask_levels, order_book_level_count(b, ARB_SIDE_SELL));
}

static int served_elsewhere(const matcher *m, const arb_order_cmd *c)
{
    char v[ARB_VENUE_LEN + 1], s[ARB_SYMBOL_LEN + 1];
    return arb_instrument_find(&m->all, arb_fixstr(v, c->venue, ARB_VENUE_LEN),
                               arb_fixstr(s, c->symbol, ARB_SYMBOL_LEN)) != NULL;
}

static void on_command(void *user, const arb_msg *msg)
{
    matcher *m = user;
    int64_t t0 = mono_ns();
    arb_order_cmd c;
    if (arb_order_cmd_decode(msg->data, msg->len, &c)) {
        arb_counter_add(m->m_decode_errors, 1);
        /* A flood of bad records must not become a flood of log lines. */
        if (t0 - m->decode_logged_at >= DECODE_LOG_INTERVAL_NS) {
            arb_warn(m->ctx, "undecodable order command (%s), %llu more since the last report",
                     arb_wire_error(), (unsigned long long)m->decode_suppressed);
            m->decode_logged_at = t0;
            m->decode_suppressed = 0;
        } else {
            m->decode_suppressed++;
        }
        return;
    }
    const order_book *b = book_engine_find(m->engine, c.venue, c.symbol);
    if (!b && served_elsewhere(m, &c)) {
        arb_counter_add(m->m_not_ours, 1);
        return;
    }
    if (!m->stamp_command)
        c.ts = arb_now(m->ctx);
    book_output *o = book_engine_output(m->engine);
    book_output_clear(o);
    book_engine_process(m->engine, &c);
    publish_output(m, o);
    book_output_clear(o);
    if (b)
        update_book_metrics(m, b);
    arb_counter_add(m->m_commands, 1);
    arb_hist_observe(m->m_latency, (uint64_t)(mono_ns() - t0));
}

/* ---- the admin endpoint ---- */

static json_t *levels_json(const matcher *m, const order_book *b, int side, uint32_t depth,
                           arb_md_level *tmp)
{
    const arb_instrument *in = order_book_instrument(b);
    uint32_t n = order_book_depth(m->engine, b, side, tmp, depth);
    json_t *arr = json_array();
    char px[40], qty[40];
    for (uint32_t i = 0; i < n; i++) {
        arb_dec_format(tmp[i].price, in->price_decimals, px, sizeof px);
        arb_dec_format(tmp[i].qty, in->qty_decimals, qty, sizeof qty);
        json_array_append_new(arr, json_pack("{s:s, s:s, s:I}", "price", px, "qty", qty, "orders",
                                             (json_int_t)tmp[i].orders));
    }
    return arr;
}

static int admin_error(struct evbuffer *out, int status, const char *code, const char *msg)
{
    json_t *j = json_pack("{s:s, s:s}", "error", code, "message", msg);
    char *s = json_dumps(j, JSON_COMPACT);
    evbuffer_add_printf(out, "%s\n", s ? s : "{}");
    free(s);
    json_decref(j);
    return status;
}

static int admin_book(void *user, const char *method, const char *path, const char *query,
                      struct evbuffer *out)
{
    (void)path;
    matcher *m = user;
    if (strcmp(method, "GET"))
        return admin_error(out, 405, "method_not_allowed", "use GET");
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    if (query && evhttp_parse_query_str(query, &q))
        return admin_error(out, 400, "bad_query", "cannot parse the query string");
    const char *venue = evhttp_find_header(&q, "venue"), *symbol = evhttp_find_header(&q, "symbol");
    const char *depth_s = evhttp_find_header(&q, "depth");
    char v[ARB_VENUE_LEN], s[ARB_SYMBOL_LEN];
    int status = 200;
    long depth = depth_s ? strtol(depth_s, NULL, 10) : ARB_MD_MAX_LEVELS / 2;
    const order_book *b = NULL;
    if (!venue || !symbol || arb_fixstr_set(v, ARB_VENUE_LEN, venue) ||
        arb_fixstr_set(s, ARB_SYMBOL_LEN, symbol))
        status = admin_error(out, 400, "bad_instrument", "give venue=...&symbol=...");
    else if (depth < 1 || depth > (long)ARB_MD_MAX_LEVELS / 2)
        status = admin_error(out, 400, "bad_depth", "depth is 1..2048");
    else if (!(b = book_engine_find(m->engine, v, s)))
        status = admin_error(out, 404, "unknown_instrument", "this matcher has no such book");
    if (!b) {
        evhttp_clear_headers(&q);
        return status;
    }
    arb_md_level *tmp = malloc((size_t)depth * sizeof *tmp);
    if (!tmp) {
        evhttp_clear_headers(&q);
        return admin_error(out, 500, "no_memory", "out of memory");
    }
    order_book_stats st;
    order_book_get_stats(m->engine, b, &st);
    const arb_instrument *in = order_book_instrument(b);
    char ref[40];
    arb_dec_format(st.ref_price, in->price_decimals, ref, sizeof ref);
    json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:I, s:s, s:o, s:o}", "venue", in->venue, "symbol",
                          in->symbol, "book_seq", (json_int_t)st.md_seq, "trades",
                          (json_int_t)st.trades, "orders", (json_int_t)st.orders, "ref_price", ref,
                          "bids", levels_json(m, b, ARB_SIDE_BUY, (uint32_t)depth, tmp), "asks",
                          levels_json(m, b, ARB_SIDE_SELL, (uint32_t)depth, tmp));
    char *text = json_dumps(j, JSON_COMPACT);
    evbuffer_add_printf(out, "%s\n", text ? text : "{}");
    free(text);
    json_decref(j);
    free(tmp);
    evhttp_clear_headers(&q);
    return 200;
}

/* ---- lifecycle ---- */

static int make_metrics(matcher *m)
{
    arb_ctx *ctx = m->ctx;
    m->m_commands = arb_counter_new(ctx, "matcher_commands_total", NULL, "Commands processed");
    m->m_trades = arb_counter_new(ctx, "matcher_trades_total", NULL, "Trades executed");
    m->m_events = arb_counter_new(ctx, "matcher_order_events_total", NULL, "Order events");
    m->m_md = arb_counter_new(ctx, "matcher_market_data_total", NULL, "Market data records");
    m->m_decode_errors = arb_counter_new(ctx, "matcher_decode_errors_total", NULL,
                                         "Order commands that failed to decode");
    m->m_not_ours = arb_counter_new(ctx, "matcher_commands_elsewhere_total", NULL,
                                    "Commands for books another matcher serves");
    m->m_refused = arb_counter_new(ctx, "matcher_publish_refused_total", NULL,
                                   "Records the bus refused at first (queued and retried)");
    m->m_dropped = arb_counter_new(ctx, "matcher_output_dropped_total", NULL,
                                   "Records lost: backlog over its cap or no memory");
    m->m_backlog = arb_gauge_new(ctx, "matcher_backlog_records", NULL,
                                 "Output records waiting for room on the bus");
    m->m_latency = arb_histogram_new(ctx, "matcher_command_ns", NULL,
                                     "Time to match one command and publish its output");
    for (unsigned r = 1; r <= ARB_R_REASON_MAX; r++) {
        char labels[64];
        snprintf(labels, sizeof labels, "reason=\"%s\"", arb_reason_name(r));
        m->m_rejects[r] =
            arb_counter_new(ctx, "matcher_rejects_total", labels, "Rejected commands by reason");
    }
    size_t n = book_engine_book_count(m->engine);
    m->book_m = calloc(n ? n : 1, sizeof *m->book_m);
    if (!m->book_m)
        return ARB_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const arb_instrument *in = order_book_instrument(book_engine_book_at(m->engine, i));
        char labels[128];
        snprintf(labels, sizeof labels, "venue=\"%s\",symbol=\"%s\"", in->venue, in->symbol);
        m->book_m[i].orders =
            arb_gauge_new(ctx, "matcher_book_orders", labels, "Resting orders in the book");
        char side_labels[160];
        snprintf(side_labels, sizeof side_labels, "%s,side=\"buy\"", labels);
        m->book_m[i].bid_levels =
            arb_gauge_new(ctx, "matcher_book_levels", side_labels, "Price levels in the book");
        snprintf(side_labels, sizeof side_labels, "%s,side=\"sell\"", labels);
        m->book_m[i].ask_levels =
            arb_gauge_new(ctx, "matcher_book_levels", side_labels, "Price levels in the book");
    }
    for (unsigned r = 1; r <= ARB_R_REASON_MAX; r++)
        if (!m->m_rejects[r])
            return ARB_ENOMEM;
    if (!m->m_commands || !m->m_trades || !m->m_events || !m->m_md || !m->m_decode_errors ||
        !m->m_not_ours || !m->m_refused || !m->m_dropped || !m->m_backlog || !m->m_latency)
        return ARB_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (!m->book_m[i].orders || !m->book_m[i].bid_levels || !m->book_m[i].ask_levels)
            return ARB_ENOMEM;
    return ARB_OK;
}

static int matcher_start(void *self)
{
    matcher *m = self;
    int rc = make_metrics(m);
    if (rc)
        return rc;
    for (size_t i = 0; i < book_engine_book_count(m->engine); i++)
        update_book_metrics(m, book_engine_book_at(m->engine, i));
    if (arb_subscribe(m->ctx, ARB_TOPIC_ORDER_COMMANDS, on_command, m) < 0) {
        arb_error(m->ctx, "cannot subscribe to order_commands");
        return ARB_ERROR;
    }
    if (m->pending.records) /* output the previous instance could not hand over yet */
        m->retry_timer = arb_timer_start(m->ctx, RETRY_NS, 1, on_retry, m);
    if (arb_admin_route(m->ctx, "book", admin_book, m) < 0)
        arb_warn(m->ctx, "no admin route for the book; snapshots stay available on the bus");
    arb_info(m->ctx, "matching %zu books", book_engine_book_count(m->engine));
    return ARB_OK;
}

static void matcher_stop(void *self)
{
    matcher *m = self;
    /* The host removes subscriptions and timers; try once more to hand over
     * what still waits, then report what could not be. */
    if (m->pending.records) {
        backlog_flush(m);
        if (m->pending.records)
            arb_warn(m->ctx, "%llu output records still waiting for the bus at stop",
                     (unsigned long long)m->pending.records);
    }
    m->retry_timer = -1;
}

/* Saved state: "MTCH" | u32 format | u64 engine bytes | engine state
 * (book_engine_save) | u64 backlog records | the backlog's records. Output
 * still waiting for the bus travels with the books, so a reload loses
 * nothing. */
#define STATE_MAGIC "MTCH"
#define STATE_HDR 16u
#define MATCHER_STATE_VERSION 1u

static int matcher_save(void *self, void **bytes, size_t *len)
{
    matcher *m = self;
    backlog_flush(m);
    void *eng;
    size_t eng_len;
    int rc = book_engine_save(m->engine, NULL, NULL, &eng, &eng_len);
    if (rc)
        return rc;
    size_t waiting = m->pending.len - m->pending.head;
    size_t total = STATE_HDR + eng_len + 8 + waiting;
    uint8_t *p = malloc(total);
    if (!p) {
        free(eng);
        return ARB_ENOMEM;
    }
    memcpy(p, STATE_MAGIC, 4);
    arb_put_u32(p + 4, MATCHER_STATE_VERSION);
    arb_put_u64(p + 8, eng_len);
    memcpy(p + STATE_HDR, eng, eng_len);
    arb_put_u64(p + STATE_HDR + eng_len, m->pending.records);
    if (waiting)
        memcpy(p + STATE_HDR + eng_len + 8, m->pending.bytes + m->pending.head, waiting);
    free(eng);
    *bytes = p;
    *len = total;
    return ARB_OK;
}

/* Checks the saved backlog record by record before taking it. */
static int restore_backlog(matcher *m, const uint8_t *p, size_t len, uint64_t records)
{
    size_t off = 0;
    for (uint64_t i = 0; i < records; i++) {
        if (len - off < BACKLOG_HDR || len - off - BACKLOG_HDR < arb_get_u32(p + off + 2) ||
            arb_get_u16(p + off) >= ARB_TOPIC_MAX)
            return ARB_EREFUSED;
        off += BACKLOG_HDR + arb_get_u32(p + off + 2);
    }
    if (off != len || len > BACKLOG_CAP)
        return ARB_EREFUSED;
    if (len) {
        m->pending.bytes = malloc(len);
        if (!m->pending.bytes)
            return ARB_ENOMEM;
        memcpy(m->pending.bytes, p, len);
        m->pending.cap = m->pending.len = len;
        m->pending.records = records;
    }
    return ARB_OK;
}

static int matcher_restore(void *self, uint32_t state_version, const void *bytes, size_t len)
{
    matcher *m = self;
    const uint8_t *p = bytes;
    if (state_version != MATCHER_STATE_VERSION || len < STATE_HDR || memcmp(p, STATE_MAGIC, 4) ||
        arb_get_u32(p + 4) != BOOK_STATE_VERSION) {
        arb_warn(m->ctx,
                 "refusing matcher state version %u (this build reads %u with books "
                 "format %u)",
                 state_version, MATCHER_STATE_VERSION, BOOK_STATE_VERSION);
        return ARB_EREFUSED;
    }
    uint64_t eng_len = arb_get_u64(p + 8);
    if (eng_len > len - STATE_HDR || len - STATE_HDR - eng_len < 8)
        return ARB_EREFUSED;
    const uint8_t *tail = p + STATE_HDR + eng_len;
    size_t tail_len = len - STATE_HDR - eng_len - 8;
    /* The backlog is checked first: the engine restore is the last step. */
    backlog keep = m->pending;
    memset(&m->pending, 0, sizeof m->pending);
    int rc = restore_backlog(m, tail + 8, tail_len, arb_get_u64(tail));
    if (rc == ARB_OK)
        rc = book_engine_restore(m->engine, p + STATE_HDR, eng_len);
    if (rc) {
        free(m->pending.bytes);
        m->pending = keep;
        if (rc == ARB_EREFUSED)
            arb_warn(m->ctx, "refusing the saved books: they do not fit this configuration");
        return rc;
    }
    free(keep.bytes);
    return ARB_OK;
}

static const char *const matcher_publishes[] = {"order_events", "trade_executed", "market_data",
                                                NULL};
static const char *const matcher_subscribes[] = {"order_commands", NULL};

static const arb_plugin matcher_plugin = {
    .abi_version = ARB_ABI_VERSION,
    .size = sizeof(arb_plugin),
    .name = "matcher",
    .version = "1.0.0",
    .state_version = MATCHER_STATE_VERSION,
    .publishes = matcher_publishes,
    .subscribes = matcher_subscribes,
    .create = matcher_create,
    .start = matcher_start,
    .stop = matcher_stop,
    .destroy = matcher_destroy,
    .save = matcher_save,
    .restore = matcher_restore,
};

ARB_PLUGIN_DEFINE(matcher_plugin)

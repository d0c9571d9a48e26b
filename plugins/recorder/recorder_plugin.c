/*
 * recorder_plugin.c -- the recorder service: every trade_executed and
 * order_events record, once, into PostgreSQL.
 *
 * SDK glue only: reads config, subscribes, decodes each record, formats it
 * into the batcher (copy_rows.c, batcher.c), and lets the writer
 * (pg_writer.c) move batches to the database on the instance's event loop.
 * It turns the writer's state changes into one log line each, metrics and
 * the /plugins/<instance>/health route.
 *
 * Backpressure: the in-process bus cannot be paused by a plugin, so while
 * the database is down or slow the recorder holds up to max_buffered_rows
 * and beyond that refuses records, counting them (recorder_refused_total)
 * and saying so once per state change.
 *
 * Config ([plugin recorder]):
 *   dsn                 libpq connection string or URI. Empty: $ARB_PG_DSN,
 *                       else libpq's PG* environment variables.
 *   consumer            name of this recorder's positions (default: instance name)
 *   batch_rows          flush at this many rows (default 20000) ...
 *   flush_interval_ms   ... or when the oldest row is this old (default 100)
 *   max_buffered_rows   rows held while the database is away (default 1000000)
 *   backoff_min_ms / backoff_max_ms   reconnect backoff (100 / 5000)
 *   slow_ms             a flush running this long marks the database slow (2000)
 *   timeout_ms          a connect or flush running this long is retried (30000)
 *   drain_timeout_ms    at stop, wait this long to write what is held (2000)
 *   record_trades / record_order_events   (both true)
 */
#include <event2/buffer.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arb/instrument.h"
#include "arb/plugin.h"
#include "arb/wire.h"
#include "batcher.h"
#include "copy_rows.h"
#include "db_state.h"
#include "handover.h"
#include "pg_writer.h"
#include "schema.h"

#define NS_PER_MS 1000000LL

typedef struct recorder {
    arb_ctx *ctx;
    const char *dsn;
    const char *consumer;
    int64_t batch_rows, flush_interval_ms, max_buffered_rows;
    int64_t backoff_min_ms, backoff_max_ms, slow_ms, timeout_ms, drain_timeout_ms;
    int record_trades, record_order_events;

    arb_instrument_table instruments;
    const arb_instrument *last_instrument; /* most records repeat the previous one */
    rec_batcher batcher;
    rec_writer *writer;
    int timer;
    enum rec_db_state shown_state; /* last state logged */
    int refusing;                  /* the bound is reached and records are refused */
    uint64_t refused_at_full;      /* refused count when refusing began */
    int warned_unknown_instrument, warned_bad_record, warned_oom;
    int64_t rate_window_start_ns;
    uint64_t rate_window_rows;

    struct {
        arb_counter *received[REC_TOPICS];
        arb_counter *committed[REC_TOPICS];
        arb_counter *inserted[REC_TOPICS];
        arb_counter *refused;
        arb_counter *bad_records;
        arb_counter *unknown_instrument;
        arb_counter *batches;
        arb_counter *outages;
        arb_gauge *batch_rows;
        arb_gauge *buffered;
        arb_gauge *lag_ns;
        arb_gauge *rows_per_second;
        arb_gauge *db_state;
        arb_gauge *db_up;
        arb_histogram *flush_latency;
    } m;
} recorder;

/* ---- config ---- */

static int read_config(recorder *r)
{
    arb_ctx *c = r->ctx;
    int rc;
    if ((rc = arb_cfg_str(c, "dsn", "", &r->dsn)) ||
        (rc = arb_cfg_str(c, "consumer", arb_instance_name(c), &r->consumer)) ||
        (rc = arb_cfg_int(c, "batch_rows", 20000, 1, 1000000, &r->batch_rows)) ||
        (rc = arb_cfg_int(c, "flush_interval_ms", 100, 1, 60000, &r->flush_interval_ms)) ||
        (rc = arb_cfg_int(c, "max_buffered_rows", 1000000, 1, 100000000, &r->max_buffered_rows)) ||
        (rc = arb_cfg_int(c, "backoff_min_ms", 100, 1, 60000, &r->backoff_min_ms)) ||
        (rc = arb_cfg_int(c, "backoff_max_ms", 5000, 1, 600000, &r->backoff_max_ms)) ||
        (rc = arb_cfg_int(c, "slow_ms", 2000, 1, 3600000, &r->slow_ms)) ||
        (rc = arb_cfg_int(c, "timeout_ms", 30000, 100, 3600000, &r->timeout_ms)) ||
        (rc = arb_cfg_int(c, "drain_timeout_ms", 2000, 0, 600000, &r->drain_timeout_ms)) ||
        (rc = arb_cfg_bool(c, "record_trades", 1, &r->record_trades)) ||
        (rc = arb_cfg_bool(c, "record_order_events", 1, &r->record_order_events)))
        return rc;
    if (r->max_buffered_rows < r->batch_rows)
        return arb_cfg_reject(c, "max_buffered_rows",
                              "max_buffered_rows (%lld) must be at least batch_rows (%lld)",
                              (long long)r->max_buffered_rows, (long long)r->batch_rows);
    if (r->backoff_max_ms < r->backoff_min_ms)
        return arb_cfg_reject(c, "backoff_max_ms", "backoff_max_ms is below backoff_min_ms");
    for (const char *p = r->consumer; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return arb_cfg_reject(c, "consumer", "consumer has a control character");
    const char *dsn_key = "dsn";
    if (!*r->dsn) {
        const char *env = getenv("ARB_PG_DSN");
        r->dsn = env ? env : "";
        dsn_key = "dsn (from $ARB_PG_DSN)";
    }
    /* A malformed DSN is a config error now, not an outage later. */
    if (*r->dsn) {
        char *why = NULL;
        PQconninfoOption *opts = PQconninfoParse(r->dsn, &why);
        if (!opts) {
            rc = arb_cfg_reject(c, dsn_key, "not a libpq connection string or URI: %s",
                                why ? why : "out of memory");
            PQfreemem(why);
            return rc;
        }
        PQconninfoFree(opts);
    }
    return ARB_OK;
}

/* ---- metrics ---- */

static int make_metrics(recorder *r)
{
    arb_ctx *c = r->ctx;
    static const char *const topic_label[REC_TOPICS] = {"topic=\"trade_executed\"",
                                                        "topic=\"order_events\""};
    static const char *const table_label[REC_TOPICS] = {"table=\"trades\"",
                                                        "table=\"order_events\""};
    for (int t = 0; t < REC_TOPICS; t++) {
        r->m.received[t] = arb_counter_new(c, "recorder_received_total", topic_label[t],
                                           "Records taken from the bus");
        r->m.committed[t] = arb_counter_new(c, "recorder_rows_committed_total", table_label[t],
                                            "Rows in committed batches");
        r->m.inserted[t] = arb_counter_new(c, "recorder_rows_inserted_total", table_label[t],
                                           "Rows new to the table (the rest were duplicates)");
    }
    r->m.refused = arb_counter_new(c, "recorder_refused_total", NULL,
                                   "Records refused because max_buffered_rows was reached");
    r->m.bad_records =
        arb_counter_new(c, "recorder_bad_records_total", NULL, "Records that failed to decode");
    r->m.unknown_instrument =
        arb_counter_new(c, "recorder_unknown_instrument_total", NULL,
                        "Rows stored without decimals: instrument not in config");
    r->m.batches = arb_counter_new(c, "recorder_batches_total", NULL, "Batches committed");
    r->m.outages =
        arb_counter_new(c, "recorder_db_outages_total", NULL, "Times the database went down");
    r->m.batch_rows = arb_gauge_new(c, "recorder_batch_rows", NULL, "Rows in the last batch");
    r->m.buffered =
        arb_gauge_new(c, "recorder_buffered_rows", NULL, "Rows held, not yet committed");
    r->m.lag_ns = arb_gauge_new(c, "recorder_lag_ns", NULL, "Age of the oldest uncommitted row");
    r->m.rows_per_second =
        arb_gauge_new(c, "recorder_rows_per_second", NULL, "Rows committed per second");
    r->m.db_state = arb_gauge_new(c, "recorder_db_state", NULL, "0 starting, 1 up, 2 slow, 3 down");
    r->m.db_up = arb_gauge_new(c, "recorder_db_up", NULL, "1 while the database takes writes");
    r->m.flush_latency =
        arb_histogram_new(c, "recorder_flush_latency_ns", NULL, "Batch send to commit");
    for (int t = 0; t < REC_TOPICS; t++)
        if (!r->m.received[t] || !r->m.committed[t] || !r->m.inserted[t])
            return ARB_ENOMEM;
    if (!r->m.refused || !r->m.bad_records || !r->m.unknown_instrument || !r->m.batches ||
        !r->m.outages || !r->m.batch_rows || !r->m.buffered || !r->m.lag_ns ||
        !r->m.rows_per_second || !r->m.db_state || !r->m.db_up || !r->m.flush_latency)
        return ARB_ENOMEM;
    return ARB_OK;
}

static void update_gauges(recorder *r, int64_t now)
{
    arb_gauge_set(r->m.buffered, (int64_t)rec_batcher_pending(&r->batcher));
    int64_t oldest = rec_batcher_oldest_ns(&r->batcher);
    arb_gauge_set(r->m.lag_ns, oldest < 0 ? 0 : now - oldest);
    int64_t window = now - r->rate_window_start_ns;
    if (window >= 1000 * NS_PER_MS) {
        arb_gauge_set(r->m.rows_per_second,
                      (int64_t)(r->rate_window_rows * 1000000000ull / (uint64_t)window));
        r->rate_window_start_ns = now;
        r->rate_window_rows = 0;
    }
}

/* ---- writer hooks: one log line per state change ---- */

static void set_health(recorder *r, int healthy, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_health(recorder *r, int healthy, const char *fmt, ...)
{
    if (!r->ctx->api->set_health)
        return;
    char detail[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    arb_set_health(r->ctx, healthy, detail);
}

/* What /healthz says of us; refreshed on each state change and, while the
 * database is away, on every tick (the held count grows). */
static void show_health(recorder *r)
{
    const rec_db_health *h = rec_writer_health(r->writer);
    unsigned long long held = rec_batcher_pending(&r->batcher);
    if (h->state == REC_DB_DOWN)
        set_health(r, 0, "database down, holding %llu rows%s: %.60s", held,
                   r->refusing ? " (full, refusing)" : "", h->error);
    else if (h->state == REC_DB_SLOW)
        set_health(r, 1, "database slow, holding %llu rows", held);
    else if (h->state == REC_DB_STARTING)
        set_health(r, 0, "connecting to the database, holding %llu rows", held);
    else
        set_health(r, 1, "database up");
}

static void on_state(void *user, const rec_db_health *h)
{
    recorder *r = user;
    uint64_t held = rec_batcher_pending(&r->batcher);
    int64_t now = rec_clock_ns();
    arb_gauge_set(r->m.db_state, h->state);
    arb_gauge_set(r->m.db_up, h->state == REC_DB_UP || h->state == REC_DB_SLOW);
    switch (h->state) {
    case REC_DB_UP:
        if (r->shown_state == REC_DB_DOWN)
            arb_info(r->ctx, "database is back: catching up on %llu held rows",
                     (unsigned long long)held);
        else if (r->shown_state == REC_DB_SLOW)
            arb_info(r->ctx, "database is keeping up again");
        else
            arb_info(r->ctx, "database ready (schema version %d)", rec_schema_version());
        break;
    case REC_DB_SLOW:
        arb_warn(r->ctx, "database is slow: a flush has run over %lld ms; holding %llu rows",
                 (long long)r->slow_ms, (unsigned long long)held);
        break;
    case REC_DB_DOWN:
        arb_counter_add(r->m.outages, 1);
        arb_error(r->ctx,
                  "database is down: %s; holding %llu rows (up to %lld), retrying with backoff",
                  h->error, (unsigned long long)held, (long long)r->max_buffered_rows);
        break;
    default: break;
    }
    r->shown_state = h->state;
    show_health(r);
    update_gauges(r, now);
}

static void on_committed(void *user, const uint32_t rows[REC_TOPICS],
                         const uint64_t inserted[REC_TOPICS], int64_t latency_ns)
{
    recorder *r = user;
    uint32_t total = 0;
    for (int t = 0; t < REC_TOPICS; t++) {
        arb_counter_add(r->m.committed[t], rows[t]);
        arb_counter_add(r->m.inserted[t], inserted[t]);
        total += rows[t];
    }
    arb_counter_add(r->m.batches, 1);
    arb_gauge_set(r->m.batch_rows, total);
    arb_hist_observe(r->m.flush_latency, (uint64_t)latency_ns);
    r->rate_window_rows += total;
    if (r->refusing && rec_batcher_pending(&r->batcher) < r->batcher.max_rows) {
        r->refusing = 0;
        arb_info(r->ctx, "buffer has room again: accepting records (%llu were refused)",
                 (unsigned long long)(r->batcher.refused - r->refused_at_full));
    }
}

/* ---- records ---- */

static rec_scale scale_of(recorder *r, const char venue[ARB_VENUE_LEN],
                          const char symbol[ARB_SYMBOL_LEN])
{
    uint64_t key = arb_instrument_key(venue, symbol);
    const arb_instrument *in = r->last_instrument;
    if (!in || in->key != key) {
        in = NULL;
        for (size_t i = 0; i < r->instruments.count; i++)
            if (r->instruments.items[i].key == key) {
                in = &r->instruments.items[i];
                break;
            }
    }
    if (!in) {
        arb_counter_add(r->m.unknown_instrument, 1);
        if (!r->warned_unknown_instrument++) {
            char v[ARB_VENUE_LEN + 1], s[ARB_SYMBOL_LEN + 1];
            arb_warn(r->ctx,
                     "instrument %s:%s is not in the config: storing its rows without "
                     "decimals (further ones only counted)",
                     arb_fixstr(v, venue, ARB_VENUE_LEN), arb_fixstr(s, symbol, ARB_SYMBOL_LEN));
        }
        return (rec_scale){-1, -1};
    }
    r->last_instrument = in;
    return (rec_scale){(int8_t)in->price_decimals, (int8_t)in->qty_decimals};
}

static void bad_record(recorder *r, const char *topic)
{
    arb_counter_add(r->m.bad_records, 1);
    if (!r->warned_bad_record++)
        arb_warn(r->ctx,
                 "dropping a %s record that failed to decode: %s (further ones only "
                 "counted)",
                 topic, arb_wire_error());
}

static int take_room(recorder *r, enum rec_topic t, size_t max_len, char **room)
{
    int rc = rec_batcher_room(&r->batcher, t, max_len, room);
    if (rc == ARB_OK)
        return rc;
    if (rc == ARB_EFULL) {
        arb_counter_add(r->m.refused, 1);
        if (!r->refusing) {
            r->refusing = 1;
            r->refused_at_full = r->batcher.refused - 1;
            arb_error(r->ctx,
                      "buffer full (%lld rows) while the database is %s: refusing records "
                      "until it catches up",
                      (long long)r->max_buffered_rows,
                      rec_db_state_name(rec_writer_health(r->writer)->state));
        }
    } else {
        arb_counter_add(r->m.refused, 1);
        if (!r->warned_oom++)
            arb_error(r->ctx, "out of memory buffering a row (further ones only counted)");
    }
    return rc;
}

static void row_added(recorder *r)
{
    if (rec_batch_rows(r->batcher.open) >= r->batcher.batch_rows)
        rec_writer_kick(r->writer);
}

static void on_trade(void *user, const arb_msg *msg)
{
    recorder *r = user;
    arb_trade t;
    if (arb_trade_decode(msg->data, msg->len, &t)) {
        bad_record(r, "trade_executed");
        return;
    }
    arb_counter_add(r->m.received[REC_TOPIC_TRADES], 1);
    char *room;
    if (take_room(r, REC_TOPIC_TRADES, REC_TRADE_ROW_MAX, &room))
        return;
    size_t n = rec_trade_row(room, &t, scale_of(r, t.venue, t.symbol));
    rec_batcher_add(&r->batcher, REC_TOPIC_TRADES, n, rec_clock_ns());
    row_added(r);
}

static void on_order_event(void *user, const arb_msg *msg)
{
    recorder *r = user;
    arb_order_event e;
    if (arb_order_event_decode(msg->data, msg->len, &e)) {
        bad_record(r, "order_events");
        return;
    }
    arb_counter_add(r->m.received[REC_TOPIC_ORDER_EVENTS], 1);
    char *room;
    if (take_room(r, REC_TOPIC_ORDER_EVENTS, REC_ORDER_EVENT_ROW_MAX, &room))
        return;
    size_t n = rec_order_event_row(room, &e, scale_of(r, e.venue, e.symbol));
    rec_batcher_add(&r->batcher, REC_TOPIC_ORDER_EVENTS, n, rec_clock_ns());
    row_added(r);
}

static void on_tick(void *user)
{
    recorder *r = user;
    rec_writer_kick(r->writer);
    update_gauges(r, rec_clock_ns());
    if (rec_writer_health(r->writer)->state != REC_DB_UP)
        show_health(r);
}

/* ---- admin: GET /plugins/<instance>/health ---- */

static int on_health(void *user, const char *method, const char *path, const char *query,
                     struct evbuffer *out)
{
    (void)method, (void)path, (void)query;
    recorder *r = user;
    const rec_db_health *h = rec_writer_health(r->writer);
    int64_t now = rec_clock_ns();
    int64_t oldest = rec_batcher_oldest_ns(&r->batcher);
    json_t *j = json_pack(
        "{s:s, s:I, s:I, s:I, s:I, s:I, s:b}", "database", rec_db_state_name(h->state),
        "state_for_ms", (json_int_t)((now - h->since_ns) / NS_PER_MS), "buffered_rows",
        (json_int_t)rec_batcher_pending(&r->batcher), "max_buffered_rows",
        (json_int_t)r->max_buffered_rows, "refused_rows", (json_int_t)r->batcher.refused, "lag_ms",
        (json_int_t)(oldest < 0 ? 0 : (now - oldest) / NS_PER_MS), "refusing", r->refusing);
    if (!j)
        return 500;
    if (h->state == REC_DB_DOWN || h->failures)
        json_object_set_new(j, "last_error", json_string(h->error));
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!text)
        return 500;
    evbuffer_add_printf(out, "%s\n", text);
    free(text);
    return h->state == REC_DB_UP || h->state == REC_DB_SLOW ? 200 : 503;
}

/* ---- lifecycle ---- */

static void recorder_destroy(void *self)
{
    recorder *r = self;
    if (!r)
        return;
    rec_writer_free(r->writer);
    rec_batcher_free(&r->batcher);
    arb_instruments_free(&r->instruments);
    free(r);
}

static int recorder_create(arb_ctx *ctx, void **self)
{
    recorder *r = calloc(1, sizeof *r);
    if (!r)
        return ARB_ENOMEM;
    r->ctx = ctx;
    r->timer = -1;
    int rc;
    if ((rc = read_config(r)) || (rc = arb_instruments_load(ctx, &r->instruments)) ||
        (rc = make_metrics(r))) {
        recorder_destroy(r);
        return rc;
    }
    if (rec_batcher_init(&r->batcher, (uint32_t)r->batch_rows, r->flush_interval_ms * NS_PER_MS,
                         (uint64_t)r->max_buffered_rows)) {
        recorder_destroy(r);
        return ARB_ENOMEM;
    }
    *self = r;
    return ARB_OK;
}

static int recorder_start(void *self)
{
    recorder *r = self;
    rec_writer_cfg wc = {
        .dsn = r->dsn,
        .consumer = r->consumer,
        .backoff_min_ns = r->backoff_min_ms * NS_PER_MS,
        .backoff_max_ns = r->backoff_max_ms * NS_PER_MS,
        .slow_ns = r->slow_ms * NS_PER_MS,
        .timeout_ns = r->timeout_ms * NS_PER_MS,
    };
    rec_writer_hooks hooks = {.user = r, .state_changed = on_state, .committed = on_committed};
    r->writer = rec_writer_new(arb_event_base(r->ctx), &wc, &r->batcher, &hooks);
    if (!r->writer)
        return ARB_ENOMEM;
    r->rate_window_start_ns = rec_clock_ns();
    if (r->record_trades && arb_subscribe(r->ctx, ARB_TOPIC_TRADE_EXECUTED, on_trade, r) < 0)
        return ARB_ERROR;
    if (r->record_order_events &&
        arb_subscribe(r->ctx, ARB_TOPIC_ORDER_EVENTS, on_order_event, r) < 0)
        return ARB_ERROR;
    /* Half the interval, so no row waits much longer than the interval. */
    uint64_t tick = (uint64_t)r->flush_interval_ms * NS_PER_MS / 2;
    r->timer = arb_timer_start(r->ctx, tick ? tick : 1, 1, on_tick, r);
    if (r->timer < 0)
        return ARB_ERROR;
    if (arb_admin_route(r->ctx, "health", on_health, r) < 0)
        arb_warn(r->ctx, "cannot register the health route");
    show_health(r);
    rec_writer_start(r->writer);
    return ARB_OK;
}

static void recorder_stop(void *self)
{
    recorder *r = self;
    if (!r->writer)
        return;
    uint64_t left = rec_batcher_pending(&r->batcher);
    if (left && r->drain_timeout_ms > 0)
        left = rec_writer_drain(r->writer, r->drain_timeout_ms * NS_PER_MS);
    if (left)
        arb_warn(r->ctx, "stopping with %llu rows not written (database %s)",
                 (unsigned long long)left, rec_db_state_name(rec_writer_health(r->writer)->state));
    rec_writer_free(r->writer);
    r->writer = NULL;
}

/* Hot reload hands the held rows and their position to the new build
 * (handover.h). The old instance still drains what it holds when it stops;
 * rows written by both are stored once. */
static int recorder_save(void *self, void **bytes, size_t *len)
{
    recorder *r = self;
    return rec_handover_save(&r->batcher, bytes, len);
}

static int recorder_restore(void *self, uint32_t state_version, const void *bytes, size_t len)
{
    recorder *r = self;
    if (state_version != REC_HANDOVER_VERSION)
        return ARB_EREFUSED;
    return rec_handover_restore(&r->batcher, bytes, len, rec_clock_ns());
}

static const char *const publishes[] = {NULL};
static const char *const subscribes[] = {"trade_executed", "order_events", NULL};

static const arb_plugin recorder_plugin = {
    .abi_version = ARB_ABI_VERSION,
    .size = sizeof(arb_plugin),
    .name = "recorder",
    .version = "1.0.0",
    .state_version = REC_HANDOVER_VERSION,
    .publishes = publishes,
    .subscribes = subscribes,
    .create = recorder_create,
    .start = recorder_start,
    .stop = recorder_stop,
    .destroy = recorder_destroy,
    .save = recorder_save,
    .restore = recorder_restore,
};

ARB_PLUGIN_DEFINE(recorder_plugin)

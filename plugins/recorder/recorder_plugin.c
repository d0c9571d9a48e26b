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
 * Backpressure: while the database is down or slow the rows pile up in
 * memory; at high_water_rows the recorder pauses its delivery (arb_pause):
 * records then wait in the host's queues in order, publishers see ARB_EFULL
 * and Kafka partitions stop fetching. It resumes once the held rows are down
 * to low_water_rows. Nothing is refused or dropped on the way.
 *
 * Kafka: records that came through the Kafka transport carry their
 * partition and offset. Each batch stores the last offset it holds per
 * (topic, partition) in recorder_kafka_offsets, in the batch's transaction.
 * When a partition is assigned, the recorder seeks it to the stored offset
 * + 1 (or to the beginning when nothing is stored: the group's committed
 * offset can be ahead of the database, since the transport commits once a
 * record is handled, i.e. held here). Per partition it then takes offsets
 * in order and skips what it already took (a replay). Seeking needs the
 * recorder on thread 0 (the transport's loop), in a host where it is the
 * only consumer of its topics. In-process records (partition -1) are
 * positioned by count as before (batcher.h). Not handed over at hot reload:
 * the new build writes the adopted rows without their Kafka offsets (so the
 * stored offsets stay behind them: a crash then replays, never skips).
 *
 * Runs: every row and stored position carries the host's run (arb_run; 0
 * for a host from before runs), read at start. The writer keeps the run's
 * row in the runs table; this file adds the hosts and plugins that announce
 * themselves on service_registry during the run (run_members.c), and the
 * market's seed ([plugin generator] seed, when this host has it). A stored
 * row that differs from a new one under the same key is a conflict: counted,
 * logged per batch, and the instance unhealthy from then on.
 *
 * Config ([plugin recorder]):
 *   dsn                 libpq connection string or URI. Empty: $ARB_PG_DSN,
 *                       else libpq's PG* environment variables.
 *   consumer            name of this recorder's positions (default: instance name)
 *   batch_rows          flush at this many rows (default 20000) ...
 *   flush_interval_ms   ... or when the oldest row is this old (default 100)
 *   high_water_rows     held rows at which delivery pauses (default 1000000) ...
 *   low_water_rows      ... and at or below which it resumes (default half of it)
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
#include "run_members.h"
#include "schema.h"

#define NS_PER_MS 1000000LL

/* One Kafka partition of a recorded topic, as this instance sees it. */
typedef struct rec_part {
    int32_t topic; /* enum rec_topic */
    int32_t partition;
    int assigned;
    int64_t next;        /* offset of the next record to take; -1: whichever comes */
    int64_t stored_next; /* last offset stored in the database + 1; -1: none */
} rec_part;

typedef struct recorder {
    arb_ctx *ctx;
    const char *dsn;
    const char *consumer;
    int64_t batch_rows, flush_interval_ms, high_water_rows, low_water_rows;
    int64_t backoff_min_ms, backoff_max_ms, slow_ms, timeout_ms, drain_timeout_ms;
    int record_trades, record_order_events;
    arb_run_info run;    /* id 0: a host from before runs */
    const char *seed;    /* [plugin generator] seed, or NULL */
    rec_members members; /* the run's hosts and plugins, for its row */
    uint64_t conflicts_total;
    char first_conflict[96]; /* "<table> <key>" of the first conflict seen */

    arb_instrument_table instruments;
    const arb_instrument *last_instrument; /* most records repeat the previous one */
    rec_batcher batcher;
    rec_writer *writer;
    int timer;
    enum rec_db_state shown_state; /* last state logged */
    int paused;                    /* delivery paused at the high-water mark */
    int64_t paused_since_ns;
    int64_t pause_logged_ns; /* a slow database pauses per batch: log at most every 10 s */
    int pause_logged;        /* this pause was logged (so is its resume) */
    uint64_t pauses_unlogged;
    int stopping;
    int warned_unknown_instrument, warned_bad_record, warned_oom, warned_no_seek;

    /* Kafka partitions seen or assigned; positions_known once the database
     * answered the first setup (seeks before that go to the beginning). */
    rec_part *parts;
    size_t nparts, parts_cap;
    int positions_known;
    int partition_cb; /* arb_on_partitions accepted us (thread 0) */
    int64_t rate_window_start_ns;
    uint64_t rate_window_rows;

    struct {
        arb_counter *received[REC_TOPICS];
        arb_counter *committed[REC_TOPICS];
        arb_counter *inserted[REC_TOPICS];
        arb_counter *replayed[REC_TOPICS];
        arb_counter *conflicts[REC_TOPICS];
        arb_counter *pauses;
        arb_counter *oom_dropped;
        arb_counter *kafka_skipped;
        arb_counter *kafka_missing;
        arb_counter *kafka_seeks;
        arb_counter *bad_records;
        arb_counter *unknown_instrument;
        arb_counter *batches;
        arb_counter *copy_fallbacks;
        arb_counter *outages;
        arb_gauge *batch_rows;
        arb_gauge *buffered;
        arb_gauge *lag_ns;
        arb_gauge *rows_per_second;
        arb_gauge *db_state;
        arb_gauge *db_up;
        arb_gauge *paused;
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
        (rc = arb_cfg_int(c, "high_water_rows", 1000000, 1, 100000000, &r->high_water_rows)) ||
        (rc = arb_cfg_int(c, "low_water_rows", r->high_water_rows / 2, 0, 100000000,
                          &r->low_water_rows)) ||
        (rc = arb_cfg_int(c, "backoff_min_ms", 100, 1, 60000, &r->backoff_min_ms)) ||
        (rc = arb_cfg_int(c, "backoff_max_ms", 5000, 1, 600000, &r->backoff_max_ms)) ||
        (rc = arb_cfg_int(c, "slow_ms", 2000, 1, 3600000, &r->slow_ms)) ||
        (rc = arb_cfg_int(c, "timeout_ms", 30000, 100, 3600000, &r->timeout_ms)) ||
        (rc = arb_cfg_int(c, "drain_timeout_ms", 2000, 0, 600000, &r->drain_timeout_ms)) ||
        (rc = arb_cfg_bool(c, "record_trades", 1, &r->record_trades)) ||
        (rc = arb_cfg_bool(c, "record_order_events", 1, &r->record_order_events)))
        return rc;
    if (r->high_water_rows < r->batch_rows)
        return arb_cfg_reject(c, "high_water_rows",
                              "high_water_rows (%lld) must be at least batch_rows (%lld)",
                              (long long)r->high_water_rows, (long long)r->batch_rows);
    if (r->low_water_rows >= r->high_water_rows)
        return arb_cfg_reject(c, "low_water_rows",
                              "low_water_rows (%lld) must be below high_water_rows (%lld)",
                              (long long)r->low_water_rows, (long long)r->high_water_rows);
    /* The market's seed, for the runs table: only read, never required, so
     * it marks no error in a host without the generator. */
    if ((rc = arb_cfg_str_in(c, "plugin generator", "seed", NULL, &r->seed)))
        return rc;
    for (const char *p = r->seed; p && *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            arb_warn(c, "[plugin generator] seed has a control character: not stored");
            r->seed = NULL;
            break;
        }
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
        r->m.replayed[t] =
            arb_counter_new(c, "recorder_replayed_total", table_label[t],
                            "Rows identical to a stored row under their key: skipped");
        r->m.conflicts[t] = arb_counter_new(
            c, "recorder_conflicts_total", table_label[t],
            "Rows that differ from the stored row under their key: not stored, a defect");
    }
    r->m.pauses = arb_counter_new(c, "recorder_pauses_total", NULL,
                                  "Times delivery was paused at the high-water mark");
    r->m.oom_dropped = arb_counter_new(c, "recorder_oom_dropped_total", NULL,
                                       "Records dropped because memory ran out");
    r->m.kafka_skipped =
        arb_counter_new(c, "recorder_kafka_skipped_total", NULL,
                        "Kafka records skipped because their offset was already taken");
    r->m.kafka_missing =
        arb_counter_new(c, "recorder_kafka_missing_total", NULL,
                        "Kafka offsets expected but no longer in the log (retention)");
    r->m.kafka_seeks =
        arb_counter_new(c, "recorder_kafka_seeks_total", NULL, "Seeks to stored positions");
    r->m.bad_records =
        arb_counter_new(c, "recorder_bad_records_total", NULL, "Records that failed to decode");
    r->m.unknown_instrument =
        arb_counter_new(c, "recorder_unknown_instrument_total", NULL,
                        "Rows stored without decimals: instrument not in config");
    r->m.batches = arb_counter_new(c, "recorder_batches_total", NULL, "Batches committed");
    r->m.copy_fallbacks = arb_counter_new(
        c, "recorder_copy_fallbacks_total", NULL,
        "Batches, of those committed, whose direct COPY met a row already stored (a replay or "
        "a conflict) and that were written through the staging tables instead (batches)");
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
    r->m.paused = arb_gauge_new(c, "recorder_paused", NULL,
                                "1 while delivery is paused (held rows over the high-water mark)");
    r->m.flush_latency =
        arb_histogram_new(c, "recorder_flush_latency_ns", NULL, "Batch send to commit");
    for (int t = 0; t < REC_TOPICS; t++)
        if (!r->m.received[t] || !r->m.committed[t] || !r->m.inserted[t] || !r->m.replayed[t] ||
            !r->m.conflicts[t])
            return ARB_ENOMEM;
    if (!r->m.pauses || !r->m.oom_dropped || !r->m.kafka_skipped || !r->m.kafka_missing ||
        !r->m.kafka_seeks || !r->m.bad_records || !r->m.unknown_instrument || !r->m.batches ||
        !r->m.copy_fallbacks || !r->m.outages || !r->m.batch_rows || !r->m.buffered ||
        !r->m.lag_ns || !r->m.rows_per_second || !r->m.db_state || !r->m.db_up || !r->m.paused ||
        !r->m.flush_latency)
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
    const char *paused = r->paused ? " (paused)" : "";
    /* Conflicts first: data the system showed is not what was stored. */
    if (r->conflicts_total)
        set_health(r, 0, "%llu conflicting rows not stored (first: %.64s); database %s",
                   (unsigned long long)r->conflicts_total, r->first_conflict,
                   rec_db_state_name(h->state));
    else if (h->state == REC_DB_DOWN)
        set_health(r, 0, "database down, holding %llu rows%s: %.60s", held, paused, h->error);
    else if (h->state == REC_DB_SLOW)
        set_health(r, 1, "database slow, holding %llu rows%s", held, paused);
    else if (h->state == REC_DB_STARTING)
        set_health(r, 0, "connecting to the database, holding %llu rows%s", held, paused);
    else if (r->paused)
        set_health(r, 1, "database up, catching up on %llu rows (paused)", held);
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
                  "database is down: %s; holding %llu rows (pausing at %lld), retrying with "
                  "backoff",
                  h->error, (unsigned long long)held, (long long)r->high_water_rows);
        break;
    default: break;
    }
    r->shown_state = h->state;
    show_health(r);
    update_gauges(r, now);
}

/* Backpressure: one log line per change, metrics and health follow. */
static void set_paused(recorder *r, int paused)
{
    if (r->paused == paused)
        return;
    if (!r->ctx->api->pause) {
        if (!r->warned_oom++)
            arb_error(r->ctx, "this host cannot pause delivery: holding every row in memory");
        return;
    }
    if (arb_pause(r->ctx, paused) != ARB_OK) {
        arb_error(r->ctx, "cannot %s delivery", paused ? "pause" : "resume");
        return;
    }
    r->paused = paused;
    int64_t now = rec_clock_ns();
    unsigned long long held = rec_batcher_pending(&r->batcher);
    arb_gauge_set(r->m.paused, paused);
    if (paused) {
        r->paused_since_ns = now;
        arb_counter_add(r->m.pauses, 1);
        r->pause_logged = !r->pause_logged_ns || now - r->pause_logged_ns >= 10000 * NS_PER_MS;
        if (r->pause_logged) {
            r->pause_logged_ns = now;
            arb_warn(r->ctx,
                     "holding %llu rows (high-water mark %lld) while the database is %s: pausing "
                     "delivery until they are down to %lld (%llu more pauses since the last "
                     "report)",
                     held, (long long)r->high_water_rows,
                     rec_db_state_name(rec_writer_health(r->writer)->state),
                     (long long)r->low_water_rows, (unsigned long long)r->pauses_unlogged);
            r->pauses_unlogged = 0;
        } else {
            r->pauses_unlogged++;
        }
    } else if (r->pause_logged) {
        arb_info(r->ctx, "held rows down to %llu: resuming delivery (paused for %lld ms)", held,
                 (long long)((now - r->paused_since_ns) / NS_PER_MS));
    }
    show_health(r);
}

/* Rows under a stored key with other content: one line per batch and
 * table, with the first one's key and both versions. */
static void report_conflicts(recorder *r, enum rec_topic t, const rec_conflict *c)
{
    static const char *const table[REC_TOPICS] = {"trades", "order_events"};
    arb_counter_add(r->m.conflicts[t], c->count);
    if (!r->conflicts_total)
        snprintf(r->first_conflict, sizeof r->first_conflict, "%s %s", table[t], c->key);
    r->conflicts_total += c->count;
    arb_error(r->ctx,
              "%llu %s rows of run %016llx differ from the rows stored under their keys and "
              "were not stored (an id reused for different data); first: %s, stored %s, new %s",
              (unsigned long long)c->count, table[t], (unsigned long long)r->run.id, c->key,
              c->stored, c->staged);
}

static void on_committed(void *user, const rec_commit_report *rep)
{
    recorder *r = user;
    uint32_t total = 0;
    int conflicts = 0;
    for (int t = 0; t < REC_TOPICS; t++) {
        const rec_conflict *c = &rep->conflict[t];
        uint64_t skipped = rep->rows[t] - rep->inserted[t];
        arb_counter_add(r->m.committed[t], rep->rows[t]);
        arb_counter_add(r->m.inserted[t], rep->inserted[t]);
        arb_counter_add(r->m.replayed[t], skipped - (c->count < skipped ? c->count : skipped));
        if (c->count) {
            report_conflicts(r, (enum rec_topic)t, c);
            conflicts = 1;
        }
        total += rep->rows[t];
    }
    if (conflicts)
        show_health(r);
    arb_counter_add(r->m.batches, 1);
    if (rep->fallback)
        arb_counter_add(r->m.copy_fallbacks, 1);
    arb_gauge_set(r->m.batch_rows, total);
    arb_hist_observe(r->m.flush_latency, (uint64_t)rep->latency_ns);
    r->rate_window_rows += total;
    if (r->paused && rec_batcher_pending(&r->batcher) <= (uint64_t)r->low_water_rows)
        set_paused(r, 0);
}

/* ---- Kafka positions ---- */

static int rec_topic_of(int bus_topic)
{
    return bus_topic == ARB_TOPIC_TRADE_EXECUTED ? REC_TOPIC_TRADES
           : bus_topic == ARB_TOPIC_ORDER_EVENTS ? REC_TOPIC_ORDER_EVENTS
                                                 : -1;
}

static int bus_topic_of(enum rec_topic t)
{
    return t == REC_TOPIC_TRADES ? ARB_TOPIC_TRADE_EXECUTED : ARB_TOPIC_ORDER_EVENTS;
}

static rec_part *part_get(recorder *r, enum rec_topic t, int32_t partition)
{
    for (size_t i = 0; i < r->nparts; i++)
        if (r->parts[i].topic == (int32_t)t && r->parts[i].partition == partition)
            return &r->parts[i];
    if (r->nparts == r->parts_cap) {
        size_t cap = r->parts_cap ? 2 * r->parts_cap : 16;
        rec_part *grown = realloc(r->parts, cap * sizeof *grown);
        if (!grown)
            return NULL;
        r->parts = grown;
        r->parts_cap = cap;
    }
    rec_part *p = &r->parts[r->nparts++];
    *p = (rec_part){(int32_t)t, partition, 0, -1, -1};
    return p;
}

static void seek_part(recorder *r, rec_part *p, int64_t offset, const char *why)
{
    int rc = arb_seek(r->ctx, bus_topic_of((enum rec_topic)p->topic), p->partition, offset);
    arb_counter_add(r->m.kafka_seeks, 1);
    if (rc != ARB_OK) {
        arb_error(r->ctx, "cannot seek %s [%d] to %lld (%s): status %d", rec_topic_name(p->topic),
                  (int)p->partition, (long long)offset, why, rc);
        return;
    }
    if (offset == ARB_OFFSET_BEGINNING)
        arb_info(r->ctx, "%s [%d]: reading from the beginning (%s)", rec_topic_name(p->topic),
                 (int)p->partition, why);
    else
        arb_info(r->ctx, "%s [%d]: reading from offset %lld (%s)", rec_topic_name(p->topic),
                 (int)p->partition, (long long)offset, why);
}

/* A partition was assigned (before any of its records is delivered) or
 * taken away. */
static void on_partitions(void *user, int topic, int partition, int assigned)
{
    recorder *r = user;
    int t = rec_topic_of(topic);
    if (t < 0 || partition < 0 || r->stopping)
        return;
    rec_part *p = part_get(r, (enum rec_topic)t, partition);
    if (!p) {
        arb_error(r->ctx,
                  "out of memory tracking %s [%d]: delivery starts at the group's "
                  "offset",
                  rec_topic_name(t), partition);
        return;
    }
    p->assigned = assigned;
    if (!assigned)
        return;
    /* Where we left it (rows held or stored), or the database's position,
     * whichever is later; without either, the beginning: rows already in
     * the tables are then skipped by their keys. */
    int64_t at = p->next > p->stored_next ? p->next : p->stored_next;
    if (at >= 0) {
        p->next = at;
        seek_part(r, p, at, "the stored position");
    } else {
        p->next = -1;
        seek_part(r, p, ARB_OFFSET_BEGINNING,
                  r->positions_known ? "nothing stored for it"
                                     : "assigned before the database answered");
    }
}

/* The writer read the stored positions (on every connect). A partition
 * behind its stored position (read from the beginning because the database
 * had not answered yet, or stored further by another recorder of the group)
 * skips forward: the rows between are in the tables. */
static void on_kafka_positions(void *user, const rec_kpos *pos, size_t n)
{
    recorder *r = user;
    if (r->stopping)
        return;
    for (size_t i = 0; i < n; i++) {
        rec_part *p = part_get(r, (enum rec_topic)pos[i].topic, pos[i].partition);
        if (!p) {
            arb_error(r->ctx, "out of memory reading the stored Kafka positions");
            return;
        }
        if (pos[i].offset + 1 > p->stored_next)
            p->stored_next = pos[i].offset + 1;
    }
    r->positions_known = 1;
    for (size_t i = 0; i < r->nparts; i++) {
        rec_part *p = &r->parts[i];
        if (p->assigned && r->partition_cb && p->stored_next > p->next) {
            p->next = p->stored_next;
            seek_part(r, p, p->next, "skipping forward to the stored position");
        }
    }
}

/* Whether to take a record that came through Kafka: *part gets its
 * partition (NULL if memory ran out: take it, unfiltered). */
static int kafka_take(recorder *r, enum rec_topic t, const arb_msg *msg, rec_part **part)
{
    rec_part *p = *part = part_get(r, t, msg->partition);
    if (!r->partition_cb && !r->warned_no_seek++)
        arb_warn(r->ctx, "records come through Kafka but this recorder cannot seek (it must run "
                         "on thread 0): after a crash, records the group committed but the "
                         "database did not store are not read again");
    if (!p)
        return 1;
    p->assigned = 1; /* a record of it came: it is ours (also after a hot reload) */
    if (p->next < 0 || msg->offset == p->next)
        return 1;
    if (msg->offset < p->next) { /* taken already: a replay after a seek */
        arb_counter_add(r->m.kafka_skipped, 1);
        return 0;
    }
    arb_counter_add(r->m.kafka_missing, (uint64_t)(msg->offset - p->next));
    arb_error(r->ctx, "%s [%d]: offsets %lld..%lld are no longer in Kafka: recording from %lld",
              rec_topic_name(t), (int)msg->partition, (long long)p->next,
              (long long)msg->offset - 1, (long long)msg->offset);
    return 1;
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

/* Room for a row of topic t from msg; 0 when the record is not to be
 * recorded (a Kafka replay) or memory ran out. */
static int take_room(recorder *r, enum rec_topic t, const arb_msg *msg, size_t max_len, char **room,
                     rec_part **part)
{
    *part = NULL;
    if (msg->partition >= 0 && msg->offset >= 0 && !kafka_take(r, t, msg, part))
        return 0;
    if (rec_batcher_room(&r->batcher, t, max_len, room) == ARB_OK)
        return 1;
    arb_counter_add(r->m.oom_dropped, 1);
    if (!r->warned_oom++)
        arb_error(r->ctx, "out of memory buffering a row (further ones only counted)");
    return 0;
}

static void row_added(recorder *r, enum rec_topic t, const arb_msg *msg, rec_part *p)
{
    if (msg->partition >= 0 && msg->offset >= 0) {
        if (p)
            p->next = msg->offset + 1;
        if (rec_batcher_note_offset(&r->batcher, t, msg->partition, msg->offset) &&
            !r->warned_oom++)
            arb_error(r->ctx, "out of memory keeping a Kafka position (further ones only "
                              "counted)");
    }
    if (rec_batch_rows(r->batcher.open) >= r->batcher.batch_rows)
        rec_writer_kick(r->writer);
    if (!r->paused && rec_batcher_pending(&r->batcher) >= (uint64_t)r->high_water_rows)
        set_paused(r, 1);
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
    rec_part *p;
    if (!take_room(r, REC_TOPIC_TRADES, msg, REC_TRADE_ROW_MAX, &room, &p))
        return;
    size_t n = rec_trade_row(room, &t, scale_of(r, t.venue, t.symbol));
    rec_batcher_add(&r->batcher, REC_TOPIC_TRADES, n, rec_clock_ns());
    row_added(r, REC_TOPIC_TRADES, msg, p);
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
    rec_part *p;
    if (!take_room(r, REC_TOPIC_ORDER_EVENTS, msg, REC_ORDER_EVENT_ROW_MAX, &room, &p))
        return;
    size_t n = rec_order_event_row(room, &e, scale_of(r, e.venue, e.symbol));
    rec_batcher_add(&r->batcher, REC_TOPIC_ORDER_EVENTS, n, rec_clock_ns());
    row_added(r, REC_TOPIC_ORDER_EVENTS, msg, p);
}

/* service_registry: the hosts of this run and their plugins, for its row.
 * Announcements from before the run began (an older run's, still in a
 * Kafka log) are not this run's. */
static void on_service(void *user, const arb_msg *msg)
{
    recorder *r = user;
    arb_service svc;
    if (arb_service_decode(msg->data, msg->len, &svc)) {
        bad_record(r, "service_registry");
        return;
    }
    if (!r->run.id || svc.ts < r->run.started_at)
        return;
    const char *digest = msg->key == arb_host_id(r->ctx) ? r->run.config_digest : NULL;
    if (rec_members_apply(&r->members, &svc, digest) != ARB_OK && !r->warned_oom++)
        arb_error(r->ctx, "out of memory keeping the run's hosts (further ones only counted)");
}

static void on_tick(void *user)
{
    recorder *r = user;
    char *hosts, *plugins;
    if (rec_members_take(&r->members, &hosts, &plugins) > 0) {
        rec_writer_patch_run(r->writer, hosts, plugins);
        free(hosts);
        free(plugins);
    }
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
        "{s:I, s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:b, s:I}", "run_id", (json_int_t)r->run.id,
        "conflicts", (json_int_t)r->conflicts_total, "database", rec_db_state_name(h->state),
        "state_for_ms", (json_int_t)((now - h->since_ns) / NS_PER_MS), "buffered_rows",
        (json_int_t)rec_batcher_pending(&r->batcher), "high_water_rows",
        (json_int_t)r->high_water_rows, "low_water_rows", (json_int_t)r->low_water_rows, "lag_ms",
        (json_int_t)(oldest < 0 ? 0 : (now - oldest) / NS_PER_MS), "paused", r->paused,
        "paused_for_ms", (json_int_t)(r->paused ? (now - r->paused_since_ns) / NS_PER_MS : 0));
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
    return !r->conflicts_total && (h->state == REC_DB_UP || h->state == REC_DB_SLOW) ? 200 : 503;
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
    rec_members_free(&r->members);
    free(r->parts);
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

    if (rec_members_init(&r->members) ||
        rec_batcher_init(&r->batcher, (uint32_t)r->batch_rows, r->flush_interval_ms * NS_PER_MS)) {
        recorder_destroy(r);
        return ARB_ENOMEM;
    }
    *self = r;
    return ARB_OK;
}

static int recorder_start(void *self)
{
    recorder *r = self;
    /* The run is the host's from its start on (stored, for a resumed one). */
    if (arb_run(r->ctx, &r->run) != ARB_OK) {
        memset(&r->run, 0, sizeof r->run);
        arb_warn(r->ctx, "this host does not know runs: storing rows as run 0, where ids "
                         "repeated by a restart collide with older rows");
    }
    r->run.name[sizeof r->run.name - 1] = 0;
    r->run.config_digest[sizeof r->run.config_digest - 1] = 0;
    /* SQL literals cannot keep control characters (rec_sql_literal). */
    for (char *p = r->run.name; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    rec_writer_cfg wc = {
        .dsn = r->dsn,
        .consumer = r->consumer,
        .run = {.id = (int64_t)r->run.id,
                .started_at_ns = r->run.started_at,
                .name = r->run.name,
                .seed = r->seed,
                .config_digest = r->run.config_digest},
        .backoff_min_ns = r->backoff_min_ms * NS_PER_MS,
        .backoff_max_ns = r->backoff_max_ms * NS_PER_MS,
        .slow_ns = r->slow_ms * NS_PER_MS,
        .timeout_ns = r->timeout_ms * NS_PER_MS,
    };
    rec_writer_hooks hooks = {.user = r,
                              .state_changed = on_state,
                              .committed = on_committed,
                              .kafka_positions = on_kafka_positions};
    r->writer = rec_writer_new(arb_event_base(r->ctx), &wc, &r->batcher, &hooks);
    if (!r->writer)
        return ARB_ENOMEM;
    r->rate_window_start_ns = rec_clock_ns();
    /* Partition callbacks need thread 0 (ARB_ESTATE elsewhere); without
     * Kafka they simply never come. */
    r->partition_cb =
        r->ctx->api->on_partitions && arb_on_partitions(r->ctx, on_partitions, r) == ARB_OK;
    if (r->record_trades && arb_subscribe(r->ctx, ARB_TOPIC_TRADE_EXECUTED, on_trade, r) < 0)
        return ARB_ERROR;
    if (r->record_order_events &&
        arb_subscribe(r->ctx, ARB_TOPIC_ORDER_EVENTS, on_order_event, r) < 0)
        return ARB_ERROR;
    if (arb_subscribe(r->ctx, ARB_TOPIC_SERVICE_REGISTRY, on_service, r) < 0)
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
    /* Rows handed over at a hot reload may already be past the mark. */
    if (rec_batcher_pending(&r->batcher) >= (uint64_t)r->high_water_rows)
        set_paused(r, 1);
    return ARB_OK;
}

static void recorder_stop(void *self)
{
    recorder *r = self;
    if (!r->writer)
        return;
    r->stopping = 1;
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
static const char *const subscribes[] = {"trade_executed", "order_events", "service_registry",
                                         NULL};

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

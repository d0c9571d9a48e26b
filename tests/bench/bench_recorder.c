/*
 * bench_recorder.c -- the recorder's sustained rows/s from the bus into
 * PostgreSQL, against a plain `psql \copy` of the same rows into the same
 * table, in the same run, on the same throwaway server (scripts/with-pg.sh;
 * the binary re-runs itself under it when started plainly).
 *
 *   recorder: recorder.so in the real host (testhost), trade_executed
 *             records published on the in-process bus as fast as it takes
 *             them; the clock runs from the first publish until the last row
 *             is committed (COPY straight into trades, positions, COMMIT
 *             per batch; no row is stored already, so the staging fallback
 *             for replays never runs here).
 *   raw copy: the same rows, as the recorder formats them, written to a file
 *             and loaded with psql's \copy into the same (emptied) table.
 * Each runs three times, alternating, and the best run of each is reported
 * (the machine is shared; the best run is the least disturbed one).
 * ARB_BENCH_ROWS sets the row count (default 500000).
 */
#include <errno.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../plugins/recorder/copy_rows.h"
#include "../../plugins/recorder/pg_writer.h"
#include "../../plugins/recorder/schema.h"
#include "arb/wire.h"
#include "host.h"
#include "splitrig.h"
#include "testhost.h"

#define MS 1000000LL
#define SEC 1000000000LL
#define DB "bench_recorder"

static long long q_int(PGconn *c, const char *sql)
{
    long long v = rig_int(c, sql);
    if (v < 0)
        rig_die(sql, PQerrorMessage(c));
    return v;
}

static arb_trade make_trade(uint64_t i)
{
    static const char *const syms[] = {"BTCUSD", "ETHUSD", "SOLUSD", "XRPUSD"};
    arb_trade t;
    memset(&t, 0, sizeof t);
    arb_fixstr_set(t.venue, ARB_VENUE_LEN, i % 2 ? "XB" : "XA");
    arb_fixstr_set(t.symbol, ARB_SYMBOL_LEN, syms[i % 4]);
    t.trade_id = (i + 1) * 0x9E3779B97F4A7C15ull;
    t.price = 2500000 + (int64_t)(i % 10007);
    t.qty = 1 + (int64_t)(i % 997);
    t.buy_order_id = 2 * i + 1;
    t.sell_order_id = 2 * i + 2;
    t.buy_account = 1000 + i % 5000;
    t.sell_account = 1000 + (i * 7) % 5000;
    t.ts = 1700000000000000000LL + (int64_t)i * 20000;
    t.seq = i;
    t.aggressor = (uint8_t)(1 + i % 2);
    return t;
}

static const char config[] = "[plugin recorder]\nload = recorder.so\ndsn = dbname=" DB "\n"
                             "[instrument XA:BTCUSD]\nprice_decimals = 2\nqty_decimals = 3\n"
                             "[instrument XA:ETHUSD]\nprice_decimals = 2\nqty_decimals = 3\n"
                             "[instrument XA:SOLUSD]\nprice_decimals = 2\nqty_decimals = 3\n"
                             "[instrument XA:XRPUSD]\nprice_decimals = 4\nqty_decimals = 0\n"
                             "[instrument XB:BTCUSD]\nprice_decimals = 2\nqty_decimals = 3\n"
                             "[instrument XB:ETHUSD]\nprice_decimals = 2\nqty_decimals = 3\n"
                             "[instrument XB:SOLUSD]\nprice_decimals = 2\nqty_decimals = 3\n"
                             "[instrument XB:XRPUSD]\nprice_decimals = 4\nqty_decimals = 0\n";

static rec_scale scale_of(const arb_trade *t)
{
    return strcmp(t->symbol, "XRPUSD") ? (rec_scale){2, 3} : (rec_scale){4, 0};
}

/* ---- the recorder path ---- */

typedef struct publisher {
    arb_ctx *ctx;
    testhost *t;
    uint64_t next, n;
    int64_t started_ns;
} publisher;

static void publish_some(void *user)
{
    publisher *p = user;
    uint8_t buf[ARB_TRADE_LEN];
    if (!p->started_ns)
        p->started_ns = rec_clock_ns();
    /* Publish until the recorder's queue is full, then let the loop deliver. */
    for (int k = 0; k < 4096 && p->next < p->n; k++) {
        arb_trade tr = make_trade(p->next);
        uint32_t len = arb_trade_encode(&tr, buf, sizeof buf);
        if (arb_publish(p->ctx, ARB_TOPIC_TRADE_EXECUTED, arb_instrument_key(tr.venue, tr.symbol),
                        buf, len) != ARB_OK)
            break;
        p->next++;
    }
    if (p->next < p->n)
        arb_timer_start(p->ctx, 0, 0, publish_some, p);
}

static uint64_t metric(testhost *t, int kind, const char *name, const char *labels)
{
    arbh_metric *m = arbh_metric_get(testhost_host(t), "recorder", kind, name, labels, NULL);
    if (!m)
        rig_die("metric", name);
    if (kind == 'c')
        return atomic_load(&m->u.counter.value);
    if (kind == 'g')
        return (uint64_t)atomic_load(&m->u.gauge.value);
    return atomic_load(&m->u.hist.sum);
}

static int db_up(void *user) { return metric(user, 'g', "recorder_db_up", NULL) == 1; }

static int all_committed(void *user)
{
    publisher *p = user;
    return p->next >= p->n &&
           metric(p->t, 'c', "recorder_rows_committed_total", "table=\"trades\"") >= p->n;
}

typedef struct recorder_run {
    double rows_per_s;
    double batch_rows;
    double flush_ms;
} recorder_run;

static recorder_run run_recorder(uint64_t n)
{
    testhost *t = testhost_new(config);
    if (!t || testhost_start(t) != ARB_OK)
        rig_die("testhost", testhost_last_error());
    if (!testhost_run_until(t, db_up, t, 30 * SEC))
        rig_die("recorder", "the database did not come up");
    publisher p = {testhost_ctx(t), t, 0, n, 0};
    arb_timer_start(p.ctx, 0, 0, publish_some, &p);
    if (!testhost_run_until(t, all_committed, &p, 600 * SEC))
        rig_die("recorder", "rows were not all committed in time");
    int64_t elapsed = rec_clock_ns() - p.started_ns;
    recorder_run r;
    r.rows_per_s = (double)n * 1e9 / (double)elapsed;
    uint64_t batches = metric(t, 'c', "recorder_batches_total", NULL);
    r.batch_rows = batches ? (double)n / (double)batches : 0;
    r.flush_ms =
        batches ? (double)metric(t, 'h', "recorder_flush_latency_ns", NULL) / 1e6 / (double)batches
                : 0;
    if (metric(t, 'c', "recorder_oom_dropped_total", NULL))
        rig_die("recorder", "dropped rows");
    testhost_free(t);
    return r;
}

/* ---- the baseline ---- */

/* Each row carries the run first: trades.run_id is NOT NULL and part of the
 * key (the recorder adds it before each row as it streams its COPY). */
static double run_raw_copy(const char *file, uint64_t n)
{
    char cmd[PATH_MAX + 512];
    snprintf(cmd, sizeof cmd,
             "psql -X -q -v ON_ERROR_STOP=1 -d %s -c \"\\copy trades (run_id, %s) FROM '%s'\"", DB,
             rec_trade_columns, file);
    int64_t t0 = rec_clock_ns();
    if (system(cmd) != 0)
        rig_die("psql \\copy failed", cmd);
    int64_t elapsed = rec_clock_ns() - t0;
    return (double)n * 1e9 / (double)elapsed;
}

static void reset_tables(PGconn *c)
{
    rig_sql(c, "TRUNCATE trades, recorder_offsets");
    rig_sql(c, "VACUUM ANALYZE trades");
    rig_sql(c, "CHECKPOINT");
}

int main(void)
{
    rig_with_pg();
    uint64_t n = 500000;
    if (getenv("ARB_BENCH_ROWS"))
        n = strtoull(getenv("ARB_BENCH_ROWS"), NULL, 10);
    if (n == 0)
        rig_die("ARB_BENCH_ROWS", "must be positive");

    PGconn *admin = rig_db("postgres");
    rig_sql(admin, "DROP DATABASE IF EXISTS " DB " WITH (FORCE)");
    rig_sql(admin, "CREATE DATABASE " DB);
    PQfinish(admin);

    /* A first recorder run creates the schema (and warms the server). */
    PGconn *c = NULL;
    recorder_run best = {0, 0, 0};
    double best_raw = 0;
    char file[] = "/tmp/bench_recorder.XXXXXX";
    for (int round = 0; round < 3; round++) {
        if (c)
            reset_tables(c);
        recorder_run r = run_recorder(n);
        if (!c) {
            c = rig_db(DB);
            /* The same rows for the raw copy, as the recorder formats them,
             * each after the run the recorder stored them under. */
            long long run = q_int(c, "SELECT min(run_id) FROM trades");
            int fd = mkstemp(file);
            if (fd < 0)
                rig_die("mkstemp", strerror(errno));
            FILE *f = fdopen(fd, "w");
            char row[REC_TRADE_ROW_MAX];
            for (uint64_t i = 0; i < n; i++) {
                arb_trade t = make_trade(i);
                fprintf(f, "%lld\t", run);
                fwrite(row, 1, rec_trade_row(row, &t, scale_of(&t)), f);
            }
            fclose(f);
        }
        if (q_int(c, "SELECT count(*) FROM trades") != (long long)n)
            rig_die("recorder", "the table does not hold every row");
        if (r.rows_per_s > best.rows_per_s)
            best = r;
        reset_tables(c);
        double raw = run_raw_copy(file, n);
        if (q_int(c, "SELECT count(*) FROM trades") != (long long)n)
            rig_die("raw copy", "the table does not hold every row");
        if (raw > best_raw)
            best_raw = raw;
        fprintf(stderr, "bench_recorder: round %d: recorder %.0f rows/s, raw copy %.0f rows/s\n",
                round + 1, r.rows_per_s, raw);
    }
    PQfinish(c);
    unlink(file);

    printf("bench: recorder_rows_per_s %.0f rows/s\n", best.rows_per_s);
    printf("bench: recorder_raw_psql_copy_rows_per_s %.0f rows/s\n", best_raw);
    printf("bench: recorder_vs_raw_copy_ratio %.2f ratio\n", best.rows_per_s / best_raw);
    printf("bench: recorder_batch_rows_avg %.0f rows\n", best.batch_rows);
    printf("bench: recorder_flush_latency_avg %.1f ms\n", best.flush_ms);
    printf("bench: recorder_rows %llu rows\n", (unsigned long long)n);
    return 0;
}

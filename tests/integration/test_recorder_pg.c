/*
 * test_recorder_pg.c -- the recorder against a real throwaway PostgreSQL
 * (scripts/with-pg.sh; the binary re-runs itself under it when started
 * plainly). Each test gets its own database.
 *
 * Two harnesses: the writer and batcher driven directly on the test's own
 * event base (for crashes at arbitrary points and exact state sequences),
 * and recorder.so loaded into the real host (tests/support/testhost.h) fed
 * through the bus (for the outage, hot reload and clean stop). The expected
 * contents are computed here from the generated records, independently of
 * the recorder's own row formatting, and compared by count and md5 digest.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <time.h>

#include "../../plugins/recorder/batcher.h"
#include "../../plugins/recorder/copy_rows.h"
#include "../../plugins/recorder/pg_writer.h"
#include "../../plugins/recorder/run_members.h"
#include "arb/wire.h"
#include "host.h"
#include "test_recorder_support.h"
#include "testhost.h"

#define MS 1000000LL
#define SEC 1000000000LL
/* The run of the rows harness 1 writes. */
#define HARNESS_RUN 7

/* ---- the records and what the tables must hold ---- */

static const char *const venues[] = {"XA", "XB"};
static const char *const symbols[] = {"BTCUSD", "ETHUSD", "A\\B"};

static arb_trade make_trade(uint64_t i) { return rec_test_trade(i, symbols); }

static arb_order_event make_event(uint64_t i)
{
    arb_order_event e;
    memset(&e, 0, sizeof e);
    e.kind = (uint8_t)(1 + i % 7);
    e.reason = e.kind == ARB_EV_REJECTED ? ARB_R_PRICE_BAND : 0;
    e.side = (uint8_t)(1 + i % 2);
    e.type = ARB_ORD_LIMIT;
    e.tif = ARB_TIF_GTC;
    arb_fixstr_set(e.venue, ARB_VENUE_LEN, venues[i % 2]);
    arb_fixstr_set(e.symbol, ARB_SYMBOL_LEN, symbols[i % 3]);
    e.order_id = i / 3 + 1;
    e.account = 100 + i % 7;
    e.price = 10000;
    e.qty = 5;
    e.seq = i + 1;
    e.ts = 1700000000000000000LL + (int64_t)i;
    e.trade_id = e.kind == ARB_EV_FILLED ? i + 1 : 0;
    return e;
}

/* The config the testhost tests give the recorder: known decimals for some
 * instruments, none for A\B (stored without decimals). */
static rec_scale scale_of(const arb_trade *t)
{
    if (!strcmp(t->symbol, "A\\B"))
        return (rec_scale){-1, -1};
    if (!strcmp(t->venue, "XA"))
        return (rec_scale){2, 3};
    return (rec_scale){4, 0};
}

static const char instruments_ini[] =
    "[instrument XA:BTCUSD]\nprice_decimals = 2\nqty_decimals = 3\n"
    "[instrument XA:ETHUSD]\nprice_decimals = 2\nqty_decimals = 3\n"
    "[instrument XB:BTCUSD]\nprice_decimals = 4\nqty_decimals = 0\n"
    "[instrument XB:ETHUSD]\nprice_decimals = 4\nqty_decimals = 0\n";

/* The trades table holds exactly trades 0..n-1: count and digest. */
static void assert_trades_exactly(PGconn *c, uint64_t n)
{
    arb_trade *t = malloc(n * sizeof *t);
    for (uint64_t i = 0; i < n; i++)
        t[i] = make_trade(i);
    assert_trades_table_holds(c, t, n, scale_of);
    free(t);
}

/* ---- harness 1: writer + batcher on the test's own loop ---- */

typedef struct harness {
    struct event_base *base;
    struct event *kick;
    rec_batcher b;
    rec_writer *w;
    enum rec_db_state states[64];
    int nstates;
    uint64_t rows[REC_TOPICS], inserted[REC_TOPICS], conflicts[REC_TOPICS], batches;
    uint64_t fallbacks; /* batches sent again the staging way */
    rec_conflict last_conflict[REC_TOPICS];
} harness;

static void h_state(void *user, const rec_db_health *dh)
{
    harness *h = user;
    if (h->nstates < 64)
        h->states[h->nstates++] = dh->state;
}

static void h_committed(void *user, const rec_commit_report *rep)
{
    harness *h = user;
    for (int t = 0; t < REC_TOPICS; t++) {
        h->rows[t] += rep->rows[t];
        h->inserted[t] += rep->inserted[t];
        h->conflicts[t] += rep->conflict[t].count;
        if (rep->conflict[t].count)
            h->last_conflict[t] = rep->conflict[t];
    }
    h->batches++;
    h->fallbacks += rep->fallback != 0;
}

static void h_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    harness *h = arg;
    rec_writer_kick(h->w);
}

static void harness_open(harness *h, const char *db, uint32_t batch_rows, int64_t slow_ns,
                         int64_t timeout_ns)
{
    memset(h, 0, sizeof *h);
    h->base = event_base_new();
    rec_batcher_init(&h->b, batch_rows, 5 * MS);
    char dsn[128];
    snprintf(dsn, sizeof dsn, "dbname=%s", db);
    rec_writer_cfg cfg = {.dsn = dsn,
                          .consumer = "rec",
                          .run = {.id = HARNESS_RUN, .name = "harness", .config_digest = ""},
                          .backoff_min_ns = 20 * MS,
                          .backoff_max_ns = 200 * MS,
                          .slow_ns = slow_ns,
                          .timeout_ns = timeout_ns};
    rec_writer_hooks hooks = {.user = h, .state_changed = h_state, .committed = h_committed};
    h->w = rec_writer_new(h->base, &cfg, &h->b, &hooks);
    assert_non_null(h->w);
    h->kick = event_new(h->base, -1, EV_PERSIST, h_kick, h);
    struct timeval tv = {0, 2000};
    event_add(h->kick, &tv);
    rec_writer_start(h->w);
}

/* Frees everything, like a process dying: held rows are gone, and an open
 * connection is simply dropped. */
static void harness_close(harness *h)
{
    rec_writer_free(h->w);
    event_free(h->kick);
    rec_batcher_free(&h->b);
    event_base_free(h->base);
}

static int harness_run_until(harness *h, int (*done)(harness *), int64_t max_ns)
{
    int64_t deadline = rec_clock_ns() + max_ns;
    while (!done(h) && rec_clock_ns() < deadline)
        event_base_loop(h->base, EVLOOP_ONCE);
    return done(h);
}

static int is_up(harness *h) { return rec_writer_health(h->w)->state == REC_DB_UP; }
static int all_committed(harness *h) { return rec_batcher_pending(&h->b) == 0 && is_up(h); }

static void feed_trades(harness *h, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i < to; i++) {
        arb_trade t = make_trade(i);
        char *room;
        assert_int_equal(rec_batcher_room(&h->b, REC_TOPIC_TRADES, REC_TRADE_ROW_MAX, &room),
                         ARB_OK);
        rec_batcher_add(&h->b, REC_TOPIC_TRADES, rec_trade_row(room, &t, scale_of(&t)),
                        rec_clock_ns());
    }
}

static void feed_events(harness *h, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i < to; i++) {
        arb_order_event e = make_event(i);
        char *room;
        assert_int_equal(
            rec_batcher_room(&h->b, REC_TOPIC_ORDER_EVENTS, REC_ORDER_EVENT_ROW_MAX, &room),
            ARB_OK);
        rec_batcher_add(&h->b, REC_TOPIC_ORDER_EVENTS,
                        rec_order_event_row(room, &e, (rec_scale){2, 3}), rec_clock_ns());
    }
}

/* ---- tests: schema ---- */

static void migrations_apply_once_and_rerun_as_no_ops(void **state)
{
    (void)state;
    fresh_db("rec_migrate");
    harness h;
    harness_open(&h, "rec_migrate", 100, 10 * SEC, 20 * SEC);
    assert_true(harness_run_until(&h, is_up, 20 * SEC));
    harness_close(&h);
    PGconn *c = connect_db("rec_migrate");
    size_t n_migrations;
    rec_migrations(&n_migrations);
    assert_int_equal(q_int(c, "SELECT count(*) FROM schema_migrations"), (int)n_migrations);
    char *first = q_str(c, "SELECT string_agg(version || '@' || applied_at, ',' ORDER BY version) "
                           "FROM schema_migrations");
    /* A second recorder (a restart) finds everything in place. */
    harness_open(&h, "rec_migrate", 100, 10 * SEC, 20 * SEC);
    assert_true(harness_run_until(&h, is_up, 20 * SEC));
    harness_close(&h);
    char *again = q_str(c, "SELECT string_agg(version || '@' || applied_at, ',' ORDER BY version) "
                           "FROM schema_migrations");
    assert_string_equal(first, again);
    free(first);
    free(again);
    /* Exact decimals through the view. */
    exec_ok(c, "INSERT INTO trades VALUES (1, 'XA', 'BTCUSD', now(), 0, 10005, 1500, 2, 3, 'buy', "
               "1, 2, 3, 4, 5, 8)");
    char *px = q_str(c, "SELECT price || ' ' || qty FROM trades_decimal WHERE trade_id = 1");
    assert_string_equal(px, "100.05 1.500");
    free(px);
    PQfinish(c);
}

/* A database recorded before runs (schema version 3, with rows and
 * positions) is migrated: its rows become run 0 and keep their content, and
 * the new run stores its own rows beside them, the same ids included, from
 * a position of its own. */
static void database_from_before_runs_migrates_its_rows_to_run_0(void **state)
{
    (void)state;
    fresh_db("rec_upgrade");
    PGconn *c = connect_db("rec_upgrade");
    rec_sql old = {0};
    assert_int_equal(rec_migrate_sql(&old, 3), 0);
    exec_ok(c, old.text);
    rec_sql_free(&old);
    assert_int_equal(q_int(c, "SELECT max(version) FROM schema_migrations"), 3);
    /* Trade 0's id with other content, an order event, and positions. */
    arb_trade t0 = make_trade(0);
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO trades VALUES (%lld, 'XA', 'BTCUSD', now(), 1, 777, 9, 2, 3, 'sell', "
             "1, 2, 3, 4, 5)",
             (long long)t0.trade_id);
    exec_ok(c, sql);
    exec_ok(c, "INSERT INTO order_events (order_id, seq, account, event_at, ts_ns, kind, "
               "post_only, price, qty, leaves_qty, filled_qty, last_px, last_qty, client_ref) "
               "VALUES (1, 1, 100, now(), 0, 'accepted', false, 1, 1, 1, 0, 0, 0, 0)");
    exec_ok(c, "INSERT INTO recorder_offsets (consumer, topic, partition, next_offset) VALUES "
               "('rec', 'trade_executed', 0, 5000)");
    exec_ok(c, "INSERT INTO recorder_kafka_offsets (consumer, topic, partition, last_offset) "
               "VALUES ('rec', 'trade_executed', 0, 4999)");

    harness h;
    harness_open(&h, "rec_upgrade", 100, 10 * SEC, 20 * SEC);
    assert_true(harness_run_until(&h, is_up, 20 * SEC));
    /* A position of another run is not this run's. */
    assert_int_equal(h.b.base[REC_TOPIC_TRADES], 0);
    feed_trades(&h, 0, 300);
    feed_events(&h, 0, 30);
    assert_true(harness_run_until(&h, all_committed, 30 * SEC));
    assert_int_equal(h.inserted[REC_TOPIC_TRADES], 300);
    assert_int_equal(h.inserted[REC_TOPIC_ORDER_EVENTS], 30);
    harness_close(&h);

    assert_int_equal(q_int(c, "SELECT max(version) FROM schema_migrations"), rec_schema_version());
    assert_int_equal(q_int(c, "SELECT count(*) FROM trades WHERE run_id = 0"), 1);
    assert_int_equal(q_int(c, "SELECT count(*) FROM trades WHERE run_id = 7"), 300);
    snprintf(sql, sizeof sql, "SELECT price FROM trades WHERE run_id = 0 AND trade_id = %lld",
             (long long)t0.trade_id);
    assert_int_equal(q_int(c, sql), 777);
    snprintf(sql, sizeof sql, "SELECT price FROM trades WHERE run_id = 7 AND trade_id = %lld",
             (long long)t0.trade_id);
    assert_int_equal(q_int(c, sql), t0.price);
    assert_int_equal(q_int(c, "SELECT count(*) FROM order_events WHERE run_id = 0"), 1);
    assert_int_equal(q_int(c, "SELECT count(*) FROM order_events WHERE run_id = 7"), 30);
    assert_int_equal(q_int(c, "SELECT next_offset FROM recorder_offsets WHERE run_id = 0 AND "
                              "topic = 'trade_executed'"),
                     5000);
    assert_int_equal(q_int(c, "SELECT next_offset FROM recorder_offsets WHERE run_id = 7 AND "
                              "topic = 'trade_executed'"),
                     300);
    assert_int_equal(q_int(c, "SELECT run_id FROM recorder_kafka_offsets"), 0);
    assert_int_equal(q_int(c, "SELECT count(*) FROM trades_decimal WHERE run_id = 7"), 300);
    /* New rows must say their run. */
    PGresult *r = PQexec(c, "INSERT INTO trades (trade_id, venue, symbol, executed_at, ts_ns, "
                            "price, qty, aggressor, buy_order_id, sell_order_id, buy_account, "
                            "sell_account, book_seq) VALUES (1, 'XA', 'BTCUSD', now(), 0, 1, 1, "
                            "'buy', 1, 2, 3, 4, 5)");
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    PQclear(r);
    PQfinish(c);
}

/* Migration 7: order ids stored as negative bigints before it (ids at or
 * above 2^63) become the unsigned numbers the API gives, and a new row with
 * such an id is found by it. */
static void order_ids_above_2_63_are_found_by_the_api_id_after_migration_7(void **state)
{
    (void)state;
    fresh_db("rec_ids");
    PGconn *c = connect_db("rec_ids");
    rec_sql old = {0};
    assert_int_equal(rec_migrate_sql(&old, 5), 0);
    exec_ok(c, old.text);
    rec_sql_free(&old);
    exec_ok(c, "INSERT INTO order_events (run_id, order_id, seq, account, event_at, ts_ns, kind, "
               "post_only, price, qty, leaves_qty, filled_qty, last_px, last_qty, client_ref) "
               "VALUES (0, -1, 1, 100, now(), 0, 'accepted', false, 1, 1, 1, 0, 0, 0, 0)");
    exec_ok(c, "INSERT INTO trades (run_id, trade_id, venue, symbol, executed_at, ts_ns, price, "
               "qty, aggressor, buy_order_id, sell_order_id, buy_account, sell_account, book_seq) "
               "VALUES (0, 1, 'XA', 'BTCUSD', now(), 0, 1, 1, 'buy', -9223372036854775807, 5, 3, "
               "4, 1)");
    harness h;
    harness_open(&h, "rec_ids", 100, 10 * SEC, 20 * SEC);
    assert_true(harness_run_until(&h, is_up, 20 * SEC));
    harness_close(&h);
    assert_int_equal(
        q_int(c, "SELECT count(*) FROM order_events WHERE order_id = 18446744073709551615"), 1);
    assert_int_equal(
        q_int(c, "SELECT count(*) FROM trades WHERE buy_order_id = 9223372036854775809"), 1);
    assert_int_equal(q_int(c, "SELECT count(*) FROM trades_decimal WHERE sell_order_id = 5"), 1);
    /* Out of range is refused, not wrapped. */
    PGresult *r = PQexec(c, "INSERT INTO order_events (run_id, order_id, seq, account, event_at, "
                            "ts_ns, kind, post_only, price, qty, leaves_qty, filled_qty, "
                            "last_px, last_qty, client_ref) VALUES (1, 18446744073709551616, 1, "
                            "1, now(), 0, 'accepted', false, 1, 1, 1, 0, 0, 0, 0)");
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    PQclear(r);
    PQfinish(c);
}

/* The queries the README shows are served by indexes, not table scans. */
static void readme_queries_use_their_indexes(void **state)
{
    (void)state;
    fresh_db("rec_index");
    harness h;
    harness_open(&h, "rec_index", 100, 10 * SEC, 20 * SEC);
    assert_true(harness_run_until(&h, is_up, 20 * SEC));
    harness_close(&h);
    PGconn *c = connect_db("rec_index");
    exec_ok(c, "SET enable_seqscan = off");
    char *plan =
        q_str(c, "EXPLAIN (FORMAT JSON) SELECT * FROM trades WHERE run_id = 7 AND venue = 'XA' "
                 "AND symbol = 'BTCUSD' AND executed_at >= now() - interval '1 hour' "
                 "ORDER BY executed_at");
    assert_non_null(strstr(plan, "trades_instrument_time_idx"));
    free(plan);
    plan = q_str(
        c, "EXPLAIN (FORMAT JSON) SELECT * FROM order_events WHERE run_id = 7 AND account = 42 "
           "ORDER BY event_at DESC LIMIT 100");
    assert_non_null(strstr(plan, "order_events_account_time_idx"));
    free(plan);
    plan = q_str(
        c, "EXPLAIN (FORMAT JSON) SELECT * FROM order_events WHERE run_id = 7 AND order_id = 7 "
           "ORDER BY seq");
    assert_non_null(strstr(plan, "order_events_pkey"));
    free(plan);
    PQfinish(c);
}

/* ---- tests: writer ---- */

static void replayed_records_are_stored_once(void **state)
{
    (void)state;
    uint64_t n = 3000 / (uint64_t)scale_down();
    fresh_db("rec_replay");
    harness h;
    harness_open(&h, "rec_replay", 700, 10 * SEC, 20 * SEC);
    feed_trades(&h, 0, n);
    feed_events(&h, 0, n / 2);
    assert_true(harness_run_until(&h, all_committed, 30 * SEC));
    assert_int_equal(h.inserted[REC_TOPIC_TRADES], n);
    assert_int_equal(h.inserted[REC_TOPIC_ORDER_EVENTS], n / 2);
    feed_trades(&h, 0, n); /* the same records again */
    feed_events(&h, 0, n / 2);
    assert_true(harness_run_until(&h, all_committed, 30 * SEC));
    assert_int_equal(h.rows[REC_TOPIC_TRADES], 2 * n);
    assert_int_equal(h.inserted[REC_TOPIC_TRADES], n);
    assert_int_equal(h.inserted[REC_TOPIC_ORDER_EVENTS], n / 2);
    harness_close(&h);
    PGconn *c = connect_db("rec_replay");
    assert_trades_exactly(c, n);
    assert_int_equal(q_int(c, "SELECT count(*) FROM order_events"), (long long)(n / 2));
    PQfinish(c);
}

/* A batch far bigger than one COPY chunk (the writer streams it in pieces,
 * adding the run id before each row, pieces ending mid-row): every row is
 * stored as formatted, the direct way, no fallback. */
static void batch_of_many_copy_chunks_is_stored_exactly(void **state)
{
    (void)state;
    const uint64_t n = 6000; /* ~1 MB of COPY text: several 256 KiB chunks */
    fresh_db("rec_chunks");
    harness h;
    harness_open(&h, "rec_chunks", (uint32_t)n, 10 * SEC, 20 * SEC);
    feed_trades(&h, 0, n);
    assert_true(harness_run_until(&h, all_committed, 60 * SEC));
    assert_int_equal(h.batches, 1);
    assert_int_equal(h.inserted[REC_TOPIC_TRADES], n);
    assert_int_equal(h.fallbacks, 0);
    harness_close(&h);
    PGconn *c = connect_db("rec_chunks");
    assert_trades_exactly(c, n);
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM trades WHERE run_id = %d", HARNESS_RUN);
    assert_int_equal(q_int(c, sql), (long long)n);
    PQfinish(c);
}

/* A source read again from the start: the first replayed batch fails its
 * direct COPY and falls back to staging; the ones after it go the staging
 * way at once (a replay seldom ends after one batch), counted as replays,
 * not as more fallbacks; new rows after the replay are all stored. */
static void replayed_batches_after_a_fallback_are_staged_at_once(void **state)
{
    (void)state;
    const uint64_t n = 2800 / (uint64_t)scale_down(); /* 4 batches of 700 (1 under ASan) */
    fresh_db("rec_restaged");
    harness h;
    harness_open(&h, "rec_restaged", 700, 10 * SEC, 20 * SEC);
    feed_trades(&h, 0, n);
    assert_true(harness_run_until(&h, all_committed, 30 * SEC));
    assert_int_equal(h.fallbacks, 0);
    feed_trades(&h, 0, n); /* the same records again */
    assert_true(harness_run_until(&h, all_committed, 30 * SEC));
    assert_int_equal(h.fallbacks, 1);
    assert_int_equal(h.inserted[REC_TOPIC_TRADES], n);
    feed_trades(&h, n, 2 * n);
    assert_true(harness_run_until(&h, all_committed, 30 * SEC));
    assert_int_equal(h.fallbacks, 1);
    assert_int_equal(h.rows[REC_TOPIC_TRADES], 3 * n);
    assert_int_equal(h.inserted[REC_TOPIC_TRADES], 2 * n);
    harness_close(&h);
    PGconn *c = connect_db("rec_restaged");
    assert_trades_exactly(c, 2 * n);
    PQfinish(c);
}

/* Fees arrive on the trade (each side's) and on each fill's event (with
 * its liquidity); a rebate is stored negative, the decimal view scales it. */
static void fees_are_stored_with_trades_and_fills(void **state)
{
    (void)state;
    fresh_db("rec_fees");
    harness h;
    harness_open(&h, "rec_fees", 100, 10 * SEC, 20 * SEC);
    arb_trade t = make_trade(0); /* XA:BTCUSD, 2 price decimals */
    t.buy_fee = 41, t.sell_fee = -3;
    char *room;
    assert_int_equal(rec_batcher_room(&h.b, REC_TOPIC_TRADES, REC_TRADE_ROW_MAX, &room), ARB_OK);
    rec_batcher_add(&h.b, REC_TOPIC_TRADES, rec_trade_row(room, &t, scale_of(&t)), rec_clock_ns());
    arb_order_event e = make_event(3);
    e.fee = 41, e.liquidity = ARB_LIQ_TAKER;
    assert_int_equal(rec_batcher_room(&h.b, REC_TOPIC_ORDER_EVENTS, REC_ORDER_EVENT_ROW_MAX, &room),
                     ARB_OK);
    rec_batcher_add(&h.b, REC_TOPIC_ORDER_EVENTS, rec_order_event_row(room, &e, (rec_scale){2, 3}),
                    rec_clock_ns());
    feed_events(&h, 4, 5); /* not a fill: no fee, no liquidity */
    assert_true(harness_run_until(&h, all_committed, 30 * SEC));
    harness_close(&h);
    PGconn *c = connect_db("rec_fees");
    assert_int_equal(q_int(c, "SELECT buy_fee FROM trades"), 41);
    assert_int_equal(q_int(c, "SELECT sell_fee FROM trades"), -3);
    char *v = q_str(c, "SELECT sell_fee::text FROM trades_decimal");
    assert_string_equal(v, "-0.03");
    free(v);
    assert_int_equal(q_int(c, "SELECT fee FROM order_events WHERE liquidity = 'taker'"), 41);
    assert_int_equal(q_int(c, "SELECT count(*) FROM order_events WHERE liquidity IS NULL "
                              "AND fee = 0"),
                     1);
    PQfinish(c);
}

static void position_is_committed_with_the_rows_and_resumed_after_restart(void **state)
{
    (void)state;
    fresh_db("rec_position");
    harness h;
    harness_open(&h, "rec_position", 250, 10 * SEC, 20 * SEC);
    feed_trades(&h, 0, 1000);
    feed_events(&h, 0, 300);
    assert_true(harness_run_until(&h, all_committed, 30 * SEC));
    harness_close(&h);
    PGconn *c = connect_db("rec_position");
    assert_int_equal(q_int(c, "SELECT next_offset FROM recorder_offsets WHERE consumer = 'rec' "
                              "AND topic = 'trade_executed' AND partition = 0"),
                     1000);
    assert_int_equal(q_int(c, "SELECT next_offset FROM recorder_offsets WHERE consumer = 'rec' "
                              "AND topic = 'order_events' AND partition = 0"),
                     300);
    /* Restart: the new recorder continues from the stored positions. */
    harness_open(&h, "rec_position", 250, 10 * SEC, 20 * SEC);
    assert_true(harness_run_until(&h, is_up, 20 * SEC));
    assert_true(h.b.base_known);
    assert_int_equal(h.b.base[REC_TOPIC_TRADES], 1000);
    assert_int_equal(h.b.base[REC_TOPIC_ORDER_EVENTS], 300);
    feed_trades(&h, 1000, 1500);
    assert_true(harness_run_until(&h, all_committed, 30 * SEC));
    harness_close(&h);
    assert_int_equal(q_int(c, "SELECT next_offset FROM recorder_offsets WHERE "
                              "topic = 'trade_executed'"),
                     1500);
    assert_int_equal(q_int(c, "SELECT next_offset FROM recorder_offsets WHERE "
                              "topic = 'order_events'"),
                     300);
    assert_trades_exactly(c, 1500);
    PQfinish(c);
}

static int tables_exist(PGconn *c)
{
    return q_int(c, "SELECT count(*) FROM pg_tables WHERE tablename = 'recorder_offsets'") == 1;
}

static uint64_t stored_trades_position(PGconn *c)
{
    /* A crash before the first setup committed leaves no tables at all. */
    if (!tables_exist(c))
        return 0;
    return (uint64_t)q_int(c, "SELECT coalesce(max(next_offset), 0) FROM recorder_offsets "
                              "WHERE topic = 'trade_executed'");
}

/* The stream is a replayable log (as Kafka will be): after each crash the
 * recorder resumes from its stored position. Crashes land at arbitrary
 * points of the protocol (connecting, setup, mid-COPY, before or after
 * COMMIT); after each one the table holds exactly the rows before the stored
 * position, and at the end exactly the whole log. */
static void crash_at_any_point_loses_nothing_and_duplicates_nothing(void **state)
{
    (void)state;
    const uint64_t n = 20000 / (uint64_t)scale_down();
    fresh_db("rec_crash");
    PGconn *c = connect_db("rec_crash");
    uint64_t rng = 12345;
    int crashes = 0;
    uint64_t pos = 0;
    for (int round = 0; round < 12 && pos < n; round++) {
        harness h;
        harness_open(&h, "rec_crash", 100, 10 * SEC, 20 * SEC);
        /* Feed the rest of the log from the stored position on, as a
         * consumer seeking to its committed offset would. */
        feed_trades(&h, pos, n);
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        int steps = 5 + (int)(rng % 80);
        int finished = 0;
        if (round == 11) {
            finished = harness_run_until(&h, all_committed, 60 * SEC);
            assert_true(finished);
        } else {
            for (int s = 0; s < steps && !all_committed(&h); s++)
                event_base_loop(h.base, EVLOOP_ONCE);
            finished = all_committed(&h);
        }
        harness_close(&h); /* the crash, or the end */
        crashes += !finished;
        wait_sessions_gone(c);
        pos = stored_trades_position(c);
        if (tables_exist(c))
            assert_int_equal(q_int(c, "SELECT count(*) FROM trades"), (long long)pos);
    }
    assert_true(crashes >= 3);
    assert_int_equal(pos, n);
    assert_trades_exactly(c, n);
    PQfinish(c);
}

/* A lock held elsewhere stalls the flush: the database is reported slow,
 * then up again when the flush completes, and nothing is lost. */
static void stalled_flush_reports_slow_then_recovers(void **state)
{
    (void)state;
    fresh_db("rec_slow");
    harness h;
    harness_open(&h, "rec_slow", 100, 150 * MS, 20 * SEC);
    assert_true(harness_run_until(&h, is_up, 20 * SEC));
    PGconn *c = connect_db("rec_slow");
    exec_ok(c, "BEGIN");
    exec_ok(c, "LOCK TABLE trades IN ACCESS EXCLUSIVE MODE");
    feed_trades(&h, 0, 500);
    int64_t until = rec_clock_ns() + 600 * MS;
    while (rec_clock_ns() < until)
        event_base_loop(h.base, EVLOOP_ONCE);
    assert_int_equal(rec_writer_health(h.w)->state, REC_DB_SLOW);
    assert_true(rec_batcher_pending(&h.b) > 0);
    exec_ok(c, "COMMIT");
    assert_true(harness_run_until(&h, all_committed, 20 * SEC));
    /* starting -> up -> slow -> up, one report each */
    assert_int_equal(h.nstates, 3);
    assert_int_equal(h.states[0], REC_DB_UP);
    assert_int_equal(h.states[1], REC_DB_SLOW);
    assert_int_equal(h.states[2], REC_DB_UP);
    harness_close(&h);
    assert_trades_exactly(c, 500);
    PQfinish(c);
}

/* A flush stalled past the timeout is abandoned on that connection and
 * retried on a new one; the retry inserts nothing twice. */
static void flush_past_the_timeout_is_retried_on_a_new_connection(void **state)
{
    (void)state;
    fresh_db("rec_timeout");
    harness h;
    harness_open(&h, "rec_timeout", 100, 100 * MS, 300 * MS);
    assert_true(harness_run_until(&h, is_up, 20 * SEC));
    PGconn *c = connect_db("rec_timeout");
    exec_ok(c, "BEGIN");
    exec_ok(c, "LOCK TABLE trades IN ACCESS EXCLUSIVE MODE");
    feed_trades(&h, 0, 300);
    int64_t until = rec_clock_ns() + 800 * MS;
    while (rec_clock_ns() < until)
        event_base_loop(h.base, EVLOOP_ONCE);
    assert_true(rec_writer_health(h.w)->outages >= 1);
    assert_non_null(strstr(rec_writer_health(h.w)->error, "timed out"));
    exec_ok(c, "COMMIT");
    assert_true(harness_run_until(&h, all_committed, 20 * SEC));
    harness_close(&h);
    wait_sessions_gone(c);
    assert_trades_exactly(c, 300);
    PQfinish(c);
}

static int three_failures(harness *h) { return rec_writer_health(h->w)->failures >= 3; }

/* A flush the server keeps refusing (here a trigger) is one outage: the
 * state goes down once, not down and up per retry, the backoff grows, and
 * the database is up again only once the held batch commits. */
static void refused_flush_is_one_outage_until_the_batch_commits(void **state)
{
    (void)state;
    fresh_db("rec_refuse");
    harness h;
    harness_open(&h, "rec_refuse", 100, 10 * SEC, 20 * SEC);
    assert_true(harness_run_until(&h, is_up, 20 * SEC));
    PGconn *c = connect_db("rec_refuse");
    exec_ok(c, "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
               "$$BEGIN RAISE EXCEPTION 'refused by the test'; END$$; "
               "CREATE TRIGGER refuse BEFORE INSERT ON trades "
               "FOR EACH STATEMENT EXECUTE FUNCTION refuse()");
    feed_trades(&h, 0, 250);
    const rec_db_health *dh = rec_writer_health(h.w);
    assert_true(harness_run_until(&h, three_failures, 20 * SEC)); /* retried with backoff */
    assert_int_equal(dh->state, REC_DB_DOWN);
    assert_true(dh->next_backoff_ns > 20 * MS); /* growing, not reset by each reconnect */
    assert_int_equal(dh->outages, 1);
    assert_non_null(strstr(dh->error, "refused by the test"));
    exec_ok(c, "DROP TRIGGER refuse ON trades");
    assert_true(harness_run_until(&h, all_committed, 20 * SEC));
    /* up -> down -> up: one report each */
    assert_int_equal(h.nstates, 3);
    assert_int_equal(h.states[0], REC_DB_UP);
    assert_int_equal(h.states[1], REC_DB_DOWN);
    assert_int_equal(h.states[2], REC_DB_UP);
    harness_close(&h);
    wait_sessions_gone(c);
    assert_trades_exactly(c, 250);
    PQfinish(c);
}

/* ---- harness 2: recorder.so in the real host, fed through the bus ---- */

typedef struct feeder {
    arb_ctx *ctx;
    uint64_t next, end; /* trades next..end-1 still to publish */
    uint64_t per_tick;  /* at most this many per tick */
    uint64_t tick_ns;
    uint64_t full; /* publishes the bus refused (retried later) */
    int timer_running;
} feeder;

static void feed_tick(void *user)
{
    feeder *f = user;
    uint8_t buf[ARB_TRADE_LEN];
    for (uint64_t k = 0; k < f->per_tick && f->next < f->end; k++) {
        arb_trade t = make_trade(f->next);
        uint32_t len = arb_trade_encode(&t, buf, sizeof buf);
        int rc = arb_publish(f->ctx, ARB_TOPIC_TRADE_EXECUTED,
                             arb_instrument_key(t.venue, t.symbol), buf, len);
        if (rc == ARB_EFULL) {
            f->full++;
            break;
        }
        assert_int_equal(rc, ARB_OK);
        f->next++;
    }
    f->timer_running = f->next < f->end;
    if (f->timer_running)
        arb_timer_start(f->ctx, f->tick_ns, 0, feed_tick, f);
}

static void feeder_go(feeder *f, uint64_t end)
{
    f->end = end;
    if (!f->timer_running && f->next < f->end) {
        f->timer_running = 1;
        arb_timer_start(f->ctx, 0, 0, feed_tick, f);
    }
}

static uint64_t metric_value(testhost *t, int kind, const char *name, const char *labels)
{
    arbh_metric *m = arbh_metric_get(testhost_host(t), "recorder", kind, name, labels, NULL);
    assert_non_null(m);
    return kind == 'c' ? atomic_load(&m->u.counter.value)
                       : (uint64_t)atomic_load(&m->u.gauge.value);
}

typedef struct host_wait {
    testhost *t;
    feeder *f;
    uint64_t rows;
} host_wait;

static int host_committed(void *user)
{
    host_wait *w = user;
    return w->f->next >= w->f->end &&
           metric_value(w->t, 'c', "recorder_rows_committed_total", "table=\"trades\"") >=
               w->rows &&
           metric_value(w->t, 'g', "recorder_buffered_rows", NULL) == 0;
}

static int db_up(void *user)
{
    host_wait *w = user;
    return metric_value(w->t, 'g', "recorder_db_up", NULL) == 1;
}

static int feeder_reached(void *user)
{
    host_wait *w = user;
    return w->f->next >= w->f->end;
}

/* extra: more keys for [plugin recorder]; ov: -s style overrides, to
 * replace one of the keys set here (setting it again is refused). */
static testhost *start_recorder_host_with(const char *db, const char *extra, const char *const *ov,
                                          size_t nov)
{
    char ini[2048];
    snprintf(ini, sizeof ini,
             "[plugin recorder]\nload = recorder.so\ndsn = dbname=%s\nbatch_rows = 500\n"
             "flush_interval_ms = 20\nbackoff_min_ms = 50\nbackoff_max_ms = 300\n%s%s",
             db, extra ? extra : "", instruments_ini);
    testhost *t = testhost_new_with(ini, ov, nov);
    assert_non_null(t);
    assert_int_equal(testhost_start(t), ARB_OK);
    return t;
}

static testhost *start_recorder_host(const char *db, const char *extra)
{
    return start_recorder_host_with(db, extra, NULL, 0);
}

static int instance_healthy(testhost *t)
{
    arbh_instance *in = arbh_host_find(testhost_host(t), "recorder");
    assert_non_null(in);
    return in->healthy;
}

static void malformed_dsn_is_a_config_error_with_its_line(void **state)
{
    (void)state;
    testhost *t = testhost_new("[plugin recorder]\nload = recorder.so\ndsn = nonsense\n"
                               "batch_rows = 10\n");
    if (t)
        testhost_free(t);
    assert_null(t);
    const char *err = testhost_last_error();
    if (!strstr(err, ":3") || !strstr(err, "dsn") || !strstr(err, "connection string"))
        fail_msg("unexpected error: %s", err);
}

/* GET /plugins/recorder/health, called directly (white-box): the status,
 * and the body in *body (malloc'd). */
static int health(testhost *t, char **body)
{
    arbh_host *h = testhost_host(t);
    for (size_t i = 0; i < h->nroutes; i++) {
        arbh_route *r = h->routes[i];
        if (r->active && !strcmp(r->instance, "recorder") && !strcmp(r->path, "health")) {
            struct evbuffer *b = evbuffer_new();
            int status = r->fn(r->user, "GET", "health", NULL, b);
            size_t n = evbuffer_get_length(b);
            *body = calloc(1, n + 1);
            evbuffer_remove(b, *body, n);
            evbuffer_free(b);
            return status;
        }
    }
    fail_msg("the recorder has no health route");
    return 0;
}

/* The acceptance test: PostgreSQL is stopped hard in the middle of
 * a run while trades keep coming, then started again; afterwards the trades
 * table holds exactly what was produced (count and digest). */
static void database_outage_mid_run_records_exactly_what_was_produced(void **state)
{
    (void)state;
    const uint64_t n = 30000 / (uint64_t)scale_down();
    fresh_db("rec_outage");
    testhost *t = start_recorder_host("rec_outage", NULL);
    feeder f = {.ctx = testhost_ctx(t), .per_tick = 60, .tick_ns = 2 * MS};
    host_wait w = {t, &f, n / 3};

    feeder_go(&f, n / 3);
    assert_true(testhost_run_until(t, host_committed, &w, 30 * SEC));
    assert_true(instance_healthy(t));

    /* Stop the server while trades keep flowing: the second third goes out
     * while it stops and while it is down. */
    pid_t stopper = pg_ctl_spawn("stop");
    feeder_go(&f, 2 * n / 3);
    int stopped = 0, saw_unhealthy = 0;
    uint64_t published_while_down = 0;
    int64_t deadline = rec_clock_ns() + 30 * SEC;
    while ((!stopped || !saw_unhealthy || f.next < f.end) && rec_clock_ns() < deadline) {
        uint64_t before = f.next;
        testhost_run(t, 5 * MS);
        if (saw_unhealthy)
            published_while_down += f.next - before;
        saw_unhealthy |= !instance_healthy(t);
        stopped = stopped || child_done(stopper);
    }
    assert_true(stopped);
    assert_true(saw_unhealthy);
    assert_true(published_while_down > 0);
    assert_true(metric_value(t, 'g', "recorder_db_up", NULL) == 0);
    assert_true(metric_value(t, 'g', "recorder_buffered_rows", NULL) > 0);

    /* The last third goes out while it starts again and after. */
    pid_t starter = pg_ctl_spawn("start");
    feeder_go(&f, n);
    while (!child_done(starter))
        testhost_run(t, 5 * MS);
    w.rows = n;
    assert_true(testhost_run_until(t, host_committed, &w, 60 * SEC));
    assert_true(instance_healthy(t));
    assert_int_equal(metric_value(t, 'c', "recorder_db_outages_total", NULL), 1);
    /* The default high-water mark was never reached: held, not paused. */
    assert_int_equal(metric_value(t, 'c', "recorder_pauses_total", NULL), 0);
    assert_int_equal(metric_value(t, 'c', "recorder_oom_dropped_total", NULL), 0);
    assert_int_equal(metric_value(t, 'c', "recorder_received_total", "topic=\"trade_executed\""),
                     n);
    testhost_free(t);

    PGconn *c = connect_db("rec_outage");
    assert_trades_exactly(c, n);
    assert_int_equal(q_int(c, "SELECT next_offset FROM recorder_offsets WHERE "
                              "topic = 'trade_executed'"),
                     (long long)n);
    PQfinish(c);
}

static int paused_and_pushing_back(void *user)
{
    host_wait *w = user;
    return metric_value(w->t, 'g', "recorder_paused", NULL) == 1 && w->f->full > 0;
}

/* Stops or starts the server while the host's loop keeps running. */
static void pg_ctl_serving(testhost *t, const char *action)
{
    pid_t pid = pg_ctl_spawn(action);
    while (!child_done(pid))
        testhost_run(t, 5 * MS);
}

/* With the database away the recorder holds rows up to its high-water mark,
 * then pauses its delivery: the records wait in the host's queue, the
 * publisher sees backpressure (ARB_EFULL), metrics and health say so. When
 * the database returns it catches up, resumes below the low-water mark,
 * and the table holds exactly what was published: nothing refused, nothing
 * lost. */
static void database_down_pauses_delivery_then_catches_up_losing_nothing(void **state)
{
    (void)state;
    const uint64_t n = 6000;
    fresh_db("rec_full");
    /* A small host queue, so the publisher feels the pause soon. */
    testhost *t = start_recorder_host("rec_full", "high_water_rows = 1000\nlow_water_rows = 200\n"
                                                  "[bus]\nqueue_bytes = 65536\n");
    feeder f = {.ctx = testhost_ctx(t), .per_tick = 100, .tick_ns = 1 * MS};
    host_wait w = {t, &f, 0};
    assert_true(testhost_run_until(t, db_up, &w, 20 * SEC));
    pg_ctl_serving(t, "stop");
    feeder_go(&f, n);
    assert_true(testhost_run_until(t, paused_and_pushing_back, &w, 20 * SEC));
    /* Paused exactly at the mark; the rest waits outside the recorder. */
    testhost_run(t, 100 * MS);
    assert_int_equal(metric_value(t, 'g', "recorder_buffered_rows", NULL), 1000);
    assert_int_equal(metric_value(t, 'c', "recorder_received_total", "topic=\"trade_executed\""),
                     1000);
    assert_int_equal(metric_value(t, 'c', "recorder_pauses_total", NULL), 1);
    assert_true(f.next < n);
    uint64_t full = f.full;
    testhost_run(t, 50 * MS);
    assert_true(f.full > full); /* still pushed back */
    char *body;
    assert_int_equal(health(t, &body), 503);
    assert_non_null(strstr(body, "\"database\":\"down\""));
    assert_non_null(strstr(body, "\"paused\":true"));
    assert_non_null(strstr(body, "\"buffered_rows\":1000"));
    assert_non_null(strstr(body, "\"high_water_rows\":1000"));
    assert_non_null(strstr(body, "\"last_error\":"));
    free(body);
    assert_false(instance_healthy(t));

    pg_ctl_serving(t, "start");
    w.rows = n;
    assert_true(testhost_run_until(t, host_committed, &w, 60 * SEC));
    assert_int_equal(metric_value(t, 'g', "recorder_paused", NULL), 0);
    assert_int_equal(metric_value(t, 'c', "recorder_received_total", "topic=\"trade_executed\""),
                     n);
    assert_int_equal(health(t, &body), 200);
    assert_non_null(strstr(body, "\"database\":\"up\""));
    assert_non_null(strstr(body, "\"buffered_rows\":0"));
    assert_non_null(strstr(body, "\"paused\":false"));
    free(body);
    assert_true(instance_healthy(t));
    testhost_free(t);

    PGconn *c = connect_db("rec_full");
    assert_trades_exactly(c, n);
    assert_int_equal(q_int(c, "SELECT next_offset FROM recorder_offsets WHERE "
                              "topic = 'trade_executed'"),
                     (long long)n);
    PQfinish(c);
}

/* The configuration the lead runs: the recorder on a thread of its own, so
 * its pause holds only its own queue. The publisher on loop 0 sees the
 * backpressure all the same, and nothing is lost. */
static void paused_recorder_on_its_own_thread_pushes_back_on_publishers(void **state)
{
    (void)state;
    const uint64_t n = 4000;
    fresh_db("rec_thread");
    testhost *t = start_recorder_host("rec_thread", "thread = 1\nhigh_water_rows = 500\n"
                                                    "[host]\nthreads = 2\n"
                                                    "[bus]\nqueue_bytes = 65536\n");
    feeder f = {.ctx = testhost_ctx(t), .per_tick = 100, .tick_ns = 1 * MS};
    host_wait w = {t, &f, 0};
    assert_true(testhost_run_until(t, db_up, &w, 20 * SEC));
    pg_ctl_serving(t, "stop");
    feeder_go(&f, n);
    assert_true(testhost_run_until(t, paused_and_pushing_back, &w, 20 * SEC));
    assert_true(f.next < n);
    pg_ctl_serving(t, "start");
    w.rows = n;
    assert_true(testhost_run_until(t, host_committed, &w, 60 * SEC));
    assert_int_equal(metric_value(t, 'g', "recorder_paused", NULL), 0);
    assert_true(metric_value(t, 'c', "recorder_pauses_total", NULL) >= 1);
    testhost_free(t);
    PGconn *c = connect_db("rec_thread");
    assert_trades_exactly(c, n);
    PQfinish(c);
}

/* The marks are checked when the config loads. */
static void low_water_at_or_above_high_water_is_a_config_error(void **state)
{
    (void)state;
    testhost *t = testhost_new("[plugin recorder]\nload = recorder.so\nbatch_rows = 10\n"
                               "high_water_rows = 100\nlow_water_rows = 100\n");
    if (t)
        testhost_free(t);
    assert_null(t);
    const char *err = testhost_last_error();
    if (!strstr(err, "low_water_rows") || !strstr(err, "below high_water_rows"))
        fail_msg("unexpected error: %s", err);
}

/* Hot reload hands the held rows to the new build; both builds number rows
 * alike, so the stored position stays exact. */
static void hot_reload_keeps_held_rows_and_the_position(void **state)
{
    (void)state;
    fresh_db("rec_reload");
    /* A long interval and a big batch: rows sit in memory at the reload. */
    const char *ov[] = {"recorder.flush_interval_ms=60000", "recorder.batch_rows=100000"};
    testhost *t = start_recorder_host_with("rec_reload", NULL, ov, 2);
    feeder f = {.ctx = testhost_ctx(t), .per_tick = 500, .tick_ns = 1 * MS};
    host_wait w = {t, &f, 0};
    /* The tables exist once the database is up (the setup made them). */
    assert_true(testhost_run_until(t, db_up, &w, 20 * SEC));
    feeder_go(&f, 2000);
    assert_true(testhost_run_until(t, feeder_reached, &w, 20 * SEC));
    testhost_run(t, 50 * MS);
    PGconn *c = connect_db("rec_reload");
    assert_int_equal(q_int(c, "SELECT count(*) FROM trades"), 0); /* all held */
    char err[256];
    assert_int_equal(testhost_reload(t, "recorder", NULL, err, sizeof err), ARB_OK);
    feeder_go(&f, 3000);
    assert_true(testhost_run_until(t, feeder_reached, &w, 20 * SEC));
    testhost_free(t); /* stop drains what the new build holds */
    assert_trades_exactly(c, 3000);
    assert_int_equal(q_int(c, "SELECT next_offset FROM recorder_offsets WHERE "
                              "topic = 'trade_executed'"),
                     3000);
    PQfinish(c);
}

/* ---- runs ---- */

static uint8_t *announcement(uint8_t status, uint32_t pid, int64_t ts, const char *const *names,
                             uint16_t n, arb_service *out)
{
    arb_service svc = {.status = status, .n_plugins = n, .pid = pid, .started_at = 1, .ts = ts};
    arb_fixstr_set(svc.host_id, ARB_SVC_ID_LEN, "h1");
    arb_fixstr_set(svc.admin, ARB_SVC_ADDR_LEN, "127.0.0.1:8080");
    uint8_t *buf = calloc(1, ARB_SERVICE_LEN(n));
    uint32_t len = arb_service_encode(&svc, buf, ARB_SERVICE_LEN(n));
    for (uint16_t i = 0; i < n; i++) {
        arb_service_plugin p;
        memset(&p, 0, sizeof p);
        arb_fixstr_set(p.instance, ARB_SVC_NAME_LEN, names[i]);
        arb_fixstr_set(p.plugin, ARB_SVC_NAME_LEN, names[i]);
        arb_fixstr_set(p.version, ARB_SVC_VER_LEN, "1.0.0");
        arb_fixstr_set(p.build_id, ARB_SVC_BUILD_LEN, i ? "bb02" : "bb01");
        arb_service_put_plugin(buf, i, &p);
    }
    assert_int_equal(arb_service_decode(buf, len, out), ARB_OK);
    return buf;
}

/* Hosts announce every few seconds: the run's row is written when what it
 * says changes (a new host, a restart, a plugin, a host gone), not for
 * every announcement. */
static void announcements_change_the_run_row_only_when_something_changed(void **state)
{
    (void)state;
    static const char *const names[] = {"matcher", "recorder"};
    rec_members m;
    assert_int_equal(rec_members_init(&m), ARB_OK);
    char *hosts, *plugins;
    assert_int_equal(rec_members_take(&m, &hosts, &plugins), 0);
    arb_service svc;
    uint8_t *a = announcement(ARB_SVC_ALIVE, 41, 100, names, 2, &svc);
    assert_int_equal(rec_members_apply(&m, &svc, "00ff"), ARB_OK);
    assert_int_equal(rec_members_take(&m, &hosts, &plugins), 1);
    assert_string_equal(hosts, "{\"h1\":{\"admin\":\"127.0.0.1:8080\",\"config_digest\":\"00ff\","
                               "\"instances\":[\"matcher\",\"recorder\"],\"pid\":41,"
                               "\"started_at\":\"1970-01-01 00:00:00.000000+00\"}}");
    assert_string_equal(plugins, "{\"matcher\":{\"build_id\":\"bb01\",\"plugin\":\"matcher\","
                                 "\"version\":\"1.0.0\"},\"recorder\":{\"build_id\":\"bb02\","
                                 "\"plugin\":\"recorder\",\"version\":\"1.0.0\"}}");
    free(hosts);
    free(plugins);
    free(a);
    /* The same again, later: nothing to write. */
    a = announcement(ARB_SVC_ALIVE, 41, 200, names, 2, &svc);
    assert_int_equal(rec_members_apply(&m, &svc, "00ff"), ARB_OK);
    assert_int_equal(rec_members_take(&m, &hosts, &plugins), 0);
    free(a);
    /* Restarted (another pid): written. */
    a = announcement(ARB_SVC_ALIVE, 42, 300, names, 2, &svc);
    assert_int_equal(rec_members_apply(&m, &svc, "00ff"), ARB_OK);
    assert_int_equal(rec_members_take(&m, &hosts, &plugins), 1);
    assert_non_null(strstr(hosts, "\"pid\":42"));
    free(hosts);
    free(plugins);
    free(a);
    /* Gone: the entry stays, with when. */
    a = announcement(ARB_SVC_TOMBSTONE, 42, 400, names, 0, &svc);
    assert_int_equal(rec_members_apply(&m, &svc, NULL), ARB_OK);
    assert_int_equal(rec_members_take(&m, &hosts, &plugins), 1);
    assert_non_null(strstr(hosts, "\"pid\":42"));
    assert_non_null(strstr(hosts, "\"stopped_at\":\"1970-01-01 00:00:00.000000+00\""));
    free(hosts);
    free(plugins);
    free(a);
    rec_members_free(&m);
}

/* A recorder host with its own [host] id; run, when given, pins the run the
 * host belongs to (a resumed one), else the host begins a new run. */
static testhost *start_run_host_with(const char *db, const char *host_id, const arb_run_info *run,
                                     const char *sections)
{
    char ini[2048];
    snprintf(ini, sizeof ini,
             "[host]\nid = %s\n[plugin recorder]\nload = recorder.so\ndsn = dbname=%s\n"
             "batch_rows = 200\nflush_interval_ms = 10\nbackoff_min_ms = 50\n"
             "backoff_max_ms = 300\n%s%s",
             host_id, db, sections, instruments_ini);
    testhost *t = testhost_new(ini);
    assert_non_null(t);
    if (run)
        testhost_host(t)->run = *run;
    assert_int_equal(testhost_start(t), ARB_OK);
    return t;
}

static testhost *start_run_host(const char *db, const char *host_id, const arb_run_info *run)
{
    return start_run_host_with(db, host_id, run, "");
}

/* Publishes trades and order events from..to-1 on the bus, waiting for room. */
static void publish_records(testhost *t, uint64_t from, uint64_t to)
{
    arb_ctx *c = testhost_ctx(t);
    for (uint64_t i = from; i < to; i++) {
        uint8_t buf[ARB_ORDER_EVENT_LEN > ARB_TRADE_LEN ? ARB_ORDER_EVENT_LEN : ARB_TRADE_LEN];
        arb_trade tr = make_trade(i);
        uint32_t len = arb_trade_encode(&tr, buf, sizeof buf);
        int rc;
        while ((rc = arb_publish(c, ARB_TOPIC_TRADE_EXECUTED,
                                 arb_instrument_key(tr.venue, tr.symbol), buf, len)) == ARB_EFULL)
            testhost_run(t, 1 * MS);
        assert_int_equal(rc, ARB_OK);
        arb_order_event e = make_event(i);
        len = arb_order_event_encode(&e, buf, sizeof buf);
        while ((rc = arb_publish(c, ARB_TOPIC_ORDER_EVENTS, e.account, buf, len)) == ARB_EFULL)
            testhost_run(t, 1 * MS);
        assert_int_equal(rc, ARB_OK);
    }
}

typedef struct committed_wait {
    testhost *t;
    uint64_t rows; /* per table */
} committed_wait;

static int both_tables_committed(void *user)
{
    committed_wait *w = user;
    return metric_value(w->t, 'c', "recorder_rows_committed_total", "table=\"trades\"") >=
               w->rows &&
           metric_value(w->t, 'c', "recorder_rows_committed_total", "table=\"order_events\"") >=
               w->rows &&
           metric_value(w->t, 'g', "recorder_buffered_rows", NULL) == 0;
}

/* Records 0..n-1 of both tables through the host, and waits until all are
 * committed. */
static void record_through(testhost *t, uint64_t n)
{
    publish_records(t, 0, n);
    committed_wait w = {t, n};
    assert_true(testhost_run_until(t, both_tables_committed, &w, 20 * SEC));
}

static uint64_t table_metric(testhost *t, const char *name, const char *table)
{
    char labels[64];
    snprintf(labels, sizeof labels, "table=\"%s\"", table);
    return metric_value(t, 'c', name, labels);
}

static long long count_in_run(PGconn *c, const char *table, uint64_t run)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE run_id = %lld", table, (long long)run);
    return q_int(c, sql);
}

typedef struct db_wait {
    PGconn *c;
    testhost *t;
    const char *sql; /* a query answering one integer: 1 when done */
} db_wait;

static int db_says_yes(void *user)
{
    db_wait *w = user;
    return q_int(w->c, w->sql) == 1;
}

/* Two runs back to back into one database, the same trade and order ids in
 * both (each run's books and agents count from 1 again): each run's rows are
 * all stored, none taken for a replay of the other's, and the runs table
 * has both, the first ended when the second began. */
static void two_runs_back_to_back_store_every_row_of_both(void **state)
{
    (void)state;
    const uint64_t n = 600;
    fresh_db("rec_runs");
    PGconn *c = connect_db("rec_runs");
    uint64_t run[2];
    for (int k = 0; k < 2; k++) {
        testhost *t = start_run_host("rec_runs", "rec-runs", NULL);
        run[k] = testhost_host(t)->run.id;
        char digest[17];
        memcpy(digest, testhost_host(t)->run.config_digest, sizeof digest);
        record_through(t, n);
        assert_int_equal(table_metric(t, "recorder_rows_inserted_total", "trades"), n);
        assert_int_equal(table_metric(t, "recorder_rows_inserted_total", "order_events"), n);
        assert_int_equal(table_metric(t, "recorder_replayed_total", "trades"), 0);
        assert_int_equal(table_metric(t, "recorder_conflicts_total", "order_events"), 0);
        /* The host announced itself: it and its plugins are in the run's row. */
        char sql[512];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM runs WHERE run_id = %lld AND hosts -> 'rec-runs' ->> "
                 "'config_digest' = '%s' AND plugins -> 'recorder' ->> 'plugin' = 'recorder'",
                 (long long)run[k], digest);
        db_wait w = {c, t, sql};
        assert_true(testhost_run_until(t, db_says_yes, &w, 10 * SEC));
        testhost_free(t);
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM runs WHERE run_id = %lld AND config_digest = '%s' AND "
                 "seed IS NULL AND started_at > now() - interval '1 minute'",
                 (long long)run[k], digest);
        assert_int_equal(q_int(c, sql), 1);
    }
    assert_int_not_equal(run[0], run[1]);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(count_in_run(c, "trades", run[k]), (long long)n);
        assert_int_equal(count_in_run(c, "order_events", run[k]), (long long)n);
    }
    assert_int_equal(q_int(c, "SELECT count(*) FROM runs"), 2);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM runs WHERE run_id = %lld AND ended_at IS NOT NULL AND "
             "ended_at <= (SELECT updated_at FROM runs WHERE run_id = %lld)",
             (long long)run[0], (long long)run[1]);
    assert_int_equal(q_int(c, sql), 1);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM runs WHERE run_id = %lld AND ended_at IS NULL",
             (long long)run[1]);
    assert_int_equal(q_int(c, sql), 1);
    PQfinish(c);
}

/* The market's seed, read from the generator's section of the same host
 * (which stays valid config: nothing is reported unknown), goes into the
 * run's row. */
static void seed_of_the_generator_is_stored_with_the_run(void **state)
{
    (void)state;
    fresh_db("rec_seed");
    PGconn *c = connect_db("rec_seed");
    testhost *t = start_run_host_with("rec_seed", "rec-seed", NULL,
                                      "[plugin generator]\nload = generator.so\nseed = 4711\n"
                                      "symbols = GENUSD\nvenues = XA\n"
                                      "[instrument XA:GENUSD]\nprice_decimals = 2\n"
                                      "qty_decimals = 3\nref_price = 100\n");
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM runs WHERE run_id = %lld AND seed = '4711'",
             (long long)testhost_host(t)->run.id);
    db_wait w = {c, t, "SELECT count(*) FROM pg_tables WHERE tablename = 'runs'"};
    assert_true(testhost_run_until(t, db_says_yes, &w, 10 * SEC));
    w.sql = sql;
    assert_true(testhost_run_until(t, db_says_yes, &w, 10 * SEC));
    testhost_free(t);
    PQfinish(c);
}

/* The same run resumed (a restart) and fed the same records again: every
 * row is a replay, counted as one, and nothing is stored twice. */
static void replay_of_the_same_run_doubles_nothing(void **state)
{
    (void)state;
    const uint64_t n = 500;
    fresh_db("rec_resume");
    PGconn *c = connect_db("rec_resume");
    testhost *t = start_run_host("rec_resume", "rec-resume", NULL);
    arb_run_info run = testhost_host(t)->run;
    record_through(t, n);
    testhost_free(t);
    run.resumed = 1;
    run.epoch = 1;
    t = start_run_host("rec_resume", "rec-resume", &run);
    record_through(t, n);
    assert_int_equal(table_metric(t, "recorder_rows_inserted_total", "trades"), 0);
    assert_int_equal(table_metric(t, "recorder_replayed_total", "trades"), n);
    assert_int_equal(table_metric(t, "recorder_replayed_total", "order_events"), n);
    assert_int_equal(table_metric(t, "recorder_conflicts_total", "trades"), 0);
    assert_int_equal(table_metric(t, "recorder_conflicts_total", "order_events"), 0);
    assert_true(instance_healthy(t));
    testhost_free(t);
    assert_int_equal(count_in_run(c, "trades", run.id), (long long)n);
    assert_int_equal(count_in_run(c, "order_events", run.id), (long long)n);
    assert_int_equal(q_int(c, "SELECT count(*) FROM trades"), (long long)n);
    assert_int_equal(q_int(c, "SELECT count(*) FROM runs WHERE ended_at IS NULL"), 1);
    assert_int_equal(q_int(c, "SELECT count(*) FROM runs"), 1);
    PQfinish(c);
}

/* The host's log lines go to stderr: a test that reads them sends stderr
 * to a file meanwhile, and echoes what it caught. */
typedef struct log_catch {
    int saved;
    FILE *file;
} log_catch;

static void log_catch_start(log_catch *lc)
{
    fflush(stderr);
    lc->file = tmpfile();
    assert_non_null(lc->file);
    lc->saved = dup(STDERR_FILENO);
    assert_true(lc->saved >= 0);
    assert_true(dup2(fileno(lc->file), STDERR_FILENO) >= 0);
}

static char *log_catch_end(log_catch *lc)
{
    fflush(stderr);
    dup2(lc->saved, STDERR_FILENO);
    close(lc->saved);
    long n = ftell(lc->file);
    char *text = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
    rewind(lc->file);
    size_t got = fread(text, 1, (size_t)(n > 0 ? n : 0), lc->file);
    text[got] = 0;
    fclose(lc->file);
    fputs(text, stderr);
    return text;
}

/* A stored row and a new one under the same key with other content is a
 * defect upstream: counted, logged with the key and both versions, and the
 * recorder unhealthy from then on; the identical rows beside it are
 * replays, not conflicts. */
static void forged_row_under_a_stored_key_is_a_conflict_and_identical_rows_replays(void **state)
{
    (void)state;
    const uint64_t n = 10;
    fresh_db("rec_conflict");
    PGconn *c = connect_db("rec_conflict");
    testhost *t = start_run_host("rec_conflict", "rec-conflict", NULL);
    uint64_t run = testhost_host(t)->run.id;
    record_through(t, n);
    assert_true(instance_healthy(t));
    /* Trade 5 as stored gets another price, as if an earlier trade of the
     * run had had its id. */
    arb_trade t5 = make_trade(5);
    char sql[256];
    snprintf(sql, sizeof sql,
             "UPDATE trades SET price = price + 1 WHERE run_id = %lld AND trade_id = %lld",
             (long long)run, (long long)t5.trade_id);
    exec_ok(c, sql);

    log_catch lc;
    log_catch_start(&lc);
    publish_records(t, 0, n);
    committed_wait w = {t, 2 * n};
    int done = testhost_run_until(t, both_tables_committed, &w, 20 * SEC);
    char *log = log_catch_end(&lc);
    assert_true(done);

    assert_int_equal(table_metric(t, "recorder_conflicts_total", "trades"), 1);
    assert_int_equal(table_metric(t, "recorder_replayed_total", "trades"), n - 1);
    assert_int_equal(table_metric(t, "recorder_conflicts_total", "order_events"), 0);
    assert_int_equal(table_metric(t, "recorder_replayed_total", "order_events"), n);
    char key[64];
    snprintf(key, sizeof key, "trade_id %lld", (long long)t5.trade_id);
    const char *line = strstr(log, "differ from the rows stored under their keys");
    assert_non_null(line);
    const char *end = strchr(line, '\n');
    char *one = strndup(line, end ? (size_t)(end - line) : strlen(line));
    char stored_px[32], new_px[32];
    snprintf(stored_px, sizeof stored_px, ",%lld,", (long long)t5.price + 1);
    snprintf(new_px, sizeof new_px, ",%lld,", (long long)t5.price);
    assert_non_null(strstr(one, key));
    assert_non_null(strstr(one, "stored ("));
    assert_true(strstr(one, stored_px) && strstr(one, new_px));
    assert_true(strstr(one, stored_px) < strstr(one, new_px)); /* stored first, then new */
    free(one);
    free(log);

    assert_false(instance_healthy(t));
    arbh_instance *in = arbh_host_find(testhost_host(t), "recorder");
    assert_non_null(strstr(in->health, "1 conflicting rows"));
    assert_non_null(strstr(in->health, key));
    char *body = NULL;
    assert_int_equal(health(t, &body), 503);
    assert_non_null(strstr(body, "\"conflicts\":1"));
    free(body);
    testhost_free(t);
    /* The stored row stays as it was; nothing was added. */
    snprintf(sql, sizeof sql, "SELECT price FROM trades WHERE run_id = %lld AND trade_id = %lld",
             (long long)run, (long long)t5.trade_id);
    assert_int_equal(q_int(c, sql), t5.price + 1);
    assert_int_equal(count_in_run(c, "trades", run), (long long)n);
    PQfinish(c);
}

/* A batch is COPYed straight into the tables; one whose rows are partly
 * stored already (the source read again from an older position) fails that
 * COPY on the key, and goes again through the staging tables: each row ends
 * up stored once, the stored ones counted as replays, and the fallback is
 * counted in its metric, which /metrics shows with its HELP text. */
static void batch_partly_stored_falls_back_to_staging_and_stores_each_row_once(void **state)
{
    (void)state;
    const uint64_t n = 150; /* batch_rows is 200 here: one batch holds stored and new rows */
    fresh_db("rec_partial");
    PGconn *c = connect_db("rec_partial");
    testhost *t = start_run_host("rec_partial", "rec-partial", NULL);
    uint64_t run = testhost_host(t)->run.id;
    record_through(t, n);
    assert_int_equal(metric_value(t, 'c', "recorder_copy_fallbacks_total", NULL), 0);
    assert_int_equal(table_metric(t, "recorder_rows_inserted_total", "trades"), n);

    /* Records n/2 .. 3n/2-1: the first half of them stored, the rest new. */
    publish_records(t, n / 2, n + n / 2);
    committed_wait w = {t, 2 * n};
    assert_true(testhost_run_until(t, both_tables_committed, &w, 20 * SEC));
    assert_true(metric_value(t, 'c', "recorder_copy_fallbacks_total", NULL) >= 1);
    assert_true(metric_value(t, 'c', "recorder_copy_fallbacks_total", NULL) <=
                metric_value(t, 'c', "recorder_batches_total", NULL));
    assert_int_equal(table_metric(t, "recorder_rows_inserted_total", "trades"), n + n / 2);
    assert_int_equal(table_metric(t, "recorder_rows_inserted_total", "order_events"), n + n / 2);
    assert_int_equal(table_metric(t, "recorder_replayed_total", "trades"), n / 2);
    assert_int_equal(table_metric(t, "recorder_replayed_total", "order_events"), n / 2);
    assert_int_equal(table_metric(t, "recorder_conflicts_total", "trades"), 0);
    assert_int_equal(table_metric(t, "recorder_conflicts_total", "order_events"), 0);
    assert_true(instance_healthy(t));

    /* New rows after the replay go in again, each once. */
    publish_records(t, n + n / 2, 2 * n);
    w.rows = 2 * n + n / 2;
    assert_true(testhost_run_until(t, both_tables_committed, &w, 20 * SEC));
    assert_int_equal(table_metric(t, "recorder_rows_inserted_total", "trades"), 2 * n);
    assert_int_equal(table_metric(t, "recorder_rows_inserted_total", "order_events"), 2 * n);

    struct evbuffer *b = evbuffer_new();
    arbh_metrics_render(testhost_host(t), b);
    size_t len = evbuffer_get_length(b);
    char *text = calloc(1, len + 1);
    evbuffer_remove(b, text, len);
    evbuffer_free(b);
    const char *help = strstr(text, "# HELP recorder_copy_fallbacks_total ");
    assert_non_null(help);
    const char *eol = strchr(help, '\n');
    assert_non_null(eol);
    const char *unit = strstr(help, "(batches)");
    assert_true(unit && unit < eol);
    assert_non_null(strstr(text, "\nrecorder_copy_fallbacks_total"));
    free(text);
    testhost_free(t);

    assert_int_equal(count_in_run(c, "trades", run), (long long)(2 * n));
    assert_int_equal(count_in_run(c, "order_events", run), (long long)(2 * n));
    assert_trades_exactly(c, 2 * n);
    PQfinish(c);
}

int main(int argc, char **argv)
{
    (void)argc;
    rec_test_reexec_under_pg(argv[0]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(migrations_apply_once_and_rerun_as_no_ops),
        cmocka_unit_test(database_from_before_runs_migrates_its_rows_to_run_0),
        cmocka_unit_test(order_ids_above_2_63_are_found_by_the_api_id_after_migration_7),
        cmocka_unit_test(readme_queries_use_their_indexes),
        cmocka_unit_test(replayed_records_are_stored_once),
        cmocka_unit_test(batch_of_many_copy_chunks_is_stored_exactly),
        cmocka_unit_test(replayed_batches_after_a_fallback_are_staged_at_once),
        cmocka_unit_test(fees_are_stored_with_trades_and_fills),
        cmocka_unit_test(position_is_committed_with_the_rows_and_resumed_after_restart),
        cmocka_unit_test(crash_at_any_point_loses_nothing_and_duplicates_nothing),
        cmocka_unit_test(stalled_flush_reports_slow_then_recovers),
        cmocka_unit_test(flush_past_the_timeout_is_retried_on_a_new_connection),
        cmocka_unit_test(refused_flush_is_one_outage_until_the_batch_commits),
        cmocka_unit_test(malformed_dsn_is_a_config_error_with_its_line),
        cmocka_unit_test(database_outage_mid_run_records_exactly_what_was_produced),
        cmocka_unit_test(database_down_pauses_delivery_then_catches_up_losing_nothing),
        cmocka_unit_test(paused_recorder_on_its_own_thread_pushes_back_on_publishers),
        cmocka_unit_test(low_water_at_or_above_high_water_is_a_config_error),
        cmocka_unit_test(hot_reload_keeps_held_rows_and_the_position),
        cmocka_unit_test(announcements_change_the_run_row_only_when_something_changed),
        cmocka_unit_test(two_runs_back_to_back_store_every_row_of_both),
        cmocka_unit_test(seed_of_the_generator_is_stored_with_the_run),
        cmocka_unit_test(replay_of_the_same_run_doubles_nothing),
        cmocka_unit_test(forged_row_under_a_stored_key_is_a_conflict_and_identical_rows_replays),
        cmocka_unit_test(batch_partly_stored_falls_back_to_staging_and_stores_each_row_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_recorder_sim.c -- the recorder behind the whole simulated market
 * (clock, generator, matcher, agents: tests/integration/test_sim_common.h)
 * in the real host, against a throwaway PostgreSQL that is stopped hard in
 * the middle of the run and started again. Afterwards the trades table must
 * equal exactly what the matcher produced (count and digest), and the
 * order_events table must hold every order event, as a subscriber next to
 * the recorder saw them on the bus.
 *
 * The matcher is matcher.so when built, else the simulation's stub matcher.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../plugins/recorder/pg_writer.h"
#include "host.h"
#include "test_recorder_support.h"
#include "test_sim_common.h"
#include "testhost.h"

#define MS 1000000LL
#define SEC 1000000000LL

/* What the matcher produced, as seen by a subscriber beside the recorder. */
typedef struct produced {
    arb_trade *trades;
    size_t n, cap;
    uint64_t events;
    uint64_t bad;
} produced;

static void on_trade(void *user, const arb_msg *m)
{
    produced *p = user;
    arb_trade t;
    if (arb_trade_decode(m->data, m->len, &t)) {
        p->bad++;
        return;
    }
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 4096;
        p->trades = realloc(p->trades, p->cap * sizeof *p->trades);
        assert_non_null(p->trades);
    }
    p->trades[p->n++] = t;
}

static void on_event(void *user, const arb_msg *m)
{
    produced *p = user;
    arb_order_event e;
    if (arb_order_event_decode(m->data, m->len, &e))
        p->bad++;
    else
        p->events++;
}

static rec_scale sim_scale(const arb_trade *t)
{
    (void)t;
    return (rec_scale){2, 3}; /* SIM_INSTRUMENTS: both books */
}

static int recorder_healthy(testhost *t)
{
    arbh_instance *in = arbh_host_find(testhost_host(t), "recorder");
    assert_non_null(in);
    return in->healthy;
}

typedef struct waiting {
    testhost *t;
    produced *p;
    size_t trades;
} waiting;

static int trades_reached(void *user)
{
    waiting *w = user;
    return w->p->n >= w->trades;
}

static void outage_mid_market_run_records_exactly_what_the_matcher_produced(void **state)
{
    (void)state;
    int small = sim_sanitized();
    fresh_db("rec_sim");
    /* The clock runs at 2x real time for 16 simulated seconds (about 8 s of
     * wall time): long enough that the market is still running when the
     * server is back (pg_ctlcluster start alone can take 2 s), with a known
     * end (the clock stops the host at its last tick, then the recorder
     * writes what it holds as it stops). */
    char *ini = sim_ini(7, 1600, small ? 200 : 1000,
                        "[plugin recorder]\nload = recorder.so\ndsn = dbname=rec_sim\n"
                        "flush_interval_ms = 20\nbackoff_min_ms = 50\nbackoff_max_ms = 300\n"
                        "drain_timeout_ms = 60000\n");
    const char *speed[] = {"clock.speed=2"}; /* sim_ini sets 0: replaced, not set twice */
    testhost *t = testhost_new_with(ini, speed, 1);
    free(ini);
    assert_non_null(t);
    produced p = {0};
    arb_ctx *ctx = testhost_ctx(t);
    assert_true(arb_subscribe(ctx, ARB_TOPIC_TRADE_EXECUTED, on_trade, &p) >= 0);
    assert_true(arb_subscribe(ctx, ARB_TOPIC_ORDER_EVENTS, on_event, &p) >= 0);
    assert_int_equal(testhost_start(t), ARB_OK);

    waiting w = {t, &p, small ? 100 : 500};
    assert_true(testhost_run_until(t, trades_reached, &w, 60 * SEC));
    assert_false(testhost_shut_down(t, NULL));

    pid_t stopper = pg_ctl_spawn("stop");
    int saw_down = 0;
    while (!child_done(stopper)) {
        testhost_run(t, 5 * MS);
        saw_down |= !recorder_healthy(t);
    }
    size_t at_stop = p.n;
    int64_t deadline = rec_clock_ns() + 30 * SEC;
    while ((!saw_down || p.n < at_stop + w.trades) && rec_clock_ns() < deadline &&
           !testhost_shut_down(t, NULL)) {
        testhost_run(t, 5 * MS);
        saw_down |= !recorder_healthy(t);
    }
    assert_true(saw_down);
    pid_t starter = pg_ctl_spawn("start");
    while (!child_done(starter))
        testhost_run(t, 5 * MS);
    /* The outage lay inside the run: trades kept coming during it and the
     * market was still going when the server came back. */
    assert_true(p.n > at_stop);
    assert_false(testhost_shut_down(t, NULL));
    size_t at_restart = p.n;
    testhost_run(t, 120 * SEC); /* returns when the clock's last tick stops the host */
    assert_true(testhost_shut_down(t, NULL));
    assert_true(p.n > at_restart);
    testhost_free(t); /* the recorder writes what it still holds */

    assert_int_equal(p.bad, 0);
    PGconn *c = connect_db("rec_sim");
    assert_trades_table_holds(c, p.trades, p.n, sim_scale);
    assert_int_equal(q_int(c, "SELECT count(*) FROM order_events"), (long long)p.events);
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT next_offset FROM recorder_offsets WHERE topic = 'trade_executed'");
    assert_int_equal(q_int(c, sql), (long long)p.n);
    PQfinish(c);
    free(p.trades);
}

int main(int argc, char **argv)
{
    (void)argc;
    rec_test_reexec_under_pg(argv[0]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(outage_mid_market_run_records_exactly_what_the_matcher_produced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

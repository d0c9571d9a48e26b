/*
 * test_sim_latency.c -- conf.d/sim.ini as shipped (the venues' fees from
 * instruments.ini), with the same seed at three link latencies: none; 1 ms
 * each way to both venues; 1 ms to XA and 20 ms to XB. Pins the effects'
 * directions: the arbitrageur's IOC legs fill less often and its unhedged
 * position grows as latency grows; with taker fees above the cross-venue gap
 * it stops trading; and a run with latency is as reproducible as one
 * without. Prints the table the README shows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <unistd.h>

#include "host.h" /* the links' metrics */
#include "test_sim_common.h"

typedef struct xarb_run {
    sim_digest digest;
    int64_t last_px[2]; /* XA, XB: the mark */
    sim_reports reports;
    uint64_t attempts, legs_filled, unhedged;
    int64_t fees, pnl;
} xarb_run;

static void on_trade(void *user, const arb_msg *m)
{
    xarb_run *r = user;
    arb_trade t;
    if (arb_trade_decode(m->data, m->len, &t) == ARB_OK)
        r->last_px[t.venue[1] == 'B'] = t.price;
}

static long long ticks(void) { return sim_sanitized() ? 300 : 3000; }

/* conf.d/sim.ini, its agents reporting, and `extra` sections after it; the
 * clock's ticks and the matcher's build replace sim.ini's as -s does (a
 * key sim.ini sets cannot be set again). */
static void run(const char *extra, xarb_run *out)
{
    memset(out, 0, sizeof *out);
    out->digest.hash = 1469598103934665603ull;
    char path[PATH_MAX], *ini = NULL;
    assert_non_null(realpath("conf.d/sim.ini", path));
    size_t n = 0;
    FILE *f = open_memstream(&ini, &n);
    fprintf(f, "include = %s\n[plugin arb]\nreport_topic = sim.reports\n%s", path, extra);
    fclose(f);
    char ticks_ov[64], load_ov[512];
    snprintf(ticks_ov, sizeof ticks_ov, "clock.ticks=%lld", ticks());
    snprintf(load_ov, sizeof load_ov, "matcher.load=%s.so", sim_matcher());
    const char *ov[] = {ticks_ov, load_ov};
    testhost *h = testhost_new_with(ini, ov, 2);
    free(ini);
    if (!h)
        fail_msg("%s", testhost_last_error());
    arb_ctx *ctx = testhost_ctx(h);
    assert_true(arb_subscribe(ctx, ARB_TOPIC_TRADE_EXECUTED, sim_digest_on_trade, &out->digest) >=
                0);
    assert_true(
        arb_subscribe(ctx, arb_topic(ctx, "sim.reports"), sim_reports_on_msg, &out->reports) >= 0);
    assert_true(arb_subscribe(ctx, ARB_TOPIC_TRADE_EXECUTED, on_trade, out) >= 0);
    assert_int_equal(testhost_start(h), ARB_OK);
    testhost_run(h, 120ll * 1000000000);
    int code;
    assert_true(testhost_shut_down(h, &code));
    testhost_free(h);
    arb_agent_report *r = sim_report_of(&out->reports, 20);
    assert_non_null(r);
    out->attempts = r->strategy[0];
    out->legs_filled = r->strategy[1];
    out->fees = (int64_t)r->strategy[2];
    out->unhedged = r->strategy[3];
    /* PnL net of fees (cash is), the positions marked at each venue's last
     * trade; instruments are XA then XB in sim.ini. */
    assert_int_equal(r->n_instruments, 2);
    for (uint32_t i = 0; i < 2; i++)
        out->pnl += r->cash[i] + r->position[i] * out->last_px[i];
}

static double fill_rate(const xarb_run *r)
{
    return r->attempts ? (double)r->legs_filled / (double)(2 * r->attempts) : 0;
}

static void print_row(const char *name, const xarb_run *r)
{
    /* cash is price units x quantity units (0.01 x 0.001): 1e5 per dollar. */
    printf("| %-22s | %8.2f | %6llu | %5llu (%4.1f%%) | %8.2f | %6.3f |\n", name,
           (double)r->pnl / 1e5, (unsigned long long)r->attempts,
           (unsigned long long)r->legs_filled, 100 * fill_rate(r), (double)r->fees / 1e5,
           (double)r->unhedged / 1e3);
}

#define LAT_BOTH_1MS "[latency]\nseed = 42\nXA = constant 1ms\nXB = constant 1ms\n"
#define LAT_1_AND_20 "[latency]\nseed = 42\nXA = constant 1ms\nXB = constant 20ms\n"

static void latency_costs_the_arbitrageur_fills_and_hedges(void **state)
{
    (void)state;
    static xarb_run none, one, skew;
    run("", &none);
    run(LAT_BOTH_1MS, &one);
    run(LAT_1_AND_20, &skew);
    printf("| run (seed 42, %lld ticks) | PnL net $ | pairs | legs filled | fees $ | "
           "unhedged BTC |\n",
           ticks());
    print_row("no latency", &none);
    print_row("1 ms both venues", &one);
    print_row("1 ms XA, 20 ms XB", &skew);
    assert_true(none.attempts > 20);
    assert_true(one.attempts > 0 && skew.attempts > 0);
    assert_true(fill_rate(&none) > fill_rate(&one));
    assert_true(fill_rate(&one) > fill_rate(&skew));
    assert_true(one.unhedged > none.unhedged);
    assert_true(skew.unhedged > one.unhedged);
    assert_true(none.fees > 0);
}

static void same_seed_with_latency_gives_the_same_trades(void **state)
{
    (void)state;
    static xarb_run a, b;
    run(LAT_1_AND_20 "XB.arb.down = lognormal 5ms 30ms\n", &a);
    run(LAT_1_AND_20 "XB.arb.down = lognormal 5ms 30ms\n", &b);
    assert_true(a.digest.trades > 1000);
    assert_int_equal(a.digest.trades, b.digest.trades);
    assert_int_equal(a.digest.hash, b.digest.hash);
    assert_int_equal(a.legs_filled, b.legs_filled);
}

/* The cross-venue gap is a few bps, and a shock's 80 at most: 50 bps a leg
 * is more than any of it. */
static void taker_fees_above_the_gap_stop_the_arbitrageur(void **state)
{
    (void)state;
    static xarb_run r;
    run("[fee_tier arb]\naccounts = 20\ntaker_fee_bps = 50\n", &r);
    assert_int_equal(r.attempts, 0);
    assert_int_equal(r.fees, 0);
}

typedef struct first_seen {
    int64_t tick_ns, command_ns;
    uint64_t commands;
} first_seen;

static int64_t mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void seen_tick(void *user, const arb_msg *m)
{
    (void)m;
    first_seen *f = user;
    if (!f->tick_ns)
        f->tick_ns = mono();
}

static void seen_command(void *user, const arb_msg *m)
{
    (void)m;
    first_seen *f = user;
    if (!f->command_ns)
        f->command_ns = mono();
    f->commands++;
}

/* In wall-clock mode a link's delay is real time: the first order command
 * (sent on the first tick) reaches the matcher's side 50 ms later. */
static void wall_clock_links_delay_in_real_time(void **state)
{
    (void)state;
    char *ini = sim_ini(42, 40, 50, "[latency]\nXA = constant 50ms\nXB = constant 50ms\n");
    const char *wall[] = {"clock.mode=wall"}; /* sim_ini's clock is mode = sim */
    testhost *h = testhost_new_with(ini, wall, 1);
    free(ini);
    if (!h)
        fail_msg("%s", testhost_last_error());
    static first_seen f;
    arb_ctx *ctx = testhost_ctx(h);
    assert_true(arb_subscribe(ctx, ARB_TOPIC_SYSTEM_TICKS, seen_tick, &f) >= 0);
    assert_true(arb_subscribe(ctx, ARB_TOPIC_ORDER_COMMANDS, seen_command, &f) >= 0);
    assert_int_equal(testhost_start(h), ARB_OK);
    testhost_run(h, 10ll * 1000000000);
    assert_true(f.commands > 0);
    assert_true(f.command_ns - f.tick_ns >= 50 * 1000000);
    arbh_metric *p50 = arbh_metric_get(testhost_host(h), NULL, 'g', "bus_link_delay_p50_ns",
                                       "participant=\"noise\",venue=\"XA\",direction=\"up\"", NULL);
    assert_non_null(p50);
    assert_int_equal(atomic_load(&p50->u.gauge.value), 50 * 1000000);
    testhost_free(h);
}

/* Hot reloads of participants while their links hold records: what was
 * held for them follows the new instance and is delivered to it (none
 * dropped), and the run goes on to its last tick. (Not the same trades as
 * without reloads: under the simulated clock, time moves on while a
 * participant is paused.) */
static void count_tick(void *user, const arb_msg *m)
{
    (void)m;
    (*(uint64_t *)user)++;
}

static uint64_t link_counter(testhost *h, const char *name, const char *who, const char *venue,
                             const char *dir)
{
    char labels[128];
    snprintf(labels, sizeof labels, "participant=\"%s\",venue=\"%s\",direction=\"%s\"", who, venue,
             dir);
    arbh_metric *m = arbh_metric_get(testhost_host(h), NULL, 'c', name, labels, NULL);
    assert_non_null(m);
    return atomic_load(&m->u.counter.value);
}

static void reloads_under_latency_keep_what_the_links_hold(void **state)
{
    (void)state;
    static const char *const who[][2] = {
        {"noise", "agent_noise"}, {"arb", "agent_arbitrageur"}, {"mm_xb", "agent_market_maker"}};
    long long n = sim_sanitized() ? 200 : 1000;
    static sim_digest digest = {1469598103934665603ull, 0};
    static uint64_t ticks;
    char *ini = sim_ini(42, n, 500,
                        "[latency]\nseed = 42\nXA = constant 1ms\n"
                        "XB = lognormal 1ms 3ms\n");
    testhost *h = testhost_new(ini);
    free(ini);
    if (!h)
        fail_msg("%s", testhost_last_error());
    arb_ctx *ctx = testhost_ctx(h);
    assert_true(arb_subscribe(ctx, ARB_TOPIC_TRADE_EXECUTED, sim_digest_on_trade, &digest) >= 0);
    assert_true(arb_subscribe(ctx, ARB_TOPIC_SYSTEM_TICKS, count_tick, &ticks) >= 0);
    assert_int_equal(testhost_start(h), ARB_OK);
    int reloads = 0;
    for (int i = 0; i < 60 && ticks < (uint64_t)n; i++) {
        testhost_run(h, 1000000);
        char path[1024], err[512];
        snprintf(path, sizeof path, "%s", testhost_plugin_path(who[i % 3][1]));
        if (ticks < (uint64_t)n) {
            assert_int_equal(testhost_reload(h, who[i % 3][0], path, err, sizeof err), ARB_OK);
            reloads++;
        }
    }
    testhost_run(h, 120ll * 1000000000);
    assert_int_equal(ticks, n);
    assert_true(reloads > 3);
    assert_true(digest.trades > 100);
    static const char *const venues[] = {"XA", "XB"}, *const dirs[] = {"up", "down"};
    uint64_t delayed = 0, dropped = 0;
    for (int w = 0; w < 3; w++)
        for (int v = 0; v < 2; v++)
            for (int d = 0; d < 2; d++) {
                delayed += link_counter(h, "bus_link_delayed_total", who[w][0], venues[v], dirs[d]);
                dropped += link_counter(h, "bus_link_dropped_total", who[w][0], venues[v], dirs[d]);
            }
    assert_true(delayed > 1000);
    assert_int_equal(dropped, 0);
    int code;
    assert_true(testhost_shut_down(h, &code));
    testhost_free(h);
}

/* Records bigger than the links' blocks of held bytes (64 KB), a few in a
 * row, each held once for every participant that reads it and delivered to
 * each. */
static void big_records_travel_the_links(void **state)
{
    (void)state;
    static uint64_t ticks;
    ticks = 0;
    char *ini = sim_ini(42, 0, 50, "[latency]\nseed = 42\nXA = constant 1ms\n");
    testhost *h = testhost_new(ini);
    free(ini);
    if (!h)
        fail_msg("%s", testhost_last_error());
    arb_ctx *ctx = testhost_ctx(h);
    assert_true(arb_subscribe(ctx, ARB_TOPIC_SYSTEM_TICKS, count_tick, &ticks) >= 0);
    assert_int_equal(testhost_start(h), ARB_OK);
    testhost_run(h, 20 * 1000000);
    uint64_t before = 0;
    static const char *const who[] = {"noise", "arb", "mm_xa", "mm_xb", "adaptive"};
    for (int w = 0; w < 5; w++)
        before += link_counter(h, "bus_link_delayed_total", who[w], "XA", "down");
    /* Keyed as XA:BTCUSD, which the agents trading XA read (agents
     * subscribe by key: records of other keys are not held for them), so
     * their links to XA hold them; the body names another book, which the
     * agents then ignore. */
    enum { LEVELS = 3000, N = 5 };
    char xa[ARB_VENUE_LEN], btc[ARB_SYMBOL_LEN];
    arb_fixstr_set(xa, ARB_VENUE_LEN, "XA");
    arb_fixstr_set(btc, ARB_SYMBOL_LEN, "BTCUSD");
    uint64_t key = arb_instrument_key(xa, btc);
    size_t cap = ARB_MD_LEN(LEVELS);
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    for (int k = 0; k < N; k++) {
        arb_market_data md = {.kind = ARB_MD_SNAPSHOT, .n_levels = LEVELS};
        arb_fixstr_set(md.venue, ARB_VENUE_LEN, "XA");
        arb_fixstr_set(md.symbol, ARB_SYMBOL_LEN, "BIGUSD");
        assert_int_equal(arb_market_data_encode(&md, buf, cap), cap);
        for (uint32_t i = 0; i < LEVELS; i++) {
            arb_md_level l = {i % 2 ? ARB_SIDE_SELL : ARB_SIDE_BUY, 1, 100 + i, 1};
            arb_md_put_level(buf, i, &l);
        }
        assert_int_equal(arb_publish(ctx, ARB_TOPIC_MARKET_DATA, key, buf, cap), ARB_OK);
    }
    free(buf);
    uint64_t seen = ticks;
    while (ticks < seen + 5)
        testhost_run(h, 10 * 1000000);
    uint64_t after = 0, dropped = 0;
    for (int w = 0; w < 5; w++) {
        after += link_counter(h, "bus_link_delayed_total", who[w], "XA", "down");
        dropped += link_counter(h, "bus_link_dropped_total", who[w], "XA", "down");
    }
    assert_true(after >= before + 5 * N);
    assert_int_equal(dropped, 0);
    testhost_free(h);
}

/* A [latency] key that names no participant, or a bad distribution, stops
 * the host before anything starts, naming the line. */
static void bad_latency_config_is_refused_with_its_line(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "[latency]\nXA.matcher = constant 1ms\n", /* not a participant */
        "[latency]\nXA.nobody = constant 1ms\n",       "[latency]\nXA = normal 1ms\n",
        "[latency]\nXA.arb.sideways = constant 1ms\n", "[latency]\nseed = many\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *ini = sim_ini(1, 10, 10, bad[i]);
        testhost *h = testhost_new(ini);
        free(ini);
        if (h)
            fail_msg("accepted: %s", bad[i]);
        assert_non_null(strstr(testhost_last_error(), "[latency]"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(latency_costs_the_arbitrageur_fills_and_hedges),
        cmocka_unit_test(same_seed_with_latency_gives_the_same_trades),
        cmocka_unit_test(taker_fees_above_the_gap_stop_the_arbitrageur),
        cmocka_unit_test(wall_clock_links_delay_in_real_time),
        cmocka_unit_test(reloads_under_latency_keep_what_the_links_hold),
        cmocka_unit_test(big_records_travel_the_links),
        cmocka_unit_test(bad_latency_config_is_refused_with_its_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

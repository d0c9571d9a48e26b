/*
 * test_sim.c -- the whole simulation in the real host: clock at max speed,
 * generator, matcher and every agent. Pins determinism (same seed, same
 * trade_executed bytes; another seed, another stream), that every kind of
 * agent takes part, that `ticks = N` stops the host, and that arb-host with
 * conf.d/sim.ini prints the digest line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <unistd.h>

#include "test_sim_common.h"

typedef struct run_result {
    sim_digest digest;
    sim_reports reports;
    uint64_t ticks, commands;
    int shut_down, exit_code;
} run_result;

static void count_msg(void *user, const arb_msg *m)
{
    (void)m;
    (*(uint64_t *)user)++;
}

static void run_sim(long long seed, long long ticks, int population, run_result *out)
{
    memset(out, 0, sizeof *out);
    out->digest.hash = 1469598103934665603ull;
    char *ini = sim_ini(seed, ticks, population, NULL);
    testhost *h = testhost_new(ini);
    free(ini);
    assert_non_null(h);
    arb_ctx *ctx = testhost_ctx(h);
    assert_true(arb_subscribe(ctx, ARB_TOPIC_TRADE_EXECUTED, sim_digest_on_trade, &out->digest) >=
                0);
    assert_true(
        arb_subscribe(ctx, arb_topic(ctx, "sim.reports"), sim_reports_on_msg, &out->reports) >= 0);
    assert_true(arb_subscribe(ctx, ARB_TOPIC_SYSTEM_TICKS, count_msg, &out->ticks) >= 0);
    assert_true(arb_subscribe(ctx, ARB_TOPIC_ORDER_COMMANDS, count_msg, &out->commands) >= 0);
    assert_int_equal(testhost_start(h), ARB_OK);
    testhost_run(h, 60ll * 1000000000);
    out->shut_down = testhost_shut_down(h, &out->exit_code);
    testhost_free(h);
}

static long long ticks_for_test(void) { return sim_sanitized() ? 300 : 1500; }

static void same_seed_gives_the_same_trade_stream(void **state)
{
    (void)state;
    static run_result a, b;
    run_sim(42, ticks_for_test(), 300, &a);
    run_sim(42, ticks_for_test(), 300, &b);
    assert_true(a.digest.trades > 100);
    assert_int_equal(a.digest.trades, b.digest.trades);
    assert_int_equal(a.digest.hash, b.digest.hash);
    assert_int_equal(a.commands, b.commands);
}

static void another_seed_gives_another_trade_stream(void **state)
{
    (void)state;
    static run_result a, b;
    run_sim(42, ticks_for_test(), 300, &a);
    run_sim(43, ticks_for_test(), 300, &b);
    assert_true(a.digest.trades > 100 && b.digest.trades > 100);
    assert_int_not_equal(a.digest.hash, b.digest.hash);
}

static void tick_limit_stops_the_host_after_exactly_n_ticks(void **state)
{
    (void)state;
    static run_result r;
    run_sim(7, 200, 100, &r);
    assert_true(r.shut_down);
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(r.ticks, 200);
    /* Every agent saw every tick once, in order. */
    assert_int_equal(r.reports.n, 5);
    for (int i = 0; i < r.reports.n; i++) {
        const arb_agent_report *rep = &r.reports.last[i];
        assert_int_equal(rep->ticks, 200);
        assert_int_equal(rep->first_tick, 1);
        assert_int_equal(rep->last_tick, 200);
        assert_int_equal(rep->tick_gaps + rep->tick_dups + rep->dup_fills, 0);
    }
}

static void every_kind_of_agent_trades(void **state)
{
    (void)state;
    static run_result r;
    run_sim(11, ticks_for_test(), 300, &r);
    const uint64_t accounts[] = {10, 11, 20, 30, 100000};
    for (size_t i = 0; i < 5; i++) {
        arb_agent_report *rep = sim_report_of(&r.reports, accounts[i]);
        assert_non_null(rep);
        if (rep->fills == 0)
            fprintf(stderr, "account %llu made no fill\n", (unsigned long long)accounts[i]);
        assert_true(rep->orders_sent > 0);
        assert_true(rep->fills > 0);
    }
    /* The arbitrageur found gaps; the adaptive agent finished episodes. */
    assert_true(sim_report_of(&r.reports, 20)->strategy[0] > 0);
    assert_true(sim_report_of(&r.reports, 30)->strategy[0] >= 4);
}

typedef struct tick_log {
    uint64_t n, last_seq, out_of_order;
    int64_t first_sim, last_sim, first_wall, last_wall;
} tick_log;

static void log_tick(void *user, const arb_msg *m)
{
    tick_log *l = user;
    arb_tick t;
    if (arb_tick_decode(m->data, m->len, &t))
        return;
    if (t.seq != l->last_seq + 1)
        l->out_of_order++;
    if (!l->n)
        l->first_sim = t.sim_ns, l->first_wall = t.wall_ns;
    l->last_sim = t.sim_ns, l->last_wall = t.wall_ns;
    l->last_seq = t.seq;
    l->n++;
}

static void run_clock(const char *keys, int64_t run_ns, tick_log *l)
{
    char ini[512];
    snprintf(ini, sizeof ini, "[host]\nlog_level = warn\n[plugin clock]\nload = clock.so\n%s",
             keys);
    testhost *h = testhost_new(ini);
    assert_non_null(h);
    memset(l, 0, sizeof *l);
    assert_true(arb_subscribe(testhost_ctx(h), ARB_TOPIC_SYSTEM_TICKS, log_tick, l) >= 0);
    assert_int_equal(testhost_start(h), ARB_OK);
    testhost_run(h, run_ns);
    testhost_free(h);
}

/* Wall mode ticks every interval of real time and stamps the wall clock;
 * sim mode at speed N moves simulated time N times faster than real time. */
static void wall_and_scaled_clocks_keep_real_time(void **state)
{
    (void)state;
    tick_log l;
    run_clock("mode = wall\ninterval_ms = 5\n", 200ll * 1000000, &l);
    assert_true(l.n >= 10 && l.n <= 45);
    assert_int_equal(l.out_of_order, 0);
    assert_true(l.last_sim == l.last_wall);
    run_clock("mode = sim\ninterval_ms = 10\nspeed = 20\n", 200ll * 1000000, &l);
    assert_int_equal(l.out_of_order, 0);
    /* 400 at 20x (one tick per 0.5 ms of real time), whatever the loop's
     * timer resolution */
    assert_true(l.n >= 300 && l.n <= 420);
    assert_int_equal(l.last_sim - l.first_sim, (int64_t)(l.n - 1) * 10000000);
    assert_int_equal(l.first_sim, 1704067200ll * 1000000000);
}

/* The digest plugin prints, at stop, the hash of exactly the stream the
 * test saw: stdout is captured around the host's stop. */
static void digest_plugin_prints_the_hash_of_the_trade_stream(void **state)
{
    (void)state;
    sim_digest mine = {1469598103934665603ull, 0};
    char *ini = sim_ini(9, 400, 200, "[plugin digest]\nload = digest.so\n");
    testhost *h = testhost_new(ini);
    free(ini);
    assert_non_null(h);
    arb_ctx *ctx = testhost_ctx(h);
    assert_true(arb_subscribe(ctx, ARB_TOPIC_TRADE_EXECUTED, sim_digest_on_trade, &mine) >= 0);
    assert_int_equal(testhost_start(h), ARB_OK);
    testhost_run(h, 60ll * 1000000000);
    fflush(stdout);
    FILE *cap = tmpfile();
    assert_non_null(cap);
    int saved = dup(1);
    dup2(fileno(cap), 1);
    testhost_free(h);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    char line[256] = "", expect[256];
    rewind(cap);
    assert_non_null(fgets(line, sizeof line, cap));
    snprintf(expect, sizeof expect, "trade_digest=%016llx trades=%llu\n",
             (unsigned long long)mine.hash, (unsigned long long)mine.trades);
    assert_true(mine.trades > 0);
    assert_string_equal(line, expect);
    /* Then the run's figures: one row per agent that traded, whose PnL
     * (marked to the same last prices) sums to zero, as trading among
     * themselves must; then the venues. */
    assert_non_null(fgets(line, sizeof line, cap));
    assert_int_equal(strncmp(line, "AGENT ", 6), 0);
    double sum = 0;
    int agents = 0;
    while (fgets(line, sizeof line, cap) && strncmp(line, "VENUE ", 6)) {
        char name[64];
        double pnl;
        assert_int_equal(sscanf(line, "%63s %lf", name, &pnl), 2);
        sum += pnl;
        agents++;
    }
    assert_true(agents >= 2);
    assert_true(sum > -0.01 * agents && sum < 0.01 * agents);
    assert_int_equal(strncmp(line, "VENUE ", 6), 0);
    fclose(cap);
}

/* arb-host -c conf.d/sim.ini -s clock.ticks=N prints the digest and exits 0;
 * twice the same line. Needs the production matcher and instruments file. */
static int run_arb_host(const char *extra, char *line, size_t n)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s/arb-host -c conf.d/sim.ini -s clock.ticks=%lld %s 2>/dev/null",
             sim_build_dir(), sim_sanitized() ? 300ll : 2000ll, extra);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    line[0] = 0;
    char buf[512];
    while (fgets(buf, sizeof buf, p))
        if (!strncmp(buf, "trade_digest=", 13))
            snprintf(line, n, "%s", buf);
    return pclose(p);
}

static void arb_host_prints_the_same_digest_for_the_same_seed(void **state)
{
    (void)state;
    char path[1024];
    struct stat st;
    snprintf(path, sizeof path, "%s/plugins/matcher.so", sim_build_dir());
    if (stat(path, &st) || stat("conf.d/instruments.ini", &st) || stat("conf.d/sim.ini", &st)) {
        print_message("skipped: needs matcher.so, conf.d/instruments.ini and conf.d/sim.ini\n");
        skip();
    }
    char a[512], b[512], c[512];
    assert_int_equal(run_arb_host("", a, sizeof a), 0);
    assert_int_equal(run_arb_host("", b, sizeof b), 0);
    assert_int_equal(run_arb_host("-s generator.seed=4242", c, sizeof c), 0);
    assert_true(strlen(a) > 30);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    unsigned long long trades = 0;
    assert_non_null(strstr(a, " trades="));
    sscanf(strstr(a, " trades=") + 8, "%llu", &trades);
    assert_true(trades > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_seed_gives_the_same_trade_stream),
        cmocka_unit_test(another_seed_gives_another_trade_stream),
        cmocka_unit_test(tick_limit_stops_the_host_after_exactly_n_ticks),
        cmocka_unit_test(every_kind_of_agent_trades),
        cmocka_unit_test(wall_and_scaled_clocks_keep_real_time),
        cmocka_unit_test(digest_plugin_prints_the_hash_of_the_trade_stream),
        cmocka_unit_test(arb_host_prints_the_same_digest_for_the_same_seed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * bench_sim.c -- the simulated market at full speed, and the hot-reload
 * pause of an agent.
 *
 * Throughput: the sim config (clock at max speed, generator, matcher, two
 * market makers, the arbitrageur, the adaptive agent and 5,000 noise
 * traders) in one host on one loop, for BENCH_SIM_TICKS ticks (default
 * 20000). Orders are order_commands through the matcher (new, cancel,
 * replace); new orders, trades and ticks are reported too.
 *
 * Reload pause: the market maker mm_xa, and the 5,000 noise traders (one
 * instance, 400 KB of state), are each reloaded 200 times between bursts of
 * ticks. The pause is the host's own measure of how long the instance stopped serving
 * (create, save, restore, start, swap; read from the host as it records it
 * for /metrics, arb_reload_pause_ns); the call time adds copying and
 * dlopen()ing the new .so, which the host does before it stops the instance.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../integration/test_sim_common.h"
#include "host.h" /* last_reload_pause_ns: the host's pause measure */

typedef struct counts {
    uint64_t commands, new_orders, trades, ticks;
} counts;

static void on_command(void *user, const arb_msg *m)
{
    counts *c = user;
    c->commands++;
    /* action is the first body byte */
    if (m->len > ARB_WIRE_HDR && ((const uint8_t *)m->data)[ARB_WIRE_HDR] == ARB_CMD_NEW)
        c->new_orders++;
}

static void on_trade(void *user, const arb_msg *m)
{
    (void)m;
    ((counts *)user)->trades++;
}

static void on_tick(void *user, const arb_msg *m)
{
    (void)m;
    ((counts *)user)->ticks++;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The process's CPU time: on a shared machine the wall clock also counts
 * the time other processes had the cores. */
static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Fees for every account (a tier, so the matcher's tier lookup is in the
 * measure too) and 1 ms each way between every participant and both venues. */
#define FEES_AND_LATENCY                                                              \
    "[fee_tier everyone]\naccounts = 0-18446744073709551615\nmaker_fee_bps = -0.25\n" \
    "taker_fee_bps = 2.5\n[latency]\nseed = 42\nXA = constant 1ms\nXB = lognormal 1ms 3ms\n"

static testhost *start_with(long long ticks, counts *c, const char *extra)
{
    char *ini = sim_ini(42, ticks, 5000, extra);
    testhost *h = testhost_new(ini);
    free(ini);
    if (!h)
        exit(1);
    arb_ctx *ctx = testhost_ctx(h);
    arb_subscribe(ctx, ARB_TOPIC_ORDER_COMMANDS, on_command, c);
    arb_subscribe(ctx, ARB_TOPIC_TRADE_EXECUTED, on_trade, c);
    arb_subscribe(ctx, ARB_TOPIC_SYSTEM_TICKS, on_tick, c);
    if (testhost_start(h) != ARB_OK)
        exit(1);
    return h;
}

static testhost *start(long long ticks, counts *c) { return start_with(ticks, c, NULL); }

/* Best figures of a configuration's runs. */
typedef struct sim_speed {
    double orders, orders_cpu, new_orders, trades, ticks;
} sim_speed;

static void print_speed(const sim_speed *b, const char *suffix)
{
    printf("bench: sim_orders_per_s%s %.0f orders/s\n", suffix, b->orders);
    printf("bench: sim_orders_per_cpu_s%s %.0f orders/s\n", suffix, b->orders_cpu);
    printf("bench: sim_new_orders_per_s%s %.0f orders/s\n", suffix, b->new_orders);
    printf("bench: sim_trades_per_s%s %.0f trades/s\n", suffix, b->trades);
    printf("bench: sim_ticks_per_s%s %.0f ticks/s\n", suffix, b->ticks);
}

static double max2(double a, double b) { return a > b ? a : b; }

/* The simulation's speed, plain (extra NULL) or with fees and link latency
 * on; kept in *best if better. */
static void throughput(const char *extra, sim_speed *best)
{
    const char *env = getenv("BENCH_SIM_TICKS");
    long long ticks = env ? atoll(env) : 20000;
    counts c = {0};
    testhost *h = start_with(ticks, &c, extra);
    int64_t t0 = mono_ns(), c0 = cpu_ns();
    testhost_run(h, 600ll * 1000000000);
    double s = (double)(mono_ns() - t0) / 1e9, cpu = (double)(cpu_ns() - c0) / 1e9;
    int code;
    if (!testhost_shut_down(h, &code) || c.ticks != (uint64_t)ticks)
        fprintf(stderr, "bench_sim: run ended early after %llu ticks\n",
                (unsigned long long)c.ticks);
    testhost_free(h);
    fprintf(stderr, "bench_sim: matcher %s, %llu ticks, %llu order commands, %.3f s\n",
            sim_matcher(), (unsigned long long)c.ticks, (unsigned long long)c.commands, s);
    best->orders = max2(best->orders, (double)c.commands / s);
    best->orders_cpu = max2(best->orders_cpu, (double)c.commands / cpu);
    best->new_orders = max2(best->new_orders, (double)c.new_orders / s);
    best->trades = max2(best->trades, (double)c.trades / s);
    best->ticks = max2(best->ticks, (double)c.ticks / s);
}

/* Reloads `instance` (built from `plugin`) N times between bursts of ticks;
 * prints p50/p99 of the pause and p99 of the whole call. */
static void reload_pause(const char *instance, const char *plugin, const char *label)
{
    enum { N = 200 };
    static int64_t pause[N], call[N];
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s", testhost_plugin_path(plugin));
    counts c = {0};
    testhost *h = start(0, &c);
    testhost_run(h, 50ll * 1000000);
    for (int i = 0; i < N; i++) {
        int64_t t0 = mono_ns();
        if (testhost_reload(h, instance, path, err, sizeof err) != ARB_OK) {
            fprintf(stderr, "bench_sim: reload failed: %s\n", err);
            exit(1);
        }
        call[i] = mono_ns() - t0;
        pause[i] = testhost_host(h)->last_reload_pause_ns;
        testhost_run(h, 2ll * 1000000);
    }
    testhost_free(h);
    qsort(pause, N, sizeof pause[0], cmp_i64);
    qsort(call, N, sizeof call[0], cmp_i64);
    printf("bench: sim_reload_pause_%s_p50 %.1f us\n", label, (double)pause[N / 2] / 1e3);
    printf("bench: sim_reload_pause_%s_p99 %.1f us\n", label, (double)pause[N * 99 / 100] / 1e3);
    printf("bench: sim_reload_call_%s_p99 %.1f us\n", label, (double)call[N * 99 / 100] / 1e3);
}

int main(void)
{
    /* Alternated, best of three each: whichever runs second in a process
     * pays for the first one's heap, and a shared machine's noise comes and
     * goes. */
    sim_speed plain = {0}, fl = {0};
    /* BENCH_SIM_ONLY=plain or fees_latency: that configuration alone (to
     * profile one of them); BENCH_SIM_ROUNDS: rounds (default 3). */
    const char *only = getenv("BENCH_SIM_ONLY"), *rounds_env = getenv("BENCH_SIM_ROUNDS");
    int rounds = rounds_env && atoi(rounds_env) > 0 ? atoi(rounds_env) : 3;
    for (int round = 0; round < rounds; round++) {
        if (!only || !strcmp(only, "plain"))
            throughput(NULL, &plain);
        if (!only || !strcmp(only, "fees_latency"))
            throughput(FEES_AND_LATENCY, &fl);
    }
    if (plain.orders > 0)
        print_speed(&plain, "");
    if (fl.orders > 0)
        print_speed(&fl, "_fees_latency");
    if (plain.orders > 0 && fl.orders > 0) {
        printf("bench: sim_fees_latency_vs_plain %.2f ratio\n", fl.orders / plain.orders);
        printf("bench: sim_fees_latency_vs_plain_cpu %.2f ratio\n",
               fl.orders_cpu / plain.orders_cpu);
    }
    if (getenv("BENCH_SIM_ONLY_THROUGHPUT"))
        return 0;
    reload_pause("mm_xa", "agent_market_maker", "market_maker");
    reload_pause("noise", "agent_noise", "noise_5000");
    return 0;
}

/*
 * test_sim_reload.c -- hot reload of strategies under a running clock.
 *
 * The market maker mm_xa is swapped 100 times between two builds of one
 * source (agent_market_maker.so and sim_mm_wide.so, which quotes 3 ticks
 * wider and tags its quotes variant 1) while the clock runs at max speed.
 * The test watches, independently of the agent:
 *   - the new behaviour took effect: its order commands switch variant
 *     exactly once per reload, and never switch back (no old-build order
 *     after a new-build one), and carry the variant's half-spread;
 *   - state continuity and no missed or doubled event: it replays every
 *     order_event of the agent's account itself, and each report the agent
 *     publishes (every tick) must equal that replay after exactly the same
 *     number of events: position, cash, open orders (count and id sum);
 *   - every tick reached the agent once: no gap, no repeat, the tick count
 *     running on across reloads.
 * Broken builds (not loadable, or refusing the state) leave the old build
 * trading; the adaptive agent keeps what it learned across reloads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <time.h>
#include <unistd.h>

#include "test_sim_common.h"

#define MM_ACCOUNT 10u
#define MAX_OPEN 256

typedef struct watch {
    /* the test's own replay of the agent's order_events */
    uint64_t events;
    int64_t position, cash;
    uint64_t open[MAX_OPEN];
    int nopen;
    /* order commands of the agent */
    uint64_t commands;
    int last_variant, transitions, bad_half_spread;
    /* reports checked against the replay */
    uint64_t reports, mismatches, tick_breaks;
    uint64_t last_ticks;
    /* the adaptive agent's learning */
    uint64_t adaptive_reports, adaptive_max_episodes, learning_lost;
    uint64_t fingerprint_at[4096];
} watch;

static void open_remove(watch *w, uint64_t id)
{
    for (int i = 0; i < w->nopen; i++)
        if (w->open[i] == id) {
            w->open[i] = w->open[--w->nopen];
            return;
        }
}

static void open_add(watch *w, uint64_t id)
{
    for (int i = 0; i < w->nopen; i++)
        if (w->open[i] == id)
            return;
    if (w->nopen < MAX_OPEN)
        w->open[w->nopen++] = id;
}

static int open_has(const watch *w, uint64_t id)
{
    for (int i = 0; i < w->nopen; i++)
        if (w->open[i] == id)
            return 1;
    return 0;
}

static void on_event(void *user, const arb_msg *m)
{
    watch *w = user;
    arb_order_event ev;
    if (m->key != MM_ACCOUNT || arb_order_event_decode(m->data, m->len, &ev))
        return;
    w->events++;
    switch (ev.kind) {
    case ARB_EV_PARTIAL:
    case ARB_EV_FILLED:
        w->position += ev.side == ARB_SIDE_BUY ? ev.last_qty : -ev.last_qty;
        w->cash += (ev.side == ARB_SIDE_BUY ? -1 : 1) * ev.last_px * ev.last_qty;
        if (ev.kind == ARB_EV_FILLED || ev.leaves_qty <= 0)
            open_remove(w, ev.order_id);
        else
            open_add(w, ev.order_id);
        break;
    case ARB_EV_ACCEPTED:
    case ARB_EV_REPLACED: open_add(w, ev.order_id); break;
    case ARB_EV_REJECTED:
        if (ev.reason == ARB_R_UNKNOWN_ORDER || !open_has(w, ev.order_id))
            open_remove(w, ev.order_id);
        break;
    default: open_remove(w, ev.order_id);
    }
}

static void on_command(void *user, const arb_msg *m)
{
    watch *w = user;
    arb_order_cmd c;
    if (arb_order_cmd_decode(m->data, m->len, &c) || c.account != MM_ACCOUNT ||
        (c.action != ARB_CMD_NEW && c.action != ARB_CMD_REPLACE))
        return;
    int variant = (int)(c.client_ref >> 32);
    uint64_t half_spread = c.client_ref & 0xffffffffu;
    if (half_spread != (variant == 1 ? 6u : 3u))
        w->bad_half_spread++;
    if (w->commands && variant != w->last_variant)
        w->transitions++;
    w->last_variant = variant;
    w->commands++;
}

static void on_report(void *user, const arb_msg *m)
{
    watch *w = user;
    arb_agent_report r;
    if (arb_agent_report_decode(m->data, m->len, &r))
        return;
    if (r.account_base == 30) {
        /* Learning survives: episodes never go back, and the same number
         * of episodes always means the same learned state. */
        w->adaptive_reports++;
        if (r.strategy[0] < w->adaptive_max_episodes)
            w->learning_lost++;
        if (r.strategy[0] > w->adaptive_max_episodes)
            w->adaptive_max_episodes = r.strategy[0];
        if (r.strategy[0] < 4096) {
            uint64_t *f = &w->fingerprint_at[r.strategy[0]];
            if (*f && *f != r.strategy[2])
                w->learning_lost++;
            *f = r.strategy[2];
        }
        return;
    }
    if (r.account_base != MM_ACCOUNT)
        return;
    w->reports++;
    uint64_t sum = 0;
    for (int i = 0; i < w->nopen; i++)
        sum += w->open[i];
    if (r.events != w->events || r.position[0] != w->position || r.cash[0] != w->cash ||
        r.open_orders != (uint64_t)w->nopen || r.open_id_sum != sum || r.dup_fills) {
        if (w->mismatches++ < 5)
            fprintf(stderr,
                    "report/replay mismatch: events %llu/%llu position %lld/%lld cash %lld/%lld "
                    "open %llu/%d\n",
                    (unsigned long long)r.events, (unsigned long long)w->events,
                    (long long)r.position[0], (long long)w->position, (long long)r.cash[0],
                    (long long)w->cash, (unsigned long long)r.open_orders, w->nopen);
    }
    if (r.tick_gaps || r.tick_dups || r.ticks != r.last_tick - r.first_tick + 1 ||
        r.ticks <= w->last_ticks)
        w->tick_breaks++;
    w->last_ticks = r.ticks;
}

typedef struct sim {
    testhost *h;
    watch w;
} sim;

static sim *start_sim(void)
{
    sim *s = calloc(1, sizeof *s);
    char *ini = sim_ini(5, 0, 200, NULL);
    s->h = testhost_new(ini);
    free(ini);
    assert_non_null(s->h);
    arb_ctx *ctx = testhost_ctx(s->h);
    assert_true(arb_subscribe(ctx, ARB_TOPIC_ORDER_EVENTS, on_event, &s->w) >= 0);
    assert_true(arb_subscribe(ctx, ARB_TOPIC_ORDER_COMMANDS, on_command, &s->w) >= 0);
    assert_true(arb_subscribe(ctx, arb_topic(ctx, "sim.reports"), on_report, &s->w) >= 0);
    assert_int_equal(testhost_start(s->h), ARB_OK);
    return s;
}

static void stop_sim(sim *s)
{
    testhost_free(s->h);
    free(s);
}

typedef struct until_variant {
    watch *w;
    int variant;
    uint64_t commands_after;
} until_variant;

static int saw_variant(void *user)
{
    until_variant *u = user;
    return u->w->commands > u->commands_after && u->w->last_variant == u->variant;
}

/* Runs until the market maker sent a quote of `variant` after this call. */
static int run_until_quote(sim *s, int variant)
{
    until_variant u = {&s->w, variant, s->w.commands};
    return testhost_run_until(s->h, saw_variant, &u, 10ll * 1000000000);
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void hundred_swaps_keep_state_and_switch_behaviour(void **state)
{
    (void)state;
    enum { SWAPS = 100 };
    char narrow[1024], wide[1024], err[512];
    snprintf(narrow, sizeof narrow, "%s", testhost_plugin_path("agent_market_maker"));
    snprintf(wide, sizeof wide, "%s", testhost_plugin_path("sim_mm_wide"));
    sim *s = start_sim();
    assert_true(run_until_quote(s, 0));
    static int64_t pause[SWAPS];
    for (int k = 0; k < SWAPS; k++) {
        int variant = k % 2 == 0 ? 1 : 0;
        int64_t t0 = mono_ns();
        int rc = testhost_reload(s->h, "mm_xa", variant ? wide : narrow, err, sizeof err);
        pause[k] = mono_ns() - t0;
        if (rc)
            fprintf(stderr, "reload %d: %s\n", k, err);
        assert_int_equal(rc, ARB_OK);
        assert_true(run_until_quote(s, variant));
    }
    testhost_run(s->h, 20ll * 1000000);
    qsort(pause, SWAPS, sizeof pause[0], cmp_i64);
    print_message("reload call: p50 %.3f ms, p99 %.3f ms\n", (double)pause[SWAPS / 2] / 1e6,
                  (double)pause[SWAPS * 99 / 100] / 1e6);
    watch *w = &s->w;
    assert_int_equal(w->transitions, SWAPS);
    assert_int_equal(w->bad_half_spread, 0);
    assert_true(w->reports > SWAPS);
    assert_int_equal(w->mismatches, 0);
    assert_int_equal(w->tick_breaks, 0);
    assert_true(w->events > 0);
    stop_sim(s);
}

static void broken_builds_leave_the_old_one_trading(void **state)
{
    (void)state;
    char err[512], junk[] = "/tmp/arb_sim_brokenXXXXXX";
    int fd = mkstemp(junk);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "not a shared object\n", 20), 20);
    close(fd);
    sim *s = start_sim();
    assert_true(run_until_quote(s, 0));
    /* Fails to load. */
    assert_int_not_equal(testhost_reload(s->h, "mm_xa", junk, err, sizeof err), ARB_OK);
    assert_true(run_until_quote(s, 0));
    /* Loads, but refuses the running build's state. */
    assert_int_not_equal(
        testhost_reload(s->h, "mm_xa", testhost_plugin_path("sim_mm_newstate"), err, sizeof err),
        ARB_OK);
    assert_non_null(strstr(err, "refused"));
    assert_true(run_until_quote(s, 0));
    uint64_t before = s->w.reports;
    testhost_run(s->h, 20ll * 1000000);
    assert_true(s->w.reports > before);
    assert_int_equal(s->w.transitions, 0);
    assert_int_equal(s->w.mismatches, 0);
    assert_int_equal(s->w.tick_breaks, 0);
    stop_sim(s);
    unlink(junk);
}

typedef struct until_episodes {
    watch *w;
    uint64_t episodes;
} until_episodes;

static int episodes_reached(void *user)
{
    until_episodes *u = user;
    return u->w->adaptive_max_episodes >= u->episodes;
}

static void adaptive_agent_keeps_what_it_learned_across_reloads(void **state)
{
    (void)state;
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s", testhost_plugin_path("agent_adaptive"));
    sim *s = start_sim();
    until_episodes u = {&s->w, 0};
    for (int k = 0; k < 10; k++) {
        u.episodes = s->w.adaptive_max_episodes + 2;
        assert_true(testhost_run_until(s->h, episodes_reached, &u, 10ll * 1000000000));
        assert_int_equal(testhost_reload(s->h, "adaptive", path, err, sizeof err), ARB_OK);
    }
    u.episodes = s->w.adaptive_max_episodes + 2;
    assert_true(testhost_run_until(s->h, episodes_reached, &u, 10ll * 1000000000));
    assert_true(s->w.adaptive_max_episodes >= 22);
    assert_int_equal(s->w.learning_lost, 0);
    stop_sim(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hundred_swaps_keep_state_and_switch_behaviour),
        cmocka_unit_test(broken_builds_leave_the_old_one_trading),
        cmocka_unit_test(adaptive_agent_keeps_what_it_learned_across_reloads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

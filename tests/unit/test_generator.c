/*
 * test_generator.c -- the market model (seeded jump-diffusion, lagged and
 * noisy venue views, shocks, save/restore) and the generator plugin's config
 * and publishing, against the fake host.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "../../plugins/generator/market_model.h"
#include "test_agent_fakehost.h"

const arb_plugin *arb_plugin_entry(void);

#define MS 1000000ll
#define T0 (1704067200ll * 1000000000ll)

typedef struct event_log {
    arb_market_event ev[4096];
    size_t n;
} event_log;

static void collect(void *user, const arb_market_event *ev)
{
    event_log *l = user;
    if (l->n < 4096)
        l->ev[l->n++] = *ev;
}

static mm_config base_config(uint64_t seed)
{
    mm_config c;
    memset(&c, 0, sizeof c);
    c.seed = seed;
    c.stream = "generator";
    c.n_assets = 2;
    c.n_venues = 2;
    snprintf(c.venues[0].name, sizeof c.venues[0].name, "XA");
    snprintf(c.venues[1].name, sizeof c.venues[1].name, "XB");
    c.venues[1].lag_ns = 30 * MS;
    c.venues[0].noise_bps = 0.5;
    c.venues[1].noise_bps = 1;
    const char *syms[] = {"BTCUSD", "ETHUSD"};
    for (int i = 0; i < 2; i++) {
        mm_asset_config *a = &c.assets[i];
        snprintf(a->symbol, sizeof a->symbol, "%s", syms[i]);
        a->start = i ? 200000 : 10000;
        a->tick[0] = 5;
        a->tick[1] = 1;
        a->volatility_bps = 20;
        a->jump_rate = 0.5;
        a->jump_bps = 10;
        a->shock_rate = 0.05;
        a->shock_bps = 100;
    }
    return c;
}

static void run(market_model *m, event_log *l, int steps, int64_t dt)
{
    for (int k = 0; k < steps; k++)
        assert_int_equal(mm_step(m, T0 + k * dt, collect, l), ARB_OK);
}

static void same_seed_gives_the_same_events(void **state)
{
    (void)state;
    static event_log a, b;
    a.n = b.n = 0;
    market_model ma, mb;
    const char *why;
    mm_config c = base_config(42);
    assert_int_equal(mm_init(&ma, &c, &why), ARB_OK);
    assert_int_equal(mm_init(&mb, &c, &why), ARB_OK);
    run(&ma, &a, 300, 10 * MS);
    run(&mb, &b, 300, 10 * MS);
    assert_int_equal(a.n, b.n);
    assert_memory_equal(a.ev, b.ev, a.n * sizeof a.ev[0]);
    mm_free(&ma);
    mm_free(&mb);
}

static void another_seed_gives_another_path(void **state)
{
    (void)state;
    static event_log a, b;
    a.n = b.n = 0;
    market_model ma, mb;
    const char *why;
    mm_config c1 = base_config(42), c2 = base_config(43);
    assert_int_equal(mm_init(&ma, &c1, &why), ARB_OK);
    assert_int_equal(mm_init(&mb, &c2, &why), ARB_OK);
    run(&ma, &a, 100, 10 * MS);
    run(&mb, &b, 100, 10 * MS);
    assert_true(mm_fair(&ma, 0) != mm_fair(&mb, 0) || mm_fair(&ma, 1) != mm_fair(&mb, 1));
    mm_free(&ma);
    mm_free(&mb);
}

static void first_step_publishes_start_values_on_each_venue_grid(void **state)
{
    (void)state;
    static event_log l;
    l.n = 0;
    market_model m;
    const char *why;
    mm_config c = base_config(1);
    c.venues[0].noise_bps = c.venues[1].noise_bps = 0;
    c.assets[0].start = 10003;
    assert_int_equal(mm_init(&m, &c, &why), ARB_OK);
    run(&m, &l, 1, 0);
    /* Per asset: fair value, then XA, then XB. */
    assert_int_equal(l.n, 6);
    assert_int_equal(l.ev[0].kind, ARB_MEV_FAIR_VALUE);
    assert_int_equal(l.ev[0].venue[0], 0);
    assert_int_equal(l.ev[0].value, 10003);
    assert_int_equal(l.ev[1].kind, ARB_MEV_VENUE_VALUE);
    assert_memory_equal(l.ev[1].venue, "XA", 2);
    assert_int_equal(l.ev[1].value, 10005); /* nearest 5-unit tick */
    assert_int_equal(l.ev[2].value, 10003);
    assert_int_equal(l.ev[0].ts, T0);
    assert_int_equal(l.ev[5].seq, 6);
    mm_free(&m);
}

static void venue_values_stay_on_their_tick_grids(void **state)
{
    (void)state;
    static event_log l;
    l.n = 0;
    market_model m;
    const char *why;
    mm_config c = base_config(9);
    assert_int_equal(mm_init(&m, &c, &why), ARB_OK);
    run(&m, &l, 200, 10 * MS);
    for (size_t i = 0; i < l.n; i++)
        if (l.ev[i].kind == ARB_MEV_VENUE_VALUE && l.ev[i].venue[1] == 'A') {
            assert_int_equal(l.ev[i].value % 5, 0);
            assert_true(l.ev[i].value > 0);
        }
    mm_free(&m);
}

static void lagged_venue_sees_the_fair_value_of_lag_ago(void **state)
{
    (void)state;
    static event_log l;
    l.n = 0;
    market_model m;
    const char *why;
    mm_config c = base_config(5);
    c.n_assets = 1;
    c.venues[0].noise_bps = c.venues[1].noise_bps = 0;
    c.assets[0].tick[0] = c.assets[0].tick[1] = 1;
    c.assets[0].volatility_bps = 200;
    assert_int_equal(mm_init(&m, &c, &why), ARB_OK);
    run(&m, &l, 50, 10 * MS);
    /* Events per step: [shock], fair, XA, XB. XB lags 30 ms = 3 steps. */
    int64_t fair[50], xa[50], xb[50];
    int step = -1, moved = 0;
    for (size_t i = 0; i < l.n; i++) {
        const arb_market_event *e = &l.ev[i];
        if (e->kind == ARB_MEV_FAIR_VALUE)
            fair[++step] = e->value;
        else if (e->kind == ARB_MEV_VENUE_VALUE && e->venue[1] == 'A')
            xa[step] = e->value;
        else if (e->kind == ARB_MEV_VENUE_VALUE)
            xb[step] = e->value;
    }
    assert_int_equal(step, 49);
    for (int k = 0; k < 50; k++) {
        assert_int_equal(xa[k], fair[k]);
        assert_int_equal(xb[k], fair[k < 3 ? 0 : k - 3]);
        moved |= fair[k] != fair[0];
    }
    assert_true(moved);
    mm_free(&m);
}

static void diffusion_has_the_configured_volatility(void **state)
{
    (void)state;
    market_model m;
    const char *why;
    mm_config c = base_config(77);
    c.n_assets = 1;
    c.assets[0].start = 100000000; /* fine grid: rounding does not matter */
    c.assets[0].jump_rate = c.assets[0].shock_rate = 0;
    c.assets[0].volatility_bps = 50;
    assert_int_equal(mm_init(&m, &c, &why), ARB_OK);
    static event_log l;
    double sq = 0;
    int n = 4000;
    int64_t prev = mm_fair(&m, 0);
    for (int k = 0; k < n; k++) {
        l.n = 0;
        assert_int_equal(mm_step(&m, T0 + (int64_t)k * 100 * MS, collect, &l), ARB_OK);
        int64_t f = mm_fair(&m, 0);
        double r = (double)(f - prev) / (double)prev;
        sq += r * r;
        prev = f;
    }
    /* 50 bps per sqrt(s) over 0.1 s steps: 50 / sqrt(10) = 15.8 bps. */
    double sd_bps = sqrt(sq / (n - 1)) * 1e4;
    assert_true(sd_bps > 14.5 && sd_bps < 17.2);
    mm_free(&m);
}

static void jumps_and_shocks_arrive_at_their_rates(void **state)
{
    (void)state;
    market_model m;
    const char *why;
    mm_config c = base_config(3);
    c.n_assets = 1;
    c.assets[0].jump_rate = 2;
    c.assets[0].shock_rate = 0.5;
    assert_int_equal(mm_init(&m, &c, &why), ARB_OK);
    static event_log l;
    uint64_t shock_events = 0;
    for (int k = 0; k < 10000; k++) { /* 100 simulated seconds */
        l.n = 0;
        assert_int_equal(mm_step(&m, T0 + (int64_t)k * 10 * MS, collect, &l), ARB_OK);
        for (size_t i = 0; i < l.n; i++)
            if (l.ev[i].kind == ARB_MEV_SHOCK) {
                shock_events++;
                assert_true(l.ev[i].shock != 0);
            }
    }
    /* Expect 200 jumps and 50 shocks; allow generous Poisson bands. */
    assert_true(m.assets[0].jumps > 150 && m.assets[0].jumps < 250);
    assert_true(m.assets[0].shocks > 30 && m.assets[0].shocks < 75);
    assert_true(shock_events > 0 && shock_events <= m.assets[0].shocks);
    mm_free(&m);
}

static void restored_model_continues_exactly_like_the_original(void **state)
{
    (void)state;
    static event_log a, b;
    market_model ma, mb;
    const char *why;
    mm_config c = base_config(21);
    assert_int_equal(mm_init(&ma, &c, &why), ARB_OK);
    assert_int_equal(mm_init(&mb, &c, &why), ARB_OK);
    a.n = b.n = 0;
    run(&ma, &a, 100, 10 * MS);
    void *bytes;
    size_t len;
    assert_int_equal(mm_save(&ma, &bytes, &len), ARB_OK);
    assert_int_equal(mm_restore(&mb, bytes, len), ARB_OK);
    for (size_t cut = 0; cut < len; cut += 7)
        assert_int_equal(mm_restore(&mb, bytes, cut), ARB_EREFUSED);
    a.n = b.n = 0;
    for (int k = 100; k < 200; k++) {
        mm_step(&ma, T0 + k * 10 * MS, collect, &a);
        mm_step(&mb, T0 + k * 10 * MS, collect, &b);
    }
    assert_int_equal(a.n, b.n);
    assert_memory_equal(a.ev, b.ev, a.n * sizeof a.ev[0]);
    mm_config other = base_config(21);
    other.n_venues = 1;
    market_model mo;
    assert_int_equal(mm_init(&mo, &other, &why), ARB_OK);
    assert_int_equal(mm_restore(&mo, bytes, len), ARB_EREFUSED);
    free(bytes);
    mm_free(&ma);
    mm_free(&mb);
    mm_free(&mo);
}

static void model_rejects_a_missing_start_price(void **state)
{
    (void)state;
    market_model m;
    const char *why = NULL;
    mm_config c = base_config(1);
    c.assets[1].start = 0;
    assert_int_equal(mm_init(&m, &c, &why), ARB_EINVAL);
    assert_non_null(strstr(why, "start price"));
    mm_free(&m);
}

/* ---- the plugin ---- */

static void instruments(fakehost *fh)
{
    const char *secs[] = {"instrument XA:BTCUSD", "instrument XB:BTCUSD"};
    for (int i = 0; i < 2; i++) {
        fh_set(fh, secs[i], "price_decimals", "2");
        fh_set(fh, secs[i], "tick_size", i ? "0.01" : "0.05");
        fh_set(fh, secs[i], "ref_price", "100.00");
    }
}

static void plugin_publishes_events_keyed_by_venue_and_symbol(void **state)
{
    (void)state;
    fakehost *fh = fh_new();
    instruments(fh);
    fh_ctx *c = fh_ctx_new(fh, "generator");
    fh_set_plugin(fh, "generator", "symbols", "BTCUSD");
    fh_set_plugin(fh, "generator", "venues", "XA XB");
    fh_set_plugin(fh, "generator", "lag_ms", "0 20");
    const arb_plugin *p = arb_plugin_entry();
    void *self;
    assert_int_equal(p->create(&c->ctx, &self), ARB_OK);
    assert_int_equal(p->start(self), ARB_OK);
    uint8_t buf[ARB_TICK_LEN];
    arb_tick t = {1, T0, 0, 0, ARB_TICK_SIM};
    arb_publish(&c->ctx, ARB_TOPIC_SYSTEM_TICKS, 0, buf, arb_tick_encode(&t, buf, sizeof buf));
    fh_drain(fh);
    assert_int_equal(fh_count(fh, ARB_TOPIC_MARKET_EVENTS), 3);
    for (size_t k = 0; k < 3; k++) {
        fh_msg *m = fh_nth(fh, ARB_TOPIC_MARKET_EVENTS, k);
        arb_market_event ev;
        assert_int_equal(arb_market_event_decode(m->data, m->len, &ev), ARB_OK);
        assert_int_equal(m->key, arb_instrument_key(ev.venue, ev.symbol));
        assert_int_equal(ev.value, 10000);
    }
    p->stop(self);
    p->destroy(self);
    free(c);
    fh_free(fh);
}

static void plugin_config_errors_name_the_key(void **state)
{
    (void)state;
    struct {
        const char *key, *value, *mention;
    } cases[] = {
        {"venues", "XA XC", "XC:BTCUSD"},
        {"lag_ms", "1 2 3", "lag_ms"},
        {"volatility_bps", "-1", "volatility_bps"},
        {"symbols", "", "symbols"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fakehost *fh = fh_new();
        instruments(fh);
        fh_ctx *c = fh_ctx_new(fh, "generator");
        fh_set_plugin(fh, "generator", "symbols", "BTCUSD");
        fh_set_plugin(fh, "generator", "venues", "XA XB");
        fh_set_plugin(fh, "generator", cases[i].key, cases[i].value);
        void *self = NULL;
        assert_int_equal(arb_plugin_entry()->create(&c->ctx, &self), ARB_EINVAL);
        assert_non_null(strstr(fh->last_error, cases[i].mention));
        free(c);
        fh_free(fh);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_seed_gives_the_same_events),
        cmocka_unit_test(another_seed_gives_another_path),
        cmocka_unit_test(first_step_publishes_start_values_on_each_venue_grid),
        cmocka_unit_test(venue_values_stay_on_their_tick_grids),
        cmocka_unit_test(lagged_venue_sees_the_fair_value_of_lag_ago),
        cmocka_unit_test(diffusion_has_the_configured_volatility),
        cmocka_unit_test(jumps_and_shocks_arrive_at_their_rates),
        cmocka_unit_test(restored_model_continues_exactly_like_the_original),
        cmocka_unit_test(model_rejects_a_missing_start_price),
        cmocka_unit_test(plugin_publishes_events_keyed_by_venue_and_symbol),
        cmocka_unit_test(plugin_config_errors_name_the_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

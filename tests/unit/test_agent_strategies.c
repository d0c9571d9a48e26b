/*
 * test_agent_strategies.c -- the pure decision functions of the agents on
 * synthetic books: the noise trader's orders, the market maker's quotes, the
 * arbitrageur's signal and the adaptive agent's bandit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../plugins/agents/adaptive/bandit.h"
#include "../../plugins/agents/arbitrageur/xarb_signal.h"
#include "../../plugins/agents/market_maker/mm_quote.h"
#include "../../plugins/agents/noise/noise_strategy.h"

/* ---- noise trader ---- */

static const noise_params NOISE = {300000, 1, 5, 10, 100, 500000000};

static void noise_orders_land_on_the_grid_around_the_reference(void **state)
{
    (void)state;
    arb_rng r;
    arb_rng_seed(&r, 1, "noise");
    int takers = 0, makers = 0;
    for (int i = 0; i < 5000; i++) {
        noise_order o;
        if (!noise_decide(&r, &NOISE, 10000, 5, 10, 0, &o))
            continue;
        assert_int_equal(o.price % 5, 0);
        assert_true(o.qty >= 10 && o.qty <= 50 && o.qty % 10 == 0);
        int buy = o.side == ARB_SIDE_BUY;
        if (o.tif == ARB_TIF_IOC) {
            takers++;
            /* a taker reaches through the reference */
            assert_true(buy ? o.price >= 10000 && o.price <= 10050
                            : o.price <= 10000 && o.price >= 9950);
            assert_int_equal(o.ttl_ns, 0);
        } else {
            makers++;
            assert_int_equal(o.tif, ARB_TIF_GTC);
            /* a maker waits behind it */
            assert_true(buy ? o.price < 10000 && o.price >= 9950
                            : o.price > 10000 && o.price <= 10050);
            assert_int_equal(o.ttl_ns, 500000000);
        }
    }
    assert_true(takers > 1200 && takers < 1800);
    assert_true(makers > 3200);
}

static void noise_trader_at_its_limit_only_trades_back(void **state)
{
    (void)state;
    arb_rng r;
    arb_rng_seed(&r, 2, "noise");
    for (int i = 0; i < 2000; i++) {
        noise_order o;
        if (noise_decide(&r, &NOISE, 10000, 5, 10, 100 * 10, &o))
            assert_int_equal(o.side, ARB_SIDE_SELL);
    }
}

static void noise_trader_waits_for_a_reference(void **state)
{
    (void)state;
    arb_rng r;
    arb_rng_seed(&r, 3, "noise");
    noise_order o;
    for (int i = 0; i < 100; i++)
        assert_int_equal(noise_decide(&r, &NOISE, 0, 5, 10, 0, &o), 0);
}

/* The noise agent checks positions a few traders behind its draws
 * (noise.c): that holds only if the draws never depend on the position and
 * noise_decide is noise_draw then noise_fits. Positions here sweep through
 * both limits. */
static void noise_draws_do_not_depend_on_the_position(void **state)
{
    (void)state;
    arb_rng a, b, c;
    arb_rng_seed(&a, 4, "noise");
    arb_rng_seed(&b, 4, "noise");
    arb_rng_seed(&c, 4, "noise");
    int refused = 0, sent = 0;
    for (int i = 0; i < 20000; i++) {
        int64_t position = ((int64_t)(i % 241) - 120) * 10; /* -1200..1200, limit 1000 */
        int64_t ref = i % 97 == 0 ? 0 : 10000 + (i % 13) * 5;
        noise_order od = {0}, ow = {0};
        int d = noise_decide(&a, &NOISE, ref, 5, 10, position, &od);
        int w = noise_draw(&b, &NOISE, ref, 5, 10, &ow);
        noise_order o0;
        (void)noise_decide(&c, &NOISE, ref, 5, 10, 0, &o0);
        assert_memory_equal(&a, &b, sizeof a);
        assert_memory_equal(&a, &c, sizeof a);
        assert_int_equal(d, w && noise_fits(&NOISE, 10, position, &ow));
        if (d) {
            assert_true(od.side == ow.side && od.tif == ow.tif && od.price == ow.price &&
                        od.qty == ow.qty && od.ttl_ns == ow.ttl_ns);
            sent++;
        } else if (w) {
            refused++;
        }
    }
    assert_true(refused > 500 && sent > 5000);
}

/* ---- market maker ---- */

static const mm_params MM = {2, 5, 50, 4};

static void flat_market_maker_quotes_symmetrically(void **state)
{
    (void)state;
    mm_quote q;
    mm_quote_compute(&MM, 10001, 5, 10, 0, &q);
    /* 10001 rounds to the 10000 tick; +-2 ticks of 5 */
    assert_int_equal(q.bid_px, 9990);
    assert_int_equal(q.ask_px, 10010);
    assert_int_equal(q.bid_qty, 50);
    assert_int_equal(q.ask_qty, 50);
}

static void long_market_maker_leans_its_quotes_down(void **state)
{
    (void)state;
    mm_quote q;
    mm_quote_compute(&MM, 10000, 5, 10, 250, &q); /* half its limit: lean 2 ticks */
    assert_int_equal(q.bid_px, 9980);
    assert_int_equal(q.ask_px, 10000);
    mm_quote_compute(&MM, 10000, 5, 10, -500, &q); /* full short: lean up 4 ticks */
    assert_int_equal(q.bid_px, 10010);
    assert_int_equal(q.ask_qty, 0);
}

static void market_maker_trims_size_to_its_limit(void **state)
{
    (void)state;
    mm_quote q;
    mm_quote_compute(&MM, 10000, 5, 10, 480, &q);
    assert_int_equal(q.bid_qty, 20);
    assert_int_equal(q.ask_qty, 50);
    mm_quote_compute(&MM, 10000, 5, 10, 500, &q);
    assert_int_equal(q.bid_qty, 0);
    mm_quote_compute(&MM, 0, 5, 10, 0, &q);
    assert_int_equal(q.bid_qty + q.ask_qty, 0);
}

static void maker_fee_widens_the_quote_by_whole_ticks(void **state)
{
    (void)state;
    /* 1 bp of 100.00 is 1 cent: one tick of 0.01; 1.5 bps, 1.5 cents: two. */
    assert_int_equal(mm_fee_ticks(10000, 1, 100), 1);
    assert_int_equal(mm_fee_ticks(10000, 1, 150), 2);
    assert_int_equal(mm_fee_ticks(10000, 5, 100), 1);
    /* A rebate or no fee changes nothing. */
    assert_int_equal(mm_fee_ticks(10000, 1, -25), 0);
    assert_int_equal(mm_fee_ticks(10000, 1, 0), 0);
}

/* ---- arbitrageur ---- */

static const xarb_params ARBP = {1000, 1000, 5, 10, 50}; /* 10 bps a leg, 5 units edge */

static void gap_within_fees_and_threshold_is_left_alone(void **state)
{
    (void)state;
    /* ask 10000 vs bid 10024: fees (20024 x 10 / 1e4 = 20.02) + 5 > 24 */
    xarb_view cheap = {9990, 100, 10000, 100, 0, 1}, rich = {10024, 100, 10030, 100, 0, 1};
    xarb_plan plan;
    assert_int_equal(xarb_signal(&cheap, &rich, &ARBP, &plan), 0);
    rich.bid_px = 10026; /* 26 x 1e4 = 260000 > 200260 + 50000 */
    assert_int_equal(xarb_signal(&cheap, &rich, &ARBP, &plan), 1);
    assert_int_equal(plan.buy_px, 10000);
    assert_int_equal(plan.sell_px, 10026);
}

static void each_legs_own_venue_fee_counts(void **state)
{
    (void)state;
    /* Edge 26 units on 10000: the cheap venue's 20 bps taker fee (20) plus
     * 5 of threshold eat it; a 5 bps rebate-free venue (5 + 10.026 + 5)
     * leaves it. */
    xarb_view cheap = {9990, 100, 10000, 100, 0, 1}, rich = {10026, 100, 10030, 100, 0, 1};
    xarb_params p = ARBP;
    xarb_plan plan;
    p.buy_fee_cbps = 2000;
    assert_int_equal(xarb_signal(&cheap, &rich, &p, &plan), 0);
    p.buy_fee_cbps = 500;
    assert_int_equal(xarb_signal(&cheap, &rich, &p, &plan), 1);
    /* Fees above the gap: no trade however deep the books. */
    p.buy_fee_cbps = p.sell_fee_cbps = 5000;
    cheap.ask_qty = rich.bid_qty = 1000000;
    assert_int_equal(xarb_signal(&cheap, &rich, &p, &plan), 0);
}

static void arbitrage_size_is_the_smallest_of_tops_cap_and_inventory(void **state)
{
    (void)state;
    xarb_view cheap = {9990, 100, 10000, 7, 0, 1}, rich = {10100, 9, 10110, 100, 0, 1};
    xarb_plan plan;
    assert_int_equal(xarb_signal(&cheap, &rich, &ARBP, &plan), 1);
    assert_int_equal(plan.qty, 7);
    cheap.ask_qty = 1000, rich.bid_qty = 1000;
    assert_int_equal(xarb_signal(&cheap, &rich, &ARBP, &plan), 1);
    assert_int_equal(plan.qty, 10); /* max_qty */
    cheap.position = 47;
    assert_int_equal(xarb_signal(&cheap, &rich, &ARBP, &plan), 1);
    assert_int_equal(plan.qty, 3); /* 50 - 47 */
    rich.position = -50;
    assert_int_equal(xarb_signal(&cheap, &rich, &ARBP, &plan), 0);
}

static void arbitrage_needs_both_sides_and_compatible_lots(void **state)
{
    (void)state;
    xarb_view cheap = {9990, 100, 10000, 0, 0, 1}, rich = {10100, 9, 10110, 100, 0, 1};
    xarb_plan plan;
    assert_int_equal(xarb_signal(&cheap, &rich, &ARBP, &plan), 0);
    cheap.ask_qty = 100;
    cheap.lot = 3, rich.lot = 2;
    assert_int_equal(xarb_signal(&cheap, &rich, &ARBP, &plan), 0);
    cheap.lot = 2, rich.lot = 4, rich.bid_qty = 9;
    assert_int_equal(xarb_signal(&cheap, &rich, &ARBP, &plan), 1);
    assert_int_equal(plan.qty, 8);
}

/* ---- bandit ---- */

static const int64_t ARMS[4] = {1, 2, 3, 5};

static void bandit_tries_every_arm_first(void **state)
{
    (void)state;
    bandit b;
    arb_rng r;
    arb_rng_seed(&r, 1, "b");
    bandit_init(&b, 4, ARMS);
    for (uint32_t i = 0; i < 4; i++) {
        assert_int_equal(bandit_choose(&b, &r, 1000000), i);
        bandit_update(&b, i, 10);
    }
    assert_int_equal(b.episodes, 4);
}

static void greedy_bandit_exploits_the_best_mean(void **state)
{
    (void)state;
    bandit b;
    arb_rng r;
    arb_rng_seed(&r, 2, "b");
    bandit_init(&b, 4, ARMS);
    bandit_update(&b, 0, 10);
    bandit_update(&b, 1, 100);
    bandit_update(&b, 1, -50); /* mean 25 */
    bandit_update(&b, 2, 30);  /* mean 30 */
    bandit_update(&b, 3, -5);
    assert_int_equal(bandit_best(&b), 2);
    for (int i = 0; i < 50; i++)
        assert_int_equal(bandit_choose(&b, &r, 0), 2);
    int other = 0;
    for (int i = 0; i < 1000; i++)
        other += bandit_choose(&b, &r, 500000) != 2;
    assert_true(other > 300 && other < 450); /* half explore, a quarter of those pick 2 */
}

static void bandit_state_round_trips_and_refuses_other_arms(void **state)
{
    (void)state;
    bandit a, b, c;
    bandit_init(&a, 4, ARMS);
    bandit_init(&b, 4, ARMS);
    bandit_update(&a, 1, 7);
    bandit_update(&a, 3, -2);
    uint8_t buf[BANDIT_STATE_LEN(4)];
    bandit_encode(&a, buf);
    uint64_t before = bandit_fingerprint(&b);
    assert_int_equal(bandit_decode(&b, buf, sizeof buf), ARB_OK);
    assert_int_equal(bandit_fingerprint(&a), bandit_fingerprint(&b));
    assert_int_not_equal(before, bandit_fingerprint(&b));
    assert_int_equal(b.pulls[1], 1);
    assert_int_equal(b.reward[3], -2);
    const int64_t other[4] = {1, 2, 3, 8};
    bandit_init(&c, 4, other);
    assert_int_equal(bandit_decode(&c, buf, sizeof buf), ARB_EREFUSED);
    assert_int_equal(bandit_decode(&b, buf, sizeof buf - 1), ARB_EREFUSED);
}

static void bandit_reward_sum_saturates(void **state)
{
    (void)state;
    bandit b;
    bandit_init(&b, 2, ARMS);
    bandit_update(&b, 0, INT64_MAX);
    bandit_update(&b, 0, 5);
    assert_int_equal(b.reward[0], INT64_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(noise_orders_land_on_the_grid_around_the_reference),
        cmocka_unit_test(noise_trader_at_its_limit_only_trades_back),
        cmocka_unit_test(noise_trader_waits_for_a_reference),
        cmocka_unit_test(noise_draws_do_not_depend_on_the_position),
        cmocka_unit_test(flat_market_maker_quotes_symmetrically),
        cmocka_unit_test(long_market_maker_leans_its_quotes_down),
        cmocka_unit_test(market_maker_trims_size_to_its_limit),
        cmocka_unit_test(maker_fee_widens_the_quote_by_whole_ticks),
        cmocka_unit_test(gap_within_fees_and_threshold_is_left_alone),
        cmocka_unit_test(each_legs_own_venue_fee_counts),
        cmocka_unit_test(arbitrage_size_is_the_smallest_of_tops_cap_and_inventory),
        cmocka_unit_test(arbitrage_needs_both_sides_and_compatible_lots),
        cmocka_unit_test(bandit_tries_every_arm_first),
        cmocka_unit_test(greedy_bandit_exploits_the_best_mean),
        cmocka_unit_test(bandit_state_round_trips_and_refuses_other_arms),
        cmocka_unit_test(bandit_reward_sum_saturates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_run_report.c -- the figures of a run (sdk/arb/run_report.h) from a
 * hand-made sequence of order events and trades whose answers are worked
 * out in the comments.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include <arb/run_report.h>

#define S 1000000000LL

/* XA and XB BTCUSD, prices with 2 decimals, quantities with 3. */
static void two_venues(arb_rr *r)
{
    arb_rr_init(r, 10 * S);
    arb_rr_agent_add(r, "mm", 10, 1);
    arb_rr_agent_add(r, "taker", 20, 1);
    assert_int_equal(arb_rr_instrument(r, "XA", "BTCUSD", 2, 3), 0);
    assert_int_equal(arb_rr_instrument(r, "XB", "BTCUSD", 2, 3), 1);
    assert_int_equal(arb_rr_instrument(r, "XA", "BTCUSD", 2, 3), 0);
}

static arb_rr_figures figures_of(arb_rr *r, uint32_t agent)
{
    static char in[ARB_VENUE_LEN + ARB_SYMBOL_LEN + 2];
    arb_rr_figures f;
    arb_rr_agent_figures(r, agent, &f, in);
    return f;
}

/* mm quotes 100.00 / 100.10 on XA; 10 s later the taker lifts 0.500 of
 * the ask; then someone else trades at 101.00. */
static void taker_and_maker_pnl_marked_to_the_last_trade(void **state)
{
    (void)state;
    arb_rr r;
    two_venues(&r);
    arb_rr_order_event(&r, 0, 1, 10, ARB_EV_ACCEPTED, ARB_SIDE_BUY, 10000, 1000, 0, 0, 0, 0);
    arb_rr_order_event(&r, 0, 2, 10, ARB_EV_ACCEPTED, ARB_SIDE_SELL, 10010, 1000, 0, 0, 0, 0);
    arb_rr_order_event(&r, 0, 3, 20, ARB_EV_ACCEPTED, ARB_SIDE_BUY, 10010, 500, 0, 0, 0, 10 * S);
    arb_rr_order_event(&r, 0, 3, 20, ARB_EV_FILLED, ARB_SIDE_BUY, 10010, 0, 10010, 500, 0, 10 * S);
    arb_rr_order_event(&r, 0, 2, 10, ARB_EV_PARTIAL, ARB_SIDE_SELL, 10010, 500, 10010, 500, 0,
                       10 * S);
    arb_rr_trade(&r, 0, 10010, 500, 10 * S);
    arb_rr_trade(&r, 0, 10100, 100, 20 * S);
    arb_rr_finish(&r);

    arb_rr_figures t = figures_of(&r, 1), m = figures_of(&r, 0);
    /* taker: +0.5 at 100.10, marked at 101.00: +0.45. */
    assert_float_equal(t.pnl_net, 0.45, 1e-9);
    assert_float_equal(t.volume, 0.5, 1e-9);
    assert_float_equal(t.notional, 50.05, 1e-9);
    assert_int_equal(t.fills, 1);
    assert_int_equal(t.orders, 1);
    assert_float_equal(t.fill_ratio, 1.0, 1e-9);
    assert_float_equal(t.max_position, 0.5, 1e-9);
    assert_float_equal(t.max_drawdown, 0.0, 1e-9);
    /* mm: -0.5, the mirror; two orders, one filled; its equity fell from
     * 0 to -0.45: the drawdown. */
    assert_float_equal(m.pnl_net, -0.45, 1e-9);
    assert_float_equal(m.pnl_gross, -0.45, 1e-9);
    assert_int_equal(m.orders, 2);
    assert_float_equal(m.fill_ratio, 0.5, 1e-9);
    assert_float_equal(m.max_position, -0.5, 1e-9);
    assert_string_equal(m.max_position_instrument, "XA:BTCUSD");
    assert_float_equal(m.max_drawdown, 0.45, 1e-9);
    /* 20 s of simulated time: per hour x 180. */
    assert_float_equal(m.pnl_per_hour, -0.45 * 180, 1e-6);
    /* XA: two trades; spread 0.10 for all 20 s (the ask kept 0.500). */
    assert_int_equal(r.instr[0].trades, 2);
    assert_float_equal(r.instr[0].volume, 0.6, 1e-9);
    assert_float_equal(r.instr[0].spread_time / (double)r.instr[0].two_sided_ns, 0.10, 1e-9);
    assert_int_equal(r.instr[0].two_sided_ns, 20 * S);
    /* Two buckets of 10 s. */
    assert_int_equal(r.n_buckets, 2);
    arb_rr_free(&r);
}

/* XB's bid above XA's ask for 5 s is 5 s crossed, on XB's row only. */
static void time_crossed_counts_only_while_a_bid_tops_the_other_venues_ask(void **state)
{
    (void)state;
    arb_rr r;
    two_venues(&r);
    arb_rr_order_event(&r, 0, 1, 10, ARB_EV_ACCEPTED, ARB_SIDE_BUY, 10000, 1000, 0, 0, 0, 0);
    arb_rr_order_event(&r, 0, 2, 10, ARB_EV_ACCEPTED, ARB_SIDE_SELL, 10010, 1000, 0, 0, 0, 0);
    arb_rr_order_event(&r, 1, 3, 11, ARB_EV_ACCEPTED, ARB_SIDE_SELL, 10030, 1000, 0, 0, 0, 0);
    arb_rr_order_event(&r, 1, 4, 11, ARB_EV_ACCEPTED, ARB_SIDE_BUY, 10020, 1000, 0, 0, 0, 2 * S);
    arb_rr_order_event(&r, 1, 4, 11, ARB_EV_CANCELLED, ARB_SIDE_BUY, 10020, 0, 0, 0, 0, 7 * S);
    arb_rr_order_event(&r, 1, 5, 11, ARB_EV_ACCEPTED, ARB_SIDE_BUY, 9990, 1000, 0, 0, 0, 8 * S);
    arb_rr_trade(&r, 0, 10000, 1, 9 * S);
    arb_rr_finish(&r);
    assert_int_equal(r.instr[1].crossed_ns, 5 * S);
    assert_int_equal(r.instr[0].crossed_ns, 0);
    /* XB two-sided from 2 s to 7 s and from 8 s to 9 s. */
    assert_int_equal(r.instr[1].two_sided_ns, 6 * S);
    arb_rr_free(&r);
}

/* Fees (price units) come off the net, not the gross; an unnamed account
 * lands in "other". */
static void fees_reduce_net_pnl_and_unknown_accounts_are_other(void **state)
{
    (void)state;
    arb_rr r;
    two_venues(&r);
    arb_rr_order_event(&r, 0, 1, 20, ARB_EV_ACCEPTED, ARB_SIDE_BUY, 10000, 1000, 0, 0, 0, 0);
    arb_rr_order_event(&r, 0, 1, 20, ARB_EV_FILLED, ARB_SIDE_BUY, 10000, 0, 10000, 1000, 25, 0);
    arb_rr_order_event(&r, 0, 2, 777, ARB_EV_ACCEPTED, ARB_SIDE_SELL, 10000, 1000, 0, 0, 0, 0);
    arb_rr_order_event(&r, 0, 2, 777, ARB_EV_FILLED, ARB_SIDE_SELL, 10000, 0, 10000, 1000, 0, 0);
    arb_rr_trade(&r, 0, 10000, 1000, 0);
    arb_rr_finish(&r);
    arb_rr_figures t = figures_of(&r, 1), o = figures_of(&r, ARB_RR_MAX_AGENTS);
    assert_float_equal(t.fees, 0.25, 1e-9);
    assert_float_equal(t.pnl_gross, 0.0, 1e-9);
    assert_float_equal(t.pnl_net, -0.25, 1e-9);
    assert_int_equal(o.fills, 1);
    assert_float_equal(o.max_position, -1.0, 1e-9);
    assert_false(arb_rr_agent_active(&r, 0));
    arb_rr_free(&r);
}

/* Many orders in and out: the id table grows and shrinks without losing
 * one, and the rebuilt book ends empty when every order is done. */
static void order_table_survives_churn_and_the_book_empties(void **state)
{
    (void)state;
    arb_rr r;
    two_venues(&r);
    for (uint64_t id = 1; id <= 50000; id++)
        arb_rr_order_event(&r, 0, id, 10, ARB_EV_ACCEPTED, id % 2 ? ARB_SIDE_BUY : ARB_SIDE_SELL,
                           id % 2 ? 9000 + (int64_t)(id % 97) : 11000 + (int64_t)(id % 89), 10, 0,
                           0, 0, (int64_t)id);
    assert_int_equal(r.order_count, 50000);
    for (uint64_t id = 50000; id >= 1; id--)
        arb_rr_order_event(&r, 0, id, 10, ARB_EV_CANCELLED, id % 2 ? ARB_SIDE_BUY : ARB_SIDE_SELL,
                           0, 0, 0, 0, 0, 60000);
    assert_int_equal(r.order_count, 0);
    assert_int_equal(r.instr[0].bids.n, 0);
    assert_int_equal(r.instr[0].asks.n, 0);
    assert_int_equal(figures_of(&r, 0).orders, 50000);
    arb_rr_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(taker_and_maker_pnl_marked_to_the_last_trade),
        cmocka_unit_test(time_crossed_counts_only_while_a_bid_tops_the_other_venues_ask),
        cmocka_unit_test(fees_reduce_net_pnl_and_unknown_accounts_are_other),
        cmocka_unit_test(order_table_survives_churn_and_the_book_empties),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

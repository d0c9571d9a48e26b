/*
 * test_book.c -- scenario tests of the order book: one behaviour per test,
 * for each order type's edge cases, the checks, self-trade prevention,
 * market data and ids. The random differential test is test_book_diff.c;
 * save/restore is test_book_state.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../plugins/matcher/book.h"
#include "../ref/book_check.h"

#define BUY ARB_SIDE_BUY
#define SELL ARB_SIDE_SELL

typedef struct fixture {
    book_engine *e;
    book_output *out;
    int64_t ts;
} fixture;

static arb_instrument plain_instrument(const char *venue, const char *symbol)
{
    arb_instrument in = {.tick = 1, .lot = 1, .min_qty = 1, .max_qty = 1000};
    snprintf(in.venue, sizeof in.venue, "%s", venue);
    snprintf(in.symbol, sizeof in.symbol, "%s", symbol);
    return in;
}

static fixture *fixture_with(const book_config *cfg)
{
    fixture *f = calloc(1, sizeof *f);
    assert_int_equal(book_engine_new(cfg, &f->e), ARB_OK);
    arb_instrument a = plain_instrument("XA", "BTCUSD");
    arb_instrument b = plain_instrument("XB", "BTCUSD");
    /* Tick 5, lot 10, quantities 20..500, band 10% around 1000. */
    arb_instrument c = {.venue = "XA",
                        .symbol = "ETHUSD",
                        .tick = 5,
                        .lot = 10,
                        .min_qty = 20,
                        .max_qty = 500,
                        .ref_price = 1000,
                        .band_bps = 1000};
    assert_int_equal(book_engine_add_instrument(f->e, &a), ARB_OK);
    assert_int_equal(book_engine_add_instrument(f->e, &b), ARB_OK);
    assert_int_equal(book_engine_add_instrument(f->e, &c), ARB_OK);
    f->out = book_engine_output(f->e);
    return f;
}

static int setup(void **state)
{
    *state = fixture_with(NULL);
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    book_engine_free(f->e);
    free(f);
    return 0;
}

static arb_order_cmd make(uint8_t action, const char *venue, const char *symbol, uint64_t id,
                          uint64_t account, uint8_t side, int64_t price, int64_t qty)
{
    arb_order_cmd c = {.action = action,
                       .side = side,
                       .type = ARB_ORD_LIMIT,
                       .tif = ARB_TIF_GTC,
                       .order_id = id,
                       .account = account,
                       .price = price,
                       .qty = qty,
                       .client_ref = id * 10};
    arb_fixstr_set(c.venue, ARB_VENUE_LEN, venue);
    arb_fixstr_set(c.symbol, ARB_SYMBOL_LEN, symbol);
    return c;
}

static void run(fixture *f, arb_order_cmd c)
{
    book_output_clear(f->out);
    c.ts = ++f->ts;
    book_engine_process(f->e, &c);
}

static void limit(fixture *f, uint64_t id, uint64_t acct, uint8_t side, int64_t px, int64_t qty)
{
    run(f, make(ARB_CMD_NEW, "XA", "BTCUSD", id, acct, side, px, qty));
}

static void order(fixture *f, uint64_t id, uint64_t acct, uint8_t side, uint8_t type, uint8_t tif,
                  int64_t px, int64_t qty)
{
    arb_order_cmd c = make(ARB_CMD_NEW, "XA", "BTCUSD", id, acct, side, px, qty);
    c.type = type;
    c.tif = tif;
    run(f, c);
}

static void cancel(fixture *f, uint64_t id, uint64_t acct)
{
    run(f, make(ARB_CMD_CANCEL, "XA", "BTCUSD", id, acct, 0, 0, 0));
}

static void replace(fixture *f, uint64_t id, uint64_t acct, int64_t px, int64_t qty)
{
    run(f, make(ARB_CMD_REPLACE, "XA", "BTCUSD", id, acct, 0, px, qty));
}

static const arb_order_event *ev(fixture *f, uint32_t i)
{
    assert_true(i < f->out->n_events);
    return &f->out->events[i];
}

static void expect(fixture *f, uint32_t i, uint8_t kind, uint8_t reason, uint64_t id,
                   int64_t leaves, int64_t filled)
{
    const arb_order_event *e = ev(f, i);
    if (e->kind != kind || e->reason != reason || e->order_id != id || e->leaves_qty != leaves ||
        e->filled_qty != filled)
        fail_msg("event %u: got %s(%s) id %llu leaves %lld filled %lld, want %s(%s) id %llu "
                 "leaves %lld filled %lld",
                 i, arb_event_kind_name(e->kind), arb_reason_name(e->reason),
                 (unsigned long long)e->order_id, (long long)e->leaves_qty,
                 (long long)e->filled_qty, arb_event_kind_name(kind), arb_reason_name(reason),
                 (unsigned long long)id, (long long)leaves, (long long)filled);
}

static void expect_reject(fixture *f, uint8_t reason)
{
    assert_int_equal(f->out->n_events, 1);
    expect(f, 0, ARB_EV_REJECTED, reason, ev(f, 0)->order_id, 0, 0);
    assert_int_equal(f->out->n_trades, 0);
    assert_int_equal(f->out->n_md, 0);
}

static order_book_stats stats_of(fixture *f, const char *venue, const char *symbol)
{
    char v[ARB_VENUE_LEN], s[ARB_SYMBOL_LEN];
    arb_fixstr_set(v, ARB_VENUE_LEN, venue);
    arb_fixstr_set(s, ARB_SYMBOL_LEN, symbol);
    order_book_stats st;
    order_book_get_stats(f->e, book_engine_find(f->e, v, s), &st);
    return st;
}

static order_book_stats stats(fixture *f) { return stats_of(f, "XA", "BTCUSD"); }

typedef struct ids {
    uint64_t id[64];
    size_t n;
} ids;

static int collect_id(void *user, const book_order_view *o)
{
    ids *l = user;
    l->id[l->n++] = o->order_id;
    return 0;
}

static ids queue(fixture *f, int side)
{
    char v[ARB_VENUE_LEN], s[ARB_SYMBOL_LEN];
    arb_fixstr_set(v, ARB_VENUE_LEN, "XA");
    arb_fixstr_set(s, ARB_SYMBOL_LEN, "BTCUSD");
    ids l = {.n = 0};
    order_book_each_order(f->e, book_engine_find(f->e, v, s), side, collect_id, &l);
    return l;
}

/* ---- limit orders ---- */

static void limit_order_that_does_not_cross_rests(void **state)
{
    fixture *f = *state;
    limit(f, 1, 7, BUY, 100, 5);
    assert_int_equal(f->out->n_events, 1);
    expect(f, 0, ARB_EV_ACCEPTED, 0, 1, 5, 0);
    assert_int_equal(ev(f, 0)->client_ref, 10);
    assert_int_equal(ev(f, 0)->ts, f->ts);
    order_book_stats st = stats(f);
    assert_int_equal(st.bid_px, 100);
    assert_int_equal(st.bid_qty, 5);
    assert_int_equal(st.orders, 1);
}

static void crossing_limit_trades_at_the_resting_price(void **state)
{
    fixture *f = *state;
    limit(f, 1, 7, SELL, 100, 5);
    limit(f, 2, 8, BUY, 103, 5);
    /* accepted, maker filled, taker filled */
    assert_int_equal(f->out->n_events, 3);
    expect(f, 0, ARB_EV_ACCEPTED, 0, 2, 5, 0);
    expect(f, 1, ARB_EV_FILLED, 0, 1, 0, 5);
    expect(f, 2, ARB_EV_FILLED, 0, 2, 0, 5);
    assert_int_equal(ev(f, 2)->last_px, 100);
    assert_int_equal(ev(f, 2)->price, 103);
    assert_int_equal(f->out->n_trades, 1);
    const arb_trade *t = &f->out->trades[0];
    assert_int_equal(t->price, 100);
    assert_int_equal(t->qty, 5);
    assert_int_equal(t->buy_order_id, 2);
    assert_int_equal(t->sell_order_id, 1);
    assert_int_equal(t->buy_account, 8);
    assert_int_equal(t->sell_account, 7);
    assert_int_equal(t->aggressor, BUY);
    assert_int_equal(t->trade_id, ev(f, 1)->trade_id);
    assert_int_equal(stats(f).orders, 0);
}

static void partially_filled_limit_rests_its_remainder(void **state)
{
    fixture *f = *state;
    limit(f, 1, 7, SELL, 100, 3);
    limit(f, 2, 8, BUY, 100, 10);
    expect(f, 1, ARB_EV_FILLED, 0, 1, 0, 3);
    expect(f, 2, ARB_EV_PARTIAL, 0, 2, 7, 3);
    order_book_stats st = stats(f);
    assert_int_equal(st.bid_px, 100);
    assert_int_equal(st.bid_qty, 7);
    assert_int_equal(st.ask_qty, 0);
}

static void fills_take_better_prices_first_then_older_orders(void **state)
{
    fixture *f = *state;
    limit(f, 1, 1, SELL, 101, 1);
    limit(f, 2, 2, SELL, 100, 1);
    limit(f, 3, 3, SELL, 100, 1);
    limit(f, 4, 4, SELL, 99, 1);
    limit(f, 9, 9, BUY, 101, 4);
    assert_int_equal(f->out->n_trades, 4);
    assert_int_equal(f->out->trades[0].sell_order_id, 4);
    assert_int_equal(f->out->trades[1].sell_order_id, 2);
    assert_int_equal(f->out->trades[2].sell_order_id, 3);
    assert_int_equal(f->out->trades[3].sell_order_id, 1);
    assert_int_equal(f->out->trades[0].price, 99);
    assert_int_equal(f->out->trades[3].price, 101);
}

static void limit_never_trades_beyond_its_price(void **state)
{
    fixture *f = *state;
    limit(f, 1, 1, SELL, 100, 1);
    limit(f, 2, 1, SELL, 102, 1);
    limit(f, 3, 2, BUY, 101, 5);
    assert_int_equal(f->out->n_trades, 1);
    order_book_stats st = stats(f);
    assert_int_equal(st.bid_px, 101);
    assert_int_equal(st.bid_qty, 4);
    assert_int_equal(st.ask_px, 102);
}

/* ---- IOC, FOK, market ---- */

static void ioc_remainder_expires(void **state)
{
    fixture *f = *state;
    limit(f, 1, 1, SELL, 100, 2);
    order(f, 2, 2, BUY, ARB_ORD_LIMIT, ARB_TIF_IOC, 100, 5);
    assert_int_equal(f->out->n_events, 4);
    expect(f, 2, ARB_EV_PARTIAL, 0, 2, 3, 2);
    expect(f, 3, ARB_EV_EXPIRED, ARB_R_NO_LIQUIDITY, 2, 0, 2);
    assert_int_equal(stats(f).orders, 0);
}

static void ioc_with_nothing_to_take_expires_without_touching_the_book(void **state)
{
    fixture *f = *state;
    limit(f, 1, 1, SELL, 105, 2);
    order(f, 2, 2, BUY, ARB_ORD_LIMIT, ARB_TIF_IOC, 100, 5);
    assert_int_equal(f->out->n_events, 2);
    expect(f, 1, ARB_EV_EXPIRED, ARB_R_NO_LIQUIDITY, 2, 0, 0);
    assert_int_equal(f->out->n_md, 0);
}

static void fok_that_cannot_fill_completely_expires_and_changes_nothing(void **state)
{
    fixture *f = *state;
    limit(f, 1, 1, SELL, 100, 2);
    limit(f, 2, 1, SELL, 101, 2);
    order(f, 3, 2, BUY, ARB_ORD_LIMIT, ARB_TIF_FOK, 101, 5);
    assert_int_equal(f->out->n_events, 2);
    expect(f, 1, ARB_EV_EXPIRED, ARB_R_FOK_NOT_FILLABLE, 3, 0, 0);
    assert_int_equal(f->out->n_trades, 0);
    assert_int_equal(f->out->n_md, 0);
    assert_int_equal(stats(f).orders, 2);
}

static void fok_that_can_fill_sweeps_several_levels(void **state)
{
    fixture *f = *state;
    limit(f, 1, 1, SELL, 100, 2);
    limit(f, 2, 1, SELL, 101, 2);
    limit(f, 3, 1, SELL, 102, 2);
    order(f, 4, 2, BUY, ARB_ORD_LIMIT, ARB_TIF_FOK, 102, 5);
    assert_int_equal(f->out->n_trades, 3);
    expect(f, f->out->n_events - 1, ARB_EV_FILLED, 0, 4, 0, 5);
    assert_int_equal(stats(f).ask_qty, 1);
}

static void fok_does_not_count_its_own_accounts_orders(void **state)
{
    fixture *f = *state;
    limit(f, 1, 2, SELL, 100, 3); /* own order, would be cancelled, not traded */
    limit(f, 2, 1, SELL, 100, 3);
    order(f, 3, 2, BUY, ARB_ORD_LIMIT, ARB_TIF_FOK, 100, 5);
    expect(f, 1, ARB_EV_EXPIRED, ARB_R_FOK_NOT_FILLABLE, 3, 0, 0);
    assert_int_equal(stats(f).orders, 2);
    order(f, 4, 2, BUY, ARB_ORD_LIMIT, ARB_TIF_FOK, 100, 3);
    expect(f, 1, ARB_EV_CANCELLED, ARB_R_SELF_TRADE, 1, 0, 0);
    expect(f, f->out->n_events - 1, ARB_EV_FILLED, 0, 4, 0, 3);
}

static void market_order_stops_at_its_protection_price(void **state)
{
    fixture *f = *state;
    limit(f, 1, 1, SELL, 100, 1);
    limit(f, 2, 1, SELL, 150, 1);
    order(f, 3, 2, BUY, ARB_ORD_MARKET, ARB_TIF_IOC, 120, 5);
    assert_int_equal(f->out->n_trades, 1);
    assert_int_equal(f->out->trades[0].price, 100);
    expect(f, f->out->n_events - 1, ARB_EV_EXPIRED, ARB_R_NO_LIQUIDITY, 3, 0, 1);
    assert_int_equal(ev(f, 0)->type, ARB_ORD_MARKET);
    assert_int_equal(stats(f).ask_px, 150);
}

static void market_order_without_protection_price_is_rejected(void **state)
{
    fixture *f = *state;
    order(f, 3, 2, BUY, ARB_ORD_MARKET, ARB_TIF_IOC, 0, 5);
    expect_reject(f, ARB_R_BAD_PRICE);
}

static void market_order_good_till_cancel_is_rejected(void **state)
{
    fixture *f = *state;
    order(f, 3, 2, BUY, ARB_ORD_MARKET, ARB_TIF_GTC, 100, 5);
    expect_reject(f, ARB_R_BAD_FIELD);
}

/* ---- post-only ---- */

static void post_only_that_would_take_is_rejected(void **state)
{
    fixture *f = *state;
    limit(f, 1, 1, SELL, 100, 1);
    arb_order_cmd c = make(ARB_CMD_NEW, "XA", "BTCUSD", 2, 2, BUY, 100, 1);
    c.flags = ARB_ORDF_POST_ONLY;
    run(f, c);
    expect_reject(f, ARB_R_POST_ONLY_WOULD_TAKE);
    assert_int_equal(stats(f).orders, 1);
}

static void post_only_that_does_not_cross_rests(void **state)
{
    fixture *f = *state;
    limit(f, 1, 1, SELL, 100, 1);
    arb_order_cmd c = make(ARB_CMD_NEW, "XA", "BTCUSD", 2, 2, BUY, 99, 1);
    c.flags = ARB_ORDF_POST_ONLY;
    run(f, c);
    expect(f, 0, ARB_EV_ACCEPTED, 0, 2, 1, 0);
    assert_int_equal(ev(f, 0)->flags, ARB_ORDF_POST_ONLY);
    assert_int_equal(stats(f).bid_px, 99);
}

static void post_only_immediate_or_cancel_is_rejected(void **state)
{
    fixture *f = *state;
    arb_order_cmd c = make(ARB_CMD_NEW, "XA", "BTCUSD", 2, 2, BUY, 99, 1);
    c.flags = ARB_ORDF_POST_ONLY;
    c.tif = ARB_TIF_IOC;
    run(f, c);
    expect_reject(f, ARB_R_BAD_FIELD);
}

/* ---- cancel ---- */

static void cancel_removes_the_order(void **state)
{
    fixture *f = *state;
    limit(f, 1, 1, BUY, 100, 4);
    cancel(f, 1, 1);
    expect(f, 0, ARB_EV_CANCELLED, ARB_R_USER_CANCEL, 1, 0, 0);
    assert_int_equal(ev(f, 0)->qty, 4);
    assert_int_equal(stats(f).orders, 0);
    assert_int_equal(book_engine_open_orders(f->e, 1), 0);
}

static void cancel_of_unknown_order_is_rejected(void **state)
{
    fixture *f = *state;
    cancel(f, 42, 1);
    expect_reject(f, ARB_R_UNKNOWN_ORDER);
}

static void cancel_of_filled_order_is_rejected(void **state)
{
    fixture *f = *state;
    limit(f, 1, 1, BUY, 100, 4);
    limit(f, 2, 2, SELL, 100, 4);
    cancel(f, 1, 1);
    expect_reject(f, ARB_R_UNKNOWN_ORDER);
}

static void cancel_of_someone_elses_order_is_rejected_and_changes_nothing(void **state)
{
    fixture *f = *state;
    limit(f, 1, 1, BUY, 100, 4);
    cancel(f, 1, 2);
    expect_reject(f, ARB_R_NOT_OWNER);
    assert_int_equal(stats(f).bid_qty, 4);
}

static void cancel_in_another_book_does_not_find_the_order(void **state)
{
    fixture *f = *state;
    limit(f, 1, 1, BUY, 100, 4);
    run(f, make(ARB_CMD_CANCEL, "XB", "BTCUSD", 1, 1, 0, 0, 0));
    expect_reject(f, ARB_R_UNKNOWN_ORDER);
}

/* ---- replace ---- */

static void replace_reducing_quantity_keeps_priority(void **state)
{
    fixture *f = *state;
    limit(f, 1, 1, BUY, 100, 5);
    limit(f, 2, 2, BUY, 100, 5);
    replace(f, 1, 1, 100, 2);
    expect(f, 0, ARB_EV_REPLACED, 0, 1, 2, 0);
    assert_int_equal(ev(f, 0)->qty, 2);
    assert_int_equal(ev(f, 0)->client_ref, 10);
    ids q = queue(f, BUY);
    assert_int_equal(q.id[0], 1);
    assert_int_equal(stats(f).bid_qty, 7);
}

static void replace_raising_quantity_loses_priority(void **state)
{
    fixture *f = *state;
    limit(f, 1, 1, BUY, 100, 5);
    limit(f, 2, 2, BUY, 100, 5);
    replace(f, 1, 1, 100, 6);
    ids q = queue(f, BUY);
    assert_int_equal(q.id[0], 2);
    assert_int_equal(q.id[1], 1);
    assert_int_equal(stats(f).bid_qty, 11);
}

static void replace_changing_price_loses_priority(void **state)
{
    fixture *f = *state;
    limit(f, 1, 1, BUY, 100, 5);
    limit(f, 2, 2, BUY, 99, 5);
    replace(f, 1, 1, 99, 5);
    expect(f, 0, ARB_EV_REPLACED, 0, 1, 5, 0);
    assert_int_equal(ev(f, 0)->price, 99);
    ids q = queue(f, BUY);
    assert_int_equal(q.id[0], 2);
    assert_int_equal(q.id[1], 1);
}

static void replace_of_partially_filled_order_sets_its_open_quantity(void **state)
{
    fixture *f = *state;
    limit(f, 1, 1, BUY, 100, 10);
    limit(f, 2, 2, SELL, 100, 4);
    replace(f, 1, 1, 100, 3);
    expect(f, 0, ARB_EV_REPLACED, 0, 1, 3, 4);
    assert_int_equal(ev(f, 0)->qty, 7);
}

static void replace_to_a_crossing_price_trades(void **state)
{
    fixture *f = *state;
    limit(f, 1, 1, SELL, 105, 3);
    limit(f, 2, 2, BUY, 100, 5);
    replace(f, 2, 2, 105, 5);
    expect(f, 0, ARB_EV_REPLACED, 0, 2, 5, 0);
    expect(f, 1, ARB_EV_FILLED, 0, 1, 0, 3);
    expect(f, 2, ARB_EV_PARTIAL, 0, 2, 2, 3);
    order_book_stats st = stats(f);
    assert_int_equal(st.bid_px, 105);
    assert_int_equal(st.bid_qty, 2);
}

static void replace_of_post_only_to_a_crossing_price_is_rejected(void **state)
{
    fixture *f = *state;
    limit(f, 1, 1, SELL, 105, 3);
    arb_order_cmd c = make(ARB_CMD_NEW, "XA", "BTCUSD", 2, 2, BUY, 100, 1);
    c.flags = ARB_ORDF_POST_ONLY;
    run(f, c);
    replace(f, 2, 2, 105, 1);
    expect_reject(f, ARB_R_POST_ONLY_WOULD_TAKE);
    assert_int_equal(stats(f).bid_px, 100);
}

static void replace_by_another_account_is_rejected(void **state)
{
    fixture *f = *state;
    limit(f, 1, 1, BUY, 100, 5);
    replace(f, 1, 2, 101, 5);
    expect_reject(f, ARB_R_NOT_OWNER);
    assert_int_equal(stats(f).bid_px, 100);
}

static void replace_with_zero_quantity_is_rejected(void **state)
{
    fixture *f = *state;
    limit(f, 1, 1, BUY, 100, 5);
    replace(f, 1, 1, 100, 0);
    expect_reject(f, ARB_R_BAD_QUANTITY);
}

/* ---- self-trade prevention ---- */

static void self_trade_cancel_resting_cancels_it_and_matching_goes_on(void **state)
{
    fixture *f = *state;
    limit(f, 1, 5, SELL, 100, 2);
    limit(f, 2, 6, SELL, 100, 2);
    limit(f, 3, 5, BUY, 100, 2);
    expect(f, 1, ARB_EV_CANCELLED, ARB_R_SELF_TRADE, 1, 0, 0);
    expect(f, 2, ARB_EV_FILLED, 0, 2, 0, 2);
    expect(f, 3, ARB_EV_FILLED, 0, 3, 0, 2);
    assert_int_equal(stats(f).orders, 0);
}

static void self_trade_cancel_incoming_stops_matching(void **state)
{
    fixture *f = *state;
    limit(f, 1, 6, SELL, 99, 1);
    limit(f, 2, 5, SELL, 100, 2);
    limit(f, 3, 6, SELL, 100, 2);
    arb_order_cmd c = make(ARB_CMD_NEW, "XA", "BTCUSD", 4, 5, BUY, 100, 5);
    c.stp = ARB_STP_CANCEL_INCOMING;
    run(f, c);
    assert_int_equal(f->out->n_trades, 1);
    expect(f, f->out->n_events - 1, ARB_EV_CANCELLED, ARB_R_SELF_TRADE, 4, 0, 1);
    assert_int_equal(stats(f).orders, 2);
}

static void self_trade_allowed_when_policy_is_none(void **state)
{
    fixture *f = *state;
    limit(f, 1, 5, SELL, 100, 2);
    arb_order_cmd c = make(ARB_CMD_NEW, "XA", "BTCUSD", 2, 5, BUY, 100, 2);
    c.stp = ARB_STP_NONE;
    run(f, c);
    assert_int_equal(f->out->n_trades, 1);
    assert_int_equal(f->out->trades[0].buy_account, f->out->trades[0].sell_account);
}

static void engine_default_self_trade_policy_applies_when_the_order_has_none(void **state)
{
    (void)state;
    book_config cfg = {.stp_default = ARB_STP_CANCEL_INCOMING};
    fixture *f = fixture_with(&cfg);
    limit(f, 1, 5, SELL, 100, 2);
    limit(f, 2, 5, BUY, 100, 2);
    expect(f, 1, ARB_EV_CANCELLED, ARB_R_SELF_TRADE, 2, 0, 0);
    assert_int_equal(stats(f).ask_qty, 2);
    teardown((void **)&f);
}

/* ---- checks ---- */

static void eth(fixture *f, uint64_t id, int64_t px, int64_t qty)
{
    run(f, make(ARB_CMD_NEW, "XA", "ETHUSD", id, 1, BUY, px, qty));
}

static void price_off_tick_is_rejected(void **state)
{
    fixture *f = *state;
    eth(f, 1, 1002, 20);
    expect_reject(f, ARB_R_PRICE_OFF_TICK);
}

static void quantity_off_lot_is_rejected(void **state)
{
    fixture *f = *state;
    eth(f, 1, 1000, 25);
    expect_reject(f, ARB_R_QTY_OFF_LOT);
}

static void zero_and_negative_quantities_are_rejected(void **state)
{
    fixture *f = *state;
    eth(f, 1, 1000, 0);
    expect_reject(f, ARB_R_BAD_QUANTITY);
    eth(f, 1, 1000, -20);
    expect_reject(f, ARB_R_BAD_QUANTITY);
}

static void zero_and_negative_prices_are_rejected(void **state)
{
    fixture *f = *state;
    eth(f, 1, 0, 20);
    expect_reject(f, ARB_R_BAD_PRICE);
    eth(f, 1, -5, 20);
    expect_reject(f, ARB_R_BAD_PRICE);
}

static void quantity_outside_min_and_max_is_rejected(void **state)
{
    fixture *f = *state;
    eth(f, 1, 1000, 10);
    expect_reject(f, ARB_R_QTY_BELOW_MIN);
    eth(f, 1, 1000, 510);
    expect_reject(f, ARB_R_QTY_ABOVE_MAX);
    eth(f, 1, 1000, 500);
    expect(f, 0, ARB_EV_ACCEPTED, 0, 1, 500, 0);
}

static void price_outside_the_band_is_rejected(void **state)
{
    fixture *f = *state;
    eth(f, 1, 1105, 20);
    expect_reject(f, ARB_R_PRICE_BAND);
    eth(f, 1, 895, 20);
    expect_reject(f, ARB_R_PRICE_BAND);
    eth(f, 1, 1100, 20);
    expect(f, 0, ARB_EV_ACCEPTED, 0, 1, 20, 0);
    eth(f, 2, 900, 20);
    expect(f, 0, ARB_EV_ACCEPTED, 0, 2, 20, 0);
}

static void band_follows_the_last_trade(void **state)
{
    fixture *f = *state;
    run(f, make(ARB_CMD_NEW, "XA", "ETHUSD", 1, 1, SELL, 1100, 20));
    run(f, make(ARB_CMD_NEW, "XA", "ETHUSD", 2, 2, BUY, 1100, 20));
    assert_int_equal(f->out->n_trades, 1);
    assert_int_equal(stats_of(f, "XA", "ETHUSD").ref_price, 1100);
    eth(f, 3, 1210, 20); /* 1100 + 10% */
    expect(f, 0, ARB_EV_ACCEPTED, 0, 3, 20, 0);
    eth(f, 4, 985, 20); /* below 990 */
    expect_reject(f, ARB_R_PRICE_BAND);
}

static void max_open_orders_per_account_is_enforced(void **state)
{
    (void)state;
    book_config cfg = {.max_open_orders = 2};
    fixture *f = fixture_with(&cfg);
    limit(f, 1, 1, BUY, 100, 1);
    run(f, make(ARB_CMD_NEW, "XB", "BTCUSD", 2, 1, BUY, 100, 1));
    limit(f, 3, 1, BUY, 100, 1);
    expect_reject(f, ARB_R_MAX_OPEN_ORDERS);
    /* another account is not affected; IOC never rests so is not counted */
    limit(f, 4, 2, BUY, 100, 1);
    expect(f, 0, ARB_EV_ACCEPTED, 0, 4, 1, 0);
    order(f, 5, 1, BUY, ARB_ORD_LIMIT, ARB_TIF_IOC, 100, 1);
    expect(f, 1, ARB_EV_EXPIRED, ARB_R_NO_LIQUIDITY, 5, 0, 0);
    cancel(f, 1, 1);
    limit(f, 3, 1, BUY, 100, 1);
    expect(f, 0, ARB_EV_ACCEPTED, 0, 3, 1, 0);
    assert_int_equal(book_engine_open_orders(f->e, 1), 2);
    teardown((void **)&f);
}

static void duplicate_resting_order_id_is_rejected(void **state)
{
    fixture *f = *state;
    limit(f, 1, 1, BUY, 100, 1);
    limit(f, 1, 1, BUY, 99, 1);
    expect_reject(f, ARB_R_DUPLICATE_ORDER_ID);
}

static void order_id_can_be_reused_once_the_order_is_done(void **state)
{
    fixture *f = *state;
    limit(f, 1, 1, BUY, 100, 1);
    cancel(f, 1, 1);
    limit(f, 1, 1, BUY, 99, 1);
    expect(f, 0, ARB_EV_ACCEPTED, 0, 1, 1, 0);
}

static void unknown_instrument_is_rejected(void **state)
{
    fixture *f = *state;
    run(f, make(ARB_CMD_NEW, "XC", "BTCUSD", 1, 1, BUY, 100, 1));
    expect_reject(f, ARB_R_UNKNOWN_INSTRUMENT);
    run(f, make(ARB_CMD_CANCEL, "XA", "DOGEUSD", 1, 1, BUY, 100, 1));
    expect_reject(f, ARB_R_UNKNOWN_INSTRUMENT);
}

static void unknown_action_and_bad_fields_are_rejected(void **state)
{
    fixture *f = *state;
    arb_order_cmd c = make(9, "XA", "BTCUSD", 1, 1, BUY, 100, 1);
    run(f, c);
    expect_reject(f, ARB_R_BAD_FIELD);
    c = make(ARB_CMD_NEW, "XA", "BTCUSD", 1, 1, 7, 100, 1);
    run(f, c);
    expect_reject(f, ARB_R_BAD_FIELD);
    assert_int_equal(ev(f, 0)->side, 0); /* out-of-range enums are not echoed */
    c = make(ARB_CMD_NEW, "XA", "BTCUSD", 1, 1, BUY, 100, 1);
    c.stp = 9;
    run(f, c);
    expect_reject(f, ARB_R_BAD_FIELD);
    assert_int_equal(stats(f).orders, 0);
}

static void rejected_commands_change_nothing(void **state)
{
    fixture *f = *state;
    limit(f, 1, 1, BUY, 100, 5);
    limit(f, 2, 2, SELL, 105, 5);
    void *before, *after;
    size_t nb, na;
    assert_int_equal(book_engine_save(f->e, NULL, NULL, &before, &nb), ARB_OK);
    cancel(f, 1, 2);
    replace(f, 2, 1, 100, 5);
    replace(f, 2, 2, 0, 5);
    limit(f, 1, 1, SELL, 99, 5);
    limit(f, 3, 1, SELL, 99, 0);
    run(f, make(ARB_CMD_NEW, "XA", "ETHUSD", 3, 1, BUY, 1003, 20));
    assert_int_equal(book_engine_save(f->e, NULL, NULL, &after, &na), ARB_OK);
    /* Identical but for the output sequence in the header (bytes 16..23). */
    assert_int_equal(na, nb);
    assert_memory_equal((uint8_t *)before + 24, (uint8_t *)after + 24, nb - 24);
    free(before);
    free(after);
}

/* ---- books, ids, market data ---- */

static void same_symbol_on_two_venues_is_two_books(void **state)
{
    fixture *f = *state;
    limit(f, 1, 1, BUY, 100, 1);
    run(f, make(ARB_CMD_NEW, "XB", "BTCUSD", 2, 2, SELL, 90, 1));
    assert_int_equal(f->out->n_trades, 0);
    assert_int_equal(stats_of(f, "XA", "BTCUSD").bid_px, 100);
    assert_int_equal(stats_of(f, "XB", "BTCUSD").ask_px, 90);
}

static void trade_ids_are_unique_across_books_and_count_per_book(void **state)
{
    fixture *f = *state;
    const uint64_t xa = 1ull << BOOK_TRADE_BITS, xb = 2ull << BOOK_TRADE_BITS;
    limit(f, 1, 1, SELL, 100, 1);
    limit(f, 2, 1, SELL, 100, 1);
    limit(f, 3, 2, BUY, 100, 2);
    assert_int_equal(f->out->trades[0].trade_id, xa | 1);
    assert_int_equal(f->out->trades[1].trade_id, xa | 2);
    assert_int_equal(f->out->trades[1].seq, 2);
    run(f, make(ARB_CMD_NEW, "XB", "BTCUSD", 4, 1, SELL, 100, 1));
    run(f, make(ARB_CMD_NEW, "XB", "BTCUSD", 5, 2, BUY, 100, 1));
    assert_int_equal(f->out->trades[0].trade_id, xb | 1);
    assert_int_equal(f->out->trades[0].seq, 1);
}

static void book_ids_must_be_distinct_and_in_range(void **state)
{
    (void)state;
    book_engine *e;
    assert_int_equal(book_engine_new(NULL, &e), ARB_OK);
    arb_instrument a = plain_instrument("XA", "BTCUSD"), b = plain_instrument("XB", "BTCUSD");
    assert_int_equal(book_engine_add_instrument_id(e, &a, 7), ARB_OK);
    assert_int_equal(book_engine_add_instrument_id(e, &b, 7), ARB_EINVAL);
    assert_int_equal(book_engine_add_instrument_id(e, &b, 0), ARB_EINVAL);
    assert_int_equal(book_engine_add_instrument_id(e, &b, BOOK_MAX_ID + 1), ARB_EINVAL);
    assert_int_equal(book_engine_add_instrument_id(e, &b, BOOK_MAX_ID), ARB_OK);
    book_engine_free(e);
}

static void replaying_the_same_commands_gives_identical_output(void **state)
{
    (void)state;
    uint8_t *first = NULL;
    size_t first_len = 0;
    for (int round = 0; round < 2; round++) {
        fixture *f = fixture_with(NULL);
        size_t cap = 1 << 20, len = 0;
        uint8_t *bytes = malloc(cap);
        uint64_t rng = 7;
        for (int i = 0; i < 3000; i++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            uint64_t r = rng >> 33;
            arb_order_cmd c =
                make(r % 5 ? ARB_CMD_NEW : ARB_CMD_CANCEL, "XA", "BTCUSD", 1 + r % 400, 1 + r % 3,
                     1 + (r >> 3) % 2, 95 + (r >> 5) % 11, 1 + (r >> 9) % 7);
            run(f, c);
            for (uint32_t k = 0; k < f->out->n_events && len + 256 < cap; k++)
                len += arb_order_event_encode(&f->out->events[k], bytes + len, cap - len);
            for (uint32_t k = 0; k < f->out->n_trades && len + 256 < cap; k++)
                len += arb_trade_encode(&f->out->trades[k], bytes + len, cap - len);
        }
        if (round == 0) {
            first = bytes;
            first_len = len;
        } else {
            assert_int_equal(len, first_len);
            assert_memory_equal(bytes, first, len);
            free(bytes);
        }
        teardown((void **)&f);
    }
    free(first);
}

static void market_data_reports_the_touched_levels_and_top_of_book(void **state)
{
    fixture *f = *state;
    limit(f, 1, 1, SELL, 101, 2);
    assert_int_equal(f->out->n_md, 1);
    const book_md *m = &f->out->md[0];
    assert_int_equal(m->head.kind, ARB_MD_LEVEL);
    assert_int_equal(m->head.book_seq, 1);
    assert_int_equal(m->head.ask_px, 101);
    assert_int_equal(m->head.ask_qty, 2);
    assert_int_equal(m->head.bid_qty, 0);
    assert_int_equal(m->head.n_levels, 1);
    limit(f, 2, 1, SELL, 102, 2);
    limit(f, 3, 2, BUY, 102, 3);
    m = &f->out->md[0];
    assert_int_equal(m->head.book_seq, 3);
    assert_int_equal(m->head.n_levels, 2);
    const arb_md_level *l = &f->out->levels[m->first_level];
    assert_int_equal(l[0].side, SELL);
    assert_int_equal(l[0].price, 101);
    assert_int_equal(l[0].qty, 0); /* gone */
    assert_int_equal(l[1].price, 102);
    assert_int_equal(l[1].qty, 1);
    assert_int_equal(l[1].orders, 1);
    assert_int_equal(m->head.ask_px, 102);
}

static void snapshot_lists_depth_with_the_current_sequence(void **state)
{
    fixture *f = *state;
    limit(f, 1, 1, BUY, 100, 1);
    limit(f, 2, 1, BUY, 100, 2);
    limit(f, 3, 1, BUY, 98, 1);
    limit(f, 4, 1, SELL, 103, 4);
    run(f, make(ARB_CMD_SNAPSHOT, "XA", "BTCUSD", 0, 0, 0, 0, 0));
    assert_int_equal(f->out->n_events, 0);
    assert_int_equal(f->out->n_md, 1);
    const book_md *m = &f->out->md[0];
    assert_int_equal(m->head.kind, ARB_MD_SNAPSHOT);
    assert_int_equal(m->head.book_seq, 4);
    assert_int_equal(m->head.n_levels, 3);
    const arb_md_level *l = &f->out->levels[m->first_level];
    assert_int_equal(l[0].price, 100);
    assert_int_equal(l[0].qty, 3);
    assert_int_equal(l[0].orders, 2);
    assert_int_equal(l[1].price, 98);
    assert_int_equal(l[2].side, SELL);
    assert_int_equal(l[2].price, 103);
}

static void snapshot_is_limited_to_snapshot_levels_per_side(void **state)
{
    (void)state;
    book_config cfg = {.snapshot_levels = 2};
    fixture *f = fixture_with(&cfg);
    for (int i = 0; i < 5; i++) {
        limit(f, 1 + (uint64_t)i, 1, BUY, 100 - i, 1);
        limit(f, 10 + (uint64_t)i, 1, SELL, 110 + i, 1);
    }
    run(f, make(ARB_CMD_SNAPSHOT, "XA", "BTCUSD", 0, 0, 0, 0, 0));
    assert_int_equal(f->out->md[0].head.n_levels, 4);
    teardown((void **)&f);
}

static void a_sweep_across_many_levels_spills_into_several_records(void **state)
{
    (void)state;
    /* 5000 ask levels taken by one market order: more levels than one
     * record holds. The reference must agree on every record. */
    book_config cfg = {.window_init = 64, .window_max = 1024};
    fixture *f = fixture_with(&cfg);
    ref_engine *r = ref_engine_new(&cfg);
    arb_instrument in = plain_instrument("XA", "BTCUSD");
    in.max_qty = 100000;
    ref_engine_add_instrument(r, &in);
    book_engine_free(f->e);
    assert_int_equal(book_engine_new(&cfg, &f->e), ARB_OK);
    assert_int_equal(book_engine_add_instrument(f->e, &in), ARB_OK);
    f->out = book_engine_output(f->e);
    book_output ro = {0};
    char msg[256];
    arb_order_cmd c;
    for (int i = 0; i < 5001; i++) {
        c = make(ARB_CMD_NEW, "XA", "BTCUSD", 1 + (uint64_t)i, 1, SELL, 1000 + i * 3, 1);
        if (i == 5000) {
            c = make(ARB_CMD_NEW, "XA", "BTCUSD", 99999, 2, BUY, 1000 + 3 * 5000, 6000);
            c.type = ARB_ORD_MARKET;
            c.tif = ARB_TIF_IOC;
        }
        book_output_clear(&ro);
        run(f, c);
        c.ts = f->ts;
        ref_engine_process(r, &c, &ro);
        const char *bad = book_outputs_differ(f->out, &ro, msg, sizeof msg);
        if (bad)
            fail_msg("command %d: %s", i, bad);
    }
    assert_int_equal(f->out->n_trades, 5000);
    assert_int_equal(f->out->n_md, 2);
    assert_int_equal(f->out->md[0].head.n_levels, ARB_MD_MAX_LEVELS);
    assert_int_equal(f->out->md[1].head.n_levels, 5000 - ARB_MD_MAX_LEVELS);
    assert_int_equal(f->out->md[1].head.book_seq, f->out->md[0].head.book_seq + 1);
    book_output_free(&ro);
    ref_engine_free(r);
    teardown((void **)&f);
}

static void sparse_huge_order_ids_are_found(void **state)
{
    fixture *f = *state;
    uint64_t ids_[] = {UINT64_MAX, 0, 1ull << 63, 0x123456789abcdefull, 42};
    for (int i = 0; i < 5; i++)
        limit(f, ids_[i], 1, BUY, 90 + i, 1);
    for (int i = 0; i < 5; i++) {
        cancel(f, ids_[i], 1);
        expect(f, 0, ARB_EV_CANCELLED, ARB_R_USER_CANCEL, ids_[i], 0, 0);
    }
}

static void orders_far_outside_the_window_keep_price_priority(void **state)
{
    (void)state;
    book_config cfg = {.window_init = 64, .window_max = 64};
    fixture *f = fixture_with(&cfg);
    /* Bids spread over a range far wider than the window. */
    int64_t px[] = {5000, 100, 4990, 20, 3000, 4999, 1, 2500};
    for (int i = 0; i < 8; i++)
        limit(f, 1 + (uint64_t)i, 1, BUY, px[i], 1);
    order(f, 50, 2, SELL, ARB_ORD_MARKET, ARB_TIF_IOC, 1, 8);
    int64_t want[] = {5000, 4999, 4990, 3000, 2500, 100, 20, 1};
    assert_int_equal(f->out->n_trades, 8);
    for (int i = 0; i < 8; i++)
        assert_int_equal(f->out->trades[i].price, want[i]);
    teardown((void **)&f);
}

static void a_thousand_books_are_each_found(void **state)
{
    (void)state;
    book_engine *e;
    assert_int_equal(book_engine_new(NULL, &e), ARB_OK);
    char sym[16];
    for (int i = 0; i < 1000; i++) {
        snprintf(sym, sizeof sym, "S%04d", i);
        arb_instrument in = plain_instrument(i % 2 ? "XA" : "XB", sym);
        assert_int_equal(book_engine_add_instrument(e, &in), ARB_OK);
    }
    arb_instrument dup = plain_instrument("XB", "S0000");
    assert_int_equal(book_engine_add_instrument(e, &dup), ARB_EINVAL);
    for (int i = 0; i < 1000; i++) {
        snprintf(sym, sizeof sym, "S%04d", i);
        arb_order_cmd c = make(ARB_CMD_NEW, i % 2 ? "XA" : "XB", sym, 1, 1, BUY, 100 + i, 1);
        book_output_clear(book_engine_output(e));
        book_engine_process(e, &c);
        assert_int_equal(book_engine_output(e)->events[0].kind, ARB_EV_ACCEPTED);
    }
    book_engine_stats st;
    book_engine_get_stats(e, &st);
    assert_int_equal(st.books, 1000);
    assert_int_equal(st.orders, 1000);
    book_engine_free(e);
}

/* One order map serves every book; the same id resting in many books is
 * one order per book, each found, cancelled and refused as a duplicate in
 * its own book only. */
static void the_same_order_id_rests_in_many_books_independently(void **state)
{
    (void)state;
    book_engine *e;
    assert_int_equal(book_engine_new(NULL, &e), ARB_OK);
    char sym[16];
    enum { N = 300 };
    for (int i = 0; i < N; i++) {
        snprintf(sym, sizeof sym, "S%04d", i);
        arb_instrument in = plain_instrument("XA", sym);
        assert_int_equal(book_engine_add_instrument(e, &in), ARB_OK);
    }
    book_output *o = book_engine_output(e);
    for (int i = 0; i < N; i++) {
        snprintf(sym, sizeof sym, "S%04d", i);
        arb_order_cmd c = make(ARB_CMD_NEW, "XA", sym, 7, 1, BUY, 100 + i, 1);
        book_output_clear(o);
        book_engine_process(e, &c);
        assert_int_equal(o->events[0].kind, ARB_EV_ACCEPTED);
        book_output_clear(o);
        book_engine_process(e, &c);
        assert_int_equal(o->events[0].reason, ARB_R_DUPLICATE_ORDER_ID);
    }
    /* Cancel every other book's order 7: the others stay. */
    for (int i = 0; i < N; i += 2) {
        snprintf(sym, sizeof sym, "S%04d", i);
        arb_order_cmd c = make(ARB_CMD_CANCEL, "XA", sym, 7, 1, 0, 0, 0);
        book_output_clear(o);
        book_engine_process(e, &c);
        assert_int_equal(o->events[0].kind, ARB_EV_CANCELLED);
        assert_int_equal(o->events[0].price, 100 + i);
        book_output_clear(o);
        book_engine_process(e, &c);
        assert_int_equal(o->events[0].reason, ARB_R_UNKNOWN_ORDER);
    }
    for (int i = 0; i < N; i++) {
        order_book_stats st;
        char v[ARB_VENUE_LEN], fs[ARB_SYMBOL_LEN];
        snprintf(sym, sizeof sym, "S%04d", i);
        arb_fixstr_set(v, ARB_VENUE_LEN, "XA");
        arb_fixstr_set(fs, ARB_SYMBOL_LEN, sym);
        order_book_get_stats(e, book_engine_find(e, v, fs), &st);
        assert_int_equal(st.orders, i % 2);
    }
    book_engine_free(e);
}

/* The order map starts at order_capacity (at most 4,096 ids) and grows with
 * the resting orders: many more orders than that, over several books, each
 * then found by id. */
static void the_order_map_grows_past_its_first_size(void **state)
{
    (void)state;
    book_engine *e;
    book_config cfg = {.order_capacity = 16};
    assert_int_equal(book_engine_new(&cfg, &e), ARB_OK);
    const char *syms[3] = {"AAA", "BBB", "CCC"};
    for (int i = 0; i < 3; i++) {
        arb_instrument in = plain_instrument("XA", syms[i]);
        assert_int_equal(book_engine_add_instrument(e, &in), ARB_OK);
    }
    book_output *o = book_engine_output(e);
    enum { N = 20000 };
    for (uint64_t id = 1; id <= N; id++) {
        arb_order_cmd c = make(ARB_CMD_NEW, "XA", syms[id % 3], id * 0x9E3779B97F4A7C15ull,
                               id % 7 + 1, id % 2 ? BUY : SELL,
                               id % 2 ? 100 - (int64_t)(id % 50) : 200 + (int64_t)(id % 50), 1);
        book_output_clear(o);
        book_engine_process(e, &c);
        assert_int_equal(o->events[0].kind, ARB_EV_ACCEPTED);
    }
    book_engine_stats st;
    book_engine_get_stats(e, &st);
    assert_int_equal(st.orders, N);
    assert_true(st.order_capacity >= N);
    for (uint64_t id = N; id >= 1; id--) {
        /* Each book finds only its own. */
        arb_order_cmd wrong = make(ARB_CMD_CANCEL, "XA", syms[(id + 1) % 3],
                                   id * 0x9E3779B97F4A7C15ull, id % 7 + 1, 0, 0, 0);
        book_output_clear(o);
        book_engine_process(e, &wrong);
        assert_int_equal(o->events[0].reason, ARB_R_UNKNOWN_ORDER);
        arb_order_cmd c = make(ARB_CMD_CANCEL, "XA", syms[id % 3], id * 0x9E3779B97F4A7C15ull,
                               id % 7 + 1, 0, 0, 0);
        book_output_clear(o);
        book_engine_process(e, &c);
        assert_int_equal(o->events[0].kind, ARB_EV_CANCELLED);
    }
    book_engine_get_stats(e, &st);
    assert_int_equal(st.orders, 0);
    book_engine_free(e);
}

static void bad_configuration_is_refused(void **state)
{
    (void)state;
    book_engine *e;
    book_config cfg = {.window_init = 100};
    assert_int_equal(book_engine_new(&cfg, &e), ARB_EINVAL);
    cfg = (book_config){.stp_default = 9};
    assert_int_equal(book_engine_new(&cfg, &e), ARB_EINVAL);
    cfg = (book_config){.window_init = 1024, .window_max = 512};
    assert_int_equal(book_engine_new(&cfg, &e), ARB_EINVAL);
    assert_int_equal(book_engine_new(NULL, &e), ARB_OK);
    arb_instrument in = plain_instrument("XA", "BTCUSD");
    in.tick = 0;
    assert_int_equal(book_engine_add_instrument(e, &in), ARB_EINVAL);
    book_engine_free(e);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

/* XB:BTCUSD at 2 price decimals and 3 quantity decimals, maker -0.25 bps
 * (a rebate), taker 2.5 bps; account 7 has a tier of its own there. */
static void fills_carry_each_sides_fee_rounded_for_the_venue(void **state)
{
    fixture *f = *state;
    book_engine_free(f->e);
    assert_int_equal(book_engine_new(NULL, &f->e), ARB_OK);
    arb_instrument in = plain_instrument("XB", "BTCUSD");
    in.price_decimals = 2, in.qty_decimals = 3;
    in.maker_fee_cbps = -25, in.taker_fee_cbps = 250;
    in.max_qty = 1000000;
    assert_int_equal(book_engine_add_instrument(f->e, &in), ARB_OK);
    arb_fee_tier tier = {.lo = 7, .hi = 7, .taker_fee_cbps = 1000};
    arb_fee_tiers tiers = {&tier, 1};
    assert_int_equal(book_engine_set_fee_tiers(f->e, &tiers), ARB_OK);
    f->out = book_engine_output(f->e);
    /* 1.234 at 100.01: notional 123.41234 = 12341.234 cents. Taker 2.5 bps:
     * 3.0853085 cents, rounded up to 4; maker rebate 0.30853085, rounded
     * down to 0. */
    run(f, make(ARB_CMD_NEW, "XB", "BTCUSD", 1, 1, SELL, 10001, 1234));
    run(f, make(ARB_CMD_NEW, "XB", "BTCUSD", 2, 2, BUY, 10001, 1234));
    assert_int_equal(f->out->n_trades, 1);
    assert_int_equal(ev(f, 1)->liquidity, ARB_LIQ_MAKER);
    assert_int_equal(ev(f, 1)->fee, 0);
    assert_int_equal(ev(f, 2)->liquidity, ARB_LIQ_TAKER);
    assert_int_equal(ev(f, 2)->fee, 4);
    assert_int_equal(f->out->trades[0].buy_fee, 4);
    assert_int_equal(f->out->trades[0].sell_fee, 0);
    /* 100 at 1000.00: notional 10000000 cents; the rebate is 250 cents
     * exactly; account 7 takes at its tier's 10 bps: 10000 cents. */
    run(f, make(ARB_CMD_NEW, "XB", "BTCUSD", 3, 1, BUY, 100000, 100000));
    run(f, make(ARB_CMD_NEW, "XB", "BTCUSD", 4, 7, SELL, 100000, 100000));
    assert_int_equal(ev(f, 1)->fee, -250);
    assert_int_equal(ev(f, 2)->fee, 10000);
    assert_int_equal(f->out->trades[0].buy_fee, -250);
    assert_int_equal(f->out->trades[0].sell_fee, 10000);
    /* An acknowledgement carries no fee. */
    assert_int_equal(ev(f, 0)->kind, ARB_EV_ACCEPTED);
    assert_int_equal(ev(f, 0)->fee, 0);
    assert_int_equal(ev(f, 0)->liquidity, ARB_LIQ_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(fills_carry_each_sides_fee_rounded_for_the_venue, setup,
                                        teardown),
        T(limit_order_that_does_not_cross_rests),
        T(crossing_limit_trades_at_the_resting_price),
        T(partially_filled_limit_rests_its_remainder),
        T(fills_take_better_prices_first_then_older_orders),
        T(limit_never_trades_beyond_its_price),
        T(ioc_remainder_expires),
        T(ioc_with_nothing_to_take_expires_without_touching_the_book),
        T(fok_that_cannot_fill_completely_expires_and_changes_nothing),
        T(fok_that_can_fill_sweeps_several_levels),
        T(fok_does_not_count_its_own_accounts_orders),
        T(market_order_stops_at_its_protection_price),
        T(market_order_without_protection_price_is_rejected),
        T(market_order_good_till_cancel_is_rejected),
        T(post_only_that_would_take_is_rejected),
        T(post_only_that_does_not_cross_rests),
        T(post_only_immediate_or_cancel_is_rejected),
        T(cancel_removes_the_order),
        T(cancel_of_unknown_order_is_rejected),
        T(cancel_of_filled_order_is_rejected),
        T(cancel_of_someone_elses_order_is_rejected_and_changes_nothing),
        T(cancel_in_another_book_does_not_find_the_order),
        T(replace_reducing_quantity_keeps_priority),
        T(replace_raising_quantity_loses_priority),
        T(replace_changing_price_loses_priority),
        T(replace_of_partially_filled_order_sets_its_open_quantity),
        T(replace_to_a_crossing_price_trades),
        T(replace_of_post_only_to_a_crossing_price_is_rejected),
        T(replace_by_another_account_is_rejected),
        T(replace_with_zero_quantity_is_rejected),
        T(self_trade_cancel_resting_cancels_it_and_matching_goes_on),
        T(self_trade_cancel_incoming_stops_matching),
        T(self_trade_allowed_when_policy_is_none),
        cmocka_unit_test(engine_default_self_trade_policy_applies_when_the_order_has_none),
        T(price_off_tick_is_rejected),
        T(quantity_off_lot_is_rejected),
        T(zero_and_negative_quantities_are_rejected),
        T(zero_and_negative_prices_are_rejected),
        T(quantity_outside_min_and_max_is_rejected),
        T(price_outside_the_band_is_rejected),
        T(band_follows_the_last_trade),
        cmocka_unit_test(max_open_orders_per_account_is_enforced),
        T(duplicate_resting_order_id_is_rejected),
        T(order_id_can_be_reused_once_the_order_is_done),
        T(unknown_instrument_is_rejected),
        T(unknown_action_and_bad_fields_are_rejected),
        T(rejected_commands_change_nothing),
        T(same_symbol_on_two_venues_is_two_books),
        T(trade_ids_are_unique_across_books_and_count_per_book),
        cmocka_unit_test(book_ids_must_be_distinct_and_in_range),
        cmocka_unit_test(replaying_the_same_commands_gives_identical_output),
        T(market_data_reports_the_touched_levels_and_top_of_book),
        T(snapshot_lists_depth_with_the_current_sequence),
        cmocka_unit_test(snapshot_is_limited_to_snapshot_levels_per_side),
        cmocka_unit_test(a_sweep_across_many_levels_spills_into_several_records),
        T(sparse_huge_order_ids_are_found),
        cmocka_unit_test(orders_far_outside_the_window_keep_price_priority),
        cmocka_unit_test(a_thousand_books_are_each_found),
        cmocka_unit_test(the_same_order_id_rests_in_many_books_independently),
        cmocka_unit_test(the_order_map_grows_past_its_first_size),
        cmocka_unit_test(bad_configuration_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

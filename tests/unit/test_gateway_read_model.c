/*
 * test_gateway_read_model.c -- the gateway's read models (orders, books,
 * trades, positions) fed with matcher records, and the JSON views of them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/buffer.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/gateway/read_model.h"
#include "../../plugins/gateway/u64map.h"
#include "../../plugins/gateway/views.h"
#include "gateway_instruments.h"

/* Two venues of one symbol: prices in 0.01, quantities in 0.001. */
static arb_instrument items[2];
static arb_instrument_table table = {items, 2};
static gw_read_model *rm;
static uint64_t seq;

static int setup(void **state)
{
    (void)state;
    gw_test_instruments(items);
    rm = gw_rm_new(&table, 4, 3);
    seq = 0;
    return rm ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    gw_rm_free(rm);
    return 0;
}

static gw_order *add(uint64_t id, uint64_t account, int64_t price, int64_t qty)
{
    gw_order_request rq;
    memset(&rq, 0, sizeof rq);
    rq.instrument = &items[0];
    rq.side = ARB_SIDE_BUY;
    rq.type = ARB_ORD_LIMIT;
    rq.tif = ARB_TIF_GTC;
    rq.price = price;
    rq.qty = qty;
    strcpy(rq.client_order_id, "cid");
    return gw_rm_order_add(rm, id, account, &rq, 5);
}

static int event(uint64_t id, uint64_t account, int kind, int64_t leaves, int64_t filled,
                 int64_t last_px, int64_t last_qty)
{
    arb_order_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = (uint8_t)kind;
    ev.order_id = id;
    ev.account = account;
    ev.leaves_qty = leaves;
    ev.filled_qty = filled;
    ev.last_px = last_px;
    ev.last_qty = last_qty;
    ev.trade_id = last_qty ? 900 + seq : 0;
    ev.seq = ++seq;
    ev.ts = 100 + (int64_t)seq;
    if (kind == ARB_EV_REJECTED)
        ev.reason = ARB_R_PRICE_BAND;
    gw_order *o;
    return gw_rm_apply_event(rm, &ev, &o);
}

static size_t open_count(uint64_t account)
{
    gw_account *a = gw_rm_account(rm, account, 0);
    return a ? a->open_count : 0;
}

static void new_order_is_pending_and_open_for_its_account(void **state)
{
    (void)state;
    gw_order *o = add(1, 7, 10000, 1000);
    assert_non_null(o);
    assert_int_equal(o->status, GW_ST_PENDING);
    assert_ptr_equal(gw_rm_order(rm, 1), o);
    assert_int_equal(open_count(7), 1);
    assert_null(add(1, 7, 10000, 1000)); /* duplicate id */
}

static void fills_accumulate_until_filled(void **state)
{
    (void)state;
    add(1, 7, 10000, 1000);
    assert_int_equal(event(1, 7, ARB_EV_ACCEPTED, 1000, 0, 0, 0), GW_EFF_UPDATED);
    assert_int_equal(gw_rm_order(rm, 1)->status, GW_ST_OPEN);
    assert_int_equal(event(1, 7, ARB_EV_PARTIAL, 600, 400, 9990, 400), GW_EFF_UPDATED);
    gw_order *o = gw_rm_order(rm, 1);
    assert_int_equal(o->status, GW_ST_PARTIAL);
    assert_int_equal(o->filled_qty, 400);
    assert_int_equal(o->leaves_qty, 600);
    assert_int_equal(event(1, 7, ARB_EV_FILLED, 0, 1000, 10000, 600), GW_EFF_UPDATED);
    o = gw_rm_order(rm, 1);
    assert_int_equal(o->status, GW_ST_FILLED);
    assert_int_equal(o->n_fills, 2);
    assert_int_equal(o->fills[0].price, 9990);
    assert_int_equal(o->fills[1].qty, 600);
    assert_int_equal(open_count(7), 0);
}

static void events_of_other_orders_and_accounts_are_ignored(void **state)
{
    (void)state;
    add(1, 7, 10000, 1000);
    assert_int_equal(event(2, 7, ARB_EV_ACCEPTED, 1000, 0, 0, 0), GW_EFF_NONE);
    assert_int_equal(event(1, 8, ARB_EV_ACCEPTED, 1000, 0, 0, 0), GW_EFF_NONE);
    assert_int_equal(gw_rm_order(rm, 1)->status, GW_ST_PENDING);
}

static void stale_event_is_ignored(void **state)
{
    (void)state;
    add(1, 7, 10000, 1000);
    assert_int_equal(event(1, 7, ARB_EV_PARTIAL, 500, 500, 10000, 500), GW_EFF_UPDATED);
    arb_order_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = ARB_EV_ACCEPTED;
    ev.order_id = 1;
    ev.account = 7;
    ev.leaves_qty = 1000;
    ev.seq = 1; /* older than the partial fill's */
    gw_order *o;
    assert_int_equal(gw_rm_apply_event(rm, &ev, &o), GW_EFF_NONE);
    assert_int_equal(gw_rm_order(rm, 1)->filled_qty, 500);
}

static void reject_of_pending_order_rejects_it(void **state)
{
    (void)state;
    add(1, 7, 10000, 1000);
    assert_int_equal(event(1, 7, ARB_EV_REJECTED, 0, 0, 0, 0), GW_EFF_UPDATED);
    gw_order *o = gw_rm_order(rm, 1);
    assert_int_equal(o->status, GW_ST_REJECTED);
    assert_int_equal(o->reason, ARB_R_PRICE_BAND);
    assert_int_equal(open_count(7), 0);
}

static void reject_of_live_order_is_a_refused_command(void **state)
{
    (void)state;
    add(1, 7, 10000, 1000);
    event(1, 7, ARB_EV_ACCEPTED, 1000, 0, 0, 0);
    assert_int_equal(event(1, 7, ARB_EV_REJECTED, 0, 0, 0, 0), GW_EFF_CMD_REJECTED);
    gw_order *o = gw_rm_order(rm, 1);
    assert_int_equal(o->status, GW_ST_OPEN);
    assert_int_equal(o->leaves_qty, 1000);
    assert_int_equal(open_count(7), 1);
}

static void cancelled_order_leaves_the_open_list(void **state)
{
    (void)state;
    add(1, 7, 10000, 1000);
    add(2, 7, 10000, 1000);
    event(1, 7, ARB_EV_ACCEPTED, 1000, 0, 0, 0);
    event(2, 7, ARB_EV_ACCEPTED, 1000, 0, 0, 0);
    assert_int_equal(open_count(7), 2);
    assert_int_equal(event(1, 7, ARB_EV_CANCELLED, 0, 0, 0, 0), GW_EFF_UPDATED);
    assert_int_equal(gw_rm_order(rm, 1)->status, GW_ST_CANCELLED);
    assert_int_equal(gw_rm_order(rm, 1)->leaves_qty, 0);
    assert_int_equal(open_count(7), 1);
    assert_ptr_equal(gw_rm_account(rm, 7, 0)->open_head, gw_rm_order(rm, 2));
    /* Finished orders take no further events. */
    assert_int_equal(event(1, 7, ARB_EV_ACCEPTED, 1000, 0, 0, 0), GW_EFF_NONE);
}

static void oldest_finished_orders_are_forgotten_past_the_history(void **state)
{
    (void)state;
    for (uint64_t id = 1; id <= 5; id++) {
        add(id, 7, 10000, 1000);
        event(id, 7, ARB_EV_EXPIRED, 0, 0, 0, 0);
    }
    /* order_history is 3 in this fixture. */
    assert_null(gw_rm_order(rm, 1));
    assert_null(gw_rm_order(rm, 2));
    assert_non_null(gw_rm_order(rm, 3));
    assert_non_null(gw_rm_order(rm, 5));
    assert_int_equal(rm->done_count, 3);
}

static void open_orders_are_never_forgotten(void **state)
{
    (void)state;
    add(100, 7, 10000, 1000);
    event(100, 7, ARB_EV_ACCEPTED, 1000, 0, 0, 0);
    for (uint64_t id = 1; id <= 10; id++) {
        add(id, 7, 10000, 1000);
        event(id, 7, ARB_EV_FILLED, 0, 1000, 10000, 1000);
    }
    assert_non_null(gw_rm_order(rm, 100));
}

static void dropped_pending_order_disappears(void **state)
{
    (void)state;
    add(1, 7, 10000, 1000);
    gw_rm_order_drop(rm, 1);
    assert_null(gw_rm_order(rm, 1));
    assert_int_equal(open_count(7), 0);
}

/* ---- books ---- */

static void md(int kind, uint64_t book_seq, const arb_md_level *lv, uint32_t n, int64_t bid,
               int64_t ask)
{
    static uint8_t buf[ARB_MD_LEN(16)];
    arb_market_data m;
    memset(&m, 0, sizeof m);
    m.kind = (uint8_t)kind;
    m.n_levels = n;
    arb_fixstr_set(m.venue, ARB_VENUE_LEN, "XA");
    arb_fixstr_set(m.symbol, ARB_SYMBOL_LEN, "BTCUSD");
    m.book_seq = book_seq;
    m.bid_px = bid;
    m.bid_qty = bid ? 1 : 0;
    m.ask_px = ask;
    m.ask_qty = ask ? 1 : 0;
    uint32_t len = arb_market_data_encode(&m, buf, sizeof buf);
    for (uint32_t i = 0; i < n; i++)
        arb_md_put_level(buf, i, &lv[i]);
    arb_market_data dec;
    assert_int_equal(arb_market_data_decode(buf, len, &dec), 0);
    gw_rm_apply_market_data(rm, &dec);
}

static void snapshot_then_level_updates_keep_sides_sorted(void **state)
{
    (void)state;
    arb_md_level snap[] = {{ARB_SIDE_BUY, 1, 9990, 100},
                           {ARB_SIDE_BUY, 2, 10000, 200},
                           {ARB_SIDE_SELL, 1, 10020, 300},
                           {ARB_SIDE_SELL, 3, 10010, 400}};
    md(ARB_MD_SNAPSHOT, 5, snap, 4, 10000, 10010);
    gw_book *b = &rm->books[0];
    assert_int_equal(b->n_bids, 2);
    assert_int_equal(b->bids[0].price, 10000);
    assert_int_equal(b->asks[0].price, 10010);
    assert_int_equal(b->asks[1].price, 10020);
    arb_md_level upd[] = {
        {ARB_SIDE_BUY, 1, 10005, 50}, {ARB_SIDE_SELL, 0, 10010, 0}, {ARB_SIDE_BUY, 4, 9990, 999}};
    md(ARB_MD_LEVEL, 6, upd, 3, 10005, 10020);
    assert_int_equal(b->n_bids, 3);
    assert_int_equal(b->bids[0].price, 10005);
    assert_int_equal(b->bids[2].qty, 999);
    assert_int_equal(b->n_asks, 1);
    assert_int_equal(b->asks[0].price, 10020);
    assert_int_equal(b->book_seq, 6);
}

static void older_book_update_is_ignored(void **state)
{
    (void)state;
    arb_md_level a[] = {{ARB_SIDE_BUY, 1, 10000, 100}};
    md(ARB_MD_SNAPSHOT, 10, a, 1, 10000, 0);
    arb_md_level b[] = {{ARB_SIDE_BUY, 1, 10000, 0}};
    md(ARB_MD_LEVEL, 9, b, 1, 0, 0);
    assert_int_equal(rm->books[0].n_bids, 1);
}

static void top_only_book_renders_its_top(void **state)
{
    (void)state;
    md(ARB_MD_TOP, 1, NULL, 0, 9995, 10005);
    struct evbuffer *out = evbuffer_new();
    gw_render_book(out, rm, 0, 10);
    json_t *j =
        json_loadb((const char *)evbuffer_pullup(out, -1), evbuffer_get_length(out), 0, NULL);
    assert_non_null(j);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(j, "bids"), 0), "price")),
        "99.95");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(j, "asks"), 0), "price")),
        "100.05");
    json_decref(j);
    evbuffer_free(out);
}

/* ---- trades and positions ---- */

static void trade(int inst, int64_t px, int64_t qty, uint64_t buyer, uint64_t seller, int64_t ts)
{
    arb_trade t;
    memset(&t, 0, sizeof t);
    arb_fixstr_set(t.venue, ARB_VENUE_LEN, items[inst].venue);
    arb_fixstr_set(t.symbol, ARB_SYMBOL_LEN, "BTCUSD");
    t.trade_id = (uint64_t)ts;
    t.price = px;
    t.qty = qty;
    t.buy_account = buyer;
    t.sell_account = seller;
    t.ts = ts;
    t.aggressor = ARB_SIDE_BUY;
    assert_int_equal(gw_rm_apply_trade(rm, &t), inst);
}

static void trade_ring_keeps_the_newest(void **state)
{
    (void)state;
    for (int i = 1; i <= 6; i++)
        trade(0, 10000 + i, 1, 1, 2, i);
    gw_trade_ring *r = &rm->trades[0];
    assert_int_equal(r->count, 4); /* trade_history is 4 here */
    assert_int_equal(r->last_px, 10006);
    struct evbuffer *out = evbuffer_new();
    gw_render_trades(out, rm, 0, NULL, 10);
    json_t *j =
        json_loadb((const char *)evbuffer_pullup(out, -1), evbuffer_get_length(out), 0, NULL);
    json_t *arr = json_object_get(j, "trades");
    assert_int_equal(json_array_size(arr), 4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "price")),
                        "100.06");
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 3), "price")),
                        "100.03");
    json_decref(j);
    evbuffer_free(out);
}

static void trades_of_all_instruments_merge_newest_first(void **state)
{
    (void)state;
    trade(0, 10000, 1, 1, 2, 10);
    trade(1, 20000, 1, 1, 2, 20);
    trade(0, 10001, 1, 1, 2, 30);
    struct evbuffer *out = evbuffer_new();
    gw_render_trades(out, rm, -1, NULL, 2);
    json_t *j =
        json_loadb((const char *)evbuffer_pullup(out, -1), evbuffer_get_length(out), 0, NULL);
    json_t *arr = json_object_get(j, "trades");
    assert_int_equal(json_array_size(arr), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 0), "ts")), 30);
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 1), "venue")), "XB");
    json_decref(j);
    evbuffer_free(out);
}

static void positions_and_pnl_follow_trades_marked_to_last_price(void **state)
{
    (void)state;
    /* Account 1 buys 2.000 at 100.00, sells 1.000 at 101.00; last 102.00. */
    trade(0, 10000, 2000, 1, 2, 1);
    trade(0, 10100, 1000, 3, 1, 2);
    trade(0, 10200, 1, 3, 2, 3);
    gw_position *p = &gw_rm_account(rm, 1, 0)->positions[0];
    assert_int_equal(p->position, 1000);
    /* cash = -2000*10000 + 1000*10100 = -9,900,000 units (price x qty). */
    assert_true(p->cash == -9900000);
    /* pnl = cash + 1000 * 10200 = 300,000 units = 3.00000 */
    assert_true(gw_position_pnl(p, rm->trades[0].last_px) == 300000);
    struct evbuffer *out = evbuffer_new();
    gw_render_accounts(out, rm, NULL, NULL, NULL, 10);
    json_t *j =
        json_loadb((const char *)evbuffer_pullup(out, -1), evbuffer_get_length(out), 0, NULL);
    assert_non_null(j);
    json_t *acc = json_array_get(json_object_get(j, "accounts"), 0);
    assert_string_equal(json_string_value(json_object_get(acc, "account")), "1");
    json_t *pos = json_array_get(json_object_get(acc, "positions"), 0);
    assert_string_equal(json_string_value(json_object_get(pos, "position")), "1.000");
    assert_string_equal(json_string_value(json_object_get(pos, "pnl")), "3.00000");
    assert_string_equal(json_string_value(json_object_get(acc, "pnl_total")), "3.00000");
    json_decref(j);
    evbuffer_free(out);
}

/* The buyer pays 3 cents, the seller earns a 1 cent rebate: cash and PnL
 * are net of them, fees are shown on their own. */
static void positions_book_each_sides_fee(void **state)
{
    (void)state;
    arb_trade t;
    memset(&t, 0, sizeof t);
    arb_fixstr_set(t.venue, ARB_VENUE_LEN, items[0].venue);
    arb_fixstr_set(t.symbol, ARB_SYMBOL_LEN, "BTCUSD");
    t.trade_id = 1, t.price = 10000, t.qty = 1000, t.buy_account = 1, t.sell_account = 2;
    t.ts = 1, t.aggressor = ARB_SIDE_BUY, t.buy_fee = 3, t.sell_fee = -1;
    assert_int_equal(gw_rm_apply_trade(rm, &t), 0);
    gw_position *b = &gw_rm_account(rm, 1, 0)->positions[0];
    gw_position *s = &gw_rm_account(rm, 2, 0)->positions[0];
    /* qty_decimals 3: a cent is 1000 units of cash. */
    assert_true(b->fees == 3000 && b->cash == -10000000 - 3000);
    assert_true(s->fees == -1000 && s->cash == 10000000 + 1000);
    struct evbuffer *out = evbuffer_new();
    gw_render_accounts(out, rm, NULL, NULL, NULL, 10);
    json_t *j =
        json_loadb((const char *)evbuffer_pullup(out, -1), evbuffer_get_length(out), 0, NULL);
    assert_non_null(j);
    json_t *acc = json_array_get(json_object_get(j, "accounts"), 0);
    json_t *pos = json_array_get(json_object_get(acc, "positions"), 0);
    const char *fees = json_string_value(json_object_get(pos, "fees"));
    const char *pnl = json_string_value(json_object_get(pos, "pnl"));
    assert_non_null(fees);
    if (!strcmp(json_string_value(json_object_get(acc, "account")), "1")) {
        assert_string_equal(fees, "0.03000");
        assert_string_equal(pnl, "-0.03000");
    } else {
        assert_string_equal(fees, "-0.01000");
        assert_string_equal(pnl, "0.01000");
    }
    json_decref(j);
    evbuffer_free(out);
}

static void pnl_of_all_accounts_sums_to_zero(void **state)
{
    (void)state;
    trade(0, 10000, 5, 1, 2, 1);
    trade(0, 10300, 7, 2, 3, 2);
    trade(0, 9900, 3, 3, 1, 3);
    trade(1, 10100, 4, 1, 3, 4);
    __int128 sum = 0;
    for (size_t a = 0; a < rm->n_accounts; a++)
        for (int i = 0; i < 2; i++)
            if (rm->account_list[a]->positions)
                sum += gw_position_pnl(&rm->account_list[a]->positions[i], rm->trades[i].last_px);
    assert_true(sum == 0);
}

static const char *name_of_1(void *user, uint64_t account)
{
    (void)user;
    return account == 1 ? "one" : NULL;
}

static void pnl_board_lists_named_then_busiest_and_sums_the_rest(void **state)
{
    (void)state;
    trade(0, 10000, 5, 1, 2, 1); /* 1 and 2 trade once */
    trade(0, 10100, 3, 3, 4, 2); /* 3 and 4 trade... */
    trade(0, 10200, 3, 3, 4, 3); /* ...twice */
    trade(0, 10300, 1, 5, 6, 4); /* 5 and 6 once */
    struct evbuffer *out = evbuffer_new();
    gw_render_accounts(out, rm, name_of_1, NULL, NULL, 2);
    json_t *j =
        json_loadb((const char *)evbuffer_pullup(out, -1), evbuffer_get_length(out), 0, NULL);
    assert_non_null(j);
    json_t *acc = json_object_get(j, "accounts");
    assert_int_equal(json_array_size(acc), 4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(acc, 0), "name")), "one");
    assert_string_equal(json_string_value(json_object_get(json_array_get(acc, 1), "account")), "3");
    assert_string_equal(json_string_value(json_object_get(json_array_get(acc, 2), "account")), "4");
    json_t *others = json_array_get(acc, 3);
    assert_string_equal(json_string_value(json_object_get(others, "account")), "others");
    assert_string_equal(json_string_value(json_object_get(others, "name")), "others (3 accounts)");
    /* 2 sold 5 @100.00 and bought 0; 5 bought 1 @103.00; 6 sold 1 @103.00:
     * positions -5 + 1 - 1 = -5.000 */
    json_t *pos = json_array_get(json_object_get(others, "positions"), 0);
    assert_string_equal(json_string_value(json_object_get(pos, "position")), "-0.005");
    assert_int_equal(json_integer_value(json_object_get(pos, "trades")), 3);
    json_decref(j);
    evbuffer_free(out);
}

/* ---- views ---- */

static void order_view_is_valid_json_with_string_ids(void **state)
{
    (void)state;
    add(18446744073709551615ull, 7, 10005, 1250);
    event(18446744073709551615ull, 7, ARB_EV_PARTIAL, 250, 1000, 10000, 1000);
    struct evbuffer *out = evbuffer_new();
    gw_render_order(out, rm, gw_rm_order(rm, 18446744073709551615ull));
    json_error_t e;
    json_t *j = json_loadb((const char *)evbuffer_pullup(out, -1), evbuffer_get_length(out), 0, &e);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "order_id")), "18446744073709551615");
    assert_string_equal(json_string_value(json_object_get(j, "status")), "partially_filled");
    assert_string_equal(json_string_value(json_object_get(j, "price")), "100.05");
    assert_string_equal(json_string_value(json_object_get(j, "qty")), "1.250");
    assert_string_equal(json_string_value(json_object_get(j, "filled_qty")), "1.000");
    assert_string_equal(json_string_value(json_object_get(j, "client_order_id")), "cid");
    json_t *fill = json_array_get(json_object_get(j, "fills"), 0);
    assert_string_equal(json_string_value(json_object_get(fill, "price")), "100.00");
    json_decref(j);
    evbuffer_free(out);
}

static void error_view_escapes_anything(void **state)
{
    (void)state;
    struct evbuffer *out = evbuffer_new();
    gw_render_error(out, "x", "quote \" backslash \\ newline \n tab \t high \xc3\xa9");
    json_t *j =
        json_loadb((const char *)evbuffer_pullup(out, -1), evbuffer_get_length(out), 0, NULL);
    assert_non_null(j);
    const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    assert_string_equal(m, "quote \" backslash \\ newline \n tab \t high ??");
    json_decref(j);
    evbuffer_free(out);
}

static void i128_amounts_format_exactly(void **state)
{
    (void)state;
    char b[80];
    gw_format_i128(0, 5, b, sizeof b);
    assert_string_equal(b, "0.00000");
    gw_format_i128(-1, 2, b, sizeof b);
    assert_string_equal(b, "-0.01");
    gw_format_i128(123456, 0, b, sizeof b);
    assert_string_equal(b, "123456");
    __int128 big = (__int128)INT64_MAX * 1000;
    gw_format_i128(big, 3, b, sizeof b);
    assert_string_equal(b, "9223372036854775807.000");
}

static void fast_decimal_format_matches_the_sdk(void **state)
{
    (void)state;
    int64_t values[] = {
        0,    1, -1, 9, 10, 99, 100, 12345, -12345, 1000000007, INT64_MAX, INT64_MIN, INT64_MIN + 1,
        -100, 5, -5};
    struct evbuffer *out = evbuffer_new();
    for (size_t i = 0; i < sizeof values / sizeof *values; i++)
        for (int d = 0; d <= 12; d++) {
            char want[64];
            arb_dec_format(values[i], d, want, sizeof want);
            evbuffer_drain(out, evbuffer_get_length(out));
            gw_format_dec_fast(out, values[i], d);
            size_t n = evbuffer_get_length(out);
            assert_int_equal(n, strlen(want));
            assert_memory_equal(evbuffer_pullup(out, -1), want, n);
        }
    evbuffer_free(out);
}

/* ---- the id map ---- */

static void id_map_survives_churn(void **state)
{
    (void)state;
    gw_u64map m = {0};
    uint64_t x = 88172645463325252ull;
    uint64_t keys[2000];
    for (int i = 0; i < 2000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        keys[i] = x | 1;
        assert_int_equal(gw_map_put(&m, keys[i], &keys[i]), 0);
    }
    for (int i = 0; i < 2000; i += 2)
        assert_ptr_equal(gw_map_del(&m, keys[i]), &keys[i]);
    for (int i = 0; i < 2000; i++)
        assert_ptr_equal(gw_map_get(&m, keys[i]), i % 2 ? &keys[i] : NULL);
    assert_int_equal(m.count, 1000);
    assert_null(gw_map_get(&m, 0));
    gw_map_free(&m);
}

static void order_is_found_by_its_account_and_client_id(void **state)
{
    (void)state;
    gw_order *o = add(1, 7, 100, 1);
    o->placed_ns = 1000;
    assert_ptr_equal(gw_rm_order_by_client(rm, 7, "cid", 0), o);
    assert_null(gw_rm_order_by_client(rm, 8, "cid", 0));
    assert_null(gw_rm_order_by_client(rm, 7, "other", 0));
    assert_null(gw_rm_order_by_client(rm, 7, "", 0));
}

static void client_id_placed_before_the_window_is_not_found(void **state)
{
    (void)state;
    gw_order *o = add(1, 7, 100, 1);
    o->placed_ns = 1000;
    assert_null(gw_rm_order_by_client(rm, 7, "cid", 1001));
}

static void forgotten_order_is_no_longer_found_by_client_id(void **state)
{
    (void)state;
    add(1, 7, 100, 1);
    gw_rm_order_drop(rm, 1);
    assert_null(gw_rm_order_by_client(rm, 7, "cid", 0));
}

/* Every ns time in an answer has an ISO-8601 twin: UTC, nanoseconds, and
 * instants before 1970 counted down, not up. */
static void ns_times_render_as_iso8601_utc(void **state)
{
    (void)state;
    char t[GW_ISO8601_LEN + 1];
    assert_int_equal(gw_iso8601(t, sizeof t, 0), GW_ISO8601_LEN);
    assert_string_equal(t, "1970-01-01T00:00:00.000000000Z");
    gw_iso8601(t, sizeof t, 1765106438042123456LL);
    assert_string_equal(t, "2025-12-07T11:20:38.042123456Z");
    gw_iso8601(t, sizeof t, -1);
    assert_string_equal(t, "1969-12-31T23:59:59.999999999Z");
    assert_int_equal(gw_iso8601(t, GW_ISO8601_LEN, 0), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(new_order_is_pending_and_open_for_its_account),
        T(order_is_found_by_its_account_and_client_id),
        T(client_id_placed_before_the_window_is_not_found),
        T(forgotten_order_is_no_longer_found_by_client_id),
        T(fills_accumulate_until_filled),
        T(events_of_other_orders_and_accounts_are_ignored),
        T(stale_event_is_ignored),
        T(reject_of_pending_order_rejects_it),
        T(reject_of_live_order_is_a_refused_command),
        T(cancelled_order_leaves_the_open_list),
        T(oldest_finished_orders_are_forgotten_past_the_history),
        T(open_orders_are_never_forgotten),
        T(dropped_pending_order_disappears),
        T(snapshot_then_level_updates_keep_sides_sorted),
        T(older_book_update_is_ignored),
        T(top_only_book_renders_its_top),
        T(trade_ring_keeps_the_newest),
        T(trades_of_all_instruments_merge_newest_first),
        T(positions_and_pnl_follow_trades_marked_to_last_price),
        T(positions_book_each_sides_fee),
        T(pnl_of_all_accounts_sums_to_zero),
        T(pnl_board_lists_named_then_busiest_and_sums_the_rest),
        T(order_view_is_valid_json_with_string_ids),
        T(error_view_escapes_anything),
        T(i128_amounts_format_exactly),
        T(fast_decimal_format_matches_the_sdk),
        T(id_map_survives_churn),
        T(ns_times_render_as_iso8601_utc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

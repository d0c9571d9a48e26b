/*
 * test_agent.c -- arb/agent.h: the PRNG, order sending, bookkeeping of
 * positions, cash, fees and open orders from scripted order_events, market
 * data, ticks, reports and save/restore. Against the fake host table; the
 * strategies and the real host are tested elsewhere.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arb/agent.h>

#include "test_agent_fakehost.h"

typedef struct fixture {
    fakehost *fh;
    fh_ctx *ctx;
    arb_agent a;
} fixture;

static void config_instruments(fakehost *fh)
{
    fh_set(fh, "instrument XA:BTCUSD", "price_decimals", "2");
    fh_set(fh, "instrument XA:BTCUSD", "tick_size", "0.05");
    fh_set(fh, "instrument XA:BTCUSD", "qty_decimals", "3");
    fh_set(fh, "instrument XA:BTCUSD", "lot_size", "0.001");
    fh_set(fh, "instrument XB:BTCUSD", "price_decimals", "2");
    fh_set(fh, "instrument XB:BTCUSD", "tick_size", "0.01");
    fh_set(fh, "instrument XB:BTCUSD", "qty_decimals", "3");
    fh_set(fh, "instrument XB:BTCUSD", "maker_fee_bps", "-0.5");
    fh_set(fh, "instrument XB:BTCUSD", "taker_fee_bps", "2.25");
}

static int setup_pop(void **state, const char *population)
{
    fixture *f = calloc(1, sizeof *f);
    f->fh = fh_new();
    config_instruments(f->fh);
    f->ctx = fh_ctx_new(f->fh, "trader");
    fh_set_plugin(f->fh, "trader", "account", "1000");
    fh_set_plugin(f->fh, "trader", "population", population);
    fh_set_plugin(f->fh, "trader", "instruments", "XA:BTCUSD, XB:BTCUSD");
    fh_set_plugin(f->fh, "trader", "fee_bps", "10");
    if (arb_agent_init(&f->a, &f->ctx->ctx) != ARB_OK)
        return -1;
    *state = f;
    return 0;
}

static int setup(void **state) { return setup_pop(state, "1"); }
static int setup_population(void **state) { return setup_pop(state, "4"); }

static int teardown(void **state)
{
    fixture *f = *state;
    arb_agent_free(&f->a);
    fh_free(f->fh);
    free(f->ctx);
    free(f);
    return 0;
}

static arb_order_event event(int kind, uint64_t id, uint64_t account, int side)
{
    arb_order_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = (uint8_t)kind;
    ev.order_id = id;
    ev.account = account;
    ev.side = (uint8_t)side;
    return ev;
}

static arb_order_event fill(int kind, uint64_t id, uint64_t account, int side, int64_t px,
                            int64_t qty, int64_t filled, int64_t leaves)
{
    arb_order_event ev = event(kind, id, account, side);
    ev.last_px = px;
    ev.last_qty = qty;
    ev.filled_qty = filled;
    ev.leaves_qty = leaves;
    return ev;
}

static arb_order_cmd last_cmd(fakehost *fh)
{
    arb_order_cmd c;
    size_t n = fh_count(fh, ARB_TOPIC_ORDER_COMMANDS);
    assert_true(n > 0);
    fh_msg *m = fh_nth(fh, ARB_TOPIC_ORDER_COMMANDS, n - 1);
    assert_int_equal(arb_order_cmd_decode(m->data, m->len, &c), ARB_OK);
    return c;
}

/* ---- PRNG ---- */

static void rng_same_seed_and_name_gives_same_stream(void **state)
{
    (void)state;
    arb_rng a, b, c;
    arb_rng_seed(&a, 7, "mm_xa");
    arb_rng_seed(&b, 7, "mm_xa");
    arb_rng_seed(&c, 7, "mm_xb");
    int same_c = 1;
    for (int i = 0; i < 100; i++) {
        uint64_t x = arb_rng_next(&a);
        assert_int_equal(x, arb_rng_next(&b));
        same_c &= x == arb_rng_next(&c);
    }
    assert_false(same_c);
}

static void rng_known_first_output_is_stable(void **state)
{
    (void)state;
    /* Pinned so that a change to the generator (and so to every simulated
     * run's digest) is a deliberate act. */
    arb_rng r;
    arb_rng_seed(&r, 1, NULL);
    assert_int_equal(r.s[0], 0x910a2dec89025cc1ull); /* splitmix64(1), first output */
    assert_int_equal(arb_rng_next(&r), 0xb3f2af6d0fc710c5ull);
}

static void rng_below_and_range_stay_in_bounds(void **state)
{
    (void)state;
    arb_rng r;
    arb_rng_seed(&r, 3, "x");
    int seen[7] = {0};
    for (int i = 0; i < 7000; i++) {
        uint64_t v = arb_rng_below(&r, 7);
        assert_true(v < 7);
        seen[v]++;
        int64_t w = arb_rng_range(&r, -3, 3);
        assert_true(w >= -3 && w <= 3);
    }
    for (int i = 0; i < 7; i++)
        assert_true(seen[i] > 800 && seen[i] < 1200);
    assert_int_equal(arb_rng_below(&r, 0), 0);
    assert_int_equal(arb_rng_range(&r, 5, 5), 5);
}

static void rng_gauss_has_unit_variance(void **state)
{
    (void)state;
    arb_rng r;
    arb_rng_seed(&r, 11, "g");
    double sum = 0, sq = 0;
    const int n = 20000;
    for (int i = 0; i < n; i++) {
        double z = (double)arb_rng_gauss_q32(&r) / 4294967296.0;
        assert_true(z > -6.0 && z < 6.0);
        sum += z;
        sq += z * z;
    }
    double mean = sum / n, var = sq / n - mean * mean;
    assert_true(mean > -0.05 && mean < 0.05);
    assert_true(var > 0.95 && var < 1.05);
}

/* ---- config ---- */

static void init_reads_accounts_and_instrument_specs(void **state)
{
    fixture *f = *state;
    assert_int_equal(f->a.account_base, 1000);
    assert_int_equal(f->a.n_accounts, 1);
    assert_int_equal(f->a.n_instruments, 2);
    assert_string_equal(f->a.instr[0].spec.venue, "XA");
    assert_int_equal(f->a.instr[0].spec.tick, 5);
    assert_int_equal(f->a.instr[1].spec.tick, 1);
    assert_int_equal(f->a.fee_bps, 10);
}

static void init_rejects_an_instrument_without_section(void **state)
{
    (void)state;
    fakehost *fh = fh_new();
    config_instruments(fh);
    fh_ctx *c = fh_ctx_new(fh, "bad");
    fh_set_plugin(fh, "bad", "account", "5");
    fh_set_plugin(fh, "bad", "instruments", "XA:BTCUSD XC:ETHUSD");
    arb_agent a;
    assert_int_equal(arb_agent_init(&a, &c->ctx), ARB_EINVAL);
    assert_non_null(strstr(fh->last_error, "XC:ETHUSD"));
    arb_agent_free(&a);
    free(c);
    fh_free(fh);
}

static void init_requires_an_account(void **state)
{
    (void)state;
    fakehost *fh = fh_new();
    config_instruments(fh);
    fh_ctx *c = fh_ctx_new(fh, "noacct");
    fh_set_plugin(fh, "noacct", "instruments", "XA:BTCUSD");
    arb_agent a;
    assert_int_equal(arb_agent_init(&a, &c->ctx), ARB_EINVAL);
    assert_non_null(strstr(fh->last_error, "account"));
    arb_agent_free(&a);
    free(c);
    fh_free(fh);
}

/* ---- sending ---- */

static void limit_order_is_published_keyed_by_instrument(void **state)
{
    fixture *f = *state;
    uint64_t id = arb_agent_limit(&f->a, 1, ARB_SIDE_BUY, 10000, 5);
    assert_true(id != 0);
    fh_msg *m = fh_nth(f->fh, ARB_TOPIC_ORDER_COMMANDS, 0);
    assert_non_null(m);
    assert_int_equal(m->key, f->a.instr[1].key);
    arb_order_cmd c = last_cmd(f->fh);
    assert_int_equal(c.action, ARB_CMD_NEW);
    assert_int_equal(c.side, ARB_SIDE_BUY);
    assert_int_equal(c.tif, ARB_TIF_GTC);
    assert_int_equal(c.order_id, id);
    assert_int_equal(c.account, 1000);
    assert_int_equal(c.price, 10000);
    assert_int_equal(c.qty, 5);
    assert_memory_equal(c.venue, "XB\0\0\0\0\0\0", 8);
    const arb_agent_order *o = arb_agent_order_find(&f->a, id);
    assert_non_null(o);
    assert_int_equal(o->state, ARB_AO_PENDING);
    assert_int_equal(f->a.st.orders_sent, 1);
}

static void ioc_order_carries_ioc_time_in_force(void **state)
{
    fixture *f = *state;
    arb_agent_ioc(&f->a, 0, ARB_SIDE_SELL, 9995, 1);
    arb_order_cmd c = last_cmd(f->fh);
    assert_int_equal(c.tif, ARB_TIF_IOC);
    assert_int_equal(c.side, ARB_SIDE_SELL);
}

static void bad_requests_send_nothing(void **state)
{
    fixture *f = *state;
    assert_int_equal(arb_agent_limit(&f->a, 2, ARB_SIDE_BUY, 100, 1), 0);
    assert_int_equal(arb_agent_limit(&f->a, 0, ARB_SIDE_BUY, 100, 0), 0);
    assert_int_equal(arb_agent_limit(&f->a, 0, 7, 100, 1), 0);
    arb_agent_order_req r = {1, 0, ARB_SIDE_BUY, 0, 0, 0, 100, 1, 0, 0};
    assert_int_equal(arb_agent_send(&f->a, &r), 0); /* account_ix out of range */
    assert_int_equal(fh_count(f->fh, ARB_TOPIC_ORDER_COMMANDS), 0);
}

static void refused_publish_leaves_no_order_behind(void **state)
{
    fixture *f = *state;
    f->fh->publish_fails = 1;
    assert_int_equal(arb_agent_limit(&f->a, 0, ARB_SIDE_BUY, 100, 1), 0);
    assert_int_equal(f->a.count, 0);
    assert_int_equal(f->a.st.send_failures, 1);
    assert_int_equal(f->a.st.orders_sent, 0);
}

static void order_ids_are_unique_and_differ_between_instances(void **state)
{
    fixture *f = *state;
    uint64_t a = arb_agent_limit(&f->a, 0, ARB_SIDE_BUY, 100, 1);
    uint64_t b = arb_agent_limit(&f->a, 0, ARB_SIDE_BUY, 100, 1);
    assert_int_not_equal(a, b);
    assert_int_equal(a >> ARB_AGENT_ID_SEQ_BITS, b >> ARB_AGENT_ID_SEQ_BITS);

    fh_ctx *c2 = fh_ctx_new(f->fh, "other");
    fh_set_plugin(f->fh, "other", "account", "2000");
    fh_set_plugin(f->fh, "other", "instruments", "XA:BTCUSD");
    arb_agent other;
    assert_int_equal(arb_agent_init(&other, &c2->ctx), ARB_OK);
    uint64_t c = arb_agent_limit(&other, 0, ARB_SIDE_BUY, 100, 1);
    assert_int_not_equal(c >> ARB_AGENT_ID_SEQ_BITS, a >> ARB_AGENT_ID_SEQ_BITS);
    arb_agent_free(&other);
    free(c2);
}

static void cancel_is_sent_once(void **state)
{
    fixture *f = *state;
    uint64_t id = arb_agent_limit(&f->a, 0, ARB_SIDE_BUY, 100, 1);
    assert_int_equal(arb_agent_cancel(&f->a, id), ARB_OK);
    assert_int_equal(arb_agent_cancel(&f->a, id), ARB_OK);
    assert_int_equal(fh_count(f->fh, ARB_TOPIC_ORDER_COMMANDS), 2);
    arb_order_cmd c = last_cmd(f->fh);
    assert_int_equal(c.action, ARB_CMD_CANCEL);
    assert_int_equal(c.order_id, id);
    assert_int_equal(arb_agent_cancel(&f->a, 12345), ARB_ENOENT);
}

/* An agent that stops with nobody taking its orders over cancels them (a
 * SIGHUP removing it left them on the book, still filling); one whose
 * successor adopted its saved state leaves them. Saving alone hands nothing
 * over: a successor that refused the state starts empty, and the orders
 * would be nobody's. */
static void stop_cancels_the_orders_no_successor_takes(void **state)
{
    fixture *f = *state;
    uint64_t a = arb_agent_limit(&f->a, 0, ARB_SIDE_BUY, 100, 1);
    uint64_t b = arb_agent_limit(&f->a, 1, ARB_SIDE_SELL, 20000, 1);
    arb_order_event ev = event(ARB_EV_ACCEPTED, a, 1000, ARB_SIDE_BUY);
    arb_agent_on_order_event(&f->a, &ev);
    void *bytes;
    size_t len;
    assert_int_equal(arb_agent_save(&f->a, NULL, 0, &bytes, &len), ARB_OK);
    free(bytes);
    f->fh->adopted = 1;
    arb_agent_stop(&f->a);
    assert_int_equal(fh_count(f->fh, ARB_TOPIC_ORDER_COMMANDS), 2); /* left to the successor */

    f->fh->adopted = 0; /* saved, but the successor refused the state */
    arb_agent_stop(&f->a);
    assert_int_equal(fh_count(f->fh, ARB_TOPIC_ORDER_COMMANDS), 4);
    uint64_t cancelled[2];
    for (int i = 0; i < 2; i++) {
        arb_order_cmd c;
        fh_msg *m = fh_nth(f->fh, ARB_TOPIC_ORDER_COMMANDS, 2 + (size_t)i);
        assert_int_equal(arb_order_cmd_decode(m->data, m->len, &c), ARB_OK);
        assert_int_equal(c.action, ARB_CMD_CANCEL);
        cancelled[i] = c.order_id;
    }
    assert_true((cancelled[0] == a && cancelled[1] == b) ||
                (cancelled[0] == b && cancelled[1] == a));
}

static void replace_sends_new_price_and_quantity(void **state)
{
    fixture *f = *state;
    uint64_t id = arb_agent_limit(&f->a, 0, ARB_SIDE_SELL, 10100, 3);
    assert_int_equal(arb_agent_replace(&f->a, id, 10105, 2, 77), ARB_OK);
    arb_order_cmd c = last_cmd(f->fh);
    assert_int_equal(c.action, ARB_CMD_REPLACE);
    assert_int_equal(c.price, 10105);
    assert_int_equal(c.qty, 2);
    assert_int_equal(c.client_ref, 77);
    arb_order_event ev = event(ARB_EV_REPLACED, id, 1000, ARB_SIDE_SELL);
    ev.price = 10105, ev.qty = 2, ev.leaves_qty = 2, ev.client_ref = 77;
    arb_agent_on_order_event(&f->a, &ev);
    const arb_agent_order *o = arb_agent_order_find(&f->a, id);
    assert_int_equal(o->price, 10105);
    assert_int_equal(o->leaves, 2);
    assert_int_equal(o->state, ARB_AO_OPEN);
}

static void keep_quote_sends_replaces_and_cancels_one_order(void **state)
{
    fixture *f = *state;
    uint64_t slot = 0;
    arb_agent_keep_quote(&f->a, 0, ARB_SIDE_BUY, &slot, 9990, 5, 7);
    assert_true(slot != 0);
    assert_int_equal(last_cmd(f->fh).action, ARB_CMD_NEW);
    arb_agent_keep_quote(&f->a, 0, ARB_SIDE_BUY, &slot, 9990, 5, 7);
    assert_int_equal(fh_count(f->fh, ARB_TOPIC_ORDER_COMMANDS), 1); /* unchanged: nothing */
    arb_agent_keep_quote(&f->a, 0, ARB_SIDE_BUY, &slot, 9985, 5, 8);
    arb_order_cmd c = last_cmd(f->fh);
    assert_int_equal(c.action, ARB_CMD_REPLACE);
    assert_int_equal(c.price, 9985);
    assert_int_equal(c.client_ref, 8);
    arb_agent_keep_quote(&f->a, 0, ARB_SIDE_BUY, &slot, 9985, 5, 8);
    assert_int_equal(fh_count(f->fh, ARB_TOPIC_ORDER_COMMANDS), 2); /* replace in flight */
    arb_agent_keep_quote(&f->a, 0, ARB_SIDE_BUY, &slot, 9985, 0, 8);
    assert_int_equal(last_cmd(f->fh).action, ARB_CMD_CANCEL);
    /* Once the order is gone, the next quote is a new order. */
    arb_order_event ev = event(ARB_EV_CANCELLED, slot, 1000, ARB_SIDE_BUY);
    arb_agent_on_order_event(&f->a, &ev);
    uint64_t old = slot;
    arb_agent_keep_quote(&f->a, 0, ARB_SIDE_BUY, &slot, 9980, 5, 9);
    assert_int_equal(last_cmd(f->fh).action, ARB_CMD_NEW);
    assert_int_not_equal(slot, old);
}

/* ---- bookkeeping ---- */

static void fills_move_position_cash_and_fees_exactly(void **state)
{
    fixture *f = *state;
    uint64_t buy = arb_agent_limit(&f->a, 0, ARB_SIDE_BUY, 10000, 3000);
    arb_order_event ev = event(ARB_EV_ACCEPTED, buy, 1000, ARB_SIDE_BUY);
    arb_agent_on_order_event(&f->a, &ev);
    ev = fill(ARB_EV_PARTIAL, buy, 1000, ARB_SIDE_BUY, 10000, 1000, 1000, 2000);
    arb_agent_on_order_event(&f->a, &ev);
    ev = fill(ARB_EV_FILLED, buy, 1000, ARB_SIDE_BUY, 9995, 2000, 3000, 0);
    arb_agent_on_order_event(&f->a, &ev);
    uint64_t sell = arb_agent_ioc(&f->a, 0, ARB_SIDE_SELL, 10100, 1000);
    ev = fill(ARB_EV_FILLED, sell, 1000, ARB_SIDE_SELL, 10100, 1000, 1000, 0);
    arb_agent_on_order_event(&f->a, &ev);

    const arb_agent_position *p = arb_agent_pos(&f->a, 0, 0);
    int64_t notional_buy = 10000 * 1000 + 9995 * 2000, notional_sell = 10100 * 1000;
    int64_t fees = 10000 * 1000 * 10 / 10000 + 9995 * 2000 * 10 / 10000 + 10100 * 1000 * 10 / 10000;
    assert_int_equal(p->position, 2000);
    assert_int_equal(p->fees, fees);
    assert_int_equal(p->cash, -notional_buy + notional_sell - fees);
    assert_int_equal(p->volume, 4000);
    assert_int_equal(p->fills, 3);
    assert_int_equal(f->a.tot[0].position, 2000);
    assert_int_equal(f->a.tot[0].cash, p->cash);
    assert_int_equal(f->a.count, 0); /* both orders are done */
    assert_int_equal(f->a.st.fills, 3);
}

/* A fill the matcher charged (an order event of version 2) costs the
 * agent exactly that fee, scaled to price units x quantity units, whatever
 * its own fee_bps says; a rebate adds to its cash. */
static void fills_are_charged_the_venues_fee(void **state)
{
    fixture *f = *state;
    uint64_t buy = arb_agent_ioc(&f->a, 1, ARB_SIDE_BUY, 10000, 1000);
    arb_order_event ev = fill(ARB_EV_FILLED, buy, 1000, ARB_SIDE_BUY, 10000, 1000, 1000, 0);
    ev.fee = 3, ev.liquidity = ARB_LIQ_TAKER;
    arb_agent_on_order_event(&f->a, &ev);
    uint64_t sell = arb_agent_limit(&f->a, 1, ARB_SIDE_SELL, 10100, 1000);
    ev = fill(ARB_EV_FILLED, sell, 1000, ARB_SIDE_SELL, 10100, 1000, 1000, 0);
    ev.fee = -1, ev.liquidity = ARB_LIQ_MAKER;
    arb_agent_on_order_event(&f->a, &ev);
    const arb_agent_position *p = arb_agent_pos(&f->a, 0, 1);
    /* qty_decimals 3: one price unit of fee is 1000 of the books' units. */
    assert_int_equal(p->fees, 3000 - 1000);
    assert_int_equal(p->cash, -10000 * 1000 + 10100 * 1000 - 2000);
    assert_int_equal(arb_agent_pnl(&f->a, 0, 1), p->cash); /* flat */
}

static void agent_reads_the_venues_rates(void **state)
{
    fixture *f = *state;
    assert_int_equal(f->a.instr[0].maker_fee_cbps, 0);
    assert_int_equal(f->a.instr[0].taker_fee_cbps, 0);
    assert_int_equal(f->a.instr[1].maker_fee_cbps, -50);
    assert_int_equal(f->a.instr[1].taker_fee_cbps, 225);
}

static void repeated_fill_event_is_counted_once(void **state)
{
    fixture *f = *state;
    uint64_t id = arb_agent_limit(&f->a, 0, ARB_SIDE_BUY, 10000, 2000);
    arb_order_event ev = fill(ARB_EV_PARTIAL, id, 1000, ARB_SIDE_BUY, 10000, 1000, 1000, 1000);
    arb_agent_on_order_event(&f->a, &ev);
    arb_agent_on_order_event(&f->a, &ev);
    assert_int_equal(arb_agent_pos(&f->a, 0, 0)->position, 1000);
    assert_int_equal(f->a.st.dup_fills, 1);
    assert_int_equal(f->a.st.fills, 1);
}

static void rejected_new_order_is_forgotten(void **state)
{
    fixture *f = *state;
    uint64_t id = arb_agent_limit(&f->a, 0, ARB_SIDE_BUY, 10001, 1);
    arb_order_event ev = event(ARB_EV_REJECTED, id, 1000, ARB_SIDE_BUY);
    ev.reason = ARB_R_PRICE_OFF_TICK;
    arb_agent_on_order_event(&f->a, &ev);
    assert_null(arb_agent_order_find(&f->a, id));
    assert_int_equal(f->a.st.rejects, 1);
}

static void rejected_cancel_of_a_live_order_keeps_it(void **state)
{
    fixture *f = *state;
    uint64_t id = arb_agent_limit(&f->a, 0, ARB_SIDE_BUY, 10000, 1);
    arb_order_event ev = event(ARB_EV_ACCEPTED, id, 1000, ARB_SIDE_BUY);
    arb_agent_on_order_event(&f->a, &ev);
    arb_agent_cancel(&f->a, id);
    ev = event(ARB_EV_REJECTED, id, 1000, ARB_SIDE_BUY);
    ev.reason = ARB_R_BAD_FIELD;
    arb_agent_on_order_event(&f->a, &ev);
    const arb_agent_order *o = arb_agent_order_find(&f->a, id);
    assert_non_null(o);
    assert_int_equal(o->cancel_sent, 0); /* a later cancel is sent again */
    /* A refused replace leaves the order at its old price, asked again later. */
    assert_int_equal(arb_agent_replace(&f->a, id, 10100, 1, 0), ARB_OK);
    assert_int_equal(o->req_price, 10100);
    arb_agent_on_order_event(&f->a, &ev);
    assert_int_equal(o->req_price, 10000);
}

static void cancelled_and_expired_orders_leave_the_table(void **state)
{
    fixture *f = *state;
    uint64_t a = arb_agent_limit(&f->a, 0, ARB_SIDE_BUY, 10000, 1);
    uint64_t b = arb_agent_ioc(&f->a, 0, ARB_SIDE_BUY, 10000, 1);
    arb_order_event ev = event(ARB_EV_CANCELLED, a, 1000, ARB_SIDE_BUY);
    arb_agent_on_order_event(&f->a, &ev);
    ev = event(ARB_EV_EXPIRED, b, 1000, ARB_SIDE_BUY);
    arb_agent_on_order_event(&f->a, &ev);
    assert_int_equal(f->a.count, 0);
    assert_int_equal(f->a.st.cancels, 1);
    assert_int_equal(f->a.st.expiries, 1);
}

static void events_of_other_accounts_are_ignored(void **state)
{
    fixture *f = *state;
    uint64_t id = arb_agent_limit(&f->a, 0, ARB_SIDE_BUY, 10000, 5);
    arb_order_event ev = fill(ARB_EV_FILLED, id, 1001, ARB_SIDE_BUY, 10000, 5, 5, 0);
    arb_agent_on_order_event(&f->a, &ev);
    assert_int_equal(f->a.st.events, 0);
    assert_int_equal(arb_agent_pos(&f->a, 0, 0)->position, 0);
    ev = fill(ARB_EV_FILLED, 999, 1000, ARB_SIDE_BUY, 10000, 5, 5, 0);
    arb_agent_on_order_event(&f->a, &ev);
    assert_int_equal(f->a.st.unknown_events, 1);
}

static void population_accounts_keep_separate_books(void **state)
{
    fixture *f = *state;
    assert_int_equal(f->a.n_accounts, 4);
    arb_agent_order_req r = {3, 1, ARB_SIDE_SELL, ARB_ORD_LIMIT, ARB_TIF_GTC, 0, 10000, 7, 0, 0};
    uint64_t id = arb_agent_send(&f->a, &r);
    assert_int_equal(last_cmd(f->fh).account, 1003);
    arb_order_event ev = fill(ARB_EV_FILLED, id, 1003, ARB_SIDE_SELL, 10000, 7, 7, 0);
    arb_agent_on_order_event(&f->a, &ev);
    assert_int_equal(arb_agent_pos(&f->a, 3, 1)->position, -7);
    assert_int_equal(arb_agent_pos(&f->a, 0, 1)->position, 0);
    assert_int_equal(f->a.tot[1].position, -7);
}

static void orders_with_a_time_to_live_are_cancelled_when_it_runs_out(void **state)
{
    fixture *f = *state;
    f->a.now = 1000;
    arb_agent_order_req r = {0, 0, ARB_SIDE_BUY, 0, 0, 0, 10000, 1, 500, 0};
    uint64_t early = arb_agent_send(&f->a, &r);
    r.ttl_ns = 900;
    uint64_t late = arb_agent_send(&f->a, &r);
    size_t before = fh_count(f->fh, ARB_TOPIC_ORDER_COMMANDS);
    arb_agent_cancel_expired(&f->a, 1499);
    assert_int_equal(fh_count(f->fh, ARB_TOPIC_ORDER_COMMANDS), before);
    arb_agent_cancel_expired(&f->a, 1500);
    assert_int_equal(fh_count(f->fh, ARB_TOPIC_ORDER_COMMANDS), before + 1);
    assert_int_equal(last_cmd(f->fh).order_id, early);
    arb_agent_cancel_expired(&f->a, 5000);
    assert_int_equal(last_cmd(f->fh).order_id, late);
    assert_int_equal(f->a.heap_n, 0);
}

static void market_data_sets_the_top_and_stale_updates_are_ignored(void **state)
{
    fixture *f = *state;
    arb_market_data md;
    memset(&md, 0, sizeof md);
    md.kind = ARB_MD_TOP;
    memcpy(md.venue, f->a.instr[0].venue_f, 8);
    memcpy(md.symbol, f->a.instr[0].symbol_f, 16);
    md.book_seq = 5;
    md.bid_px = 9990, md.bid_qty = 3, md.ask_px = 10010, md.ask_qty = 4;
    arb_agent_on_market_data(&f->a, &md);
    md.book_seq = 4;
    md.bid_px = 1;
    arb_agent_on_market_data(&f->a, &md);
    const arb_agent_top *t = arb_agent_top_of(&f->a, 0);
    assert_int_equal(t->bid_px, 9990);
    assert_int_equal(t->ask_qty, 4);
    assert_int_equal(arb_agent_mark(&f->a, 0), 10000);
}

static void pnl_marks_the_position_at_the_mid(void **state)
{
    fixture *f = *state;
    uint64_t id = arb_agent_limit(&f->a, 1, ARB_SIDE_BUY, 10000, 10);
    arb_order_event ev = fill(ARB_EV_FILLED, id, 1000, ARB_SIDE_BUY, 10000, 10, 10, 0);
    arb_agent_on_order_event(&f->a, &ev);
    arb_agent_top *t = &f->a.instr[1].top;
    t->bid_px = 10010, t->bid_qty = 1, t->ask_px = 10013, t->ask_qty = 1;
    /* mid 10011.5 rounds down to 10011; fee floor(100000 * 10 / 10000) = 100 */
    assert_int_equal(arb_agent_pnl(&f->a, 0, 1), 10 * 11 - 100);
    assert_int_equal(arb_agent_total_pnl(&f->a), 10 * 11 - 100);
}

static void market_events_set_venue_and_fair_values(void **state)
{
    fixture *f = *state;
    arb_market_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = ARB_MEV_VENUE_VALUE;
    memcpy(ev.venue, f->a.instr[1].venue_f, 8);
    memcpy(ev.symbol, f->a.instr[1].symbol_f, 16);
    ev.value = 12345;
    arb_agent_on_market_event(&f->a, &ev);
    assert_int_equal(f->a.instr[1].top.venue_value, 12345);
    assert_int_equal(f->a.instr[0].top.venue_value, 0);
    ev.kind = ARB_MEV_FAIR_VALUE;
    memset(ev.venue, 0, 8);
    ev.value = 12000;
    arb_agent_on_market_event(&f->a, &ev);
    assert_int_equal(f->a.instr[0].top.fair_value, 12000);
    assert_int_equal(f->a.instr[1].top.fair_value, 12000);
}

static void tick_gaps_and_repeats_are_counted(void **state)
{
    fixture *f = *state;
    arb_tick t = {1, 100, 0, 0, ARB_TICK_SIM};
    arb_agent_on_tick(&f->a, &t);
    t.seq = 2;
    arb_agent_on_tick(&f->a, &t);
    arb_agent_on_tick(&f->a, &t);
    t.seq = 5;
    t.sim_ns = 500;
    arb_agent_on_tick(&f->a, &t);
    assert_int_equal(f->a.st.ticks, 3);
    assert_int_equal(f->a.st.tick_dups, 1);
    assert_int_equal(f->a.st.tick_gaps, 2);
    assert_int_equal(f->a.st.first_tick, 1);
    assert_int_equal(f->a.st.last_tick, 5);
    assert_int_equal(f->a.now, 500);
}

static int hook_ticks, hook_fills, hook_done, hook_tops;
static void h_tick(void *u, const arb_tick *t) { (void)u, (void)t, hook_ticks++; }
static void h_fill(void *u, const arb_agent_order *o, int64_t px, int64_t q)
{
    (void)u, (void)o, (void)px, (void)q, hook_fills++;
}
static void h_done(void *u, const arb_agent_order *o, const arb_order_event *e)
{
    (void)u, (void)o, (void)e, hook_done++;
}
static void h_top(void *u, int ix) { (void)u, (void)ix, hook_tops++; }

static void start_routes_bus_messages_to_the_hooks(void **state)
{
    fixture *f = *state;
    hook_ticks = hook_fills = hook_done = hook_tops = 0;
    arb_agent_hooks h = {h_tick, h_fill, h_done, h_top, NULL, NULL};
    assert_int_equal(arb_agent_start(&f->a, &h, NULL), ARB_OK);
    fh_ctx *other = fh_ctx_new(f->fh, "matcher");
    uint8_t buf[ARB_WIRE_MAX];
    arb_tick t = {1, 5, 0, 0, ARB_TICK_SIM};
    uint32_t n = arb_tick_encode(&t, buf, sizeof buf);
    arb_publish(&other->ctx, ARB_TOPIC_SYSTEM_TICKS, 0, buf, n);
    uint64_t id = arb_agent_limit(&f->a, 0, ARB_SIDE_BUY, 10000, 2);
    uint64_t id2 = arb_agent_limit(&f->a, 0, ARB_SIDE_BUY, 10000, 2);
    arb_order_event ev = fill(ARB_EV_FILLED, id, 1000, ARB_SIDE_BUY, 10000, 2, 2, 0);
    memcpy(ev.venue, "XA", 2);
    memcpy(ev.symbol, "BTCUSD", 6);
    n = arb_order_event_encode(&ev, buf, sizeof buf);
    arb_publish(&other->ctx, ARB_TOPIC_ORDER_EVENTS, 1000, buf, n);
    ev = event(ARB_EV_CANCELLED, id2, 1000, ARB_SIDE_BUY);
    memcpy(ev.venue, "XA", 2);
    memcpy(ev.symbol, "BTCUSD", 6);
    n = arb_order_event_encode(&ev, buf, sizeof buf);
    arb_publish(&other->ctx, ARB_TOPIC_ORDER_EVENTS, 1000, buf, n);
    arb_market_data md;
    memset(&md, 0, sizeof md);
    md.kind = ARB_MD_TOP;
    memcpy(md.venue, f->a.instr[0].venue_f, 8);
    memcpy(md.symbol, f->a.instr[0].symbol_f, 16);
    md.bid_px = 1, md.bid_qty = 1;
    n = arb_market_data_encode(&md, buf, sizeof buf);
    arb_publish(&other->ctx, ARB_TOPIC_MARKET_DATA, f->a.instr[0].key, buf, n);
    fh_drain(f->fh);
    assert_int_equal(hook_ticks, 1);
    assert_int_equal(hook_fills, 1);
    assert_int_equal(hook_done, 1);
    assert_int_equal(hook_tops, 1);
    assert_int_equal(f->a.tot[0].position, 2);
    free(other);
}

/* ---- reports ---- */

static void report_round_trips_through_its_encoding(void **state)
{
    fixture *f = *state;
    uint64_t id = arb_agent_limit(&f->a, 1, ARB_SIDE_BUY, 10000, 10);
    arb_order_event ev = fill(ARB_EV_PARTIAL, id, 1000, ARB_SIDE_BUY, 10000, 4, 4, 6);
    arb_agent_on_order_event(&f->a, &ev);
    arb_agent_report r, d;
    arb_agent_report_fill(&f->a, &r);
    uint8_t buf[ARB_AGENT_REPORT_LEN(ARB_AGENT_MAX_INSTRUMENTS)];
    uint32_t n = arb_agent_report_encode(&r, buf, sizeof buf);
    assert_int_equal(n, ARB_AGENT_REPORT_LEN(2));
    assert_int_equal(arb_agent_report_decode(buf, n, &d), ARB_OK);
    assert_memory_equal(&r, &d, sizeof r);
    assert_int_equal(d.open_orders, 1);
    assert_int_equal(d.open_id_sum, id);
    assert_int_equal(d.position[1], 4);
    assert_int_equal(arb_agent_report_decode(buf, n - 1, &d), ARB_EBADMSG);
}

/* ---- save / restore ---- */

static int make_agent(fakehost *fh, fh_ctx **c, arb_agent *a, const char *name, const char *account,
                      const char *instruments)
{
    *c = fh_ctx_new(fh, name);
    fh_set_plugin(fh, name, "account", account);
    fh_set_plugin(fh, name, "instruments", instruments);
    return arb_agent_init(a, &(*c)->ctx);
}

static void restore_adopts_positions_orders_and_id_sequence(void **state)
{
    fixture *f = *state;
    f->a.now = 777;
    uint64_t a = arb_agent_limit(&f->a, 0, ARB_SIDE_BUY, 10000, 5);
    arb_agent_order_req r = {0, 1, ARB_SIDE_SELL, 0, 0, 0, 10100, 3, 1000, 9};
    uint64_t b = arb_agent_send(&f->a, &r);
    arb_order_event ev = fill(ARB_EV_PARTIAL, a, 1000, ARB_SIDE_BUY, 10000, 2, 2, 3);
    arb_agent_on_order_event(&f->a, &ev);
    f->a.instr[1].top.bid_px = 10050;
    f->a.instr[1].top.bid_qty = 2;
    arb_rng_next(&f->a.rng);
    const char extra[] = "learned";
    void *bytes;
    size_t len;
    assert_int_equal(arb_agent_save(&f->a, extra, sizeof extra, &bytes, &len), ARB_OK);

    fh_ctx *c2;
    arb_agent n;
    fh_set_plugin(f->fh, "trader2", "fee_bps", "10");
    assert_int_equal(make_agent(f->fh, &c2, &n, "trader2", "1000", "XA:BTCUSD XB:BTCUSD"), ARB_OK);
    const void *x;
    size_t xlen;
    assert_int_equal(arb_agent_restore(&n, bytes, len, &x, &xlen), ARB_OK);
    assert_int_equal(xlen, sizeof extra);
    assert_memory_equal(x, extra, sizeof extra);
    assert_int_equal(n.count, 2);
    const arb_agent_order *oa = arb_agent_order_find(&n, a), *ob = arb_agent_order_find(&n, b);
    assert_non_null(oa);
    assert_non_null(ob);
    assert_int_equal(oa->filled, 2);
    assert_int_equal(oa->leaves, 3);
    assert_int_equal(ob->client_ref, 9);
    assert_int_equal(ob->expire_at, 1777);
    assert_int_equal(n.heap_n, 1);
    assert_int_equal(arb_agent_pos(&n, 0, 0)->position, 2);
    assert_int_equal(arb_agent_pos(&n, 0, 0)->cash, f->a.pos[0].cash);
    assert_int_equal(n.instr[1].top.bid_px, 10050);
    assert_int_equal(n.now, 777);
    assert_memory_equal(&n.st, &f->a.st, sizeof n.st);
    assert_int_equal(arb_rng_next(&n.rng), arb_rng_next(&f->a.rng));
    /* The id sequence goes on where the old instance left it. */
    uint64_t next_old = arb_agent_limit(&f->a, 0, ARB_SIDE_BUY, 1, 1);
    uint64_t next_new = arb_agent_limit(&n, 0, ARB_SIDE_BUY, 1, 1);
    assert_int_equal(next_old, next_new);
    /* And the restored agent goes on tracking fills of old orders. */
    ev = fill(ARB_EV_FILLED, a, 1000, ARB_SIDE_BUY, 10000, 3, 5, 0);
    arb_agent_on_order_event(&n, &ev);
    assert_int_equal(arb_agent_pos(&n, 0, 0)->position, 5);
    assert_null(arb_agent_order_find(&n, a));
    free(bytes);
    arb_agent_free(&n);
    free(c2);
}

static void restore_refuses_another_account_or_instrument_list(void **state)
{
    fixture *f = *state;
    void *bytes;
    size_t len;
    assert_int_equal(arb_agent_save(&f->a, NULL, 0, &bytes, &len), ARB_OK);
    const void *x;
    size_t xlen;
    fh_ctx *c1, *c2;
    arb_agent other_acct, other_instr;
    assert_int_equal(make_agent(f->fh, &c1, &other_acct, "t1", "1001", "XA:BTCUSD XB:BTCUSD"),
                     ARB_OK);
    assert_int_equal(make_agent(f->fh, &c2, &other_instr, "t2", "1000", "XB:BTCUSD XA:BTCUSD"),
                     ARB_OK);
    assert_int_equal(arb_agent_restore(&other_acct, bytes, len, &x, &xlen), ARB_EREFUSED);
    assert_int_equal(arb_agent_restore(&other_instr, bytes, len, &x, &xlen), ARB_EREFUSED);
    free(bytes);
    arb_agent_free(&other_acct);
    arb_agent_free(&other_instr);
    free(c1);
    free(c2);
}

static void restore_refuses_every_truncation_and_leaves_the_agent_alone(void **state)
{
    fixture *f = *state;
    arb_agent_limit(&f->a, 0, ARB_SIDE_BUY, 10000, 5);
    void *bytes;
    size_t len;
    assert_int_equal(arb_agent_save(&f->a, "xy", 2, &bytes, &len), ARB_OK);
    fh_ctx *c;
    arb_agent n;
    assert_int_equal(make_agent(f->fh, &c, &n, "t3", "1000", "XA:BTCUSD XB:BTCUSD"), ARB_OK);
    arb_agent_limit(&n, 0, ARB_SIDE_SELL, 1, 1);
    for (size_t cut = 0; cut < len; cut++) {
        const void *x;
        size_t xlen;
        assert_int_equal(arb_agent_restore(&n, bytes, cut, &x, &xlen), ARB_EREFUSED);
    }
    assert_int_equal(n.count, 1);
    /* A corrupted order side is refused too. */
    uint8_t *p = bytes;
    size_t order_at = len - 4 - 2 - ARB__AGENT_ORDER_LEN;
    p[order_at + 78] = 9;
    const void *x;
    size_t xlen;
    assert_int_equal(arb_agent_restore(&n, bytes, len, &x, &xlen), ARB_EREFUSED);
    free(bytes);
    arb_agent_free(&n);
    free(c);
}

/* ---- the open-order table ---- */

static void order_table_survives_heavy_insert_and_delete(void **state)
{
    fixture *f = *state;
    enum { N = 5000 };
    static uint64_t ids[N];
    static int live[N];
    arb_rng r;
    arb_rng_seed(&r, 5, "table");
    for (int i = 0; i < N; i++) {
        ids[i] = arb_agent_limit(&f->a, 0, ARB_SIDE_BUY, 100, 1);
        live[i] = 1;
        if (i > 10 && arb_rng_below(&r, 2)) {
            int k = (int)arb_rng_below(&r, (uint64_t)i);
            if (live[k]) {
                arb_order_event ev = event(ARB_EV_CANCELLED, ids[k], 1000, ARB_SIDE_BUY);
                arb_agent_on_order_event(&f->a, &ev);
                live[k] = 0;
            }
        }
    }
    uint32_t expect = 0;
    for (int i = 0; i < N; i++) {
        expect += (uint32_t)live[i];
        assert_int_equal(arb_agent_order_find(&f->a, ids[i]) != NULL, live[i]);
    }
    assert_int_equal(f->a.count, expect);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rng_same_seed_and_name_gives_same_stream),
        cmocka_unit_test(rng_known_first_output_is_stable),
        cmocka_unit_test(rng_below_and_range_stay_in_bounds),
        cmocka_unit_test(rng_gauss_has_unit_variance),
        cmocka_unit_test_setup_teardown(init_reads_accounts_and_instrument_specs, setup, teardown),
        cmocka_unit_test(init_rejects_an_instrument_without_section),
        cmocka_unit_test(init_requires_an_account),
        cmocka_unit_test_setup_teardown(limit_order_is_published_keyed_by_instrument, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(ioc_order_carries_ioc_time_in_force, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_requests_send_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(refused_publish_leaves_no_order_behind, setup, teardown),
        cmocka_unit_test_setup_teardown(order_ids_are_unique_and_differ_between_instances, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(cancel_is_sent_once, setup, teardown),
        cmocka_unit_test_setup_teardown(stop_cancels_the_orders_no_successor_takes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(replace_sends_new_price_and_quantity, setup, teardown),
        cmocka_unit_test_setup_teardown(keep_quote_sends_replaces_and_cancels_one_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(fills_move_position_cash_and_fees_exactly, setup, teardown),
        cmocka_unit_test_setup_teardown(fills_are_charged_the_venues_fee, setup, teardown),
        cmocka_unit_test_setup_teardown(agent_reads_the_venues_rates, setup, teardown),
        cmocka_unit_test_setup_teardown(repeated_fill_event_is_counted_once, setup, teardown),
        cmocka_unit_test_setup_teardown(rejected_new_order_is_forgotten, setup, teardown),
        cmocka_unit_test_setup_teardown(rejected_cancel_of_a_live_order_keeps_it, setup, teardown),
        cmocka_unit_test_setup_teardown(cancelled_and_expired_orders_leave_the_table, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(events_of_other_accounts_are_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(population_accounts_keep_separate_books, setup_population,
                                        teardown),
        cmocka_unit_test_setup_teardown(orders_with_a_time_to_live_are_cancelled_when_it_runs_out,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(market_data_sets_the_top_and_stale_updates_are_ignored,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(pnl_marks_the_position_at_the_mid, setup, teardown),
        cmocka_unit_test_setup_teardown(market_events_set_venue_and_fair_values, setup, teardown),
        cmocka_unit_test_setup_teardown(tick_gaps_and_repeats_are_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(start_routes_bus_messages_to_the_hooks, setup, teardown),
        cmocka_unit_test_setup_teardown(report_round_trips_through_its_encoding, setup, teardown),
        cmocka_unit_test_setup_teardown(restore_adopts_positions_orders_and_id_sequence, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(restore_refuses_another_account_or_instrument_list, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(restore_refuses_every_truncation_and_leaves_the_agent_alone,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(order_table_survives_heavy_insert_and_delete, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

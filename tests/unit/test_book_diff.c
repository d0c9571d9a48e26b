/*
 * test_book_diff.c -- the order book against the reference book
 * (tests/ref) on random command streams: every event, trade and market data
 * record compared field by field after every command, the resting orders of
 * both compared regularly, and property checks (never crossed, levels equal
 * the sum of their orders, fills within limits, trades match their fill
 * events, each order's filled quantity equals the sum of its trades, FIFO
 * within a level) after every command.
 *
 * The plain run covers at least 1M commands over many seeds and several
 * profiles; under ASan (or with ARB_TEST_SCALE=<divisor>) it runs fewer.
 * Not here: hand-written scenarios (test_book.c), save/restore
 * (test_book_state.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "../ref/book_check.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

static uint64_t total_commands, total_events, total_trades, total_md;

static size_t scaled(size_t n)
{
    size_t div = UNDER_ASAN ? 2 : 1;
    const char *s = getenv("ARB_TEST_SCALE");
    if (s && atoi(s) > 0)
        div = (size_t)atoi(s);
    return n / div ? n / div : 1;
}

static void describe(const arb_order_cmd *c, char *buf, size_t cap)
{
    char v[ARB_VENUE_LEN + 1], s[ARB_SYMBOL_LEN + 1];
    snprintf(buf, cap,
             "action %u side %u type %u tif %u flags %u stp %u %s:%s id %llu acct %llu px %lld "
             "qty %lld",
             c->action, c->side, c->type, c->tif, c->flags, c->stp,
             arb_fixstr(v, c->venue, ARB_VENUE_LEN), arb_fixstr(s, c->symbol, ARB_SYMBOL_LEN),
             (unsigned long long)c->order_id, (unsigned long long)c->account, (long long)c->price,
             (long long)c->qty);
}

static void run_stream(uint64_t seed, const gen_profile *p, const book_config *cfg, size_t n_cmds)
{
    arb_instrument inst[4];
    size_t n_inst = book_test_instruments(inst, 4);
    book_engine *e;
    assert_int_equal(book_engine_new(cfg, &e), ARB_OK);
    ref_engine *r = ref_engine_new(cfg);
    assert_non_null(r);
    for (size_t i = 0; i < n_inst; i++) {
        assert_int_equal(book_engine_add_instrument(e, &inst[i]), ARB_OK);
        assert_int_equal(ref_engine_add_instrument(r, &inst[i]), ARB_OK);
    }
    /* Account 2 has a rebate tier on XB only, accounts 3-4 a tier everywhere. */
    static arb_fee_tier tier_items[] = {
        {.lo = 2,
         .hi = 2,
         .venues = {"XB"},
         .n_venues = 1,
         .maker_fee_cbps = -50,
         .taker_fee_cbps = 10},
        {.lo = 3, .hi = 4, .maker_fee_cbps = 0, .taker_fee_cbps = 1234},
    };
    static const arb_fee_tiers tiers = {tier_items, 2};
    assert_int_equal(book_engine_set_fee_tiers(e, &tiers), ARB_OK);
    ref_engine_set_fee_tiers(r, &tiers);
    book_gen *g = malloc(sizeof *g);
    gen_init(g, seed, p, inst, n_inst);
    book_output *eo = book_engine_output(e);
    book_output ro = {0};
    fifo_tracker ft = {0};
    char msg[512], cmdtext[256];
    for (size_t i = 0; i < n_cmds; i++) {
        int64_t refs[4];
        for (size_t k = 0; k < n_inst; k++) {
            order_book_stats st;
            order_book_get_stats(e, book_engine_book_at(e, k), &st);
            refs[k] = st.ref_price ? st.ref_price : inst[k].ref_price;
        }
        arb_order_cmd c;
        gen_next(g, refs, &c);
        book_output_clear(eo);
        book_output_clear(&ro);
        book_engine_process(e, &c);
        ref_engine_process(r, &c, &ro);
        const char *bad = book_outputs_differ(eo, &ro, msg, sizeof msg);
        const order_book *b = book_engine_find(e, c.venue, c.symbol);
        if (!bad && b)
            bad = book_check_properties(e, b, eo, msg, sizeof msg);
        if (!bad)
            bad = fills_check(&ft, e, eo, msg, sizeof msg);
        if (!bad && b)
            for (uint32_t k = 0; k < n_inst; k++)
                if (book_engine_book_at(e, k) == b)
                    bad = fifo_check(&ft, e, b, k, eo, msg, sizeof msg);
        if (!bad && (i % 512 == 511 || i + 1 == n_cmds))
            bad = book_states_differ(e, r, msg, sizeof msg);
        if (bad) {
            describe(&c, cmdtext, sizeof cmdtext);
            fail_msg("seed %llu, command %zu (%s): %s", (unsigned long long)seed, i, cmdtext, bad);
        }
        total_events += eo->n_events;
        total_trades += eo->n_trades;
        total_md += eo->n_md;
        gen_observe(g, eo, 0);
    }
    total_commands += n_cmds;
    assert_int_equal(eo->dropped, 0);
    fifo_tracker_free(&ft);
    book_output_free(&ro);
    free(g);
    ref_engine_free(r);
    book_engine_free(e);
}

static void run_seeds(uint64_t first_seed, size_t seeds, size_t per_seed, const gen_profile *p,
                      const book_config *cfg)
{
    size_t n = scaled(seeds * per_seed);
    size_t s = n / per_seed ? n / per_seed : 1;
    for (size_t i = 0; i < s; i++)
        run_stream(first_seed + i, p, cfg, n < per_seed ? n : per_seed);
}

static void matches_reference_on_a_busy_narrow_book(void **state)
{
    (void)state;
    gen_profile p = {.n_accounts = 4, .spread_ticks = 10, .pct_bad = 6, .pct_stp = 20};
    book_config cfg = {.stp_default = ARB_STP_CANCEL_RESTING};
    run_seeds(1000, 40, 10000, &p, &cfg);
}

static void matches_reference_with_tiny_windows_and_wild_prices(void **state)
{
    (void)state;
    gen_profile p = {.n_accounts = 5,
                     .spread_ticks = 400,
                     .huge_prices = 1,
                     .sparse_ids = 1,
                     .pct_bad = 4,
                     .pct_stp = 10};
    book_config cfg = {.window_init = 64, .window_max = 128};
    run_seeds(2000, 20, 10000, &p, &cfg);
}

static void matches_reference_with_cancel_incoming_and_open_order_limit(void **state)
{
    (void)state;
    gen_profile p = {
        .n_accounts = 2, .spread_ticks = 8, .pct_bad = 3, .pct_stp = 30, .target_live = 120};
    book_config cfg = {.stp_default = ARB_STP_CANCEL_INCOMING, .max_open_orders = 25};
    run_seeds(3000, 20, 10000, &p, &cfg);
}

static void matches_reference_without_self_trade_prevention(void **state)
{
    (void)state;
    gen_profile p = {.n_accounts = 1, .spread_ticks = 30, .sparse_ids = 1, .pct_bad = 2};
    book_config cfg = {.stp_default = ARB_STP_NONE, .snapshot_levels = 5};
    run_seeds(4000, 15, 10000, &p, &cfg);
}

static void matches_reference_on_a_deep_book(void **state)
{
    (void)state;
    gen_profile p = {
        .n_accounts = 8, .spread_ticks = 60, .target_live = 1500, .pct_bad = 2, .pct_stp = 5};
    book_config cfg = {.window_init = 64, .window_max = 1024, .max_open_orders = 400};
    run_seeds(5000, 5, 10000, &p, &cfg);
}

static void matches_reference_across_a_wide_sparse_window(void **state)
{
    (void)state;
    /* Prices spread over ~40k ticks: the window grows to 64k levels, best
     * levels are found through the summary bitmap, and the order pool grows
     * from 8 records. */
    gen_profile p = {.n_accounts = 6,
                     .spread_ticks = 20000,
                     .target_live = 1200,
                     .sparse_ids = 1,
                     .pct_bad = 2,
                     .pct_stp = 10};
    book_config cfg = {.window_init = 256, .window_max = 65536, .order_capacity = 8};
    run_seeds(6000, 10, 20000, &p, &cfg);
}

static int report(void **state)
{
    (void)state;
    printf("differential: %llu commands, %llu events, %llu trades, %llu market data records "
           "compared\n",
           (unsigned long long)total_commands, (unsigned long long)total_events,
           (unsigned long long)total_trades, (unsigned long long)total_md);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matches_reference_on_a_busy_narrow_book),
        cmocka_unit_test(matches_reference_with_tiny_windows_and_wild_prices),
        cmocka_unit_test(matches_reference_with_cancel_incoming_and_open_order_limit),
        cmocka_unit_test(matches_reference_without_self_trade_prevention),
        cmocka_unit_test(matches_reference_on_a_deep_book),
        cmocka_unit_test(matches_reference_across_a_wide_sparse_window),
    };
    return cmocka_run_group_tests(tests, NULL, report);
}

/*
 * test_book_state.c -- saving and restoring the engine: a round trip keeps
 * every book (orders, priority, sequences, band reference) and matching
 * continues identically afterwards; one book moves alone; bad bytes are
 * refused without changing anything. Matching rules: test_book*.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static arb_instrument inst[4];
static size_t n_inst;

static book_engine *engine(const book_config *cfg)
{
    book_engine *e;
    assert_int_equal(book_engine_new(cfg, &e), ARB_OK);
    n_inst = book_test_instruments(inst, 4);
    for (size_t i = 0; i < n_inst; i++)
        assert_int_equal(book_engine_add_instrument(e, &inst[i]), ARB_OK);
    return e;
}

static void refs_of(book_engine *e, int64_t *refs)
{
    for (size_t k = 0; k < n_inst; k++) {
        order_book_stats st;
        order_book_get_stats(e, book_engine_book_at(e, k), &st);
        refs[k] = st.ref_price ? st.ref_price : inst[k].ref_price;
    }
}

static void assert_same_state(book_engine *a, book_engine *b)
{
    book_engine_stats sa, sb;
    book_engine_get_stats(a, &sa);
    book_engine_get_stats(b, &sb);
    assert_int_equal(sa.event_seq, sb.event_seq);
    assert_int_equal(sa.orders, sb.orders);
    for (size_t k = 0; k < n_inst; k++) {
        order_book_stats x, y;
        order_book_get_stats(a, book_engine_book_at(a, k), &x);
        order_book_get_stats(b, book_engine_book_at(b, k), &y);
        assert_memory_equal(&x, &y, sizeof x);
    }
    /* Same orders in the same priority: both saves are byte-identical. */
    void *ba, *bb;
    size_t la, lb;
    assert_int_equal(book_engine_save(a, NULL, NULL, &ba, &la), ARB_OK);
    assert_int_equal(book_engine_save(b, NULL, NULL, &bb, &lb), ARB_OK);
    assert_int_equal(la, lb);
    assert_memory_equal(ba, bb, la);
    free(ba);
    free(bb);
}

static void round_trip_keeps_books_and_matching_continues_identically(void **state)
{
    (void)state;
    size_t seeds = UNDER_ASAN ? 4 : 40, before = 3000, after = 3000;
    gen_profile p = {.n_accounts = 4,
                     .spread_ticks = 40,
                     .sparse_ids = 1,
                     .pct_bad = 3,
                     .pct_stp = 20,
                     .target_live = 300};
    book_config cfg = {.max_open_orders = 100, .window_init = 64, .window_max = 256};
    for (size_t seed = 0; seed < seeds; seed++) {
        book_engine *a = engine(&cfg);
        book_gen *g = malloc(sizeof *g);
        gen_init(g, 700 + seed, &p, inst, n_inst);
        book_output *oa = book_engine_output(a);
        arb_order_cmd c;
        int64_t refs[4];
        for (size_t i = 0; i < before; i++) {
            refs_of(a, refs);
            gen_next(g, refs, &c);
            book_output_clear(oa);
            book_engine_process(a, &c);
            gen_observe(g, oa, 0);
        }
        void *bytes;
        size_t len;
        assert_int_equal(book_engine_save(a, NULL, NULL, &bytes, &len), ARB_OK);
        book_engine *b = engine(&cfg);
        assert_int_equal(book_engine_restore(b, bytes, len), ARB_OK);
        free(bytes);
        assert_same_state(a, b);
        book_output *ob = book_engine_output(b);
        char msg[512];
        for (size_t i = 0; i < after; i++) {
            refs_of(a, refs);
            gen_next(g, refs, &c);
            book_output_clear(oa);
            book_output_clear(ob);
            book_engine_process(a, &c);
            book_engine_process(b, &c);
            const char *bad = book_outputs_differ(oa, ob, msg, sizeof msg);
            if (bad)
                fail_msg("seed %zu, command %zu after restore: %s", seed, i, bad);
            gen_observe(g, oa, 0);
        }
        assert_same_state(a, b);
        free(g);
        book_engine_free(a);
        book_engine_free(b);
    }
}

static arb_order_cmd limit(const char *venue, const char *symbol, uint64_t id, uint64_t acct,
                           uint8_t side, int64_t px, int64_t qty)
{
    arb_order_cmd c = {.action = ARB_CMD_NEW,
                       .side = side,
                       .type = ARB_ORD_LIMIT,
                       .tif = ARB_TIF_GTC,
                       .order_id = id,
                       .account = acct,
                       .price = px,
                       .qty = qty};
    arb_fixstr_set(c.venue, ARB_VENUE_LEN, venue);
    arb_fixstr_set(c.symbol, ARB_SYMBOL_LEN, symbol);
    return c;
}

static book_engine *small_book(void)
{
    book_engine *e = engine(NULL);
    arb_order_cmd cmds[] = {
        limit("XA", "BTCUSD", 1, 1, ARB_SIDE_BUY, 99000, 5),
        limit("XA", "BTCUSD", 2, 2, ARB_SIDE_BUY, 99000, 3),
        limit("XA", "BTCUSD", 3, 1, ARB_SIDE_SELL, 101000, 4),
        limit("XA", "BTCUSD", 4, 3, ARB_SIDE_BUY, 101000, 1), /* trades */
        limit("XB", "BTCUSD", 5, 1, ARB_SIDE_SELL, 5010, 20),
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        book_engine_process(e, &cmds[i]);
    book_output_clear(book_engine_output(e));
    return e;
}

static void one_book_moves_alone(void **state)
{
    (void)state;
    book_engine *a = small_book();
    void *bytes;
    size_t len;
    assert_int_equal(book_engine_save(a, "XA", "BTCUSD", &bytes, &len), ARB_OK);
    book_engine *b = engine(NULL);
    assert_int_equal(book_engine_restore(b, bytes, len), ARB_OK);
    char v[ARB_VENUE_LEN], s[ARB_SYMBOL_LEN];
    arb_fixstr_set(v, ARB_VENUE_LEN, "XA");
    arb_fixstr_set(s, ARB_SYMBOL_LEN, "BTCUSD");
    order_book_stats x, y;
    order_book_get_stats(a, book_engine_find(a, v, s), &x);
    order_book_get_stats(b, book_engine_find(b, v, s), &y);
    assert_memory_equal(&x, &y, sizeof x);
    assert_int_equal(y.trades, 1);
    arb_fixstr_set(v, ARB_VENUE_LEN, "XB");
    order_book_get_stats(b, book_engine_find(b, v, s), &y);
    assert_int_equal(y.orders, 0); /* the other book did not come along */
    /* The book cannot be loaded twice. */
    assert_int_equal(book_engine_restore(b, bytes, len), ARB_EREFUSED);
    free(bytes);
    assert_int_equal(book_engine_save(a, "XZ", "BTCUSD", &bytes, &len), ARB_ENOENT);
    book_engine_free(a);
    book_engine_free(b);
}

/* Bytes that must be refused, each from a good save with one thing wrong. */
static void bad_state_is_refused_and_changes_nothing(void **state)
{
    (void)state;
    book_engine *a = small_book();
    void *good;
    size_t len;
    assert_int_equal(book_engine_save(a, "XA", "BTCUSD", &good, &len), ARB_OK);
    /* header 24, book 56, then orders of 56 bytes (side at +48 of each) */
    const size_t book = 24, first = 24 + 56;
    struct {
        const char *what;
        size_t at;
        uint8_t value;
        size_t cut;
    } cases[] = {
        {"magic", 0, 'X', 0},
        {"version", 8, 7, 0},
        {"book count", 12, 9, 0},
        {"unknown venue", book, 'Q', 0},
        {"side", first + 48, 3, 0},
        {"flags", first + 49, 4, 0},
        {"stp", first + 50, 0, 0},
        {"padding", first + 53, 1, 0},
        {"price off tick", first + 24, 1, 0},
        {"leaves above qty", first + 47, 0x7f, 0},
        {"truncated", 0, 0, 7},
        {"order count", book + 48, 200, 0},
    };
    book_engine *b = engine(NULL);
    void *empty;
    size_t empty_len;
    assert_int_equal(book_engine_save(b, NULL, NULL, &empty, &empty_len), ARB_OK);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *bad = malloc(len);
        memcpy(bad, good, len);
        if (!cases[i].cut)
            bad[cases[i].at] = cases[i].value;
        int rc = book_engine_restore(b, bad, len - cases[i].cut);
        if (rc != ARB_EREFUSED)
            fail_msg("%s: restore returned %d", cases[i].what, rc);
        free(bad);
    }
    /* Duplicate order ids: copy order 1 over order 2. */
    uint8_t *dup = malloc(len);
    memcpy(dup, good, len);
    memcpy(dup + first + 56, dup + first, 56);
    assert_int_equal(book_engine_restore(b, dup, len), ARB_EREFUSED);
    /* A crossed book: the best bid moved above the ask. */
    memcpy(dup, good, len);
    arb_put_i64(dup + first + 24, 102000);
    assert_int_equal(book_engine_restore(b, dup, len), ARB_EREFUSED);
    free(dup);
    void *after;
    size_t after_len;
    assert_int_equal(book_engine_save(b, NULL, NULL, &after, &after_len), ARB_OK);
    assert_int_equal(after_len, empty_len);
    assert_memory_equal(after, empty, empty_len);
    free(after);
    free(empty);
    free(good);
    book_engine_free(a);
    book_engine_free(b);
}

static void empty_engine_round_trips(void **state)
{
    (void)state;
    book_engine *a = engine(NULL), *b = engine(NULL);
    void *bytes;
    size_t len;
    assert_int_equal(book_engine_save(a, NULL, NULL, &bytes, &len), ARB_OK);
    assert_int_equal(book_engine_restore(b, bytes, len), ARB_OK);
    assert_same_state(a, b);
    free(bytes);
    book_engine_free(a);
    book_engine_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_keeps_books_and_matching_continues_identically),
        cmocka_unit_test(one_book_moves_alone),
        cmocka_unit_test(bad_state_is_refused_and_changes_nothing),
        cmocka_unit_test(empty_engine_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

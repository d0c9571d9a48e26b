/*
 * test_recorder_rows.c -- the recorder's COPY text rows (copy_rows.c): every
 * column in schema order, exact integers, escaping, NULLs, timestamps, and
 * the worst case fitting the reserved room. No database here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../../plugins/recorder/copy_rows.h"
#include "../../plugins/recorder/schema.h"

/* Splits one COPY line (without its '\n') into at most max fields. */
static int split(char *line, char **fields, int max)
{
    int n = 0;
    char *p = line;
    fields[n++] = p;
    for (; *p; p++)
        if (*p == '\t' && n < max) {
            *p = 0;
            fields[n++] = p + 1;
        }
    return n;
}

static int count_columns(const char *list)
{
    int n = 1;
    for (; *list; list++)
        n += *list == ',';
    return n;
}

static arb_trade sample_trade(void)
{
    arb_trade t;
    memset(&t, 0, sizeof t);
    arb_fixstr_set(t.venue, ARB_VENUE_LEN, "XA");
    arb_fixstr_set(t.symbol, ARB_SYMBOL_LEN, "BTCUSD");
    t.trade_id = 42;
    t.price = 10005;
    t.qty = 1500;
    t.buy_order_id = 7;
    t.sell_order_id = 8;
    t.buy_account = 100;
    t.sell_account = 200;
    t.ts = 1700000000123456789LL;
    t.seq = 3;
    t.aggressor = ARB_SIDE_SELL;
    return t;
}

static void trade_row_has_every_column_in_schema_order(void **state)
{
    (void)state;
    arb_trade t = sample_trade();
    char out[REC_TRADE_ROW_MAX];
    size_t n = rec_trade_row(out, &t, (rec_scale){2, 3});
    assert_true(n > 0 && n < sizeof out);
    assert_int_equal(out[n - 1], '\n');
    out[n - 1] = 0;
    char *f[32];
    assert_int_equal(split(out, f, 32), count_columns(rec_trade_columns));
    assert_string_equal(f[0], "42");
    assert_string_equal(f[1], "XA");
    assert_string_equal(f[2], "BTCUSD");
    assert_string_equal(f[3], "2023-11-14 22:13:20.123456+00");
    assert_string_equal(f[4], "1700000000123456789");
    assert_string_equal(f[5], "10005");
    assert_string_equal(f[6], "1500");
    assert_string_equal(f[7], "2");
    assert_string_equal(f[8], "3");
    assert_string_equal(f[9], "sell");
    assert_string_equal(f[10], "7");
    assert_string_equal(f[11], "8");
    assert_string_equal(f[12], "100");
    assert_string_equal(f[13], "200");
    assert_string_equal(f[14], "3");
}

static void unknown_instrument_scale_is_stored_as_null(void **state)
{
    (void)state;
    arb_trade t = sample_trade();
    char out[REC_TRADE_ROW_MAX];
    size_t n = rec_trade_row(out, &t, (rec_scale){-1, -1});
    out[n - 1] = 0;
    char *f[32];
    split(out, f, 32);
    assert_string_equal(f[7], "\\N");
    assert_string_equal(f[8], "\\N");
}

static void ids_above_2_63_keep_their_bits_as_negative_bigint(void **state)
{
    (void)state;
    arb_trade t = sample_trade();
    t.trade_id = 0x8000000000000001ull;
    t.buy_account = UINT64_MAX;
    char out[REC_TRADE_ROW_MAX];
    size_t n = rec_trade_row(out, &t, (rec_scale){2, 3});
    out[n - 1] = 0;
    char *f[32];
    split(out, f, 32);
    assert_string_equal(f[0], "-9223372036854775807");
    assert_string_equal(f[12], "-1");
    assert_int_equal((uint64_t)strtoll(f[0], NULL, 10), 0x8000000000000001ull);
}

/* Order ids are numeric(20,0): written as the API writes them. */
static void order_ids_above_2_63_are_written_unsigned(void **state)
{
    (void)state;
    arb_trade t = sample_trade();
    t.buy_order_id = UINT64_MAX;
    t.sell_order_id = 0x8000000000000001ull;
    char out[REC_TRADE_ROW_MAX];
    size_t n = rec_trade_row(out, &t, (rec_scale){2, 3});
    out[n - 1] = 0;
    char *f[32];
    split(out, f, 32);
    assert_string_equal(f[10], "18446744073709551615");
    assert_string_equal(f[11], "9223372036854775809");
    arb_order_event e;
    memset(&e, 0, sizeof e);
    e.order_id = UINT64_MAX;
    char out2[REC_ORDER_EVENT_ROW_MAX];
    n = rec_order_event_row(out2, &e, (rec_scale){2, 3});
    out2[n - 1] = 0;
    split(out2, f, 32);
    assert_string_equal(f[0], "18446744073709551615");
}

static void backslash_in_a_symbol_is_escaped(void **state)
{
    (void)state;
    arb_trade t = sample_trade();
    arb_fixstr_set(t.symbol, ARB_SYMBOL_LEN, "A\\B");
    char out[REC_TRADE_ROW_MAX];
    size_t n = rec_trade_row(out, &t, (rec_scale){2, 3});
    out[n - 1] = 0;
    char *f[32];
    split(out, f, 32);
    assert_string_equal(f[2], "A\\\\B");
}

static void order_event_row_names_enums_and_nulls_what_is_absent(void **state)
{
    (void)state;
    arb_order_event e;
    memset(&e, 0, sizeof e);
    e.kind = ARB_EV_REJECTED;
    e.reason = ARB_R_PRICE_OFF_TICK;
    e.side = ARB_SIDE_BUY;
    e.type = ARB_ORD_LIMIT;
    e.tif = ARB_TIF_IOC;
    e.flags = ARB_ORDF_POST_ONLY;
    e.order_id = 9;
    e.account = 5;
    e.price = -3;
    e.qty = 10;
    e.seq = 77;
    e.client_ref = 1234;
    e.ts = 0;
    char out[REC_ORDER_EVENT_ROW_MAX];
    size_t n = rec_order_event_row(out, &e, (rec_scale){4, 0});
    out[n - 1] = 0;
    char *f[40];
    assert_int_equal(split(out, f, 40), count_columns(rec_order_event_columns));
    assert_string_equal(f[0], "9");
    assert_string_equal(f[1], "77");
    assert_string_equal(f[2], "\\N"); /* empty venue: the command was unreadable */
    assert_string_equal(f[3], "\\N");
    assert_string_equal(f[4], "5");
    assert_string_equal(f[5], "1970-01-01 00:00:00.000000+00");
    assert_string_equal(f[7], "rejected");
    assert_string_equal(f[8], "price_off_tick");
    assert_string_equal(f[9], "buy");
    assert_string_equal(f[10], "limit");
    assert_string_equal(f[11], "ioc");
    assert_string_equal(f[12], "t");
    assert_string_equal(f[13], "-3");
    assert_string_equal(f[19], "4");
    assert_string_equal(f[20], "0");
    assert_string_equal(f[21], "\\N"); /* no trade */
    assert_string_equal(f[22], "1234");
}

static void order_event_without_reason_or_side_stores_null(void **state)
{
    (void)state;
    arb_order_event e;
    memset(&e, 0, sizeof e);
    e.kind = ARB_EV_FILLED;
    e.trade_id = 11;
    arb_fixstr_set(e.venue, ARB_VENUE_LEN, "XB");
    arb_fixstr_set(e.symbol, ARB_SYMBOL_LEN, "ETHUSD");
    char out[REC_ORDER_EVENT_ROW_MAX];
    size_t n = rec_order_event_row(out, &e, (rec_scale){2, 2});
    out[n - 1] = 0;
    char *f[40];
    split(out, f, 40);
    assert_string_equal(f[7], "filled");
    assert_string_equal(f[8], "\\N");
    assert_string_equal(f[9], "\\N");
    assert_string_equal(f[10], "\\N");
    assert_string_equal(f[11], "\\N");
    assert_string_equal(f[12], "f");
    assert_string_equal(f[21], "11");
}

static void worst_case_rows_fit_the_reserved_room(void **state)
{
    (void)state;
    arb_trade t;
    memset(&t, 0, sizeof t);
    memset(t.venue, '\\', ARB_VENUE_LEN);
    memset(t.symbol, '\\', ARB_SYMBOL_LEN);
    t.trade_id = t.buy_order_id = t.sell_order_id = t.buy_account = t.sell_account = t.seq =
        0x8000000000000000ull;
    t.price = t.qty = t.ts = INT64_MIN;
    t.aggressor = ARB_SIDE_SELL;
    char out[REC_TRADE_ROW_MAX + 64];
    size_t n = rec_trade_row(out, &t, (rec_scale){12, 12});
    assert_true(n <= REC_TRADE_ROW_MAX);

    arb_order_event e;
    memset(&e, 0, sizeof e);
    memset(e.venue, '\\', ARB_VENUE_LEN);
    memset(e.symbol, '\\', ARB_SYMBOL_LEN);
    e.kind = ARB_EV_PARTIAL;
    e.reason = ARB_R_POST_ONLY_WOULD_TAKE;
    e.side = ARB_SIDE_SELL, e.type = ARB_ORD_MARKET, e.tif = ARB_TIF_GTC;
    e.order_id = e.account = e.trade_id = e.seq = e.client_ref = 0x8000000000000000ull;
    e.price = e.qty = e.leaves_qty = e.filled_qty = e.last_px = e.last_qty = e.ts = INT64_MIN;
    char out2[REC_ORDER_EVENT_ROW_MAX + 64];
    n = rec_order_event_row(out2, &e, (rec_scale){12, 12});
    assert_true(n <= REC_ORDER_EVENT_ROW_MAX);
}

/* The oracle is the C library's gmtime_r over the whole int64 range. */
static void timestamps_match_gmtime_across_the_int64_range(void **state)
{
    (void)state;
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int64_t ns = (int64_t)x;
        if (i < 6)
            ns = (int64_t[]){0, -1, 1, INT64_MIN, INT64_MAX, 951782400000000000LL}[i];
        int64_t us = ns / 1000 - (ns % 1000 < 0);
        int64_t secs = us / 1000000 - (us % 1000000 < 0);
        time_t tt = (time_t)secs;
        struct tm tm;
        assert_non_null(gmtime_r(&tt, &tm));
        char want[64];
        snprintf(want, sizeof want, "%04d-%02d-%02d %02d:%02d:%02d.%06lld+00", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (long long)(us - secs * 1000000));
        char got[REC_TIMESTAMP_LEN + 1];
        assert_int_equal(rec_format_timestamp(got, ns), REC_TIMESTAMP_LEN);
        got[REC_TIMESTAMP_LEN] = 0;
        assert_string_equal(got, want);
    }
}

static void leap_day_and_pre_epoch_instants_format_exactly(void **state)
{
    (void)state;
    char got[REC_TIMESTAMP_LEN + 1];
    rec_format_timestamp(got, 951782400000000000LL + 999999999); /* 2000-02-29 */
    got[REC_TIMESTAMP_LEN] = 0;
    assert_string_equal(got, "2000-02-29 00:00:00.999999+00");
    rec_format_timestamp(got, -1);
    got[REC_TIMESTAMP_LEN] = 0;
    assert_string_equal(got, "1969-12-31 23:59:59.999999+00");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(trade_row_has_every_column_in_schema_order),
        cmocka_unit_test(unknown_instrument_scale_is_stored_as_null),
        cmocka_unit_test(ids_above_2_63_keep_their_bits_as_negative_bigint),
        cmocka_unit_test(order_ids_above_2_63_are_written_unsigned),
        cmocka_unit_test(backslash_in_a_symbol_is_escaped),
        cmocka_unit_test(order_event_row_names_enums_and_nulls_what_is_absent),
        cmocka_unit_test(order_event_without_reason_or_side_stores_null),
        cmocka_unit_test(worst_case_rows_fit_the_reserved_room),
        cmocka_unit_test(timestamps_match_gmtime_across_the_int64_range),
        cmocka_unit_test(leap_day_and_pre_epoch_instants_format_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

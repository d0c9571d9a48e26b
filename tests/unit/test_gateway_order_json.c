/*
 * test_gateway_order_json.c -- the POST /v1/orders body: exact decimals,
 * tick and lot rules, and one stable error code per validation failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "../../plugins/gateway/order_json.h"

/* XA:BTCUSD: prices in 0.01 with a 0.05 tick, quantities in 0.001 lots,
 * 0.002 to 1000. */
static arb_instrument items[1];
static arb_instrument_table table = {items, 1};

static int setup(void **state)
{
    (void)state;
    memset(items, 0, sizeof items);
    strcpy(items[0].venue, "XA");
    strcpy(items[0].symbol, "BTCUSD");
    items[0].price_decimals = 2;
    items[0].qty_decimals = 3;
    items[0].tick = 5;
    items[0].lot = 1;
    items[0].min_qty = 2;
    items[0].max_qty = 1000000;
    return 0;
}

static gw_order_request rq;
static gw_error err;

static int parse(const char *body)
{
    memset(&err, 0, sizeof err);
    return gw_order_parse(body, strlen(body), &table, &rq, &err);
}

#define BASE "\"venue\":\"XA\",\"symbol\":\"BTCUSD\",\"side\":\"buy\""

static void expect_code(const char *body, const char *code)
{
    assert_int_equal(parse(body), -1);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.code, code);
    assert_true(strlen(err.message) > 0);
}

static void limit_order_converts_exactly_to_units(void **state)
{
    (void)state;
    assert_int_equal(parse("{" BASE ",\"price\":\"100.05\",\"qty\":\"1.250\",\"tif\":\"ioc\","
                           "\"client_order_id\":\"c-1.x_Y:2\"}"),
                     0);
    assert_ptr_equal(rq.instrument, &items[0]);
    assert_int_equal(rq.side, ARB_SIDE_BUY);
    assert_int_equal(rq.type, ARB_ORD_LIMIT);
    assert_int_equal(rq.tif, ARB_TIF_IOC);
    assert_int_equal(rq.price, 10005);
    assert_int_equal(rq.qty, 1250);
    assert_string_equal(rq.client_order_id, "c-1.x_Y:2");
}

static void defaults_are_limit_and_gtc(void **state)
{
    (void)state;
    assert_int_equal(parse("{" BASE ",\"price\":\"100\",\"qty\":\"1\"}"), 0);
    assert_int_equal(rq.type, ARB_ORD_LIMIT);
    assert_int_equal(rq.tif, ARB_TIF_GTC);
    assert_int_equal(rq.price, 10000);
    assert_int_equal(rq.qty, 1000);
    assert_string_equal(rq.client_order_id, "");
}

static void trailing_zeros_beyond_precision_are_accepted(void **state)
{
    (void)state;
    assert_int_equal(parse("{" BASE ",\"price\":\"100.0500\",\"qty\":\"0.0020000\"}"), 0);
    assert_int_equal(rq.price, 10005);
    assert_int_equal(rq.qty, 2);
}

static void price_finer_than_the_unit_is_rejected_not_rounded(void **state)
{
    (void)state;
    expect_code("{" BASE ",\"price\":\"100.051\",\"qty\":\"1\"}", "price_off_tick");
}

static void price_between_ticks_is_rejected(void **state)
{
    (void)state;
    expect_code("{" BASE ",\"price\":\"100.03\",\"qty\":\"1\"}", "price_off_tick");
}

static void qty_finer_than_the_lot_is_rejected(void **state)
{
    (void)state;
    expect_code("{" BASE ",\"price\":\"100\",\"qty\":\"1.0005\"}", "qty_off_lot");
}

static void market_order_needs_a_protection_price_and_defaults_to_ioc(void **state)
{
    (void)state;
    expect_code("{" BASE ",\"type\":\"market\",\"qty\":\"1\"}", "missing_price");
    assert_int_equal(parse("{" BASE ",\"type\":\"market\",\"price\":\"105\",\"qty\":\"1\"}"), 0);
    assert_int_equal(rq.type, ARB_ORD_MARKET);
    assert_int_equal(rq.tif, ARB_TIF_IOC);
    assert_int_equal(rq.price, 10500);
}

static void market_order_cannot_be_gtc(void **state)
{
    (void)state;
    expect_code("{" BASE ",\"type\":\"market\",\"price\":\"1\",\"qty\":\"1\",\"tif\":\"gtc\"}",
                "tif_not_allowed");
}

static void each_failure_has_its_own_code(void **state)
{
    (void)state;
    expect_code("{", "invalid_json");
    expect_code("", "invalid_json");
    expect_code("[1,2]", "body_not_object");
    expect_code("{" BASE ",\"price\":\"1\",\"qty\":\"1\",\"colour\":\"red\"}", "unknown_field");
    expect_code("{\"symbol\":\"BTCUSD\",\"side\":\"buy\",\"price\":\"1\",\"qty\":\"1\"}",
                "missing_venue");
    expect_code("{\"venue\":\"XA\",\"side\":\"buy\",\"price\":\"1\",\"qty\":\"1\"}",
                "missing_symbol");
    expect_code("{\"venue\":\"TOOLONGVENUE\",\"symbol\":\"BTCUSD\",\"side\":\"buy\"}",
                "invalid_venue");
    expect_code("{\"venue\":\"XA\",\"symbol\":7,\"side\":\"buy\"}", "invalid_symbol");
    expect_code("{\"venue\":\"XB\",\"symbol\":\"BTCUSD\",\"side\":\"buy\"}", "unknown_instrument");
    expect_code("{\"venue\":\"XA\",\"symbol\":\"BTCUSD\",\"price\":\"1\",\"qty\":\"1\"}",
                "missing_side");
    expect_code("{\"venue\":\"XA\",\"symbol\":\"BTCUSD\",\"side\":\"long\"}", "invalid_side");
    expect_code("{" BASE ",\"type\":\"stop\",\"price\":\"1\",\"qty\":\"1\"}", "invalid_type");
    expect_code("{" BASE ",\"tif\":\"day\",\"price\":\"1\",\"qty\":\"1\"}", "invalid_tif");
    expect_code("{" BASE ",\"qty\":\"1\"}", "missing_price");
    expect_code("{" BASE ",\"price\":100.05,\"qty\":\"1\"}", "invalid_price");
    expect_code("{" BASE ",\"price\":\"1e2\",\"qty\":\"1\"}", "invalid_price");
    expect_code("{" BASE ",\"price\":\"99999999999999999999\",\"qty\":\"1\"}", "invalid_price");
    expect_code("{" BASE ",\"price\":\"0\",\"qty\":\"1\"}", "price_not_positive");
    expect_code("{" BASE ",\"price\":\"-5.00\",\"qty\":\"1\"}", "price_not_positive");
    expect_code("{" BASE ",\"price\":\"1\"}", "missing_qty");
    expect_code("{" BASE ",\"price\":\"1\",\"qty\":1}", "invalid_qty");
    expect_code("{" BASE ",\"price\":\"1\",\"qty\":\"0\"}", "qty_not_positive");
    expect_code("{" BASE ",\"price\":\"1\",\"qty\":\"0.001\"}", "qty_below_min");
    expect_code("{" BASE ",\"price\":\"1\",\"qty\":\"1000.001\"}", "qty_above_max");
    expect_code("{" BASE ",\"price\":\"1\",\"qty\":\"1\",\"client_order_id\":\"a b\"}",
                "invalid_client_order_id");
    expect_code("{" BASE ",\"price\":\"1\",\"qty\":\"1\",\"post_only\":\"yes\"}",
                "invalid_post_only");
    expect_code("{" BASE ",\"price\":\"1\",\"qty\":\"1\",\"tif\":\"ioc\",\"post_only\":true}",
                "post_only_not_allowed");
}

static void malformed_decimals_are_invalid(void **state)
{
    (void)state;
    const char *bad[] = {"\"\"",    "\"-\"",   "\".\"",   "\"1.\"",   "\".5\"",
                         "\"+1\"",  "\" 1\"",  "\"1,5\"", "\"0x10\"", "\"1..2\"",
                         "\"--1\"", "\"1e3\"", "null"};
    char body[160];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(body, sizeof body, "{" BASE ",\"price\":%s,\"qty\":\"1\"}", bad[i]);
        expect_code(body, "invalid_price");
    }
}

static void duplicate_keys_are_rejected(void **state)
{
    (void)state;
    expect_code("{" BASE ",\"price\":\"1\",\"price\":\"2\",\"qty\":\"1\"}", "invalid_json");
}

static void post_only_sets_the_flag(void **state)
{
    (void)state;
    assert_int_equal(parse("{" BASE ",\"price\":\"1\",\"qty\":\"1\",\"post_only\":true}"), 0);
    assert_int_equal(rq.flags, ARB_ORDF_POST_ONLY);
    assert_int_equal(parse("{" BASE ",\"price\":\"1\",\"qty\":\"1\",\"post_only\":false}"), 0);
    assert_int_equal(rq.flags, 0);
}

static void order_ids_parse_strictly(void **state)
{
    (void)state;
    uint64_t id;
    assert_int_equal(gw_parse_order_id("42", 2, &id), 0);
    assert_int_equal(id, 42);
    assert_int_equal(gw_parse_order_id("18446744073709551615", 20, &id), 0);
    assert_true(id == UINT64_MAX);
    assert_int_equal(gw_parse_order_id("18446744073709551616", 20, &id), -1);
    assert_int_equal(gw_parse_order_id("0", 1, &id), -1);
    assert_int_equal(gw_parse_order_id("", 0, &id), -1);
    assert_int_equal(gw_parse_order_id("12a", 3, &id), -1);
    assert_int_equal(gw_parse_order_id("-1", 2, &id), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(limit_order_converts_exactly_to_units, setup),
        cmocka_unit_test_setup(defaults_are_limit_and_gtc, setup),
        cmocka_unit_test_setup(trailing_zeros_beyond_precision_are_accepted, setup),
        cmocka_unit_test_setup(price_finer_than_the_unit_is_rejected_not_rounded, setup),
        cmocka_unit_test_setup(price_between_ticks_is_rejected, setup),
        cmocka_unit_test_setup(qty_finer_than_the_lot_is_rejected, setup),
        cmocka_unit_test_setup(market_order_needs_a_protection_price_and_defaults_to_ioc, setup),
        cmocka_unit_test_setup(market_order_cannot_be_gtc, setup),
        cmocka_unit_test_setup(each_failure_has_its_own_code, setup),
        cmocka_unit_test_setup(malformed_decimals_are_invalid, setup),
        cmocka_unit_test_setup(duplicate_keys_are_rejected, setup),
        cmocka_unit_test_setup(post_only_sets_the_flag, setup),
        cmocka_unit_test_setup(order_ids_parse_strictly, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

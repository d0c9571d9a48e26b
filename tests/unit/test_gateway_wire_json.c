/*
 * test_gateway_wire_json.c -- arb/wire_json.h renders every record type as
 * one valid JSON object (checked by parsing it back with jansson), with
 * exact decimals when the instrument is known, and snprintf-style sizing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "arb/wire_json.h"

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
    return 0;
}

static json_t *render(const void *rec, size_t len, const arb_instrument_table *t)
{
    static char text[8192];
    int n = arb_wire_json(rec, len, t, text, sizeof text);
    assert_true(n > 0);
    assert_true((size_t)n < sizeof text);
    assert_int_equal(strlen(text), (size_t)n);
    json_error_t e;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &e);
    if (!j)
        fail_msg("not JSON (%s): %s", e.text, text);
    return j;
}

static const char *str(json_t *j, const char *k)
{
    return json_string_value(json_object_get(j, k));
}

static void trade_renders_decimals_with_the_instrument(void **state)
{
    (void)state;
    arb_trade t;
    memset(&t, 0, sizeof t);
    arb_fixstr_set(t.venue, ARB_VENUE_LEN, "XA");
    arb_fixstr_set(t.symbol, ARB_SYMBOL_LEN, "BTCUSD");
    t.trade_id = 18446744073709551615ull;
    t.price = 10005;
    t.qty = 1250;
    t.aggressor = ARB_SIDE_SELL;
    t.ts = 1700000000000000000;
    uint8_t buf[ARB_TRADE_LEN];
    uint32_t len = arb_trade_encode(&t, buf, sizeof buf);
    json_t *j = render(buf, len, &table);
    assert_string_equal(str(j, "type"), "trade");
    assert_string_equal(str(j, "venue"), "XA");
    assert_string_equal(str(j, "trade_id"), "18446744073709551615");
    assert_string_equal(str(j, "price"), "100.05");
    assert_string_equal(str(j, "qty"), "1.250");
    assert_string_equal(str(j, "aggressor"), "sell");
    assert_true(json_integer_value(json_object_get(j, "ts")) == 1700000000000000000);
    json_decref(j);
    /* Without a table: integer wire units, still strings. */
    j = render(buf, len, NULL);
    assert_string_equal(str(j, "price"), "10005");
    assert_string_equal(str(j, "qty"), "1250");
    json_decref(j);
}

static void order_command_and_event_render_enum_names(void **state)
{
    (void)state;
    arb_order_cmd c;
    memset(&c, 0, sizeof c);
    c.action = ARB_CMD_NEW;
    c.side = ARB_SIDE_BUY;
    c.type = ARB_ORD_LIMIT;
    c.tif = ARB_TIF_FOK;
    c.flags = ARB_ORDF_POST_ONLY;
    arb_fixstr_set(c.venue, ARB_VENUE_LEN, "XA");
    arb_fixstr_set(c.symbol, ARB_SYMBOL_LEN, "BTCUSD");
    c.order_id = 7;
    c.price = -5;
    uint8_t buf[ARB_ORDER_EVENT_LEN];
    uint32_t len = arb_order_cmd_encode(&c, buf, sizeof buf);
    json_t *j = render(buf, len, &table);
    assert_string_equal(str(j, "action"), "new");
    assert_string_equal(str(j, "tif"), "fok");
    assert_true(json_is_true(json_object_get(j, "post_only")));
    assert_string_equal(str(j, "price"), "-0.05");
    json_decref(j);

    arb_order_event e;
    memset(&e, 0, sizeof e);
    e.kind = ARB_EV_REJECTED;
    e.reason = ARB_R_PRICE_OFF_TICK;
    e.order_id = 9;
    len = arb_order_event_encode(&e, buf, sizeof buf);
    j = render(buf, len, &table);
    assert_string_equal(str(j, "kind"), "rejected");
    assert_string_equal(str(j, "reason"), "price_off_tick");
    assert_string_equal(str(j, "venue"), "");
    json_decref(j);
}

static void market_data_renders_its_levels(void **state)
{
    (void)state;
    uint8_t buf[ARB_MD_LEN(2)];
    arb_market_data m;
    memset(&m, 0, sizeof m);
    m.kind = ARB_MD_SNAPSHOT;
    m.n_levels = 2;
    arb_fixstr_set(m.venue, ARB_VENUE_LEN, "XA");
    arb_fixstr_set(m.symbol, ARB_SYMBOL_LEN, "BTCUSD");
    uint32_t len = arb_market_data_encode(&m, buf, sizeof buf);
    arb_md_level a = {ARB_SIDE_BUY, 3, 9990, 1000}, b = {ARB_SIDE_SELL, 1, 10010, 5};
    arb_md_put_level(buf, 0, &a);
    arb_md_put_level(buf, 1, &b);
    json_t *j = render(buf, len, &table);
    assert_string_equal(str(j, "kind"), "snapshot");
    json_t *lv = json_object_get(j, "levels");
    assert_int_equal(json_array_size(lv), 2);
    assert_string_equal(str(json_array_get(lv, 0), "price"), "99.90");
    assert_string_equal(str(json_array_get(lv, 1), "side"), "sell");
    assert_string_equal(str(json_array_get(lv, 1), "qty"), "0.005");
    json_decref(j);
}

static void tick_market_event_and_service_render(void **state)
{
    (void)state;
    uint8_t buf[ARB_SERVICE_LEN(1)];
    arb_tick t = {5, 100, 200, 10, ARB_TICK_SIM};
    uint32_t len = arb_tick_encode(&t, buf, sizeof buf);
    json_t *j = render(buf, len, &table);
    assert_string_equal(str(j, "mode"), "sim");
    assert_int_equal(json_integer_value(json_object_get(j, "speed")), 10);
    json_decref(j);

    arb_market_event me;
    memset(&me, 0, sizeof me);
    me.kind = ARB_MEV_FAIR_VALUE;
    arb_fixstr_set(me.symbol, ARB_SYMBOL_LEN, "BTCUSD"); /* every venue */
    me.value = 10123;
    len = arb_market_event_encode(&me, buf, sizeof buf);
    j = render(buf, len, &table);
    assert_string_equal(str(j, "kind"), "fair_value");
    assert_string_equal(str(j, "value"), "101.23");
    json_decref(j);

    arb_service s;
    memset(&s, 0, sizeof s);
    s.status = ARB_SVC_ALIVE;
    s.n_plugins = 1;
    strcpy(s.host_id, "h\"1");
    len = arb_service_encode(&s, buf, sizeof buf);
    arb_service_plugin sp;
    memset(&sp, 0, sizeof sp);
    strcpy(sp.instance, "gw");
    strcpy(sp.plugin, "gateway");
    arb_service_put_plugin(buf, 0, &sp);
    j = render(buf, len, &table);
    assert_string_equal(str(j, "host_id"), "h\"1");
    assert_string_equal(str(json_array_get(json_object_get(j, "plugins"), 0), "plugin"), "gateway");
    json_decref(j);
}

static void small_buffer_truncates_and_reports_the_full_length(void **state)
{
    (void)state;
    arb_tick t = {5, 100, 200, 10, ARB_TICK_WALL};
    uint8_t buf[ARB_TICK_LEN];
    uint32_t len = arb_tick_encode(&t, buf, sizeof buf);
    char big[512], small[16];
    int full = arb_wire_json(buf, len, NULL, big, sizeof big);
    int cut = arb_wire_json(buf, len, NULL, small, sizeof small);
    assert_int_equal(full, cut);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_memory_equal(small, big, sizeof small - 1);
    assert_int_equal(arb_wire_json(buf, len, NULL, NULL, 0), full);
}

static void invalid_record_is_refused(void **state)
{
    (void)state;
    char out[256];
    uint8_t junk[40] = {0};
    assert_int_equal(arb_wire_json(junk, sizeof junk, NULL, out, sizeof out), ARB_EBADMSG);
    arb_tick t = {5, 100, 200, 10, 9 /* bad mode */};
    uint8_t buf[ARB_TICK_LEN];
    uint32_t len = arb_tick_encode(&t, buf, sizeof buf);
    assert_int_equal(arb_wire_json(buf, len, NULL, out, sizeof out), ARB_EBADMSG);
    assert_int_equal(arb_wire_json(buf, len - 1, NULL, out, sizeof out), ARB_EBADMSG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(trade_renders_decimals_with_the_instrument, setup),
        cmocka_unit_test_setup(order_command_and_event_render_enum_names, setup),
        cmocka_unit_test_setup(market_data_renders_its_levels, setup),
        cmocka_unit_test_setup(tick_market_event_and_service_render, setup),
        cmocka_unit_test_setup(small_buffer_truncates_and_reports_the_full_length, setup),
        cmocka_unit_test_setup(invalid_record_is_refused, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

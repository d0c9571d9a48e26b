/*
 * fuzz_wire.c -- libFuzzer target for every wire decoder in sdk/arb/wire.h.
 * Property: a decoder never reads out of bounds, and whatever it accepts is
 * canonical: encoding the decoded record reproduces the input byte for byte
 * (so two different byte strings never mean the same record).
 */
#include <arb/wire.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const void *a, const void *b, size_t n)
{
    if (memcmp(a, b, n) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t out[ARB_WIRE_MAX];
    union {
        arb_order_cmd cmd;
        arb_order_event ev;
        arb_trade tr;
        arb_market_data md;
        arb_tick tk;
        arb_market_event me;
        arb_service sv;
    } u;
    if (arb_order_cmd_decode(data, size, &u.cmd) == ARB_OK)
        same(out, data, arb_order_cmd_encode(&u.cmd, out, sizeof out));
    if (arb_order_event_decode(data, size, &u.ev) == ARB_OK)
        same(out, data, arb_order_event_encode(&u.ev, out, sizeof out));
    if (arb_trade_decode(data, size, &u.tr) == ARB_OK)
        same(out, data, arb_trade_encode(&u.tr, out, sizeof out));
    if (arb_tick_decode(data, size, &u.tk) == ARB_OK)
        same(out, data, arb_tick_encode(&u.tk, out, sizeof out));
    if (arb_market_event_decode(data, size, &u.me) == ARB_OK)
        same(out, data, arb_market_event_encode(&u.me, out, sizeof out));
    if (arb_market_data_decode(data, size, &u.md) == ARB_OK) {
        uint32_t n = arb_market_data_encode(&u.md, out, sizeof out);
        for (uint32_t i = 0; i < u.md.n_levels; i++) {
            arb_md_level l;
            arb_md_get_level(&u.md, i, &l);
            arb_md_put_level(out, i, &l);
        }
        if (n != size)
            abort();
        same(out, data, n);
    }
    if (arb_service_decode(data, size, &u.sv) == ARB_OK) {
        uint32_t n = arb_service_encode(&u.sv, out, sizeof out);
        for (uint32_t i = 0; i < u.sv.n_plugins; i++) {
            arb_service_plugin p;
            arb_service_get_plugin(&u.sv, i, &p);
            arb_service_put_plugin(out, i, &p);
        }
        if (n != size)
            abort();
        same(out, data, n);
    }
    (void)arb_wire_type(data, size);
    return 0;
}

/*
 * fuzz_wire.c -- libFuzzer target for every wire decoder in sdk/arb/wire.h.
 * Property: a decoder never reads out of bounds, and whatever it accepts at
 * the current version is canonical: encoding the decoded record reproduces
 * the input byte for byte (so two different byte strings never mean the
 * same record). A record of an older version (order events and trades
 * before fees) encodes at the current version, which must then decode and
 * encode to itself.
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

static uint8_t out2[ARB_WIRE_MAX];

/* Decoded from data, encoded into out as n bytes: the same bytes if data was
 * of the current version, else a current record that is canonical. */
#define CANONICAL(decode, encode, type, n)                                                      \
    do {                                                                                        \
        if ((n) == size) {                                                                      \
            same(out, data, (n));                                                               \
        } else {                                                                                \
            type again;                                                                         \
            if (decode(out, (n), &again) != ARB_OK || encode(&again, out2, sizeof out2) != (n)) \
                abort();                                                                        \
            same(out2, out, (n));                                                               \
        }                                                                                       \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t out[ARB_WIRE_MAX];
    uint32_t n;
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
    if (arb_order_event_decode(data, size, &u.ev) == ARB_OK) {
        n = arb_order_event_encode(&u.ev, out, sizeof out);
        CANONICAL(arb_order_event_decode, arb_order_event_encode, arb_order_event, n);
    }
    if (arb_trade_decode(data, size, &u.tr) == ARB_OK) {
        n = arb_trade_encode(&u.tr, out, sizeof out);
        CANONICAL(arb_trade_decode, arb_trade_encode, arb_trade, n);
    }
    if (arb_tick_decode(data, size, &u.tk) == ARB_OK)
        same(out, data, arb_tick_encode(&u.tk, out, sizeof out));
    if (arb_market_event_decode(data, size, &u.me) == ARB_OK)
        same(out, data, arb_market_event_encode(&u.me, out, sizeof out));
    if (arb_market_data_decode(data, size, &u.md) == ARB_OK) {
        n = arb_market_data_encode(&u.md, out, sizeof out);
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
        n = arb_service_encode(&u.sv, out, sizeof out);
        for (uint32_t i = 0; i < u.sv.n_plugins; i++) {
            arb_service_plugin p;
            arb_service_get_plugin(&u.sv, i, &p);
            arb_service_put_plugin(out, i, &p);
        }
        if (n == size) {
            same(out, data, n);
        } else { /* an older version (1, 2): the current one is canonical */
            arb_service again;
            if (arb_service_decode(out, n, &again) != ARB_OK ||
                arb_service_encode(&again, out2, sizeof out2) != n)
                abort();
            for (uint32_t i = 0; i < again.n_plugins; i++) {
                arb_service_plugin p;
                arb_service_get_plugin(&again, i, &p);
                arb_service_put_plugin(out2, i, &p);
            }
            same(out2, out, n);
        }
    }
    (void)arb_wire_type(data, size);
    return 0;
}

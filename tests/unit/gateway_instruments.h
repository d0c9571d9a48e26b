/*
 * gateway_instruments.h -- the two instruments the gateway's read-model
 * tests use: XA:BTCUSD and XB:BTCUSD, prices in 0.01, quantities in 0.001,
 * tick and lot of one unit.
 */
#ifndef TEST_GATEWAY_INSTRUMENTS_H
#define TEST_GATEWAY_INSTRUMENTS_H

#include <string.h>

#include <arb/instrument.h>

static inline void gw_test_instruments(arb_instrument items[2])
{
    memset(items, 0, 2 * sizeof *items);
    const char *venues[2] = {"XA", "XB"};
    for (int i = 0; i < 2; i++) {
        char vf[ARB_VENUE_LEN], sf[ARB_SYMBOL_LEN];
        strcpy(items[i].venue, venues[i]);
        strcpy(items[i].symbol, "BTCUSD");
        arb_fixstr_set(vf, ARB_VENUE_LEN, venues[i]);
        arb_fixstr_set(sf, ARB_SYMBOL_LEN, "BTCUSD");
        items[i].key = arb_instrument_key(vf, sf);
        items[i].price_decimals = 2;
        items[i].qty_decimals = 3;
        items[i].tick = 1;
        items[i].lot = 1;
        items[i].min_qty = 1;
        items[i].max_qty = 1000000;
    }
}

#endif

/*
 * fuzz_order_json.c -- libFuzzer target for the POST /v1/orders body parser
 * (plugins/gateway/order_json.c): any bytes must either parse into an order
 * that obeys the instrument's rules or fail with a known code, never crash,
 * leak or read out of bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/gateway/order_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static arb_instrument items[2];
    static arb_instrument_table table = {items, 2};
    if (!items[0].venue[0]) {
        strcpy(items[0].venue, "XA");
        strcpy(items[0].symbol, "BTCUSD");
        items[0].price_decimals = 2;
        items[0].qty_decimals = 3;
        items[0].tick = 5;
        items[0].lot = 1;
        items[0].min_qty = 1;
        items[0].max_qty = 1000000;
        strcpy(items[1].venue, "XB");
        strcpy(items[1].symbol, "ETH");
        items[1].price_decimals = 12;
        items[1].qty_decimals = 0;
        items[1].tick = 1;
        items[1].lot = 10;
        items[1].min_qty = 10;
        items[1].max_qty = INT64_MAX / 2;
    }
    gw_order_request rq;
    gw_error err;
    if (gw_order_parse((const char *)data, size, &table, &rq, &err) == 0) {
        const arb_instrument *in = rq.instrument;
        if (!in || rq.qty <= 0 || rq.qty % in->lot || rq.qty < in->min_qty ||
            rq.qty > in->max_qty || rq.price <= 0 || (rq.price && rq.price % in->tick) ||
            !rq.side || !rq.tif ||
            (rq.client_order_id[0] &&
             !gw_client_id_valid(rq.client_order_id, strlen(rq.client_order_id))))
            abort();
    } else if (err.status != 400 || !err.code || !err.message[0]) {
        abort();
    }
    return 0;
}

/*
 * order_json.h -- the body of POST /v1/orders: JSON in, a validated order out.
 *
 *   {"venue":"XA","symbol":"BTCUSD","side":"buy","type":"limit",
 *    "price":"100.05","qty":"0.250","tif":"gtc","client_order_id":"c-17",
 *    "post_only":false}
 *
 * Prices and quantities are decimal strings converted exactly to the
 * instrument's wire units (arb/fixed.h) and checked against its tick, lot,
 * min and max (arb/instrument.h): a value that is not a multiple is rejected,
 * never rounded. Every failure has its own stable `code` (the API's contract)
 * and a sentence for people. Pure code: jansson and the SDK, no HTTP, no host.
 */
#ifndef GW_ORDER_JSON_H
#define GW_ORDER_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "arb/instrument.h"

#define GW_CLIENT_ID_MAX 64

typedef struct gw_order_request {
    const arb_instrument *instrument; /* points into the table given to the parser */
    uint8_t side, type, tif, flags;
    int64_t price; /* wire units; for a market order its protection price */
    int64_t qty;   /* wire units */
    char client_order_id[GW_CLIENT_ID_MAX + 1];
} gw_order_request;

/* A client error: HTTP status, stable code, message for people. */
typedef struct gw_error {
    int status;
    const char *code;
    char message[192];
} gw_error;

/* Parses and validates. Returns 0, or -1 with *err filled (status 400). */
int gw_order_parse(const char *body, size_t len, const arb_instrument_table *instruments,
                   gw_order_request *out, gw_error *err);

/* Parses an order id from a URL segment: decimal, 1..2^64-1. 0 or -1. */
int gw_parse_order_id(const char *s, size_t len, uint64_t *out);

/* A client_order_id is 1..64 characters of [A-Za-z0-9._:-]: safe in JSON and
 * logs without escaping. */
int gw_client_id_valid(const char *s, size_t len);

#endif

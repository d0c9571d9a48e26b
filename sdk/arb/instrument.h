/*
 * arb/instrument.h -- the instrument table, read from config.
 *
 * An instrument is one book: a symbol on a venue. Every service that speaks
 * prices (matcher, gateway, recorder, agents) reads the same sections, kept
 * in one shared file that the process configs include:
 *
 *   [instrument XA:BTCUSD]
 *   price_decimals = 2        ; wire price unit is 0.01
 *   tick_size = 0.05          ; allowed price increment (multiple of the unit)
 *   qty_decimals = 3          ; wire quantity unit is 0.001
 *   lot_size = 0.001          ; allowed quantity increment
 *   min_qty = 0.001
 *   max_qty = 1000
 *   ref_price = 100.00        ; initial reference for the price band
 *   band_bps = 1000           ; limit prices beyond +-10% of the reference are rejected
 *
 * Wire prices and quantities are integers in those units; decimal strings
 * convert exactly (arb/fixed.h). This header reads config through the host
 * API and otherwise is pure.
 */
#ifndef ARB_INSTRUMENT_H
#define ARB_INSTRUMENT_H

#include <stdlib.h>
#include <string.h>

#include "fixed.h"
#include "plugin.h"
#include "wire.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ARB_INSTRUMENT_SECTION "instrument "

typedef struct arb_instrument {
    char venue[ARB_VENUE_LEN + 1];
    char symbol[ARB_SYMBOL_LEN + 1];
    uint64_t key; /* arb_instrument_key of the padded fields */
    int price_decimals;
    int qty_decimals;
    int64_t tick;      /* price units per tick */
    int64_t lot;       /* quantity units per lot */
    int64_t min_qty;   /* quantity units */
    int64_t max_qty;   /* quantity units */
    int64_t ref_price; /* price units */
    int64_t band_bps;  /* 0: no band */
} arb_instrument;

typedef struct arb_instrument_table {
    arb_instrument *items;
    size_t count;
} arb_instrument_table;

/* Splits "VENUE:SYMBOL" into the two fixed-width wire fields. */
static inline int arb_instrument_parse_name(const char *name, char venue[ARB_VENUE_LEN],
                                            char symbol[ARB_SYMBOL_LEN])
{
    const char *colon = strchr(name, ':');
    char v[ARB_VENUE_LEN + 1];
    if (!colon || (size_t)(colon - name) > ARB_VENUE_LEN || colon == name)
        return ARB_EINVAL;
    memcpy(v, name, (size_t)(colon - name));
    v[colon - name] = 0;
    if (arb_fixstr_set(venue, ARB_VENUE_LEN, v) || !colon[1] ||
        arb_fixstr_set(symbol, ARB_SYMBOL_LEN, colon + 1))
        return ARB_EINVAL;
    return ARB_OK;
}

typedef struct arb__instrument_load {
    arb_ctx *ctx;
    arb_instrument_table *table;
    int rc;
} arb__instrument_load;

static inline int arb__instrument_dec(arb_ctx *ctx, const char *section, const char *key,
                                      const char *def, int decimals, int64_t min, int64_t *out)
{
    const char *s;
    int rc = ctx->api->cfg_str(ctx, section, key, def, &s);
    if (rc)
        return rc;
    if (arb_dec_parse_cstr(s, decimals, out) || *out < min)
        return arb_cfg_reject_in(ctx, section, key,
                                 "'%s' is not a decimal >= %lld units with %d decimals", s,
                                 (long long)min, decimals);
    return ARB_OK;
}

static inline int arb__instrument_section(void *user, const char *section, const char *unused)
{
    (void)unused;
    arb__instrument_load *ld = (arb__instrument_load *)user;
    arb_ctx *ctx = ld->ctx;
    arb_instrument in;
    memset(&in, 0, sizeof in);
    char vf[ARB_VENUE_LEN], sf[ARB_SYMBOL_LEN];
    const char *name = section + strlen(ARB_INSTRUMENT_SECTION);
    if (arb_instrument_parse_name(name, vf, sf)) {
        ld->rc = arb_cfg_reject_in(ctx, section, "",
                                   "instrument name must be VENUE:SYMBOL (venue up to %u, "
                                   "symbol up to %u printable characters)",
                                   ARB_VENUE_LEN, ARB_SYMBOL_LEN);
        return 1;
    }
    arb_fixstr(in.venue, vf, ARB_VENUE_LEN);
    arb_fixstr(in.symbol, sf, ARB_SYMBOL_LEN);
    in.key = arb_instrument_key(vf, sf);
    int64_t pd, qd;
    int rc;
    if ((rc = ctx->api->cfg_int(ctx, section, "price_decimals", 2, 0, ARB_FIXED_MAX_DECIMALS,
                                &pd)) ||
        (rc = ctx->api->cfg_int(ctx, section, "qty_decimals", 0, 0, ARB_FIXED_MAX_DECIMALS, &qd))) {
        ld->rc = rc;
        return 1;
    }
    in.price_decimals = (int)pd;
    in.qty_decimals = (int)qd;
    if ((rc =
             arb__instrument_dec(ctx, section, "tick_size", "0", in.price_decimals, 0, &in.tick)) ||
        (rc = arb__instrument_dec(ctx, section, "lot_size", "0", in.qty_decimals, 0, &in.lot)) ||
        (rc = arb__instrument_dec(ctx, section, "min_qty", "0", in.qty_decimals, 0, &in.min_qty)) ||
        (rc = arb__instrument_dec(ctx, section, "max_qty", "0", in.qty_decimals, 0, &in.max_qty)) ||
        (rc = arb__instrument_dec(ctx, section, "ref_price", "0", in.price_decimals, 0,
                                  &in.ref_price)) ||
        (rc = ctx->api->cfg_int(ctx, section, "band_bps", 0, 0, 10000, &in.band_bps))) {
        ld->rc = rc;
        return 1;
    }
    /* A zero increment means "one unit". */
    if (in.tick == 0)
        in.tick = 1;
    if (in.lot == 0)
        in.lot = 1;
    if (in.min_qty == 0)
        in.min_qty = in.lot;
    if (in.max_qty == 0)
        in.max_qty = INT64_MAX / 2;
    if (in.max_qty < in.min_qty) {
        ld->rc = arb_cfg_reject_in(ctx, section, "max_qty", "max_qty is below min_qty");
        return 1;
    }
    for (size_t i = 0; i < ld->table->count; i++)
        if (ld->table->items[i].key == in.key) {
            ld->rc = arb_cfg_reject_in(ctx, section, "", "instrument defined twice");
            return 1;
        }
    arb_instrument *grown =
        (arb_instrument *)realloc(ld->table->items, (ld->table->count + 1) * sizeof *grown);
    if (!grown) {
        ld->rc = ARB_ENOMEM;
        return 1;
    }
    ld->table->items = grown;
    ld->table->items[ld->table->count++] = in;
    return 0;
}

/* Reads every [instrument VENUE:SYMBOL] section. On error the table is
 * emptied and the error was reported with file and line. */
static inline int arb_instruments_load(arb_ctx *ctx, arb_instrument_table *t)
{
    memset(t, 0, sizeof *t);
    arb__instrument_load ld = {ctx, t, ARB_OK};
    int rc = arb_cfg_sections(ctx, ARB_INSTRUMENT_SECTION, arb__instrument_section, &ld);
    if (rc == ARB_OK)
        rc = ld.rc;
    if (rc) {
        free(t->items);
        memset(t, 0, sizeof *t);
    }
    return rc;
}

static inline void arb_instruments_free(arb_instrument_table *t)
{
    free(t->items);
    memset(t, 0, sizeof *t);
}

/* Linear lookup: tables are small and this is not a hot path (the matcher
 * keeps its own hash). */
static inline const arb_instrument *arb_instrument_find(const arb_instrument_table *t,
                                                        const char *venue, const char *symbol)
{
    for (size_t i = 0; i < t->count; i++)
        if (!strcmp(t->items[i].venue, venue) && !strcmp(t->items[i].symbol, symbol))
            return &t->items[i];
    return NULL;
}

#ifdef __cplusplus
}
#endif
#endif /* ARB_INSTRUMENT_H */

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
 *   maker_fee_bps = -0.5      ; fee of the resting side of a fill; negative: a rebate
 *   taker_fee_bps = 2.5       ; fee of the incoming side (up to 2 decimals, |fee| <= 1000)
 *
 * Fee tiers give accounts rates of their own, on every venue or on some:
 *
 *   [fee_tier mm]
 *   accounts = 10 11 100-199  ; ids and inclusive ranges
 *   venues = XA               ; optional: only these venues' books
 *   maker_fee_bps = -1
 *   taker_fee_bps = 1
 *
 * The first tier (in file order) that names an account and the book's venue
 * decides; other accounts pay the instrument's rates.
 *
 * Fee of one fill, in price units (the smallest unit of the quote
 * currency): notional = price x qty / 10^qty_decimals price units, times the
 * rate. A fee is rounded up and a rebate's size rounded down, to the next
 * price unit: the venue never pays out a fraction it did not collect.
 * arb_fee_of() is the rule; the matcher puts its result on each side's
 * fill event and on the trade.
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
    /* Fee rates in hundredths of a basis point (1e-6 of the notional). */
    int64_t maker_fee_cbps, taker_fee_cbps;
} arb_instrument;

#define ARB_FEE_MAX_CBPS 100000 /* 1000 bps, 10% */

/* The fee of one fill of qty (quantity units) at price (price units) at a
 * rate in hundredths of a bp, in price units; the rounding rule above.
 * Exact: price < 2^52, qty < 2^40, |rate| <= 1e5 keeps the product in 128
 * bits; a fee beyond int64 (a notional no book allows in practice)
 * saturates. */
static inline int64_t arb_fee_of(int64_t price, int64_t qty, int qty_decimals, int64_t rate_cbps)
{
    /* 10^(qty_decimals + 6): the notional's scale times the rate's. */
    static const uint64_t den[ARB_FIXED_MAX_DECIMALS + 1] = {UINT64_C(1000000),
                                                             UINT64_C(10000000),
                                                             UINT64_C(100000000),
                                                             UINT64_C(1000000000),
                                                             UINT64_C(10000000000),
                                                             UINT64_C(100000000000),
                                                             UINT64_C(1000000000000),
                                                             UINT64_C(10000000000000),
                                                             UINT64_C(100000000000000),
                                                             UINT64_C(1000000000000000),
                                                             UINT64_C(10000000000000000),
                                                             UINT64_C(100000000000000000),
                                                             UINT64_C(1000000000000000000)};
    if (rate_cbps == 0 || price <= 0 || qty <= 0 || qty_decimals < 0 ||
        qty_decimals > ARB_FIXED_MAX_DECIMALS)
        return 0;
    uint64_t r = rate_cbps < 0 ? (uint64_t)-rate_cbps : (uint64_t)rate_cbps;
    unsigned __int128 n = (unsigned __int128)(uint64_t)price * (uint64_t)qty * r;
    uint64_t d = den[qty_decimals];
    if ((uint64_t)(n >> 64) == 0) { /* the common case: one 64-bit division */
        uint64_t q = (uint64_t)n / d;
        int exact = (uint64_t)n % d == 0;
        return rate_cbps > 0 ? (int64_t)(q + !exact) : -(int64_t)q;
    }
    unsigned __int128 q = n / d + (rate_cbps > 0 && n % d != 0);
    if (q > (unsigned __int128)INT64_MAX)
        q = INT64_MAX;
    return rate_cbps > 0 ? (int64_t)q : -(int64_t)q;
}

/* One account range of a fee tier. */
typedef struct arb_fee_tier {
    uint64_t lo, hi;                   /* accounts lo..hi */
    char venues[4][ARB_VENUE_LEN + 1]; /* empty list: every venue */
    int n_venues;
    int64_t maker_fee_cbps, taker_fee_cbps;
} arb_fee_tier;

typedef struct arb_fee_tiers {
    arb_fee_tier *items; /* one per account range, in file order */
    size_t count;
} arb_fee_tiers;

/* The tier for an account on a venue (NUL-terminated), or NULL. */
static inline const arb_fee_tier *arb_fee_tier_find(const arb_fee_tiers *t, uint64_t account,
                                                    const char *venue)
{
    for (size_t i = 0; i < t->count; i++) {
        const arb_fee_tier *f = &t->items[i];
        if (account < f->lo || account > f->hi)
            continue;
        if (f->n_venues == 0)
            return f;
        for (int k = 0; k < f->n_venues; k++)
            if (!strcmp(f->venues[k], venue))
                return f;
    }
    return NULL;
}

/* The maker and taker rates an account pays on an instrument. */
static inline void arb_fee_rates(const arb_fee_tiers *t, const arb_instrument *in, uint64_t account,
                                 int64_t *maker_cbps, int64_t *taker_cbps)
{
    const arb_fee_tier *f = t ? arb_fee_tier_find(t, account, in->venue) : NULL;
    *maker_cbps = f ? f->maker_fee_cbps : in->maker_fee_cbps;
    *taker_cbps = f ? f->taker_fee_cbps : in->taker_fee_cbps;
}

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

/* A fee rate in bps with up to 2 decimals, signed, as hundredths of a bp. */
static inline int arb__fee_rate(arb_ctx *ctx, const char *section, const char *key, int64_t *out)
{
    const char *s;
    int rc = ctx->api->cfg_str(ctx, section, key, "0", &s);
    if (rc)
        return rc;
    if (arb_dec_parse_cstr(s, 2, out) || *out > ARB_FEE_MAX_CBPS || *out < -ARB_FEE_MAX_CBPS)
        return arb_cfg_reject_in(ctx, section, key,
                                 "'%s' is not a fee in basis points (up to 2 decimals, "
                                 "between -1000 and 1000)",
                                 s);
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
        (rc = ctx->api->cfg_int(ctx, section, "band_bps", 0, 0, 10000, &in.band_bps)) ||
        (rc = arb__fee_rate(ctx, section, "maker_fee_bps", &in.maker_fee_cbps)) ||
        (rc = arb__fee_rate(ctx, section, "taker_fee_bps", &in.taker_fee_cbps))) {
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

#define ARB_FEE_TIER_SECTION "fee_tier "

typedef struct arb__fee_tier_load {
    arb_ctx *ctx;
    arb_fee_tiers *tiers;
    int rc;
} arb__fee_tier_load;

static inline int arb__fee_tier_add(arb__fee_tier_load *ld, const arb_fee_tier *f)
{
    arb_fee_tier *grown =
        (arb_fee_tier *)realloc(ld->tiers->items, (ld->tiers->count + 1) * sizeof *grown);
    if (!grown)
        return ARB_ENOMEM;
    ld->tiers->items = grown;
    grown[ld->tiers->count++] = *f;
    return ARB_OK;
}

static inline int arb__fee_tier_section(void *user, const char *section, const char *unused)
{
    (void)unused;
    arb__fee_tier_load *ld = (arb__fee_tier_load *)user;
    arb_ctx *ctx = ld->ctx;
    arb_fee_tier f;
    memset(&f, 0, sizeof f);
    const char *accounts, *venues;
    int rc;
    if ((rc = ctx->api->cfg_str(ctx, section, "accounts", "", &accounts)) ||
        (rc = ctx->api->cfg_str(ctx, section, "venues", "", &venues)) ||
        (rc = arb__fee_rate(ctx, section, "maker_fee_bps", &f.maker_fee_cbps)) ||
        (rc = arb__fee_rate(ctx, section, "taker_fee_bps", &f.taker_fee_cbps))) {
        ld->rc = rc;
        return 1;
    }
    for (const char *v = venues; *v;) {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        size_t n = 0;
        while (v[n] && v[n] != ' ' && v[n] != '\t' && v[n] != ',')
            n++;
        if (!n)
            break;
        if (n > ARB_VENUE_LEN || f.n_venues == 4) {
            ld->rc = arb_cfg_reject_in(ctx, section, "venues",
                                       "up to 4 venues of up to %u characters", ARB_VENUE_LEN);
            return 1;
        }
        memcpy(f.venues[f.n_venues], v, n);
        f.venues[f.n_venues++][n] = 0;
        v += n;
    }
    int ranges = 0;
    for (const char *a = accounts; *a;) {
        while (*a == ' ' || *a == '\t' || *a == ',')
            a++;
        if (!*a)
            break;
        char *end;
        unsigned long long lo = strtoull(a, &end, 10), hi = lo;
        if (end == a || *a == '-' || *a == '+')
            goto bad;
        if (*end == '-') {
            const char *b = end + 1;
            if (*b < '0' || *b > '9')
                goto bad;
            hi = strtoull(b, &end, 10);
        }
        if (hi < lo || (*end && *end != ' ' && *end != '\t' && *end != ','))
            goto bad;
        f.lo = lo, f.hi = hi;
        if ((ld->rc = arb__fee_tier_add(ld, &f)))
            return 1;
        ranges++;
        a = end;
    }
    if (ranges)
        return 0;
bad:
    ld->rc =
        arb_cfg_reject_in(ctx, section, "accounts", "list account ids and ranges (10 11 100-199)");
    return 1;
}

/* Reads every [fee_tier NAME] section (none: an empty table). On error
 * the table is emptied and the error was reported with file and line. */
static inline int arb_fee_tiers_load(arb_ctx *ctx, arb_fee_tiers *t)
{
    memset(t, 0, sizeof *t);
    arb__fee_tier_load ld = {ctx, t, ARB_OK};
    int rc = arb_cfg_sections(ctx, ARB_FEE_TIER_SECTION, arb__fee_tier_section, &ld);
    if (rc == ARB_OK)
        rc = ld.rc;
    if (rc) {
        free(t->items);
        memset(t, 0, sizeof *t);
    }
    return rc;
}

static inline void arb_fee_tiers_free(arb_fee_tiers *t)
{
    free(t->items);
    memset(t, 0, sizeof *t);
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

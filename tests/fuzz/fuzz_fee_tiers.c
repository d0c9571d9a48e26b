/*
 * fuzz_fee_tiers.c -- libFuzzer target for the fee configuration parsers of
 * sdk/arb/instrument.h: [fee_tier] accounts and venues lists and fee rates
 * (instrument and tier). The input is split at NUL bytes into the values of
 * accounts, venues, maker_fee_bps and taker_fee_bps. Property: the load
 * either succeeds, and then every tier is well formed and every fee
 * computed at its rates is a fee the rounding rule allows, or it fails with
 * an error reported; never a crash or a leak.
 */
#include <stddef.h>
#include <stdint.h>

#include <arb/instrument.h>

#include "../unit/test_agent_fakehost.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 2048)
        return 0;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    const char *val[4] = {"", "", "", ""};
    char *p = text;
    for (int i = 0; i < 4 && p <= text + size; i++) {
        val[i] = p;
        p += strlen(p) + 1;
    }
    fakehost *fh = fh_new();
    fh_set(fh, "fee_tier t", "accounts", val[0]);
    if (val[1][0])
        fh_set(fh, "fee_tier t", "venues", val[1]);
    fh_set(fh, "fee_tier t", "maker_fee_bps", val[2]);
    fh_set(fh, "fee_tier t", "taker_fee_bps", val[3]);
    fh_set(fh, "instrument XA:BTCUSD", "qty_decimals", "3");
    fh_set(fh, "instrument XA:BTCUSD", "taker_fee_bps", val[3]);
    fh_ctx *c = fh_ctx_new(fh, "fuzz");
    arb_fee_tiers t;
    if (arb_fee_tiers_load(&c->ctx, &t) == ARB_OK) {
        for (size_t i = 0; i < t.count; i++) {
            const arb_fee_tier *f = &t.items[i];
            if (f->lo > f->hi || f->n_venues > 4 || f->maker_fee_cbps > ARB_FEE_MAX_CBPS ||
                f->maker_fee_cbps < -ARB_FEE_MAX_CBPS || f->taker_fee_cbps > ARB_FEE_MAX_CBPS ||
                f->taker_fee_cbps < -ARB_FEE_MAX_CBPS)
                abort();
            int64_t fee = arb_fee_of(123457, 1001, 3, f->taker_fee_cbps);
            if ((f->taker_fee_cbps > 0 && fee <= 0) || (f->taker_fee_cbps < 0 && fee > 0))
                abort();
            (void)arb_fee_tier_find(&t, f->lo, "XA");
        }
        arb_fee_tiers_free(&t);
    }
    arb_instrument_table in;
    if (arb_instruments_load(&c->ctx, &in) == ARB_OK)
        arb_instruments_free(&in);
    free(c);
    fh_free(fh);
    free(text);
    return 0;
}

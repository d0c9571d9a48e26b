/*
 * noise_strategy.c -- one noise trader's decision (see noise_strategy.h).
 */
#include "noise_strategy.h"

int noise_draw(arb_rng *rng, const noise_params *p, int64_t ref, int64_t tick, int64_t lot,
               noise_order *out)
{
    if (ref <= 0)
        return 0;
    uint8_t side = arb_rng_below(rng, 2) ? ARB_SIDE_SELL : ARB_SIDE_BUY;
    int take = arb_rng_chance_ppm(rng, p->take_ppm);
    int64_t qty = arb_rng_range(rng, p->qty_min, p->qty_max) * lot;
    int64_t offset = arb_rng_range(rng, take ? 0 : 1, p->offset_ticks) * tick;
    if (qty <= 0)
        return 0;
    /* A taker pays up to `offset` through the reference; a maker waits
     * `offset` behind it. Prices land on the tick grid on the safe side. */
    int64_t px = side == ARB_SIDE_BUY ? (take ? ref + offset : ref - offset)
                                      : (take ? ref - offset : ref + offset);
    px = side == ARB_SIDE_BUY ? arb_agent_round_down(px, tick) : arb_agent_round_up(px, tick);
    if (px <= 0)
        return 0;
    out->side = side;
    out->tif = take ? ARB_TIF_IOC : ARB_TIF_GTC;
    out->price = px;
    out->qty = qty;
    out->ttl_ns = take ? 0 : p->ttl_ns;
    return 1;
}

int noise_decide(arb_rng *rng, const noise_params *p, int64_t ref, int64_t tick, int64_t lot,
                 int64_t position, noise_order *out)
{
    noise_order o;
    if (!noise_draw(rng, p, ref, tick, lot, &o) || !noise_fits(p, lot, position, &o))
        return 0;
    *out = o;
    return 1;
}

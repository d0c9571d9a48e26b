/*
 * noise_strategy.h -- what one noise trader does when it acts: a random
 * side, size and price around a reference, either a passive GTC order a few
 * ticks behind the reference (with a time to live) or an IOC that crosses
 * it. Pure: the PRNG and the numbers come in, an order comes out.
 */
#ifndef NOISE_STRATEGY_H
#define NOISE_STRATEGY_H

#include <arb/agent.h>

typedef struct noise_params {
    uint32_t take_ppm;        /* share of actions that are IOC takers */
    int64_t qty_min, qty_max; /* lots */
    int64_t offset_ticks;     /* how far from the reference prices spread */
    int64_t max_position;     /* lots, per account and instrument */
    int64_t ttl_ns;           /* passive orders' time to live */
} noise_params;

typedef struct noise_order {
    uint8_t side, tif;
    int64_t price, qty; /* price units, quantity units */
    int64_t ttl_ns;
} noise_order;

/* Fills *out and returns 1, or returns 0 (no order: no reference yet, or
 * the drawn side would break the position limit). `tick` and `lot` are the
 * instrument's increments, `position` the account's, in quantity units.
 * It is noise_draw, then noise_fits. */
int noise_decide(arb_rng *rng, const noise_params *p, int64_t ref, int64_t tick, int64_t lot,
                 int64_t position, noise_order *out);

/* The draws alone: the same draws as noise_decide's, which never depend on
 * the position; returns 0 if there is no order whatever the position. */
int noise_draw(arb_rng *rng, const noise_params *p, int64_t ref, int64_t tick, int64_t lot,
               noise_order *out);

/* Whether a drawn order keeps the account within its position limit. */
static inline int noise_fits(const noise_params *p, int64_t lot, int64_t position,
                             const noise_order *o)
{
    int64_t limit = p->max_position * lot;
    int64_t after = o->side == ARB_SIDE_BUY ? position + o->qty : position - o->qty;
    return after <= limit && after >= -limit;
}

#endif

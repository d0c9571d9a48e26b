/*
 * xarb_signal.c -- the arbitrage decision (see xarb_signal.h).
 */
#include "xarb_signal.h"

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

int xarb_signal(const xarb_view *cheap, const xarb_view *rich, const xarb_params *p,
                xarb_plan *plan)
{
    if (cheap->ask_qty <= 0 || rich->bid_qty <= 0 || cheap->ask_px <= 0 || rich->bid_px <= 0)
        return 0;
    /* Edge per unit beyond both legs' taker fees, compared in hundredths
     * of a bp x price units so that nothing is rounded:
     *   (bid - ask) * 1e6 > ask * buy_fee + bid * sell_fee + threshold * 1e6 */
    __int128 edge = (__int128)(rich->bid_px - cheap->ask_px) * 1000000;
    __int128 cost = (__int128)cheap->ask_px * p->buy_fee_cbps +
                    (__int128)rich->bid_px * p->sell_fee_cbps + (__int128)p->threshold * 1000000;
    if (edge <= cost)
        return 0;
    /* Both legs trade the same quantity: a multiple of both lots (one lot
     * must divide the other; otherwise the pair is not tradable). */
    int64_t lot = cheap->lot > rich->lot ? cheap->lot : rich->lot;
    int64_t small = cheap->lot > rich->lot ? rich->lot : cheap->lot;
    if (small <= 0 || lot % small)
        return 0;
    int64_t qty = min64(cheap->ask_qty, rich->bid_qty);
    qty = min64(qty, p->max_qty * lot);
    qty = min64(qty, p->max_position * cheap->lot - cheap->position);
    qty = min64(qty, p->max_position * rich->lot + rich->position);
    qty -= qty % lot;
    if (qty <= 0)
        return 0;
    plan->qty = qty;
    plan->buy_px = cheap->ask_px;
    plan->sell_px = rich->bid_px;
    return 1;
}

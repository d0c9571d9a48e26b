/*
 * mm_quote.c -- the market maker's quotes (see mm_quote.h).
 */
#include "mm_quote.h"

#include <arb/agent.h>

void mm_quote_compute(const mm_params *p, int64_t ref, int64_t tick, int64_t lot, int64_t position,
                      mm_quote *q)
{
    q->bid_px = q->bid_qty = q->ask_px = q->ask_qty = 0;
    if (ref <= 0 || p->qty <= 0)
        return;
    int64_t limit = p->max_position * lot;
    /* Lean by skew_ticks x position / limit, whole ticks, toward flat. */
    int64_t lean = limit ? (int64_t)((__int128)p->skew_ticks * position / limit) * tick : 0;
    int64_t center = arb_agent_round_down(ref + tick / 2, tick) - lean;
    int64_t bid = center - p->half_spread_ticks * tick;
    int64_t ask = center + p->half_spread_ticks * tick;
    int64_t size = p->qty * lot;
    int64_t room_buy = limit - position, room_sell = limit + position;
    if (bid > 0 && room_buy > 0) {
        q->bid_px = bid;
        q->bid_qty = size < room_buy ? size : arb_agent_round_down(room_buy, lot);
    }
    if (ask > 0 && room_sell > 0) {
        q->ask_px = ask;
        q->ask_qty = size < room_sell ? size : arb_agent_round_down(room_sell, lot);
    }
}

int64_t mm_fee_ticks(int64_t ref, int64_t tick, int64_t maker_fee_cbps)
{
    if (maker_fee_cbps <= 0 || ref <= 0 || tick <= 0)
        return 0;
    __int128 per_unit = (__int128)ref * maker_fee_cbps; /* price units x 1e6 */
    __int128 tick_e6 = (__int128)tick * 1000000;
    return (int64_t)((per_unit + tick_e6 - 1) / tick_e6);
}

/*
 * mm_quote.h -- where an inventory-aware market maker quotes: a bid and an
 * ask `half_spread` ticks around a center that leans against its position
 * (long -> quotes lower, to sell; short -> higher), sizes trimmed so a fill
 * never takes it past its limit, and a side dropped at the limit. Pure.
 */
#ifndef MM_QUOTE_H
#define MM_QUOTE_H

#include <stdint.h>

typedef struct mm_params {
    int64_t half_spread_ticks;
    int64_t qty;          /* lots per quote */
    int64_t max_position; /* lots */
    int64_t skew_ticks;   /* center shift at a full position */
} mm_params;

typedef struct mm_quote {
    int64_t bid_px, bid_qty; /* qty 0: no bid */
    int64_t ask_px, ask_qty; /* qty 0: no ask */
} mm_quote;

/* ref, tick: price units; lot, position: quantity units. */
void mm_quote_compute(const mm_params *p, int64_t ref, int64_t tick, int64_t lot, int64_t position,
                      mm_quote *q);

/* Whole ticks that cover a maker fee of maker_fee_cbps (hundredths of a
 * bp) at price ref: what a quote widens by so that each fill still earns
 * the configured half spread. 0 for a rebate or no fee. */
int64_t mm_fee_ticks(int64_t ref, int64_t tick, int64_t maker_fee_cbps);

#endif

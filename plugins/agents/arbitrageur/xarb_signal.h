/*
 * xarb_signal.h -- the cross-venue arbitrage decision: buy where the ask is
 * below the other venue's bid by more than both legs' fees plus a
 * threshold, for as much as both tops show, the per-leg cap and the
 * inventory limits allow. Pure integer arithmetic.
 */
#ifndef XARB_SIGNAL_H
#define XARB_SIGNAL_H

#include <stdint.h>

/* One venue of the pair as the arbitrageur sees it. Prices in price units,
 * quantities and position in quantity units. */
typedef struct xarb_view {
    int64_t bid_px, bid_qty, ask_px, ask_qty;
    int64_t position;
    int64_t lot;
} xarb_view;

typedef struct xarb_params {
    int64_t buy_fee_cbps;  /* the cheap venue's taker rate, hundredths of a bp */
    int64_t sell_fee_cbps; /* the rich venue's */
    int64_t threshold;     /* price units of edge required beyond the fees */
    int64_t max_qty;       /* lots per leg */
    int64_t max_position;  /* lots per venue, either direction */
} xarb_params;

typedef struct xarb_plan {
    int64_t qty;     /* quantity units, both legs */
    int64_t buy_px;  /* IOC limit on the cheap venue: its ask */
    int64_t sell_px; /* IOC limit on the rich venue: its bid */
} xarb_plan;

/* 1 and *plan if buying on `cheap` and selling on `rich` now pays. */
int xarb_signal(const xarb_view *cheap, const xarb_view *rich, const xarb_params *p,
                xarb_plan *plan);

#endif

/*
 * recover.h -- the gateway's read models rebuilt at start from what the
 * transport stores (arb/replay.h): order status and open orders of the
 * orders this gateway placed (its order id space), every account's
 * positions and PnL, and the recent trades. Books come from the matcher's
 * snapshots (the gateway asks for them at start), not from here.
 *
 * Not here: serving them (views.c, routes.c) or the live updates
 * (gateway_plugin.c, which skips what the rebuild took via gw_recovered).
 */
#ifndef GW_RECOVER_H
#define GW_RECOVER_H

#include <arb/plugin.h>
#include <arb/replay.h>

#include "read_model.h"

typedef struct gw_recovery {
    arb_replay events, trades;
    uint64_t orders_adopted;
} gw_recovery;

/* Reads order_events and trade_executed back into rm. ARB_OK, also when the
 * transport stores nothing (nothing to rebuild). */
int gw_recover(arb_ctx *ctx, gw_read_model *rm, uint64_t id_space, gw_recovery *r);
void gw_recovery_free(gw_recovery *r);

/* The order of ev: the model's, or, for an order it does not know whose id
 * is in this gateway's id space (placed before a restart, or whose events
 * came again from a replay after its client got no answer), adopted from
 * the event. NULL for anyone else's order. */
gw_order *gw_adopt(gw_read_model *rm, uint64_t id_space, const arb_order_event *ev);

#endif

/* value_taker.c -- an example agent: it buys (IOC) where a venue's ask is
 * more than edge_ticks below the generator's fair value, sells where a bid is
 * that far above it, within max_position lots per instrument. */
#include <arb/agent.h>

#ifndef EDGE_EXTRA
#define EDGE_EXTRA 0 /* a build flag to change behaviour on hot reload */
#endif

typedef struct value_taker {
    arb_agent agent; /* first: position, cash, PnL, open orders, book tops */
    int64_t edge_ticks, qty, max_position;
} value_taker;

static int configure(arb_ctx *ctx, value_taker *v)
{
    int rc = arb_cfg_int(ctx, "edge_ticks", 2, 0, 100000, &v->edge_ticks);
    if (rc == ARB_OK)
        rc = arb_cfg_int(ctx, "qty", 1, 1, 100000, &v->qty);
    if (rc == ARB_OK)
        rc = arb_cfg_int(ctx, "max_position", 10, 1, 100000, &v->max_position);
    return rc;
}

static void on_tick(void *user, const arb_tick *tick)
{
    value_taker *v = user;
    arb_agent *a = &v->agent;
    (void)tick;
    if (a->count) /* an order is still in flight */
        return;
    for (int i = 0; i < (int)a->n_instruments; i++) {
        const arb_agent_top *t = arb_agent_top_of(a, i);
        const arb_instrument *spec = &a->instr[i].spec;
        int64_t edge = (v->edge_ticks + EDGE_EXTRA) * spec->tick, size = v->qty * spec->lot;
        int64_t pos = a->tot[i].position, limit = v->max_position * spec->lot;
        if (!t->fair_value)
            continue;
        if (t->ask_qty && t->ask_px + edge < t->fair_value && pos + size <= limit)
            arb_agent_ioc(a, i, ARB_SIDE_BUY, t->ask_px, size);
        else if (t->bid_qty && t->bid_px - edge > t->fair_value && pos - size >= -limit)
            arb_agent_ioc(a, i, ARB_SIDE_SELL, t->bid_px, size);
    }
}

ARB_AGENT_PLUGIN("value_taker", "1.0", value_taker, configure, .on_tick = on_tick)

/*
 * arbitrageur.c -- the cross-venue arbitrageur plugin. Whenever a top of
 * book changes it compares every pair of its instruments that trade the
 * same symbol on different venues and, if one venue's ask is below the
 * other's bid by more than fees plus the threshold (xarb_signal.c), sends an
 * IOC buy on the cheap venue and an IOC sell on the rich one. It fires again
 * only once both legs are done, and keeps each venue's position within
 * max_position. The fees are the venues' own: each leg's taker rate for the
 * agent's account (its [fee_tier], else the instrument's taker_fee_bps).
 *
 * Its report: attempts, legs filled completely, fees paid (price units x
 * quantity units, net of rebates) and the quantity left unhedged: for each
 * pair, how much one leg filled beyond the other, summed (quantity units).
 *
 *   [plugin arb]
 *   load = agent_arbitrageur.so
 *   account = 20
 *   instruments = XA:BTCUSD XB:BTCUSD
 *   threshold_ticks = 1     ; edge beyond fees, in ticks of the cheap venue
 *   max_qty = 10            ; lots per leg
 *   max_position = 50       ; lots per venue
 */
#include <arb/agent.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "xarb_signal.h"

#define XARB_STATE_VERSION 1u
#define LEG_TTL_NS 1000000000ll

typedef struct arbitrageur {
    arb_agent agent;
    xarb_params p;
    int64_t threshold_ticks;
    uint64_t attempts;     /* pairs of legs sent */
    uint64_t legs_filled;  /* legs that filled completely */
    int64_t leg_filled[2]; /* of the pair in flight: bought, sold */
    uint64_t unhedged;     /* quantity one leg filled beyond the other, summed */
} arbitrageur;

static xarb_view view_of(arb_agent *a, int ix)
{
    const arb_agent_top *t = arb_agent_top_of(a, ix);
    xarb_view v = {t->bid_px,  t->bid_qty,          t->ask_px,
                   t->ask_qty, a->tot[ix].position, a->instr[ix].spec.lot};
    return v;
}

/* Looks for one profitable pair and sends its two legs. */
static void scan(arbitrageur *s)
{
    arb_agent *a = &s->agent;
    if (a->count) /* legs still in flight */
        return;
    /* The pair is done: what one leg got beyond the other is left unhedged. */
    int64_t gap = s->leg_filled[0] - s->leg_filled[1];
    s->unhedged += (uint64_t)(gap < 0 ? -gap : gap);
    s->leg_filled[0] = s->leg_filled[1] = 0;
    for (uint32_t i = 0; i < a->n_instruments; i++)
        for (uint32_t j = 0; j < a->n_instruments; j++) {
            if (i == j || memcmp(a->instr[i].symbol_f, a->instr[j].symbol_f, ARB_SYMBOL_LEN))
                continue;
            xarb_view cheap = view_of(a, (int)i), rich = view_of(a, (int)j);
            xarb_params p = s->p;
            p.threshold = s->threshold_ticks * a->instr[i].spec.tick;
            p.buy_fee_cbps = a->instr[i].taker_fee_cbps;
            p.sell_fee_cbps = a->instr[j].taker_fee_cbps;
            xarb_plan plan;
            if (!xarb_signal(&cheap, &rich, &p, &plan))
                continue;
            s->attempts++;
            /* IOC legs end by themselves; the time to live only matters if
             * an answer never comes, so the pair cannot block forever. */
            arb_agent_order_req buy = {0, (int)i,      ARB_SIDE_BUY, ARB_ORD_LIMIT, ARB_TIF_IOC,
                                       0, plan.buy_px, plan.qty,     LEG_TTL_NS,    s->attempts};
            arb_agent_order_req sell = {0, (int)j,       ARB_SIDE_SELL, ARB_ORD_LIMIT, ARB_TIF_IOC,
                                        0, plan.sell_px, plan.qty,      LEG_TTL_NS,    s->attempts};
            arb_agent_send(a, &buy);
            arb_agent_send(a, &sell);
            return;
        }
}

static void on_top(void *user, int ix)
{
    (void)ix;
    scan(user);
}

static void on_tick(void *user, const arb_tick *tick)
{
    (void)tick;
    scan(user);
}

static void on_fill(void *user, const arb_agent_order *o, int64_t px, int64_t qty)
{
    (void)px;
    arbitrageur *s = user;
    if (o->filled >= o->qty)
        s->legs_filled++;
    s->leg_filled[o->side == ARB_SIDE_SELL] += qty;
}

static void report(void *user, uint64_t out[4])
{
    arbitrageur *s = user;
    int64_t fees = 0;
    for (uint32_t i = 0; i < s->agent.n_instruments; i++)
        fees += s->agent.tot[i].fees;
    out[0] = s->attempts;
    out[1] = s->legs_filled;
    out[2] = (uint64_t)fees;
    out[3] = s->unhedged;
}

static int read_params(arb_ctx *ctx, arbitrageur *s)
{
    int64_t thr, maxq, maxpos;
    int rc;
    if ((rc = arb_cfg_int(ctx, "threshold_ticks", 1, 0, 1000000, &thr)) ||
        (rc = arb_cfg_int(ctx, "max_qty", 10, 1, 1000000, &maxq)) ||
        (rc = arb_cfg_int(ctx, "max_position", 50, 0, INT32_MAX, &maxpos)))
        return rc;
    if (s->agent.n_instruments < 2)
        return arb_cfg_reject(ctx, "instruments", "an arbitrageur needs at least two venues");
    s->threshold_ticks = thr;
    s->p = (xarb_params){0, 0, 0, maxq, maxpos};
    return ARB_OK;
}

/* The common keys (arb_agent_init), then the strategy's own. */
static int configure(arb_ctx *ctx, void *s) { return read_params(ctx, s); }

static int xarb_create(arb_ctx *ctx, void **self)
{
    _Static_assert(offsetof(arbitrageur, agent) == 0, "arb_agent must be the first member");
    return arb_agent_plugin_create(ctx, self, sizeof(arbitrageur), configure);
}

static int xarb_start(void *self)
{
    arbitrageur *s = self;
    arb_agent_hooks h = {
        .on_tick = on_tick, .on_top = on_top, .on_fill = on_fill, .report = report};
    return arb_agent_start(&s->agent, &h, s);
}

static void xarb_stop(void *self) { arb_agent_stop(self); }

static void xarb_destroy(void *self)
{
    arbitrageur *s = self;
    arb_agent_free(&s->agent);
    free(s);
}

static int xarb_save(void *self, void **bytes, size_t *len)
{
    arbitrageur *s = self;
    uint8_t extra[40];
    arb_put_u64(extra, s->attempts);
    arb_put_u64(extra + 8, s->legs_filled);
    arb_put_u64(extra + 16, s->unhedged);
    arb_put_i64(extra + 24, s->leg_filled[0]);
    arb_put_i64(extra + 32, s->leg_filled[1]);
    return arb_agent_save(&s->agent, extra, sizeof extra, bytes, len);
}

static int xarb_restore(void *self, uint32_t version, const void *bytes, size_t len)
{
    arbitrageur *s = self;
    const void *extra;
    size_t extra_len;
    if (version != XARB_STATE_VERSION)
        return ARB_EREFUSED;
    int rc = arb_agent_restore(&s->agent, bytes, len, &extra, &extra_len);
    if (rc)
        return rc;
    /* 8 bytes: saved before legs and exposure were counted. */
    if (extra_len != 8 && extra_len != 40)
        return ARB_EREFUSED;
    const uint8_t *x = extra;
    s->attempts = arb_get_u64(x);
    if (extra_len == 40) {
        s->legs_filled = arb_get_u64(x + 8);
        s->unhedged = arb_get_u64(x + 16);
        s->leg_filled[0] = arb_get_i64(x + 24);
        s->leg_filled[1] = arb_get_i64(x + 32);
    }
    return ARB_OK;
}

static const char *const xarb_publishes[] = {"order_commands", NULL};
static const char *const xarb_subscribes[] = {"system_ticks", "order_events", "market_data",
                                              "market_events", NULL};

static const arb_plugin arbitrageur_plugin = {
    .abi_version = ARB_ABI_VERSION,
    .size = sizeof(arb_plugin),
    .name = "agent_arbitrageur",
    .version = "1.0.0",
    .state_version = XARB_STATE_VERSION,
    .publishes = xarb_publishes,
    .subscribes = xarb_subscribes,
    .create = xarb_create,
    .start = xarb_start,
    .stop = xarb_stop,
    .destroy = xarb_destroy,
    .save = xarb_save,
    .restore = xarb_restore,
};

ARB_PLUGIN_DEFINE(arbitrageur_plugin)

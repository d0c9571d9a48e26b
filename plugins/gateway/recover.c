/*
 * recover.c -- rebuilding the gateway's read models at start (recover.h).
 *
 * An order event of an order the model does not know, whose id is in this
 * gateway's id space, is an order placed before the restart: it is adopted
 * from the event (the event carries instrument, side, type, price and
 * quantity) and then the event applies as it would have live.
 */
#include "recover.h"

#include <string.h>

#define RECOVER_TIMEOUT_NS (30 * 1000000000ll)

typedef struct rebuild {
    gw_read_model *rm;
    uint64_t id_space;
    uint64_t adopted;
} rebuild;

gw_order *gw_adopt(gw_read_model *rm, uint64_t id_space, const arb_order_event *ev)
{
    gw_order *o = gw_rm_order(rm, ev->order_id);
    if (o || ev->order_id >> 48 != id_space)
        return o; /* known, or placed through another gateway or by an agent */
    int idx = gw_rm_instrument(rm, ev->venue, ev->symbol);
    if (idx < 0)
        return NULL;
    gw_order_request rq;
    memset(&rq, 0, sizeof rq);
    rq.instrument = &rm->instruments->items[idx];
    rq.side = ev->side;
    rq.type = ev->type;
    rq.tif = ev->tif;
    rq.flags = ev->flags & ARB_ORDF_POST_ONLY;
    rq.price = ev->price;
    rq.qty = ev->qty;
    return gw_rm_order_add(rm, ev->order_id, ev->account, &rq, ev->ts);
}

static int take_event(void *user, const arb_msg *msg)
{
    rebuild *b = user;
    arb_order_event ev;
    if (arb_order_event_decode(msg->data, msg->len, &ev) != ARB_OK)
        return ARB_OK;
    gw_order *o = gw_rm_order(b->rm, ev.order_id);
    if (!o && (o = gw_adopt(b->rm, b->id_space, &ev)))
        b->adopted++;
    if (o)
        gw_rm_apply_event(b->rm, &ev, &o);
    return ARB_OK;
}

static int take_trade(void *user, const arb_msg *msg)
{
    rebuild *b = user;
    arb_trade t;
    if (arb_trade_decode(msg->data, msg->len, &t) == ARB_OK)
        gw_rm_apply_trade(b->rm, &t);
    return ARB_OK;
}

int gw_recover(arb_ctx *ctx, gw_read_model *rm, uint64_t id_space, gw_recovery *r)
{
    memset(r, 0, sizeof *r);
    rebuild b = {rm, id_space, 0};
    int rc = arb_replay_read(ctx, ARB_TOPIC_ORDER_EVENTS, RECOVER_TIMEOUT_NS, take_event, &b,
                             &r->events);
    if (rc == ARB_ENOENT)
        return ARB_OK; /* kept in process: nothing stored to rebuild from */
    if (rc == ARB_OK)
        rc = arb_replay_read(ctx, ARB_TOPIC_TRADE_EXECUTED, RECOVER_TIMEOUT_NS, take_trade, &b,
                             &r->trades);
    r->orders_adopted = b.adopted;
    if (rc != ARB_OK && rc != ARB_ENOENT) {
        arb_warn(ctx,
                 "could not read the stored order events and trades back (%d): the read "
                 "models hold what was read",
                 rc);
        return rc;
    }
    if (r->events.records || r->trades.records)
        arb_info(ctx,
                 "read models rebuilt from %llu stored order events and %llu trades: %llu orders "
                 "placed here before the restart",
                 (unsigned long long)r->events.records, (unsigned long long)r->trades.records,
                 (unsigned long long)b.adopted);
    return ARB_OK;
}

void gw_recovery_free(gw_recovery *r)
{
    arb_replay_free(&r->events);
    arb_replay_free(&r->trades);
}

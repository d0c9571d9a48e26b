/*
 * recover.h -- the gateway's read models rebuilt at start from what the
 * transport stores (arb/replay.h): order status and open orders of the
 * orders this gateway placed (its order id space), every account's
 * positions and PnL, and the recent trades; and the snapshots of them
 * (snapshot.h) that bound that rebuild: the newest one is read, then only
 * the order_events and trade_executed stored after it. Books come from the
 * matcher's snapshots (the gateway asks for them at start), not from here.
 *
 * Where snapshots live: a topic of their own (snapshot_topic, default
 * gateway_snapshots) in the same transport as the events, on the partition
 * the gateway's id space keys to, so a gateway started on another machine
 * finds them as it finds the events. The newest is the last record there
 * (arb_read_last), or the chunks just before it; an incomplete one (a crash
 * while it was written) leaves the one before it to be used. Over the
 * in-process bus nothing is stored and there is nothing to rebuild.
 *
 * Not here: serving the models (views.c, routes.c), the live updates
 * (gateway_plugin.c, which skips what the rebuild took via arb_replay_seen
 * and marks what it applies with gw_recovery_mark), when snapshots are
 * taken (gateway_plugin.c), or their bytes (snapshot.c).
 */
#ifndef GW_RECOVER_H
#define GW_RECOVER_H

#include <arb/plugin.h>
#include <arb/replay.h>

#include "read_model.h"
#include "snapshot.h"

typedef struct gw_recovery {
    /* The rebuild at start: what it read (deliveries below are skipped). */
    arb_replay events, trades;
    uint64_t orders_adopted;
    int from_snapshot;    /* 1: it began at a snapshot */
    gw_marks snap_events; /* where that snapshot stood */
    gw_marks snap_trades;
    size_t snap_bytes;  /* its size */
    int64_t rebuild_ns; /* how long the rebuild took */

    /* Snapshots: off while topic < 0. */
    int topic;
    int32_t partition;
    uint64_t key;
    gw_snapshot_id id;
    gw_marks at_events, at_trades; /* where the models stand now */
    int marks_ok;                  /* 0: the models hold what no mark says */
    uint64_t since;                /* records applied since the last snapshot */
    uint64_t taken;                /* snapshots published */
    size_t last_bytes;
    int64_t last_position;   /* gw_marks_sum of both marks of the newest published */
    int64_t want_hi;         /* the partition's high offset once it is stored; -1: none waiting */
    int64_t stored_position; /* of the newest seen stored; -1: none */
    int check_fails;
    int warned;
} gw_recovery;

/* Reads order_events and trade_executed back into *rm: from the newest
 * usable snapshot on snapshot_topic (a topic id, -1: none) and what is
 * stored after it, else from everything stored. *rm may be replaced by the
 * snapshot's model (the old one is freed). ARB_OK, also when the transport
 * stores nothing (nothing to rebuild); an error when a read failed (the
 * models then hold what was read, and no snapshot is taken in this life). */
int gw_recover(arb_ctx *ctx, gw_read_model **rm, uint64_t id_space, int snapshot_topic,
               gw_recovery *r);
void gw_recovery_free(gw_recovery *r);

/* A delivered record of order_events (topic ARB_TOPIC_ORDER_EVENTS) or
 * trade_executed that the models took (or skipped as seen): where they
 * stand moves past it. */
void gw_recovery_mark(gw_recovery *r, int topic, const arb_msg *msg);

/* Publishes a snapshot of rm as it stands. ARB_OK; ARB_ESTATE when
 * snapshots are off or the marks are not known; the bus's error. */
int gw_snapshot_take(arb_ctx *ctx, gw_recovery *r, const gw_read_model *rm, int64_t *encode_ns);
/* Whether the newest snapshot published is stored (asks the transport
 * while it is not known to be, at most a few times). */
int gw_snapshot_check(arb_ctx *ctx, gw_recovery *r);

/* The order of ev: the model's, or, for an order it does not know whose id
 * is in this gateway's id space (placed before a restart, or whose events
 * came again from a replay after its client got no answer), adopted from
 * the event. NULL for anyone else's order. */
gw_order *gw_adopt(gw_read_model *rm, uint64_t id_space, const arb_order_event *ev);

#endif

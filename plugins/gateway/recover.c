/*
 * recover.c -- rebuilding the gateway's read models at start, and the
 * snapshots that bound it (recover.h).
 *
 * An order event of an order the model does not know, whose id is in this
 * gateway's id space, is an order placed before the restart: it is adopted
 * from the event (the event carries instrument, side, type, price and
 * quantity) and then the event applies as it would have live.
 *
 * A snapshot says, per partition of order_events and trade_executed, the
 * offset of the first record its models do not hold (the marks); the
 * rebuild reads from there. Taken live, the marks are the delivered
 * records' offsets: every topic is delivered in offset order per partition,
 * so the models hold exactly the records below them. A snapshot is used
 * only if it is whole, decodes, is this gateway's of this run and
 * configuration, and the stored log reaches its marks; anything else is
 * said in the log and the rebuild reads everything, as without one.
 */
#include "recover.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEC_NS 1000000000ll
#define RECOVER_TIMEOUT_NS (30 * SEC_NS)
#define SNAP_READ_TIMEOUT_NS (10 * SEC_NS)
/* Asking whether a snapshot is stored holds the loop: briefly, a few times. */
#define SNAP_CHECK_TIMEOUT_NS (200 * 1000000ll)
#define SNAP_CHECK_TRIES 5

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * SEC_NS + ts.tv_nsec;
}

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

/* order_events, then trade_executed, into b->rm: each from its marks
 * (NULL: from the start). */
static int replay(arb_ctx *ctx, rebuild *b, const gw_marks *events, const gw_marks *trades,
                  gw_recovery *r)
{
    int rc = arb_replay_read_from(ctx, ARB_TOPIC_ORDER_EVENTS, events ? events->next : NULL,
                                  events ? events->nparts : 0, RECOVER_TIMEOUT_NS, take_event, b,
                                  &r->events);
    if (rc == ARB_OK)
        rc = arb_replay_read_from(ctx, ARB_TOPIC_TRADE_EXECUTED, trades ? trades->next : NULL,
                                  trades ? trades->nparts : 0, RECOVER_TIMEOUT_NS, take_trade, b,
                                  &r->trades);
    return rc == ARB_ENOENT && r->events.nparts ? ARB_OK : rc; /* trades kept in process */
}

/* ---- reading the newest snapshot ---- */

typedef struct chunk_reader {
    gw_snap_whole whole;
    uint64_t id_space;
    int rc;
} chunk_reader;

static int take_chunk(void *user, const arb_msg *msg)
{
    chunk_reader *cr = user;
    gw_snap_chunk c;
    cr->rc = gw_snap_chunk_get(msg->data, msg->len, &c);
    if (cr->rc == ARB_OK && c.id_space != cr->id_space)
        cr->rc = ARB_EBADMSG;
    if (cr->rc == ARB_OK)
        cr->rc = gw_snap_whole_add(&cr->whole, &c);
    return cr->rc;
}

/* The chunk header of the record at `offset` (its bytes are not kept). */
typedef struct one_chunk {
    gw_snap_chunk c;
    int rc;
} one_chunk;

static int take_header(void *user, const arb_msg *msg)
{
    one_chunk *oc = user;
    oc->rc = gw_snap_chunk_get(msg->data, msg->len, &oc->c);
    oc->c.data = NULL;
    return ARB_OK;
}

/* The newest whole snapshot of this gateway on its partition, decoded.
 * ARB_OK (*out, and r->snap_events/snap_trades), ARB_ENOENT (none), or why
 * it cannot be used. */
static int snapshot_load(arb_ctx *ctx, gw_recovery *r, const arb_instrument_table *t,
                         gw_read_model **out, char *why, size_t cap)
{
    void *last = NULL;
    size_t len = 0;
    int64_t off = -1;
    int rc = arb_read_last(ctx, r->topic, r->partition, SNAP_READ_TIMEOUT_NS, &last, &len, &off);
    if (rc == ARB_ENOENT)
        return ARB_ENOENT;
    if (rc != ARB_OK) {
        snprintf(why, cap, "it could not be read (%d)", rc);
        return rc;
    }
    gw_snap_chunk c;
    rc = gw_snap_chunk_get(last, len, &c);
    free(last);
    if (rc != ARB_OK) {
        snprintf(why, cap, "the partition's last record is not a snapshot this build reads");
        return ARB_EBADMSG;
    }
    if (c.id_space != r->id.id_space) {
        snprintf(why, cap,
                 "the partition's last record is a snapshot of order id space %llu: give each "
                 "gateway its own snapshot_topic",
                 (unsigned long long)c.id_space);
        return ARB_EREFUSED;
    }
    /* A snapshot cut short by a crash: the whole one before it ends just
     * before its first chunk. */
    int64_t end = off;
    uint32_t count = c.count;
    if (c.index + 1 != c.count) {
        end = off - (int64_t)c.index - 1;
        one_chunk oc = {.rc = ARB_ENOENT};
        if (end < 0 ||
            arb_read_range(ctx, r->topic, r->partition, end, end + 1, SNAP_READ_TIMEOUT_NS,
                           take_header, &oc) != ARB_OK ||
            oc.rc != ARB_OK || oc.c.index + 1 != oc.c.count || oc.c.id_space != r->id.id_space) {
            snprintf(why, cap, "the newest is incomplete and the one before it is not there");
            return ARB_EBADMSG;
        }
        count = oc.c.count;
    }
    int64_t first = end - (int64_t)count + 1;
    chunk_reader cr = {.id_space = r->id.id_space, .rc = ARB_ENOENT};
    if (first < 0) {
        snprintf(why, cap, "it claims more chunks than the partition holds");
        return ARB_EBADMSG;
    }
    rc = arb_read_range(ctx, r->topic, r->partition, first, end + 1, SNAP_READ_TIMEOUT_NS,
                        take_chunk, &cr);
    if (rc != ARB_OK || cr.whole.next != cr.whole.count || cr.whole.count != count) {
        snprintf(why, cap, "its %u chunks at offsets %lld to %lld could not be read whole (%d)",
                 count, (long long)first, (long long)end, rc ? rc : cr.rc);
        gw_snap_whole_free(&cr.whole);
        return rc ? rc : ARB_EBADMSG;
    }
    rc = gw_snapshot_decode(cr.whole.bytes, cr.whole.len, &r->id, t, out, &r->snap_events,
                            &r->snap_trades, why, cap);
    r->snap_bytes = cr.whole.len;
    gw_snap_whole_free(&cr.whole);
    return rc;
}

/* Where snapshots go: the partition the id space keys to. A host (or a
 * test's fake host) without stored reads keeps no snapshots. */
static void snapshot_place(arb_ctx *ctx, gw_recovery *r, int topic)
{
    const arb_host_api *api = ctx->api;
    if (api->size < offsetof(arb_host_api, partition_of) + sizeof api->partition_of ||
        !api->read_last || !api->watermarks || !api->read_range || !api->partition_of)
        return;
    int32_t p = -1;
    int rc = arb_partition_of(ctx, topic, r->key, SNAP_READ_TIMEOUT_NS, &p);
    if (rc == ARB_OK && p >= 0) {
        r->topic = topic;
        r->partition = p;
    } else if (rc != ARB_ENOENT) {
        arb_warn(ctx, "cannot find where snapshots go (%d): none is read or taken in this life",
                 rc);
    }
}

int gw_recover(arb_ctx *ctx, gw_read_model **rm, uint64_t id_space, int snapshot_topic,
               gw_recovery *r)
{
    memset(r, 0, sizeof *r);
    r->topic = -1;
    r->want_hi = -1;
    r->stored_position = -1;
    int64_t t0 = clock_ns(CLOCK_MONOTONIC);
    arb_run_info run;
    arb_run(ctx, &run);
    r->id = (gw_snapshot_id){run.id, id_space, gw_instruments_digest((*rm)->instruments),
                             (uint32_t)(*rm)->trade_history, (*rm)->order_history};
    r->key = id_space;
    if (snapshot_topic >= 0)
        snapshot_place(ctx, r, snapshot_topic);

    gw_read_model *snap = NULL;
    char why[256] = "";
    if (r->topic >= 0) {
        int rc = snapshot_load(ctx, r, (*rm)->instruments, &snap, why, sizeof why);
        if (rc == ARB_EREFUSED && strstr(why, "another run"))
            arb_info(ctx, "the newest snapshot is of another run: rebuilding from the history");
        else if (rc != ARB_OK && rc != ARB_ENOENT)
            arb_warn(ctx,
                     "the newest snapshot of the read models is not used (%s): rebuilding "
                     "from the whole stored history",
                     why);
    }
    rebuild b = {snap ? snap : *rm, id_space, 0};
    int rc = replay(ctx, &b, snap ? &r->snap_events : NULL, snap ? &r->snap_trades : NULL, r);
    if (snap && rc != ARB_OK) {
        if (rc == ARB_EREFUSED)
            arb_warn(ctx, "the newest snapshot stands past the end of the stored order events or "
                          "trades (the log is not the one it was taken in): rebuilding from the "
                          "whole stored history");
        else
            arb_warn(ctx,
                     "the records after the snapshot could not be read (%d): rebuilding "
                     "from the whole stored history",
                     rc);
        gw_rm_free(snap);
        snap = NULL;
        arb_replay_free(&r->events);
        arb_replay_free(&r->trades);
        r->events.records = r->trades.records = 0;
        b = (rebuild){*rm, id_space, 0};
        rc = replay(ctx, &b, NULL, NULL, r);
    }
    if (snap) {
        gw_rm_free(*rm);
        *rm = snap;
        r->from_snapshot = 1;
        r->stored_position = r->last_position =
            gw_marks_sum(&r->snap_events) + gw_marks_sum(&r->snap_trades);
    }
    r->orders_adopted = b.adopted;
    r->rebuild_ns = clock_ns(CLOCK_MONOTONIC) - t0;
    if (rc == ARB_ENOENT && !r->events.nparts)
        return ARB_OK; /* kept in process: nothing stored to rebuild from */
    if (rc != ARB_OK && rc != ARB_ENOENT) {
        arb_warn(ctx,
                 "could not read the stored order events and trades back (%d): the read "
                 "models hold what was read",
                 rc);
        return rc;
    }
    /* The models hold exactly the records below the ends just read. */
    r->marks_ok = !gw_marks_copy(&r->at_events, r->events.end, r->events.nparts) &&
                  !gw_marks_copy(&r->at_trades, r->trades.end, r->trades.nparts);
    r->since = r->events.records + r->trades.records;
    if (snapshot_topic >= 0 && r->topic < 0)
        arb_info(ctx, "the snapshot topic is not stored by the transport: every start rebuilds "
                      "from the whole history (add it to [bus] kafka_topics or journal_topics)");
    if (r->from_snapshot)
        arb_info(ctx,
                 "read models rebuilt in %lld ms from a snapshot (%zu bytes, %lld order events "
                 "and %lld trades) and the %llu order events and %llu trades stored after it: "
                 "%zu orders placed here, %llu of them since the snapshot",
                 (long long)(r->rebuild_ns / 1000000), r->snap_bytes,
                 (long long)gw_marks_sum(&r->snap_events), (long long)gw_marks_sum(&r->snap_trades),
                 (unsigned long long)r->events.records, (unsigned long long)r->trades.records,
                 (*rm)->orders.count, (unsigned long long)b.adopted);
    else if (r->events.records || r->trades.records)
        arb_info(ctx,
                 "read models rebuilt in %lld ms from %llu stored order events and %llu trades: "
                 "%llu orders placed here before the restart",
                 (long long)(r->rebuild_ns / 1000000), (unsigned long long)r->events.records,
                 (unsigned long long)r->trades.records, (unsigned long long)b.adopted);
    return ARB_OK;
}

void gw_recovery_free(gw_recovery *r)
{
    arb_replay_free(&r->events);
    arb_replay_free(&r->trades);
    gw_marks_free(&r->snap_events);
    gw_marks_free(&r->snap_trades);
    gw_marks_free(&r->at_events);
    gw_marks_free(&r->at_trades);
}

void gw_recovery_mark(gw_recovery *r, int topic, const arb_msg *msg)
{
    gw_marks *m = topic == ARB_TOPIC_ORDER_EVENTS ? &r->at_events : &r->at_trades;
    /* A record published in process is in no store: no mark can say the
     * models hold it, so no snapshot may be taken of them. */
    if (msg->partition < 0 || gw_marks_take(m, msg->partition, msg->offset))
        r->marks_ok = 0;
    else
        r->since++;
}

/* ---- taking snapshots ---- */

int gw_snapshot_take(arb_ctx *ctx, gw_recovery *r, const gw_read_model *rm, int64_t *encode_ns)
{
    if (r->topic < 0 || !r->marks_ok)
        return ARB_ESTATE;
    int64_t t0 = clock_ns(CLOCK_MONOTONIC);
    uint8_t *bytes;
    size_t len;
    int rc = gw_snapshot_encode(rm, &r->id, &r->at_events, &r->at_trades, &bytes, &len);
    *encode_ns = clock_ns(CLOCK_MONOTONIC) - t0;
    if (rc != ARB_OK)
        return rc;
    /* Where the partition ends now; once it ends n chunks past that (and
     * past any snapshot still on its way), this one is stored. */
    int64_t lo, hi;
    int known =
        arb_watermarks(ctx, r->topic, r->partition, SNAP_CHECK_TIMEOUT_NS, &lo, &hi) == ARB_OK;
    uint32_t n = gw_snap_chunks(len);
    uint64_t snap = (uint64_t)clock_ns(CLOCK_REALTIME);
    uint8_t *rec =
        malloc(GW_SNAP_CHUNK_HDR + (len < GW_SNAP_CHUNK_DATA ? len : GW_SNAP_CHUNK_DATA));
    uint32_t i = 0;
    rc = rec ? ARB_OK : ARB_ENOMEM;
    for (; rc == ARB_OK && i < n; i++) {
        size_t rec_len = gw_snap_chunk_put(rec, r->id.id_space, snap, bytes, len, i);
        rc = arb_publish(ctx, r->topic, r->key, rec, rec_len);
    }
    free(rec);
    free(bytes);
    if (rc != ARB_OK) {
        /* A part of a snapshot is harmless (the reader takes the one
         * before); the next tick tries again. */
        if (!r->warned)
            arb_warn(ctx,
                     "a snapshot of the read models (%zu bytes) was not published: the bus "
                     "took %u of its %u chunks (%d); trying again",
                     len, i ? i - 1 : 0, n, rc);
        r->warned = 1;
        return rc;
    }
    r->warned = 0;
    r->since = 0;
    r->taken++;
    r->last_bytes = len;
    r->last_position = gw_marks_sum(&r->at_events) + gw_marks_sum(&r->at_trades);
    r->want_hi = known ? (hi > r->want_hi ? hi : r->want_hi) + n : -1;
    r->check_fails = 0;
    arb_debug(ctx, "snapshot of the read models: %zu bytes in %u chunks, encoded in %lld us", len,
              n, (long long)(*encode_ns / 1000));
    return ARB_OK;
}

int gw_snapshot_check(arb_ctx *ctx, gw_recovery *r)
{
    if (r->want_hi >= 0 && r->check_fails < SNAP_CHECK_TRIES) {
        int64_t lo, hi;
        if (arb_watermarks(ctx, r->topic, r->partition, SNAP_CHECK_TIMEOUT_NS, &lo, &hi) != ARB_OK)
            r->check_fails++;
        else if (hi >= r->want_hi) {
            r->stored_position = r->last_position;
            r->want_hi = -1;
        }
    }
    return r->want_hi < 0 && r->stored_position >= 0 && r->stored_position == r->last_position;
}

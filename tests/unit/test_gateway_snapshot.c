/*
 * test_gateway_snapshot.c -- snapshots of the gateway's read models
 * (snapshot.c) and the rebuild that starts from one (recover.c), against a
 * fake host whose topics keep what is published, per partition, with
 * offsets (the store below), as Kafka or the journal does.
 *
 * The point is exactness: a model restored from a snapshot plus the records
 * stored after it equals the model a rebuild from every record gives
 * (orders, their states and fills, positions, recent trades), whether the
 * snapshot was taken of a rebuilt model or of one built live (with orders
 * still waiting for the matcher, client ids and POST times, which a rebuild
 * does not have); and a snapshot that cannot be used is refused whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/gateway/read_model.h"
#include "../../plugins/gateway/recover.h"
#include "../../plugins/gateway/snapshot.h"
#include "test_agent_fakehost.h"
#include "gateway_instruments.h"

#define SPACE 7ull /* the gateway's order id space */
#define OTHER 3ull /* another one's (agents') */

static arb_instrument items[2];
static arb_instrument_table table = {items, 2};
static fakehost *fh;
static fh_ctx *fc;
static arb_ctx *ctx;
static int snap_topic;

/* ---- the store: the fake host's publish log, per topic and partition ---- */

static uint32_t event_parts = 2;
static int snapshots_stored = 1;
static int64_t low_of_events; /* records below are gone (retention) */

static int stored(int topic)
{
    return topic == ARB_TOPIC_ORDER_EVENTS || topic == ARB_TOPIC_TRADE_EXECUTED ||
           (topic == snap_topic && snapshots_stored);
}

static uint32_t parts_of(int topic)
{
    return topic == ARB_TOPIC_ORDER_EVENTS || topic == ARB_TOPIC_TRADE_EXECUTED ? event_parts : 1;
}

static int part_of(int topic, uint64_t key) { return (int)(key % parts_of(topic)); }

/* Calls fn with every stored record of topic/partition in [from, to). */
static int each_record(int topic, int partition, int64_t from, int64_t to, arb_read_fn fn,
                       void *user)
{
    int64_t off = 0;
    for (size_t i = 0; i < fh->nlog; i++) {
        fh_msg *m = &fh->log[i];
        if (m->topic != topic || part_of(topic, m->key) != partition)
            continue;
        if (off >= from && (to < 0 || off < to)) {
            arb_msg msg = {m->data, m->len, (uint16_t)topic, 0, m->key, partition, off};
            int rc = fn(user, &msg);
            if (rc)
                return rc;
        }
        off++;
    }
    return ARB_OK;
}

static int count_one(void *user, const arb_msg *msg)
{
    (void)msg;
    ++*(int64_t *)user;
    return ARB_OK;
}

static int st_watermarks(arb_ctx *c, int topic, int partition, int64_t timeout_ns, int64_t *lo,
                         int64_t *hi)
{
    (void)c, (void)timeout_ns;
    if (!stored(topic))
        return ARB_ENOENT;
    if (partition < 0 || (uint32_t)partition >= parts_of(topic))
        return ARB_ENOENT;
    *hi = 0;
    each_record(topic, partition, 0, -1, count_one, hi);
    *lo = topic == ARB_TOPIC_ORDER_EVENTS && low_of_events < *hi ? low_of_events : 0;
    return ARB_OK;
}

static int st_read_range(arb_ctx *c, int topic, int partition, int64_t from, int64_t to,
                         int64_t timeout_ns, arb_read_fn fn, void *user)
{
    int64_t lo, hi;
    int rc = st_watermarks(c, topic, partition, timeout_ns, &lo, &hi);
    if (rc)
        return rc;
    return each_record(topic, partition, from > lo ? from : lo, to < 0 ? hi : to, fn, user);
}

typedef struct last_rec {
    void *bytes;
    size_t len;
    int64_t offset;
} last_rec;

static int keep_last(void *user, const arb_msg *msg)
{
    last_rec *l = user;
    free(l->bytes);
    l->bytes = malloc(msg->len);
    memcpy(l->bytes, msg->data, msg->len);
    l->len = msg->len;
    l->offset = msg->offset;
    return ARB_OK;
}

static int st_read_last(arb_ctx *c, int topic, int partition, int64_t timeout_ns, void **bytes,
                        size_t *len, int64_t *offset)
{
    (void)c, (void)timeout_ns;
    if (!stored(topic))
        return ARB_ENOENT;
    last_rec l = {NULL, 0, -1};
    each_record(topic, partition, 0, -1, keep_last, &l);
    if (!l.bytes)
        return ARB_ENOENT;
    *bytes = l.bytes;
    *len = l.len;
    *offset = l.offset;
    return ARB_OK;
}

static int st_partition_of(arb_ctx *c, int topic, uint64_t key, int64_t timeout_ns,
                           int32_t *partition)
{
    (void)c, (void)timeout_ns;
    if (!stored(topic))
        return ARB_ENOENT;
    *partition = part_of(topic, key);
    return ARB_OK;
}

static uint64_t run_id = 77;

static int st_run_info(arb_ctx *c, arb_run_info *out)
{
    (void)c;
    memset(out, 0, sizeof *out);
    out->id = run_id;
    return ARB_OK;
}

/* ---- a history: orders coming and going, fills and their trades ---- */

typedef struct live_order {
    uint64_t id, account;
    int inst;
    uint8_t side, type, tif, flags;
    int64_t price, qty, filled;
} live_order;

typedef struct history {
    uint64_t rng;
    uint64_t seq, trade_seq;
    int64_t ts;
    uint64_t next_own, next_other;
    live_order live[512];
    size_t nlive;
    uint8_t recent[8][ARB_ORDER_EVENT_LEN]; /* for repeats */
    uint64_t recent_key[8];
    size_t nrecent;
    /* Live, as the gateway sees it: POSTs of its orders before the matcher
     * answers (NULL: no POSTs, only events). */
    gw_read_model *posts;
    uint64_t unanswered;
} history;

static uint32_t rnd(history *h, uint32_t n)
{
    h->rng = h->rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(h->rng >> 33) % n;
}

static void publish_event(history *h, const live_order *o, int kind, int64_t leaves,
                          int64_t last_qty, int reason)
{
    arb_order_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = (uint8_t)kind;
    ev.reason = (uint8_t)reason;
    ev.side = o->side, ev.type = o->type, ev.tif = o->tif, ev.flags = o->flags | ARB_EVF_LAST;
    arb_fixstr_set(ev.venue, ARB_VENUE_LEN, items[o->inst].venue);
    arb_fixstr_set(ev.symbol, ARB_SYMBOL_LEN, items[o->inst].symbol);
    ev.order_id = o->id;
    ev.account = o->account;
    ev.price = o->price;
    ev.qty = o->qty;
    ev.leaves_qty = leaves;
    ev.filled_qty = o->filled;
    if (last_qty) {
        ev.last_px = o->price;
        ev.last_qty = last_qty;
        ev.trade_id = ++h->trade_seq;
        ev.fee = 3 + (int64_t)last_qty;
        ev.liquidity = ARB_LIQ_MAKER;
    }
    ev.ts = (h->ts += 1000 + rnd(h, 5000));
    ev.seq = ++h->seq;
    uint8_t buf[ARB_ORDER_EVENT_LEN];
    uint32_t n = arb_order_event_encode(&ev, buf, sizeof buf);
    assert_int_equal(arb_publish(ctx, ARB_TOPIC_ORDER_EVENTS, o->account, buf, n), ARB_OK);
    memcpy(h->recent[h->nrecent % 8], buf, n);
    h->recent_key[h->nrecent++ % 8] = o->account;
}

static void publish_trade(history *h, int inst, uint64_t buyer, uint64_t seller, int64_t price,
                          int64_t qty, uint64_t trade_id)
{
    arb_trade t;
    memset(&t, 0, sizeof t);
    arb_fixstr_set(t.venue, ARB_VENUE_LEN, items[inst].venue);
    arb_fixstr_set(t.symbol, ARB_SYMBOL_LEN, items[inst].symbol);
    t.trade_id = trade_id;
    t.price = price;
    t.qty = qty;
    t.buy_order_id = 11, t.sell_order_id = 12;
    t.buy_account = buyer;
    t.sell_account = seller;
    t.ts = h->ts;
    t.seq = trade_id;
    t.aggressor = ARB_SIDE_SELL;
    t.buy_fee = 2, t.sell_fee = -1;
    uint8_t buf[ARB_TRADE_LEN];
    uint32_t n = arb_trade_encode(&t, buf, sizeof buf);
    assert_int_equal(arb_publish(ctx, ARB_TOPIC_TRADE_EXECUTED, items[inst].key, buf, n), ARB_OK);
}

static const uint64_t accounts[] = {1001, 1002, 1003, 10, 11};

/* One step of the market. */
static void step(history *h)
{
    uint32_t r = rnd(h, 100);
    if (r < 35 || h->nlive == 0) {
        live_order o;
        int own = rnd(h, 10) < 7;
        o.id = own ? SPACE << 48 | h->next_own++ : OTHER << 48 | h->next_other++;
        o.account = accounts[rnd(h, 5)];
        o.inst = (int)rnd(h, 2);
        o.side = (uint8_t)(1 + rnd(h, 2));
        o.type = ARB_ORD_LIMIT;
        o.tif = rnd(h, 5) ? ARB_TIF_GTC : ARB_TIF_IOC;
        o.flags = rnd(h, 10) ? 0 : ARB_ORDF_POST_ONLY;
        o.price = 10000 + rnd(h, 50);
        o.qty = 1 + rnd(h, 20);
        o.filled = 0;
        if (own && h->posts) {
            gw_order_request rq;
            memset(&rq, 0, sizeof rq);
            rq.instrument = &items[o.inst];
            rq.side = o.side, rq.type = o.type, rq.tif = o.tif, rq.flags = o.flags;
            rq.price = o.price, rq.qty = o.qty;
            snprintf(rq.client_order_id, sizeof rq.client_order_id, "c%llu",
                     (unsigned long long)o.id);
            gw_order *p = gw_rm_order_add(h->posts, o.id, o.account, &rq, h->ts + 7);
            assert_non_null(p);
            p->placed_ns = 12345;
            if (rnd(h, 10) == 0) {
                h->unanswered++; /* the matcher never answers */
                return;
            }
        }
        uint32_t how = rnd(h, 10);
        if (how == 0)
            publish_event(h, &o, ARB_EV_REJECTED, 0, 0, ARB_R_PRICE_BAND);
        else if (o.tif == ARB_TIF_IOC)
            publish_event(h, &o, ARB_EV_EXPIRED, 0, 0, ARB_R_NO_LIQUIDITY);
        else if (h->nlive < 512) {
            publish_event(h, &o, ARB_EV_ACCEPTED, o.qty, 0, 0);
            h->live[h->nlive++] = o;
        }
        return;
    }
    size_t k = rnd(h, (uint32_t)h->nlive);
    live_order *o = &h->live[k];
    int done = 0;
    if (r < 60) {
        int64_t left = o->qty - o->filled;
        int64_t q = 1 + rnd(h, (uint32_t)left);
        o->filled += q;
        done = o->filled == o->qty;
        publish_event(h, o, done ? ARB_EV_FILLED : ARB_EV_PARTIAL, o->qty - o->filled, q, 0);
        uint64_t other = accounts[3 + rnd(h, 2)];
        publish_trade(h, o->inst, o->side == ARB_SIDE_BUY ? o->account : other,
                      o->side == ARB_SIDE_BUY ? other : o->account, o->price, q, h->trade_seq);
    } else if (r < 70) {
        publish_event(h, o, ARB_EV_CANCELLED, 0, 0, ARB_R_USER_CANCEL);
        done = 1;
    } else if (r < 78) {
        o->price += 1;
        o->qty = o->filled + 1 + rnd(h, 10);
        publish_event(h, o, ARB_EV_REPLACED, o->qty - o->filled, 0, 0);
    } else if (r < 84) {
        /* A cancel the matcher refused: the order stands. */
        live_order copy = *o;
        publish_event(h, &copy, ARB_EV_REJECTED, 0, 0, ARB_R_UNKNOWN_ORDER);
    } else if (r < 90 && h->nrecent) {
        /* A record again, as after a matcher's replay: ignored as stale. */
        size_t i = rnd(h, (uint32_t)(h->nrecent < 8 ? h->nrecent : 8));
        assert_int_equal(arb_publish(ctx, ARB_TOPIC_ORDER_EVENTS, h->recent_key[i], h->recent[i],
                                     ARB_ORDER_EVENT_LEN),
                         ARB_OK);
    } else {
        /* The agents trade among themselves. */
        publish_trade(h, (int)rnd(h, 2), 10, 11, 10000 + rnd(h, 50), 1 + rnd(h, 9), ++h->trade_seq);
    }
    if (done)
        h->live[k] = h->live[--h->nlive];
}

static void steps(history *h, int n)
{
    for (int i = 0; i < n; i++)
        step(h);
}

/* ---- the gateway's side ---- */

static gw_read_model *new_model(size_t order_history)
{
    gw_read_model *rm = gw_rm_new(&table, 16, order_history);
    assert_non_null(rm);
    return rm;
}

/* A start: the rebuild (from the newest snapshot when with_snapshots). */
static gw_read_model *start(size_t order_history, int with_snapshots, gw_recovery *r)
{
    gw_read_model *rm = new_model(order_history);
    assert_int_equal(gw_recover(ctx, &rm, SPACE, with_snapshots ? snap_topic : -1, r), ARB_OK);
    return rm;
}

/* Live delivery, as gateway_plugin.c does it, of every stored record from
 * log position *fed on. */
static void feed_live(gw_read_model *rm, gw_recovery *r, size_t *fed)
{
    int64_t *offs = calloc(2 * event_parts, sizeof *offs); /* next offset per topic/partition */
    for (size_t i = 0; i < fh->nlog; i++) {
        fh_msg *m = &fh->log[i];
        if (m->topic != ARB_TOPIC_ORDER_EVENTS && m->topic != ARB_TOPIC_TRADE_EXECUTED)
            continue;
        int p = part_of(m->topic, m->key);
        int64_t off = offs[(m->topic == ARB_TOPIC_TRADE_EXECUTED) * event_parts + (size_t)p]++;
        if (i < *fed)
            continue;
        arb_msg msg = {m->data, m->len, (uint16_t)m->topic, 0, m->key, p, off};
        if (m->topic == ARB_TOPIC_ORDER_EVENTS) {
            if (arb_replay_seen(&r->events, &msg))
                continue;
            gw_recovery_mark(r, m->topic, &msg);
            arb_order_event ev;
            if (arb_order_event_decode(m->data, m->len, &ev))
                continue;
            gw_order *o;
            gw_adopt(rm, SPACE, &ev);
            gw_rm_apply_event(rm, &ev, &o);
        } else {
            if (arb_replay_seen(&r->trades, &msg))
                continue;
            gw_recovery_mark(r, m->topic, &msg);
            arb_trade t;
            if (arb_trade_decode(m->data, m->len, &t) == ARB_OK)
                gw_rm_apply_trade(rm, &t);
        }
    }
    *fed = fh->nlog;
    free(offs);
}

static void snapshot(gw_recovery *r, const gw_read_model *rm)
{
    int64_t ns;
    assert_int_equal(gw_snapshot_take(ctx, r, rm, &ns), ARB_OK);
}

/* ---- comparing models ---- */

static void assert_orders_equal(const gw_order *a, const gw_order *b)
{
    if (a->account != b->account || a->instrument != b->instrument || a->side != b->side ||
        a->type != b->type || a->tif != b->tif || a->flags != b->flags || a->status != b->status ||
        a->reason != b->reason || a->n_fills != b->n_fills || a->price != b->price ||
        a->qty != b->qty || a->leaves_qty != b->leaves_qty || a->filled_qty != b->filled_qty ||
        a->created_ts != b->created_ts || a->updated_ts != b->updated_ts ||
        a->last_seq != b->last_seq || strcmp(a->client_order_id, b->client_order_id))
        fail_msg("order %llx differs: status %u/%u filled %lld/%lld leaves %lld/%lld created "
                 "%lld/%lld updated %lld/%lld seq %llu/%llu fills %u/%u cid '%s'/'%s'",
                 (unsigned long long)a->order_id, a->status, b->status, (long long)a->filled_qty,
                 (long long)b->filled_qty, (long long)a->leaves_qty, (long long)b->leaves_qty,
                 (long long)a->created_ts, (long long)b->created_ts, (long long)a->updated_ts,
                 (long long)b->updated_ts, (unsigned long long)a->last_seq,
                 (unsigned long long)b->last_seq, a->n_fills, b->n_fills, a->client_order_id,
                 b->client_order_id);
    for (uint16_t i = 0; i < a->n_fills; i++) {
        const gw_fill *x = &a->fills[i], *y = &b->fills[i];
        assert_true(x->trade_id == y->trade_id && x->price == y->price && x->qty == y->qty &&
                    x->ts == y->ts && x->fee == y->fee && x->liquidity == y->liquidity);
    }
}

static size_t with_positions(const gw_read_model *rm)
{
    size_t n = 0;
    for (size_t k = 0; k < rm->n_accounts; k++)
        n += rm->account_list[k]->positions != NULL;
    return n;
}

/* Equal models. same_order: also the order of the retention FIFO and of
 * each open list (a history on one partition, read in one order). */
static void assert_models_equal(const gw_read_model *a, const gw_read_model *b, int same_order)
{
    assert_int_equal(a->orders.count, b->orders.count);
    for (size_t i = 0; i < a->orders.cap; i++) {
        if (!a->orders.slots[i].key)
            continue;
        const gw_order *o = a->orders.slots[i].val;
        const gw_order *p = gw_rm_order(b, o->order_id);
        if (!p)
            fail_msg("order %llx is missing", (unsigned long long)o->order_id);
        assert_orders_equal(o, p);
    }
    assert_int_equal(a->done_count, b->done_count);
    if (same_order)
        for (const gw_order *x = a->done_head, *y = b->done_head; x || y;
             x = x->done_next, y = y->done_next)
            assert_true(x && y && x->order_id == y->order_id);
    assert_int_equal(with_positions(a), with_positions(b));
    for (size_t k = 0; k < a->n_accounts; k++) {
        const gw_account *x = a->account_list[k];
        gw_account *y = gw_rm_account((gw_read_model *)b, x->id, 0);
        if (x->positions) {
            assert_true(y && y->positions);
            for (size_t i = 0; i < table.count; i++) {
                const gw_position *p = &x->positions[i], *q = &y->positions[i];
                assert_true(p->position == q->position && p->cash == q->cash &&
                            p->fees == q->fees && p->bought == q->bought && p->sold == q->sold &&
                            p->trades == q->trades);
            }
        }
        size_t open = x->open_count;
        assert_int_equal(open, y ? y->open_count : 0);
        for (const gw_order *o = x->open_head, *q = y ? y->open_head : NULL; o;
             o = o->open_next, q = q ? q->open_next : NULL) {
            const gw_order *p = gw_rm_order(b, o->order_id);
            assert_true(p && !gw_status_terminal(p->status) && p->account == x->id);
            if (same_order)
                assert_true(q && q->order_id == o->order_id);
        }
    }
    for (size_t i = 0; i < table.count; i++) {
        const gw_trade_ring *x = &a->trades[i], *y = &b->trades[i];
        assert_int_equal(x->count, y->count);
        assert_int_equal(x->last_px, y->last_px);
        for (size_t k = 1; k <= x->count; k++) {
            const gw_trade_rec *p = &x->items[(x->head + x->cap - k) % x->cap];
            const gw_trade_rec *q = &y->items[(y->head + y->cap - k) % y->cap];
            assert_true(p->trade_id == q->trade_id && p->price == q->price && p->qty == q->qty &&
                        p->ts == q->ts && p->buy_account == q->buy_account &&
                        p->aggressor == q->aggressor);
        }
    }
}

/* ---- setup ---- */

static int setup(void **state)
{
    (void)state;
    gw_test_instruments(items);
    fh = fh_new();
    fh->api.watermarks = st_watermarks;
    fh->api.read_range = st_read_range;
    fh->api.read_last = st_read_last;
    fh->api.partition_of = st_partition_of;
    fh->api.run_info = st_run_info;
    fc = fh_ctx_new(fh, "gateway");
    ctx = &fc->ctx;
    snap_topic = arb_topic(ctx, "gateway_snapshots");
    event_parts = 2;
    snapshots_stored = 1;
    low_of_events = 0;
    run_id = 77;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fh_free(fh);
    free(fc);
    return 0;
}

static history new_history(uint64_t seed)
{
    history h;
    memset(&h, 0, sizeof h);
    h.rng = seed;
    h.ts = 1700000000000000000ll;
    h.next_own = 1;
    h.next_other = 1;
    return h;
}

/* ---- tests ---- */

static void snapshot_then_the_rest_equals_a_rebuild_from_everything(void **state)
{
    (void)state;
    history h = new_history(1);
    steps(&h, 3000);
    gw_recovery r1;
    gw_read_model *first = start(100000, 1, &r1);
    assert_false(r1.from_snapshot);
    snapshot(&r1, first);
    steps(&h, 1500);

    gw_recovery r2, r3;
    gw_read_model *restored = start(100000, 1, &r2);
    gw_read_model *full = start(100000, 0, &r3);
    assert_true(r2.from_snapshot);
    /* Only what came after the snapshot was read. */
    assert_int_equal(r2.events.records + r2.trades.records + r1.events.records + r1.trades.records,
                     r3.events.records + r3.trades.records);
    assert_true(full->orders.count > 500);
    assert_models_equal(full, restored, 0);
    assert_models_equal(restored, full, 0);
    gw_rm_free(first);
    gw_rm_free(restored);
    gw_rm_free(full);
    gw_recovery_free(&r1);
    gw_recovery_free(&r2);
    gw_recovery_free(&r3);
}

/* One partition: one order of reading, so the retention FIFO (and what it
 * forgot) and the open lists come out in the same order too. */
static void on_one_partition_even_the_order_of_forgetting_is_the_same(void **state)
{
    (void)state;
    event_parts = 1;
    history h = new_history(2);
    steps(&h, 2000);
    gw_recovery r1, r2, r3;
    gw_read_model *first = start(200, 1, &r1);
    assert_int_equal(first->done_count, 200);
    snapshot(&r1, first);
    steps(&h, 700);
    gw_read_model *restored = start(200, 1, &r2);
    gw_read_model *full = start(200, 0, &r3);
    assert_true(r2.from_snapshot);
    assert_models_equal(full, restored, 1);
    gw_rm_free(first);
    gw_rm_free(restored);
    gw_rm_free(full);
    gw_recovery_free(&r1);
    gw_recovery_free(&r2);
    gw_recovery_free(&r3);
}

/* Taken of a model built live: POSTs first (client ids, the gateway's own
 * time), some never answered; then snapshots at two points. */
static void a_snapshot_of_the_live_models_holds_what_a_rebuild_would(void **state)
{
    (void)state;
    history h = new_history(3);
    gw_recovery live_r;
    gw_read_model *live = start(100000, 1, &live_r); /* nothing stored yet */
    assert_true(live_r.marks_ok);
    h.posts = live;
    size_t fed = 0;
    steps(&h, 1500);
    feed_live(live, &live_r, &fed);
    snapshot(&live_r, live);
    steps(&h, 1500);
    feed_live(live, &live_r, &fed);
    snapshot(&live_r, live);
    steps(&h, 500);
    feed_live(live, &live_r, &fed);
    assert_true(h.unanswered > 10);

    gw_recovery r2, r3;
    gw_read_model *restored = start(100000, 1, &r2);
    gw_read_model *full = start(100000, 0, &r3);
    assert_true(r2.from_snapshot);
    assert_models_equal(full, restored, 0);
    /* The live model also has the orders still waiting for the matcher. */
    assert_int_equal(live->orders.count, full->orders.count + h.unanswered);
    gw_rm_free(live);
    gw_rm_free(restored);
    gw_rm_free(full);
    gw_recovery_free(&live_r);
    gw_recovery_free(&r2);
    gw_recovery_free(&r3);
}

static void bytes_decode_to_a_model_that_encodes_to_the_same_bytes(void **state)
{
    (void)state;
    history h = new_history(4);
    steps(&h, 2000);
    gw_recovery r;
    gw_read_model *rm = start(100000, 0, &r);
    gw_snapshot_id id = {77, SPACE, gw_instruments_digest(&table), 16, 100000};
    uint8_t *a, *b;
    size_t alen, blen;
    assert_int_equal(gw_snapshot_encode(rm, &id, &r.at_events, &r.at_trades, &a, &alen), ARB_OK);
    gw_read_model *back;
    gw_marks ev, tr;
    char why[128];
    assert_int_equal(gw_snapshot_decode(a, alen, &id, &table, &back, &ev, &tr, why, sizeof why),
                     ARB_OK);
    assert_int_equal(ev.nparts, r.at_events.nparts);
    assert_memory_equal(ev.next, r.at_events.next, ev.nparts * sizeof *ev.next);
    assert_int_equal(gw_snapshot_encode(back, &id, &ev, &tr, &b, &blen), ARB_OK);
    assert_int_equal(alen, blen);
    assert_memory_equal(a, b, alen);
    assert_models_equal(rm, back, 1);
    /* Well under a hundred bytes an order. */
    assert_true(alen < rm->orders.count * 100 + 16 * 2 * 100);
    free(a);
    free(b);
    gw_marks_free(&ev);
    gw_marks_free(&tr);
    gw_rm_free(back);
    gw_rm_free(rm);
    gw_recovery_free(&r);
}

static void a_damaged_or_foreign_snapshot_is_refused_whole(void **state)
{
    (void)state;
    history h = new_history(5);
    steps(&h, 400);
    gw_recovery r;
    gw_read_model *rm = start(100000, 0, &r);
    gw_snapshot_id id = {77, SPACE, gw_instruments_digest(&table), 16, 100000};
    uint8_t *a;
    size_t alen;
    assert_int_equal(gw_snapshot_encode(rm, &id, &r.at_events, &r.at_trades, &a, &alen), ARB_OK);
    gw_read_model *back;
    gw_marks ev, tr;
    char why[128];
    /* Cut anywhere: refused, nothing left allocated (ASan says so). */
    for (size_t n = 0; n < alen; n++) {
        assert_int_equal(gw_snapshot_decode(a, n, &id, &table, &back, &ev, &tr, why, sizeof why),
                         ARB_EBADMSG);
        assert_null(back);
        assert_true(why[0]);
    }
    /* Any byte changed: refused, or a model (a changed quantity is still
     * a snapshot); never a crash. */
    for (size_t n = 0; n < alen; n++) {
        a[n] ^= 0x41;
        if (gw_snapshot_decode(a, alen, &id, &table, &back, &ev, &tr, why, sizeof why) == ARB_OK) {
            gw_rm_free(back);
            gw_marks_free(&ev);
            gw_marks_free(&tr);
        }
        a[n] ^= 0x41;
    }
    gw_snapshot_id other = id;
    other.id_space = 9;
    assert_int_equal(gw_snapshot_decode(a, alen, &other, &table, &back, &ev, &tr, why, sizeof why),
                     ARB_EREFUSED);
    assert_non_null(strstr(why, "id space"));
    other = id;
    other.run = 78;
    assert_int_equal(gw_snapshot_decode(a, alen, &other, &table, &back, &ev, &tr, why, sizeof why),
                     ARB_EREFUSED);
    other = id;
    other.order_history = 5;
    assert_int_equal(gw_snapshot_decode(a, alen, &other, &table, &back, &ev, &tr, why, sizeof why),
                     ARB_EREFUSED);
    free(a);
    gw_rm_free(rm);
    gw_recovery_free(&r);
}

/* A snapshot that cannot be used: the rebuild reads everything, and the
 * models are what that gives. */
static void an_unusable_snapshot_means_a_rebuild_from_everything(void **state)
{
    (void)state;
    history h = new_history(6);
    steps(&h, 600);
    gw_recovery r1, r2, r3;
    gw_read_model *first = start(100000, 1, &r1);
    snapshot(&r1, first);
    steps(&h, 100);
    /* Of another run (the broker's topics kept from before). */
    run_id = 78;
    gw_read_model *again = start(100000, 1, &r2);
    gw_read_model *full = start(100000, 0, &r3);
    assert_false(r2.from_snapshot);
    assert_models_equal(full, again, 1);
    gw_rm_free(again);
    gw_recovery_free(&r2);
    run_id = 77;
    /* Standing past the end of the log (not the log it was taken in). */
    fh_msg *m = fh_nth(fh, snap_topic, 0);
    assert_int_equal(fh_count(fh, snap_topic), 1);
    event_parts = 1; /* fewer partitions than the marks */
    again = start(100000, 1, &r2);
    assert_false(r2.from_snapshot);
    gw_rm_free(again);
    gw_recovery_free(&r2);
    event_parts = 2;
    /* Damaged on its way. */
    m->data[m->len - 1] ^= 0xff;
    again = start(100000, 1, &r2);
    assert_false(r2.from_snapshot);
    assert_models_equal(full, again, 1);
    gw_rm_free(again);
    gw_recovery_free(&r2);
    /* A topic that is not stored: no snapshots at all. */
    snapshots_stored = 0;
    again = start(100000, 1, &r2);
    assert_int_equal(r2.topic, -1);
    int64_t ns;
    assert_int_equal(gw_snapshot_take(ctx, &r2, again, &ns), ARB_ESTATE);
    gw_rm_free(again);
    gw_recovery_free(&r2);
    gw_rm_free(first);
    gw_rm_free(full);
    gw_recovery_free(&r1);
    gw_recovery_free(&r3);
}

/* Big enough for several chunks. A second snapshot's publish that stops
 * after its first chunk (the process killed meanwhile), or that the bus
 * refuses: the rebuild uses the whole one before it. */
static void a_snapshot_cut_short_leaves_the_one_before_it_in_use(void **state)
{
    (void)state;
    history h = new_history(7);
    steps(&h, 40000);
    gw_recovery r1, r2, r3, r4;
    gw_read_model *first = start(100000, 1, &r1);
    snapshot(&r1, first);
    assert_true(gw_snap_chunks(r1.last_bytes) >= 2);
    assert_int_equal(fh_count(fh, snap_topic), gw_snap_chunks(r1.last_bytes));
    steps(&h, 300);

    gw_read_model *second = start(100000, 1, &r2);
    assert_true(r2.from_snapshot);
    uint8_t *bytes;
    size_t len;
    assert_int_equal(gw_snapshot_encode(second, &r2.id, &r2.at_events, &r2.at_trades, &bytes, &len),
                     ARB_OK);
    uint8_t *rec = malloc(GW_SNAP_CHUNK_HDR + GW_SNAP_CHUNK_DATA);
    size_t n = gw_snap_chunk_put(rec, SPACE, 99, bytes, len, 0);
    assert_int_equal(arb_publish(ctx, snap_topic, r2.key, rec, n), ARB_OK);
    free(rec);
    free(bytes);
    fh->publish_fails = 1;
    int64_t ns;
    assert_int_equal(gw_snapshot_take(ctx, &r2, second, &ns), ARB_EFULL);
    steps(&h, 100);

    gw_read_model *full = start(100000, 0, &r3);
    gw_read_model *restored = start(100000, 1, &r4);
    assert_true(r4.from_snapshot);
    assert_int_equal(gw_marks_sum(&r4.snap_events), gw_marks_sum(&r1.at_events));
    assert_models_equal(full, restored, 0);
    gw_rm_free(first);
    gw_rm_free(second);
    gw_rm_free(full);
    gw_rm_free(restored);
    gw_recovery_free(&r1);
    gw_recovery_free(&r2);
    gw_recovery_free(&r3);
    gw_recovery_free(&r4);
}

static void chunks_put_together_only_in_order_and_whole(void **state)
{
    (void)state;
    size_t total = 2 * GW_SNAP_CHUNK_DATA + 100;
    uint8_t *bytes = malloc(total);
    for (size_t i = 0; i < total; i++)
        bytes[i] = (uint8_t)(i * 7);
    uint8_t *recs[3];
    size_t lens[3];
    assert_int_equal(gw_snap_chunks(total), 3);
    for (uint32_t i = 0; i < 3; i++) {
        recs[i] = malloc(GW_SNAP_CHUNK_HDR + GW_SNAP_CHUNK_DATA);
        lens[i] = gw_snap_chunk_put(recs[i], SPACE, 5, bytes, total, i);
    }
    gw_snap_whole w = {0};
    gw_snap_chunk c;
    for (uint32_t i = 0; i < 3; i++) {
        assert_int_equal(gw_snap_chunk_get(recs[i], lens[i], &c), ARB_OK);
        assert_int_equal(gw_snap_whole_add(&w, &c), ARB_OK);
    }
    assert_int_equal(w.next, 3);
    assert_int_equal(w.len, total);
    assert_memory_equal(w.bytes, bytes, total);
    gw_snap_whole_free(&w);
    /* Out of order, or a chunk of another snapshot: refused. */
    assert_int_equal(gw_snap_chunk_get(recs[1], lens[1], &c), ARB_OK);
    assert_int_equal(gw_snap_whole_add(&w, &c), ARB_EBADMSG);
    assert_int_equal(gw_snap_chunk_get(recs[0], lens[0], &c), ARB_OK);
    assert_int_equal(gw_snap_whole_add(&w, &c), ARB_OK);
    arb_put_u64(recs[1] + 16, 6);
    assert_int_equal(gw_snap_chunk_get(recs[1], lens[1], &c), ARB_OK);
    assert_int_equal(gw_snap_whole_add(&w, &c), ARB_EBADMSG);
    gw_snap_whole_free(&w);
    /* Short, or not a chunk. */
    assert_int_equal(gw_snap_chunk_get(recs[2], GW_SNAP_CHUNK_HDR - 1, &c), ARB_EBADMSG);
    recs[2][0] = 'X';
    assert_int_equal(gw_snap_chunk_get(recs[2], lens[2], &c), ARB_EBADMSG);
    for (int i = 0; i < 3; i++)
        free(recs[i]);
    free(bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(snapshot_then_the_rest_equals_a_rebuild_from_everything,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(on_one_partition_even_the_order_of_forgetting_is_the_same,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_snapshot_of_the_live_models_holds_what_a_rebuild_would,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(bytes_decode_to_a_model_that_encodes_to_the_same_bytes,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_damaged_or_foreign_snapshot_is_refused_whole, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(an_unusable_snapshot_means_a_rebuild_from_everything, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_snapshot_cut_short_leaves_the_one_before_it_in_use, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(chunks_put_together_only_in_order_and_whole, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

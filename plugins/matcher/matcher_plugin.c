/*
 * matcher_plugin.c -- the matcher service: the order book engine (book.c)
 * on the bus. It consumes order_commands and publishes order_events (keyed
 * by account), trade_executed and market_data (keyed by instrument).
 *
 *   [plugin matcher]
 *   load = matcher.so
 *   instruments = XA:BTCUSD XB:BTCUSD ; books to serve (default: every
 *                                     ; [instrument] section); commands for
 *                                     ; other configured books are left to
 *                                     ; the matcher that serves them
 *   stp = cancel_resting              ; or cancel_incoming, none: self-trade
 *                                     ; prevention when an order names none
 *   max_open_orders = 0               ; resting orders per account, 0 = no limit
 *                                     ; (per order_commands partition over Kafka)
 *   snapshot_levels = 0               ; levels per side in a snapshot, 0 = all
 *   order_capacity = 65536            ; resting orders allocated up front
 *                                     ; (per partition over Kafka)
 *   stamp = matcher                   ; matcher: outputs carry the host's time
 *                                     ; (simulated time in a sim); command:
 *                                     ; they carry the command's ts (replay)
 *   snapshot_topic = matcher_snapshots     ; scale-out over Kafka (below)
 *   snapshot_interval_ms = 1000            ; 0: only when a partition leaves
 *   snapshot_read_timeout_ms = 10000
 *
 * The admin endpoint serves GET /plugins/<instance>/book?venue=XA&symbol=
 * BTCUSD[&depth=N] as JSON (arbctl book XA BTCUSD); an ARB_CMD_SNAPSHOT
 * command on order_commands answers with a full-depth ARB_MD_SNAPSHOT.
 * Hot reload carries the whole engine across, and any output still waiting
 * for the bus (save/restore). Trade ids are unique across books because each book's
 * id is its instrument's position in the shared instrument table: append new
 * instruments at the end of that file, never reorder it.
 *
 * If the bus refuses a record (a full queue), the output waits here, in
 * order, and a timer retries; nothing is dropped unless the backlog passes
 * its cap.
 *
 * Scale-out. Commands published in process (partition -1) all go to one
 * engine, as in a monolith. Commands that come through Kafka go to one
 * engine per order_commands partition, so several matchers in one consumer
 * group split the books by partition, and a partition's books move whole:
 *   - Every snapshot_interval_ms each owned partition's books are captured
 *     with the offset of the last command they applied, and published one
 *     interval later (by then the output they contain has reached Kafka) on
 *     snapshot_topic, keyed by an instrument of the partition so the record
 *     lands on the same partition number. A partition taken away publishes a
 *     final snapshot at once (the transport flushes before it commits).
 *   - A partition given to this matcher is rebuilt from the last record of
 *     its snapshot partition (checked: it must name the same partition) and
 *     the input after it (a seek to offset + 1); with none, from the start.
 *   - Replay does not repeat output. trade_executed and market_data share
 *     order_commands' key and partition count, and the idempotent producer
 *     keeps each partition a gap-free prefix of what was produced; so the
 *     last record of trade_executed (and of market_data) partition P is the
 *     newest the previous owner got out. Replay suppresses trades until it
 *     regenerates that trade id (ids are a pure function of the input),
 *     market data until it regenerates that record (book, sequence, kind),
 *     and order events until both points are passed. A snapshot found ahead
 *     of the trades in Kafka (its output was lost in a crash) is not used:
 *     the partition is rebuilt from the start of its input.
 *   What remains after a kill -9: order events are keyed by account, on other
 *   partitions, so the events of the last commands before the crash may be
 *   repeated (those after the newest trade and market data record that made
 *   it out; in practice rejects) or, if they were still in the dead
 *   producer's queue while a later trade got out, lost. Both are bounded by
 *   what was in flight at the crash; a repeated event is byte-identical
 *   (same order id and per-partition seq) so consumers dedupe on
 *   (venue, symbol, order_id, seq).
 *
 * Not here: the matching rules (book.h) or any Kafka/host detail.
 */
#include <arb/instrument.h>
#include <arb/plugin.h>
#include <arb/wire.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <sys/queue.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "book.h"

#define BACKLOG_CAP (256u << 20) /* bytes of unpublished output before dropping */
#define RETRY_NS 1000000ull
#define DECODE_LOG_INTERVAL_NS 1000000000ll
/* One command in this many is timed for matcher_command_ns. */
#define MATCHER_TIME_EVERY 16u
#define MS_NS 1000000ll

typedef struct book_metrics {
    arb_gauge *orders, *bid_levels, *ask_levels;
} book_metrics;

/* Output the bus refused for now, oldest first. */
typedef struct backlog {
    uint8_t *bytes; /* records back to back, each: u16 topic | u32 len | u64 key | data */
    size_t len, cap, head;
    uint64_t records;
} backlog;

/* Where replay after a takeover may start publishing again: the newest
 * record of a partition the previous owner got into Kafka. */
typedef struct replay_fence {
    int active;
    uint64_t trade_id; /* trade_executed: the newest trade */
    char venue[ARB_VENUE_LEN], symbol[ARB_SYMBOL_LEN];
    uint64_t md_seq; /* market_data: the newest record's book and sequence */
    uint8_t md_kind;
} replay_fence;

/* order_events are keyed by account, so one partition's books emit to every
 * partition of that topic, interleaved with other owners' books. Per
 * partition of order_events: the seq of the newest event of these books the
 * previous owner got into Kafka after the replay's start, and every account
 * seen there. Replay holds back an event of an account seen up to its
 * partition's seq (per partition the producer keeps order, so all below
 * are in); an event of any other account never got out and is published. */
typedef struct account_part {
    uint64_t account;
    int32_t partition;
} account_part;

typedef struct event_fence {
    int active;
    uint32_t nparts;
    uint64_t *newest;   /* by order_events partition; 0: none */
    uint64_t max_seq;   /* the largest of them: past it the fence is done */
    account_part *seen; /* sorted by account */
    size_t nseen, cap;
} event_fence;

/* The books of one order_commands partition (partition -1: commands
 * published in process), and where their input stands. */
typedef struct partition_books {
    int32_t partition;
    book_engine *engine;
    int64_t applied;        /* offset of the last command applied; -1: none */
    int64_t snapped;        /* offset the last published snapshot covers; -1: none */
    uint64_t key;           /* an instrument key of the partition (routes snapshots); 0: none */
    uint64_t last_trade_id; /* the newest trade these books produced */
    uint8_t *staged;        /* a captured snapshot waiting one interval */
    size_t staged_len;
    int64_t staged_offset;
    int from_start; /* rebuilt from the start of its input (offset 0 comes first) */
    replay_fence trades, md;
    event_fence events;
} partition_books;

typedef struct matcher {
    arb_ctx *ctx;
    book_config cfg;
    char *names; /* the instruments setting, for engines made later */
    partition_books **parts;
    size_t n_parts, cap_parts;
    partition_books *local;  /* partition -1, always there (parts[0]) */
    partition_books **owner; /* by book index: the partition whose engine holds the live book */
    int partitioned;         /* Kafka partitions get engines of their own */
    int snap_topic;
    const char *snap_topic_name;
    int64_t snap_interval_ms, snap_read_timeout_ms;
    int snap_timer;
    int snap_checked;         /* the snapshot topic was checked at the first assignment */
    int unpartitioned_warned; /* said once that Kafka partitions share one engine */
    arb_instrument_table all; /* every configured instrument */
    arb_fee_tiers tiers;      /* [fee_tier ...] sections */
    int stamp_command;
    uint8_t *buf; /* encode buffer, ARB_WIRE_MAX bytes */
    backlog pending;
    int retry_timer;
    int64_t decode_logged_at;
    uint64_t decode_suppressed;
    uint32_t timed;       /* commands seen: one in MATCHER_TIME_EVERY is timed */
    book_metrics *book_m; /* by order_book_index */
    arb_counter *m_commands, *m_trades, *m_events, *m_md, *m_decode_errors, *m_not_ours;
    arb_counter *m_refused, *m_dropped;
    arb_counter *m_rejects[ARB_R_REASON_MAX + 1];
    arb_counter *m_snapshots, *m_restores, *m_suppressed, *m_repeated;
    arb_gauge *m_backlog, *m_partitions;
    arb_histogram *m_latency;
} matcher;

static int64_t mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* ---- config ---- */

static int parse_stp(const char *s, uint8_t *out)
{
    if (!strcmp(s, "cancel_resting"))
        *out = ARB_STP_CANCEL_RESTING;
    else if (!strcmp(s, "cancel_incoming"))
        *out = ARB_STP_CANCEL_INCOMING;
    else if (!strcmp(s, "none"))
        *out = ARB_STP_NONE;
    else
        return ARB_EINVAL;
    return ARB_OK;
}

/* Adds the books named in `instruments` (all when empty) to an engine.
 * `report` is set for the first engine, whose errors are config errors. */
static int add_books(matcher *m, book_engine *e, int report)
{
    const char *names = m->names;
    if (!names[0]) {
        for (size_t i = 0; i < m->all.count; i++)
            if (book_engine_add_instrument_id(e, &m->all.items[i], (uint32_t)i + 1))
                return report ? arb_cfg_reject(m->ctx, "instruments", "cannot add %s:%s",
                                               m->all.items[i].venue, m->all.items[i].symbol)
                              : ARB_EINVAL;
        return ARB_OK;
    }
    char *copy = strdup(names);
    if (!copy)
        return ARB_ENOMEM;
    int rc = ARB_OK;
    char *save = NULL;
    for (char *tok = strtok_r(copy, " \t,", &save); tok && !rc;
         tok = strtok_r(NULL, " \t,", &save)) {
        char venue[ARB_VENUE_LEN], symbol[ARB_SYMBOL_LEN];
        char v[ARB_VENUE_LEN + 1], s[ARB_SYMBOL_LEN + 1];
        const arb_instrument *in = NULL;
        if (!arb_instrument_parse_name(tok, venue, symbol))
            in = arb_instrument_find(&m->all, arb_fixstr(v, venue, ARB_VENUE_LEN),
                                     arb_fixstr(s, symbol, ARB_SYMBOL_LEN));
        if (!in)
            rc = report ? arb_cfg_reject(m->ctx, "instruments",
                                         "'%s' is not a configured [instrument VENUE:SYMBOL]", tok)
                        : ARB_EINVAL;
        else if (book_engine_add_instrument_id(e, in, (uint32_t)(in - m->all.items) + 1))
            rc = report ? arb_cfg_reject(m->ctx, "instruments", "'%s' is listed twice", tok)
                        : ARB_EINVAL;
    }
    free(copy);
    return rc;
}

/* A fresh engine with every book this matcher serves. */
static int engine_new(matcher *m, book_engine **out, int report)
{
    int rc = book_engine_new(&m->cfg, out);
    if (rc)
        return rc;
    if ((rc = book_engine_set_fee_tiers(*out, &m->tiers)) || (rc = add_books(m, *out, report))) {
        book_engine_free(*out);
        *out = NULL;
    }
    return rc;
}

/* ---- partitions and their engines ---- */

static void event_fence_clear(event_fence *f)
{
    free(f->newest);
    free(f->seen);
    memset(f, 0, sizeof *f);
}

/* Whether replay still holds back output the previous owner got out. */
static int fences_active(const partition_books *pb)
{
    return pb->trades.active || pb->md.active || pb->events.active;
}

static void partition_books_free(partition_books *pb)
{
    if (!pb)
        return;
    event_fence_clear(&pb->events);
    book_engine_free(pb->engine);
    free(pb->staged);
    free(pb);
}

static partition_books *partition_find(const matcher *m, int32_t partition)
{
    for (size_t i = 0; i < m->n_parts; i++)
        if (m->parts[i]->partition == partition)
            return m->parts[i];
    return NULL;
}

/* Adds an empty entry (no engine yet) for a partition. */
static partition_books *partition_add(matcher *m, int32_t partition)
{
    if (m->n_parts == m->cap_parts) {
        size_t cap = m->cap_parts ? 2 * m->cap_parts : 8;
        partition_books **p = realloc(m->parts, cap * sizeof *p);
        if (!p)
            return NULL;
        m->parts = p;
        m->cap_parts = cap;
    }
    partition_books *pb = calloc(1, sizeof *pb);
    if (!pb)
        return NULL;
    pb->partition = partition;
    pb->applied = pb->snapped = pb->staged_offset = -1;
    m->parts[m->n_parts++] = pb;
    if (m->m_partitions)
        arb_gauge_set(m->m_partitions, (int64_t)m->n_parts - 1);
    return pb;
}

static void partition_remove(matcher *m, partition_books *pb)
{
    size_t n = book_engine_book_count(pb->engine ? pb->engine : m->local->engine);
    for (size_t i = 0; m->owner && i < n; i++)
        if (m->owner[i] == pb)
            m->owner[i] = NULL;
    for (size_t i = 0; i < m->n_parts; i++)
        if (m->parts[i] == pb) {
            m->parts[i] = m->parts[--m->n_parts];
            break;
        }
    partition_books_free(pb);
    if (m->m_partitions)
        arb_gauge_set(m->m_partitions, (int64_t)m->n_parts - 1);
}

static void matcher_destroy(void *self);

static int matcher_create(arb_ctx *ctx, void **self)
{
    const char *stp_s, *names, *stamp, *snap_topic;
    int64_t max_open, snap_levels, capacity, snap_ms, snap_read_ms;
    book_config cfg = {0};
    int rc;
    if ((rc = arb_cfg_str(ctx, "stp", "cancel_resting", &stp_s)) ||
        (rc = arb_cfg_int(ctx, "max_open_orders", 0, 0, UINT32_MAX, &max_open)) ||
        (rc = arb_cfg_int(ctx, "snapshot_levels", 0, 0, ARB_MD_MAX_LEVELS / 2, &snap_levels)) ||
        (rc = arb_cfg_int(ctx, "order_capacity", 65536, 16, BOOK_MAX_ORDERS, &capacity)) ||
        (rc = arb_cfg_str(ctx, "instruments", "", &names)) ||
        (rc = arb_cfg_str(ctx, "stamp", "matcher", &stamp)) ||
        (rc = arb_cfg_str(ctx, "snapshot_topic", "matcher_snapshots", &snap_topic)) ||
        (rc = arb_cfg_int(ctx, "snapshot_interval_ms", 1000, 0, 3600000, &snap_ms)) ||
        (rc = arb_cfg_int(ctx, "snapshot_read_timeout_ms", 10000, 100, 600000, &snap_read_ms)))
        return rc;
    if (parse_stp(stp_s, &cfg.stp_default))
        return arb_cfg_reject(ctx, "stp", "'%s': use cancel_resting, cancel_incoming or none",
                              stp_s);
    if (strcmp(stamp, "matcher") && strcmp(stamp, "command"))
        return arb_cfg_reject(ctx, "stamp", "'%s': use matcher or command", stamp);
    if (!snap_topic[0])
        return arb_cfg_reject(ctx, "snapshot_topic", "must name a topic");
    cfg.max_open_orders = (uint32_t)max_open;
    cfg.snapshot_levels = (uint32_t)snap_levels;
    cfg.order_capacity = (uint32_t)capacity;

    matcher *m = calloc(1, sizeof *m);
    if (!m)
        return ARB_ENOMEM;
    m->ctx = ctx;
    m->cfg = cfg;
    m->retry_timer = m->snap_timer = -1;
    m->snap_topic = -1;
    m->snap_topic_name = snap_topic;
    m->snap_interval_ms = snap_ms;
    m->snap_read_timeout_ms = snap_read_ms;
    m->stamp_command = !strcmp(stamp, "command");
    if ((rc = arb_instruments_load(ctx, &m->all))) {
        free(m);
        return rc;
    }
    if ((rc = arb_fee_tiers_load(ctx, &m->tiers))) {
        arb_instruments_free(&m->all);
        free(m);
        return rc;
    }
    if (!m->all.count) {
        matcher_destroy(m);
        return arb_cfg_reject(ctx, "instruments",
                              "no [instrument VENUE:SYMBOL] sections: nothing to match");
    }
    m->names = strdup(names);
    m->buf = malloc(ARB_WIRE_MAX);
    if (!m->names || !m->buf || !(m->local = partition_add(m, -1))) {
        matcher_destroy(m);
        return ARB_ENOMEM;
    }
    if ((rc = engine_new(m, &m->local->engine, 1))) {
        matcher_destroy(m);
        return rc;
    }
    m->owner = calloc(book_engine_book_count(m->local->engine) + 1, sizeof *m->owner);
    if (!m->owner) {
        matcher_destroy(m);
        return ARB_ENOMEM;
    }
    *self = m;
    return ARB_OK;
}

static void matcher_destroy(void *self)
{
    matcher *m = self;
    if (!m)
        return;
    for (size_t i = 0; i < m->n_parts; i++)
        partition_books_free(m->parts[i]);
    free(m->parts);
    free(m->owner);
    free(m->names);
    arb_instruments_free(&m->all);
    arb_fee_tiers_free(&m->tiers);
    free(m->pending.bytes);
    free(m->book_m);
    free(m->buf);
    free(m);
}

/* ---- publishing, with a backlog when the bus is full ---- */

#define BACKLOG_HDR 14u

static int backlog_push(matcher *m, int topic, uint64_t key, const void *data, uint32_t len)
{
    backlog *q = &m->pending;
    size_t need = q->len - q->head + BACKLOG_HDR + len;
    if (need > BACKLOG_CAP) {
        arb_counter_add(m->m_dropped, 1);
        return ARB_EFULL;
    }
    if (q->head && q->len + BACKLOG_HDR + len > q->cap) {
        memmove(q->bytes, q->bytes + q->head, q->len - q->head);
        q->len -= q->head;
        q->head = 0;
    }
    if (q->len + BACKLOG_HDR + len > q->cap) {
        size_t cap = q->cap ? q->cap : 1 << 16;
        while (cap < q->len + BACKLOG_HDR + len)
            cap *= 2;
        uint8_t *p = realloc(q->bytes, cap);
        if (!p) {
            arb_counter_add(m->m_dropped, 1);
            return ARB_ENOMEM;
        }
        q->bytes = p;
        q->cap = cap;
    }
    uint8_t *p = q->bytes + q->len;
    arb_put_u16(p, (uint16_t)topic);
    arb_put_u32(p + 2, len);
    arb_put_u64(p + 6, key);
    memcpy(p + BACKLOG_HDR, data, len);
    q->len += BACKLOG_HDR + len;
    q->records++;
    arb_gauge_set(m->m_backlog, (int64_t)q->records);
    return ARB_OK;
}

/* Publishes what waits, in order; stops at the first refusal. */
static void backlog_flush(matcher *m)
{
    backlog *q = &m->pending;
    while (q->head < q->len) {
        const uint8_t *p = q->bytes + q->head;
        uint32_t len = arb_get_u32(p + 2);
        if (arb_publish(m->ctx, arb_get_u16(p), arb_get_u64(p + 6), p + BACKLOG_HDR, len) != ARB_OK)
            break;
        q->head += BACKLOG_HDR + len;
        q->records--;
    }
    if (q->head == q->len)
        q->head = q->len = 0;
    arb_gauge_set(m->m_backlog, (int64_t)q->records);
}

static void backlog_flush_cb(void *user) { backlog_flush(user); }

/* The backlog goes out as one arb_batch: a timer is no delivery, and each
 * publish would otherwise wake the subscribers' loops once. */
static void on_retry(void *user)
{
    matcher *m = user;
    arb_batch(m->ctx, backlog_flush_cb, m);
    if (m->pending.records == 0 && m->retry_timer >= 0) {
        arb_timer_stop(m->ctx, m->retry_timer);
        m->retry_timer = -1;
    }
}

static void publish(matcher *m, int topic, uint64_t key, const void *data, uint32_t len)
{
    if (m->pending.records == 0) {
        int rc = arb_publish(m->ctx, topic, key, data, len);
        if (rc == ARB_OK)
            return;
        arb_counter_add(m->m_refused, 1);
        if (rc != ARB_EFULL) {
            arb_counter_add(m->m_dropped, 1);
            return;
        }
    }
    /* Keep the order: once something waits, everything queues behind it. */
    if (backlog_push(m, topic, key, data, len) == ARB_OK && m->retry_timer < 0)
        m->retry_timer = arb_timer_start(m->ctx, RETRY_NS, 1, on_retry, m);
}

static int account_cmp(const void *a, const void *b)
{
    uint64_t x = ((const account_part *)a)->account, y = ((const account_part *)b)->account;
    return (x > y) - (x < y);
}

/* Whether the previous owner got this replayed event into Kafka. */
static int event_was_out(event_fence *f, const arb_order_event *ev)
{
    if (ev->seq > f->max_seq) {
        event_fence_clear(f); /* past every partition's newest: done */
        return 0;
    }
    account_part key = {.account = ev->account};
    const account_part *ap =
        f->nseen ? bsearch(&key, f->seen, f->nseen, sizeof key, account_cmp) : NULL;
    return ap && ev->seq <= f->newest[ap->partition];
}

/* Publishes one command's output. While a partition replays input whose
 * output the previous owner already got into Kafka, that output is counted
 * and not sent: order events the event fence says are out, trades up to
 * and including the fence trade, market data up to the fence record. */
static void publish_output(matcher *m, partition_books *pb, book_output *o)
{
    uint64_t suppressed = 0;
    for (uint32_t i = 0; i < o->n_events; i++) {
        const arb_order_event *ev = &o->events[i];
        if (ev->kind == ARB_EV_REJECTED && ev->reason >= 1 && ev->reason <= ARB_R_REASON_MAX)
            arb_counter_add(m->m_rejects[ev->reason], 1);
        if (pb->events.active && event_was_out(&pb->events, ev)) {
            suppressed++;
            continue;
        }
        uint32_t len = arb_order_event_encode(ev, m->buf, ARB_WIRE_MAX);
        publish(m, ARB_TOPIC_ORDER_EVENTS, ev->account, m->buf, len);
    }
    for (uint32_t i = 0; i < o->n_trades; i++) {
        const arb_trade *t = &o->trades[i];
        pb->last_trade_id = t->trade_id;
        if (pb->trades.active) {
            pb->trades.active = t->trade_id != pb->trades.trade_id;
            suppressed++;
            continue;
        }
        uint32_t len = arb_trade_encode(t, m->buf, ARB_WIRE_MAX);
        publish(m, ARB_TOPIC_TRADE_EXECUTED, arb_instrument_key(t->venue, t->symbol), m->buf, len);
    }
    for (uint32_t i = 0; i < o->n_md; i++) {
        const book_md *md = &o->md[i];
        if (pb->md.active) {
            pb->md.active =
                !(md->head.book_seq == pb->md.md_seq && md->head.kind == pb->md.md_kind &&
                  !memcmp(md->head.venue, pb->md.venue, ARB_VENUE_LEN) &&
                  !memcmp(md->head.symbol, pb->md.symbol, ARB_SYMBOL_LEN));
            suppressed++;
            continue;
        }
        uint32_t len = arb_market_data_encode(&md->head, m->buf, ARB_WIRE_MAX);
        for (uint32_t k = 0; k < md->head.n_levels; k++)
            arb_md_put_level(m->buf, k, &o->levels[md->first_level + k]);
        publish(m, ARB_TOPIC_MARKET_DATA, arb_instrument_key(md->head.venue, md->head.symbol),
                m->buf, len);
    }
    if (suppressed) {
        arb_counter_add(m->m_suppressed, suppressed);
        if (!fences_active(pb))
            arb_info(m->ctx,
                     "partition %d: replay caught up with the output already stored (Kafka or the "
                     "journal)",
                     (int)pb->partition);
    }
    arb_counter_add(m->m_events, o->n_events);
    arb_counter_add(m->m_trades, o->n_trades);
    arb_counter_add(m->m_md, o->n_md);
    if (o->dropped) {
        arb_counter_add(m->m_dropped, o->dropped);
        o->dropped = 0;
    }
}

/* ---- commands ---- */

static void update_book_metrics(matcher *m, const book_engine *e, const order_book *b)
{
    if (!m->book_m)
        return;
    book_metrics *bm = &m->book_m[order_book_index(b)];
    order_book_stats st;
    order_book_get_stats(e, b, &st);
    arb_gauge_set(bm->orders, st.orders);
    arb_gauge_set(bm->bid_levels, order_book_level_count(b, ARB_SIDE_BUY));
    arb_gauge_set(bm->ask_levels, order_book_level_count(b, ARB_SIDE_SELL));
}

static int served_elsewhere(const matcher *m, const arb_order_cmd *c)
{
    char v[ARB_VENUE_LEN + 1], s[ARB_SYMBOL_LEN + 1];
    return arb_instrument_find(&m->all, arb_fixstr(v, c->venue, ARB_VENUE_LEN),
                               arb_fixstr(s, c->symbol, ARB_SYMBOL_LEN)) != NULL;
}

/* The engine a delivered command goes to. A Kafka partition delivered
 * without an assignment callback (it should not happen) starts empty. */
static partition_books *partition_of(matcher *m, const arb_msg *msg)
{
    if (msg->partition < 0)
        return m->local;
    if (!m->partitioned) {
        if (!m->unpartitioned_warned) {
            m->unpartitioned_warned = 1;
            arb_warn(m->ctx, "order_commands comes through Kafka but partition callbacks are not "
                             "available here (an instance off thread 0): one engine for every "
                             "partition, right only for the group's only matcher");
        }
        return m->local;
    }
    partition_books *pb = partition_find(m, msg->partition);
    if (pb)
        return pb;
    arb_warn(m->ctx, "order_commands partition %d delivered before it was assigned: empty books",
             (int)msg->partition);
    if (!(pb = partition_add(m, msg->partition)))
        return NULL;
    if (engine_new(m, &pb->engine, 0)) {
        partition_remove(m, pb);
        return NULL;
    }
    return pb;
}

/* Flags the last event of the command's own order (ARB_EVF_LAST). */
static void mark_last_event(book_output *o, uint64_t order_id)
{
    for (uint32_t i = o->n_events; i-- > 0;)
        if (o->events[i].order_id == order_id) {
            o->events[i].flags |= ARB_EVF_LAST;
            return;
        }
}

static void on_command(void *user, const arb_msg *msg)
{
    matcher *m = user;
    /* Two clock reads would cost as much as matching a command: one in
     * MATCHER_TIME_EVERY is timed (as the bus samples its latency). */
    int64_t t0 = m->timed++ % MATCHER_TIME_EVERY ? 0 : mono_ns();
    partition_books *pb = partition_of(m, msg);
    if (!pb) {
        arb_counter_add(m->m_dropped, 1);
        return;
    }
    if (msg->partition >= 0 && pb != m->local) {
        /* The books are a function of the input positions they applied: a
         * command at or before the last one is not applied twice, and a
         * jump over input (retention deleted it before a snapshot covered
         * it) leaves books that are not the log's, so it is reported. */
        if (msg->offset <= pb->applied) {
            arb_counter_add(m->m_repeated, 1);
            return;
        }
        if (msg->offset > pb->applied + 1 && (pb->applied >= 0 || pb->from_start)) {
            arb_error(m->ctx,
                      "order_commands partition %d: offsets %lld..%lld are gone (retention?): "
                      "its books miss those commands",
                      (int)pb->partition, (long long)pb->applied + 1, (long long)msg->offset - 1);
            arb_set_health(m->ctx, 0, "input missing from order_commands");
        }
        pb->applied = msg->offset;
        if (!pb->key)
            pb->key = msg->key;
    }
    arb_order_cmd c;
    if (arb_order_cmd_decode(msg->data, msg->len, &c)) {
        arb_counter_add(m->m_decode_errors, 1);
        /* A flood of bad records must not become a flood of log lines. */
        int64_t now = mono_ns();
        if (now - m->decode_logged_at >= DECODE_LOG_INTERVAL_NS) {
            arb_warn(m->ctx, "undecodable order command (%s), %llu more since the last report",
                     arb_wire_error(), (unsigned long long)m->decode_suppressed);
            m->decode_logged_at = now;
            m->decode_suppressed = 0;
        } else {
            m->decode_suppressed++;
        }
        return;
    }
    const order_book *b = book_engine_find(pb->engine, c.venue, c.symbol);
    if (!b && served_elsewhere(m, &c)) {
        arb_counter_add(m->m_not_ours, 1);
        return;
    }
    if (!m->stamp_command)
        c.ts = arb_now(m->ctx);
    book_output *o = book_engine_output(pb->engine);
    book_output_clear(o);
    book_engine_process(pb->engine, &c);
    mark_last_event(o, c.order_id);
    publish_output(m, pb, o);
    book_output_clear(o);
    if (b) {
        m->owner[order_book_index(b)] = pb;
        update_book_metrics(m, pb->engine, b);
    }
    arb_counter_add(m->m_commands, 1);
    if (t0)
        arb_hist_observe(m->m_latency, (uint64_t)(mono_ns() - t0));
}

/* ---- snapshots of a partition's books ----
 * One record on snapshot_topic: "MSNP" | u32 format | i32 partition |
 * u32 books format | i64 offset of the last command applied | u64 key |
 * u64 last trade id | u64 engine bytes | book_engine_save() bytes. */
#define SNAP_MAGIC "MSNP"
#define SNAP_FORMAT 1u
#define SNAP_HDR 48u

static int snapshot_capture(const partition_books *pb, uint8_t **bytes, size_t *len)
{
    void *eng;
    size_t eng_len;
    int rc = book_engine_save(pb->engine, NULL, NULL, &eng, &eng_len);
    if (rc)
        return rc;
    uint8_t *p = malloc(SNAP_HDR + eng_len);
    if (!p) {
        free(eng);
        return ARB_ENOMEM;
    }
    memcpy(p, SNAP_MAGIC, 4);
    arb_put_u32(p + 4, SNAP_FORMAT);
    arb_put_u32(p + 8, (uint32_t)pb->partition);
    arb_put_u32(p + 12, BOOK_STATE_VERSION);
    arb_put_i64(p + 16, pb->applied);
    arb_put_u64(p + 24, pb->key);
    arb_put_u64(p + 32, pb->last_trade_id);
    arb_put_u64(p + 40, eng_len);
    memcpy(p + SNAP_HDR, eng, eng_len);
    free(eng);
    *bytes = p;
    *len = SNAP_HDR + eng_len;
    return ARB_OK;
}

static void snapshot_publish(matcher *m, partition_books *pb, const uint8_t *bytes, size_t len,
                             int64_t offset)
{
    int rc = arb_publish(m->ctx, m->snap_topic, pb->key, bytes, len);
    if (rc != ARB_OK) {
        arb_warn(m->ctx,
                 "partition %d: snapshot at offset %lld (%zu bytes) refused by the bus (%d)",
                 (int)pb->partition, (long long)offset, len, rc);
        return;
    }
    pb->snapped = offset;
    /* The input this snapshot covers is never read again by this matcher
     * (the journal frees it once the snapshot is on disk; Kafka ignores it). */
    arb_trim(m->ctx, ARB_TOPIC_ORDER_COMMANDS, (int)pb->partition, offset + 1);
    arb_counter_add(m->m_snapshots, 1);
    arb_debug(m->ctx, "partition %d: snapshot at offset %lld (%zu bytes)", (int)pb->partition,
              (long long)offset, len);
}

/* A snapshot is captured only when every output of the commands it covers
 * was handed to the bus (nothing waits in the backlog). */
static int can_capture(matcher *m, const partition_books *pb)
{
    return pb != m->local && pb->engine && pb->key && pb->applied >= 0 && m->pending.records == 0 &&
           m->snap_topic >= 0;
}

/* Publishes what the previous tick captured, then captures the present. */
static void on_snapshot_tick(void *user)
{
    matcher *m = user;
    if (m->pending.records)
        backlog_flush(m);
    for (size_t i = 0; i < m->n_parts; i++) {
        partition_books *pb = m->parts[i];
        if (pb->staged) {
            snapshot_publish(m, pb, pb->staged, pb->staged_len, pb->staged_offset);
            free(pb->staged);
            pb->staged = NULL;
        }
        if (!can_capture(m, pb) || pb->applied == pb->snapped)
            continue;
        if (snapshot_capture(pb, &pb->staged, &pb->staged_len) == ARB_OK)
            pb->staged_offset = pb->applied;
    }
}

/* The snapshot a partition leaves with, published now. */
static void snapshot_final(matcher *m, partition_books *pb)
{
    free(pb->staged);
    pb->staged = NULL;
    if (m->pending.records)
        backlog_flush(m);
    if (pb->applied == pb->snapped)
        return;
    uint8_t *bytes;
    size_t len;
    if (!can_capture(m, pb) || snapshot_capture(pb, &bytes, &len) != ARB_OK) {
        arb_warn(m->ctx,
                 "partition %d leaves without a final snapshot (output still waiting): the "
                 "next owner replays from offset %lld",
                 (int)pb->partition, (long long)pb->snapped + 1);
        return;
    }
    snapshot_publish(m, pb, bytes, len, pb->applied);
    free(bytes);
}

/* ---- partitions coming and going ---- */

static int read_last(matcher *m, int topic, int partition, void **bytes, size_t *len,
                     int64_t *offset)
{
    return arb_read_last(m->ctx, topic, partition, m->snap_read_timeout_ms * MS_NS, bytes, len,
                         offset);
}

/* Restores the partition's books from its last snapshot. ARB_OK: restored;
 * ARB_ENOENT: none to use (start from the beginning). */
static int snapshot_restore(matcher *m, partition_books *pb)
{
    void *bytes = NULL;
    size_t len = 0;
    int64_t off = -1;
    int rc = read_last(m, m->snap_topic, pb->partition, &bytes, &len, &off);
    if (rc == ARB_ENOENT)
        return ARB_ENOENT;
    if (rc != ARB_OK) {
        arb_error(m->ctx,
                  "partition %d: cannot read its last snapshot from %s (%d): rebuilding from "
                  "the start of its input",
                  pb->partition, m->snap_topic_name, rc);
        arb_set_health(m->ctx, 0, "a snapshot could not be read");
        return ARB_ENOENT;
    }
    const uint8_t *p = bytes;
    rc = ARB_EREFUSED;
    if (len < SNAP_HDR || memcmp(p, SNAP_MAGIC, 4) || arb_get_u32(p + 4) != SNAP_FORMAT ||
        arb_get_u32(p + 12) != BOOK_STATE_VERSION || arb_get_u64(p + 40) != len - SNAP_HDR) {
        arb_error(m->ctx,
                  "partition %d: the last record of %s is not a snapshot this build reads: "
                  "rebuilding from the start of its input",
                  pb->partition, m->snap_topic_name);
    } else if ((int32_t)arb_get_u32(p + 8) != pb->partition) {
        /* Keyed by an instrument of the partition, a snapshot lands on the
         * same partition number only if both topics have as many partitions. */
        arb_error(m->ctx,
                  "partition %d of %s holds a snapshot of order_commands partition %d: give "
                  "%s as many partitions as order_commands; rebuilding from the start",
                  pb->partition, m->snap_topic_name, (int)arb_get_u32(p + 8), m->snap_topic_name);
        arb_set_health(m->ctx, 0, "snapshot topic partitions do not match order_commands");
    } else if ((rc = book_engine_restore(pb->engine, p + SNAP_HDR, len - SNAP_HDR)) != ARB_OK) {
        arb_error(m->ctx,
                  "partition %d: its snapshot does not fit these books (%d): rebuilding "
                  "from the start of its input",
                  pb->partition, rc);
    } else {
        pb->applied = pb->snapped = arb_get_i64(p + 16);
        pb->key = arb_get_u64(p + 24);
        pb->last_trade_id = arb_get_u64(p + 32);
    }
    free(bytes);
    return rc == ARB_OK ? ARB_OK : ARB_ENOENT;
}

/* Sets where replay may publish again, from the newest trade and market
 * data record of the partition in Kafka. ARB_EREFUSED when the books are
 * ahead of the trades in Kafka: they hold trades that never got out. */
static int set_fences(matcher *m, partition_books *pb)
{
    memset(&pb->trades, 0, sizeof pb->trades);
    memset(&pb->md, 0, sizeof pb->md);
    void *bytes = NULL;
    size_t len = 0;
    int64_t off;
    int rc = read_last(m, ARB_TOPIC_TRADE_EXECUTED, pb->partition, &bytes, &len, &off);
    arb_trade t;
    if (rc == ARB_OK && arb_trade_decode(bytes, len, &t) == ARB_OK) {
        const order_book *b = book_engine_find(pb->engine, t.venue, t.symbol);
        order_book_stats st;
        if (b) {
            order_book_get_stats(pb->engine, b, &st);
            if (st.trades < t.seq) {
                pb->trades.active = 1;
                pb->trades.trade_id = t.trade_id;
            } else if (pb->last_trade_id != t.trade_id) {
                rc = ARB_EREFUSED;
            }
        } else {
            /* Not a book of ours: the topics' partition counts or the
             * matchers' instruments differ. */
            arb_warn(m->ctx,
                     "partition %d: the newest trade on trade_executed is of %.8s:%.16s, not a "
                     "book here: replayed trades may repeat",
                     pb->partition, t.venue, t.symbol);
        }
    } else if (rc != ARB_ENOENT) {
        arb_warn(m->ctx,
                 "partition %d: no newest trade to resume after (%d): replayed trades "
                 "may repeat",
                 pb->partition, rc);
    }
    free(bytes);
    if (rc == ARB_EREFUSED)
        return rc;
    bytes = NULL;
    arb_market_data md;
    rc = read_last(m, ARB_TOPIC_MARKET_DATA, pb->partition, &bytes, &len, &off);
    if (rc == ARB_OK && arb_market_data_decode(bytes, len, &md) == ARB_OK) {
        const order_book *b = book_engine_find(pb->engine, md.venue, md.symbol);
        order_book_stats st;
        if (b) {
            order_book_get_stats(pb->engine, b, &st);
            if (st.md_seq < md.book_seq) {
                pb->md.active = 1;
                memcpy(pb->md.venue, md.venue, ARB_VENUE_LEN);
                memcpy(pb->md.symbol, md.symbol, ARB_SYMBOL_LEN);
                pb->md.md_seq = md.book_seq;
                pb->md.md_kind = md.kind;
            }
        }
    } else if (rc != ARB_ENOENT) {
        arb_warn(m->ctx,
                 "partition %d: no newest market data to resume after (%d): replayed "
                 "market data may repeat",
                 pb->partition, rc);
    }
    free(bytes);
    return ARB_OK;
}

/* Reading order_events back, newest chunk first, every partition at once
 * (read_ranges, where the host has it). The events after a snapshot are
 * usually a second's worth, so the first chunk is small and each next one
 * twice as large: chunks of 4,096 records read one partition after another
 * took about 1 s per restored partition on the dev broker. */
#define EVENT_SCAN_FIRST 128
#define EVENT_SCAN_CHUNK 16384   /* the largest chunk */
#define EVENT_SCAN_MAX (1 << 20) /* records per partition, at most */

typedef struct event_scan {
    partition_books *pb;
    const uint8_t *ours; /* by book index: the book's commands are on pb's partition */
    uint64_t start;      /* the engine's event seq where replay starts */
    uint32_t nparts;
    /* By order_events partition: */
    uint64_t *chunk_newest; /* seq of this chunk's last event of ours after start */
    uint8_t *reached;       /* an event of ours at or before start: older ones are too */
    int64_t *lo, *hi, *from, *end;
    int oom;
} event_scan;

static int scan_event(void *user, const arb_msg *msg)
{
    event_scan *sc = user;
    arb_order_event ev;
    int32_t p = msg->partition;
    if (p < 0 || (uint32_t)p >= sc->nparts ||
        arb_order_event_decode(msg->data, msg->len, &ev) != ARB_OK)
        return ARB_OK;
    const order_book *b = book_engine_find(sc->pb->engine, ev.venue, ev.symbol);
    if (!b || !sc->ours[order_book_index(b)])
        return ARB_OK;
    if (ev.seq <= sc->start) {
        sc->reached[p] = 1;
        return ARB_OK;
    }
    sc->chunk_newest[p] = ev.seq;
    event_fence *f = &sc->pb->events;
    if (f->nseen && f->seen[f->nseen - 1].account == ev.account)
        return ARB_OK;
    if (f->nseen == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 256;
        account_part *grown = realloc(f->seen, cap * sizeof *grown);
        if (!grown) {
            sc->oom = 1;
            return ARB_ENOMEM;
        }
        f->seen = grown;
        f->cap = cap;
    }
    f->seen[f->nseen++] = (account_part){ev.account, p};
    return ARB_OK;
}

static void event_scan_free(event_scan *sc)
{
    free(sc->chunk_newest);
    free(sc->reached);
    free(sc->lo);
    free(sc->hi);
    free(sc->from);
    free(sc->end);
}

/* Reads back every partition of order_events, newest chunk first, until
 * the events of these books after `start` are all seen in each. ARB_OK, or
 * why the view is incomplete. */
static int scan_event_partitions(matcher *m, event_scan *sc)
{
    uint32_t n = sc->nparts;
    for (uint32_t p = 0; p < n; p++)
        sc->end[p] = sc->hi[p];
    for (int64_t chunk = EVENT_SCAN_FIRST;; chunk = chunk < EVENT_SCAN_CHUNK ? 2 * chunk : chunk) {
        uint32_t active = 0;
        for (uint32_t p = 0; p < n; p++) {
            sc->from[p] = sc->end[p];
            sc->chunk_newest[p] = 0;
            if (sc->reached[p] || sc->end[p] <= sc->lo[p])
                continue;
            if (sc->hi[p] - sc->end[p] >= EVENT_SCAN_MAX)
                return ARB_EFULL;
            sc->from[p] = sc->end[p] - chunk > sc->lo[p] ? sc->end[p] - chunk : sc->lo[p];
            active++;
        }
        if (!active)
            return ARB_OK;
        int64_t timeout = m->snap_read_timeout_ms * MS_NS;
        int rc = arb_read_ranges(m->ctx, ARB_TOPIC_ORDER_EVENTS, (int)n, sc->from, sc->end, timeout,
                                 scan_event, sc, NULL);
        if (rc)
            return rc;
        if (sc->oom)
            return ARB_ENOMEM;
        event_fence *f = &sc->pb->events;
        for (uint32_t p = 0; p < n; p++) {
            if (!f->newest[p])
                f->newest[p] = sc->chunk_newest[p];
            sc->end[p] = sc->from[p];
        }
    }
}

/* Sets the event fence of a partition about to replay from the engine's
 * current state (see event_fence). A view that cannot be completed leaves
 * the fence off for the events not seen: they may repeat, never go missing. */
static void set_event_fence(matcher *m, partition_books *pb)
{
    event_fence *f = &pb->events;
    event_fence_clear(f);
    size_t nb = book_engine_book_count(pb->engine);
    uint8_t *ours = calloc(nb ? nb : 1, 1);
    if (!ours)
        goto fail;
    int any = 0;
    for (size_t i = 0; i < nb; i++) {
        const arb_instrument *in = order_book_instrument(book_engine_book_at(pb->engine, i));
        int32_t part = -1;
        int rc = arb_partition_of(m->ctx, ARB_TOPIC_ORDER_COMMANDS, in->key,
                                  m->snap_read_timeout_ms * MS_NS, &part);
        if (rc) {
            arb_warn(m->ctx, "partition %d: where %s:%s's commands go is not known (%d)",
                     pb->partition, in->venue, in->symbol, rc);
            goto fail;
        }
        any |= ours[i] = part == pb->partition;
    }
    if (!any) {
        free(ours);
        return;
    }
    book_engine_stats es;
    book_engine_get_stats(pb->engine, &es);
    event_scan sc = {.pb = pb, .ours = ours, .start = es.event_seq};
    int64_t lo, hi;
    int rc;
    /* Where each partition of order_events begins and ends. */
    while ((rc = arb_watermarks(m->ctx, ARB_TOPIC_ORDER_EVENTS, (int)sc.nparts,
                                m->snap_read_timeout_ms * MS_NS, &lo, &hi)) == ARB_OK) {
        uint32_t n = sc.nparts + 1;
        int64_t *l = realloc(sc.lo, n * sizeof *l), *h = l ? realloc(sc.hi, n * sizeof *h) : NULL;
        if (l)
            sc.lo = l;
        if (!h)
            goto fail_scan;
        sc.hi = h;
        sc.lo[sc.nparts] = lo;
        sc.hi[sc.nparts] = hi;
        sc.nparts = n;
    }
    if (rc != ARB_ENOENT || !sc.nparts) {
        arb_warn(m->ctx,
                 "partition %d: order_events could not be read back (%d): replayed "
                 "order events may repeat",
                 pb->partition, rc);
        goto fail_scan;
    }
    f->nparts = sc.nparts;
    f->newest = calloc(sc.nparts, sizeof *f->newest);
    sc.chunk_newest = calloc(sc.nparts, sizeof *sc.chunk_newest);
    sc.reached = calloc(sc.nparts, 1);
    sc.from = calloc(sc.nparts, sizeof *sc.from);
    sc.end = calloc(sc.nparts, sizeof *sc.end);
    if (!f->newest || !sc.chunk_newest || !sc.reached || !sc.from || !sc.end)
        goto fail_scan;
    if ((rc = scan_event_partitions(m, &sc)) != ARB_OK) {
        arb_warn(m->ctx,
                 "partition %d: order_events could not be read back (%d): replayed "
                 "order events may repeat",
                 pb->partition, rc);
        goto fail_scan;
    }
    event_scan_free(&sc);
    free(ours);
    if (f->nseen)
        qsort(f->seen, f->nseen, sizeof *f->seen, account_cmp);
    size_t n = 0;
    for (size_t i = 0; i < f->nseen; i++)
        if (!n || f->seen[n - 1].account != f->seen[i].account)
            f->seen[n++] = f->seen[i];
    f->nseen = n;
    for (uint32_t i = 0; i < f->nparts; i++)
        if (f->newest[i] > f->max_seq)
            f->max_seq = f->newest[i];
    f->active = f->max_seq > 0;
    if (!f->active)
        event_fence_clear(f);
    return;
fail_scan:
    event_scan_free(&sc);
fail:
    free(ours);
    event_fence_clear(f);
}

static int partition_reset(matcher *m, partition_books *pb)
{
    book_engine_free(pb->engine);
    pb->engine = NULL;
    pb->applied = pb->snapped = -1;
    pb->last_trade_id = 0;
    return engine_new(m, &pb->engine, 0);
}

static void partition_assigned(matcher *m, int partition)
{
    /* A snapshot topic that stays in process would swallow every snapshot
     * (a seek to no partition answers ARB_ENOENT only for such a topic). */
    if (!m->snap_checked) {
        m->snap_checked = 1;
        if (arb_seek(m->ctx, m->snap_topic, -1, ARB_OFFSET_BEGINNING) == ARB_ENOENT) {
            arb_error(m->ctx,
                      "%s is not stored by the transport: add it to [bus] kafka_topics (or "
                      "journal_topics), or every "
                      "partition is rebuilt from the start of its input",
                      m->snap_topic_name);
            arb_set_health(m->ctx, 0, "snapshot topic not in kafka_topics");
        }
    }
    partition_books *pb = partition_find(m, partition);
    if (pb)
        partition_remove(m, pb);
    if (!(pb = partition_add(m, partition)) || engine_new(m, &pb->engine, 0)) {
        arb_error(m->ctx, "partition %d: out of memory for its books", partition);
        arb_set_health(m->ctx, 0, "out of memory");
        return;
    }
    int restored = snapshot_restore(m, pb) == ARB_OK;
    if (restored && set_fences(m, pb) == ARB_EREFUSED) {
        arb_warn(m->ctx,
                 "partition %d: its snapshot at offset %lld holds trades that never reached "
                 "trade_executed: rebuilding from the start of its input",
                 partition, (long long)pb->applied);
        restored = 0;
        if (partition_reset(m, pb)) {
            arb_set_health(m->ctx, 0, "out of memory");
            return;
        }
    }
    if (!restored) /* empty books: the newest output in Kafka is ahead of them */
        set_fences(m, pb);
    set_event_fence(m, pb);
    int64_t from = restored ? pb->applied + 1 : ARB_OFFSET_BEGINNING;
    pb->from_start = !restored;
    int rc = arb_seek(m->ctx, ARB_TOPIC_ORDER_COMMANDS, partition, from);
    if (rc != ARB_OK)
        arb_error(m->ctx, "partition %d: cannot seek order_commands (%d)", partition, rc);
    arb_counter_add(m->m_restores, restored);
    for (size_t i = 0; i < book_engine_book_count(pb->engine); i++) {
        const order_book *b = book_engine_book_at(pb->engine, i);
        order_book_stats st;
        order_book_get_stats(pb->engine, b, &st);
        if (st.md_seq || st.trades) {
            m->owner[i] = pb;
            update_book_metrics(m, pb->engine, b);
        }
    }
    const char *fenced = fences_active(pb) ? "; output already stored is not repeated" : "";
    if (restored)
        arb_info(m->ctx, "partition %d assigned: books from its snapshot, input from offset %lld%s",
                 partition, (long long)from, fenced);
    else
        arb_info(m->ctx, "partition %d assigned: empty books, input from the start%s", partition,
                 fenced);
}

static void partition_revoked(matcher *m, int partition)
{
    partition_books *pb = partition_find(m, partition);
    if (!pb || pb == m->local)
        return;
    snapshot_final(m, pb);
    arb_info(m->ctx, "partition %d revoked at offset %lld", partition, (long long)pb->applied);
    partition_remove(m, pb);
}

static void on_partitions(void *user, int topic, int partition, int assigned)
{
    matcher *m = user;
    if (topic != ARB_TOPIC_ORDER_COMMANDS || partition < 0)
        return;
    if (assigned)
        partition_assigned(m, partition);
    else
        partition_revoked(m, partition);
}

/* ---- the admin endpoint ---- */

static json_t *levels_json(const book_engine *e, const order_book *b, int side, uint32_t depth,
                           arb_md_level *tmp)
{
    const arb_instrument *in = order_book_instrument(b);
    uint32_t n = order_book_depth(e, b, side, tmp, depth);
    json_t *arr = json_array();
    char px[40], qty[40];
    for (uint32_t i = 0; i < n; i++) {
        arb_dec_format(tmp[i].price, in->price_decimals, px, sizeof px);
        arb_dec_format(tmp[i].qty, in->qty_decimals, qty, sizeof qty);
        json_array_append_new(arr, json_pack("{s:s, s:s, s:I}", "price", px, "qty", qty, "orders",
                                             (json_int_t)tmp[i].orders));
    }
    return arr;
}

static int admin_error(struct evbuffer *out, int status, const char *code, const char *msg)
{
    json_t *j = json_pack("{s:s, s:s}", "error", code, "message", msg);
    char *s = json_dumps(j, JSON_COMPACT);
    evbuffer_add_printf(out, "%s\n", s ? s : "{}");
    free(s);
    json_decref(j);
    return status;
}

static int admin_book(void *user, const char *method, const char *path, const char *query,
                      struct evbuffer *out)
{
    (void)path;
    matcher *m = user;
    if (strcmp(method, "GET"))
        return admin_error(out, 405, "method_not_allowed", "use GET");
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    if (query && evhttp_parse_query_str(query, &q))
        return admin_error(out, 400, "bad_query", "cannot parse the query string");
    const char *venue = evhttp_find_header(&q, "venue"), *symbol = evhttp_find_header(&q, "symbol");
    const char *depth_s = evhttp_find_header(&q, "depth");
    char v[ARB_VENUE_LEN], s[ARB_SYMBOL_LEN];
    int status = 200;
    long depth = depth_s ? strtol(depth_s, NULL, 10) : ARB_MD_MAX_LEVELS / 2;
    const order_book *b = NULL;
    if (!venue || !symbol || arb_fixstr_set(v, ARB_VENUE_LEN, venue) ||
        arb_fixstr_set(s, ARB_SYMBOL_LEN, symbol))
        status = admin_error(out, 400, "bad_instrument", "give venue=...&symbol=...");
    else if (depth < 1 || depth > (long)ARB_MD_MAX_LEVELS / 2)
        status = admin_error(out, 400, "bad_depth", "depth is 1..2048");
    else if (!(b = book_engine_find(m->local->engine, v, s)))
        status = admin_error(out, 404, "unknown_instrument", "this matcher has no such book");
    /* Over Kafka the live book is in the engine of its partition. */
    const book_engine *e = m->local->engine;
    if (b && m->owner[order_book_index(b)]) {
        e = m->owner[order_book_index(b)]->engine;
        b = book_engine_book_at(e, order_book_index(b));
    }
    if (!b) {
        evhttp_clear_headers(&q);
        return status;
    }
    arb_md_level *tmp = malloc((size_t)depth * sizeof *tmp);
    if (!tmp) {
        evhttp_clear_headers(&q);
        return admin_error(out, 500, "no_memory", "out of memory");
    }
    order_book_stats st;
    order_book_get_stats(e, b, &st);
    const arb_instrument *in = order_book_instrument(b);
    char ref[40];
    arb_dec_format(st.ref_price, in->price_decimals, ref, sizeof ref);
    json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:I, s:s, s:o, s:o}", "venue", in->venue, "symbol",
                          in->symbol, "book_seq", (json_int_t)st.md_seq, "trades",
                          (json_int_t)st.trades, "orders", (json_int_t)st.orders, "ref_price", ref,
                          "bids", levels_json(e, b, ARB_SIDE_BUY, (uint32_t)depth, tmp), "asks",
                          levels_json(e, b, ARB_SIDE_SELL, (uint32_t)depth, tmp));
    char *text = json_dumps(j, JSON_COMPACT);
    evbuffer_add_printf(out, "%s\n", text ? text : "{}");
    free(text);
    json_decref(j);
    free(tmp);
    evhttp_clear_headers(&q);
    return 200;
}

/* ---- lifecycle ---- */

static int make_metrics(matcher *m)
{
    arb_ctx *ctx = m->ctx;
    m->m_commands = arb_counter_new(ctx, "matcher_commands_total", NULL, "Commands processed");
    m->m_trades = arb_counter_new(ctx, "matcher_trades_total", NULL, "Trades executed");
    m->m_events = arb_counter_new(ctx, "matcher_order_events_total", NULL, "Order events");
    m->m_md = arb_counter_new(ctx, "matcher_market_data_total", NULL, "Market data records");
    m->m_decode_errors = arb_counter_new(ctx, "matcher_decode_errors_total", NULL,
                                         "Order commands that failed to decode");
    m->m_not_ours = arb_counter_new(ctx, "matcher_commands_elsewhere_total", NULL,
                                    "Commands for books another matcher serves");
    m->m_refused = arb_counter_new(ctx, "matcher_publish_refused_total", NULL,
                                   "Records the bus refused at first (queued and retried)");
    m->m_dropped = arb_counter_new(ctx, "matcher_output_dropped_total", NULL,
                                   "Records lost: backlog over its cap or no memory");
    m->m_backlog = arb_gauge_new(ctx, "matcher_backlog_records", NULL,
                                 "Output records waiting for room on the bus");
    m->m_latency = arb_histogram_new(ctx, "matcher_command_ns", NULL,
                                     "Time to match one command and publish its output (one "
                                     "command in 16 is timed; matcher_commands_total counts "
                                     "them all)");
    m->m_snapshots = arb_counter_new(ctx, "matcher_snapshots_total", NULL,
                                     "Partition snapshots published on the snapshot topic");
    m->m_restores = arb_counter_new(ctx, "matcher_snapshot_restores_total", NULL,
                                    "Assigned partitions rebuilt from a snapshot");
    m->m_suppressed = arb_counter_new(ctx, "matcher_replay_suppressed_total", NULL,
                                      "Replayed output not sent again: already stored");
    m->m_repeated = arb_counter_new(ctx, "matcher_commands_repeated_total", NULL,
                                    "Commands delivered again at an applied offset (skipped)");
    m->m_partitions = arb_gauge_new(ctx, "matcher_partitions", NULL,
                                    "order_commands partitions this matcher owns");
    for (unsigned r = 1; r <= ARB_R_REASON_MAX; r++) {
        char labels[64];
        snprintf(labels, sizeof labels, "reason=\"%s\"", arb_reason_name(r));
        m->m_rejects[r] =
            arb_counter_new(ctx, "matcher_rejects_total", labels, "Rejected commands by reason");
    }
    size_t n = book_engine_book_count(m->local->engine);
    m->book_m = calloc(n ? n : 1, sizeof *m->book_m);
    if (!m->book_m)
        return ARB_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const arb_instrument *in = order_book_instrument(book_engine_book_at(m->local->engine, i));
        char labels[128];
        snprintf(labels, sizeof labels, "venue=\"%s\",symbol=\"%s\"", in->venue, in->symbol);
        m->book_m[i].orders =
            arb_gauge_new(ctx, "matcher_book_orders", labels, "Resting orders in the book");
        char side_labels[160];
        snprintf(side_labels, sizeof side_labels, "%s,side=\"buy\"", labels);
        m->book_m[i].bid_levels =
            arb_gauge_new(ctx, "matcher_book_levels", side_labels, "Price levels in the book");
        snprintf(side_labels, sizeof side_labels, "%s,side=\"sell\"", labels);
        m->book_m[i].ask_levels =
            arb_gauge_new(ctx, "matcher_book_levels", side_labels, "Price levels in the book");
    }
    for (unsigned r = 1; r <= ARB_R_REASON_MAX; r++)
        if (!m->m_rejects[r])
            return ARB_ENOMEM;
    if (!m->m_commands || !m->m_trades || !m->m_events || !m->m_md || !m->m_decode_errors ||
        !m->m_not_ours || !m->m_refused || !m->m_dropped || !m->m_backlog || !m->m_latency ||
        !m->m_snapshots || !m->m_restores || !m->m_suppressed || !m->m_repeated || !m->m_partitions)
        return ARB_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (!m->book_m[i].orders || !m->book_m[i].bid_levels || !m->book_m[i].ask_levels)
            return ARB_ENOMEM;
    return ARB_OK;
}

/* Partition callbacks need a host whose table has them (ABI 1 grew them
 * into spare slots). */
static int host_has_partitions(arb_ctx *ctx)
{
    const arb_host_api *api = ctx->api;
    return api->size >= offsetof(arb_host_api, partition_of) + sizeof api->partition_of &&
           api->on_partitions && api->seek && api->read_last && api->watermarks &&
           api->read_range && api->partition_of;
}

static int matcher_start(void *self)
{
    matcher *m = self;
    int rc = make_metrics(m);
    if (rc)
        return rc;
    arb_gauge_set(m->m_partitions, (int64_t)m->n_parts - 1);
    for (size_t i = 0; i < book_engine_book_count(m->local->engine); i++) {
        const partition_books *pb = m->owner[i] ? m->owner[i] : m->local;
        update_book_metrics(m, pb->engine, book_engine_book_at(pb->engine, i));
    }
    if (arb_subscribe(m->ctx, ARB_TOPIC_ORDER_COMMANDS, on_command, m) < 0) {
        arb_error(m->ctx, "cannot subscribe to order_commands");
        return ARB_ERROR;
    }
    /* Over Kafka (an instance on thread 0): one engine per partition. A
     * matcher elsewhere keeps one engine for every partition it is given,
     * which is right only while it is the group's only member. */
    m->partitioned =
        host_has_partitions(m->ctx) && arb_on_partitions(m->ctx, on_partitions, m) == ARB_OK;
    if (m->partitioned) {
        m->snap_topic = arb_topic(m->ctx, m->snap_topic_name);
        if (m->snap_topic < 0) {
            arb_error(m->ctx, "cannot open the snapshot topic %s", m->snap_topic_name);
            return ARB_ERROR;
        }
        if (m->snap_interval_ms > 0)
            m->snap_timer = arb_timer_start(m->ctx, (uint64_t)m->snap_interval_ms * MS_NS, 1,
                                            on_snapshot_tick, m);
    }
    if (m->pending.records) /* output the previous instance could not hand over yet */
        m->retry_timer = arb_timer_start(m->ctx, RETRY_NS, 1, on_retry, m);
    if (arb_admin_route(m->ctx, "book", admin_book, m) < 0)
        arb_warn(m->ctx, "no admin route for the book; snapshots stay available on the bus");
    arb_info(m->ctx, "matching %zu books", book_engine_book_count(m->local->engine));
    return ARB_OK;
}

static void matcher_stop(void *self)
{
    matcher *m = self;
    /* The host removes subscriptions and timers; try once more to hand over
     * what still waits, then report what could not be. */
    if (m->pending.records) {
        backlog_flush(m);
        if (m->pending.records)
            arb_warn(m->ctx, "%llu output records still waiting for the bus at stop",
                     (unsigned long long)m->pending.records);
    }
    /* Partitions still owned leave with a snapshot, so whoever gets them
     * next replays nothing (a reload's new instance keeps them). */
    for (size_t i = 0; i < m->n_parts; i++)
        if (m->parts[i] != m->local)
            snapshot_final(m, m->parts[i]);
    m->retry_timer = m->snap_timer = -1;
}

/* Saved state (format 3): "MTCH" | u32 format | u32 partitions | u32 0 |
 * each partition: PART_HDR bytes (below), its engine state
 * (book_engine_save), and with flag 8 its event fence: u32 partitions |
 * u32 0 | u64 accounts | u64 newest seq per partition | per account: u64
 * account, i32 partition, u32 0 | u64 backlog records | the backlog's
 * records. Output still waiting for the bus travels with the books, so a
 * reload loses nothing. Format 2 (no event fences) and format 1 (one
 * engine: "MTCH" | u32 1 | u64 engine bytes | engine | backlog) are still
 * read. */
#define STATE_MAGIC "MTCH"
#define STATE_HDR 16u
#define MATCHER_STATE_VERSION 3u
/* i32 partition | u32 flags (1: trade fence, 2: md fence, 4: from the
 * start, 8: event fence follows the engine) | i64 applied | i64 snapped
 * | u64 key | u64 last trade id | u64 fence trade id | venue[8] | symbol[16]
 * | u64 fence md seq | u8 md kind, 7 zero | u64 engine bytes */
#define PART_HDR 104u

static size_t event_fence_size(const event_fence *f)
{
    return f->active ? 16 + 8 * (size_t)f->nparts + 16 * f->nseen : 0;
}

static size_t event_fence_put(const event_fence *f, uint8_t *p)
{
    if (!f->active)
        return 0;
    arb_put_u32(p, f->nparts);
    arb_put_u64(p + 8, f->nseen);
    for (uint32_t i = 0; i < f->nparts; i++)
        arb_put_u64(p + 16 + 8 * (size_t)i, f->newest[i]);
    uint8_t *q = p + 16 + 8 * (size_t)f->nparts;
    for (size_t i = 0; i < f->nseen; i++) {
        arb_put_u64(q + 16 * i, f->seen[i].account);
        arb_put_u32(q + 16 * i + 8, (uint32_t)f->seen[i].partition);
    }
    return event_fence_size(f);
}

/* Reads an event fence saved by event_fence_put; its size in *used. */
static int event_fence_get(event_fence *f, const uint8_t *p, size_t len, size_t *used)
{
    if (len < 16)
        return ARB_EREFUSED;
    uint32_t nparts = arb_get_u32(p);
    uint64_t nseen = arb_get_u64(p + 8);
    if (nparts == 0 || nparts > 1u << 16 || nseen > (len - 16) / 16 ||
        len - 16 - 16 * nseen < 8 * (size_t)nparts)
        return ARB_EREFUSED;
    f->newest = calloc(nparts, sizeof *f->newest);
    f->seen = calloc(nseen ? nseen : 1, sizeof *f->seen);
    if (!f->newest || !f->seen)
        return ARB_ENOMEM;
    f->nparts = nparts;
    f->nseen = f->cap = nseen;
    for (uint32_t i = 0; i < nparts; i++) {
        f->newest[i] = arb_get_u64(p + 16 + 8 * (size_t)i);
        if (f->newest[i] > f->max_seq)
            f->max_seq = f->newest[i];
    }
    const uint8_t *q = p + 16 + 8 * (size_t)nparts;
    for (size_t i = 0; i < nseen; i++) {
        f->seen[i].account = arb_get_u64(q + 16 * i);
        f->seen[i].partition = (int32_t)arb_get_u32(q + 16 * i + 8);
        if ((uint32_t)f->seen[i].partition >= nparts ||
            (i && f->seen[i].account <= f->seen[i - 1].account))
            return ARB_EREFUSED;
    }
    f->active = 1;
    *used = event_fence_size(f);
    return ARB_OK;
}

static int matcher_save(void *self, void **bytes, size_t *len)
{
    matcher *m = self;
    backlog_flush(m);
    void **eng = calloc(m->n_parts, sizeof *eng);
    size_t *eng_len = calloc(m->n_parts, sizeof *eng_len);
    int rc = eng && eng_len ? ARB_OK : ARB_ENOMEM;
    size_t total = STATE_HDR;
    for (size_t i = 0; i < m->n_parts && !rc; i++) {
        rc = book_engine_save(m->parts[i]->engine, NULL, NULL, &eng[i], &eng_len[i]);
        total += PART_HDR + eng_len[i] + event_fence_size(&m->parts[i]->events);
    }
    size_t waiting = m->pending.len - m->pending.head;
    total += 8 + waiting;
    uint8_t *p = rc ? NULL : calloc(1, total);
    if (!rc && !p)
        rc = ARB_ENOMEM;
    if (!rc) {
        memcpy(p, STATE_MAGIC, 4);
        arb_put_u32(p + 4, MATCHER_STATE_VERSION);
        arb_put_u32(p + 8, (uint32_t)m->n_parts);
        size_t off = STATE_HDR;
        for (size_t i = 0; i < m->n_parts; i++) {
            const partition_books *pb = m->parts[i];
            uint8_t *h = p + off;
            arb_put_u32(h, (uint32_t)pb->partition);
            arb_put_u32(h + 4, (pb->trades.active ? 1u : 0u) | (pb->md.active ? 2u : 0u) |
                                   (pb->from_start ? 4u : 0u) | (pb->events.active ? 8u : 0u));
            arb_put_i64(h + 8, pb->applied);
            arb_put_i64(h + 16, pb->snapped);
            arb_put_u64(h + 24, pb->key);
            arb_put_u64(h + 32, pb->last_trade_id);
            arb_put_u64(h + 40, pb->trades.trade_id);
            memcpy(h + 48, pb->md.venue, ARB_VENUE_LEN);
            memcpy(h + 56, pb->md.symbol, ARB_SYMBOL_LEN);
            arb_put_u64(h + 72, pb->md.md_seq);
            h[80] = pb->md.md_kind;
            arb_put_u64(h + 88, eng_len[i]);
            memcpy(h + PART_HDR, eng[i], eng_len[i]);
            off += PART_HDR + eng_len[i];
            off += event_fence_put(&pb->events, p + off);
        }
        arb_put_u64(p + off, m->pending.records);
        if (waiting)
            memcpy(p + off + 8, m->pending.bytes + m->pending.head, waiting);
        *bytes = p;
        *len = total;
    }
    for (size_t i = 0; eng && i < m->n_parts; i++)
        free(eng[i]);
    free(eng);
    free(eng_len);
    return rc;
}

/* Checks the saved backlog record by record before taking it. */
static int restore_backlog(matcher *m, const uint8_t *p, size_t len, uint64_t records)
{
    size_t off = 0;
    for (uint64_t i = 0; i < records; i++) {
        if (len - off < BACKLOG_HDR || len - off - BACKLOG_HDR < arb_get_u32(p + off + 2) ||
            arb_get_u16(p + off) >= ARB_TOPIC_MAX)
            return ARB_EREFUSED;
        off += BACKLOG_HDR + arb_get_u32(p + off + 2);
    }
    if (off != len || len > BACKLOG_CAP)
        return ARB_EREFUSED;
    if (len) {
        m->pending.bytes = malloc(len);
        if (!m->pending.bytes)
            return ARB_ENOMEM;
        memcpy(m->pending.bytes, p, len);
        m->pending.cap = m->pending.len = len;
        m->pending.records = records;
    }
    return ARB_OK;
}

/* Reads the partitions of a format 2 or 3 state into fresh entries (nothing of
 * m changes); returns the offset of the backlog part in *tail. */
static int restore_parts(matcher *m, const uint8_t *p, size_t len, partition_books **parts,
                         uint32_t n, uint32_t format, size_t *tail)
{
    size_t off = STATE_HDR;
    for (uint32_t i = 0; i < n; i++) {
        if (len - off < PART_HDR)
            return ARB_EREFUSED;
        const uint8_t *h = p + off;
        uint64_t eng_len = arb_get_u64(h + 88);
        if (eng_len > len - off - PART_HDR)
            return ARB_EREFUSED;
        partition_books *pb = parts[i] = calloc(1, sizeof *pb);
        if (!pb)
            return ARB_ENOMEM;
        pb->partition = (int32_t)arb_get_u32(h);
        for (uint32_t k = 0; k < i; k++)
            if (parts[k]->partition == pb->partition)
                return ARB_EREFUSED;
        uint32_t fences = arb_get_u32(h + 4);
        pb->trades.active = (fences & 1u) != 0;
        pb->md.active = (fences & 2u) != 0;
        pb->from_start = (fences & 4u) != 0;
        pb->applied = arb_get_i64(h + 8);
        pb->snapped = arb_get_i64(h + 16);
        pb->key = arb_get_u64(h + 24);
        pb->last_trade_id = arb_get_u64(h + 32);
        pb->trades.trade_id = arb_get_u64(h + 40);
        memcpy(pb->md.venue, h + 48, ARB_VENUE_LEN);
        memcpy(pb->md.symbol, h + 56, ARB_SYMBOL_LEN);
        pb->md.md_seq = arb_get_u64(h + 72);
        pb->md.md_kind = h[80];
        pb->staged_offset = -1;
        int rc = engine_new(m, &pb->engine, 0);
        if (rc == ARB_OK)
            rc = book_engine_restore(pb->engine, h + PART_HDR, eng_len);
        if (rc)
            return rc;
        off += PART_HDR + eng_len;
        if (format >= 3 && (fences & 8u)) {
            size_t used = 0;
            if ((rc = event_fence_get(&pb->events, p + off, len - off, &used)) != ARB_OK)
                return rc;
            off += used;
        }
    }
    *tail = off;
    return len - off >= 8 ? ARB_OK : ARB_EREFUSED;
}

static int restore_v2(matcher *m, const uint8_t *p, size_t len, uint32_t format)
{
    uint32_t n = arb_get_u32(p + 8);
    if (n == 0 || n > 1u << 16)
        return ARB_EREFUSED;
    partition_books **parts = calloc(n, sizeof *parts);
    if (!parts)
        return ARB_ENOMEM;
    size_t tail = 0;
    int rc = restore_parts(m, p, len, parts, n, format, &tail);
    partition_books *local = NULL;
    for (uint32_t i = 0; i < n && !rc; i++)
        if (parts[i]->partition == -1)
            local = parts[i];
    if (!rc && !local)
        rc = ARB_EREFUSED;
    backlog keep = m->pending;
    if (!rc) {
        memset(&m->pending, 0, sizeof m->pending);
        rc = restore_backlog(m, p + tail + 8, len - tail - 8, arb_get_u64(p + tail));
        if (rc) {
            free(m->pending.bytes);
            m->pending = keep;
        }
    }
    if (rc) {
        for (uint32_t i = 0; i < n; i++)
            partition_books_free(parts[i]);
        free(parts);
        return rc;
    }
    free(keep.bytes);
    /* Swap in the new partitions; the books' owners follow. */
    for (size_t i = 0; i < m->n_parts; i++)
        partition_books_free(m->parts[i]);
    free(m->parts);
    m->parts = parts;
    m->n_parts = m->cap_parts = n;
    m->local = local;
    size_t books = book_engine_book_count(local->engine);
    memset(m->owner, 0, books * sizeof *m->owner);
    for (uint32_t i = 0; i < n; i++)
        for (size_t b = 0; parts[i] != local && b < books; b++) {
            order_book_stats st;
            order_book_get_stats(parts[i]->engine, book_engine_book_at(parts[i]->engine, b), &st);
            if (st.md_seq || st.trades)
                m->owner[b] = parts[i];
        }
    return ARB_OK;
}

static int restore_v1(matcher *m, const uint8_t *p, size_t len)
{
    uint64_t eng_len = arb_get_u64(p + 8);
    if (eng_len > len - STATE_HDR || len - STATE_HDR - eng_len < 8)
        return ARB_EREFUSED;
    const uint8_t *tail = p + STATE_HDR + eng_len;
    size_t tail_len = len - STATE_HDR - eng_len - 8;
    /* The backlog is checked first: the engine restore is the last step. */
    backlog keep = m->pending;
    memset(&m->pending, 0, sizeof m->pending);
    int rc = restore_backlog(m, tail + 8, tail_len, arb_get_u64(tail));
    if (rc == ARB_OK)
        rc = book_engine_restore(m->local->engine, p + STATE_HDR, eng_len);
    if (rc) {
        free(m->pending.bytes);
        m->pending = keep;
        return rc;
    }
    free(keep.bytes);
    return ARB_OK;
}

static int matcher_restore(void *self, uint32_t state_version, const void *bytes, size_t len)
{
    matcher *m = self;
    const uint8_t *p = bytes;
    int rc = ARB_EREFUSED;
    if (len >= STATE_HDR && !memcmp(p, STATE_MAGIC, 4) && arb_get_u32(p + 4) == state_version) {
        if (state_version == 1)
            rc = restore_v1(m, p, len);
        else if (state_version == 2 || state_version == MATCHER_STATE_VERSION)
            rc = restore_v2(m, p, len, state_version);
        else
            arb_warn(m->ctx, "refusing matcher state version %u (this build reads 1 to %u)",
                     state_version, MATCHER_STATE_VERSION);
    } else {
        arb_warn(m->ctx, "refusing matcher state: not a matcher state of version %u",
                 state_version);
    }
    /* Never ARB_EREFUSED, which would have the host start this matcher
     * empty: its resting orders would leave the books with no event, their
     * owners still holding them open, and trade ids and sequences would
     * start again inside the run. A state this build cannot take fails the
     * change instead, and the running matcher keeps its books. */
    if (rc == ARB_EREFUSED) {
        arb_warn(m->ctx, "the running books do not fit the new configuration (an instrument's "
                         "tick, lot or decimals changed, or another build's state): the change "
                         "is refused and the books stay as they are; cancel the resting orders "
                         "of the changed instruments first, or restart");
        rc = ARB_EINVAL;
    }
    return rc;
}

static const char *const matcher_publishes[] = {"order_events", "trade_executed", "market_data",
                                                "matcher_snapshots", NULL};
static const char *const matcher_subscribes[] = {"order_commands", NULL};

static const arb_plugin matcher_plugin = {
    .abi_version = ARB_ABI_VERSION,
    .size = sizeof(arb_plugin),
    .name = "matcher",
    .version = "1.2.0",
    .state_version = MATCHER_STATE_VERSION,
    .publishes = matcher_publishes,
    .subscribes = matcher_subscribes,
    .create = matcher_create,
    .start = matcher_start,
    .stop = matcher_stop,
    .destroy = matcher_destroy,
    .save = matcher_save,
    .restore = matcher_restore,
};

ARB_PLUGIN_DEFINE(matcher_plugin)

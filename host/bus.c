/*
 * bus.c -- the in-process bus: topics, subscriptions, publish and delivery.
 *
 * A publish copies the record once into the ring from the publisher's loop to
 * each loop that has subscribers to the topic; delivery hands every subscriber
 * on that loop a pointer into the ring (zero-copy fan-out), valid for the
 * callback. Publishing from inside a callback only enqueues: the outermost
 * delivery loop on the thread picks it up, so there is no recursion, and
 * other loops are woken once at its end. arb_batch (arbh_bus_batch) gives a
 * plugin's own events the same. A publish outside both delivers at once to
 * the subscribers on its own loop and wakes the other loops it reached
 * (arb/plugin.h states this to plugins). Order: records from one loop to
 * another travel through one FIFO, so each subscriber sees each publisher's
 * records of a topic in order. A subscription made with keys
 * (arb_subscribe_keys) is skipped for records of other keys, and a
 * participant's link holds a record only for a participant that reads it
 * (latency.c).
 *
 * Full queue policy: if any destination ring lacks room, publish enqueues
 * nothing anywhere and returns ARB_EFULL (counted per topic); the publisher
 * still holds its record and decides (retry later, answer 503, ...). Nothing
 * accepted is ever dropped.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "host.h"
#include "latency.h"
#include "transport.h"

/* One record in this many carries its publish time for the latency histogram:
 * reading the clock on every record would cost more than the delivery. */
#define LATENCY_SAMPLE_MASK 63u

static const char *const well_known[ARB_TOPIC_WELL_KNOWN] = {
    "order_commands", "order_events",  "trade_executed",   "market_data",
    "system_ticks",   "market_events", "service_registry",
};

static int topic_create_locked(arbh_host *h, const char *name)
{
    int n = atomic_load(&h->ntopics);
    if (n >= ARB_TOPIC_MAX)
        return ARB_ENOMEM;
    arbh_topic *t = aligned_alloc(64, (sizeof *t + 63) & ~(size_t)63);
    if (!t)
        return ARB_ENOMEM;
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->id = n;
    t->remote = arbh_xport_routes(h, name);
    h->topics[n] = t;
    atomic_store(&h->ntopics, n + 1);
    return n;
}

static void done_poll_cb(int fd, short what, void *arg);

static void sub_free(arbh_sub *s)
{
    free(s->keys);
    free(s);
}

int arbh_bus_init_loops(arbh_host *h)
{
    h->done_ev = event_new(h->loops[0]->base, -1, 0, done_poll_cb, h);
    return h->done_ev ? ARB_OK : ARB_ENOMEM;
}

int arbh_bus_init(arbh_host *h)
{
    pthread_mutex_init(&h->topic_mu, NULL);
    for (int i = 0; i < ARB_TOPIC_WELL_KNOWN; i++)
        if (topic_create_locked(h, well_known[i]) != i)
            return ARB_ENOMEM;
    return ARB_OK;
}

void arbh_bus_free(arbh_host *h)
{
    if (h->done_ev)
        event_free(h->done_ev);
    h->done_ev = NULL;
    free(h->inflight);
    h->inflight = NULL;
    h->ninflight = h->capinflight = 0;
    int n = atomic_load(&h->ntopics);
    for (int i = 0; i < n; i++) {
        arbh_topic *t = h->topics[i];
        for (int l = 0; l < ARBH_MAX_LOOPS; l++) {
            for (size_t k = 0; k < t->subs[l].count; k++)
                sub_free(t->subs[l].items[k]);
            free(t->subs[l].items);
        }
        free(t);
        h->topics[i] = NULL;
    }
    atomic_store(&h->ntopics, 0);
    pthread_mutex_destroy(&h->topic_mu);
}

int arbh_bus_topic(arbh_host *h, const char *name)
{
    if (!name || !*name || strlen(name) >= sizeof h->topics[0]->name)
        return ARB_EINVAL;
    pthread_mutex_lock(&h->topic_mu);
    int n = atomic_load(&h->ntopics), id = -1;
    for (int i = 0; i < n && id < 0; i++)
        if (!strcmp(h->topics[i]->name, name))
            id = i;
    if (id < 0)
        id = topic_create_locked(h, name);
    pthread_mutex_unlock(&h->topic_mu);
    return id;
}

static inline int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void wake_remote(arbh_loop *from)
{
    uint64_t dirty = from->dirty;
    from->dirty = 0;
    atomic_thread_fence(memory_order_seq_cst);
    while (dirty) {
        int d = __builtin_ctzll(dirty);
        dirty &= dirty - 1;
        arbh_loop *to = from->host->loops[d];
        if (atomic_exchange(&to->waiting, 0)) {
            arb_counter_add(&from->wakes, 1);
            uint64_t one = 1;
            ssize_t w = write(to->wake_fd, &one, sizeof one);
            (void)w; /* EAGAIN: the counter is already non-zero, a wake is pending */
        }
    }
}

static void compact_subs(arbh_host *h, arbh_loop *loop)
{
    if (!loop->needs_compact)
        return;
    loop->needs_compact = false;
    int n = atomic_load(&h->ntopics);
    for (int i = 0; i < n; i++) {
        arbh_topic *t = h->topics[i];
        arbh_sub_list *sl = &t->subs[loop->index];
        if (!sl->needs_compact)
            continue;
        size_t w = 0;
        for (size_t r = 0; r < sl->count; r++) {
            if (sl->items[r]->dead)
                sub_free(sl->items[r]);
            else
                sl->items[w++] = sl->items[r];
        }
        sl->count = w;
        sl->needs_compact = false;
        if (w == 0)
            atomic_fetch_and(&t->loop_mask, ~(1ull << loop->index));
    }
}

/* Records from the Kafka transport carry where they sit in Kafka in front of
 * the payload. */
typedef struct arbh_origin {
    int64_t offset;
    int32_t partition;
    int32_t pad;
} arbh_origin;
#define ARBH_REC_ORIGIN 0x0001u

static inline void deliver(arbh_host *h, arbh_loop *loop, const arbh_rec *rec)
{
    arbh_topic *t = h->topics[rec->topic];
    arbh_sub_list *sl = &t->subs[loop->index];
    arb_msg m = {rec + 1, rec->len, rec->topic, 0, rec->key, -1, -1};
    if (rec->flags & ARBH_REC_ORIGIN) {
        const arbh_origin *o = (const arbh_origin *)(rec + 1);
        m.data = o + 1;
        m.len -= (uint32_t)sizeof *o;
        m.partition = o->partition;
        m.offset = o->offset;
    }
    /* Count fixed at entry: a subscription made by a callback starts with the
     * next record. Items are re-read each time: a callback may grow the array. */
    size_t n = sl->count;
    /* A venue's records reach participants over their links (latency.c):
     * held there for each participant (their bytes once), delivered to it
     * when due. */
    bool links =
        h->lat_on && rec->topic >= ARB_TOPIC_ORDER_EVENTS && rec->topic <= ARB_TOPIC_MARKET_DATA;
    /* one copy for every participant, and the record's number for their
     * links' decisions */
    arbh_lat_hold share = {NULL, 0, links ? ++loop->lat_records : 0};
    for (size_t i = 0; i < n; i++) {
        arbh_sub *s = sl->items[i];
        if (!s->active)
            continue;
        bool reads = arbh_keys_want(s->keys, rec->key);
        /* (An order event of an account the participant never sent a
         * command for passes its links by: checked inline, it is most.) */
        if (__builtin_expect(links, 0) && s->lat &&
            !(rec->topic == ARB_TOPIC_ORDER_EVENTS && arbh_latency_passes_by(s->lat, &m)) &&
            arbh_latency_hold_down(loop, s->owner, reads, &m, &share))
            continue;
        if (!reads)
            continue;
        arbh_running prev = arbh_enter(s->owner, ARBH_CB_DELIVER, rec->topic);
        s->fn(s->user, &m);
        arbh_leave(prev);
    }
    arbh_topic_stats *st = &t->stats[loop->index];
    arb_counter_add(&st->delivered, 1);
    if (rec->sent_ns)
        arb_hist_observe(&st->latency, (uint64_t)(mono_ns() - rec->sent_ns));
}

/* True if a paused instance on this loop subscribes to the record's topic:
 * the ring then waits at this record (order is kept, nothing is skipped). */
static bool held_by_pause(arbh_host *h, arbh_loop *loop, const arbh_rec *rec)
{
    arbh_sub_list *sl = &h->topics[rec->topic]->subs[loop->index];
    for (size_t i = 0; i < sl->count; i++)
        if (sl->items[i]->active && sl->items[i]->owner->paused)
            return true;
    return false;
}

static size_t drain_ring(arbh_host *h, arbh_loop *loop, int src, size_t budget)
{
    size_t n = 0;
    arbh_ring *r = loop->in[src];
    arbh_rec *rec;
    while (n < budget && (rec = arbh_ring_peek(r)) != NULL) {
        if (loop->npaused && held_by_pause(h, loop, rec)) {
            loop->held |= 1ull << src;
            break;
        }
        deliver(h, loop, rec);
        arbh_ring_release(r, rec);
        n++;
    }
    return n;
}

void arbh_bus_set_paused(arbh_instance *inst, bool paused)
{
    arbh_loop *loop = inst->loop;
    if (inst->paused == paused)
        return;
    inst->paused = paused;
    loop->npaused += paused ? 1 : -1;
    if (!paused) { /* look at every ring again */
        loop->held = 0;
        if (loop->wake_ev)
            event_active(loop->wake_ev, EV_READ, 0);
    }
}

bool arbh_bus_pending(arbh_loop *loop)
{
    for (int s = 0; s < loop->host->nloops; s++)
        if (!arbh_ring_empty(loop->in[s]) && !(loop->held & (1ull << s)))
            return true;
    return false;
}

size_t arbh_bus_drain(arbh_loop *loop, size_t budget)
{
    arbh_host *h = loop->host;
    size_t total = 0, got;
    loop->depth++;
    do {
        got = 0;
        for (int s = 0; s < h->nloops && total + got < budget; s++)
            if (!(loop->held & (1ull << s)))
                got += drain_ring(h, loop, s, budget - total - got);
        total += got;
    } while (got && total < budget);
    loop->depth--;
    if (loop->depth == 0) {
        compact_subs(h, loop);
        if (loop->dirty)
            wake_remote(loop);
        if (total >= budget && loop->wake_ev)
            event_active(loop->wake_ev, EV_READ, 0); /* finish after other events */
    }
    return total;
}

/* The loop's wake event: drain, then declare itself idle, re-checking after
 * the flag is visible so a record published in between is not stranded. */
void arbh_bus_wake_cb(int fd, short what, void *arg)
{
    (void)what;
    arbh_loop *loop = arg;
    uint64_t v;
    ssize_t r = read(fd, &v, sizeof v);
    (void)r;
    arbh_bus_drain(loop, 65536);
    atomic_store(&loop->waiting, 1);
    atomic_thread_fence(memory_order_seq_cst);
    if (arbh_bus_pending(loop)) {
        atomic_store(&loop->waiting, 0);
        event_active(loop->wake_ev, EV_READ, 0);
    }
}

/* Copies one record into the ring from `loop` to every loop in `mask`, or
 * into none if any lacks room. `pos`, if given, gets for each destination the
 * ring position just past the record (delivery tracking). */
static inline __attribute__((always_inline)) int enqueue(arbh_host *h, arbh_loop *loop,
                                                         arbh_topic *t, uint64_t mask, uint64_t key,
                                                         const void *data, size_t len,
                                                         const arbh_origin *origin, uint64_t *pos)
{
    arbh_topic_stats *st = &t->stats[loop->index];
    size_t olen = origin ? sizeof *origin : 0;
    uint64_t need = arbh_rec_size((uint32_t)(len + olen));
    for (uint64_t m = mask; m; m &= m - 1)
        if (!arbh_ring_fits(h->loops[__builtin_ctzll(m)]->in[loop->index], need)) {
            arb_counter_add(&st->rejected, 1);
            return ARB_EFULL;
        }
    int64_t sent = (++loop->sample & LATENCY_SAMPLE_MASK) ? 0 : mono_ns();
    for (uint64_t m = mask; m; m &= m - 1) {
        int d = __builtin_ctzll(m);
        arbh_ring *r = h->loops[d]->in[loop->index];
        uint64_t next;
        arbh_rec *rec = arbh_ring_claim(r, need, &next);
        rec->len = (uint32_t)(len + olen);
        rec->topic = (uint16_t)t->id;
        rec->flags = origin ? ARBH_REC_ORIGIN : 0;
        rec->key = key;
        rec->sent_ns = sent;
        if (origin)
            memcpy(rec + 1, origin, olen);
        memcpy((char *)(rec + 1) + olen, data, len);
        arbh_ring_publish(r, next);
        if (pos)
            pos[d] = next;
        if (d != loop->index)
            loop->dirty |= 1ull << d;
    }
    return ARB_OK;
}

/* Outside any callback, deliver to this loop's subscribers now and wake the
 * other loops that got records. */
static inline __attribute__((always_inline)) void flush(arbh_host *h, arbh_loop *loop,
                                                        uint64_t mask)
{
    if (loop->depth)
        return;
    if (mask & (1ull << loop->index)) {
        loop->depth++;
        if (!(loop->held & (1ull << loop->index)))
            drain_ring(h, loop, loop->index, SIZE_MAX);
        loop->depth--;
        compact_subs(h, loop);
    }
    if (loop->dirty)
        wake_remote(loop);
}

int arbh_bus_publish(arbh_instance *inst, int topic, uint64_t key, const void *data, size_t len)
{
    arbh_host *h = inst->host;
    arbh_loop *loop = inst->loop;
    if ((unsigned)topic >= (unsigned)atomic_load_explicit(&h->ntopics, memory_order_acquire) ||
        len > h->queue_bytes / 4 || (len && !data))
        return ARB_EINVAL;
    arbh_topic *t = h->topics[topic];
    arb_counter_add(&t->stats[loop->index].published, 1);
    /* A participant's order command travels its link to the venue first. */
    if (__builtin_expect(inst->lat != NULL, 0) && topic == ARB_TOPIC_ORDER_COMMANDS &&
        arbh_latency_hold_up(inst, topic, key, data, len))
        return ARB_OK;
    if (t->remote) /* through the transport; local subscribers get it back from there */
        return arbh_xport_produce(h, t->name, key, data, len);
    uint64_t mask = atomic_load_explicit(&t->loop_mask, memory_order_acquire);
    if (!mask)
        return ARB_OK; /* nobody listens: nothing to deliver */
    int rc = enqueue(h, loop, t, mask, key, data, len, NULL, NULL);
    if (rc == ARB_OK)
        flush(h, loop, mask);
    return rc;
}

/* arb_batch: fn's publishes are queued as a delivery's are (loop->depth),
 * then flushed once: this loop's subscribers get them, and every other loop
 * that got records is woken once. Inside a delivery this is that delivery's
 * batch already. */
int arbh_bus_batch(arbh_instance *inst, void (*fn)(void *user), void *user)
{
    arbh_loop *loop = inst->loop;
    loop->depth++;
    fn(user);
    loop->depth--;
    flush(inst->host, loop, 1ull << loop->index);
    return ARB_OK;
}

int arbh_bus_publish_held(arbh_loop *loop, int topic, uint64_t key, const void *data, size_t len)
{
    arbh_host *h = loop->host;
    arbh_topic *t = h->topics[topic];
    if (t->remote)
        return arbh_xport_produce(h, t->name, key, data, len);
    uint64_t mask = atomic_load_explicit(&t->loop_mask, memory_order_acquire);
    if (!mask)
        return ARB_OK;
    int rc = enqueue(h, loop, t, mask, key, data, len, NULL, NULL);
    if (rc == ARB_OK)
        flush(h, loop, mask);
    return rc;
}

void arbh_bus_deliver_held(arbh_loop *loop, arbh_instance *to, const arb_msg *m)
{
    arbh_host *h = loop->host;
    /* Like a delivery from the ring: what the callbacks publish is
     * enqueued, then drained here before returning; a subscription a
     * callback makes (a later id) starts with the next record. */
    int last = to->next_id;
    loop->depth++;
    for (arbh_sub *s = to->by_topic[m->topic]; s; s = s->next_same) {
        if (!s->active || s->id > last || !arbh_keys_want(s->keys, m->key))
            continue;
        arbh_running prev = arbh_enter(to, ARBH_CB_DELIVER, m->topic);
        s->fn(s->user, m);
        arbh_leave(prev);
    }
    if (!(loop->held & (1ull << loop->index)))
        drain_ring(h, loop, loop->index, SIZE_MAX);
    loop->depth--;
    if (loop->depth == 0) {
        compact_subs(h, loop);
        if (loop->dirty)
            wake_remote(loop);
    }
}

/* ---- records from the external transport ---- */

typedef struct arbh_inflight {
    uint64_t mask;
    uint64_t pos[ARBH_MAX_LOOPS];
    void (*done)(void *token);
    void *token;
} arbh_inflight;

int arbh_bus_inject(arbh_host *h, const char *topic_name, int32_t partition, int64_t offset,
                    uint64_t key, const void *data, size_t len, void (*done)(void *token),
                    void *token)
{
    arbh_loop *loop = h->loops[0];
    int topic = arbh_bus_topic(h, topic_name);
    arbh_origin origin = {offset, partition, 0};
    if (topic < 0 || len + sizeof origin > h->queue_bytes / 4)
        return ARB_EINVAL;
    arbh_topic *t = h->topics[topic];
    uint64_t mask = atomic_load_explicit(&t->loop_mask, memory_order_acquire);
    /* Room to track it first: an enqueued record whose done() could never
     * run would hold the consumer's commits back forever. */
    if (done && h->ninflight == h->capinflight) {
        size_t cap = h->capinflight ? h->capinflight * 2 : 256;
        arbh_inflight *grown = realloc(h->inflight, cap * sizeof *grown);
        if (!grown)
            return ARB_EFULL; /* offered again later */
        h->inflight = grown;
        h->capinflight = cap;
    }
    arbh_inflight f = {mask, {0}, done, token};
    if (mask) {
        int rc = enqueue(h, loop, t, mask, key, data, len, &origin, f.pos);
        if (rc != ARB_OK)
            return rc;
    }
    if (done)
        h->inflight[h->ninflight++] = f;
    flush(h, loop, mask);
    if (arbh_bus_poll_done(h) && h->done_ev && !event_pending(h->done_ev, EV_TIMEOUT, NULL)) {
        struct timeval tv = {0, 500};
        event_add(h->done_ev, &tv);
    }
    return ARB_OK;
}

/* While injected records are in flight on other loops, look again soon. */
static void done_poll_cb(int fd, short what, void *arg)
{
    (void)fd, (void)what;
    arbh_host *h = arg;
    if (arbh_bus_poll_done(h)) {
        struct timeval tv = {0, 500};
        event_add(h->done_ev, &tv);
    }
}

/* Reports, in order, the injected records every destination has handled: a
 * ring's read position passes a record only after all its subscribers on
 * that loop returned. */
size_t arbh_bus_poll_done(arbh_host *h)
{
    size_t k = 0;
    while (k < h->ninflight) {
        arbh_inflight *f = &h->inflight[k];
        bool handled = true;
        for (uint64_t m = f->mask; m && handled; m &= m - 1) {
            int d = __builtin_ctzll(m);
            handled =
                atomic_load_explicit(&h->loops[d]->in[0]->tail, memory_order_acquire) >= f->pos[d];
        }
        if (!handled)
            break;
        f->done(f->token);
        k++;
    }
    if (k) { /* inflight is NULL until the first injected record */
        memmove(h->inflight, h->inflight + k, (h->ninflight - k) * sizeof *h->inflight);
        h->ninflight -= k;
    }
    return h->ninflight;
}

/* A subscription reading `keys` (NULL: every key), which it then owns, or
 * frees on failure. */
static int subscribe(arbh_instance *inst, int topic, arb_msg_fn fn, void *user, arbh_keys *keys)
{
    arbh_host *h = inst->host;
    if ((unsigned)topic >= (unsigned)atomic_load(&h->ntopics) || !fn) {
        free(keys);
        return ARB_EINVAL;
    }
    arbh_topic *t = h->topics[topic];
    arbh_sub_list *sl = &t->subs[inst->loop->index];
    arbh_sub *s = calloc(1, sizeof *s);
    if (!s) {
        free(keys);
        return ARB_ENOMEM;
    }
    if (sl->count == sl->cap) {
        size_t cap = sl->cap ? sl->cap * 2 : 8;
        arbh_sub **items = realloc(sl->items, cap * sizeof *items);
        if (!items) {
            free(keys);
            free(s);
            return ARB_ENOMEM;
        }
        sl->items = items;
        sl->cap = cap;
    }
    if (inst->nsubs == inst->capsubs) {
        size_t cap = inst->capsubs ? inst->capsubs * 2 : 8;
        arbh_sub **items = realloc(inst->subs, cap * sizeof *items);
        if (!items) {
            free(keys);
            free(s);
            return ARB_ENOMEM;
        }
        inst->subs = items;
        inst->capsubs = cap;
    }
    if (t->remote) /* the consumer takes it from any thread */
        arbh_xport_want(h, t->name);
    *s = (arbh_sub){fn,        user, inst, ++inst->next_id, topic, !inst->staging, false,
                    inst->lat, keys, NULL};
    sl->items[sl->count++] = s;
    inst->subs[inst->nsubs++] = s;
    arbh_sub **tail = &inst->by_topic[topic];
    while (*tail)
        tail = &(*tail)->next_same;
    *tail = s;
    atomic_fetch_or(&t->loop_mask, 1ull << inst->loop->index);
    return s->id;
}

int arbh_bus_subscribe(arbh_instance *inst, int topic, arb_msg_fn fn, void *user)
{
    return subscribe(inst, topic, fn, user, NULL);
}

static int range_cmp(const void *a, const void *b)
{
    const arb_key_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

int arbh_bus_subscribe_keys(arbh_instance *inst, int topic, const arb_key_range *keys, size_t n,
                            arb_msg_fn fn, void *user)
{
    if (!keys || n == 0 || n > SIZE_MAX / 2 / sizeof *keys)
        return ARB_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (keys[i].lo > keys[i].hi)
            return ARB_EINVAL;
    arbh_keys *k = malloc(sizeof *k + n * sizeof *keys);
    if (!k)
        return ARB_ENOMEM;
    memcpy(k->r, keys, n * sizeof *keys);
    qsort(k->r, n, sizeof *keys, range_cmp);
    /* Merge what overlaps or touches: each key in at most one range. */
    size_t w = 0;
    for (size_t i = 1; i < n; i++) {
        arb_key_range *last = &k->r[w];
        if (last->hi == UINT64_MAX || k->r[i].lo <= last->hi + 1) {
            if (k->r[i].hi > last->hi)
                last->hi = k->r[i].hi;
        } else {
            k->r[++w] = k->r[i];
        }
    }
    k->n = w + 1;
    return subscribe(inst, topic, fn, user, k);
}

bool arbh_bus_reads(const arbh_instance *inst, int topic, uint64_t key)
{
    for (const arbh_sub *s = inst->by_topic[topic]; s; s = s->next_same)
        if (s->active && arbh_keys_want(s->keys, key))
            return true;
    return false;
}

int arbh_bus_unsubscribe(arbh_instance *inst, int id)
{
    for (size_t i = 0; i < inst->nsubs; i++) {
        arbh_sub *s = inst->subs[i];
        if (s->id != id)
            continue;
        s->active = false;
        s->dead = true;
        arbh_sub **link = &inst->by_topic[s->topic];
        while (*link != s)
            link = &(*link)->next_same;
        *link = s->next_same;
        inst->host->topics[s->topic]->subs[inst->loop->index].needs_compact = true;
        inst->loop->needs_compact = true;
        inst->subs[i] = inst->subs[--inst->nsubs];
        if (inst->loop->depth == 0)
            compact_subs(inst->host, inst->loop);
        return ARB_OK;
    }
    return ARB_ENOENT;
}

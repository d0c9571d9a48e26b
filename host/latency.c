/*
 * latency.c -- the links' delays (see latency.h): [latency] parsing, the
 * distributions and their seeded draws, the per-loop queue of held records
 * in delivery order, and the per-link metrics. What a held record becomes
 * when due (a publish, or a delivery to one participant) is bus.c's.
 * Not here: the distributions (latency_dist.c), which topics are delayed in
 * which direction (bus.c decides where it calls the hooks), and anything a
 * plugin sees.
 */
#include "latency.h"

#include <errno.h>
#include <event2/event.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arb/wire.h>

#include "config.h"
#include "host.h"

enum { LAT_UP = 0, LAT_DOWN = 1 };

/* Log-linear buckets: 16 per octave above 16 ns. A quantile is found by
 * their sums by 16 first (an octave each), then within one. */
#define LAT_BUCKETS 640
#define LAT_GROUPS (LAT_BUCKETS / 16)

/* A held record (its bus fields and bytes), once per loop however many
 * links hold it (a venue's market data and trades go to every
 * participant): counted references, carved from chunks of the loop's
 * (lat_chunk), not allocated per record. */
typedef struct lat_chunk lat_chunk;
typedef struct lat_blob {
    lat_chunk *chunk;
    uint32_t refs;
    uint32_t len;
    uint64_t key;
    int64_t offset;
    int32_t partition;
    uint32_t topic;
    /* the record, padded to 8 */
} lat_blob;

/* Blobs are carved one after the other from the loop's current chunk; a
 * chunk counts its blobs still referenced, and when none is left it is
 * used again from its start (the current one), kept as the spare, or freed.
 * The loop's chunks are listed, for arbh_latency_free. */
struct lat_chunk {
    lat_chunk *prev, *next;
    arbh_lat_queue *q;
    size_t used, cap;
    uint64_t live;
    /* blobs */
};
#define LAT_CHUNK (64u * 1024u)

/* One held record on a link: when, and what. */
typedef struct lat_rec {
    int64_t at;
    uint64_t seq;
    lat_blob *blob;
} lat_rec;

/* One direction of a link: its generator and distribution, and the records
 * it holds, in order (a link is FIFO), in a ring of lat_rec that is reused,
 * not allocated per record. */
typedef struct lat_dir {
    uint64_t rng;
    int64_t last_at;      /* the link's previous delivery: FIFO */
    arbh_instance *owner; /* the participant; NULL once it went away */
    lat_rec *q;           /* held records: a ring of cap (a power of two) */
    size_t head, count, cap;
    int64_t head_at; /* the first held record's (at, seq): the heap's key */
    uint64_t head_seq;
    bool queued; /* in its loop's queue of links */
    bool down;   /* to the participant (else from it, to the venue) */
    uint64_t n;
    int64_t min, max;
    uint32_t *hist; /* LAT_BUCKETS, then their sums by 16 (LAT_GROUPS); on first use */
    arbh_metric *delayed, *p50, *p99, *dropped;
    /* Last: its quantile table is cold (every hold reads the fields above
     * and the head of this). */
    arbh_lat_dist dist;
} lat_dir;

typedef struct lat_link {
    char venue[ARB_VENUE_LEN]; /* the padded wire field */
    lat_dir dir[2];
} lat_link;

/* The participant's links, and the accounts it has sent order commands
 * for: only their order events travel its links (see hold_down). The
 * accounts come first: latency.h reads them inline for every order event
 * (arbh_latency_passes_by). */
struct arbh_lat_links {
    arbh_lat_accounts acc;
    size_t n;
    lat_link *items;
    /* The last record the participant's link took (hold_down): its other
     * subscriptions to the topic do not get it now either. */
    uint64_t decided;
};

static void account_add(arbh_lat_links *links, uint64_t a)
{
    arbh_lat_accounts *l = &links->acc;
    if (a == 0 || arbh_lat_account_known(l, a))
        return;
    if (!l->window && (l->window = calloc(ARBH_LAT_WINDOW / 64, sizeof *l->window)))
        l->window_base = a & ~(uint64_t)(ARBH_LAT_WINDOW - 1);
    uint64_t w = a - l->window_base;
    if (l->window && w < ARBH_LAT_WINDOW) {
        l->window[w / 64] |= 1ull << (w % 64);
        return;
    }
    if ((l->n_accounts + 1) * 2 > l->cap_accounts) {
        size_t cap = l->cap_accounts ? l->cap_accounts * 2 : 64;
        uint64_t *t = calloc(cap, sizeof *t);
        if (!t)
            return;
        for (size_t i = 0; i < l->cap_accounts; i++) {
            uint64_t x = l->accounts[i];
            if (!x)
                continue;
            size_t k = arbh_lat_account_slot(x, cap);
            while (t[k])
                k = (k + 1) & (cap - 1);
            t[k] = x;
        }
        free(l->accounts);
        l->accounts = t;
        l->cap_accounts = cap;
    }
    size_t k = arbh_lat_account_slot(a, l->cap_accounts);
    while (l->accounts[k])
        k = (k + 1) & (l->cap_accounts - 1);
    l->accounts[k] = a;
    l->n_accounts++;
}

/* The loop's links that hold records, ordered by their first record's
 * (delivery time, hold order): a heap of links, not of records. */
struct arbh_lat_queue {
    lat_dir **heap;
    size_t n, cap;
    uint64_t seq;
    size_t held;         /* records held, over all links */
    struct event *timer; /* wall-clock mode */
    lat_chunk *chunk;    /* blobs are carved from it */
    lat_chunk *spare;    /* an empty chunk kept for the next */
    lat_chunk *chunks;   /* every chunk (the spare too) */
};

/* ---- metrics ---- */

static unsigned bucket_of(int64_t v)
{
    if (v < 16)
        return v < 0 ? 0 : (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll((uint64_t)v);
    unsigned b = (e - 3) * 16 + (unsigned)(((uint64_t)v >> (e - 4)) & 15);
    return b < LAT_BUCKETS ? b : LAT_BUCKETS - 1;
}

static int64_t bucket_low(unsigned b)
{
    if (b < 16)
        return b;
    unsigned e = b / 16 + 3, m = b % 16;
    return (int64_t)((16ull + m) << (e - 4));
}

static int64_t quantile(const lat_dir *d, double q)
{
    uint64_t want = (uint64_t)ceil(q * (double)d->n), seen = 0;
    if (want == 0)
        want = 1;
    const uint32_t *group = d->hist + LAT_BUCKETS;
    unsigned g = 0;
    while (g < LAT_GROUPS && seen + group[g] < want)
        seen += group[g++];
    for (unsigned b = g * 16; b < LAT_BUCKETS; b++) {
        seen += d->hist[b];
        if (seen >= want) {
            int64_t v = bucket_low(b);
            return v < d->min ? d->min : v > d->max ? d->max : v;
        }
    }
    return d->max;
}

static void observe(lat_dir *d, int64_t delay)
{
    if (!d->hist && !(d->hist = calloc(LAT_BUCKETS + LAT_GROUPS, sizeof *d->hist)))
        return;
    if (d->n == 0 || delay < d->min)
        d->min = delay;
    if (d->n == 0 || delay > d->max)
        d->max = delay;
    d->n++;
    unsigned b = bucket_of(delay);
    d->hist[b]++;
    d->hist[LAT_BUCKETS + b / 16]++;
    if (d->delayed)
        arb_counter_add(&d->delayed->u.counter, 1);
    /* The quantiles are a scan of the buckets: every record at first, then
     * every 256th. */
    if ((d->n <= 256 || (d->n & 255) == 0) && d->p50 && d->p99) {
        arb_gauge_set(&d->p50->u.gauge, quantile(d, 0.5));
        arb_gauge_set(&d->p99->u.gauge, quantile(d, 0.99));
    }
}

/* ---- the queue ---- */

static const lat_rec *head_of(const lat_dir *d) { return &d->q[d->head]; }

static bool earlier(const lat_dir *a, const lat_dir *b)
{
    return a->head_at < b->head_at || (a->head_at == b->head_at && a->head_seq < b->head_seq);
}

static void load_head(lat_dir *d)
{
    if (d->count) {
        const lat_rec *r = head_of(d);
        d->head_at = r->at;
        d->head_seq = r->seq;
    }
}

static int heap_push(arbh_lat_queue *q, lat_dir *d)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64;
        lat_dir **grown = realloc(q->heap, cap * sizeof *grown);
        if (!grown)
            return -1;
        q->heap = grown;
        q->cap = cap;
    }
    size_t i = q->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!earlier(d, q->heap[p]))
            break;
        q->heap[i] = q->heap[p];
        i = p;
    }
    q->heap[i] = d;
    d->queued = true;
    return 0;
}

/* The top link's first record changed (it only ever gets later), or the
 * link is empty and leaves the heap. */
static void heap_fix_top(arbh_lat_queue *q)
{
    lat_dir *d = q->heap[0];
    if (!d->count) {
        d->queued = false;
        d = q->heap[--q->n];
        if (q->n == 0)
            return;
    }
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= q->n)
            break;
        if (c + 1 < q->n && earlier(q->heap[c + 1], q->heap[c]))
            c++;
        if (!earlier(q->heap[c], d))
            break;
        q->heap[i] = q->heap[c];
        i = c;
    }
    q->heap[i] = d;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- the records' bytes ---- */

static size_t blob_span(size_t len) { return sizeof(lat_blob) + ((len + 7) & ~(size_t)7); }

static void chunk_free(lat_chunk *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        c->q->chunks = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
}

/* A blob of `len` bytes with one reference, or NULL. */
static lat_blob *blob_new(arbh_lat_queue *q, const arb_msg *m)
{
    size_t span = blob_span(m->len);
    lat_chunk *c = q->chunk;
    if (c && c->used + span > c->cap && !c->live && c->cap >= sizeof *c + span)
        c->used = sizeof *c;
    else if (!c || c->used + span > c->cap) {
        /* A full chunk still referenced is freed with its last blob
         * (blob_put); an empty one too big to keep is freed now. */
        if (c && !c->live)
            chunk_free(c);
        size_t cap = LAT_CHUNK;
        while (cap < sizeof(lat_chunk) + span)
            cap *= 2;
        if (cap == LAT_CHUNK && q->spare) {
            c = q->spare;
            q->spare = NULL;
        } else {
            if (!(c = malloc(cap)))
                return NULL;
            c->cap = cap;
            c->q = q;
            c->prev = NULL;
            c->next = q->chunks;
            if (c->next)
                c->next->prev = c;
            q->chunks = c;
        }
        c->used = sizeof *c;
        c->live = 0;
        q->chunk = c;
    }
    lat_blob *b = (lat_blob *)((uint8_t *)c + c->used);
    c->used += span;
    c->live++;
    b->chunk = c;
    b->refs = 1;
    b->len = m->len;
    b->key = m->key;
    b->offset = m->offset;
    b->partition = m->partition;
    b->topic = m->topic;
    memcpy(b + 1, m->data, m->len);
    return b;
}

static void blob_put(lat_blob *b)
{
    if (--b->refs)
        return;
    lat_chunk *c = b->chunk;
    if (--c->live)
        return;
    arbh_lat_queue *q = c->q;
    if (c == q->chunk)
        c->used = sizeof *c; /* empty: carve from its start again */
    else if (!q->spare && c->cap == LAT_CHUNK)
        q->spare = c;
    else
        chunk_free(c);
}

/* Delivers the first record of the loop's earliest link. The record is
 * taken off the link first: the callbacks may hold more records on the same
 * link (they go behind it); its bytes stay until the delivery returns. */
static void dispatch_top(arbh_loop *loop)
{
    arbh_lat_queue *q = loop->latq;
    lat_dir *d = q->heap[0];
    lat_rec r = d->q[d->head];
    d->head = (d->head + 1) & (d->cap - 1);
    d->count--;
    q->held--;
    load_head(d);
    heap_fix_top(q);
    int rc = ARB_OK;
    const lat_blob *b = r.blob;
    if (!d->owner)
        rc = ARB_ENOENT;
    else if (d->down)
        arbh_bus_deliver_held(
            loop, d->owner,
            &(arb_msg){b + 1, b->len, (uint16_t)b->topic, 0, b->key, b->partition, b->offset});
    else
        rc = arbh_bus_publish_held(loop, (int)b->topic, b->key, b + 1, b->len);
    blob_put(r.blob);
    if (rc != ARB_OK && d->dropped)
        arb_counter_add(&d->dropped->u.counter, 1);
}

/* A participant held by a hot reload (arbh_bus_set_paused) gets nothing,
 * as from the ring: its link waits, and so does what is behind it in the
 * queue (under the simulated clock, time then moves on without them). */
static bool owner_paused(const lat_dir *d) { return d->owner && d->owner->paused; }

static void wall_timer_cb(evutil_socket_t fd, short what, void *arg);

static void arm_wall_timer(arbh_loop *loop)
{
    arbh_lat_queue *q = loop->latq;
    if (!q->n)
        return;
    if (!q->timer && !(q->timer = evtimer_new(loop->base, wall_timer_cb, loop)))
        return;
    int64_t wait = q->heap[0]->head_at - mono_ns();
    if (wait < 0)
        wait = 0;
    struct timeval tv = {(time_t)(wait / 1000000000), (suseconds_t)(wait % 1000000000 / 1000)};
    evtimer_add(q->timer, &tv);
}

static void wall_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    arbh_loop *loop = arg;
    arbh_lat_queue *q = loop->latq;
    int64_t now = mono_ns();
    while (q->n && q->heap[0]->head_at <= now && !owner_paused(q->heap[0]))
        dispatch_top(loop);
    if (q->n && owner_paused(q->heap[0])) { /* look again in a millisecond */
        struct timeval tv = {0, 1000};
        evtimer_add(q->timer, &tv);
        return;
    }
    arm_wall_timer(loop);
}

void arbh_latency_advance(arbh_loop *loop, int64_t ns)
{
    arbh_lat_queue *q = loop->latq;
    if (!q || loop->depth)
        return;
    while (q->n && q->heap[0]->head_at <= ns && !owner_paused(q->heap[0])) {
        atomic_store_explicit(&loop->host->sim_time, q->heap[0]->head_at, memory_order_relaxed);
        dispatch_top(loop);
    }
}

size_t arbh_latency_pending(const arbh_loop *loop) { return loop->latq ? loop->latq->held : 0; }

/* ---- holding records ---- */

static lat_link *link_of(arbh_lat_links *l, const uint8_t *venue)
{
    for (size_t i = 0; i < l->n; i++)
        if (!memcmp(l->items[i].venue, venue, ARB_VENUE_LEN))
            return &l->items[i];
    return NULL;
}

/* Room for one more record on the link's ring. */
static bool ring_room(lat_dir *d)
{
    if (d->count < d->cap)
        return true;
    size_t cap = d->cap ? d->cap * 2 : 64;
    lat_rec *grown = malloc(cap * sizeof *grown);
    if (!grown)
        return false;
    for (size_t i = 0; i < d->count; i++)
        grown[i] = d->q[(d->head + i) & (d->cap - 1)];
    free(d->q);
    d->q = grown;
    d->cap = cap;
    d->head = 0;
    return true;
}

/* `share`, if given, is the blob of the record being held for several
 * links (arbh_latency_hold_down): the first hold makes it, the others take
 * a reference. */
static bool hold(arbh_loop *loop, lat_dir *d, const arb_msg *m, void **share)
{
    if (!loop->latq && !(loop->latq = calloc(1, sizeof *loop->latq)))
        return false;
    arbh_lat_queue *q = loop->latq;
    if (!ring_room(d))
        return false;
    lat_blob *b = share ? *share : NULL;
    if (b)
        b->refs++;
    else if (!(b = blob_new(q, m)))
        return false;
    int64_t sim = atomic_load_explicit(&loop->host->sim_time, memory_order_relaxed);
    int64_t now = sim ? sim : mono_ns();
    int64_t at = now + arbh_lat_dist_draw(&d->dist, &d->rng);
    if (at < d->last_at)
        at = d->last_at;
    lat_rec *r = &d->q[(d->head + d->count) & (d->cap - 1)];
    *r = (lat_rec){at, q->seq, b};
    d->count++;
    if (!d->queued)
        load_head(d);
    if (!d->queued && heap_push(q, d)) {
        d->count--;
        blob_put(b);
        return false;
    }
    q->seq++;
    q->held++;
    if (share)
        *share = b;
    d->last_at = at;
    observe(d, at - now);
    if (!sim && q->heap[0] == d && d->count == 1)
        arm_wall_timer(loop);
    return true;
}

/* A record the participant reads none of (arb_subscribe_keys) still takes
 * its place on the link: its delay is drawn, in the same order from the
 * same generator as if it were held, and the records behind it wait for it
 * (FIFO). So the records it does read arrive when they would have. */
static void pass(arbh_loop *loop, lat_dir *d)
{
    int64_t sim = atomic_load_explicit(&loop->host->sim_time, memory_order_relaxed);
    int64_t now = sim ? sim : mono_ns();
    int64_t at = now + arbh_lat_dist_draw(&d->dist, &d->rng);
    if (at > d->last_at)
        d->last_at = at;
}

bool arbh_latency_hold_up(arbh_instance *from, int topic, uint64_t key, const void *data,
                          size_t len)
{
    if (len < ARB_ORDER_CMD_LEN)
        return false;
    account_add(from->lat, arb_get_u64((const uint8_t *)data + ARB_WIRE_HDR + 40));
    lat_link *l = link_of(from->lat, (const uint8_t *)data + ARB_WIRE_HDR + 8);
    if (!l || l->dir[LAT_UP].dist.kind == ARBH_LAT_NONE)
        return false;
    arb_msg m = {data, (uint32_t)len, (uint16_t)topic, 0, key, -1, -1};
    return hold(from->loop, &l->dir[LAT_UP], &m, NULL);
}

/* The record's venue link index + 1, or -1 (see arbh_lat_hold). */
static int venue_of(const arbh_lat_links *ls, int topic, const void *data, size_t len)
{
    /* Where each record names its venue. */
    size_t at;
    switch (topic) {
    case ARB_TOPIC_ORDER_EVENTS:
        if (len < ARB_WIRE_HDR + 48)
            return -1;
        at = ARB_WIRE_HDR + 8;
        break;
    case ARB_TOPIC_MARKET_DATA: at = ARB_WIRE_HDR + 8; break;
    case ARB_TOPIC_TRADE_EXECUTED: at = ARB_WIRE_HDR; break;
    default: return -1;
    }
    if (len < at + ARB_VENUE_LEN)
        return -1;
    lat_link *l = link_of((arbh_lat_links *)ls, (const uint8_t *)data + at);
    return l ? (int)(l - ls->items) + 1 : -1;
}

bool arbh_latency_hold_down(arbh_loop *loop, arbh_instance *to, bool reads, const arb_msg *m,
                            arbh_lat_hold *share)
{
    arbh_lat_links *ls = to->lat;
    /* Taken for another of the participant's subscriptions already: one
     * hold per record and participant, wherever its subscriptions sit. */
    if (ls->decided == share->record)
        return true;
    /* A participant's link carries its own acks and fills only: an order
     * event of an account it never sent a command for is another
     * participant's (which it would not receive at all over a network),
     * delivered as before. The bus checks that inline before it calls
     * (arbh_latency_passes_by; most order events are others'), so an order
     * event here is the participant's own. */
    /* Every participant has the same venues' links in the same order
     * (arbh_latency_configure): the venue is looked up once a record. */
    if (!share->venue)
        share->venue = venue_of(ls, m->topic, m->data, m->len);
    if (share->venue < 0)
        return false;
    lat_dir *d = &ls->items[share->venue - 1].dir[LAT_DOWN];
    if (d->dist.kind == ARBH_LAT_NONE)
        return false;
    /* The subscription at hand does not read the key: another of the
     * participant's may. */
    if (!reads && !arbh_bus_reads(to, m->topic, m->key))
        pass(loop, d);
    else if (!hold(loop, d, m, &share->blob))
        return false;
    ls->decided = share->record;
    return true;
}

/* The instance's subscriptions carry its links (arbh_sub.lat). */
static void sync_subs(arbh_instance *in)
{
    for (size_t i = 0; i < in->nsubs; i++)
        in->subs[i]->lat = in->lat;
}

void arbh_latency_rebind(arbh_instance *old, arbh_instance *nw)
{
    nw->lat = old->lat;
    old->lat = NULL;
    sync_subs(old);
    sync_subs(nw);
    for (size_t i = 0; nw->lat && i < nw->lat->n; i++)
        for (int d = 0; d < 2; d++)
            nw->lat->items[i].dir[d].owner = nw;
}

void arbh_latency_forget(arbh_instance *inst)
{
    /* Held records stay queued and are dropped, and counted, when due. */
    for (size_t i = 0; inst->lat && i < inst->lat->n; i++)
        for (int d = 0; d < 2; d++)
            inst->lat->items[i].dir[d].owner = NULL;
}

/* ---- configuration ---- */

typedef struct lat_cfg {
    arbh_host *h;
    arbh_config *cfg;
    char *err;
    size_t n;
    int rc;
    uint64_t seed;
} lat_cfg;

static bool is_participant(const arbh_instance *in)
{
    if (in->is_pseudo || !in->desc || !in->desc->publishes)
        return false;
    for (const char *const *p = in->desc->publishes; *p; p++)
        if (!strcmp(*p, "order_commands"))
            return true;
    return false;
}

static arbh_instance *instance_named(arbh_host *h, const char *name, size_t len)
{
    for (size_t i = 0; i < h->ninstances; i++)
        if (strlen(h->instances[i]->name) == len && !strncmp(h->instances[i]->name, name, len))
            return h->instances[i];
    return NULL;
}

static int cfg_fail(lat_cfg *c, const arbh_cfg_entry *e, const char *what)
{
    snprintf(c->err, c->n, "%s:%d: [latency] %s: %s", e->file, e->line, e->key, what);
    c->rc = ARB_EINVAL;
    return 1;
}

/* Checks one key's shape (VENUE[.INSTANCE][.up|.down] or seed). */
static int check_key(void *user, const arbh_cfg_entry *e)
{
    lat_cfg *c = user;
    arbh_config_find(c->cfg, "latency", e->key); /* every key is checked here: known */
    if (!strcmp(e->key, "seed")) {
        char *end;
        errno = 0;
        c->seed = strtoull(e->value, &end, 10);
        if (end == e->value || *end || errno)
            return cfg_fail(c, e, "expected an unsigned integer");
        return 0;
    }
    const char *dot = strchr(e->key, '.');
    size_t vlen = dot ? (size_t)(dot - e->key) : strlen(e->key);
    if (vlen == 0 || vlen > ARB_VENUE_LEN)
        return cfg_fail(c, e, "expected VENUE[.INSTANCE][.up|.down] or seed");
    if (dot) {
        const char *rest = dot + 1, *dot2 = strchr(rest, '.');
        size_t ilen = dot2 ? (size_t)(dot2 - rest) : strlen(rest);
        bool dir_only = !dot2 && (!strcmp(rest, "up") || !strcmp(rest, "down"));
        if (!dir_only) {
            arbh_instance *in = instance_named(c->h, rest, ilen);
            if (!in || !is_participant(in))
                return cfg_fail(c, e,
                                "no participant instance of that name (an instance whose "
                                "plugin publishes order_commands)");
            if (dot2 && strcmp(dot2 + 1, "up") && strcmp(dot2 + 1, "down"))
                return cfg_fail(c, e, "the direction is up or down");
        }
    }
    arbh_lat_dist d;
    char why[256];
    if (arbh_lat_dist_parse(e->value, &d, why, sizeof why))
        return cfg_fail(c, e, why);
    arbh_lat_dist_free(&d);
    return 0;
}

static uint64_t fnv(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

/* The value for (venue, instance, direction): the most specific key. */
static const char *lookup(arbh_config *cfg, const char *venue, const char *inst, const char *dir)
{
    char key[256];
    const char *v;
    snprintf(key, sizeof key, "%s.%s.%s", venue, inst, dir);
    if ((v = arbh_config_get(cfg, "latency", key, NULL)))
        return v;
    snprintf(key, sizeof key, "%s.%s", venue, inst);
    if ((v = arbh_config_get(cfg, "latency", key, NULL)))
        return v;
    snprintf(key, sizeof key, "%s.%s", venue, dir);
    if ((v = arbh_config_get(cfg, "latency", key, NULL)))
        return v;
    return arbh_config_get(cfg, "latency", venue, NULL);
}

typedef struct venue_list {
    char names[64][ARB_VENUE_LEN + 1];
    int n;
} venue_list;

static int collect_venue(void *user, const arbh_cfg_entry *e)
{
    venue_list *vl = user;
    if (!strcmp(e->key, "seed"))
        return 0;
    size_t len = strcspn(e->key, ".");
    for (int i = 0; i < vl->n; i++)
        if (strlen(vl->names[i]) == len && !strncmp(vl->names[i], e->key, len))
            return 0;
    if (vl->n == 64)
        return 1;
    memcpy(vl->names[vl->n], e->key, len);
    vl->names[vl->n++][len] = 0;
    return 0;
}

static void link_metrics(arbh_host *h, lat_dir *d, const char *inst, const char *venue,
                         const char *dir)
{
    char labels[256];
    snprintf(labels, sizeof labels, "participant=\"%s\",venue=\"%s\",direction=\"%s\"", inst, venue,
             dir);
    d->delayed = arbh_metric_get(h, NULL, 'c', "bus_link_delayed_total", labels,
                                 "Records the link held for their delay");
    d->dropped = arbh_metric_get(h, NULL, 'c', "bus_link_dropped_total", labels,
                                 "Held records whose participant went away or that the bus "
                                 "refused when due");
    d->p50 = arbh_metric_get(h, NULL, 'g', "bus_link_delay_p50_ns", labels,
                             "Median delay applied on the link");
    d->p99 = arbh_metric_get(h, NULL, 'g', "bus_link_delay_p99_ns", labels,
                             "99th percentile of the delays applied on the link");
}

/* A lognormal's table is 8 KB and every draw reads it: links with the same
 * distribution share one (the first one's), so the draws stay in cache. */
static bool same_table(const arbh_lat_dist *a, const arbh_lat_dist *b)
{
    return a != b && a->kind == ARBH_LAT_LOGNORMAL && b->kind == ARBH_LAT_LOGNORMAL && a->inv &&
           !a->inv_borrowed && a->a == b->a && a->b == b->b;
}

static void share_table(arbh_host *h, arbh_lat_links *mine, arbh_lat_dist *d)
{
    if (d->kind != ARBH_LAT_LOGNORMAL || !d->inv)
        return;
    for (size_t i = 0; i <= h->ninstances; i++) {
        arbh_lat_links *ls = i < h->ninstances ? h->instances[i]->lat : mine;
        for (size_t k = 0; ls && k < ls->n; k++)
            for (int dir = 0; dir < 2; dir++)
                if (same_table(&ls->items[k].dir[dir].dist, d)) {
                    free(d->inv);
                    d->inv = ls->items[k].dir[dir].dist.inv;
                    d->inv_borrowed = true;
                    return;
                }
    }
}

int arbh_latency_configure(arbh_host *h, arbh_config *cfg, char *err, size_t n)
{
    if (!arbh_config_has_section(cfg, "latency"))
        return ARB_OK;
    lat_cfg c = {h, cfg, err, n, ARB_OK, 1};
    arbh_config_each(cfg, "latency", check_key, &c);
    if (c.rc)
        return c.rc;
    venue_list vl;
    memset(&vl, 0, sizeof vl);
    if (arbh_config_each(cfg, "latency", collect_venue, &vl)) {
        snprintf(err, n, "[latency]: at most 64 venues");
        return ARB_EINVAL;
    }
    static const char *const dirs[2] = {"up", "down"};
    for (size_t i = 0; i < h->ninstances; i++) {
        arbh_instance *in = h->instances[i];
        if (!is_participant(in) || vl.n == 0)
            continue;
        arbh_lat_links *ls = calloc(1, sizeof *ls);
        if (!ls || !(ls->items = calloc((size_t)vl.n, sizeof *ls->items))) {
            free(ls);
            return ARB_ENOMEM;
        }
        for (int v = 0; v < vl.n; v++) {
            lat_link *l = &ls->items[ls->n++];
            arb_fixstr_set(l->venue, ARB_VENUE_LEN, vl.names[v]);
            for (int d = 0; d < 2; d++) {
                const char *val = lookup(cfg, vl.names[v], in->name, dirs[d]);
                char why[256];
                if (val)
                    arbh_lat_dist_parse(val, &l->dir[d].dist, why, sizeof why);
                share_table(h, ls, &l->dir[d].dist);
                uint64_t s = fnv(fnv(1469598103934665603ull ^ c.seed, in->name, strlen(in->name)),
                                 vl.names[v], strlen(vl.names[v])) ^
                             (uint64_t)d;
                l->dir[d].rng = arbh_lat_splitmix(&s);
                l->dir[d].owner = in;
                l->dir[d].down = d == LAT_DOWN;
                if (l->dir[d].dist.kind != ARBH_LAT_NONE)
                    link_metrics(h, &l->dir[d], in->name, vl.names[v], dirs[d]);
            }
        }
        in->lat = ls;
        sync_subs(in);
    }
    h->lat_on = true;
    return ARB_OK;
}

void arbh_latency_free(arbh_host *h)
{
    for (size_t i = 0; i < h->ninstances; i++) {
        arbh_lat_links *ls = h->instances[i]->lat;
        if (!ls)
            continue;
        for (size_t k = 0; k < ls->n; k++)
            for (int d = 0; d < 2; d++) {
                free(ls->items[k].dir[d].hist);
                free(ls->items[k].dir[d].q);
                arbh_lat_dist_free(&ls->items[k].dir[d].dist);
            }
        free(ls->items);
        free(ls->acc.window);
        free(ls->acc.accounts);
        free(ls);
        h->instances[i]->lat = NULL;
        sync_subs(h->instances[i]);
    }
    h->lat_on = false;
    for (int i = 0; i < h->nloops; i++) {
        arbh_lat_queue *q = h->loops[i] ? h->loops[i]->latq : NULL;
        if (!q)
            continue;
        if (q->timer)
            event_free(q->timer);
        while (q->chunks)
            chunk_free(q->chunks);
        free(q->heap);
        free(q);
        h->loops[i]->latq = NULL;
    }
}

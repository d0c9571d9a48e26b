/*
 * snapshot.c -- the read models as bytes and back (see snapshot.h for the
 * format). The writer grows one buffer; the reader keeps a cursor that turns
 * `bad` at the first thing out of place, after which every read yields 0, so
 * each section is read straight through and checked once at its end.
 */
#include "snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arb/wire.h"

#define SNAP_MAGIC "GWSN"
#define CHUNK_MAGIC "GWSC"
/* More partitions than this in a mark is damage. */
#define MAX_PARTS 65536u

static uint64_t fnv_u64(uint64_t h, uint64_t w)
{
    for (int b = 0; b < 8; b++)
        h = (h ^ ((w >> (8 * b)) & 0xff)) * 1099511628211ull;
    return h;
}

uint64_t gw_instruments_digest(const arb_instrument_table *t)
{
    /* FNV-1a over the count and each key, in table order. */
    uint64_t h = fnv_u64(1469598103934665603ull, t->count);
    for (size_t i = 0; i < t->count; i++)
        h = fnv_u64(h, t->items[i].key);
    return h;
}

/* ---- marks ---- */

int gw_marks_take(gw_marks *m, int32_t partition, int64_t offset)
{
    if (partition < 0 || (uint32_t)partition >= MAX_PARTS)
        return -1;
    if ((uint32_t)partition >= m->nparts) {
        int64_t *grown = realloc(m->next, ((size_t)partition + 1) * sizeof *grown);
        if (!grown)
            return -1;
        for (uint32_t p = m->nparts; p <= (uint32_t)partition; p++)
            grown[p] = 0;
        m->next = grown;
        m->nparts = (uint32_t)partition + 1;
    }
    if (offset + 1 > m->next[partition])
        m->next[partition] = offset + 1;
    return 0;
}

int gw_marks_copy(gw_marks *dst, const int64_t *next, uint32_t nparts)
{
    gw_marks_free(dst);
    if (!nparts)
        return 0;
    dst->next = malloc(nparts * sizeof *dst->next);
    if (!dst->next)
        return -1;
    memcpy(dst->next, next, nparts * sizeof *dst->next);
    dst->nparts = nparts;
    return 0;
}

int64_t gw_marks_sum(const gw_marks *m)
{
    int64_t s = 0;
    for (uint32_t p = 0; p < m->nparts; p++)
        s += m->next[p];
    return s;
}

void gw_marks_free(gw_marks *m)
{
    free(m->next);
    m->next = NULL;
    m->nparts = 0;
}

/* ---- the writer ---- */

typedef struct wbuf {
    uint8_t *p;
    size_t len, cap;
    int oom;
} wbuf;

static int w_room(wbuf *w, size_t n)
{
    if (w->oom)
        return 0;
    if (w->len + n <= w->cap)
        return 1;
    size_t ncap = w->cap ? w->cap : 65536;
    while (ncap < w->len + n)
        ncap *= 2;
    uint8_t *grown = realloc(w->p, ncap);
    if (!grown) {
        w->oom = 1;
        return 0;
    }
    w->p = grown;
    w->cap = ncap;
    return 1;
}

static void w_bytes(wbuf *w, const void *b, size_t n)
{
    if (w_room(w, n)) {
        memcpy(w->p + w->len, b, n);
        w->len += n;
    }
}

static void w_u8(wbuf *w, uint8_t v) { w_bytes(w, &v, 1); }

static void w_u32(wbuf *w, uint32_t v)
{
    if (w_room(w, 4)) {
        arb_put_u32(w->p + w->len, v);
        w->len += 4;
    }
}

static void w_u64(wbuf *w, uint64_t v)
{
    if (w_room(w, 8)) {
        arb_put_u64(w->p + w->len, v);
        w->len += 8;
    }
}

static void w_v(wbuf *w, uint64_t v)
{
    if (!w_room(w, 10))
        return;
    while (v >= 0x80) {
        w->p[w->len++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    w->p[w->len++] = (uint8_t)v;
}

/* Signed values zigzagged: small magnitudes, either sign, take few bytes. */
static void w_z(wbuf *w, int64_t v) { w_v(w, ((uint64_t)v << 1) ^ (0 - ((uint64_t)v >> 63))); }

/* A difference taken in unsigned arithmetic: defined for any two values. */
static void w_delta(wbuf *w, int64_t v, int64_t from)
{
    w_z(w, (int64_t)((uint64_t)v - (uint64_t)from));
}

static void w_i128(wbuf *w, __int128 v)
{
    w_u64(w, (uint64_t)v);
    w_u64(w, (uint64_t)((unsigned __int128)v >> 64));
}

/* The running values orders are written against (ids and times follow each
 * other closely in a FIFO). */
typedef struct order_ctx {
    uint64_t prev_id;
    int64_t prev_created;
} order_ctx;

static void w_order(wbuf *w, order_ctx *oc, const gw_order *o)
{
    /* Created when the first event came, as a rebuild from the events has it. */
    int64_t created = o->answered_ts;
    w_z(w, (int64_t)(o->order_id - oc->prev_id));
    w_v(w, o->account);
    w_v(w, o->instrument);
    uint8_t small[6] = {o->side, o->type, o->tif, o->flags, o->status, o->reason};
    w_bytes(w, small, sizeof small);
    w_z(w, o->price);
    w_z(w, o->qty);
    w_z(w, o->leaves_qty);
    w_z(w, o->filled_qty);
    w_delta(w, created, oc->prev_created);
    w_delta(w, o->updated_ts, created);
    w_v(w, o->last_seq);
    w_v(w, o->n_fills);
    for (uint16_t i = 0; i < o->n_fills; i++) {
        const gw_fill *f = &o->fills[i];
        w_v(w, f->trade_id);
        w_z(w, f->price);
        w_z(w, f->qty);
        w_delta(w, f->ts, created);
        w_z(w, f->fee);
        w_u8(w, f->liquidity);
    }
    oc->prev_id = o->order_id;
    oc->prev_created = created;
}

static void w_marks(wbuf *w, const gw_marks *m)
{
    w_v(w, m->nparts);
    for (uint32_t p = 0; p < m->nparts; p++)
        w_v(w, (uint64_t)m->next[p]);
}

/* The account's open orders the matcher answered, oldest first: restored
 * each at the head of the list, they stand in the same order again. */
static size_t answered_open(const gw_account *a, const gw_order **tail)
{
    size_t n = 0;
    *tail = NULL;
    for (const gw_order *o = a->open_head; o; o = o->open_next) {
        n += gw_order_answered(o) != 0;
        *tail = o;
    }
    return n;
}

int gw_snapshot_encode(const gw_read_model *rm, const gw_snapshot_id *id, const gw_marks *events,
                       const gw_marks *trades, uint8_t **out, size_t *len)
{
    wbuf w = {0};
    size_t n_inst = rm->instruments->count;
    w_bytes(&w, SNAP_MAGIC, 4);
    w_u32(&w, GW_SNAP_FORMAT);
    w_u64(&w, id->run);
    w_u64(&w, id->id_space);
    w_u64(&w, id->instruments);
    w_u32(&w, (uint32_t)n_inst);
    w_u32(&w, id->trade_history);
    w_u64(&w, id->order_history);
    w_marks(&w, events);
    w_marks(&w, trades);
    for (size_t i = 0; i < n_inst; i++) {
        const gw_trade_ring *r = &rm->trades[i];
        w_v(&w, r->count);
        w_z(&w, r->last_px);
        for (size_t k = 0; k < r->count; k++) {
            const gw_trade_rec *t = &r->items[(r->head + r->cap - r->count + k) % r->cap];
            w_v(&w, t->trade_id);
            w_v(&w, t->buy_order_id);
            w_v(&w, t->sell_order_id);
            w_v(&w, t->buy_account);
            w_v(&w, t->sell_account);
            w_v(&w, t->seq);
            w_z(&w, t->price);
            w_z(&w, t->qty);
            w_z(&w, t->ts);
            w_u8(&w, t->aggressor);
        }
    }
    /* Accounts with something a rebuild would have: positions, or open
     * orders the matcher answered. Their count is patched in once known. */
    size_t count_at = w.len;
    w_u64(&w, 0);
    uint64_t n_accounts = 0;
    order_ctx oc = {0};
    for (size_t k = 0; k < rm->n_accounts; k++) {
        const gw_account *a = rm->account_list[k];
        const gw_order *tail;
        size_t n_open = answered_open(a, &tail);
        if (!a->positions && !n_open)
            continue;
        n_accounts++;
        w_v(&w, a->id);
        w_u8(&w, a->positions != NULL);
        for (size_t i = 0; a->positions && i < n_inst; i++) {
            const gw_position *p = &a->positions[i];
            w_z(&w, p->position);
            w_i128(&w, p->cash);
            w_i128(&w, p->fees);
            w_z(&w, p->bought);
            w_z(&w, p->sold);
            w_v(&w, p->trades);
        }
        w_v(&w, n_open);
        for (const gw_order *o = tail; o; o = o->open_prev)
            if (gw_order_answered(o))
                w_order(&w, &oc, o);
    }
    if (!w.oom)
        arb_put_u64(w.p + count_at, n_accounts);
    w_v(&w, rm->done_count);
    size_t n_done = 0;
    for (const gw_order *o = rm->done_head; o; o = o->done_next, n_done++)
        w_order(&w, &oc, o);
    if (w.oom || n_done != rm->done_count) {
        free(w.p);
        return w.oom ? ARB_ENOMEM : ARB_ERROR;
    }
    *out = w.p;
    *len = w.len;
    return ARB_OK;
}

/* ---- the reader ---- */

typedef struct rbuf {
    const uint8_t *p, *end;
    int bad;
} rbuf;

static int r_need(rbuf *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = 1;
        return 0;
    }
    return 1;
}

static uint8_t r_u8(rbuf *r) { return r_need(r, 1) ? *r->p++ : 0; }

static uint32_t r_u32(rbuf *r)
{
    if (!r_need(r, 4))
        return 0;
    uint32_t v = arb_get_u32(r->p);
    r->p += 4;
    return v;
}

static uint64_t r_u64(rbuf *r)
{
    if (!r_need(r, 8))
        return 0;
    uint64_t v = arb_get_u64(r->p);
    r->p += 8;
    return v;
}

static uint64_t r_v(rbuf *r)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (!r_need(r, 1))
            return 0;
        uint8_t b = *r->p++;
        /* The tenth byte holds one bit; a longer varint is damage. */
        if (shift == 63 && b > 1) {
            r->bad = 1;
            return 0;
        }
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    r->bad = 1;
    return 0;
}

static int64_t r_z(rbuf *r)
{
    uint64_t u = r_v(r);
    return (int64_t)((u >> 1) ^ (0 - (u & 1)));
}

static int64_t r_delta(rbuf *r, int64_t from)
{
    return (int64_t)((uint64_t)from + (uint64_t)r_z(r));
}

static __int128 r_i128(rbuf *r)
{
    uint64_t lo = r_u64(r), hi = r_u64(r);
    return (__int128)(((unsigned __int128)hi << 64) | lo);
}

static int r_marks(rbuf *r, gw_marks *m)
{
    uint64_t n = r_v(r);
    if (r->bad || n > MAX_PARTS || n > (uint64_t)(r->end - r->p)) {
        r->bad = 1;
        return -1;
    }
    m->next = n ? malloc(n * sizeof *m->next) : NULL;
    if (n && !m->next)
        return -1;
    m->nparts = (uint32_t)n;
    for (uint32_t p = 0; p < m->nparts; p++) {
        uint64_t off = r_v(r);
        if (off > INT64_MAX)
            r->bad = 1;
        m->next[p] = (int64_t)off;
    }
    return r->bad ? -1 : 0;
}

typedef struct decoder {
    rbuf r;
    gw_read_model *rm;
    const gw_snapshot_id *id;
    order_ctx oc;
    char *why;
    size_t why_cap;
} decoder;

static int bad(decoder *d, const char *what)
{
    if (d->why_cap && !d->why[0])
        snprintf(d->why, d->why_cap, "%s", what);
    d->r.bad = 1;
    return -1;
}

/* One order; `account` 0 for a finished one (it names its own), else the
 * open order's account. */
static int r_order(decoder *d, uint64_t account)
{
    rbuf *r = &d->r;
    gw_order o;
    gw_fill fills[GW_MAX_FILLS];
    memset(&o, 0, sizeof o);
    o.order_id = d->oc.prev_id + (uint64_t)r_z(r);
    o.account = r_v(r);
    uint64_t inst = r_v(r);
    o.side = r_u8(r), o.type = r_u8(r), o.tif = r_u8(r), o.flags = r_u8(r);
    o.status = r_u8(r), o.reason = r_u8(r);
    o.price = r_z(r);
    o.qty = r_z(r);
    o.leaves_qty = r_z(r);
    o.filled_qty = r_z(r);
    o.created_ts = o.answered_ts = r_delta(r, d->oc.prev_created);
    o.updated_ts = r_delta(r, o.created_ts);
    o.last_seq = r_v(r);
    uint64_t n_fills = r_v(r);
    if (r->bad)
        return bad(d, "truncated in an order");
    if (!o.order_id || o.order_id >> 48 != d->id->id_space)
        return bad(d, "an order id outside the gateway's id space");
    if (!o.account || (account && o.account != account))
        return bad(d, "an order of no account or of another account");
    if (inst >= d->rm->instruments->count || o.side > ARB_SIDE_SELL || o.type > ARB_ORD_MARKET ||
        o.tif > ARB_TIF_FOK || (o.flags & ~ARB_ORDF_POST_ONLY) || o.status > GW_ST_EXPIRED ||
        o.reason > ARB_R_REASON_MAX || n_fills > GW_MAX_FILLS)
        return bad(d, "an order field out of range");
    /* Open orders sit in their account's section, finished ones after. */
    if ((account != 0) == (gw_status_terminal(o.status) != 0))
        return bad(d, "an order in the wrong section for its status");
    o.instrument = (uint32_t)inst;
    o.n_fills = (uint16_t)n_fills;
    for (uint16_t i = 0; i < o.n_fills; i++) {
        fills[i].trade_id = r_v(r);
        fills[i].price = r_z(r);
        fills[i].qty = r_z(r);
        fills[i].ts = r_delta(r, o.created_ts);
        fills[i].fee = r_z(r);
        fills[i].liquidity = r_u8(r);
        if (fills[i].liquidity > ARB_LIQ_TAKER)
            return bad(d, "a fill's liquidity out of range");
    }
    if (r->bad)
        return bad(d, "truncated in a fill");
    if (!gw_rm_order_put(d->rm, &o, fills))
        return bad(d, gw_rm_order(d->rm, o.order_id) ? "an order twice" : "out of memory");
    d->oc.prev_id = o.order_id;
    d->oc.prev_created = o.created_ts;
    return 0;
}

static int r_header(decoder *d, const arb_instrument_table *t)
{
    rbuf *r = &d->r;
    if (!r_need(r, 4) || memcmp(r->p, SNAP_MAGIC, 4))
        return bad(d, "not a gateway snapshot");
    r->p += 4;
    uint32_t format = r_u32(r);
    if (r->bad || format != GW_SNAP_FORMAT) {
        if (d->why_cap)
            snprintf(d->why, d->why_cap, "format %u, this build reads %u", format, GW_SNAP_FORMAT);
        return bad(d, "");
    }
    gw_snapshot_id got;
    got.run = r_u64(r);
    got.id_space = r_u64(r);
    got.instruments = r_u64(r);
    uint32_t n_inst = r_u32(r);
    got.trade_history = r_u32(r);
    got.order_history = r_u64(r);
    if (r->bad)
        return bad(d, "truncated in its header");
    const gw_snapshot_id *e = d->id;
    const char *other = got.run != e->run             ? "another run"
                        : got.id_space != e->id_space ? "another order id space"
                        : got.instruments != e->instruments || n_inst != t->count
                            ? "another instrument table"
                        : got.trade_history != e->trade_history ? "another trade_history"
                        : got.order_history != e->order_history ? "another order_history"
                                                                : NULL;
    if (other) {
        if (d->why_cap)
            snprintf(d->why, d->why_cap, "a snapshot of %s", other);
        return -2;
    }
    return 0;
}

int gw_snapshot_decode(const void *bytes, size_t len, const gw_snapshot_id *expect,
                       const arb_instrument_table *t, gw_read_model **out, gw_marks *events,
                       gw_marks *trades, char *why, size_t why_cap)
{
    decoder d = {{bytes, (const uint8_t *)bytes + len, 0}, NULL, expect, {0, 0}, why, why_cap};
    if (why_cap)
        why[0] = 0;
    *out = NULL;
    memset(events, 0, sizeof *events);
    memset(trades, 0, sizeof *trades);
    int hdr = r_header(&d, t);
    if (hdr)
        return hdr == -2 ? ARB_EREFUSED : ARB_EBADMSG;
    d.rm = gw_rm_new(t, expect->trade_history, expect->order_history);
    if (!d.rm)
        return ARB_ENOMEM;
    int rc = ARB_EBADMSG;
    if (r_marks(&d.r, events) || r_marks(&d.r, trades)) {
        if (!d.r.bad)
            rc = ARB_ENOMEM;
        bad(&d, "damaged in its marks");
        goto fail;
    }
    for (size_t i = 0; i < t->count && !d.r.bad; i++) {
        gw_trade_ring *ring = &d.rm->trades[i];
        uint64_t n = r_v(&d.r);
        ring->last_px = r_z(&d.r);
        if (n > ring->cap) {
            bad(&d, "more trades than trade_history");
            goto fail;
        }
        for (uint64_t k = 0; k < n && !d.r.bad; k++) {
            gw_trade_rec tr;
            tr.trade_id = r_v(&d.r);
            tr.buy_order_id = r_v(&d.r);
            tr.sell_order_id = r_v(&d.r);
            tr.buy_account = r_v(&d.r);
            tr.sell_account = r_v(&d.r);
            tr.seq = r_v(&d.r);
            tr.price = r_z(&d.r);
            tr.qty = r_z(&d.r);
            tr.ts = r_z(&d.r);
            tr.aggressor = r_u8(&d.r);
            if (tr.aggressor > ARB_SIDE_SELL)
                bad(&d, "a trade's aggressor out of range");
            else if (!d.r.bad)
                gw_rm_trade_put(d.rm, (int)i, &tr);
        }
    }
    if (d.r.bad) {
        bad(&d, "truncated in its trades");
        goto fail;
    }
    uint64_t n_accounts = r_u64(&d.r);
    for (uint64_t k = 0; k < n_accounts && !d.r.bad; k++) {
        uint64_t account = r_v(&d.r);
        uint8_t has_positions = r_u8(&d.r);
        if (d.r.bad || !account || has_positions > 1 || gw_rm_account(d.rm, account, 0)) {
            bad(&d, "an account of id 0, twice, or damaged");
            goto fail;
        }
        if (!gw_rm_account(d.rm, account, 1)) {
            rc = ARB_ENOMEM;
            goto fail;
        }
        gw_position *pos = has_positions ? gw_rm_positions(d.rm, account) : NULL;
        if (has_positions && !pos) {
            rc = ARB_ENOMEM;
            goto fail;
        }
        for (size_t i = 0; pos && i < t->count; i++) {
            pos[i].position = r_z(&d.r);
            pos[i].cash = r_i128(&d.r);
            pos[i].fees = r_i128(&d.r);
            pos[i].bought = r_z(&d.r);
            pos[i].sold = r_z(&d.r);
            pos[i].trades = r_v(&d.r);
        }
        uint64_t n_open = r_v(&d.r);
        for (uint64_t o = 0; o < n_open && !d.r.bad; o++)
            r_order(&d, account);
    }
    if (d.r.bad) {
        bad(&d, "truncated in its accounts");
        goto fail;
    }
    uint64_t n_done = r_v(&d.r);
    if (n_done > expect->order_history) {
        bad(&d, "more finished orders than order_history");
        goto fail;
    }
    for (uint64_t k = 0; k < n_done && !d.r.bad; k++)
        r_order(&d, 0);
    if (d.r.bad || d.r.p != d.r.end) {
        bad(&d, d.r.bad ? "truncated in its finished orders" : "bytes after its end");
        goto fail;
    }
    *out = d.rm;
    return ARB_OK;
fail:
    if (rc == ARB_ENOMEM && why_cap)
        snprintf(why, why_cap, "out of memory");
    gw_rm_free(d.rm);
    gw_marks_free(events);
    gw_marks_free(trades);
    return rc;
}

/* ---- chunks ---- */

size_t gw_snap_chunk_put(uint8_t *out, uint64_t id_space, uint64_t snap, const uint8_t *bytes,
                         size_t total, uint32_t index)
{
    size_t at = (size_t)index * GW_SNAP_CHUNK_DATA;
    size_t n = total - at < GW_SNAP_CHUNK_DATA ? total - at : GW_SNAP_CHUNK_DATA;
    memcpy(out, CHUNK_MAGIC, 4);
    arb_put_u32(out + 4, GW_SNAP_FORMAT);
    arb_put_u64(out + 8, id_space);
    arb_put_u64(out + 16, snap);
    arb_put_u32(out + 24, index);
    arb_put_u32(out + 28, gw_snap_chunks(total));
    arb_put_u64(out + 32, total);
    if (n)
        memcpy(out + GW_SNAP_CHUNK_HDR, bytes + at, n);
    return GW_SNAP_CHUNK_HDR + n;
}

int gw_snap_chunk_get(const void *rec, size_t len, gw_snap_chunk *out)
{
    const uint8_t *p = rec;
    if (len < GW_SNAP_CHUNK_HDR || memcmp(p, CHUNK_MAGIC, 4) ||
        arb_get_u32(p + 4) != GW_SNAP_FORMAT)
        return ARB_EBADMSG;
    out->id_space = arb_get_u64(p + 8);
    out->snap = arb_get_u64(p + 16);
    out->index = arb_get_u32(p + 24);
    out->count = arb_get_u32(p + 28);
    out->total = arb_get_u64(p + 32);
    out->data = p + GW_SNAP_CHUNK_HDR;
    out->len = len - GW_SNAP_CHUNK_HDR;
    if (out->count == 0 || out->index >= out->count || out->total > GW_SNAP_MAX ||
        out->len > out->total)
        return ARB_EBADMSG;
    return ARB_OK;
}

int gw_snap_whole_add(gw_snap_whole *w, const gw_snap_chunk *c)
{
    if (w->next == 0) {
        if (c->index != 0)
            return ARB_EBADMSG;
        w->snap = c->snap;
        w->total = c->total;
        w->id_space = c->id_space;
        w->count = c->count;
        w->len = 0;
    } else if (w->next >= w->count || c->index != w->next || c->snap != w->snap ||
               c->total != w->total || c->id_space != w->id_space || c->count != w->count) {
        return ARB_EBADMSG;
    }
    if (c->len > w->total - w->len || (c->index + 1 == c->count && w->len + c->len != w->total))
        return ARB_EBADMSG;
    /* Grown as bytes arrive, never to a size only a header claims. */
    if (w->len + c->len > w->cap) {
        size_t ncap = w->cap ? w->cap : c->len;
        while (ncap < w->len + c->len)
            ncap *= 2;
        if (ncap > w->total)
            ncap = (size_t)w->total;
        uint8_t *grown = realloc(w->bytes, ncap ? ncap : 1);
        if (!grown)
            return ARB_ENOMEM;
        w->bytes = grown;
        w->cap = ncap;
    }
    if (c->len)
        memcpy(w->bytes + w->len, c->data, c->len);
    w->len += c->len;
    w->next++;
    return ARB_OK;
}

void gw_snap_whole_free(gw_snap_whole *w)
{
    free(w->bytes);
    memset(w, 0, sizeof *w);
}

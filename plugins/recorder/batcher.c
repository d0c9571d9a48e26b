/*
 * batcher.c -- the batch queue (see batcher.h). Emptied batches keep their
 * buffers and go to a small spare list, so in steady state no row costs an
 * allocation; after an outage the extra batches are freed as they drain.
 */
#include "batcher.h"

#include <stdlib.h>
#include <string.h>

#include "arb/plugin.h"

/* Emptied batches kept for reuse: one filling, one in flight, one queued. */
#define SPARES_KEPT 2

static void batch_clear(rec_batch *bt)
{
    for (int t = 0; t < REC_TOPICS; t++) {
        bt->rows[t].len = 0;
        bt->count[t] = 0;
        bt->end[t] = 0;
    }
    bt->first_ns = -1;
    bt->nkpos = 0;
    bt->kpos_last = 0;
    bt->next = NULL;
}

static void batch_free(rec_batch *bt)
{
    if (!bt)
        return;
    for (int t = 0; t < REC_TOPICS; t++)
        free(bt->rows[t].data);
    free(bt->kpos);
    free(bt);
}

static rec_batch *batch_get(rec_batcher *b)
{
    rec_batch *bt = b->spare;
    if (bt) {
        b->spare = bt->next;
        b->nspare--;
    } else {
        bt = calloc(1, sizeof *bt);
        if (!bt)
            return NULL;
    }
    batch_clear(bt);
    return bt;
}

static void batch_put(rec_batcher *b, rec_batch *bt)
{
    if (b->nspare >= SPARES_KEPT) {
        batch_free(bt);
        return;
    }
    batch_clear(bt);
    bt->next = b->spare;
    b->spare = bt;
    b->nspare++;
}

int rec_batcher_init(rec_batcher *b, uint32_t batch_rows, int64_t interval_ns)
{
    memset(b, 0, sizeof *b);
    b->batch_rows = batch_rows ? batch_rows : 1;
    b->interval_ns = interval_ns < 0 ? 0 : interval_ns;
    b->open = batch_get(b);
    return b->open ? ARB_OK : ARB_ENOMEM;
}

void rec_batcher_free(rec_batcher *b)
{
    batch_free(b->open);
    batch_free(b->sealed);
    for (rec_batch *bt = b->queue_head, *next; bt; bt = next) {
        next = bt->next;
        batch_free(bt);
    }
    for (rec_batch *bt = b->spare, *next; bt; bt = next) {
        next = bt->next;
        batch_free(bt);
    }
    memset(b, 0, sizeof *b);
}

/* Moves the open batch to the queue's tail and starts a new one. */
static int close_open(rec_batcher *b)
{
    rec_batch *fresh = batch_get(b);
    if (!fresh)
        return ARB_ENOMEM;
    rec_batch *full = b->open;
    for (int t = 0; t < REC_TOPICS; t++)
        full->end[t] = b->accepted[t];
    full->next = NULL;
    if (b->queue_tail)
        b->queue_tail->next = full;
    else
        b->queue_head = full;
    b->queue_tail = full;
    b->open = fresh;
    return ARB_OK;
}

static int room(rec_batcher *b, enum rec_topic t, size_t max_len, char **out)
{
    if (rec_batch_rows(b->open) >= b->batch_rows && close_open(b))
        return ARB_ENOMEM;
    rec_buf *buf = &b->open->rows[t];
    if (buf->cap - buf->len < max_len) {
        size_t cap = buf->cap ? buf->cap : 64 * 1024;
        while (cap - buf->len < max_len)
            cap *= 2;
        char *grown = realloc(buf->data, cap);
        if (!grown)
            return ARB_ENOMEM;
        buf->data = grown;
        buf->cap = cap;
    }
    *out = buf->data + buf->len;
    return ARB_OK;
}

int rec_batcher_room(rec_batcher *b, enum rec_topic t, size_t max_len, char **out)
{
    return room(b, t, max_len, out);
}

void rec_batcher_add(rec_batcher *b, enum rec_topic t, size_t len, int64_t now_ns)
{
    rec_batch *bt = b->open;
    bt->rows[t].len += len;
    bt->count[t]++;
    b->accepted[t]++;
    b->pending++;
    if (bt->first_ns < 0)
        bt->first_ns = now_ns;
}

int rec_batcher_note_offset(rec_batcher *b, enum rec_topic t, int32_t partition, int64_t offset)
{
    rec_batch *bt = b->open;
    rec_kpos *k = bt->nkpos ? &bt->kpos[bt->kpos_last] : NULL;
    if (!k || k->topic != (int32_t)t || k->partition != partition) {
        k = NULL;
        for (uint32_t i = 0; i < bt->nkpos; i++)
            if (bt->kpos[i].topic == (int32_t)t && bt->kpos[i].partition == partition) {
                k = &bt->kpos[i];
                bt->kpos_last = i;
                break;
            }
    }
    if (!k) {
        if (bt->nkpos == bt->kpos_cap) {
            uint32_t cap = bt->kpos_cap ? 2 * bt->kpos_cap : 8;
            rec_kpos *grown = realloc(bt->kpos, cap * sizeof *grown);
            if (!grown)
                return ARB_ENOMEM;
            bt->kpos = grown;
            bt->kpos_cap = cap;
        }
        bt->kpos_last = bt->nkpos++;
        k = &bt->kpos[bt->kpos_last];
        *k = (rec_kpos){(int32_t)t, partition, offset};
    }
    /* A partition's records come in order; a lower one is a replay. */
    if (offset > k->offset)
        k->offset = offset;
    return ARB_OK;
}

int rec_batcher_adopt(rec_batcher *b, enum rec_topic t, const char *text, size_t len,
                      int64_t now_ns)
{
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        char *out;
        if (room(b, t, n, &out))
            return ARB_ENOMEM;
        memcpy(out, p, n);
        rec_batcher_add(b, t, n, now_ns);
        p += n;
    }
    return ARB_OK;
}

int64_t rec_batcher_oldest_ns(const rec_batcher *b)
{
    if (b->sealed)
        return b->sealed->first_ns;
    if (b->queue_head)
        return b->queue_head->first_ns;
    return rec_batch_rows(b->open) ? b->open->first_ns : -1;
}

int rec_batcher_flush_due(const rec_batcher *b, int64_t now_ns, int force)
{
    if (b->sealed)
        return 0;
    if (b->queue_head)
        return 1;
    if (!rec_batch_rows(b->open))
        return 0;
    return force || rec_batch_rows(b->open) >= b->batch_rows ||
           now_ns - b->open->first_ns >= b->interval_ns;
}

const rec_batch *rec_batcher_seal(rec_batcher *b)
{
    if (b->sealed)
        return b->sealed;
    if (!b->queue_head && close_open(b))
        return NULL;
    rec_batch *bt = b->queue_head;
    b->queue_head = bt->next;
    if (!b->queue_head)
        b->queue_tail = NULL;
    bt->next = NULL;
    b->sealed = bt;
    return bt;
}

void rec_batcher_done(rec_batcher *b)
{
    rec_batch *bt = b->sealed;
    if (!bt)
        return;
    for (int t = 0; t < REC_TOPICS; t++)
        b->committed[t] = bt->end[t];
    b->pending -= rec_batch_rows(bt);
    b->sealed = NULL;
    batch_put(b, bt);
}

uint64_t rec_batcher_position(const rec_batcher *b, enum rec_topic t)
{
    return b->base[t] + (b->sealed ? b->sealed->end[t] : b->committed[t]);
}

void rec_batcher_set_base(rec_batcher *b, const uint64_t base[REC_TOPICS])
{
    if (b->base_known)
        return;
    memcpy(b->base, base, sizeof b->base);
    b->base_known = 1;
}

void rec_batcher_each(const rec_batcher *b, void (*fn)(void *user, const rec_batch *bt), void *user)
{
    if (b->sealed)
        fn(user, b->sealed);
    for (const rec_batch *bt = b->queue_head; bt; bt = bt->next)
        fn(user, bt);
    if (b->open && rec_batch_rows(b->open))
        fn(user, b->open);
}

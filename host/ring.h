/*
 * ring.h -- a bounded single-producer single-consumer queue of variable-size
 * records, lock-free, used by the bus between a pair of loops (and by a loop
 * for its own re-entrant publishes: then producer and consumer are one thread).
 *
 * Records are 8-byte aligned: a 24-byte header then the payload. A record
 * never wraps: if it does not fit before the end, a padding record fills the
 * tail and the record starts at offset 0. Positions grow monotonically; the
 * producer owns `head`, the consumer owns `tail`, and each caches the other's
 * to touch the shared cache line only when it must.
 * Not here: topics, subscribers, wake-ups (bus.c).
 */
#ifndef ARBH_RING_H
#define ARBH_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARBH_REC_PAD 0x8000u

typedef struct arbh_rec {
    uint32_t len; /* payload bytes */
    uint16_t topic;
    uint16_t flags; /* ARBH_REC_PAD: skip to the start of the buffer */
    uint64_t key;
    int64_t sent_ns; /* non-zero on sampled records: publish time */
} arbh_rec;

typedef struct arbh_ring {
    _Alignas(64) _Atomic uint64_t head;
    uint64_t tail_cache;
    _Alignas(64) _Atomic uint64_t tail;
    uint64_t head_cache;
    _Alignas(64) uint8_t *buf;
    uint64_t cap, mask;
} arbh_ring;

static inline uint64_t arbh_rec_size(uint32_t len)
{
    return sizeof(arbh_rec) + (((uint64_t)len + 7u) & ~(uint64_t)7u);
}

static inline arbh_ring *arbh_ring_new(uint64_t cap_pow2)
{
    arbh_ring *r = aligned_alloc(64, sizeof *r);
    if (!r)
        return NULL;
    memset(r, 0, sizeof *r);
    r->buf = aligned_alloc(64, cap_pow2);
    if (!r->buf) {
        free(r);
        return NULL;
    }
    r->cap = cap_pow2;
    r->mask = cap_pow2 - 1;
    return r;
}

static inline void arbh_ring_free(arbh_ring *r)
{
    if (r) {
        free(r->buf);
        free(r);
    }
}

/* Bytes the producer must have free to write a record of `need` bytes now,
 * counting the padding it would need at the end of the buffer. */
static inline uint64_t arbh_ring__span(const arbh_ring *r, uint64_t head, uint64_t need)
{
    uint64_t off = head & r->mask;
    return off + need > r->cap ? (r->cap - off) + need : need;
}

/* Producer: can a record of `need` bytes be written? */
static inline bool arbh_ring_fits(arbh_ring *r, uint64_t need)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t span = arbh_ring__span(r, head, need);
    if (head + span - r->tail_cache <= r->cap)
        return true;
    r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
    return head + span - r->tail_cache <= r->cap;
}

/* Producer: where to write a record of `need` bytes; call only after
 * arbh_ring_fits() said yes. Writes the padding record if it must wrap. */
static inline arbh_rec *arbh_ring_claim(arbh_ring *r, uint64_t need, uint64_t *next_head)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t off = head & r->mask;
    if (off + need > r->cap) {
        arbh_rec *pad = (arbh_rec *)(r->buf + off);
        pad->flags = ARBH_REC_PAD;
        head += r->cap - off;
        off = 0;
    }
    *next_head = head + need;
    return (arbh_rec *)(r->buf + off);
}

/* Producer: make the claimed record visible to the consumer. */
static inline void arbh_ring_publish(arbh_ring *r, uint64_t next_head)
{
    atomic_store_explicit(&r->head, next_head, memory_order_release);
}

/* Consumer: the oldest record, or NULL if the ring is empty. */
static inline arbh_rec *arbh_ring_peek(arbh_ring *r)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    for (;;) {
        if (tail == r->head_cache) {
            r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
            if (tail == r->head_cache)
                return NULL;
        }
        arbh_rec *rec = (arbh_rec *)(r->buf + (tail & r->mask));
        if (!(rec->flags & ARBH_REC_PAD))
            return rec;
        tail += r->cap - (tail & r->mask);
        atomic_store_explicit(&r->tail, tail, memory_order_release);
    }
}

/* Consumer: free the record peek returned. */
static inline void arbh_ring_release(arbh_ring *r, const arbh_rec *rec)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    atomic_store_explicit(&r->tail, tail + arbh_rec_size(rec->len), memory_order_release);
}

static inline bool arbh_ring_empty(arbh_ring *r)
{
    return atomic_load_explicit(&r->tail, memory_order_relaxed) ==
           atomic_load_explicit(&r->head, memory_order_acquire);
}

#endif

/*
 * book.c -- the matching engine: books, price levels, order index, matching.
 *
 * The rules are stated in book.h; the data structures in book_internal.h.
 * This file is the hot path: every command goes through book_engine_process
 * without allocating once the pools, tables and windows have grown to the
 * working size. Saving, restoring and reading the state are in book_state.c.
 * Nothing here does I/O or reads a clock.
 */
#include "book_internal.h"

#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <immintrin.h>
#endif
#if defined(__linux__)
#include <sys/mman.h>
#endif

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/* v for the bid side (0), -v for the ask side (1), without a branch: the
 * side of an order is a coin toss the branch predictor cannot learn. */
static inline int64_t flip(int64_t v, int side)
{
    int64_t m = -(int64_t)side;
    return (v ^ m) - m;
}

#define DEFAULT_WINDOW_INIT 256u
#define DEFAULT_WINDOW_MAX 65536u
#define MIN_WINDOW 64u
#define MAX_WINDOW (1u << 20)

/* ---- output containers ---- */

static __attribute__((noinline, cold)) void *grow_array(void *p, uint32_t *cap, size_t elem)
{
    uint32_t n = *cap ? *cap * 2 : 64;
    if (n < *cap)
        return NULL;
    void *q = realloc(p, (size_t)n * elem);
    if (q)
        *cap = n;
    return q;
}

#define OUTPUT_APPEND(o, arr, n, cap)                                    \
    do {                                                                 \
        if (UNLIKELY((o)->n == (o)->cap)) {                              \
            void *q = grow_array((o)->arr, &(o)->cap, sizeof *(o)->arr); \
            if (!q) {                                                    \
                (o)->dropped++;                                          \
                return NULL;                                             \
            }                                                            \
            (o)->arr = q;                                                \
        }                                                                \
        return &(o)->arr[(o)->n++];                                      \
    } while (0)

static inline arb_order_event *out_event(book_output *o)
{
    OUTPUT_APPEND(o, events, n_events, cap_events);
}
static inline arb_trade *out_trade(book_output *o)
{
    OUTPUT_APPEND(o, trades, n_trades, cap_trades);
}
static inline book_md *out_md(book_output *o) { OUTPUT_APPEND(o, md, n_md, cap_md); }
static inline arb_md_level *out_level(book_output *o)
{
    OUTPUT_APPEND(o, levels, n_levels, cap_levels);
}

arb_order_event *book_output_event(book_output *o) { return out_event(o); }
arb_trade *book_output_trade(book_output *o) { return out_trade(o); }
book_md *book_output_md(book_output *o) { return out_md(o); }
arb_md_level *book_output_level(book_output *o) { return out_level(o); }

void book_output_free(book_output *o)
{
    free(o->events);
    free(o->trades);
    free(o->md);
    free(o->levels);
    memset(o, 0, sizeof *o);
}

/* ---- memory: what commands reach at random sits on huge pages ----
 *
 * With many books, a command's book, its levels, its id bucket and its order
 * records are cache misses, and a miss that also misses the TLB costs far
 * more on a virtual machine (nested page tables): on the bench machine a
 * dependent load at random in 8 MiB or more took ~400 ns on 4 KiB pages and
 * ~150 ns on 2 MiB pages (README). So the large arrays (the order pool, the
 * order map) and an arena for the books' own memory (book records and
 * windows) are 2 MiB aligned and advised as huge pages. Arena memory is never
 * freed one piece at a time: a window that grows leaves its old blocks
 * behind (at most as much again as the windows hold), and the arena goes
 * with the engine. */

#define HUGE_PAGE ((size_t)2 << 20)

static inline size_t huge_round(size_t n) { return (n + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1); }

/* huge_round(n) bytes, zeroed, 2 MiB aligned, advised as huge pages: fresh
 * pages from the kernel (heap memory already faulted in 4 KiB pages would
 * stay so), faulted in now, not on the hot path. */
static void *huge_alloc(size_t n)
{
    size_t sz = huge_round(n);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    char *p =
        mmap(NULL, sz + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    size_t head = (HUGE_PAGE - ((uintptr_t)p & (HUGE_PAGE - 1))) & (HUGE_PAGE - 1);
    if (head)
        munmap(p, head);
    munmap(p + head + sz, HUGE_PAGE - head);
    p += head;
    madvise(p, sz, MADV_HUGEPAGE);
    for (size_t i = 0; i < sz; i += 4096)
        p[i] = 0;
    return p;
#else
    void *p = aligned_alloc(HUGE_PAGE, sz);
    if (p)
        memset(p, 0, sz);
    return p;
#endif
}

static void huge_free(void *p, size_t n)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (p)
        munmap(p, huge_round(n));
#else
    (void)n;
    free(p);
#endif
}

/* Zeroed memory for an array of n bytes: huge pages from 1 MiB up. Free
 * with big_free and the same n. */
static void *big_calloc(size_t n) { return n >= HUGE_PAGE / 2 ? huge_alloc(n) : calloc(1, n); }

static void big_free(void *p, size_t n)
{
    if (n >= HUGE_PAGE / 2)
        huge_free(p, n);
    else
        free(p);
}

typedef struct arena_chunk {
    struct arena_chunk *prev;
    size_t size;
} arena_chunk;

/* Zeroed, 64-byte aligned memory that lives as long as the engine. Chunks
 * start at 64 KiB (an engine of a few books, as tests and fuzzers make by
 * the thousand, stays small) and double up to huge pages. */
static void *arena_alloc(book_engine *e, size_t n)
{
    n = (n + 63) & ~(size_t)63;
    if (n > e->arena_left) {
        size_t sz = e->arena_chunk ? e->arena_chunk * 2 : (size_t)64 << 10;
        if (sz > HUGE_PAGE)
            sz = HUGE_PAGE;
        e->arena_chunk = sz;
        if (sz < n + 64)
            sz = (n + 64 + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
        arena_chunk *c = sz >= HUGE_PAGE ? huge_alloc(sz) : aligned_alloc(64, sz);
        if (!c)
            return NULL;
        if (sz < HUGE_PAGE)
            memset(c, 0, sz);
        c->prev = e->arena;
        c->size = sz;
        e->arena = c;
        e->arena_next = (char *)c + 64;
        e->arena_left = sz - 64;
    }
    void *p = e->arena_next;
    e->arena_next += n;
    e->arena_left -= n;
    return p;
}

static void arena_free(book_engine *e)
{
    for (arena_chunk *c = e->arena, *prev; c; c = prev) {
        prev = c->prev;
        if (c->size >= HUGE_PAGE)
            huge_free(c, c->size);
        else
            free(c);
    }
    e->arena = NULL;
    e->arena_next = NULL;
    e->arena_left = 0;
    e->arena_chunk = 0;
}

/* ---- id map: buckets of seven lanes, compared at once ----
 *
 * A lane holds the top 32 bits of the id's multiplicative hash (| 1, so 0
 * can mean empty), whose top bits also pick the home bucket, and the record
 * index. The full id lives only in the record, so a lookup confirms a tag
 * match there; cancels and replaces read that record anyway. An entry goes
 * to a later bucket only when its home is full (rare below the load limit);
 * the home then counts it in tag[7], so a lookup that misses knows, without
 * tombstones, whether it must look further. */

static inline uint32_t id_tag(uint64_t id)
{
    return (uint32_t)((id * 0x9E3779B97F4A7C15ull) >> 32) | 1u;
}

/* An order id's tag in the engine's order map: the id's tag xor its book's
 * salt, an odd multiple of the book's index shifted left by one. For a given
 * id the top 31 bits then differ between any two books, so a lane whose tag
 * matches and whose record holds the id is that book's order: exact without
 * the book in the record, and one map for every book. */
static inline uint32_t order_tag(uint32_t salt, uint64_t id) { return id_tag(id) ^ salt; }

static inline uint32_t book_salt(uint32_t index) { return (index * 0x9E3779B1u) << 1; }

/* The id of record idx in an array of records with the id first. */
static inline uint64_t id_at(const void *base, size_t stride, uint32_t idx)
{
    uint64_t id;
    memcpy(&id, (const char *)base + (size_t)idx * stride, sizeof id);
    return id;
}

/* Bit l set when lane l (of the seven) holds `tag` (0: empty lanes). */
static inline unsigned bucket_match(const id_bucket *bk, uint32_t tag)
{
#if defined(__AVX2__)
    __m256i t = _mm256_load_si256((const __m256i *)(const void *)bk->tag);
    __m256i m = _mm256_cmpeq_epi32(t, _mm256_set1_epi32((int)tag));
    return (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(m)) & 0x7fu;
#elif defined(__SSE2__)
    __m128i k = _mm_set1_epi32((int)tag);
    __m128i a = _mm_load_si128((const __m128i *)(const void *)bk->tag);
    __m128i c = _mm_load_si128((const __m128i *)(const void *)(bk->tag + 4));
    unsigned lo = (unsigned)_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(a, k)));
    unsigned hi = (unsigned)_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(c, k)));
    return (lo | hi << 4) & 0x7fu;
#else
    unsigned m = 0;
    for (unsigned l = 0; l < ID_LANES; l++)
        m |= (unsigned)(bk->tag[l] == tag) << l;
    return m;
#endif
}

static int idmap_init(id_map *m, uint32_t buckets)
{
    /* Aligned by hand: one bucket per cache line. */
    size_t raw_size = ((size_t)buckets + 1) * sizeof(id_bucket);
    void *raw = big_calloc(raw_size);
    if (!raw)
        return ARB_ENOMEM;
    m->raw = raw;
    m->raw_size = raw_size;
    m->b = (id_bucket *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
    m->mask = buckets - 1;
    m->shift = 32 - __builtin_ctz(buckets);
    m->count = 0;
    /* At most 4 entries per bucket on average (of 7 lanes): a full bucket is
     * uncommon, and the table stays as small as 8-byte slots at half load. */
    m->limit = buckets * 4;
    return ARB_OK;
}

static void idmap_free(id_map *m)
{
    big_free(m->raw, m->raw_size);
    memset(m, 0, sizeof *m);
}

/* The rare case: entries of home bucket h that live in later buckets.
 * Returns pos << 32 | index (0: absent): no pointer out of line, so the
 * inlined caller keeps pos in a register. */
static __attribute__((noinline)) uint64_t idmap_find_far(const id_map *m, uint32_t tag, uint64_t id,
                                                         const void *base, size_t stride)
{
    uint32_t h = tag >> m->shift;
    uint32_t left = m->b[h].tag[7];
    for (uint32_t i = (h + 1) & m->mask; left; i = (i + 1) & m->mask) {
        const id_bucket *bk = &m->b[i];
        for (uint32_t l = 0; l < ID_LANES; l++) {
            uint32_t t = bk->tag[l];
            if (!t || t >> m->shift != h)
                continue;
            left--;
            if (t == tag && id_at(base, stride, bk->idx[l]) == id)
                return (uint64_t)(i * 8 + l) << 32 | bk->idx[l];
        }
    }
    return 0;
}

/* Looks id up: its record index (and *pos, its lane), or 0. */
static inline uint32_t idmap_find_tag(const id_map *m, uint32_t tag, uint64_t id, const void *base,
                                      size_t stride, uint32_t *pos)
{
    uint32_t h = tag >> m->shift;
    const id_bucket *bk = &m->b[h];
    for (unsigned hit = bucket_match(bk, tag); hit; hit &= hit - 1) {
        unsigned l = (unsigned)__builtin_ctz(hit);
        if (LIKELY(id_at(base, stride, bk->idx[l]) == id)) {
            *pos = h * 8 + l;
            return bk->idx[l];
        }
    }
    if (LIKELY(!bk->tag[7]))
        return 0;
    uint64_t far = idmap_find_far(m, tag, id, base, stride);
    *pos = (uint32_t)(far >> 32);
    return (uint32_t)far;
}

static inline uint32_t idmap_find(const id_map *m, uint64_t id, const void *base, size_t stride,
                                  uint32_t *pos)
{
    return idmap_find_tag(m, id_tag(id), id, base, stride, pos);
}

static __attribute__((noinline)) uint32_t idmap_put_far(id_map *m, uint32_t tag, uint32_t idx)
{
    uint32_t h = tag >> m->shift;
    m->b[h].tag[7]++;
    for (uint32_t i = (h + 1) & m->mask;; i = (i + 1) & m->mask) {
        unsigned empty = bucket_match(&m->b[i], 0);
        if (empty) {
            unsigned l = (unsigned)__builtin_ctz(empty);
            m->b[i].tag[l] = tag;
            m->b[i].idx[l] = idx;
            return i * 8 + l;
        }
    }
}

/* Inserts an id known to be absent (capacity was reserved); returns its
 * position (bucket * 8 + lane), which stays until the map grows. */
static inline uint32_t idmap_put_tag(id_map *m, uint32_t tag, uint32_t idx)
{
    uint32_t h = tag >> m->shift;
    id_bucket *bk = &m->b[h];
    unsigned empty = bucket_match(bk, 0);
    m->count++;
    if (LIKELY(empty)) {
        unsigned l = (unsigned)__builtin_ctz(empty);
        bk->tag[l] = tag;
        bk->idx[l] = idx;
        return h * 8 + l;
    }
    return idmap_put_far(m, tag, idx);
}

static int idmap_grow(id_map *m, uint32_t more, resting_order *orders);

/* Room for `more` ids. When the map grows, entries move: with `orders`
 * (a book's map) their records learn their new positions. */
static inline int idmap_reserve(id_map *m, uint32_t more, resting_order *orders)
{
    if (LIKELY((uint64_t)m->count + more <= m->limit))
        return ARB_OK;
    return idmap_grow(m, more, orders);
}

static int idmap_grow(id_map *m, uint32_t more, resting_order *orders)
{
    uint64_t nb = (uint64_t)m->mask + 1;
    while ((uint64_t)m->count + more > nb * 4)
        nb *= 2;
    if (nb > (1u << 27))
        return ARB_ENOMEM;
    id_map n;
    if (idmap_init(&n, (uint32_t)nb))
        return ARB_ENOMEM;
    for (uint64_t i = 0; i <= m->mask; i++)
        for (uint32_t l = 0; l < ID_LANES; l++)
            if (m->b[i].tag[l]) {
                uint32_t pos = idmap_put_tag(&n, m->b[i].tag[l], m->b[i].idx[l]);
                if (orders)
                    orders[m->b[i].idx[l]].id_pos = pos;
            }
    big_free(m->raw, m->raw_size);
    *m = n;
    return ARB_OK;
}

/* Empties the lane at pos, which holds `tag`: a store, no lookup. */
static inline void idmap_remove_at(id_map *m, uint32_t pos, uint32_t tag)
{
    uint32_t h = tag >> m->shift;
    if (UNLIKELY(h != pos >> 3))
        m->b[h].tag[7]--;
    m->b[pos >> 3].tag[pos & 7] = 0;
    m->count--;
}

/* ---- the price-level window of one side ---- */

static inline uint32_t summary_words(uint32_t width) { return width >= 4096 ? width / 4096 : 1; }

static inline void bit_set(uint64_t *bits, uint64_t *summary, uint32_t i)
{
    bits[i >> 6] |= 1ull << (i & 63);
    summary[i >> 12] |= 1ull << ((i >> 6) & 63);
}

static inline void bit_clear(uint64_t *bits, uint64_t *summary, uint32_t i)
{
    if (!(bits[i >> 6] &= ~(1ull << (i & 63))))
        summary[i >> 12] &= ~(1ull << ((i >> 6) & 63));
}

/* Highest set index below i, or -1. */
static inline int64_t bit_prev(const uint64_t *bits, const uint64_t *summary, uint32_t i)
{
    uint32_t w = i >> 6;
    uint64_t m = bits[w] & ((1ull << (i & 63)) - 1);
    if (LIKELY(m))
        return (int64_t)(w * 64 + 63 - (uint32_t)__builtin_clzll(m));
    uint32_t sw = w >> 6;
    uint64_t sm = summary[sw] & ((1ull << (w & 63)) - 1);
    while (!sm) {
        if (sw == 0)
            return -1;
        sm = summary[--sw];
    }
    uint32_t w2 = sw * 64 + 63 - (uint32_t)__builtin_clzll(sm);
    return (int64_t)(w2 * 64 + 63 - (uint32_t)__builtin_clzll(bits[w2]));
}

/* Lowest set index, or -1. */
static int64_t bit_first(const uint64_t *bits, const uint64_t *summary, uint32_t width)
{
    uint32_t ns = summary_words(width);
    for (uint32_t sw = 0; sw < ns; sw++)
        if (summary[sw]) {
            uint32_t w = sw * 64 + (uint32_t)__builtin_ctzll(summary[sw]);
            return (int64_t)(w * 64 + (uint32_t)__builtin_ctzll(bits[w]));
        }
    return -1;
}

typedef struct window_arrays {
    price_level *slot, *spare_slot;
    uint64_t *bits, *spare_bits, *summary, *spare_summary;
} window_arrays;

/* Each window is one block of the engine's arena: bits, summary, then the
 * slots, so the words a command changes sit together (for the default 256
 * ticks, bits and summary are one cache line, next to the first slots). */
static int window_block(book_engine *e, uint32_t width, uint64_t **bits, uint64_t **summary,
                        price_level **slot)
{
    uint32_t nb = width / 64, ns = summary_words(width);
    uint64_t *block = arena_alloc(e, ((size_t)nb + ns) * 8 + (size_t)width * sizeof(price_level));
    if (!block)
        return ARB_ENOMEM;
    *bits = block;
    *summary = block + nb;
    *slot = (price_level *)(void *)(block + nb + ns);
    return ARB_OK;
}

static int window_arrays_alloc(book_engine *e, window_arrays *w, uint32_t width)
{
    memset(w, 0, sizeof *w);
    if (window_block(e, width, &w->bits, &w->summary, &w->slot) ||
        window_block(e, width, &w->spare_bits, &w->spare_summary, &w->spare_slot))
        return ARB_ENOMEM;
    return ARB_OK;
}

static int side_init(book_engine *e, book_side *s, uint32_t width)
{
    memset((void *)s, 0, sizeof *s);
    window_arrays w;
    if (window_arrays_alloc(e, &w, width))
        return ARB_ENOMEM;
    s->slot = w.slot, s->spare_slot = w.spare_slot;
    s->bits = w.bits, s->spare_bits = w.spare_bits;
    s->summary = w.summary, s->spare_summary = w.spare_summary;
    s->width = width;
    s->top_key = INT64_MIN;
    s->top_lv = &s->none;
    return ARB_OK;
}

/* The windows are the arena's: only the far list is the side's own. */
static void side_free(book_side *s)
{
    free(s->far);
    memset((void *)s, 0, sizeof *s);
}

/* Refreshes the cached best level (book_internal.h) from best and the window. */
static inline void side_sync_top(book_side *s)
{
    if (s->n_levels) {
        s->top_key = s->best;
        s->top_px = s->best * s->px_mul;
        s->top_lv = &s->slot[s->best - s->lo];
    } else {
        s->top_key = INT64_MIN;
        s->top_px = 0;
        s->top_lv = &s->none;
    }
}

/* Index of the first far level with key >= `key`. */
static inline uint32_t far_lower_bound(const book_side *s, int64_t key)
{
    uint32_t lo = 0, hi = s->n_far;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->far[mid].key < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int far_reserve(book_side *s, uint32_t more)
{
    if ((uint64_t)s->n_far + more <= s->cap_far)
        return ARB_OK;
    uint64_t n = s->cap_far ? (uint64_t)s->cap_far * 2 : 16;
    while (n < (uint64_t)s->n_far + more)
        n *= 2;
    if (n > UINT32_MAX)
        return ARB_ENOMEM;
    far_level *f = realloc(s->far, (size_t)n * sizeof *f);
    if (!f)
        return ARB_ENOMEM;
    s->far = f;
    s->cap_far = (uint32_t)n;
    return ARB_OK;
}

static const price_level *far_find(const book_side *s, int64_t key)
{
    uint32_t i = far_lower_bound(s, key);
    return i < s->n_far && s->far[i].key == key ? &s->far[i].lv : NULL;
}

static inline const price_level *side_find(const book_side *s, int64_t key)
{
    uint64_t off = (uint64_t)(key - s->lo);
    if (LIKELY(off < s->width))
        return &s->slot[off];
    return far_find(s, key);
}

const price_level *book__side_find(const book_side *s, int64_t key) { return side_find(s, key); }

static inline price_level *side_level(book_side *s, int64_t key)
{
    return (price_level *)side_find(s, key);
}

int64_t book__side_next_key(const book_side *s, int64_t key, int *found)
{
    uint64_t off = (uint64_t)(key - s->lo);
    *found = 1;
    if (off < s->width) {
        int64_t i = bit_prev(s->bits, s->summary, (uint32_t)off);
        if (i >= 0)
            return s->lo + i;
        if (s->n_far)
            return s->far[s->n_far - 1].key;
    } else {
        uint32_t i = far_lower_bound(s, key);
        if (i > 0)
            return s->far[i - 1].key;
    }
    *found = 0;
    return 0;
}

/* Moves far levels that the window now covers into it. */
static void side_pull_far(book_side *s)
{
    while (s->n_far && s->far[s->n_far - 1].key >= s->lo) {
        far_level *f = &s->far[--s->n_far];
        uint32_t off = (uint32_t)(f->key - s->lo);
        s->slot[off] = f->lv;
        bit_set(s->bits, s->summary, off);
        if (s->n_levels++ == 0 || f->key > s->best)
            s->best = f->key;
    }
    side_sync_top(s);
}

/* Re-bases the window at new_lo with new_width, moving the levels below
 * new_lo to the far list (their keys are above every far key, so they append
 * in order) and pulling in far levels the new window covers. The caller
 * guarantees every window level stays below new_lo + new_width. */
static int side_rewindow(book_engine *e, book_side *s, int64_t new_lo, uint32_t new_width)
{
    uint32_t nwords = s->width / 64;
    uint32_t evict = 0;
    if (new_lo > s->lo) {
        for (uint32_t w = 0; w < nwords; w++) {
            uint64_t bits = s->bits[w];
            while (bits) {
                uint32_t i = w * 64 + (uint32_t)__builtin_ctzll(bits);
                bits &= bits - 1;
                if (s->lo + i < new_lo)
                    evict++;
            }
        }
    }
    if (far_reserve(s, evict))
        return ARB_ENOMEM;
    window_arrays fresh = {0};
    price_level *ns;
    uint64_t *nb, *nsum;
    if (new_width != s->width) {
        if (window_arrays_alloc(e, &fresh, new_width))
            return ARB_ENOMEM;
        ns = fresh.slot, nb = fresh.bits, nsum = fresh.summary;
    } else {
        ns = s->spare_slot, nb = s->spare_bits, nsum = s->spare_summary;
    }
    uint32_t n_levels = 0;
    int64_t best = 0;
    for (uint32_t w = 0; w < nwords; w++) {
        uint64_t bits = s->bits[w];
        while (bits) {
            uint32_t i = w * 64 + (uint32_t)__builtin_ctzll(bits);
            bits &= bits - 1;
            int64_t key = s->lo + i;
            if (key < new_lo) {
                far_level *f = &s->far[s->n_far++];
                f->key = key;
                f->lv = s->slot[i];
            } else {
                uint32_t off = (uint32_t)(key - new_lo);
                ns[off] = s->slot[i];
                bit_set(nb, nsum, off);
                n_levels++;
                best = key;
            }
            memset(&s->slot[i], 0, sizeof s->slot[i]);
        }
    }
    memset(s->bits, 0, (size_t)nwords * 8);
    memset(s->summary, 0, (size_t)summary_words(s->width) * 8);
    if (new_width != s->width) {
        /* The old blocks stay in the arena (see huge_alloc). */
        s->slot = fresh.slot, s->spare_slot = fresh.spare_slot;
        s->bits = fresh.bits, s->spare_bits = fresh.spare_bits;
        s->summary = fresh.summary, s->spare_summary = fresh.spare_summary;
    } else {
        s->spare_slot = s->slot, s->spare_bits = s->bits, s->spare_summary = s->summary;
        s->slot = ns, s->bits = nb, s->summary = nsum;
    }
    s->lo = new_lo;
    s->width = new_width;
    s->n_levels = n_levels;
    s->best = best;
    side_pull_far(s);
    return ARB_OK;
}

/* Makes sure an order can rest at `key` without allocating: afterwards the
 * key is inside the window, or has (or has room for) a far level. */
static int side_prepare(book_engine *e, book_side *s, int64_t key)
{
    uint64_t off = (uint64_t)(key - s->lo);
    if (off < s->width)
        return ARB_OK;
    e->slid = 1;
    uint32_t w = s->width;
    if (s->n_levels == 0) {
        /* Empty side: centre the window with room for better prices. */
        s->lo = key - (int64_t)(w - w / 4);
        return ARB_OK;
    }
    if (key < s->lo) {
        uint32_t i = far_lower_bound(s, key);
        if (i < s->n_far && s->far[i].key == key)
            return ARB_OK;
    }
    int64_t low = key < s->lo ? key : s->lo + bit_first(s->bits, s->summary, s->width);
    int64_t high = key > s->best ? key : s->best;
    uint64_t span = (uint64_t)(high - low);
    while (span >= w && w < e->cfg.window_max)
        w *= 2;
    if (span < w) {
        int64_t new_lo = high - (int64_t)(w - w / 4);
        if (new_lo > low)
            new_lo = low;
        return side_rewindow(e, s, new_lo, w);
    }
    if (key < s->lo) /* worse than everything the window can hold */
        return far_reserve(s, 1);
    /* Better than the window top: slide up, evicting the worst levels. */
    return side_rewindow(e, s, key - (int64_t)(w - w / 4), w);
}

/* Keeps "window empty => far list empty", so the best level is always the
 * window's: when the window runs dry, it moves to the best far level. */
static inline void side_refill(book_side *s)
{
    if (s->n_levels || !s->n_far)
        return;
    s->lo = s->far[s->n_far - 1].key - (int64_t)(s->width - s->width / 4);
    side_pull_far(s);
}

static inline int side_reserve(book_engine *e, book_side *s, int64_t key)
{
    if (LIKELY((uint64_t)(key - s->lo) < s->width))
        return ARB_OK;
    return side_prepare(e, s, key);
}

/* A level lost its last order. */
static void side_level_emptied(book_side *s, int64_t key)
{
    uint64_t off = (uint64_t)(key - s->lo);
    if (LIKELY(off < s->width)) {
        bit_clear(s->bits, s->summary, (uint32_t)off);
        s->n_levels--;
        if (key == s->top_key) {
            if (s->n_levels)
                s->best = s->lo + bit_prev(s->bits, s->summary, (uint32_t)off);
            else
                side_refill(s);
            side_sync_top(s);
        }
        return;
    }
    uint32_t i = far_lower_bound(s, key);
    memmove(&s->far[i], &s->far[i + 1], (size_t)(s->n_far - i - 1) * sizeof *s->far);
    s->n_far--;
}

/* ---- pool, accounts, books ---- */

static int pool_grow(book_engine *e);

static inline int pool_reserve(book_engine *e)
{
    if (LIKELY(e->free_head || e->order_used + 1 < e->order_cap))
        return ARB_OK;
    return pool_grow(e);
}

static int pool_grow(book_engine *e)
{
    if (e->order_used >= BOOK_MAX_ORDERS)
        return ARB_ENOMEM;
    uint64_t n = (uint64_t)e->order_cap * 2;
    if (n > (uint64_t)BOOK_MAX_ORDERS + 1)
        n = (uint64_t)BOOK_MAX_ORDERS + 1;
    resting_order *o = big_calloc((size_t)n * sizeof *o);
    if (!o)
        return ARB_ENOMEM;
    memcpy(o, e->orders, (size_t)e->order_cap * sizeof *o);
    big_free(e->orders, (size_t)e->order_cap * sizeof *o);
    e->orders = o;
    e->order_cap = (uint32_t)n;
    return ARB_OK;
}

static inline uint32_t pool_take(book_engine *e)
{
    uint32_t i = e->free_head;
    if (i) {
        e->free_head = e->orders[i].next;
        return i;
    }
    return ++e->order_used;
}

static inline void pool_put(book_engine *e, uint32_t i)
{
    e->orders[i].next = e->free_head;
    e->free_head = i;
}

static int account_add(book_engine *e, uint64_t account, uint32_t *idx);

static __attribute__((noinline)) uint32_t account_find(book_engine *e, uint64_t account,
                                                       account_slot *hot)
{
    uint32_t pos;
    uint32_t i = idmap_find(&e->acct_ids, account, e->accts, sizeof *e->accts, &pos);
    if (!i && account_add(e, account, &i))
        return 0;
    hot->account = account;
    hot->idx = i;
    return i;
}

/* An account's record index, adding the account if it is new; 0 when out
 * of memory. A record never moves or goes away, so the direct-mapped cache
 * in front of the map never goes stale; it holds the full account, so a hit
 * needs no check. Returned, not written through a pointer: the index stays
 * in a register. */
static inline uint32_t account_get(book_engine *e, uint64_t account)
{
    account_slot *hot = &e->hot_accts[id_tag(account) >> (32 - HOT_ACCOUNT_BITS)];
    if (LIKELY(hot->account == account && hot->idx))
        return hot->idx;
    return account_find(e, account, hot);
}

static int account_add(book_engine *e, uint64_t account, uint32_t *idx)
{
    uint32_t i;
    if (e->n_accts + 1 >= e->cap_accts) {
        void *p = grow_array(e->accts, &e->cap_accts, sizeof *e->accts);
        if (!p)
            return ARB_ENOMEM;
        e->accts = p;
    }
    if (idmap_reserve(&e->acct_ids, 1, NULL))
        return ARB_ENOMEM;
    i = ++e->n_accts; /* record 0 is unused so 0 can mean "none" */
    e->accts[i].account = account;
    e->accts[i].open = 0;
    idmap_put_tag(&e->acct_ids, id_tag(account), i);
    *idx = i;
    return ARB_OK;
}

static inline void book_key(const char *venue, const char *symbol, uint64_t k[3])
{
    memcpy(&k[0], venue, 8);
    memcpy(&k[1], symbol, 8);
    memcpy(&k[2], symbol + 8, 8);
}

/* Multiplies and xors in every byte of the key, then takes the top bits,
 * which every input bit reaches. (The old hash left the bits a table index
 * came from blind to a symbol's last characters: SYM0120..SYM0129 shared a
 * slot, and every lookup walked a cluster of cold books.) */
static inline uint32_t book_slot_of(const book_engine *e, const uint64_t k[3])
{
    uint64_t h = (k[0] * 0x9E3779B97F4A7C15ull ^ k[1]) * 0xC2B2AE3D27D4EB4Full;
    h = (h ^ k[2]) * 0x165667B19E3779F9ull;
    return (uint32_t)((h ^ (h >> 29)) >> e->book_shift) & e->book_mask;
}

/* The table slot of a book, or NULL. The slot holds the key itself, so a
 * probe reads the table, not the (cold) book. */
static inline const book_slot *find_slot(const book_engine *e, const uint64_t k[3])
{
    if (!e->book_table)
        return NULL;
    for (uint32_t i = book_slot_of(e, k);; i = (i + 1) & e->book_mask) {
        const book_slot *sl = &e->book_table[i];
        if (!sl->k[0])
            return NULL;
        if (sl->k[0] == k[0] && sl->k[1] == k[1] && sl->k[2] == k[2])
            return sl;
    }
}

/* Starts loading a book's four hot lines (book_internal.h) at once, and
 * both tops of book, which every market data record reads: with many books
 * the book is cold, and loaded line by line its misses would follow one
 * another. */
static inline void prefetch_book(const order_book *b)
{
    const char *p = (const char *)b;
    __builtin_prefetch(p);
    __builtin_prefetch(p + 64);
    __builtin_prefetch(p + 128);
    __builtin_prefetch(p + 128 + sizeof(book_side));
    __builtin_prefetch(b->side[SIDE_BID].top_lv);
    __builtin_prefetch(b->side[SIDE_ASK].top_lv);
}

/* The book of a table slot, which becomes the last book. */
static inline order_book *slot_book(book_engine *e, const book_slot *sl)
{
    order_book *b = e->books[sl->index];
    prefetch_book(b);
    e->last_book = b;
    return b;
}

static inline order_book *find_book(book_engine *e, const char *venue, const char *symbol)
{
    uint64_t k[3];
    book_key(venue, symbol, k);
    order_book *b = e->last_book;
    if (LIKELY(b && b->k[0] == k[0] && b->k[1] == k[1] && b->k[2] == k[2]))
        return b;
    const book_slot *sl = find_slot(e, k);
    return sl ? slot_book(e, sl) : NULL;
}

const order_book *book_engine_find(const book_engine *e, const char venue[ARB_VENUE_LEN],
                                   const char symbol[ARB_SYMBOL_LEN])
{
    return find_book((book_engine *)e, venue, symbol);
}

static inline __attribute__((always_inline)) void band_from_ref(order_book *b)
{
    if (b->band_bps > 0 && b->ref_price > 0) {
        /* 64-bit arithmetic (a multiply by the constant's inverse) unless the
         * product could overflow: band_bps <= 10000 < 2^14. */
        int64_t delta = b->ref_price < (INT64_C(1) << 49)
                            ? b->ref_price * b->band_bps / 10000
                            : (int64_t)((__int128)b->ref_price * b->band_bps / 10000);
        b->band_lo = b->ref_price - delta;
        /* Saturates: a reference near the top of int64 (a restored state
         * is not trusted to keep it sane) bands up to the largest price. */
        b->band_hi = b->ref_price > INT64_MAX - delta ? INT64_MAX : b->ref_price + delta;
    } else {
        b->band_lo = INT64_MIN;
        b->band_hi = INT64_MAX;
    }
    /* The prices a NEW passes every price check with, as a range
     * [lo, lo + n): one unsigned compare. Only for a tick of 1 (a price is
     * then its tick count); otherwise n = 0 and every order takes the checks
     * one by one. */
    int64_t px_lo = b->band_lo > 1 ? b->band_lo : 1;
    int64_t px_hi = b->band_hi < BOOK_MAX_PRICE ? b->band_hi : BOOK_MAX_PRICE;
    b->fast_px_lo = (uint64_t)px_lo;
    b->fast_px_n = b->tick == 1 && px_hi >= px_lo ? (uint64_t)(px_hi - px_lo) + 1 : 0;
}

static void update_band(order_book *b) { band_from_ref(b); }

/* The same for quantities (a lot of 1, inside min and max), fixed per book. */
static void set_qty_range(order_book *b)
{
    int64_t qty_lo = b->min_qty > 1 ? b->min_qty : 1;
    b->fast_qty_lo = (uint64_t)qty_lo;
    b->fast_qty_n = b->lot == 1 && b->max_qty >= qty_lo ? (uint64_t)(b->max_qty - qty_lo) + 1 : 0;
}

/* The book record and its windows are the arena's. */
static void book_free(order_book *b)
{
    side_free(&b->side[0]);
    side_free(&b->side[1]);
}

/* Enters a book in the table (which has a free slot). */
static void book_slot_put(book_engine *e, const order_book *b)
{
    uint32_t i = book_slot_of(e, b->k);
    while (e->book_table[i].k[0])
        i = (i + 1) & e->book_mask;
    book_slot *sl = &e->book_table[i];
    memcpy(sl->k, b->k, sizeof sl->k);
    sl->index = b->index;
    sl->salt = b->id_salt;
}

int book_engine_add_instrument(book_engine *e, const arb_instrument *in)
{
    return book_engine_add_instrument_id(e, in, e->n_books + 1);
}

int book_engine_add_instrument_id(book_engine *e, const arb_instrument *in, uint32_t book_id)
{
    char venue[ARB_VENUE_LEN], symbol[ARB_SYMBOL_LEN];
    if (!in || arb_fixstr_set(venue, ARB_VENUE_LEN, in->venue) || !in->venue[0] ||
        arb_fixstr_set(symbol, ARB_SYMBOL_LEN, in->symbol) || !in->symbol[0] || in->tick <= 0 ||
        in->lot <= 0 || in->min_qty < 0 || in->max_qty < in->min_qty || in->band_bps < 0 ||
        in->ref_price < 0)
        return ARB_EINVAL;
    if (find_book(e, venue, symbol) || book_id == 0 || book_id > BOOK_MAX_ID)
        return ARB_EINVAL;
    for (uint32_t i = 0; i < e->n_books; i++)
        if (e->books[i]->trade_id_base == (uint64_t)book_id << BOOK_TRADE_BITS)
            return ARB_EINVAL;
    if (e->n_books == e->cap_books) {
        void *p = grow_array(e->books, &e->cap_books, sizeof *e->books);
        if (!p)
            return ARB_ENOMEM;
        e->books = p;
    }
    /* Keep the book table at most half full. */
    if ((e->n_books + 1) * 2 > e->book_mask + 1 || !e->book_table) {
        uint32_t cap = e->book_table ? (e->book_mask + 1) * 2 : 16;
        book_slot *old = e->book_table;
        book_slot *table = calloc(cap, sizeof *table);
        if (!table)
            return ARB_ENOMEM;
        e->book_table = table;
        e->book_mask = cap - 1;
        e->book_shift = 64 - __builtin_ctz(cap);
        for (uint32_t bi = 0; bi < e->n_books; bi++)
            book_slot_put(e, e->books[bi]);
        free(old);
    }
    order_book *b = arena_alloc(e, sizeof *b);
    if (!b)
        return ARB_ENOMEM;
    if (side_init(e, &b->side[0], e->cfg.window_init) ||
        side_init(e, &b->side[1], e->cfg.window_init)) {
        book_free(b);
        return ARB_ENOMEM;
    }
    memcpy(b->venue, venue, ARB_VENUE_LEN);
    memcpy(b->symbol, symbol, ARB_SYMBOL_LEN);
    book_key(venue, symbol, b->k);
    b->inst = *in;
    b->inst.key = arb_instrument_key(venue, symbol);
    b->tick = in->tick;
    b->side[SIDE_BID].px_mul = in->tick;
    b->side[SIDE_ASK].px_mul = -in->tick;
    b->lot = in->lot;
    b->min_qty = in->min_qty;
    b->max_qty = in->max_qty < BOOK_MAX_QTY ? in->max_qty : BOOK_MAX_QTY;
    b->band_bps = in->band_bps;
    b->qty_decimals = in->qty_decimals;
    b->maker_cbps = in->maker_fee_cbps;
    b->taker_cbps = in->taker_fee_cbps;
    b->ref_price = in->ref_price;
    update_band(b);
    set_qty_range(b);
    b->index = e->n_books;
    b->id_salt = book_salt(b->index);
    b->trade_id_base = (uint64_t)book_id << BOOK_TRADE_BITS;
    e->books[e->n_books++] = b;
    book_slot_put(e, b);
    return ARB_OK;
}

int book_engine_new(const book_config *cfg, book_engine **out)
{
    *out = NULL;
    book_config c = {0};
    if (cfg)
        c = *cfg;
    if (!c.stp_default)
        c.stp_default = ARB_STP_CANCEL_RESTING;
    if (!c.window_init)
        c.window_init = DEFAULT_WINDOW_INIT;
    if (!c.window_max)
        c.window_max = c.window_init > DEFAULT_WINDOW_MAX ? c.window_init : DEFAULT_WINDOW_MAX;
    if (c.stp_default > ARB_STP_NONE || c.window_init < MIN_WINDOW || c.window_max > MAX_WINDOW ||
        c.window_init > c.window_max || (c.window_init & (c.window_init - 1)) ||
        (c.window_max & (c.window_max - 1)) || c.order_capacity > BOOK_MAX_ORDERS)
        return ARB_EINVAL;
    book_engine *e = calloc(1, sizeof *e);
    if (!e)
        return ARB_ENOMEM;
    e->cfg = c;
    e->open_cap = c.max_open_orders ? c.max_open_orders : UINT32_MAX;
    e->stp_of[ARB_STP_DEFAULT] = c.stp_default;
    for (uint8_t i = ARB_STP_CANCEL_RESTING; i <= ARB_STP_NONE; i++)
        e->stp_of[i] = i;
    e->order_cap = (c.order_capacity ? c.order_capacity : 1024) + 1;
    e->orders = big_calloc((size_t)e->order_cap * sizeof *e->orders);
    touched_level *tl = malloc(65 * sizeof *tl);
    if (tl) {
        tl[0].key = 0;
        tl[0].side = -1;
        e->touched = tl + 1;
        e->cap_touched = 64;
    }
    /* The order map starts at 4,096 ids (1,024 buckets, 64 KB), or the
     * pool's capacity if smaller, and doubles as the resting orders grow
     * (idmap_reserve). Sized for the whole pool up front it was 1 MiB at the
     * default capacity with a few thousand ids in it: every id's bucket, its
     * hash uniform over the table, was a miss in L2 (the simulation ran 10%
     * faster at the small size). */
    uint32_t buckets = 16;
    while ((uint64_t)buckets * 4 < e->order_cap && buckets < 1024)
        buckets *= 2;
    if (!e->orders || !tl || idmap_init(&e->acct_ids, 16) || idmap_init(&e->ids, buckets)) {
        book_engine_free(e);
        return ARB_ENOMEM;
    }
    *out = e;
    return ARB_OK;
}

void book_engine_free(book_engine *e)
{
    if (!e)
        return;
    for (uint32_t i = 0; i < e->n_books; i++)
        book_free(e->books[i]);
    free(e->books);
    free(e->book_table);
    idmap_free(&e->ids);
    big_free(e->orders, (size_t)e->order_cap * sizeof *e->orders);
    arena_free(e);
    free(e->accts);
    idmap_free(&e->acct_ids);
    free(e->touched ? e->touched - 1 : NULL);
    book_output_free(&e->out);
    arb_fee_tiers_free(&e->tiers);
    free(e);
}

int book_engine_set_fee_tiers(book_engine *e, const arb_fee_tiers *tiers)
{
    arb_fee_tiers copy = {NULL, 0};
    if (tiers && tiers->count) {
        copy.items = malloc(tiers->count * sizeof *copy.items);
        if (!copy.items)
            return ARB_ENOMEM;
        memcpy(copy.items, tiers->items, tiers->count * sizeof *copy.items);
        copy.count = tiers->count;
    }
    arb_fee_tiers_free(&e->tiers);
    e->tiers = copy;
    return ARB_OK;
}

/* The rate an account pays in a book as maker (or taker). */
static __attribute__((noinline)) int64_t tier_rate(const book_engine *e, const order_book *b,
                                                   uint64_t account, int maker)
{
    const arb_fee_tier *f = arb_fee_tier_find(&e->tiers, account, b->inst.venue);
    if (!f)
        return maker ? b->maker_cbps : b->taker_cbps;
    return maker ? f->maker_fee_cbps : f->taker_fee_cbps;
}

/* A fill's fee (arb_fee_of) at `rate`: no arithmetic for a rate of 0,
 * whose fee arb_fee_of makes 0 too. */
static inline int64_t fill_fee(const order_book *b, int64_t px, int64_t qty, int64_t rate)
{
    return rate ? arb_fee_of(px, qty, b->qty_decimals, rate) : 0;
}

book_output *book_engine_output(book_engine *e) { return &e->out; }

/* ---- output helpers ---- */

static int touched_grow(book_engine *e)
{
    uint32_t cap = e->cap_touched * 2;
    touched_level *p =
        cap > e->cap_touched ? realloc(e->touched - 1, ((size_t)cap + 1) * sizeof *p) : NULL;
    if (!p) {
        e->touched_lost = 1;
        return ARB_ENOMEM;
    }
    e->touched = p + 1;
    e->cap_touched = cap;
    return ARB_OK;
}

static inline void touch(book_engine *e, int side, int64_t key)
{
    uint32_t n = e->n_touched;
    if (UNLIKELY(n == e->cap_touched) && touched_grow(e))
        return;
    /* touched[-1] is a sentinel no level matches: no branch for n == 0. */
    touched_level *t = e->touched + n;
    t[0].key = key;
    t[0].side = side;
    e->n_touched = n + !((t[-1].key == key) & (t[-1].side == side));
}

static __attribute__((noinline, cold)) arb_order_event *event_slot_grow(book_engine *e)
{
    arb_order_event *ev = out_event(&e->out);
    return ev ? ev : &e->lost_event;
}

/* The next event's place; e->lost_event when the array cannot grow. */
static inline arb_order_event *event_slot(book_engine *e)
{
    book_output *o = &e->out;
    uint32_t n = o->n_events;
    if (UNLIKELY(n == o->cap_events))
        return event_slot_grow(e);
    o->n_events = n + 1;
    return &o->events[n];
}

/* The part every event ends with: quantities, the fill, its time and seq. */
static inline __attribute__((always_inline)) void event_tail(arb_order_event *ev, book_engine *e,
                                                             int64_t leaves, int64_t filled,
                                                             int64_t last_px, int64_t last_qty,
                                                             uint64_t trade_id, int64_t ts)
{
    ev->leaves_qty = leaves;
    ev->filled_qty = filled;
    ev->last_px = last_px;
    ev->last_qty = last_qty;
    ev->trade_id = trade_id;
    ev->ts = ts;
    ev->seq = ++e->event_seq;
    ev->fee = 0;
    ev->liquidity = ARB_LIQ_NONE;
}

/* Field by field, straight into the output: a whole-struct initializer
 * would be built on the stack and copied in wide loads that cannot forward
 * from the narrow stores that built it. */
static inline void event_write(arb_order_event *ev, book_engine *e, const order_book *b,
                               uint8_t kind, uint8_t reason, uint8_t side, uint8_t type,
                               uint8_t tif, uint8_t flags, uint64_t order_id, uint64_t account,
                               int64_t price, int64_t qty, int64_t leaves, int64_t filled,
                               int64_t last_px, int64_t last_qty, uint64_t trade_id, int64_t ts,
                               uint64_t client_ref)
{
    ev->kind = kind;
    ev->reason = reason;
    ev->side = side;
    ev->type = type;
    ev->tif = tif;
    ev->flags = flags;
    memcpy(ev->venue, b->venue, ARB_VENUE_LEN);
    memcpy(ev->symbol, b->symbol, ARB_SYMBOL_LEN);
    ev->order_id = order_id;
    ev->account = account;
    ev->price = price;
    ev->qty = qty;
    event_tail(ev, e, leaves, filled, last_px, last_qty, trade_id, ts);
    ev->client_ref = client_ref;
}

/* Where one fill's records go: the resting order's event, the incoming
 * order's, the trade. One capacity check for the three. */
typedef struct fill_slots {
    arb_order_event *maker, *taker;
    arb_trade *trade;
} fill_slots;

static __attribute__((noinline, cold)) fill_slots fill_slots_grow(book_engine *e)
{
    book_output *o = &e->out;
    /* Room for both events first: a slot taken before the array grows
     * would be left behind in the old array. */
    while (o->cap_events - o->n_events < 2) {
        void *q = grow_array(o->events, &o->cap_events, sizeof *o->events);
        if (!q)
            break;
        o->events = q;
    }
    fill_slots f;
    f.maker = event_slot(e);
    f.taker = event_slot(e);
    f.trade = out_trade(o);
    if (UNLIKELY(!f.trade))
        f.trade = &e->lost_trade;
    return f;
}

static inline fill_slots fill_slots_take(book_engine *e)
{
    book_output *o = &e->out;
    uint32_t ne = o->n_events, nt = o->n_trades;
    if (UNLIKELY(o->cap_events - ne < 2 || nt == o->cap_trades))
        return fill_slots_grow(e);
    o->n_events = ne + 2;
    o->n_trades = nt + 1;
    fill_slots f;
    f.maker = &o->events[ne];
    f.taker = f.maker + 1;
    f.trade = &o->trades[nt];
    return f;
}

/* From the venue to the quantity, an order event has the layout of the order
 * command: an ACCEPTED event copies that span in a few wide moves. The
 * command's venue and symbol are the book's (find_book compared all their
 * bytes). */
#define CMD_SPAN_START offsetof(arb_order_cmd, venue)
#define CMD_SPAN_END offsetof(arb_order_cmd, ts)
_Static_assert(offsetof(arb_order_cmd, flags) - offsetof(arb_order_cmd, side) == 3 &&
                   offsetof(arb_order_event, flags) - offsetof(arb_order_event, side) == 3 &&
                   offsetof(arb_order_cmd, type) == offsetof(arb_order_cmd, side) + 1 &&
                   offsetof(arb_order_event, type) == offsetof(arb_order_event, side) + 1 &&
                   offsetof(arb_order_cmd, tif) == offsetof(arb_order_cmd, side) + 2 &&
                   offsetof(arb_order_event, tif) == offsetof(arb_order_event, side) + 2,
               "side, type, tif and flags are not four bytes in a row");
_Static_assert(offsetof(arb_order_event, venue) == offsetof(arb_order_cmd, venue) &&
                   offsetof(arb_order_event, symbol) == offsetof(arb_order_cmd, symbol) &&
                   offsetof(arb_order_event, order_id) == offsetof(arb_order_cmd, order_id) &&
                   offsetof(arb_order_event, account) == offsetof(arb_order_cmd, account) &&
                   offsetof(arb_order_event, price) == offsetof(arb_order_cmd, price) &&
                   offsetof(arb_order_event, qty) == offsetof(arb_order_cmd, qty) &&
                   offsetof(arb_order_event, leaves_qty) == CMD_SPAN_END,
               "order event and order command layouts differ");

static inline void event_accepted(book_engine *e, const arb_order_cmd *c)
{
    arb_order_event *ev = event_slot(e);
    memcpy((char *)ev + CMD_SPAN_START, (const char *)c + CMD_SPAN_START,
           CMD_SPAN_END - CMD_SPAN_START);
    ev->kind = ARB_EV_ACCEPTED;
    ev->reason = 0;
    ev->side = c->side;
    ev->type = c->type;
    ev->tif = c->tif;
    ev->flags = c->flags;
    ev->leaves_qty = c->qty;
    /* filled_qty, last_px, last_qty and trade_id: 0, in two wide stores. */
    memset(&ev->filled_qty, 0,
           offsetof(arb_order_event, ts) - offsetof(arb_order_event, filled_qty));
    ev->ts = c->ts;
    ev->seq = ++e->event_seq;
    ev->client_ref = c->client_ref;
    ev->fee = 0;
    ev->liquidity = ARB_LIQ_NONE;
}

/* An event of the order a command describes (its side, type, tif, flags,
 * venue, symbol, id, account, price and total quantity; validated), copied
 * in the wide moves of event_accepted. */
static inline void event_of_cmd(arb_order_event *ev, book_engine *e, const arb_order_cmd *c,
                                uint8_t kind, int64_t leaves, int64_t filled, int64_t last_px,
                                int64_t last_qty, uint64_t trade_id, int64_t ts)
{
    memcpy((char *)ev + CMD_SPAN_START, (const char *)c + CMD_SPAN_START,
           CMD_SPAN_END - CMD_SPAN_START);
    ev->kind = kind;
    ev->reason = 0;
    /* side, type, tif, flags: four bytes in a row in both. */
    memcpy(&ev->side, &c->side, 4);
    event_tail(ev, e, leaves, filled, last_px, last_qty, trade_id, ts);
    ev->client_ref = c->client_ref;
}

static void reject(book_engine *e, const arb_order_cmd *c, unsigned reason)
{
    arb_order_event *ev = out_event(&e->out);
    if (UNLIKELY(!ev))
        ev = &e->lost_event;
    memcpy(ev->venue, c->venue, ARB_VENUE_LEN);
    memcpy(ev->symbol, c->symbol, ARB_SYMBOL_LEN);
    ev->seq = ++e->event_seq;
    ev->kind = ARB_EV_REJECTED;
    ev->reason = (uint8_t)reason;
    ev->side = c->side <= ARB_SIDE_SELL ? c->side : 0;
    ev->type = c->type <= ARB_ORD_MARKET ? c->type : 0;
    ev->tif = c->tif <= ARB_TIF_FOK ? c->tif : 0;
    ev->flags = c->flags & ARB_ORDF_POST_ONLY;
    ev->order_id = c->order_id;
    ev->account = c->account;
    ev->price = c->price;
    ev->qty = c->qty;
    ev->leaves_qty = 0;
    ev->filled_qty = 0;
    ev->last_px = 0;
    ev->last_qty = 0;
    ev->trade_id = 0;
    ev->ts = c->ts;
    ev->client_ref = c->client_ref;
    ev->fee = 0;
    ev->liquidity = ARB_LIQ_NONE;
}

/* The order being matched: a new order, or a resting one being replaced. */
typedef struct taker {
    /* What does not change while it matches, read where it already is: a
     * NEW's command; for a replace, a command-shaped copy of the order
     * (side, type, tif, flags, venue, symbol, order_id, account, price,
     * qty = its total, client_ref are used). */
    const arb_order_cmd *id;
    int64_t ticks, leaves, filled;
    int side; /* SIDE_BID or SIDE_ASK */
    uint8_t stp;
} taker;

static inline void event_taker(book_engine *e, const taker *t, uint8_t kind, uint8_t reason,
                               int64_t ts)
{
    arb_order_event *ev = event_slot(e);
    event_of_cmd(ev, e, t->id, kind, t->leaves, t->filled, 0, 0, 0, ts);
    ev->reason = reason;
}

/* An event of a resting order (a GTC limit on `side`, which the caller
 * usually has in a register: the record's is a bit field) at `price`: its
 * limit, or a fill's price, which is the same. */
static inline void event_of_resting(arb_order_event *ev, book_engine *e, const order_book *b,
                                    const resting_order *o, int side, uint8_t kind, uint8_t reason,
                                    int64_t price, int64_t leaves, int64_t filled, int64_t last_px,
                                    int64_t last_qty, uint64_t trade_id, int64_t ts)
{
    event_write(ev, e, b, kind, reason, (uint8_t)(side + 1), ARB_ORD_LIMIT, ARB_TIF_GTC, o->flags,
                o->order_id, o->account, price, o->qty, leaves, filled, last_px, last_qty, trade_id,
                ts, o->client_ref);
}

static inline void event_resting(book_engine *e, const order_book *b, const resting_order *o,
                                 uint8_t kind, uint8_t reason, int64_t leaves, int64_t last_px,
                                 int64_t last_qty, uint64_t trade_id, int64_t ts)
{
    event_of_resting(event_slot(e), e, b, o, o->side, kind, reason, o->ticks * b->tick, leaves,
                     o->qty - o->leaves, last_px, last_qty, trade_id, ts);
}

static inline int64_t order_key(const resting_order *o) { return flip(o->ticks, o->side); }

/* Links a pool record into the back of its level and returns the level.
 * link_order_at and unlink_level are forced inline: left to itself gcc calls
 * them (they have several callers), and the calls with their register saves
 * cost more than a tenth of mix b's throughput (see the README). */
static inline __attribute__((always_inline)) price_level *
link_order_at(book_engine *e, order_book *b, uint32_t oi, int side, int64_t key, int64_t leaves)
{
    resting_order *o = &e->orders[oi];
    book_side *s = &b->side[side];
    uint64_t off = (uint64_t)(key - s->lo);
    price_level *lv;
    if (LIKELY(off < s->width)) {
        lv = &s->slot[off];
        if (lv->count == 0) {
            bit_set(s->bits, s->summary, (uint32_t)off);
            s->n_levels++;
            /* top_key is INT64_MIN on an empty side: one compare. */
            if (key > s->top_key) {
                s->best = key;
                side_sync_top(s);
            }
        }
    } else {
        uint32_t i = far_lower_bound(s, key);
        if (i == s->n_far || s->far[i].key != key) {
            memmove(&s->far[i + 1], &s->far[i], (size_t)(s->n_far - i) * sizeof *s->far);
            s->n_far++;
            memset(&s->far[i], 0, sizeof s->far[i]);
            s->far[i].key = key;
        }
        lv = &s->far[i].lv;
    }
    uint32_t tail = lv->tail;
    o->next = 0;
    o->prev = tail;
    if (tail)
        e->orders[tail].next = oi;
    else
        lv->head = oi;
    lv->tail = oi;
    lv->count++;
    lv->qty += leaves;
    return lv;
}

static inline __attribute__((always_inline)) void rest_order(book_engine *e, order_book *b,
                                                             uint32_t oi)
{
    const resting_order *o = &e->orders[oi];
    int side = o->side;
    int64_t key = order_key(o);
    link_order_at(e, b, oi, side, key, o->leaves);
    touch(e, side, key);
}

/* What a level holds after a command: its market data entry. */
typedef struct level_state {
    int64_t qty;
    uint32_t count;
} level_state;

/* Takes a record out of its level (the record itself stays allocated) and
 * returns what the level holds afterwards, read before an emptied level is
 * given up (the window may move over its slot). */
static inline __attribute__((always_inline)) level_state unlink_level(book_engine *e, order_book *b,
                                                                      uint32_t oi)
{
    resting_order *o = &e->orders[oi];
    book_side *s = &b->side[o->side];
    int64_t key = order_key(o);
    price_level *lv = side_level(s, key);
    if (o->prev)
        e->orders[o->prev].next = o->next;
    else
        lv->head = o->next;
    if (o->next)
        e->orders[o->next].prev = o->prev;
    else
        lv->tail = o->prev;
    level_state st = {lv->qty - o->leaves, lv->count - 1};
    lv->qty = st.qty;
    lv->count = st.count;
    if (st.count == 0)
        side_level_emptied(s, key);
    return st;
}

static inline __attribute__((always_inline)) void unlink_order(book_engine *e, order_book *b,
                                                               uint32_t oi)
{
    unlink_level(e, b, oi);
    touch(e, e->orders[oi].side, order_key(&e->orders[oi]));
}

/* Releases an unlinked record whose id is already out of the map. */
static inline void forget_order(book_engine *e, order_book *b, uint32_t oi)
{
    e->accts[e->orders[oi].acct].open--;
    b->orders--;
    pool_put(e, oi);
}

/* Forgets an unlinked record: id, account count, pool. The id's tag is
 * read from its lane, not hashed again. */
static inline void drop_order(book_engine *e, order_book *b, uint32_t oi)
{
    uint32_t pos = e->orders[oi].id_pos;
    idmap_remove_at(&e->ids, pos, e->ids.b[pos >> 3].tag[pos & 7]);
    forget_order(e, b, oi);
}

/* Can a FOK fill completely, given self-trade prevention? */
/* The taker comes by value: its address not taken, the matching loop can
 * keep it in registers. */
static __attribute__((noinline)) int fok_fillable(const book_engine *e, const order_book *b,
                                                  taker tk, int64_t thr)
{
    const taker *t = &tk;
    const book_side *s = &b->side[t->side ^ 1];
    int64_t need = t->leaves;
    if (!s->n_levels)
        return 0;
    int64_t key = s->best;
    int found = 1;
    while (found && key >= thr) {
        const price_level *lv = side_find(s, key);
        if (t->stp == ARB_STP_NONE) {
            need -= lv->qty;
        } else {
            for (uint32_t oi = lv->head; oi; oi = e->orders[oi].next) {
                const resting_order *o = &e->orders[oi];
                if (o->account == t->id->account) {
                    if (t->stp == ARB_STP_CANCEL_INCOMING)
                        return 0;
                    continue;
                }
                need -= o->leaves;
                if (need <= 0)
                    return 1;
            }
        }
        if (need <= 0)
            return 1;
        key = book__side_next_key(s, key, &found);
    }
    return 0;
}

/* Matches t against the opposite side down to threshold key thr. Returns 1
 * if self-trade prevention stopped the incoming order. Inlined into its two
 * callers (both out of the resting path), so the taker stays in registers. */
static inline __attribute__((always_inline)) int match(book_engine *e, order_book *b, taker *t,
                                                       int64_t thr, int64_t ts)
{
    int os = t->side ^ 1;
    book_side *s = &b->side[os];
    int64_t last_px = 0;
    int stopped = 0;
    /* The taker's open and filled quantities live in registers here. */
    int64_t leaves = t->leaves, filled = t->filled;
    uint8_t tside = (uint8_t)(t->side + 1);
    int tb = t->side == SIDE_BID;
    /* Fee rates: the taker's is the same for every fill; a maker's is the
     * book's unless fee tiers name its account. */
    int tiered = e->tiers.count != 0;
    int64_t trate = UNLIKELY(tiered) ? tier_rate(e, b, t->id->account, 0) : b->taker_cbps;
    /* The level a fill takes from is touched on its first fill, not on
     * every one (touch() would drop the repeats anyway). */
    int64_t touched_key = INT64_MIN;
    while (leaves > 0 && s->top_key >= thr) {
        int64_t key = s->top_key;
        price_level *lv = s->top_lv;
        uint32_t oi = lv->head;
        resting_order *o = &e->orders[oi];
        if (UNLIKELY(o->account == t->id->account) && t->stp != ARB_STP_NONE) {
            if (t->stp == ARB_STP_CANCEL_INCOMING) {
                stopped = 1;
                break;
            }
            event_resting(e, b, o, ARB_EV_CANCELLED, ARB_R_SELF_TRADE, 0, 0, 0, 0, ts);
            unlink_order(e, b, oi);
            drop_order(e, b, oi);
            continue;
        }
        int64_t fill = leaves < o->leaves ? leaves : o->leaves;
        int64_t px = s->top_px; /* the level's price (side_sync_top) */
        uint64_t trade_seq = ++b->trade_seq;
        uint64_t trade_id = b->trade_id_base | trade_seq;
        int64_t o_leaves = o->leaves - fill;
        o->leaves = o_leaves;
        lv->qty -= fill;
        leaves -= fill;
        filled += fill;
        fill_slots f = fill_slots_take(e);
        event_of_resting(f.maker, e, b, o, os, o_leaves ? ARB_EV_PARTIAL : ARB_EV_FILLED, 0, px,
                         o_leaves, o->qty - o_leaves, px, fill, trade_id, ts);
        event_of_cmd(f.taker, e, t->id, leaves ? ARB_EV_PARTIAL : ARB_EV_FILLED, leaves, filled, px,
                     fill, trade_id, ts);
        int64_t mrate = UNLIKELY(tiered) ? tier_rate(e, b, o->account, 1) : b->maker_cbps;
        int64_t mfee = fill_fee(b, px, fill, mrate);
        int64_t tfee = fill_fee(b, px, fill, trate);
        f.maker->fee = mfee;
        f.maker->liquidity = ARB_LIQ_MAKER;
        f.taker->fee = tfee;
        f.taker->liquidity = ARB_LIQ_TAKER;
        arb_trade *tr = f.trade;
        tr->buy_fee = tb ? tfee : mfee;
        tr->sell_fee = tb ? mfee : tfee;
        memcpy(tr->venue, b->venue, ARB_VENUE_LEN);
        memcpy(tr->symbol, b->symbol, ARB_SYMBOL_LEN);
        tr->trade_id = trade_id;
        tr->price = px;
        tr->qty = fill;
        /* Selects, not branches: the aggressor's side is random. */
        tr->buy_order_id = tb ? t->id->order_id : o->order_id;
        tr->buy_account = tb ? t->id->account : o->account;
        tr->sell_order_id = tb ? o->order_id : t->id->order_id;
        tr->sell_account = tb ? o->account : t->id->account;
        tr->ts = ts;
        tr->seq = trade_seq;
        tr->aggressor = tside;
        last_px = px;
        if (key != touched_key) {
            touch(e, os, key);
            touched_key = key;
        }
        if (o_leaves == 0) {
            /* The filled order is the level's head: unlink it from the front. */
            uint32_t nx = o->next;
            lv->head = nx;
            if (nx)
                e->orders[nx].prev = 0;
            else
                lv->tail = 0;
            if (--lv->count == 0)
                side_level_emptied(s, key);
            drop_order(e, b, oi);
        }
    }
    t->leaves = leaves;
    t->filled = filled;
    /* The band follows the last trade of the command. */
    if (last_px && last_px != b->ref_price) {
        b->ref_price = last_px;
        band_from_ref(b);
    }
    return stopped;
}

static inline void top_of_book(const order_book *b, arb_market_data *md)
{
    const book_side *bid = &b->side[SIDE_BID], *ask = &b->side[SIDE_ASK];
    md->bid_px = bid->top_px;
    md->bid_qty = bid->top_lv->qty;
    md->ask_px = ask->top_px;
    md->ask_qty = ask->top_lv->qty;
}

/* A market data record's head: the book, its sequence, its top; its levels
 * (n of them) start at first_level of the output's level array. */
static inline __attribute__((always_inline)) void md_head(book_md *m, const order_book *b,
                                                          uint8_t kind, uint64_t seq, uint32_t n,
                                                          uint32_t first_level, int64_t ts)
{
    m->head.kind = kind;
    m->head.n_levels = n;
    memcpy(m->head.venue, b->venue, ARB_VENUE_LEN);
    memcpy(m->head.symbol, b->symbol, ARB_SYMBOL_LEN);
    m->head.book_seq = seq;
    m->head.ts = ts;
    m->head.levels = NULL;
    top_of_book(b, &m->head);
    m->first_level = first_level;
}

static inline book_md *md_begin(book_engine *e, const order_book *b, uint8_t kind, uint64_t seq,
                                int64_t ts)
{
    book_md *m = out_md(&e->out);
    if (LIKELY(m != NULL))
        md_head(m, b, kind, seq, 0, e->out.n_levels, ts);
    return m;
}

static inline int touched_before(const touched_level *a, const touched_level *b)
{
    return a->side != b->side ? a->side < b->side : a->key > b->key;
}

/* A touched level's market data entry: what the level holds now. */
static inline __attribute__((always_inline)) void md_entry(arb_md_level *l, const order_book *b,
                                                           const touched_level *t)
{
    const price_level *lv = side_find(&b->side[t->side], t->key);
    l->side = (uint8_t)(t->side + 1);
    l->price = flip(t->key, t->side) * b->tick;
    l->qty = lv ? lv->qty : 0;
    l->orders = lv ? lv->count : 0;
}

static inline void md_level(book_engine *e, const order_book *b, book_md *m, const touched_level *t)
{
    arb_md_level *l = out_level(&e->out);
    if (UNLIKELY(!l))
        return;
    md_entry(l, b, t);
    m->head.n_levels++;
}

/* Sorts the touched levels (bids before asks, best first) and drops
 * repeats; returns how many are left. */
static inline uint32_t touched_sorted(touched_level *tl, uint32_t n)
{
    if (n == 2) {
        /* A replace that moved, or a fill and the taker's rest. */
        if (touched_before(&tl[1], &tl[0])) {
            touched_level x = tl[0];
            tl[0] = tl[1];
            tl[1] = x;
        }
        return 1u + (tl[1].key != tl[0].key || tl[1].side != tl[0].side);
    }
    /* Insertion sort (a handful of entries), then drop repeats. */
    for (uint32_t i = 1; i < n; i++) {
        touched_level x = tl[i];
        uint32_t j = i;
        for (; j > 0 && touched_before(&x, &tl[j - 1]); j--)
            tl[j] = tl[j - 1];
        tl[j] = x;
    }
    uint32_t k = 1;
    for (uint32_t i = 1; i < n; i++)
        if (tl[i].key != tl[k - 1].key || tl[i].side != tl[k - 1].side)
            tl[k++] = tl[i];
    return k;
}

/* Records that need an output array to grow, or more than one record. */
static __attribute__((noinline, cold)) void
md_levels_slow(book_engine *e, order_book *b, const touched_level *tl, uint32_t n, int64_t ts)
{
    book_md *m = NULL;
    for (uint32_t i = 0; i < n; i++) {
        if (!m || m->head.n_levels == ARB_MD_MAX_LEVELS) {
            m = md_begin(e, b, ARB_MD_LEVEL, ++b->md_seq, ts);
            if (!m)
                return;
        }
        md_level(e, b, m, &tl[i]);
    }
}

/* One ARB_MD_LEVEL record (or more, past ARB_MD_MAX_LEVELS) for the levels
 * the command touched: bids before asks, best first, each once. */
static inline __attribute__((always_inline)) void emit_levels_md(book_engine *e, order_book *b,
                                                                 int64_t ts)
{
    book_output *o = &e->out;
    if (UNLIKELY(e->touched_lost))
        o->dropped++;
    touched_level *tl = e->touched;
    uint32_t n = e->n_touched > 1 ? touched_sorted(tl, e->n_touched) : e->n_touched;
    uint32_t nm = o->n_md, nl = o->n_levels;
    if (UNLIKELY(n > ARB_MD_MAX_LEVELS || nm == o->cap_md || o->cap_levels - nl < n)) {
        md_levels_slow(e, b, tl, n, ts);
        return;
    }
    /* The usual case: one record, its levels, no array to grow. */
    o->n_md = nm + 1;
    o->n_levels = nl + n;
    md_head(&o->md[nm], b, ARB_MD_LEVEL, ++b->md_seq, n, nl, ts);
    arb_md_level *l = &o->levels[nl];
    for (uint32_t i = 0; i < n; i++, l++)
        md_entry(l, b, &tl[i]);
}

static void finish_command(book_engine *e, order_book *b, int64_t ts);

/* The market data of a command that touched one level (a resting add, a
 * cancel) whose final state the caller knows: no touched list, no lookup. */
static inline void md_one_level(book_engine *e, order_book *b, int side, int64_t ticks,
                                int64_t price, level_state st, int64_t ts)
{
    book_output *o = &e->out;
    uint32_t nm = o->n_md, nl = o->n_levels;
    if (UNLIKELY(nm == o->cap_md || nl == o->cap_levels)) {
        /* An array must grow: the general path does it (and counts a drop
         * when it cannot). */
        e->touched[0].key = flip(ticks, side);
        e->touched[0].side = side;
        e->n_touched = 1;
        finish_command(e, b, ts);
        return;
    }
    o->n_md = nm + 1;
    o->n_levels = nl + 1;
    md_head(&o->md[nm], b, ARB_MD_LEVEL, ++b->md_seq, 1, nl, ts);
    arb_md_level *l = &o->levels[nl];
    l->side = (uint8_t)(side + 1);
    l->price = price;
    l->qty = st.qty;
    l->orders = st.count;
}

/* ---- commands ---- */

static inline unsigned check_price(const order_book *b, int64_t price, int64_t *ticks)
{
    if (UNLIKELY(price <= 0 || price > BOOK_MAX_PRICE))
        return ARB_R_BAD_PRICE;
    if (LIKELY(b->tick == 1)) {
        *ticks = price;
        return 0;
    }
    int64_t t = price / b->tick;
    if (UNLIKELY(t * b->tick != price))
        return ARB_R_PRICE_OFF_TICK;
    *ticks = t;
    return 0;
}

static inline unsigned check_qty(const order_book *b, int64_t qty)
{
    if (UNLIKELY(qty <= 0))
        return ARB_R_BAD_QUANTITY;
    if (UNLIKELY(b->lot != 1 && qty % b->lot))
        return ARB_R_QTY_OFF_LOT;
    if (UNLIKELY(qty < b->min_qty))
        return ARB_R_QTY_BELOW_MIN;
    if (UNLIKELY(qty > b->max_qty))
        return ARB_R_QTY_ABOVE_MAX;
    return 0;
}

/* Threshold key on the side opposite `side` for a limit of `ticks`. */
static inline int64_t cross_threshold(int side, int64_t ticks) { return -flip(ticks, side); }

static inline int would_cross(const order_book *b, int side, int64_t ticks)
{
    const book_side *s = &b->side[side ^ 1];
    return s->top_key >= cross_threshold(side, ticks);
}

/* A pool record for a NEW that rests (capacity was reserved), in the id
 * map and the counts, not yet linked into its level. */
static inline __attribute__((always_inline)) uint32_t
new_resting(book_engine *e, order_book *b, const arb_order_cmd *c, uint32_t tag, int64_t ticks,
            int side, int64_t leaves, uint32_t acct, uint8_t stp)
{
    uint8_t flags = c->flags;
    /* All checked by process_new: said here, the bit fields pack without
     * masks. */
    if ((unsigned)side > 1u || flags > 1u || stp > 3u)
        __builtin_unreachable();
    uint32_t oi = pool_take(e);
    resting_order *o = &e->orders[oi];
    *o = (resting_order){
        .order_id = c->order_id,
        .account = c->account,
        .client_ref = c->client_ref,
        .ticks = ticks,
        .qty = c->qty,
        .leaves = leaves,
        .acct = acct,
        .id_pos = idmap_put_tag(&e->ids, tag, oi) & 0xfffffffu,
        .side = (uint8_t)side,
        .flags = flags,
        .stp = stp,
    };
    e->accts[acct].open++;
    b->orders++;
    return oi;
}

/* The end of a command that may have touched several levels or moved a
 * window: refills, the market data of the touched levels, and the
 * per-command state back to rest (n_touched, touched_lost and slid are 0
 * between commands, so the resting add and the cancel, which emit their own
 * market data, need none of this). */
static inline __attribute__((always_inline)) void finish_inline(book_engine *e, order_book *b,
                                                                int64_t ts)
{
    /* side_prepare may have slid a window past all its levels for an order
     * that then did not rest. */
    if (UNLIKELY(e->slid)) {
        e->slid = 0;
        side_refill(&b->side[SIDE_BID]);
        side_refill(&b->side[SIDE_ASK]);
    }
    if (e->n_touched)
        emit_levels_md(e, b, ts);
    e->n_touched = 0;
    e->touched_lost = 0;
}

static __attribute__((noinline)) void finish_command(book_engine *e, order_book *b, int64_t ts)
{
    finish_inline(e, b, ts);
}

/* The part of a NEW that takes liquidity (inlined into take_then_rest,
 * which is out of line). Returns what is left to rest (0: nothing). */
static inline __attribute__((always_inline)) int64_t take_new(book_engine *e, order_book *b,
                                                              const arb_order_cmd *c, int64_t ticks,
                                                              int side, uint8_t stp, int crosses,
                                                              int gtc)
{
    taker t = {
        .id = c,
        .ticks = ticks,
        .leaves = c->qty,
        .filled = 0,
        .side = side,
        .stp = stp,
    };
    int64_t thr = cross_threshold(side, ticks);
    if (UNLIKELY(c->tif == ARB_TIF_FOK) && !fok_fillable(e, b, t, thr)) {
        t.leaves = 0;
        event_taker(e, &t, ARB_EV_EXPIRED, ARB_R_FOK_NOT_FILLABLE, c->ts);
        return 0;
    }
    int stopped = crosses ? match(e, b, &t, thr, c->ts) : 0;
    if (!t.leaves)
        return 0;
    if (stopped || !gtc) {
        t.leaves = 0;
        event_taker(e, &t, stopped ? ARB_EV_CANCELLED : ARB_EV_EXPIRED,
                    stopped ? ARB_R_SELF_TRADE : ARB_R_NO_LIQUIDITY, c->ts);
        return 0;
    }
    return t.leaves;
}

/* A NEW that crosses or is not GTC: matching, the rest of a GTC remainder,
 * and the market data of every level touched. Out of line so the common
 * resting path keeps its registers. */
static __attribute__((noinline)) void take_then_rest(book_engine *e, order_book *b,
                                                     const arb_order_cmd *c, int64_t ticks,
                                                     int side, uint8_t stp, int crosses, int gtc,
                                                     uint32_t acct, uint32_t tag)
{
    int64_t leaves = take_new(e, b, c, ticks, side, stp, crosses, gtc);
    if (leaves)
        rest_order(e, b, new_resting(e, b, c, tag, ticks, side, leaves, acct, stp));
    finish_inline(e, b, c->ts);
}

static void process_new(book_engine *e, order_book *b, const arb_order_cmd *c, uint32_t tag)
{
    /* Enums in range, then the combinations: market needs IOC/FOK,
     * post-only needs LIMIT GTC. */
    unsigned sd = c->side - 1u, ty = c->type - 1u, tf = c->tif - 1u;
    if (UNLIKELY((sd | ty) > 1u || tf > 2u || c->flags > ARB_ORDF_POST_ONLY ||
                 c->stp > ARB_STP_NONE || (ty == 1u && tf == 0u) || (c->flags && (ty | tf)))) {
        reject(e, c, ARB_R_BAD_FIELD);
        return;
    }
    int64_t ticks = c->price;
    unsigned r = 0;
    /* One range check each for price and quantity (see update_band); the
     * checks one by one, for their reason, only when that fails. */
    if (UNLIKELY((uint64_t)c->price - b->fast_px_lo >= b->fast_px_n ||
                 (uint64_t)c->qty - b->fast_qty_lo >= b->fast_qty_n)) {
        r = check_price(b, c->price, &ticks);
        if (!r)
            r = check_qty(b, c->qty);
        if (!r && UNLIKELY(c->price < b->band_lo || c->price > b->band_hi))
            r = ARB_R_PRICE_BAND;
    }
    int side = (int)sd;
    int gtc = tf == 0u;
    /* The table must not grow between the probe and the insert. */
    if (!r && gtc && UNLIKELY(idmap_reserve(&e->ids, 1, e->orders)))
        r = ARB_R_MAX_OPEN_ORDERS;
    uint32_t pos;
    if (!r && UNLIKELY(idmap_find_tag(&e->ids, tag, c->order_id, e->orders, sizeof *e->orders,
                                      &pos) != 0))
        r = ARB_R_DUPLICATE_ORDER_ID;
    uint32_t acct = 0;
    if (!r && gtc) {
        if (!(acct = account_get(e, c->account)) || e->accts[acct].open >= e->open_cap ||
            pool_reserve(e) || side_reserve(e, &b->side[side], flip(ticks, side)))
            r = ARB_R_MAX_OPEN_ORDERS;
    }
    int crosses = would_cross(b, side, ticks);
    if (!r && c->flags && crosses)
        r = ARB_R_POST_ONLY_WOULD_TAKE;
    if (UNLIKELY(r)) {
        reject(e, c, r);
        if (UNLIKELY(e->slid))
            finish_command(e, b, c->ts);
        return;
    }
    uint8_t stp = e->stp_of[c->stp]; /* c->stp was checked: at most ARB_STP_NONE */
    event_accepted(e, c);
    if (UNLIKELY(crosses || !gtc)) {
        take_then_rest(e, b, c, ticks, side, stp, crosses, gtc, acct, tag);
        return;
    }
    uint32_t oi = new_resting(e, b, c, tag, ticks, side, c->qty, acct, stp);
    /* side_prepare may have moved this side's window; the other side is as
     * the last command left it, so nothing needs refilling. */
    e->slid = 0;
    /* The caller's side, key and quantity, not the record's: they are in
     * registers, the record was just written. */
    price_level *lv = link_order_at(e, b, oi, side, flip(ticks, side), c->qty);
    md_one_level(e, b, side, ticks, c->price, (level_state){lv->qty, lv->count}, c->ts);
}

static void process_cancel(book_engine *e, order_book *b, const arb_order_cmd *c, uint32_t tag)
{
    uint32_t pos;
    uint32_t oi = idmap_find_tag(&e->ids, tag, c->order_id, e->orders, sizeof *e->orders, &pos);
    if (UNLIKELY(!oi)) {
        reject(e, c, ARB_R_UNKNOWN_ORDER);
        return;
    }
    resting_order *o = &e->orders[oi];
    if (UNLIKELY(o->account != c->account)) {
        reject(e, c, ARB_R_NOT_OWNER);
        return;
    }
    int side = o->side;
    int64_t ticks = o->ticks, price = ticks * b->tick;
    /* Its fields, read before the event's slot is taken (whose count an
     * optimizer must assume may alias the record's bit fields): the same
     * event as event_resting's, ~1.3 instructions per command cheaper on
     * mix b. */
    uint8_t flags = o->flags;
    uint64_t order_id = o->order_id, account = o->account, client_ref = o->client_ref;
    int64_t qty = o->qty, filled = o->qty - o->leaves;
    event_write(event_slot(e), e, b, ARB_EV_CANCELLED, ARB_R_USER_CANCEL, (uint8_t)(side + 1),
                ARB_ORD_LIMIT, ARB_TIF_GTC, flags, order_id, account, price, qty, 0, filled, 0, 0,
                0, c->ts, client_ref);
    level_state st = unlink_level(e, b, oi);
    idmap_remove_at(&e->ids, pos, tag);
    forget_order(e, b, oi);
    md_one_level(e, b, side, ticks, price, st, c->ts);
}

static __attribute__((noinline)) void process_replace(book_engine *e, order_book *b,
                                                      const arb_order_cmd *c, uint32_t tag)
{
    uint32_t pos;
    uint32_t oi = idmap_find_tag(&e->ids, tag, c->order_id, e->orders, sizeof *e->orders, &pos);
    if (UNLIKELY(!oi)) {
        reject(e, c, ARB_R_UNKNOWN_ORDER);
        return;
    }
    resting_order *o = &e->orders[oi];
    if (UNLIKELY(o->account != c->account)) {
        reject(e, c, ARB_R_NOT_OWNER);
        return;
    }
    int64_t ticks = 0;
    int64_t filled = o->qty - o->leaves;
    unsigned r = check_price(b, c->price, &ticks);
    if (!r)
        r = check_qty(b, c->qty);
    if (!r && UNLIKELY(filled + c->qty > BOOK_MAX_TOTAL))
        r = ARB_R_QTY_ABOVE_MAX;
    int moved = ticks != o->ticks;
    if (!r && moved && UNLIKELY(c->price < b->band_lo || c->price > b->band_hi))
        r = ARB_R_PRICE_BAND;
    if (!r && moved && (o->flags & ARB_ORDF_POST_ONLY) && would_cross(b, o->side, ticks))
        r = ARB_R_POST_ONLY_WOULD_TAKE;
    if (UNLIKELY(r)) {
        reject(e, c, r);
        return;
    }
    o->client_ref = c->client_ref;
    if (!moved && c->qty <= o->leaves) {
        /* A reduction keeps the order's place in the queue. */
        int64_t cut = o->leaves - c->qty;
        if (cut) {
            price_level *lv = side_level(&b->side[o->side], order_key(o));
            lv->qty -= cut;
            o->leaves = c->qty;
            o->qty -= cut;
            touch(e, o->side, order_key(o));
        }
        event_resting(e, b, o, ARB_EV_REPLACED, 0, o->leaves, 0, 0, 0, c->ts);
        return;
    }
    unlink_order(e, b, oi);
    int side = o->side;
    if (UNLIKELY(side_reserve(e, &b->side[side], flip(ticks, side)))) {
        /* Out of memory for a new price range: the order cannot rest again. */
        event_resting(e, b, o, ARB_EV_CANCELLED, ARB_R_MAX_OPEN_ORDERS, 0, 0, 0, 0, c->ts);
        drop_order(e, b, oi);
        return;
    }
    o->ticks = ticks;
    o->leaves = c->qty;
    o->qty = filled + c->qty;
    event_resting(e, b, o, ARB_EV_REPLACED, 0, o->leaves, 0, 0, 0, c->ts);
    arb_order_cmd id = {
        .side = (uint8_t)(side + 1),
        .type = ARB_ORD_LIMIT,
        .tif = ARB_TIF_GTC,
        .flags = o->flags,
        .order_id = o->order_id,
        .account = o->account,
        .price = c->price,
        .qty = o->qty,
        .client_ref = o->client_ref,
    };
    memcpy(id.venue, b->venue, ARB_VENUE_LEN);
    memcpy(id.symbol, b->symbol, ARB_SYMBOL_LEN);
    taker t = {
        .id = &id,
        .ticks = ticks,
        .leaves = o->leaves,
        .filled = filled,
        .side = side,
        .stp = o->stp,
    };
    int stopped =
        would_cross(b, side, ticks) ? match(e, b, &t, cross_threshold(side, ticks), c->ts) : 0;
    /* match() frees records but never moves the pool, so o is still valid. */
    if (!t.leaves) {
        drop_order(e, b, oi);
        return;
    }
    if (stopped) {
        t.leaves = 0;
        event_taker(e, &t, ARB_EV_CANCELLED, ARB_R_SELF_TRADE, c->ts);
        drop_order(e, b, oi);
        return;
    }
    o->leaves = t.leaves;
    rest_order(e, b, oi);
}

uint32_t order_book_depth(const book_engine *e, const order_book *b, int side, arb_md_level *out,
                          uint32_t max)
{
    (void)e;
    int six = side == ARB_SIDE_SELL;
    const book_side *s = &b->side[six];
    uint32_t n = 0;
    if (!s->n_levels)
        return 0;
    int found = 1;
    for (int64_t key = s->best; found && n < max; key = book__side_next_key(s, key, &found)) {
        const price_level *lv = book__side_find(s, key);
        out[n].side = (uint8_t)(six + 1);
        out[n].price = (six ? -key : key) * b->tick;
        out[n].qty = lv->qty;
        out[n].orders = lv->count;
        n++;
    }
    return n;
}

static __attribute__((noinline, cold)) void process_snapshot(book_engine *e, order_book *b,
                                                             const arb_order_cmd *c)
{
    uint32_t per_side = ARB_MD_MAX_LEVELS / 2;
    if (e->cfg.snapshot_levels && e->cfg.snapshot_levels < per_side)
        per_side = e->cfg.snapshot_levels;
    book_md *m = md_begin(e, b, ARB_MD_SNAPSHOT, b->md_seq, c->ts);
    if (!m)
        return;
    book_output *o = &e->out;
    while (o->n_levels + 2 * per_side > o->cap_levels) {
        void *p = grow_array(o->levels, &o->cap_levels, sizeof *o->levels);
        if (!p) {
            o->n_md--;
            o->dropped++;
            return;
        }
        o->levels = p;
    }
    for (int side = ARB_SIDE_BUY; side <= ARB_SIDE_SELL; side++) {
        uint32_t n = order_book_depth(e, b, side, &o->levels[o->n_levels], per_side);
        o->n_levels += n;
        m->head.n_levels += n;
    }
}

void book_engine_process(book_engine *e, const arb_order_cmd *c)
{
    uint64_t k[3];
    book_key(c->venue, c->symbol, k);
    order_book *b = e->last_book;
    uint32_t salt;
    if (LIKELY(b && b->k[0] == k[0] && b->k[1] == k[1] && b->k[2] == k[2])) {
        salt = b->id_salt;
    } else {
        const book_slot *sl = find_slot(e, k);
        if (UNLIKELY(!sl)) {
            reject(e, c, ARB_R_UNKNOWN_INSTRUMENT);
            return;
        }
        /* The table slot has the salt: the id's bucket can start loading
         * while the book itself (another book than the last: cold) does. */
        salt = sl->salt;
        b = slot_book(e, sl);
    }
    /* Every order command looks its id up in the order map, most often in
     * a bucket that is not in L1: start the load before the dispatch (whose
     * branch the predictor cannot learn) so it overlaps with it. */
    uint32_t tag = order_tag(salt, c->order_id);
    __builtin_prefetch(&e->ids.b[tag >> e->ids.shift]);
    switch (c->action) {
    case ARB_CMD_NEW: process_new(e, b, c, tag); return;
    case ARB_CMD_CANCEL: process_cancel(e, b, c, tag); return;
    case ARB_CMD_REPLACE:
        process_replace(e, b, c, tag);
        finish_command(e, b, c->ts);
        return;
    case ARB_CMD_SNAPSHOT: process_snapshot(e, b, c); return;
    default: reject(e, c, ARB_R_BAD_FIELD); return;
    }
}

void book_engine_prefetch(const book_engine *e, const arb_order_cmd *c, int depth)
{
    uint64_t k[3];
    book_key(c->venue, c->symbol, k);
    const book_slot *sl = find_slot(e, k);
    if (!sl)
        return;
    const order_book *b = e->books[sl->index];
    uint32_t tag = order_tag(sl->salt, c->order_id);
    const id_bucket *bk = &e->ids.b[tag >> e->ids.shift];
    if (depth <= 0) {
        prefetch_book(b);
        __builtin_prefetch(bk);
        return;
    }
    if (depth == 1) {
        /* What the lines loaded at depth 0 point at. */
        __builtin_prefetch(b->side[SIDE_BID].top_lv);
        __builtin_prefetch(b->side[SIDE_ASK].top_lv);
    }
    if (c->action == ARB_CMD_CANCEL || c->action == ARB_CMD_REPLACE) {
        for (unsigned hit = bucket_match(bk, tag); hit; hit &= hit - 1) {
            const resting_order *o = &e->orders[bk->idx[__builtin_ctz(hit)]];
            if (depth == 1) {
                __builtin_prefetch(o);
                continue;
            }
            /* Depth 2: the order's neighbours and its level. */
            if (o->order_id != c->order_id)
                continue;
            __builtin_prefetch(&e->orders[o->prev]);
            __builtin_prefetch(&e->orders[o->next]);
            const book_side *s = &b->side[o->side];
            uint64_t off = (uint64_t)(order_key(o) - s->lo);
            if (off < s->width) {
                __builtin_prefetch(&s->slot[off]);
                __builtin_prefetch(&s->bits[off >> 6]);
            }
        }
    } else if (c->action == ARB_CMD_NEW && (c->side == ARB_SIDE_BUY || c->side == ARB_SIDE_SELL) &&
               c->price > 0) {
        int side = c->side == ARB_SIDE_SELL;
        const book_side *s = &b->side[side];
        int64_t ticks = b->tick == 1 ? c->price : c->price / b->tick;
        int64_t key = flip(ticks, side);
        uint64_t off = (uint64_t)(key - s->lo);
        if (depth == 1) {
            if (off < s->width) {
                __builtin_prefetch(&s->slot[off]);
                __builtin_prefetch(&s->bits[off >> 6]);
            }
            return;
        }
        /* Depth 2: the order it would rest behind, or the first it would
         * take. */
        const price_level *lv = off < s->width ? &s->slot[off] : NULL;
        if (lv && lv->tail)
            __builtin_prefetch(&e->orders[lv->tail]);
        uint32_t head = b->side[side ^ 1].top_lv->head;
        if (head)
            __builtin_prefetch(&e->orders[head]);
    }
}

/* ---- hooks for book_state.c ---- */

int book__rest_restored(book_engine *e, order_book *b, const book_order_view *v)
{
    int64_t ticks = v->price / b->tick;
    int side = v->side == ARB_SIDE_SELL;
    uint32_t acct = account_get(e, v->account);
    if (!acct || pool_reserve(e) || idmap_reserve(&e->ids, 1, e->orders) ||
        side_prepare(e, &b->side[side], flip(ticks, side)))
        return ARB_ENOMEM;
    uint32_t oi = pool_take(e);
    resting_order *o = &e->orders[oi];
    memset(o, 0, sizeof *o);
    o->order_id = v->order_id;
    o->account = v->account;
    o->client_ref = v->client_ref;
    o->ticks = ticks;
    o->qty = v->qty;
    o->leaves = v->leaves;
    o->acct = acct;
    o->side = (uint8_t)side;
    o->flags = v->flags;
    o->stp = v->stp;
    o->id_pos = idmap_put_tag(&e->ids, order_tag(b->id_salt, v->order_id), oi) & 0xfffffffu;
    e->accts[acct].open++;
    b->orders++;
    rest_order(e, b, oi);
    /* Nothing is emitted for a restored order; the side it slid to holds it. */
    e->n_touched = 0;
    e->touched_lost = 0;
    e->slid = 0;
    return ARB_OK;
}

void book__set_counters(order_book *b, uint64_t trade_seq, uint64_t md_seq, int64_t ref_price)
{
    b->trade_seq = trade_seq;
    b->md_seq = md_seq;
    b->ref_price = ref_price;
    update_band(b);
}

uint32_t book__account_open(const book_engine *e, uint64_t account)
{
    uint32_t pos;
    uint32_t i = idmap_find(&e->acct_ids, account, e->accts, sizeof *e->accts, &pos);
    return i ? e->accts[i].open : 0;
}

order_book *book__find(book_engine *e, const char *venue, const char *symbol)
{
    return find_book(e, venue, symbol);
}

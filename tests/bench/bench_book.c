/*
 * bench_book.c -- single-thread matching speed of the order book on
 * reproducible command streams. Prints `bench: <name> <value> <unit>` lines:
 * throughput (best and median of several runs) and per-command latency
 * percentiles, for two mixes on 1 and on 1,000 instruments:
 *   mix a, exchange-like: 9% GTC, 3% IOC, 6% cancel, 82% replace
 *   mix b, book building: 45% resting adds, 15% crossing limits, 35% cancels,
 *          5% market orders
 * One instrument holds ~5,000 live orders over ~150 price levels; 1,000
 * instruments hold ~100 each (~100,000 live orders in all).
 * and the reference book (tests/ref) on mix b as the baseline.
 *
 * A stream is generated once by driving an engine and watching its events
 * (so cancels and replaces name live orders), then replayed on fresh
 * engines: the timed part sees exactly the same book every run. Order ids
 * are large and sparse (a bijective scramble of a counter). Every command's
 * full output (events, trades, market data) is produced and then dropped, as
 * the plugin would after publishing it. The timed part is checked for heap
 * allocations (this binary interposes malloc) and the count is printed.
 * Each timed run is measured on the wall clock and on the thread's CPU
 * clock (`_cpu_` figures): on a shared machine the second leaves out the
 * time other processes held the core, so same-run ratios of CPU figures
 * move less. With many books a second run gives book_engine_prefetch the
 * commands ahead (`_lookahead_`), as a caller holding a batch could.
 *
 * Not a test: not run by `make test`. Run: make bench, or
 *   make OPT="-O3 -march=native -g" B=build/bench-build build/bench-build/bench/bench_book
 *   build/bench-build/bench/bench_book [runs [case-name-substring [timed-commands]]]
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "../../plugins/matcher/book.h"
#include "../ref/ref_book.h"

/* ---- allocation counting ---- */

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
static uint64_t heap_allocations;

void *malloc(size_t n)
{
    heap_allocations++;
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    heap_allocations++;
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    heap_allocations++;
    return __libc_realloc(p, n);
}

/* The engine's small arena chunks come from here, its huge-page arrays and
 * chunks straight from mmap: both count. */
extern void *__libc_memalign(size_t align, size_t n);
void *aligned_alloc(size_t align, size_t n)
{
    heap_allocations++;
    return __libc_memalign(align, n);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    static void *(*next)(void *, size_t, int, int, int, off_t);
    if (!next)
        next = (void *(*)(void *, size_t, int, int, int, off_t))dlsym(RTLD_NEXT, "mmap");
    heap_allocations++;
    return next(addr, len, prot, flags, fd, off);
}

/* ---- ids ---- */

static uint64_t scramble(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

static uint64_t inverse_odd(uint64_t a)
{
    uint64_t x = a; /* Newton: each step doubles the correct low bits */
    for (int i = 0; i < 6; i++)
        x *= 2 - a * x;
    return x;
}

static uint64_t unxorshift(uint64_t x, int s)
{
    uint64_t r = x;
    for (int i = s; i < 64; i += s)
        r = x ^ (r >> s);
    return r;
}

static uint64_t unscramble(uint64_t x)
{
    x = unxorshift(x, 31);
    x *= inverse_odd(0x94d049bb133111ebull);
    x = unxorshift(x, 27);
    x *= inverse_odd(0xbf58476d1ce4e5b9ull);
    x = unxorshift(x, 30);
    return x;
}

static uint64_t rng_state = 42;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static uint32_t below(uint32_t n) { return (uint32_t)(rnd() % n); }

/* ---- the engine under test ----
 *
 * Timed runs reach the engine through this table: the one linked in, or, for
 * the A/B (bench_ab), one of two builds of book.c loaded as shared objects
 * (mk/matcher.mk: the base commit's and the working tree's), so both pay
 * the same call. */
typedef struct book_api {
    const char *name;
    int (*engine_new)(const book_config *cfg, book_engine **out);
    void (*engine_free)(book_engine *e);
    int (*add_instrument)(book_engine *e, const arb_instrument *in);
    void (*process)(book_engine *e, const arb_order_cmd *cmd);
    book_output *(*output)(book_engine *e);
} book_api;

static const book_api linked_api = {"linked",
                                    book_engine_new,
                                    book_engine_free,
                                    book_engine_add_instrument,
                                    book_engine_process,
                                    book_engine_output};
static const book_api *api = &linked_api;

/* ---- instruments and engines ---- */

#define MID0 1000000

static void instrument(arb_instrument *in, uint32_t i)
{
    memset(in, 0, sizeof *in);
    snprintf(in->venue, sizeof in->venue, "X%c", 'A' + (int)(i % 2));
    snprintf(in->symbol, sizeof in->symbol, "SYM%04u", i / 2);
    in->tick = 1;
    in->lot = 1;
    in->min_qty = 1;
    in->max_qty = 1000000;
    in->ref_price = MID0;
    in->band_bps = 2000;
}

/* A setup failure: the reason, exit status 1 (no figure to print). */
static _Noreturn void fail(const char *what, int rc)
{
    fprintf(stderr, "bench_book: %s (%d)\n", what, rc);
    exit(1);
}

static book_engine *fresh_engine(uint32_t n_books, uint32_t capacity)
{
    book_config cfg = {.max_open_orders = 1000000, .order_capacity = capacity};
    book_engine *e;
    int rc = api->engine_new(&cfg, &e);
    if (rc)
        fail("book_engine_new failed", rc);
    for (uint32_t i = 0; i < n_books; i++) {
        arb_instrument in;
        instrument(&in, i);
        if ((rc = api->add_instrument(e, &in)))
            fail("book_engine_add_instrument failed", rc);
    }
    return e;
}

/* ---- stream generation ---- */

typedef struct live_order {
    uint64_t seq;
    int64_t price, leaves;
    uint8_t side;
} live_order;

typedef struct gen_book {
    live_order *live;
    uint32_t n_live, cap_live;
    const order_book *b;
    char venue[ARB_VENUE_LEN], symbol[ARB_SYMBOL_LEN];
} gen_book;

typedef struct generator {
    book_engine *e;
    gen_book *books;
    uint32_t n_books;
    uint32_t *where_book, *where_idx; /* by order seq */
    uint64_t next_seq, cap_seq;
    uint32_t target;
    uint64_t counts[8];
    int64_t ts;
} generator;

enum { K_ADD, K_CROSS, K_CANCEL, K_MARKET, K_GTC, K_IOC, K_REPLACE, K_N };
static const char *kind_names[] = {"rest", "cross", "cancel", "market", "gtc", "ioc", "replace"};

static void live_remove(generator *g, uint64_t seq)
{
    if (seq >= g->next_seq || g->where_book[seq] == UINT32_MAX)
        return;
    gen_book *gb = &g->books[g->where_book[seq]];
    uint32_t i = g->where_idx[seq];
    gb->live[i] = gb->live[--gb->n_live];
    g->where_idx[gb->live[i].seq] = i;
    g->where_book[seq] = UINT32_MAX;
}

static void live_add(generator *g, uint32_t book, uint64_t seq, uint8_t side, int64_t price,
                     int64_t leaves)
{
    gen_book *gb = &g->books[book];
    if (gb->n_live == gb->cap_live) {
        gb->cap_live = gb->cap_live ? gb->cap_live * 2 : 1024;
        gb->live = realloc(gb->live, gb->cap_live * sizeof *gb->live);
    }
    gb->live[gb->n_live] = (live_order){seq, price, leaves, side};
    g->where_book[seq] = book;
    g->where_idx[seq] = gb->n_live++;
}

static void observe(generator *g, uint32_t book)
{
    book_output *o = book_engine_output(g->e);
    for (uint32_t i = 0; i < o->n_events; i++) {
        const arb_order_event *ev = &o->events[i];
        uint64_t seq = unscramble(ev->order_id);
        if (seq >= g->next_seq)
            continue;
        int live =
            ev->tif == ARB_TIF_GTC && (ev->kind == ARB_EV_ACCEPTED || ev->kind == ARB_EV_PARTIAL ||
                                       ev->kind == ARB_EV_REPLACED);
        if (!live) {
            live_remove(g, seq);
        } else if (g->where_book[seq] == UINT32_MAX) {
            live_add(g, book, seq, ev->side, ev->price, ev->leaves_qty);
        } else {
            live_order *l = &g->books[book].live[g->where_idx[seq]];
            l->price = ev->price;
            l->leaves = ev->leaves_qty;
        }
    }
    book_output_clear(o);
}

static uint64_t new_seq(generator *g)
{
    if (g->next_seq == g->cap_seq) {
        g->cap_seq *= 2;
        g->where_book = realloc(g->where_book, g->cap_seq * sizeof *g->where_book);
        g->where_idx = realloc(g->where_idx, g->cap_seq * sizeof *g->where_idx);
    }
    g->where_book[g->next_seq] = UINT32_MAX;
    return g->next_seq++;
}

static void mids(const generator *g, uint32_t book, int64_t *bid, int64_t *ask, int64_t *mid)
{
    order_book_stats st;
    order_book_get_stats(g->e, g->books[book].b, &st);
    *bid = st.bid_qty ? st.bid_px : 0;
    *ask = st.ask_qty ? st.ask_px : 0;
    if (*bid && *ask)
        *mid = (*bid + *ask) / 2;
    else if (*bid)
        *mid = *bid + 1;
    else if (*ask)
        *mid = *ask - 1;
    else
        *mid = st.ref_price;
}

static void cmd_for(generator *g, uint32_t book, arb_order_cmd *c, uint8_t action)
{
    memset(c, 0, sizeof *c);
    c->action = action;
    memcpy(c->venue, g->books[book].venue, ARB_VENUE_LEN);
    memcpy(c->symbol, g->books[book].symbol, ARB_SYMBOL_LEN);
    c->ts = ++g->ts;
    c->type = ARB_ORD_LIMIT;
    c->tif = ARB_TIF_GTC;
}

/* Writes the next command of `mix` for a random book into c. */
static void next_command(generator *g, int mix, arb_order_cmd *c)
{
    uint32_t book = below(g->n_books);
    gen_book *gb = &g->books[book];
    int64_t bid, ask, mid;
    mids(g, book, &bid, &ask, &mid);
    uint32_t r = below(100);
    int kind;
    if (mix == 'b')
        kind = r < 45 ? K_ADD : r < 60 ? K_CROSS : r < 95 ? K_CANCEL : K_MARKET;
    else
        kind = r < 9 ? K_GTC : r < 12 ? K_IOC : r < 18 ? K_CANCEL : K_REPLACE;
    /* Steer the book size toward the target without distorting the mix much. */
    if (kind == K_ADD && gb->n_live > g->target * 11 / 10)
        kind = K_CANCEL;
    if (kind == K_CANCEL && gb->n_live < g->target * 9 / 10)
        kind = mix == 'b' ? K_ADD : K_GTC;
    if ((kind == K_CANCEL || kind == K_REPLACE) && !gb->n_live)
        kind = mix == 'b' ? K_ADD : K_GTC;
    g->counts[kind]++;
    uint8_t side = (uint8_t)(1 + below(2));
    switch (kind) {
    case K_ADD:
    case K_GTC:
        cmd_for(g, book, c, ARB_CMD_NEW);
        c->side = side;
        c->price = side == ARB_SIDE_BUY ? mid - 1 - below(75) : mid + 1 + below(75);
        if (kind == K_GTC && below(5) == 0) /* some exchange GTCs cross */
            c->price =
                side == ARB_SIDE_BUY ? (ask ? ask : mid) + below(3) : (bid ? bid : mid) - below(3);
        c->qty = 1 + below(100);
        break;
    case K_CROSS:
    case K_IOC:
    case K_MARKET:
        cmd_for(g, book, c, ARB_CMD_NEW);
        c->side = side;
        if (kind == K_MARKET) {
            c->type = ARB_ORD_MARKET;
            c->tif = ARB_TIF_IOC;
            c->price = side == ARB_SIDE_BUY ? (ask ? ask : mid) + 20 : (bid ? bid : mid) - 20;
            c->qty = 1 + below(120);
        } else {
            if (kind == K_IOC)
                c->tif = ARB_TIF_IOC;
            c->price =
                side == ARB_SIDE_BUY ? (ask ? ask : mid) + below(3) : (bid ? bid : mid) - below(3);
            c->qty = 1 + below(60);
        }
        break;
    case K_CANCEL: {
        const live_order *l = &gb->live[below(gb->n_live)];
        cmd_for(g, book, c, ARB_CMD_CANCEL);
        c->order_id = scramble(l->seq);
        c->account = 1 + l->seq % 97;
        return;
    }
    default: {
        const live_order *l = &gb->live[below(gb->n_live)];
        cmd_for(g, book, c, ARB_CMD_REPLACE);
        c->order_id = scramble(l->seq);
        c->account = 1 + l->seq % 97;
        if (below(4) == 0) { /* reduce in place */
            c->price = l->price;
            c->qty = l->leaves > 1 ? l->leaves - 1 : 1;
        } else { /* move */
            c->price = l->side == ARB_SIDE_BUY ? mid - 1 - below(75) : mid + 1 + below(75);
            c->qty = l->leaves;
        }
        return;
    }
    }
    uint64_t seq = new_seq(g);
    c->order_id = scramble(seq);
    c->account = 1 + seq % 97;
}

typedef struct stream {
    arb_order_cmd *cmd;
    size_t n_warm, n; /* cmd[0..n_warm) builds the book, then n timed commands */
    uint32_t n_books, capacity;
    uint64_t counts[K_N];
    uint64_t live_end;
} stream;

/* Untimed mix commands that take every table, window and buffer to its
 * working size: at least this many per live order (fewer for the largest
 * case, whose stream would not fit in memory otherwise). */
static size_t churn_per_live = 10;

static void build_stream(stream *s, int mix, uint32_t n_books, uint32_t target, size_t n_timed)
{
    generator g = {0};
    g.n_books = n_books;
    g.target = target;
    g.cap_seq = 1 << 20;
    g.where_book = malloc(g.cap_seq * sizeof *g.where_book);
    g.where_idx = malloc(g.cap_seq * sizeof *g.where_idx);
    g.e = fresh_engine(n_books, n_books * target * 2);
    g.books = calloc(n_books, sizeof *g.books);
    for (uint32_t i = 0; i < n_books; i++) {
        arb_instrument in;
        instrument(&in, i);
        arb_fixstr_set(g.books[i].venue, ARB_VENUE_LEN, in.venue);
        arb_fixstr_set(g.books[i].symbol, ARB_SYMBOL_LEN, in.symbol);
        g.books[i].b = book_engine_find(g.e, g.books[i].venue, g.books[i].symbol);
    }
    size_t fill = (size_t)n_books * target;
    size_t churn = n_timed / 10 > fill * churn_per_live ? n_timed / 10 : fill * churn_per_live;
    s->n_warm = fill + churn;
    s->n = n_timed;
    s->n_books = n_books;
    s->capacity = n_books * target * 2;
    s->cmd = malloc((s->n_warm + s->n) * sizeof *s->cmd);
    for (size_t i = 0; i < s->n_warm + s->n; i++) {
        arb_order_cmd *c = &s->cmd[i];
        if (i < fill) {
            uint32_t book = (uint32_t)(i % n_books);
            int64_t bid, ask, mid;
            mids(&g, book, &bid, &ask, &mid);
            cmd_for(&g, book, c, ARB_CMD_NEW);
            c->side = (uint8_t)(1 + below(2));
            c->price = c->side == ARB_SIDE_BUY ? MID0 - 1 - below(75) : MID0 + 1 + below(75);
            c->qty = 1 + below(100);
            uint64_t seq = new_seq(&g);
            c->order_id = scramble(seq);
            c->account = 1 + seq % 97;
        } else {
            if (i == s->n_warm)
                memset(g.counts, 0, sizeof g.counts);
            next_command(&g, mix, c);
        }
        book_engine_process(g.e, c);
        const order_book *b = book_engine_find(g.e, c->venue, c->symbol);
        uint32_t book = 0;
        while (g.books[book].b != b)
            book++;
        observe(&g, book);
    }
    memcpy(s->counts, g.counts, sizeof s->counts);
    book_engine_stats st;
    book_engine_get_stats(g.e, &st);
    s->live_end = st.orders;
    for (uint32_t i = 0; i < n_books; i++)
        free(g.books[i].live);
    free(g.books);
    free(g.where_book);
    free(g.where_idx);
    book_engine_free(g.e);
}

/* ---- measuring ---- */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double tsc_per_ns;

static void calibrate_tsc(void)
{
    double t0 = now_s();
    uint64_t c0 = __rdtsc();
    while (now_s() - t0 < 0.1)
        ;
    tsc_per_ns = (double)(__rdtsc() - c0) / ((now_s() - t0) * 1e9);
}

static book_engine *warmed_engine(const stream *s)
{
    book_engine *e = fresh_engine(s->n_books, s->capacity);
    book_output *o = api->output(e);
    for (size_t i = 0; i < s->n_warm; i++) {
        api->process(e, &s->cmd[i]);
        book_output_clear(o);
    }
    return e;
}

/* This thread's CPU time: on a shared machine the wall clock also counts the
 * time other processes held the core, the CPU clock only this one's. */
static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

typedef struct result {
    double ops;
    double cpu_ops; /* per second of this thread's CPU time */
    uint64_t allocs, events, trades;
} result;

/* The timed loop, on its own so a profiler can count just this. */
static __attribute__((noinline)) result time_stream(book_engine *e, const stream *s)
{
    book_output *o = api->output(e);
    void (*process)(book_engine *, const arb_order_cmd *) = api->process;
    const arb_order_cmd *cmd = s->cmd + s->n_warm;
    uint64_t events = 0, trades = 0;
    uint64_t a0 = heap_allocations;
    double t0 = now_s(), c0 = cpu_s();
    for (size_t i = 0; i < s->n; i++) {
        process(e, &cmd[i]);
        events += o->n_events;
        trades += o->n_trades;
        book_output_clear(o);
    }
    double dt = now_s() - t0, dc = cpu_s() - c0;
    result r = {(double)s->n / dt, (double)s->n / dc, heap_allocations - a0, events, trades};
    return r;
}

/* The same with book_engine_prefetch at depths 0, 1 and 2 for the commands
 * 4L, 2L and L ahead, as a caller holding a batch (a replay) can: the
 * linked engine only. */
static int LOOKAHEAD = 4;
static __attribute__((noinline)) result time_stream_lookahead(book_engine *e, const stream *s)
{
    book_output *o = book_engine_output(e);
    const arb_order_cmd *cmd = s->cmd + s->n_warm;
    uint64_t events = 0, trades = 0;
    uint64_t a0 = heap_allocations;
    double t0 = now_s(), c0 = cpu_s();
    for (size_t i = 0; i < s->n; i++) {
        if (i + 4 * LOOKAHEAD < s->n)
            book_engine_prefetch(e, &cmd[i + 4 * LOOKAHEAD], 0);
        if (i + 2 * LOOKAHEAD < s->n)
            book_engine_prefetch(e, &cmd[i + 2 * LOOKAHEAD], 1);
        if (i + LOOKAHEAD < s->n)
            book_engine_prefetch(e, &cmd[i + LOOKAHEAD], 2);
        book_engine_process(e, &cmd[i]);
        events += o->n_events;
        trades += o->n_trades;
        book_output_clear(o);
    }
    double dt = now_s() - t0, dc = cpu_s() - c0;
    result r = {(double)s->n / dt, (double)s->n / dc, heap_allocations - a0, events, trades};
    return r;
}

static result run_throughput(const stream *s)
{
    book_engine *e = warmed_engine(s);
    result r = time_stream(e, s);
    api->engine_free(e);
    return r;
}

static result run_lookahead(const stream *s)
{
    book_engine *e = warmed_engine(s);
    result r = time_stream_lookahead(e, s);
    api->engine_free(e);
    return r;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Per-command latency in TSC cycles, timer overhead included. */
static void run_latency(const stream *s, double pct_ns[3])
{
    book_engine *e = warmed_engine(s);
    book_output *o = book_engine_output(e);
    const arb_order_cmd *cmd = s->cmd + s->n_warm;
    uint32_t *cyc = malloc(s->n * sizeof *cyc);
    /* Mean cost by command kind, to see where the time goes. */
    double sum[6] = {0};
    uint64_t cnt[6] = {0};
    static const char *what[6] = {"rest", "take", "cancel", "replace", "market", "other"};
    for (size_t i = 0; i < s->n; i++) {
        uint64_t t0 = __rdtsc();
        book_engine_process(e, &cmd[i]);
        uint64_t t1 = __rdtsc();
        int k = cmd[i].action == ARB_CMD_CANCEL    ? 2
                : cmd[i].action == ARB_CMD_REPLACE ? 3
                : cmd[i].type == ARB_ORD_MARKET    ? 4
                : o->n_trades                      ? 1
                : cmd[i].action == ARB_CMD_NEW     ? 0
                                                   : 5;
        sum[k] += (double)(t1 - t0);
        cnt[k]++;
        book_output_clear(o);
        cyc[i] = (uint32_t)(t1 - t0 < UINT32_MAX ? t1 - t0 : UINT32_MAX);
    }
    fprintf(stderr, "mean ns by kind:");
    for (int k = 0; k < 6; k++)
        if (cnt[k])
            fprintf(stderr, " %s %.0f (%.0f%%)", what[k], sum[k] / (double)cnt[k] / tsc_per_ns,
                    100.0 * (double)cnt[k] / (double)s->n);
    fprintf(stderr, "\n");
    qsort(cyc, s->n, sizeof *cyc, cmp_u32);
    const double q[3] = {0.50, 0.99, 0.999};
    for (int k = 0; k < 3; k++)
        pct_ns[k] = cyc[(size_t)(q[k] * (double)(s->n - 1))] / tsc_per_ns;
    free(cyc);
    book_engine_free(e);
}

static double timer_overhead_ns(void)
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 100000; i++) {
        uint64_t t0 = __rdtsc();
        uint64_t t1 = __rdtsc();
        if (t1 - t0 < best)
            best = t1 - t0;
    }
    return (double)best / tsc_per_ns;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static const char *only; /* run only cases whose name contains this */
static size_t timed_override;

/* A case's figures for the same-run ratios: best wall-clock ops/s, and the
 * medians per second of CPU time, plain and with the lookahead (0 for one
 * book). 0 everywhere when the case did not run. */
typedef struct case_figures {
    double best, cpu, ahead_cpu;
} case_figures;

static case_figures bench_case(const char *name, int mix, uint32_t n_books, uint32_t target,
                               size_t n_timed, int runs)
{
    case_figures cf = {0, 0, 0};
    if (only && !strstr(name, only))
        return cf;
    if (timed_override)
        n_timed = timed_override;
    stream s;
    build_stream(&s, mix, n_books, target, n_timed);
    fprintf(stderr, "%s: %zu timed commands after %zu warm-up;", name, s.n, s.n_warm);
    for (int k = 0; k < K_N; k++)
        if (s.counts[k])
            fprintf(stderr, " %s %.1f%%", kind_names[k], 100.0 * (double)s.counts[k] / (double)s.n);
    fprintf(stderr, "; %llu live orders at the end\n", (unsigned long long)s.live_end);
    double ops[16], cpu[16];
    result r = {0};
    uint64_t allocs = 0;
    for (int i = 0; i < runs; i++) {
        r = run_throughput(&s);
        ops[i] = r.ops;
        cpu[i] = r.cpu_ops;
        allocs += r.allocs;
    }
    qsort(ops, (size_t)runs, sizeof ops[0], cmp_double);
    qsort(cpu, (size_t)runs, sizeof cpu[0], cmp_double);
    double ahead[16], ahead_cpu[16];
    if (n_books > 1) {
        for (int i = 0; i < runs; i++) {
            result ra = run_lookahead(&s);
            if (ra.events != r.events || ra.trades != r.trades)
                fail("prefetching changed the output", i);
            ahead[i] = ra.ops;
            ahead_cpu[i] = ra.cpu_ops;
            allocs += ra.allocs;
        }
        qsort(ahead, (size_t)runs, sizeof ahead[0], cmp_double);
        qsort(ahead_cpu, (size_t)runs, sizeof ahead_cpu[0], cmp_double);
        cf.ahead_cpu = ahead_cpu[runs / 2];
    }
    cf.best = ops[runs - 1];
    cf.cpu = cpu[runs / 2];
    double pct[3];
    run_latency(&s, pct);
    printf("bench: %s_ops %.0f ops/s\n", name, ops[runs - 1]);
    printf("bench: %s_ops_median %.0f ops/s\n", name, ops[runs / 2]);
    printf("bench: %s_cpu_ops_median %.0f ops/cpu-s\n", name, cf.cpu);
    if (n_books > 1) {
        printf("bench: %s_lookahead_ops_median %.0f ops/s\n", name, ahead[runs / 2]);
        printf("bench: %s_lookahead_cpu_ops_median %.0f ops/cpu-s\n", name, cf.ahead_cpu);
    }
    printf("bench: %s_p50 %.0f ns\n", name, pct[0]);
    printf("bench: %s_p99 %.0f ns\n", name, pct[1]);
    printf("bench: %s_p999 %.0f ns\n", name, pct[2]);
    printf("bench: %s_allocs %llu count\n", name, (unsigned long long)allocs);
    fprintf(stderr, "%s: %.2f events and %.3f trades per command\n", name,
            (double)r.events / (double)s.n, (double)r.trades / (double)s.n);
    fflush(stdout);
    free(s.cmd);
    return cf;
}

/* ---- A/B: two builds of the book in alternating rounds ---- */

static void load_api(book_api *a, const char *path, const char *name)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "bench_book: A/B: %s (make bench-build builds it)\n", dlerror());
        exit(1);
    }
    a->name = name;
    a->engine_new = (int (*)(const book_config *, book_engine **))dlsym(h, "book_engine_new");
    a->engine_free = (void (*)(book_engine *))dlsym(h, "book_engine_free");
    a->add_instrument =
        (int (*)(book_engine *, const arb_instrument *))dlsym(h, "book_engine_add_instrument");
    a->process = (void (*)(book_engine *, const arb_order_cmd *))dlsym(h, "book_engine_process");
    a->output = (book_output * (*)(book_engine *)) dlsym(h, "book_engine_output");
    if (!a->engine_new || !a->engine_free || !a->add_instrument || !a->process || !a->output) {
        fprintf(stderr, "bench_book: A/B: %s lacks the book API\n", path);
        exit(1);
    }
}

/* One case, base and new in alternating rounds (ABBA: neither always runs
 * first); prints each build's median and new / base. Both builds must give
 * the stream the same number of events and trades. */
static void ab_case(const char *name, const book_api ab[2], int mix, uint32_t n_books,
                    uint32_t target, size_t n_timed, int rounds)
{
    if (only && !strstr(name, only))
        return;
    stream s;
    api = &linked_api;
    build_stream(&s, mix, n_books, target, n_timed);
    double ops[2][16], cpu[2][16];
    result first[2];
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < 2; k++) {
            int w = r & 1 ? 1 - k : k;
            api = &ab[w];
            result res = run_throughput(&s);
            if (r == 0)
                first[w] = res;
            else if (res.events != first[w].events || res.trades != first[w].trades)
                fail("A/B: a build's output changed between rounds", r);
            ops[w][r] = res.ops;
            cpu[w][r] = res.cpu_ops;
        }
    api = &linked_api;
    if (first[0].events != first[1].events || first[0].trades != first[1].trades)
        fail("A/B: the two builds disagree on the stream's events or trades", 0);
    qsort(ops[0], (size_t)rounds, sizeof ops[0][0], cmp_double);
    qsort(ops[1], (size_t)rounds, sizeof ops[1][0], cmp_double);
    qsort(cpu[0], (size_t)rounds, sizeof cpu[0][0], cmp_double);
    qsort(cpu[1], (size_t)rounds, sizeof cpu[1][0], cmp_double);
    double base = ops[0][rounds / 2], cur = ops[1][rounds / 2];
    printf("bench: %s_base_ops_median %.0f ops/s\n", name, base);
    printf("bench: %s_new_ops_median %.0f ops/s\n", name, cur);
    printf("bench: %s_new_vs_base %.2f ratio\n", name, cur / base);
    printf("bench: %s_new_vs_base_cpu %.2f ratio\n", name, cpu[1][rounds / 2] / cpu[0][rounds / 2]);
    fflush(stdout);
    free(s.cmd);
}

/* The base commit's book and the working tree's, built as shared objects
 * beside this binary (mk/matcher.mk). */
static void bench_ab(int rounds)
{
    char dir[4096];
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    if (n <= 0)
        fail("A/B: cannot find this binary's directory", (int)n);
    dir[n] = 0;
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    char path[4200];
    book_api ab[2];
    snprintf(path, sizeof path, "%s/book_base.so", dir);
    load_api(&ab[0], path, "base");
    snprintf(path, sizeof path, "%s/book_new.so", dir);
    load_api(&ab[1], path, "new");
    ab_case("book_ab_mix_b_1instr", ab, 'b', 1, 5000, 4000000, rounds);
    ab_case("book_ab_mix_b_1000instr", ab, 'b', 1000, 100, 2000000, rounds);
    ab_case("book_ab_mix_a_1000instr", ab, 'a', 1000, 100, 2000000, rounds);
}

/* The reference book on the same kind of stream: the baseline. */
static double bench_reference(size_t n_timed)
{
    stream s;
    build_stream(&s, 'b', 1, 5000, n_timed);
    book_config cfg = {.max_open_orders = 1000000};
    ref_engine *r = ref_engine_new(&cfg);
    arb_instrument in;
    instrument(&in, 0);
    ref_engine_add_instrument(r, &in);
    book_output o = {0};
    for (size_t i = 0; i < s.n_warm; i++) {
        ref_engine_process(r, &s.cmd[i], &o);
        book_output_clear(&o);
    }
    double t0 = now_s();
    for (size_t i = 0; i < s.n; i++) {
        ref_engine_process(r, &s.cmd[s.n_warm + i], &o);
        book_output_clear(&o);
    }
    double ops = (double)s.n / (now_s() - t0);
    book_output_free(&o);
    ref_engine_free(r);
    free(s.cmd);
    printf("bench: ref_book_mix_b_1instr_ops %.0f ops/s\n", ops);
    return ops;
}

/* Many books against one book of the same mix, same run: best wall-clock
 * ops/s, CPU-time medians, and the lookahead's CPU-time median. */
static void many_vs_one(const char *name, const case_figures *many, const case_figures *one)
{
    if (!(many->best > 0 && one->best > 0))
        return;
    printf("bench: %s_vs_1instr %.2f ratio\n", name, many->best / one->best);
    printf("bench: %s_vs_1instr_cpu %.2f ratio\n", name, many->cpu / one->cpu);
    printf("bench: %s_lookahead_vs_1instr_cpu %.2f ratio\n", name, many->ahead_cpu / one->cpu);
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "ab")) {
        /* bench_book ab [rounds [case-name-substring]]: only the A/B. */
        int rounds = argc > 2 ? atoi(argv[2]) : 5;
        only = argc > 3 ? argv[3] : NULL;
        bench_ab(rounds >= 1 && rounds <= 16 ? rounds : 5);
        return 0;
    }
    int runs = argc > 1 ? atoi(argv[1]) : 5;
    if (runs < 1 || runs > 16)
        runs = 5;
    only = argc > 2 ? argv[2] : NULL;
    timed_override = argc > 3 ? (size_t)atol(argv[3]) : 0;
    if (getenv("BENCH_BOOK_LOOKAHEAD"))
        LOOKAHEAD = atoi(getenv("BENCH_BOOK_LOOKAHEAD"));
    calibrate_tsc();
    printf("bench: book_timer_overhead %.1f ns\n", timer_overhead_ns());
    case_figures b1 = bench_case("book_mix_b_1instr", 'b', 1, 5000, 4000000, runs);
    case_figures a1 = bench_case("book_mix_a_1instr", 'a', 1, 5000, 4000000, runs);
    case_figures b1000 = bench_case("book_mix_b_1000instr", 'b', 1000, 100, 4000000, runs);
    case_figures a1000 = bench_case("book_mix_a_1000instr", 'a', 1000, 100, 4000000, runs);
    /* Many books against one, same run (issue 20: at least 0.6 for mix b,
     * 0.5 for mix a). */
    many_vs_one("book_mix_b_1000instr", &b1000, &b1);
    many_vs_one("book_mix_a_1000instr", &a1000, &a1);
    /* ~1M live orders: three warm-up commands per live order, not ten. */
    churn_per_live = 3;
    case_figures b10k = bench_case("book_mix_b_10000instr", 'b', 10000, 100, 4000000, runs);
    case_figures a10k = bench_case("book_mix_a_10000instr", 'a', 10000, 100, 4000000, runs);
    churn_per_live = 10;
    many_vs_one("book_mix_b_10000instr", &b10k, &b1);
    many_vs_one("book_mix_a_10000instr", &a10k, &a1);
    /* The baselines only in a full run: a profile of one case skips them. */
    if (b1.best > 0 && !only) {
        double ref = bench_reference(20000);
        printf("bench: book_mix_b_1instr_vs_ref %.1f ratio\n", b1.best / ref);
        bench_ab(5);
    }
    return 0;
}

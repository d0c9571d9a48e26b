/*
 * latency.h -- network latency on the links between participants and venues,
 * applied by the bus under the SDK (plugins never see it).
 *
 * A participant is an instance that publishes order_commands (an agent, the
 * gateway as the stand-in for external clients). Its link to a venue has two
 * directions: up (its order commands to the venue's matcher) and down
 * (order_events, market_data and trade_executed of that venue, to it). Each
 * direction draws its delays from a distribution configured in [latency]:
 *
 *   [latency]
 *   seed = 42                       ; the links' generators start from it
 *   XA = constant 1ms               ; every participant, both directions
 *   XB.up = uniform 1ms 3ms         ; one direction
 *   XB.arb = lognormal 2ms 10ms     ; one participant (median, then p99)
 *   XB.arb.down = quantiles 0:1ms 0.5:2ms 0.99:8ms 1:20ms
 *
 * The most specific key wins (V.I.dir, V.I, V.dir, V). Durations take ns,
 * us, ms or s. A quantile table lists probability:delay points from 0 to 1;
 * a draw interpolates between them.
 *
 * Each link is FIFO, as a TCP connection is: a record is delivered at the
 * later of its send time plus the drawn delay and the previous record's
 * delivery on that link, so a link never reorders. Held records wait in one
 * queue per event loop, ordered by delivery time, ties by the order they
 * were held in; a record held for several participants (a venue's market
 * data) is copied once, its links share it. Under the simulated clock (host sim_time set), the clock's
 * arb_set_time delivers every record due up to the new time first, each at
 * its own time, so time never passes an undelivered record: the run is a
 * discrete-event simulation and a seed gives one trade stream. That needs
 * the participants and the matcher on the clock's loop, as a deterministic
 * sim has anyway. In wall-clock mode a loop timer delivers records when
 * their real delay has passed. A participant paused by a hot reload gets
 * nothing until it resumes; its link and what is queued behind it wait.
 * Latency is configured at start: instances a SIGHUP adds have no links.
 * A venue's record that none of a participant's subscriptions reads (they
 * were made by key, arb_subscribe_keys) is not held for it, but its delay
 * is drawn and the link's FIFO moves on as if it were, so what the
 * participant reads arrives when it would without the keys.
 *
 * Metrics per link and direction (host metrics, labels participant, venue,
 * direction): bus_link_delayed_total (records held; not the ones passed
 * over unread), bus_link_delay_p50_ns and
 * bus_link_delay_p99_ns (of the delays applied, FIFO waits included, to
 * within 1/16 of an octave), and bus_link_dropped_total (held records whose
 * participant went away, or that the bus refused when due).
 */
#ifndef ARBH_LATENCY_H
#define ARBH_LATENCY_H

#include <arb/plugin.h>
#include <arb/wire.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct arbh_host arbh_host;
typedef struct arbh_loop arbh_loop;
typedef struct arbh_instance arbh_instance;
typedef struct arbh_config arbh_config;
typedef struct arbh_lat_links arbh_lat_links;

/* The accounts a participant has sent order commands for, the first member
 * of its links: a bit per account in one aligned window of
 * ARBH_LAT_WINDOW accounts (the first account seen picks it; a population's
 * accounts are a range, and a check is then one cached bit, not a probe
 * into a table of thousands), and the accounts outside it in a table. */
#define ARBH_LAT_WINDOW 65536u
typedef struct arbh_lat_accounts {
    uint64_t window_base;
    uint64_t *window;   /* ARBH_LAT_WINDOW bits, or NULL until the first account */
    uint64_t *accounts; /* open addressing, 0 = empty; account 0 is never stored */
    size_t n_accounts, cap_accounts;
} arbh_lat_accounts;

static inline size_t arbh_lat_account_slot(uint64_t a, size_t cap)
{
    return (size_t)((a * 0x9e3779b97f4a7c15ull) >> 32) & (cap - 1);
}

static inline bool arbh_lat_account_known(const arbh_lat_accounts *l, uint64_t a)
{
    uint64_t w = a - l->window_base;
    if (l->window && w < ARBH_LAT_WINDOW)
        return (l->window[w / 64] >> (w % 64)) & 1;
    if (!l->cap_accounts)
        return false;
    for (size_t i = arbh_lat_account_slot(a, l->cap_accounts);;
         i = (i + 1) & (l->cap_accounts - 1)) {
        if (l->accounts[i] == a)
            return true;
        if (l->accounts[i] == 0)
            return false;
    }
}

/* True when hold_down would let the order event `m` pass by the links
 * `ls` untouched: another participant's (an account `ls` never sent a
 * command for), which most order events are. Checked inline before the
 * call, for every subscription of every order event. */
static inline bool arbh_latency_passes_by(const arbh_lat_links *ls, const arb_msg *m)
{
    return m->len < ARB_WIRE_HDR + 48 ||
           !arbh_lat_account_known((const arbh_lat_accounts *)(const void *)ls,
                                   arb_get_u64((const uint8_t *)m->data + ARB_WIRE_HDR + 40));
}
typedef struct arbh_lat_queue arbh_lat_queue;

/* Reads [latency] and gives every participant its links (inst->lat). No
 * section: nothing changes. ARB_EINVAL with "file:line: ..." in err. */
int arbh_latency_configure(arbh_host *h, arbh_config *cfg, char *err, size_t n);
void arbh_latency_free(arbh_host *h);

/* What the participants a venue's record is held for share: made for
 * each record (blob NULL, venue 0, a number of its own), passed to every
 * hold_down of it. */
typedef struct arbh_lat_hold {
    void *blob;      /* the record's one copy, once the first link took it */
    int venue;       /* its venue's link (the same index in every participant's
                      * links) + 1; 0: not looked up yet; -1: no link, or not a
                      * venue's record */
    uint64_t record; /* the record's number on its loop, never 0 (arbh_loop.lat_records) */
} arbh_lat_hold;

/* Bus hooks. hold_up: a participant publishes an order command; true if the
 * record was taken to be published when its delay has passed. hold_down: a
 * record of a venue is about to be delivered to a subscription of
 * participant `to`, which reads its key or not (`reads`); true if the link
 * took the record, and then none of `to`'s subscriptions gets it now. The
 * link decides once per record and participant (later subscriptions of
 * `to` get the same answer): a record one of them reads is held, and
 * delivered when due to those that read it; one none reads is not held but
 * takes its place on the link all the same (its delay drawn, the FIFO
 * moved on), so what `to` reads arrives as it would without the keys. The
 * caller has checked that an order event is not another participant's
 * (arbh_latency_passes_by). */
bool arbh_latency_hold_up(arbh_instance *from, int topic, uint64_t key, const void *data,
                          size_t len);
bool arbh_latency_hold_down(arbh_loop *loop, arbh_instance *to, bool reads, const arb_msg *m,
                            arbh_lat_hold *share);

/* The simulated clock moves to `ns`: deliver, on this loop, every held
 * record due by then, each at its time. Outside any delivery only. */
void arbh_latency_advance(arbh_loop *loop, int64_t ns);

/* A reload replaced `old` with `nw`: its links and held records follow. */
void arbh_latency_rebind(arbh_instance *old, arbh_instance *nw);
/* Records held for (or from) an instance that goes away are dropped. */
void arbh_latency_forget(arbh_instance *inst);

/* Records held on a loop (tests, shutdown). */
size_t arbh_latency_pending(const arbh_loop *loop);

/* ---- latency_dist.c ---- */

enum { ARBH_LAT_NONE = 0, ARBH_LAT_CONST, ARBH_LAT_UNIFORM, ARBH_LAT_LOGNORMAL, ARBH_LAT_TABLE };

/* splitmix64: the links' generators and their seeding. */
uint64_t arbh_lat_splitmix(uint64_t *x);

/* A delay distribution, parsed. */
typedef struct arbh_lat_dist {
    int kind;
    int64_t a, b;      /* constant: a; uniform: a..b */
    double mu, sigma;  /* lognormal */
    double *inv;       /* lognormal: its inverse CDF at ARBH_LAT_INV + 1 points */
    bool inv_borrowed; /* inv is another distribution's (same median and p99): not freed */
    int nq;
    double qp[16], qv[16];
} arbh_lat_dist;
/* Parses "constant 1ms" and the rest; 0 or -1 with a reason in err. */
int arbh_lat_dist_parse(const char *s, arbh_lat_dist *d, char *err, size_t n);
#define ARBH_LAT_INV 1024 /* 2^10: a draw's top 10 bits pick the step */
void arbh_lat_dist_free(arbh_lat_dist *d);
/* One draw in ns from a generator state. */
int64_t arbh_lat_dist_draw(const arbh_lat_dist *d, uint64_t *rng);

#endif

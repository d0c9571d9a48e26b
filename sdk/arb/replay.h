/*
 * arb/replay.h -- rebuilding a plugin's state from what the transport
 * stored, the same way over Kafka (the split system) and over the journal
 * (the monolith): read every partition of a topic from its first record to
 * its end as it stands now, then take live deliveries, skipping the records
 * the read already covered.
 *
 *   arb_replay r = {0};
 *   arb_replay_read(ctx, ARB_TOPIC_ORDER_EVENTS, timeout, apply_one, self, &r);
 *   ...
 *   on delivery: if (arb_replay_seen(&r, msg)) return;   (taken already)
 *
 * Per partition the transport delivers in offset order, so a live record
 * below the read's end is one the read took; a record at or above it is new.
 * The same order lets a plugin snapshot its state with, per partition, the
 * offset after the last record it applied (as the gateway does with its
 * read models); arb_replay_read_from then starts each partition there, and
 * only what came after the snapshot is read.
 * Only for topics the transport stores: a topic kept in process answers
 * ARB_ENOENT (nothing to rebuild from). Over Kafka the reads run on loop 0
 * (ARB_ESTATE elsewhere). Not here: what a plugin does with the records.
 */
#ifndef ARB_REPLAY_H
#define ARB_REPLAY_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "plugin.h"

typedef struct arb_replay {
    int64_t *end;    /* by partition: records below were taken by the read */
    uint32_t nparts; /* partitions read */
    uint64_t records;
} arb_replay;

/* Reads every partition of `topic` into fn up to its high offset: partition
 * p < nfrom from from[p] (a position a snapshot of the plugin's state
 * covers), every other one from its low offset (all partitions at once
 * where the host can: read_ranges). ARB_OK (r says how far; r->records
 * counts what was read), ARB_ENOENT when the topic is not stored,
 * ARB_EREFUSED before reading anything when the topic has fewer than nfrom
 * partitions or one ends below its from[p] (the log is not the one the
 * position was taken in), or the first error (r then covers the partitions
 * known to be read whole: none if they were read at once). A from[p] below
 * the partition's low offset reads from the low offset. */
static inline int arb_replay_read_from(arb_ctx *c, int topic, const int64_t *from, uint32_t nfrom,
                                       int64_t timeout_ns, arb_read_fn fn, void *user,
                                       arb_replay *r)
{
    const arb_host_api *api = c->api;
    if (api->size < offsetof(arb_host_api, read_range) + sizeof api->read_range ||
        !api->watermarks || !api->read_range)
        return ARB_ENOENT; /* a host (or a test's fake) that stores nothing */
    /* The partitions and where each ends as it stands now. */
    int64_t *lo = NULL;
    uint32_t n = 0;
    int rc;
    for (;;) {
        int64_t l, h;
        rc = arb_watermarks(c, topic, (int)n, timeout_ns, &l, &h);
        if (rc == ARB_ENOENT) {
            rc = n ? ARB_OK : ARB_ENOENT; /* no partition n: all are known */
            break;
        }
        if (rc)
            break;
        int64_t *grown_end = (int64_t *)realloc(r->end, ((size_t)n + 1) * sizeof *grown_end);
        if (grown_end)
            r->end = grown_end;
        int64_t *grown_lo = grown_end ? (int64_t *)realloc(lo, ((size_t)n + 1) * sizeof *lo) : NULL;
        if (!grown_lo) {
            rc = ARB_ENOMEM;
            break;
        }
        lo = grown_lo;
        lo[n] = l;
        r->end[n] = h;
        if (n < nfrom && from[n] > l)
            lo[n] = from[n];
        if (n < nfrom && from[n] > h)
            rc = ARB_EREFUSED;
        n++;
        if (rc)
            break;
    }
    if (rc == ARB_OK && n < nfrom)
        rc = ARB_EREFUSED;
    if (rc == ARB_OK) {
        int done = 0;
        rc = arb_read_ranges(c, topic, (int)n, lo, r->end, timeout_ns, fn, user, &done);
        r->nparts = (uint32_t)done;
        for (int p = 0; p < done; p++)
            r->records += (uint64_t)(r->end[p] - lo[p]);
    }
    free(lo);
    return rc;
}

/* Reads every partition of `topic` from its low to its high offset: the
 * whole of what is stored (arb_replay_read_from with no position). */
static inline int arb_replay_read(arb_ctx *c, int topic, int64_t timeout_ns, arb_read_fn fn,
                                  void *user, arb_replay *r)
{
    return arb_replay_read_from(c, topic, NULL, 0, timeout_ns, fn, user, r);
}

/* Whether a delivered record was already taken by the read. */
static inline int arb_replay_seen(const arb_replay *r, const arb_msg *m)
{
    return m->partition >= 0 && (uint32_t)m->partition < r->nparts &&
           m->offset < r->end[m->partition];
}

static inline void arb_replay_free(arb_replay *r)
{
    free(r->end);
    r->end = NULL;
    r->nparts = 0;
}

#endif /* ARB_REPLAY_H */

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

/* Reads every partition of `topic` from its low to its high offset into fn.
 * ARB_OK (r says how far), ARB_ENOENT when the topic is not stored, or the
 * first error (r then covers the partitions read whole). */
static inline int arb_replay_read(arb_ctx *c, int topic, int64_t timeout_ns, arb_read_fn fn,
                                  void *user, arb_replay *r)
{
    const arb_host_api *api = c->api;
    if (api->size < offsetof(arb_host_api, read_range) + sizeof api->read_range ||
        !api->watermarks || !api->read_range)
        return ARB_ENOENT; /* a host (or a test's fake) that stores nothing */
    int rc;
    for (int32_t p = 0;; p++) {
        int64_t lo, hi;
        rc = arb_watermarks(c, topic, p, timeout_ns, &lo, &hi);
        if (rc == ARB_ENOENT)
            return p ? ARB_OK : ARB_ENOENT; /* no partition p: all were read */
        if (rc)
            return rc;
        int64_t *grown = (int64_t *)realloc(r->end, ((size_t)p + 1) * sizeof *grown);
        if (!grown)
            return ARB_ENOMEM;
        r->end = grown;
        r->end[p] = 0;
        if (hi > lo && (rc = arb_read_range(c, topic, p, lo, hi, timeout_ns, fn, user)))
            return rc;
        r->end[p] = hi;
        r->nparts = (uint32_t)p + 1;
        r->records += (uint64_t)(hi - lo);
    }
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

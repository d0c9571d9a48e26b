/*
 * batcher.h -- rows waiting for the database: a batch filling, full batches
 * queued behind it, and at most one batch in flight; flushed by size or by
 * age (whichever comes first), with the consumer positions each batch
 * covers. It never refuses a row: the recorder bounds what it holds by
 * pausing its delivery (arb_pause) at a high-water mark.
 *
 * Pure bookkeeping on a caller-supplied monotonic clock: no I/O, no libpq,
 * no host. The batch text is COPY text ready to send (copy_rows.h formats
 * it in place). A batch never holds more than batch_rows rows, so after an
 * outage the backlog goes out as many ordinary transactions, not one huge
 * one. Positions: the in-process bus has no offsets, so a topic's position
 * is the recorder's own count of rows accepted from it, continued from the
 * count stored in the database (the base) across restarts. Records that came
 * through Kafka also carry their partition and offset: each batch keeps the
 * last offset it holds per (topic, partition), stored with its rows.
 */
#ifndef REC_BATCHER_H
#define REC_BATCHER_H

#include <stddef.h>
#include <stdint.h>

#include "schema.h"

typedef struct rec_buf {
    char *data;
    size_t len, cap;
} rec_buf;

typedef struct rec_batch {
    rec_buf rows[REC_TOPICS];   /* COPY text per topic */
    uint32_t count[REC_TOPICS]; /* rows per topic */
    uint64_t end[REC_TOPICS];   /* rows accepted since start, up to this batch's last */
    int64_t first_ns;           /* clock when the first row arrived */
    rec_kpos *kpos;             /* Kafka positions covered, one per partition */
    uint32_t nkpos, kpos_cap;
    uint32_t kpos_last;     /* index of the entry last noted (records come in runs) */
    struct rec_batch *next; /* queue link */
} rec_batch;

typedef struct rec_batcher {
    rec_batch *open;                    /* filling; never NULL after init */
    rec_batch *queue_head, *queue_tail; /* full batches, oldest first */
    rec_batch *sealed;                  /* in flight, or NULL */
    rec_batch *spare;                   /* emptied batches kept for reuse */
    int nspare;
    uint32_t batch_rows;            /* a batch closes at this many rows ... */
    int64_t interval_ns;            /* ... or is sent when its first row is this old */
    uint64_t pending;               /* rows held: open + queued + sealed */
    uint64_t accepted[REC_TOPICS];  /* rows accepted since start */
    uint64_t committed[REC_TOPICS]; /* of those, rows the database has committed */
    uint64_t base[REC_TOPICS];      /* stored position when this run started */
    int base_known;                 /* base was read from the database */
} rec_batcher;

/* batch_rows >= 1, interval_ns >= 0. Returns ARB_ENOMEM if the first batch
 * cannot be allocated. */
int rec_batcher_init(rec_batcher *b, uint32_t batch_rows, int64_t interval_ns);
void rec_batcher_free(rec_batcher *b);

/* Room for one row of at most max_len bytes in the topic's open buffer.
 * ARB_OK: *out points at the room and rec_batcher_add must follow.
 * ARB_ENOMEM: allocation failed. */
int rec_batcher_room(rec_batcher *b, enum rec_topic t, size_t max_len, char **out);
/* Accepts the row of `len` bytes just written into the room. */
void rec_batcher_add(rec_batcher *b, enum rec_topic t, size_t len, int64_t now_ns);
/* The row just added came from Kafka at (partition, offset): the open batch
 * now covers that offset. ARB_ENOMEM if the position could not be kept (the
 * row stays; only its position is not stored with this batch). */
int rec_batcher_note_offset(rec_batcher *b, enum rec_topic t, int32_t partition, int64_t offset);

/* Adopts rows saved by a previous instance (hot reload): `len` bytes of
 * COPY text, one row per line, accepted now as if just received. */
int rec_batcher_adopt(rec_batcher *b, enum rec_topic t, const char *text, size_t len,
                      int64_t now_ns);

/* Rows accepted and not yet committed. */
static inline uint64_t rec_batcher_pending(const rec_batcher *b) { return b->pending; }
static inline uint32_t rec_batch_rows(const rec_batch *bt)
{
    return bt->count[REC_TOPIC_TRADES] + bt->count[REC_TOPIC_ORDER_EVENTS];
}
/* Clock of the oldest uncommitted row, or -1 if none. */
int64_t rec_batcher_oldest_ns(const rec_batcher *b);

/* True when nothing is in flight and a batch is ready: a full one queued,
 * or the open one old enough. force: any held row is enough (at stop). */
int rec_batcher_flush_due(const rec_batcher *b, int64_t now_ns, int force);

/* Puts the next batch in flight (only when flush_due said so). */
const rec_batch *rec_batcher_seal(rec_batcher *b);
/* The sealed batch is committed: its rows leave memory, positions advance. */
void rec_batcher_done(rec_batcher *b);

/* The position to store with the sealed batch: base + rows it covers. */
uint64_t rec_batcher_position(const rec_batcher *b, enum rec_topic t);
/* Sets the stored positions read at the first connect; later reads of the
 * same rows are ignored so a restored database cannot move us backwards. */
void rec_batcher_set_base(rec_batcher *b, const uint64_t base[REC_TOPICS]);

/* Calls fn for every held batch, oldest first (sealed, queued, open). */
void rec_batcher_each(const rec_batcher *b, void (*fn)(void *user, const rec_batch *bt),
                      void *user);

#endif

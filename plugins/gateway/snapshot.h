/*
 * snapshot.h -- the gateway's read models as bytes, and back: what a
 * snapshot holds, so that a restart reads it and replays only the stored
 * order_events and trade_executed after it (recover.c) instead of all.
 *
 * A snapshot holds what a rebuild from the events would hold at the same
 * position, no more: the orders the matcher answered (not a command still
 * waiting, which only the process that sent it knows; without client ids,
 * which events do not carry; created at the first event's time), every
 * account's positions, the rings of recent trades. So snapshot + the
 * records after it = a rebuild from all of them. Books are not in it (the
 * gateway asks the matcher for them at start).
 *
 * Format 1, little-endian; v is a LEB128 varint, z a zigzagged one; an
 * order's id and creation time are differences from the order before it,
 * its other times from its creation:
 *   "GWSN" | u32 format | u64 run | u64 id space | u64 instrument digest |
 *   u32 instruments | u32 trade_history | u64 order_history |
 *   marks of order_events, then of trade_executed (v partitions, v offset each) |
 *   per instrument: v trades, z last price, the trades oldest first |
 *   u64 accounts, each: v id, u8 has positions, [per instrument: z position,
 *   cash and fees as 16-byte integers, z bought, z sold, v trades], v open
 *   orders, the open orders oldest first | v finished orders, oldest first.
 * On the bus a snapshot is cut into chunks (a record is at most a quarter of
 * [bus] queue_bytes, and Kafka's message.max.bytes is 1 MB by default):
 *   "GWSC" | u32 format | u64 id space | u64 snapshot id | u32 index |
 *   u32 count | u64 total bytes | the bytes.
 * Decoders check everything: a damaged snapshot is refused whole.
 *
 * Pure code: no I/O, no host. Not here: where snapshots are kept and when
 * they are taken (recover.c).
 */
#ifndef GW_SNAPSHOT_H
#define GW_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "read_model.h"

#define GW_SNAP_FORMAT 1u
#define GW_SNAP_CHUNK_HDR 40u
#define GW_SNAP_CHUNK_DATA (256u << 10)
/* A snapshot larger than this is damage, not a snapshot. */
#define GW_SNAP_MAX ((uint64_t)1 << 32)

/* Whose snapshot it is and the model's shape: a snapshot of another gateway,
 * run or configuration is refused. */
typedef struct gw_snapshot_id {
    uint64_t run;         /* arb_run_info.id, 0 when the host has none */
    uint64_t id_space;    /* the gateway's order id space */
    uint64_t instruments; /* gw_instruments_digest() */
    uint32_t trade_history;
    uint64_t order_history;
} gw_snapshot_id;

/* The instrument table's keys in order: the model indexes by position. */
uint64_t gw_instruments_digest(const arb_instrument_table *t);

/* Where a model stands in a stored topic: by partition, the offset of the
 * first record it does not hold. */
typedef struct gw_marks {
    int64_t *next;
    uint32_t nparts;
} gw_marks;

/* next[p] = max(next[p], offset + 1), growing to the partition. -1 on no
 * memory (the marks are then unknown: take no snapshot). */
int gw_marks_take(gw_marks *m, int32_t partition, int64_t offset);
int gw_marks_copy(gw_marks *dst, const int64_t *next, uint32_t nparts);
/* The sum of the offsets: how far the marks are, as one number. */
int64_t gw_marks_sum(const gw_marks *m);
void gw_marks_free(gw_marks *m);

/* The snapshot's bytes (malloc'd, the caller frees). ARB_OK or
 * ARB_ENOMEM. */
int gw_snapshot_encode(const gw_read_model *rm, const gw_snapshot_id *id, const gw_marks *events,
                       const gw_marks *trades, uint8_t **out, size_t *len);

/* A new model for table t from a snapshot that must match `expect`, and
 * its marks (the caller frees them). ARB_OK; ARB_EREFUSED for a snapshot
 * of another gateway, run or configuration; ARB_EBADMSG for bytes that are
 * not a whole snapshot of this format; ARB_ENOMEM. On failure nothing is
 * allocated and `why` says what was wrong. */
int gw_snapshot_decode(const void *bytes, size_t len, const gw_snapshot_id *expect,
                       const arb_instrument_table *t, gw_read_model **out, gw_marks *events,
                       gw_marks *trades, char *why, size_t why_cap);

/* ---- chunks ---- */

typedef struct gw_snap_chunk {
    uint64_t id_space, snap, total;
    uint32_t index, count;
    const uint8_t *data; /* into the record */
    size_t len;
} gw_snap_chunk;

/* How many chunks `total` bytes take. */
static inline uint32_t gw_snap_chunks(size_t total)
{
    return total ? (uint32_t)((total + GW_SNAP_CHUNK_DATA - 1) / GW_SNAP_CHUNK_DATA) : 1;
}
/* Chunk `index` of a snapshot of `total` bytes into out (room for
 * GW_SNAP_CHUNK_HDR + GW_SNAP_CHUNK_DATA); returns its length. */
size_t gw_snap_chunk_put(uint8_t *out, uint64_t id_space, uint64_t snap, const uint8_t *bytes,
                         size_t total, uint32_t index);
/* A record as a chunk: ARB_OK, or ARB_EBADMSG when it is not one (a chunk
 * whose fields disagree with each other is not one either). */
int gw_snap_chunk_get(const void *rec, size_t len, gw_snap_chunk *out);

/* A snapshot put together from its chunks, in order. */
typedef struct gw_snap_whole {
    uint8_t *bytes;
    size_t len, cap;
    uint64_t snap, total, id_space;
    uint32_t next, count; /* next index expected, of count */
} gw_snap_whole;

/* Adds the next chunk: ARB_OK, ARB_EBADMSG when it is not the next chunk
 * of the same snapshot, ARB_ENOMEM. Done when next == count. */
int gw_snap_whole_add(gw_snap_whole *w, const gw_snap_chunk *c);
void gw_snap_whole_free(gw_snap_whole *w);

#endif

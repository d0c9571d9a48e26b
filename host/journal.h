/*
 * journal.h -- the monolith's journal: the bus's second transport, an
 * append-only log of chosen topics in local files, read back the way the
 * Kafka transport reads Kafka (host/kafka.h), so plugins recover through the
 * same SDK calls in both shapes (arb_seek, arb_on_partitions, arb_read_last,
 * arb_watermarks, arb_read_range, arb_partition_of).
 *
 * Every journaled topic is one partition (0) with offsets from 0 up. A
 * publish appends the record to the topic's log and returns; a writer
 * thread writes what was appended (write(2), in batches) and, per the fsync
 * policy, fdatasync()s it; only then does loop 0 deliver the record to the
 * local subscribers, in offset order, through the host's inject path. So
 * nothing a subscriber ever saw (and nothing a client was told about) is
 * missing from the journal after a crash of the process.
 *
 * On disk, under `dir`:
 *   run                    the run (host/run.c reads and writes it)
 *   offsets                where delivery stands per topic: every record
 *                          below was handled by every local subscriber
 *   TOPIC/BASE.log         segments; BASE is the first offset, 20 digits
 * A record: u32 crc32c of the rest | u32 data length | i64 offset | u64 key
 * | data. At open every segment is checked record by record; the first
 * record that is torn (short) or fails its checksum ends the topic's log:
 * the file is cut there (and later segments removed), with a log line that
 * says how many bytes went.
 *
 * Config ([bus] keys):
 *   journal                 directory (e.g. var/journal); empty: no journal
 *   journal_topics          topics journaled (default: order_commands,
 *                           order_events, trade_executed, market_data,
 *                           matcher_snapshots)
 *   journal_fsync           group (default): records are delivered once
 *                           written; fdatasync every journal_fsync_ms, so a
 *                           machine crash may lose that window, a process
 *                           crash nothing | always: delivered only after the
 *                           fdatasync of their batch | off: never fdatasync
 *   journal_fsync_ms        the group interval (default 20)
 *   journal_segment_bytes   roll to a new segment past this (default 64M)
 *   journal_buffer_bytes    appended and not yet written, per topic, before
 *                           a publish is refused with ARB_EFULL (default 64M)
 *
 *   journal_latest_only     topics of which only the newest record matters
 *                           (default: matcher_snapshots): once a segment
 *                           rolls, the older ones are removed
 *
 *   journal_trim            topics whose old segments go once every reader
 *                           of their history has said a snapshot covers
 *                           them (default: order_commands; see
 *                           arbh_journal_trim)
 *
 * Retention of the other topics is the run's length: a new run starts an
 * empty journal.
 *
 * Threading: produce, want, seek, read_last, watermarks, read_range
 * and partition_of may be called from any thread; start, stop and the
 * delivery run on loop 0's thread.
 */
#ifndef ARBH_JOURNAL_H
#define ARBH_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "kafka.h"

struct event_base;
typedef struct arbh_journal arbh_journal;

/* Reads the keys above (no I/O: `arb-host --check` stops here). *out stays
 * NULL when no journal is configured. ARB_OK, or ARB_EINVAL with
 * "file:line: [bus] key: ..." in err. */
int arbh_journal_new(arbh_config *cfg, arbh_kafka_log_fn log, void *log_user, arbh_journal **out,
                     char *err, size_t n);
/* Opens (or creates) the directory, checks every topic's log and cuts it at
 * its first bad record, and starts the writer. With `fresh`, everything in
 * the directory is removed first (a new run). */
int arbh_journal_open(arbh_journal *j, bool fresh, char *err, size_t n);
/* The directory (for the run file). */
const char *arbh_journal_dir(const arbh_journal *j);

int arbh_journal_routes(const arbh_journal *j, const char *topic);
int arbh_journal_produce(arbh_journal *j, const char *topic, uint64_t key, const void *data,
                         size_t len);
int arbh_journal_want(arbh_journal *j, const char *topic);
void arbh_journal_set_partition_cb(arbh_journal *j, arbh_kafka_partition_fn fn, void *user);
int arbh_journal_start(arbh_journal *j, struct event_base *base, arbh_kafka_deliver_fn fn,
                       void *user);
int arbh_journal_seek(arbh_journal *j, const char *topic, int partition, int64_t offset);
int arbh_journal_read_last(arbh_journal *j, const char *topic, int partition, void **bytes,
                           size_t *len, int64_t *offset);
int arbh_journal_watermarks(arbh_journal *j, const char *topic, int partition, int64_t *lo,
                            int64_t *hi);
int arbh_journal_read_range(arbh_journal *j, const char *topic, int partition, int64_t from,
                            int64_t to, arbh_kafka_record_fn fn, void *user);
/* arbh_kafka_read_ranges over the journal: its one partition (n >= 1). */
int arbh_journal_read_ranges(arbh_journal *j, const char *topic, int n, const int64_t *from,
                             const int64_t *to, arbh_kafka_part_record_fn fn, void *user);
int arbh_journal_partition_of(arbh_journal *j, const char *topic, int32_t *partition);
/* `who` (an instance) will never read records of `topic` below `offset`
 * again: what it published before this call (its snapshot) covers them.
 * For a topic in journal_trim, loop 0 then removes the segments that lie
 * wholly below the lowest mark of every trimmer and below the stored
 * delivery position, once everything appended before the call is on disk
 * (synced, or written with journal_fsync = off), so that a crash never finds
 * the records gone and what covers them missing. A topic not in
 * journal_trim: ARB_OK, nothing removed. Any thread. */
int arbh_journal_trim(arbh_journal *j, const char *topic, int partition, const char *who,
                      int64_t offset);
/* Stop delivering and store the delivery positions. */
void arbh_journal_stop_consuming(arbh_journal *j);
/* stop_consuming, then write and sync everything appended; produce refuses
 * afterwards. */
void arbh_journal_stop(arbh_journal *j);
void arbh_journal_free(arbh_journal *j);

typedef struct arbh_journal_stats {
    uint64_t appended, appended_bytes, refused; /* produce calls */
    uint64_t written_bytes, syncs, delivered, done, redelivered;
    uint64_t segments_removed;
    int64_t sync_ns_max; /* the longest fdatasync so far */
    int healthy;
    char detail[256];
} arbh_journal_stats;
void arbh_journal_get_stats(arbh_journal *j, arbh_journal_stats *out);

/* CRC-32C (Castagnoli) of a buffer, continuing from `crc` (0 to start). */
uint32_t arbh_crc32c(uint32_t crc, const void *data, size_t len);

#endif

/*
 * kafka.h -- the Kafka transport of the bus (librdkafka), and the entry of
 * arbctl's Kafka commands.
 *
 * The transport moves the bus's wire records through Kafka unchanged: the
 * record is the Kafka value, the 64-bit bus key is the Kafka key (8 bytes,
 * little-endian), the bus topic name is the Kafka topic (after an optional
 * prefix). One idempotent producer for everything the host publishes, one
 * consumer in the host's consumer group for everything it subscribes to.
 * Consumed records are handed to the host on its loop 0, in partition order;
 * an offset is committed only once the host has called `done` for that record
 * and every record before it in the partition, and the producer has delivered
 * everything published before those `done`s (so a consume -> publish service
 * never commits input whose output could still be lost).
 *
 * Not here: which topics a plugin subscribes to or how records fan out to
 * plugins (bus.c, host.c); the in-process transport; topic administration
 * beyond the optional create_topics at start.
 *
 * Config read ([bus] keys; every [kafka] key goes to both librdkafka clients,
 * [kafka.producer] / [kafka.consumer] keys only to one):
 *   brokers          bootstrap list, required (e.g. ${ARB_BROKERS})
 *   kafka_topics     bus topics that go through Kafka (default: the seven
 *                    well-known topics; "none" or empty: none)
 *   group            consumer group id (default "arb-" + host id)
 *   consume          group (default): partitions come from the group's
 *                    rebalances; all: every partition of each subscribed
 *                    topic is assigned here, with no group membership (no
 *                    rebalance, no exclusion; offsets still committed under
 *                    `group`, which no member may join)
 *   topic_prefix     prepended to Kafka topic names (default none)
 *   partitions       partitions per topic for create_topics (default 4)
 *   topic_partitions per-topic overrides, e.g. order_commands:8,market_data:2
 *   replication      replication factor for create_topics (default -1: broker's)
 *   create_topics    true: create missing topics at start (default false)
 *   commit_interval_ms  how often done offsets are committed (default 100)
 *   max_inflight     delivered-but-not-done records per partition before the
 *                    partition is paused (default 8192)
 *   revoke_timeout_ms   how long a revoke waits for outstanding dones (10000)
 *   flush_timeout_ms    how long stop waits for the producer (default 5000)
 *
 * Threading: arbh_kafka_produce, arbh_kafka_want and `done` may be called
 * from any thread; everything else runs on the thread of the event base
 * given to arbh_kafka_start (the host's loop 0), including arbh_kafka_seek,
 * which may also be called from inside the deliver callback.
 */
#ifndef ARBH_KAFKA_H
#define ARBH_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct event_base;
typedef struct arbh_kafka arbh_kafka;

/* Reads the keys above and creates an idempotent producer and a consumer
 * (nothing is subscribed until arbh_kafka_start). Returns ARB_OK, or
 * ARB_EINVAL with "file:line: [section] key: what is wrong" in err. */
int arbh_kafka_new(arbh_config *cfg, const char *host_id, arbh_kafka **out, char *err, size_t n);

/* Where the transport's messages (and librdkafka's) go; default: stderr.
 * level is an arb_log_level. fn may be called from librdkafka's threads. */
typedef void (*arbh_kafka_log_fn)(void *user, int level, const char *msg);
void arbh_kafka_set_log(arbh_kafka *k, arbh_kafka_log_fn fn, void *user);

/* Called once, on loop 0, when the transport cannot go on and the host
 * should exit (why: the message, already logged): a group-less host ([bus]
 * consume = all) whose group has members (the host exits with
 * ARBH_EXIT_CONFLICT). Without one, the transport only reports itself
 * failed. */
typedef void (*arbh_kafka_stop_fn)(void *user, const char *why);
void arbh_kafka_set_stop(arbh_kafka *k, arbh_kafka_stop_fn fn, void *user);

/* The topic where the hosts of a system agree on their run (host/run.c):
 * one partition, routed in every Kafka host, never delivered to plugins. */
#define ARBH_RUNS_TOPIC "arb_runs"

/* Creates the topics now if create_topics is set (once; start does it
 * otherwise), so the run can be agreed before any instance starts. */
int arbh_kafka_prepare(arbh_kafka *k);
/* Waits up to timeout_ms for everything produced to be delivered. */
int arbh_kafka_flush(arbh_kafka *k, int timeout_ms);

/* 1 if the bus topic goes through Kafka, else 0. */
int arbh_kafka_routes(const arbh_kafka *k, const char *topic);

/* Produce one record (the bytes are copied). Returns ARB_OK, ARB_EFULL if
 * librdkafka's queue is full (nothing was enqueued), ARB_EINVAL for a topic
 * that is not routed, ARB_ESTATE after stop, ARB_ERROR on a fatal producer
 * error. Any thread. */
int arbh_kafka_produce(arbh_kafka *k, const char *topic, uint64_t key, const void *data,
                       size_t len);

/* Consume this routed topic (before or after start; any thread). */
int arbh_kafka_want(arbh_kafka *k, const char *topic);

/* A consumed record. `data` lives for the duration of the call. Return ARB_OK
 * when the host took the record: then `done(token)` must be called exactly
 * once, from any thread, once every local subscriber has handled it (before
 * arbh_kafka_free). Return ARB_EFULL when the host cannot take it now: `done`
 * is not called, and the same record (then the ones after it, in order) is
 * offered again a little later. */
typedef int (*arbh_kafka_deliver_fn)(void *user, const char *topic, int32_t partition,
                                     int64_t offset, uint64_t key, const void *data, size_t len,
                                     void (*done)(void *token), void *token);

/* Subscribes to every wanted topic and starts polling from `base` (events on
 * librdkafka's queue wake-up pipe, plus a commit timer). */
int arbh_kafka_start(arbh_kafka *k, struct event_base *base, arbh_kafka_deliver_fn fn, void *user);

/* Told, on the loop, when a partition of a bus topic is assigned (before any
 * of its records is delivered: a seek made in the call decides where delivery
 * starts) or released (after its delivered records are done, before its
 * offset is committed). */
typedef void (*arbh_kafka_partition_fn)(void *user, const char *topic, int partition, int assigned);
void arbh_kafka_set_partition_cb(arbh_kafka *k, arbh_kafka_partition_fn fn, void *user);

/* Reads the last record of topic/partition with a separate, group-less
 * consumer, blocking up to timeout_ns. *bytes is malloc'd. ARB_ENOENT if the
 * partition is empty, ARB_ERROR on a timeout or a broker error. Any thread. */
int arbh_kafka_read_last(arbh_kafka *k, const char *topic, int partition, int64_t timeout_ns,
                         void **bytes, size_t *len, int64_t *offset);

/* The same reader: a partition's low and high watermarks (ARB_ENOENT: no such
 * partition), and its records [from, to) in order to fn (to < 0: up to the
 * high watermark when called; from below the low watermark starts there).
 * timeout_ns bounds the wait for each record, not the whole read. fn's
 * non-zero return stops the read and is returned. */
typedef int (*arbh_kafka_record_fn)(void *user, const void *bytes, size_t len, uint64_t key,
                                    int64_t offset);
int arbh_kafka_watermarks(arbh_kafka *k, const char *topic, int partition, int64_t timeout_ns,
                          int64_t *lo, int64_t *hi);
int arbh_kafka_read_range(arbh_kafka *k, const char *topic, int partition, int64_t from, int64_t to,
                          int64_t timeout_ns, arbh_kafka_record_fn fn, void *user);
/* Partitions 0..n-1's records [from[p], to[p]) (to[p] < 0: the high
 * watermark when called) at once, each partition in order, partitions
 * interleaved: the broker serves them in the same fetches. */
typedef int (*arbh_kafka_part_record_fn)(void *user, const void *bytes, size_t len, uint64_t key,
                                         int partition, int64_t offset);
int arbh_kafka_read_ranges(arbh_kafka *k, const char *topic, int n, const int64_t *from,
                           const int64_t *to, int64_t timeout_ns, arbh_kafka_part_record_fn fn,
                           void *user);
/* The partition the host's producer puts `key` in (murmur2 over the topic's
 * partition count in the cluster's metadata). */
int arbh_kafka_partition_of(arbh_kafka *k, const char *topic, uint64_t key, int64_t timeout_ns,
                            int32_t *partition);

/* Seek for a consumer that keeps its own positions (the recorder): the next
 * record delivered from topic/partition is the one at `offset`. Applied at
 * once if the partition is assigned here (records delivered and not done
 * from it are forgotten), else when it is next assigned. */
int arbh_kafka_seek(arbh_kafka *k, const char *topic, int partition, int64_t offset);

/* Stop delivering, flush the producer (bounded), commit what is done, leave
 * the group. Call before stopping the plugins, so no record reaches a
 * stopping plugin and none is committed as handled by a plugin that was
 * already gone. The producer keeps working. */
void arbh_kafka_stop_consuming(arbh_kafka *k);
/* stop_consuming if not yet done, then flush the producer (bounded) and
 * refuse further produce calls. `done` may still be called until free. */
void arbh_kafka_stop(arbh_kafka *k);
void arbh_kafka_free(arbh_kafka *k);

/* Figures for /metrics and /healthz. Counters only grow. */
typedef struct arbh_kafka_stats {
    uint64_t produced;       /* accepted by arbh_kafka_produce */
    uint64_t produce_full;   /* refused with ARB_EFULL */
    uint64_t produce_failed; /* delivery failed after librdkafka's retries */
    uint64_t delivered;      /* records handed to the host */
    uint64_t done;           /* done() calls */
    uint64_t redelivered;    /* offered again after ARB_EFULL or a full window */
    uint64_t pauses;         /* partitions paused because records piled up */
    uint64_t commits;        /* offset commits that succeeded */
    uint64_t commit_failed;
    uint64_t rebalances; /* assignments received */
    int assigned;        /* partitions assigned now */
    int healthy;         /* 0: fatal producer error or consumer gone */
    char detail[256];    /* why not healthy, or "" */
    /* Readiness, from what the transport observes (host/admin.c, /readyz):
     * starting: subscribed, no assignment received yet; else each condition
     * below adds a line to `reasons` (at most a few, "; "-separated):
     * every broker unreachable since the last success, no partition
     * assigned, a partition not advancing for STALL_S while its topic
     * holds records beyond it, the producer's queue not draining for
     * STALL_S. */
    int starting;
    int degraded;
    char reasons[512];
} arbh_kafka_stats;
void arbh_kafka_get_stats(arbh_kafka *k, arbh_kafka_stats *out);

/* arbctl's Kafka commands (host/arbctl_kafka.c): argv[0] is "tail" or
 * "decode". Returns the exit status. */
int arbctl_kafka_main(int argc, char **argv);

#endif

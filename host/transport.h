/*
 * transport.h -- the bus's external transport, whichever it is: Kafka
 * (host/kafka.h, the split system) or the journal (host/journal.h, the
 * monolith). Both move the same wire records, number them per partition and
 * hand them back to the host on loop 0 through arbh_bus_inject(), so the
 * host and the plugins' recovery code see one model: topics with
 * partitions and offsets, seeks, partition assignments, and reads of what is
 * stored. At most one of the two is set in a host.
 *
 * Not here: either transport's own workings.
 */
#ifndef ARBH_TRANSPORT_H
#define ARBH_TRANSPORT_H

#include "host.h"
#include "journal.h"
#include "kafka.h"

static inline bool arbh_xport_on(const arbh_host *h) { return h->kafka || h->journal; }

static inline const char *arbh_xport_name(const arbh_host *h)
{
    return h->kafka ? "kafka" : h->journal ? "journal" : "inproc";
}

static inline int arbh_xport_routes(const arbh_host *h, const char *topic)
{
    return h->kafka     ? arbh_kafka_routes(h->kafka, topic)
           : h->journal ? arbh_journal_routes(h->journal, topic)
                        : 0;
}

static inline int arbh_xport_produce(arbh_host *h, const char *topic, uint64_t key,
                                     const void *data, size_t len)
{
    return h->kafka ? arbh_kafka_produce(h->kafka, topic, key, data, len)
                    : arbh_journal_produce(h->journal, topic, key, data, len);
}

static inline int arbh_xport_want(arbh_host *h, const char *topic)
{
    return h->kafka ? arbh_kafka_want(h->kafka, topic) : arbh_journal_want(h->journal, topic);
}

static inline int arbh_xport_seek(arbh_host *h, const char *topic, int partition, int64_t offset)
{
    return h->kafka ? arbh_kafka_seek(h->kafka, topic, partition, offset)
                    : arbh_journal_seek(h->journal, topic, partition, offset);
}

static inline int arbh_xport_read_last(arbh_host *h, const char *topic, int partition,
                                       int64_t timeout_ns, void **bytes, size_t *len,
                                       int64_t *offset)
{
    return h->kafka
               ? arbh_kafka_read_last(h->kafka, topic, partition, timeout_ns, bytes, len, offset)
               : arbh_journal_read_last(h->journal, topic, partition, bytes, len, offset);
}

static inline int arbh_xport_watermarks(arbh_host *h, const char *topic, int partition,
                                        int64_t timeout_ns, int64_t *lo, int64_t *hi)
{
    return h->kafka ? arbh_kafka_watermarks(h->kafka, topic, partition, timeout_ns, lo, hi)
                    : arbh_journal_watermarks(h->journal, topic, partition, lo, hi);
}

static inline int arbh_xport_read_range(arbh_host *h, const char *topic, int partition,
                                        int64_t from, int64_t to, int64_t timeout_ns,
                                        arbh_kafka_record_fn fn, void *user)
{
    return h->kafka
               ? arbh_kafka_read_range(h->kafka, topic, partition, from, to, timeout_ns, fn, user)
               : arbh_journal_read_range(h->journal, topic, partition, from, to, fn, user);
}

static inline int arbh_xport_read_ranges(arbh_host *h, const char *topic, int n,
                                         const int64_t *from, const int64_t *to, int64_t timeout_ns,
                                         arbh_kafka_part_record_fn fn, void *user)
{
    return h->kafka ? arbh_kafka_read_ranges(h->kafka, topic, n, from, to, timeout_ns, fn, user)
                    : arbh_journal_read_ranges(h->journal, topic, n, from, to, fn, user);
}

static inline int arbh_xport_partition_of(arbh_host *h, const char *topic, uint64_t key,
                                          int64_t timeout_ns, int32_t *partition)
{
    return h->kafka ? arbh_kafka_partition_of(h->kafka, topic, key, timeout_ns, partition)
                    : arbh_journal_partition_of(h->journal, topic, partition);
}

/* Kafka keeps what the cluster's retention says: a trim changes nothing
 * there (see arb_trim). */
static inline int arbh_xport_trim(arbh_host *h, const char *topic, int partition, const char *who,
                                  int64_t offset)
{
    return h->kafka ? ARB_OK : arbh_journal_trim(h->journal, topic, partition, who, offset);
}

/* The journal runs its partition callbacks and seeks on any loop (its
 * reads are files); Kafka's consumer lives on loop 0. */
static inline bool arbh_xport_any_loop(const arbh_host *h) { return h->journal != NULL; }

#endif

/*
 * kafka.c -- the bus's Kafka transport: one idempotent producer, one group
 * consumer, driven from the host's loop 0 (see kafka.h for the contract).
 *
 * Consumed records and their commits. Each assigned partition keeps a window
 * of the records handed to the host and not yet committed: one slot per
 * record holding (sequence << 1 | done). `done` reaches its slot through a
 * small receipt {partition, sequence}, so a late `done` for a record the
 * window has since forgotten (revoked, sought away) finds a different
 * sequence there and changes nothing. The commit point of a partition is the
 * offset of its oldest record not done. When the window is full or the host
 * answers ARB_EFULL, the record and those fetched after it wait in the
 * partition's backlog and are offered again (2 ms after a refusal, as soon as
 * records are done for a full window), so nothing is skipped and partition
 * order holds; a long backlog pauses the partition.
 *
 * Commits and the producer. A candidate commit is taken every
 * commit_interval_ms together with the number of records produced so far; it
 * is sent only once the producer has finished (delivered or failed) every
 * one of those, so input is never committed ahead of the output it caused.
 * Finished produce sequences are tracked in a bitmap wider than librdkafka's
 * queue can ever hold.
 *
 * Rebalance (eager, or cooperative if configured): on revoke, the revoked
 * partitions are paused and nothing more from them is delivered; once their
 * outstanding records are done (or revoke_timeout_ms passes), the producer is
 * flushed, their done offsets are committed synchronously, and only then are
 * they released. On assign, windows start empty at the committed offset (or
 * at a seek the host asked for).
 *
 * Group-less ([bus] consume = all): for a host whose plugins read every
 * partition (the gateway's read models) or that owns every partition alone
 * (one matcher), the consumer never joins its group; every partition of
 * each wanted topic is assigned at once, at the group's committed offset (or
 * a seek), and commits go on under [bus] group as before. A restart then
 * waits for no rebalance: with a group, a member killed with SIGKILL holds
 * its partitions until its session times out. The host must be its group's
 * only consumer: a commit refused because the group has members stops it
 * (on_commit).
 *
 * Not here: subscriber fan-out (bus.c), config semantics beyond the keys this
 * file reads, the admin of a real cluster.
 */
#include "kafka.h"

#include <arb/plugin.h>
#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KAFKA_MAX_TOPICS 64
/* How long a partition waits before offering again a record the host
 * refused with ARB_EFULL. */
#define EFULL_RETRY_NS (2 * 1000000LL)
/* A partition whose records wait keeps what was already fetched; past this
 * many it is paused (librdkafka then drops what it prefetched and fetches it
 * again on resume, which costs up to fetch.wait.max.ms). */
#define BACKLOG_PAUSE 1024
/* A consumer that stays behind its topic, or a producer whose queue stays
 * undelivered, this long makes the host degraded (arbh_kafka_get_stats). */
#define STALL_NS (5 * 1000000000LL)
/* A consumer whose newest record was made this long ago while more wait
 * is behind (degraded): it advances, but not fast enough to catch up. */
#define BEHIND_MS (10 * 1000LL)
/* Records handed to the host per wake-up before other events get a turn. */
#define POLL_BUDGET 2048

static const char *const well_known_topics[] = {
    "order_commands", "order_events",  "trade_executed",   "market_data",
    "system_ticks",   "market_events", "service_registry", NULL,
};

typedef struct route {
    char bus[64];    /* the bus topic name */
    char kname[256]; /* the Kafka topic name (prefix + bus) */
    rd_kafka_topic_t *rkt;
    int partitions; /* for create_topics */
    bool wanted;
    bool taken; /* consume = all: its partitions are assigned */
} route;

typedef struct part part;

typedef struct receipt {
    part *pt;
    uint64_t seq;
} receipt;

struct part {
    arbh_kafka *k;
    route *rt;
    int32_t partition;
    bool assigned;
    bool revoking;
    bool paused;      /* by us: a full window or a refused record */
    int64_t retry_ns; /* after ARB_EFULL: offer again not before this */
    /* Records fetched but not yet taken by the host, oldest first: while
     * any wait here the partition is paused and newer ones queue behind. */
    rd_kafka_message_t **backlog;
    size_t bl_head, bl_len, bl_cap;
    int64_t last_seen;   /* offset of the newest record fetched; -1: none */
    uint64_t head, tail; /* sequences: oldest outstanding, next to hand out */
    uint64_t mask;
    _Atomic uint64_t *slots; /* (seq << 1) | done */
    int64_t *offsets;
    int64_t next_offset; /* after the last record handed out; -1: unknown */
    uint64_t epoch;      /* bumped whenever the window is forgotten */
    int64_t committed;   /* last commit sent; -1: none */
    int64_t seen_offset; /* readiness: next_offset when last looked at */
    int64_t made_ms;     /* readiness: the newest delivered record's timestamp */
    int64_t seen_ns;     /* ... and since when it has stayed there */
    part *next;
};

typedef struct pending_seek {
    route *rt;
    int32_t partition;
    int64_t offset;
} pending_seek;

struct arbh_kafka {
    rd_kafka_t *producer;
    rd_kafka_t *consumer;
    rd_kafka_queue_t *cq; /* the consumer's queue (main queue forwarded) */
    rd_kafka_queue_t *pq; /* the producer's main queue (delivery reports) */

    route routes[KAFKA_MAX_TOPICS];
    int nroutes;
    part *parts;

    pending_seek *seeks;
    size_t nseeks;

    char group[256];
    int replication;
    bool create_topics, topics_created;
    int64_t commit_interval_ms;
    uint64_t window;
    int64_t revoke_timeout_ms;
    int flush_timeout_ms;

    arbh_kafka_log_fn log_fn;
    void *log_user;

    struct event_base *base;
    arbh_kafka_deliver_fn deliver;
    void *deliver_user;
    arbh_kafka_partition_fn part_fn;
    void *part_user;

    /* arbh_kafka_read_last's group-less consumer, made on first use. */
    pthread_mutex_t reader_mu;
    rd_kafka_conf_t *reader_conf;
    rd_kafka_t *reader;
    int wake_fd[2];
    struct event *wake_ev;
    struct event *tick_ev;
    struct event *soon_ev; /* one-shot: retries and revoke checks */
    /* wanted flags, started, subscribed and consumer_closed: arbh_kafka_want
     * may be called from any loop's thread. */
    pthread_mutex_t want_mu;
    bool started;
    bool subscribed;

    /* consume = all: no group membership; every partition of each wanted
     * topic is assigned here, on loop 0, when assign_due is set. */
    bool consume_all;
    _Atomic bool assign_due;

    bool revoking;
    int64_t revoke_deadline_ns;
    rd_kafka_topic_partition_list_t *revoked;
    bool cooperative;

    bool consume_stopped; /* no more deliveries */
    bool consumer_closed;
    bool closing;         /* inside consumer_close: release at once */
    _Atomic bool stopped; /* produce refused */

    /* Produce sequences: every sequence below `finished_below` is finished. */
    _Atomic uint64_t produce_seq;
    _Atomic uint64_t *finished_bits;
    uint64_t finished_mask; /* bits - 1 */
    uint64_t finished_below;

    /* The candidate commit waiting for the producer. */
    rd_kafka_topic_partition_list_t *cand;
    uint64_t cand_needs; /* produce sequences below this must be finished */

    _Atomic uint64_t st_produced, st_produce_full, st_produce_failed, st_done;
    uint64_t st_delivered, st_redelivered, st_pauses, st_commits, st_commit_failed, st_rebalances;
    _Atomic uint64_t receipts_out;
    char fatal[256];
    _Atomic bool fatal_set;
    arbh_kafka_stop_fn stop_fn;
    void *stop_user;
    bool owner_probed; /* consume = all: the sole-owner check was made */
    /* Readiness: when every broker went unreachable (0: not since the last
     * success: a delivery, a fetched record, a commit), and the producer's
     * progress when last looked at. */
    _Atomic int64_t down_since_ns;
    uint64_t seen_finished;
    int64_t seen_finished_ns;
};

/* ---- small helpers ---- */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void default_log(void *user, int level, const char *msg)
{
    (void)user;
    static const char *const names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    char line[1200];
    int n = snprintf(line, sizeof line, "%-5s [kafka] %s\n",
                     names[level < 0 || level > 3 ? 0 : level], msg);
    if (n > (int)sizeof line - 1)
        n = (int)sizeof line - 1;
    /* One write per line: librdkafka logs from its own threads. */
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

__attribute__((format(printf, 3, 4))) static void klog(arbh_kafka *k, int level, const char *fmt,
                                                       ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (k && k->log_fn)
        k->log_fn(k->log_user, level, msg);
    else
        default_log(NULL, level, msg);
}

static void on_rdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    arbh_kafka *k = rd_kafka_opaque(rk);
    /* syslog levels: 0-3 errors, 4 warning, 5-6 notice/info, 7 debug */
    int lvl = level <= 3   ? ARB_LOG_ERROR
              : level == 4 ? ARB_LOG_WARN
              : level <= 6 ? ARB_LOG_INFO
                           : ARB_LOG_DEBUG;
    klog(k, lvl, "%s: %s: %s", rd_kafka_name(rk), fac, buf);
}

/* Something reached a broker: it is not unreachable. */
static void note_ok(arbh_kafka *k)
{
    if (atomic_load_explicit(&k->down_since_ns, memory_order_relaxed))
        atomic_store_explicit(&k->down_since_ns, 0, memory_order_relaxed);
}

static void on_rdkafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    arbh_kafka *k = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[200];
        rd_kafka_fatal_error(rk, why, sizeof why);
        snprintf(k->fatal, sizeof k->fatal, "%s: fatal: %s", rd_kafka_name(rk), why);
        atomic_store(&k->fatal_set, true);
        klog(k, ARB_LOG_ERROR, "%s", k->fatal);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        int64_t zero = 0;
        atomic_compare_exchange_strong(&k->down_since_ns, &zero, mono_ns());
    }
    /* Transient: librdkafka retries on its own (e.g. a broker is down). */
    klog(k, err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ? ARB_LOG_ERROR : ARB_LOG_WARN, "%s: %s: %s",
         rd_kafka_name(rk), rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static route *route_find(const arbh_kafka *k, const char *bus)
{
    for (int i = 0; i < k->nroutes; i++)
        if (!strcmp(k->routes[i].bus, bus))
            return (route *)&k->routes[i];
    return NULL;
}

static route *route_by_kname(arbh_kafka *k, const char *kname)
{
    for (int i = 0; i < k->nroutes; i++)
        if (!strcmp(k->routes[i].kname, kname))
            return &k->routes[i];
    return NULL;
}

static part *part_find(arbh_kafka *k, const route *rt, int32_t partition)
{
    for (part *p = k->parts; p; p = p->next)
        if (p->rt == rt && p->partition == partition)
            return p;
    return NULL;
}

static part *part_get(arbh_kafka *k, route *rt, int32_t partition)
{
    part *p = part_find(k, rt, partition);
    if (p)
        return p;
    p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->slots = calloc(k->window, sizeof *p->slots);
    p->offsets = calloc(k->window, sizeof *p->offsets);
    if (!p->slots || !p->offsets) {
        free(p->slots);
        free(p->offsets);
        free(p);
        return NULL;
    }
    p->k = k;
    p->rt = rt;
    p->partition = partition;
    p->mask = k->window - 1;
    p->next_offset = -1;
    p->committed = -1;
    p->last_seen = -1;
    /* Sequence 0 would make a zero slot look like a record not done. */
    p->head = p->tail = 1;
    p->next = k->parts;
    k->parts = p;
    return p;
}

/* Forget every record of the window: late dones for them change nothing. */
static void part_forget(part *p)
{
    p->epoch++;
    p->head = p->tail;
    p->next_offset = -1;
    p->committed = -1;
    p->last_seen = -1;
    p->retry_ns = 0;
    for (size_t i = 0; i < p->bl_len; i++)
        rd_kafka_message_destroy(p->backlog[(p->bl_head + i) % p->bl_cap]);
    p->bl_head = p->bl_len = 0;
}

/* Moves head past the records that are done. */
static void part_advance(part *p)
{
    while (p->head < p->tail) {
        uint64_t w = atomic_load_explicit(&p->slots[p->head & p->mask], memory_order_acquire);
        if (w != ((p->head << 1) | 1))
            break;
        p->head++;
    }
}

/* The offset to commit: the oldest record not done, or after the last one. */
static int64_t part_commit_point(const part *p)
{
    if (p->head < p->tail)
        return p->offsets[p->head & p->mask];
    return p->next_offset;
}

static void kafka_done(void *token)
{
    receipt *r = token;
    part *p = r->pt;
    arbh_kafka *k = p->k;
    uint64_t expect = r->seq << 1;
    atomic_compare_exchange_strong_explicit(&p->slots[r->seq & p->mask], &expect, expect | 1,
                                            memory_order_release, memory_order_relaxed);
    atomic_fetch_add_explicit(&k->st_done, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&k->receipts_out, 1, memory_order_relaxed);
    free(r);
}

/* ---- produce sequences ---- */

static void produce_finished(arbh_kafka *k, uint64_t seq)
{
    uint64_t bit = seq & k->finished_mask;
    atomic_fetch_or_explicit(&k->finished_bits[bit >> 6], 1ull << (bit & 63), memory_order_release);
}

/* Loop 0: moves finished_below over the finished sequences. */
static void produce_advance(arbh_kafka *k)
{
    uint64_t top = atomic_load_explicit(&k->produce_seq, memory_order_acquire);
    while (k->finished_below < top) {
        uint64_t bit = k->finished_below & k->finished_mask;
        _Atomic uint64_t *w = &k->finished_bits[bit >> 6];
        uint64_t m = 1ull << (bit & 63);
        if (!(atomic_load_explicit(w, memory_order_acquire) & m))
            break;
        atomic_fetch_and_explicit(w, ~m, memory_order_relaxed);
        k->finished_below++;
    }
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    arbh_kafka *k = opaque;
    if (!m->err)
        note_ok(k);
    if (m->err) {
        atomic_fetch_add_explicit(&k->st_produce_failed, 1, memory_order_relaxed);
        klog(k, ARB_LOG_ERROR, "record to %s [%d] lost after retries: %s",
             rd_kafka_topic_name(m->rkt), (int)m->partition, rd_kafka_err2str(m->err));
    }
    produce_finished(k, (uint64_t)(uintptr_t)m->_private);
}

/* ---- config ---- */

__attribute__((format(printf, 5, 6))) static int
cfg_error(arbh_config *cfg, const char *key, char *err, size_t n, const char *fmt, ...)
{
    arbh_cfg_entry *e = arbh_config_find(cfg, "bus", key);
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(err, n, "%s:%d: [bus] %s: %s", e ? e->file : "?", e ? e->line : 0, key, msg);
    return ARB_EINVAL;
}

static int cfg_int(arbh_config *cfg, const char *key, int64_t def, int64_t min, int64_t max,
                   int64_t *out, char *err, size_t n)
{
    const char *s = arbh_config_get(cfg, "bus", key, NULL);
    if (!s) {
        *out = def;
        return ARB_OK;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return cfg_error(cfg, key, err, n, "'%s': expected an integer from %lld to %lld", s,
                         (long long)min, (long long)max);
    *out = v;
    return ARB_OK;
}

static int cfg_bool(arbh_config *cfg, const char *key, bool def, bool *out, char *err, size_t n)
{
    const char *s = arbh_config_get(cfg, "bus", key, NULL);
    if (!s) {
        *out = def;
        return ARB_OK;
    }
    if (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on") || !strcmp(s, "1"))
        *out = true;
    else if (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off") || !strcmp(s, "0"))
        *out = false;
    else
        return cfg_error(cfg, key, err, n, "'%s': expected true or false", s);
    return ARB_OK;
}

/* Calls fn for each trimmed, non-empty item of a comma-separated list. */
static int each_item(const char *list, int (*fn)(void *user, const char *item), void *user)
{
    char item[256];
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        while (len && (*p == ' ' || *p == '\t'))
            p++, len--;
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len >= sizeof item)
            return ARB_EINVAL;
        if (len) {
            memcpy(item, p, len);
            item[len] = 0;
            int rc = fn(user, item);
            if (rc)
                return rc;
        }
        if (!e)
            break;
        p = e + 1;
    }
    return ARB_OK;
}

typedef struct route_adder {
    arbh_kafka *k;
    const char *prefix;
    int partitions;
} route_adder;

static int add_route(void *user, const char *name)
{
    route_adder *a = user;
    arbh_kafka *k = a->k;
    if (route_find(k, name))
        return ARB_OK;
    if (k->nroutes >= KAFKA_MAX_TOPICS || strlen(name) >= sizeof k->routes[0].bus)
        return ARB_EINVAL;
    /* Kafka's own rule for topic names. */
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '.' || *c == '_' || *c == '-'))
            return ARB_EINVAL;
    route *r = &k->routes[k->nroutes++];
    snprintf(r->bus, sizeof r->bus, "%s", name);
    snprintf(r->kname, sizeof r->kname, "%s%s", a->prefix, name);
    r->partitions = a->partitions;
    return ARB_OK;
}

static int set_partitions(void *user, const char *item)
{
    arbh_kafka *k = user;
    const char *colon = strchr(item, ':');
    if (!colon)
        return ARB_EINVAL;
    char name[64];
    if ((size_t)(colon - item) >= sizeof name)
        return ARB_EINVAL;
    memcpy(name, item, (size_t)(colon - item));
    name[colon - item] = 0;
    route *r = route_find(k, name);
    char *end;
    long v = strtol(colon + 1, &end, 10);
    if (!r || *end || end == colon + 1 || v < 1 || v > 10000)
        return ARB_EINVAL;
    r->partitions = (int)v;
    return ARB_OK;
}

typedef struct conf_pass {
    rd_kafka_conf_t *conf;
    char *err;
    size_t n;
    const char *section;
    int rc;
} conf_pass;

static int pass_entry(void *user, const arbh_cfg_entry *e)
{
    conf_pass *c = user;
    char why[256];
    if (rd_kafka_conf_set(c->conf, e->key, e->value, why, sizeof why) != RD_KAFKA_CONF_OK) {
        snprintf(c->err, c->n, "%s:%d: [%s] %s: %s", e->file, e->line, c->section, e->key, why);
        c->rc = ARB_EINVAL;
        return 1;
    }
    return 0;
}

static int conf_pass_section(arbh_config *cfg, rd_kafka_conf_t *conf, const char *section,
                             char *err, size_t n)
{
    conf_pass c = {conf, err, n, section, ARB_OK};
    arbh_config_each(cfg, section, pass_entry, &c);
    return c.rc;
}

static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *err, size_t n)
{
    char why[256];
    if (rd_kafka_conf_set(conf, key, value, why, sizeof why) != RD_KAFKA_CONF_OK) {
        snprintf(err, n, "librdkafka: %s = %s: %s", key, value, why);
        return ARB_EINVAL;
    }
    return ARB_OK;
}

static bool conf_has(rd_kafka_conf_t *conf, const char *key, const char *value)
{
    char buf[256];
    size_t sz = sizeof buf;
    return rd_kafka_conf_get(conf, key, buf, &sz) == RD_KAFKA_CONF_OK && !strcmp(buf, value);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque);
static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque);

/* Producer and consumer configs: our defaults, then [kafka], then the
 * client's own section, then what the transport's guarantees need. */
enum client { PRODUCER, CONSUMER, READER };

static rd_kafka_conf_t *make_conf(arbh_kafka *k, arbh_config *cfg, const char *brokers,
                                  enum client role, char *err, size_t n)
{
    bool consumer = role != PRODUCER;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc = conf_set(conf, "bootstrap.servers", brokers, err, n);
    if (!rc && !consumer)
        rc = conf_set(conf, "partitioner", "murmur2_random", err, n);
    if (!rc && consumer)
        rc = conf_set(conf, "auto.offset.reset", "earliest", err, n);
    if (!rc)
        rc = conf_pass_section(cfg, conf, "kafka", err, n);
    if (!rc)
        rc = conf_pass_section(cfg, conf, consumer ? "kafka.consumer" : "kafka.producer", err, n);
    /* The reader fetches one record at a known offset: an empty fetch must
     * not hold the next read for the consumer's whole fetch wait. */
    if (!rc && role == READER)
        rc = conf_set(conf, "fetch.wait.max.ms", "10", err, n);
    if (!rc && !consumer)
        rc = conf_set(conf, "enable.idempotence", "true", err, n);
    char reader_group[300];
    snprintf(reader_group, sizeof reader_group, "%s.reader", k->group);
    if (!rc && consumer) {
        /* The reader never joins its group (assign only) nor commits: the
         * id is there because librdkafka's consumer API wants one. */
        if (!(rc = conf_set(conf, "group.id", role == READER ? reader_group : k->group, err, n)) &&
            !(rc = conf_set(conf, "enable.auto.commit", "false", err, n)) &&
            !(rc = conf_set(conf, "enable.auto.offset.store", "false", err, n)))
            rc = conf_set(conf, "enable.partition.eof", "false", err, n);
    }
    if (rc) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_opaque(conf, k);
    rd_kafka_conf_set_log_cb(conf, on_rdkafka_log);
    rd_kafka_conf_set_error_cb(conf, on_rdkafka_error);
    if (role == CONSUMER) {
        rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
        rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
    } else if (role == PRODUCER) {
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    }
    return conf;
}

int arbh_kafka_new(arbh_config *cfg, const char *host_id, arbh_kafka **out, char *err, size_t n)
{
    *out = NULL;
    const char *brokers = arbh_config_get(cfg, "bus", "brokers", NULL);
    if (!brokers || !*brokers)
        return cfg_error(cfg, "brokers", err, n,
                         "the Kafka transport needs brokers = HOST:PORT,... (arb-devbroker "
                         "prints a bootstrap list for development)");
    arbh_kafka *k = calloc(1, sizeof *k);
    if (!k)
        return ARB_ENOMEM;
    k->wake_fd[0] = k->wake_fd[1] = -1;
    pthread_mutex_init(&k->want_mu, NULL);
    pthread_mutex_init(&k->reader_mu, NULL);
    int64_t v;
    int rc;
    const char *prefix = arbh_config_get(cfg, "bus", "topic_prefix", "");
    if ((rc = cfg_int(cfg, "partitions", 4, 1, 10000, &v, err, n)))
        goto fail;
    route_adder ra = {k, prefix, (int)v};
    const char *topics = arbh_config_get(cfg, "bus", "kafka_topics", NULL);
    if (topics && strcmp(topics, "none")) {
        if (each_item(topics, add_route, &ra)) {
            rc = cfg_error(cfg, "kafka_topics", err, n,
                           "'%s': expected topic names (letters, digits, . _ -) separated by "
                           "commas, at most %d",
                           topics, KAFKA_MAX_TOPICS);
            goto fail;
        }
    } else if (!topics) {
        for (int i = 0; well_known_topics[i]; i++)
            add_route(&ra, well_known_topics[i]);
    }
    add_route(&ra, ARBH_RUNS_TOPIC);
    if (route_find(k, ARBH_RUNS_TOPIC))
        route_find(k, ARBH_RUNS_TOPIC)->partitions = 1;
    if (strlen(prefix) > 128) {
        rc = cfg_error(cfg, "topic_prefix", err, n, "longer than 128 characters");
        goto fail;
    }
    const char *tp = arbh_config_get(cfg, "bus", "topic_partitions", NULL);
    if (tp && each_item(tp, set_partitions, k)) {
        rc = cfg_error(cfg, "topic_partitions", err, n,
                       "'%s': expected TOPIC:PARTITIONS,... naming topics of kafka_topics", tp);
        goto fail;
    }
    if ((rc = cfg_int(cfg, "replication", -1, -1, 100, &v, err, n)))
        goto fail;
    k->replication = (int)v;
    if ((rc = cfg_bool(cfg, "create_topics", false, &k->create_topics, err, n)) ||
        (rc = cfg_int(cfg, "commit_interval_ms", 100, 1, 600000, &k->commit_interval_ms, err, n)) ||
        (rc = cfg_int(cfg, "revoke_timeout_ms", 10000, 0, 3600000, &k->revoke_timeout_ms, err, n)))
        goto fail;
    if ((rc = cfg_int(cfg, "max_inflight", 8192, 2, 1 << 24, &v, err, n)))
        goto fail;
    k->window = 2;
    while (k->window < (uint64_t)v)
        k->window <<= 1;
    if ((rc = cfg_int(cfg, "flush_timeout_ms", 5000, 0, 600000, &v, err, n)))
        goto fail;
    k->flush_timeout_ms = (int)v;
    const char *consume = arbh_config_get(cfg, "bus", "consume", "group");
    if (!strcmp(consume, "all")) {
        k->consume_all = true;
    } else if (strcmp(consume, "group")) {
        rc = cfg_error(cfg, "consume", err, n, "is \"%s\"; expected group or all", consume);
        goto fail;
    }
    const char *group = arbh_config_get(cfg, "bus", "group", NULL);
    if (group)
        snprintf(k->group, sizeof k->group, "%s", group);
    else
        snprintf(k->group, sizeof k->group, "arb-%s", host_id ? host_id : "arb");

    rd_kafka_conf_t *pc = make_conf(k, cfg, brokers, PRODUCER, err, n);
    if (!pc) {
        rc = ARB_EINVAL;
        goto fail;
    }
    /* The finished-sequence bitmap must be wider than every record librdkafka
     * can hold at once, so a sequence's bit is clear before it is reused. */
    char qmax[64];
    size_t qsz = sizeof qmax;
    uint64_t held = 100000;
    if (rd_kafka_conf_get(pc, "queue.buffering.max.messages", qmax, &qsz) == RD_KAFKA_CONF_OK)
        held = strtoull(qmax, NULL, 10);
    uint64_t bits = 1 << 16;
    while (bits < 2 * held + 65536)
        bits <<= 1;
    k->finished_mask = bits - 1;
    k->finished_bits = calloc(bits / 64, sizeof *k->finished_bits);
    rd_kafka_conf_t *cc = make_conf(k, cfg, brokers, CONSUMER, err, n);
    k->reader_conf = make_conf(k, cfg, brokers, READER, err, n);
    if (!cc || !k->finished_bits || !k->reader_conf) {
        rd_kafka_conf_destroy(pc);
        if (cc)
            rd_kafka_conf_destroy(cc);
        rc = cc ? ARB_ENOMEM : ARB_EINVAL;
        goto fail;
    }
    /* Group-less assignments are added one topic at a time. */
    k->cooperative =
        k->consume_all || conf_has(cc, "partition.assignment.strategy", "cooperative-sticky");
    char why[512];
    k->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, why, sizeof why);
    if (!k->producer) {
        rd_kafka_conf_destroy(pc);
        rd_kafka_conf_destroy(cc);
        snprintf(err, n, "kafka producer: %s", why);
        rc = ARB_EINVAL;
        goto fail;
    }
    k->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, why, sizeof why);
    if (!k->consumer) {
        rd_kafka_conf_destroy(cc);
        snprintf(err, n, "kafka consumer: %s", why);
        rc = ARB_EINVAL;
        goto fail;
    }
    rd_kafka_poll_set_consumer(k->consumer);
    k->cq = rd_kafka_queue_get_consumer(k->consumer);
    k->pq = rd_kafka_queue_get_main(k->producer);
    for (int i = 0; i < k->nroutes; i++) {
        k->routes[i].rkt = rd_kafka_topic_new(k->producer, k->routes[i].kname, NULL);
        if (!k->routes[i].rkt) {
            snprintf(err, n, "kafka topic %s: %s", k->routes[i].kname,
                     rd_kafka_err2str(rd_kafka_last_error()));
            rc = ARB_EINVAL;
            goto fail;
        }
    }
    *out = k;
    return ARB_OK;
fail:
    arbh_kafka_free(k);
    return rc;
}

void arbh_kafka_set_log(arbh_kafka *k, arbh_kafka_log_fn fn, void *user)
{
    k->log_fn = fn;
    k->log_user = user;
}

void arbh_kafka_set_stop(arbh_kafka *k, arbh_kafka_stop_fn fn, void *user)
{
    k->stop_fn = fn;
    k->stop_user = user;
}

int arbh_kafka_routes(const arbh_kafka *k, const char *topic)
{
    return route_find(k, topic) != NULL;
}

/* ---- produce ---- */

int arbh_kafka_produce(arbh_kafka *k, const char *topic, uint64_t key, const void *data, size_t len)
{
    if (atomic_load_explicit(&k->stopped, memory_order_relaxed))
        return ARB_ESTATE;
    route *rt = route_find(k, topic);
    if (!rt)
        return ARB_EINVAL;
    if (atomic_load_explicit(&k->fatal_set, memory_order_relaxed))
        return ARB_ERROR;
    uint8_t kb[8];
    for (int i = 0; i < 8; i++)
        kb[i] = (uint8_t)(key >> (8 * i));
    uint64_t seq = atomic_fetch_add_explicit(&k->produce_seq, 1, memory_order_acq_rel);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        k->producer, RD_KAFKA_V_RKT(rt->rkt), RD_KAFKA_V_KEY(kb, sizeof kb),
        /* the runs' chain is read from partition 0 whatever the topic has */
        RD_KAFKA_V_PARTITION(strcmp(topic, ARBH_RUNS_TOPIC) ? RD_KAFKA_PARTITION_UA : 0),
        RD_KAFKA_V_VALUE((void *)data, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE((void *)(uintptr_t)seq), RD_KAFKA_V_END);
    if (e) {
        produce_finished(k, seq);
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            atomic_fetch_add_explicit(&k->st_produce_full, 1, memory_order_relaxed);
            return ARB_EFULL;
        }
        klog(k, ARB_LOG_ERROR, "produce to %s: %s", rt->kname, rd_kafka_err2str(e));
        return e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ? ARB_EINVAL : ARB_ERROR;
    }
    atomic_fetch_add_explicit(&k->st_produced, 1, memory_order_relaxed);
    return ARB_OK;
}

/* ---- commits ---- */

/* The coordinator refused a group-less commit because the group has
 * members: another host consumes it as a group, so this one is not the sole
 * owner consume = all promises. It stops taking records and producing (the
 * members own the partitions), reports itself failed and asks the host to
 * exit (arbh_kafka_set_stop). The dev broker refuses once the group has had
 * members at all. */
static void not_sole_owner(arbh_kafka *k, rd_kafka_resp_err_t err)
{
    if (atomic_load(&k->fatal_set))
        return;
    snprintf(k->fatal, sizeof k->fatal,
             "group %.60s has members (offset commit refused: %.40s): a consume = all host must "
             "be its group's only consumer; stopped",
             k->group, rd_kafka_err2str(err));
    atomic_store(&k->fatal_set, true);
    k->consume_stopped = true;
    klog(k, ARB_LOG_ERROR, "%s", k->fatal);
    if (k->stop_fn)
        k->stop_fn(k->stop_user, k->fatal);
}

/* consume = all, before the first partition is taken: commits the group's
 * committed offsets of these partitions again, unchanged, so that a group
 * with members refuses this host before it has delivered a record. Where
 * nothing is committed yet there is nothing to probe with (the next topic,
 * or the first commit, decides). */
static void probe_sole_owner(arbh_kafka *k, const rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_copy(parts);
    if (rd_kafka_committed(k->consumer, l, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_topic_partition_list_t *probe = rd_kafka_topic_partition_list_new(l->cnt);
        for (int i = 0; i < l->cnt; i++)
            if (l->elems[i].offset >= 0)
                rd_kafka_topic_partition_list_add(probe, l->elems[i].topic, l->elems[i].partition)
                    ->offset = l->elems[i].offset;
        if (probe->cnt) {
            k->owner_probed = true;
            rd_kafka_resp_err_t e = rd_kafka_commit(k->consumer, probe, 0);
            for (int i = 0; !e && i < probe->cnt; i++)
                e = probe->elems[i].err;
            if (e == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID ||
                e == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION)
                not_sole_owner(k, e);
        }
        rd_kafka_topic_partition_list_destroy(probe);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk;
    (void)offsets;
    arbh_kafka *k = opaque;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        k->st_commits++;
        note_ok(k);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return;
    k->st_commit_failed++;
    if (k->consume_all && (err == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID ||
                           err == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION)) {
        not_sole_owner(k, err);
        return;
    }
    klog(k, ARB_LOG_WARN, "offset commit failed: %s; will commit again", rd_kafka_err2str(err));
    /* Send every commit point again on the next tick. */
    for (part *p = k->parts; p; p = p->next)
        p->committed = -1;
}

/* A candidate not sent: its partitions count as not committed again. */
static void drop_candidate(arbh_kafka *k)
{
    if (!k->cand)
        return;
    rd_kafka_topic_partition_list_destroy(k->cand);
    k->cand = NULL;
    for (part *p = k->parts; p; p = p->next)
        p->committed = -1;
}

/* Commit points of the partitions selected (revoking ones if `revoking`,
 * else assigned ones not revoking) that moved since the last commit. */
static rd_kafka_topic_partition_list_t *commit_points(arbh_kafka *k, bool revoking)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    for (part *p = k->parts; p; p = p->next) {
        if (!p->assigned || p->revoking != revoking)
            continue;
        part_advance(p);
        int64_t at = part_commit_point(p);
        if (at < 0 || at == p->committed)
            continue;
        if (!l)
            l = rd_kafka_topic_partition_list_new(8);
        rd_kafka_topic_partition_list_add(l, p->rt->kname, p->partition)->offset = at;
        p->committed = at;
    }
    return l;
}

/* Tick: send the waiting candidate once the producer caught up, or take a
 * new one. */
static void commit_tick(arbh_kafka *k)
{
    if (k->consumer_closed)
        return;
    produce_advance(k);
    if (!k->cand) {
        k->cand = commit_points(k, false);
        k->cand_needs = atomic_load_explicit(&k->produce_seq, memory_order_acquire);
    }
    if (k->cand && k->finished_below >= k->cand_needs) {
        rd_kafka_resp_err_t e = rd_kafka_commit(k->consumer, k->cand, 1);
        rd_kafka_topic_partition_list_destroy(k->cand);
        k->cand = NULL;
        if (e)
            on_commit(k->consumer, e, NULL, k);
    }
}

/* Synchronous commit of the selected partitions after flushing the producer;
 * nothing is committed if the producer could not deliver in time. */
static void commit_now(arbh_kafka *k, bool revoking)
{
    drop_candidate(k);
    if (rd_kafka_flush(k->producer, k->flush_timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        klog(k, ARB_LOG_WARN,
             "producer still holds %d records after %d ms: not committing consumed offsets "
             "(they will be consumed again)",
             rd_kafka_outq_len(k->producer), k->flush_timeout_ms);
        return;
    }
    produce_advance(k);
    rd_kafka_topic_partition_list_t *l = commit_points(k, revoking);
    if (!l)
        return;
    rd_kafka_resp_err_t e = rd_kafka_commit(k->consumer, l, 0);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
        k->st_commits++;
        note_ok(k);
    } else
        on_commit(k->consumer, e, l, k);
    rd_kafka_topic_partition_list_destroy(l);
}

/* ---- pause, seek back, resume ---- */

static void one_partition(rd_kafka_topic_partition_list_t **l, const part *p, int64_t offset)
{
    *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(*l, p->rt->kname, p->partition)->offset = offset;
}

static void arm_soon(arbh_kafka *k, int64_t ns)
{
    if (!k->soon_ev || evtimer_pending(k->soon_ev, NULL))
        return;
    struct timeval tv = {(time_t)(ns / 1000000000), (suseconds_t)(ns % 1000000000 / 1000)};
    evtimer_add(k->soon_ev, &tv);
}

static void part_set_pause(arbh_kafka *k, part *p, bool pause)
{
    if (p->paused == pause)
        return;
    p->paused = pause;
    k->st_pauses += pause;
    rd_kafka_topic_partition_list_t *l;
    one_partition(&l, p, RD_KAFKA_OFFSET_INVALID);
    if (pause)
        rd_kafka_pause_partitions(k->consumer, l);
    else
        rd_kafka_resume_partitions(k->consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
}

/* Out of memory for a backlog: pause, and fetch from `offset` again on
 * resume (the consumer's own position is already past it). */
static void part_rewind(arbh_kafka *k, part *p, int64_t offset)
{
    part_set_pause(k, p, true);
    p->last_seen = offset - 1;
    rd_kafka_topic_partition_list_t *l;
    one_partition(&l, p, offset);
    rd_kafka_error_t *e = rd_kafka_seek_partitions(k->consumer, l, 0);
    if (e)
        rd_kafka_error_destroy(e);
    rd_kafka_topic_partition_list_destroy(l);
}

static int backlog_push(part *p, rd_kafka_message_t *m, bool front)
{
    if (p->bl_len == p->bl_cap) {
        size_t cap = p->bl_cap ? 2 * p->bl_cap : 64;
        rd_kafka_message_t **grown = malloc(cap * sizeof *grown);
        if (!grown)
            return ARB_ENOMEM;
        for (size_t i = 0; i < p->bl_len; i++)
            grown[i] = p->backlog[(p->bl_head + i) % p->bl_cap];
        free(p->backlog);
        p->backlog = grown;
        p->bl_cap = cap;
        p->bl_head = 0;
    }
    if (front) {
        p->bl_head = (p->bl_head + p->bl_cap - 1) % p->bl_cap;
        p->backlog[p->bl_head] = m;
    } else {
        p->backlog[(p->bl_head + p->bl_len) % p->bl_cap] = m;
    }
    p->bl_len++;
    return ARB_OK;
}

static rd_kafka_message_t *backlog_pop(part *p)
{
    rd_kafka_message_t *m = p->backlog[p->bl_head];
    p->bl_head = (p->bl_head + 1) % p->bl_cap;
    p->bl_len--;
    return m;
}

/* ---- rebalance ---- */

static void list_set_pause(arbh_kafka *k, rd_kafka_topic_partition_list_t *l, bool pause)
{
    if (pause)
        rd_kafka_pause_partitions(k->consumer, l);
    else
        rd_kafka_resume_partitions(k->consumer, l);
}

/* Commit the revoked partitions and let librdkafka release them. */
static void finish_revoke(arbh_kafka *k)
{
    if (!k->revoking)
        return;
    bool lost = rd_kafka_assignment_lost(k->consumer);
    if (k->part_fn)
        for (part *p = k->parts; p; p = p->next)
            if (p->revoking)
                k->part_fn(k->part_user, p->rt->bus, (int)p->partition, 0);
    if (!lost)
        commit_now(k, true);
    else
        klog(k, ARB_LOG_WARN,
             "assignment lost: not committing; records not done will be "
             "consumed again by the new owner");
    for (part *p = k->parts; p; p = p->next) {
        if (!p->revoking)
            continue;
        if (p->head < p->tail)
            klog(k, k->closing ? ARB_LOG_INFO : ARB_LOG_WARN,
                 "%s [%d]: released with %llu records not done (they will be consumed again)",
                 p->rt->kname, (int)p->partition, (unsigned long long)(p->tail - p->head));
        part_forget(p);
        p->revoking = false;
        p->assigned = false;
        p->paused = false;
    }
    rd_kafka_error_t *e = NULL;
    rd_kafka_resp_err_t re = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (k->cooperative) {
        if (k->revoked)
            e = rd_kafka_incremental_unassign(k->consumer, k->revoked);
    } else
        re = rd_kafka_assign(k->consumer, NULL);
    if (e) {
        klog(k, ARB_LOG_WARN, "unassign: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    } else if (re) {
        klog(k, ARB_LOG_WARN, "unassign: %s", rd_kafka_err2str(re));
    }
    if (k->revoked)
        rd_kafka_topic_partition_list_destroy(k->revoked);
    k->revoked = NULL;
    k->revoking = false;
}

/* Finishes a revoke once its records are done or its time is up. */
static void check_revoke(arbh_kafka *k)
{
    if (!k->revoking)
        return;
    bool outstanding = false;
    for (part *p = k->parts; p; p = p->next)
        if (p->revoking) {
            part_advance(p);
            if (p->head < p->tail)
                outstanding = true;
        }
    if (outstanding && mono_ns() < k->revoke_deadline_ns && !k->closing) {
        arm_soon(k, 2000000);
        return;
    }
    if (outstanding && !k->closing)
        klog(k, ARB_LOG_WARN, "revoke: gave up waiting for records to be done after %lld ms",
             (long long)k->revoke_timeout_ms);
    finish_revoke(k);
}

static pending_seek *seek_find(arbh_kafka *k, const route *rt, int32_t partition)
{
    for (size_t i = 0; i < k->nseeks; i++)
        if (k->seeks[i].rt == rt && k->seeks[i].partition == partition)
            return &k->seeks[i];
    return NULL;
}

static void on_assign(arbh_kafka *k, rd_kafka_topic_partition_list_t *parts)
{
    /* A revoke still waiting must release first, or its late unassign would
     * throw this assignment away. */
    finish_revoke(k);
    k->st_rebalances++;
    /* Owners first, while the partitions are not assigned yet: a seek they
     * make waits as a pending seek and becomes the assignment's offset. */
    for (int i = 0; i < parts->cnt && k->part_fn; i++) {
        route *rt = route_by_kname(k, parts->elems[i].topic);
        if (rt)
            k->part_fn(k->part_user, rt->bus, (int)parts->elems[i].partition, 1);
    }
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        route *rt = route_by_kname(k, tp->topic);
        part *p = rt ? part_get(k, rt, tp->partition) : NULL;
        if (!p) {
            klog(k, ARB_LOG_ERROR, "assigned %s [%d] which is not routed here", tp->topic,
                 (int)tp->partition);
            continue;
        }
        part_forget(p);
        p->assigned = true;
        p->revoking = false;
        p->paused = false;
        pending_seek *s = seek_find(k, rt, tp->partition);
        if (s) {
            tp->offset = s->offset;
            *s = k->seeks[--k->nseeks];
        }
    }
    if (k->cooperative) {
        rd_kafka_error_t *e = rd_kafka_incremental_assign(k->consumer, parts);
        if (e) {
            klog(k, ARB_LOG_ERROR, "assign: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
    } else {
        rd_kafka_resp_err_t e = rd_kafka_assign(k->consumer, parts);
        if (e)
            klog(k, ARB_LOG_ERROR, "assign: %s", rd_kafka_err2str(e));
    }
    /* A partition we paused before it was revoked may come back paused. */
    list_set_pause(k, parts, false);
}

static void on_revoke(arbh_kafka *k, rd_kafka_topic_partition_list_t *parts)
{
    finish_revoke(k);
    drop_candidate(k);
    for (int i = 0; i < parts->cnt; i++) {
        route *rt = route_by_kname(k, parts->elems[i].topic);
        part *p = rt ? part_find(k, rt, parts->elems[i].partition) : NULL;
        if (p && p->assigned)
            p->revoking = true;
    }
    list_set_pause(k, parts, true);
    k->revoked = rd_kafka_topic_partition_list_copy(parts);
    k->revoking = true;
    k->revoke_deadline_ns = mono_ns() + k->revoke_timeout_ms * 1000000;
    check_revoke(k);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    arbh_kafka *k = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        on_assign(k, parts);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        on_revoke(k, parts);
    } else {
        /* An error instead of an assignment: release everything we hold,
         * as the example in rdkafka.h does, and wait for the next one. */
        klog(k, ARB_LOG_ERROR, "rebalance: %s", rd_kafka_err2str(err));
        finish_revoke(k);
        for (part *p = k->parts; p; p = p->next)
            if (p->assigned)
                p->revoking = true;
        k->revoked = NULL;
        rd_kafka_assignment(rk, &k->revoked);
        k->revoking = true;
        finish_revoke(k);
    }
}

/* ---- consuming ---- */

enum take { TAKEN, WINDOW_FULL, REFUSED };

/* Hands one record to the host. TAKEN also when the host sought the
 * partition from inside the call (the seek decides what comes next). */
static enum take take_one(arbh_kafka *k, part *p, const rd_kafka_message_t *m)
{
    part_advance(p);
    if (p->tail - p->head > p->mask)
        return WINDOW_FULL;
    uint64_t key = 0;
    if (m->key && m->key_len == 8)
        for (int i = 7; i >= 0; i--)
            key = (key << 8) | ((const uint8_t *)m->key)[i];
    receipt *r = malloc(sizeof *r);
    if (!r)
        return REFUSED;
    uint64_t seq = p->tail;
    r->pt = p;
    r->seq = seq;
    atomic_store_explicit(&p->slots[seq & p->mask], seq << 1, memory_order_release);
    p->offsets[seq & p->mask] = m->offset;
    atomic_fetch_add_explicit(&k->receipts_out, 1, memory_order_relaxed);
    p->tail++;
    uint64_t epoch = p->epoch;
    int rc = k->deliver(k->deliver_user, p->rt->bus, p->partition, m->offset, key, m->payload,
                        m->len, kafka_done, r);
    if (rc == ARB_EFULL) {
        /* Not taken: done will not be called; the slot goes back unless
         * the window was forgotten meanwhile. */
        atomic_fetch_sub_explicit(&k->receipts_out, 1, memory_order_relaxed);
        free(r);
        if (p->epoch != epoch)
            return TAKEN;
        p->tail--;
        atomic_store_explicit(&p->slots[seq & p->mask], 0, memory_order_relaxed);
        return REFUSED;
    }
    if (p->epoch == epoch) {
        p->next_offset = m->offset + 1;
        p->made_ms = rd_kafka_message_timestamp(m, NULL);
    }
    k->st_delivered++;
    note_ok(k);
    return TAKEN;
}

/* Plans the next offer of a partition whose oldest record could not be
 * handed over: soon after a refusal, or once records are done. */
static void block(arbh_kafka *k, part *p, enum take why)
{
    if (p->bl_len >= BACKLOG_PAUSE)
        part_set_pause(k, p, true);
    p->retry_ns = why == REFUSED ? mono_ns() + EFULL_RETRY_NS : 0;
    k->st_redelivered++;
    arm_soon(k, why == REFUSED ? EFULL_RETRY_NS : 2000000);
}

/* A record from the consumer. Returns true if it was kept in a backlog
 * (then the caller must not destroy it). */
static bool offer(arbh_kafka *k, rd_kafka_message_t *m)
{
    route *rt = route_by_kname(k, rd_kafka_topic_name(m->rkt));
    part *p = rt ? part_find(k, rt, m->partition) : NULL;
    /* Records of a partition that is not ours or is being revoked are
     * dropped: whoever owns it next fetches them from the committed offset. */
    if (!p || !p->assigned || p->revoking || k->consume_stopped)
        return false;
    /* Fetched again after a pause: already seen. */
    if (p->last_seen >= 0 && m->offset <= p->last_seen)
        return false;
    p->last_seen = m->offset;
    if (p->bl_len) { /* older records wait: partition order */
        if (backlog_push(p, m, false) != ARB_OK) {
            part_rewind(k, p, m->offset);
            return false;
        }
        if (p->bl_len >= BACKLOG_PAUSE)
            part_set_pause(k, p, true);
        return true;
    }
    enum take t = take_one(k, p, m);
    if (t == TAKEN)
        return false;
    if (backlog_push(p, m, false) != ARB_OK) {
        part_rewind(k, p, m->offset);
        block(k, p, REFUSED);
        return false;
    }
    block(k, p, t);
    return true;
}

/* Offers the backlogs again; resumes partitions whose backlog emptied.
 * Returns true if some partition still waits. */
static bool drain_backlogs(arbh_kafka *k)
{
    bool waiting = false;
    int64_t now = mono_ns();
    for (part *p = k->parts; p; p = p->next) {
        if (!p->assigned || p->revoking || k->consume_stopped)
            continue;
        if (p->bl_len && now < p->retry_ns) {
            waiting = true;
            continue;
        }
        while (p->bl_len) {
            rd_kafka_message_t *m = backlog_pop(p);
            uint64_t epoch = p->epoch;
            enum take t = take_one(k, p, m);
            if (t == TAKEN || p->epoch != epoch) {
                rd_kafka_message_destroy(m);
                if (p->epoch != epoch)
                    break;
                continue;
            }
            backlog_push(p, m, true); /* cannot fail: it was just popped */
            block(k, p, t);
            waiting = true;
            break;
        }
        if (!p->bl_len && p->paused)
            part_set_pause(k, p, false);
    }
    return waiting;
}

static void assign_all(arbh_kafka *k);

static void poll_once(arbh_kafka *k)
{
    rd_kafka_poll(k->producer, 0);
    if (k->consumer_closed)
        return;
    if (k->consume_all)
        assign_all(k);
    int n = 0;
    for (; n < POLL_BUDGET; n++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(k->consumer, 0);
        if (!m)
            break;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                klog(k, ARB_LOG_WARN, "consume: %s", rd_kafka_message_errstr(m));
        } else if (offer(k, m)) {
            continue; /* kept in a backlog */
        }
        rd_kafka_message_destroy(m);
    }
    /* The pipe is written only when the queue turns non-empty: if the
     * budget ran out, come back after the other events. */
    if (n == POLL_BUDGET)
        event_active(k->wake_ev, EV_READ, 0);
    check_revoke(k);
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    char buf[64];
    while (read(fd, buf, sizeof buf) > 0)
        ;
    poll_once(arg);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    arbh_kafka *k = arg;
    poll_once(k);
    commit_tick(k);
    drain_backlogs(k);
}

static void on_soon(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    arbh_kafka *k = arg;
    if (drain_backlogs(k))
        arm_soon(k, EFULL_RETRY_NS);
    check_revoke(k);
    poll_once(k);
}

static void on_assign(arbh_kafka *k, rd_kafka_topic_partition_list_t *parts);

/* consume = all, on loop 0: assigns every partition of each wanted topic not
 * assigned yet. A topic whose partitions are not known yet (metadata failed)
 * is tried again shortly. */
static void assign_all(arbh_kafka *k)
{
    if (!atomic_exchange(&k->assign_due, false) || k->consumer_closed)
        return;
    /* Which topics, under the lock; the assignment without it: a plugin's
     * partition callback may subscribe (arbh_kafka_want). */
    int todo[KAFKA_MAX_TOPICS], ntodo = 0;
    pthread_mutex_lock(&k->want_mu);
    for (int i = 0; i < k->nroutes; i++)
        if (k->routes[i].wanted && !k->routes[i].taken)
            todo[ntodo++] = i;
    pthread_mutex_unlock(&k->want_mu);
    bool again = false;
    for (int t = 0; t < ntodo; t++) {
        route *rt = &k->routes[todo[t]];
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(k->consumer, rt->kname, NULL);
        rd_kafka_resp_err_t e =
            rkt ? rd_kafka_metadata(k->consumer, 0, rkt, &md, 5000) : rd_kafka_last_error();
        if (rkt)
            rd_kafka_topic_destroy(rkt);
        if (!e && (md->topic_cnt != 1 || md->topics[0].err))
            e = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
        if (e || md->topics[0].partition_cnt < 1) {
            klog(k, ARB_LOG_WARN, "%s: partitions not known yet (%s); trying again", rt->kname,
                 rd_kafka_err2str(e));
            if (md)
                rd_kafka_metadata_destroy(md);
            again = true;
            continue;
        }
        int cnt = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(cnt);
        for (int p = 0; p < cnt; p++)
            rd_kafka_topic_partition_list_add(l, rt->kname, p)->offset = RD_KAFKA_OFFSET_INVALID;
        if (!k->owner_probed)
            probe_sole_owner(k, l);
        if (atomic_load(&k->fatal_set)) {
            rd_kafka_topic_partition_list_destroy(l);
            return;
        }
        on_assign(k, l); /* at the committed offset, or a pending seek */
        rd_kafka_topic_partition_list_destroy(l);
        rt->taken = true;
    }
    if (again) {
        atomic_store(&k->assign_due, true);
        arm_soon(k, 500 * 1000000LL);
    }
}

static int subscribe_wanted(arbh_kafka *k)
{
    if (k->consume_all) {
        /* The assignment is made on loop 0 (assign_all); this may run on
         * another loop's thread. */
        atomic_store(&k->assign_due, true);
        if (k->wake_fd[1] >= 0 && write(k->wake_fd[1], "a", 1) < 0 && errno != EAGAIN)
            klog(k, ARB_LOG_WARN, "wake: %s", strerror(errno));
        k->subscribed = true;
        return ARB_OK;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(k->nroutes);
    for (int i = 0; i < k->nroutes; i++)
        if (k->routes[i].wanted)
            rd_kafka_topic_partition_list_add(l, k->routes[i].kname, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (l->cnt)
        e = rd_kafka_subscribe(k->consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        klog(k, ARB_LOG_ERROR, "subscribe: %s", rd_kafka_err2str(e));
        return ARB_ERROR;
    }
    k->subscribed = true;
    return ARB_OK;
}

int arbh_kafka_want(arbh_kafka *k, const char *topic)
{
    route *rt = route_find(k, topic);
    if (!rt)
        return ARB_EINVAL;
    int rc = ARB_OK;
    pthread_mutex_lock(&k->want_mu);
    if (!rt->wanted) {
        rt->wanted = true;
        if (k->started && !k->consumer_closed)
            rc = subscribe_wanted(k);
    }
    pthread_mutex_unlock(&k->want_mu);
    return rc;
}

/* create_topics: missing topics are created; existing ones are left as is. */
static int create_topics(arbh_kafka *k);

int arbh_kafka_prepare(arbh_kafka *k)
{
    if (!k->create_topics || k->topics_created)
        return ARB_OK;
    int rc = create_topics(k);
    k->topics_created = rc == ARB_OK;
    return rc;
}

int arbh_kafka_flush(arbh_kafka *k, int timeout_ms)
{
    return rd_kafka_flush(k->producer, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR ? ARB_OK
                                                                                 : ARB_ERROR;
}

static int create_topics(arbh_kafka *k)
{
    rd_kafka_NewTopic_t *nt[KAFKA_MAX_TOPICS];
    char why[256];
    int n = 0;
    for (int i = 0; i < k->nroutes; i++) {
        nt[n] = rd_kafka_NewTopic_new(k->routes[i].kname, k->routes[i].partitions, k->replication,
                                      why, sizeof why);
        if (!nt[n]) {
            klog(k, ARB_LOG_ERROR, "create topic %s: %s", k->routes[i].kname, why);
            continue;
        }
        n++;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(k->producer);
    rd_kafka_AdminOptions_t *opt =
        rd_kafka_AdminOptions_new(k->producer, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(opt, 10000, why, sizeof why);
    rd_kafka_CreateTopics(k->producer, nt, (size_t)n, opt, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
    int rc = ARB_OK;
    if (!ev) {
        klog(k, ARB_LOG_ERROR, "create topics: no answer from the cluster in 15 s");
        rc = ARB_ERROR;
    } else if (rd_kafka_event_error(ev)) {
        klog(k, ARB_LOG_ERROR, "create topics: %s", rd_kafka_event_error_string(ev));
        rc = ARB_ERROR;
    } else {
        size_t cnt;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
        for (size_t i = 0; i < cnt; i++) {
            rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
            if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                klog(k, ARB_LOG_ERROR, "create topic %s: %s", rd_kafka_topic_result_name(res[i]),
                     rd_kafka_topic_result_error_string(res[i]));
                rc = ARB_ERROR;
            }
        }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy_array(nt, (size_t)n);
    return rc;
}

int arbh_kafka_start(arbh_kafka *k, struct event_base *base, arbh_kafka_deliver_fn fn, void *user)
{
    if (k->started || !fn || !base)
        return ARB_ESTATE;
    if (arbh_kafka_prepare(k))
        return ARB_ERROR;
    k->base = base;
    k->deliver = fn;
    k->deliver_user = user;
    if (pipe2(k->wake_fd, O_NONBLOCK | O_CLOEXEC)) {
        klog(k, ARB_LOG_ERROR, "pipe: %s", strerror(errno));
        return ARB_ERROR;
    }
    k->wake_ev = event_new(base, k->wake_fd[0], EV_READ | EV_PERSIST, on_wake, k);
    k->tick_ev = event_new(base, -1, EV_PERSIST, on_tick, k);
    k->soon_ev = evtimer_new(base, on_soon, k);
    if (!k->wake_ev || !k->tick_ev || !k->soon_ev)
        return ARB_ENOMEM;
    struct timeval tick = {(time_t)(k->commit_interval_ms / 1000),
                           (suseconds_t)(k->commit_interval_ms % 1000 * 1000)};
    event_add(k->wake_ev, NULL);
    event_add(k->tick_ev, &tick);
    /* Both queues write to one pipe; the payload does not matter. */
    rd_kafka_queue_io_event_enable(k->cq, k->wake_fd[1], "c", 1);
    rd_kafka_queue_io_event_enable(k->pq, k->wake_fd[1], "p", 1);
    pthread_mutex_lock(&k->want_mu);
    k->started = true;
    int rc = subscribe_wanted(k);
    pthread_mutex_unlock(&k->want_mu);
    event_active(k->wake_ev, EV_READ, 0);
    return rc;
}

void arbh_kafka_set_partition_cb(arbh_kafka *k, arbh_kafka_partition_fn fn, void *user)
{
    k->part_fn = fn;
    k->part_user = user;
}

static int ms_left(int64_t deadline_ns)
{
    int64_t left = (deadline_ns - mono_ns()) / 1000000;
    return left < 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

/* ---- the reader: a group-less consumer for reads at known offsets ---- */

/* The reader (made on first use); reader_mu held. */
static rd_kafka_t *reader_get(arbh_kafka *k)
{
    if (!k->reader) {
        char why[512];
        rd_kafka_conf_t *c = rd_kafka_conf_dup(k->reader_conf);
        k->reader = rd_kafka_new(RD_KAFKA_CONSUMER, c, why, sizeof why);
        if (!k->reader) {
            rd_kafka_conf_destroy(c);
            klog(k, ARB_LOG_ERROR, "reader: %s", why);
        }
    }
    return k->reader;
}

static int watermarks_locked(arbh_kafka *k, route *rt, int partition, int64_t deadline, int64_t *lo,
                             int64_t *hi)
{
    rd_kafka_t *r = reader_get(k);
    if (!r)
        return ARB_ERROR;
    rd_kafka_resp_err_t e =
        rd_kafka_query_watermark_offsets(r, rt->kname, partition, lo, hi, ms_left(deadline));
    if (e == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION || e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
        return ARB_ENOENT;
    if (e) {
        klog(k, ARB_LOG_WARN, "%s [%d]: offsets: %s", rt->kname, partition, rd_kafka_err2str(e));
        return ARB_ERROR;
    }
    return ARB_OK;
}

/* Partitions first..first+n-1's records [next[i], to[i]) at once, to fn:
 * one assignment of them all, so the broker serves them in the same fetches
 * (the dev broker hands out one producer batch per partition per fetch:
 * reading the partitions one after another took 1.6 times as long). Each
 * partition in order; partitions interleave. Offsets without a record (none
 * on a log written by idempotent producers) are skipped: a partition's read
 * ends when the reader's position reaches its `to`. The deadline is for
 * progress: each record taken moves it on, so a long read is not cut short
 * while records still come. */
static int ranges_locked(arbh_kafka *k, route *rt, int first, int n, int64_t *next,
                         const int64_t *to, int64_t deadline, arbh_kafka_part_record_fn fn,
                         void *user)
{
    rd_kafka_t *r = reader_get(k);
    if (!r)
        return ARB_ERROR;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    int left = 0;
    for (int i = 0; i < n; i++)
        if (next[i] < to[i]) {
            rd_kafka_topic_partition_list_add(l, rt->kname, first + i)->offset = next[i];
            left++;
        }
    rd_kafka_resp_err_t e = left ? rd_kafka_assign(r, l) : RD_KAFKA_RESP_ERR_NO_ERROR;
    if (e) {
        rd_kafka_topic_partition_list_destroy(l);
        klog(k, ARB_LOG_WARN, "%s: assign: %s", rt->kname, rd_kafka_err2str(e));
        return ARB_ERROR;
    }
    int64_t patience = deadline - mono_ns();
    int rc = ARB_OK;
    while (left > 0 && rc == ARB_OK) {
        if (mono_ns() >= deadline) {
            for (int i = 0; i < n; i++)
                if (next[i] < to[i])
                    klog(k, ARB_LOG_WARN, "%s [%d]: no record at offset %lld in time", rt->kname,
                         first + i, (long long)next[i]);
            rc = ARB_ERROR;
            break;
        }
        rd_kafka_message_t *m =
            rd_kafka_consumer_poll(r, ms_left(deadline) < 100 ? ms_left(deadline) : 100);
        if (!m) {
            /* Offsets without a record: the position moved past them. */
            if (!rd_kafka_position(r, l))
                for (int j = 0; j < l->cnt; j++) {
                    int i = l->elems[j].partition - first;
                    if (next[i] < to[i] && l->elems[j].offset > next[i]) {
                        next[i] = l->elems[j].offset < to[i] ? l->elems[j].offset : to[i];
                        left -= next[i] >= to[i];
                    }
                }
            continue;
        }
        int i = m->partition - first;
        if (m->err) {
            klog(k, ARB_LOG_WARN, "%s [%d]: %s", rt->kname, (int)m->partition,
                 rd_kafka_message_errstr(m));
        } else if (i >= 0 && i < n && next[i] < to[i] && m->offset >= next[i]) {
            if (m->offset < to[i]) {
                uint64_t key = 0;
                if (m->key_len == 8)
                    for (int b = 0; b < 8; b++)
                        key |= (uint64_t)((const uint8_t *)m->key)[b] << (8 * b);
                rc = fn(user, m->payload, m->len, key, first + i, m->offset);
                next[i] = m->offset + 1;
                deadline = mono_ns() + patience;
            } else {
                next[i] = to[i];
            }
            left -= next[i] >= to[i];
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_assign(r, NULL);
    return rc;
}

typedef struct one_part {
    arbh_kafka_record_fn fn;
    void *user;
} one_part;

static int one_part_record(void *user, const void *bytes, size_t len, uint64_t key, int partition,
                           int64_t offset)
{
    (void)partition;
    one_part *o = user;
    return o->fn(o->user, bytes, len, key, offset);
}

/* Records [from, to) of one partition, in order, to fn (ranges_locked). */
static int range_locked(arbh_kafka *k, route *rt, int partition, int64_t from, int64_t to,
                        int64_t deadline, arbh_kafka_record_fn fn, void *user)
{
    one_part o = {fn, user};
    return ranges_locked(k, rt, partition, 1, &from, &to, deadline, one_part_record, &o);
}

int arbh_kafka_read_ranges(arbh_kafka *k, const char *topic, int n, const int64_t *from,
                           const int64_t *to, int64_t timeout_ns, arbh_kafka_part_record_fn fn,
                           void *user)
{
    route *rt = route_find(k, topic);
    if (!rt || n < 1)
        return ARB_EINVAL;
    int64_t *next = malloc((size_t)n * sizeof *next), *end = malloc((size_t)n * sizeof *end);
    if (!next || !end) {
        free(next);
        free(end);
        return ARB_ENOMEM;
    }
    int64_t deadline = mono_ns() + timeout_ns;
    int rc = ARB_OK;
    pthread_mutex_lock(&k->reader_mu);
    for (int p = 0; p < n && rc == ARB_OK; p++) {
        int64_t lo, hi;
        rc = watermarks_locked(k, rt, p, deadline, &lo, &hi);
        next[p] = from[p] > lo ? from[p] : lo;
        end[p] = to[p] < 0 || to[p] > hi ? hi : to[p];
    }
    if (rc == ARB_OK)
        rc = ranges_locked(k, rt, 0, n, next, end, deadline, fn, user);
    pthread_mutex_unlock(&k->reader_mu);
    free(next);
    free(end);
    return rc;
}

int arbh_kafka_watermarks(arbh_kafka *k, const char *topic, int partition, int64_t timeout_ns,
                          int64_t *lo, int64_t *hi)
{
    route *rt = route_find(k, topic);
    if (!rt || partition < 0)
        return ARB_EINVAL;
    pthread_mutex_lock(&k->reader_mu);
    int rc = watermarks_locked(k, rt, partition, mono_ns() + timeout_ns, lo, hi);
    pthread_mutex_unlock(&k->reader_mu);
    return rc;
}

int arbh_kafka_read_range(arbh_kafka *k, const char *topic, int partition, int64_t from, int64_t to,
                          int64_t timeout_ns, arbh_kafka_record_fn fn, void *user)
{
    route *rt = route_find(k, topic);
    if (!rt || partition < 0 || from < 0)
        return ARB_EINVAL;
    int64_t deadline = mono_ns() + timeout_ns, lo, hi;
    pthread_mutex_lock(&k->reader_mu);
    int rc = watermarks_locked(k, rt, partition, deadline, &lo, &hi);
    if (rc == ARB_OK) {
        if (from < lo)
            from = lo;
        if (to < 0 || to > hi)
            to = hi;
        if (from < to)
            rc = range_locked(k, rt, partition, from, to, deadline, fn, user);
    }
    pthread_mutex_unlock(&k->reader_mu);
    return rc;
}

typedef struct last_copy {
    void *bytes;
    size_t len;
    int64_t offset;
} last_copy;

static int copy_last(void *user, const void *bytes, size_t len, uint64_t key, int64_t offset)
{
    (void)key;
    last_copy *c = user;
    free(c->bytes);
    c->bytes = malloc(len ? len : 1);
    if (!c->bytes)
        return ARB_ENOMEM;
    memcpy(c->bytes, bytes, len);
    c->len = len;
    c->offset = offset;
    return ARB_OK;
}

int arbh_kafka_read_last(arbh_kafka *k, const char *topic, int partition, int64_t timeout_ns,
                         void **bytes, size_t *len, int64_t *offset)
{
    route *rt = route_find(k, topic);
    if (!rt || partition < 0)
        return ARB_EINVAL;
    int64_t deadline = mono_ns() + timeout_ns, lo, hi;
    last_copy c = {NULL, 0, -1};
    pthread_mutex_lock(&k->reader_mu);
    int rc = watermarks_locked(k, rt, partition, deadline, &lo, &hi);
    if (rc == ARB_OK && hi <= lo)
        rc = ARB_ENOENT;
    if (rc == ARB_OK)
        rc = range_locked(k, rt, partition, hi - 1, hi, deadline, copy_last, &c);
    pthread_mutex_unlock(&k->reader_mu);
    if (rc == ARB_OK && !c.bytes)
        rc = ARB_ENOENT;
    if (rc != ARB_OK) {
        free(c.bytes);
        return rc;
    }
    *bytes = c.bytes;
    *len = c.len;
    *offset = c.offset;
    return ARB_OK;
}

int arbh_kafka_partition_of(arbh_kafka *k, const char *topic, uint64_t key, int64_t timeout_ns,
                            int32_t *partition)
{
    route *rt = route_find(k, topic);
    if (!rt)
        return ARB_EINVAL;
    pthread_mutex_lock(&k->reader_mu);
    int rc = ARB_ERROR;
    rd_kafka_t *r = reader_get(k);
    rd_kafka_topic_t *rkt = r ? rd_kafka_topic_new(r, rt->kname, NULL) : NULL;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__FAIL;
    if (rkt)
        e = rd_kafka_metadata(r, 0, rkt, &md, ms_left(mono_ns() + timeout_ns));
    if (e) {
        klog(k, ARB_LOG_WARN, "%s: metadata: %s", rt->kname, rd_kafka_err2str(e));
    } else if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt < 1) {
        rc = ARB_ENOENT;
    } else {
        /* The producer's partitioner (murmur2, as the Java clients). */
        uint8_t kb[8];
        for (int i = 0; i < 8; i++)
            kb[i] = (uint8_t)(key >> (8 * i));
        *partition = rd_kafka_msg_partitioner_murmur2_random(
            rkt, kb, sizeof kb, md->topics[0].partition_cnt, NULL, NULL);
        rc = ARB_OK;
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    pthread_mutex_unlock(&k->reader_mu);
    return rc;
}

int arbh_kafka_seek(arbh_kafka *k, const char *topic, int partition, int64_t offset)
{
    route *rt = route_find(k, topic);
    if (!rt || partition < 0 ||
        (offset < 0 && offset != RD_KAFKA_OFFSET_BEGINNING && offset != RD_KAFKA_OFFSET_END))
        return ARB_EINVAL;
    part *p = part_find(k, rt, partition);
    if (p && p->assigned && !p->revoking && !k->consumer_closed) {
        drop_candidate(k);
        part_forget(p);
        rd_kafka_topic_partition_list_t *l;
        one_partition(&l, p, offset);
        rd_kafka_error_t *e = rd_kafka_seek_partitions(k->consumer, l, 0);
        rd_kafka_topic_partition_list_destroy(l);
        part_set_pause(k, p, false);
        if (e) {
            klog(k, ARB_LOG_ERROR, "seek %s [%d] to %lld: %s", rt->kname, partition,
                 (long long)offset, rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            return ARB_ERROR;
        }
        return ARB_OK;
    }
    pending_seek *s = seek_find(k, rt, partition);
    if (!s) {
        pending_seek *grown = realloc(k->seeks, (k->nseeks + 1) * sizeof *grown);
        if (!grown)
            return ARB_ENOMEM;
        k->seeks = grown;
        s = &k->seeks[k->nseeks++];
    }
    *s = (pending_seek){rt, partition, offset};
    return ARB_OK;
}

/* ---- stop ---- */

void arbh_kafka_stop_consuming(arbh_kafka *k)
{
    if (!k || k->consumer_closed || !k->consumer)
        return;
    k->consume_stopped = true;
    if (k->started) {
        check_revoke(k);
        commit_now(k, false);
    }
    /* Fetched records still waiting are dropped before the consumer goes. */
    for (part *p = k->parts; p; p = p->next)
        if (p->bl_len)
            part_forget(p);
    k->closing = true;
    /* Leaving the group revokes what is assigned: on_revoke releases at once
     * (closing) after committing again, which is a no-op by now. */
    rd_kafka_resp_err_t e = rd_kafka_consumer_close(k->consumer);
    if (e)
        klog(k, ARB_LOG_WARN, "consumer close: %s", rd_kafka_err2str(e));
    k->closing = false;
    pthread_mutex_lock(&k->want_mu);
    k->consumer_closed = true;
    pthread_mutex_unlock(&k->want_mu);
    rd_kafka_queue_io_event_enable(k->cq, -1, NULL, 0);
    drop_candidate(k);
}

void arbh_kafka_stop(arbh_kafka *k)
{
    if (!k || atomic_load(&k->stopped))
        return;
    arbh_kafka_stop_consuming(k);
    if (k->producer && rd_kafka_flush(k->producer, k->flush_timeout_ms))
        klog(k, ARB_LOG_WARN, "stop: %d records not delivered after %d ms",
             rd_kafka_outq_len(k->producer), k->flush_timeout_ms);
    atomic_store(&k->stopped, true);
    if (k->pq)
        rd_kafka_queue_io_event_enable(k->pq, -1, NULL, 0);
    if (k->wake_ev)
        event_del(k->wake_ev);
    if (k->tick_ev)
        event_del(k->tick_ev);
    if (k->soon_ev)
        event_del(k->soon_ev);
}

void arbh_kafka_free(arbh_kafka *k)
{
    if (!k)
        return;
    if (k->producer)
        arbh_kafka_stop(k);
    uint64_t out = atomic_load(&k->receipts_out);
    if (out)
        klog(k, ARB_LOG_WARN, "%llu delivered records were never marked done",
             (unsigned long long)out);
    drop_candidate(k);
    if (k->revoked)
        rd_kafka_topic_partition_list_destroy(k->revoked);
    if (k->cq)
        rd_kafka_queue_destroy(k->cq);
    if (k->pq)
        rd_kafka_queue_destroy(k->pq);
    for (int i = 0; i < k->nroutes; i++)
        if (k->routes[i].rkt)
            rd_kafka_topic_destroy(k->routes[i].rkt);
    if (k->consumer)
        rd_kafka_destroy(k->consumer);
    if (k->producer)
        rd_kafka_destroy(k->producer);
    if (k->reader)
        rd_kafka_destroy(k->reader);
    if (k->reader_conf)
        rd_kafka_conf_destroy(k->reader_conf);
    pthread_mutex_destroy(&k->reader_mu);
    if (k->wake_ev)
        event_free(k->wake_ev);
    if (k->tick_ev)
        event_free(k->tick_ev);
    if (k->soon_ev)
        event_free(k->soon_ev);
    for (int i = 0; i < 2; i++)
        if (k->wake_fd[i] >= 0)
            close(k->wake_fd[i]);
    while (k->parts) {
        part *p = k->parts;
        k->parts = p->next;
        free(p->slots);
        free(p->offsets);
        free(p->backlog);
        free(p);
    }
    free(k->seeks);
    free(k->finished_bits);
    pthread_mutex_destroy(&k->want_mu);
    free(k);
}

__attribute__((format(printf, 2, 3))) static void add_reason(arbh_kafka_stats *out, const char *fmt,
                                                             ...)
{
    size_t used = strlen(out->reasons);
    if (used + 8 >= sizeof out->reasons)
        return;
    if (used)
        used += (size_t)snprintf(out->reasons + used, sizeof out->reasons - used, "; ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->reasons + used, sizeof out->reasons - used, fmt, ap);
    va_end(ap);
    out->degraded = 1;
}

/* On the loop (the admin endpoint runs there): see kafka.h. */
static void readiness(arbh_kafka *k, arbh_kafka_stats *out)
{
    int64_t now = mono_ns();
    int64_t down = atomic_load(&k->down_since_ns);
    if (down)
        add_reason(out, "broker unreachable for %lld s (every broker connection is down)",
                   (long long)((now - down) / 1000000000));
    if (k->subscribed && !k->consume_stopped) {
        if (!k->st_rebalances)
            out->starting = 1;
        else if (!out->assigned)
            add_reason(out, "no partitions assigned (the group is rebalancing, or this member "
                            "lost its session)");
    }
    for (part *p = k->parts; p; p = p->next) {
        int64_t lo = -1, hi = -1;
        if (!p->assigned || p->next_offset < 0 ||
            rd_kafka_get_watermark_offsets(k->consumer, p->rt->kname, p->partition, &lo, &hi) ||
            hi <= p->next_offset + (int64_t)(p->tail - p->head)) {
            p->seen_offset = -1;
            continue;
        }
        struct timespec wall;
        clock_gettime(CLOCK_REALTIME, &wall);
        int64_t age_ms = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000 - p->made_ms;
        if (p->made_ms > 0 && age_ms >= BEHIND_MS)
            add_reason(out,
                       "consumer behind: %s [%d] is taking records made %lld s ago, %lld records "
                       "behind",
                       p->rt->kname, (int)p->partition, (long long)(age_ms / 1000),
                       (long long)(hi - p->next_offset));
        if (p->seen_offset != p->next_offset) {
            p->seen_offset = p->next_offset;
            p->seen_ns = now;
        } else if (now - p->seen_ns >= STALL_NS) {
            add_reason(
                out, "consumer not advancing: %s [%d] at %lld for %lld s, %lld records behind",
                p->rt->kname, (int)p->partition, (long long)p->next_offset,
                (long long)((now - p->seen_ns) / 1000000000), (long long)(hi - p->next_offset));
        }
    }
    uint64_t issued = atomic_load(&k->produce_seq);
    if (k->finished_below >= issued || k->finished_below != k->seen_finished) {
        k->seen_finished = k->finished_below;
        k->seen_finished_ns = now;
    } else if (now - k->seen_finished_ns >= STALL_NS) {
        add_reason(out, "producer queue not draining: %llu records undelivered for %lld s",
                   (unsigned long long)(issued - k->finished_below),
                   (long long)((now - k->seen_finished_ns) / 1000000000));
    }
}

void arbh_kafka_get_stats(arbh_kafka *k, arbh_kafka_stats *out)
{
    memset(out, 0, sizeof *out);
    out->produced = atomic_load(&k->st_produced);
    out->produce_full = atomic_load(&k->st_produce_full);
    out->produce_failed = atomic_load(&k->st_produce_failed);
    out->delivered = k->st_delivered;
    out->done = atomic_load(&k->st_done);
    out->redelivered = k->st_redelivered;
    out->pauses = k->st_pauses;
    out->commits = k->st_commits;
    out->commit_failed = k->st_commit_failed;
    out->rebalances = k->st_rebalances;
    for (part *p = k->parts; p; p = p->next)
        out->assigned += p->assigned;
    out->healthy = 1;
    if (atomic_load(&k->fatal_set)) {
        out->healthy = 0;
        snprintf(out->detail, sizeof out->detail, "%s", k->fatal);
    } else if (k->started && k->subscribed && k->consumer_closed && !atomic_load(&k->stopped)) {
        out->healthy = 0;
        snprintf(out->detail, sizeof out->detail, "consumer closed");
    }
    readiness(k, out);
}

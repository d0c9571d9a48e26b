/*
 * arb/plugin.h -- the plugin contract: the descriptor a plugin exports, the
 * host API table the host hands it, and thin inline wrappers over that table.
 *
 * A plugin includes only sdk/ headers and links no host symbol: every host
 * service is reached through the table in its arb_ctx (Redis-module style), so
 * a plugin can be unit-tested against a fake table. This file is not where the
 * wire formats live (see arb/wire.h) and it holds no host internals.
 *
 * Lifecycle of one instance, all calls on the instance's own thread:
 *   create(ctx, &self)   read and validate config, allocate; no I/O, no
 *                        registrations (arb-host --check stops here).
 *   restore(self, ...)   only on hot reload: adopt the old instance's state.
 *   start(self)          subscribe, start timers, open sockets.
 *   stop(self)           close what start opened, join threads. The host
 *                        removes the instance's subscriptions and timers.
 *   save(self, ...)      only on hot reload: state -> bytes.
 *   destroy(self)        free.
 */
#ifndef ARB_PLUGIN_H
#define ARB_PLUGIN_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on any incompatible change to arb_plugin or arb_host_api. */
#define ARB_ABI_VERSION 1u

/* The one symbol a plugin exports; it returns the plugin's descriptor. */
#define ARB_PLUGIN_ENTRY_NAME "arb_plugin_entry"
#define ARB_EXPORT __attribute__((visibility("default")))
#define ARB_PLUGIN_DEFINE(desc)                                 \
    ARB_EXPORT const struct arb_plugin *arb_plugin_entry(void); \
    ARB_EXPORT const struct arb_plugin *arb_plugin_entry(void) { return &(desc); }

/* Status codes: 0 is success, every failure is negative. */
enum arb_status {
    ARB_OK = 0,
    ARB_ERROR = -1,    /* generic failure; the message was logged */
    ARB_EINVAL = -2,   /* bad argument or bad configuration value */
    ARB_ENOMEM = -3,   /* allocation failed */
    ARB_EFULL = -4,    /* a bounded queue is full; nothing was enqueued */
    ARB_EREFUSED = -5, /* restore refused the offered state */
    ARB_ENOENT = -6,   /* no such topic, key, timer or subscription */
    ARB_EBADMSG = -7,  /* a wire record failed validation */
    ARB_ESTATE = -8,   /* call not allowed in the current lifecycle phase */
};

enum arb_log_level { ARB_LOG_ERROR = 0, ARB_LOG_WARN, ARB_LOG_INFO, ARB_LOG_DEBUG };

/* The seven well-known topics have fixed ids; arb_topic() resolves any other
 * name (e.g. a test topic) to an id allocated by the host. */
enum arb_topic_id {
    ARB_TOPIC_ORDER_COMMANDS = 0,
    ARB_TOPIC_ORDER_EVENTS = 1,
    ARB_TOPIC_TRADE_EXECUTED = 2,
    ARB_TOPIC_MARKET_DATA = 3,
    ARB_TOPIC_SYSTEM_TICKS = 4,
    ARB_TOPIC_MARKET_EVENTS = 5,
    ARB_TOPIC_SERVICE_REGISTRY = 6,
    ARB_TOPIC_WELL_KNOWN = 7,
    ARB_TOPIC_MAX = 64,
};

typedef struct arb_ctx arb_ctx; /* host-owned, one per instance */
struct event_base;              /* libevent; included by plugins that do I/O */
struct evbuffer;

/* A delivered message. `data` points into the host's queue and is valid only
 * for the duration of the callback (zero-copy fan-out): copy what you keep. */
typedef struct arb_msg {
    const void *data;
    uint32_t len;
    uint16_t topic;
    uint16_t flags;
    uint64_t key; /* partitioning key: instrument, account or host hash */
    /* Where the record sits in Kafka when it came through the Kafka
     * transport; -1 and -1 when it was published in process. */
    int32_t partition;
    int64_t offset;
} arb_msg;

/* Offsets arb_seek() understands besides a real one (librdkafka's values). */
#define ARB_OFFSET_BEGINNING (-2)
#define ARB_OFFSET_END (-1)

typedef void (*arb_msg_fn)(void *user, const arb_msg *msg);

/* Bus keys lo to hi, both included: what a subscription made with
 * arb_subscribe_keys() reads. */
typedef struct arb_key_range {
    uint64_t lo, hi;
} arb_key_range;

/* The run a host belongs to (docs/ARCHITECTURE.md, "Runs"): one market from
 * its start until the user ends it. Every stored row carries the run's id;
 * ids a plugin makes must be unique within the run, across restarts, so a
 * plugin that numbers things mixes in `epoch`. */
typedef struct arb_run_info {
    uint64_t id;            /* unique across runs, never 0, below 2^63 (a SQL bigint) */
    uint32_t epoch;         /* this host's earlier starts in this run: 0 on its first */
    uint32_t resumed;       /* 1: this start resumed the run; 0: it began it */
    int64_t started_at;     /* wall-clock ns when the run began */
    char name[64];          /* the user's name for the run, or "" */
    char config_digest[17]; /* this host's configuration: FNV-1a 64 of the files, hex */
} arb_run_info;
typedef void (*arb_timer_fn)(void *user);
typedef void (*arb_batch_fn)(void *user);
/* A Kafka partition of `topic` was assigned to this host (assigned = 1) or
 * is being taken away (0). On assignment it runs before any record of the
 * partition is delivered, so an arb_seek() made here decides where delivery
 * starts. On revocation it runs after every delivered record of the
 * partition was handled and before its offset is committed. */
typedef void (*arb_partition_fn)(void *user, int topic, int partition, int assigned);
/* One record of arb_read_range(); non-zero stops the read (and is returned). */
typedef int (*arb_read_fn)(void *user, const arb_msg *msg);
/* Iterates config entries; return non-zero to stop. */
typedef int (*arb_cfg_fn)(void *user, const char *key, const char *value);
/* Serves an admin request routed to /plugins/<instance>/<path>. Writes the
 * body to `out` and returns the HTTP status. `query` may be NULL. */
typedef int (*arb_admin_fn)(void *user, const char *method, const char *path, const char *query,
                            struct evbuffer *out);

/* ---- metrics: plain memory the host reads, one writer (the instance) ---- */

typedef struct arb_counter {
    _Atomic uint64_t value;
} arb_counter;

typedef struct arb_gauge {
    _Atomic int64_t value;
} arb_gauge;

/* Latency histogram in nanoseconds: bucket i counts values v with
 * 2^(i-1) <= v < 2^i (bucket 0 counts v == 0). */
#define ARB_HIST_BUCKETS 48
typedef struct arb_histogram {
    _Atomic uint64_t bucket[ARB_HIST_BUCKETS];
    _Atomic uint64_t count;
    _Atomic uint64_t sum;
} arb_histogram;

/* Single-writer increments: a load and a store, no locked instruction. */
static inline void arb_counter_add(arb_counter *c, uint64_t n)
{
    atomic_store_explicit(&c->value, atomic_load_explicit(&c->value, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline void arb_gauge_set(arb_gauge *g, int64_t v)
{
    atomic_store_explicit(&g->value, v, memory_order_relaxed);
}

static inline void arb_hist_observe(arb_histogram *h, uint64_t ns)
{
    unsigned b = ns ? 64u - (unsigned)__builtin_clzll(ns) : 0u;
    if (b >= ARB_HIST_BUCKETS)
        b = ARB_HIST_BUCKETS - 1;
    atomic_store_explicit(&h->bucket[b],
                          atomic_load_explicit(&h->bucket[b], memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&h->count, atomic_load_explicit(&h->count, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&h->sum, atomic_load_explicit(&h->sum, memory_order_relaxed) + ns,
                          memory_order_relaxed);
}

/* ---- the host API table ---- */

typedef struct arb_host_api {
    uint32_t abi_version; /* ARB_ABI_VERSION of the host */
    uint32_t size;        /* sizeof(arb_host_api) as the host was built */

    const char *(*instance_name)(arb_ctx *ctx);
    void (*vlog)(arb_ctx *ctx, int level, const char *fmt, va_list ap);

    /* Topics and the bus. publish copies the bytes; returns ARB_EFULL if any
     * subscriber's queue lacks room (then nothing was enqueued anywhere).
     *
     * When a publish reaches its subscribers (the in-process bus; a topic
     * that goes through Kafka or the journal comes back from there):
     *   - made inside a delivery callback (arb_msg_fn): the record is
     *     queued; subscribers on the publisher's own loop get it after the
     *     callback returns (never inside it), and each other loop that got
     *     records is woken once, when the outermost delivery on the thread
     *     returns, however many records it got (a wake is sent only to a
     *     loop idle in its event loop; a busy one finds the records when it
     *     next drains);
     *   - made inside arb_batch (below): the same, at the end of the batch;
     *   - made anywhere else (a timer, an admin route, start, a libevent
     *     event of the plugin's own): delivered at once to the subscribers
     *     on the publisher's own loop, and each other loop it reached is
     *     woken before publish returns: one wake per publish.
     * A wake is a system call on the publisher's thread and, on a busy
     * machine, a context switch for the woken one: a plugin that publishes
     * a burst from its own events should publish it inside arb_batch. */
    int (*topic)(arb_ctx *ctx, const char *name);
    int (*publish)(arb_ctx *ctx, int topic, uint64_t key, const void *data, size_t len);
    int (*subscribe)(arb_ctx *ctx, int topic, arb_msg_fn fn, void *user);
    int (*unsubscribe)(arb_ctx *ctx, int subscription);

    /* Timers on the instance's loop; interval 0 with repeat=0 runs once soon. */
    int (*timer_start)(arb_ctx *ctx, uint64_t interval_ns, int repeat, arb_timer_fn fn, void *user);
    int (*timer_stop)(arb_ctx *ctx, int timer);

    /* Config. `section` NULL means the instance's own section. On a bad
     * value these log an error naming file, line, section and key, and
     * return ARB_EINVAL; a missing key yields the default and ARB_OK. */
    int (*cfg_str)(arb_ctx *ctx, const char *section, const char *key, const char *def,
                   const char **out);
    int (*cfg_int)(arb_ctx *ctx, const char *section, const char *key, int64_t def, int64_t min,
                   int64_t max, int64_t *out);
    int (*cfg_double)(arb_ctx *ctx, const char *section, const char *key, double def, double min,
                      double max, double *out);
    int (*cfg_bool)(arb_ctx *ctx, const char *section, const char *key, int def, int *out);
    /* Every key of a section, in file order. A key it shows is not thereby
     * known: one no cfg_str/int/double/bool call reads is an unknown key,
     * refused at load, so a plugin that takes keys by pattern (api_key.NAME)
     * reads each one it takes. */
    int (*cfg_each)(arb_ctx *ctx, const char *section, arb_cfg_fn fn, void *user);
    /* Every section whose name starts with `prefix` (e.g. "instrument "):
     * fn gets the whole section name as `key` and NULL as `value`. */
    int (*cfg_sections)(arb_ctx *ctx, const char *prefix, arb_cfg_fn fn, void *user);
    /* A plugin's own validation error about `key`, reported with file:line;
     * returns ARB_EINVAL so it can be the plugin's return value. */
    int (*cfg_vreject)(arb_ctx *ctx, const char *section, const char *key, const char *fmt,
                       va_list ap);

    /* Metrics, owned by the instance and freed by the host. `labels` is a
     * Prometheus label list without braces (e.g. "reason=\"bad_tick\"") or NULL. */
    arb_counter *(*counter)(arb_ctx *ctx, const char *name, const char *labels, const char *help);
    arb_gauge *(*gauge)(arb_ctx *ctx, const char *name, const char *labels, const char *help);
    arb_histogram *(*histogram)(arb_ctx *ctx, const char *name, const char *labels,
                                const char *help);

    /* The libevent base of the instance's loop, for I/O the plugin owns. */
    struct event_base *(*event_base)(arb_ctx *ctx);

    /* Time in ns since the epoch: simulated time once a clock has set it,
     * wall-clock time otherwise. set_time is for the clock plugin. */
    int64_t (*now)(arb_ctx *ctx);
    void (*set_time)(arb_ctx *ctx, int64_t sim_ns);

    /* Ask the host to stop cleanly and exit with `code`. */
    void (*shutdown)(arb_ctx *ctx, int code);

    /* Serve GET/POST /plugins/<instance>/<path> on the admin endpoint. */
    int (*admin_route)(arb_ctx *ctx, const char *path, arb_admin_fn fn, void *user);

    /* Host identity, unique across hosts: used to make ids unique. */
    uint64_t (*host_id)(arb_ctx *ctx);

    /* The instance's health as /healthz reports it (default: healthy).
     * `detail` is a short phrase, e.g. "database down, retrying in 4s". */
    void (*set_health)(arb_ctx *ctx, int healthy, const char *detail);

    /* Backpressure: while paused, nothing more is delivered to this instance;
     * records for it wait in the host's queues (in order), publishers to it
     * then see ARB_EFULL, and Kafka partitions stop fetching. Records
     * queued for other instances on the same thread wait too, so an
     * instance that pauses should have a thread of its own. */
    int (*pause)(arb_ctx *ctx, int paused);

    /* For consumers that keep their own Kafka positions (the recorder) and
     * for partition owners (matcher scale-out). Only for instances on thread
     * 0, where the Kafka transport runs (ARB_ESTATE elsewhere); ARB_ENOENT
     * when the topic does not come through Kafka in this host.
     * seek: the next record delivered from topic/partition is the one at
     * `offset` (or ARB_OFFSET_BEGINNING/END); applied when the partition is
     * next assigned if it is not assigned now. Every consumer of the topic
     * in this host sees the same stream, so seek only in a host where the
     * instance is the topic's only consumer. */
    int (*seek)(arb_ctx *ctx, int topic, int partition, int64_t offset);
    /* Partition assignment notifications (one registration per instance). */
    int (*on_partitions)(arb_ctx *ctx, arb_partition_fn fn, void *user);
    /* Reads the last record of a Kafka partition (blocking up to timeout_ns):
     * *bytes is malloc'd (the caller frees), *offset is its offset.
     * ARB_ENOENT when the partition is empty, ARB_ERROR on timeout. */
    int (*read_last)(arb_ctx *ctx, int topic, int partition, int64_t timeout_ns, void **bytes,
                     size_t *len, int64_t *offset);
    /* The same reader, for an owner that must know what a previous owner
     * got into Kafka. watermarks: the partition's low and high offsets
     * (ARB_ENOENT: no such partition). read_range: its records [from, to)
     * in order (to = ARB_OFFSET_END: up to the high offset when called),
     * each as an arb_msg with topic, key, partition and offset; blocking up
     * to timeout_ns for each record (a read that keeps receiving records goes
     * on however long it takes), ARB_ERROR when one does not come in time.
     * partition_of: the
     * partition the host's producer puts `key` in. */
    int (*watermarks)(arb_ctx *ctx, int topic, int partition, int64_t timeout_ns, int64_t *lo,
                      int64_t *hi);
    int (*read_range)(arb_ctx *ctx, int topic, int partition, int64_t from, int64_t to,
                      int64_t timeout_ns, arb_read_fn fn, void *user);
    int (*partition_of)(arb_ctx *ctx, int topic, uint64_t key, int64_t timeout_ns,
                        int32_t *partition);

    /* The run this host belongs to; ARB_ESTATE before the host decided it
     * (always decided by the time any instance starts; over Kafka not yet
     * at create(): read it in start()). */
    int (*run_info)(arb_ctx *ctx, arb_run_info *out);

    /* This instance will never read records of `topic`'s `partition` below
     * `offset` again: what it published before the call (a snapshot) covers
     * them. For the topics in [bus] journal_trim (default order_commands,
     * whose history only the matcher reads), the monolith's journal removes
     * the segments below the lowest mark of every instance that trims the
     * topic and below local delivery, once what the caller published before
     * the call is on disk. Kafka keeps what the cluster's retention says and
     * ignores the call. ARB_ENOENT: the topic does not go through a
     * transport. */
    int (*trim)(arb_ctx *ctx, int topic, int partition, int64_t offset);

    /* Runs fn(user) as one batch: the publishes fn makes are queued, then
     * delivered to subscribers on this loop after fn returns, and each
     * other loop that got records is woken once, however many there were.
     * Order within a topic is the order of the publishes. Inside a callback
     * the host runs (already batched, see publish) it only calls fn. */
    int (*batch)(arb_ctx *ctx, arb_batch_fn fn, void *user);

    /* read_range for partitions 0..n-1 at once: [from[p], to[p]) each
     * (ARB_OFFSET_END: the high offset when called), each partition in
     * order, partitions interleaved; the broker serves them in the same
     * fetches, so a whole topic reads in the time of its longest partition.
     * The same timeout per record. arb_replay_read uses it. */
    int (*read_ranges)(arb_ctx *ctx, int topic, int n, const int64_t *from, const int64_t *to,
                       int64_t timeout_ns, arb_read_fn fn, void *user);

    /* subscribe, for only the records of `topic` whose key (arb_msg.key)
     * lies in one of the n ranges: the subscription is handed those, in the
     * order subscribe would hand them, and no other. Without it (subscribe)
     * a subscription reads every key. The keys by topic are in
     * docs/ARCHITECTURE.md: the instrument's arb_instrument_key for
     * market_data, trade_executed and market_events, the account for
     * order_events. On a participant's latency link (docs/ARCHITECTURE.md)
     * a venue's record is held for the instance only if one of its
     * subscriptions to the topic reads its key, and delivered, when due, to
     * those that read it then. A record none of them reads is neither held
     * nor delivered, but still takes its place on the link (its delay is
     * drawn, and what follows waits behind it as it would), so the records
     * the instance does read reach it at the same times as without the
     * ranges: a run whose plugins ignore the other keys anyway stays the
     * same run. The ranges are copied; n >= 1 and lo <= hi, else
     * ARB_EINVAL. Over a transport every record is still fetched: the
     * filter is this host's delivery. */
    int (*subscribe_keys)(arb_ctx *ctx, int topic, const arb_key_range *keys, size_t n,
                          arb_msg_fn fn, void *user);

    /* In stop(): 1 if a successor adopted this instance's state (a hot
     * reload, or a SIGHUP change, whose new instance's restore() returned
     * ARB_OK), or if this instance never went live (a reload that was
     * refused after it was prepared: the instance it was to replace runs
     * on); else 0: the instance is removed, the host is stopping, the
     * plugin has no save/restore, or the successor refused the state and
     * starts empty. What the instance holds outside the process (an agent's
     * open orders) is its own to release unless this says 1. A staged
     * instance's timers run only once it is live. Outside stop() it is 0. */
    int (*state_adopted)(arb_ctx *ctx);

    /* In create(): this instance owns [first, first + count) of a resource
     * named by one of its config keys (an agent's accounts: "account").
     * The host refuses a configuration in which two instances' claims of
     * the same name overlap (at start, --check and SIGHUP, naming both
     * sections' lines): two agents trading one account would each count
     * the other's fills as its own. ARB_EINVAL: count is 0 or the name is
     * empty or too long (23 bytes at most). */
    int (*claim)(arb_ctx *ctx, const char *what, uint64_t first, uint64_t count);

    void (*spare[10])(void); /* room to grow without an ABI bump */
} arb_host_api;

/* The context the host hands each instance. Only `api` is public. */
struct arb_ctx {
    const arb_host_api *api;
};

/* ---- the plugin descriptor ---- */

typedef struct arb_plugin {
    uint32_t abi_version;   /* ARB_ABI_VERSION the plugin was built against */
    uint32_t size;          /* sizeof(arb_plugin) as the plugin was built */
    const char *name;       /* e.g. "matcher" */
    const char *version;    /* e.g. "1.2.0" */
    uint32_t state_version; /* format of the bytes save() writes */
    uint32_t flags;
    /* NULL-terminated topic names, for the plan `arb-host --check` prints. */
    const char *const *publishes;
    const char *const *subscribes;

    int (*create)(arb_ctx *ctx, void **self);
    int (*start)(void *self);
    void (*stop)(void *self);
    void (*destroy)(void *self);
    /* Hot reload. save() returns malloc'd bytes the host frees; restore() is
     * given the old plugin's state_version and may refuse (ARB_EREFUSED).
     * Either may be NULL: then the plugin is reloaded without state. */
    int (*save)(void *self, void **bytes, size_t *len);
    int (*restore)(void *self, uint32_t state_version, const void *bytes, size_t len);

    void (*spare_fn[8])(void);
    void *spare[8];
} arb_plugin;

typedef const arb_plugin *(*arb_plugin_entry_fn)(void);

/* ---- wrappers so plugin code reads like plain calls ---- */

static inline const char *arb_instance_name(arb_ctx *c) { return c->api->instance_name(c); }

__attribute__((format(printf, 3, 4))) static inline void arb_log(arb_ctx *c, int level,
                                                                 const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    c->api->vlog(c, level, fmt, ap);
    va_end(ap);
}
#define arb_error(c, ...) arb_log((c), ARB_LOG_ERROR, __VA_ARGS__)
#define arb_warn(c, ...) arb_log((c), ARB_LOG_WARN, __VA_ARGS__)
#define arb_info(c, ...) arb_log((c), ARB_LOG_INFO, __VA_ARGS__)
#define arb_debug(c, ...) arb_log((c), ARB_LOG_DEBUG, __VA_ARGS__)

static inline int arb_topic(arb_ctx *c, const char *name) { return c->api->topic(c, name); }
static inline int arb_publish(arb_ctx *c, int topic, uint64_t key, const void *data, size_t len)
{
    return c->api->publish(c, topic, key, data, len);
}
static inline int arb_subscribe(arb_ctx *c, int topic, arb_msg_fn fn, void *user)
{
    return c->api->subscribe(c, topic, fn, user);
}
static inline int arb_unsubscribe(arb_ctx *c, int sub) { return c->api->unsubscribe(c, sub); }

/* See arb_host_api.subscribe_keys. A host too old to have it (its table is
 * shorter) subscribes to every key of the topic: a plugin must not rely on
 * the filter to be correct, and ignores the keys it does not read itself
 * (the agents' callbacks in arb/agent.h do). Either way the ranges are
 * checked first. */
static inline int arb_subscribe_keys(arb_ctx *c, int topic, const arb_key_range *keys, size_t n,
                                     arb_msg_fn fn, void *user)
{
    const arb_host_api *api = c->api;
    if (!keys || n == 0)
        return ARB_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (keys[i].lo > keys[i].hi)
            return ARB_EINVAL;
    if (api->size < offsetof(arb_host_api, subscribe_keys) + sizeof api->subscribe_keys ||
        !api->subscribe_keys)
        return api->subscribe(c, topic, fn, user);
    return api->subscribe_keys(c, topic, keys, n, fn, user);
}

static inline int arb_timer_start(arb_ctx *c, uint64_t interval_ns, int repeat, arb_timer_fn fn,
                                  void *user)
{
    return c->api->timer_start(c, interval_ns, repeat, fn, user);
}
static inline int arb_timer_stop(arb_ctx *c, int timer) { return c->api->timer_stop(c, timer); }

static inline int arb_cfg_str(arb_ctx *c, const char *key, const char *def, const char **out)
{
    return c->api->cfg_str(c, NULL, key, def, out);
}
static inline int arb_cfg_int(arb_ctx *c, const char *key, int64_t def, int64_t min, int64_t max,
                              int64_t *out)
{
    return c->api->cfg_int(c, NULL, key, def, min, max, out);
}
static inline int arb_cfg_double(arb_ctx *c, const char *key, double def, double min, double max,
                                 double *out)
{
    return c->api->cfg_double(c, NULL, key, def, min, max, out);
}
static inline int arb_cfg_bool(arb_ctx *c, const char *key, int def, int *out)
{
    return c->api->cfg_bool(c, NULL, key, def, out);
}
static inline int arb_cfg_str_in(arb_ctx *c, const char *section, const char *key, const char *def,
                                 const char **out)
{
    return c->api->cfg_str(c, section, key, def, out);
}
static inline int arb_cfg_int_in(arb_ctx *c, const char *section, const char *key, int64_t def,
                                 int64_t min, int64_t max, int64_t *out)
{
    return c->api->cfg_int(c, section, key, def, min, max, out);
}
static inline int arb_cfg_each(arb_ctx *c, const char *section, arb_cfg_fn fn, void *user)
{
    return c->api->cfg_each(c, section, fn, user);
}
static inline int arb_cfg_sections(arb_ctx *c, const char *prefix, arb_cfg_fn fn, void *user)
{
    return c->api->cfg_sections(c, prefix, fn, user);
}
__attribute__((format(printf, 4, 5))) static inline int
arb_cfg_reject_in(arb_ctx *c, const char *section, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = c->api->cfg_vreject(c, section, key, fmt, ap);
    va_end(ap);
    return rc;
}
#define arb_cfg_reject(c, key, ...) arb_cfg_reject_in((c), NULL, (key), __VA_ARGS__)

static inline arb_counter *arb_counter_new(arb_ctx *c, const char *name, const char *labels,
                                           const char *help)
{
    return c->api->counter(c, name, labels, help);
}
static inline arb_gauge *arb_gauge_new(arb_ctx *c, const char *name, const char *labels,
                                       const char *help)
{
    return c->api->gauge(c, name, labels, help);
}
static inline arb_histogram *arb_histogram_new(arb_ctx *c, const char *name, const char *labels,
                                               const char *help)
{
    return c->api->histogram(c, name, labels, help);
}

static inline struct event_base *arb_event_base(arb_ctx *c) { return c->api->event_base(c); }
static inline int64_t arb_now(arb_ctx *c) { return c->api->now(c); }
static inline void arb_set_time(arb_ctx *c, int64_t ns) { c->api->set_time(c, ns); }
static inline void arb_shutdown(arb_ctx *c, int code) { c->api->shutdown(c, code); }
static inline int arb_admin_route(arb_ctx *c, const char *path, arb_admin_fn fn, void *user)
{
    return c->api->admin_route(c, path, fn, user);
}
static inline uint64_t arb_host_id(arb_ctx *c) { return c->api->host_id(c); }
static inline void arb_set_health(arb_ctx *c, int healthy, const char *detail)
{
    c->api->set_health(c, healthy, detail);
}

static inline int arb_pause(arb_ctx *c, int paused) { return c->api->pause(c, paused); }
static inline int arb_seek(arb_ctx *c, int topic, int partition, int64_t offset)
{
    return c->api->seek(c, topic, partition, offset);
}
static inline int arb_on_partitions(arb_ctx *c, arb_partition_fn fn, void *user)
{
    return c->api->on_partitions(c, fn, user);
}
static inline int arb_read_last(arb_ctx *c, int topic, int partition, int64_t timeout_ns,
                                void **bytes, size_t *len, int64_t *offset)
{
    return c->api->read_last(c, topic, partition, timeout_ns, bytes, len, offset);
}
static inline int arb_watermarks(arb_ctx *c, int topic, int partition, int64_t timeout_ns,
                                 int64_t *lo, int64_t *hi)
{
    return c->api->watermarks(c, topic, partition, timeout_ns, lo, hi);
}
static inline int arb_read_range(arb_ctx *c, int topic, int partition, int64_t from, int64_t to,
                                 int64_t timeout_ns, arb_read_fn fn, void *user)
{
    return c->api->read_range(c, topic, partition, from, to, timeout_ns, fn, user);
}
/* [from[p], to[p]) of partitions 0..n-1: with the host's read_ranges (all at
 * once, interleaved) where it has one, else one partition after another
 * with read_range (a host too old for it). *done, if not NULL: how many
 * partitions, from 0, were read whole: n on ARB_OK; after a failure the
 * ones before it in the fallback, and none with read_ranges. */
static inline int arb_read_ranges(arb_ctx *c, int topic, int n, const int64_t *from,
                                  const int64_t *to, int64_t timeout_ns, arb_read_fn fn, void *user,
                                  int *done)
{
    const arb_host_api *api = c->api;
    int rc = ARB_OK, p = 0;
    if (api->size >= offsetof(arb_host_api, read_ranges) + sizeof api->read_ranges &&
        api->read_ranges) {
        rc = api->read_ranges(c, topic, n, from, to, timeout_ns, fn, user);
        p = rc == ARB_OK ? n : 0;
    } else {
        for (; p < n; p++)
            if (from[p] < to[p] &&
                (rc = api->read_range(c, topic, p, from[p], to[p], timeout_ns, fn, user)))
                break;
    }
    if (done)
        *done = p;
    return rc;
}
static inline int arb_partition_of(arb_ctx *c, int topic, uint64_t key, int64_t timeout_ns,
                                   int32_t *partition)
{
    return c->api->partition_of(c, topic, key, timeout_ns, partition);
}

/* The run, or ARB_ESTATE from a host too old to say (its table is shorter);
 * then *out is zeroed. */
static inline int arb_run(arb_ctx *c, arb_run_info *out)
{
    const arb_host_api *api = c->api;
    if (api->size < offsetof(arb_host_api, run_info) + sizeof api->run_info || !api->run_info) {
        *out = (arb_run_info){0};
        return ARB_ESTATE;
    }
    return api->run_info(c, out);
}

/* See arb_host_api.trim; ARB_ESTATE from a host too old to have it. */
static inline int arb_trim(arb_ctx *c, int topic, int partition, int64_t offset)
{
    const arb_host_api *api = c->api;
    if (api->size < offsetof(arb_host_api, trim) + sizeof api->trim || !api->trim)
        return ARB_ESTATE;
    return api->trim(c, topic, partition, offset);
}

/* One batch of publishes (arb_host_api.batch). A host too old to batch (its
 * table is shorter) runs fn all the same, each publish then delivered as it
 * is made; ARB_ESTATE says so. */
/* api->claim; ARB_OK on a host without it (nothing is checked there). */
static inline int arb_claim(arb_ctx *c, const char *what, uint64_t first, uint64_t count)
{
    const arb_host_api *api = c->api;
    return api->size >= offsetof(arb_host_api, claim) + sizeof api->claim && api->claim
               ? api->claim(c, what, first, count)
               : ARB_OK;
}

/* api->state_adopted; 0 on a host without it (release: the safe side). */
static inline int arb_state_adopted(arb_ctx *c)
{
    const arb_host_api *api = c->api;
    return api->size >= offsetof(arb_host_api, state_adopted) + sizeof api->state_adopted &&
                   api->state_adopted
               ? api->state_adopted(c)
               : 0;
}

static inline int arb_batch(arb_ctx *c, arb_batch_fn fn, void *user)
{
    const arb_host_api *api = c->api;
    if (api->size < offsetof(arb_host_api, batch) + sizeof api->batch || !api->batch) {
        fn(user);
        return ARB_ESTATE;
    }
    return api->batch(c, fn, user);
}

#ifdef __cplusplus
}
#endif
#endif /* ARB_PLUGIN_H */

/*
 * host.c -- the host's lifecycle: from configuration to a plan of instances,
 * start in order, run, stop in reverse order with queues drained, and SIGHUP
 * reconfiguration as prepare, then commit (added instances start, removed
 * ones stop, changed ones are replaced with their state carried over, the
 * rest are left alone; or nothing changes at all). Also the log sink every
 * instance writes to.
 * Not here: the plugin-facing API (instance.c), delivery (bus.c), HTTP
 * (admin.c), argument parsing (main.c).
 */
#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arb/wire.h>

#include "host.h"
#include "latency.h"
#include "transport.h"

static const char *const host_keys[] = {
    "id",          "admin",   "admin_token", "log_level",        "plugin_dir",      "threads",
    "announce_ms", "new_run", "run_name",    "admin_token_file", "reload_any_path", NULL};
/* [bus] keys: ours, the Kafka transport's (host/kafka.h), the journal's
 * (host/journal.h). */
static const char *const bus_keys[] = {"transport",
                                       "queue_bytes",
                                       "brokers",
                                       "kafka_topics",
                                       "group",
                                       "consume",
                                       "topic_prefix",
                                       "partitions",
                                       "topic_partitions",
                                       "replication",
                                       "create_topics",
                                       "commit_interval_ms",
                                       "max_inflight",
                                       "revoke_timeout_ms",
                                       "flush_timeout_ms",
                                       "journal",
                                       "journal_topics",
                                       "journal_fsync",
                                       "journal_fsync_ms",
                                       "journal_segment_bytes",
                                       "journal_buffer_bytes",
                                       "journal_latest_only",
                                       "journal_trim",
                                       NULL};

int64_t arbh_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t arbh_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void arbh_vlog(arbh_host *h, const char *who, int level, const char *fmt, va_list ap)
{
    static const char *const names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    if (h && level > h->log_level)
        return;
    if (level < 0 || level > ARB_LOG_DEBUG)
        level = ARB_LOG_ERROR;
    char line[2048];
    int64_t now = arbh_wall_ns();
    time_t secs = (time_t)(now / 1000000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    int off = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    off += snprintf(line + off, sizeof line - (size_t)off, ".%03dZ %-5s [%s] ",
                    (int)(now / 1000000 % 1000), names[level], who ? who : "host");
    if (off < (int)sizeof line)
        off += vsnprintf(line + off, sizeof line - (size_t)off, fmt, ap);
    if (off >= (int)sizeof line - 1)
        off = (int)sizeof line - 2;
    line[off++] = '\n';
    /* One write per line so lines from several threads do not interleave. */
    ssize_t w = write(STDERR_FILENO, line, (size_t)off);
    (void)w;
}

void arbh_log(arbh_host *h, const char *who, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    arbh_vlog(h, who, level, fmt, ap);
    va_end(ap);
}

static uint64_t fnv1a(const char *s)
{
    uint64_t x = 1469598103934665603ull;
    for (; *s; s++)
        x = (x ^ (uint8_t)*s) * 1099511628211ull;
    return x;
}

static bool known_key(const char *const *keys, const char *k)
{
    for (; *keys; keys++)
        if (!strcmp(*keys, k))
            return true;
    return false;
}

static int check_keys(arbh_config *cfg, const char *section, const char *const *keys, char *err,
                      size_t n)
{
    for (size_t i = 0; i < cfg->count; i++) {
        arbh_cfg_entry *e = &cfg->entries[i];
        if (strcmp(e->section, section))
            continue;
        if (!known_key(keys, e->key)) {
            snprintf(err, n, "%s:%d: unknown key '%s' in [%s]", e->file, e->line, e->key, section);
            return ARB_EINVAL;
        }
        e->used = true;
    }
    return ARB_OK;
}

static int parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    if (*end == 'k' || *end == 'K')
        v <<= 10, end++;
    else if (*end == 'm' || *end == 'M')
        v <<= 20, end++;
    else if (*end == 'g' || *end == 'G')
        v <<= 30, end++;
    if (*end)
        return -1;
    *out = (size_t)v;
    return 0;
}

__attribute__((format(printf, 6, 7))) static int entry_error(arbh_config *cfg, const char *section,
                                                             const char *key, char *err, size_t n,
                                                             const char *fmt, ...)
{
    arbh_cfg_entry *e = arbh_config_find(cfg, section, key);
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(err, n, "%s:%d: [%s] %s: %s", e ? e->file : "?", e ? e->line : 0, section, key, msg);
    return ARB_EINVAL;
}

static void kafka_log(void *user, int level, const char *msg)
{
    arbh_log(user, "kafka", level, "%s", msg);
}

/* The transport cannot go on (kafka.h, arbh_kafka_set_stop): on loop 0. */
static void kafka_stop(void *user, const char *why)
{
    arbh_host *h = user;
    (void)why; /* logged by the transport */
    h->exit_code = ARBH_EXIT_CONFLICT;
    atomic_store(&h->stopping, 1);
    event_base_loopbreak(h->loops[0]->base);
}

static void journal_log(void *user, int level, const char *msg)
{
    arbh_log(user, "journal", level, "%s", msg);
}

static int kafka_deliver(void *user, const char *topic, int32_t partition, int64_t offset,
                         uint64_t key, const void *data, size_t len, void (*done)(void *token),
                         void *token)
{
    return arbh_bus_inject(user, topic, partition, offset, key, data, len, done, token);
}

typedef struct part_call {
    arbh_instance *in;
    int topic, partition, assigned;
} part_call;

static void part_on_loop(void *arg)
{
    part_call *c = arg;
    arbh_running prev = arbh_enter(c->in, ARBH_CB_PARTITIONS, -1);
    c->in->part_fn(c->in->part_user, c->topic, c->partition, c->assigned);
    arbh_leave(prev);
}

/* The transport calls this on loop 0. Kafka's partition owners are there
 * (arb_on_partitions refuses others); the journal's may be on any loop, and
 * are told on their own, loop 0 waiting, so a seek they make still comes
 * before the partition's first record. */
static void xport_partition(void *user, const char *topic, int partition, int assigned)
{
    arbh_host *h = user;
    int id = arbh_bus_topic(h, topic);
    for (size_t i = 0; i < h->ninstances && id >= 0; i++) {
        arbh_instance *in = h->instances[i];
        if (!in->part_fn || in->staging || in->state != INST_RUNNING)
            continue;
        part_call c = {in, id, partition, assigned};
        arbh_loop_call(in->loop, part_on_loop, &c);
    }
}

/* Ask the consumer for every Kafka topic the instances' descriptors declare
 * before any instance starts, so the first assignment covers them all. */
static void xport_want_declared(arbh_host *h)
{
    for (size_t i = 0; i < h->ninstances; i++) {
        const arbh_instance *in = h->instances[i];
        for (const char *const *s = in->desc ? in->desc->subscribes : NULL; s && *s; s++)
            if (arbh_xport_routes(h, *s))
                arbh_xport_want(h, *s);
    }
}

static int read_host_settings(arbh_host *h, char *err, size_t n)
{
    arbh_config *cfg = h->cfg;
    int rc = check_keys(cfg, "host", host_keys, err, n);
    if (rc == ARB_OK)
        rc = check_keys(cfg, "bus", bus_keys, err, n);
    if (rc)
        return rc;
    const char *id = arbh_config_get(cfg, "host", "id", "arb");
    snprintf(h->id, sizeof h->id, "%s", id);
    h->host_id = fnv1a(h->id);
    const char *lvl = arbh_config_get(cfg, "host", "log_level", "info");
    static const char *const levels[] = {"error", "warn", "info", "debug"};
    h->log_level = -1;
    for (int i = 0; i < 4; i++)
        if (!strcmp(lvl, levels[i]))
            h->log_level = i;
    if (h->log_level < 0)
        return entry_error(cfg, "host", "log_level", err, n, "'%s': expected error|warn|info|debug",
                           lvl);
    snprintf(h->admin_addr, sizeof h->admin_addr, "%s", arbh_config_get(cfg, "host", "admin", ""));
    snprintf(h->admin_token, sizeof h->admin_token, "%s",
             arbh_config_get(cfg, "host", "admin_token", ""));
    const char *ann = arbh_config_get(cfg, "host", "announce_ms", "2000");
    char *end;
    long ms = strtol(ann, &end, 10);
    if (*end || end == ann || ms < 0 || ms > 3600000)
        return entry_error(cfg, "host", "announce_ms", err, n,
                           "'%s': expected milliseconds 0..3600000 (0: do not announce)", ann);
    h->announce_ns = (int64_t)ms * 1000000;
    const char *transport = arbh_config_get(cfg, "bus", "transport", "inproc");
    if (!strcmp(transport, "kafka")) {
        if ((rc = arbh_kafka_new(cfg, h->id, &h->kafka, err, n)) != ARB_OK)
            return rc;
        arbh_kafka_set_log(h->kafka, kafka_log, h);
        arbh_kafka_set_stop(h->kafka, kafka_stop, h);
    } else if (strcmp(transport, "inproc")) {
        return entry_error(cfg, "bus", "transport", err, n, "'%s': expected inproc or kafka",
                           transport);
    }
    const char *journal = arbh_config_get(cfg, "bus", "journal", "");
    if (journal[0] && h->kafka)
        return entry_error(cfg, "bus", "journal", err, n,
                           "a journal is for the in-process bus; Kafka keeps the log itself");
    const char *nr = arbh_config_get(cfg, "host", "new_run", "false");
    if (strcmp(nr, "true") && strcmp(nr, "false"))
        return entry_error(cfg, "host", "new_run", err, n, "'%s': expected true or false", nr);
    if (journal[0] && (rc = arbh_journal_new(cfg, journal_log, h, &h->journal, err, n)))
        return rc;
    if ((rc = arbh_run_decide(h, err, n)) != ARB_OK)
        return rc;
    h->queue_bytes = ARBH_DEFAULT_QUEUE_BYTES;
    const char *qb = arbh_config_get(cfg, "bus", "queue_bytes", NULL);
    if (qb && (parse_size(qb, &h->queue_bytes) || h->queue_bytes < 65536 ||
               h->queue_bytes > (1ull << 32)))
        return entry_error(cfg, "bus", "queue_bytes", err, n,
                           "'%s': expected a size from 64K to 4G (e.g. 8M)", qb);
    /* Plugin search path: config, environment, then beside the binary. */
    const char *env = getenv("ARB_PLUGIN_DIR");
    const char *cfgdir = arbh_config_get(cfg, "host", "plugin_dir", "");
    snprintf(h->plugin_dirs, sizeof h->plugin_dirs,
             "%.2000s:%.2000s:%s/plugins:%s/../lib/arb/plugins", cfgdir, env ? env : "", h->exe_dir,
             h->exe_dir);
    return ARB_OK;
}

typedef struct plan_ctx {
    arbh_host *h;
    arbh_config *cfg;
    char **names;
    size_t count;
} plan_ctx;

static int collect_plugin(void *user, const char *section)
{
    plan_ctx *p = user;
    char **grown = realloc(p->names, (p->count + 1) * sizeof *grown);
    if (!grown)
        return 1;
    p->names = grown;
    p->names[p->count++] = strdup(section + strlen("plugin "));
    return 0;
}

static void free_names(plan_ctx *p)
{
    for (size_t i = 0; i < p->count; i++)
        free(p->names[i]);
    free(p->names);
}

static int instance_thread(arbh_config *cfg, const char *section, int *out, char *err, size_t n)
{
    const char *t = arbh_config_get(cfg, section, "thread", "0");
    char *end;
    long v = strtol(t, &end, 10);
    if (*end || end == t || v < 0 || v >= ARBH_MAX_LOOPS)
        return entry_error(cfg, section, "thread", err, n, "'%s': expected a loop number 0..%d", t,
                           ARBH_MAX_LOOPS - 1);
    *out = (int)v;
    return ARB_OK;
}

static int add_instance(arbh_host *h, arbh_instance *in)
{
    arbh_instance **grown = realloc(h->instances, (h->ninstances + 1) * sizeof *grown);
    if (!grown)
        return ARB_ENOMEM;
    h->instances = grown;
    h->instances[h->ninstances++] = in;
    return ARB_OK;
}

/* Loads and creates one instance from cfg (on the loop it will live on). */
static bool instance_name_ok(const char *name)
{
    if (!*name || strlen(name) > 64 || !strcmp(name, "host") || !strcmp(name, "test"))
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.'))
            return false;
    return true;
}

static arbh_instance *build_instance(arbh_host *h, arbh_config *cfg, const char *name, bool staged,
                                     char *err, size_t n)
{
    if (!instance_name_ok(name)) {
        char section[300];
        snprintf(section, sizeof section, "plugin %s", name);
        const arbh_cfg_entry *o = arbh_config_section_origin(cfg, section);
        snprintf(err, n,
                 "%s:%d: [plugin %s]: instance names are 1-64 of A-Z a-z 0-9 _ - . and not "
                 "'host' or 'test'",
                 o ? o->file : "?", o ? o->line : 0, name);
        return NULL;
    }
    arbh_instance *in = arbh_instance_new(h, cfg, name);
    if (!in) {
        snprintf(err, n, "out of memory");
        return NULL;
    }
    int thread = 0;
    if (instance_thread(cfg, in->section, &thread, err, n)) {
        arbh_instance_free(in);
        return NULL;
    }
    if (thread >= h->nloops) {
        entry_error(cfg, in->section, "thread", err, n,
                    "loop %d does not exist (this host runs loops 0..%d; set [host] threads)",
                    thread, h->nloops - 1);
        arbh_instance_free(in);
        return NULL;
    }
    in->thread = thread;
    in->loop = h->loops[thread];
    in->staging = staged;
    if (arbh_instance_load(in, err, n) || arbh_instance_create(in, err, n)) {
        arbh_instance_free(in);
        return NULL;
    }
    return in;
}

static int validate_unread(arbh_config *cfg, char *err, size_t n)
{
    bool whole;
    const arbh_cfg_entry *e = arbh_config_first_unread(cfg, &whole);
    if (!e)
        return ARB_OK;
    if (whole)
        snprintf(err, n, "%s:%d: unknown section [%s] (nothing in this process reads it)", e->file,
                 e->line, e->section);
    else
        snprintf(err, n, "%s:%d: unknown key '%s' in [%s]", e->file, e->line, e->key, e->section);
    return ARB_EINVAL;
}

static int keep_config(arbh_host *h, arbh_config *cfg)
{
    arbh_config **grown = realloc(h->configs, (h->nconfigs + 1) * sizeof *grown);
    if (!grown)
        return ARB_ENOMEM;
    h->configs = grown;
    h->configs[h->nconfigs++] = cfg;
    return ARB_OK;
}

static void find_exe_dir(arbh_host *h)
{
    char exe[1024];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k <= 0) {
        snprintf(h->exe_dir, sizeof h->exe_dir, ".");
        return;
    }
    exe[k] = 0;
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = 0;
    snprintf(h->exe_dir, sizeof h->exe_dir, "%s", exe);
}

arbh_host *arbh_host_new(const char *const *files, size_t nfiles, const char *text,
                         const char *const *overrides, size_t noverrides, char *err, size_t n)
{
    arbh_host *h = calloc(1, sizeof *h);
    arbh_config *cfg = calloc(1, sizeof *cfg);
    if (!h || !cfg) {
        free(h);
        free(cfg);
        snprintf(err, n, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&h->metric_mu, NULL);
    h->log_level = ARB_LOG_INFO;
    h->started_at = arbh_wall_ns();
    find_exe_dir(h);
    if (getenv("ARB_EXE_DIR"))
        snprintf(h->exe_dir, sizeof h->exe_dir, "%s", getenv("ARB_EXE_DIR"));
    int rc = text ? arbh_config_load_string(cfg, "<test config>", text, overrides, noverrides)
                  : arbh_config_load(cfg, files, nfiles, overrides, noverrides);
    h->cfg = cfg;
    keep_config(h, cfg);
    if (rc != 0) {
        snprintf(err, n, "%s", cfg->err);
        arbh_host_free(h);
        return NULL;
    }
    for (size_t i = 0; i < nfiles; i++) {
        h->files = realloc(h->files, (h->nfiles + 1) * sizeof *h->files);
        h->files[h->nfiles++] = strdup(files[i]);
    }
    for (size_t i = 0; i < noverrides; i++) {
        h->overrides = realloc(h->overrides, (h->noverrides + 1) * sizeof *h->overrides);
        h->overrides[h->noverrides++] = strdup(overrides[i]);
    }
    if (read_host_settings(h, err, n) != ARB_OK) {
        arbh_host_free(h);
        return NULL;
    }
    /* Loops: as many as [host] threads says, or as the instances need. */
    plan_ctx plan = {h, cfg, NULL, 0};
    arbh_config_sections(cfg, "plugin ", collect_plugin, &plan);
    int nloops = 1;
    for (size_t i = 0; i < plan.count; i++) {
        char section[300];
        int t = 0;
        snprintf(section, sizeof section, "plugin %s", plan.names[i]);
        if (instance_thread(cfg, section, &t, err, n)) {
            free_names(&plan);
            arbh_host_free(h);
            return NULL;
        }
        if (t + 1 > nloops)
            nloops = t + 1;
    }
    const char *threads = arbh_config_get(cfg, "host", "threads", NULL);
    if (threads) {
        char *end;
        long v = strtol(threads, &end, 10);
        if (*end || v < 1 || v > ARBH_MAX_LOOPS || v < nloops) {
            entry_error(cfg, "host", "threads", err, n,
                        "'%s': expected 1..%d loops, at least %d for the instances' thread keys",
                        threads, ARBH_MAX_LOOPS, nloops);
            free_names(&plan);
            arbh_host_free(h);
            return NULL;
        }
        nloops = (int)v;
    }
    if (arbh_bus_init(h) != ARB_OK || arbh_loops_init(h, nloops) != ARB_OK ||
        arbh_bus_init_loops(h) != ARB_OK) {
        snprintf(err, n, "cannot set up event loops: %s", strerror(errno));
        free_names(&plan);
        arbh_host_free(h);
        return NULL;
    }
    h->self = arbh_host_add_pseudo(h, "host");
    arbh_metric *pause = arbh_metric_get(h, NULL, 'h', "arb_reload_pause_ns", "",
                                         "Time an instance's loop was held by a hot reload");
    h->reload_pause = pause ? &pause->u.hist : NULL;
    for (size_t i = 0; i < plan.count; i++) {
        arbh_instance *in = build_instance(h, cfg, plan.names[i], false, err, n);
        if (!in || add_instance(h, in) != ARB_OK) {
            free_names(&plan);
            arbh_host_free(h);
            return NULL;
        }
    }
    free_names(&plan);
    if (arbh_claims_check(h->instances, h->ninstances, err, n) ||
        arbh_latency_configure(h, cfg, err, n) != ARB_OK ||
        validate_unread(cfg, err, n) != ARB_OK) {
        arbh_host_free(h);
        return NULL;
    }
    return h;
}

typedef struct start_call {
    arbh_instance *in;
    char *err;
    size_t n;
    int rc;
} start_call;

static void start_on_loop(void *arg)
{
    start_call *c = arg;
    c->rc = arbh_instance_start(c->in, c->err, c->n);
}

static void stop_on_loop(void *arg) { arbh_instance_stop(arg); }
static void arm_on_loop(void *arg) { arbh_instance_arm_timers(arg); }

static void drain_on_loop(void *arg)
{
    arbh_loop *loop = arg;
    while (arbh_bus_drain(loop, SIZE_MAX))
        ;
}

/* Delivers everything in flight, looping while deliveries cause more. */
static void drain_all(arbh_host *h)
{
    for (int round = 0; round < 64; round++) {
        bool any = false;
        for (int i = 0; i < h->nloops; i++)
            if (arbh_bus_pending(h->loops[i])) {
                any = true;
                arbh_loop_call(h->loops[i], drain_on_loop, h->loops[i]);
            }
        if (!any)
            return;
    }
}

/* ---- service registry: who runs here, on service_registry ---- */

static void announce(arbh_host *h, int status)
{
    size_t np = 0;
    for (size_t i = 0; i < h->ninstances; i++)
        np += !h->instances[i]->is_pseudo;
    if (np > ARB_SERVICE_MAX_PLUGINS)
        np = ARB_SERVICE_MAX_PLUGINS;
    uint8_t *buf = malloc(ARB_SERVICE_LEN(np));
    if (!buf)
        return;
    arb_service s = {0};
    s.status = (uint8_t)status;
    s.n_plugins = (uint16_t)np;
    s.pid = (uint32_t)getpid();
    char id[ARB_SVC_ID_LEN + 1];
    snprintf(id, sizeof id, "%.*s", (int)ARB_SVC_ID_LEN, h->id);
    if (arb_fixstr_set(s.host_id, ARB_SVC_ID_LEN, id))
        arb_fixstr_set(s.host_id, ARB_SVC_ID_LEN, "?");
    char admin[ARB_SVC_ADDR_LEN + 1];
    snprintf(admin, sizeof admin, "%.*s", (int)ARB_SVC_ADDR_LEN, h->admin_addr);
    arb_fixstr_set(s.admin, ARB_SVC_ADDR_LEN, admin);
    s.started_at = h->started_at;
    s.ts = arbh_wall_ns();
    uint32_t len = arb_service_encode(&s, buf, ARB_SERVICE_LEN(np));
    size_t k = 0;
    for (size_t i = 0; i < h->ninstances && k < np; i++) {
        arbh_instance *in = h->instances[i];
        if (in->is_pseudo)
            continue;
        arb_service_plugin p;
        memset(&p, 0, sizeof p);
        char name[ARB_SVC_NAME_LEN + 1], plugin[ARB_SVC_NAME_LEN + 1], ver[ARB_SVC_VER_LEN + 1];
        snprintf(name, sizeof name, "%.*s", (int)ARB_SVC_NAME_LEN, in->name);
        snprintf(plugin, sizeof plugin, "%.*s", (int)ARB_SVC_NAME_LEN, in->desc->name);
        snprintf(ver, sizeof ver, "%.*s", (int)ARB_SVC_VER_LEN, in->desc->version);
        /* Names the wire cannot carry (spaces, non-ASCII) are sent as "?". */
        if (arb_fixstr_set(p.instance, ARB_SVC_NAME_LEN, name))
            arb_fixstr_set(p.instance, ARB_SVC_NAME_LEN, "?");
        if (arb_fixstr_set(p.plugin, ARB_SVC_NAME_LEN, plugin))
            arb_fixstr_set(p.plugin, ARB_SVC_NAME_LEN, "?");
        if (arb_fixstr_set(p.version, ARB_SVC_VER_LEN, ver))
            arb_fixstr_set(p.version, ARB_SVC_VER_LEN, "?");
        char build[ARB_SVC_BUILD_LEN + 1];
        snprintf(build, sizeof build, "%.*s", (int)ARB_SVC_BUILD_LEN, in->build_id);
        if (arb_fixstr_set(p.build_id, ARB_SVC_BUILD_LEN, build))
            memset(p.build_id, 0, ARB_SVC_BUILD_LEN);
        /* An agent's account (after the check of unread keys: reading it
         * here hides no typo), so a gateway in another host names it. */
        const char *acct = arbh_config_get(in->cfg, in->section, "account", NULL);
        char *end;
        unsigned long long v = acct ? strtoull(acct, &end, 10) : 0;
        p.account = acct && *acct >= '0' && *acct <= '9' && !*end ? v : 0;
        p.config_digest = arbh_instance_config_digest(in->cfg, in->section);
        arb_service_put_plugin(buf, (uint32_t)k++, &p);
    }
    if (len)
        arbh_bus_publish(h->self, ARB_TOPIC_SERVICE_REGISTRY, h->host_id, buf, len);
    free(buf);
}

static void announce_tick(void *user) { announce(user, ARB_SVC_ALIVE); }

int arbh_host_start(arbh_host *h, char *err, size_t n)
{
    if (arbh_run_settle(h, err, n) != ARB_OK)
        return ARB_ERROR;
    arbh_log(h, NULL, ARB_LOG_INFO, "run %016llx%s%s, %s (epoch %u)%s%s",
             (unsigned long long)h->run.id, h->run.name[0] ? " " : "", h->run.name,
             h->run.resumed ? "resumed" : "new", h->run.epoch, h->journal ? ", journal " : "",
             h->journal ? arbh_journal_dir(h->journal) : "");
    if (arbh_xport_on(h))
        xport_want_declared(h);
    /* Timers wait until every instance has started and subscribed: else a
     * producer on one loop could run before a consumer on another exists. */
    h->starting = true;
    /* The admin address first: a host that cannot have it (another process
     * holds it) stops before any plugin starts, publishes or binds. Nothing
     * is answered until the main loop runs, after every instance started. */
    if (h->admin_addr[0] && arbh_admin_start(h, err, n) != ARB_OK) {
        h->starting = false;
        return ARB_ERROR;
    }
    if (arbh_loops_start_threads(h) != ARB_OK) {
        snprintf(err, n, "cannot start loop threads: %s", strerror(errno));
        return ARB_ERROR;
    }
    for (size_t i = 0; i < h->ninstances; i++) {
        arbh_instance *in = h->instances[i];
        if (in->is_pseudo)
            continue;
        start_call c = {in, err, n, 0};
        arbh_loop_call(in->loop, start_on_loop, &c);
        if (c.rc != ARB_OK) {
            h->starting = false;
            /* Stop what already runs, newest first, and report the cause. */
            for (size_t j = i; j-- > 0;)
                if (!h->instances[j]->is_pseudo)
                    arbh_loop_call(h->instances[j]->loop, stop_on_loop, h->instances[j]);
            return c.rc;
        }
        arbh_log(h, in->name, ARB_LOG_INFO, "started %s %s on loop %d", in->desc->name,
                 in->desc->version, in->thread);
    }
    h->starting = false;
    for (size_t i = 0; i < h->ninstances; i++)
        arbh_loop_call(h->instances[i]->loop, arm_on_loop, h->instances[i]);
    /* Consume only once every subscriber is in place. */
    if (h->kafka)
        arbh_kafka_set_partition_cb(h->kafka, xport_partition, h);
    if (h->kafka && arbh_kafka_start(h->kafka, h->loops[0]->base, kafka_deliver, h) != ARB_OK) {
        snprintf(err, n, "kafka: cannot start consuming (see the log above)");
        return ARB_ERROR;
    }
    if (h->kafka)
        arbh_run_watch_start(h);
    if (h->journal)
        arbh_journal_set_partition_cb(h->journal, xport_partition, h);
    if (h->journal &&
        arbh_journal_start(h->journal, h->loops[0]->base, kafka_deliver, h) != ARB_OK) {
        snprintf(err, n, "journal: cannot start delivering (see the log above)");
        return ARB_ERROR;
    }
    if (h->announce_ns > 0 && h->self) {
        announce(h, ARB_SVC_ALIVE);
        h->announce_timer =
            arb_timer_start(&h->self->ctx, (uint64_t)h->announce_ns, 1, announce_tick, h);
    }
    return ARB_OK;
}

static void on_signal(int sig, short what, void *arg)
{
    (void)what;
    arbh_host *h = arg;
    if (sig == SIGHUP) {
        char err[1024];
        /* A refusal is logged (and kept for /healthz) by reconfigure itself. */
        arbh_host_reconfigure(h, err, sizeof err);
        return;
    }
    arbh_log(h, NULL, ARB_LOG_INFO, "%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    atomic_store(&h->stopping, 1);
    event_base_loopbreak(h->loops[0]->base);
}

void arbh_host_install_signals(arbh_host *h)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    signal(SIGPIPE, SIG_IGN);
    arbh_crash_install();
    int swept = arbh_image_sweep();
    if (swept)
        arbh_log(h, NULL, ARB_LOG_INFO,
                 "removed %d reload cop%s left in the temporary directory by a host that died",
                 swept, swept == 1 ? "y" : "ies");
    for (int i = 0; i < 3; i++) {
        h->sig_ev[i] = evsignal_new(h->loops[0]->base, sigs[i], on_signal, h);
        if (h->sig_ev[i])
            event_add(h->sig_ev[i], NULL);
    }
}

int arbh_host_run(arbh_host *h)
{
    while (!atomic_load(&h->stopping))
        if (event_base_loop(h->loops[0]->base, EVLOOP_NO_EXIT_ON_EMPTY) < 0)
            break;
    return h->exit_code;
}

void arbh_host_stop(arbh_host *h)
{
    arbh_run_watch_stop(h);
    arbh_admin_stop(h);
    if (h->announce_ns > 0 && h->self && h->self->ntimers) {
        arb_timer_stop(&h->self->ctx, h->announce_timer);
        announce(h, ARB_SVC_TOMBSTONE); /* we are leaving: before anyone stops */
    }
    /* Records already on the loops are handled and reported done while every
     * plugin still runs; then the consumer commits them and leaves the group,
     * so no Kafka record reaches a stopping plugin and none repeats. */
    drain_all(h);
    if (arbh_xport_on(h))
        arbh_bus_poll_done(h);
    if (h->kafka)
        arbh_kafka_stop_consuming(h->kafka);
    if (h->journal)
        arbh_journal_stop_consuming(h->journal);
    for (size_t i = h->ninstances; i-- > 0;) {
        arbh_instance *in = h->instances[i];
        if (in->state == INST_RUNNING) {
            arbh_loop_call(in->loop, stop_on_loop, in);
            arbh_log(h, in->name, ARB_LOG_INFO, "stopped");
        }
    }
    drain_all(h);
    if (h->kafka)
        arbh_kafka_stop(h->kafka); /* flush what the plugins produced */
    if (h->journal)
        arbh_journal_stop(h->journal); /* write and sync what the plugins produced */
    arbh_loops_stop(h);
}

void arbh_host_free(arbh_host *h)
{
    if (!h)
        return;
    arbh_admin_stop(h);
    arbh_loops_stop(h);
    arbh_latency_free(h);
    for (size_t i = h->ninstances; i-- > 0;)
        arbh_instance_free(h->instances[i]);
    free(h->instances);
    for (int i = 0; i < 4; i++)
        if (h->sig_ev[i])
            event_free(h->sig_ev[i]);
    for (size_t i = 0; i < h->nroutes; i++) {
        free(h->routes[i]->instance);
        free(h->routes[i]->path);
        free(h->routes[i]);
    }
    free(h->routes);
    if (h->loops[0])
        arbh_bus_free(h);
    if (h->kafka)
        arbh_kafka_free(h->kafka);
    arbh_journal_free(h->journal);
    arbh_loops_free(h);
    for (size_t i = 0; i < h->nmetrics; i++) {
        arbh_metric *m = h->metrics[i];
        free(m->instance);
        free(m->name);
        free(m->labels);
        free(m->help);
        free(m);
    }
    free(h->metrics);
    for (size_t i = 0; i < h->nconfigs; i++) {
        arbh_config_free(h->configs[i]);
        free(h->configs[i]);
    }
    free(h->configs);
    for (size_t i = 0; i < h->nfiles; i++)
        free(h->files[i]);
    free(h->files);
    for (size_t i = 0; i < h->noverrides; i++)
        free(h->overrides[i]);
    free(h->overrides);
    pthread_mutex_destroy(&h->metric_mu);
    free(h);
}

static void print_topics(FILE *out, const char *label, const char *const *topics)
{
    fprintf(out, "    %-10s", label);
    if (!topics || !*topics)
        fprintf(out, " -");
    for (; topics && *topics; topics++)
        fprintf(out, " %s", *topics);
    fprintf(out, "\n");
}

void arbh_host_print_plan(arbh_host *h, FILE *out)
{
    fprintf(out, "host %s: %d loop%s, bus %s (%zu bytes per queue)%s%s\n", h->id, h->nloops,
            h->nloops == 1 ? "" : "s", h->kafka ? "kafka" : "inproc", h->queue_bytes,
            h->admin_addr[0] ? ", admin " : "", h->admin_addr);
    if (h->kafka) {
        fprintf(out, "    through Kafka:");
        int nt = atomic_load(&h->ntopics);
        for (int i = 0; i < nt; i++)
            if (h->topics[i]->remote)
                fprintf(out, " %s", h->topics[i]->name);
        fprintf(out, "\n");
    }
    for (size_t i = 0; i < h->ninstances; i++) {
        arbh_instance *in = h->instances[i];
        if (in->is_pseudo)
            continue;
        fprintf(out,
                "instance %s: plugin %s %s (ABI %u, state v%u) on loop %d\n    file       %s\n",
                in->name, in->desc->name, in->desc->version, in->desc->abi_version,
                in->desc->state_version, in->thread, in->path);
        print_topics(out, "publishes", in->desc->publishes);
        print_topics(out, "subscribes", in->desc->subscribes);
    }
}

arbh_instance *arbh_host_find(arbh_host *h, const char *name)
{
    for (size_t i = 0; i < h->ninstances; i++)
        if (!strcmp(h->instances[i]->name, name))
            return h->instances[i];
    return NULL;
}

arbh_instance *arbh_host_add_pseudo(arbh_host *h, const char *name)
{
    arbh_instance *in = arbh_instance_new(h, h->cfg, name);
    if (!in)
        return NULL;
    in->is_pseudo = true;
    in->state = INST_RUNNING;
    if (add_instance(h, in) != ARB_OK) {
        arbh_instance_free(in);
        return NULL;
    }
    return in;
}

typedef struct reload_call {
    arbh_instance **slot;
    arbh_reload_image *img;
    char *err;
    size_t n;
    int rc;
} reload_call;

static void reload_on_loop(void *arg)
{
    reload_call *c = arg;
    c->rc = arbh_instance_reload(c->slot, c->img, c->err, c->n);
}

int arbh_host_reload(arbh_host *h, const char *instance, const char *path, bool force,
                     bool *unchanged, char *err, size_t n)
{
    if (unchanged)
        *unchanged = false;
    for (size_t i = 0; i < h->ninstances; i++) {
        if (strcmp(h->instances[i]->name, instance) || h->instances[i]->is_pseudo)
            continue;
        /* Copy and dlopen here: the instance keeps serving meanwhile. */
        arbh_reload_image *img = malloc(sizeof *img);
        if (!img) {
            snprintf(err, n, "out of memory");
            return ARB_ENOMEM;
        }
        int rc = arbh_reload_prepare(h->instances[i], path, force, img, err, n);
        if (rc == ARB_OK && img->unchanged) {
            /* A failed build leaves the old file: say so, count nothing. */
            if (unchanged)
                *unchanged = true;
            arbh_log(h, instance, ARB_LOG_INFO,
                     "reload: %s is the running image (build id %s): nothing to do", img->path,
                     img->build_id);
        } else if (rc == ARB_OK) {
            reload_call c = {&h->instances[i], img, err, n, 0};
            arbh_loop_call(h->instances[i]->loop, reload_on_loop, &c);
            rc = c.rc;
        } else {
            arbh_log(h, instance, ARB_LOG_WARN, "reload refused, old build keeps running: %s", err);
        }
        free(img);
        return rc;
    }
    snprintf(err, n, "no instance named '%s'", instance);
    return ARB_ENOENT;
}

/* ---- SIGHUP: prepare, then commit ----
 *
 * Like nginx's cycle: the new configuration is built whole before anything
 * running is touched. Every worker loop is held at a quiet point (between two
 * deliveries) for the whole of it, so the old instances neither run nor move
 * on between the save of their state and the switch, and the switch happens
 * at one point for the whole host.
 *   prepare: parse; for each added or changed instance, on its loop (if its
 *            `thread` changed, the new loop: the old one is held, so the old
 *            instance is idle while it saves): load
 *            (the image checked), create with its registrations staged,
 *            old save() -> new restore(), start() (staged: nothing is
 *            delivered to it and its timers wait, but a listener it opens is
 *            bound, so a taken address fails here).
 *   commit:  removed and changed instances stop, the new ones' registrations
 *            become active. Nothing in it can fail: plugin stop() returns
 *            nothing and the instance list was grown during prepare.
 * Any failure in prepare stops and frees what was prepared (newest first) and
 * leaves every running instance as it was. */

typedef struct hup_item {
    arbh_host *h;
    arbh_config *nc;
    const char *name;
    arbh_instance *old; /* NULL: added */
    arbh_instance *nw;  /* NULL: removed, or not prepared */
    bool state_dropped; /* the new instance refused the old state: starts empty */
    int rc;
    char why[1024];
} hup_item;

typedef struct hup_plan {
    hup_item *items;
    size_t count;
    arbh_hold *holds[ARBH_MAX_LOOPS];
} hup_plan;

typedef struct section_count {
    arbh_config *other; /* the config the sections are looked up in */
    size_t seen, missing;
} section_count;

static int count_section(void *user, const char *section)
{
    section_count *c = user;
    c->seen++;
    c->missing += !arbh_config_has_section(c->other, section);
    return 0;
}

/* Whether the sections named with prefix are the same in both configs. */
static bool same_sections(arbh_config *a, arbh_config *b, const char *prefix)
{
    section_count ca = {b, 0, 0}, cb = {a, 0, 0};
    arbh_config_sections(a, prefix, count_section, &ca);
    arbh_config_sections(b, prefix, count_section, &cb);
    return ca.seen == cb.seen && !ca.missing && !cb.missing;
}

static bool instance_changed(arbh_instance *in, arbh_config *nc)
{
    if (!arbh_config_section_equal(in->cfg, nc, in->section))
        return true;
    for (size_t i = 0; i < in->nread_sections; i++)
        if (!arbh_config_section_equal(in->cfg, nc, in->read_sections[i]))
            return true;
    /* A section added under a prefix it listed (an agent the gateway names). */
    for (size_t i = 0; i < in->nread_prefixes; i++)
        if (!same_sections(in->cfg, nc, in->read_prefixes[i]))
            return true;
    return false;
}

/* Runs fn on the loop an instance lives on, which is held. */
static void on_held(hup_plan *p, arbh_loop *loop, void (*fn)(void *), void *arg)
{
    arbh_hold_run(p->holds[loop->index], fn, arg);
}

/* Where a refusal points: the instance's section in the new file. */
static void refuse(hup_item *it, const char *what)
{
    char section[300];
    snprintf(section, sizeof section, "plugin %s", it->name);
    const arbh_cfg_entry *o = arbh_config_section_origin(it->nc, section);
    char why[1024];
    snprintf(why, sizeof why, "%s", it->why);
    /* Messages from the loader and config getters already start "file:line:". */
    if (o && !strstr(why, o->file))
        snprintf(it->why, sizeof it->why, "%s:%d: [plugin %s] %s: %.800s", o->file, o->line,
                 it->name, what, why);
    else
        snprintf(it->why, sizeof it->why, "%.800s (instance %s: %s)", why, it->name, what);
}

static void prepare_item(void *arg)
{
    hup_item *it = arg;
    arbh_instance *nw = build_instance(it->h, it->nc, it->name, true, it->why, sizeof it->why);
    if (!nw) {
        it->rc = ARB_EINVAL;
        refuse(it, it->old ? "changed instance not created" : "added instance not created");
        return;
    }
    it->nw = nw;
    if (it->old) {
        it->rc = arbh_instance_move_state(it->old, nw, it->why, sizeof it->why);
        if (it->rc == ARB_EREFUSED) {
            /* The new settings make the old state meaningless to the plugin:
             * it starts empty, and the answer says so. A fresh instance, so
             * nothing of a half-done restore remains. */
            arbh_log(it->h, it->name, ARB_LOG_WARN, "SIGHUP: %s; it starts empty", it->why);
            it->state_dropped = true;
            arbh_instance_free(nw);
            it->nw = nw = build_instance(it->h, it->nc, it->name, true, it->why, sizeof it->why);
            it->rc = nw ? ARB_OK : ARB_EINVAL;
        }
        if (it->rc != ARB_OK) {
            refuse(it, "state not carried over");
            return;
        }
    }
    it->rc = arbh_instance_start(nw, it->why, sizeof it->why);
    if (it->rc != ARB_OK)
        refuse(it, "not started");
}

static void abort_item(void *arg)
{
    hup_item *it = arg;
    /* It never went live: what it took over (an agent's recovered orders)
     * still belongs to the instance it was to replace, which runs on. */
    it->nw->state_adopted = true;
    arbh_instance_stop(it->nw); /* tears down the staged registrations, closes listeners */
    arbh_instance_free(it->nw);
    it->nw = NULL;
}

static void commit_stop_old(void *arg)
{
    hup_item *it = arg;
    /* A refused state was dropped with the instance that refused it: the
     * fresh one has state_restored false, so the old one releases. */
    it->old->state_adopted = it->nw && it->nw->state_restored;
    arbh_instance_stop(it->old);
}

static void commit_new(void *arg)
{
    hup_item *it = arg;
    if (it->old)
        it->nw->reloads = it->old->reloads;
    arbh_instance_commit_regs(it->nw);
}

static void free_old(void *arg) { arbh_instance_free(((hup_item *)arg)->old); }

/* The claims of the configuration the plan makes: the running instances
 * it keeps, and the ones it prepared in place of the others. */
static int hup_claims_check(arbh_host *h, const hup_plan *p, char *err, size_t n)
{
    arbh_instance **list = malloc((h->ninstances + p->count + 1) * sizeof *list);
    if (!list) {
        snprintf(err, n, "out of memory");
        return ARB_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < h->ninstances; i++) {
        bool planned = false;
        for (size_t j = 0; j < p->count && !planned; j++)
            planned = p->items[j].old == h->instances[i];
        if (!planned)
            list[k++] = h->instances[i];
    }
    for (size_t j = 0; j < p->count; j++)
        if (p->items[j].nw)
            list[k++] = p->items[j].nw;
    int rc = arbh_claims_check(list, k, err, n) ? ARB_EINVAL : ARB_OK;
    free(list);
    return rc;
}

/* Every refusal is logged (a syntax error or a missing include too, which
 * once showed only in the admin answer and /healthz) and kept for them. */
static void record_refusal(arbh_host *h, const char *msg)
{
    arbh_log(h, NULL, ARB_LOG_ERROR, "SIGHUP refused, nothing changed: %s", msg);
    pthread_mutex_lock(&h->metric_mu);
    arbh_reconfig_result *r = &h->last_reconfig;
    memset(r, 0, sizeof *r);
    r->at = arbh_wall_ns();
    snprintf(r->message, sizeof r->message, "%s", msg);
    pthread_mutex_unlock(&h->metric_mu);
}

int arbh_host_reconfigure(arbh_host *h, char *err, size_t n)
{
    arbh_config *nc = calloc(1, sizeof *nc);
    if (!nc) {
        snprintf(err, n, "out of memory");
        return ARB_ENOMEM;
    }
    if (arbh_config_load(nc, (const char *const *)h->files, h->nfiles,
                         (const char *const *)h->overrides, h->noverrides) != 0) {
        snprintf(err, n, "%s", nc->err);
        arbh_config_free(nc);
        free(nc);
        record_refusal(h, err);
        return ARB_EINVAL;
    }
    keep_config(h, nc);
    if (!arbh_config_section_equal(h->cfg, nc, "host") ||
        !arbh_config_section_equal(h->cfg, nc, "bus"))
        arbh_log(h, NULL, ARB_LOG_WARN, "SIGHUP: [host]/[bus] changes need a restart; ignored");
    /* The links' delays are set up at start (arbh_latency_configure): a
     * change waits for a restart, like [host] and [bus], and the section is
     * not "unknown" to a running host (it refused every SIGHUP). */
    if (!arbh_config_section_equal(h->cfg, nc, "latency"))
        arbh_log(h, NULL, ARB_LOG_WARN, "SIGHUP: [latency] changes need a restart; ignored");
    /* A typo in [host] or [bus] refuses the whole edit, as at start. The
     * config stays in h->configs (freed at exit); nothing was changed. */
    if (check_keys(nc, "host", host_keys, err, n) || check_keys(nc, "bus", bus_keys, err, n)) {
        record_refusal(h, err);
        return ARB_EINVAL;
    }
    /* The host's own sections are read at start only; their keys are known. */
    arbh_config_mark_section(nc, "host");
    arbh_config_mark_section(nc, "bus");
    arbh_config_mark_section(nc, "kafka");
    arbh_config_mark_section(nc, "kafka.producer");
    arbh_config_mark_section(nc, "kafka.consumer");
    arbh_config_mark_section(nc, "latency");
    err[0] = 0;
    plan_ctx names = {h, nc, NULL, 0};
    arbh_config_sections(nc, "plugin ", collect_plugin, &names);

    /* The plan: one item per added, changed or removed instance. */
    hup_plan p = {calloc(names.count + h->ninstances + 1, sizeof(hup_item)), 0, {0}};
    if (!p.items) {
        free_names(&names);
        snprintf(err, n, "out of memory");
        return ARB_ENOMEM;
    }
    size_t nadded = 0, nunchanged = 0;
    for (size_t k = 0; k < names.count; k++) {
        arbh_instance *old = arbh_host_find(h, names.names[k]);
        if (old && old->is_pseudo)
            old = NULL;
        if (old && !instance_changed(old, nc)) {
            /* Unchanged: it keeps its config; its keys count as read in the new one. */
            arbh_config_mark_section(nc, old->section);
            for (size_t s = 0; s < old->nread_sections; s++)
                arbh_config_mark_section(nc, old->read_sections[s]);
            nunchanged++;
            continue;
        }
        nadded += !old;
        p.items[p.count++] = (hup_item){h, nc, names.names[k], old, NULL, false, 0, ""};
    }
    for (size_t i = 0; i < h->ninstances; i++) {
        arbh_instance *in = h->instances[i];
        bool present = false;
        for (size_t k = 0; k < names.count && !present; k++)
            present = !strcmp(names.names[k], in->name);
        if (!present && !in->is_pseudo)
            p.items[p.count++] = (hup_item){h, nc, in->name, in, NULL, false, 0, ""};
    }
    /* The commit must not allocate: grow the list now. */
    arbh_instance **grown = realloc(h->instances, (h->ninstances + nadded + 1) * sizeof *grown);
    if (grown)
        h->instances = grown;
    int rc = grown ? ARB_OK : ARB_ENOMEM;
    if (!grown)
        snprintf(err, n, "out of memory");

    /* Prepare, with every loop held. */
    for (int l = 0; l < h->nloops && rc == ARB_OK && p.count; l++)
        if (!(p.holds[l] = arbh_loop_hold(h->loops[l]))) {
            snprintf(err, n, "out of memory");
            rc = ARB_ENOMEM;
        }
    hup_item *failed = NULL;
    for (size_t i = 0; i < p.count && rc == ARB_OK; i++) {
        hup_item *it = &p.items[i];
        bool present = false;
        for (size_t k = 0; k < names.count && !present; k++)
            present = !strcmp(names.names[k], it->name);
        if (!present)
            continue; /* removed: nothing to prepare */
        int thread = 0;
        char section[300];
        snprintf(section, sizeof section, "plugin %s", it->name);
        if (instance_thread(nc, section, &thread, it->why, sizeof it->why) != ARB_OK ||
            thread >= h->nloops) {
            if (thread >= h->nloops)
                entry_error(nc, section, "thread", it->why, sizeof it->why,
                            "loop %d does not exist (this host runs loops 0..%d; a restart "
                            "is needed for more)",
                            thread, h->nloops - 1);
            it->rc = ARB_EINVAL;
        } else {
            on_held(&p, h->loops[thread], prepare_item, it);
        }
        if (it->rc != ARB_OK) {
            failed = it;
            rc = it->rc;
        }
    }
    if (rc == ARB_OK && validate_unread(nc, err, n) != ARB_OK)
        rc = ARB_EINVAL;
    if (failed)
        snprintf(err, n, "%s", failed->why);
    else if (rc == ARB_OK && hup_claims_check(h, &p, err, n) != ARB_OK)
        rc = ARB_EINVAL;

    if (rc != ARB_OK) {
        /* Undo: the prepared instances go, newest first; nothing else moved. */
        for (size_t i = p.count; i-- > 0;)
            if (p.items[i].nw)
                on_held(&p, p.items[i].nw->loop, abort_item, &p.items[i]);
        for (int l = 0; l < h->nloops; l++)
            arbh_loop_release(p.holds[l]);
        record_refusal(h, err);
        free(p.items);
        free_names(&names);
        return rc;
    }

    /* Commit: removed and changed instances stop (newest first), then the
     * new ones' registrations go live. */
    unsigned added = 0, removed = 0, changed = 0;
    char dropped[512] = "";
    size_t dk = 0;
    for (size_t i = p.count; i-- > 0;)
        if (p.items[i].old)
            on_held(&p, p.items[i].old->loop, commit_stop_old, &p.items[i]);
    for (size_t i = 0; i < p.count; i++)
        if (p.items[i].nw)
            on_held(&p, p.items[i].nw->loop, commit_new, &p.items[i]);
    pthread_mutex_lock(&h->metric_mu);
    for (size_t i = 0; i < p.count; i++) {
        hup_item *it = &p.items[i];
        if (it->old && it->nw) {
            for (size_t k = 0; k < h->ninstances; k++)
                if (h->instances[k] == it->old)
                    h->instances[k] = it->nw;
            changed++;
        } else if (it->old) {
            for (size_t k = 0; k < h->ninstances; k++)
                if (h->instances[k] == it->old) {
                    memmove(&h->instances[k], &h->instances[k + 1],
                            (h->ninstances - k - 1) * sizeof *h->instances);
                    h->ninstances--;
                    break;
                }
            removed++;
        } else {
            h->instances[h->ninstances++] = it->nw;
            added++;
        }
    }
    h->cfg = nc;
    size_t running = 0;
    for (size_t k = 0; k < h->ninstances; k++)
        running += !h->instances[k]->is_pseudo;
    pthread_mutex_unlock(&h->metric_mu);
    for (size_t i = 0; i < p.count; i++) {
        hup_item *it = &p.items[i];
        if (it->old)
            on_held(&p, it->old->loop, free_old, it);
        if (it->state_dropped && dk + strlen(it->name) + 2 < sizeof dropped)
            dk += (size_t)snprintf(dropped + dk, sizeof dropped - dk, "%s%s", dk ? ", " : "",
                                   it->name);
    }
    for (int l = 0; l < h->nloops; l++)
        arbh_loop_release(p.holds[l]);
    arbh_log(h, NULL, ARB_LOG_INFO,
             "SIGHUP: %u added, %u removed, %u changed (state carried over%s%s), %zu unchanged, "
             "%zu running",
             added, removed, changed, dropped[0] ? "; started empty: " : "", dropped, nunchanged,
             running);
    pthread_mutex_lock(&h->metric_mu);
    arbh_reconfig_result *r = &h->last_reconfig;
    memset(r, 0, sizeof *r);
    r->at = arbh_wall_ns();
    r->ok = true;
    r->added = added;
    r->removed = removed;
    r->changed = changed;
    r->unchanged = (unsigned)nunchanged;
    snprintf(r->state_dropped, sizeof r->state_dropped, "%s", dropped);
    snprintf(r->message, sizeof r->message, "applied");
    pthread_mutex_unlock(&h->metric_mu);
    free(p.items);
    free_names(&names);
    return ARB_OK;
}

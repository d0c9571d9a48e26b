/*
 * instance.c -- plugin instances: loading a .so, the host API table the
 * plugin calls, the registrations it makes (subscriptions, timers, admin
 * routes, metrics) recorded under the instance, and hot reload.
 *
 * Reload, on the instance's own loop (so it is a quiet point: no delivery is
 * in progress on that thread and none can start until we return):
 *   copy the .so to a unique path (checked first by image.c: a whole ELF
 *   shared object; the same build id as the running image means nothing to
 *   do), dlopen it, check the ABI and name,
 *   create the new instance with its registrations staged (inactive),
 *   old save() -> new restore() (which may refuse), new start(),
 *   then commit: old stop(), its registrations torn down, the new ones
 *   activated, the old image closed. Records queued for the topic wait in the
 *   rings and go to whichever subscriptions are active when delivered, so
 *   nothing is lost or delivered twice. Any failure before the commit undoes
 *   the new instance and leaves the old one serving.
 * Not here: topic delivery (bus.c), config parsing (config.c).
 */
#include <dlfcn.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "host.h"
#include "latency.h"
#include "transport.h"

#define INST(ctx) ((arbh_instance *)(ctx))

/* ---- config access for plugins ---- */

/* Remembers the foreign sections an instance read, so SIGHUP can restart
 * the instances a changed shared section (e.g. an instrument) affects. */
static uint32_t *read_slot(const arbh_instance *in, const char *section)
{
    size_t mask = in->read_cap - 1;
    for (size_t i = arbh_str_hash(section) & mask;; i = (i + 1) & mask) {
        uint32_t *slot = &in->read_slots[i];
        if (!*slot || !strcmp(in->read_sections[*slot - 1], section))
            return slot;
    }
}

/* A set, not a list to scan: a plugin reading 10,000 instrument sections
 * looks each one up about ten times. */
static const char *sect(arbh_instance *in, const char *section)
{
    if (!section || !strcmp(section, in->section))
        return in->section;
    if (in->read_cap && *read_slot(in, section))
        return section;
    if (2 * (in->nread_sections + 1) > in->read_cap) {
        size_t cap = in->read_cap ? 2 * in->read_cap : 64;
        uint32_t *slots = calloc(cap, sizeof *slots);
        if (!slots)
            return section;
        free(in->read_slots);
        in->read_slots = slots;
        in->read_cap = cap;
        for (size_t i = 0; i < in->nread_sections; i++)
            *read_slot(in, in->read_sections[i]) = (uint32_t)i + 1;
    }
    char **grown = realloc(in->read_sections, (in->nread_sections + 1) * sizeof *grown);
    char *copy = grown ? strdup(section) : NULL;
    if (grown)
        in->read_sections = grown;
    if (copy) {
        in->read_sections[in->nread_sections++] = copy;
        *read_slot(in, copy) = (uint32_t)in->nread_sections;
    }
    return section;
}

__attribute__((format(printf, 4, 5))) static int
report_entry(arbh_instance *in, const char *section, const arbh_cfg_entry *e, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const arbh_cfg_entry *where = e ? e : arbh_config_section_origin(in->cfg, section);
    if (where && where->line)
        snprintf(in->err, sizeof in->err, "%s:%d: [%s] %s", where->file, where->line, section, msg);
    else if (where)
        snprintf(in->err, sizeof in->err, "%s: [%s] %s", where->file, section, msg);
    else
        snprintf(in->err, sizeof in->err, "[%s] %s", section, msg);
    in->err_located = where != NULL;
    arbh_log(in->host, in->name, ARB_LOG_ERROR, "%s", in->err);
    return ARB_EINVAL;
}

static int api_cfg_str(arb_ctx *ctx, const char *section, const char *key, const char *def,
                       const char **out)
{
    arbh_instance *in = INST(ctx);
    arbh_cfg_entry *e = arbh_config_find(in->cfg, sect(in, section), key);
    *out = e ? e->value : def;
    return ARB_OK;
}

static int api_cfg_int(arb_ctx *ctx, const char *section, const char *key, int64_t def, int64_t min,
                       int64_t max, int64_t *out)
{
    arbh_instance *in = INST(ctx);
    const char *s = sect(in, section);
    arbh_cfg_entry *e = arbh_config_find(in->cfg, s, key);
    if (!e) {
        *out = def;
        return ARB_OK;
    }
    char *end;
    errno = 0;
    long long v = strtoll(e->value, &end, 0);
    if (errno || end == e->value || *end || v < min || v > max)
        return report_entry(in, s, e,
                            "%s = '%s': expected an integer in [%" PRId64 ", %" PRId64 "]", key,
                            e->value, min, max);
    *out = v;
    return ARB_OK;
}

static int api_cfg_double(arb_ctx *ctx, const char *section, const char *key, double def,
                          double min, double max, double *out)
{
    arbh_instance *in = INST(ctx);
    const char *s = sect(in, section);
    arbh_cfg_entry *e = arbh_config_find(in->cfg, s, key);
    if (!e) {
        *out = def;
        return ARB_OK;
    }
    char *end;
    errno = 0;
    double v = strtod(e->value, &end);
    if (errno || end == e->value || *end || !isfinite(v) || v < min || v > max)
        return report_entry(in, s, e, "%s = '%s': expected a number in [%g, %g]", key, e->value,
                            min, max);
    *out = v;
    return ARB_OK;
}

static int api_cfg_bool(arb_ctx *ctx, const char *section, const char *key, int def, int *out)
{
    arbh_instance *in = INST(ctx);
    const char *s = sect(in, section);
    arbh_cfg_entry *e = arbh_config_find(in->cfg, s, key);
    if (!e) {
        *out = def;
        return ARB_OK;
    }
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(e->value, yes[i])) {
            *out = 1;
            return ARB_OK;
        }
        if (!strcasecmp(e->value, no[i])) {
            *out = 0;
            return ARB_OK;
        }
    }
    return report_entry(in, s, e, "%s = '%s': expected true or false", key, e->value);
}

typedef struct each_ctx {
    arb_cfg_fn fn;
    void *user;
} each_ctx;

static int each_entry(void *user, const arbh_cfg_entry *e)
{
    each_ctx *c = user;
    return c->fn(c->user, e->key, e->value);
}

static int each_section(void *user, const char *section)
{
    each_ctx *c = user;
    return c->fn(c->user, section, NULL);
}

static int api_cfg_each(arb_ctx *ctx, const char *section, arb_cfg_fn fn, void *user)
{
    arbh_instance *in = INST(ctx);
    each_ctx c = {fn, user};
    int rc = arbh_config_each(in->cfg, sect(in, section), each_entry, &c);
    return rc > 0 ? ARB_OK : rc;
}

static int note_section(void *user, const char *section)
{
    sect(user, section);
    return 0;
}

static int api_cfg_sections(arb_ctx *ctx, const char *prefix, arb_cfg_fn fn, void *user)
{
    arbh_instance *in = INST(ctx);
    each_ctx c = {fn, user};
    int known = 0;
    for (size_t i = 0; i < in->nread_prefixes; i++)
        known |= !strcmp(in->read_prefixes[i], prefix);
    char **grown =
        known ? NULL : realloc(in->read_prefixes, (in->nread_prefixes + 1) * sizeof *grown);
    if (grown) {
        in->read_prefixes = grown;
        in->read_prefixes[in->nread_prefixes++] = strdup(prefix);
    }
    arbh_config_sections(in->cfg, prefix, note_section, in);
    int rc = arbh_config_sections(in->cfg, prefix, each_section, &c);
    return rc > 0 ? ARB_OK : rc;
}

static int api_cfg_vreject(arb_ctx *ctx, const char *section, const char *key, const char *fmt,
                           va_list ap)
{
    arbh_instance *in = INST(ctx);
    const char *s = sect(in, section);
    char msg[320];
    vsnprintf(msg, sizeof msg, fmt, ap);
    arbh_cfg_entry *e = key && *key ? arbh_config_find(in->cfg, s, key) : NULL;
    if (key && *key)
        return report_entry(in, s, e, "%s: %s", key, msg);
    return report_entry(in, s, e, "%s", msg);
}

/* ---- bus, timers, routes ---- */

static const char *api_instance_name(arb_ctx *ctx) { return INST(ctx)->name; }

static void api_vlog(arb_ctx *ctx, int level, const char *fmt, va_list ap)
{
    arbh_instance *in = INST(ctx);
    /* The first error the plugin logs is the reason its create() or start()
     * failed: kept so the caller's refusal (SIGHUP, reload) can say why. A
     * rejected config value (report_entry) replaces it: it names the line. */
    if (level == ARB_LOG_ERROR && !in->err[0]) {
        va_list copy;
        va_copy(copy, ap);
        vsnprintf(in->err, sizeof in->err, fmt, copy);
        va_end(copy);
        in->err_located = false;
    }
    arbh_vlog(in->host, in->name, level, fmt, ap);
}

static int api_topic(arb_ctx *ctx, const char *name)
{
    return arbh_bus_topic(INST(ctx)->host, name);
}

static int api_publish(arb_ctx *ctx, int topic, uint64_t key, const void *data, size_t len)
{
    return arbh_bus_publish(INST(ctx), topic, key, data, len);
}

static int api_subscribe(arb_ctx *ctx, int topic, arb_msg_fn fn, void *user)
{
    return arbh_bus_subscribe(INST(ctx), topic, fn, user);
}

static int api_claim(arb_ctx *ctx, const char *what, uint64_t first, uint64_t count)
{
    arbh_instance *in = INST(ctx);
    if (!what || !*what || strlen(what) >= sizeof in->claims->what || !count ||
        first > UINT64_MAX - (count - 1))
        return ARB_EINVAL;
    arbh_claim *grown = realloc(in->claims, (in->nclaims + 1) * sizeof *grown);
    if (!grown)
        return ARB_ENOMEM;
    in->claims = grown;
    arbh_claim *c = &grown[in->nclaims++];
    snprintf(c->what, sizeof c->what, "%s", what);
    c->first = first;
    c->count = count;
    return ARB_OK;
}

int arbh_claims_check(arbh_instance *const *list, size_t n, char *err, size_t errn)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            for (size_t a = 0; a < list[i]->nclaims; a++)
                for (size_t b = 0; b < list[j]->nclaims; b++) {
                    const arbh_claim *x = &list[i]->claims[a], *y = &list[j]->claims[b];
                    uint64_t xl = x->first + (x->count - 1), yl = y->first + (y->count - 1);
                    if (strcmp(x->what, y->what) || x->first > yl || y->first > xl)
                        continue;
                    const arbh_cfg_entry *ex =
                        arbh_config_find(list[i]->cfg, list[i]->section, x->what);
                    const arbh_cfg_entry *ey =
                        arbh_config_find(list[j]->cfg, list[j]->section, y->what);
                    snprintf(err, errn,
                             "%s:%d: [%s] %s %llu..%llu overlaps [%s]'s %llu..%llu (%s:%d): two "
                             "instances would own the same %s",
                             ey ? ey->file : "?", ey ? ey->line : 0, list[j]->section, y->what,
                             (unsigned long long)y->first, (unsigned long long)yl, list[i]->section,
                             (unsigned long long)x->first, (unsigned long long)xl,
                             ex ? ex->file : "?", ex ? ex->line : 0, x->what);
                    return -1;
                }
    return 0;
}

static int api_state_adopted(arb_ctx *ctx) { return INST(ctx)->state_adopted; }

static int api_subscribe_keys(arb_ctx *ctx, int topic, const arb_key_range *keys, size_t n,
                              arb_msg_fn fn, void *user)
{
    return arbh_bus_subscribe_keys(INST(ctx), topic, keys, n, fn, user);
}

static int api_unsubscribe(arb_ctx *ctx, int id) { return arbh_bus_unsubscribe(INST(ctx), id); }

static void timer_free(arbh_instance *in, size_t i)
{
    arbh_timer *t = in->timers[i];
    if (t->ev)
        event_free(t->ev);
    free(t);
    in->timers[i] = in->timers[--in->ntimers];
}

static void timer_cb(int fd, short what, void *arg)
{
    (void)fd, (void)what;
    arbh_timer *t = arg;
    arbh_instance *in = t->owner;
    int id = t->id;
    bool repeat = t->repeat;
    arbh_running prev = arbh_enter(in, ARBH_CB_TIMER, -1);
    t->fn(t->user);
    arbh_leave(prev);
    /* The callback may have stopped this very timer (then it is gone). */
    if (!repeat) {
        for (size_t i = 0; i < in->ntimers; i++)
            if (in->timers[i]->id == id) {
                timer_free(in, i);
                break;
            }
    }
}

static int timer_arm(arbh_timer *t)
{
    struct timeval tv = {(time_t)(t->interval_ns / 1000000000u),
                         (suseconds_t)((t->interval_ns % 1000000000u) / 1000u)};
    return event_add(t->ev, &tv) == 0 ? ARB_OK : ARB_ERROR;
}

static int api_timer_start(arb_ctx *ctx, uint64_t interval_ns, int repeat, arb_timer_fn fn,
                           void *user)
{
    arbh_instance *in = INST(ctx);
    if (!fn || (repeat && interval_ns < 1000))
        return ARB_EINVAL; /* a repeating timer below 1us would spin the loop */
    if (in->ntimers == in->captimers) {
        size_t cap = in->captimers ? in->captimers * 2 : 8;
        arbh_timer **items = realloc(in->timers, cap * sizeof *items);
        if (!items)
            return ARB_ENOMEM;
        in->timers = items;
        in->captimers = cap;
    }
    arbh_timer *t = calloc(1, sizeof *t);
    if (!t)
        return ARB_ENOMEM;
    *t = (arbh_timer){NULL, fn, user, in, ++in->next_id, interval_ns, repeat != 0};
    t->ev = event_new(in->loop->base, -1, repeat ? EV_PERSIST : 0, timer_cb, t);
    if (!t->ev) {
        free(t);
        return ARB_ENOMEM;
    }
    in->timers[in->ntimers++] = t;
    if (!in->staging && !in->host->starting && timer_arm(t) != ARB_OK) {
        timer_free(in, in->ntimers - 1);
        return ARB_ERROR;
    }
    return t->id;
}

static int api_timer_stop(arb_ctx *ctx, int id)
{
    arbh_instance *in = INST(ctx);
    for (size_t i = 0; i < in->ntimers; i++)
        if (in->timers[i]->id == id) {
            timer_free(in, i);
            return ARB_OK;
        }
    return ARB_ENOENT;
}

static int api_admin_route(arb_ctx *ctx, const char *path, arb_admin_fn fn, void *user)
{
    arbh_instance *in = INST(ctx);
    arbh_host *h = in->host;
    if (!path || !*path || !fn || strchr(path, '?'))
        return ARB_EINVAL;
    arbh_route *r = calloc(1, sizeof *r);
    arbh_route **items = realloc(h->routes, (h->nroutes + 1) * sizeof *items);
    if (!r || !items) {
        free(r);
        if (items)
            h->routes = items;
        return ARB_ENOMEM;
    }
    h->routes = items;
    *r = (arbh_route){strdup(in->name), strdup(path[0] == '/' ? path + 1 : path), fn, user, in,
                      !in->staging};
    pthread_mutex_lock(&h->metric_mu);
    h->routes[h->nroutes++] = r;
    pthread_mutex_unlock(&h->metric_mu);
    return ARB_OK;
}

/* ---- metrics ---- */

arbh_metric *arbh_metric_get(arbh_host *h, const char *instance, int kind, const char *name,
                             const char *labels, const char *help)
{
    labels = labels ? labels : "";
    pthread_mutex_lock(&h->metric_mu);
    arbh_metric *m = NULL;
    for (size_t i = 0; i < h->nmetrics && !m; i++) {
        arbh_metric *x = h->metrics[i];
        if (x->kind == kind && !strcmp(x->name, name) && !strcmp(x->labels, labels) &&
            ((!instance && !x->instance) ||
             (instance && x->instance && !strcmp(instance, x->instance))))
            m = x;
    }
    if (!m) {
        arbh_metric **items = realloc(h->metrics, (h->nmetrics + 1) * sizeof *items);
        m = calloc(1, sizeof *m);
        if (items)
            h->metrics = items;
        if (!items || !m) {
            free(m);
            m = NULL;
        } else {
            m->instance = instance ? strdup(instance) : NULL;
            m->name = strdup(name);
            m->labels = strdup(labels);
            m->help = strdup(help ? help : "");
            m->kind = kind;
            h->metrics[h->nmetrics++] = m;
        }
    }
    pthread_mutex_unlock(&h->metric_mu);
    return m;
}

static bool metric_name_ok(const char *name)
{
    if (!name || !*name)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
              (p != name && *p >= '0' && *p <= '9')))
            return false;
    return true;
}

static arb_counter *api_counter(arb_ctx *ctx, const char *name, const char *labels,
                                const char *help)
{
    arbh_instance *in = INST(ctx);
    if (!metric_name_ok(name))
        return NULL;
    arbh_metric *m = arbh_metric_get(in->host, in->name, 'c', name, labels, help);
    return m ? &m->u.counter : NULL;
}

static arb_gauge *api_gauge(arb_ctx *ctx, const char *name, const char *labels, const char *help)
{
    arbh_instance *in = INST(ctx);
    if (!metric_name_ok(name))
        return NULL;
    arbh_metric *m = arbh_metric_get(in->host, in->name, 'g', name, labels, help);
    return m ? &m->u.gauge : NULL;
}

static arb_histogram *api_histogram(arb_ctx *ctx, const char *name, const char *labels,
                                    const char *help)
{
    arbh_instance *in = INST(ctx);
    if (!metric_name_ok(name))
        return NULL;
    arbh_metric *m = arbh_metric_get(in->host, in->name, 'h', name, labels, help);
    return m ? &m->u.hist : NULL;
}

/* ---- time, identity, health ---- */

static struct event_base *api_event_base(arb_ctx *ctx) { return INST(ctx)->loop->base; }

static int64_t api_now(arb_ctx *ctx)
{
    int64_t sim = atomic_load_explicit(&INST(ctx)->host->sim_time, memory_order_relaxed);
    return sim ? sim : arbh_wall_ns();
}

/* Time moves only past delivered records: what the links hold until then
 * is delivered first, each at its own time (latency.c). */
static void api_set_time(arb_ctx *ctx, int64_t ns)
{
    arbh_instance *in = INST(ctx);
    if (in->loop && in->loop->latq)
        arbh_latency_advance(in->loop, ns);
    atomic_store_explicit(&in->host->sim_time, ns, memory_order_relaxed);
}

static void api_shutdown(arb_ctx *ctx, int code)
{
    arbh_host *h = INST(ctx)->host;
    h->exit_code = code;
    atomic_store(&h->stopping, 1);
    event_base_loopbreak(h->loops[0]->base);
}

static uint64_t api_host_id(arb_ctx *ctx) { return INST(ctx)->host->host_id; }

static void api_set_health(arb_ctx *ctx, int healthy, const char *detail)
{
    arbh_instance *in = INST(ctx);
    pthread_mutex_lock(&in->host->metric_mu);
    in->healthy = healthy != 0;
    snprintf(in->health, sizeof in->health, "%s", detail ? detail : "");
    pthread_mutex_unlock(&in->host->metric_mu);
}

static int api_pause(arb_ctx *ctx, int paused)
{
    arbh_bus_set_paused(INST(ctx), paused != 0);
    return ARB_OK;
}

/* The transport's topic behind a bus topic id, for an instance that may use
 * it (Kafka: on loop 0, where its consumer runs; the journal: any loop);
 * NULL with *rc set otherwise. */
static const char *xport_topic(arbh_instance *in, int topic, int *rc)
{
    arbh_host *h = in->host;
    *rc = ARB_ENOENT;
    if ((unsigned)topic >= (unsigned)atomic_load(&h->ntopics) || !arbh_xport_on(h) ||
        !h->topics[topic]->remote)
        return NULL;
    *rc = ARB_ESTATE;
    if (in->loop->index != 0 && !arbh_xport_any_loop(h))
        return NULL;
    *rc = ARB_OK;
    return h->topics[topic]->name;
}

static int api_seek(arb_ctx *ctx, int topic, int partition, int64_t offset)
{
    int rc;
    const char *name = xport_topic(INST(ctx), topic, &rc);
    return name ? arbh_xport_seek(INST(ctx)->host, name, partition, offset) : rc;
}

static int api_on_partitions(arb_ctx *ctx, arb_partition_fn fn, void *user)
{
    arbh_instance *in = INST(ctx);
    if (in->loop->index != 0 && !arbh_xport_any_loop(in->host))
        return ARB_ESTATE;
    in->part_fn = fn;
    in->part_user = user;
    return ARB_OK;
}

static int api_read_last(arb_ctx *ctx, int topic, int partition, int64_t timeout_ns, void **bytes,
                         size_t *len, int64_t *offset)
{
    int rc;
    const char *name = xport_topic(INST(ctx), topic, &rc);
    if (!name)
        return rc;
    return arbh_xport_read_last(INST(ctx)->host, name, partition, timeout_ns, bytes, len, offset);
}

static int api_watermarks(arb_ctx *ctx, int topic, int partition, int64_t timeout_ns, int64_t *lo,
                          int64_t *hi)
{
    int rc;
    const char *name = xport_topic(INST(ctx), topic, &rc);
    if (!name)
        return rc;
    return arbh_xport_watermarks(INST(ctx)->host, name, partition, timeout_ns, lo, hi);
}

typedef struct range_reader {
    arb_read_fn fn;
    void *user;
    int topic, partition;
} range_reader;

static int range_record(void *user, const void *bytes, size_t len, uint64_t key, int64_t offset)
{
    range_reader *r = user;
    arb_msg m = {.data = bytes,
                 .len = (uint32_t)len,
                 .topic = (uint16_t)r->topic,
                 .key = key,
                 .partition = r->partition,
                 .offset = offset};
    return r->fn(r->user, &m);
}

static int api_read_range(arb_ctx *ctx, int topic, int partition, int64_t from, int64_t to,
                          int64_t timeout_ns, arb_read_fn fn, void *user)
{
    int rc;
    const char *name = xport_topic(INST(ctx), topic, &rc);
    if (!name)
        return rc;
    range_reader r = {fn, user, topic, partition};
    return arbh_xport_read_range(INST(ctx)->host, name, partition, from,
                                 to == ARB_OFFSET_END ? -1 : to, timeout_ns, range_record, &r);
}

static int ranges_record(void *user, const void *bytes, size_t len, uint64_t key, int partition,
                         int64_t offset)
{
    range_reader *r = user;
    arb_msg m = {.data = bytes,
                 .len = (uint32_t)len,
                 .topic = (uint16_t)r->topic,
                 .key = key,
                 .partition = partition,
                 .offset = offset};
    return r->fn(r->user, &m);
}

static int api_read_ranges(arb_ctx *ctx, int topic, int n, const int64_t *from, const int64_t *to,
                           int64_t timeout_ns, arb_read_fn fn, void *user)
{
    int rc;
    const char *name = xport_topic(INST(ctx), topic, &rc);
    if (!name)
        return rc;
    range_reader r = {fn, user, topic, -1};
    return arbh_xport_read_ranges(INST(ctx)->host, name, n, from, to, timeout_ns, ranges_record,
                                  &r);
}

static int api_partition_of(arb_ctx *ctx, int topic, uint64_t key, int64_t timeout_ns,
                            int32_t *partition)
{
    int rc;
    const char *name = xport_topic(INST(ctx), topic, &rc);
    if (!name)
        return rc;
    return arbh_xport_partition_of(INST(ctx)->host, name, key, timeout_ns, partition);
}

static int api_trim(arb_ctx *ctx, int topic, int partition, int64_t offset)
{
    int rc;
    arbh_instance *in = INST(ctx);
    const char *name = xport_topic(in, topic, &rc);
    return name ? arbh_xport_trim(in->host, name, partition, in->name, offset) : rc;
}

static int api_run_info(arb_ctx *ctx, arb_run_info *out)
{
    const arbh_host *h = INST(ctx)->host;
    if (!h->run.id)
        return ARB_ESTATE;
    *out = h->run;
    return ARB_OK;
}

static int api_batch(arb_ctx *ctx, arb_batch_fn fn, void *user)
{
    return arbh_bus_batch(INST(ctx), fn, user);
}

static const arb_host_api host_api = {
    .abi_version = ARB_ABI_VERSION,
    .size = sizeof(arb_host_api),
    .instance_name = api_instance_name,
    .vlog = api_vlog,
    .topic = api_topic,
    .publish = api_publish,
    .subscribe = api_subscribe,
    .unsubscribe = api_unsubscribe,
    .timer_start = api_timer_start,
    .timer_stop = api_timer_stop,
    .cfg_str = api_cfg_str,
    .cfg_int = api_cfg_int,
    .cfg_double = api_cfg_double,
    .cfg_bool = api_cfg_bool,
    .cfg_each = api_cfg_each,
    .cfg_sections = api_cfg_sections,
    .cfg_vreject = api_cfg_vreject,
    .counter = api_counter,
    .gauge = api_gauge,
    .histogram = api_histogram,
    .event_base = api_event_base,
    .now = api_now,
    .set_time = api_set_time,
    .shutdown = api_shutdown,
    .admin_route = api_admin_route,
    .host_id = api_host_id,
    .set_health = api_set_health,
    .pause = api_pause,
    .seek = api_seek,
    .on_partitions = api_on_partitions,
    .read_last = api_read_last,
    .watermarks = api_watermarks,
    .read_range = api_read_range,
    .partition_of = api_partition_of,
    .run_info = api_run_info,
    .trim = api_trim,
    .batch = api_batch,
    .read_ranges = api_read_ranges,
    .subscribe_keys = api_subscribe_keys,
    .state_adopted = api_state_adopted,
    .claim = api_claim,
};

const arb_host_api *arbh_api(void) { return &host_api; }

/* ---- loading ---- */

static bool file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int arbh_resolve_plugin(arbh_host *h, const char *cfg_file, const char *load, char *out, size_t n)
{
    if (load[0] == '/') {
        snprintf(out, n, "%s", load);
        return file_exists(out) ? ARB_OK : ARB_ENOENT;
    }
    if (strchr(load, '/')) {
        const char *slash = cfg_file ? strrchr(cfg_file, '/') : NULL;
        if (slash)
            snprintf(out, n, "%.*s/%s", (int)(slash - cfg_file), cfg_file, load);
        else
            snprintf(out, n, "%s", load);
        return file_exists(out) ? ARB_OK : ARB_ENOENT;
    }
    const char *p = h->plugin_dirs;
    while (*p) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        if (len) {
            snprintf(out, n, "%.*s/%s", (int)len, p, load);
            if (file_exists(out))
                return ARB_OK;
        }
        p += len + (colon ? 1 : 0);
    }
    return ARB_ENOENT;
}

arbh_instance *arbh_instance_new(arbh_host *h, arbh_config *cfg, const char *name)
{
    arbh_instance *in = calloc(1, sizeof *in);
    if (!in)
        return NULL;
    in->ctx.api = &host_api;
    in->host = h;
    in->cfg = cfg;
    in->name = strdup(name);
    if (asprintf(&in->section, "plugin %s", name) < 0)
        in->section = NULL;
    in->loop = h->loops[0];
    in->healthy = 1;
    in->state = INST_LOADED;
    return in;
}

static int check_descriptor(const arb_plugin *d, const char *path, char *err, size_t n)
{
    if (!d) {
        snprintf(err, n, "%s: %s() returned no descriptor", path, ARB_PLUGIN_ENTRY_NAME);
        return ARB_EINVAL;
    }
    if (d->abi_version != ARB_ABI_VERSION || d->size != sizeof(arb_plugin)) {
        snprintf(err, n,
                 "%s: ABI mismatch: plugin built for ABI %u (descriptor %u bytes), host speaks "
                 "ABI %u (%zu bytes); rebuild the plugin against this SDK",
                 path, d->abi_version, d->size, ARB_ABI_VERSION, sizeof(arb_plugin));
        return ARB_EINVAL;
    }
    if (!d->name || !d->version || !d->create || !d->start || !d->stop || !d->destroy) {
        snprintf(err, n, "%s: descriptor lacks name, version or a lifecycle hook", path);
        return ARB_EINVAL;
    }
    return ARB_OK;
}

/* dlerror() names the file dlopen was given: a reload's private copy, which
 * means nothing to the person who asked; their path is put in its place. */
static void name_user_path(const char *msg, const char *opened, const char *shown, char *out,
                           size_t n)
{
    const char *at = opened != shown ? strstr(msg, opened) : NULL;
    if (at)
        snprintf(out, n, "%.*s%s%s", (int)(at - msg), msg, shown, at + strlen(opened));
    else
        snprintf(out, n, "%s", msg);
}

/* Opens `path` (a checked file), names `shown` in every message. The image's
 * constructors and entry function are plugin code: a crash in them is
 * reported as `who` loading. */
static int open_image(const arbh_instance *who, const char *path, const char *shown, void **dl_out,
                      const arb_plugin **desc_out, char *err, size_t n)
{
    const char *path_for_dl = path;
    path = shown;
    dlerror();
    arbh_running prev = arbh_enter(who, ARBH_CB_LOAD, -1);
    void *dl = dlopen(path_for_dl, RTLD_NOW | RTLD_LOCAL);
    arbh_leave(prev);
    if (!dl) {
        const char *e = dlerror();
        char why[1024];
        name_user_path(e ? e : "?", path_for_dl, shown, why, sizeof why);
        snprintf(err, n, "cannot load %s: %s", path, why);
        return ARB_ERROR;
    }
    arb_plugin_entry_fn entry;
    *(void **)&entry = dlsym(dl, ARB_PLUGIN_ENTRY_NAME);
    if (!entry) {
        snprintf(err, n, "%s: missing entry symbol %s (define it with ARB_PLUGIN_DEFINE)", path,
                 ARB_PLUGIN_ENTRY_NAME);
        dlclose(dl);
        return ARB_ERROR;
    }
    prev = arbh_enter(who, ARBH_CB_LOAD, -1);
    const arb_plugin *d = entry();
    arbh_leave(prev);
    int rc = check_descriptor(d, path, err, n);
    if (rc) {
        dlclose(dl);
        return rc;
    }
    *dl_out = dl;
    *desc_out = d;
    return ARB_OK;
}

/* The image's identity, and the fatal-signal line's prefix preformatted
 * (crash.c's handler may not format). */
void arbh_instance_set_image(arbh_instance *in, const char *build_id)
{
    snprintf(in->build_id, sizeof in->build_id, "%s", build_id ? build_id : "");
    in->loaded_at = arbh_wall_ns();
    snprintf(in->crash_who, sizeof in->crash_who, "instance %s (%s %s, build id %s)", in->name,
             in->desc ? in->desc->name : "?", in->path ? in->path : "?",
             in->build_id[0] ? in->build_id : "unknown");
}

int arbh_instance_load(arbh_instance *in, char *err, size_t n)
{
    arbh_cfg_entry *load = arbh_config_find(in->cfg, in->section, "load");
    const arbh_cfg_entry *origin = arbh_config_section_origin(in->cfg, in->section);
    if (!load) {
        snprintf(err, n, "%s:%d: [%s] has no 'load = FILE.so'", origin ? origin->file : "?",
                 origin ? origin->line : 0, in->section);
        return ARB_EINVAL;
    }
    char path[4096];
    if (arbh_resolve_plugin(in->host, load->file, load->value, path, sizeof path) != ARB_OK) {
        snprintf(err, n, "%s:%d: [%s] load = %s: plugin file not found (searched %s)", load->file,
                 load->line, in->section, load->value,
                 strchr(load->value, '/') ? "relative to the config file" : in->host->plugin_dirs);
        return ARB_ENOENT;
    }
    free(in->path);
    in->path = strdup(path);
    char why[1024], id[80];
    if (arbh_image_check(path, id, sizeof id, why, sizeof why) != ARB_OK) {
        snprintf(err, n, "%s:%d: [%s] %s", load->file, load->line, in->section, why);
        return ARB_ERROR;
    }
    arbh_instance_set_image(in, id); /* before dlopen: a crash in it names the file */
    if (open_image(in, path, path, &in->dl, &in->desc, why, sizeof why) != ARB_OK) {
        snprintf(err, n, "%s:%d: [%s] %s", load->file, load->line, in->section, why);
        return ARB_ERROR;
    }
    arbh_instance_set_image(in, id); /* now with the plugin's name */
    return ARB_OK;
}

int arbh_instance_create(arbh_instance *in, char *err, size_t n)
{
    in->err[0] = 0;
    arbh_running prev = arbh_enter(in, ARBH_CB_CREATE, -1);
    int rc = in->desc->create(&in->ctx, &in->self);
    arbh_leave(prev);
    if (rc != ARB_OK) {
        in->self = NULL;
        const arbh_cfg_entry *o = arbh_config_section_origin(in->cfg, in->section);
        if (in->err[0] && in->err_located)
            snprintf(err, n, "%s", in->err);
        else
            snprintf(err, n, "%s:%d: [%s] plugin %s refused its configuration (%d)%s%.400s",
                     o ? o->file : "?", o ? o->line : 0, in->section, in->desc->name, rc,
                     in->err[0] ? ": " : "", in->err);
        in->state = INST_FAILED;
        return rc;
    }
    in->state = INST_CREATED;
    return ARB_OK;
}

int arbh_instance_start(arbh_instance *in, char *err, size_t n)
{
    in->err[0] = 0;
    arbh_running prev = arbh_enter(in, ARBH_CB_START, -1);
    int rc = in->desc->start(in->self);
    arbh_leave(prev);
    if (rc != ARB_OK) {
        snprintf(err, n, "[%s] start failed (%d)%s%s", in->section, rc, in->err[0] ? ": " : "",
                 in->err);
        prev = arbh_enter(in, ARBH_CB_STOP, -1);
        in->desc->stop(in->self);
        arbh_leave(prev);
        arbh_instance_teardown_regs(in);
        in->state = INST_FAILED;
        return rc;
    }
    in->state = INST_RUNNING;
    in->started_at = arbh_wall_ns();
    return ARB_OK;
}

void arbh_instance_teardown_regs(arbh_instance *in)
{
    if (in->loop)
        arbh_bus_set_paused(in, false);
    in->part_fn = NULL;
    while (in->nsubs)
        arbh_bus_unsubscribe(in, in->subs[in->nsubs - 1]->id);
    while (in->ntimers)
        timer_free(in, in->ntimers - 1);
    arbh_host *h = in->host;
    pthread_mutex_lock(&h->metric_mu);
    size_t w = 0;
    for (size_t i = 0; i < h->nroutes; i++) {
        arbh_route *r = h->routes[i];
        if (r->owner == in) {
            free(r->instance);
            free(r->path);
            free(r);
        } else {
            h->routes[w++] = r;
        }
    }
    h->nroutes = w;
    pthread_mutex_unlock(&h->metric_mu);
}

void arbh_instance_commit_regs(arbh_instance *in)
{
    in->staging = false;
    for (size_t i = 0; i < in->nsubs; i++)
        in->subs[i]->active = true;
    for (size_t i = 0; i < in->ntimers; i++)
        timer_arm(in->timers[i]);
    arbh_host *h = in->host;
    pthread_mutex_lock(&h->metric_mu);
    for (size_t i = 0; i < h->nroutes; i++)
        if (h->routes[i]->owner == in)
            h->routes[i]->active = true;
    pthread_mutex_unlock(&h->metric_mu);
}

void arbh_instance_arm_timers(arbh_instance *in)
{
    for (size_t i = 0; i < in->ntimers; i++)
        if (!event_pending(in->timers[i]->ev, EV_TIMEOUT, NULL))
            timer_arm(in->timers[i]);
}

void arbh_instance_stop(arbh_instance *in)
{
    if (in->state == INST_RUNNING && !in->is_pseudo) {
        arbh_running prev = arbh_enter(in, ARBH_CB_STOP, -1);
        in->desc->stop(in->self);
        arbh_leave(prev);
        in->state = INST_STOPPED;
    }
    arbh_instance_teardown_regs(in);
}

void arbh_instance_free(arbh_instance *in)
{
    if (!in)
        return;
    arbh_latency_forget(in);
    arbh_instance_teardown_regs(in);
    if (in->self && in->desc) {
        arbh_running prev = arbh_enter(in, ARBH_CB_DESTROY, -1);
        in->desc->destroy(in->self);
        arbh_leave(prev);
    }
    if (in->dl && !(in->host && in->host->keep_images))
        dlclose(in->dl);
    free(in->subs);
    free(in->timers);
    for (size_t i = 0; i < in->nread_sections; i++)
        free(in->read_sections[i]);
    free(in->read_slots);
    free(in->read_sections);
    for (size_t i = 0; i < in->nread_prefixes; i++)
        free(in->read_prefixes[i]);
    free(in->read_prefixes);
    free(in->claims);
    free(in->name);
    free(in->section);
    free(in->path);
    free(in);
}

/* ---- hot reload ---- */

/* dlopen caches images by path and file identity: a rebuilt .so at the same
 * path must be opened from a fresh copy. The copy is checked (image.c) before
 * dlopen and unlinked right after it on every path; the mapping keeps it
 * alive. */
static int open_unique_copy(arbh_instance *in, const char *path, bool force, arbh_reload_image *img,
                            char *err, size_t n)
{
    char copy[4096];
    int rc = arbh_image_copy(path, in->name, copy, sizeof copy, img->build_id, sizeof img->build_id,
                             err, n);
    if (rc != ARB_OK)
        return rc;
    /* The same bytes as the running image: nothing to load. */
    if (!force && in->build_id[0] && !strcmp(img->build_id, in->build_id)) {
        arbh_image_unlink(copy);
        img->unchanged = true;
        return ARB_OK;
    }
    /* Who is loading, for the crash line: the instance, the user's file and
     * the new image's id (not the running one's). */
    arbh_instance *who = calloc(1, sizeof *who);
    if (who) {
        who->name = in->name;
        who->path = (char *)path;
        arbh_instance_set_image(who, img->build_id);
    }
    rc = open_image(who, copy, path, &img->dl, &img->desc, err, n);
    free(who);
    arbh_image_unlink(copy);
    return rc;
}

int arbh_reload_prepare(arbh_instance *old, const char *new_path, bool force,
                        arbh_reload_image *img, char *err, size_t n)
{
    memset(img, 0, sizeof *img);
    const char *path = new_path && *new_path ? new_path : old->path;
    snprintf(img->path, sizeof img->path, "%s", path);
    int rc = open_unique_copy(old, path, force, img, err, n);
    if (rc == ARB_OK && !img->unchanged && strcmp(img->desc->name, old->desc->name)) {
        snprintf(err, n, "%s is plugin '%s', not '%s'", path, img->desc->name, old->desc->name);
        dlclose(img->dl);
        img->dl = NULL;
        rc = ARB_EINVAL;
    }
    return rc;
}

void arbh_reload_discard(arbh_reload_image *img)
{
    if (img->dl)
        dlclose(img->dl);
    img->dl = NULL;
}

int arbh_instance_move_state(arbh_instance *old, arbh_instance *nw, char *err, size_t n)
{
    if (!old->desc->save || !nw->desc->restore)
        return ARB_OK;
    void *bytes = NULL;
    size_t len = 0;
    arbh_running prev = arbh_enter(old, ARBH_CB_SAVE, -1);
    int rc = old->desc->save(old->self, &bytes, &len);
    arbh_leave(prev);
    if (rc != ARB_OK) {
        snprintf(err, n, "save failed in the running instance (%d)", rc);
        free(bytes);
        return rc;
    }
    prev = arbh_enter(nw, ARBH_CB_RESTORE, -1);
    rc = nw->desc->restore(nw->self, old->desc->state_version, bytes, len);
    arbh_leave(prev);
    nw->state_restored = rc == ARB_OK;
    if (rc != ARB_OK)
        snprintf(err, n, "the new build refused the state (state version %u, %zu bytes): %s",
                 old->desc->state_version, len, rc == ARB_EREFUSED ? "refused" : "restore failed");
    free(bytes);
    return rc;
}

int arbh_instance_reload(arbh_instance **slot, arbh_reload_image *img, char *err, size_t n)
{
    arbh_instance *old = *slot;
    arbh_host *h = old->host;
    int64_t t0 = arbh_mono_ns();
    if (old->state != INST_RUNNING) {
        snprintf(err, n, "%s is not running", old->name);
        arbh_reload_discard(img);
        return ARB_ESTATE;
    }
    arbh_instance *nw = arbh_instance_new(h, old->cfg, old->name);
    if (!nw) {
        snprintf(err, n, "out of memory");
        arbh_reload_discard(img);
        return ARB_ENOMEM;
    }
    nw->loop = old->loop;
    nw->thread = old->thread;
    nw->path = strdup(img->path);
    nw->staging = true;
    nw->dl = img->dl; /* the instance owns the image from here */
    nw->desc = img->desc;
    img->dl = NULL;
    arbh_instance_set_image(nw, img->build_id);
    int rc = arbh_instance_create(nw, err, n);
    if (rc == ARB_OK)
        rc = arbh_instance_move_state(old, nw, err, n);
    if (rc == ARB_OK)
        rc = arbh_instance_start(nw, err, n);
    if (rc != ARB_OK) {
        arbh_instance_free(nw);
        arbh_log(h, old->name, ARB_LOG_WARN, "reload failed, old build keeps running: %s", err);
        return rc;
    }
    /* Commit: nothing can fail from here on. */
    nw->reloads = old->reloads + 1;
    arbh_latency_rebind(old, nw);
    old->state_adopted = nw->state_restored;
    arbh_instance_stop(old);
    arbh_instance_commit_regs(nw);
    *slot = nw;
    arbh_instance_free(old);
    int64_t pause = arbh_mono_ns() - t0;
    if (h->reload_pause)
        arb_hist_observe(h->reload_pause, (uint64_t)pause);
    h->last_reload_pause_ns = pause;
    arbh_log(h, nw->name, ARB_LOG_INFO, "reloaded %s %s from %s in %.3f ms", nw->desc->name,
             nw->desc->version, nw->path, (double)pause / 1e6);
    return ARB_OK;
}

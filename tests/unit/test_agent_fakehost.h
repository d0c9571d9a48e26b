/*
 * test_agent_fakehost.h -- a fake host API table for unit tests of the
 * simulation plugins (clock, generator, agents) and of arb/agent.h.
 *
 * It keeps config entries the test sets, records every publish (topic, key,
 * bytes) and delivers them FIFO to subscribers when the test calls
 * fh_drain(), keeps timers for the test to fire by hand, and holds the
 * simulated time. Several instances (fh_ctx) can share one fake host, so a
 * clock can drive a generator and agents in one test. Not a host: no loops,
 * no threads, no reload; those are tested against the real host.
 */
#ifndef TEST_AGENT_FAKEHOST_H
#define TEST_AGENT_FAKEHOST_H

#include <arb/plugin.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FH_MAX_CFG 256
#define FH_MAX_SUBS 64
#define FH_MAX_TIMERS 64
#define FH_MAX_TOPICS 32
#define FH_MAX_METRICS 512

typedef struct fakehost fakehost;

typedef struct fh_ctx {
    arb_ctx ctx; /* first: the plugin's arb_ctx* is this */
    fakehost *fh;
    char name[64];
    char section[80];
} fh_ctx;

typedef struct fh_msg {
    int topic;
    uint64_t key;
    uint32_t len;
    uint8_t *data;
    fh_ctx *from;
} fh_msg;

typedef struct fh_timer {
    fh_ctx *owner;
    uint64_t interval_ns;
    int repeat, active;
    arb_timer_fn fn;
    void *user;
} fh_timer;

struct fakehost {
    arb_host_api api;
    struct {
        char section[80], key[64], value[512];
    } cfg[FH_MAX_CFG];
    int ncfg;
    char topics[FH_MAX_TOPICS][64];
    int ntopics;
    struct {
        int topic, active;
        arb_msg_fn fn;
        void *user;
        fh_ctx *owner;
    } subs[FH_MAX_SUBS];
    int nsubs;
    fh_timer timers[FH_MAX_TIMERS];
    int ntimers;
    /* Every publish, in order; `delivered` is how far fh_drain got. */
    fh_msg *log;
    int adopted; /* what state_adopted answers (a successor took the state) */
    size_t nlog, caplog, delivered;
    int publish_fails; /* >0: the next publishes return ARB_EFULL */
    int64_t now;
    int time_set;
    int shutdown_called, shutdown_code;
    int rejects;
    char last_error[512];
    void *metrics[FH_MAX_METRICS];
    int nmetrics;
    uint64_t host_id;
};

static inline fh_ctx *fh_of(arb_ctx *c) { return (fh_ctx *)c; }

static inline const char *fh_api_name(arb_ctx *c) { return fh_of(c)->name; }

static inline void fh_api_vlog(arb_ctx *c, int level, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    if (level == ARB_LOG_ERROR)
        snprintf(fh_of(c)->fh->last_error, sizeof fh_of(c)->fh->last_error, "%s", line);
    if (getenv("FH_VERBOSE"))
        fprintf(stderr, "[%s] %s\n", fh_of(c)->name, line);
}

static inline int fh_api_topic(arb_ctx *c, const char *name)
{
    static const char *const known[] = {"order_commands",  "order_events", "trade_executed",
                                        "market_data",     "system_ticks", "market_events",
                                        "service_registry"};
    fakehost *fh = fh_of(c)->fh;
    for (int i = 0; i < 7; i++)
        if (!strcmp(name, known[i]))
            return i;
    for (int i = 0; i < fh->ntopics; i++)
        if (!strcmp(fh->topics[i], name))
            return ARB_TOPIC_WELL_KNOWN + i;
    if (fh->ntopics == FH_MAX_TOPICS)
        return ARB_EFULL;
    snprintf(fh->topics[fh->ntopics], sizeof fh->topics[0], "%s", name);
    return ARB_TOPIC_WELL_KNOWN + fh->ntopics++;
}

static inline int fh_api_publish(arb_ctx *c, int topic, uint64_t key, const void *data, size_t len)
{
    fakehost *fh = fh_of(c)->fh;
    if (fh->publish_fails > 0) {
        fh->publish_fails--;
        return ARB_EFULL;
    }
    if (fh->nlog == fh->caplog) {
        fh->caplog = fh->caplog ? fh->caplog * 2 : 256;
        fh->log = (fh_msg *)realloc(fh->log, fh->caplog * sizeof *fh->log);
    }
    fh_msg *m = &fh->log[fh->nlog++];
    m->topic = topic;
    m->key = key;
    m->len = (uint32_t)len;
    m->data = (uint8_t *)malloc(len ? len : 1);
    memcpy(m->data, data, len);
    m->from = fh_of(c);
    return ARB_OK;
}

static inline int fh_api_subscribe(arb_ctx *c, int topic, arb_msg_fn fn, void *user)
{
    fakehost *fh = fh_of(c)->fh;
    if (fh->nsubs == FH_MAX_SUBS)
        return ARB_EFULL;
    int id = fh->nsubs++;
    fh->subs[id].topic = topic;
    fh->subs[id].fn = fn;
    fh->subs[id].user = user;
    fh->subs[id].owner = fh_of(c);
    fh->subs[id].active = 1;
    return id;
}

static inline int fh_api_unsubscribe(arb_ctx *c, int id)
{
    fakehost *fh = fh_of(c)->fh;
    if (id < 0 || id >= fh->nsubs)
        return ARB_ENOENT;
    fh->subs[id].active = 0;
    return ARB_OK;
}

static inline int fh_api_timer_start(arb_ctx *c, uint64_t interval_ns, int repeat, arb_timer_fn fn,
                                     void *user)
{
    fakehost *fh = fh_of(c)->fh;
    if (fh->ntimers == FH_MAX_TIMERS) {
        /* Reuse a spent slot: one-shot timers come and go. */
        for (int i = 0; i < fh->ntimers; i++)
            if (!fh->timers[i].active) {
                fh->timers[i] = (fh_timer){fh_of(c), interval_ns, repeat, 1, fn, user};
                return i;
            }
        return ARB_EFULL;
    }
    fh->timers[fh->ntimers] = (fh_timer){fh_of(c), interval_ns, repeat, 1, fn, user};
    return fh->ntimers++;
}

static inline int fh_api_timer_stop(arb_ctx *c, int id)
{
    fakehost *fh = fh_of(c)->fh;
    if (id < 0 || id >= fh->ntimers || !fh->timers[id].active)
        return ARB_ENOENT;
    fh->timers[id].active = 0;
    return ARB_OK;
}

static inline const char *fh_cfg_get(fakehost *fh, const char *section, const char *key)
{
    const char *v = NULL;
    for (int i = 0; i < fh->ncfg; i++)
        if (!strcmp(fh->cfg[i].section, section) && !strcmp(fh->cfg[i].key, key))
            v = fh->cfg[i].value;
    return v;
}

static inline const char *fh_sec(arb_ctx *c, const char *section)
{
    return section ? section : fh_of(c)->section;
}

static inline int fh_api_cfg_str(arb_ctx *c, const char *section, const char *key, const char *def,
                                 const char **out)
{
    const char *v = fh_cfg_get(fh_of(c)->fh, fh_sec(c, section), key);
    *out = v ? v : def;
    return ARB_OK;
}

static inline int fh_reject(arb_ctx *c, const char *section, const char *key, const char *why)
{
    fakehost *fh = fh_of(c)->fh;
    fh->rejects++;
    snprintf(fh->last_error, sizeof fh->last_error, "[%s] %s: %s", fh_sec(c, section), key, why);
    if (getenv("FH_VERBOSE"))
        fprintf(stderr, "reject: %s\n", fh->last_error);
    return ARB_EINVAL;
}

static inline int fh_api_cfg_int(arb_ctx *c, const char *section, const char *key, int64_t def,
                                 int64_t min, int64_t max, int64_t *out)
{
    const char *v = fh_cfg_get(fh_of(c)->fh, fh_sec(c, section), key);
    if (!v) {
        *out = def;
        return ARB_OK;
    }
    char *end;
    long long x = strtoll(v, &end, 10);
    if (*end || end == v || x < min || x > max)
        return fh_reject(c, section, key, "bad integer");
    *out = x;
    return ARB_OK;
}

static inline int fh_api_cfg_double(arb_ctx *c, const char *section, const char *key, double def,
                                    double min, double max, double *out)
{
    const char *v = fh_cfg_get(fh_of(c)->fh, fh_sec(c, section), key);
    if (!v) {
        *out = def;
        return ARB_OK;
    }
    char *end;
    double x = strtod(v, &end);
    if (*end || end == v || !(x >= min && x <= max))
        return fh_reject(c, section, key, "bad number");
    *out = x;
    return ARB_OK;
}

static inline int fh_api_cfg_bool(arb_ctx *c, const char *section, const char *key, int def,
                                  int *out)
{
    const char *v = fh_cfg_get(fh_of(c)->fh, fh_sec(c, section), key);
    if (!v) {
        *out = def;
        return ARB_OK;
    }
    if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1"))
        *out = 1;
    else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0"))
        *out = 0;
    else
        return fh_reject(c, section, key, "bad boolean");
    return ARB_OK;
}

static inline int fh_api_cfg_each(arb_ctx *c, const char *section, arb_cfg_fn fn, void *user)
{
    fakehost *fh = fh_of(c)->fh;
    const char *s = fh_sec(c, section);
    for (int i = 0; i < fh->ncfg; i++)
        if (!strcmp(fh->cfg[i].section, s) && fn(user, fh->cfg[i].key, fh->cfg[i].value))
            break;
    return ARB_OK;
}

static inline int fh_api_cfg_sections(arb_ctx *c, const char *prefix, arb_cfg_fn fn, void *user)
{
    fakehost *fh = fh_of(c)->fh;
    size_t pl = strlen(prefix);
    for (int i = 0; i < fh->ncfg; i++) {
        if (strncmp(fh->cfg[i].section, prefix, pl))
            continue;
        int seen = 0;
        for (int j = 0; j < i; j++)
            if (!strcmp(fh->cfg[j].section, fh->cfg[i].section))
                seen = 1;
        if (!seen && fn(user, fh->cfg[i].section, NULL))
            break;
    }
    return ARB_OK;
}

static inline int fh_api_cfg_vreject(arb_ctx *c, const char *section, const char *key,
                                     const char *fmt, va_list ap)
{
    char why[400];
    vsnprintf(why, sizeof why, fmt, ap);
    return fh_reject(c, section, key, why);
}

static inline void *fh_metric(arb_ctx *c, size_t size)
{
    fakehost *fh = fh_of(c)->fh;
    void *m = calloc(1, size);
    if (fh->nmetrics < FH_MAX_METRICS)
        fh->metrics[fh->nmetrics++] = m;
    return m;
}

static inline arb_counter *fh_api_counter(arb_ctx *c, const char *n, const char *l, const char *h)
{
    (void)n, (void)l, (void)h;
    return (arb_counter *)fh_metric(c, sizeof(arb_counter));
}

static inline arb_gauge *fh_api_gauge(arb_ctx *c, const char *n, const char *l, const char *h)
{
    (void)n, (void)l, (void)h;
    return (arb_gauge *)fh_metric(c, sizeof(arb_gauge));
}

static inline arb_histogram *fh_api_histogram(arb_ctx *c, const char *n, const char *l,
                                              const char *h)
{
    (void)n, (void)l, (void)h;
    return (arb_histogram *)fh_metric(c, sizeof(arb_histogram));
}

static inline struct event_base *fh_api_event_base(arb_ctx *c)
{
    (void)c;
    return NULL;
}

static inline int64_t fh_api_now(arb_ctx *c) { return fh_of(c)->fh->now; }

static inline void fh_api_set_time(arb_ctx *c, int64_t ns)
{
    fh_of(c)->fh->now = ns;
    fh_of(c)->fh->time_set = 1;
}

static inline void fh_api_shutdown(arb_ctx *c, int code)
{
    fh_of(c)->fh->shutdown_called++;
    fh_of(c)->fh->shutdown_code = code;
}

static inline int fh_api_admin_route(arb_ctx *c, const char *p, arb_admin_fn fn, void *u)
{
    (void)c, (void)p, (void)fn, (void)u;
    return ARB_OK;
}

static inline uint64_t fh_api_host_id(arb_ctx *c) { return fh_of(c)->fh->host_id; }

static inline int fh_api_state_adopted(arb_ctx *c) { return fh_of(c)->fh->adopted; }

static inline void fh_api_set_health(arb_ctx *c, int healthy, const char *detail)
{
    (void)c, (void)healthy, (void)detail;
}

static inline fakehost *fh_new(void)
{
    fakehost *fh = (fakehost *)calloc(1, sizeof *fh);
    arb_host_api *a = &fh->api;
    a->abi_version = ARB_ABI_VERSION;
    a->size = sizeof *a;
    a->instance_name = fh_api_name;
    a->vlog = fh_api_vlog;
    a->topic = fh_api_topic;
    a->publish = fh_api_publish;
    a->subscribe = fh_api_subscribe;
    a->unsubscribe = fh_api_unsubscribe;
    a->timer_start = fh_api_timer_start;
    a->timer_stop = fh_api_timer_stop;
    a->cfg_str = fh_api_cfg_str;
    a->cfg_int = fh_api_cfg_int;
    a->cfg_double = fh_api_cfg_double;
    a->cfg_bool = fh_api_cfg_bool;
    a->cfg_each = fh_api_cfg_each;
    a->cfg_sections = fh_api_cfg_sections;
    a->cfg_vreject = fh_api_cfg_vreject;
    a->counter = fh_api_counter;
    a->gauge = fh_api_gauge;
    a->histogram = fh_api_histogram;
    a->event_base = fh_api_event_base;
    a->now = fh_api_now;
    a->set_time = fh_api_set_time;
    a->shutdown = fh_api_shutdown;
    a->admin_route = fh_api_admin_route;
    a->host_id = fh_api_host_id;
    a->set_health = fh_api_set_health;
    a->state_adopted = fh_api_state_adopted;
    fh->now = 1000000000; /* "wall clock" until a clock sets time */
    fh->host_id = 42;
    return fh;
}

static inline fh_ctx *fh_ctx_new(fakehost *fh, const char *name)
{
    fh_ctx *c = (fh_ctx *)calloc(1, sizeof *c);
    c->ctx.api = &fh->api;
    c->fh = fh;
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(c->section, sizeof c->section, "plugin %s", name);
    return c;
}

static inline void fh_set(fakehost *fh, const char *section, const char *key, const char *value)
{
    if (fh->ncfg == FH_MAX_CFG)
        abort();
    snprintf(fh->cfg[fh->ncfg].section, sizeof fh->cfg[0].section, "%s", section);
    snprintf(fh->cfg[fh->ncfg].key, sizeof fh->cfg[0].key, "%s", key);
    snprintf(fh->cfg[fh->ncfg].value, sizeof fh->cfg[0].value, "%s", value);
    fh->ncfg++;
}

/* Sets a key of instance NAME's section ("plugin NAME"). */
static inline void fh_set_plugin(fakehost *fh, const char *name, const char *key, const char *value)
{
    char section[80];
    snprintf(section, sizeof section, "plugin %s", name);
    fh_set(fh, section, key, value);
}

/* Delivers everything published so far (and what that publishes in turn)
 * to the active subscribers, in publish order. Returns messages delivered. */
static inline size_t fh_drain(fakehost *fh)
{
    size_t n = 0;
    while (fh->delivered < fh->nlog) {
        size_t i = fh->delivered++;
        for (int s = 0; s < fh->nsubs; s++) {
            if (!fh->subs[s].active || fh->subs[s].topic != fh->log[i].topic)
                continue;
            /* Copy: the log may move while the callback publishes. */
            fh_msg m = fh->log[i];
            arb_msg msg = {m.data, m.len, (uint16_t)m.topic, 0, m.key, -1, -1};
            fh->subs[s].fn(fh->subs[s].user, &msg);
        }
        n++;
    }
    return n;
}

/* Fires timer id once (as the loop would); a one-shot timer is spent. */
static inline void fh_fire(fakehost *fh, int id)
{
    fh_timer *t = &fh->timers[id];
    if (!t->active)
        return;
    if (!t->repeat)
        t->active = 0;
    t->fn(t->user);
}

/* The first active timer, or -1. */
static inline int fh_next_timer(fakehost *fh)
{
    for (int i = 0; i < fh->ntimers; i++)
        if (fh->timers[i].active)
            return i;
    return -1;
}

/* Number of logged publishes on a topic. */
static inline size_t fh_count(fakehost *fh, int topic)
{
    size_t n = 0;
    for (size_t i = 0; i < fh->nlog; i++)
        n += fh->log[i].topic == topic;
    return n;
}

/* The k-th (0-based) logged publish on a topic, or NULL. */
static inline fh_msg *fh_nth(fakehost *fh, int topic, size_t k)
{
    for (size_t i = 0; i < fh->nlog; i++)
        if (fh->log[i].topic == topic && k-- == 0)
            return &fh->log[i];
    return NULL;
}

static inline void fh_clear_log(fakehost *fh)
{
    for (size_t i = 0; i < fh->nlog; i++)
        free(fh->log[i].data);
    fh->nlog = fh->delivered = 0;
}

static inline void fh_free(fakehost *fh)
{
    fh_clear_log(fh);
    free(fh->log);
    for (int i = 0; i < fh->nmetrics; i++)
        free(fh->metrics[i]);
    free(fh);
}

#endif

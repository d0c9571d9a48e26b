/*
 * services.c -- the service registry read model (see services.h). A sorted
 * array with a linear search: a deployment has a handful of hosts, each
 * heard from every few seconds.
 */
#include "services.h"

#include <stdlib.h>
#include <string.h>

void gw_services_init(gw_services *s, size_t max, int64_t replay_ns)
{
    memset(s, 0, sizeof *s);
    s->max = max ? max : 1;
    s->replay_ns = replay_ns;
}

void gw_services_free(gw_services *s)
{
    for (size_t i = 0; i < s->count; i++)
        free(s->items[i].plugins);
    free(s->items);
    s->items = NULL;
    s->count = 0;
}

/* Index of host_id, or the bitwise complement of where it would go. */
static long position(const gw_services *s, const char *host_id)
{
    size_t i = 0;
    for (; i < s->count; i++) {
        int c = strcmp(s->items[i].host_id, host_id);
        if (c == 0)
            return (long)i;
        if (c > 0)
            break;
    }
    return ~(long)i;
}

const gw_service *gw_services_find(const gw_services *s, const char *host_id)
{
    long i = position(s, host_id);
    return i >= 0 ? &s->items[i] : NULL;
}

static void forget(gw_services *s, size_t i)
{
    free(s->items[i].plugins);
    memmove(&s->items[i], &s->items[i + 1], (s->count - i - 1) * sizeof *s->items);
    s->count--;
}

/* Makes room for a new host at its sorted place; returns the index. */
static long insert(gw_services *s, const char *host_id)
{
    if (s->count >= s->max) {
        size_t oldest = 0;
        for (size_t i = 1; i < s->count; i++)
            if (s->items[i].seen_at < s->items[oldest].seen_at)
                oldest = i;
        forget(s, oldest);
    }
    if (!s->items) {
        s->items = calloc(s->max, sizeof *s->items);
        if (!s->items)
            return -1;
    }
    size_t at = (size_t)~position(s, host_id);
    memmove(&s->items[at + 1], &s->items[at], (s->count - at) * sizeof *s->items);
    memset(&s->items[at], 0, sizeof s->items[at]);
    s->count++;
    return (long)at;
}

int gw_services_apply(gw_services *s, const arb_service *rec, int64_t now_ns)
{
    char host_id[ARB_SVC_ID_LEN + 1];
    arb_fixstr(host_id, rec->host_id, ARB_SVC_ID_LEN);
    long i = position(s, host_id);
    if (i >= 0) {
        const gw_service *old = &s->items[i];
        /* A record of an earlier run of the host, or one overtaken by a
         * later record of this run, says nothing new. */
        if (rec->started_at < old->started_at ||
            (rec->started_at == old->started_at && rec->ts < old->announced_at))
            return GW_SVC_OUTDATED;
    }
    gw_service_plugin *plugins = NULL;
    if (rec->n_plugins) {
        plugins = calloc(rec->n_plugins, sizeof *plugins);
        if (!plugins)
            return GW_SVC_NOMEM;
        for (uint32_t k = 0; k < rec->n_plugins; k++) {
            arb_service_plugin p;
            arb_service_get_plugin(rec, k, &p);
            arb_fixstr(plugins[k].instance, p.instance, ARB_SVC_NAME_LEN);
            arb_fixstr(plugins[k].plugin, p.plugin, ARB_SVC_NAME_LEN);
            arb_fixstr(plugins[k].version, p.version, ARB_SVC_VER_LEN);
        }
    }
    if (i < 0 && (i = insert(s, host_id)) < 0) {
        free(plugins);
        return GW_SVC_NOMEM;
    }
    gw_service *svc = &s->items[i];
    free(svc->plugins);
    memcpy(svc->host_id, host_id, sizeof svc->host_id);
    arb_fixstr(svc->admin, rec->admin, ARB_SVC_ADDR_LEN);
    svc->pid = rec->pid;
    svc->started_at = rec->started_at;
    svc->announced_at = rec->ts;
    svc->seen_at = rec->ts > 0 && now_ns - rec->ts > s->replay_ns ? rec->ts : now_ns;
    svc->gone = rec->status == ARB_SVC_TOMBSTONE;
    svc->records++;
    svc->n_plugins = rec->n_plugins;
    svc->plugins = plugins;
    return GW_SVC_TAKEN;
}

int gw_service_liveness(const gw_service *svc, int64_t now_ns, int64_t alive_ns, int64_t dead_ns)
{
    if (svc->gone)
        return GW_LIVE_GONE;
    int64_t silent = now_ns - svc->seen_at;
    if (silent < alive_ns)
        return GW_LIVE_ALIVE;
    return silent < dead_ns ? GW_LIVE_STALE : GW_LIVE_DEAD;
}

const char *gw_liveness_name(int liveness)
{
    switch (liveness) {
    case GW_LIVE_ALIVE: return "alive";
    case GW_LIVE_STALE: return "stale";
    case GW_LIVE_DEAD: return "dead";
    case GW_LIVE_GONE: return "gone";
    }
    return "unknown";
}

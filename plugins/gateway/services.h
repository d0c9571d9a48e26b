/*
 * services.h -- the gateway's read model of service_registry: which hosts
 * announced themselves, with what plugins, and whether they still do.
 *
 * Every arb-host publishes an announcement on service_registry every
 * [host] announce_ms and a tombstone when it stops cleanly. This model keeps
 * the latest of each host (keyed by host id) and judges liveness from when
 * it was last heard of. Pure code: no HTTP, no bus, no clock of its own (the
 * caller passes the time), so it is tested directly. Rendering is views.c's.
 */
#ifndef GW_SERVICES_H
#define GW_SERVICES_H

#include <stddef.h>
#include <stdint.h>

#include "arb/wire.h"

enum gw_liveness {
    GW_LIVE_ALIVE = 0, /* heard from within alive_ns */
    GW_LIVE_STALE,     /* silent for longer than alive_ns, less than dead_ns */
    GW_LIVE_DEAD,      /* silent for dead_ns or more, never said goodbye */
    GW_LIVE_GONE,      /* sent a tombstone: stopped cleanly */
};

typedef struct gw_service_plugin {
    char instance[ARB_SVC_NAME_LEN + 1];
    char plugin[ARB_SVC_NAME_LEN + 1];
    char version[ARB_SVC_VER_LEN + 1];
} gw_service_plugin;

typedef struct gw_service {
    char host_id[ARB_SVC_ID_LEN + 1];
    char admin[ARB_SVC_ADDR_LEN + 1]; /* "" when the host has no admin endpoint */
    uint32_t pid;
    int64_t started_at;   /* the host's wall clock, ns */
    int64_t announced_at; /* the latest record's own timestamp (sender's clock) */
    int64_t seen_at;      /* when it was last heard of (our wall clock, ns) */
    int gone;             /* the latest record was a tombstone */
    uint64_t records;     /* announcements and tombstones taken for this host */
    uint16_t n_plugins;
    gw_service_plugin *plugins; /* owned */
} gw_service;

typedef struct gw_services {
    gw_service *items; /* sorted by host_id */
    size_t count, max;
    /* A record whose own timestamp is older than this much before it
     * arrives is taken as heard of at that timestamp, not on arrival: an
     * old announcement replayed from Kafka must not bring a dead host back
     * to life. Within it, the arrival time counts, so clocks that disagree
     * by less than this do not matter. */
    int64_t replay_ns;
} gw_services;

/* At most `max` hosts are kept; past that the one heard of longest ago is
 * forgotten. */
void gw_services_init(gw_services *s, size_t max, int64_t replay_ns);
void gw_services_free(gw_services *s);

/* Outcome of gw_services_apply. */
enum {
    GW_SVC_TAKEN = 0,    /* the host's entry now reflects the record */
    GW_SVC_OUTDATED = 1, /* older than what is known (earlier run or earlier record) */
    GW_SVC_NOMEM = -1,   /* could not allocate; nothing changed */
};

/* Takes a decoded record (arb_service_decode) that arrived at now_ns. */
int gw_services_apply(gw_services *s, const arb_service *rec, int64_t now_ns);

const gw_service *gw_services_find(const gw_services *s, const char *host_id);

int gw_service_liveness(const gw_service *svc, int64_t now_ns, int64_t alive_ns, int64_t dead_ns);
const char *gw_liveness_name(int liveness);

#endif

/*
 * run_members.h -- who takes part in the run, as the runs table keeps it:
 * the hosts that announced themselves on service_registry and the plugin
 * instances they run, merged record by record into two JSON objects.
 *
 *   hosts:   host id -> {pid, admin, started_at, instances[, config_digest]
 *                        [, stopped_at]}
 *   plugins: instance -> {plugin, version}
 *
 * Pure bookkeeping (jansson, no I/O, no host): the recorder feeds it the
 * decoded announcements and hands the objects to the writer when they
 * changed (hosts announce every few seconds; most records change nothing).
 * Not here: which announcements belong to the run (the recorder decides).
 */
#ifndef REC_RUN_MEMBERS_H
#define REC_RUN_MEMBERS_H

#include <jansson.h>

#include "arb/wire.h"

typedef struct rec_members {
    json_t *hosts;   /* owned */
    json_t *plugins; /* owned */
    int changed;     /* something changed since rec_members_take */
} rec_members;

/* ARB_OK or ARB_ENOMEM. */
int rec_members_init(rec_members *m);
void rec_members_free(rec_members *m);

/* Merges one announcement. config_digest: the host's configuration digest
 * when known (the recorder's own host), else NULL. A tombstone keeps the
 * host's entry and adds stopped_at. ARB_OK or ARB_ENOMEM. */
int rec_members_apply(rec_members *m, const arb_service *svc, const char *config_digest);

/* If something changed since the last call: the two objects as compact
 * JSON text (malloc'd, the caller frees both), and 1. Else 0 and NULLs.
 * -1 if memory ran out (the change stays pending). */
int rec_members_take(rec_members *m, char **hosts_json, char **plugins_json);

#endif

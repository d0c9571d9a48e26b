/*
 * run_members.c -- the run's hosts and plugins as JSON (see run_members.h).
 */
#include "run_members.h"

#include <stdio.h>
#include <stdlib.h>

#include "copy_rows.h"

int rec_members_init(rec_members *m)
{
    m->hosts = json_object();
    m->plugins = json_object();
    m->changed = 0;
    if (!m->hosts || !m->plugins) {
        rec_members_free(m);
        return ARB_ENOMEM;
    }
    return ARB_OK;
}

void rec_members_free(rec_members *m)
{
    json_decref(m->hosts);
    json_decref(m->plugins);
    m->hosts = m->plugins = NULL;
}

/* A wall-clock time as PostgreSQL prints a timestamptz, so SQL can cast it. */
static json_t *time_json(int64_t ns)
{
    char text[REC_TIMESTAMP_LEN + 1];
    text[rec_format_timestamp(text, ns)] = 0;
    return json_string(text);
}

/* Puts value under key unless an equal value is there; steals value. */
static int put(rec_members *m, json_t *obj, const char *key, json_t *value)
{
    if (!value)
        return ARB_ENOMEM;
    json_t *old = json_object_get(obj, key);
    if (old && json_equal(old, value)) {
        json_decref(value);
        return ARB_OK;
    }
    if (json_object_set_new(obj, key, value))
        return ARB_ENOMEM;
    m->changed = 1;
    return ARB_OK;
}

static json_t *host_entry(const arb_service *svc, const char *config_digest)
{
    char admin[ARB_SVC_ADDR_LEN + 1];
    json_t *instances = json_array();
    json_t *h = json_pack("{s:I, s:s, s:o, s:o}", "pid", (json_int_t)svc->pid, "admin",
                          arb_fixstr(admin, svc->admin, ARB_SVC_ADDR_LEN), "started_at",
                          time_json(svc->started_at), "instances", instances);
    if (!h)
        return NULL;
    for (uint32_t i = 0; i < svc->n_plugins; i++) {
        arb_service_plugin p;
        char name[ARB_SVC_NAME_LEN + 1];
        arb_service_get_plugin(svc, i, &p);
        if (json_array_append_new(instances,
                                  json_string(arb_fixstr(name, p.instance, ARB_SVC_NAME_LEN)))) {
            json_decref(h);
            return NULL;
        }
    }
    if (config_digest && *config_digest &&
        json_object_set_new(h, "config_digest", json_string(config_digest))) {
        json_decref(h);
        return NULL;
    }
    return h;
}

int rec_members_apply(rec_members *m, const arb_service *svc, const char *config_digest)
{
    char id[ARB_SVC_ID_LEN + 1];
    arb_fixstr(id, svc->host_id, ARB_SVC_ID_LEN);
    if (svc->status == ARB_SVC_TOMBSTONE) {
        json_t *old = json_object_get(m->hosts, id);
        json_t *gone = old ? json_deep_copy(old) : json_object();
        if (!gone || json_object_set_new(gone, "stopped_at", time_json(svc->ts))) {
            json_decref(gone);
            return ARB_ENOMEM;
        }
        return put(m, m->hosts, id, gone);
    }
    int rc = put(m, m->hosts, id, host_entry(svc, config_digest));
    for (uint32_t i = 0; i < svc->n_plugins && rc == ARB_OK; i++) {
        arb_service_plugin p;
        char name[ARB_SVC_NAME_LEN + 1], plugin[ARB_SVC_NAME_LEN + 1], ver[ARB_SVC_VER_LEN + 1];
        char build[ARB_SVC_BUILD_LEN + 1];
        arb_service_get_plugin(svc, i, &p);
        /* build_id: the image's identity (empty from a host that announces
         * version 1 records); config: the market its configuration
         * describes (absent from a host before version 3 records) */
        json_t *entry =
            json_pack("{s:s, s:s, s:s}", "plugin", arb_fixstr(plugin, p.plugin, ARB_SVC_NAME_LEN),
                      "version", arb_fixstr(ver, p.version, ARB_SVC_VER_LEN), "build_id",
                      arb_fixstr(build, p.build_id, ARB_SVC_BUILD_LEN));
        char cfg[17];
        snprintf(cfg, sizeof cfg, "%016llx", (unsigned long long)p.config_digest);
        if (entry && p.config_digest && json_object_set_new(entry, "config", json_string(cfg))) {
            json_decref(entry);
            entry = NULL;
        }
        rc = put(m, m->plugins, arb_fixstr(name, p.instance, ARB_SVC_NAME_LEN), entry);
    }
    return rc;
}

int rec_members_take(rec_members *m, char **hosts_json, char **plugins_json)
{
    *hosts_json = *plugins_json = NULL;
    if (!m->changed)
        return 0;
    *hosts_json = json_dumps(m->hosts, JSON_COMPACT | JSON_SORT_KEYS);
    *plugins_json = json_dumps(m->plugins, JSON_COMPACT | JSON_SORT_KEYS);
    if (!*hosts_json || !*plugins_json) {
        free(*hosts_json);
        free(*plugins_json);
        *hosts_json = *plugins_json = NULL;
        return -1;
    }
    m->changed = 0;
    return 1;
}

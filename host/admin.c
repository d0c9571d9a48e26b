/*
 * admin.c -- the admin HTTP endpoint on the main loop (libevent evhttp):
 *   GET  /healthz                  liveness: 200 unless the transport or an instance is
 *                                  unhealthy; the body has the readiness state and reasons
 *   GET  /readyz                   readiness: 200 only when "ready", else 503 with the state
 *                                  (starting, degraded, failed) and a reason for each
 *   GET  /metrics                  Prometheus text: host, bus per topic, each plugin's own
 *   GET  /plugins                  JSON: instance, plugin, file, version, state, started_at, reloads
 *   POST /plugins/NAME/reload      hot reload (optional ?path=/new/build.so); "unchanged"
 *                                  when the file is the running image (&force=1 reloads it)
 *   POST /reload-config            re-read the configuration (as SIGHUP) and answer with
 *                                  the outcome; GET shows the last one (also in /healthz)
 *   ANY  /plugins/NAME/ROUTE       a route the instance registered (runs on its loop)
 * Who may do what (the admin endpoint runs code in the host: a reload loads
 * a shared object):
 *   - Every request that is not a GET (reload, a plugin's POST routes) needs
 *     Authorization: Bearer TOKEN. The token is [host] admin_token, or, when
 *     none is configured, the one in [host] admin_token_file (default
 *     var/admin.token, created 0600 at the first start; arbctl reads it). A
 *     web page cannot send that header to another origin without a CORS
 *     preflight, which this endpoint never grants.
 *   - A request carrying an Origin header other than the endpoint's own is
 *     refused (403): a browser is speaking for some page.
 *   - On loopback, GET /healthz and GET /metrics are open; other GETs are
 *     open unless admin_token is configured. Beyond loopback admin_token is
 *     required, and checked on every request.
 *   - A reload's ?path= must resolve (realpath) under a plugin directory or
 *     a config file's directory, unless [host] reload_any_path = true.
 * Not here: what reload does (instance.c), metric storage (instance.c).
 */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <errno.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "admin_token.h"
#include "host.h"
#include "journal.h"
#include "kafka.h"

static const char *const state_names[] = {"loaded", "created", "running", "stopped", "failed"};

static void reply_json(struct evhttp_request *req, int code, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "%s\n", s ? s : "{}");
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, code, code < 300 ? "OK" : "Error", b);
    evbuffer_free(b);
    free(s);
    json_decref(j);
}

static void reply_error(struct evhttp_request *req, int code, const char *ecode, const char *msg)
{
    reply_json(req, code, json_pack("{s:{s:s,s:s}}", "error", "code", ecode, "message", msg));
}

static bool token_ok(arbh_host *h, struct evhttp_request *req)
{
    if (!h->admin_token[0])
        return false;
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (!auth || strncmp(auth, "Bearer ", 7))
        return false;
    const char *given = auth + 7;
    size_t a = strlen(given), b = strlen(h->admin_token);
    /* Constant time in the token's length: no early exit on a mismatch. */
    unsigned diff = (unsigned)(a ^ b);
    for (size_t i = 0; i < b; i++)
        diff |= (unsigned)(uint8_t)h->admin_token[i] ^ (unsigned)(uint8_t)(i < a ? given[i] : 0);
    return diff == 0;
}

static json_t *reconfig_json(arbh_host *h)
{
    pthread_mutex_lock(&h->metric_mu);
    arbh_reconfig_result r = h->last_reconfig;
    pthread_mutex_unlock(&h->metric_mu);
    if (!r.at)
        return json_null();
    json_t *dropped = json_array();
    char list[sizeof r.state_dropped];
    snprintf(list, sizeof list, "%s", r.state_dropped);
    char *save = NULL;
    for (char *t = strtok_r(list, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
        json_array_append_new(dropped, json_string(t));
    return json_pack("{s:b,s:I,s:s,s:i,s:i,s:i,s:i,s:o}", "ok", r.ok, "at",
                     (json_int_t)(r.at / 1000000000), "message", r.message, "added", r.added,
                     "removed", r.removed, "changed", r.changed, "unchanged", r.unchanged,
                     "state_dropped", dropped);
}

static void reload_config(arbh_host *h, struct evhttp_request *req)
{
    if (evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
        char err[1024];
        arbh_host_reconfigure(h, err, sizeof err);
    }
    json_t *r = reconfig_json(h);
    bool ok = json_is_object(r) && json_is_true(json_object_get(r, "ok"));
    reply_json(req, json_is_object(r) && !ok ? 409 : 200, json_pack("{s:o}", "reconfigure", r));
}

/* The host's state for /healthz and /readyz: failed (the transport cannot
 * go on: restart the host), starting (no partitions assigned yet, or
 * instances still starting), degraded (a condition below, with its reason),
 * or ready. Reasons come from what the host observes: the transport's
 * readiness (kafka.h) and each instance's own health (arb_set_health: the
 * recorder's database, an agent that stopped deciding). */
static json_t *health_json(arbh_host *h, bool *healthy, const char **state)
{
    json_t *list = json_array(), *reasons = json_array();
    bool ok = true, failed = false, starting = h->starting, degraded = false;
    if (h->kafka) {
        arbh_kafka_stats ks;
        arbh_kafka_get_stats(h->kafka, &ks);
        ok = ks.healthy;
        failed = !ks.healthy;
        starting = starting || ks.starting;
        if (failed)
            json_array_append_new(reasons,
                                  json_sprintf("kafka: %s: the host must be restarted", ks.detail));
        if (ks.starting)
            json_array_append_new(reasons,
                                  json_string("kafka: starting: partitions not assigned yet"));
        if (ks.degraded) {
            degraded = true;
            json_array_append_new(reasons, json_sprintf("kafka: %s", ks.reasons));
        }
        json_array_append_new(list, json_pack("{s:s,s:s,s:b,s:s}", "instance", "kafka", "state",
                                              "running", "healthy", ks.healthy, "detail",
                                              ks.detail[0] ? ks.detail : ks.reasons));
    }
    if (h->journal) {
        arbh_journal_stats js;
        arbh_journal_get_stats(h->journal, &js);
        ok = ok && js.healthy;
        if (!js.healthy) {
            failed = true;
            json_array_append_new(
                reasons, json_sprintf("journal: %s: nothing more is taken; restart the host once "
                                      "the cause is gone",
                                      js.detail));
        }
        json_array_append_new(list,
                              json_pack("{s:s,s:s,s:b,s:s}", "instance", "journal", "state",
                                        "running", "healthy", js.healthy, "detail", js.detail));
    }
    if (atomic_load(&h->run_lost)) {
        ok = false;
        failed = true;
        json_array_append_new(reasons, json_sprintf("%s", h->run_lost_why));
    }
    pthread_mutex_lock(&h->metric_mu);
    for (size_t i = 0; i < h->ninstances; i++) {
        arbh_instance *in = h->instances[i];
        if (in->is_pseudo)
            continue;
        bool good = in->state == INST_RUNNING && in->healthy;
        ok = ok && good;
        if (!good) {
            degraded = true;
            json_array_append_new(reasons, json_sprintf("instance %s: %s%s%s", in->name,
                                                        state_names[in->state],
                                                        in->health[0] ? ": " : "", in->health));
        }
        json_array_append_new(list, json_pack("{s:s,s:s,s:b,s:s}", "instance", in->name, "state",
                                              state_names[in->state], "healthy", good, "detail",
                                              in->health));
    }
    pthread_mutex_unlock(&h->metric_mu);
    *healthy = ok;
    *state = failed ? "failed" : starting ? "starting" : degraded ? "degraded" : "ready";
    return json_pack("{s:s,s:s,s:s,s:o,s:o,s:o}", "status", ok ? "ok" : "degraded", "state", *state,
                     "host", h->id, "reasons", reasons, "instances", list, "last_reconfigure",
                     reconfig_json(h));
}

/* Liveness, as before: 503 only when the host or an instance is unhealthy
 * (the body also carries the readiness state and its reasons). */
static void healthz(arbh_host *h, struct evhttp_request *req)
{
    bool ok;
    const char *state;
    json_t *body = health_json(h, &ok, &state);
    reply_json(req, ok ? 200 : 503, body);
}

/* Readiness: 200 only when ready; what a load balancer and arbctl status
 * use. */
static void readyz(arbh_host *h, struct evhttp_request *req)
{
    bool ok;
    const char *state;
    json_t *body = health_json(h, &ok, &state);
    reply_json(req, !strcmp(state, "ready") ? 200 : 503, body);
}

static void plugins(arbh_host *h, struct evhttp_request *req)
{
    json_t *list = json_array();
    for (size_t i = 0; i < h->ninstances; i++) {
        arbh_instance *in = h->instances[i];
        if (in->is_pseudo)
            continue;
        json_array_append_new(list,
                              json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:i}", "instance",
                                        in->name, "plugin", in->desc->name, "file", in->path,
                                        "version", in->desc->version, "build_id", in->build_id,
                                        "state", state_names[in->state], "loaded_at",
                                        (json_int_t)(in->loaded_at / 1000000000), "started_at",
                                        (json_int_t)(in->started_at / 1000000000), "reloads",
                                        (json_int_t)in->reloads, "loop", in->thread));
    }
    reply_json(req, 200, list);
}

/* ---- Prometheus text ---- */

static void render_hist(struct evbuffer *out, const char *name, const char *labels,
                        const uint64_t *bucket, uint64_t count, uint64_t sum)
{
    uint64_t cum = 0;
    const char *sep = labels[0] ? "," : "";
    for (int i = 0; i < ARB_HIST_BUCKETS; i++) {
        cum += bucket[i];
        if (!bucket[i] && i + 1 < ARB_HIST_BUCKETS && cum == 0)
            continue; /* skip leading empty buckets */
        evbuffer_add_printf(out, "%s_bucket{%s%sle=\"%" PRIu64 "\"} %" PRIu64 "\n", name, labels,
                            sep, i == 0 ? 0 : ((uint64_t)1 << i) - 1, cum);
        if (cum == count)
            break;
    }
    evbuffer_add_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, sep, count);
    evbuffer_add_printf(out, "%s_sum{%s} %" PRIu64 "\n%s_count{%s} %" PRIu64 "\n", name, labels,
                        sum, name, labels, count);
}

static uint64_t ld(const _Atomic uint64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

static void render_bus(arbh_host *h, struct evbuffer *out)
{
    static const char *const ctr[] = {"published", "delivered", "rejected"};
    static const char *const help[] = {"Records published on the topic",
                                       "Records delivered from the topic's queues",
                                       "Publishes refused because a queue was full"};
    int nt = atomic_load(&h->ntopics);
    for (int c = 0; c < 3; c++) {
        evbuffer_add_printf(out, "# HELP arb_bus_%s_total %s\n# TYPE arb_bus_%s_total counter\n",
                            ctr[c], help[c], ctr[c]);
        for (int t = 0; t < nt; t++) {
            uint64_t sum = 0;
            for (int l = 0; l < h->nloops; l++) {
                arbh_topic_stats *st = &h->topics[t]->stats[l];
                arb_counter *x = c == 0 ? &st->published : c == 1 ? &st->delivered : &st->rejected;
                sum += ld(&x->value);
            }
            evbuffer_add_printf(out, "arb_bus_%s_total{topic=\"%s\"} %" PRIu64 "\n", ctr[c],
                                h->topics[t]->name, sum);
        }
    }
    evbuffer_add_printf(out, "# HELP arb_bus_wakes_total Wakes a loop sent to other loops "
                             "(a system call each)\n# TYPE arb_bus_wakes_total counter\n");
    for (int l = 0; l < h->nloops; l++)
        evbuffer_add_printf(out, "arb_bus_wakes_total{loop=\"%d\"} %" PRIu64 "\n", l,
                            ld(&h->loops[l]->wakes.value));
    evbuffer_add_printf(out, "# HELP arb_bus_latency_ns Publish to delivery, sampled\n"
                             "# TYPE arb_bus_latency_ns histogram\n");
    for (int t = 0; t < nt; t++) {
        uint64_t b[ARB_HIST_BUCKETS] = {0}, count = 0, sum = 0;
        for (int l = 0; l < h->nloops; l++) {
            arb_histogram *x = &h->topics[t]->stats[l].latency;
            for (int i = 0; i < ARB_HIST_BUCKETS; i++)
                b[i] += ld(&x->bucket[i]);
            count += ld(&x->count);
            sum += ld(&x->sum);
        }
        char labels[96];
        snprintf(labels, sizeof labels, "topic=\"%s\"", h->topics[t]->name);
        render_hist(out, "arb_bus_latency_ns", labels, b, count, sum);
    }
}

/* Counters of one part of the host, as PREFIX_NAME_total. */
typedef struct counter_line {
    const char *name, *help;
    uint64_t v;
} counter_line;

static void render_counters(struct evbuffer *out, const char *prefix, const counter_line *c,
                            size_t n)
{
    for (size_t i = 0; i < n; i++)
        evbuffer_add_printf(out,
                            "# HELP %s_%s_total %s\n# TYPE %s_%s_total counter\n"
                            "%s_%s_total %" PRIu64 "\n",
                            prefix, c[i].name, c[i].help, prefix, c[i].name, prefix, c[i].name,
                            c[i].v);
}

static void render_kafka(arbh_host *h, struct evbuffer *out)
{
    arbh_kafka_stats s;
    arbh_kafka_get_stats(h->kafka, &s);
    const counter_line c[] = {
        {"produced", "Records accepted by the producer", s.produced},
        {"produce_full", "Produce calls refused: librdkafka's queue was full", s.produce_full},
        {"produce_failed", "Records whose delivery failed after retries", s.produce_failed},
        {"delivered", "Consumed records handed to the host", s.delivered},
        {"done", "Consumed records every local subscriber handled", s.done},
        {"redelivered", "Records offered again after the host was full", s.redelivered},
        {"pauses", "Partitions paused because the host fell behind", s.pauses},
        {"commits", "Offset commits that succeeded", s.commits},
        {"commit_failed", "Offset commits that failed", s.commit_failed},
        {"rebalances", "Partition assignments received", s.rebalances},
    };
    render_counters(out, "arb_kafka", c, sizeof c / sizeof c[0]);
    evbuffer_add_printf(out,
                        "# HELP arb_kafka_assigned_partitions Partitions assigned here\n"
                        "# TYPE arb_kafka_assigned_partitions gauge\n"
                        "arb_kafka_assigned_partitions %d\n",
                        s.assigned);
}

static void render_journal(arbh_host *h, struct evbuffer *out)
{
    arbh_journal_stats s;
    arbh_journal_get_stats(h->journal, &s);
    const counter_line c[] = {
        {"appended", "Records appended to the journal", s.appended},
        {"appended_bytes", "Bytes of record data appended", s.appended_bytes},
        {"refused", "Appends refused: the topic's write buffer was full", s.refused},
        {"written_bytes", "Bytes written to segment files", s.written_bytes},
        {"syncs", "fdatasync rounds", s.syncs},
        {"delivered", "Journaled records delivered to the host", s.delivered},
        {"redelivered", "Records offered again after the host was full", s.redelivered},
        {"segments_removed", "Segments removed (latest-only topics, trims)", s.segments_removed},
    };
    render_counters(out, "arb_journal", c, sizeof c / sizeof c[0]);
    evbuffer_add_printf(out,
                        "# HELP arb_journal_sync_seconds_max The longest fdatasync so far\n"
                        "# TYPE arb_journal_sync_seconds_max gauge\n"
                        "arb_journal_sync_seconds_max %.6f\n"
                        "# HELP arb_journal_healthy 1 while the journal writes, 0 after a failure\n"
                        "# TYPE arb_journal_healthy gauge\narb_journal_healthy %d\n",
                        (double)s.sync_ns_max / 1e9, s.healthy);
}

static int metric_cmp(const void *a, const void *b)
{
    const arbh_metric *x = *(arbh_metric *const *)a, *y = *(arbh_metric *const *)b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    c = strcmp(x->instance ? x->instance : "", y->instance ? y->instance : "");
    return c ? c : strcmp(x->labels, y->labels);
}

void arbh_metrics_render(arbh_host *h, struct evbuffer *out)
{
    int64_t now = arbh_wall_ns();
    size_t running = 0;
    for (size_t i = 0; i < h->ninstances; i++)
        running += !h->instances[i]->is_pseudo && h->instances[i]->state == INST_RUNNING;
    evbuffer_add_printf(out,
                        "# HELP arb_host_info Host identity\n# TYPE arb_host_info gauge\n"
                        "arb_host_info{id=\"%s\"} 1\n"
                        "# HELP arb_uptime_seconds Seconds since the host started\n"
                        "# TYPE arb_uptime_seconds gauge\narb_uptime_seconds %.3f\n"
                        "# HELP arb_instances_running Plugin instances running\n"
                        "# TYPE arb_instances_running gauge\narb_instances_running %zu\n"
                        "# HELP arb_plugin_reloads_total Hot reloads per instance\n"
                        "# TYPE arb_plugin_reloads_total counter\n",
                        h->id, (double)(now - h->started_at) / 1e9, running);
    for (size_t i = 0; i < h->ninstances; i++)
        if (!h->instances[i]->is_pseudo)
            evbuffer_add_printf(out, "arb_plugin_reloads_total{instance=\"%s\"} %u\n",
                                h->instances[i]->name, h->instances[i]->reloads);
    render_bus(h, out);
    if (h->kafka)
        render_kafka(h, out);
    if (h->journal)
        render_journal(h, out);

    pthread_mutex_lock(&h->metric_mu);
    arbh_metric **sorted = malloc(h->nmetrics * sizeof *sorted);
    size_t n = sorted ? h->nmetrics : 0;
    if (n)
        memcpy(sorted, h->metrics, n * sizeof *sorted);
    pthread_mutex_unlock(&h->metric_mu);
    if (n > 1)
        qsort(sorted, n, sizeof *sorted, metric_cmp);
    static const char *const types[] = {['c'] = "counter", ['g'] = "gauge", ['h'] = "histogram"};
    for (size_t i = 0; i < n; i++) {
        arbh_metric *m = sorted[i];
        if (i == 0 || strcmp(m->name, sorted[i - 1]->name))
            evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", m->name,
                                m->help[0] ? m->help : m->name, m->name, types[m->kind]);
        char labels[512];
        snprintf(labels, sizeof labels, "%s%s%s%s%s", m->instance ? "instance=\"" : "",
                 m->instance ? m->instance : "", m->instance ? "\"" : "",
                 m->instance && m->labels[0] ? "," : "", m->labels);
        if (m->kind == 'c') {
            evbuffer_add_printf(out, "%s{%s} %" PRIu64 "\n", m->name, labels,
                                ld(&m->u.counter.value));
        } else if (m->kind == 'g') {
            evbuffer_add_printf(out, "%s{%s} %" PRId64 "\n", m->name, labels,
                                atomic_load_explicit(&m->u.gauge.value, memory_order_relaxed));
        } else {
            uint64_t b[ARB_HIST_BUCKETS];
            for (int k = 0; k < ARB_HIST_BUCKETS; k++)
                b[k] = ld(&m->u.hist.bucket[k]);
            render_hist(out, m->name, labels, b, ld(&m->u.hist.count), ld(&m->u.hist.sum));
        }
    }
    free(sorted);
}

static void metrics(arbh_host *h, struct evhttp_request *req)
{
    struct evbuffer *b = evbuffer_new();
    arbh_metrics_render(h, b);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

typedef struct route_call {
    arbh_route *route;
    const char *method, *path, *query;
    struct evbuffer *out;
    int status;
} route_call;

static void route_on_loop(void *arg)
{
    route_call *c = arg;
    arbh_running prev = arbh_enter(c->route->owner, ARBH_CB_ROUTE, -1);
    c->status = c->route->fn(c->route->user, c->method, c->path, c->query, c->out);
    arbh_leave(prev);
}

static const char *method_name(enum evhttp_cmd_type t)
{
    switch (t) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    default: return "OTHER";
    }
}

/* Whether real (a resolved path) lies under dir (resolved here too). */
static bool under_dir(const char *real, const char *dir, size_t dlen)
{
    char d[PATH_MAX], rd[PATH_MAX];
    if (dlen == 0 || dlen >= sizeof d)
        return false;
    memcpy(d, dir, dlen);
    d[dlen] = 0;
    if (!realpath(d, rd))
        return false;
    size_t n = strlen(rd);
    if (n == 1) /* "/": everything; never what a plugin directory means */
        return false;
    return !strncmp(real, rd, n) && real[n] == '/';
}

/* A reload's ?path=: a file under a plugin directory or beside a config
 * file, after symbolic links are resolved, so that the endpoint cannot be
 * made to load any shared object on the machine; [host] reload_any_path =
 * true lifts that for a developer's machine. */
static bool reload_path_allowed(arbh_host *h, const char *path, char *err, size_t n)
{
    const char *any = arbh_config_get(h->cfg, "host", "reload_any_path", "false");
    if (!strcmp(any, "true") || !strcmp(any, "1") || !strcmp(any, "yes"))
        return true;
    char real[PATH_MAX];
    if (!realpath(path, real)) {
        snprintf(err, n, "path %.200s: %s", path, strerror(errno));
        return false;
    }
    for (const char *p = h->plugin_dirs; *p;) {
        size_t len = strcspn(p, ":");
        if (under_dir(real, p, len))
            return true;
        p += len + (p[len] == ':');
    }
    for (size_t i = 0; i < h->nfiles; i++) {
        const char *slash = strrchr(h->files[i], '/');
        if (under_dir(real, slash ? h->files[i] : ".", slash ? (size_t)(slash - h->files[i]) : 1))
            return true;
    }
    snprintf(err, n,
             "path %.200s is outside the plugin directories and the config's directories "
             "(set [host] reload_any_path = true to allow it)",
             path);
    return false;
}

static void plugin_request(arbh_host *h, struct evhttp_request *req, const char *rest,
                           const char *query)
{
    char name[128];
    const char *slash = strchr(rest, '/');
    size_t nlen = slash ? (size_t)(slash - rest) : strlen(rest);
    if (nlen == 0 || nlen >= sizeof name || !slash || !slash[1]) {
        reply_error(req, 404, "not_found", "expected /plugins/NAME/ACTION");
        return;
    }
    memcpy(name, rest, nlen);
    name[nlen] = 0;
    const char *action = slash + 1;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (!strcmp(action, "reload")) {
        if (cmd != EVHTTP_REQ_POST) {
            reply_error(req, 405, "method_not_allowed", "reload takes POST");
            return;
        }
        struct evkeyvalq q;
        char *path = NULL;
        bool force = false;
        if (query && evhttp_parse_query_str(query, &q) == 0) {
            const char *p = evhttp_find_header(&q, "path");
            const char *f = evhttp_find_header(&q, "force");
            path = p ? strdup(p) : NULL;
            force = f && (!strcmp(f, "1") || !strcmp(f, "true"));
            evhttp_clear_headers(&q);
        }
        char err[1024];
        if (path && !reload_path_allowed(h, path, err, sizeof err)) {
            reply_error(req, 403, "path_not_allowed", err);
            free(path);
            return;
        }
        int64_t t0 = arbh_mono_ns();
        bool unchanged = false;
        int rc = arbh_host_reload(h, name, path, force, &unchanged, err, sizeof err);
        free(path);
        if (rc == ARB_ENOENT) {
            reply_error(req, 404, "no_such_instance", err);
        } else if (rc != ARB_OK) {
            reply_error(req, 409, "reload_failed", err);
        } else {
            arbh_instance *in = arbh_host_find(h, name);
            reply_json(req, 200,
                       json_pack("{s:b,s:b,s:s,s:s,s:s,s:I,s:f}", "ok", 1, "unchanged", unchanged,
                                 "instance", name, "version", in->desc->version, "build_id",
                                 in->build_id, "reloads", (json_int_t)in->reloads, "ms",
                                 (double)(arbh_mono_ns() - t0) / 1e6));
        }
        return;
    }
    arbh_route *route = NULL;
    pthread_mutex_lock(&h->metric_mu);
    for (size_t i = 0; i < h->nroutes && !route; i++)
        if (h->routes[i]->active && !strcmp(h->routes[i]->instance, name) &&
            !strcmp(h->routes[i]->path, action))
            route = h->routes[i];
    pthread_mutex_unlock(&h->metric_mu);
    if (!route) {
        reply_error(req, 404, "not_found",
                    arbh_host_find(h, name) ? "no such route for the instance"
                                            : "no such instance");
        return;
    }
    route_call c = {route, method_name(cmd), action, query, evbuffer_new(), 500};
    arbh_loop_call(route->owner->loop, route_on_loop, &c);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, c.status, c.status < 300 ? "OK" : "Error", c.out);
    evbuffer_free(c.out);
}

/* An Origin header names the page a browser sends the request for: only
 * the endpoint's own (http://ADDR, or the same port under another loopback
 * name) may. Tools (arbctl, curl, Prometheus) send none. */
static bool origin_ok(arbh_host *h, struct evhttp_request *req)
{
    const char *origin = evhttp_find_header(evhttp_request_get_input_headers(req), "Origin");
    if (!origin)
        return true;
    if (strncasecmp(origin, "http://", 7))
        return false;
    const char *hostport = origin + 7;
    if (!strcasecmp(hostport, h->admin_addr))
        return true;
    const char *port = strrchr(h->admin_addr, ':');
    if (!h->admin_loopback || !port)
        return false;
    static const char *const names[] = {"localhost", "127.0.0.1", "[::1]"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        size_t n = strlen(names[i]);
        if (!strncasecmp(hostport, names[i], n) && !strcmp(hostport + n, port))
            return true;
    }
    return false;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    arbh_host *h = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = evhttp_uri_get_path(uri);
    const char *query = evhttp_uri_get_query(uri);
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (!path)
        path = "/";
    /* evhttp takes any HTTP/x.y and would answer in it (found by
     * fuzz_admin): another major, or a malformed minor, is refused in 1.1. */
    if (req->major != 1 || req->minor < 0) {
        req->major = 1;
        req->minor = 1;
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        reply_error(req, 505, "http_version_not_supported", "the admin endpoint speaks HTTP/1.1");
        return;
    }
    if (req->minor > 1)
        req->minor = 1;
    if (!origin_ok(h, req)) {
        reply_error(req, 403, "forbidden_origin",
                    "requests on behalf of another web origin are refused");
        return;
    }
    bool probe = cmd == EVHTTP_REQ_GET && (!strcmp(path, "/healthz") || !strcmp(path, "/readyz") ||
                                           !strcmp(path, "/metrics"));
    bool open = cmd == EVHTTP_REQ_GET && h->admin_loopback && (probe || h->admin_token_from_file);
    if (!open && !token_ok(h, req)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
        reply_error(req, 401, "unauthorized",
                    h->admin_token_from_file
                        ? "missing or wrong admin token (arbctl reads it from the host's "
                          "admin_token_file)"
                        : "missing or wrong admin token");
        return;
    }
    if (!strncmp(path, "/plugins/", 9)) {
        plugin_request(h, req, path + 9, query);
        return;
    }
    if (!strcmp(path, "/reload-config")) {
        reload_config(h, req);
        return;
    }
    void (*handler)(arbh_host *, struct evhttp_request *) = NULL;
    if (!strcmp(path, "/healthz"))
        handler = healthz;
    else if (!strcmp(path, "/readyz"))
        handler = readyz;
    else if (!strcmp(path, "/metrics"))
        handler = metrics;
    else if (!strcmp(path, "/plugins"))
        handler = plugins;
    if (!handler) {
        reply_error(req, 404, "not_found",
                    "try /healthz, /readyz, /metrics, /plugins, /reload-config");
        return;
    }
    if (cmd != EVHTTP_REQ_GET) {
        reply_error(req, 405, "method_not_allowed", "use GET");
        return;
    }
    handler(h, req);
}

static bool is_loopback(const char *host)
{
    return !strcmp(host, "localhost") || !strncmp(host, "127.", 4) || !strcmp(host, "::1");
}

int arbh_admin_start(arbh_host *h, char *err, size_t n)
{
    char host[128];
    const char *colon = strrchr(h->admin_addr, ':');
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == h->admin_addr || *end || port < 0 || port > 65535 ||
        (size_t)(colon - h->admin_addr) >= sizeof host) {
        snprintf(err, n, "[host] admin = %s: expected HOST:PORT", h->admin_addr);
        return ARB_EINVAL;
    }
    memcpy(host, h->admin_addr, (size_t)(colon - h->admin_addr));
    host[colon - h->admin_addr] = 0;
    h->admin_loopback = is_loopback(host);
    if (!h->admin_loopback && !h->admin_token[0]) {
        snprintf(err, n,
                 "[host] admin = %s is not a loopback address: set [host] admin_token to expose it",
                 h->admin_addr);
        return ARB_EINVAL;
    }
    if (!h->admin_token[0]) {
        /* No token configured: the state-changing requests still need one,
         * kept in a file only this user can read. */
        const char *file =
            arbh_config_get(h->cfg, "host", "admin_token_file", ARBH_ADMIN_TOKEN_FILE);
        char why[512];
        if (arbh_admin_token_load(file, 1, h->admin_token, sizeof h->admin_token, why,
                                  sizeof why)) {
            snprintf(err, n, "[host] admin_token_file: %s", why);
            return ARB_ERROR;
        }
        h->admin_token_from_file = true;
        arbh_log(h, NULL, ARB_LOG_INFO, "admin token in %s (arbctl reads it; POST needs it)", file);
    }
    h->admin = evhttp_new(h->loops[0]->base);
    if (!h->admin) {
        snprintf(err, n, "cannot create the admin server");
        return ARB_ERROR;
    }
    evhttp_set_gencb(h->admin, on_request, h);
    evhttp_set_timeout(h->admin, 30);
    evhttp_set_max_body_size(h->admin, 1 << 16);
    evhttp_set_allowed_methods(h->admin, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(h->admin, host, (uint16_t)port);
    if (!bs) {
        snprintf(err, n, "[host] admin = %s: cannot listen (address in use?)", h->admin_addr);
        evhttp_free(h->admin);
        h->admin = NULL;
        return ARB_ERROR;
    }
    /* Port 0 asks the kernel for a free port: report the one we got. */
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl) == 0 &&
        ss.ss_family == AF_INET)
        snprintf(h->admin_addr, sizeof h->admin_addr, "%.100s:%u", host,
                 ntohs(((struct sockaddr_in *)&ss)->sin_port));
    arbh_log(h, NULL, ARB_LOG_INFO, "admin listening on http://%s", h->admin_addr);
    return ARB_OK;
}

int arbh_admin_check(arbh_host *h, FILE *out)
{
    const char *colon = strrchr(h->admin_addr, ':');
    if (!h->admin_addr[0] || !colon)
        return 0;
    char host[128];
    snprintf(host, sizeof host, "%.*s", (int)(colon - h->admin_addr), h->admin_addr);
    if (is_loopback(host) || h->admin_token[0])
        return 0;
    fprintf(out,
            "warning: [host] admin = %s is not a loopback address and no [host] admin_token is "
            "set: the host will refuse to start\n",
            h->admin_addr);
    return 1;
}

void arbh_admin_stop(arbh_host *h)
{
    if (h->admin) {
        evhttp_free(h->admin);
        h->admin = NULL;
    }
}

/*
 * arbctl.c -- the operator's command line for a running arb-host, over its
 * admin endpoint (libevent's HTTP client).
 *
 *   arbctl [-a HOST:PORT | -c FILE] status | plugins | metrics | reload NAME [SO]
 *          | reload-config
 *          | book VENUE SYMBOL [INSTANCE] | get PATH | tail TOPIC | decode | where
 *   arbctl services [--url http://HOST:PORT] [--json]
 *
 * The address comes from -a, else [host] admin of the config given with -c,
 * else $ARB_ADMIN, else 127.0.0.1:9100. $ARB_ADMIN_TOKEN is sent as a bearer
 * token (else the config's admin_token, else the token file arb-host made,
 * see admin_token.h). `services` asks a gateway instead (GET /v1/services: every host that
 * announces itself on service_registry): --url, else the listen address of
 * the first gateway in the config given with -c, else $ARB_HTTP, else
 * 127.0.0.1:8080, with $ARB_API_KEY as the bearer token if set. Exit status: 0 on HTTP 2xx, 1 on any other answer, 2 on usage or
 * connection errors. Not here: anything the host decides (admin.c).
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin_token.h"
#include "arbctl.h"
#include "config.h"
#include "kafka.h"

typedef struct reply {
    int status;
    struct evbuffer *body;
    struct event_base *base;
    int failed;
} reply;

static void on_done(struct evhttp_request *req, void *arg)
{
    reply *r = arg;
    if (!req) {
        r->failed = 1;
    } else {
        r->status = evhttp_request_get_response_code(req);
        r->failed = r->status == 0;
        if (!r->failed)
            evbuffer_add_buffer(r->body, evhttp_request_get_input_buffer(req));
    }
    event_base_loopbreak(r->base);
}

static int request(const char *addr, enum evhttp_cmd_type cmd, const char *path, const char *token,
                   reply *r)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof host) {
        fprintf(stderr, "arbctl: bad admin address '%s' (expected HOST:PORT)\n", addr);
        return 2;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = 0;
    int port = atoi(colon + 1);
    struct event_base *base = event_base_new();
    r->base = base;
    struct evhttp_connection *conn =
        evhttp_connection_base_new(base, NULL, host, (unsigned short)port);
    evhttp_connection_set_timeout(conn, 30);
    struct evhttp_request *req = evhttp_request_new(on_done, r);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", host);
    char auth[512];
    if (token && *token) {
        snprintf(auth, sizeof auth, "Bearer %s", token);
        evhttp_add_header(h, "Authorization", auth);
    }
    r->body = evbuffer_new();
    if (evhttp_make_request(conn, req, cmd, path) != 0) {
        r->failed = 1;
    } else {
        event_base_dispatch(base);
    }
    evhttp_connection_free(conn);
    event_base_free(base);
    if (r->failed) {
        fprintf(stderr, "arbctl: no answer from http://%s%s (is %s listening there?)\n", addr, path,
                !strncmp(path, "/v1/", 4) ? "a gateway" : "arb-host's admin endpoint");
        evbuffer_free(r->body);
        return 2;
    }
    return 0;
}

static char *body_text(reply *r)
{
    size_t n = evbuffer_get_length(r->body);
    char *s = malloc(n + 1);
    evbuffer_remove(r->body, s, n);
    s[n] = 0;
    evbuffer_free(r->body);
    return s;
}

/* Prints a JSON answer indented, or as is if it is not JSON. */
static void print_json(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j) {
        fputs(text, stdout);
        return;
    }
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    puts(s);
    free(s);
    json_decref(j);
}

static int print_status(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j) {
        fputs(text, stdout);
        return 1;
    }
    const char *state = json_string_value(json_object_get(j, "state"));
    printf("host %s: %s (%s)\n", json_string_value(json_object_get(j, "host")),
           json_string_value(json_object_get(j, "status")), state ? state : "?");
    size_t i;
    json_t *in;
    json_array_foreach(json_object_get(j, "reasons"), i, in)
        printf("  because %s\n", json_string_value(in));
    json_array_foreach(json_object_get(j, "instances"), i, in)
    {
        const char *detail = json_string_value(json_object_get(in, "detail"));
        printf("  %-20s %-8s %s%s%s\n", json_string_value(json_object_get(in, "instance")),
               json_string_value(json_object_get(in, "state")),
               json_is_true(json_object_get(in, "healthy")) ? "healthy" : "UNHEALTHY",
               detail && *detail ? ": " : "", detail ? detail : "");
    }
    json_decref(j);
    return 0;
}

static int print_plugins(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j) {
        fputs(text, stdout);
        return 1;
    }
    printf("%-20s %-14s %-12s %-8s %-5s %-7s %s\n", "INSTANCE", "PLUGIN", "VERSION", "STATE",
           "LOOP", "RELOADS", "FILE");
    size_t i;
    json_t *p;
    json_array_foreach(j, i, p)
    {
        printf("%-20s %-14s %-12s %-8s %-5lld %-7lld %s\n",
               json_string_value(json_object_get(p, "instance")),
               json_string_value(json_object_get(p, "plugin")),
               json_string_value(json_object_get(p, "version")),
               json_string_value(json_object_get(p, "state")),
               (long long)json_integer_value(json_object_get(p, "loop")),
               (long long)json_integer_value(json_object_get(p, "reloads")),
               json_string_value(json_object_get(p, "file")));
    }
    json_decref(j);
    return 0;
}

static const char *jtext(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "-";
}

/* GET /v1/services as a table, one host per line. */
static int print_services(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    json_t *list = json_object_get(j, "services");
    if (!json_is_array(list)) {
        fputs(text, stdout);
        json_decref(j);
        return 1;
    }
    printf("%-20s %-8s %8s %8s  %-21s %-20s %s\n", "HOST", "LIVENESS", "SILENT", "PID", "ADMIN",
           "STARTED (UTC)", "PLUGINS (instance=plugin version)");
    size_t i;
    json_t *svc;
    json_array_foreach(list, i, svc)
    {
        char started[32] = "-", silent[24];
        json_int_t st = json_integer_value(json_object_get(svc, "started_at"));
        time_t secs = (time_t)(st / 1000000000);
        struct tm tm;
        if (st > 0 && gmtime_r(&secs, &tm))
            strftime(started, sizeof started, "%Y-%m-%d %H:%M:%S", &tm);
        snprintf(silent, sizeof silent, "%.1fs",
                 (double)json_integer_value(json_object_get(svc, "silent_ms")) / 1000.0);
        printf("%-20s %-8s %8s %8lld  %-21s %-20s ", jtext(svc, "host_id"), jtext(svc, "liveness"),
               silent, (long long)json_integer_value(json_object_get(svc, "pid")),
               jtext(svc, "admin"), started);
        size_t k;
        json_t *p;
        json_array_foreach(json_object_get(svc, "plugins"), k, p)
        {
            const char *inst = jtext(p, "instance"), *plugin = jtext(p, "plugin");
            printf("%s%s%s%s %s", k ? ", " : "", strcmp(inst, plugin) ? inst : "",
                   strcmp(inst, plugin) ? "=" : "", plugin, jtext(p, "version"));
        }
        putchar('\n');
    }
    printf("alive: heard from within %lld ms; stale after that; dead after %lld ms; "
           "gone: stopped cleanly\n",
           (long long)json_integer_value(json_object_get(j, "alive_within_ms")),
           (long long)json_integer_value(json_object_get(j, "dead_after_ms")));
    json_decref(j);
    return 0;
}

int arbctl_loaded_at(const char *admin_addr, const char *admin_token, const char *instance,
                     int64_t *ns)
{
    reply r = {0};
    if (request(admin_addr, EVHTTP_REQ_GET, "/plugins", admin_token, &r))
        return 2;
    char *text = body_text(&r);
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    size_t i;
    json_t *p;
    int rc = 2;
    json_array_foreach(j, i, p)
    {
        if (!strcmp(jtext(p, "instance"), instance)) {
            *ns = (int64_t)json_integer_value(json_object_get(p, "loaded_at")) * 1000000000LL;
            rc = 0;
        }
    }
    if (rc)
        fprintf(stderr, "arbctl: --split %s: not a time, nor an instance of the host at %s\n",
                instance, admin_addr);
    json_decref(j);
    return rc;
}

typedef struct admin_lookup {
    char addr[256];
    char gateway[256]; /* listen of the config's first gateway, or "" */
    char token[256];   /* [host] admin_token, or "" */
    char token_file[1024];
    const char *config; /* the -c file */
    int no_admin;       /* it has no [host] admin: say so when it matters */
    arbh_config *cfg;
} admin_lookup;

/* The first [plugin ...] section that loads gateway.so. */
static int find_gateway(void *user, const char *section)
{
    admin_lookup *a = user;
    const char *load = arbh_config_get(a->cfg, section, "load", "");
    size_t n = strlen(load);
    if (n < 10 || strcmp(load + n - 10, "gateway.so") || (n > 10 && load[n - 11] != '/'))
        return 0;
    snprintf(a->gateway, sizeof a->gateway, "%s",
             arbh_config_get(a->cfg, section, "listen", "127.0.0.1:8080"));
    return 1;
}

/* [host] admin of a config, read exactly as arb-host reads it (includes,
 * ${ENV:-default}), so `arbctl -c FILE` finds the host that FILE runs. */
static int find_admin(admin_lookup *a, const char *file)
{
    arbh_config cfg;
    int rc = arbh_config_load_lenient(&cfg, &file, 1);
    if (rc == 0) {
        const char *v = arbh_config_get(&cfg, "host", "admin", NULL);
        if (v)
            snprintf(a->addr, sizeof a->addr, "%s", v);
        else
            a->no_admin = 1;
        snprintf(a->token, sizeof a->token, "%s", arbh_config_get(&cfg, "host", "admin_token", ""));
        snprintf(a->token_file, sizeof a->token_file, "%s",
                 arbh_config_get(&cfg, "host", "admin_token_file", ARBH_ADMIN_TOKEN_FILE));
        a->cfg = &cfg;
        arbh_config_sections(&cfg, "plugin ", find_gateway, a);
        a->cfg = NULL;
    } else {
        fprintf(stderr, "arbctl: %s\n", cfg.err);
    }
    arbh_config_free(&cfg);
    return rc;
}

static void usage(FILE *out)
{
    fputs("usage: arbctl [-a HOST:PORT | -c FILE] COMMAND\n"
          "  status                  readiness (ready, starting, degraded, failed) with the\n"
          "                          reasons, and each instance's health; exit 1 unless ready\n"
          "  plugins                 instances, plugins, versions, reload counts\n"
          "  metrics                 Prometheus metrics\n"
          "  reload NAME [FILE.so]   hot-reload an instance (from its file, or FILE.so)\n"
          "  reload-config           re-read the configuration (as SIGHUP): applied whole, or\n"
          "                          refused with file:line and nothing changed\n"
          "  book VENUE SYMBOL [I]   depth snapshot from matcher instance I (default matcher)\n"
          "  get PATH                any admin path, e.g. "
          "/plugins/matcher/book?venue=XA&symbol=BTCUSD\n"
          "  tail TOPIC [-b BROKERS] [--from-beginning] [-n N]\n"
          "                          a Kafka topic's records as JSON lines\n"
          "  decode                  raw wire records on stdin (kcat -f '%s') as JSON lines\n"
          "  runs [--json]           the runs recorded in PostgreSQL\n"
          "  report [RUN] [--json] [--html FILE] [--bucket S] [--split TIME|INSTANCE]\n"
          "                          a run's figures per agent and venue (default: latest)\n"
          "  compare A B [--json]    two runs (ids or report files) side by side\n"
          "  where                   the admin (and gateway) address the config resolves to\n"
          "  services [--url http://HOST:PORT] [--json]\n"
          "                          the hosts announcing on service_registry, from a gateway\n"
          "                          (default: the -c config's gateway, $ARB_HTTP, :8080)\n"
          "env: ARB_ADMIN (address), ARB_ADMIN_TOKEN (bearer token; else the config's\n"
          "     admin_token, else the host's token file, default " ARBH_ADMIN_TOKEN_FILE "),\n"
          "     ARB_HTTP (gateway address for services), ARB_API_KEY (its bearer token)\n",
          out);
}

int main(int argc, char **argv)
{
    admin_lookup a = {0};
    snprintf(a.addr, sizeof a.addr, "%s",
             getenv("ARB_ADMIN") ? getenv("ARB_ADMIN") : "127.0.0.1:9100");
    snprintf(a.token_file, sizeof a.token_file, "%s", ARBH_ADMIN_TOKEN_FILE);
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            usage(stderr);
            return 2;
        }
        if (!strcmp(argv[i], "-a")) {
            snprintf(a.addr, sizeof a.addr, "%s", argv[++i]);
        } else if (!strcmp(argv[i], "-c")) {
            a.config = argv[++i];
            if (find_admin(&a, a.config) != 0)
                return 2;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[i];
    int nargs = argc - i - 1;
    if (!strcmp(cmd, "tail") || !strcmp(cmd, "decode"))
        return arbctl_kafka_main(argc - i, argv + i); /* Kafka, not the admin endpoint */
    if (!strcmp(cmd, "runs") || !strcmp(cmd, "report") || !strcmp(cmd, "compare")) {
        /* PostgreSQL, not the admin endpoint (report --split INSTANCE asks it). */
        const char *tok = getenv("ARB_ADMIN_TOKEN");
        char ftok[256], whyf[512];
        if (!tok || !*tok)
            tok =
                a.token[0] ? a.token
                : arbh_admin_token_load(a.token_file, 0, ftok, sizeof ftok, whyf, sizeof whyf) == 0
                    ? ftok
                    : NULL;
        return arbctl_runs_main(argc - i, argv + i, a.config, a.addr, tok);
    }
    if (!strcmp(cmd, "where") && nargs == 0) {
        /* The addresses a config resolves to (${VAR:-default} expanded), for
         * the banners of scripts/run.sh and scripts/run-split.sh. */
        printf("admin %s\n", a.addr);
        if (a.gateway[0])
            printf("gateway %s\n", a.gateway);
        return 0;
    }
    if (a.no_admin && strcmp(cmd, "services"))
        fprintf(stderr, "arbctl: %s has no [host] admin; using %s\n", a.config, a.addr);
    char path[1024];
    enum evhttp_cmd_type method = EVHTTP_REQ_GET;
    int (*printer)(const char *) = NULL;
    /* The admin token: $ARB_ADMIN_TOKEN, else the -c config's admin_token,
     * else the token file the host made (its admin_token_file, default
     * var/admin.token, relative to the directory both run in). Without one,
     * the GETs still work on loopback. */
    const char *addr = a.addr, *token = getenv("ARB_ADMIN_TOKEN");
    char file_token[256], why[512];
    if (!token || !*token)
        token = a.token[0] ? a.token
                : arbh_admin_token_load(a.token_file, 0, file_token, sizeof file_token, why,
                                        sizeof why) == 0
                    ? file_token
                    : NULL;
    char gateway[256];
    if (!strcmp(cmd, "services")) {
        /* The gateway, not the admin endpoint: it keeps the registry. */
        const char *env = getenv("ARB_HTTP");
        snprintf(gateway, sizeof gateway, "%s",
                 a.gateway[0]  ? a.gateway
                 : env && *env ? env
                               : "127.0.0.1:8080");
        printer = print_services;
        for (int k = i + 1; k < argc; k++) {
            if (!strcmp(argv[k], "--json")) {
                printer = NULL;
            } else if (!strcmp(argv[k], "--url") && k + 1 < argc) {
                const char *u = argv[++k];
                if (!strncmp(u, "http://", 7))
                    u += 7;
                snprintf(gateway, sizeof gateway, "%.*s", (int)strcspn(u, "/"), u);
            } else {
                usage(stderr);
                return 2;
            }
        }
        addr = gateway;
        token = getenv("ARB_API_KEY");
        snprintf(path, sizeof path, "/v1/services");
    } else if (!strcmp(cmd, "status") && nargs == 0) {
        snprintf(path, sizeof path, "/readyz");
        printer = print_status;
    } else if (!strcmp(cmd, "plugins") && nargs == 0) {
        snprintf(path, sizeof path, "/plugins");
        printer = print_plugins;
    } else if (!strcmp(cmd, "metrics") && nargs == 0) {
        snprintf(path, sizeof path, "/metrics");
    } else if (!strcmp(cmd, "reload") && (nargs == 1 || nargs == 2)) {
        method = EVHTTP_REQ_POST;
        char *enc = nargs == 2 ? evhttp_encode_uri(argv[i + 2]) : NULL;
        snprintf(path, sizeof path, "/plugins/%s/reload%s%s", argv[i + 1], enc ? "?path=" : "",
                 enc ? enc : "");
        free(enc);
    } else if (!strcmp(cmd, "reload-config") && nargs == 0) {
        method = EVHTTP_REQ_POST;
        snprintf(path, sizeof path, "/reload-config");
    } else if (!strcmp(cmd, "book") && (nargs == 2 || nargs == 3)) {
        snprintf(path, sizeof path, "/plugins/%s/book?venue=%s&symbol=%s",
                 nargs == 3 ? argv[i + 3] : "matcher", argv[i + 1], argv[i + 2]);
    } else if (!strcmp(cmd, "get") && nargs == 1 && argv[i + 1][0] == '/') {
        snprintf(path, sizeof path, "%s", argv[i + 1]);
    } else {
        usage(stderr);
        return 2;
    }
    reply r = {0};
    int rc = request(addr, method, path, token, &r);
    if (rc)
        return rc;
    char *text = body_text(&r);
    int ok = r.status >= 200 && r.status < 300;
    if (!ok)
        fprintf(stderr, "arbctl: HTTP %d\n", r.status);
    /* status prints a host that is not ready too (503), and exits 1. */
    if (printer && (ok || (printer == print_status && r.status == 503)))
        printer(text);
    else if (!strcmp(cmd, "metrics"))
        fputs(text, stdout);
    else
        print_json(text);
    free(text);
    return ok ? 0 : 1;
}

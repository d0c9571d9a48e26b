/*
 * arbctl_runs.c -- results per run, from PostgreSQL: `arbctl runs`,
 * `arbctl report RUN` and `arbctl compare A B`.
 *
 *   arbctl [-c FILE] runs [--json]
 *   arbctl [-c FILE] report [RUN|latest] [--json] [--html FILE] [--bucket S]
 *                           [--split TIME|INSTANCE]
 *   arbctl [-c FILE] compare A B [--json]      A, B: run ids or report files
 *
 * The database: --dsn, else $ARB_PG_DSN, else the -c config's [plugin
 * recorder] dsn, else the local server `make run` starts (var/pg, see
 * scripts/pg-local.sh), else libpq's PG* variables. Agents are named after
 * the -c config's [plugin NAME] sections with an `account` (default config:
 * conf.d/monolith.ini when it exists); other accounts are summed as "other".
 *
 * The figures are sdk/arb/run_report.h's, fed the run's order events and
 * trades in time order, so they equal the table a simulation prints at its
 * end. A report file (`report = FILE` of the digest plugin, or `report
 * --json > FILE`) can stand for a run in `compare`.
 *
 * --split cuts each agent's figures in two at a time: ns since the epoch,
 * an ISO-8601 UTC time, or an instance name, whose last load time (a hot
 * reload's) the running host's admin endpoint gives (`/plugins`).
 *
 * Not here: the admin endpoint's commands (arbctl.c).
 */
#include <errno.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <arb/run_report.h>

#include "arbctl.h"
#include "config.h"

typedef struct runs_opts {
    const char *config; /* -c, or NULL */
    const char *dsn;
    int json;
    const char *html;
    int64_t bucket_ns;
    const char *split;
    int64_t split_ts;
} runs_opts;

/* ---- the database ---- */

static void local_dsn(char *out, size_t cap)
{
    const char *var = getenv("ARB_VAR");
    char path[1024], pw[256] = "";
    snprintf(path, sizeof path, "%s/pg/password", var && *var ? var : "var");
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    if (fgets(pw, sizeof pw, f))
        pw[strcspn(pw, "\r\n")] = 0;
    fclose(f);
    const char *port = getenv("ARB_PG_PORT");
    if (pw[0])
        snprintf(out, cap, "postgresql://arb:%s@127.0.0.1:%s/arb", pw,
                 port && *port ? port : "54329");
}

typedef struct agent_names {
    arbh_config *cfg;
    arb_rr *rr;
    json_t *agents; /* instance names, for "the market apart from the agents" */
} agent_names;

static int name_agent(void *user, const char *section)
{
    agent_names *n = user;
    const char *acct = arbh_config_get(n->cfg, section, "account", NULL);
    if (!acct || !*acct)
        return 0;
    const char *pop = arbh_config_get(n->cfg, section, "population", "1");
    unsigned long long a = strtoull(acct, NULL, 10), p = strtoull(pop, NULL, 10);
    if (!a)
        return 0;
    if (n->rr)
        arb_rr_agent_add(n->rr, section + strlen("plugin "), a, p ? p : 1);
    if (n->agents)
        json_array_append_new(n->agents, json_string(section + strlen("plugin ")));
    return 0;
}

/* The DSN and the agents' names, from the options and the config. */
static int read_config(const runs_opts *o, char *dsn, size_t cap, arb_rr *rr, json_t *agents)
{
    const char *file = o->config;
    struct stat st;
    if (!file && stat("conf.d/monolith.ini", &st) == 0)
        file = "conf.d/monolith.ini";
    char cfg_dsn[1024] = "";
    if (file) {
        arbh_config cfg;
        if (arbh_config_load_lenient(&cfg, &file, 1) != 0) {
            fprintf(stderr, "arbctl: %s\n", cfg.err);
            arbh_config_free(&cfg);
            return 2;
        }
        agent_names n = {&cfg, rr, agents};
        arbh_config_sections(&cfg, "plugin ", name_agent, &n);
        snprintf(cfg_dsn, sizeof cfg_dsn, "%s",
                 arbh_config_get(&cfg, "plugin recorder", "dsn", ""));
        arbh_config_free(&cfg);
    }
    const char *env = getenv("ARB_PG_DSN");
    dsn[0] = 0;
    if (o->dsn)
        snprintf(dsn, cap, "%s", o->dsn);
    else if (env && *env)
        snprintf(dsn, cap, "%s", env);
    else if (cfg_dsn[0])
        snprintf(dsn, cap, "%s", cfg_dsn);
    else
        local_dsn(dsn, cap);
    return 0;
}

static PGconn *db_open(const char *dsn)
{
    PGconn *c = PQconnectdb(dsn);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr,
                "arbctl: cannot reach the run database: %s(give --dsn, set ARB_PG_DSN, or start "
                "the local one: scripts/pg-local.sh start)\n",
                PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

static PGresult *db_query(PGconn *c, const char *sql, const char *param)
{
    const char *params[1] = {param};
    PGresult *r = PQexecParams(c, sql, param ? 1 : 0, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "arbctl: %s", PQerrorMessage(c));
        PQclear(r);
        return NULL;
    }
    return r;
}

/* ---- arbctl runs ---- */

static int cmd_runs(const runs_opts *o)
{
    char dsn[1024];
    if (read_config(o, dsn, sizeof dsn, NULL, NULL))
        return 2;
    PGconn *c = db_open(dsn);
    if (!c)
        return 2;
    PGresult *r = db_query(
        c,
        "SELECT run_id, name, to_char(started_at AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), coalesce(to_char(ended_at AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''), coalesce(seed, ''), coalesce(config_digest, ''), "
        "(SELECT count(*) FROM trades t WHERE t.run_id = r.run_id), "
        "(SELECT count(*) FROM order_events e WHERE e.run_id = r.run_id) "
        "FROM runs r ORDER BY started_at DESC, run_id DESC",
        NULL);
    if (!r) {
        PQfinish(c);
        return 1;
    }
    int n = PQntuples(r);
    if (o->json) {
        json_t *list = json_array();
        for (int i = 0; i < n; i++)
            json_array_append_new(
                list, json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s?, s:I, s:I}", "run_id",
                                PQgetvalue(r, i, 0), "name", PQgetvalue(r, i, 1), "started_at",
                                PQgetvalue(r, i, 2), "ended_at",
                                *PQgetvalue(r, i, 3) ? PQgetvalue(r, i, 3) : NULL, "seed",
                                *PQgetvalue(r, i, 4) ? PQgetvalue(r, i, 4) : NULL, "config_digest",
                                *PQgetvalue(r, i, 5) ? PQgetvalue(r, i, 5) : NULL, "trades",
                                (json_int_t)strtoll(PQgetvalue(r, i, 6), NULL, 10), "order_events",
                                (json_int_t)strtoll(PQgetvalue(r, i, 7), NULL, 10)));
        json_t *doc = json_pack("{s:o}", "runs", list);
        json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        putchar('\n');
        json_decref(doc);
    } else {
        printf("%-20s %-12s %-20s %-20s %-6s %10s %12s\n", "RUN", "NAME", "STARTED (UTC)",
               "ENDED (UTC)", "SEED", "TRADES", "ORDER_EVENTS");
        for (int i = 0; i < n; i++)
            printf("%-20s %-12s %-20s %-20s %-6s %10s %12s\n", PQgetvalue(r, i, 0),
                   *PQgetvalue(r, i, 1) ? PQgetvalue(r, i, 1) : "-", PQgetvalue(r, i, 2),
                   *PQgetvalue(r, i, 3) ? PQgetvalue(r, i, 3) : "(running)",
                   *PQgetvalue(r, i, 4) ? PQgetvalue(r, i, 4) : "-", PQgetvalue(r, i, 6),
                   PQgetvalue(r, i, 7));
        if (!n)
            printf("(no runs recorded yet: make run records one)\n");
    }
    PQclear(r);
    PQfinish(c);
    return 0;
}

/* ---- arbctl report ---- */

static unsigned kind_of(const char *s)
{
    static const char *const names[] = {"",       "accepted",  "rejected", "partially_filled",
                                        "filled", "cancelled", "replaced", "expired"};
    for (unsigned k = 1; k < sizeof names / sizeof names[0]; k++)
        if (!strcmp(s, names[k]))
            return k;
    return 0;
}

/* The run's row as the report's "run" object; NULL if there is no such run. */
static json_t *run_meta(PGconn *c, const char *run_id, const json_t *agents)
{
    PGresult *r = db_query(c,
                           "SELECT run_id::text, name, coalesce(seed, ''), "
                           "coalesce(config_digest, ''), plugins::text, "
                           "to_char(started_at AT TIME ZONE 'UTC', "
                           "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM runs WHERE run_id = $1",
                           run_id);
    if (!r)
        return NULL;
    if (PQntuples(r) != 1) {
        fprintf(stderr, "arbctl: no run %s (arbctl runs lists them)\n", run_id);
        PQclear(r);
        return NULL;
    }
    /* The market apart from the agents: every other instance's build and
     * configuration (the digest its host announced: its section and the
     * shared ones, such as the instruments). */
    json_t *plugins = json_loads(PQgetvalue(r, 0, 4), 0, NULL), *market = json_object();
    const char *inst;
    json_t *p;
    json_object_foreach(plugins, inst, p)
    {
        int is_agent = 0;
        size_t i;
        json_t *a;
        json_array_foreach(agents, i, a) is_agent |= !strcmp(json_string_value(a), inst);
        json_t *build = json_object_get(p, "build_id"), *cfg = json_object_get(p, "config");
        if (!is_agent && strcmp(inst, "digest"))
            json_object_set_new(market, inst,
                                json_pack("{s:O, s:O}", "build_id", build ? build : json_null(),
                                          "config", cfg ? cfg : json_null()));
    }
    json_decref(plugins);
    json_t *meta = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "source", "postgresql",
                             "run_id", PQgetvalue(r, 0, 0), "name", PQgetvalue(r, 0, 1), "seed",
                             PQgetvalue(r, 0, 2), "config_digest", PQgetvalue(r, 0, 3),
                             "started_at", PQgetvalue(r, 0, 5), "market_plugins", market);
    PQclear(r);
    return meta;
}

/* Feeds the run's order events and trades, in time order, streamed. */
static int feed_run(PGconn *c, const char *run_id, arb_rr *rr)
{
    PGresult *has_fee = db_query(c,
                                 "SELECT 1 FROM information_schema.columns WHERE table_name = "
                                 "'order_events' AND column_name = 'fee'",
                                 NULL);
    if (!has_fee)
        return 1;
    int fee = PQntuples(has_fee) > 0;
    PQclear(has_fee);
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT 0 AS src, ts_ns, seq, venue, symbol, price_decimals, qty_decimals, "
             "order_id::text, account, kind, side, price, leaves_qty, last_px, last_qty, %s "
             "FROM order_events WHERE run_id = $1 AND venue IS NOT NULL "
             "UNION ALL SELECT 1, ts_ns, book_seq, venue, symbol, price_decimals, qty_decimals, "
             "NULL, 0, '', '', price, qty, 0, 0, 0 FROM trades WHERE run_id = $1 "
             "ORDER BY 2, 1, 3",
             fee ? "coalesce(fee, 0)" : "0");
    const char *params[1] = {run_id};
    if (!PQsendQueryParams(c, sql, 1, NULL, params, NULL, NULL, 0) || !PQsetSingleRowMode(c)) {
        fprintf(stderr, "arbctl: %s", PQerrorMessage(c));
        return 1;
    }
    int rc = 0;
    PGresult *r;
    while ((r = PQgetResult(c))) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_SINGLE_TUPLE) {
            int instr = arb_rr_instrument(rr, PQgetvalue(r, 0, 3), PQgetvalue(r, 0, 4),
                                          atoi(PQgetvalue(r, 0, 5)), atoi(PQgetvalue(r, 0, 6)));
            int64_t ts = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
            int64_t price = strtoll(PQgetvalue(r, 0, 11), NULL, 10);
            if (PQgetvalue(r, 0, 0)[0] == '1') {
                arb_rr_trade(rr, instr, price, strtoll(PQgetvalue(r, 0, 12), NULL, 10), ts);
            } else {
                const char *side = PQgetvalue(r, 0, 10);
                arb_rr_order_event(rr, instr, strtoull(PQgetvalue(r, 0, 7), NULL, 10),
                                   strtoull(PQgetvalue(r, 0, 8), NULL, 10),
                                   kind_of(PQgetvalue(r, 0, 9)),
                                   !strcmp(side, "buy")    ? ARB_SIDE_BUY
                                   : !strcmp(side, "sell") ? ARB_SIDE_SELL
                                                           : 0,
                                   price, strtoll(PQgetvalue(r, 0, 12), NULL, 10),
                                   strtoll(PQgetvalue(r, 0, 13), NULL, 10),
                                   strtoll(PQgetvalue(r, 0, 14), NULL, 10),
                                   strtoll(PQgetvalue(r, 0, 15), NULL, 10), ts);
            }
        } else if (st != PGRES_TUPLES_OK) {
            fprintf(stderr, "arbctl: %s", PQerrorMessage(c));
            rc = 1;
        }
        PQclear(r);
    }
    arb_rr_finish(rr);
    return rc;
}

/* The run's report as JSON text (malloc'd), or NULL. */
static char *report_json(const runs_opts *o, const char *run_arg, arb_rr *rr_out)
{
    char dsn[1024];
    arb_rr rr;
    arb_rr_init(&rr, o->bucket_ns);
    rr.split_ts = o->split_ts;
    json_t *agents = json_array();
    char *out = NULL;
    if (read_config(o, dsn, sizeof dsn, &rr, agents)) {
        json_decref(agents);
        arb_rr_free(&rr);
        return NULL;
    }
    PGconn *c = db_open(dsn);
    json_t *meta = NULL;
    char run_id[32];
    if (c && (!run_arg || !strcmp(run_arg, "latest"))) {
        PGresult *r = db_query(
            c, "SELECT run_id FROM runs ORDER BY started_at DESC, run_id DESC LIMIT 1", NULL);
        if (r && PQntuples(r) == 1)
            snprintf(run_id, sizeof run_id, "%s", PQgetvalue(r, 0, 0));
        else
            fprintf(stderr, "arbctl: no runs recorded yet\n"), run_id[0] = 0;
        PQclear(r);
    } else {
        snprintf(run_id, sizeof run_id, "%s", run_arg);
    }
    if (c && run_id[0] && (meta = run_meta(c, run_id, agents)) && feed_run(c, run_id, &rr) == 0) {
        char *m = json_dumps(meta, JSON_COMPACT | JSON_PRESERVE_ORDER);
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        arb_rr_print_json(&rr, f, m);
        fclose(f);
        free(m);
    }
    json_decref(meta);
    json_decref(agents);
    if (c)
        PQfinish(c);
    if (rr_out && out)
        *rr_out = rr;
    else
        arb_rr_free(&rr);
    return out;
}

/* ISO-8601 UTC ("2026-12-07T11:30:38Z", fraction optional) or ns. */
static int parse_time(const char *s, int64_t *ns)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*s && !*end) {
        *ns = v;
        return 0;
    }
    struct tm tm = {0};
    const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest)
        return -1;
    double frac = 0;
    if (*rest == '.')
        frac = strtod(rest, (char **)&rest);
    if (*rest && strcmp(rest, "Z"))
        return -1;
    *ns = (int64_t)timegm(&tm) * 1000000000LL + (int64_t)(frac * 1e9);
    return 0;
}

static int cmd_report(runs_opts *o, const char *run_arg, const char *admin_addr,
                      const char *admin_token)
{
    if (o->split && parse_time(o->split, &o->split_ts) != 0) {
        /* An instance: when it was last loaded, from the running host. */
        if (arbctl_loaded_at(admin_addr, admin_token, o->split, &o->split_ts) != 0)
            return 2;
    }
    arb_rr rr;
    char *json = report_json(o, run_arg, &rr);
    if (!json)
        return 1;
    int rc = 0;
    if (o->html) {
        rc = arbctl_write_report_html(o->html, json);
        if (rc == 0)
            fprintf(stderr, "arbctl: wrote %s\n", o->html);
    }
    if (o->json) {
        fputs(json, stdout);
    } else if (!o->html) {
        json_t *doc = json_loads(json, 0, NULL);
        json_t *run = json_object_get(doc, "run");
        printf("run %s%s%s: %.1f s of market time, seed %s\n",
               json_string_value(json_object_get(run, "run_id")),
               *json_string_value(json_object_get(run, "name")) ? " " : "",
               json_string_value(json_object_get(run, "name")),
               (double)arb_rr_duration_ns(&rr) / 1e9,
               *json_string_value(json_object_get(run, "seed"))
                   ? json_string_value(json_object_get(run, "seed"))
                   : "-");
        json_decref(doc);
        arb_rr_print_table(&rr, stdout);
    }
    free(json);
    arb_rr_free(&rr);
    return rc;
}

/* ---- arbctl compare ---- */

static json_t *load_side(const runs_opts *o, const char *arg)
{
    struct stat st;
    json_error_t e;
    if (stat(arg, &st) == 0) {
        json_t *doc = json_load_file(arg, 0, &e);
        if (!doc)
            fprintf(stderr, "arbctl: %s:%d: %s\n", arg, e.line, e.text);
        return doc;
    }
    char *text = report_json(o, arg, NULL);
    if (!text)
        return NULL;
    json_t *doc = json_loads(text, 0, &e);
    free(text);
    return doc;
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* The first non-agent instance whose build or configuration differs
 * between two runs' market_plugins, and which of the two; NULL if none. */
static const char *market_difference(json_t *ma, json_t *mb, const char **what)
{
    const char *inst;
    json_t *pa;
    json_object_foreach(ma, inst, pa)
    {
        json_t *pb = json_object_get(mb, inst);
        if (!pb) {
            *what = "runs only in the first";
            return inst;
        }
        if (!json_equal(json_object_get(pa, "build_id"), json_object_get(pb, "build_id"))) {
            *what = "is another build";
            return inst;
        }
        json_t *ca = json_object_get(pa, "config"), *cb = json_object_get(pb, "config");
        if (!json_equal(ca, cb) || json_is_null(ca)) {
            *what = json_is_null(ca) || json_is_null(cb)
                        ? "has no recorded configuration (a host before service_registry v3)"
                        : "is configured otherwise";
            return inst;
        }
    }
    json_object_foreach(mb, inst, pa)
    {
        if (!json_object_get(ma, inst)) {
            *what = "runs only in the second";
            return inst;
        }
    }
    return NULL;
}

/* Whether two runs traded the same market, and why (or why not). Unknown
 * (nothing recorded to compare) is not the same. */
static int same_market(json_t *a, json_t *b, char *why, size_t cap)
{
    json_t *ra = json_object_get(a, "run"), *rb = json_object_get(b, "run");
    if (strcmp(jstr(ra, "seed"), jstr(rb, "seed"))) {
        snprintf(why, cap, "seed %s vs %s", *jstr(ra, "seed") ? jstr(ra, "seed") : "-",
                 *jstr(rb, "seed") ? jstr(rb, "seed") : "-");
        return 0;
    }
    if (*jstr(ra, "market_digest") && *jstr(rb, "market_digest")) {
        if (strcmp(jstr(ra, "market_digest"), jstr(rb, "market_digest"))) {
            snprintf(why, cap, "seed %s, but the market events differ (%s vs %s)", jstr(ra, "seed"),
                     jstr(ra, "market_digest"), jstr(rb, "market_digest"));
            return 0;
        }
        snprintf(why, cap, "seed %s, the same market events (%s)", jstr(ra, "seed"),
                 jstr(ra, "market_digest"));
        return 1;
    }
    const char *seed = *jstr(ra, "seed") ? jstr(ra, "seed") : "not recorded";
    json_t *ma = json_object_get(ra, "market_plugins"), *mb = json_object_get(rb, "market_plugins");
    if (ma && mb && json_object_size(ma)) {
        const char *what = NULL, *inst = market_difference(ma, mb, &what);
        if (inst) {
            snprintf(why, cap, "seed %s, but the non-agent instance %s %s", seed, inst, what);
            return 0;
        }
        snprintf(why, cap, "seed %s, the same build and configuration of every non-agent instance",
                 seed);
        return 1;
    }
    snprintf(why, cap, "seed %s; nothing recorded to compare the market by: unknown", seed);
    return 0;
}

static json_t *find_named(json_t *list, const char *key, const char *name)
{
    size_t i;
    json_t *x;
    json_array_foreach(list, i, x) if (!strcmp(jstr(x, key), name)) return x;
    return NULL;
}

static double jnum(json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

static int cmd_compare(const runs_opts *o, const char *a_arg, const char *b_arg)
{
    json_t *a = load_side(o, a_arg), *b = load_side(o, b_arg);
    if (!a || !b) {
        json_decref(a);
        json_decref(b);
        return 1;
    }
    char why[256];
    int same = same_market(a, b, why, sizeof why);
    static const char *const fields[] = {
        "pnl_net",      "pnl_gross",        "fees",  "volume", "fills", "fill_ratio",
        "max_drawdown", "pnl_per_sim_hour", "sharpe"};
    json_t *agents = json_array();
    size_t i;
    json_t *x;
    json_t *la = json_object_get(a, "agents"), *lb = json_object_get(b, "agents");
    /* Every agent of A, then those only B has. */
    json_t *names = json_array();
    json_array_foreach(la, i, x) json_array_append_new(names, json_string(jstr(x, "name")));
    json_array_foreach(lb, i, x) if (!find_named(la, "name", jstr(x, "name")))
        json_array_append_new(names, json_string(jstr(x, "name")));
    if (!o->json) {
        printf("market: %s (%s)\n", same ? "the same" : "NOT the same", why);
        printf("%-14s %-16s %14s %14s %14s\n", "AGENT", "FIGURE", a_arg, b_arg, "B - A");
    }
    json_t *n;
    json_array_foreach(names, i, n)
    {
        const char *name = json_string_value(n);
        json_t *xa = find_named(la, "name", name), *xb = find_named(lb, "name", name);
        json_t *row = json_pack("{s:s}", "name", name);
        for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
            double va = xa ? jnum(xa, fields[f]) : 0, vb = xb ? jnum(xb, fields[f]) : 0;
            json_object_set_new(row, fields[f],
                                json_pack("{s:f, s:f, s:f}", "a", va, "b", vb, "diff", vb - va));
            if (!o->json)
                printf("%-14s %-16s %14.4f %14.4f %+14.4f\n", f ? "" : name, fields[f], va, vb,
                       vb - va);
        }
        json_array_append_new(agents, row);
    }
    if (o->json) {
        json_t *doc =
            json_pack("{s:b, s:s, s:O, s:O, s:o}", "same_market", same, "market", why, "a",
                      json_object_get(a, "run"), "b", json_object_get(b, "run"), "agents", agents);
        json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        putchar('\n');
        json_decref(doc);
    } else {
        json_decref(agents);
        printf("%-14s %14s %14s %14s %14s\n", "VENUE", "TRADES A", "TRADES B", "SPREAD A",
               "SPREAD B");
        json_array_foreach(json_object_get(a, "venues"), i, x)
        {
            json_t *y = NULL, *v;
            size_t k;
            json_array_foreach(json_object_get(b, "venues"), k,
                               v) if (!strcmp(jstr(v, "venue"), jstr(x, "venue")) &&
                                      !strcmp(jstr(v, "symbol"), jstr(x, "symbol"))) y = v;
            char name[64];
            snprintf(name, sizeof name, "%s:%s", jstr(x, "venue"), jstr(x, "symbol"));
            printf("%-14s %14.0f %14.0f %14.4f %14.4f\n", name, jnum(x, "trades"),
                   y ? jnum(y, "trades") : 0, jnum(x, "avg_spread"), y ? jnum(y, "avg_spread") : 0);
        }
    }
    json_decref(names);
    json_decref(a);
    json_decref(b);
    return 0;
}

/* ---- entry ---- */

int arbctl_runs_main(int argc, char **argv, const char *config, const char *admin_addr,
                     const char *admin_token)
{
    runs_opts o = {.config = config, .bucket_ns = 10000000000LL};
    const char *pos[2] = {NULL, NULL};
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            o.json = 1;
        } else if (!strcmp(argv[i], "--dsn") && i + 1 < argc) {
            o.dsn = argv[++i];
        } else if (!strcmp(argv[i], "--html") && i + 1 < argc) {
            o.html = argv[++i];
        } else if (!strcmp(argv[i], "--split") && i + 1 < argc) {
            o.split = argv[++i];
        } else if (!strcmp(argv[i], "--bucket") && i + 1 < argc) {
            double s = strtod(argv[++i], NULL);
            if (s <= 0) {
                fprintf(stderr, "arbctl: --bucket wants seconds > 0\n");
                return 2;
            }
            o.bucket_ns = (int64_t)(s * 1e9);
        } else if (argv[i][0] != '-' && npos < 2) {
            pos[npos++] = argv[i];
        } else {
            fprintf(stderr, "arbctl %s: unexpected '%s'\n", argv[0], argv[i]);
            return 2;
        }
    }
    if (!strcmp(argv[0], "runs") && npos == 0)
        return cmd_runs(&o);
    if (!strcmp(argv[0], "report") && npos <= 1)
        return cmd_report(&o, pos[0], admin_addr, admin_token);
    if (!strcmp(argv[0], "compare") && npos == 2)
        return cmd_compare(&o, pos[0], pos[1]);
    fprintf(stderr, "usage: arbctl runs [--json] | report [RUN] [--json] [--html FILE] "
                    "[--bucket S] [--split TIME|INSTANCE] | compare A B [--json]\n");
    return 2;
}

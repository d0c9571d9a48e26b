/*
 * test_runs_report.c -- results per run: `arbctl runs`, `arbctl report`,
 * `arbctl compare`, and the A/B workflow of the README, against a real
 * throwaway PostgreSQL (scripts/with-pg.sh; the binary re-runs itself under
 * it when started plainly).
 *
 * The simulation (conf.d/sim.ini) runs with the recorder added and the
 * digest writing its report file; arbctl then reads the recorded run back.
 * The figures from the database must equal the ones the simulation printed
 * (the same accumulator, fed the same records two ways), the same seed must
 * be the same market whatever the agents do, and another seed another one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_recorder_support.h"

#define DB "runs_report"
#define TICKS "400"

static const char *build_dir(void)
{
    const char *b = getenv("ARB_BUILD");
    return b && *b ? b : "build";
}

/* Runs the simulation once with the recorder: seed, extra -s overrides, and
 * the digest's report file. */
static void run_sim(const char *seed, const char *extra, const char *report)
{
    FILE *f = fopen("build/test-runs-recorder.ini", "w");
    assert_non_null(f);
    /* The recorder on the clock's loop (the clock waits for it), and time
     * enough at stop to write a burst on a busy machine. */
    fprintf(f, "[plugin recorder]\nload = recorder.so\ndsn = dbname=" DB
               "\ndrain_timeout_ms = 120000\n");
    fclose(f);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "ARB_SEED=%s %s/arb-host -c conf.d/sim.ini -c build/test-runs-recorder.ini "
             "-s clock.ticks=" TICKS " -s digest.report=%s %s > /dev/null 2>&1",
             seed, build_dir(), report, extra);
    assert_int_equal(system(cmd), 0);
}

/* arbctl's stdout as JSON. */
static json_t *arbctl_json(const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s/arbctl -c conf.d/sim.ini %s --dsn dbname=" DB " 2>/dev/null",
             build_dir(), args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    json_error_t e;
    json_t *j = json_loadf(p, 0, &e);
    int status = pclose(p);
    if (!j)
        fail_msg("arbctl %s: no JSON (%s), exit %d", args, e.text, status);
    assert_int_equal(status, 0);
    return j;
}

static json_t *named(json_t *list, const char *name)
{
    size_t i;
    json_t *x;
    json_array_foreach(
        list, i, x) if (!strcmp(json_string_value(json_object_get(x, "name")), name)) return x;
    fail_msg("no agent %s", name);
    return NULL;
}

static double num(json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

static json_t *runs;

static int setup(void **state)
{
    (void)state;
    fresh_db(DB);
    run_sim("42", "", "build/test-runs-a.json");
    /* B: the arbitrageur changed (a wider threshold), the market not. */
    run_sim("42", "-s arb.threshold_ticks=4", "build/test-runs-b.json");
    /* D: the same seed, but another market (the generator's volatility). */
    run_sim("42", "-s generator.volatility_bps=20", "build/test-runs-d.json");
    runs = arbctl_json("runs --json");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    json_decref(runs);
    return 0;
}

static const char *run_id(size_t newest_first)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(runs, "runs"), newest_first), "run_id"));
}

/* The recorded runs, newest first: D, B, A (setup). */
#define RUN_A run_id(2)
#define RUN_B run_id(1)
#define RUN_D run_id(0)

static void runs_lists_each_recorded_run_newest_first(void **state)
{
    (void)state;
    json_t *list = json_object_get(runs, "runs");
    assert_int_equal(json_array_size(list), 3);
    json_t *b = json_array_get(list, 1), *a = json_array_get(list, 2);
    assert_string_equal(json_string_value(json_object_get(a, "seed")), "42");
    json_error_t e;
    json_t *ra = json_load_file("build/test-runs-a.json", 0, &e);
    assert_non_null(ra);
    /* Every trade the simulation made is in the run's row count. */
    assert_int_equal(json_integer_value(json_object_get(a, "trades")),
                     json_integer_value(json_object_get(json_object_get(ra, "run"), "trades")));
    assert_true(json_integer_value(json_object_get(b, "order_events")) > 0);
    json_decref(ra);
}

/* The report from PostgreSQL equals the table the simulation printed. */
static void report_from_the_database_equals_the_simulations_own(void **state)
{
    (void)state;
    char args[128];
    snprintf(args, sizeof args, "report %s --json", RUN_A);
    json_t *db = arbctl_json(args);
    json_error_t e;
    json_t *sim = json_load_file("build/test-runs-a.json", 0, &e);
    assert_non_null(sim);
    const char *agents[] = {"mm_xa", "mm_xb", "arb", "adaptive", "noise"};
    const char *fields[] = {"pnl_net", "volume", "max_drawdown", "fill_ratio", "max_position"};
    for (size_t i = 0; i < 5; i++) {
        json_t *x = named(json_object_get(db, "agents"), agents[i]);
        json_t *y = named(json_object_get(sim, "agents"), agents[i]);
        for (size_t f = 0; f < 5; f++)
            assert_float_equal(num(x, fields[f]), num(y, fields[f]), 1e-6);
        assert_int_equal(json_integer_value(json_object_get(x, "fills")),
                         json_integer_value(json_object_get(y, "fills")));
    }
    json_t *v = json_array_get(json_object_get(db, "venues"), 0);
    json_t *w = json_array_get(json_object_get(sim, "venues"), 0);
    assert_int_equal(json_integer_value(json_object_get(v, "trades")),
                     json_integer_value(json_object_get(w, "trades")));
    assert_float_equal(num(v, "avg_spread"), num(w, "avg_spread"), 1e-9);
    assert_true(num(v, "avg_spread") > 0);
    json_decref(db);
    json_decref(sim);
}

/* A/B: the same seed with a changed agent is the same market, and the
 * changed agent's figures differ; another seed is another market. */
static void compare_says_same_market_for_the_same_seed_and_shows_the_change(void **state)
{
    (void)state;
    json_t *c = arbctl_json("compare build/test-runs-a.json build/test-runs-b.json --json");
    assert_true(json_is_true(json_object_get(c, "same_market")));
    json_t *arb = named(json_object_get(c, "agents"), "arb");
    json_t *fills = json_object_get(arb, "fills");
    assert_true(num(fills, "a") != num(fills, "b"));
    assert_float_equal(num(fills, "diff"), num(fills, "b") - num(fills, "a"), 1e-9);
    json_decref(c);
    /* The two recorded runs, by id: the same seed, and the same builds and
     * configuration of every non-agent instance. */
    char args[128];
    snprintf(args, sizeof args, "compare %s %s --json", RUN_A, RUN_B);
    c = arbctl_json(args);
    assert_true(json_is_true(json_object_get(c, "same_market")));
    json_decref(c);
}

/* Recorded runs on the same seed whose market differs (a non-agent
 * instance configured otherwise) are not the same market, and say which. */
static void compare_says_a_reconfigured_market_is_another_market(void **state)
{
    (void)state;
    char args[128];
    snprintf(args, sizeof args, "compare %s %s --json", RUN_A, RUN_D);
    json_t *c = arbctl_json(args);
    assert_true(json_is_false(json_object_get(c, "same_market")));
    const char *why = json_string_value(json_object_get(c, "market"));
    if (!why || !strstr(why, "generator is configured otherwise"))
        fail_msg("the reason does not name the generator: %s", why ? why : "(none)");
    json_decref(c);
}

static void compare_says_another_seed_is_another_market(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "ARB_SEED=7 %s/arb-host -c conf.d/sim.ini -s clock.ticks=" TICKS
             " -s digest.report=build/test-runs-c.json > /dev/null 2>&1",
             build_dir());
    assert_int_equal(system(cmd), 0);
    json_t *c = arbctl_json("compare build/test-runs-a.json build/test-runs-c.json --json");
    assert_true(json_is_false(json_object_get(c, "same_market")));
    json_decref(c);
}

/* --split: the figures before and after a time add up to the whole. */
static void split_at_a_time_divides_each_agents_figures(void **state)
{
    (void)state;
    char args[160];
    snprintf(args, sizeof args, "report %s --json", RUN_A);
    json_t *whole = arbctl_json(args);
    long long mid = json_integer_value(json_object_get(whole, "first_ts")) +
                    json_integer_value(json_object_get(whole, "duration_ns")) / 2;
    snprintf(args, sizeof args, "report %s --json --split %lld", RUN_A, mid);
    json_t *split = arbctl_json(args);
    assert_int_equal(json_integer_value(json_object_get(split, "split_ts")), mid);
    json_t *mm = named(json_object_get(split, "agents"), "mm_xa");
    json_t *before = json_object_get(mm, "before"), *after = json_object_get(mm, "after");
    assert_non_null(before);
    assert_float_equal(num(before, "pnl_net") + num(after, "pnl_net"), num(mm, "pnl_net"), 1e-6);
    assert_int_equal(json_integer_value(json_object_get(before, "fills")) +
                         json_integer_value(json_object_get(after, "fills")),
                     json_integer_value(json_object_get(mm, "fills")));
    assert_true(json_integer_value(json_object_get(before, "fills")) > 0);
    assert_true(json_integer_value(json_object_get(after, "fills")) > 0);
    json_decref(whole);
    json_decref(split);
}

/* The page is one file with the report inside and nothing to fetch. */
static void html_report_is_one_self_contained_file(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "%s/arbctl -c conf.d/sim.ini report %s --dsn dbname=" DB
             " --html build/test-runs.html 2>/dev/null",
             build_dir(), RUN_A);
    assert_int_equal(system(cmd), 0);
    FILE *f = fopen("build/test-runs.html", "r");
    assert_non_null(f);
    static char page[4 << 20];
    size_t n = fread(page, 1, sizeof page - 1, f);
    fclose(f);
    page[n] = 0;
    char *data = strstr(page, "id=\"data\">");
    assert_non_null(data);
    data += strlen("id=\"data\">");
    char *end = strstr(data, "</script>");
    assert_non_null(end);
    *end = 0;
    json_error_t e;
    json_t *j = json_loads(data, 0, &e);
    assert_non_null(j);
    assert_int_equal(json_array_size(json_object_get(j, "agents")), 5);
    json_decref(j);
    assert_null(strstr(end + 1, "src=\"http"));
    assert_null(strstr(page, "<link "));
}

int main(int argc, char **argv)
{
    (void)argc;
    rec_test_reexec_under_pg(argv[0]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(runs_lists_each_recorded_run_newest_first),
        cmocka_unit_test(report_from_the_database_equals_the_simulations_own),
        cmocka_unit_test(compare_says_same_market_for_the_same_seed_and_shows_the_change),
        cmocka_unit_test(compare_says_another_seed_is_another_market),
        cmocka_unit_test(compare_says_a_reconfigured_market_is_another_market),
        cmocka_unit_test(split_at_a_time_divides_each_agents_figures),
        cmocka_unit_test(html_report_is_one_self_contained_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

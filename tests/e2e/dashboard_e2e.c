/*
 * dashboard_e2e.c -- runs the dashboard's end-to-end check
 * (tests/e2e/dashboard_e2e.sh: the monolith, headless Chromium, assertions on
 * what the page rendered, a screenshot) as one test of the suite. Skipped,
 * and said so, when Chromium or conf.d/monolith.ini is missing.
 */
#include "e2e_run.h"

static void dashboard_renders_live_data_from_the_monolith(void **state)
{
    (void)state;
    e2e_run("dashboard_e2e.sh");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dashboard_renders_live_data_from_the_monolith),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

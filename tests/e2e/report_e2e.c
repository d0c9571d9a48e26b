/*
 * report_e2e.c -- runs tests/e2e/report_e2e.sh (the monolith on a throwaway
 * PostgreSQL, a hot reload, `arbctl report --split --html`, the page from
 * the gateway's /runs/ in headless Chromium, a screenshot) as one test of
 * the suite. Skipped, and said so, without Chromium.
 */
#include "e2e_run.h"

static void report_page_shows_the_run_split_at_a_hot_reload(void **state)
{
    (void)state;
    e2e_run("report_e2e.sh");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(report_page_shows_the_run_split_at_a_hot_reload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

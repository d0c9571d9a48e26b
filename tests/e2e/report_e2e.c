/*
 * report_e2e.c -- runs tests/e2e/report_e2e.sh (the monolith on a throwaway
 * PostgreSQL, a hot reload, `arbctl report --split --html`, the page from
 * the gateway's /runs/ in headless Chromium, a screenshot) as one test of
 * the suite. Skipped, and said so, without Chromium.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

static void report_page_shows_the_run_split_at_a_hot_reload(void **state)
{
    (void)state;
    const char *build = getenv("ARB_BUILD");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "tests/e2e/report_e2e.sh '%s'", build ? build : "build");
    fflush(stdout);
    int st = system(cmd);
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st) == 77)
        skip();
    assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(report_page_shows_the_run_split_at_a_hot_reload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

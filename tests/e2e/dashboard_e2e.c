/*
 * dashboard_e2e.c -- runs the dashboard's end-to-end check
 * (tests/e2e/dashboard_e2e.sh: the monolith, headless Chromium, assertions on
 * what the page rendered, a screenshot) as one test of the suite. Skipped,
 * and said so, when Chromium or conf.d/monolith.ini is missing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

static void dashboard_renders_live_data_from_the_monolith(void **state)
{
    (void)state;
    const char *build = getenv("ARB_BUILD");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "tests/e2e/dashboard_e2e.sh '%s'", build ? build : "build");
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
        cmocka_unit_test(dashboard_renders_live_data_from_the_monolith),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

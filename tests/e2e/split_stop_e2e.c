/*
 * split_stop_e2e.c -- runs tests/e2e/split_stop_e2e.sh (`make run-split` on
 * a throwaway PostgreSQL, every host ready, then a Ctrl-C to its process
 * group: "stopped", status 0, every host stopped cleanly) as one test of the
 * suite.
 */
#include "e2e_run.h"

static void ctrl_c_stops_run_split_cleanly_and_says_so(void **state)
{
    (void)state;
    e2e_run("split_stop_e2e.sh");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ctrl_c_stops_run_split_cleanly_and_says_so),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

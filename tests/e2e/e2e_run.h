/*
 * e2e_run.h -- what the end-to-end tests share: run one of the scripts in
 * tests/e2e with the build under test ($ARB_BUILD), as one test of the
 * suite. Exit 0 passes, 77 skips (the script says why: no Chromium, say),
 * anything else fails.
 */
#ifndef E2E_RUN_H
#define E2E_RUN_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

static inline void e2e_run(const char *script)
{
    const char *build = getenv("ARB_BUILD");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "tests/e2e/%s '%s'", script, build ? build : "build");
    fflush(stdout);
    int st = system(cmd);
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st) == 77)
        skip();
    assert_int_equal(WEXITSTATUS(st), 0);
}

#endif

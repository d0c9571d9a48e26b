/*
 * timing.h -- how a test says that it failed for time, not for data.
 *
 * Tests against librdkafka's mock cluster wait for states whose timing we do
 * not control (a consumer group's first join takes about 3 s there, a
 * rebalance longer on a loaded machine). scripts/run-tests.sh runs such a
 * test binary once more only when every test that failed in it failed in
 * one of these waits, which print a line starting "TIMING:". Use it only for
 * a wait of the setup (a group joined, a database up) whose running out
 * says nothing about lost, doubled or corrupted data; every assertion about
 * data stays a plain assertion, and fails the run the first time.
 */
#ifndef TEST_TIMING_H
#define TEST_TIMING_H

#include <stdio.h>

#define timing_fail(...)                \
    do {                                \
        printf("TIMING: " __VA_ARGS__); \
        printf("\n");                   \
        fflush(stdout);                 \
        fail();                         \
    } while (0)

#endif

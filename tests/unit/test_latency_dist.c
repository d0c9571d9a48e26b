/*
 * test_latency_dist.c -- the links' delay distributions (host/latency_dist.c):
 * what the [latency] values parse to, what is refused, and that draws are
 * seeded and follow the distribution asked for.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "latency.h"

static int64_t *draws(const char *spec, uint64_t seed, int n)
{
    arbh_lat_dist d;
    char err[256];
    if (arbh_lat_dist_parse(spec, &d, err, sizeof err))
        fail_msg("%s", err);
    int64_t *v = malloc((size_t)n * sizeof *v);
    for (int i = 0; i < n; i++)
        v[i] = arbh_lat_dist_draw(&d, &seed);
    arbh_lat_dist_free(&d);
    return v;
}

static int cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void constant_is_exact_in_any_unit(void **state)
{
    (void)state;
    int64_t *v = draws("constant 1.5ms", 1, 3);
    assert_int_equal(v[0], 1500000);
    assert_int_equal(v[2], 1500000);
    free(v);
    v = draws("constant 250us", 1, 1);
    assert_int_equal(v[0], 250000);
    free(v);
    v = draws("constant 2s", 1, 1);
    assert_int_equal(v[0], 2000000000);
    free(v);
}

static void uniform_stays_in_its_range_and_covers_it(void **state)
{
    (void)state;
    enum { N = 20000 };
    int64_t *v = draws("uniform 1ms 3ms", 7, N);
    qsort(v, N, sizeof *v, cmp);
    assert_true(v[0] >= 1000000 && v[N - 1] <= 3000000);
    assert_true(v[0] < 1010000 && v[N - 1] > 2990000);
    assert_true(llabs(v[N / 2] - 2000000) < 30000);
    free(v);
}

static void lognormal_has_the_median_and_p99_asked_for(void **state)
{
    (void)state;
    enum { N = 200000 };
    int64_t *v = draws("lognormal 2ms 10ms", 42, N);
    qsort(v, N, sizeof *v, cmp);
    assert_true(llabs(v[N / 2] - 2000000) < 40000);          /* 2% */
    assert_true(llabs(v[N * 99 / 100] - 10000000) < 400000); /* 4% */
    free(v);
}

static void quantile_table_interpolates_between_its_points(void **state)
{
    (void)state;
    enum { N = 100000 };
    int64_t *v = draws("quantiles 0:1ms 0.5:2ms 0.9:4ms 1:20ms", 3, N);
    qsort(v, N, sizeof *v, cmp);
    assert_true(v[0] >= 1000000 && v[N - 1] <= 20000000);
    assert_true(llabs(v[N / 2] - 2000000) < 20000);
    assert_true(llabs(v[N * 9 / 10] - 4000000) < 60000);
    assert_true(llabs(v[N / 4] - 1500000) < 20000); /* halfway from 0 to 0.5 */
    free(v);
}

static void same_seed_same_draws_another_seed_others(void **state)
{
    (void)state;
    int64_t *a = draws("lognormal 1ms 5ms", 9, 100), *b = draws("lognormal 1ms 5ms", 9, 100),
            *c = draws("lognormal 1ms 5ms", 10, 100);
    assert_memory_equal(a, b, 100 * sizeof *a);
    assert_memory_not_equal(a, c, 100 * sizeof *a);
    free(a), free(b), free(c);
}

static void malformed_values_are_refused_with_a_reason(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "constant",
        "constant 1",
        "constant 1 ms",
        "constant -1ms",
        "constant 61s",
        "constant 1ms 2ms",
        "uniform 3ms 1ms",
        "lognormal 0ms 1ms",
        "lognormal 5ms 1ms",
        "quantiles 0:1ms",
        "quantiles 0.1:1ms 1:2ms",
        "quantiles 0:1ms 0.5:2ms 0.9:5ms",
        "quantiles 0:5ms 1:1ms",
        "gaussian 1ms 2ms",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        arbh_lat_dist d;
        char err[256] = "";
        if (arbh_lat_dist_parse(bad[i], &d, err, sizeof err) == 0)
            fail_msg("'%s' was accepted", bad[i]);
        assert_true(err[0] != 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(constant_is_exact_in_any_unit),
        cmocka_unit_test(uniform_stays_in_its_range_and_covers_it),
        cmocka_unit_test(lognormal_has_the_median_and_p99_asked_for),
        cmocka_unit_test(quantile_table_interpolates_between_its_points),
        cmocka_unit_test(same_seed_same_draws_another_seed_others),
        cmocka_unit_test(malformed_values_are_refused_with_a_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_gateway_keys.c -- API keys (parsing, hashing at rest, lookup, bearer
 * headers) and the per-key token bucket.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "../../plugins/gateway/api_keys.h"
#include "../../plugins/gateway/rate_limit.h"

#define KEY_A "alice-key-0123456789"
#define KEY_B "bob-key-abcdefghijkl"

static void table_ab(gw_key_table *t)
{
    char err[160];
    memset(t, 0, sizeof *t);
    assert_int_equal(gw_keys_add(t, "alice", KEY_A ":1001", err, sizeof err), 0);
    assert_int_equal(gw_keys_add(t, "bob", KEY_B ":1002", err, sizeof err), 0);
}

static void key_maps_to_its_account(void **state)
{
    (void)state;
    gw_key_table t;
    table_ab(&t);
    gw_api_key *a = gw_keys_find(&t, KEY_A, strlen(KEY_A));
    gw_api_key *b = gw_keys_find(&t, KEY_B, strlen(KEY_B));
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a->account, 1001);
    assert_string_equal(a->name, "alice");
    assert_int_equal(b->account, 1002);
    gw_keys_free(&t);
}

static void wrong_or_truncated_key_is_not_found(void **state)
{
    (void)state;
    gw_key_table t;
    table_ab(&t);
    assert_null(gw_keys_find(&t, "alice-key-012345678X", 20));
    assert_null(gw_keys_find(&t, KEY_A, strlen(KEY_A) - 1));
    assert_null(gw_keys_find(&t, "", 0));
    gw_keys_free(&t);
}

static void table_keeps_no_key_in_clear(void **state)
{
    (void)state;
    gw_key_table t;
    table_ab(&t);
    const char *mem = (const char *)t.items;
    size_t n = t.count * sizeof *t.items;
    assert_null(memmem(mem, n, "alice-key", 9));
    assert_null(memmem(mem, n, "bob-key", 7));
    gw_keys_free(&t);
}

static void sha256_form_accepts_the_digest_of_the_key(void **state)
{
    (void)state;
    gw_key_table t = {0};
    char err[160];
    /* sha256("alice-key-0123456789") */
    uint8_t d[GW_SHA256_LEN];
    gw_sha256(KEY_A, strlen(KEY_A), d);
    char spec[128] = "sha256:";
    for (int i = 0; i < GW_SHA256_LEN; i++)
        snprintf(spec + 7 + 2 * i, 3, "%02x", d[i]);
    strcat(spec, ":77");
    assert_int_equal(gw_keys_add(&t, "hashed", spec, err, sizeof err), 0);
    gw_api_key *k = gw_keys_find(&t, KEY_A, strlen(KEY_A));
    assert_non_null(k);
    assert_int_equal(k->account, 77);
    gw_keys_free(&t);
}

static void bad_specs_are_rejected_with_a_reason(void **state)
{
    (void)state;
    gw_key_table t = {0};
    char err[160];
    assert_int_equal(gw_keys_add(&t, "a", "short:1", err, sizeof err), -2);
    assert_non_null(strstr(err, "at least"));
    assert_int_equal(gw_keys_add(&t, "a", KEY_A, err, sizeof err), -2);
    assert_int_equal(gw_keys_add(&t, "a", KEY_A ":0", err, sizeof err), -2);
    assert_int_equal(gw_keys_add(&t, "a", KEY_A ":12x", err, sizeof err), -2);
    assert_int_equal(gw_keys_add(&t, "a", "sha256:abcd:5", err, sizeof err), -2);
    assert_int_equal(gw_keys_add(&t, "a", "has space in the key!!:5", err, sizeof err), -2);
    assert_int_equal(t.count, 0);
    gw_keys_free(&t);
}

static void same_key_or_name_twice_is_rejected(void **state)
{
    (void)state;
    gw_key_table t;
    table_ab(&t);
    char err[160];
    assert_int_equal(gw_keys_add(&t, "carol", KEY_A ":9", err, sizeof err), -2);
    assert_int_equal(gw_keys_add(&t, "alice", "another-key-000000000:9", err, sizeof err), -2);
    assert_int_equal(t.count, 2);
    gw_keys_free(&t);
}

static void bearer_header_is_parsed_case_insensitively(void **state)
{
    (void)state;
    const char *tok;
    size_t len;
    assert_int_equal(gw_bearer_token("Bearer abc", &tok, &len), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(tok, "abc", 3);
    assert_int_equal(gw_bearer_token("bearer   xyz  ", &tok, &len), 0);
    assert_int_equal(len, 3);
    assert_int_equal(gw_bearer_token("Basic abc", &tok, &len), -1);
    assert_int_equal(gw_bearer_token("Bearer", &tok, &len), -1);
    assert_int_equal(gw_bearer_token("Bearer ", &tok, &len), -1);
    assert_int_equal(gw_bearer_token("Bearerabc", &tok, &len), -1);
    assert_int_equal(gw_bearer_token(NULL, &tok, &len), -1);
}

static void constant_time_compare_is_equality(void **state)
{
    (void)state;
    uint8_t a[4] = {1, 2, 3, 4}, b[4] = {1, 2, 3, 4}, c[4] = {1, 2, 3, 5};
    assert_true(gw_ct_equal(a, b, 4));
    assert_false(gw_ct_equal(a, c, 4));
    assert_true(gw_ct_equal(a, c, 3));
}

#define SEC 1000000000LL

static void bucket_allows_burst_then_refuses(void **state)
{
    (void)state;
    gw_token_bucket b;
    gw_bucket_init(&b, 10, 5, 0);
    for (int i = 0; i < 5; i++)
        assert_true(gw_bucket_take(&b, 0, NULL));
    int64_t retry = -1;
    assert_false(gw_bucket_take(&b, 0, &retry));
    assert_int_equal(retry, 100); /* one token per 100 ms at 10/s */
}

static void bucket_refills_at_the_rate(void **state)
{
    (void)state;
    gw_token_bucket b;
    gw_bucket_init(&b, 10, 1, 0);
    assert_true(gw_bucket_take(&b, 0, NULL));
    assert_false(gw_bucket_take(&b, SEC / 10 - 1, NULL));
    assert_true(gw_bucket_take(&b, SEC / 10, NULL));
    assert_false(gw_bucket_take(&b, SEC / 10, NULL));
}

static void bucket_never_holds_more_than_burst(void **state)
{
    (void)state;
    gw_token_bucket b;
    gw_bucket_init(&b, 1000, 3, 0);
    for (int i = 0; i < 3; i++)
        assert_true(gw_bucket_take(&b, 0, NULL));
    /* A year idle, at a high rate: still only `burst` tokens, no overflow. */
    int64_t later = 365LL * 24 * 3600 * SEC;
    for (int i = 0; i < 3; i++)
        assert_true(gw_bucket_take(&b, later, NULL));
    assert_false(gw_bucket_take(&b, later, NULL));
}

static void rate_zero_means_unlimited(void **state)
{
    (void)state;
    gw_token_bucket b;
    gw_bucket_init(&b, 0, 1, 0);
    for (int i = 0; i < 10000; i++)
        assert_true(gw_bucket_take(&b, 0, NULL));
}

static void clock_going_backwards_grants_nothing(void **state)
{
    (void)state;
    gw_token_bucket b;
    gw_bucket_init(&b, 10, 1, 5 * SEC);
    assert_true(gw_bucket_take(&b, 5 * SEC, NULL));
    assert_false(gw_bucket_take(&b, 1 * SEC, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(key_maps_to_its_account),
        cmocka_unit_test(wrong_or_truncated_key_is_not_found),
        cmocka_unit_test(table_keeps_no_key_in_clear),
        cmocka_unit_test(sha256_form_accepts_the_digest_of_the_key),
        cmocka_unit_test(bad_specs_are_rejected_with_a_reason),
        cmocka_unit_test(same_key_or_name_twice_is_rejected),
        cmocka_unit_test(bearer_header_is_parsed_case_insensitively),
        cmocka_unit_test(constant_time_compare_is_equality),
        cmocka_unit_test(bucket_allows_burst_then_refuses),
        cmocka_unit_test(bucket_refills_at_the_rate),
        cmocka_unit_test(bucket_never_holds_more_than_burst),
        cmocka_unit_test(rate_zero_means_unlimited),
        cmocka_unit_test(clock_going_backwards_grants_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

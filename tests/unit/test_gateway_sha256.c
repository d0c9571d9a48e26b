/*
 * test_gateway_sha256.c -- the gateway's SHA-256 against the FIPS 180-4
 * example vectors, and incremental hashing against one-shot hashing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/gateway/sha256.h"

static void hex(const uint8_t d[GW_SHA256_LEN], char out[65])
{
    for (int i = 0; i < GW_SHA256_LEN; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void expect_digest(const char *msg, size_t len, const char *want)
{
    uint8_t d[GW_SHA256_LEN];
    char got[65];
    gw_sha256(msg, len, d);
    hex(d, got);
    assert_string_equal(got, want);
}

static void empty_message_matches_fips_vector(void **state)
{
    (void)state;
    expect_digest("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void abc_matches_fips_vector(void **state)
{
    (void)state;
    expect_digest("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void two_block_message_matches_fips_vector(void **state)
{
    (void)state;
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    expect_digest(m, strlen(m), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void million_a_matches_fips_vector(void **state)
{
    (void)state;
    char *m = malloc(1000000);
    assert_non_null(m);
    memset(m, 'a', 1000000);
    expect_digest(m, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(m);
}

static void padding_boundaries_55_56_64_bytes_differ_and_are_stable(void **state)
{
    (void)state;
    /* 55 bytes fit the length in one block, 56 need a second: both paths. */
    char m[64];
    memset(m, 'x', sizeof m);
    uint8_t a[GW_SHA256_LEN], b[GW_SHA256_LEN], c[GW_SHA256_LEN];
    gw_sha256(m, 55, a);
    gw_sha256(m, 56, b);
    gw_sha256(m, 64, c);
    assert_memory_not_equal(a, b, GW_SHA256_LEN);
    assert_memory_not_equal(b, c, GW_SHA256_LEN);
    char h[65];
    hex(b, h);
    /* SHA-256 of 56 'x', computed independently (Python's hashlib). */
    assert_string_equal(h, "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e");
}

static void incremental_updates_equal_one_shot(void **state)
{
    (void)state;
    uint8_t msg[300];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)(i * 7 + 3);
    uint8_t one[GW_SHA256_LEN];
    gw_sha256(msg, sizeof msg, one);
    for (size_t chunk = 1; chunk < 130; chunk += 13) {
        gw_sha256_ctx h;
        gw_sha256_init(&h);
        for (size_t off = 0; off < sizeof msg; off += chunk)
            gw_sha256_update(&h, msg + off, off + chunk > sizeof msg ? sizeof msg - off : chunk);
        uint8_t inc[GW_SHA256_LEN];
        gw_sha256_final(&h, inc);
        assert_memory_equal(one, inc, GW_SHA256_LEN);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_message_matches_fips_vector),
        cmocka_unit_test(abc_matches_fips_vector),
        cmocka_unit_test(two_block_message_matches_fips_vector),
        cmocka_unit_test(million_a_matches_fips_vector),
        cmocka_unit_test(padding_boundaries_55_56_64_bytes_differ_and_are_stable),
        cmocka_unit_test(incremental_updates_equal_one_shot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

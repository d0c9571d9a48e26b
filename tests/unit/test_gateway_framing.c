/*
 * test_gateway_framing.c -- the gateway's framing check (http_framing.c)
 * on header lists built directly, one rule per test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <string.h>
#include <sys/queue.h>

#include "../../plugins/gateway/http_framing.h"

/* Builds a header list from "name", "value", ... pairs, kept verbatim
 * (evhttp_add_header would refuse nothing here that matters). */
static struct evkeyvalq *headers(int n, const char *const *kv)
{
    static struct evkeyvalq q;
    static struct evkeyval items[8];
    TAILQ_INIT(&q);
    for (int i = 0; i < n; i++) {
        items[i].key = (char *)kv[2 * i];
        items[i].value = (char *)kv[2 * i + 1];
        TAILQ_INSERT_TAIL(&q, &items[i], next);
    }
    return &q;
}

static const char *check(int n, const char *const *kv)
{
    gw_framing_error e = {0};
    return gw_http_check_framing(headers(n, kv), &e) ? e.code : NULL;
}

static void single_content_length_passes(void **state)
{
    (void)state;
    const char *kv[] = {"Host", "x", "Content-Length", "42"};
    assert_null(check(2, kv));
}

static void chunked_alone_passes(void **state)
{
    (void)state;
    const char *kv[] = {"Transfer-Encoding", "Chunked"};
    assert_null(check(1, kv));
}

static void repeated_content_length_fails(void **state)
{
    (void)state;
    const char *kv[] = {"Content-Length", "4", "content-length", "4"};
    assert_string_equal(check(2, kv), "duplicate_content_length");
}

static void signed_content_length_fails(void **state)
{
    (void)state;
    const char *kv[] = {"Content-Length", "+4"};
    assert_string_equal(check(1, kv), "invalid_content_length");
}

static void content_length_past_18_digits_fails(void **state)
{
    (void)state;
    const char *kv[] = {"Content-Length", "1234567890123456789"};
    assert_string_equal(check(1, kv), "invalid_content_length");
}

static void empty_content_length_fails(void **state)
{
    (void)state;
    const char *kv[] = {"Content-Length", ""};
    assert_string_equal(check(1, kv), "invalid_content_length");
}

static void whitespace_in_a_header_name_fails(void **state)
{
    (void)state;
    const char *kv[] = {"Content-Length ", "4"};
    assert_string_equal(check(1, kv), "invalid_header_name");
}

static void coding_list_fails(void **state)
{
    (void)state;
    const char *kv[] = {"Transfer-Encoding", "identity, chunked"};
    assert_string_equal(check(1, kv), "unsupported_transfer_encoding");
}

static void repeated_transfer_encoding_fails(void **state)
{
    (void)state;
    const char *kv[] = {"Transfer-Encoding", "chunked", "Transfer-Encoding", "chunked"};
    assert_string_equal(check(2, kv), "unsupported_transfer_encoding");
}

static void both_framings_fail(void **state)
{
    (void)state;
    const char *kv[] = {"Content-Length", "4", "Transfer-Encoding", "chunked"};
    assert_string_equal(check(2, kv), "conflicting_framing");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(single_content_length_passes),
        cmocka_unit_test(chunked_alone_passes),
        cmocka_unit_test(repeated_content_length_fails),
        cmocka_unit_test(signed_content_length_fails),
        cmocka_unit_test(content_length_past_18_digits_fails),
        cmocka_unit_test(empty_content_length_fails),
        cmocka_unit_test(whitespace_in_a_header_name_fails),
        cmocka_unit_test(coding_list_fails),
        cmocka_unit_test(repeated_transfer_encoding_fails),
        cmocka_unit_test(both_framings_fail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

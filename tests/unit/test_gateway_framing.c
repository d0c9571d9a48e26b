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

static const char *host(int n, const char *const *kv, int http11)
{
    gw_framing_error e = {0};
    return gw_http_check_host(headers(n, kv), http11, &e) ? e.code : NULL;
}

/* RFC 9112 section 3.2: a server MUST answer 400 to an HTTP/1.1 request
 * with no Host, and to any request with two or an invalid one. */
static void host_once_passes_and_is_required_of_http11(void **state)
{
    (void)state;
    const char *one[] = {"Accept", "*/*", "host", "127.0.0.1:8080"};
    assert_null(host(2, one, 1));
    const char *v6[] = {"Host", "[::1]:8080"};
    assert_null(host(1, v6, 1));
    const char *none[] = {"Accept", "*/*"};
    assert_string_equal(host(1, none, 1), "missing_host");
    assert_null(host(1, none, 0)); /* HTTP/1.0 may leave it out */
    const char *two[] = {"Host", "a", "Host", "b"};
    assert_string_equal(host(2, two, 1), "duplicate_host");
    assert_string_equal(host(2, two, 0), "duplicate_host");
    const char *bad[][2] = {
        {"Host", "a b"}, {"Host", "evil.com/x"}, {"Host", "u@h"}, {"Host", "a\tb"}};
    for (int i = 0; i < 4; i++)
        assert_string_equal(host(1, bad[i], 1), "invalid_host");
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
        cmocka_unit_test(host_once_passes_and_is_required_of_http11),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

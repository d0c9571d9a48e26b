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
#include <stdio.h>
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
    return gw_http_check_framing(headers(n, kv), 1, &e) ? e.code : NULL;
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

/* ---- the byte scanner (gw_http_scan) ---- */

static const char *chunk(const char *line)
{
    static gw_framing_error e;
    uint64_t size;
    size_t ext;
    return gw_http_chunk_line(line, strlen(line), &size, &ext, &e) ? e.code : NULL;
}

/* RFC 9112 section 7.1: hex digits, then only extensions. evhttp reads
 * "0x5", "+5", " 5" and "5 junk" as 5 and refuses "5;x=1". */
static void chunk_size_line_is_held_to_the_grammar(void **state)
{
    (void)state;
    static const char *const good[] = {
        "5", "05", "aB", "5;x", "5 ; x = 1", "5;x=\"a b\\\"\"", "0;a=b;c", "5\t;x"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        if (chunk(good[i]))
            fail_msg("refused: %s", good[i]);
    static const char *const bad[] = {"",   "zz",   "0x5",  "+5",         " 5",     "-5",     "5 ",
                                      "5;", "5;=1", "5;x=", "5;x=\"open", "5 junk", "5;x=a b"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (!chunk(bad[i]))
            fail_msg("accepted: %s", bad[i]);
    uint64_t size;
    size_t ext;
    gw_framing_error e;
    assert_int_equal(gw_http_chunk_line("ffffffffffffffffffff", 20, &size, &ext, &e), 0);
    assert_true(size == UINT64_MAX); /* saturated, never wrapped */
    assert_int_equal(gw_http_chunk_line("1f;x", 4, &size, &ext, &e), 0);
    assert_true(size == 31 && ext == 2);
}

/* Feeds bytes in pieces of `step` (0: all at once); the scan's status (0
 * when the request's framing is fine) and code. */
static int scan(const char *bytes, size_t step, size_t max_head, uint64_t max_body,
                const char **code, gw_http_scan *out)
{
    static gw_http_scan s;
    gw_http_scan_start(&s, max_head, max_body);
    size_t n = strlen(bytes), at = 0;
    while (at < n) {
        size_t piece = step && n - at > step ? step : n - at;
        at += gw_http_scan_feed(&s, bytes + at, piece);
    }
    if (out)
        *out = s;
    *code = s.state == GW_SCAN_FAILED ? s.err.code : NULL;
    return s.state == GW_SCAN_FAILED ? s.status : s.state == GW_SCAN_DONE ? 0 : -1;
}

#define POST "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"

static void scan_verdicts_do_not_depend_on_how_bytes_arrive(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        int status;
        const char *code;
    } cases[] = {
        {POST "5\r\nhello\r\n0\r\n\r\n", 0, NULL},
        {POST "5;a=1\r\nhello\r\n0;b\r\nX-T: 1\r\n\r\n", 0, NULL},
        {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0, NULL},
        {"GET / HTTP/1.1\nHost: x\n\n", 0, NULL},
        {POST "zz\r\nhello\r\n0\r\n\r\n", 400, "invalid_chunk_size"},
        {POST "0x5\r\nhello\r\n0\r\n\r\n", 400, "invalid_chunk_size"},
        {POST "5\nhello\r\n0\r\n\r\n", 400, "invalid_chunk_size"},
        {POST "5\r\nhello0\r\n\r\n", 400, "invalid_chunk"},
        {POST "5\r\nhello\r\n\r\n0\r\n\r\n", 400, "invalid_chunk_size"},
        {POST "5;=\r\nhello\r\n0\r\n\r\n", 400, "invalid_chunk_extension"},
        {POST "0\r\nno colon\r\n\r\n", 400, "invalid_trailer"},
        {POST "0\r\nX-T: 1\r\n folded\r\n\r\n", 400, "invalid_trailer"},
        {POST "401\r\n", 413, "body_too_large"},
        {POST "200\r\n", -1, NULL}, /* exactly max_body: waits for the data */
        {POST "200\r\n"
              "%512s\r\n201\r\n",
         413, "body_too_large"},
        /* evhttp reads no body for HEAD, and not one framed by a folded
         * or second Transfer-Encoding: neither is followed. */
        {"HEAD / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, NULL},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0,
         NULL},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n folded\r\n\r\nzz\r\n", 0, NULL},
        {"POST / HTTP/1.1\r\ntransfer-encoding:   CHUNKED \t\r\n\r\nzz\r\n", 400,
         "invalid_chunk_size"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char bytes[1024];
        snprintf(bytes, sizeof bytes, cases[i].bytes, "");
        for (size_t step = 0; step < 4; step++) {
            const char *code;
            int st = scan(bytes, step, 1024, 1024, &code, NULL);
            if (st != cases[i].status ||
                (cases[i].code ? !code || strcmp(code, cases[i].code) : code != NULL))
                fail_msg("case %zu step %zu: %d %s", i, step, st, code ? code : "-");
        }
    }
}

static void long_request_line_is_414_and_long_fields_431(void **state)
{
    (void)state;
    char bytes[4096];
    const char *code;
    snprintf(bytes, sizeof bytes, "GET /%0300d HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    assert_int_equal(scan(bytes, 0, 256, 1024, &code, NULL), 414);
    assert_string_equal(code, "uri_too_long");
    snprintf(bytes, sizeof bytes, "GET / HTTP/1.1\r\nX-A: %0300d\r\n\r\n", 0);
    assert_int_equal(scan(bytes, 7, 256, 1024, &code, NULL), 431);
    assert_string_equal(code, "headers_too_large");
    /* The trailer counts with the head, as evhttp counts it. */
    snprintf(bytes, sizeof bytes, POST "0\r\nX-T: %0300d\r\n\r\n", 0);
    assert_int_equal(scan(bytes, 0, 256, 1024, &code, NULL), 431);
    /* Line ends count: the limit is on the bytes. */
    snprintf(bytes, sizeof bytes, "GET / HTTP/1.1\r\n\r\n");
    assert_int_equal(scan(bytes, 0, 18, 1024, &code, NULL), 0);
    assert_int_equal(scan(bytes, 0, 17, 1024, &code, NULL), 431);
}

/* A chunk extension is accepted; the scan stops at the byte after the
 * size, which the caller makes a space for evhttp. */
static void chunk_extension_asks_for_its_separator_to_be_a_space(void **state)
{
    (void)state;
    const char *req = POST "5;a=1\r\nhello\r\n3\t;b\r\nabc\r\n2 ;c\r\nhi\r\n0;d\r\n\r\n";
    gw_http_scan s;
    gw_http_scan_start(&s, 1024, 1024);
    size_t n = strlen(req), at = 0, patches[8], np = 0;
    while (at < n) {
        at += gw_http_scan_feed(&s, req + at, n - at);
        if (s.patch_at != UINT64_MAX)
            patches[np++] = (size_t)s.patch_at;
    }
    assert_int_equal(s.state, GW_SCAN_DONE);
    assert_int_equal(np, 3); /* "2 ;c" already has its space */
    assert_int_equal(req[patches[0]], ';');
    assert_int_equal(req[patches[1]], '\t');
    assert_int_equal(req[patches[2]], ';');
    assert_true(!strncmp(req + patches[2] - 1, "0;d", 3));
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
        cmocka_unit_test(chunk_size_line_is_held_to_the_grammar),
        cmocka_unit_test(scan_verdicts_do_not_depend_on_how_bytes_arrive),
        cmocka_unit_test(long_request_line_is_414_and_long_fields_431),
        cmocka_unit_test(chunk_extension_asks_for_its_separator_to_be_a_space),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

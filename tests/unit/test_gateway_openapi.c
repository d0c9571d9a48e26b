/*
 * test_gateway_openapi.c -- openapi.json and the gateway's route table
 * describe the same API: every route the gateway serves is documented, and
 * nothing is documented that it does not serve. (The integration test asks
 * the running gateway for each documented operation as well.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../../plugins/gateway/routes.h"

static const char *const http_methods[] = {"get",  "put",     "post",  "delete",
                                           "head", "options", "patch", "trace"};

static json_t *load_doc(void)
{
    json_error_t e;
    json_t *doc = json_load_file("plugins/gateway/openapi.json", JSON_REJECT_DUPLICATES, &e);
    if (!doc)
        fail_msg("openapi.json: %s at line %d", e.text, e.line);
    return doc;
}

static void document_is_openapi_3(void **state)
{
    (void)state;
    json_t *doc = load_doc();
    const char *v = json_string_value(json_object_get(doc, "openapi"));
    assert_non_null(v);
    assert_int_equal(v[0], '3');
    assert_non_null(json_object_get(json_object_get(doc, "info"), "title"));
    json_decref(doc);
}

static void every_served_route_is_documented(void **state)
{
    (void)state;
    json_t *doc = load_doc();
    json_t *paths = json_object_get(doc, "paths");
    for (size_t i = 0; i < gw_route_count; i++) {
        char method[16];
        size_t n = strlen(gw_routes[i].method);
        for (size_t k = 0; k <= n; k++)
            method[k] = (char)(gw_routes[i].method[k] | 0x20 * (k < n));
        json_t *item = json_object_get(paths, gw_routes[i].pattern);
        if (!item || !json_object_get(item, method))
            fail_msg("%s %s is served but not in openapi.json", gw_routes[i].method,
                     gw_routes[i].pattern);
    }
    json_decref(doc);
}

static void every_documented_operation_is_served(void **state)
{
    (void)state;
    json_t *doc = load_doc();
    const char *path;
    json_t *item;
    size_t operations = 0;
    json_object_foreach(json_object_get(doc, "paths"), path, item)
    {
        for (size_t m = 0; m < sizeof http_methods / sizeof *http_methods; m++) {
            if (!json_object_get(item, http_methods[m]))
                continue;
            operations++;
            int found = 0;
            for (size_t i = 0; i < gw_route_count; i++)
                if (!strcmp(gw_routes[i].pattern, path) &&
                    !strcasecmp(gw_routes[i].method, http_methods[m]))
                    found = 1;
            if (!found)
                fail_msg("openapi.json documents %s %s, which the gateway does not serve",
                         http_methods[m], path);
        }
    }
    assert_int_equal(operations, gw_route_count);
    json_decref(doc);
}

/* Every "$ref" points at something that exists. */
static void check_refs(json_t *doc, json_t *node)
{
    if (json_is_object(node)) {
        const char *k;
        json_t *v;
        json_object_foreach(node, k, v)
        {
            if (!strcmp(k, "$ref")) {
                const char *ref = json_string_value(v);
                assert_non_null(ref);
                assert_memory_equal(ref, "#/", 2);
                char buf[256];
                snprintf(buf, sizeof buf, "%s", ref + 2);
                json_t *at = doc;
                for (char *save, *tok = strtok_r(buf, "/", &save); tok;
                     tok = strtok_r(NULL, "/", &save))
                    at = json_object_get(at, tok);
                if (!at)
                    fail_msg("dangling $ref %s", ref);
            } else {
                check_refs(doc, v);
            }
        }
    } else if (json_is_array(node)) {
        size_t i;
        json_t *v;
        json_array_foreach(node, i, v) check_refs(doc, v);
    }
}

static void every_reference_resolves(void **state)
{
    (void)state;
    json_t *doc = load_doc();
    check_refs(doc, doc);
    json_decref(doc);
}

static void matcher_distinguishes_unknown_path_and_wrong_method(void **state)
{
    (void)state;
    gw_path_params pp;
    char allow[64];
    assert_int_equal(gw_route_match("GET", "/v1/orders/42", &pp, allow, sizeof allow),
                     GW_R_ORDER_GET);
    assert_int_equal(pp.count, 1);
    assert_int_equal(pp.len[0], 2);
    assert_memory_equal(pp.value[0], "42", 2);
    assert_int_equal(gw_route_match("GET", "/v1/book/XA/BTCUSD", &pp, allow, sizeof allow),
                     GW_R_BOOK);
    assert_int_equal(pp.count, 2);
    assert_int_equal(gw_route_match("PUT", "/v1/orders/42", &pp, allow, sizeof allow),
                     GW_METHOD_NOT_ALLOWED);
    assert_string_equal(allow, "GET, DELETE");
    assert_int_equal(gw_route_match("GET", "/v1/orders/", &pp, allow, sizeof allow),
                     GW_ROUTE_NOT_FOUND);
    assert_int_equal(gw_route_match("GET", "/v1/orders/1/2", &pp, allow, sizeof allow),
                     GW_ROUTE_NOT_FOUND);
    assert_int_equal(gw_route_match("GET", "/v1/book/XA", &pp, allow, sizeof allow),
                     GW_ROUTE_NOT_FOUND);
    assert_int_equal(gw_route_match("GET", "/v2/orders", &pp, allow, sizeof allow),
                     GW_ROUTE_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(document_is_openapi_3),
        cmocka_unit_test(every_served_route_is_documented),
        cmocka_unit_test(every_documented_operation_is_served),
        cmocka_unit_test(every_reference_resolves),
        cmocka_unit_test(matcher_distinguishes_unknown_path_and_wrong_method),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

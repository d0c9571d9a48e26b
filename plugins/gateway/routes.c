/*
 * routes.c -- the route table and its matcher (see routes.h). Templates are
 * compared segment by segment; a "{name}" segment matches one non-empty
 * segment. Fifteen routes: a linear scan is the fastest thing that works.
 */
#include "routes.h"

#include <string.h>

const gw_route gw_routes[] = {
    {"GET", "/", GW_R_DASHBOARD},
    {"GET", "/v1/openapi.json", GW_R_OPENAPI},
    {"POST", "/v1/orders", GW_R_ORDER_NEW},
    {"GET", "/v1/orders", GW_R_ORDER_LIST},
    {"GET", "/v1/orders/{id}", GW_R_ORDER_GET},
    {"DELETE", "/v1/orders/{id}", GW_R_ORDER_CANCEL},
    {"GET", "/v1/instruments", GW_R_INSTRUMENTS},
    {"GET", "/v1/book/{venue}/{symbol}", GW_R_BOOK},
    {"GET", "/v1/trades", GW_R_TRADES},
    {"GET", "/v1/accounts", GW_R_ACCOUNTS},
    {"GET", "/v1/stream", GW_R_STREAM},
    {"GET", "/v1/services", GW_R_SERVICES},
    {"GET", "/v1/fills", GW_R_FILLS},
    {"GET", "/runs/", GW_R_RUNS},
    {"GET", "/runs/{file}", GW_R_RUN_PAGE},
};
const size_t gw_route_count = sizeof gw_routes / sizeof gw_routes[0];

static int path_matches(const char *pattern, const char *path, gw_path_params *params)
{
    params->count = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            const char *end = strchr(s, '/');
            size_t n = end ? (size_t)(end - s) : strlen(s);
            if (n == 0 || params->count >= GW_MAX_PARAMS)
                return 0;
            params->value[params->count] = s;
            params->len[params->count] = n;
            params->count++;
            p = close + 1;
            s += n;
            continue;
        }
        if (*p != *s)
            return 0;
        p++, s++;
    }
    return *p == 0 && *s == 0;
}

int gw_route_match(const char *method, const char *path, gw_path_params *params, char *allow,
                   size_t allow_len)
{
    int path_known = 0;
    if (allow_len)
        allow[0] = 0;
    for (size_t i = 0; i < gw_route_count; i++) {
        gw_path_params tmp;
        if (!path_matches(gw_routes[i].pattern, path, &tmp))
            continue;
        if (!strcmp(gw_routes[i].method, method)) {
            *params = tmp;
            return gw_routes[i].id;
        }
        if (allow_len) {
            size_t used = strlen(allow);
            if (used && used + 2 < allow_len)
                strcat(allow, ", ");
            strncat(allow, gw_routes[i].method, allow_len - strlen(allow) - 1);
        }
        path_known = 1;
    }
    return path_known ? GW_METHOD_NOT_ALLOWED : GW_ROUTE_NOT_FOUND;
}

/*
 * routes.h -- the gateway's route table: every (method, path) it serves.
 *
 * The dispatcher matches requests against this table and nothing else, and a
 * test compares the table with openapi.json, so the document and the server
 * cannot drift apart. Pure code: matching only, no handlers, no HTTP library.
 */
#ifndef GW_ROUTES_H
#define GW_ROUTES_H

#include <stddef.h>

enum gw_route_id {
    GW_R_DASHBOARD = 0,
    GW_R_OPENAPI,
    GW_R_ORDER_NEW,
    GW_R_ORDER_LIST,
    GW_R_ORDER_GET,
    GW_R_ORDER_CANCEL,
    GW_R_INSTRUMENTS,
    GW_R_BOOK,
    GW_R_TRADES,
    GW_R_ACCOUNTS,
    GW_R_STREAM,
    GW_R_SERVICES,
    GW_R_FILLS,
    GW_R_RUNS,
    GW_R_RUN_PAGE,
    GW_R_COUNT,
};

typedef struct gw_route {
    const char *method;  /* "GET", "POST", "DELETE" */
    const char *pattern; /* OpenAPI path template, e.g. "/v1/orders/{id}" */
    int id;
} gw_route;

extern const gw_route gw_routes[];
extern const size_t gw_route_count;

#define GW_MAX_PARAMS 2
#define GW_PARAM_MAX 64

/* The matched template's parameters, raw (still percent-encoded). */
typedef struct gw_path_params {
    const char *value[GW_MAX_PARAMS];
    size_t len[GW_MAX_PARAMS];
    int count;
} gw_path_params;

#define GW_ROUTE_NOT_FOUND (-1)    /* no template matches the path */
#define GW_METHOD_NOT_ALLOWED (-2) /* the path matches, the method does not */

/* Matches a path (without query) and method. Returns the route id, or one of
 * the two negative codes; for GW_METHOD_NOT_ALLOWED `allow` receives the
 * methods the path does accept ("GET, DELETE"). */
int gw_route_match(const char *method, const char *path, gw_path_params *params, char *allow,
                   size_t allow_len);

#endif

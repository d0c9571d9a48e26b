/*
 * assets.h -- the static files the gateway serves, compiled into the plugin:
 * the dashboard page and the OpenAPI document. Bytes only; serving them is
 * gateway_plugin.c's job.
 */
#ifndef GW_ASSETS_H
#define GW_ASSETS_H

#include <stddef.h>

typedef struct gw_asset {
    const char *data;
    size_t len;
} gw_asset;

gw_asset gw_asset_dashboard(void);
gw_asset gw_asset_openapi(void);

#endif

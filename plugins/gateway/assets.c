/*
 * assets.c -- embeds dashboard.html and openapi.json with the assembler's
 * .incbin, so the plugin is one self-contained file and there is no build step
 * beyond the compiler (make runs from the repository root, which is where the
 * paths below are resolved; mk/gateway.mk makes the object depend on both
 * files). The symbols are hidden: the plugin exports only its entry point.
 */
#include "assets.h"

#define GW_INCBIN(sym, file)                        \
    __asm__(".section .rodata\n"                    \
            ".global " #sym "_start\n"              \
            ".hidden " #sym "_start\n"              \
            ".balign 16\n" #sym "_start:\n"         \
            ".incbin \"" file "\"\n"                \
            ".global " #sym "_end\n"                \
            ".hidden " #sym "_end\n" #sym "_end:\n" \
            ".byte 0\n"                             \
            ".previous\n");                         \
    extern const char sym##_start[];                \
    extern const char sym##_end[]

GW_INCBIN(gw_dashboard_html, "plugins/gateway/dashboard.html");
GW_INCBIN(gw_openapi_json, "plugins/gateway/openapi.json");

gw_asset gw_asset_dashboard(void)
{
    return (gw_asset){gw_dashboard_html_start,
                      (size_t)(gw_dashboard_html_end - gw_dashboard_html_start)};
}

gw_asset gw_asset_openapi(void)
{
    return (gw_asset){gw_openapi_json_start, (size_t)(gw_openapi_json_end - gw_openapi_json_start)};
}

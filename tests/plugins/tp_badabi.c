/* A plugin built against a future ABI: the host must refuse to load it. */
#include <arb/plugin.h>

static int c(arb_ctx *ctx, void **self)
{
    (void)ctx, (void)self;
    return ARB_OK;
}
static int s(void *self)
{
    (void)self;
    return ARB_OK;
}
static void v(void *self) { (void)self; }

static const arb_plugin desc = {
    .abi_version = ARB_ABI_VERSION + 41,
    .size = sizeof(arb_plugin),
    .name = "tp_badabi",
    .version = "0.0.1",
    .create = c,
    .start = s,
    .stop = v,
    .destroy = v,
};

ARB_PLUGIN_DEFINE(desc)

/*
 * hello_plugin.c -- a plugin built outside the tree, against the installed
 * SDK only: cc $(pkg-config --cflags arb-sdk) -shared -fPIC. It greets on a
 * timer and counts its greetings on the bus; the CLI test loads it.
 */
#include <arb/plugin.h>
#include <stdlib.h>

typedef struct hello {
    arb_ctx *ctx;
    int64_t every_ms;
    uint64_t sent;
    int topic;
} hello;

static int hello_create(arb_ctx *ctx, void **self)
{
    hello *h = calloc(1, sizeof *h);
    if (!h)
        return ARB_ENOMEM;
    h->ctx = ctx;
    if (arb_cfg_int(ctx, "every_ms", 10, 1, 60000, &h->every_ms) != ARB_OK) {
        free(h);
        return ARB_EINVAL;
    }
    h->topic = arb_topic(ctx, "hello");
    *self = h;
    return ARB_OK;
}

static void hello_tick(void *user)
{
    hello *h = user;
    h->sent++;
    arb_publish(h->ctx, h->topic, 0, &h->sent, sizeof h->sent);
    if (h->sent == 3)
        arb_info(h->ctx, "hello from outside the tree, 3 greetings sent");
}

static int hello_start(void *self)
{
    hello *h = self;
    return arb_timer_start(h->ctx, (uint64_t)h->every_ms * 1000000u, 1, hello_tick, h) < 0
               ? ARB_ERROR
               : ARB_OK;
}

static void hello_stop(void *self) { (void)self; }
static void hello_destroy(void *self) { free(self); }

static const char *const hello_topics[] = {"hello", NULL};
static const arb_plugin hello_desc = {
    .abi_version = ARB_ABI_VERSION,
    .size = sizeof(arb_plugin),
    .name = "hello",
    .version = "0.1.0",
    .publishes = hello_topics,
    .create = hello_create,
    .start = hello_start,
    .stop = hello_stop,
    .destroy = hello_destroy,
};

ARB_PLUGIN_DEFINE(hello_desc)

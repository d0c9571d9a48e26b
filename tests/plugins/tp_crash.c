/*
 * tp_crash.c -- a test plugin that crashes on purpose, for the host's
 * fatal-signal report (tests/integration/test_crash.c).
 *
 *   crash_in = create | start | deliver | timer | route | stop | save |
 *              restore | none        the callback that crashes
 *   crash_how = segv | abort | fpe | overflow    how (default segv)
 *
 * deliver: start() publishes one record on `crash.in`, which it subscribes
 * to; timer: a one-shot 1 ms timer; route: the admin route `crash`;
 * save/restore: a hot reload (to tp_crash_v2, another image).
 */
#include <arb/plugin.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#ifndef TP_VARIANT
#define TP_VARIANT "1.0.0"
#endif

typedef struct tp_crash {
    arb_ctx *ctx;
    const char *in, *how;
    int topic;
} tp_crash;

static volatile int zero;

/* Deep enough to overflow any thread's stack; the volatile array keeps the
 * compiler from turning it into a loop. */
static int overflow(int depth)
{
    volatile char pad[4096];
    pad[0] = (char)depth;
    if (depth < 0) /* never: the condition only hides the recursion from the compiler */
        return pad[0];
    return overflow(depth + 1) + pad[0];
}

static void maybe_crash(tp_crash *c, const char *where)
{
    if (strcmp(c->in, where))
        return;
    if (!strcmp(c->how, "abort"))
        abort();
    if (!strcmp(c->how, "fpe"))
        raise(SIGFPE);
    if (!strcmp(c->how, "overflow"))
        zero = overflow(zero);
    /* A store into the never-mapped first page: a real SIGSEGV, and not a
     * null pointer, which UBSan would report (and exit on) before the fault. */
    *(volatile int *)(uintptr_t)(16 + zero) = 1;
}

static int tc_create(arb_ctx *ctx, void **self)
{
    tp_crash *c = calloc(1, sizeof *c);
    if (!c)
        return ARB_ENOMEM;
    c->ctx = ctx;
    int rc = arb_cfg_str(ctx, "crash_in", "none", &c->in);
    rc |= arb_cfg_str(ctx, "crash_how", "segv", &c->how);
    if (rc != ARB_OK || (c->topic = arb_topic(ctx, "crash.in")) < 0) {
        free(c);
        return rc ? rc : ARB_ERROR;
    }
    *self = c;
    maybe_crash(c, "create");
    return ARB_OK;
}

static void tc_on_msg(void *user, const arb_msg *m)
{
    (void)m;
    maybe_crash(user, "deliver");
}

static void tc_on_timer(void *user) { maybe_crash(user, "timer"); }

static int tc_route(void *user, const char *method, const char *path, const char *query,
                    struct evbuffer *out)
{
    (void)method, (void)path, (void)query, (void)out;
    maybe_crash(user, "route");
    return 200;
}

static int tc_start(void *self)
{
    tp_crash *c = self;
    maybe_crash(c, "start");
    if (arb_subscribe(c->ctx, c->topic, tc_on_msg, c) < 0 ||
        arb_admin_route(c->ctx, "crash", tc_route, c) != ARB_OK)
        return ARB_ERROR;
    if (!strcmp(c->in, "deliver"))
        arb_publish(c->ctx, c->topic, 0, "x", 1);
    if (!strcmp(c->in, "timer") && arb_timer_start(c->ctx, 1000000, 0, tc_on_timer, c) < 0)
        return ARB_ERROR;
    return ARB_OK;
}

static void tc_stop(void *self) { maybe_crash(self, "stop"); }
static void tc_destroy(void *self) { free(self); }

static int tc_save(void *self, void **bytes, size_t *len)
{
    maybe_crash(self, "save");
    *bytes = NULL;
    *len = 0;
    return ARB_OK;
}

static int tc_restore(void *self, uint32_t version, const void *bytes, size_t len)
{
    (void)version, (void)bytes, (void)len;
    maybe_crash(self, "restore");
    return ARB_OK;
}

static const char *const tc_topics[] = {"crash.in", NULL};

static const arb_plugin tc_desc = {
    .abi_version = ARB_ABI_VERSION,
    .size = sizeof(arb_plugin),
    .name = "tp_crash",
    .version = TP_VARIANT,
    .state_version = 1,
    .publishes = tc_topics,
    .subscribes = tc_topics,
    .create = tc_create,
    .start = tc_start,
    .stop = tc_stop,
    .destroy = tc_destroy,
    .save = tc_save,
    .restore = tc_restore,
};

ARB_PLUGIN_DEFINE(tc_desc)

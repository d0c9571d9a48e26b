/*
 * tp_seq.c -- a test plugin for the host's own tests: it counts.
 *
 *   role = producer   a timer publishes `burst` sequence numbers every
 *                     `interval_us` on `topic` (state: the next number)
 *   role = consumer   checks what arrives on `topic` is 0,1,2,... and
 *                     republishes each number on `out_topic` (state: the next
 *                     expected number and the errors seen)
 *   role = relay      on each number n < `limit` publishes n+1 on the same
 *                     topic from inside the callback; records the deepest
 *                     callback nesting it saw (must stay 1: no recursion)
 * `positive` must be > 0 (config rejection tests), `fail_start` makes start
 * fail. Built also as variants: TP_VARIANT changes the version string,
 * TP_REFUSE_RESTORE makes restore refuse every state.
 */
#include <arb/plugin.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TP_VARIANT
#define TP_VARIANT "1.0.0"
#endif

enum { ROLE_IDLE, ROLE_PRODUCER, ROLE_CONSUMER, ROLE_RELAY };

typedef struct tp_seq {
    arb_ctx *ctx;
    int role;
    int topic, out_topic;
    int64_t burst, interval_us, limit;
    uint64_t next;   /* producer: next to send; consumer/relay: next expected */
    uint64_t errors; /* consumer: gaps or duplicates seen */
    int depth, max_depth;
    int fail_start;
} tp_seq;

static int tp_create(arb_ctx *ctx, void **self)
{
    tp_seq *s = calloc(1, sizeof *s);
    if (!s)
        return ARB_ENOMEM;
    s->ctx = ctx;
    const char *role, *topic, *out;
    int64_t positive;
    int rc = 0;
    rc |= arb_cfg_str(ctx, "role", "idle", &role);
    rc |= arb_cfg_str(ctx, "topic", "test.seq", &topic);
    rc |= arb_cfg_str(ctx, "out_topic", "test.out", &out);
    rc |= arb_cfg_int(ctx, "burst", 1, 1, 1000000, &s->burst);
    rc |= arb_cfg_int(ctx, "interval_us", 1000, 1, 60000000, &s->interval_us);
    rc |= arb_cfg_int(ctx, "limit", 1000, 0, 100000000, &s->limit);
    rc |= arb_cfg_int(ctx, "positive", 1, INT64_MIN, INT64_MAX, &positive);
    rc |= arb_cfg_bool(ctx, "fail_start", 0, &s->fail_start);
    if (rc == ARB_OK && positive <= 0)
        rc = arb_cfg_reject(ctx, "positive", "must be greater than zero, got %lld",
                            (long long)positive);
    if (rc == ARB_OK) {
        if (!strcmp(role, "producer"))
            s->role = ROLE_PRODUCER;
        else if (!strcmp(role, "consumer"))
            s->role = ROLE_CONSUMER;
        else if (!strcmp(role, "relay"))
            s->role = ROLE_RELAY;
        else if (strcmp(role, "idle"))
            rc = arb_cfg_reject(ctx, "role", "'%s': expected producer|consumer|relay|idle", role);
    }
    if (rc == ARB_OK) {
        s->topic = arb_topic(ctx, topic);
        s->out_topic = arb_topic(ctx, out);
    }
    if (rc != ARB_OK || s->topic < 0 || s->out_topic < 0) {
        free(s);
        return rc ? rc : ARB_EINVAL;
    }
    *self = s;
    return ARB_OK;
}

static void tp_tick(void *user)
{
    tp_seq *s = user;
    for (int64_t i = 0; i < s->burst; i++) {
        uint64_t n = s->next;
        if (arb_publish(s->ctx, s->topic, n, &n, sizeof n) != ARB_OK)
            return; /* queue full: the same number goes again next tick */
        s->next++;
    }
}

static void tp_on_msg(void *user, const arb_msg *m)
{
    tp_seq *s = user;
    uint64_t n;
    if (m->len != sizeof n)
        return;
    memcpy(&n, m->data, sizeof n);
    if (++s->depth > s->max_depth)
        s->max_depth = s->depth;
    if (s->role == ROLE_CONSUMER) {
        if (n != s->next)
            s->errors++;
        s->next = n + 1;
        arb_publish(s->ctx, s->out_topic, n, &n, sizeof n);
    } else if (s->role == ROLE_RELAY) {
        s->next = n + 1;
        if ((int64_t)n < s->limit) {
            uint64_t k = n + 1;
            arb_publish(s->ctx, s->topic, k, &k, sizeof k);
        }
    }
    s->depth--;
}

static int tp_state_route(void *user, const char *method, const char *path, const char *query,
                          struct evbuffer *out);

static int tp_start(void *self)
{
    tp_seq *s = self;
    if (s->fail_start) {
        arb_error(s->ctx, "fail_start is set: refusing to start");
        return ARB_ERROR;
    }
    if (s->role == ROLE_PRODUCER &&
        arb_timer_start(s->ctx, (uint64_t)s->interval_us * 1000u, 1, tp_tick, s) < 0)
        return ARB_ERROR;
    if ((s->role == ROLE_CONSUMER || s->role == ROLE_RELAY) &&
        arb_subscribe(s->ctx, s->topic, tp_on_msg, s) < 0)
        return ARB_ERROR;
    arb_admin_route(s->ctx, "state", tp_state_route, s);
    return ARB_OK;
}

static void tp_stop(void *self) { (void)self; }
static void tp_destroy(void *self) { free(self); }

static int tp_save(void *self, void **bytes, size_t *len)
{
    tp_seq *s = self;
    uint64_t *b = malloc(2 * sizeof *b);
    if (!b)
        return ARB_ENOMEM;
    b[0] = s->next;
    b[1] = s->errors;
    *bytes = b;
    *len = 2 * sizeof *b;
    return ARB_OK;
}

static int tp_restore(void *self, uint32_t version, const void *bytes, size_t len)
{
    tp_seq *s = self;
#ifdef TP_REFUSE_RESTORE
    (void)s, (void)version, (void)bytes, (void)len;
    return ARB_EREFUSED;
#else
    if (version != 1 || len != 2 * sizeof(uint64_t))
        return ARB_EREFUSED;
    uint64_t b[2];
    memcpy(b, bytes, sizeof b);
    s->next = b[0];
    s->errors = b[1];
    return ARB_OK;
#endif
}

static int tp_state_route(void *user, const char *method, const char *path, const char *query,
                          struct evbuffer *out)
{
    (void)method, (void)path, (void)query;
    tp_seq *s = user;
    char body[160];
    int n = snprintf(
        body, sizeof body, "{\"next\":%llu,\"errors\":%llu,\"max_depth\":%d,\"variant\":\"%s\"}",
        (unsigned long long)s->next, (unsigned long long)s->errors, s->max_depth, TP_VARIANT);
    evbuffer_add(out, body, (size_t)n);
    return 200;
}

static const char *const tp_topics[] = {"test.seq", NULL};

static const arb_plugin tp_desc = {
    .abi_version = ARB_ABI_VERSION,
    .size = sizeof(arb_plugin),
    .name = "tp_seq",
    .version = TP_VARIANT,
    .state_version = 1,
    .publishes = tp_topics,
    .subscribes = tp_topics,
    .create = tp_create,
    .start = tp_start,
    .stop = tp_stop,
    .destroy = tp_destroy,
    .save = tp_save,
    .restore = tp_restore,
};

ARB_PLUGIN_DEFINE(tp_desc)

/*
 * http_floor_plugin.c -- make bench's HTTP floor: the gateway's HTTP layer
 * (evhttp, set up as the gateway sets it up, with plugins/gateway/http_conn.c)
 * in arb-host, answering every request at once with the fixed body nginx
 * answers in scripts/bench-gateway.sh, and doing nothing else: no
 * authentication, no JSON, no matcher, no read model.
 *
 * What it measures is how fast the gateway could serve POST /v1/orders if
 * the order path cost nothing, on the same libraries, host and machine. The
 * gateway's req/s over this one is the share of the floor its order path
 * leaves; this one over nginx's is the most any evhttp gateway gets here.
 * A bench tool, not a service: it is not installed and has no config but
 * `listen`.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arb/plugin.h"
#include "../../plugins/gateway/http_conn.h"

/* The same bytes as the nginx baseline's `return 200 '...'`. */
static const char floor_body[] =
    "{\"order_id\":\"1\",\"status\":\"filled\",\"filled_qty\":\"0.001\",\"fills\":[]}";

typedef struct http_floor {
    arb_ctx *ctx;
    const char *listen;
    struct evhttp *http;
    gw_conns conns;
    char bound[64];
} http_floor;

static void on_request(struct evhttp_request *req, void *arg)
{
    http_floor *f = arg;
    gw_conn_wait(&f->conns, evhttp_request_get_connection(req));
    evbuffer_add_reference(evhttp_request_get_output_buffer(req), floor_body, sizeof floor_body - 1,
                           NULL, NULL);
    gw_conn_send(&f->conns, req, 200, "application/json");
}

static int floor_create(arb_ctx *ctx, void **self)
{
    http_floor *f = calloc(1, sizeof *f);
    if (!f)
        return ARB_ENOMEM;
    f->ctx = ctx;
    int rc = arb_cfg_str(ctx, "listen", "127.0.0.1:0", &f->listen);
    if (rc) {
        free(f);
        f = NULL;
    }
    *self = f;
    return rc;
}

static void floor_stop(void *self)
{
    http_floor *f = self;
    if (f->http)
        evhttp_free(f->http);
    f->http = NULL;
    gw_conns_free(&f->conns);
}

/* evhttp as gateway_plugin.c's gw_start sets it up for requests like the
 * benchmark's: the same size limits, common idle timeout and listening
 * socket. */
static int floor_start(void *self)
{
    http_floor *f = self;
    struct event_base *base = arb_event_base(f->ctx);
    if (!base || !(f->http = evhttp_new(base)))
        return ARB_ENOMEM;
    gw_conns_init(&f->conns, base);
    evhttp_set_max_body_size(f->http, 4 * 65536);
    evhttp_set_max_headers_size(f->http, 16384);
    struct timeval idle = {30, 0};
    const struct timeval *common = event_base_init_common_timeout(base, &idle);
    evhttp_set_timeout_tv(f->http, common ? common : &idle);
    evhttp_set_gencb(f->http, on_request, f);
    evutil_socket_t fd = gw_http_listen(f->listen, f->bound, sizeof f->bound);
    if (fd < 0 || !evhttp_accept_socket_with_handle(f->http, fd)) {
        arb_error(f->ctx, "cannot listen on %s: %s", f->listen, strerror(errno));
        if (fd >= 0)
            close(fd);
        floor_stop(f);
        return ARB_ERROR;
    }
    arb_info(f->ctx, "http floor listening on http://%s/", f->bound);
    return ARB_OK;
}

static void floor_destroy(void *self) { free(self); }

static const arb_plugin http_floor_plugin = {
    .abi_version = ARB_ABI_VERSION,
    .size = sizeof(arb_plugin),
    .name = "http_floor",
    .version = "1.0.0",
    .create = floor_create,
    .start = floor_start,
    .stop = floor_stop,
    .destroy = floor_destroy,
};

ARB_PLUGIN_DEFINE(http_floor_plugin)

/*
 * testhost.c -- see testhost.h. Thin glue over host.c; no behaviour of its own
 * beyond driving loop 0 from the test's thread.
 */
#include "testhost.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host.h"

struct testhost {
    arbh_host *host;
    arbh_instance *test;
    bool started;
};

static char last_error[2048];

const char *testhost_last_error(void) { return last_error; }

static const char *build_dir(void)
{
    const char *b = getenv("ARB_BUILD");
    return b && *b ? b : "build";
}

const char *testhost_plugin_path(const char *name)
{
    static _Thread_local char path[1024];
    struct stat st;
    snprintf(path, sizeof path, "%s/plugins/%s.so", build_dir(), name);
    if (stat(path, &st) == 0)
        return path;
    snprintf(path, sizeof path, "%s/tests/plugins/%s.so", build_dir(), name);
    return path;
}

testhost *testhost_new(const char *ini_text) { return testhost_new_with(ini_text, NULL, 0); }

testhost *testhost_new_with(const char *ini_text, const char *const *overrides, size_t noverrides)
{
    char dirs[2048];
    snprintf(dirs, sizeof dirs, "%s/plugins:%s/tests/plugins", build_dir(), build_dir());
    setenv("ARB_PLUGIN_DIR", dirs, 1);
    /* As arb-host does: a peer gone away is a write error, not a signal. */
    signal(SIGPIPE, SIG_IGN);
    testhost *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    last_error[0] = 0;
    t->host =
        arbh_host_new(NULL, 0, ini_text, overrides, noverrides, last_error, sizeof last_error);
    if (!t->host) {
        fprintf(stderr, "testhost: %s\n", last_error);
        free(t);
        return NULL;
    }
    t->test = arbh_host_add_pseudo(t->host, "test");
    return t;
}

int testhost_start(testhost *h)
{
    int rc = arbh_host_start(h->host, last_error, sizeof last_error);
    if (rc != ARB_OK)
        fprintf(stderr, "testhost: start: %s\n", last_error);
    h->started = rc == ARB_OK;
    return rc;
}

static void run_slice(testhost *h, int64_t ns)
{
    struct timeval tv = {(time_t)(ns / 1000000000), (suseconds_t)(ns % 1000000000 / 1000)};
    struct event_base *base = h->host->loops[0]->base;
    event_base_loopexit(base, &tv);
    event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
}

void testhost_run(testhost *h, int64_t max_ns)
{
    if (!atomic_load(&h->host->stopping))
        run_slice(h, max_ns);
}

int testhost_run_until(testhost *h, int (*done)(void *user), void *user, int64_t max_ns)
{
    int64_t deadline = arbh_mono_ns() + max_ns;
    int ok = done(user);
    while (!ok && arbh_mono_ns() < deadline && !atomic_load(&h->host->stopping)) {
        run_slice(h, 1000000);
        ok = done(user);
    }
    return ok;
}

arb_ctx *testhost_ctx(testhost *h) { return &h->test->ctx; }

int testhost_reload(testhost *h, const char *instance, const char *new_so_path, char *err, size_t n)
{
    return arbh_host_reload(h->host, instance, new_so_path, true, NULL, err, n);
}

int testhost_shut_down(testhost *h, int *code)
{
    if (code)
        *code = h->host->exit_code;
    return atomic_load(&h->host->stopping);
}

void testhost_free(testhost *h)
{
    if (!h)
        return;
    if (h->started)
        arbh_host_stop(h->host);
    arbh_host_free(h->host);
    free(h);
}

struct arbh_host *testhost_host(testhost *h) { return h->host; }

int64_t testhost_last_reload_pause_ns(testhost *h) { return h->host->last_reload_pause_ns; }

typedef struct http_call {
    int port;
    const char *request;
    char response[1 << 17];
    size_t len;
    _Atomic int done;
} http_call;

static void *http_thread(void *arg)
{
    http_call *c = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
        ssize_t w = write(fd, c->request, strlen(c->request));
        (void)w;
        ssize_t k;
        while ((k = read(fd, c->response + c->len, sizeof c->response - 1 - c->len)) > 0)
            c->len += (size_t)k;
    }
    c->response[c->len] = 0;
    if (fd >= 0)
        close(fd);
    atomic_store(&c->done, 1);
    return NULL;
}

static int http_done(void *user) { return atomic_load(&((http_call *)user)->done); }

const char *testhost_http(testhost *h, int port, const char *request, int64_t max_ns)
{
    static http_call c;
    memset(&c, 0, sizeof c);
    c.port = port;
    c.request = request;
    pthread_t th;
    if (pthread_create(&th, NULL, http_thread, &c) != 0)
        return NULL;
    int ok = testhost_run_until(h, http_done, &c, max_ns);
    pthread_join(th, NULL); /* the read ends when the server closes (HTTP/1.0) */
    return ok ? c.response : NULL;
}

rd_kafka_mock_cluster_t *testhost_mock_new(int brokers, char *bootstrap, size_t n)
{
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "log_level", "3", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    rd_kafka_mock_cluster_t *mock = rk ? rd_kafka_mock_cluster_new(rk, brokers) : NULL;
    if (!mock) {
        fprintf(stderr, "testhost: no mock cluster: %s\n", rk ? "mock_cluster_new failed" : err);
        if (rk)
            rd_kafka_destroy(rk);
        return NULL;
    }
    snprintf(bootstrap, n, "%s", rd_kafka_mock_cluster_bootstraps(mock));
    return mock;
}

void testhost_mock_free(rd_kafka_mock_cluster_t *mock)
{
    if (!mock)
        return;
    rd_kafka_t *rk = rd_kafka_mock_cluster_handle(mock);
    rd_kafka_mock_cluster_destroy(mock);
    rd_kafka_destroy(rk);
}

/*
 * testhost.h -- the real host, embedded in a test process.
 *
 * A test builds a host from INI text, starts it, and drives loop 0 (the main
 * loop) from the test's own thread; instances placed on other loops run on
 * their worker threads as in arb-host. The test gets its own arb_ctx (an
 * instance named "test" on loop 0 with no plugin behind it) to publish,
 * subscribe and start timers exactly as a plugin would.
 * `load = NAME.so` resolves in $ARB_BUILD/plugins and $ARB_BUILD/tests/plugins.
 */
#ifndef TESTHOST_H
#define TESTHOST_H

#include <arb/plugin.h>
#include <stddef.h>
#include <stdint.h>

typedef struct testhost testhost;

/* NULL after printing the error (file:line) to stderr; the error text is also
 * available through testhost_last_error() for tests of bad configs. */
testhost *testhost_new(const char *ini_text);
/* With -s style overrides ("clock.speed=2"): the one way to replace a key
 * the text already sets (a key set twice in the text is refused). */
testhost *testhost_new_with(const char *ini_text, const char *const *overrides, size_t noverrides);
const char *testhost_last_error(void);
int testhost_start(testhost *h);
/* Runs the main loop for max_ns (returns early if the host was shut down). */
void testhost_run(testhost *h, int64_t max_ns);
/* Runs until done(user) returns non-zero (checked every millisecond) or
 * max_ns passes; returns done's last answer. */
int testhost_run_until(testhost *h, int (*done)(void *user), void *user, int64_t max_ns);
arb_ctx *testhost_ctx(testhost *h);
/* Hot reload, forced: even the running image is reloaded (save, restore,
 * swap), since tests reload to exercise exactly that. */
int testhost_reload(testhost *h, const char *instance, const char *new_so_path, char *err,
                    size_t n);
/* 1 once a plugin called arb_shutdown(); *code gets its exit code. */
int testhost_shut_down(testhost *h, int *code);
/* Path of a built plugin: $ARB_BUILD/plugins/NAME.so or tests/plugins/NAME.so. */
const char *testhost_plugin_path(const char *name);
/* Sends one raw HTTP request to 127.0.0.1:port from a helper thread while
 * running the main loop (whose admin endpoint or plugin may be answering),
 * and returns the whole response, status line and headers included, in a
 * buffer valid until the next call. NULL if no answer within max_ns. */
const char *testhost_http(testhost *h, int port, const char *request, int64_t max_ns);
/* How long the last reload held its instance's loop (the pause), in ns. */
int64_t testhost_last_reload_pause_ns(testhost *h);
/* Stops everything (reverse order, queues drained) and frees. */
void testhost_free(testhost *h);
/* librdkafka's mock cluster in this process (real Kafka protocol on loopback
 * ports): `brokers` brokers, its bootstrap list copied to `bootstrap`. NULL
 * after printing why. Free with testhost_mock_free(). */
struct rd_kafka_mock_cluster_s;
struct rd_kafka_mock_cluster_s *testhost_mock_new(int brokers, char *bootstrap, size_t n);
void testhost_mock_free(struct rd_kafka_mock_cluster_s *mock);
/* The underlying host, for white-box tests of host/ itself. */
struct arbh_host *testhost_host(testhost *h);

#endif

/*
 * test_kafka_devbroker.c -- arb-devbroker as other processes use it: it
 * prints and writes its bootstrap list, serves the bus topics over real TCP,
 * takes fault commands on its FIFO, binds fixed ports with --port-base, and a
 * consumer killed with SIGKILL in another process is resumed by the next one
 * at the first record it had not done.
 *
 * The killed consumer is this binary run again as
 * `test_kafka_devbroker --child-consume BOOTSTRAP` (an exec, not a bare fork:
 * librdkafka's threads do not survive fork).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arb/wire.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "kafka.h"

extern char **environ;

static const char *B;
static char self_path[4096];
static char tmpdir[256];

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- a running arb-devbroker ---- */

typedef struct devbroker {
    pid_t pid;
    int out; /* its stdout */
    char buf[8192];
    size_t len;
    char bootstrap[512];
    char fifo[512];
    char file[512];
} devbroker;

/* Next line of its stdout within ms, or NULL. */
static const char *read_line(devbroker *d, int ms)
{
    static char line[1024];
    int64_t end = now_ms() + ms;
    for (;;) {
        char *nl = memchr(d->buf, '\n', d->len);
        if (nl) {
            size_t n = (size_t)(nl - d->buf);
            snprintf(line, sizeof line, "%.*s", (int)n, d->buf);
            memmove(d->buf, nl + 1, d->len - n - 1);
            d->len -= n + 1;
            return line;
        }
        int left = (int)(end - now_ms());
        if (left <= 0)
            return NULL;
        struct pollfd p = {d->out, POLLIN, 0};
        if (poll(&p, 1, left) <= 0)
            continue;
        ssize_t r = read(d->out, d->buf + d->len, sizeof d->buf - 1 - d->len);
        if (r <= 0)
            return NULL;
        d->len += (size_t)r;
    }
}

static pid_t spawn(const char *const *argv, int *out_fd, int *err_fd)
{
    int out[2], err[2];
    assert_int_equal(pipe(out), 0);
    assert_int_equal(pipe(err), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    posix_spawn_file_actions_addclose(&fa, err[0]);
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, argv[0], &fa, NULL, (char **)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    close(err[1]);
    *out_fd = out[0];
    if (err_fd)
        *err_fd = err[0];
    else
        close(err[0]);
    return pid;
}

static void devbroker_start(devbroker *d, const char *extra_arg, const char *extra_val)
{
    memset(d, 0, sizeof *d);
    static int n;
    snprintf(d->fifo, sizeof d->fifo, "%s/ctl%d", tmpdir, n);
    snprintf(d->file, sizeof d->file, "%s/bootstrap%d", tmpdir, n++);
    char bin[512];
    snprintf(bin, sizeof bin, "%s/arb-devbroker", B);
    const char *argv[16] = {bin,
                            "--brokers",
                            "3",
                            "--partitions",
                            "2",
                            "--topics",
                            "t_kill,t_extra",
                            "--bootstrap-file",
                            d->file,
                            "--control-fifo",
                            d->fifo};
    int argc = 11;
    if (extra_arg) {
        argv[argc++] = extra_arg;
        argv[argc++] = extra_val;
    }
    argv[argc] = NULL;
    d->pid = spawn(argv, &d->out, NULL);
    const char *l = read_line(d, 10000);
    assert_non_null(l);
    assert_true(!strncmp(l, "bootstrap=", 10));
    snprintf(d->bootstrap, sizeof d->bootstrap, "%s", l + 10);
}

/* Sends a command through the FIFO and returns its answer line. */
static const char *command(devbroker *d, const char *cmd)
{
    int fd = open(d->fifo, O_WRONLY | O_NONBLOCK);
    assert_true(fd >= 0);
    char line[512];
    int n = snprintf(line, sizeof line, "%s\n", cmd);
    assert_int_equal(write(fd, line, (size_t)n), n);
    close(fd);
    return read_line(d, 5000);
}

static void devbroker_stop(devbroker *d)
{
    kill(d->pid, SIGTERM);
    int st;
    assert_int_equal(waitpid(d->pid, &st, 0), d->pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(d->out);
    /* It removes its bootstrap file on the way out. */
    assert_int_equal(access(d->file, F_OK), -1);
}

/* ---- a fake host around the transport ---- */

typedef struct sink {
    uint64_t ids[256];
    void *tokens[256];
    void (*done[256])(void *);
    size_t n;
    size_t done_upto; /* records below this index are marked done on arrival */
} sink;

static int on_record(void *user, const char *topic, int32_t partition, int64_t offset, uint64_t key,
                     const void *data, size_t len, void (*done)(void *), void *token)
{
    (void)topic, (void)partition, (void)offset;
    (void)key;
    sink *s = user;
    arb_trade t = {0};
    if (arb_trade_decode(data, len, &t) != ARB_OK || s->n == 256)
        abort();
    s->ids[s->n] = t.trade_id;
    s->tokens[s->n] = token;
    s->done[s->n] = done;
    if (s->n < s->done_upto)
        done(token);
    s->n++;
    return ARB_OK;
}

static arbh_kafka *kafka_new(const char *bootstrap, const char *extra)
{
    char ini[2048];
    snprintf(ini, sizeof ini,
             "[bus]\nbrokers = %s\n%s\n"
             "[kafka.consumer]\nheartbeat.interval.ms = 100\nsession.timeout.ms = 4000\n",
             bootstrap, extra);
    arbh_config cfg;
    assert_int_equal(arbh_config_load_string(&cfg, "test.ini", ini, NULL, 0), 0);
    arbh_kafka *k = NULL;
    char err[512] = "";
    int rc = arbh_kafka_new(&cfg, "test", &k, err, sizeof err);
    if (rc)
        fprintf(stderr, "arbh_kafka_new: %s\n", err);
    assert_int_equal(rc, ARB_OK);
    arbh_config_free(&cfg);
    return k;
}

static void produce_trades(arbh_kafka *k, const char *topic, uint64_t first, int n)
{
    for (int i = 0; i < n; i++) {
        arb_trade t = {0};
        arb_fixstr_set(t.venue, ARB_VENUE_LEN, "XA");
        arb_fixstr_set(t.symbol, ARB_SYMBOL_LEN, "BTCUSD");
        t.trade_id = first + (uint64_t)i;
        t.price = 100;
        t.qty = 1;
        t.aggressor = ARB_SIDE_SELL;
        uint8_t buf[ARB_TRADE_LEN];
        uint32_t len = arb_trade_encode(&t, buf, sizeof buf);
        assert_int_equal(arbh_kafka_produce(k, topic, 42, buf, len), ARB_OK);
    }
}

static void pump_until(struct event_base *base, sink *s, size_t n, int ms)
{
    int64_t end = now_ms() + ms;
    while ((!s || s->n < n) && now_ms() < end) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        usleep(1000);
    }
}

/* Reads every record of a topic with a plain client (no group). */
static int read_all(const char *bootstrap, const char *topic, int parts, uint64_t *ids, int max)
{
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof err);
    rd_kafka_conf_set(c, "group.id", "reader", err, sizeof err);
    rd_kafka_conf_set(c, "enable.partition.eof", "true", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
    for (int p = 0; p < parts; p++)
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    int n = 0, eofs = 0;
    int64_t end = now_ms() + 10000;
    while (eofs < parts && now_ms() < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else if (!m->err && n < max) {
            arb_trade t = {0};
            assert_int_equal(arb_trade_decode(m->payload, m->len, &t), ARB_OK);
            ids[n++] = t.trade_id;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_destroy(rk);
    return n;
}

/* ---- the killed consumer (child process) ----
 * Consumes t_kill in group g-kill, marks the first 4 records done, waits
 * for the commit to go out, says "ready" and dies by SIGKILL: no stop, no
 * leave, no final commit. */
static int child_consume(const char *bootstrap)
{
    arbh_kafka *k = kafka_new(bootstrap, "kafka_topics = t_kill\ngroup = g-kill");
    struct event_base *base = event_base_new();
    sink s = {.done_upto = 4};
    arbh_kafka_want(k, "t_kill");
    arbh_kafka_start(k, base, on_record, &s);
    pump_until(base, &s, 10, 20000);
    if (s.n != 10)
        return 1;
    pump_until(base, NULL, 0, 500); /* a few commit ticks */
    printf("ready %zu\n", s.n);
    fflush(stdout);
    raise(SIGKILL);
    return 1;
}

/* ---- tests ---- */

static void devbroker_serves_the_bus_topics_and_writes_its_bootstrap_file(void **state)
{
    (void)state;
    devbroker d;
    devbroker_start(&d, NULL, NULL);
    FILE *f = fopen(d.file, "r");
    assert_non_null(f);
    char line[512] = "";
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    line[strcspn(line, "\n")] = 0;
    assert_string_equal(line, d.bootstrap);
    /* Three brokers on 127.0.0.1. */
    int commas = 0;
    for (const char *c = d.bootstrap; *c; c++)
        commas += *c == ',';
    assert_int_equal(commas, 2);
    assert_true(!strncmp(d.bootstrap, "127.0.0.1:", 10));

    /* Every bus topic and the extras exist with 2 partitions. */
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", d.bootstrap, err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    const struct rd_kafka_metadata *md;
    assert_int_equal(rd_kafka_metadata(rk, 1, NULL, &md, 5000), 0);
    static const char *const want[] = {"order_commands",   "order_events", "trade_executed",
                                       "market_data",      "system_ticks", "market_events",
                                       "service_registry", "t_kill",       "t_extra"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int found = 0;
        for (int t = 0; t < md->topic_cnt; t++)
            if (!strcmp(md->topics[t].topic, want[i])) {
                found = 1;
                assert_int_equal(md->topics[t].partition_cnt, 2);
            }
        assert_true(found);
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);

    /* And the transport round-trips through it. */
    arbh_kafka *k = kafka_new(d.bootstrap, "kafka_topics = t_extra");
    produce_trades(k, "t_extra", 1, 20);
    arbh_kafka_stop(k);
    arbh_kafka_free(k);
    uint64_t ids[64];
    assert_int_equal(read_all(d.bootstrap, "t_extra", 2, ids, 64), 20);
    for (int i = 0; i < 20; i++)
        assert_int_equal(ids[i], (uint64_t)i + 1); /* one key: one partition, in order */
    devbroker_stop(&d);
}

static void fault_commands_are_answered_and_take_effect(void **state)
{
    (void)state;
    devbroker d;
    devbroker_start(&d, NULL, NULL);
    assert_string_equal(command(&d, "errors produce 4 NOT_LEADER_FOR_PARTITION"), "ok errors");
    assert_string_equal(command(&d, "errors fetch 2 6"), "ok errors");
    assert_string_equal(command(&d, "leader trade_executed 0 3"), "ok leader");
    assert_string_equal(command(&d, "down 2"), "ok down");
    assert_string_equal(command(&d, "up 2"), "ok up");
    assert_string_equal(command(&d, "rtt 1 5"), "ok rtt");
    assert_string_equal(command(&d, "create t_late 3"), "ok create");
    assert_true(!strncmp(command(&d, "down 9"), "error: no broker 9", 18));
    assert_true(!strncmp(command(&d, "errors produce 1 NO_SUCH_ERROR"), "error: usage", 12));
    assert_true(!strncmp(command(&d, "launch rockets"), "error: unknown command", 22));
    char want[600];
    snprintf(want, sizeof want, "bootstrap=%s", d.bootstrap);
    assert_string_equal(command(&d, "bootstrap"), want);

    /* The leader moved. */
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", d.bootstrap, err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, "trade_executed", NULL);
    const struct rd_kafka_metadata *md;
    assert_int_equal(rd_kafka_metadata(rk, 0, rkt, &md, 5000), 0);
    assert_int_equal(md->topics[0].partitions[0].leader, 3);
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);

    /* The refused produce requests are retried: every record once. */
    arbh_kafka *k = kafka_new(d.bootstrap, "kafka_topics = t_late");
    produce_trades(k, "t_late", 100, 50);
    arbh_kafka_stop(k);
    arbh_kafka_stats st;
    arbh_kafka_get_stats(k, &st);
    assert_int_equal(st.produce_failed, 0);
    arbh_kafka_free(k);
    uint64_t ids[128];
    assert_int_equal(read_all(d.bootstrap, "t_late", 3, ids, 128), 50);
    for (int i = 0; i < 50; i++)
        assert_int_equal(ids[i], 100 + (uint64_t)i);
    devbroker_stop(&d);
}

static int free_port_base(int n)
{
    for (int base = 20000 + (int)(getpid() % 2000) * 10; base < 60000; base += 97) {
        int ok = 1;
        for (int i = 0; i < n && ok; i++) {
            int s = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in sin = {.sin_family = AF_INET,
                                      .sin_port = htons((uint16_t)(base + i)),
                                      .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
            ok = bind(s, (struct sockaddr *)&sin, sizeof sin) == 0;
            close(s);
        }
        if (ok)
            return base;
    }
    return -1;
}

static void port_base_puts_the_brokers_on_fixed_ports(void **state)
{
    (void)state;
    int base = free_port_base(3);
    assert_true(base > 0);
    char arg[16];
    snprintf(arg, sizeof arg, "%d", base);
    devbroker d;
    devbroker_start(&d, "--port-base", arg);
    char want[256];
    snprintf(want, sizeof want, "127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", base, base + 1, base + 2);
    assert_string_equal(d.bootstrap, want);

    /* A second one on the same ports refuses to start, saying why. */
    char bin[512];
    snprintf(bin, sizeof bin, "%s/arb-devbroker", B);
    const char *argv[] = {bin, "--port-base", arg, NULL};
    int out, err;
    pid_t pid = spawn(argv, &out, &err);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    char msg[512] = "";
    ssize_t n = read(err, msg, sizeof msg - 1);
    assert_true(n > 0);
    assert_non_null(strstr(msg, "in use"));
    close(out);
    close(err);
    devbroker_stop(&d);
}

static void killed_consumer_is_resumed_at_its_first_record_not_done(void **state)
{
    (void)state;
    devbroker d;
    devbroker_start(&d, NULL, NULL);
    arbh_kafka *k = kafka_new(d.bootstrap, "kafka_topics = t_kill");
    produce_trades(k, "t_kill", 0, 10);
    arbh_kafka_stop(k);
    arbh_kafka_free(k);

    const char *argv[] = {self_path, "--child-consume", d.bootstrap, NULL};
    int out;
    pid_t pid = spawn(argv, &out, NULL);
    char buf[64] = "";
    struct pollfd p = {out, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 30000), 1);
    assert_true(read(out, buf, sizeof buf - 1) > 0);
    assert_true(!strncmp(buf, "ready 10", 8));
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    close(out);

    /* The next member of the group starts at record 4: 0..3 were done and
     * committed; 4..9 were delivered but not done. */
    k = kafka_new(d.bootstrap, "kafka_topics = t_kill\ngroup = g-kill");
    struct event_base *base = event_base_new();
    sink s = {.done_upto = 256};
    arbh_kafka_want(k, "t_kill");
    assert_int_equal(arbh_kafka_start(k, base, on_record, &s), ARB_OK);
    pump_until(base, &s, 6, 30000);
    pump_until(base, NULL, 0, 300);
    assert_int_equal(s.n, 6);
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(s.ids[i], 4 + i);
    arbh_kafka_free(k);
    event_base_free(base);
    devbroker_stop(&d);
}

static void devbroker_rejects_bad_arguments(void **state)
{
    (void)state;
    char bin[512];
    snprintf(bin, sizeof bin, "%s/arb-devbroker", B);
    const char *argv[] = {bin, "--brokers", "0", NULL};
    int out, err;
    pid_t pid = spawn(argv, &out, &err);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    close(out);
    close(err);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/arb-test-devbroker-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--child-consume"))
        return child_consume(argv[2]);
    B = getenv("ARB_BUILD") ? getenv("ARB_BUILD") : "build";
    if (!realpath(argv[0], self_path))
        snprintf(self_path, sizeof self_path, "%s", argv[0]);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(devbroker_rejects_bad_arguments),
        cmocka_unit_test(devbroker_serves_the_bus_topics_and_writes_its_bootstrap_file),
        cmocka_unit_test(fault_commands_are_answered_and_take_effect),
        cmocka_unit_test(port_base_puts_the_brokers_on_fixed_ports),
        cmocka_unit_test(killed_consumer_is_resumed_at_its_first_record_not_done),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

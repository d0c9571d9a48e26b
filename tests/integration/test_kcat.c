/*
 * test_kcat.c -- the split system's records read with the Kafka tools people
 * already use: `kcat -C ... -f '%s' | arbctl decode` shows trades as JSON,
 * `arbctl decode` reports garbage and carries on, `arbctl tail` reads a
 * topic from arb-devbroker.
 *
 * This binary doubles as arbctl's Kafka commands: `test_kcat --arbctl tail
 * ...` runs arbctl_kafka_main, the code `arbctl tail|decode` dispatches to.
 * kcat is Debian's package `kcat`; without it the kcat test is skipped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arb/wire.h>
#include <fcntl.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kafka.h"

extern char **environ;

static const char *B;
static char self_path[4096];
static char tmpdir[256];
static pid_t broker_pid;
static char bootstrap[512];

#define NTRADES 12

static uint32_t trade(uint8_t *buf, uint64_t id, int64_t price, int64_t qty)
{
    arb_trade t = {0};
    arb_fixstr_set(t.venue, ARB_VENUE_LEN, "XA");
    arb_fixstr_set(t.symbol, ARB_SYMBOL_LEN, "BTCUSD");
    t.trade_id = id;
    t.price = price;
    t.qty = qty;
    t.buy_order_id = 1000 + id;
    t.sell_order_id = 2000 + id;
    t.aggressor = id % 2 ? ARB_SIDE_BUY : ARB_SIDE_SELL;
    t.ts = 1700000000000000000ll + (int64_t)id;
    t.seq = id;
    return arb_trade_encode(&t, buf, ARB_TRADE_LEN);
}

/* ---- running things ---- */

typedef struct ran {
    int status;
    char out[65536];
    char err[8192];
} ran;

/* Runs argv with `input` on stdin; collects stdout and stderr. */
static void run(const char *const *argv, const void *input, size_t in_len, size_t chunk, ran *r)
{
    int in[2], out[2], err[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    assert_int_equal(pipe(err), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    posix_spawn_file_actions_addclose(&fa, err[0]);
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, argv[0], &fa, NULL, (char **)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    /* Feed in chunks (records split across reads), then close. */
    const uint8_t *p = input;
    for (size_t off = 0; off < in_len; off += chunk) {
        size_t n = in_len - off < chunk ? in_len - off : chunk;
        assert_int_equal(write(in[1], p + off, n), (ssize_t)n);
        if (chunk < in_len)
            usleep(2000);
    }
    close(in[1]);
    size_t no = 0, ne = 0;
    struct pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    int open_fds = 2;
    while (open_fds) {
        assert_true(poll(fds, 2, 30000) > 0);
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP)))
                continue;
            char *dst = i ? r->err + ne : r->out + no;
            size_t room = i ? sizeof r->err - 1 - ne : sizeof r->out - 1 - no;
            ssize_t n = read(fds[i].fd, dst, room);
            if (n <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
            } else if (i) {
                ne += (size_t)n;
            } else {
                no += (size_t)n;
            }
        }
    }
    r->out[no] = 0;
    r->err[ne] = 0;
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* The n-th (0-based) line of s parsed as JSON. */
static json_t *line_json(const char *s, int n)
{
    for (int i = 0; i < n; i++) {
        s = strchr(s, '\n');
        assert_non_null(s);
        s++;
    }
    const char *e = strchr(s, '\n');
    assert_non_null(e);
    json_error_t err;
    json_t *j = json_loadb(s, (size_t)(e - s), 0, &err);
    if (!j)
        fprintf(stderr, "not JSON (%s): %.*s\n", err.text, (int)(e - s), s);
    assert_non_null(j);
    return j;
}

static const char *jstr(json_t *j, const char *key)
{
    const char *v = json_string_value(json_object_get(j, key));
    assert_non_null(v);
    return v;
}

/* ---- fixture: one arb-devbroker with NTRADES trades on trade_executed ---- */

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/arb-test-kcat-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    char bin[512], file[600];
    snprintf(bin, sizeof bin, "%s/arb-devbroker", B);
    snprintf(file, sizeof file, "%s/bootstrap", tmpdir);
    const char *argv[] = {bin, "--brokers",        "1",  "--partitions",
                          "2", "--bootstrap-file", file, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    if (posix_spawn(&broker_pid, bin, &fa, NULL, (char **)argv, environ))
        return -1;
    posix_spawn_file_actions_destroy(&fa);
    for (int i = 0; i < 500 && !bootstrap[0]; i++) {
        FILE *f = fopen(file, "r");
        if (f) {
            if (fgets(bootstrap, sizeof bootstrap, f))
                bootstrap[strcspn(bootstrap, "\n")] = 0;
            fclose(f);
        }
        if (!bootstrap[0])
            usleep(10000);
    }
    if (!bootstrap[0])
        return -1;

    /* The trades, all on one key (one partition, in order), with a plain
     * producer: what a matcher would have published. */
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    for (uint64_t id = 1; id <= NTRADES; id++) {
        uint8_t buf[ARB_TRADE_LEN];
        uint32_t len = trade(buf, id, 10000 + (int64_t)id * 25, 1500);
        uint8_t key[8] = {7};
        if (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("trade_executed"), RD_KAFKA_V_KEY(key, 8),
                              RD_KAFKA_V_VALUE(buf, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_END))
            return -1;
    }
    int rc = rd_kafka_flush(rk, 10000) ? -1 : 0;
    rd_kafka_destroy(rk);
    return rc;
}

static int teardown(void **state)
{
    (void)state;
    if (broker_pid > 0) {
        kill(broker_pid, SIGTERM);
        waitpid(broker_pid, NULL, 0);
    }
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *write_file(const char *name, const char *text)
{
    static char path[600];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* ---- tests ---- */

static void kcat_values_piped_into_arbctl_decode_show_the_trades(void **state)
{
    (void)state;
    if (system("command -v kcat >/dev/null 2>&1") != 0) {
        fprintf(stderr, "kcat not installed (Debian package kcat): skipped\n");
        skip();
    }
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "set -o pipefail; kcat -C -b '%s' -t trade_executed -f '%%s' -e -q | '%s' --arbctl "
             "decode",
             bootstrap, self_path);
    const char *argv[] = {"/bin/bash", "-c", cmd, NULL};
    ran r;
    run(argv, NULL, 0, 1, &r);
    if (r.status)
        fprintf(stderr, "%s", r.err);
    assert_int_equal(r.status, 0);
    assert_int_equal(count_lines(r.out), NTRADES);
    for (int i = 0; i < NTRADES; i++) {
        json_t *j = line_json(r.out, i);
        char id[32], price[32];
        snprintf(id, sizeof id, "%d", i + 1);
        snprintf(price, sizeof price, "%d", 10000 + (i + 1) * 25);
        assert_string_equal(jstr(j, "type"), "trade");
        assert_string_equal(jstr(j, "venue"), "XA");
        assert_string_equal(jstr(j, "symbol"), "BTCUSD");
        assert_string_equal(jstr(j, "trade_id"), id);
        assert_string_equal(jstr(j, "price"), price);
        assert_string_equal(jstr(j, "qty"), "1500");
        assert_string_equal(jstr(j, "aggressor"), (i + 1) % 2 ? "buy" : "sell");
        json_decref(j);
    }
}

static void decode_with_a_config_prints_exact_decimals(void **state)
{
    (void)state;
    const char *ini = write_file("inst.ini", "[instrument XA:BTCUSD]\n"
                                             "price_decimals = 2\nqty_decimals = 3\n");
    uint8_t buf[ARB_TRADE_LEN];
    uint32_t len = trade(buf, 5, 10050, 1500);
    const char *argv[] = {self_path, "--arbctl", "decode", "-c", ini, NULL};
    ran r;
    run(argv, buf, len, len, &r);
    assert_int_equal(r.status, 0);
    json_t *j = line_json(r.out, 0);
    assert_string_equal(jstr(j, "price"), "100.50");
    assert_string_equal(jstr(j, "qty"), "1.500");
    json_decref(j);
}

static void decode_reports_garbage_and_bad_records_and_carries_on(void **state)
{
    (void)state;
    uint8_t in[2048];
    size_t n = 0;
    n += trade(in + n, 1, 100, 1); /* a good record */
    size_t garbage_at = n;
    memcpy(in + n, "garbage!!", 9), n += 9; /* garbage */
    n += trade(in + n, 2, 100, 1);          /* good */
    size_t bad_at = n;
    n += trade(in + n, 3, 100, 0); /* sound header, qty 0 */
    n += trade(in + n, 4, 100, 1); /* good */
    uint8_t last[ARB_TRADE_LEN];
    trade(last, 5, 100, 1);
    size_t cut_at = n;
    memcpy(in + n, last, 40), n += 40; /* cut short */
    const char *argv[] = {self_path, "--arbctl", "decode", NULL};
    ran r;
    run(argv, in, n, 7, &r); /* 7-byte reads: every record arrives in pieces */
    assert_int_equal(r.status, 1);
    assert_int_equal(count_lines(r.out), 3);
    for (int i = 0; i < 3; i++) {
        json_t *j = line_json(r.out, i);
        char id[16];
        snprintf(id, sizeof id, "%d", i == 2 ? 4 : i + 1);
        assert_string_equal(jstr(j, "trade_id"), id);
        json_decref(j);
    }
    char want[128];
    snprintf(want, sizeof want, "bytes %zu..%zu: not a wire record", garbage_at, garbage_at + 9);
    assert_non_null(strstr(r.err, want));
    snprintf(want, sizeof want, "bytes %zu..%zu: trade price and quantity must be positive", bad_at,
             bad_at + ARB_TRADE_LEN);
    assert_non_null(strstr(r.err, want));
    snprintf(want, sizeof want, "bytes %zu..%zu: truncated record", cut_at, cut_at + 40);
    assert_non_null(strstr(r.err, want));
    assert_int_equal(count_lines(r.err), 3);
}

static void decode_of_pure_noise_prints_nothing_and_fails(void **state)
{
    (void)state;
    uint8_t noise[4096];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof noise; i++) {
        x = x * 1103515245u + 12345u;
        noise[i] = (uint8_t)(x >> 16);
    }
    const char *argv[] = {self_path, "--arbctl", "decode", NULL};
    ran r;
    run(argv, noise, sizeof noise, sizeof noise, &r);
    assert_int_equal(r.status, 1);
    assert_int_equal(count_lines(r.out), 0);
    assert_non_null(strstr(r.err, "bytes 0..4096: not a wire record"));
}

static void tail_from_the_beginning_prints_every_trade(void **state)
{
    (void)state;
    const char *argv[] = {self_path,          "--arbctl", "tail", "trade_executed", "-b", bootstrap,
                          "--from-beginning", "-e",       NULL};
    ran r;
    run(argv, NULL, 0, 1, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(count_lines(r.out), NTRADES);
    for (int i = 0; i < NTRADES; i++) {
        json_t *j = line_json(r.out, i);
        char id[16];
        snprintf(id, sizeof id, "%d", i + 1);
        assert_string_equal(jstr(j, "trade_id"), id);
        json_decref(j);
    }
}

static void tail_count_and_meta_wrap_records_with_their_position(void **state)
{
    (void)state;
    const char *argv[] = {self_path,          "--arbctl", "tail", "trade_executed", "-b", bootstrap,
                          "--from-beginning", "-n",       "3",    "--meta",         NULL};
    ran r;
    run(argv, NULL, 0, 1, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(count_lines(r.out), 3);
    json_t *j = line_json(r.out, 2);
    assert_string_equal(jstr(j, "topic"), "trade_executed");
    assert_int_equal(json_integer_value(json_object_get(j, "offset")), 2);
    assert_string_equal(jstr(j, "key"), "7");
    assert_string_equal(jstr(json_object_get(j, "record"), "trade_id"), "3");
    json_decref(j);
}

static void tail_of_an_unknown_topic_says_so(void **state)
{
    (void)state;
    const char *argv[] = {self_path, "--arbctl", "tail", "no_such_topic",
                          "-b",      bootstrap,  "-e",   NULL};
    ran r;
    run(argv, NULL, 0, 1, &r);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "no_such_topic"));
    const char *argv2[] = {self_path, "--arbctl", "tail", NULL};
    run(argv2, NULL, 0, 1, &r);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "usage: arbctl tail"));
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "--arbctl"))
        return arbctl_kafka_main(argc - 2, argv + 2);
    B = getenv("ARB_BUILD") ? getenv("ARB_BUILD") : "build";
    if (!realpath(argv[0], self_path))
        snprintf(self_path, sizeof self_path, "%s", argv[0]);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kcat_values_piped_into_arbctl_decode_show_the_trades),
        cmocka_unit_test(decode_with_a_config_prints_exact_decimals),
        cmocka_unit_test(decode_reports_garbage_and_bad_records_and_carries_on),
        cmocka_unit_test(decode_of_pure_noise_prints_nothing_and_fails),
        cmocka_unit_test(tail_from_the_beginning_prints_every_trade),
        cmocka_unit_test(tail_count_and_meta_wrap_records_with_their_position),
        cmocka_unit_test(tail_of_an_unknown_topic_says_so),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

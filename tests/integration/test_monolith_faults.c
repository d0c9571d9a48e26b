/*
 * test_monolith_faults.c -- the monolith through kill -9 and restarts, with
 * its journal: one arb-host process (clock, matcher, recorder, gateway) and
 * a client in this process that sends orders over HTTP and keeps every
 * answer it got.
 *
 * Ten cycles: start the host, send a steady flow (resting orders far from
 * each other, crossing pairs that trade, cancels of resting orders), kill
 * it with SIGKILL at a random moment; then one clean stop and a last start.
 * Then whatever was acknowledged must hold:
 *   - every order answered open and never cancelled is open in the gateway
 *     (GET) and rests in the matcher's book at its price;
 *   - every cancel answered is cancelled;
 *   - in PostgreSQL, once the recorder has caught up: every acknowledged
 *     order's events and every acknowledged trade, each exactly once and as
 *     acknowledged; no order id or trade id stands for two things.
 * And the gateway's own restarts: after a SIGHUP that changes its section
 * (a new instance) and after a restart of the host, the resting orders of
 * two accounts are listed, readable and cancellable by their owners.
 * Nothing here is retried: a failure is lost or doubled data.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "splitrig.h"
#include "free_port.h"

#define CYCLES 10
#define KEY_A "key-a-0123456789abcdef"
#define KEY_B "key-b-0123456789abcdef"
#define MAX_ACKS 200000

static char dir[64], conf[128];
static int http_port, admin_port;

static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* One request on a keep-alive connection. Returns the status (body in
 * *body, malloc'd) or -1 when the connection failed. */
static int request(int fd, const char *method, const char *path, const char *key, const char *body,
                   char **out)
{
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     method, path, key, body ? strlen(body) : 0, body ? body : "");
    if (write(fd, req, (size_t)n) != n)
        return -1;
    char buf[65536];
    size_t have = 0;
    char *end = NULL;
    while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
        ssize_t r = read(fd, buf + have, sizeof buf - 1 - have);
        if (r <= 0)
            return -1;
        have += (size_t)r;
    }
    buf[have] = 0;
    int status = atoi(buf + 9);
    const char *cl = strcasestr(buf, "content-length:");
    size_t len = cl && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
    size_t head = (size_t)(end + 4 - buf);
    char *b = malloc(len + 1);
    size_t got = have - head < len ? have - head : len;
    memcpy(b, buf + head, got);
    while (got < len) {
        ssize_t r = read(fd, b + got, len - got);
        if (r <= 0) {
            free(b);
            return -1;
        }
        got += (size_t)r;
    }
    b[len] = 0;
    *out = b;
    return status;
}

/* ---- what the client was told ---- */

typedef struct ack {
    uint64_t order_id;
    int resting;   /* answered open, a GTC far from everything */
    int cancelled; /* a cancel of it was answered cancelled */
    int64_t price_ticks;
} ack;

typedef struct trade_ack {
    uint64_t trade_id;
    char price[32], qty[32];
} trade_ack;

static ack *acks;
static size_t nacks;
static trade_ack *tacks;
static size_t ntacks;
static atomic_int stop_flow;
static unsigned price_seq; /* resting prices never repeat across cycles */

static uint64_t id_of(json_t *j, const char *k)
{
    const char *s = json_string_value(json_object_get(j, k));
    return s ? strtoull(s, NULL, 10) : 0;
}

static size_t nonfinal; /* IOC answers that were not final (flow thread only) */

static void take_order_answer(json_t *j, int resting, int64_t ticks)
{
    const char *st = json_string_value(json_object_get(j, "status"));
    if (!st || nacks == MAX_ACKS)
        return;
    acks[nacks++] = (ack){id_of(j, "order_id"), resting && !strcmp(st, "open"), 0, ticks};
    json_t *fills = json_object_get(j, "fills");
    for (size_t i = 0; i < json_array_size(fills) && ntacks < MAX_ACKS; i++) {
        json_t *f = json_array_get(fills, i);
        trade_ack *t = &tacks[ntacks++];
        t->trade_id = id_of(f, "trade_id");
        snprintf(t->price, sizeof t->price, "%s", json_string_value(json_object_get(f, "price")));
        snprintf(t->qty, sizeof t->qty, "%s", json_string_value(json_object_get(f, "qty")));
    }
}

static int send_order(int fd, const char *key, const char *side, const char *price, const char *tif,
                      int resting, int64_t ticks)
{
    char body[256], *out = NULL;
    snprintf(body, sizeof body,
             "{\"venue\":\"XA\",\"symbol\":\"BTCUSD\",\"side\":\"%s\",\"type\":\"limit\","
             "\"price\":\"%s\",\"qty\":\"0.010\",\"tif\":\"%s\"}",
             side, price, tif);
    int status = request(fd, "POST", "/v1/orders", key, body, &out);
    if (status < 0)
        return -1;
    json_t *j = json_loads(out, 0, NULL);
    if (status == 201 || status == 200)
        take_order_answer(j, resting, ticks);
    /* An IOC's answer is final: filled or cancelled, never still open. */
    const char *st = json_string_value(json_object_get(j, "status"));
    if (status == 200 && !strcmp(tif, "ioc") && st &&
        (!strcmp(st, "open") || !strcmp(st, "partially_filled")))
        nonfinal++;
    json_decref(j);
    free(out);
    return 0;
}

/* The flow: per round a resting buy at a price of its own (80.01 up to
 * 99.90, inside the instrument's 20% band, never crossed), a crossing pair
 * at 100.00 (sell rests, buy takes it) and, every third round, a cancel of
 * the last resting order. */
static void *flow(void *arg)
{
    (void)arg;
    int fd = connect_port(http_port);
    if (fd < 0)
        return NULL;
    for (unsigned round = 0; !atomic_load(&stop_flow); round++) {
        unsigned k = price_seq < 1990 ? ++price_seq : 0;
        int64_t ticks = 8000 + k;
        char px[32];
        snprintf(px, sizeof px, "%lld.%02lld", (long long)ticks / 100, (long long)ticks % 100);
        if (k && send_order(fd, KEY_A, "buy", px, "gtc", 1, ticks))
            break;
        if (send_order(fd, KEY_B, "sell", "100.00", "gtc", 0, 0) ||
            send_order(fd, KEY_A, "buy", "100.00", "ioc", 0, 0))
            break;
        if (round % 3 == 2 && nacks && acks[nacks - 3].resting) {
            char path[64], *out = NULL;
            ack *a = &acks[nacks - 3];
            snprintf(path, sizeof path, "/v1/orders/%llu", (unsigned long long)a->order_id);
            int st = request(fd, "DELETE", path, KEY_A, NULL, &out);
            if (st < 0)
                break;
            json_t *j = json_loads(out, 0, NULL);
            const char *s = json_string_value(json_object_get(j, "status"));
            if (st == 200 && s && !strcmp(s, "cancelled"))
                a->cancelled = 1;
            json_decref(j);
            free(out);
        }
    }
    close(fd);
    return NULL;
}

/* ---- the host ---- */

static void write_conf(void)
{
    char cwd[1024];
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(conf, sizeof conf, "%s/mono.ini", dir);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f,
            "include = %s/conf.d/instruments.ini\n"
            "[host]\nid = mono-fault\nadmin = 127.0.0.1:%d\nthreads = 3\nannounce_ms = 0\n"
            "[bus]\njournal = %s/journal\njournal_segment_bytes = 64K\n"
            "[plugin clock]\nload = clock.so\nmode = wall\ninterval_ms = 100\n"
            "[plugin matcher]\nload = matcher.so\nsnapshot_interval_ms = 100\n"
            "[plugin recorder]\nload = recorder.so\nthread = 2\nflush_interval_ms = 20\n"
            "[plugin gateway]\nload = gateway.so\nthread = 1\nlisten = 127.0.0.1:%d\n"
            "api_key.a = " KEY_A ":1001\napi_key.b = " KEY_B ":1002\nrate_limit = 100000\n"
            "rate_burst = 100000\n",
            cwd, admin_port, dir, http_port);
    fclose(f);
}

static pid_t start_host(int cycle)
{
    char log[128];
    snprintf(log, sizeof log, "%s/host-%d.log", dir, cycle);
    pid_t pid = rig_host(conf, log, NULL);
    /* Ready when the gateway answers and the matcher has its partition. */
    int64_t deadline = rig_mono_ns() + 30 * RIG_SEC;
    while (rig_mono_ns() < deadline) {
        siginfo_t si = {0};
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid)
            rig_die("the host exited at start; see", log);
        /* The admin endpoint answers once the host's start is complete
         * (every instance started, the journal delivering). */
        int st = -1;
        for (int k = 0; k < 2; k++) {
            int fd = connect_port(k ? http_port : admin_port);
            char *out = NULL;
            st = fd >= 0 ? request(fd, "GET", k ? "/v1/instruments" : "/healthz", KEY_A, NULL, &out)
                         : -1;
            if (fd >= 0)
                close(fd);
            free(out);
            if (st != 200)
                break;
        }
        if (st == 200)
            return pid;
        usleep(20000); /* polling an observable state, bounded by the deadline */
    }
    rig_die("the host did not become ready; see", log);
}

static int64_t book_qty_at(json_t *book, const char *side, const char *price)
{
    json_t *lv = json_object_get(book, side);
    for (size_t i = 0; i < json_array_size(lv); i++) {
        json_t *l = json_array_get(lv, i);
        if (!strcmp(json_string_value(json_object_get(l, "price")), price))
            return json_integer_value(json_object_get(l, "orders"));
    }
    return 0;
}

static int kill_children(void **state)
{
    (void)state;
    rig_stop_all();
    return 0;
}

/* The base offset of a journaled topic's oldest segment file. */
static int64_t oldest_segment(const char *topic)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/journal/%s", dir, topic);
    DIR *d = opendir(path);
    assert_non_null(d);
    int64_t oldest = INT64_MAX;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".log") && strtoll(e->d_name, NULL, 10) < oldest)
            oldest = strtoll(e->d_name, NULL, 10);
    closedir(d);
    return oldest;
}

static void acknowledged_orders_and_trades_survive_kill_9(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/arb-monofault-XXXXXX");
    assert_non_null(mkdtemp(dir));
    http_port = test_free_port();
    admin_port = test_free_port();
    write_conf();
    PGconn *admin = rig_db(getenv("PGDATABASE") ? getenv("PGDATABASE") : "postgres");
    rig_sql(admin, "DROP DATABASE IF EXISTS arb_monofault");
    rig_sql(admin, "CREATE DATABASE arb_monofault");
    PQfinish(admin);
    setenv("ARB_PG_DSN", "dbname=arb_monofault", 1);
    acks = calloc(MAX_ACKS, sizeof *acks);
    tacks = calloc(MAX_ACKS, sizeof *tacks);
    srand((unsigned)getpid());
    for (int cycle = 0; cycle <= CYCLES; cycle++) {
        pid_t pid = start_host(cycle);
        atomic_store(&stop_flow, 0);
        pthread_t t;
        pthread_create(&t, NULL, flow, NULL);
        /* A random moment under the flow: this sleep is the fault's timing,
         * not a synchronisation. */
        usleep((useconds_t)(100000 + rand() % 400000));
        int status;
        if (cycle < CYCLES) {
            status = rig_stop(pid, SIGKILL);
            assert_true(WIFSIGNALED(status));
        } else {
            atomic_store(&stop_flow, 1);
            pthread_join(t, NULL);
            status = rig_stop(pid, SIGTERM);
            assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
            continue;
        }
        atomic_store(&stop_flow, 1);
        pthread_join(t, NULL);
    }
    print_message("%zu orders and %zu trades acknowledged over %d kills\n", nacks, ntacks, CYCLES);
    assert_int_equal(nonfinal, 0);
    assert_true(nacks > 100);
    assert_true(ntacks > 10);

    /* The last start: every acknowledged resting order is there. */
    pid_t pid = start_host(CYCLES + 1);
    int fd = connect_port(http_port);
    assert_true(fd >= 0);
    int adm = connect_port(admin_port);
    char *out = NULL;
    assert_int_equal(request(adm, "GET", "/plugins/matcher/book?venue=XA&symbol=BTCUSD&depth=2048",
                             "", NULL, &out),
                     200);
    json_t *book = json_loads(out, 0, NULL);
    free(out);
    /* the journal reports itself: in health and in metrics */
    assert_int_equal(request(adm, "GET", "/healthz", "", NULL, &out), 200);
    assert_non_null(
        strstr(out, "{\"instance\":\"journal\",\"state\":\"running\",\"healthy\":true"));
    free(out);
    assert_int_equal(request(adm, "GET", "/metrics", "", NULL, &out), 200);
    assert_non_null(strstr(out, "\narb_journal_healthy 1\n"));
    assert_non_null(strstr(out, "\narb_journal_appended_total "));
    free(out);
    close(adm);
    size_t open = 0, cancelled = 0;
    for (size_t i = 0; i < nacks; i++) {
        if (!acks[i].resting)
            continue;
        char path[64];
        snprintf(path, sizeof path, "/v1/orders/%llu", (unsigned long long)acks[i].order_id);
        assert_int_equal(request(fd, "GET", path, KEY_A, NULL, &out), 200);
        json_t *j = json_loads(out, 0, NULL);
        const char *st = json_string_value(json_object_get(j, "status"));
        char px[32];
        snprintf(px, sizeof px, "%lld.%02lld", (long long)acks[i].price_ticks / 100,
                 (long long)acks[i].price_ticks % 100);
        if (acks[i].cancelled) {
            assert_string_equal(st, "cancelled");
            assert_int_equal(book_qty_at(book, "bids", px), 0);
            cancelled++;
        } else if (!strcmp(st, "open")) {
            assert_int_equal(book_qty_at(book, "bids", px), 1);
            open++;
        } else {
            /* a cancel sent as the host died and answered by nobody */
            assert_string_equal(st, "cancelled");
        }
        json_decref(j);
        free(out);
    }
    json_decref(book);
    close(fd);
    print_message("%zu resting orders back in the book, %zu cancels kept\n", open, cancelled);
    assert_true(open > 20);

    /* PostgreSQL: everything acknowledged, once, as acknowledged. */
    PGconn *db = rig_db("arb_monofault");
    char sql[512];
    int64_t deadline = rig_mono_ns() + 60 * RIG_SEC;
    size_t missing = nacks;
    while (missing && rig_mono_ns() < deadline) {
        missing = 0;
        rig_sql(db, "CREATE TEMP TABLE IF NOT EXISTS acked (order_id numeric PRIMARY KEY)");
        rig_sql(db, "TRUNCATE acked");
        for (size_t i = 0; i < nacks; i += 500) {
            char *q = malloc(64 + 30 * 500), *p = q;
            p += sprintf(p, "INSERT INTO acked VALUES ");
            for (size_t k = i; k < nacks && k < i + 500; k++)
                p += sprintf(p, "%s(%llu)", k > i ? "," : "", (unsigned long long)acks[k].order_id);
            rig_sql(db, q);
            free(q);
        }
        missing = (size_t)rig_int(db, "SELECT count(*) FROM acked a WHERE NOT EXISTS (SELECT 1 "
                                      "FROM order_events e WHERE (CASE WHEN e.order_id < 0 THEN "
                                      "e.order_id::numeric + 18446744073709551616 ELSE "
                                      "e.order_id::numeric END) = a.order_id AND e.kind IN "
                                      "('accepted','filled','partially_filled','rejected'))");
        if (missing)
            usleep(100000); /* the recorder catching up: polled, bounded */
    }
    assert_int_equal(missing, 0);
    /* one order id, one order: never two accounts, sides or prices */
    assert_int_equal(rig_int(db, "SELECT count(*) FROM (SELECT order_id FROM order_events GROUP "
                                 "BY order_id HAVING count(DISTINCT (account, side, price, qty)) "
                                 "> 1) x"),
                     0);
    /* each order accepted at most once */
    assert_int_equal(rig_int(db, "SELECT count(*) FROM (SELECT order_id FROM order_events WHERE "
                                 "kind = 'accepted' GROUP BY order_id HAVING count(*) > 1) x"),
                     0);
    for (size_t i = 0; i < ntacks; i++) {
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM trades WHERE trade_id = %lld AND "
                 "arb_decimal(price, price_decimals) = %s AND arb_decimal(qty, qty_decimals) = %s",
                 (long long)tacks[i].trade_id, tacks[i].price, tacks[i].qty);
        long long n = rig_int(db, sql);
        if (n != 1)
            fail_msg("trade %llu (%s x %s), acknowledged, is in PostgreSQL %lld times",
                     (unsigned long long)tacks[i].trade_id, tacks[i].price, tacks[i].qty, n);
    }
    /* every trade's two orders are orders the matcher accepted */
    assert_int_equal(
        rig_int(db, "SELECT count(*) FROM trades t WHERE NOT EXISTS (SELECT 1 FROM order_events "
                    "e WHERE e.order_id = t.buy_order_id) OR NOT EXISTS (SELECT 1 FROM "
                    "order_events e WHERE e.order_id = t.sell_order_id)"),
        0);
    PQfinish(db);
    int status = rig_stop(pid, SIGTERM);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* All of that held with the commands' oldest segments gone: the
     * matcher's snapshots covered them (64K segments, arb_trim). */
    int64_t oldest = oldest_segment("order_commands");
    print_message("order_commands starts at offset %lld in the journal\n", (long long)oldest);
    assert_true(oldest > 0);
    free(acks);
    free(tacks);
    rig_clean_dir(dir);
}

/* ---- the gateway restarted with resting orders of two accounts ---- */

static uint64_t place(int fd, const char *key, const char *price)
{
    char body[256], *out = NULL;
    snprintf(body, sizeof body,
             "{\"venue\":\"XB\",\"symbol\":\"BTCUSD\",\"side\":\"buy\",\"type\":\"limit\","
             "\"price\":\"%s\",\"qty\":\"0.010\",\"tif\":\"gtc\"}",
             price);
    int code = request(fd, "POST", "/v1/orders", key, body, &out);
    assert_true(code == 200 || code == 201);
    json_t *j = json_loads(out, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "open");
    uint64_t id = id_of(j, "order_id");
    json_decref(j);
    free(out);
    return id;
}

static const char *status_of(int fd, const char *key, uint64_t id, const char *method)
{
    static char st[32];
    char path[64], *out = NULL;
    snprintf(path, sizeof path, "/v1/orders/%llu", (unsigned long long)id);
    int code = request(fd, method, path, key, NULL, &out);
    json_t *j = json_loads(out, 0, NULL);
    const char *s = json_string_value(json_object_get(j, "status"));
    snprintf(st, sizeof st, "%d %s", code, s ? s : "-");
    json_decref(j);
    free(out);
    return st;
}

static size_t open_listed(int fd, const char *key, const uint64_t *ids, size_t n)
{
    char *out = NULL;
    assert_int_equal(request(fd, "GET", "/v1/orders?status=open", key, NULL, &out), 200);
    json_t *j = json_loads(out, 0, NULL);
    json_t *list = json_object_get(j, "orders");
    size_t found = 0;
    for (size_t i = 0; i < json_array_size(list); i++)
        for (size_t k = 0; k < n; k++)
            found += id_of(json_array_get(list, i), "order_id") == ids[k];
    json_decref(j);
    free(out);
    return found;
}

/* The owners see, read and cancel their orders; the other key sees none. */
static void check_orders(uint64_t *a, uint64_t *b, int step)
{
    int fd = connect_port(http_port);
    assert_true(fd >= 0);
    assert_int_equal(open_listed(fd, KEY_A, a + step, 3 - (size_t)step), 3 - (size_t)step);
    assert_int_equal(open_listed(fd, KEY_B, b + step, 3 - (size_t)step), 3 - (size_t)step);
    assert_int_equal(open_listed(fd, KEY_A, b + step, 3 - (size_t)step), 0);
    for (int i = step; i < 3; i++) {
        assert_string_equal(status_of(fd, KEY_A, a[i], "GET"), "200 open");
        assert_string_equal(status_of(fd, KEY_B, b[i], "GET"), "200 open");
    }
    assert_string_equal(status_of(fd, KEY_A, a[step], "DELETE"), "200 cancelled");
    assert_string_equal(status_of(fd, KEY_B, b[step], "DELETE"), "200 cancelled");
    close(fd);
}

static void gateway_restarts_keep_two_accounts_orders(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/arb-monogw-XXXXXX");
    assert_non_null(mkdtemp(dir));
    http_port = test_free_port();
    admin_port = test_free_port();
    PGconn *admin = rig_db(getenv("PGDATABASE") ? getenv("PGDATABASE") : "postgres");
    rig_sql(admin, "DROP DATABASE IF EXISTS arb_monogw");
    rig_sql(admin, "CREATE DATABASE arb_monogw");
    PQfinish(admin);
    setenv("ARB_PG_DSN", "dbname=arb_monogw", 1);
    write_conf();
    pid_t pid = start_host(0);
    int fd = connect_port(http_port);
    uint64_t a[3], b[3];
    const char *pa[] = {"90.01", "90.02", "90.03"}, *pb[] = {"91.01", "91.02", "91.03"};
    for (int i = 0; i < 3; i++) {
        a[i] = place(fd, KEY_A, pa[i]);
        b[i] = place(fd, KEY_B, pb[i]);
    }
    close(fd);

    /* A change in the gateway's section: SIGHUP makes a new instance. */
    FILE *f = fopen(conf, "a");
    assert_non_null(f);
    fputs("max_streams = 100\n", f);
    fclose(f);
    kill(pid, SIGHUP);
    int64_t deadline = rig_mono_ns() + 20 * RIG_SEC;
    int changed = 0;
    while (!changed && rig_mono_ns() < deadline) {
        int adm = connect_port(admin_port);
        char *out = NULL;
        if (adm >= 0 && request(adm, "GET", "/reload-config", "", NULL, &out) == 200) {
            json_t *j = json_loads(out, 0, NULL);
            json_t *r = json_object_get(j, "reconfigure");
            changed = json_integer_value(json_object_get(r, "changed")) == 1 &&
                      json_is_true(json_object_get(r, "ok"));
            json_decref(j);
        }
        free(out);
        if (adm >= 0)
            close(adm);
        if (!changed)
            usleep(20000); /* polling the reconfiguration's answer, bounded */
    }
    assert_true(changed);
    check_orders(a, b, 0);

    /* The whole host, stopped and started again. */
    int st = rig_stop(pid, SIGTERM);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    pid = start_host(1);
    check_orders(a, b, 1);
    st = rig_stop(pid, SIGTERM);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    rig_clean_dir(dir);
}

int main(void)
{
    rig_with_pg();
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(acknowledged_orders_and_trades_survive_kill_9, kill_children),
        cmocka_unit_test_teardown(gateway_restarts_keep_two_accounts_orders, kill_children),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * splitrig.c -- processes, PostgreSQL and the gateway side for split-system
 * tests and benchmarks (see splitrig.h).
 */
#include "splitrig.h"
#include "free_port.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "arb/wire.h"

extern char **environ;

static const char *const venues[4] = {"XA", "XB", "XA", "XB"};
static const char *const symbols[4] = {"BTCUSD", "BTCUSD", "ETHUSD", "ETHUSD"};
static const int64_t prices[4] = {10000, 10000, 5000, 5000};

void rig_die(const char *what, const char *detail)
{
    fprintf(stderr, "splitrig: %s: %s\n", what, detail ? detail : "");
    exit(1);
}

int64_t rig_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * RIG_SEC + ts.tv_nsec;
}

static const char *build_dir(void) { return getenv("ARB_BUILD") ? getenv("ARB_BUILD") : "build"; }

void rig_with_pg(void)
{
    if (getenv("ARB_WITH_PG"))
        return;
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0)
        rig_die("readlink", strerror(errno));
    self[len] = 0;
    char *args[] = {"scripts/with-pg.sh", self, NULL};
    execv(args[0], args);
    rig_die("cannot run scripts/with-pg.sh (run from the repo root)", strerror(errno));
}

static void quiet(void *arg, const char *msg) { (void)arg, (void)msg; }

PGconn *rig_db(const char *dbname)
{
    char dsn[128];
    snprintf(dsn, sizeof dsn, "dbname=%s", dbname);
    PGconn *c = PQconnectdb(dsn);
    if (PQstatus(c) != CONNECTION_OK)
        rig_die("connect", PQerrorMessage(c));
    PQsetNoticeProcessor(c, quiet, NULL);
    return c;
}

void rig_sql(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        rig_die(sql, PQerrorMessage(c));
    PQclear(r);
}

long long rig_int(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    long long n =
        PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 ? atoll(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    return n;
}

long long rig_trades(PGconn *c) { return rig_int(c, "SELECT count(*) FROM trades"); }

static pid_t started[64];
static size_t n_started;

pid_t rig_spawn(const char *const argv[], const char *log)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc)
        rig_die(argv[0], strerror(rc));
    if (n_started < sizeof started / sizeof *started)
        started[n_started++] = pid;
    return pid;
}

int rig_stop(pid_t pid, int sig)
{
    int status = 0;
    if (pid <= 0)
        return 0;
    kill(pid, sig);
    waitpid(pid, &status, 0);
    for (size_t i = 0; i < n_started; i++)
        if (started[i] == pid)
            started[i] = started[--n_started];
    return status;
}

int rig_wait_exit(pid_t pid, int64_t deadline)
{
    int status = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 || rig_mono_ns() >= deadline)
            return -1;
        usleep(20000);
    }
    for (size_t i = 0; i < n_started; i++)
        if (started[i] == pid)
            started[i] = started[--n_started];
    return status;
}

void rig_stop_all(void)
{
    while (n_started)
        rig_stop(started[n_started - 1], SIGKILL);
}

pid_t rig_devbroker(const char *dir, int partitions, const char *const extra[])
{
    char path[512], exe[512], log[512], parts[16];
    snprintf(path, sizeof path, "%s/brokers", dir);
    snprintf(exe, sizeof exe, "%s/arb-devbroker", build_dir());
    snprintf(log, sizeof log, "%s/devbroker.log", dir);
    snprintf(parts, sizeof parts, "%d", partitions);
    unlink(path);
    const char *argv[16] = {exe, "--partitions", parts, "--bootstrap-file", path};
    size_t n = 5;
    for (size_t i = 0; extra && extra[i] && n < 15; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t pid = rig_spawn(argv, log);
    for (int i = 0; i < 200; i++) {
        char line[512] = "";
        FILE *f = fopen(path, "r");
        if (f) {
            int ok = fgets(line, sizeof line, f) && strchr(line, ':');
            fclose(f);
            if (ok) {
                line[strcspn(line, "\n")] = 0;
                setenv("ARB_BROKERS", line + (strncmp(line, "bootstrap=", 10) ? 0 : 10), 1);
                return pid;
            }
        }
        usleep(50000);
    }
    rig_die("arb-devbroker", "no bootstrap list");
}

pid_t rig_host(const char *conf, const char *log, const char *const sets[])
{
    char exe[512];
    snprintf(exe, sizeof exe, "%s/arb-host", build_dir());
    const char *argv[32] = {exe, "-c", conf};
    size_t n = 3;
    for (size_t i = 0; sets && sets[i] && n < 29; i++) {
        argv[n++] = "-s";
        argv[n++] = sets[i];
    }
    argv[n] = NULL;
    return rig_spawn(argv, log);
}

int rig_free_port(void)
{
    int port = test_free_port();
    if (port < 0)
        rig_die("free port", "none found below the ephemeral range");
    return port;
}

int rig_http(int port, const char *method, const char *path, const char *key, const char *json,
             char *body, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {10, 0};
    body[0] = 0;
    if (fd < 0)
        return 0;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return 0;
    }
    char req[2048], auth[256] = "";
    if (key)
        snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", key);
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n%sContent-Type: "
                     "application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     method, path, auth, json ? strlen(json) : 0, json ? json : "");
    if (n < 0 || (size_t)n >= sizeof req || write(fd, req, (size_t)n) != n) {
        close(fd);
        return 0;
    }
    /* The whole answer (HTTP/1.0: the server closes), headers then body. */
    size_t len = 0, all = 65536;
    char *buf = malloc(all);
    ssize_t r;
    while (buf && (r = read(fd, buf + len, all - 1 - len)) > 0) {
        len += (size_t)r;
        if (len == all - 1) {
            char *grown = realloc(buf, all * 2);
            if (!grown)
                break;
            buf = grown;
            all *= 2;
        }
    }
    close(fd);
    if (!buf)
        return 0;
    buf[len] = 0;
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        status = 0;
    const char *b = strstr(buf, "\r\n\r\n");
    snprintf(body, cap, "%s", b ? b + 4 : "");
    free(buf);
    return status;
}

int rig_http_get(int port, const char *path, char *body, size_t cap)
{
    return rig_http(port, "GET", path, NULL, NULL, body, cap);
}

long long rig_metric(int port, const char *name)
{
    size_t cap = 1 << 20;
    char *body = malloc(cap);
    if (!body || rig_http_get(port, "/metrics", body, cap) != 200) {
        free(body);
        return -1;
    }
    long long v = -1;
    size_t nl = strlen(name);
    for (const char *p = body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, name, nl) && p[nl] == ' ') {
            v = strtoll(p + nl + 1, NULL, 10);
            break;
        }
    free(body);
    return v;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) == 0)
        return 0;
    fprintf(stderr, "cannot remove %s: %s\n", path, strerror(errno));
    return -1;
}

int rig_clean_dir(const char *dir)
{
    if (getenv("ARB_TEST_KEEP"))
        return 0;
    return nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS) ? -1 : 0;
}

static void on_trade(void *user, const arb_msg *m)
{
    rig_side *s = user;
    arb_trade t;
    if (arb_trade_decode(m->data, m->len, &t) != ARB_OK)
        return;
    s->trades++;
    uint64_t idx = t.sell_order_id - s->id_base;
    if (s->measuring && idx < s->norders && s->sent_ns[idx])
        s->lat[s->nlat++] = rig_mono_ns() - s->sent_ns[idx];
}

void rig_side_init(rig_side *s, testhost *h, size_t norders, uint64_t id_base)
{
    memset(s, 0, sizeof *s);
    s->h = h;
    s->ctx = testhost_ctx(h);
    s->cmd_topic = arb_topic(s->ctx, "order_commands");
    s->norders = norders;
    s->id_base = id_base;
    s->sent_ns = calloc(norders, sizeof *s->sent_ns);
    s->lat = calloc(norders, sizeof *s->lat);
    if (!s->sent_ns || !s->lat)
        rig_die("calloc", "out of memory");
    arb_subscribe(s->ctx, ARB_TOPIC_TRADE_EXECUTED, on_trade, s);
}

void rig_side_free(rig_side *s)
{
    free(s->sent_ns);
    free(s->lat);
}

void rig_publish(rig_side *s, size_t i)
{
    size_t book = (i / 2) % 4;
    arb_order_cmd c = {0};
    c.action = ARB_CMD_NEW;
    c.side = (i & 1) ? ARB_SIDE_SELL : ARB_SIDE_BUY;
    c.type = ARB_ORD_LIMIT;
    c.tif = ARB_TIF_GTC;
    memcpy(c.venue, venues[book], strlen(venues[book]));
    memcpy(c.symbol, symbols[book], strlen(symbols[book]));
    c.order_id = s->id_base + i;
    c.account = (i & 1) ? 1002 : 1001;
    c.price = prices[book];
    c.qty = 10;
    uint8_t buf[ARB_ORDER_CMD_LEN];
    uint32_t len = arb_order_cmd_encode(&c, buf, sizeof buf);
    s->sent_ns[i] = rig_mono_ns();
    while (arb_publish(s->ctx, s->cmd_topic, arb_instrument_key(c.venue, c.symbol), buf, len) ==
           ARB_EFULL)
        testhost_run(s->h, RIG_MS / 4);
}

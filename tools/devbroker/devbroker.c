/*
 * devbroker.c -- arb-devbroker: a Kafka cluster for development and tests.
 *
 * Starts librdkafka's mock cluster (rdkafka_mock.h: the real Kafka protocol
 * on real TCP ports of 127.0.0.1, everything in memory), creates the bus's
 * topics, prints `bootstrap=HOST:PORT,...` on stdout (and writes it to a
 * file), and serves until SIGINT or SIGTERM. Commands on stdin or a FIFO
 * inject faults for tests running in other processes.
 *
 * It is NOT a Kafka broker to run a system on: production sets
 * `[bus] brokers = ...` to a real cluster. Limits of the mock (librdkafka
 * 2.0): a partition keeps about 5 MiB or 100k message sets and silently
 * evicts older ones; the first join of a consumer group waits about 3 s; no
 * compaction, no retention by time; transactions are not really enforced, and
 * duplicates of an idempotent (non-transactional) producer are not dropped
 * nor are its sequence numbers checked, so after an injected Produce error a
 * later batch can succeed, and librdkafka then counts the failed earlier one
 * as written: it is lost without a delivery error (fault tests keep one
 * request in flight per connection); a broker set down does not move partition leaders (`leader` does); all
 * data is lost when it exits.
 *
 *   arb-devbroker [--brokers N] [--partitions P] [--topics a,b,...]
 *                 [--bootstrap-file PATH] [--port-base PORT]
 *                 [--control-fifo PATH]
 *
 * Commands (one per line; answers `ok ...` or `error: ...` on stdout):
 *   down BROKER | up BROKER            broker id 1..N stops/starts serving
 *   leader TOPIC PARTITION BROKER      move a partition's leader
 *   errors API COUNT CODE              the next COUNT requests of API fail
 *                                      (API: produce fetch listoffsets metadata
 *                                      commit offsetfetch findcoordinator join
 *                                      heartbeat leave sync initpid or a number;
 *                                      CODE: a name such as REQUEST_TIMED_OUT
 *                                      or a number)
 *   rtt BROKER MS                      add latency to a broker's answers
 *   create TOPIC PARTITIONS            another topic
 *   bootstrap                          print the bootstrap list again
 */
#include <dlfcn.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const bus_topics[] = {
    "order_commands",
    "order_events",
    "trade_executed",
    "market_data",
    "system_ticks",
    "market_events",
    "service_registry",
    "matcher_snapshots",
    "gateway_snapshots",
    "arb_runs",
    NULL,
};

/* ---- fixed ports ----
 * librdkafka 2.0's mock brokers listen on a port the kernel picks. For
 * --port-base this program defines bind(): while `fixed_port` is set (only
 * around rd_kafka_mock_cluster_new, on this thread), a bind of an IPv4
 * socket to port 0 gets the next fixed port instead. Every other bind goes
 * to the C library's unchanged. */
static int fixed_port;

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    static int (*real_bind)(int, const struct sockaddr *, socklen_t);
    if (!real_bind)
        *(void **)&real_bind = dlsym(RTLD_NEXT, "bind");
    if (fixed_port && addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in sin;
        memcpy(&sin, addr, sizeof sin);
        if (sin.sin_port == 0) {
            sin.sin_port = htons((uint16_t)fixed_port++);
            return real_bind(fd, (const struct sockaddr *)&sin, sizeof sin);
        }
    }
    return real_bind(fd, addr, len);
}

/* Refuses early, with a clear message, ports another program holds (the
 * mock cluster would abort on a failed bind). */
static int port_free(int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = bind(s, (struct sockaddr *)&sin, sizeof sin) == 0;
    close(s);
    return ok;
}

/* ---- the broker ---- */

typedef struct devbroker {
    rd_kafka_t *rk;    /* the handle the mock cluster hangs off */
    rd_kafka_t *waker; /* a client that keeps the mock's thread awake */
    rd_kafka_mock_cluster_t *mc;
    int nbrokers;
    int partitions;
    char bootstrap[1024];
    const char *bootstrap_file;
    struct event_base *base;
    struct event *stdin_ev, *fifo_ev, *sig_ev[2];
    int fifo_fd;
    char line[2][1024]; /* partial command lines: stdin, fifo */
    size_t line_len[2];
} devbroker;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static int api_key(const char *s)
{
    static const struct {
        const char *name;
        int key;
    } apis[] = {{"produce", 0},          {"fetch", 1},  {"listoffsets", 2},
                {"metadata", 3},         {"commit", 8}, {"offsetfetch", 9},
                {"findcoordinator", 10}, {"join", 11},  {"heartbeat", 12},
                {"leave", 13},           {"sync", 14},  {"createtopics", 19},
                {"initpid", 22}};
    for (size_t i = 0; i < sizeof apis / sizeof apis[0]; i++)
        if (!strcmp(s, apis[i].name))
            return apis[i].key;
    char *end;
    long v = strtol(s, &end, 10);
    return *s && !*end && v >= 0 && v < 100 ? (int)v : -1;
}

static int error_code(const char *s, rd_kafka_resp_err_t *out)
{
    const struct rd_kafka_err_desc *d;
    size_t n;
    rd_kafka_get_err_descs(&d, &n);
    for (size_t i = 0; i < n; i++)
        if (d[i].name && !strcasecmp(d[i].name, s)) {
            *out = d[i].code;
            return 0;
        }
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end)
        return -1;
    *out = (rd_kafka_resp_err_t)v;
    return 0;
}

static int broker_id(const devbroker *db, const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    return *s && !*end && v >= 1 && v <= db->nbrokers ? (int)v : -1;
}

static void command(devbroker *db, char *line)
{
    char *argv[8];
    int argc = 0;
    for (char *tok = strtok(line, " \t\r"); tok && argc < 8; tok = strtok(NULL, " \t\r"))
        argv[argc++] = tok;
    if (argc == 0 || argv[0][0] == '#')
        return;
    const char *cmd = argv[0];
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    if ((!strcmp(cmd, "down") || !strcmp(cmd, "up")) && argc == 2) {
        int b = broker_id(db, argv[1]);
        if (b < 0) {
            say("error: no broker %s (1..%d)", argv[1], db->nbrokers);
            return;
        }
        e = cmd[0] == 'd' ? rd_kafka_mock_broker_set_down(db->mc, b)
                          : rd_kafka_mock_broker_set_up(db->mc, b);
    } else if (!strcmp(cmd, "leader") && argc == 4) {
        int b = broker_id(db, argv[3]);
        if (b < 0) {
            say("error: no broker %s (1..%d)", argv[3], db->nbrokers);
            return;
        }
        e = rd_kafka_mock_partition_set_leader(db->mc, argv[1], atoi(argv[2]), b);
    } else if (!strcmp(cmd, "errors") && argc == 4) {
        int api = api_key(argv[1]);
        long cnt = strtol(argv[2], NULL, 10);
        rd_kafka_resp_err_t code;
        if (api < 0 || cnt < 1 || cnt > 100000 || error_code(argv[3], &code)) {
            say("error: usage: errors API COUNT CODE");
            return;
        }
        rd_kafka_resp_err_t *codes = malloc((size_t)cnt * sizeof *codes);
        for (long i = 0; i < cnt; i++)
            codes[i] = code;
        rd_kafka_mock_push_request_errors_array(db->mc, (int16_t)api, (size_t)cnt, codes);
        free(codes);
    } else if (!strcmp(cmd, "rtt") && argc == 3) {
        int b = broker_id(db, argv[1]);
        if (b < 0) {
            say("error: no broker %s (1..%d)", argv[1], db->nbrokers);
            return;
        }
        e = rd_kafka_mock_broker_set_rtt(db->mc, b, atoi(argv[2]));
    } else if (!strcmp(cmd, "create") && argc == 3) {
        int p = atoi(argv[2]);
        if (p < 1) {
            say("error: usage: create TOPIC PARTITIONS");
            return;
        }
        e = rd_kafka_mock_topic_create(db->mc, argv[1], p, db->nbrokers < 3 ? db->nbrokers : 3);
    } else if (!strcmp(cmd, "bootstrap") && argc == 1) {
        say("bootstrap=%s", db->bootstrap);
        return;
    } else {
        say("error: unknown command '%s' (down, up, leader, errors, rtt, create, bootstrap)", cmd);
        return;
    }
    if (e)
        say("error: %s: %s", cmd, rd_kafka_err2str(e));
    else
        say("ok %s", cmd);
}

/* Reads what is there and runs each complete line. */
static void on_input(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    devbroker *db = arg;
    int which = fd == db->fifo_fd;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0 && !which) {
        /* stdin closed (e.g. /dev/null): keep serving, stop reading. */
        event_del(db->stdin_ev);
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == '\n') {
            db->line[which][db->line_len[which]] = 0;
            command(db, db->line[which]);
            db->line_len[which] = 0;
        } else if (db->line_len[which] < sizeof db->line[0] - 1) {
            db->line[which][db->line_len[which]++] = buf[i];
        }
    }
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopbreak(arg);
}

static int write_bootstrap(const char *path, const char *bootstrap)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    fprintf(f, "%s\n", bootstrap);
    /* Renamed into place so a reader never sees half a line. */
    if (fclose(f) || rename(tmp, path)) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static void usage(FILE *out)
{
    fputs("usage: arb-devbroker [--brokers N] [--partitions P] [--topics a,b,...]\n"
          "                     [--bootstrap-file PATH] [--port-base PORT] [--control-fifo PATH]\n"
          "A Kafka cluster in memory (librdkafka's mock cluster) for development and tests\n"
          "only; production sets [bus] brokers to a real cluster. Prints bootstrap=... and\n"
          "serves until SIGINT/SIGTERM. Commands on stdin or the FIFO: down B, up B,\n"
          "leader TOPIC PARTITION B, errors API COUNT CODE, rtt B MS, create TOPIC P, bootstrap.\n",
          out);
}

/* librdkafka 2.0's mock cluster serves the calls made on it (create a topic,
 * set a broker down, ...) only when its thread wakes for network traffic or
 * a timer, so an idle cluster answers each one up to a second late. A client
 * that refreshes the metadata of one topic every 20 ms keeps every answer
 * within about 20 ms. */
static rd_kafka_t *start_waker(const char *bootstrap, const char *topic)
{
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err) ||
        rd_kafka_conf_set(conf, "topic.metadata.refresh.interval.ms", "20", err, sizeof err) ||
        rd_kafka_conf_set(conf, "log_level", "0", err, sizeof err)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    /* A topic it knows makes it refresh; the handle itself is not needed. */
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    return rk;
}

/* A dev broker started again on the same ports while hosts still run: a
 * host's metadata request for a topic the mock does not know yet creates it
 * (the mock ignores a client's allow.auto.create.topics) with the mock's
 * default partition count, before this process gets to it. That topic is
 * kept if its partition count is the one asked for. */
static int topic_made_by_a_client(devbroker *db, const char *name, int partitions)
{
    const struct rd_kafka_metadata *md = NULL;
    if (!db->waker)
        db->waker = start_waker(db->bootstrap, name);
    rd_kafka_topic_t *rkt = db->waker ? rd_kafka_topic_new(db->waker, name, NULL) : NULL;
    int have = -1;
    if (rkt && !rd_kafka_metadata(db->waker, 0, rkt, &md, 5000) && md->topic_cnt == 1 &&
        !md->topics[0].err)
        have = md->topics[0].partition_cnt;
    if (md)
        rd_kafka_metadata_destroy(md);
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    if (have == partitions)
        return 0;
    fprintf(stderr,
            "arb-devbroker: topic %s was created by a client first, with %d partitions, not %d: "
            "start the dev broker before the hosts, or stop them first\n",
            name, have, partitions);
    return -1;
}

static int create_topic(devbroker *db, const char *name)
{
    /* arb_runs is one log of the system's runs (host/run.c): one partition. */
    int partitions = strcmp(name, "arb_runs") ? db->partitions : 1;
    rd_kafka_resp_err_t e =
        rd_kafka_mock_topic_create(db->mc, name, partitions, db->nbrokers < 3 ? db->nbrokers : 3);
    if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
        return topic_made_by_a_client(db, name, partitions);
    if (e) {
        fprintf(stderr, "arb-devbroker: topic %s: %s\n", name, rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    devbroker db = {.nbrokers = 3, .partitions = 4, .fifo_fd = -1};
    const char *extra = NULL, *fifo = NULL;
    int port_base = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--brokers"))
            db.nbrokers = atoi(v);
        else if (!strcmp(a, "--partitions"))
            db.partitions = atoi(v);
        else if (!strcmp(a, "--topics"))
            extra = v;
        else if (!strcmp(a, "--bootstrap-file"))
            db.bootstrap_file = v;
        else if (!strcmp(a, "--port-base"))
            port_base = atoi(v);
        else if (!strcmp(a, "--control-fifo"))
            fifo = v;
        else {
            usage(stderr);
            return 2;
        }
    }
    if (db.nbrokers < 1 || db.nbrokers > 32 || db.partitions < 1 || db.partitions > 1000 ||
        port_base < 0 || port_base + db.nbrokers > 65536) {
        fprintf(stderr, "arb-devbroker: --brokers 1..32, --partitions 1..1000, --port-base "
                        "1..65535\n");
        return 2;
    }
    for (int i = 0; port_base && i < db.nbrokers; i++)
        if (!port_free(port_base + i)) {
            fprintf(stderr, "arb-devbroker: port %d is in use (--port-base %d, %d brokers)\n",
                    port_base + i, port_base, db.nbrokers);
            return 1;
        }

    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* This handle never connects anywhere: quiet its "no bootstrap.servers"
     * notice, keep warnings and errors of the mock cluster. */
    rd_kafka_conf_set(conf, "log_level", "4", err, sizeof err);
    db.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!db.rk) {
        fprintf(stderr, "arb-devbroker: %s\n", err);
        return 1;
    }
    fixed_port = port_base;
    db.mc = rd_kafka_mock_cluster_new(db.rk, db.nbrokers);
    fixed_port = 0;
    if (!db.mc) {
        fprintf(stderr, "arb-devbroker: cannot start the mock cluster\n");
        rd_kafka_destroy(db.rk);
        return 1;
    }
    snprintf(db.bootstrap, sizeof db.bootstrap, "%s", rd_kafka_mock_cluster_bootstraps(db.mc));
    /* arb_runs first: hosts still running when the dev broker starts again
     * ask for it every second (the run watch, host/run.c), and the mock
     * would make it with its default partition count. */
    int rc = create_topic(&db, "arb_runs");
    if (!rc)
        rc = create_topic(&db, bus_topics[0]);
    if (!rc && !db.waker)
        db.waker = start_waker(db.bootstrap, bus_topics[0]);
    for (int i = 1; bus_topics[i] && !rc; i++)
        if (strcmp(bus_topics[i], "arb_runs"))
            rc = create_topic(&db, bus_topics[i]);
    if (extra && !rc) {
        char *list = strdup(extra);
        for (char *t = strtok(list, ","); t && !rc; t = strtok(NULL, ",")) {
            bool known = false; /* a bus topic named again: made already */
            for (int i = 0; bus_topics[i] && !known; i++)
                known = !strcmp(t, bus_topics[i]);
            if (!known)
                rc = create_topic(&db, t);
        }
        free(list);
    }
    if (!rc && db.bootstrap_file && write_bootstrap(db.bootstrap_file, db.bootstrap)) {
        fprintf(stderr, "arb-devbroker: cannot write %s: %s\n", db.bootstrap_file, strerror(errno));
        rc = 1;
    }
    if (!rc && fifo) {
        if (mkfifo(fifo, 0600) && errno != EEXIST) {
            fprintf(stderr, "arb-devbroker: mkfifo %s: %s\n", fifo, strerror(errno));
            rc = 1;
        }
        /* Opened read-write so the FIFO never reports end-of-file when a
         * writer goes away. */
        else if ((db.fifo_fd = open(fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC)) < 0) {
            fprintf(stderr, "arb-devbroker: open %s: %s\n", fifo, strerror(errno));
            rc = 1;
        }
    }
    if (rc) {
        rd_kafka_mock_cluster_destroy(db.mc);
        if (db.waker)
            rd_kafka_destroy(db.waker);
        rd_kafka_destroy(db.rk);
        return 1;
    }

    signal(SIGPIPE, SIG_IGN);
    db.base = event_base_new();
    db.sig_ev[0] = evsignal_new(db.base, SIGINT, on_signal, db.base);
    db.sig_ev[1] = evsignal_new(db.base, SIGTERM, on_signal, db.base);
    event_add(db.sig_ev[0], NULL);
    event_add(db.sig_ev[1], NULL);
    db.stdin_ev = event_new(db.base, STDIN_FILENO, EV_READ | EV_PERSIST, on_input, &db);
    /* Commands come from a pipe, a socket or a terminal; a regular file or
     * /dev/null on stdin (a service, a test) cannot be polled: skip it. */
    struct stat st;
    if (fstat(STDIN_FILENO, &st) == 0 &&
        (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || isatty(STDIN_FILENO)))
        event_add(db.stdin_ev, NULL);
    if (db.fifo_fd >= 0) {
        db.fifo_ev = event_new(db.base, db.fifo_fd, EV_READ | EV_PERSIST, on_input, &db);
        event_add(db.fifo_ev, NULL);
    }
    fprintf(stderr,
            "arb-devbroker: %d brokers, %d partitions per topic, in memory; for development "
            "and tests only\n",
            db.nbrokers, db.partitions);
    say("bootstrap=%s", db.bootstrap);

    event_base_dispatch(db.base);

    if (db.bootstrap_file)
        unlink(db.bootstrap_file);
    event_free(db.stdin_ev);
    if (db.fifo_ev)
        event_free(db.fifo_ev);
    if (db.fifo_fd >= 0)
        close(db.fifo_fd);
    event_free(db.sig_ev[0]);
    event_free(db.sig_ev[1]);
    event_base_free(db.base);
    /* The cluster goes first, while the waker still keeps its thread awake. */
    rd_kafka_mock_cluster_destroy(db.mc);
    if (db.waker)
        rd_kafka_destroy(db.waker);
    rd_kafka_destroy(db.rk);
    return 0;
}

/*
 * splitrig.h -- the split system on one machine for a test or a benchmark:
 * arb-devbroker and arb-host processes, PostgreSQL checks, and the gateway
 * side (a host in this process that publishes a stream of crossing orders on
 * order_commands and watches trade_executed).
 *
 * Order i of the stream: pairs (buy by account 1001, sell by account 1002 at
 * the same price, one lot of 10) over the four books of conf.d/instruments.ini,
 * so pair k yields exactly one trade between orders base+2k and base+2k+1.
 * Not here: what is measured or asserted (the callers).
 */
#ifndef SPLITRIG_H
#define SPLITRIG_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "testhost.h"

#define RIG_MS 1000000LL
#define RIG_SEC 1000000000LL

_Noreturn void rig_die(const char *what, const char *detail);
int64_t rig_mono_ns(void);

/* Re-runs this program under scripts/with-pg.sh unless already inside. */
void rig_with_pg(void);
PGconn *rig_db(const char *dbname);
void rig_sql(PGconn *c, const char *sql);
/* The first column of the query's first row as an integer; -1 if the query
 * fails (e.g. its table does not exist yet). */
long long rig_int(PGconn *c, const char *sql);
/* count(*) of the trades table; -1 until the recorder has created it. */
long long rig_trades(PGconn *c);

/* A process with stdout and stderr to `log`. The rig keeps track of every
 * process it starts until rig_stop reaps it, so that rig_stop_all (in a
 * teardown) leaves none behind when a failed assertion ends a test early. */
pid_t rig_spawn(const char *const argv[], const char *log);
/* Signals, waits and forgets the process; returns its wait status. */
int rig_stop(pid_t pid, int sig);
/* Waits until the process exits by itself, up to deadline (rig_mono_ns):
 * its wait status, and the rig forgets it; -1 if it still runs. */
int rig_wait_exit(pid_t pid, int64_t deadline);
/* SIGKILL and reap every process the rig started that is still running. */
void rig_stop_all(void);
/* Starts $ARB_BUILD/arb-devbroker (3 brokers, `partitions` per topic)
 * writing its bootstrap list under dir, its log to dir/devbroker.log; extra
 * arguments (NULL-terminated, may be NULL), e.g. {"--control-fifo", path}.
 * Sets ARB_BROKERS. */
pid_t rig_devbroker(const char *dir, int partitions, const char *const extra[]);
/* $ARB_BUILD/arb-host -c conf with -s overrides (NULL-terminated). */
pid_t rig_host(const char *conf, const char *log, const char *const sets[]);
/* A free TCP port on the loopback address (bound, read, closed). */
int rig_free_port(void);
/* GET http://127.0.0.1:port/path: the status (0 when nothing answered),
 * the body (NUL-terminated, cut at cap - 1) in body. */
int rig_http_get(int port, const char *path, char *body, size_t cap);
/* The same for any method, with a bearer key and a JSON body (each may be
 * NULL). */
int rig_http(int port, const char *method, const char *path, const char *key, const char *json,
             char *body, size_t cap);
/* The value of one Prometheus line `name` (with its labels, as printed)
 * from port's /metrics; -1 when absent or nothing answered. */
long long rig_metric(int port, const char *name);

/* For a test that passed: removes its scratch directory (logs, configs),
 * unless ARB_TEST_KEEP is set. A failed run keeps it for whoever reads the
 * failure. Returns 0, or -1 if something could not be removed. */
int rig_clean_dir(const char *dir);

typedef struct rig_side {
    testhost *h;
    arb_ctx *ctx;
    int cmd_topic;
    size_t norders;
    uint64_t id_base;
    int64_t *sent_ns; /* publish time by order index */
    uint64_t trades;  /* trades seen on trade_executed */
    int64_t *lat;     /* order-to-trade latency, while measuring */
    size_t nlat;
    int measuring;
} rig_side;

/* The gateway side in host h (started), for orders [0, norders). */
void rig_side_init(rig_side *s, testhost *h, size_t norders, uint64_t id_base);
void rig_side_free(rig_side *s);
/* Publishes order i (retrying while the bus answers ARB_EFULL). */
void rig_publish(rig_side *s, size_t i);

#endif

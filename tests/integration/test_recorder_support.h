/*
 * test_recorder_support.h -- what the recorder's database tests share: the
 * blocking libpq helpers of the test side, a fresh database per test,
 * stopping and starting the throwaway server (scripts/with-pg.sh), and
 * re-running the test binary under that server, and the check that the
 * trades table holds exactly a given list of trades (count and md5 digest,
 * the expected text built from the records, not from the recorder's rows).
 * Include after <cmocka.h>.
 */
#ifndef TEST_RECORDER_SUPPORT_H
#define TEST_RECORDER_SUPPORT_H

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../plugins/recorder/copy_rows.h"
#include "arb/wire.h"

extern char **environ;

/* Trade i of a deterministic stream over six instruments (two venues, the
 * caller's three symbols), so records spread over partitions by instrument
 * key. Ids are a bijection of i that uses all 64 bits, so some read back
 * negative from bigint. */
static inline arb_trade rec_test_trade(uint64_t i, const char *const symbols[3])
{
    static const char *const venues[] = {"XA", "XB"};
    arb_trade t;
    memset(&t, 0, sizeof t);
    arb_fixstr_set(t.venue, ARB_VENUE_LEN, venues[i % 2]);
    arb_fixstr_set(t.symbol, ARB_SYMBOL_LEN, symbols[i % 3]);
    t.trade_id = (i + 1) * 0x9E3779B97F4A7C15ull;
    t.price = 10000 + (int64_t)(i % 977);
    t.qty = 1 + (int64_t)(i % 50);
    t.buy_order_id = 2 * i + 1;
    t.sell_order_id = 2 * i + 2;
    t.buy_account = 100 + i % 7;
    t.sell_account = 200 + i % 11;
    t.ts = 1700000000000000000LL + (int64_t)i * 1000003;
    t.seq = i;
    t.aggressor = (uint8_t)(1 + i % 2);
    return t;
}

static inline int scale_down(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return 4;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    return 4;
#endif
#endif
    const char *s = getenv("ARB_TEST_SCALE");
    return s && atoi(s) > 1 ? atoi(s) : 1;
}

/* ---- the database, blocking (test side only) ---- */

static inline void quiet(void *arg, const char *msg) { (void)arg, (void)msg; }

static inline PGconn *connect_db(const char *db)
{
    char dsn[128];
    snprintf(dsn, sizeof dsn, "dbname=%s", db);
    PGconn *c = PQconnectdb(dsn);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("cannot connect to %s: %s", db, PQerrorMessage(c));
    PQsetNoticeProcessor(c, quiet, NULL);
    return c;
}

static inline void exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

static inline long long q_int(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    long long v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

static inline char *q_str(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    char *v = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static inline void fresh_db(const char *name)
{
    PGconn *c = connect_db("postgres");
    char sql[160];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    exec_ok(c, sql);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    exec_ok(c, sql);
    PQfinish(c);
}

/* Waits until no other session is connected to db: a recorder that was cut
 * off may still have its last statements running on the server. */
static inline void wait_sessions_gone(PGconn *c)
{
    for (int i = 0; i < 500; i++) {
        if (q_int(c, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                     "AND pid <> pg_backend_pid()") == 0)
            return;
        usleep(10000);
    }
    fail_msg("other sessions did not go away");
}

/* Runs pg_ctlcluster on the throwaway server; returns the child's pid. */
static inline pid_t pg_ctl_spawn(const char *action)
{
    const char *ver = getenv("ARB_PG_VERSION"), *cluster = getenv("ARB_PG_CLUSTER");
    assert_non_null(ver);
    assert_non_null(cluster);
    char *argv_stop[] = {"pg_ctlcluster", (char *)ver, (char *)cluster, "stop", "-m",
                         "immediate",     NULL};
    char *argv_start[] = {"pg_ctlcluster", (char *)ver, (char *)cluster, "start", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawnp(&pid, "pg_ctlcluster", &fa, NULL,
                          strcmp(action, "stop") ? argv_start : argv_stop, environ);
    posix_spawn_file_actions_destroy(&fa);
    assert_int_equal(rc, 0);
    return pid;
}

/* 1 once the child exited (successfully), 0 while it runs. */
static inline int child_done(pid_t pid)
{
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == 0)
        return 0;
    assert_int_equal(r, pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return 1;
}

typedef struct rec_expect_row {
    int64_t id;
    size_t i;
} rec_expect_row;

static inline int rec_expect_by_id(const void *a, const void *b)
{
    int64_t x = ((const rec_expect_row *)a)->id, y = ((const rec_expect_row *)b)->id;
    return x < y ? -1 : x > y;
}

/* The table's rendering of one trade, as concat_ws prints it (NULL skipped). */
static inline int rec_expect_line(char *out, size_t cap, const arb_trade *t, rec_scale sc)
{
    char pd[8] = "", qd[8] = "", venue[ARB_VENUE_LEN + 1], symbol[ARB_SYMBOL_LEN + 1];
    if (sc.price_decimals >= 0)
        snprintf(pd, sizeof pd, "%d,", sc.price_decimals);
    if (sc.qty_decimals >= 0)
        snprintf(qd, sizeof qd, "%d,", sc.qty_decimals);
    /* order ids unsigned, as numeric(20,0) stores them (migration 7) */
    return snprintf(out, cap, "%lld,%s,%s,%lld,%lld,%lld,%s%s%s,%llu,%llu,%lld,%lld,%lld,%lld\n",
                    (long long)(int64_t)t->trade_id, arb_fixstr(venue, t->venue, ARB_VENUE_LEN),
                    arb_fixstr(symbol, t->symbol, ARB_SYMBOL_LEN), (long long)t->ts,
                    (long long)t->price, (long long)t->qty, pd, qd,
                    t->aggressor == ARB_SIDE_BUY ? "buy" : "sell",
                    (unsigned long long)t->buy_order_id, (unsigned long long)t->sell_order_id,
                    (long long)(int64_t)t->buy_account, (long long)(int64_t)t->sell_account,
                    (long long)(int64_t)t->seq, (long long)(t->ts / 1000 - (t->ts % 1000 < 0)));
}

/* The trades table holds exactly these n trades: count and md5 digest. */
static inline void assert_trades_table_holds(PGconn *c, const arb_trade *trades, size_t n,
                                             rec_scale (*scale)(const arb_trade *))
{
    assert_int_equal(q_int(c, "SELECT count(*) FROM trades"), (long long)n);
    rec_expect_row *rows = malloc((n ? n : 1) * sizeof *rows);
    for (size_t i = 0; i < n; i++)
        rows[i] = (rec_expect_row){(int64_t)trades[i].trade_id, i};
    qsort(rows, n, sizeof *rows, rec_expect_by_id);
    size_t cap = n * 256 + 1, len = 0;
    char *text = malloc(cap);
    text[0] = 0;
    for (size_t k = 0; k < n; k++) {
        const arb_trade *t = &trades[rows[k].i];
        len += (size_t)rec_expect_line(text + len, cap - len, t, scale(t));
    }
    free(rows);
    const char *params[1] = {text};
    PGresult *r = PQexecParams(c, "SELECT md5($1)", 1, NULL, params, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    char *want = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    free(text);
    char *got = q_str(c, "SELECT md5(coalesce(string_agg(concat_ws(',', trade_id, venue, symbol, "
                         "ts_ns, price, qty, price_decimals, qty_decimals, aggressor, "
                         "buy_order_id, sell_order_id, buy_account, sell_account, book_seq, "
                         "(extract(epoch FROM executed_at) * 1000000)::bigint) || E'\\n', '' "
                         "ORDER BY trade_id), '')) FROM trades");
    assert_string_equal(got, want);
    free(want);
    free(got);
}

/* Re-runs this binary under a throwaway server unless already inside one.
 * Returns only when already inside; otherwise execs or exits. */
static inline void rec_test_reexec_under_pg(const char *argv0)
{
    if (getenv("ARB_WITH_PG"))
        return;
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        perror("readlink /proc/self/exe");
        exit(1);
    }
    self[n] = 0;
    char *args[] = {"scripts/with-pg.sh", self, NULL};
    execv(args[0], args);
    fprintf(stderr, "%s: cannot run scripts/with-pg.sh (run from the repo root): %s\n", argv0,
            strerror(errno));
    exit(1);
}

#endif

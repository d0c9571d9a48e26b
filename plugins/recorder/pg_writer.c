/*
 * pg_writer.c -- the non-blocking libpq state machine (see pg_writer.h).
 *
 *   DOWN --retry timer--> CONNECTING --PQconnectPoll OK--> SETUP --results--> READY
 *   READY --flush due--> FLUSHING --COMMIT ok--> READY
 *   any failure (connect, query, lost connection, timeout) --> DOWN
 *
 * One query is in flight at a time. A query is a string of statements sent
 * with PQsendQuery (simple protocol, one round trip); results arrive one per
 * statement, and a COPY ... FROM STDIN among them hands us PGRES_COPY_IN, at
 * which point the batch text is streamed with PQputCopyData. Whenever libpq
 * cannot proceed without the socket becoming readable or writable we arm a
 * one-shot libevent event and return to the loop.
 */
#include "pg_writer.h"

#include <errno.h>
#include <stdint.h>
#include <event2/event.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Bytes handed to PQputCopyData at once: big enough to amortise the call,
 * small enough that libpq's output buffer stays modest. */
#define COPY_CHUNK (256u * 1024u)

enum wstate { W_DOWN, W_CONNECTING, W_SETUP, W_READY, W_FLUSHING, W_STOPPED };

struct rec_writer {
    struct event_base *base;
    char *dsn, *consumer;
    char *run_name, *run_seed, *run_digest; /* cfg.run's strings, owned */
    /* The latest hosts and plugins for the run's row (rec_writer_patch_run)
     * and which of them the database has. */
    char *patch_hosts, *patch_plugins;
    uint64_t patch_gen, patch_sent_gen, patch_done_gen;
    rec_writer_cfg cfg;
    rec_writer_hooks hooks;
    rec_batcher *batcher;
    rec_db_health health;

    enum wstate st;
    PGconn *conn;
    int io_fd;
    short want; /* EV_READ / EV_WRITE the state machine waits for */
    struct event *ev_read, *ev_write;
    struct event *retry_timer; /* backoff before the next connect */
    struct event *op_timer;    /* slow / timeout watchdog of the current step */
    int64_t op_start_ns;
    int draining;

    /* The query in flight. */
    rec_sql sql;
    rec_flush_plan plan;
    int result_idx;
    int query_failed;
    char query_error[256];
    int in_copy, copy_idx, copy_ended;
    size_t copy_pos;   /* bytes of the topic's batch text taken into chunks */
    const char *chunk; /* the chunk PQputCopyData has not taken yet */
    size_t chunk_len;  /* its length; 0: none pending */
    int line_start;    /* the next byte of batch text starts a row */
    char *chunk_buf;   /* COPY_CHUNK bytes: batch text with the run id added */
    char run_prefix[24];
    size_t run_prefix_len; /* "<run id>\t", what leads each row of a direct COPY */
    /* Direct COPY (rec_direct_flush_sql) and its fallback. */
    int fallback;                /* the direct COPY of the batch in flight met stored rows */
    int fell_back;               /* the batch in flight was sent again the staging way */
    int stage_next;              /* the last staged batch skipped rows: stage the next one too */
    int patching;                /* the query in flight is a run patch, not a batch */
    rec_commit_report report;    /* of the batch in flight */
    uint64_t stored[REC_TOPICS]; /* positions read by the setup query */
    rec_kpos *kstored;           /* Kafka positions read by the setup query */
    size_t nkstored, kstored_cap;
};

int64_t rec_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void on_io(evutil_socket_t fd, short what, void *arg);
static void on_retry(evutil_socket_t fd, short what, void *arg);
static void on_op_timer(evutil_socket_t fd, short what, void *arg);
static void start_connect(rec_writer *w);
static void pump(rec_writer *w);
static void maybe_flush(rec_writer *w);
static void idle_input(rec_writer *w);

static struct timeval tv_of(int64_t ns)
{
    if (ns < 0)
        ns = 0;
    struct timeval tv = {(time_t)(ns / 1000000000), (suseconds_t)(ns % 1000000000 / 1000)};
    return tv;
}

/* ---- events ---- */

static void io_release(rec_writer *w)
{
    if (w->ev_read)
        event_free(w->ev_read);
    if (w->ev_write)
        event_free(w->ev_write);
    w->ev_read = w->ev_write = NULL;
    w->io_fd = -1;
    w->want = 0;
}

/* Arms one-shot events for what libpq waits on. The socket may change while
 * connecting (libpq tries address after address), so events follow it. */
static int want(rec_writer *w, short what)
{
    int fd = PQsocket(w->conn);
    if (fd < 0)
        return -1;
    if (fd != w->io_fd) {
        io_release(w);
        w->ev_read = event_new(w->base, fd, EV_READ, on_io, w);
        w->ev_write = event_new(w->base, fd, EV_WRITE, on_io, w);
        if (!w->ev_read || !w->ev_write) {
            io_release(w);
            return -1;
        }
        w->io_fd = fd;
    }
    w->want = what;
    if ((what & EV_READ) && event_add(w->ev_read, NULL))
        return -1;
    if ((what & EV_WRITE) && event_add(w->ev_write, NULL))
        return -1;
    return 0;
}

static void op_watch(rec_writer *w, int64_t after_ns)
{
    struct timeval tv = tv_of(after_ns);
    evtimer_add(w->op_timer, &tv);
}

/* ---- failure and recovery ---- */

static void close_conn(rec_writer *w)
{
    io_release(w);
    if (w->conn)
        PQfinish(w->conn);
    w->conn = NULL;
    evtimer_del(w->op_timer);
    w->in_copy = 0;
    w->patching = 0;
}

static void fail(rec_writer *w, const char *why)
{
    close_conn(w);
    if (w->st == W_STOPPED)
        return;
    w->st = W_DOWN;
    int64_t retry_ns;
    if (rec_health_failed(&w->health, why, rec_clock_ns(), &retry_ns) && w->hooks.state_changed)
        w->hooks.state_changed(w->hooks.user, &w->health);
    struct timeval tv = tv_of(retry_ns);
    evtimer_add(w->retry_timer, &tv);
}

static void fail_conn(rec_writer *w, const char *what)
{
    char msg[320];
    const char *pq = w->conn ? PQerrorMessage(w->conn) : "";
    snprintf(msg, sizeof msg, "%s%s%s", what, *pq ? ": " : "", pq);
    fail(w, msg);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    rec_writer *w = arg;
    if (w->st == W_DOWN)
        start_connect(w);
}

/* Schema setup or a flush has run long: first mark the database slow, then
 * at the timeout give up on this connection and retry (idempotently). */
static void on_op_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    rec_writer *w = arg;
    int64_t elapsed = rec_clock_ns() - w->op_start_ns;
    if (elapsed >= w->cfg.timeout_ns) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s timed out after %lld ms",
                 w->st == W_FLUSHING ? "flush" : "connect", (long long)(elapsed / 1000000));
        fail(w, msg);
        return;
    }
    if (w->st == W_FLUSHING && rec_health_slow(&w->health, rec_clock_ns()) &&
        w->hooks.state_changed)
        w->hooks.state_changed(w->hooks.user, &w->health);
    op_watch(w, w->cfg.timeout_ns - elapsed);
}

/* ---- connecting ---- */

static void quiet_notices(void *arg, const char *message)
{
    /* "relation already exists, skipping" and friends: expected on every
     * connect, and libpq would print them on stderr. */
    (void)arg, (void)message;
}

static void start_connect(rec_writer *w)
{
    evtimer_del(w->retry_timer);
    const char *keys[3] = {"fallback_application_name", NULL, NULL};
    const char *vals[3] = {"arb-recorder", NULL, NULL};
    if (*w->dsn) {
        keys[1] = "dbname";
        vals[1] = w->dsn;
    }
    w->conn = PQconnectStartParams(keys, vals, 1);
    if (!w->conn) {
        fail(w, "out of memory starting a connection");
        return;
    }
    if (PQstatus(w->conn) == CONNECTION_BAD) {
        fail_conn(w, "cannot connect");
        return;
    }
    w->st = W_CONNECTING;
    w->op_start_ns = rec_clock_ns();
    op_watch(w, w->cfg.timeout_ns);
    if (want(w, EV_WRITE))
        fail_conn(w, "cannot watch the connection socket");
}

static void send_query(rec_writer *w)
{
    w->result_idx = 0;
    w->query_failed = 0;
    w->query_error[0] = 0;
    w->in_copy = w->copy_idx = w->copy_ended = 0;
    w->copy_pos = 0;
    w->chunk_len = 0;
    w->fallback = 0;
    memset(&w->report, 0, sizeof w->report);
    if (!PQsendQuery(w->conn, w->sql.text)) {
        fail_conn(w, "cannot send a query");
        return;
    }
    pump(w);
}

static void connected(rec_writer *w)
{
    PQsetnonblocking(w->conn, 1);
    PQsetNoticeProcessor(w->conn, quiet_notices, NULL);
    w->sql.len = 0;
    if (rec_setup_sql(&w->sql, w->consumer, &w->cfg.run) || w->sql.oom) {
        fail(w, "cannot build the setup statements (consumer name or memory)");
        return;
    }
    w->st = W_SETUP;
    memset(w->stored, 0, sizeof w->stored);
    w->nkstored = 0;
    send_query(w);
}

static void connect_step(rec_writer *w)
{
    switch (PQconnectPoll(w->conn)) {
    case PGRES_POLLING_READING:
        if (want(w, EV_READ))
            fail_conn(w, "cannot watch the connection socket");
        return;
    case PGRES_POLLING_WRITING:
        if (want(w, EV_WRITE))
            fail_conn(w, "cannot watch the connection socket");
        return;
    case PGRES_POLLING_OK: connected(w); return;
    default: fail_conn(w, "cannot connect"); return;
    }
}

/* ---- one query: results, COPY data ---- */

static void note_error(rec_writer *w, const PGresult *res)
{
    if (w->query_failed)
        return;
    w->query_failed = 1;
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    /* A direct COPY refused for a key already stored (unique_violation):
     * the batch goes again through the staging tables (query_done). */
    if (w->st == W_FLUSHING && !w->patching && w->plan.direct && state && !strcmp(state, "23505"))
        for (int i = 0; i < w->plan.n_copies; i++)
            if (w->plan.copy_result[i] == w->result_idx)
                w->fallback = 1;
    snprintf(w->query_error, sizeof w->query_error, "%s [%s] %s",
             w->st == W_SETUP ? "schema setup failed:" : "flush failed:", state ? state : "-",
             msg ? msg : PQresStatus(PQresultStatus(res)));
}

static int topic_of(const char *name)
{
    for (int t = 0; t < REC_TOPICS; t++)
        if (!strcmp(name, rec_topic_name((enum rec_topic)t)))
            return t;
    return -1;
}

static void setup_kafka_rows(rec_writer *w, const PGresult *res)
{
    for (int i = 0; i < PQntuples(res); i++) {
        int t = topic_of(PQgetvalue(res, i, 0));
        long part = strtol(PQgetvalue(res, i, 1), NULL, 10);
        long long off = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        if (t < 0 || part < 0 || part > INT32_MAX || off < 0)
            continue;
        if (w->nkstored == w->kstored_cap) {
            size_t cap = w->kstored_cap ? 2 * w->kstored_cap : 16;
            rec_kpos *grown = realloc(w->kstored, cap * sizeof *grown);
            if (!grown) {
                w->query_failed = 1;
                snprintf(w->query_error, sizeof w->query_error,
                         "out of memory reading the stored Kafka positions");
                return;
            }
            w->kstored = grown;
            w->kstored_cap = cap;
        }
        w->kstored[w->nkstored++] = (rec_kpos){t, (int32_t)part, off};
    }
}

static void setup_rows(rec_writer *w, const PGresult *res)
{
    if (PQnfields(res) == 4) {
        setup_kafka_rows(w, res);
        return;
    }
    if (PQnfields(res) != 3)
        return;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *topic = PQgetvalue(res, i, 0);
        long long off = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        /* In-process delivery has one partition; Kafka positions have their
         * own table (setup_kafka_rows). */
        if (atoi(PQgetvalue(res, i, 1)) != 0 || off < 0)
            continue;
        for (int t = 0; t < REC_TOPICS; t++)
            if (!strcmp(topic, rec_topic_name((enum rec_topic)t)))
                w->stored[t] = (uint64_t)off;
    }
}

static void on_result(rec_writer *w, const PGresult *res)
{
    ExecStatusType s = PQresultStatus(res);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        note_error(w, res);
    } else if (w->st == W_SETUP && s == PGRES_TUPLES_OK) {
        setup_rows(w, res);
    } else if (w->st == W_FLUSHING && !w->patching) {
        for (int t = 0; t < REC_TOPICS; t++) {
            if (w->plan.insert_result[t] == w->result_idx && PQntuples(res) == 1)
                w->report.inserted[t] = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
            if (w->plan.compare_result[t] == w->result_idx && PQntuples(res) == 1 &&
                PQnfields(res) == 4) {
                rec_conflict *c = &w->report.conflict[t];
                c->count = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
                snprintf(c->key, sizeof c->key, "%s", PQgetvalue(res, 0, 1));
                snprintf(c->staged, sizeof c->staged, "%s", PQgetvalue(res, 0, 2));
                snprintf(c->stored, sizeof c->stored, "%s", PQgetvalue(res, 0, 3));
            }
        }
    }
    w->result_idx++;
}

/* The next chunk of a direct COPY: batch text from copy_pos with the run id
 * put before each row, up to COPY_CHUNK bytes. Chunks need not end at a row
 * (CopyData boundaries mean nothing to the server). */
static size_t fill_prefixed(rec_writer *w, const rec_buf *buf)
{
    char *out = w->chunk_buf;
    size_t n = 0;
    while (w->copy_pos < buf->len) {
        if (w->line_start) {
            if (COPY_CHUNK - n < w->run_prefix_len)
                break;
            memcpy(out + n, w->run_prefix, w->run_prefix_len);
            n += w->run_prefix_len;
            w->line_start = 0;
        }
        const char *from = buf->data + w->copy_pos;
        size_t left = buf->len - w->copy_pos;
        const char *nl = memchr(from, '\n', left);
        size_t take = nl ? (size_t)(nl - from) + 1 : left;
        if (take > COPY_CHUNK - n)
            take = COPY_CHUNK - n;
        memcpy(out + n, from, take);
        n += take;
        w->copy_pos += take;
        w->line_start = nl && take == (size_t)(nl - from) + 1;
        if (n == COPY_CHUNK)
            break;
    }
    return n;
}

/* Streams the current COPY's rows. 1: done (CopyDone queued), 0: libpq's
 * buffer is full (wait until writable), -1: failed. */
static int copy_step(rec_writer *w)
{
    const rec_buf *buf = &w->batcher->sealed->rows[w->plan.copy_topic[w->copy_idx]];
    for (;;) {
        if (!w->chunk_len) {
            if (w->copy_pos >= buf->len)
                break;
            if (w->plan.direct) {
                w->chunk = w->chunk_buf;
                w->chunk_len = fill_prefixed(w, buf);
            } else {
                size_t n = buf->len - w->copy_pos;
                w->chunk = buf->data + w->copy_pos;
                w->chunk_len = n > COPY_CHUNK ? COPY_CHUNK : n;
                w->copy_pos += w->chunk_len;
            }
        }
        /* 0: not queued (the buffer is full); the same chunk goes again. */
        int r = PQputCopyData(w->conn, w->chunk, (int)w->chunk_len);
        if (r <= 0)
            return r;
        w->chunk_len = 0;
    }
    if (!w->copy_ended) {
        int r = PQputCopyEnd(w->conn, NULL);
        if (r <= 0)
            return r;
        w->copy_ended = 1;
    }
    return 1;
}

static void query_done(rec_writer *w);
static void send_staged_after_failed_copy(rec_writer *w);

/* Advances the query as far as the socket allows, then arms what it needs. */
static void pump(rec_writer *w)
{
    for (;;) {
        if (w->in_copy) {
            int r = copy_step(w);
            if (r < 0) {
                fail_conn(w, "COPY failed");
                return;
            }
            if (r == 0) {
                if (want(w, EV_WRITE))
                    fail_conn(w, "cannot watch the connection socket");
                return;
            }
            w->in_copy = 0;
            w->copy_idx++;
        }
        int f = PQflush(w->conn);
        if (f < 0) {
            fail_conn(w, "lost the connection");
            return;
        }
        if (f > 0) {
            /* libpq asks us to read as well while output is stuck, so the
             * server is never blocked on a full pipe towards us. */
            if (want(w, EV_WRITE | EV_READ))
                fail_conn(w, "cannot watch the connection socket");
            return;
        }
        if (!PQconsumeInput(w->conn)) {
            fail_conn(w, "lost the connection");
            return;
        }
        while (!w->in_copy && !PQisBusy(w->conn)) {
            PGresult *res = PQgetResult(w->conn);
            if (!res) {
                query_done(w);
                return;
            }
            if (PQresultStatus(res) == PGRES_COPY_IN) {
                if (w->st != W_FLUSHING || w->copy_idx >= w->plan.n_copies) {
                    PQclear(res);
                    fail(w, "the server asked for COPY data nobody planned");
                    return;
                }
                w->in_copy = 1;
                w->copy_pos = 0;
                w->copy_ended = 0;
                w->chunk_len = 0;
                w->line_start = 1;
            } else {
                on_result(w, res);
            }
            PQclear(res);
        }
        if (!w->in_copy) {
            if (want(w, EV_READ))
                fail_conn(w, "cannot watch the connection socket");
            return;
        }
    }
}

static void query_done(rec_writer *w)
{
    if (PQstatus(w->conn) == CONNECTION_BAD) {
        fail_conn(w, "lost the connection");
        return;
    }
    if (w->query_failed && w->fallback) {
        send_staged_after_failed_copy(w);
        return;
    }
    if (w->query_failed) {
        fail(w, w->query_error);
        return;
    }
    evtimer_del(w->op_timer);
    int64_t now = rec_clock_ns();
    if (w->st == W_SETUP) {
        rec_batcher_set_base(w->batcher, w->stored);
        w->st = W_READY;
        if (w->hooks.kafka_positions)
            w->hooks.kafka_positions(w->hooks.user, w->kstored, w->nkstored);
        /* A batch whose flush failed goes again first: the database is up
         * once that commits, not merely because we could connect (a flush
         * the server keeps refusing is one outage with a growing backoff,
         * not a log line per retry). */
        if (!(w->batcher->sealed && w->health.state == REC_DB_DOWN) &&
            rec_health_ok(&w->health, now) && w->hooks.state_changed)
            w->hooks.state_changed(w->hooks.user, &w->health);
        maybe_flush(w);
        return;
    }
    if (w->result_idx != w->plan.n_results) {
        fail(w, "flush ended with fewer results than statements");
        return;
    }
    if (w->patching) {
        w->patching = 0;
        w->patch_done_gen = w->patch_sent_gen;
        w->st = W_READY;
        maybe_flush(w);
        return;
    }
    int skipped = 0;
    for (int t = 0; t < REC_TOPICS; t++) {
        w->report.rows[t] = w->batcher->sealed->count[t];
        /* A direct COPY that committed stored every row of the batch. */
        if (w->plan.direct)
            w->report.inserted[t] = w->report.rows[t];
        skipped |= w->report.inserted[t] < w->report.rows[t];
    }
    /* Replays come in runs (a source read again from an older position):
     * after a staged batch that skipped rows the next one is staged at once
     * rather than failing a direct COPY first; one that stored all its rows
     * sends the next one direct again. */
    w->stage_next = !w->plan.direct && skipped;
    w->report.fallback = w->fell_back;
    w->report.latency_ns = now - w->op_start_ns;
    rec_batcher_done(w->batcher);
    w->st = W_READY;
    if (rec_health_ok(&w->health, now) && w->hooks.state_changed)
        w->hooks.state_changed(w->hooks.user, &w->health);
    if (w->hooks.committed)
        w->hooks.committed(w->hooks.user, &w->report);
    maybe_flush(w);
}

/* ---- flushing ---- */

/* The flush statements for the sealed batch: direct (rec_direct_flush_sql)
 * or through the staging tables (rec_flush_sql), these led by a ROLLBACK of
 * the transaction a failed direct COPY left aborted when after_copy_failed
 * (its results numbered one further on). */
static int build_flush(rec_writer *w, int direct, int after_copy_failed)
{
    const rec_batch *bt = w->batcher->sealed;
    uint64_t pos[REC_TOPICS];
    for (int t = 0; t < REC_TOPICS; t++)
        pos[t] = rec_batcher_position(w->batcher, (enum rec_topic)t);
    w->sql.len = 0;
    if (after_copy_failed)
        rec_sql_append(&w->sql, "ROLLBACK;\n");
    int rc = (direct ? rec_direct_flush_sql : rec_flush_sql)(
        &w->sql, w->consumer, w->cfg.run.id, bt->count[REC_TOPIC_TRADES],
        bt->count[REC_TOPIC_ORDER_EVENTS], pos, bt->kpos, bt->nkpos, &w->plan);
    if (rc || w->sql.oom)
        return -1;
    if (after_copy_failed) {
        for (int i = 0; i < w->plan.n_copies; i++)
            w->plan.copy_result[i]++;
        for (int t = 0; t < REC_TOPICS; t++) {
            if (w->plan.insert_result[t] >= 0)
                w->plan.insert_result[t]++;
            if (w->plan.compare_result[t] >= 0)
                w->plan.compare_result[t]++;
        }
        w->plan.n_results++;
    }
    return 0;
}

static void send_flush(rec_writer *w)
{
    if (build_flush(w, !w->stage_next, 0)) {
        fail(w, "cannot build the flush statements (out of memory)");
        return;
    }
    w->st = W_FLUSHING;
    w->patching = 0;
    w->fell_back = 0;
    w->op_start_ns = rec_clock_ns();
    op_watch(w, w->cfg.slow_ns < w->cfg.timeout_ns ? w->cfg.slow_ns : w->cfg.timeout_ns);
    send_query(w);
}

/* The direct COPY met a stored key: nothing of the batch was written (its
 * transaction is aborted). The same batch again, the staging way, which
 * skips the stored rows and reports the ones that differ. Same flush: its
 * clock and watchdog keep running. */
static void send_staged_after_failed_copy(rec_writer *w)
{
    if (build_flush(w, 0, 1)) {
        fail(w, "cannot build the flush statements (out of memory)");
        return;
    }
    w->fell_back = 1;
    send_query(w);
}

/* The run's hosts and plugins, one statement of its own (no batch waits
 * behind it for long: it is a single-row UPDATE). */
static void send_patch(rec_writer *w)
{
    w->sql.len = 0;
    if (rec_run_patch_sql(&w->sql, w->cfg.run.id, w->patch_hosts, w->patch_plugins) || w->sql.oom) {
        /* Text the literal cannot carry: drop this patch, keep writing rows. */
        w->patch_done_gen = w->patch_gen;
        return;
    }
    memset(&w->plan, 0, sizeof w->plan);
    w->plan.insert_result[0] = w->plan.insert_result[1] = -1;
    w->plan.compare_result[0] = w->plan.compare_result[1] = -1;
    w->plan.n_results = 1;
    w->patch_sent_gen = w->patch_gen;
    w->st = W_FLUSHING;
    w->patching = 1;
    w->op_start_ns = rec_clock_ns();
    op_watch(w, w->cfg.slow_ns < w->cfg.timeout_ns ? w->cfg.slow_ns : w->cfg.timeout_ns);
    send_query(w);
}

static void maybe_flush(rec_writer *w)
{
    if (w->st != W_READY)
        return;
    /* A batch sealed before a failure goes again first, unchanged. Then a
     * pending run patch, before the next batch: it is rare and small, and
     * under a steady load a batch is always due, so it would wait for ever
     * behind them. */
    if (!w->batcher->sealed && w->patch_gen != w->patch_done_gen && w->cfg.run.id) {
        send_patch(w);
        if (w->st == W_FLUSHING)
            return;
    }
    if (!w->batcher->sealed && rec_batcher_flush_due(w->batcher, rec_clock_ns(), w->draining) &&
        !rec_batcher_seal(w->batcher)) {
        fail(w, "out of memory sealing a batch");
        return;
    }
    if (w->batcher->sealed) {
        send_flush(w);
        return;
    }
    /* Idle: still watch the socket, so a server that goes away is noticed
     * (and reported) now rather than at the next flush. */
    if (!w->want && want(w, EV_READ))
        fail_conn(w, "cannot watch the connection socket");
}

static void idle_input(rec_writer *w)
{
    if (!PQconsumeInput(w->conn) || PQstatus(w->conn) == CONNECTION_BAD) {
        fail_conn(w, "lost the connection");
        return;
    }
    /* Nothing is expected while idle; drop whatever arrived (notices). */
    while (!PQisBusy(w->conn)) {
        PGresult *res = PQgetResult(w->conn);
        if (!res)
            break;
        PQclear(res);
    }
    maybe_flush(w);
}

static void on_io(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    rec_writer *w = arg;
    /* Both events may be armed; whichever fires, the other is stale now. */
    if (w->ev_read)
        event_del(w->ev_read);
    if (w->ev_write)
        event_del(w->ev_write);
    w->want = 0;
    switch (w->st) {
    case W_CONNECTING: connect_step(w); break;
    case W_SETUP:
    case W_FLUSHING: pump(w); break;
    case W_READY: idle_input(w); break;
    default: break;
    }
}

/* ---- public ---- */

rec_writer *rec_writer_new(struct event_base *base, const rec_writer_cfg *cfg, rec_batcher *batcher,
                           const rec_writer_hooks *hooks)
{
    rec_writer *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->base = base;
    w->cfg = *cfg;
    w->dsn = strdup(cfg->dsn ? cfg->dsn : "");
    w->consumer = strdup(cfg->consumer ? cfg->consumer : "recorder");
    w->hooks = *hooks;
    w->batcher = batcher;
    w->io_fd = -1;
    w->st = W_DOWN;
    w->retry_timer = evtimer_new(base, on_retry, w);
    w->op_timer = evtimer_new(base, on_op_timer, w);
    w->run_name = strdup(cfg->run.name ? cfg->run.name : "");
    w->run_seed = cfg->run.seed ? strdup(cfg->run.seed) : NULL;
    w->run_digest = strdup(cfg->run.config_digest ? cfg->run.config_digest : "");
    w->chunk_buf = malloc(COPY_CHUNK);
    w->run_prefix_len =
        (size_t)snprintf(w->run_prefix, sizeof w->run_prefix, "%lld\t", (long long)cfg->run.id);
    if (!w->dsn || !w->consumer || !w->run_name || (cfg->run.seed && !w->run_seed) ||
        !w->run_digest || !w->retry_timer || !w->op_timer || !w->chunk_buf) {
        rec_writer_free(w);
        return NULL;
    }
    w->cfg.dsn = w->dsn;
    w->cfg.consumer = w->consumer;
    w->cfg.run.name = w->run_name;
    w->cfg.run.seed = w->run_seed;
    w->cfg.run.config_digest = w->run_digest;
    if (w->cfg.timeout_ns <= 0)
        w->cfg.timeout_ns = 30 * 1000000000LL;
    if (w->cfg.slow_ns <= 0)
        w->cfg.slow_ns = w->cfg.timeout_ns;
    rec_health_init(&w->health, cfg->backoff_min_ns, cfg->backoff_max_ns, rec_clock_ns());
    return w;
}

void rec_writer_start(rec_writer *w)
{
    if (w->st == W_DOWN && !w->conn)
        start_connect(w);
}

void rec_writer_kick(rec_writer *w) { maybe_flush(w); }

void rec_writer_patch_run(rec_writer *w, const char *hosts_json, const char *plugins_json)
{
    char *h = strdup(hosts_json), *p = strdup(plugins_json);
    if (!h || !p) {
        free(h);
        free(p);
        return;
    }
    free(w->patch_hosts);
    free(w->patch_plugins);
    w->patch_hosts = h;
    w->patch_plugins = p;
    w->patch_gen++;
    maybe_flush(w);
}

uint64_t rec_writer_drain(rec_writer *w, int64_t timeout_ns)
{
    int64_t deadline = rec_clock_ns() + timeout_ns;
    int attempts = 0;
    w->draining = 1;
    while (rec_batcher_pending(w->batcher) > 0) {
        int64_t now = rec_clock_ns();
        if (now >= deadline)
            break;
        if (w->st == W_DOWN) {
            /* Retry at once the first time, then every 100 ms: the loop is
             * not running, so the backoff timer would never fire. */
            if (attempts++) {
                int64_t wait = 100000000;
                if (wait > deadline - now)
                    wait = deadline - now;
                struct timespec nap = {0, (long)wait};
                nanosleep(&nap, NULL);
            }
            start_connect(w);
            continue;
        }
        if (w->st == W_READY) {
            maybe_flush(w);
            continue;
        }
        if (w->st != W_CONNECTING && w->st != W_SETUP && w->st != W_FLUSHING)
            break;
        int64_t left_ms = (deadline - now) / 1000000 + 1;
        struct pollfd p = {
            w->io_fd,
            (short)(((w->want & EV_READ) ? POLLIN : 0) | ((w->want & EV_WRITE) ? POLLOUT : 0)), 0};
        int r = poll(&p, 1, left_ms > 1000 ? 1000 : (int)left_ms);
        if (r < 0 && errno != EINTR)
            break;
        /* The op timer is a libevent timer and the loop is not running:
         * check the timeout here. */
        if (rec_clock_ns() - w->op_start_ns >= w->cfg.timeout_ns) {
            on_op_timer(-1, 0, w);
            continue;
        }
        if (r > 0)
            on_io(w->io_fd, 0, w);
    }
    w->draining = 0;
    return rec_batcher_pending(w->batcher);
}

void rec_writer_free(rec_writer *w)
{
    if (!w)
        return;
    w->st = W_STOPPED;
    close_conn(w);
    if (w->retry_timer)
        event_free(w->retry_timer);
    if (w->op_timer)
        event_free(w->op_timer);
    rec_sql_free(&w->sql);
    free(w->kstored);
    free(w->dsn);
    free(w->consumer);
    free(w->run_name);
    free(w->run_seed);
    free(w->run_digest);
    free(w->patch_hosts);
    free(w->patch_plugins);
    free(w->chunk_buf);
    free(w);
}

const rec_db_health *rec_writer_health(const rec_writer *w) { return &w->health; }

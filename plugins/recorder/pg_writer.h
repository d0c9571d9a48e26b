/*
 * pg_writer.h -- moves sealed batches into PostgreSQL without ever blocking
 * the event loop it runs on: non-blocking libpq (PQconnectStart/Poll,
 * PQsendQuery, PQputCopyData) driven by libevent events on the instance's
 * event base.
 *
 * Per connection it runs the session setup (migrations, staging tables,
 * stored positions); per batch one round trip: COPY straight into the
 * tables, the consumer positions, COMMIT, all in one transaction. COPY
 * stores all of a batch's rows or none: when one of them is stored already
 * (a replay: a source read again, or a retried batch whose COMMIT did reach
 * the server) the COPY fails on the table's key, and the writer rolls back
 * and sends the batch again the staging way: COPY into the staging tables,
 * INSERT ... ON CONFLICT DO NOTHING into the real ones (and, when rows were
 * skipped, a comparison telling replays from conflicts), the positions,
 * COMMIT. After a staged batch that skipped rows the next one is staged at
 * once; one that stored every row sends the next direct again. Any other
 * failure closes the connection, keeps the batch, and retries with backoff;
 * a retried batch inserts nothing twice, whichever way it goes.
 *
 * It knows nothing of the bus, the host or the wire records: it is handed a
 * batcher (batcher.h) and reports through hooks. It is not thread-safe: one
 * writer belongs to one instance on one loop.
 */
#ifndef REC_PG_WRITER_H
#define REC_PG_WRITER_H

#include <stdint.h>

#include "batcher.h"
#include "db_state.h"

struct event_base;

typedef struct rec_writer_cfg {
    const char *dsn;        /* libpq connection string or URI; "" uses the PG* environment */
    const char *consumer;   /* this recorder's name in recorder_offsets */
    rec_run run;            /* every row written goes in with run.id */
    int64_t backoff_min_ns; /* first wait after a failure */
    int64_t backoff_max_ns; /* the wait doubles up to this */
    int64_t slow_ns;        /* a flush running this long marks the database slow */
    int64_t timeout_ns;     /* a connect or flush running this long is abandoned */
} rec_writer_cfg;

/* Rows of a committed batch under keys already stored with other content:
 * a defect upstream (an id reused for a different trade or order event),
 * never written over. */
typedef struct rec_conflict {
    uint64_t count;   /* rows of the batch that differ from the stored ones */
    char key[64];     /* the first one's key, e.g. "trade_id 42" */
    char staged[512]; /* its new version, as PostgreSQL prints a row */
    char stored[512]; /* the stored version */
} rec_conflict;

/* What one committed batch did, per table. Of its rows, `inserted` were
 * new, conflict.count differed from a stored row, and the rest were
 * replays: identical to a stored row, skipped. */
typedef struct rec_commit_report {
    uint32_t rows[REC_TOPICS];
    uint64_t inserted[REC_TOPICS];
    rec_conflict conflict[REC_TOPICS];
    int fallback;       /* its direct COPY met a stored row: it went the staging way */
    int64_t latency_ns; /* send to commit */
} rec_commit_report;

typedef struct rec_writer_hooks {
    void *user;
    /* The database state changed (log it once, update metrics). */
    void (*state_changed)(void *user, const rec_db_health *h);
    /* A batch committed (see rec_commit_report). */
    void (*committed)(void *user, const rec_commit_report *report);
    /* The session setup read the stored Kafka positions (n may be 0: none
     * stored). Runs on every connect, before the state turns UP. */
    void (*kafka_positions)(void *user, const rec_kpos *pos, size_t n);
} rec_writer_hooks;

typedef struct rec_writer rec_writer;

/* Copies cfg's strings. Does not connect yet. NULL if out of memory. */
rec_writer *rec_writer_new(struct event_base *base, const rec_writer_cfg *cfg, rec_batcher *batcher,
                           const rec_writer_hooks *hooks);
/* Starts connecting (asynchronously). */
void rec_writer_start(rec_writer *w);
/* New rows or a timer tick: flush if connected, idle and a flush is due. */
void rec_writer_kick(rec_writer *w);
/* Merges hosts and plugins (JSON object texts, copied) into the run's row
 * (rec_run_patch_sql) once the writer is idle; a newer call before that
 * replaces the pending one. Nothing is sent for run 0. */
void rec_writer_patch_run(rec_writer *w, const char *hosts_json, const char *plugins_json);
/* Blocks (poll, not the loop) until every pending row is committed or
 * timeout_ns passed, reconnecting as needed. For stop: the loop is quiet
 * then, and a clean shutdown should leave nothing behind. Returns the rows
 * still pending. */
uint64_t rec_writer_drain(rec_writer *w, int64_t timeout_ns);
/* Closes the connection and frees; pending rows stay in the batcher. */
void rec_writer_free(rec_writer *w);

const rec_db_health *rec_writer_health(const rec_writer *w);
/* The monotonic clock the writer and batcher use, in ns. */
int64_t rec_clock_ns(void);

#endif

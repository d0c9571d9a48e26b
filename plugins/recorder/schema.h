/*
 * schema.h -- the recorder's tables, their versioned migrations, and the
 * SQL text of the few statements the writer sends.
 *
 * Pure text building: no libpq, no I/O. The writer (pg_writer.c) decides when
 * to send; this file decides what is sent, so the SQL can be unit-tested and
 * read in one place. Column lists here and the row layout in copy_rows.c must
 * agree; a unit test checks the column counts match.
 */
#ifndef REC_SCHEMA_H
#define REC_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

/* One migration: a version (strictly increasing, never reused), a name, and
 * its statements, each run once, in order, in one transaction. */
typedef struct rec_migration {
    int version;
    const char *name;
    const char *const *statements; /* NULL-terminated */
} rec_migration;

/* All migrations in version order; *count receives how many. */
const rec_migration *rec_migrations(size_t *count);

/* The highest version rec_migrations() knows. */
int rec_schema_version(void);

/* Column lists, in COPY row order. */
extern const char rec_trade_columns[];
extern const char rec_order_event_columns[];

/* The staging tables the writer COPYs into (temporary, per session). */
#define REC_TRADES_STAGE "recorder_trades_stage"
#define REC_ORDER_EVENTS_STAGE "recorder_order_events_stage"

/* The topics as named in recorder_offsets. */
enum rec_topic { REC_TOPIC_TRADES = 0, REC_TOPIC_ORDER_EVENTS = 1, REC_TOPICS = 2 };
const char *rec_topic_name(enum rec_topic t);

/* A Kafka position as recorder_kafka_offsets keeps it: the last offset of
 * one topic's partition whose row is in the tables. */
typedef struct rec_kpos {
    int32_t topic; /* enum rec_topic */
    int32_t partition;
    int64_t offset;
} rec_kpos;

/* A growable text buffer; the builders below append to it. */
typedef struct rec_sql {
    char *text;
    size_t len, cap;
    int oom; /* set once an allocation failed; text is then unusable */
} rec_sql;
void rec_sql_free(rec_sql *s);
void rec_sql_append(rec_sql *s, const char *text);
void rec_sql_appendf(rec_sql *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends `text` as a standard SQL string literal ('...' with '' doubled).
 * Returns -1 (appending nothing) if text has a byte PostgreSQL's literal
 * syntax would not keep as is (a control character). */
int rec_sql_literal(rec_sql *s, const char *text);

/* The run the recorder's host belongs to (arb_run_info), as stored. */
typedef struct rec_run {
    int64_t id;            /* below 2^63; 0: the host does not know runs */
    int64_t started_at_ns; /* wall clock */
    const char *name;
    const char *seed;          /* NULL: not known */
    const char *config_digest; /* the recorder's host's configuration */
} rec_run;

/* Takes the migration lock and applies the pending migrations up to and
 * including up_to_version, idempotently. Part of rec_setup_sql; on its own
 * only for tests that need a database at an older version. */
int rec_migrate_sql(rec_sql *s, int up_to_version);

/* Appends the comma-separated `columns` with each name prefixed
 * ("s." gives "s.a, s.b"). */
void rec_sql_columns(rec_sql *s, const char *prefix, const char *columns);

/* Merges hosts and plugins (JSON objects, keyed by host id and by instance)
 * into the run's row: keys present replace their old values, others stay. */
int rec_run_patch_sql(rec_sql *s, int64_t run_id, const char *hosts_json, const char *plugins_json);

/* The session setup sent after every connect, as one implicit transaction:
 * take the migration lock, apply every pending migration idempotently,
 * create the staging tables, and select this consumer's stored positions
 * in this run: two queries return rows, the in-process ones (topic,
 * partition, next_offset: three columns) and the Kafka ones (topic,
 * partition, last_offset, 'kafka': four columns). */
int rec_setup_sql(rec_sql *s, const char *consumer, const rec_run *run);

/* One batch through the staging tables (for batches with rows already
 * stored: see rec_direct_flush_sql): BEGIN, COPY trades (if n_trades), COPY
 * order events (if n_events), per table: insert from the stage as run_id skipping rows whose
 * key is stored (one row: the count inserted), then, only if some were
 * skipped, compare those with the stored rows (no row: none differs; else
 * one row: how many differ, the first one's key, its staged and its stored
 * version as text); store the consumer's positions (and the batch's Kafka
 * positions, if nkpos; a stored Kafka offset never moves back), COMMIT. The
 * statements' results come in this order; rec_flush_plan tells the writer
 * which result is which. */
typedef struct rec_flush_plan {
    int direct;            /* rec_direct_flush_sql: COPY rows led by the run id */
    int n_copies;          /* COPY ... FROM STDIN statements: 0, 1 or 2 */
    int copy_topic[2];     /* which topic feeds each COPY */
    int copy_result[2];    /* result index of each COPY */
    int insert_result[2];  /* result index of the INSERT per topic, or -1 */
    int compare_result[2]; /* result index of the comparison per topic, or -1 */
    int n_results;         /* results expected in all */
} rec_flush_plan;
int rec_flush_sql(rec_sql *s, const char *consumer, int64_t run_id, uint32_t n_trades,
                  uint32_t n_events, const uint64_t next_offset[REC_TOPICS], const rec_kpos *kpos,
                  uint32_t nkpos, rec_flush_plan *plan);

/* One batch the fast way, for the common case of rows none of which is
 * stored yet: BEGIN, COPY straight into trades (if n_trades) and
 * order_events (if n_events), each row led by its run id and a tab (the
 * writer adds it to the batch text as it streams), the positions as in
 * rec_flush_sql, COMMIT. COPY takes every row or none: a row whose key is
 * stored already (a replay, or a conflict) fails the COPY with a unique
 * violation (23505) and with it the transaction, which the writer then rolls
 * back and sends the batch again the rec_flush_sql way. No insert or
 * comparison results: every row of a committed direct batch is new. */
int rec_direct_flush_sql(rec_sql *s, const char *consumer, int64_t run_id, uint32_t n_trades,
                         uint32_t n_events, const uint64_t next_offset[REC_TOPICS],
                         const rec_kpos *kpos, uint32_t nkpos, rec_flush_plan *plan);

#endif

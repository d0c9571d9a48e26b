/*
 * test_recorder_batcher.c -- the recorder's pure parts other than row text:
 * the batcher (size/interval flushing, the memory bound, positions), the
 * database health state machine (one log per state change, backoff), and
 * the schema text (migrations, literals, the flush plan). No database here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../plugins/recorder/batcher.h"
#include "../../plugins/recorder/db_state.h"
#include "../../plugins/recorder/handover.h"
#include "../../plugins/recorder/schema.h"
#include "arb/plugin.h"

#define MS 1000000LL

static int add_row(rec_batcher *b, enum rec_topic t, const char *text, int64_t now)
{
    char *room;
    int rc = rec_batcher_room(b, t, 64, &room);
    if (rc)
        return rc;
    size_t n = strlen(text);
    memcpy(room, text, n);
    rec_batcher_add(b, t, n, now);
    return ARB_OK;
}

/* ---- batcher ---- */

static void batch_is_due_when_it_reaches_batch_rows(void **state)
{
    (void)state;
    rec_batcher b;
    assert_int_equal(0, rec_batcher_init(&b, 3, 1000 * MS));
    add_row(&b, REC_TOPIC_TRADES, "a\n", 0);
    add_row(&b, REC_TOPIC_ORDER_EVENTS, "b\n", 0);
    assert_false(rec_batcher_flush_due(&b, 1, 0));
    add_row(&b, REC_TOPIC_TRADES, "c\n", 0);
    assert_true(rec_batcher_flush_due(&b, 1, 0));
    rec_batcher_free(&b);
}

static void batch_is_due_when_its_first_row_is_interval_old(void **state)
{
    (void)state;
    rec_batcher b;
    assert_int_equal(0, rec_batcher_init(&b, 1000, 100 * MS));
    assert_false(rec_batcher_flush_due(&b, 500 * MS, 0)); /* nothing to flush */
    add_row(&b, REC_TOPIC_TRADES, "a\n", 10 * MS);
    add_row(&b, REC_TOPIC_TRADES, "b\n", 90 * MS);
    assert_false(rec_batcher_flush_due(&b, 109 * MS, 0));
    assert_true(rec_batcher_flush_due(&b, 110 * MS, 0));
    rec_batcher_free(&b);
}

static void forced_flush_takes_any_row_but_never_two_in_flight(void **state)
{
    (void)state;
    rec_batcher b;
    assert_int_equal(0, rec_batcher_init(&b, 1000, 100 * MS));
    add_row(&b, REC_TOPIC_TRADES, "a\n", 0);
    assert_true(rec_batcher_flush_due(&b, 0, 1));
    rec_batcher_seal(&b);
    add_row(&b, REC_TOPIC_TRADES, "b\n", 0);
    assert_false(rec_batcher_flush_due(&b, 0, 1));
    assert_false(rec_batcher_flush_due(&b, 10000 * MS, 0));
    rec_batcher_done(&b);
    assert_true(rec_batcher_flush_due(&b, 0, 1));
    rec_batcher_free(&b);
}

static void sealed_batch_keeps_its_rows_while_new_ones_fill_the_next(void **state)
{
    (void)state;
    rec_batcher b;
    assert_int_equal(0, rec_batcher_init(&b, 2, 100 * MS));
    add_row(&b, REC_TOPIC_TRADES, "t1\n", 0);
    add_row(&b, REC_TOPIC_ORDER_EVENTS, "e1\n", 0);
    const rec_batch *s = rec_batcher_seal(&b);
    add_row(&b, REC_TOPIC_TRADES, "t2\n", 0);
    assert_int_equal(s->count[REC_TOPIC_TRADES], 1);
    assert_int_equal(s->rows[REC_TOPIC_TRADES].len, 3);
    assert_memory_equal(s->rows[REC_TOPIC_TRADES].data, "t1\n", 3);
    assert_memory_equal(s->rows[REC_TOPIC_ORDER_EVENTS].data, "e1\n", 3);
    assert_int_equal(rec_batcher_pending(&b), 3);
    assert_int_equal(b.open->count[REC_TOPIC_TRADES], 1);
    assert_memory_equal(b.open->rows[REC_TOPIC_TRADES].data, "t2\n", 3);
    rec_batcher_done(&b);
    assert_int_equal(rec_batcher_pending(&b), 1);
    rec_batcher_free(&b);
}

static void pending_counts_in_flight_rows_and_nothing_is_refused(void **state)
{
    (void)state;
    rec_batcher b;
    assert_int_equal(0, rec_batcher_init(&b, 2, 100 * MS));
    for (int i = 0; i < 3; i++)
        assert_int_equal(add_row(&b, REC_TOPIC_TRADES, "x\n", 0), ARB_OK);
    rec_batcher_seal(&b); /* the database is away: the batch stays in flight */
    /* The recorder pauses delivery at its high-water mark; the batcher
     * itself takes every row it is given. */
    for (int i = 0; i < 50; i++)
        assert_int_equal(add_row(&b, REC_TOPIC_ORDER_EVENTS, "y\n", 0), ARB_OK);
    assert_int_equal(rec_batcher_pending(&b), 53);
    assert_int_equal(b.accepted[REC_TOPIC_TRADES], 3);
    rec_batcher_done(&b);
    assert_int_equal(rec_batcher_pending(&b), 51);
    rec_batcher_free(&b);
}

/* Each batch keeps the last offset per (topic, partition) of the rows it
 * holds, and only those: the next batch starts with none. */
static void batches_keep_the_last_kafka_offset_per_partition(void **state)
{
    (void)state;
    rec_batcher b;
    assert_int_equal(0, rec_batcher_init(&b, 4, 100 * MS));
    const struct {
        int t, part;
        int64_t off;
    } in[] = {{REC_TOPIC_TRADES, 0, 10},      {REC_TOPIC_TRADES, 1, 7}, {REC_TOPIC_TRADES, 0, 11},
              {REC_TOPIC_ORDER_EVENTS, 0, 3}, {REC_TOPIC_TRADES, 1, 8}, {REC_TOPIC_TRADES, 1, 9}};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        assert_int_equal(add_row(&b, (enum rec_topic)in[i].t, "r\n", 0), ARB_OK);
        assert_int_equal(
            rec_batcher_note_offset(&b, (enum rec_topic)in[i].t, in[i].part, in[i].off), ARB_OK);
    }
    const rec_batch *first = rec_batcher_seal(&b);
    assert_int_equal(rec_batch_rows(first), 4);
    assert_int_equal(first->nkpos, 3);
    assert_int_equal(first->kpos[0].partition, 0);
    assert_int_equal(first->kpos[0].offset, 11);
    assert_int_equal(first->kpos[1].partition, 1);
    assert_int_equal(first->kpos[1].offset, 7);
    assert_int_equal(first->kpos[2].topic, REC_TOPIC_ORDER_EVENTS);
    assert_int_equal(first->kpos[2].offset, 3);
    rec_batcher_done(&b);
    const rec_batch *second = rec_batcher_seal(&b);
    assert_int_equal(rec_batch_rows(second), 2);
    assert_int_equal(second->nkpos, 1);
    assert_int_equal(second->kpos[0].topic, REC_TOPIC_TRADES);
    assert_int_equal(second->kpos[0].partition, 1);
    assert_int_equal(second->kpos[0].offset, 9);
    rec_batcher_done(&b);
    /* A reused batch starts with no positions. */
    assert_int_equal(add_row(&b, REC_TOPIC_TRADES, "r\n", 0), ARB_OK);
    assert_int_equal(b.open->nkpos, 0);
    rec_batcher_free(&b);
}

static void positions_continue_from_the_stored_base(void **state)
{
    (void)state;
    rec_batcher b;
    assert_int_equal(0, rec_batcher_init(&b, 10, 100 * MS));
    add_row(&b, REC_TOPIC_TRADES, "a\n", 0); /* before the database answered */
    uint64_t base[REC_TOPICS] = {1000, 50};
    rec_batcher_set_base(&b, base);
    uint64_t later[REC_TOPICS] = {7, 7};
    rec_batcher_set_base(&b, later); /* a reconnect does not move us back */
    add_row(&b, REC_TOPIC_TRADES, "b\n", 0);
    add_row(&b, REC_TOPIC_ORDER_EVENTS, "c\n", 0);
    rec_batcher_seal(&b);
    add_row(&b, REC_TOPIC_TRADES, "d\n", 0);
    assert_int_equal(rec_batcher_position(&b, REC_TOPIC_TRADES), 1002);
    assert_int_equal(rec_batcher_position(&b, REC_TOPIC_ORDER_EVENTS), 51);
    rec_batcher_done(&b);
    assert_int_equal(rec_batcher_position(&b, REC_TOPIC_TRADES), 1002);
    rec_batcher_seal(&b);
    assert_int_equal(rec_batcher_position(&b, REC_TOPIC_TRADES), 1003);
    rec_batcher_free(&b);
}

static void adopted_rows_count_as_accepted(void **state)
{
    (void)state;
    rec_batcher b;
    assert_int_equal(0, rec_batcher_init(&b, 1, 100 * MS));
    assert_int_equal(rec_batcher_adopt(&b, REC_TOPIC_TRADES, "a\nb\nc\n", 6, 5), ARB_OK);
    assert_int_equal(rec_batcher_pending(&b), 3);
    assert_int_equal(b.accepted[REC_TOPIC_TRADES], 3);
    assert_int_equal(rec_batcher_oldest_ns(&b), 5);
    rec_batcher_free(&b);
}

static void steady_state_reuses_two_batches(void **state)
{
    (void)state;
    rec_batcher b;
    assert_int_equal(0, rec_batcher_init(&b, 1, 0));
    const rec_batch *seen[2] = {NULL, NULL};
    for (int i = 0; i < 6; i++) {
        add_row(&b, REC_TOPIC_TRADES, "a\n", 0);
        const rec_batch *s = rec_batcher_seal(&b);
        if (i < 2)
            seen[i] = s;
        else
            assert_true(s == seen[0] || s == seen[1]);
        rec_batcher_done(&b);
    }
    assert_ptr_not_equal(seen[0], seen[1]);
    rec_batcher_free(&b);
}

static void backlog_goes_out_in_batches_of_batch_rows_oldest_first(void **state)
{
    (void)state;
    rec_batcher b;
    assert_int_equal(0, rec_batcher_init(&b, 2, 100 * MS));
    const char *rows[] = {"1\n", "2\n", "3\n", "4\n", "5\n"};
    for (int i = 0; i < 5; i++)
        add_row(&b, REC_TOPIC_TRADES, rows[i], i);
    assert_int_equal(rec_batcher_oldest_ns(&b), 0);
    const char *want[] = {"1\n2\n", "3\n4\n", "5\n"};
    for (int k = 0; k < 3; k++) {
        assert_true(rec_batcher_flush_due(&b, 1, k == 2));
        const rec_batch *s = rec_batcher_seal(&b);
        assert_int_equal(s->rows[REC_TOPIC_TRADES].len, strlen(want[k]));
        assert_memory_equal(s->rows[REC_TOPIC_TRADES].data, want[k], strlen(want[k]));
        assert_int_equal(rec_batcher_position(&b, REC_TOPIC_TRADES), k < 2 ? 2 * (k + 1) : 5);
        rec_batcher_done(&b);
    }
    assert_int_equal(rec_batcher_pending(&b), 0);
    assert_int_equal(rec_batcher_oldest_ns(&b), -1);
    rec_batcher_free(&b);
}

/* ---- hot reload state ---- */

static void handover_carries_held_rows_and_their_position(void **state)
{
    (void)state;
    rec_batcher old;
    assert_int_equal(0, rec_batcher_init(&old, 2, 100 * MS));
    uint64_t base[REC_TOPICS] = {40, 7};
    rec_batcher_set_base(&old, base);
    add_row(&old, REC_TOPIC_TRADES, "t1\n", 0);
    add_row(&old, REC_TOPIC_TRADES, "t2\n", 0);
    rec_batcher_seal(&old);
    rec_batcher_done(&old); /* committed: position 42 */
    add_row(&old, REC_TOPIC_TRADES, "t3\n", 0);
    add_row(&old, REC_TOPIC_TRADES, "t4\n", 0);
    rec_batcher_seal(&old); /* in flight, not committed */
    add_row(&old, REC_TOPIC_TRADES, "t5\n", 0);
    add_row(&old, REC_TOPIC_ORDER_EVENTS, "e1\n", 0);
    void *bytes;
    size_t len;
    assert_int_equal(rec_handover_save(&old, &bytes, &len), ARB_OK);

    rec_batcher nw;
    assert_int_equal(0, rec_batcher_init(&nw, 10, 100 * MS));
    assert_int_equal(rec_handover_restore(&nw, bytes, len, 0), ARB_OK);
    assert_int_equal(rec_batcher_pending(&nw), 4);
    assert_true(nw.base_known);
    const rec_batch *s = rec_batcher_seal(&nw);
    assert_int_equal(s->rows[REC_TOPIC_TRADES].len, 9);
    assert_memory_equal(s->rows[REC_TOPIC_TRADES].data, "t3\nt4\nt5\n", 9);
    assert_memory_equal(s->rows[REC_TOPIC_ORDER_EVENTS].data, "e1\n", 3);
    /* The same numbering as the old build would have used. */
    assert_int_equal(rec_batcher_position(&nw, REC_TOPIC_TRADES), 45);
    assert_int_equal(rec_batcher_position(&nw, REC_TOPIC_ORDER_EVENTS), 8);
    free(bytes);
    rec_batcher_free(&old);
    rec_batcher_free(&nw);
}

static void handover_refuses_malformed_state_and_adopts_nothing(void **state)
{
    (void)state;
    rec_batcher old;
    assert_int_equal(0, rec_batcher_init(&old, 10, 100 * MS));
    add_row(&old, REC_TOPIC_TRADES, "a\n", 0);
    add_row(&old, REC_TOPIC_TRADES, "b\n", 0);
    void *bytes;
    size_t len;
    assert_int_equal(rec_handover_save(&old, &bytes, &len), ARB_OK);
    uint8_t *p = bytes;
    rec_batcher nw;
    assert_int_equal(0, rec_batcher_init(&nw, 10, 100 * MS));
    assert_int_equal(rec_handover_restore(&nw, bytes, len - 1, 0), ARB_EREFUSED); /* cut */
    p[7] = 2; /* another version */
    assert_int_equal(rec_handover_restore(&nw, bytes, len, 0), ARB_EREFUSED);
    p[7] = REC_HANDOVER_VERSION;
    p[16 + 8] = 3; /* claims 3 rows, holds 2 lines */
    assert_int_equal(rec_handover_restore(&nw, bytes, len, 0), ARB_EREFUSED);
    assert_int_equal(rec_batcher_pending(&nw), 0);
    free(bytes);
    rec_batcher_free(&old);
    rec_batcher_free(&nw);
}

/* ---- database health ---- */

static void an_outage_changes_state_once_however_many_retries_fail(void **state)
{
    (void)state;
    rec_db_health h;
    rec_health_init(&h, 100 * MS, 5000 * MS, 0);
    assert_true(rec_health_ok(&h, 1));
    int64_t retry;
    assert_true(rec_health_failed(&h, "connection refused\n", 2, &retry));
    assert_string_equal(h.error, "connection refused");
    for (int i = 0; i < 20; i++)
        assert_false(rec_health_failed(&h, "connection refused", 3 + i, &retry));
    assert_int_equal(h.outages, 1);
    assert_int_equal(h.state, REC_DB_DOWN);
    assert_true(rec_health_ok(&h, 100));
    assert_false(rec_health_ok(&h, 101));
    assert_int_equal(h.state, REC_DB_UP);
}

static void backoff_doubles_up_to_the_cap_and_resets_on_success(void **state)
{
    (void)state;
    rec_db_health h;
    rec_health_init(&h, 100 * MS, 1000 * MS, 0);
    int64_t want[] = {100, 200, 400, 800, 1000, 1000};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int64_t retry;
        rec_health_failed(&h, "x", 0, &retry);
        assert_int_equal(retry, want[i] * MS);
    }
    rec_health_ok(&h, 0);
    int64_t retry;
    rec_health_failed(&h, "x", 0, &retry);
    assert_int_equal(retry, 100 * MS);
}

static void only_an_up_database_can_become_slow(void **state)
{
    (void)state;
    rec_db_health h;
    rec_health_init(&h, 1, 2, 0);
    assert_false(rec_health_slow(&h, 1)); /* starting */
    rec_health_ok(&h, 1);
    assert_true(rec_health_slow(&h, 2));
    assert_false(rec_health_slow(&h, 3));
    assert_int_equal(h.state, REC_DB_SLOW);
    assert_true(rec_health_ok(&h, 4)); /* the flush finished */
    int64_t retry;
    rec_health_failed(&h, "x", 5, &retry);
    assert_false(rec_health_slow(&h, 6));
    assert_string_equal(rec_db_state_name(h.state), "down");
}

static void multi_line_errors_become_one_line(void **state)
{
    (void)state;
    rec_db_health h;
    rec_health_init(&h, 1, 2, 0);
    int64_t retry;
    rec_health_failed(&h, "FATAL: terminating\nserver closed \tthe connection\n", 1, &retry);
    assert_string_equal(h.error, "FATAL: terminating server closed the connection");
}

/* ---- schema text ---- */

static void migrations_have_increasing_versions_and_safe_quoting(void **state)
{
    (void)state;
    size_t n;
    const rec_migration *m = rec_migrations(&n);
    assert_true(n >= 1);
    for (size_t i = 0; i < n; i++) {
        /* Increasing, not contiguous: a number may be another branch's. */
        assert_true(m[i].version > (i ? m[i - 1].version : 0));
        assert_non_null(m[i].statements[0]);
        for (const char *const *st = m[i].statements; *st; st++) {
            /* The setup wraps statements in these dollar quotes. */
            assert_null(strstr(*st, "$stmt$"));
            assert_null(strstr(*st, "$recorder$"));
        }
    }
    assert_int_equal(rec_schema_version(), m[n - 1].version);
}

static void setup_guards_each_migration_and_selects_this_consumer(void **state)
{
    (void)state;
    rec_sql s = {0};
    rec_run run = {.id = 5, .name = "", .config_digest = ""};
    assert_int_equal(rec_setup_sql(&s, "rec'1", &run), 0);
    assert_non_null(strstr(s.text, "pg_advisory_xact_lock("));
    size_t n;
    const rec_migration *m = rec_migrations(&n);
    for (size_t i = 0; i < n; i++) {
        char guard[96];
        snprintf(guard, sizeof guard, "WHERE version = %d) THEN", m[i].version);
        assert_non_null(strstr(s.text, guard));
    }
    /* Positions are this run's only. */
    assert_non_null(
        strstr(s.text, "FROM recorder_offsets WHERE run_id = 5 AND consumer = 'rec''1';"));
    assert_non_null(
        strstr(s.text, "FROM recorder_kafka_offsets WHERE run_id = 5 AND consumer = 'rec''1';"));
    /* The lock comes before anything else touches the schema. */
    assert_true(strstr(s.text, "pg_advisory_xact_lock") <
                strstr(s.text, "CREATE TABLE IF NOT EXISTS schema_migrations"));
    rec_sql_free(&s);
}

static void literal_doubles_quotes_and_refuses_control_characters(void **state)
{
    (void)state;
    rec_sql s = {0};
    assert_int_equal(rec_sql_literal(&s, "it's"), 0);
    assert_string_equal(s.text, "'it''s'");
    assert_int_equal(rec_sql_literal(&s, "a\nb"), -1);
    assert_string_equal(s.text, "'it''s'");
    rec_sql_free(&s);
}

static void flush_plan_numbers_results_for_each_mix_of_topics(void **state)
{
    (void)state;
    uint64_t pos[REC_TOPICS] = {10, 20};
    rec_flush_plan p;
    rec_sql s = {0};

    assert_int_equal(rec_flush_sql(&s, "rec", 9, 5, 0, pos, NULL, 0, &p), 0);
    assert_int_equal(p.n_copies, 1);
    assert_int_equal(p.copy_topic[0], REC_TOPIC_TRADES);
    assert_int_equal(p.insert_result[REC_TOPIC_TRADES], 2);
    assert_int_equal(p.compare_result[REC_TOPIC_TRADES], 3);
    assert_int_equal(p.insert_result[REC_TOPIC_ORDER_EVENTS], -1);
    assert_int_equal(p.compare_result[REC_TOPIC_ORDER_EVENTS], -1);
    assert_int_equal(p.n_results, 6); /* BEGIN COPY INSERT compare offsets COMMIT */
    assert_null(strstr(s.text, "order_events ("));
    assert_non_null(strstr(s.text, "(9, 'rec', 'trade_executed', 0, 10)"));
    assert_non_null(strstr(s.text, "INSERT INTO trades (run_id, trade_id, "));
    assert_non_null(strstr(s.text, "SELECT 9, trade_id, "));
    assert_non_null(strstr(s.text, "'order_events', 0, 20)"));

    s.len = 0;
    assert_int_equal(rec_flush_sql(&s, "rec", 9, 0, 3, pos, NULL, 0, &p), 0);
    assert_int_equal(p.n_copies, 1);
    assert_int_equal(p.copy_topic[0], REC_TOPIC_ORDER_EVENTS);
    assert_int_equal(p.insert_result[REC_TOPIC_ORDER_EVENTS], 2);
    assert_int_equal(p.compare_result[REC_TOPIC_ORDER_EVENTS], 3);
    assert_int_equal(p.n_results, 6);

    s.len = 0;
    assert_int_equal(rec_flush_sql(&s, "rec", 9, 1, 1, pos, NULL, 0, &p), 0);
    assert_int_equal(p.n_copies, 2);
    assert_int_equal(p.insert_result[REC_TOPIC_TRADES], 3);
    assert_int_equal(p.compare_result[REC_TOPIC_TRADES], 4);
    assert_int_equal(p.insert_result[REC_TOPIC_ORDER_EVENTS], 5);
    assert_int_equal(p.compare_result[REC_TOPIC_ORDER_EVENTS], 6);
    assert_int_equal(p.n_results, 9);
    const char *copy = strstr(s.text, "COPY");
    const char *insert = strstr(s.text, "INSERT INTO trades");
    const char *commit = strstr(s.text, "COMMIT;");
    assert_true(copy && insert && commit && copy < insert && insert < commit);
    assert_non_null(strstr(s.text, "ON CONFLICT DO NOTHING"));
    /* The comparison runs only when rows were skipped, over this run's rows. */
    assert_non_null(
        strstr(s.text, "WHERE current_setting('arb_recorder.inserted_trades')::bigint < 1 AND "));
    assert_non_null(strstr(s.text, "JOIN trades d ON d.run_id = 9 AND d.trade_id = s.trade_id"));
    assert_non_null(strstr(s.text, "IS DISTINCT FROM ROW(d.trade_id, d.venue, "));
    assert_null(strstr(s.text, "recorder_kafka_offsets"));

    /* Kafka positions: one more statement, before COMMIT, never moving a
     * stored offset back. */
    s.len = 0;
    rec_kpos k[2] = {{REC_TOPIC_TRADES, 0, 41}, {REC_TOPIC_ORDER_EVENTS, 3, 7}};
    assert_int_equal(rec_flush_sql(&s, "rec", 9, 1, 1, pos, k, 2, &p), 0);
    assert_int_equal(p.n_results, 10);
    assert_int_equal(p.insert_result[REC_TOPIC_TRADES], 3);
    const char *kafka = strstr(s.text, "INSERT INTO recorder_kafka_offsets");
    commit = strstr(s.text, "COMMIT;");
    assert_true(kafka && commit && kafka < commit);
    assert_non_null(
        strstr(kafka, "(9, 'rec', 'trade_executed', 0, 41), (9, 'rec', 'order_events', 3, 7)"));
    assert_non_null(strstr(kafka, "GREATEST(o.last_offset, EXCLUDED.last_offset)"));
    rec_sql_free(&s);
}

/* The direct flush: the rows straight into the tables, each led by the
 * run id the writer adds, no staging, no comparison; positions as in the
 * staging flush. */
static void direct_flush_copies_into_the_tables_with_the_run(void **state)
{
    (void)state;
    uint64_t pos[REC_TOPICS] = {10, 20};
    rec_flush_plan p;
    rec_sql s = {0};

    assert_int_equal(rec_direct_flush_sql(&s, "rec", 9, 5, 0, pos, NULL, 0, &p), 0);
    assert_true(p.direct);
    assert_int_equal(p.n_copies, 1);
    assert_int_equal(p.copy_topic[0], REC_TOPIC_TRADES);
    assert_int_equal(p.copy_result[0], 1);
    assert_int_equal(p.insert_result[REC_TOPIC_TRADES], -1);
    assert_int_equal(p.compare_result[REC_TOPIC_TRADES], -1);
    assert_int_equal(p.n_results, 4); /* BEGIN COPY offsets COMMIT */
    assert_non_null(strstr(s.text, "COPY trades (run_id, trade_id, venue, "));
    assert_null(strstr(s.text, "order_events ("));
    assert_null(strstr(s.text, REC_TRADES_STAGE));
    assert_null(strstr(s.text, "ON CONFLICT DO NOTHING"));
    assert_non_null(strstr(s.text, "(9, 'rec', 'trade_executed', 0, 10)"));

    s.len = 0;
    rec_kpos k[1] = {{REC_TOPIC_ORDER_EVENTS, 3, 7}};
    assert_int_equal(rec_direct_flush_sql(&s, "rec", 9, 1, 1, pos, k, 1, &p), 0);
    assert_int_equal(p.n_copies, 2);
    assert_int_equal(p.copy_topic[1], REC_TOPIC_ORDER_EVENTS);
    assert_int_equal(p.copy_result[0], 1);
    assert_int_equal(p.copy_result[1], 2);
    assert_int_equal(p.n_results, 6); /* BEGIN COPY COPY offsets kafka COMMIT */
    const char *copy = strstr(s.text, "COPY order_events (run_id, order_id, seq, ");
    const char *kafka = strstr(s.text, "INSERT INTO recorder_kafka_offsets");
    const char *commit = strstr(s.text, "COMMIT;");
    assert_true(copy && kafka && commit && copy < kafka && kafka < commit);

    /* The staging flush says it is not direct. */
    s.len = 0;
    assert_int_equal(rec_flush_sql(&s, "rec", 9, 1, 1, pos, NULL, 0, &p), 0);
    assert_false(p.direct);
    assert_int_equal(p.copy_result[0], 1);
    assert_int_equal(p.copy_result[1], 2);
    rec_sql_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(batch_is_due_when_it_reaches_batch_rows),
        cmocka_unit_test(batch_is_due_when_its_first_row_is_interval_old),
        cmocka_unit_test(forced_flush_takes_any_row_but_never_two_in_flight),
        cmocka_unit_test(sealed_batch_keeps_its_rows_while_new_ones_fill_the_next),
        cmocka_unit_test(pending_counts_in_flight_rows_and_nothing_is_refused),
        cmocka_unit_test(batches_keep_the_last_kafka_offset_per_partition),
        cmocka_unit_test(positions_continue_from_the_stored_base),
        cmocka_unit_test(adopted_rows_count_as_accepted),
        cmocka_unit_test(steady_state_reuses_two_batches),
        cmocka_unit_test(backlog_goes_out_in_batches_of_batch_rows_oldest_first),
        cmocka_unit_test(handover_carries_held_rows_and_their_position),
        cmocka_unit_test(handover_refuses_malformed_state_and_adopts_nothing),
        cmocka_unit_test(an_outage_changes_state_once_however_many_retries_fail),
        cmocka_unit_test(backoff_doubles_up_to_the_cap_and_resets_on_success),
        cmocka_unit_test(only_an_up_database_can_become_slow),
        cmocka_unit_test(multi_line_errors_become_one_line),
        cmocka_unit_test(migrations_have_increasing_versions_and_safe_quoting),
        cmocka_unit_test(setup_guards_each_migration_and_selects_this_consumer),
        cmocka_unit_test(literal_doubles_quotes_and_refuses_control_characters),
        cmocka_unit_test(flush_plan_numbers_results_for_each_mix_of_topics),
        cmocka_unit_test(direct_flush_copies_into_the_tables_with_the_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

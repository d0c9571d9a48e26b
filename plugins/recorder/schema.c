/*
 * schema.c -- the recorder's migrations and statement texts (see schema.h).
 *
 * Migrations only ever get appended: a released version is never edited,
 * because databases out there already ran it. Each one runs inside a DO
 * block guarded by its row in schema_migrations, all of them in the same
 * implicit transaction as an advisory lock, so two recorders starting at once
 * against an empty database cannot both create the tables.
 */
#include "schema.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* pg_advisory_xact_lock key shared by every recorder ("arbrec" in ASCII). */
#define REC_MIGRATION_LOCK "107083033813347"

const char rec_trade_columns[] =
    "trade_id, venue, symbol, executed_at, ts_ns, price, qty, price_decimals, qty_decimals, "
    "aggressor, buy_order_id, sell_order_id, buy_account, sell_account, book_seq";

const char rec_order_event_columns[] =
    "order_id, seq, venue, symbol, account, event_at, ts_ns, kind, reason, side, order_type, "
    "tif, post_only, price, qty, leaves_qty, filled_qty, last_px, last_qty, price_decimals, "
    "qty_decimals, trade_id, client_ref";

/* Version 1: the tables and the indexes for the queries the README shows:
 * an instrument's trades over time, an account's orders over time, one
 * order's history (the primary key of order_events leads with order_id). */
static const char *const m1_tables[] = {
    "CREATE TABLE trades ("
    " trade_id bigint PRIMARY KEY,"
    " venue text NOT NULL,"
    " symbol text NOT NULL,"
    " executed_at timestamptz NOT NULL,"
    " ts_ns bigint NOT NULL,"
    " price bigint NOT NULL CHECK (price > 0),"
    " qty bigint NOT NULL CHECK (qty > 0),"
    " price_decimals smallint,"
    " qty_decimals smallint,"
    " aggressor text NOT NULL CHECK (aggressor IN ('buy', 'sell')),"
    " buy_order_id bigint NOT NULL,"
    " sell_order_id bigint NOT NULL,"
    " buy_account bigint NOT NULL,"
    " sell_account bigint NOT NULL,"
    " book_seq bigint NOT NULL)",
    "COMMENT ON COLUMN trades.price IS "
    "'integer units: the price is price / 10^price_decimals (see arb_decimal)'",
    "CREATE INDEX trades_instrument_time_idx ON trades (venue, symbol, executed_at)",
    "CREATE TABLE order_events ("
    " order_id bigint NOT NULL,"
    " seq bigint NOT NULL,"
    " venue text,"
    " symbol text,"
    " account bigint NOT NULL,"
    " event_at timestamptz NOT NULL,"
    " ts_ns bigint NOT NULL,"
    " kind text NOT NULL,"
    " reason text,"
    " side text,"
    " order_type text,"
    " tif text,"
    " post_only boolean NOT NULL,"
    " price bigint NOT NULL,"
    " qty bigint NOT NULL,"
    " leaves_qty bigint NOT NULL,"
    " filled_qty bigint NOT NULL,"
    " last_px bigint NOT NULL,"
    " last_qty bigint NOT NULL,"
    " price_decimals smallint,"
    " qty_decimals smallint,"
    " trade_id bigint,"
    " client_ref bigint NOT NULL,"
    " PRIMARY KEY (order_id, seq))",
    "CREATE INDEX order_events_account_time_idx ON order_events (account, event_at)",
    "CREATE TABLE recorder_offsets ("
    " consumer text NOT NULL,"
    " topic text NOT NULL,"
    " partition integer NOT NULL,"
    " next_offset bigint NOT NULL,"
    " updated_at timestamptz NOT NULL DEFAULT now(),"
    " PRIMARY KEY (consumer, topic, partition))",
    NULL,
};

/* Version 2: exact decimals for people and reports. */
static const char *const m2_decimal_views[] = {
    "CREATE FUNCTION arb_decimal(units bigint, decimals smallint) RETURNS numeric"
    " LANGUAGE sql IMMUTABLE PARALLEL SAFE"
    " AS $fn$SELECT round(units::numeric / power(10::numeric, decimals), decimals)$fn$",
    "CREATE VIEW trades_decimal AS SELECT trade_id, venue, symbol, executed_at,"
    " arb_decimal(price, price_decimals) AS price, arb_decimal(qty, qty_decimals) AS qty,"
    " aggressor, buy_order_id, sell_order_id, buy_account, sell_account, book_seq FROM trades",
    NULL,
};

/* Version 3: positions of records that came through Kafka, one row per
 * topic partition: the last offset whose row is in the tables. */
static const char *const m3_kafka_offsets[] = {
    "CREATE TABLE recorder_kafka_offsets ("
    " consumer text NOT NULL,"
    " topic text NOT NULL,"
    " partition integer NOT NULL CHECK (partition >= 0),"
    " last_offset bigint NOT NULL CHECK (last_offset >= 0),"
    " updated_at timestamptz NOT NULL DEFAULT now(),"
    " PRIMARY KEY (consumer, topic, partition))",
    NULL,
};

static const rec_migration migrations[] = {
    {1, "trades, order events and consumer offsets", m1_tables},
    {2, "exact decimal view of trades", m2_decimal_views},
    {3, "kafka positions per topic partition", m3_kafka_offsets},
};

const rec_migration *rec_migrations(size_t *count)
{
    *count = sizeof migrations / sizeof migrations[0];
    return migrations;
}

int rec_schema_version(void)
{
    return migrations[sizeof migrations / sizeof migrations[0] - 1].version;
}

const char *rec_topic_name(enum rec_topic t)
{
    return t == REC_TOPIC_TRADES ? "trade_executed" : "order_events";
}

/* ---- text buffer ---- */

void rec_sql_free(rec_sql *s)
{
    free(s->text);
    memset(s, 0, sizeof *s);
}

static int reserve(rec_sql *s, size_t more)
{
    if (s->oom)
        return -1;
    if (s->len + more + 1 <= s->cap)
        return 0;
    size_t cap = s->cap ? s->cap : 1024;
    while (cap < s->len + more + 1)
        cap *= 2;
    char *grown = realloc(s->text, cap);
    if (!grown) {
        s->oom = 1;
        return -1;
    }
    s->text = grown;
    s->cap = cap;
    return 0;
}

void rec_sql_append(rec_sql *s, const char *text)
{
    size_t n = strlen(text);
    if (reserve(s, n))
        return;
    memcpy(s->text + s->len, text, n + 1);
    s->len += n;
}

void rec_sql_appendf(rec_sql *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || reserve(s, (size_t)n)) {
        s->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(s->text + s->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    s->len += (size_t)n;
}

int rec_sql_literal(rec_sql *s, const char *text)
{
    size_t quotes = 0;
    for (const char *p = text; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return -1;
        quotes += *p == '\'';
    }
    size_t n = strlen(text);
    if (reserve(s, n + quotes + 2))
        return -1;
    char *o = s->text + s->len;
    *o++ = '\'';
    for (const char *p = text; *p; p++) {
        if (*p == '\'')
            *o++ = '\'';
        *o++ = *p;
    }
    *o++ = '\'';
    *o = 0;
    s->len = (size_t)(o - s->text);
    return 0;
}

/* ---- statements ---- */

int rec_setup_sql(rec_sql *s, const char *consumer)
{
    rec_sql_append(s, "SELECT pg_advisory_xact_lock(" REC_MIGRATION_LOCK ");\n"
                      "CREATE TABLE IF NOT EXISTS schema_migrations ("
                      "version integer PRIMARY KEY, name text NOT NULL, "
                      "applied_at timestamptz NOT NULL DEFAULT now());\n");
    size_t n;
    const rec_migration *m = rec_migrations(&n);
    for (size_t i = 0; i < n; i++) {
        rec_sql_appendf(s,
                        "DO $recorder$ BEGIN\n"
                        "IF NOT EXISTS (SELECT 1 FROM schema_migrations WHERE version = %d) "
                        "THEN\n",
                        m[i].version);
        for (const char *const *st = m[i].statements; *st; st++)
            rec_sql_appendf(s, "EXECUTE $stmt$%s$stmt$;\n", *st);
        rec_sql_appendf(s, "INSERT INTO schema_migrations (version, name) VALUES (%d, ",
                        m[i].version);
        if (rec_sql_literal(s, m[i].name))
            return -1;
        rec_sql_append(s, ");\nEND IF;\nEND $recorder$;\n");
    }
    rec_sql_append(s, "CREATE TEMP TABLE IF NOT EXISTS " REC_TRADES_STAGE
                      " (LIKE trades) ON COMMIT DELETE ROWS;\n"
                      "CREATE TEMP TABLE IF NOT EXISTS " REC_ORDER_EVENTS_STAGE
                      " (LIKE order_events) ON COMMIT DELETE ROWS;\n"
                      "SELECT topic, partition, next_offset FROM recorder_offsets "
                      "WHERE consumer = ");
    if (rec_sql_literal(s, consumer))
        return -1;
    rec_sql_append(s, ";\nSELECT topic, partition, last_offset, 'kafka' FROM "
                      "recorder_kafka_offsets WHERE consumer = ");
    if (rec_sql_literal(s, consumer))
        return -1;
    rec_sql_append(s, ";\n");
    return s->oom ? -1 : 0;
}

int rec_flush_sql(rec_sql *s, const char *consumer, uint32_t n_trades, uint32_t n_events,
                  const uint64_t next_offset[REC_TOPICS], const rec_kpos *kpos, uint32_t nkpos,
                  rec_flush_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    plan->insert_result[0] = plan->insert_result[1] = -1;
    int result = 0;
    rec_sql_append(s, "BEGIN;\n");
    result++;
    if (n_trades) {
        rec_sql_appendf(s, "COPY " REC_TRADES_STAGE " (%s) FROM STDIN;\n", rec_trade_columns);
        plan->copy_topic[plan->n_copies++] = REC_TOPIC_TRADES;
        result++;
    }
    if (n_events) {
        rec_sql_appendf(s, "COPY " REC_ORDER_EVENTS_STAGE " (%s) FROM STDIN;\n",
                        rec_order_event_columns);
        plan->copy_topic[plan->n_copies++] = REC_TOPIC_ORDER_EVENTS;
        result++;
    }
    if (n_trades) {
        rec_sql_appendf(s,
                        "INSERT INTO trades (%s) SELECT %s FROM " REC_TRADES_STAGE
                        " ON CONFLICT DO NOTHING;\n",
                        rec_trade_columns, rec_trade_columns);
        plan->insert_result[REC_TOPIC_TRADES] = result++;
    }
    if (n_events) {
        rec_sql_appendf(s,
                        "INSERT INTO order_events (%s) SELECT %s FROM " REC_ORDER_EVENTS_STAGE
                        " ON CONFLICT DO NOTHING;\n",
                        rec_order_event_columns, rec_order_event_columns);
        plan->insert_result[REC_TOPIC_ORDER_EVENTS] = result++;
    }
    rec_sql_append(s, "INSERT INTO recorder_offsets (consumer, topic, partition, next_offset) "
                      "VALUES ");
    for (int t = 0; t < REC_TOPICS; t++) {
        rec_sql_append(s, t ? ", (" : "(");
        if (rec_sql_literal(s, consumer))
            return -1;
        rec_sql_appendf(s, ", '%s', 0, %lld)", rec_topic_name((enum rec_topic)t),
                        (long long)next_offset[t]);
    }
    rec_sql_append(s, " ON CONFLICT (consumer, topic, partition) DO UPDATE SET "
                      "next_offset = EXCLUDED.next_offset, updated_at = now();\n");
    result++;
    if (nkpos) {
        /* GREATEST: after a rebalance another recorder of the group may
         * have stored a later offset of the partition; rows between are in
         * the tables, and going back would only replay them. */
        rec_sql_append(s, "INSERT INTO recorder_kafka_offsets AS o (consumer, topic, partition, "
                          "last_offset) VALUES ");
        for (uint32_t i = 0; i < nkpos; i++) {
            rec_sql_append(s, i ? ", (" : "(");
            if (rec_sql_literal(s, consumer))
                return -1;
            rec_sql_appendf(s, ", '%s', %d, %lld)", rec_topic_name((enum rec_topic)kpos[i].topic),
                            (int)kpos[i].partition, (long long)kpos[i].offset);
        }
        rec_sql_append(s, " ON CONFLICT (consumer, topic, partition) DO UPDATE SET last_offset = "
                          "GREATEST(o.last_offset, EXCLUDED.last_offset), updated_at = now();\n");
        result++;
    }
    rec_sql_append(s, "COMMIT;\n");
    result++;
    plan->n_results = result;
    return s->oom ? -1 : 0;
}

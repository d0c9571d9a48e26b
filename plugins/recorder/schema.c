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
    "aggressor, buy_order_id, sell_order_id, buy_account, sell_account, book_seq, buy_fee, "
    "sell_fee";

const char rec_order_event_columns[] =
    "order_id, seq, venue, symbol, account, event_at, ts_ns, kind, reason, side, order_type, "
    "tif, post_only, price, qty, leaves_qty, filled_qty, last_px, last_qty, price_decimals, "
    "qty_decimals, trade_id, client_ref, fee, liquidity";

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

/* Version 4: every row carries its run (arb_run_info.id), so ids that repeat
 * across runs (a book's trade_seq starts at 1 again) are different rows, not
 * conflicts. Rows stored before runs existed belong to run 0. Positions are
 * per run too: a new run (say, a fresh broker) has none stored and reads its
 * topics from the beginning, never at offsets of another run's log. The
 * README's queries filter by run, so the run leads every index. */
static const char *const m4_run_ids[] = {
    "ALTER TABLE trades ADD COLUMN run_id bigint NOT NULL DEFAULT 0",
    "ALTER TABLE trades ALTER COLUMN run_id DROP DEFAULT",
    "COMMENT ON COLUMN trades.run_id IS "
    "'the run (runs.run_id) the trade belongs to; 0: recorded before runs existed'",
    "ALTER TABLE trades DROP CONSTRAINT trades_pkey",
    "ALTER TABLE trades ADD CONSTRAINT trades_pkey PRIMARY KEY (run_id, trade_id)",
    "DROP INDEX trades_instrument_time_idx",
    "CREATE INDEX trades_instrument_time_idx ON trades (run_id, venue, symbol, executed_at)",
    "ALTER TABLE order_events ADD COLUMN run_id bigint NOT NULL DEFAULT 0",
    "ALTER TABLE order_events ALTER COLUMN run_id DROP DEFAULT",
    "ALTER TABLE order_events DROP CONSTRAINT order_events_pkey",
    "ALTER TABLE order_events ADD CONSTRAINT order_events_pkey PRIMARY KEY (run_id, order_id, seq)",
    "DROP INDEX order_events_account_time_idx",
    "CREATE INDEX order_events_account_time_idx ON order_events (run_id, account, event_at)",
    "ALTER TABLE recorder_offsets ADD COLUMN run_id bigint NOT NULL DEFAULT 0",
    "ALTER TABLE recorder_offsets ALTER COLUMN run_id DROP DEFAULT",
    "ALTER TABLE recorder_offsets DROP CONSTRAINT recorder_offsets_pkey",
    "ALTER TABLE recorder_offsets ADD CONSTRAINT recorder_offsets_pkey "
    "PRIMARY KEY (run_id, consumer, topic, partition)",
    "ALTER TABLE recorder_kafka_offsets ADD COLUMN run_id bigint NOT NULL DEFAULT 0",
    "ALTER TABLE recorder_kafka_offsets ALTER COLUMN run_id DROP DEFAULT",
    "ALTER TABLE recorder_kafka_offsets DROP CONSTRAINT recorder_kafka_offsets_pkey",
    "ALTER TABLE recorder_kafka_offsets ADD CONSTRAINT recorder_kafka_offsets_pkey "
    "PRIMARY KEY (run_id, consumer, topic, partition)",
    /* CREATE OR REPLACE VIEW may only add columns at the end. */
    "CREATE OR REPLACE VIEW trades_decimal AS SELECT trade_id, venue, symbol, executed_at,"
    " arb_decimal(price, price_decimals) AS price, arb_decimal(qty, qty_decimals) AS qty,"
    " aggressor, buy_order_id, sell_order_id, buy_account, sell_account, book_seq, run_id"
    " FROM trades",
    NULL,
};

/* Version 5: one row per run: what it was (name, seed, configuration
 * digest), when, and who took part (hosts and plugins, as they announced
 * themselves on service_registry). Rows from before runs get a run 0 row
 * spanning them. */
static const char *const m5_runs[] = {
    "CREATE TABLE runs ("
    " run_id bigint PRIMARY KEY,"
    " name text NOT NULL DEFAULT '',"
    " started_at timestamptz NOT NULL,"
    " ended_at timestamptz,"
    " seed text,"
    " config_digest text,"
    " hosts jsonb NOT NULL DEFAULT '{}',"
    " plugins jsonb NOT NULL DEFAULT '{}',"
    " updated_at timestamptz NOT NULL DEFAULT now())",
    "COMMENT ON COLUMN runs.hosts IS "
    "'host id -> {pid, admin, started_at, instances, config_digest when known}'",
    "COMMENT ON COLUMN runs.plugins IS 'instance -> {plugin, version, build_id}'",
    "INSERT INTO runs (run_id, name, started_at, ended_at)"
    " SELECT 0, 'before runs', min(at), max(at) FROM"
    " (SELECT executed_at AS at FROM trades WHERE run_id = 0"
    " UNION ALL SELECT event_at FROM order_events WHERE run_id = 0) AS recorded"
    " HAVING count(*) > 0",
    NULL,
};

/* Version 6: fees. Each side's fee on a trade and each fill's fee and
 * liquidity on its order event, in price units (negative: a rebate); rows
 * from before fees were charged keep 0 and no liquidity. */
static const char *const m6_fees[] = {
    "ALTER TABLE trades ADD COLUMN buy_fee bigint NOT NULL DEFAULT 0",
    "ALTER TABLE trades ADD COLUMN sell_fee bigint NOT NULL DEFAULT 0",
    "ALTER TABLE order_events ADD COLUMN fee bigint NOT NULL DEFAULT 0",
    "ALTER TABLE order_events ADD COLUMN liquidity text"
    " CHECK (liquidity IN ('maker', 'taker'))",
    "COMMENT ON COLUMN trades.buy_fee IS 'price units; negative: a rebate'",
    "COMMENT ON COLUMN order_events.fee IS 'this fill''s fee, price units; negative: a rebate'",
    "CREATE OR REPLACE VIEW trades_decimal AS SELECT trade_id, venue, symbol, executed_at,"
    " arb_decimal(price, price_decimals) AS price, arb_decimal(qty, qty_decimals) AS qty,"
    " aggressor, buy_order_id, sell_order_id, buy_account, sell_account, book_seq, run_id,"
    " arb_decimal(buy_fee, price_decimals) AS buy_fee,"
    " arb_decimal(sell_fee, price_decimals) AS sell_fee"
    " FROM trades",
    NULL,
};

/* Version 7 (6 is the fees' columns): order ids are unsigned 64-bit on the
 * wire and in the API; stored as bigint, an id at or above 2^63 read back
 * negative, so the id an API answer gave found no row. numeric(20,0) holds
 * every u64 as written; stored negatives are turned back into theirs. The
 * view reads the columns, so it is dropped and made again around the change.
 * Trade ids (book_id << 40 | seq) and accounts stay bigint: they fit. */
#define M7_U64(col)                                                                      \
    "USING CASE WHEN " col " < 0 THEN " col "::numeric + 18446744073709551616 ELSE " col \
    "::numeric END"
static const char *const m7_order_ids_unsigned[] = {
    "DROP VIEW trades_decimal",
    "ALTER TABLE order_events ALTER COLUMN order_id TYPE numeric(20,0) " M7_U64("order_id"),
    "ALTER TABLE trades ALTER COLUMN buy_order_id TYPE numeric(20,0) " M7_U64("buy_order_id"),
    "ALTER TABLE trades ALTER COLUMN sell_order_id TYPE numeric(20,0) " M7_U64("sell_order_id"),
    "ALTER TABLE order_events ADD CONSTRAINT order_events_order_id_u64"
    " CHECK (order_id BETWEEN 0 AND 18446744073709551615)",
    "ALTER TABLE trades ADD CONSTRAINT trades_order_ids_u64"
    " CHECK (buy_order_id BETWEEN 0 AND 18446744073709551615"
    " AND sell_order_id BETWEEN 0 AND 18446744073709551615)",
    "COMMENT ON COLUMN order_events.order_id IS "
    "'the order id as the API gives it (unsigned 64-bit, as a string in JSON)'",
    "CREATE VIEW trades_decimal AS SELECT trade_id, venue, symbol, executed_at,"
    " arb_decimal(price, price_decimals) AS price, arb_decimal(qty, qty_decimals) AS qty,"
    " aggressor, buy_order_id, sell_order_id, buy_account, sell_account, book_seq, run_id,"
    " arb_decimal(buy_fee, price_decimals) AS buy_fee,"
    " arb_decimal(sell_fee, price_decimals) AS sell_fee"
    " FROM trades",
    NULL,
};

static const rec_migration migrations[] = {
    {1, "trades, order events and consumer offsets", m1_tables},
    {2, "exact decimal view of trades", m2_decimal_views},
    {3, "kafka positions per topic partition", m3_kafka_offsets},
    {4, "every row and position carries its run", m4_run_ids},
    {5, "runs: name, seed, configuration, hosts and plugins", m5_runs},
    {6, "fees on trades and fills", m6_fees},
    {7, "order ids as unsigned 64-bit numbers", m7_order_ids_unsigned},
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

void rec_sql_columns(rec_sql *s, const char *prefix, const char *columns)
{
    const char *p = columns;
    while (*p) {
        size_t n = strcspn(p, ",");
        rec_sql_appendf(s, "%s%s%.*s", p == columns ? "" : ", ", prefix, (int)n, p);
        p += n;
        while (*p == ',' || *p == ' ')
            p++;
    }
}

/* ---- statements ---- */

int rec_migrate_sql(rec_sql *s, int up_to_version)
{
    rec_sql_append(s, "SELECT pg_advisory_xact_lock(" REC_MIGRATION_LOCK ");\n"
                      "CREATE TABLE IF NOT EXISTS schema_migrations ("
                      "version integer PRIMARY KEY, name text NOT NULL, "
                      "applied_at timestamptz NOT NULL DEFAULT now());\n");
    size_t n;
    const rec_migration *m = rec_migrations(&n);
    for (size_t i = 0; i < n && m[i].version <= up_to_version; i++) {
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
    return s->oom ? -1 : 0;
}

/* The staging tables hold the COPY columns only: the run is the same for
 * every row of a session and goes in with the INSERT. */
static void append_stages(rec_sql *s)
{
    rec_sql_appendf(s,
                    "CREATE TEMP TABLE IF NOT EXISTS " REC_TRADES_STAGE
                    " ON COMMIT DELETE ROWS AS SELECT %s FROM trades WITH NO DATA;\n",
                    rec_trade_columns);
    rec_sql_appendf(s,
                    "CREATE TEMP TABLE IF NOT EXISTS " REC_ORDER_EVENTS_STAGE
                    " ON COMMIT DELETE ROWS AS SELECT %s FROM order_events WITH NO DATA;\n",
                    rec_order_event_columns);
}

/* The run's row, on every connect. A run's row created means the previous
 * run ended: rows still open get ended_at. Under the migration lock, so two
 * recorders of one run starting at once create it once. */
static int append_run_upsert(rec_sql *s, const rec_run *run)
{
    rec_sql_appendf(
        s,
        "UPDATE runs SET ended_at = now(), updated_at = now() WHERE ended_at IS NULL "
        "AND run_id <> %lld AND NOT EXISTS (SELECT 1 FROM runs WHERE run_id = %lld);\n"
        "INSERT INTO runs (run_id, name, started_at, seed, config_digest) VALUES (%lld, ",
        (long long)run->id, (long long)run->id, (long long)run->id);
    if (rec_sql_literal(s, run->name ? run->name : ""))
        return -1;
    if (run->started_at_ns > 0)
        rec_sql_appendf(s, ", timestamptz 'epoch' + %lld * interval '1 microsecond', ",
                        (long long)(run->started_at_ns / 1000));
    else
        rec_sql_append(s, ", now(), ");
    if (!run->seed)
        rec_sql_append(s, "NULL");
    else if (rec_sql_literal(s, run->seed))
        return -1;
    rec_sql_append(s, ", ");
    if (!run->config_digest || !*run->config_digest)
        rec_sql_append(s, "NULL");
    else if (rec_sql_literal(s, run->config_digest))
        return -1;
    /* A resumed run keeps what its row says, filling in only what it lacked. */
    rec_sql_append(s, ") ON CONFLICT (run_id) DO UPDATE SET "
                      "seed = coalesce(runs.seed, EXCLUDED.seed), "
                      "config_digest = coalesce(runs.config_digest, EXCLUDED.config_digest), "
                      "name = CASE WHEN EXCLUDED.name <> '' THEN EXCLUDED.name ELSE runs.name END, "
                      "updated_at = now();\n");
    return s->oom ? -1 : 0;
}

int rec_run_patch_sql(rec_sql *s, int64_t run_id, const char *hosts_json, const char *plugins_json)
{
    rec_sql_append(s, "UPDATE runs SET hosts = hosts || ");
    if (rec_sql_literal(s, hosts_json))
        return -1;
    rec_sql_append(s, "::jsonb, plugins = plugins || ");
    if (rec_sql_literal(s, plugins_json))
        return -1;
    rec_sql_appendf(s, "::jsonb, updated_at = now() WHERE run_id = %lld;\n", (long long)run_id);
    return s->oom ? -1 : 0;
}

int rec_setup_sql(rec_sql *s, const char *consumer, const rec_run *run)
{
    if (rec_migrate_sql(s, rec_schema_version()))
        return -1;
    if (run->id && append_run_upsert(s, run))
        return -1;
    append_stages(s);
    rec_sql_appendf(s,
                    "SELECT topic, partition, next_offset FROM recorder_offsets "
                    "WHERE run_id = %lld AND consumer = ",
                    (long long)run->id);
    if (rec_sql_literal(s, consumer))
        return -1;
    rec_sql_appendf(s,
                    ";\nSELECT topic, partition, last_offset, 'kafka' FROM "
                    "recorder_kafka_offsets WHERE run_id = %lld AND consumer = ",
                    (long long)run->id);
    if (rec_sql_literal(s, consumer))
        return -1;
    rec_sql_append(s, ";\n");
    return s->oom ? -1 : 0;
}

/* The consumer's positions (and the batch's Kafka positions, if nkpos), in
 * the batch's transaction: the number of statements (results) appended, or
 * -1 if the consumer name cannot be a literal. */
static int append_positions(rec_sql *s, const char *consumer, int64_t run_id,
                            const uint64_t next_offset[REC_TOPICS], const rec_kpos *kpos,
                            uint32_t nkpos)
{
    int n = 0;
    rec_sql_append(s, "INSERT INTO recorder_offsets (run_id, consumer, topic, partition, "
                      "next_offset) VALUES ");
    for (int t = 0; t < REC_TOPICS; t++) {
        rec_sql_appendf(s, "%s%lld, ", t ? ", (" : "(", (long long)run_id);
        if (rec_sql_literal(s, consumer))
            return -1;
        rec_sql_appendf(s, ", '%s', 0, %lld)", rec_topic_name((enum rec_topic)t),
                        (long long)next_offset[t]);
    }
    rec_sql_append(s, " ON CONFLICT (run_id, consumer, topic, partition) DO UPDATE SET "
                      "next_offset = EXCLUDED.next_offset, updated_at = now();\n");
    n++;
    if (nkpos) {
        /* GREATEST: after a rebalance another recorder of the group may
         * have stored a later offset of the partition; rows between are in
         * the tables, and going back would only replay them. */
        rec_sql_append(s, "INSERT INTO recorder_kafka_offsets AS o (run_id, consumer, topic, "
                          "partition, last_offset) VALUES ");
        for (uint32_t i = 0; i < nkpos; i++) {
            rec_sql_appendf(s, "%s%lld, ", i ? ", (" : "(", (long long)run_id);
            if (rec_sql_literal(s, consumer))
                return -1;
            rec_sql_appendf(s, ", '%s', %d, %lld)", rec_topic_name((enum rec_topic)kpos[i].topic),
                            (int)kpos[i].partition, (long long)kpos[i].offset);
        }
        rec_sql_append(s, " ON CONFLICT (run_id, consumer, topic, partition) DO UPDATE SET "
                          "last_offset = "
                          "GREATEST(o.last_offset, EXCLUDED.last_offset), updated_at = now();\n");
        n++;
    }
    return n;
}

int rec_flush_sql(rec_sql *s, const char *consumer, int64_t run_id, uint32_t n_trades,
                  uint32_t n_events, const uint64_t next_offset[REC_TOPICS], const rec_kpos *kpos,
                  uint32_t nkpos, rec_flush_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    plan->insert_result[0] = plan->insert_result[1] = -1;
    plan->compare_result[0] = plan->compare_result[1] = -1;
    int result = 0;
    rec_sql_append(s, "BEGIN;\n");
    result++;
    if (n_trades) {
        rec_sql_appendf(s, "COPY " REC_TRADES_STAGE " (%s) FROM STDIN;\n", rec_trade_columns);
        plan->copy_topic[plan->n_copies] = REC_TOPIC_TRADES;
        plan->copy_result[plan->n_copies++] = result++;
    }
    if (n_events) {
        rec_sql_appendf(s, "COPY " REC_ORDER_EVENTS_STAGE " (%s) FROM STDIN;\n",
                        rec_order_event_columns);
        plan->copy_topic[plan->n_copies] = REC_TOPIC_ORDER_EVENTS;
        plan->copy_result[plan->n_copies++] = result++;
    }
    static const char *const table[REC_TOPICS] = {"trades", "order_events"};
    static const char *const stage[REC_TOPICS] = {REC_TRADES_STAGE, REC_ORDER_EVENTS_STAGE};
    const char *const columns[REC_TOPICS] = {rec_trade_columns, rec_order_event_columns};
    const uint32_t staged[REC_TOPICS] = {n_trades, n_events};
    for (int t = 0; t < REC_TOPICS; t++) {
        if (!staged[t])
            continue;
        /* Rows already stored under their key are skipped; how many went in
         * is the statement's answer and, for the next statement, a
         * transaction-local setting. */
        rec_sql_appendf(s,
                        "WITH ins AS (INSERT INTO %s (run_id, %s) SELECT %lld, %s FROM %s "
                        "ON CONFLICT DO NOTHING RETURNING 1) "
                        "SELECT set_config('arb_recorder.inserted_%s', count(*)::text, true) "
                        "FROM ins;\n",
                        table[t], columns[t], (long long)run_id, columns[t], stage[t], table[t]);
        plan->insert_result[t] = result++;
        /* Only when some were skipped (the guard is a one-time filter: no
         * join otherwise), the skipped rows that differ from the stored
         * ones: how many, and the first with both versions. */
        rec_sql_append(s, "SELECT count(*) OVER (), ");
        rec_sql_append(s, t == REC_TOPIC_TRADES ? "'trade_id ' || s.trade_id"
                                                : "'order_id ' || s.order_id || ' seq ' || s.seq");
        rec_sql_append(s, ", ROW(");
        rec_sql_columns(s, "s.", columns[t]);
        rec_sql_append(s, ")::text, ROW(");
        rec_sql_columns(s, "d.", columns[t]);
        rec_sql_appendf(s, ")::text FROM %s s JOIN %s d ON d.run_id = %lld AND ", stage[t],
                        table[t], (long long)run_id);
        rec_sql_append(s, t == REC_TOPIC_TRADES ? "d.trade_id = s.trade_id"
                                                : "d.order_id = s.order_id AND d.seq = s.seq");
        rec_sql_appendf(s,
                        " WHERE current_setting('arb_recorder.inserted_%s')::bigint < %u AND ROW(",
                        table[t], staged[t]);
        rec_sql_columns(s, "s.", columns[t]);
        rec_sql_append(s, ") IS DISTINCT FROM ROW(");
        rec_sql_columns(s, "d.", columns[t]);
        rec_sql_append(s, ") LIMIT 1;\n");
        plan->compare_result[t] = result++;
    }
    int n = append_positions(s, consumer, run_id, next_offset, kpos, nkpos);
    if (n < 0)
        return -1;
    result += n;
    rec_sql_append(s, "COMMIT;\n");
    result++;
    plan->n_results = result;
    return s->oom ? -1 : 0;
}

int rec_direct_flush_sql(rec_sql *s, const char *consumer, int64_t run_id, uint32_t n_trades,
                         uint32_t n_events, const uint64_t next_offset[REC_TOPICS],
                         const rec_kpos *kpos, uint32_t nkpos, rec_flush_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    plan->direct = 1;
    plan->insert_result[0] = plan->insert_result[1] = -1;
    plan->compare_result[0] = plan->compare_result[1] = -1;
    int result = 0;
    rec_sql_append(s, "BEGIN;\n");
    result++;
    static const char *const table[REC_TOPICS] = {"trades", "order_events"};
    const char *const columns[REC_TOPICS] = {rec_trade_columns, rec_order_event_columns};
    const uint32_t rows[REC_TOPICS] = {n_trades, n_events};
    for (int t = 0; t < REC_TOPICS; t++) {
        if (!rows[t])
            continue;
        /* Each row goes in led by the run (pg_writer.c adds it as it sends). */
        rec_sql_appendf(s, "COPY %s (run_id, %s) FROM STDIN;\n", table[t], columns[t]);
        plan->copy_topic[plan->n_copies] = t;
        plan->copy_result[plan->n_copies++] = result++;
    }
    int n = append_positions(s, consumer, run_id, next_offset, kpos, nkpos);
    if (n < 0)
        return -1;
    result += n;
    rec_sql_append(s, "COMMIT;\n");
    result++;
    plan->n_results = result;
    return s->oom ? -1 : 0;
}

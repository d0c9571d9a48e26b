/*
 * arbctl_kafka.c -- arbctl's Kafka commands: records as JSON lines.
 *
 *   arbctl tail TOPIC [-b BROKERS] [-c FILE] [--from-beginning] [-n COUNT]
 *                     [-e] [--meta] [-X key=value]...
 *   arbctl decode [-c FILE]
 *
 * `tail` reads a topic from the dev broker or a real cluster (every
 * partition, no consumer group, nothing committed) and prints one JSON object
 * per record (sdk/arb/wire_json.h). Brokers come from -b, else $ARB_BROKERS,
 * else [bus] brokers of the config given with -c; -c also supplies [kafka]
 * properties and the instrument table, so prices print as decimals. -e exits
 * once every partition is read to its end; -n after COUNT records.
 *
 * `decode` turns raw record values on stdin into JSON lines, e.g.
 *   kcat -C -b BROKERS -t trade_executed -f '%s' | arbctl decode
 * kcat's '%s' writes values back to back, so records are split by the length
 * in each wire header. Bytes that are no record are reported on stderr (once
 * per run of garbage, with its byte offsets) and skipped until a whole valid
 * record follows; a record whose header is sound but whose body fails
 * validation is reported and skipped by its length. Exit status: 0 if every
 * byte was a valid record, 1 if anything was reported, 2 on usage errors.
 *
 * Not here: arbctl's admin commands (arbctl.c). With
 * ARBCTL_KAFKA_DECODE_ONLY defined, only the decoder is compiled (the
 * libFuzzer target includes this file that way).
 */
#include <arb/instrument.h>
#include <arb/wire.h>
#include <arb/wire_json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the decoder: a byte stream of records -> JSON ---- */

typedef void (*arbctl_record_fn)(void *user, const char *json, size_t len);
/* `at` and `len`: the stream bytes the complaint is about. */
typedef void (*arbctl_reject_fn)(void *user, uint64_t at, uint64_t len, const char *why);

typedef struct arbctl_decoder {
    uint8_t *buf; /* unconsumed bytes */
    size_t len, cap;
    uint64_t pos; /* stream offset of buf[0] */
    bool synced;  /* the last thing read was a record (or the start) */
    uint64_t garbage_at;
    const arb_instrument_table *inst;
    arbctl_record_fn on_record;
    arbctl_reject_fn on_reject;
    void *user;
    char *json;
    size_t json_cap;
    uint64_t records, rejects;
} arbctl_decoder;

static void decoder_init(arbctl_decoder *d, const arb_instrument_table *inst,
                         arbctl_record_fn on_record, arbctl_reject_fn on_reject, void *user)
{
    memset(d, 0, sizeof *d);
    d->synced = true;
    d->inst = inst;
    d->on_record = on_record;
    d->on_reject = on_reject;
    d->user = user;
}

static void decoder_free(arbctl_decoder *d)
{
    free(d->buf);
    free(d->json);
    memset(d, 0, sizeof *d);
}

/* Length of the record a header announces, or 0 if these 8 bytes cannot
 * start a record of any type (checked without the body). */
static uint32_t plausible_length(const uint8_t *p)
{
    unsigned type = arb_get_u16(p);
    uint32_t len = arb_get_u32(p + 4);
    unsigned v = arb_get_u16(p + 2);
    /* Order events and trades have a version 2 (fees), services too (build
     * ids); every other type is at version 1. */
    unsigned max_v = type == ARB_MSG_ORDER_EVENT || type == ARB_MSG_TRADE || type == ARB_MSG_SERVICE
                         ? 2
                         : ARB_WIRE_VERSION;
    if (v < 1 || v > max_v || len > ARB_WIRE_MAX)
        return 0;
    switch (type) {
    case ARB_MSG_ORDER_CMD: return len == ARB_ORDER_CMD_LEN ? len : 0;
    case ARB_MSG_ORDER_EVENT:
        return len == (v == 1 ? ARB_ORDER_EVENT_LEN_V1 : ARB_ORDER_EVENT_LEN) ? len : 0;
    case ARB_MSG_TRADE: return len == (v == 1 ? ARB_TRADE_LEN_V1 : ARB_TRADE_LEN) ? len : 0;
    case ARB_MSG_TICK: return len == ARB_TICK_LEN ? len : 0;
    case ARB_MSG_MARKET_EVENT: return len == ARB_MARKET_EVENT_LEN ? len : 0;
    case ARB_MSG_MARKET_DATA:
        return len >= ARB_MD_FIXED_LEN && (len - ARB_MD_FIXED_LEN) % ARB_MD_LEVEL_LEN == 0 &&
                       len <= ARB_MD_LEN(ARB_MD_MAX_LEVELS)
                   ? len
                   : 0;
    case ARB_MSG_SERVICE:
        return len >= ARB_SERVICE_FIXED_LEN &&
                       (len - ARB_SERVICE_FIXED_LEN) % ARB_SERVICE_PLUGIN_LEN_OF(v) == 0 &&
                       len <= ARB_SERVICE_LEN(ARB_SERVICE_MAX_PLUGINS)
                   ? len
                   : 0;
    default: return 0;
    }
}

/* Renders the record into d->json; returns its length or -1. */
static int render(arbctl_decoder *d, const uint8_t *rec, size_t len)
{
    if (!d->json) {
        d->json_cap = 4096;
        if (!(d->json = malloc(d->json_cap)))
            return -1;
    }
    int n = arb_wire_json(rec, len, d->inst, d->json, d->json_cap);
    if (n >= 0 && (size_t)n >= d->json_cap) {
        char *grown = realloc(d->json, (size_t)n + 1);
        if (!grown)
            return -1;
        d->json = grown;
        d->json_cap = (size_t)n + 1;
        n = arb_wire_json(rec, len, d->inst, d->json, d->json_cap);
    }
    return n;
}

static void end_garbage(arbctl_decoder *d, uint64_t upto)
{
    if (d->synced)
        return;
    d->synced = true;
    d->rejects++;
    if (d->on_reject)
        d->on_reject(d->user, d->garbage_at, upto - d->garbage_at,
                     "not a wire record (no valid header); skipped");
}

static void start_garbage(arbctl_decoder *d, uint64_t at)
{
    if (d->synced) {
        d->synced = false;
        d->garbage_at = at;
    }
}

/* Consumes what can be decided with the bytes at hand; at the end of the
 * input, everything. */
static void decoder_run(arbctl_decoder *d, bool at_end)
{
    size_t off = 0;
    while (d->len - off >= ARB_WIRE_HDR) {
        const uint8_t *p = d->buf + off;
        size_t have = d->len - off;
        uint32_t len = plausible_length(p);
        if (len && have < len) {
            if (!at_end)
                break; /* the rest of this record has not arrived yet */
            if (d->synced) {
                d->rejects++;
                if (d->on_reject)
                    d->on_reject(d->user, d->pos + off, have,
                                 "truncated record: the input ended inside it");
                off = d->len;
                break;
            }
        } else if (len) {
            int n = render(d, p, len);
            if (n >= 0) {
                end_garbage(d, d->pos + off);
                d->records++;
                if (d->on_record)
                    d->on_record(d->user, d->json, (size_t)n);
                off += len;
                continue;
            }
            if (d->synced) {
                /* A sound header right after a record: trust its length. */
                d->rejects++;
                if (d->on_reject)
                    d->on_reject(d->user, d->pos + off, len, arb_wire_error());
                off += len;
                continue;
            }
        }
        /* No record starts here: slide one byte. Inside garbage, only a
         * whole valid record ends the run, so a chance header in the
         * garbage cannot swallow the records after it. */
        start_garbage(d, d->pos + off);
        off++;
    }
    if (at_end) {
        if (off < d->len) {
            start_garbage(d, d->pos + off);
            off = d->len;
        }
        end_garbage(d, d->pos + off);
    }
    if (off && d->len > off)
        memmove(d->buf, d->buf + off, d->len - off);
    d->len -= off;
    d->pos += off;
}

static int decoder_feed(arbctl_decoder *d, const void *data, size_t n)
{
    if (d->len + n > d->cap) {
        size_t cap = d->cap ? d->cap : 65536;
        while (cap < d->len + n)
            cap *= 2;
        uint8_t *grown = realloc(d->buf, cap);
        if (!grown)
            return -1;
        d->buf = grown;
        d->cap = cap;
    }
    memcpy(d->buf + d->len, data, n);
    d->len += n;
    decoder_run(d, false);
    return 0;
}

static void decoder_finish(arbctl_decoder *d) { decoder_run(d, true); }

#ifndef ARBCTL_KAFKA_DECODE_ONLY

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <unistd.h>

#include "config.h"
#include "kafka.h"

/* ---- the instrument table from a config file ----
 * arb_instruments_load reads config through a host API table; arbctl has no
 * host, so this is the small part of one that instrument.h calls. */

typedef struct cli_ctx {
    arb_ctx ctx; /* first: arb_ctx* is this */
    arbh_config *cfg;
} cli_ctx;

static int cli_cfg_str(arb_ctx *c, const char *section, const char *key, const char *def,
                       const char **out)
{
    const char *v = arbh_config_get(((cli_ctx *)c)->cfg, section, key, def);
    *out = v;
    return ARB_OK;
}

static int cli_cfg_int(arb_ctx *c, const char *section, const char *key, int64_t def, int64_t min,
                       int64_t max, int64_t *out)
{
    const char *v = arbh_config_get(((cli_ctx *)c)->cfg, section, key, NULL);
    if (!v) {
        *out = def;
        return ARB_OK;
    }
    char *end;
    long long x = strtoll(v, &end, 0);
    if (end == v || *end || x < min || x > max) {
        fprintf(stderr, "arbctl: [%s] %s = '%s': expected an integer in [%lld, %lld]\n", section,
                key, v, (long long)min, (long long)max);
        return ARB_EINVAL;
    }
    *out = x;
    return ARB_OK;
}

typedef struct cli_sections {
    arb_cfg_fn fn;
    void *user;
} cli_sections;

static int cli_each_section(void *user, const char *section)
{
    cli_sections *s = user;
    return s->fn(s->user, section, NULL);
}

static int cli_cfg_sections(arb_ctx *c, const char *prefix, arb_cfg_fn fn, void *user)
{
    cli_sections s = {fn, user};
    int rc = arbh_config_sections(((cli_ctx *)c)->cfg, prefix, cli_each_section, &s);
    return rc > 0 ? ARB_OK : rc;
}

static int cli_cfg_vreject(arb_ctx *c, const char *section, const char *key, const char *fmt,
                           va_list ap)
{
    arbh_cfg_entry *e = key && *key ? arbh_config_find(((cli_ctx *)c)->cfg, section, key) : NULL;
    fprintf(stderr, "arbctl: %s:%d: [%s] %s: ", e ? e->file : "config", e ? e->line : 0,
            section ? section : "", key ? key : "");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    return ARB_EINVAL;
}

static const arb_host_api cli_api = {
    .abi_version = ARB_ABI_VERSION,
    .size = sizeof(arb_host_api),
    .cfg_str = cli_cfg_str,
    .cfg_int = cli_cfg_int,
    .cfg_sections = cli_cfg_sections,
    .cfg_vreject = cli_cfg_vreject,
};

/* ---- common options ---- */

typedef struct cli_opts {
    const char *config;
    arbh_config cfg;
    bool have_cfg;
    arb_instrument_table inst;
} cli_opts;

static int load_config(cli_opts *o)
{
    if (!o->config)
        return 0;
    const char *files[] = {o->config};
    if (arbh_config_load(&o->cfg, files, 1, NULL, 0)) {
        fprintf(stderr, "arbctl: %s\n", o->cfg.err);
        return 2;
    }
    o->have_cfg = true;
    cli_ctx c = {{&cli_api}, &o->cfg};
    if (arb_instruments_load(&c.ctx, &o->inst))
        return 2;
    return 0;
}

static void free_opts(cli_opts *o)
{
    arb_instruments_free(&o->inst);
    if (o->have_cfg)
        arbh_config_free(&o->cfg);
}

/* ---- decode ---- */

static void print_record(void *user, const char *json, size_t len)
{
    (void)user;
    fwrite(json, 1, len, stdout);
    fputc('\n', stdout);
}

static void print_reject(void *user, uint64_t at, uint64_t len, const char *why)
{
    (void)user;
    fprintf(stderr, "arbctl decode: bytes %llu..%llu: %s\n", (unsigned long long)at,
            (unsigned long long)(at + len), why ? why : "invalid record");
}

static int decode_main(int argc, char **argv)
{
    cli_opts o = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-c") && i + 1 < argc) {
            o.config = argv[++i];
        } else {
            fprintf(stderr, "usage: arbctl decode [-c FILE] < raw-records\n");
            return 2;
        }
    }
    int rc = load_config(&o);
    if (rc) {
        free_opts(&o);
        return rc;
    }
    arbctl_decoder d;
    decoder_init(&d, o.have_cfg ? &o.inst : NULL, print_record, print_reject, NULL);
    char buf[65536];
    for (;;) {
        ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n < 0)
                fprintf(stderr, "arbctl decode: reading stdin: %s\n", strerror(errno));
            break;
        }
        if (decoder_feed(&d, buf, (size_t)n)) {
            fprintf(stderr, "arbctl decode: out of memory\n");
            break;
        }
        /* Live pipes (kcat without -e) show each record as it arrives. */
        fflush(stdout);
    }
    decoder_finish(&d);
    fflush(stdout);
    rc = d.rejects ? 1 : 0;
    decoder_free(&d);
    free_opts(&o);
    return rc;
}

/* ---- tail ---- */

static volatile sig_atomic_t tail_interrupted;

static void on_tail_signal(int sig)
{
    (void)sig;
    tail_interrupted = 1;
}

static void tail_usage(void)
{
    fputs("usage: arbctl tail TOPIC [-b BROKERS] [-c FILE] [--from-beginning] [-n COUNT] [-e]\n"
          "                   [--meta] [-X librdkafka.key=value]...\n"
          "  -b BROKERS        bootstrap list (default $ARB_BROKERS, then [bus] brokers of -c)\n"
          "  --from-beginning  start at the oldest record (default: only new records)\n"
          "  -n COUNT          exit after COUNT records\n"
          "  -e                exit at the end of every partition\n"
          "  --meta            wrap each record: {topic, partition, offset, key, record}\n",
          stderr);
}

typedef struct conf_fill {
    rd_kafka_conf_t *conf;
    int rc;
} conf_fill;

static int fill_conf(void *user, const arbh_cfg_entry *e)
{
    conf_fill *f = user;
    char why[256];
    if (rd_kafka_conf_set(f->conf, e->key, e->value, why, sizeof why) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "arbctl: %s:%d: [kafka] %s: %s\n", e->file, e->line, e->key, why);
        f->rc = 2;
        return 1;
    }
    return 0;
}

static int tail_main(int argc, char **argv)
{
    cli_opts o = {0};
    const char *topic = NULL, *brokers = getenv("ARB_BROKERS");
    bool from_beginning = false, exit_at_end = false, meta = false;
    long long count = -1;
    const char *props[64];
    int nprops = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (!strcmp(a, "--from-beginning")) {
            from_beginning = true;
        } else if (!strcmp(a, "-e")) {
            exit_at_end = true;
        } else if (!strcmp(a, "--meta")) {
            meta = true;
        } else if (!strcmp(a, "-b") && has_value) {
            brokers = argv[++i];
        } else if (!strcmp(a, "-c") && has_value) {
            o.config = argv[++i];
        } else if (!strcmp(a, "-n") && has_value) {
            char *end;
            count = strtoll(argv[++i], &end, 10);
            if (*end || count < 0) {
                tail_usage();
                return 2;
            }
        } else if (!strcmp(a, "-X") && has_value && nprops < 64) {
            props[nprops++] = argv[++i];
        } else if (a[0] != '-' && !topic) {
            topic = a;
        } else {
            tail_usage();
            return 2;
        }
    }
    if (!topic) {
        tail_usage();
        return 2;
    }
    int rc = load_config(&o);
    if (rc) {
        free_opts(&o);
        return rc;
    }
    if ((!brokers || !*brokers) && o.have_cfg)
        brokers = arbh_config_get(&o.cfg, "bus", "brokers", NULL);
    if (!brokers || !*brokers) {
        fprintf(stderr, "arbctl tail: no brokers: give -b HOST:PORT,..., set ARB_BROKERS, or "
                        "-c a config with [bus] brokers\n");
        free_opts(&o);
        return 2;
    }
    char prefixed[512];
    const char *prefix = o.have_cfg ? arbh_config_get(&o.cfg, "bus", "topic_prefix", "") : "";
    snprintf(prefixed, sizeof prefixed, "%s%s", prefix, topic);

    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", brokers, why, sizeof why);
    conf_fill f = {conf, 0};
    if (o.have_cfg)
        arbh_config_each(&o.cfg, "kafka", fill_conf, &f);
    for (int i = 0; i < nprops && !f.rc; i++) {
        char kv[1024];
        snprintf(kv, sizeof kv, "%s", props[i]);
        char *eq = strchr(kv, '=');
        if (!eq) {
            fprintf(stderr, "arbctl tail: -X %s: expected key=value\n", props[i]);
            f.rc = 2;
            break;
        }
        *eq = 0;
        if (rd_kafka_conf_set(conf, kv, eq + 1, why, sizeof why) != RD_KAFKA_CONF_OK) {
            fprintf(stderr, "arbctl tail: -X %s: %s\n", props[i], why);
            f.rc = 2;
        }
    }
    /* Partitions are assigned, never subscribed: the group id is only a
     * name librdkafka's consumer API wants; nothing joins it or commits. */
    rd_kafka_conf_set(conf, "group.id", "arbctl-tail", why, sizeof why);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", why, sizeof why);
    rd_kafka_conf_set(conf, "enable.partition.eof", exit_at_end ? "true" : "false", why,
                      sizeof why);
    if (f.rc) {
        rd_kafka_conf_destroy(conf);
        free_opts(&o);
        return f.rc;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    if (!rk) {
        fprintf(stderr, "arbctl tail: %s\n", why);
        free_opts(&o);
        return 2;
    }
    /* All topics, not just this one: asking for one by name lets a broker
     * with auto.create.topics.enable (and the dev broker) create it. */
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, 10000);
    int nparts = 0;
    if (e) {
        fprintf(stderr, "arbctl tail: cannot reach %s: %s\n", brokers, rd_kafka_err2str(e));
    } else {
        for (int t = 0; t < md->topic_cnt; t++)
            if (!strcmp(md->topics[t].topic, prefixed) && !md->topics[t].err)
                nparts = md->topics[t].partition_cnt;
        if (!nparts)
            fprintf(stderr, "arbctl tail: no topic '%s' on %s\n", prefixed, brokers);
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    if (!nparts) {
        rd_kafka_destroy(rk);
        free_opts(&o);
        return 2;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(nparts);
    for (int p = 0; p < nparts; p++)
        rd_kafka_topic_partition_list_add(l, prefixed, p)->offset =
            from_beginning ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);

    struct sigaction sa = {0};
    sa.sa_handler = on_tail_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    arbctl_decoder d; /* used for its renderer only */
    decoder_init(&d, o.have_cfg ? &o.inst : NULL, NULL, NULL, NULL);
    bool *at_end = calloc((size_t)nparts, sizeof *at_end);
    int ends = 0;
    long long shown = 0, bad = 0;
    rc = 0;
    while (!tail_interrupted && (count < 0 || shown < count) && (!exit_at_end || ends < nparts)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->partition >= 0 && m->partition < nparts && !at_end[m->partition]) {
                at_end[m->partition] = true;
                ends++;
            }
        } else if (m->err) {
            fprintf(stderr, "arbctl tail: %s\n", rd_kafka_message_errstr(m));
            if (m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
                m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
                rc = 2;
                rd_kafka_message_destroy(m);
                break;
            }
        } else {
            if (m->partition >= 0 && m->partition < nparts && at_end[m->partition]) {
                at_end[m->partition] = false;
                ends--;
            }
            int n = render(&d, m->payload, m->len);
            if (n < 0) {
                bad++;
                fprintf(stderr, "arbctl tail: %s [%d] at offset %lld: not a wire record: %s\n",
                        prefixed, (int)m->partition, (long long)m->offset,
                        arb_wire_error() ? arb_wire_error() : "?");
            } else if (meta) {
                uint64_t key = 0;
                if (m->key && m->key_len == 8)
                    for (int i = 7; i >= 0; i--)
                        key = (key << 8) | ((const uint8_t *)m->key)[i];
                printf("{\"topic\":\"%s\",\"partition\":%d,\"offset\":%lld,\"key\":\"%llu\","
                       "\"record\":%s}\n",
                       topic, (int)m->partition, (long long)m->offset, (unsigned long long)key,
                       d.json);
                shown++;
            } else {
                fwrite(d.json, 1, (size_t)n, stdout);
                fputc('\n', stdout);
                shown++;
            }
            if (fflush(stdout) == EOF) {
                rd_kafka_message_destroy(m);
                break; /* the reader went away (e.g. | head) */
            }
        }
        rd_kafka_message_destroy(m);
    }
    free(at_end);
    decoder_free(&d);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    free_opts(&o);
    if (!rc && bad)
        rc = 1;
    return rc;
}

int arbctl_kafka_main(int argc, char **argv)
{
    if (argc >= 1 && !strcmp(argv[0], "tail"))
        return tail_main(argc, argv);
    if (argc >= 1 && !strcmp(argv[0], "decode"))
        return decode_main(argc, argv);
    fprintf(stderr, "arbctl: expected tail or decode\n");
    return 2;
}

#endif /* ARBCTL_KAFKA_DECODE_ONLY */

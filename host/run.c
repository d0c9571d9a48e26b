/*
 * run.c -- which run this host belongs to (docs/ARCHITECTURE.md, "Runs").
 *
 * With a journal the run lives in the journal's directory, in a file `run`:
 * a start resumes it (its epoch counts the host's starts) unless [host]
 * new_run = true (arb-host --new-run), which begins a new run in an empty
 * journal. Without a journal there is nothing to resume from, so every start
 * begins a new run. Over Kafka every host of the system must agree without
 * being told, so the run is kept by the cluster itself, in the one-partition
 * topic arb_runs (kafka.h), as a chain of records:
 *   "ARUN" | u32 version 1 | u8 kind | 7 zero | u64 run | u64 supersedes |
 *   i64 wall ns | char host[64] | char name[64]
 * kind 1 begins a run and names the run it supersedes (0: none); kind 2 says
 * a host started in a run. Reading the chain from its first record, a begin
 * counts only if it supersedes the run in force, so when several hosts
 * begin a run at once (a fresh broker, or --new-run given to every host) the
 * first record wins and every host, then and later, reads the same run.
 * A broker that lost its history has an empty chain: a new run, never a
 * replay of an old one. A host's epoch is the number of its earlier starts
 * in the run.
 *
 * With a journal or none, decided in arbh_host_new (read only: `--check`
 * writes nothing) and settled at start; over Kafka, agreed at start, before
 * any instance starts. Not here: what plugins do with it.
 */
#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <ftw.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <arb/wire.h>

#include "host.h"
#include "transport.h"

#define RUN_REC_LEN 168u
#define RUN_BEGIN 1
#define RUN_HOST_START 2
#define RUN_TIMEOUT_NS (15 * 1000000000ll)

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return (h ^ 0xff) * 0x100000001b3ull; /* a separator: "ab","c" differs from "a","bc" */
}

/* The configuration as the host read it: every entry of every file and
 * override, in order. */
static void config_digest(const arbh_config *cfg, char out[17])
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < cfg->count; i++) {
        h = fnv1a(h, cfg->entries[i].section);
        h = fnv1a(h, cfg->entries[i].key);
        h = fnv1a(h, cfg->entries[i].value);
    }
    snprintf(out, 17, "%016" PRIx64, h);
}

/* Whether a section is part of the market an instance sees: its own, and
 * every section shared by the host's plugins ([instrument V:S], a latency
 * model, ...), but not where the host runs ([host], [bus], [kafka*]) nor the
 * other plugins' sections. */
static bool market_section(const char *section, const char *own)
{
    return !strcmp(section, own) || (strncmp(section, "plugin ", 7) && strcmp(section, "host") &&
                                     strcmp(section, "bus") && strncmp(section, "kafka", 5));
}

uint64_t arbh_instance_config_digest(const arbh_config *cfg, const char *section)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < cfg->count; i++) {
        const arbh_cfg_entry *e = &cfg->entries[i];
        if (!market_section(e->section, section))
            continue;
        /* Its own section under one name, so two hosts naming an instance
         * differently still agree. */
        h = fnv1a(h, strcmp(e->section, section) ? e->section : "plugin");
        h = fnv1a(h, e->key);
        h = fnv1a(h, e->value);
    }
    return h ? h : 1; /* 0 means unknown on the wire */
}

static uint64_t new_run_id(void)
{
    uint64_t id = 0;
    while (!(id & 0x7fffffffffffffffull)) {
        if (getrandom(&id, sizeof id, 0) != sizeof id)
            id = (uint64_t)arbh_wall_ns() * 0x9e3779b97f4a7c15ull;
    }
    return id & 0x7fffffffffffffffull;
}

static void run_path(const arbh_host *h, char *out, size_t n)
{
    snprintf(out, n, "%s/run", arbh_journal_dir(h->journal));
}

/* The run file's fields, and a check over them (so a damaged file is told
 * from another run's). */
static uint64_t run_check(uint64_t id, uint64_t epoch, long long started, const char *name)
{
    char text[160];
    snprintf(text, sizeof text, "%016" PRIx64 "/%" PRIu64 "/%lld/%s", id, epoch, started, name);
    return fnv1a(0xcbf29ce484222325ull, text);
}

static int has_segment(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)ftw;
    size_t l = strlen(path);
    return flag == FTW_F && l > 4 && !strcmp(path + l - 4, ".log");
}

/* Reads the journal's run file: 1 with *r filled; 0 when there is none and
 * the journal holds no records (a first start); -1 when it is missing,
 * unreadable or damaged while the journal holds records (*why says which):
 * resuming under a made-up run or wiping the records would both be wrong. */
static int run_read(const arbh_host *h, arb_run_info *r, const char **why)
{
    char path[4200];
    run_path(h, path, sizeof path);
    bool records = nftw(arbh_journal_dir(h->journal), has_segment, 16, FTW_PHYS) == 1;
    FILE *f = fopen(path, "r");
    if (!f) {
        *why = errno == ENOENT ? "is missing" : "cannot be read";
        return records ? -1 : 0;
    }
    char line[256];
    unsigned long long id = 0, epoch = 0, check = 0;
    long long started = 0;
    bool has_check = false;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!strncmp(line, "id=", 3))
            id = strtoull(line + 3, NULL, 16);
        else if (!strncmp(line, "epoch=", 6))
            epoch = strtoull(line + 6, NULL, 10);
        else if (!strncmp(line, "started_at=", 11))
            started = strtoll(line + 11, NULL, 10);
        else if (!strncmp(line, "name=", 5))
            snprintf(r->name, sizeof r->name, "%.63s", line + 5);
        else if (!strncmp(line, "check=", 6))
            check = strtoull(line + 6, NULL, 16), has_check = true;
    }
    fclose(f);
    /* Every run file this build writes ends with its check: one without it
     * was cut short (or written by hand). */
    if (!id || id >> 63 || epoch >= UINT32_MAX || !has_check ||
        check != run_check(id, epoch, started, r->name)) {
        *why = "is damaged";
        return records ? -1 : 0;
    }
    r->id = id;
    r->epoch = (uint32_t)epoch;
    r->started_at = started;
    return 1;
}

int arbh_run_decide(arbh_host *h, char *err, size_t n)
{
    arb_run_info r = {0};
    bool fresh = !strcmp(arbh_config_get(h->cfg, "host", "new_run", "false"), "true");
    const char *name = arbh_config_get(h->cfg, "host", "run_name", "");
    const char *why = "";
    int got = h->journal && !fresh ? run_read(h, &r, &why) : 0;
    if (got < 0) {
        snprintf(err, n,
                 "journal %s holds records but its run file %s: not resuming under a made-up "
                 "run, not wiping them. Restore %s/run, or begin a new run (arb-host --new-run, "
                 "make run NEW_RUN=1), which empties the journal",
                 arbh_journal_dir(h->journal), why, arbh_journal_dir(h->journal));
        return ARB_ERROR;
    }
    if (h->kafka) {
        r = (arb_run_info){0}; /* agreed at start (arbh_run_settle) */
    } else if (got) {
        r.resumed = 1;
        r.epoch++;
    } else {
        r = (arb_run_info){.id = new_run_id(), .started_at = h->started_at};
    }
    if (name[0])
        snprintf(r.name, sizeof r.name, "%.63s", name);
    config_digest(h->cfg, r.config_digest);
    h->run = r;
    return ARB_OK;
}

/* ---- over Kafka ---- */

typedef struct run_chain {
    const char *host;
    const uint8_t *mine; /* this host's start record, to find its offset */
    int64_t mine_offset;
    uint64_t current;
    int64_t started_at;
    char name[64];
    uint32_t my_starts; /* this host's start records in the current run */
    uint64_t bad;
} run_chain;

static int chain_rec(void *user, const void *b, size_t len, uint64_t key, int64_t offset)
{
    (void)key;
    run_chain *c = user;
    const uint8_t *p = b;
    if (c->mine && len == RUN_REC_LEN && !memcmp(p, c->mine, RUN_REC_LEN))
        c->mine_offset = offset;
    if (len != RUN_REC_LEN || memcmp(p, "ARUN", 4) || arb_get_u32(p + 4) != 1) {
        c->bad++;
        return ARB_OK;
    }
    uint64_t run = arb_get_u64(p + 16), supersedes = arb_get_u64(p + 24);
    if (p[8] == RUN_BEGIN && supersedes == c->current && run && !(run >> 63)) {
        c->current = run;
        c->started_at = arb_get_i64(p + 32);
        memcpy(c->name, p + 104, 63);
        c->name[63] = 0;
        c->my_starts = 0;
    } else if (p[8] == RUN_HOST_START && run == c->current &&
               !strncmp((const char *)p + 40, c->host, 63)) {
        c->my_starts++;
    }
    return ARB_OK;
}

static int chain_read(arbh_host *h, run_chain *c)
{
    const char *host = c->host;
    const uint8_t *mine = c->mine;
    *c = (run_chain){.host = host, .mine = mine, .mine_offset = -1};
    return arbh_kafka_read_range(h->kafka, ARBH_RUNS_TOPIC, 0, 0, -1, RUN_TIMEOUT_NS, chain_rec, c);
}

static int chain_put(arbh_host *h, int kind, uint64_t run, uint64_t supersedes, const char *name,
                     uint8_t p[RUN_REC_LEN])
{
    memset(p, 0, RUN_REC_LEN);
    memcpy(p, "ARUN", 4);
    arb_put_u32(p + 4, 1);
    p[8] = (uint8_t)kind;
    arb_put_u64(p + 16, run);
    arb_put_u64(p + 24, supersedes);
    arb_put_i64(p + 32, arbh_wall_ns());
    snprintf((char *)p + 40, 64, "%.63s", h->id);
    snprintf((char *)p + 104, 64, "%.63s", name);
    int rc = arbh_kafka_produce(h->kafka, ARBH_RUNS_TOPIC, 0, p, RUN_REC_LEN);
    return rc ? rc : arbh_kafka_flush(h->kafka, (int)(RUN_TIMEOUT_NS / 1000000));
}

static int run_agree(arbh_host *h, char *err, size_t n)
{
    bool fresh = !strcmp(arbh_config_get(h->cfg, "host", "new_run", "false"), "true");
    run_chain c = {.host = h->id};
    int rc = arbh_kafka_prepare(h->kafka);
    if (!rc)
        rc = chain_read(h, &c);
    uint64_t mine = 0;
    uint8_t begin[RUN_REC_LEN];
    if (!rc && (fresh || !c.current)) {
        mine = new_run_id();
        rc = chain_put(h, RUN_BEGIN, mine, c.current, h->run.name, begin);
        if (!rc)
            rc = chain_read(h, &c);
    }
    if (!rc && !c.current)
        rc = ARB_ERROR;
    if (!rc)
        rc = chain_put(h, RUN_HOST_START, c.current, 0, "", h->run_rec);
    /* Where the start record landed: the watch reads it back there. */
    run_chain at = {.host = h->id, .mine = h->run_rec};
    h->run_rec_offset = !rc && chain_read(h, &at) == ARB_OK ? at.mine_offset : -1;
    if (rc) {
        snprintf(err, n,
                 "kafka: cannot agree on the run through topic %s (%d): it must exist with one "
                 "partition (arb-devbroker makes it; else [bus] create_topics = true)",
                 ARBH_RUNS_TOPIC, rc);
        return ARB_ERROR;
    }
    if (c.bad)
        arbh_log(h, NULL, ARB_LOG_WARN, "%s holds %llu records that are not runs: skipped",
                 ARBH_RUNS_TOPIC, (unsigned long long)c.bad);
    h->run.id = c.current;
    h->run.resumed = c.current != mine;
    h->run.epoch = c.my_starts;
    h->run.started_at = c.started_at;
    if (c.name[0] && !h->run.name[0])
        snprintf(h->run.name, sizeof h->run.name, "%s", c.name);
    return ARB_OK;
}

/* ---- the run still there (over Kafka) ---- */

#define RUN_WATCH_NS 1000000000ll

typedef struct watch_read {
    const uint8_t *mine;
    int seen; /* 0: nothing at the offset, 1: this host's record, -1: another */
} watch_read;

static int watch_rec(void *user, const void *b, size_t len, uint64_t key, int64_t offset)
{
    (void)key, (void)offset;
    watch_read *w = user;
    w->seen = len == RUN_REC_LEN && !memcmp(b, w->mine, RUN_REC_LEN) ? 1 : -1;
    return ARB_OK;
}

static void *run_watch(void *arg)
{
    arbh_host *h = arg;
    pthread_mutex_lock(&h->run_watch_mu);
    while (!h->run_watch_stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_cond_timedwait(&h->run_watch_cv, &h->run_watch_mu, &until);
        if (h->run_watch_stop)
            break;
        pthread_mutex_unlock(&h->run_watch_mu);
        /* A read that fails (the broker unreachable) says nothing: the
         * transport's readiness reports that. Only an answer that the
         * record is not there any more is a lost run. */
        watch_read w = {.mine = h->run_rec};
        int64_t lo = 0, hi = 0;
        int rc = arbh_kafka_watermarks(h->kafka, ARBH_RUNS_TOPIC, 0, RUN_WATCH_NS, &lo, &hi);
        if (rc == ARB_OK && hi > h->run_rec_offset)
            rc = arbh_kafka_read_range(h->kafka, ARBH_RUNS_TOPIC, 0, h->run_rec_offset,
                                       h->run_rec_offset + 1, RUN_WATCH_NS, watch_rec, &w);
        pthread_mutex_lock(&h->run_watch_mu);
        /* lo > offset: retention removed it, which is not a lost run. */
        if (rc != ARB_OK || lo > h->run_rec_offset || w.seen == 1)
            continue;
        snprintf(h->run_lost_why, sizeof h->run_lost_why,
                 "run %016llx: the broker no longer holds it (%s at offset %lld of %s, which "
                 "now ends at %lld): a broker that came back empty, whose history is a new run. "
                 "Stopping with status %d; a restart begins the new run (supervise.sh and the "
                 "systemd unit restart the host)",
                 (unsigned long long)h->run.id,
                 w.seen ? "another record" : "no record of this host's start",
                 (long long)h->run_rec_offset, ARBH_RUNS_TOPIC, (long long)hi, ARBH_EXIT_RUN_LOST);
        atomic_store(&h->run_lost, true);
        arbh_log(h, NULL, ARB_LOG_ERROR, "%s", h->run_lost_why);
        h->exit_code = ARBH_EXIT_RUN_LOST;
        atomic_store(&h->stopping, 1);
        event_base_loopbreak(h->loops[0]->base);
        break;
    }
    pthread_mutex_unlock(&h->run_watch_mu);
    return NULL;
}

void arbh_run_watch_start(arbh_host *h)
{
    if (!h->kafka || h->run_rec_offset < 0 || h->run_watching)
        return;
    pthread_mutex_init(&h->run_watch_mu, NULL);
    pthread_cond_init(&h->run_watch_cv, NULL);
    h->run_watch_stop = false;
    h->run_watching = pthread_create(&h->run_watch, NULL, run_watch, h) == 0;
}

void arbh_run_watch_stop(arbh_host *h)
{
    if (!h->run_watching)
        return;
    pthread_mutex_lock(&h->run_watch_mu);
    h->run_watch_stop = true;
    pthread_cond_signal(&h->run_watch_cv);
    pthread_mutex_unlock(&h->run_watch_mu);
    pthread_join(h->run_watch, NULL);
    h->run_watching = false;
    pthread_cond_destroy(&h->run_watch_cv);
    pthread_mutex_destroy(&h->run_watch_mu);
}

/* ---- at start ---- */

/* Over Kafka: agree on the run. With a journal: open it for the run decided
 * (emptied for a new run) and write the run file (a new name, then rename:
 * a crash leaves the old or the new one whole). */
int arbh_run_settle(arbh_host *h, char *err, size_t n)
{
    if (h->kafka)
        return run_agree(h, err, n);
    if (!h->journal)
        return ARB_OK;
    if (arbh_journal_open(h->journal, !h->run.resumed, err, n) != ARB_OK)
        return ARB_ERROR;
    char path[4200], tmp[4300];
    run_path(h, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int ok = f != NULL;
    if (f) {
        ok = fprintf(
                 f,
                 "id=%016" PRIx64 "\nepoch=%u\nstarted_at=%" PRId64 "\nname=%s\ncheck=%016" PRIx64
                 "\n",
                 h->run.id, h->run.epoch, h->run.started_at, h->run.name,
                 run_check(h->run.id, h->run.epoch, (long long)h->run.started_at, h->run.name)) > 0;
        ok &= fflush(f) == 0 && fsync(fileno(f)) == 0;
        ok &= fclose(f) == 0;
    }
    if (!ok || rename(tmp, path)) {
        snprintf(err, n, "journal: cannot write %s: %s", path, strerror(errno));
        return ARB_ERROR;
    }
    return ARB_OK;
}

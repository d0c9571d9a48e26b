/*
 * run.c -- which run this host belongs to (docs/ARCHITECTURE.md, "Runs").
 *
 * With a journal the run lives in the journal's directory, in a file `run`:
 * a start resumes it (its epoch counts the host's starts) unless [host]
 * new_run = true (arb-host --new-run), which begins a new run in an empty
 * journal. Without a journal there is nothing to resume from, so every start
 * begins a new run. Over Kafka every host of the system must agree without
 * being told: the run is named by the cluster (see arbh_run_decide).
 *
 * Decided in arbh_host_new (read only: `--check` writes nothing), stored by
 * arbh_run_store at start. Not here: what plugins do with it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "host.h"
#include "transport.h"

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

/* Reads the journal's run file; 0 when there is none (or it is not ours). */
static int run_read(const arbh_host *h, arb_run_info *r)
{
    char path[4200];
    run_path(h, path, sizeof path);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[256];
    unsigned long long id = 0, epoch = 0;
    long long started = 0;
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
    }
    fclose(f);
    if (!id || id >> 63 || epoch >= UINT32_MAX)
        return 0;
    r->id = id;
    r->epoch = (uint32_t)epoch;
    r->started_at = started;
    return 1;
}

int arbh_run_decide(arbh_host *h, char *err, size_t n)
{
    (void)err, (void)n;
    arb_run_info r = {0};
    bool fresh = !strcmp(arbh_config_get(h->cfg, "host", "new_run", "false"), "true");
    const char *name = arbh_config_get(h->cfg, "host", "run_name", "");
    if (h->journal && !fresh && run_read(h, &r)) {
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

/* Writes the run file (a new name, then rename: a crash leaves the old or
 * the new one whole). */
int arbh_run_store(arbh_host *h, char *err, size_t n)
{
    if (!h->journal)
        return ARB_OK;
    char path[4200], tmp[4300];
    run_path(h, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int ok = f != NULL;
    if (f) {
        ok = fprintf(f, "id=%016" PRIx64 "\nepoch=%u\nstarted_at=%" PRId64 "\nname=%s\n", h->run.id,
                     h->run.epoch, h->run.started_at, h->run.name) > 0;
        ok &= fflush(f) == 0 && fsync(fileno(f)) == 0;
        ok &= fclose(f) == 0;
    }
    if (!ok || rename(tmp, path)) {
        snprintf(err, n, "journal: cannot write %s: %s", path, strerror(errno));
        return ARB_ERROR;
    }
    return ARB_OK;
}

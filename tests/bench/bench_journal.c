/*
 * bench_journal.c -- the monolith's journal on its own (host/journal.c):
 *
 * Throughput: 1M records of 100 bytes produced and delivered in offset order
 * on an event loop (append, the writer's batched write, delivery), against
 * the floor measured in the same run: the same bytes written to a file with
 * write(2) in 64 KiB chunks and read back.
 *
 * Latency: one record at a time, produce to delivery (the writer thread's
 * wake, its write, the loop's wake), p50 and p99, with journal_fsync = group
 * and = always (each batch fdatasync'd before delivery).
 */
#include <event2/event.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arb/plugin.h>

#include "config.h"
#include "journal.h"

#define RECORDS 1000000
#define REC_LEN 100
#define LAT_N 2000

static char dir[64];

static int64_t mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag;
    return ftw->level > 0 ? remove(path) : 0;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_journal: %s\n", what);
    exit(1);
}

typedef struct sink {
    int64_t n, bad, next;
    int64_t at; /* mono ns of the last delivery */
} sink;

static int deliver(void *user, const char *topic, int32_t partition, int64_t offset, uint64_t key,
                   const void *data, size_t len, void (*done)(void *token), void *token)
{
    (void)topic, (void)partition, (void)key, (void)data;
    sink *s = user;
    s->bad += offset != s->next || len != REC_LEN;
    s->next = offset + 1;
    s->n++;
    s->at = mono_ns();
    done(token);
    return ARB_OK;
}

static arbh_journal *open_journal(arbh_config *cfg, const char *mode)
{
    char text[512], err[512];
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    snprintf(text, sizeof text,
             "[bus]\njournal = %s/j\njournal_topics = t\njournal_fsync = %s\n"
             "journal_buffer_bytes = 1G\n",
             dir, mode);
    if (arbh_config_load_string(cfg, "bench.ini", text, NULL, 0))
        die("config");
    arbh_journal *j = NULL;
    if (arbh_journal_new(cfg, NULL, NULL, &j, err, sizeof err) || !j ||
        arbh_journal_open(j, true, err, sizeof err))
        die(err);
    return j;
}

static void throughput(void)
{
    static uint8_t rec[REC_LEN];
    arbh_config cfg;
    arbh_journal *j = open_journal(&cfg, "group");
    struct event_base *base = event_base_new();
    sink s = {0};
    arbh_journal_want(j, "t");
    if (arbh_journal_start(j, base, deliver, &s))
        die("start");
    int64_t t0 = mono_ns();
    for (int i = 0; i < RECORDS; i++) {
        memcpy(rec, &i, sizeof i);
        while (arbh_journal_produce(j, "t", (uint64_t)i, rec, sizeof rec) == ARB_EFULL)
            event_base_loop(base, EVLOOP_NONBLOCK);
        if ((i & 1023) == 0)
            event_base_loop(base, EVLOOP_NONBLOCK);
    }
    while (s.n < RECORDS)
        event_base_loop(base, EVLOOP_ONCE);
    double js = (double)(mono_ns() - t0) / 1e9;
    if (s.bad)
        die("records out of order");
    arbh_journal_free(j);
    arbh_config_free(&cfg);
    event_base_free(base);

    /* The floor: the same bytes (with the journal's 24-byte heads) written
     * and read back with plain system calls. */
    char path[128];
    snprintf(path, sizeof path, "%s/floor", dir);
    size_t chunk = 65536, total = (size_t)RECORDS * (REC_LEN + 24);
    uint8_t *buf = calloc(1, chunk);
    t0 = mono_ns();
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
    for (size_t done = 0; done < total; done += chunk)
        if (write(fd, buf, chunk) != (ssize_t)chunk)
            die("floor write");
    for (off_t at = 0; (size_t)at < total; at += (off_t)chunk)
        if (pread(fd, buf, chunk, at) < 0)
            die("floor read");
    close(fd);
    double fs = (double)(mono_ns() - t0) / 1e9;
    free(buf);
    printf("bench: journal_records_per_s %.0f records/s\n", RECORDS / js);
    printf("bench: journal_floor_records_per_s %.0f records/s\n", RECORDS / fs);
    printf("bench: journal_vs_floor_ratio %.3f ratio\n", fs / js);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void latency(const char *mode)
{
    static int64_t lat[LAT_N];
    static uint8_t rec[REC_LEN];
    arbh_config cfg;
    arbh_journal *j = open_journal(&cfg, mode);
    struct event_base *base = event_base_new();
    sink s = {0};
    arbh_journal_want(j, "t");
    if (arbh_journal_start(j, base, deliver, &s))
        die("start");
    for (int i = 0; i < LAT_N; i++) {
        int64_t t0 = mono_ns();
        if (arbh_journal_produce(j, "t", 0, rec, sizeof rec))
            die("produce");
        while (s.n <= i)
            event_base_loop(base, EVLOOP_ONCE);
        lat[i] = s.at - t0;
    }
    qsort(lat, LAT_N, sizeof *lat, cmp_i64);
    printf("bench: journal_%s_latency_p50 %.1f us\n", mode, (double)lat[LAT_N / 2] / 1e3);
    printf("bench: journal_%s_latency_p99 %.1f us\n", mode, (double)lat[LAT_N * 99 / 100] / 1e3);
    arbh_journal_free(j);
    arbh_config_free(&cfg);
    event_base_free(base);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/arb-bench-journal-XXXXXX");
    if (!mkdtemp(dir))
        die("mkdtemp");
    throughput();
    latency("group");
    latency("always");
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    rmdir(dir);
    return 0;
}

/*
 * fuzz_journal.c -- libFuzzer target for the journal's reading of its own
 * segment files (host/journal.c): whatever bytes a crash, a disk or a person
 * left in a segment, opening the journal never crashes, cuts the file at
 * its last good record, and everything it keeps reads back whole, with
 * offsets from 0 in sequence.
 *
 * Input: a flag byte, then the segment's bytes. With bit 0 of the flag set,
 * the harness first walks the bytes as records and writes each one's
 * CRC-32C itself, so the fuzzer reaches the checks behind the checksum
 * (lengths, offsets, torn tails).
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arb/plugin.h>

#include "config.h"
#include "journal.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static char dir[64];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag;
    return ftw->level > 0 ? remove(path) : 0;
}

static void quiet(void *user, int level, const char *msg) { (void)user, (void)level, (void)msg; }

typedef struct seen {
    int64_t next;
    int bad;
} seen;

static int take(void *user, const void *bytes, size_t len, uint64_t key, int64_t offset)
{
    (void)bytes, (void)len, (void)key;
    seen *s = user;
    if (offset != s->next)
        s->bad = 1;
    s->next = offset + 1;
    return ARB_OK;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 1 || size > 1 << 16)
        return 0;
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/arb-fuzz-journal-XXXXXX");
        if (!mkdtemp(dir))
            abort();
    }
    unsigned char *seg = malloc(size);
    memcpy(seg, data + 1, size - 1);
    size_t n = size - 1;
    if (data[0] & 1) /* give each record a right checksum */
        for (size_t at = 0; n - at >= 24;) {
            uint32_t len;
            memcpy(&len, seg + at + 4, 4);
            if (len > n - at - 24)
                break;
            uint32_t crc = arbh_crc32c(0, seg + at + 4, 20 + len);
            memcpy(seg + at, &crc, 4);
            at += 24 + len;
        }
    char path[128];
    snprintf(path, sizeof path, "%s/j/t", dir);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/j", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/j/t", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/j/t/%020d.log", dir, 0);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(seg, 1, n, f) != n || fclose(f))
        abort();
    free(seg);

    char text[256], err[512];
    snprintf(text, sizeof text, "[bus]\njournal = %s/j\njournal_topics = t\njournal_fsync = off\n",
             dir);
    arbh_config cfg;
    if (arbh_config_load_string(&cfg, "fuzz.ini", text, NULL, 0))
        abort();
    arbh_journal *j = NULL;
    if (arbh_journal_new(&cfg, quiet, NULL, &j, err, sizeof err) || !j ||
        arbh_journal_open(j, false, err, sizeof err))
        abort();
    int64_t lo, hi;
    if (arbh_journal_watermarks(j, "t", 0, &lo, &hi) || lo != 0 || hi < 0)
        abort();
    seen s = {0, 0};
    if (arbh_journal_read_range(j, "t", 0, 0, -1, take, &s) || s.bad || s.next != hi)
        abort(); /* what was kept reads back whole and in sequence */
    struct stat st;
    if (hi > 0 && (stat(path, &st) || (size_t)st.st_size > n))
        abort(); /* the cut never adds bytes */
    arbh_journal_free(j);
    arbh_config_free(&cfg);
    nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}

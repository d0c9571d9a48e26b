/*
 * journal.c -- the monolith's journal (see journal.h): per topic, segment
 * files of checksummed records, a writer thread that writes and syncs them
 * in batches, and a reader on loop 0 that delivers what is written.
 *
 * Not here: what a record means (plugins), how a delivered record fans out
 * (bus.c), the run file (run.c).
 */
#include "journal.h"
#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arb/plugin.h>

#define JHDR 24u                /* crc | len | offset | key */
#define JMAX_RECORD (64u << 20) /* a length above this is damage, not a record */
#define JMAX_TOPICS 16
#define DELIVER_BUDGET 4096 /* records per topic per loop turn */
#define RETRY_US 1000
#define COMMIT_US 100000
#define JMAX_TRIMMERS 8

typedef struct jcursor {
    int fd;
    int64_t next; /* offset of the record at buf[bpos] */
    off_t fpos;   /* file position of buf[0] */
    uint8_t *buf;
    size_t blen, bpos, bcap;
} jcursor;

typedef struct jtopic {
    struct arbh_journal *j;
    char name[64];
    char dir[4200];
    bool latest_only;
    bool trimmable; /* in journal_trim: arbh_journal_trim may remove segments */
    /* under mu: each trimmer's mark (records below it are covered for it),
     * and the writer round that holds everything appended before the last */
    struct {
        char who[64];
        int64_t mark;
    } marks[JMAX_TRIMMERS];
    int nmarks;
    uint64_t trim_round;
    /* under mu: appended and not yet taken by the writer */
    uint8_t *buf;
    size_t len, cap;
    int64_t next; /* offset the next append gets */
    /* under mu: what readers may read */
    int64_t lo, written, visible;
    int64_t *bases; /* segment base offsets, ascending */
    size_t nbases, capbases;
    /* writer thread only */
    uint8_t *wbuf;
    size_t wcap;
    int fd;
    uint64_t seg_bytes;
    _Atomic bool dirty; /* written since the last fdatasync */
    /* loop 0 only */
    _Atomic bool want;
    bool assigned;
    _Atomic int64_t seek_to; /* INT64_MIN: none */
    int64_t pos;             /* next offset to deliver */
    int64_t committed;       /* stored in the offsets file */
    int64_t handled;         /* every delivered record below was handled */
    int64_t *fifo;           /* delivered offsets not yet done, oldest first */
    size_t fhead, flen, fcap;
    jcursor cur;
} jtopic;

struct arbh_journal {
    char dir[4096];
    int fsync_mode; /* 0 off, 1 group, 2 always */
    int64_t fsync_ns;
    uint64_t segment_bytes, buffer_bytes;
    jtopic topics[JMAX_TOPICS];
    int ntopics;
    arbh_kafka_log_fn log;
    void *log_user;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t writer;
    bool writer_started, writer_stop, stopped;
    bool appended;  /* something waits for the writer */
    uint64_t round; /* under mu: batches the writer has taken */
    /* the last round written, and the last round known on disk (synced;
     * with journal_fsync = off, written is all there is) */
    _Atomic uint64_t written_round, synced_round;
    /* group mode: a thread of its own syncs, so a slow fdatasync never
     * holds the next batch's write (and so its delivery) back */
    pthread_mutex_t sync_mu; /* held while syncing, and by the writer to close a segment */
    pthread_cond_t sync_cv;
    pthread_t syncer;
    bool syncer_started, syncer_stop;

    struct event_base *base;
    int wake_fd;
    struct event *wake_ev, *retry_ev, *commit_ev;
    arbh_kafka_deliver_fn deliver;
    void *deliver_user;
    arbh_kafka_partition_fn part_fn;
    void *part_user;
    bool started, consuming;
    bool store_failing; /* loop 0: the offsets file could not be written */

    _Atomic uint64_t appended_n, appended_bytes, refused, written_bytes, syncs, delivered, done,
        redelivered, segments_removed;
    _Atomic int64_t sync_ns_max;
    _Atomic int failed;
    char detail[256];
};

/* ---- small pieces ---- */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

/* Slicing-by-8 (no library we may use offers CRC-32C; zlib's CRC is the
 * other polynomial and not a dependency of ours). */
uint32_t arbh_crc32c(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&crc_once, crc_init);
    const uint8_t *p = data;
    crc = ~crc;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        v ^= crc;
        crc = crc_table[7][v & 0xff] ^ crc_table[6][(v >> 8) & 0xff] ^
              crc_table[5][(v >> 16) & 0xff] ^ crc_table[4][(v >> 24) & 0xff] ^
              crc_table[3][(v >> 32) & 0xff] ^ crc_table[2][(v >> 40) & 0xff] ^
              crc_table[1][(v >> 48) & 0xff] ^ crc_table[0][v >> 56];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

static inline uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static int64_t mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

__attribute__((format(printf, 3, 4))) static void jlog(arbh_journal *j, int level, const char *fmt,
                                                       ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (j->log)
        j->log(j->log_user, level, msg);
    else
        fprintf(stderr, "journal: %s\n", msg);
}

static void fail(arbh_journal *j, const char *what, int err)
{
    if (atomic_exchange(&j->failed, 1))
        return;
    snprintf(j->detail, sizeof j->detail, "%s: %s", what, strerror(err));
    jlog(j, ARB_LOG_ERROR, "%s: %s: records are no longer delivered", what, strerror(err));
}

static jtopic *topic_find(const arbh_journal *j, const char *name)
{
    for (int i = 0; i < j->ntopics; i++)
        if (!strcmp(j->topics[i].name, name))
            return (jtopic *)&j->topics[i];
    return NULL;
}

static void seg_path(const jtopic *t, int64_t base, char *out, size_t n)
{
    snprintf(out, n, "%s/%020" PRId64 ".log", t->dir, base);
}

static int bases_push(jtopic *t, int64_t base)
{
    if (t->nbases == t->capbases) {
        size_t cap = t->capbases ? 2 * t->capbases : 16;
        int64_t *b = realloc(t->bases, cap * sizeof *b);
        if (!b)
            return ARB_ENOMEM;
        t->bases = b;
        t->capbases = cap;
    }
    t->bases[t->nbases++] = base;
    return ARB_OK;
}

static int write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* ---- opening: check every segment, cut at the first bad record ---- */

static int base_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Checks one segment from its start. Returns the byte length of its good
 * prefix; *next is the offset after its last good record, *why says what
 * ended it early (NULL: the whole file is good). */
static off_t check_segment(int fd, int64_t base, int64_t *next, const char **why)
{
    size_t cap = 1 << 20, have = 0;
    uint8_t *buf = malloc(cap);
    off_t good = 0, at = 0; /* at: file position of buf[0] */
    *next = base;
    *why = NULL;
    if (!buf) {
        *why = "out of memory";
        return 0;
    }
    for (;;) {
        size_t pos = (size_t)(good - at);
        if (have - pos < JHDR || have - pos < JHDR + get32(buf + pos + 4)) {
            /* Refill: keep the partial record, read on. */
            if (pos) {
                memmove(buf, buf + pos, have - pos);
                have -= pos;
                at += (off_t)pos;
                pos = 0;
            }
            if (have >= JHDR && JHDR + get32(buf + 4) > cap && get32(buf + 4) <= JMAX_RECORD) {
                size_t ncap = JHDR + get32(buf + 4);
                uint8_t *nb = realloc(buf, ncap);
                if (!nb) {
                    *why = "out of memory";
                    break;
                }
                buf = nb;
                cap = ncap;
            }
            ssize_t r = pread(fd, buf + have, cap - have, at + (off_t)have);
            if (r < 0) {
                *why = "read error";
                break;
            }
            have += (size_t)r;
            if (r == 0) {
                if (have - pos)
                    *why = "a torn record";
                break;
            }
            continue;
        }
        const uint8_t *rec = buf + pos;
        uint32_t len = get32(rec + 4);
        if (len > JMAX_RECORD) {
            *why = "an impossible length";
            break;
        }
        if (arbh_crc32c(0, rec + 4, JHDR - 4 + len) != get32(rec)) {
            *why = "a checksum mismatch";
            break;
        }
        if ((int64_t)get64(rec + 8) != *next) {
            *why = "an offset out of sequence";
            break;
        }
        (*next)++;
        good += JHDR + len;
    }
    free(buf);
    return good;
}

static int open_topic(arbh_journal *j, jtopic *t, char *err, size_t n)
{
    if (arbh_mkdir_p(t->dir, 0755)) {
        snprintf(err, n, "journal: cannot create %s: %s", t->dir, strerror(errno));
        return ARB_ERROR;
    }
    DIR *d = opendir(t->dir);
    if (!d) {
        snprintf(err, n, "journal: cannot open %s: %s", t->dir, strerror(errno));
        return ARB_ERROR;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long long base = strtoll(e->d_name, &end, 10);
        if (end != e->d_name + 20 || strcmp(end, ".log") || base < 0)
            continue;
        if (bases_push(t, base)) {
            closedir(d);
            return ARB_ENOMEM;
        }
    }
    closedir(d);
    if (t->nbases)
        qsort(t->bases, t->nbases, sizeof *t->bases, base_cmp);
    int64_t next = t->nbases ? t->bases[0] : 0;
    t->lo = next;
    for (size_t i = 0; i < t->nbases; i++) {
        char path[4300];
        seg_path(t, t->bases[i], path, sizeof path);
        int fd = open(path, O_RDWR | O_CLOEXEC);
        const char *why = NULL;
        off_t good = 0;
        struct stat st = {0};
        if (fd < 0 || fstat(fd, &st)) {
            why = "unreadable";
        } else if (t->bases[i] != next) {
            why = "a gap before it";
        } else {
            good = check_segment(fd, t->bases[i], &next, &why);
        }
        if (!why) {
            close(fd);
            continue;
        }
        /* Cut here: this file at its last good record, every later one whole. */
        uint64_t cut = (uint64_t)(st.st_size - good);
        if (fd >= 0 && good > 0) {
            if (ftruncate(fd, good) || fsync(fd))
                jlog(j, ARB_LOG_ERROR, "%s: cannot cut %s: %s", t->name, path, strerror(errno));
        } else {
            unlink(path);
        }
        if (fd >= 0)
            close(fd);
        size_t keep = good > 0 ? i + 1 : i;
        for (size_t k = i + 1; k < t->nbases; k++) {
            char later[4300];
            struct stat ls;
            seg_path(t, t->bases[k], later, sizeof later);
            if (!stat(later, &ls))
                cut += (uint64_t)ls.st_size;
            unlink(later);
        }
        jlog(j, ARB_LOG_WARN,
             "%s: %s at offset %" PRId64 " in %s: cut %" PRIu64
             " bytes; the log ends at offset %" PRId64,
             t->name, why, next, path, cut, next);
        t->nbases = keep;
        break;
    }
    if (!t->nbases)
        t->lo = next;
    t->next = t->written = t->visible = next;
    t->fd = -1;
    return ARB_OK;
}

/* The writer's segment: the last one, or a new one at `base`. */
static int open_segment(arbh_journal *j, jtopic *t, int64_t base, bool create)
{
    char path[4300];
    seg_path(t, base, path, sizeof path);
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | (create ? O_CREAT : 0), 0644);
    if (fd < 0) {
        fail(j, "journal: cannot open a segment", errno);
        return ARB_ERROR;
    }
    struct stat st;
    fstat(fd, &st);
    pthread_mutex_lock(&j->sync_mu);
    if (t->fd >= 0) {
        if (j->fsync_mode && atomic_load(&t->dirty))
            fdatasync(t->fd);
        close(t->fd);
    }
    t->fd = fd;
    atomic_store(&t->dirty, false);
    pthread_mutex_unlock(&j->sync_mu);
    t->seg_bytes = (uint64_t)st.st_size;
    if (create) {
        /* The new name must survive a crash as well as the records in it. */
        if (j->fsync_mode) {
            int dfd = open(t->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd >= 0) {
                fsync(dfd);
                close(dfd);
            }
        }
        pthread_mutex_lock(&j->mu);
        int rc = (!t->nbases || t->bases[t->nbases - 1] != base) ? bases_push(t, base) : ARB_OK;
        size_t drop = t->latest_only && t->nbases > 1 ? t->nbases - 1 : 0;
        int64_t *gone = NULL;
        if (drop && (gone = malloc(drop * sizeof *gone))) {
            memcpy(gone, t->bases, drop * sizeof *gone);
            memmove(t->bases, t->bases + drop, (t->nbases - drop) * sizeof *t->bases);
            t->nbases -= drop;
            t->lo = t->bases[0];
        } else {
            drop = 0;
        }
        pthread_mutex_unlock(&j->mu);
        for (size_t i = 0; i < drop; i++) {
            char old[4300];
            seg_path(t, gone[i], old, sizeof old);
            unlink(old);
            atomic_fetch_add(&j->segments_removed, 1);
        }
        free(gone);
        if (rc)
            return rc;
    }
    return ARB_OK;
}

/* ---- the writer thread ---- */

static void wake_loop(arbh_journal *j)
{
    if (j->wake_fd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(j->wake_fd, &one, sizeof one);
        (void)w;
    }
}

/* fdatasync of every segment written since its last sync. */
static void sync_dirty(arbh_journal *j)
{
    int64_t t0 = mono_ns();
    bool any = false;
    uint64_t round = atomic_load(&j->written_round);
    pthread_mutex_lock(&j->sync_mu);
    for (int i = 0; i < j->ntopics; i++) {
        jtopic *t = &j->topics[i];
        if (t->fd >= 0 && atomic_exchange(&t->dirty, false)) {
            any = true;
            if (fdatasync(t->fd))
                fail(j, "journal: fdatasync", errno);
        }
    }
    pthread_mutex_unlock(&j->sync_mu);
    if (!atomic_load(&j->failed))
        atomic_store(&j->synced_round, round);
    if (!any)
        return;
    int64_t took = mono_ns() - t0;
    atomic_fetch_add(&j->syncs, 1);
    if (took > atomic_load(&j->sync_ns_max))
        atomic_store(&j->sync_ns_max, took);
}

/* Group mode: every journal_fsync_ms, sync what was written meanwhile. */
static void *syncer_main(void *arg)
{
    arbh_journal *j = arg;
    pthread_mutex_lock(&j->sync_mu);
    while (!j->syncer_stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t ns = until.tv_nsec + j->fsync_ns;
        until.tv_sec += ns / 1000000000;
        until.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&j->sync_cv, &j->sync_mu, &until);
        pthread_mutex_unlock(&j->sync_mu);
        sync_dirty(j);
        pthread_mutex_lock(&j->sync_mu);
    }
    pthread_mutex_unlock(&j->sync_mu);
    sync_dirty(j); /* what the writer's last batches left */
    return NULL;
}

static void *writer_main(void *arg)
{
    arbh_journal *j = arg;
    size_t wlen[JMAX_TOPICS];
    int64_t wend[JMAX_TOPICS], wfirst[JMAX_TOPICS];
    pthread_mutex_lock(&j->mu);
    for (;;) {
        while (!j->appended && !j->writer_stop)
            pthread_cond_wait(&j->cv, &j->mu);
        bool stop = j->writer_stop && !j->appended;
        j->appended = false;
        uint64_t round = ++j->round;
        for (int i = 0; i < j->ntopics; i++) {
            jtopic *t = &j->topics[i];
            uint8_t *b = t->wbuf;
            size_t c = t->wcap;
            t->wbuf = t->buf;
            t->wcap = t->cap;
            wlen[i] = t->len;
            wfirst[i] = t->written;
            wend[i] = t->next;
            t->buf = b;
            t->cap = c;
            t->len = 0;
        }
        pthread_mutex_unlock(&j->mu);

        for (int i = 0; i < j->ntopics; i++) {
            jtopic *t = &j->topics[i];
            if (!wlen[i] || atomic_load(&j->failed))
                continue;
            if (t->fd < 0 || t->seg_bytes >= j->segment_bytes)
                if (open_segment(j, t, wfirst[i], true))
                    continue;
            if (write_all(t->fd, t->wbuf, wlen[i])) {
                fail(j, "journal: write", errno);
                continue;
            }
            t->seg_bytes += wlen[i];
            atomic_store(&t->dirty, true);
            atomic_fetch_add(&j->written_bytes, wlen[i]);
        }
        atomic_store(&j->written_round, round);
        if (j->fsync_mode == 0 && !atomic_load(&j->failed))
            atomic_store(&j->synced_round, round);
        else if (j->fsync_mode == 2)
            sync_dirty(j); /* always: delivered only once synced */

        pthread_mutex_lock(&j->mu);
        bool moved = false;
        for (int i = 0; i < j->ntopics; i++) {
            jtopic *t = &j->topics[i];
            if (!wlen[i] || atomic_load(&j->failed))
                continue;
            t->written = t->visible = wend[i];
            moved = true;
        }
        if (moved)
            wake_loop(j);
        if (stop)
            break;
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

/* ---- reading ---- */

static void cur_close(jcursor *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->blen = c->bpos = 0;
}

/* Positions the cursor on `offset` (or the first kept record above it). */
static int cur_seek(jtopic *t, jcursor *c, int64_t offset)
{
    cur_close(c);
    pthread_mutex_lock(&t->j->mu);
    if (offset < t->lo)
        offset = t->lo;
    int64_t base = -1;
    for (size_t i = t->nbases; i-- > 0;)
        if (t->bases[i] <= offset) {
            base = t->bases[i];
            break;
        }
    pthread_mutex_unlock(&t->j->mu);
    if (base < 0) {
        c->next = offset;
        return ARB_ENOENT;
    }
    char path[4300];
    seg_path(t, base, path, sizeof path);
    c->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (c->fd < 0)
        return ARB_ERROR;
    c->next = base;
    c->fpos = 0;
    return ARB_OK;
}

typedef struct jrec {
    int64_t offset;
    uint64_t key;
    const uint8_t *data;
    uint32_t len;
} jrec;

/* The record at the cursor, if its offset is below `limit` (written records
 * only). 1: *r is set (valid until the cursor moves); 0: none yet; <0 error. */
static int cur_peek(jtopic *t, jcursor *c, int64_t limit, jrec *r)
{
    if (c->next >= limit)
        return 0;
    for (int tries = 0; tries < 6; tries++) {
        if (c->fd < 0 && cur_seek(t, c, c->next) != ARB_OK)
            return ARB_ERROR;
        size_t avail = c->blen - c->bpos;
        if (avail >= JHDR && avail >= JHDR + get32(c->buf + c->bpos + 4)) {
            const uint8_t *p = c->buf + c->bpos;
            if ((int64_t)get64(p + 8) != c->next)
                return ARB_EBADMSG;
            *r = (jrec){c->next, get64(p + 16), p + JHDR, get32(p + 4)};
            return 1;
        }
        /* Refill, keeping the partial record at the front. */
        if (c->bpos) {
            memmove(c->buf, c->buf + c->bpos, avail);
            c->fpos += (off_t)c->bpos;
            c->blen = avail;
            c->bpos = 0;
        }
        size_t need = avail >= JHDR ? JHDR + get32(c->buf + 4) : JHDR;
        if (need > JHDR + JMAX_RECORD)
            return ARB_EBADMSG;
        size_t want = need > (64u << 10) ? need : (64u << 10);
        if (c->bcap < want) {
            uint8_t *nb = realloc(c->buf, want);
            if (!nb)
                return ARB_ENOMEM;
            c->buf = nb;
            c->bcap = want;
        }
        ssize_t got = pread(c->fd, c->buf + c->blen, c->bcap - c->blen, c->fpos + (off_t)c->blen);
        if (got < 0)
            return ARB_ERROR;
        c->blen += (size_t)got;
        if (got == 0) {
            if (avail)
                return ARB_EBADMSG; /* a written record cannot be short */
            /* End of this segment: the next record opens the next one. */
            int64_t next = c->next;
            cur_close(c);
            c->next = next;
            if (cur_seek(t, c, next) != ARB_OK)
                return ARB_ERROR;
            while (c->next < next) { /* the next segment starts at `next` */
                jrec skip;
                int rc = cur_peek(t, c, limit, &skip);
                if (rc != 1)
                    return rc < 0 ? rc : ARB_ERROR;
                c->bpos += JHDR + skip.len;
                c->next++;
            }
        }
    }
    return ARB_ERROR;
}

static void cur_skip(jcursor *c, const jrec *r)
{
    c->bpos += JHDR + r->len;
    c->next++;
}

/* Moves a fresh cursor to `offset`, skipping the records before it in its
 * segment. */
static int cur_goto(jtopic *t, jcursor *c, int64_t offset, int64_t limit)
{
    int rc = cur_seek(t, c, offset);
    if (rc != ARB_OK)
        return rc;
    while (c->next < offset) {
        jrec r;
        rc = cur_peek(t, c, limit, &r);
        if (rc != 1)
            return rc < 0 ? rc : ARB_ENOENT;
        cur_skip(c, &r);
    }
    return ARB_OK;
}

static jtopic *routed(arbh_journal *j, const char *topic, int partition, int *rc)
{
    jtopic *t = topic_find(j, topic);
    *rc = !t || partition != 0 ? ARB_ENOENT : ARB_OK;
    return *rc ? NULL : t;
}

int arbh_journal_watermarks(arbh_journal *j, const char *topic, int partition, int64_t *lo,
                            int64_t *hi)
{
    int rc;
    jtopic *t = routed(j, topic, partition, &rc);
    if (!t)
        return rc;
    pthread_mutex_lock(&j->mu);
    *lo = t->lo;
    *hi = t->written;
    pthread_mutex_unlock(&j->mu);
    return ARB_OK;
}

typedef struct part0_reader {
    arbh_kafka_part_record_fn fn;
    void *user;
} part0_reader;

static int part0_record(void *user, const void *bytes, size_t len, uint64_t key, int64_t offset)
{
    part0_reader *r = user;
    return r->fn(r->user, bytes, len, key, 0, offset);
}

int arbh_journal_read_ranges(arbh_journal *j, const char *topic, int n, const int64_t *from,
                             const int64_t *to, arbh_kafka_part_record_fn fn, void *user)
{
    if (n < 1)
        return ARB_EINVAL;
    part0_reader r = {fn, user};
    return arbh_journal_read_range(j, topic, 0, from[0], to[0], part0_record, &r);
}

int arbh_journal_read_range(arbh_journal *j, const char *topic, int partition, int64_t from,
                            int64_t to, arbh_kafka_record_fn fn, void *user)
{
    int64_t lo, hi;
    int rc = arbh_journal_watermarks(j, topic, partition, &lo, &hi);
    if (rc)
        return rc;
    if (to < 0 || to > hi)
        to = hi;
    if (from < lo)
        from = lo;
    if (from >= to)
        return ARB_OK;
    jtopic *t = topic_find(j, topic);
    jcursor c = {.fd = -1};
    rc = cur_goto(t, &c, from, to);
    while (rc == ARB_OK && c.next < to) {
        jrec r;
        int got = cur_peek(t, &c, to, &r);
        if (got != 1) {
            rc = got < 0 ? got : ARB_ERROR;
            break;
        }
        rc = fn(user, r.data, r.len, r.key, r.offset);
        cur_skip(&c, &r);
    }
    cur_close(&c);
    free(c.buf);
    return rc;
}

typedef struct last_rec {
    void *bytes;
    size_t len;
    int64_t offset;
} last_rec;

static int keep_last(void *user, const void *bytes, size_t len, uint64_t key, int64_t offset)
{
    (void)key;
    last_rec *l = user;
    l->bytes = malloc(len ? len : 1);
    if (!l->bytes)
        return ARB_ENOMEM;
    memcpy(l->bytes, bytes, len);
    l->len = len;
    l->offset = offset;
    return ARB_OK;
}

int arbh_journal_read_last(arbh_journal *j, const char *topic, int partition, void **bytes,
                           size_t *len, int64_t *offset)
{
    int64_t lo, hi;
    int rc = arbh_journal_watermarks(j, topic, partition, &lo, &hi);
    if (rc)
        return rc;
    if (hi <= lo)
        return ARB_ENOENT;
    last_rec l = {0};
    rc = arbh_journal_read_range(j, topic, partition, hi - 1, hi, keep_last, &l);
    if (rc || !l.bytes) {
        free(l.bytes);
        return rc ? rc : ARB_ERROR;
    }
    *bytes = l.bytes;
    *len = l.len;
    *offset = l.offset;
    return ARB_OK;
}

int arbh_journal_partition_of(arbh_journal *j, const char *topic, int32_t *partition)
{
    if (!topic_find(j, topic))
        return ARB_ENOENT;
    *partition = 0;
    return ARB_OK;
}

/* ---- producing ---- */

int arbh_journal_routes(const arbh_journal *j, const char *topic)
{
    return topic_find(j, topic) != NULL;
}

int arbh_journal_produce(arbh_journal *j, const char *topic, uint64_t key, const void *data,
                         size_t len)
{
    jtopic *t = topic_find(j, topic);
    if (!t || len > JMAX_RECORD)
        return ARB_EINVAL;
    uint8_t hdr[JHDR];
    pthread_mutex_lock(&j->mu);
    if (j->stopped || atomic_load(&j->failed)) {
        pthread_mutex_unlock(&j->mu);
        return j->stopped ? ARB_ESTATE : ARB_ERROR;
    }
    if (t->len + JHDR + len > j->buffer_bytes) {
        pthread_mutex_unlock(&j->mu);
        atomic_fetch_add(&j->refused, 1);
        return ARB_EFULL;
    }
    if (t->len + JHDR + len > t->cap) {
        size_t cap = t->cap ? t->cap : 1 << 16;
        while (cap < t->len + JHDR + len)
            cap *= 2;
        uint8_t *b = realloc(t->buf, cap);
        if (!b) {
            pthread_mutex_unlock(&j->mu);
            return ARB_EFULL;
        }
        t->buf = b;
        t->cap = cap;
    }
    uint32_t l32 = (uint32_t)len;
    int64_t off = t->next++;
    memcpy(hdr + 4, &l32, 4);
    memcpy(hdr + 8, &off, 8);
    memcpy(hdr + 16, &key, 8);
    uint32_t crc = arbh_crc32c(arbh_crc32c(0, hdr + 4, JHDR - 4), data, len);
    memcpy(hdr, &crc, 4);
    memcpy(t->buf + t->len, hdr, JHDR);
    if (len)
        memcpy(t->buf + t->len + JHDR, data, len);
    t->len += JHDR + len;
    bool signal = !j->appended;
    j->appended = true;
    if (signal)
        pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
    atomic_fetch_add_explicit(&j->appended_n, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&j->appended_bytes, len, memory_order_relaxed);
    return ARB_OK;
}

/* ---- delivery on loop 0 ---- */

static void done_cb(void *token)
{
    jtopic *t = token;
    if (t->flen) { /* the oldest delivered record is done (done runs in order) */
        t->handled = t->fifo[t->fhead] + 1;
        t->fhead = (t->fhead + 1) % t->fcap;
        t->flen--;
    }
    atomic_fetch_add_explicit(&t->j->done, 1, memory_order_relaxed);
}

static int fifo_push(jtopic *t, int64_t off)
{
    if (t->flen == t->fcap) {
        size_t cap = t->fcap ? 2 * t->fcap : 1024;
        int64_t *f = malloc(cap * sizeof *f);
        if (!f)
            return ARB_ENOMEM;
        for (size_t i = 0; i < t->flen; i++)
            f[i] = t->fifo[(t->fhead + i) % t->fcap];
        free(t->fifo);
        t->fifo = f;
        t->fcap = cap;
        t->fhead = 0;
    }
    t->fifo[(t->fhead + t->flen++) % t->fcap] = off;
    return ARB_OK;
}

static void store_offsets(arbh_journal *j)
{
    bool changed = false;
    for (int i = 0; i < j->ntopics; i++)
        changed |= j->topics[i].assigned && j->topics[i].handled != j->topics[i].committed;
    if (!changed)
        return;
    char path[4200], tmp[4200];
    snprintf(path, sizeof path, "%s/offsets", j->dir);
    snprintf(tmp, sizeof tmp, "%s/offsets.tmp", j->dir);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        if (!j->store_failing)
            jlog(j, ARB_LOG_WARN, "cannot write %s: %s", tmp, strerror(errno));
        j->store_failing = true;
        return;
    }
    for (int i = 0; i < j->ntopics; i++) {
        jtopic *t = &j->topics[i];
        int64_t at = t->assigned ? t->handled : t->committed;
        if (at >= 0)
            fprintf(f, "%s %" PRId64 "\n", t->name, at);
    }
    bool ok = fflush(f) == 0 && (j->fsync_mode == 0 || fdatasync(fileno(f)) == 0);
    ok &= fclose(f) == 0;
    if (!ok || rename(tmp, path)) {
        if (!j->store_failing) /* once per episode, not every 100 ms */
            jlog(j, ARB_LOG_WARN, "cannot store delivery positions in %s: %s", path,
                 strerror(errno));
        j->store_failing = true;
        return;
    }
    if (j->store_failing)
        jlog(j, ARB_LOG_INFO, "delivery positions stored in %s again", path);
    j->store_failing = false;
    for (int i = 0; i < j->ntopics; i++)
        if (j->topics[i].assigned)
            j->topics[i].committed = j->topics[i].handled;
}

static void load_offsets(arbh_journal *j)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/offsets", j->dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char name[64];
    long long off;
    while (fscanf(f, "%63s %lld", name, &off) == 2) {
        jtopic *t = topic_find(j, name);
        if (t && off >= 0)
            t->committed = off > t->written ? t->written : off;
    }
    fclose(f);
}

static void assign_wanted(arbh_journal *j)
{
    for (int i = 0; i < j->ntopics; i++) {
        jtopic *t = &j->topics[i];
        if (t->assigned || !atomic_load(&t->want))
            continue;
        t->assigned = true;
        t->pos = t->committed >= 0 ? t->committed : t->lo;
        t->handled = t->pos;
        if (j->part_fn) /* a seek made here decides where delivery starts */
            j->part_fn(j->part_user, t->name, 0, 1);
    }
}

static void deliver_some(arbh_journal *j)
{
    if (!j->consuming)
        return;
    assign_wanted(j);
    bool more = false, full = false;
    for (int i = 0; i < j->ntopics && !full; i++) {
        jtopic *t = &j->topics[i];
        if (!t->assigned)
            continue;
        int64_t seek = atomic_exchange(&t->seek_to, INT64_MIN);
        if (seek != INT64_MIN) {
            t->pos = seek;
            cur_close(&t->cur);
        }
        pthread_mutex_lock(&j->mu);
        int64_t limit = t->visible, lo = t->lo;
        pthread_mutex_unlock(&j->mu);
        if (t->pos < lo)
            t->pos = lo;
        if (t->pos > limit)
            t->pos = limit;
        for (int n = 0; t->pos < limit; n++) {
            if (n == DELIVER_BUDGET) {
                more = true;
                break;
            }
            if (t->cur.fd < 0 || t->cur.next != t->pos) {
                int rc = cur_goto(t, &t->cur, t->pos, limit);
                if (rc) {
                    fail(j, "journal: cannot read back a written record",
                         rc == ARB_ERROR ? EIO : EBADMSG);
                    return;
                }
            }
            jrec r;
            int got = cur_peek(t, &t->cur, limit, &r);
            if (got != 1) {
                fail(j, "journal: cannot read back a written record", EIO);
                return;
            }
            if (fifo_push(t, r.offset)) {
                full = true;
                break;
            }
            int rc =
                j->deliver(j->deliver_user, t->name, 0, r.offset, r.key, r.data, r.len, done_cb, t);
            if (rc != ARB_OK) {
                t->flen--; /* not taken: offered again later */
                atomic_fetch_add(&j->redelivered, 1);
                full = true;
                break;
            }
            atomic_fetch_add_explicit(&j->delivered, 1, memory_order_relaxed);
            cur_skip(&t->cur, &r);
            t->pos++;
        }
    }
    if (full) {
        struct timeval tv = {0, RETRY_US};
        event_add(j->retry_ev, &tv);
    } else if (more) {
        event_active(j->retry_ev, EV_TIMEOUT, 0);
    }
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    uint64_t v;
    ssize_t r = read(fd, &v, sizeof v);
    (void)r;
    deliver_some(arg);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    deliver_some(arg);
}

int arbh_journal_trim(arbh_journal *j, const char *topic, int partition, const char *who,
                      int64_t offset)
{
    jtopic *t = topic_find(j, topic);
    if (!t)
        return ARB_ENOENT;
    if (partition != 0 || offset < 0)
        return ARB_EINVAL;
    if (!t->trimmable)
        return ARB_OK;
    pthread_mutex_lock(&j->mu);
    int i = 0;
    while (i < t->nmarks && strcmp(t->marks[i].who, who))
        i++;
    if (i == t->nmarks && i < JMAX_TRIMMERS)
        snprintf(t->marks[t->nmarks++].who, sizeof t->marks[0].who, "%s", who);
    if (i < t->nmarks)
        t->marks[i].mark = offset;
    /* The round that holds what the caller published before this call (its
     * snapshot): the next one if the writer has not taken it yet. */
    t->trim_round = j->appended ? j->round + 1 : j->round;
    pthread_mutex_unlock(&j->mu);
    return ARB_OK;
}

/* Removes a trimmable topic's segments that lie wholly below every
 * trimmer's mark and below the stored delivery position, once the round
 * holding what the last trimmer published before its call is on disk: a
 * crash never finds the records gone and what covers them missing. Loop 0. */
static void apply_trims(arbh_journal *j)
{
    uint64_t synced = atomic_load(&j->synced_round);
    for (int i = 0; i < j->ntopics; i++) {
        jtopic *t = &j->topics[i];
        if (!t->trimmable)
            continue;
        pthread_mutex_lock(&j->mu);
        int64_t floor = INT64_MAX;
        for (int k = 0; k < t->nmarks; k++)
            floor = t->marks[k].mark < floor ? t->marks[k].mark : floor;
        if (!t->nmarks || synced < t->trim_round)
            floor = -1;
        if (t->assigned && t->committed < floor)
            floor = t->committed;
        size_t drop = 0;
        while (drop + 1 < t->nbases && t->bases[drop + 1] <= floor)
            drop++;
        int64_t *gone = drop ? malloc(drop * sizeof *gone) : NULL;
        if (gone) {
            memcpy(gone, t->bases, drop * sizeof *gone);
            memmove(t->bases, t->bases + drop, (t->nbases - drop) * sizeof *t->bases);
            t->nbases -= drop;
            t->lo = t->bases[0];
        }
        int64_t lo = t->lo;
        pthread_mutex_unlock(&j->mu);
        if (!gone)
            continue;
        for (size_t k = 0; k < drop; k++) {
            char path[4300];
            seg_path(t, gone[k], path, sizeof path);
            unlink(path);
        }
        free(gone);
        atomic_fetch_add(&j->segments_removed, drop);
        jlog(j, ARB_LOG_INFO, "journal: %s: %zu segment%s below offset %lld removed (covered)",
             t->name, drop, drop == 1 ? "" : "s", (long long)lo);
    }
}

static void on_commit(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    store_offsets(arg);
    apply_trims(arg);
}

int arbh_journal_want(arbh_journal *j, const char *topic)
{
    jtopic *t = topic_find(j, topic);
    if (!t)
        return ARB_EINVAL;
    if (!atomic_exchange(&t->want, true) && j->started)
        wake_loop(j); /* loop 0 assigns it */
    return ARB_OK;
}

void arbh_journal_set_partition_cb(arbh_journal *j, arbh_kafka_partition_fn fn, void *user)
{
    j->part_fn = fn;
    j->part_user = user;
}

int arbh_journal_seek(arbh_journal *j, const char *topic, int partition, int64_t offset)
{
    jtopic *t = topic_find(j, topic);
    if (!t)
        return ARB_ENOENT;
    if (partition != 0)
        return ARB_EINVAL;
    if (offset == ARB_OFFSET_BEGINNING)
        offset = 0;
    else if (offset == ARB_OFFSET_END)
        offset = INT64_MAX;
    else if (offset < 0)
        return ARB_EINVAL;
    if (!t->assigned && !j->started) {
        t->committed = offset; /* where delivery will start */
        return ARB_OK;
    }
    atomic_store(&t->seek_to, offset);
    if (j->started)
        wake_loop(j);
    return ARB_OK;
}

int arbh_journal_start(arbh_journal *j, struct event_base *base, arbh_kafka_deliver_fn fn,
                       void *user)
{
    if (j->started || !fn || !base)
        return ARB_ESTATE;
    j->base = base;
    j->deliver = fn;
    j->deliver_user = user;
    j->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (j->wake_fd < 0)
        return ARB_ERROR;
    j->wake_ev = event_new(base, j->wake_fd, EV_READ | EV_PERSIST, on_wake, j);
    j->retry_ev = evtimer_new(base, on_retry, j);
    j->commit_ev = event_new(base, -1, EV_PERSIST, on_commit, j);
    if (!j->wake_ev || !j->retry_ev || !j->commit_ev)
        return ARB_ENOMEM;
    struct timeval tv = {0, COMMIT_US};
    event_add(j->wake_ev, NULL);
    event_add(j->commit_ev, &tv);
    j->started = j->consuming = true;
    deliver_some(j);
    return ARB_OK;
}

/* ---- lifecycle ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag;
    return ftw->level > 0 ? remove(path) : 0;
}

/* Whether tok is one of the names in a comma or space separated list. */
static bool in_list(const char *list, const char *tok)
{
    size_t tl = strlen(tok);
    for (const char *p = list; (p = strstr(p, tok)); p += tl)
        if ((p == list || strchr(" \t,", p[-1])) && (!p[tl] || strchr(" \t,", p[tl])))
            return true;
    return false;
}

static int topic_list(arbh_journal *j, const char *list, const char *latest, const char *trim,
                      char *err, size_t n)
{
    char *copy = strdup(list);
    if (!copy)
        return ARB_ENOMEM;
    char *save = NULL;
    for (char *tok = strtok_r(copy, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
        if (topic_find(j, tok))
            continue;
        if (j->ntopics == JMAX_TOPICS || strlen(tok) >= sizeof j->topics[0].name ||
            strchr(tok, '/') || tok[0] == '.') {
            snprintf(err, n, "'%s': at most %d topics, each a plain name", tok, JMAX_TOPICS);
            free(copy);
            return ARB_EINVAL;
        }
        jtopic *t = &j->topics[j->ntopics++];
        t->j = j;
        snprintf(t->name, sizeof t->name, "%s", tok);
        int dl = snprintf(NULL, 0, "%s/%s", j->dir, tok);
        if (dl < 0 || (size_t)dl >= sizeof t->dir) {
            snprintf(err, n, "'%s': the journal's path is too long", tok);
            free(copy);
            return ARB_EINVAL;
        }
        memcpy(t->dir, j->dir, strlen(j->dir));
        t->dir[strlen(j->dir)] = '/';
        memcpy(t->dir + strlen(j->dir) + 1, tok, strlen(tok) + 1);
        t->fd = t->cur.fd = -1;
        t->committed = -1;
        atomic_store(&t->seek_to, INT64_MIN);
        t->latest_only = in_list(latest, tok);
        t->trimmable = in_list(trim, tok);
    }
    free(copy);
    return ARB_OK;
}

static int parse_num(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    uint64_t mul = 1;
    if (*end == 'K' || *end == 'k')
        mul = 1024, end++;
    else if (*end == 'M' || *end == 'm')
        mul = 1024 * 1024, end++;
    else if (*end == 'G' || *end == 'g')
        mul = 1024ull * 1024 * 1024, end++;
    if (errno || end == s || *end || s[0] == '-' || v > max / mul || v * mul < min)
        return ARB_EINVAL;
    *out = v * mul;
    return ARB_OK;
}

static int cfg_error(arbh_config *cfg, const char *key, char *err, size_t n, const char *what)
{
    arbh_cfg_entry *e = arbh_config_find(cfg, "bus", key);
    snprintf(err, n, "%s:%d: [bus] %s: '%s': %s", e ? e->file : "?", e ? e->line : 0, key,
             e ? e->value : "", what);
    return ARB_EINVAL;
}

int arbh_journal_new(arbh_config *cfg, arbh_kafka_log_fn log, void *log_user, arbh_journal **out,
                     char *err, size_t n)
{
    *out = NULL;
    const char *dir = arbh_config_get(cfg, "bus", "journal", "");
    if (!dir[0])
        return ARB_OK;
    arbh_journal *j = calloc(1, sizeof *j);
    if (!j)
        return ARB_ENOMEM;
    j->log = log;
    j->log_user = log_user;
    j->wake_fd = -1;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    pthread_mutex_init(&j->sync_mu, NULL);
    pthread_cond_init(&j->sync_cv, NULL);
    snprintf(j->dir, sizeof j->dir, "%s", dir);
    const char *mode = arbh_config_get(cfg, "bus", "journal_fsync", "group");
    uint64_t ms, seg, buf;
    int rc = ARB_OK;
    if (!strcmp(mode, "off"))
        j->fsync_mode = 0;
    else if (!strcmp(mode, "group"))
        j->fsync_mode = 1;
    else if (!strcmp(mode, "always"))
        j->fsync_mode = 2;
    else
        rc = cfg_error(cfg, "journal_fsync", err, n, "expected group, always or off");
    if (!rc && parse_num(arbh_config_get(cfg, "bus", "journal_fsync_ms", "20"), 1, 10000, &ms))
        rc = cfg_error(cfg, "journal_fsync_ms", err, n, "expected milliseconds 1..10000");
    if (!rc && parse_num(arbh_config_get(cfg, "bus", "journal_segment_bytes", "64M"), 1 << 16,
                         1ull << 40, &seg))
        rc = cfg_error(cfg, "journal_segment_bytes", err, n, "expected a size from 64K (e.g. 64M)");
    if (!rc && parse_num(arbh_config_get(cfg, "bus", "journal_buffer_bytes", "64M"), 1 << 16,
                         1ull << 40, &buf))
        rc = cfg_error(cfg, "journal_buffer_bytes", err, n, "expected a size from 64K (e.g. 64M)");
    if (!rc) {
        char terr[256] = "";
        rc = topic_list(j,
                        arbh_config_get(cfg, "bus", "journal_topics",
                                        "order_commands,order_events,trade_executed,market_data,"
                                        "matcher_snapshots"),
                        arbh_config_get(cfg, "bus", "journal_latest_only", "matcher_snapshots"),
                        arbh_config_get(cfg, "bus", "journal_trim", "order_commands"), terr,
                        sizeof terr);
        if (rc)
            cfg_error(cfg, "journal_topics", err, n, terr);
    }
    if (rc) {
        arbh_journal_free(j);
        return rc;
    }
    j->fsync_ns = (int64_t)ms * 1000000;
    j->segment_bytes = seg;
    j->buffer_bytes = buf;
    *out = j;
    return ARB_OK;
}

int arbh_journal_open(arbh_journal *j, bool fresh, char *err, size_t n)
{
    if (arbh_mkdir_p(j->dir, 0755)) {
        snprintf(err, n, "journal: cannot create %s: %s", j->dir, strerror(errno));
        return ARB_ERROR;
    }
    if (fresh)
        nftw(j->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    int rc = ARB_OK;
    for (int i = 0; i < j->ntopics && !rc; i++)
        rc = open_topic(j, &j->topics[i], err, n);
    if (rc)
        return rc;
    load_offsets(j);
    if (pthread_create(&j->writer, NULL, writer_main, j)) {
        snprintf(err, n, "journal: cannot start its writer thread");
        return ARB_ERROR;
    }
    j->writer_started = true;
    if (j->fsync_mode == 1) {
        if (pthread_create(&j->syncer, NULL, syncer_main, j)) {
            snprintf(err, n, "journal: cannot start its sync thread");
            return ARB_ERROR;
        }
        j->syncer_started = true;
    }
    return ARB_OK;
}

const char *arbh_journal_dir(const arbh_journal *j) { return j->dir; }

void arbh_journal_stop_consuming(arbh_journal *j)
{
    if (!j->consuming)
        return;
    j->consuming = false;
    if (j->retry_ev)
        event_del(j->retry_ev);
    store_offsets(j);
}

void arbh_journal_stop(arbh_journal *j)
{
    arbh_journal_stop_consuming(j);
    pthread_mutex_lock(&j->mu);
    j->stopped = true;
    j->writer_stop = true;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
    if (j->writer_started) {
        pthread_join(j->writer, NULL);
        j->writer_started = false;
    }
    if (j->syncer_started) {
        pthread_mutex_lock(&j->sync_mu);
        j->syncer_stop = true;
        pthread_cond_signal(&j->sync_cv);
        pthread_mutex_unlock(&j->sync_mu);
        pthread_join(j->syncer, NULL);
        j->syncer_started = false;
    }
}

void arbh_journal_free(arbh_journal *j)
{
    if (!j)
        return;
    arbh_journal_stop(j);
    if (j->wake_ev)
        event_free(j->wake_ev);
    if (j->retry_ev)
        event_free(j->retry_ev);
    if (j->commit_ev)
        event_free(j->commit_ev);
    if (j->wake_fd >= 0)
        close(j->wake_fd);
    for (int i = 0; i < j->ntopics; i++) {
        jtopic *t = &j->topics[i];
        if (t->fd >= 0) {
            if (j->fsync_mode && atomic_load(&t->dirty))
                fdatasync(t->fd);
            close(t->fd);
        }
        cur_close(&t->cur);
        free(t->cur.buf);
        free(t->buf);
        free(t->wbuf);
        free(t->bases);
        free(t->fifo);
    }
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->sync_mu);
    pthread_cond_destroy(&j->sync_cv);
    free(j);
}

void arbh_journal_get_stats(arbh_journal *j, arbh_journal_stats *out)
{
    *out = (arbh_journal_stats){
        .appended = atomic_load(&j->appended_n),
        .appended_bytes = atomic_load(&j->appended_bytes),
        .refused = atomic_load(&j->refused),
        .written_bytes = atomic_load(&j->written_bytes),
        .syncs = atomic_load(&j->syncs),
        .delivered = atomic_load(&j->delivered),
        .done = atomic_load(&j->done),
        .redelivered = atomic_load(&j->redelivered),
        .segments_removed = atomic_load(&j->segments_removed),
        .sync_ns_max = atomic_load(&j->sync_ns_max),
        .healthy = !atomic_load(&j->failed),
    };
    if (!out->healthy)
        snprintf(out->detail, sizeof out->detail, "%s", j->detail);
}

/*
 * db_state.c -- database health and backoff (see db_state.h).
 */
#include "db_state.h"

#include <stdio.h>
#include <string.h>

void rec_health_init(rec_db_health *h, int64_t backoff_min_ns, int64_t backoff_max_ns,
                     int64_t now_ns)
{
    memset(h, 0, sizeof *h);
    if (backoff_min_ns < 1)
        backoff_min_ns = 1;
    if (backoff_max_ns < backoff_min_ns)
        backoff_max_ns = backoff_min_ns;
    h->state = REC_DB_STARTING;
    h->since_ns = now_ns;
    h->backoff_min_ns = backoff_min_ns;
    h->backoff_max_ns = backoff_max_ns;
    h->next_backoff_ns = backoff_min_ns;
}

static int move_to(rec_db_health *h, enum rec_db_state s, int64_t now_ns)
{
    if (h->state == s)
        return 0;
    h->state = s;
    h->since_ns = now_ns;
    return 1;
}

int rec_health_failed(rec_db_health *h, const char *why, int64_t now_ns, int64_t *retry_in_ns)
{
    /* libpq messages span lines and indent with tabs: keep one line. */
    const char *p = why ? why : "unknown error";
    size_t n = 0;
    int space = 1;
    for (; *p && n + 1 < sizeof h->error; p++) {
        int ws = *p == ' ' || *p == '\n' || *p == '\r' || *p == '\t';
        if (ws && space)
            continue;
        h->error[n++] = ws ? ' ' : *p;
        space = ws;
    }
    while (n && h->error[n - 1] == ' ')
        n--;
    h->error[n] = 0;
    h->failures++;
    *retry_in_ns = h->next_backoff_ns;
    h->next_backoff_ns =
        h->next_backoff_ns > h->backoff_max_ns / 2 ? h->backoff_max_ns : h->next_backoff_ns * 2;
    int changed = move_to(h, REC_DB_DOWN, now_ns);
    if (changed)
        h->outages++;
    return changed;
}

int rec_health_ok(rec_db_health *h, int64_t now_ns)
{
    h->failures = 0;
    h->next_backoff_ns = h->backoff_min_ns;
    return move_to(h, REC_DB_UP, now_ns);
}

int rec_health_slow(rec_db_health *h, int64_t now_ns)
{
    if (h->state != REC_DB_UP)
        return 0;
    return move_to(h, REC_DB_SLOW, now_ns);
}

const char *rec_db_state_name(enum rec_db_state s)
{
    switch (s) {
    case REC_DB_STARTING: return "starting";
    case REC_DB_UP: return "up";
    case REC_DB_SLOW: return "slow";
    case REC_DB_DOWN: return "down";
    }
    return "?";
}

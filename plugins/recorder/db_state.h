/*
 * db_state.h -- what the recorder believes about its database: starting, up,
 * slow or down, since when and why, and how long to wait before the next
 * connection attempt (exponential backoff).
 *
 * Pure state on a caller-supplied clock: no libpq, no timers. The writer
 * feeds it events (connected, failed, flush took long); it answers whether
 * the state changed, which is the one moment worth a log line, so an outage
 * logs once when it starts and once when it ends, however many retries lie
 * between.
 */
#ifndef REC_DB_STATE_H
#define REC_DB_STATE_H

#include <stdint.h>

enum rec_db_state {
    REC_DB_STARTING = 0, /* never connected yet */
    REC_DB_UP = 1,       /* connected, schema ready, flushes succeed */
    REC_DB_SLOW = 2,     /* connected, but a flush has been running too long */
    REC_DB_DOWN = 3,     /* the last attempt failed; retrying with backoff */
};

typedef struct rec_db_health {
    enum rec_db_state state;
    int64_t since_ns; /* clock when the state began */
    int64_t backoff_min_ns;
    int64_t backoff_max_ns;
    int64_t next_backoff_ns; /* the wait after the next failure */
    uint64_t failures;       /* failed attempts since the last success */
    uint64_t outages;        /* times the state became DOWN */
    char error[256];         /* the last failure, one line */
} rec_db_health;

void rec_health_init(rec_db_health *h, int64_t backoff_min_ns, int64_t backoff_max_ns,
                     int64_t now_ns);

/* An attempt or a flush failed. Returns 1 if this moved the state to DOWN
 * (log it); *retry_in_ns is how long to wait before connecting again. */
int rec_health_failed(rec_db_health *h, const char *why, int64_t now_ns, int64_t *retry_in_ns);

/* Connected with the schema ready, or a flush committed. Resets the backoff.
 * Returns 1 if the state changed to UP (log it). */
int rec_health_ok(rec_db_health *h, int64_t now_ns);

/* A flush has been running longer than the slow threshold. Returns 1 if the
 * state changed to SLOW. Only an UP database can become slow. */
int rec_health_slow(rec_db_health *h, int64_t now_ns);

const char *rec_db_state_name(enum rec_db_state s);

#endif

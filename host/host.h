/*
 * host.h -- arb-host's private model: the host, its event loops, the bus's
 * topics and subscriptions, and plugin instances with their registrations.
 *
 * Threading: loop 0 runs on the main thread (signals, admin endpoint);
 * loops 1..N-1 each run on a worker thread. Every instance lives on exactly
 * one loop, and everything that touches an instance (its callbacks, its
 * registrations, reload) runs on that loop's thread. Cross-loop work goes
 * through the bus's SPSC rings (ring.h) or arbh_loop_call() for control.
 * Not here: the public plugin contract (sdk/arb/plugin.h).
 */
#ifndef ARBH_HOST_H
#define ARBH_HOST_H

#include <arb/plugin.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "ring.h"

#define ARBH_MAX_LOOPS 8
#define ARBH_DEFAULT_QUEUE_BYTES (4u << 20)

struct event;
struct evhttp;
typedef struct arbh_host arbh_host;
typedef struct arbh_instance arbh_instance;

/* The keys a subscription reads (arb_subscribe_keys): ranges sorted by lo,
 * apart (merged where they touched), so a key is in at most one. */
typedef struct arbh_keys {
    size_t n;
    arb_key_range r[];
} arbh_keys;

/* True if `keys` (NULL: every key) has `key`. A few ranges (an agent's
 * instruments, its accounts) are a short scan; many, a binary search. */
static inline bool arbh_keys_want(const arbh_keys *keys, uint64_t key)
{
    if (!keys)
        return true;
    size_t lo = 0, hi = keys->n;
    if (hi > 8) {
        while (hi - lo > 1) { /* the last range with r.lo <= key */
            size_t mid = lo + (hi - lo) / 2;
            if (keys->r[mid].lo <= key)
                lo = mid;
            else
                hi = mid;
        }
        return keys->r[lo].lo <= key && key <= keys->r[lo].hi;
    }
    for (size_t i = 0; i < hi && keys->r[i].lo <= key; i++)
        if (key <= keys->r[i].hi)
            return true;
    return false;
}

typedef struct arbh_sub {
    arb_msg_fn fn;
    void *user;
    arbh_instance *owner;
    int id;
    int topic;
    bool active; /* false while staged by a reload, or after unsubscribe */
    bool dead;   /* unsubscribed: removed at the next quiet point */
    /* owner->lat, read for every record a venue sends (latency.c keeps it
     * in step: configure, rebind) */
    struct arbh_lat_links *lat;
    arbh_keys *keys; /* NULL: every key; else owned, freed with the sub */
    /* The owner's next subscription to the same topic (arbh_instance.by_topic);
     * kept when this one is unsubscribed, so a walk standing on it goes on. */
    struct arbh_sub *next_same;
} arbh_sub;

typedef struct arbh_sub_list {
    arbh_sub **items;
    size_t count, cap;
    bool needs_compact;
} arbh_sub_list;

/* Per topic and per loop, written only by that loop's thread. */
typedef struct arbh_topic_stats {
    arb_counter published;
    arb_counter delivered;
    arb_counter rejected;
    arb_histogram latency; /* publish -> delivery, sampled */
} arbh_topic_stats;

typedef struct arbh_topic {
    char name[64];
    int id;
    bool remote; /* goes through the transport: published out, delivered in by arbh_bus_inject */
    _Atomic uint64_t loop_mask;         /* loops with subscriptions */
    arbh_sub_list subs[ARBH_MAX_LOOPS]; /* each touched only by its loop */
    arbh_topic_stats stats[ARBH_MAX_LOOPS];
} arbh_topic;

typedef struct arbh_task {
    void (*fn)(void *arg);
    void *arg;
    struct arbh_task *next;
    bool done;
} arbh_task;

typedef struct arbh_loop {
    int index;
    arbh_host *host;
    struct event_base *base;
    pthread_t thread;
    bool has_thread;
    _Atomic int stop;              /* the worker's loop should end */
    arbh_ring *in[ARBH_MAX_LOOPS]; /* in[src]: records published on loop src */
    int depth;                     /* >0 while delivering */
    uint64_t dirty;                /* remote loops to wake after this batch */
    uint32_t sample;               /* latency sampling counter */
    arb_counter wakes;             /* wakes this loop sent to other loops */
    bool needs_compact;            /* a subscription died: compact lists */
    int npaused;                   /* instances on this loop that paused */
    uint64_t held;                 /* in[src] waits at a record for a paused instance */
    _Atomic int waiting;           /* 1: idle in the event loop, needs a wake */
    int wake_fd;
    struct event *wake_ev;
    struct event *task_ev;
    pthread_mutex_t task_mu;
    pthread_cond_t task_cv;
    arbh_task *tasks;
    struct arbh_lat_queue *latq; /* records held for their link's delay (latency.c) */
    uint64_t lat_records;        /* venue records delivered with links on: each one's number */
} arbh_loop;

typedef struct arbh_timer {
    struct event *ev;
    arb_timer_fn fn;
    void *user;
    arbh_instance *owner;
    int id;
    uint64_t interval_ns;
    bool repeat;
} arbh_timer;

typedef struct arbh_route {
    char *instance;
    char *path;
    arb_admin_fn fn;
    void *user;
    arbh_instance *owner;
    bool active;
} arbh_route;

enum arbh_inst_state { INST_LOADED, INST_CREATED, INST_RUNNING, INST_STOPPED, INST_FAILED };

struct arbh_instance {
    struct arb_ctx ctx; /* first: the plugin's arb_ctx* is this instance */
    arbh_host *host;
    arbh_config *cfg; /* the configuration it was created from */
    char *name;
    char *section; /* "plugin NAME" */
    char *path;    /* resolved .so the config names */
    void *dl;
    const arb_plugin *desc;
    void *self;
    arbh_loop *loop;
    struct arbh_lat_links *lat; /* a participant's links to venues, or NULL */
    int thread;
    enum arbh_inst_state state;
    bool staging;              /* registrations wait for the reload to commit */
    bool state_restored;       /* restore() took the old instance's state */
    bool state_adopted;        /* set just before stop: a successor has the state */
    struct arbh_claim *claims; /* api->claim: what it owns (host.c, arbh_claims_check) */
    size_t nclaims;
    bool paused;              /* arb_pause(): nothing is delivered to it */
    arb_partition_fn part_fn; /* arb_on_partitions() */
    void *part_user;
    bool is_pseudo; /* no plugin behind it: the host itself, or a test */
    arbh_sub **subs;
    size_t nsubs, capsubs;
    /* Its live subscriptions of each topic, in the order made (linked by
     * next_same): what a record held on its link is delivered to. */
    arbh_sub *by_topic[ARB_TOPIC_MAX];
    arbh_timer **timers;
    size_t ntimers, captimers;
    int next_id;
    int64_t started_at;
    unsigned reloads;
    int healthy;
    char health[128];
    char err[512];        /* the last error reported by this instance's calls */
    bool err_located;     /* err names a config file and line (a rejected value) */
    char **read_sections; /* sections other than its own it read (SIGHUP) */
    size_t nread_sections;
    uint32_t *read_slots; /* read_sections index + 1 by name (instance.c, sect) */
    size_t read_cap;
    char **read_prefixes; /* prefixes it listed sections by: a section added or
                             removed under one changes it too (SIGHUP) */
    size_t nread_prefixes;
    char build_id[80];    /* GNU build id, or "sha256:..." of the file */
    int64_t loaded_at;    /* wall ns its image was opened */
    char crash_who[4608]; /* preformatted for the fatal-signal line (crash.c) */
};

/* Which plugin code this thread runs (crash.c): set around every call into
 * a plugin, read by the fatal-signal handler. */
enum arbh_callback {
    ARBH_CB_NONE,
    ARBH_CB_CREATE,
    ARBH_CB_START,
    ARBH_CB_DELIVER,
    ARBH_CB_TIMER,
    ARBH_CB_ROUTE,
    ARBH_CB_STOP,
    ARBH_CB_SAVE,
    ARBH_CB_RESTORE,
    ARBH_CB_DESTROY,
    ARBH_CB_PARTITIONS,
    ARBH_CB_LOAD, /* dlopen: the image's constructors, and its entry function */
};
typedef struct arbh_running {
    const arbh_instance *in; /* NULL: host code */
    int what;                /* enum arbh_callback */
    int topic;               /* ARBH_CB_DELIVER: the topic delivered */
} arbh_running;
extern _Thread_local arbh_running arbh_now;

static inline arbh_running arbh_enter(const arbh_instance *in, int what, int topic)
{
    arbh_running prev = arbh_now;
    arbh_now.in = in;
    arbh_now.what = what;
    arbh_now.topic = topic;
    return prev;
}
static inline void arbh_leave(arbh_running prev) { arbh_now = prev; }

/* The exit status of a host killed by a fatal signal in plugin code
 * (EX_SOFTWARE): scripts/supervise.sh and the systemd unit restart on it. */
#define ARBH_EXIT_PLUGIN_CRASH 70
#define ARBH_EXIT_PLUGIN_CRASH_STR "70"
/* The exit status of a host whose run the broker no longer holds (a dev
 * broker restarted empty, a cluster that lost its data): the run cannot go
 * on, and a restart begins a new one (EX_TEMPFAIL; supervise.sh and the
 * systemd unit restart on it). run.c. */
#define ARBH_EXIT_RUN_LOST 75
/* The exit status of a group-less host ([bus] consume = all) whose group has
 * members, so it is not the sole owner it is configured to be (EX_CONFIG:
 * supervise.sh and the systemd unit do not restart it; the config must
 * change). kafka.c. */
#define ARBH_EXIT_CONFLICT 78

/* The last SIGHUP (or reload-config request) and what came of it. */
typedef struct arbh_reconfig_result {
    int64_t at; /* wall ns; 0: none yet */
    bool ok;
    char message[1024]; /* refusal: file:line: [section] instance: reason */
    unsigned added, removed, changed, unchanged;
    char state_dropped[512]; /* changed instances whose plugin refused the old state */
} arbh_reconfig_result;

typedef struct arbh_metric {
    char *instance; /* NULL: the host's own */
    char *name;
    char *labels;
    char *help;
    int kind; /* 'c' counter, 'g' gauge, 'h' histogram */
    union {
        arb_counter counter;
        arb_gauge gauge;
        arb_histogram hist;
    } u;
} arbh_metric;

struct arbh_host {
    arbh_config *cfg;
    arbh_config **configs; /* every config ever loaded; freed at exit */
    size_t nconfigs;
    char **files;
    size_t nfiles;
    char **overrides;
    size_t noverrides;

    arbh_loop *loops[ARBH_MAX_LOOPS];
    int nloops;
    size_t queue_bytes;

    pthread_mutex_t topic_mu;
    arbh_topic *topics[ARB_TOPIC_MAX];
    _Atomic int ntopics;

    /* External transport (Kafka): a publish on a remote topic goes here, and
     * records arriving from it enter through arbh_bus_inject(). */
    struct arbh_kafka *kafka;       /* NULL: everything stays in process */
    struct arbh_journal *journal;   /* the monolith's journal (transport.h): NULL: none */
    struct arbh_inflight *inflight; /* injected records not yet handled everywhere */
    size_t ninflight, capinflight;
    struct event *done_ev;

    /* arbh_host_free leaves the plugin images loaded (arb-host, about to
     * exit). A library a plugin brought in with thread-local storage
     * (libpq's OpenSSL) unloaded at exit leaves the main thread's dynamic
     * TLS pointing at unmapped memory, and LeakSanitizer's exit-time scan of
     * it crashed ("Tracer caught signal 11"), depending on the heap's
     * layout. Tests that make many hosts in one process keep dlclose. */
    bool keep_images;
    arbh_instance **instances; /* in start order */
    size_t ninstances;

    pthread_mutex_t metric_mu;
    arbh_metric **metrics;
    size_t nmetrics;
    arb_histogram *reload_pause;
    int64_t last_reload_pause_ns; /* the most recent reload's hold on its loop */

    arbh_route **routes;
    size_t nroutes;

    arb_run_info run; /* the run this host belongs to (run.c) */
    /* Over Kafka: this host's start record in arb_runs, which a thread
     * checks every second is still there (run.c, arbh_run_watch_start). */
    uint8_t run_rec[168];
    int64_t run_rec_offset; /* -1: not known */
    pthread_t run_watch;
    bool run_watching;
    pthread_mutex_t run_watch_mu;
    pthread_cond_t run_watch_cv;
    bool run_watch_stop;
    _Atomic bool run_lost;
    char run_lost_why[384]; /* written once, before run_lost is set */
    _Atomic int64_t sim_time;
    bool lat_on; /* [latency] configured: some participant has links */
    uint64_t host_id;
    char id[64];
    int log_level;
    int64_t started_at;
    bool starting; /* timers wait until every instance has started */
    _Atomic int stopping;
    int exit_code;

    char plugin_dirs[8192];
    char exe_dir[1024];

    arbh_instance *self; /* the host's own context: announces it on service_registry */
    int64_t announce_ns; /* [host] announce_ms; 0: do not announce */
    int announce_timer;

    arbh_reconfig_result last_reconfig;

    struct evhttp *admin;
    char admin_addr[128];
    char admin_token[256];
    bool admin_token_from_file; /* no admin_token configured: admin.c made or read one */
    bool admin_loopback;        /* the admin endpoint listens on loopback only */
    struct event *sig_ev[4];
};

/* ---- host.c ---- */
/* Loads config files (or INI text when `text` is set) and builds the host:
 * loops, topics and every instance created (not started). With check_only the
 * instances are created and validated but no loop thread is started. */
arbh_host *arbh_host_new(const char *const *files, size_t nfiles, const char *text,
                         const char *const *overrides, size_t noverrides, char *err, size_t n);
int arbh_host_start(arbh_host *h, char *err, size_t n);
/* Runs the main loop until a signal or arb_shutdown(); returns the exit code. */
int arbh_host_run(arbh_host *h);
void arbh_host_stop(arbh_host *h);
void arbh_host_free(arbh_host *h);
void arbh_host_print_plan(arbh_host *h, FILE *out);
/* SIGHUP: prepare the whole new configuration (parse, load, create, start
 * staged, bind), then commit it, or change nothing. The outcome is also kept
 * in h->last_reconfig. */
int arbh_host_reconfigure(arbh_host *h, char *err, size_t n);
/* Hot reload of one instance from path (NULL: its own file). A file that is
 * the running image (same build id) is not reloaded and sets *unchanged (may
 * be NULL), unless `force` (run save/restore anyway, e.g. to test them). */
int arbh_host_reload(arbh_host *h, const char *instance, const char *path, bool force,
                     bool *unchanged, char *err, size_t n);
arbh_instance *arbh_host_find(arbh_host *h, const char *name);
/* Adds an instance with no plugin behind it (the test host's own context). */
arbh_instance *arbh_host_add_pseudo(arbh_host *h, const char *name);
void arbh_host_install_signals(arbh_host *h);
int64_t arbh_wall_ns(void);
int64_t arbh_mono_ns(void);
void arbh_log(arbh_host *h, const char *who, int level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void arbh_vlog(arbh_host *h, const char *who, int level, const char *fmt, va_list ap);

/* ---- loop.c ---- */
int arbh_loops_init(arbh_host *h, int nloops);
int arbh_loops_start_threads(arbh_host *h);
void arbh_loops_stop(arbh_host *h);
void arbh_loops_free(arbh_host *h);
/* Runs fn(arg) on loop's thread and waits for it (directly if already there). */
void arbh_loop_call(arbh_loop *loop, void (*fn)(void *), void *arg);
/* Holds a loop at a quiet point (between two deliveries, no event handled)
 * until released; arbh_hold_run runs work on it meanwhile. Holding the
 * caller's own loop, or one without a thread, runs the work directly. */
typedef struct arbh_hold arbh_hold;
arbh_hold *arbh_loop_hold(arbh_loop *loop); /* NULL: out of memory */
void arbh_hold_run(arbh_hold *hd, void (*fn)(void *), void *arg);
void arbh_loop_release(arbh_hold *hd);

/* ---- bus.c ---- */
int arbh_bus_init(arbh_host *h);
int arbh_bus_init_loops(arbh_host *h); /* after arbh_loops_init */
void arbh_bus_free(arbh_host *h);
int arbh_bus_topic(arbh_host *h, const char *name);
int arbh_bus_publish(arbh_instance *inst, int topic, uint64_t key, const void *data, size_t len);
int arbh_bus_batch(arbh_instance *inst, void (*fn)(void *user), void *user);
int arbh_bus_subscribe(arbh_instance *inst, int topic, arb_msg_fn fn, void *user);
int arbh_bus_subscribe_keys(arbh_instance *inst, int topic, const arb_key_range *keys, size_t n,
                            arb_msg_fn fn, void *user);
/* True if one of the instance's active subscriptions to `topic` reads `key`
 * (latency.c: whether its link holds a record for it). */
bool arbh_bus_reads(const arbh_instance *inst, int topic, uint64_t key);
int arbh_bus_unsubscribe(arbh_instance *inst, int id);
/* Delivers what the loop's inbound rings hold, up to budget records. Returns
 * the number delivered; re-arms itself if records remain. */
size_t arbh_bus_drain(arbh_loop *loop, size_t budget);
bool arbh_bus_pending(arbh_loop *loop);
/* arb_pause(): records for a paused instance wait in their rings. */
void arbh_bus_set_paused(arbh_instance *inst, bool paused);
/* On loop 0: a record from the external transport, delivered to every local
 * subscriber (not sent back out) with its Kafka partition and offset.
 * done(token) runs once every subscriber on every loop has handled it; only
 * then may its offset be committed. */
int arbh_bus_inject(arbh_host *h, const char *topic, int32_t partition, int64_t offset,
                    uint64_t key, const void *data, size_t len, void (*done)(void *token),
                    void *token);
/* Reports handled injected records; returns how many are still in flight. */
size_t arbh_bus_poll_done(arbh_host *h);
/* A record held for its link's delay, now due (latency.c): published from
 * `loop` as if just now, or delivered to `to`'s subscriptions of the topic. */
int arbh_bus_publish_held(arbh_loop *loop, int topic, uint64_t key, const void *data, size_t len);
void arbh_bus_deliver_held(arbh_loop *loop, arbh_instance *to, const arb_msg *m);
void arbh_bus_wake_cb(int fd, short what, void *arg);

/* ---- instance.c ---- */
/* What an instance claimed in create() (api->claim). */
typedef struct arbh_claim {
    char what[24];
    uint64_t first, count;
} arbh_claim;

const arb_host_api *arbh_api(void);
arbh_instance *arbh_instance_new(arbh_host *h, arbh_config *cfg, const char *name);
int arbh_instance_load(arbh_instance *in, char *err, size_t n);
int arbh_instance_create(arbh_instance *in, char *err, size_t n);
int arbh_instance_start(arbh_instance *in, char *err, size_t n); /* on its loop */
void arbh_instance_stop(arbh_instance *in);                      /* on its loop */
void arbh_instance_free(arbh_instance *in);
/* 0, or -1 with err "file:line: ..." naming both sections if two of the n
 * instances (one configuration's) claimed overlapping ranges of one name. */
int arbh_claims_check(arbh_instance *const *list, size_t n, char *err, size_t errn);
void arbh_instance_teardown_regs(arbh_instance *in);
void arbh_instance_commit_regs(arbh_instance *in);
/* Arms the instance's timers that are not armed yet (after host start). */
void arbh_instance_arm_timers(arbh_instance *in);
/* Hot reload in two steps. prepare (any thread): copy and dlopen the new
 * build, check its ABI and name. reload (on the instance's loop: the pause):
 * create, save -> restore, start, commit. On failure the old instance serves
 * on; the image is consumed either way. */
typedef struct arbh_reload_image {
    char path[4096];
    void *dl;
    const arb_plugin *desc;
    char build_id[80];
    bool unchanged; /* the same build id as the running image: nothing opened */
} arbh_reload_image;
int arbh_reload_prepare(arbh_instance *old, const char *new_path, bool force,
                        arbh_reload_image *img, char *err, size_t n);
void arbh_reload_discard(arbh_reload_image *img);
int arbh_instance_reload(arbh_instance **slot, arbh_reload_image *img, char *err, size_t n);
/* old save() -> nw restore(), on their loop. ARB_EREFUSED: nw refused it. */
int arbh_instance_move_state(arbh_instance *old, arbh_instance *nw, char *err, size_t n);
int arbh_resolve_plugin(arbh_host *h, const char *cfg_file, const char *load, char *out, size_t n);
arbh_metric *arbh_metric_get(arbh_host *h, const char *instance, int kind, const char *name,
                             const char *labels, const char *help);

/* ---- run.c ---- */
/* Decides the run: resumes the one the journal holds, or begins a new one
 * ([host] new_run, or nothing to resume from). After the transport exists. */
int arbh_run_decide(arbh_host *h, char *err, size_t n);
/* At start, before any instance: over Kafka, agrees on the run with the
 * other hosts (topic arb_runs); with a journal, opens it for the run decided
 * (emptied for a new run) and writes its run file. */
int arbh_run_settle(arbh_host *h, char *err, size_t n);
/* An instance's configuration as the market it trades: FNV-1a 64 of its
 * section's entries and of every section its host's plugins share (not
 * [host], [bus], [kafka*] nor other plugins' sections), never 0. In its
 * service_registry announcement, so run reports can tell two runs traded
 * the same market (arbctl compare). */
uint64_t arbh_instance_config_digest(const arbh_config *cfg, const char *section);
/* Over Kafka, after start: a thread reads this host's start record in
 * arb_runs back every second. When the broker no longer holds it (a broker
 * that came back empty: by the run rules that is a new run), the host says
 * so in the log and in /healthz (failed) and stops with ARBH_EXIT_RUN_LOST,
 * so that a restart begins the new run: a host must not go on in a run
 * whose history, offsets and snapshots are gone. Stop joins the thread. */
void arbh_run_watch_start(arbh_host *h);
void arbh_run_watch_stop(arbh_host *h);

/* Records the image's identity and preformats the crash line's prefix. */
void arbh_instance_set_image(arbh_instance *in, const char *build_id);

/* ---- image.c ---- */
/* Checks that path is a whole ELF shared object for this machine (read
 * whole, size unchanged while reading) and puts its build id in id. */
int arbh_image_check(const char *path, char *id, size_t idn, char *err, size_t n);
/* The same check, then a private copy in $TMPDIR (named after this process)
 * for dlopen; messages name `path`, never the copy. */
int arbh_image_copy(const char *path, const char *instance, char *copy, size_t cn, char *id,
                    size_t idn, char *err, size_t n);
/* Removes the copy (if copy[0]) and empties the string. */
void arbh_image_unlink(char *copy);
/* Removes copies left by hosts that died (their pid is gone); returns how many. */
int arbh_image_sweep(void);

/* ---- crash.c ---- */
void arbh_crash_install(void);     /* the handlers, and this thread's alternate stack */
void arbh_crash_thread_init(void); /* a loop thread's alternate stack */
void arbh_crash_thread_exit(void);
void arbh_crash_note_copy(const char *path);
const char *arbh_callback_name(int what);

/* ---- admin.c ---- */
int arbh_admin_start(arbh_host *h, char *err, size_t n);
/* For --check: warns on out about an admin endpoint the start would refuse
 * (bound beyond loopback without [host] admin_token). Returns the warnings. */
int arbh_admin_check(arbh_host *h, FILE *out);
void arbh_admin_stop(arbh_host *h);
void arbh_metrics_render(arbh_host *h, struct evbuffer *out);

#endif

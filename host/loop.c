/*
 * loop.c -- the host's event loops: one libevent base per loop, loop 0 on the
 * main thread and the others on worker threads, the bus rings between every
 * pair of loops, and arbh_loop_call() to run control work (start, stop,
 * reload, admin requests) on the thread that owns an instance, and holding
 * loops at a quiet point while SIGHUP prepares and commits a configuration.
 * Not here: what runs on the loops (bus.c, instance.c).
 */
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "host.h"

static _Thread_local arbh_loop *current_loop;

static void task_cb(int fd, short what, void *arg)
{
    (void)fd, (void)what;
    arbh_loop *loop = arg;
    for (;;) {
        pthread_mutex_lock(&loop->task_mu);
        arbh_task *t = loop->tasks;
        if (t)
            loop->tasks = t->next;
        pthread_mutex_unlock(&loop->task_mu);
        if (!t)
            break;
        t->fn(t->arg);
        pthread_mutex_lock(&loop->task_mu);
        t->done = true;
        pthread_cond_broadcast(&loop->task_cv);
        pthread_mutex_unlock(&loop->task_mu);
    }
    if (atomic_load(&loop->stop))
        event_base_loopbreak(loop->base);
}

static uint64_t pow2_at_least(uint64_t v)
{
    uint64_t p = 4096;
    while (p < v)
        p <<= 1;
    return p;
}

int arbh_loops_init(arbh_host *h, int nloops)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, (void (*)(void))evthread_use_pthreads);
    if (nloops < 1 || nloops > ARBH_MAX_LOOPS)
        return ARB_EINVAL;
    h->nloops = nloops;
    uint64_t cap = pow2_at_least(h->queue_bytes);
    for (int i = 0; i < nloops; i++) {
        arbh_loop *l = calloc(1, sizeof *l);
        if (!l)
            return ARB_ENOMEM;
        h->loops[i] = l;
        l->index = i;
        l->host = h;
        /* epoll's changelist folds the add/delete pairs one loop turn makes
         * on an fd into one epoll_ctl at dispatch: evhttp enables and
         * disables read and write around every request (four epoll_ctl per
         * request without it; the gateway measured 13% less CPU per order
         * with it). libevent's one caveat, an fd cloned with dup() and
         * closed within the turn, fits nothing registered on these bases. */
        struct event_config *ec = event_config_new();
        if (ec)
            event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
        l->base = ec ? event_base_new_with_config(ec) : NULL;
        if (ec)
            event_config_free(ec);
        l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (!l->base || l->wake_fd < 0)
            return ARB_ERROR;
        atomic_store(&l->waiting, 1);
        l->wake_ev = event_new(l->base, l->wake_fd, EV_READ | EV_PERSIST, arbh_bus_wake_cb, l);
        l->task_ev = event_new(l->base, -1, 0, task_cb, l);
        if (!l->wake_ev || !l->task_ev || event_add(l->wake_ev, NULL) != 0)
            return ARB_ERROR;
        pthread_mutex_init(&l->task_mu, NULL);
        pthread_cond_init(&l->task_cv, NULL);
    }
    for (int d = 0; d < nloops; d++)
        for (int s = 0; s < nloops; s++)
            if (!(h->loops[d]->in[s] = arbh_ring_new(cap)))
                return ARB_ENOMEM;
    current_loop = h->loops[0];
    return ARB_OK;
}

static void *loop_main(void *arg)
{
    arbh_loop *l = arg;
    current_loop = l;
    arbh_crash_thread_init(); /* plugin code runs here: a stack overflow reports too */
    /* EVLOOP_NO_EXIT_ON_EMPTY: a worker waits for work even with no events. */
    while (!atomic_load(&l->stop))
        event_base_loop(l->base, EVLOOP_NO_EXIT_ON_EMPTY);
    arbh_crash_thread_exit();
    current_loop = NULL;
    return NULL;
}

int arbh_loops_start_threads(arbh_host *h)
{
    for (int i = 1; i < h->nloops; i++) {
        arbh_loop *l = h->loops[i];
        if (pthread_create(&l->thread, NULL, loop_main, l) != 0)
            return ARB_ERROR;
        char name[16];
        snprintf(name, sizeof name, "arb-loop-%u", (unsigned)i % 100u);
        pthread_setname_np(l->thread, name);
        l->has_thread = true;
    }
    return ARB_OK;
}

void arbh_loops_stop(arbh_host *h)
{
    for (int i = 1; i < h->nloops; i++) {
        arbh_loop *l = h->loops[i];
        if (l && l->has_thread) {
            /* A loopbreak sent before the thread entered its loop would be
             * forgotten (libevent clears it on entry); an active event is
             * not: the loop runs task_cb, which breaks it. */
            atomic_store(&l->stop, 1);
            event_active(l->task_ev, 0, 0);
            pthread_join(l->thread, NULL);
            l->has_thread = false;
        }
    }
}

void arbh_loops_free(arbh_host *h)
{
    arbh_loops_stop(h);
    for (int i = 0; i < h->nloops; i++) {
        arbh_loop *l = h->loops[i];
        if (!l)
            continue;
        for (int s = 0; s < h->nloops; s++)
            arbh_ring_free(l->in[s]);
        if (l->wake_ev)
            event_free(l->wake_ev);
        if (l->task_ev)
            event_free(l->task_ev);
        if (l->base)
            event_base_free(l->base);
        if (l->wake_fd >= 0)
            close(l->wake_fd);
        pthread_mutex_destroy(&l->task_mu);
        pthread_cond_destroy(&l->task_cv);
        if (current_loop == l)
            current_loop = NULL;
        free(l);
        h->loops[i] = NULL;
    }
}

static void task_post(arbh_loop *loop, arbh_task *t)
{
    pthread_mutex_lock(&loop->task_mu);
    arbh_task **tail = &loop->tasks;
    while (*tail)
        tail = &(*tail)->next;
    *tail = t;
    pthread_mutex_unlock(&loop->task_mu);
    event_active(loop->task_ev, 0, 0);
}

static void task_wait(arbh_loop *loop, arbh_task *t)
{
    pthread_mutex_lock(&loop->task_mu);
    while (!t->done)
        pthread_cond_wait(&loop->task_cv, &loop->task_mu);
    pthread_mutex_unlock(&loop->task_mu);
}

void arbh_loop_call(arbh_loop *loop, void (*fn)(void *), void *arg)
{
    if (current_loop == loop || !loop->has_thread) {
        fn(arg);
        return;
    }
    arbh_task t = {fn, arg, NULL, false};
    task_post(loop, &t);
    task_wait(loop, &t);
}

/* ---- holding a loop at a quiet point ---- */

struct arbh_hold {
    arbh_loop *loop;
    arbh_task task;
    bool direct; /* the caller's own loop, or a loop without a thread */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool entered, release;
    void (*fn)(void *);
    void *arg;
    unsigned posted, ran;
};

/* The held loop's thread sits here, running what it is given, until released. */
static void hold_main(void *arg)
{
    arbh_hold *hd = arg;
    pthread_mutex_lock(&hd->mu);
    hd->entered = true;
    pthread_cond_broadcast(&hd->cv);
    for (;;) {
        while (!hd->release && hd->ran == hd->posted)
            pthread_cond_wait(&hd->cv, &hd->mu);
        if (hd->ran == hd->posted)
            break;
        void (*fn)(void *) = hd->fn;
        void *fa = hd->arg;
        pthread_mutex_unlock(&hd->mu);
        fn(fa);
        pthread_mutex_lock(&hd->mu);
        hd->ran++;
        pthread_cond_broadcast(&hd->cv);
    }
    pthread_mutex_unlock(&hd->mu);
}

arbh_hold *arbh_loop_hold(arbh_loop *loop)
{
    arbh_hold *hd = calloc(1, sizeof *hd);
    if (!hd)
        return NULL;
    hd->loop = loop;
    hd->direct = current_loop == loop || !loop->has_thread;
    if (hd->direct)
        return hd;
    pthread_mutex_init(&hd->mu, NULL);
    pthread_cond_init(&hd->cv, NULL);
    hd->task = (arbh_task){hold_main, hd, NULL, false};
    task_post(loop, &hd->task);
    pthread_mutex_lock(&hd->mu);
    while (!hd->entered)
        pthread_cond_wait(&hd->cv, &hd->mu);
    pthread_mutex_unlock(&hd->mu);
    return hd;
}

void arbh_hold_run(arbh_hold *hd, void (*fn)(void *), void *arg)
{
    if (hd->direct) {
        fn(arg);
        return;
    }
    pthread_mutex_lock(&hd->mu);
    hd->fn = fn;
    hd->arg = arg;
    hd->posted++;
    pthread_cond_broadcast(&hd->cv);
    while (hd->ran != hd->posted)
        pthread_cond_wait(&hd->cv, &hd->mu);
    pthread_mutex_unlock(&hd->mu);
}

void arbh_loop_release(arbh_hold *hd)
{
    if (!hd)
        return;
    if (!hd->direct) {
        pthread_mutex_lock(&hd->mu);
        hd->release = true;
        pthread_cond_broadcast(&hd->cv);
        pthread_mutex_unlock(&hd->mu);
        task_wait(hd->loop, &hd->task);
        pthread_mutex_destroy(&hd->mu);
        pthread_cond_destroy(&hd->cv);
    }
    free(hd);
}

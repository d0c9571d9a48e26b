/*
 * crash.c -- a fatal signal that names its plugin. Every call into plugin
 * code sets a per-thread record of which instance runs which callback
 * (arbh_enter/arbh_leave in host.h: two stores to a thread-local, no
 * syscall, so the delivery path can afford it). On SIGSEGV, SIGBUS, SIGFPE,
 * SIGILL or SIGABRT the handler writes one line built only from strings
 * prepared beforehand (write(2), nothing that allocates or locks), removes a
 * reload copy in progress, and exits with ARBH_EXIT_PLUGIN_CRASH so a
 * supervisor can tell "a plugin crashed" from any other exit. A fault in the
 * host's own code is reported as such and re-raised (core dump as usual).
 * The handler runs on an alternate signal stack, so a plugin that overflows
 * its stack is reported too.
 * Not here: restarting (scripts/supervise.sh, deploy/arb-host@.service).
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host.h"

_Thread_local arbh_running arbh_now;

static const int fatal_sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
static volatile sig_atomic_t installed;
/* The reload copy being written or opened: the handler removes it. */
static char copy_in_progress[4096];
static volatile sig_atomic_t have_copy;

/* Big enough for the handler and a stack overflow's last frame. */
#define ALT_STACK_BYTES (64 * 1024)
static _Thread_local void *alt_stack;

static const char *sig_name(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGABRT: return "SIGABRT";
    default: return "fatal signal";
    }
}

const char *arbh_callback_name(int what)
{
    static const char *const names[] = {
        [ARBH_CB_NONE] = "nothing",
        [ARBH_CB_CREATE] = "create",
        [ARBH_CB_START] = "start",
        [ARBH_CB_DELIVER] = "deliver",
        [ARBH_CB_TIMER] = "timer",
        [ARBH_CB_ROUTE] = "route",
        [ARBH_CB_STOP] = "stop",
        [ARBH_CB_SAVE] = "save",
        [ARBH_CB_RESTORE] = "restore",
        [ARBH_CB_DESTROY] = "destroy",
        [ARBH_CB_PARTITIONS] = "partitions",
        [ARBH_CB_LOAD] = "load (constructors, entry)",
    };
    return what >= 0 && what < (int)(sizeof names / sizeof names[0]) && names[what] ? names[what]
                                                                                    : "?";
}

static size_t put(char *buf, size_t at, size_t cap, const char *s)
{
    while (*s && at + 1 < cap)
        buf[at++] = *s++;
    return at;
}

static void on_fatal(int sig, siginfo_t *si, void *uc)
{
    (void)si, (void)uc;
    arbh_running r = arbh_now;
    char line[1536];
    size_t k = put(line, 0, sizeof line, "arb-host: FATAL ");
    k = put(line, k, sizeof line, sig_name(sig));
    if (r.in) {
        k = put(line, k, sizeof line, " in plugin ");
        k = put(line, k, sizeof line, r.in->crash_who);
        k = put(line, k, sizeof line, " during ");
        k = put(line, k, sizeof line, arbh_callback_name(r.what));
        if (r.what == ARBH_CB_DELIVER && r.topic >= 0 && r.topic < ARB_TOPIC_MAX &&
            r.in->host->topics[r.topic]) {
            k = put(line, k, sizeof line, " on topic ");
            k = put(line, k, sizeof line, r.in->host->topics[r.topic]->name);
        }
        k = put(line, k, sizeof line,
                "; exiting with status " ARBH_EXIT_PLUGIN_CRASH_STR " (plugin crash)\n");
    } else {
        k = put(line, k, sizeof line, " in the host itself (no plugin callback running)\n");
    }
    ssize_t w = write(STDERR_FILENO, line, k);
    (void)w;
    if (have_copy)
        unlink(copy_in_progress);
    if (r.in)
        _exit(ARBH_EXIT_PLUGIN_CRASH);
    /* The host's own fault: the default action (a core dump) as without us. */
    signal(sig, SIG_DFL);
    raise(sig);
}

void arbh_crash_thread_init(void)
{
    if (!installed || alt_stack)
        return;
    alt_stack = malloc(ALT_STACK_BYTES);
    if (!alt_stack)
        return;
    stack_t ss = {.ss_sp = alt_stack, .ss_size = ALT_STACK_BYTES, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        free(alt_stack);
        alt_stack = NULL;
    }
}

void arbh_crash_thread_exit(void)
{
    if (!alt_stack)
        return;
    stack_t ss = {.ss_flags = SS_DISABLE};
    sigaltstack(&ss, NULL);
    free(alt_stack);
    alt_stack = NULL;
}

void arbh_crash_install(void)
{
    if (installed)
        return;
    installed = 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fatal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof fatal_sigs / sizeof fatal_sigs[0]; i++)
        sigaction(fatal_sigs[i], &sa, NULL);
    arbh_crash_thread_init();
}

void arbh_crash_note_copy(const char *path)
{
    have_copy = 0;
    if (path) {
        size_t len = strlen(path);
        if (len >= sizeof copy_in_progress)
            return;
        memcpy(copy_in_progress, path, len + 1);
        have_copy = 1;
    }
}

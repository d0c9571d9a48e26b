/*
 * test_host_faults.c -- arb-host as a real process meeting faults: hot
 * reloads of bad files (truncated, still growing, empty, not ELF) and of an
 * unchanged image, reload copies a crashed host left behind, a plugin that
 * crashes in each callback (the one line naming it, exit status 70, and the
 * run script restarting it), a SIGHUP moving the gateway onto a taken port,
 * the refusal as arbctl reload-config answers it, a key set twice refused
 * at SIGHUP, start and --check, and two hosts on one address. Everything synchronises on what the host shows: log lines, admin
 * answers, exit statuses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "free_port.h"

static const char *B; /* the build directory under test */
static char tmp[256];
static char plugdir[512]; /* absolute: the run script changes directory */

static void write_text(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* The whole of a file (static buffer), "" if absent. */
static const char *slurp(const char *path)
{
    static char buf[1 << 17];
    buf[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return buf;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct host_proc {
    pid_t pid;
    char log[512];
    char admin[64];
    int status; /* exit status once reaped, -1 before */
} host_proc;

/* Reaps the host if it has exited; true if it has. */
static bool reaped(host_proc *p)
{
    if (p->status >= 0)
        return true;
    int st;
    if (waitpid(p->pid, &st, WNOHANG) != p->pid)
        return false;
    p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return true;
}

/* Waits (up to 20 s) until the host's log holds needle; NULL if the host
 * exited first without writing it. Returns where it is in the log. */
static const char *wait_log(host_proc *p, const char *needle)
{
    int64_t end = mono_ms() + 20000;
    while (mono_ms() < end) {
        bool gone = reaped(p);
        const char *at = strstr(slurp(p->log), needle);
        if (at || gone)
            return at;
        usleep(2000); /* polling the log: the host gives no other signal */
    }
    fail_msg("no '%s' in %s within 20 s:\n%s", needle, p->log, slurp(p->log));
    return NULL;
}

/* Every host here has this admin token, and every request sends it (the
 * admin endpoint refuses a POST without one). */
#define ADMIN_TOKEN "faults-test-token"

/* Starts arb-host -c tmp/ini with stderr to tmp/log and, if the config has
 * an admin address, waits for it. ASan's own fatal-signal handlers are
 * turned off in the child: the host's report is what is under test. */
static void spawn(host_proc *p, const char *ini, const char *log, bool wait_admin)
{
    memset(p, 0, sizeof *p);
    p->status = -1;
    snprintf(p->log, sizeof p->log, "%s/%s", tmp, log);
    char path[512], exe[512];
    snprintf(path, sizeof path, "%s/%s", tmp, ini);
    snprintf(exe, sizeof exe, "%s/arb-host", B);
    unlink(p->log); /* a previous test's log would answer wait_log */
    p->pid = fork();
    assert_true(p->pid >= 0);
    if (p->pid == 0) {
        if (!freopen(p->log, "w", stderr))
            _exit(99);
        execl(exe, exe, "-c", path, (char *)NULL);
        _exit(98);
    }
    if (!wait_admin)
        return;
    const char *at = wait_log(p, "admin listening on http://");
    if (!at)
        fail_msg("arb-host exited (%d) before its admin endpoint:\n%s", p->status, slurp(p->log));
    at += strlen("admin listening on http://");
    snprintf(p->admin, sizeof p->admin, "%.*s", (int)strcspn(at, "\n"), at);
}

/* Waits for the host to exit (it was told to, or it crashed). */
static int wait_exit(host_proc *p)
{
    int64_t end = mono_ms() + 20000;
    while (!reaped(p) && mono_ms() < end)
        usleep(2000);
    if (!reaped(p)) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        fail_msg("arb-host did not exit:\n%s", slurp(p->log));
    }
    return p->status;
}

static void stop_host(host_proc *p)
{
    if (!reaped(p))
        kill(p->pid, SIGTERM);
    assert_int_equal(wait_exit(p), 0);
}

/* One HTTP/1.0 request to addr ("127.0.0.1:PORT"); returns the status and
 * the body in a static buffer. */
static int http(const char *addr, const char *method, const char *path, const char **body)
{
    static char buf[1 << 16];
    buf[0] = 0;
    if (body)
        *body = buf;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    const char *colon = strrchr(addr, ':');
    assert_non_null(colon);
    sa.sin_port = htons((uint16_t)atoi(colon + 1));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        close(fd);
        return -1;
    }
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer " ADMIN_TOKEN
                     "\r\nContent-Length: 0\r\n\r\n",
                     method, path);
    assert_int_equal(write(fd, req, (size_t)n), n);
    size_t got = 0;
    ssize_t k;
    while ((k = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)k;
    close(fd);
    buf[got] = 0;
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    char *sep = strstr(buf, "\r\n\r\n");
    if (body)
        *body = sep ? sep + 4 : buf;
    return status;
}

/* A listening socket held by this (test) process, the way another program
 * would hold it: plain, no SO_REUSEPORT. */
static int hold_port(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static int copies_left(void)
{
    DIR *d = opendir(tmp);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += !strncmp(e->d_name, "arb-reload-", 11);
    closedir(d);
    return n;
}

static int setup(void **state)
{
    (void)state;
    B = getenv("ARB_BUILD") ? getenv("ARB_BUILD") : "build";
    snprintf(tmp, sizeof tmp, "/tmp/arb-test-faults-XXXXXX");
    assert_non_null(mkdtemp(tmp));
    char dirs[512];
    snprintf(dirs, sizeof dirs, "%s/tests/plugins", B);
    if (!realpath(dirs, plugdir))
        return -1;
    setenv("ARB_PLUGIN_DIR", plugdir, 1);
    /* Reload copies go here, where the tests can count them. */
    setenv("TMPDIR", tmp, 1);
    /* Under ASan its own SEGV/BUS/FPE handlers would answer first (and
     * report, not name the plugin): the host's handler is what is tested.
     * Leak checks stay on; a crashed host's leaks are not a finding. */
    const char *asan = getenv("ASAN_OPTIONS");
    char opts[1024];
    snprintf(opts, sizeof opts,
             "%s%shandle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_sigill=0:handle_abort=0:"
             "allow_user_segv_handler=1",
             asan ? asan : "", asan && *asan ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    return system(cmd);
}

/* ---- hot reload of bad files ---- */

static const char *seq_ini = "[host]\nadmin_token = " ADMIN_TOKEN "\nadmin = 127.0.0.1:0\n"
                             "[plugin p]\nload = tp_seq.so\nrole = producer\nthread = 1\n"
                             "[plugin c]\nload = tp_seq.so\nrole = consumer\n";

static char so_path[1024];

static const char *plugin_so(const char *name)
{
    snprintf(so_path, sizeof so_path, "%s/%s.so", plugdir, name);
    return so_path;
}

/* Copies the first `len` bytes of a built plugin to tmp/name. */
static void write_prefix(const char *from, const char *name, size_t len)
{
    char dst[512];
    snprintf(dst, sizeof dst, "%s/%s", tmp, name);
    FILE *in = fopen(from, "rb"), *out = fopen(dst, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[4096];
    size_t done = 0, k;
    while (done < len &&
           (k = fread(buf, 1, len - done < sizeof buf ? len - done : sizeof buf, in)) > 0) {
        fwrite(buf, 1, k, out);
        done += k;
    }
    fclose(in);
    fclose(out);
}

static size_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (size_t)st.st_size;
}

/* POST /plugins/c/reload?path=tmp/name: refused (409), the message names
 * tmp/name (never the private copy) and `why`; the host still answers,
 * nothing was reloaded, no copy is left. */
static void expect_reload_refused(host_proc *p, const char *name, const char *why)
{
    char path[1024], user[512];
    snprintf(user, sizeof user, "%s/%s", tmp, name);
    snprintf(path, sizeof path, "/plugins/c/reload?path=%s", user);
    const char *body;
    assert_int_equal(http(p->admin, "POST", path, &body), 409);
    if (!strstr(body, user) || !strstr(body, why) || strstr(body, "arb-reload-"))
        fail_msg("refusal of %s: '%s' (wanted the user's path and '%s')", name, body, why);
    assert_int_equal(http(p->admin, "GET", "/healthz", &body), 200);
    assert_int_equal(http(p->admin, "GET", "/plugins", &body), 200);
    assert_non_null(strstr(body, "\"reloads\":0"));
    assert_int_equal(copies_left(), 0);
}

static void truncated_so_reload_is_refused_and_the_host_lives(void **state)
{
    (void)state;
    write_text("r.ini", seq_ini);
    host_proc p;
    spawn(&p, "r.ini", "r.log", true);
    const char *so = plugin_so("tp_seq_v2");
    write_prefix(so, "trunc.so", file_size(so) / 2);
    expect_reload_refused(&p, "trunc.so", "truncated");
    stop_host(&p);
}

static void zero_length_so_reload_is_refused_and_the_host_lives(void **state)
{
    (void)state;
    write_text("r.ini", seq_ini);
    host_proc p;
    spawn(&p, "r.ini", "r.log", true);
    write_text("empty.so", "");
    expect_reload_refused(&p, "empty.so", "is empty");
    stop_host(&p);
}

static void non_elf_so_reload_is_refused_and_the_host_lives(void **state)
{
    (void)state;
    write_text("r.ini", seq_ini);
    host_proc p;
    spawn(&p, "r.ini", "r.log", true);
    write_text("text.so", "#!/bin/sh\necho this is not a plugin\n");
    expect_reload_refused(&p, "text.so", "not an ELF file");
    stop_host(&p);
}

static void growing_so_reload_is_refused_and_the_host_lives(void **state)
{
    (void)state;
    write_text("r.ini", seq_ini);
    host_proc p;
    spawn(&p, "r.ini", "r.log", true);
    /* A build still writing: the first part of the file is there and a
     * writer keeps appending while the reload is asked for. Either the size
     * moves under the copy or what was copied ends early: refused both ways. */
    const char *so = plugin_so("tp_seq_v2");
    write_prefix(so, "growing.so", file_size(so) / 3);
    pid_t writer = fork();
    assert_true(writer >= 0);
    if (writer == 0) {
        char dst[512];
        snprintf(dst, sizeof dst, "%s/growing.so", tmp);
        int fd = open(dst, O_WRONLY | O_APPEND);
        char zeros[64] = {0};
        for (;;)
            if (write(fd, zeros, sizeof zeros) < 0)
                _exit(1);
    }
    char path[1024], user[512];
    snprintf(user, sizeof user, "%s/growing.so", tmp);
    snprintf(path, sizeof path, "/plugins/c/reload?path=%s", user);
    const char *body;
    int status = http(p.admin, "POST", path, &body);
    kill(writer, SIGKILL);
    waitpid(writer, NULL, 0);
    if (status != 409)
        fail_msg("reload of a growing file answered %d: %s\nhost log:\n%s", status, body,
                 slurp(p.log));
    if (!strstr(body, user) || (!strstr(body, "changed while") && !strstr(body, "truncated") &&
                                !strstr(body, "incomplete")))
        fail_msg("refusal of a growing file: '%s'", body);
    assert_int_equal(http(p.admin, "GET", "/healthz", &body), 200);
    assert_int_equal(copies_left(), 0);
    stop_host(&p);
}

static void unchanged_image_reload_answers_unchanged_and_counts_nothing(void **state)
{
    (void)state;
    write_text("r.ini", seq_ini);
    host_proc p;
    spawn(&p, "r.ini", "r.log", true);
    const char *body;
    assert_int_equal(http(p.admin, "GET", "/plugins", &body), 200);
    const char *id = strstr(body, "\"build_id\":\"");
    assert_non_null(id);
    char build_id[128];
    snprintf(build_id, sizeof build_id, "%.*s", (int)strcspn(id + 12, "\""), id + 12);
    assert_true(strlen(build_id) >= 16);
    assert_non_null(strstr(body, "\"loaded_at\":"));
    assert_int_equal(http(p.admin, "POST", "/plugins/c/reload", &body), 200);
    assert_non_null(strstr(body, "\"unchanged\":true"));
    assert_non_null(strstr(body, "\"reloads\":0"));
    assert_non_null(strstr(body, build_id));
    /* A real new build is reloaded, counted, and shows its own id. */
    char path[1200];
    snprintf(path, sizeof path, "/plugins/c/reload?path=%s", plugin_so("tp_seq_v2"));
    assert_int_equal(http(p.admin, "POST", path, &body), 200);
    assert_non_null(strstr(body, "\"unchanged\":false"));
    assert_non_null(strstr(body, "\"reloads\":1"));
    assert_null(strstr(body, build_id));
    assert_int_equal(copies_left(), 0);
    stop_host(&p);
}

static void copies_left_by_a_dead_host_are_removed_at_start(void **state)
{
    (void)state;
    pid_t dead = fork();
    assert_true(dead >= 0);
    if (dead == 0)
        _exit(0);
    waitpid(dead, NULL, 0);
    char name[128];
    snprintf(name, sizeof name, "arb-reload-%ld-c-AbCdEf.so", (long)dead);
    write_text(name, "a copy a crashed host left");
    assert_int_equal(copies_left(), 1);
    write_text("r.ini", seq_ini);
    host_proc p;
    spawn(&p, "r.ini", "r.log", true);
    assert_non_null(wait_log(&p, "removed 1 reload copy"));
    assert_int_equal(copies_left(), 0);
    stop_host(&p);
}

/* ---- a crash names its plugin ---- */

/* Runs a host whose instance `boom` crashes in `callback` (triggered by
 * `trigger` once the host is up, if given) and checks the one line and the
 * exit status. */
static void expect_crash_report(const char *callback, const char *how, const char *thread,
                                void (*trigger)(host_proc *), const char *sig, const char *image,
                                const char *during)
{
    char ini[512];
    snprintf(ini, sizeof ini,
             "[host]\nadmin_token = " ADMIN_TOKEN
             "\nadmin = 127.0.0.1:0\n[plugin boom]\nload = tp_crash.so\ncrash_in = %s\n"
             "crash_how = %s\nthread = %s\n",
             callback, how, thread);
    write_text("crash.ini", ini);
    host_proc p;
    spawn(&p, "crash.ini", "crash.log", trigger != NULL);
    if (trigger)
        trigger(&p);
    assert_int_equal(wait_exit(&p), 70);
    const char *log = slurp(p.log);
    const char *line = strstr(log, "arb-host: FATAL ");
    if (!line)
        fail_msg("no FATAL line:\n%s", log);
    assert_null(strstr(line + 1, "arb-host: FATAL ")); /* one line */
    char want[1200];
    snprintf(want, sizeof want, "in plugin instance boom (tp_crash %s", plugin_so(image));
    if (strncmp(line + strlen("arb-host: FATAL "), sig, strlen(sig)) || !strstr(line, want) ||
        !strstr(line, during) || !strstr(line, ", build id ") || strstr(line, "build id unknown") ||
        !strstr(line, "exiting with status 70"))
        fail_msg("crash line '%.*s' lacks %s, '%s' or '%s'", (int)strcspn(line, "\n"), line, sig,
                 want, during);
}

static void trigger_route(host_proc *p) { http(p->admin, "GET", "/plugins/boom/crash", NULL); }
static void trigger_stop(host_proc *p) { kill(p->pid, SIGTERM); }
static void trigger_reload(host_proc *p)
{
    char path[1200];
    snprintf(path, sizeof path, "/plugins/boom/reload?path=%s", plugin_so("tp_crash_v2"));
    http(p->admin, "POST", path, NULL);
}

static void crash_in_create_names_the_plugin_and_exits_70(void **state)
{
    (void)state;
    expect_crash_report("create", "segv", "0", NULL, "SIGSEGV", "tp_crash", "during create;");
}

static void crash_in_start_names_the_plugin_and_exits_70(void **state)
{
    (void)state;
    expect_crash_report("start", "abort", "1", NULL, "SIGABRT", "tp_crash", "during start;");
}

static void crash_in_deliver_names_the_plugin_topic_and_exits_70(void **state)
{
    (void)state;
    expect_crash_report("deliver", "segv", "1", NULL, "SIGSEGV", "tp_crash",
                        "during deliver on topic crash.in;");
}

static void crash_in_timer_names_the_plugin_and_exits_70(void **state)
{
    (void)state;
    expect_crash_report("timer", "fpe", "0", NULL, "SIGFPE", "tp_crash", "during timer;");
}

static void stack_overflow_in_a_timer_on_a_worker_loop_is_reported(void **state)
{
    (void)state;
    expect_crash_report("timer", "overflow", "1", NULL, "SIGSEGV", "tp_crash", "during timer;");
}

static void crash_in_route_names_the_plugin_and_exits_70(void **state)
{
    (void)state;
    expect_crash_report("route", "segv", "1", trigger_route, "SIGSEGV", "tp_crash",
                        "during route;");
}

static void crash_in_stop_names_the_plugin_and_exits_70(void **state)
{
    (void)state;
    expect_crash_report("stop", "segv", "0", trigger_stop, "SIGSEGV", "tp_crash", "during stop;");
}

static void crash_in_save_names_the_plugin_and_exits_70(void **state)
{
    (void)state;
    expect_crash_report("save", "segv", "1", trigger_reload, "SIGSEGV", "tp_crash", "during save;");
}

static void crash_in_restore_names_the_plugin_and_exits_70(void **state)
{
    (void)state;
    expect_crash_report("restore", "segv", "0", trigger_reload, "SIGSEGV", "tp_crash_v2",
                        "during restore;");
    /* The new image's copy was already unlinked after dlopen: none left. */
    assert_int_equal(copies_left(), 0);
}

static void crash_in_a_constructor_names_the_image_being_loaded(void **state)
{
    (void)state;
    write_text("ctor.ini", "[plugin boom]\nload = tp_crash_ctor.so\n");
    host_proc p;
    spawn(&p, "ctor.ini", "ctor.log", false);
    assert_int_equal(wait_exit(&p), 70);
    char want[1200];
    snprintf(want, sizeof want, "FATAL SIGSEGV in plugin instance boom (? %s, build id ",
             plugin_so("tp_crash_ctor"));
    const char *log = slurp(p.log);
    if (!strstr(log, want) || !strstr(log, "during load (constructors, entry);"))
        fail_msg("no '%s' ... during load in:\n%s", want, log);
}

static void run_script_restarts_a_host_killed_by_a_plugin_crash(void **state)
{
    (void)state;
    write_text("crash.ini", "[plugin boom]\nload = tp_crash.so\ncrash_in = create\n");
    char log[512], cfg[512], script[1024];
    snprintf(log, sizeof log, "%s/run.log", tmp);
    snprintf(cfg, sizeof cfg, "%s/crash.ini", tmp);
    char *root = realpath(".", NULL);
    snprintf(script, sizeof script, "%s/scripts/run.sh", root);
    char build[1024];
    snprintf(build, sizeof build, "%s%s%s", B[0] == '/' ? "" : root, B[0] == '/' ? "" : "/", B);
    free(root);
    host_proc p;
    memset(&p, 0, sizeof p);
    p.status = -1;
    snprintf(p.log, sizeof p.log, "%s", log);
    unlink(log);
    p.pid = fork();
    assert_true(p.pid >= 0);
    if (p.pid == 0) {
        if (!freopen(log, "w", stderr))
            _exit(99);
        setenv("ARB_BUILD", build, 1);
        execl(script, script, cfg, (char *)NULL);
        _exit(98);
    }
    /* The first crash, the script's word, the second host's crash. */
    assert_non_null(wait_log(&p, "arb-host: FATAL SIGSEGV in plugin instance boom"));
    const char *said = wait_log(&p, "exited with status 70 (a plugin crashed");
    assert_non_null(said);
    assert_non_null(strstr(said, "restart 1 in 1 s"));
    /* The restarted host crashed too and the back-off doubled. */
    assert_non_null(wait_log(&p, "restart 2 in 2 s"));
    /* Now in its 2 s back-off: SIGTERM ends the supervision there. */
    kill(p.pid, SIGTERM);
    assert_int_equal(wait_exit(&p), 70);
}

/* Runs scripts/supervise.sh over a stand-in for arb-host: a shell script
 * of `body`, given `arg` (or nothing), its stderr in `log`, the first
 * back-off `delay` seconds. Returns supervise.sh's exit status. */
static int run_supervise(const char *body, const char *arg, const char *log, const char *delay)
{
    char fake[512], script[1024];
    snprintf(fake, sizeof fake, "%s/fake-host.sh", tmp);
    write_text("fake-host.sh", body);
    assert_int_equal(chmod(fake, 0755), 0);
    char *root = realpath(".", NULL);
    snprintf(script, sizeof script, "%s/scripts/supervise.sh", root);
    free(root);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen(log, "w", stderr))
            _exit(99);
        setenv("ARB_RESTART_DELAY", delay, 1);
        execl(script, script, "fake", fake, "-c", "x.ini", arg, (char *)NULL);
        _exit(98);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* A restart resumes the run: supervise.sh passes --new-run to the first
 * start only (a host started with it again after each crash began an empty
 * run every time). The stand-in records its arguments and exits 70 once,
 * as a plugin crash would. */
static void supervise_passes_new_run_to_the_first_start_only(void **state)
{
    (void)state;
    char args[512], once[512], log[512], body[2048];
    snprintf(args, sizeof args, "%s/fake-args", tmp);
    snprintf(once, sizeof once, "%s/fake-once", tmp);
    snprintf(log, sizeof log, "%s/fake.log", tmp);
    unlink(args);
    unlink(once);
    snprintf(body, sizeof body,
             "#!/bin/sh\necho \"$*\" >> %s\n[ -e %s ] && exit 0\ntouch %s\nexit 70\n", args, once,
             once);
    assert_int_equal(run_supervise(body, "--new-run", log, "0"), 0);
    assert_string_equal(slurp(args), "-c x.ini --new-run\n-c x.ini\n");
}

/* A host that cannot stay up is left down after six quick crashes in a
 * row, with the reason, not restarted forever (a plugin crashing in start,
 * added by a reload and still in the file, crash-looped). */
static void supervise_gives_up_after_six_quick_crashes(void **state)
{
    (void)state;
    char count[512], log[512], body[1024];
    snprintf(count, sizeof count, "%s/fake-crash-count", tmp);
    snprintf(log, sizeof log, "%s/fake.log", tmp);
    unlink(count);
    snprintf(body, sizeof body, "#!/bin/sh\necho x >> %s\nexit 70\n", count);
    assert_int_equal(run_supervise(body, NULL, log, "0"), 70);
    assert_string_equal(slurp(count), "x\nx\nx\nx\nx\nx\n");
    assert_non_null(strstr(slurp(log), "6 crashes in a row, each within 60 s of its start: not "
                                       "restarted"));
}

/* ---- one listener, one owner ---- */

static void gateway_ini(const char *name, int port, const char *admin)
{
    char ini[1024];
    snprintf(ini, sizeof ini,
             "[host]\nadmin_token = " ADMIN_TOKEN "\nadmin = %s\n"
             "[instrument XA:BTCUSD]\nprice_decimals = 2\ntick_size = 0.05\nqty_decimals = 3\n"
             "[plugin gateway]\nload = gateway.so\nthread = 1\nlisten = 127.0.0.1:%d\n",
             admin, port);
    write_text(name, ini);
}

static void second_host_on_a_gateway_address_fails_to_start_naming_it(void **state)
{
    (void)state;
    int port = test_free_port();
    gateway_ini("g1.ini", port, "127.0.0.1:0");
    gateway_ini("g2.ini", port, "127.0.0.1:0");
    host_proc first, second;
    spawn(&first, "g1.ini", "g1.log", true);
    spawn(&second, "g2.ini", "g2.log", false);
    assert_int_equal(wait_exit(&second), 1);
    char addr[64];
    snprintf(addr, sizeof addr, "cannot listen on 127.0.0.1:%d: Address already in use", port);
    assert_non_null(strstr(slurp(second.log), addr));
    /* The first still owns it and answers there. */
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    assert_int_equal(http(addr, "GET", "/v1/instruments", NULL), 200);
    stop_host(&first);
}

static void second_host_on_an_admin_address_fails_to_start_naming_it(void **state)
{
    (void)state;
    write_text("a1.ini", "[host]\nadmin_token = " ADMIN_TOKEN
                         "\nadmin = 127.0.0.1:0\n[plugin c]\nload = tp_seq.so\n");
    host_proc first, second;
    spawn(&first, "a1.ini", "a1.log", true);
    char ini[256];
    snprintf(ini, sizeof ini,
             "[host]\nadmin_token = " ADMIN_TOKEN "\nadmin = %s\n[plugin c]\nload = tp_seq.so\n",
             first.admin);
    write_text("a2.ini", ini);
    spawn(&second, "a2.ini", "a2.log", false);
    assert_int_not_equal(wait_exit(&second), 0);
    char want[128];
    snprintf(want, sizeof want, "[host] admin = %s: cannot listen", first.admin);
    assert_non_null(strstr(slurp(second.log), want));
    assert_int_equal(http(first.admin, "GET", "/healthz", NULL), 200);
    stop_host(&first);
}

static void sighup_onto_a_port_in_use_keeps_the_gateway_where_it_is(void **state)
{
    (void)state;
    int port = test_free_port(), taken;
    int holder = hold_port(&taken);
    gateway_ini("g.ini", port, "127.0.0.1:0");
    host_proc p;
    spawn(&p, "g.ini", "g.log", true);
    gateway_ini("g.ini", taken, "127.0.0.1:0");
    kill(p.pid, SIGHUP);
    const char *refused = wait_log(&p, "SIGHUP refused, nothing changed");
    assert_non_null(refused);
    char want[128];
    snprintf(want, sizeof want, "cannot listen on 127.0.0.1:%d: Address already in use", taken);
    assert_non_null(strstr(refused, want));
    assert_non_null(strstr(refused, "g.ini:"));
    assert_non_null(strstr(refused, "[plugin gateway]"));
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    assert_int_equal(http(addr, "GET", "/v1/instruments", NULL), 200);
    const char *body;
    assert_int_equal(http(p.admin, "GET", "/healthz", &body), 200);
    assert_non_null(strstr(body, "\"last_reconfigure\":{\"ok\":false"));
    assert_non_null(strstr(body, want));
    close(holder);
    stop_host(&p);
}

static void reload_config_answers_the_refusal_with_file_line_and_instance(void **state)
{
    (void)state;
    write_text("r.ini", seq_ini);
    host_proc p;
    spawn(&p, "r.ini", "r.log", true);
    write_text("r.ini", "[host]\nadmin_token = " ADMIN_TOKEN "\nadmin = 127.0.0.1:0\n"
                        "[plugin p]\nload = tp_seq.so\nrole = producer\nthread = 1\n"
                        "[plugin c]\nload = tp_seq.so\nrole = consumer\nburst = banana\n");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "ARB_ADMIN_TOKEN=" ADMIN_TOKEN " %s/arbctl -a %s reload-config 2>&1",
             B, p.admin);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    char out[4096];
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = 0;
    int st = pclose(f);
    assert_int_equal(WEXITSTATUS(st), 1);
    if (!strstr(out, "r.ini:11: [plugin c] burst = 'banana'") || !strstr(out, "\"ok\": false"))
        fail_msg("arbctl reload-config said:\n%s", out);
    const char *body;
    assert_int_equal(http(p.admin, "GET", "/plugins", &body), 200);
    assert_non_null(strstr(body, "\"instance\":\"c\""));
    assert_non_null(strstr(body, "\"state\":\"running\""));
    stop_host(&p);
}

/* A second [plugin c] with its own `role` would merge into the first: a
 * SIGHUP that brings it is refused, naming both lines, and the old config
 * keeps running; at start and under --check the same file is refused. */
static void a_key_set_twice_is_refused_at_sighup_start_and_check(void **state)
{
    (void)state;
    write_text("d.ini", seq_ini);
    host_proc p;
    spawn(&p, "d.ini", "d.log", true);
    char ini[512], want[1200];
    snprintf(ini, sizeof ini, "%s[plugin c]\nrole = producer\n", seq_ini);
    write_text("d.ini", ini);
    snprintf(want, sizeof want, "%s/d.ini:12: `role` in [plugin c] is already set at %s/d.ini:10",
             tmp, tmp);
    kill(p.pid, SIGHUP);
    const char *refused = wait_log(&p, "SIGHUP refused, nothing changed");
    assert_non_null(refused);
    if (strncmp(strstr(refused, ": ") + 2, want, strlen(want)))
        fail_msg("refusal: %s (wanted '%s')", refused, want);
    const char *body;
    assert_int_equal(http(p.admin, "GET", "/healthz", &body), 200);
    assert_non_null(strstr(body, "\"last_reconfigure\":{\"ok\":false"));
    assert_int_equal(http(p.admin, "GET", "/plugins", &body), 200);
    assert_non_null(strstr(body, "\"instance\":\"c\""));
    assert_non_null(strstr(body, "\"state\":\"running\""));
    stop_host(&p);

    spawn(&p, "d.ini", "d2.log", false);
    assert_int_equal(wait_exit(&p), 2);
    if (!strstr(slurp(p.log), want))
        fail_msg("at start: %s", slurp(p.log));
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s/arb-host -c %s/d.ini --check > %s/d3.log 2>&1", B, tmp, tmp);
    int st = system(cmd);
    assert_int_equal(WEXITSTATUS(st), 2);
    snprintf(cmd, sizeof cmd, "%s/d3.log", tmp);
    if (!strstr(slurp(cmd), want))
        fail_msg("--check: %s", slurp(cmd));
}

/* A journal that holds records but has lost its run file is neither
 * resumed under a made-up run nor wiped: the host refuses to start, says
 * why and what to do, and the records stay; --new-run then begins anew. */
static void journal_without_its_run_file_is_refused_not_wiped(void **state)
{
    (void)state;
    char ini[1024], run[600], seg[600];
    snprintf(ini, sizeof ini,
             "[host]\nid = rj\n[bus]\njournal = %s/j\njournal_topics = t\n"
             "[plugin p]\nload = tp_seq.so\nrole = producer\ntopic = t\n",
             tmp);
    write_text("j.ini", ini);
    host_proc p;
    spawn(&p, "j.ini", "j.log", false);
    assert_non_null(wait_log(&p, "started tp_seq"));
    snprintf(seg, sizeof seg, "%s/j/t/00000000000000000000.log", tmp);
    snprintf(run, sizeof run, "%s/j/run", tmp);
    /* until the producer's first records are in the journal (polled) */
    struct stat st;
    for (int64_t end = mono_ms() + 10000; (stat(seg, &st) || st.st_size == 0) && mono_ms() < end;)
        usleep(2000);
    stop_host(&p);
    assert_true(file_size(seg) > 0);
    assert_int_equal(unlink(run), 0);
    spawn(&p, "j.ini", "j2.log", false);
    assert_int_equal(wait_exit(&p), 2);
    if (!strstr(slurp(p.log), "holds records but its run file is missing"))
        fail_msg("refusal: %s", slurp(p.log));
    assert_true(file_size(seg) > 0);
    /* a run file cut short (no check line) is damaged, not another run */
    write_text("j/run", "id=48");
    spawn(&p, "j.ini", "j2b.log", false);
    assert_int_equal(wait_exit(&p), 2);
    if (!strstr(slurp(p.log), "holds records but its run file is damaged"))
        fail_msg("refusal: %s", slurp(p.log));
    snprintf(ini + strlen(ini), sizeof ini - strlen(ini), "[host]\nnew_run = true\n");
    write_text("j.ini", ini);
    spawn(&p, "j.ini", "j3.log", false);
    assert_non_null(wait_log(&p, "new (epoch 0)"));
    stop_host(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(truncated_so_reload_is_refused_and_the_host_lives),
        cmocka_unit_test(zero_length_so_reload_is_refused_and_the_host_lives),
        cmocka_unit_test(non_elf_so_reload_is_refused_and_the_host_lives),
        cmocka_unit_test(growing_so_reload_is_refused_and_the_host_lives),
        cmocka_unit_test(unchanged_image_reload_answers_unchanged_and_counts_nothing),
        cmocka_unit_test(copies_left_by_a_dead_host_are_removed_at_start),
        cmocka_unit_test(crash_in_create_names_the_plugin_and_exits_70),
        cmocka_unit_test(crash_in_start_names_the_plugin_and_exits_70),
        cmocka_unit_test(crash_in_deliver_names_the_plugin_topic_and_exits_70),
        cmocka_unit_test(crash_in_timer_names_the_plugin_and_exits_70),
        cmocka_unit_test(stack_overflow_in_a_timer_on_a_worker_loop_is_reported),
        cmocka_unit_test(crash_in_route_names_the_plugin_and_exits_70),
        cmocka_unit_test(crash_in_stop_names_the_plugin_and_exits_70),
        cmocka_unit_test(crash_in_save_names_the_plugin_and_exits_70),
        cmocka_unit_test(crash_in_restore_names_the_plugin_and_exits_70),
        cmocka_unit_test(crash_in_a_constructor_names_the_image_being_loaded),
        cmocka_unit_test(run_script_restarts_a_host_killed_by_a_plugin_crash),
        cmocka_unit_test(supervise_passes_new_run_to_the_first_start_only),
        cmocka_unit_test(supervise_gives_up_after_six_quick_crashes),
        cmocka_unit_test(second_host_on_a_gateway_address_fails_to_start_naming_it),
        cmocka_unit_test(second_host_on_an_admin_address_fails_to_start_naming_it),
        cmocka_unit_test(sighup_onto_a_port_in_use_keeps_the_gateway_where_it_is),
        cmocka_unit_test(reload_config_answers_the_refusal_with_file_line_and_instance),
        cmocka_unit_test(a_key_set_twice_is_refused_at_sighup_start_and_check),
        cmocka_unit_test(journal_without_its_run_file_is_refused_not_wiped),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

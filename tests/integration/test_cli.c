/*
 * test_cli.c -- the programs as a person runs them: arb-host --check and its
 * exit codes, a running arb-host driven by arbctl, SIGHUP and SIGTERM, and
 * `make install` followed by an out-of-tree plugin built with pkg-config.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *B; /* the build directory under test */
static char tmp[256];

/* Runs a shell command; returns its exit status and its output (stdout and
 * stderr) in a static buffer. */
static int run(const char **out, const char *fmt, ...)
{
    static char buf[1 << 16];
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    strncat(cmd, " 2>&1", sizeof cmd - strlen(cmd) - 1);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(buf, 1, sizeof buf - 1, p);
    buf[n] = 0;
    int st = pclose(p);
    if (out)
        *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void write_text(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    B = getenv("ARB_BUILD") ? getenv("ARB_BUILD") : "build";
    snprintf(tmp, sizeof tmp, "/tmp/arb-test-cli-XXXXXX");
    assert_non_null(mkdtemp(tmp));
    char dirs[512];
    snprintf(dirs, sizeof dirs, "%s/tests/plugins", B);
    setenv("ARB_PLUGIN_DIR", dirs, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return run(NULL, "rm -rf %s", tmp);
}

static void check_prints_the_plan_and_exits_zero(void **state)
{
    (void)state;
    write_text("good.ini", "[host]\nid = cli\n[plugin p]\nload = tp_seq.so\nrole = producer\n"
                           "thread = 1\n[plugin c]\nload = tp_seq.so\nrole = consumer\n");
    const char *out;
    assert_int_equal(run(&out, "%s/arb-host --check -c %s/good.ini", B, tmp), 0);
    assert_non_null(strstr(out, "host cli: 2 loops"));
    assert_non_null(strstr(out, "instance p: plugin tp_seq 1.0.0"));
    assert_non_null(strstr(out, "on loop 1"));
    assert_non_null(strstr(out, "subscribes test.seq"));
    assert_non_null(strstr(out, "configuration OK"));
}

static void check_fails_with_file_and_line(void **state)
{
    (void)state;
    const char *out;
    write_text("bad1.ini", "[plugin p]\nload = tp_seq.so\nrole = idle\nbrust = 3\n");
    assert_int_equal(run(&out, "%s/arb-host --check -c %s/bad1.ini", B, tmp), 2);
    assert_non_null(strstr(out, "bad1.ini:4: unknown key 'brust' in [plugin p]"));
    write_text("bad2.ini", "[plugin p]\nload = missing.so\n");
    assert_int_equal(run(&out, "%s/arb-host --check -c %s/bad2.ini", B, tmp), 2);
    assert_non_null(strstr(out, "bad2.ini:2: [plugin p] load = missing.so: plugin file not found"));
    write_text("bad3.ini", "[plugin p]\nload = tp_badabi.so\n");
    assert_int_equal(run(&out, "%s/arb-host --check -c %s/bad3.ini", B, tmp), 2);
    assert_non_null(strstr(out, "ABI mismatch"));
    write_text("bad4.ini", "[plugin p]\nload = tp_noentry.so\n");
    assert_int_equal(run(&out, "%s/arb-host --check -c %s/bad4.ini", B, tmp), 2);
    assert_non_null(strstr(out, "missing entry symbol"));
    write_text("bad5.ini", "[plugin p]\nload = tp_seq.so\npositive = 0\n");
    assert_int_equal(run(&out, "%s/arb-host --check -c %s/bad5.ini", B, tmp), 2);
    assert_non_null(strstr(out, "bad5.ini:3: [plugin p] positive: must be greater than zero"));
    assert_int_equal(run(&out, "%s/arb-host --check -c %s/nonexistent.ini", B, tmp), 2);
    assert_non_null(strstr(out, "cannot open"));
    assert_int_equal(run(&out, "%s/arb-host", B), 2);
    assert_non_null(strstr(out, "usage"));
}

static void check_warns_about_an_exposed_admin_without_a_token(void **state)
{
    (void)state;
    const char *out;
    write_text("exposed.ini", "[host]\nadmin = 0.0.0.0:9100\n");
    assert_int_equal(run(&out, "%s/arb-host --check -c %s/exposed.ini", B, tmp), 0);
    assert_non_null(strstr(out, "warning: [host] admin = 0.0.0.0:9100 is not a loopback address"));
    write_text("local.ini", "[host]\nadmin = 127.0.0.1:9100\n");
    assert_int_equal(run(&out, "%s/arb-host --check -c %s/local.ini", B, tmp), 0);
    assert_null(strstr(out, "warning"));
}

static void overrides_on_the_command_line_win(void **state)
{
    (void)state;
    const char *out;
    write_text("ov.ini", "[host]\nid = fromfile\n[plugin p]\nload = tp_seq.so\nrole = idle\n");
    assert_int_equal(
        run(&out, "%s/arb-host --check -c %s/ov.ini -s host.id=fromcli -s p.thread=2", B, tmp), 0);
    assert_non_null(strstr(out, "host fromcli: 3 loops"));
    assert_int_equal(run(&out, "%s/arb-host --check -c %s/ov.ini -s p.positive=-1", B, tmp), 2);
    assert_non_null(strstr(out, "<command line>: [plugin p] positive"));
}

/* Starts arb-host in the background; returns its pid and the admin address
 * it reports on stderr (it binds port 0). */
static pid_t start_host(const char *ini, char *addr, size_t n, const char *log)
{
    char path[512], logpath[512];
    snprintf(path, sizeof path, "%s/%s", tmp, ini);
    snprintf(logpath, sizeof logpath, "%s/%s", tmp, log);
    char exe[512];
    snprintf(exe, sizeof exe, "%s/arb-host", B);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen(logpath, "w", stderr))
            _exit(99);
        execl(exe, exe, "-c", path, (char *)NULL);
        _exit(98);
    }
    for (int i = 0; i < 500; i++) {
        const char *out;
        run(&out, "grep -o 'admin listening on http://[0-9.:]*' %s", logpath);
        const char *p = strstr(out, "http://");
        if (p) {
            snprintf(addr, n, "%.*s", (int)strcspn(p + 7, "\n"), p + 7);
            return pid;
        }
        usleep(10000);
    }
    fail_msg("arb-host did not report its admin address");
    return -1;
}

static int wait_exit(pid_t pid)
{
    int st = 0;
    for (int i = 0; i < 1000; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    fail_msg("arb-host did not exit");
    return -1;
}

static void arbctl_drives_a_running_host(void **state)
{
    (void)state;
    write_text("run.ini", "[host]\nid = live\nadmin = 127.0.0.1:0\n"
                          "[plugin p]\nload = tp_seq.so\nrole = producer\nthread = 1\n"
                          "[plugin c]\nload = tp_seq.so\nrole = consumer\n");
    char addr[64];
    pid_t pid = start_host("run.ini", addr, sizeof addr, "run.log");
    const char *out;
    assert_int_equal(run(&out, "%s/arbctl -a %s status", B, addr), 0);
    assert_non_null(strstr(out, "host live: ok"));
    assert_int_equal(run(&out, "%s/arbctl -a %s plugins", B, addr), 0);
    assert_non_null(strstr(out, "tp_seq"));
    assert_int_equal(run(&out, "%s/arbctl -a %s reload c", B, addr), 0);
    assert_non_null(strstr(out, "\"unchanged\": true")); /* its own file: the running image */
    assert_non_null(strstr(out, "\"reloads\": 0"));
    assert_int_equal(
        run(&out, "%s/arbctl -a %s reload c %s/tests/plugins/tp_seq_v2.so", B, addr, B), 0);
    assert_non_null(strstr(out, "\"reloads\": 1"));
    /* A path outside the plugin and config directories is refused. */
    assert_int_equal(run(&out, "%s/arbctl -a %s reload c /does/not/exist.so", B, addr), 1);
    assert_non_null(strstr(out, "path_not_allowed"));
    /* Without the token (arbctl read the host's token file), no reload. */
    assert_int_equal(run(&out, "ARB_ADMIN_TOKEN=wrong %s/arbctl -a %s reload c", B, addr), 1);
    assert_non_null(strstr(out, "unauthorized"));
    assert_int_equal(run(&out, "%s/arbctl -a %s reload nobody", B, addr), 1);
    assert_int_equal(run(&out, "%s/arbctl -a %s metrics", B, addr), 0);
    assert_non_null(strstr(out, "arb_plugin_reloads_total{instance=\"c\"} 1"));
    assert_int_equal(run(&out, "%s/arbctl -a %s get /plugins/c/state", B, addr), 0);
    assert_non_null(strstr(out, "\"errors\": 0"));
    assert_int_equal(run(&out, "%s/arbctl -a %s frobnicate", B, addr), 2);
    /* -c reads the config as the host does: ${ENV:-default} expanded. */
    write_text("ctl.ini", "[host]\nadmin = ${ARB_TEST_ADMIN:-127.0.0.1:1}\n");
    assert_int_equal(run(&out, "ARB_TEST_ADMIN=%s %s/arbctl -c %s/ctl.ini status", addr, B, tmp),
                     0);
    assert_non_null(strstr(out, "host live: ok"));
    /* SIGHUP: a new instance appears, the others stay. */
    write_text("run.ini", "[host]\nid = live\nadmin = 127.0.0.1:0\n"
                          "[plugin p]\nload = tp_seq.so\nrole = producer\nthread = 1\n"
                          "[plugin c]\nload = tp_seq.so\nrole = consumer\n"
                          "[plugin extra]\nload = tp_seq.so\nrole = idle\n");
    kill(pid, SIGHUP);
    int seen = 0;
    for (int i = 0; i < 200 && !seen; i++) {
        run(&out, "%s/arbctl -a %s plugins", B, addr);
        seen = strstr(out, "extra") != NULL;
        usleep(10000);
    }
    assert_true(seen);
    assert_int_equal(run(&out, "%s/arbctl -a %s get /plugins/c/state", B, addr), 0);
    assert_non_null(strstr(out, "\"errors\": 0"));
    /* SIGTERM: clean stop, instances stopped newest first. */
    kill(pid, SIGTERM);
    assert_int_equal(wait_exit(pid), 0);
    assert_int_equal(run(&out, "cat %s/run.log", tmp), 0);
    const char *extra = strstr(out, "[extra] stopped"), *c = strstr(out, "[c] stopped"),
               *p = strstr(out, "[p] stopped");
    assert_non_null(extra);
    assert_non_null(c);
    assert_non_null(p);
    assert_true(extra < c && c < p);
    assert_int_equal(run(&out, "%s/arbctl -a %s status", B, addr), 2);
    assert_non_null(strstr(out, "no answer"));
}

static void installed_sdk_builds_an_out_of_tree_plugin(void **state)
{
    (void)state;
    const char *out;
    int rc = run(&out, "make -s --no-print-directory install B=%s PREFIX=/opt/arb DESTDIR=%s/root",
                 B, tmp);
    if (rc)
        fail_msg("make install: %s", out);
    assert_int_equal(run(&out,
                         "test -x %s/root/opt/arb/bin/arb-host && test -x "
                         "%s/root/opt/arb/bin/arbctl && test -f "
                         "%s/root/opt/arb/include/arb/plugin.h && test -f "
                         "%s/root/opt/arb/lib/pkgconfig/arb-sdk.pc",
                         tmp, tmp, tmp, tmp),
                     0);
    /* Exactly what the README tells a plugin author to run. */
    rc = run(&out,
             "export PKG_CONFIG_PATH=%s/root/opt/arb/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=%s/root; "
             "cc $(pkg-config --cflags arb-sdk) -std=c17 -Wall -Wextra -Werror -shared -fPIC "
             "-fvisibility=hidden -o %s/hello.so tests/integration/oot/hello_plugin.c",
             tmp, tmp, tmp);
    if (rc)
        fail_msg("out-of-tree build: %s", out);
    assert_int_equal(run(&out, "nm -D --defined-only %s/hello.so | grep -c ' T '", tmp), 0);
    assert_non_null(strstr(out, "1"));
    write_text("oot.ini", "[plugin hello]\nload = ./hello.so\nevery_ms = 5\n");
    assert_int_equal(run(&out,
                         "env -u ARB_PLUGIN_DIR %s/root/opt/arb/bin/arb-host --check -c %s/oot.ini",
                         tmp, tmp),
                     0);
    assert_non_null(strstr(out, "instance hello: plugin hello 0.1.0"));
    assert_non_null(strstr(out, "publishes  hello"));
    /* And it runs: three greetings, then a clean SIGTERM. */
    rc = run(&out, "cd %s && (timeout -s TERM 1 %s/root/opt/arb/bin/arb-host -c oot.ini; true)",
             tmp, tmp);
    assert_non_null(strstr(out, "hello from outside the tree"));
    assert_non_null(strstr(out, "[hello] stopped"));
}

/* arbctl reads a split config without its environment: the address a
 * config resolves to, ${VAR:-default} expanded, an unset ${VAR} empty. */
static void arbctl_reads_a_split_config_without_its_environment(void **state)
{
    (void)state;
    unsetenv("ARB_BROKERS");
    unsetenv("ARB_ADMIN_MATCHER");
    const char *out;
    assert_int_equal(run(&out, "%s/arbctl -c conf.d/split/matcher.ini where", B), 0);
    assert_string_equal(out, "admin 127.0.0.1:9101\n");
    /* status goes to that address (whether a host answers there or not),
     * instead of stopping at the unset variable. */
    run(&out, "%s/arbctl -c conf.d/split/matcher.ini status", B);
    assert_null(strstr(out, "ARB_BROKERS"));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(check_prints_the_plan_and_exits_zero),
        cmocka_unit_test(check_fails_with_file_and_line),
        cmocka_unit_test(overrides_on_the_command_line_win),
        cmocka_unit_test(check_warns_about_an_exposed_admin_without_a_token),
        cmocka_unit_test(arbctl_drives_a_running_host),
        cmocka_unit_test(arbctl_reads_a_split_config_without_its_environment),
        cmocka_unit_test(installed_sdk_builds_an_out_of_tree_plugin),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

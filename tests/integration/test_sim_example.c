/*
 * test_sim_example.c -- the README's "Writing a new agent" walk-through, for
 * real: install the SDK headers and arb-sdk.pc into a scratch prefix (what
 * `make install` does for the SDK), build examples/value_taker.c out of tree
 * with exactly `cc $(pkg-config --cflags arb-sdk) -shared -fPIC`, load it by
 * a config section into a running simulated market, see it trade, and
 * hot-reload a rebuilt copy that behaves differently without losing its
 * position or cash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <unistd.h>

#include "test_sim_common.h"

#define TAKER_ACCOUNT 40u

typedef struct taker_watch {
    sim_reports reports;
} taker_watch;

static char prefix[256];

static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc)
        fprintf(stderr, "failed (%d): %s\n", rc, cmd);
    return rc;
}

static int setup(void **state)
{
    (void)state;
    snprintf(prefix, sizeof prefix, "/tmp/arb_sim_exampleXXXXXX");
    if (!mkdtemp(prefix))
        return -1;
    /* The SDK part of `make install`, into the scratch prefix. */
    return sh("mkdir -p %s/include/arb %s/lib/pkgconfig && cp sdk/arb/*.h %s/include/arb/ && "
              "sed -e 's|@PREFIX@|%s|g' sdk/arb-sdk.pc.in > %s/lib/pkgconfig/arb-sdk.pc",
              prefix, prefix, prefix, prefix, prefix);
}

static int teardown(void **state)
{
    (void)state;
    return sh("rm -rf %s", prefix);
}

/* The README's build line, with an optional extra flag. */
static int build_example(const char *out, const char *flags)
{
    return sh("PKG_CONFIG_PATH=%s/lib/pkgconfig cc $(PKG_CONFIG_PATH=%s/lib/pkgconfig "
              "pkg-config --cflags arb-sdk) -shared -fPIC %s -o %s examples/value_taker.c",
              prefix, prefix, flags, out);
}

typedef struct until_ticks {
    sim_reports *r;
    uint64_t ticks;
} until_ticks;

static int taker_ticked(void *user)
{
    until_ticks *u = user;
    arb_agent_report *rep = sim_report_of(u->r, TAKER_ACCOUNT);
    return rep && rep->ticks >= u->ticks;
}

static void example_builds_out_of_tree_trades_and_hot_reloads(void **state)
{
    (void)state;
    char so[512], so_idle[512], section[1024], err[512];
    snprintf(so, sizeof so, "%s/value_taker.so", prefix);
    snprintf(so_idle, sizeof so_idle, "%s/value_taker_idle.so", prefix);
    assert_int_equal(build_example(so, ""), 0);
    /* A build that never finds an edge: the behaviour change to look for. */
    assert_int_equal(build_example(so_idle, "-DEDGE_EXTRA=1000000"), 0);
    snprintf(section, sizeof section,
             "[plugin taker]\nload = %s\naccount = 40\ninstruments = XA:BTCUSD XB:BTCUSD\n"
             "edge_ticks = 1\nqty = 100\nmax_position = 3000\nreport_topic = sim.reports\n",
             so);
    char *ini = sim_ini(3, 0, 300, section);
    testhost *h = testhost_new(ini);
    free(ini);
    assert_non_null(h);
    static taker_watch w;
    memset(&w, 0, sizeof w);
    arb_ctx *ctx = testhost_ctx(h);
    assert_true(arb_subscribe(ctx, arb_topic(ctx, "sim.reports"), sim_reports_on_msg, &w.reports) >=
                0);
    assert_int_equal(testhost_start(h), ARB_OK);
    until_ticks u = {&w.reports, 3000};
    assert_true(testhost_run_until(h, taker_ticked, &u, 30ll * 1000000000));
    arb_agent_report before = *sim_report_of(&w.reports, TAKER_ACCOUNT);
    assert_true(before.orders_sent > 0);
    assert_true(before.fills > 0);

    /* Rebuilt differently and reloaded: same position and cash, no more
     * orders, ticks running on. */
    assert_int_equal(testhost_reload(h, "taker", so_idle, err, sizeof err), ARB_OK);
    u.ticks = before.ticks + 500;
    assert_true(testhost_run_until(h, taker_ticked, &u, 30ll * 1000000000));
    arb_agent_report idle = *sim_report_of(&w.reports, TAKER_ACCOUNT);
    assert_int_equal(idle.tick_gaps + idle.tick_dups, 0);
    assert_int_equal(idle.ticks, idle.last_tick - idle.first_tick + 1);
    uint64_t sent_at_idle = idle.orders_sent;
    assert_true(sent_at_idle >= before.orders_sent);
    u.ticks = idle.ticks + 500;
    assert_true(testhost_run_until(h, taker_ticked, &u, 30ll * 1000000000));
    arb_agent_report later = *sim_report_of(&w.reports, TAKER_ACCOUNT);
    assert_int_equal(later.orders_sent, sent_at_idle);
    assert_int_equal(later.position[0], idle.position[0]);
    assert_int_equal(later.cash[1], idle.cash[1]);

    /* And back: it trades again. */
    assert_int_equal(testhost_reload(h, "taker", so, err, sizeof err), ARB_OK);
    u.ticks = later.ticks + 3000;
    assert_true(testhost_run_until(h, taker_ticked, &u, 30ll * 1000000000));
    assert_true(sim_report_of(&w.reports, TAKER_ACCOUNT)->orders_sent > later.orders_sent);
    testhost_free(h);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

/* The code a reader copies from the walk-through is the code the test
 * builds: the first ```c block after "## Writing a new agent" must be
 * examples/value_taker.c from its first #include on. Checked in
 * examples/README.md, and in README.md once the section is there. */
static void walk_through_shows_exactly_the_example(void **state)
{
    (void)state;
    char *code = slurp("examples/value_taker.c");
    assert_non_null(code);
    const char *body = strstr(code, "#include");
    assert_non_null(body);
    const char *docs[] = {"examples/README.md", "README.md"};
    int checked = 0;
    for (int i = 0; i < 2; i++) {
        char *doc = slurp(docs[i]);
        const char *sec = doc ? strstr(doc, "## Writing a new agent") : NULL;
        const char *start = sec ? strstr(sec, "```c\n") : NULL;
        if (!start) {
            free(doc);
            continue;
        }
        start += 5;
        const char *end = strstr(start, "```");
        assert_non_null(end);
        assert_int_equal((size_t)(end - start), strlen(body));
        assert_memory_equal(start, body, strlen(body));
        checked++;
        free(doc);
    }
    assert_true(checked >= 1);
    free(code);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(walk_through_shows_exactly_the_example),
        cmocka_unit_test_setup_teardown(example_builds_out_of_tree_trades_and_hot_reloads, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_config.c -- the INI layer: entries with file and line, includes,
 * ${ENV} expansion, -s overrides, keys set twice, long lines, syntax errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static char tmpdir[256];

static const char *write_file(const char *name, const char *text)
{
    static char path[4][512];
    static int k;
    char *p = path[k++ % 4];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/arb-test-config-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd);
}

static void entries_remember_file_and_line(void **state)
{
    (void)state;
    const char *f =
        write_file("a.ini", "; comment\n[host]\nid = alpha\n\n[plugin m]\nload = m.so\n");
    arbh_config cfg;
    assert_int_equal(arbh_config_load(&cfg, &f, 1, NULL, 0), 0);
    arbh_cfg_entry *e = arbh_config_find(&cfg, "plugin m", "load");
    assert_non_null(e);
    assert_string_equal(e->value, "m.so");
    assert_string_equal(e->file, f);
    assert_int_equal(e->line, 6);
    assert_string_equal(arbh_config_get(&cfg, "host", "id", NULL), "alpha");
    arbh_config_free(&cfg);
}

static void include_is_relative_to_the_including_file(void **state)
{
    (void)state;
    write_file("shared.ini", "[instrument XA:BTC]\ntick_size = 0.5\n");
    const char *f = write_file("main.ini", "include = shared.ini\n[host]\nid = x\n");
    arbh_config cfg;
    assert_int_equal(arbh_config_load(&cfg, &f, 1, NULL, 0), 0);
    arbh_cfg_entry *e = arbh_config_find(&cfg, "instrument XA:BTC", "tick_size");
    assert_non_null(e);
    assert_string_equal(e->value, "0.5");
    assert_non_null(strstr(e->file, "shared.ini"));
    assert_int_equal(e->line, 2);
    arbh_config_free(&cfg);
}

static void include_cycle_is_an_error_naming_the_file(void **state)
{
    (void)state;
    const char *f = write_file("loop.ini", "include = loop.ini\n");
    arbh_config cfg;
    assert_int_not_equal(arbh_config_load(&cfg, &f, 1, NULL, 0), 0);
    assert_non_null(strstr(cfg.err, "loop.ini:1"));
    assert_non_null(strstr(cfg.err, "nested"));
    arbh_config_free(&cfg);
}

static void missing_include_names_the_missing_file(void **state)
{
    (void)state;
    const char *f = write_file("m.ini", "[host]\nid = a\ninclude = nope.ini\n");
    arbh_config cfg;
    assert_int_not_equal(arbh_config_load(&cfg, &f, 1, NULL, 0), 0);
    assert_non_null(strstr(cfg.err, "nope.ini"));
    assert_non_null(strstr(cfg.err, "cannot open"));
    arbh_config_free(&cfg);
}

static void env_expansion_with_and_without_default(void **state)
{
    (void)state;
    setenv("ARB_TEST_PORT", "9123", 1);
    unsetenv("ARB_TEST_UNSET");
    arbh_config cfg;
    assert_int_equal(arbh_config_load_string(&cfg, "t.ini",
                                             "[host]\nadmin = 127.0.0.1:${ARB_TEST_PORT}\n"
                                             "id = ${ARB_TEST_UNSET:-fallback}-$$\n",
                                             NULL, 0),
                     0);
    assert_string_equal(arbh_config_get(&cfg, "host", "admin", NULL), "127.0.0.1:9123");
    assert_string_equal(arbh_config_get(&cfg, "host", "id", NULL), "fallback-$");
    arbh_config_free(&cfg);
}

static void unset_env_without_default_is_an_error(void **state)
{
    (void)state;
    unsetenv("ARB_TEST_UNSET");
    arbh_config cfg;
    assert_int_not_equal(
        arbh_config_load_string(&cfg, "t.ini", "[host]\n\nid = ${ARB_TEST_UNSET}\n", NULL, 0), 0);
    assert_non_null(strstr(cfg.err, "t.ini:3"));
    assert_non_null(strstr(cfg.err, "ARB_TEST_UNSET"));
    arbh_config_free(&cfg);
}

/* The lenient load (arbctl's): an unset ${VAR} is empty, a default still
 * applies. */
static void lenient_load_expands_unset_env_to_empty(void **state)
{
    (void)state;
    unsetenv("ARB_TEST_UNSET");
    char path[] = "/tmp/arb-test-lenient-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char text[] =
        "[bus]\nbrokers = ${ARB_TEST_UNSET}\n[host]\nadmin = ${ARB_TEST_UNSET:-127.0.0.1:9}\n";
    assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    const char *files[] = {path};
    arbh_config cfg;
    assert_int_equal(arbh_config_load_lenient(&cfg, files, 1), 0);
    assert_string_equal(arbh_config_get(&cfg, "bus", "brokers", "x"), "");
    assert_string_equal(arbh_config_get(&cfg, "host", "admin", "x"), "127.0.0.1:9");
    arbh_config_free(&cfg);
    assert_int_not_equal(arbh_config_load(&cfg, files, 1, NULL, 0), 0);
    arbh_config_free(&cfg);
    unlink(path);
}

static void overrides_beat_files_and_find_plugin_sections(void **state)
{
    (void)state;
    const char *ov[] = {"clock.ticks=50", "host.id=beta", "newsect.k=v"};
    arbh_config cfg;
    assert_int_equal(arbh_config_load_string(
                         &cfg, "t.ini", "[host]\nid = alpha\n[plugin clock]\nticks = 10\n", ov, 3),
                     0);
    assert_string_equal(arbh_config_get(&cfg, "plugin clock", "ticks", NULL), "50");
    assert_string_equal(arbh_config_get(&cfg, "host", "id", NULL), "beta");
    assert_string_equal(arbh_config_get(&cfg, "newsect", "k", NULL), "v");
    arbh_cfg_entry *e = arbh_config_find(&cfg, "plugin clock", "ticks");
    assert_string_equal(e->file, "<command line>");
    arbh_config_free(&cfg);
}

static void malformed_override_is_an_error(void **state)
{
    (void)state;
    const char *ov[] = {"novalue"};
    arbh_config cfg;
    assert_int_not_equal(arbh_config_load_string(&cfg, "t.ini", "[host]\n", ov, 1), 0);
    assert_non_null(strstr(cfg.err, "section.key=value"));
    arbh_config_free(&cfg);
}

static void lines_over_200_characters_are_read_whole(void **state)
{
    (void)state;
    char text[2000];
    char value[1500];
    memset(value, 'v', sizeof value - 1);
    value[sizeof value - 1] = 0;
    snprintf(text, sizeof text, "[host]\nid = %s\n", value);
    arbh_config cfg;
    assert_int_equal(arbh_config_load_string(&cfg, "t.ini", text, NULL, 0), 0);
    assert_int_equal(strlen(arbh_config_get(&cfg, "host", "id", "")), strlen(value));
    arbh_config_free(&cfg);
}

static void a_line_over_the_limit_is_rejected_with_its_line(void **state)
{
    (void)state;
    size_t n = ARBH_INI_MAX_LINE + 100;
    char *text = malloc(n + 64);
    int off = sprintf(text, "[host]\nid = a\nlong = ");
    memset(text + off, 'x', n);
    strcpy(text + off + n, "\n[bus]\n");
    arbh_config cfg;
    assert_int_not_equal(arbh_config_load_string(&cfg, "t.ini", text, NULL, 0), 0);
    assert_non_null(strstr(cfg.err, "t.ini:3"));
    assert_non_null(strstr(cfg.err, "limit"));
    arbh_config_free(&cfg);
    free(text);
}

static void syntax_error_names_its_line(void **state)
{
    (void)state;
    arbh_config cfg;
    assert_int_not_equal(arbh_config_load_string(
                             &cfg, "t.ini", "[host]\nid = a\nthis line has no equals\n", NULL, 0),
                         0);
    assert_non_null(strstr(cfg.err, "t.ini:3"));
    arbh_config_free(&cfg);
}

static void key_outside_a_section_is_an_error(void **state)
{
    (void)state;
    arbh_config cfg;
    assert_int_not_equal(arbh_config_load_string(&cfg, "t.ini", "stray = 1\n", NULL, 0), 0);
    assert_non_null(strstr(cfg.err, "t.ini:1"));
    arbh_config_free(&cfg);
}

/* A key set twice would merge two settings silently (the last winning):
 * refused, naming both lines, even when the section was opened again. */
static void a_key_set_twice_in_a_section_is_an_error_naming_both_lines(void **state)
{
    (void)state;
    arbh_config cfg;
    assert_int_not_equal(arbh_config_load_string(
                             &cfg, "t.ini", "[s]\na = 1\nb = 2\n[t]\na = 9\n[s]\na = 3\n", NULL, 0),
                         0);
    assert_string_equal(cfg.err, "t.ini:7: `a` in [s] is already set at t.ini:2");
    arbh_config_free(&cfg);
}

/* The duplicate check's index grows with the file (a scan per key made a
 * 10,000-instrument file take 13 s): a repeat after thousands of keys is
 * still found, and names the first. */
static void a_repeat_after_thousands_of_keys_is_found(void **state)
{
    (void)state;
    size_t cap = 3000 * 40 + 64, n = 0;
    char *text = malloc(cap);
    for (int i = 0; i < 3000; i++)
        n += (size_t)snprintf(text + n, cap - n, "[instrument X:S%d]\ntick = 1\nlot = 1\n", i);
    snprintf(text + n, cap - n, "[instrument X:S7]\nlot = 2\n");
    arbh_config cfg;
    assert_int_not_equal(arbh_config_load_string(&cfg, "big.ini", text, NULL, 0), 0);
    assert_string_equal(cfg.err, "big.ini:9002: `lot` in [instrument X:S7] is already set at "
                                 "big.ini:24");
    arbh_config_free(&cfg);
    free(text);
}

/* The second [plugin taker] appended to an included agents file. */
static void a_key_set_again_across_an_include_is_an_error_naming_both_files(void **state)
{
    (void)state;
    const char *agents = write_file("agents.ini", "[plugin taker]\nload = t.so\naccount = 40\n\n"
                                                  "[plugin taker]\naccount = 41\n");
    char want[1200];
    snprintf(want, sizeof want, "%s:6: `account` in [plugin taker] is already set at %s:3", agents,
             agents);
    const char *f = write_file("main.ini", "[host]\nid = x\ninclude = agents.ini\n");
    arbh_config cfg;
    assert_int_not_equal(arbh_config_load(&cfg, &f, 1, NULL, 0), 0);
    assert_string_equal(cfg.err, want);
    arbh_config_free(&cfg);
    /* and an including file may not replace what it includes either */
    write_file("agents.ini", "[plugin taker]\nload = t.so\naccount = 40\n");
    f = write_file("main.ini", "include = agents.ini\n[plugin taker]\naccount = 41\n");
    assert_int_not_equal(arbh_config_load(&cfg, &f, 1, NULL, 0), 0);
    snprintf(want, sizeof want, "%s:3: `account` in [plugin taker] is already set at %s:3", f,
             agents);
    assert_string_equal(cfg.err, want);
    arbh_config_free(&cfg);
}

/* Two configs that include the same file, given together: said so. */
static void a_file_read_twice_is_refused_saying_so(void **state)
{
    (void)state;
    write_file("instr.ini", "[instrument XA:BTC]\ntick_size = 0.5\n");
    const char *files[] = {write_file("one.ini", "include = instr.ini\n"),
                           write_file("two.ini", "include = instr.ini\n")};
    arbh_config cfg;
    assert_int_not_equal(arbh_config_load(&cfg, files, 2, NULL, 0), 0);
    assert_non_null(strstr(cfg.err, "instr.ini:2: `tick_size` in [instrument XA:BTC]"));
    assert_non_null(strstr(cfg.err, "(is the file read twice?)"));
    arbh_config_free(&cfg);
}

/* conf.d/split: common.ini sets [bus] transport, recorder.ini (which
 * includes it) [bus] group; the section is one, with both keys. */
static void a_section_reopened_with_other_keys_merges(void **state)
{
    (void)state;
    write_file("common.ini", "[bus]\ntransport = kafka\n");
    const char *f = write_file(
        "svc.ini", "include = common.ini\n[bus]\ngroup = g\n[host]\nid = x\n[bus]\nk = v\n");
    arbh_config cfg;
    assert_int_equal(arbh_config_load(&cfg, &f, 1, NULL, 0), 0);
    assert_string_equal(arbh_config_get(&cfg, "bus", "transport", NULL), "kafka");
    assert_string_equal(arbh_config_get(&cfg, "bus", "group", NULL), "g");
    assert_string_equal(arbh_config_get(&cfg, "bus", "k", NULL), "v");
    arbh_config_free(&cfg);
}

/* -s replaces a file's value (that is its purpose), also one set in an
 * included file, and each yields the effective value. */
static int take_value(void *user, const arbh_cfg_entry *e)
{
    *(const char **)user = e->value;
    return 0;
}

static void an_override_replaces_a_value_set_in_an_included_file(void **state)
{
    (void)state;
    write_file("common.ini", "[bus]\ntransport = kafka\n");
    const char *f = write_file("svc.ini", "include = common.ini\n[bus]\ngroup = g\n");
    const char *ov[] = {"bus.transport=inproc", "bus.group=h"};
    arbh_config cfg;
    assert_int_equal(arbh_config_load(&cfg, &f, 1, ov, 2), 0);
    assert_string_equal(arbh_config_get(&cfg, "bus", "transport", NULL), "inproc");
    assert_string_equal(arbh_config_get(&cfg, "bus", "group", NULL), "h");
    const char *eff = NULL;
    arbh_config_each(&cfg, "bus", take_value, &eff);
    assert_string_equal(eff, "h");
    arbh_config_free(&cfg);
}

/* arbctl's lenient load reads a file the host refuses (for its admin
 * address): the last value wins there. */
static void the_lenient_load_lets_a_duplicate_key_pass(void **state)
{
    (void)state;
    const char *f = write_file("dup.ini", "[host]\nadmin = 127.0.0.1:1\nadmin = 127.0.0.1:2\n");
    arbh_config cfg;
    assert_int_equal(arbh_config_load_lenient(&cfg, &f, 1), 0);
    assert_string_equal(arbh_config_get(&cfg, "host", "admin", NULL), "127.0.0.1:2");
    arbh_config_free(&cfg);
}

static void unread_key_in_read_section_is_reported(void **state)
{
    (void)state;
    arbh_config cfg;
    assert_int_equal(arbh_config_load_string(
                         &cfg, "t.ini", "[s]\na = 1\ntypo = 2\n[instrument X:Y]\nk = 1\n", NULL, 0),
                     0);
    arbh_config_find(&cfg, "s", "a");
    bool whole = true;
    const arbh_cfg_entry *e = arbh_config_first_unread(&cfg, &whole);
    assert_non_null(e);
    assert_false(whole);
    assert_string_equal(e->key, "typo");
    assert_int_equal(e->line, 3);
    arbh_config_free(&cfg);
}

static void section_nobody_reads_is_reported_except_instruments(void **state)
{
    (void)state;
    arbh_config cfg;
    assert_int_equal(arbh_config_load_string(&cfg, "t.ini",
                                             "[instrument X:Y]\nk = 1\n[hots]\nid = 1\n", NULL, 0),
                     0);
    bool whole = false;
    const arbh_cfg_entry *e = arbh_config_first_unread(&cfg, &whole);
    assert_non_null(e);
    assert_true(whole);
    assert_string_equal(e->section, "hots");
    arbh_config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(entries_remember_file_and_line),
        cmocka_unit_test(include_is_relative_to_the_including_file),
        cmocka_unit_test(include_cycle_is_an_error_naming_the_file),
        cmocka_unit_test(missing_include_names_the_missing_file),
        cmocka_unit_test(env_expansion_with_and_without_default),
        cmocka_unit_test(unset_env_without_default_is_an_error),
        cmocka_unit_test(lenient_load_expands_unset_env_to_empty),
        cmocka_unit_test(overrides_beat_files_and_find_plugin_sections),
        cmocka_unit_test(malformed_override_is_an_error),
        cmocka_unit_test(lines_over_200_characters_are_read_whole),
        cmocka_unit_test(a_line_over_the_limit_is_rejected_with_its_line),
        cmocka_unit_test(syntax_error_names_its_line),
        cmocka_unit_test(key_outside_a_section_is_an_error),
        cmocka_unit_test(a_key_set_twice_in_a_section_is_an_error_naming_both_lines),
        cmocka_unit_test(a_repeat_after_thousands_of_keys_is_found),
        cmocka_unit_test(a_key_set_again_across_an_include_is_an_error_naming_both_files),
        cmocka_unit_test(a_file_read_twice_is_refused_saying_so),
        cmocka_unit_test(a_section_reopened_with_other_keys_merges),
        cmocka_unit_test(an_override_replaces_a_value_set_in_an_included_file),
        cmocka_unit_test(the_lenient_load_lets_a_duplicate_key_pass),
        cmocka_unit_test(unread_key_in_read_section_is_reported),
        cmocka_unit_test(section_nobody_reads_is_reported_except_instruments),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

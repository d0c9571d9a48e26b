/*
 * main.c -- the arb-host command line.
 *
 *   arb-host -c FILE [-c FILE ...] [-s section.key=value ...] [--check] [--new-run]
 *
 * Files are read in order, -s overrides win over files. --check builds the
 * whole plan (loads every plugin, checks its ABI, lets it validate its
 * config), prints it and exits; any problem exits 2 with file:line.
 * Exit status: 0 stopped cleanly (or the status a plugin asked for), 1 could
 * not start (e.g. an address in use), 2 bad configuration, 70 a plugin
 * crashed (SIGSEGV/SIGBUS/SIGFPE/SIGILL/SIGABRT in its code; the log line
 * before it names the instance, file, build id and callback).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

static void usage(FILE *out)
{
    fputs("usage: arb-host -c FILE [-c FILE ...] [-s section.key=value ...] [--check] "
          "[--new-run]\n"
          "  -c, --config FILE   INI configuration (repeatable; later files add and override)\n"
          "  -s, --set K=V       override one key, e.g. -s clock.ticks=1000 or -s "
          "host.admin=127.0.0.1:9100\n"
          "      --check         load and validate everything, print the plan, exit\n"
          "      --new-run       begin a new run instead of resuming the journal's (the same\n"
          "                      as -s host.new_run=true)\n"
          "  -h, --help          this text\n",
          out);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"set", required_argument, NULL, 's'},
        {"check", no_argument, NULL, 'k'},        {"new-run", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char **files = calloc((size_t)argc, sizeof *files);
    const char **sets = calloc((size_t)argc + 1, sizeof *sets);
    size_t nfiles = 0, nsets = 0;
    int check = 0, opt;
    if (!files || !sets)
        return 1;
    while ((opt = getopt_long(argc, argv, "c:s:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': files[nfiles++] = optarg; break;
        case 's': sets[nsets++] = optarg; break;
        case 'k': check = 1; break;
        case 'n': sets[nsets++] = "host.new_run=true"; break;
        case 'h': opt = -2; break;
        default: opt = -3; break;
        }
        if (opt < -1)
            break;
    }
    if (opt == -2 || opt == -3 || optind < argc || nfiles == 0) {
        usage(opt == -2 ? stdout : stderr);
        free(files);
        free(sets);
        return opt == -2 ? 0 : 2;
    }
    char err[2048];
    int code = 0;
    /* Before any plugin is loaded: a crash in a create() names its plugin. */
    arbh_crash_install();
    arbh_host *h = arbh_host_new(files, nfiles, NULL, sets, nsets, err, sizeof err);
    if (!h) {
        fprintf(stderr, "arb-host: %s\n", err);
        code = 2;
    } else if (check) {
        arbh_host_print_plan(h, stdout);
        arbh_admin_check(h, stdout);
        printf("configuration OK\n");
    } else {
        arbh_host_install_signals(h);
        if (arbh_host_start(h, err, sizeof err) != ARB_OK) {
            fprintf(stderr, "arb-host: %s\n", err);
            code = 1;
        } else {
            code = arbh_host_run(h);
        }
        arbh_host_stop(h);
    }
    if (h)
        h->keep_images = true; /* the process exits next (see host.h) */
    arbh_host_free(h);
    free(files);
    free(sets);
    return code;
}

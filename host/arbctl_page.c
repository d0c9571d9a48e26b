/*
 * arbctl_page.c -- the report page: host/report.html, embedded with the
 * assembler's .incbin (as the gateway embeds its dashboard), written out
 * with a run's report JSON in place of its placeholder, so the file needs
 * nothing else to open: no server, no network. The gateway serves such
 * files under /runs/ (its `runs_dir`).
 */
#include <libgen.h>
#include <stdio.h>
#include <string.h>

#include "arbctl.h"
#include "fsutil.h"

__asm__(".section .rodata\n"
        ".global arbctl_report_html_start\n"
        ".hidden arbctl_report_html_start\n"
        ".balign 16\narbctl_report_html_start:\n"
        ".incbin \"host/report.html\"\n"
        ".global arbctl_report_html_end\n"
        ".hidden arbctl_report_html_end\narbctl_report_html_end:\n"
        ".byte 0\n"
        ".previous\n");
extern const char arbctl_report_html_start[];
extern const char arbctl_report_html_end[];

#define PLACEHOLDER "/*REPORT_JSON*/null"

int arbctl_write_report_html(const char *path, const char *report_json)
{
    const char *page = arbctl_report_html_start;
    const char *at = strstr(page, PLACEHOLDER);
    if (!at) {
        fprintf(stderr, "arbctl: the report page has no placeholder (a build problem)\n");
        return 1;
    }
    /* var/runs/ need not exist yet (a fresh clone). */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    arbh_mkdir_p(dirname(dir), 0755);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "arbctl: cannot write %s\n", path);
        return 1;
    }
    fwrite(page, 1, (size_t)(at - page), f);
    /* Inside <script>: "</" would end it early; JSON allows "<\/". */
    for (const char *p = report_json; *p; p++) {
        if (p[0] == '<' && p[1] == '/')
            fputs("<\\", f);
        else if (*p != '\n')
            fputc(*p, f);
    }
    const char *rest = at + strlen(PLACEHOLDER);
    fwrite(rest, 1, (size_t)(arbctl_report_html_end - rest), f);
    if (fclose(f) != 0) {
        fprintf(stderr, "arbctl: cannot write %s\n", path);
        return 1;
    }
    return 0;
}

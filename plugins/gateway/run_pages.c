/*
 * run_pages.c -- the run reports under /runs/: the HTML files `arbctl report
 * RUN --html FILE` writes (each one self-contained, its data inside) served
 * from the directory `runs_dir`, and an index of them, newest first. The
 * gateway does not read PostgreSQL: arbctl draws the report from it, the
 * gateway only hands the files out. Off while runs_dir is empty.
 *
 * Files are read whole on the gateway's loop: they are small (tens to
 * hundreds of KiB), and only names of letters, digits, '-', '_' and '.'
 * ending in .html are served (no path, no hidden file), so nothing outside
 * runs_dir can be named. Readable as market data is (public_reads).
 */
#include <dirent.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gateway_internal.h"
#include "views.h"

#define RUN_PAGE_MAX (64u << 20)

static int page_name_ok(const char *name, size_t n)
{
    if (n < 6 || n > 200 || name[0] == '.' || strncmp(name + n - 5, ".html", 5))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

static void html_headers(struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "Content-Security-Policy",
                      "default-src 'self'; script-src 'self' 'unsafe-inline'; "
                      "style-src 'self' 'unsafe-inline'; img-src 'self' data:");
}

typedef struct page_entry {
    char name[208];
    long long mtime;
} page_entry;

static int newest_first(const void *a, const void *b)
{
    long long x = ((const page_entry *)a)->mtime, y = ((const page_entry *)b)->mtime;
    return x < y   ? 1
           : x > y ? -1
                   : strcmp(((const page_entry *)a)->name, ((const page_entry *)b)->name);
}

void gw_run_pages_index(gateway *gw, struct evhttp_request *req)
{
    if (!gw->runs_dir[0]) {
        gw_reply_error(gw, req, 404, "reports_off", "run reports are off (runs_dir is empty)");
        return;
    }
    if (!gw_allow_read(gw, req))
        return;
    page_entry *pages = NULL;
    size_t n = 0, cap = 0;
    DIR *d = opendir(gw->runs_dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (!page_name_ok(e->d_name, len))
            continue;
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", gw->runs_dir, e->d_name);
        if (stat(path, &st) || !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            size_t c = cap ? cap * 2 : 32;
            page_entry *g = realloc(pages, c * sizeof *g);
            if (!g)
                break;
            pages = g;
            cap = c;
        }
        memcpy(pages[n].name, e->d_name, len + 1); /* len <= 200: page_name_ok */
        pages[n++].mtime = (long long)st.st_mtime;
    }
    if (d)
        closedir(d);
    if (n > 1)
        qsort(pages, n, sizeof *pages, newest_first);
    struct evbuffer *b = evhttp_request_get_output_buffer(req);
    evbuffer_add_printf(b, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                           "<title>arbitrage-engine: run reports</title><style>body{background:"
                           "#0d1117;color:#c9d1d9;font:14px/1.6 ui-monospace,monospace;margin:24px}"
                           "a{color:#58a6ff}</style></head><body><h1>Run reports</h1><ul>");
    for (size_t i = 0; i < n; i++)
        evbuffer_add_printf(b, "<li><a href=\"/runs/%s\">%s</a></li>", pages[i].name,
                            pages[i].name);
    evbuffer_add_printf(b,
                        "</ul>%s<p>Write one with <code>arbctl report RUN --html %s/NAME.html"
                        "</code>; <code>arbctl runs</code> lists the runs.</p></body></html>",
                        n ? "" : "<p>No reports yet.</p>", gw->runs_dir);
    free(pages);
    html_headers(req);
    gw_reply(gw, req, 200, "text/html; charset=utf-8");
}

void gw_run_page(gateway *gw, struct evhttp_request *req, const char *name, size_t n)
{
    if (!gw->runs_dir[0]) {
        gw_reply_error(gw, req, 404, "reports_off", "run reports are off (runs_dir is empty)");
        return;
    }
    if (!gw_allow_read(gw, req))
        return;
    if (!page_name_ok(name, n)) {
        gw_reply_error(gw, req, 404, "report_not_found", "no such report");
        return;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%.*s", gw->runs_dir, (int)n, name);
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) || !S_ISREG(st.st_mode) || st.st_size > RUN_PAGE_MAX) {
        if (f)
            fclose(f);
        gw_reply_error(gw, req, 404, "report_not_found", "no such report");
        return;
    }
    struct evbuffer *b = evhttp_request_get_output_buffer(req);
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        evbuffer_add(b, chunk, got);
    fclose(f);
    html_headers(req);
    gw_reply(gw, req, 200, "text/html; charset=utf-8");
}

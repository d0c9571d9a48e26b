/*
 * arbctl.h -- what arbctl's files share: the run commands (arbctl_runs.c),
 * the report page (arbctl_page.c) and the admin endpoint's lookups
 * (arbctl.c). Not a library: only arbctl links these.
 */
#ifndef ARBCTL_H
#define ARBCTL_H

#include <stdint.h>

/* `arbctl runs | report | compare`; argv[0] is the command. config is the
 * -c file or NULL; the admin address and token serve `report --split
 * INSTANCE`. Returns the exit status. */
int arbctl_runs_main(int argc, char **argv, const char *config, const char *admin_addr,
                     const char *admin_token);

/* When an instance was last loaded (a hot reload), from GET /plugins of the
 * admin endpoint, in ns since the epoch. 0, or 2 with a message printed. */
int arbctl_loaded_at(const char *admin_addr, const char *admin_token, const char *instance,
                     int64_t *ns);

/* The report page with the report's JSON inside: one self-contained HTML
 * file. 0, or 1 with a message printed. */
int arbctl_write_report_html(const char *path, const char *report_json);

#endif /* ARBCTL_H */

/*
 * admin_token.h -- the admin endpoint's token file: created by arb-host at
 * its first start when no [host] admin_token is configured, read by arbctl.
 *
 * The file holds one line: 64 hex digits (32 bytes from getrandom). It is
 * created with mode 0600 under a directory made 0700 if missing, written
 * whole before it appears (a temporary file linked into place), so two hosts
 * starting at once agree on one token and a reader never sees half of one.
 * A token file that group or others may read is refused: anyone who can
 * read it can run code in the host. Not here: checking a request (admin.c).
 */
#ifndef ARBH_ADMIN_TOKEN_H
#define ARBH_ADMIN_TOKEN_H

#include <stddef.h>

/* The default path, relative to the working directory. */
#define ARBH_ADMIN_TOKEN_FILE "var/admin.token"

/* Reads the token at path into token (NUL-terminated); creates the file
 * first if it does not exist. 0, or -1 with a sentence in err. */
int arbh_admin_token_load(const char *path, int create, char *token, size_t n, char *err,
                          size_t errn);

#endif

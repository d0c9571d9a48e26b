/*
 * fsutil.h -- small file-system helpers the host's files share.
 */
#ifndef ARBH_FSUTIL_H
#define ARBH_FSUTIL_H

#include <sys/types.h>

/* mkdir -p: creates dir and every missing parent, each new level with mode.
 * 0 when dir exists afterwards (as a directory or otherwise: the caller's
 * open says what is wrong), -1 with errno from the mkdir that failed. */
int arbh_mkdir_p(const char *dir, mode_t mode);

#endif

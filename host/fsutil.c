/*
 * fsutil.c -- small file-system helpers (see fsutil.h).
 */
#include "fsutil.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int arbh_mkdir_p(const char *dir, mode_t mode)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(path, mode) && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(path, mode) && errno != EEXIST ? -1 : 0;
}

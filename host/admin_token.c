/*
 * admin_token.c -- the admin token file (see admin_token.h).
 */
#include "admin_token.h"
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* The file's directory and its missing parents, each new level 0700. */
static int make_parent(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = 0;
    return arbh_mkdir_p(dir, 0700);
}

static int create(const char *path, char *err, size_t errn)
{
    unsigned char raw[32];
    size_t got = 0;
    while (got < sizeof raw) {
        ssize_t r = getrandom(raw + got, sizeof raw - got, 0);
        if (r < 0 && errno != EINTR) {
            snprintf(err, errn, "getrandom: %s", strerror(errno));
            return -1;
        }
        if (r > 0)
            got += (size_t)r;
    }
    char text[sizeof raw * 2 + 2];
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(text + 2 * i, 3, "%02x", raw[i]);
    text[sizeof raw * 2] = '\n';
    text[sizeof raw * 2 + 1] = 0;
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.XXXXXX", path);
    if (make_parent(path)) {
        snprintf(err, errn, "cannot create the directory of %s: %s", path, strerror(errno));
        return -1;
    }
    int fd = mkstemp(tmp); /* mode 0600 */
    if (fd < 0) {
        snprintf(err, errn, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    size_t len = strlen(text);
    int ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    close(fd);
    /* link fails if another host made the file first: its token stands. */
    if (ok && link(tmp, path) && errno != EEXIST)
        ok = 0;
    int e = errno;
    unlink(tmp);
    if (!ok) {
        snprintf(err, errn, "cannot write %s: %s", path, strerror(e));
        return -1;
    }
    return 0;
}

int arbh_admin_token_load(const char *path, int make, char *token, size_t n, char *err, size_t errn)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && make) {
        if (create(path, err, errn))
            return -1;
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) {
        snprintf(err, errn, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (st.st_mode & 077)) {
        close(fd);
        snprintf(err, errn, "%s must be a regular file only its owner can read (chmod 600)", path);
        return -1;
    }
    char buf[256];
    ssize_t r = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (r <= 0) {
        snprintf(err, errn, "%s is empty", path);
        return -1;
    }
    buf[r] = 0;
    buf[strcspn(buf, "\r\n")] = 0;
    if (!buf[0] || strlen(buf) >= n) {
        snprintf(err, errn, "%s does not hold a token", path);
        return -1;
    }
    memcpy(token, buf, strlen(buf) + 1);
    return 0;
}

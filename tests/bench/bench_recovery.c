/*
 * bench_recovery.c -- `make bench` entry for the split system's recovery:
 * runs scripts/bench-recovery.sh (kill -9 of the matcher host, then of the
 * gateway host, to the first accepted order, on the dev broker), which
 * prints the `bench:` lines. Not here: what bounds the figures (README).
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void)
{
    const char *build = getenv("ARB_BUILD");
    execlp("bash", "bash", "scripts/bench-recovery.sh", build ? build : "build", (char *)NULL);
    perror("bench_recovery: cannot run scripts/bench-recovery.sh");
    return 1;
}

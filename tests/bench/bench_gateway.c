/*
 * bench_gateway.c -- `make bench` entry for the gateway: runs
 * scripts/bench-gateway.sh (wrk against the running monolith and against an
 * nginx baseline), which prints the `bench:` lines. A separate binary only
 * because make bench runs binaries; the measuring is wrk's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void)
{
    const char *build = getenv("ARB_BUILD");
    execlp("bash", "bash", "scripts/bench-gateway.sh", build ? build : "build", (char *)NULL);
    perror("bench_gateway: cannot run scripts/bench-gateway.sh");
    return 1;
}

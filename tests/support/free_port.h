/*
 * free_port.h -- a loopback TCP port for a server under test.
 *
 * A port from bind(port 0) comes from the kernel's ephemeral range, the
 * range client connections take their local ports from; the tests open many
 * client connections, and one of them can take the port between the probe
 * and the server's bind (CI saw "Address already in use"). So the port is
 * chosen at random below that range (from 20000 up to the range's low end,
 * /proc/sys/net/ipv4/ip_local_port_range) and checked by binding it.
 */
#ifndef TEST_FREE_PORT_H
#define TEST_FREE_PORT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static inline int test_free_port(void)
{
    static unsigned seed;
    if (!seed)
        seed = (unsigned)getpid() ^ (unsigned)time(NULL);
    int low = 32768;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%d", &low) != 1)
            low = 32768;
        fclose(f);
    }
    if (low <= 21000)
        low = 32768;
    for (int tries = 0; tries < 10000; tries++) {
        int port = 20000 + (int)(rand_r(&seed) % (unsigned)(low - 20000));
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
        if (fd >= 0)
            close(fd);
        if (ok)
            return port;
    }
    return -1;
}

#endif

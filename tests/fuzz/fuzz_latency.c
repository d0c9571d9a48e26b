/*
 * fuzz_latency.c -- libFuzzer target for the [latency] distribution parser
 * (host/latency_dist.c). Property: any text either parses, and then every
 * draw is a delay between 0 and 60 s, or fails with a reason; never a crash
 * or a leak.
 */
#include <stdlib.h>
#include <string.h>

#include "latency.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    arbh_lat_dist d;
    char err[256] = "";
    if (arbh_lat_dist_parse(text, &d, err, sizeof err) == 0) {
        uint64_t rng = size;
        for (int i = 0; i < 64; i++) {
            int64_t v = arbh_lat_dist_draw(&d, &rng);
            if (v < 0 || v > INT64_C(60) * 1000000000)
                abort();
        }
        arbh_lat_dist_free(&d);
    } else if (!err[0]) {
        abort(); /* a refusal must say why */
    }
    free(text);
    return 0;
}

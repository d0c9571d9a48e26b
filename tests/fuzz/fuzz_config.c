/*
 * fuzz_config.c -- libFuzzer target for the host's INI layer (inih through
 * our line reader, ${ENV} expansion, overrides). Property: any input either
 * loads or fails with a message that names a line; never a crash or leak.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    arbh_config cfg;
    const char *ov[] = {"host.id=fuzz", "plugin x.k=v"};
    if (arbh_config_load_string(&cfg, "fuzz.ini", text, ov, 2) != 0) {
        if (!cfg.err[0])
            abort(); /* a failure must say why */
    } else {
        for (size_t i = 0; i < cfg.count; i++)
            (void)arbh_config_find(&cfg, cfg.entries[i].section, cfg.entries[i].key);
        bool whole;
        (void)arbh_config_first_unread(&cfg, &whole);
    }
    arbh_config_free(&cfg);
    free(text);
    return 0;
}

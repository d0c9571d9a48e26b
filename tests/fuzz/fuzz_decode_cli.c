/*
 * fuzz_decode_cli.c -- libFuzzer target for `arbctl decode`'s stream parser
 * (host/arbctl_kafka.c, compiled here without its Kafka half).
 * Properties: it never reads out of bounds or leaks; every line it prints is
 * valid JSON; and the result does not depend on how the bytes were split
 * into reads (the same records and the same complaints, whole or chunked).
 */
#define ARBCTL_KAFKA_DECODE_ONLY 1
#include "arbctl_kafka.c"

#include <jansson.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct outcome {
    uint64_t hash; /* of every JSON line and every complaint, in order */
    size_t lines;
} outcome;

static void mix(outcome *o, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        o->hash = (o->hash ^ b[i]) * 1099511628211ull;
}

static void on_json(void *user, const char *json, size_t len)
{
    outcome *o = user;
    json_error_t e;
    json_t *j = json_loadb(json, len, 0, &e);
    if (!j || !json_is_object(j))
        abort();
    json_decref(j);
    mix(o, json, len);
    o->lines++;
}

static void on_complaint(void *user, uint64_t at, uint64_t len, const char *why)
{
    outcome *o = user;
    mix(o, &at, sizeof at);
    mix(o, &len, sizeof len);
    if (why)
        mix(o, why, strlen(why));
}

static void decode(const uint8_t *data, size_t size, size_t chunk, outcome *o)
{
    arbctl_decoder d;
    memset(o, 0, sizeof *o);
    o->hash = 1469598103934665603ull;
    decoder_init(&d, NULL, on_json, on_complaint, o);
    for (size_t off = 0; off < size; off += chunk)
        if (decoder_feed(&d, data + off, size - off < chunk ? size - off : chunk))
            abort();
    decoder_finish(&d);
    decoder_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    /* The first byte picks the read size of the chunked run. */
    size_t chunk = (size_t)data[0] % 64 + 1;
    outcome whole, pieces;
    decode(data + 1, size - 1, size, &whole);
    decode(data + 1, size - 1, chunk, &pieces);
    if (whole.hash != pieces.hash || whole.lines != pieces.lines)
        abort();
    return 0;
}

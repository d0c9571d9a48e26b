/*
 * handover.c -- hot reload state (see handover.h).
 */
#include "handover.h"

#include <stdlib.h>
#include <string.h>

#include "arb/plugin.h"
#include "arb/wire.h"

#define MAGIC "ARBREC\0"
#define HEADER 16u
#define TOPIC_HEADER 20u

typedef struct saved_text {
    int topic;
    uint32_t rows;
    uint64_t bytes;
    uint8_t *out; /* NULL: only measure */
} saved_text;

static void save_batch(void *user, const rec_batch *bt)
{
    saved_text *s = user;
    const rec_buf *buf = &bt->rows[s->topic];
    if (s->out && buf->len) {
        memcpy(s->out, buf->data, buf->len);
        s->out += buf->len;
    }
    s->rows += bt->count[s->topic];
    s->bytes += buf->len;
}

int rec_handover_save(const rec_batcher *b, void **bytes, size_t *len)
{
    saved_text measure[REC_TOPICS];
    size_t n = HEADER;
    for (int t = 0; t < REC_TOPICS; t++) {
        measure[t] = (saved_text){t, 0, 0, NULL};
        rec_batcher_each(b, save_batch, &measure[t]);
        n += TOPIC_HEADER + measure[t].bytes;
    }
    uint8_t *p = calloc(1, n), *o = p;
    if (!p)
        return ARB_ENOMEM;
    memcpy(o, MAGIC, 7);
    o[7] = REC_HANDOVER_VERSION;
    o[8] = (uint8_t)(b->base_known != 0);
    o += HEADER;
    for (int t = 0; t < REC_TOPICS; t++) {
        arb_put_u64(o, b->base[t] + b->committed[t]);
        arb_put_u32(o + 8, measure[t].rows);
        arb_put_u64(o + 12, measure[t].bytes);
        saved_text copy = {t, 0, 0, o + TOPIC_HEADER};
        rec_batcher_each(b, save_batch, &copy);
        o = copy.out;
    }
    *bytes = p;
    *len = n;
    return ARB_OK;
}

int rec_handover_restore(rec_batcher *b, const void *bytes, size_t len, int64_t now_ns)
{
    const uint8_t *p = bytes, *end = p + len;
    if (len < HEADER || memcmp(p, MAGIC, 7) || p[7] != REC_HANDOVER_VERSION || p[8] > 1)
        return ARB_EREFUSED;
    for (int i = 9; i < 16; i++)
        if (p[i])
            return ARB_EREFUSED;
    int position_known = p[8];
    p += HEADER;
    const uint8_t *text[REC_TOPICS];
    uint64_t position[REC_TOPICS], bytes_of[REC_TOPICS];
    for (int t = 0; t < REC_TOPICS; t++) {
        if ((size_t)(end - p) < TOPIC_HEADER)
            return ARB_EREFUSED;
        position[t] = arb_get_u64(p);
        uint32_t rows = arb_get_u32(p + 8);
        bytes_of[t] = arb_get_u64(p + 12);
        p += TOPIC_HEADER;
        if ((uint64_t)(end - p) < bytes_of[t] || (bytes_of[t] && p[bytes_of[t] - 1] != '\n'))
            return ARB_EREFUSED;
        /* One row per line (COPY text escapes newlines inside values), and
         * no NUL, which no row can hold. */
        uint64_t lines = 0;
        for (uint64_t i = 0; i < bytes_of[t]; i++) {
            if (!p[i])
                return ARB_EREFUSED;
            lines += p[i] == '\n';
        }
        if (lines != rows)
            return ARB_EREFUSED;
        text[t] = p;
        p += bytes_of[t];
    }
    if (p != end)
        return ARB_EREFUSED;
    if (position_known)
        rec_batcher_set_base(b, position);
    for (int t = 0; t < REC_TOPICS; t++)
        if (rec_batcher_adopt(b, (enum rec_topic)t, (const char *)text[t], (size_t)bytes_of[t],
                              now_ns))
            return ARB_ENOMEM;
    return ARB_OK;
}

/*
 * bandit.c -- epsilon-greedy bandit (see bandit.h).
 */
#include "bandit.h"

#include <string.h>

void bandit_init(bandit *b, uint32_t n_arms, const int64_t *values)
{
    memset(b, 0, sizeof *b);
    b->n_arms = n_arms > BANDIT_MAX_ARMS ? BANDIT_MAX_ARMS : n_arms;
    for (uint32_t i = 0; i < b->n_arms; i++)
        b->value[i] = values[i];
}

/* mean(i) > mean(j), exactly. */
static int better(const bandit *b, uint32_t i, uint32_t j)
{
    return (__int128)b->reward[i] * (__int128)b->pulls[j] >
           (__int128)b->reward[j] * (__int128)b->pulls[i];
}

uint32_t bandit_best(const bandit *b)
{
    uint32_t best = 0;
    int found = 0;
    for (uint32_t i = 0; i < b->n_arms; i++) {
        if (!b->pulls[i])
            continue;
        if (!found || better(b, i, best))
            best = i;
        found = 1;
    }
    return best;
}

uint32_t bandit_choose(const bandit *b, arb_rng *rng, uint32_t epsilon_ppm)
{
    for (uint32_t i = 0; i < b->n_arms; i++)
        if (!b->pulls[i])
            return i;
    if (arb_rng_chance_ppm(rng, epsilon_ppm))
        return (uint32_t)arb_rng_below(rng, b->n_arms);
    return bandit_best(b);
}

void bandit_update(bandit *b, uint32_t arm, int64_t reward)
{
    if (arm >= b->n_arms)
        return;
    b->pulls[arm]++;
    if (__builtin_add_overflow(b->reward[arm], reward, &b->reward[arm]))
        b->reward[arm] = reward > 0 ? INT64_MAX : INT64_MIN;
    b->episodes++;
}

void bandit_encode(const bandit *b, uint8_t *out)
{
    arb_put_u32(out, 0x444e4142u); /* "BAND" */
    arb_put_u32(out + 4, b->n_arms);
    arb_put_u64(out + 8, b->episodes);
    arb_put_u64(out + 16, 0);
    for (uint32_t i = 0; i < b->n_arms; i++) {
        uint8_t *p = out + 24 + 24 * i;
        arb_put_i64(p, b->value[i]);
        arb_put_u64(p + 8, b->pulls[i]);
        arb_put_i64(p + 16, b->reward[i]);
    }
}

int bandit_decode(bandit *b, const uint8_t *in, size_t len)
{
    if (len != BANDIT_STATE_LEN(b->n_arms) || arb_get_u32(in) != 0x444e4142u ||
        arb_get_u32(in + 4) != b->n_arms)
        return ARB_EREFUSED;
    for (uint32_t i = 0; i < b->n_arms; i++)
        if (arb_get_i64(in + 24 + 24 * i) != b->value[i])
            return ARB_EREFUSED;
    b->episodes = arb_get_u64(in + 8);
    for (uint32_t i = 0; i < b->n_arms; i++) {
        b->pulls[i] = arb_get_u64(in + 24 + 24 * i + 8);
        b->reward[i] = arb_get_i64(in + 24 + 24 * i + 16);
    }
    return ARB_OK;
}

uint64_t bandit_fingerprint(const bandit *b)
{
    uint8_t buf[BANDIT_STATE_LEN(BANDIT_MAX_ARMS)];
    bandit_encode(b, buf);
    return arb_hash_bytes(1469598103934665603ull, buf, BANDIT_STATE_LEN(b->n_arms));
}

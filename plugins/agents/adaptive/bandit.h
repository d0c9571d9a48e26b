/*
 * bandit.h -- an epsilon-greedy multi-armed bandit on exact integer rewards,
 * the learning part of the adaptive agent. Each arm keeps its pull count and
 * reward sum; the greedy choice compares means by cross-multiplication, so
 * nothing is rounded and a run is reproducible. Untried arms go first.
 * Serialises to bytes so what was learned survives a hot reload. Pure.
 */
#ifndef BANDIT_H
#define BANDIT_H

#include <arb/agent.h>
#include <stddef.h>
#include <stdint.h>

#define BANDIT_MAX_ARMS 16
#define BANDIT_STATE_LEN(n) (24u + (size_t)(n)*24u)

typedef struct bandit {
    uint32_t n_arms;
    int64_t value[BANDIT_MAX_ARMS]; /* what each arm means to the caller */
    uint64_t pulls[BANDIT_MAX_ARMS];
    int64_t reward[BANDIT_MAX_ARMS]; /* sum, saturating */
    uint64_t episodes;
} bandit;

void bandit_init(bandit *b, uint32_t n_arms, const int64_t *values);
/* Untried arms first (lowest index); then a uniformly random arm with
 * probability epsilon_ppm / 1e6, else the best mean (ties: lowest index). */
uint32_t bandit_choose(const bandit *b, arb_rng *rng, uint32_t epsilon_ppm);
void bandit_update(bandit *b, uint32_t arm, int64_t reward);
/* The arm with the best mean so far (0 if none was tried). */
uint32_t bandit_best(const bandit *b);
/* A hash of everything learned: equal iff the learned state is equal. */
uint64_t bandit_fingerprint(const bandit *b);

/* Writes BANDIT_STATE_LEN(n_arms) bytes. */
void bandit_encode(const bandit *b, uint8_t *out);
/* Adopts encoded state if it has the same arms (count and values);
 * ARB_EREFUSED otherwise, and b is unchanged. */
int bandit_decode(bandit *b, const uint8_t *in, size_t len);

#endif

/*
 * test_sim_mm_newstate.c -- a build of the market maker whose state format
 * moved on (state version 2): it refuses the running build's state, so the
 * hot-reload test can check that a refused reload leaves the old build
 * trading.
 */
#define MM_STATE_VERSION 2u
#define MM_VARIANT 2
#include "../../plugins/agents/market_maker/market_maker.c"

/*
 * test_sim_mm_wide.c -- a second build of the market maker for the
 * hot-reload test: the same source with a compile-time flag that changes
 * what it does (quotes 3 ticks wider) and tags its quotes as variant 1.
 */
#define MM_EXTRA_TICKS 3
#define MM_VARIANT 1
#include "../../plugins/agents/market_maker/market_maker.c"

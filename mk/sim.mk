# The simulation room: clock, market generator, trading agents, the trade
# digest, the agent SDK's tests, the sim config's integration tests and the
# sim benchmark. See plugins/clock, plugins/generator, plugins/agents and
# sdk/arb/agent.h.

TESTS += test_agent
test_agent_SRCS := tests/unit/test_agent.c
test_agent_LIBS := $(CMOCKA_LIBS)

PLUGINS += clock generator digest
clock_SRCS := plugins/clock/clock.c
generator_SRCS := plugins/generator/market_model.c plugins/generator/generator.c
generator_LIBS := -lm
digest_SRCS := plugins/digest/digest.c
digest_LIBS := -lm

# The figures of a run (sdk/arb/run_report.h): the digest's end-of-run table
# and arbctl report share them.
TESTS += test_run_report
test_run_report_SRCS := tests/unit/test_run_report.c
test_run_report_LIBS := $(CMOCKA_LIBS) -lm

TESTS += test_clock
test_clock_SRCS := tests/unit/test_clock.c plugins/clock/clock.c
test_clock_LIBS := $(CMOCKA_LIBS)

TESTS += test_generator
test_generator_SRCS := tests/unit/test_generator.c plugins/generator/market_model.c \
	plugins/generator/generator.c
test_generator_LIBS := $(CMOCKA_LIBS) -lm

# Agents: one plugin per strategy; the decision logic is a pure file each.
NOISE_CORE := plugins/agents/noise/noise_strategy.c
MM_CORE := plugins/agents/market_maker/mm_quote.c
XARB_CORE := plugins/agents/arbitrageur/xarb_signal.c
ADAPTIVE_CORE := plugins/agents/adaptive/bandit.c

PLUGINS += agent_noise agent_market_maker agent_arbitrageur agent_adaptive
agent_noise_SRCS := $(NOISE_CORE) plugins/agents/noise/noise.c
agent_market_maker_SRCS := $(MM_CORE) plugins/agents/market_maker/market_maker.c
agent_arbitrageur_SRCS := $(XARB_CORE) plugins/agents/arbitrageur/arbitrageur.c
agent_adaptive_SRCS := $(ADAPTIVE_CORE) plugins/agents/adaptive/adaptive.c

TESTS += test_agent_strategies
test_agent_strategies_SRCS := tests/unit/test_agent_strategies.c $(NOISE_CORE) $(MM_CORE) \
	$(XARB_CORE) $(ADAPTIVE_CORE)
test_agent_strategies_LIBS := $(CMOCKA_LIBS)

# A small matcher as a test plugin: the integration tests run against the
# production matcher when it is built and against this one otherwise.
TEST_PLUGINS += sim_stub_matcher
sim_stub_matcher_SRCS := tests/integration/test_sim_stub_matcher.c

SIM_TEST_PLUGIN_SOS = $(addprefix $(B)/plugins/,clock.so generator.so digest.so agent_noise.so \
	agent_market_maker.so agent_arbitrageur.so agent_adaptive.so) \
	$(B)/tests/plugins/sim_stub_matcher.so

TESTS += test_sim
test_sim_SRCS := tests/integration/test_sim.c $(TESTHOST_SRCS)
test_sim_LIBS := $(TESTHOST_LIBS)
test_sim_DEPS = $(SIM_TEST_PLUGIN_SOS)

# Builds of the market maker for the hot-reload test (see the wrappers).
TEST_PLUGINS += sim_mm_wide sim_mm_newstate
sim_mm_wide_SRCS := $(MM_CORE) tests/integration/test_sim_mm_wide.c
sim_mm_newstate_SRCS := $(MM_CORE) tests/integration/test_sim_mm_newstate.c

TESTS += test_sim_latency
test_sim_latency_SRCS := tests/integration/test_sim_latency.c $(TESTHOST_SRCS)
test_sim_latency_LIBS := $(TESTHOST_LIBS)

TESTS += test_sim_reload
test_sim_reload_SRCS := tests/integration/test_sim_reload.c $(TESTHOST_SRCS)
test_sim_reload_LIBS := $(TESTHOST_LIBS)
test_sim_reload_DEPS = $(SIM_TEST_PLUGIN_SOS) $(B)/tests/plugins/sim_mm_wide.so \
	$(B)/tests/plugins/sim_mm_newstate.so

# The README's example agent, built out of tree with pkg-config by the test.
TESTS += test_sim_example
test_sim_example_SRCS := tests/integration/test_sim_example.c $(TESTHOST_SRCS)
test_sim_example_LIBS := $(TESTHOST_LIBS)
test_sim_example_DEPS = $(SIM_TEST_PLUGIN_SOS)

BENCHES += bench_sim
bench_sim_SRCS := tests/bench/bench_sim.c $(TESTHOST_SRCS)
bench_sim_LIBS := $(TESTHOST_LIBS)
bench_sim_DEPS = $(SIM_TEST_PLUGIN_SOS)

FUZZERS += fuzz_fee_tiers
fuzz_fee_tiers_SRCS := tests/fuzz/fuzz_fee_tiers.c

FUZZERS += fuzz_agent_restore
fuzz_agent_restore_SRCS := tests/fuzz/fuzz_agent_restore.c plugins/generator/market_model.c \
	$(ADAPTIVE_CORE)

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

TESTS += test_clock
test_clock_SRCS := tests/unit/test_clock.c plugins/clock/clock.c
test_clock_LIBS := $(CMOCKA_LIBS)

TESTS += test_generator
test_generator_SRCS := tests/unit/test_generator.c plugins/generator/market_model.c \
	plugins/generator/generator.c
test_generator_LIBS := $(CMOCKA_LIBS) -lm

# The simulation room: clock, market generator, trading agents, the trade
# digest, the agent SDK's tests, the sim config's integration tests and the
# sim benchmark. See plugins/clock, plugins/generator, plugins/agents and
# sdk/arb/agent.h.

TESTS += test_agent
test_agent_SRCS := tests/unit/test_agent.c
test_agent_LIBS := $(CMOCKA_LIBS)

# The Kafka room: the bus's Kafka transport (host/kafka.c), arbctl's tail and
# decode (host/arbctl_kafka.c), and arb-devbroker (tools/devbroker/), the
# in-memory Kafka cluster for development and tests. The systemd unit for the
# split system is deploy/arb-host@.service.

KAFKA_LIBS := $(RDKAFKA_LIBS) $(DEP_LIBS) -lpthread

TOOLS += arb-devbroker
arb-devbroker_SRCS := tools/devbroker/devbroker.c
arb-devbroker_LIBS := $(RDKAFKA_LIBS) $(DEP_LIBS) -ldl

# The transport against an in-process mock cluster.
TESTS += test_kafka
test_kafka_SRCS := tests/unit/test_kafka.c host/kafka.c host/config.c
test_kafka_LIBS := $(KAFKA_LIBS) $(CMOCKA_LIBS)

# Across processes: arb-devbroker and its fault commands.
TESTS += test_kafka_devbroker
test_kafka_devbroker_SRCS := tests/integration/test_kafka_devbroker.c host/kafka.c host/config.c
test_kafka_devbroker_LIBS := $(KAFKA_LIBS) $(CMOCKA_LIBS)
test_kafka_devbroker_DEPS := $(B)/arb-devbroker

# kcat | arbctl decode, and arbctl tail. The test binary doubles as arbctl
# (`test_kcat --arbctl tail ...` runs arbctl_kafka_main) until arbctl.c
# dispatches tail and decode.
TESTS += test_kcat
test_kcat_SRCS := tests/integration/test_kcat.c host/arbctl_kafka.c host/config.c
test_kcat_LIBS := $(KAFKA_LIBS) $(CMOCKA_LIBS)
test_kcat_DEPS := $(B)/arb-devbroker

FUZZERS += fuzz_decode_cli
fuzz_decode_cli_SRCS := tests/fuzz/fuzz_decode_cli.c

# The split system end to end beside the monolith (make bench): arb-devbroker,
# matcher and recorder hosts as processes, PostgreSQL via scripts/with-pg.sh.
BENCHES += bench_split
bench_split_SRCS = tests/bench/bench_split.c tests/support/splitrig.c $(TESTHOST_SRCS)
bench_split_LIBS = $(TESTHOST_LIBS) $(PQ_LIBS) -lpthread
bench_split_DEPS := $(B)/arb-devbroker $(B)/arb-host

# The split system through broker faults and kill -9 of each service, checked
# in PostgreSQL (scripts/with-pg.sh).
TESTS += test_split_faults
test_split_faults_SRCS = tests/integration/test_split_faults.c tests/support/splitrig.c $(TESTHOST_SRCS)
test_split_faults_LIBS = $(TESTHOST_LIBS) $(PQ_LIBS) $(CMOCKA_LIBS)
test_split_faults_DEPS := $(B)/arb-devbroker $(B)/arb-host

TESTS += test_split_runs
test_split_runs_SRCS = tests/integration/test_split_runs.c tests/support/splitrig.c $(TESTHOST_SRCS)
test_split_runs_LIBS = $(TESTHOST_LIBS) $(PQ_LIBS) $(CMOCKA_LIBS)
test_split_runs_DEPS := $(B)/arb-devbroker $(B)/arb-host

# Agents trading again soon after their host (the market) is killed -9.
TESTS += test_split_agents
test_split_agents_SRCS = tests/integration/test_split_agents.c tests/support/splitrig.c $(TESTHOST_SRCS)
test_split_agents_LIBS = $(TESTHOST_LIBS) $(PQ_LIBS) $(CMOCKA_LIBS)
test_split_agents_DEPS := $(B)/arb-devbroker $(B)/arb-host

# The dev broker killed and started again empty under a trading system.
TESTS += test_split_broker_restart
test_split_broker_restart_SRCS = tests/integration/test_split_broker_restart.c tests/support/splitrig.c $(TESTHOST_SRCS)
test_split_broker_restart_LIBS = $(TESTHOST_LIBS) $(PQ_LIBS) $(CMOCKA_LIBS)
test_split_broker_restart_DEPS := $(B)/arb-devbroker $(B)/arb-host

# Kill -9 of the matcher or gateway host to the first accepted order.
BENCHES += bench_recovery
bench_recovery_SRCS := tests/bench/bench_recovery.c
bench_recovery_DEPS := $(B)/arb-devbroker $(B)/arb-host

# The split gateway host killed (-9) and restarted: back within 3 s, nothing lost.
TESTS += test_split_gateway_restart
test_split_gateway_restart_SRCS = tests/integration/test_split_gateway_restart.c tests/support/splitrig.c $(TESTHOST_SRCS)
test_split_gateway_restart_LIBS = $(TESTHOST_LIBS) $(PQ_LIBS) $(CMOCKA_LIBS)
test_split_gateway_restart_DEPS := $(B)/arb-devbroker $(B)/arb-host

# The split matcher host killed (-9) and restarted: back within 5 s, books exact.
TESTS += test_split_matcher_restart
test_split_matcher_restart_SRCS = tests/integration/test_split_matcher_restart.c tests/support/splitrig.c $(TESTHOST_SRCS)
test_split_matcher_restart_LIBS = $(TESTHOST_LIBS) $(PQ_LIBS) $(CMOCKA_LIBS) -lm
test_split_matcher_restart_DEPS := $(B)/arb-devbroker $(B)/arb-host

# make run-split stopped by a Ctrl-C: "stopped", status 0 (scripts/run-split.sh).
TESTS += test_split_stop
test_split_stop_SRCS := tests/e2e/split_stop_e2e.c
test_split_stop_LIBS := $(CMOCKA_LIBS)
test_split_stop_DEPS := $(B)/arb-devbroker $(B)/arb-host $(B)/arbctl $(ALL_PLUGIN_SOS)

TESTS += test_split_health
test_split_health_SRCS = tests/integration/test_split_health.c tests/support/splitrig.c $(TESTHOST_SRCS)
test_split_health_LIBS = $(TESTHOST_LIBS) $(PQ_LIBS) $(CMOCKA_LIBS)
test_split_health_DEPS := $(B)/arb-devbroker $(B)/arb-host

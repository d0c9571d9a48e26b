# The recorder: trades and order events into PostgreSQL (plugins/recorder/).
# Its DB tests and bench run under a throwaway server (scripts/with-pg.sh).

RECORDER_CORE := plugins/recorder/copy_rows.c plugins/recorder/schema.c \
	plugins/recorder/batcher.c plugins/recorder/db_state.c plugins/recorder/handover.c
RECORDER_DB := $(RECORDER_CORE) plugins/recorder/pg_writer.c

PLUGINS += recorder
recorder_SRCS := $(RECORDER_DB) plugins/recorder/run_members.c plugins/recorder/recorder_plugin.c
recorder_LIBS := $(DEP_LIBS) $(PQ_LIBS)

TESTS += test_recorder_rows
test_recorder_rows_SRCS := tests/unit/test_recorder_rows.c $(RECORDER_CORE)
test_recorder_rows_LIBS := $(CMOCKA_LIBS)

TESTS += test_recorder_batcher
test_recorder_batcher_SRCS := tests/unit/test_recorder_batcher.c $(RECORDER_CORE)
test_recorder_batcher_LIBS := $(CMOCKA_LIBS)

TESTS += test_recorder_pg
test_recorder_pg_SRCS := tests/integration/test_recorder_pg.c $(RECORDER_DB) \
	plugins/recorder/run_members.c $(TESTHOST_SRCS)
test_recorder_pg_LIBS := $(TESTHOST_LIBS) $(PQ_LIBS)
test_recorder_pg_DEPS := $(B)/plugins/recorder.so $(B)/plugins/generator.so

BENCHES += bench_recorder
bench_recorder_SRCS := tests/bench/bench_recorder.c $(RECORDER_CORE) plugins/recorder/pg_writer.c \
	tests/support/splitrig.c $(TESTHOST_SRCS)
bench_recorder_LIBS := $(TESTHOST_LIBS) $(PQ_LIBS)
bench_recorder_DEPS := $(B)/plugins/recorder.so

FUZZERS += fuzz_recorder
fuzz_recorder_SRCS := tests/fuzz/fuzz_recorder.c $(RECORDER_CORE)

# The recorder behind the whole simulated market (needs the sim's plugins).
TESTS += test_recorder_sim
test_recorder_sim_SRCS := tests/integration/test_recorder_sim.c $(RECORDER_CORE) \
	plugins/recorder/pg_writer.c $(TESTHOST_SRCS)
test_recorder_sim_LIBS := $(TESTHOST_LIBS) $(PQ_LIBS)
test_recorder_sim_DEPS := $(B)/plugins/recorder.so

# Resuming from stored Kafka positions after a crash (librdkafka's mock
# cluster and a throwaway PostgreSQL).
TESTS += test_recorder_kafka
test_recorder_kafka_SRCS := tests/integration/test_recorder_kafka.c $(RECORDER_DB) $(TESTHOST_SRCS)
test_recorder_kafka_LIBS := $(TESTHOST_LIBS) $(PQ_LIBS)
test_recorder_kafka_DEPS := $(B)/plugins/recorder.so $(B)/arb-host

# Results per run: arbctl runs / report / compare and the A/B workflow, on a
# recorded simulation (re-runs itself under scripts/with-pg.sh).
TESTS += test_runs_report
test_runs_report_SRCS := tests/integration/test_runs_report.c
test_runs_report_LIBS := $(CMOCKA_LIBS) $(PQ_LIBS) $(DEP_LIBS)
test_runs_report_DEPS := $(B)/arbctl $(B)/arb-host $(B)/plugins/recorder.so $(B)/plugins/digest.so

# The host: arb-host, arbctl, and the host objects tests link (testhost).
HOST_LIB_SRCS := host/config.c host/bus.c host/loop.c host/instance.c host/host.c host/admin.c \
	host/admin_token.c host/kafka.c host/journal.c host/fsutil.c host/run.c host/image.c host/crash.c \
	host/latency.c host/latency_dist.c
# libcrypto: the SHA-256 that identifies a plugin image without a build id.
CRYPTO_LIBS := $(shell $(PKG_CONFIG) --libs libcrypto 2>/dev/null)
HOST_LIBS := $(DEP_LIBS) $(RDKAFKA_LIBS) $(CRYPTO_LIBS) -ldl -lpthread -lm

TOOLS += arb-host
arb-host_SRCS := $(HOST_LIB_SRCS) host/main.c
arb-host_LIBS := $(HOST_LIBS)

# Tests embed the real host through tests/support/testhost.c.
TESTHOST_SRCS := $(HOST_LIB_SRCS) tests/support/testhost.c
TESTHOST_LIBS := $(HOST_LIBS) $(CMOCKA_LIBS)

# Test plugins for the host's own tests.
TEST_PLUGINS += tp_seq tp_seq_v2 tp_seq_refuse tp_noentry tp_badabi
tp_seq_SRCS := tests/plugins/tp_seq.c
tp_seq_LIBS := $(DEP_LIBS)
tp_seq_v2_SRCS := tests/plugins/tp_seq_v2.c
tp_seq_v2_LIBS := $(DEP_LIBS)
tp_seq_refuse_SRCS := tests/plugins/tp_seq_refuse.c
tp_seq_refuse_LIBS := $(DEP_LIBS)
TEST_PLUGINS += tp_crash tp_crash_v2 tp_crash_ctor
# A participant reading by key, for test_bus_keys.
TEST_PLUGINS += tp_reader
tp_reader_SRCS := tests/plugins/tp_reader.c
tp_crash_SRCS := tests/plugins/tp_crash.c
tp_crash_v2_SRCS := tests/plugins/tp_crash_v2.c
tp_crash_ctor_SRCS := tests/plugins/tp_crash_ctor.c
tp_noentry_SRCS := tests/plugins/tp_noentry.c
tp_badabi_SRCS := tests/plugins/tp_badabi.c

TESTS += test_latency_dist
test_latency_dist_SRCS := tests/unit/test_latency_dist.c host/latency_dist.c
test_latency_dist_LIBS := $(CMOCKA_LIBS) -lm

TESTS += test_config
test_config_SRCS := tests/unit/test_config.c host/config.c
test_config_LIBS := $(DEP_LIBS) $(CMOCKA_LIBS)

TESTS += test_host
test_host_SRCS := tests/integration/test_host.c $(TESTHOST_SRCS)
test_host_LIBS := $(TESTHOST_LIBS)

# Subscriptions by key (arb_subscribe_keys), with link latency off and on.
TESTS += test_bus_keys
test_bus_keys_SRCS := tests/integration/test_bus_keys.c $(TESTHOST_SRCS)
test_bus_keys_LIBS := $(TESTHOST_LIBS)

# Real arb-host processes and real signals: SIGHUP refusals, reloads of bad
# files, a plugin crashing in each callback, two hosts on one address.
TESTS += test_host_faults
test_host_faults_SRCS := tests/integration/test_host_faults.c
test_host_faults_LIBS := $(CMOCKA_LIBS)

TOOLS += arbctl
arbctl_SRCS := host/arbctl.c host/arbctl_kafka.c host/arbctl_runs.c host/arbctl_page.c \
	host/config.c host/admin_token.c host/fsutil.c
arbctl_LIBS := $(DEP_LIBS) $(RDKAFKA_LIBS) $(PQ_LIBS) -lm
# The report page is compiled into arbctl (.incbin).
$(B)/obj/host/arbctl_page.o: host/report.html

BENCHES += bench_bus
bench_bus_SRCS := tests/bench/bench_bus.c $(TESTHOST_SRCS)
bench_bus_LIBS := $(TESTHOST_LIBS)

# The SDK's pure parts: wire records and exact decimals.
TESTS += test_wire
test_wire_SRCS := tests/unit/test_wire.c
test_wire_LIBS := $(CMOCKA_LIBS)
FUZZERS += fuzz_wire fuzz_config fuzz_journal fuzz_admin fuzz_latency
fuzz_latency_SRCS := tests/fuzz/fuzz_latency.c host/latency_dist.c
fuzz_wire_SRCS := tests/fuzz/fuzz_wire.c
fuzz_config_SRCS := tests/fuzz/fuzz_config.c host/config.c
fuzz_journal_SRCS := tests/fuzz/fuzz_journal.c host/journal.c host/fsutil.c host/config.c
# Raw HTTP into the admin endpoint of a real host.
fuzz_admin_SRCS = tests/fuzz/fuzz_admin.c $(TESTHOST_SRCS)

# The programs as a person runs them (needs arb-host, arbctl, make install).
TESTS += test_cli
test_cli_SRCS := tests/integration/test_cli.c
test_cli_LIBS := $(CMOCKA_LIBS)

# The Kafka transport through the real host (two hosts, one mock cluster).
TESTS += test_kafka_host
test_kafka_host_SRCS := tests/integration/test_kafka_host.c $(TESTHOST_SRCS)
test_kafka_host_LIBS := $(TESTHOST_LIBS)

TESTS += test_journal
test_journal_SRCS := tests/unit/test_journal.c host/journal.c host/fsutil.c host/config.c
test_journal_LIBS := $(DEP_LIBS) $(CMOCKA_LIBS) -lpthread

TESTS += test_monolith_faults
test_monolith_faults_SRCS = tests/integration/test_monolith_faults.c tests/support/splitrig.c $(TESTHOST_SRCS)
test_monolith_faults_LIBS = $(TESTHOST_LIBS) $(PQ_LIBS) $(CMOCKA_LIBS)
test_monolith_faults_DEPS := $(B)/arb-host

BENCHES += bench_journal
bench_journal_SRCS := tests/bench/bench_journal.c host/journal.c host/fsutil.c host/config.c
bench_journal_LIBS := $(DEP_LIBS) -lpthread

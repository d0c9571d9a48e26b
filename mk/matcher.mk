# The matcher room: the order book (pure, plugins/matcher/book*.c), the
# matcher plugin around it, the reference book the differential test holds it
# to (tests/ref), scenario/differential/state tests, the fuzzer and the bench.

BOOK_SRCS := plugins/matcher/book.c plugins/matcher/book_state.c
REF_BOOK_SRCS := tests/ref/ref_book.c

PLUGINS += matcher
matcher_SRCS := $(BOOK_SRCS) plugins/matcher/matcher_plugin.c
matcher_LIBS := $(DEP_LIBS)

TESTS += test_book_diff
test_book_diff_SRCS := tests/unit/test_book_diff.c tests/ref/book_check.c $(REF_BOOK_SRCS) $(BOOK_SRCS)
test_book_diff_LIBS := $(CMOCKA_LIBS)

TESTS += test_book
test_book_SRCS := tests/unit/test_book.c tests/ref/book_check.c $(REF_BOOK_SRCS) $(BOOK_SRCS)
test_book_LIBS := $(CMOCKA_LIBS)

BENCHES += bench_book
bench_book_SRCS := tests/bench/bench_book.c $(REF_BOOK_SRCS) $(BOOK_SRCS)
bench_book_LIBS := -ldl

# bench_book's A/B: the book of BOOK_AB_BASE (the commit issue 20's work
# started from) and the working tree's, each as a shared object beside the
# bench, timed in alternating rounds in one run. A clone without the base
# commit (shallow) compares the tree with itself, and says so.
BOOK_AB_BASE := 4b84c5c
BOOK_AB_DIR := $(B)/book-ab
BOOK_AB_FILES := book.c book_state.c book.h book_internal.h
BOOK_SO_FLAGS = $(filter-out -MMD -MP,$(CFLAGS)) -fPIC -shared -Wl,-Bsymbolic
BENCH_EXTRAS += $(B)/bench/book_base.so $(B)/bench/book_new.so

$(BOOK_AB_DIR)/%:
	@mkdir -p $(@D)
	@git show $(BOOK_AB_BASE):plugins/matcher/$* > $@ 2>/dev/null || \
		{ echo "book A/B: $(BOOK_AB_BASE) is not in this clone: base = working tree" >&2; \
		  cp plugins/matcher/$* $@; }

$(B)/bench/book_base.so: $(addprefix $(BOOK_AB_DIR)/,$(BOOK_AB_FILES))
	@mkdir -p $(@D)
	$(CC) $(BOOK_SO_FLAGS) -o $@ $(BOOK_AB_DIR)/book.c $(BOOK_AB_DIR)/book_state.c $(LDFLAGS)

$(B)/bench/book_new.so: $(BOOK_SRCS) plugins/matcher/book.h plugins/matcher/book_internal.h
	@mkdir -p $(@D)
	$(CC) $(BOOK_SO_FLAGS) -o $@ $(BOOK_SRCS) $(LDFLAGS)

# matcher.so in the real host. Recursive (=): TESTHOST_* come from mk/host.mk.
TESTS += test_matcher_plugin
test_matcher_plugin_SRCS = tests/unit/test_matcher_plugin.c $(TESTHOST_SRCS)
test_matcher_plugin_LIBS = $(TESTHOST_LIBS)
test_matcher_plugin_DEPS := $(B)/plugins/matcher.so

TESTS += test_book_state
test_book_state_SRCS := tests/unit/test_book_state.c tests/ref/book_check.c $(REF_BOOK_SRCS) $(BOOK_SRCS)
test_book_state_LIBS := $(CMOCKA_LIBS)

FUZZERS += fuzz_book
fuzz_book_SRCS := tests/fuzz/fuzz_book.c tests/ref/book_check.c $(REF_BOOK_SRCS) $(BOOK_SRCS)

# The plugin's saved state (hot reload), on the agent tests' fake host.
FUZZERS += fuzz_matcher_state
fuzz_matcher_state_SRCS := tests/fuzz/fuzz_matcher_state.c $(matcher_SRCS)

# Matcher scale-out end to end: arb-host processes with matcher.so against
# arb-devbroker, killed and restarted while input flows; the recorder into a
# throwaway PostgreSQL (scripts/with-pg.sh).
TESTS += test_matcher_scaleout
# Recursive (=): TESTHOST_* come from mk/host.mk (splitrig.c needs them).
test_matcher_scaleout_SRCS = tests/integration/test_matcher_scaleout.c tests/support/splitrig.c \
	$(TESTHOST_SRCS)
test_matcher_scaleout_LIBS = $(TESTHOST_LIBS) $(PQ_LIBS)
test_matcher_scaleout_DEPS := $(B)/arb-devbroker $(B)/arb-host $(B)/plugins/matcher.so \
                              $(B)/plugins/recorder.so

# Partition takeover pinned deterministically: embedded hosts over an
# in-process mock cluster. Recursive (=): TESTHOST_* come from mk/host.mk.
TESTS += test_matcher_scaleout_replay
test_matcher_scaleout_replay_SRCS = tests/integration/test_matcher_scaleout_replay.c $(TESTHOST_SRCS)
test_matcher_scaleout_replay_LIBS = $(TESTHOST_LIBS)
test_matcher_scaleout_replay_DEPS := $(B)/plugins/matcher.so

# arbitrage-engine build. `make` builds the host, arbctl and every plugin;
# `make test` runs the suite (plain, then ASan+UBSan); `make run` runs the
# monolith; `make bench` prints `bench: <name> <value> <unit>` lines.
#
# Each room of the tree describes its own targets in mk/<room>.mk with the
# variables below, so adding a plugin or a test never means editing this file:
#   PLUGINS += name          name_SRCS := ...   (-> $(B)/plugins/name.so)
#   TESTS += name            name_SRCS := ...   name_LIBS := ...   (run by make test)
#   BENCHES += name          name_SRCS := ...   (run by make bench)
#   FUZZERS += name          name_SRCS := ...   (libFuzzer, built by make fuzz)
#   TOOLS += name            name_SRCS := ...   (extra executables in $(B)/)
#   TEST_PLUGINS += name     name_SRCS := ...   (-> $(B)/tests/plugins/name.so)
#   BENCH_EXTRAS += file     (anything else a bench loads, built by make bench-build)

CC ?= cc
ifeq ($(origin CC),default)
CC := cc
endif
B ?= build
OPT ?= -O2 -g
SAN ?=
PREFIX ?= /usr/local
DESTDIR ?=
PKG_CONFIG ?= pkg-config

PKGS := libevent libevent_pthreads inih jansson
DEP_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
DEP_LIBS := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS := $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null)
PQ_CFLAGS := $(shell $(PKG_CONFIG) --cflags libpq 2>/dev/null)
PQ_LIBS := $(shell $(PKG_CONFIG) --libs libpq 2>/dev/null)
RDKAFKA_LIBS := $(shell $(PKG_CONFIG) --libs rdkafka 2>/dev/null)

CFLAGS_BASE := -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Isdk -Ihost -Itests/support $(DEP_CFLAGS) $(PQ_CFLAGS) -MMD -MP
CFLAGS := $(CFLAGS_BASE) $(OPT) $(SAN) $(EXTRA_CFLAGS)
PLUGIN_CFLAGS := $(CFLAGS) -fPIC -fvisibility=hidden
LDFLAGS := $(SAN) $(EXTRA_LDFLAGS)

# Quiet by default: one short line per step ("  [ 12/58] CC    host/bus.c");
# `make V=1` prints the full commands. The count of steps comes from a dry
# run of the same goals (`make -n`, only the steps that will run), made for
# build goals only (a dry run still runs recipe lines that call $(MAKE)) and
# only at the top level.
BUILD_GOALS := all build-tests bench-build tools
ifeq ($(V),1)
Q :=
say :=
else
Q := @
ifeq ($(ARB_COUNTING),1)
say = : ARB_STEP;
else
ifeq ($(MAKELEVEL)$(filter-out $(BUILD_GOALS),$(MAKECMDGOALS)),0)
ARB_STEPS := $(shell $(MAKE) --no-print-directory -n $(MAKEOVERRIDES) ARB_COUNTING=1 $(MAKECMDGOALS) 2>/dev/null | \
	grep -c ARB_STEP)
endif
ifneq ($(filter-out 0,$(ARB_STEPS)),)
# The step number: one more x in ARB_DONE each time a recipe is expanded
# (make expands recipes one at a time, in its own process, even with -j).
ARB_DONE :=
say = printf '  [%3s/%s] %-5s %s\n' $(words $(ARB_DONE) x)$(eval ARB_DONE += x) $(ARB_STEPS) $(1) $(2);
else
say = printf '  %-5s %s\n' $(1) $(2);
endif
endif
endif

# mk/*.mk has rules of its own (the gateway's assets): plain `make` is all.
.DEFAULT_GOAL := all

PLUGINS :=
TESTS :=
BENCHES :=
FUZZERS :=
TOOLS :=
TEST_PLUGINS :=
BENCH_EXTRAS :=

include $(sort $(wildcard mk/*.mk))

# ---- templates ----

define plugin_tpl
$(B)/plugins/$(1).so: $$(patsubst %.c,$(B)/obj/%.pic.o,$$($(1)_SRCS))
	@mkdir -p $$(@D)
	$$(Q)$$(call say,LD,$$@) $$(CC) -shared -o $$@ $$^ $$(LDFLAGS) $$($(1)_LIBS)
ALL_PLUGIN_SOS += $(B)/plugins/$(1).so
endef

define test_plugin_tpl
$(B)/tests/plugins/$(1).so: $$(patsubst %.c,$(B)/obj/%.pic.o,$$($(1)_SRCS))
	@mkdir -p $$(@D)
	$$(Q)$$(call say,LD,$$@) $$(CC) -shared -o $$@ $$^ $$(LDFLAGS) $$($(1)_LIBS)
ALL_TEST_PLUGIN_SOS += $(B)/tests/plugins/$(1).so
endef

define exe_tpl
$(B)/$(2)$(1): $$(patsubst %.c,$(B)/obj/%.o,$$($(1)_SRCS)) $$($(1)_DEPS)
	@mkdir -p $$(@D)
	$$(Q)$$(call say,LD,$$@) $$(CC) -o $$@ $$(filter %.o,$$^) $$(filter %.a,$$^) $$(LDFLAGS) $$($(1)_LIBS)
endef

$(foreach p,$(PLUGINS),$(eval $(call plugin_tpl,$(p))))
$(foreach p,$(TEST_PLUGINS),$(eval $(call test_plugin_tpl,$(p))))
$(foreach t,$(TESTS),$(eval $(call exe_tpl,$(t),tests/)))
$(foreach t,$(BENCHES),$(eval $(call exe_tpl,$(t),bench/)))
$(foreach t,$(TOOLS),$(eval $(call exe_tpl,$(t),)))

$(B)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(Q)$(call say,CC,$<) $(CC) $(CFLAGS) -c -o $@ $<

$(B)/obj/%.pic.o: %.c
	@mkdir -p $(@D)
	$(Q)$(call say,CC,$<) $(CC) $(PLUGIN_CFLAGS) -c -o $@ $<

TEST_BINS := $(addprefix $(B)/tests/,$(TESTS))
BENCH_BINS := $(addprefix $(B)/bench/,$(BENCHES))
TOOL_BINS := $(addprefix $(B)/,$(TOOLS))

# ---- user-facing targets ----


.PHONY: all deps build-tests test test-plain asan run run-split bench bench-build bench-bins fuzz install fmt fmt-check clean check-exports

all: $(TOOL_BINS) $(ALL_PLUGIN_SOS)

deps:
	@scripts/deps.sh

build-tests: all $(TEST_BINS) $(ALL_TEST_PLUGIN_SOS)

# The suite twice: an optimised build, then ASan+UBSan in build/asan; and the
# whole tree must also build warning-free with clang. The builds use every
# core (JOBS, output kept per target); the tests run one at a time.
JOBS ?= $(shell nproc 2>/dev/null || echo 1)
PAR := -j$(JOBS) --output-sync=target
test: deps
	@$(MAKE) --no-print-directory $(PAR) build-tests
	@$(MAKE) --no-print-directory test-plain
	@$(MAKE) --no-print-directory $(PAR) B=$(B)/asan OPT="$(ASAN_OPT)" SAN="$(ASAN_SAN)" build-tests
	@$(MAKE) --no-print-directory asan
	@$(MAKE) --no-print-directory $(PAR) CC=clang B=$(B)/clang build-tests
	@echo "clang: the whole tree builds with -Wall -Wextra -Werror"
	@scripts/summarize-tests.sh $(B)/test-results.txt $(B)/asan/test-results.txt

test-plain: build-tests
	@scripts/check-exports.sh $(ALL_PLUGIN_SOS)
	@scripts/run-tests.sh $(B) $(TESTS)

ASAN_OPT := -O1 -g -fno-omit-frame-pointer
ASAN_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
asan:
	@$(MAKE) --no-print-directory B=$(B)/asan OPT="$(ASAN_OPT)" SAN="$(ASAN_SAN)" test-plain

# `make run` resumes the run in var/journal; `make run NEW_RUN=1` begins another.
run: deps all
	@scripts/run.sh conf.d/monolith.ini $(if $(NEW_RUN),--new-run)

# The split system: one service per process over Kafka (the dev broker).
run-split: deps all
	@scripts/run-split.sh

# Benches load test plugins (bench_bus: tp_seq.so) from their own build, so
# bench-build builds those too; CI builds it (not runs it) after make test.
bench: deps bench-build
	@scripts/run-bench.sh $(B)/bench-build $(BENCHES)

bench-build:
	@$(MAKE) --no-print-directory $(PAR) OPT="-O3 -march=native -g" B=$(B)/bench-build bench-bins

bench-bins: all $(BENCH_BINS) $(ALL_TEST_PLUGIN_SOS) $(BENCH_EXTRAS)

FUZZ_CC ?= clang
fuzz:
	@scripts/fuzz.sh $(FUZZ_CC) "$(FUZZERS)" $(foreach f,$(FUZZERS),"$($(f)_SRCS)")

check-exports: all
	@scripts/check-exports.sh $(ALL_PLUGIN_SOS)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/arb/plugins \
		$(DESTDIR)$(PREFIX)/include/arb $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 0755 $(TOOL_BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 0755 $(ALL_PLUGIN_SOS) $(DESTDIR)$(PREFIX)/lib/arb/plugins/
	install -m 0644 sdk/arb/*.h $(DESTDIR)$(PREFIX)/include/arb/
	sed -e 's|@PREFIX@|$(PREFIX)|g' sdk/arb-sdk.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/arb-sdk.pc

fmt:
	clang-format -i $$(git ls-files '*.c' '*.h')

fmt-check:
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(B)

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)

# The gateway room: HTTP/JSON API, event stream and dashboard (plugins/gateway),
# its tests, fuzzer and benchmark. See plugins/gateway/gateway_plugin.c.

GW_CORE := plugins/gateway/sha256.c plugins/gateway/rate_limit.c plugins/gateway/api_keys.c \
	plugins/gateway/u64map.c plugins/gateway/order_json.c plugins/gateway/read_model.c \
	plugins/gateway/views.c plugins/gateway/services.c plugins/gateway/recover.c \
	plugins/gateway/snapshot.c

PLUGINS += gateway
gateway_SRCS := $(GW_CORE) plugins/gateway/routes.c plugins/gateway/assets.c plugins/gateway/run_pages.c \
	plugins/gateway/http_conn.c plugins/gateway/http_framing.c plugins/gateway/stream.c \
	plugins/gateway/gateway_plugin.c
gateway_LIBS := $(DEP_LIBS)

# The page and the API document are compiled into the plugin (.incbin).
$(B)/obj/plugins/gateway/assets.pic.o $(B)/obj/plugins/gateway/assets.o: \
	plugins/gateway/dashboard.html plugins/gateway/openapi.json

TESTS += test_gateway_sha256
test_gateway_sha256_SRCS := tests/unit/test_gateway_sha256.c plugins/gateway/sha256.c
test_gateway_sha256_LIBS := $(CMOCKA_LIBS)

TESTS += test_gateway_keys
test_gateway_keys_SRCS := tests/unit/test_gateway_keys.c plugins/gateway/sha256.c \
	plugins/gateway/api_keys.c plugins/gateway/rate_limit.c
test_gateway_keys_LIBS := $(CMOCKA_LIBS)

TESTS += test_gateway_framing
test_gateway_framing_SRCS := tests/unit/test_gateway_framing.c plugins/gateway/http_framing.c
test_gateway_framing_LIBS := $(CMOCKA_LIBS) $(DEP_LIBS)

TESTS += test_gateway_order_json
test_gateway_order_json_SRCS := tests/unit/test_gateway_order_json.c plugins/gateway/order_json.c
test_gateway_order_json_LIBS := $(CMOCKA_LIBS) $(DEP_LIBS)

TESTS += test_gateway_read_model
test_gateway_read_model_SRCS := tests/unit/test_gateway_read_model.c $(GW_CORE)
test_gateway_read_model_LIBS := $(CMOCKA_LIBS) $(DEP_LIBS)

TESTS += test_gateway_snapshot
test_gateway_snapshot_SRCS := tests/unit/test_gateway_snapshot.c $(GW_CORE)
test_gateway_snapshot_LIBS := $(CMOCKA_LIBS) $(DEP_LIBS)

TESTS += test_gateway_wire_json
test_gateway_wire_json_SRCS := tests/unit/test_gateway_wire_json.c
test_gateway_wire_json_LIBS := $(CMOCKA_LIBS) $(DEP_LIBS)

TESTS += test_gateway_openapi
test_gateway_openapi_SRCS := tests/unit/test_gateway_openapi.c plugins/gateway/routes.c
test_gateway_openapi_LIBS := $(CMOCKA_LIBS) $(DEP_LIBS)

# The snapshots of the read models: decoded, built from records, chunked.
FUZZERS += fuzz_gateway_snapshot
fuzz_gateway_snapshot_SRCS := tests/fuzz/fuzz_gateway_snapshot.c plugins/gateway/snapshot.c \
	plugins/gateway/read_model.c plugins/gateway/u64map.c

FUZZERS += fuzz_order_json
fuzz_order_json_SRCS := tests/fuzz/fuzz_order_json.c plugins/gateway/order_json.c

# The scan of a request's bytes, fed whole and in pieces (differential).
FUZZERS += fuzz_http_scan
fuzz_http_scan_SRCS := tests/fuzz/fuzz_http_scan.c plugins/gateway/http_framing.c

# Raw HTTP into the whole gateway (it includes gateway_plugin.c itself).
FUZZERS += fuzz_gateway_http
fuzz_gateway_http_SRCS := tests/fuzz/fuzz_gateway_http.c $(GW_CORE) plugins/gateway/routes.c \
	plugins/gateway/assets.c plugins/gateway/http_conn.c plugins/gateway/http_framing.c \
	plugins/gateway/stream.c plugins/gateway/run_pages.c

# Recursive (=) because mk/host.mk, which defines TESTHOST_*, is read after this file.
TESTS += test_gateway_http
test_gateway_http_SRCS = tests/integration/test_gateway_http.c $(TESTHOST_SRCS)
test_gateway_http_LIBS = $(TESTHOST_LIBS)
test_gateway_http_DEPS := $(B)/plugins/gateway.so

# make bench: wrk against the monolith's POST /v1/orders, an nginx baseline
# and the HTTP floor (the gateway's HTTP layer with no order path).
BENCHES += bench_gateway
bench_gateway_SRCS := tests/bench/bench_gateway.c plugins/gateway/order_json.c
bench_gateway_LIBS := $(DEP_LIBS)
bench_gateway_DEPS := $(B)/tests/plugins/http_floor.so

TEST_PLUGINS += http_floor
http_floor_SRCS := tests/bench/http_floor_plugin.c plugins/gateway/http_conn.c \
	plugins/gateway/u64map.c
http_floor_LIBS := $(DEP_LIBS)

# The dashboard in headless Chromium against the monolith (skips without
# chromium or conf.d/monolith.ini).
TESTS += test_gateway_dashboard
test_gateway_dashboard_SRCS := tests/e2e/dashboard_e2e.c
test_gateway_dashboard_LIBS := $(CMOCKA_LIBS)

# The gateway with the real matcher (skips until matcher.so is built).
TESTS += test_gateway_matcher
test_gateway_matcher_SRCS = tests/integration/test_gateway_matcher.c $(TESTHOST_SRCS)
test_gateway_matcher_LIBS = $(TESTHOST_LIBS)
test_gateway_matcher_DEPS := $(B)/plugins/gateway.so

TESTS += test_gateway_services
test_gateway_services_SRCS := tests/unit/test_gateway_services.c plugins/gateway/services.c \
	plugins/gateway/views.c plugins/gateway/read_model.c plugins/gateway/u64map.c
test_gateway_services_LIBS := $(CMOCKA_LIBS) $(DEP_LIBS)

# GET /v1/services and `arbctl services` against the gateway in the test host.
TESTS += test_gateway_registry
test_gateway_registry_SRCS = tests/integration/test_gateway_registry.c $(TESTHOST_SRCS)
test_gateway_registry_LIBS = $(TESTHOST_LIBS)
test_gateway_registry_DEPS := $(B)/plugins/gateway.so $(B)/arbctl

# The live A/B workflow and the run report page: the monolith with its
# recorder, a hot reload, arbctl report --split --html, /runs/ in Chromium.
TESTS += test_report_page
test_report_page_SRCS := tests/e2e/report_e2e.c
test_report_page_LIBS := $(CMOCKA_LIBS)

# The gateway before arb_batch, for scripts/bench-gateway-batch.sh (run by
# scripts/bench-gateway.sh): GW_BATCH_BASE's gateway, which got one wake per
# batch by publishing to its own kick topic from inside a delivery, built
# from git beside the tree's and loaded into the same arb-host. A clone
# without that commit skips the comparison (the script says so).
GW_BATCH_BASE := 2a51205
BENCH_EXTRAS += $(B)/bench/gateway_base.so
$(B)/bench/gateway_base.so: mk/gateway.mk
	@rm -rf $(B)/gw-base && mkdir -p $(B)/gw-base $(@D)
	@if git cat-file -e $(GW_BATCH_BASE) 2>/dev/null; then \
		git archive $(GW_BATCH_BASE) plugins/gateway sdk | tar -x -C $(B)/gw-base && \
		cd $(B)/gw-base && $(CC) $(filter-out -MMD -MP,$(PLUGIN_CFLAGS)) -shared \
			-o $(abspath $@) plugins/gateway/*.c $(DEP_LIBS); \
	else echo "gateway A/B: $(GW_BATCH_BASE) is not in this clone: no base gateway" >&2; fi

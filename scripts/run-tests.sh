#!/usr/bin/env bash
# Runs each test binary of a build, prints its output, and writes one line per
# binary ("name passed failed") to $B/test-results.txt. Exits non-zero if any
# test failed or a binary crashed.
set -uo pipefail
B=$1; shift
results=$B/test-results.txt
mock_timed="test_kafka test_kafka_devbroker test_kafka_host test_recorder_kafka test_split_faults test_split_agents test_split_broker_restart test_split_health test_split_gateway_restart test_split_matcher_restart"
: > "$results"
status=0
export ARB_BUILD=$B
# Whether every failed test of a log failed in a TIMING wait.
timing_only() {
    local failed timing
    failed=$(grep -Eo '\[  FAILED  \] [0-9]+ test' "$1" | awk '{s+=$3} END {print s+0}')
    timing=$(grep -c '^TIMING:' "$1")
    [ "$failed" -gt 0 ] && [ "$timing" -ge "$failed" ]
}
for t in "$@"; do
    bin=$B/tests/$t
    log=$B/tests/$t.log
    echo "== $t ($B)"
    start=$(date +%s%N)
    # A hung test fails alone instead of holding the whole run.
    CMOCKA_MESSAGE_OUTPUT=stdout timeout -k 10 "${ARB_TEST_TIMEOUT:-600}" "$bin" > "$log" 2>&1
    rc=$?
    [ $rc -eq 124 ] && echo "== $t: TIMED OUT after ${ARB_TEST_TIMEOUT:-600}s" >> "$log"
    # Tests against librdkafka's mock cluster depend on its timing (a group's
    # first join takes ~3 s there; rebalances take longer on a loaded
    # machine), which we do not control. Such a binary runs once more,
    # reported as FLAKY, only when every test that failed in it failed in a
    # wait of its setup and said so with a "TIMING:" line
    # (tests/support/timing.h). An assertion about lost, doubled or
    # corrupted data never prints that line: it fails the run the first time.
    if [ $rc -ne 0 ] && [[ " $mock_timed " == *" $t "* ]] && timing_only "$log"; then
        cat "$log"
        echo "== $t: FLAKY: failed in a wait of its setup (TIMING, log above), trying again"
        CMOCKA_MESSAGE_OUTPUT=stdout timeout -k 10 "${ARB_TEST_TIMEOUT:-600}" "$bin" > "$log" 2>&1
        rc=$?
    fi
    cat "$log"
    passed=$(grep -Eo '\[  PASSED  \] [0-9]+' "$log" | awk '{s+=$NF} END {print s+0}')
    failed=$(grep -Eo '\[  FAILED  \] [0-9]+ test' "$log" | awk '{s+=$3} END {print s+0}')
    if [ $rc -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
    echo "$t $passed $failed" >> "$results"
    printf "== %s: %s passed, %s failed (%d ms)\n" "$t" "$passed" "$failed" $(( ($(date +%s%N) - start) / 1000000 ))
    [ $rc -eq 0 ] || status=1
done
exit $status

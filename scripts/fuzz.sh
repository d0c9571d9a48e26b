#!/usr/bin/env bash
# Builds every libFuzzer target with clang (ASan+UBSan) and runs each for
# FUZZ_SECONDS (default 60), keeping its corpus in build/fuzz/corpus/NAME.
# FUZZ_RUNS=N runs each for N executions instead (no time limit); FUZZ_ONLY
# names the targets to run (default: all).
# usage: scripts/fuzz.sh CC "name1 name2 ..." "srcs1" "srcs2" ...
set -euo pipefail
cc=$1; names=($2); shift 2
secs=${FUZZ_SECONDS:-60}
flags="-std=c17 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Isdk -Ihost -Itests/support $(pkg-config --cflags libevent jansson libpq 2>/dev/null)"
libs="$(pkg-config --libs libevent libevent_pthreads inih jansson libpq rdkafka libcrypto 2>/dev/null) -ldl -lpthread -lm"
mkdir -p build/fuzz
i=0
for name in "${names[@]}"; do
    srcs=$1; shift
    if [ -n "${FUZZ_ONLY:-}" ] && [[ " $FUZZ_ONLY " != *" $name "* ]]; then
        continue
    fi
    bin=build/fuzz/$name
    echo "fuzz: building $name"
    $cc $flags -o "$bin" $srcs $libs
    corpus=build/fuzz/corpus/$name
    mkdir -p "$corpus"
    seeds=tests/fuzz/seeds/$name
    [ -d "$seeds" ] && cp -n "$seeds"/* "$corpus"/ 2>/dev/null || true
    if [ -n "${FUZZ_RUNS:-}" ]; then
        limit=(-runs="$FUZZ_RUNS")
        echo "fuzz: running $name for $FUZZ_RUNS executions"
    else
        limit=(-max_total_time="$secs")
        echo "fuzz: running $name for ${secs}s"
    fi
    # The fuzzer's own status (a finding exits non-zero), taken before
    # anything else runs: under pipefail a `|| true` here would replace it.
    set +e
    "$bin" "${limit[@]}" -print_final_stats=1 "$corpus" 2>&1 | grep -E 'stat::number_of_executed_units|stat::peak_rss|ERROR|SUMMARY|Done'
    rc=${PIPESTATUS[0]}
    set -e
    [ "$rc" -eq 0 ] || { echo "fuzz: $name FAILED"; exit 1; }
    i=$((i+1))
done
echo "fuzz: $i targets ran ${FUZZ_RUNS:+$FUZZ_RUNS executions}${FUZZ_RUNS:-${secs}s} each without a finding"

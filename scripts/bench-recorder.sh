#!/usr/bin/env bash
# The recorder's benchmark on its own: builds it as `make bench` does and runs
# it under a throwaway PostgreSQL (the binary starts one via scripts/with-pg.sh).
# Prints `bench:` lines: the recorder's sustained rows/s from the bus into
# PostgreSQL, a plain `psql \copy` of the same rows into the same table, and
# their ratio. ARB_BENCH_ROWS=N sets the row count (default 500000).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build}/bench-build
make --no-print-directory OPT="-O3 -march=native -g" B="$B" \
    "$B/plugins/recorder.so" "$B/bench/bench_recorder" >/dev/null
ARB_BUILD=$B exec "$B/bench/bench_recorder"

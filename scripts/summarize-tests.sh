#!/usr/bin/env bash
# Adds up the per-binary results of the plain and sanitizer runs into the one
# closing line CI reads: "tests: N passed, N failed".
set -euo pipefail
cat "$@" | awk '{p+=$2; f+=$3} END {printf "tests: %d passed, %d failed\n", p, f; exit (f > 0)}'

#!/usr/bin/env bash
# Runs each benchmark binary; each prints `bench: <name> <value> <unit>` lines.
set -euo pipefail
B=$1; shift
export ARB_BUILD=$B
for b in "$@"; do
    "$B/bench/$b"
done

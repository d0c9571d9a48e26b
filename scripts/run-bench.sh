#!/usr/bin/env bash
# Runs each benchmark binary; each prints `bench: <name> <value> <unit>` lines.
# A bench that cannot set up exits non-zero with its reason on stderr: the
# others still run, and this script exits 1 naming the ones that failed.
set -uo pipefail
B=$1; shift
export ARB_BUILD=$B
failed=()
for b in "$@"; do
    rc=0
    "$B/bench/$b" || rc=$?
    if ((rc)); then
        echo "run-bench: $b failed (exit status $rc)" >&2
        failed+=("$b")
    fi
done
if ((${#failed[@]})); then
    echo "run-bench: failed: ${failed[*]}" >&2
    exit 1
fi

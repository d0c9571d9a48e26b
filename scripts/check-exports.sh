#!/usr/bin/env bash
# Every plugin must export exactly one symbol of its own: the entry point.
set -euo pipefail
bad=0
for so in "$@"; do
    syms=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' \
        | grep -vE '^(_init|_fini|_edata|_end|__bss_start)$' || true)
    if [ "$syms" != "arb_plugin_entry" ]; then
        echo "check-exports: $so exports: $(echo $syms)" >&2
        bad=1
    fi
done
[ $bad -eq 0 ] && echo "check-exports: ${#} plugins export exactly arb_plugin_entry"
exit $bad

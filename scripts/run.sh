#!/usr/bin/env bash
# `make run`: the whole system on this machine, in the foreground (Ctrl-C
# stops it cleanly; a host killed by a plugin crash is restarted, see
# scripts/supervise.sh). With the recorder in the config and no ARB_PG_DSN set, a
# local PostgreSQL under var/pg is created on first use and started first; it
# keeps running after the host stops (so `arbctl runs`, `arbctl report` and
# psql still reach the data), and the last line says so and how to stop it.
set -euo pipefail
cd "$(dirname "$0")/.."
cfg=${1:-conf.d/monolith.ini}
shift || true
build=${ARB_BUILD:-build}
local_pg=0
if grep -qsE '^[[:space:]]*load[[:space:]]*=[[:space:]]*recorder\.so' "$cfg" && [ -z "${ARB_PG_DSN:-}" ]; then
    ARB_PG_DSN=$(scripts/pg-local.sh start)
    export ARB_PG_DSN
    local_pg=1
    echo "run: PostgreSQL for the recorder at ${ARB_PG_DSN##*@} (psql \"\$(scripts/pg-local.sh dsn)\")" >&2
fi
# The addresses as the host resolves them (${ARB_ADMIN:-...} expanded).
admin=$("$build/arbctl" -c "$cfg" where 2>/dev/null | sed -n 's/^admin //p')
listen=$("$build/arbctl" -c "$cfg" where 2>/dev/null | sed -n 's/^gateway //p')
echo "run: arb-host -c $cfg${admin:+ (admin http://$admin, arbctl -c $cfg status)}${listen:+, dashboard http://$listen/}" >&2
# A plugin crash (exit status 70) restarts the host with a back-off. A
# SIGINT or SIGTERM to this script goes on to supervise.sh as SIGTERM (a
# background job ignores SIGINT), which hands it to the host: a clean stop.
# A Ctrl-C in the terminal reaches the host directly too. Then the last word
# about PostgreSQL.
sup=
trap '[ -n "$sup" ] && kill -TERM "$sup" 2>/dev/null' INT TERM
scripts/supervise.sh arb-host "$build/arb-host" -c "$cfg" "$@" &
sup=$!
# `wait` returns early when a trapped signal arrives: wait until it exited,
# then once more for its status.
while kill -0 "$sup" 2>/dev/null; do
    wait "$sup" || true
done
status=0
wait "$sup" || status=$?
if [ "$local_pg" -eq 1 ]; then
    echo "run: the local PostgreSQL keeps running with the data (arbctl runs; arbctl report RUN);" \
        "stop it with: scripts/pg-local.sh stop" >&2
fi
exit "$status"

#!/usr/bin/env bash
# `make run`: the whole system on this machine, in the foreground (Ctrl-C
# stops it cleanly; a host killed by a plugin crash is restarted, see
# scripts/supervise.sh). With the recorder in the config and no ARB_PG_DSN set, a
# local PostgreSQL under var/pg is created on first use and started first.
set -euo pipefail
cd "$(dirname "$0")/.."
cfg=${1:-conf.d/monolith.ini}
shift || true
if grep -qsE '^[[:space:]]*load[[:space:]]*=[[:space:]]*recorder\.so' "$cfg" && [ -z "${ARB_PG_DSN:-}" ]; then
    ARB_PG_DSN=$(scripts/pg-local.sh start)
    export ARB_PG_DSN
    echo "run: PostgreSQL for the recorder at ${ARB_PG_DSN##*@}" >&2
fi
admin=$(sed -nE 's/^[[:space:]]*admin[[:space:]]*=[[:space:]]*([^ ;]+).*/\1/p' "$cfg" | head -1)
listen=$(sed -nE 's/^[[:space:]]*listen[[:space:]]*=[[:space:]]*([^ ;]+).*/\1/p' "$cfg" | head -1)
echo "run: arb-host -c $cfg${admin:+ (admin http://$admin, arbctl -c $cfg status)}${listen:+, dashboard http://$listen/}" >&2
# A plugin crash (exit status 70) restarts the host with a back-off.
exec scripts/supervise.sh arb-host "${ARB_BUILD:-build}/arb-host" -c "$cfg" "$@"

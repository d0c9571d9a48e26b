#!/usr/bin/env bash
# dashboard_e2e.sh -- the dashboard against a running monolith, in headless
# Chromium: starts `arb-host -c conf.d/monolith.ini` with the gateway on a
# free loopback port, runs tests/e2e/dashboard_check.py (rows in every book,
# points in every chart, trades on the tape, accounts on the PnL board) and
# keeps the screenshot in BUILD_DIR/e2e/dashboard.png (and, for the plain
# build, in docs/dashboard.png, the picture the README shows).
#
#   tests/e2e/dashboard_e2e.sh [BUILD_DIR]
#
# Exit 0 pass, 1 fail, 77 skip (no chromium, no monolith config yet).
set -uo pipefail
B=${1:-${ARB_BUILD:-build}}
CONF=${ARB_E2E_CONFIG:-conf.d/monolith.ini}
INSTANCE=${ARB_E2E_GATEWAY:-gateway}
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
    echo "dashboard_e2e: SKIP: chromium is not installed (Debian package chromium)"
    exit 77
fi
if [ ! -f "$CONF" ]; then
    echo "dashboard_e2e: SKIP: $CONF does not exist"
    exit 77
fi
for f in "$B/arb-host" "$B/plugins/gateway.so"; do
    [ -e "$f" ] || { echo "dashboard_e2e: $f is missing"; exit 1; }
done
# Pieces built in other rooms: until they exist the monolith cannot run.
confdir=$(cd "$(dirname "$CONF")" && pwd)
for inc in $(awk -F' *= *' '/^include *=/ {print $2}' "$CONF"); do
    [ -f "$confdir/$inc" ] || { echo "dashboard_e2e: SKIP: $confdir/$inc does not exist yet"; exit 77; }
done
for so in $(awk -F' *= *' '/^load *=/ {print $2}' "$CONF"); do
    [ -f "$B/plugins/$so" ] || { echo "dashboard_e2e: SKIP: $B/plugins/$so is not built yet"; exit 77; }
done
mkdir -p "$B/e2e"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
# Without a database ($ARB_PG_DSN unset) the recorder is left out: a
# recorder that cannot write holds back the topics it consumes, and this
# test is about the page, not about PostgreSQL.
run_conf=$CONF
if [ -z "${ARB_PG_DSN:-}" ]; then
    run_conf=$B/e2e/monolith-no-recorder.ini
    awk -v dir="$confdir" '
        /^\[/ { skip = ($0 ~ /^\[plugin recorder\]/) }
        /^include *=/ { sub(/= */, "= " dir "/") }
        !skip' "$CONF" > "$run_conf"
fi
# A journal of its own, new each time: the test neither resumes nor leaves a
# run in the checkout's var/journal.
rm -rf "$B/e2e/journal"
ARB_BUILD=$B ARB_ADMIN=127.0.0.1:$(free_port) ARB_JOURNAL=$B/e2e/journal "$B/arb-host" -c "$run_conf" \
    -s "$INSTANCE.listen=127.0.0.1:$port" > "$B/e2e/monolith.log" 2>&1 &
host=$!
trap 'kill $host 2>/dev/null; wait $host 2>/dev/null' EXIT
up=0
for _ in $(seq 1 150); do
    if curl -s -o /dev/null "http://127.0.0.1:$port/v1/instruments"; then up=1; break; fi
    kill -0 $host 2>/dev/null || break
    sleep 0.1
done
if [ $up -ne 1 ]; then
    echo "dashboard_e2e: the monolith did not serve on port $port:"
    tail -20 "$B/e2e/monolith.log"
    exit 1
fi
python3 tests/e2e/dashboard_check.py "http://127.0.0.1:$port/" "$B/e2e/dashboard.png" \
    --timeout "${ARB_E2E_TIMEOUT:-60}"
rc=$?
[ $rc -eq 0 ] || tail -20 "$B/e2e/monolith.log"
# The README shows this picture: a passing run of the plain build refreshes it.
if [ $rc -eq 0 ] && [ "$B" = build ] && [ -d docs ]; then
    cp "$B/e2e/dashboard.png" docs/dashboard.png
fi
exit $rc

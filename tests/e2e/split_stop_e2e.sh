#!/usr/bin/env bash
# split_stop_e2e.sh -- `make run-split` (scripts/run-split.sh) stopped as a
# Ctrl-C stops it: SIGINT to its whole process group once every host is
# ready. It must say "stopped" and exit 0, every host having stopped
# cleanly; it used to report a normal stop as "a host exited on its own"
# and exit 1. The script's own logic, the same for every build: run for the
# plain build only (77, skipped, for the sanitizer build).
#
#   tests/e2e/split_stop_e2e.sh [BUILD_DIR]   (re-runs itself under scripts/with-pg.sh)
set -uo pipefail
B=${1:-${ARB_BUILD:-build}}
if [ "$B" != build ]; then
    echo "split_stop_e2e: SKIP: scripts/run-split.sh does not depend on the build; run for build/ only"
    exit 77
fi
if [ -z "${ARB_WITH_PG:-}" ]; then
    exec scripts/with-pg.sh "$0" "$B"
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dir=$B/e2e/split-stop
rm -rf "$dir" && mkdir -p "$dir"
createdb arb_split_stop_e2e || exit 1
export ARB_PG_DSN="dbname=arb_split_stop_e2e" ARB_SPLIT_DIR=$dir ARB_BUILD=$B ARB_RUNS_DIR=$dir/runs
export ARB_HTTP=127.0.0.1:$(free_port) ARB_ADMIN_MATCHER=127.0.0.1:$(free_port)
export ARB_ADMIN_RECORDER=127.0.0.1:$(free_port) ARB_ADMIN_GATEWAY=127.0.0.1:$(free_port)
export ARB_ADMIN_MARKET=127.0.0.1:$(free_port)
# Its own process group, as a terminal's foreground job.
setsid scripts/run-split.sh > "$dir/run-split.out" 2>&1 &
pid=$!
trap 'kill -KILL -- -$pid 2>/dev/null' EXIT
fail() { echo "split_stop_e2e: FAIL: $*"; cat "$dir/run-split.out"; exit 1; }
for svc in matcher recorder gateway market; do
    ready=0
    for _ in $(seq 1 900); do
        if "$B/arbctl" -c "conf.d/split/$svc.ini" status > /dev/null 2>&1; then ready=1; break; fi
        kill -0 $pid 2>/dev/null || fail "run-split ended before $svc was ready"
        sleep 0.1
    done
    [ $ready -eq 1 ] || fail "$svc not ready in 90 s"
done
kill -INT -- -$pid
for _ in $(seq 1 300); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
kill -0 $pid 2>/dev/null && fail "run-split still running 30 s after Ctrl-C"
wait $pid
status=$?
trap - EXIT
[ $status -eq 0 ] || fail "run-split exited with status $status after Ctrl-C"
grep -q "^run-split: stopped" "$dir/run-split.out" || fail "no 'run-split: stopped' line"
grep -q "ended with status\|exited on its own" "$dir/run-split.out" && fail "a normal stop reported as a failure"
for svc in matcher recorder gateway market; do
    grep -q "\[host\] stopped" "$dir/$svc.log" || fail "$svc did not stop cleanly ($dir/$svc.log)"
done
echo "split_stop_e2e: ok: every host ready, then Ctrl-C: run-split said stopped and exited 0"
dropdb arb_split_stop_e2e || true

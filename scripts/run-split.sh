#!/usr/bin/env bash
# `make run-split`: the split system on this machine, one service per process
# over Kafka: the dev broker (librdkafka's mock cluster, development only), a
# local PostgreSQL for the recorder, then matcher, recorder, gateway and market
# hosts from conf.d/split/. Logs go to var/split/ ($ARB_SPLIT_DIR), the
# programs come from build/ ($ARB_BUILD). Ctrl-C stops everything (each host:
# drain, commit, stop) and says "stopped", status 0; a host that ends by
# itself (a status the supervisor does not restart) stops the rest, status 1.
set -euo pipefail
case "${ARB_MATCHERS:-1}" in
1 | 2) ;;
*) echo "run-split: ARB_MATCHERS=${ARB_MATCHERS}: 1 or 2 (conf.d/split has matcher.ini and matcher2.ini; copy matcher2.ini for more)" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
B=${ARB_BUILD:-build}
D=${ARB_SPLIT_DIR:-var/split}
mkdir -p "$D"
pids=()
broker=
stopping=0
stop() {
    trap - INT TERM EXIT
    stopping=1
    echo "run-split: stopping" >&2
    # Hosts first (each drains, commits and leaves its group), the broker last.
    for ((i=${#pids[@]}-1; i>=0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    [ -n "$broker" ] && kill -TERM "$broker" 2>/dev/null && wait "$broker" 2>/dev/null || true
}
trap stop INT TERM EXIT
rm -f "$D/brokers"
# Its own session: a Ctrl-C reaches the hosts, not the broker they must
# still talk to while they commit and leave their groups.
setsid "$B/arb-devbroker" --partitions 4 --topics matcher_snapshots --bootstrap-file "$D/brokers" > "$D/devbroker.log" 2>&1 &
broker=$!
for _ in $(seq 100); do [ -s "$D/brokers" ] && break; sleep 0.1; done
[ -s "$D/brokers" ] || { echo "run-split: the dev broker did not start ($D/devbroker.log)" >&2; exit 1; }
ARB_BROKERS=$(sed 's/^bootstrap=//' "$D/brokers")
export ARB_BROKERS
if [ -z "${ARB_PG_DSN:-}" ]; then
    ARB_PG_DSN=$(scripts/pg-local.sh start)
    export ARB_PG_DSN
fi
# ARB_MATCHERS=2 adds conf.d/split/matcher2.ini: two matchers share the books
# in consumer group arb-matcher.
matchers=matcher
if [ "${ARB_MATCHERS:-1}" -eq 2 ]; then
    matchers="matcher matcher2"
    export ARB_MATCHER_CONSUME=group # alone, matcher.ini owns every partition
fi
for svc in $matchers recorder gateway market; do
    # A plugin crash (exit status 70) or a kill (-9, OOM) restarts that host
    # with a back-off (scripts/supervise.sh); the others keep running.
    scripts/supervise.sh "$svc" "$B/arb-host" -c "conf.d/split/$svc.ini" > "$D/$svc.log" 2>&1 &
    pids+=($!)
    admin=$("$B/arbctl" -c "conf.d/split/$svc.ini" where 2>/dev/null | sed -n 's/^admin //p')
    echo "run-split: $svc (pid $!, admin http://$admin, arbctl -c conf.d/split/$svc.ini status, log $D/$svc.log)" >&2
done
gw=$("$B/arbctl" -c conf.d/split/gateway.ini where 2>/dev/null | sed -n 's/^gateway //p')
echo "run-split: brokers $ARB_BROKERS; dashboard http://${gw:-127.0.0.1:8080}/; Ctrl-C stops; a host that crashes or is killed restarts with back-off (see its log)" >&2
# A Ctrl-C reaches the hosts too (one process group): each stops cleanly and
# its supervisor ends with status 0, which may be seen here before the INT
# trap has run (bash defers a trap while a child it waits for handles the
# signal), so status 0 is a stop as well as the trap.
status=0
wait -n "${pids[@]}" || status=$?
if [ "$stopping" -eq 1 ] || [ "$status" -eq 0 ]; then
    [ "$stopping" -eq 1 ] || stop
    echo "run-split: stopped" >&2
else
    echo "run-split: a host ended with status $status; stopping the others (see $D/*.log)" >&2
    exit 1
fi

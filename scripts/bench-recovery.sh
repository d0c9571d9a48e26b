#!/usr/bin/env bash
# bench-recovery.sh -- how long the split system takes to accept orders again
# after a host is killed with SIGKILL and started again at once (as
# supervise.sh does, less its 1 s back-off), on the dev broker.
#
#   scripts/bench-recovery.sh [BUILD_DIR]      (make bench runs it)
#
# Starts arb-devbroker, a matcher host and a gateway host from conf.d/split/
# on free loopback ports, waits for an accepted order (POST /v1/orders
# answered 200), then ARB_BENCH_ROUNDS times (default 3) for each of the
# matcher and the gateway: kill -9, start it again, and POST an order (each
# with a 2 s timeout) until one is accepted. Prints the median of the rounds:
#   bench: recovery_matcher_kill_to_order <ms> ms
#   bench: recovery_gateway_kill_to_order <ms> ms
# What bounds them (docs/SERVICES.md, "Recovery time"): both hosts take their
# partitions without a consumer group ([bus] consume = all), so the process
# start, then the snapshot restore and replay (matcher) or the read model's
# replay (gateway). ARB_MATCHER_CONSUME=group puts the matcher in its group:
# then the group's join after a member died (its session.timeout.ms and the
# dev broker's rebalance delays) comes first.
#
# ARB_BENCH_HISTORY=N stores at least N order events before the gateway's
# rounds (their history is what the gateway rebuilds from): pairs of orders
# that trade (tests/bench/bench_gateway.lua), POSTed by wrk over
# ARB_BENCH_HISTORY_CONNS connections (default 1: the matcher's answers leave
# one by one, one record per producer batch, the slowest history to read
# back), and each round's log line of the rebuild is printed (N counts what was
# written: the dev broker holds about 5 MiB a partition of it, and these
# events are on one). ARB_BENCH_ONLY=gateway skips the matcher's rounds.
# ARB_BENCH_MARKET=S also runs the market host (conf.d/split/market.ini: the
# clock, generator and agents) and lets it trade S seconds before the rounds,
# so that the matcher restores its books from a history of that length.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
rounds=${ARB_BENCH_ROUNDS:-3}
dir=$(mktemp -d /tmp/arb-bench-recovery-XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
"$B/arb-devbroker" --partitions 4 --topics matcher_snapshots --bootstrap-file "$dir/brokers" > "$dir/devbroker.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do [ -s "$dir/brokers" ] && break; sleep 0.05; done
ARB_BROKERS=$(sed 's/^bootstrap=//' "$dir/brokers")
export ARB_BROKERS
http=$(free_port)
export ARB_HTTP=127.0.0.1:$http ARB_ADMIN_GATEWAY=127.0.0.1:$(free_port)
madmin=127.0.0.1:$(free_port)
matcher=
gateway=
start_matcher() {
    "$B/arb-host" -c conf.d/split/matcher.ini -s "host.admin=$madmin" -s host.announce_ms=0 >> "$dir/matcher.log" 2>&1 &
    matcher=$!
    pids+=("$matcher")
}
start_gateway() {
    "$B/arb-host" -c conf.d/split/gateway.ini -s host.announce_ms=0 \
        -s gateway.api_key.bench_buy=bench-buyer-key-0123456789:1001 \
        -s gateway.api_key.bench_sell=bench-seller-key-0123456789:1002 >> "$dir/gateway.log" 2>&1 &
    gateway=$!
    pids+=("$gateway")
}
order() {
    curl -s -m 2 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${ARB_API_KEY:-demo-key-change-me}" \
        -d '{"venue":"XA","symbol":"BTCUSD","side":"buy","type":"limit","price":"90.00","qty":"0.001","tif":"gtc"}' \
        "http://$ARB_HTTP/v1/orders" || true
}
# Polls until an order is accepted; the milliseconds since $1 (ns), or -1
# after 120 s.
until_accepted() {
    local t0=$1
    while :; do
        [ "$(order)" = 200 ] && break
        [ $(( ($(date +%s%N) - t0) / 1000000000 )) -ge 120 ] && { echo -1; return; }
        sleep 0.02
    done
    echo $(( ($(date +%s%N) - t0) / 1000000 ))
}
start_matcher
start_gateway
if [ "$(until_accepted "$(date +%s%N)")" = -1 ]; then
    echo "bench-recovery: the split system never accepted an order (logs in $dir)" >&2
    # Its processes go; the logs stay for whoever reads the failure.
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    trap - EXIT
    exit 1
fi
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# Order events stored now: the sum of order_events' end offsets.
stored_events() {
    kcat -b "$ARB_BROKERS" -Q $(for p in 0 1 2 3; do echo "-t order_events:$p:-1"; done) 2>/dev/null |
        awk '/offset/ {n += $NF} END {print n + 0}'
}
if [ -n "${ARB_BENCH_HISTORY:-}" ]; then
    t0=$(date +%s)
    while [ "$(stored_events)" -lt "$ARB_BENCH_HISTORY" ]; do
        ARB_BENCH_NAME=history wrk -t1 -c"${ARB_BENCH_HISTORY_CONNS:-1}" -d5s \
            -s tests/bench/bench_gateway.lua "http://$ARB_HTTP" > /dev/null 2>&1
        [ $(( $(date +%s) - t0 )) -ge 900 ] && { echo "bench-recovery: history not stored in 15 min" >&2; exit 1; }
    done
    echo "bench-recovery: $(stored_events) order events stored in $(( $(date +%s) - t0 )) s" >&2
fi
if [ -n "${ARB_BENCH_MARKET:-}" ]; then
    "$B/arb-host" -c conf.d/split/market.ini -s "host.admin=127.0.0.1:$(free_port)" \
        -s host.announce_ms=0 >> "$dir/market.log" 2>&1 &
    pids+=($!)
    echo "bench-recovery: the agents trade for $ARB_BENCH_MARKET s" >&2
    sleep "$ARB_BENCH_MARKET"
fi
for who in ${ARB_BENCH_ONLY:-matcher gateway}; do
    figures=()
    for _ in $(seq "$rounds"); do
        sleep 2 # the restarted host's snapshots and commits settle
        if [ "$who" = matcher ]; then
            kill -9 "$matcher"; wait "$matcher" 2>/dev/null || true
            t0=$(date +%s%N); start_matcher
        else
            kill -9 "$gateway"; wait "$gateway" 2>/dev/null || true
            t0=$(date +%s%N); start_gateway
        fi
        figures+=("$(until_accepted "$t0")")
        if [ -n "${ARB_BENCH_HISTORY:-}" ] && [ "$who" = gateway ]; then
            grep -o 'read models rebuilt.*' "$dir/gateway.log" | tail -1 >&2
        fi
    done
    echo "bench-recovery: $who kill -9 to the first accepted order: ${figures[*]} ms" >&2
    echo "bench: recovery_${who}_kill_to_order $(printf '%s\n' "${figures[@]}" | median) ms"
done

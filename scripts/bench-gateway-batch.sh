#!/usr/bin/env bash
# bench-gateway-batch.sh -- the gateway's order batching, before and after
# arb_batch, in the same run: POST /v1/orders orders/s and cross-loop wakes
# per order.
#
#   scripts/bench-gateway-batch.sh [BUILD_DIR]    (scripts/bench-gateway.sh runs it)
#
# Two monoliths (conf.d/monolith.ini without the journal, so order commands
# go over the in-process bus, where batching applies, and without the
# recorder), the same arb-host and plugins except the gateway:
#   base: BUILD_DIR/bench/gateway_base.so (mk/gateway.mk: the commit before
#         arb_batch), which published a loop turn's order commands from
#         inside a delivery of its own gateway.kick.<instance> topic, relying
#         on the bus queueing what a delivery publishes (then unpromised);
#   new:  BUILD_DIR/plugins/gateway.so, which publishes them in arb_batch.
# wrk (1 thread, 64 connections, tests/bench/bench_gateway.lua) against each
# in alternating rounds; around each run the host's /metrics give the orders
# the gateway sent (gateway_orders_total) and the wakes every loop sent to
# another (arb_bus_wakes_total, a write(2) on an eventfd each). Figures are
# medians of ARB_BENCH_ROUNDS (3) runs of ARB_BENCH_SECONDS (10) each.
set -euo pipefail
B=${1:-${ARB_BUILD:-build}}
SECS=${ARB_BENCH_SECONDS:-10}
ROUNDS=${ARB_BENCH_ROUNDS:-3}
BASE_SO=$B/bench/gateway_base.so
if [ ! -e "$BASE_SO" ]; then
    echo "bench-gateway-batch: $BASE_SO is missing (make bench-build; a shallow clone has no base): skipped" >&2
    exit 0
fi
for f in "$B/arb-host" "$B/plugins/gateway.so"; do
    [ -e "$f" ] || { echo "bench-gateway-batch: $f is missing (make bench-build)" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "bench-gateway-batch: wrk is missing (scripts/bench-gateway.sh installs it)" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
        sleep 0.1
    done
    return 1
}

tmp=$(mktemp -d /tmp/arb-bench-gwb.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

confdir=$(cd conf.d && pwd)
awk -v dir="$confdir" '
    /^\[/ { skip = ($0 ~ /^\[plugin recorder\]/) }
    /^include *=/ { sub(/= */, "= " dir "/") }
    !skip' conf.d/monolith.ini > "$tmp/monolith.ini"
KEY_BUY=bench-buyer-key-$RANDOM$RANDOM$RANDOM
KEY_SELL=bench-seller-key-$RANDOM$RANDOM$RANDOM
declare -A port admin
start() { # name gateway.so
    port[$1]=$(free_port)
    admin[$1]=$(free_port)
    while [ "${admin[$1]}" = "${port[$1]}" ]; do admin[$1]=$(free_port); done
    ARB_ADMIN=127.0.0.1:${admin[$1]} ARB_JOURNAL= ARB_BUILD=$B "$B/arb-host" -c "$tmp/monolith.ini" \
        -s "gateway.load=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")" \
        -s "gateway.listen=127.0.0.1:${port[$1]}" \
        -s "gateway.api_key.bench_buyer=$KEY_BUY:900001" \
        -s "gateway.api_key.bench_seller=$KEY_SELL:900002" \
        -s "gateway.rate_limit=0" -s "gateway.max_pending=1000000" \
        > "$tmp/$1.log" 2>&1 &
    pids+=($!)
    wait_port "${port[$1]}" || { echo "bench-gateway-batch: $1 did not start" >&2; tail -20 "$tmp/$1.log" >&2; exit 1; }
}
start base "$BASE_SO"
start new "$B/plugins/gateway.so"

read -r VENUE SYMBOL PRICE QTY < <(curl -s "http://127.0.0.1:${port[new]}/v1/instruments" | python3 -c '
import json, sys
i = json.load(sys.stdin)["instruments"][0]
print(i["venue"], i["symbol"], i["ref_price"], i["min_qty"])')
export ARB_BENCH_VENUE=$VENUE ARB_BENCH_SYMBOL=$SYMBOL ARB_BENCH_PRICE=$PRICE ARB_BENCH_QTY=$QTY
export ARB_BENCH_KEY_BUY=$KEY_BUY ARB_BENCH_KEY_SELL=$KEY_SELL
LUA=tests/bench/bench_gateway.lua

# Each gateway answers an order through its matcher (a host too busy to
# match within the gateway's timeout would measure nothing but that). Just
# after start the monolith's loop 0 works through the agents' first burst,
# and an order can wait longer than the gateway's timeout: a few tries.
for n in base new; do
    for try in 1 2 3 4 5; do
        probe=$(curl -s -X POST "http://127.0.0.1:${port[$n]}/v1/orders" -H "Authorization: Bearer $KEY_BUY" \
            -d "{\"venue\":\"$VENUE\",\"symbol\":\"$SYMBOL\",\"side\":\"buy\",\"price\":\"$PRICE\",\"qty\":\"$QTY\",\"tif\":\"ioc\"}")
        case "$probe" in
            *'"status":"'*) break ;;
        esac
        sleep 1
    done
    case "$probe" in
        *'"status":"'*) ;;
        *) echo "bench-gateway-batch: the $n gateway does not answer orders: $probe" >&2; exit 1 ;;
    esac
done

counts() { # name -> "orders wakes"
    curl -s "http://127.0.0.1:${admin[$1]}/metrics" | awk '
        /^gateway_orders_total\{/ { o += $2 }
        /^arb_bus_wakes_total\{/ { w += $2 }
        END { printf "%d %d\n", o, w }'
}
run() { # name round
    local o0 w0 o1 w1
    read -r o0 w0 < <(counts "$1")
    ARB_BENCH_NAME=gwb_$1 ARB_BENCH_DELAY_MS=0 wrk -t1 -c64 -d"${SECS}s" -s "$LUA" \
        "http://127.0.0.1:${port[$1]}/v1/orders" | awk '$2 ~ /_rps$/' > "$tmp/$1.$2"
    read -r o1 w1 < <(counts "$1")
    awk -v o=$((o1 - o0)) -v w=$((w1 - w0)) -v n="$1" 'BEGIN {
        printf "bench: gwb_%s_orders %d count\nbench: gwb_%s_wakes %d count\n", n, o, n, w
        printf "bench: gwb_%s_wakes_per_order %.4f wakes\n", n, (o > 0 ? w / o : 0) }' >> "$tmp/$1.$2"
}
for n in base new; do # warm-up
    ARB_BENCH_NAME=warmup wrk -t1 -c64 -d2s -s "$LUA" "http://127.0.0.1:${port[$n]}/v1/orders" >/dev/null
done
for r in $(seq 1 "$ROUNDS"); do
    if ((r % 2)); then run base "$r"; run new "$r"; else run new "$r"; run base "$r"; fi
done
median() { # name metric -> median value over the rounds
    cat "$tmp/$1".* | awk -v m="gwb_$1_$2" '$2 == m {print $3}' | sort -g |
        awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'
}
cat "$tmp"/base.* "$tmp"/new.* | grep -E '_orders |_wakes ' >&2
bo=$(median base rps); no=$(median new rps)
bw=$(median base wakes_per_order); nw=$(median new wakes_per_order)
echo "bench: gateway_batch_base_orders_rps $bo req/s"
echo "bench: gateway_batch_new_orders_rps $no req/s"
awk -v a="$no" -v b="$bo" 'BEGIN { printf "bench: gateway_batch_new_vs_base %.3f ratio\n", (b > 0 ? a / b : 0) }'
echo "bench: gateway_batch_base_wakes_per_order $bw wakes"
echo "bench: gateway_batch_new_wakes_per_order $nw wakes"

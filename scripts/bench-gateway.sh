#!/usr/bin/env bash
# bench-gateway.sh -- POST /v1/orders throughput and latency of the running
# monolith, against nginx answering a fixed small JSON on the same machine.
#
#   scripts/bench-gateway.sh [BUILD_DIR]      (make bench runs it)
#
# Starts arb-host with conf.d/monolith.ini on a free loopback port (two bench
# API keys added with -s, the per-key rate limit lifted), an nginx with a
# temporary config on another, the HTTP floor (below) on a third, then wrk
# (1 thread, 64 keep-alive connections, tests/bench/bench_gateway.lua)
# against each in turn, and runs against the gateway and nginx throttled to
# half the gateway's measured rate for the latency figures. Prints `bench:` lines; everything stops when it exits.
# wrk and nginx-light are Debian packages, installed here if missing.
#
# What is compared, so the ratio means something:
# - HTTP workers: nginx runs one worker process because the gateway serves
#   HTTP on one event loop thread (its own; the matcher and the rest of the
#   monolith run on the host's other loop). nginx keeps its fast defaults
#   otherwise: access log off (the gateway keeps no access log either),
#   unlimited keep-alive requests, epoll, sendfile irrelevant for `return`.
# - Work: nginx returns a fixed 70-byte JSON body; the gateway does the whole
#   order path for every request (auth, parse and validate the JSON body,
#   publish to the matcher, wait for its answer, render the order).
# - The HTTP floor (tests/bench/http_floor_plugin.c) is the third server:
#   the gateway's own HTTP layer in arb-host, answering nginx's body at once
#   with no order path. It says how much of nginx's rate evhttp itself
#   leaves on this machine, and so what the ratio above can reach.
# - Same wrk, same Lua script, same 64 connections, runs alternating, each
#   figure the median of ARB_BENCH_ROUNDS runs.
# - CPU per request (server process user+system time from /proc over the run,
#   divided by the requests served) is printed for each: on a shared machine
#   it moves far less than req/s, and it is what bounds req/s when the cores
#   are busy.
# - Half rate: each connection pauses for a random (exponential) time
#   between a response and its next request, mean chosen so the gateway is
#   offered half its measured req/s (one short calibration run corrects for
#   the time the requests themselves take); nginx gets the same pauses.
#
# - The journal: a second monolith, the same but with no journal (-s
#   bus.journal=), is the fourth server in the rotation, so orders/s and
#   p99 with the journal (group commit, the default) and without it come
#   from the same rounds (gateway_journal_vs_off_ratio).
#
# ARB_BENCH_SECONDS (default 10) sets each run's length; ARB_BENCH_OVERRIDES
# adds arb-host -s overrides (e.g. "matcher.thread=1" to put the matcher on
# the gateway's loop); ARB_BENCH_CONFIG and ARB_BENCH_GATEWAY name the config
# and the gateway's instance.
set -euo pipefail
B=${1:-${ARB_BUILD:-build}}
SECS=${ARB_BENCH_SECONDS:-10}
CONF=${ARB_BENCH_CONFIG:-conf.d/monolith.ini}
INSTANCE=${ARB_BENCH_GATEWAY:-gateway}

need=()
command -v wrk >/dev/null || need+=(wrk)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
    echo "bench-gateway: installing ${need[*]}" >&2
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
        || { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

for f in "$B/arb-host" "$B/plugins/gateway.so" "$B/tests/plugins/http_floor.so" "$CONF"; do
    [ -e "$f" ] || { echo "bench-gateway: $f is missing (build first: make all)" >&2; exit 1; }
done

# How busy the machine was with other work before this benchmark started
# (1-minute load average): on two cores, above ~1 the figures below are
# shared ones.
awk '{ printf "bench: gateway_bench_machine_load %.2f load\n", $1 }' /proc/loadavg

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
        sleep 0.1
    done
    return 1
}

tmp=$(mktemp -d /tmp/arb-bench-gw.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

# ---- nginx: one worker, like the gateway's one HTTP event loop ----
nport=$(free_port)
mkdir -p "$tmp/nginx"
cat > "$tmp/nginx/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$nport;
        location / {
            default_type application/json;
            return 200 '{"order_id":"1","status":"filled","filled_qty":"0.001","fills":[]}';
        }
    }
}
NGX
"$NGINX" -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx" &
pids+=($!)

# ---- the HTTP floor: the gateway's HTTP layer answering at once ----
# tests/bench/http_floor_plugin.c in its own arb-host, on loop 1 like the
# gateway: evhttp set up as the gateway sets it up, the fixed body nginx
# answers, and no order path at all (no auth, JSON, matcher or read model).
fport=$(free_port)
while [ "$fport" = "$nport" ]; do fport=$(free_port); done
cat > "$tmp/floor.ini" <<FLOOR
[host]
id = http-floor
admin = 127.0.0.1:$(free_port)
threads = 2
[plugin http_floor]
load = $(cd "$B" && pwd)/tests/plugins/http_floor.so
thread = 1
listen = 127.0.0.1:$fport
FLOOR
"$B/arb-host" -c "$tmp/floor.ini" > "$tmp/floor.log" 2>&1 &
pids+=($!)
echo $! > "$tmp/floor.pid"

# ---- the monolith, with two bench accounts on the gateway ----
# Without a database ($ARB_PG_DSN unset) the recorder is left out: one that
# cannot write would hold back the matcher's output and measure PostgreSQL's
# absence instead of the order path.
confdir=$(cd "$(dirname "$CONF")" && pwd)
if [ -z "${ARB_PG_DSN:-}" ]; then
    awk -v dir="$confdir" '
        /^\[/ { skip = ($0 ~ /^\[plugin recorder\]/) }
        /^include *=/ { sub(/= */, "= " dir "/") }
        !skip' "$CONF" > "$tmp/monolith.ini"
    CONF=$tmp/monolith.ini
fi
# Not a port picked above: its server may not have bound it yet, and with
# SO_REUSEPORT two servers would share it (and wrk's connections) silently.
gport=$(free_port)
while [ "$gport" = "$fport" ] || [ "$gport" = "$nport" ]; do gport=$(free_port); done
KEY_BUY=bench-buyer-key-$RANDOM$RANDOM$RANDOM
KEY_SELL=bench-seller-key-$RANDOM$RANDOM$RANDOM
# A journal of its own (never the user's var/journal), or none.
monolith() { # port journal-dir name
    ARB_ADMIN=127.0.0.1:$(free_port) ARB_JOURNAL=$2 ARB_BUILD=$B "$B/arb-host" -c "$CONF" \
        -s "$INSTANCE.listen=127.0.0.1:$1" \
        -s "$INSTANCE.api_key.bench_buyer=$KEY_BUY:900001" \
        -s "$INSTANCE.api_key.bench_seller=$KEY_SELL:900002" \
        -s "$INSTANCE.rate_limit=0" -s "$INSTANCE.max_pending=1000000" \
        $(for o in ${ARB_BENCH_OVERRIDES:-}; do printf -- '-s %s ' "$o"; done) \
        > "$tmp/$3.log" 2>&1 &
    pids+=($!)
    echo $! > "$tmp/$3.pid"
}
monolith "$gport" "$tmp/journal" monolith
oport=$(free_port)
while [ "$oport" = "$gport" ] || [ "$oport" = "$fport" ] || [ "$oport" = "$nport" ]; do oport=$(free_port); done
monolith "$oport" "" monolith_nojournal

wait_port "$nport" || { echo "bench-gateway: nginx did not start" >&2; cat "$tmp/nginx/error.log" >&2; exit 1; }
wait_port "$gport" || { echo "bench-gateway: the monolith did not start" >&2; tail -20 "$tmp/monolith.log" >&2; exit 1; }
wait_port "$fport" || { echo "bench-gateway: the HTTP floor did not start" >&2; tail -20 "$tmp/floor.log" >&2; exit 1; }
wait_port "$oport" || { echo "bench-gateway: the monolith without a journal did not start" >&2; tail -20 "$tmp/monolith_nojournal.log" >&2; exit 1; }

# The first instrument, at its reference price (inside any price band), for
# the smallest quantity.
read -r VENUE SYMBOL PRICE QTY < <(curl -s "http://127.0.0.1:$gport/v1/instruments" | python3 -c '
import json, sys
i = json.load(sys.stdin)["instruments"][0]
print(i["venue"], i["symbol"], i["ref_price"], i["min_qty"])')
export ARB_BENCH_VENUE=$VENUE ARB_BENCH_SYMBOL=$SYMBOL ARB_BENCH_PRICE=$PRICE ARB_BENCH_QTY=$QTY
export ARB_BENCH_KEY_BUY=$KEY_BUY ARB_BENCH_KEY_SELL=$KEY_SELL
LUA=tests/bench/bench_gateway.lua

# A short warm-up, and a check that orders really go through the matcher.
probe=$(curl -s -X POST "http://127.0.0.1:$gport/v1/orders" -H "Authorization: Bearer $KEY_BUY" \
    -d "{\"venue\":\"$VENUE\",\"symbol\":\"$SYMBOL\",\"side\":\"buy\",\"price\":\"$PRICE\",\"qty\":\"$QTY\",\"tif\":\"ioc\"}")
case "$probe" in
    *'"status":"'*) ;;
    *) echo "bench-gateway: the gateway does not answer orders: $probe" >&2; exit 1 ;;
esac
ARB_BENCH_NAME=warmup wrk -t1 -c64 -d2s -s "$LUA" "http://127.0.0.1:$gport/v1/orders" >/dev/null
ARB_BENCH_NAME=warmup wrk -t1 -c64 -d2s -s "$LUA" "http://127.0.0.1:$oport/v1/orders" >/dev/null

# Each figure is the median of ROUNDS runs, gateway and nginx alternating,
# so a burst of other work on this shared machine moves one run, not the
# reported figure or the ratio.
ROUNDS=${ARB_BENCH_ROUNDS:-3}
gpids=$(cat "$tmp/monolith.pid" 2>/dev/null || true)
opids=$(cat "$tmp/monolith_nojournal.pid" 2>/dev/null || true)
cpu_ticks() { # pids... -> user+system clock ticks so far
    local t=0 p
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    done
    echo "$t"
}
run() { # name port delay_ms round pids...
    local name=$1 port=$2 delay=$3 round=$4
    shift 4
    local t0 t1
    t0=$(cpu_ticks "$@")
    ARB_BENCH_NAME=$name ARB_BENCH_DELAY_MS=$delay wrk -t1 -c64 -d"${SECS}s" -s "$LUA" \
        "http://127.0.0.1:$port/v1/orders" | grep '^bench:' > "$tmp/$name.$round"
    t1=$(cpu_ticks "$@")
    awk -v n="$name" -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v s="$SECS" '
        $2 == n "_rps" { rps = $3 }
        END { if (rps > 0) printf "bench: %s_cpu_per_request %.1f us\n", n, t / hz * 1e6 / (rps * s) }' \
        "$tmp/$name.$round" >> "$tmp/$name.$round"
}
median_round() { # name metric-suffix -> the file of the round with the median value
    for f in "$tmp/$1".*; do
        printf '%s %s\n' "$(awk -v m="bench: $1_$2" '$1" "$2 == m {print $3}' "$f")" "$f"
    done | sort -g | awk '{a[NR] = $2} END {print a[int((NR + 1) / 2)]}'
}
npids=$(pgrep -P "$(cat "$tmp/nginx/nginx.pid")" | tr '\n' ' ')
fpids=$(cat "$tmp/floor.pid")
# Each round starts with the next server, so whatever running first or
# last does to a run does not always land on the same one.
for r in $(seq 1 "$ROUNDS"); do
    for i in 0 1 2 3; do
        case $(((r + i) % 4)) in
            1) run gateway_orders "$gport" 0 "$r" $gpids ;;
            2) run nginx_fixed_json "$nport" 0 "$r" $npids ;;
            3) run http_floor "$fport" 0 "$r" $fpids ;;
            0) run gateway_orders_nojournal "$oport" 0 "$r" $opids ;;
        esac
    done
done
gfile=$(median_round gateway_orders rps)
nfile=$(median_round nginx_fixed_json rps)
ffile=$(median_round http_floor rps)
ofile=$(median_round gateway_orders_nojournal rps)
cat "$gfile" "$nfile" "$ffile" "$ofile"
g=$(awk '/^bench: gateway_orders_rps/ {print $3}' "$gfile")
n=$(awk '/^bench: nginx_fixed_json_rps/ {print $3}' "$nfile")
f=$(awk '/^bench: http_floor_rps/ {print $3}' "$ffile")
ratio() { awk -v a="$2" -v b="$3" -v n="$1" 'BEGIN { printf "bench: %s %.3f ratio\n", n, (b > 0 ? a / b : 0) }'; }
ratio gateway_vs_nginx_ratio "$g" "$n"
# The journal's cost: the same monolith with and without it, same rounds.
o=$(awk '/^bench: gateway_orders_nojournal_rps/ {print $3}' "$ofile")
ratio gateway_journal_vs_off_ratio "$g" "$o"
# The floor: how much of nginx's rate evhttp in arb-host reaches with no
# order path at all, and how much of that the order path leaves.
ratio http_floor_vs_nginx_ratio "$f" "$n"
ratio gateway_vs_http_floor_ratio "$g" "$f"
# The same comparison in CPU time per request, nginx's over the gateway's:
# what the req/s ratio tends to when the server's own CPU is the only limit
# (on a shared machine it moves far less than req/s does).
gc=$(awk '/_cpu_per_request/ {print $3}' "$gfile")
nc=$(awk '/_cpu_per_request/ {print $3}' "$nfile")
awk -v g="$gc" -v n="$nc" 'BEGIN { if (g > 0) printf "bench: gateway_vs_nginx_cpu_ratio %.3f ratio\n", n / g }'
echo "bench: nginx_workers 1 count"

# Latency at half the measured rate. A connection's cycle is its pause plus
# the request's own time, so a first guess (64 connections x 1000 / rate ms)
# offers less than half: one short run measures the difference and the
# pause is corrected by it.
target=$(awk -v g="$g" 'BEGIN { print g / 2 }')
delay=$(awk -v t="$target" 'BEGIN { printf "%.3f", 64 * 1000 / t }')
SECS_FULL=$SECS
SECS=3
run calibrate "$gport" "$delay" 1
got=$(awk '/_rps/ {print $3}' "$tmp/calibrate.1")
delay=$(awk -v t="$target" -v d="$delay" -v got="$got" 'BEGIN {
    o = (got > 0 ? 64 * 1000 / got - d : 0); d2 = 64 * 1000 / t - o
    printf "%.3f", (d2 < 0.05 ? 0.05 : d2) }')
SECS=$SECS_FULL
for r in $(seq 1 "$ROUNDS"); do
    run gateway_orders_half_rate "$gport" "$delay" "$r" $gpids
    run nginx_fixed_json_half_rate "$nport" "$delay" "$r" $npids
    run gateway_orders_nojournal_half_rate "$oport" "$delay" "$r" $opids
done
awk -v t="$target" 'BEGIN { printf "bench: half_rate_target %.0f req/s\n", t }'
cat "$(median_round gateway_orders_half_rate p99)"
cat "$(median_round gateway_orders_nojournal_half_rate p99)"
cat "$(median_round nginx_fixed_json_half_rate p99)"

# The gateway's order batching before and after arb_batch, same run: two
# monoliths of its own, once the servers above are stopped.
cleanup
trap - EXIT
scripts/bench-gateway-batch.sh "$B"

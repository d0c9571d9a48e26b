#!/usr/bin/env bash
# report_e2e.sh -- the live A/B workflow and the report page, end to end:
# the monolith (conf.d/monolith.ini) with its recorder on a throwaway
# PostgreSQL, an agent hot-reloaded while it trades, then `arbctl report
# --split mm_xa --html` into the gateway's runs_dir, and the page opened from
# /runs/ in headless Chromium: every agent, venue and chart drawn, and the
# before/after rows of the reload. Screenshot: BUILD_DIR/e2e/report.png (and
# docs/report.png for the plain build).
#
#   tests/e2e/report_e2e.sh [BUILD_DIR]      (re-runs itself under scripts/with-pg.sh)
#
# Exit 0 pass, 1 fail, 77 skip (no chromium).
set -uo pipefail
B=${1:-${ARB_BUILD:-build}}
if [ -z "${ARB_WITH_PG:-}" ]; then
    exec scripts/with-pg.sh "$0" "$B"
fi
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
    echo "report_e2e: SKIP: chromium is not installed (Debian package chromium)"
    exit 77
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dir=$B/e2e/report
rm -rf "$dir" && mkdir -p "$dir/runs"
createdb arb_report_e2e || exit 1
export ARB_PG_DSN="dbname=arb_report_e2e"
export ARB_HTTP=127.0.0.1:$(free_port) ARB_ADMIN=127.0.0.1:$(free_port)
export ARB_JOURNAL=$dir/journal ARB_RUNS_DIR=$dir/runs ARB_BUILD=$B
"$B/arb-host" -c conf.d/monolith.ini -s host.admin_token_file="$dir/admin.token" > "$dir/monolith.log" 2>&1 &
host=$!
trap 'kill $host 2>/dev/null; wait $host 2>/dev/null' EXIT
up=0
for _ in $(seq 1 150); do
    if curl -s -o /dev/null "http://$ARB_HTTP/v1/instruments"; then up=1; break; fi
    kill -0 $host 2>/dev/null || break
    sleep 0.1
done
[ $up -eq 1 ] || { echo "report_e2e: the monolith did not start"; tail -20 "$dir/monolith.log"; exit 1; }
export ARB_ADMIN_TOKEN=$(cat "$dir/admin.token")
sleep 4
# B: the same strategy, reloaded (a new build would do the same; --force
# reloads this one) while the market runs.
"$B/arbctl" -a "$ARB_ADMIN" get /healthz > /dev/null || exit 1
curl -sf -X POST -H "Authorization: Bearer $ARB_ADMIN_TOKEN" \
    "http://$ARB_ADMIN/plugins/mm_xa/reload?force=1" > "$dir/reload.json" ||
    { echo "report_e2e: the reload failed"; cat "$dir/reload.json"; exit 1; }
sleep 4
# The figures before and after the reload, from PostgreSQL, into the page.
"$B/arbctl" -c conf.d/monolith.ini report --bucket 1 --split mm_xa > "$dir/report.txt" || exit 1
"$B/arbctl" -c conf.d/monolith.ini report --bucket 1 --split mm_xa --html "$dir/runs/latest.html" || exit 1
cat "$dir/report.txt"
grep -q 'before split' "$dir/report.txt" || { echo "report_e2e: no split in the report"; exit 1; }
index=$(curl -sf "http://$ARB_HTTP/runs/") || { echo "report_e2e: /runs/ did not answer"; exit 1; }
case $index in *latest.html*) ;; *) echo "report_e2e: /runs/ does not list latest.html"; exit 1 ;; esac
python3 tests/e2e/report_check.py "http://$ARB_HTTP/runs/latest.html" "$B/e2e/report.png" --split
rc=$?
if [ $rc -eq 0 ] && [ "$B" = build ] && [ -d docs ]; then
    cp "$B/e2e/report.png" docs/report.png
fi
exit $rc

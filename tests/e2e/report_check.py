#!/usr/bin/env python3
"""report_check.py -- opens a run report page (arbctl report --html, served
by the gateway under /runs/) in headless Chromium and checks what it drew:
a row per agent, a row per venue, points in every chart, and the rows of
the split (before / after a hot reload) when --split is given. Saves a
screenshot. Exit 0 pass, 1 fail, 77 no Chromium. Uses dashboard_check.py's
DevTools client.

usage: report_check.py URL SCREENSHOT.png [--min-agents N] [--split]
"""
import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dashboard_check import Page, find_chromium  # noqa: E402

PROBE = """(() => window.report ? {agents: window.report.agents(), venues: window.report.venues(),
  chartPoints: window.report.chartPoints(),
  splitRows: document.querySelectorAll('#agents tr.split').length,
  run: document.getElementById('run').textContent} : null)()"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("screenshot")
    ap.add_argument("--min-agents", type=int, default=3)
    ap.add_argument("--split", action="store_true")
    args = ap.parse_args()
    chromium = find_chromium()
    if not chromium:
        print("report: chromium is not installed", file=sys.stderr)
        return 77
    profile = tempfile.mkdtemp(prefix="arb-report-")
    proc = subprocess.Popen(
        [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--user-data-dir=" + profile,
         "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
         "--window-size=1440,1100", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = os.path.join(profile, "DevToolsActivePort")
        deadline = time.time() + 30
        while not os.path.exists(port_file) or os.path.getsize(port_file) == 0:
            if time.time() > deadline or proc.poll() is not None:
                print("report: chromium did not open its debugging port", file=sys.stderr)
                return 1
            time.sleep(0.1)
        port = int(open(port_file).read().split()[0])
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        page = Page(next(t for t in targets if t.get("type") == "page")["webSocketDebuggerUrl"])
        page.call("Page.enable")
        page.call("Runtime.enable")
        page.call("Page.navigate", url=args.url)
        c = None
        deadline = time.time() + 20
        while time.time() < deadline:
            c = page.evaluate(PROBE)
            if c and c["agents"] >= args.min_agents and all(p >= 2 for p in c["chartPoints"]):
                break
            time.sleep(0.3)
        time.sleep(0.5)
        shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        os.makedirs(os.path.dirname(os.path.abspath(args.screenshot)), exist_ok=True)
        with open(args.screenshot, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        print("report: " + json.dumps(c))
        ok = (c and c["agents"] >= args.min_agents and c["venues"] >= 2 and c["chartPoints"]
              and all(p >= 2 for p in c["chartPoints"]) and (not args.split or c["splitRows"] >= 2))
        if not ok:
            print("report: FAILED: the page did not draw every agent, venue and chart"
                  + (" with the split" if args.split else ""), file=sys.stderr)
            return 1
        print("report: OK")
        return 0
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

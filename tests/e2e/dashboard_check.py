#!/usr/bin/env python3
"""dashboard_check.py -- opens the gateway's dashboard in headless Chromium
and checks what it rendered from live data.

Drives Debian's `chromium` through the DevTools protocol on a local
--remote-debugging-port, with a minimal WebSocket client from the standard
library (no npm, no pip). Waits until the page shows rows in every venue's
book, points in every price chart and in the spread chart, trades on the
tape and accounts on the PnL board, then saves a screenshot. Exit status 0
when every check passed, 1 when one failed (with the page's counts), 77
when Chromium is not installed (the caller may skip).

usage: dashboard_check.py URL SCREENSHOT.png [--timeout S] [--min-points N]
                          [--min-trades N] [--min-accounts N]
"""
import argparse
import base64
import json
import re
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request


class WebSocket:
    """Just enough RFC 6455 for the DevTools protocol: text frames, client
    masking, fragmented and long messages, ping replies."""

    def __init__(self, url):
        assert url.startswith("ws://")
        hostport, path = url[5:].split("/", 1)
        host, port = hostport.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n")
        self.sock.sendall(req.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise RuntimeError("websocket handshake: connection closed")
            head += chunk
        head, self.buf = head.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise RuntimeError("websocket handshake refused: " + head.decode(errors="replace"))

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise RuntimeError("websocket closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, text):
        data = text.encode()
        mask = os.urandom(4)
        n = len(data)
        if n < 126:
            hdr = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 65536:
            hdr = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            hdr = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(hdr + mask + masked)

    def recv(self):
        message = b""
        while True:
            b0, b1 = self._read(2)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8))[0]
            payload = self._read(n)
            if opcode == 0x9:  # ping
                self.sock.sendall(struct.pack("!BB", 0x8A, 0x80 | len(payload)) + b"\0\0\0\0" + payload)
                continue
            if opcode == 0x8:
                raise RuntimeError("websocket closed by the browser")
            message += payload
            if b0 & 0x80:
                return message.decode()


class Page:
    def __init__(self, ws_url):
        self.ws = WebSocket(ws_url)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def evaluate(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        if "exceptionDetails" in r:
            return None
        return r.get("result", {}).get("value")


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


PROBE = """(() => {
  if (!window.dashboard) return null;
  const d = window.dashboard;
  return {books: document.querySelectorAll('.book').length, booksWithRows: d.booksWithRows(),
          bookRows: d.bookRows(), chartPoints: d.chartPoints(), spreadPoints: d.spreadPoints(),
          tradeRows: d.tradeRows(), pnlRows: d.pnlRows(), events: d.events(),
          positions: d.positions(), connecting: d.connecting(),
          names: [...document.querySelectorAll('#pnl tbody tr.account td:first-child')].map((td) => td.textContent),
          status: document.getElementById('status').textContent};
})()"""


def satisfied(c, args):
    return (c and c["books"] > 0 and c["booksWithRows"] == c["books"]
            and all(p >= args.min_points for p in c["chartPoints"])
            and all(p >= args.min_points for p in c["spreadPoints"])
            and c["tradeRows"] >= args.min_trades and c["pnlRows"] >= args.min_accounts
            and not c["connecting"] and c["status"] == "live"
            # Agents by the names of their config sections, with no gateway config.
            and any(n != "-" for n in c["names"])
            # Positions name their instrument: "XA:BTCUSD -1.710", not "XA -1.710".
            and all(re.fullmatch(r"(\S+:\S+ -?[0-9.]+ *)+", p) for p in c["positions"] if p))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("screenshot")
    ap.add_argument("--timeout", type=float, default=40)
    ap.add_argument("--min-points", type=int, default=5)
    ap.add_argument("--min-trades", type=int, default=3)
    ap.add_argument("--min-accounts", type=int, default=1)
    args = ap.parse_args()

    chromium = find_chromium()
    if not chromium:
        print("dashboard: chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 77
    profile = tempfile.mkdtemp(prefix="arb-dash-")
    proc = subprocess.Popen(
        [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
         "--user-data-dir=" + profile, "--remote-debugging-port=0",
         "--remote-debugging-address=127.0.0.1", "--window-size=1440,1100", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = os.path.join(profile, "DevToolsActivePort")
        deadline = time.time() + 30
        while not os.path.exists(port_file) or os.path.getsize(port_file) == 0:
            if time.time() > deadline or proc.poll() is not None:
                print("dashboard: chromium did not open its debugging port", file=sys.stderr)
                return 1
            time.sleep(0.1)
        port = int(open(port_file).read().split()[0])
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        page_target = next(t for t in targets if t.get("type") == "page")
        page = Page(page_target["webSocketDebuggerUrl"])
        page.call("Page.enable")
        page.call("Runtime.enable")
        # Before any live data the page says it is connecting: the stream
        # blocked, the page loaded, the notice must be on screen.
        page.call("Network.enable")
        page.call("Network.setBlockedURLs", urls=["*/v1/stream*"])
        page.call("Page.navigate", url=args.url)
        before = None
        deadline = time.time() + 15
        while time.time() < deadline:
            before = page.evaluate(PROBE)
            if before and before["books"] > 0:
                break
            time.sleep(0.2)
        if not before or not before["connecting"]:
            print("dashboard: FAILED: with no live data yet the page does not say 'connecting': "
                  + json.dumps(before), file=sys.stderr)
            return 1
        page.call("Network.setBlockedURLs", urls=[])
        page.call("Page.navigate", url=args.url)

        counts = None
        deadline = time.time() + args.timeout
        while time.time() < deadline:
            counts = page.evaluate(PROBE)
            if satisfied(counts, args):
                break
            time.sleep(0.5)
        time.sleep(1.0)  # let one more animation frame land before the picture
        shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        os.makedirs(os.path.dirname(os.path.abspath(args.screenshot)), exist_ok=True)
        with open(args.screenshot, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        final = page.evaluate(PROBE) or counts
        print("dashboard: " + json.dumps(final))
        print("dashboard: screenshot " + args.screenshot)
        if not satisfied(counts, args):
            print(f"dashboard: FAILED: not every panel showed live data within {args.timeout}s "
                  f"(need rows in every book, >= {args.min_points} points per chart, "
                  f">= {args.min_trades} trades, >= {args.min_accounts} accounts)", file=sys.stderr)
            return 1
        print("dashboard: OK")
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

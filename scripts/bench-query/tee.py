#!/usr/bin/env python3
"""remote_write tee: forwards every POST body unchanged to several receivers,
so they ingest byte-identical data (same series, values and timestamps), and
paces requests so that SERIES series get one sample per INTERVAL seconds.

Usage: tee.py LISTEN_PORT SAMPLES_PER_SECOND BATCH URL [URL ...]
Answers 204 when every receiver answered 2xx, else the first failing status.
"""
import http.client
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port = int(sys.argv[1])
rate = float(sys.argv[2])  # samples/s to let through (0 = unpaced)
batch = int(sys.argv[3])
targets = [urllib.parse.urlsplit(u) for u in sys.argv[4:]]
gap = batch / rate if rate > 0 else 0.0
lock = threading.Lock()
next_slot = [time.monotonic()]
local = threading.local()
FWD = ("Content-Type", "Content-Encoding", "X-Prometheus-Remote-Write-Version")


def conn(i, t):
    cs = getattr(local, "conns", None)
    if cs is None:
        cs = local.conns = {}
    if i not in cs:
        cs[i] = http.client.HTTPConnection(t.hostname, t.port, timeout=60)
    return cs[i]


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if gap:
            with lock:
                slot = max(next_slot[0], time.monotonic())
                next_slot[0] = slot + gap
            d = slot - time.monotonic()
            if d > 0:
                time.sleep(d)
        hdrs = {k: self.headers[k] for k in FWD if self.headers.get(k)}
        status = 204
        for i, t in enumerate(targets):
            for attempt in (0, 1):
                try:
                    c = conn(i, t)
                    c.request("POST", t.path, body=body, headers=hdrs)
                    r = c.getresponse()
                    r.read()
                    if not 200 <= r.status < 300 and status == 204:
                        status = r.status
                        sys.stderr.write(f"{t.netloc}: {r.status}\n")
                    break
                except (OSError, http.client.HTTPException) as e:
                    local.conns.pop(i, None)
                    if attempt == 1:
                        status = 502
                        sys.stderr.write(f"{t.netloc}: {e}\n")
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()

#!/usr/bin/env python3
"""Provider sink of scripts/chaos.sh: a small HTTP server standing in for the provider.

It answers by recipient prefix, like the scripted provider of tests/it/helpers.rs:
  reject...   400 (permanent)
  flakyN...   500 for attempts 1..N (X-Attempt), then 200
  anything    200 {"id": "prov-<notification id>"}
In --mode flap it first injects faults: 30% of requests answer 503 and 5% hang past the
provider timeout (then answer 503 to a client that has given up). At most --flap-cap
faults are injected per notification, so that an attempt budget above that cap plus the
scripted failures always ends in SENT: the check stays deterministic while ~35% of the
requests still fail.

Every request is logged as one tab-separated line, written before the answer:
  monotonic_time  notification_id  attempt  recipient  status  outcome
where outcome is ok, reject, flaky, flap503 or hang. The runner counts a delivery as
successful only on status 200.
"""

import argparse
import json
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--mode", choices=["normal", "flap"], default="normal")
    ap.add_argument("--latency-ms", type=float, default=15.0, help="mean answer latency (jittered)")
    ap.add_argument("--flap-503", type=float, default=0.30)
    ap.add_argument("--flap-hang", type=float, default=0.05)
    ap.add_argument("--hang-s", type=float, default=3.0, help="how long a hang lasts (past PROVIDER_TIMEOUT)")
    ap.add_argument("--flap-cap", type=int, default=6)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    log = open(args.log, "a", buffering=1, encoding="utf-8")
    lock = threading.Lock()
    rng = random.Random(args.seed)
    injected: dict[str, int] = {}

    def record(nid: str, attempt: int, to: str, status: int, outcome: str) -> None:
        with lock:
            log.write(f"{time.monotonic():.6f}\t{nid}\t{attempt}\t{to}\t{status}\t{outcome}\n")

    def decide(nid: str) -> str | None:
        if args.mode != "flap":
            return None
        with lock:
            if injected.get(nid, 0) >= args.flap_cap:
                return None
            r = rng.random()
            fault = "flap503" if r < args.flap_503 else "hang" if r < args.flap_503 + args.flap_hang else None
            if fault:
                injected[nid] = injected.get(nid, 0) + 1
            return fault

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):  # quiet
            pass

        def answer(self, status: int, body: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if body.startswith(b"{") else "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                # The client gave up (timeout) and closed the connection.
                self.close_connection = True

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                to = str(json.loads(raw).get("to", ""))
            except (ValueError, AttributeError):
                to = ""
            nid = self.headers.get("X-Notification-Id", "")
            try:
                attempt = int(self.headers.get("X-Attempt", "0"))
            except ValueError:
                attempt = 0
            if args.latency_ms > 0:
                time.sleep(random.uniform(0.5, 1.5) * args.latency_ms / 1000.0)
            fault = decide(nid)
            if fault == "flap503":
                record(nid, attempt, to, 503, "flap503")
                return self.answer(503, b"flapping")
            if fault == "hang":
                record(nid, attempt, to, 503, "hang")
                time.sleep(args.hang_s)
                self.close_connection = True
                return self.answer(503, b"too late")
            if to.startswith("reject"):
                record(nid, attempt, to, 400, "reject")
                return self.answer(400, b"invalid recipient")
            if to.startswith("flaky"):
                digits = ""
                for ch in to[5:]:
                    if not ch.isdigit():
                        break
                    digits += ch
                if attempt <= int(digits or "1"):
                    record(nid, attempt, to, 500, "flaky")
                    return self.answer(500, b"try later")
            record(nid, attempt, to, 200, "ok")
            return self.answer(200, json.dumps({"id": f"prov-{nid}"}).encode())

        def do_GET(self):
            self.answer(200, b'{"status":"ok"}')

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256

    server = Server(("127.0.0.1", args.port), Handler)
    print(f"sink listening on 127.0.0.1:{args.port} mode={args.mode}", file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""An OTLP/HTTP trace receiver for the tests: decodes each POST /v1/traces with the official
protobuf definitions (opentelemetry-proto, from PyPI; scripts/test.sh installs it) and writes
one JSON line per span to stdout, after a first line {"port": N}.

With --tls CERT KEY it speaks HTTPS only, with that certificate. With --discard it answers
every export at once without decoding it, writing only its size (a stand-in collector for
benchmarks, whose cost should not be ours).

Each span line: trace_id, span_id, parent_span_id (hex, "" for a root), name, kind, the
attributes as a flat object, status_code, links ([trace_id, span_id] pairs), and the
resource's service.name, and start_ns/end_ns (Unix nanoseconds: the per-step latency
trace of docs/PERFORMANCE.md is read from them).
"""

import http.server
import json
import ssl
import sys
import threading

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

lock = threading.Lock()
DISCARD = "--discard" in sys.argv[1:]


def value(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        if DISCARD:
            sys.stdout.write(json.dumps({"export_bytes": len(body)}) + "\n")
            sys.stdout.flush()
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()
            return
        if self.path != "/v1/traces" or self.headers.get("content-type") != "application/x-protobuf":
            self.send_response(404)
            self.end_headers()
            return
        request = ExportTraceServiceRequest.FromString(body)
        with lock:
            for rs in request.resource_spans:
                resource = {a.key: value(a.value) for a in rs.resource.attributes}
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        line = {
                            "trace_id": s.trace_id.hex(),
                            "span_id": s.span_id.hex(),
                            "parent_span_id": s.parent_span_id.hex(),
                            "name": s.name,
                            "kind": s.kind,
                            "attributes": {a.key: value(a.value) for a in s.attributes},
                            "status_code": s.status.code,
                            "links": [[l.trace_id.hex(), l.span_id.hex()] for l in s.links],
                            "service": resource.get("service.name"),
                            "start_ns": s.start_time_unix_nano,
                            "end_ns": s.end_time_unix_nano,
                        }
                        sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()
        payload = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    args = sys.argv[1:]
    if "--tls" in args:
        # --tls CERT KEY: HTTPS only, with this certificate (a test CA's).
        cert, key = args[args.index("--tls") + 1 : args.index("--tls") + 3]
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    sys.stdout.write(json.dumps({"port": server.server_address[1]}) + "\n")
    sys.stdout.flush()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # Ends with the test: it closes our stdin (or kills us).
    sys.stdin.read()


if __name__ == "__main__":
    main()

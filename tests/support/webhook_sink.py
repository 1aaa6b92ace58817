#!/usr/bin/env python3
"""A webhook receiver for tests (Python 3 standard library only).

Stores every request as one JSON file {"method", "path", "headers" (lowercase names),
"body" (text), "received_at" (Unix seconds, float)} named <seq>.json in DIR (written to a
temporary name, then renamed, so a reader never sees half a file), and answers by path:

    /ok             200 {"ok": true}
    /status/<code>  that status (100..599) with a short body
    /slow/<ms>      waits ms milliseconds, then 200
    /redirect       302 to /ok (upmon-mailer must not follow it)
    /big/<bytes>    200 with a body of that many bytes (at most 16 MiB)
    anything else   404

Command line (binds 127.0.0.1 unless --host says otherwise; --port 0 picks a free port, which
--port-file receives once the server listens):

    webhook_sink.py --port P --dir D [--host H] [--port-file F]

Importable:

    from webhook_sink import WebhookSink, verify_signature
    sink = WebhookSink(directory).start()       # thread, free port in sink.port
    ... sink.url("/ok") ... sink.requests()      # the stored requests, oldest first
    sink.stop()
    verify_signature(secret, req["headers"], req["body"])   # True when the signature is valid
"""
import argparse
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BODY_MAX = 1 << 20


def signature(secret, timestamp, body):
    """The X-Upmon-Signature value of body (bytes or str) sent at timestamp (str or int)."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    msg = str(timestamp).encode("ascii") + b"." + body
    return "sha256=" + hmac.new(secret, msg, hashlib.sha256).hexdigest()


def verify_signature(secret, headers, body, tolerance=None, now=None):
    """True when headers (lowercase names) carry a valid X-Upmon-Signature of body for secret.
    With tolerance (seconds), X-Upmon-Timestamp must also be within that of now (replays)."""
    ts = headers.get("x-upmon-timestamp")
    got = headers.get("x-upmon-signature")
    if ts is None or got is None or not ts.isdigit():
        return False
    if tolerance is not None:
        now = time.time() if now is None else now
        if abs(now - int(ts)) > tolerance:
            return False
    return hmac.compare_digest(signature(secret, ts, body), got)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "webhook-sink/1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def _store(self, body):
        srv = self.server
        with srv.lock:
            srv.seq += 1
            seq = srv.seq
        doc = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("utf-8", errors="replace"),
            "received_at": time.time(),
        }
        path = os.path.join(srv.directory, "%06d.json" % seq)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(doc, f)
        os.rename(path + ".tmp", path)

    def _answer(self, status, body, extra=None):
        data = body.encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _handle(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(n, BODY_MAX)) if n > 0 else b""
        self._store(body)
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        if parts == ["ok"]:
            self._answer(200, '{"ok": true}')
        elif len(parts) == 2 and parts[0] == "status" and parts[1].isdigit() \
                and 100 <= int(parts[1]) <= 599:
            code = int(parts[1])
            self._answer(code, '{"status": %d}' % code)
        elif len(parts) == 2 and parts[0] == "slow" and parts[1].isdigit():
            time.sleep(int(parts[1]) / 1000.0)
            self._answer(200, '{"ok": true, "slow": true}')
        elif len(parts) == 2 and parts[0] == "big" and parts[1].isdigit() \
                and int(parts[1]) <= 16 << 20:
            self._answer(200, "x" * int(parts[1]))
        elif parts == ["redirect"]:
            self._answer(302, '{"redirect": "/ok"}', {"Location": "/ok"})
        else:
            self._answer(404, '{"error": "not found"}')

    do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


class WebhookSink:
    """The sink as a thread of the calling process."""

    def __init__(self, directory, port=0, host="127.0.0.1"):
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self.httpd = ThreadingHTTPServer((host, port), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.directory = directory
        self.httpd.lock = threading.Lock()
        self.httpd.seq = 0
        self.host = host
        self.port = self.httpd.server_address[1]
        self.thread = None

    def url(self, path="/ok"):
        return "http://%s:%d%s" % (self.host, self.port, path)

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def requests(self):
        return read_requests(self.directory)


def read_requests(directory):
    """The requests stored in directory, oldest first."""
    out = []
    for name in sorted(os.listdir(directory)):
        if name.endswith(".json"):
            with open(os.path.join(directory, name), encoding="utf-8") as f:
                out.append(json.load(f))
    return out


def main(argv):
    ap = argparse.ArgumentParser(description="webhook receiver for upmon tests")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port-file")
    a = ap.parse_args(argv)
    sink = WebhookSink(a.dir, a.port, a.host)
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write("%d\n" % sink.port)
        os.rename(a.port_file + ".tmp", a.port_file)
    print("webhook_sink: listening on %s:%d" % (a.host, sink.port), flush=True)
    try:
        sink.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""Black-box fuzzer for a live upmon-gateway (R7: "the API answers 4xx with a JSON error,
never 5xx, never a hang"). Python 3 standard library only. Runs and findings: api_fuzz.md.

    # a gateway of its own (needs the stack: run under tests/support/with-stack)
    tests/support/with-stack api_fuzz tests/fuzz/api_fuzz.py --seed 7 --seconds 60
    # or a running one
    tests/fuzz/api_fuzz.py --url http://127.0.0.1:8080 --token <jwt> [--admin-token <jwt>]

Each iteration is one request built from the route table (services/gateway/routes.c):
valid, foreign, missing and malformed ids; query strings with known and unknown, repeated,
huge, badly %-encoded, NUL, invalid UTF-8 and unicode values; headers (huge or broken
Authorization, bad Content-Type, bogus Content-Length, chunked, Origin, duplicates); bodies
(a valid monitor/channel/login/replay with one field mutated: wrong types, huge numbers, deep
nesting, invalid UTF-8, NUL escapes, duplicate keys, big arrays; raw bytes); and raw-socket
requests urllib cannot send (malformed request lines, header lines without a colon, oversize
headers, bad chunk sizes, a slowloris-ish partial request that must not stop others).

Oracle per answer: status < 500, every 4xx (not HEAD) carries {"error": {...}} as JSON, the
answer comes within 5 s, the gateway stays alive. At the end: /healthz ok, RSS not runaway
(own gateway: VmRSS growth under --max-rss-growth-mb), and no sanitizer report in the
gateway's output. On a failure the request is printed (repro) and the exit status is 1.
"""
import argparse
import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("UPMON_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "tests", "support"))

ANSWER_S = 5.0
PW = "correct horse battery staple"
SAN_PAT = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|"
                     r"runtime error:|ThreadSanitizer")


class Finding(Exception):
    pass


def routes_from_source():
    with open(os.path.join(SRC, "services", "gateway", "routes.c")) as f:
        return re.findall(r'\{\s*"([A-Z]+)"\s*,\s*"(/[^"]*)"\s*,\s*gw_\w+', f.read())


# ---- the request model --------------------------------------------------------------------

class Req:
    """One request; raw (bytes) when sent as is on a socket."""

    def __init__(self, method="GET", target="/", headers=None, body=None, raw=None,
                 kind="http", partial=False):
        self.method, self.target, self.body = method, target, body
        self.headers = headers or []
        self.raw, self.kind, self.partial = raw, kind, partial

    def wire(self):
        if self.raw is not None:
            return self.raw
        lines = ["%s %s HTTP/1.1" % (self.method, self.target)]
        names = {k.lower() for k, _ in self.headers}
        hs = list(self.headers)
        if "host" not in names:
            hs.insert(0, ("Host", "127.0.0.1"))
        if self.body is not None and "content-length" not in names and \
                "transfer-encoding" not in names:
            hs.append(("Content-Length", str(len(self.body))))
        hs.append(("Connection", "close"))
        head = "\r\n".join(lines + ["%s: %s" % (k, v) for k, v in hs]) + "\r\n\r\n"
        return head.encode("utf-8", "surrogateescape") + (self.body or b"")

    def methods(self):
        """The methods of the requests in wire(), in order (HEAD answers have no body)."""
        if self.raw is None:
            return [self.method]
        return [m.decode() for m in re.findall(rb"(?:^|\r\n\r\n)([A-Za-z]+) ", self.raw)]

    def repro(self):
        w = self.wire()
        return "kind=%s\n%r" % (self.kind, w[:2000] + (b"...(%d bytes)" % len(w)
                                                       if len(w) > 2000 else b""))


class Gen:
    def __init__(self, rnd, ctx):
        self.r = rnd
        self.ctx = ctx
        self.routes = routes_from_source()

    # -- values
    def junk_str(self, n=None):
        r = self.r
        n = r.randint(0, 40) if n is None else n
        return "".join(chr(r.choice([r.randint(0, 0x7f), r.randint(0x80, 0xd7ff),
                                     r.randint(0xe000, 0x10ffff)])) for _ in range(n))

    def jvalue(self, depth=0):
        r = self.r
        k = r.randrange(14)
        if k == 0:
            return r.choice([0, -1, 1, 2 ** 31, 2 ** 31 - 1, -2 ** 31, 2 ** 63 - 1, -2 ** 63,
                             2 ** 63, 2 ** 64, 10 ** 30, -10 ** 30])
        if k == 1:
            return r.choice([0.5, -0.0, 1e308, -1e308, 1e-320, 3.0, 59.999999])
        if k == 2:
            return r.choice([True, False, None])
        if k in (3, 4):
            return self.junk_str()
        if k == 5:
            return r.choice(["", " ", "\u0000", "x" * r.choice([64, 65, 255, 256, 2049, 70000]),
                             "http://127.0.0.1:9/", "https://example.test/h", "tcp", "http",
                             "GET", "200-299", "200,301-302", "monitor_tasks_dead",
                             "a@example.test", "x'; DROP TABLE monitors; --", "\U0001F600",
                             "http://169.254.169.254/", "http://0x7f000001/", "ftp://x",
                             "email", "webhook", "2026-01-01T00:00:00Z", str(uuid.uuid4())])
        if k == 6 and depth < 3:
            return [self.jvalue(depth + 1) for _ in range(r.randint(0, 6))]
        if k == 7 and depth < 3:
            return {self.key(): self.jvalue(depth + 1) for _ in range(r.randint(0, 5))}
        if k == 8:
            return [r.randint(0, 9)] * r.choice([100, 1000, 5000])
        if k == 9:
            return r.randint(-100000, 100000)
        return r.randint(0, 1000)

    def key(self):
        return self.r.choice(KEYS)

    def base_body(self, tpl):
        r = self.r
        c = self.ctx
        if tpl.endswith("/channels") and tpl.startswith("/monitors"):
            return {"channel_ids": r.choice([[], [c["ch"]], [c["ch"], c["foreign_ch"]],
                                             [c["ch"], c["ch"]], [str(uuid.uuid4())]])}
        if tpl.startswith("/maintenance-windows"):
            return r.choice([
                {"name": "fz", "monitor_id": c["mon"], "kind": "once",
                 "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-01T02:00:00Z"},
                {"name": "fz", "monitor_id": None, "kind": "weekly", "weekdays": [1, 3, 7],
                 "start_time": "23:30", "duration_minutes": 90,
                 "time_zone": r.choice(["UTC", "Europe/Paris", "Asia/Kolkata", "Mars/Base"])},
                {"kind": "weekly", "weekdays": [8], "start_time": "24:00",
                 "duration_minutes": 0, "starts_at": "2030-01-01T00:00:00Z"}])
        if tpl.startswith("/monitors"):
            return r.choice([
                {"name": "fz", "type": "http", "url": "http://127.0.0.1:9/",
                 "interval_seconds": 60},
                {"name": "fz", "type": "tcp", "host": "127.0.0.1", "port": 9,
                 "interval_seconds": 60, "tags": ["a", "b"]},
                {"name": "fz", "type": "http", "url": "http://127.0.0.1:9/", "method": "POST",
                 "headers": {"X-A": "b"}, "body": "x", "expected_status": "200-299",
                 "keyword": "ok", "keyword_absent": False, "max_latency_ms": 1000,
                 "follow_redirects": True, "max_redirects": 3, "verify_tls": True,
                 "cert_expiry_days": 7, "timeout_ms": 2000, "retries": 1,
                 "failure_threshold": 2, "recovery_threshold": 1, "reminder_minutes": 0,
                 "paused": True, "interval_seconds": 30}])
        if tpl.startswith("/channels"):
            return r.choice([
                {"name": "fz", "kind": "webhook", "config": {"url": "https://example.test/"},
                 "secret": "0123456789abcdef0"},
                {"name": "fz", "kind": "email", "config": {"to": ["a@example.test"]},
                 "enabled": False}])
        if tpl.startswith("/auth"):
            return {"email": "fz-%d@example.test" % r.randrange(10 ** 6),
                    "password": r.choice([PW, "short", "x" * 5000])}
        if tpl.startswith("/admin"):
            return {"queue": r.choice(["monitor_tasks_dead", "notifications_dead", "x"]),
                    "limit": r.randint(0, 3)}
        return {}

    def body(self, tpl):
        """(bytes, content type) of a mutated body."""
        r = self.r
        k = r.randrange(20)
        doc = self.base_body(tpl)
        if k < 9:
            for _ in range(r.choice([1, 1, 1, 2, 3])):
                target = doc
                # sometimes into the nested config/headers
                if isinstance(doc.get("config"), dict) and r.random() < 0.3:
                    target = doc["config"]
                fields = list(target) + [self.key()]
                f = r.choice(fields)
                if r.random() < 0.15 and f in target:
                    del target[f]
                else:
                    target[f] = self.jvalue()
            data = json.dumps(doc, ensure_ascii=r.random() < 0.5).encode("utf-8",
                                                                         "surrogatepass")
        elif k == 9:
            # deep nesting around a valid field or as the value of one
            d = r.choice([31, 32, 33, 100, 3000])
            f = r.choice(list(doc) or ["x"])
            data = json.dumps(doc)[:-1].encode()
            data += (', "%s": ' % f).encode() + b"[" * d + b"]" * d + b"}"
        elif k == 10:
            # duplicate keys
            items = list(doc.items())
            f, v = r.choice(items) if items else ("x", 1)
            parts = [json.dumps(a) + ":" + json.dumps(b) for a, b in items]
            parts.append(json.dumps(f) + ":" + json.dumps(self.jvalue()))
            data = ("{" + ",".join(parts) + "}").encode()
        elif k == 11:
            # invalid UTF-8 / NUL escapes inside a string
            s = json.dumps(doc)
            junk = r.choice([b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\\u0000", b"\\ud800",
                             b"\\udc00\\ud800", b"\x00", b"\\uZZZZ", b"\xf4\x90\x80\x80"])
            i = s.find('"', 2)
            i = i if i > 0 else 1
            data = s[:i].encode() + junk + s[i:].encode()
        elif k == 12:
            data = bytes(r.randrange(256) for _ in range(r.randint(0, 300)))
        elif k == 13:
            data = json.dumps(self.jvalue()).encode()
        elif k == 14:
            # truncated / trailing garbage
            s = json.dumps(doc).encode()
            data = s[:r.randint(0, len(s))] if r.random() < 0.5 else \
                s + r.choice([b"x", b"{}", b"\x00", b" \n", b"]"])
        elif k == 15:
            # numbers in odd spellings
            f = r.choice(["interval_seconds", "port", "limit", "timeout_ms", "retries"])
            num = r.choice(["1e2", "-0", "0x10", "1.0", "1e400", "99999999999999999999999",
                            "NaN", "Infinity", "-", "01", "+1", ".5"])
            data = json.dumps(doc)[:-1].encode() + (', "%s": %s}' % (f, num)).encode()
        elif k == 16:
            # big array / big body near the limit
            n = r.choice([1000, 10000, 20000])
            doc[r.choice(["tags", "to", "headers", "x"])] = ["t%d" % i for i in range(n)]
            data = json.dumps(doc).encode()
        else:
            data = json.dumps(doc).encode()
        ct = r.choice(["application/json"] * 6 + [
            "application/json; charset=utf-8", "APPLICATION/JSON", "application/json;",
            "text/plain", "", "application/jsonx", "multipart/form-data; boundary=x",
            "application/json; charset=latin1", "x" * 5000])
        return data, ct

    def ident(self, tpl):
        r = self.r
        c = self.ctx
        pool = [c["mon"], c["mon"], c["ch"], c["foreign_mon"], c["foreign_ch"], c["alert"],
                str(uuid.uuid4()), c["mon"].upper(), "x", "%00", "..%2f..", "%2e%2e",
                "00000000-0000-0000-0000-000000000000", "A" * r.choice([36, 300, 9000]),
                "\u65e5", c["mon"] + "0", c["mon"][:-1], c["mon"].replace("-", ""),
                "%" + c["mon"], c["mon"] + "%00", "{" + c["mon"] + "}", "",
                "%ff%fe", c["mon"] + "/x", "-1", "1e9"]
        if tpl.startswith("/channels"):
            pool += [c["ch"]] * 3
        if tpl.startswith("/alerts"):
            pool += [c["alert"]] * 3
        if tpl.startswith("/maintenance-windows"):
            pool += [c["mw"]] * 3
        return r.choice(pool)

    def qval(self):
        r = self.r
        k = r.randrange(12)
        if k == 0:
            return "x" * r.choice([100, 5000, 20000])
        if k == 1:
            return r.choice(["%", "%4", "%zz", "%00", "%ff", "%c0%80", "%ed%a0%80", "a%00b"])
        if k == 2:
            return urllib.parse.quote(self.junk_str(r.randint(0, 10)).encode(
                "utf-8", "surrogatepass"))
        if k == 3:
            return r.choice(["0", "-1", "1", "100", "101", "1000", "9223372036854775807",
                             "9223372036854775808", "-9223372036854775809", "1e3", " 1",
                             "1 ", "0x10", "true", "false", "", "null"])
        if k == 4:
            return r.choice(["2026-01-01T00:00:00Z", "2026-13-01T00:00:00Z", "0",
                             "-99999999999999", "1700000000000", "9999-12-31T23:59:59Z",
                             "2026-01-01", "2026-01-01T00:00:00+25:00", "now"])
        if k == 5:
            return r.choice(["up", "down", "pending", "paused", "http", "email", "1h", "24h",
                             "7d", "30d", "0d", "monitor_tasks_dead", "notifications_dead",
                             self.ctx["mon"], self.ctx["foreign_mon"]])
        if k == 6:
            # cursors: base64-ish junk
            return r.choice(["", "abc", "eyJ4IjoxfQ", "AAAA", "====", "e30",
                             "x" * 400, "%2B%2F%3D"])
        s = "".join(r.choice("abc%0123456789:-T.Z'\" ;,&=+/\\\u00e9#?")
                    for _ in range(r.randint(0, 30)))
        return urllib.parse.quote(s, safe=r.choice(["", "%", "%&=", "%'\";,:+"]))

    def query(self):
        r = self.r
        if r.random() < 0.3:
            return ""
        parts = []
        for _ in range(r.randint(1, 6)):
            k = r.choice(QKEYS) if r.random() < 0.85 else self.qval()
            if r.random() < 0.1:
                parts.append(k)
            else:
                parts.append("%s=%s" % (k, self.qval()))
        if r.random() < 0.1:
            parts.append(r.choice(["", "&", "=", "==", "&&", "a=b=c"]))
        return "?" + "&".join(parts)

    def auth(self):
        r = self.r
        tok = self.ctx["token"]
        x = r.random()
        if x < 0.7:
            return "Bearer " + tok
        if x < 0.78 and self.ctx.get("admin_token"):
            return "Bearer " + self.ctx["admin_token"]
        return r.choice(["Bearer", "Bearer ", "bearer " + tok, "Bearer  " + tok,
                         "Bearer " + tok + " x", "Bearer " + tok[:-3],
                         "Bearer " + "a." * 50, "Bearer " + "A" * r.choice([4095, 4097, 9000]),
                         "Basic YTpi", "Digest x", "Bearer " + tok + "\t",
                         "Bearer \u00e9\u00e9", "Bearer ..", "Bearer a.b.c", None])

    # -- requests
    def request(self):
        r = self.r
        x = r.random()
        if x < 0.72:
            return self.api_request()
        if x < 0.97:
            return self.raw_request()
        return self.slow_request()

    def path(self):
        r = self.r
        if r.random() < 0.85:
            method, tpl = r.choice(self.routes)
            if r.random() < 0.15:
                method = r.choice(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS",
                                   "HEAD", "TRACE", "CONNECT", "PROPFIND", "get", "FOO"])
        else:
            method = r.choice(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"])
            tpl = r.choice(["/%2e%2e/etc/passwd", "//monitors", "/monitors/",
                            "/monitors//pause", "/monitors/{id}/", "/monitors/{id}/x",
                            "/auth", "/", "", "/admin", "/admin/dlq/", "/channels/{id}/test/x"])
        p = tpl.replace("{id}", self.ident(tpl))
        prefix = r.choice(["/api/v1"] * 12 + ["", "/api/v2", "/api/v1/..", "/API/V1",
                                              "/api/v1%2f", "/healthz", "/metrics",
                                              "/readyz", "/api//v1"])
        if prefix in ("/healthz", "/metrics", "/readyz"):
            p = r.choice(["", "/x", "?x=1"])
        return method, tpl, prefix + p + self.query()

    def headers(self, tpl, body):
        r = self.r
        hs = []
        a = self.auth()
        if a is not None:
            hs.append(("Authorization", a))
        if body is not None:
            data, ct = body
            if ct:
                hs.append(("Content-Type", ct))
        x = r.random()
        if x < 0.1:
            hs.append(("Origin", r.choice(["http://evil.example", "null", "http://127.0.0.1",
                                           "x" * 3000, ""])))
        for _ in range(r.choice([0, 0, 0, 1, 2])):
            hs.append(r.choice([
                ("X-Forwarded-For", self.qval()), ("X-Request-Id", "x" * r.choice([10, 5000])),
                ("Accept", "*/*"), ("Accept-Encoding", "gzip, br"), ("Cookie", "a=" + "b" * 100),
                ("Authorization", "Bearer " + self.ctx["token"]),
                ("Content-Type", "application/json"), ("Expect", "100-continue"),
                ("If-None-Match", "*"), ("Range", "bytes=0-1"),
                ("Access-Control-Request-Method", r.choice(["PUT", "X", ""])),
                ("Access-Control-Request-Headers", "authorization, x-" + "a" * 200),
                ("Connection", "keep-alive"), ("Upgrade", "websocket"),
                ("Host", r.choice(["", "x" * 1000, "127.0.0.1:1"]))]))
        return hs

    def api_request(self):
        r = self.r
        method, tpl, target = self.path()
        body = None
        if method in ("POST", "PUT", "PATCH") and r.random() < 0.85 or r.random() < 0.08:
            body = self.body(tpl)
        hs = self.headers(tpl, body)
        data = body[0] if body else None
        x = r.random()
        if data is not None and x < 0.06:
            # chunked, maybe with odd chunking
            hs.append(("Transfer-Encoding", "chunked"))
            n = r.choice([1, 7, 1000, len(data) or 1])
            chunks = [data[i:i + n] for i in range(0, len(data), n)]
            data = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
        elif data is not None and x < 0.12:
            hs.append(("Content-Length", r.choice([str(len(data) - 1), str(len(data) + 5),
                                                   "-1", "abc", "99999999999999999999",
                                                   "0", " %d" % len(data),
                                                   "%d, %d" % (len(data), len(data))])))
            if r.random() < 0.5:
                hs.append(("Content-Length", str(len(data))))
            return Req(method, target, hs, data, kind="api", partial=True)
        return Req(method, target, hs, data, kind="api")

    def raw_request(self):
        r = self.r
        tok = self.ctx["token"]
        mon = self.ctx["mon"]
        auth = "Authorization: Bearer %s\r\n" % tok
        k = r.randrange(16)
        body = json.dumps(self.base_body("/monitors")).encode()
        if k == 0:
            line = r.choice(["GET", "GET /", "GET /api/v1/monitors", "GET  /api/v1/monitors "
                             "HTTP/1.1", "GET /api/v1/monitors HTTP/9.9",
                             "GET /api/v1/monitors HTTP/1.1 x", "/api/v1/monitors HTTP/1.1",
                             "GET api/v1/monitors HTTP/1.1", "GET\t/api/v1/monitors\tHTTP/1.1",
                             "G\x00ET /api/v1/monitors HTTP/1.1",
                             "GET /api/v1/mon\x00itors HTTP/1.1",
                             "GET /api/v1/monitors\x7f HTTP/1.1",
                             "GET http://127.0.0.1/api/v1/monitors HTTP/1.1",
                             "GET * HTTP/1.1", "GET /api/v1/monitors HTTP/1.0",
                             "GET /api/v1/monitors HTTP/2.0", "GET /api/v1/\xff\xfe HTTP/1.1",
                             "PRI * HTTP/2.0", "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
                             "GET /" + "a" * 20000 + " HTTP/1.1"])
            raw = (line + "\r\nHost: x\r\n" + auth + "Connection: close\r\n\r\n").encode(
                "latin-1", "replace")
        elif k == 1:
            raw = ("GET /api/v1/monitors HTTP/1.1\r\nHost: x\r\n" + auth +
                   r.choice(["NoColonHere\r\n", ": empty-name\r\n", "X-A : b\r\n",
                             " folded\r\n", "X-\x00: b\r\n", "X-A: b\x00c\r\n",
                             "\r\n\r\n", "X-A:\r\n", "X" * 9000 + ": y\r\n"]) +
                   "Connection: close\r\n\r\n").encode("latin-1")
        elif k == 2:
            # oversize headers: one huge value, or very many lines
            if r.random() < 0.5:
                hs = "X-Big: " + "v" * r.choice([8000, 16000, 70000]) + "\r\n"
            else:
                hs = "".join("X-H%d: v\r\n" % i for i in range(r.choice([60, 64, 65, 200, 2000])))
            raw = ("GET /api/v1/monitors HTTP/1.1\r\nHost: x\r\n" + auth + hs +
                   "Connection: close\r\n\r\n").encode()
        elif k == 3:
            # bad chunk sizes
            chunks = r.choice([b"zz\r\n{}\r\n0\r\n\r\n", b"-1\r\n{}\r\n0\r\n\r\n",
                               b"ffffffffffffffff\r\n{}\r\n0\r\n\r\n",
                               b"2\r\n{}\r\n", b"2;ext=1\r\n{}\r\n0\r\n\r\n",
                               b"100\r\n{}\r\n0\r\n\r\n", b"2\r\n{}0\r\n\r\n",
                               b"0\r\nX-Trailer: 1\r\n\r\n", b"\r\n\r\n",
                               b"7fffffffffffffff\r\n{}\r\n0\r\n\r\n",
                               b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)])
            raw = ("POST /api/v1/monitors HTTP/1.1\r\nHost: x\r\n" + auth +
                   "Content-Type: application/json\r\nTransfer-Encoding: " +
                   r.choice(["chunked", "Chunked", "chunked, chunked", "gzip, chunked",
                             "identity", "x"]) + "\r\nConnection: close\r\n\r\n").encode() + chunks
            return Req(raw=raw, kind="raw-chunked", partial=True)
        elif k == 4:
            # both Content-Length and chunked (request smuggling shape)
            raw = ("POST /api/v1/monitors HTTP/1.1\r\nHost: x\r\n" + auth +
                   "Content-Type: application/json\r\nContent-Length: 4\r\n"
                   "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode() + \
                b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        elif k == 5:
            # bogus Content-Length values
            cl = r.choice(["-5", "abc", "1e3", "99999999999999999999", "18446744073709551615",
                           "9223372036854775807", "0x10", "", "%d" % (len(body) + 1),
                           "%d" % (len(body) - 1), "%d,%d" % (len(body), len(body))])
            raw = ("POST /api/v1/monitors HTTP/1.1\r\nHost: x\r\n" + auth +
                   "Content-Type: application/json\r\nContent-Length: " + cl +
                   "\r\nConnection: close\r\n\r\n").encode() + body
            return Req(raw=raw, kind="raw-cl", partial=True)
        elif k == 6:
            # two requests pipelined, the first one malformed
            raw = ("GET /api/v1/monitors/%s HTTP/1.1\r\nHost: x\r\n%s\r\n"
                   "GET /api/v1/monitors HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n" %
                   (r.choice(["x", mon, "%zz"]), auth, auth)).encode()
        elif k == 7:
            # duplicate headers
            raw = ("GET /api/v1/monitors HTTP/1.1\r\nHost: x\r\nHost: y\r\n" + auth + auth +
                   "Authorization: Bearer x\r\nContent-Type: a\r\nContent-Type: b\r\n"
                   "Connection: close\r\n\r\n").encode()
        elif k == 8:
            # bare LF line ends
            raw = ("GET /api/v1/monitors HTTP/1.1\nHost: x\n" + auth.replace("\r\n", "\n") +
                   "Connection: close\n\n").encode()
        elif k == 9:
            # just garbage
            raw = bytes(r.randrange(256) for _ in range(r.randint(1, 500))) + b"\r\n\r\n"
        elif k == 10:
            # request target with raw unicode / control characters / invalid UTF-8
            tgt = r.choice([b"/api/v1/monitors?q=\xff\xfe", b"/api/v1/monitors?q=\xc3",
                            b"/api/v1/monitors?q=a\x01b", b"/api/v1/monitors/\xe6\x97\xa5",
                            b"/api/v1/monitors?tag=%E6%97%A5%", b"/api/v1/monitors#frag",
                            b"/api/v1/monitors?q=" + b"%41" * 3000,
                            b"/api/v1/monitors/" + mon.encode() + b"/checks?from=%00&to=%00"])
            raw = b"GET " + tgt + b" HTTP/1.1\r\nHost: x\r\n" + auth.encode() + \
                b"Connection: close\r\n\r\n"
        elif k == 11:
            # Expect: 100-continue with a body
            raw = ("POST /api/v1/monitors HTTP/1.1\r\nHost: x\r\n" + auth +
                   "Content-Type: application/json\r\nExpect: 100-continue\r\n"
                   "Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)).encode() + body
        elif k == 12:
            # keep-alive: several requests on one connection, some bad
            reqs = []
            for _ in range(r.randint(2, 5)):
                m, _, t = self.path()
                reqs.append(("%s %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (m, t, auth)).encode(
                    "utf-8", "surrogateescape"))
            raw = b"".join(reqs) + ("GET /healthz HTTP/1.1\r\nHost: x\r\n"
                                    "Connection: close\r\n\r\n").encode()
            return Req(raw=raw, kind="raw-pipeline")
        elif k == 13:
            # HTTP/1.0 without Host, body up to close
            raw = ("POST /api/v1/monitors HTTP/1.0\r\n" + auth +
                   "Content-Type: application/json\r\n\r\n").encode() + body
            return Req(raw=raw, kind="raw-10", partial=True)
        elif k == 14:
            # header with an over-long name or many colons, CR in values
            raw = ("GET /api/v1/monitors HTTP/1.1\r\nHost: x\r\n" + auth +
                   r.choice(["X-A: a\rb\r\n", "X-A: a:b:c\r\n", "X" * 300 + ": v\r\n",
                             "Authorization: Bearer\r\n", "Content-Length: 0\r\n",
                             "Transfer-Encoding: chunked\r\n"]) +
                   "Connection: close\r\n\r\n").encode()
            return Req(raw=raw, kind="raw-header", partial=True)
        else:
            # OPTIONS preflights
            raw = ("OPTIONS /api/v1/monitors/%s HTTP/1.1\r\nHost: x\r\nOrigin: %s\r\n"
                   "Access-Control-Request-Method: %s\r\nConnection: close\r\n\r\n" %
                   (self.ident("/monitors"), r.choice(["http://a", "null", "x" * 2000]),
                    r.choice(["GET", "DELETE", "x" * 500]))).encode("utf-8", "surrogateescape")
        return Req(raw=raw, kind="raw")

    def slow_request(self):
        r = self.r
        head = ("POST /api/v1/monitors HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                "Content-Type: application/json\r\nContent-Length: 100\r\n" % self.ctx["token"])
        cut = r.randint(1, len(head))
        return Req(raw=head[:cut].encode(), kind="slow", partial=True)


KEYS = ["name", "type", "url", "host", "port", "method", "headers", "body", "expected_status",
        "keyword", "keyword_absent", "max_latency_ms", "follow_redirects", "max_redirects",
        "verify_tls", "cert_expiry_days", "timeout_ms", "retries", "failure_threshold",
        "recovery_threshold", "reminder_minutes", "paused", "tags", "interval_seconds",
        "kind", "config", "to", "secret", "enabled", "email", "password", "queue", "limit",
        "x", "", "\u0000", "$where", "__proto__", "id", "owner_id"]
QKEYS = ["limit", "cursor", "status", "tag", "q", "from", "to", "final", "window", "kind",
         "acked", "monitor_id", "queue", "limit", "cursor", "%00", "a[]", "LIMIT", "q%00",
         "\u00e9"]


# ---- sending and the oracle ------------------------------------------------------------------

class Incomplete(Exception):
    pass


def parse_answers(data, eof=True, methods=()):
    """[(status, headers dict, body bytes)] of the answers in data (Content-Length framed).
    Raises Incomplete when eof is False and the last answer is not whole yet."""
    out = []
    finals = 0
    while data:
        if not eof and len(data) < 17:
            raise Incomplete()
        m = re.match(rb"HTTP/1\.[01] (\d{3})[^\r\n]*\r\n", data)
        if not m:
            raise Finding("unparseable answer: %r" % data[:300])
        end = data.find(b"\r\n\r\n")
        if end < 0:
            if not eof:
                raise Incomplete()
            raise Finding("answer without header end: %r" % data[:300])
        hdrs = {}
        for line in data[m.end():end].split(b"\r\n"):
            if b":" in line:
                k, v = line.split(b":", 1)
                hdrs[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
        st = int(m.group(1))
        rest = data[end + 4:]
        head = st >= 200 and finals < len(methods) and methods[finals] == "HEAD"
        if head and rest and hdrs.get("connection") == "close" and 400 <= st < 500:
            # civetweb refused a head it could not parse (too large): the method was never
            # read, so the JSON body follows; the connection closes, nothing can desync
            body, data = b"", b""
        elif head:
            body, data = b"", rest
        elif "content-length" in hdrs:
            n = int(hdrs["content-length"])
            if len(rest) < n and not eof:
                raise Incomplete()
            body, data = rest[:n], rest[n:]
        elif st in (204, 304) or 100 <= st < 200:
            body, data = b"", rest
        else:
            if not eof:
                raise Incomplete()
            body, data = rest, b""
        out.append((st, hdrs, body))
        if st >= 200:
            finals += 1
    return out


def send(host, port, req, deadline=ANSWER_S):
    """Sends req; returns (answers, seconds). Raises Finding on a hang."""
    t0 = time.time()
    s = socket.create_connection((host, port), timeout=deadline)
    data = b""
    try:
        s.settimeout(deadline)
        try:
            s.sendall(req.wire())
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may refuse mid-body (413, 400): read what it said
        if req.kind == "slow":
            # while this partial request hangs on, others are served
            t1 = time.time()
            st = healthz(host, port)
            if st != 200 or time.time() - t1 > ANSWER_S:
                raise Finding("healthz %d after a partial request" % st)
            deadline = min(deadline, time.time() - t0 + 1.0)
        elif req.partial:
            # a request that may legitimately wait for more: the server must either answer
            # or keep waiting; half-close and take what comes within the deadline
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        while True:
            left = deadline - (time.time() - t0)
            if left <= 0:
                if req.kind == "slow" and not data:
                    break  # an incomplete request may wait for the rest: not a hang
                raise Finding("no complete answer within %.0f s (got %r)" % (deadline,
                                                                              data[:200]))
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
            if req.kind != "raw-pipeline":
                try:
                    got = parse_answers(data, eof=False, methods=req.methods())
                    if got and got[-1][0] >= 200:
                        break  # whole final answer: the connection may stay open
                except Incomplete:
                    pass
    finally:
        s.close()
    return (parse_answers(data, methods=req.methods()) if data else []), time.time() - t0


def check_answers(req, answers):
    methods = req.methods()
    finals = 0
    for st, hdrs, body in answers:
        head = st >= 200 and finals < len(methods) and methods[finals] == "HEAD"
        finals += st >= 200
        if st >= 500:
            raise Finding("status %d: %r" % (st, body[:300]))
        if 400 <= st < 500 and not head:
            try:
                doc = json.loads(body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                raise Finding("%d without a JSON body: %r (content-type %r)" % (
                    st, body[:300], hdrs.get("content-type")))
            if not (isinstance(doc, dict) and isinstance(doc.get("error"), dict) and
                    isinstance(doc["error"].get("code"), str)):
                raise Finding("%d with a JSON body that is not an error: %r" % (st, doc))
    if not answers and req.kind == "api" and not req.partial:
        raise Finding("connection closed without an answer")


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


# ---- setup -------------------------------------------------------------------------------------

def setup_own(args):
    import upmon_gw as g
    g.migrate()
    env = {"UPMON_GATEWAY_THREADS": "16"}
    gw = g.Gateway.start(env=env)
    try:
        return gw, setup_users(g, gw)
    except BaseException:
        gw.stop()  # a failed setup must not leave the gateway running
        raise


def setup_users(g, gw):
    tag = uuid.uuid4().hex[:8]
    a = gw.client()
    a.register("fz-a-%s@example.test" % tag, PW)
    a.login("fz-a-%s@example.test" % tag, PW)
    b = gw.client()
    b.register("fz-b-%s@example.test" % tag, PW)
    b.login("fz-b-%s@example.test" % tag, PW)
    adm = gw.client()
    adm.register("fz-adm-%s@example.test" % tag, PW)
    g.psql("UPDATE users SET role = 'admin' WHERE email = :'v1'", "fz-adm-%s@example.test" % tag)
    adm.login("fz-adm-%s@example.test" % tag, PW)
    ctx = ids(a, b)
    ctx.update(token=a.token, admin_token=adm.token)
    me = b.ok("GET", "/auth/me")
    g.psql("INSERT INTO alerts (owner_id, monitor_id, kind, dedup_key, message) VALUES"
           " (:'v1', :'v2', 'down', 'down:fzb', 'fz')", me["id"], ctx["foreign_mon"])
    me = a.ok("GET", "/auth/me")
    ctx["alert"] = g.psql("INSERT INTO alerts (owner_id, monitor_id, kind, dedup_key, message)"
                          " VALUES (:'v1', :'v2', 'down', 'down:fz', 'fz') RETURNING id",
                          me["id"], ctx["mon"])[0][0]
    return ctx


def ids(a, b):
    mon = a.ok("POST", "/monitors", {"name": "fz-own", "type": "http",
                                     "url": "http://127.0.0.1:9/", "interval_seconds": 60},
               want=201)
    ch = a.ok("POST", "/channels", {"name": "fz-ch", "kind": "email",
                                    "config": {"to": ["a@example.test"]}}, want=201)
    mw = a.ok("POST", "/maintenance-windows", {"monitor_id": mon["id"], "kind": "once",
                                                "starts_at": "2030-01-01T00:00:00Z",
                                                "ends_at": "2030-01-01T01:00:00Z"},
              want=201)
    ctx = {"mon": mon["id"], "ch": ch["id"], "mw": mw["id"], "alert": str(uuid.uuid4()),
           "foreign_mon": str(uuid.uuid4()), "foreign_ch": str(uuid.uuid4())}
    if b is not None:
        ctx["foreign_mon"] = b.ok("POST", "/monitors", {
            "name": "fz-b", "type": "tcp", "host": "127.0.0.1", "port": 9,
            "interval_seconds": 60}, want=201)["id"]
        ctx["foreign_ch"] = b.ok("POST", "/channels", {
            "name": "fz-b", "kind": "webhook", "config": {"url": "https://example.test/"}},
            want=201)["id"]
    return ctx


def sanitizer_lines(log):
    try:
        with open(log, errors="replace") as f:
            return [line.rstrip() for line in f if SAN_PAT.search(line)]
    except OSError:
        return []


def healthz(host, port):
    conn = http.client.HTTPConnection(host, port, timeout=ANSWER_S)
    try:
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--url", help="a running gateway (http://host:port)")
    ap.add_argument("--token", help="a user's token (with --url)")
    ap.add_argument("--admin-token", help="an admin's token (with --url, optional)")
    ap.add_argument("--max-rss-growth-mb", type=float, default=None,
                    help="own gateway: RSS growth bound (64 MB; 400 MB under ASan, whose "
                    "quarantine keeps freed memory by design)")
    ap.add_argument("--keep-going", action="store_true",
                    help="count findings and go on instead of stopping at the first")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2 ** 31)
    rnd = random.Random(seed)
    print("api_fuzz: seed %d, %.0f s" % (seed, args.seconds), flush=True)

    gw = None
    if args.url:
        if not args.token:
            ap.error("--url needs --token")
        u = urllib.parse.urlsplit(args.url)
        host, port = u.hostname, u.port or 80
        import upmon_gw as g
        a = g.Client(args.url, args.token)
        ctx = ids(a, None)
        ctx.update(token=args.token, admin_token=args.admin_token)
    else:
        gw, ctx = setup_own(args)
        host, port = "127.0.0.1", gw.port
    gen = Gen(rnd, ctx)
    rss0 = rss_kb(gw.proc.pid) if gw else 0
    if args.max_rss_growth_mb is None:
        args.max_rss_growth_mb = 64
        if gw is not None:
            with open("/proc/%d/maps" % gw.proc.pid) as f:
                if "libasan" in f.read():
                    args.max_rss_growth_mb = 400
    started = time.time()
    n = 0
    kinds = {}
    codes = {}
    worst, worst_req = 0.0, None
    findings = 0
    failed = False
    try:
        while time.time() - started < args.seconds:
            req = gen.request()
            n += 1
            kinds[req.kind] = kinds.get(req.kind, 0) + 1
            try:
                answers, took = send(host, port, req)
                if took > worst:
                    worst, worst_req = took, req
                for st, _, _ in answers:
                    codes[st] = codes.get(st, 0) + 1
                check_answers(req, answers)
                if gw is not None and gw.proc.poll() is not None:
                    raise Finding("gateway exited with %d" % gw.proc.returncode)
                if gw is not None and n % 2000 == 0:
                    print("  %d requests, %.0f s, rss %.1f MB" % (
                        n, time.time() - started, rss_kb(gw.proc.pid) / 1024.0), flush=True)
                if gw is not None and n % 200 == 0:
                    san = sanitizer_lines(gw.log)
                    if san:
                        raise Finding("sanitizer report:\n" + "\n".join(san[:20]))
            except (Finding, OSError) as e:
                findings += 1
                print("FINDING at request %d (seed %d): %s\nrequest: %s" % (
                    n, seed, e, req.repro()), file=sys.stderr, flush=True)
                if gw is not None and gw.proc.poll() is not None:
                    failed = True
                    break
                if not args.keep_going:
                    failed = True
                    break
        if not failed or findings:
            st = healthz(host, port)
            if st != 200:
                print("FINDING: /healthz %d at the end" % st, file=sys.stderr)
                findings += 1
        if gw is not None:
            rss1 = rss_kb(gw.proc.pid)
            grew = (rss1 - rss0) / 1024.0
            print("rss: %.1f MB -> %.1f MB (bound: +%.0f MB)" % (
                rss0 / 1024.0, rss1 / 1024.0, args.max_rss_growth_mb))
            if grew > args.max_rss_growth_mb:
                print("FINDING: RSS grew by %.1f MB" % grew, file=sys.stderr)
                findings += 1
    finally:
        rc = 0
        if gw is not None:
            # SIGTERM and wait here: stop() removes the log of a clean exit
            if gw.proc.poll() is None:
                gw.proc.send_signal(signal.SIGTERM)
                try:
                    gw.proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    print("FINDING: gateway did not exit within 15 s of SIGTERM",
                          file=sys.stderr)
                    findings += 1
            san = sanitizer_lines(gw.log)
            if san:
                print("FINDING: sanitizer report in the gateway's output", file=sys.stderr)
                findings += 1
            rc = gw.stop()
            if rc != 0:
                print("FINDING: gateway exit status %d" % rc, file=sys.stderr)
                findings += 1
            for line in san[:40]:
                print("  " + line, file=sys.stderr)
    took = time.time() - started
    if worst_req is not None and worst > 2:
        print("slowest request (%.2f s): %s" % (worst, worst_req.repro()[:400]))
    print("api_fuzz: seed %d, %d requests in %.1f s (%.0f/s), slowest %.2f s, kinds %r, "
          "statuses %r, findings %d" % (seed, n, took, n / max(took, 0.001), worst,
                                        dict(sorted(kinds.items())),
                                        dict(sorted(codes.items())), findings), flush=True)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())

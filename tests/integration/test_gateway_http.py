"""upmon-gateway's HTTP layer: routing (404/405), body rules (413, 415, invalid JSON),
tokens (401), admin re-check (404), security and CORS headers, /healthz /readyz /metrics on
the API port, the per-IP rate limit (429 + Retry-After), Redis down (fail open, PostgreSQL
routes still served), PostgreSQL down (503 + Retry-After, /readyz 503, recovery),
keep-alive, and a clean exit 0 on SIGTERM."""
import base64
import hashlib
import hmac
import http.client
import json
import os
import random
import socket
import subprocess
import time

import upmon_gw as g
from upmon_gw import check, fail

SEC_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "cache-control": "no-store",
}


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def forge(sub, email, role="user", secret=g.Gateway.SECRET, exp_in=3600, alg="HS256"):
    now = int(time.time())
    head = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": sub, "email": email, "role": role, "iss": "upmon",
                           "iat": now, "exp": now + exp_in}).encode())
    sig = b64(hmac.new(secret.encode(), (head + "." + body).encode(), hashlib.sha256).digest())
    return head + "." + body + "." + sig


def add_user(email, role="user"):
    return g.psql("INSERT INTO users (email, password_hash, role) VALUES (:'v1', 'x', :'v2') "
                  "RETURNING id", email, role)[0][0]


def check_security(h, what):
    for k, v in SEC_HEADERS.items():
        check(h.get(k) == v, "%s: header %s is %r, want %r" % (what, k, h.get(k), v))
    check(len(h.get("x-request-id", "")) >= 8, "%s: no X-Request-Id" % what)


def check_error(st, b, want_st, want_code, what):
    check(st == want_st, "%s: status %d, want %d: %r" % (what, st, want_st, b))
    check(isinstance(b, dict) and set(b) == {"error"}, "%s: not an error object: %r" % (what, b))
    e = b["error"]
    check(e.get("code") == want_code, "%s: code %r, want %r" % (what, e.get("code"), want_code))
    check(isinstance(e.get("message"), str) and e["message"] != "",
          "%s: no message: %r" % (what, b))


def raw_req(port, method, path, body=None, headers=None, source=None):
    """One request on a fresh connection from source (an IPv4 loopback address)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read().decode()
        h = {k.lower(): v for k, v in resp.getheaders()}
        return resp.status, h, (json.loads(data) if "json" in h.get("content-type", "")
                                and data else data)
    finally:
        conn.close()


def test_routing_and_bodies(gw, tok, uid):
    c = gw.client(tok)
    st, h, b = c.req("GET", "/auth/me")
    check(st == 200 and b.get("id") == uid, "GET /auth/me with a forged token: %d %r" % (st, b))
    check_security(h, "200 /auth/me")
    check(h.get("content-type", "").startswith("application/json"), "200: content type")

    st, h, b = c.req("GET", "/no/such/route")
    check_error(st, b, 404, "not_found", "unknown api route")
    check_security(h, "404")
    st, h, b = c.req("GET", "/favicon.ico", prefix=False)
    check_error(st, b, 404, "not_found", "outside /api/v1")
    check_security(h, "404 outside the api")
    st, _, b = c.req("GET", "/monitors/not-a-uuid")
    check_error(st, b, 404, "not_found", "non-uuid id")
    st, _, b = c.req("GET", "/monitors/0b5e0c5e-0000-4000-8000-00000000000g")
    check_error(st, b, 404, "not_found", "uuid with a non-hex digit")

    st, h, b = c.req("DELETE", "/monitors")
    check_error(st, b, 405, "method_not_allowed", "DELETE /monitors")
    allow = [m.strip() for m in h.get("allow", "").split(",")]
    check("GET" in allow and "POST" in allow and "DELETE" not in allow,
          "405 Allow header: %r" % h.get("allow"))
    check_security(h, "405")

    st, _, b = c.req("GET", "/monitors", token="")
    check_error(st, b, 401, "unauthorized", "no token")
    st, _, b = c.req("GET", "/monitors", token=forge(uid, "x@example.test", secret="w" * 40))
    check_error(st, b, 401, "unauthorized", "token signed with another secret")
    st, _, b = c.req("GET", "/monitors", token=forge(uid, "x@example.test", exp_in=-10))
    check_error(st, b, 401, "unauthorized", "expired token")
    st, _, b = c.req("GET", "/monitors", token=tok[:-2] + ("AA" if tok[-2:] != "AA" else "BB"))
    check_error(st, b, 401, "unauthorized", "tampered token")

    big = '{"name": "' + "a" * 70000 + '"}'
    st, h, b = c.req("POST", "/monitors", raw=big)
    check_error(st, b, 413, "payload_too_large", "body over the cap")
    check_security(h, "413")
    st, _, b = c.req("POST", "/monitors", raw='{"name": "x"}',
                     headers={"Content-Type": "text/plain"})
    check_error(st, b, 415, "unsupported_media_type", "text/plain body")
    st, _, b = c.req("POST", "/monitors", raw='{"name": "x"}', headers={"Content-Type": None})
    check_error(st, b, 415, "unsupported_media_type", "body without a content type")
    st, _, b = c.req("POST", "/monitors", raw='{"name": ')
    check_error(st, b, 400, "invalid_json", "truncated JSON")
    st, _, b = c.req("POST", "/monitors", raw='{"name": "x"} trailing')
    check_error(st, b, 400, "invalid_json", "trailing garbage")
    st, _, b = c.req("POST", "/monitors", raw='{"name": "x"}{"name": "y"}')
    check_error(st, b, 400, "invalid_json", "two objects")
    st, _, b = c.req("POST", "/monitors", raw='[{"name": "x"}]')
    check_error(st, b, 400, "bad_request", "array body")
    st, _, b = c.req("POST", "/monitors", raw='"x"')
    check_error(st, b, 400, "bad_request", "string body")
    st, _, b = c.req("POST", "/monitors", raw='{"a": ' * 40 + "1" + "}" * 40)
    check_error(st, b, 400, "invalid_json", "nesting over the depth limit")
    st, _, b = c.req("POST", "/monitors", raw=b'{"name": "\xff\xfe"}')
    check_error(st, b, 400, "invalid_json", "invalid UTF-8")
    st, _, b = c.req("POST", "/monitors/0b5e0c5e-0000-4000-8000-000000000001/pause",
                     raw='{}')
    check_error(st, b, 400, "bad_request", "body on a route that takes none")


def raw_exchange(port, data, timeout=5):
    """Sends data as is on a fresh connection; returns everything the server sent until it
    closed (or timeout)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    out = b""
    try:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer and close before it read everything
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        s.close()
    return out


def test_malformed_http(gw, tok):
    """civetweb's own refusals (found by tests/fuzz/api_fuzz.py) are JSON errors with the
    security headers, never 5xx, and never echo the request's version token into the status
    line; object keys with overlong or surrogate UTF-8 are refused, not echoed."""
    auth = "Authorization: Bearer %s\r\n" % tok
    cases = [
        ("header line without a colon", 400,
         "GET /api/v1/monitors HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n"),
        ("NUL in a header value", 400,
         "GET /api/v1/monitors HTTP/1.1\r\nHost: x\r\nX-A: b\x00c\r\n\r\n"),
        ("HTTP/9.9", 400, "GET /api/v1/monitors HTTP/9.9\r\nHost: x\r\n\r\n"),
        ("space in the target", 400,
         "GET /api/v1/monitors?a= 1=2 HTTP/1.1\r\nHost: x\r\nX-Evil: 1\r\n\r\n"),
        ("empty Content-Length", 411,
         "POST /api/v1/monitors HTTP/1.1\r\nHost: x\r\n" + auth +
         "Content-Type: application/json\r\nContent-Length: \r\n\r\n{}"),
        ("bad Transfer-Encoding", 400,
         "POST /api/v1/monitors HTTP/1.1\r\nHost: x\r\n" + auth +
         "Content-Type: application/json\r\nTransfer-Encoding: x\r\n\r\n2\r\n{}\r\n0\r\n\r\n"),
        ("oversize header", 400,
         "GET /api/v1/monitors HTTP/1.1\r\nHost: x\r\nX-Big: " + "v" * 20000 + "\r\n\r\n"),
    ]
    for what, want, req in cases:
        out = raw_exchange(gw.port, req.encode("latin-1"))
        head, _, body = out.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        check(lines[0].startswith("HTTP/1.1 %d " % want),
              "%s: status line %r, want HTTP/1.1 %d" % (what, lines[0], want))
        h = {}
        for line in lines[1:]:
            k, sep, v = line.partition(":")
            check(sep == ":", "%s: answer header line without a colon %r" % (what, line))
            h[k.strip().lower()] = v.strip()
        check("x-evil" not in h and "host" not in h, "%s: request headers echoed: %r" % (
            what, h))
        check(h.get("content-type") == "application/json", "%s: content type %r" % (
            what, h.get("content-type")))
        check(h.get("connection") == "close", "%s: connection %r" % (what, h.get("connection")))
        check_security(h, what)
        check_error(want, json.loads(body.decode()), want,
                    {400: "bad_request", 411: "length_required",
                     413: "payload_too_large"}[want], what)
    # civetweb's refusal of a malformed HEAD is the head alone too
    out = raw_exchange(gw.port, b"HEAD /api/v1/monitors HTTP/9.9\r\nHost: x\r\n\r\n")
    head, sep, body = out.partition(b"\r\n\r\n")
    check(head.startswith(b"HTTP/1.1 400 ") and sep and body == b"",
          "malformed HEAD: %r" % out[:300])
    c = gw.client(tok)
    for bad in (b'{"name\xc0\x80": 1}', b'{"name": "\xed\xa0\x80"}',
                b'{"n": "\xf4\x90\x80\x80"}', b'{"n": "\xe0\x80\xaf"}'):
        st, _, b = c.req("POST", "/monitors", raw=bad)
        check_error(st, b, 400, "invalid_json", "non-RFC 3629 UTF-8 %r" % bad)
    st, _, b = c.req("POST", "/monitors", raw='{"name": "\u00fc\u65e5\U0001F600 ok"}'.encode(),
                     headers={"Content-Type": "application/json"})
    check(st == 400 and b["error"]["code"] == "validation_failed",
          "valid multi-byte UTF-8 still parses: %d %r" % (st, b))
    # HEAD answers carry no body, errors included, so a keep-alive connection stays in step
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    try:
        for path, want in (("/api/v1/monitors", 405), ("/api/v1/nope", 404),
                           ("/api/v1/auth/me", 405), ("/healthz", 200)):
            conn.request("HEAD", path, headers={"Authorization": "Bearer " + tok})
            resp = conn.getresponse()
            check(resp.status == want and resp.read() == b"",
                  "HEAD %s: %d, want %d" % (path, resp.status, want))
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            check(resp.status == 200 and resp.read() == b"ok\n",
                  "GET /healthz after HEAD %s on one connection: %d" % (path, resp.status))
    finally:
        conn.close()
    print("malformed http: %d civetweb refusals are JSON, bad UTF-8 keys refused, HEAD "
          "answers bodiless" % len(cases))


def test_admin_recheck(gw, uid):
    # the token says admin, the database says user: answered like an unknown route
    c = gw.client(forge(uid, "x@example.test", role="admin"))
    st, _, b = c.req("GET", "/admin/users")
    check_error(st, b, 404, "not_found", "admin route, role user in the database")
    admin = add_user("http-admin@example.test", "admin")
    st, _, b = gw.client(forge(admin, "http-admin@example.test", role="admin")).req(
        "GET", "/admin/users")
    check(st == 200, "admin route as an admin: %d %r" % (st, b))


def test_ops_endpoints(gw):
    c = gw.client()
    st, h, b = c.req("GET", "/healthz", prefix=False)
    check(st == 200 and b.strip() == "ok", "/healthz: %d %r" % (st, b))
    check_security(h, "/healthz")
    st, _, b = c.req("GET", "/readyz", prefix=False)
    check(st == 200 and b == {"ready": True}, "/readyz: %d %r" % (st, b))
    st, h, b = c.req("GET", "/metrics", prefix=False)
    check(st == 200 and h.get("content-type", "").startswith("text/plain"), "/metrics: %d" % st)
    for want in ('upmon_gateway_requests_total{route="/auth/me",method="GET",code="200"}',
                 'upmon_gateway_requests_total{route="unmatched",method="DELETE",code="405"}',
                 "upmon_gateway_request_duration_seconds_bucket",
                 "upmon_gateway_db_pool_in_use", "upmon_gateway_ratelimited_total",
                 "upmon_build_info"):
        check(want in b, "/metrics lacks %s" % want)
    # the admin port answers the same
    st, _, b = raw_req(gw.admin_port, "GET", "/metrics")
    check(st == 200 and "upmon_gateway_requests_total" in b, "admin /metrics: %d" % st)


def test_keepalive(gw, tok):
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    try:
        for i, (m, p, body, want) in enumerate([
                ("GET", "/api/v1/auth/me", None, 200),
                ("OPTIONS", "/api/v1/monitors", None, 204),
                ("POST", "/api/v1/monitors", '{"a": ', 400),
                ("GET", "/api/v1/auth/me", None, 200)]):
            hdrs = {"Authorization": "Bearer " + tok, "Content-Type": "application/json"}
            conn.request(m, p, body=body, headers=hdrs)
            resp = conn.getresponse()
            resp.read()
            check(resp.status == want, "keep-alive request %d (%s %s): %d, want %d" %
                  (i, m, p, resp.status, want))
    finally:
        conn.close()


def test_cors(origins_env):
    gw = g.Gateway.start(env=dict(origins_env, UPMON_GATEWAY_CORS_ORIGINS=
                                  "https://app.example.test, https://b.example.test"))
    try:
        c = gw.client()
        st, h, _ = c.req("GET", "/healthz", prefix=False,
                         headers={"Origin": "https://app.example.test"})
        check(h.get("access-control-allow-origin") == "https://app.example.test",
              "allowed origin: %r" % h.get("access-control-allow-origin"))
        check("Origin" in h.get("vary", ""), "Vary: Origin missing")
        st, h, _ = c.req("GET", "/healthz", prefix=False,
                         headers={"Origin": "https://b.example.test"})
        check(h.get("access-control-allow-origin") == "https://b.example.test",
              "second allowed origin")
        for o in ("https://evil.example.test", "https://app.example.test.evil",
                  "https://app.example.tes"):
            st, h, _ = c.req("GET", "/healthz", prefix=False, headers={"Origin": o})
            check("access-control-allow-origin" not in h, "origin %s got CORS headers" % o)
        st, h, b = c.req("OPTIONS", "/monitors", headers={
            "Origin": "https://app.example.test", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        check(st == 204, "preflight: %d %r" % (st, b))
        check(h.get("access-control-allow-origin") == "https://app.example.test",
              "preflight origin")
        meth = h.get("access-control-allow-methods", "")
        for m in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            check(m in meth, "preflight methods lack %s: %r" % (m, meth))
        hdrs = h.get("access-control-allow-headers", "").lower()
        check("authorization" in hdrs and "content-type" in hdrs, "preflight headers: %r" % hdrs)
        check(h.get("access-control-max-age") == "600", "preflight max-age")
        st, h, _ = c.req("OPTIONS", "/monitors", headers={"Origin": "https://evil.example.test"})
        check("access-control-allow-origin" not in h, "preflight of another origin allowed")
        st, _, b = c.req("OPTIONS", "/no/such/route",
                         headers={"Origin": "https://app.example.test"})
        check(st == 404, "preflight of an unknown route: %d" % st)
    finally:
        check(gw.stop() == 0, "cors gateway: exit status")


def test_rate_limit(env):
    gw = g.Gateway.start(env=dict(env, UPMON_GATEWAY_RATE_IP_PER_MIN="20"))
    try:
        # a loopback source address of our own: the counter key is ours alone
        src = random_source()
        for i in range(20):
            st, _, b = raw_req(gw.port, "GET", "/api/v1/auth/me", source=src)
            check(st == 401, "request %d under the limit: %d %r" % (i + 1, st, b))
        st, h, b = raw_req(gw.port, "GET", "/api/v1/auth/me", source=src)
        check_error(st, b, 429, "rate_limited", "21st request")
        ra = h.get("retry-after", "")
        check(ra.isdigit() and 1 <= int(ra) <= 60, "Retry-After %r" % ra)
        check_security(h, "429")
        # another address is not limited
        other = src.rsplit(".", 1)[0] + ".1"
        st, _, _ = raw_req(gw.port, "GET", "/api/v1/auth/me", source=other)
        check(st == 401, "another address was limited: %d" % st)
        st, _, b = raw_req(gw.port, "GET", "/metrics")
        check("upmon_gateway_ratelimited_total 1" in b, "ratelimited_total is not 1")
    finally:
        check(gw.stop() == 0, "rate-limit gateway: exit status")


def test_rate_limit_batched(env, tok):
    # limits >= 200 are taken from Redis in batches per worker thread: on one keep-alive
    # connection the count is still exact, and the limit is never exceeded
    gw = g.Gateway.start(env=dict(env, UPMON_GATEWAY_RATE_IP_PER_MIN="300"))
    try:
        src = random_source()
        conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10,
                                          source_address=(src, 0))
        hdrs = {"Authorization": "Bearer " + tok}
        try:
            for i in range(300):
                conn.request("GET", "/api/v1/auth/me", headers=hdrs)
                resp = conn.getresponse()
                resp.read()
                check(resp.status == 200, "batched limit, request %d: %d" % (i + 1, resp.status))
            conn.request("GET", "/api/v1/auth/me", headers=hdrs)
            resp = conn.getresponse()
            b = json.loads(resp.read())
            check_error(resp.status, b, 429, "rate_limited", "batched limit, request 301")
        finally:
            conn.close()
        st, _, b = raw_req(gw.port, "GET", "/api/v1/auth/me", headers=hdrs, source=src)
        check_error(st, b, 429, "rate_limited", "batched limit, another connection")
    finally:
        check(gw.stop() == 0, "batched rate-limit gateway: exit status")


def random_source():
    return "127.%d.%d.%d" % (random.randint(1, 254), random.randint(1, 254),
                             random.randint(2, 254))


def unavailable_count(gw):
    st, _, b = raw_req(gw.port, "GET", "/metrics")
    line = [l for l in b.splitlines()
            if l.startswith("upmon_gateway_ratelimit_unavailable_total")]
    check(st == 200 and line, "no ratelimit_unavailable_total in /metrics")
    return int(line[0].split()[-1])


def test_redis_down(env, tok, uid):
    # a source address of our own: Redis is shared, the counter must be this test's alone
    src = random_source()
    auth = {"Authorization": "Bearer " + tok}
    ctl = os.environ["UPMON_CTL"]
    gw = g.Gateway.start(env=dict(env, UPMON_GATEWAY_RATE_IP_PER_MIN="1000"))
    try:
        try:
            st, _, b = raw_req(gw.port, "GET", "/api/v1/auth/me", headers=auth, source=src)
            check(st == 200, "redis up: %d %r" % (st, b))
            check(unavailable_count(gw) == 0, "ratelimit_unavailable_total before the stop")
            subprocess.run([ctl, "stop", "redis"], check=True, stdout=subprocess.DEVNULL)
            for i in range(5):
                t0 = time.time()
                st, _, b = raw_req(gw.port, "GET", "/api/v1/auth/me", headers=auth,
                                   source=src)
                took = time.time() - t0
                check(st == 200 and b.get("id") == uid,
                      "redis down, request %d: %d %r" % (i, st, b))
                check(took < 2.0, "redis down, request %d took %.2f s" % (i, took))
            check(unavailable_count(gw) >= 1, "ratelimit_unavailable_total after the stop")
        finally:
            subprocess.run([ctl, "start", "redis"], check=True, stdout=subprocess.DEVNULL)
        # limits count again once Redis is back (the handle's backoff is at most 2 s)
        deadline = time.time() + 15
        while True:
            n1 = unavailable_count(gw)
            st, _, _ = raw_req(gw.port, "GET", "/api/v1/auth/me", headers=auth, source=src)
            check(st == 200, "after redis restart: %d" % st)
            if unavailable_count(gw) == n1:
                break
            if time.time() > deadline:
                fail("rate limits still failing open 15 s after redis came back")
            time.sleep(0.3)
    finally:
        check(gw.stop() == 0, "redis-down gateway: exit status")


def test_postgres_down(env, tok, uid):
    ctl = os.environ["UPMON_CTL"]
    gw = g.Gateway.start(env=env)
    c = gw.client(tok)
    try:
        try:
            c.ok("GET", "/auth/me")
            subprocess.run([ctl, "stop", "postgres"], check=True, stdout=subprocess.DEVNULL)
            t0 = time.time()
            st, h, b = c.req("GET", "/auth/me")
            check_error(st, b, 503, "unavailable", "postgres down")
            check(h.get("retry-after") == "1", "503 Retry-After: %r" % h.get("retry-after"))
            took = time.time() - t0
            check(took < 10, "postgres down: the answer took %.1f s" % took)
            deadline = time.time() + 10
            while True:
                st, _, b = c.req("GET", "/readyz", prefix=False)
                if st == 503:
                    check(b == {"ready": False}, "/readyz body while postgres is down: %r" % b)
                    break
                check(time.time() < deadline, "/readyz still 200 10 s after postgres stopped")
                time.sleep(0.3)
        finally:
            subprocess.run([ctl, "start", "postgres"], check=True, stdout=subprocess.DEVNULL)
        deadline = time.time() + 30
        while True:
            st, _, b = c.req("GET", "/auth/me")
            if st == 200:
                check(b.get("id") == uid, "after postgres restart: %r" % b)
                break
            check(st == 503, "while postgres comes back: %d %r" % (st, b))
            check(time.time() < deadline, "still 503 30 s after postgres restarted")
            time.sleep(0.3)
    finally:
        check(gw.stop() == 0, "postgres-down gateway: exit status")


def main():
    g.migrate()
    uid = add_user("http-user@example.test")
    tok = forge(uid, "http-user@example.test")
    # Redis is shared with other tests: no limit of theirs may bite here (the rate-limit
    # tests use source addresses of their own)
    env = {"UPMON_GATEWAY_RATE_AUTH_IP_PER_MIN": "0",
           "UPMON_GATEWAY_RATE_IP_PER_MIN": "100000000"}
    gw = g.Gateway.start(env=env)
    try:
        test_routing_and_bodies(gw, tok, uid)
        test_admin_recheck(gw, uid)
        test_malformed_http(gw, tok)
        test_keepalive(gw, tok)
        test_ops_endpoints(gw)
    finally:
        rc = gw.stop()
    check(rc == 0, "SIGTERM: exit status %d, want 0" % rc)
    test_cors(env)
    test_rate_limit(env)
    test_rate_limit_batched(env, tok)
    test_redis_down(env, tok, uid)
    test_postgres_down(env, tok, uid)
    print("ok")


if __name__ == "__main__":
    main()

"""Security of upmon-gateway (issue 4, R8), against a real gateway, PostgreSQL and Redis.

- Tenant isolation: A, with A's token, calls every monitor, check, alert and channel route
  with B's ids and gets exactly the 404 of a missing object; B's objects are unchanged
  afterwards; A's lists never contain B's rows.
- Tokens: expired, tampered payload or signature, alg none (with and without a signature),
  wrong secret, HS512, no exp, garbage -> 401 with the JSON error (a correctly forged token
  works, so the refusals are about the defect each one has).
- SQL metacharacters and Unicode in every string field of monitor and channel input are
  stored and returned verbatim, or refused with 400 where the field has a syntax; never 500.
- Malformed JSON, wrong types per field, unknown fields, oversized bodies -> 400/413/415 with
  the JSON error; repeated failed logins -> 429 with Retry-After.
- 300 seeded random requests (bodies, queries, headers, paths) never answer 5xx or hang.
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import random
import re
import socket
import sys
import time
import urllib.parse
import uuid

import upmon_gw as g

PW = "correct horse battery staple"
TAG = uuid.uuid4().hex[:8]
INJ = "x'; DROP TABLE monitors; -- \" \\ % _ ` $1 \u00fc \u65e5\u672c \U0001F600 <b>&amp;"
LOGIN_LIMIT = 5


SEC_HEADERS = {"x-content-type-options": "nosniff", "x-frame-options": "DENY",
               "referrer-policy": "no-referrer",
               "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
               "cache-control": "no-store"}


def sec_headers(h, what):
    for k, v in SEC_HEADERS.items():
        g.check(h.get(k) == v, "%s: header %s is %r, want %r" % (what, k, h.get(k), v))


def error_of(st, h, b, status, code, what):
    sec_headers(h, what)
    g.check(st == status, "%s: status %d, want %d: %r" % (what, st, status, str(b)[:300]))
    g.check("application/json" in h.get("content-type", ""),
            "%s: content-type %r" % (what, h.get("content-type")))
    g.check(isinstance(b, dict) and isinstance(b.get("error"), dict) and
            b["error"].get("code") == code and isinstance(b["error"].get("message"), str),
            "%s: error body %r, want code %s" % (what, b, code))
    return b["error"]


def user(gw, name):
    c = gw.client()
    email = "sec-%s-%s@example.test" % (name, TAG)
    c.register(email, PW)
    c.login(email, PW)
    c.me = c.ok("GET", "/auth/me")
    return c


# ---- tenant isolation ------------------------------------------------------------------------

def seed_b(b):
    mon = b.ok("POST", "/monitors", {"name": "b-monitor", "type": "http",
                                     "url": "http://127.0.0.1:9/b", "interval_seconds": 60,
                                     "tags": ["b-only"]}, want=201)
    ch = b.ok("POST", "/channels", {"name": "b-hook", "kind": "webhook",
                                    "config": {"url": "https://hooks.example.test/b"},
                                    "secret": "b-secret-0123456789"}, want=201)
    owner = b.me["id"]
    g.psql("SELECT upmon_ensure_partitions(2)")
    g.psql("INSERT INTO check_results (monitor_id, owner_id, scheduled_at, attempt, final, ok,"
           " status_code, latency_ms, checked_at, probe_host) VALUES (:'v1', :'v2',"
           " now() - interval '1 minute', 1, true, false, 500, 42, now(), 'p1')",
           mon["id"], owner)
    alert = g.psql("INSERT INTO alerts (owner_id, monitor_id, kind, dedup_key, message)"
                   " VALUES (:'v1', :'v2', 'down', 'down:' || :'v2' || ':sec', 'b is down')"
                   " RETURNING id", owner, mon["id"])[0][0]
    mw = b.ok("POST", "/maintenance-windows", {
        "name": "b-window", "monitor_id": mon["id"], "kind": "once",
        "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-01T01:00:00Z"}, want=201)
    b.ok("PUT", "/monitors/%s/channels" % mon["id"], {"channel_ids": [ch["id"]]})
    return mon, ch, alert, mw


def snapshot(b, mon, ch, alert, mw):
    return {
        "monitor": b.ok("GET", "/monitors/" + mon["id"]),
        "channel": b.ok("GET", "/channels/" + ch["id"]),
        "checks": b.ok("GET", "/monitors/%s/checks" % mon["id"])["items"],
        "alert": g.psql("SELECT acked_at IS NULL, acked_by IS NULL, message FROM alerts"
                        " WHERE id = :'v1'", alert),
        "db_monitor": g.psql("SELECT name, paused, url, updated_at FROM monitors"
                             " WHERE id = :'v1'", mon["id"]),
        "db_channel": g.psql("SELECT name, config::text, secret, enabled, updated_at"
                             " FROM notification_channels WHERE id = :'v1'", ch["id"]),
        "outbox": g.psql("SELECT count(*) FROM outbox"),
        "links": b.ok("GET", "/monitors/%s/channels" % mon["id"]),
        "window": b.ok("GET", "/maintenance-windows/" + mw["id"]),
        "db_window": g.psql("SELECT name, kind, starts_at, ends_at, updated_at"
                            " FROM maintenance_windows WHERE id = :'v1'", mw["id"]),
    }


def test_isolation(a, b):
    mon, ch, alert, mw = seed_b(b)
    mine = a.ok("POST", "/monitors", {"name": "a-monitor", "type": "tcp", "host": "127.0.0.1",
                                      "port": 9, "interval_seconds": 60}, want=201)
    a.ok("POST", "/channels", {"name": "a-mail", "kind": "email",
                               "config": {"to": ["a@example.test"]}}, want=201)
    before = snapshot(b, mon, ch, alert, mw)
    g.check(len(before["checks"]) == 1, "B's check row not visible to B: %r" % before)

    m, c, w = mon["id"], ch["id"], mw["id"]
    mon_body = {"name": "stolen", "type": "http", "url": "http://127.0.0.1:9/a",
                "interval_seconds": 60}
    ch_body = {"name": "stolen", "kind": "email", "config": {"to": ["a@example.test"]}}
    calls = [
        ("GET", "/monitors/" + m, None), ("PUT", "/monitors/" + m, mon_body),
        ("PATCH", "/monitors/" + m, {"name": "stolen"}), ("DELETE", "/monitors/" + m, None),
        ("POST", "/monitors/%s/pause" % m, None), ("POST", "/monitors/%s/resume" % m, None),
        ("GET", "/monitors/%s/checks" % m, None), ("GET", "/monitors/%s/status" % m, None),
        ("GET", "/monitors/%s/summary" % m, None), ("GET", "/monitors/%s/incidents" % m, None),
        ("POST", "/alerts/%s/ack" % alert, None),
        ("GET", "/channels/" + c, None), ("PUT", "/channels/" + c, ch_body),
        ("PATCH", "/channels/" + c, {"name": "stolen"}), ("DELETE", "/channels/" + c, None),
        ("POST", "/channels/%s/test" % c, None),
        ("GET", "/monitors/%s/channels" % m, None),
        ("PUT", "/monitors/%s/channels" % m, {"channel_ids": []}),
        ("GET", "/maintenance-windows/" + w, None),
        ("PUT", "/maintenance-windows/" + w, {"kind": "once",
                                               "starts_at": "2031-01-01T00:00:00Z",
                                               "ends_at": "2031-01-01T01:00:00Z"}),
        ("PATCH", "/maintenance-windows/" + w, {"name": "stolen"}),
        ("DELETE", "/maintenance-windows/" + w, None),
    ]
    for meth, path, body in calls:
        st, h, resp = a.req(meth, path, body=body)
        e = error_of(st, h, resp, 404, "not_found", "A %s %s (B's id)" % (meth, path))
        # exactly the answer for an id that does not exist at all
        missing = path.replace(m, str(uuid.uuid4())).replace(c, str(uuid.uuid4())).replace(
            alert, str(uuid.uuid4())).replace(w, str(uuid.uuid4()))
        st2, h2, resp2 = a.req(meth, missing, body=body)
        g.check((st2, resp2) == (st, resp),
                "%s %s: another tenant's object answers %d %r, a missing one %d %r" % (
                    meth, path, st, resp, st2, resp2))
        g.check("fields" not in e, "404 with fields: %r" % e)

    # B's ids inside A's own requests: refused like ids that do not exist
    st, h, resp = a.req("PUT", "/monitors/%s/channels" % mine["id"], body={"channel_ids": [c]})
    e = error_of(st, h, resp, 400, "validation_failed", "A links B's channel")
    g.check("unknown channel" in json.dumps(e.get("fields")), "link answer: %r" % e)
    st, h, resp = a.req("POST", "/maintenance-windows", body={
        "monitor_id": m, "kind": "once", "starts_at": "2030-01-01T00:00:00Z",
        "ends_at": "2030-01-01T01:00:00Z"})
    e = error_of(st, h, resp, 400, "validation_failed", "A's window on B's monitor")
    g.check("unknown monitor" in json.dumps(e.get("fields")), "window answer: %r" % e)

    after = snapshot(b, mon, ch, alert, mw)
    for k in before:
        g.check(before[k] == after[k], "B's %s changed by A's calls:\n%r\n%r" % (
            k, before[k], after[k]))

    # A's lists and counters never show B's rows
    lists = ["/monitors", "/monitors?tag=b-only", "/monitors?q=b-monitor", "/alerts",
             "/alerts?monitor_id=" + m, "/channels", "/monitors?status=pending",
             "/maintenance-windows", "/maintenance-windows?monitor_id=" + m]
    for p in lists:
        st, _, resp = a.req("GET", p)
        if st == 200:
            ids = json.dumps(resp)
            g.check(m not in ids and c not in ids and alert not in ids and w not in ids and
                    "b-monitor" not in ids and "b-hook" not in ids and "b-window" not in ids,
                    "A's %s shows B's rows: %r" % (p, resp))
        else:
            g.check(st in (400, 404), "A's %s: %d %r" % (p, st, resp))
    st, h, _ = a.req("GET", "/monitors")
    sec_headers(h, "GET /monitors")
    own = [x["id"] for x in a.ok("GET", "/monitors")["items"]]
    g.check(own == [mine["id"]], "A's monitors: %r" % own)
    d = a.ok("GET", "/dashboard/summary")
    g.check(d["monitors"]["total"] == 1 and d["unacked_alerts"] == 0,
            "A's dashboard counts B: %r" % d)
    print("isolation: %d calls with B's ids -> 404, B unchanged" % len(calls))
    return mon


# ---- tokens -----------------------------------------------------------------------------------

def b64u(data):
    if isinstance(data, (dict, list)):
        data = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(header, claims, secret=g.Gateway.SECRET, alg=hashlib.sha256, sig=None):
    head = b64u(header) + "." + b64u(claims)
    if sig is None:
        sig = b64u(hmac.new(secret.encode(), head.encode(), alg).digest())
    return head + "." + sig


def test_tokens(gw, a):
    now = int(time.time())
    me = a.me
    claims = {"sub": me["id"], "email": me["email"], "role": "user", "iat": now,
              "exp": now + 600, "iss": "upmon"}
    hs256 = {"alg": "HS256", "typ": "JWT"}
    good = jwt(hs256, claims)
    st, _, b = gw.client(good).req("GET", "/auth/me")
    g.check(st == 200 and b["id"] == me["id"], "a correctly forged token is refused: %d %r" %
            (st, b))
    parts = good.split(".")
    tampered_claims = b64u(dict(claims, role="admin"))
    flipped = parts[2][:-2] + ("A" if parts[2][-2] != "A" else "B") + parts[2][-1]
    bad = {
        "expired": jwt(hs256, dict(claims, iat=now - 7200, exp=now - 3600)),
        "tampered payload": parts[0] + "." + tampered_claims + "." + parts[2],
        "tampered sub": parts[0] + "." + b64u(dict(claims, sub=str(uuid.uuid4()))) + "." +
        parts[2],
        "tampered signature": parts[0] + "." + parts[1] + "." + flipped,
        "alg none unsigned": b64u({"alg": "none", "typ": "JWT"}) + "." + parts[1] + ".",
        "alg none signed": b64u({"alg": "none", "typ": "JWT"}) + "." + parts[1] + "." +
        parts[2],
        "alg None": b64u({"alg": "None"}) + "." + parts[1] + ".",
        "wrong secret": jwt(hs256, claims, secret="another-secret-0123456789-abcdefghij"),
        "HS512": jwt({"alg": "HS512", "typ": "JWT"}, claims, alg=hashlib.sha512),
        "HS384": jwt({"alg": "HS384", "typ": "JWT"}, claims, alg=hashlib.sha384),
        "RS256 header": jwt({"alg": "RS256", "typ": "JWT"}, claims),
        "no exp": jwt(hs256, {k: v for k, v in claims.items() if k != "exp"}),
        "wrong iss": jwt(hs256, dict(claims, iss="evil")),
        "sub not a uuid": jwt(hs256, dict(claims, sub="1 OR 1=1")),
        "garbage": "garbage",
        "three dots": "a.b.c",
        "empty parts": "..",
        "long": "x" * 6000,
        "unicode": "\u00e9t\u00e9".encode().decode("latin-1"),
        "only header": parts[0],
    }
    for name, tok in bad.items():
        st, h, b = gw.client(tok).req("GET", "/monitors")
        error_of(st, h, b, 401, "unauthorized", "token %s" % name)
    for name, value in (("no scheme", good), ("basic", "Basic " + b64u(b"a:b")),
                        ("bearer empty", "Bearer "), ("bearer spaces", "Bearer    ")):
        st, h, b = gw.client().req("GET", "/monitors", headers={"Authorization": value})
        error_of(st, h, b, 401, "unauthorized", "authorization %s" % name)
    st, h, b = gw.client().req("GET", "/monitors")
    error_of(st, h, b, 401, "unauthorized", "no token")
    print("tokens: %d bad tokens -> 401" % (len(bad) + 5))


# ---- injection and Unicode --------------------------------------------------------------------

def test_injection(a):
    base = {"type": "http", "url": "http://127.0.0.1:9/x", "interval_seconds": 60}
    # free-text fields: stored and returned verbatim
    verbatim = {
        "name": INJ, "body": INJ, "keyword": INJ, "headers": {"X-Inj": INJ},
        "tags": [INJ[:64], "\u65e5\u672c\u8a9e"],
    }
    for field, value in verbatim.items():
        body = dict(base, name="inj-" + field, **{field: value}) if field != "name" else \
            dict(base, name=value)
        st, _, m = a.req("POST", "/monitors", body=body)
        g.check(st == 201, "monitor %s with metacharacters: %d %r" % (field, st, m))
        got = a.ok("GET", "/monitors/" + m["id"])
        g.check(got[field] == value, "monitor %s not verbatim: %r != %r" % (field, got[field],
                                                                             value))
        a.ok("DELETE", "/monitors/" + m["id"], want=204)
    # fields with a syntax: verbatim when accepted ("either"), else a clean 400 naming the
    # field; "refuse" cases break the field's syntax and must be refused
    syntax = [
        ("url", "either", dict(base, name="inj-url",
                               url="http://127.0.0.1:9/x'%3B--\"\u65e5\U0001F600")),
        ("url", "refuse", dict(base, name="inj-url2", url="http://127.0.0.1:9/x' OR '1'='1")),
        ("url", "refuse", dict(base, name="inj-url3", url="javascript:alert(1)//")),
        ("host", "either", {"name": "inj-host", "type": "tcp", "host": "h';DROP--\u65e5\u672c",
                            "port": 9, "interval_seconds": 60}),
        ("host", "refuse", {"name": "inj-host2", "type": "tcp", "host": "a b'; --", "port": 9,
                            "interval_seconds": 60}),
        ("method", "refuse", dict(base, name="inj-method", method="GET'; DROP TABLE users; --")),
        ("method", "refuse", dict(base, name="inj-method2", method="get")),
        ("expected_status", "refuse", dict(base, name="inj-es", expected_status="200'; --")),
        ("headers", "refuse", dict(base, name="inj-hname", headers={"X'; DROP": "v"})),
        ("headers", "refuse", dict(base, name="inj-hval", headers={"X-A": "v\r\nX-Evil: 1"})),
        ("name", "refuse", dict(base, name="nul\u0000byte")),
        ("name", "refuse", dict(base, name="line\nbreak")),
        ("tags", "refuse", dict(base, name="inj-tag", tags=["ctl\u0001"])),
    ]
    for field, mode, body in syntax:
        st, h, m = a.req("POST", "/monitors", body=body)
        if st == 201 and mode == "either":
            got = a.ok("GET", "/monitors/" + m["id"])
            g.check(got[field] == body[field], "monitor %s not verbatim: %r != %r" % (
                field, got[field], body[field]))
            a.ok("DELETE", "/monitors/" + m["id"], want=204)
            print("  monitor %s %r: stored verbatim" % (field, body[field]))
            continue
        e = error_of(st, h, m, 400, "validation_failed", "monitor %s %r" % (field, body[field]))
        print("  monitor %s %r: refused (%s)" % (field, body[field], e.get("fields")))
        g.check(any(k == field or k.startswith(field + "[") or k.startswith(field + ".")
                    for k in e.get("fields", {})),
                "monitor %s refused without naming it: %r" % (field, e))
    # channels
    ch_cases = [
        ("name", {"name": INJ, "kind": "email", "config": {"to": ["a@example.test"]}}),
        ("config", {"name": "inj-to", "kind": "email",
                    "config": {"to": ["o'hara+\u65e5@example.test"]}}),
        ("config", {"name": "inj-to2", "kind": "email",
                    "config": {"to": ["x@example.test'; DROP TABLE users; --"]}}),
        ("config", {"name": "inj-url", "kind": "webhook",
                    "config": {"url": "https://example.test/h?x='--\u65e5\U0001F600"}}),
        ("config", {"name": "inj-url2", "kind": "webhook",
                    "config": {"url": "https://example.test/h x'--"}}),
    ]
    for field, body in ch_cases:
        st, h, c = a.req("POST", "/channels", body=body)
        if st == 201:
            got = a.ok("GET", "/channels/" + c["id"])
            g.check(got[field] == body[field], "channel %s not verbatim: %r != %r" % (
                field, got[field], body[field]))
            a.ok("DELETE", "/channels/" + c["id"], want=204)
            print("  channel %s %r: stored verbatim" % (field, body[field]))
        else:
            e = error_of(st, h, c, 400, "validation_failed", "channel %r" % body[field])
            g.check(any(k == field or k.startswith(field + ".") for k in e.get("fields", {})),
                    "channel %s refused without naming it: %r" % (field, e))
            print("  channel %s %r: refused (%s)" % (field, body[field], e.get("fields")))
    st, _, c = a.req("POST", "/channels", body=ch_cases[0][1])
    g.check(st == 201 and c["name"] == INJ, "channel name verbatim: %d %r" % (st, c))
    # metacharacters in query parameters: A has one monitor, "a-monitor"; none of these
    # substrings is in its name (LIKE wildcards must be matched literally)
    for q in ("q=%27%20OR%201%3D1%20--", "tag=%27%3B%20DROP%20TABLE%20monitors%3B--",
              "q=%25", "q=_", "q=%5C", "q=%E6%97%A5", "q=%27", "tag=%25"):
        st, h, b = a.req("GET", "/monitors?" + q)
        g.check(st == 200 and b["items"] == [], "GET /monitors?%s: %d %r" % (q, st, b))
    st, h, b = a.req("GET", "/monitors?q=MONITOR")
    g.check(st == 200 and [x["name"] for x in b["items"]] == ["a-monitor"],
            "case-insensitive q: %d %r" % (st, b))
    st, h, b = a.req("GET", "/monitors?cursor=%27%20OR%201%3D1")
    error_of(st, h, b, 400, "bad_request" if b.get("error", {}).get("code") == "bad_request"
             else "validation_failed", "cursor injection")
    g.check(g.psql("SELECT count(*) FROM monitors")[0][0] != "0" and
            g.psql("SELECT count(*) FROM users")[0][0] != "0", "tables emptied?!")
    print("injection: verbatim or refused cleanly, never 500")


# ---- malformed input ---------------------------------------------------------------------------

def test_malformed(gw, a):
    for raw in (b"{", b"", b"null", b"[1]", b'"str"', b"1", b'{"name": }', b'{"a":1}{"b":2}',
                b'{"name": "x", "name": "y"', b"\xff\xfe", b"[" * 20000 + b"]" * 20000,
                b'{"interval_seconds": 1e999}', b'{"a": "\\ud800"}', b"\x00"):
        st, h, b = a.req("POST", "/monitors", raw=raw)
        g.check(st == 400 and isinstance(b, dict) and "error" in b,
                "malformed %r: %d %r" % (raw[:40], st, b))
        error_of(st, h, b, 400, b["error"].get("code"), "malformed %r" % raw[:40])
        g.check(b["error"]["code"] in ("invalid_json", "bad_request", "validation_failed"),
                "malformed %r: code %r" % (raw[:40], b["error"]["code"]))
    st, h, b = a.req("POST", "/monitors", raw=b'{"name": "\xff\xfe"}')
    g.check(st == 400, "invalid UTF-8 in a string: %d %r" % (st, b))
    base = {"name": "types", "type": "http", "url": "http://127.0.0.1:9/", "interval_seconds": 60}
    wrong = {"name": 1, "type": 2, "url": 3, "interval_seconds": "60", "port": "80",
             "method": 1, "headers": [], "body": 5, "expected_status": 200, "keyword": True,
             "keyword_absent": "no", "max_latency_ms": 1.5, "follow_redirects": 1,
             "max_redirects": "5", "verify_tls": "true", "cert_expiry_days": [],
             "timeout_ms": {}, "retries": "2", "failure_threshold": 1.5,
             "recovery_threshold": "1", "reminder_minutes": "10", "paused": "false",
             "tags": "a"}
    for field, value in wrong.items():
        body = dict(base, **{field: value})
        if field == "port":
            body = {"name": "types", "type": "tcp", "host": "h", "port": "80",
                    "interval_seconds": 60}
        st, h, b = a.req("POST", "/monitors", body=body)
        e = error_of(st, h, b, 400, "validation_failed", "wrong type %s=%r" % (field, value))
        g.check(field in e.get("fields", {}), "wrong type %s: fields %r" % (field, e))
    for body in ({"tags": [1]}, {"headers": {"X-A": 1}}, {"interval_seconds": 2 ** 63},
                 {"interval_seconds": -1}):
        st, h, b = a.req("POST", "/monitors", body=dict(base, **body))
        error_of(st, h, b, 400, "validation_failed", "wrong value %r" % body)
    st, h, b = a.req("POST", "/monitors", body=dict(base, evil=1, **{"$where": 2}))
    e = error_of(st, h, b, 400, "validation_failed", "unknown fields")
    g.check(e["fields"].get("evil") == "unknown field" and
            e["fields"].get("$where") == "unknown field", "unknown fields: %r" % e)
    for body in ({"name": 1, "kind": "email", "config": {"to": ["a@example.test"]}},
                 {"name": "c", "kind": "sms", "config": {}},
                 {"name": "c", "kind": "email", "config": {"to": "a@example.test"}},
                 {"name": "c", "kind": "email", "config": {"to": ["a@example.test"], "x": 1}},
                 {"name": "c", "kind": "email", "config": []},
                 {"name": "c", "kind": "email", "config": {"to": ["a@example.test"]},
                  "secret": "0123456789abcdef0"},
                 {"name": "c", "kind": "webhook", "config": {"url": "ftp://x"}},
                 {"name": "c", "kind": "webhook", "config": {"url": "https://x"},
                  "enabled": "yes"}):
        st, h, b = a.req("POST", "/channels", body=body)
        error_of(st, h, b, 400, "validation_failed", "channel %r" % body)
    st, h, b = a.req("POST", "/auth/register", body={"email": 1, "password": ["x"]})
    e = error_of(st, h, b, 400, "validation_failed", "register wrong types")
    g.check("email" in e["fields"] and "password" in e["fields"], "register fields %r" % e)
    # oversized: over UPMON_GATEWAY_MAX_BODY_BYTES (65536 by default)
    big = json.dumps(dict(base, body="x" * 70000))
    st, h, b = a.req("POST", "/monitors", raw=big)
    error_of(st, h, b, 413, "payload_too_large", "oversized body")
    st, h, b = a.req("POST", "/monitors", raw=json.dumps(base),
                     headers={"Content-Type": "text/plain"})
    error_of(st, h, b, 415, "unsupported_media_type", "text/plain body")
    st, h, b = a.req("GET", "/monitors?limit=abc&frob=1")
    e = error_of(st, h, b, 400, "validation_failed", "bad query")
    g.check("frob" in e.get("fields", {}), "unknown query parameter not named: %r" % e)
    st, h, b = a.req("GET", "/monitors?limit=0")
    error_of(st, h, b, 400, "validation_failed", "limit 0")
    print("malformed: all refused with the JSON error")


def test_login_limit(gw):
    """UPMON_GATEWAY_RATE_LOGIN_ACCOUNT failed logins per window, then 429."""
    c = gw.client()
    email = "sec-limit-%s@example.test" % TAG
    c.register(email, PW)
    for who in (email, "sec-nobody-%s@example.test" % TAG):
        statuses = []
        for i in range(LOGIN_LIMIT + 2):
            st, h, b = c.req("POST", "/auth/login", body={"email": who,
                                                          "password": "wrong-pw-%d" % i})
            statuses.append(st)
            if st == 429:
                error_of(st, h, b, 429, "rate_limited", "failed login %d" % i)
                ra = h.get("retry-after", "")
                g.check(ra.isdigit() and 0 < int(ra) <= 300, "Retry-After %r" % ra)
                break
            error_of(st, h, b, 401, "unauthorized", "failed login %d of %s" % (i, who))
        g.check(statuses[-1] == 429 and len(statuses) >= LOGIN_LIMIT + 1,
                "failed logins of %s: %r (limit %d)" % (who, statuses, LOGIN_LIMIT))
    # the right password is limited too while the window lasts
    st, h, b = c.req("POST", "/auth/login", body={"email": email, "password": PW})
    error_of(st, h, b, 429, "rate_limited", "right password while limited")
    print("login limit: 429 after %d failures" % LOGIN_LIMIT)


# ---- fuzz --------------------------------------------------------------------------------------

def route_table():
    with open(os.path.join(os.environ["UPMON_SOURCE_DIR"], "services", "gateway",
                           "routes.c")) as f:
        return re.findall(r'\{\s*"([A-Z]+)"\s*,\s*"(/[^"]*)"\s*,\s*gw_\w+', f.read())


def fuzz(gw, a, b_mon, n=300, seed=4242):
    rnd = random.Random(seed)
    own = a.ok("POST", "/monitors", {"name": "fuzz-own", "type": "http",
                                     "url": "http://127.0.0.1:9/", "interval_seconds": 60},
               want=201)
    own_ch = a.ok("POST", "/channels", {"name": "fuzz-ch", "kind": "email",
                                        "config": {"to": ["a@example.test"]}}, want=201)
    ids = [b_mon["id"], str(uuid.uuid4()), "x", "%00", "..%2f..", "00000000-0000-0000-0000-"
           "000000000000", "A" * 300, "\u65e5", own["id"], own["id"], own_ch["id"],
           own["id"].upper()]
    routes = route_table()
    valid = {"/monitors": {"name": "fuzz", "type": "http", "url": "http://127.0.0.1:9/",
                           "interval_seconds": 60},
             "/channels": {"name": "fuzz", "kind": "webhook",
                           "config": {"url": "https://example.test/"}},
             "/auth": {"email": "fuzz@example.test", "password": "0123456789"},
             "/admin": {"queue": "monitor_tasks_dead", "limit": 1}}
    paths = ["/auth/register", "/auth/login", "/auth/me", "/monitors", "/monitors/{id}",
             "/monitors/{id}/pause", "/monitors/{id}/resume", "/monitors/{id}/checks",
             "/monitors/{id}/status", "/monitors/{id}/summary", "/monitors/{id}/incidents",
             "/alerts", "/alerts/{id}/ack", "/dashboard/summary", "/channels",
             "/channels/{id}", "/channels/{id}/test", "/admin/queues", "/admin/dlq",
             "/admin/users", "/%2e%2e/etc/passwd", "//monitors", "/monitors/"]
    keys = ["name", "type", "url", "host", "port", "method", "headers", "body",
            "expected_status", "keyword", "interval_seconds", "tags", "kind", "config",
            "email", "password", "queue", "limit", "secret", "enabled", "paused", "x"]
    qkeys = ["limit", "cursor", "status", "tag", "q", "from", "to", "final", "window",
             "kind", "acked", "monitor_id", "queue", "%00", "a[]", "limit"]

    def value(depth=0):
        k = rnd.randrange(10)
        if k == 0:
            return rnd.randint(-2 ** 70, 2 ** 70)
        if k == 1:
            return rnd.random() * 10 ** rnd.randint(-5, 30)
        if k == 2:
            return rnd.choice([True, False, None])
        if k in (3, 4):
            return "".join(chr(rnd.choice([rnd.randint(0, 0x7f), rnd.randint(0x80, 0xd7ff),
                                           rnd.randint(0xe000, 0x10ffff)]))
                           for _ in range(rnd.randint(0, 40)))
        if k == 5:
            return rnd.choice([INJ, "http://127.0.0.1:9/", "tcp", "http", "GET", "200-299",
                               "monitor_tasks_dead", "a@example.test", "x" * 3000])
        if k == 6 and depth < 4:
            return [value(depth + 1) for _ in range(rnd.randint(0, 5))]
        if k == 7 and depth < 4:
            return {rnd.choice(keys): value(depth + 1) for _ in range(rnd.randint(0, 5))}
        return rnd.randint(0, 100000)

    def qval():
        v = "".join(rnd.choice("abc%0123456789:-T.Z'\" ;,&=+/\\\u00e9") for _ in
                    range(rnd.randint(0, 30)))
        return urllib.parse.quote(v, safe="%'\";,:+")

    started = time.time()
    worst = 0.0
    codes = {}
    for i in range(n):
        if rnd.random() < 0.75:
            method, tpl = rnd.choice(routes)
        else:
            method = rnd.choice(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"])
            tpl = rnd.choice(paths)
        path = "/api/v1" + tpl.replace("{id}", rnd.choice(ids))
        if rnd.random() < 0.6:
            path += "?" + "&".join("%s=%s" % (rnd.choice(qkeys), qval())
                                   for _ in range(rnd.randint(1, 4)))
        hdrs = {}
        r = rnd.random()
        if r < 0.8:
            hdrs["Authorization"] = "Bearer " + a.token
        elif r < 0.9:
            hdrs["Authorization"] = rnd.choice(["Bearer", "Bearer " + "a." * 50, "Digest x",
                                                "Bearer " + a.token[:-3]])
        body = None
        r = rnd.random()
        if r < 0.3:
            # a valid body of the area with one field changed or added
            area = next((v for k, v in valid.items() if tpl.startswith(k)), valid["/monitors"])
            doc = dict(area)
            doc[rnd.choice(list(area) + keys)] = value()
            body = json.dumps(doc).encode()
        elif r < 0.5:
            body = json.dumps({rnd.choice(keys): value() for _ in range(rnd.randint(0, 8))})
            body = body.encode()
        elif r < 0.6:
            body = bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 200)))
        elif r < 0.7:
            body = json.dumps(value()).encode()
        if body is not None:
            hdrs["Content-Type"] = rnd.choice(["application/json", "application/json",
                                               "application/json; charset=utf-8", "text/plain",
                                               "application/x-www-form-urlencoded", ""])
        if rnd.random() < 0.2:
            hdrs["Origin"] = rnd.choice(["http://evil.example", "null", "http://127.0.0.1"])
        if rnd.random() < 0.1:
            hdrs["X-Forwarded-For"] = qval()
        t0 = time.time()
        conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=15)
        try:
            conn.request(method, urllib.parse.quote(path, safe="/?&=%:'\";,+"),
                         body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            st = resp.status
        except (socket.timeout, TimeoutError):
            g.fail("fuzz %d: %s %s hung (no answer in 15 s)" % (i, method, path))
        except (http.client.HTTPException, OSError) as e:
            g.fail("fuzz %d: %s %s: connection failed: %r" % (i, method, path, e))
        finally:
            conn.close()
        took = time.time() - t0
        worst = max(worst, took)
        codes[st] = codes.get(st, 0) + 1
        g.check(st < 500, "fuzz %d: %s %s body %r -> %d %r" % (i, method, path,
                                                              (body or b"")[:200], st,
                                                              data[:300]))
        if st >= 400 and method != "HEAD":
            try:
                e = json.loads(data.decode())
            except ValueError:
                g.fail("fuzz %d: %s %s -> %d without a JSON error: %r" % (i, method, path, st,
                                                                          data[:200]))
            g.check(isinstance(e, dict) and "error" in e, "fuzz %d: error body %r" % (i, e))
    g.check(gw.proc.poll() is None, "gateway died during the fuzz")
    print("fuzz: %d requests in %.1f s, slowest %.2f s, statuses %r" % (
        n, time.time() - started, worst, dict(sorted(codes.items()))))


def main():
    g.migrate()
    gw = g.Gateway.start(env={"UPMON_GATEWAY_RATE_AUTH_IP_PER_MIN": "100000",
                              "UPMON_GATEWAY_RATE_LOGIN_ACCOUNT": str(LOGIN_LIMIT),
                              "UPMON_GATEWAY_RATE_LOGIN_WINDOW_S": "300"})
    ok = False
    try:
        a = user(gw, "a")
        b = user(gw, "b")
        b_mon = test_isolation(a, b)
        test_tokens(gw, a)
        test_injection(a)
        test_malformed(gw, a)
        test_login_limit(gw)
        fuzz(gw, a, b_mon)
        ok = True
    finally:
        rc = gw.stop()
    g.check(ok and rc == 0, "upmon-gateway exited with %d" % rc)
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())

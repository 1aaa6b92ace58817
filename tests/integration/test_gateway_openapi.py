"""docs/openapi.yaml stays true to the gateway.

1. The (method, path) pairs of the spec under /api/v1 are exactly the route table of
   services/gateway/routes.c.
2. A scripted tour against a real gateway (register, login, monitors, history, alerts,
   channels, monitor channel links, maintenance windows, admin with an admin user)
   validates every answer's body against the spec's schema
   for that operation and status (an undocumented status fails), every error answer against
   Error, and ends with every route of routes.c answered with a documented 2xx at least once.
"""
import os
import re
import sys
import uuid

import jsonschema
import yaml

import upmon_gw as g

SRC = os.environ["UPMON_SOURCE_DIR"]
METHODS = ("get", "put", "post", "delete", "patch", "options", "head")


def load_spec():
    with open(os.path.join(SRC, "docs", "openapi.yaml")) as f:
        return yaml.safe_load(f)


def route_table():
    with open(os.path.join(SRC, "services", "gateway", "routes.c")) as f:
        text = f.read()
    rows = re.findall(r'\{\s*"([A-Z]+)"\s*,\s*"(/[^"]*)"\s*,\s*gw_\w+\s*,', text)
    g.check(len(rows) >= 20, "routes.c: only %d routes parsed" % len(rows))
    pairs = set(rows)
    g.check(len(pairs) == len(rows), "routes.c has duplicate routes")
    return pairs


def api_ops(spec):
    """(METHOD, path) of the operations under the /api/v1 server (paths without a servers
    override)."""
    out = set()
    for path, item in spec["paths"].items():
        if "servers" in item:
            continue
        for m in item:
            if m in METHODS:
                out.add((m.upper(), path))
    return out


def check_spec_matches_routes(spec):
    g.check(spec.get("openapi", "").startswith("3.1"), "openapi version is not 3.1")
    g.check(spec["servers"] == [{"url": "/api/v1"}], "servers: %r" % spec["servers"])
    routes = route_table()
    ops = api_ops(spec)
    missing = sorted(routes - ops)
    extra = sorted(ops - routes)
    g.check(not missing, "routes.c routes missing from openapi.yaml: %r" % missing)
    g.check(not extra, "openapi.yaml operations not in routes.c: %r" % extra)
    for p in ("/healthz", "/readyz", "/metrics"):
        g.check(p in spec["paths"] and spec["paths"][p].get("servers") == [{"url": "/"}],
                "ops path %s missing or without its servers override" % p)
    # every schema is a valid 2020-12 schema; public routes say so
    for name, sc in spec["components"]["schemas"].items():
        try:
            jsonschema.Draft202012Validator.check_schema(sc)
        except jsonschema.SchemaError as e:
            g.fail("components.schemas.%s: %s" % (name, e.message))
    for path, item in spec["paths"].items():
        for m, op in item.items():
            if m not in METHODS:
                continue
            public = op.get("security") == []
            want_public = path in ("/auth/register", "/auth/login") or "servers" in item
            g.check(public == want_public, "%s %s: security %r" % (m, path, op.get("security")))
            if not public:
                g.check("401" in op["responses"], "%s %s: no 401" % (m, path))
                g.check("429" in op["responses"], "%s %s: no 429" % (m, path))
            if "{id}" in path or path.startswith("/admin"):
                g.check("404" in op["responses"], "%s %s: no 404" % (m, path))
    print("spec: %d operations == routes.c" % len(ops))
    return routes


class Validator:
    """Validates answers against the spec and records which routes answered a 2xx."""

    def __init__(self, spec):
        self.spec = spec
        self.seen_ok = set()
        self.count = 0
        self.templates = []
        for path, item in spec["paths"].items():
            rx = "^" + re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(path)) + "$"
            prefix = "" if "servers" in item else "/api/v1"
            self.templates.append((re.compile(rx), path, prefix))

    def schema(self, ref_schema):
        return dict(ref_schema, components=self.spec["components"])

    def validate(self, what, sc, body):
        v = jsonschema.Draft202012Validator(self.schema(sc))
        errs = sorted(v.iter_errors(body), key=lambda e: list(e.path))
        if errs:
            e = errs[0]
            g.fail("%s: answer does not match the spec at %s: %s\nbody: %s" % (
                what, "/".join(str(p) for p in e.absolute_path) or "(root)", e.message,
                str(body)[:600]))

    def resolve(self, obj):
        while isinstance(obj, dict) and "$ref" in obj:
            parts = obj["$ref"].lstrip("#/").split("/")
            obj = self.spec
            for p in parts:
                obj = obj[p]
        return obj

    def find(self, method, full_path):
        path = full_path.split("?", 1)[0]
        for rx, tpl, prefix in self.templates:
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix):] if prefix else path
            if rx.match(rest):
                item = self.spec["paths"][tpl]
                return tpl, item.get(method.lower())
        return None, None

    def answer(self, method, full_path, status, headers, body):
        """Checks one answer; returns the body."""
        self.count += 1
        what = "%s %s -> %d" % (method, full_path, status)
        if status >= 400:
            g.check(isinstance(body, dict), "%s: error answer is not JSON: %r" % (what, body))
            self.validate(what + " (Error)", {"$ref": "#/components/schemas/Error"}, body)
        tpl, op = self.find(method, full_path)
        if op is None:
            g.check(status in (404, 405), "%s: no operation in the spec for it" % what)
            if status == 405:
                g.check("allow" in headers, "%s: 405 without Allow" % what)
            return body
        resp = op["responses"].get(str(status))
        g.check(resp is not None, "%s: status %d is not documented for %s %s" % (
            what, status, method, tpl))
        resp = self.resolve(resp)
        content = resp.get("content")
        if content is None:
            g.check(body in ("", None), "%s: documented without a body, got %r" % (what, body))
        elif "application/json" in content:
            g.check("application/json" in headers.get("content-type", ""),
                    "%s: content-type %r" % (what, headers.get("content-type")))
            self.validate(what, content["application/json"]["schema"], body)
        else:
            g.check("text/plain" in headers.get("content-type", ""),
                    "%s: content-type %r, want text/plain" % (what, headers.get("content-type")))
        for name in (resp.get("headers") or {}):
            if name.lower() == "location" or status in (429, 503):
                g.check(name.lower() in headers, "%s: header %s missing" % (what, name))
        if 200 <= status < 300 and "servers" not in self.spec["paths"][tpl]:
            self.seen_ok.add((method, tpl))
        return body


class Tour:
    def __init__(self, gw, val):
        self.gw, self.val = gw, val

    def client(self, token=None):
        return TourClient(self.gw.client(token), self.val)


class TourClient:
    def __init__(self, c, val):
        self.c, self.val = c, val

    @property
    def token(self):
        return self.c.token

    def req(self, method, path, body=None, want=None, prefix=True, **kw):
        st, h, b = self.c.req(method, path, body=body, prefix=prefix, **kw)
        self.val.answer(method, ("/api/v1" if prefix else "") + path, st, h, b)
        if want is not None:
            g.check(st == want, "%s %s: status %d, want %d: %r" % (method, path, st, want,
                                                                   str(b)[:400]))
        return st, h, b

    def ok(self, method, path, body=None, want=200, **kw):
        return self.req(method, path, body=body, want=want, **kw)[2]


def seed_history(owner, mon):
    """A check row, an hourly rollup, a DOWN and a RECOVERY alert for mon (psql)."""
    g.psql("SELECT upmon_ensure_partitions(2)")
    g.psql("INSERT INTO check_results (monitor_id, owner_id, scheduled_at, attempt, final, ok,"
           " status_code, latency_ms, dns_ms, connect_ms, total_ms, checked_at, probe_host)"
           " VALUES (:'v1', :'v2', now() - interval '2 minutes', 1, true, false, 503, 120, 3,"
           " 5, 120, now() - interval '2 minutes', 'probe-1')", mon, owner)
    g.psql("SELECT upmon_rollup_add(:'v1', :'v2', now() - interval '2 minutes', false, 120,"
           " 60, false)", mon, owner)
    down = g.psql("INSERT INTO alerts (owner_id, monitor_id, kind, dedup_key, message, details,"
                  " created_at) VALUES (:'v1', :'v2', 'down', 'down:' || :'v2' || ':1',"
                  " 'went down', '{\"status_code\": 503}', now() - interval '2 minutes')"
                  " RETURNING id", owner, mon)[0][0]
    g.psql("INSERT INTO alerts (owner_id, monitor_id, kind, dedup_key, message, created_at)"
           " VALUES (:'v1', :'v2', 'recovery', 'recovery:' || :'v2' || ':2', 'is up again',"
           " now() - interval '1 minute')", owner, mon)
    return down


def tour(gw, val):
    t = Tour(gw, val)
    tag = uuid.uuid4().hex[:8]
    a = t.client()
    pw = "correct horse battery staple"
    a.ok("POST", "/auth/register", {"email": "openapi-a-%s@example.test" % tag,
                                    "password": pw}, want=201)
    a.c.login("openapi-a-%s@example.test" % tag, pw)
    a.ok("POST", "/auth/login", {"email": "openapi-a-%s@example.test" % tag, "password": pw})
    me = a.ok("GET", "/auth/me")
    owner = me["id"]

    # ---- monitors
    mon_in = {"name": "openapi http", "type": "http", "url": "http://127.0.0.1:9/health",
              "interval_seconds": 60, "tags": ["web", "openapi"],
              "headers": {"X-Probe": "1"}, "keyword": "ok", "reminder_minutes": 30}
    st, h, m = a.req("POST", "/monitors", mon_in, want=201)
    mid = m["id"]
    g.check(h.get("location") == "/api/v1/monitors/" + mid, "Location: %r" % h.get("location"))
    tcp = a.ok("POST", "/monitors", {"name": "openapi tcp", "type": "tcp", "host": "127.0.0.1",
                                     "port": 9, "interval_seconds": 30, "paused": True},
               want=201)
    a.ok("GET", "/monitors")
    a.ok("GET", "/monitors?limit=1")
    a.ok("GET", "/monitors?status=pending&tag=web&q=OPENAPI")
    a.ok("GET", "/monitors/" + mid)
    a.ok("PUT", "/monitors/" + mid, dict(mon_in, name="openapi http 2", timeout_ms=5000))
    a.ok("PATCH", "/monitors/" + mid, {"keyword": None, "retries": 3})
    a.ok("POST", "/monitors/" + mid + "/pause")
    a.ok("POST", "/monitors/" + mid + "/resume")

    # ---- history, alerts
    down = seed_history(owner, mid)
    a.ok("GET", "/monitors/%s/checks" % mid)
    a.ok("GET", "/monitors/%s/checks?final=true&limit=5" % mid)
    a.ok("GET", "/monitors/%s/status" % mid)
    a.ok("GET", "/monitors/%s/status" % tcp["id"])
    for w in ("24h", "7d", "30d"):
        a.ok("GET", "/monitors/%s/summary?window=%s" % (mid, w))
    a.ok("GET", "/monitors/%s/incidents" % mid)
    a.ok("GET", "/alerts")
    a.ok("GET", "/alerts?kind=down&acked=false&monitor_id=%s" % mid)
    a.ok("POST", "/alerts/%s/ack" % down)
    a.ok("GET", "/dashboard/summary")

    # ---- channels
    st, h, ch = a.req("POST", "/channels", {"name": "ops mail", "kind": "email",
                                            "config": {"to": ["ops@example.test"]}}, want=201)
    g.check(h.get("location") == "/api/v1/channels/" + ch["id"],
            "channel Location: %r" % h.get("location"))
    wh = a.ok("POST", "/channels", {"name": "hook", "kind": "webhook",
                                    "config": {"url": "https://hooks.example.test/x"},
                                    "secret": "0123456789abcdef0123"}, want=201)
    g.check(wh["has_secret"] is True and "secret" not in wh, "webhook secret shown: %r" % wh)
    a.ok("GET", "/channels")
    a.ok("GET", "/channels/" + ch["id"])
    a.ok("PUT", "/channels/" + ch["id"], {"name": "ops mail 2", "kind": "email",
                                          "config": {"to": ["a@example.test"]},
                                          "enabled": False})
    a.ok("PATCH", "/channels/" + wh["id"], {"secret": None})
    a.ok("POST", "/channels/%s/test" % ch["id"], want=202)

    # ---- monitor <-> channel links, maintenance windows
    a.ok("GET", "/monitors/%s/channels" % mid)
    a.ok("PUT", "/monitors/%s/channels" % mid, {"channel_ids": [ch["id"], wh["id"]]})
    a.req("PUT", "/monitors/%s/channels" % mid, {"channel_ids": [str(uuid.uuid4())]},
          want=400)
    st, h, mw = a.req("POST", "/maintenance-windows",
                      {"name": "upgrade", "monitor_id": mid, "kind": "once",
                       "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-01T01:00:00Z"},
                      want=201)
    g.check(h.get("location") == "/api/v1/maintenance-windows/" + mw["id"],
            "maintenance window Location: %r" % h.get("location"))
    wk = a.ok("POST", "/maintenance-windows",
              {"kind": "weekly", "weekdays": [6, 7], "start_time": "02:00",
               "duration_minutes": 90, "time_zone": "Europe/Paris"}, want=201)
    a.ok("GET", "/maintenance-windows")
    a.ok("GET", "/maintenance-windows?monitor_id=%s&limit=1" % mid)
    a.ok("GET", "/maintenance-windows/" + mw["id"])
    a.ok("PUT", "/maintenance-windows/" + mw["id"],
         {"kind": "weekly", "weekdays": [1], "start_time": "23:30", "duration_minutes": 60})
    a.ok("PATCH", "/maintenance-windows/" + mw["id"], {"name": "nightly", "monitor_id": mid})
    a.req("PATCH", "/maintenance-windows/" + mw["id"], {"time_zone": "Nowhere/Land"},
          want=400)
    a.ok("DELETE", "/maintenance-windows/" + wk["id"], want=204)
    a.req("GET", "/maintenance-windows/" + wk["id"], want=404)
    a.ok("DELETE", "/channels/" + wh["id"], want=204)

    # ---- errors: each one validated against Error and the operation's documented statuses
    a.req("GET", "/monitors/" + str(uuid.uuid4()), want=404)
    a.req("GET", "/monitors/not-a-uuid", want=404)
    a.req("GET", "/nowhere", want=404)
    a.req("DELETE", "/auth/me", want=405)
    a.req("GET", "/monitors", token="", headers={"Authorization": None}, want=401)
    a.req("POST", "/monitors", raw="{not json", want=400)
    st, _, b = a.req("POST", "/monitors", dict(mon_in, name="x", frobnicate=1), want=400)
    g.check(b["error"]["code"] == "validation_failed" and
            b["error"]["fields"].get("frobnicate") == "unknown field", "unknown field: %r" % b)
    a.req("POST", "/monitors", dict(mon_in, name="openapi http 2"), want=409)
    a.req("GET", "/monitors?bogus=1", want=400)
    a.req("POST", "/monitors", raw="[]", want=400)
    a.req("POST", "/monitors", raw='{"a":1}', headers={"Content-Type": "text/plain"}, want=415)
    a.req("GET", "/admin/queues", want=404)
    a.req("POST", "/auth/login", {"email": "openapi-a-%s@example.test" % tag,
                                  "password": "wrong password"}, want=401)

    # ---- admin
    adm = t.client()
    email = "openapi-admin-%s@example.test" % tag
    adm.ok("POST", "/auth/register", {"email": email, "password": pw}, want=201)
    g.psql("UPDATE users SET role = 'admin' WHERE email = :'v1'", email)
    adm.c.login(email, pw)
    q = adm.ok("GET", "/admin/queues")
    names = [x["name"] for x in q["queues"]]
    g.check("monitor_tasks_dead" in names and "notifications" in names, "queues: %r" % names)
    adm.ok("GET", "/admin/dlq?queue=monitor_tasks_dead")
    adm.ok("GET", "/admin/dlq?queue=notifications_dead&limit=5")
    adm.req("GET", "/admin/dlq?queue=monitor_tasks", want=400)
    adm.ok("POST", "/admin/dlq/replay", {"queue": "monitor_tasks_dead", "limit": 5})
    adm.ok("DELETE", "/admin/dlq?queue=notifications_dead")
    users = adm.ok("GET", "/admin/users")
    g.check(any(u["id"] == owner and u["monitors"] == 2 for u in users["items"]),
            "admin users: %r" % users)
    adm.ok("GET", "/admin/users?limit=1")

    # ---- deletes last
    a.ok("DELETE", "/monitors/" + tcp["id"], want=204)
    a.ok("DELETE", "/channels/" + ch["id"], want=204)
    a.ok("DELETE", "/monitors/" + mid, want=204)

    # ---- ops paths
    for p in ("/healthz", "/readyz", "/metrics"):
        a.ok("GET", p, prefix=False)


def main():
    spec = load_spec()
    routes = check_spec_matches_routes(spec)
    g.migrate()
    gw = g.Gateway.start()
    rc = 1
    try:
        val = Validator(spec)
        tour(gw, val)
        missing = sorted(routes - val.seen_ok)
        g.check(not missing, "routes never answered a 2xx in the tour: %r" % missing)
        print("tour: %d answers valid against the spec, %d routes covered" % (val.count,
                                                                             len(routes)))
        rc = 0
    finally:
        if gw.stop() != 0 and rc == 0:
            g.fail("upmon-gateway exited with an error")
    print("PASS")
    return rc


if __name__ == "__main__":
    sys.exit(main())

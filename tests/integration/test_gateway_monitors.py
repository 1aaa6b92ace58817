"""/api/v1/monitors against a real gateway, PostgreSQL and Redis.

CRUD with exact JSON (defaults present), 201 + Location, pagination without overlap, the
status/tag/q filters (q's '%' and '_' are literal), validation errors naming every bad field,
409 on a duplicate name, PUT resets omitted fields while PATCH keeps them, pause/resume,
DELETE, the Redis list cache (miss, hit, invalidated by a write; PostgreSQL alone when Redis
is unreachable), strings with SQL metacharacters and Unicode stored verbatim, and another
tenant's monitor answered 404 everywhere.

Every write goes through the monitors table; its trigger (sql/0001, tested with the
scheduler in issue 2) NOTIFYs monitor_changed. Here we check that the row itself changed
(updated_at moved), which is what fires that trigger.
"""
import threading

import upmon_gw as g
from upmon_gw import check

PW = "correct horse battery"

DEFAULTS = {
    "host": None, "port": None, "method": "GET", "headers": {}, "body": None,
    "expected_status": "200-299", "keyword": None, "keyword_absent": False,
    "max_latency_ms": None, "follow_redirects": True, "max_redirects": 5, "verify_tls": True,
    "cert_expiry_days": 14, "timeout_ms": 10000, "retries": 2, "failure_threshold": 1,
    "recovery_threshold": 1, "reminder_minutes": None, "paused": False, "tags": [],
    "status": "pending",
}
KEYS = ["id", "name", "type", "url", "host", "port", "method", "headers", "body",
        "expected_status", "keyword", "keyword_absent", "max_latency_ms", "follow_redirects",
        "max_redirects", "verify_tls", "cert_expiry_days", "timeout_ms", "interval_seconds",
        "retries", "failure_threshold", "recovery_threshold", "reminder_minutes", "paused",
        "tags", "status", "created_at", "updated_at"]


def http(name, **kw):
    m = {"name": name, "type": "http", "url": "https://example.test/" + name.replace(" ", "-"),
         "interval_seconds": 60}
    m.update(kw)
    return m


def strip(m):
    return {k: v for k, v in m.items() if k not in ("id", "created_at", "updated_at")}


def err_fields(c, method, path, body, want_status=400):
    st, _, b = c.req(method, path, body=body)
    check(st == want_status, "%s %s: status %d, want %d: %r" % (method, path, st, want_status, b))
    check(b["error"]["code"] == ("validation_failed" if want_status == 400 else "conflict"),
          "error code: %r" % b)
    return b["error"].get("fields")


def test_crud(c):
    st, h, m = c.req("POST", "/monitors", body=http("crud"))
    check(st == 201, "create: %d %r" % (st, m))
    check(list(m.keys()) == KEYS, "monitor keys in order: %r" % list(m.keys()))
    want = dict(DEFAULTS, name="crud", type="http", url="https://example.test/crud",
                interval_seconds=60)
    check(strip(m) == want, "create answer: %r" % strip(m))
    check(h.get("location") == "/api/v1/monitors/" + m["id"], "location: %r" % h.get("location"))
    check(m["created_at"].endswith("Z") and len(m["created_at"]) == 24, m["created_at"])
    got = c.ok("GET", "/monitors/" + m["id"])
    check(got == m, "get differs from create: %r vs %r" % (got, m))

    # a tcp monitor with everything set
    full = {"name": "full", "type": "tcp", "host": "db.internal", "port": 5432,
            "method": "HEAD", "headers": {"X-A": "1"}, "body": "b", "expected_status": "200,301",
            "keyword": "k", "keyword_absent": True, "max_latency_ms": 800,
            "follow_redirects": False, "max_redirects": 0, "verify_tls": False,
            "cert_expiry_days": 0, "timeout_ms": 5000, "interval_seconds": 30, "retries": 0,
            "failure_threshold": 3, "recovery_threshold": 2, "reminder_minutes": 60,
            "paused": True, "tags": ["db", "prod"]}
    f = c.ok("POST", "/monitors", full, want=201)
    check(strip(f) == dict(full, url=None, status="paused"), "full: %r" % strip(f))

    # PUT: a full replace; omitted optional fields go back to their defaults
    put = c.ok("PUT", "/monitors/" + f["id"], {"name": "full", "type": "tcp", "host": "db2",
                                                "port": 6432, "interval_seconds": 40})
    check(strip(put) == dict(DEFAULTS, name="full", type="tcp", url=None, host="db2",
                             port=6432, interval_seconds=40),
          "put did not reset omitted fields: %r" % strip(put))
    check(put["created_at"] == f["created_at"], "put changed created_at")
    # PATCH: only given fields change; null clears / resets
    c.ok("PATCH", "/monitors/" + f["id"], {"tags": ["x"], "keyword": "up", "retries": 7,
                                           "reminder_minutes": 5})
    p = c.ok("PATCH", "/monitors/" + f["id"], {"retries": None, "reminder_minutes": None,
                                               "max_latency_ms": 100})
    check(strip(p) == dict(DEFAULTS, name="full", type="tcp", url=None, host="db2", port=6432,
                           interval_seconds=40, tags=["x"], keyword="up", max_latency_ms=100),
          "patch: %r" % strip(p))
    # PATCH type change: needs the matching target, drops the old one
    fl = err_fields(c, "PATCH", "/monitors/" + f["id"], {"type": "http"})
    check(fl == {"url": "is required"}, "patch to http without url: %r" % fl)
    p = c.ok("PATCH", "/monitors/" + f["id"], {"type": "http", "url": "http://x.test/"})
    check((p["type"], p["url"], p["host"], p["port"]) == ("http", "http://x.test/", None, None),
          "type change: %r" % p)
    # headers merge (RFC 7396): add, then remove one by null
    c.ok("PATCH", "/monitors/" + f["id"], {"headers": {"X-A": "1", "X-B": "2"}})
    p = c.ok("PATCH", "/monitors/" + f["id"], {"headers": {"X-A": None, "X-C": "3"}})
    check(p["headers"] == {"X-B": "2", "X-C": "3"}, "headers merge: %r" % p["headers"])
    p = c.ok("PATCH", "/monitors/" + f["id"], {"headers": None})
    check(p["headers"] == {}, "headers null: %r" % p["headers"])
    # the row changed (what fires the monitors_notify trigger)
    rows = g.psql("SELECT updated_at > created_at FROM monitors WHERE id = :'v1'", f["id"])
    check(rows == [["t"]], "updated_at did not move: %r" % rows)
    check(p["updated_at"] > f["updated_at"], "updated_at in the answer did not move")

    # pause / resume, idempotent
    for _ in range(2):
        p = c.ok("POST", "/monitors/%s/pause" % m["id"])
        check(p["paused"] is True and p["status"] == "paused", "pause: %r" % p)
    rows = g.psql("SELECT status FROM monitor_state WHERE monitor_id = :'v1'", m["id"])
    check(rows == [["paused"]], "monitor_state after pause: %r" % rows)
    for _ in range(2):
        p = c.ok("POST", "/monitors/%s/resume" % m["id"])
        check(p["paused"] is False and p["status"] == "pending", "resume: %r" % p)

    # DELETE
    st, _, b = c.req("DELETE", "/monitors/" + m["id"])
    check(st == 204 and b == "", "delete: %d %r" % (st, b))
    for method in ("GET", "DELETE"):
        st, _, b = c.req(method, "/monitors/" + m["id"])
        check(st == 404 and b["error"]["code"] == "not_found", "%s after delete: %d %r"
              % (method, st, b))
    c.ok("DELETE", "/monitors/" + f["id"], want=204)


def test_validation(c):
    fl = err_fields(c, "POST", "/monitors", {})
    check(fl == {"name": "is required", "type": "is required",
                 "interval_seconds": "is required"}, "empty body: %r" % fl)
    fl = err_fields(c, "POST", "/monitors", {
        "name": "", "type": "http", "url": "ftp://x", "interval_seconds": 5, "retries": "2",
        "timeout_ms": 99, "method": "FETCH", "headers": {"Bad Name": "v"},
        "expected_status": "2xx", "tags": ["ok", ""], "colour": "blue", "port": 80,
        "max_redirects": 11, "keyword_absent": 1})
    want = {"name", "url", "interval_seconds", "retries", "timeout_ms", "method", "headers",
            "expected_status", "tags[1]", "colour", "port", "max_redirects", "keyword_absent"}
    check(set(fl) == want, "several bad fields: %r" % fl)
    check(fl["colour"] == "unknown field", fl["colour"])
    check(fl["retries"] == "must be an integer", fl["retries"])
    check(fl["interval_seconds"] == "must be between 10 and 86400", fl["interval_seconds"])
    check(fl["port"] == "must be null for http monitors", fl["port"])
    fl = err_fields(c, "POST", "/monitors", {"name": "t", "type": "tcp", "interval_seconds": 10,
                                             "host": "a b", "timeout_ms": 20000})
    check(fl == {"host": "must be a host name or IP address [A-Za-z0-9._:-]",
                 "port": "is required",
                 "timeout_ms": "must not exceed interval_seconds * 1000 (10000)"},
          "tcp rules: %r" % fl)
    # a C1 control is refused by name (the database's [[:cntrl:]] would refuse it unnamed)
    fl = err_fields(c, "POST", "/monitors", http("a\u0085b", url="https://e.test/"))
    check(fl == {"name": "must not contain control characters"}, "C1 control: %r" % fl)
    fl = err_fields(c, "POST", "/monitors", http("kw", keyword_absent=True))
    check(fl == {"keyword_absent": "requires keyword"}, "keyword_absent: %r" % fl)
    fl = err_fields(c, "POST", "/monitors", http("b", body="x" * 16385))
    check(list(fl) == ["body"], "body too long: %r" % fl)
    # not an object / unknown query parameters
    st, _, b = c.req("GET", "/monitors?colour=blue")
    check(st == 400 and "colour" in b["error"].get("fields", {}), "unknown query: %d %r" % (st, b))
    st, _, b = c.req("GET", "/monitors?status=sideways")
    check(st == 400 and b["error"]["fields"] == {"status": "must be one of pending, up, down, "
                                                 "paused"}, "bad status filter: %d %r" % (st, b))
    st, _, b = c.req("GET", "/monitors?limit=0")
    check(st == 400, "limit=0: %d %r" % (st, b))
    # nothing was written by any of these
    check(c.ok("GET", "/monitors?limit=200")["items"] == [], "a refused create was stored")


def test_conflict(c):
    a = c.ok("POST", "/monitors", http("dup"), want=201)
    fl = err_fields(c, "POST", "/monitors", http("dup"), want_status=409)
    check(fl == {"name": "is already used by another monitor"}, "409 fields: %r" % fl)
    b = c.ok("POST", "/monitors", http("dup2"), want=201)
    fl = err_fields(c, "PUT", "/monitors/" + b["id"], http("dup"), want_status=409)
    check(fl == {"name": "is already used by another monitor"}, "put 409: %r" % fl)
    fl = err_fields(c, "PATCH", "/monitors/" + b["id"], {"name": "dup"}, want_status=409)
    check(fl == {"name": "is already used by another monitor"}, "patch 409: %r" % fl)
    # renaming to its own name is fine
    c.ok("PATCH", "/monitors/" + a["id"], {"name": "dup"})
    for m in (a, b):
        c.ok("DELETE", "/monitors/" + m["id"], want=204)


def test_pagination_and_filters(c):
    ids = [c.ok("POST", "/monitors", http("page-%d" % i), want=201)["id"] for i in range(7)]
    seen, cursor, pages = [], None, 0
    while True:
        path = "/monitors?limit=3" + ("&cursor=" + cursor if cursor else "")
        page = c.ok("GET", path)
        pages += 1
        check(len(page["items"]) == (3 if pages < 3 else 1), "page %d size %d"
              % (pages, len(page["items"])))
        seen += [m["id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        check(pages < 3, "too many pages")
    check(pages == 3 and seen == ids, "pages %d, order %r vs %r" % (pages, seen, ids))
    st, _, b = c.req("GET", "/monitors?cursor=not-a-cursor")
    check(st == 400, "bad cursor: %d %r" % (st, b))

    special = {}
    for name, tags in (("100% up", ["pct"]), ("a_b", ["us", "prod"]), ("axb", ["prod"]),
                       ("Plain Name", [])):
        special[name] = c.ok("POST", "/monitors", http(name, tags=tags), want=201)["id"]

    def names(query):
        return sorted(m["name"] for m in c.ok("GET", "/monitors?limit=200&" + query)["items"])

    check(names("q=%25") == ["100% up"], "q=%%: %r" % names("q=%25"))
    check(names("q=_") == ["a_b"], "q=_: %r" % names("q=_"))
    check(names("q=PLAIN%20n") == ["Plain Name"], "q is case-insensitive: %r"
          % names("q=PLAIN%20n"))
    check(names("q=page-") == ["page-%d" % i for i in range(7)], "q=page-")
    check(names("tag=prod") == ["a_b", "axb"], "tag=prod: %r" % names("tag=prod"))
    check(names("tag=prod&q=_") == ["a_b"], "tag and q")
    check(names("tag=nope") == [], "unknown tag")
    c.ok("POST", "/monitors/%s/pause" % special["axb"])
    check(names("status=paused") == ["axb"], "status=paused: %r" % names("status=paused"))
    check(len(names("status=pending")) == 10, "status=pending: %r" % names("status=pending"))
    check(names("status=up") == [], "status=up")
    # the filters page too
    page = c.ok("GET", "/monitors?limit=2&q=page-")
    page2 = c.ok("GET", "/monitors?limit=2&q=page-&cursor=" + page["next_cursor"])
    check([m["name"] for m in page["items"] + page2["items"]] ==
          ["page-0", "page-1", "page-2", "page-3"], "filtered pages")
    for i in ids + list(special.values()):
        c.ok("DELETE", "/monitors/" + i, want=204)


def test_cache(c):
    st, h, first = c.req("GET", "/monitors?tag=cache")
    check(st == 200 and h.get("x-cache") == "miss", "first list: %d %r" % (st, h))
    st, h, again = c.req("GET", "/monitors?tag=cache")
    check(h.get("x-cache") == "hit" and again == first, "second list: %r %r" % (h, again))
    m = c.ok("POST", "/monitors", http("cached", tags=["cache"]), want=201)
    st, h, after = c.req("GET", "/monitors?tag=cache")
    check(h.get("x-cache") == "miss" and [x["id"] for x in after["items"]] == [m["id"]],
          "a create must invalidate the list: %r %r" % (h, after))
    st, h, _ = c.req("GET", "/monitors?tag=cache")
    check(h.get("x-cache") == "hit", "cached again: %r" % h)
    for method, path, body in (("PATCH", "/monitors/" + m["id"], {"retries": 1}),
                               ("PUT", "/monitors/" + m["id"], http("cached", tags=["cache"])),
                               ("POST", "/monitors/%s/pause" % m["id"], None),
                               ("POST", "/monitors/%s/resume" % m["id"], None)):
        c.ok(method, path, body)
        st, h, b = c.req("GET", "/monitors?tag=cache")
        check(h.get("x-cache") == "miss", "%s must invalidate: %r" % (method, h))
        check(b["items"][0]["retries"] == (1 if method == "PATCH" else 2), "stale after %s: %r"
              % (method, b["items"][0]))
        c.req("GET", "/monitors?tag=cache")
    c.ok("DELETE", "/monitors/" + m["id"], want=204)
    st, h, b = c.req("GET", "/monitors?tag=cache")
    check(h.get("x-cache") == "miss" and b["items"] == [], "delete must invalidate: %r" % b)


def test_verbatim(c):
    nasty = "'; DROP TABLE monitors; -- \" \\ %_ Überwachung ✓ 監視 🚀"
    body = {"name": nasty, "type": "http",
            "url": "https://example.test/Überwachung/監視?q='%22;--%25_&x=🚀\\",
            "interval_seconds": 60, "keyword": nasty, "body": nasty + "\n\ttab",
            "headers": {"X-Nasty": nasty, "Accept": "*/*"}, "tags": [nasty, "%_"]}
    m = c.ok("POST", "/monitors", body, want=201)
    for k, v in body.items():
        check(m[k] == v, "%s not verbatim: %r vs %r" % (k, m[k], v))
    got = c.ok("GET", "/monitors/" + m["id"])
    check(got == m, "get differs")
    check([x["name"] for x in c.ok("GET", "/monitors?q=" + "%27%3B%20DROP")["items"]] ==
          [nasty], "q with metacharacters")
    rows = g.psql("SELECT name, keyword FROM monitors WHERE id = :'v1'", m["id"])
    check(rows == [[nasty, nasty]], "stored: %r" % rows)
    c.ok("DELETE", "/monitors/" + m["id"], want=204)


def test_concurrent_patches(c):
    # PATCH reads, merges and writes under the row lock: concurrent patches of different
    # fields all land (no lost update)
    m = c.ok("POST", "/monitors", http("concurrent"), want=201)
    errors = []

    def patch(field, values):
        for v in values:
            st, _, b = c.req("PATCH", "/monitors/" + m["id"], body={field: v})
            if st != 200:
                errors.append((field, v, st, b))

    threads = [threading.Thread(target=patch, args=("retries", range(11))),
               threading.Thread(target=patch, args=("keyword", ["k%d" % i for i in range(11)])),
               threading.Thread(target=patch, args=("tags", [["t%d" % i] for i in range(11)]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(errors == [], "concurrent patches failed: %r" % errors[:3])
    got = c.ok("GET", "/monitors/" + m["id"])
    check((got["retries"], got["keyword"], got["tags"]) == (10, "k10", ["t10"]),
          "a concurrent patch was lost: %r" % ((got["retries"], got["keyword"], got["tags"]),))
    c.ok("DELETE", "/monitors/" + m["id"], want=204)


def test_tenants(a, b):
    m = a.ok("POST", "/monitors", http("mine"), want=201)
    path = "/monitors/" + m["id"]
    for method, p, body in (("GET", path, None), ("PUT", path, http("theirs")),
                            ("PATCH", path, {"retries": 0}), ("DELETE", path, None),
                            ("POST", path + "/pause", None), ("POST", path + "/resume", None)):
        st, _, r = b.req(method, p, body=body)
        check(st == 404 and r["error"]["code"] == "not_found",
              "%s %s by another tenant: %d %r" % (method, p, st, r))
    check(b.ok("GET", "/monitors")["items"] == [], "another tenant's list shows my monitor")
    # the same name is fine for another owner
    b.ok("POST", "/monitors", http("mine"), want=201)
    got = a.ok("GET", path)
    check(got == m, "another tenant changed my monitor: %r" % got)
    st, _, _ = a.req("GET", "/monitors/00000000-0000-4000-8000-000000000000")
    check(st == 404, "missing monitor: %d" % st)
    st, _, _ = a.req("GET", "/monitors", token="")  # no token
    st2, _, _ = a.req("GET", "/monitors", token="x.y.z")
    check(st == 401 and st2 == 401, "auth: %d %d" % (st, st2))


def test_redis_down():
    # an unreachable Redis: lists come from PostgreSQL, writes still work
    gw = g.Gateway.start(env={"UPMON_REDIS_URL": "redis://127.0.0.1:%d" % g.free_port()})
    try:
        c = gw.client()
        c.login("gwmon-a@example.test", PW)
        m = c.ok("POST", "/monitors", http("no-redis"), want=201)
        for _ in range(2):
            st, h, b = c.req("GET", "/monitors?q=no-redis")
            check(st == 200 and h.get("x-cache") == "miss" and
                  [x["id"] for x in b["items"]] == [m["id"]], "redis down: %d %r %r" % (st, h, b))
        c.ok("DELETE", "/monitors/" + m["id"], want=204)
    finally:
        check(gw.stop() == 0, "gateway exit status")


def main():
    g.migrate()
    gw = g.Gateway.start()
    try:
        a, b = gw.client(), gw.client()
        a.register("gwmon-a@example.test", PW)
        a.login("gwmon-a@example.test", PW)
        b.register("gwmon-b@example.test", PW)
        b.login("gwmon-b@example.test", PW)
        test_validation(a)
        test_crud(a)
        test_conflict(a)
        test_pagination_and_filters(a)
        test_cache(a)
        test_verbatim(a)
        test_concurrent_patches(a)
        test_tenants(a, b)
    finally:
        check(gw.stop() == 0, "gateway exit status")
    test_redis_down()
    print("ok")


main()

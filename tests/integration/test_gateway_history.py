#!/usr/bin/env python3
"""History and statistics routes of upmon-gateway against a seeded database:
GET /monitors/{id}/checks (exact pagination without gaps or overlaps, from/to, final),
/status (PostgreSQL fallback, then the Redis value written in the probe's layout, another
owner's cached value ignored, paused from the database), /summary (exact numbers for 24h
and 7d, maintenance excluded, bad window 400) and /incidents (DOWN/RECOVERY pairing,
pagination). Another tenant's monitor and a missing one are 404 on all four routes."""
import datetime
import json
import os
import subprocess

import upmon_gw as g
from upmon_gw import check, fail

PW = "correct horse battery"


def iso(ms):
    t = datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000)


def redis(*args):
    out = subprocess.run(["redis-cli", "-u", os.environ["UPMON_REDIS_URL"],
                          "--no-auth-warning"] + list(args),
                         capture_output=True, text=True)
    if out.returncode != 0:
        fail("redis-cli: " + out.stderr)
    return out.stdout.strip()


def seed(owner, name):
    """A monitor of owner with a fixed history; returns (monitor id, T0 ms)."""
    mid = g.psql("INSERT INTO monitors (owner_id, name, type, url, interval_seconds) "
                 "VALUES (:'v1', :'v2', 'http', 'https://h.example/', 60) RETURNING id",
                 owner, name)[0][0]
    t0 = int(g.psql("SELECT upmon_ts_to_ms(date_trunc('hour', now()) - interval '3 hours')")
             [0][0])
    # slots i = 0..9 at T0 + i min: ok except 3 and 7; slot 3 failed twice (attempt 1 not
    # final, attempt 2 final); ok latencies 10 * (i + 1)
    g.psql("""
        INSERT INTO check_results (monitor_id, owner_id, scheduled_at, attempt, final, ok,
            status_code, latency_ms, dns_ms, connect_ms, tls_ms, first_byte_ms, total_ms,
            error, cert_days_left, checked_at, probe_host)
        SELECT :'v1', :'v2', upmon_ms_to_ts(:'v3'::bigint + i * 60000), a.n,
            NOT (i = 3 AND a.n = 1), i NOT IN (3, 7),
            CASE WHEN i IN (3, 7) THEN 500 ELSE 200 END,
            CASE WHEN i IN (3, 7) THEN NULL ELSE 10 * (i + 1) END, 1, 2, NULL, 5,
            10 * (i + 1),
            CASE WHEN i IN (3, 7) THEN 'status 500' END, 30,
            upmon_ms_to_ts(:'v3'::bigint + i * 60000 + 250 + a.n), 'probe-1'
        FROM generate_series(0, 9) i,
             LATERAL (SELECT generate_series(1, CASE WHEN i = 3 THEN 2 ELSE 1 END)) a(n)
        """, mid, owner, t0)
    # rollups: the 10 final results (downtime 60 s per failure), 2 checks in maintenance,
    # and 5 failures two days ago (outside 24h, inside 7d)
    g.psql("""
        SELECT upmon_rollup_add(:'v1', :'v2', upmon_ms_to_ts(:'v3'::bigint + i * 60000),
            i NOT IN (3, 7), CASE WHEN i IN (3, 7) THEN NULL ELSE 10 * (i + 1) END,
            CASE WHEN i IN (3, 7) THEN 60 ELSE 0 END, false)
        FROM generate_series(0, 9) i
        """, mid, owner, t0)
    g.psql("SELECT upmon_rollup_add(:'v1', :'v2', upmon_ms_to_ts(:'v3'::bigint + 30000),"
           " true, NULL, 0, true) FROM generate_series(1, 2)", mid, owner, t0)
    g.psql("SELECT upmon_rollup_add(:'v1', :'v2', now() - interval '2 days', false, NULL,"
           " 60, false) FROM generate_series(1, 5)", mid, owner)
    # alerts: down (T0+3m) -> recovery (T0+4m), down (T0+7m) ongoing, and an old pair
    g.psql("""
        INSERT INTO alerts (owner_id, monitor_id, kind, dedup_key, message, created_at)
        VALUES (:'v2', :'v1', 'down', 'down:' || :'v1' || ':3', 'm is down: status 500',
                upmon_ms_to_ts(:'v3'::bigint + 180000)),
               (:'v2', :'v1', 'recovery', 'recovery:' || :'v1' || ':4', 'm is up again',
                upmon_ms_to_ts(:'v3'::bigint + 240000)),
               (:'v2', :'v1', 'down', 'down:' || :'v1' || ':7', 'm is down again',
                upmon_ms_to_ts(:'v3'::bigint + 420000)),
               (:'v2', :'v1', 'down', 'down:' || :'v1' || ':old', 'old down',
                now() - interval '50 hours'),
               (:'v2', :'v1', 'recovery', 'recovery:' || :'v1' || ':old', 'old up',
                now() - interval '50 hours' + interval '90 seconds')
        """, mid, owner, t0)
    # the state machine's row after slot 9
    g.psql("""
        UPDATE monitor_state SET status = 'up', last_slot = upmon_ms_to_ts(:'v2'::bigint
            + 540000), last_attempt = 1, last_checked_at = upmon_ms_to_ts(:'v2'::bigint
            + 540251), last_ok = true, last_status_code = 200, last_latency_ms = 100,
            last_error = NULL, last_change_at = upmon_ms_to_ts(:'v2'::bigint + 240000),
            cert_days_left = 30
        WHERE monitor_id = :'v1'
        """, mid, t0)
    return mid, t0


def all_pages(c, path, limit):
    items, cursor, pages = [], None, 0
    while True:
        sep = "&" if "?" in path else "?"
        url = "%s%slimit=%d" % (path, sep, limit) + ("&cursor=" + cursor if cursor else "")
        b = c.ok("GET", url)
        check(len(b["items"]) <= limit, "page larger than limit")
        items += b["items"]
        pages += 1
        cursor = b["next_cursor"]
        if cursor is None:
            return items, pages
        check(pages < 50, "pagination does not end")


def test_checks(c, mid, t0):
    items, pages = all_pages(c, "/monitors/%s/checks" % mid, 4)
    keys = [(i["scheduled_at"], i["attempt"]) for i in items]
    want = []
    for i in range(9, -1, -1):
        for a in ([2, 1] if i == 3 else [1]):
            want.append((iso(t0 + i * 60000), a))
    check(keys == want, "checks pages: %r, want %r" % (keys, want))
    check(pages == 3, "11 checks in pages of 4: %d pages" % pages)
    i2 = items[8]  # slot 2
    check(i2 == {"scheduled_at": iso(t0 + 120000), "attempt": 1, "final": True, "ok": True,
                 "status_code": 200, "latency_ms": 30, "error": None,
                 "timings": {"dns_ms": 1, "connect_ms": 2, "tls_ms": None,
                             "first_byte_ms": 5, "total_ms": 30},
                 "cert_days_left": 30, "checked_at": iso(t0 + 120000 + 251),
                 "probe_host": "probe-1"}, "check item: %r" % i2)
    f = [i for i in items if i["scheduled_at"] == iso(t0 + 180000)]
    check([(i["attempt"], i["final"], i["ok"], i["status_code"], i["latency_ms"], i["error"])
           for i in f] == [(2, True, False, 500, None, "status 500"),
                           (1, False, False, 500, None, "status 500")], "slot 3: %r" % f)
    # one page holding everything has no cursor
    b = c.ok("GET", "/monitors/%s/checks?limit=11" % mid)
    check(len(b["items"]) == 11 and b["next_cursor"] is None, "limit=11: %r" % b)
    b = c.ok("GET", "/monitors/%s/checks" % mid)
    check(len(b["items"]) == 11, "default range (24 h) holds all")
    # final filter
    b = c.ok("GET", "/monitors/%s/checks?final=false" % mid)
    check([(i["scheduled_at"], i["attempt"]) for i in b["items"]] ==
          [(iso(t0 + 180000), 1)], "final=false: %r" % b)
    b = c.ok("GET", "/monitors/%s/checks?final=true" % mid)
    check(len(b["items"]) == 10, "final=true: %d" % len(b["items"]))
    # from inclusive, to exclusive; RFC 3339 and Unix ms alike
    b = c.ok("GET", "/monitors/%s/checks?from=%s&to=%d" % (mid, iso(t0 + 120000),
                                                           t0 + 300000))
    check([(i["scheduled_at"], i["attempt"]) for i in b["items"]] ==
          [(iso(t0 + 240000), 1), (iso(t0 + 180000), 2), (iso(t0 + 180000), 1),
           (iso(t0 + 120000), 1)], "from/to: %r" % b["items"])
    items, _ = all_pages(c, "/monitors/%s/checks?from=%d&to=%d" % (mid, t0, t0 + 300000), 2)
    check(len(items) == 6, "from/to paged: %d" % len(items))
    b = c.ok("GET", "/monitors/%s/checks?from=%d&to=%d" % (mid, t0 - 7200000, t0 - 1))
    check(b == {"items": [], "next_cursor": None}, "empty range: %r" % b)
    # bad input
    for q, code in (("limit=0", 400), ("limit=1001", 400), ("final=yes", 400),
                    ("from=yesterday", 400), ("cursor=zzz", 400), ("nope=1", 400)):
        st, _, b = c.req("GET", "/monitors/%s/checks?%s" % (mid, q))
        check(st == code and "error" in b, "checks?%s: %d %r" % (q, st, b))
    st, _, b = c.req("GET", "/monitors/%s/checks?nope=1" % mid)
    check(b["error"]["code"] == "validation_failed" and "nope" in b["error"]["fields"],
          "unknown parameter: %r" % b)


def test_status(c, mid, owner, t0):
    redis("DEL", "upmon:status:" + mid)
    b = c.ok("GET", "/monitors/%s/status" % mid)
    want = {"monitor_id": mid, "status": "up", "since": iso(t0 + 240000),
            "checked_at": iso(t0 + 540251), "scheduled_at": iso(t0 + 540000), "attempt": 1,
            "ok": True, "status_code": 200, "latency_ms": 100, "error": None,
            "timings": {"dns_ms": 1, "connect_ms": 2, "tls_ms": None, "first_byte_ms": 5,
                        "total_ms": 100},
            "cert_days_left": 30, "source": "database"}
    check(b == want, "status from database: %r\nwant %r" % (b, want))
    # the probe's value in Redis (proto/latest_status.schema.json, hash fields ts + json)
    st = {"v": 1, "monitor_id": mid, "owner_id": owner, "status": "down",
          "since": t0 + 600000, "checked_at": t0 + 600300, "scheduled_at": t0 + 600000,
          "attempt": 2, "result": {"ok": False, "latency_ms": 7, "status_code": 503,
                                   "error": "status 503"},
          "timings": {"dns_ms": 3, "connect_ms": 4, "total_ms": 7}}
    redis("HSET", "upmon:status:" + mid, "ts", str(t0 + 600002), "json", json.dumps(st))
    b = c.ok("GET", "/monitors/%s/status" % mid)
    want = {"monitor_id": mid, "status": "down", "since": iso(t0 + 600000),
            "checked_at": iso(t0 + 600300), "scheduled_at": iso(t0 + 600000), "attempt": 2,
            "ok": False, "status_code": 503, "latency_ms": 7, "error": "status 503",
            "timings": {"dns_ms": 3, "connect_ms": 4, "tls_ms": None, "first_byte_ms": None,
                        "total_ms": 7},
            "cert_days_left": None, "source": "cache"}
    check(b == want, "status from cache: %r\nwant %r" % (b, want))
    # a cached value naming another owner is not believed
    st["owner_id"] = "00000000-0000-4000-8000-000000000001"
    redis("HSET", "upmon:status:" + mid, "json", json.dumps(st))
    b = c.ok("GET", "/monitors/%s/status" % mid)
    check(b["source"] == "database" and b["status"] == "up", "foreign cache value: %r" % b)
    # garbage in Redis: database
    redis("HSET", "upmon:status:" + mid, "json", "{not json")
    b = c.ok("GET", "/monitors/%s/status" % mid)
    check(b["source"] == "database", "undecodable cache value: %r" % b)
    redis("DEL", "upmon:status:" + mid)
    st, _, b = c.req("GET", "/monitors/%s/status?x=1" % mid)
    check(st == 400, "status?x=1: %d" % st)


def test_summary(c, mid):
    b = c.ok("GET", "/monitors/%s/summary" % mid)
    check(b["window"] == "24h", "default window: %r" % b)
    exp = {"checks": 10, "failures": 2, "maintenance_checks": 2, "uptime_pct": 80.0,
           "avg_ms": 53.75, "p50_ms": 50.0, "p95_ms": 96.0, "p99_ms": 99.2, "max_ms": 100,
           "incidents": 2, "downtime_seconds": 120}
    for k, v in exp.items():
        check(b.get(k) is not None and abs(b[k] - v) < 1e-6,
              "24h %s: %r, want %r (%r)" % (k, b.get(k), v, b))
    frm = datetime.datetime.strptime(b["from"], "%Y-%m-%dT%H:%M:%S.%fZ")
    to = datetime.datetime.strptime(b["to"], "%Y-%m-%dT%H:%M:%S.%fZ")
    check(frm.minute == 0 and frm.second == 0 and
          datetime.timedelta(hours=24) <= to - frm < datetime.timedelta(hours=25),
          "24h from/to: %r" % b)
    b = c.ok("GET", "/monitors/%s/summary?window=7d" % mid)
    exp = {"checks": 15, "failures": 7, "maintenance_checks": 2,
           "uptime_pct": 100.0 * 8 / 15, "avg_ms": 53.75, "max_ms": 100, "incidents": 3,
           "downtime_seconds": 420}
    for k, v in exp.items():
        check(abs(b[k] - v) < 1e-6, "7d %s: %r, want %r" % (k, b[k], v))
    check(b["window"] == "7d", "window 7d")
    b = c.ok("GET", "/monitors/%s/summary?window=30d" % mid)
    check(b["checks"] == 15 and b["window"] == "30d", "30d: %r" % b)
    for w in ("1h", "24H", "", "30d;"):
        st, _, b = c.req("GET", "/monitors/%s/summary?window=%s" % (mid, w))
        check(st == 400 and b["error"]["code"] == "validation_failed" and
              "window" in b["error"]["fields"], "window=%s: %d %r" % (w, st, b))


def test_summary_empty(c, owner):
    mid = g.psql("INSERT INTO monitors (owner_id, name, type, url, interval_seconds) "
                 "VALUES (:'v1', 'empty', 'http', 'https://e.example/', 60) RETURNING id",
                 owner)[0][0]
    b = c.ok("GET", "/monitors/%s/summary" % mid)
    for k in ("uptime_pct", "avg_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms"):
        check(b[k] is None, "empty summary %s: %r" % (k, b))
    check(b["checks"] == 0 and b["failures"] == 0 and b["incidents"] == 0 and
          b["downtime_seconds"] == 0, "empty summary counts: %r" % b)
    b = c.ok("GET", "/monitors/%s/status" % mid)
    check(b["status"] == "pending" and b["checked_at"] is None and b["ok"] is None and
          b["source"] == "database", "status of a new monitor: %r" % b)
    b = c.ok("GET", "/monitors/%s/incidents" % mid)
    check(b == {"items": [], "next_cursor": None}, "no incidents: %r" % b)
    # one check of 120 ms: its bucket is (100, 125], and interpolating inside it would give
    # p95 123.75; no percentile may exceed the largest latency measured
    g.psql("SELECT upmon_rollup_add(:'v1', :'v2', now(), true, 120, 0, false)", mid, owner)
    b = c.ok("GET", "/monitors/%s/summary" % mid)
    check(b["max_ms"] == 120 and abs(b["p50_ms"] - 112.5) < 1e-6 and b["p95_ms"] == 120 and
          b["p99_ms"] == 120, "percentiles capped at max: %r" % b)
    # a paused monitor answers paused from the database
    g.psql("UPDATE monitors SET paused = true WHERE id = :'v1'", mid)
    b = c.ok("GET", "/monitors/%s/status" % mid)
    check(b["status"] == "paused" and b["source"] == "database", "paused: %r" % b)


def test_incidents(c, mid, t0):
    items, pages = all_pages(c, "/monitors/%s/incidents" % mid, 1)
    check(pages == 3 and len(items) == 3, "incidents: %d in %d pages" % (len(items), pages))
    a, b, old = items
    check(a["started_at"] == iso(t0 + 420000) and a["ongoing"] is True and
          a["resolved_at"] is None and a["duration_seconds"] is None and
          a["recovery_alert_id"] is None and a["message"] == "m is down again",
          "ongoing incident: %r" % a)
    check(b["started_at"] == iso(t0 + 180000) and b["ongoing"] is False and
          b["resolved_at"] == iso(t0 + 240000) and b["duration_seconds"] == 60 and
          b["message"] == "m is down: status 500", "resolved incident: %r" % b)
    check(old["duration_seconds"] == 90 and old["message"] == "old down", "old: %r" % old)
    ids = g.psql("SELECT id, kind FROM alerts WHERE monitor_id = :'v1' ORDER BY created_at",
                 mid)
    check([a["id"], b["id"], old["id"]] == [ids[4][0], ids[2][0], ids[0][0]],
          "incident ids are the DOWN alert ids")
    check(b["recovery_alert_id"] == ids[3][0] and old["recovery_alert_id"] == ids[1][0],
          "recovery ids")
    whole = c.ok("GET", "/monitors/%s/incidents" % mid)
    check(whole["items"] == items and whole["next_cursor"] is None, "one page: %r" % whole)
    st, _, _ = c.req("GET", "/monitors/%s/incidents?limit=201" % mid)
    check(st == 400, "limit=201: %d" % st)


def main():
    g.migrate()
    gw = g.Gateway.start()
    try:
        a = gw.client()
        owner = a.register("hist-a@example.test", PW)["user"]["id"]
        a.login("hist-a@example.test", PW)
        b = gw.client()
        b.register("hist-b@example.test", PW)
        b.login("hist-b@example.test", PW)
        mid, t0 = seed(owner, "history")
        test_checks(a, mid, t0)
        test_status(a, mid, owner, t0)
        test_summary(a, mid)
        test_incidents(a, mid, t0)
        # another tenant's monitor and a missing one: 404 everywhere, even with the
        # owner's value in Redis
        st = {"v": 1, "monitor_id": mid, "owner_id": owner, "status": "up", "since": t0,
              "checked_at": t0, "scheduled_at": t0, "attempt": 1,
              "result": {"ok": True, "latency_ms": 1}, "timings": {}}
        redis("HSET", "upmon:status:" + mid, "ts", str(t0 + 1), "json", json.dumps(st))
        check(a.ok("GET", "/monitors/%s/status" % mid)["source"] == "cache", "cache hit")
        for who, m in ((b, mid), (a, "00000000-0000-4000-8000-00000000abcd")):
            for route in ("checks", "status", "summary", "incidents"):
                s, _, body = who.req("GET", "/monitors/%s/%s" % (m, route))
                check(s == 404 and body["error"]["code"] == "not_found",
                      "%s of a foreign/missing monitor: %d %r" % (route, s, body))
        # pause, resume and delete through the API drop the cached status: the answer
        # comes from PostgreSQL (paused, pending, gone), not from the last check
        a.ok("POST", "/monitors/%s/pause" % mid)
        b2 = a.ok("GET", "/monitors/%s/status" % mid)
        check(b2["status"] == "paused" and b2["source"] == "database",
              "status after pause: %r" % b2)
        redis("HSET", "upmon:status:" + mid, "ts", str(t0 + 1), "json", json.dumps(st))
        a.ok("POST", "/monitors/%s/resume" % mid)
        b2 = a.ok("GET", "/monitors/%s/status" % mid)
        check(b2["status"] == "pending" and b2["source"] == "database",
              "status after resume: %r" % b2)
        redis("HSET", "upmon:status:" + mid, "ts", str(t0 + 1), "json", json.dumps(st))
        a.ok("DELETE", "/monitors/%s" % mid, want=204)
        s, _, body = a.req("GET", "/monitors/%s/status" % mid)
        check(s == 404, "status of a deleted monitor: %d %r" % (s, body))
        check(redis("EXISTS", "upmon:status:" + mid).strip() == "0",
              "cached status left after delete")
        # without a token
        s, _, _ = a.req("GET", "/monitors/%s/summary" % mid, token="")
        check(s == 401, "no token: %d" % s)
        test_summary_empty(a, owner)
        print("ok")
    finally:
        gw.stop()


if __name__ == "__main__":
    main()

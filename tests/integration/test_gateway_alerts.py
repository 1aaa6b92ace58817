"""Gateway alerts and dashboard: alerts seeded with psql for two users; GET /alerts (fields,
newest first, every filter, pagination across a created_at tie, bad parameters), POST
/alerts/{id}/ack (idempotent, the first ack stays; another tenant's alert is 404), GET
/dashboard/summary (exact counts, uptime and p95 from the hourly rollups of the last 24 h,
alerts today, unacked), all per tenant."""
import time
import uuid

import upmon_gw as g
from upmon_gw import check

RUN = uuid.uuid4().hex[:8]
PW = "correct horse battery"


def email(tag):
    return "alerts-%s-%s@example.test" % (RUN, tag)


def sql1(q, *args):
    rows = g.psql(q, *args)
    check(len(rows) == 1, "one row expected from %r: %r" % (q, rows))
    return rows[0]


def monitor(owner, name, paused=False):
    return sql1("INSERT INTO monitors (owner_id, name, type, url, paused) "
                "VALUES (:'v1', :'v2', 'http', 'http://127.0.0.1:9/', :'v3') RETURNING id",
                owner, name, "true" if paused else "false")[0]


def alert(owner, mon, kind, ago_s, acked=False):
    """An alert created ago_s seconds ago (ago_s may be fractional)."""
    return sql1("INSERT INTO alerts (owner_id, monitor_id, kind, dedup_key, message, details, "
                "created_at, acked_at, acked_by) VALUES (:'v1', NULLIF(:'v2', '')::uuid, "
                ":'v3', :'v4', :'v5', '{\"n\": 1}', now() - :'v6'::interval, "
                "CASE WHEN :'v7' THEN now() - :'v6'::interval END, "
                "CASE WHEN :'v7' THEN :'v1'::uuid END) RETURNING id",
                owner, mon or "", kind, "t:%s" % uuid.uuid4(), "%s alert" % kind,
                "%s seconds" % ago_s, "true" if acked else "false")[0]


def ids(body):
    return [a["id"] for a in body["items"]]


def list_all(c, query, limit):
    out, cursor, pages = [], None, 0
    while True:
        q = "%s&limit=%d" % (query, limit) if query else "?limit=%d" % limit
        if cursor:
            q += "&cursor=" + cursor
        b = c.ok("GET", "/alerts" + q)
        check(len(b["items"]) <= limit, "page larger than limit: %r" % b)
        out += ids(b)
        pages += 1
        cursor = b["next_cursor"]
        if cursor is None:
            return out, pages
        check(pages < 50, "pagination does not end")


def expect_400(c, path, field):
    st, _, body = c.req("GET", path)
    check(st == 400 and body["error"]["code"] == "validation_failed",
          "%s: %d %r" % (path, st, body))
    check(field in body["error"].get("fields", {}), "%s: fields %r" % (path, body))


def seed():
    ca, cb = GW.client(), GW.client()
    a = ca.register(email("a"), PW)["user"]["id"]
    b = cb.register(email("b"), PW)["user"]["id"]
    ca.login(email("a"), PW)
    cb.login(email("b"), PW)
    m = {}
    for name in ("up1", "up2", "down", "pending"):
        m[name] = monitor(a, name)
    m["paused"] = monitor(a, "paused", paused=True)
    g.psql("UPDATE monitor_state SET status = 'up' WHERE monitor_id IN (:'v1', :'v2')",
           m["up1"], m["up2"])
    g.psql("UPDATE monitor_state SET status = 'down' WHERE monitor_id = :'v1'", m["down"])
    mb = monitor(b, "b-only")
    g.psql("UPDATE monitor_state SET status = 'down' WHERE monitor_id = :'v1'", mb)

    al = {}
    for i, kind in enumerate(["down", "recovery", "down", "recovery", "down", "recovery"]):
        al["m%d" % (i + 1)] = alert(a, m["down"], kind, (i + 1) * 10)
    # a tie: two alerts in the same millisecond
    g.psql("UPDATE alerts SET created_at = (SELECT created_at FROM alerts WHERE id = :'v1') "
           "WHERE id = :'v2'", al["m5"], al["m6"])
    al["sys"] = alert(a, None, "system_error", 70)
    al["tls"] = alert(a, m["up1"], "tls_expiry", 2 * 86400, acked=True)
    for k in range(2):
        alert(b, mb, "down", 5 + k)

    # rollups: 100 checks, 5 failures, 100 latencies in the 40..50 ms bucket within 24 h;
    # an older hour and the other tenant's hour must not count
    hist = "(SELECT array_agg(CASE WHEN i = 6 THEN :'v3'::integer ELSE 0 END ORDER BY i) " \
           "FROM generate_series(1, 31) AS i)"
    roll = ("INSERT INTO check_rollups_hourly (monitor_id, owner_id, hour, checks, failures, "
            "latency_count, latency_max_ms, latency_hist) VALUES (:'v1', :'v2', "
            "date_trunc('hour', now()) - :'v4'::interval, :'v3'::integer, :'v5'::integer, "
            ":'v3'::integer, 50, " + hist + ")")
    g.psql(roll, m["up1"], a, "60", "0 hours", "5")
    g.psql(roll, m["up2"], a, "40", "5 hours", "0")
    g.psql(roll, m["up1"], a, "50", "30 hours", "50")
    g.psql(roll, mb, b, "10", "1 hours", "10")
    return ca, cb, a, b, m, al


def test_list(ca, cb, a, m, al):
    want = [r[0] for r in g.psql(
        "SELECT id FROM alerts WHERE owner_id = :'v1' "
        "ORDER BY date_trunc('milliseconds', created_at) DESC, id DESC", a)]
    check(len(want) == 8, "seeded 8 alerts for a: %r" % want)
    check(want[:4] == [al["m1"], al["m2"], al["m3"], al["m4"]], "newest first: %r" % want)
    check(set(want[4:6]) == {al["m5"], al["m6"]} and want[6:] == [al["sys"], al["tls"]],
          "older alerts order: %r" % want)

    b = ca.ok("GET", "/alerts")
    check(ids(b) == want and b["next_cursor"] is None, "full list: %r" % b)
    first = b["items"][0]
    check(set(first) == {"id", "monitor_id", "monitor_name", "kind", "message", "details",
                         "created_at", "acked_at", "acked_by"}, "alert fields: %r" % first)
    check(first["monitor_id"] == m["down"] and first["monitor_name"] == "down" and
          first["kind"] == "down" and first["message"] == "down alert" and
          first["details"] == {"n": 1} and first["acked_at"] is None and
          first["acked_by"] is None, "first alert: %r" % first)
    sys_a = [x for x in b["items"] if x["id"] == al["sys"]][0]
    check(sys_a["monitor_id"] is None and sys_a["monitor_name"] is None, "sys: %r" % sys_a)
    tls = [x for x in b["items"] if x["id"] == al["tls"]][0]
    check(tls["acked_by"] == a and tls["acked_at"] is not None, "tls: %r" % tls)

    for limit in (1, 3, 7):
        got, pages = list_all(ca, "", limit)
        check(got == want, "limit %d pages: %r vs %r" % (limit, got, want))
        check(pages == -(-8 // limit), "limit %d: %d pages" % (limit, pages))

    def q(query, expect):
        got, _ = list_all(ca, query, 2)
        check(got == expect, "%s: %r, want %r" % (query, got, expect))

    q("?monitor_id=" + m["down"], want[:6])
    q("?monitor_id=" + m["down"].upper(), want[:6])
    q("?monitor_id=" + m["pending"], [])
    q("?kind=down", [x for x in want if x in (al["m1"], al["m3"], al["m5"])])
    q("?kind=system_error", [al["sys"]])
    q("?acked=true", [al["tls"]])
    q("?acked=false", want[:7])
    q("?kind=recovery&acked=false&monitor_id=" + m["down"],
      [x for x in want if x in (al["m2"], al["m4"], al["m6"])])
    # time bounds around the stored times (10 s apart), in ms and in RFC 3339
    ms = {k: int(sql1("SELECT upmon_ts_to_ms(created_at) FROM alerts WHERE id = :'v1'",
                      v)[0]) for k, v in al.items()}
    q("?from=%d" % (ms["m3"] - 5000), want[:3])
    q("?from=%d" % ms["m3"], want[:3])
    q("?to=%d" % (ms["tls"] + 1000), [al["tls"]])
    rfc = lambda t: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t // 1000)) + \
        ".%03dZ" % (t % 1000)
    q("?from=%s&to=%s" % (rfc(ms["sys"] - 5000), rfc(ms["sys"] + 5000)), [al["sys"]])
    # [from, to): from is inclusive, to exclusive, at the millisecond the API shows
    q("?from=%s&to=%s" % (rfc(ms["sys"]), rfc(ms["sys"] + 1)), [al["sys"]])
    q("?from=%s&to=%s" % (rfc(ms["sys"]), rfc(ms["sys"])), [])

    # the other tenant sees only its own
    bb = cb.ok("GET", "/alerts")
    check(len(bb["items"]) == 2 and not set(ids(bb)) & set(want), "b's list: %r" % bb)
    check(cb.ok("GET", "/alerts?monitor_id=" + m["down"])["items"] == [],
          "b filtering on a's monitor")

    for path, field in [("/alerts?kind=bogus", "kind"), ("/alerts?monitor_id=xyz", "monitor_id"),
                        ("/alerts?acked=maybe", "acked"), ("/alerts?limit=0", "limit"),
                        ("/alerts?limit=201", "limit"), ("/alerts?from=yesterday", "from"),
                        ("/alerts?foo=1", "foo")]:
        expect_400(ca, path, field)
    st, _, body = ca.req("GET", "/alerts?cursor=bm90LWEtY3Vyc29y")
    check(st == 400, "bad cursor: %d %r" % (st, body))
    st, _, body = ca.req("GET", "/alerts")
    check(st == 200, "plain list still works")


def test_ack(ca, cb, a, al):
    x = al["m1"]
    b1 = ca.ok("POST", "/alerts/%s/ack" % x)
    check(b1["id"] == x and b1["acked_by"] == a and b1["acked_at"] is not None,
          "ack: %r" % b1)
    check(b1["monitor_name"] == "down", "ack answer has the monitor name: %r" % b1)
    time.sleep(0.05)
    b2 = ca.ok("POST", "/alerts/%s/ack" % x)
    check(b2 == b1, "second ack changed the alert: %r vs %r" % (b1, b2))
    # the tls alert was acked at seed time: its first ack stays
    t = ca.ok("POST", "/alerts/%s/ack" % al["tls"])
    row = sql1("SELECT floor(extract(epoch FROM acked_at) * 1000)::bigint FROM alerts "
               "WHERE id = :'v1'", al["tls"])
    check(t["acked_at"] == time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(row[0]) // 1000))
          + ".%03dZ" % (int(row[0]) % 1000), "tls first ack kept: %r vs %r" % (t, row))

    # another tenant: 404 like a missing alert, and nothing changes
    st, _, body = cb.req("POST", "/alerts/%s/ack" % al["m2"])
    check(st == 404 and body["error"]["code"] == "not_found", "b acks a's: %d %r" % (st, body))
    st, _, body2 = cb.req("POST", "/alerts/%s/ack" % uuid.uuid4())
    check(st == 404 and body2 == body, "missing alert: %d %r vs %r" % (st, body2, body))
    check(g.psql("SELECT acked_at IS NULL FROM alerts WHERE id = :'v1'", al["m2"]) == [["t"]],
          "b's ack touched a's alert")
    check(ca.ok("GET", "/alerts?acked=true&limit=200")["items"][0]["id"] == x,
          "acked filter sees the new ack")
    st, _, _ = ca.req("POST", "/alerts/not-a-uuid/ack")
    check(st == 404, "non-uuid id: %d" % st)


def test_dashboard(ca, cb, acked_now):
    d = ca.ok("GET", "/dashboard/summary")
    check(set(d) == {"monitors", "uptime_24h_pct", "p95_24h_ms", "alerts_today",
                     "unacked_alerts"}, "dashboard fields: %r" % d)
    check(d["monitors"] == {"total": 5, "up": 2, "down": 1, "pending": 1, "paused": 1},
          "monitor counts: %r" % d)
    check(d["uptime_24h_pct"] == 95.0, "uptime: %r" % d)
    check(abs(d["p95_24h_ms"] - 49.5) < 1e-9, "p95: %r" % d)
    check(d["alerts_today"] == 7, "alerts today: %r" % d)
    check(d["unacked_alerts"] == 7 - acked_now, "unacked: %r" % d)

    e = cb.ok("GET", "/dashboard/summary")
    check(e == {"monitors": {"total": 1, "up": 0, "down": 1, "pending": 0, "paused": 0},
                "uptime_24h_pct": 0.0, "p95_24h_ms": 49.5, "alerts_today": 2,
                "unacked_alerts": 2}, "b's dashboard: %r" % e)

    cc = GW.client()
    cc.register(email("c%d" % acked_now), PW)
    cc.login(email("c%d" % acked_now), PW)
    f = cc.ok("GET", "/dashboard/summary")
    check(f == {"monitors": {"total": 0, "up": 0, "down": 0, "pending": 0, "paused": 0},
                "uptime_24h_pct": None, "p95_24h_ms": None, "alerts_today": 0,
                "unacked_alerts": 0}, "empty dashboard: %r" % f)
    expect_400(ca, "/dashboard/summary?x=1", "x")


def main():
    global GW
    g.migrate()
    GW = g.Gateway.start(env={"UPMON_GATEWAY_RATE_AUTH_IP_PER_MIN": "100000"})
    try:
        ca, cb, a, b, m, al = seed()
        test_list(ca, cb, a, m, al)
        test_dashboard(ca, cb, 0)
        test_ack(ca, cb, a, al)
        test_dashboard(ca, cb, 1)
    finally:
        rc = GW.stop()
    check(rc == 0, "gateway exit status %d" % rc)
    print("PASS")


GW = None

if __name__ == "__main__":
    main()

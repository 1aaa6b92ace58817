#!/usr/bin/env python3
"""Maintenance windows of upmon-gateway (/maintenance-windows): create/list/get/put/patch/
delete with the exact JSON of the answers, validation of every field (fields of the other
kind, times, weekdays, HH:MM, durations, IANA time zones checked by PostgreSQL, another
tenant's monitor), another tenant's window answered 404, cursor paging and the ?monitor_id
filter, and "active": true for a one-off window around now and for a weekly window in a
non-UTC zone whose local time is now, false otherwise, in agreement with the SQL function
upmon_in_maintenance() the probe's state machine uses."""
import datetime
import re
import uuid
import zoneinfo

import upmon_gw as g
from upmon_gw import check

PW = "correct horse battery"
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
UTC = datetime.timezone.utc


def iso(dt):
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
        "%03dZ" % (dt.microsecond // 1000)


def fields(c, method, path, body):
    st, _, b = c.req(method, path, body=body)
    check(st == 400 and b["error"]["code"] == "validation_failed",
          "%s %s %r: %d %r" % (method, path, body, st, b))
    return b["error"]["fields"]


def monitor(c, name):
    return c.ok("POST", "/monitors", {"name": name, "type": "tcp", "host": "127.0.0.1",
                                      "port": 9, "interval_seconds": 60}, want=201)


def in_maintenance(mid, owner):
    return g.psql("SELECT upmon_in_maintenance(:'v1', :'v2', now())", mid, owner)[0][0] == "t"


def exact(got, want):
    """got has exactly want's keys and values, plus id/created_at/updated_at."""
    check(set(got) == set(want) | {"id", "created_at", "updated_at"},
          "keys %r" % sorted(got))
    for k, v in want.items():
        check(got[k] == v, "%s: %r, want %r (%r)" % (k, got[k], v, got))
    check(re.match(r"^[0-9a-f-]{36}$", got["id"]), "id %r" % got["id"])
    check(TIME_RE.match(got["created_at"]) and TIME_RE.match(got["updated_at"]),
          "times %r" % got)


def test_validation(a, mid, bmid):
    P = "/maintenance-windows"
    f = fields(a, "POST", P, {})
    check(set(f) == {"kind"}, "empty body: %r" % f)
    f = fields(a, "POST", P, {"kind": "once"})
    check(set(f) == {"starts_at", "ends_at"}, "once without times: %r" % f)
    f = fields(a, "POST", P, {"kind": "weekly"})
    check(set(f) == {"weekdays", "start_time", "duration_minutes"}, "weekly bare: %r" % f)
    once = {"kind": "once", "starts_at": "2030-01-01T00:00:00Z",
            "ends_at": "2030-01-01T01:00:00Z"}
    weekly = {"kind": "weekly", "weekdays": [1], "start_time": "02:00",
              "duration_minutes": 30}
    bad = [
        (dict(once, kind="daily"), "kind"),
        (dict(once, kind=1), "kind"),
        (dict(once, name="a" * 201), "name"),
        (dict(once, name="a\nb"), "name"),
        (dict(once, name=5), "name"),
        (dict(once, monitor_id="nope"), "monitor_id"),
        (dict(once, monitor_id=5), "monitor_id"),
        (dict(once, starts_at="yesterday"), "starts_at"),
        (dict(once, starts_at=1700000000000), "starts_at"),
        (dict(once, ends_at="2030-01-01T00:00:00Z"), "ends_at"),
        (dict(once, ends_at="2029-12-31T23:00:00Z"), "ends_at"),
        (dict(once, weekdays=[1]), "weekdays"),
        (dict(once, start_time="02:00"), "start_time"),
        (dict(once, duration_minutes=5), "duration_minutes"),
        (dict(once, time_zone="Mars/Olympus"), "time_zone"),
        (dict(once, time_zone=""), "time_zone"),
        (dict(once, time_zone="a" * 65), "time_zone"),
        (dict(once, active=True), "active"),
        (dict(once, id=str(uuid.uuid4())), "id"),
        (dict(once, x=1), "x"),
        (dict(weekly, starts_at="2030-01-01T00:00:00Z"), "starts_at"),
        (dict(weekly, ends_at="2030-01-01T00:00:00Z"), "ends_at"),
        (dict(weekly, weekdays=[]), "weekdays"),
        (dict(weekly, weekdays=[1, 2, 3, 4, 5, 6, 7, 1]), "weekdays"),
        (dict(weekly, weekdays=1), "weekdays"),
        (dict(weekly, weekdays=[0]), "weekdays[0]"),
        (dict(weekly, weekdays=[1, 8]), "weekdays[1]"),
        (dict(weekly, weekdays=[1, "2"]), "weekdays[1]"),
        (dict(weekly, weekdays=[1, 2.5]), "weekdays[1]"),
        (dict(weekly, weekdays=[3, 3]), "weekdays[1]"),
        (dict(weekly, start_time="24:00"), "start_time"),
        (dict(weekly, start_time="2:00"), "start_time"),
        (dict(weekly, start_time="02:60"), "start_time"),
        (dict(weekly, start_time="02:00:00"), "start_time"),
        (dict(weekly, start_time=200), "start_time"),
        (dict(weekly, duration_minutes=0), "duration_minutes"),
        (dict(weekly, duration_minutes=10081), "duration_minutes"),
        (dict(weekly, duration_minutes=1.5), "duration_minutes"),
        (dict(weekly, duration_minutes="30"), "duration_minutes"),
        (dict(weekly, time_zone="Europe/Nowhere"), "time_zone"),
    ]
    for body, field in bad:
        f = fields(a, "POST", P, body)
        check(field in f, "%r: fields %r lack %s" % (body, f, field))
    # every bad field at once, the database-checked ones included
    f = fields(a, "POST", P, dict(weekly, monitor_id=bmid, time_zone="Nowhere/Land",
                                  duration_minutes=0, name="\x01"))
    check(f == {"monitor_id": "unknown monitor", "time_zone": f.get("time_zone"),
                "duration_minutes": f.get("duration_minutes"), "name": f.get("name")} and
          "unknown time zone" in f["time_zone"], "several bad fields: %r" % f)
    f = fields(a, "POST", P, dict(once, monitor_id=str(uuid.uuid4())))
    check(f == {"monitor_id": "unknown monitor"}, "missing monitor: %r" % f)
    # the limits themselves are accepted
    for body in (dict(weekly, weekdays=[7, 1, 2, 3, 4, 5, 6], start_time="23:59",
                      duration_minutes=10080, name="a" * 200, time_zone="America/New_York"),
                 dict(weekly, start_time="00:00", duration_minutes=1),
                 dict(once, monitor_id=mid.upper(), starts_at="1735689600000")):
        w = a.ok("POST", P, body, want=201)
        a.ok("DELETE", P + "/" + w["id"], want=204)
    check(g.psql("SELECT count(*) FROM maintenance_windows")[0][0] == "0",
          "refused windows were stored")


def test_crud(a, b, mid, owner):
    P = "/maintenance-windows"
    st, h, w = a.req("POST", P, body={"name": "db upgrade", "monitor_id": mid,
                                      "kind": "once",
                                      "starts_at": "2030-01-01T01:00:00+01:00",
                                      "ends_at": "2030-01-01T02:30:00.250Z"})
    check(st == 201, "create: %d %r" % (st, w))
    check(h.get("location") == "/api/v1/maintenance-windows/" + w["id"],
          "location %r" % h.get("location"))
    exact(w, {"name": "db upgrade", "monitor_id": mid, "kind": "once",
              "starts_at": "2030-01-01T00:00:00.000Z", "ends_at": "2030-01-01T02:30:00.250Z",
              "weekdays": None, "start_time": None, "duration_minutes": None,
              "time_zone": "UTC", "active": False})
    check(a.ok("GET", P + "/" + w["id"]) == w, "GET differs from POST answer")
    wid = w["id"]

    # weekly with defaults: name "", monitor_id null (all monitors), time zone UTC
    wk = a.ok("POST", P, {"kind": "weekly", "weekdays": [5, 1], "start_time": "22:30",
                          "duration_minutes": 180}, want=201)
    exact(wk, {"name": "", "monitor_id": None, "kind": "weekly", "starts_at": None,
               "ends_at": None, "weekdays": [1, 5], "start_time": "22:30",
               "duration_minutes": 180, "time_zone": "UTC", "active": wk["active"]})

    # PUT: full replace, omitted fields back to their defaults
    p = a.ok("PUT", P + "/" + wid, {"kind": "weekly", "weekdays": [2], "start_time": "03:00",
                                    "duration_minutes": 60, "time_zone": "Europe/Paris"})
    exact(p, {"name": "", "monitor_id": None, "kind": "weekly", "starts_at": None,
              "ends_at": None, "weekdays": [2], "start_time": "03:00",
              "duration_minutes": 60, "time_zone": "Europe/Paris", "active": p["active"]})
    check(p["created_at"] == w["created_at"], "PUT changed created_at")
    f = fields(a, "PUT", P + "/" + wid, {"kind": "weekly", "weekdays": [2]})
    check(set(f) == {"start_time", "duration_minutes"}, "PUT partial: %r" % f)

    # PATCH: merge; other fields kept; the result re-validated
    p2 = a.ok("PATCH", P + "/" + wid, {"name": "nightly", "monitor_id": mid})
    check(p2["name"] == "nightly" and p2["monitor_id"] == mid and p2["weekdays"] == [2] and
          p2["time_zone"] == "Europe/Paris" and p2["duration_minutes"] == 60,
          "patch merge: %r" % p2)
    f = fields(a, "PATCH", P + "/" + wid, {"duration_minutes": 0, "bogus": 1})
    check(set(f) == {"duration_minutes", "bogus"}, "patch validation: %r" % f)
    f = fields(a, "PATCH", P + "/" + wid, {"starts_at": "2030-01-01T00:00:00Z"})
    check(set(f) == {"starts_at"}, "patch other kind's field: %r" % f)
    # changing the kind drops the old kind's fields; the new ones are required
    f = fields(a, "PATCH", P + "/" + wid, {"kind": "once"})
    check(set(f) == {"starts_at", "ends_at"}, "patch kind without times: %r" % f)
    p3 = a.ok("PATCH", P + "/" + wid, {"kind": "once", "starts_at": "2031-05-01T00:00:00Z",
                                       "ends_at": "2031-05-02T00:00:00Z",
                                       "monitor_id": None, "time_zone": None})
    exact(p3, {"name": "nightly", "monitor_id": None, "kind": "once",
               "starts_at": "2031-05-01T00:00:00.000Z", "ends_at": "2031-05-02T00:00:00.000Z",
               "weekdays": None, "start_time": None, "duration_minutes": None,
               "time_zone": "UTC", "active": False})
    f = fields(a, "PATCH", P + "/" + wid, {"ends_at": "2031-04-01T00:00:00Z"})
    check(set(f) == {"ends_at"}, "patch ends before start: %r" % f)
    check(a.ok("GET", P + "/" + wid) == p3, "refused patches changed the window")

    # another tenant: 404 everywhere, and b cannot point a window at a's monitor
    for method, body in (("GET", None), ("PUT", {"kind": "weekly", "weekdays": [1],
                                                 "start_time": "01:00",
                                                 "duration_minutes": 5}),
                         ("PATCH", {"name": "x"}), ("DELETE", None)):
        st, _, e = b.req(method, P + "/" + wid, body=body)
        check(st == 404 and e["error"]["code"] == "not_found",
              "b %s a's window: %d %r" % (method, st, e))
    f = fields(b, "POST", P, {"kind": "once", "monitor_id": mid,
                              "starts_at": "2030-01-01T00:00:00Z",
                              "ends_at": "2030-01-02T00:00:00Z"})
    check(f == {"monitor_id": "unknown monitor"}, "b with a's monitor: %r" % f)
    check(b.ok("GET", P) == {"items": [], "next_cursor": None}, "b sees a's windows")
    st, _, _ = a.req("GET", P + "/" + str(uuid.uuid4()))
    check(st == 404, "missing window: %d" % st)
    st, _, _ = a.req("GET", P, token="")
    check(st == 401, "no token: %d" % st)

    # delete
    a.ok("DELETE", P + "/" + wk["id"], want=204)
    st, _, _ = a.req("DELETE", P + "/" + wk["id"])
    check(st == 404, "second delete: %d" % st)
    return wid


def test_paging(a, mid, wid):
    P = "/maintenance-windows"
    ids = [wid]
    for i in range(4):
        body = {"name": "w%d" % i, "kind": "once", "starts_at": "2032-01-01T00:00:00Z",
                "ends_at": "2032-01-01T00:01:00Z"}
        if i % 2 == 0:
            body["monitor_id"] = mid
        ids.append(a.ok("POST", P, body, want=201)["id"])
    seen, cursor, pages = [], None, 0
    while True:
        q = "?limit=2" + ("&cursor=" + cursor if cursor else "")
        page = a.ok("GET", P + q)
        pages += 1
        seen += [x["id"] for x in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        check(pages < 10, "paging does not end")
    check(seen == ids and pages == 3, "pages: %r, want %r in 3 pages" % (seen, ids))
    got = [x["id"] for x in a.ok("GET", P + "?monitor_id=" + mid.upper())["items"]]
    check(got == [ids[1], ids[3]], "monitor filter: %r" % got)
    for q, field in (("?monitor_id=nope", "monitor_id"), ("?limit=0", "limit"),
                     ("?limit=201", "limit"), ("?x=1", "x"), ("?cursor=%%%", None)):
        st, _, e = a.req("GET", P + q)
        check(st == 400, "%s: %d" % (q, st))
        if field:
            check(field in e["error"].get("fields", {}) or field in e["error"]["message"],
                  "%s: %r" % (q, e))
    for i in ids:
        a.ok("DELETE", P + "/" + i, want=204)


def test_active(a, mid, owner):
    P = "/maintenance-windows"
    now = datetime.datetime.now(UTC)
    check(not in_maintenance(mid, owner), "in maintenance before any window")
    # one-off windows
    w_now = a.ok("POST", P, {"kind": "once", "monitor_id": mid,
                             "starts_at": iso(now - datetime.timedelta(minutes=5)),
                             "ends_at": iso(now + datetime.timedelta(minutes=10))},
                 want=201)
    check(w_now["active"] is True, "once around now: %r" % w_now)
    check(in_maintenance(mid, owner), "upmon_in_maintenance disagrees (once)")
    w_past = a.ok("POST", P, {"kind": "once", "monitor_id": mid,
                              "starts_at": iso(now - datetime.timedelta(hours=2)),
                              "ends_at": iso(now - datetime.timedelta(hours=1))}, want=201)
    check(w_past["active"] is False, "past window active")
    a.ok("DELETE", P + "/" + w_now["id"], want=204)
    check(not in_maintenance(mid, owner), "in maintenance after deleting the window")

    # weekly in Asia/Kolkata (UTC+05:30): active when its local time is now; the same
    # wall-clock window read as UTC would not be
    tz = zoneinfo.ZoneInfo("Asia/Kolkata")
    start = (now - datetime.timedelta(minutes=5)).astimezone(tz)
    body = {"kind": "weekly", "weekdays": [start.isoweekday()],
            "start_time": start.strftime("%H:%M"), "duration_minutes": 15,
            "time_zone": "Asia/Kolkata"}
    wk = a.ok("POST", P, body, want=201)
    check(wk["active"] is True, "weekly in Asia/Kolkata around now: %r (now %s)" %
          (wk, now.isoformat()))
    check(a.ok("GET", P + "/" + wk["id"])["active"] is True, "GET active")
    check(in_maintenance(mid, owner), "upmon_in_maintenance disagrees (weekly, all monitors)")
    utc = a.ok("PATCH", P + "/" + wk["id"], {"time_zone": "UTC"})
    check(utc["active"] is False, "same window in UTC active: %r" % utc)
    other_day = start.isoweekday() % 7 + 1
    od = a.ok("PATCH", P + "/" + wk["id"], {"time_zone": "Asia/Kolkata",
                                            "weekdays": [other_day]})
    check(od["active"] is False, "weekly on another day active: %r" % od)
    later = (now + datetime.timedelta(minutes=60)).astimezone(tz)
    lt = a.ok("PATCH", P + "/" + wk["id"], {"weekdays": [later.isoweekday()],
                                            "start_time": later.strftime("%H:%M"),
                                            "duration_minutes": 10})
    check(lt["active"] is False, "weekly later today active: %r" % lt)
    check(not in_maintenance(mid, owner), "in maintenance with no active window")
    a.ok("DELETE", P + "/" + wk["id"], want=204)
    a.ok("DELETE", P + "/" + w_past["id"], want=204)


def main():
    g.migrate()
    gw = g.Gateway.start()
    try:
        a = gw.client()
        owner = a.register("mw-a@example.test", PW)["user"]["id"]
        a.login("mw-a@example.test", PW)
        b = gw.client()
        b.register("mw-b@example.test", PW)
        b.login("mw-b@example.test", PW)
        m = monitor(a, "mw monitor")
        bm = monitor(b, "mw b monitor")
        test_validation(a, m["id"], bm["id"])
        wid = test_crud(a, b, m["id"], owner)
        test_paging(a, m["id"], wid)
        test_active(a, m["id"], owner)
        # deleting the monitor deletes its windows
        w = a.ok("POST", "/maintenance-windows", {"kind": "once", "monitor_id": m["id"],
                                                  "starts_at": "2030-01-01T00:00:00Z",
                                                  "ends_at": "2030-01-02T00:00:00Z"},
                 want=201)
        a.ok("DELETE", "/monitors/" + m["id"], want=204)
        st, _, _ = a.req("GET", "/maintenance-windows/" + w["id"])
        check(st == 404, "window of a deleted monitor: %d" % st)
    finally:
        rc = gw.stop()
    # a sanitizer report or a crash at shutdown fails the test
    check(rc == 0, "upmon-gateway exited with %d" % rc)
    print("ok")


if __name__ == "__main__":
    main()

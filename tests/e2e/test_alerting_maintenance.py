#!/usr/bin/env python3
"""Alerting end to end, a maintenance window (issue 5, done-when d): a monitor linked to an
email and a webhook channel checks successfully, then a one-off window created through POST
/maintenance-windows starts and the target goes down. For longer than the P4 bound plus an
interval nothing is sent and no alerts row exists, although the failed checks are stored;
GET /monitors/{id}/summary?window=24h keeps uptime at 100 %: the checks inside the window
count as maintenance_checks, the others as checks, no failures (so the silence was the
window's doing). The window is deleted while the target is still down: the first check
after it raises the DOWN nobody was told of, then its RECOVERY. An outage that begins inside
a window and recovers after it sends nothing (no RECOVERY for an unannounced DOWN)."""
import time

import upmon_gw as g
from upmon_gw import check

INTERVAL = 10
RETRIES = 1


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int(t * 1000 % 1000)


def main():
    st = g.AlertStack("maint")
    try:
        st.start()
        addr = st.addr("maint")
        mail = st.email_channel(addr)
        hook = st.webhook_channel(st.sink.url + "/maint", secret="maintenance-secret-0123456789")
        mon = st.monitor("maintained %s" % st.tag, interval=INTERVAL, retries=RETRIES)
        mid = mon["id"]
        st.link(mid, [mail["id"], hook["id"]])
        st.wait_status(mid, "up", 30)
        final = "SELECT count(*) FROM check_results WHERE monitor_id = :'v1' AND final"
        g.wait_for(lambda: int(g.psql(final, mid)[0][0]) >= 2, 3 * INTERVAL,
                   "two successful checks before the window")

        now = time.time()
        w = st.c.ok("POST", "/maintenance-windows",
                    {"name": "e2e", "monitor_id": mid, "kind": "once",
                     "starts_at": iso(now), "ends_at": iso(now + 600)}, want=201)
        check(w["active"] is True, "window not active: %r" % w)
        t_down = st.target.set_up(False)
        bound = g.p4_bound(INTERVAL, RETRIES, st.RETRY_BASE_MS, st.RETRY_MAX_MS)
        quiet = bound + INTERVAL
        time.sleep(quiet)

        failed_in = g.psql("SELECT count(*) FROM check_results WHERE monitor_id = :'v1' AND "
                           "final AND NOT ok", mid)[0][0]
        check(int(failed_in) >= 2, "only %s failed final checks in the window" % failed_in)
        check(g.mails_to(addr) == [], "an email during the maintenance window")
        check(st.sink.received("/maint") == [], "a webhook during the maintenance window")
        alerts = g.psql("SELECT kind FROM alerts WHERE monitor_id = :'v1'", mid)
        check(alerts == [], "alerts during the maintenance window: %r" % alerts)
        print("%.0f s of outage inside the window: %s failed checks, no alert, no email" %
              (quiet, failed_in), flush=True)

        outside, inside = g.psql(
            "SELECT count(*) FILTER (WHERE NOT upmon_in_maintenance(monitor_id, :'v2', "
            "scheduled_at)), count(*) FILTER (WHERE upmon_in_maintenance(monitor_id, :'v2', "
            "scheduled_at)) FROM check_results WHERE monitor_id = :'v1' AND final",
            mid, st.uid)[0]
        s = st.c.ok("GET", "/monitors/%s/summary?window=24h" % mid)
        check(s["failures"] == 0 and s["uptime_pct"] == 100 and
              s["checks"] == int(outside) and s["maintenance_checks"] == int(inside),
              "summary %r; want checks %s (outside), maintenance_checks %s, no failures" %
              (s, outside, inside))
        print("summary: checks %d, maintenance_checks %d, failures %d, uptime %s" %
              (s["checks"], s["maintenance_checks"], s["failures"], s["uptime_pct"]))

        # the window ends while the target is still down: the first check after it raises
        # the DOWN nobody was told of (the control: the silence was the window's doing);
        # its RECOVERY follows, and nothing else is sent
        st.c.ok("DELETE", "/maintenance-windows/%s" % w["id"], want=204)
        t_end = time.time()
        downs = g.wait_for(lambda: [m for m in g.mails_to(addr)
                                    if m[1]["Subject"].startswith("[DOWN] ")],
                           bound + INTERVAL + 5, "DOWN email once the window is gone")
        print("window gone, still down: DOWN email %.1f s later" %
              (g.sink_stamp(downs[0][0]) - t_end))
        st.target.set_up(True)
        g.wait_for(lambda: [m for m in g.mails_to(addr)
                            if m[1]["Subject"].startswith("[RECOVERY] ")],
                   bound + INTERVAL + 5, "RECOVERY email")
        time.sleep(2)
        subjects = [m["Subject"].split(" ")[0] for _, m in g.mails_to(addr)]
        check(subjects == ["[DOWN]", "[RECOVERY]"], "emails of the monitor: %r" % subjects)
        kinds = g.psql("SELECT kind FROM alerts WHERE monitor_id = :'v1' ORDER BY created_at",
                       mid)
        check([k[0] for k in kinds] == ["down", "recovery"], "alerts: %r" % kinds)

        # an outage that begins and ends inside a window: no RECOVERY afterwards either
        w = st.c.ok("POST", "/maintenance-windows",
                    {"name": "e2e-2", "monitor_id": mid, "kind": "once",
                     "starts_at": iso(time.time()), "ends_at": iso(time.time() + 600)},
                    want=201)
        st.target.set_up(False)
        st.wait_status(mid, "down", bound + INTERVAL + 5)
        st.c.ok("DELETE", "/maintenance-windows/%s" % w["id"], want=204)
        st.target.set_up(True)
        st.wait_status(mid, "up", bound + INTERVAL + 5)
        time.sleep(3)
        subjects = [m["Subject"].split(" ")[0] for _, m in g.mails_to(addr)]
        check(subjects == ["[DOWN]", "[RECOVERY]"],
              "an outage inside a window got emails: %r" % subjects)
        print("outage inside a window, recovered after it: no RECOVERY email")
        st.ok = True
        print("ok")
    finally:
        st.stop()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Alerting end to end, the SMTP server away (issue 5, done-when b; target R5): the stack's
SMTP sink is stopped ("$UPMON_CTL" stop smtp) for 60 s while a monitor goes down. The mailer
records the failed attempts (deliveries pending, attempts >= 1, last_error set), the alert
waits in notifications.retry.<n> (5 s, 10 s, 20 s, 40 s, 80 s: the common notify retry
TTLs), and once the sink is back the DOWN email arrives exactly once; the deliveries row says
delivered with attempts > 1. Takes about 100 s."""
import os
import subprocess
import time

import upmon_gw as g
from upmon_gw import check

INTERVAL = 10
OUTAGE = 60


def ctl(action):
    subprocess.run([os.environ["UPMON_CTL"], action, "smtp"], check=True,
                   stdout=subprocess.DEVNULL)


def delivery(mid):
    return g.psql("SELECT d.status, d.attempts, coalesce(d.last_error, ''), a.id "
                  "FROM deliveries d JOIN alerts a ON a.id = d.alert_id "
                  "WHERE a.monitor_id = :'v1' AND a.kind = 'down'", mid)


def main():
    st = g.AlertStack("smtpdown")
    stopped = False
    try:
        st.start()
        addr = st.addr("late")
        ch = st.email_channel(addr)
        mon = st.monitor("smtp outage %s" % st.tag, interval=INTERVAL, retries=1)
        mid = mon["id"]
        st.link(mid, [ch["id"]])
        st.wait_status(mid, "up", 30)

        ctl("stop")
        stopped = True
        t_stop = time.time()
        st.target.set_up(False)
        rows = g.wait_for(lambda: [r for r in delivery(mid) if int(r[1]) >= 1],
                          INTERVAL + 20, "a failed delivery attempt while SMTP is down")
        check(rows[0][0] == "pending" and rows[0][2] != "",
              "delivery while SMTP is down: %r" % rows)
        print("while SMTP is down: %s after %d attempt(s): %s" % (rows[0][0], int(rows[0][1]),
                                                                  rows[0][2]), flush=True)
        check(g.mails_to(addr) == [], "an email while the sink is stopped?")
        retrying = g.wait_for(lambda: {k: v for k, v in
                                       g.queue_counts("notifications.retry.").items() if v},
                              15, "the alert in a notifications.retry queue")
        print("waiting in %r" % retrying, flush=True)
        time.sleep(max(0.0, t_stop + OUTAGE - time.time()))
        ctl("start")
        stopped = False
        t_back = time.time()
        print("SMTP sink back after %.0f s" % (t_back - t_stop), flush=True)

        mails = g.wait_for(lambda: g.mails_to(addr), 120, "the DOWN email after SMTP returned")
        print("DOWN email %.1f s after the sink returned" % (g.sink_stamp(mails[0][0]) - t_back))
        rows = g.wait_for(lambda: [r for r in delivery(mid) if r[0] == "delivered"], 15,
                          "deliveries row delivered")
        check(int(rows[0][1]) > 1, "attempts %r, want > 1" % rows)
        time.sleep(6)
        mails = g.mails_to(addr)
        check(len(mails) == 1 and mails[0][1]["Subject"].startswith("[DOWN] "),
              "emails: %r" % [m["Subject"] for _, m in mails])
        check(mails[0][1]["Message-ID"] == "<%s.%s@upmon>" % (rows[0][3], ch["id"]),
              "Message-ID %r" % mails[0][1]["Message-ID"])
        check(g.queue_counts("notifications_dead").get("notifications_dead", 0) == 0,
              "dead-lettered")
        print("ok: delivered after %s attempts" % rows[0][1])
        st.ok = True
    finally:
        if stopped:
            ctl("start")
        st.stop()


if __name__ == "__main__":
    main()

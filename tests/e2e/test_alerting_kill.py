#!/usr/bin/env python3
"""Alerting end to end, the mailer killed (issue 5, done-when b; target R5):

1. Mid-send: the email channel's address is slow5000@<domain>, so the SMTP sink stores the
   message and then holds back its final 250 for 5 s. The mailer is SIGKILLed inside those
   5 s (the deliveries row still pending); the unacked alert goes back to the queue, and the
   restarted mailer delivers it: the row says delivered, and the sink holds exactly two
   copies with the same Message-ID <alert.channel@upmon> (the documented duplicate: at most
   one per channel per crash, recognisable by its Message-ID).
2. Before the send: the sink is stopped, a second monitor goes down, the mailer fails its
   first attempt (the alert now waits in a retry queue) and is SIGKILLed; the sink and then
   the mailer start again -> exactly one copy, delivered.
Takes about 90 s."""
import os
import subprocess
import time

import upmon_gw as g
from upmon_gw import check

INTERVAL = 10
SLOW_MS = 5000


def ctl(action):
    subprocess.run([os.environ["UPMON_CTL"], action, "smtp"], check=True,
                   stdout=subprocess.DEVNULL)


def delivery(mid):
    return g.psql("SELECT d.status, d.attempts, coalesce(d.last_error, ''), a.id "
                  "FROM deliveries d JOIN alerts a ON a.id = d.alert_id "
                  "WHERE a.monitor_id = :'v1' AND a.kind = 'down'", mid)


def mid_send(st):
    addr = "slow%d@kill-%s-%d.test" % (SLOW_MS, st.tag, os.getpid())
    ch = st.email_channel(addr)
    mon = st.monitor("killed mid-send %s" % st.tag, path="/a", interval=INTERVAL)
    mid = mon["id"]
    st.link(mid, [ch["id"]])
    st.wait_status(mid, "up", 30)
    st.target.set_up(False, "/a")
    first = g.wait_for(lambda: g.mails_to(addr), INTERVAL + 20, "the stored first copy",
                       step=0.05)
    t_stored = g.sink_stamp(first[0][0])
    st.mailer.kill()
    t_kill = time.time()
    check(t_kill - t_stored < SLOW_MS / 1000.0 - 0.5,
          "killed %.2f s after the copy was stored: not inside the sink's delay" %
          (t_kill - t_stored))
    rows = delivery(mid)
    check(len(rows) == 1 and rows[0][0] == "pending", "deliveries at the kill: %r" % rows)
    print("mailer killed %.2f s after the sink stored the message; row %r" %
          (t_kill - t_stored, rows[0][:2]), flush=True)
    st.mailer.start()
    rows = g.wait_for(lambda: [r for r in delivery(mid) if r[0] == "delivered"],
                      SLOW_MS / 1000.0 + 30, "delivered after the restart")
    time.sleep(3)
    mails = g.mails_to(addr)
    ids = [m["Message-ID"] for _, m in mails]
    want = "<%s.%s@upmon>" % (rows[0][3], ch["id"])
    check(len(mails) == 2 and ids == [want, want],
          "copies after a kill mid-send: %r (want two of %s)" % (ids, want))
    print("mid-send: %d copies, Message-ID %s, attempts %s" % (len(mails), want, rows[0][1]),
          flush=True)


def before_send(st):
    addr = st.addr("before")
    ch = st.email_channel(addr)
    mon = st.monitor("killed before the send %s" % st.tag, path="/b", interval=INTERVAL)
    mid = mon["id"]
    st.link(mid, [ch["id"]])
    st.wait_status(mid, "up", 30)
    ctl("stop")
    try:
        st.target.set_up(False, "/b")
        rows = g.wait_for(lambda: [r for r in delivery(mid) if int(r[1]) >= 1],
                          INTERVAL + 20, "a failed attempt while SMTP is down")
        check(rows[0][0] == "pending", "delivery while SMTP is down: %r" % rows)
        st.mailer.kill()
        print("mailer killed after %s failed attempt(s): %s" % (rows[0][1], rows[0][2]),
              flush=True)
    finally:
        ctl("start")
    st.mailer.start()
    rows = g.wait_for(lambda: [r for r in delivery(mid) if r[0] == "delivered"], 60,
                      "delivered after the restart")
    time.sleep(3)
    mails = g.mails_to(addr)
    check(len(mails) == 1 and mails[0][1]["Message-ID"] == "<%s.%s@upmon>" %
          (rows[0][3], ch["id"]), "copies after a kill before the send: %r" %
          [m["Message-ID"] for _, m in mails])
    print("before the send: one copy, attempts %s" % rows[0][1], flush=True)


def main():
    st = g.AlertStack("kill")
    try:
        st.start()
        mid_send(st)
        before_send(st)
        st.ok = True
        print("ok")
    finally:
        st.stop()


if __name__ == "__main__":
    main()

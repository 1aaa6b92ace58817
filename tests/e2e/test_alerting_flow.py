#!/usr/bin/env python3
"""Alerting end to end (issue 5, done-when a and c): the real scheduler, probe, mailer and
gateway on the test stack, the stack's SMTP sink, a target and a webhook receiver in this
process.

1. A monitor (interval 10 s, one confirmation re-probe) linked through PUT
   /monitors/{id}/channels to an email channel and a signed webhook channel. The target goes
   down -> exactly one DOWN email, accepted by the sink within the P4 bound (one interval +
   the re-probe's backoff + 2 s, measured from the moment the target went down), with its
   headers (Subject, From, To, Message-ID = <alert.channel@upmon>) and both MIME parts
   carrying the monitor's name (HTML-escaped in the HTML part), target, state, error, time
   and dashboard link. It comes back -> exactly one RECOVERY email with the outage duration.
   The webhook receiver got both, signed with the channel's secret (HMAC-SHA256 over
   "<timestamp>.<body>"), and the four deliveries rows say delivered after one attempt.
2. Header injection: an alert event whose monitor name carries "\\r\\nBcc: ..." (published
   as an attacker would, since the database refuses control characters in names) yields no
   Bcc header and no extra recipient (or is refused and recorded failed); an email channel
   whose address carries CR/LF (written with SQL, the API refuses it) is recorded failed
   after one attempt and nothing is sent.
3. SSRF: webhook channels to http://169.254.169.254/ and http://10.0.0.1/ are recorded failed
   with "blocked address" after one attempt, nothing goes to the retry or dead queues.
"""
import calendar
import json
import re
import time

import upmon_gw as g
from upmon_gw import check, fail

INTERVAL = 10
RETRIES = 1
SECRET = "e2e-webhook-secret-0123456789abcdef"


def duration(s):
    """As mailer_format_duration: 12s, 4m 12s, 4m, 1h 5m, 1h, 2d 3h, 2d."""
    d, h, m, sec = s // 86400, s % 86400 // 3600, s % 3600 // 60, s % 60
    if d:
        return "%dd %dh" % (d, h) if h else "%dd" % d
    if h:
        return "%dh %dm" % (h, m) if m else "%dh" % h
    if m:
        return "%dm %ds" % (m, sec) if sec else "%dm" % m
    return "%ds" % sec


def kind_of(msg):
    m = re.match(r"\[([A-Z ]+)\]", msg["Subject"] or "")
    return m.group(1) if m else None


def deliveries(alert_id=None, monitor_id=None):
    if alert_id is not None:
        return g.psql("SELECT d.channel_id, d.status, d.attempts, coalesce(d.last_error, '') "
                      "FROM deliveries d WHERE d.alert_id = :'v1' ORDER BY 1", alert_id)
    return g.psql("SELECT a.kind, d.channel_id, d.status, d.attempts, "
                  "coalesce(d.last_error, '') FROM deliveries d JOIN alerts a "
                  "ON a.id = d.alert_id WHERE a.monitor_id = :'v1' ORDER BY a.created_at, 2",
                  monitor_id)


def raise_alert(st, mid, channel_id, name, error="status 503"):
    """An alerts row (SQL) and its event on upmon.events (management API), for channel_id
    only: what the probe's store and relay would do, with a name of our choice."""
    aid = g.psql("INSERT INTO alerts (owner_id, monitor_id, kind, dedup_key, message) "
                 "VALUES (:'v1', :'v2', 'down', :'v3', 'e2e') RETURNING id",
                 st.uid, mid, "e2e:%s:%f" % (channel_id, time.time()))[0][0]
    ev = {"v": 1, "alert_id": aid, "kind": "down", "monitor_id": mid, "owner_id": st.uid,
          "channel_id": channel_id, "monitor_name": name,
          "target": st.target.url + "/health", "at": int(time.time() * 1000), "error": error}
    g.publish_event("alert.down", ev, "alert:" + aid)
    return aid


def settled(aid, n=1):
    rows = deliveries(alert_id=aid)
    return rows if len(rows) == n and all(r[1] != "pending" for r in rows) else None


def flow(st):
    addr = st.addr("ops")
    mail = st.email_channel(addr)
    hook = st.webhook_channel(st.sink.url + "/hook", secret=SECRET)
    name = "shop & api <%s>" % st.tag
    mon = st.monitor(name, interval=INTERVAL, retries=RETRIES)
    mid = mon["id"]
    st.link(mid, [mail["id"], hook["id"]])
    bound = g.p4_bound(INTERVAL, RETRIES, st.RETRY_BASE_MS, st.RETRY_MAX_MS)
    st.wait_status(mid, "up", 30)

    # ---- down
    t_down = st.target.set_up(False)
    downs = g.wait_for(lambda: [m for m in g.mails_to(addr) if kind_of(m[1]) == "DOWN"],
                       bound + 20, "DOWN email")
    path, msg = downs[0]
    latency = g.sink_stamp(path) - t_down
    print("DOWN email accepted %.2f s after the target went down (P4 bound %.1f s)"
          % (latency, bound), flush=True)
    check(latency <= bound, "DOWN email after %.2f s, P4 bound %.1f s" % (latency, bound))
    status = st.wait_status(mid, "down", 5)
    aid = g.psql("SELECT id FROM alerts WHERE monitor_id = :'v1' AND kind = 'down'", mid)
    check(len(aid) == 1, "alerts rows of kind down: %r" % aid)
    aid = aid[0][0]

    check(msg["Subject"].startswith("[DOWN] " + name + " is down"), "subject %r" % msg["Subject"])
    check(msg["From"].addresses[0].addr_spec == "upmon@localhost", "From %r" % msg["From"])
    check([a.addr_spec for a in msg["To"].addresses] == [addr], "To %r" % msg["To"])
    check(msg["Message-ID"] == "<%s.%s@upmon>" % (aid, mail["id"]),
          "Message-ID %r, alert %s channel %s" % (msg["Message-ID"], aid, mail["id"]))
    check(g.envelope_to(msg) == [addr], "envelope %r" % g.envelope_to(msg))
    text, html = g.mail_parts(msg)
    link = "%s/monitors/%s" % (st.DASHBOARD, mid)
    for part, nm in ((text, name), (html, name.replace("&", "&amp;").replace("<", "&lt;")
                                    .replace(">", "&gt;"))):
        for want in (nm, st.target.url + "/health", "DOWN", status["error"], link):
            check(want in part, "%r missing in the email part:\n%s" % (want, part))
    check(name not in html, "the HTML part carries the raw name")
    m = re.search(r"Time:\s+(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)", text)
    check(m is not None, "no Time: row in\n%s" % text)
    at = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%SZ"))
    check(t_down - 2 <= at <= time.time() + 1, "alert time %s, target down at %.0f" %
          (m.group(1), t_down))

    # ---- recovery
    time.sleep(3)
    t_up = st.target.set_up(True)
    recs = g.wait_for(lambda: [m for m in g.mails_to(addr) if kind_of(m[1]) == "RECOVERY"],
                      bound + 20, "RECOVERY email")
    print("RECOVERY email %.2f s after the target came back" % (g.sink_stamp(recs[0][0]) - t_up),
          flush=True)
    hooks = g.wait_for(lambda: len(st.sink.received("/hook")) >= 2 and st.sink.received("/hook"),
                       15, "two webhook requests")
    time.sleep(6)	# anything extra (a duplicate) would arrive by now

    mails = g.mails_to(addr)
    check(sorted(kind_of(m) for _, m in mails) == ["DOWN", "RECOVERY"],
          "emails: %r" % [m["Subject"] for _, m in mails])
    hooks = st.sink.received("/hook")
    check(len(hooks) == 2, "webhook requests: %d" % len(hooks))
    bodies = {}
    for h in hooks:
        check(g.webhook_signature_ok(SECRET, h["headers"], h["body"]),
              "bad signature: %r" % h["headers"])
        b = json.loads(h["body"])
        bodies[b["kind"]] = b
        check(h["headers"].get("x-upmon-delivery") == b["delivery_id"] ==
              "%s.%s" % (b["alert_id"], hook["id"]), "delivery ids: %r %r" % (h["headers"], b))
        check(b["monitor"]["id"] == mid and b["monitor"]["name"] == name and
              b["monitor"]["url"] == link, "webhook monitor: %r" % b)
    check(sorted(bodies) == ["down", "recovery"], "webhook kinds: %r" % sorted(bodies))
    check(bodies["down"]["alert_id"] == aid and bodies["down"]["text"].startswith("[DOWN] "),
          "down webhook: %r" % bodies["down"])
    check(bodies["recovery"]["text"].startswith("[RECOVERY] "), "recovery webhook: %r" %
          bodies["recovery"])
    outage = bodies["recovery"]["outage_seconds"]
    check(3 <= outage <= time.time() - t_down + 2, "outage_seconds %r" % outage)
    rmsg = [m for _, m in mails if kind_of(m) == "RECOVERY"][0]
    rtext, rhtml = g.mail_parts(rmsg)
    check(re.search(r"Outage:\s+" + re.escape(duration(outage)) + r"\r?\n", rtext) is not None,
          "no 'Outage: %s' in\n%s" % (duration(outage), rtext))
    check(duration(outage) in rhtml, "outage missing in the HTML part")
    check(rmsg["Subject"].startswith("[RECOVERY] " + name), "subject %r" % rmsg["Subject"])

    rows = deliveries(monitor_id=mid)
    check(len(rows) == 4 and all(r[2] == "delivered" and r[3] == "1" for r in rows),
          "deliveries: %r" % rows)
    return mid, latency, bound


def injection(st, mid):
    addr = st.addr("inj")
    ch = st.email_channel(addr)
    evil = "evil\r\nBcc: bcc-%s@evil.test" % st.tag
    aid = raise_alert(st, mid, ch["id"], evil)
    rows = g.wait_for(lambda: settled(aid), 30, "delivery of the CR/LF name")
    if rows[0][1] == "delivered":
        mails = g.mails_to(addr)
        check(len(mails) == 1, "%d emails for the CR/LF name" % len(mails))
        msg = mails[0][1]
        check(g.envelope_to(msg) == [addr], "envelope recipients %r" % g.envelope_to(msg))
        check(msg.get_all("Bcc") is None, "a Bcc header: %r" % msg.get_all("Bcc"))
        check("\r" not in msg["Subject"] and "\n" not in msg["Subject"], "subject %r" %
              msg["Subject"])
        print("CR/LF name: sent with the name on one line: %r" % msg["Subject"])
    else:
        check(rows[0][1] == "failed" and rows[0][3] != "" and rows[0][2] == "1",
              "delivery of the CR/LF name: %r" % rows)
        check(g.mails_to(addr) == [], "email sent for a refused delivery")
        print("CR/LF name: refused: %s" % rows[0][3])

    # an address with CR/LF in it can only come from SQL (the API validates addresses)
    bad_to = "%s\r\nBcc: bcc2-%s@evil.test" % (st.addr("inj2"), st.tag)
    cid = g.psql("INSERT INTO notification_channels (owner_id, name, kind, config) "
                 "VALUES (:'v1', 'crlf address', 'email', "
                 "jsonb_build_object('to', jsonb_build_array(:'v2'::text))) RETURNING id",
                 st.uid, bad_to)[0][0]
    aid = raise_alert(st, mid, cid, "plain name")
    rows = g.wait_for(lambda: settled(aid), 30, "delivery to the CR/LF address")
    check(rows[0][1] == "failed" and rows[0][2] == "1" and rows[0][3] != "",
          "delivery to the CR/LF address: %r" % rows)
    print("CR/LF address: refused: %s" % rows[0][3])
    for who in ("bcc-", "bcc2-"):
        check(g.mails_to("%s%s@evil.test" % (who, st.tag)) == [], "mail to %s..." % who)
    check(g.mails_to(st.addr("inj2")) == [], "mail to the CR/LF address")


def ssrf(st, mid):
    ids = []
    for url in ("http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/hook"):
        s, _, b = st.c.req("POST", "/channels", {"name": "hook " + url, "kind": "webhook",
                                                 "config": {"url": url}})
        if s == 201:
            cid = b["id"]
        else:	# the API may refuse it already: the mailer's guard is what is tested here
            cid = g.psql("INSERT INTO notification_channels (owner_id, name, kind, config) "
                         "VALUES (:'v1', :'v2', 'webhook', jsonb_build_object('url', :'v3'::text)) "
                         "RETURNING id", st.uid, "hook " + url, url)[0][0]
        aid = raise_alert(st, mid, cid, "ssrf")
        ids.append((url, aid))
    for url, aid in ids:
        rows = g.wait_for(lambda: settled(aid), 30, "delivery to %s" % url)
        check(rows[0][1] == "failed" and rows[0][2] == "1" and
              "blocked address" in rows[0][3], "delivery to %s: %r" % (url, rows))
        print("%s: %s" % (url, rows[0][3]))
    time.sleep(7)	# the management API's counters lag by up to 5 s
    q = g.queue_counts("notifications")
    busy = {k: v for k, v in q.items() if v}
    check(busy == {}, "notification queues not empty: %r" % busy)
    for url, aid in ids:
        rows = deliveries(alert_id=aid)
        check(rows[0][2] == "1", "attempts of %s grew: %r" % (url, rows))


def main():
    st = g.AlertStack("flow")
    try:
        st.start()
        mid, latency, bound = flow(st)
        injection(st, mid)
        ssrf(st, mid)
        st.ok = True
        print("ok (P4: %.2f s, bound %.1f s)" % (latency, bound))
    finally:
        st.stop()


if __name__ == "__main__":
    main()

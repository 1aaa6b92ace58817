"""upmon-mailer's consumer against the real stack (RabbitMQ, PostgreSQL, the SMTP sink):

  1. alert.down for a monitor with an email channel -> one email, deliveries row delivered
     (attempts 1), notifications empty;
  2. the same event again -> no second email, upmon_mailer_duplicates_skipped_total 1;
  3. a garbage message -> notifications_dead with x-upmon-error;
  4. an event whose alerts row does not exist -> acked and dropped, nothing sent; a test
     notification (kind test, channel_id, no alerts row) -> sent, no deliveries row;
  5. a webhook channel to a blocked address (SSRF guard) -> failed at once, no retry;
  6. the SMTP sink stopped, an alert published -> pending with attempts and last_error, sent
     through notifications.retry.1; the sink started -> delivered, exactly one email;
  7. PostgreSQL stopped, an alert published -> held unacked, nothing sent; PostgreSQL back
     -> delivered, exactly one email;
  8. an email channel whose recipient the sink refuses with 550 -> failed at once, no retry;
     one it answers 451 -> retried, then notifications_dead with the 451 in x-upmon-error
     after UPMON_MAILER_MAX_ATTEMPTS (2 here), the row still pending with 2 attempts;
  9. SIGTERM -> the mailer exits 0.
Alert events are built as proto/alert_event.schema.json describes them.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

import upmon_gw as g

TAG = uuid.uuid4().hex[:10]
BIN = os.environ["UPMON_BIN_DIR"]


# ---- small helpers (RabbitMQ management API, the sink's maildir, the mailer) ----------

def queue_len(name):
    q = g.mgmt("GET", "/api/queues/%s/%s" % (g.vhost_path(), name))
    return (q.get("messages_ready") or 0) + (q.get("messages_unacknowledged") or 0)


def publish(routing_key, payload, message_id):
    body = payload if isinstance(payload, str) else json.dumps(payload)
    r = g.mgmt("POST", "/api/exchanges/%s/upmon.events/publish" % g.vhost_path(), {
        "routing_key": routing_key, "payload_encoding": "string", "payload": body,
        "properties": {"message_id": message_id, "delivery_mode": 2,
                       "content_type": "application/json"}})
    g.check(r.get("routed") is True, "publish %s not routed: %r" % (message_id, r))


def dead_messages():
    return g.mgmt("POST", "/api/queues/%s/notifications_dead/get" % g.vhost_path(),
                {"count": 10, "ackmode": "ack_requeue_true", "encoding": "auto"})


def mails_to(addr):
    """The raw stored messages to addr, oldest first."""
    out = []
    for path, _ in g.mails_to(addr):
        with open(path, "rb") as f:
            out.append(f.read())
    return out


def wait_for(fn, timeout, what):
    return g.wait_for(fn, timeout, what, on_fail=lambda: mailer.dump())


class Mailer:
    def __init__(self, env):
        self.port = g.free_port()
        self.env = dict(os.environ)
        self.env.update({"UPMON_ADMIN_ADDR": "127.0.0.1", "UPMON_ADMIN_PORT": str(self.port)})
        self.env.update(env)
        self.log = tempfile.NamedTemporaryFile(prefix="mailer-", suffix=".log", delete=False)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([os.path.join(BIN, "upmon-mailer")], env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            g.check(self.proc.poll() is None, "upmon-mailer exited at start")
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % self.port,
                                            timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        self.dump()
        g.fail("upmon-mailer not ready")

    def metric(self, name):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.port,
                                    timeout=5) as r:
            text = r.read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def dump(self, lines=40):
        try:
            with open(self.log.name, errors="replace") as f:
                tail = f.readlines()[-lines:]
            sys.stderr.write("--- mailer log tail ---\n" + "".join(tail))
        except OSError:
            pass

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return None


def now_ms():
    return int(time.time() * 1000)


def alert_event(alert_id, monitor_id, owner_id, name, kind="down"):
    ev = {"v": 1, "alert_id": alert_id, "kind": kind, "monitor_id": monitor_id,
          "owner_id": owner_id, "monitor_name": name, "target": "http://192.0.2.1/health",
          "at": now_ms(), "error": "connection refused"}
    return ev


def delivery(alert_id, channel_id):
    rows = g.psql("SELECT status, attempts, coalesce(last_error, ''), "
                  "delivered_at IS NOT NULL FROM deliveries "
                  "WHERE alert_id = :'v1' AND channel_id = :'v2'", alert_id, channel_id)
    return rows[0] if rows else None


# ---- fixtures in PostgreSQL ----------------------------------------------------------

g.migrate()
owner = g.psql("INSERT INTO users (email, password_hash) VALUES (:'v1', 'x') RETURNING id",
               "m1-%s@example.test" % TAG)[0][0]


def monitor(name):
    return g.psql("INSERT INTO monitors (owner_id, name, type, url) "
                  "VALUES (:'v1', :'v2', 'http', 'http://192.0.2.1/health') RETURNING id",
                  owner, name)[0][0]


def channel(kind, config, name):
    return g.psql("INSERT INTO notification_channels (owner_id, name, kind, config) "
                  "VALUES (:'v1', :'v2', :'v3', :'v4'::jsonb) RETURNING id",
                  owner, name, kind, json.dumps(config))[0][0]


def link(mon, ch):
    g.psql("INSERT INTO monitor_channels (monitor_id, channel_id, owner_id) "
           "VALUES (:'v1', :'v2', :'v3')", mon, ch, owner)


def alert(mon, kind="down"):
    return g.psql("INSERT INTO alerts (owner_id, monitor_id, kind, dedup_key) "
                  "VALUES (:'v1', :'v2', :'v3', :'v4') RETURNING id", owner, mon, kind,
                  "m1:%s:%s" % (mon, uuid.uuid4()))[0][0]


mailer = Mailer({"UPMON_SMTP_TLS": "none", "UPMON_MAILER_WORKERS": "2",
                 "UPMON_SMTP_TIMEOUT_MS": "3000", "UPMON_LOG_LEVEL": "info",
                 "UPMON_MAILER_MAX_ATTEMPTS": "2"})
mailer.start()
ctl = os.environ["UPMON_CTL"]
try:
    # 1. one alert, one email, one delivered row, queue empty
    addr1 = "m1-one-%s@example.test" % TAG
    m1 = monitor("api one")
    e1 = channel("email", {"to": [addr1]}, "ops mail")
    link(m1, e1)
    a1 = alert(m1)
    ev1 = alert_event(a1, m1, owner, "api one")
    publish("alert.down", ev1, a1)
    wait_for(lambda: len(mails_to(addr1)) >= 1, 20, "the DOWN email")
    wait_for(lambda: (delivery(a1, e1) or [""])[0] == "delivered", 10, "row delivered")
    row = delivery(a1, e1)
    g.check(row == ["delivered", "1", "", "t"], "deliveries row: %r" % (row,))
    wait_for(lambda: queue_len("notifications") == 0, 10, "notifications empty")
    g.check(("%s.%s" % (a1, e1)).encode() in mails_to(addr1)[0],
            "the delivery id is in the email")
    print("ok 1 one alert -> one email, delivered, acked")

    # 2. the same event again: skipped as a duplicate
    publish("alert.down", ev1, a1)
    wait_for(lambda: mailer.metric("upmon_mailer_duplicates_skipped_total") == 1, 15,
             "duplicate skipped")
    wait_for(lambda: queue_len("notifications") == 0, 10, "notifications empty")
    time.sleep(1)
    g.check(len(mails_to(addr1)) == 1, "one email after the duplicate, got %d" %
            len(mails_to(addr1)))
    g.check(delivery(a1, e1)[1] == "1", "attempts still 1")
    print("ok 2 redelivered alert -> no second email, duplicates_skipped 1")

    # 3. garbage -> notifications_dead with x-upmon-error
    publish("alert.down", "{not json", "garbage-%s" % TAG)
    wait_for(lambda: queue_len("notifications_dead") == 1, 15, "garbage dead-lettered")
    msgs = dead_messages()
    hdrs = msgs[0]["properties"].get("headers", {})
    g.check("undecodable" in hdrs.get("x-upmon-error", ""),
            "x-upmon-error of the dead letter: %r" % (hdrs,))
    g.check(mailer.metric("upmon_mailer_dead_total") == 1, "upmon_mailer_dead_total 1")
    print("ok 3 garbage -> notifications_dead with x-upmon-error: %s" %
          hdrs.get("x-upmon-error"))

    # 4. no alerts row -> dropped, nothing sent
    ghost = str(uuid.uuid4())
    publish("alert.down", alert_event(ghost, m1, owner, "api one"), ghost)
    wait_for(lambda: mailer.metric('upmon_mailer_notifications_total{outcome="dropped"}') == 1,
             15, "alert without a row dropped")
    g.check(len(mails_to(addr1)) == 1, "nothing sent for an alert without a row")
    g.check(g.psql("SELECT count(*) FROM deliveries WHERE alert_id = :'v1'", ghost)[0][0] ==
            "0", "no deliveries row for it")
    print("ok 4 alert without an alerts row -> dropped")

    # 4b. kind test (POST /channels/{id}/test): its channel only, no alerts/deliveries row
    tid = "test:%s:%s" % (e1, uuid.uuid4())
    publish("alert.test", {"v": 1, "alert_id": tid, "kind": "test", "owner_id": owner,
                           "channel_id": e1, "at": now_ms()}, tid)
    wait_for(lambda: len(mails_to(addr1)) == 2, 15, "the test email")
    g.check(tid.encode() in mails_to(addr1)[1], "the test email carries its delivery id")
    g.check(g.psql("SELECT count(*) FROM deliveries")[0][0] == "1",
            "no deliveries row for a test notification")
    print("ok 4b test notification -> sent to its channel, no deliveries row")

    # 5. webhook to a blocked address: failed at once, no retry
    m2 = monitor("api two")
    w2 = channel("webhook", {"url": "http://127.0.0.1:9/hook"}, "blocked hook")
    link(m2, w2)
    a2 = alert(m2)
    retried0 = mailer.metric("upmon_mailer_retried_total")
    publish("alert.down", alert_event(a2, m2, owner, "api two"), a2)
    wait_for(lambda: (delivery(a2, w2) or [""])[0] == "failed", 15, "webhook row failed")
    row = delivery(a2, w2)
    g.check(row[1] == "1" and row[2] != "", "failed row: %r" % (row,))
    wait_for(lambda: queue_len("notifications") == 0, 10, "notifications empty")
    g.check(queue_len("notifications.retry.1") == 0, "no retry for a permanent failure")
    g.check(mailer.metric("upmon_mailer_retried_total") == retried0, "retried unchanged")
    print("ok 5 blocked webhook -> failed at once (%s), no retry" % row[2])

    # 6. SMTP down -> pending + retry queue; SMTP back -> delivered, one email
    addr3 = "m1-three-%s@example.test" % TAG
    m3 = monitor("api three")
    e3 = channel("email", {"to": [addr3]}, "ops mail 3")
    link(m3, e3)
    a3 = alert(m3)
    subprocess.run([ctl, "stop", "smtp"], check=True, stdout=subprocess.DEVNULL)
    try:
        t0 = time.time()
        publish("alert.down", alert_event(a3, m3, owner, "api three"), a3)
        wait_for(lambda: (delivery(a3, e3) or ["", "0"])[1] != "0", 20,
                 "temporary failure recorded")
        row = delivery(a3, e3)
        g.check(row[0] == "pending" and row[2] != "", "pending row: %r" % (row,))
        wait_for(lambda: mailer.metric("upmon_mailer_retried_total") >= retried0 + 1, 10,
                 "sent to a retry queue")
        g.check(mails_to(addr3) == [], "no email while the sink is down")
    finally:
        subprocess.run([ctl, "start", "smtp"], check=True, stdout=subprocess.DEVNULL)
    wait_for(lambda: (delivery(a3, e3) or [""])[0] == "delivered", 45,
             "delivered after the sink returned")
    wait_for(lambda: len(mails_to(addr3)) >= 1, 5, "the email after the sink returned")
    time.sleep(0.5)
    g.check(len(mails_to(addr3)) == 1, "exactly one email, got %d" % len(mails_to(addr3)))
    row = delivery(a3, e3)
    g.check(int(row[1]) >= 2 and row[3] == "t", "delivered row after retries: %r" % (row,))
    wait_for(lambda: queue_len("notifications") == 0 and
             queue_len("notifications.retry.1") == 0, 10, "queues empty")
    print("ok 6 smtp down -> retried (%d attempts), delivered %.1f s after publish" %
          (int(row[1]), time.time() - t0))

    # 7. PostgreSQL down: held unacked, nothing sent; back -> delivered once
    addr6 = "m1-six-%s@example.test" % TAG
    m6 = monitor("api six")
    e6 = channel("email", {"to": [addr6]}, "ops mail 6")
    link(m6, e6)
    a6 = alert(m6)
    subprocess.run([ctl, "stop", "postgres"], check=True, stdout=subprocess.DEVNULL)
    try:
        publish("alert.down", alert_event(a6, m6, owner, "api six"), a6)
        wait_for(lambda: g.mgmt("GET", "/api/queues/%s/notifications" % g.vhost_path())
                 .get("messages_unacknowledged") == 1, 10, "alert taken and held")
        time.sleep(3)
        g.check(mails_to(addr6) == [], "nothing sent while PostgreSQL is down")
        g.check(queue_len("notifications") == 1, "still held unacked")
    finally:
        subprocess.run([ctl, "start", "postgres"], check=True, stdout=subprocess.DEVNULL)
    wait_for(lambda: (delivery(a6, e6) or [""])[0] == "delivered", 30,
             "delivered after PostgreSQL returned")
    wait_for(lambda: queue_len("notifications") == 0, 10, "notifications empty")
    g.check(len(mails_to(addr6)) == 1, "exactly one email, got %d" % len(mails_to(addr6)))
    print("ok 7 postgres down -> held, delivered once after it returned")

    # 8. SMTP 550 -> failed at once; SMTP 451 -> retried, then dead past max attempts
    m4 = monitor("api four")
    e4 = channel("email", {"to": ["permfail@example.test"]}, "refused mail")
    link(m4, e4)
    a4 = alert(m4)
    retried0 = mailer.metric("upmon_mailer_retried_total")
    publish("alert.down", alert_event(a4, m4, owner, "api four"), a4)
    wait_for(lambda: (delivery(a4, e4) or [""])[0] == "failed", 15, "550 row failed")
    row = delivery(a4, e4)
    g.check(row[1] == "1" and "550" in row[2], "failed row after 550: %r" % (row,))
    m5 = monitor("api five")
    e5 = channel("email", {"to": ["tempfail@example.test"]}, "busy mail")
    link(m5, e5)
    a5 = alert(m5)
    publish("alert.down", alert_event(a5, m5, owner, "api five"), a5)
    wait_for(lambda: queue_len("notifications_dead") == 2, 30, "451 alert dead-lettered")
    row = delivery(a5, e5)
    g.check(row[0] == "pending" and row[1] == "2" and "451" in row[2],
            "row after 2 temporary failures: %r" % (row,))
    g.check(mailer.metric("upmon_mailer_retried_total") == retried0 + 1,
            "one retry for the 451 alert, none for the 550 one")
    errs = [m["properties"].get("headers", {}).get("x-upmon-error", "")
            for m in dead_messages()]
    g.check(any("451" in e and e5 in e for e in errs), "x-upmon-error names the 451: %r" %
            (errs,))
    print("ok 8 smtp 550 -> failed at once; 451 -> retried, dead after 2 attempts")

    # 9. SIGTERM drains and exits 0
    rc = mailer.stop()
    g.check(rc == 0, "exit status after SIGTERM: %r" % rc)
    print("ok 9 SIGTERM -> exit 0")
except BaseException:
    mailer.dump()
    raise
finally:
    mailer.stop()
print("PASS")

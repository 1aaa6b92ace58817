#!/usr/bin/env python3
"""Notification channels of upmon-gateway: create/list/get/put/patch/delete, validation
(every bad field named, CR/LF and spaces in email addresses, URLs, unknown config keys,
secrets), the write-only secret (never returned, has_secret), PATCH semantics, another
tenant's channel answered 404, and POST /channels/{id}/test writing one outbox row (exchange
upmon.events, routing key alert.test, an alert event of kind test naming the channel), which
the probe's outbox relay then publishes into the notifications queue."""
import base64
import json
import os
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

import upmon_gw as g
from upmon_gw import check

PW = "correct horse battery"
SECRET = "s3cret-s3cret-s3cret"


def fields(c, method, path, body):
    st, _, b = c.req(method, path, body=body)
    check(st == 400 and b["error"]["code"] == "validation_failed",
          "%s %s %r: %d %r" % (method, path, body, st, b))
    return b["error"]["fields"]


def no_secret(obj):
    check(SECRET not in json.dumps(obj) and "secret" not in obj,
          "secret leaked: %r" % obj)


def test_validation(c):
    f = fields(c, "POST", "/channels", {})
    check(set(f) == {"name", "kind", "config"}, "empty body: %r" % f)
    bad = [
        ({"name": "a", "kind": "email", "config": {"to": ["a@b.example\r\nBcc: x@y"]}},
         "config.to[0]"),
        ({"name": "a", "kind": "email", "config": {"to": ["a@b.example\nx"]}},
         "config.to[0]"),
        ({"name": "a", "kind": "email", "config": {"to": ["a b@c.example"]}},
         "config.to[0]"),
        ({"name": "a", "kind": "email", "config": {"to": ["ok@b.example", "nope"]}},
         "config.to[1]"),
        ({"name": "a", "kind": "email", "config": {"to": []}}, "config.to"),
        ({"name": "a", "kind": "email", "config": {"to": ["x@y.z"] * 11}}, "config.to"),
        ({"name": "a", "kind": "email", "config": {"to": "a@b.example"}}, "config.to"),
        ({"name": "a", "kind": "email", "config": {"to": ["a@b.example"], "cc": []}},
         "config.cc"),
        ({"name": "a", "kind": "email", "config": {}}, "config.to"),
        ({"name": "a", "kind": "email", "config": {"to": ["a@b.example"]},
          "secret": SECRET}, "secret"),
        ({"name": "a", "kind": "webhook", "config": {"url": "ftp://h.example/"}},
         "config.url"),
        ({"name": "a", "kind": "webhook", "config": {"url": "https://h.example/a b"}},
         "config.url"),
        ({"name": "a", "kind": "webhook", "config": {"url": "https://h.example/\r\n"}},
         "config.url"),
        ({"name": "a", "kind": "webhook", "config": {"url": "https://" + "a" * 2041}},
         "config.url"),
        ({"name": "a", "kind": "webhook", "config": {"url": "https://h.example/"},
          "secret": "short"}, "secret"),
        ({"name": "a", "kind": "webhook", "config": {"url": "https://h.example/"},
          "secret": 5}, "secret"),
        ({"name": "a", "kind": "sms", "config": {}}, "kind"),
        ({"name": "", "kind": "email", "config": {"to": ["a@b.example"]}}, "name"),
        ({"name": "a\nb", "kind": "email", "config": {"to": ["a@b.example"]}}, "name"),
        ({"name": "a" * 201, "kind": "email", "config": {"to": ["a@b.example"]}}, "name"),
        ({"name": "a", "kind": "email", "config": {"to": ["a@b.example"]},
          "enabled": "yes"}, "enabled"),
        ({"name": "a", "kind": "email", "config": {"to": ["a@b.example"]}, "x": 1}, "x"),
        ({"name": "a", "kind": "email", "config": []}, "config"),
    ]
    for body, field in bad:
        f = fields(c, "POST", "/channels", body)
        check(field in f, "%r: fields %r lack %s" % (body, f, field))
    f = fields(c, "POST", "/channels", {"name": "a", "kind": "email",
                                        "config": {"to": ["a@b.example"], "cc": 1}})
    check(f.get("config.cc") == "unknown field", "unknown config key: %r" % f)
    check(g.psql("SELECT count(*) FROM notification_channels")[0][0] == "0",
          "a refused channel was stored")


def test_crud(c, other):
    e = c.ok("POST", "/channels", {"name": "Ops mail", "kind": "email",
                                   "config": {"to": ["ops@example.test", "b@example.test"]}},
             want=201)
    check(e["kind"] == "email" and e["config"] == {"to": ["ops@example.test",
                                                          "b@example.test"]} and
          e["enabled"] is True and e["has_secret"] is False and e["name"] == "Ops mail",
          "email channel: %r" % e)
    check(set(e) == {"id", "name", "kind", "config", "has_secret", "enabled", "created_at",
                     "updated_at"}, "channel keys: %r" % sorted(e))
    st, h, w = c.req("POST", "/channels", body={
        "name": "Hook", "kind": "webhook", "config": {"url": "https://hooks.example/x"},
        "secret": SECRET, "enabled": False})
    check(st == 201 and h.get("location") == "/api/v1/channels/" + w["id"],
          "webhook create: %d %r %r" % (st, h.get("location"), w))
    check(w["has_secret"] is True and w["enabled"] is False, "webhook: %r" % w)
    no_secret(w)
    check(g.psql("SELECT secret FROM notification_channels WHERE id = :'v1'", w["id"]) ==
          [[SECRET]], "secret not stored")
    got = c.ok("GET", "/channels/" + w["id"])
    no_secret(got)
    check(got == w, "get: %r != %r" % (got, w))
    lst = c.ok("GET", "/channels")
    check([x["id"] for x in lst["items"]] == [e["id"], w["id"]] and
          lst["next_cursor"] is None, "list: %r" % lst)
    no_secret(lst)
    p1 = c.ok("GET", "/channels?limit=1")
    check(len(p1["items"]) == 1 and p1["items"][0]["id"] == e["id"] and p1["next_cursor"],
          "page 1: %r" % p1)
    p2 = c.ok("GET", "/channels?limit=1&cursor=" + p1["next_cursor"])
    check([x["id"] for x in p2["items"]] == [w["id"]] and p2["next_cursor"] is None,
          "page 2: %r" % p2)

    # PATCH: only given fields change; the secret stays unless given
    p = c.ok("PATCH", "/channels/" + w["id"], {"enabled": True})
    check(p["enabled"] is True and p["has_secret"] is True and p["name"] == "Hook" and
          p["config"] == {"url": "https://hooks.example/x"}, "patch enabled: %r" % p)
    p = c.ok("PATCH", "/channels/" + w["id"], {"config": {"url": "http://hooks.example/y"}})
    check(p["config"] == {"url": "http://hooks.example/y"} and p["has_secret"] is True,
          "patch config: %r" % p)
    p = c.ok("PATCH", "/channels/" + w["id"], {"secret": None})
    check(p["has_secret"] is False, "patch secret null: %r" % p)
    check(g.psql("SELECT secret IS NULL FROM notification_channels WHERE id = :'v1'",
                 w["id"]) == [["t"]], "secret not removed")
    f = fields(c, "PATCH", "/channels/" + w["id"], {"kind": "email"})
    check("config.to" in f or "config.url" in f, "kind change without config: %r" % f)
    f = fields(c, "PATCH", "/channels/" + w["id"], {"config": {"url": "https://h/"}, "y": 1})
    check(f.get("y") == "unknown field", "patch unknown: %r" % f)
    f = fields(c, "PATCH", "/channels/" + e["id"], {"config": {"to": ["a\r\n@b"]}})
    check("config.to[0]" in f, "patch bad email: %r" % f)
    p = c.ok("PATCH", "/channels/" + w["id"], {"kind": "email", "name": "Now mail",
                                               "config": {"to": ["x@example.test"]}})
    check(p["kind"] == "email" and p["name"] == "Now mail" and p["enabled"] is True,
          "patch kind: %r" % p)

    # PUT: a full replace (omitted enabled -> true, omitted secret -> none)
    c.ok("PATCH", "/channels/" + e["id"], {"enabled": False})
    put = c.ok("PUT", "/channels/" + e["id"], {"name": "Hook 2", "kind": "webhook",
                                              "config": {"url": "https://h2.example/"},
                                              "secret": SECRET})
    check(put["kind"] == "webhook" and put["enabled"] is True and put["has_secret"] is True
          and put["name"] == "Hook 2", "put: %r" % put)
    no_secret(put)
    put = c.ok("PUT", "/channels/" + e["id"], {"name": "Hook 2", "kind": "webhook",
                                              "config": {"url": "https://h2.example/"}})
    check(put["has_secret"] is False, "put without secret removes it: %r" % put)
    f = fields(c, "PUT", "/channels/" + e["id"], {"name": "x"})
    check("kind" in f and "config" in f, "put partial: %r" % f)

    # another tenant: 404 on every route, nothing changed
    for method, path, body in (("GET", "/channels/" + e["id"], None),
                               ("PUT", "/channels/" + e["id"],
                                {"name": "x", "kind": "email",
                                 "config": {"to": ["a@b.example"]}}),
                               ("PATCH", "/channels/" + e["id"], {"name": "stolen"}),
                               ("DELETE", "/channels/" + e["id"], None),
                               ("POST", "/channels/%s/test" % e["id"], None)):
        st, _, b = other.req(method, path, body=body)
        check(st == 404 and b["error"]["code"] == "not_found",
              "foreign %s %s: %d %r" % (method, path, st, b))
    check(other.ok("GET", "/channels") == {"items": [], "next_cursor": None},
          "other tenant sees channels")
    check(c.ok("GET", "/channels/" + e["id"])["name"] == "Hook 2", "foreign write changed it")
    check(g.psql("SELECT count(*) FROM outbox")[0][0] == "0", "foreign test queued")
    return e, w


def test_test_notification(c, owner, chan):
    b = c.ok("POST", "/channels/%s/test" % chan["id"], want=202)
    check(b["queued"] is True and b["message_id"].startswith("test:%s:" % chan["id"]),
          "test: %r" % b)
    rows = g.psql("SELECT exchange, routing_key, message_id, payload::text, sent_at IS NULL"
                  " FROM outbox")
    check(len(rows) == 1, "outbox rows: %r" % rows)
    ex, rk, mid, payload, _ = rows[0]
    check(ex == "upmon.events" and rk == "alert.test" and mid == b["message_id"],
          "outbox row: %r" % rows[0])
    p = json.loads(payload)
    check(p["v"] == 1 and p["kind"] == "test" and p["channel_id"] == chan["id"] and
          p["owner_id"] == owner and p["alert_id"] == mid and "monitor_id" not in p,
          "payload: %r" % p)
    check(g.psql("SELECT count(*) FROM alerts")[0][0] == "0", "a test wrote an alerts row")
    b2 = c.ok("POST", "/channels/%s/test" % chan["id"], want=202)
    check(b2["message_id"] != b["message_id"], "two tests share a message id")
    test_relay([b["message_id"], b2["message_id"]], chan)
    st, _, _ = c.req("POST", "/channels/00000000-0000-4000-8000-000000000000/test")
    check(st == 404, "test of a missing channel: %d" % st)


def mgmt_get_notifications():
    """The messages in this test's notifications queue (left in the queue)."""
    u = urllib.parse.urlsplit(os.environ["UPMON_RABBITMQ_MGMT_URL"])
    vhost = urllib.parse.urlsplit(os.environ["UPMON_AMQP_URL"]).path[1:]
    url = "%s://%s:%d/api/queues/%s/notifications/get" % (
        u.scheme, u.hostname, u.port, urllib.parse.quote(urllib.parse.unquote(vhost),
                                                         safe=""))
    auth = base64.b64encode(("%s:%s" % (urllib.parse.unquote(u.username),
                                        urllib.parse.unquote(u.password))).encode())
    rq = urllib.request.Request(url, method="POST", data=json.dumps(
        {"count": 10, "ackmode": "ack_requeue_true", "encoding": "auto"}).encode(),
        headers={"Content-Type": "application/json", "Authorization": b"Basic " + auth})
    with urllib.request.urlopen(rq, timeout=10) as r:
        return json.loads(r.read())


def test_relay(message_ids, chan):
    """upmon-probe's outbox relay publishes the test notifications to upmon.events, and the
    notifications queue (alert.#) receives them with their message ids."""
    env = dict(os.environ, UPMON_ADMIN_PORT="0")
    log = tempfile.NamedTemporaryFile(prefix="upmon-probe-", suffix=".log", delete=False)
    probe = subprocess.Popen([os.path.join(g.BIN, "upmon-probe")], env=env, stdout=log,
                             stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            if g.psql("SELECT count(*) FROM outbox WHERE sent_at IS NULL")[0][0] == "0":
                break
            time.sleep(0.3)
        else:
            with open(log.name, errors="replace") as f:
                print(f.read()[-2000:])
            check(False, "the relay did not publish the test notifications")
        msgs = []
        while time.time() < deadline and len(msgs) < len(message_ids):
            msgs = mgmt_get_notifications()
            time.sleep(0.3)
        got = sorted(m["properties"].get("message_id") for m in msgs)
        check(got == sorted(message_ids), "notifications queue: %r" % got)
        for m in msgs:
            p = json.loads(m["payload"])
            check(m["routing_key"] == "alert.test" and p["kind"] == "test" and
                  p["channel_id"] == chan["id"], "published message: %r" % m)
    finally:
        probe.terminate()
        probe.wait(timeout=15)
        os.unlink(log.name)


def main():
    g.migrate()
    gw = g.Gateway.start()
    try:
        a = gw.client()
        owner = a.register("chan-a@example.test", PW)["user"]["id"]
        a.login("chan-a@example.test", PW)
        b = gw.client()
        b.register("chan-b@example.test", PW)
        b.login("chan-b@example.test", PW)
        test_validation(a)
        e, w = test_crud(a, b)
        test_test_notification(a, owner, w)
        a.ok("DELETE", "/channels/" + e["id"], want=204)
        st, _, _ = a.req("GET", "/channels/" + e["id"])
        check(st == 404, "deleted channel: %d" % st)
        st, _, _ = a.req("DELETE", "/channels/" + e["id"])
        check(st == 404, "second delete: %d" % st)
        check([x["id"] for x in a.ok("GET", "/channels")["items"]] == [w["id"]],
              "list after delete")
        st, _, _ = a.req("GET", "/channels", token="")
        check(st == 401, "no token: %d" % st)
        print("ok")
    finally:
        gw.stop()


if __name__ == "__main__":
    main()

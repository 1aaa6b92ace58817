"""Admin routes of upmon-gateway against a real RabbitMQ and PostgreSQL.

A user without role admin gets 404 on every admin route. An admin sees the work, retry and
dead-letter queues with their counts; three messages put in monitor_tasks_dead (through the
management API) are listed with their headers and stay there; replaying two moves exactly two
to monitor_tasks without the x-upmon-* failure headers (other headers and message ids kept);
purge deletes the last one; a queue that is not a dead-letter queue is refused with 400
fields.queue. The user list shows every user with their monitor count and pages with cursors.
The role is the database's: a token claiming admin for a user, or the token of an admin
demoted since, gets 404.
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.parse

import upmon_gw as g

PW = "correct horse battery staple"


def publish_dead(mid, error, extra=None):
    headers = {"x-upmon-error": error, "x-upmon-attempt": 5,
               "x-upmon-service": "upmon-probe", "x-upmon-host": "h1",
               "x-upmon-first-failure": "2026-11-21T09:59:00.000Z",
               "x-upmon-last-failure": "2026-11-21T10:00:00.000Z", "keep-me": "yes"}
    headers.update(extra or {})
    r = g.mgmt("POST", "/api/exchanges/%s/amq.default/publish" % g.vhost_path(), {
        "routing_key": "monitor_tasks_dead", "payload_encoding": "string",
        "payload": json.dumps({"v": 1, "id": mid}),
        "properties": {"message_id": mid, "delivery_mode": 2, "headers": headers}})
    g.check(r.get("routed") is True, "publish of %s not routed: %r" % (mid, r))


def peek(queue, n=20):
    """Messages of queue through the management API, requeued afterwards."""
    return g.mgmt("POST", "/api/queues/%s/%s/get" % (g.vhost_path(), urllib.parse.quote(queue, safe="")),
                {"count": n, "ackmode": "ack_requeue_true", "encoding": "auto"})


def counts(c):
    q = c.ok("GET", "/admin/queues")
    return {x["name"]: x for x in q["queues"]}


def user(gw, email, admin=False):
    c = gw.client()
    c.register(email, PW)
    if admin:
        g.psql("UPDATE users SET role = 'admin' WHERE email = :'v1'", email)
    c.login(email, PW)
    return c


def check_error(st, b, status, code, what):
    g.check(st == status, "%s: status %d, want %d: %r" % (what, st, status, b))
    g.check(isinstance(b, dict) and b.get("error", {}).get("code") == code,
            "%s: error %r, want code %s" % (what, b, code))


def test_not_admin(gw):
    u = user(gw, "admin-test-user@example.test")
    routes = [("GET", "/admin/queues", None), ("GET", "/admin/dlq?queue=monitor_tasks_dead",
                                                None),
              ("POST", "/admin/dlq/replay", {"queue": "monitor_tasks_dead"}),
              ("DELETE", "/admin/dlq?queue=monitor_tasks_dead", None),
              ("GET", "/admin/users", None)]
    for m, p, body in routes:
        st, _, b = u.req(m, p, body=body)
        check_error(st, b, 404, "not_found", "non-admin %s %s" % (m, p))
    # and without a token: 401 as on every protected route
    st, _, b = gw.client().req("GET", "/admin/queues")
    check_error(st, b, 401, "unauthorized", "no token /admin/queues")
    return u


def test_queues(adm):
    q = counts(adm)
    fixed = {"monitor_tasks", "monitor_tasks_dead", "notifications", "notifications_dead"}
    g.check(fixed <= set(q), "queues: %r" % sorted(q))
    for fam in ("monitor_tasks", "notifications"):
        retries = sorted(n for n in q if n.startswith(fam + ".retry."))
        g.check(retries == ["%s.retry.%d" % (fam, i) for i in range(1, 6)],
                "%s retry queues: %r" % (fam, retries))
    g.check(len(q) == 14, "14 queues expected (work, 5 retry, dead x2): %r" % sorted(q))
    for name, x in q.items():
        g.check(x["messages"] == 0 and x["consumers"] == 0, "fresh vhost %s: %r" % (name, x))


def test_dlq(adm):
    publish_dead("m1", "db down: connection refused")
    publish_dead("m2", "db down: timeout")
    publish_dead("m3", "bad\nline \u00e9", {"x-death-like": "keep"})
    g.check(counts(adm)["monitor_tasks_dead"]["messages"] == 3, "dead count after publish")

    for rnd in (1, 2):
        t0 = time.time()
        b = adm.ok("GET", "/admin/dlq?queue=monitor_tasks_dead")
        took = time.time() - t0
        g.check(b["queue"] == "monitor_tasks_dead", "list queue: %r" % b)
        items = {it["message_id"]: it for it in b["items"]}
        g.check(sorted(items) == ["m1", "m2", "m3"], "list round %d: %r" % (rnd, b))
        m1 = items["m1"]
        g.check(m1["routing_key"] == "monitor_tasks_dead", "routing key %r" % m1)
        g.check(m1["headers"].get("x-upmon-error") == "db down: connection refused" and
                m1["headers"].get("x-upmon-attempt") == 5 and
                m1["headers"].get("x-upmon-service") == "upmon-probe" and
                m1["headers"].get("keep-me") == "yes", "m1 headers: %r" % m1["headers"])
        g.check(json.loads(m1["body"]) == {"v": 1, "id": "m1"}, "m1 body %r" % m1["body"])
        g.check(items["m3"]["headers"]["x-upmon-error"] == "bad\nline \u00e9",
                "m3 error kept verbatim: %r" % items["m3"]["headers"])
        g.check(isinstance(m1["redelivered"], bool), "redelivered: %r" % m1)
        if rnd == 2:
            g.check(all(it["redelivered"] for it in b["items"]),
                    "second listing should see redelivered messages: %r" % b["items"])
        g.check(took < 5, "list took %.1f s" % took)
        n = counts(adm)["monitor_tasks_dead"]["messages"]
        g.check(n == 3, "list must leave the messages (round %d): %d" % (rnd, n))

    b = adm.ok("GET", "/admin/dlq?queue=monitor_tasks_dead&limit=2")
    g.check(len(b["items"]) == 2, "limit 2: %r" % b)

    b = adm.ok("POST", "/admin/dlq/replay", {"queue": "monitor_tasks_dead", "limit": 2})
    g.check(b == {"queue": "monitor_tasks_dead", "replayed": 2}, "replay: %r" % b)
    q = counts(adm)
    g.check(q["monitor_tasks"]["messages"] == 2 and q["monitor_tasks_dead"]["messages"] == 1,
            "after replay: work %r dead %r" % (q["monitor_tasks"], q["monitor_tasks_dead"]))
    got = peek("monitor_tasks")
    g.check(len(got) == 2, "monitor_tasks: %r" % got)
    ids = set()
    for msg in got:
        props = msg["properties"]
        hdrs = props.get("headers", {})
        ids.add(props.get("message_id"))
        g.check(not any(k.startswith("x-upmon-") for k in hdrs),
                "replayed message keeps failure headers: %r" % hdrs)
        g.check(hdrs.get("keep-me") == "yes", "replay dropped a caller header: %r" % hdrs)
        g.check(json.loads(msg["payload"])["id"] == props.get("message_id"),
                "body changed: %r" % msg)
    g.check(len(ids) == 2 and ids <= {"m1", "m2", "m3"}, "replayed ids %r" % ids)
    left = adm.ok("GET", "/admin/dlq?queue=monitor_tasks_dead")["items"]
    g.check(len(left) == 1 and left[0]["message_id"] not in ids, "left in dead: %r" % left)

    b = adm.ok("DELETE", "/admin/dlq?queue=monitor_tasks_dead")
    g.check(b == {"queue": "monitor_tasks_dead", "purged": 1}, "purge: %r" % b)
    g.check(adm.ok("GET", "/admin/dlq?queue=monitor_tasks_dead")["items"] == [],
            "dead queue not empty after purge")
    q = counts(adm)
    g.check(q["monitor_tasks_dead"]["messages"] == 0 and q["monitor_tasks"]["messages"] == 2,
            "after purge: %r %r" % (q["monitor_tasks_dead"], q["monitor_tasks"]))
    b = adm.ok("DELETE", "/admin/dlq?queue=notifications_dead")
    g.check(b == {"queue": "notifications_dead", "purged": 0}, "empty purge: %r" % b)

    # bad queues and bodies
    for p in ("/admin/dlq?queue=monitor_tasks", "/admin/dlq", "/admin/dlq?queue=x%27%3B"):
        st, _, b = adm.req("GET", p)
        check_error(st, b, 400, "validation_failed", "GET " + p)
        g.check("queue" in b["error"].get("fields", {}), "fields.queue: %r" % b)
    st, _, b = adm.req("DELETE", "/admin/dlq?queue=monitor_tasks")
    check_error(st, b, 400, "validation_failed", "DELETE bad queue")
    g.check("queue" in b["error"].get("fields", {}), "purge fields.queue: %r" % b)
    for body, field in (({"queue": "monitor_tasks"}, "queue"), ({}, "queue"),
                        ({"queue": "monitor_tasks_dead", "limit": 0}, "limit"),
                        ({"queue": "monitor_tasks_dead", "limit": 10001}, "limit"),
                        ({"queue": "monitor_tasks_dead", "limit": "2"}, "limit"),
                        ({"queue": "monitor_tasks_dead", "x": 1}, "x")):
        st, _, b = adm.req("POST", "/admin/dlq/replay", body=body)
        check_error(st, b, 400, "validation_failed", "replay %r" % body)
        g.check(field in b["error"].get("fields", {}), "replay %r fields: %r" % (body, b))
    st, _, b = adm.req("GET", "/admin/dlq?queue=monitor_tasks_dead&limit=101")
    check_error(st, b, 400, "validation_failed", "list limit 101")
    g.check(counts(adm)["monitor_tasks"]["messages"] == 2, "bad requests changed the queues")


def test_users(adm, u):
    me = u.ok("GET", "/auth/me")
    for i in range(3):
        u.ok("POST", "/monitors", {"name": "admin-users-%d" % i, "type": "tcp",
                                   "host": "127.0.0.1", "port": 9, "interval_seconds": 60},
             want=201)
    b = adm.ok("GET", "/admin/users")
    g.check(b["next_cursor"] is None, "one page expected: %r" % b)
    by = {x["email"]: x for x in b["items"]}
    g.check(set(by) == {"admin-test-user@example.test", "admin-test-admin@example.test"},
            "users: %r" % b)
    x = by["admin-test-user@example.test"]
    g.check(x["id"] == me["id"] and x["role"] == "user" and x["monitors"] == 3,
            "user row: %r" % x)
    g.check(by["admin-test-admin@example.test"]["role"] == "admin" and
            by["admin-test-admin@example.test"]["monitors"] == 0, "admin row: %r" % by)
    # pages of one: the same two users, in created_at order, each once
    seen, cur = [], None
    for _ in range(4):
        b = adm.ok("GET", "/admin/users?limit=1" + ("&cursor=" + cur if cur else ""))
        seen += [x["id"] for x in b["items"]]
        cur = b["next_cursor"]
        if cur is None:
            break
    g.check(seen == [x["id"] for x in adm.ok("GET", "/admin/users")["items"]],
            "paging gave %r" % seen)
    st, _, b = adm.req("GET", "/admin/users?cursor=garbage!!")
    g.check(st == 400, "bad cursor: %d %r" % (st, b))
    st, _, b = adm.req("GET", "/admin/users?limit=201")
    check_error(st, b, 400, "validation_failed", "users limit 201")


def test_role_rechecked(gw, adm, u):
    """The token's role claim is not enough: the database's role decides."""
    now = int(time.time())
    me = u.ok("GET", "/auth/me")

    def b64u(x):
        return base64.urlsafe_b64encode(x).rstrip(b"=").decode()

    head = b64u(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64u(json.dumps(
        {"sub": me["id"], "email": me["email"], "role": "admin", "iat": now,
         "exp": now + 600, "iss": "upmon"}).encode())
    sig = b64u(hmac.new(g.Gateway.SECRET.encode(), head.encode(), hashlib.sha256).digest())
    forged = gw.client(head + "." + sig)
    st, _, b = forged.req("GET", "/auth/me")
    g.check(st == 200, "forged admin token of a user is not a valid token: %d %r" % (st, b))
    st, _, b = forged.req("GET", "/admin/users")
    check_error(st, b, 404, "not_found", "role admin in the token, user in the database")
    g.psql("UPDATE users SET role = 'user' WHERE email = 'admin-test-admin@example.test'")
    st, _, b = adm.req("GET", "/admin/queues")
    check_error(st, b, 404, "not_found", "admin demoted after the token was issued")


def main():
    g.migrate()
    gw = g.Gateway.start()
    ok = False
    try:
        u = test_not_admin(gw)
        adm = user(gw, "admin-test-admin@example.test", admin=True)
        test_queues(adm)
        test_dlq(adm)
        test_users(adm, u)
        test_role_rechecked(gw, adm, u)
        ok = True
    finally:
        rc = gw.stop()
    g.check(ok and rc == 0, "upmon-gateway exited with %d" % rc)
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())

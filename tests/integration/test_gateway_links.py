#!/usr/bin/env python3
"""Which channels a monitor notifies: GET/PUT /monitors/{id}/channels of upmon-gateway. Set,
replace, clear; the answer lists the channel objects as GET /channels does, ordered by name;
validation (unknown fields, not an array, more than 32, invalid and duplicate uuids, missing
and another tenant's channels: 400 naming channel_ids); another tenant's or a missing monitor
is 404; concurrent replacements never mix two sets; deleting a channel or the monitor
removes the links (monitor_channels rows)."""
import threading
import uuid

import upmon_gw as g
from upmon_gw import check

PW = "correct horse battery"


def fields(c, method, path, body):
    st, _, b = c.req(method, path, body=body)
    check(st == 400 and b["error"]["code"] == "validation_failed",
          "%s %s %r: %d %r" % (method, path, body, st, b))
    return b["error"]["fields"]


def monitor(c, name):
    return c.ok("POST", "/monitors", {"name": name, "type": "http",
                                      "url": "http://127.0.0.1:9/", "interval_seconds": 60},
                want=201)


def channel(c, name, kind="email"):
    cfg = {"to": ["ops@example.test"]} if kind == "email" else \
        {"url": "http://127.0.0.1:9/hook"}
    return c.ok("POST", "/channels", {"name": name, "kind": kind, "config": cfg}, want=201)


def links_rows(mid):
    return sorted(r[0] for r in g.psql(
        "SELECT channel_id FROM monitor_channels WHERE monitor_id = :'v1'", mid))


def main():
    g.migrate()
    gw = g.Gateway.start()
    try:
        a = gw.client()
        owner = a.register("links-a@example.test", PW)["user"]["id"]
        a.login("links-a@example.test", PW)
        b = gw.client()
        b.register("links-b@example.test", PW)
        b.login("links-b@example.test", PW)

        m = monitor(a, "links m1")
        m2 = monitor(a, "links m2")
        cz = channel(a, "zulu")
        ca = channel(a, "alpha", "webhook")
        cm = channel(a, "mike")
        bm = monitor(b, "links b")
        bc = channel(b, "b chan")
        path = "/monitors/%s/channels" % m["id"]

        # empty at first
        check(a.ok("GET", path) == {"items": []}, "fresh monitor has links")

        # set: answer = channel objects (exactly as GET /channels/{id}) ordered by name
        got = a.ok("PUT", path, {"channel_ids": [cz["id"], ca["id"]]})
        want = [a.ok("GET", "/channels/" + ca["id"]), a.ok("GET", "/channels/" + cz["id"])]
        check(got == {"items": want}, "PUT answer %r, want %r" % (got, want))
        check(a.ok("GET", path) == got, "GET after PUT differs")
        check(links_rows(m["id"]) == sorted([cz["id"], ca["id"]]), "rows after set")
        check(g.psql("SELECT DISTINCT owner_id FROM monitor_channels")[0][0] == owner,
              "owner_id of the links")
        check(a.ok("GET", "/monitors/%s/channels" % m2["id"]) == {"items": []},
              "another monitor sees the links")

        # replace (upper-case uuid accepted and normalised)
        got = a.ok("PUT", path, {"channel_ids": [cm["id"].upper(), ca["id"]]})
        check([x["id"] for x in got["items"]] == [ca["id"], cm["id"]],
              "replace: %r" % got)
        check(links_rows(m["id"]) == sorted([cm["id"], ca["id"]]), "rows after replace")

        # validation: nothing changes
        bad = [
            ({}, "channel_ids"),
            ({"channel_ids": None}, "channel_ids"),
            ({"channel_ids": cz["id"]}, "channel_ids"),
            ({"channel_ids": [cz["id"]], "x": 1}, "x"),
            ({"channel_ids": ["nope"]}, "channel_ids[0]"),
            ({"channel_ids": [cz["id"], 5]}, "channel_ids[1]"),
            ({"channel_ids": [cz["id"], cz["id"]]}, "channel_ids[1]"),
            ({"channel_ids": [cz["id"], cz["id"].upper()]}, "channel_ids[1]"),
            ({"channel_ids": [str(uuid.uuid4()) for _ in range(33)]}, "channel_ids"),
        ]
        for body, field in bad:
            f = fields(a, "PUT", path, body)
            check(field in f, "%r: fields %r lack %s" % (body, f, field))
        missing = str(uuid.uuid4())
        f = fields(a, "PUT", path, {"channel_ids": [cz["id"], missing]})
        check(f == {"channel_ids": "unknown channel " + missing}, "missing channel: %r" % f)
        f = fields(a, "PUT", path, {"channel_ids": [bc["id"]]})
        check(f == {"channel_ids": "unknown channel " + bc["id"]},
              "other tenant's channel: %r" % f)
        check(links_rows(m["id"]) == sorted([cm["id"], ca["id"]]),
              "a refused PUT changed the links")
        st, _, _ = a.req("PUT", path, raw="[1]")
        check(st == 400, "array body: %d" % st)

        # 32 is the limit: 32 distinct channels are accepted
        many = [channel(a, "many %02d" % i)["id"] for i in range(32)]
        got = a.ok("PUT", "/monitors/%s/channels" % m2["id"], {"channel_ids": many})
        check(len(got["items"]) == 32, "32 links: %d" % len(got["items"]))
        check(a.ok("PUT", "/monitors/%s/channels" % m2["id"], {"channel_ids": []}) ==
              {"items": []}, "clear m2")

        # another tenant's or a missing monitor: 404 for GET and PUT
        for c, p in ((b, path), (a, "/monitors/%s/channels" % bm["id"]),
                     (a, "/monitors/%s/channels" % str(uuid.uuid4()))):
            st, _, body = c.req("GET", p)
            check(st == 404 and body["error"]["code"] == "not_found", "GET %s: %d" % (p, st))
            st, _, body = c.req("PUT", p, body={"channel_ids": []})
            check(st == 404 and body["error"]["code"] == "not_found", "PUT %s: %d" % (p, st))
        check(links_rows(m["id"]) == sorted([cm["id"], ca["id"]]),
              "b's PUT changed a's links")
        check(links_rows(bm["id"]) == [], "a linked b's monitor")
        st, _, _ = a.req("GET", path, token="")
        check(st == 401, "no token: %d" % st)
        st, _, _ = a.req("GET", path + "?x=1")
        check(st == 400, "unknown query parameter: %d" % st)

        # deleting a channel removes its link
        a.ok("DELETE", "/channels/" + cm["id"], want=204)
        check([x["id"] for x in a.ok("GET", path)["items"]] == [ca["id"]],
              "link of a deleted channel")
        check(links_rows(m["id"]) == [ca["id"]], "rows after channel delete")

        # concurrent replacements of one monitor's set: each PUT applies whole, so the
        # final set is exactly one of the sets sent, never a mixture
        sets = [[cz["id"], ca["id"]], [ca["id"]] + many[:5], many[5:9]]
        errors = []

        def putter(k):
            c = gw.client(a.token)
            for i in range(8):
                st, _, body = c.req("PUT", path, body={"channel_ids": sets[(k + i) % 3]})
                if st != 200:
                    errors.append((st, body))

        ts = [threading.Thread(target=putter, args=(k,)) for k in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        check(not errors, "concurrent PUTs: %r" % errors[:3])
        final = links_rows(m["id"])
        check(final in [sorted(x) for x in sets], "mixed set after concurrent PUTs: %r" % final)

        # clear
        check(a.ok("PUT", path, {"channel_ids": []}) == {"items": []}, "clear")
        check(links_rows(m["id"]) == [], "rows after clear")

        # deleting the monitor removes its links
        a.ok("PUT", path, {"channel_ids": [cz["id"], ca["id"]]})
        a.ok("DELETE", "/monitors/" + m["id"], want=204)
        check(links_rows(m["id"]) == [], "links of a deleted monitor")
        st, _, _ = a.req("GET", path)
        check(st == 404, "links of a deleted monitor: %d" % st)
    finally:
        rc = gw.stop()
    # a sanitizer report or a crash at shutdown fails the test
    check(rc == 0, "upmon-gateway exited with %d" % rc)
    print("ok")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The whole flow through the API with the real pipeline: register, log in, create two
monitors through the gateway (one answering 200, one answering 500 with no confirmation
re-probe), and let the real upmon-scheduler and upmon-probe check them against
upmon-test-target. Within 40 s the API's status says up / down; the history has rows with
timings; the 24 h summary has uptime 100 and 0 with a p50; the bad monitor has one ongoing
incident and its DOWN alert is in the alerts list."""
import os
import shutil
import subprocess
import tempfile
import time

import upmon_gw as g
from upmon_gw import check, fail

PW = "correct horse battery"


def start(argv, env, log):
    return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_status(c, mid, want, deadline):
    last = None
    while time.time() < deadline:
        st, _, b = c.req("GET", "/monitors/%s/status" % mid)
        check(st == 200, "status: %d %r" % (st, b))
        last = b
        if b["status"] == want:
            return b
        time.sleep(0.5)
    fail("monitor %s not %s in time; last status %r" % (mid, want, last))


def main():
    g.migrate()
    work = tempfile.mkdtemp(prefix="upmon-flow-")
    procs, logs = [], []
    gw = None
    ok = False
    try:
        env = dict(os.environ)
        env.update({"UPMON_ADMIN_PORT": "0", "UPMON_PROBE_SSRF_ALLOW": "127.0.0.0/8",
                    "UPMON_RETRY_BASE_MS": "500", "UPMON_RETRY_MAX_MS": "2000"})
        portfile = os.path.join(work, "target.port")
        for name, argv in (("target", [os.path.join(g.BIN, "upmon-test-target"), "--listen",
                                       "127.0.0.1:0", "--port-file", portfile]),
                           ("scheduler", [os.path.join(g.BIN, "upmon-scheduler")]),
                           ("probe", [os.path.join(g.BIN, "upmon-probe")])):
            log = open(os.path.join(work, name + ".log"), "w")
            logs.append((name, log.name))
            procs.append(start(argv, env, log))
        for _ in range(100):
            if os.path.exists(portfile) and os.path.getsize(portfile) > 0:
                break
            time.sleep(0.1)
        with open(portfile) as f:
            tport = int(f.readline().split()[1])
        target = "http://127.0.0.1:%d" % tport
        gw = g.Gateway.start()
        c = gw.client()
        c.register("flow-a@example.test", PW)
        c.login("flow-a@example.test", PW)
        good = c.ok("POST", "/monitors", {"name": "good", "type": "http",
                                          "url": target + "/ok", "interval_seconds": 10},
                    want=201)
        bad = c.ok("POST", "/monitors", {"name": "bad", "type": "http",
                                         "url": target + "/status/500",
                                         "interval_seconds": 10, "retries": 0}, want=201)
        t0 = time.time()
        deadline = t0 + 40
        sg = wait_status(c, good["id"], "up", deadline)
        sb = wait_status(c, bad["id"], "down", deadline)
        print("up after %.1f s, down after %.1f s" % (time.time() - t0, time.time() - t0))
        check(sg["ok"] is True and sg["status_code"] == 200 and sg["latency_ms"] is not None
              and sg["checked_at"] is not None, "good status: %r" % sg)
        check(sb["ok"] is False and sb["status_code"] == 500 and sb["error"],
              "bad status: %r" % sb)

        h = c.ok("GET", "/monitors/%s/checks" % good["id"])
        check(len(h["items"]) >= 1, "no history: %r" % h)
        it = h["items"][0]
        check(it["ok"] is True and it["final"] is True and it["attempt"] == 1 and
              it["status_code"] == 200 and it["timings"]["total_ms"] is not None and
              it["timings"]["connect_ms"] is not None and it["probe_host"],
              "history item: %r" % it)
        hb = c.ok("GET", "/monitors/%s/checks" % bad["id"])
        check(len(hb["items"]) >= 1 and hb["items"][0]["ok"] is False and
              hb["items"][0]["status_code"] == 500, "bad history: %r" % hb)

        sg = c.ok("GET", "/monitors/%s/summary?window=24h" % good["id"])
        check(sg["checks"] >= 1 and sg["failures"] == 0 and sg["uptime_pct"] == 100 and
              sg["p50_ms"] is not None and sg["avg_ms"] is not None and
              sg["incidents"] == 0, "good summary: %r" % sg)
        sb = c.ok("GET", "/monitors/%s/summary?window=24h" % bad["id"])
        check(sb["checks"] >= 1 and sb["failures"] == sb["checks"] and
              sb["uptime_pct"] == 0 and sb["incidents"] == 1, "bad summary: %r" % sb)

        inc = c.ok("GET", "/monitors/%s/incidents" % bad["id"])
        check(len(inc["items"]) == 1 and inc["items"][0]["ongoing"] is True and
              inc["items"][0]["resolved_at"] is None, "incidents: %r" % inc)
        check(c.ok("GET", "/monitors/%s/incidents" % good["id"])["items"] == [],
              "good monitor has incidents")
        al = c.ok("GET", "/alerts?monitor_id=%s" % bad["id"])
        downs = [a for a in al["items"] if a["kind"] == "down"]
        check(len(downs) == 1 and downs[0]["id"] == inc["items"][0]["id"] and
              downs[0]["monitor_id"] == bad["id"], "alerts: %r" % al)

        # a change through the API reaches the scheduler (the monitors trigger NOTIFYs it):
        # after a pause no slot of the good monitor is scheduled any more; after a PATCH and
        # a resume its checks come back
        c.ok("POST", "/monitors/%s/pause" % good["id"])
        paused_at = int(time.time() * 1000)
        time.sleep(12)
        late = g.psql("SELECT count(*) FROM check_results WHERE monitor_id = :'v1' AND "
                      "scheduled_at > upmon_ms_to_ts(:'v2'::bigint + 1000)",
                      good["id"], paused_at)[0][0]
        check(late == "0", "%s checks scheduled after the pause" % late)
        c.ok("PATCH", "/monitors/%s" % good["id"], {"interval_seconds": 11})
        c.ok("POST", "/monitors/%s/resume" % good["id"])
        deadline = time.time() + 30
        while True:
            rows = g.psql("SELECT upmon_ts_to_ms(scheduled_at) FROM check_results WHERE "
                          "monitor_id = :'v1' AND scheduled_at > upmon_ms_to_ts(:'v2')",
                          good["id"], paused_at)
            if rows:
                break
            check(time.time() < deadline, "no check within 30 s of resume")
            time.sleep(0.5)
        ok = True
        print("ok")
    finally:
        if gw is not None:
            gw.stop()
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if not ok:
            for name, path in logs:
                with open(path, errors="replace") as f:
                    tail = f.readlines()[-15:]
                print("--- %s log tail ---\n%s" % (name, "".join(tail)), flush=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Test helpers for upmon-gateway integration tests (Python 3 standard library only).

Run under tests/support/with-stack, which exports UPMON_* for a fresh vhost and database.

    import upmon_gw as g
    g.migrate()
    gw = g.Gateway.start()            # runs $UPMON_BIN_DIR/upmon-gateway on a free port
    try:
        c = gw.client()
        c.register("a@example.test", "correct horse battery")
        c.login("a@example.test", "correct horse battery")   # keeps the token
        st, hdrs, body = c.req("GET", "/monitors")           # body: parsed JSON or text
    finally:
        gw.stop()                     # SIGTERM, waits, prints the log tail on failure

The gateway gets a fixed 32+ byte secret (Gateway.SECRET) so tests can forge tokens.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

BIN = os.environ.get("UPMON_BIN_DIR", "")
SRC = os.environ.get("UPMON_SOURCE_DIR", "")


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr, flush=True)
    raise SystemExit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def migrate():
    subprocess.run([os.path.join(BIN, "upmonctl"), "migrate"], check=True,
                   stdout=subprocess.DEVNULL)


def psql(sql, *args):
    """Runs one SQL statement on the test database (psql variables :'v1'.. for args);
    returns stdout rows as lists of strings (unaligned, tab-separated)."""
    cmd = ["psql", "-X", "-q", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1",
           os.environ["UPMON_PG_URL"]]
    for i, a in enumerate(args, 1):
        cmd += ["-v", "v%d=%s" % (i, a)]
    out = subprocess.run(cmd, input=sql, capture_output=True, text=True)
    if out.returncode != 0:
        fail("psql: " + out.stderr.strip())
    return [line.split("\t") for line in out.stdout.splitlines() if line != ""]


class Client:
    def __init__(self, base, token=None):
        self.base = base
        self.token = token

    def req(self, method, path, body=None, raw=None, headers=None, token=None, prefix=True,
            timeout=30):
        """One request; returns (status, headers dict with lowercase names, body) where body
        is the parsed JSON when the answer is JSON, else the text (or "")."""
        url = self.base + ("/api/v1" if prefix else "") + path
        data = None
        hdrs = {}
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        if raw is not None:
            data = raw if isinstance(raw, bytes) else raw.encode()
            hdrs.setdefault("Content-Type", "application/json")
        tok = token if token is not None else self.token
        if tok:
            hdrs["Authorization"] = "Bearer " + tok
        for k, v in (headers or {}).items():
            if v is None:
                hdrs.pop(k, None)
            else:
                hdrs[k] = v
        rq = urllib.request.Request(url, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(rq, timeout=timeout) as resp:
                status, rh, payload = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            status, rh, payload = e.code, e.headers, e.read()
        h = {k.lower(): v for k, v in rh.items()}
        text = payload.decode("utf-8", "replace")
        if "json" in h.get("content-type", "") and text:
            try:
                return status, h, json.loads(text)
            except ValueError:
                fail("%s %s: invalid JSON answer %r" % (method, path, text[:200]))
        return status, h, text

    def ok(self, method, path, body=None, want=200, **kw):
        """req() that fails the test unless the status is want; returns the body."""
        st, _, b = self.req(method, path, body=body, **kw)
        check(st == want, "%s %s: status %d, want %d: %r" % (method, path, st, want, b))
        return b

    def register(self, email, password):
        return self.ok("POST", "/auth/register", {"email": email, "password": password},
                       want=201)

    def login(self, email, password):
        b = self.ok("POST", "/auth/login", {"email": email, "password": password})
        self.token = b["token"]
        return b


class Gateway:
    SECRET = "upmon-test-secret-0123456789-abcdefghij"

    def __init__(self, proc, port, admin_port, log):
        self.proc, self.port, self.admin_port, self.log = proc, port, admin_port, log
        self.url = "http://127.0.0.1:%d" % port

    @classmethod
    def start(cls, env=None, timeout=30):
        port, admin_port = free_port(), free_port()
        e = dict(os.environ)
        e.update({"UPMON_GATEWAY_ADDR": "127.0.0.1", "UPMON_GATEWAY_PORT": str(port),
                  "UPMON_ADMIN_PORT": str(admin_port),
                  "UPMON_GATEWAY_JWT_SECRET": cls.SECRET,
                  # The per-IP counters live in the Redis every test shares, and every test
                  # comes from 127.0.0.1: high limits unless a test sets its own.
                  "UPMON_GATEWAY_RATE_IP_PER_MIN": "1000000",
                  "UPMON_GATEWAY_RATE_AUTH_IP_PER_MIN": "100000"})
        e.update(env or {})
        log = tempfile.NamedTemporaryFile(prefix="upmon-gw-", suffix=".log", delete=False)
        proc = subprocess.Popen([os.path.join(BIN, "upmon-gateway")], env=e, stdout=log,
                                stderr=subprocess.STDOUT)
        gw = cls(proc, port, admin_port, log.name)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if proc.poll() is not None:
                gw.dump()
                fail("upmon-gateway exited with %d at start" % proc.returncode)
            try:
                with urllib.request.urlopen(gw.url + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        return gw
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        gw.dump()
        gw.stop()
        fail("upmon-gateway not ready within %d s" % timeout)

    def client(self, token=None):
        return Client(self.url, token)

    def dump(self, lines=40):
        try:
            with open(self.log, errors="replace") as f:
                tail = f.readlines()[-lines:]
            sys.stderr.write("--- gateway log tail ---\n" + "".join(tail))
        except OSError:
            pass

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.dump()
                fail("upmon-gateway did not exit within 15 s of SIGTERM")
        rc = self.proc.returncode
        os.unlink(self.log) if rc == 0 else self.dump()
        return rc

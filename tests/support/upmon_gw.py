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


# ---------------------------------------------------------------------------------------
# Whole-system helpers (tests/e2e/test_alerting_*.py): the real services, a target whose
# health the test switches, a webhook receiver, the SMTP sink's mail and the broker's queues.

class Service:
    """One upmon daemon ($UPMON_BIN_DIR/upmon-NAME) with its own admin port and log file.

        svc = Service("mailer", {"UPMON_SMTP_TLS": "none"}, workdir).start()
        svc.kill()        # SIGKILL, no grace
        svc.start()       # again, same environment and admin port, log appended
        svc.stop()        # SIGTERM, waits
    """

    def __init__(self, name, env, workdir):
        self.name = name
        self.admin_port = free_port()
        self.env = dict(os.environ)
        self.env.update({"UPMON_ADMIN_ADDR": "127.0.0.1",
                         "UPMON_ADMIN_PORT": str(self.admin_port)})
        self.env.update(env or {})
        self.log = os.path.join(workdir, name + ".log")
        self.proc = None

    def start(self, timeout=30, wait_ready=True):
        logf = open(self.log, "a")
        logf.write("---- start %s\n" % time.strftime("%H:%M:%S"))
        logf.flush()
        self.proc = subprocess.Popen([os.path.join(BIN, "upmon-" + self.name)], env=self.env,
                                     stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        if not wait_ready:
            return self
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.dump()
                fail("upmon-%s exited with %d at start" % (self.name, self.proc.returncode))
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % self.admin_port,
                                            timeout=2) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        self.dump()
        fail("upmon-%s not ready within %d s" % (self.name, timeout))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.running():
            self.proc.kill()
            self.proc.wait()

    def stop(self, timeout=15):
        if self.running():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def dump(self, lines=25):
        try:
            with open(self.log, errors="replace") as f:
                tail = f.readlines()[-lines:]
            sys.stderr.write("--- %s log tail ---\n%s" % (self.name, "".join(tail)))
        except OSError:
            pass


class _Recorder:
    """Base of the in-process HTTP servers below (a ThreadingHTTPServer on 127.0.0.1:0)."""

    def __init__(self):
        import http.server
        import threading
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *a):
                pass

            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n > 0 else b""
                code, payload = outer.answer(self.command, self.path,
                                             {k.lower(): v for k, v in self.headers.items()},
                                             body)
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_HEAD = do_PUT = _any

        self.lock = threading.Lock()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Target(_Recorder):
    """A check target whose health the test switches: every path answers 200 "ok" while
    up, 503 while down. set_up(False) takes every path down, set_up(False, "/a") only /a;
    both return the moment (time.time()) of the switch."""

    def __init__(self):
        self.up = True
        self.down_paths = set()
        super().__init__()

    def answer(self, method, path, headers, body):
        with self.lock:
            up = self.up and path not in self.down_paths
        return (200, b"ok\n") if up else (503, b"down\n")

    def set_up(self, up, path=None):
        with self.lock:
            if path is None:
                self.up = up
            elif up:
                self.down_paths.discard(path)
            else:
                self.down_paths.add(path)
            return time.time()


class WebhookSink(_Recorder):
    """Records every request ({"t", "path", "headers", "body" (bytes)}); answers 200."""

    def __init__(self):
        self.requests = []
        super().__init__()

    def answer(self, method, path, headers, body):
        with self.lock:
            self.requests.append({"t": time.time(), "method": method, "path": path,
                                  "headers": headers, "body": body})
        return 200, b"ok\n"

    def received(self, path=None):
        with self.lock:
            return [r for r in self.requests if path is None or r["path"] == path]


def webhook_signature_ok(secret, headers, body):
    """True when X-Upmon-Signature is sha256=HMAC-SHA256(secret, "<X-Upmon-Timestamp>.<body>")
    (proto/webhook.schema.json), compared in constant time."""
    import hashlib
    import hmac
    ts = headers.get("x-upmon-timestamp", "")
    sig = headers.get("x-upmon-signature", "")
    want = "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + body,
                                hashlib.sha256).hexdigest()
    return ts != "" and hmac.compare_digest(sig, want)


def mails_to(addr):
    """The SMTP sink's stored messages with addr among the envelope recipients, oldest first:
    a list of (path, email.message.EmailMessage) (the X-Upmon-Envelope-* lines the sink puts
    first parse as headers)."""
    import email
    import email.policy
    d = os.environ["UPMON_MAIL_DIR"]
    out = []
    try:
        names = sorted(n for n in os.listdir(d) if n.endswith(".eml"))
    except FileNotFoundError:
        return out
    for n in names:
        p = os.path.join(d, n)
        try:
            with open(p, "rb") as f:
                data = f.read()
        except OSError:
            continue
        head = data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].lower()
        want = addr.lower().encode()
        if (b"x-upmon-envelope-to: <" + want + b">" not in head and
                b"x-upmon-envelope-to: " + want + b"\r" not in head):
            continue
        out.append((p, email.message_from_bytes(data, policy=email.policy.default)))
    return out


def envelope_to(msg):
    """The envelope recipients the SMTP sink recorded for msg, without angle brackets."""
    return [str(v).strip().strip("<>") for v in (msg.get_all("X-Upmon-Envelope-To") or [])]


def mail_parts(msg):
    """(text/plain, text/html) bodies of a message, decoded ("" when missing)."""
    text = html = ""
    for part in msg.walk():
        ct = part.get_content_type()
        if ct == "text/plain" and not text:
            text = part.get_content()
        elif ct == "text/html" and not html:
            html = part.get_content()
    return text, html


def mgmt(method, path, body=None):
    """One RabbitMQ management API call (UPMON_RABBITMQ_MGMT_URL); returns the parsed JSON."""
    import base64
    import urllib.parse
    u = urllib.parse.urlsplit(os.environ["UPMON_RABBITMQ_MGMT_URL"])
    base = "%s://%s:%d" % (u.scheme, u.hostname, u.port)
    auth = base64.b64encode(("%s:%s" % (urllib.parse.unquote(u.username or ""),
                                        urllib.parse.unquote(u.password or ""))).encode())
    rq = urllib.request.Request(base + path, method=method,
                                data=None if body is None else json.dumps(body).encode(),
                                headers={"Content-Type": "application/json",
                                         "Authorization": "Basic " + auth.decode()})
    with urllib.request.urlopen(rq, timeout=30) as r:
        return json.loads(r.read().decode() or "null")


def vhost_path():
    import urllib.parse
    return urllib.parse.quote(os.environ["UPMON_RABBITMQ_VHOST"], safe="")


def queue_counts(prefix=""):
    """{queue name: messages} of the test's vhost for queues whose name starts with prefix."""
    qs = mgmt("GET", "/api/queues/%s?columns=name,messages,messages_ready,"
              "messages_unacknowledged" % vhost_path())
    return {q["name"]: (q.get("messages_ready") or 0) + (q.get("messages_unacknowledged") or 0)
            for q in qs if q["name"].startswith(prefix)}


def publish_event(routing_key, payload, message_id):
    """Publishes one persistent JSON message to exchange upmon.events; fails unless routed."""
    r = mgmt("POST", "/api/exchanges/%s/upmon.events/publish" % vhost_path(), {
        "routing_key": routing_key, "payload_encoding": "string",
        "payload": json.dumps(payload),
        "properties": {"message_id": message_id, "delivery_mode": 2,
                       "content_type": "application/json"}})
    check(r.get("routed") is True, "publish %s not routed: %r" % (message_id, r))


def wait_for(fn, timeout, what, step=0.2, on_fail=None):
    """Calls fn until it returns something true; returns it, or fails after timeout s (after
    calling on_fail, e.g. to print a log)."""
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.time() >= deadline:
            if on_fail is not None:
                on_fail()
            fail("%s: not within %.0f s" % (what, timeout))
        time.sleep(step)


def p4_bound(interval_s, retries, retry_base_ms, retry_max_ms):
    """Target P4 (docs/benchmarks.md): one interval + the confirmation re-probes' backoff (the
    TTLs of monitor_tasks.retry.1..retries) + 2 s, in seconds."""
    backoff = sum(min(retry_base_ms * 2 ** (n - 1), retry_max_ms) for n in range(1, retries + 1))
    return interval_s + backoff / 1000.0 + 2.0


def sink_stamp(path):
    """When the SMTP sink stored a message: the UTC time in its file name
    (<YYYYmmddTHHMMSS>.<usec>Z-<seq>.eml), as a Unix time."""
    import calendar
    base = os.path.basename(path)
    stamp, usec = base.split("Z-", 1)[0].split(".", 1)
    return calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%S")) + int(usec) / 1e6


class AlertStack:
    """The whole alerting pipeline on the test's stack: upmon-scheduler, upmon-probe,
    upmon-mailer (plain SMTP to the stack's sink, webhooks allowed to 127.0.0.1) and
    upmon-gateway, plus a Target and a WebhookSink in this process.

        st = AlertStack("alert-a").start()
        try: ... st.c (a logged-in Client), st.uid, st.mailer.kill() ...
        finally: st.stop()
    Confirmation re-probes back off RETRY_BASE_MS, 2x, .. capped at RETRY_MAX_MS."""

    RETRY_BASE_MS = 1000
    RETRY_MAX_MS = 2000
    DASHBOARD = "http://dash.upmon.test:8080"

    def __init__(self, tag, mailer_env=None):
        import tempfile
        self.tag = tag
        self.work = tempfile.mkdtemp(prefix="upmon-e2e-%s-" % tag)
        self.target = Target()
        self.sink = WebhookSink()
        common = {"UPMON_RETRY_BASE_MS": str(self.RETRY_BASE_MS),
                  "UPMON_RETRY_MAX_MS": str(self.RETRY_MAX_MS)}
        self.scheduler = Service("scheduler", common, self.work)
        self.probe = Service("probe", dict(common, UPMON_PROBE_SSRF_ALLOW="127.0.0.0/8"),
                             self.work)
        menv = dict(common, UPMON_SMTP_TLS="none", UPMON_MAILER_SSRF_ALLOW="127.0.0.1/32",
                    UPMON_MAILER_DASHBOARD_URL=self.DASHBOARD)
        menv.update(mailer_env or {})
        self.mailer = Service("mailer", menv, self.work)
        self.services = [self.scheduler, self.probe, self.mailer]
        self.gw = None
        self.c = None
        self.uid = None
        self.ok = False

    def start(self):
        migrate()
        for s in self.services:
            s.start()
        self.gw = Gateway.start()
        self.c = self.gw.client()
        email = "%s-%d@example.test" % (self.tag, os.getpid())
        self.c.register(email, "correct horse battery")
        self.c.login(email, "correct horse battery")
        self.uid = self.c.ok("GET", "/auth/me")["id"]
        return self

    def addr(self, local):
        """A recipient unique to this run (the mail dir is shared by every test)."""
        return "%s-%s-%d@example.test" % (local, self.tag, os.getpid())

    def email_channel(self, to, name=None):
        return self.c.ok("POST", "/channels", {"name": name or "mail " + to, "kind": "email",
                                               "config": {"to": [to]}}, want=201)

    def webhook_channel(self, url, secret=None, name=None):
        body = {"name": name or "hook " + url, "kind": "webhook", "config": {"url": url}}
        if secret is not None:
            body["secret"] = secret
        return self.c.ok("POST", "/channels", body, want=201)

    def monitor(self, name, path="/health", interval=10, retries=1, **extra):
        body = {"name": name, "type": "http", "url": self.target.url + path,
                "interval_seconds": interval, "retries": retries, "timeout_ms": 2000}
        body.update(extra)
        return self.c.ok("POST", "/monitors", body, want=201)

    def link(self, monitor_id, channel_ids):
        b = self.c.ok("PUT", "/monitors/%s/channels" % monitor_id, {"channel_ids": channel_ids})
        check(sorted(x["id"] for x in b["items"]) == sorted(channel_ids),
              "linked channels: %r" % b)
        return b

    def wait_status(self, monitor_id, want, timeout):
        def get():
            st, _, b = self.c.req("GET", "/monitors/%s/status" % monitor_id)
            return b if st == 200 and b.get("status") == want else None
        return wait_for(get, timeout, "monitor %s %s" % (monitor_id, want))

    def stop(self):
        if self.gw is not None:
            self.gw.stop()
        for s in self.services:
            s.stop()
        self.target.close()
        self.sink.close()
        if not self.ok:
            for s in self.services:
                s.dump()
        else:
            import shutil
            shutil.rmtree(self.work, ignore_errors=True)

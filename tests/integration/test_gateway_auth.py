"""Gateway accounts and tokens: register (201, 409 duplicate in any case, 400 fields), login
(token, expires_at, the same 401 for a wrong password and an unknown email), /auth/me (and
401 once the user is deleted), forged tokens (expired, tampered, alg none, wrong secret,
HS512) refused, the per-account brute-force limit (failures only, checked before the
password, lifted when the window ends) and the per-IP limit of the auth routes."""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import time
import uuid
from datetime import datetime, timezone

import upmon_gw as g
from upmon_gw import check

RUN = uuid.uuid4().hex[:8]


def email(tag):
    return "auth-%s-%s@example.test" % (RUN, tag)


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(claims, secret=g.Gateway.SECRET, alg="HS256", header=None):
    h = header or {"alg": alg, "typ": "JWT"}
    signing = b64(json.dumps(h).encode()) + "." + b64(json.dumps(claims).encode())
    if alg == "none":
        return signing + "."
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[alg]
    sig = hmac.new(secret.encode(), signing.encode(), digest).digest()
    return signing + "." + b64(sig)


def redis_del(key):
    subprocess.run(["redis-cli", "-u", os.environ["UPMON_REDIS_URL"], "--no-auth-warning",
                    "DEL", key], check=True, stdout=subprocess.DEVNULL)


def parse_time(s):
    check(len(s) == 24 and s.endswith("Z"), "time %r is not RFC 3339 with ms" % s)
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def expect_error(st, body, status, code):
    check(st == status, "status %d, want %d: %r" % (st, status, body))
    check(isinstance(body, dict) and body.get("error", {}).get("code") == code,
          "error code, want %s: %r" % (code, body))


def test_register(c):
    a = email("a")
    b = c.register(a, "correct horse battery")
    u = b["user"]
    check(set(u) == {"id", "email", "role", "created_at"}, "user fields: %r" % u)
    check(u["email"] == a and u["role"] == "user", "user: %r" % u)
    check(len(u["id"]) == 36 and u["id"] == u["id"].lower(), "id: %r" % u["id"])
    age = (datetime.now(timezone.utc) - parse_time(u["created_at"])).total_seconds()
    check(abs(age) < 60, "created_at %r is not now" % u["created_at"])
    rows = g.psql("SELECT role, left(password_hash, 31) FROM users WHERE id = :'v1'", u["id"])
    check(rows == [["user", "$argon2id$v=19$m=19456,t=2,p=1$"]], "stored: %r" % rows)

    # duplicate, in another case
    st, _, body = c.req("POST", "/auth/register",
                        {"email": a.upper(), "password": "another password"})
    expect_error(st, body, 409, "conflict")
    check(body["error"].get("fields") == {"email": "is already registered"},
          "409 fields: %r" % body)

    bad = [
        ({"email": "no-at-sign.example.test", "password": "long enough"}, {"email"}),
        ({"email": "a b@example.test", "password": "long enough"}, {"email"}),
        ({"email": "@example.test", "password": "long enough"}, {"email"}),
        ({"email": "x" * 250 + "@e.st", "password": "long enough"}, {"email"}),
        ({"email": email("short"), "password": "1234567"}, {"password"}),
        ({"email": email("long"), "password": "x" * 1025}, {"password"}),
        ({"email": email("unknown"), "password": "long enough", "admin": True}, {"admin"}),
        ({"email": 5, "password": ["x"]}, {"email", "password"}),
        ({"password": "long enough"}, {"email"}),
    ]
    for req, fields in bad:
        st, _, body = c.req("POST", "/auth/register", req)
        expect_error(st, body, 400, "validation_failed")
        check(set(body["error"].get("fields", {})) == fields,
              "fields for %r: %r" % (req, body))
    check(body["error"]["fields"]["email"] == "is required", "missing email: %r" % body)
    st, _, body = c.req("POST", "/auth/register", {"email": email("unknown"),
                                                   "password": "long enough", "admin": True})
    check(body["error"]["fields"] == {"admin": "unknown field"}, "unknown: %r" % body)
    n = g.psql("SELECT count(*) FROM users WHERE email LIKE :'v1'", "auth-" + RUN + "-%")
    check(n == [["1"]], "only the one valid registration is stored: %r" % n)
    # 8 characters (not bytes) is enough: multibyte passwords count characters
    c.register(email("utf8"), "\u00e9" * 8)
    return u


def test_login(c, user):
    a = user["email"]
    b = c.login(a.upper(), "correct horse battery")
    check(set(b) == {"token", "token_type", "expires_at", "user"}, "login: %r" % b)
    check(b["token_type"] == "Bearer" and b["user"] == user, "login: %r" % b)
    left = (parse_time(b["expires_at"]) - datetime.now(timezone.utc)).total_seconds()
    check(3500 < left <= 3600, "expires_at %r is not ~1 h ahead" % b["expires_at"])
    st, _, me = c.req("GET", "/auth/me")
    check(st == 200 and me == user, "me: %d %r" % (st, me))

    st1, _, b1 = c.req("POST", "/auth/login", {"email": a, "password": "wrong horse battery"})
    st2, _, b2 = c.req("POST", "/auth/login",
                       {"email": email("nobody"), "password": "wrong horse battery"})
    expect_error(st1, b1, 401, "unauthorized")
    check(st2 == 401 and b1 == b2, "unknown email answers differently: %r vs %r" % (b1, b2))
    check(b1["error"]["message"] == "invalid email or password", "message: %r" % b1)
    st, _, body = c.req("POST", "/auth/login", {"email": a})
    expect_error(st, body, 400, "validation_failed")
    return b["token"]


def test_tokens(gw, c, user, token):
    now = int(time.time())
    good = {"iss": "upmon", "sub": user["id"], "email": user["email"], "role": "user",
            "iat": now, "exp": now + 600}
    # a token forged with the right secret works: the forgery below is a faithful one
    st, _, me = c.req("GET", "/auth/me", token=forge(good))
    check(st == 200 and me["id"] == user["id"], "forged good token: %d %r" % (st, me))

    cases = {
        "expired": forge(dict(good, exp=now - 5)),
        "no exp": forge({k: v for k, v in good.items() if k != "exp"}),
        "wrong secret": forge(good, secret="another-secret-0123456789-abcdefghij"),
        "alg none": forge(dict(good, role="admin"), alg="none"),
        "alg none + sig": forge(good, alg="none") + "c2ln",
        "HS512": forge(good, alg="HS512"),
        "wrong iss": forge(dict(good, iss="someone")),
        "bad sub": forge(dict(good, sub="1")),
        "bad role": forge(dict(good, role="root")),
        "garbage": "not.a.token",
        "over-long": forge(dict(good, pad="x" * 5000)),
    }
    parts = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    claims["role"] = "admin"
    cases["tampered payload"] = parts[0] + "." + b64(json.dumps(claims).encode()) + "." + parts[2]
    sig = parts[2]
    cases["tampered signature"] = parts[0] + "." + parts[1] + "." + (
        ("A" if sig[0] != "A" else "B") + sig[1:])
    for name, tok in cases.items():
        st, _, body = c.req("GET", "/auth/me", token=tok)
        check(st == 401, "%s token: status %d, want 401: %r" % (name, st, body))
        check(body["error"]["code"] == "unauthorized", "%s: %r" % (name, body))
        st, _, _ = c.req("GET", "/monitors", token=tok)
        check(st == 401, "%s token on /monitors: status %d" % (name, st))
    st, _, body = c.req("GET", "/auth/me", token="", headers={"Authorization": None})
    expect_error(st, body, 401, "unauthorized")
    st, _, body = c.req("GET", "/auth/me", headers={"Authorization": "Basic dXNlcjpwdw=="})
    expect_error(st, body, 401, "unauthorized")

    # a deleted account's token no longer answers /auth/me
    d = email("deleted")
    gw.client().register(d, "correct horse battery")
    dc = gw.client()
    dc.login(d, "correct horse battery")
    g.psql("DELETE FROM users WHERE email = :'v1'", d)
    st, _, body = dc.req("GET", "/auth/me")
    expect_error(st, body, 401, "unauthorized")


def test_brute_force(gw, c):
    a = email("brute")
    c.register(a, "correct horse battery")
    wrong = {"email": a, "password": "wrong horse battery"}
    right = {"email": a.upper(), "password": "correct horse battery"}
    # 4 failures, then successful logins do not count
    for i in range(4):
        st, _, body = c.req("POST", "/auth/login", wrong)
        check(st == 401, "failure %d: status %d %r" % (i + 1, st, body))
    for i in range(3):
        st, _, body = c.req("POST", "/auth/login", right)
        check(st == 200, "right password after 4 failures: %d %r" % (st, body))
    st, _, body = c.req("POST", "/auth/login", wrong)
    check(st == 401, "5th failure: status %d %r" % (st, body))
    # the 6th failed attempt is refused, and then the right password too
    st, h, body = c.req("POST", "/auth/login", wrong)
    expect_error(st, body, 429, "rate_limited")
    ra = int(h.get("retry-after", "0"))
    check(1 <= ra <= 6, "Retry-After %r, want 1..6" % h.get("retry-after"))
    st, h, body = c.req("POST", "/auth/login", right)
    expect_error(st, body, 429, "rate_limited")
    check("retry-after" in h, "no Retry-After on the locked right password")
    # another account is not affected
    other = email("brute-other")
    c.register(other, "correct horse battery")
    c.ok("POST", "/auth/login", {"email": other, "password": "correct horse battery"})
    # once the window has passed, the right password works again
    time.sleep(ra + 0.5)
    st, _, body = c.req("POST", "/auth/login", right)
    check(st == 200, "after the window: status %d %r" % (st, body))


def test_ip_limit():
    redis_del("upmon:rl:auth:127.0.0.1")
    gw = g.Gateway.start(env={"UPMON_GATEWAY_RATE_AUTH_IP_PER_MIN": "3"})
    try:
        c = gw.client()
        req = {"email": email("ip"), "password": "wrong horse battery"}
        for i in range(3):
            st, _, body = c.req("POST", "/auth/login", req)
            check(st == 401, "auth request %d within the IP limit: %d %r" % (i + 1, st, body))
        st, h, body = c.req("POST", "/auth/login", req)
        expect_error(st, body, 429, "rate_limited")
        check(1 <= int(h.get("retry-after", "0")) <= 60, "Retry-After: %r" % h)
        st, _, body = c.req("POST", "/auth/register", {"email": email("ip2"),
                                                       "password": "long enough"})
        expect_error(st, body, 429, "rate_limited")
    finally:
        gw.stop()
        redis_del("upmon:rl:auth:127.0.0.1")


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def asan(pid):
    with open("/proc/%d/maps" % pid) as f:
        return "libasan" in f.read()


def test_hash_memory():
    """argon2 takes 19 MiB per hash; glibc's dynamic mmap threshold used to leave such a
    block in the arena of every worker thread that ever hashed (found by api_fuzz: RSS
    107 -> 262 MB). 16 threads each registering and logging in must not keep 16 of them."""
    import threading
    gw = g.Gateway.start(env={"UPMON_GATEWAY_THREADS": "16",
                              "UPMON_GATEWAY_RATE_AUTH_IP_PER_MIN": "100000"})
    try:
        base = rss_mb(gw.proc.pid)
        errors = []

        def worker(i):
            import http.client as hc
            conn = hc.HTTPConnection("127.0.0.1", gw.port, timeout=30)
            try:
                for j in range(3):
                    e = "mem-%d-%d-%s@example.test" % (i, j, uuid.uuid4().hex[:6])
                    for path in ("/api/v1/auth/register", "/api/v1/auth/login"):
                        conn.request("POST", path, body=json.dumps(
                            {"email": e, "password": "correct horse battery"}),
                            headers={"Content-Type": "application/json"})
                        r = conn.getresponse()
                        r.read()
                        if r.status not in (200, 201):
                            errors.append("%s %d" % (path, r.status))
            finally:
                conn.close()

        ts = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        check(not errors, "register/login under load: %r" % errors[:5])
        grew = rss_mb(gw.proc.pid) - base
        san = asan(gw.proc.pid)
        print("hash memory: RSS grew %.1f MB after 96 hashes on 16 connections%s" % (
            grew, " (ASan allocator: no bound)" if san else ""))
        # ASan's allocator keeps freed blocks in its quarantine by design: the bound is
        # glibc's (the dev and release builds)
        check(san or grew < 80, "RSS grew by %.1f MB: argon2 blocks kept per thread" % grew)
    finally:
        rc = gw.stop()
    check(rc == 0, "gateway exit status %d" % rc)


def main():
    g.migrate()
    redis_del("upmon:rl:auth:127.0.0.1")
    gw = g.Gateway.start(env={"UPMON_GATEWAY_RATE_AUTH_IP_PER_MIN": "100000",
                              "UPMON_GATEWAY_RATE_LOGIN_ACCOUNT": "5",
                              "UPMON_GATEWAY_RATE_LOGIN_WINDOW_S": "6"})
    try:
        c = gw.client()
        user = test_register(c)
        token = test_login(c, user)
        test_tokens(gw, c, user, token)
        test_brute_force(gw, gw.client())
    finally:
        rc = gw.stop()
    check(rc == 0, "gateway exit status %d" % rc)
    test_ip_limit()
    test_hash_memory()
    print("PASS")


if __name__ == "__main__":
    main()

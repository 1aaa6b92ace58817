#!/usr/bin/env bash
# upmonctl user against a real PostgreSQL and gateway: create prints a generated password
# once (which logs in), a duplicate email in any case exits 1 with one line, --if-missing
# exits 0 and changes nothing, --admin gives role admin, passwords come from a file or stdin
# with the API's length rules, set-password replaces the password (old one refused, new one
# logs in) and unlocks the '!' placeholder of deploy/local's admin; bad usage exits 2.
set -euo pipefail
ctl=${UPMON_BIN_DIR:?}/upmonctl
gw=$UPMON_BIN_DIR/upmon-gateway
: "${UPMON_PG_URL:?}"
fail() {
  echo "FAIL: $*" >&2
  [[ -f ${log:-} ]] && tail -n 20 "$log" >&2
  exit 1
}
sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$UPMON_PG_URL" -c "$1"; }
tmp=$(mktemp -d)
gwpid=""
cleanup() {
  if [[ -n $gwpid ]]; then kill "$gwpid" 2>/dev/null || true; wait "$gwpid" 2>/dev/null || true; fi
  rm -rf -- "$tmp"
}
trap cleanup EXIT
run=$RANDOM$RANDOM
u1=ctl-$run-a@example.test

"$ctl" migrate >/dev/null

# the gateway, to prove the passwords log in
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
aport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$tmp/gw.log
UPMON_GATEWAY_ADDR=127.0.0.1 UPMON_GATEWAY_PORT=$port UPMON_ADMIN_PORT=$aport \
  UPMON_GATEWAY_JWT_SECRET=upmon-test-secret-0123456789-abcdefghij \
  UPMON_GATEWAY_RATE_AUTH_IP_PER_MIN=100000 UPMON_GATEWAY_RATE_IP_PER_MIN=1000000 \
  "$gw" >"$log" 2>&1 &
gwpid=$!
for _ in $(seq 100); do
  curl -fsS -m 2 "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS -m 2 "http://127.0.0.1:$port/readyz" >/dev/null || fail "gateway not ready"

login() { # email password -> prints the status code
  python3 -c 'import json,sys; print(json.dumps({"email": sys.argv[1], "password": sys.argv[2]}))' \
    "$1" "$2" >"$tmp/body"
  curl -s -o "$tmp/answer" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "@$tmp/body" "http://127.0.0.1:$port/api/v1/auth/login"
}

# create with a generated password, printed once
out=$("$ctl" user create --email "$u1") || fail "create failed: $out"
[[ $out == "created user $u1 ("*", role user)"* ]] || fail "create output: $out"
pw=$(sed -n 's/^password: //p' <<<"$out")
[[ $pw =~ ^[A-Za-z0-9]{20}$ ]] || fail "generated password: '$pw'"
[[ $(sql "SELECT role || ' ' || left(password_hash, 31) FROM users WHERE email = '$u1'") == \
   'user $argon2id$v=19$m=19456,t=2,p=1$' ]] || fail "stored user"
[[ $(login "$u1" "$pw") == 200 ]] || fail "login with the generated password: $(cat "$tmp/answer")"
python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); assert a["user"]["role"] == "user"' \
  "$tmp/answer" || fail "login answer: $(cat "$tmp/answer")"

# duplicate (any case): exit 1, one line, nothing changed
hash_before=$(sql "SELECT password_hash FROM users WHERE email = '$u1'")
set +e
err=$("$ctl" user create --email "${u1^^}" 2>&1 >/dev/null)
rc=$?
set -e
((rc == 1)) || fail "duplicate create exited $rc"
[[ $err == "upmonctl user create: user ${u1^^} already exists" ]] || fail "duplicate message: $err"
# --if-missing: exit 0, nothing changed
out=$("$ctl" user create --email "$u1" --if-missing) || fail "--if-missing on an existing user failed"
[[ $out == "user $u1 exists, unchanged" ]] || fail "--if-missing output: $out"
[[ $(sql "SELECT password_hash FROM users WHERE email = '$u1'") == "$hash_before" ]] ||
  fail "--if-missing changed the password"
[[ $(sql "SELECT count(*) FROM users WHERE lower(email) = lower('$u1')") == 1 ]] || fail "two rows"

# --admin with a password from stdin; --if-missing creates when missing
u2=ctl-$run-admin@example.test
out=$(printf 'admin password 1\n' | "$ctl" user create --email "$u2" --admin --password-stdin --if-missing) ||
  fail "admin create failed"
[[ $out == "created user $u2 ("*", role admin)" ]] || fail "admin create output (no password shown): $out"
[[ $(sql "SELECT role FROM users WHERE email = '$u2'") == admin ]] || fail "role not admin"
[[ $(login "$u2" "admin password 1") == 200 ]] || fail "admin login: $(cat "$tmp/answer")"
python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); assert a["user"]["role"] == "admin"' \
  "$tmp/answer" || fail "admin login answer: $(cat "$tmp/answer")"

# password rules: too short, empty stdin
set +e
err=$(printf 'short\n' | "$ctl" user create --email "ctl-$run-c@example.test" --password-stdin 2>&1)
rc=$?
set -e
((rc == 1)) && [[ $err == *"password"* ]] || fail "short password: rc $rc: $err"
[[ $(sql "SELECT count(*) FROM users WHERE email = 'ctl-$run-c@example.test'") == 0 ]] ||
  fail "a refused password created the user"

# set-password from a file: the old password stops working, the new one logs in
printf 'new password 42\r\n' >"$tmp/pw"
out=$("$ctl" user set-password --email "${u1^^}" --password-file "$tmp/pw") || fail "set-password failed"
[[ $out == "password set for ${u1^^}" ]] || fail "set-password output: $out"
[[ $(login "$u1" "$pw") == 401 ]] || fail "old password still logs in"
[[ $(login "$u1" "new password 42") == 200 ]] || fail "new password: $(cat "$tmp/answer")"

# set-password unlocks an account created with the '!' placeholder (deploy/local's admin)
u3=ctl-$run-locked@example.test
sql "INSERT INTO users (email, password_hash, role) VALUES ('$u3', '!', 'admin')"
[[ $(login "$u3" "anything at all") == 401 ]] || fail "'!' account logged in"
printf 'unlocked pw 7\n' | "$ctl" user set-password --email "$u3" --password-stdin >/dev/null ||
  fail "set-password on the placeholder account"
[[ $(login "$u3" "unlocked pw 7") == 200 ]] || fail "unlocked login: $(cat "$tmp/answer")"

# errors: unknown user exits 1; bad usage exits 2
set +e
printf 'whatever pw\n' | "$ctl" user set-password --email "nobody-$run@example.test" --password-stdin 2>/dev/null
rc=$?
"$ctl" user set-password --email "$u1" >/dev/null 2>&1; rc2=$?
"$ctl" user create >/dev/null 2>&1; rc3=$?
"$ctl" user frobnicate --email "$u1" >/dev/null 2>&1; rc4=$?
"$ctl" user create --email "$u1" --password-stdin --password-file "$tmp/pw" >/dev/null 2>&1; rc5=$?
"$ctl" user create --email "not-an-email" >/dev/null 2>&1; rc6=$?
set -e
((rc == 1)) || fail "set-password of an unknown user exited $rc"
((rc2 == 2 && rc3 == 2 && rc4 == 2 && rc5 == 2)) || fail "usage errors exited $rc2 $rc3 $rc4 $rc5"
((rc6 == 1)) || fail "a bad email exited $rc6"
echo PASS

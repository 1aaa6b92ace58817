#!/usr/bin/env bash
# deploy/local/up with the services: the scheduler, the probe, the gateway and the mailer
# start, become ready, and the stack's self-monitors (deploy/local/selfmon.sql) are checked and all come up,
# with their latest status in Redis; the admin account's password is printed once and saved
# in admin-credentials (mode 600), it logs in to the API, which lists the self-monitors and
# reports one up; up again changes nothing (not the password either); down leaves no process
# behind.
# Needs UPMON_SOURCE_DIR and UPMON_BIN_DIR (with the services), as ctest sets them.
set -euo pipefail

: "${UPMON_SOURCE_DIR:?UPMON_SOURCE_DIR must be set (ctest sets it)}"
: "${UPMON_BIN_DIR:?UPMON_BIN_DIR must be set (ctest sets it)}"
export UPMON_BIN_DIR
local_dir=$UPMON_SOURCE_DIR/deploy/local
for v in $(compgen -e); do
  if [[ $v == UPMON_LOCAL_*_PORT || $v == UPMON_PROBE_* || $v == UPMON_SCHEDULER_* ]]; then
    unset "$v"
  fi
done
export UPMON_LOCAL_SELFMON_INTERVAL=10
s=$(mktemp -d /tmp/upmon-e2e-p.XXXXXX)
chmod 755 "$s"
export UPMON_STATE_DIR=$s

fail() {
  echo "FAIL: $*" >&2
  tail -n 30 "$s"/log/scheduler.log "$s"/log/probe.log "$s"/log/gateway.log "$s"/log/mailer.log >&2 2>/dev/null || true
  exit 1
}
step() { echo "== $*"; }
cleanup() {
  "$local_dir/down" >/dev/null 2>&1 || true
  (source "$local_dir/lib.sh"; stack_resolve; ports_release) || true
  rm -rf -- "$s"
  rm -f -- "$s.up.log" "$s.up2.log"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

step "up with the services"
"$local_dir/up" --no-install --no-build >"$s.up.log" 2>&1 || { cat "$s.up.log" >&2; fail "up failed"; }
grep -q "self-monitors" "$s.up.log" || { cat "$s.up.log" >&2; fail "up did not create the self-monitors"; }
admin_line=$(grep "admin login" "$s.up.log" || true)
grep -q "^  mailer " "$s.up.log" || { cat "$s.up.log" >&2; fail "the banner does not mention the mailer"; }
rm -f "$s.up.log"
eval "$("$local_dir/env")"
sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$UPMON_PG_URL" -c "$1"; }

for svc in scheduler probe gateway mailer; do
  "$local_dir/ctl" status "$svc" | grep -q running || fail "$svc is not running"
done
# the mailer is ready (its admin /readyz: AMQP and PostgreSQL connected)
mailer_admin=$(sed -n 's/^PORT_MAILER_ADMIN=//p' "$s/stack.env")
curl -fsS -m 5 "http://127.0.0.1:$mailer_admin/readyz" >/dev/null || fail "mailer /readyz"
n=$(sql "SELECT count(*) FROM monitors WHERE 'self' = ANY (tags)")
((n >= 9)) || fail "expected at least 9 self-monitors (with the gateway's and the mailer's), found $n"
[[ -n $(sql "SELECT id FROM monitors WHERE name = 'upmon-mailer health' AND 'self' = ANY (tags)") ]] ||
  fail "no self-monitor of the mailer"

step "every self-monitor comes up"
deadline=$((SECONDS + 45))
until [[ $(sql "SELECT count(*) FROM monitors m JOIN monitor_state st ON st.monitor_id = m.id
               WHERE 'self' = ANY (m.tags) AND st.status = 'up'") == "$n" ]]; do
  if ((SECONDS > deadline)); then
    sql "SELECT m.name, st.status, st.last_error FROM monitors m
         JOIN monitor_state st ON st.monitor_id = m.id ORDER BY 1" >&2
    fail "self-monitors not all up within 45 s"
  fi
  sleep 1
done
while read -r id; do
  redis-cli -u "$UPMON_REDIS_URL" --no-auth-warning HGET "upmon:status:$id" json |
    grep -q '"status":"up"' || fail "no up status in redis for monitor $id"
done < <(sql "SELECT id FROM monitors WHERE 'self' = ANY (tags)")

step "the gateway: admin credentials, login, the self-monitors through the API"
curl -fsS -m 5 "$UPMON_GATEWAY_URL/readyz" >/dev/null || fail "gateway /readyz"
cred=$s/admin-credentials
[[ -f $cred ]] || fail "no $cred"
[[ $(stat -c %a "$cred") == 600 ]] || fail "$cred has mode $(stat -c %a "$cred"), want 600"
[[ $(stat -c %a "$s/gateway-jwt-secret") == 600 ]] || fail "gateway-jwt-secret is not mode 600"
[[ $(tr -d '\n' <"$s/gateway-jwt-secret") =~ ^[0-9a-f]{64}$ ]] || fail "jwt secret is not 64 hex"
admin_email=$(sed -n 's/^email=//p' "$cred")
admin_pw=$(sed -n 's/^password=//p' "$cred")
[[ $admin_email == admin@upmon.local && ${#admin_pw} -ge 16 ]] || fail "credentials file: $(sed 's/^password=.*/password=.../' "$cred")"
[[ $admin_line == *"admin@upmon.local / $admin_pw (saved in $cred)"* ]] ||
  fail "the first up did not print the password once: '$admin_line'"
api_login() {
  python3 -c 'import json,sys; print(json.dumps({"email": sys.argv[1], "password": sys.argv[2]}))' \
    "$admin_email" "$admin_pw" |
    curl -fsS -m 10 -H 'Content-Type: application/json' --data-binary @- \
      "$UPMON_GATEWAY_URL/api/v1/auth/login" |
    python3 -c 'import json,sys; a=json.load(sys.stdin); assert a["user"]["role"] == "admin"; print(a["token"])'
}
token=$(api_login) || fail "admin login with the saved credentials"
api() { curl -fsS -m 10 -H "Authorization: Bearer $token" "$UPMON_GATEWAY_URL/api/v1$1"; }
listed=$(api "/monitors?tag=self&limit=200" |
  python3 -c 'import json,sys; print("\n".join(sorted(m["id"] + " " + m["name"] for m in json.load(sys.stdin)["items"])))') ||
  fail "GET /monitors"
want=$(sql "SELECT id || ' ' || name FROM monitors WHERE 'self' = ANY (tags) ORDER BY 1")
[[ $listed == "$want" ]] || fail "GET /monitors lists: $listed; want: $want"
gw_mon=$(sql "SELECT id FROM monitors WHERE name = 'upmon-gateway health'")
[[ -n $gw_mon ]] || fail "no self-monitor of the gateway"
deadline=$((SECONDS + 30))
until [[ $(api "/monitors/$gw_mon/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])') == up ]]; do
  ((SECONDS < deadline)) || fail "GET /monitors/$gw_mon/status is not up within 30 s"
  sleep 1
done

step "up again changes nothing"
before=$(sql "SELECT string_agg(id::text || updated_at::text, ',' ORDER BY id) FROM monitors")
users_before=$(sql "SELECT string_agg(email || password_hash, ',' ORDER BY email) FROM users")
"$local_dir/up" --no-install --no-build >"$s.up2.log" 2>&1 || fail "second up failed"
after=$(sql "SELECT string_agg(id::text || updated_at::text, ',' ORDER BY id) FROM monitors")
[[ $before == "$after" ]] || fail "second up changed the self-monitors"
users_after=$(sql "SELECT string_agg(email || password_hash, ',' ORDER BY email) FROM users")
[[ $users_before == "$users_after" ]] || fail "second up changed an account"
! grep -qF -- "$admin_pw" "$s.up2.log" || fail "second up printed the admin password again"
grep -q "password in $cred" "$s.up2.log" || fail "second up does not say where the password is"
rm -f "$s.up2.log"
[[ $(sed -n 's/^password=//p' "$cred") == "$admin_pw" ]] || fail "second up changed the saved password"
token=$(api_login) || fail "admin login after the second up"

step "down"
pids=$(cat "$s"/run/*.pid 2>/dev/null || true)
"$local_dir/down" >/dev/null 2>&1 || fail "down failed"
for p in $pids; do
  if kill -0 "$p" 2>/dev/null && [[ $(ps -o stat= -p "$p" 2>/dev/null) != Z* ]]; then
    fail "process $p still running after down"
  fi
done
echo PASS

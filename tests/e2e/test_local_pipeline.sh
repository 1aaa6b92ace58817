#!/usr/bin/env bash
# deploy/local/up with the services: the scheduler and the probe start, become ready, and the
# stack's self-monitors (deploy/local/selfmon.sql) are checked and all come up, with their
# latest status in Redis; up again changes nothing; down leaves no process behind.
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
  tail -n 30 "$s"/log/scheduler.log "$s"/log/probe.log >&2 2>/dev/null || true
  exit 1
}
step() { echo "== $*"; }
cleanup() {
  "$local_dir/down" >/dev/null 2>&1 || true
  (source "$local_dir/lib.sh"; stack_resolve; ports_release) || true
  rm -rf -- "$s"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

step "up with the services"
"$local_dir/up" --no-install --no-build >"$s.up.log" 2>&1 || { cat "$s.up.log" >&2; fail "up failed"; }
grep -q "self-monitors" "$s.up.log" || { cat "$s.up.log" >&2; fail "up did not create the self-monitors"; }
rm -f "$s.up.log"
eval "$("$local_dir/env")"
sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$UPMON_PG_URL" -c "$1"; }

for svc in scheduler probe; do
  "$local_dir/ctl" status "$svc" | grep -q running || fail "$svc is not running"
done
n=$(sql "SELECT count(*) FROM monitors WHERE 'self' = ANY (tags)")
((n >= 7)) || fail "expected at least 7 self-monitors, found $n"

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

step "up again changes nothing"
before=$(sql "SELECT string_agg(id::text || updated_at::text, ',' ORDER BY id) FROM monitors")
"$local_dir/up" --no-install --no-build >/dev/null 2>&1 || fail "second up failed"
after=$(sql "SELECT string_agg(id::text || updated_at::text, ',' ORDER BY id) FROM monitors")
[[ $before == "$after" ]] || fail "second up changed the self-monitors"

step "down"
pids=$(cat "$s"/run/*.pid 2>/dev/null || true)
"$local_dir/down" >/dev/null 2>&1 || fail "down failed"
for p in $pids; do
  if kill -0 "$p" 2>/dev/null && [[ $(ps -o stat= -p "$p" 2>/dev/null) != Z* ]]; then
    fail "process $p still running after down"
  fi
done
echo PASS

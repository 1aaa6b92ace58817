#!/usr/bin/env bash
# The check pipeline end to end with real servers: upmon-scheduler publishes, upmon-probe
# checks, stores, acks and caches. 200 monitors against the local test target (40 each):
#   up (200), returning 500, refusing connections, slower than their timeout, keyword missing
# plus 10 TCP monitors (5 up, 5 refused). Within two intervals every monitor has the right
# state in monitor_state, a final check_results row with the right error, and its latest
# status in Redis; the queues end empty with nothing unacked or dead.
# Runs under tests/support/with-stack (fresh vhost and database).
set -euo pipefail
bin=${UPMON_BIN_DIR:?}
work=$(mktemp -d /tmp/upmon-pipeline.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf -- "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -n 20 "$work"/*.log >&2 || true; exit 1; }
sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$UPMON_PG_URL" -c "$1"; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

"$bin/upmonctl" migrate >/dev/null

"$bin/upmon-test-target" --listen 127.0.0.1:0 --port-file "$work/target.port" \
  >"$work/target.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [[ -s $work/target.port ]] && break; sleep 0.1; done
[[ -s $work/target.port ]] || fail "test target did not start"
tport=$(awk 'NR==1 {print $2}' "$work/target.port")
dead=$(free_port)
t="http://127.0.0.1:$tport"

interval=10
sql "INSERT INTO users (email, password_hash) VALUES ('pipeline@example.test', 'x')"
owner=$(sql "SELECT id FROM users WHERE email = 'pipeline@example.test'")
sql "INSERT INTO monitors (owner_id, name, type, url, keyword, interval_seconds, timeout_ms,
       retries, tags)
     SELECT '$owner', k.kind || '-' || g, 'http', k.url, k.keyword, $interval, 1000, 1,
       ARRAY[k.kind]
     FROM generate_series(1, 40) g,
       (VALUES ('up', '$t/ok', 'upmon ok'), ('500', '$t/status/500', NULL),
               ('refused', 'http://127.0.0.1:$dead/', NULL),
               ('slow', '$t/slow/3000', NULL), ('keyword', '$t/ok', 'not-in-the-body'))
       AS k(kind, url, keyword)"
sql "INSERT INTO monitors (owner_id, name, type, host, port, interval_seconds, timeout_ms,
       retries, tags)
     SELECT '$owner', k.kind || '-' || g, 'tcp', '127.0.0.1', k.port, $interval, 1000, 1,
       ARRAY[k.kind]
     FROM generate_series(1, 5) g, (VALUES ('tcp-up', $tport), ('tcp-refused', $dead))
       AS k(kind, port)"
[[ $(sql "SELECT count(*) FROM monitors") == 210 ]] || fail "monitors not created"

export UPMON_ADMIN_PORT=0 UPMON_RETRY_BASE_MS=500 UPMON_RETRY_MAX_MS=2000
export UPMON_PROBE_SSRF_ALLOW=127.0.0.0/8
"$bin/upmon-scheduler" >"$work/scheduler.log" 2>&1 &
pids+=($!)
"$bin/upmon-probe" >"$work/probe.log" 2>&1 &
pids+=($!)
start=$SECONDS

# Every monitor settles within two intervals (plus the confirmation re-probe).
expect() { # kind status
  sql "SELECT count(*) FROM monitors m JOIN monitor_state s ON s.monitor_id = m.id
       WHERE m.tags = ARRAY['$1'] AND s.status = '$2'"
}
deadline=$((start + 2 * interval + 5))
while :; do
  ok=1
  for ks in up:up 500:down refused:down slow:down keyword:down; do
    [[ $(expect "${ks%%:*}" "${ks##*:}") == 40 ]] || ok=0
  done
  for ks in tcp-up:up tcp-refused:down; do
    [[ $(expect "${ks%%:*}" "${ks##*:}") == 5 ]] || ok=0
  done
  ((ok)) && break
  if ((SECONDS > deadline)); then
    sql "SELECT m.tags[1], s.status, count(*) FROM monitors m JOIN monitor_state s
         ON s.monitor_id = m.id GROUP BY 1, 2 ORDER BY 1, 2" >&2
    fail "monitors did not reach their states within $((deadline - start)) s"
  fi
  sleep 1
done
echo "all 210 monitors in their expected state after $((SECONDS - start)) s"

# The final result of each failing kind says why.
err_of() { # kind pattern: number of monitors of kind whose latest final error matches
  sql "SELECT count(DISTINCT m.id) FROM monitors m JOIN check_results r ON r.monitor_id = m.id
       WHERE m.tags = ARRAY['$1'] AND r.final AND NOT r.ok AND r.error ~* '$2'"
}
[[ $(err_of 500 'status 500') == 40 ]] || fail "500: error does not name the status"
[[ $(err_of refused 'refused') == 40 ]] || fail "refused: error does not say refused"
[[ $(err_of slow 'tim') == 40 ]] || fail "slow: error does not say timeout"
[[ $(err_of keyword 'keyword') == 40 ]] || fail "keyword: error does not name the keyword"
[[ $(sql "SELECT count(*) FROM check_results r JOIN monitors m ON m.id = r.monitor_id
          WHERE m.tags = ARRAY['500'] AND r.status_code = 500 AND r.final") -ge 40 ]] ||
  fail "500: status_code not stored"
# A failure is confirmed by one re-probe (retries = 1): attempt 1 not final, attempt 2 final.
[[ $(sql "SELECT count(*) FROM check_results r JOIN monitors m ON m.id = r.monitor_id
          WHERE m.tags = ARRAY['500'] AND r.attempt = 1 AND NOT r.final") -ge 40 ]] ||
  fail "first failed attempts are not stored as non-final"
[[ $(sql "SELECT count(*) FROM check_results r JOIN monitors m ON m.id = r.monitor_id
          WHERE m.tags = ARRAY['up'] AND r.ok AND r.final AND r.latency_ms IS NOT NULL
          AND r.total_ms >= r.connect_ms") -ge 40 ]] || fail "up: timings missing"
# Exactly one row per (monitor, slot, attempt) is guaranteed by the key; no slot off the grid:
[[ $(sql "SELECT count(*) FROM check_results r JOIN monitors m ON m.id = r.monitor_id
          WHERE (extract(epoch FROM r.scheduled_at) * 1000)::bigint % ($interval * 1000)
          <> (SELECT (extract(epoch FROM min(r2.scheduled_at)) * 1000)::bigint % ($interval * 1000)
              FROM check_results r2 WHERE r2.monitor_id = r.monitor_id)") == 0 ]] ||
  fail "a result is off its monitor's grid"

# Redis holds each monitor's latest status.
redis_status() { redis-cli -u "$UPMON_REDIS_URL" --no-auth-warning HGET "upmon:status:$1" json; }
n=0
while IFS='|' read -r id tag; do
  js=$(redis_status "$id")
  case $tag in
    up|tcp-up) [[ $js == *'"status":"up"'* ]] || fail "redis: $tag monitor $id: $js" ;;
    *) [[ $js == *'"status":"down"'* ]] || fail "redis: $tag monitor $id: $js" ;;
  esac
  n=$((n + 1))
done < <(sql "SELECT id, tags[1] FROM monitors")
[[ $n == 210 ]] || fail "only $n monitors checked in redis"

# Status changes went to the outbox and were relayed; DOWN alerts were raised.
[[ $(sql "SELECT count(*) FROM alerts WHERE kind = 'down'") == 165 ]] ||
  fail "expected 165 DOWN alerts, got $(sql "SELECT count(*) FROM alerts WHERE kind = 'down'")"
deadline=$((SECONDS + 10))
until [[ $(sql "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0 ]]; do
  ((SECONDS < deadline)) || fail "outbox rows left unsent"
  sleep 0.5
done

# Nothing unacked, nothing dead (management API).
q() { curl -fsS "$UPMON_RABBITMQ_MGMT_URL/api/queues/$UPMON_RABBITMQ_VHOST/$1"; }
[[ $(q monitor_tasks_dead | grep -o '"messages":[0-9]*' | head -n 1) == '"messages":0' ]] ||
  fail "tasks were dead-lettered"
echo "PASS"

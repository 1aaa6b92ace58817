#!/usr/bin/env bash
# tests/bench/scheduler.sh: P3 of docs/targets.md for upmon-scheduler.
#
# Inserts N monitors (default 100000) at interval I (default 60 s) with one
# INSERT ... SELECT generate_series into a fresh database, starts upmon-scheduler, and
# after DURATION seconds (default 120) prints: load ms (from the leader line), RSS after
# the load and at the end (and the peak, VmHWM), tasks/s, and lateness p50/p99/p99.9
# read from the upmon_scheduler_lateness_seconds histogram (upper bound of the bucket
# holding the quantile). monitor_tasks gets a max-length policy (drop-head) so the
# unconsumed tasks do not fill the broker's memory.
#
# Run it under a test stack, e.g. with a release build:
#   cmake -S . -B build/rel -DCMAKE_BUILD_TYPE=Release && cmake --build build/rel -j2
#   UPMON_STATE_DIR=/tmp/bench-stack deploy/local/up --infra-only --no-build
#   echo /tmp/bench-stack > /tmp/bench.stackfile
#   UPMON_TEST_STACK_FILE=/tmp/bench.stackfile UPMON_SOURCE_DIR=$PWD \
#     UPMON_BIN_DIR=$PWD/build/rel/bin tests/support/with-stack bench_sched \
#     bash tests/bench/scheduler.sh [N] [INTERVAL] [DURATION]
#   UPMON_STATE_DIR=/tmp/bench-stack deploy/local/down
set -euo pipefail
n=${1:-100000}
interval=${2:-60}
duration=${3:-120}
: "${UPMON_BIN_DIR:?}" "${UPMON_PG_URL:?}" "${UPMON_AMQP_URL:?}" "${UPMON_RABBITMQ_MGMT_URL:?}"
: "${UPMON_RABBITMQ_VHOST:?}"

log=$(mktemp /tmp/bench-scheduler.XXXXXX.log)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; true; }
trap cleanup EXIT

"$UPMON_BIN_DIR/upmonctl" migrate >/dev/null
vh=$(python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' \
  "$UPMON_RABBITMQ_VHOST")
curl -fsS -X PUT -H 'content-type: application/json' \
  -d '{"pattern":"^monitor_tasks$","apply-to":"queues","definition":{"max-length":20000,"overflow":"drop-head"}}' \
  "$UPMON_RABBITMQ_MGMT_URL/api/policies/$vh/bench-cap" >/dev/null
t0=$(date +%s%N)
psql -qX "$UPMON_PG_URL" <<SQL
INSERT INTO users (id, email, password_hash)
  VALUES ('b0000000-0000-4000-8000-000000000001', 'bench@example.com', 'x');
INSERT INTO monitors (owner_id, name, type, url, interval_seconds, timeout_ms)
  SELECT 'b0000000-0000-4000-8000-000000000001', 'b' || g, 'http',
         'http://127.0.0.1:9/bench/' || g, $interval, 1000
  FROM generate_series(1, $n) g;
SQL
echo "inserted $n monitors in $(( ($(date +%s%N) - t0) / 1000000 )) ms"

UPMON_ADMIN_ADDR=127.0.0.1 UPMON_ADMIN_PORT=$port UPMON_LOG_LEVEL=info \
  "$UPMON_BIN_DIR/upmon-scheduler" 2>"$log" &
pid=$!
for _ in $(seq 1 300); do
  grep -q 'msg="leader:' "$log" && break
  sleep 0.1
done
grep -h 'msg="leader:' "$log" || { cat "$log"; exit 1; }
sleep 1
rss_load=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
metrics() { curl -fsS "http://127.0.0.1:$port/metrics"; }
pub0=$(metrics | awk '$1 == "upmon_scheduler_tasks_published_total" {print $2}')
cpu0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
sleep "$duration"
m=$(metrics)
pub1=$(awk '$1 == "upmon_scheduler_tasks_published_total" {print $2}' <<<"$m")
cpu1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
rss_end=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
hz=$(getconf CLK_TCK)
echo "monitors $n at ${interval}s, measured for ${duration}s"
echo "rss after load $((rss_load / 1024)) MB, at end $((rss_end / 1024)) MB, peak $((hwm / 1024)) MB"
awk -v p0="$pub0" -v p1="$pub1" -v d="$duration" -v c0="$cpu0" -v c1="$cpu1" -v hz="$hz" \
  'BEGIN { t = p1 - p0; printf "tasks published %d, %.1f tasks/s, cpu %.1f us/task\n", t, t / d, (t > 0 ? (c1 - c0) / hz * 1e6 / t : 0) }'
grep -E '^upmon_scheduler_(missed_slots_total|tasks_republished_total|backlog) ' <<<"$m"
# quantiles from the cumulative histogram (whole run, since the scheduler started)
awk '
  /^upmon_scheduler_lateness_seconds_bucket/ {
    match($0, /le="[^"]+"/); le = substr($0, RSTART + 4, RLENGTH - 5)
    n++; bound[n] = le; cum[n] = $2
  }
  /^upmon_scheduler_lateness_seconds_count/ { total = $2 }
  /^upmon_scheduler_lateness_seconds_sum/ { sum = $2 }
  END {
    split("0.5 0.99 0.999", qs, " ")
    for (i = 1; i <= 3; i++) {
      q = qs[i]; want = q * total
      for (j = 1; j <= n; j++) if (cum[j] >= want) break
      printf "lateness p%s <= %s s\n", q * 100, bound[j]
    }
    printf "lateness mean %.3f ms over %d tasks\n", (total ? sum / total * 1000 : 0), total
  }' <<<"$m"
grep -E 'level=(warn|error)' "$log" | head -5 || true
rm -f "$log"

#!/usr/bin/env bash
# upmonctl dlq against a real RabbitMQ: list shows dead messages with their x-upmon-* reason
# and leaves them in place; replay moves them back to their work queue with the failure
# headers dropped and message ids kept; purge needs --yes and deletes; bad usage exits 2.
set -euo pipefail
ctl=${UPMON_BIN_DIR:?}/upmonctl
mgmt=${UPMON_RABBITMQ_MGMT_URL:?}
vh=${UPMON_RABBITMQ_VHOST:?}
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$("$ctl" dlq list) || fail "list on an empty queue failed"
[[ $out == *"0 messages listed from monitor_tasks_dead"* ]] || fail "empty list: $out"

publish() { # id error
  curl -fsS -X POST -H 'content-type: application/json' \
    "$mgmt/api/exchanges/$vh/amq.default/publish" -d "{
      \"routing_key\": \"monitor_tasks_dead\", \"payload_encoding\": \"string\",
      \"payload\": \"{\\\"v\\\":1,\\\"id\\\":\\\"$1\\\"}\",
      \"properties\": {\"message_id\": \"$1\", \"delivery_mode\": 2, \"headers\": {
        \"x-upmon-error\": \"$2\", \"x-upmon-attempt\": 5, \"x-upmon-service\": \"upmon-probe\",
        \"x-upmon-host\": \"h1\", \"x-upmon-last-failure\": \"2026-11-21T10:00:00.000Z\",
        \"x-upmon-first-failure\": \"2026-11-21T09:59:00.000Z\", \"keep-me\": \"yes\"}}}" |
    grep -q '"routed":true' || fail "could not publish $1"
}
publish m1 "db down: connection refused"
publish m2 "db down: timeout"
publish m3 "bad
line"

for round in 1 2; do
  out=$("$ctl" dlq list --body) || fail "list failed"
  [[ $out == *"3 messages listed from monitor_tasks_dead"* ]] || fail "list round $round: $out"
  [[ $out == *'m1 attempt=5 last=2026-11-21T10:00:00.000Z by=upmon-probe@h1 error="db down: connection refused"'* ]] ||
    fail "list line of m1: $out"
  [[ $out == *'error="bad?line"'* ]] || fail "a newline in an error must not break the line: $out"
  [[ $out == *'body: {"v":1,"id":"m2"}'* ]] || fail "--body: $out"
done

out=$("$ctl" dlq replay --limit 2) || fail "replay failed"
[[ $out == *"2 messages replayed from monitor_tasks_dead to monitor_tasks"* ]] || fail "replay: $out"
[[ $out == *"stopped at --limit 2"* ]] || fail "replay should say it stopped at the limit: $out"
got=$(curl -fsS -X POST -H 'content-type: application/json' \
  "$mgmt/api/queues/$vh/monitor_tasks/get" \
  -d '{"count": 10, "ackmode": "ack_requeue_true", "encoding": "auto"}')
n=$(grep -o '"message_id":"m[0-9]"' <<<"$got" | wc -l)
[[ $n == 2 ]] || fail "expected 2 replayed messages in monitor_tasks, got $n: $got"
[[ $got != *x-upmon-error* ]] || fail "replayed messages still carry x-upmon-error: $got"
[[ $got == *'"keep-me":"yes"'* ]] || fail "replay dropped a caller header: $got"

set +e
"$ctl" dlq purge 2>/dev/null; rc=$?
set -e
[[ $rc == 2 ]] || fail "purge without --yes: exit $rc, want 2"
out=$("$ctl" dlq purge --yes) || fail "purge failed"
[[ $out == *"1 messages purged from monitor_tasks_dead"* ]] || fail "purge: $out"
out=$("$ctl" dlq list) || fail "list after purge failed"
[[ $out == *"0 messages listed"* ]] || fail "after purge: $out"

set +e
"$ctl" dlq list --queue monitor_tasks 2>/dev/null; rc=$?
"$ctl" dlq frobnicate 2>/dev/null; rc2=$?
set -e
[[ $rc == 2 && $rc2 == 2 ]] || fail "usage errors must exit 2 ($rc, $rc2)"
echo PASS

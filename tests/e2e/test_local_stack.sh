#!/usr/bin/env bash
# The local stack scripts end to end (deploy/local/{up,env,ctl,down}), with two stacks in
# temporary state dirs:
#   - up --infra-only brings RabbitMQ, PostgreSQL, Redis and the SMTP sink up; env describes
#     them; each answers (AMQP handshake, management API with credentials, SQL, PING, an
#     SMTP session whose message lands in the mail dir);
#   - up again is a no-op (same pids);
#   - a durable message survives `ctl restart rabbitmq` (same ports, same data);
#   - a second stack runs at the same time on other ports;
#   - down stops both and leaves no process behind.
# Needs UPMON_SOURCE_DIR and UPMON_BIN_DIR (with upmon-smtp-sink), as ctest sets them.
set -euo pipefail

: "${UPMON_SOURCE_DIR:?UPMON_SOURCE_DIR must be set (ctest sets it)}"
: "${UPMON_BIN_DIR:?UPMON_BIN_DIR must be set (ctest sets it)}"
export UPMON_BIN_DIR
local_dir=$UPMON_SOURCE_DIR/deploy/local
# Port overrides from a developer's shell must not leak into these stacks.
for v in $(compgen -e); do
  if [[ $v == UPMON_LOCAL_*_PORT ]]; then unset "$v"; fi
done
unset UPMON_STATE_DIR

s1=$(mktemp -d /tmp/upmon-e2e-a.XXXXXX)
s2=$(mktemp -d /tmp/upmon-e2e-b.XXXXXX)
chmod 755 "$s1" "$s2"

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
step() { echo "== $*"; }

cleanup() {
  local s
  for s in "$s1" "$s2"; do
    UPMON_STATE_DIR=$s "$local_dir/down" >/dev/null 2>&1 || true
    (source "$local_dir/lib.sh"; UPMON_STATE_DIR=$s stack_resolve; ports_release) || true
    rm -rf -- "$s"
  done
}
trap cleanup EXIT
trap 'exit 143' TERM INT

up() { UPMON_STATE_DIR=$1 "$local_dir/up" --infra-only --no-install --no-build; }

# Loads the env of stack $1 into this shell.
load_env() {
  local out
  out=$(UPMON_STATE_DIR=$1 "$local_dir/env") || fail "deploy/local/env failed for $1"
  eval "$out"
}

# port_of URL: the port of a scheme://[user:pw@]host:port[/...] URL.
port_of() {
  local rest=${1#*://}
  rest=${rest##*@}
  rest=${rest#*:}
  echo "${rest%%/*}"
}

# Checks that every variable of the env contract is exported by deploy/local/env.
check_env() {
  local out v
  out=$(UPMON_STATE_DIR=$1 "$local_dir/env")
  for v in UPMON_STATE_DIR UPMON_GATEWAY_URL UPMON_AMQP_URL UPMON_RABBITMQ_MGMT_URL UPMON_PG_URL \
           UPMON_REDIS_URL UPMON_SMTP_HOST UPMON_SMTP_PORT UPMON_MAIL_DIR UPMON_BIN_DIR; do
    grep -q "^export $v=." <<<"$out" || fail "env of $1 lacks $v"
  done
  grep -q "^export UPMON_AMQP_URL=amqp://upmon:[A-Za-z0-9]*@127.0.0.1:[0-9]*/%2f$" <<<"$out" ||
    fail "UPMON_AMQP_URL malformed: $(grep UPMON_AMQP_URL <<<"$out")"
  grep -q "^export UPMON_PG_URL=postgresql://upmon:[A-Za-z0-9]*@127.0.0.1:[0-9]*/upmon$" <<<"$out" ||
    fail "UPMON_PG_URL malformed"
}

# Sends the AMQP 0-9-1 protocol header and expects a method frame (Connection.Start) back.
check_amqp() {
  local port frame
  port=$(port_of "$UPMON_AMQP_URL")
  exec 3<>"/dev/tcp/127.0.0.1/$port" || fail "AMQP port $port closed"
  printf 'AMQP\x00\x00\x09\x01' >&3
  frame=$(timeout 10 head -c 1 <&3 | od -An -tx1 | tr -d ' ')
  exec 3<&-
  [[ $frame == 01 ]] || fail "AMQP port $port did not answer the protocol header (got '$frame')"
}

check_mgmt() {
  local port body
  body=$(curl -fsS -m 10 "$UPMON_RABBITMQ_MGMT_URL/api/overview") ||
    fail "management API /api/overview failed with the credentials of the env"
  grep -q '"rabbitmq_version"' <<<"$body" || fail "unexpected /api/overview answer"
  port=$(port_of "$UPMON_RABBITMQ_MGMT_URL")
  [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/api/overview") == 401 ]] ||
    fail "management API answers without credentials"
}

check_pg() {
  pg_isready -q -d "$UPMON_PG_URL" || fail "pg_isready: PostgreSQL not ready"
  [[ $(psql "$UPMON_PG_URL" -X -At -c 'select 1') == 1 ]] || fail "psql select 1 failed"
}

check_redis() {
  [[ $(redis-cli -u "$UPMON_REDIS_URL" ping) == PONG ]] || fail "redis-cli ping failed"
}

# smtp_expect CODE: reads one reply (multi-line replies too) and checks its code.
smtp_expect() {
  local line
  while :; do
    IFS= read -r -t 10 line <&3 || fail "SMTP: no reply (expected $1)"
    line=${line%$'\r'}
    [[ $line == "$1"* ]] || fail "SMTP: expected $1, got '$line'"
    [[ ${line:3:1} == - ]] || break
  done
}

# Runs an SMTP session over /dev/tcp and finds the stored .eml in the mail dir.
check_smtp() {
  local token f
  token=e2e-$RANDOM$RANDOM
  exec 3<>"/dev/tcp/$UPMON_SMTP_HOST/$UPMON_SMTP_PORT" || fail "SMTP port closed"
  smtp_expect 220
  printf 'EHLO e2e.test\r\n' >&3; smtp_expect 250
  printf 'MAIL FROM:<alerts@upmon.test>\r\n' >&3; smtp_expect 250
  printf 'RCPT TO:<ops@example.test>\r\n' >&3; smtp_expect 250
  printf 'DATA\r\n' >&3; smtp_expect 354
  printf 'Subject: %s\r\n\r\nhello\r\n..leading dot\r\n.\r\n' "$token" >&3; smtp_expect 250
  printf 'QUIT\r\n' >&3; smtp_expect 221
  exec 3<&-
  f=$(grep -l "Subject: $token" "$UPMON_MAIL_DIR"/*.eml 2>/dev/null | head -n 1) ||
    fail "no .eml with subject $token in $UPMON_MAIL_DIR"
  [[ -n $f ]] || fail "no .eml with subject $token in $UPMON_MAIL_DIR"
  [[ $(head -n 1 "$f") == "X-Upmon-Envelope-From: <alerts@upmon.test>"$'\r' ]] ||
    fail "$f does not start with the envelope sender"
  grep -q '^X-Upmon-Envelope-To: <ops@example.test>' "$f" || fail "$f lacks the envelope recipient"
  grep -q '^\.leading dot' "$f" || fail "$f: dot-stuffing not undone"
}

check_stack() {
  check_env "$1"
  load_env "$1"
  check_amqp
  check_mgmt
  check_pg
  check_redis
  check_smtp
}

# Prints "name pid" for each pid file of stack $1.
recorded_pids() {
  local f
  for f in "$1"/run/*.pid; do
    [[ -e $f ]] && echo "$(basename "$f" .pid) $(<"$f")"
  done
  return 0
}

# True when pid $1 is a live process (zombies waiting for init count as gone).
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# Fails when a live process has $1 in its command line.
check_no_process_mentions() {
  local p cmd
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [[ $p == "$$" || $p == "$BASHPID" ]] && continue
    cmd=$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null) || continue
    if [[ $cmd == *"$1"* ]] && alive "$p"; then
      fail "process $p still runs after down: $cmd"
    fi
  done
}

step "stack 1: up in $s1"
t=$SECONDS
up "$s1" || fail "deploy/local/up failed for $s1 (logs in $s1/log)"
echo "stack 1 up in $((SECONDS - t))s"
check_stack "$s1"

step "stack 1: up again is a no-op"
before=$(recorded_pids "$s1")
out=$(up "$s1" 2>&1) || fail "second up failed: $out"
grep -q 'rabbitmq already running' <<<"$out" || fail "second up did not find rabbitmq running"
[[ $(recorded_pids "$s1") == "$before" ]] || fail "second up changed the pids"

step "stack 1: a durable message survives ctl restart rabbitmq"
load_env "$s1"
mgmt=$UPMON_RABBITMQ_MGMT_URL
curl -fsS -X PUT -H 'content-type: application/json' -d '{"durable":true}' \
  "$mgmt/api/queues/%2f/e2e-durable" || fail "cannot declare queue"
curl -fsS -X POST -H 'content-type: application/json' \
  -d '{"properties":{"delivery_mode":2},"routing_key":"e2e-durable","payload":"kept","payload_encoding":"string"}' \
  "$mgmt/api/exchanges/%2f/amq.default/publish" | grep -q '"routed":true' || fail "publish not routed"
env_before=$(UPMON_STATE_DIR=$s1 "$local_dir/env")
t=$SECONDS
UPMON_STATE_DIR=$s1 "$local_dir/ctl" restart rabbitmq || fail "ctl restart rabbitmq failed"
echo "rabbitmq restarted in $((SECONDS - t))s"
[[ $(UPMON_STATE_DIR=$s1 "$local_dir/env") == "$env_before" ]] || fail "the restart changed the env"
got=$(curl -fsS -X POST -H 'content-type: application/json' \
  -d '{"count":1,"ackmode":"ack_requeue_false","encoding":"auto"}' "$mgmt/api/queues/%2f/e2e-durable/get") ||
  fail "cannot read the queue after the restart"
grep -q '"payload":"kept"' <<<"$got" || fail "the durable message is gone after the restart: $got"
check_amqp

step "stack 2: up in $s2 while stack 1 runs"
up "$s2" || fail "deploy/local/up failed for $s2 (logs in $s2/log)"
check_stack "$s2"
p1=$(grep '^PORT_' "$s1/stack.env" | cut -d= -f2 | sort)
p2=$(grep '^PORT_' "$s2/stack.env" | cut -d= -f2 | sort)
common=$(comm -12 <(echo "$p1") <(echo "$p2"))
[[ -z $common ]] || fail "the two stacks share ports: $common"
UPMON_STATE_DIR=$s1 "$local_dir/ctl" status infra >/dev/null || fail "stack 1 no longer fully running"

step "down both"
pids=$(recorded_pids "$s1"; recorded_pids "$s2")
ports=$(echo "$p1"; echo "$p2")
UPMON_STATE_DIR=$s1 "$local_dir/down" || fail "down failed for $s1"
UPMON_STATE_DIR=$s2 "$local_dir/down" || fail "down failed for $s2"
while read -r name pid; do
  alive "$pid" && fail "$name (pid $pid) still runs after down"
done <<<"$pids"
check_no_process_mentions "$s1"
check_no_process_mentions "$s2"
for p in $ports; do
  if [[ -n $(ss -Hltn "sport = :$p") ]]; then fail "port $p still listening after down"; fi
done
compgen -G "$s1/run/*.pid" >/dev/null && fail "pid files left in $s1/run"
compgen -G "$s2/run/*.pid" >/dev/null && fail "pid files left in $s2/run"
UPMON_STATE_DIR=$s1 "$local_dir/down" >/dev/null || fail "a second down failed"

echo "PASS: local stack up/env/restart/down, two stacks side by side"

#!/usr/bin/env bash
# P5 / P6: upmon-gateway's read paths under wrk.
#
#   tests/bench/api.sh [--bin build/bench-rel/bin] [--duration 30] [--connections 64]
#       [--summary-connections 8] [--threads 64] [--paced-delay-ms 4] [--monitors 1000] [--state-dir DIR] [--keep]
#
# Starts a private stack (deploy/local/up --infra-only in the temporary directory, stopped at
# exit) unless --state-dir names a running one (deploy/local/up --infra-only with that
# UPMON_STATE_DIR; the script then only adds a database and uses Redis, and stops nothing of
# it). In a fresh database: upmonctl migrate; upmon-gateway (UPMON_GATEWAY_THREADS --threads,
# per-IP rate limit 100,000,000/min so it never triggers but still costs its Redis INCR per
# request, log level warn); one user registered and logged in through the API;
# tests/bench/api_seed.sql: --monitors monitors, 30 days of 30-second history (86,400 rows,
# ~721 hourly rollups) for the first; the latest status of every monitor in Redis
# (upmon:status:<id>, the probe's format). Then wrk (2 threads, tests/bench/api.lua):
#   status-1     GET /monitors/{id}/status of one monitor, --connections connections   (P5)
#   status-rand  the same for a random monitor among all of them per request           (P5)
#   status-paced status-rand at an offered rate instead of saturation: each connection
#                pauses about --paced-delay-ms between answer and request (jittered)   (P5)
#   status-1-norl  status-1 again, gateway restarted with the rate limit off (comparison)
#   status-pg    status-rand with Redis emptied: the PostgreSQL fallback (comparison)
#   summary-30d  GET /monitors/{id}/summary?window=30d of the history monitor,
#                --summary-connections connections                                     (P6)
# and prints req/s, p50, p90, p99, max and errors per run, and PASS/FAIL against P5 (>= 10,000
# req/s and p99 <= 5 ms) and P6 (p99 <= 50 ms). Results also go to $BENCH_DIR/results.txt.
set -euo pipefail
# shellcheck source=tests/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bin=$BENCH_REPO/build/bench-rel/bin duration=30 conns=64 sconns=8 threads=64 monitors=1000 paced_delay=4
state_dir="" keep_stack=0
while [[ $# -gt 0 ]]; do
	case $1 in
		--bin) bin=$2; shift 2 ;;
		--duration) duration=$2; shift 2 ;;
		--connections) conns=$2; shift 2 ;;
		--summary-connections) sconns=$2; shift 2 ;;
		--threads) threads=$2; shift 2 ;;
		--paced-delay-ms) paced_delay=$2; shift 2 ;;
		--monitors) monitors=$2; shift 2 ;;
		--state-dir) state_dir=$2; shift 2 ;;
		--keep) keep_stack=1; shift ;;
		-h|--help) sed -n '2,24p' "$0"; exit 0 ;;
		*) bench_die "unknown argument $1" ;;
	esac
done
[[ -x $bin/upmon-gateway && -x $bin/upmonctl ]] || bench_die "no upmon-gateway/upmonctl in $bin"
command -v wrk >/dev/null || bench_die "wrk is not installed"
bench_init
((keep_stack)) && BENCH_KEEP=1
RESULTS=$BENCH_DIR/results.txt
: >"$RESULTS"

# ---- the stack ----------------------------------------------------------------------------

if [[ -z $state_dir ]]; then
	bench_note "starting a private stack in $BENCH_DIR/stack"
	bench_stack_start "$bin" "$keep_stack"
else
	STACK=$state_dir
	[[ -f $STACK/stack.env ]] || bench_die "no stack.env in $STACK"
	# shellcheck disable=SC1091
	source "$STACK/stack.env"
fi

db=bench_api_$$
PGPASSWORD=$PG_PASS psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT_PG" -U "$PG_USER" \
	-d "$PG_DB" -c "CREATE DATABASE $db OWNER $PG_USER" >/dev/null ||
	bench_die "cannot create database $db"
drop_db() {
	PGPASSWORD=$PG_PASS psql -X -q -At -h 127.0.0.1 -p "$PORT_PG" -U "$PG_USER" -d "$PG_DB" \
		-c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
}
BENCH_CLEANUPS+=(drop_db)
export UPMON_PG_URL="postgresql://$PG_USER:$PG_PASS@127.0.0.1:$PORT_PG/$db"
export UPMON_REDIS_URL="redis://127.0.0.1:$PORT_REDIS/0"
export UPMON_AMQP_URL="amqp://$RMQ_USER:$RMQ_PASS@127.0.0.1:$PORT_AMQP/%2f"
"$bin/upmonctl" migrate >"$BENCH_DIR/migrate.log" 2>&1 ||
	{ cat "$BENCH_DIR/migrate.log" >&2; bench_die "migrate failed"; }

# ---- the gateway ------------------------------------------------------------------------

port=$(bench_free_port) admin_port=$(bench_free_port)
start_gateway() { # per-IP rate limit per minute (0 = off)
	UPMON_GATEWAY_ADDR=127.0.0.1 UPMON_GATEWAY_PORT=$port UPMON_ADMIN_PORT=$admin_port \
	UPMON_ADMIN_ADDR=127.0.0.1 UPMON_GATEWAY_THREADS=$threads \
	UPMON_GATEWAY_JWT_SECRET=bench-secret-0123456789-abcdefghijklmnop \
	UPMON_GATEWAY_RATE_IP_PER_MIN=$1 UPMON_GATEWAY_RATE_AUTH_IP_PER_MIN=1000 \
	UPMON_LOG_LEVEL=warn \
		"$bin/upmon-gateway" >>"$BENCH_DIR/gateway.log" 2>&1 &
	GW_PID=$!
	BENCH_PIDS+=("$GW_PID")
	bench_wait_port "$port" 20 ||
		{ tail -n 20 "$BENCH_DIR/gateway.log" >&2; bench_die "gateway did not start"; }
}
start_gateway 100000000
api=http://127.0.0.1:$port/api/v1
email=bench-$$@example.test
curl -fsS -m 10 -H 'content-type: application/json' \
	-d "{\"email\":\"$email\",\"password\":\"bench password 1\"}" "$api/auth/register" \
	>"$BENCH_DIR/user.json" || bench_die "register failed"
owner=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["user"]["id"])' <"$BENCH_DIR/user.json")
token=$(curl -fsS -m 10 -H 'content-type: application/json' \
	-d "{\"email\":\"$email\",\"password\":\"bench password 1\"}" "$api/auth/login" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])') || bench_die "login failed"

# ---- the seed ---------------------------------------------------------------------------

t0=$(date +%s.%N)
psql -X -q -v ON_ERROR_STOP=1 -v owner="$owner" -v monitors="$monitors" "$UPMON_PG_URL" \
	-f "$BENCH_REPO/tests/bench/api_seed.sql" >"$BENCH_DIR/seed.log" 2>&1 ||
	{ cat "$BENCH_DIR/seed.log" >&2; bench_die "seed failed"; }
psql -X -q -At -v ON_ERROR_STOP=1 "$UPMON_PG_URL" -c \
	"SELECT id FROM monitors WHERE owner_id = '$owner' ORDER BY name = 'bench-1' DESC, id" \
	>"$BENCH_DIR/ids.txt"
head -n 1 "$BENCH_DIR/ids.txt" >"$BENCH_DIR/id1.txt"
hist_id=$(<"$BENCH_DIR/id1.txt")
# the latest status of every monitor in Redis, as the probe writes it (hash ts + json)
put_redis_status() {
	psql -X -q -At -F $'\t' -v ON_ERROR_STOP=1 "$UPMON_PG_URL" -c "
		SELECT 'upmon:status:' || id, upmon_ts_to_ms(date_trunc('minute', now())) + 1,
		    json_build_object('v', 1, 'monitor_id', id, 'owner_id', owner_id,
		        'status', 'up', 'since', upmon_ts_to_ms(created_at),
		        'checked_at', upmon_ts_to_ms(now()),
		        'scheduled_at', upmon_ts_to_ms(date_trunc('minute', now())), 'attempt', 1,
		        'result', json_build_object('ok', true, 'latency_ms', 12, 'status_code', 200),
		        'timings', json_build_object('dns_ms', 1, 'connect_ms', 2,
		            'first_byte_ms', 10, 'total_ms', 12))::text
		FROM monitors WHERE owner_id = '$owner'" |
	python3 -c '
import sys
out = sys.stdout.buffer
for line in sys.stdin:
    args = ["HSET"] + line.rstrip("\n").split("\t", 2)
    args.insert(2, "ts")
    args.insert(4, "json")
    out.write(b"*%d\r\n" % len(args))
    for a in args:
        b = a.encode()
        out.write(b"$%d\r\n%s\r\n" % (len(b), b))
' | redis-cli -u "$UPMON_REDIS_URL" --no-auth-warning --pipe >"$BENCH_DIR/redis.log" 2>&1 ||
		{ cat "$BENCH_DIR/redis.log" >&2; bench_die "redis seed failed"; }
}
drop_redis_status() {
	sed 's/^/upmon:status:/' "$BENCH_DIR/ids.txt" |
		xargs -n 500 redis-cli -u "$UPMON_REDIS_URL" --no-auth-warning DEL >/dev/null
}
BENCH_CLEANUPS+=(drop_redis_status)
put_redis_status
bench_note "seeded $monitors monitors, $(psql -X -At "$UPMON_PG_URL" -c \
	"SELECT count(*) FROM check_results") results, $(psql -X -At "$UPMON_PG_URL" -c \
	"SELECT count(*) FROM check_rollups_hourly") rollups in $(awk -v a="$t0" \
	-v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"

# sanity: the answers are what we measure
auth=(-H "Authorization: Bearer $token")
src=$(curl -fsS -m 10 "${auth[@]}" "$api/monitors/$hist_id/status" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["source"])')
[[ $src == cache ]] || bench_die "status of $hist_id came from $src, not the cache"
checks=$(curl -fsS -m 10 "${auth[@]}" "$api/monitors/$hist_id/summary?window=30d" |
	python3 -c 'import json,sys; b = json.load(sys.stdin); print(b["checks"], b["p99_ms"])')
bench_note "30-day summary of $hist_id: checks p99_ms = $checks"
[[ ${checks%% *} -ge 86000 ]] || bench_die "30-day summary counts only ${checks%% *} checks"

# ---- the runs ---------------------------------------------------------------------------

gw_ticks() { bench_cpu_ticks "$GW_PID"; }
declare -A RPS P99 P50 ERR
run() { # name path-format ids-file connections [delay-ms]
	local name=$1 fmt=$2 ids=$3 c=$4 out line c0 c1 s0 s1
	export BENCH_DELAY_MS=${5:-0}
	BENCH_TOKEN=$token BENCH_PATH=/api/v1$fmt BENCH_IDS=$ids \
		wrk -t2 -c"$c" -d3s --timeout 10s -s "$BENCH_REPO/tests/bench/api.lua" \
		"http://127.0.0.1:$port" >/dev/null 2>&1 || true # warm-up
	c0=$(gw_ticks) s0=$(bench_sys_ticks)
	out=$(BENCH_TOKEN=$token BENCH_PATH=/api/v1$fmt BENCH_IDS=$ids \
		wrk -t2 -c"$c" -d"${duration}s" --timeout 10s -s "$BENCH_REPO/tests/bench/api.lua" \
		"http://127.0.0.1:$port" 2>&1) || { echo "$out" >&2; bench_die "wrk failed"; }
	c1=$(gw_ticks) s1=$(bench_sys_ticks)
	line=$(grep '^BENCH ' <<<"$out") || { echo "$out" >&2; bench_die "no BENCH line"; }
	line=${line#BENCH }
	eval "local $line"
	RPS[$name]=$rps P99[$name]=$p99_ms P50[$name]=$p50_ms ERR[$name]=$errors
	printf '%-13s %3dc  %8s req/s  p50 %7s ms  p90 %7s ms  p99 %7s ms  max %8s ms  errors %s  gateway %s us/req  machine %s us/req\n' \
		"$name" "$c" "$rps" "$p50_ms" "$p90_ms" "$p99_ms" "$max_ms" "$errors" \
		"$(bench_us_per $((c1 - c0)) "$requests")" "$(bench_us_per $((s1 - s0)) "$requests")" |
		tee -a "$RESULTS"
}

bench_note "wrk: 2 threads, ${duration} s per run (after a 3 s warm-up), gateway threads $threads"
run status-1 "/monitors/%s/status" "$BENCH_DIR/id1.txt" "$conns"
run status-rand "/monitors/%s/status" "$BENCH_DIR/ids.txt" "$conns"
# the same read at an offered rate near P5's 10,000/s instead of saturation: each of the
# connections pauses --paced-delay-ms (jittered) between answer and next request
run status-paced "/monitors/%s/status" "$BENCH_DIR/ids.txt" "$conns" "$paced_delay"
run summary-30d "/monitors/%s/summary?window=30d" "$BENCH_DIR/id1.txt" "$sconns"
# the same without the per-IP rate limit (its Redis script call per request)
bench_stop_pid "$GW_PID"
start_gateway 0
run status-1-norl "/monitors/%s/status" "$BENCH_DIR/id1.txt" "$conns"
drop_redis_status
run status-pg "/monitors/%s/status" "$BENCH_DIR/ids.txt" "$conns"
src=$(curl -fsS -m 10 "${auth[@]}" "$api/monitors/$hist_id/status" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["source"])')
[[ $src == database ]] || bench_note "status-pg: answered from $src"

verdict() { # name min-rps max-p99
	awk -v r="${RPS[$1]}" -v p="${P99[$1]}" -v e="${ERR[$1]}" -v mr="$2" -v mp="$3" \
		'BEGIN { print (r >= mr && p <= mp && e == 0) ? "PASS" : "FAIL" }'
}
{
	echo "P5 status (one monitor):      ${RPS[status-1]} req/s, p99 ${P99[status-1]} ms: $(verdict status-1 10000 5)"
	echo "P5 status (random of $monitors): ${RPS[status-rand]} req/s, p99 ${P99[status-rand]} ms: $(verdict status-rand 10000 5)"
	echo "P5 status (paced, random):    ${RPS[status-paced]} req/s, p99 ${P99[status-paced]} ms: $(verdict status-paced 10000 5)"
	echo "P6 30-day summary:            ${RPS[summary-30d]} req/s, p99 ${P99[summary-30d]} ms: $(verdict summary-30d 0 50)"
} | tee -a "$RESULTS"

#!/usr/bin/env bash
# Shared functions of the benchmarks (sourced, never run): a private nginx target returning
# "200 ok", Debian's prometheus-blackbox-exporter, wrk, free ports, process CPU and memory.
# Everything binds 127.0.0.1 and lives in one temporary directory, $BENCH_DIR; bench_cleanup
# (installed as an EXIT trap by bench_init) stops what was started here, by pid.
#
#   source tests/bench/lib.sh
#   bench_init
#   bench_nginx_start              -> $NGINX_PORT, $NGINX_PID
#   bench_blackbox_start           -> $BLACKBOX_PORT, $BLACKBOX_PID
#   bench_blackbox_measure 30 "8 16 64" before  -> $BLACKBOX_RATE (best run so far)

# shellcheck disable=SC2034  # used by the scripts that source this file
BENCH_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
BENCH_PIDS=()
BENCH_CLEANUPS=()

bench_die() { echo "bench: error: $*" >&2; exit 1; }
bench_note() { echo "bench: $*" >&2; }

# Creates $BENCH_DIR (BENCH_KEEP=1 keeps it) and the EXIT trap.
bench_init() {
	BENCH_DIR=$(mktemp -d /tmp/upmon-bench.XXXXXX)
	chmod 755 "$BENCH_DIR"
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
	BENCH_CLK_TCK=$(getconf CLK_TCK)
	BLACKBOX_RATE=0 BLACKBOX_RUNS="" BLACKBOX_CPU_US=0
}

# Runs the registered cleanups (last first), then stops every process started here:
# SIGTERM, up to 10 s, then SIGKILL.
bench_cleanup() {
	local i p n
	set +e
	for ((i = ${#BENCH_CLEANUPS[@]} - 1; i >= 0; i--)); do
		eval "${BENCH_CLEANUPS[i]}"
	done
	for p in "${BENCH_PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "${BENCH_PIDS[@]}"; do
		for ((n = 0; n < 100; n++)); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	BENCH_PIDS=()
	if [[ ${BENCH_KEEP:-0} == 1 ]]; then
		bench_note "kept $BENCH_DIR"
	elif [[ -n ${BENCH_DIR:-} && -d $BENCH_DIR ]]; then
		rm -rf "$BENCH_DIR"
	fi
}

# Stops one process we started (SIGTERM, then SIGKILL after 10 s) and forgets it; its exit
# status goes to BENCH_LAST_STATUS.
bench_stop_pid() {
	local p=$1 n i keep=()
	kill -TERM "$p" 2>/dev/null || true
	for ((n = 0; n < 100; n++)); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$p" 2>/dev/null || true
	BENCH_LAST_STATUS=0
	wait "$p" 2>/dev/null || BENCH_LAST_STATUS=$?
	for i in "${BENCH_PIDS[@]}"; do
		[[ $i == "$p" ]] || keep+=("$i")
	done
	BENCH_PIDS=("${keep[@]}")
}

# Prints a free TCP port of 127.0.0.1 below the ephemeral range and outside 20000-31999
# (deploy/local picks its stack ports there).
bench_free_port() {
	local p tries
	for ((tries = 0; tries < 500; tries++)); do
		p=$((12000 + RANDOM % 8000))
		[[ " ${BENCH_TAKEN:-} " == *" $p "* ]] && continue
		[[ -n $(ss -Htan "sport = :$p" 2>/dev/null) ]] && continue
		BENCH_TAKEN="${BENCH_TAKEN:-} $p"
		echo "$p"
		return 0
	done
	return 1
}

# Waits up to $2 seconds (default 15) for 127.0.0.1:$1 to accept connections.
bench_wait_port() {
	local port=$1 max=${2:-15} n
	for ((n = 0; n < max * 10; n++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# The target: nginx, one worker per core (NGINX_WORKERS, default auto), access log off,
# "200 ok" on every path, stub_status on /nginx_status (its request counter checks that the
# prober really reached the target). Sets NGINX_PORT, NGINX_PID, NGINX_URL.
# bench_stack_start BIN KEEP: a private stack (RabbitMQ, PostgreSQL, Redis, SMTP sink) in
# $BENCH_DIR/stack with deploy/local/up --infra-only, its stack.env sourced; STACK names it.
# At exit it is stopped (and its port reservations dropped) unless KEEP is 1.
bench_stack_start() {
	local bin=$1
	BENCH_STACK_KEEP=$2
	STACK=$BENCH_DIR/stack
	BENCH_CLEANUPS+=(bench_stack_down)
	UPMON_STATE_DIR=$STACK UPMON_BIN_DIR=$bin "$BENCH_REPO/deploy/local/up" --infra-only \
		--no-build --no-install >"$BENCH_DIR/up.log" 2>&1 ||
		{ tail -n 30 "$BENCH_DIR/up.log" >&2; bench_die "deploy/local/up failed"; }
	# shellcheck disable=SC1091
	source "$STACK/stack.env"
}

bench_stack_down() {
	if ((BENCH_STACK_KEEP)); then
		bench_note "stack kept: UPMON_STATE_DIR=$STACK $BENCH_REPO/deploy/local/down"
	elif [[ -d $STACK/run ]]; then
		UPMON_STATE_DIR=$STACK "$BENCH_REPO/deploy/local/down" >/dev/null 2>&1 ||
			bench_note "deploy/local/down failed for $STACK"
		# drop this stack's port reservations (deploy/local's registry)
		local f
		for f in "${UPMON_PORT_REGISTRY:-/tmp/upmon-ports}"/[0-9]*; do
			[[ -f $f && $(<"$f") == "$STACK" ]] && rm -f "$f"
		done
	fi
	return 0
}

bench_nginx_start() {
	local d=$BENCH_DIR/nginx
	mkdir -p "$d/logs" "$d/tmp"
	NGINX_PORT=$(bench_free_port) || bench_die "no free port"
	cat >"$d/nginx.conf" <<EOF
daemon off;
master_process on;
user root;
worker_processes ${NGINX_WORKERS:-auto};
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
events { worker_connections 8192; multi_accept on; }
http {
	access_log off;
	client_body_temp_path $d/tmp/body;
	proxy_temp_path $d/tmp/proxy;
	fastcgi_temp_path $d/tmp/fastcgi;
	uwsgi_temp_path $d/tmp/uwsgi;
	scgi_temp_path $d/tmp/scgi;
	keepalive_requests 1000000;
	server {
		listen 127.0.0.1:$NGINX_PORT backlog=4096;
		location = /nginx_status { stub_status; }
		location / { default_type text/plain; return 200 "ok\n"; }
	}
}
EOF
	nginx -p "$d" -c "$d/nginx.conf" -e "$d/logs/error.log" >"$d/logs/stdout.log" 2>&1 &
	NGINX_PID=$!
	BENCH_PIDS+=("$NGINX_PID")
	bench_wait_port "$NGINX_PORT" || { cat "$d/logs/"*.log >&2; bench_die "nginx did not start"; }
	NGINX_URL=http://127.0.0.1:$NGINX_PORT/
	[[ $(curl -fsS "$NGINX_URL") == ok ]] || bench_die "nginx does not answer ok"
}

# Requests nginx has served so far (stub_status), itself included.
bench_nginx_requests() {
	curl -fsS "http://127.0.0.1:$NGINX_PORT/nginx_status" | awk 'NR == 3 { print $3 }'
}

# Debian's prometheus-blackbox-exporter with module http_2xx (prober http, IPv4, 5 s
# timeout). Sets BLACKBOX_PORT, BLACKBOX_PID, BLACKBOX_PROBE_URL (probing $NGINX_URL).
bench_blackbox_start() {
	local d=$BENCH_DIR/blackbox
	mkdir -p "$d"
	BLACKBOX_PORT=$(bench_free_port) || bench_die "no free port"
	cat >"$d/blackbox.yml" <<EOF
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      valid_status_codes: [200]
EOF
	prometheus-blackbox-exporter --config.file="$d/blackbox.yml" \
		--web.listen-address="127.0.0.1:$BLACKBOX_PORT" --log.level=warn \
		>"$d/blackbox.log" 2>&1 &
	BLACKBOX_PID=$!
	BENCH_PIDS+=("$BLACKBOX_PID")
	bench_wait_port "$BLACKBOX_PORT" || { cat "$d/blackbox.log" >&2; bench_die "blackbox_exporter did not start"; }
	BLACKBOX_PROBE_URL="http://127.0.0.1:$BLACKBOX_PORT/probe?target=${NGINX_URL}&module=http_2xx"
	curl -fsS "$BLACKBOX_PROBE_URL" | grep -q '^probe_success 1' ||
		bench_die "blackbox_exporter's probe of $NGINX_URL did not succeed"
}

# Runs wrk against URL $1 for $2 seconds with $3 connections (BENCH_WRK_THREADS threads,
# default 1: wrk needs little CPU at these rates; 10 s timeout) and
# prints "<requests/s> <non-2xx or socket errors>".
bench_wrk() {
	local url=$1 secs=$2 conns=$3 out rate errs
	out=$(wrk -t"${BENCH_WRK_THREADS:-1}" -c"$conns" -d"${secs}s" --timeout 10s "$url" 2>&1) || { echo "$out" >&2; return 1; }
	rate=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
	errs=$(awk '/Non-2xx or 3xx responses:/ { n += $NF } /Socket errors:/ {
		for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) { sub(",", "", $i); n += $i } }
		END { print n + 0 }' <<<"$out")
	echo "${rate%.*} $errs"
}

# Measures blackbox_exporter's probes/s: wrk for $1 seconds at each connection count of $2
# (default "8 16 64"), after a 3 s warm-up. For each run, the rate is cross-checked with the
# requests nginx counted (each probe is exactly one request to the target). Prints one line
# per run to stderr, appends "<label>:<conns>c=<rate>" to BLACKBOX_RUNS ($3 = label) and keeps
# in BLACKBOX_RATE the BEST run of all calls since bench_init (the figure most favourable to
# blackbox_exporter; call it before and after the contender to bracket the machine's noise),
# with BLACKBOX_CPU_US the exporter's CPU us per probe in that run.
bench_blackbox_measure() {
	local secs=${1:-30} conns_list=${2:-8 16 64} label=${3:-} c r0 r1 res rate errs t0 t1 cpu0 cpu1 hits cpu_us
	wrk -t1 -c8 -d3s "$BLACKBOX_PROBE_URL" >/dev/null 2>&1
	for c in $conns_list; do
		r0=$(bench_nginx_requests)
		cpu0=$(bench_cpu_ticks "$BLACKBOX_PID")
		t0=$(date +%s.%N)
		res=$(bench_wrk "$BLACKBOX_PROBE_URL" "$secs" "$c") || bench_die "wrk failed"
		t1=$(date +%s.%N)
		cpu1=$(bench_cpu_ticks "$BLACKBOX_PID")
		r1=$(bench_nginx_requests)
		read -r rate errs <<<"$res"
		hits=$(awk -v a="$r0" -v b="$r1" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%d", (b - a - 1) / (t1 - t0) }')
		cpu_us=$(bench_us_per "$((cpu1 - cpu0))" "$(awk -v r="$rate" -v s="$secs" 'BEGIN { printf "%d", r * s }')")
		bench_note "blackbox_exporter: $c connections, ${secs} s: $rate probes/s (wrk), nginx saw $hits req/s, errors $errs, exporter CPU $cpu_us us/probe"
		BLACKBOX_RUNS="$BLACKBOX_RUNS ${label:+$label:}${c}c=$rate"
		if ((errs == 0 && rate > BLACKBOX_RATE)); then
			# shellcheck disable=SC2034  # read by the callers
			BLACKBOX_RATE=$rate
			BLACKBOX_CPU_US=$cpu_us
		fi
	done
	curl -fsS "$BLACKBOX_PROBE_URL" | grep -q '^probe_success 1' ||
		bench_die "blackbox_exporter's probes fail after the run"
	BLACKBOX_RUNS=${BLACKBOX_RUNS# }
}

# utime + stime of process $1 in clock ticks (0 when it is gone or $1 is empty).
bench_cpu_ticks() {
	[[ -n $1 ]] || { echo 0; return; }
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# Busy (non-idle, non-iowait) clock ticks of the whole machine.
bench_sys_ticks() {
	awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat
}

# Microseconds per item of $1 clock ticks spread over $2 items.
bench_us_per() {
	awk -v t="$1" -v n="$2" -v hz="$BENCH_CLK_TCK" 'BEGIN { if (n <= 0) print "-"; else printf "%.0f", t * 1e6 / hz / n }'
}

# VmHWM and VmRSS of process $1 in MB, as "hwm rss".
bench_mem_mb() {
	awk '/^VmHWM:/ { h = $2 } /^VmRSS:/ { r = $2 } END { printf "%.1f %.1f", h / 1024, r / 1024 }' \
		"/proc/$1/status" 2>/dev/null || echo "- -"
}

# Prints the ratio $1 / $2 with two decimals ("-" when $2 is 0).
bench_ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f", a / b }'
}

#!/usr/bin/env bash
# P1/P3: the whole check pipeline, end to end, on a private stack, and blackbox_exporter
# against the same nginx in the same run.
#
#   tests/bench/pipeline.sh [--monitors 1000,10000,100000] [--interval S] [--duration S]
#       [--warmup S] [--blackbox-duration S] [--bin DIR] [--env "N=v ..."]
#       [--probe-env "N=v ..."] [--no-probe] [--p7] [--keep]
#
# --monitors takes N or N@S (S = interval in seconds) per size; plain N uses --interval, or
# by default 10 s up to 10k monitors and 40 s above (1k/10 s = 100/s, 10k/10 s = 1,000/s,
# 100k/40 s = 2,500/s). For each size, in a fresh database and vhost of one private stack
# (deploy/local/up --infra-only in a temporary state dir): N http monitors on the local
# nginx, upmon-scheduler and upmon-probe (release build) started, a warm-up, then a window
# of --duration seconds measured from the services' /metrics, /proc and PostgreSQL:
#   checks/s          probe acks per second (upmon_probe_tasks_acked_total delta) and result
#                     rows per second (check_results.checked_at in the window)
#   lateness          publish - slot, p50/p99/p99.9 interpolated linearly inside the buckets
#                     of upmon_scheduler_lateness_seconds (window delta); ">x" = above the
#                     last finite bucket
#   e2e               checked_at - scheduled_at of the window's rows, p50/p99 (exact, SQL)
#   CPU us/check      utime+stime delta (/proc/<pid>/stat) of the probe, RabbitMQ, PostgreSQL
#                     and Redis (process trees) and of the whole machine (/proc/stat busy
#                     time, other people's processes included), per acked check; the
#                     scheduler's per published task
#   RSS               VmHWM (peak) and VmRSS (now) of scheduler and probe
#   queue             monitor_tasks ready + unacked at the start and end of the window
#                     (management API; about a second behind)
#   lost              after the window the scheduler is stopped and the probe drains the
#                     queue; then published tasks (the broker's publish_in of upmon.tasks) are compared with
#                     first-attempt rows plus dead letters, and each monitor's rows are checked
#                     for holes on its grid
#   sustained         yes when the probe acked >= 97 % of what was published in the window and
#                     the queue ended it with less than 2 s of work
# --env sets UPMON_* settings for both services (e.g. "UPMON_AMQP_QUEUE_TYPE=classic
# UPMON_AMQP_PREFETCH=8"), --probe-env for the probe only (e.g. "UPMON_PROBE_THREADS=4").
# --no-probe runs the scheduler alone (P3 without the probe's CPU; the queue just fills).
# --p7 adds a run for P7: 3,000 monitors at 10 s on upmon-test-target /slow/2000 with
# UPMON_PROBE_CONSUMERS=256 (2 threads: up to 512 checks in flight); see the probe's RSS and
# "in flight" figures. Sizes above what the machine sustains (e.g. 100000@10) measure the
# saturated throughput: acked/s is then the capacity, and the queue grows.
# blackbox_exporter is measured against the same nginx (tests/bench/lib.sh) before the stack
# starts and again after it is stopped, at 8, 16 and 64 connections; its best run is the
# reference. Prints one table; the raw figures also go to $BENCH_DIR/results.txt.
# The whole script is one block, so bash parses it before running it: editing the file
# while a run is going on cannot break that run.
{
set -euo pipefail
# shellcheck source=tests/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
	echo "usage: tests/bench/pipeline.sh [--monitors N[@S],...] [--interval S] [--duration S]" \
		"[--warmup S] [--blackbox-duration S] [--bin DIR] [--env \"N=v ...\"]" \
		"[--probe-env \"N=v ...\"] [--no-probe] [--p7] [--keep]" >&2
	exit 2
}

sizes=1000,10000,100000 interval="" duration=60 warmup=20 bb_duration=30 keep_stack=0 p7=0
SVC_ENV="" PROBE_ENV_ALL="" with_probe=1
bin=$BENCH_REPO/build/bench-rel/bin
while (($#)); do
	case $1 in
		--monitors) sizes=$2; shift 2 ;;
		--interval) interval=$2; shift 2 ;;
		--duration) duration=$2; shift 2 ;;
		--warmup) warmup=$2; shift 2 ;;
		--blackbox-duration) bb_duration=$2; shift 2 ;;
		--bin) bin=$2; shift 2 ;;
		--keep) keep_stack=1; shift ;;
		--p7) p7=1; shift ;;
		--no-probe) with_probe=0; shift ;;
		--env) SVC_ENV=$2; shift 2 ;;
		--probe-env) PROBE_ENV_ALL=$2; shift 2 ;;
		*) usage ;;
	esac
done
for b in upmonctl upmon-scheduler upmon-probe; do
	[[ -x $bin/$b ]] || bench_die "$bin/$b not built (cmake -S . -B build/bench-rel -DCMAKE_BUILD_TYPE=Release && cmake --build build/bench-rel)"
done
command -v psql >/dev/null || bench_die "psql not found"

bench_init
# shellcheck disable=SC2034  # read by bench_cleanup
((keep_stack)) && BENCH_KEEP=1
RESULTS=$BENCH_DIR/results.txt
: >"$RESULTS"

# ---- the private stack -------------------------------------------------------------------

bench_nginx_start
bench_blackbox_start
bench_blackbox_measure "$bb_duration" "8 16 64" before
bench_note "nginx on $NGINX_URL; starting a private stack in $BENCH_DIR/stack"
bench_stack_start "$bin" "$keep_stack"
MGMT=http://127.0.0.1:$PORT_RABBITMQ_MGMT

mgmt() { # METHOD PATH [JSON]
	local -a data=()
	[[ $# -ge 3 ]] && data=(-H 'content-type: application/json' -d "$3")
	curl -fsS -m 10 -u "$RMQ_USER:$RMQ_PASS" -X "$1" "${data[@]}" "$MGMT$2"
}
psql_admin() {
	PGPASSWORD=$PG_PASS psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT_PG" \
		-U "$PG_USER" -d "$PG_DB" -c "$1"
}
sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$UPMON_PG_URL" -c "$1"; }

# Pids of process $1 and all its descendants.
proc_tree() {
	ps -e -o pid=,ppid= | awk -v root="$1" '
		{ parent[$1] = $2; pids[NR] = $1 }
		END {
			keep[root] = 1; changed = 1
			while (changed) {
				changed = 0
				for (i in pids) { p = pids[i]
					if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; changed = 1 } }
			}
			for (p in keep) print p
		}'
}
# utime+stime+cutime+cstime ticks of the tree of the pid recorded in $STACK/run/$1.pid.
comp_ticks() {
	local root p sum=0 t
	root=$(cat "$STACK/run/$1.pid" 2>/dev/null) || { echo 0; return; }
	for p in $(proc_tree "$root"); do
		t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$p/stat" 2>/dev/null) || continue
		sum=$((sum + t))
	done
	echo "$sum"
}

# Value of metric $2 (summed over its series) in the scrape file $1; 0 when absent.
metric() {
	awk -v n="$2" '{ name = $1; sub(/\{.*/, "", name) } name == n { s += $NF } END { printf "%.0f\n", s }' "$1"
}
scrape() { # PORT FILE
	curl -fsS -m 5 "http://127.0.0.1:$1/metrics" >"$2.tmp" && mv "$2.tmp" "$2"
}
pscrape() { # the probe's scrape; an empty one with --no-probe ($pp of run_size is empty)
	if [[ -n $pp ]]; then scrape "$@"; else : >"$2"; fi
}
# Percentiles of histogram $3 between scrapes $1 and $2: prints "p50 p99 p99.9" in ms.
hist_pcts() {
	awk -v h="$3_bucket" '
		FNR == 1 { f++ }
		{ name = $1; sub(/\{.*/, "", name) }
		name == h {
			le = $0; sub(/.*le="/, "", le); sub(/".*/, "", le)
			if (f == 1) a[le] += $NF; else { b[le] += $NF; if (!(le in seen)) { seen[le] = 1; order[n++] = le } }
		}
		END {
			# buckets are cumulative, rendered in increasing order
			total = b["+Inf"] - a["+Inf"]
			if (total <= 0) { print "- - -"; exit }
			split("0.5 0.99 0.999", qs, " ")
			out = ""
			for (qi = 1; qi <= 3; qi++) {
				target = qs[qi] * total; prev_c = 0; prev_le = 0; r = ""
				for (i = 0; i < n; i++) {
					le = order[i]; c = b[le] - a[le]
					if (c >= target) {
						if (le == "+Inf") { r = sprintf(">%g", prev_le * 1000); break }
						frac = (c > prev_c) ? (target - prev_c) / (c - prev_c) : 1
						r = sprintf("%.2f", (prev_le + (le - prev_le) * frac) * 1000); break
					}
					prev_c = c; prev_le = le
				}
				out = out (qi > 1 ? " " : "") r
			}
			print out
		}' "$1" "$2"
}
# monitor_tasks ready+unacked (management API).
queue_depth() {
	mgmt GET "/api/queues/$VHOST/monitor_tasks" 2>/dev/null |
		grep -o '"messages":[0-9]*' | head -n 1 | cut -d: -f2 || echo "?"
}
queue_count() { # QUEUE: messages (ready + unacked)
	mgmt GET "/api/queues/$VHOST/$1" 2>/dev/null |
		grep -o '"messages":[0-9]*' | head -n 1 | cut -d: -f2 || echo "?"
}
wait_ready() { # PORT PID NAME
	local n
	for ((n = 0; n < 600; n++)); do
		curl -fsS -m 1 "http://127.0.0.1:$1/readyz" >/dev/null 2>&1 && return 0
		kill -0 "$2" 2>/dev/null || { tail -n 20 "$BENCH_DIR/$3.log" >&2; bench_die "$3 exited"; }
		sleep 0.1
	done
	tail -n 20 "$BENCH_DIR/$3.log" >&2
	bench_die "$3 not ready after 60 s"
}

# ---- one size ----------------------------------------------------------------------------

ROWS=()
run_size() { # N INTERVAL [URL [TAG]]: the probe's extra settings come from PROBE_ENV
	local n=$1 iv=$2 url=${3:-$NGINX_URL} tag=${4:-n$1} d sp pp sched_port probe_port t0 t1 dt i
	local s0 s1 p0 p1 sys0 sys1 r0 r1 pg0 pg1 rd0 rd1 q0 q1 db0 db1
	VHOST=bench-$tag
	local db
	db=bench_$(tr -c 'a-z0-9\n' '_' <<<"$tag")
	bench_note "== $n monitors at ${iv} s ($(awk -v n="$n" -v i="$iv" 'BEGIN { printf "%.0f", n / i }') checks/s expected)"
	mgmt PUT "/api/vhosts/$VHOST" '{}' >/dev/null || bench_die "cannot create vhost $VHOST"
	mgmt PUT "/api/permissions/$VHOST/$RMQ_USER" '{"configure":".*","write":".*","read":".*"}' >/dev/null ||
		bench_die "cannot grant vhost $VHOST"
	psql_admin "CREATE DATABASE $db OWNER $PG_USER" >/dev/null || bench_die "cannot create database $db"
	export UPMON_AMQP_URL="amqp://$RMQ_USER:$RMQ_PASS@127.0.0.1:$PORT_AMQP/$VHOST"
	export UPMON_PG_URL="postgresql://$PG_USER:$PG_PASS@127.0.0.1:$PORT_PG/$db"
	export UPMON_REDIS_URL="redis://127.0.0.1:$PORT_REDIS/0"
	export UPMON_PROBE_SSRF_ALLOW=127.0.0.0/8 UPMON_ADMIN_ADDR=127.0.0.1
	"$bin/upmonctl" migrate >"$BENCH_DIR/migrate-$tag.log" 2>&1 ||
		{ cat "$BENCH_DIR/migrate-$tag.log" >&2; bench_die "migrate failed"; }
	sql "INSERT INTO users (email, password_hash) VALUES ('bench@example.test', 'x')"
	d=$(date +%s.%N)
	sql "INSERT INTO monitors (owner_id, name, type, url, interval_seconds, timeout_ms, retries)
	     SELECT u.id, 'bench-' || g, 'http', '$url', $iv, 5000, 1
	     FROM users u, generate_series(1, $n) g"
	bench_note "inserted $n monitors in $(awk -v a="$d" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"

	sched_port=$(bench_free_port) probe_port=$(bench_free_port)
	# shellcheck disable=SC2086  # SVC_ENV and PROBE_ENV are lists of NAME=value words
	env UPMON_ADMIN_PORT="$sched_port" $SVC_ENV "$bin/upmon-scheduler" >"$BENCH_DIR/scheduler-$tag.log" 2>&1 &
	sp=$!
	BENCH_PIDS+=("$sp")
	pp=""
	if ((with_probe)); then
		# shellcheck disable=SC2086
		env UPMON_ADMIN_PORT="$probe_port" $SVC_ENV $PROBE_ENV_ALL ${PROBE_ENV:-} "$bin/upmon-probe" >"$BENCH_DIR/probe-$tag.log" 2>&1 &
		pp=$!
		BENCH_PIDS+=("$pp")
	fi
	wait_ready "$sched_port" "$sp" "scheduler-$tag"
	[[ -z $pp ]] || wait_ready "$probe_port" "$pp" "probe-$tag"
	bench_note "scheduler (pid $sp, admin $sched_port) and probe (pid $pp, admin $probe_port) ready; warm-up ${warmup} s"
	sleep "$warmup"

	local m=$BENCH_DIR/metrics-$tag
	scrape "$sched_port" "$m.sched.0" || bench_die "scheduler /metrics failed"
	pscrape "$probe_port" "$m.probe.0" || bench_die "probe /metrics failed"
	t0=$(date +%s.%N)
	db0=$(sql "SELECT now()")
	s0=$(bench_cpu_ticks "$sp") p0=$(bench_cpu_ticks "$pp") sys0=$(bench_sys_ticks)
	r0=$(comp_ticks rabbitmq) pg0=$(comp_ticks postgres) rd0=$(comp_ticks redis)
	q0=$(queue_depth)
	# sample the probe's checks in flight once a second during the window
	local infl_max=0 infl_sum=0 infl_n=0 v end
	end=$((SECONDS + duration))
	while ((SECONDS < end)); do
		sleep 1
		if pscrape "$probe_port" "$m.probe.s"; then
			v=$(metric "$m.probe.s" upmon_probe_inflight)
			infl_sum=$((infl_sum + v)) infl_n=$((infl_n + 1))
			((v > infl_max)) && infl_max=$v
		fi
	done
	q1=$(queue_depth)
	s1=$(bench_cpu_ticks "$sp") p1=$(bench_cpu_ticks "$pp") sys1=$(bench_sys_ticks)
	r1=$(comp_ticks rabbitmq) pg1=$(comp_ticks postgres) rd1=$(comp_ticks redis)
	db1=$(sql "SELECT now()")
	t1=$(date +%s.%N)
	scrape "$sched_port" "$m.sched.1" || bench_die "scheduler /metrics failed"
	pscrape "$probe_port" "$m.probe.1" || bench_die "probe /metrics failed"
	read -r s_hwm s_rss <<<"$(bench_mem_mb "$sp")"
	read -r p_hwm p_rss <<<"$(bench_mem_mb "$pp")"
	dt=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')

	local acked published checks rows lat e2e
	acked=$(($(metric "$m.probe.1" upmon_probe_tasks_acked_total) - $(metric "$m.probe.0" upmon_probe_tasks_acked_total)))
	published=$(($(metric "$m.sched.1" upmon_scheduler_tasks_published_total) - $(metric "$m.sched.0" upmon_scheduler_tasks_published_total)))
	checks=$(($(metric "$m.probe.1" upmon_probe_checks_total) - $(metric "$m.probe.0" upmon_probe_checks_total)))
	rows=$(sql "SELECT count(*) FROM check_results WHERE checked_at >= '$db0' AND checked_at < '$db1'")
	lat=$(hist_pcts "$m.sched.0" "$m.sched.1" upmon_scheduler_lateness_seconds)
	e2e=$(sql "SELECT coalesce(round((percentile_cont(0.5) WITHIN GROUP (ORDER BY x))::numeric, 1)::text, '-')
	             || ' ' || coalesce(round((percentile_cont(0.99) WITHIN GROUP (ORDER BY x))::numeric, 1)::text, '-')
	           FROM (SELECT extract(epoch FROM checked_at - scheduled_at) * 1000 AS x FROM check_results
	                 WHERE checked_at >= '$db0' AND checked_at < '$db1') s")
	local chk cmt batch
	chk=$(hist_pcts "$m.probe.0" "$m.probe.1" upmon_probe_check_seconds)
	cmt=$(hist_pcts "$m.probe.0" "$m.probe.1" upmon_probe_commit_seconds)
	batch=$(awk -v s="$(($(metric "$m.probe.1" upmon_probe_commit_batch_size_sum) - $(metric "$m.probe.0" upmon_probe_commit_batch_size_sum)))" \
		-v c="$(($(metric "$m.probe.1" upmon_probe_commit_batch_size_count) - $(metric "$m.probe.0" upmon_probe_commit_batch_size_count)))" \
		'BEGIN { if (c > 0) printf "%.1f (%d commits)", s / c, c; else print "-" }')
	local load_line
	load_line=$(grep -m1 'msg="leader:' "$BENCH_DIR/scheduler-$tag.log" | sed 's/.*msg="//; s/"$//' || true)

	# Drain: stop the scheduler (it waits for its confirms), let the probe empty the queue.
	# The scheduler's last scrape races with its exit, so the published count of record is
	# the broker's: messages published into exchange upmon.tasks (publish_in), which only the
	# scheduler publishes to (and RabbitMQ's dead-lettering from the retry queues, unused
	# here: every check succeeds, see "failed rows").
	local pub_final="?" pub_sched left dead holes r1st missed fails
	cp "$m.sched.1" "$m.sched.2"
	kill -TERM "$sp" 2>/dev/null || true
	for ((i = 0; i < 200; i++)); do
		scrape "$sched_port" "$m.sched.2" 2>/dev/null || true
		kill -0 "$sp" 2>/dev/null || break
		sleep 0.02
	done
	bench_stop_pid "$sp"
	pub_sched=$(($(metric "$m.sched.2" upmon_scheduler_tasks_published_total) - $(metric "$m.sched.2" upmon_scheduler_tasks_republished_total)))
	for ((i = 0; i < 60; i++)); do
		[[ -n $pp ]] || break
		pscrape "$probe_port" "$m.probe.2" || break
		[[ $(metric "$m.probe.2" upmon_probe_inflight) == 0 ]] && [[ $(queue_depth) == 0 ]] && break
		sleep 0.5
	done
	[[ -z $pp ]] || bench_stop_pid "$pp"
	# The management API's counters lag (collect_statistics_interval 1 s here) and the
	# probe's unacked deliveries go back to the queue when it disconnects: read the depth
	# until two reads 2 s apart agree (at most ~30 s).
	local prev=""
	for ((i = 0; i < 15; i++)); do
		sleep 2
		left=$(queue_depth)
		[[ $left == "$prev" ]] && break
		prev=$left
	done
	dead=$(queue_count monitor_tasks_dead)
	pub_final=$(mgmt GET "/api/exchanges/$VHOST/upmon.tasks" 2>/dev/null |
		grep -o '"publish_in":[0-9]*' | head -n 1 | cut -d: -f2) || pub_final="?"
	[[ -n $pub_final ]] || pub_final="?"
	r1st=$(sql "SELECT count(*) FROM check_results WHERE attempt = 1")
	fails=$(sql "SELECT count(*) FROM check_results WHERE NOT ok")
	holes=$(sql "SELECT coalesce(sum(expected - got), 0) FROM (
		SELECT (extract(epoch FROM max(r.scheduled_at) - min(r.scheduled_at))::bigint
		        / min(m.interval_seconds)) + 1 AS expected, count(DISTINCT r.scheduled_at) AS got
		FROM check_results r JOIN monitors m ON m.id = r.monitor_id GROUP BY r.monitor_id) s")
	missed=$(metric "$m.sched.2" upmon_scheduler_missed_slots_total)
	local lost="?"
	# tasks still queued (a saturated run that could not drain in 60 s) are not lost
	[[ $pub_final != "?" && $dead != "?" && $left != "?" ]] && lost=$((pub_final - r1st - dead - left))
	[[ -n $pp ]] || lost="-"	# nothing consumed: the two broker figures lag differently

	local cps rps pcpu scpu rcpu pgcpu rdcpu syscpu
	cps=$(awk -v a="$acked" -v t="$dt" 'BEGIN { printf "%.0f", a / t }')
	rps=$(awk -v a="$rows" -v t="$dt" 'BEGIN { printf "%.0f", a / t }')
	pcpu=$(bench_us_per "$((p1 - p0))" "$acked")
	scpu=$(bench_us_per "$((s1 - s0))" "$published")	# per published task
	rcpu=$(bench_us_per "$((r1 - r0))" "$acked")
	pgcpu=$(bench_us_per "$((pg1 - pg0))" "$acked")
	rdcpu=$(bench_us_per "$((rd1 - rd0))" "$acked")
	syscpu=$(bench_us_per "$((sys1 - sys0))" "$acked")
	local busy
	busy=$(awk -v t="$((sys1 - sys0))" -v hz="$BENCH_CLK_TCK" -v d="$dt" -v c="$(nproc)" \
		'BEGIN { printf "%.0f", t / hz / d / c * 100 }')
	{
		echo "$tag: $n monitors at $iv s on $url, window ${dt}s, settings: ${SVC_ENV:-} probe: ${PROBE_ENV_ALL:-} ${PROBE_ENV:-}"
		echo "  published $published ($(awk -v a="$published" -v t="$dt" 'BEGIN { printf "%.0f", a / t }')/s) acked $acked ($cps/s) checks $checks rows $rows ($rps/s)"
		echo "  lateness ms p50/p99/p99.9 (bucket-interpolated): $lat; e2e checked-scheduled ms p50/p99: $e2e"
		echo "  probe: check ms p50/p99/p99.9 $chk; commit ms p50/p99/p99.9 $cmt; mean batch $batch"
		echo "  cpu us per acked check: probe $pcpu, scheduler $scpu per published task, rabbitmq $rcpu postgres $pgcpu redis $rdcpu machine $syscpu (machine busy ${busy}% of $(nproc) cores)"
		echo "  rss MB (hwm/now): scheduler $s_hwm/$s_rss probe $p_hwm/$p_rss; probe checks in flight avg $((infl_n ? infl_sum / infl_n : 0)) max $infl_max"
		echo "  queue monitor_tasks at window start/end: $q0/$q1; left after the drain and the probe's stop: $left; dead: $dead"
		echo "  published into upmon.tasks (broker) $pub_final (scheduler's last scrape: $pub_sched excl. republished), first-attempt rows $r1st, failed rows $fails, lost = $lost; grid holes $holes; missed slots $missed"
		echo "  scheduler: $load_line"
	} | tee -a "$RESULTS" >&2
	# Sustained: the probe acked what was published (>= 97 %) and the queue ends the window
	# with less than 2 s of work (the management API's figure lags by about a second).
	local pps kept=no
	pps=$(awk -v a="$published" -v t="$dt" 'BEGIN { printf "%.0f", a / t }')
	if [[ $q1 =~ ^[0-9]+$ ]] && ((acked * 100 >= published * 97 && q1 <= 2 * pps)); then
		kept=yes
		BEST_SUSTAINED=$((cps > ${BEST_SUSTAINED:-0} ? cps : ${BEST_SUSTAINED:-0}))
	fi
	ROWS+=("$(printf '%-9s %4ss %7s %7s %7s %4s  %-20s %-12s %6s %6s %6s %6s %6s  %-11s %-11s %11s %5s %5s' \
		"$tag" "$iv" "$pps" "$cps" "$rps" "$kept" \
		"$(tr ' ' '/' <<<"$lat")" "$(tr ' ' '/' <<<"$e2e")" "$pcpu" "$scpu" "$rcpu" "$pgcpu" "$syscpu" \
		"$s_hwm/$s_rss" "$p_hwm/$p_rss" "$q0/$q1" "$lost" "$holes")")
	BEST_CPS=$((cps > ${BEST_CPS:-0} ? cps : ${BEST_CPS:-0}))

	mgmt DELETE "/api/vhosts/$VHOST" >/dev/null 2>&1 || true
	psql_admin "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
}

IFS=, read -r -a size_list <<<"$sizes"
for s in "${size_list[@]}"; do
	n=${s%@*}
	if [[ $s == *@* ]]; then
		iv=${s#*@}
	elif [[ -n $interval ]]; then
		iv=$interval
	elif ((n > 10000)); then
		iv=40
	else
		iv=10
	fi
	run_size "$n" "$iv"
done

# P7: the probe's memory with 512 checks in flight: 3,000 monitors at 10 s on a target that
# answers after 2 s (upmon-test-target /slow/2000), 2 threads x 256 consumer channels.
if ((p7)); then
	[[ -x $bin/upmon-test-target ]] || bench_die "$bin/upmon-test-target not built"
	"$bin/upmon-test-target" --listen 127.0.0.1:0 --port-file "$BENCH_DIR/target.port" \
		--threads 1024 >"$BENCH_DIR/target.log" 2>&1 &
	BENCH_PIDS+=("$!")
	for ((i = 0; i < 100; i++)); do [[ -s $BENCH_DIR/target.port ]] && break; sleep 0.1; done
	[[ -s $BENCH_DIR/target.port ]] || bench_die "upmon-test-target did not start"
	slow_url="http://127.0.0.1:$(awk 'NR == 1 { print $2 }' "$BENCH_DIR/target.port")/slow/2000"
	PROBE_ENV="UPMON_PROBE_THREADS=2 UPMON_PROBE_CONSUMERS=256" run_size 3000 10 "$slow_url" p7-slow2s
fi

# ---- the reference, same nginx, same run, stack stopped -------------------------------------

stack_down
bench_blackbox_measure "$bb_duration" "8 16 64" after

{
	printf '\nupmon pipeline (%s s window after %s s warm-up per size), blackbox_exporter same nginx, same run\n' "$duration" "$warmup"
	printf '%-9s %5s %7s %7s %7s %4s  %-20s %-12s %6s %6s %6s %6s %6s  %-11s %-11s %11s %5s %5s\n' \
		run ivl pub/s acked/s rows/s sust "lateness ms p50/99/99.9" "e2e ms p50/99" \
		"probe" "sched*" "rmq" "pg" "machine" "sched MB" "probe MB" "queue" lost holes
	printf '%-9s %5s %7s %7s %7s %4s  %-20s %-12s %6s %6s %6s %6s %6s  %-11s %-11s %11s %5s %5s\n' \
		"" "" "" "" "" "" "(bucket-interp.)" "" "us/chk" "us/chk" "us/chk" "us/chk" "us/chk" "hwm/now" "hwm/now" "beg/end" "" ""
	for r in "${ROWS[@]}"; do echo "$r"; done
	printf '\nblackbox_exporter: best %s probes/s (%s, %s s each; exporter %s us CPU/probe)\n' \
		"$BLACKBOX_RATE" "$BLACKBOX_RUNS" "$bb_duration" "$BLACKBOX_CPU_US"
	printf 'upmon best sustained %s checks/s: ratio %s x blackbox; best acked/s of any run %s: ratio %s x\n' \
		"${BEST_SUSTAINED:-0}" "$(bench_ratio "${BEST_SUSTAINED:-0}" "$BLACKBOX_RATE")" \
		"${BEST_CPS:-0}" "$(bench_ratio "${BEST_CPS:-0}" "$BLACKBOX_RATE")"
	printf 'CPU columns: us per acked check (sched*: per published task); machine = all busy CPU of the box\n'
	printf '(P1: >= 2,500/s sustained, nothing lost, >= 1.0x blackbox; upmon only checks what is due,\n'
	printf ' so a sustained figure below the saturation point is the offered load, not the capacity)\n'
} | tee -a "$RESULTS"
exit
}

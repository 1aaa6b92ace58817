#!/usr/bin/env bash
# P2: the probe engine alone (upmon-bench-engine: no broker, no database, a fresh connection
# per check) against blackbox_exporter, both probing the same private nginx in the same run,
# one after the other (never at the same time: they would share the 2 cores): blackbox_exporter
# before and after the engine, and its best run of all is the reference (the figure most
# favourable to it).
#
#   tests/bench/engine.sh [--duration S] [--configs "1x64 1x256 2x256"] [--bin DIR]
#
# A config is <threads>x<checks in flight per thread>. Prints each engine figure, the best,
# blackbox_exporter's best and the ratio (target: >= 3x).
# The whole script is one block, so bash parses it before running it: editing the file
# while a run is going on cannot break that run.
{
set -euo pipefail
# shellcheck source=tests/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

duration=20 configs="1x64 1x256 2x128 2x256" bin=$BENCH_REPO/build/bench-rel/bin
while (($#)); do
	case $1 in
		--duration) duration=$2; shift 2 ;;
		--configs) configs=$2; shift 2 ;;
		--bin) bin=$2; shift 2 ;;
		*) echo "usage: tests/bench/engine.sh [--duration S] [--configs \"1x64 2x256\"] [--bin DIR]" >&2; exit 2 ;;
	esac
done
[[ -x $bin/upmon-bench-engine ]] || bench_die "$bin/upmon-bench-engine not built (cmake --build build/bench-rel)"

bench_init
bench_nginx_start
bench_blackbox_start
bench_blackbox_measure "$duration" "8 16 64" before

best=0 best_line=""
for cfg in $configs; do
	threads=${cfg%x*} inflight=${cfg#*x}
	r0=$(bench_nginx_requests)
	line=$("$bin/upmon-bench-engine" --url "$NGINX_URL" --threads "$threads" \
		--inflight "$inflight" --duration "$duration") || bench_die "upmon-bench-engine failed: $line"
	r1=$(bench_nginx_requests)
	rate=$(sed -n 's/.*checks_per_s=\([0-9]*\).*/\1/p' <<<"$line")
	bench_note "engine ${threads} thread(s) x ${inflight} in flight: $line (nginx saw $((r1 - r0)) requests incl. warm-up)"
	if ((rate > best)); then
		best=$rate best_line="$cfg: $line"
	fi
done

bench_blackbox_measure "$duration" "8 16 64" after

printf '\nP2 probe engine vs blackbox_exporter (same nginx, same run, %s s per figure)\n' "$duration"
printf '  blackbox_exporter best      %8s probes/s  (%s; exporter %s us CPU/probe)\n' \
	"$BLACKBOX_RATE" "$BLACKBOX_RUNS" "$BLACKBOX_CPU_US"
printf '  upmon engine best           %8s checks/s  (%s)\n' "$best" "$best_line"
printf '  ratio engine / blackbox     %8s x  (target >= 3x)\n' "$(bench_ratio "$best" "$BLACKBOX_RATE")"
exit
}

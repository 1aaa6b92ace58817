#!/usr/bin/env bash
# The reference peer alone: Debian's prometheus-blackbox-exporter probing a private nginx
# ("200 ok"), driven by wrk. Prints probes/s per connection count and the best.
#
#   tests/bench/blackbox.sh [--duration S] [--connections "16 64"]
# The whole script is one block, so bash parses it before running it: editing the file
# while a run is going on cannot break that run.
{
set -euo pipefail
# shellcheck source=tests/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

duration=30 conns="8 16 64"
while (($#)); do
	case $1 in
		--duration) duration=$2; shift 2 ;;
		--connections) conns=$2; shift 2 ;;
		*) echo "usage: tests/bench/blackbox.sh [--duration S] [--connections \"8 16 64\"]" >&2; exit 2 ;;
	esac
done

bench_init
bench_nginx_start
bench_blackbox_start
bench_blackbox_measure "$duration" "$conns"
printf 'blackbox_exporter: best %s probes/s (%s; %s s each; exporter CPU %s us/probe)\n' \
	"$BLACKBOX_RATE" "$BLACKBOX_RUNS" "$duration" "$BLACKBOX_CPU_US"
exit
}

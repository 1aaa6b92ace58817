#!/usr/bin/env bash
# Runs libFuzzer targets on their seed corpora (tests/fuzz/README.md).
#
#   tests/fuzz/run.sh [--seconds N] [--bin-dir DIR] [--jobs J] [target...]
#     --seconds N    how long each target runs (default 600: the R7 run)
#     --bin-dir DIR  where the fuzz_* executables are (default build/fuzz/bin)
#     target         fuzz_msg_task, fuzz_msg_event, fuzz_api_body, fuzz_api_request
#                    (default: all of them, one after the other)
#
# Each run works on a copy of tests/fuzz/corpus/<target> in a temporary directory (the repo
# never grows) and prints execs, exec/s, coverage, corpus size and crashes. A crash (or leak,
# timeout, out-of-memory) makes the script exit non-zero; the reproducer is kept as
# <tmp>/<target>/crash-* (path printed) and copied to $UPMON_FUZZ_ARTIFACTS if that is set.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
seconds=600
bindir=$repo/build/fuzz/bin
targets=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --bin-dir) bindir=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    -*) echo "run.sh: error: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if ((${#targets[@]} == 0)); then
  targets=(fuzz_msg_task fuzz_msg_event fuzz_api_body fuzz_api_request)
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

work=$(mktemp -d "${TMPDIR:-/tmp}/upmon-fuzz.XXXXXX")
failed=0
for t in "${targets[@]}"; do
  bin=$bindir/$t
  if [[ ! -x $bin ]]; then
    echo "run.sh: error: $bin not built (cmake --preset fuzz && cmake --build --preset fuzz)" >&2
    failed=1
    continue
  fi
  dir=$work/$t
  mkdir -p "$dir/corpus" "$dir/art"
  if [[ -d $here/corpus/$t ]]; then
    cp "$here/corpus/$t"/* "$dir/corpus/" 2>/dev/null || true
  fi
  # a dictionary helps the JSON targets get past the tokenizer
  dict=()
  [[ -f $here/$t.dict ]] && dict=(-dict="$here/$t.dict")
  rc=0
  "$bin" "$dir/corpus" "${dict[@]}" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=512 \
    -max_len=8192 -print_final_stats=1 -artifact_prefix="$dir/art/" >"$dir/log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -n 1)
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$dir/log" | tail -n 1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$dir/log" | tail -n 1 | cut -d' ' -f2)
  ncorp=$(find "$dir/corpus" -type f | wc -l)
  crashes=$(find "$dir/art" -type f | wc -l)
  printf '%-18s %5ss  execs %-10s exec/s %-7s cov %-6s ft %-6s corpus %-5s crashes %s\n' \
    "$t" "$seconds" "${execs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" "$ncorp" "$crashes"
  if ((rc != 0 || crashes > 0)); then
    failed=1
    echo "run.sh: $t FAILED (exit $rc); log $dir/log" >&2
    grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$dir/log" | head -n 5 >&2
    for f in "$dir"/art/*; do
      [[ -e $f ]] || continue
      echo "run.sh: reproducer $f (reproduce: $bin $f)" >&2
      if [[ -n ${UPMON_FUZZ_ARTIFACTS:-} ]]; then
        mkdir -p "$UPMON_FUZZ_ARTIFACTS" && cp "$f" "$UPMON_FUZZ_ARTIFACTS/"
      fi
    done
  fi
done
if ((failed)); then
  echo "run.sh: logs and reproducers kept in $work" >&2
  exit 1
fi
rm -rf "$work"
exit 0

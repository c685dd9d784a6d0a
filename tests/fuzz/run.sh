#!/usr/bin/env bash
# Runs every libFuzzer target of a fuzz-preset build for a bounded time and prints a table.
#
# usage: tests/fuzz/run.sh BUILD_DIR SECONDS [--merge] [TARGET...]
#   BUILD_DIR  a build configured with the fuzz preset (TW_FUZZ=ON), targets already built
#   SECONDS    -max_total_time per target
#   --merge    afterwards, merge new coverage-increasing inputs into tests/fuzz/corpus/<target>
#              (otherwise the fuzzer works on a temporary copy and the repo is not modified)
#   TARGET     fuzz_<name> to run (default: all)
# Crash inputs are kept under BUILD_DIR/fuzz-artifacts/<target>/, logs beside them.
# Exit status: 0 when every target ran its time without a finding, 1 otherwise.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ $# -lt 2 ]; then
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
build="$(cd "$1" && pwd)"
secs="$2"
shift 2
merge=0
targets=()
for a in "$@"; do
  case "$a" in
    --merge) merge=1 ;;
    *) targets+=("$a") ;;
  esac
done
if [ ${#targets[@]} -eq 0 ]; then
  for d in "$here"/corpus/fuzz_*; do targets+=("$(basename "$d")"); done
fi

# UBSan in the fuzz preset is recoverable; make every report a finding.
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
status=0
rows=()
for t in "${targets[@]}"; do
  exe="$build/tests/fuzz/$t"
  art="$build/fuzz-artifacts/$t"
  mkdir -p "$art"
  if [ ! -x "$exe" ]; then
    rows+=("$(printf '%-22s %12s %8s %8s  %s' "$t" - - - "not built")")
    status=1
    continue
  fi
  work="$tmp/$t"
  mkdir -p "$work"
  cp -r "$here/corpus/$t/." "$work/" 2>/dev/null || true
  log="$art/run.log"
  "$exe" "$work" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=25 -print_final_stats=1 \
    -artifact_prefix="$art/" >"$log" 2>&1
  rc=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)"
  corp="$(ls "$work" | wc -l)"
  if [ $rc -eq 0 ]; then
    result="ok"
  else
    result="FINDING (rc $rc): $(ls -t "$art" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' | head -1) see $log"
    status=1
  fi
  rows+=("$(printf '%-22s %12s %8s %8s  %s' "$t" "${execs:-?}" "${cov:-?}" "$corp" "$result")")
  if [ $merge -eq 1 ] && [ $rc -eq 0 ]; then
    "$exe" -merge=1 "$here/corpus/$t" "$work" >"$art/merge.log" 2>&1 ||
      echo "merge of $t failed: see $art/merge.log" >&2
  fi
done

printf '%-22s %12s %8s %8s  %s\n' target execs cov corpus result
for r in "${rows[@]}"; do echo "$r"; done
exit $status

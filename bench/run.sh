#!/usr/bin/env bash
# Every benchmark scenario that exists, one after the other (each is its own script and
# measures its own baseline in the same run). Not a test: numbers go to bench/RESULTS.md and
# bench/results/. Usage: bench/run.sh   (RUNS/SECS etc. are passed through the environment)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
release=${RELEASE_BUILD:-$root/build/bench}
status=0

run() {
  echo "== $*"
  "$@" || { echo "== FAILED ($?): $*" >&2; status=1; }
}

run bash "$root/bench/transport/run.sh"
# Component benchmarks build their own targets in a Release tree.
if [ -x "$root/bench/vault/run.sh" ] || [ -f "$root/bench/vault/run.sh" ]; then
  run bash "$root/bench/vault/run.sh" "$release"
fi
if [ -f "$root/bench/auth/run.sh" ]; then
  ninja -C "$release" bench_auth >/dev/null 2>&1 || true
  run sh "$root/bench/auth/run.sh" "$release"
fi
if [ -f "$root/bench/risk/run.sh" ]; then
  ninja -C "$release" bench_risk >/dev/null 2>&1 || true
  run bash "$root/bench/risk/run.sh" "$release"
elif [ -f "$root/bench/risk/bench_risk.c" ]; then
  run ninja -C "$release" bench_risk
  run "$release/risk/bench_risk"
fi
exit $status

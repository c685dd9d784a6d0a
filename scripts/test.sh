#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds every preset a person runs (debug,
# asan+ubsan, release, fuzz) and the benchmarks, starts a throw-away PostgreSQL and Redis on
# loopback in a temp dir, runs ctest on debug, asan and release, smoke-tests README's first
# command, runs the quality gates and a bounded fuzz run, and stops what it started.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
scripts/deps.sh

work="$(mktemp -d /tmp/tw-test.XXXXXX)"
chmod 755 "$work" # the postgres user runs the test database in here
pg_port=$(scripts/free-port.sh)
redis_port=$(scripts/free-port.sh)
cleanup() {
  scripts/pg-test-server.sh stop "$work/pg" >/dev/null 2>&1 || true
  if [ -f "$work/redis.pid" ]; then kill "$(cat "$work/redis.pid")" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

export TW_TEST_PG_URL
TW_TEST_PG_URL="$(scripts/pg-test-server.sh start "$work/pg" "$pg_port")"
redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$work" --save '' --appendonly no \
  --daemonize yes --pidfile "$work/redis.pid" --logfile "$work/redis.log"
export TW_TEST_REDIS_URL="redis://127.0.0.1:$redis_port/0"
export TW_TEST_PG_DIR="$work/pg"

quality=0

jobs=$(nproc)
for preset in debug asan; do
  echo "== build: $preset"
  cmake --preset "$preset" >/dev/null
  cmake --build "build/$preset" -j "$jobs"
  echo "== test: $preset"
  ctest --preset "$preset" -j "$jobs" --timeout 300
  if [ "$preset" = debug ]; then
    scripts/check-quality.sh "build/$preset" || quality=1
  fi
done
# README's first command builds the release preset (-O3, warnings are errors, tests included):
# build it, run its tests but the slow memcheck/fault/soak runs the debug build already did, then
# start README's first command and run its "Try it" block against it (scripts/smoke.sh).
echo "== build: release"
cmake --preset release >/dev/null
cmake --build build/release -j "$jobs"
echo "== test: release"
ctest --test-dir build/release -j "$jobs" --timeout 300 --output-on-failure -LE 'valgrind|fault|soak'
echo "== smoke: README's first command and its Try it block"
scripts/smoke.sh
echo "== build: bench (bench/run.sh build, from a fresh build dir)"
bench/run.sh build
# A short bounded fuzz run of every parser target (clang + libFuzzer; the fuzz preset).
echo "== fuzz: ${TW_FUZZ_SECONDS:-30} s per target"
cmake --preset fuzz >/dev/null
cmake --build build/fuzz -j "$jobs"
tests/fuzz/run.sh build/fuzz "${TW_FUZZ_SECONDS:-30}"

if [ "$quality" -ne 0 ]; then
  echo "quality gates failed (formatting, banned functions, cppcheck or clang-tidy): see above"
  exit 1
fi

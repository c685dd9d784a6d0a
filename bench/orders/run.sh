#!/usr/bin/env bash
# Auth'd read (Risk/GetState vs Health/Check) and the order path (SubmitOrder on SQLite and
# PostgreSQL vs the floor: floor.sql on pgbench, sqlite_floor), Release build in $1 (default
# build/bench). Extra args go to bench.py of the order scenario (e.g. --count 5000). Needs
# h2load, pgbench, PostgreSQL.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-${BUILD_DIR:-$root/build/bench}}
shift || true
py=${PYTHON:-/usr/bin/python3}
for tool in h2load pgbench taskset psql; do
  command -v "$tool" >/dev/null || { echo "bench/orders: missing $tool" >&2; exit 2; }
done
ninja -C "$build" tradewinkd bench_orders sqlite_floor >"$build.orders-build.log" 2>&1 ||
  { tail -30 "$build.orders-build.log" >&2; exit 2; }
"$py" "$root/bench/orders/bench.py" --scenario authread --server "$build/server/tradewinkd"
"$py" "$root/bench/orders/bench.py" --scenario orders --server "$build/server/tradewinkd" \
  --bench-orders "$build/bench/bench_orders" "$@"

#!/usr/bin/env bash
# Scaling curve of the order path (1, 2, 4, 8, 16, 64 clients) on SQLite and PostgreSQL, with
# the pgbench curve on PostgreSQL. Release build in $1 (default build/bench).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-${BUILD_DIR:-$root/build/bench}}
shift || true
ninja -C "$build" tradewinkd bench_orders >"$build.scaling-build.log" 2>&1 ||
  { tail -30 "$build.scaling-build.log" >&2; exit 2; }
exec "${PYTHON:-/usr/bin/python3}" "$root/bench/orders/bench.py" --scenario scaling \
  --server "$build/server/tradewinkd" --bench-orders "$build/bench/bench_orders" "$@"

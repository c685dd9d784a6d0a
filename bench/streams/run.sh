#!/usr/bin/env bash
# 1,000 StreamOrderUpdates subscribers, one order per user: fan-out latency and server RSS.
# Release build in $1 (default build/bench). Needs python3-grpcio.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-${BUILD_DIR:-$root/build/bench}}
shift || true
ninja -C "$build" tradewinkd >"$build.streams-build.log" 2>&1 ||
  { tail -30 "$build.streams-build.log" >&2; exit 2; }
exec "${PYTHON:-/usr/bin/python3}" "$root/bench/streams/bench.py" \
  --server "$build/server/tradewinkd" "$@"

#!/usr/bin/env bash
# Transport benchmark: Health/Check unary QPS and p50/p99, tradewinkd vs a C++ async gRPC
# server (bench_cpp_health), same run, alternating fresh processes, pinned (server core 0 with
# one worker, h2load core 1), loopback only. Builds Release in build/bench, writes raw JSON to
# bench/results/ and regenerates the transport section of bench/RESULTS.md.
# Usage: bench/transport/run.sh [extra bench.py args, e.g. --runs 5 --requests 200000]
# Needs: nghttp2-client (h2load), libgrpc++-dev, protobuf-compiler-grpc, grpc-proto, util-linux.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-$root/build/bench}
py=${PYTHON:-/usr/bin/python3}

for tool in h2load taskset protoc grpc_cpp_plugin; do
  command -v "$tool" >/dev/null || { echo "bench/transport: missing $tool" >&2; exit 2; }
done
if [ "$(nproc)" -lt 2 ]; then
  echo "bench/transport: needs 2 cores (server and load generator pinned apart)" >&2
  exit 2
fi
# Warnings are gated by the CI builds (debug, asan); a benchmark build must not stop on an
# -O3-only warning, so -Werror is off here.
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTW_BUILD_TESTS=OFF \
  -DTW_WERROR=OFF >"$build.configure.log" 2>&1 ||
  { tail -20 "$build.configure.log" >&2; exit 2; }
ninja -C "$build" tradewinkd bench_cpp_health >"$build.build.log" 2>&1 ||
  { tail -30 "$build.build.log" >&2; exit 2; }
exec "$py" "$root/bench/transport/bench.py" \
  --ours "$build/server/tradewinkd" --cpp "$build/bench/bench_cpp_health" \
  --out "$root/bench/results" --results-md "$root/bench/RESULTS.md" "$@"

#!/usr/bin/env bash
# Install every Debian package tradewinkd needs to build, run and test (idempotent).
# Usage: scripts/deps.sh            (as root, or with sudo available)
set -euo pipefail

PKGS=(
  # build
  cmake ninja-build pkg-config gcc g++ clang clang-format clang-tidy cppcheck
  libclang-rt-14-dev
  # libraries
  libgrpc-dev libgrpc++-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
  protobuf-compiler-grpc grpc-proto libssl-dev libpq-dev libsqlite3-dev libhiredis-dev
  libcurl4-openssl-dev libjansson-dev libwebsockets-dev libmicrohttpd-dev libcmocka-dev zlib1g-dev
  # sd_notify (Type=notify readiness, STOPPING=1, watchdog)
  libsystemd-dev
  # servers and clients the tests start or talk through
  postgresql redis-server sqlite3 openssl ca-certificates stunnel4
  python3-grpcio python3-cryptography python3-jwt python3-protobuf python3-h2 nghttp2-client
  curl procps iproute2 systemd postgresql-client util-linux
  # the HTTP/2 front of the supported deployment (deploy/haproxy/) and the raw-frame attack
  # tests run through it (tests/integration/test_attack_*)
  haproxy python3-h2
  # memcheck run of the integration suite (tests/valgrind)
  valgrind
  # promtool (check metrics / rules) and the YAML reader of tests/deploy/observability_check.py.
  # The package also ships a Prometheus server unit; CI machines need not run it.
  prometheus python3-yaml
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ "${#missing[@]}" -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  # With recommends, as on the machines these scripts were developed on (clang's llvm-14-dev,
  # postgresql's contrib tools...): a leaner install could pass here and fail on a clean one.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v npm >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi
# buf (lint, curl) comes from the npm registry, pinned by proto/package-lock.json.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -x "$here/proto/node_modules/.bin/buf" ]; then
  (cd "$here/proto" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

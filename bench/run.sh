#!/usr/bin/env bash
# The whole benchmark suite, one command: builds Release (build/bench, or $RELEASE_BUILD),
# then runs every scenario bounded in count and time on 127.0.0.1, each with its baseline
# measured in the same invocation, and regenerates bench/RESULTS.md (one section per scenario
# plus the summary table at the top) with raw JSON/text in bench/results/.
#   1 transport   Health/Check vs a C++ async gRPC server          bench/transport/run.sh
#   2 authread    Risk/GetState with a cached token vs scenario 1  bench/orders/run.sh
#   3 orders      SubmitOrder SQLite/PostgreSQL vs the floor        bench/orders/run.sh
#   4 auth        JWT verify vs openssl speed                       bench/auth/run.sh
#   5 vault       PBKDF2 vs openssl kdf, Fernet vs cryptography     bench/vault/run.sh
#   6 risk        decide/s on a realistic snapshot                  bench_risk
#   7 streams     1,000 StreamOrderUpdates subscribers              bench/streams/run.sh
#   8 scaling     order path at 1..64 clients                       bench/scaling/run.sh
# Usage: bench/run.sh [scenario ...]   (default: all; `build` only builds). Not a test; exits 1 if
# a scenario failed, 2 if the build failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
release=${RELEASE_BUILD:-$root/build/bench}
py=${PYTHON:-/usr/bin/python3}
results=$root/bench/results
mkdir -p "$results"
status=0
want=${*:-transport authread orders auth vault risk streams scaling}

run() {
  echo "== $*"
  "$@" || { echo "== FAILED ($?): $*" >&2; status=1; }
}
on() { case " $want " in *" $1 "*) return 0 ;; esac; return 1; }

# Component output (plain text) kept in results/ and shown in RESULTS.md.
component() {
  local name=$1
  shift
  local out
  out=$results/$name-$(date -u +%Y%m%dT%H%M%SZ).txt
  echo "== $name: $*"
  "$@" >"$out" 2>&1 || { echo "== FAILED ($?): $name" >&2; status=1; }
  cat "$out"
  "$py" - "$root/bench/RESULTS.md" "$name" "$out" "$*" <<'PY'
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(sys.argv[1]), "orders"))
import twbench as tb
md, name, out, cmd = sys.argv[1:]
rel = os.path.relpath(out, tb.ROOT)
body = "## Component: %s\n\nCommand: `%s`. Output (also in `%s`):\n\n```\n%s```\n" % (
    name, cmd.replace(tb.ROOT + "/", ""), rel, open(out).read())
tb.write_section(md, "component-" + name, body)
PY
}

# The release preset's flags (warnings are errors, as in every preset), without the test suite.
mkdir -p "$release"
cmake -S "$root" -B "$release" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTW_BUILD_TESTS=OFF \
  >"$release.configure.log" 2>&1 || { tail -20 "$release.configure.log"; exit 2; }
ninja -C "$release" tradewinkd twctl bench_orders sqlite_floor >"$release.build.log" 2>&1 ||
  { tail -30 "$release.build.log"; exit 2; }
for t in bench_cpp_health bench_auth bench_risk bench_vault; do
  # A target CMake left out (e.g. no grpc++) is skipped; one that fails to compile stops the run.
  if ninja -C "$release" -t query "$t" >/dev/null 2>&1; then
    ninja -C "$release" "$t" >>"$release.build.log" 2>&1 || { tail -30 "$release.build.log"; exit 2; }
  else
    echo "bench: $t not configured on this machine" >&2
  fi
done
# `bench/run.sh build`: build everything the scenarios need and stop (CI runs this).
[ "$want" = build ] && exit 0

on transport && run env BUILD_DIR="$release" bash "$root/bench/transport/run.sh"
if on authread || on orders; then
  on authread && run "$py" "$root/bench/orders/bench.py" --scenario authread \
    --server "$release/server/tradewinkd"
  on orders && run "$py" "$root/bench/orders/bench.py" --scenario orders \
    --server "$release/server/tradewinkd" --bench-orders "$release/bench/bench_orders"
fi
on auth && [ -f "$root/bench/auth/run.sh" ] && component auth sh "$root/bench/auth/run.sh" "$release"
on vault && [ -f "$root/bench/vault/run.sh" ] &&
  component vault bash "$root/bench/vault/run.sh" "$release"
if on risk; then
  bin=$(find "$release" -name bench_risk -type f -perm -u+x | head -n 1)
  [ -n "$bin" ] && component risk "$bin"
fi
on streams && run bash "$root/bench/streams/run.sh" "$release"
on scaling && run bash "$root/bench/scaling/run.sh" "$release"
run "$py" "$root/bench/summary.py"
exit $status

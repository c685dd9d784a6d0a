#!/usr/bin/env bash
# A newcomer's first five minutes, as CI's smoke test: README's first command (scripts/run.sh)
# starts in the background, we wait (bounded) until grpc.health.v1.Health/Check answers SERVING
# on its default address, run README's "Try it" block verbatim against it, and stop the server
# by PID. The commands come out of README.md itself, so the docs cannot drift from what works.
# State (SQLite file, master keys, dev signing key) goes to a temp dir through the TW_* variables
# both tradewinkd and twctl read, so a developer's checkout is left as it was.
# Usage: scripts/smoke.sh            (exit 0 = every step passed; a failure names its step)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
buf="$here/proto/node_modules/.bin/buf"
addr=127.0.0.1:50051 # TW_LISTEN's default, which README's commands use
wait_s=${TW_SMOKE_WAIT_SECONDS:-900} # run.sh builds first; on a clean clone that takes minutes

fail() {
  echo "smoke: FAILED at step: $*" >&2
  exit 1
}
step() { echo "== smoke: $*"; }

work="$(mktemp -d /tmp/tw-smoke.XXXXXX)"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
export TW_DATABASE_URL="sqlite:$work/tradewink.db"
export TW_VAULT_MASTER_KEY_FILE="$work/tradewink-master-keys"
export TW_DEV_KEY_FILE="$work/tradewink-dev-key.pem"

# README's first command: the first line of its first code block.
step "read README's first command"
first=$(awk '/^```sh$/ {inb = 1; next} inb {print; exit}' README.md | sed 's/[[:space:]]*#.*$//')
[ "$first" = "scripts/run.sh" ] || fail "README's first command is '$first', not scripts/run.sh"

# The "Try it" block: its first line starts the server in the background; the rest is the demo.
try=$(awk '/^## Try it/ {sect = 1; next} sect && /^```sh$/ {inb = 1; next}
           inb && /^```$/ {exit} inb {print}' README.md)
[ -n "$try" ] || fail "README has no '## Try it' sh block"
[ "$(printf '%s\n' "$try" | head -n 1 | sed 's/[[:space:]]*#.*$//')" = "scripts/run.sh &" ] ||
  fail "README's Try it block does not start with 'scripts/run.sh &'"
# The first block under "Admin access": the packaged buf curl calls, run after Try it with its $T.
admin=$(awk '/^## Admin access/ {sect = 1; next} sect && /^```sh$/ {inb = 1; next}
             inb && /^```$/ {exit} inb {print}' README.md)
[ -n "$admin" ] || fail "README has no '## Admin access' sh block"

step "port $addr is free"
if (exec 3<>"/dev/tcp/${addr%:*}/${addr#*:}") 2>/dev/null; then
  fail "something already listens on $addr (stop it: README's commands use the default address)"
fi

step "start README's first command in the background (log: $work/run.log)"
scripts/run.sh >"$work/run.log" 2>&1 &
pid=$! # run.sh execs tradewinkd, so this is the server's PID once the build is done

step "wait up to ${wait_s}s for Health/Check SERVING on $addr"
deadline=$((SECONDS + wait_s))
until out=$("$buf" curl --protocol grpc --http2-prior-knowledge --timeout 2s \
  "http://$addr/grpc.health.v1.Health/Check" 2>/dev/null) && [[ $out == *'"SERVING"'* ]]; do
  kill -0 "$pid" 2>/dev/null || { tail -30 "$work/run.log"; fail "scripts/run.sh exited before serving"; }
  [ "$SECONDS" -lt "$deadline" ] || { tail -30 "$work/run.log"; fail "no SERVING within ${wait_s}s"; }
  sleep 1
done

# The rest of the block, verbatim, in one shell (it defines a function and variables); each line
# is announced to the ERR trap so a failure names the README line.
step "run README's Try it block, then its Admin access block"
{
  echo 'set -eEuo pipefail'
  echo 'trap '\''echo "smoke: FAILED at step: README Try it: $step" >&2'\'' ERR'
  { printf '%s\n' "$try" | tail -n +2; printf '%s\n' "$admin"; } | while IFS= read -r line; do
    # A line ending in a backslash continues: announce only the first line of a command.
    [ "${cont:-0}" = 1 ] || printf 'step=%q\n' "$line"
    printf '%s\n' "$line"
    case "$line" in *\\) cont=1 ;; *) cont=0 ;; esac
  done
} >"$work/try.sh"
bash "$work/try.sh" | tee "$work/try.out" || { tail -30 "$work/run.log"; exit 1; }

# What the demo promises a reader: the order filled, the position is there, the chain verifies.
step "check what the Try it block printed"
grep -Eq '^order\.status +FILLED *$' "$work/try.out" || fail "Try it: the AAPL order is not FILLED"
grep -Eq '^AAPL +2 ' "$work/try.out" || fail "Try it: positions do not list 2 AAPL"
grep -Eq '^ok +true *$' "$work/try.out" || fail "Try it: audit verify did not report the chain ok"
grep -q '"SERVING"' "$work/try.out" || fail "Admin access: buf curl Health/Check did not say SERVING"
grep -q '"subject": *"alice"' "$work/try.out" || fail "Admin access: buf curl WhoAmI is not alice"
grep -q '"allowed": *true' "$work/try.out" || fail "Admin access: buf curl Risk/CheckOrder not allowed"

step "stop the server by PID $pid"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=""
[ "$rc" -eq 0 ] || { tail -30 "$work/run.log"; fail "tradewinkd exited $rc on SIGTERM (want a clean drain)"; }
grep -q '"clean shutdown"' "$work/run.log" || fail "tradewinkd did not log a clean shutdown"
echo "== smoke: passed"

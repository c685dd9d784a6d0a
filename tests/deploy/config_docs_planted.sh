#!/usr/bin/env bash
# deploy_config_docs_planted: the CONFIG.md drift check must FAIL on every kind of drift.
# Each case copies deploy/CONFIG.md to a temp dir, plants one mismatch and runs the check; a
# control case (unchanged copy) must pass, so a failure is due to the plant and nothing else.
# Usage: config_docs_planted.sh REPO_ROOT TRADEWINKD
set -uo pipefail
root="$1"
bin="$2"
check="$root/scripts/check-config-docs.sh"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fails=0

# plant NAME WANT_RC SED_PROGRAM EXPECTED_OUTPUT_REGEX ('-' as the program = unchanged copy)
plant() {
  local name="$1" want="$2" prog="$3" expect="$4" rc
  if [ "$prog" = - ]; then
    cp "$root/deploy/CONFIG.md" "$tmp/CONFIG.md"
  elif ! sed -e "$prog" "$root/deploy/CONFIG.md" > "$tmp/CONFIG.md" ||
       cmp -s "$tmp/CONFIG.md" "$root/deploy/CONFIG.md"; then
    echo "FAIL: $name: the plant did not apply (fix the test)"
    fails=$((fails + 1))
    return
  fi
  "$check" "$bin" --doc "$tmp/CONFIG.md" > "$tmp/out" 2>&1
  rc=$?
  if [ "$rc" -ne "$want" ] || ! grep -qE -- "$expect" "$tmp/out"; then
    echo "FAIL: $name: exit $rc (want $want), output must match /$expect/:"
    sed 's/^/    /' "$tmp/out"
    fails=$((fails + 1))
  else
    echo "ok: $name (exit $rc)"
  fi
}

plant "unchanged copy passes" 0 - 'OK, [0-9]+ variables'
plant "changed default is caught" 1 's/| `127.0.0.1:50051` |/| `0.0.0.0:50051` |/' \
  '^\-.*TW_LISTEN.*0\.0\.0\.0:50051'
plant "removed variable row is caught" 1 '/^| `TW_WORKERS` |/d' '^\+\| `TW_WORKERS`'
plant "added undocumented row is caught" 1 '/^| `TW_LOG_LEVEL` |/a | `TW_EXTRA` | string | unset | x |' \
  '^\-\| `TW_EXTRA`'
plant "edited help text is caught" 1 's/Server private key PEM\./Server key./' '^\-.*Server key\.'
plant "changed bounds are caught" 1 's/integer \[0, 300\]/integer [0, 3000]/' '^\-.*\[0, 3000\]'
plant "missing end marker is caught" 1 '/^<!-- END GENERATED -->$/d' 'marker line exactly once'
plant "duplicated begin marker is caught" 1 '/^<!-- BEGIN GENERATED/p' 'marker line exactly once'
plant "hand-written text outside the block is not checked" 0 's/^## Examples$/## Examples!/' 'OK'

# --update repairs a drifted copy and leaves the hand-written text alone.
sed -e '/^| `TW_WORKERS` |/d' "$root/deploy/CONFIG.md" > "$tmp/CONFIG.md"
if "$check" "$bin" --doc "$tmp/CONFIG.md" --update > /dev/null 2>&1 &&
   cmp -s "$tmp/CONFIG.md" "$root/deploy/CONFIG.md"; then
  echo "ok: --update restores the generated block exactly"
else
  echo "FAIL: --update did not restore the generated block"
  fails=$((fails + 1))
fi

# --env-scan: a getenv("TW_...") outside the table is caught (planted in a copy of the tree).
mkdir -p "$tmp/tree/scripts" "$tmp/tree/server" "$tmp/tree/deploy"
cp "$check" "$tmp/tree/scripts/"
cp "$root/deploy/CONFIG.md" "$tmp/tree/deploy/"
printf 'const char *v(void) { return getenv("TW_LISTEN"); }\n' > "$tmp/tree/server/a.c"
if "$tmp/tree/scripts/check-config-docs.sh" "$bin" --env-scan > /dev/null 2>&1; then
  echo "ok: --env-scan accepts a variable from the table"
else
  echo "FAIL: --env-scan rejected TW_LISTEN"
  fails=$((fails + 1))
fi
printf 'const char *w(void) { return getenv("TW_PLANTED_SECRET"); }\n' > "$tmp/tree/server/b.c"
if "$tmp/tree/scripts/check-config-docs.sh" "$bin" --env-scan > "$tmp/out" 2>&1; then
  echo "FAIL: --env-scan missed getenv(\"TW_PLANTED_SECRET\")"
  fails=$((fails + 1))
elif grep -q 'TW_PLANTED_SECRET' "$tmp/out"; then
  echo "ok: --env-scan names a variable read outside the table"
else
  echo "FAIL: --env-scan failed without naming the variable"
  fails=$((fails + 1))
fi

[ "$fails" -eq 0 ] || { echo "$fails case(s) failed"; exit 1; }
echo "all cases passed"

#!/usr/bin/env bash
# CONFIG.md drift check: the variable table in deploy/CONFIG.md must be exactly what the server's
# config table prints (`tradewinkd --config-markdown`), so the documentation cannot drift from
# the code that validates the configuration.
#
# Usage: scripts/check-config-docs.sh BUILD_DIR|TRADEWINKD [--doc FILE] [--update] [--env-scan]
#   BUILD_DIR     a CMake build directory (uses BUILD_DIR/server/tradewinkd), or the binary itself
#   --doc FILE    the document to check (default: deploy/CONFIG.md)
#   --update      rewrite the generated block of FILE in place instead of checking it
#   --env-scan    also fail when tradewinkd's sources (server/ brokers/ vault/ risk/) read a TW_*
#                 variable with getenv() that the config table does not define: such a variable
#                 is neither validated at start nor documented
#
# The generated block is everything between the two marker lines below (markers included in the
# file, compared exclusively); the hand-written text around it is never touched.
# Exit status: 0 = up to date (or updated), 1 = drift (a unified diff is printed), 2 = usage error.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
begin='<!-- BEGIN GENERATED: tradewinkd --config-markdown (scripts/check-config-docs.sh --update) -->'
end='<!-- END GENERATED -->'

usage() {
  echo "usage: $0 BUILD_DIR|TRADEWINKD [--doc FILE] [--update]" >&2
  exit 2
}
[ $# -ge 1 ] || usage
target="$1"
shift
doc="$here/deploy/CONFIG.md"
update=0
env_scan=0
while [ $# -gt 0 ]; do
  case "$1" in
    --doc) [ $# -ge 2 ] || usage; doc="$2"; shift 2 ;;
    --update) update=1; shift ;;
    --env-scan) env_scan=1; shift ;;
    *) usage ;;
  esac
done
if [ -d "$target" ]; then
  bin="$target/server/tradewinkd"
else
  bin="$target"
fi
[ -x "$bin" ] || { echo "check-config-docs: no tradewinkd binary at $bin (build it first)" >&2; exit 2; }
[ -r "$doc" ] || { echo "check-config-docs: cannot read $doc" >&2; exit 2; }

nbegin="$(grep -cxF -- "$begin" "$doc" || true)"
nend="$(grep -cxF -- "$end" "$doc" || true)"
if [ "$nbegin" != 1 ] || [ "$nend" != 1 ]; then
  echo "check-config-docs: $doc must contain each marker line exactly once:" >&2
  echo "  $begin" >&2
  echo "  $end" >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# Run with an empty environment so nothing of the caller's TW_* can leak into the output.
if ! env -i "$bin" --config-markdown > "$tmp/generated.md" 2> "$tmp/err"; then
  echo "check-config-docs: $bin --config-markdown failed:" >&2
  cat "$tmp/err" >&2
  exit 2
fi
[ -s "$tmp/generated.md" ] || { echo "check-config-docs: $bin printed no table" >&2; exit 2; }

# A table cell containing an unescaped '|' renders as an extra column: say so (the text comes
# from the server's help strings, which this script does not own).
awk -F'|' 'NR == 1 { want = NF; next }
  { line = $0; gsub(/\\\|/, "", line); n = split(line, a, "|")
    if (n != want) printf "check-config-docs: warning: generated row %d has %d cells, the header %d (escape | as \\| in the help text): %s\n", NR, n - 2, want - 2, $0 }' \
  "$tmp/generated.md" >&2

if [ "$env_scan" = 1 ]; then
  grep -o '`TW_[A-Z0-9_]*`' "$tmp/generated.md" | tr -d '`' | sort -u > "$tmp/table.vars"
  stray=0
  for d in server brokers vault risk; do
    [ -d "$here/$d" ] || continue
    grep -rnoE --include='*.c' --include='*.h' 'getenv\("TW_[A-Z0-9_]+"\)' "$here/$d" || true
  done > "$tmp/getenv.txt"
  while IFS= read -r hit; do
    var="${hit#*getenv(\"}"
    var="${var%\")}"
    if ! grep -qxF "$var" "$tmp/table.vars"; then
      echo "check-config-docs: ${hit%%:getenv*}: reads $var outside the config table (add a row" \
           "to server/config/config.c so it is validated and documented)" >&2
      stray=$((stray + 1))
    fi
  done < "$tmp/getenv.txt"
  if [ "$stray" -gt 0 ]; then
    echo "check-config-docs: FAILED: $stray TW_* variable read(s) bypass the config table" >&2
    exit 1
  fi
  echo "check-config-docs: env scan OK, every getenv(\"TW_*\") is in the config table"
fi

# Rebuild the document with the fresh block, then compare (or install) it.
awk -v b="$begin" -v e="$end" -v gen="$tmp/generated.md" '
  $0 == b { print; while ((getline l < gen) > 0) print l; skip = 1; next }
  $0 == e { skip = 0 }
  !skip { print }' "$doc" > "$tmp/expected.md"

if [ "$update" = 1 ]; then
  if cmp -s "$tmp/expected.md" "$doc"; then
    echo "check-config-docs: $doc already up to date"
  else
    cat "$tmp/expected.md" > "$doc"
    echo "check-config-docs: regenerated the table in $doc"
  fi
  exit 0
fi
if ! diff -u --label "$doc (checked in)" --label "$doc (from $bin --config-markdown)" \
     "$doc" "$tmp/expected.md"; then
  echo "check-config-docs: FAILED: $doc differs from the server's config table." >&2
  echo "  Regenerate it: scripts/check-config-docs.sh $target --update" >&2
  exit 1
fi
echo "check-config-docs: OK, $(($(wc -l < "$tmp/generated.md") - 2)) variables documented in $doc"

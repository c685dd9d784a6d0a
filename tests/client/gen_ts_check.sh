#!/bin/sh
# client_ts_gen: client/ts/src/gen is committed (so the package builds and installs with Node.js
# alone) and must be exactly what `npm run generate` makes from proto/ and Debian's grpc-proto.
# Regenerates into a temp directory and diffs. Usage: gen_ts_check.sh CLIENT_TS_DIR.
# Exit 77 (skip) without npm. Fix a failure with: cd client/ts && npm run generate.
set -eu
ts_dir=$(cd "$1" && pwd)
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    echo "SKIP: node/npm not installed"
    exit 77
fi
out=$(mktemp -d "${TMPDIR:-/tmp}/twc-gen-XXXXXX")
trap 'rm -rf "$out"' EXIT INT TERM
exec 9>"${TMPDIR:-/tmp}/twc-ts-$(id -u).lock"
flock 9
cd "$ts_dir"
npm ci --no-fund --no-audit --loglevel=error
PATH="$ts_dir/node_modules/.bin:$PATH" buf generate -o "$out"
if ! diff -r "$out/src/gen" src/gen; then
    echo "FAIL: client/ts/src/gen is stale: run 'cd client/ts && npm run generate' and commit it"
    exit 1
fi
echo "ok: src/gen matches the protos"

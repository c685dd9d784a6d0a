#!/bin/sh
# client_ts: npm ci (from the committed lockfile) + tsc (src/gen is committed) + the node test
# against a live tradewinkd. Usage: run_ts.sh CLIENT_TS_DIR TRADEWINKD. Exit 77 (skip) without npm.
# Runs in the source tree (node_modules, src/gen and dist are gitignored), serialized by a
# lock so a debug and an asan build can run the suite at the same time.
set -eu
ts_dir=$1
export TW_BINARY=$2
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    echo "SKIP: node/npm not installed"
    exit 77
fi
cd "$ts_dir"
exec 9>"${TMPDIR:-/tmp}/twc-ts-$(id -u).lock"
flock 9
npm ci --no-fund --no-audit --loglevel=error
npm run --silent build
npm test

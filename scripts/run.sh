#!/usr/bin/env bash
# Build and start tradewinkd in its embedded default mode (SQLite, dev auth, sim broker,
# loopback). Extra TW_* variables in the environment are passed through.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/deps.sh"
cmake --preset release -S "$here" >/dev/null
cmake --build "$here/build/release" --target tradewinkd
exec "$here/build/release/server/tradewinkd" "$@"

#!/bin/sh
# bench/auth/run.sh [BUILD_DIR] [SECONDS]
# JWT verifications/s (uncached and cached, one thread) against `openssl speed rsa2048`
# verify/s measured in the same run on the same machine. Targets: uncached >= 0.9x OpenSSL's
# raw verify rate, cached >= 20x. Exits 1 when a target is missed. Build with a Release
# configuration (e.g. the release preset) first; the script only runs the binary.
set -eu
build=${1:-build/release}
secs=${2:-3}
bin=$(find "$build" -name bench_auth -type f -perm -u+x | head -n 1)
if [ -z "$bin" ]; then
    echo "bench_auth not found under $build (ninja -C $build bench_auth)" >&2
    exit 2
fi
ossl=$(openssl speed -seconds "$secs" rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ {print $NF}')
ours=$("$bin" "$secs")
unc=$(echo "$ours" | awk '/^uncached_verify_per_s/ {print $2}')
cac=$(echo "$ours" | awk '/^cached_verify_per_s/ {print $2}')
echo "$ours"
echo "openssl_rsa2048_verify_per_s $ossl"
awk -v o="$ossl" -v u="$unc" -v c="$cac" 'BEGIN {
    ru = u / o; rc = c / o;
    printf "uncached_ratio %.2f (target >= 0.90) %s\n", ru, (ru >= 0.9) ? "PASS" : "MISS";
    printf "cached_ratio %.1f (target >= 20) %s\n", rc, (rc >= 20) ? "PASS" : "MISS";
    exit (ru >= 0.9 && rc >= 20) ? 0 : 1 }'

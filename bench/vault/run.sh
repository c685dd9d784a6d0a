#!/usr/bin/env bash
# Vault benchmarks, each against its reference measured in the same run:
#   PBKDF2-HMAC-SHA256 600,000 iterations: vault vs `openssl kdf` (target ratio <= 1.05)
#   Fernet encrypt/decrypt ops/s with a cached key: vault vs python3-cryptography (>= 5x)
# Usage: bench/vault/run.sh [BUILD_DIR]   (default: build/bench-vault, configured Release)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build/bench-vault}
runs=${RUNS:-5}
secs=${SECS:-2}
py=${PYTHON:-/usr/bin/python3}

if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
ninja -C "$build" bench_vault >/dev/null
bin=$(find "$build" -name bench_vault -type f -perm -u+x | head -n1)

# --- PBKDF2 -------------------------------------------------------------------------------
vault_out=$("$bin" pbkdf2 "$runs")
vault_s=$(echo "$vault_out" | awk '/^pbkdf2_600k_s/ {print $2}')
vault_dk=$(echo "$vault_out" | sed -n 2p)
ossl_kdf() {
  openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt pass:benchmark-master-secret \
    -kdfopt salt:0123456789abcdef -kdfopt iter:"$1" PBKDF2 | tr -d ':' | tr 'A-F' 'a-f'
}
# median wall time (us) of `openssl kdf` at $1 iterations
ossl_median() {
  local times=() s e
  for _ in $(seq "$runs"); do
    s=$(date +%s%N)
    ossl_kdf "$1" >/dev/null
    e=$(date +%s%N)
    times+=("$(( (e - s) / 1000 ))")
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p"
}
start_us=$(ossl_median 1) # process start-up, to compare the derivation alone as well
ossl_us=$(ossl_median 600000)
ossl_s=$(awk -v u="$ossl_us" 'BEGIN {printf "%.4f", u / 1e6}')
ossl_dk=$(ossl_kdf 600000)
ossl_net=$(awk -v u="$ossl_us" -v z="$start_us" 'BEGIN {printf "%.4f", (u - z) / 1e6}')
[ "$vault_dk" = "$ossl_dk" ] || { echo "PBKDF2 outputs differ: $vault_dk vs $ossl_dk" >&2; exit 1; }
ratio=$(awk -v a="$vault_s" -v b="$ossl_s" 'BEGIN {printf "%.3f", a / b}')
ratio_net=$(awk -v a="$vault_s" -v b="$ossl_net" 'BEGIN {printf "%.3f", a / b}')

# --- Fernet -------------------------------------------------------------------------------
fern=$("$bin" fernet "$secs")
c_enc=$(echo "$fern" | awk '/^fernet_encrypt_ops/ {print $2}')
c_dec=$(echo "$fern" | awk '/^fernet_decrypt_ops/ {print $2}')
py_out=$("$py" - "$secs" <<'PY'
import sys, time
from cryptography.fernet import Fernet
secs = float(sys.argv[1])
f = Fernet(Fernet.generate_key())
msg = b"abcdefghijklmnopqrstuvwxyz0123456789ABCD"
def rate(fn):
    n, s = 0, time.perf_counter()
    while time.perf_counter() - s < secs:
        fn(); n += 1
    return n / (time.perf_counter() - s)
tok = f.encrypt(msg)
print("%.0f %.0f" % (rate(lambda: f.encrypt(msg)), rate(lambda: f.decrypt(tok))))
PY
)
py_enc=${py_out% *}
py_dec=${py_out#* }
enc_x=$(awk -v a="$c_enc" -v b="$py_enc" 'BEGIN {printf "%.1f", a / b}')
dec_x=$(awk -v a="$c_dec" -v b="$py_dec" 'BEGIN {printf "%.1f", a / b}')
pass() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN {ok = op == "le" ? v <= t : v >= t; print ok ? "yes" : "NO"}'; }

cat <<MD
| benchmark | vault | reference | ratio | target | met |
|---|---|---|---|---|---|
| PBKDF2-SHA256 600k, 32 B (median of $runs, s) | $vault_s | $ossl_s (\`openssl kdf\` wall) | $ratio | <= 1.05 | $(pass "$ratio" 1.05 le) |
| same, minus \`openssl\` start-up (iter:1 run) | $vault_s | $ossl_net | $ratio_net | <= 1.05 | $(pass "$ratio_net" 1.05 le) |
| Fernet encrypt, cached key (ops/s) | $c_enc | $py_enc (python3-cryptography) | ${enc_x}x | >= 5x | $(pass "$enc_x" 5 ge) |
| Fernet decrypt, cached key (ops/s) | $c_dec | $py_dec (python3-cryptography) | ${dec_x}x | >= 5x | $(pass "$dec_x" 5 ge) |
MD

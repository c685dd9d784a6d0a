#!/bin/bash
# Container entrypoint: tradewinkd on plaintext loopback behind its HAProxy front.
#
# TLS material comes as before (TW_TLS_CERT_FILE, TW_TLS_KEY_FILE); HAProxy terminates TLS
# with it on TW_FRONT_BIND and tradewinkd listens only on TW_BACKEND (loopback, plaintext,
# which tradewinkd allows there and nowhere else). If either process exits, the other is
# stopped and the container exits with tradewinkd's status (3 = gRPC listener dead, restart;
# 2 = bad configuration), so the platform restarts the pair together.
set -euo pipefail

: "${TW_FRONT_BIND:=0.0.0.0:50051}" "${TW_BACKEND:=127.0.0.1:50052}"
: "${TW_FRONT_STATS:=127.0.0.1:8405}" "${TW_FRONT_CONFIG:=/etc/tradewink/haproxy.cfg}"
: "${TW_FRONT_RUNDIR:=/run/tradewink}"
# The readiness probe's way in (haproxy.cfg, tradewinkd_ops): tradewinkd's ops port on loopback.
ops_port="${TW_OPS_LISTEN:-127.0.0.1:9090}"
: "${TW_FRONT_OPS:=127.0.0.1:${ops_port##*:}}"
if [ -z "${TW_TLS_CERT_FILE:-}" ] || [ -z "${TW_TLS_KEY_FILE:-}" ]; then
  echo "entrypoint: TW_TLS_CERT_FILE and TW_TLS_KEY_FILE are required (HAProxy serves TLS)" >&2
  exit 2
fi
if [ -n "${TW_TLS_CLIENT_CA_FILE:-}" ]; then
  echo "entrypoint: mTLS through the front is not configured (deploy/README.md)" >&2
  exit 2
fi
umask 077
mkdir -p "$TW_FRONT_RUNDIR"
cat "$TW_TLS_CERT_FILE" "$TW_TLS_KEY_FILE" > "$TW_FRONT_RUNDIR/front.pem"
export TW_FRONT_BIND TW_BACKEND TW_FRONT_STATS TW_FRONT_OPS TW_FRONT_CERT="$TW_FRONT_RUNDIR/front.pem"
haproxy -c -q -f "$TW_FRONT_CONFIG"

# HAProxy reaches TW_BACKEND from 127.0.0.1: tradewinkd believes its x-forwarded-for (the
# client's address, for per-peer rate limits) from there and from nowhere else.
env -u TW_TLS_CERT_FILE -u TW_TLS_KEY_FILE TW_LISTEN="$TW_BACKEND" \
  TW_TRUSTED_FRONTS="${TW_TRUSTED_FRONTS:-127.0.0.1}" /usr/local/bin/tradewinkd &
tw=$!
haproxy -db -f "$TW_FRONT_CONFIG" &
hp=$!
trap 'kill -TERM "$tw" "$hp" 2>/dev/null || true' TERM INT
set +e
wait -n "$tw" "$hp"
kill -TERM "$tw" "$hp" 2>/dev/null
# A trapped signal interrupts `wait` (status > 128); wait again until tradewinkd is gone.
rc=0
while :; do
  wait "$tw"
  rc=$?
  kill -0 "$tw" 2>/dev/null || break
done
wait "$hp"
exit "$rc"

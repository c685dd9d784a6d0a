#!/usr/bin/env bash
# deploy_systemd_verify: deploy/tradewinkd.service must pass `systemd-analyze verify` with no
# diagnostics at all (verify exits 0 on unknown keys and unparsable values, so any line that
# names the unit counts as a failure), keep every hardening directive the deployment relies on,
# and stay at or under the exposure score documented in deploy/README.md. Planted copies (a
# typo, a bad value, a dropped directive) must each be caught, so the check itself can fail.
# ExecStart is pointed at the freshly built binary, since verify requires an executable.
# Usage: systemd_verify.sh UNIT TRADEWINKD
set -uo pipefail
unit="$1"
bin="$2"
max_exposure="1.5"
if ! command -v systemd-analyze > /dev/null 2>&1; then
  echo "FAIL: systemd-analyze not found: install the Debian 'systemd' package (CI must)."
  exit 1
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

required=(
  "NoNewPrivileges=yes" "ProtectSystem=strict" "ProtectHome=yes" "PrivateTmp=yes"
  "PrivateDevices=yes" "MemoryDenyWriteExecute=yes" "LimitCORE=0" "CapabilityBoundingSet="
  "AmbientCapabilities=" "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX"
  "SystemCallFilter=@system-service" "SystemCallFilter=~@privileged @resources"
  "SystemCallArchitectures=native" "LockPersonality=yes" "RestrictRealtime=yes"
  "RestrictNamespaces=yes" "ProtectKernelTunables=yes" "ProtectKernelModules=yes"
  "ProtectKernelLogs=yes" "ProtectControlGroups=yes" "ProtectClock=yes" "ProtectHostname=yes"
  "UMask=0077" "EnvironmentFile=/etc/tradewink/tradewinkd.env" "StateDirectory=tradewink"
  "WorkingDirectory=/var/lib/tradewink" "DynamicUser=yes" "Restart=on-failure"
  "Type=notify" "NotifyAccess=main" "WatchdogSec=10s"
)

# check FILE: 0 when the unit is clean, 1 otherwise (reasons printed).
check() {
  local f="$1" bad=0 line score
  sed -e "s|^ExecStart=.*|ExecStart=$bin|" "$f" > "$tmp/tradewinkd.service"
  if ! systemd-analyze verify "$tmp/tradewinkd.service" > "$tmp/verify.out" 2>&1; then
    echo "  systemd-analyze verify failed:"; sed 's/^/    /' "$tmp/verify.out"; bad=1
  elif grep -q 'tradewinkd.service' "$tmp/verify.out"; then
    echo "  systemd-analyze verify reported:"; grep 'tradewinkd.service' "$tmp/verify.out" |
      sed 's/^/    /'; bad=1
  fi
  for line in "${required[@]}"; do
    if ! grep -qxF -- "$line" "$tmp/tradewinkd.service"; then
      echo "  missing hardening line: $line"; bad=1
    fi
  done
  systemd-analyze security --offline=yes "$tmp/tradewinkd.service" > "$tmp/sec.out" 2>&1
  score="$(sed -n 's/.*Overall exposure level for tradewinkd.service: \([0-9.]*\).*/\1/p' \
           "$tmp/sec.out")"
  if [ -z "$score" ]; then
    echo "  no exposure score from systemd-analyze security:"; tail -5 "$tmp/sec.out"; bad=1
  elif ! awk -v s="$score" -v m="$max_exposure" 'BEGIN { exit !(s <= m) }'; then
    echo "  exposure $score is over $max_exposure"; bad=1
  else
    echo "  exposure level $score (limit $max_exposure)"
  fi
  return "$bad"
}

fails=0
echo "== $unit"
if check "$unit"; then echo "ok: the unit verifies cleanly"; else echo "FAIL: the unit"; fails=1; fi

# Planted copies: each must be rejected.
plants=(
  "a misspelt key|s/^NoNewPrivileges=yes$/NoNewPrivilegs=yes/"
  "an unparsable value|s/^ProtectSystem=strict$/ProtectSystem=bogus/"
  "a dropped hardening directive|/^MemoryDenyWriteExecute=yes$/d"
  "an open capability set|s/^CapabilityBoundingSet=$/CapabilityBoundingSet=CAP_SYS_ADMIN CAP_NET_ADMIN CAP_SYS_PTRACE/"
  "a weakened sandbox|/^Protect/d"
  "readiness back to exec|s/^Type=notify$/Type=exec/"
  "no watchdog|/^WatchdogSec=/d"
)
for p in "${plants[@]}"; do
  name="${p%%|*}"
  sed -e "${p#*|}" "$unit" > "$tmp/planted.service"
  if cmp -s "$tmp/planted.service" "$unit"; then
    echo "FAIL: plant '$name' did not apply"; fails=1; continue
  fi
  if check "$tmp/planted.service" > "$tmp/plant.out"; then
    echo "FAIL: $name was not caught:"; sed 's/^/  /' "$tmp/plant.out"; fails=1
  else
    echo "ok: $name is caught"
  fi
done
exit "$fails"

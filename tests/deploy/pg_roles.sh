#!/usr/bin/env bash
# deploy_pg_roles: the PostgreSQL role setup in deploy/CONFIG.md, run exactly as written (the
# ```sql blocks between its "BEGIN SQL" and "END SQL" markers) against a throw-away server:
#   1. the setup block as superuser; tradewinkd started once as tradewink_owner (migrations);
#   2. the post-migration block; tradewinkd started as tradewink_app and an audited call made;
#   3. as tradewink_app: audit rows are readable and were written, and UPDATE, DELETE and
#      TRUNCATE of audit_events, disabling or dropping its triggers, and faking a schema
#      version are all refused by privileges (not just by the triggers).
# Usage: pg_roles.sh REPO_ROOT TRADEWINKD TWCTL
set -uo pipefail
root="$1"
bin="$(realpath "$2")"
twctl="$(realpath "$3")"
tmp="$(mktemp -d)"
chmod 755 "$tmp"
srv_pid=""
cleanup() {
  [ -n "$srv_pid" ] && kill "$srv_pid" 2> /dev/null && wait "$srv_pid" 2> /dev/null
  "$root/scripts/pg-test-server.sh" stop "$tmp/pg" > /dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

command -v psql > /dev/null || { echo "FAIL: psql not found (Debian package postgresql-client)"; exit 1; }

# The SQL, straight from the document.
awk '/^<!-- BEGIN SQL/ { on = 1; next } /^<!-- END SQL -->/ { on = 0 }
     on && /^```sql$/ { n++; inblk = 1; next } on && /^```$/ { inblk = 0; next }
     on && inblk { print > (dir "/block" n ".sql") }' dir="$tmp" "$root/deploy/CONFIG.md"
[ -s "$tmp/block1.sql" ] && [ -s "$tmp/block2.sql" ] ||
  { echo "FAIL: deploy/CONFIG.md has no two sql blocks between the SQL markers"; exit 1; }

mkdir -p "$tmp/pg"
pgport="$("$root/scripts/free-port.sh")"
super="$("$root/scripts/pg-test-server.sh" start "$tmp/pg" "$pgport")" ||
  { echo "FAIL: could not start PostgreSQL"; exit 1; }
admin_url="${super%/*}/postgres"
owner_url="postgresql://tradewink_owner:owner-pw-1@127.0.0.1:$pgport/tradewink"
app_url="postgresql://tradewink_app:app-pw-1@127.0.0.1:$pgport/tradewink"

if ! psql -X -q -v ON_ERROR_STOP=1 -v owner_password=owner-pw-1 -v app_password=app-pw-1 \
     "$admin_url" -f "$tmp/block1.sql" > "$tmp/psql1.out" 2>&1; then
  echo "FAIL: setup SQL:"; cat "$tmp/psql1.out"; exit 1
fi

# start_server URL: runs tradewinkd (dev auth, loopback) until it logs "listening".
start_server() {
  local port i
  port="$("$root/scripts/free-port.sh")"
  (cd "$tmp" && exec env -i PATH="$PATH" TW_DATABASE_URL="$1" TW_LISTEN="127.0.0.1:$port" \
     TW_OPS_LISTEN=127.0.0.1:0 TW_DEV_KEY_FILE="$tmp/dev.pem" "$bin") > "$tmp/server.log" 2>&1 &
  srv_pid=$!
  for i in $(seq 1 100); do
    grep -q '"event":"listening"' "$tmp/server.log" && { addr="127.0.0.1:$port"; return 0; }
    kill -0 "$srv_pid" 2> /dev/null || break
    sleep 0.1
  done
  echo "tradewinkd did not start:"; cat "$tmp/server.log"
  return 1
}
stop_server() {
  kill "$srv_pid" 2> /dev/null
  wait "$srv_pid" 2> /dev/null
  srv_pid=""
}

start_server "$owner_url" || { echo "FAIL: first start as tradewink_owner"; exit 1; }
grep -q 'applied schema migration' "$tmp/server.log" || fail "the owner's start applied no migration"
stop_server
if ! psql -X -q -v ON_ERROR_STOP=1 "$admin_url" -f "$tmp/block2.sql" > "$tmp/psql2.out" 2>&1; then
  echo "FAIL: post-migration SQL:"; cat "$tmp/psql2.out"; exit 1
fi

start_server "$app_url" || { echo "FAIL: start as tradewink_app"; exit 1; }
token="$("$twctl" dev-token --sub deploy-test --role user --key-file "$tmp/dev.pem")"
if "$twctl" --addr "$addr" --token "$token" settings set --autonomous-mode true > "$tmp/rpc.out" 2>&1
then
  echo "ok: an audited call succeeds as tradewink_app"
else
  fail "settings set as tradewink_app: $(cat "$tmp/rpc.out")"
fi
stop_server

as_app() { psql -X -q -t -A -v ON_ERROR_STOP=1 "$app_url" -c "$1" 2>&1; }
n="$(as_app 'SELECT count(*) FROM audit_events')"
if [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ]; then
  echo "ok: tradewink_app reads the audit events it wrote ($n)"
else
  fail "tradewink_app cannot read audit_events or none were written: $n"
fi

# refused SQL EXPECTED_ERROR: as tradewink_app the statement must fail with that error.
refused() {
  local out
  if out="$(as_app "$1")"; then
    fail "tradewink_app may run: $1"
  elif grep -q -- "$2" <<< "$out"; then
    echo "ok: refused: $1"
  else
    fail "$1 failed for another reason than '$2': $out"
  fi
}
refused "UPDATE audit_events SET outcome = 'x'" 'permission denied for table audit_events'
refused "DELETE FROM audit_events" 'permission denied for table audit_events'
refused "TRUNCATE audit_events" 'permission denied for table audit_events'
refused "ALTER TABLE audit_events DISABLE TRIGGER ALL" 'must be owner'
refused "DROP TRIGGER audit_events_no_change ON audit_events" 'must be owner'
refused "DROP TABLE audit_events" 'must be owner'
refused "INSERT INTO schema_version VALUES (99, 0)" 'permission denied for table schema_version'

[ "$fails" -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all checks passed"

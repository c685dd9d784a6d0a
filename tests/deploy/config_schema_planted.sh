#!/usr/bin/env bash
# deploy_config_schema_planted: the config-to-schema check must FAIL on every planted mismatch
# between the map, the migrations and the .proto files, and name it. A control case (unchanged
# copies) must pass, so each failure is due to its plant alone.
# Usage: config_schema_planted.sh REPO_ROOT
set -uo pipefail
root="$1"
check="$root/scripts/check-config-schema.sh"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fails=0

# plant NAME WANT_RC WHAT SED_PROGRAM EXPECTED_OUTPUT_REGEX [WHAT2 SED_PROGRAM2 ...]
#   WHAT: schema (store_schema.c), map (schema-map.tsv), proto (risk.proto), orders (orders.proto)
plant() {
  local name="$1" want="$2" expect="$5" rc
  rm -rf "$tmp/w" && mkdir -p "$tmp/w/proto"
  cp "$root/server/store/store_schema.c" "$tmp/w/schema.c"
  cp "$root/deploy/schema-map.tsv" "$tmp/w/map.tsv"
  cp "$root"/proto/tradewink/v1/*.proto "$tmp/w/proto/"
  apply "$name" "$3" "$4" || return
  shift 5
  while [ $# -ge 2 ]; do
    apply "$name" "$1" "$2" || return
    shift 2
  done
  "$check" --schema "$tmp/w/schema.c" --map "$tmp/w/map.tsv" --proto-dir "$tmp/w/proto" \
    > "$tmp/out" 2>&1
  rc=$?
  if [ "$rc" -ne "$want" ] || ! grep -qE -- "$expect" "$tmp/out"; then
    echo "FAIL: $name: exit $rc (want $want), output must match /$expect/:"
    sed 's/^/    /' "$tmp/out"
    fails=$((fails + 1))
  else
    echo "ok: $name (exit $rc)"
  fi
}

apply() {
  local name="$1" what="$2" prog="$3" src
  case "$what" in
    schema) src="$tmp/w/schema.c" ;;
    map) src="$tmp/w/map.tsv" ;;
    proto) src="$tmp/w/proto/risk.proto" ;;
    orders) src="$tmp/w/proto/orders.proto" ;;
  esac
  [ "$prog" = - ] && return 0
  cp "$src" "$tmp/orig"
  if ! sed -i -e "$prog" "$src" || cmp -s "$src" "$tmp/orig"; then
    echo "FAIL: $name: the plant did not apply (fix the test)"
    fails=$((fails + 1))
    return 1
  fi
}

# A later migration, appended the way store_schema.c says (new version in both arrays): the
# plant adds a version after the last released one, whichever that is today. The array's
# definition may span lines (clang-format wraps it): they are joined first.
v2() {
  printf '%s' "/^const char \\*const store_$1_migrations\\[/{:a;/};/!{N;ba;};s/\\n */ /g;"
  printf '%s' "s/^const char \\*const store_$1_migrations\\[STORE_SCHEMA_VERSION\\] = {\\(.*\\)};/"
  printf '%s' "static const char $1_vnext[] = \"$2\";\\n"
  printf '%s' "const char *const store_$1_migrations[STORE_SCHEMA_VERSION + 1] = {\\1, $1_vnext};/}"
}

plant "unchanged sources pass" 0 schema - 'OK, [0-9]+ mapped fields'
plant "a dropped column fails in both dialects" 1 schema '/ max_orders_per_s BIGINT NOT NULL,/d' \
  'no column max_orders_per_s in table risk_limits \(postgres.*|no column max_orders_per_s in table risk_limits \(sqlite'
plant "an integer column turned TEXT fails" 1 schema 's/ collar_bps BIGINT NOT NULL,/ collar_bps TEXT NOT NULL,/' \
  'collar_bps: column type TEXT is not INTEGER'
plant "a boolean without its 0/1 CHECK fails" 1 schema \
  's/ pdt_enabled INTEGER NOT NULL CHECK (pdt_enabled IN (0, 1)),/ pdt_enabled INTEGER NOT NULL,/' \
  'pdt_enabled: column type INTEGER is not BOOLEAN'
plant "a renamed table fails" 1 schema 's/CREATE TABLE risk_limits (/CREATE TABLE user_limits (/' \
  'no table risk_limits'
plant "a TEXT enum column turned integer fails" 1 schema \
  "s/ trading_mode TEXT NOT NULL DEFAULT 'paper'/ trading_mode INTEGER NOT NULL DEFAULT 0/" \
  'users.trading_mode: column type INTEGER is not TEXT'
plant "a later SQLite migration dropping a column fails" 1 schema \
  "$(v2 sqlite 'ALTER TABLE users DROP COLUMN autonomous;')" \
  'no column autonomous in table users \(sqlite'
plant "a later PostgreSQL migration renaming a column fails" 1 schema \
  "$(v2 pg 'ALTER TABLE risk_limits RENAME COLUMN collar_bps TO price_collar_bps;')" \
  'no column collar_bps in table risk_limits \(postgres'
add_col='ALTER TABLE users ADD COLUMN updated_at_us BIGINT NOT NULL DEFAULT 0;'
map_col='s/^AccountSettings\tupdated_at\t.*$/AccountSettings\tupdated_at\tgoogle.protobuf.Timestamp\tusers.updated_at_us\tINTEGER/'
plant "a column added by a later migration in both dialects satisfies its row" 0 map "$map_col" \
  'OK, [0-9]+ mapped' schema "$(v2 sqlite "$add_col")" schema "$(v2 pg "$add_col")"
plant "a column added in one dialect only fails in the other" 1 map "$map_col" \
  'no column updated_at_us in table users \(postgres' schema "$(v2 sqlite "$add_col")"
plant "a new RiskLimits field without a row fails" 1 proto \
  's/^  bool pdt_enabled = 10;$/  bool pdt_enabled = 10;\n  int32 max_symbols = 12;/' \
  'RiskLimits.max_symbols \(int32\) has no row'
plant "a new AccountSettings field without a row fails" 1 orders \
  's/^  string default_broker_key_id = 4;$/  string default_broker_key_id = 4;\n  bool allow_shorting = 6;/' \
  'AccountSettings.allow_shorting \(bool\) has no row'
plant "a changed proto type fails" 1 proto 's/^  int32 max_open_positions = 4;$/  string max_open_positions = 4;/' \
  'max_open_positions is string in the .proto, the map says int32'
plant "a map row for a field that does not exist fails" 1 map \
  '$a RiskLimits\tghost_field\tint32\trisk_limits.max_positions\tINTEGER' \
  'RiskLimits.ghost_field does not exist'
plant "a map row with a wrong class fails" 1 map \
  's/^RiskLimits\tpdt_enabled\tbool\trisk_limits.pdt_enabled\tBOOLEAN$/RiskLimits\tpdt_enabled\tbool\trisk_limits.pdt_enabled\tTEXT/' \
  'pdt_enabled: column type INTEGER is not TEXT'
plant "an unstored field without a reason fails" 1 map \
  's/^\(UpdateAccountSettingsRequest\tconfirm_live\tbool\t-\t-\).*$/\1/' \
  'unstored field needs class .-. and a reason'
plant "a field mapped twice fails" 1 map \
  '$a RiskLimits\tpdt_enabled\tbool\trisk_limits.pdt_enabled\tBOOLEAN' 'mapped twice'
plant "a known gap is reported as a warning" 0 schema - 'warning: AccountSettings.updated_at is not stored'

[ "$fails" -eq 0 ] || { echo "$fails case(s) failed"; exit 1; }
echo "all cases passed"

#!/usr/bin/env bash
# Config-to-schema check: every persisted field of the limit and account-settings messages has
# its column, with a compatible type, in the migrations of BOTH store dialects.
#
# Usage: scripts/check-config-schema.sh [--map FILE] [--schema FILE] [--proto-dir DIR]
#   defaults: deploy/schema-map.tsv, server/store/store_schema.c, proto/tradewink/v1
#
# How: store_schema.c is run through the C preprocessor (its #include lines dropped, so only
# its own macros expand), the string literals of each migration are joined into the SQL the
# server executes, and the migrations listed in store_sqlite_migrations / store_pg_migrations
# are replayed in order (CREATE TABLE, ALTER TABLE ADD/DROP/RENAME COLUMN, DROP TABLE, ALTER
# TABLE RENAME TO) into a model of the final tables. The map (see its header) is then checked
# against that model and against the message definitions in the .proto files.
# Exit status: 0 = consistent, 1 = mismatch (each one printed), 2 = usage or parse error.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
map="$here/deploy/schema-map.tsv"
schema="$here/server/store/store_schema.c"
protodir="$here/proto/tradewink/v1"
while [ $# -gt 0 ]; do
  case "$1" in
    --map) map="$2"; shift 2 ;;
    --schema) schema="$2"; shift 2 ;;
    --proto-dir) protodir="$2"; shift 2 ;;
    *) echo "usage: $0 [--map FILE] [--schema FILE] [--proto-dir DIR]" >&2; exit 2 ;;
  esac
done
for f in "$map" "$schema"; do
  [ -r "$f" ] || { echo "check-config-schema: cannot read $f" >&2; exit 2; }
done
[ -d "$protodir" ] || { echo "check-config-schema: no proto dir $protodir" >&2; exit 2; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# Only the file's own macros matter; its headers may need generated code we do not have here.
grep -v '^[[:space:]]*#[[:space:]]*include' "$schema" > "$tmp/schema.c"
if ! "${CC:-cc}" -E -P -x c "$tmp/schema.c" -o "$tmp/schema.i" 2> "$tmp/cpp.err"; then
  echo "check-config-schema: preprocessing $schema failed:" >&2
  cat "$tmp/cpp.err" >&2
  exit 2
fi

exec /usr/bin/python3 - "$map" "$tmp/schema.i" "$protodir" "$schema" <<'PY'
import glob, os, re, sys

map_path, pre_path, proto_dir, schema_name = sys.argv[1:5]
errors, warnings = [], []


def die(msg):
    print("check-config-schema: " + msg, file=sys.stderr)
    sys.exit(2)


# ---- C: string literals of each migration array ----------------------------------------------
def c_tokens(text):
    """Yield ('str', value) and ('tok', text) for the preprocessed C source."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif c == '"':
            j, buf = i + 1, []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    esc = text[j + 1]
                    buf.append({"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}.get(esc, esc))
                    j += 2
                else:
                    buf.append(text[j])
                    j += 1
            yield ("str", "".join(buf))
            i = j + 1
        elif c.isalnum() or c == "_":
            j = i
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            yield ("tok", text[i:j])
            i = j
        else:
            yield ("tok", c)
            i += 1


def c_definitions(text):
    """name -> joined string literal for `... name [ ... ] = "..." "...";` definitions, and
    name -> list of identifiers for `... name [ ... ] = { a, b };` initialisers."""
    toks = list(c_tokens(text))
    strings, lists = {}, {}
    for k, (kind, val) in enumerate(toks):
        if kind != "tok" or val != "=" or k < 2:
            continue
        # Walk back over "[ ... ]" to the declared name.
        j = k - 1
        if toks[j] == ("tok", "]"):
            while j >= 0 and toks[j] != ("tok", "["):
                j -= 1
            j -= 1
        if j < 0 or toks[j][0] != "tok":
            continue
        name = toks[j][1]
        m = k + 1
        if m < len(toks) and toks[m][0] == "str":
            parts = []
            while m < len(toks) and toks[m][0] == "str":
                parts.append(toks[m][1])
                m += 1
            strings[name] = "".join(parts)
        elif m < len(toks) and toks[m] == ("tok", "{"):
            items = []
            m += 1
            while m < len(toks) and toks[m] != ("tok", "}"):
                if toks[m][0] == "tok" and toks[m][1] != ",":
                    items.append(toks[m][1])
                m += 1
            lists[name] = items
    return strings, lists


# ---- SQL: replay the migrations into a table model -------------------------------------------
def sql_statements(sql):
    out, cur, i, n = [], [], 0, len(sql)
    while i < n:
        c = sql[i]
        if c == "'":
            j = i + 1
            while j < n:
                if sql[j] == "'" and not sql.startswith("''", j):
                    break
                j += 2 if sql.startswith("''", j) else 1
            cur.append(sql[i : j + 1])
            i = j + 1
        elif c == "$":
            m = re.match(r"\$[A-Za-z_]*\$", sql[i:])
            if m:
                tag = m.group(0)
                j = sql.find(tag, i + len(tag))
                j = n if j < 0 else j + len(tag)
                cur.append(sql[i:j])
                i = j
            else:
                cur.append(c)
                i += 1
        elif c == ";":
            out.append("".join(cur).strip())
            cur, i = [], i + 1
        else:
            cur.append(c)
            i += 1
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return [s for s in out if s]


def split_top(body):
    """Split a parenthesised list on commas at depth 0 (quotes respected)."""
    parts, depth, cur, quote = [], 0, [], False
    for c in body:
        if c == "'":
            quote = not quote
        elif not quote and c == "(":
            depth += 1
        elif not quote and c == ")":
            depth -= 1
        if c == "," and depth == 0 and not quote:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
    if "".join(cur).strip():
        parts.append("".join(cur).strip())
    return parts


CONSTRAINT_WORDS = ("PRIMARY", "UNIQUE", "CHECK", "FOREIGN", "CONSTRAINT", "EXCLUDE")


def bool_check(col, text):
    return re.search(r"CHECK\s*\(\s*\"?%s\"?\s+IN\s*\(\s*0\s*,\s*1\s*\)\s*\)" % re.escape(col),
                     text, re.I) is not None


def parse_column(defn):
    m = re.match(r'\s*"?(\w+)"?\s+(.*)$', defn, re.S)
    if not m:
        return None
    return m.group(1).lower(), m.group(2)


def replay(statements, dialect):
    tables = {}  # table -> {column: {"type": str, "def": str}}, plus "__checks__": [str]
    for st in statements:
        s = " ".join(st.split())
        m = re.match(r"CREATE TABLE (?:IF NOT EXISTS )?\"?(\w+)\"?\s*\((.*)\)\s*$", s, re.I | re.S)
        if m:
            name, cols, checks = m.group(1).lower(), {}, []
            for part in split_top(m.group(2)):
                if part.split()[0].upper() in CONSTRAINT_WORDS:
                    checks.append(part)
                    continue
                pc = parse_column(part)
                if pc:
                    cols[pc[0]] = {"def": pc[1]}
            tables[name] = {"cols": cols, "checks": checks}
            continue
        m = re.match(r"ALTER TABLE (?:IF EXISTS )?(?:ONLY )?\"?(\w+)\"?\s+(.*)$", s, re.I | re.S)
        if m:
            t = tables.get(m.group(1).lower())
            rest = m.group(2)
            if t is None:
                errors.append("%s: ALTER TABLE on unknown table %s" % (dialect, m.group(1)))
                continue
            a = re.match(r"ADD (?:COLUMN )?(?:IF NOT EXISTS )?(.*)$", rest, re.I | re.S)
            d = re.match(r"DROP (?:COLUMN )?(?:IF EXISTS )?\"?(\w+)\"?", rest, re.I)
            r = re.match(r"RENAME (?:COLUMN )?\"?(\w+)\"? TO \"?(\w+)\"?", rest, re.I)
            rt = re.match(r"RENAME TO \"?(\w+)\"?", rest, re.I)
            if rt:
                tables[rt.group(1).lower()] = tables.pop(m.group(1).lower())
            elif a and a.group(1).split()[0].upper() in CONSTRAINT_WORDS:
                t["checks"].append(a.group(1))
            elif a:
                pc = parse_column(a.group(1))
                if pc:
                    t["cols"][pc[0]] = {"def": pc[1]}
            elif r and r.group(1).lower() in t["cols"]:
                t["cols"][r.group(2).lower()] = t["cols"].pop(r.group(1).lower())
            elif d:
                t["cols"].pop(d.group(1).lower(), None)
            continue
        m = re.match(r"DROP TABLE (?:IF EXISTS )?\"?(\w+)\"?", s, re.I)
        if m:
            tables.pop(m.group(1).lower(), None)
    return tables


def type_class(table, col, info):
    """The set of classes a column satisfies."""
    t = info["def"].upper()
    base = re.match(r"\s*([A-Z]+(?: VARYING)?)", t)
    base = base.group(1) if base else ""
    classes = set()
    if base in ("INTEGER", "INT", "BIGINT", "SMALLINT", "INT2", "INT4", "INT8"):
        classes.add("INTEGER")
        if bool_check(col, info["def"]) or any(bool_check(col, c) for c in table["checks"]):
            classes.add("BOOLEAN")
    elif base in ("TEXT", "VARCHAR", "CHAR", "CHARACTER", "CHARACTER VARYING"):
        classes.add("TEXT")
    elif base in ("BOOLEAN", "BOOL"):
        classes.add("BOOLEAN")
    return classes, base or "?"


# ---- proto: fields of each message ------------------------------------------------------------
def proto_messages(directory):
    msgs = {}
    for path in sorted(glob.glob(os.path.join(directory, "*.proto"))):
        text = open(path, encoding="utf-8").read()
        text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
        text = re.sub(r"//[^\n]*", " ", text)
        for m in re.finditer(r"\bmessage\s+(\w+)\s*\{", text):
            depth, i, body = 1, m.end(), []
            while i < len(text) and depth:
                c = text[i]
                depth += c == "{"
                depth -= c == "}"
                body.append(c if depth >= 1 else "")
                i += 1
            body = "".join(body)
            # Drop nested message/enum blocks; keep oneof members.
            flat, changed = body, True
            while changed:
                new = re.sub(r"\b(message|enum)\s+\w+\s*\{[^{}]*\}", " ", flat)
                changed, flat = new != flat, new
            flat = re.sub(r"\boneof\s+\w+\s*\{([^{}]*)\}", r"\1", flat)
            fields = {}
            for f in re.finditer(
                    r"(?:^|[;{}\s])(?:(repeated|optional)\s+)?([\w.]+)\s+(\w+)\s*=\s*\d+\s*(?:\[[^\]]*\])?\s*;",
                    flat):
                if f.group(2) in ("reserved", "option"):
                    continue
                ftype = ("repeated " if f.group(1) == "repeated" else "") + f.group(2)
                fields[f.group(3)] = ftype
            if m.group(1) in msgs:
                die("message %s is defined twice under %s" % (m.group(1), directory))
            msgs[m.group(1)] = fields
    return msgs


# ---- main --------------------------------------------------------------------------------------
strings, lists = c_definitions(open(pre_path, encoding="utf-8").read())
dialects = {}
for dialect, array in (("sqlite", "store_sqlite_migrations"), ("postgres", "store_pg_migrations")):
    if array not in lists:
        die("%s: no initialiser for %s" % (schema_name, array))
    stmts = []
    for ref in lists[array]:
        if ref not in strings:
            die("%s: %s refers to %s, which is not a string constant" % (schema_name, array, ref))
        stmts += sql_statements(strings[ref])
    dialects[dialect] = replay(stmts, dialect)
    if not dialects[dialect]:
        die("%s: no CREATE TABLE found for %s" % (schema_name, dialect))

msgs = proto_messages(proto_dir)
rows, seen = [], {}
for lineno, line in enumerate(open(map_path, encoding="utf-8"), 1):
    line = line.rstrip("\n")
    if not line.strip() or line.lstrip().startswith("#"):
        continue
    cols = line.split("\t")
    where = "%s:%d" % (os.path.basename(map_path), lineno)
    if len(cols) < 5:
        die("%s: expected 5 or 6 tab-separated columns, got %d" % (where, len(cols)))
    msg, field, ptype, target, cls = [c.strip() for c in cols[:5]]
    reason = cols[5].strip() if len(cols) > 5 else ""
    if (msg, field) in seen:
        errors.append("%s: %s.%s is mapped twice (first at line %d)" % (where, msg, field,
                                                                        seen[(msg, field)]))
    seen[(msg, field)] = lineno
    rows.append((where, msg, field, ptype, target, cls, reason))

checked_msgs = sorted({r[1] for r in rows})
for msg in checked_msgs:
    if msg not in msgs:
        errors.append("map names message %s, which no .proto in %s defines" % (msg, proto_dir))
        continue
    for field in sorted(msgs[msg]):
        if (msg, field) not in seen:
            errors.append("%s.%s (%s) has no row in %s: add its column to a migration and map it, "
                          "or map it to '-' with a reason" % (msg, field, msgs[msg][field],
                                                              os.path.basename(map_path)))

for where, msg, field, ptype, target, cls, reason in rows:
    fields = msgs.get(msg, {})
    if msg in msgs and field not in fields:
        errors.append("%s: %s.%s does not exist in the .proto" % (where, msg, field))
    elif msg in msgs and fields[field] != ptype:
        errors.append("%s: %s.%s is %s in the .proto, the map says %s (re-check its column)"
                      % (where, msg, field, fields[field], ptype))
    if target == "-":
        if cls != "-" or not reason:
            errors.append("%s: an unstored field needs class '-' and a reason" % where)
        elif reason.upper().startswith("GAP"):
            warnings.append("%s.%s is not stored: %s" % (msg, field, reason))
        continue
    if cls not in ("INTEGER", "TEXT", "BOOLEAN"):
        errors.append("%s: class must be INTEGER, TEXT or BOOLEAN, not %r" % (where, cls))
        continue
    if not re.fullmatch(r"\w+\.\w+", target):
        errors.append("%s: column must be table.column, not %r" % (where, target))
        continue
    table, col = target.lower().split(".")
    for dialect, tables in sorted(dialects.items()):
        t = tables.get(table)
        if t is None:
            errors.append("%s: %s.%s -> %s: no table %s in the %s migrations"
                          % (where, msg, field, target, table, dialect))
            continue
        info = t["cols"].get(col)
        if info is None:
            errors.append("%s: %s.%s -> %s: no column %s in table %s (%s migrations)"
                          % (where, msg, field, target, col, table, dialect))
            continue
        classes, base = type_class(t, col, info)
        if cls not in classes:
            why = " (an integer boolean needs CHECK (%s IN (0, 1)))" % col if cls == "BOOLEAN" \
                and "INTEGER" in classes else ""
            errors.append("%s: %s.%s -> %s: column type %s is not %s%s (%s migrations)"
                          % (where, msg, field, target, base, cls, why, dialect))

for w in warnings:
    print("check-config-schema: warning: " + w)
for e in errors:
    print("check-config-schema: " + e)
if errors:
    print("check-config-schema: FAILED, %d mismatch(es)" % len(errors))
    sys.exit(1)
print("check-config-schema: OK, %d mapped fields of %s checked against %d tables in %s"
      % (len(rows), ", ".join(checked_msgs), len(dialects["sqlite"]), ", ".join(sorted(dialects))))
PY

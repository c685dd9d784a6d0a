#!/usr/bin/env python3
"""deploy_observability: the shipped alert rules and Grafana dashboard must fit the metrics a
live tradewinkd really serves.

1. `promtool check rules` on deploy/prometheus/tradewinkd-alerts.yml, and on every dashboard
   query (Grafana variables replaced) written out as recording rules, so each expression
   parses as PromQL.
2. A tradewinkd is started on loopback (tests/integration/twserver.py), sent a few calls, and
   its /metrics scraped (the text must also pass `promtool check metrics`).
3. Every selector in every rule, panel and template query (metric name plus label matchers)
   must match at least one scraped series. Matchers on job and instance are skipped: the
   Prometheus server adds those at scrape. `up` is the one series Prometheus makes itself.
4. Planted copies (a misspelt metric, a label value the server never emits, the risk rule
   spelling of the previous release, a tw_* name) must each fail, so the check can fail.

Usage: observability_check.py SOURCE_DIR   (TW_BINARY = the tradewinkd to start)
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request

import yaml

SRC = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(__file__), "..", ".."))
RULES = os.path.join(SRC, "deploy", "prometheus", "tradewinkd-alerts.yml")
DASHBOARD = os.path.join(SRC, "deploy", "grafana", "tradewinkd-dashboard.json")
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
import twserver  # noqa: E402

TARGET_LABELS = {"job", "instance"}
SYNTHETIC = {"up"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
            "or", "unless", "offset", "atan2", "inf", "nan"}
GRAFANA_VARS = [("$__rate_interval", "5m"), ("$__interval", "1m"), ("$__range", "1h"),
                ("$job", ".*"), ("$instance", ".*")]


def fail(msg):
    print("FAIL: " + msg)
    return 1


# ---- expressions -------------------------------------------------------------------------

def grafana_to_promql(expr):
    for var, value in GRAFANA_VARS:
        expr = expr.replace(var, value)
    return expr


def rule_exprs(rules_doc):
    out = []
    for g in rules_doc.get("groups", []):
        for r in g.get("rules", []):
            out.append(("rule %s" % (r.get("alert") or r.get("record")), r["expr"]))
    return out


def dashboard_exprs(dash):
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append(("panel '%s'" % p.get("title"), grafana_to_promql(t["expr"])))
            walk(p.get("panels", []))

    walk(dash.get("panels", []))
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.match(r"^\s*label_values\((.*),\s*(\w+)\)\s*$", q or "")
        if v.get("type") == "query" and m:
            out.append(("variable $%s" % v["name"], grafana_to_promql(m.group(1))))
    return out


NUMBER = re.compile(r"(0[xX][0-9a-fA-F]+|\d*\.?\d+(?:[eE][+-]?\d+)?)")
MATCHER = re.compile(r'\s*([A-Za-z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')


def parse_matchers(body):
    out, pos = [], 0
    while pos < len(body.strip()):
        m = MATCHER.match(body, pos)
        if not m:
            raise ValueError("cannot parse matchers {%s}" % body)
        out.append((m.group(1), m.group(2), bytes(m.group(3), "utf-8").decode("unicode_escape")))
        pos = m.end()
    return out


def selectors(expr):
    """(metric, [(label, op, value)]) for every vector selector in a PromQL expression."""
    out, i, n = [], 0, len(expr)
    while i < n:
        c = expr[i]
        if c == '"' or c == "'":
            j = i + 1
            while j < n and expr[j] != c:
                j += 2 if expr[j] == "\\" else 1
            i = j + 1
        elif c == "[":
            i = expr.index("]", i) + 1
        elif c == "{":  # a selector without a metric name: not used in our files
            raise ValueError("selector without a metric name in: " + expr)
        elif c.isalpha() or c in "_:":
            j = i
            while j < n and (expr[j].isalnum() or expr[j] in "_:"):
                j += 1
            word = expr[i:j]
            k = j
            while k < n and expr[k].isspace():
                k += 1
            if word in ("by", "without", "on", "ignoring", "group_left", "group_right") and \
                    k < n and expr[k] == "(":
                i = expr.index(")", k) + 1
            elif k < n and expr[k] == "(" or word.lower() in KEYWORDS or \
                    re.match(r"(by|without)\s*\(", expr[k:]):
                i = j  # a function name, a keyword, or an aggregation before by/without
            elif re.fullmatch(r"\d+[smhdwy]", word):
                i = j
            else:
                matchers = []
                if k < n and expr[k] == "{":
                    end = expr.index("}", k)
                    matchers = parse_matchers(expr[k + 1:end])
                    j = end + 1
                out.append((word, matchers))
                i = j
        elif c.isdigit() or c == ".":
            i += NUMBER.match(expr, i).end() - i or 1
        else:
            i += 1
    return out


# ---- the scrape ---------------------------------------------------------------------------

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"')


def parse_scrape(text):
    series = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            raise ValueError("unparsable sample line: " + line)
        labels = dict(LABEL.findall(m.group(3) or ""))
        series.setdefault(m.group(1), []).append(labels)
    return series


def matches(labels, matchers):
    for name, op, value in matchers:
        have = labels.get(name, "")
        if op == "=" and have != value:
            return False
        if op == "!=" and have == value:
            return False
        if op == "=~" and not re.fullmatch(value, have):
            return False
        if op == "!~" and re.fullmatch(value, have):
            return False
    return True


def check_against(exprs, series):
    """Returns the list of problems: selectors that match no scraped series."""
    problems = []
    for where, expr in exprs:
        try:
            sels = selectors(expr)
        except ValueError as e:
            problems.append("%s: %s" % (where, e))
            continue
        if not sels:
            problems.append("%s: no selector found in %r" % (where, expr))
        for name, matchers in sels:
            if name in SYNTHETIC:
                continue
            own = [m for m in matchers if m[0] not in TARGET_LABELS]
            if name not in series:
                problems.append("%s: no series named %s" % (where, name))
            elif not any(matches(lbls, own) for lbls in series[name]):
                problems.append("%s: no %s series matches {%s}" % (
                    where, name, ",".join('%s%s"%s"' % m for m in own)))
    return problems


def promtool(args, stdin=None):
    p = subprocess.run(["promtool", *args], input=stdin, capture_output=True, text=True,
                       timeout=60)
    return p.returncode, p.stdout + p.stderr


def scrape_live():
    """Start tradewinkd, make calls that exercise the sparse families, return /metrics."""
    import grpc
    with twserver.TwServer() as srv:
        ch = grpc.insecure_channel(srv.addr)
        ch.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=5)
        for path in ("/tradewink.v1.Orders/NoSuchMethod", "/no.such.Service/M"):
            try:
                ch.unary_unary(path)(b"", timeout=5)
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.UNIMPLEMENTED, e
        ch.close()
        port = srv.listening["ops_port"]
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
            text = r.read().decode("utf-8")
        rc = srv.stop()
        if rc != 0:
            raise AssertionError("tradewinkd exit %r:\n%s" % (rc, srv.stderr_text()[-3000:]))
    return text


def main():
    fails = 0
    if shutil.which("promtool") is None:
        return fail("promtool not found: install Debian's 'prometheus' package (scripts/deps.sh)")
    with open(RULES) as f:
        rules_doc = yaml.safe_load(f)
    with open(DASHBOARD) as f:
        dash = json.load(f)

    rc, out = promtool(["check", "rules", RULES])
    if rc != 0:
        fails |= fail("promtool check rules %s:\n%s" % (RULES, out))
    else:
        print("ok: promtool check rules: " + out.strip().splitlines()[-1].strip())

    panel_exprs = dashboard_exprs(dash)
    tmp = tempfile.mkdtemp(prefix="twobs-")
    try:
        rec = {"groups": [{"name": "dashboard", "rules": [
            {"record": "dashboard:expr_%d" % i, "expr": e} for i, (_, e) in
            enumerate(panel_exprs)]}]}
        path = os.path.join(tmp, "dashboard-exprs.yml")
        with open(path, "w") as f:
            yaml.safe_dump(rec, f)
        rc, out = promtool(["check", "rules", path])
        if rc != 0:
            fails |= fail("dashboard queries do not parse as PromQL:\n" + out)
        else:
            print("ok: %d dashboard queries parse (promtool)" % len(panel_exprs))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    text = scrape_live()
    rc, out = promtool(["check", "metrics"], stdin=text)
    if rc != 0:
        fails |= fail("promtool check metrics on the live /metrics:\n" + out)
    series = parse_scrape(text)
    print("ok: live /metrics: %d families, %d series, %d bytes" % (
        len(series), sum(len(v) for v in series.values()), len(text)))

    exprs = rule_exprs(rules_doc) + panel_exprs
    problems = check_against(exprs, series)
    if problems:
        fails |= fail("selectors with no live series:\n  " + "\n  ".join(problems))
    else:
        n = sum(len(selectors(e)) for _, e in exprs)
        print("ok: all %d selectors of %d rules and queries match live series" % (n, len(exprs)))

    # Planted copies: each must be caught.
    plants = [
        ("a misspelt metric", ("rule x", 'rate(grpc_server_handled_totl[5m])')),
        ("a code the server never emits", ("rule x", 'grpc_server_handled_total{grpc_code="NotACode"}')),
        ("the previous release's risk rule spelling",
         ("rule x", 'tradewink_risk_rejections_total{rule="max_notional"}')),
        ("a grpc_type that does not exist", ("panel x", 'grpc_server_started_total{grpc_type="unary_call"}')),
        ("a label the metric does not have", ("panel x", 'process_open_fds{grpc_code="OK"}')),
    ]
    for name, expr in plants:
        if check_against([expr], series):
            print("ok: plant '%s' is caught" % name)
        else:
            fails |= fail("plant '%s' was not caught: %s" % (name, expr[1]))
    bad_rules = rules_doc and json.loads(json.dumps(rules_doc))
    bad_rules["groups"][0]["rules"][0]["expr"] = "sum(rate(grpc_server_handled_total[5m]) by"
    bad = tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False)
    try:
        yaml.safe_dump(bad_rules, bad)
        bad.close()
        rc, _ = promtool(["check", "rules", bad.name])
        if rc == 0:
            fails |= fail("promtool accepted a rules file with a broken expression")
        else:
            print("ok: plant 'a broken rule expression' is caught by promtool")
    finally:
        os.unlink(bad.name)
    return fails


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""deploy_fly_toml: deploy/fly.toml gates routing on readiness and lets Fly scrape /metrics.

Fly Proxy routes only on service-level checks; top-level [checks] are for monitoring and do
not affect routing (fly.io/docs/reference/health-checks). So: the gRPC service must carry a
[[services.http_checks]] GET /readyz (which reaches tradewinkd through the front's
tradewinkd_ops backend, deploy/haproxy/haproxy.cfg), no top-level check may be the only
/readyz, and [metrics] must point at the ops port (TW_OPS_LISTEN) and /metrics. The previous
fly.toml (readyz top-level, no [metrics]) and planted variants must fail.
Usage: fly_toml_check.py SOURCE_DIR
"""

import os
import re
import sys
import tomllib

SRC = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")


def problems(doc, haproxy_cfg):
    out = []
    ops_port = int(doc.get("env", {}).get("TW_OPS_LISTEN", "127.0.0.1:9090").rsplit(":", 1)[1])
    grpc = [s for s in doc.get("services", []) if s.get("internal_port") == 50051]
    if not grpc:
        return ["no [[services]] with internal_port 50051 (the gRPC front)"]
    checks = [c for c in grpc[0].get("http_checks", [])
              if c.get("path") == "/readyz" and c.get("method", "get").lower() == "get"]
    if not checks:
        out.append("the gRPC service has no [[services.http_checks]] GET /readyz: routing "
                   "does not follow readiness")
    for c in checks:
        if c.get("protocol") != "https":
            out.append("the readiness check must speak https (the front on 50051 is TLS)")
    for name, c in doc.get("checks", {}).items():
        if c.get("path") == "/readyz":
            out.append("top-level check %s on /readyz: it does not affect routing" % name)
    if not re.search(r"^\s*use_backend tradewinkd_ops if readyz_probe readyz_method\s*$",
                     haproxy_cfg, re.M):
        out.append("haproxy.cfg does not pass GET /readyz to the ops port")
    m = doc.get("metrics")
    if isinstance(m, list):
        m = m[0] if m else None
    if not m:
        out.append("no [metrics] section: Fly does not scrape /metrics")
    else:
        if m.get("port") != ops_port:
            out.append("[metrics] port %r is not the ops port %d" % (m.get("port"), ops_port))
        if m.get("path", "/metrics") != "/metrics":
            out.append("[metrics] path %r is not /metrics" % m.get("path"))
    return out


def main():
    with open(os.path.join(SRC, "deploy", "fly.toml"), "rb") as f:
        raw = f.read().decode()
    with open(os.path.join(SRC, "deploy", "haproxy", "haproxy.cfg")) as f:
        cfg = f.read()
    fails = 0
    p = problems(tomllib.loads(raw), cfg)
    if p:
        print("FAIL: deploy/fly.toml:\n  " + "\n  ".join(p))
        fails = 1
    else:
        print("ok: deploy/fly.toml routes on /readyz and exposes [metrics]")
    plants = {
        "readyz moved back to a top-level check": raw.replace(
            "[checks]\n", '[checks]\n  [checks.readyz]\n    type = "http"\n    port = 9090\n'
            '    path = "/readyz"\n\n', 1).replace('    path = "/readyz"\n    protocol', '    path = "/"\n    protocol', 1),
        "no [metrics]": re.sub(r"\[metrics\]\n(  .*\n)*", "", raw),
        "[metrics] on the wrong port": raw.replace("[metrics]\n  port = 9090", "[metrics]\n  port = 9091"),
        "plain http to the TLS front": raw.replace('protocol = "https"', 'protocol = "http"'),
    }
    for name, text in plants.items():
        if text == raw:
            print("FAIL: plant '%s' did not apply" % name)
            fails = 1
        elif problems(tomllib.loads(text), cfg):
            print("ok: plant '%s' is caught" % name)
        else:
            print("FAIL: plant '%s' was not caught" % name)
            fails = 1
    if not problems(tomllib.loads(raw), cfg.replace("use_backend tradewinkd_ops", "#")):
        print("FAIL: a front that drops /readyz was not caught")
        fails = 1
    else:
        print("ok: plant 'front without the readyz backend' is caught")
    return fails


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Service-level benchmarks: the authenticated read, the order path on SQLite and PostgreSQL
against a pgbench baseline, and the scaling curve of the order path.

Scenarios (--scenario):
  authread  Risk/GetState and Orders/GetAccountSettings with a cached bearer token vs
            Health/Check, all three on the same tradewinkd process (pinned to core 0, one
            worker) with h2load pinned to core 1, rounds alternated. Target GetState/Health >= 0.8.
  orders    SubmitOrder (auth, risk, store, audit, sim broker fill) with bench_orders: closed
            loop peak at --clients threads (one user each), then open loop at half that peak
            for the p99 target (< 20 ms). On PostgreSQL the baseline is pgbench running
            bench/orders/pgbench_order.sql (the same SQL per order) against the same database
            with the same concurrency, rounds alternated with ours. Target ours/pgbench >= 0.7.
  scaling   The closed-loop order rate at 1, 2, 4, 8, 16, 64 clients on both backends (fresh
            users per point, so every point starts with the same per-user history), with the
            pgbench curve at the same concurrencies on PostgreSQL.
Every run is bounded by a request count and by seconds; everything is on 127.0.0.1; every
process started here is stopped by its PID (PostgreSQL by its data directory).
"""

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import twbench as tb  # noqa: E402

HEALTH = "/grpc.health.v1.Health/Check"
GETSTATE = "/tradewink.v1.Risk/GetState"
SETTINGS = "/tradewink.v1.Orders/GetAccountSettings"
SUBMIT = "/tradewink.v1.Orders/SubmitOrder"
DAY_WINDOW_START = 20261021  # the PDT window start the server uses for 2026-11-30
NOW_US = tb.MONDAY_10AM * 1000000


def sh(cmd):
    return " ".join(shlex.quote(c) for c in cmd)


# ---------------------------------------------------------------------------- auth'd read


def parse_h2load(text):
    out = {}
    m = __import__("re").search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", text)
    if m:
        out["qps"] = float(m.group(3))
    m = __import__("re").search(r"requests: (\d+) total, (\d+) started, (\d+) done, "
                                r"(\d+) succeeded", text)
    if m:
        out["done"] = int(m.group(3))
        out["succeeded"] = int(m.group(4))
    return out


def h2load_run(srv, path, token, body, n, args, workdir, log=True):
    tsv = os.path.join(workdir, "h2.tsv")
    cmd = ["taskset", "-c", "1", "h2load", "-n", str(n), "-c", str(args.h2_clients), "-m",
           str(args.h2_streams), "-t", "1", "-d", body, "-H", "content-type: application/grpc",
           "-H", "te: trailers"]
    if token:
        cmd += ["-H", "authorization: Bearer " + token]
    if log:
        cmd += ["--log-file", tsv]
    cmd.append("http://%s%s" % (srv.addr, path))
    before = srv.calls(path)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.h2_timeout)
    after = srv.calls(path)
    res = parse_h2load(p.stdout)
    if p.returncode != 0 or "qps" not in res:
        raise RuntimeError("h2load failed: %s\n%s" % (p.stdout, p.stderr))
    res["grpc_codes"] = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    res["grpc_ok"] = res["grpc_codes"].get("OK", 0)
    if log:
        durs = sorted(int(line.split()[2]) for line in open(tsv) if len(line.split()) >= 3)
        res["p50_ms"] = tb.percentile(durs, 50) / 1000.0
        res["p99_ms"] = tb.percentile(durs, 99) / 1000.0
        os.unlink(tsv)
    # the token is a bearer credential for a throw-away server; still, keep it out of files
    res["command"] = sh(cmd).replace(token, "$TOKEN") if token else sh(cmd)
    return res


def scenario_authread(args, workdir):
    body = os.path.join(workdir, "empty.grpc")
    with open(body, "wb") as f:
        f.write(b"\0\0\0\0\0")  # uncompressed frame of an empty message (all three requests)
    srv = tb.TwServer(args.server, env={"TW_WORKERS": "1"}, pin="0", workdir=workdir).start()
    try:
        api = tb.Api(srv.addr)
        admin = api.token("bench-admin", admin=True, ttl=86400)
        tb.setup_market(api, admin)
        tok = api.token("bench-reader", ttl=86400)
        api.call("Risk", "GetState", token=tok)  # the user exists; its token is cached after
        api.close()
        targets = [("Health/Check (scenario 1 path)", HEALTH, None),
                   ("Risk/GetState, bearer token", GETSTATE, tok),
                   ("Orders/GetAccountSettings, bearer token", SETTINGS, tok)]
        runs = {t[0]: [] for t in targets}
        idle_rss = srv.rss_kb()
        for name, path, token in targets:
            h2load_run(srv, path, token, body, args.h2_warmup, args, workdir, log=False)
        for r in range(args.rounds):
            for name, path, token in targets:
                res = h2load_run(srv, path, token, body, args.h2_requests, args, workdir)
                res["rss_kb"] = srv.rss_kb()
                runs[name].append(res)
                print("authread round %d %-40s %8.0f qps p50 %.2f p99 %.2f ms ok %d/%d" %
                      (r, name, res["qps"], res["p50_ms"], res["p99_ms"], res["grpc_ok"],
                       res["done"]), flush=True)
        server_cmd = srv.command()
    finally:
        rc = srv.stop()
    rows = []
    base = statistics.median(x["qps"] for x in runs[targets[0][0]])
    for name, path, _ in targets:
        rs = runs[name]
        q = statistics.median(x["qps"] for x in rs)
        rows.append({"name": name, "path": path, "qps": q, "qps_runs": [x["qps"] for x in rs],
                     "ratio_vs_health": q / base,
                     "p50_ms": statistics.median(x["p50_ms"] for x in rs),
                     "p99_ms": statistics.median(x["p99_ms"] for x in rs),
                     "rss_kb": rs[-1]["rss_kb"], "all_ok": all(x["grpc_ok"] == x["done"]
                                                                for x in rs),
                     "command": rs[-1]["command"], "runs": rs})
    return {"scenario": "authread", "server_command": server_cmd, "server_exit": rc,
            "idle_rss_kb": idle_rss, "rows": rows, "health_qps": base}


def md_authread(res, json_rel):
    lines = ["## Auth'd read: Risk/GetState with a cached token vs Health/Check", "",
             "Same tradewinkd process for all three (SQLite store, TW_WORKERS=1 pinned to core 0), "
             "h2load pinned to core 1, %d rounds alternated, every call verified OK through the "
             "server's tw_rpc_calls_total counter (h2load alone counts HTTP 200)." %
             len(res["rows"][0]["runs"]), "",
             "| scenario | ours QPS (median) | baseline (Health/Check QPS) | ratio | p50 / p99 ms | "
             "RSS MiB | all gRPC OK | command |", "|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        lines.append("| %s | %.0f (%s) | %.0f | %.2f | %.2f / %.2f | %.1f | %s | `%s` |" % (
            r["name"], r["qps"], ", ".join("%.0f" % q for q in r["qps_runs"]), res["health_qps"],
            r["ratio_vs_health"], r["p50_ms"], r["p99_ms"], r["rss_kb"] / 1024.0,
            "yes" if r["all_ok"] else "NO", r["command"]))
    lines += ["", "Server: `%s`. Target GetState / Health >= 0.8. Raw JSON: `%s`." %
              (res["server_command"], json_rel)]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- order path


def bench_orders(args, srv, tokfile, threads, count, duration, rate=0.0, prefix="bo"):
    out = tempfile.mktemp(suffix=".json", dir=args.workdir)
    cmd = [args.bench_orders, "--target", srv.addr, "--tokens", tokfile, "--threads",
           str(threads), "--count", str(count), "--duration", "%g" % duration, "--prefix", prefix,
           "--out", out]
    if rate > 0:
        cmd += ["--rate", "%.1f" % rate]
    before = srv.calls(SUBMIT)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    after = srv.calls(SUBMIT)
    if not os.path.exists(out):
        raise RuntimeError("bench_orders failed: %s %s" % (p.stdout, p.stderr))
    res = json.load(open(out))
    os.unlink(out)
    res["server_codes"] = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    res["rss_kb"] = srv.rss_kb()
    res["command"] = sh(cmd)
    return res


def pgbench(args, pg, uid0, nusers, clients, per_client, rate=0.0, workdir=None):
    logdir = tempfile.mkdtemp(prefix="pgbench-", dir=workdir)
    cmd = ["pgbench", "-n", "-M", "prepared", "-f", args.pgbench_script,
           "-D", "uid0=%d" % uid0, "-D", "nusers=%d" % nusers, "-D", "day=%d" % DAY_WINDOW_START,
           "-D", "now_us=%d" % NOW_US, "-c", str(clients), "-j", str(min(clients, 2)),
           "-t", str(per_client), "-l", "--log-prefix", os.path.join(logdir, "tx")]
    if rate > 0:
        cmd += ["-R", "%.1f" % rate]
    cmd.append(pg.url)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 120)
    m = __import__("re").search(r"tps = ([\d.]+) \(without initial", p.stdout)
    if p.returncode != 0 or not m:
        raise RuntimeError("pgbench failed: %s\n%s" % (p.stdout, p.stderr))
    lat = []
    for fn in os.listdir(logdir):
        for line in open(os.path.join(logdir, fn)):
            parts = line.split()
            if len(parts) >= 3:
                lat.append(int(parts[2]))
            # with -R the log's 3rd field is latency including schedule lag (same as ours)
    lat.sort()
    failed = __import__("re").search(r"number of failed transactions: (\d+)", p.stdout)
    return {"orders_per_s": float(m.group(1)), "p50_ms": tb.percentile(lat, 50) / 1000.0,
            "p99_ms": tb.percentile(lat, 99) / 1000.0, "ok": len(lat),
            "failed": int(failed.group(1)) if failed else None, "clients": clients,
            "command": sh(cmd)}


class Backend:
    """A tradewinkd (and its PostgreSQL) prepared with users and quotes."""

    def __init__(self, args, kind, workdir):
        self.kind = kind
        self.pg = None
        url = None
        if kind == "postgresql":
            self.pg = tb.PgServer(workdir)
            url = self.pg.start()
        self.srv = tb.TwServer(args.server, db_url=url, workdir=workdir).start()
        self.api = tb.Api(self.srv.addr)
        self.admin = self.api.token("bench-admin", admin=True, ttl=86400)
        tb.setup_market(self.api, self.admin)
        self.workdir = workdir
        self.n_sets = 0

    def users(self, n):
        """n fresh users; returns (token file, first uid, uids)."""
        self.n_sets += 1
        toks, uids = tb.setup_users(self.api, self.admin, n, prefix="b%d-u" % self.n_sets)
        if uids != list(range(uids[0], uids[0] + n)):
            raise RuntimeError("user ids are not consecutive: %r" % uids)
        path = os.path.join(self.workdir, "tokens-%s-%d" % (self.kind, self.n_sets))
        with open(path, "w") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write("\n".join(toks) + "\n")
        return path, uids[0], uids

    def close(self):
        self.api.close()
        rc = self.srv.stop()
        if self.pg:
            self.pg.stop()
        return rc


def scenario_orders(args, workdir, kind):
    be = Backend(args, kind, workdir)
    out = {"scenario": "orders", "backend": kind, "server_command": be.srv.command(),
           "clients": args.clients}
    try:
        tokfile, uid0, uids = be.users(args.clients)
        out["idle_rss_kb"] = be.srv.rss_kb()
        bench_orders(args, be.srv, tokfile, args.clients, args.warmup, args.duration, prefix="w")
        ours, base = [], []
        for r in range(args.rounds):
            o = bench_orders(args, be.srv, tokfile, args.clients, args.count, args.duration,
                             prefix="p%d" % r)
            ours.append(o)
            print("orders %s round %d ours: %.0f orders/s p50 %.2f p99 %.2f ms ok %d err %d "
                  "not filled %d" % (kind, r, o["orders_per_s"], o["p50_ms"], o["p99_ms"],
                                     o["ok"], o["errors"], o["not_filled"]), flush=True)
            if be.pg:
                b = pgbench(args, be.pg, uid0, args.clients, args.clients,
                            max(1, args.count // args.clients), workdir=workdir)
                base.append(b)
                print("orders %s round %d pgbench: %.0f orders/s p50 %.2f p99 %.2f ms" %
                      (kind, r, b["orders_per_s"], b["p50_ms"], b["p99_ms"]), flush=True)
        peak = statistics.median(o["orders_per_s"] for o in ours)
        half = peak / 2
        h = bench_orders(args, be.srv, tokfile, args.clients, int(half * args.half_seconds),
                         args.half_seconds + 5, rate=half, prefix="h")
        print("orders %s half-peak %.0f/s: got %.0f orders/s p50 %.2f p99 %.2f ms" %
              (kind, half, h["orders_per_s"], h["p50_ms"], h["p99_ms"]), flush=True)
        out.update({"ours": ours, "pgbench": base, "peak": peak, "half_peak": h,
                    "pgbench_peak": statistics.median(b["orders_per_s"] for b in base)
                    if base else None,
                    "orders_per_user_at_end": None})
        if be.pg:
            out["orders_per_user_at_end"] = int(be.pg.psql(
                "SELECT count(*) / %d FROM orders WHERE user_id BETWEEN %d AND %d" %
                (args.clients, uid0, uid0 + args.clients - 1)).strip() or 0)
        out["rss_kb"] = be.srv.rss_kb()
        out["hwm_kb"] = be.srv.status().get("vmhwm")
    finally:
        out["server_exit"] = be.close()
    return out


def scenario_scaling(args, workdir, kind):
    be = Backend(args, kind, workdir)
    out = {"scenario": "scaling", "backend": kind, "server_command": be.srv.command(),
           "points": []}
    try:
        for c in args.scale:
            tokfile, uid0, _ = be.users(c)
            count = min(args.scale_count_max, max(args.scale_count_min, c * args.scale_per_client))
            bench_orders(args, be.srv, tokfile, c, max(c, count // 10), 10, prefix="w%d" % c)
            o = bench_orders(args, be.srv, tokfile, c, count, args.scale_seconds,
                             prefix="s%d" % c)
            pt = {"clients": c, "ours": o}
            if be.pg:
                pt["pgbench"] = pgbench(args, be.pg, uid0, c, c, max(1, count // c),
                                        workdir=workdir)
            out["points"].append(pt)
            print("scaling %s c=%d: ours %.0f orders/s p50 %.2f p99 %.2f%s" % (
                kind, c, o["orders_per_s"], o["p50_ms"], o["p99_ms"],
                "; pgbench %.0f/s p99 %.2f" % (pt["pgbench"]["orders_per_s"],
                                                pt["pgbench"]["p99_ms"]) if be.pg else ""),
                flush=True)
        out["rss_kb"] = be.srv.rss_kb()
    finally:
        out["server_exit"] = be.close()
    return out


def md_orders(results, json_rel, args):
    lines = ["## Order path: SubmitOrder (auth, risk, store, audit, sim broker fill)", "",
             "bench_orders (C, libtwclient): %d client threads, one user (own token) each, "
             "market orders alternating buy/sell 1 share, unique client_order_ids, closed loop "
             "(%d orders or %d s per round, %d rounds, after %d warm-up orders); then open loop "
             "at half the measured peak for %d s (latency from the scheduled send time). "
             "Baseline: pgbench -M prepared running `bench/orders/pgbench_order.sql` (the SQL "
             "the server issues per order, captured with log_statement=all) against the same "
             "PostgreSQL with the same number of clients, one user each, rounds alternated "
             "with ours. tradewinkd and PostgreSQL share the machine's 2 cores with the load "
             "generator (no pinning)." % (args.clients, args.count, args.duration, args.rounds,
                                          args.warmup, args.half_seconds), "",
             "| scenario | ours orders/s | baseline | ratio | p50 / p99 ms | RSS MiB | "
             "command |", "|---|---|---|---|---|---|---|"]
    for r in results:
        k = r["backend"]
        ours = r["ours"]
        p50 = statistics.median(o["p50_ms"] for o in ours)
        p99 = statistics.median(o["p99_ms"] for o in ours)
        errs = sum(o["errors"] + o["not_filled"] for o in ours)
        if r["pgbench"]:
            bp = r["pgbench_peak"]
            base = "pgbench %.0f (%s), p50/p99 %.2f / %.2f ms" % (
                bp, ", ".join("%.0f" % b["orders_per_s"] for b in r["pgbench"]),
                statistics.median(b["p50_ms"] for b in r["pgbench"]),
                statistics.median(b["p99_ms"] for b in r["pgbench"]))
            ratio = "%.2f" % (r["peak"] / bp)
            cmd = "`%s`<br>`%s`" % (ours[-1]["command"], r["pgbench"][-1]["command"])
        else:
            pgr = [x for x in results if x["pgbench"]]
            base = "(no pgbench for SQLite; PostgreSQL pgbench %.0f for reference)" % (
                pgr[0]["pgbench_peak"]) if pgr else "-"
            ratio = "-"
            cmd = "`%s`" % ours[-1]["command"]
        lines.append("| SubmitOrder peak, %s, %d clients | %.0f (%s)%s | %s | %s | %.2f / %.2f | "
                     "%.1f | %s |" % (k, args.clients, r["peak"], ", ".join(
                         "%.0f" % o["orders_per_s"] for o in ours),
                         "" if not errs else ", %d errors/not filled" % errs, base, ratio, p50,
                         p99, r["rss_kb"] / 1024.0, cmd))
        h = r["half_peak"]
        lines.append("| SubmitOrder at half peak (%.0f/s open loop), %s | %.0f achieved | "
                     "target p99 < 20 ms | - | %.2f / %.2f (%s) | %.1f | `%s` |" % (
                         h["rate"], k, h["orders_per_s"], h["p50_ms"], h["p99_ms"],
                         "met" if h["p99_ms"] < 20 else "MISSED by %.1f ms" % (h["p99_ms"] - 20),
                         h["rss_kb"] / 1024.0, h["command"]))
    lines += ["", "Server: %s. Raw JSON: `%s`." % ("; ".join(
        "`%s`" % r["server_command"] for r in results), json_rel)]
    return "\n".join(lines)


def md_scaling(results, json_rel, args):
    lines = ["## Scaling: order path at 1, 2, 4, 8, 16, 64 concurrent clients", "",
             "Closed loop, one fresh user per client for every point (every point starts with "
             "the same per-user history), a warm-up of a tenth of the count first, bounded by "
             "%d..%d orders and %d s per point. PostgreSQL points also run pgbench with the same "
             "script and concurrency on the same users." % (args.scale_count_min,
                                                              args.scale_count_max,
                                                              args.scale_seconds), "",
             "| clients | " + " | ".join(
                 "%s orders/s (p50/p99 ms)" % r["backend"] for r in results) +
             " | pgbench orders/s (p50/p99 ms) | ratio ours(PG)/pgbench |",
             "|---" * (len(results) + 3) + "|"]
    by = {r["backend"]: {p["clients"]: p for p in r["points"]} for r in results}
    for c in args.scale:
        cells = []
        pgb = None
        ours_pg = None
        for r in results:
            p = by[r["backend"]].get(c)
            if not p:
                cells.append("-")
                continue
            o = p["ours"]
            cells.append("%.0f (%.1f / %.1f)%s" % (o["orders_per_s"], o["p50_ms"], o["p99_ms"],
                                                   "" if not o["errors"] else
                                                   " %d err" % o["errors"]))
            if "pgbench" in p:
                pgb = p["pgbench"]
                ours_pg = o["orders_per_s"]
        lines.append("| %d | %s | %s | %s |" % (
            c, " | ".join(cells),
            "%.0f (%.1f / %.1f)" % (pgb["orders_per_s"], pgb["p50_ms"], pgb["p99_ms"])
            if pgb else "-", "%.2f" % (ours_pg / pgb["orders_per_s"]) if pgb else "-"))
    lines += ["", "Commands: `%s` (threads/count vary per point); `%s`. Raw JSON: `%s`." % (
        results[0]["points"][-1]["ours"]["command"],
        next((p["pgbench"]["command"] for r in results for p in r["points"] if "pgbench" in p),
             "-"), json_rel)]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", choices=["authread", "orders", "scaling"], required=True)
    ap.add_argument("--server", required=True)
    ap.add_argument("--bench-orders")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--out", default=os.path.join(tb.ROOT, "bench", "results"))
    ap.add_argument("--results-md", default=os.path.join(tb.ROOT, "bench", "RESULTS.md"))
    ap.add_argument("--rounds", type=int, default=2)
    # auth'd read
    ap.add_argument("--h2-requests", type=int, default=30000)
    ap.add_argument("--h2-warmup", type=int, default=2000)
    ap.add_argument("--h2-clients", type=int, default=16)
    ap.add_argument("--h2-streams", type=int, default=10)
    ap.add_argument("--h2-timeout", type=int, default=120)
    # order path
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--count", type=int, default=3000)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--half-seconds", type=float, default=10)
    # scaling
    ap.add_argument("--scale", default="1,2,4,8,16,64")
    ap.add_argument("--scale-per-client", type=int, default=100)
    ap.add_argument("--scale-count-min", type=int, default=300)
    ap.add_argument("--scale-count-max", type=int, default=2000)
    ap.add_argument("--scale-seconds", type=float, default=10)
    args = ap.parse_args()
    args.scale = [int(x) for x in args.scale.split(",")]
    args.server = os.path.abspath(args.server)
    args.bench_orders = args.bench_orders and os.path.abspath(args.bench_orders)
    args.pgbench_script = os.path.join(tb.ROOT, "bench", "orders", "pgbench_order.sql")
    args.workdir = tempfile.mkdtemp(prefix="twbench-%s-" % args.scenario)
    os.chmod(args.workdir, 0o711)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    head = "Run %s on %s; 1-minute load average at the start %.1f." % (
        when, tb.machine(), os.getloadavg()[0])
    if args.scenario == "authread":
        res = scenario_authread(args, args.workdir)
        rel = tb.save_json(args.out, "authread", res)
        tb.write_section(args.results_md, "authread", md_authread(res, rel) + "\n\n" + head)
        return 0
    backends = args.backends.split(",")
    fn = scenario_orders if args.scenario == "orders" else scenario_scaling
    results = [fn(args, args.workdir, k) for k in backends]
    rel = tb.save_json(args.out, args.scenario, {"scenario": args.scenario, "runs": results})
    md = (md_orders if args.scenario == "orders" else md_scaling)(results, rel, args)
    tb.write_section(args.results_md, args.scenario, md + "\n\n" + head)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Where the time goes at the order path's peak: one closed-loop SubmitOrder run (bench_orders,
--clients threads, one user each) on one backend, measured three ways at once:
  - CPU seconds per order of each process group (tradewinkd, PostgreSQL's backends, the load
    generator), from /proc and getrusage, so the split needs no profiler;
  - a system-wide `perf record` (cpu-clock, call graphs) over the same seconds: the share of
    samples per command and thread, and the hottest symbols of tradewinkd and postgres;
  - on PostgreSQL, pg_stat_statements (preloaded in the throw-away server): time per statement.
Prints a plain-text report (also saved to bench/results/profile-<backend>-<stamp>.txt). Other
work on the machine shows up in the perf shares under its own command name. Everything on
127.0.0.1; every process started here is stopped by its PID.
"""

import argparse
import glob
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import twbench as tb  # noqa: E402
import bench  # noqa: E402


def cpu_s(pid, reaped=False):
    """utime + stime of a process (all its threads), seconds; with reaped, plus that of its
    children it has waited for (PostgreSQL's exited backends)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            parts = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(parts[11]) + int(parts[12])
    if reaped:
        ticks += int(parts[13]) + int(parts[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def pg_cpu_s(pids):
    """CPU seconds of a PostgreSQL server so far: its live processes (pids[0] the postmaster,
    whose reaped children count too); compare two readings."""
    return sum(cpu_s(p, reaped=(i == 0)) for i, p in enumerate(pids))


def pg_reaped_s(pids):
    """The part of pg_cpu_s spent by processes that have exited (autovacuum workers, closed
    connections) plus the postmaster itself."""
    return cpu_s(pids[0], reaped=True) if pids else 0.0


def pg_pids(pg):
    try:
        with open(os.path.join(pg.dir, "data", "postmaster.pid")) as f:
            master = int(f.readline())
    except OSError:
        return []
    out = [master]
    for st in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(st) as f:
                parts = f.read().rsplit(")", 1)[1].split()
            if int(parts[1]) == master:
                out.append(int(st.split("/")[2]))
        except (OSError, ValueError):
            pass
    return out


def perf_report(data, *extra):
    p = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "-g", "none",
                        "--percent-limit", "0.5"] + list(extra), capture_output=True, text=True,
                       timeout=300)
    return "\n".join(line for line in p.stdout.splitlines()
                     if line.strip() and not line.startswith("#"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--bench-orders", required=True)
    ap.add_argument("--backend", choices=["sqlite", "postgresql"], default="postgresql")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--out", default=os.path.join(tb.ROOT, "bench", "results"))
    args = ap.parse_args()
    args.server = os.path.abspath(args.server)
    args.bench_orders = os.path.abspath(args.bench_orders)
    args.workdir = tempfile.mkdtemp(prefix="twprofile-")
    args.floor_script = os.path.join(tb.ROOT, "bench", "orders", "floor.sql")
    args.sqlite_floor = os.path.join(os.path.dirname(args.bench_orders), "sqlite_floor")
    os.chmod(args.workdir, 0o711)
    settings = ("shared_preload_libraries=pg_stat_statements", "pg_stat_statements.track=all")
    be = bench.Backend(args, args.backend, args.workdir,
                       pg_settings=settings if args.backend == "postgresql" else ())
    lines = ["profile %s, %d clients, %g s closed loop, %s; load average at start %.1f" % (
        args.backend, args.clients, args.seconds, time.strftime("%Y-%m-%d %H:%M UTC",
                                                               time.gmtime()),
        os.getloadavg()[0])]
    try:
        tokfile, _, _ = be.users(args.clients)
        bench.bench_orders(args, be.srv, tokfile, args.clients, args.warmup, 30, prefix="w")
        if be.pg:
            be.pg.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            be.pg.psql("SELECT pg_stat_statements_reset()")
        pids = pg_pids(be.pg) if be.pg else []
        srv0 = cpu_s(be.srv.proc.pid)
        pg0 = pg_cpu_s(pids) if pids else 0.0
        pgr0 = pg_reaped_s(pids)
        kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        data = os.path.join(args.workdir, "perf.data")
        perf = subprocess.Popen(["perf", "record", "-a", "-g", "-F", "499", "-o", data, "--",
                                 "sleep", "%g" % args.seconds], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        t0 = time.monotonic()
        o = bench.bench_orders(args, be.srv, tokfile, args.clients, 1000000, args.seconds,
                               prefix="prof")
        wall = time.monotonic() - t0
        perf.wait(timeout=args.seconds + 120)
        kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        srv_cpu = cpu_s(be.srv.proc.pid) - srv0
        pids1 = pg_pids(be.pg) if be.pg else []
        pg_cpu = pg_cpu_s(pids1) - pg0 if be.pg else 0.0
        pg_reaped = pg_reaped_s(pids1) - pgr0
        # children: bench_orders and perf (perf's own share is small at 499 Hz)
        gen_cpu = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
        n = max(1, o["ok"])
        lines += ["orders: %d in %.1f s = %.0f orders/s, p50 %.2f p99 %.2f max %.1f ms" % (
            o["ok"], o["elapsed_s"], o["orders_per_s"], o["p50_ms"], o["p99_ms"], o["max_ms"]),
            "CPU per order (ms): tradewinkd %.3f, postgres %.3f (of which exited processes "
            "and postmaster %.3f; %d server processes before, %d after), load generator + perf "
            "%.3f; CPU busy of 2 cores by these: %.0f%% over %.1f s wall" % (
                1000 * srv_cpu / n, 1000 * pg_cpu / n, 1000 * pg_reaped / n, len(pids),
                len(pids1), 1000 * gen_cpu / n,
                100 * (srv_cpu + pg_cpu + gen_cpu) / (2 * wall), wall), "",
            "perf samples by command (whole machine, incl. other work):",
            perf_report(data, "--sort", "comm"), "",
            "tradewinkd's samples by thread (tid:name), share of its own samples:"]
        rel = ("--percentage", "relative")
        lines += perf_report(data, "--comms", "tradewinkd", "--sort", "pid",
                             *rel).splitlines()[:20] + [""]
        for comm in ["tradewinkd", "postgres"]:
            lines += ["%s's samples by library:" % comm]
            lines += perf_report(data, "--comms", comm, "--sort", "dso", *rel).splitlines()[:12]
            lines += ["", "hottest symbols, %s (share of its own samples):" % comm]
            lines += perf_report(data, "--comms", comm, "--sort", "dso,sym",
                                 *rel).splitlines()[:30] + [""]
        q = ("SELECT calls, round(total_exec_time::numeric, 1), "
             "round(mean_exec_time::numeric, 3), left(regexp_replace(query, '\\s+', ' ', 'g'), "
             "110) FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 14")
        if be.pg:
            lines += ["pg_stat_statements (calls | total ms | mean ms | query):",
                      be.pg.psql(q).rstrip(), ""]
            tot = be.pg.psql("SELECT round(sum(total_exec_time)::numeric, 1), sum(calls) FROM "
                             "pg_stat_statements").strip()
            lines += ["pg_stat_statements total exec ms | calls: " + tot]
        if be.pg:  # the floor on the same server, CPU per order measured the same way
            _, buid0, _ = be.users(args.clients)
            be.pg.psql("SELECT pg_stat_statements_reset()")
            pg0 = pg_cpu_s(pg_pids(be.pg))
            kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.monotonic()
            cmd = ["pgbench", "-n", "-M", "prepared", "-f", args.floor_script, "-D",
                   "uid0=%d" % buid0, "-D", "nusers=%d" % args.clients, "-D",
                   "now_us=%d" % bench.NOW_US, "-c", str(args.clients), "-j", "2", "-T",
                   "%d" % max(1, int(args.seconds / 2)), be.pg.url]
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.seconds + 60)
            wall = time.monotonic() - t0
            kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            pg_cpu = pg_cpu_s(pg_pids(be.pg)) - pg0
            gen_cpu = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
            m = re.search(r"number of transactions actually processed: (\d+)", p.stdout)
            nf = int(m.group(1)) if m else 0
            lines += ["", "floor (pgbench floor.sql, %d clients, %.1f s): %d orders = %.0f/s; CPU "
                      "per order (ms): postgres %.3f, pgbench %.3f" % (
                          args.clients, wall, nf, nf / wall, 1000 * pg_cpu / max(1, nf),
                          1000 * gen_cpu / max(1, nf)), "command: " + bench.sh(cmd),
                      "floor's pg_stat_statements (calls | total ms | mean ms | query):",
                      be.pg.psql(q).rstrip()]
        else:  # the SQLite floor on the same database file, CPU per order the same way
            _, buid0, _ = be.users(args.clients)
            kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cmd = [args.sqlite_floor, "--db", be.db_path, "--uid0", str(buid0), "--threads",
                   str(args.clients), "--count", "1000000", "--prefix", "prof", "--duration",
                   "%g" % max(1, args.seconds / 2)]
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.seconds + 60)
            kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            f = json.loads(p.stdout) if p.returncode == 0 else {"ok": 0, "orders_per_s": 0,
                                                                  "elapsed_s": 0}
            cpu = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
            lines += ["", "floor (sqlite_floor, %d threads, %.1f s): %d orders = %.0f/s, p50 %s "
                      "p99 %s ms; CPU per order (ms): %.3f" % (
                          args.clients, f["elapsed_s"], f["ok"], f["orders_per_s"],
                          f.get("p50_ms"), f.get("p99_ms"), 1000 * cpu / max(1, f["ok"])),
                      "command: " + bench.sh(cmd)]
        lines.append("bench_orders: " + json.dumps({k: o[k] for k in (
            "ok", "errors", "not_filled", "orders_per_s", "p50_ms", "p99_ms", "max_ms")}))
        lines.append("server: " + be.srv.command())
    finally:
        be.close()
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "profile-%s-%s.txt" % (
        args.backend, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())))
    with open(path, "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

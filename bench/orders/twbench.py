"""Shared helpers of the service-level benchmarks (auth'd read, order path, scaling, streams).

Design. Every process is started by us with an explicit PID and stopped by that PID
(SIGTERM, then SIGKILL after a grace period). Everything listens on 127.0.0.1 only.
tradewinkd runs in a fresh temporary cwd (its dev key and master keys land there) with the
rate limits raised so the limiter does not cap the load, and at TW_LOG_LEVEL=warn (no access
log). Calls are checked through the server's own tw_rpc_calls_total counter on the ops port,
because h2load counts HTTP 200 as success whatever the grpc-status.
Setup (sim clock, quotes, users, risk limits) goes through the public API with the typed
Python stubs of tests/services/twapi.py.
"""

import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "services"))

from google.protobuf import duration_pb2, timestamp_pb2  # noqa: E402,F401
from google.protobuf import wrappers_pb2 as W  # noqa: E402

from twapi import Api, common, sim  # noqa: E402

# Monday 2026-11-30 15:00 UTC = 10:00 New York, a trading day.
MONDAY_10AM = 1796050800
SYMBOL = "BNCH"
RATE_ENV = {k: "1000000/s:1000000" for k in
            ("TW_RATE_API", "TW_RATE_ORDERS", "TW_RATE_PUBLIC", "TW_RATE_AUTH_FAIL")}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(sorted_vals, p):
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:", "Threads:")):
                k, v = line.split(":", 1)
                out[k.lower()] = int(v.split()[0])
    return out


def stop_pid(proc, grace=15):
    if proc.poll() is not None:
        return proc.returncode
    os.kill(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        return proc.wait()


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %s (%d cores; %s)" % (platform.node(), cpu, os.cpu_count(), platform.release())


class PgServer:
    """A throw-away PostgreSQL via scripts/pg-test-server.sh (stopped by the same script,
    which stops exactly the server of its data directory)."""

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "pg")
        self.port = free_port()
        self.url = None

    def start(self, settings=()):
        """settings: extra NAME=VALUE server settings (e.g. shared_preload_libraries=...)."""
        os.makedirs(self.dir, exist_ok=True)
        d = self.dir
        while d != "/":  # parents must be traversable by the postgres user when we are root
            os.chmod(d, os.stat(d).st_mode | 0o011) if os.getuid() == 0 else None
            d = os.path.dirname(d)
        out = subprocess.run([os.path.join(ROOT, "scripts", "pg-test-server.sh"), "start",
                              self.dir, str(self.port)] + list(settings), capture_output=True,
                             text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError("pg-test-server.sh start failed: " + out.stderr)
        self.url = out.stdout.strip().splitlines()[-1]
        return self.url

    def stop(self):
        subprocess.run([os.path.join(ROOT, "scripts", "pg-test-server.sh"), "stop", self.dir],
                       capture_output=True, timeout=120)

    def psql(self, sql):
        return subprocess.run(["psql", "-X", "-q", "-t", "-A", self.url, "-c", sql],
                              capture_output=True, text=True, check=True, timeout=60).stdout


class TwServer:
    """tradewinkd on a free loopback port in a fresh temp cwd."""

    def __init__(self, binary, db_url=None, env=None, pin=None, workdir=None):
        self.binary = binary
        self.cwd = tempfile.mkdtemp(prefix="twsrv-", dir=workdir)
        self.port = free_port()
        self.ops_port = free_port()
        self.addr = "127.0.0.1:%d" % self.port
        self.env = {"TW_LISTEN": self.addr, "TW_OPS_LISTEN": "127.0.0.1:%d" % self.ops_port,
                    "TW_LOG_LEVEL": "warn"}
        self.env.update(RATE_ENV)
        self.env["TW_DATABASE_URL"] = db_url or "sqlite:" + os.path.join(self.cwd, "tw.db")
        self.env.update(env or {})
        self.pin = pin
        self.proc = None

    def command(self):
        pre = ["taskset", "-c", self.pin] if self.pin else []
        return " ".join("%s=%s" % kv for kv in sorted(self.env.items())) + " " + \
            " ".join(pre + [self.binary])

    def start(self):
        env = dict(os.environ)
        env.update(self.env)
        pre = ["taskset", "-c", self.pin] if self.pin else []
        self.log = open(os.path.join(self.cwd, "server.log"), "wb")
        self.proc = subprocess.Popen(pre + [self.binary], cwd=self.cwd, env=env,
                                     stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("tradewinkd did not start:\n" +
                           open(os.path.join(self.cwd, "server.log"), errors="replace").read())

    def rss_kb(self):
        return proc_status(self.proc.pid).get("vmrss")

    def status(self):
        return proc_status(self.proc.pid)

    def calls(self, method):
        """{code: count} from tw_rpc_calls_total for one full method path."""
        txt = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.ops_port,
                                     timeout=10).read().decode()
        out = {}
        for line in txt.splitlines():
            if line.startswith("tw_rpc_calls_total{") and method in line:
                m = re.search(r'code="([A-Z_]+)"', line)
                out[m.group(1) if m else "?"] = int(float(line.rsplit(None, 1)[1]))
        return out

    def stop(self):
        rc = stop_pid(self.proc) if self.proc else None
        self.log.close()
        return rc


def setup_market(api, admin):
    api.call("Sim", "SetClock", token=admin, time=timestamp_pb2.Timestamp(seconds=MONDAY_10AM))
    # Zero spread: buy/sell round trips cost nothing, so no loss limit is ever approached.
    api.call("Sim", "SetQuotes", token=admin,
             quotes=[sim.Quote(symbol=SYMBOL, bid="100", ask="100", last="100")])


def setup_users(api, admin, n, prefix="bench-u"):
    """n users with tokens; each user's limits loosened by the admin so that the benchmark's
    alternating buy/sell of 1 share is never refused (rate, duplicates, PDT, positions).
    Returns (tokens, user_ids)."""
    toks, uids = [], []
    for i in range(n):
        tok = api.token("%s%03d" % (prefix, i), ttl=86400)
        uid = api.call("Risk", "GetState", token=tok).state.user_id
        api.call("Risk", "SetLimits", token=admin, user_id=uid,
                 max_orders_per_second=W.Int32Value(value=1000000),
                 duplicate_window_seconds=W.Int32Value(value=0),
                 max_open_positions=W.Int32Value(value=100),
                 max_order_notional_pct=W.StringValue(value="100"),
                 max_sector_pct=W.StringValue(value="100"),
                 daily_loss_pct=W.StringValue(value="100"),
                 max_drawdown_pct=W.StringValue(value="100"),
                 pdt_enabled=W.BoolValue(value=False))
        toks.append(tok)
        uids.append(int(uid))
    return toks, uids


def write_section(md_path, name, body):
    """Replace (or append) the <!-- name:begin --> ... <!-- name:end --> section."""
    begin = "<!-- %s:begin (generated by bench/run.sh) -->" % name
    end = "<!-- %s:end -->" % name
    text = open(md_path).read() if os.path.exists(md_path) else "# Benchmark results\n"
    block = begin + "\n" + body.rstrip() + "\n" + end
    pat = re.compile(re.escape("<!-- %s:begin" % name) + r".*?" + re.escape(end), re.S)
    text = pat.sub(lambda _m: block, text) if pat.search(text) else \
        text.rstrip() + "\n\n" + block + "\n"
    with open(md_path, "w") as f:
        f.write(text)


def save_json(out_dir, name, obj):
    os.makedirs(out_dir, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = os.path.join(out_dir, "%s-%s.json" % (name, stamp))
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
    return os.path.relpath(path, ROOT)


def fmt(v, nd=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return ("%%.%df" % nd) % v
    return str(v)


__all__ = ["Api", "common", "TwServer", "PgServer", "setup_market", "setup_users",
           "write_section", "save_json", "percentile", "free_port", "machine", "fmt",
           "proc_status", "stop_pid", "SYMBOL", "ROOT"]

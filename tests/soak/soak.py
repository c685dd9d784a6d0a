#!/usr/bin/python3
"""Bounded soak of tradewinkd with a secret-leak sweep at the end (optional in CI).

Purpose: run mixed traffic from many users against one tradewinkd for a fixed time (default
10 minutes), sample its resident memory and open file descriptors every 10 s, and fail when
either keeps growing or when any call ends with an error other than the expected ones. Then
sweep everything the run produced (server log, database dump, /metrics, the work directory)
for every broker secret, token and master key used, and check the core-dump limit.

Design: the server runs outside dev mode (TW_AUTH_MODE=pem with a key made here, explicit
TW_VAULT_MASTER_KEYS) so the production hardening (no core dumps) is what gets checked. Users
each store an Alpaca key with a unique secret; a third of them trade through an Alpaca stub in
this process (their secrets are decrypted and sent on every broker call), the rest through the
built-in sim exchange. Client threads use their own HTTP/2 connections. Traffic: limit and
market orders (buys and sells), cancels, order/position/risk/audit reads, dry-run checks,
audit chain verification, order-update streams opened and closed, key add/test/delete churn,
and calls with bad tokens. An admin moves sim quotes so resting orders fill; the stub fills its
orders after a moment so the reconciler sees fills too. Prices stay near $10 and quantities
small (see the issue note on the position-notional overflow).

Expected (not errors): risk rejections (an order stored REJECTED is an OK call),
FAILED_PRECONDITION / NOT_FOUND on cancelling an order that already finished, UNAUTHENTICATED
for the deliberate bad tokens. Anything else counts as an error.

Flatness: mean of the last third of the samples within 15% of the mean of the second third
(the first third is warm-up), for RSS and for fds (fds: at least 4 descriptors of slack, the
count is small and moves with connections).

Usage: TW_BINARY=build/.../tradewinkd /usr/bin/python3 tests/soak/soak.py [--minutes 10]
       [--users 24] [--threads 6] [--report soak.json]
With TW_TEST_USE_PG=1 and TW_TEST_PG_URL the server runs on PostgreSQL (a schema of its own).
Reading /proc/PID/fd of a non-dumpable process (outside dev mode) needs the same privileges as
the server's owner to be root, or run the soak as root.
"""

import argparse
import base64
import collections
import json
import os
import random
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fault"))

import grpc  # noqa: E402
import jwt  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from google.protobuf import wrappers_pb2  # noqa: E402

from faultlib import (AlpacaStub, LIMIT, MARKET, BUY, SELL, PAPER, TwServer, common,  # noqa: E402
                      fd_count, http_get, own_api, rss_kb, sim, status_name)
import twserver  # noqa: E402  (on sys.path via faultlib)

ISSUER = "https://issuer.soak.test"
SYMBOLS = ["AAPL", "MSFT", "JNJ", "XOM", "KO", "PG", "WMT", "CVX", "PFE", "JPM"]
MAX_RESTING = 50  # open orders a soak user keeps; older ones are cancelled
EXPECTED = {"CancelOrder": {"FAILED_PRECONDITION", "NOT_FOUND"},
            "BadToken": {"UNAUTHENTICATED"}}


class Soak:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.codes = collections.Counter()  # (method, code)
        self.errors = []  # first few unexpected errors
        self.order_status = collections.Counter()
        self.tokens = set()
        self.secrets = set()
        self.stop = threading.Event()
        self.samples = []
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_pem = key.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
        self.pub_pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.master = base64.b64encode(os.urandom(32)).decode()

    # -- tokens and bookkeeping ------------------------------------------------------------------
    def token(self, sub, admin=False, ttl=3 * 3600):
        now = int(time.time())
        t = jwt.encode({"sub": sub, "iss": ISSUER, "iat": now, "exp": now + ttl,
                        "role": "admin" if admin else "user", "jti": uuid.uuid4().hex},
                       self.key_pem, algorithm="RS256")
        self.tokens.add(t)
        return t

    def secret(self):
        s = "soak-secret-" + uuid.uuid4().hex
        self.secrets.add(s)
        return s

    def record(self, method, code, err=None):
        with self.lock:
            self.codes[(method, code)] += 1
            if code != "OK" and code not in EXPECTED.get(method, ()) and len(self.errors) < 20:
                self.errors.append("%s: %s %s" % (method, code, (err or "")[:200]))

    def call(self, api, method_name, fn, *a, **kw):
        try:
            r = fn(*a, **kw)
            self.record(method_name, "OK")
            return r
        except grpc.RpcError as e:
            self.record(method_name, e.code().name, e.details())
            return None

    # -- setup -----------------------------------------------------------------------------------
    def start(self):
        self.stub = AlpacaStub().start()
        d = tempfile.mkdtemp(prefix="twsoak-keys-")
        self.keydir = d
        with open(os.path.join(d, "jwt.pub"), "wb") as f:
            f.write(self.pub_pem)
        env = {"TW_AUTH_MODE": "pem", "TW_JWT_PUBLIC_KEY_FILE": os.path.join(d, "jwt.pub"),
               "TW_JWT_ISSUER": ISSUER, "TW_VAULT_MASTER_KEYS": "v1:" + self.master,
               "TW_ALPACA_BASE_URL": self.stub.url, "TW_ALPACA_DATA_URL": self.stub.url}
        # The stub's latest trade follows the soak's own quotes (alpaca users' reference price).
        self.stub.trade_price_fn = (
            lambda sym: "%.2f" % self.quotes[sym] if sym in getattr(self, "quotes", {}) else None)
        self.srv = TwServer(env=env)
        self.srv.start()
        self.pid = self.srv.proc.pid
        self.ops_port = self.srv.listening["ops_port"]
        api = own_api(self.srv.addr)
        self.admin = self.token("soak-admin", admin=True)
        self.quotes = {s: 10.0 for s in SYMBOLS}
        self.push_quotes(api)
        self.users = []
        for i in range(self.args.users):
            sub = "soak-user-%03d" % i
            tok = self.token(sub)
            k = api.call("KeyVault", "PutBrokerKey", token=tok, broker="alpaca",
                         environment=PAPER, key_id="AKSOAK%010d" % i, secret=self.secret()).key
            via_stub = i % 3 == 0
            if via_stub:
                api.call("Orders", "UpdateAccountSettings", token=tok,
                         default_broker_key_id=wrappers_pb2.StringValue(value=k.id))
            api.call("Risk", "SetLimits", token=tok,
                     max_orders_per_second=wrappers_pb2.Int32Value(value=100),
                     duplicate_window_seconds=wrappers_pb2.Int32Value(value=1))
            self.users.append({"sub": sub, "tok": tok, "stub": via_stub, "n": 0,
                               "open": [], "ulock": threading.Lock()})
        api.close()

    def push_quotes(self, api):
        qs = []
        for s, p in self.quotes.items():
            qs.append(sim.Quote(symbol=s, bid="%.2f" % (p - 0.01), ask="%.2f" % (p + 0.01),
                                last="%.2f" % p))
        self.call(api, "SetQuotes", api.call, "Sim", "SetQuotes", token=self.admin, quotes=qs)

    # -- traffic ---------------------------------------------------------------------------------
    def one(self, api, rnd):
        u = rnd.choice(self.users)
        tok = u["tok"]
        r = rnd.random()
        if r < 0.35:
            with u["ulock"]:
                u["n"] += 1
                n = u["n"]
            sym = rnd.choice(SYMBOLS)
            kind = LIMIT if rnd.random() < 0.6 else MARKET
            px = self.quotes[sym]
            side = BUY if rnd.random() < 0.55 else SELL
            limit = "%.2f" % (px * (0.97 if side == BUY else 1.03)) if kind == LIMIT else ""
            resp = self.call(api, "SubmitOrder", api.call, "Orders", "SubmitOrder", token=tok,
                             client_order_id="%s-%06d" % (u["sub"], n), symbol=sym, side=side,
                             type=kind, qty=str(rnd.randint(1, 5)), limit_price=limit,
                             time_in_force=common.TIME_IN_FORCE_DAY,
                             origin=common.ORDER_ORIGIN_USER)
            if resp is not None:
                with self.lock:
                    self.order_status[status_name(resp.order.status)] += 1
                stale = None
                if status_name(resp.order.status) in ("ACCEPTED", "PENDING_SUBMIT"):
                    with u["ulock"]:
                        u["open"].append(resp.order.id)
                        if len(u["open"]) > MAX_RESTING:
                            stale = u["open"].pop(0)
                if stale:
                    # Like a trader (or the day's end for DAY orders): resting orders do not
                    # pile up without bound, so the soak measures a steady state.
                    self.call(api, "CancelOrder", api.call, "Orders", "CancelOrder", token=tok,
                              order_id=stale)
        elif r < 0.42:
            with u["ulock"]:
                oid = u["open"].pop(0) if u["open"] else None
            if oid:
                self.call(api, "CancelOrder", api.call, "Orders", "CancelOrder", token=tok,
                          order_id=oid)
        elif r < 0.52:
            self.call(api, "ListOrders", api.call, "Orders", "ListOrders", token=tok,
                      page_size=50)
        elif r < 0.60:
            self.call(api, "ListPositions", api.call, "Orders", "ListPositions", token=tok)
        elif r < 0.67:
            self.call(api, "GetState", api.call, "Risk", "GetState", token=tok)
        elif r < 0.73:
            self.call(api, "CheckOrder", api.call, "Risk", "CheckOrder", token=tok,
                      symbol=rnd.choice(SYMBOLS), side=BUY, type=MARKET, qty="1",
                      time_in_force=common.TIME_IN_FORCE_DAY, origin=common.ORDER_ORIGIN_USER)
        elif r < 0.79:
            self.call(api, "ListEvents", api.call, "Audit", "ListEvents", token=tok,
                      page_size=50)
        elif r < 0.82:
            self.call(api, "VerifyChain", api.call, "Audit", "VerifyChain", token=tok)
        elif r < 0.87:
            self.call(api, "ListBrokerKeys", api.call, "KeyVault", "ListBrokerKeys", token=tok)
        elif r < 0.89:
            # key churn: add, test (decrypts; the stub answers), delete
            k = self.call(api, "PutBrokerKey", api.call, "KeyVault", "PutBrokerKey", token=tok,
                          broker="alpaca", environment=PAPER, key_id="AKCHURN%09d" % rnd.randint(
                              0, 10 ** 9), secret=self.secret())
            if k is not None:
                self.call(api, "TestBrokerKey", api.call, "KeyVault", "TestBrokerKey",
                          token=tok, broker_key_id=k.key.id)
                self.call(api, "DeleteBrokerKey", api.call, "KeyVault", "DeleteBrokerKey",
                          token=tok, broker_key_id=k.key.id)
        elif r < 0.91:
            # an order-update stream, opened and dropped
            try:
                it = api.stream("Orders", "StreamOrderUpdates", token=tok, timeout=1.0)
                for _ in it:
                    pass
                self.record("StreamOrderUpdates", "OK")
            except grpc.RpcError as e:
                c = e.code().name
                self.record("StreamOrderUpdates", "OK" if c == "DEADLINE_EXCEEDED" else c,
                            e.details())
        elif r < 0.94:
            bad = rnd.choice(["not.a.token", tok[:-4] + "AAAA", ""])
            try:
                api.call("Auth", "WhoAmI", token=bad or None)
                self.record("BadToken", "OK(unexpected)")
            except grpc.RpcError as e:
                self.record("BadToken", e.code().name, e.details())
        else:
            self.call(api, "WhoAmI", api.call, "Auth", "WhoAmI", token=tok)

    def client(self, seed):
        rnd = random.Random(seed)
        api = own_api(self.srv.addr)
        while not self.stop.is_set():
            self.one(api, rnd)
            time.sleep(0.005)
        api.close()

    def market(self):
        """Admin moves quotes (resting orders fill); the stub fills its orders."""
        rnd = random.Random(7)
        api = own_api(self.srv.addr)
        while not self.stop.wait(1.0):
            for s in SYMBOLS:
                self.quotes[s] = min(10.5, max(9.5, self.quotes[s] + rnd.uniform(-0.1, 0.1)))
            self.push_quotes(api)
            with self.stub.lock:
                pending = [c for c, o in self.stub.orders.items() if o["status"] == "accepted"]
            for c in pending:
                try:
                    self.stub.fill(c, "10.00")
                except KeyError:
                    pass
        api.close()

    def sampler(self):
        t0 = time.monotonic()
        while True:
            with self.lock:
                calls = sum(self.codes.values())
            self.samples.append({"t": round(time.monotonic() - t0, 1),
                                 "rss_kb": rss_kb(self.pid), "fds": fd_count(self.pid),
                                 "calls": calls})
            if self.stop.wait(self.args.interval):
                return

    # -- checks ----------------------------------------------------------------------------------
    @staticmethod
    def flat(series, rel=0.15, abs_slack=0):
        n = len(series)
        if n < 6:
            return True, 0.0, 0.0
        mid = series[n // 3: 2 * n // 3]
        last = series[2 * n // 3:]
        m, l = statistics.mean(mid), statistics.mean(last)
        return l <= m * (1 + rel) + abs_slack, m, l

    def leak_sweep(self):
        needles = {}
        for s in self.secrets:
            needles[s] = "broker secret"
        for t in self.tokens:
            needles[t] = "token"
            needles[t.rsplit(".", 1)[1]] = "token signature"
        needles[self.master] = "vault master key"
        hay = {}
        hay["server log"] = self.srv.stderr_text().encode()
        hay["database dump"] = twserver.db_dump(self.srv.workdir)
        _, metrics = http_get(self.ops_port, "/metrics")
        hay["/metrics"] = metrics.encode()
        for name in sorted(os.listdir(self.srv.workdir)):
            p = os.path.join(self.srv.workdir, name)
            if os.path.isfile(p):
                with open(p, "rb") as f:
                    hay["workdir/" + name] = f.read()
        hits = []
        for where, data in hay.items():
            for n, kind in needles.items():
                if n.encode() in data:
                    hits.append("%s in %s" % (kind, where))
        sizes = {k: len(v) for k, v in hay.items()}
        return hits, sizes, len(needles)

    def core_limit(self):
        with open("/proc/%d/limits" % self.pid) as f:
            for line in f:
                if line.startswith("Max core file size"):
                    parts = re.split(r"\s{2,}", line.strip())
                    return parts[1], parts[2]
        return None, None

    def run(self):
        self.start()
        threads = [threading.Thread(target=self.client, args=(i,), daemon=True)
                   for i in range(self.args.threads)]
        threads.append(threading.Thread(target=self.market, daemon=True))
        samp = threading.Thread(target=self.sampler, daemon=True)
        samp.start()
        for th in threads:
            th.start()
        end = time.monotonic() + self.args.minutes * 60
        while time.monotonic() < end:
            time.sleep(min(5, max(0, end - time.monotonic())))
            if not self.srv.alive():
                break
        self.stop.set()
        for th in threads:
            th.join(60)
        samp.join(30)
        alive = self.srv.alive()
        core_soft, core_hard = self.core_limit() if alive else (None, None)
        hits, sizes, n_needles = self.leak_sweep()
        rc = self.srv.stop(timeout=30)
        text = self.srv.stderr_text()
        san = twserver.sanitizer_reports(text)

        rss = [s["rss_kb"] for s in self.samples]
        fds = [s["fds"] for s in self.samples]
        rss_ok, rss_mid, rss_last = self.flat(rss)
        fds_ok, fds_mid, fds_last = self.flat(fds, abs_slack=4)
        bymethod = collections.defaultdict(dict)
        unexpected = 0
        for (m, c), n in sorted(self.codes.items()):
            bymethod[m][c] = n
            if c != "OK" and c not in EXPECTED.get(m, ()):
                unexpected += n
        report = {
            "minutes": self.args.minutes, "users": self.args.users,
            "threads": self.args.threads, "backend": "postgresql" if
            twserver.backend_url() else "sqlite",
            "calls": sum(self.codes.values()), "unexpected_errors": unexpected,
            "first_errors": self.errors, "by_method": bymethod,
            "orders": dict(self.order_status), "stub_orders": len(self.stub.orders),
            "stub_max_posts_per_order": max(self.stub.posts.values() or [0]),
            "samples": self.samples,
            "rss_kb_mean_second_third": rss_mid, "rss_kb_mean_last_third": rss_last,
            "fds_mean_second_third": fds_mid, "fds_mean_last_third": fds_last,
            "leak_sweep": {"needles": n_needles, "hits": hits, "bytes_swept": sizes},
            "core_file_size": [core_soft, core_hard],
            "server_alive_at_end": alive, "exit_code": rc, "sanitizer": san,
        }
        failures = []
        if not alive:
            failures.append("tradewinkd died during the soak")
        if unexpected:
            failures.append("%d unexpected errors" % unexpected)
        if not rss_ok:
            failures.append("RSS grew: %.0f -> %.0f kB" % (rss_mid, rss_last))
        if not fds_ok:
            failures.append("fds grew: %.1f -> %.1f" % (fds_mid, fds_last))
        if hits:
            failures.append("leak sweep hits: %s" % hits)
        if (core_soft, core_hard) != ("0", "0"):
            failures.append("core file size not 0 outside dev mode: %s/%s"
                            % (core_soft, core_hard))
        if self.stub.posts and max(self.stub.posts.values()) > 1:
            failures.append("an order was POSTed twice")
        if rc != 0 or san:
            failures.append("exit code %r, sanitizer %r" % (rc, san))
        report["failures"] = failures
        self.srv.cleanup()
        self.stub.stop()
        import shutil
        shutil.rmtree(self.keydir, ignore_errors=True)
        return report


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float,
                    default=float(os.environ.get("TW_SOAK_MINUTES", "10")))
    ap.add_argument("--users", type=int, default=24)
    ap.add_argument("--threads", type=int, default=6)
    ap.add_argument("--interval", type=float, default=10.0)
    ap.add_argument("--report", default=os.environ.get("TW_SOAK_REPORT"))
    args = ap.parse_args()
    report = Soak(args).run()
    print("soak: %.1f min, %d users, %d calls, unexpected errors %d, orders %s"
          % (args.minutes, args.users, report["calls"], report["unexpected_errors"],
             report["orders"]))
    print("soak: t(s)   RSS(kB)  fds  calls")
    for s in report["samples"]:
        print("soak: %6.1f %8d %4d %6d" % (s["t"], s["rss_kb"], s["fds"], s["calls"]))
    print("soak: RSS mean 2nd third %.0f kB, last third %.0f kB; fds %.1f -> %.1f"
          % (report["rss_kb_mean_second_third"], report["rss_kb_mean_last_third"],
             report["fds_mean_second_third"], report["fds_mean_last_third"]))
    print("soak: leak sweep: %d needles over %s bytes: %d hits; core file size %s"
          % (report["leak_sweep"]["needles"], report["leak_sweep"]["bytes_swept"],
             len(report["leak_sweep"]["hits"]), report["core_file_size"]))
    print("soak: by method: %s" % json.dumps(report["by_method"], sort_keys=True))
    if report["first_errors"]:
        print("soak: first errors:\n  " + "\n  ".join(report["first_errors"]))
    if args.report:
        with open(args.report, "w") as f:
            json.dump(report, f, indent=1, sort_keys=True)
    if report["failures"]:
        print("soak: FAILED: " + "; ".join(report["failures"]))
        return 1
    print("soak: PASSED")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(3))
    sys.exit(main())

"""Reads a warm account answers from memory (issue 18): Risk.GetState and
Orders.GetAccountSettings run on the completion-queue thread, without an executor and without
the database, when the ledger holds the account at a version the database confirmed recently
(TW_LEDGER_READ_MAX_AGE_MS) and nothing this process committed for the user since.

What a user relies on:
- the reads stay available while every executor waits on the database (before, they queued
  behind the blocked call and passed their deadline);
- the process's own changes show in the very next read, however long the age allows
  (settings, an order's fill, a halt, the admin kill switch);
- another replica's change shows within the age;
- the inline path refuses what the executor refuses (another user's state, a bad or missing
  token), with both accounts warm and the tokens cached.
"""

import os
import re
import subprocess
import threading
import time
import unittest
import urllib.request

import grpc
from google.protobuf import timestamp_pb2, wrappers_pb2

from twapi import Api, common, orders, risk, sim
from twserver import TwServer, backend_url, pg_schema_for

MON_10AM = 1795446000  # Monday 2026-11-23 10:00 New York
HALTED = risk.TRADING_STATE_HALTED
ACTIVE = risk.TRADING_STATE_ACTIVE
FILLED = orders.OrderStatus.Value("ORDER_STATUS_FILLED")


def reads_from(port):
    url = "http://127.0.0.1:%d/metrics" % port
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    out = {}
    for src in ("memory", "database"):
        m = re.search(r'^tradewink_ledger_reads_total\{answered_from="%s"\} (\S+)$' % src, text,
                      re.M)
        out[src] = int(float(m.group(1))) if m else 0
    return out


class DatabaseLock:
    """Holds every writer of the server's database off: SQLite's write lock from another
    process, or on PostgreSQL an EXCLUSIVE lock of risk_state (reads go on; every user
    transaction waits)."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.db = self.psql = None

    def __enter__(self):
        if backend_url():
            self.psql = subprocess.Popen(
                ["psql", "-q", "-X", "-v", "ON_ERROR_STOP=1", backend_url()],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            self.psql.stdin.write("SET search_path TO %s;\nBEGIN;\n"
                                  "LOCK TABLE risk_state IN EXCLUSIVE MODE;\n"
                                  "\\echo locked\n" % pg_schema_for(self.workdir))
            self.psql.stdin.flush()
            assert self.psql.stdout.readline().strip() == "locked"
        else:
            import sqlite3
            self.db = sqlite3.connect(os.path.join(self.workdir, "tradewink.db"),
                                      isolation_level=None, timeout=10)
            self.db.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, *exc):
        if self.psql:
            self.psql.stdin.write("ROLLBACK;\n")
            self.psql.stdin.close()
            self.psql.wait(timeout=10)
        if self.db:
            self.db.execute("ROLLBACK")
            self.db.close()


class Client:
    def __init__(self, srv, subject="alice"):
        self.srv = srv
        self.api = Api(srv.addr)
        self.admin = self.api.token("ops", admin=True)
        self.tok = self.api.token(subject)
        self.n = 0

    def call(self, svc, method, timeout=30, **kw):
        return self.api.call(svc, method, token=self.tok, timeout=timeout, **kw)

    def as_admin(self, svc, method, **kw):
        return self.api.call(svc, method, token=self.admin, **kw)

    def state(self, timeout=30):
        return self.call("Risk", "GetState", timeout=timeout).state

    def settings(self, timeout=30):
        return self.call("Orders", "GetAccountSettings", timeout=timeout).settings

    def submit(self, qty="10", timeout=30):
        self.n += 1
        return self.call("Orders", "SubmitOrder", timeout=timeout, client_order_id="i%d" % self.n,
                         symbol="AAPL", side=common.ORDER_SIDE_BUY,
                         type=common.ORDER_TYPE_MARKET, qty=qty,
                         time_in_force=common.TIME_IN_FORCE_DAY,
                         origin=common.ORDER_ORIGIN_USER).order

    def filled(self):
        o = self.submit()
        end = time.time() + 10
        while o.status != FILLED and time.time() < end:
            time.sleep(0.02)
            o = self.call("Orders", "GetOrder", order_id=o.id).order
        assert o.status == FILLED, o
        return o

    def market(self):
        self.as_admin("Sim", "SetClock", time=timestamp_pb2.Timestamp(seconds=MON_10AM))
        self.as_admin("Sim", "SetQuotes",
                      quotes=[sim.Quote(symbol="AAPL", bid="100", ask="100", last="100")])


class InlineReadsTest(unittest.TestCase):
    def start(self, **env):
        srv = TwServer(env=env).start()
        self.addCleanup(srv.cleanup)
        self.addCleanup(srv.stop_and_check, self)
        return srv

    def test_reads_answer_while_every_executor_waits_on_the_database(self):
        # One completion-queue thread; a long age so only the lock decides.
        srv = self.start(TW_WORKERS="1", TW_LEDGER_READ_MAX_AGE_MS="60000")
        executors = int(srv.listening["executors"])
        c = Client(srv)
        c.market()
        c.filled()
        warm_state, warm_settings = c.state(), c.settings()
        self.assertEqual(warm_state.open_positions, 1)
        before = reads_from(srv.listening["ops_port"])

        with DatabaseLock(srv.workdir):
            # One order per executor: each holds its thread, waiting for the lock.
            done = []
            writers = [threading.Thread(target=lambda: done.append(c.submit(qty="1", timeout=60)))
                       for _ in range(executors)]
            for w in writers:
                w.start()
            time.sleep(0.5)
            for _ in range(5):
                st = c.state(timeout=2)
                self.assertEqual(st.open_positions, warm_state.open_positions)
                self.assertEqual(st.equity, warm_state.equity)
                self.assertEqual(c.settings(timeout=2), warm_settings)
            self.assertEqual(done, [], "an order did not wait on the lock: no test")
        for w in writers:
            w.join(60)
        self.assertEqual(len(done), executors)

        after = reads_from(srv.listening["ops_port"])
        self.assertGreaterEqual(after["memory"] - before["memory"], 10, (before, after))

    def test_this_processes_own_changes_show_in_the_next_read(self):
        srv = self.start(TW_LEDGER_READ_MAX_AGE_MS="60000")
        c = Client(srv)
        c.market()
        for on in (True, False, True):
            c.settings()
            c.call("Orders", "UpdateAccountSettings",
                   autonomous_mode=wrappers_pb2.BoolValue(value=on))
            self.assertEqual(c.settings().autonomous_mode, on)

        self.assertEqual(c.state().open_positions, 0)
        c.state()
        c.filled()
        self.assertEqual(c.state().open_positions, 1)

        c.state()
        c.call("Risk", "Halt", reason="lunch")
        st = c.state()
        self.assertEqual(st.trading_state, HALTED)
        self.assertIn("lunch", st.halt_reason)
        c.call("Risk", "Resume")
        self.assertEqual(c.state().trading_state, ACTIVE)

        c.state()
        c.as_admin("Risk", "HaltAll", reason="exchange outage")
        st = c.state()
        self.assertTrue(st.global_halt)
        self.assertIn("exchange outage", st.halt_reason)
        c.as_admin("Risk", "ResumeAll")
        st = c.state()
        self.assertFalse(st.global_halt)
        self.assertEqual(st.trading_state, ACTIVE)
        # The reads above did come from memory, between the changes.
        self.assertGreater(reads_from(srv.listening["ops_port"])["memory"], 0)

    def test_inline_reads_refuse_what_the_executor_refuses(self):
        """Warm accounts and cached tokens on both sides; the inline path still refuses another
        user's state, a token one byte off, and no token, and counts none of them as read."""
        srv = self.start(TW_LEDGER_READ_MAX_AGE_MS="60000")
        alice, bob = Client(srv, "alice"), Client(srv, "bob")
        alice.market()
        for c in (alice, bob):
            c.state(), c.state(), c.settings(), c.settings()
        aid = alice.settings().user_id
        before = reads_from(srv.listening["ops_port"])
        with self.assertRaises(grpc.RpcError) as e:
            bob.call("Risk", "GetState", user_id=aid)
        self.assertEqual(e.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        bad = bob.tok[:-2] + ("A" if bob.tok[-2] != "A" else "B") + bob.tok[-1]
        for tok in (bad, None):
            for method in ("GetState", "GetAccountSettings"):
                with self.subTest(method=method, token=bool(tok)):
                    with self.assertRaises(grpc.RpcError) as e:
                        bob.api.call("Risk" if method == "GetState" else "Orders", method,
                                     token=tok)
                    self.assertEqual(e.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        self.assertEqual(reads_from(srv.listening["ops_port"]), before)
        self.assertEqual(bob.state().user_id, bob.settings().user_id)
        self.assertNotEqual(bob.state().user_id, aid)

    def test_another_replicas_change_shows_within_the_age(self):
        a = self.start(TW_LEDGER_READ_MAX_AGE_MS="500")
        b = TwServer(workdir=a.workdir, env={"TW_LEDGER_READ_MAX_AGE_MS": "500"}).start()
        self.addCleanup(b.stop_and_check, self)
        ca, cb = Client(a), Client(b)
        self.assertFalse(cb.settings().autonomous_mode)
        self.assertFalse(cb.settings().autonomous_mode)  # warm on b
        ca.call("Orders", "UpdateAccountSettings",
                autonomous_mode=wrappers_pb2.BoolValue(value=True))
        changed = time.monotonic()
        while not cb.settings().autonomous_mode:
            self.assertLess(time.monotonic() - changed, 2.0, "b still answers the old settings")
            time.sleep(0.02)


if __name__ == "__main__":
    unittest.main()

"""fault_pg_restart: PostgreSQL (our own instance) stopped and restarted under an order load.

Several users submit orders concurrently against one tradewinkd on a PostgreSQL this test
started for itself. Mid-load the database is stopped (pg_ctl -m fast, which also cuts the
server's sessions) for a few seconds and started again. Expected: every call during the
outage ends OK or UNAVAILABLE (never INTERNAL, never a hang past its deadline); after the
restart calls succeed again on the same tradewinkd process (same PID, never restarted); every
order acknowledged OK is stored exactly once with exactly one admission audit event; no order
stays PENDING_SUBMIT once the reconciler ran; Audit.VerifyChain is ok for every user.
"""

import collections
import threading
import time
import unittest

import grpc

from faultlib import (Api, LIMIT, common, MARKET, OwnPostgres, TwServer, check_orders_and_audit,
                      status_name, submit, wait_until)

USERS = 4
OUTAGE_S = 6.0
BEFORE_S = 4.0
AFTER_S = 8.0
SYMBOLS = ["AAPL", "MSFT", "JNJ", "XOM", "KO", "JPM", "PG", "WMT", "CVX", "PFE", "T", "F"]


class PgRestartTest(unittest.TestCase):
    def setUp(self):
        self.pg = OwnPostgres()
        self.pg.start()
        self.url, self.schema = self.pg.schema_url()

    def tearDown(self):
        self.pg.cleanup()

    def test_orders_survive_a_postgres_restart(self):
        srv = TwServer(env={"TW_DATABASE_URL": self.url})
        srv.start()
        try:
            self._run(srv)
        finally:
            srv.cleanup()

    def _run(self, srv):
        pid = srv.proc.pid
        api = Api(srv.addr)
        admin = api.token("ops", admin=True)
        from faultlib import sim
        api.call("Sim", "SetQuotes", token=admin,
                 quotes=[sim.Quote(symbol=s, bid="9.99", ask="10.01", last="10")
                         for s in SYMBOLS])
        toks = [api.token("pguser%d" % i) for i in range(USERS)]
        from google.protobuf import wrappers_pb2
        for t in toks:  # user rows exist before the outage; the load stays under the limits
            api.call("Risk", "SetLimits", token=t,
                     max_orders_per_second=wrappers_pb2.Int32Value(value=100),
                     max_open_positions=wrappers_pb2.Int32Value(value=100),
                     duplicate_window_seconds=wrappers_pb2.Int32Value(value=1))

        acked = [dict() for _ in range(USERS)]
        codes = collections.Counter()
        phase_codes = collections.defaultdict(collections.Counter)
        phase = {"v": "before"}
        stop = threading.Event()
        lock = threading.Lock()

        def load(u):
            i = 0
            while not stop.is_set():
                i += 1
                coid = "u%d-%05d" % (u, i)
                kind = LIMIT if i % 3 else MARKET
                sym = SYMBOLS[(i if kind == LIMIT else i // 3) % len(SYMBOLS)]
                # Below the market: the limit orders rest; qty varies so the duplicate window
                # does not refuse them. Prices stay at $10 so positions stay far below the
                # notional where fills stop applying (the overflow reported in the issue note).
                limit = "9.%02d" % (i % 100)
                p = phase["v"]
                try:
                    o = submit(api, toks[u], coid, symbol=sym, qty=str(1 + i % 89 if kind == LIMIT else 1), limit=limit,
                               type_=kind, timeout=10)
                    c = "OK"
                    acked[u][coid] = o.id
                except grpc.RpcError as e:
                    c = e.code().name
                with lock:
                    codes[c] += 1
                    phase_codes[p][c] += 1
                time.sleep(0.02)

        threads = [threading.Thread(target=load, args=(u,)) for u in range(USERS)]
        for th in threads:
            th.start()
        time.sleep(BEFORE_S)
        phase["v"] = "outage"
        t0 = time.monotonic()
        self.pg.stop()
        time.sleep(OUTAGE_S)
        self.pg.start()
        outage = time.monotonic() - t0
        phase["v"] = "recovering"
        # Recovery is measured: the first OK after the restart.
        wait_until(lambda: phase_codes["recovering"]["OK"] > 0, 30)
        phase["v"] = "after"
        time.sleep(AFTER_S)
        stop.set()
        for th in threads:
            th.join(60)

        self.assertTrue(srv.alive(), "tradewinkd died during the outage")
        self.assertEqual(srv.proc.pid, pid)
        allowed = {"OK", "UNAVAILABLE"}
        self.assertEqual(set(codes) - allowed, set(), "unexpected codes: %r" % dict(codes))
        self.assertGreater(phase_codes["outage"]["UNAVAILABLE"], 0,
                           "the outage was not seen: %r" % dict(phase_codes))
        self.assertGreater(phase_codes["before"]["OK"], 0)
        self.assertGreater(phase_codes["after"]["OK"], 0, dict(phase_codes))
        self.assertEqual(phase_codes["after"]["UNAVAILABLE"], 0,
                         "still failing after recovery: %r" % dict(phase_codes))

        # Stuck submissions are reconciled (sim clock runs in real time here). The reconciler
        # leaves a PENDING_SUBMIT order alone for 30 s (a submission may still be in flight at
        # the broker), so allow that plus a few passes.
        def no_pending():
            rows = self.pg.psql("SELECT count(*) FROM %s.orders WHERE status = 'PENDING_SUBMIT'"
                                % self.schema)
            return int(rows[0][0]) == 0
        if not wait_until(no_pending, 45, 0.5):
            rows = self.pg.psql("SELECT id, user_id, client_order_id, broker, updated_at_us "
                                "FROM %s.orders WHERE status = 'PENDING_SUBMIT'" % self.schema)
            ids = {r[0] for r in rows}
            log = [ln for ln in srv.lines() if any('order %s' % i in ln for i in ids)]
            self.fail("orders left PENDING_SUBMIT: %r\nlog:\n%s\ntail:\n%s"
                      % (rows, "\n".join(log[-40:]), "\n".join(srv.lines()[-30:])))

        total = 0
        statuses = collections.Counter()
        rules = collections.Counter()
        for u in range(USERS):
            ords = check_orders_and_audit(self, api, toks[u], acked[u])
            total += len(ords)
            statuses.update(status_name(o.status) for o in ords)
            rules.update(v.code for o in ords for v in o.violations)
        # The database agrees: no (user, client_order_id) twice, one admission event per order.
        dups = self.pg.psql("SELECT user_id, client_order_id FROM %s.orders GROUP BY 1, 2 "
                            "HAVING count(*) > 1" % self.schema)
        self.assertEqual(dups, [])
        bad = self.pg.psql(
            "SELECT o.id FROM {s}.orders o LEFT JOIN {s}.audit_events a ON a.object_id = "
            "o.id::text AND a.user_id = o.user_id AND a.actor = 'user' AND a.action IN "
            "('ORDER_ENTRY', 'ORDER_EXIT', 'ORDER_REJECT') GROUP BY o.id "
            "HAVING count(a.id) <> 1".format(s=self.schema))
        self.assertEqual(bad, [], "orders without exactly one admission event")
        n_acked = sum(len(a) for a in acked)
        print("fault_pg_restart: outage %.1fs, calls %s, by phase %s, acked %d, stored %d, "
              "statuses %s, risk rules %s"
              % (outage, dict(codes), {k: dict(v) for k, v in phase_codes.items()}, n_acked,
                 total, dict(statuses), {common.RiskRule.Name(k): v for k, v in rules.items()}),
              flush=True)
        text = srv.stderr_text()
        self.assertIn("reconnected to PostgreSQL", text)
        api.close()
        srv.stop_and_check(self)


if __name__ == "__main__":
    unittest.main(verbosity=2)

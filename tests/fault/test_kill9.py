"""fault_kill9: kill -9 of tradewinkd during an order load, then restart on the same database.

Three users with their own Alpaca paper keys submit orders continuously; the Alpaca stub (in
this process, so it outlives tradewinkd) records each order as soon as the POST arrives but
answers 0.1 s or (every other symbol) 1.5 s later, so at any moment every user has an order admitted and stored as
PENDING_SUBMIT, already at the broker, and not yet answered. tradewinkd is killed with SIGKILL
(by PID) in that window, then started again on the same SQLite database and key files.

Checked after the restart: every order acknowledged OK to a client is stored exactly once with
one admission audit event; every order at the stub is in the store under the user whose key
sent it and, once reconciled, ACCEPTED (the broker's truth); the orders in flight at the kill
were POSTed exactly once (no resend on restart); nothing is left PENDING_SUBMIT; every user's
audit chain verifies; the restarted server stops cleanly.
"""

import collections
import os
import shutil
import signal
import tempfile
import threading
import time
import unittest

import grpc

from faultlib import (AlpacaStub, Api, TwServer, add_alpaca_key, check_orders_and_audit,
                      own_api, sim, status_name, submit, wait_until)

USERS = ["kim", "lee", "max"]
SYMBOLS = ["AAPL", "MSFT", "JNJ", "XOM", "KO", "PG"]
LOAD_BEFORE_KILL_S = 6.0


class Kill9Test(unittest.TestCase):
    def setUp(self):
        self.stub = AlpacaStub().start()
        self.stub.post_plan = []
        self.workdir = tempfile.mkdtemp(prefix="twfault-kill9-")
        self.env = self.stub.env()
        self.stub.trades.update({s: "100" for s in SYMBOLS})

    def tearDown(self):
        self.stub.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def test_kill9_mid_submission_then_restart(self):
        stub = self.stub
        for i, s in enumerate(SYMBOLS):  # created at once, answered 0.1 s or 1.5 s later
            stub.plan_by_symbol[s] = ("ok", 1.5 if i % 2 else 0.1)
        srv = TwServer(env=self.env, workdir=self.workdir)
        srv.start()
        try:
            api = Api(srv.addr)
            admin = api.token("ops", admin=True)
            api.call("Sim", "SetQuotes", token=admin,
                     quotes=[sim.Quote(symbol=s, bid="99.99", ask="100.01", last="100")
                             for s in SYMBOLS])
            toks, kids = {}, {}
            for i, u in enumerate(USERS):
                toks[u] = api.token(u, ttl=3600)
                kids[u] = "AKKILL%010d" % i
                add_alpaca_key(api, toks[u], kids[u], "kill9-secret-%d-Qw8rT5yU" % i)
            api.close()
            acked = {u: {} for u in USERS}
            failed = collections.Counter()
            stop = threading.Event()

            def load(u):
                a = own_api(srv.addr)
                i = 0
                while not stop.is_set():
                    i += 1
                    coid = "%s-%04d" % (u, i)
                    try:
                        o = submit(a, toks[u], coid, symbol=SYMBOLS[i % len(SYMBOLS)],
                                   qty=str(1 + i % 50), limit="100.00", timeout=15)
                        acked[u][coid] = o.id
                    except grpc.RpcError as e:
                        failed[e.code().name] += 1
                        if e.code() == grpc.StatusCode.UNAVAILABLE:
                            break  # the server is gone
                a.close()

            threads = [threading.Thread(target=load, args=(u,)) for u in USERS]
            for th in threads:
                th.start()
            time.sleep(LOAD_BEFORE_KILL_S)
            os.kill(srv.proc.pid, signal.SIGKILL)
            srv.proc.wait(timeout=10)
            stop.set()
            for th in threads:
                th.join(30)
            self.assertEqual(srv.proc.returncode, -signal.SIGKILL)
        finally:
            srv.cleanup()
        time.sleep(2.0)  # let the stub finish the answers nobody will read
        n_acked = sum(len(a) for a in acked.values())
        self.assertGreater(n_acked, 0)

        srv2 = TwServer(env=self.env, workdir=self.workdir)
        srv2.start()
        try:
            api = Api(srv2.addr)
            # The reconciler (at start, then every 2 s) settles what was in flight.
            def settled():
                for u in USERS:
                    for o in api.call("Orders", "ListOrders", token=toks[u],
                                      page_size=500).orders:
                        if status_name(o.status) == "PENDING_SUBMIT":
                            return False
                return True
            self.assertTrue(wait_until(settled, 40, 0.5), "orders left PENDING_SUBMIT")

            store_orders = {}
            statuses = collections.Counter()
            for u in USERS:
                for o in check_orders_and_audit(self, api, toks[u], acked[u]):
                    store_orders["tw-" + o.id] = (u, o)
                    statuses[status_name(o.status)] += 1
            # Every broker order is ours, owned by the key's user, and ACCEPTED after all.
            unacked_at_broker = 0
            for coid in stub.orders:
                self.assertIn(coid, store_orders, "order %s at the broker is not stored" % coid)
                u, o = store_orders[coid]
                self.assertEqual(stub.key_of[coid], kids[u])
                self.assertEqual(status_name(o.status), "ACCEPTED", "%s: %s" % (coid, o))
                if o.client_order_id not in acked[u]:
                    unacked_at_broker += 1
            self.assertEqual({c: n for c, n in stub.posts.items() if n != 1}, {},
                             "an order was sent twice")
            self.assertGreater(unacked_at_broker, 0,
                               "the kill did not land between POST and answer")
            print("fault_kill9: acked %d, stored %d, at broker %d (in flight at the kill and "
                  "reconciled: %d), statuses %s, client errors %s"
                  % (n_acked, len(store_orders), len(stub.orders), unacked_at_broker,
                     dict(statuses), dict(failed)), flush=True)
            api.close()
            srv2.stop_and_check(self)
        finally:
            srv2.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""The scale-out shape: two tradewinkd processes on one database. Risk admission, idempotency
and order-update streams hold across processes because everything that must agree lives in
the database (the user's row lock, the unique client order id, the audit chain the feed reads).
Runs on SQLite (one file) and, as services_scaleout_pg, on PostgreSQL."""

import shutil
import tempfile
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

import grpc
from google.protobuf import timestamp_pb2, wrappers_pb2

from twapi import Api, common, orders, sim
from twserver import TwServer

MONDAY_10AM = 1796050800
BUY, MARKET = common.ORDER_SIDE_BUY, common.ORDER_TYPE_MARKET
S = orders.OrderStatus


class ScaleOutTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tw-scaleout-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.a = TwServer(workdir=self.dir)
        self.a.start()
        self.b = TwServer(workdir=self.dir)
        self.b.start()
        self.apis = [Api(self.a.addr), Api(self.b.addr)]
        self.tok = self.apis[0].token("shared-user")
        syms = ["Q%02d" % i for i in range(64)]
        for api in self.apis:  # each process runs its own sim exchange
            adm = api.token("ops", admin=True)
            api.call("Sim", "SetClock", token=adm,
                     time=timestamp_pb2.Timestamp(seconds=MONDAY_10AM))
            api.call("Sim", "SetQuotes", token=adm, quotes=[
                sim.Quote(symbol=s, bid="9.99", ask="10.01", last="10") for s in syms])
        self.syms = syms

    def tearDown(self):
        for api in self.apis:
            api.close()
        for s in (self.a, self.b):
            s.stop_and_check(self)
            s.cleanup()

    def submit(self, i, coid, sym):
        return self.apis[i % 2].call("Orders", "SubmitOrder", token=self.tok,
                                     client_order_id=coid, symbol=sym, side=BUY, type=MARKET,
                                     qty="1", time_in_force=common.TIME_IN_FORCE_DAY,
                                     origin=common.ORDER_ORIGIN_USER).order

    def test_admission_is_atomic_across_processes(self):
        self.apis[0].call("Risk", "SetLimits", token=self.tok,
                          max_open_positions=wrappers_pb2.Int32Value(value=5),
                          max_orders_per_second=wrappers_pb2.Int32Value(value=100))
        with ThreadPoolExecutor(16) as ex:
            res = list(ex.map(lambda i: self.submit(i, "p%d" % i, self.syms[i]), range(64)))
        admitted = [o for o in res if S.Name(o.status) != "ORDER_STATUS_REJECTED"]
        self.assertEqual(len(admitted), 5, [S.Name(o.status) for o in res])
        listed = self.apis[1].call("Orders", "ListOrders", token=self.tok, page_size=500).orders
        self.assertEqual(len(listed), 64)

    def test_warm_books_on_both_processes_never_admit_past_a_limit(self):
        """Each process keeps the user's book (issue 18) between transactions; every commit of
        the other process makes it stale, and a stale book must be noticed under the user's
        lock (its version) and read again, never decided on."""
        self.apps_limits(max_positions=5)
        # Warm both books: an order each process refuses (too large) leaves its book behind.
        for i in range(4):
            o = self.apis[i % 2].call("Orders", "SubmitOrder", token=self.tok,
                                      client_order_id="warm%d" % i, symbol=self.syms[0],
                                      side=BUY, type=MARKET, qty="1000000",
                                      time_in_force=common.TIME_IN_FORCE_DAY,
                                      origin=common.ORDER_ORIGIN_USER).order
            self.assertEqual(S.Name(o.status), "ORDER_STATUS_REJECTED")
        # Alternate strictly first, so each decision follows the other process's commit.
        seq = [self.submit(i, "s%d" % i, self.syms[i]) for i in range(4)]
        self.assertEqual([S.Name(o.status) for o in seq], ["ORDER_STATUS_FILLED"] * 4)
        with ThreadPoolExecutor(16) as ex:
            res = list(ex.map(lambda i: self.submit(i, "p%d" % i, self.syms[i]), range(4, 64)))
        admitted = [o for o in seq + res if S.Name(o.status) != "ORDER_STATUS_REJECTED"]
        self.assertEqual(len(admitted), 5, [S.Name(o.status) for o in res])
        held = self.apis[1].call("Orders", "ListPositions", token=self.tok).positions
        self.assertEqual(len([p for p in held if p.qty not in ("", "0")]), 5)

    def apps_limits(self, max_positions):
        self.apis[0].call("Risk", "SetLimits", token=self.tok,
                          max_open_positions=wrappers_pb2.Int32Value(value=max_positions),
                          max_orders_per_second=wrappers_pb2.Int32Value(value=100))

    def test_one_client_order_id_sent_to_both_yields_one_order(self):
        with ThreadPoolExecutor(8) as ex:
            ids = set(ex.map(lambda i: self.submit(i, "same-coid", "Q00").id, range(16)))
        self.assertEqual(len(ids), 1)
        self.assertEqual(len(self.apis[0].call("Orders", "ListOrders",
                                               token=self.tok).orders), 1)

    def test_stream_on_one_process_sees_updates_made_through_the_other(self):
        got = []

        def read():
            try:
                for m in self.apis[0].stream("Orders", "StreamOrderUpdates", token=self.tok,
                                             timeout=6):
                    got.append(m.update)
            except grpc.RpcError:
                pass
        th = threading.Thread(target=read)
        th.start()
        time.sleep(0.8)
        o = self.submit(1, "via-b", "Q01")  # through process B
        end = time.time() + 5
        while len(got) < 2 and time.time() < end:
            time.sleep(0.1)
        th.join(10)
        self.assertTrue(got, "no update reached the subscriber on process A")
        self.assertEqual({u.order.id for u in got}, {o.id})
        kinds = [orders.OrderUpdateKind.Name(u.kind) for u in got]
        self.assertEqual(kinds[0], "ORDER_UPDATE_KIND_CREATED")


if __name__ == "__main__":
    unittest.main()

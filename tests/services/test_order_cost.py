"""What one filled market order costs the database (issue 18), read from the store's own
counters on /metrics (tradewink_store_statements_total: every query and change, not
BEGIN/COMMIT; tradewink_store_commits_total): at most 2 commits (admission, fill) and 12
statements, the account ledger's target. With the user's book warm, admission is the lock,
the order and its audit event; the fill is the lock, fill, position, order update and audit
event (the order as the admission committed it, when nobody committed since); nothing around them (the settings come from the ledger, a retry is found by
the insert's unique key, the answer is what the fill committed). A change that adds a statement or a transaction to the order path fails here and has
to say why. The reconciler runs beside the orders, so each order is measured alone and
the cheapest of several is taken (background work only ever adds)."""

import re
import unittest
import urllib.request

from google.protobuf import duration_pb2, timestamp_pb2, wrappers_pb2

from twapi import Api, common, orders, sim
from twserver import TwServer

MON_10AM = 1795446000
# The ledger's target (issue 18) is 12 on both backends; before the book it was 24 and 2,
# then 12 until the settings came from the ledger, the idempotency check from the insert's
# unique key, the answer from the fill's own transaction, and the fill took the order from the
# admission that committed it just before (4 reads fewer): bench/orders/floor.sql's 8.
MAX_STATEMENTS = 8
MAX_COMMITS = 2
# GetState of a warm account is answered from memory (test_inline_reads); it read settings,
# version and the kill switch twice (4 statements) before.
MAX_READ_STATEMENTS = 0
# One user's book after 18 filled orders in one symbol today (measured: see the printed line).
MAX_BOOK_BYTES = 32 * 1024
SAMPLES = 15


class OrderCostTest(unittest.TestCase):
    def setUp(self):
        # What production pays: no verification reads of the cached books.
        self.srv = TwServer(env={"TW_LEDGER_VERIFY": "0"}).start()
        self.api = Api(self.srv.addr)
        self.admin = self.api.token("ops", admin=True)
        self.tok = self.api.token("alice")

    def tearDown(self):
        self.api.close()
        self.srv.stop_and_check(self)
        self.srv.cleanup()

    def counters(self):
        url = "http://127.0.0.1:%d/metrics" % self.srv.listening["ops_port"]
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
        get = lambda name: int(float(re.search(r"^%s (\S+)$" % name, text, re.M).group(1)))
        return get("tradewink_store_statements_total"), get("tradewink_store_commits_total")

    def ledger(self):
        url = "http://127.0.0.1:%d/metrics" % self.srv.listening["ops_port"]
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
        get = lambda name: int(float(re.search(r"^%s (\S+)$" % name, text, re.M).group(1)))
        hit = re.search(r'^tradewink_ledger_book_takes_total\{result="hit"\} (\S+)$', text, re.M)
        return get("tradewink_ledger_books"), get("tradewink_ledger_book_bytes"), int(hit.group(1))

    def submit(self, i):
        self.api.call("Sim", "AdvanceClock", token=self.admin,
                      duration=duration_pb2.Duration(seconds=2))
        return self.api.call("Orders", "SubmitOrder", token=self.tok, client_order_id="c%d" % i,
                             symbol="AAPL", side=common.ORDER_SIDE_BUY,
                             type=common.ORDER_TYPE_MARKET, qty=str(1 + i % 7),
                             time_in_force=common.TIME_IN_FORCE_DAY,
                             origin=common.ORDER_ORIGIN_USER).order

    def test_a_filled_market_order_costs_no_more_than_today(self):
        self.api.call("Sim", "SetClock", token=self.admin,
                      time=timestamp_pb2.Timestamp(seconds=MON_10AM))
        self.api.call("Sim", "SetQuotes", token=self.admin,
                      quotes=[sim.Quote(symbol="AAPL", bid="100", ask="100", last="100")])
        self.api.call("Risk", "SetLimits", token=self.tok,
                      duplicate_window_seconds=wrappers_pb2.Int32Value(value=1),
                      max_orders_per_second=wrappers_pb2.Int32Value(value=100))
        for i in range(3):  # the user's first orders of the day create rows once
            self.submit(i)
        costs = []
        for i in range(10, 10 + SAMPLES):
            s0, c0 = self.counters()
            o = self.submit(i)
            s1, c1 = self.counters()
            self.assertEqual(orders.OrderStatus.Name(o.status), "ORDER_STATUS_FILLED", str(o))
            costs.append((s1 - s0, c1 - c0))
        statements, commits = min(costs)
        print("one filled market order: %d statements, %d commits (min of %d)"
              % (statements, commits, SAMPLES))
        self.assertLessEqual(commits, MAX_COMMITS, costs)
        self.assertLessEqual(statements, MAX_STATEMENTS, costs)

        # A read of a warm account: GetState answers from the user's book, checked by one
        # version read, instead of reading every position, order, fill and day trade again.
        reads = []
        for _ in range(SAMPLES):
            s0, c0 = self.counters()
            st = self.api.call("Risk", "GetState", token=self.tok).state
            s1, c1 = self.counters()
            reads.append((s1 - s0, c1 - c0))
        self.assertEqual(st.open_positions, 1)
        statements, commits = min(reads)
        print("GetState of a warm account: %d statements, %d commits (min of %d)"
              % (statements, commits, SAMPLES))
        self.assertEqual(commits, 0, reads)
        self.assertLessEqual(statements, MAX_READ_STATEMENTS, reads)

        # What the warm account costs in memory: one book, a few KiB for a day of 18 orders.
        books, nbytes, hits = self.ledger()
        print("ledger: %d book(s), %d bytes, %d hits" % (books, nbytes, hits))
        self.assertEqual(books, 1)
        self.assertLessEqual(nbytes, MAX_BOOK_BYTES)
        self.assertGreaterEqual(hits, 2 * SAMPLES)


if __name__ == "__main__":
    unittest.main()

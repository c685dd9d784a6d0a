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
import subprocess
import unittest
import urllib.request

from google.protobuf import duration_pb2, timestamp_pb2, wrappers_pb2

from twapi import Api, common, orders, sim
from twserver import TwServer, backend_url, pg_schema_for

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


# A busy user: more orders than the book held before it kept the newest and let the old leave
# with the window (1,024: past it every decision read its windows from the store).
BUSY_ORDERS = 1100
SYMBOLS = ("AAPL", "MSFT", "NVDA")


class OrderCostTest(unittest.TestCase):
    def setUp(self):
        # What production pays: no verification reads of the cached books. The edge's order
        # rate limit is out of the way of the busy user (it is not what is measured here).
        self.srv = TwServer(env={"TW_LEDGER_VERIFY": "0", "TW_RATE_ORDERS": "100000/s:100000",
                                 "TW_RATE_API": "100000/s:100000"}).start()
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

    def busy_order(self, i):
        """Order i of a busy day: buys of one size in three symbols, then the sells that close
        them, each (symbol, side, size) again only 60 orders later (never a duplicate)."""
        return self.api.call("Orders", "SubmitOrder", token=self.tok, client_order_id="b%d" % i,
                             symbol=SYMBOLS[i % 3],
                             side=common.ORDER_SIDE_BUY if (i // 3) % 2 == 0
                             else common.ORDER_SIDE_SELL,
                             type=common.ORDER_TYPE_MARKET, qty=str(1 + (i // 6) % 10),
                             time_in_force=common.TIME_IN_FORCE_DAY,
                             origin=common.ORDER_ORIGIN_USER).order

    def busy_day(self, per_second, **limits):
        """BUSY_ORDERS filled orders, per_second of them each simulated second (0: all at one
        instant, a frozen clock), under limits; then what one more order costs (min of 5)."""
        self.api.call("Sim", "SetClock", token=self.admin,
                      time=timestamp_pb2.Timestamp(seconds=MON_10AM))
        self.api.call("Sim", "SetQuotes", token=self.admin, quotes=[
            sim.Quote(symbol=s, bid="100", ask="100", last="100") for s in SYMBOLS])
        uid = self.api.call("Risk", "GetState", token=self.tok).state.user_id
        self.api.call("Risk", "SetLimits", token=self.admin, user_id=uid,
                      pdt_enabled=wrappers_pb2.BoolValue(value=False), **limits)
        costs = []
        for i in range(BUSY_ORDERS + 5):
            if per_second and i % per_second == 0:
                self.api.call("Sim", "AdvanceClock", token=self.admin,
                              duration=duration_pb2.Duration(seconds=1))
            if i >= BUSY_ORDERS:
                s0, c0 = self.counters()
            o = self.busy_order(i)
            self.assertEqual(orders.OrderStatus.Name(o.status), "ORDER_STATUS_FILLED", str(o))
            if i >= BUSY_ORDERS:
                s1, c1 = self.counters()
                costs.append((s1 - s0, c1 - c0))
        return min(costs), costs

    def test_a_busy_day_costs_what_a_quiet_one_does(self):
        """A trader at 4 orders a second under the default rate (5/s) and duplicate (5 s)
        windows: after 1,100 orders the next one still costs the floor's 8 statements. The old
        book kept every order since it was read and past 1,024 read both windows from the
        store on every decision (10 statements)."""
        (statements, commits), costs = self.busy_day(4)
        print("order 1,101 of a busy day: %d statements, %d commits (all: %s)"
              % (statements, commits, costs))
        self.assertLessEqual(commits, MAX_COMMITS, costs)
        self.assertLessEqual(statements, MAX_STATEMENTS, costs)
        # A sell that closes a position today adds its day trade (the PDT history) and
        # nothing else: its mark knows the account's broker from the ledger (it read the
        # user's settings again, 10).
        self.assertLessEqual(max(costs), (MAX_STATEMENTS + 1, MAX_COMMITS), costs)
        books, nbytes, _ = self.ledger()
        # Most of it is the day's 1,100 fills and 550 day trades, which the loss and PDT
        # rules read; of the orders, only the last 5 s are held.
        print("ledger after a busy day: %d book(s), %d bytes" % (books, nbytes))
        self.assertEqual(books, 1)

    def test_orders_at_one_instant_are_counted_from_memory(self):
        """1,100 orders inside one rate window (a frozen sim clock, a limit of 100,000 a
        second): the book still answers the rate rule (it holds the newest 4,095, all the rule
        counts). The old one stopped holding them at 1,024, and every decision then read all
        1,100 from the store (9 statements)."""
        (statements, commits), costs = self.busy_day(
            0, max_orders_per_second=wrappers_pb2.Int32Value(value=100000),
            duplicate_window_seconds=wrappers_pb2.Int32Value(value=0))
        print("order 1,101 at one instant: %d statements, %d commits" % (statements, commits))
        self.assertLessEqual(commits, MAX_COMMITS, costs)
        self.assertLessEqual(statements, MAX_STATEMENTS, costs)

    @unittest.skipUnless(backend_url(), "PostgreSQL's plans for prepared statements")
    def test_an_order_is_found_by_its_id_however_many_the_user_has(self):
        """The fill's insert and the order's update find the order by its primary key, on a
        database that was empty when the server prepared them. PostgreSQL plans a prepared
        statement once for good on a connection's sixth run; planned on a nearly empty table,
        "user_id = $1 AND id = $2" took the (user_id, created_at_us) index with a filter on id,
        and from then on every fill and update walked all of the user's orders (read here
        from PostgreSQL's own count of index tuples read: 90,916 for 300 orders, quadratic)."""
        self.busy_day(4)
        n = BUSY_ORDERS + 5
        self.api.close()
        self.srv.stop_and_check(self)  # its connections end: their counts reach the statistics
        out = subprocess.check_output(
            ["psql", "-X", "-At", "-F", " ", backend_url(), "-c",
             "SELECT indexrelname, idx_tup_read FROM pg_stat_user_indexes WHERE schemaname = "
             "'%s' AND relname = 'orders' ORDER BY 1" % pg_schema_for(self.srv.workdir)],
            text=True)
        reads = {name: int(k) for name, k in (ln.split() for ln in out.split("\n") if ln)}
        print("orders' index tuples read for %d orders: %s" % (n, reads))
        # What the order path needs: a few per order (the key's lookups, the conflict check
        # of the insert, the open orders a book read takes once).
        self.assertLessEqual(sum(reads.values()), 20 * n, reads)

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

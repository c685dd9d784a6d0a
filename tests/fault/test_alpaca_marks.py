"""fault_alpaca_marks: the periodic mark-to-market of an account at a real broker (issue 18).

Production shape (TW_SIM_ENABLED=0, TW_BROKER=alpaca), the Alpaca stub in this process, one user
with a stored paper key who holds a position. The broker's equity rises, then falls more than
the 5 % drawdown limit below that peak, while the trader places no order and reads nothing: the
marker, one account request per user per period (TW_MARK_INTERVAL_S=1 here), raises the peak and
trips the drawdown breaker, saved with its BREAKER_TRIP event at that moment. GetState then
answers from the last mark: no broker request on a read. The service used to read a real
broker's equity only for an order or a GetState, so a drawdown nobody looked at never tripped,
and every GetState cost a request of the user's Alpaca budget.

Position reconciliation rides on the same mark (GET /v2/positions per user per period): while
the broker agrees nothing is reported; when it reports a position that disagrees with ours (more
AAPL than we recorded, and an MSFT position we never traded), each symbol is a drift once: a
POSITION_DRIFT audit event naming both quantities, tradewink_position_drifts_total and a
warning line, repeated by no later mark while it stays the same, and our position is not
overwritten.
"""

import json
import unittest

from faultlib import (BUY, SELL, AlpacaStub, Api, TwServer, add_alpaca_key, audit, http_get,
                      list_events, metric_value, status_name, submit, wait_until, wrappers_pb2)

KEY_ID, SECRET = "AKMARKS000000001", "marks-secret-Vb72nQx8Lp1sKr4z"


def account(equity, last_equity="100000"):
    return dict(AlpacaStub.ACCOUNT, equity=equity, last_equity=last_equity,
                cash=str(float(equity) - 50000))


class AlpacaMarksTest(unittest.TestCase):
    def setUp(self):
        self.stub = AlpacaStub().start()
        self.stub.trades.update({"AAPL": "100.00"})
        env = dict(self.stub.env(), TW_SIM_ENABLED="0", TW_BROKER="alpaca",
                   TW_MARK_INTERVAL_S="1", TW_MARK_CLOSED_INTERVAL_S="1")
        self.srv = TwServer(env=env)
        self.srv.start()
        self.api = Api(self.srv.addr)
        self.tok = self.api.token("marks-alice")
        add_alpaca_key(self.api, self.tok, KEY_ID, SECRET)

    def tearDown(self):
        self.api.close()
        try:
            self.srv.stop_and_check(self)
        finally:
            self.srv.cleanup()
            self.stub.stop()

    def trips(self):
        return [e for e in list_events(self.api, self.tok)
                if audit.AuditAction.Name(e.action) == "AUDIT_ACTION_BREAKER_TRIP"]

    def account_reads(self):
        with self.stub.lock:
            return sum(1 for m, p, _ in self.stub.requests if m == "GET" and p == "/v2/account")

    def test_a_drawdown_nobody_looked_at_trips_and_gets_answer_from_the_mark(self):
        # Hold 500 AAPL (bought at 100, filled at the broker, applied by the reconciler).
        self.api.call("Risk", "SetLimits", token=self.tok,
                      max_order_notional_pct=wrappers_pb2.StringValue(value="100"),
                      max_sector_pct=wrappers_pb2.StringValue(value="100"))
        o = submit(self.api, self.tok, "mk-buy", symbol="AAPL", qty="500", limit="100.00")
        self.assertEqual(status_name(o.status), "ACCEPTED", str(o))
        self.stub.fill("tw-" + o.id, "100")
        self.assertTrue(wait_until(lambda: status_name(self.api.call(
            "Orders", "GetOrder", token=self.tok, order_id=o.id).order.status) == "FILLED",
            25, 0.25), "the fill was never applied")
        # The broker's equity rises to a peak of 105,000, then falls to 99,500: 5.2 % below.
        self.stub.ACCOUNT = account("105000")
        n = self.account_reads()
        self.assertTrue(wait_until(lambda: self.account_reads() >= n + 2, 15, 0.1),
                        "the account was not read by a mark")
        self.assertEqual(self.trips(), [])
        self.stub.ACCOUNT = account("99500")
        self.assertTrue(wait_until(lambda: len(self.trips()) == 1, 15, 0.2),
                        "the drawdown from a peak only a mark saw never tripped the breaker")
        details = json.loads(self.trips()[0].details_json)
        self.assertEqual(details["rule"], "DRAWDOWN")
        # Reads answer from the last mark: no account request of the user's budget.
        before = self.account_reads()
        for _ in range(5):
            st = self.api.call("Risk", "GetState", token=self.tok).state
        marks_meanwhile = self.account_reads() - before
        self.assertLessEqual(marks_meanwhile, 2, "GetState called the broker")
        self.assertEqual(st.equity, "99500")
        self.assertTrue(st.breaker_tripped)
        self.assertTrue(st.HasField("last_mark"))
        # Entries are refused; the trip is not repeated by later marks.
        e = submit(self.api, self.tok, "mk-more", symbol="AAPL", qty="1", limit="100.00")
        self.assertEqual(status_name(e.status), "REJECTED")
        n = self.account_reads()
        wait_until(lambda: self.account_reads() >= n + 2, 10, 0.1)
        self.assertEqual(len(self.trips()), 1)

    def filled(self, coid, side, qty):
        o = submit(self.api, self.tok, coid, symbol="AAPL", qty=qty, limit="100.00", side=side)
        self.stub.fill("tw-" + o.id, "100")
        self.assertTrue(wait_until(lambda: status_name(self.api.call(
            "Orders", "GetOrder", token=self.tok, order_id=o.id).order.status) == "FILLED",
            25, 0.25), "the fill was never applied")

    def test_a_mark_older_than_two_periods_is_not_answered_the_broker_is_read(self):
        # Marks run while the user holds AAPL; selling it all stops them (only holders are
        # marked), so the last mark ages.
        self.filled("mk-st-buy", BUY, "5")
        n = self.account_reads()
        self.assertTrue(wait_until(lambda: self.account_reads() >= n + 2, 15, 0.1),
                        "the account was not read by a mark")
        self.filled("mk-st-sell", SELL, "5")
        self.stub.ACCOUNT = account("101234")
        # Fresh (at most two periods of 1 s old): answered from the mark, its equity.
        n = self.account_reads()
        st = self.api.call("Risk", "GetState", token=self.tok).state
        self.assertEqual(self.account_reads(), n, "a fresh mark still asked the broker")
        self.assertNotEqual(st.equity, "101234")
        # Older than two periods: every GetState asks the broker now and answers its equity.
        mark_stopped = self.account_reads()
        self.assertTrue(wait_until(lambda: self.api.call(
            "Risk", "GetState", token=self.tok).state.equity == "101234", 10, 0.5),
            "a stale mark kept answering")
        n = self.account_reads()
        self.assertGreater(n, mark_stopped)
        for _ in range(3):
            self.assertEqual(self.api.call("Risk", "GetState", token=self.tok).state.equity,
                             "101234")
        self.assertEqual(self.account_reads(), n + 3, "a stale read did not ask the broker")

    def position_reads(self):
        with self.stub.lock:
            return sum(1 for m, p, _ in self.stub.requests if m == "GET" and p == "/v2/positions")

    def drifts(self):
        return [e for e in list_events(self.api, self.tok)
                if audit.AuditAction.Name(e.action) == "AUDIT_ACTION_POSITION_DRIFT"]

    def test_a_position_the_broker_disagrees_with_is_a_drift_never_overwritten(self):
        def pos(sym, qty):
            return {"symbol": sym, "qty": qty, "side": "long", "avg_entry_price": "100",
                    "cost_basis": str(100 * int(qty)), "current_price": "100",
                    "market_value": str(100 * int(qty)), "unrealized_pl": "0",
                    "asset_class": "us_equity"}
        o = submit(self.api, self.tok, "mk-drift", symbol="AAPL", qty="5", limit="100.00")
        self.stub.positions = [pos("AAPL", "5")]
        self.stub.fill("tw-" + o.id, "100")
        self.assertTrue(wait_until(lambda: status_name(self.api.call(
            "Orders", "GetOrder", token=self.tok, order_id=o.id).order.status) == "FILLED",
            25, 0.25), "the fill was never applied")
        n = self.position_reads()
        self.assertTrue(wait_until(lambda: self.position_reads() >= n + 2, 15, 0.1),
                        "positions were not read by the marks")
        self.assertEqual(self.drifts(), [])  # the broker agrees
        self.stub.positions = [pos("AAPL", "7"), pos("MSFT", "1")]
        self.assertTrue(wait_until(lambda: len(self.drifts()) == 2, 15, 0.2),
                        "the disagreeing broker position was never reported")
        got = sorted(json.loads(e.details_json)["symbol"] + " " +
                     json.loads(e.details_json)["ours"] + " " +
                     json.loads(e.details_json)["broker"] for e in self.drifts())
        self.assertEqual(got, ["AAPL 5 7", "MSFT 0 1"])
        _, text = http_get(self.srv.listening["ops_port"], "/metrics")
        self.assertEqual(metric_value(text, "tradewink_position_drifts_total"), 2)
        self.assertIn("position drift in AAPL", self.srv.stderr_text())
        # Later marks do not repeat an unchanged drift, and ours is never overwritten.
        n = self.position_reads()
        self.assertTrue(wait_until(lambda: self.position_reads() >= n + 2, 15, 0.1))
        self.assertEqual(len(self.drifts()), 2)
        mine = {p.symbol: p.qty for p in
                self.api.call("Orders", "ListPositions", token=self.tok).positions}
        self.assertEqual(mine.get("AAPL"), "5")
        self.assertNotIn("MSFT", mine)


if __name__ == "__main__":
    unittest.main()

"""Risk inputs that describe a period (issue 22): today's day trades, the day-trade count over
the last five sessions, the daily loss, the order rate and the duplicate window must be computed
from every record of the user's in that period, however many orders the trader placed in
between. Each test places and cancels 600 limit orders ("order noise") between the records that
matter and the decision that reads them; the service used to read only the 500 most recent
orders, so the noise pushed the day's round trips out of view and the PDT guard let a 4th day
trade through."""

import time
import unittest
from decimal import Decimal

import grpc
from google.protobuf import duration_pb2, timestamp_pb2, wrappers_pb2

from twapi import Api, common, orders, sim
from twserver import TwServer

BUY, SELL = common.ORDER_SIDE_BUY, common.ORDER_SIDE_SELL
MARKET, LIMIT = common.ORDER_TYPE_MARKET, common.ORDER_TYPE_LIMIT
REQ = dict(time_in_force=common.TIME_IN_FORCE_DAY, origin=common.ORDER_ORIGIN_USER)
S = orders.OrderStatus
FILLED = S.Value("ORDER_STATUS_FILLED")
ACCEPTED = S.Value("ORDER_STATUS_ACCEPTED")
CANCELED = S.Value("ORDER_STATUS_CANCELED")
REJECTED = S.Value("ORDER_STATUS_REJECTED")
I = wrappers_pb2.Int32Value
# Monday 2026-11-23 15:00 UTC = 10:00 New York (EST), a trading day (Thanksgiving is the 26th).
MON_10AM = 1795446000
NOISE = 600  # more than the 500 most recent orders the snapshot used to read


def rules(order):
    return [common.RiskRule.Name(v.code) for v in order.violations]


class Trader:
    def __init__(self, srv, subject="alice"):
        self.api = Api(srv.addr)
        self.admin = self.api.token("ops", admin=True)
        self.tok = self.api.token(subject)
        self.uid = None
        self.n = 0

    def call(self, svc, method, **kw):
        return self.api.call(svc, method, token=self.tok, **kw)

    def sim(self, method, **kw):
        return self.api.call("Sim", method, token=self.admin, **kw)

    def set_clock(self, unix_s):
        self.sim("SetClock", time=timestamp_pb2.Timestamp(seconds=int(unix_s),
                                                          nanos=int(round(unix_s % 1 * 1e9))))

    def advance(self, seconds):
        self.sim("AdvanceClock", duration=duration_pb2.Duration(
            seconds=int(seconds), nanos=int(round((seconds - int(seconds)) * 1e9))))

    def quote(self, symbol, last):
        p = Decimal(last)
        self.sim("SetQuotes", quotes=[sim.Quote(symbol=symbol, bid=str(p), ask=str(p),
                                                last=str(p))])

    def submit(self, symbol, side, qty, type_=MARKET, limit=""):
        self.n += 1
        return self.call("Orders", "SubmitOrder", client_order_id="o%d" % self.n,
                         symbol=symbol, side=side, type=type_, qty=qty,
                         limit_price=limit, **REQ).order

    def check(self, symbol, side, qty, type_=MARKET, limit=""):
        return self.call("Risk", "CheckOrder", symbol=symbol, side=side, type=type_, qty=qty,
                         limit_price=limit, **REQ)

    def wait(self, order, statuses, timeout=10):
        end = time.time() + timeout
        o = order
        while o.status not in statuses and time.time() < end:
            time.sleep(0.02)
            o = self.call("Orders", "GetOrder", order_id=o.id).order
        return o

    def filled(self, symbol, side, qty):
        o = self.wait(self.submit(symbol, side, qty), [FILLED, REJECTED])
        assert o.status == FILLED, (symbol, side, qty, S.Name(o.status), rules(o))
        return o

    def state(self):
        return self.call("Risk", "GetState").state

    def noise(self, n=NOISE, symbol="XOM", limit="9.50", qtys=5, per_tick=5, tick_s=1.25):
        """n limit buys that rest below the market, each canceled at once. Quantities cycle
        through 1..qtys and the sim clock advances tick_s after every per_tick orders, so the
        noise itself trips neither the duplicate window nor the order rate."""
        for i in range(n):
            o = self.submit(symbol, BUY, str(1 + i % qtys), LIMIT, limit)
            o = self.wait(o, [ACCEPTED, REJECTED])
            assert o.status == ACCEPTED, ("noise", i, S.Name(o.status), rules(o))
            c = self.call("Orders", "CancelOrder", order_id=o.id).order
            assert c.status == CANCELED, ("noise cancel", i, S.Name(c.status))
            if tick_s and (i + 1) % per_tick == 0:
                self.advance(tick_s)


class RiskPeriodsTest(unittest.TestCase):
    def setUp(self):
        self.srv = TwServer()
        self.srv.start()
        self.t = Trader(self.srv)
        # The user's first trading day is the Friday before, so that Monday starts a new day
        # whose baseline is the account as the test sets it up.
        self.t.set_clock(MON_10AM - 3 * 86400)
        self.t.uid = self.t.call("Risk", "Resume").state.user_id

    def monday(self):
        self.t.set_clock(MON_10AM)

    def tearDown(self):
        self.t.api.close()
        self.srv.stop_and_check(self)
        self.srv.cleanup()

    def margin_account(self, cash):
        self.t.sim("SetAccount", user_id=self.t.uid, starting_cash=cash,
                   account_type=sim.ACCOUNT_TYPE_MARGIN)

    def test_pdt_counts_todays_round_trips_behind_600_canceled_orders(self):
        t = self.t
        self.margin_account("20000")
        self.monday()
        # One order per 1.25 s on the sim clock, so no two identical orders in 1 s.
        t.call("Risk", "SetLimits", duplicate_window_seconds=I(value=1),
               max_orders_per_second=I(value=100))
        for sym in ("AAPL", "MSFT", "KO", "PEP", "XOM"):
            t.quote(sym, "10")
        for sym in ("AAPL", "MSFT", "KO"):
            t.filled(sym, BUY, "10")
            t.advance(1.25)
            t.filled(sym, SELL, "10")
            t.advance(1.25)
        self.assertEqual(t.state().day_trades_in_window, 3)
        t.filled("PEP", BUY, "10")
        t.advance(1.25)
        # Without noise the guard refuses the 4th day trade (a dry run: nothing changes).
        d = t.check("PEP", SELL, "10")
        self.assertFalse(d.allowed)
        self.assertIn("RISK_RULE_PDT", [common.RiskRule.Name(v.code) for v in d.violations])

        t.noise()
        # What the trader sees, all at once: GetState's count, CheckOrder, then SubmitOrder.
        seen = dict(day_trades=t.state().day_trades_in_window,
                    check_allowed=t.check("PEP", SELL, "10").allowed)
        o = t.wait(t.submit("PEP", SELL, "10"), [FILLED, REJECTED])
        seen["sell"] = S.Name(o.status)
        seen["rules"] = rules(o)
        self.assertEqual(seen, dict(day_trades=3, check_allowed=False,
                                    sell="ORDER_STATUS_REJECTED", rules=["RISK_RULE_PDT"]),
                         "after 600 canceled orders the PDT guard lost today's day trades")
        pos = {p.symbol: p.qty for p in t.call("Orders", "ListPositions").positions}
        self.assertEqual(pos.get("PEP"), "10")

        # Tuesday: Monday's three day trades are history, still in the 5-session window, and
        # the noise of the day before does not hide them either.
        t.set_clock(MON_10AM + 86400)
        self.assertEqual(t.state().day_trades_in_window, 3)
        t.filled("AAPL", BUY, "10")
        t.advance(1.25)
        o = t.submit("AAPL", SELL, "10")
        self.assertEqual(rules(o), ["RISK_RULE_PDT"])

    def test_daily_loss_counts_losses_realized_before_600_canceled_orders(self):
        t = self.t  # the sim's default account: $100,000 cash
        self.monday()
        t.call("Risk", "SetLimits", duplicate_window_seconds=I(value=1),
               max_orders_per_second=I(value=100))
        t.quote("AAPL", "100")
        t.quote("XOM", "10")
        t.quote("MSFT", "50")
        # Lose $1,500 (1.5 % of the day's start) early in the day, realized.
        t.filled("AAPL", BUY, "50")
        t.advance(1.25)
        t.quote("AAPL", "70")
        t.filled("AAPL", SELL, "50")
        t.advance(1.25)
        st = t.state()
        self.assertEqual(st.pnl_today, "-1500")
        self.assertFalse(st.breaker_tripped)

        t.noise()
        st = t.state()
        self.assertEqual(st.pnl_today, "-1500", "order noise changed today's P&L")
        self.assertFalse(st.breaker_tripped)
        # Another $600 realized: -$2,100 today, over the 2 % ($2,000) daily loss limit.
        t.quote("AAPL", "100")
        t.filled("AAPL", BUY, "20")
        t.advance(1.25)
        t.quote("AAPL", "70")
        t.filled("AAPL", SELL, "20")
        t.advance(1.25)
        st = t.state()
        self.assertEqual(st.pnl_today, "-2100")
        self.assertTrue(st.breaker_tripped)
        self.assertEqual(common.RiskRule.Name(st.breaker_rule), "RISK_RULE_DAILY_LOSS")
        o = t.submit("MSFT", BUY, "1")
        self.assertEqual(S.Name(o.status), "ORDER_STATUS_REJECTED")
        self.assertIn("RISK_RULE_TRADING_HALTED", rules(o))

    def test_order_rate_counts_every_order_in_the_window(self):
        t = self.t
        self.monday()
        # The admin allows 600 orders per second and switches the duplicate check off.
        t.api.call("Risk", "SetLimits", token=t.admin, user_id=t.uid,
                   max_orders_per_second=I(value=NOISE), duplicate_window_seconds=I(value=0))
        t.quote("XOM", "10")
        # 600 orders within 0.6 s of sim time: the clock is set 1 ms further before each one
        # (it runs on by the few ms a call takes, never past the next setting).
        for i in range(NOISE):
            t.set_clock(MON_10AM + i / 1000)
            t.noise(n=1, tick_s=0)
        t.set_clock(MON_10AM + NOISE / 1000)
        o = t.submit("XOM", BUY, "1", LIMIT, "9.50")
        self.assertEqual(S.Name(o.status), "ORDER_STATUS_REJECTED",
                         "order %d in one second was accepted with a limit of %d"
                         % (NOISE + 1, NOISE))
        self.assertEqual(rules(o), ["RISK_RULE_ORDER_RATE"])
        # A second later the window is empty again.
        t.set_clock(MON_10AM + 2)
        o = t.wait(t.submit("XOM", BUY, "1", LIMIT, "9.50"), [ACCEPTED, REJECTED])
        self.assertEqual(S.Name(o.status), "ORDER_STATUS_ACCEPTED", str(o.violations))

    def test_duplicate_window_covers_its_whole_period(self):
        t = self.t
        # One hour (the user's bound); the noise is 600 orders over 10 minutes, in another symbol.
        self.monday()
        t.call("Risk", "SetLimits", duplicate_window_seconds=I(value=3600),
               max_orders_per_second=I(value=100))
        t.quote("MSFT", "50")
        t.quote("F", "1")
        first = t.wait(t.submit("MSFT", BUY, "3", LIMIT, "49"), [ACCEPTED, REJECTED])
        self.assertEqual(S.Name(first.status), "ORDER_STATUS_ACCEPTED", str(first.violations))
        t.call("Orders", "CancelOrder", order_id=first.id)
        t.advance(1.25)
        # Within the noise every quantity recurs, so the noise cycles 600 distinct quantities.
        t.noise(qtys=NOISE, limit="0.95", symbol="F")
        o = t.submit("MSFT", BUY, "3", LIMIT, "49")
        self.assertEqual(S.Name(o.status), "ORDER_STATUS_REJECTED",
                         "an identical order inside the duplicate window was accepted")
        self.assertEqual(rules(o), ["RISK_RULE_DUPLICATE_ORDER"])

    def test_open_orders_beyond_what_a_decision_sees_are_refused_not_cut(self):
        """The engine evaluates at most 512 open orders. Reading "the oldest 512" let a 513th
        and later resting order work unseen by every decision (exposure, buying power, sector,
        positions); now an order that would be the 513th is refused until one is canceled."""
        t = self.t
        self.monday()
        t.call("Risk", "SetLimits", duplicate_window_seconds=I(value=1),
               max_orders_per_second=I(value=100))
        t.quote("XOM", "10")
        resting = []
        for i in range(512):
            o = t.submit("XOM", BUY, str(1 + i % 5), LIMIT, "9.50")
            resting.append(o)
            if (i + 1) % 5 == 0:
                t.advance(1.25)
        last = t.wait(resting[-1], [ACCEPTED, REJECTED])
        self.assertEqual(S.Name(last.status), "ORDER_STATUS_ACCEPTED", rules(last))
        t.advance(1.25)
        for attempt in (lambda: t.submit("XOM", BUY, "7", LIMIT, "9.40"),
                        lambda: t.check("XOM", BUY, "7", LIMIT, "9.40")):
            with self.assertRaises(grpc.RpcError) as cm:
                attempt()
            self.assertEqual(cm.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
            self.assertIn("open orders", cm.exception.details())
        self.assertEqual(t.state().equity, "100000")  # reads still answer
        t.call("Orders", "CancelOrder", order_id=resting[0].id)
        o = t.wait(t.submit("XOM", BUY, "7", LIMIT, "9.40"), [ACCEPTED, REJECTED])
        self.assertEqual(S.Name(o.status), "ORDER_STATUS_ACCEPTED", rules(o))


if __name__ == "__main__":
    unittest.main()

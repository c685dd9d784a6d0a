"""Sim conformance: every rule sim.proto's comments state, in tables, so code that drifts from
its contract fails here. Refusals must be INVALID_ARGUMENT naming the field and change
nothing."""

import time
import unittest
from decimal import Decimal

import grpc
from google.protobuf import duration_pb2, timestamp_pb2

from twapi import Api, common, orders, sim
from twserver import TwServer
from test_error_details import bad_request

# Monday 2026-11-30 15:00 UTC = 10:00 New York, a trading day.
MONDAY_10AM = 1796050800
SUNDAY_10AM = MONDAY_10AM - 86400
TS = timestamp_pb2.Timestamp
DUR = duration_pb2.Duration
CASH, MARGIN = sim.ACCOUNT_TYPE_CASH, sim.ACCOUNT_TYPE_MARGIN
# Required in every order (orders.proto); the day-roll test relies on DAY being sent.
REQ = dict(time_in_force=common.TIME_IN_FORCE_DAY, origin=common.ORDER_ORIGIN_USER)


def status(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details() or ""


def Q(symbol, bid="10", ask="10.02", last="10.01", **kw):
    return sim.Quote(symbol=symbol, bid=bid, ask=ask, last=last, **kw)


class SimConformanceTest(unittest.TestCase):
    def setUp(self):
        self.srv = TwServer().start()
        self.api = Api(self.srv.addr)
        self.admin = self.api.token("ops", admin=True)
        self.sim("SetClock", time=TS(seconds=MONDAY_10AM))

    def tearDown(self):
        self.api.close()
        self.srv.stop_and_check(self)
        self.srv.cleanup()

    def sim(self, method, **kw):
        return self.api.call("Sim", method, token=self.admin, **kw)

    def refused(self, method, field, **kw):
        code, details = status(self.sim, method, **kw)
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn(field, details)

    def uid(self, tok):
        return self.api.call("Risk", "GetState", token=tok).state.user_id

    # ---- every method is admin-only --------------------------------------------------------
    def test_every_method_is_admin_only(self):
        user = self.api.token("alice")
        calls = [("SetQuotes", dict(quotes=[Q("AAA")])), ("GetQuote", dict(symbol="AAA")),
                 ("SetAccount", dict(user_id="1", starting_cash="1", account_type=CASH)),
                 ("SetClock", dict(time=TS(seconds=MONDAY_10AM))),
                 ("AdvanceClock", dict(duration=DUR(seconds=1))), ("GetClock", {})]
        for m, kw in calls:
            with self.subTest(m):
                self.assertEqual(status(self.api.call, "Sim", m, token=user, **kw)[0],
                                 grpc.StatusCode.PERMISSION_DENIED)
                self.assertEqual(status(self.api.call, "Sim", m, **kw)[0],
                                 grpc.StatusCode.UNAUTHENTICATED)

    # ---- quotes ----------------------------------------------------------------------------
    BAD_QUOTES = [
        ("no quotes", []),
        ("1001 quotes", [Q("S%d" % i) for i in range(1001)]),
        ("repeated symbol", [Q("RPT"), Q("OTHER"), Q("RPT", bid="11", ask="11", last="11")]),
        ("empty symbol", [Q("")]),
        ("lower-case symbol", [Q("aapl")]),
        ("bid zero", [Q("BID", bid="0")]),
        ("bid negative", [Q("BID", bid="-1")]),
        ("ask below bid", [Q("ASK", bid="10", ask="9.99")]),
        ("last zero", [Q("LST", last="0")]),
        ("price not a decimal", [Q("DEC", bid="ten")]),
    ]

    def test_set_quotes_refuses_bad_input_and_changes_nothing(self):
        self.sim("SetQuotes", quotes=[Q("OTHER", bid="1", ask="1", last="1")])
        for name, quotes in self.BAD_QUOTES:
            with self.subTest(name):
                self.refused("SetQuotes", "quotes", quotes=quotes)
                for q in quotes[:3]:
                    if q.symbol == "OTHER":
                        self.assertEqual(self.sim("GetQuote", symbol="OTHER").quote.last, "1")
                    elif q.symbol:
                        self.assertEqual(status(self.sim, "GetQuote", symbol=q.symbol)[0],
                                         grpc.StatusCode.NOT_FOUND)

    def test_set_quotes_names_every_bad_field(self):
        quotes = [Q("OK1"), Q("aapl"), Q("BID", bid="0"), Q("ASK", bid="10", ask="9"),
                  Q("LST", last="x"), Q("OK1")]
        with self.assertRaises(grpc.RpcError) as cm:
            self.sim("SetQuotes", quotes=quotes)
        self.assertEqual([v.field for v in bad_request(cm.exception)],
                         ["quotes[1].symbol", "quotes[2].bid", "quotes[3].ask", "quotes[4].last",
                          "quotes[5].symbol"])
        self.assertEqual(status(self.sim, "GetQuote", symbol="OK1")[0], grpc.StatusCode.NOT_FOUND)

    def test_set_quotes_stores_and_get_quote_reads(self):
        r = self.sim("SetQuotes", quotes=[Q("AAA", bid="1.5", ask="1.5", last="1.5"),
                                          Q("BRK.B", time=TS(seconds=1))])
        self.assertEqual(r.quotes_set, 2)
        q = self.sim("GetQuote", symbol="BRK.B").quote
        self.assertEqual((q.symbol, q.bid, q.ask, q.last), ("BRK.B", "10", "10.02", "10.01"))
        # Quote.time is ignored in SetQuotes: the sim clock is used.
        self.assertEqual(q.time.seconds, MONDAY_10AM)
        self.assertEqual(self.sim("GetQuote", symbol="AAA").quote.bid, "1.5")
        self.assertEqual(status(self.sim, "GetQuote", symbol="NEVER")[0],
                         grpc.StatusCode.NOT_FOUND)
        # Replaces.
        self.sim("SetQuotes", quotes=[Q("AAA", bid="2", ask="2", last="2")])
        self.assertEqual(self.sim("GetQuote", symbol="AAA").quote.last, "2")
        # 1000 is the maximum, still accepted.
        self.assertEqual(self.sim("SetQuotes", quotes=[Q("M%d" % i) for i in range(1000)])
                         .quotes_set, 1000)

    # ---- accounts --------------------------------------------------------------------------
    def test_set_account_refuses_bad_input(self):
        uid = self.uid(self.api.token("alice"))
        rows = [
            ("account_type unspecified", dict(user_id=uid, starting_cash="1000", account_type=0),
             "account_type"),
            ("account_type 7", dict(user_id=uid, starting_cash="1000", account_type=7),
             "account_type"),
            ("negative cash", dict(user_id=uid, starting_cash="-1", account_type=CASH),
             "starting_cash"),
            ("cash not a decimal", dict(user_id=uid, starting_cash="lots", account_type=CASH),
             "starting_cash"),
            ("empty cash", dict(user_id=uid, starting_cash="", account_type=CASH),
             "starting_cash"),
            ("bad user id", dict(user_id="nobody", starting_cash="1", account_type=CASH),
             "user_id"),
        ]
        tok = self.api.token("alice")
        before = self.api.call("Risk", "GetState", token=tok).state.equity
        for name, req, field in rows:
            with self.subTest(name):
                self.refused("SetAccount", field, **req)
                self.assertEqual(self.api.call("Risk", "GetState", token=tok).state.equity,
                                 before)
        with self.assertRaises(grpc.RpcError) as cm:
            self.sim("SetAccount", user_id="nobody", starting_cash="-1", account_type=0)
        self.assertEqual([v.field for v in bad_request(cm.exception)],
                         ["user_id", "starting_cash", "account_type"])

    def test_set_account_resets_equity_day_baseline_positions_and_orders(self):
        tok = self.api.token("alice")
        uid = self.uid(tok)
        self.sim("SetQuotes", quotes=[Q("AAPL", bid="100", ask="100", last="100")])
        # A position and a working order under the default account.
        self.api.call("Orders", "SubmitOrder", token=tok, client_order_id="buy",
                      symbol="AAPL", side=common.ORDER_SIDE_BUY, type=common.ORDER_TYPE_MARKET,
                      qty="5", **REQ)
        working = self.api.call("Orders", "SubmitOrder", token=tok, client_order_id="lim",
                                symbol="AAPL", side=common.ORDER_SIDE_BUY,
                                type=common.ORDER_TYPE_LIMIT, qty="1", limit_price="95",
                                **REQ).order
        end = time.time() + 5
        while self.api.call("Risk", "GetState", token=tok).state.open_positions != 1:
            self.assertLess(time.time(), end, "buy did not fill")
            time.sleep(0.05)
        r = self.sim("SetAccount", user_id=uid, starting_cash="20000", account_type=MARGIN)
        self.assertEqual(Decimal(r.cash), Decimal("20000"))
        st = self.api.call("Risk", "GetState", token=tok).state
        self.assertEqual(Decimal(st.equity), Decimal("20000"))
        # The reset account starts its day at its starting cash, not the old equity.
        self.assertEqual(Decimal(st.start_of_day_equity), Decimal("20000"))
        self.assertEqual(Decimal(st.pnl_today), 0)
        self.assertFalse(st.breaker_tripped)
        self.assertEqual(st.open_positions, 0)
        end = time.time() + 5
        while True:
            o = self.api.call("Orders", "GetOrder", token=tok, order_id=working.id).order
            if o.status != orders.ORDER_STATUS_ACCEPTED and o.status != orders.ORDER_STATUS_PENDING_SUBMIT:
                break
            self.assertLess(time.time(), end, "working order survived the reset")
            time.sleep(0.05)
        self.assertEqual(orders.OrderStatus.Name(o.status), "ORDER_STATUS_CANCELED")

    def test_new_account_starts_its_day_at_its_starting_cash(self):
        # A 20,000 account must not start its day at the default 100,000 (that would exempt a
        # margin account from the PDT guard and read as an 80% loss).
        tok = self.api.token("carol")
        uid = self.uid(tok)
        r = self.sim("SetAccount", user_id=uid, starting_cash="20000", account_type=MARGIN)
        self.assertEqual(Decimal(r.cash), Decimal("20000"))
        st = self.api.call("Risk", "GetState", token=tok).state
        self.assertEqual(Decimal(st.start_of_day_equity), Decimal("20000"))
        self.assertEqual(Decimal(st.pnl_today), 0)
        self.assertFalse(st.breaker_tripped)

    # ---- clock -----------------------------------------------------------------------------
    def test_set_clock_sets_and_freezes(self):
        t = TS(seconds=MONDAY_10AM + 600, nanos=250000000)
        r = self.sim("SetClock", time=t)
        self.assertEqual((r.time.seconds, r.time.nanos), (t.seconds, t.nanos))
        time.sleep(1.2)
        c = self.sim("GetClock")
        self.assertTrue(c.frozen)
        self.assertEqual((c.time.seconds, c.time.nanos), (t.seconds, t.nanos))
        self.assertTrue(c.market_open)
        self.sim("SetClock", time=TS(seconds=SUNDAY_10AM))
        self.assertFalse(self.sim("GetClock").market_open)

    def test_set_clock_requires_time(self):
        self.refused("SetClock", "time")
        self.assertEqual(self.sim("GetClock").time.seconds, MONDAY_10AM)

    def test_advance_clock(self):
        r = self.sim("AdvanceClock", duration=DUR(seconds=90, nanos=500000000))
        self.assertEqual((r.time.seconds, r.time.nanos), (MONDAY_10AM + 90, 500000000))
        c = self.sim("GetClock")
        self.assertEqual(c.time.seconds, MONDAY_10AM + 90)
        self.assertTrue(c.frozen)  # advancing a frozen clock keeps it frozen
        for name, kw in (("missing", {}), ("zero", dict(duration=DUR(seconds=0))),
                         ("negative", dict(duration=DUR(seconds=-5))),
                         ("negative nanos", dict(duration=DUR(seconds=0, nanos=-1))),
                         ("past int64 in ms", dict(duration=DUR(seconds=2**62)))):
            with self.subTest(name):
                self.refused("AdvanceClock", "duration", **kw)
                self.assertEqual(self.sim("GetClock").time.seconds, MONDAY_10AM + 90)
        # A sub-second positive duration is positive.
        self.sim("AdvanceClock", duration=DUR(nanos=1000000))

    def test_advance_clock_expires_day_orders_at_the_day_roll(self):
        tok = self.api.token("dave")
        self.sim("SetQuotes", quotes=[Q("AAPL", bid="100", ask="100", last="100")])
        o = self.api.call("Orders", "SubmitOrder", token=tok, client_order_id="day",
                          symbol="AAPL", side=common.ORDER_SIDE_BUY,
                          type=common.ORDER_TYPE_LIMIT, qty="1", limit_price="95",
                          **REQ).order
        self.sim("AdvanceClock", duration=DUR(seconds=86400))
        end = time.time() + 5
        while True:
            s = self.api.call("Orders", "GetOrder", token=tok, order_id=o.id).order.status
            if orders.OrderStatus.Name(s) == "ORDER_STATUS_EXPIRED" or time.time() > end:
                break
            time.sleep(0.05)
        self.assertEqual(orders.OrderStatus.Name(s), "ORDER_STATUS_EXPIRED")


class SimDisabledTest(unittest.TestCase):
    def test_every_method_is_unimplemented_when_the_sim_is_disabled(self):
        with TwServer(env={"TW_SIM_ENABLED": "0", "TW_BROKER": "alpaca"}) as srv:
            api = Api(srv.addr)
            adm = api.token("ops", admin=True)
            for m, kw in (("GetClock", {}), ("GetQuote", dict(symbol="A")),
                          ("SetClock", dict(time=TS(seconds=MONDAY_10AM)))):
                with self.subTest(m):
                    self.assertEqual(status(api.call, "Sim", m, token=adm, **kw)[0],
                                     grpc.StatusCode.UNIMPLEMENTED)
            api.close()
            srv.stop_and_check(self)


if __name__ == "__main__":
    unittest.main()

"""Mark-to-market (issue 18): a quote move alone re-values the user's positions, raises the
intraday peak and trips the daily-loss and drawdown breakers, and the trip is saved with its
BREAKER_TRIP audit event at the moment the quote moved -- not when the next order or GetState
happens to look. The service used to raise the peak only in GetState's memory and to save a
trip only with the next order, so a drawdown from a peak no order saw never tripped."""

import time
import unittest

from google.protobuf import timestamp_pb2, wrappers_pb2

from twapi import Api, audit, common, orders, risk, sim
from twserver import TwServer

BUY, SELL = common.ORDER_SIDE_BUY, common.ORDER_SIDE_SELL
MARKET = common.ORDER_TYPE_MARKET
S = wrappers_pb2.StringValue
HALTED = risk.TRADING_STATE_HALTED
ACTIVE = risk.TRADING_STATE_ACTIVE
# Monday 2026-11-23 15:00 UTC = 10:00 New York, a trading day.
MON_10AM = 1795446000


class Trader:
    def __init__(self, srv, subject="alice"):
        self.api = Api(srv.addr)
        self.admin = self.api.token("ops", admin=True)
        self.tok = self.api.token(subject)
        self.n = 0

    def call(self, svc, method, **kw):
        return self.api.call(svc, method, token=self.tok, **kw)

    def sim(self, method, **kw):
        return self.api.call("Sim", method, token=self.admin, **kw)

    def set_clock(self, unix_s):
        self.sim("SetClock", time=timestamp_pb2.Timestamp(seconds=int(unix_s)))

    def quote(self, symbol, last):
        self.sim("SetQuotes", quotes=[sim.Quote(symbol=symbol, bid=last, ask=last, last=last)])

    def submit(self, symbol, side, qty):
        self.n += 1
        return self.call("Orders", "SubmitOrder", client_order_id="m%d" % self.n,
                         symbol=symbol, side=side, type=MARKET, qty=qty,
                         time_in_force=common.TIME_IN_FORCE_DAY,
                         origin=common.ORDER_ORIGIN_USER).order

    def filled(self, symbol, side, qty):
        o = self.submit(symbol, side, qty)
        end = time.time() + 10
        while o.status != common_status("FILLED") and time.time() < end:
            time.sleep(0.02)
            o = self.call("Orders", "GetOrder", order_id=o.id).order
        assert o.status == common_status("FILLED"), (symbol, side, qty, o)
        return o

    def state(self):
        return self.call("Risk", "GetState").state

    def trips(self):
        ev = self.call("Audit", "ListEvents", page_size=500,
                       action=audit.AUDIT_ACTION_BREAKER_TRIP).events
        return list(ev)


def common_status(name):
    return orders.OrderStatus.Value("ORDER_STATUS_" + name)


class LedgerMarksTest(unittest.TestCase):
    def setUp(self):
        self.srv = TwServer().start()
        self.t = Trader(self.srv)
        self.t.set_clock(MON_10AM)
        # One order of 500 @ 100 is half the $100,000 account: let notional and sector allow it
        # so that only the breakers under test decide.
        self.t.call("Risk", "SetLimits", max_order_notional_pct=S(value="100"),
                    max_sector_pct=S(value="100"), max_drawdown_pct=S(value="5"),
                    daily_loss_pct=S(value="20"))
        self.t.quote("AAPL", "100")
        self.t.filled("AAPL", BUY, "500")

    def tearDown(self):
        self.t.api.close()
        self.srv.stop_and_check(self)
        self.srv.cleanup()

    def assert_halted_by(self, st, rule):
        self.assertEqual(st.trading_state, HALTED)
        self.assertTrue(st.breaker_tripped)
        self.assertEqual(common.RiskRule.Name(st.breaker_rule), rule)

    def test_drawdown_as_the_trader_saw_it(self):
        t = self.t
        t.quote("AAPL", "110")
        self.assertEqual(t.state().equity, "105000")
        t.quote("AAPL", "99.4")  # 99,700: 5.05 % below the 105,000 peak
        self.assert_halted_by(t.state(), "RISK_RULE_DRAWDOWN")

    def test_a_quote_move_alone_trips_and_saves_the_breaker_with_its_audit_event(self):
        t = self.t
        t.quote("AAPL", "110")  # nobody looks: no order, no GetState
        t.quote("AAPL", "99.4")
        # Saved at the mark: the audit trail has the trip before anything reads the state.
        trips = t.trips()
        self.assertEqual(len(trips), 1, "the quote move did not save a breaker trip")
        self.assertIn("DRAWDOWN", trips[0].details_json)
        st = t.state()
        self.assert_halted_by(st, "RISK_RULE_DRAWDOWN")
        self.assertTrue(st.HasField("last_mark"), "GetState does not say when it was marked")
        self.assertEqual(st.last_mark.seconds, MON_10AM)
        # Entries are refused, exits allowed.
        self.assertEqual(t.submit("AAPL", BUY, "1").status, common_status("REJECTED"))
        t.filled("AAPL", SELL, "100")
        # Further marks do not trip again.
        t.quote("AAPL", "90")
        self.assertEqual(len(t.trips()), 1)

    def test_a_quote_move_alone_trips_the_daily_loss_breaker(self):
        t = self.t
        t.call("Risk", "SetLimits", daily_loss_pct=S(value="2"), max_drawdown_pct=S(value="50"))
        t.quote("AAPL", "95.9")  # -2,050: over 2 % of the day's 100,000 start
        trips = t.trips()
        self.assertEqual(len(trips), 1, "the quote move did not save a daily-loss trip")
        self.assertIn("DAILY_LOSS", trips[0].details_json)
        self.assert_halted_by(t.state(), "RISK_RULE_DAILY_LOSS")

    def test_a_peak_seen_only_by_a_quote_is_saved(self):
        t = self.t
        t.quote("AAPL", "110")  # peak 105,000, seen by no order and no GetState
        t.quote("AAPL", "104")  # 102,000: 2.9 % below the peak, no trip
        self.assertEqual(t.trips(), [])
        self.assertEqual(t.state().trading_state, ACTIVE)
        t.quote("AAPL", "99.4")  # 99,700 from the saved 105,000 peak
        self.assertEqual(len(t.trips()), 1)

    def test_a_trip_by_quote_move_survives_a_restart(self):
        t = self.t
        t.quote("AAPL", "110")
        t.quote("AAPL", "99.4")
        self.assertEqual(len(t.trips()), 1)
        t.api.close()
        workdir = self.srv.workdir
        self.srv.stop_and_check(self)
        self.srv = TwServer(workdir=workdir).start()
        self.srv._own_workdir = True  # tearDown removes it
        self.t = Trader(self.srv)
        self.t.set_clock(MON_10AM + 60)
        st = self.t.state()
        self.assert_halted_by(st, "RISK_RULE_DRAWDOWN")
        self.assertEqual(len(self.t.trips()), 1)

    def test_a_user_trading_through_a_stored_sim_key_is_marked_too(self):
        """A stored key for the sim is still a sim account: quote moves mark it (the marker
        thread is for real brokers only)."""
        bob = Trader(self.srv, "bob")
        k = bob.call("KeyVault", "PutBrokerKey", broker="sim", label="paper",
                     environment=common.TRADING_MODE_PAPER, key_id="PKBOBSIM00000001",
                     secret="bob-sim-secret-1").key
        bob.call("Orders", "UpdateAccountSettings",
                 default_broker_key_id=S(value=k.id))
        bob.call("Risk", "SetLimits", max_order_notional_pct=S(value="100"),
                 max_sector_pct=S(value="100"), max_drawdown_pct=S(value="5"),
                 daily_loss_pct=S(value="20"))
        bob.filled("AAPL", BUY, "500")
        self.t.quote("AAPL", "110")
        self.t.quote("AAPL", "99.4")
        self.assertEqual(len(bob.trips()), 1, "a sim-key user was not marked by the quote move")
        self.assert_halted_by(bob.state(), "RISK_RULE_DRAWDOWN")
        bob.api.close()

    def test_users_not_holding_the_symbol_are_not_marked(self):
        t = self.t
        bob = Trader(self.srv, "bob")
        bob.call("Risk", "GetState")
        t.quote("MSFT", "10")
        self.assertFalse(bob.state().HasField("last_mark"))
        bob.api.close()


if __name__ == "__main__":
    unittest.main()

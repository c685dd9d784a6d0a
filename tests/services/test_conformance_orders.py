"""Orders conformance: every rule orders.proto's comments state, in tables, so code that drifts
from its contract fails here. Refusals must be INVALID_ARGUMENT naming the field and store
nothing; CheckOrder (Risk) refuses exactly what SubmitOrder refuses."""

import unittest

import grpc
from google.protobuf import timestamp_pb2, wrappers_pb2

from twapi import Api, audit, common, orders, sim
from twserver import TwServer

# Monday 2026-11-30 15:00 UTC = 10:00 New York, a trading day.
MONDAY_10AM = 1796050800
BUY, SELL = common.ORDER_SIDE_BUY, common.ORDER_SIDE_SELL
MARKET, LIMIT = common.ORDER_TYPE_MARKET, common.ORDER_TYPE_LIMIT
DAY, GTC, IOC = common.TIME_IN_FORCE_DAY, common.TIME_IN_FORCE_GTC, common.TIME_IN_FORCE_IOC
USER, AUTOMATION = common.ORDER_ORIGIN_USER, common.ORDER_ORIGIN_AUTOMATION
S = orders.OrderStatus
TS = timestamp_pb2.Timestamp


def status(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details() or ""


def order(**kw):
    """A valid SubmitOrderRequest (a 1-share market buy of AAPL), with kw replacing fields."""
    base = dict(client_order_id="c1", symbol="AAPL", side=BUY, type=MARKET, time_in_force=DAY,
                qty="1", limit_price="", origin=USER, broker_key_id="", note="")
    base.update(kw)
    return base


class OrdersConformanceTest(unittest.TestCase):
    def setUp(self):
        self.srv = TwServer().start()
        self.api = Api(self.srv.addr)
        self.admin = self.api.token("ops", admin=True)
        self.alice = self.api.token("alice")
        self.sim("SetClock", time=TS(seconds=MONDAY_10AM))
        self.sim("SetQuotes", quotes=[
            sim.Quote(symbol=s, bid="99.99", ask="100.01", last="100")
            for s in ("AAPL", "BRK.B", "BTC/USD", "ABCDEFGHIJKLMNO", "X")])

    def tearDown(self):
        self.api.close()
        self.srv.stop_and_check(self)
        self.srv.cleanup()

    def sim(self, method, **kw):
        return self.api.call("Sim", method, token=self.admin, **kw)

    def o(self, method, token=None, **kw):
        return self.api.call("Orders", method, token=token or self.alice, **kw)

    def submit(self, token=None, **kw):
        return self.o("SubmitOrder", token, **order(**kw)).order

    def listed(self, token=None, **kw):
        return list(self.o("ListOrders", token, page_size=500, **kw).orders)

    # ---- SubmitOrderRequest / CheckOrderRequest field rules ---------------------------------
    REFUSED = [
        ("client_order_id empty", dict(client_order_id=""), "client_order_id"),
        ("client_order_id 129 characters", dict(client_order_id="k" * 129), "client_order_id"),
        ("client_order_id with a space", dict(client_order_id="a b"), "client_order_id"),
        ("client_order_id with a slash", dict(client_order_id="a/b"), "client_order_id"),
        ("client_order_id non-ASCII", dict(client_order_id="caf\u00e9"), "client_order_id"),
        ("symbol empty", dict(symbol=""), "symbol"),
        ("symbol 16 characters", dict(symbol="ABCDEFGHIJKLMNOP"), "symbol"),
        ("symbol with a space", dict(symbol="AA PL"), "symbol"),
        ("symbol with an underscore", dict(symbol="BTC_USD"), "symbol"),
        ("symbol with a colon", dict(symbol="BTC:USD"), "symbol"),
        ("symbol non-ASCII letter", dict(symbol="\u00c4APL"), "symbol"),
        ("side unspecified", dict(side=common.ORDER_SIDE_UNSPECIFIED), "side"),
        ("side out of range", dict(side=7), "side"),
        ("type unspecified", dict(type=common.ORDER_TYPE_UNSPECIFIED), "type"),
        ("type out of range", dict(type=7), "type"),
        ("time_in_force unspecified (not DAY)",
         dict(time_in_force=common.TIME_IN_FORCE_UNSPECIFIED), "time_in_force"),
        ("time_in_force out of range", dict(time_in_force=9), "time_in_force"),
        ("origin unspecified (not USER)", dict(origin=common.ORDER_ORIGIN_UNSPECIFIED),
         "origin"),
        ("origin out of range", dict(origin=9), "origin"),
        ("qty empty", dict(qty=""), "qty"),
        ("qty zero", dict(qty="0"), "qty"),
        ("qty negative", dict(qty="-1"), "qty"),
        ("qty with exponent", dict(qty="1e3"), "qty"),
        ("qty not a number", dict(qty="ten"), "qty"),
        ("limit order without limit_price", dict(type=LIMIT), "limit_price"),
        ("limit_price zero", dict(type=LIMIT, limit_price="0"), "limit_price"),
        ("limit_price negative", dict(type=LIMIT, limit_price="-1"), "limit_price"),
        ("market order with limit_price", dict(limit_price="100"), "limit_price"),
        ("broker_key_id not an id", dict(broker_key_id="main"), "broker_key_id"),
        ("note 257 characters", dict(note="n" * 257), "note"),
        ("note 257 two-byte characters", dict(note="\u00e9" * 257), "note"),
        ("note with newline", dict(note="a\nb"), "note"),
        ("note with tab", dict(note="a\tb"), "note"),
        ("note with ESC", dict(note="a\x1bb"), "note"),
        ("note with DEL", dict(note="a\x7fb"), "note"),
        ("note with a C1 control (NEL)", dict(note="a\u0085b"), "note"),
    ]

    def test_submit_refuses_what_the_contract_forbids_and_stores_nothing(self):
        for name, kw, field in self.REFUSED:
            with self.subTest(name):
                code, details = status(self.o, "SubmitOrder", **order(**kw))
                self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
                self.assertIn(field, details)
        self.assertEqual(self.listed(), [])
        acts = [e.action for e in
                self.api.call("Audit", "ListEvents", token=self.alice, page_size=500).events]
        self.assertNotIn(audit.AUDIT_ACTION_ORDER_ENTRY, acts)

    def test_check_order_refuses_the_same_fields(self):
        # CheckOrderRequest has SubmitOrderRequest's fields and rules ("" client_order_id aside).
        for name, kw, field in self.REFUSED:
            if name == "client_order_id empty":
                continue
            with self.subTest(name):
                code, details = status(self.api.call, "Risk", "CheckOrder", token=self.alice,
                                       **order(**kw))
                self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
                self.assertIn(field, details)
        r = self.api.call("Risk", "CheckOrder", token=self.alice, **order(client_order_id=""))
        self.assertTrue(r.allowed, str(r.violations))
        self.assertEqual(self.listed(), [])

    ACCEPTED = [
        # (name, request fields, Order field, value shown back)
        ("client_order_id 1 character", dict(client_order_id="k"), "client_order_id", "k"),
        ("client_order_id 128 characters (Alpaca's limit)", dict(client_order_id="k" * 128),
         "client_order_id", "k" * 128),
        ("client_order_id of every allowed class", dict(client_order_id="Az09._:-"),
         "client_order_id", "Az09._:-"),
        ("symbol lower case is upper-cased", dict(symbol="aapl"), "symbol", "AAPL"),
        ("symbol mixed case with a class", dict(symbol="brk.B"), "symbol", "BRK.B"),
        ("symbol crypto pair", dict(symbol="btc/usd"), "symbol", "BTC/USD"),
        ("symbol 15 characters", dict(symbol="abcdefghijklmno"), "symbol", "ABCDEFGHIJKLMNO"),
        ("symbol 1 character", dict(symbol="x"), "symbol", "X"),
        ("time_in_force DAY", dict(time_in_force=DAY), "time_in_force", DAY),
        ("time_in_force GTC", dict(time_in_force=GTC), "time_in_force", GTC),
        ("time_in_force IOC", dict(time_in_force=IOC), "time_in_force", IOC),
        ("origin USER", dict(origin=USER), "origin", USER),
        ("origin AUTOMATION", dict(origin=AUTOMATION), "origin", AUTOMATION),
        ("side SELL", dict(side=SELL), "side", SELL),
        ("type LIMIT", dict(type=LIMIT, limit_price="99.5"), "limit_price", "99.5"),
        ("fractional qty", dict(qty="0.5"), "qty", "0.5"),
        ("no note", dict(note=""), "note", ""),
        ("note 256 characters", dict(note="n" * 256), "note", "n" * 256),
        ("note 256 four-byte characters (1024 bytes)", dict(note="\U0001F4C8" * 256), "note",
         "\U0001F4C8" * 256),
        ("note of any script with spaces", dict(note="caf\u00e9 \u65e5\u672c rebalance"), "note",
         "caf\u00e9 \u65e5\u672c rebalance"),
    ]

    def test_submit_accepts_what_the_contract_allows_and_shows_it_back(self):
        for i, (name, kw, field, want) in enumerate(self.ACCEPTED):
            kw = dict(kw)
            kw.setdefault("client_order_id", "acc-%d" % i)
            with self.subTest(name):
                o = self.submit(**kw)
                self.assertTrue(o.id)
                self.assertEqual(getattr(o, field), want)
                # Stored: a later read shows the same.
                got = self.o("GetOrder", order_id=o.id).order
                self.assertEqual(getattr(got, field), want)
        self.assertEqual(len(self.listed()), len(self.ACCEPTED))

    def test_idempotent_on_client_order_id_per_user(self):
        first = self.submit(client_order_id="same", note="first")
        again = self.submit(client_order_id="same", note="first")
        self.assertEqual(again.id, first.id)
        self.assertEqual(len(self.listed()), 1)
        # Unique per user: another user's same key is another order.
        bob = self.api.token("bob")
        other = self.submit(bob, client_order_id="same")
        self.assertNotEqual(other.id, first.id)

    def test_order_fields_before_and_after_a_fill(self):
        uid = self.api.call("Risk", "GetState", token=self.alice).state.user_id
        rest = self.submit(client_order_id="rest", type=LIMIT, limit_price="95", qty="2",
                           time_in_force=GTC, note="resting")
        self.assertEqual((rest.user_id, rest.symbol, rest.qty, rest.filled_qty,
                          rest.avg_fill_price, rest.limit_price, rest.broker, rest.trading_mode,
                          rest.note, rest.status_message),
                         (uid, "AAPL", "2", "0", "", "95", "sim", common.TRADING_MODE_PAPER,
                          "resting", ""))
        self.assertIn(rest.status, (S.Value("ORDER_STATUS_PENDING_SUBMIT"),
                                    S.Value("ORDER_STATUS_ACCEPTED")))
        self.assertFalse(rest.HasField("confirm_by"))
        self.assertEqual(len(rest.violations), 0)
        filled = self.submit(client_order_id="mkt", qty="3")
        self.assertEqual(S.Name(filled.status), "ORDER_STATUS_FILLED")
        self.assertEqual((filled.filled_qty, filled.avg_fill_price, filled.limit_price),
                         ("3", "100.01", ""))
        self.assertTrue(filled.broker_order_id)
        self.assertGreaterEqual(filled.updated_at.seconds, filled.created_at.seconds)
        # Pending confirmation (automation without autonomous mode) has confirm_by.
        pend = self.submit(client_order_id="auto", origin=AUTOMATION)
        self.assertEqual(S.Name(pend.status), "ORDER_STATUS_PENDING_CONFIRMATION")
        self.assertTrue(pend.HasField("confirm_by"))
        # A risk rejection is not an RPC error: REJECTED with its violations.
        big = self.submit(client_order_id="big", qty="200")
        self.assertEqual(S.Name(big.status), "ORDER_STATUS_REJECTED")
        self.assertEqual([common.RiskRule.Name(v.code) for v in big.violations],
                         ["RISK_RULE_MAX_NOTIONAL"])

    # ---- Confirm / Cancel / Get: own orders only, states ------------------------------------
    def test_other_users_orders_are_not_found_and_states_are_checked(self):
        mine = self.submit(client_order_id="mine", origin=AUTOMATION)
        bob = self.api.token("bob")
        for m in ("GetOrder", "ConfirmOrder", "CancelOrder"):
            with self.subTest(m):
                self.assertEqual(status(self.o, m, bob, order_id=mine.id)[0],
                                 grpc.StatusCode.NOT_FOUND)
                self.assertEqual(status(self.o, m, order_id="x")[0],
                                 grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(self.listed(bob), [])
        done = self.submit(client_order_id="done", qty="2")
        self.assertEqual(S.Name(done.status), "ORDER_STATUS_FILLED")
        self.assertEqual(status(self.o, "ConfirmOrder", order_id=done.id)[0],
                         grpc.StatusCode.FAILED_PRECONDITION)
        self.assertEqual(status(self.o, "CancelOrder", order_id=done.id)[0],
                         grpc.StatusCode.FAILED_PRECONDITION)
        c = self.o("ConfirmOrder", order_id=mine.id).order
        self.assertNotEqual(S.Name(c.status), "ORDER_STATUS_PENDING_CONFIRMATION")
        pend = self.submit(client_order_id="pend", origin=AUTOMATION, qty="4")
        x = self.o("CancelOrder", order_id=pend.id).order
        self.assertEqual(S.Name(x.status), "ORDER_STATUS_CANCELED")

    # ---- ListOrders ----------------------------------------------------------------------------
    def test_list_is_newest_first_filters_and_pages(self):
        ids = []
        for i, sym in enumerate(["AAPL", "BRK.B", "AAPL", "BTC/USD", "AAPL"]):
            ids.append(self.submit(client_order_id="l%d" % i, symbol=sym,
                                   origin=AUTOMATION if i == 1 else USER).id)
        newest_first = list(reversed(ids))
        self.assertEqual([o.id for o in self.listed()], newest_first)
        for size in (1, 2, 3, 5):
            with self.subTest(page_size=size):
                got, token = [], ""
                for _ in range(10):
                    r = self.o("ListOrders", page_size=size, page_token=token)
                    self.assertLessEqual(len(r.orders), size)
                    got += [o.id for o in r.orders]
                    token = r.next_page_token
                    if not token:
                        break
                self.assertEqual(got, newest_first)
        # symbol filter, with lower case upper-cased as in SubmitOrder.
        self.assertEqual([o.id for o in self.listed(symbol="aapl")], [ids[4], ids[2], ids[0]])
        self.assertEqual([o.id for o in self.listed(symbol="BTC/USD")], [ids[3]])
        # statuses filter; UNSPECIFIED matches nothing.
        pend = S.Value("ORDER_STATUS_PENDING_CONFIRMATION")
        self.assertEqual([o.id for o in self.listed(statuses=[pend])], [ids[1]])
        self.assertEqual(self.listed(statuses=[S.Value("ORDER_STATUS_UNSPECIFIED")]), [])
        # created_after is inclusive, created_before exclusive.
        t0 = self.o("GetOrder", order_id=ids[0]).order.created_at.seconds
        self.assertEqual(len(self.listed(created_after=TS(seconds=t0))), 5)
        self.assertEqual(self.listed(created_before=TS(seconds=t0)), [])
        self.assertEqual(len(self.listed(created_before=TS(seconds=t0 + 3600))), 5)
        # Filters combine with AND.
        self.assertEqual(self.listed(symbol="AAPL", statuses=[pend]), [])

    def test_list_refuses_bad_paging(self):
        for name, kw, field in (("negative page_size", dict(page_size=-1), "page_size"),
                                ("foreign page_token", dict(page_token="nope"), "page_token"),
                                ("bad symbol", dict(symbol="A B"), "symbol")):
            with self.subTest(name):
                code, details = status(self.o, "ListOrders", **kw)
                self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
                self.assertIn(field, details)

    # ---- account settings ----------------------------------------------------------------------
    def test_settings_start_paper_and_partial_updates_are_audited(self):
        s = self.o("GetAccountSettings").settings
        self.assertEqual((s.trading_mode, s.autonomous_mode, s.default_broker_key_id),
                         (common.TRADING_MODE_PAPER, False, ""))
        # LIVE needs confirm_live.
        self.assertEqual(status(self.o, "UpdateAccountSettings",
                                trading_mode=common.TRADING_MODE_LIVE)[0],
                         grpc.StatusCode.FAILED_PRECONDITION)
        s = self.o("UpdateAccountSettings",
                   autonomous_mode=wrappers_pb2.BoolValue(value=True)).settings
        self.assertEqual((s.trading_mode, s.autonomous_mode),
                         (common.TRADING_MODE_PAPER, True))
        acts = [e.action for e in
                self.api.call("Audit", "ListEvents", token=self.alice, page_size=500).events]
        self.assertIn(audit.AUDIT_ACTION_AUTONOMOUS_CHANGE, acts)
        # With autonomous mode, AUTOMATION orders go straight to the broker.
        o = self.submit(client_order_id="auto-now", origin=AUTOMATION)
        self.assertEqual(S.Name(o.status), "ORDER_STATUS_FILLED")


if __name__ == "__main__":
    unittest.main()

"""Orders through the gRPC API with the sim broker: the trader's lifecycle, confirmation and
autonomous mode, live-mode refusal, idempotency, admission under concurrency, the breaker,
order update streams, and isolation between users."""

import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

import grpc
from google.protobuf import duration_pb2, timestamp_pb2, wrappers_pb2

from twapi import Api, code_of, common, orders, sim
from twserver import TwServer, db_sql

BUY, SELL = common.ORDER_SIDE_BUY, common.ORDER_SIDE_SELL
MARKET, LIMIT = common.ORDER_TYPE_MARKET, common.ORDER_TYPE_LIMIT
AUTOMATION = common.ORDER_ORIGIN_AUTOMATION
# Required in every SubmitOrderRequest / CheckOrderRequest (orders.proto).
REQ = dict(time_in_force=common.TIME_IN_FORCE_DAY, origin=common.ORDER_ORIGIN_USER)
S = orders.OrderStatus
# Monday 2026-11-30 15:00 UTC = 10:00 New York, a trading day.
MONDAY_10AM = 1796050800


class Trader:
    def __init__(self, srv, subject="alice"):
        self.api = Api(srv.addr)
        self.admin = self.api.token("ops", admin=True)
        self.tok = self.api.token(subject)
        self.uid = None

    def call(self, svc, method, **kw):
        return self.api.call(svc, method, token=self.tok, **kw)

    def sim(self, method, **kw):
        return self.api.call("Sim", method, token=self.admin, **kw)

    def quote(self, symbol, last, spread="0.02"):
        from decimal import Decimal
        l = Decimal(last)
        h = Decimal(spread) / 2
        self.sim("SetQuotes", quotes=[sim.Quote(symbol=symbol, bid=str(l - h), ask=str(l + h),
                                                last=str(l))])

    def submit(self, coid, symbol, side, qty, type_=MARKET, limit="", **kw):
        return self.call("Orders", "SubmitOrder", client_order_id=coid, symbol=symbol,
                         side=side, type=type_, qty=qty, limit_price=limit,
                         **dict(REQ, **kw)).order

    def wait_status(self, order_id, statuses, timeout=5):
        end = time.time() + timeout
        while True:
            o = self.call("Orders", "GetOrder", order_id=order_id).order
            if o.status in statuses or time.time() > end:
                return o
            time.sleep(0.05)


def start_at(srv_env=None):
    return TwServer(env=srv_env)


class OrdersTest(unittest.TestCase):
    def setUp(self):
        self.srv = TwServer()
        self.srv.start()
        self.t = Trader(self.srv)
        self.t.sim("SetClock", time=timestamp_pb2.Timestamp(seconds=MONDAY_10AM))
        self.t.quote("AAPL", "100.00")
        self.t.quote("MSFT", "50.00")

    def tearDown(self):
        self.t.api.close()
        self.srv.stop_and_check(self)
        self.srv.cleanup()

    def test_lifecycle_fill_position_exit_pnl(self):
        t = self.t
        o = t.submit("c1", "AAPL", BUY, "10")
        o = t.wait_status(o.id, [S.Value("ORDER_STATUS_FILLED")])
        self.assertEqual(S.Name(o.status), "ORDER_STATUS_FILLED")
        self.assertEqual(o.filled_qty, "10")
        self.assertEqual(o.avg_fill_price, "100.01")  # market buy fills at the ask
        pos = t.call("Orders", "ListPositions").positions
        self.assertEqual([(p.symbol, p.qty, p.avg_cost) for p in pos], [("AAPL", "10", "100.01")])
        t.quote("AAPL", "110.00")
        x = t.submit("c2", "AAPL", SELL, "10")
        x = t.wait_status(x.id, [S.Value("ORDER_STATUS_FILLED")])
        self.assertEqual(x.avg_fill_price, "109.99")
        pos = {p.symbol: p for p in t.call("Orders", "ListPositions").positions}
        self.assertEqual(pos["AAPL"].qty, "0")
        self.assertEqual(pos["AAPL"].realized_pl, "99.8")  # (109.99 - 100.01) * 10
        acts = [e.action for e in t.call("Audit", "ListEvents").events]
        from twapi import audit
        names = [audit.AuditAction.Name(a) for a in acts]
        self.assertIn("AUDIT_ACTION_ORDER_ENTRY", names)
        self.assertIn("AUDIT_ACTION_ORDER_EXIT", names)
        self.assertEqual(names.count("AUDIT_ACTION_ORDER_FILL"), 2)
        self.assertTrue(t.call("Audit", "VerifyChain").ok)

    def test_idempotent_client_order_id(self):
        t = self.t
        a = t.submit("same", "AAPL", BUY, "1")
        b = t.submit("same", "AAPL", BUY, "1")
        self.assertEqual(a.id, b.id)
        with ThreadPoolExecutor(8) as ex:
            ids = set(ex.map(lambda _: t.submit("race", "MSFT", BUY, "1").id, range(16)))
        self.assertEqual(len(ids), 1)
        self.assertEqual(len(t.call("Orders", "ListOrders").orders), 2)
        # Only the call that recorded the order sends it: a retry that lost the race used to
        # send it again, and the broker's "client_order_id must be unique" turned the FILLED
        # order into an audited ORDER_REJECT (found by the ledger's drift check under load).
        race = t.wait_status(ids.pop(), [S.Value("ORDER_STATUS_FILLED")])
        self.assertEqual(S.Name(race.status), "ORDER_STATUS_FILLED")
        from twapi import audit
        names = [audit.AuditAction.Name(e.action) for e in t.call("Audit", "ListEvents").events]
        self.assertNotIn("AUDIT_ACTION_ORDER_REJECT", names)
        self.assertEqual(names.count("AUDIT_ACTION_ORDER_FILL"), 2)
        self.assertEqual([ln for ln in self.srv.lines() if '"event":"broker_reject"' in ln], [])

    def metrics(self):
        import urllib.request
        url = "http://127.0.0.1:%d/metrics" % self.srv.listening["ops_port"]
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.read().decode()

    def test_the_answer_is_the_order_as_stored(self):
        # SubmitOrder and ConfirmOrder answer with what the call committed, not a read of the
        # order after it (issue 18): the answer is the stored order, field for field.
        t = self.t
        calls = [("filled", lambda: t.submit("filled", "AAPL", BUY, "1")),
                 ("resting", lambda: t.submit("resting", "MSFT", BUY, "1", type_=LIMIT,
                                              limit="49")),
                 ("refused", lambda: t.submit("refused", "AAPL", BUY, "200")),
                 ("waiting", lambda: t.submit("waiting", "MSFT", BUY, "2", origin=AUTOMATION))]
        got = {}
        for name, call in calls:
            got[name] = call()
            self.assertEqual(got[name], t.call("Orders", "GetOrder", order_id=got[name].id).order,
                             name)
        self.assertEqual(S.Name(got["filled"].status), "ORDER_STATUS_FILLED")
        self.assertEqual(got["filled"].filled_qty, "1")
        self.assertTrue(got["filled"].avg_fill_price and got["filled"].broker_order_id)
        self.assertEqual(S.Name(got["resting"].status), "ORDER_STATUS_ACCEPTED")
        self.assertEqual(S.Name(got["refused"].status), "ORDER_STATUS_REJECTED")
        self.assertEqual(S.Name(got["waiting"].status), "ORDER_STATUS_PENDING_CONFIRMATION")
        confirmed = t.call("Orders", "ConfirmOrder", order_id=got["waiting"].id).order
        self.assertEqual(S.Name(confirmed.status), "ORDER_STATUS_FILLED")
        self.assertEqual(confirmed, t.call("Orders", "GetOrder", order_id=confirmed.id).order)

    def test_a_retry_is_its_order_whatever_a_new_order_would_meet(self):
        t = self.t
        first = t.submit("r1", "AAPL", BUY, "1")
        events = len(t.call("Audit", "ListEvents").events)
        # Within the duplicate window a new order like it would be refused; the retry is the
        # order, and nothing is counted or audited for it.
        self.assertEqual(t.submit("r1", "AAPL", BUY, "1"), first)
        self.assertEqual(len(t.call("Audit", "ListEvents").events), events)
        import re
        text = self.metrics()
        counted = {m.group(1): float(m.group(2)) for m in re.finditer(
            r'^tradewink_(risk_rejections_total\{rule="\w+"\}|orders_total\{status="\w+"\}) (\S+)$',
            text, re.M)}
        self.assertEqual({k: v for k, v in counted.items() if v},
                         {'orders_total{status="PENDING_SUBMIT"}': 1.0})
        # Another replica makes the account live (no live key): this process's copy of the
        # settings is stale. Its version moved, so a new order reads them and is refused (it
        # would be placed on paper from the stale copy), and a retry is still the order.
        uid = int(first.user_id)
        db_sql(self.srv.workdir, "UPDATE users SET trading_mode = 'live' WHERE id = %d" % uid)
        db_sql(self.srv.workdir,
               "UPDATE risk_state SET version = version + 1 WHERE user_id = %d" % uid)
        self.assertEqual(t.submit("r1", "AAPL", BUY, "1"), first)
        try:
            t.submit("r2", "MSFT", BUY, "1")
            self.fail("a new order was admitted with the stale settings")
        except grpc.RpcError as e:
            self.assertEqual(e.code(), grpc.StatusCode.FAILED_PRECONDITION)
            self.assertIn("live broker key", e.details())
        self.assertEqual([o.client_order_id for o in t.call("Orders", "ListOrders").orders],
                         ["r1"])

    def test_bad_orders_are_refused_and_nothing_stored(self):
        t = self.t
        bad = [dict(client_order_id="", symbol="AAPL", side=BUY, type=MARKET, qty="1"),
               dict(client_order_id="b1", symbol="AA PL", side=BUY, type=MARKET, qty="1"),
               dict(client_order_id="b2", symbol="AAPL", side=0, type=MARKET, qty="1"),
               dict(client_order_id="b3", symbol="AAPL", side=BUY, type=MARKET, qty="-1"),
               dict(client_order_id="b4", symbol="AAPL", side=BUY, type=MARKET, qty="1e3"),
               dict(client_order_id="b5", symbol="AAPL", side=BUY, type=LIMIT, qty="1"),
               dict(client_order_id="b6", symbol="AAPL", side=BUY, type=MARKET, qty="1",
                    limit_price="10"),
               dict(client_order_id="b7 x", symbol="AAPL", side=BUY, type=MARKET, qty="1")]
        for b in bad:
            self.assertEqual(code_of(t.call, "Orders", "SubmitOrder", **dict(REQ, **b)),
                             grpc.StatusCode.INVALID_ARGUMENT, b)
        self.assertEqual(len(t.call("Orders", "ListOrders").orders), 0)

    def test_risk_rejection_is_recorded_not_an_error(self):
        t = self.t
        # 10% of $100,000 equity = $10,000 max notional: 200 x $100 is refused.
        o = t.submit("big", "AAPL", BUY, "200")
        self.assertEqual(S.Name(o.status), "ORDER_STATUS_REJECTED")
        self.assertEqual([common.RiskRule.Name(v.code) for v in o.violations],
                         ["RISK_RULE_MAX_NOTIONAL"])
        self.assertEqual(len(t.call("Orders", "ListPositions").positions), 0)
        # /metrics counts it under the engine's own rule name (it used to say rule="other").
        import urllib.request
        url = "http://127.0.0.1:%d/metrics" % self.srv.listening["ops_port"]
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
        self.assertIn('\ntradewink_risk_rejections_total{rule="max_order_notional"} 1\n', text)
        self.assertNotIn('tradewink_risk_rejections_total{rule="other"}', text)
        self.assertIn('\ntradewink_orders_total{status="REJECTED"} 1\n', text)

    def test_confirmation_flow_and_autonomous_mode(self):
        t = self.t
        o = t.submit("auto1", "AAPL", BUY, "1", origin=AUTOMATION)
        self.assertEqual(S.Name(o.status), "ORDER_STATUS_PENDING_CONFIRMATION")
        self.assertTrue(o.HasField("confirm_by"))
        c = t.call("Orders", "ConfirmOrder", order_id=o.id).order
        c = t.wait_status(c.id, [S.Value("ORDER_STATUS_FILLED")])
        self.assertEqual(S.Name(c.status), "ORDER_STATUS_FILLED")
        self.assertEqual(code_of(t.call, "Orders", "ConfirmOrder", order_id=o.id),
                         grpc.StatusCode.FAILED_PRECONDITION)
        # Expiry: the confirmation window passes on the sim clock.
        e = t.submit("auto2", "AAPL", BUY, "2", origin=AUTOMATION)  # not a duplicate of auto1
        t.sim("AdvanceClock", duration=duration_pb2.Duration(seconds=600))
        self.assertEqual(code_of(t.call, "Orders", "ConfirmOrder", order_id=e.id),
                         grpc.StatusCode.FAILED_PRECONDITION)
        self.assertEqual(S.Name(t.call("Orders", "GetOrder", order_id=e.id).order.status),
                         "ORDER_STATUS_EXPIRED")
        # Autonomous mode: automation goes straight through.
        s = t.call("Orders", "UpdateAccountSettings",
                   autonomous_mode=wrappers_pb2.BoolValue(value=True)).settings
        self.assertTrue(s.autonomous_mode)
        a = t.submit("auto3", "AAPL", BUY, "3", origin=AUTOMATION)
        self.assertNotEqual(S.Name(a.status), "ORDER_STATUS_PENDING_CONFIRMATION")

    def test_live_mode_needs_confirmation_and_a_live_key(self):
        t = self.t
        self.assertEqual(code_of(t.call, "Orders", "UpdateAccountSettings",
                                 trading_mode=common.TRADING_MODE_LIVE, confirm_live=True),
                         grpc.StatusCode.FAILED_PRECONDITION)
        t.call("KeyVault", "PutBrokerKey", broker="alpaca", environment=common.TRADING_MODE_LIVE,
               key_id="AKLIVEKEY0000001", secret="live-secret-value")
        self.assertEqual(code_of(t.call, "Orders", "UpdateAccountSettings",
                                 trading_mode=common.TRADING_MODE_LIVE),
                         grpc.StatusCode.FAILED_PRECONDITION)
        s = t.call("Orders", "UpdateAccountSettings", trading_mode=common.TRADING_MODE_LIVE,
                   confirm_live=True).settings
        self.assertEqual(s.trading_mode, common.TRADING_MODE_LIVE)
        self.assertEqual(t.call("Orders", "GetAccountSettings").settings.trading_mode,
                         common.TRADING_MODE_LIVE)

    def test_concurrent_admission_respects_max_positions(self):
        t = self.t
        syms = ["S%02d" % i for i in range(64)]
        t.sim("SetQuotes", quotes=[sim.Quote(symbol=s, bid="9.99", ask="10.01", last="10")
                                   for s in syms])
        t.api.call("Risk", "SetLimits", token=t.tok,
                   max_open_positions=wrappers_pb2.Int32Value(value=5),
                   max_orders_per_second=wrappers_pb2.Int32Value(value=100))
        with ThreadPoolExecutor(16) as ex:
            res = list(ex.map(lambda s: t.submit("p-" + s, s, BUY, "1").status, syms))
        admitted = [r for r in res if S.Name(r) != "ORDER_STATUS_REJECTED"]
        self.assertEqual(len(admitted), 5)

    def test_check_order_is_a_dry_run_and_state_reports_the_account(self):
        t = self.t
        r = t.call("Risk", "CheckOrder", client_order_id="dry", symbol="AAPL", side=BUY,
                   type=MARKET, qty="200", **REQ)
        self.assertFalse(r.allowed)
        self.assertEqual([common.RiskRule.Name(v.code) for v in r.violations],
                         ["RISK_RULE_MAX_NOTIONAL"])
        self.assertTrue(t.call("Risk", "CheckOrder", symbol="AAPL", side=BUY, type=MARKET,
                               qty="1", **REQ).allowed)
        self.assertEqual(len(t.call("Orders", "ListOrders").orders), 0)
        self.assertEqual(code_of(t.call, "Risk", "CheckOrder", symbol="AAPL", side=BUY,
                                 type=MARKET, qty="0", **REQ), grpc.StatusCode.INVALID_ARGUMENT)
        t.submit("s1", "AAPL", BUY, "10")
        st = t.call("Risk", "GetState").state
        self.assertEqual(st.open_positions, 1)
        self.assertEqual(st.equity, "99999.9")  # paid the ask (100.01), marked at 100
        self.assertEqual(st.pnl_today, "-0.1")
        self.assertFalse(st.breaker_tripped)
        bob = t.api.token("bob")
        self.assertEqual(code_of(t.api.call, "Risk", "GetState", token=bob, user_id=st.user_id),
                         grpc.StatusCode.PERMISSION_DENIED)

    def test_user_isolation(self):
        t = self.t
        o = t.submit("mine", "AAPL", BUY, "1")
        bob = t.api.token("bob")
        for m, kw in (("GetOrder", {"order_id": o.id}), ("CancelOrder", {"order_id": o.id}),
                      ("ConfirmOrder", {"order_id": o.id})):
            self.assertEqual(code_of(t.api.call, "Orders", m, token=bob, **kw),
                             grpc.StatusCode.NOT_FOUND)
        self.assertEqual(len(t.api.call("Orders", "ListOrders", token=bob).orders), 0)
        self.assertEqual(len(t.api.call("Orders", "ListPositions", token=bob).positions), 0)
        self.assertEqual(code_of(t.api.call, "Sim", "SetClock", token=bob),
                         grpc.StatusCode.PERMISSION_DENIED)

    def test_resting_limit_order_cancel_and_stream(self):
        t = self.t
        got = []

        def read():
            try:
                for m in t.api.stream("Orders", "StreamOrderUpdates", token=t.tok, timeout=6):
                    got.append(m.update)
            except grpc.RpcError:
                pass
        th = threading.Thread(target=read)
        th.start()
        time.sleep(0.8)
        o = t.submit("lim", "AAPL", BUY, "5", type_=LIMIT, limit="95")
        o = t.wait_status(o.id, [S.Value("ORDER_STATUS_ACCEPTED")])
        self.assertEqual(S.Name(o.status), "ORDER_STATUS_ACCEPTED")
        c = t.call("Orders", "CancelOrder", order_id=o.id).order
        self.assertEqual(S.Name(c.status), "ORDER_STATUS_CANCELED")
        self.assertEqual(code_of(t.call, "Orders", "CancelOrder", order_id=o.id),
                         grpc.StatusCode.FAILED_PRECONDITION)
        f = t.submit("lim2", "MSFT", BUY, "2", type_=LIMIT, limit="49.50")
        t.quote("MSFT", "49.00")  # crosses the resting order
        f = t.wait_status(f.id, [S.Value("ORDER_STATUS_FILLED")])
        self.assertEqual(S.Name(f.status), "ORDER_STATUS_FILLED")
        end = time.time() + 5
        while len(got) < 4 and time.time() < end:
            time.sleep(0.1)
        kinds = [orders.OrderUpdateKind.Name(u.kind) for u in got]
        self.assertEqual(kinds, ["ORDER_UPDATE_KIND_CREATED", "ORDER_UPDATE_KIND_CANCELED",
                                 "ORDER_UPDATE_KIND_CREATED", "ORDER_UPDATE_KIND_FILL"])
        self.assertEqual(got[-1].fill_qty, "2")
        th.join(10)

    def test_breaker_trips_on_loss_exits_allowed_next_day_resets(self):
        t = self.t
        t.quote("AAPL", "100.00", spread="0.00")
        t.submit("e1", "AAPL", BUY, "90")  # $9,000 of $100,000
        t.quote("AAPL", "70.00", spread="0.00")  # -$2,700 today: over the 2% daily loss
        # The quote move itself trips the breaker (mark-to-market); the next entry is refused
        # because trading is halted, and says which breaker halted it.
        o = t.submit("e2", "MSFT", BUY, "1")
        self.assertEqual(S.Name(o.status), "ORDER_STATUS_REJECTED")
        rules = [common.RiskRule.Name(v.code) for v in o.violations]
        self.assertEqual(rules, ["RISK_RULE_TRADING_HALTED"])
        self.assertIn("circuit breaker (daily loss)", o.violations[0].message)
        x = t.submit("x1", "AAPL", SELL, "10")  # an exit is still allowed
        self.assertNotEqual(S.Name(x.status), "ORDER_STATUS_REJECTED")
        from twapi import audit
        names = [audit.AuditAction.Name(e.action) for e in t.call("Audit", "ListEvents").events]
        self.assertIn("AUDIT_ACTION_BREAKER_TRIP", names)
        st = t.call("Risk", "GetState").state
        self.assertTrue(st.breaker_tripped)
        self.assertEqual(common.RiskRule.Name(st.breaker_rule), "RISK_RULE_DAILY_LOSS")
        self.assertEqual(code_of(t.call, "Risk", "Resume"), grpc.StatusCode.FAILED_PRECONDITION)
        # Next trading day (Tuesday 10:00 New York): entries are accepted again.
        t.sim("SetClock", time=timestamp_pb2.Timestamp(seconds=MONDAY_10AM + 86400))
        y = t.submit("e3", "MSFT", BUY, "1")
        self.assertNotEqual(S.Name(y.status), "ORDER_STATUS_REJECTED", str(y.violations))

    def test_stuck_submission_is_settled_despite_many_quiet_resting_orders(self):
        # Regression: the reconciler asks the broker at most 50 times a pass, and it used to
        # spend them on the oldest open orders every pass, so a stuck submission behind more
        # than 50 quiet resting orders was never settled (seen in fault_pg_restart).
        t = self.t
        t.call("Risk", "SetLimits", max_open_positions=wrappers_pb2.Int32Value(value=100),
               max_orders_per_second=wrappers_pb2.Int32Value(value=100),
               duplicate_window_seconds=wrappers_pb2.Int32Value(value=1))
        resting = []
        for i in range(60):  # 1.1 s apart on the sim clock: outside the duplicate window
            resting.append(t.submit("rest-%d" % i, "MSFT", BUY, "1", type_=LIMIT,
                                    limit="49.%02d" % i))
            t.sim("AdvanceClock", duration=duration_pb2.Duration(seconds=1, nanos=100000000))
        for o in resting:
            o = t.wait_status(o.id, [S.Value("ORDER_STATUS_ACCEPTED")])
            self.assertEqual(S.Name(o.status), "ORDER_STATUS_ACCEPTED", str(o))
        uid = int(resting[0].user_id)  # the store's id
        now_us = t.sim("GetClock").time.ToMicroseconds()
        # A submission that never reached the broker (as after a crash or a lost request),
        # newer than every resting order.
        db_sql(self.srv.workdir,
               "INSERT INTO orders (user_id, client_order_id, symbol, side, type, tif, qty, "
               "status, origin, mode, broker, created_at_us, updated_at_us) VALUES "
               "(%d, 'stuck-1', 'AAPL', 'buy', 'market', 'day', 1000000000, 'PENDING_SUBMIT', "
               "'user', 'paper', 'sim', %d, %d)" % (uid, now_us, now_us))
        # Written as the store writes a user's change: with the user's version moved, so this
        # process's cached book of the user is known stale (issue 18).
        db_sql(self.srv.workdir,
               "UPDATE risk_state SET version = version + 1 WHERE user_id = %d" % uid)
        stuck = t.call("Orders", "ListOrders").orders
        stuck = [o for o in stuck if o.client_order_id == "stuck-1"][0]
        self.assertEqual(S.Name(stuck.status), "ORDER_STATUS_PENDING_SUBMIT")
        # Past the in-flight allowance (30 s); reconciler passes run every 2 s.
        t.sim("AdvanceClock", duration=duration_pb2.Duration(seconds=60))
        o = t.wait_status(stuck.id, [S.Value("ORDER_STATUS_REJECTED")], timeout=8)
        self.assertEqual(S.Name(o.status), "ORDER_STATUS_REJECTED")
        # The resting orders are untouched by the re-checks.
        for r in resting[:3] + resting[-3:]:
            self.assertEqual(S.Name(t.call("Orders", "GetOrder", order_id=r.id).order.status),
                             "ORDER_STATUS_ACCEPTED")


if __name__ == "__main__":
    unittest.main()

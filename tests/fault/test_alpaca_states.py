"""fault_alpaca_states: Alpaca's order lifecycle and refusals as a trader sees them (issue 23).

Production shape (TW_SIM_ENABLED=0, TW_BROKER=alpaca), both Alpaca APIs pointed at the
AlpacaStub in this process, one user with a stored paper key:

- CancelOrder that loses the race with a fill (the DELETE answers 422 "not cancelable") returns
  the FILLED order, its fill applied once (position and ORDER_FILL event), not UNAVAILABLE;
- a 403 "insufficient buying power" on submit is a REJECTED order whose status_message and
  ORDER_REJECT audit event carry the broker's reason, never the secret;
- "replaced" keeps the order open and follows replaced_by (the replacement has its own client
  order id at Alpaca): its fill completes our order; an ORDER_REPLACE event names both ids;
- "done_for_day" keeps the order open and polled: a fill the next day is still read;
- a stale latest trade is never a reference price: the opening order is REJECTED NO_QUOTE and
  the violation says the trade was stale;
- Alpaca's documented order rules are refused locally with INVALID_ARGUMENT naming the field,
  nothing sent: fractional GTC, crypto DAY;
- a crypto pair is priced from the crypto endpoint and the broker's BTCUSD position marks our
  BTC/USD position;
- a submit answered 429 is sent again after X-Ratelimit-Reset; still limited, it is REJECTED
  at once with a status_message saying nothing was placed (never a silent reject);
- the caller's W3C traceparent reaches Alpaca: every request made for a SubmitOrder or a
  CancelOrder carries the caller's trace id with the server span (in the ORDER_ENTRY and
  ORDER_CANCEL events) as its parent; the reconciler's polling carries none (issue 21).
"""

import json
import time
import unittest
from decimal import Decimal

import grpc

from faultlib import (MARKET, AlpacaStub, Api, TwServer, add_alpaca_key, audit, common,
                      list_events, status_name, submit, wait_until)

KEY_ID, SECRET = "AKSTATES00000001", "states-secret-Qw83nVx1Lp0sZr7y"
R = common.RiskRule
GTC = common.TIME_IN_FORCE_GTC


def rules(o):
    return sorted(R.Name(v.code) for v in o.violations)


class AlpacaStatesTest(unittest.TestCase):
    def setUp(self):
        self.stub = AlpacaStub().start()
        self.stub.trades.update({"AAPL": "100.00", "MSFT": "400", "BTC/USD": "43210.5"})
        env = dict(self.stub.env(), TW_SIM_ENABLED="0", TW_BROKER="alpaca")
        self.srv = TwServer(env=env)
        self.srv.start()
        self.api = Api(self.srv.addr)
        self.tok = self.api.token("states-alice")
        add_alpaca_key(self.api, self.tok, KEY_ID, SECRET)

    def tearDown(self):
        self.api.close()
        try:
            self.srv.stop_and_check(self)  # exit 0, no sanitizer report (asan build)
        finally:
            self.srv.cleanup()
            self.stub.stop()

    def get(self, oid):
        return self.api.call("Orders", "GetOrder", token=self.tok, order_id=oid).order

    def wait_status(self, oid, want, timeout=25):
        ok = wait_until(lambda: status_name(self.get(oid).status) == want, timeout, 0.25)
        self.assertTrue(ok, "order %s never became %s: %s" % (oid, want, self.get(oid)))

    def events(self, oid, action):
        return [e for e in list_events(self.api, self.tok)
                if e.object_id == oid and common_action(e) == action]

    def test_cancel_that_loses_to_a_fill_returns_the_filled_order(self):
        o = submit(self.api, self.tok, "st-race", symbol="AAPL", qty="3", limit="100.00")
        self.assertEqual(status_name(o.status), "ACCEPTED", str(o))
        self.stub.fill_on_cancel.add("tw-" + o.id)
        r = self.api.call("Orders", "CancelOrder", token=self.tok, order_id=o.id).order
        self.assertEqual(status_name(r.status), "FILLED", str(r))
        self.assertEqual(Decimal(r.filled_qty), Decimal("3"))
        self.assertEqual(Decimal(r.avg_fill_price), Decimal("100"))
        self.assertEqual(len(self.stub.deletes), 1)
        pos = {p.symbol: p for p in
               self.api.call("Orders", "ListPositions", token=self.tok).positions}
        self.assertEqual(Decimal(pos["AAPL"].qty), Decimal("3"))
        self.assertEqual(len(self.events(o.id, "ORDER_FILL")), 1)
        self.assertEqual(self.events(o.id, "ORDER_CANCEL"), [])
        # Asking again changes nothing: already final.
        with self.assertRaises(grpc.RpcError) as cm:
            self.api.call("Orders", "CancelOrder", token=self.tok, order_id=o.id)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertEqual(len(self.events(o.id, "ORDER_FILL")), 1)

    def test_the_callers_trace_reaches_the_broker(self):
        trace, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
        md = (("traceparent", "00-%s-%s-01" % (trace, parent)),)
        o = self.api.call("Orders", "SubmitOrder", token=self.tok, metadata=md,
                          client_order_id="st-trace", symbol="AAPL", side=common.ORDER_SIDE_BUY,
                          type=common.ORDER_TYPE_LIMIT, qty="1", limit_price="99.00",
                          time_in_force=common.TIME_IN_FORCE_DAY,
                          origin=common.ORDER_ORIGIN_USER).order
        self.assertEqual(status_name(o.status), "ACCEPTED", str(o))
        entry = json.loads(self.events(o.id, "ORDER_ENTRY")[0].details_json)
        self.assertEqual(entry["trace_id"], trace)
        with self.stub.lock:
            seen = list(self.stub.traceparents)
        posts = [tp for m, p, tp in seen if m == "POST" and p == "/v2/orders"]
        self.assertEqual(posts, ["00-%s-%s-01" % (trace, entry["span_id"])], seen)
        # The account and price reads made for the same call carry it too.
        for_call = [tp for _, _, tp in seen if tp and trace in tp]
        self.assertGreaterEqual(len(for_call), 3, seen)  # account, latest trade, POST
        n = len(seen)
        trace2 = "0af7651916cd43dd8448eb211c80319c"
        md2 = (("traceparent", "00-%s-b7ad6b7169203331-00" % trace2),)
        r = self.api.call("Orders", "CancelOrder", token=self.tok, metadata=md2,
                          order_id=o.id).order
        self.assertEqual(status_name(r.status), "CANCELED", str(r))
        cancel = json.loads(self.events(o.id, "ORDER_CANCEL")[0].details_json)
        self.assertEqual(cancel["trace_id"], trace2)
        with self.stub.lock:
            seen = list(self.stub.traceparents)
        deletes = [tp for m, _, tp in seen[n:] if m == "DELETE"]
        self.assertEqual(deletes, ["00-%s-%s-00" % (trace2, cancel["span_id"])], seen[n:])
        # Background polling serves no caller: it sends no traceparent of one.
        self.assertTrue(all(tp is None or trace in tp or trace2 in tp for _, _, tp in seen))

    def test_a_cancel_the_broker_ends_after_the_call_on_another_replica_is_the_callers(self):
        o = submit(self.api, self.tok, "st-later", symbol="AAPL", qty="2", limit="98.00")
        self.assertEqual(status_name(o.status), "ACCEPTED", str(o))
        coid = "tw-" + o.id
        self.stub.cancel_pending.add(coid)
        trace = "5c0ffee0a1b2c3d4e5f60718293a4b5c"
        md = (("traceparent", "00-%s-1122334455667788-01" % trace),)
        r = self.api.call("Orders", "CancelOrder", token=self.tok, metadata=md,
                          order_id=o.id).order
        self.assertEqual(status_name(r.status), "ACCEPTED", str(r))  # pending_cancel at Alpaca
        self.assertEqual(self.stub.orders[coid]["status"], "pending_cancel")
        self.assertEqual(self.events(o.id, "ORDER_CANCEL"), [])
        # The replica that took the call stops; another on the same database finds the cancel.
        a = self.srv
        a.stop_and_check(self)
        self.addCleanup(a.cleanup)
        self.api.close()
        self.srv = TwServer(env=dict(a.env_extra), workdir=a.workdir)
        self.srv.start()
        self.api = Api(self.srv.addr)
        self.stub.set_status(coid, status="canceled")
        self.wait_status(o.id, "CANCELED")
        ev = self.events(o.id, "ORDER_CANCEL")
        self.assertEqual(len(ev), 1, ev)
        self.assertEqual(audit.ActorType.Name(ev[0].actor_type), "ACTOR_TYPE_USER", str(ev[0]))
        self.assertEqual(ev[0].actor_id, "states-alice")
        d = json.loads(ev[0].details_json)
        self.assertEqual(d["trace_id"], trace)
        self.assertEqual(len(d["span_id"]), 16)
        self.assertEqual(len(self.stub.deletes), 1)

    def test_an_expiry_rejection_or_unasked_cancel_found_later_carries_the_submitters_trace(self):
        traces = {}
        for coid, qty, trace in (("st-exp", "1", "6a1b2c3d4e5f60718293a4b5c6d7e8f9"),
                                 ("st-rej", "2", "7b2c3d4e5f60718293a4b5c6d7e8f90a"),
                                 ("st-can", "3", "8c3d4e5f60718293a4b5c6d7e8f90a1b")):
            md = (("traceparent", "00-%s-2233445566778899-01" % trace),)
            o = self.api.call("Orders", "SubmitOrder", token=self.tok, metadata=md,
                              client_order_id=coid, symbol="AAPL", side=common.ORDER_SIDE_BUY,
                              type=common.ORDER_TYPE_LIMIT, qty=qty, limit_price="97.00",
                              time_in_force=common.TIME_IN_FORCE_DAY,
                              origin=common.ORDER_ORIGIN_USER).order
            self.assertEqual(status_name(o.status), "ACCEPTED", str(o))
            traces[o.id] = trace
        (exp, rej, can) = list(traces)
        self.stub.set_status("tw-" + exp, status="expired")
        self.stub.set_status("tw-" + rej, status="rejected")
        self.stub.set_status("tw-" + can, status="canceled")  # nobody here asked for it
        self.wait_status(exp, "EXPIRED")
        self.wait_status(rej, "REJECTED")
        self.wait_status(can, "CANCELED")
        for oid, action in ((exp, "ORDER_EXPIRE"), (rej, "ORDER_REJECT"), (can, "ORDER_CANCEL")):
            ev = self.events(oid, action)
            self.assertEqual(len(ev), 1, ev)
            self.assertEqual((audit.ActorType.Name(ev[0].actor_type), ev[0].actor_id),
                             ("ACTOR_TYPE_SYSTEM", "broker"), str(ev[0]))
            d = json.loads(ev[0].details_json)
            entry = json.loads(self.events(oid, "ORDER_ENTRY")[0].details_json)
            self.assertEqual(d["trace_id"], traces[oid])
            self.assertEqual((d["trace_id"], d["span_id"]), (entry["trace_id"], entry["span_id"]))

    def test_insufficient_buying_power_reason_reaches_the_order_and_the_audit(self):
        self.stub.plan_by_symbol["MSFT"] = ("403", "insufficient buying power")
        o = submit(self.api, self.tok, "st-403", symbol="MSFT", qty="2", limit="400.00")
        self.assertEqual(status_name(o.status), "REJECTED", str(o))
        self.assertIn("insufficient buying power", o.status_message)
        self.assertEqual(self.get(o.id).status_message, o.status_message)  # stored
        self.assertEqual(list(o.violations), [])
        ev = self.events(o.id, "ORDER_REJECT")
        self.assertEqual(len(ev), 1, ev)
        self.assertIn("insufficient buying power", json.loads(ev[0].details_json)["reason"])
        self.assertNotIn(SECRET, o.status_message + ev[0].details_json)
        self.assertNotIn(SECRET, self.srv.stderr_text())

    def test_replaced_follows_replaced_by_and_done_for_day_stays_open(self):
        rep = submit(self.api, self.tok, "st-rep", symbol="AAPL", qty="5", limit="100.00")
        dfd = submit(self.api, self.tok, "st-dfd", symbol="AAPL", qty="4", limit="99.00")
        first = rep.broker_order_id
        new_coid = self.stub.replace("tw-" + rep.id, limit_price="100.5")
        self.stub.set_status("tw-" + dfd.id, status="done_for_day")
        new_id = self.stub.orders[new_coid]["id"]
        # The reconciler reads both (quiet orders, every ~2 s): neither becomes final.
        ok = wait_until(lambda: self.get(rep.id).broker_order_id == new_id, 25, 0.25)
        self.assertTrue(ok, "replacement not followed: %s" % self.get(rep.id))
        self.assertEqual(status_name(self.get(rep.id).status), "ACCEPTED")
        asked = lambda: sum(1 for m, p, _ in self.stub.requests
                            if m == "GET" and ("tw-" + dfd.id in p or
                                               self.stub.orders["tw-" + dfd.id]["id"] in p))
        n = asked()
        self.assertTrue(wait_until(lambda: asked() > n, 25, 0.25), "done_for_day not polled")
        self.assertEqual(status_name(self.get(dfd.id).status), "ACCEPTED")
        ev = self.events(rep.id, "ORDER_REPLACE")
        self.assertEqual(len(ev), 1, ev)
        d = json.loads(ev[0].details_json)
        # First the trace of the SubmitOrder the order came from (kept with the order).
        self.assertEqual(list(d), ["trace_id", "span_id", "broker_order_id", "replaced_by"])
        entry = json.loads(self.events(rep.id, "ORDER_ENTRY")[0].details_json)
        self.assertEqual((d["trace_id"], d["span_id"]), (entry["trace_id"], entry["span_id"]))
        self.assertEqual((d["broker_order_id"], d["replaced_by"]), (first, new_id))
        self.assertEqual(self.events(rep.id, "ORDER_CANCEL"), [])
        # Fills on the replacement and on the next trading day complete our orders.
        self.stub.fill(new_coid, "100.5")
        self.stub.fill("tw-" + dfd.id, "99")
        self.wait_status(rep.id, "FILLED")
        self.wait_status(dfd.id, "FILLED")
        self.assertEqual(Decimal(self.get(rep.id).avg_fill_price), Decimal("100.5"))
        pos = {p.symbol: p for p in
               self.api.call("Orders", "ListPositions", token=self.tok).positions}
        self.assertEqual(Decimal(pos["AAPL"].qty), Decimal("9"))

    def test_submit_answered_429_is_retried_after_the_reset_never_silently_rejected(self):
        self.stub.post_429 = 1
        t0 = time.monotonic()
        o = submit(self.api, self.tok, "st-429", symbol="AAPL", qty="1", limit="100.00")
        self.assertEqual(status_name(o.status), "ACCEPTED", str(o))
        self.assertEqual(self.stub.posts["tw-" + o.id], 2)  # 429, then taken
        self.assertLess(time.monotonic() - t0, 8)
        # Still limited after the reset: REJECTED at once, saying nothing was placed.
        self.stub.post_429 = 2
        r = submit(self.api, self.tok, "st-429b", symbol="AAPL", qty="2", limit="100.00")
        self.assertEqual(status_name(r.status), "REJECTED", str(r))
        self.assertIn("nothing was placed", r.status_message)
        self.assertEqual(self.stub.posts["tw-" + r.id], 2)
        self.assertNotIn("tw-" + r.id, self.stub.orders)

    def test_stale_reference_price_is_refused(self):
        self.stub.trade_times["AAPL"] = time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 10 * 86400))
        posts = sum(self.stub.posts.values())
        o = submit(self.api, self.tok, "st-stale", symbol="AAPL", qty="1", limit="100.00")
        self.assertEqual(status_name(o.status), "REJECTED", str(o))
        self.assertEqual(rules(o), ["RISK_RULE_NO_QUOTE"], str(o))
        self.assertIn("stale", o.violations[0].message)
        self.assertIn("AAPL", o.violations[0].message)
        self.assertEqual(sum(self.stub.posts.values()), posts)
        # A fresh trade prices the same order again.
        del self.stub.trade_times["AAPL"]
        ok = submit(self.api, self.tok, "st-fresh", symbol="AAPL", qty="1", limit="100.00")
        self.assertEqual(status_name(ok.status), "ACCEPTED", str(ok))

    def test_alpaca_rules_are_refused_locally_naming_the_field(self):
        posts = sum(self.stub.posts.values())
        cases = [("st-frac-gtc", "AAPL", "0.5", GTC, "time_in_force: fractional"),
                 ("st-crypto-day", "BTC/USD", "0.01", common.TIME_IN_FORCE_DAY,
                  "time_in_force: crypto")]
        for coid, sym, qty, tif, want in cases:
            with self.assertRaises(grpc.RpcError) as cm:
                self.api.call("Orders", "SubmitOrder", token=self.tok, client_order_id=coid,
                              symbol=sym, side=common.ORDER_SIDE_BUY, type=MARKET, qty=qty,
                              time_in_force=tif, origin=common.ORDER_ORIGIN_USER)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT, coid)
            self.assertTrue(cm.exception.details().startswith(want), cm.exception.details())
        self.assertEqual(sum(self.stub.posts.values()), posts)

    def test_crypto_priced_from_its_endpoint_and_marked_from_the_btcusd_position(self):
        o = self.api.call("Orders", "SubmitOrder", token=self.tok, client_order_id="st-btc",
                          symbol="BTC/USD", side=common.ORDER_SIDE_BUY, type=MARKET,
                          qty="0.01", time_in_force=GTC, origin=common.ORDER_ORIGIN_USER).order
        self.assertEqual(status_name(o.status), "ACCEPTED", str(o))
        self.assertIn(("BTC/USD", "symbols=BTC%2FUSD", KEY_ID), self.stub.trade_requests)
        self.stub.fill("tw-" + o.id, "43210.5")
        self.wait_status(o.id, "FILLED")
        self.stub.positions = [{"symbol": "BTCUSD", "asset_class": "crypto", "qty": "0.01",
                                "side": "long", "avg_entry_price": "43210.5",
                                "current_price": "44000"}]
        pos = {p.symbol: p for p in
               self.api.call("Orders", "ListPositions", token=self.tok).positions}
        self.assertEqual(Decimal(pos["BTC/USD"].current_price), Decimal("44000"))


def common_action(e):
    return audit.AuditAction.Name(e.action).replace("AUDIT_ACTION_", "")


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""Every audit action is produced by the call that should produce it, and a change whose audit
event cannot be written does not happen (fail-closed)."""

import base64
import json
import os
import sqlite3
import time
import unittest
import urllib.request

import grpc
from google.protobuf import duration_pb2, timestamp_pb2, wrappers_pb2

from twapi import Api, audit, code_of, common, sim
from twserver import TwServer

MONDAY_10AM = 1796050800
BUY, SELL = common.ORDER_SIDE_BUY, common.ORDER_SIDE_SELL
MARKET, LIMIT = common.ORDER_TYPE_MARKET, common.ORDER_TYPE_LIMIT
REQ = dict(time_in_force=common.TIME_IN_FORCE_DAY, origin=common.ORDER_ORIGIN_USER)
SECRET = base64.b64encode(b"w" * 32).decode()


def names(events):
    return [audit.AuditAction.Name(e.action).replace("AUDIT_ACTION_", "") for e in events]


class Scenario:
    def __init__(self, srv):
        self.api = Api(srv.addr)
        self.tok = self.api.token("actor")
        self.adm = self.api.token("ops", admin=True)
        self.admin("Sim", "SetClock", time=timestamp_pb2.Timestamp(seconds=MONDAY_10AM))
        self.quote("100")

    def call(self, svc, m, **kw):
        return self.api.call(svc, m, token=self.tok, **kw)

    def admin(self, svc, m, **kw):
        return self.api.call(svc, m, token=self.adm, **kw)

    def quote(self, last, sym="AAPL"):
        self.admin("Sim", "SetQuotes", quotes=[sim.Quote(symbol=sym, bid=last, ask=last,
                                                         last=last)])

    def order(self, coid, side, qty, type_=MARKET, limit="", **kw):
        return self.call("Orders", "SubmitOrder", client_order_id=coid, symbol="AAPL",
                         side=side, type=type_, qty=qty, limit_price=limit,
                         **dict(REQ, **kw)).order

    def events(self, token=None):
        """The chain in the order the calls were made (ListEvents answers newest first)."""
        return list(reversed(self.api.call("Audit", "ListEvents", token=token or self.tok,
                                           page_size=500).events))


class ActionsTest(unittest.TestCase):
    def test_each_action_comes_from_its_call(self):
        env = {"TW_WEBHOOK_SECRETS": "broker:whsec_" + SECRET}
        with TwServer(env=env) as srv:
            s = Scenario(srv)
            seen = lambda: names(s.events())  # noqa: E731
            k = s.call("KeyVault", "PutBrokerKey", broker="sim",
                       environment=common.TRADING_MODE_PAPER, key_id="PKACTIONS000001",
                       secret="actions-secret").key
            self.assertEqual(seen()[-1], "KEY_ADD")
            s.call("KeyVault", "TestBrokerKey", broker_key_id=k.id)
            self.assertEqual(seen()[-1], "KEY_TEST")
            s.admin("KeyVault", "RewrapKeys")
            self.assertEqual(names(s.events(s.adm))[-1], "KEY_REWRAP")
            s.call("Risk", "SetLimits", max_open_positions=wrappers_pb2.Int32Value(value=8))
            self.assertEqual(seen()[-1], "LIMITS_CHANGE")
            s.call("Orders", "UpdateAccountSettings",
                   autonomous_mode=wrappers_pb2.BoolValue(value=True))
            self.assertEqual(seen()[-1], "AUTONOMOUS_CHANGE")
            s.call("Orders", "UpdateAccountSettings",
                   autonomous_mode=wrappers_pb2.BoolValue(value=False))
            # Entry, fill, exit.
            o = s.order("buy1", BUY, "5")
            self.assertIn("ORDER_ENTRY", seen())
            self.assertIn("ORDER_FILL", seen())
            x = s.order("sell1", SELL, "5")
            self.assertIn("ORDER_EXIT", seen())
            # Reject (risk), cancel (resting limit), partial fill and fill (broker webhook).
            r = s.order("big", BUY, "500")
            self.assertEqual(seen()[-1], "ORDER_REJECT")
            lim = s.order("lim", BUY, "4", type_=LIMIT, limit="90")
            s.call("Orders", "CancelOrder", order_id=lim.id)
            self.assertEqual(seen()[-1], "ORDER_CANCEL")
            lim2 = s.order("lim2", BUY, "4", type_=LIMIT, limit="90")
            body = json.dumps({"event": "partial_fill",
                               "order": {"client_order_id": "tw-" + lim2.id, "filled_qty": "1",
                                         "filled_avg_price": "90"}}).encode()
            ts = int(time.time())
            import hashlib
            import hmac
            mac = hmac.new(base64.b64decode(SECRET), b"p1.%d." % ts + body, hashlib.sha256)
            req = urllib.request.Request(
                "http://127.0.0.1:%d/webhooks/broker" % srv.listening["ops_port"], data=body,
                headers={"webhook-id": "p1", "webhook-timestamp": str(ts),
                         "webhook-signature": "v1," + base64.b64encode(mac.digest()).decode()})
            self.assertEqual(urllib.request.urlopen(req, timeout=10).status, 200)
            self.assertEqual(seen()[-1], "ORDER_PARTIAL_FILL")
            # Confirm and expire (automation orders).
            a1 = s.order("auto1", BUY, "1", origin=common.ORDER_ORIGIN_AUTOMATION)
            s.call("Orders", "ConfirmOrder", order_id=a1.id)
            self.assertIn("ORDER_CONFIRM", seen())
            a2 = s.order("auto2", BUY, "2", origin=common.ORDER_ORIGIN_AUTOMATION)
            s.admin("Sim", "AdvanceClock", duration=duration_pb2.Duration(seconds=900))
            self.assertEqual(code_of(s.call, "Orders", "ConfirmOrder", order_id=a2.id),
                             grpc.StatusCode.FAILED_PRECONDITION)
            self.assertEqual(seen()[-1], "ORDER_EXPIRE")
            # Halt / resume, admin kill switch, role failure.
            s.call("Risk", "Halt", reason="lunch")
            self.assertEqual(seen()[-1], "HALT")
            s.call("Risk", "Resume")
            self.assertEqual(seen()[-1], "RESUME")
            s.admin("Risk", "HaltAll", reason="incident")
            s.admin("Risk", "ResumeAll")
            self.assertEqual(names(s.events(s.adm))[-2:], ["HALT_ALL", "RESUME_ALL"])
            self.assertEqual(code_of(s.call, "Risk", "HaltAll", reason="x"),
                             grpc.StatusCode.PERMISSION_DENIED)
            self.assertEqual(seen()[-1], "AUTH_DENIED")
            # Mode change needs a live key.
            s.call("KeyVault", "PutBrokerKey", broker="alpaca",
                   environment=common.TRADING_MODE_LIVE, key_id="AKLIVE0000000001",
                   secret="live-secret")
            s.call("Orders", "UpdateAccountSettings", trading_mode=common.TRADING_MODE_LIVE,
                   confirm_live=True)
            self.assertEqual(seen()[-1], "MODE_CHANGE")
            s.call("KeyVault", "DeleteBrokerKey", broker_key_id=k.id)
            self.assertEqual(seen()[-1], "KEY_DELETE")
            # Breaker trip: a loss over 2 % of start-of-day equity.
            s.call("Orders", "UpdateAccountSettings", trading_mode=common.TRADING_MODE_PAPER)
            s.order("big2", BUY, "90")
            s.quote("70")
            s.order("after", BUY, "1")
            self.assertIn("BREAKER_TRIP", seen())
            all_actions = set(seen()) | set(names(s.events(s.adm)))
            # The sim never replaces an order: ORDER_REPLACE is produced against the Alpaca
            # stub (tests/fault/test_alpaca_states.py); POSITION_DRIFT needs a real broker's
            # positions to disagree (tests/fault/test_alpaca_marks.py).
            want = {n.replace("AUDIT_ACTION_", "") for n in audit.AuditAction.keys()} - {
                "UNSPECIFIED", "ORDER_REPLACE", "POSITION_DRIFT"}
            self.assertEqual(want - all_actions, set())
            self.assertTrue(s.call("Audit", "VerifyChain").ok)
            self.assertNotIn("actions-secret", str(s.events()))
            s.api.close()
            srv.stop_and_check(self)


class FailClosedTest(unittest.TestCase):
    def test_no_change_without_its_audit_event(self):
        with TwServer() as srv:
            s = Scenario(srv)
            before_limits = s.call("Risk", "GetLimits").limits
            import twserver
            if twserver.backend_url():
                twserver.db_sql(srv.workdir,
                                "CREATE FUNCTION audit_down() RETURNS trigger AS $$ BEGIN "
                                "RAISE EXCEPTION 'audit store down'; END $$ LANGUAGE plpgsql;"
                                "CREATE TRIGGER audit_down BEFORE INSERT ON audit_events "
                                "FOR EACH ROW EXECUTE FUNCTION audit_down();")
            else:
                twserver.db_sql(srv.workdir, "CREATE TRIGGER audit_down BEFORE INSERT ON "
                                             "audit_events BEGIN SELECT RAISE(ABORT, "
                                             "'audit store down'); END;")
            U = grpc.StatusCode.UNAVAILABLE
            self.assertEqual(code_of(s.call, "KeyVault", "PutBrokerKey", broker="sim",
                                     environment=common.TRADING_MODE_PAPER,
                                     key_id="PKFAILCLOSED0001", secret="fc-secret"), U)
            self.assertEqual(len(s.call("KeyVault", "ListBrokerKeys").keys), 0)
            self.assertEqual(code_of(s.call, "Risk", "SetLimits",
                                     max_open_positions=wrappers_pb2.Int32Value(value=3)), U)
            self.assertEqual(s.call("Risk", "GetLimits").limits.max_open_positions,
                             before_limits.max_open_positions)
            self.assertEqual(code_of(s.order, "fc1", BUY, "1"), U)
            self.assertEqual(len(s.call("Orders", "ListOrders").orders), 0)
            self.assertEqual(len(s.call("Orders", "ListPositions").positions), 0)
            self.assertEqual(code_of(s.call, "Orders", "UpdateAccountSettings",
                                     autonomous_mode=wrappers_pb2.BoolValue(value=True)), U)
            self.assertFalse(s.call("Orders", "GetAccountSettings").settings.autonomous_mode)
            self.assertEqual(code_of(s.call, "Risk", "Halt", reason="x"), U)
            from twapi import risk
            self.assertEqual(s.call("Risk", "GetState").state.trading_state,
                             risk.TRADING_STATE_ACTIVE)
            s.api.close()
            srv.stop_and_check(self)


if __name__ == "__main__":
    unittest.main()

"""Risk conformance: every rule risk.proto's comments state, in tables, so code that drifts from
its contract fails here: per limit, its ranges for users and admins and who may switch it off
(0), the refusal rules of SetLimits, halts and their reasons, and the dry run."""

import json
import unittest

import grpc
from google.protobuf import timestamp_pb2, wrappers_pb2

from twapi import Api, audit, common, risk, sim
from twserver import TwServer

# Monday 2026-11-30 15:00 UTC = 10:00 New York, a trading day.
MONDAY_10AM = 1796050800
HALTED, ACTIVE = risk.TRADING_STATE_HALTED, risk.TRADING_STATE_ACTIVE
A = audit.AuditAction


def status(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details() or ""


def wrap(field, value):
    if isinstance(value, bool):
        return {field: wrappers_pb2.BoolValue(value=value)}
    if isinstance(value, int):
        return {field: wrappers_pb2.Int32Value(value=value)}
    return {field: wrappers_pb2.StringValue(value=value)}


# Each limit as risk.proto states it: default, user range (min, max), any-caller maximum, and
# values just outside. A user's minimum above 0 means "only an admin may switch it off".
LIMITS = [
    # field, default, user_min, user_max, hard_max, above_user, above_hard
    ("daily_loss_pct", "2", "0.01", "20", "100", "20.01", "100.01"),
    ("daily_loss_abs", "0", "0", "1000000000000", "1000000000000", None, "1000000000000.01"),
    ("max_drawdown_pct", "5", "0.01", "50", "100", "50.01", "100.01"),
    ("max_open_positions", 10, 1, 100, 512, 101, 513),
    ("max_sector_pct", "25", "0.01", "100", "100", None, "100.01"),
    ("max_order_notional_pct", "10", "0.01", "100", "100", None, "100.01"),
    ("price_collar_pct", "10", "0.01", "50", "1000", "50.01", "1000.01"),
    ("duplicate_window_seconds", 5, 1, 3600, 86400, 3601, 86401),
    ("max_orders_per_second", 5, 1, 100, 1000000, 101, 1000001),
]
ZERO = {str: "0", int: 0}


class RiskConformanceTest(unittest.TestCase):
    def setUp(self):
        self.srv = TwServer().start()
        self.api = Api(self.srv.addr)
        self.admin = self.api.token("ops", admin=True)
        self.alice = self.api.token("alice")
        self.aid = self.uid(self.alice)

    def tearDown(self):
        self.api.close()
        self.srv.stop_and_check(self)
        self.srv.cleanup()

    def r(self, method, token=None, **kw):
        return self.api.call("Risk", method, token=token or self.alice, **kw)

    def uid(self, tok):
        return self.api.call("Risk", "GetState", token=tok).state.user_id

    def limit(self, field, token=None, **kw):
        return getattr(self.r("GetLimits", token, **kw).limits, field)

    def changes(self):
        return [e for e in self.api.call("Audit", "ListEvents", token=self.alice,
                                         page_size=500).events
                if e.action == A.Value("AUDIT_ACTION_LIMITS_CHANGE")]

    def refused(self, token, field, value, **kw):
        code, details = status(self.r, "SetLimits", token, **dict(wrap(field, value), **kw))
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, (field, value))
        self.assertIn(field, details)

    # ---- per limit: defaults, ranges, who may switch it off ----------------------------------
    def test_defaults(self):
        lim = self.r("GetLimits").limits
        for field, default, *_ in LIMITS:
            with self.subTest(field):
                self.assertEqual(getattr(lim, field), default)
        self.assertTrue(lim.pdt_enabled)
        self.assertFalse(lim.HasField("updated_at"))

    def test_user_range_per_limit(self):
        for field, default, umin, umax, hard, above_user, above_hard in LIMITS:
            with self.subTest(field):
                zero = ZERO[type(default)]
                # 0 = off: users only where the contract allows it (daily_loss_abs alone).
                if umin in ("0", 0):
                    self.assertEqual(getattr(self.r("SetLimits", **wrap(field, zero)).limits,
                                             field), zero)
                else:
                    self.refused(self.alice, field, zero)
                    self.assertEqual(self.limit(field), default)
                for v in (umin, umax):
                    self.assertEqual(getattr(self.r("SetLimits", **wrap(field, v)).limits,
                                             field), v)
                if above_user is not None:
                    self.refused(self.alice, field, above_user)
                self.refused(self.alice, field, above_hard)
                self.assertEqual(self.limit(field), umax)
        self.refused(self.alice, "pdt_enabled", False)
        self.assertTrue(self.r("SetLimits", **wrap("pdt_enabled", True)).limits.pdt_enabled)

    def test_admin_range_per_limit_includes_off(self):
        for field, default, umin, umax, hard, above_user, above_hard in LIMITS:
            with self.subTest(field):
                zero = ZERO[type(default)]
                for v in (zero, hard):
                    got = self.r("SetLimits", self.admin, user_id=self.aid, **wrap(field, v))
                    self.assertEqual(getattr(got.limits, field), v)
                    self.assertEqual(self.limit(field), v)  # the user sees it
                self.refused(self.admin, field, above_hard, user_id=self.aid)
                self.r("SetLimits", self.admin, user_id=self.aid, **wrap(field, zero))
        lim = self.r("SetLimits", self.admin, user_id=self.aid,
                     **wrap("pdt_enabled", False)).limits
        self.assertFalse(lim.pdt_enabled)
        # A user keeps an admin's looser value while changing another field...
        self.r("SetLimits", **wrap("max_sector_pct", "30"))
        self.assertEqual(self.limit("daily_loss_pct"), "0")
        # ... but cannot send it themselves.
        self.refused(self.alice, "daily_loss_pct", "0")
        # The admin's changes are in the user's chain, by the admin.
        by_admin = [e for e in self.changes() if e.actor_type == audit.ACTOR_TYPE_ADMIN]
        self.assertTrue(by_admin)
        self.assertEqual({e.actor_id for e in by_admin}, {"ops"})

    def test_an_admins_zero_switches_the_check_off(self):
        adm = self.admin
        self.api.call("Sim", "SetClock", token=adm,
                      time=timestamp_pb2.Timestamp(seconds=MONDAY_10AM))
        self.api.call("Sim", "SetQuotes", token=adm, quotes=[
            sim.Quote(symbol="AAPL", bid="100", ask="100", last="100")])
        big = dict(client_order_id="big", symbol="AAPL", side=common.ORDER_SIDE_BUY,
                   type=common.ORDER_TYPE_MARKET, qty="200",
                   time_in_force=common.TIME_IN_FORCE_DAY, origin=common.ORDER_ORIGIN_USER)
        r = self.r("CheckOrder", **big)
        self.assertEqual([common.RiskRule.Name(v.code) for v in r.violations],
                         ["RISK_RULE_MAX_NOTIONAL"])
        self.r("SetLimits", adm, user_id=self.aid, **wrap("max_order_notional_pct", "0"))
        self.assertTrue(self.r("CheckOrder", **big).allowed)

    # ---- SetLimits request rules -------------------------------------------------------------
    MALFORMED = [
        ("daily_loss_pct", "abc"), ("daily_loss_pct", ""), ("daily_loss_pct", "-1"),
        ("daily_loss_pct", "2.555"), ("daily_loss_pct", "1e1"), ("daily_loss_pct", "+2"),
        ("daily_loss_abs", "-5"), ("daily_loss_abs", "1.0000001"),
        ("max_drawdown_pct", "-0.01"), ("max_open_positions", -1),
        ("duplicate_window_seconds", -1), ("max_orders_per_second", -1),
    ]

    def test_malformed_values_are_refused_for_both_roles_and_change_nothing(self):
        for who, tok, kw in (("user", self.alice, {}), ("admin", self.admin,
                                                         dict(user_id=self.aid))):
            for field, value in self.MALFORMED:
                with self.subTest(who=who, field=field, value=value):
                    self.refused(tok, field, value, **kw)
        # Every bad field is named, and the good one beside them is not applied.
        code, details = status(self.r, "SetLimits", **dict(
            wrap("max_sector_pct", "30"), **wrap("daily_loss_pct", "x"),
            **wrap("max_open_positions", -3)))
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("daily_loss_pct", details)
        self.assertIn("max_open_positions", details)
        self.assertEqual(self.limit("max_sector_pct"), "25")
        self.assertEqual(self.changes(), [])

    def test_change_is_audited_empty_update_is_not(self):
        r = self.r("SetLimits", **wrap("daily_loss_pct", "3")).limits
        self.assertTrue(r.HasField("updated_at"))
        self.r("SetLimits")
        ch = self.changes()
        self.assertEqual(len(ch), 1)
        d = json.loads(ch[0].details_json)
        self.assertEqual((d["old"], d["new"]), ({"daily_loss_pct": "2"}, {"daily_loss_pct": "3"}))
        self.assertEqual((ch[0].actor_type, ch[0].actor_id), (audit.ACTOR_TYPE_USER, "alice"))

    def test_another_users_limits_and_state_need_the_admin_role(self):
        bob = self.api.token("bob")
        for m, kw in (("GetLimits", {}), ("SetLimits", wrap("daily_loss_pct", "1")),
                      ("GetState", {})):
            with self.subTest(m):
                self.assertEqual(status(self.r, m, bob, user_id=self.aid, **kw)[0],
                                 grpc.StatusCode.PERMISSION_DENIED)
                self.assertEqual(status(self.r, m, self.admin, user_id=self.aid, **kw)[0],
                                 grpc.StatusCode.OK)
        self.assertEqual(self.limit("daily_loss_pct"), "1")  # only the admin's change
        self.assertEqual(status(self.r, "GetLimits", self.admin, user_id="987654")[0],
                         grpc.StatusCode.NOT_FOUND)

    # ---- Halt / Resume / HaltAll / ResumeAll -------------------------------------------------
    REASONS_REFUSED = [("empty", ""), ("blank", "   "), ("257 ASCII characters", "r" * 257),
                       ("129 two-byte characters (258 bytes)", "\u00e9" * 129)]
    REASONS_ACCEPTED = [("256 ASCII characters", "r" * 256, "r" * 256),
                        ("128 two-byte characters (256 bytes)", "\u00e9" * 128, "\u00e9" * 128),
                        ("control characters kept as spaces", "a\nb\tc", "a b c")]

    def test_halt_reasons(self):
        for name, reason in self.REASONS_REFUSED:
            with self.subTest(name):
                code, details = status(self.r, "Halt", reason=reason)
                self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
                self.assertIn("reason", details)
                code, details = status(self.r, "HaltAll", self.admin, reason=reason)
                self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(self.r("GetState").state.trading_state, ACTIVE)
        for name, reason, shown in self.REASONS_ACCEPTED:
            with self.subTest(name):
                st = self.r("Halt", reason=reason).state
                self.assertEqual(st.trading_state, HALTED)
                self.assertIn(shown, st.halt_reason)
                self.assertEqual(self.r("Resume").state.trading_state, ACTIVE)

    def test_global_halt_is_admin_only_and_blocks_resume(self):
        self.assertEqual(status(self.r, "HaltAll", reason="x")[0],
                         grpc.StatusCode.PERMISSION_DENIED)
        self.assertEqual(status(self.r, "ResumeAll")[0], grpc.StatusCode.PERMISSION_DENIED)
        self.assertTrue(self.r("HaltAll", self.admin, reason="incident").HasField("halted_at"))
        st = self.r("GetState").state
        self.assertEqual((st.trading_state, st.global_halt), (HALTED, True))
        self.assertIn("incident", st.halt_reason)
        self.r("Halt", reason="mine")
        self.assertEqual(status(self.r, "Resume")[0], grpc.StatusCode.FAILED_PRECONDITION)
        self.assertTrue(self.r("ResumeAll", self.admin).HasField("resumed_at"))
        # Per-user halts stay after ResumeAll.
        st = self.r("GetState").state
        self.assertEqual((st.trading_state, st.global_halt), (HALTED, False))
        self.assertEqual(self.r("Resume").state.trading_state, ACTIVE)

    # ---- CheckOrder is a dry run -------------------------------------------------------------
    def test_check_order_creates_counts_and_audits_nothing(self):
        adm = self.admin
        self.api.call("Sim", "SetClock", token=adm,
                      time=timestamp_pb2.Timestamp(seconds=MONDAY_10AM))
        self.api.call("Sim", "SetQuotes", token=adm, quotes=[
            sim.Quote(symbol="AAPL", bid="100", ask="100", last="100")])
        self.r("SetLimits", **wrap("max_orders_per_second", 1))
        o = dict(symbol="AAPL", side=common.ORDER_SIDE_BUY, type=common.ORDER_TYPE_MARKET,
                 qty="1", time_in_force=common.TIME_IN_FORCE_DAY,
                 origin=common.ORDER_ORIGIN_USER)
        before = len(self.api.call("Audit", "ListEvents", token=self.alice,
                                   page_size=500).events)
        for _ in range(3):  # neither the rate nor the duplicate check counts a dry run
            r = self.r("CheckOrder", **o)
            self.assertTrue(r.allowed, str(r.violations))
        self.assertEqual(len(self.api.call("Audit", "ListEvents", token=self.alice,
                                           page_size=500).events), before)
        self.assertEqual(len(self.api.call("Orders", "ListOrders", token=self.alice).orders), 0)
        sub = self.api.call("Orders", "SubmitOrder", token=self.alice, client_order_id="real",
                            **o).order
        self.assertEqual(common.RiskRule.Name(sub.violations[0].code) if sub.violations
                         else "", "")


if __name__ == "__main__":
    unittest.main()

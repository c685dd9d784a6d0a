"""Risk through the gRPC API: limits (defaults, partial updates, validation naming the field,
user bounds vs admin, isolation between users), the user kill switch (Halt/Resume, refused
during a global halt or a tripped breaker) and the admin global kill switch, each change
checked against its audit event."""

import json
import os
import unittest

import grpc
from google.protobuf import wrappers_pb2

from twapi import Api, audit, code_of, risk
from twserver import TwServer

S = wrappers_pb2.StringValue
I = wrappers_pb2.Int32Value
B = wrappers_pb2.BoolValue
HALTED = risk.TRADING_STATE_HALTED
ACTIVE = risk.TRADING_STATE_ACTIVE
FAR_FUTURE_US = 4102444800 * 1000000  # 2100-01-01

DEFAULTS = dict(daily_loss_pct="2", daily_loss_abs="0", max_drawdown_pct="5",
                max_open_positions=10, max_sector_pct="25", max_order_notional_pct="10",
                price_collar_pct="10", duplicate_window_seconds=5, max_orders_per_second=5,
                pdt_enabled=True)


def limits_dict(lim):
    return {k: getattr(lim, k) for k in DEFAULTS}


def wrap(**fields):
    """SetLimits keyword arguments with each value in its wrapper type."""
    out = {}
    for k, v in fields.items():
        if isinstance(v, bool):
            out[k] = B(value=v)
        elif isinstance(v, int):
            out[k] = I(value=v)
        else:
            out[k] = S(value=v)
    return out


def actions(events):
    return [audit.AuditAction.Name(e.action) for e in events]


def rpc_error(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except grpc.RpcError as e:
        return e
    raise AssertionError("call succeeded")


class RiskTest(unittest.TestCase):
    def setUp(self):
        self.srv = TwServer().start()
        self.api = Api(self.srv.addr)

    def tearDown(self):
        self.api.close()
        self.srv.stop_and_check(self)
        self.srv.cleanup()

    def call(self, method, token, **fields):
        return self.api.call("Risk", method, token=token, **fields)

    def events(self, token, **filters):
        return list(self.api.call("Audit", "ListEvents", token=token, page_size=500,
                                  **filters).events)

    def uid(self, token):
        """The caller's numeric user id (from a Resume reply; Resume of an active user is a
        no-op apart from its audit event)."""
        return self.call("Resume", token).state.user_id

    # ---- limits ----------------------------------------------------------------------------

    def test_defaults_then_partial_updates_leave_other_fields_unchanged(self):
        alice = self.api.token("alice")
        lim = self.call("GetLimits", alice).limits
        self.assertEqual(limits_dict(lim), DEFAULTS)
        self.assertFalse(lim.HasField("updated_at"))
        r = self.call("SetLimits", alice, **wrap(daily_loss_pct="2.5")).limits
        want = dict(DEFAULTS, daily_loss_pct="2.5")
        self.assertEqual(limits_dict(r), want)
        self.assertTrue(r.HasField("updated_at"))
        self.assertEqual(limits_dict(self.call("GetLimits", alice).limits), want)
        r = self.call("SetLimits", alice, **wrap(max_open_positions=20, price_collar_pct="7.25",
                                                 daily_loss_abs="1500.50")).limits
        want.update(max_open_positions=20, price_collar_pct="7.25", daily_loss_abs="1500.5")
        self.assertEqual(limits_dict(r), want)
        self.assertEqual(limits_dict(self.call("GetLimits", alice).limits), want)
        # An empty update changes nothing and is not audited.
        self.assertEqual(limits_dict(self.call("SetLimits", alice).limits), want)
        ev = self.events(alice, action=audit.AUDIT_ACTION_LIMITS_CHANGE)
        self.assertEqual(len(ev), 2)
        first = min(ev, key=lambda e: e.sequence)
        d = json.loads(first.details_json)
        self.assertEqual(d["old"], {"daily_loss_pct": "2"})
        self.assertEqual(d["new"], {"daily_loss_pct": "2.5"})
        self.assertTrue(d["was_default"])
        last = max(ev, key=lambda e: e.sequence)
        d = json.loads(last.details_json)
        self.assertEqual(d["old"], {"max_open_positions": 10, "price_collar_pct": "10",
                                    "daily_loss_abs": "0"})
        self.assertEqual(d["new"], {"max_open_positions": 20, "price_collar_pct": "7.25",
                                    "daily_loss_abs": "1500.5"})
        self.assertFalse(d["was_default"])
        self.assertEqual(last.actor_type, audit.ACTOR_TYPE_USER)
        # Bob is untouched by Alice's changes.
        bob = self.api.token("bob")
        self.assertEqual(limits_dict(self.call("GetLimits", bob).limits), DEFAULTS)

    def test_every_invalid_value_is_refused_naming_the_field_and_nothing_changes(self):
        alice = self.api.token("alice")
        admin = self.api.token("ops", admin=True)
        bad = [
            ("daily_loss_pct", "abc"), ("daily_loss_pct", ""), ("daily_loss_pct", "-1"),
            ("daily_loss_pct", "2.555"), ("daily_loss_pct", "1e2"), ("daily_loss_pct", " 2"),
            ("daily_loss_pct", "2."), ("daily_loss_pct", ".5"), ("daily_loss_pct", "+2"),
            ("daily_loss_pct", "100.01"), ("daily_loss_pct", "NaN"),
            ("daily_loss_abs", "-5"), ("daily_loss_abs", "1.0000001"), ("daily_loss_abs", "x"),
            ("daily_loss_abs", "1000000000000.01"),
            ("max_drawdown_pct", "100.01"), ("max_drawdown_pct", "-0.01"),
            ("max_open_positions", -1), ("max_open_positions", 513),
            ("max_sector_pct", "100.01"), ("max_order_notional_pct", "250"),
            ("price_collar_pct", "1000.01"),
            ("duplicate_window_seconds", -1), ("duplicate_window_seconds", 86401),
            ("max_orders_per_second", -1), ("max_orders_per_second", 1000001),
        ]
        for who, tok in (("user", alice), ("admin", admin)):
            for field, value in bad:
                with self.subTest(who=who, field=field, value=value):
                    e = rpc_error(self.call, "SetLimits", tok, **wrap(**{field: value}))
                    self.assertEqual(e.code(), grpc.StatusCode.INVALID_ARGUMENT)
                    self.assertIn(field, e.details())
        # One good and two bad fields: both bad ones are named, the good one is not applied.
        e = rpc_error(self.call, "SetLimits", alice,
                      **wrap(max_sector_pct="30", daily_loss_pct="x", max_open_positions=-3))
        self.assertEqual(e.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("daily_loss_pct", e.details())
        self.assertIn("max_open_positions", e.details())
        self.assertNotIn("max_sector_pct", e.details())
        for tok in (alice, admin):
            self.assertEqual(limits_dict(self.call("GetLimits", tok).limits), DEFAULTS)
            self.assertEqual(self.events(tok, action=audit.AUDIT_ACTION_LIMITS_CHANGE), [])

    def test_user_cannot_exceed_admin_bounds_but_admin_can_set_any_user_within_hard_limits(self):
        alice = self.api.token("alice")
        admin = self.api.token("ops", admin=True)
        above_user_bounds = [
            ("daily_loss_pct", "20.01"), ("daily_loss_pct", "0"),
            ("max_drawdown_pct", "50.01"), ("max_drawdown_pct", "0"),
            ("max_open_positions", 101), ("max_open_positions", 0),
            ("max_sector_pct", "0"), ("max_order_notional_pct", "0"),
            ("price_collar_pct", "50.01"), ("price_collar_pct", "0"),
            ("duplicate_window_seconds", 3601), ("duplicate_window_seconds", 0),
            ("max_orders_per_second", 101), ("max_orders_per_second", 0),
            ("pdt_enabled", False),
        ]
        for field, value in above_user_bounds:
            with self.subTest(field=field, value=value):
                e = rpc_error(self.call, "SetLimits", alice, **wrap(**{field: value}))
                self.assertEqual(e.code(), grpc.StatusCode.INVALID_ARGUMENT)
                self.assertIn(field, e.details())
        self.assertEqual(limits_dict(self.call("GetLimits", alice).limits), DEFAULTS)
        # Exactly at the user bounds is accepted; so is switching the absolute loss limit off.
        at = dict(daily_loss_pct="20", max_drawdown_pct="50", max_open_positions=100,
                  max_sector_pct="100", max_order_notional_pct="100", price_collar_pct="50",
                  duplicate_window_seconds=3600, max_orders_per_second=100, daily_loss_abs="0",
                  pdt_enabled=True)
        r = self.call("SetLimits", alice, **wrap(**at)).limits
        self.assertEqual(limits_dict(r), dict(DEFAULTS, **at))
        # The admin may go past the user bounds (and switch checks off) for Alice.
        aid = self.uid(alice)
        loose = dict(daily_loss_pct="60", max_open_positions=0, pdt_enabled=False,
                     price_collar_pct="500", duplicate_window_seconds=86400)
        r = self.call("SetLimits", admin, user_id=aid, **wrap(**loose)).limits
        want = dict(DEFAULTS, **at)
        want.update(loose)
        self.assertEqual(limits_dict(r), want)
        self.assertEqual(limits_dict(self.call("GetLimits", alice).limits), want)
        self.assertEqual(limits_dict(self.call("GetLimits", admin, user_id=aid).limits), want)
        # Alice can still change another field; the admin's looser values stay.
        r = self.call("SetLimits", alice, **wrap(max_sector_pct="30")).limits
        self.assertEqual(limits_dict(r), dict(want, max_sector_pct="30"))
        # ... but cannot re-send a loose value herself.
        self.assertEqual(code_of(self.call, "SetLimits", alice, **wrap(daily_loss_pct="60")),
                         grpc.StatusCode.INVALID_ARGUMENT)
        # The admin's change is in Alice's chain, by an admin; nothing in the admin's chain.
        ev = self.events(alice, action=audit.AUDIT_ACTION_LIMITS_CHANGE)
        by_admin = [e for e in ev if e.actor_type == audit.ACTOR_TYPE_ADMIN]
        self.assertEqual(len(by_admin), 1)
        self.assertEqual(by_admin[0].actor_id, "ops")
        d = json.loads(by_admin[0].details_json)
        self.assertEqual(d["user_id"], aid)
        self.assertEqual(d["new"]["pdt_enabled"], False)
        self.assertEqual(d["old"]["daily_loss_pct"], "20")
        self.assertEqual(self.events(admin, action=audit.AUDIT_ACTION_LIMITS_CHANGE), [])

    def test_users_cannot_read_or_set_each_others_limits(self):
        alice, bob = self.api.token("alice"), self.api.token("bob")
        admin = self.api.token("ops", admin=True)
        self.call("SetLimits", alice, **wrap(daily_loss_pct="3"))
        aid = self.events(alice)[0].user_id
        bid = self.uid(bob)
        self.assertNotEqual(aid, bid)
        self.assertEqual(code_of(self.call, "GetLimits", bob, user_id=aid),
                         grpc.StatusCode.PERMISSION_DENIED)
        self.assertEqual(code_of(self.call, "SetLimits", bob, user_id=aid,
                                 **wrap(daily_loss_pct="1")),
                         grpc.StatusCode.PERMISSION_DENIED)
        self.assertEqual(self.call("GetLimits", alice).limits.daily_loss_pct, "3")
        self.assertEqual(len(self.events(alice, action=audit.AUDIT_ACTION_LIMITS_CHANGE)), 1)
        denied = self.events(bob, action=audit.AUDIT_ACTION_AUTH_DENIED)
        self.assertEqual(sorted(e.object_id for e in denied),
                         ["/tradewink.v1.Risk/GetLimits", "/tradewink.v1.Risk/SetLimits"])
        self.assertTrue(all(e.outcome == audit.AUDIT_OUTCOME_DENIED for e in denied))
        # Naming oneself is fine; malformed ids are refused; unknown users are NOT_FOUND.
        self.assertEqual(self.call("GetLimits", bob, user_id=bid).limits.daily_loss_pct, "2")
        for tok in (bob, admin):
            self.assertEqual(code_of(self.call, "GetLimits", tok, user_id="alice"),
                             grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(code_of(self.call, "GetLimits", admin, user_id="987654"),
                         grpc.StatusCode.NOT_FOUND)
        self.assertEqual(code_of(self.call, "SetLimits", admin, user_id="987654",
                                 **wrap(daily_loss_pct="1")), grpc.StatusCode.NOT_FOUND)
        self.assertEqual(self.call("GetLimits", admin, user_id=aid).limits.daily_loss_pct, "3")
        # No token at all.
        self.assertEqual(code_of(self.call, "GetLimits", None), grpc.StatusCode.UNAUTHENTICATED)

    # ---- kill switches -----------------------------------------------------------------------

    def test_halt_resume_cycle_sanitizes_and_audits(self):
        alice = self.api.token("alice")
        st = self.call("Halt", alice, reason="vacation\x01\nback monday").state
        self.assertEqual(st.trading_state, HALTED)
        self.assertEqual(st.halt_reason, "user halt: vacation  back monday")
        self.assertFalse(st.global_halt)
        self.assertFalse(st.breaker_tripped)
        self.assertTrue(st.HasField("as_of"))
        self.assertEqual(st.equity, "")
        # Halting again replaces the reason.
        st = self.call("Halt", alice, reason="still away").state
        self.assertEqual(st.halt_reason, "user halt: still away")
        st = self.call("Resume", alice).state
        self.assertEqual(st.trading_state, ACTIVE)
        self.assertEqual(st.halt_reason, "")
        for bad in ("", "x" * 257, "   ", "\n\t", "\x00\x1f", "é" * 129):
            with self.subTest(reason=bad[:10]):
                self.assertEqual(code_of(self.call, "Halt", alice, reason=bad),
                                 grpc.StatusCode.INVALID_ARGUMENT)
        st = self.call("Halt", alice, reason="é" * 128).state  # exactly 256 bytes
        self.assertEqual(st.halt_reason, "user halt: " + "é" * 128)
        self.call("Resume", alice)
        ev = self.events(alice)
        self.assertEqual(sorted(actions(ev), key=str),
                         sorted(["AUDIT_ACTION_HALT", "AUDIT_ACTION_HALT", "AUDIT_ACTION_RESUME",
                                 "AUDIT_ACTION_HALT", "AUDIT_ACTION_RESUME"], key=str))
        halts = sorted((e for e in ev if e.action == audit.AUDIT_ACTION_HALT),
                       key=lambda e: e.sequence)
        d = json.loads(halts[0].details_json)
        self.assertEqual(d["reason"], "vacation  back monday")
        self.assertEqual(d["previous_state"], "ACTIVE")
        self.assertEqual(json.loads(halts[1].details_json)["previous_halted_by"], "user")
        self.assertTrue(all(e.outcome == audit.AUDIT_OUTCOME_SUCCESS for e in ev))
        self.assertTrue(self.api.call("Audit", "VerifyChain", token=alice).ok)

    def test_global_halt_blocks_resume_and_is_admin_only(self):
        alice, bob = self.api.token("alice"), self.api.token("bob")
        admin = self.api.token("ops", admin=True)
        # Users may not use the global switch; the refusal is audited in their chain.
        for m, kw in (("HaltAll", dict(reason="nope")), ("ResumeAll", {})):
            self.assertEqual(code_of(self.call, m, bob, **kw), grpc.StatusCode.PERMISSION_DENIED)
        self.assertEqual(actions(self.events(bob)), ["AUDIT_ACTION_AUTH_DENIED"] * 2)
        self.assertEqual(code_of(self.call, "HaltAll", admin, reason=""),
                         grpc.StatusCode.INVALID_ARGUMENT)
        r = self.call("HaltAll", admin, reason="incident 42")
        self.assertTrue(r.HasField("halted_at"))
        # Every user now sees the global halt, on top of their own state.
        st = self.call("Halt", alice, reason="me too").state
        self.assertTrue(st.global_halt)
        self.assertEqual(st.trading_state, HALTED)
        self.assertIn("global halt: incident 42", st.halt_reason)
        self.assertIn("user halt: me too", st.halt_reason)
        e = rpc_error(self.call, "Resume", alice)
        self.assertEqual(e.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertIn("global halt", e.details())
        self.assertEqual(code_of(self.call, "Resume", bob), grpc.StatusCode.FAILED_PRECONDITION)
        # ResumeAll lifts the global switch only: Alice's own halt stays until she resumes.
        r = self.call("ResumeAll", admin)
        self.assertTrue(r.HasField("resumed_at"))
        st = self.call("Halt", alice, reason="still me").state
        self.assertFalse(st.global_halt)
        self.assertEqual(st.halt_reason, "user halt: still me")
        st = self.call("Resume", alice).state
        self.assertEqual(st.trading_state, ACTIVE)
        self.assertFalse(st.global_halt)
        # Audit: the global switch in the admin's own chain; the refused Resume in Alice's.
        aev = self.events(admin)
        self.assertEqual(sorted(actions(aev)),
                         ["AUDIT_ACTION_HALT_ALL", "AUDIT_ACTION_RESUME_ALL"])
        halt_all = [e for e in aev if e.action == audit.AUDIT_ACTION_HALT_ALL][0]
        self.assertEqual(json.loads(halt_all.details_json)["reason"], "incident 42")
        self.assertEqual(halt_all.actor_type, audit.ACTOR_TYPE_ADMIN)
        resumes = [e for e in self.events(alice) if e.action == audit.AUDIT_ACTION_RESUME]
        outcomes = sorted(audit.AuditOutcome.Name(e.outcome) for e in resumes)
        self.assertEqual(outcomes, ["AUDIT_OUTCOME_FAILURE", "AUDIT_OUTCOME_SUCCESS"])
        failed = [e for e in resumes if e.outcome == audit.AUDIT_OUTCOME_FAILURE][0]
        self.assertEqual(json.loads(failed.details_json)["refused"], "global halt")

    def test_resume_refused_while_breaker_tripped(self):
        alice = self.api.token("alice")
        aid = self.uid(alice)
        import twserver
        twserver.db_sql(self.srv.workdir,
                        "UPDATE risk_state SET trading_state='HALTED', halted_by='breaker',"
                        " halt_reason='DAILY_LOSS: lost 2.1%% of start-of-day equity',"
                        " breaker_until_us=%d WHERE user_id=%d" % (FAR_FUTURE_US, int(aid)))
        e = rpc_error(self.call, "Resume", alice)
        self.assertEqual(e.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertIn("breaker", e.details())
        # A user halt on top of the breaker is reported and still cannot be resumed early.
        st = self.call("Halt", alice, reason="taking a break").state
        self.assertTrue(st.breaker_tripped)
        self.assertEqual(st.trading_state, HALTED)
        self.assertIn("breaker", st.halt_reason)
        self.assertEqual(code_of(self.call, "Resume", alice), grpc.StatusCode.FAILED_PRECONDITION)
        # Once the breaker has expired (next session), Resume works.
        twserver.db_sql(self.srv.workdir,
                        "UPDATE risk_state SET breaker_until_us=1 WHERE user_id=%d" % int(aid))
        st = self.call("Resume", alice).state
        self.assertEqual(st.trading_state, ACTIVE)
        self.assertFalse(st.breaker_tripped)
        refused = [e for e in self.events(alice, action=audit.AUDIT_ACTION_RESUME)
                   if e.outcome == audit.AUDIT_OUTCOME_FAILURE]
        self.assertEqual([json.loads(e.details_json)["refused"] for e in refused],
                         ["breaker", "breaker"])


if __name__ == "__main__":
    unittest.main()

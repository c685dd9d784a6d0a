"""Audit conformance: every rule audit.proto's comments state, in tables, so code that drifts
from its contract fails here: ListEvents order, paging and filters, who may read which chain,
what each AuditEvent field holds (actor types and ids included), VerifyChain and the tail."""

import base64
import json
import threading
import time
import unittest

import grpc
from google.protobuf import duration_pb2, timestamp_pb2, wrappers_pb2

from twapi import Api, audit, common, sim
from twapi import orders as pb_orders
from twserver import TwServer
from test_error_details import bad_request

# Monday 2026-11-30 15:00 UTC = 10:00 New York, a trading day.
MONDAY_10AM = 1796050800
BUY, MARKET, LIMIT = common.ORDER_SIDE_BUY, common.ORDER_TYPE_MARKET, common.ORDER_TYPE_LIMIT
TS = timestamp_pb2.Timestamp
A = audit.AuditAction
USER_T, ADMIN_T, SYSTEM_T = audit.ACTOR_TYPE_USER, audit.ACTOR_TYPE_ADMIN, audit.ACTOR_TYPE_SYSTEM


def status(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details() or ""


# A signing key, so the checkpoint rules can be checked (issue 20 part 3).
SIGNING_KEYS = "v1:" + base64.b64encode(b"\x07" * 32).decode()


class AuditConformanceTest(unittest.TestCase):
    def setUp(self):
        self.srv = TwServer(env={"TW_AUDIT_SIGNING_KEYS": SIGNING_KEYS,
                                 "TW_AUDIT_CHECKPOINT_INTERVAL_S": "0"}).start()
        self.api = Api(self.srv.addr)
        self.admin = self.api.token("ops", admin=True)
        self.alice = self.api.token("alice")
        self.bob = self.api.token("bob")
        self.api.call("Sim", "SetClock", token=self.admin, time=TS(seconds=MONDAY_10AM))
        self.quote("100")

    def tearDown(self):
        self.api.close()
        self.srv.stop_and_check(self)
        self.srv.cleanup()

    def quote(self, last):
        self.api.call("Sim", "SetQuotes", token=self.admin,
                      quotes=[sim.Quote(symbol="AAPL", bid=last, ask=last, last=last)])

    def uid(self, tok):
        return self.api.call("Risk", "GetState", token=tok).state.user_id

    def events(self, token=None, **kw):
        return list(self.api.call("Audit", "ListEvents", token=token or self.alice,
                                  page_size=500, **kw).events)

    def halts(self, n, token=None):
        """2n events in the caller's chain (HALT, RESUME, ...)."""
        for i in range(n):
            self.api.call("Risk", "Halt", token=token or self.alice, reason="r%d" % i)
            self.api.call("Risk", "Resume", token=token or self.alice)

    def order(self, coid, qty="1", token=None, **kw):
        fields = dict(client_order_id=coid, symbol="AAPL", side=BUY, type=MARKET, qty=qty,
                      time_in_force=common.TIME_IN_FORCE_DAY, origin=common.ORDER_ORIGIN_USER)
        fields.update(kw)
        return self.api.call("Orders", "SubmitOrder", token=token or self.alice, **fields).order

    def pages(self, token, size, **kw):
        got, tok = [], ""
        for _ in range(100):
            r = self.api.call("Audit", "ListEvents", token=token, page_size=size,
                              page_token=tok, **kw)
            self.assertLessEqual(len(r.events), size)
            got += list(r.events)
            tok = r.next_page_token
            if not tok:
                return got
        self.fail("paging did not end")

    # ---- ListEvents order and paging ---------------------------------------------------------
    def test_list_is_newest_first_and_pages_without_gaps_or_repeats(self):
        self.halts(3)
        seqs = [e.sequence for e in self.events()]
        self.assertEqual(seqs, [6, 5, 4, 3, 2, 1])
        for size in (1, 2, 4, 6, 7):
            with self.subTest(page_size=size):
                self.assertEqual([e.sequence for e in self.pages(self.alice, size)], seqs)
        # A full last page has no token (no empty page after it).
        r = self.api.call("Audit", "ListEvents", token=self.alice, page_size=3)
        r2 = self.api.call("Audit", "ListEvents", token=self.alice, page_size=3,
                           page_token=r.next_page_token)
        self.assertEqual(([e.sequence for e in r2.events], r2.next_page_token), ([3, 2, 1], ""))
        # Events written between two pages neither shift nor repeat a page.
        self.halts(1)
        r3 = self.api.call("Audit", "ListEvents", token=self.alice, page_size=3,
                           page_token=r.next_page_token)
        self.assertEqual([e.sequence for e in r3.events], [3, 2, 1])
        # The admin's view of Alice's chain and of all chains pages the same way.
        aid = self.uid(self.alice)
        self.assertEqual([e.sequence for e in self.pages(self.admin, 2, user_id=aid)],
                         [8, 7, 6, 5, 4, 3, 2, 1])
        self.halts(1, self.bob)
        every = self.pages(self.admin, 3, all_users=True)
        self.assertEqual(every[0].action, A.Value("AUDIT_ACTION_RESUME"))
        self.assertEqual(every[0].user_id, self.uid(self.bob))
        times = [(e.time.seconds, e.time.nanos) for e in every]
        self.assertEqual(times, sorted(times, reverse=True))
        self.assertGreaterEqual(len(every), 10)

    def test_page_size_default_and_bad_paging(self):
        self.halts(28)  # 56 events
        self.assertEqual(len(self.api.call("Audit", "ListEvents", token=self.alice).events), 50)
        self.assertEqual(len(self.api.call("Audit", "ListEvents", token=self.alice,
                                           page_size=100000).events), 56)
        for name, kw, field in (("negative page_size", dict(page_size=-1), "page_size"),
                                ("foreign page_token", dict(page_token="nope"), "page_token"),
                                ("unknown action", dict(action=999), "action")):
            with self.subTest(name):
                code, details = status(self.api.call, "Audit", "ListEvents", token=self.alice,
                                       **kw)
                self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
                self.assertIn(field, details)
        # Every bad field in one answer (google.rpc.BadRequest), the time range included: a
        # Timestamp outside 0001..9999 is refused, not multiplied into an overflow.
        far = TS(seconds=2**62)
        with self.assertRaises(grpc.RpcError) as cm:
            self.api.call("Audit", "ListEvents", token=self.alice, page_size=-1,
                          page_token="nope", action=999, start_time=TS(nanos=-1), end_time=far)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual([v.field for v in bad_request(cm.exception)],
                         ["page_size", "page_token", "action", "start_time", "end_time"])
        # end_time at the epoch is a bound (before every event), not "no bound".
        self.assertEqual(self.events(end_time=TS(seconds=0)), [])

    # ---- filters -----------------------------------------------------------------------------
    def test_filters_combine_with_and_and_pages_stay_full(self):
        self.halts(2)
        o1 = self.order("f1")
        self.halts(2)
        o2 = self.order("f2", qty="2")
        halts = self.events(action=A.Value("AUDIT_ACTION_HALT"))
        self.assertEqual([e.action for e in halts], [A.Value("AUDIT_ACTION_HALT")] * 4)
        about1 = self.events(object_id=o1.id)
        self.assertEqual({e.object_id for e in about1}, {o1.id})
        self.assertEqual([A.Name(e.action) for e in about1],
                         ["AUDIT_ACTION_ORDER_FILL", "AUDIT_ACTION_ORDER_ENTRY"])
        self.assertEqual(self.events(object_id=o1.id, action=A.Value("AUDIT_ACTION_HALT")), [])
        self.assertEqual([e.object_id for e in
                          self.events(action=A.Value("AUDIT_ACTION_ORDER_ENTRY"))],
                         [o2.id, o1.id])
        # A filtered page is a full page of matches (the filter is not applied after paging).
        r = self.api.call("Audit", "ListEvents", token=self.alice, page_size=2,
                          action=A.Value("AUDIT_ACTION_RESUME"))
        self.assertEqual(len(r.events), 2)
        rest = self.pages(self.alice, 1, action=A.Value("AUDIT_ACTION_RESUME"))
        self.assertEqual(len(rest), 4)
        # start_time inclusive, end_time exclusive.
        every = self.events()
        mid = every[len(every) // 2]
        t = TS(seconds=mid.time.seconds, nanos=mid.time.nanos)
        after = self.events(start_time=t)
        before = self.events(end_time=t)
        self.assertIn(mid.sequence, [e.sequence for e in after])
        self.assertNotIn(mid.sequence, [e.sequence for e in before])
        self.assertEqual(len(after) + len(before), len(every))

    # ---- who reads what ------------------------------------------------------------------------
    def test_users_read_their_own_chain_admins_any(self):
        self.halts(1)
        self.halts(1, self.bob)
        aid, bid = self.uid(self.alice), self.uid(self.bob)
        self.assertEqual({e.user_id for e in self.events()}, {aid})
        self.assertEqual(len(self.events(user_id=aid)), 2)  # naming oneself is fine
        for m, kw in (("ListEvents", dict(user_id=bid)), ("ListEvents", dict(all_users=True)),
                      ("VerifyChain", dict(user_id=bid))):
            with self.subTest(m, **kw):
                self.assertEqual(status(self.api.call, "Audit", m, token=self.alice, **kw)[0],
                                 grpc.StatusCode.PERMISSION_DENIED)
        # A refusal by role is audited in the caller's chain.
        denied = self.events(action=A.Value("AUDIT_ACTION_AUTH_DENIED"))
        self.assertEqual(len(denied), 3)
        self.assertTrue(all(e.outcome == audit.AUDIT_OUTCOME_DENIED for e in denied))
        self.assertEqual({e.user_id for e in self.events(self.admin, user_id=bid)}, {bid})
        self.assertEqual(status(self.api.call, "Audit", "ListEvents", token=self.admin,
                                user_id=bid, all_users=True)[0],
                         grpc.StatusCode.INVALID_ARGUMENT)
        self.assertTrue({aid, bid} <= {e.user_id for e in self.events(self.admin,
                                                                      all_users=True)})
        self.assertEqual(status(self.api.call, "Audit", "ListEvents")[0],
                         grpc.StatusCode.UNAUTHENTICATED)

    # ---- the fields of an event ----------------------------------------------------------------
    def test_chain_fields_sequence_hashes_and_user(self):
        self.halts(2)
        aid = self.uid(self.alice)
        ev = list(reversed(self.events()))
        self.assertEqual([e.sequence for e in ev], [1, 2, 3, 4])
        self.assertEqual(ev[0].prev_hash, b"\0" * 32)
        for prev, cur in zip(ev, ev[1:]):
            self.assertEqual(cur.prev_hash, prev.hash)
        for e in ev:
            self.assertEqual(len(e.hash), 32)
            self.assertEqual(e.user_id, aid)
            self.assertEqual(e.outcome, audit.AUDIT_OUTCOME_SUCCESS)
            self.assertEqual(e.object_id, "")  # account-level actions
            self.assertIsInstance(json.loads(e.details_json), dict)
        v = self.api.call("Audit", "VerifyChain", token=self.alice)
        self.assertEqual((v.ok, v.events_checked, v.first_broken_sequence), (True, 4, 0))
        v = self.api.call("Audit", "VerifyChain", token=self.admin, user_id=aid)
        self.assertEqual((v.ok, v.events_checked), (True, 4))

    # ---- checkpoints: CreateCheckpoint, VerifyChain.checkpoint, AuditCheckpoint ----------------
    def test_checkpoint_rules(self):
        C = audit.CheckpointResult
        create = lambda tok, **kw: self.api.call("Audit", "CreateCheckpoint", token=tok, **kw)
        verify = lambda tok, **kw: self.api.call("Audit", "VerifyChain", token=tok, **kw)
        # "FAILED_PRECONDITION when ... the chain is empty"
        self.assertEqual(status(create, self.alice)[0], grpc.StatusCode.FAILED_PRECONDITION)
        self.halts(1)
        aid = self.uid(self.alice)
        head = self.events()[0]
        cp = create(self.alice).checkpoint
        # AuditCheckpoint fields: the chain in decimal, the head's sequence and hash, the time,
        # the key version, a 64-byte signature.
        self.assertEqual((cp.user_id, cp.sequence, cp.hash, cp.key_version, len(cp.signature)),
                         (aid, head.sequence, head.hash, 1, 64))
        self.assertGreater(cp.time.seconds, 0)
        self.halts(1, self.bob)
        bid = self.uid(self.bob)

        def changed(**kw):
            t = audit.AuditCheckpoint()
            t.CopyFrom(cp)
            for k, v in kw.items():
                setattr(t, k, v)
            return t
        rows = [
            # (rule, caller, call, kwargs, code, (ok, checkpoint_result) or None)
            ("no checkpoint: result UNSPECIFIED", self.alice, verify, {}, grpc.StatusCode.OK,
             (True, C.CHECKPOINT_RESULT_UNSPECIFIED)),
            ("the chain extends its checkpoint", self.alice, verify, dict(checkpoint=cp),
             grpc.StatusCode.OK, (True, C.CHECKPOINT_RESULT_EXTENDS)),
            ("admins verify any chain with it", self.admin, verify,
             dict(user_id=aid, checkpoint=cp), grpc.StatusCode.OK,
             (True, C.CHECKPOINT_RESULT_EXTENDS)),
            ("altered: BAD_SIGNATURE, ok false", self.alice, verify,
             dict(checkpoint=changed(sequence=1)), grpc.StatusCode.OK,
             (False, C.CHECKPOINT_RESULT_BAD_SIGNATURE)),
            ("no key of that version: UNKNOWN_KEY", self.alice, verify,
             dict(checkpoint=changed(key_version=2)), grpc.StatusCode.OK,
             (False, C.CHECKPOINT_RESULT_UNKNOWN_KEY)),
            ("another chain's checkpoint: INVALID_ARGUMENT", self.bob, verify,
             dict(checkpoint=cp), grpc.StatusCode.INVALID_ARGUMENT, None),
            ("users checkpoint only their own chain", self.bob, create, dict(user_id=aid),
             grpc.StatusCode.PERMISSION_DENIED, None),
            ("admins checkpoint any chain", self.admin, create, dict(user_id=bid),
             grpc.StatusCode.OK, None),
            ("unauthenticated", None, create, {}, grpc.StatusCode.UNAUTHENTICATED, None),
        ]
        for rule, tok, call, kw, code, want in rows:
            with self.subTest(rule):
                got = status(call, tok, **kw)[0]
                self.assertEqual(got, code)
                if want:
                    v = call(tok, **kw)
                    self.assertEqual((v.ok, v.checkpoint_result), want)
        # A checkpoint of the wrong shape: every bad field named at once.
        with self.assertRaises(grpc.RpcError) as cm:
            verify(self.alice, checkpoint=audit.AuditCheckpoint(user_id="x", sequence=0))
        self.assertEqual([v.field for v in bad_request(cm.exception)],
                         ["checkpoint.user_id", "checkpoint.sequence", "checkpoint.hash",
                          "checkpoint.signature", "checkpoint.time"])

    ACTORS = [
        # (what, action, actor_type, actor_id)
        ("the user's own order entry", "AUDIT_ACTION_ORDER_ENTRY", USER_T, "alice"),
        ("a broker's fill", "AUDIT_ACTION_ORDER_FILL", SYSTEM_T, "broker"),
        ("the breaker trip", "AUDIT_ACTION_BREAKER_TRIP", SYSTEM_T, "risk"),
        ("an expiry by the server's clock", "AUDIT_ACTION_ORDER_EXPIRE", SYSTEM_T, "system"),
        ("an admin changing the user's limits", "AUDIT_ACTION_LIMITS_CHANGE", ADMIN_T, "ops"),
    ]

    def test_actor_type_and_id_of_each_kind_of_event(self):
        aid = self.uid(self.alice)
        self.order("entry")
        self.api.call("Risk", "SetLimits", token=self.admin, user_id=aid,
                      max_orders_per_second=wrappers_pb2.Int32Value(value=50))
        pend = self.order("auto", qty="2", origin=common.ORDER_ORIGIN_AUTOMATION)
        self.api.call("Sim", "AdvanceClock", token=self.admin,
                      duration=duration_pb2.Duration(seconds=900))
        self.wait_expired(pend.id)  # by the server's reconciler, nobody's call
        # A loss over 2 % of start-of-day equity trips the breaker.
        self.order("big", qty="90")
        self.quote("70")
        self.order("after", qty="3")
        ev = self.events()
        for what, action, atype, aid_want in self.ACTORS:
            with self.subTest(what):
                got = [e for e in ev if e.action == A.Value(action)]
                self.assertTrue(got, action)
                self.assertEqual({(e.actor_type, e.actor_id) for e in got}, {(atype, aid_want)})
        self.assertTrue(all(e.actor_type != audit.ACTOR_TYPE_UNSPECIFIED for e in ev))
        # HALT_ALL / RESUME_ALL are in the acting admin's own chain.
        self.api.call("Risk", "HaltAll", token=self.admin, reason="incident")
        self.api.call("Risk", "ResumeAll", token=self.admin)
        mine = self.events(self.admin)
        self.assertEqual([A.Name(e.action) for e in mine[:2]],
                         ["AUDIT_ACTION_RESUME_ALL", "AUDIT_ACTION_HALT_ALL"])
        self.assertEqual({(e.actor_type, e.actor_id) for e in mine[:2]}, {(ADMIN_T, "ops")})
        self.assertEqual({e.user_id for e in mine}, {self.uid(self.admin)})

    def wait_expired(self, order_id, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            o = self.api.call("Orders", "GetOrder", token=self.alice, order_id=order_id).order
            if o.status == pb_orders.ORDER_STATUS_EXPIRED:
                return
            time.sleep(0.1)
        self.fail("order %s did not expire" % order_id)

    def test_an_expiry_found_by_confirm_is_the_servers(self):
        # An expiry that ConfirmOrder finds is the system's (ActorType SYSTEM: "expiries"),
        # as the reconciler's is, not the user's who happened to ask.
        pend = self.order("auto", origin=common.ORDER_ORIGIN_AUTOMATION)
        self.api.call("Sim", "AdvanceClock", token=self.admin,
                      duration=duration_pb2.Duration(seconds=900))
        status(self.api.call, "Orders", "ConfirmOrder", token=self.alice, order_id=pend.id)
        got = [e for e in self.events() if e.action == A.Value("AUDIT_ACTION_ORDER_EXPIRE")]
        self.assertEqual({(e.actor_type, e.actor_id) for e in got}, {(SYSTEM_T, "system")})

    def test_a_users_cancel_names_the_user(self):
        # The cancel is applied by whichever report lands first (this call's own read or the
        # sim's cancel event, actor "broker"); either way the event names the caller, who is
        # recorded with the order before the broker is asked.
        o = self.order("lim", type=LIMIT, limit_price="95")
        self.api.call("Orders", "CancelOrder", token=self.alice, order_id=o.id)
        got = [e for e in self.events() if e.action == A.Value("AUDIT_ACTION_ORDER_CANCEL")]
        self.assertEqual({(e.actor_type, e.actor_id) for e in got}, {(USER_T, "alice")})

    # ---- StreamEvents ----------------------------------------------------------------------------
    def test_stream_tails_oldest_first_and_resumes(self):
        self.halts(2)  # seq 1..4
        got = []
        stream = self.api.stream("Audit", "StreamEvents", token=self.alice, from_sequence=2,
                                 timeout=10)

        def read():
            try:
                for m in stream:
                    got.append(m.event.sequence)
                    if len(got) == 4:
                        return
            except grpc.RpcError:
                pass

        th = threading.Thread(target=read)
        th.start()
        time.sleep(0.3)
        self.halts(1)  # seq 5, 6: live
        th.join(10)
        stream.cancel()
        self.assertEqual(got, [3, 4, 5, 6])
        for kw, code in ((dict(all_users=True), grpc.StatusCode.PERMISSION_DENIED),
                         (dict(user_id=self.uid(self.bob)), grpc.StatusCode.PERMISSION_DENIED)):
            with self.subTest(**kw):
                s = self.api.stream("Audit", "StreamEvents", token=self.alice, timeout=5, **kw)
                self.assertEqual(status(next, s)[0], code)
        s = self.api.stream("Audit", "StreamEvents", token=self.admin, all_users=True,
                            from_sequence=1, timeout=5)
        self.assertEqual(status(next, s)[0], grpc.StatusCode.INVALID_ARGUMENT)


if __name__ == "__main__":
    unittest.main()

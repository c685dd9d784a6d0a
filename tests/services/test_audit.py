"""Audit through the gRPC API: events produced by the calls that should produce them, per-user
visibility, chain verification that names the tampered or deleted sequence, and the stream."""

import os
import sqlite3
import threading
import unittest

import grpc

from twapi import Api, audit, code_of, common, orders, sim
from twserver import TwServer

PAPER = common.TRADING_MODE_PAPER


def actions(events):
    return [audit.AuditAction.Name(e.action) for e in events]


class AuditTest(unittest.TestCase):
    def test_events_carry_the_calls_trace(self):
        """Each event's details start with the trace_id/span_id of the call that made it: the
        caller's trace when it sent a traceparent, the access line's ids either way."""
        import json
        tid, pid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
        tp = [("traceparent", "00-%s-%s-01" % (tid, pid))]
        with TwServer() as srv:
            api = Api(srv.addr)
            alice, bob = api.token("alice"), api.token("bob")
            k = api.call("KeyVault", "PutBrokerKey", token=alice, broker="sim", metadata=tp,
                         environment=PAPER, key_id="PKALICE000001234", secret="s3cr3t-value-1")
            api.call("KeyVault", "DeleteBrokerKey", token=alice, broker_key_id=k.key.id)
            self.assertEqual(code_of(api.call, "KeyVault", "RewrapKeys", token=bob, metadata=tp),
                             grpc.StatusCode.PERMISSION_DENIED)
            ev = api.call("Audit", "ListEvents", token=alice).events  # newest first
            d = [json.loads(e.details_json) for e in reversed(ev)]
            self.assertEqual(d[0]["trace_id"], tid)
            self.assertNotEqual(d[0]["span_id"], pid)
            self.assertRegex(d[1]["trace_id"], "^[0-9a-f]{32}$")
            self.assertNotEqual(d[1]["trace_id"], tid)
            access = {ln["span_id"]: ln for ln in srv.access_lines()}
            self.assertEqual(access[d[0]["span_id"]]["method"],
                             "/tradewink.v1.KeyVault/PutBrokerKey")
            self.assertEqual(access[d[1]["span_id"]]["trace_id"], d[1]["trace_id"])
            denied = json.loads(api.call("Audit", "ListEvents", token=bob).events[0].details_json)
            self.assertEqual(denied["trace_id"], tid)
            self.assertEqual(denied["method"], "/tradewink.v1.KeyVault/RewrapKeys")
            api.close()
            srv.stop_and_check(self)

    def test_an_orders_background_events_carry_the_trace_it_was_submitted_with(self):
        """The fill of an order is applied after its SubmitOrder (the sim's fill, the reconciler,
        a stream): its ORDER_FILL event carries the submitting call's trace and span (kept with
        the order), so the trade is followed from the web backend's traceparent to the fill.
        It carried none before."""
        import json
        import time
        from google.protobuf import timestamp_pb2
        tid, pid = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
        with TwServer() as srv:
            api = Api(srv.addr)
            alice, admin = api.token("alice"), api.token("ops", admin=True)
            api.call("Sim", "SetClock", token=admin,
                     time=timestamp_pb2.Timestamp(seconds=1795446000))  # Mon 10:00 New York
            api.call("Sim", "SetQuotes", token=admin,
                     quotes=[sim.Quote(symbol="AAPL", bid="100", ask="100", last="100")])
            o = api.call("Orders", "SubmitOrder", token=alice,
                         metadata=[("traceparent", "00-%s-%s-01" % (tid, pid))],
                         client_order_id="traced-1", symbol="AAPL", side=common.ORDER_SIDE_BUY,
                         type=common.ORDER_TYPE_MARKET, qty="3",
                         time_in_force=common.TIME_IN_FORCE_DAY,
                         origin=common.ORDER_ORIGIN_USER).order
            filled = orders.OrderStatus.Value("ORDER_STATUS_FILLED")
            end = time.time() + 10
            while o.status != filled and time.time() < end:
                time.sleep(0.02)
                o = api.call("Orders", "GetOrder", token=alice, order_id=o.id).order
            self.assertEqual(o.status, filled)
            ev = {audit.AuditAction.Name(e.action): json.loads(e.details_json)
                  for e in api.call("Audit", "ListEvents", token=alice).events}
            entry, fill = ev["AUDIT_ACTION_ORDER_ENTRY"], ev["AUDIT_ACTION_ORDER_FILL"]
            self.assertEqual(entry["trace_id"], tid)
            self.assertEqual(fill["trace_id"], tid)
            self.assertEqual(fill["span_id"], entry["span_id"])
            self.assertEqual(fill["qty"], "3")
            api.close()
            srv.stop_and_check(self)

    def test_events_visibility_and_chain(self):
        with TwServer() as srv:
            api = Api(srv.addr)
            alice, bob = api.token("alice"), api.token("bob")
            admin = api.token("ops", admin=True)
            k = api.call("KeyVault", "PutBrokerKey", token=alice, broker="sim",
                         environment=PAPER, key_id="PKALICE000001234", secret="s3cr3t-value-1")
            api.call("KeyVault", "TestBrokerKey", token=alice, broker_key_id=k.key.id)
            api.call("KeyVault", "DeleteBrokerKey", token=alice, broker_key_id=k.key.id)
            # A user calling an admin method is refused and that is audited in their chain.
            self.assertEqual(code_of(api.call, "KeyVault", "RewrapKeys", token=bob),
                             grpc.StatusCode.PERMISSION_DENIED)
            # Newest first (audit.proto); ev is put back in chain order for the checks below.
            newest = api.call("Audit", "ListEvents", token=alice).events
            self.assertEqual([e.sequence for e in newest], [3, 2, 1])
            ev = list(reversed(newest))
            self.assertEqual(actions(ev), ["AUDIT_ACTION_KEY_ADD", "AUDIT_ACTION_KEY_TEST",
                                           "AUDIT_ACTION_KEY_DELETE"])
            self.assertEqual(ev[0].prev_hash, b"\0" * 32)
            self.assertEqual(ev[1].prev_hash, ev[0].hash)
            self.assertEqual(ev[0].object_id, k.key.id)
            self.assertNotIn("s3cr3t", str(ev))
            bev = api.call("Audit", "ListEvents", token=bob).events
            self.assertEqual(actions(bev), ["AUDIT_ACTION_AUTH_DENIED"])
            # Bob cannot read Alice's chain; admins can.
            self.assertEqual(code_of(api.call, "Audit", "ListEvents", token=bob,
                                     user_id=ev[0].user_id), grpc.StatusCode.PERMISSION_DENIED)
            self.assertEqual(code_of(api.call, "Audit", "ListEvents", token=bob, all_users=True),
                             grpc.StatusCode.PERMISSION_DENIED)
            self.assertEqual(len(api.call("Audit", "ListEvents", token=admin,
                                          user_id=ev[0].user_id).events), 3)
            self.assertGreaterEqual(len(api.call("Audit", "ListEvents", token=admin,
                                                 all_users=True).events), 4)
            # Filters and paging.
            only = api.call("Audit", "ListEvents", token=alice,
                            action=audit.AUDIT_ACTION_KEY_TEST).events
            self.assertEqual(actions(only), ["AUDIT_ACTION_KEY_TEST"])
            p1 = api.call("Audit", "ListEvents", token=alice, page_size=2)
            self.assertEqual(len(p1.events), 2)
            p2 = api.call("Audit", "ListEvents", token=alice, page_size=2,
                          page_token=p1.next_page_token)
            self.assertEqual([e.sequence for e in p1.events], [3, 2])
            self.assertEqual([e.sequence for e in p2.events], [1])
            self.assertEqual(p2.next_page_token, "")
            v = api.call("Audit", "VerifyChain", token=alice)
            self.assertEqual((v.ok, v.events_checked, v.first_broken_sequence), (True, 3, 0))
            api.close()
            srv.stop_and_check(self)

            # Tamper as the database owner: drop the append-only triggers, change one event.
            import subprocess
            import twserver
            uid = int(ev[0].user_id)
            with self.assertRaises((sqlite3.DatabaseError, subprocess.CalledProcessError)):
                twserver.db_sql(srv.workdir, "UPDATE audit_events SET details='{}' WHERE seq=2")
            if twserver.backend_url():
                twserver.db_sql(srv.workdir, "ALTER TABLE audit_events DISABLE TRIGGER USER")
            else:
                twserver.db_sql(srv.workdir, "DROP TRIGGER audit_events_no_update;"
                                             "DROP TRIGGER audit_events_no_delete;")
            twserver.db_sql(srv.workdir, "UPDATE audit_events SET details='{\"x\":1}' "
                                         "WHERE chain=%d AND seq=2" % uid)
            srv2 = TwServer(workdir=srv.workdir)
            with srv2:
                api = Api(srv2.addr)
                v = api.call("Audit", "VerifyChain", token=api.token("alice"))
                self.assertEqual((v.ok, v.first_broken_sequence), (False, 2))
                api.close()
                srv2.stop_and_check(self)
            twserver.db_sql(srv.workdir, "DELETE FROM audit_events WHERE chain=%d AND seq=2" % uid)
            srv3 = TwServer(workdir=srv.workdir)
            with srv3:
                api = Api(srv3.addr)
                v = api.call("Audit", "VerifyChain", token=api.token("alice"))
                self.assertEqual((v.ok, v.first_broken_sequence), (False, 2))
                api.close()
                srv3.stop_and_check(self)

    def test_stream_tail_resume_and_isolation(self):
        with TwServer() as srv:
            api = Api(srv.addr)
            alice, bob = api.token("alice"), api.token("bob")
            k = api.call("KeyVault", "PutBrokerKey", token=alice, broker="sim",
                         environment=PAPER, key_id="PKALICE000001234", secret="s3cr3t-value-1")
            got_alice, got_bob = [], []

            def read(tok, sink, **kw):
                try:
                    for m in api.stream("Audit", "StreamEvents", token=tok, timeout=8, **kw):
                        sink.append(m.event)
                except grpc.RpcError:
                    pass

            ta = threading.Thread(target=read, args=(alice, got_alice), kwargs={"from_sequence": 0})
            tb = threading.Thread(target=read, args=(bob, got_bob))
            resumed = []
            tr = threading.Thread(target=read, args=(alice, resumed), kwargs={"from_sequence": 0})
            ta.start()
            tb.start()
            import time
            time.sleep(1.0)
            api.call("KeyVault", "TestBrokerKey", token=alice, broker_key_id=k.key.id)
            api.call("KeyVault", "DeleteBrokerKey", token=alice, broker_key_id=k.key.id)
            deadline = time.time() + 5
            while len(got_alice) < 2 and time.time() < deadline:
                time.sleep(0.1)
            self.assertEqual(actions(got_alice), ["AUDIT_ACTION_KEY_TEST",
                                                  "AUDIT_ACTION_KEY_DELETE"])
            self.assertEqual(got_bob, [])
            # Resume from sequence 1: the backlog (2, 3) arrives in order.
            def read_resume():
                try:
                    for m in api.stream("Audit", "StreamEvents", token=alice, timeout=3,
                                        from_sequence=1):
                        resumed.append(m.event)
                except grpc.RpcError:
                    pass
            read_resume()
            self.assertEqual([e.sequence for e in resumed], [2, 3])
            self.assertEqual(code_of(lambda: list(api.stream("Audit", "StreamEvents",
                                                             token=bob, all_users=True,
                                                             timeout=3))),
                             grpc.StatusCode.PERMISSION_DENIED)
            del tr
            srv.stop_and_check(self)
            ta.join(10)
            tb.join(10)
            api.close()


if __name__ == "__main__":
    unittest.main()

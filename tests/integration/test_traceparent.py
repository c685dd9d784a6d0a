"""integ_traceparent: W3C Trace Context on the access log.

A call carrying a valid `traceparent` is logged with that trace_id and a span_id of its own;
a call without one, or with an invalid or repeated one, gets a fresh 32-hex trace_id (distinct
per call); calls to unknown methods are traced the same way. Clients: Debian's python3-grpcio.
"""

import re
import unittest

import grpc

import twserver

TID = "4bf92f3577b34da6a3ce929d0e0e4736"
PID = "00f067aa0ba902b7"
HEX32, HEX16 = re.compile(r"^[0-9a-f]{32}$"), re.compile(r"^[0-9a-f]{16}$")


class TraceParent(unittest.TestCase):
    def setUp(self):
        self.srv = twserver.TwServer().start()
        self.addCleanup(self.srv.cleanup)
        self.ch = grpc.insecure_channel(self.srv.addr)
        self.addCleanup(self.ch.close)

    def call(self, path, md):
        try:
            self.ch.unary_unary(path)(b"", metadata=md, timeout=5)
        except grpc.RpcError as e:
            self.assertEqual(e.code(), grpc.StatusCode.UNIMPLEMENTED)

    def test_trace_ids_on_access_lines(self):
        check = "/grpc.health.v1.Health/Check"
        cases = [
            [("traceparent", "00-%s-%s-01" % (TID, PID))],
            [],
            [("traceparent", "00-%s-%s-01" % (TID.upper(), PID))],  # invalid: upper case
            [("traceparent", "00-%s-%s-01" % (TID, PID)),
             ("traceparent", "00-%s-%s-01" % (TID, PID))],  # repeated
        ]
        for md in cases:
            self.call(check, md)
        self.call("/no.Such/Method", [("traceparent", "00-%s-%s-00" % (TID, PID))])
        lines = self.srv.wait_access_count(check, len(cases))
        unknown = self.srv.wait_access_count("/no.Such/Method", 1)
        self.assertEqual(len(lines), len(cases))
        for ln in lines + unknown:
            self.assertRegex(ln.get("trace_id", ""), HEX32, ln)
            self.assertRegex(ln.get("span_id", ""), HEX16, ln)
            self.assertNotEqual(ln["span_id"], PID)
        self.assertEqual(lines[0]["trace_id"], TID)
        fresh = [ln["trace_id"] for ln in lines[1:]]
        self.assertNotIn(TID, fresh)
        self.assertEqual(len(set(fresh)), 3, fresh)
        self.assertEqual(unknown[0]["trace_id"], TID)
        self.assertEqual(len({ln["span_id"] for ln in lines + unknown}), len(cases) + 1)
        self.srv.stop_and_check(self)


if __name__ == "__main__":
    unittest.main()

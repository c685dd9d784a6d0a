"""integ_forwarded_peer: per-peer budgets behind the HAProxy front (issue 19).

Purpose: behind deploy/haproxy every call reaches tradewinkd from the front's own address, so
per-address limits (TW_RATE_PUBLIC, TW_RATE_AUTH_FAIL) would put every client in one budget.
The front sets x-forwarded-for from the client connection (replacing any the client sent) and
tradewinkd believes it only from the peers named in TW_TRUSTED_FRONTS. Checked with
TW_RATE_PUBLIC=1/min:3 on grpc.health.v1.Health/Check (a public, per-peer limited method):
- behind the front, 127.0.0.1 and 127.0.0.2 each get their own 3 calls;
- a client's own x-forwarded-for, through the front, does not buy it a new budget;
- a client that talks to tradewinkd directly (not from a trusted front) and forges the
  header is not believed, and neither is anyone when TW_TRUSTED_FRONTS is unset.
Invariants: loopback only (127.0.0.1, 127.0.0.2), a handful of calls, every process stopped
by PID.
"""

import shutil
import tempfile
import unittest

import front
import twserver
from test_hostile_compression import h2_unary, grpc_frame

CHECK = "/grpc.health.v1.Health/Check"
OK, RESOURCE_EXHAUSTED = 0, 8
BURST = 3


class ForwardedPeer(unittest.TestCase):
    def start(self, trusted="127.0.0.1", with_front=True):
        env = {"TW_RATE_PUBLIC": "1/min:%d" % BURST}
        if trusted is not None:
            env["TW_TRUSTED_FRONTS"] = trusted
        srv = twserver.TwServer(env=env).start()
        self.addCleanup(srv.cleanup)
        self.srv = srv
        if not with_front:
            return srv.port, None
        tmp = tempfile.mkdtemp(prefix="twfwd-")
        self.addCleanup(shutil.rmtree, tmp, True)
        pki = twserver.make_pki(tmp)
        f = front.Front(srv.port, pki, tmp).start()
        self.addCleanup(f.stop)
        return f.port, pki["ca.pem"]

    def calls(self, port, ca, source, n, forged=None):
        out = []
        for i in range(n):
            hdrs = [("x-forwarded-for", forged % i)] if forged else []
            st, details = h2_unary(port, CHECK, grpc_frame(b"", False), timeout=10, tls_ca=ca,
                                   source=source, extra_headers=hdrs)
            out.append(st)
        return out

    def test_two_clients_behind_the_front_have_separate_budgets(self):
        port, ca = self.start()
        self.assertEqual(self.calls(port, ca, "127.0.0.1", BURST + 1),
                         [OK] * BURST + [RESOURCE_EXHAUSTED])
        # 127.0.0.1 is spent; 127.0.0.2 comes through the same front with its own budget
        self.assertEqual(self.calls(port, ca, "127.0.0.2", BURST + 1),
                         [OK] * BURST + [RESOURCE_EXHAUSTED])
        self.assertIn("ipv4:127.0.0.2:0", self.srv.stderr_text())  # the access log names it
        self.srv.stop_and_check(self)

    def test_a_header_sent_through_the_front_is_replaced(self):
        port, ca = self.start()
        # a new made-up address on every call: all of them count against 127.0.0.2
        self.assertEqual(self.calls(port, ca, "127.0.0.2", BURST + 1, forged="10.9.9.%d"),
                         [OK] * BURST + [RESOURCE_EXHAUSTED])
        self.srv.stop_and_check(self)

    def test_a_forged_header_from_an_untrusted_peer_is_ignored(self):
        # Only 127.0.0.1 is trusted; the client dials tradewinkd from 127.0.0.2.
        port, ca = self.start(with_front=False)
        self.assertEqual(self.calls(port, ca, "127.0.0.2", BURST + 1, forged="10.8.8.%d"),
                         [OK] * BURST + [RESOURCE_EXHAUSTED])
        self.srv.stop_and_check(self)

    def test_without_trusted_fronts_the_header_is_ignored(self):
        port, ca = self.start(trusted=None, with_front=False)
        self.assertEqual(self.calls(port, ca, "127.0.0.1", BURST + 1, forged="10.7.7.%d"),
                         [OK] * BURST + [RESOURCE_EXHAUSTED])
        self.srv.stop_and_check(self)


if __name__ == "__main__":
    unittest.main(verbosity=2)

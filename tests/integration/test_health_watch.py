"""integ_health_watch: grpc.health.v1.Health/Watch across the server's life.

Purpose: a watcher of "" sees SERVING at once, NOT_SERVING when SIGTERM arrives (before the
listener closes), and then its stream ends; a watcher of a served service name follows the
same path; a watcher of an unknown name gets SERVICE_UNKNOWN and stays open (the protocol says
the status may change later); several watchers all see the change.
"""

import os
import signal
import threading
import time
import unittest

import grpc

import twserver

GRACE_MS = 2000


class Watch(unittest.TestCase):
    def setUp(self):
        self.server = twserver.TwServer(env={"TW_SHUTDOWN_GRACE_MS": str(GRACE_MS)}).start()
        self.addCleanup(self.server.cleanup)
        self.h = twserver.grpc_protos()["health"]
        self.HR = self.h.HealthCheckResponse

    def open_watch(self, service):
        ch = grpc.insecure_channel(self.server.addr)
        self.addCleanup(ch.close)
        _, watch = twserver.health_stubs(ch)
        return watch(self.h.HealthCheckRequest(service=service), timeout=30)

    @staticmethod
    def drain(stream, out):
        """Collect statuses until the stream ends; append the end code (None for OK)."""
        try:
            for m in stream:
                out.append(m.status)
            out.append(None)
        except grpc.RpcError as e:
            out.append(e.code())

    def test_serving_then_not_serving_on_sigterm_then_stream_ends(self):
        streams = {name: self.open_watch(name) for name in ("", "tradewink.v1.Orders",
                                                            "grpc.health.v1.Health")}
        for name, st in streams.items():
            with self.subTest(service=name):
                self.assertEqual(next(st).status, self.HR.SERVING)
        got = {name: [] for name in streams}
        threads = [threading.Thread(target=self.drain, args=(st, got[name]), daemon=True)
                   for name, st in streams.items()]
        for t in threads:
            t.start()
        time.sleep(0.2)
        for name in streams:
            self.assertEqual(got[name], [], "status changed before SIGTERM")
        self.server.stop(sig=signal.SIGTERM, timeout=GRACE_MS / 1000.0 + 10)
        for t in threads:
            t.join(timeout=10)
            self.assertFalse(t.is_alive(), "watch stream did not end after shutdown")
        for name, seq in got.items():
            with self.subTest(service=name):
                self.assertGreaterEqual(len(seq), 2, seq)
                self.assertEqual(seq[0], self.HR.NOT_SERVING, seq)
                self.assertEqual(seq[-1], grpc.StatusCode.UNAVAILABLE, seq)
                self.assertNotIn(self.HR.SERVING, seq)
        self.assertEqual(self.server.returncode, 0, self.server.stderr_text()[-3000:])
        self.assertEqual(twserver.sanitizer_reports(self.server.stderr_text()), [])

    def test_not_serving_arrives_while_the_listener_still_answers(self):
        # Order check: after a watcher saw NOT_SERVING, a new Check on a fresh connection
        # within the drain window still gets an answer (NOT_SERVING or UNAVAILABLE), and
        # never SERVING.
        st = self.open_watch("")
        self.assertEqual(next(st).status, self.HR.SERVING)
        os.kill(self.server.proc.pid, signal.SIGTERM)
        self.assertEqual(next(st).status, self.HR.NOT_SERVING)
        with grpc.insecure_channel(self.server.addr) as ch:
            check, _ = twserver.health_stubs(ch)
            try:
                r = check(self.h.HealthCheckRequest(), timeout=5)
                self.assertEqual(r.status, self.HR.NOT_SERVING)
            except grpc.RpcError as e:
                self.assertEqual(e.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(self.server.stop(timeout=GRACE_MS / 1000.0 + 10), 0)

    def test_unknown_service_gets_service_unknown_and_stays_open(self):
        st = self.open_watch("no.such.Service")
        self.assertEqual(next(st).status, self.HR.SERVICE_UNKNOWN)
        got = []
        t = threading.Thread(target=self.drain, args=(st, got), daemon=True)
        t.start()
        time.sleep(0.5)
        self.assertEqual(got, [], "unknown-service watch must stay open without updates")
        self.server.stop_and_check(self, timeout=GRACE_MS / 1000.0 + 10)
        t.join(timeout=10)
        self.assertFalse(t.is_alive())
        self.assertEqual(got[-1], grpc.StatusCode.UNAVAILABLE, got)

    def test_watcher_that_cancels_leaves_server_healthy(self):
        for _ in range(20):
            st = self.open_watch("")
            self.assertEqual(next(st).status, self.HR.SERVING)
            st.cancel()
        with grpc.insecure_channel(self.server.addr) as ch:
            check, _ = twserver.health_stubs(ch)
            self.assertEqual(check(self.h.HealthCheckRequest(), timeout=10).status,
                             self.HR.SERVING)
        lines = self.server.wait_access_count("/grpc.health.v1.Health/Watch", 20, timeout=10)
        self.assertEqual(len(lines), 20)
        self.server.stop_and_check(self, timeout=GRACE_MS / 1000.0 + 10)


if __name__ == "__main__":
    twserver.main()

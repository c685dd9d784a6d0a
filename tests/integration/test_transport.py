"""integ_transport: tradewinkd over plaintext loopback, called with Debian's python3-grpcio.

Purpose: the core transport behaviours (core_checks), plus what only a raw socket or a
process-level view can show: malformed HTTP/2 frames drop the connection but not the server,
SIGTERM during calls tells health watchers NOT_SERVING before streams end and exits 0 within
the grace period, and the access log has exactly one JSON line per call and never a payload or
header value.
"""

import os
import signal
import socket
import struct
import threading
import time
import unittest

import grpc

import core_checks
import twserver

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(ftype, flags, stream, payload, length=None):
    n = len(payload) if length is None else length
    return struct.pack(">I", n)[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def settings_frame():
    return frame(0x4, 0, 0, b"")


class PlaintextCore(core_checks.CoreChecks, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = twserver.TwServer().start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop_and_check(cls("test_health_check_overall_is_serving"))
        finally:
            cls.server.cleanup()

    def channel(self):
        return grpc.insecure_channel(self.server.addr)

    def test_listening_line_reports_plaintext_and_loopback(self):
        ev = self.server.listening
        self.assertEqual(ev.get("tls"), "off")
        self.assertGreater(self.server.port, 0)
        self.assertTrue(ev.get("addr", "").startswith("127.0.0.1:"))


class MalformedFrames(unittest.TestCase):
    """Raw HTTP/2 abuse on a socket: the connection is dropped, the server stays up."""

    @classmethod
    def setUpClass(cls):
        cls.server = twserver.TwServer().start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop_and_check(cls("test_garbage_after_preface_drops_connection"))
        finally:
            cls.server.cleanup()

    def send_and_expect_close(self, data, timeout=5.0):
        """Send data; return all bytes the server sent before closing. Fails if it never closes."""
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=timeout)
        got = b""
        try:
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                return got
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                s.settimeout(max(0.05, deadline - time.monotonic()))
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    break
                except ConnectionResetError:
                    return got
                if not chunk:
                    return got
                got += chunk
            self.fail("server kept the connection open after malformed input; got %r" % got[:200])
        finally:
            s.close()

    def assertServerAlive(self):
        self.assertTrue(self.server.alive(), self.server.stderr_text())
        h = twserver.grpc_protos()["health"]
        with grpc.insecure_channel(self.server.addr) as ch:
            check, _ = twserver.health_stubs(ch)
            r = check(h.HealthCheckRequest(), timeout=10)
            self.assertEqual(r.status, h.HealthCheckResponse.SERVING)

    def test_garbage_after_preface_drops_connection(self):
        self.send_and_expect_close(PREFACE + os.urandom(16) + b"\xff" * 64)
        self.assertServerAlive()

    def test_settings_frame_with_bad_length_drops_connection(self):
        # SETTINGS payload must be a multiple of 6 bytes: 5 is a FRAME_SIZE_ERROR.
        self.send_and_expect_close(PREFACE + frame(0x4, 0, 0, b"\x00\x01\x00\x00\x10"))
        self.assertServerAlive()

    def test_frame_longer_than_max_frame_size_drops_connection(self):
        hdr = frame(0x1, 0x4, 1, b"", length=(1 << 24) - 1)  # HEADERS claiming 16 MiB
        self.send_and_expect_close(PREFACE + settings_frame() + hdr + b"\x00" * 64)
        self.assertServerAlive()

    def test_window_update_with_bad_length_drops_connection(self):
        # WINDOW_UPDATE must be exactly 4 bytes.
        self.send_and_expect_close(PREFACE + settings_frame() + frame(0x8, 0, 0, b"\x00\x01"))
        self.assertServerAlive()

    def test_headers_on_stream_zero_does_not_hurt_the_server(self):
        # Protocol error (RFC 9113 6.2); grpc core tolerates it on this version, so only the
        # server's survival is asserted, plus that it answers with something HTTP/2.
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=5)
        try:
            s.sendall(PREFACE + settings_frame() + frame(0x1, 0x4, 0, b"\x82"))
            self.assertTrue(s.recv(9))
        finally:
            s.close()
        self.assertServerAlive()

    def test_http1_request_drops_connection(self):
        self.send_and_expect_close(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        self.assertServerAlive()

    def test_half_preface_then_close_is_harmless(self):
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=5)
        s.sendall(PREFACE[:10])
        s.close()
        self.assertServerAlive()


class AccessLog(unittest.TestCase):
    """One JSON line per call, with method/status/latency/peer, and never values."""

    def setUp(self):
        self.server = twserver.TwServer().start()
        self.addCleanup(self.server.cleanup)
        self.h = twserver.grpc_protos()["health"]

    def test_one_line_per_call_with_fields_and_no_secrets(self):
        secret = (("authorization", "Bearer SECRETVALUE"), ("x-api-key", "SECRETKEYHEADER"))
        with grpc.insecure_channel(self.server.addr) as ch:
            check, _ = twserver.health_stubs(ch)
            for _ in range(3):
                check(self.h.HealthCheckRequest(), timeout=10, metadata=secret)
            with self.assertRaises(grpc.RpcError):
                check(self.h.HealthCheckRequest(service="PAYLOADMARKER"), timeout=10,
                      metadata=secret)
            with self.assertRaises(grpc.RpcError):
                twserver.raw_unary(ch, core_checks.ORDERS_GET)(
                    b"\x0a\x0dPAYLOADMARKER", timeout=10, metadata=secret)
        expect = {
            "/grpc.health.v1.Health/Check": {"OK": 3, "NOT_FOUND": 1},
            core_checks.ORDERS_GET: {"UNAUTHENTICATED": 1},
        }
        for method, statuses in expect.items():
            self.server.wait_access_count(method, sum(statuses.values()), timeout=10)
        time.sleep(0.5)  # any duplicate line would have arrived by now
        for method, statuses in expect.items():
            lines = self.server.access_lines(method)
            got = {}
            for ln in lines:
                got[ln.get("status")] = got.get(ln.get("status"), 0) + 1
            self.assertEqual(got, statuses, "access lines for %s: %r" % (method, lines))
            for ln in lines:
                with self.subTest(method=method, line=ln):
                    self.assertIsInstance(ln.get("latency_ms"), (int, float))
                    self.assertGreaterEqual(ln["latency_ms"], 0)
                    self.assertTrue(str(ln.get("peer", "")).startswith("ipv4:127.0.0.1:"), ln)
        text = self.server.stderr_text()
        for needle in ("SECRETVALUE", "SECRETKEYHEADER", "PAYLOADMARKER"):
            self.assertNotIn(needle, text)
        self.server.stop_and_check(self)
        self.assertNotIn("SECRETVALUE", self.server.stderr_text())

    def test_stream_call_gets_exactly_one_line(self):
        with grpc.insecure_channel(self.server.addr) as ch:
            _, watch = twserver.health_stubs(ch)
            it = watch(self.h.HealthCheckRequest(), timeout=10)
            self.assertEqual(next(it).status, self.h.HealthCheckResponse.SERVING)
            it.cancel()
        lines = self.server.wait_access_count("/grpc.health.v1.Health/Watch", 1, timeout=10)
        time.sleep(0.5)
        lines = self.server.access_lines("/grpc.health.v1.Health/Watch")
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("latency_ms", lines[0])
        self.server.stop_and_check(self)

    def test_unknown_method_gets_exactly_one_line_with_latency(self):
        path = "/no.such.Service/SECRETMETHODNAME"
        with grpc.insecure_channel(self.server.addr) as ch:
            with self.assertRaises(grpc.RpcError):
                twserver.raw_unary(ch, path)(b"PAYLOADMARKER", timeout=10,
                                             metadata=(("authorization", "Bearer SECRETVALUE"),))
        lines = self.server.wait_access_count(path, 1, timeout=10)
        time.sleep(0.5)
        lines = self.server.access_lines(path)
        self.assertEqual(len(lines), 1, lines)
        self.assertEqual(lines[0].get("status"), "UNIMPLEMENTED")
        self.assertTrue(str(lines[0].get("peer", "")).startswith("ipv4:127.0.0.1:"))
        self.assertNotIn("SECRETVALUE", self.server.stderr_text())
        self.assertNotIn("PAYLOADMARKER", self.server.stderr_text())
        self.assertIn("latency_ms", lines[0], "unknown-method access line has no latency_ms")
        self.server.stop_and_check(self)


def pb_string(field, value):
    data = value.encode()
    return bytes([field << 3 | 2, len(data)]) + data


def pb_first_string(data, field):
    """The first length-delimited field `field` of a serialized message (tiny decoder)."""
    i = 0

    def varint():
        nonlocal i
        shift = v = 0
        while True:
            b = data[i]
            i += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return v

    while i < len(data):
        key = varint()
        wt = key & 7
        if wt == 0:
            varint()
        elif wt == 2:
            n = varint()
            if key >> 3 == field:
                return data[i : i + n].decode()
            i += n
        elif wt == 1:
            i += 8
        elif wt == 5:
            i += 4
        else:
            raise ValueError("wire type %d" % wt)
    return None


class AuthenticatedDrain(unittest.TestCase):
    """With a dev token (dev mode's public Auth/IssueDevToken): authenticated calls work, the
    token never reaches the log, and an open authenticated stream ends on SIGTERM within the
    grace period."""

    GRACE_MS = 1500

    def setUp(self):
        self.server = twserver.TwServer(env={"TW_SHUTDOWN_GRACE_MS": str(self.GRACE_MS)}).start()
        self.addCleanup(self.server.cleanup)
        self.ch = grpc.insecure_channel(self.server.addr)
        self.addCleanup(self.ch.close)
        req = pb_string(1, "integ-alice") + b"\x10\x01"  # subject, role=ROLE_USER
        resp = self.ch.unary_unary("/tradewink.v1.Auth/IssueDevToken")(req, timeout=10)
        self.token = pb_first_string(resp, 1)
        self.assertTrue(self.token and self.token.count(".") == 2, resp)
        self.md = (("authorization", "Bearer " + self.token),)

    def test_token_works_and_never_appears_in_the_log(self):
        resp = self.ch.unary_unary("/tradewink.v1.Auth/WhoAmI")(b"", timeout=10, metadata=self.md)
        self.assertEqual(pb_first_string(resp, 1), "integ-alice")
        lines = self.server.wait_access_count("/tradewink.v1.Auth/WhoAmI", 1)
        self.assertEqual(lines[0].get("status"), "OK")
        self.server.stop_and_check(self)
        text = self.server.stderr_text()
        sig = self.token.rsplit(".", 1)[1]
        self.assertNotIn(sig, text)
        self.assertNotIn(self.token.split(".")[1], text)

    def test_open_authenticated_stream_ends_on_sigterm_within_grace(self):
        stream = self.ch.unary_stream("/tradewink.v1.Audit/StreamEvents")(
            b"", timeout=60, metadata=self.md)
        got = []
        def drain():
            try:
                for m in stream:
                    got.append(m)
                got.append("end-ok")
            except grpc.RpcError as e:
                got.append(e.code())
        t = threading.Thread(target=drain, daemon=True)
        t.start()
        time.sleep(0.5)
        self.assertEqual(got, [], "stream ended before shutdown: %r" % got)
        t0 = time.monotonic()
        self.server.stop_and_check(self, timeout=self.GRACE_MS / 1000.0 + 10)
        elapsed = time.monotonic() - t0
        t.join(timeout=10)
        self.assertFalse(t.is_alive(), "stream still open after the server exited")
        self.assertEqual(got[-1], grpc.StatusCode.UNAVAILABLE, got)
        self.assertLess(elapsed, self.GRACE_MS / 1000.0 + 3.0)


class SigtermDuringCalls(unittest.TestCase):
    GRACE_MS = 2000

    def setUp(self):
        self.server = twserver.TwServer(env={"TW_SHUTDOWN_GRACE_MS": str(self.GRACE_MS)}).start()
        self.addCleanup(self.server.cleanup)
        self.h = twserver.grpc_protos()["health"]

    def test_watch_sees_not_serving_then_ends_and_process_exits_zero(self):
        ch_watch = grpc.insecure_channel(self.server.addr)
        ch_unary = grpc.insecure_channel(self.server.addr)
        self.addCleanup(ch_watch.close)
        self.addCleanup(ch_unary.close)
        check, _ = twserver.health_stubs(ch_unary)
        _, watch = twserver.health_stubs(ch_watch)
        stream = watch(self.h.HealthCheckRequest(), timeout=30)
        self.assertEqual(next(stream).status, self.h.HealthCheckResponse.SERVING)

        stop = threading.Event()
        results = []  # (ok_count, codes seen) per worker
        lock = threading.Lock()

        def hammer():
            ok, codes = 0, set()
            while not stop.is_set():
                try:
                    check(self.h.HealthCheckRequest(), timeout=5)
                    ok += 1
                except grpc.RpcError as e:
                    codes.add(e.code())
                    if e.code() == grpc.StatusCode.UNAVAILABLE:
                        break
            with lock:
                results.append((ok, codes))

        workers = [threading.Thread(target=hammer, daemon=True) for _ in range(4)]
        for w in workers:
            w.start()
        time.sleep(0.3)
        t0 = time.monotonic()
        os.kill(self.server.proc.pid, signal.SIGTERM)

        statuses = []
        end_code = None
        try:
            for msg in stream:
                statuses.append(msg.status)
        except grpc.RpcError as e:
            end_code = e.code()
        self.assertEqual(statuses[:1], [self.h.HealthCheckResponse.NOT_SERVING],
                         "watch must get NOT_SERVING before the stream ends: %r" % statuses)
        self.assertNotIn(self.h.HealthCheckResponse.SERVING, statuses)
        self.assertEqual(end_code, grpc.StatusCode.UNAVAILABLE)

        rc = self.server.stop(timeout=self.GRACE_MS / 1000.0 + 10)
        elapsed = time.monotonic() - t0
        stop.set()
        for w in workers:
            w.join(timeout=15)
            self.assertFalse(w.is_alive(), "a unary call hung across shutdown")
        self.assertEqual(rc, 0, self.server.stderr_text()[-3000:])
        self.assertEqual(twserver.sanitizer_reports(self.server.stderr_text()), [])
        self.assertLess(elapsed, self.GRACE_MS / 1000.0 + 3.0, "shutdown exceeded the grace")
        self.assertTrue(all(ok > 0 for ok, _ in results), results)
        allowed = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}
        for _, codes in results:
            self.assertLessEqual(codes, allowed, results)
        self.assertIsNotNone(self.server.wait_for_event("stopped", timeout=1))

    def test_sigint_also_drains_and_exits_zero(self):
        rc = self.server.stop(sig=signal.SIGINT, timeout=self.GRACE_MS / 1000.0 + 10)
        self.assertEqual(rc, 0, self.server.stderr_text()[-3000:])
        self.assertEqual(twserver.sanitizer_reports(self.server.stderr_text()), [])

    def test_idle_server_stops_quickly(self):
        t0 = time.monotonic()
        self.server.stop_and_check(self)
        self.assertLess(time.monotonic() - t0, self.GRACE_MS / 1000.0 + 2.0)


if __name__ == "__main__":
    twserver.main()

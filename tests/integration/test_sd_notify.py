"""integ_sd_notify: the systemd notify protocol (Type=notify, WatchdogSec=) against a fake
service manager: a unix datagram socket of this test passed as NOTIFY_SOCKET.

- READY=1 arrives only once the server serves: the moment it is received, a brand-new
  Health/Check on the server's (pre-chosen) port must answer SERVING and /readyz 200. A READY
  sent before the listener or the store is up fails here (connection refused / NOT_SERVING).
  In the server's own log the "ready" line follows "listening" and the first SERVING.
- WATCHDOG=1 keeps coming (WATCHDOG_USEC=1 s: a ping every half interval).
- STOPPING=1 arrives on SIGTERM, before the process exits 0; no READY=1 twice.
- Without NOTIFY_SOCKET nothing changes (every other test).
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

import grpc

import twserver


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class FakeManager:
    """NOTIFY_SOCKET: collects (monotonic time, {key: value}) per datagram."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="twnotify-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []

    def recv(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return None
        fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
        self.messages.append((time.monotonic(), fields))
        return fields

    def wait_for(self, key, timeout):
        deadline = time.monotonic() + timeout * twserver.TIMEOUT_SCALE
        while time.monotonic() < deadline:
            m = self.recv(max(0.05, deadline - time.monotonic()))
            if m is not None and key in m:
                return m
        return None

    def count(self, key):
        return sum(1 for _, m in self.messages if key in m)

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class SdNotify(unittest.TestCase):
    def test_ready_after_serving_watchdog_and_stopping(self):
        mgr = FakeManager()
        self.addCleanup(mgr.close)
        port, ops = free_port(), free_port()
        srv = twserver.TwServer(env={
            "NOTIFY_SOCKET": mgr.path, "WATCHDOG_USEC": "1000000",
            "TW_LISTEN": "127.0.0.1:%d" % port, "TW_OPS_LISTEN": "127.0.0.1:%d" % ops})
        self.addCleanup(srv.cleanup)
        # Start without TwServer.start's own waits: READY must be judged the instant it comes.
        srv.workdir = tempfile.mkdtemp(prefix="twinteg-")
        if twserver.backend_url():
            srv.env_extra["TW_DATABASE_URL"] = twserver.pg_url_for(srv.workdir)
        srv.proc = subprocess.Popen(twserver.server_command(), cwd=srv.workdir,
                                    env=twserver.base_env(srv.env_extra),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
        srv._reader = threading.Thread(target=srv._read_stderr, daemon=True)
        srv._reader.start()

        ready = mgr.wait_for("READY", timeout=30)
        self.assertIsNotNone(ready, "no READY=1; stderr:\n" + srv.stderr_text()[-3000:])
        # Judged at once: the listener serves and the store answers.
        h = twserver.grpc_protos()["health"]
        with grpc.insecure_channel("127.0.0.1:%d" % port) as ch:
            check, _ = twserver.health_stubs(ch)
            resp = check(h.HealthCheckRequest(service=""), timeout=2)
        self.assertEqual(resp.status, h.HealthCheckResponse.SERVING)
        with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % ops, timeout=2) as r:
            self.assertEqual(r.status, 200)
        self.assertEqual(ready.get("READY"), "1")
        self.assertEqual(ready.get("STATUS"), "serving")

        srv.wait_for(lambda ls: any('"event":"ready"' in ln for ln in ls), 5)
        lines = srv.lines()

        def index(pred):
            return next((i for i, ln in enumerate(lines) if pred(ln)), None)

        i_listen = index(lambda ln: '"event":"listening"' in ln)
        i_serving = index(lambda ln: '"event":"health"' in ln and "NOT_SERVING" not in ln)
        i_ready = index(lambda ln: '"event":"ready"' in ln)
        self.assertIsNotNone(i_ready, "\n".join(lines[-20:]))
        self.assertLess(i_listen, i_ready)
        self.assertLess(i_serving, i_ready)

        # The watchdog: pings every ~0.5 s while the completion queues progress.
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3.0 * twserver.TIMEOUT_SCALE:
            mgr.recv(0.2)
        pings = [t for t, m in mgr.messages if m.get("WATCHDOG") == "1"]
        self.assertGreaterEqual(len(pings), 4, mgr.messages)
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        self.assertLess(max(gaps), 1.0 * twserver.TIMEOUT_SCALE, gaps)  # inside WATCHDOG_USEC

        os.kill(srv.proc.pid, signal.SIGTERM)
        stopping = mgr.wait_for("STOPPING", timeout=10)
        self.assertIsNotNone(stopping, mgr.messages)
        self.assertEqual(stopping.get("STOPPING"), "1")
        rc = srv.stop()
        self.assertEqual(rc, 0, srv.stderr_text()[-3000:])
        self.assertEqual(mgr.count("READY"), 1)
        self.assertEqual(twserver.sanitizer_reports(srv.stderr_text()), [])


if __name__ == "__main__":
    unittest.main()

"""Start the shipped HAProxy front (deploy/haproxy/haproxy.cfg) for a test.

Purpose: the attack tests measure the supported deployment, so they run deploy/'s own
configuration file unchanged; only its environment variables differ (free loopback ports, a
throw-away certificate from twserver.make_pki). Stopped by PID with SIGTERM (SIGKILL after a
bounded wait).
"""

import os
import shutil
import signal
import socket
import subprocess
import time

from twserver import SOURCE_DIR

# TW_TEST_FRONT_CONFIG: another file to run instead (e.g. an older one, to see a test fail)
CONFIG = os.environ.get("TW_TEST_FRONT_CONFIG") or os.path.join(SOURCE_DIR, "deploy",
                                                                 "haproxy", "haproxy.cfg")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Front:
    def __init__(self, backend_port, pki, workdir, ops_port=None, max_message_bytes=None):
        self.binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        self.port = free_port()
        self.stats_port = free_port()
        pem = os.path.join(workdir, "front.pem")
        with open(pem, "wb") as out:
            for k in ("server.pem", "server.key"):
                with open(pki[k], "rb") as f:
                    out.write(f.read())
        self.env = dict(os.environ, TW_FRONT_BIND="127.0.0.1:%d" % self.port,
                        TW_FRONT_CERT=pem, TW_BACKEND="127.0.0.1:%d" % backend_port,
                        TW_FRONT_STATS="127.0.0.1:%d" % self.stats_port,
                        # the readiness probe's backend; a closed port when the test has none
                        TW_FRONT_OPS="127.0.0.1:%d" % (ops_port or 1))
        if max_message_bytes is not None:  # tradewinkd's TW_MAX_MESSAGE_BYTES, the same cap
            self.env["TW_MAX_MESSAGE_BYTES"] = str(max_message_bytes)
        self.proc = None

    def start(self):
        if not os.access(self.binary, os.X_OK):
            raise RuntimeError("haproxy not installed (scripts/deps.sh installs it)")
        self.proc = subprocess.Popen([self.binary, "-db", "-f", CONFIG], env=self.env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("haproxy exited: " + self.proc.stderr.read().decode())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("haproxy did not listen within 10 s")

    def stop(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        err = self.proc.stderr.read().decode("utf-8", "replace")
        self.proc.stderr.close()
        return err

"""File-descriptor exhaustion (CVE-2023-4785): gRPC core 1.51.1 stops accepting for good
after accept4 fails once with EMFILE.

tradewinkd's fd limit is lowered (prlimit) to 160, connections from 127.0.0.2 are opened
until grpc logs "Too many open files" (at most 400), then all are closed. What must hold: the
listener answers a fresh Health/Check again within seconds, or /readyz turns 503 and the
process exits with status 3 (restart me) within 25 s (10 s of failed
checks, then a graceful drain). Old behaviour: the listener never
accepts again, /readyz keeps answering 200 and the process keeps running.

The same in the direct TLS and mTLS modes (tls_common's throw-away PKI): there the self-check
does not verify tradewinkd's own certificate and, under mTLS, presents one made in memory at
start. Before that, TLS modes had no self-check at all (/readyz 200 with a dead listener).
"""

import json
import resource
import socket
import time
import unittest
import urllib.request

import grpc

import tls_common
import twserver

FD_LIMIT = 160


def ops_status(port, path):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open("http://127.0.0.1:%d%s" % (port, path), timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def fresh_health_check(addr, pki=None, mtls=False):
    opts = [("grpc.use_local_subchannel_pool", 1)]
    if pki is None:
        ch = grpc.insecure_channel(addr, options=opts)
    else:
        kw = {"root_certificates": pki.data("ca.pem")}
        if mtls:
            kw["private_key"] = pki.data("client.key")
            kw["certificate_chain"] = pki.data("client.pem")
        ch = grpc.secure_channel(addr, grpc.ssl_channel_credentials(**kw), options=opts)
    try:
        check, _ = twserver.health_stubs(ch)
        check(twserver.grpc_protos()["health"].HealthCheckRequest(), timeout=1.0)
        return True
    except grpc.RpcError:
        return False
    finally:
        ch.close()


class FdExhaustion(unittest.TestCase):
    def test_listener_recovers_or_process_reports_and_exits(self):
        self.run_mode("plaintext")

    def test_tls_listener_recovers_or_process_reports_and_exits(self):
        self.run_mode("tls")

    def test_mtls_listener_recovers_or_process_reports_and_exits(self):
        self.run_mode("mtls")

    def run_mode(self, mode):
        pki = None
        env = {}
        if mode != "plaintext":
            pki = tls_common.Pki()
            self.addCleanup(pki.cleanup)
            env = pki.server_env(mtls=mode == "mtls")
        srv = twserver.TwServer(env=env)
        srv.start()

        def fresh_health_check_(addr):
            return fresh_health_check(addr, pki, mode == "mtls")
        try:
            self.assertTrue(fresh_health_check_(srv.addr))
            ops = srv.listening["ops_port"]
            self.assertEqual(ops_status(ops, "/readyz"), 200, "%s: not ready at start" % mode)
            resource.prlimit(srv.proc.pid, resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))
            conns = []
            t0 = time.monotonic()
            exhausted = False
            while len(conns) < 400 and time.monotonic() - t0 < 15:
                s = socket.socket()
                s.bind(("127.0.0.2", 0))
                s.settimeout(2)
                try:
                    s.connect(("127.0.0.1", srv.port))
                except OSError:
                    s.close()
                    break
                conns.append(s)
                if "Too many open files" in srv.stderr_text():
                    exhausted = True
                    break
            time.sleep(0.5)
            exhausted = exhausted or "Too many open files" in srv.stderr_text()
            for s in conns:
                s.close()
            self.assertTrue(exhausted, "grpc never hit EMFILE with %d connections" % len(conns))
            freed = time.monotonic()
            outcome, readyz_seen = None, set()
            while time.monotonic() - freed < 25:
                if not srv.alive():
                    outcome = "exited"
                    break
                readyz_seen.add(ops_status(ops, "/readyz"))
                if fresh_health_check_(srv.addr):
                    outcome = "listener recovered"
                    break
                time.sleep(0.5)
            report = {"attack": "fd_exhaustion", "mode": mode, "connections": len(conns),
                      "outcome": outcome, "seconds_after_free": round(time.monotonic() - freed, 1),
                      "readyz_statuses": sorted(str(x) for x in readyz_seen),
                      "exit_status": srv.proc.poll()}
            print(json.dumps(report), flush=True)
            self.assertIsNotNone(outcome, report)
            if outcome == "exited":
                srv.stop()
                self.assertEqual(srv.returncode, 3, report)
                self.assertIn("503", report["readyz_statuses"], report)
                self.assertTrue(srv.events("listener_check"), report)
        finally:
            srv.cleanup()


if __name__ == "__main__":
    twserver.main()

"""Slow clients on the ops port (slowloris) must not starve /healthz and /readyz.

1,000 HTTP/1.1 connections from 127.0.0.2 each send one header line per second and never
finish (refused ones are reopened once a second), for 12 s, while GET /healthz and /readyz
from 127.0.0.1 must all answer 200 with p99 < 250 ms. Old setup (one shared cap of 256
connections, no per-address limit): 270 such connections made both unreachable.
"""

import json
import time
import unittest

import h2attack
import twserver

P99_LIMIT_MS = 250.0


class OpsSlowClients(unittest.TestCase):
    def test_slow_clients_from_one_peer_do_not_starve_probes_from_another(self):
        with twserver.TwServer() as srv:
            ops = srv.listening["ops_port"]
            sampler = h2attack.ProcSampler(srv.proc.pid).start()
            probes = [h2attack.HttpProber("http://127.0.0.1:%d%s" % (ops, path),
                                          interval_s=0.1, timeout_s=2.0).start()
                      for path in ("/healthz", "/readyz")]
            slow = h2attack.SlowHttp("127.0.0.1", ops, count=1000, source="127.0.0.2").start()
            time.sleep(12)
            slow.stop()
            healthz, readyz = (p.stop() for p in probes)
            report = {"attack": "ops_slow_clients", "attacker": {
                "opened": slow.opened, "still_open": slow.alive, "reopened": slow.reopened},
                "healthz": healthz, "readyz": readyz, "tradewinkd": sampler.stop()}
            print(json.dumps(report), flush=True)
            for name, s in (("healthz", healthz), ("readyz", readyz)):
                self.assertEqual(s["failures"], 0, report)
                self.assertLess(s["p99_ms"], P99_LIMIT_MS, report)
            srv.stop_and_check(self)


if __name__ == "__main__":
    twserver.main()

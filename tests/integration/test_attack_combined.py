"""Three attacks at once against the supported deployment (issue 19).

From 127.0.0.2, at the same time and for 10 s: rounds of rapid reset through the HAProxy
front (2 connections x 10,000 HEADERS + RST_STREAM pairs each), rounds of the CONTINUATION
header flood through the front (8 connections x 8 MiB each), and 1,000 slow HTTP/1.1 clients
on tradewinkd's ops port. Meanwhile a
Health/Check from 127.0.0.1 through the front every 50 ms must keep p99 < 250 ms with no
failure, /readyz from 127.0.0.1 must keep answering 200, and tradewinkd's RSS must stay within
+64 MB and its CPU under 2 s (attack_common). TW_ATTACK_DIRECT=1 aims the two HTTP/2 attacks at
tradewinkd itself (the old setup).
"""

import threading
import time

import attack_common
import h2attack
import twserver

ATTACK_S = 10.0  # rounds of both HTTP/2 attacks start until then; slow clients stay


class Combined(attack_common.AttackCase):
    def test_three_attacks_at_once_keep_health_fast_and_memory_bounded(self):
        ops = self.srv.listening["ops_port"]
        readyz = h2attack.HttpProber("http://127.0.0.1:%d/readyz" % ops, interval_s=0.2,
                                     timeout_s=2.0)

        def attack(port, ca):
            results = {}
            slow = h2attack.SlowHttp("127.0.0.1", ops, count=1000, source="127.0.0.2").start()
            readyz.start()

            stop_at = time.monotonic() + ATTACK_S

            def repeat(name, fn):
                # each round is bounded; rounds repeat until ATTACK_S have passed
                rounds, total = 0, {}
                while time.monotonic() < stop_at:
                    for k, v in fn().items():
                        total[k] = round(total.get(k, 0) + v, 2)
                    rounds += 1
                total["rounds"] = rounds
                results[name] = total

            def reset():
                repeat("rapid_reset", lambda: h2attack.rapid_reset(
                    "127.0.0.1", port, pairs=10000, connections=2, tls_ca=ca, deadline_s=10.0))

            def flood():
                repeat("header_flood", lambda: h2attack.header_flood(
                    "127.0.0.1", port, connections=8, tls_ca=ca, deadline_s=10.0))

            ts = [threading.Thread(target=f, daemon=True) for f in (reset, flood)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(timeout=30)
            slow.stop()
            results["ops_slow"] = {"opened": slow.opened, "reopened": slow.reopened}
            results["readyz"] = readyz.stop()
            return results

        report = self.run_attack("combined", attack)
        r = report["attacker"]["readyz"]
        self.assertEqual(r["failures"], 0, report)
        self.assertLess(r["p99_ms"], attack_common.P99_LIMIT_MS, report)


if __name__ == "__main__":
    twserver.main()

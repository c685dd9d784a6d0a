"""Rapid reset (CVE-2023-44487) against the supported deployment.

4 connections from 127.0.0.2, 20,000 HEADERS + RST_STREAM(CANCEL) pairs each (bounded by
20 s), while Health/Check from 127.0.0.1 must keep p99 < 250 ms and tradewinkd's RSS must
stay within +64 MB. Old setup (TW_ATTACK_DIRECT=1, grpc core 1.51.1 exposed): +150-350 MB.
"""

import attack_common
import h2attack
import twserver


class RapidReset(attack_common.AttackCase):
    def test_rapid_reset_keeps_health_fast_and_memory_bounded(self):
        self.run_attack("rapid_reset", lambda port, ca: h2attack.rapid_reset(
            "127.0.0.1", port, pairs=20000, connections=4, tls_ca=ca, deadline_s=20.0))


if __name__ == "__main__":
    twserver.main()

"""HPACK/CONTINUATION header flood (CVE-2023-33953) against the supported deployment.

8 connections from 127.0.0.2, each one header value of up to 8 MiB in CONTINUATION frames
(bounded by 20 s), while Health/Check from 127.0.0.1 must keep p99 < 250 ms and tradewinkd's
RSS must stay within +64 MB. Old setup (TW_ATTACK_DIRECT=1): 12-14 s of server CPU in 5 s
and health checks timing out.
"""

import attack_common
import h2attack
import twserver


class HeaderFlood(attack_common.AttackCase):
    def test_header_flood_keeps_health_fast_and_memory_bounded(self):
        self.run_attack("header_flood", lambda port, ca: h2attack.header_flood(
            "127.0.0.1", port, connections=8, value_bytes=8 << 20, tls_ca=ca, deadline_s=20.0))


if __name__ == "__main__":
    twserver.main()

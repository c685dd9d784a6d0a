"""fault_jwks_down: the JWKS provider goes down, then answers slowly; authenticated calls keep
working on the cached keys.

tradewinkd runs in jwks mode (TW_AUTH_MODE=jwks) against an HTTPS JWKS endpoint of this test's
own (a CA and server certificate made with the openssl CLI, trusted via TW_JWKS_CA_FILE) with
the shortest cache TTL allowed (10 s). Tokens are RS256, signed with the test's key via
python3-jwt, each with a fresh jti so the server's verified-token cache never answers for them.

Phases: provider up (keys fetched once); provider down for longer than the TTL (connections
refused: calls keep succeeding on the stale keys); provider back but answering after 6 s,
past the server's 3 s fetch timeout, for longer than the TTL (calls keep succeeding and stay
fast: nobody waits on the refresh). Negative controls in every phase: a token with an unknown
kid and a token signed by another key under the known kid are UNAUTHENTICATED, so the calls
that pass were really verified.
"""

import base64
import os
import time
import unittest

import grpc
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from faultlib import (Api, JwksProvider, TwServer, http_get, wait_until)

ISSUER = "https://issuer.fault.test"
TTL_S = 10


class JwksDownTest(unittest.TestCase):
    def setUp(self):
        self.prov = JwksProvider().start()
        self.env = {"TW_AUTH_MODE": "jwks", "TW_JWKS_URL": self.prov.url,
                    "TW_JWKS_CA_FILE": self.prov.ca_file, "TW_JWT_ISSUER": ISSUER,
                    "TW_JWKS_CACHE_TTL_S": str(TTL_S),
                    "TW_VAULT_MASTER_KEYS": "v1:" + base64.b64encode(os.urandom(32)).decode()}
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_pem = other.private_bytes(serialization.Encoding.PEM,
                                             serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption())

    def tearDown(self):
        self.prov.cleanup()

    def forged(self, kid):
        now = int(time.time())
        return jwt.encode({"sub": "mallory", "iss": ISSUER, "iat": now, "exp": now + 600},
                          self.other_pem, algorithm="RS256", headers={"kid": kid})

    def check_phase(self, api, phase, n=5):
        """n calls with fresh tokens succeed, each quickly; forged tokens are refused."""
        worst = 0.0
        for i in range(n):
            tok = self.prov.token("user-%s-%d" % (phase, i % 2), ISSUER)
            t0 = time.monotonic()
            who = api.call("Auth", "WhoAmI", token=tok, timeout=20)
            api.call("Orders", "GetAccountSettings", token=tok, timeout=20)
            worst = max(worst, time.monotonic() - t0)
            self.assertEqual(who.subject, "user-%s-%d" % (phase, i % 2))
        self.assertLess(worst, 2.0, "%s: an authenticated call waited %.1fs" % (phase, worst))
        for bad in (self.forged(self.prov.kid),):
            try:
                api.call("Auth", "WhoAmI", token=bad, timeout=20)
                self.fail("%s: forged token accepted" % phase)
            except grpc.RpcError as e:
                self.assertEqual(e.code(), grpc.StatusCode.UNAUTHENTICATED)
        return worst

    def unknown_kid_refused(self, api):
        try:
            api.call("Auth", "WhoAmI", token=self.forged("no-such-kid"), timeout=20)
            return False
        except grpc.RpcError as e:
            return e.code() == grpc.StatusCode.UNAUTHENTICATED

    def test_cached_keys_serve_while_provider_down_or_slow(self):
        with TwServer(env=self.env) as srv:
            api = Api(srv.addr)
            w_up = self.check_phase(api, "up")
            self.assertTrue(self.unknown_kid_refused(api))
            hits_up = self.prov.hits

            self.prov.down()
            t0 = time.monotonic()
            w_down1 = self.check_phase(api, "down-fresh")
            time.sleep(TTL_S + 2 - (time.monotonic() - t0))  # the set is now past its TTL
            w_down2 = self.check_phase(api, "down-stale")
            self.assertTrue(self.unknown_kid_refused(api))

            self.prov.start()
            self.prov.mode = "slow"
            t0 = time.monotonic()
            w_slow = 0.0
            while time.monotonic() - t0 < TTL_S + 4:
                w_slow = max(w_slow, self.check_phase(api, "slow", n=2))
                time.sleep(1)
            slow_hits = self.prov.hits

            self.prov.mode = "up"
            _, metrics = http_get(srv.listening["ops_port"], "/metrics")
            fetch_lines = [ln for ln in metrics.splitlines()
                           if ln.startswith("tradewink_jwks_fetches_total")]
            self.assertTrue(any('result="error"' in ln or "fail" in ln for ln in fetch_lines),
                            "failed refreshes were not counted: %s" % fetch_lines)
            # Once the provider answers again the keys are refreshed (bounded wait).
            refreshed = wait_until(lambda: self.prov.hits > slow_hits, 20, 0.5)
            self.check_phase(api, "recovered")
            print("fault_jwks_down: worst call latency up %.3fs, down (fresh keys) %.3fs, down "
                  "(stale keys) %.3fs, slow provider %.3fs; provider hits up %d, during slow "
                  "%d; refreshed after recovery %s; %s"
                  % (w_up, w_down1, w_down2, w_slow, hits_up, slow_hits, bool(refreshed),
                     "; ".join(fetch_lines)), flush=True)
            api.close()
            srv.stop_and_check(self)


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""integ_tls: tradewinkd with TLS (server certificate from a CA made by openssl in the test).

Purpose: the shared transport checks over TLS, plus: clients that do not trust the CA, or
check another host name, or speak plaintext, are refused; malformed HTTP/2 inside TLS drops
the connection only; plaintext on a non-loopback address is refused at start while TLS on
0.0.0.0 starts (traffic still goes to 127.0.0.1 only).
"""

import base64
import os
import unittest

import grpc

import core_checks
import tls_common
import twserver

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class TlsCore(core_checks.CoreChecks, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = tls_common.Pki()
        cls.server = twserver.TwServer(env=cls.pki.server_env()).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop_and_check(cls("test_health_check_overall_is_serving"))
        finally:
            cls.server.cleanup()
            cls.pki.cleanup()

    def channel(self):
        return self.pki.channel(self.server.addr)

    def test_listening_line_reports_tls(self):
        self.assertEqual(self.server.listening.get("tls"), "tls")

    def test_host_name_localhost_verifies(self):
        with self.pki.channel(self.server.addr, name_override="localhost") as ch:
            self.assertEqual(tls_common.health_status(self, ch), 1)

    def test_wrong_host_name_is_refused(self):
        with self.pki.channel(self.server.addr, name_override="evil.example") as ch:
            tls_common.assert_refused(self, ch)
        self.assertAlive()

    def test_client_trusting_another_ca_is_refused(self):
        with self.pki.channel(self.server.addr, ca="other_ca.pem") as ch:
            tls_common.assert_refused(self, ch)
        self.assertAlive()

    def test_plaintext_client_is_refused(self):
        with grpc.insecure_channel(self.server.addr) as ch:
            tls_common.assert_refused(self, ch)
        self.assertAlive()

    def test_client_certificate_is_optional_without_client_ca(self):
        with self.pki.channel(self.server.addr, client="client") as ch:
            self.assertEqual(tls_common.health_status(self, ch), 1)

    def test_malformed_frame_inside_tls_drops_connection(self):
        s = self.pki.raw_tls_socket(self.server.port)
        self.assertEqual(s.selected_alpn_protocol(), "h2")
        tls_common.expect_close(self, s, PREFACE + b"\x00\x00\x05\x04\x00\x00\x00\x00\x00" + b"x" * 5)
        self.assertAlive()

    def test_tls_garbage_instead_of_handshake_drops_connection(self):
        import socket

        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=5)
        tls_common.expect_close(self, s, b"\x16\x03\x01\xff\xff" + os.urandom(64))
        self.assertAlive()


class NonLoopbackListen(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = tls_common.Pki()
        # Outside dev mode the server needs a verification key and vault master keys.
        cls.pubkey = os.path.join(cls.pki.dir, "jwt_pub.pem")
        twserver.openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                         "-out", os.path.join(cls.pki.dir, "jwt.key"))
        twserver.openssl("pkey", "-in", os.path.join(cls.pki.dir, "jwt.key"), "-pubout",
                         "-out", cls.pubkey)
        cls.nondev = {
            "TW_AUTH_MODE": "pem",
            "TW_JWT_PUBLIC_KEY_FILE": cls.pubkey,
            "TW_VAULT_MASTER_KEYS": "v1:" + base64.b64encode(os.urandom(32)).decode(),
        }

    @classmethod
    def tearDownClass(cls):
        cls.pki.cleanup()

    def test_plaintext_on_any_address_is_refused_with_clear_message(self):
        for listen in ("0.0.0.0:0", "[::]:0"):
            for extra in ({}, self.nondev):
                with self.subTest(listen=listen, auth=extra.get("TW_AUTH_MODE", "dev")):
                    env = dict(extra, TW_LISTEN=listen)
                    rc, out, err = twserver.run_once(env)
                    self.assertEqual(rc, 2, err)
                    line = [ln for ln in err.splitlines() if ln.startswith("TW_LISTEN")]
                    self.assertEqual(len(line), 1, err)
                    self.assertIn("plaintext", line[0])
                    self.assertIn("TW_TLS_CERT_FILE", line[0])
                    self.assertNotIn("listening", err)

    def test_tls_on_any_address_starts_and_serves_loopback(self):
        env = dict(self.nondev, TW_LISTEN="0.0.0.0:0", **self.pki.server_env())
        with twserver.TwServer(env=env) as srv:
            self.assertEqual(srv.listening.get("tls"), "tls")
            with self.pki.channel("127.0.0.1:%d" % srv.port) as ch:
                self.assertEqual(tls_common.health_status(self, ch), 1)
            srv.stop_and_check(self)

    def test_dev_auth_on_any_address_is_refused_even_with_tls(self):
        env = dict(TW_LISTEN="0.0.0.0:0", **self.pki.server_env())
        rc, _, err = twserver.run_once(env)
        self.assertEqual(rc, 2, err)
        self.assertTrue(any(ln.startswith("TW_AUTH_MODE") for ln in err.splitlines()), err)


if __name__ == "__main__":
    twserver.main()

"""integ_mtls: tradewinkd with TW_TLS_CLIENT_CA_FILE set, so every client needs a certificate.

Purpose: the shared transport checks with a client certificate from the CA, and the negative
cases: no client certificate, a certificate from another CA, and plaintext are all refused at
connect (UNAVAILABLE) while the server keeps serving good clients.
"""

import unittest

import grpc

import core_checks
import tls_common
import twserver

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class MtlsCore(core_checks.CoreChecks, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = tls_common.Pki()
        cls.server = twserver.TwServer(env=cls.pki.server_env(mtls=True)).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop_and_check(cls("test_health_check_overall_is_serving"))
        finally:
            cls.server.cleanup()
            cls.pki.cleanup()

    def channel(self):
        return self.pki.channel(self.server.addr, client="client")

    def test_listening_line_reports_mtls(self):
        self.assertEqual(self.server.listening.get("tls"), "mtls")

    def test_client_without_certificate_is_refused(self):
        with self.pki.channel(self.server.addr) as ch:
            tls_common.assert_refused(self, ch)
        self.assertAlive()

    def test_client_with_certificate_from_another_ca_is_refused(self):
        with self.pki.channel(self.server.addr, client="other_client") as ch:
            tls_common.assert_refused(self, ch)
        self.assertAlive()

    def test_plaintext_client_is_refused(self):
        with grpc.insecure_channel(self.server.addr) as ch:
            tls_common.assert_refused(self, ch)
        self.assertAlive()

    def test_raw_tls_without_certificate_gets_no_http2(self):
        # A handshake without a client certificate must fail; no HTTP/2 byte may come back.
        got = b""
        try:
            s = self.pki.raw_tls_socket(self.server.port)
            try:
                s.sendall(PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
                s.settimeout(5)
                got = s.recv(65536)
            finally:
                s.close()
        except OSError:
            pass  # ssl.SSLError is an OSError: refused during or right after the handshake
        self.assertEqual(got, b"")
        self.assertAlive()

    def test_raw_tls_with_certificate_then_garbage_drops_connection(self):
        s = self.pki.raw_tls_socket(self.server.port, client="client")
        tls_common.expect_close(self, s, PREFACE + b"\xff" * 64)
        self.assertAlive()


if __name__ == "__main__":
    twserver.main()

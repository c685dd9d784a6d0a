"""TLS fixtures shared by integ_tls and integ_mtls.

Purpose: a throw-away PKI made with the openssl CLI per test class (CA, server certificate for
IP:127.0.0.1 and DNS:localhost, a client certificate from the same CA, and an unrelated CA with
its own client), channel factories for python3-grpcio, and a raw TLS socket with ALPN h2 for
malformed-frame checks. All files live in a temporary directory removed at class teardown.
"""

import shutil
import socket
import ssl
import tempfile
import time

import grpc

import twserver

CONNECT_TIMEOUT_S = 10.0


class Pki:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="twpki-")
        self.files = twserver.make_pki(self.dir)

    def __getitem__(self, k):
        return self.files[k]

    def data(self, k):
        return twserver.read(self.files[k])

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def server_env(self, mtls=False):
        env = {"TW_TLS_CERT_FILE": self["server.pem"], "TW_TLS_KEY_FILE": self["server.key"]}
        if mtls:
            env["TW_TLS_CLIENT_CA_FILE"] = self["ca.pem"]
        return env

    def channel(self, addr, ca="ca.pem", client=None, name_override=None):
        kw = {"root_certificates": self.data(ca)}
        if client:
            kw["private_key"] = self.data(client + ".key")
            kw["certificate_chain"] = self.data(client + ".pem")
        opts = []
        if name_override:
            opts.append(("grpc.ssl_target_name_override", name_override))
        return grpc.secure_channel(addr, grpc.ssl_channel_credentials(**kw), options=opts)

    def raw_tls_socket(self, port, client=None):
        """A TLS socket to 127.0.0.1:port that negotiated ALPN h2."""
        ctx = ssl.create_default_context(cafile=self["ca.pem"])
        ctx.set_alpn_protocols(["h2"])
        if client:
            ctx.load_cert_chain(self[client + ".pem"], self[client + ".key"])
        raw = socket.create_connection(("127.0.0.1", port), timeout=CONNECT_TIMEOUT_S)
        s = ctx.wrap_socket(raw, server_hostname="localhost")
        return s


def expect_close(testcase, s, data, timeout=5.0):
    """Send data on s and assert the peer closes the connection within timeout."""
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except (ConnectionResetError, ssl.SSLError, OSError):
                return
            if not chunk:
                return
        testcase.fail("server kept the TLS connection open after malformed input")
    finally:
        s.close()


def health_status(testcase, ch):
    h = twserver.grpc_protos()["health"]
    check, _ = twserver.health_stubs(ch)
    return check(h.HealthCheckRequest(), timeout=CONNECT_TIMEOUT_S).status


def assert_refused(testcase, ch, code=grpc.StatusCode.UNAVAILABLE):
    h = twserver.grpc_protos()["health"]
    check, _ = twserver.health_stubs(ch)
    with testcase.assertRaises(grpc.RpcError) as cm:
        check(h.HealthCheckRequest(), timeout=CONNECT_TIMEOUT_S)
    testcase.assertEqual(cm.exception.code(), code, cm.exception.details())

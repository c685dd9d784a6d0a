"""integ_front_readyz: Fly.io's service-level readiness check reaches tradewinkd's /readyz
through the shipped HAProxy front (deploy/haproxy/haproxy.cfg), and nothing else of the ops
port does.

deploy/fly.toml gates routing on `[[services.http_checks]]` GET /readyz over https on the
service's own port (50051, the front), since service checks cannot name another port. Here:
GET and HEAD /readyz through the front answer what the ops port answers (200 while ready);
/metrics, /healthz, webhooks and a POST to /readyz get 403 from the front; gRPC still works.
"""

import shutil
import ssl
import tempfile
import unittest
import urllib.error
import urllib.request

import grpc

import front
import twserver


class FrontReadyz(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="twfront-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.pki = twserver.make_pki(self.tmp)
        self.srv = twserver.TwServer().start()
        self.addCleanup(self.srv.cleanup)
        self.front = front.Front(self.srv.port, self.pki, self.tmp,
                                 ops_port=self.srv.listening["ops_port"]).start()
        self.addCleanup(self.front.stop)
        self.ctx = ssl.create_default_context(cafile=self.pki["ca.pem"])

    def request(self, path, method="GET"):
        req = urllib.request.Request("https://127.0.0.1:%d%s" % (self.front.port, path),
                                     method=method, data=b"{}" if method == "POST" else None)
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def test_only_readyz_passes_the_front(self):
        status, body = self.request("/readyz")
        self.assertEqual(status, 200, body)
        self.assertEqual(self.request("/readyz", "HEAD")[0], 200)
        for path, method in (("/metrics", "GET"), ("/healthz", "GET"),
                             ("/webhooks/broker", "POST"), ("/readyz", "POST"),
                             ("/readyz/../metrics", "GET")):
            self.assertEqual(self.request(path, method)[0], 403, (method, path))
        with open(self.pki["ca.pem"], "rb") as f:
            creds = grpc.ssl_channel_credentials(f.read())
        with grpc.secure_channel("127.0.0.1:%d" % self.front.port, creds) as ch:
            check, _ = twserver.health_stubs(ch)
            h = twserver.grpc_protos()["health"]
            self.assertEqual(check(h.HealthCheckRequest(), timeout=5).status,
                             h.HealthCheckResponse.SERVING)
        self.srv.stop_and_check(self)


if __name__ == "__main__":
    unittest.main()

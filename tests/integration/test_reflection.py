"""integ_reflection: server reflection (v1 and v1alpha) with clients nobody here wrote.

Purpose: `buf curl` (npm @bufbuild/buf) with no schema lists every tradewink.v1 method and calls
methods from reflection alone; python3-grpcio with message classes generated at test time from
/usr/share/grpc-proto reflection.proto drives both protocol versions request by request on one
stream: list_services, file_by_filename (descriptors parse and load into a fresh pool),
file_containing_symbol for messages, services, methods and nested enums, extensions, and
malformed requests (unknown, empty, huge) that must get error responses while the SAME stream
keeps answering.
"""

import json
import os
import queue
import shutil
import subprocess
import tempfile
import unittest

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool

import twserver

NOT_FOUND = grpc.StatusCode.NOT_FOUND.value[0]
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT.value[0]
STREAM_TIMEOUT_S = 60
SERVICES_EXTRA = {"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
                  "grpc.reflection.v1alpha.ServerReflection"}


def buf_path():
    p = os.environ.get("TW_BUF") or os.path.join(twserver.SOURCE_DIR, "proto", "node_modules",
                                                  ".bin", "buf")
    return p if os.access(p, os.X_OK) else None


class ReflStream:
    """One ServerReflectionInfo stream; ask() sends a request and returns its response."""

    def __init__(self, channel, mod, path):
        self.mod = mod
        self.q = queue.Queue()
        call = channel.stream_stream(
            path,
            request_serializer=mod.ServerReflectionRequest.SerializeToString,
            response_deserializer=mod.ServerReflectionResponse.FromString,
        )
        self.responses = call(iter(self.q.get, None), timeout=STREAM_TIMEOUT_S)

    def ask(self, **kw):
        req = self.mod.ServerReflectionRequest(**kw)
        self.q.put(req)
        return req, next(self.responses)

    def close(self):
        self.q.put(None)
        rest = list(self.responses)  # must end cleanly (status OK) after half-close
        return rest


class ReflectionProtocol:
    """Mixin: MOD (key in twserver.grpc_protos()) and PATH set by subclasses."""

    MOD = None
    PATH = None

    @classmethod
    def setUpClass(cls):
        cls.server = twserver.TwServer().start()
        cls.mod = twserver.grpc_protos()[cls.MOD]

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop_and_check(cls("test_list_services_has_every_service"))
        finally:
            cls.server.cleanup()

    def setUp(self):
        self.ch = grpc.insecure_channel(self.server.addr)
        self.s = ReflStream(self.ch, self.mod, self.PATH)

    def tearDown(self):
        try:
            self.assertEqual(self.s.close(), [])
        finally:
            self.ch.close()

    # helpers
    def files_of(self, resp):
        self.assertEqual(resp.WhichOneof("message_response"), "file_descriptor_response",
                         str(resp)[:500])
        out = []
        for raw in resp.file_descriptor_response.file_descriptor_proto:
            fd = descriptor_pb2.FileDescriptorProto()
            fd.ParseFromString(raw)
            out.append(fd)
        return out

    def assertError(self, resp, codes):
        self.assertEqual(resp.WhichOneof("message_response"), "error_response", str(resp)[:500])
        self.assertIn(resp.error_response.error_code, codes, resp.error_response)
        self.assertTrue(resp.error_response.error_message)

    def assertStillAnswers(self):
        _, resp = self.s.ask(list_services="")
        self.assertEqual(resp.WhichOneof("message_response"), "list_services_response")
        self.assertIn("grpc.health.v1.Health",
                      {x.name for x in resp.list_services_response.service})

    @staticmethod
    def declared_symbols(fd):
        pkg = fd.package + "." if fd.package else ""
        out = set()

        def msg(m, prefix):
            name = prefix + m.name
            out.add(name)
            for e in m.enum_type:
                out.add(name + "." + e.name)
            for n in m.nested_type:
                msg(n, name + ".")

        for m in fd.message_type:
            msg(m, pkg)
        for e in fd.enum_type:
            out.add(pkg + e.name)
        for s in fd.service:
            out.add(pkg + s.name)
            for m in s.method:
                out.add(pkg + s.name + "." + m.name)
        return out

    # list_services
    def test_list_services_has_every_service(self):
        req, resp = self.s.ask(list_services="")
        self.assertEqual(resp.WhichOneof("message_response"), "list_services_response")
        got = {x.name for x in resp.list_services_response.service}
        want = {r.split("/")[0] for r in twserver.tradewink_rpcs()} | SERVICES_EXTRA
        self.assertEqual(got, want)
        self.assertEqual(resp.original_request, req)

    # file_by_filename
    def test_file_by_filename_returns_file_and_deps_that_load(self):
        _, resp = self.s.ask(file_by_filename="tradewink/v1/orders.proto")
        files = self.files_of(resp)
        by_name = {f.name: f for f in files}
        self.assertEqual(files[0].name, "tradewink/v1/orders.proto")
        # closed under dependencies
        for f in files:
            for dep in f.dependency:
                self.assertIn(dep, by_name, "dependency %s of %s missing" % (dep, f.name))
        self.assertIn("google/protobuf/timestamp.proto", by_name)
        orders = by_name["tradewink/v1/orders.proto"]
        methods = {"tradewink.v1.%s/%s" % (s.name, m.name) for s in orders.service
                   for m in s.method}
        self.assertEqual(methods, {r for r in twserver.tradewink_rpcs()
                                   if r.startswith("tradewink.v1.Orders/")})
        # the set loads into a fresh pool, so it is self-consistent
        pool = descriptor_pool.DescriptorPool()
        added = set()

        def add(name):
            if name in added:
                return
            for dep in by_name[name].dependency:
                add(dep)
            pool.Add(by_name[name])
            added.add(name)

        add("tradewink/v1/orders.proto")
        d = pool.FindMessageTypeByName("tradewink.v1.GetOrderRequest")
        self.assertIn("order_id", d.fields_by_name)

    def test_file_by_filename_serves_the_standard_protos(self):
        for name in ("grpc/health/v1/health.proto", "google/protobuf/timestamp.proto",
                     "grpc/reflection/v1/reflection.proto",
                     "grpc/reflection/v1alpha/reflection.proto"):
            with self.subTest(file=name):
                _, resp = self.s.ask(file_by_filename=name)
                self.assertIn(name, [f.name for f in self.files_of(resp)])

    # file_containing_symbol
    def test_file_containing_symbol(self):
        cases = {
            "tradewink.v1.GetOrderRequest": "tradewink/v1/orders.proto",
            "tradewink.v1.Orders": "tradewink/v1/orders.proto",
            "tradewink.v1.Orders.GetOrder": "tradewink/v1/orders.proto",
            "tradewink.v1.OrderStatus": "tradewink/v1/orders.proto",
            "tradewink.v1.Risk.HaltAll": "tradewink/v1/risk.proto",
            "grpc.health.v1.HealthCheckResponse.ServingStatus": "grpc/health/v1/health.proto",
            "grpc.health.v1.Health": "grpc/health/v1/health.proto",
            "google.protobuf.Timestamp": "google/protobuf/timestamp.proto",
        }
        for sym, fname in cases.items():
            with self.subTest(symbol=sym):
                req, resp = self.s.ask(file_containing_symbol=sym)
                files = self.files_of(resp)
                hit = [f for f in files if sym in self.declared_symbols(f)]
                self.assertEqual([f.name for f in hit], [fname])
                self.assertEqual(resp.original_request, req)

    # errors, and the stream survives each
    def test_malformed_requests_get_errors_and_stream_stays_usable(self):
        cases = [
            ("unknown symbol", {"file_containing_symbol": "tradewink.v1.NoSuchThing"}),
            ("unknown method symbol", {"file_containing_symbol": "tradewink.v1.Orders.Nope"}),
            ("symbol with trailing dot", {"file_containing_symbol": "tradewink.v1."}),
            ("empty symbol", {"file_containing_symbol": ""}),
            ("unknown file", {"file_by_filename": "tradewink/v1/nope.proto"}),
            ("empty file name", {"file_by_filename": ""}),
            ("path traversal file name", {"file_by_filename": "../../etc/passwd"}),
            ("empty request", {}),
            ("huge symbol", {"file_containing_symbol": "a." * (100 << 10)}),
            ("huge file name", {"file_by_filename": "x" * (200 << 10)}),
            ("unknown extension type", {"all_extension_numbers_of_type": "no.Such"}),
        ]
        for name, kw in cases:
            with self.subTest(case=name):
                _, resp = self.s.ask(**kw)
                self.assertError(resp, (NOT_FOUND, INVALID_ARGUMENT))
                self.assertStillAnswers()

    def test_file_containing_extension_is_an_error(self):
        ext = self.mod.ExtensionRequest(containing_type="tradewink.v1.GetOrderRequest",
                                        extension_number=100)
        _, resp = self.s.ask(file_containing_extension=ext)
        self.assertError(resp, (NOT_FOUND, INVALID_ARGUMENT))
        self.assertStillAnswers()

    def test_all_extension_numbers_of_known_type_is_empty(self):
        _, resp = self.s.ask(all_extension_numbers_of_type="tradewink.v1.GetOrderRequest")
        self.assertEqual(resp.WhichOneof("message_response"), "all_extension_numbers_response",
                         str(resp)[:300])
        r = resp.all_extension_numbers_response
        self.assertEqual(r.base_type_name, "tradewink.v1.GetOrderRequest")
        self.assertEqual(list(r.extension_number), [])

    def test_many_requests_on_one_stream_answer_in_order(self):
        syms = ["tradewink.v1.GetOrderRequest", "tradewink.v1.Nope"] * 50
        for sym in syms:
            req, resp = self.s.ask(file_containing_symbol=sym)
            self.assertEqual(resp.original_request.file_containing_symbol, sym)

    def test_reflection_needs_no_token_and_ignores_bad_one(self):
        with grpc.insecure_channel(self.server.addr) as ch:
            call = ch.stream_stream(
                self.PATH,
                request_serializer=self.mod.ServerReflectionRequest.SerializeToString,
                response_deserializer=self.mod.ServerReflectionResponse.FromString)
            out = list(call(iter([self.mod.ServerReflectionRequest(list_services="")]),
                            timeout=STREAM_TIMEOUT_S,
                            metadata=(("authorization", "Bearer garbage"),)))
            self.assertEqual(len(out), 1)

    def test_undecodable_request_ends_stream_with_invalid_argument(self):
        with grpc.insecure_channel(self.server.addr) as ch:
            call = ch.stream_stream(self.PATH)
            with self.assertRaises(grpc.RpcError) as cm:
                list(call(iter([b"\x0a\xff\xff"]), timeout=STREAM_TIMEOUT_S))
            self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)


class ReflectionV1(ReflectionProtocol, unittest.TestCase):
    MOD = "refl_v1"
    PATH = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"


class ReflectionV1alpha(ReflectionProtocol, unittest.TestCase):
    MOD = "refl_v1alpha"
    PATH = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"


class BufCurl(unittest.TestCase):
    """buf curl with reflection and no schema."""

    @classmethod
    def setUpClass(cls):
        cls.buf = buf_path()
        cls.home = tempfile.mkdtemp(prefix="twbuf-")
        cls.server = twserver.TwServer().start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop_and_check(cls("test_list_methods_shows_every_tradewink_method"))
        finally:
            cls.server.cleanup()
            shutil.rmtree(cls.home, ignore_errors=True)

    def setUp(self):
        if not self.buf:
            self.fail("buf CLI not found at proto/node_modules/.bin/buf (or $TW_BUF): run "
                      "`cd proto && npm ci` to install @bufbuild/buf")

    def curl(self, *args, reflect_protocol=None):
        env = dict(os.environ, HOME=self.home, XDG_CACHE_HOME=self.home,
                   XDG_CONFIG_HOME=self.home, NO_PROXY="*")
        cmd = [self.buf, "curl", "--protocol", "grpc", "--http2-prior-knowledge"]
        if reflect_protocol:
            cmd += ["--reflect-protocol", reflect_protocol]
        cmd += list(args)
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)

    def url(self, path=""):
        return "http://127.0.0.1:%d%s" % (self.server.port, path)

    def test_list_methods_shows_every_tradewink_method(self):
        for proto in ("grpc-v1", "grpc-v1alpha"):
            with self.subTest(reflect_protocol=proto):
                p = self.curl("--list-methods", self.url(), reflect_protocol=proto)
                self.assertEqual(p.returncode, 0, p.stderr)
                listed = set(p.stdout.split())
                tw = {m for m in listed if m.startswith("tradewink.v1.")}
                self.assertEqual(tw, twserver.tradewink_rpcs())
                self.assertIn("grpc.health.v1.Health/Check", listed)
                self.assertIn("grpc.health.v1.Health/Watch", listed)

    def test_health_check_answers_serving(self):
        p = self.curl(self.url("/grpc.health.v1.Health/Check"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), {"status": "SERVING"})

    def test_health_check_for_unknown_service_is_not_found(self):
        p = self.curl("-d", '{"service":"no.such.Service"}', self.url("/grpc.health.v1.Health/Check"))
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("not_found", p.stdout + p.stderr)

    def test_tradewink_call_builds_request_from_reflection(self):
        p = self.curl("-d", '{"orderId":"x"}', self.url("/tradewink.v1.Orders/GetOrder"))
        out = p.stdout + p.stderr
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("unauthenticated", out)
        self.assertNotIn("unknown field", out)

    def test_unknown_json_field_is_rejected_by_the_reflected_schema(self):
        # Proves the request really went through the reflected schema.
        p = self.curl("-d", '{"noSuchField":"x"}', self.url("/tradewink.v1.Orders/GetOrder"))
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("unknown field", p.stdout + p.stderr)
        self.assertNotIn("unauthenticated", p.stdout + p.stderr)

    def test_unknown_method_is_reported_by_buf(self):
        p = self.curl(self.url("/tradewink.v1.Orders/NoSuchMethod"))
        self.assertNotEqual(p.returncode, 0)


if __name__ == "__main__":
    twserver.main()

"""Rich errors through a live tradewinkd: grpc-status-details-bin decoded as google.rpc.Status
with message classes generated from proto/google/rpc/error_details.proto. An order with three
bad fields names all three (BadRequest) with ErrorInfo INVALID_FIELD in domain tradewink.v1; a
single bad field reported alone ("order_id: ...") is a BadRequest of one; a
rate limit keeps RetryInfo and says RATE_LIMITED; a bad token says UNAUTHENTICATED; Resume under
a global halt says TRADING_HALTED; `buf curl`
(reflection, no schema) prints the details' types and values."""

import base64
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import grpc

from twapi import SOURCE_DIR, Api, common
from twserver import TwServer

_gen = tempfile.mkdtemp(prefix="twrpc-")
# google.rpc.Status itself is three fields: parse it with a throw-away message of the same shape
# (code 1, message 2, repeated Any details 3), so only our own proto is needed.
_status_proto = os.path.join(_gen, "twtest_status.proto")
with open(_status_proto, "w") as f:
    f.write('syntax = "proto3"; package twtest; import "google/protobuf/any.proto";\n'
            "message Status { int32 code = 1; string message = 2;"
            " repeated google.protobuf.Any details = 3; }\n")
subprocess.check_call(["protoc", "-I", os.path.join(SOURCE_DIR, "proto"), "-I", _gen,
                       "-I", "/usr/include", "--python_out", _gen,
                       "google/rpc/error_details.proto", "twtest_status.proto"])
sys.path.insert(0, _gen)
try:
    import google  # noqa: E402

    google.__path__.append(os.path.join(_gen, "google"))  # google.protobuf is installed apart
except (ImportError, AttributeError):
    pass
ed = importlib.import_module("google.rpc.error_details_pb2")
st_pb = importlib.import_module("twtest_status_pb2")

DOMAIN = "tradewink.v1"


def details_of(err):
    """(Status, {type name: unpacked message}) of a failed call."""
    md = dict(err.trailing_metadata() or ())
    status = st_pb.Status.FromString(md["grpc-status-details-bin"])
    out = {}
    for a in status.details:
        for cls in (ed.ErrorInfo, ed.BadRequest, ed.RetryInfo):
            if a.type_url == "type.googleapis.com/" + cls.DESCRIPTOR.full_name:
                m = cls()
                a.Unpack(m)
                out[cls.DESCRIPTOR.name] = m
    return status, out


def bad_request(err):
    """The field violations of a failed call (google.rpc.BadRequest in its status details)."""
    return details_of(err)[1]["BadRequest"].field_violations


def buf_path():
    p = os.environ.get("TW_BUF") or os.path.join(SOURCE_DIR, "proto", "node_modules", ".bin",
                                                 "buf")
    return p if os.access(p, os.X_OK) else None


GOOD = dict(client_order_id="c1", symbol="AAPL", side=common.ORDER_SIDE_BUY,
            type=common.ORDER_TYPE_MARKET, qty="1", time_in_force=common.TIME_IN_FORCE_DAY,
            origin=common.ORDER_ORIGIN_USER)


class ErrorDetailsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = TwServer(env={"TW_RATE_API": "3/s:3"}).start()
        cls.api = Api(cls.srv.addr)
        cls.tok = cls.api.token("alice")

    @classmethod
    def tearDownClass(cls):
        cls.api.close()
        try:
            cls.srv.stop_and_check(cls("test_three_bad_order_fields_are_three_violations"))
        finally:
            cls.srv.cleanup()

    def fails(self, *args, **kwargs):
        with self.assertRaises(grpc.RpcError) as cm:
            self.api.call(*args, **kwargs)
        return cm.exception

    def test_three_bad_order_fields_are_three_violations(self):
        bad = dict(GOOD, symbol="", qty="-1", origin=common.ORDER_ORIGIN_UNSPECIFIED)
        e = self.fails("Orders", "SubmitOrder", token=self.tok, **bad)
        self.assertEqual(e.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertTrue(e.details().startswith("symbol: "), e.details())
        status, d = details_of(e)
        self.assertEqual(status.code, grpc.StatusCode.INVALID_ARGUMENT.value[0])
        self.assertEqual(status.message, e.details())
        self.assertEqual((d["ErrorInfo"].reason, d["ErrorInfo"].domain),
                         ("INVALID_FIELD", DOMAIN))
        fields = [v.field for v in d["BadRequest"].field_violations]
        self.assertEqual(fields, ["symbol", "origin", "qty"])
        self.assertTrue(all(v.description for v in d["BadRequest"].field_violations))
        self.assertNotIn("RetryInfo", d)

    def test_bad_utf8_in_two_fields_is_two_violations(self):
        e = self.fails("Risk", "CheckOrder", token=self.tok,
                       **dict(GOOD, symbol="A\0B", note="x\0y"))
        _, d = details_of(e)
        self.assertEqual([v.field for v in d["BadRequest"].field_violations], ["symbol", "note"])

    def test_dev_token_and_limits_report_every_field(self):
        e = self.fails("Auth", "IssueDevToken", subject="", role=common.ROLE_UNSPECIFIED,
                       ttl_seconds=999999)
        _, d = details_of(e)
        self.assertEqual([v.field for v in d["BadRequest"].field_violations],
                         ["subject", "role", "ttl_seconds"])

    def test_a_single_bad_field_is_one_violation(self):
        e = self.fails("Orders", "GetOrder", token=self.api.token("dora"), order_id="x")
        self.assertEqual(e.code(), grpc.StatusCode.INVALID_ARGUMENT)
        _, d = details_of(e)
        self.assertEqual(d["ErrorInfo"].reason, "INVALID_FIELD")
        self.assertEqual([(v.field, v.description) for v in d["BadRequest"].field_violations],
                         [("order_id", "not an order id")])

    def test_unauthenticated_has_its_reason(self):
        e = self.fails("Auth", "WhoAmI", token="not.a.token")
        self.assertEqual(e.code(), grpc.StatusCode.UNAUTHENTICATED)
        _, d = details_of(e)
        self.assertEqual((d["ErrorInfo"].reason, d["ErrorInfo"].domain),
                         ("UNAUTHENTICATED", DOMAIN))
        self.assertNotIn("BadRequest", d)
        # A server stream ends with the same details (the transport's streaming path).
        with self.assertRaises(grpc.RpcError) as cm:
            for _ in self.api.stream("Orders", "StreamOrderUpdates", token="not.a.token"):
                pass
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        self.assertEqual(details_of(cm.exception)[1]["ErrorInfo"].reason, "UNAUTHENTICATED")

    def test_resume_under_a_global_halt_is_trading_halted(self):
        admin, carol = self.api.token("ops", admin=True), self.api.token("carol")
        self.api.call("Risk", "HaltAll", token=admin, reason="drill")
        try:
            e = self.fails("Risk", "Resume", token=carol)
        finally:
            self.api.call("Risk", "ResumeAll", token=admin)
        self.assertEqual(e.code(), grpc.StatusCode.FAILED_PRECONDITION)
        _, d = details_of(e)
        self.assertEqual((d["ErrorInfo"].reason, d["ErrorInfo"].domain),
                         ("TRADING_HALTED", DOMAIN))

    def test_unknown_method_says_unimplemented(self):
        fn = self.api.channel.unary_unary("/tradewink.v1.Orders/NoSuchMethod")
        with self.assertRaises(grpc.RpcError) as cm:
            fn(b"", timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
        _, d = details_of(cm.exception)
        self.assertEqual((d["ErrorInfo"].reason, d["ErrorInfo"].domain), ("UNIMPLEMENTED", DOMAIN))

    def test_rate_limit_keeps_retry_info_and_says_rate_limited(self):
        tok = self.api.token("bob")
        err = None
        for _ in range(10):
            try:
                self.api.call("Orders", "GetAccountSettings", token=tok)
            except grpc.RpcError as e:
                err = e
                break
        self.assertIsNotNone(err)
        self.assertEqual(err.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        _, d = details_of(err)
        self.assertEqual(d["ErrorInfo"].reason, "RATE_LIMITED")
        ms = int(d["ErrorInfo"].metadata["retry_after_ms"])
        self.assertGreater(ms, 0)
        delay = d["RetryInfo"].retry_delay
        self.assertEqual(delay.seconds * 1000 + delay.nanos // 1000000, ms)
        self.assertEqual(int(dict(err.trailing_metadata())["retry-after-ms"]), ms)

    def test_buf_curl_prints_the_details(self):
        buf = buf_path()
        if not buf:
            self.fail("buf not found at proto/node_modules/.bin/buf (or $TW_BUF): "
                      "run `cd proto && npm ci`")
        home = tempfile.mkdtemp(prefix="twbuf-")
        try:
            env = dict(os.environ, HOME=home, XDG_CACHE_HOME=home, XDG_CONFIG_HOME=home,
                       NO_PROXY="*")
            body = json.dumps({"clientOrderId": "c1", "symbol": "", "side": "ORDER_SIDE_BUY",
                               "type": "ORDER_TYPE_MARKET", "qty": "-1",
                               "timeInForce": "TIME_IN_FORCE_DAY"})
            p = subprocess.run([buf, "curl", "--protocol", "grpc", "--http2-prior-knowledge",
                                "-H", "authorization: Bearer " + self.tok, "-d", body,
                                "http://%s/tradewink.v1.Orders/SubmitOrder" % self.srv.addr],
                               env=env, capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL)
        finally:
            shutil.rmtree(home, ignore_errors=True)
        self.assertNotEqual(p.returncode, 0)
        out = json.loads(p.stderr or p.stdout)
        self.assertEqual(out["code"], "invalid_argument")
        # buf curl prints each detail's type and base64 value; the value decodes as that type.
        by_type = {x["type"]: base64.b64decode(x["value"] + "==") for x in out["details"]}
        info = ed.ErrorInfo.FromString(by_type["google.rpc.ErrorInfo"])
        self.assertEqual((info.reason, info.domain), ("INVALID_FIELD", DOMAIN))
        fv = ed.BadRequest.FromString(by_type["google.rpc.BadRequest"]).field_violations
        self.assertEqual([v.field for v in fv], ["symbol", "origin", "qty"])

if __name__ == "__main__":
    try:
        unittest.main()
    finally:
        shutil.rmtree(_gen, ignore_errors=True)

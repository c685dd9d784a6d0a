"""Strings on the wire (issue 19, finding 6) and the Bearer scheme's case, against a live server.

Purpose: requests are sent as raw bytes through Debian's python3-grpcio (request_serializer=None),
because a conforming client library refuses to build the hostile ones: a proto3 string that is
not UTF-8 (\\xff\\xff, overlong forms, surrogates) or that holds a NUL, which C code behind the
decoder would silently cut short ("AAPL\\0X" traded AAPL; client_order_id "k1\\0other" returned
the existing order k1). Each must be INVALID_ARGUMENT naming the field, with nothing stored;
a valid multi-byte string must still be accepted and read back unchanged.

Each hostile request is a valid message with one more length-delimited record appended: for a
proto3 singular field the last record wins, so exactly that field carries the hostile bytes.
"""

import unittest

import grpc
from google.protobuf import timestamp_pb2

from twapi import Api, common, keyvault, orders, sim
from twserver import TwServer

MONDAY_10AM = 1796050800  # Monday 2026-11-30 15:00 UTC, a trading day
BUY, MARKET = common.ORDER_SIDE_BUY, common.ORDER_TYPE_MARKET
REQ = dict(time_in_force=common.TIME_IN_FORCE_DAY, origin=common.ORDER_ORIGIN_USER)


def ld(field, raw):
    """One length-delimited record (field < 16, len < 128)."""
    assert field < 16 and len(raw) < 128
    return bytes([field << 3 | 2, len(raw)]) + raw


class WireStrings(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = TwServer().start()
        cls.api = Api(cls.srv.addr)
        cls.admin = cls.api.token("ops", admin=True)
        cls.tok = cls.api.token("wire-alice")
        cls.api.call("Sim", "SetClock", token=cls.admin,
                     time=timestamp_pb2.Timestamp(seconds=MONDAY_10AM))
        cls.api.call("Sim", "SetQuotes", token=cls.admin,
                     quotes=[sim.Quote(symbol="AAPL", bid="99.99", ask="100.01", last="100")])

    @classmethod
    def tearDownClass(cls):
        cls.api.close()
        try:
            cls.srv.stop_and_check(cls("test_valid_multibyte_note_is_accepted_unchanged"))
        finally:
            cls.srv.cleanup()

    def raw(self, service, method, payload, token=None, authz=None):
        """Raw bytes in, raw bytes out; raises grpc.RpcError."""
        fn = self.api.channel.unary_unary("/tradewink.v1.%s/%s" % (service, method),
                                          request_serializer=None, response_deserializer=None)
        md = []
        if authz is not None:
            md.append(("authorization", authz))
        elif token:
            md.append(("authorization", "Bearer " + token))
        return fn(payload, metadata=md, timeout=30)

    def refused(self, service, method, payload, field, token=None):
        with self.assertRaises(grpc.RpcError) as cm:
            self.raw(service, method, payload, token=token or self.tok)
        e = cm.exception
        self.assertEqual(e.code(), grpc.StatusCode.INVALID_ARGUMENT, e.details())
        self.assertTrue(e.details().startswith(field + ": must "), e.details())
        return e.details()

    def order(self, coid, **kw):
        return orders.SubmitOrderRequest(client_order_id=coid, symbol="AAPL", side=BUY,
                                         type=MARKET, qty="1", **dict(REQ, **kw)
                                         ).SerializeToString()

    def list_orders(self):
        return self.api.call("Orders", "ListOrders", token=self.tok).orders

    # -- finding 6 ---------------------------------------------------------------------------
    def test_label_ff_ff_is_refused_and_key_list_stays_parseable(self):
        req = keyvault.PutBrokerKeyRequest(broker="sim", environment=common.TRADING_MODE_PAPER,
                                           key_id="PKWIRE0000001",
                                           secret="paper-secret").SerializeToString()
        before = len(self.api.call("KeyVault", "ListBrokerKeys", token=self.tok).keys)
        d = self.refused("KeyVault", "PutBrokerKey", req + ld(2, b"\xff\xff"), "label")
        self.assertEqual(d, "label: must be valid UTF-8")
        # The conforming client (python protobuf) must be able to parse the list, and the key
        # must not have been stored.
        keys = self.api.call("KeyVault", "ListBrokerKeys", token=self.tok).keys
        self.assertEqual(len(keys), before)

    def test_secret_with_nul_is_refused_without_echoing_it(self):
        req = keyvault.PutBrokerKeyRequest(broker="sim", environment=common.TRADING_MODE_PAPER,
                                           key_id="PKWIRE0000002",
                                           label="x").SerializeToString()
        d = self.refused("KeyVault", "PutBrokerKey", req + ld(5, b"sec\x00ret-value"), "secret")
        self.assertNotIn("ret-value", d)

    def test_symbol_with_nul_does_not_trade_the_prefix(self):
        before = len(self.list_orders())
        d = self.refused("Orders", "SubmitOrder", self.order("nul-sym") + ld(2, b"AAPL\x00X"),
                         "symbol")
        self.assertEqual(d, "symbol: must not contain NUL characters")
        self.assertEqual(len(self.list_orders()), before)

    def test_qty_with_nul_is_refused(self):
        before = len(self.list_orders())
        self.refused("Orders", "SubmitOrder", self.order("nul-qty") + ld(6, b"1\x00 2"), "qty")
        self.assertEqual(len(self.list_orders()), before)

    def test_client_order_id_with_nul_does_not_collide(self):
        first = self.api.call("Orders", "SubmitOrder", token=self.tok, client_order_id="k1",
                              symbol="AAPL", side=BUY, type=MARKET, qty="1", **REQ).order
        n = len(self.list_orders())
        self.refused("Orders", "SubmitOrder", self.order("x") + ld(1, b"k1\x00other"),
                     "client_order_id")
        self.assertEqual(len(self.list_orders()), n)
        again = self.api.call("Orders", "SubmitOrder", token=self.tok, client_order_id="k1",
                              symbol="AAPL", side=BUY, type=MARKET, qty="1", **REQ).order
        self.assertEqual(again.id, first.id)  # idempotency itself still works

    def test_malformed_utf8_in_note_is_refused(self):
        for name, bad in [("overlong C0 AF", b"\xc0\xaf"), ("overlong E0 80 AF", b"\xe0\x80\xaf"),
                          ("overlong F0 80 80 AF", b"\xf0\x80\x80\xaf"),
                          ("surrogate ED A0 80", b"\xed\xa0\x80"), ("past U+10FFFF", b"\xf4\x90\x80\x80"),
                          ("lone continuation", b"ok\x80"), ("truncated", b"\xe2\x82")]:
            with self.subTest(name):
                before = len(self.list_orders())
                d = self.refused("Orders", "SubmitOrder",
                                 self.order("bad-note-" + name) + ld(10, bad), "note")
                self.assertEqual(d, "note: must be valid UTF-8")
                self.assertEqual(len(self.list_orders()), before)

    def test_valid_multibyte_note_is_accepted_unchanged(self):
        note = "caf\u00e9 \u20ac \u65e5\u672c \U0001F4C8"
        raw = self.raw("Orders", "SubmitOrder",
                       self.order("mb-note") + ld(10, note.encode("utf-8")), token=self.tok)
        o = orders.SubmitOrderResponse.FromString(raw).order
        self.assertTrue(o.id)
        # Stored and shown back byte for byte, in the reply and on a later read.
        self.assertEqual(o.note, note)
        got = self.api.call("Orders", "GetOrder", token=self.tok, order_id=o.id).order
        self.assertEqual(got.note, note)
        label = "Konto \u00fc \u65e5\u672c \U0001F4C8"
        req = keyvault.PutBrokerKeyRequest(broker="sim", environment=common.TRADING_MODE_PAPER,
                                           key_id="PKWIREMB00001",
                                           secret="paper-secret").SerializeToString()
        self.raw("KeyVault", "PutBrokerKey", req + ld(2, label.encode("utf-8")), token=self.tok)
        keys = self.api.call("KeyVault", "ListBrokerKeys", token=self.tok).keys
        self.assertIn(label, [k.label for k in keys])

    def test_public_method_subject_is_invalid_argument_not_internal(self):
        req = b"\x10\x01" + ld(1, b"\xff")  # role ROLE_USER, subject \xff
        with self.assertRaises(grpc.RpcError) as cm:
            self.raw("Auth", "IssueDevToken", req)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(cm.exception.details(), "subject: must be valid UTF-8")

    def test_nested_repeated_field_is_named_by_path(self):
        good = sim.Quote(symbol="MSFT", bid="1", ask="2", last="1.5").SerializeToString()
        bad = good + ld(1, b"MS\x00FT")
        d = self.refused("Sim", "SetQuotes", ld(1, good) + ld(1, bad), "quotes.symbol",
                         token=self.admin)
        self.assertEqual(d, "quotes.symbol: must not contain NUL characters")

    # -- Bearer scheme (RFC 7235: case-insensitive) -------------------------------------------
    def test_bearer_scheme_any_case_is_accepted(self):
        for scheme in ("Bearer ", "bearer ", "BEARER "):
            with self.subTest(scheme):
                raw = self.raw("Auth", "WhoAmI", b"", authz=scheme + self.tok)
                self.assertIn(b"wire-alice", raw)

    def test_other_schemes_and_glued_bearer_are_refused(self):
        for authz in ("Bearer" + self.tok, "bearer" + self.tok, "Basic " + self.tok, "Basic x",
                      "Bearerx " + self.tok):
            with self.subTest(authz[:8]):
                with self.assertRaises(grpc.RpcError) as cm:
                    self.raw("Auth", "WhoAmI", b"", authz=authz)
                self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAUTHENTICATED)


if __name__ == "__main__":
    unittest.main(verbosity=2)

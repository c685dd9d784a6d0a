"""KeyVault conformance: every rule keyvault.proto's comments state, in tables, so code that
drifts from its contract fails here. Refusals must name the field and store nothing."""

import base64
import shutil
import tempfile
import time
import unittest

import grpc

from twapi import Api, audit, common
from twserver import TwServer

PAPER, LIVE = common.TRADING_MODE_PAPER, common.TRADING_MODE_LIVE
MASTER_V1 = base64.b64encode(b"\x11" * 32).decode()
MASTER_V2 = base64.b64encode(b"\x22" * 32).decode()
KEY_ID = "PKTESTKEYID00009XQ2"
SECRET = "SuperSecretValue9f8e7d6c5b4a"


def status(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details() or ""


def key(label="main", broker="sim", environment=PAPER, key_id=KEY_ID, secret=SECRET):
    return dict(broker=broker, label=label, environment=environment, key_id=key_id,
                secret=secret)


class KeyVaultConformanceTest(unittest.TestCase):
    def setUp(self):
        self.srv = TwServer().start()
        self.api = Api(self.srv.addr)
        self.alice = self.api.token("alice")

    def tearDown(self):
        self.api.close()
        self.srv.stop_and_check(self)
        self.srv.cleanup()

    def kv(self, method, token=None, **kw):
        return self.api.call("KeyVault", method, token=token or self.alice, **kw)

    def listed(self, token=None, **kw):
        return list(self.kv("ListBrokerKeys", token, **kw).keys)

    # ---- sealed submission: GetSealingKey, PutBrokerKeyRequest.sealed_secret --------------
    def test_sealing_rules(self):
        from test_sealed_keys import SCALAR_V1, b64, seal
        # "FAILED_PRECONDITION when the server has no sealing key" (this setUp's server).
        self.assertEqual(status(self.kv, "GetSealingKey")[0], grpc.StatusCode.FAILED_PRECONDITION)
        for required in ("0", "1"):
            srv = TwServer(env={"TW_VAULT_SEALING_KEYS": "v4:" + b64(SCALAR_V1),
                                "TW_REQUIRE_SEALED_KEYS": required}).start()
            try:
                api = Api(srv.addr)
                tok = api.token("alice")
                sk = api.call("KeyVault", "GetSealingKey", token=tok)
                self.assertEqual((sk.version, len(sk.public_key), sk.public_key[0], sk.algorithm),
                                 (4, 65, 4, "ECDH-P256+HKDF-SHA256+A256GCM/tradewink-seal-v1"))

                def put(**kw):
                    f = dict(broker="sim", environment=PAPER, key_id=KEY_ID)
                    f.update(kw)
                    return api.call("KeyVault", "PutBrokerKey", token=tok, **f)
                good = seal(sk.public_key, 4, "alice", "sim", KEY_ID, "paper", SECRET)
                rows = [
                    ("plain secret", dict(secret=SECRET),
                     grpc.StatusCode.OK if required == "0" else
                     grpc.StatusCode.FAILED_PRECONDITION),
                    ("both secret and sealed_secret", dict(secret=SECRET, sealed_secret=good,
                                                           sealing_key_version=4),
                     grpc.StatusCode.INVALID_ARGUMENT),
                    ("sealed for another environment",
                     dict(sealed_secret=seal(sk.public_key, 4, "alice", "sim", KEY_ID, "live",
                                             SECRET), sealing_key_version=4),
                     grpc.StatusCode.INVALID_ARGUMENT),
                    ("a version the server does not have", dict(sealed_secret=good,
                                                                sealing_key_version=5),
                     grpc.StatusCode.FAILED_PRECONDITION),
                    ("sealed for this user, broker, key id, environment, version",
                     dict(label="sealed", sealed_secret=good, sealing_key_version=4),
                     grpc.StatusCode.OK),
                ]
                for rule, kw, code in rows:
                    with self.subTest(rule, required=required):
                        self.assertEqual(status(put, **kw)[0], code)
                api.close()
                srv.stop_and_check(self)
            finally:
                srv.cleanup()

    # ---- PutBrokerKey ----------------------------------------------------------------------
    REFUSED = [
        ("broker unknown", key(broker="robinhood"), "broker"),
        ("broker empty", key(broker=""), "broker"),
        ("broker wrong case", key(broker="SIM"), "broker"),
        ("environment unspecified", key(environment=common.TRADING_MODE_UNSPECIFIED),
         "environment"),
        ("environment out of range", key(environment=9), "environment"),
        ("label 65 characters", key(label="L" * 65), "label"),
        ("label with newline", key(label="a\nb"), "label"),
        ("label with tab", key(label="a\tb"), "label"),
        ("label with DEL", key(label="a\x7fb"), "label"),
        ("label with a C1 control (NEL)", key(label="a\u0085b"), "label"),
        ("label 65 two-byte characters", key(label="\u00e9" * 65), "label"),
        ("key_id empty", key(key_id=""), "key_id"),
        ("secret empty", key(secret=""), "secret"),
    ]

    def test_put_refuses_what_the_contract_forbids_and_stores_nothing(self):
        for name, req, field in self.REFUSED:
            with self.subTest(name):
                code, details = status(self.kv, "PutBrokerKey", **req)
                self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
                self.assertIn(field, details)
        self.assertEqual(self.listed(), [])

    ACCEPTED = [
        ("label 1 character", "a"),
        ("label 64 characters", "L" * 64),
        ("label non-ASCII", "caf\u00e9 \u00e9pargne"),
        ("label 64 three-byte characters", "\u20ac" * 64),
        ("label 64 four-byte characters (256 bytes)", "\U0001F600" * 64),
        ("label with spaces, the proto's example", "alpaca paper main"),
        ("label of every printable class", "~!@#$%^&*()_+{}|:\"<>? 09azAZ"),
        ("no label", ""),
        ("a second unlabeled key", ""),
    ]

    def test_put_accepts_what_the_contract_allows(self):
        for name, label in self.ACCEPTED:
            with self.subTest(name):
                k = self.kv("PutBrokerKey", **key(label=label)).key
                self.assertEqual(k.label, label)
        self.assertEqual(len(self.listed()), len(self.ACCEPTED))

    def test_labels_are_unique_per_user(self):
        first = self.kv("PutBrokerKey", **key(label="main")).key
        code, details = status(self.kv, "PutBrokerKey", **key(label="main", key_id="PKOTHER0001"))
        self.assertEqual(code, grpc.StatusCode.ALREADY_EXISTS)
        self.assertIn("label", details)
        self.assertEqual([k.id for k in self.listed()], [first.id])
        # Another user may use the same label; a deleted key's label is free again.
        bob = self.api.token("bob")
        self.kv("PutBrokerKey", bob, **key(label="main"))
        self.kv("DeleteBrokerKey", broker_key_id=first.id)
        self.kv("PutBrokerKey", **key(label="main"))

    def test_put_reply_is_the_stored_key_masked(self):
        uid = self.api.call("Risk", "GetState", token=self.alice).state.user_id
        before = int(time.time())
        k = self.kv("PutBrokerKey", **key(label="alpaca paper main", broker="alpaca",
                                          environment=LIVE)).key
        self.assertTrue(k.id)
        self.assertEqual((k.user_id, k.broker, k.label, k.environment),
                         (uid, "alpaca", "alpaca paper main", LIVE))
        self.assertEqual(k.key_id_masked, "PK\u20269XQ2")
        self.assertGreaterEqual(k.created_at.seconds, before - 1)
        self.assertFalse(k.HasField("last_used_at"))
        self.assertEqual(k.master_key_version, 1)
        self.assertNotIn(SECRET, str(k))
        self.assertNotIn(KEY_ID, str(k))
        self.assertEqual(self.listed(), [k])

    MASKS = [
        ("19 characters", "PKTESTKEYID00009XQ2", "PK\u20269XQ2"),
        ("12 characters", "ABCDEFGHIJKL", "AB\u2026IJKL"),
        ("11 characters", "ABCDEFGHIJK", "\u2026"),
        ("8 characters", "ABCDEFGH", "\u2026"),
        ("3 characters", "XYZ", "\u2026"),
    ]

    def test_key_id_mask(self):
        for i, (name, key_id, mask) in enumerate(self.MASKS):
            with self.subTest(name):
                k = self.kv("PutBrokerKey", **key(label="m%d" % i, key_id=key_id)).key
                self.assertEqual(k.key_id_masked, mask)

    # ---- ListBrokerKeys --------------------------------------------------------------------
    def test_list_is_newest_first_and_pages(self):
        ids = [self.kv("PutBrokerKey", **key(label="k%d" % i)).key.id for i in range(5)]
        newest_first = list(reversed(ids))
        r = self.kv("ListBrokerKeys")
        self.assertEqual([k.id for k in r.keys], newest_first)
        self.assertEqual(r.next_page_token, "")
        for size in (1, 2, 3, 5):
            with self.subTest(page_size=size):
                got, token, pages = [], "", 0
                while True:
                    r = self.kv("ListBrokerKeys", page_size=size, page_token=token)
                    self.assertLessEqual(len(r.keys), size)
                    got += [k.id for k in r.keys]
                    pages += 1
                    token = r.next_page_token
                    if not token:
                        break
                    self.assertLess(pages, 10)
                self.assertEqual(got, newest_first)
        # Users see only their own keys.
        self.assertEqual(self.listed(self.api.token("bob")), [])

    def test_list_refuses_bad_paging(self):
        for name, kw, field in (("negative page_size", dict(page_size=-1), "page_size"),
                                ("foreign page_token", dict(page_token="nope"), "page_token")):
            with self.subTest(name):
                code, details = status(self.kv, "ListBrokerKeys", **kw)
                self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
                self.assertIn(field, details)

    # ---- DeleteBrokerKey / TestBrokerKey ---------------------------------------------------
    def test_delete_and_test_are_own_keys_only_and_audited(self):
        k = self.kv("PutBrokerKey", **key()).key
        bob = self.api.token("bob")
        for m in ("DeleteBrokerKey", "TestBrokerKey"):
            with self.subTest(m):
                self.assertEqual(status(self.kv, m, bob, broker_key_id=k.id)[0],
                                 grpc.StatusCode.NOT_FOUND)
                self.assertEqual(status(self.kv, m, broker_key_id="not-an-id")[0],
                                 grpc.StatusCode.INVALID_ARGUMENT)
        before = int(time.time())
        t = self.kv("TestBrokerKey", broker_key_id=k.id)
        self.assertTrue(t.ok)
        self.assertGreaterEqual(t.tested_at.seconds, before - 1)
        self.assertNotIn(SECRET, t.broker_message)
        self.assertTrue(self.listed()[0].HasField("last_used_at"))
        self.kv("DeleteBrokerKey", broker_key_id=k.id)
        self.assertEqual(self.listed(), [])
        self.assertEqual(status(self.kv, "TestBrokerKey", broker_key_id=k.id)[0],
                         grpc.StatusCode.NOT_FOUND)
        acts = [audit.AuditAction.Name(e.action) for e in
                self.api.call("Audit", "ListEvents", token=self.alice, page_size=100).events]
        for a in ("AUDIT_ACTION_KEY_ADD", "AUDIT_ACTION_KEY_TEST", "AUDIT_ACTION_KEY_DELETE"):
            self.assertIn(a, acts)

    # ---- RewrapKeys ------------------------------------------------------------------------
    def test_rewrap_is_admin_only_and_checks_batch_size(self):
        self.assertEqual(status(self.kv, "RewrapKeys")[0], grpc.StatusCode.PERMISSION_DENIED)
        admin = self.api.token("ops", admin=True)
        for bad in (-1, 1001):
            with self.subTest(batch_size=bad):
                code, details = status(self.kv, "RewrapKeys", admin, batch_size=bad)
                self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
                self.assertIn("batch_size", details)
        r = self.kv("RewrapKeys", admin, batch_size=1000)
        self.assertEqual((r.rewrapped, r.remaining, r.failed, r.target_master_version),
                         (0, 0, 0, 1))


class KeyVaultRewrapBatchTest(unittest.TestCase):
    def test_rewrap_moves_at_most_batch_size_keys_per_call(self):
        workdir = tempfile.mkdtemp(prefix="tw-conf-rewrap-")
        self.addCleanup(shutil.rmtree, workdir, True)
        with TwServer(env={"TW_VAULT_MASTER_KEYS": "v1:" + MASTER_V1}, workdir=workdir) as srv:
            api = Api(srv.addr)
            for i in range(5):
                api.call("KeyVault", "PutBrokerKey", token=api.token("u%d" % (i % 2)),
                         **key(label="k%d" % i))
            api.close()
            srv.stop_and_check(self)
        env2 = {"TW_VAULT_MASTER_KEYS": "v2:%s,v1:%s" % (MASTER_V2, MASTER_V1)}
        with TwServer(env=env2, workdir=workdir) as srv:
            api = Api(srv.addr)
            admin = api.token("ops", admin=True)
            seen = []
            for _ in range(10):
                r = api.call("KeyVault", "RewrapKeys", token=admin, batch_size=2)
                seen.append((r.rewrapped, r.remaining, r.failed, r.target_master_version))
                if r.remaining == 0:
                    break
            self.assertEqual(seen, [(2, 3, 0, 2), (2, 1, 0, 2), (1, 0, 0, 2)])
            # Done: another call has nothing to do.
            r = api.call("KeyVault", "RewrapKeys", token=admin)
            self.assertEqual((r.rewrapped, r.remaining, r.failed), (0, 0, 0))
            for u in ("u0", "u1"):
                ks = api.call("KeyVault", "ListBrokerKeys", token=api.token(u)).keys
                self.assertEqual({k.master_key_version for k in ks}, {2})
            api.close()
            srv.stop_and_check(self)


if __name__ == "__main__":
    unittest.main()

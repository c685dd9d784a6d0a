"""Sealed key submission (issue 20 part 2): PutBrokerKey accepts a secret sealed to the
server's P-256 sealing key (GetSealingKey), sealed here with python3-cryptography from the
scheme keyvault.proto describes (not with our code). The key works afterwards (TestBrokerKey
decrypts it); a blob replayed for another user, another key id, broker or environment, or
altered, is refused and stores nothing; TW_REQUIRE_SEALED_KEYS refuses plain secrets; an old
sealing key works until its grace period ends."""

import base64
import os
import struct
import sys
import time
import unittest

import grpc
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from twapi import Api, code_of, common  # puts tests/integration on sys.path
from twserver import TwServer  # noqa: E402
import twserver  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fault"))
import faultlib  # noqa: E402

PAPER = common.TRADING_MODE_PAPER
SCALAR_V1, SCALAR_V2 = (1234567).to_bytes(32, "big"), (7654321).to_bytes(32, "big")
KEY_ID, SECRET = "PKSEALED00000001", "sealed-Secret-9Vq2Lm7Xz4"


def b64(b):
    return base64.b64encode(b).decode()


def field(s):
    b = s.encode()
    return struct.pack(">Q", len(b)) + b


def seal(pub65, version, user, broker, key_id, env, secret):
    """keyvault.proto's PutBrokerKeyRequest.sealed_secret, written from its comment."""
    peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), pub65)
    eph = ec.generate_private_key(ec.SECP256R1())
    eph_pub = eph.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    shared = eph.exchange(ec.ECDH(), peer)
    key = HKDF(hashes.SHA256(), 32, salt=eph_pub, info=b"tradewink-seal-v1").derive(shared)
    aad = b"".join(field(x) for x in ("tradewink-seal-v1", user, broker, key_id, env,
                                      str(version)))
    iv = os.urandom(12)
    return eph_pub + iv + AESGCM(key).encrypt(iv, secret.encode(), aad)


class SealedKeysTest(unittest.TestCase):
    def start(self, **env):
        return TwServer(env=env).start()

    def put(self, api, tok, key_id=KEY_ID, **kw):
        return api.call("KeyVault", "PutBrokerKey", token=tok, broker="sim", environment=PAPER,
                        key_id=key_id, **kw)

    def test_sealed_put_works_and_replays_are_refused(self):
        keys = "v2:%s,v1:%s@%d" % (b64(SCALAR_V2), b64(SCALAR_V1), int(time.time()) + 3600)
        stub = faultlib.AlpacaStub().start()
        srv = self.start(TW_VAULT_SEALING_KEYS=keys, **stub.env())
        try:
            api = Api(srv.addr)
            alice, bob = api.token("alice"), api.token("bob")
            sk = api.call("KeyVault", "GetSealingKey", token=alice)
            self.assertEqual((sk.version, len(sk.public_key)), (2, 65))
            want = ec.derive_private_key(int.from_bytes(SCALAR_V2, "big"), ec.SECP256R1())
            self.assertEqual(sk.public_key, want.public_key().public_bytes(
                Encoding.X962, PublicFormat.UncompressedPoint))
            blob = seal(sk.public_key, 2, "alice", "sim", KEY_ID, "paper", SECRET)
            k = self.put(api, alice, sealed_secret=blob, sealing_key_version=2).key
            self.assertTrue(api.call("KeyVault", "TestBrokerKey", token=alice,
                                     broker_key_id=k.id).ok)
            # What was stored is the secret itself: an Alpaca key sealed the same way reaches
            # the (stub) broker intact.
            ak = api.call("KeyVault", "PutBrokerKey", token=alice, broker="alpaca",
                          environment=PAPER, key_id="AKSEALED00000003", sealing_key_version=2,
                          sealed_secret=seal(sk.public_key, 2, "alice", "alpaca",
                                             "AKSEALED00000003", "paper", SECRET)).key
            api.call("KeyVault", "TestBrokerKey", token=alice, broker_key_id=ak.id)
            self.assertIn(("AKSEALED00000003", SECRET), stub.secrets_seen)
            # The old key inside its grace period still opens.
            v1 = ec.derive_private_key(int.from_bytes(SCALAR_V1, "big"), ec.SECP256R1())
            v1pub = v1.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
            self.put(api, alice, key_id="PKSEALED00000002", sealing_key_version=1,
                     sealed_secret=seal(v1pub, 1, "alice", "sim", "PKSEALED00000002", "paper",
                                        SECRET))
            bad = [
                ("replayed by another user", bob, {}, grpc.StatusCode.INVALID_ARGUMENT),
                ("for another key id", alice, dict(key_id="PKOTHER000000009"),
                 grpc.StatusCode.INVALID_ARGUMENT),
                ("for another environment", alice,
                 dict(environment=common.TRADING_MODE_LIVE), grpc.StatusCode.INVALID_ARGUMENT),
                ("another version named", alice, dict(sealing_key_version=1),
                 grpc.StatusCode.INVALID_ARGUMENT),
                ("unknown version", alice, dict(sealing_key_version=9),
                 grpc.StatusCode.FAILED_PRECONDITION),
                ("altered", alice, dict(sealed_secret=blob[:-1] + bytes([blob[-1] ^ 1])),
                 grpc.StatusCode.INVALID_ARGUMENT),
                ("truncated", alice, dict(sealed_secret=blob[:60]),
                 grpc.StatusCode.INVALID_ARGUMENT),
                ("plain and sealed together", alice, dict(secret=SECRET),
                 grpc.StatusCode.INVALID_ARGUMENT),
            ]
            for name, tok, kw, code in bad:
                with self.subTest(name):
                    args = dict(sealed_secret=blob, sealing_key_version=2)
                    args.update(kw)
                    key_id = args.pop("key_id", KEY_ID)
                    env = args.pop("environment", PAPER)
                    got = code_of(api.call, "KeyVault", "PutBrokerKey", token=tok, broker="sim",
                                  environment=env, key_id=key_id, **args)
                    self.assertEqual(got, code)
            self.assertEqual(len(api.call("KeyVault", "ListBrokerKeys", token=alice).keys), 3)
            self.assertEqual(len(api.call("KeyVault", "ListBrokerKeys", token=bob).keys), 0)
            api.close()
            srv.stop_and_check(self)
            self.assertNotIn(SECRET, srv.stderr_text())
        finally:
            srv.cleanup()
            stub.stop()

    def test_required_sealing_and_ended_grace(self):
        keys = "v2:%s,v1:%s@%d" % (b64(SCALAR_V2), b64(SCALAR_V1), int(time.time()) - 1)
        srv = self.start(TW_VAULT_SEALING_KEYS=keys, TW_REQUIRE_SEALED_KEYS="1")
        try:
            api = Api(srv.addr)
            alice = api.token("alice")
            self.assertEqual(code_of(self.put, api, alice, secret=SECRET),
                             grpc.StatusCode.FAILED_PRECONDITION)
            v1 = ec.derive_private_key(int.from_bytes(SCALAR_V1, "big"), ec.SECP256R1())
            v1pub = v1.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
            self.assertEqual(code_of(self.put, api, alice, sealing_key_version=1,
                                     sealed_secret=seal(v1pub, 1, "alice", "sim", KEY_ID,
                                                        "paper", SECRET)),
                             grpc.StatusCode.FAILED_PRECONDITION)
            pub = api.call("KeyVault", "GetSealingKey", token=alice).public_key
            self.put(api, alice, sealing_key_version=2,
                     sealed_secret=seal(pub, 2, "alice", "sim", KEY_ID, "paper", SECRET))
            api.close()
            srv.stop_and_check(self)
        finally:
            srv.cleanup()

    def test_without_a_sealing_key_and_bad_settings(self):
        with TwServer() as srv:
            api = Api(srv.addr)
            alice = api.token("alice")
            self.assertEqual(code_of(api.call, "KeyVault", "GetSealingKey", token=alice),
                             grpc.StatusCode.FAILED_PRECONDITION)
            self.assertEqual(code_of(self.put, api, alice, sealing_key_version=1,
                                     sealed_secret=b"x" * 100),
                             grpc.StatusCode.FAILED_PRECONDITION)
            api.close()
            srv.stop_and_check(self)
        for env in ({"TW_VAULT_SEALING_KEYS": "v1:short"},
                    {"TW_VAULT_SEALING_KEYS": "v1:" + b64(b"\0" * 32)},  # scalar 0
                    {"TW_REQUIRE_SEALED_KEYS": "1"}):
            with self.subTest(env=list(env)):
                rc, _, err = twserver.run_once(env)
                self.assertEqual(rc, 2, err)


if __name__ == "__main__":
    unittest.main()

"""KeyVault through the gRPC API: masked replies, isolation, validation, no plaintext anywhere,
online rewrap to a new master key version."""

import base64
import os
import unittest

import grpc

import twapi
from twapi import Api, code_of, keyvault, common
from twserver import TwServer

PAPER = common.TRADING_MODE_PAPER
MASTER_V1 = base64.b64encode(b"\x11" * 32).decode()
MASTER_V2 = base64.b64encode(b"\x22" * 32).decode()
SECRET = "SuperSecretValue9f8e7d6c5b4a"
KEY_ID = "PKTESTKEYID00009XQ2"


def forms(s):
    b = s.encode()
    return [s, base64.b64encode(b).decode(), base64.urlsafe_b64encode(b).decode().rstrip("=")]


class KeyVaultTest(unittest.TestCase):
    def start(self, env=None, workdir=None):
        return TwServer(env=env, workdir=workdir)

    def test_put_list_test_delete_and_isolation(self):
        with self.start() as srv:
            api = Api(srv.addr)
            alice, bob = api.token("alice"), api.token("bob")
            r = api.call("KeyVault", "PutBrokerKey", token=alice, broker="sim", label="main",
                         environment=PAPER, key_id=KEY_ID, secret=SECRET)
            k = r.key
            self.assertEqual(k.key_id_masked, "PK\u20269XQ2")
            self.assertEqual(k.broker, "sim")
            self.assertNotIn(SECRET, str(r))
            self.assertNotIn(KEY_ID, str(r))
            keys = api.call("KeyVault", "ListBrokerKeys", token=alice).keys
            self.assertEqual([x.id for x in keys], [k.id])
            t = api.call("KeyVault", "TestBrokerKey", token=alice, broker_key_id=k.id)
            self.assertTrue(t.ok)
            # Bob sees nothing of Alice's and cannot touch it: NOT_FOUND, never PERMISSION_DENIED.
            self.assertEqual(len(api.call("KeyVault", "ListBrokerKeys", token=bob).keys), 0)
            for m in ("TestBrokerKey", "DeleteBrokerKey"):
                self.assertEqual(code_of(api.call, "KeyVault", m, token=bob, broker_key_id=k.id),
                                 grpc.StatusCode.NOT_FOUND)
            self.assertEqual(len(api.call("KeyVault", "ListBrokerKeys", token=alice).keys), 1)
            api.call("KeyVault", "DeleteBrokerKey", token=alice, broker_key_id=k.id)
            self.assertEqual(len(api.call("KeyVault", "ListBrokerKeys", token=alice).keys), 0)
            self.assertEqual(code_of(api.call, "KeyVault", "DeleteBrokerKey", token=alice,
                                     broker_key_id=k.id), grpc.StatusCode.NOT_FOUND)
            # No token, bad token.
            self.assertEqual(code_of(api.call, "KeyVault", "ListBrokerKeys"),
                             grpc.StatusCode.UNAUTHENTICATED)
            self.assertEqual(code_of(api.call, "KeyVault", "ListBrokerKeys", token=alice + "x"),
                             grpc.StatusCode.UNAUTHENTICATED)
            api.close()
            srv.stop_and_check(self)

    def test_bad_input_is_refused_and_stores_nothing(self):
        with self.start() as srv:
            api = Api(srv.addr)
            tok = api.token("carol")
            bad = [
                dict(broker="robinhood", environment=PAPER, key_id=KEY_ID, secret=SECRET),
                dict(broker="sim", environment=common.TRADING_MODE_UNSPECIFIED, key_id=KEY_ID,
                     secret=SECRET),
                dict(broker="sim", environment=PAPER, key_id="", secret=SECRET),
                dict(broker="sim", environment=PAPER, key_id=KEY_ID, secret=""),
                dict(broker="sim", environment=PAPER, key_id=KEY_ID, secret="a b"),
                dict(broker="sim", environment=PAPER, key_id=KEY_ID, secret="x" * 600),
                dict(broker="sim", environment=PAPER, key_id="K" * 200, secret=SECRET),
            ]
            for b in bad:
                with self.subTest(b={k: v[:20] if isinstance(v, str) else v
                                     for k, v in b.items()}):
                    self.assertEqual(code_of(api.call, "KeyVault", "PutBrokerKey", token=tok, **b),
                                     grpc.StatusCode.INVALID_ARGUMENT)
            self.assertEqual(len(api.call("KeyVault", "ListBrokerKeys", token=tok).keys), 0)
            for bad_id in ("", "abc", "-1", "0", "1; DROP TABLE users"):
                self.assertEqual(code_of(api.call, "KeyVault", "DeleteBrokerKey", token=tok,
                                         broker_key_id=bad_id), grpc.StatusCode.INVALID_ARGUMENT)
            self.assertEqual(code_of(api.call, "KeyVault", "RewrapKeys", token=tok),
                             grpc.StatusCode.PERMISSION_DENIED)
            api.close()
            srv.stop_and_check(self)

    def test_no_plaintext_in_log_db_or_replies(self):
        with self.start() as srv:
            api = Api(srv.addr)
            tok = api.token("dave")
            admin = api.token("ops", admin=True)
            replies = []
            r = api.call("KeyVault", "PutBrokerKey", token=tok, broker="sim", label="x",
                         environment=PAPER, key_id=KEY_ID, secret=SECRET)
            replies.append(r)
            replies.append(api.call("KeyVault", "ListBrokerKeys", token=tok))
            replies.append(api.call("KeyVault", "TestBrokerKey", token=tok, broker_key_id=r.key.id))
            replies.append(api.call("KeyVault", "RewrapKeys", token=admin))
            replies.append(api.call("KeyVault", "DeleteBrokerKey", token=tok,
                                    broker_key_id=r.key.id))
            api.close()
            srv.stop_and_check(self)
            import twserver
            blobs = {"log": srv.stderr_text().encode(), "replies": b"".join(
                m.SerializeToString() for m in replies),
                "database dump": twserver.db_dump(srv.workdir)}
            # The dump really holds the stored key: its masked id is in there.
            self.assertIn("PK\u20269XQ2".encode(), blobs["database dump"])
            for needle in forms(SECRET) + forms(KEY_ID):
                for where, data in blobs.items():
                    self.assertNotIn(needle.encode(), data, "%s found in %s" % (needle, where))

    def test_rewrap_moves_every_record_to_the_new_version(self):
        import shutil
        import tempfile
        workdir = tempfile.mkdtemp(prefix="tw-rewrap-")
        self.addCleanup(shutil.rmtree, workdir, True)
        env1 = {"TW_VAULT_MASTER_KEYS": "v1:" + MASTER_V1}
        with self.start(env=env1, workdir=workdir) as srv:
            api = Api(srv.addr)
            ids = []
            for user in ("u1", "u2", "u3"):
                tok = api.token(user)
                ids.append((tok, api.call("KeyVault", "PutBrokerKey", token=tok, broker="sim",
                                          environment=PAPER, key_id=KEY_ID,
                                          secret=SECRET).key.id))
            api.close()
            srv.stop_and_check(self)
        env2 = {"TW_VAULT_MASTER_KEYS": "v2:%s,v1:%s" % (MASTER_V2, MASTER_V1)}
        with self.start(env=env2, workdir=workdir) as srv:
            api = Api(srv.addr)
            # Old tokens still decrypt while the move has not happened.
            tok0, id0 = api.token("u1"), ids[0][1]
            self.assertTrue(api.call("KeyVault", "TestBrokerKey", token=tok0,
                                     broker_key_id=id0).ok)
            # One batch per call: 2 keys, then the last one.
            adm = api.token("ops", admin=True)
            r = api.call("KeyVault", "RewrapKeys", token=adm, batch_size=2)
            self.assertEqual((r.rewrapped, r.remaining, r.failed, r.target_master_version),
                             (2, 1, 0, 2))
            r = api.call("KeyVault", "RewrapKeys", token=adm, batch_size=2)
            self.assertEqual((r.rewrapped, r.remaining, r.failed, r.target_master_version),
                             (1, 0, 0, 2))
            for user, (_, kid) in zip(("u1", "u2", "u3"), ids):
                keys = api.call("KeyVault", "ListBrokerKeys", token=api.token(user)).keys
                self.assertEqual([(k.id, k.master_key_version) for k in keys], [(kid, 2)])
            api.close()
            srv.stop_and_check(self)
        # After the move, v1 can be dropped.
        with self.start(env={"TW_VAULT_MASTER_KEYS": "v2:" + MASTER_V2}, workdir=workdir) as srv:
            api = Api(srv.addr)
            for user, (_, kid) in zip(("u1", "u2", "u3"), ids):
                self.assertTrue(api.call("KeyVault", "TestBrokerKey", token=api.token(user),
                                         broker_key_id=kid).ok)
            api.close()
            srv.stop_and_check(self)


if __name__ == "__main__":
    unittest.main()

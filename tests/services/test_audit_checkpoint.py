"""Signed audit checkpoints (issue 20 part 3): CreateCheckpoint signs a chain's head with the
configured Ed25519 key, stores it and logs it; the signature verifies here with python3-
cryptography and only the public key (an implementation nobody here wrote, over the canonical
bytes audit.proto defines); VerifyChain given a checkpoint detects what plain VerifyChain
cannot: the newest event deleted, and history rewritten with recomputed hashes. Negative
cases: a truncated chain, a rewritten event, a checkpoint signed by another key, a tampered
checkpoint, an unknown key version. The periodic job signs moved chains on its own.

Signing starts from the chain's newest stored checkpoint that verifies: a chain rewritten
under it is never signed again (a full walk alone would sign it), a forged checkpoint row stops
signing, and an event before the checkpoint is not re-read (VerifyChain is the full check)."""

import base64
import hashlib
import json
import os
import struct
import subprocess
import unittest

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from twapi import Api, audit, code_of  # puts tests/integration on sys.path
import twserver  # noqa: E402
from twserver import TwServer  # noqa: E402

SEED_V1, SEED_V2, SEED_OTHER = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32
KEYS = "v2:%s,v1:%s" % (base64.b64encode(SEED_V2).decode(), base64.b64encode(SEED_V1).decode())
R = audit.CheckpointResult


def field(b):
    return struct.pack(">Q", len(b)) + b


def cp_message(cp):
    """The signed bytes, written from audit.proto's AuditCheckpoint.signature comment."""
    t_us = cp.time.seconds * 1000000 + cp.time.nanos // 1000
    parts = [b"tradewink-audit-checkpoint-v1", cp.user_id.encode(), str(cp.sequence).encode(),
             bytes(cp.hash), str(t_us).encode(), str(cp.key_version).encode()]
    return b"".join(field(p) for p in parts)


def public(seed):
    return Ed25519PrivateKey.from_private_bytes(seed).public_key()


def event_hash(uid, e, prev):
    """AuditEvent.hash as server/audit/audit.h defines it, for a user's own event."""
    t_us = e.time.seconds * 1000000 + e.time.nanos // 1000
    parts = [str(uid), str(e.sequence), str(t_us), "user", e.actor_id,
             audit.AuditAction.Name(e.action)[len("AUDIT_ACTION_"):], e.object_id,
             audit.AuditOutcome.Name(e.outcome)[len("AUDIT_OUTCOME_"):], e.details_json]
    return hashlib.sha256(prev + b"".join(field(p.encode()) for p in parts)).digest()


def blob(b):
    return ("decode('%s', 'hex')" if twserver.backend_url() else "X'%s'") % b.hex()


def drop_append_only(workdir):
    if twserver.backend_url():
        twserver.db_sql(workdir, "ALTER TABLE audit_events DISABLE TRIGGER USER")
    else:
        twserver.db_sql(workdir, "DROP TRIGGER audit_events_no_update;"
                                 "DROP TRIGGER audit_events_no_delete;")


class CheckpointTest(unittest.TestCase):
    def start(self, workdir=None, **env):
        e = {"TW_AUDIT_SIGNING_KEYS": KEYS, "TW_AUDIT_CHECKPOINT_INTERVAL_S": "0"}
        e.update(env)
        return TwServer(env=e, workdir=workdir).start()

    def halts(self, api, tok, n):
        for _ in range(n):
            api.call("Risk", "Halt", token=tok, reason="checkpoint test")
            api.call("Risk", "Resume", token=tok)

    def verify(self, api, tok, cp):
        return api.call("Audit", "VerifyChain", token=tok, checkpoint=cp)

    def test_checkpoint_signed_verified_offline_and_extended(self):
        srv = self.start()
        try:
            api = Api(srv.addr)
            alice, bob = api.token("alice"), api.token("bob")
            admin = api.token("ops", admin=True)
            self.assertEqual(code_of(api.call, "Audit", "CreateCheckpoint", token=alice),
                             grpc.StatusCode.FAILED_PRECONDITION)  # nothing to sign yet
            self.halts(api, alice, 2)
            cp = api.call("Audit", "CreateCheckpoint", token=alice).checkpoint
            head = api.call("Audit", "ListEvents", token=alice).events[0]
            uid = api.call("Risk", "GetState", token=alice).state.user_id
            self.assertEqual((cp.user_id, cp.sequence, cp.hash, cp.key_version),
                             (str(uid), 4, head.hash, 2))
            self.assertEqual(len(cp.signature), 64)
            # Offline, with only the public key of v2 (and not under v1's).
            public(SEED_V2).verify(cp.signature, cp_message(cp))
            with self.assertRaises(Exception):
                public(SEED_V1).verify(cp.signature, cp_message(cp))
            # Logged, so an external log store keeps it.
            ev = srv.wait_for_event("audit_checkpoint")
            self.assertEqual((ev["sequence"], ev["hash_hex"], ev["ed25519_b64"]),
                             (4, cp.hash.hex(), base64.b64encode(cp.signature).decode()))
            # The chain extends it, also after more events.
            v = self.verify(api, alice, cp)
            self.assertEqual((v.ok, v.checkpoint_result), (True, R.CHECKPOINT_RESULT_EXTENDS))
            self.halts(api, alice, 1)
            v = self.verify(api, alice, cp)
            self.assertEqual((v.ok, v.checkpoint_result, v.events_checked),
                             (True, R.CHECKPOINT_RESULT_EXTENDS, 6))
            # An admin checkpoints any chain; a user only their own.
            self.assertEqual(api.call("Audit", "CreateCheckpoint", token=admin,
                                      user_id=str(uid)).checkpoint.sequence, 6)
            self.assertEqual(code_of(api.call, "Audit", "CreateCheckpoint", token=bob,
                                     user_id=str(uid)), grpc.StatusCode.PERMISSION_DENIED)
            # A checkpoint of another chain is not evidence about this one.
            self.halts(api, bob, 1)
            bcp = api.call("Audit", "CreateCheckpoint", token=bob).checkpoint
            self.assertEqual(code_of(self.verify, api, alice, bcp),
                             grpc.StatusCode.INVALID_ARGUMENT)

            # Tampered checkpoints and foreign signatures.
            def tampered(**kw):
                t = audit.AuditCheckpoint()
                t.CopyFrom(cp)
                for k, val in kw.items():
                    setattr(t, k, val)
                return t
            other = Ed25519PrivateKey.from_private_bytes(SEED_OTHER)
            forged = tampered()
            forged.signature = other.sign(cp_message(forged))
            old_key = tampered(key_version=1)  # a v1 label on a v2 signature
            cases = [
                ("signed by another key", forged, R.CHECKPOINT_RESULT_BAD_SIGNATURE),
                ("sequence changed", tampered(sequence=3), R.CHECKPOINT_RESULT_BAD_SIGNATURE),
                ("hash changed", tampered(hash=b"\x00" * 32), R.CHECKPOINT_RESULT_BAD_SIGNATURE),
                ("signature bit flipped", tampered(signature=bytes([cp.signature[0] ^ 1]) +
                                                   cp.signature[1:]),
                 R.CHECKPOINT_RESULT_BAD_SIGNATURE),
                ("other version label", old_key, R.CHECKPOINT_RESULT_BAD_SIGNATURE),
                ("unknown key version", tampered(key_version=9), R.CHECKPOINT_RESULT_UNKNOWN_KEY),
            ]
            for name, bad, want in cases:
                with self.subTest(name):
                    v = self.verify(api, alice, bad)
                    self.assertEqual((v.ok, v.checkpoint_result), (False, want))
            for name, kw in [("short hash", dict(hash=b"x")), ("short signature",
                                                                dict(signature=b"x")),
                             ("sequence 0", dict(sequence=0)), ("bad chain", dict(user_id="x"))]:
                with self.subTest(name):
                    self.assertEqual(code_of(self.verify, api, alice, tampered(**kw)),
                                     grpc.StatusCode.INVALID_ARGUMENT)
            # Stored: one row per checkpoint signed (alice twice, bob once).
            api.close()
            srv.stop_and_check(self)
            rows = self.rows(srv.workdir, "SELECT count(*) FROM audit_checkpoints")
            self.assertEqual(rows, "3")
        finally:
            srv.cleanup()

    def rows(self, workdir, sql):
        if twserver.backend_url():
            schema = twserver.pg_schema_for(workdir)
            return subprocess.check_output(
                ["psql", "-X", "-tA", twserver.backend_url(), "-c",
                 "SET search_path TO %s; %s" % (schema, sql)], text=True).strip().splitlines()[-1]
        import sqlite3
        db = sqlite3.connect(os.path.join(workdir, "tradewink.db"))
        try:
            return str(db.execute(sql).fetchone()[0])
        finally:
            db.close()

    def test_a_chain_whose_hashes_do_not_check_out_is_not_signed(self):
        srv = self.start()
        try:
            api = Api(srv.addr)
            alice = api.token("alice")
            self.halts(api, alice, 2)
            uid = int(api.call("Risk", "GetState", token=alice).state.user_id)
            api.close()
            srv.stop_and_check(self)
            drop_append_only(srv.workdir)
            # An event edited in place, its hash left as it was: the chain is broken.
            twserver.db_sql(srv.workdir, "UPDATE audit_events SET details='{\"reason\":\"x\"}' "
                                         "WHERE chain=%d AND seq=2" % uid)
            srv2 = self.start(workdir=srv.workdir)
            api = Api(srv2.addr)
            alice = api.token("alice")
            self.assertFalse(api.call("Audit", "VerifyChain", token=alice).ok)
            self.assertEqual(code_of(api.call, "Audit", "CreateCheckpoint", token=alice),
                             grpc.StatusCode.FAILED_PRECONDITION)
            api.close()
            srv2.stop_and_check(self)
            srv2.cleanup()
        finally:
            srv.cleanup()

    def test_truncation_and_rewrite_are_detected(self):
        srv = self.start()
        try:
            api = Api(srv.addr)
            alice = api.token("alice")
            self.halts(api, alice, 2)
            cp = api.call("Audit", "CreateCheckpoint", token=alice).checkpoint
            evs = list(reversed(api.call("Audit", "ListEvents", token=alice).events))
            uid = int(api.call("Risk", "GetState", token=alice).state.user_id)
            api.close()
            srv.stop_and_check(self)
            drop_append_only(srv.workdir)

            # Rewrite history as the database owner: change event 2, recompute every hash
            # after it. Plain VerifyChain cannot tell; the checkpoint can.
            prev = evs[0].hash
            sql = []
            for e in evs[1:]:
                if e.sequence == 2:
                    e.details_json = '{"reason":"nothing to see"}'
                h = event_hash(uid, e, prev)
                sql.append("UPDATE audit_events SET details='%s', prev_hash=%s, hash=%s "
                           "WHERE chain=%d AND seq=%d" % (e.details_json, blob(prev), blob(h), uid,
                                                          e.sequence))
                prev = h
            twserver.db_sql(srv.workdir, ";".join(sql))
            srv2 = self.start(workdir=srv.workdir)
            api = Api(srv2.addr)
            alice = api.token("alice")
            self.assertTrue(api.call("Audit", "VerifyChain", token=alice).ok)  # unkeyed hashes
            v = self.verify(api, alice, cp)
            self.assertEqual((v.ok, v.checkpoint_result), (False, R.CHECKPOINT_RESULT_DIVERGED))
            # Nor does the server sign the rewritten head: it no longer extends our checkpoint.
            self.assertEqual(code_of(api.call, "Audit", "CreateCheckpoint", token=alice),
                             grpc.StatusCode.FAILED_PRECONDITION)
            # The rewritten chain verifies on its own (its hashes are unkeyed), so only a
            # checkpoint kept outside the database shows it: clients and the log keep them.
            api.close()
            srv2.stop_and_check(self)
            srv2.cleanup()  # its process and pipes; the workdir stays (not its own)

            # Delete the newest event: plain VerifyChain still says OK, the checkpoint not.
            twserver.db_sql(srv.workdir, "DELETE FROM audit_events WHERE chain=%d AND seq=4" % uid)
            srv3 = self.start(workdir=srv.workdir)
            api = Api(srv3.addr)
            alice = api.token("alice")
            v = api.call("Audit", "VerifyChain", token=alice)
            self.assertEqual((v.ok, v.events_checked), (True, 3))
            v = self.verify(api, alice, cp)
            self.assertEqual((v.ok, v.checkpoint_result), (False, R.CHECKPOINT_RESULT_TRUNCATED))
            api.close()
            srv3.stop_and_check(self)
            srv3.cleanup()
        finally:
            srv.cleanup()

    def test_signing_starts_at_the_newest_checkpoint_that_verifies(self):
        srv = self.start()
        try:
            api = Api(srv.addr)
            alice = api.token("alice")
            self.halts(api, alice, 1)
            cp = api.call("Audit", "CreateCheckpoint", token=alice).checkpoint  # head 2
            uid = int(cp.user_id)
            api.close()
            srv.stop_and_check(self)
            drop_append_only(srv.workdir)
            # Event 1 altered (its hash left as it was): a full walk breaks at 1.
            twserver.db_sql(srv.workdir, "UPDATE audit_events SET details='{\"x\":1}' "
                                         "WHERE chain=%d AND seq=1" % uid)
            srv2 = self.start(workdir=srv.workdir)
            api = Api(srv2.addr)
            alice = api.token("alice")
            v = api.call("Audit", "VerifyChain", token=alice)
            self.assertEqual((v.ok, v.first_broken_sequence), (False, 1))
            # Signing reads from the checkpoint on: events 3 and 4 are checked and signed.
            self.halts(api, alice, 1)
            cp2 = api.call("Audit", "CreateCheckpoint", token=alice).checkpoint
            self.assertEqual(cp2.sequence, 4)
            public(SEED_V2).verify(cp2.signature, cp_message(cp2))
            api.close()
            srv2.stop_and_check(self)
            srv2.cleanup()
            # A checkpoint row the server never signed (a higher sequence, a bad signature)
            # stops signing, loudly: the table was written around the server.
            twserver.db_sql(srv.workdir,
                            "INSERT INTO audit_checkpoints (chain, seq, hash, time_us, "
                            "key_version, signature) VALUES (%d, 9, %s, 1, 2, %s)"
                            % (uid, blob(b"\x11" * 32), blob(b"\x22" * 64)))
            srv3 = self.start(workdir=srv.workdir)
            api = Api(srv3.addr)
            alice = api.token("alice")
            self.assertEqual(code_of(api.call, "Audit", "CreateCheckpoint", token=alice),
                             grpc.StatusCode.FAILED_PRECONDITION)
            # The log line is read from the server's stderr by another thread: wait for it.
            self.assertTrue(srv3.wait_for(lambda lines: any("bad signature" in ln
                                                            for ln in lines), timeout=10),
                            srv3.stderr_text())
            api.close()
            srv3.stop_and_check(self)
            srv3.cleanup()
        finally:
            srv.cleanup()

    def test_periodic_checkpoints_of_moved_chains(self):
        srv = self.start(TW_AUDIT_CHECKPOINT_INTERVAL_S="1")
        try:
            api = Api(srv.addr)
            alice = api.token("alice")
            self.halts(api, alice, 1)
            ev = srv.wait_for_event("audit_checkpoint", timeout=10)
            self.assertIsNotNone(ev)
            self.assertEqual(ev["sequence"], 2)
            cp = audit.AuditCheckpoint(user_id=str(ev["user_id"]), sequence=ev["sequence"],
                                       hash=bytes.fromhex(ev["hash_hex"]),
                                       key_version=ev["key_version"],
                                       signature=base64.b64decode(ev["ed25519_b64"]))
            cp.time.seconds, cp.time.nanos = ev["time_us"] // 1000000, ev["time_us"] % 1000000 * 1000
            # What the log holds is a checkpoint the server and the public key both accept.
            public(SEED_V2).verify(cp.signature, cp_message(cp))
            v = self.verify(api, alice, cp)
            self.assertEqual((v.ok, v.checkpoint_result), (True, R.CHECKPOINT_RESULT_EXTENDS))
            api.close()
            srv.stop_and_check(self)
            # An unmoved chain is not signed again.
            n = len(srv.events("audit_checkpoint"))
            self.assertLessEqual(n, 2)  # alice's; the system chain only if it had events
        finally:
            srv.cleanup()

    def test_twctl_verifies_offline_with_only_the_public_keys(self):
        twctl = os.path.join(os.path.dirname(os.path.dirname(twserver.binary_path())), "client",
                             "twctl", "twctl")
        if not os.access(twctl, os.X_OK):
            self.skipTest("twctl not built next to tradewinkd")
        from google.protobuf import json_format
        srv = self.start()
        try:
            api = Api(srv.addr)
            alice = api.token("alice")
            self.halts(api, alice, 1)
            resp = api.call("Audit", "CreateCheckpoint", token=alice)
            line = srv.wait_for_event("audit_checkpoint")
            api.close()
            srv.stop_and_check(self)
            d = srv.workdir
            keys = subprocess.run([twserver.binary_path(), "--audit-public-keys"],
                                  env=dict(os.environ, TW_AUDIT_SIGNING_KEYS=KEYS),
                                  capture_output=True, text=True, check=True).stdout
            self.assertEqual(keys.splitlines()[0].split(":")[0], "v2")
            other = "v2:%s\n" % base64.b64encode(public(SEED_OTHER).public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
            files = {"keys": keys, "other": other,
                     "proto3.json": json_format.MessageToJson(resp),  # not our printer
                     "log.json": json.dumps(line)}
            tampered = json.loads(files["proto3.json"])
            tampered["checkpoint"]["sequence"] = "1"
            files["tampered.json"] = json.dumps(tampered)
            for name, text in files.items():
                with open(os.path.join(d, name), "w") as f:
                    f.write(text)

            def run(cp, k):
                return subprocess.run([twctl, "audit", "verify", "--checkpoint",
                                       os.path.join(d, cp), "--public-keys", os.path.join(d, k)],
                                      capture_output=True, text=True, timeout=30)
            for cp, k, want in [("proto3.json", "keys", 0), ("log.json", "keys", 0),
                                ("tampered.json", "keys", 65), ("proto3.json", "other", 65)]:
                with self.subTest(cp=cp, keys=k):
                    r = run(cp, k)
                    self.assertEqual(r.returncode, want, r.stdout + r.stderr)
        finally:
            srv.cleanup()

    def test_without_keys_and_with_bad_keys(self):
        with TwServer() as srv:
            api = Api(srv.addr)
            alice = api.token("alice")
            self.halts(api, alice, 1)
            self.assertEqual(code_of(api.call, "Audit", "CreateCheckpoint", token=alice),
                             grpc.StatusCode.FAILED_PRECONDITION)
            api.close()
            srv.stop_and_check(self)
        for bad in ("v1:short", "x1:" + base64.b64encode(SEED_V1).decode(),
                    "v1:%s,v1:%s" % ((base64.b64encode(SEED_V1).decode(),) * 2)):
            with self.subTest(bad=bad[:8]):
                rc, _, err = twserver.run_once({"TW_AUDIT_SIGNING_KEYS": bad})
                self.assertEqual(rc, 2, err)
                self.assertIn("TW_AUDIT_SIGNING_KEYS", err)
                self.assertNotIn(base64.b64encode(SEED_V1).decode(), err)


if __name__ == "__main__":
    unittest.main()

"""Auth conformance: every rule auth.proto's comments state, one table row each, so code that
drifts from its contract fails here. Refusals must be INVALID_ARGUMENT naming the field."""

import time
import unittest

import grpc

from twapi import Api, common
from twserver import TwServer

USER, ADMIN = common.ROLE_USER, common.ROLE_ADMIN


def status(fn, *args, **kwargs):
    """(code, details) a call ends with; (OK, "") when it returns."""
    try:
        fn(*args, **kwargs)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details() or ""


class AuthConformanceTest(unittest.TestCase):
    def setUp(self):
        self.srv = TwServer().start()
        self.api = Api(self.srv.addr)

    def tearDown(self):
        self.api.close()
        self.srv.stop_and_check(self)
        self.srv.cleanup()

    def issue(self, **kw):
        return self.api.call("Auth", "IssueDevToken", **kw)

    # IssueDevTokenRequest: subject 1-128 of [A-Za-z0-9._@-]; role UNSPECIFIED invalid;
    # ttl 0 = 3600, maximum 86400.
    REFUSED = [
        ("empty subject", dict(subject="", role=USER), "subject"),
        ("129-char subject", dict(subject="a" * 129, role=USER), "subject"),
        ("space in subject", dict(subject="a b", role=USER), "subject"),
        ("slash in subject", dict(subject="../x", role=USER), "subject"),
        ("colon in subject", dict(subject="a:b", role=USER), "subject"),
        ("plus in subject", dict(subject="a+b", role=USER), "subject"),
        ("tab in subject", dict(subject="a\tb", role=USER), "subject"),
        ("non-ASCII subject", dict(subject="j\u00f6rg", role=USER), "subject"),
        ("role unspecified", dict(subject="alice", role=common.ROLE_UNSPECIFIED), "role"),
        ("role out of range", dict(subject="alice", role=7), "role"),
        ("ttl over maximum", dict(subject="alice", role=USER, ttl_seconds=86401), "ttl_seconds"),
        ("ttl 31 days", dict(subject="alice", role=USER, ttl_seconds=2678400), "ttl_seconds"),
        ("negative ttl", dict(subject="alice", role=USER, ttl_seconds=-1), "ttl_seconds"),
    ]

    def test_issue_dev_token_refuses_what_the_contract_forbids(self):
        for name, req, field in self.REFUSED:
            with self.subTest(name):
                code, details = status(self.issue, **req)
                self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
                self.assertIn(field, details)

    ACCEPTED = [
        ("1-char subject", dict(subject="a", role=USER), "a", USER, 3600),
        ("128-char subject", dict(subject="s" * 128, role=USER), "s" * 128, USER, 3600),
        ("every allowed class", dict(subject="Az09._@-", role=ADMIN), "Az09._@-", ADMIN, 3600),
        ("email-like", dict(subject="ops@example.com", role=USER), "ops@example.com", USER, 3600),
        ("ttl 1", dict(subject="t1", role=USER, ttl_seconds=1), "t1", USER, 1),
        ("ttl maximum", dict(subject="t2", role=USER, ttl_seconds=86400), "t2", USER, 86400),
    ]

    def test_issue_dev_token_accepts_what_the_contract_allows(self):
        for name, req, subject, role, ttl in self.ACCEPTED:
            with self.subTest(name):
                before = int(time.time())
                r = self.issue(**req)
                after = int(time.time())
                self.assertTrue(r.token)
                self.assertGreaterEqual(r.expires_at.seconds, before + ttl)
                self.assertLessEqual(r.expires_at.seconds, after + ttl)
                if ttl == 1:
                    continue  # may already be expired by the time WhoAmI runs
                w = self.api.call("Auth", "WhoAmI", token=r.token)
                self.assertEqual((w.subject, w.role), (subject, role))
                self.assertEqual(w.expires_at.seconds, r.expires_at.seconds)
                self.assertTrue(w.HasField("issued_at"))
                self.assertLessEqual(w.issued_at.seconds, w.expires_at.seconds)

    def test_expiry_counts_from_the_second_the_call_began(self):
        """Just past a second boundary the kernel's coarse clock (what time(NULL) reads) still
        says the previous second for up to a tick; a token minted from it expired one second
        before now + ttl. Each try starts the call right after a boundary, inside that window."""
        for attempt in range(5):
            with self.subTest(attempt=attempt):
                while time.time() % 1.0 > 0.0005:
                    time.sleep(max(0.0, 0.9995 - time.time() % 1.0))
                before = int(time.time())
                r = self.issue(subject="edge", role=USER, ttl_seconds=60)
                self.assertGreaterEqual(r.expires_at.seconds, before + 60)
                w = self.api.call("Auth", "WhoAmI", token=r.token)
                self.assertGreaterEqual(w.issued_at.seconds, before)

    def test_token_problems_are_unauthenticated_without_detail(self):
        good = self.issue(subject="alice", role=USER).token
        for name, tok in (("none", None), ("garbage", "not-a-jwt"), ("tampered", good + "x"),
                          ("truncated", good[:-5])):
            with self.subTest(name):
                code, details = status(self.api.call, "Auth", "WhoAmI", token=tok)
                self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)
                self.assertNotIn(good[:20], details)

    def test_issue_dev_token_is_public(self):
        # Role: public -- no authorization metadata needed.
        self.assertEqual(
            status(self.issue, subject="pub", role=USER)[0], grpc.StatusCode.OK)


class AuthOutsideDevModeTest(unittest.TestCase):
    def test_issue_dev_token_is_unimplemented_outside_dev_mode(self):
        import base64
        import os
        import subprocess
        import tempfile
        d = tempfile.mkdtemp(prefix="tw-pem-")
        priv, pub = os.path.join(d, "k.pem"), os.path.join(d, "pub.pem")
        subprocess.check_call(["openssl", "genrsa", "-out", priv, "2048"],
                              stderr=subprocess.DEVNULL)
        subprocess.check_call(["openssl", "rsa", "-in", priv, "-pubout", "-out", pub],
                              stderr=subprocess.DEVNULL)
        env = {"TW_AUTH_MODE": "pem", "TW_JWT_PUBLIC_KEY_FILE": pub,
               "TW_VAULT_MASTER_KEYS": "v1:" + base64.b64encode(b"\x33" * 32).decode()}
        with TwServer(env=env) as srv:
            api = Api(srv.addr)
            code, _ = status(api.call, "Auth", "IssueDevToken", subject="alice", role=USER)
            self.assertEqual(code, grpc.StatusCode.UNIMPLEMENTED)
            api.close()
            srv.stop_and_check(self)


if __name__ == "__main__":
    unittest.main()

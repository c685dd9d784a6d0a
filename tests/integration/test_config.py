"""integ_config: tradewinkd's start-up validation of TW_* variables, seen from outside.

Purpose: each bad value makes the process exit 2 before any port opens or any file is created,
with exactly one line naming the offending variable (and no echo of secret values), every bad
variable of one start reported together; an unknown TW_* name is a warning naming the nearest
setting; `--help` lists every variable of the design's interface contract with its default;
`--version` prints the version. Table driven: one row per bad value.
"""

import os
import re
import shutil
import tempfile
import unittest

import twserver

SECRET = "S3CRETpassw0rdVALUE"

# (variable, value, extra env, words the line must contain)
BAD = [
    ("TW_LISTEN", "nope", {}, ["host:port"]),
    ("TW_LISTEN", "127.0.0.1:70000", {}, []),
    ("TW_LISTEN", "127.0.0.1:", {}, []),
    ("TW_LISTEN", "", {}, []),
    ("TW_OPS_LISTEN", "nope", {}, []),
    ("TW_WORKERS", "-1", {}, ["range"]),
    ("TW_WORKERS", "abc", {}, ["integer"]),
    ("TW_WORKERS", "100000", {}, ["range"]),
    ("TW_WORKERS", "4x", {}, []),
    ("TW_LOG_LEVEL", "loud", {}, ["debug"]),
    ("TW_AUTH_MODE", "foo", {}, ["jwks"]),
    ("TW_MAX_MESSAGE_BYTES", "1", {}, ["range"]),
    ("TW_MAX_MESSAGE_BYTES", "99999999999999999999", {}, []),
    ("TW_SHUTDOWN_GRACE_MS", "-5", {}, []),
    ("TW_TLS_CERT_FILE", "/nonexistent/cert.pem", {"TW_TLS_KEY_FILE": "/etc/hostname"}, []),
    ("TW_TLS_KEY_FILE", "/nonexistent/key.pem", {"TW_TLS_CERT_FILE": "/etc/hostname"}, []),
    ("TW_TLS_CLIENT_CA_FILE", "/nonexistent/ca.pem", {}, []),
    ("TW_DATABASE_URL", "mysql://x", {}, ["sqlite:"]),
    ("TW_REDIS_URL", "rediss://x", {}, ["stunnel"]),
    ("TW_REDIS_URL", "http://x", {}, ["redis://"]),
    ("TW_JWKS_URL", None, {"TW_AUTH_MODE": "jwks", "TW_VAULT_MASTER_KEYS": "v1:" + "A" * 44},
     ["TW_AUTH_MODE=jwks"]),
    ("TW_JWKS_URL", "http://idp.invalid/jwks", {"TW_AUTH_MODE": "jwks",
                                                "TW_VAULT_MASTER_KEYS": "v1:" + "A" * 44},
     ["https"]),
    ("TW_JWT_PUBLIC_KEY_FILE", None, {"TW_AUTH_MODE": "pem",
                                      "TW_VAULT_MASTER_KEYS": "v1:" + "A" * 44}, ["pem"]),
    ("TW_JWT_CLOCK_SKEW_S", "9999", {}, ["range"]),
    ("TW_JWKS_CACHE_TTL_S", "1", {}, ["range"]),
    ("TW_PBKDF2_ITERATIONS", "1000", {}, ["range"]),
    ("TW_SIM_ENABLED", "maybe", {}, ["boolean"]),
    ("TW_BROKER", "robinhood", {}, ["sim"]),
    # Checked by the parser that uses each, before anything is opened (issue 20 part 4).
    ("TW_RATE_API", "lots", {}, []),
    ("TW_RATE_ORDERS", "10/fortnight", {}, []),
    ("TW_WEBHOOK_SECRETS", "broker", {}, []),
    ("TW_VAULT_MASTER_KEYS", "v1:short", {}, ["entry 1"]),
    ("TW_SECTOR_MAP_FILE", "/nonexistent/sectors.csv", {}, ["cannot read"]),
    ("TW_SECTOR_MAP_FILE", "/etc/hostname", {}, []),
]

# Cross-field rules: (description, env, variable the single line must name)
CROSS = [
    ("cert without key", {"TW_TLS_CERT_FILE": "/etc/hostname"}, "TW_TLS_CERT_FILE"),
    ("client CA without server cert", {"TW_TLS_CLIENT_CA_FILE": "/etc/hostname"},
     "TW_TLS_CLIENT_CA_FILE"),
    ("sim broker with sim disabled", {"TW_SIM_ENABLED": "0"}, "TW_BROKER"),
]

# The design's interface contract (shared/DESIGN.md) plus the transport's own knobs.
CONTRACT_VARS = [
    "TW_LISTEN", "TW_OPS_LISTEN", "TW_DATABASE_URL", "TW_REDIS_URL", "TW_AUTH_MODE",
    "TW_JWKS_URL", "TW_JWKS_CA_FILE", "TW_JWT_PUBLIC_KEY_FILE", "TW_JWT_ISSUER",
    "TW_JWT_AUDIENCE", "TW_DEV_KEY_FILE", "TW_VAULT_MASTER_KEYS", "TW_TLS_CERT_FILE",
    "TW_TLS_KEY_FILE", "TW_TLS_CLIENT_CA_FILE", "TW_WEBHOOK_SECRETS", "TW_WORKERS",
    "TW_LOG_LEVEL", "TW_MAX_MESSAGE_BYTES", "TW_SHUTDOWN_GRACE_MS",
]


class BadValues(unittest.TestCase):
    def test_each_bad_value_exits_2_with_one_line_naming_the_variable(self):
        for var, value, extra, words in BAD:
            with self.subTest(var=var, value=value):
                env = dict(extra)
                if value is not None:
                    env[var] = value
                rc, out, err = twserver.run_once(env)
                self.assertEqual(rc, 2, "rc=%r stderr=%r" % (rc, err))
                self.assertNotIn('"listening"', err)
                named = [ln for ln in err.splitlines() if ln.startswith(var)]
                self.assertEqual(len(named), 1, "want one line starting with %s:\n%s" % (var, err))
                others = [ln for ln in err.splitlines()
                          if ln.startswith("TW_") and not ln.startswith(var)]
                self.assertEqual(others, [], "other variables blamed:\n%s" % err)
                for w in words:
                    self.assertIn(w, named[0])
                self.assertEqual(twserver.sanitizer_reports(err), [])

    def test_cross_field_rules_exit_2_naming_the_variable(self):
        for desc, env, var in CROSS:
            with self.subTest(rule=desc):
                rc, _, err = twserver.run_once(env)
                self.assertEqual(rc, 2, err)
                self.assertTrue(any(ln.startswith(var) for ln in err.splitlines()), err)

    def test_secret_values_are_never_echoed(self):
        cases = [
            {"TW_REDIS_URL": "rediss://user:" + SECRET + "@x"},
            {"TW_REDIS_URL": "ftp://" + SECRET},
            {"TW_DATABASE_URL": "mysql://root:" + SECRET + "@db"},
        ]
        for env in cases:
            with self.subTest(var=list(env)[0]):
                rc, out, err = twserver.run_once(env)
                self.assertEqual(rc, 2, err)
                self.assertNotIn(SECRET, err + out)

    def test_several_bad_values_are_all_reported(self):
        rc, _, err = twserver.run_once({"TW_WORKERS": "abc", "TW_LOG_LEVEL": "loud"})
        self.assertEqual(rc, 2)
        self.assertTrue(any(ln.startswith("TW_WORKERS") for ln in err.splitlines()), err)
        self.assertTrue(any(ln.startswith("TW_LOG_LEVEL") for ln in err.splitlines()), err)

    def test_late_values_are_all_reported_before_anything_opens(self):
        work = tempfile.mkdtemp(prefix="twcfg-")
        try:
            db = os.path.join(work, "tw.db")
            keys = os.path.join(work, "master.key")
            rc, _, err = twserver.run_once({
                "TW_RATE_API": "lots", "TW_WEBHOOK_SECRETS": "broker:whsec_" + SECRET,
                "TW_VAULT_MASTER_KEYS": "v1:" + SECRET, "TW_SECTOR_MAP_FILE": "/etc/hostname",
                "TW_DATABASE_URL": "sqlite:" + db, "TW_VAULT_MASTER_KEY_FILE": keys})
            self.assertEqual(rc, 2, err)
            named = [ln.split(":")[0] for ln in err.splitlines() if ln.startswith("TW_")]
            self.assertEqual(sorted(named), ["TW_RATE_API", "TW_SECTOR_MAP_FILE",
                                             "TW_VAULT_MASTER_KEYS", "TW_WEBHOOK_SECRETS"], err)
            self.assertEqual(os.listdir(work), [], "something was opened before validation")
            self.assertNotIn(SECRET, err)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def test_an_unknown_tw_name_is_a_warning_naming_the_nearest_setting(self):
        with twserver.TwServer(env={"TW_MAX_MESAGE_BYTES": "2048", "TW_ZZZ_QQQ": "1"}) as srv:
            warns = [e["msg"] for e in srv.events("config") if e.get("level") == "warn"]
            srv.stop_and_check(self)
        self.assertIn("TW_MAX_MESAGE_BYTES is not a setting and is ignored "
                      "(did you mean TW_MAX_MESSAGE_BYTES?)", warns)
        self.assertIn("TW_ZZZ_QQQ is not a setting and is ignored", warns)

    def test_version(self):
        rc, out, err = twserver.run_once(args=["--version"])
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"^tradewinkd \S+ \(revision \S+, gRPC core \d+\.\d+\.\d+\)\n$")

    def test_unknown_argument_exits_2(self):
        rc, _, err = twserver.run_once(args=["--frobnicate"])
        self.assertEqual(rc, 2)
        self.assertIn("--frobnicate", err)

    def test_good_edge_values_start(self):
        env = {"TW_WORKERS": "1", "TW_MAX_MESSAGE_BYTES": "1024", "TW_SHUTDOWN_GRACE_MS": "0",
               "TW_SIM_ENABLED": "false", "TW_BROKER": "alpaca"}
        with twserver.TwServer(env=env) as srv:
            self.assertEqual(srv.listening.get("workers"), 1)
            srv.stop_and_check(self)


class Help(unittest.TestCase):
    def test_help_lists_every_variable_with_its_default(self):
        rc, out, err = twserver.run_once(args=["--help"])
        self.assertEqual(rc, 0, err)
        for var in CONTRACT_VARS:
            with self.subTest(var=var):
                self.assertRegex(out, r"(?m)^\s+%s\b" % re.escape(var))
        self.assertIn("127.0.0.1:50051", out)
        self.assertIn("sqlite:./tradewink.db", out)
        self.assertEqual(out.count("; default:"), len(re.findall(r"(?m)^\s+TW_\w+\s", out)))

    def test_help_and_markdown_reference_list_the_same_variables(self):
        _, help_out, _ = twserver.run_once(args=["--help"])
        rc, md, err = twserver.run_once(args=["--config-markdown"])
        self.assertEqual(rc, 0, err)
        in_help = set(re.findall(r"(?m)^\s+(TW_\w+)", help_out))
        in_md = set(re.findall(r"`(TW_\w+)`", md))
        self.assertEqual(in_help, in_md)
        self.assertGreaterEqual(len(in_help), len(CONTRACT_VARS))

    def test_help_does_not_start_a_server(self):
        rc, out, err = twserver.run_once(args=["--help"])
        self.assertEqual(rc, 0)
        self.assertNotIn("listening", err)


if __name__ == "__main__":
    twserver.main()

"""fault_alpaca_stream_users: one user's slow commit does not hold another user's streamed fills.

Every Alpaca stream of a process shares one service thread (brokers/alpaca_stream.c); the
reports they bring are applied by workers, a user's always by the same one. Production shape
on a PostgreSQL of this test's own (row locks are per user there), an AlpacaStub that speaks
trade_updates, two users with a key and a resting order each, both streams listening:

- another session holds alice's account row (SELECT ... FOR UPDATE), so applying her fill must
  wait; the broker streams alice's fill, then bob's: bob's order is FILLED at once (on a single
  applying thread it waited behind alice's for as long as her row stayed locked);
- once the row is released, alice's fill is applied too (nothing was dropped).
"""

import subprocess
import time
import unittest

from faultlib import (AlpacaStub, Api, OwnPostgres, TwServer, add_alpaca_key, status_name,
                      submit, wait_until)

KEYS = {"alice": ("AKUSERSA00000001", "users-secret-alice-Qw83nVx1Lp0s"),
        "bob": ("AKUSERSB00000002", "users-secret-bob-Zr7yHq27vLm0Zx")}
TS = "2026-01-02T15:04:05.678Z"


class AlpacaStreamUsersTest(unittest.TestCase):
    def setUp(self):
        self.pg = OwnPostgres()
        self.pg.start()
        self.addCleanup(self.pg.cleanup)
        url, self.schema = self.pg.schema_url()
        self.stub = AlpacaStub(stream=True).start()
        self.addCleanup(self.stub.stop)
        self.stub.trades["AAPL"] = "100.00"
        env = dict(self.stub.env(), TW_SIM_ENABLED="0", TW_BROKER="alpaca",
                   TW_DATABASE_URL=url)
        self.srv = TwServer(env=env)
        self.srv.start()
        self.api = Api(self.srv.addr)
        self.holder = None

    def tearDown(self):
        if self.holder:
            if self.holder.poll() is None:
                self.holder.kill()
            self.holder.wait(timeout=10)
            self.holder.stdin.close()
            self.holder.stdout.close()
        self.api.close()
        try:
            self.srv.stop_and_check(self)
        finally:
            self.srv.cleanup()

    def get(self, tok, oid):
        return self.api.call("Orders", "GetOrder", token=tok, order_id=oid).order

    def test_a_locked_account_does_not_hold_another_users_streamed_fill(self):
        toks, orders = {}, {}
        for name, (kid, secret) in KEYS.items():
            toks[name] = self.api.token("users-" + name)
            add_alpaca_key(self.api, toks[name], kid, secret)
            o = submit(self.api, toks[name], "su-" + name, qty="2", limit="95.00")
            self.assertEqual(status_name(o.status), "ACCEPTED", str(o))
            orders[name] = o
        for kid, _ in KEYS.values():
            self.assertTrue(wait_until(lambda: self.stub.stream_listening(kid) == 1, 30, 0.1),
                            "stream of %s never listened" % kid)
        alice_id = orders["alice"].user_id
        # Another session holds alice's row until told to let go.
        self.holder = subprocess.Popen(
            ["psql", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", self.pg.url],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.holder.stdin.write(
            "BEGIN;\nSELECT user_id FROM %s.risk_state WHERE user_id = %s FOR UPDATE;\n"
            "\\echo held\n" % (self.schema, alice_id))
        self.holder.stdin.flush()
        self.assertEqual(self.holder.stdout.readline().strip(), alice_id)
        self.assertEqual(self.holder.stdout.readline().strip(), "held")
        self.assertEqual(self.stub.stream_fill("tw-" + orders["alice"].id, "95", TS), 1)
        time.sleep(0.3)  # alice's fill is being applied (waiting on her row) first
        t0 = time.monotonic()
        self.assertEqual(self.stub.stream_fill("tw-" + orders["bob"].id, "95", TS), 1)
        ok = wait_until(lambda: status_name(self.get(toks["bob"], orders["bob"].id).status)
                        == "FILLED", 5, 0.05)
        waited = time.monotonic() - t0
        self.assertTrue(ok, "bob's streamed fill waited behind alice's locked account")
        self.assertEqual(status_name(self.get(toks["alice"], orders["alice"].id).status),
                         "ACCEPTED")
        print("\nbob's fill applied %.2f s after it was streamed, alice's row held" % waited)
        self.holder.stdin.write("ROLLBACK;\n\\q\n")
        self.holder.stdin.flush()
        self.holder.wait(timeout=10)
        ok = wait_until(lambda: status_name(self.get(toks["alice"], orders["alice"].id).status)
                        == "FILLED", 15, 0.1)
        self.assertTrue(ok, "alice's fill was lost: %s" % self.get(toks["alice"],
                                                                  orders["alice"].id))


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""fault_alpaca_budget: one Alpaca request budget for every replica of an account (issue 23).

Alpaca counts requests per account, whichever replica sends them. Two tradewinkd share one
SQLite database, one redis-server of this test's own and an AlpacaStub, with
TW_ALPACA_REQUESTS_PER_MIN=30. Both reconcilers poll the same eight resting orders (each replica
alone would ask a few hundred times a minute), so both want far more than the budget:

- once the buckets are drained, the stub sees at most the budget's rate (30/min) over a window,
  plus one request of slack per replica: with a bucket per process it saw twice that;
- the trader's own CancelOrder, on the replica that did not place the orders, still goes
  through: background polling never takes the last quarter of the one bucket.
"""

import shutil
import sys
import tempfile
import time
import unittest

from faultlib import AlpacaStub, Api, OwnRedis, TwServer, add_alpaca_key, status_name, submit

KEY_ID, SECRET = "AKBUDGET00000001", "budget-secret-Zx81mQv3Lp9sTr2w"
PER_MIN = 30
ORDERS = 8
WARM_S, WINDOW_S = 12, 30


class AlpacaBudgetTest(unittest.TestCase):
    def setUp(self):
        self.redis = OwnRedis().start()
        self.addCleanup(self.redis.cleanup)
        self.stub = AlpacaStub().start()
        self.addCleanup(self.stub.stop)
        self.stub.trades["AAPL"] = "100.00"
        self.dir = tempfile.mkdtemp(prefix="twfault-budget-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        env = dict(self.stub.env(), TW_SIM_ENABLED="0", TW_BROKER="alpaca",
                   TW_REDIS_URL=self.redis.url, TW_ALPACA_REQUESTS_PER_MIN=str(PER_MIN))
        self.srvs = []
        for _ in range(2):
            s = TwServer(env=env, workdir=self.dir)
            s.start()
            self.srvs.append(s)
        self.apis = [Api(s.addr) for s in self.srvs]

    def tearDown(self):
        for api in self.apis:
            api.close()
        for s in self.srvs:
            try:
                s.stop_and_check(self)
            finally:
                s.cleanup()

    def sent(self):
        with self.stub.lock:
            return sum(1 for _, _, kid in self.stub.requests if kid == KEY_ID)

    def test_replicas_share_one_budget_and_the_trader_keeps_a_quarter(self):
        tok = self.apis[0].token("budget-alice")
        add_alpaca_key(self.apis[0], tok, KEY_ID, SECRET)
        placed = []
        for i in range(ORDERS):
            o = submit(self.apis[0], tok, "bud-%d" % i, qty=str(i + 1), limit="90.00")
            self.assertEqual(status_name(o.status), "ACCEPTED", str(o))
            placed.append(o.id)
            time.sleep(0.25)  # under the order rate rule (5 a second)
        time.sleep(WARM_S)  # both replicas poll the quiet orders and drain the bucket
        n0, t0 = self.sent(), time.monotonic()
        time.sleep(WINDOW_S)
        n1, t1 = self.sent(), time.monotonic()
        allowed = PER_MIN * (t1 - t0) / 60.0 + 2
        print("\n%d requests in %.1f s with a budget of %d/min (at most %.1f)"
              % (n1 - n0, t1 - t0, PER_MIN, allowed), file=sys.stderr)
        self.assertLessEqual(n1 - n0, allowed,
                             "%d requests in %.1f s: over the one budget of %d/min"
                             % (n1 - n0, t1 - t0, PER_MIN))
        # Not idle either: the polling spends what the budget allows.
        self.assertGreaterEqual(n1 - n0, allowed / 2, "%d requests in %.1f s" % (n1 - n0,
                                                                               t1 - t0))
        # The quarter the polling leaves serves the trader's cancel on the other replica.
        r = self.apis[1].call("Orders", "CancelOrder", token=tok, order_id=placed[0],
                              timeout=30).order
        self.assertEqual(status_name(r.status), "CANCELED", str(r))


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""fault_redis_kill: the shared Redis rate limiter killed under load, then restarted.

Two tradewinkd share one database and one redis-server of this test's own (so the shared CI
Redis is never touched). Background load (orders from several users on both servers) runs the
whole time. The general API class is limited to 10 per minute per user, so one fresh user per
phase probes whose limiter answers:
  - Redis up: the two servers share one limit: exactly 10 calls succeed in total;
  - Redis killed (SIGKILL by PID): both fall back to their in-process limiters (gauge
    tradewink_redis_fallback = 1 on /metrics); each allows 10, so 20 succeed in total, and the service
    keeps answering;
  - Redis started again on the same port: both leave fallback (gauge back to 0) and the shared
    limit of 10 in total is back.
Throughout, every call ends OK or RESOURCE_EXHAUSTED; nothing else.
"""

import collections
import os
import shutil
import tempfile
import threading
import time
import unittest

import grpc

from faultlib import (OwnRedis, TwServer, http_get, metric_value, own_api, sim, submit,
                      wait_until)

API_LIMIT = 10
SYMBOLS = ["AAPL", "MSFT", "JNJ", "XOM"]


class RedisKillTest(unittest.TestCase):
    def setUp(self):
        self.redis = OwnRedis().start()
        self.dir = tempfile.mkdtemp(prefix="twfault-redis-db-")
        self.env = {"TW_REDIS_URL": self.redis.url,
                    "TW_RATE_API": "%d/min:%d" % (API_LIMIT, API_LIMIT),
                    "TW_RATE_ORDERS": "1000/s:1000",
                    "TW_DATABASE_URL": "sqlite:%s/shared.db" % self.dir,
                    "TW_DEV_KEY_FILE": self.dir + "/dev.pem",
                    "TW_VAULT_MASTER_KEY_FILE": self.dir + "/mk"}

    def tearDown(self):
        self.redis.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)

    def gauge(self, srv):
        _, text = http_get(srv.listening["ops_port"], "/metrics")
        return metric_value(text, "tradewink_redis_fallback")

    def probe(self, apis, subject):
        """A fresh user calls an API-class method alternately on both servers; returns how
        many of 3 * limit calls succeeded (the rest must be RESOURCE_EXHAUSTED)."""
        tok = apis[0].token(subject)
        ok = 0
        for i in range(3 * API_LIMIT):
            try:
                apis[i % 2].call("Orders", "GetAccountSettings", token=tok)
                ok += 1
            except grpc.RpcError as e:
                self.assertEqual(e.code(), grpc.StatusCode.RESOURCE_EXHAUSTED, str(e))
        return ok

    def test_limits_fall_back_and_resume(self):
        a = TwServer(env=self.env)
        a.start()
        b = TwServer(env=self.env)
        b.start()
        try:
            self._run(a, b)
        finally:
            a.cleanup()
            b.cleanup()

    def _run(self, a, b):
        apis = [own_api(a.addr), own_api(b.addr)]
        admin = apis[0].token("ops", admin=True)
        for x in apis:  # each server has its own sim engine
            x.call("Sim", "SetQuotes", token=admin,
                   quotes=[sim.Quote(symbol=s, bid="9.99", ask="10.01", last="10")
                           for s in SYMBOLS])
        run = "%d-%d" % (os.getpid(), time.time_ns())
        codes = collections.Counter()
        stop = threading.Event()

        def load(u):
            api = own_api((a if u % 2 else b).addr)
            tok = api.token("load-%s-%d" % (run, u))
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    submit(api, tok, "r%d-%05d" % (u, i), symbol=SYMBOLS[i % 4],
                           qty=str(1 + i % 97), limit="9.50", timeout=10)
                    codes["OK"] += 1
                except grpc.RpcError as e:
                    codes[e.code().name] += 1
                time.sleep(0.05)
            api.close()

        threads = [threading.Thread(target=load, args=(u,)) for u in range(4)]
        for th in threads:
            th.start()

        self.assertEqual((self.gauge(a), self.gauge(b)), (0, 0))
        shared_before = self.probe(apis, "p1-" + run)

        t_kill = time.monotonic()
        self.redis.kill()
        fallback_ok = self.probe(apis, "p2-" + run)
        gauges_down = (self.gauge(a), self.gauge(b))
        ok_during = codes["OK"]
        time.sleep(2)
        self.assertGreater(codes["OK"], ok_during, "service stopped while Redis was down")
        outage_s = time.monotonic() - t_kill

        self.redis.start()  # same port, empty data
        # The first check after the retry interval (1 s) probes Redis and flips back.
        for x in apis:
            x.call("Auth", "WhoAmI", token=admin)
        back = wait_until(lambda: (self.gauge(a), self.gauge(b)) == (0, 0), 15, 0.2)
        shared_after = self.probe(apis, "p3-" + run)
        stop.set()
        for th in threads:
            th.join(30)

        self.assertEqual(shared_before, API_LIMIT, "limit not shared while Redis was up")
        self.assertEqual(gauges_down, (1, 1), "tradewink_redis_fallback while Redis is down")
        self.assertEqual(fallback_ok, 2 * API_LIMIT, "in-process fallback per server")
        self.assertTrue(back, "tradewink_redis_fallback did not return to 0")
        self.assertEqual(shared_after, API_LIMIT, "shared limit did not resume")
        self.assertEqual(set(codes) - {"OK", "RESOURCE_EXHAUSTED"}, set(), dict(codes))
        self.assertTrue(a.alive() and b.alive())
        for s in (a, b):
            text = s.stderr_text()
            self.assertIn("ratelimit_redis_down", text)
            self.assertIn("ratelimit_redis_up", text)
        print("fault_redis_kill: shared limit before %d, fallback (2 servers) %d, after %d; "
              "gauges down %s; outage %.1fs; background calls %s"
              % (shared_before, fallback_ok, shared_after, gauges_down, outage_s,
                 dict(codes)), flush=True)
        for x in apis:
            x.close()
        a.stop_and_check(self)
        b.stop_and_check(self)


if __name__ == "__main__":
    unittest.main(verbosity=2)

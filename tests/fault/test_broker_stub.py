"""fault_broker_stub: an Alpaca stub answering 500s, timeouts and slow answers.

Two users, each with their own Alpaca paper key, submit LIMIT orders concurrently through
tradewinkd (TW_ALPACA_BASE_URL points at a stub in this process). The stub chooses its
behaviour per symbol: a normal answer, a slow answer (3 s), a 500 before or after creating the
order, a hang past the adapter's 10 s timeout with or without creating the order. It also
refuses every GET with 500 for a while (account reads fail, so submissions are refused
UNAVAILABLE and nothing is sent) and slows every GET for a while.

Checked: no client_order_id is POSTed more than once; every order leaves PENDING_SUBMIT within
a bound and ends where the broker's truth says (ACCEPTED when the stub created it, REJECTED
when it never did, and only after the broker said twice that it does not know the order); a
fill at the stub reaches the store through the reconciler; every order
at the stub is in the store with the same owner; every request for user A carried A's key id
and A's secret (never B's); neither secret appears in the server's log or database.

The reference price of these alpaca orders comes from the stub's Market Data API latest trade
(TW_ALPACA_DATA_URL points at the same stub); a market data outage alone refuses an opening
order UNAVAILABLE and sends nothing.
"""

import collections
import threading
import time
import unittest

import grpc

from faultlib import (AlpacaStub, Api, TwServer, add_alpaca_key, list_orders, own_api, sim,
                      status_name, submit, wait_until)
import twserver

# symbol -> (stub plan, final status expected in the store)
CASES = {
    "AAPL": (("ok", 0), "ACCEPTED"),
    "KO": (("ok", 3), "ACCEPTED"),  # slow answer inside the timeout
    "MSFT": (("500", False), "REJECTED"),  # broker never got it
    "JNJ": (("500", True), "ACCEPTED"),  # broker has it, answer lost as a 500
    "XOM": (("hang", True, 12), "ACCEPTED"),  # created, answer after the 10 s timeout
    "PFE": (("hang", False, 12), "REJECTED"),  # never created, no answer in time
}
USERS = {"alice": ("AKFAULTALICE0001", "alice-secret-Zq81mXv3Lp0aRt7w"),
         "bob": ("AKFAULTBOB000002", "bob-secret-Hn52cYe9Wk4sJd6u")}
SETTLE_S = 50


class BrokerStubTest(unittest.TestCase):
    def setUp(self):
        self.stub = AlpacaStub().start()
        self.srv = TwServer(env=self.stub.env())
        self.srv.start()
        self.api = Api(self.srv.addr)
        admin = self.api.token("ops", admin=True)
        syms = list(CASES) + ["LATE", "GETX", "SLOW", "MDX"]
        self.stub.trades.update({s: "100" for s in syms})
        self.api.call("Sim", "SetQuotes", token=admin,
                      quotes=[sim.Quote(symbol=s, bid="99.99", ask="100.01", last="100")
                              for s in syms])
        self.toks, self.kids = {}, {}
        for name, (kid, secret) in USERS.items():
            tok = self.api.token(name)
            self.toks[name] = tok
            add_alpaca_key(self.api, tok, kid, secret)
            self.kids[name] = kid

    def tearDown(self):
        self.api.close()
        self.srv.cleanup()
        self.stub.stop()

    def wait_settled(self, tok, oid):
        def done():
            o = self.api.call("Orders", "GetOrder", token=tok, order_id=oid).order
            return o if status_name(o.status) != "PENDING_SUBMIT" else None
        return wait_until(done, SETTLE_S, 0.25)

    def test_failures_timeouts_and_slow_answers(self):
        stub, api = self.stub, self.api
        for sym, (plan, _) in CASES.items():
            stub.plan_by_symbol[sym] = plan
        results = {}
        errors = collections.Counter()
        lock = threading.Lock()

        def user_load(name):
            api = own_api(self.srv.addr)  # one connection per user, as separate clients
            for i, sym in enumerate(CASES):
                coid = "%s-%s" % (name, sym)
                try:
                    o = submit(api, self.toks[name], coid, symbol=sym, qty=str(1 + i),
                               limit="100.00", timeout=40)
                    with lock:
                        results[(name, sym)] = o
                except grpc.RpcError as e:
                    with lock:
                        errors[e.code().name] += 1
            api.close()

        t0 = time.monotonic()
        threads = [threading.Thread(target=user_load, args=(n,)) for n in USERS]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
        submit_s = time.monotonic() - t0
        self.assertEqual(dict(errors), {}, "submissions must be acknowledged")
        self.assertEqual(len(results), len(CASES) * len(USERS))

        # Every order settles where the broker's truth says.
        final = {}
        for (name, sym), o in results.items():
            s = self.wait_settled(self.toks[name], o.id)
            self.assertIsNotNone(s, "%s/%s still PENDING_SUBMIT after %ds" % (name, sym,
                                                                             SETTLE_S))
            final[(name, sym)] = s
            self.assertEqual(status_name(s.status), CASES[sym][1], (name, sym, str(s)))

        # "Not found" after an unknown outcome is final only when the broker says it twice.
        for name in USERS:
            o = final[(name, "MSFT")]
            with stub.lock:
                asks = [p for m, p, _ in stub.requests if m == "GET" and
                        p.endswith("by_client_order_id?client_order_id=tw-" + o.id)]
            self.assertGreaterEqual(len(asks), 2, (name, asks))

        # A fill at the broker reaches the store through the reconciler (open orders polled).
        a = final[("alice", "AAPL")]
        stub.fill("tw-" + a.id, "99.50")
        filled = wait_until(lambda: status_name(self.api.call(
            "Orders", "GetOrder", token=self.toks["alice"], order_id=a.id).order.status)
            == "FILLED", 15, 0.25)
        self.assertTrue(filled, "a broker fill was not reconciled")

        def refused_during(flag, coid, symbol):
            """Submit with one stub failure switched on: UNAVAILABLE and nothing POSTed."""
            posts_before = sum(stub.posts.values())
            setattr(stub, flag, True)
            code = None
            try:
                submit(api, self.toks["bob"], coid, symbol=symbol, qty="1", limit="100.00")
            except grpc.RpcError as e:
                code = e.code()
            setattr(stub, flag, False)
            self.assertEqual(code, grpc.StatusCode.UNAVAILABLE, flag)
            self.assertEqual(sum(stub.posts.values()), posts_before, flag)

        # Broker GETs fail: submissions are refused UNAVAILABLE and nothing is POSTed.
        refused_during("get_fail_500", "bob-getx", "GETX")
        # Only market data down: the account answers, the reference price does not.
        refused_during("trade_fail_500", "bob-mdx", "MDX")
        self.assertFalse([o for o in list_orders(api, self.toks["bob"])
                          if o.client_order_id == "bob-mdx"], "an outage must not be recorded")
        # Slow GETs (1.5 s each): still served.
        stub.get_delay_s = 1.5
        o = submit(api, self.toks["bob"], "bob-slow", symbol="SLOW", qty="1", limit="100.00")
        stub.get_delay_s = 0
        self.assertEqual(status_name(o.status), "ACCEPTED")

        # Never sent twice.
        self.assertTrue(stub.posts)
        self.assertEqual({c: n for c, n in stub.posts.items() if n != 1}, {},
                         "orders POSTed more than once")
        # Every order at the stub is in the store, owned by the user whose key sent it.
        owner_of = {}
        for name, tok in self.toks.items():
            for o in list_orders(api, tok):
                owner_of["tw-" + o.id] = name
        for coid in stub.orders:
            self.assertIn(coid, owner_of, "order %s at the broker is not in the store" % coid)
            self.assertEqual(stub.key_of[coid], self.kids[owner_of[coid]],
                             "order %s sent with another user's key" % coid)
        pairs = {(kid, USERS[n][1]) for n, kid in self.kids.items()}
        self.assertTrue(stub.secrets_seen <= pairs, "a key id went out with a foreign secret")
        # Secrets never in the log, the database, or a reply.
        log = self.srv.stderr_text()
        dump = twserver.db_dump(self.srv.workdir)
        for _, secret in USERS.values():
            self.assertNotIn(secret, log)
            self.assertNotIn(secret.encode(), dump)
        for o in final.values():
            self.assertNotIn(USERS["alice"][1], str(o))
        print("fault_broker_stub: %d orders in %.1fs, POSTs %d (max per order %d), final %s, "
              "broker requests %d" % (len(results), submit_s, sum(stub.posts.values()),
                                      max(stub.posts.values()),
                                      dict(collections.Counter(status_name(o.status)
                                                               for o in final.values())),
                                      len(stub.requests)), flush=True)
        self.srv.stop_and_check(self)

    def test_late_acceptance_after_the_reconciler_gave_up(self):
        """A broker that accepts only after 7 s: the reconciler must not declare the order
        lost while the submission can still be in flight (STUCK_SUBMIT_MS is longer than the
        adapter's connect + request timeouts), so the store ends ACCEPTED like the broker."""
        self.stub.plan_by_symbol["LATE"] = ("late", 7)
        o = submit(self.api, self.toks["alice"], "alice-late", symbol="LATE", qty="1",
                   limit="100.00", timeout=40)
        s = self.wait_settled(self.toks["alice"], o.id)
        self.assertIn("tw-" + o.id, self.stub.orders)  # the broker has it, live
        self.assertEqual(status_name(s.status), "ACCEPTED", str(s))


    def test_hung_broker_does_not_block_other_users(self):
        """One submission hanging at the broker must not stall other users' calls multiplexed
        on the same connection (a web backend keeps one channel): blocking handlers run on
        the transport's executor threads, not on the connection's completion queue."""
        self.stub.plan_by_symbol["XOM"] = ("hang", True, 12)
        th = threading.Thread(target=lambda: submit(
            self.api, self.toks["alice"], "hang-1", symbol="XOM", qty="1", limit="100.00",
            timeout=40))
        th.start()
        time.sleep(1.5)
        t0 = time.monotonic()
        self.api.call("Auth", "WhoAmI", token=self.toks["bob"], timeout=40)
        waited = time.monotonic() - t0
        th.join(60)
        self.assertLess(waited, 2.0, "bob's WhoAmI waited %.1fs behind alice's broker" % waited)


if __name__ == "__main__":
    unittest.main(verbosity=2)

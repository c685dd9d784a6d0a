"""fault_alpaca_nosim: production shape — the sim exchange OFF, orders through Alpaca only.

tradewinkd runs with TW_SIM_ENABLED=0 and TW_BROKER=alpaca; both the Trading API
(TW_ALPACA_BASE_URL) and the Market Data API (TW_ALPACA_DATA_URL) point at the AlpacaStub in
this process. A user stores an Alpaca paper key (KeyVault.PutBrokerKey) and trades:

- an opening LIMIT and an opening MARKET order are admitted and POSTed to the stub exactly
  once, their reference price coming from the stub's latest trade (the sim has no quotes here);
- a symbol the market data API does not know (404) is recorded REJECTED NO_QUOTE
  (NO_REFERENCE_PRICE) and never sent;
- a limit price more than the collar (10 %) away from the stub's price is rejected
  PRICE_COLLAR, and the violation names the exact price from the wire ("187.123456789" rounded
  half away to 187.123457, never through a double); Risk.CheckOrder agrees;
- a market data outage (500) answers UNAVAILABLE, records nothing, sends nothing;
- ListPositions marks come from the broker's own positions (current_price), one call.
The key's secret never appears in the log.
"""

import time
import unittest
from decimal import Decimal

import grpc

from faultlib import (LIMIT, MARKET, AlpacaStub, Api, TwServer, add_alpaca_key, common,
                      list_orders, status_name, submit, wait_until)

KEY_ID, SECRET = "AKNOSIM000000001", "nosim-secret-Vb71qPz4Lx9sKc2m"
R = common.RiskRule


def rules(o):
    return sorted(R.Name(v.code) for v in o.violations)


class AlpacaNoSimTest(unittest.TestCase):
    def setUp(self):
        self.stub = AlpacaStub().start()
        self.stub.trades.update({"AAPL": "187.123456789", "MSFT": "410.5"})
        env = dict(self.stub.env(), TW_SIM_ENABLED="0", TW_BROKER="alpaca")
        self.srv = TwServer(env=env)
        self.srv.start()
        self.api = Api(self.srv.addr)
        self.tok = self.api.token("nosim-alice")
        add_alpaca_key(self.api, self.tok, KEY_ID, SECRET)

    def tearDown(self):
        self.api.close()
        self.srv.cleanup()
        self.stub.stop()

    def check(self, symbol, limit, type_=LIMIT):
        return self.api.call("Risk", "CheckOrder", token=self.tok, symbol=symbol,
                             side=common.ORDER_SIDE_BUY, type=type_, qty="5",
                             limit_price=limit if type_ == LIMIT else "",
                             time_in_force=common.TIME_IN_FORCE_DAY,
                             origin=common.ORDER_ORIGIN_USER)

    def test_orders_priced_by_the_alpaca_market_data_api(self):
        api, stub, tok = self.api, self.stub, self.tok
        # No sim surface in this shape.
        with self.assertRaises(grpc.RpcError):
            api.call("Sim", "SetQuotes", token=api.token("ops", admin=True), quotes=[])

        # Opening LIMIT and MARKET orders: admitted and sent once each.
        lim = submit(api, tok, "ns-limit", symbol="AAPL", qty="1", limit="187.00")
        self.assertEqual(status_name(lim.status), "ACCEPTED", str(lim))
        mkt = submit(api, tok, "ns-market", symbol="MSFT", qty="2", type_=MARKET)
        self.assertEqual(status_name(mkt.status), "ACCEPTED", str(mkt))
        self.assertEqual(stub.posts.get("tw-" + lim.id), 1)
        self.assertEqual(stub.posts.get("tw-" + mkt.id), 1)
        self.assertEqual(stub.orders["tw-" + lim.id]["limit_price"], "187")
        self.assertEqual(stub.orders["tw-" + lim.id]["type"], "limit")
        self.assertEqual(stub.orders["tw-" + mkt.id]["type"], "market")
        self.assertIsNone(stub.orders["tw-" + mkt.id]["limit_price"])
        asked = [(s, q, k) for s, q, k in stub.trade_requests if s in ("AAPL", "MSFT")]
        self.assertEqual(sorted({s for s, _, _ in asked}), ["AAPL", "MSFT"])
        for _, query, kid in asked:
            self.assertEqual(query, "feed=iex")
            self.assertEqual(kid, KEY_ID)

        # A symbol the data API does not know: recorded REJECTED NO_QUOTE, never sent.
        posts = sum(stub.posts.values())
        for coid, type_ in (("ns-unknown-l", LIMIT), ("ns-unknown-m", MARKET)):
            o = submit(api, tok, coid, symbol="ZZZZ", qty=str(len(coid)), limit="10.00",
                       type_=type_)
            self.assertEqual(status_name(o.status), "REJECTED", str(o))
            self.assertEqual(rules(o), ["RISK_RULE_NO_QUOTE"], str(o))
        self.assertEqual(sum(stub.posts.values()), posts)

        # The collar is computed from the stub's exact price: 10 % of 187.123457.
        far = submit(api, tok, "ns-collar", symbol="AAPL", qty="3", limit="250.00")
        self.assertEqual(status_name(far.status), "REJECTED", str(far))
        self.assertEqual(rules(far), ["RISK_RULE_PRICE_COLLAR"], str(far))
        self.assertIn("187.123457", far.violations[0].message)
        self.assertEqual(sum(stub.posts.values()), posts)
        # Just inside and just outside the band (ref 187.123457, 10 % = 18.7123457).
        self.assertTrue(self.check("AAPL", "205.83").allowed)
        self.assertFalse(self.check("AAPL", "205.84").allowed)
        self.assertTrue(self.check("AAPL", "168.42").allowed)
        self.assertFalse(self.check("AAPL", "168.41").allowed)
        r = self.check("ZZZZ", "10.00")
        self.assertFalse(r.allowed)
        self.assertEqual(sorted(R.Name(v.code) for v in r.violations), ["RISK_RULE_NO_QUOTE"])

        # Market data down: UNAVAILABLE (retryable), nothing recorded, nothing sent.
        stub.trade_fail_500 = True
        try:
            for fn in (lambda: submit(api, tok, "ns-outage", symbol="AAPL", qty="4",
                                      limit="187.00"),
                       lambda: self.check("AAPL", "187.00")):
                with self.assertRaises(grpc.RpcError) as cm:
                    fn()
                self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        finally:
            stub.trade_fail_500 = False
        self.assertEqual(sum(stub.posts.values()), posts)
        self.assertNotIn("ns-outage", [o.client_order_id for o in list_orders(api, tok)])
        # ...and once it is back the same client_order_id goes through.
        back = submit(api, tok, "ns-outage", symbol="AAPL", qty="4", limit="187.00")
        self.assertEqual(status_name(back.status), "ACCEPTED", str(back))

        # A fill at the broker becomes a position, marked at the broker's current price.
        stub.positions = [{"asset_id": "x", "symbol": "MSFT", "qty": "2", "side": "long",
                           "avg_entry_price": "410.5", "cost_basis": "821",
                           "market_value": "830.5", "unrealized_pl": "9.5",
                           "current_price": "415.25"}]
        stub.fill("tw-" + mkt.id, "410.5")
        self.assertTrue(wait_until(lambda: status_name(api.call(
            "Orders", "GetOrder", token=tok, order_id=mkt.id).order.status) == "FILLED", 20,
            0.25), "the broker fill was not reconciled")
        before = len(stub.requests)
        pos = {p.symbol: p for p in api.call("Orders", "ListPositions", token=tok).positions}
        self.assertIn("MSFT", pos)
        self.assertEqual(Decimal(pos["MSFT"].qty), Decimal("2"))
        self.assertEqual(Decimal(pos["MSFT"].current_price), Decimal("415.25"))
        self.assertEqual(Decimal(pos["MSFT"].market_value), Decimal("830.5"))
        self.assertEqual(Decimal(pos["MSFT"].unrealized_pl), Decimal("9.5"))
        calls = [r for r in stub.requests[before:] if r[1].startswith("/v2/positions")]
        self.assertEqual(len(calls), 1)

        log = self.srv.stderr_text()
        self.assertNotIn(SECRET, log)
        self.srv.stop_and_check(self)


if __name__ == "__main__":
    unittest.main(verbosity=2)

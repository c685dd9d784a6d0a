"""fault_alpaca_stream: fills from Alpaca's trade_updates stream, polling as the fallback (#23).

Production shape (TW_SIM_ENABLED=0, TW_BROKER=alpaca) against an AlpacaStub that speaks the
trade_updates WebSocket at {TW_ALPACA_BASE_URL}/stream, one user with a stored paper key:

- with the stream up, a fill streamed by the broker is applied with the broker's own fill
  time and price, and nobody GETs that order for it; a second resting order is not polled
  either while the stream is healthy (polling stops spending the request budget);
- the stub drops the stream and refuses reconnection: a fill the broker does not stream is
  still found by polling (GET /v2/orders/{id}) within the normal polling delay;
- the stub accepts again: the server reconnects by itself, reads every open order once (what
  it may have missed), and the next fill arrives by the stream again, with no GET;
- tradewink_alpaca_streams says so: up 1 / down 0 while listening, up 0 / down 1 while refused.
"""

import os
import sqlite3
import time
import unittest
from decimal import Decimal

from faultlib import (AlpacaStub, Api, TwServer, add_alpaca_key, http_get, metric_value,
                      status_name, submit, wait_until)

KEY_ID, SECRET = "AKSTREAM00000001", "stream-secret-Hq27vLm0Zx9sQe4t"
# 2026-01-02 15:04:05.678 UTC, in Unix microseconds: the fill time the broker streams.
BROKER_TS = "2026-01-02T15:04:05.678Z"
BROKER_US = 1767366245678000


class AlpacaStreamTest(unittest.TestCase):
    def setUp(self):
        self.stub = AlpacaStub(stream=True).start()
        self.stub.trades.update({"AAPL": "100.00"})
        env = dict(self.stub.env(), TW_SIM_ENABLED="0", TW_BROKER="alpaca")
        self.srv = TwServer(env=env)
        self.srv.start()
        self.api = Api(self.srv.addr)
        self.tok = self.api.token("stream-alice")
        add_alpaca_key(self.api, self.tok, KEY_ID, SECRET)

    def tearDown(self):
        self.api.close()
        try:
            self.srv.stop_and_check(self)  # exit 0, no sanitizer report (asan build)
        finally:
            self.srv.cleanup()
            self.stub.stop()

    def get(self, oid):
        return self.api.call("Orders", "GetOrder", token=self.tok, order_id=oid).order

    def wait_status(self, oid, want, timeout=25):
        ok = wait_until(lambda: status_name(self.get(oid).status) == want, timeout, 0.1)
        self.assertTrue(ok, "order %s never became %s: %s" % (oid, want, self.get(oid)))

    def gets(self, o):
        """GETs the server made about order o (by broker id or client order id)."""
        bid = self.stub.orders["tw-" + o.id]["id"]
        with self.stub.lock:
            return sum(1 for m, p, _ in self.stub.requests
                       if m == "GET" and (p == "/v2/orders/" + bid or "tw-" + o.id in p))

    def fill_times(self, o):
        db = sqlite3.connect(os.path.join(self.srv.workdir, "tradewink.db"))
        try:
            return [r[0] for r in db.execute(
                "SELECT time_us FROM fills WHERE order_id = ?", (int(o.id),))]
        finally:
            db.close()

    def streams(self):
        """tradewink_alpaca_streams by state, from /metrics."""
        _, text = http_get(self.srv.listening["ops_port"], "/metrics")
        return {s: metric_value(text, 'tradewink_alpaca_streams{state="%s"}' % s)
                for s in ("up", "down")}

    def wait_listening(self, timeout=20):
        ok = wait_until(lambda: self.stub.stream_listening(KEY_ID) >= 1, timeout, 0.1)
        self.assertTrue(ok, "the server never listened to trade_updates")
        time.sleep(2.5)  # one reconciler pass: the catch-up read of every open order

    def test_stream_fills_then_polling_while_down_then_stream_again(self):
        a = submit(self.api, self.tok, "sa-1", symbol="AAPL", qty="3", limit="100.00")
        b = submit(self.api, self.tok, "sa-2", symbol="AAPL", qty="2", limit="99.00")
        self.assertEqual(status_name(a.status), "ACCEPTED", str(a))
        self.wait_listening()

        self.assertEqual(self.streams(), {"up": 1, "down": 0})
        # Up: a streamed fill, the broker's time and price, no GET of the order for it.
        ga, gb = self.gets(a), self.gets(b)
        self.assertEqual(self.stub.stream_fill("tw-" + a.id, "99.75", BROKER_TS), 1)
        self.wait_status(a.id, "FILLED", timeout=5)
        self.assertEqual(Decimal(self.get(a.id).avg_fill_price), Decimal("99.75"))
        self.assertEqual(self.fill_times(a), [BROKER_US])
        # Longer than the polling delay without a stream (quiet 5 s + a 2 s pass): the resting
        # order is left alone while the stream is healthy.
        time.sleep(8)
        self.assertEqual(self.gets(a), ga)
        self.assertEqual(self.gets(b), gb, "a resting order was polled with the stream up")

        # Down and refused: a fill nobody streams is found by polling.
        self.stub.stream_drop()
        self.assertTrue(wait_until(lambda: self.streams() == {"up": 0, "down": 1}, 10, 0.2),
                        "stream gauge %s while the stream is refused" % self.streams())
        self.stub.fill("tw-" + b.id, "99")
        self.wait_status(b.id, "FILLED", timeout=20)
        self.assertGreater(self.gets(b), gb)
        self.assertEqual(Decimal(self.get(b.id).avg_fill_price), Decimal("99"))

        # Back: the server reconnects on its own, catches up, and streams again.
        c = submit(self.api, self.tok, "sa-3", symbol="AAPL", qty="1", limit="100.00")
        self.stub.stream_allow()
        self.wait_listening(timeout=25)
        self.assertGreaterEqual(self.gets(c), 1, "no catch-up read after reconnecting")
        gc = self.gets(c)
        self.assertEqual(self.stub.stream_fill("tw-" + c.id, "100", BROKER_TS), 1)
        self.wait_status(c.id, "FILLED", timeout=5)
        self.assertEqual(self.gets(c), gc)
        self.assertEqual(self.fill_times(c), [BROKER_US])
        pos = {p.symbol: p for p in
               self.api.call("Orders", "ListPositions", token=self.tok).positions}
        self.assertEqual(Decimal(pos["AAPL"].qty), Decimal("6"))  # each fill counted once
        self.assertNotIn(SECRET, self.srv.stderr_text())


if __name__ == "__main__":
    unittest.main()

"""Shared helpers for the fault-injection tests (tests/fault) and the soak (tests/soak).

Purpose: give each fault test its OWN disposable dependencies on loopback — a PostgreSQL
(scripts/pg-test-server.sh in a temp dir), a redis-server, an Alpaca Trading API v2 stub and
an HTTPS JWKS provider — so a test can stop, kill or slow them without touching the shared
instances CI exports (TW_TEST_PG_URL, TW_TEST_REDIS_URL) for tests running in parallel.

Design: every dependency is a small class with start()/stop() that remembers the PID it
started and signals only that PID (PostgreSQL is stopped with pg_ctl, which signals the
postmaster named in its own pid file). Every wait is bounded. The Alpaca stub runs in a
thread of the test process, so it survives a kill -9 of tradewinkd and keeps its ledger: POSTs
per client_order_id, the APCA-API-KEY-ID each order arrived with, and every secret header it
saw (to check the server never sends user A's key for user B).

Invariants: traffic stays on 127.0.0.1; ports come from the kernel (bind to port 0) or are
probed free just before use; nothing here reads credentials from the environment.
"""

import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import struct
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("TW_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "services"))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "integration"))

import grpc  # noqa: E402
from google.protobuf import timestamp_pb2, wrappers_pb2  # noqa: E402

import twapi  # noqa: E402
from twapi import Api, audit, common, orders, sim  # noqa: E402,F401
import twserver  # noqa: E402
from twserver import TwServer  # noqa: E402,F401

BUY, SELL = common.ORDER_SIDE_BUY, common.ORDER_SIDE_SELL
MARKET, LIMIT = common.ORDER_TYPE_MARKET, common.ORDER_TYPE_LIMIT
DAY, USER = common.TIME_IN_FORCE_DAY, common.ORDER_ORIGIN_USER  # required (orders.proto)
S = orders.OrderStatus
PAPER = common.TRADING_MODE_PAPER


def status_name(v):
    return S.Name(v).replace("ORDER_STATUS_", "")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(pred, timeout, interval=0.1):
    """Poll pred() until truthy or timeout; returns its last value."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= end:
            return v
        time.sleep(interval)


def http_get(port, path, timeout=10):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
        return r.status, r.read().decode("utf-8", "replace")


def metric_value(text, name):
    """The value of an unlabelled Prometheus sample `name` in text, or None."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


# -- PostgreSQL of our own ------------------------------------------------------------------------
class OwnPostgres:
    """A throw-away PostgreSQL via scripts/pg-test-server.sh on a free loopback port."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="twfault-pg-")
        os.chmod(self.dir, 0o755)  # the script hands it to user postgres when we are root
        self.port = free_port()
        self.url = None
        self.script = os.path.join(SOURCE_DIR, "scripts", "pg-test-server.sh")

    def start(self):
        out = subprocess.run([self.script, "start", self.dir, str(self.port)], check=True,
                             capture_output=True, text=True, timeout=120)
        self.url = out.stdout.strip().splitlines()[-1]
        return self.url

    def stop(self):
        subprocess.run([self.script, "stop", self.dir], check=True, capture_output=True,
                       timeout=90)

    def psql(self, sql):
        """Rows of a query as lists of strings (unaligned, '|' separated)."""
        out = subprocess.run(["psql", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", self.url,
                              "-c", sql], check=True, capture_output=True, text=True,
                             timeout=60).stdout
        return [ln.split("|") for ln in out.splitlines() if ln]

    def schema_url(self):
        """A URL whose sessions use a fresh schema (so restarts of the test reuse nothing)."""
        schema = "f_" + uuid.uuid4().hex[:12]
        self.psql("CREATE SCHEMA %s" % schema)
        return self.url + "?options=-csearch_path%3D" + schema, schema

    def cleanup(self):
        try:
            self.stop()
        except Exception:  # noqa: BLE001 - best effort on teardown
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


# -- redis-server of our own ----------------------------------------------------------------------
class OwnRedis:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="twfault-redis-")
        self.port = free_port()
        self.proc = None

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)

        def up():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    return s.recv(16).startswith(b"+PONG")
            except OSError:
                return False
        if not wait_until(up, 15):
            raise RuntimeError("redis-server did not start on port %d" % self.port)
        return self

    def kill(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


# -- Alpaca Trading API v2 stub -------------------------------------------------------------------
class AlpacaStub:
    """A loopback Alpaca stub with scriptable failures and a ledger of what it received.

    plan_by_symbol: {symbol: plan} chooses what a POST /v2/orders for that symbol meets;
    post_plan: a list consumed one entry per POST for other symbols. A plan is a tuple
      ("ok", delay_s)           create the order, answer 200 after delay_s
      ("500", create)           answer 500; create the order first when create is True
      ("hang", create, secs)    create (or not), then sleep secs before answering
      ("late", secs)            sleep secs, THEN create the order and answer 200
      ("403", message)          answer 403 with Alpaca's order error code and message (e.g.
                                "insufficient buying power"): a refusal, nothing created
    No plan means ("ok", 0). get_delay_s slows every GET (slow broker); get_fail_500 makes
    every GET answer 500. GET /v2/orders/{id} answers by broker order id. DELETE of a filled,
    canceled, expired, rejected or replaced order answers 422 "order is not cancelable";
    fill_on_cancel (a set of client order ids) fills such an order just before its DELETE is
    answered: the cancel lost the race (422); cancel_pending (a set of client order ids) makes
    a DELETE answer 204 and leave the order "pending_cancel", as Alpaca does until its venue
    confirms (set_status(..., status="canceled") ends it). replace() and set_status() script the order
    lifecycle (replaced with replaced_by, done_for_day, ...).

    It also serves the Market Data API v2 latest trade, GET /v2/stocks/{symbol}/trades/latest
    (point TW_ALPACA_DATA_URL at self.url; self.env() gives both URLs): trades maps a symbol to
    the raw JSON text of the trade's "p" (e.g. "187.123456789": the exact digits on the wire),
    trade_times maps a symbol to the trade's RFC 3339 "t" (default: the time of the answer, a
    fresh trade); a pair with a "/" is served by GET /v1beta3/crypto/us/latest/trades too,
    trade_price_fn(symbol) -> text or None is asked for other symbols; a symbol neither knows
    answers 404. trade_fail_500 makes only these requests answer 500 (a market data outage).
    trade_requests records (symbol, query, key id) per request. traceparents records
    (method, path, traceparent header or None) per authenticated request.

    AlpacaStub(stream=True) also speaks the Trading API's trade_updates WebSocket at GET
    /stream (RFC 6455 by hand: handshake, masked client frames, ping/pong, close; server frames
    are binary like Alpaca's paper stream): {"action":"auth","key","secret"} is answered
    "authorization"/"authorized", {"action":"listen",...} with "listening". stream_event() sends
    one trade update about an order to its key's listening connections; stream_fill() fills an
    order at the stub AND streams the fill (with its own timestamp); stream_drop() closes every
    stream connection and refuses new ones until stream_allow(). Without stream=True, /stream
    answers 404 and is not recorded (the server then polls only, as against an old stub).
    """

    ACCOUNT = {"id": "stub-account", "status": "ACTIVE", "currency": "USD", "cash": "100000",
               "equity": "100000", "last_equity": "100000", "buying_power": "200000",
               "multiplier": "2", "pattern_day_trader": False, "trading_blocked": False,
               "account_blocked": False, "trade_suspended_by_user": False,
               "daytrade_count": 0}

    def __init__(self, stream=False):
        self.lock = threading.Lock()
        self.stream_enabled = stream
        self.stream_refuse = False
        self.stream_conns = []  # StubStreamConn, connected (listening or not)
        self.stream_sent = []  # (key id, event, client order id) of every streamed update
        self.orders = {}  # client_order_id -> order json
        self.posts = {}  # client_order_id -> number of POSTs
        self.key_of = {}  # client_order_id -> APCA-API-KEY-ID of the POST
        self.secrets_seen = set()
        self.requests = []  # (method, path, key id)
        self.traceparents = []  # (method, path, traceparent or None)
        self.post_plan = []
        self.plan_by_symbol = {}
        self.get_delay_s = 0.0
        self.get_fail_500 = False
        self.seq = 0
        self.post_started = threading.Event()
        self.trades = {}
        self.trade_price_fn = None
        self.trade_fail_500 = False
        self.trade_requests = []
        self.positions = []  # what GET /v2/positions answers (Alpaca position objects)
        self.trade_times = {}
        self.fill_on_cancel = set()
        self.cancel_pending = set()  # client order ids whose DELETE leaves "pending_cancel"
        self.post_429 = 0  # the next N POSTs answer 429 with X-RateLimit-Reset = now + 1 s
        self.deletes = []  # broker order ids of DELETE requests, in order
        stub = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _reply(self, code, obj, headers=()):
                body = json.dumps(obj).encode()
                try:
                    self.send_response(code)
                    for k, v in headers:
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (timeout); that is the point of some plans

            def _auth(self):
                kid = self.headers.get("APCA-API-KEY-ID", "")
                sec = self.headers.get("APCA-API-SECRET-KEY", "")
                with stub.lock:
                    stub.requests.append((self.command, self.path, kid))
                    stub.traceparents.append((self.command, self.path,
                                              self.headers.get("traceparent")))
                    if sec:
                        stub.secrets_seen.add((kid, sec))
                if not kid or not sec:
                    self._reply(401, {"code": 40110000, "message": "unauthorized"})
                    return None
                return kid

            def do_GET(self):
                if self.path == "/stream":
                    return self._stream()
                kid = self._auth()
                if kid is None:
                    return
                if stub.get_delay_s:
                    time.sleep(stub.get_delay_s)
                if stub.get_fail_500:
                    return self._reply(500, {"message": "internal"})
                path, _, query = self.path.partition("?")
                if path.startswith("/v2/stocks/") and path.endswith("/trades/latest"):
                    return self._latest_trade(path, query, kid)
                if path == "/v1beta3/crypto/us/latest/trades":
                    return self._crypto_trade(query, kid)
                if path.startswith("/v2/orders/"):
                    oid = path[len("/v2/orders/"):]
                    with stub.lock:
                        hit = [o for c, o in stub.orders.items()
                               if o["id"] == oid and stub.key_of.get(c) == kid]
                    if not hit:
                        return self._reply(404, {"message": "order not found"})
                    return self._reply(200, hit[0])
                if path == "/v2/account":
                    return self._reply(200, stub.ACCOUNT)
                if path == "/v2/positions":
                    with stub.lock:
                        pos = list(stub.positions)
                    return self._reply(200, pos)
                if path == "/v2/orders:by_client_order_id":
                    coid = dict(kv.split("=", 1) for kv in query.split("&") if "=" in kv).get(
                        "client_order_id", "")
                    with stub.lock:
                        o = stub.orders.get(coid)
                        owner = stub.key_of.get(coid)
                    if o is None or owner != kid:
                        return self._reply(404, {"message": "order not found"})
                    return self._reply(200, o)
                if path == "/v2/orders":
                    with stub.lock:
                        mine = [o for c, o in stub.orders.items() if stub.key_of.get(c) == kid]
                    return self._reply(200, mine)
                return self._reply(404, {"message": "not found"})

            def _stream(self):
                ws_key = self.headers.get("Sec-WebSocket-Key", "")
                if not stub.stream_enabled or stub.stream_refuse:
                    return self._reply(404 if not stub.stream_enabled else 503,
                                       {"message": "stream unavailable"})
                if self.headers.get("Upgrade", "").lower() != "websocket" or not ws_key:
                    return self._reply(400, {"message": "websocket upgrade expected"})
                accept = base64.b64encode(hashlib.sha1(
                    (ws_key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
                self.send_response(101)
                self.send_header("Upgrade", "websocket")
                self.send_header("Connection", "Upgrade")
                self.send_header("Sec-WebSocket-Accept", accept.decode())
                self.end_headers()
                self.wfile.flush()
                conn = StubStreamConn(stub, self.connection, self.rfile)
                with stub.lock:
                    stub.stream_conns.append(conn)
                try:
                    conn.serve()
                finally:
                    with stub.lock:
                        if conn in stub.stream_conns:
                            stub.stream_conns.remove(conn)
                    self.close_connection = True

            def _latest_trade(self, path, query, kid):
                sym = urllib.parse.unquote(path[len("/v2/stocks/"):-len("/trades/latest")])
                with stub.lock:
                    stub.trade_requests.append((sym, query, kid))
                    px = stub.trades.get(sym)
                    fn = stub.trade_price_fn
                if stub.trade_fail_500:
                    return self._reply(500, {"message": "internal"})
                if px is None and fn is not None:
                    px = fn(sym)
                if px is None:
                    return self._reply(404, {"code": 40410000, "message": "symbol not found"})
                # Built by hand so "p" carries exactly the digits the test chose.
                body = ('{"symbol":%s,"trade":{"t":"%s","x":"V",'
                        '"p":%s,"s":100,"c":["@"],"i":52983525029461,"z":"C"}}'
                        % (json.dumps(sym), stub.trade_time(sym), px)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _crypto_trade(self, query, kid):
                sym = urllib.parse.parse_qs(query).get("symbols", [""])[0]
                with stub.lock:
                    stub.trade_requests.append((sym, query, kid))
                    px = stub.trades.get(sym)
                if stub.trade_fail_500:
                    return self._reply(500, {"message": "internal"})
                inner = ("%s:{\"t\":\"%s\",\"p\":%s,\"s\":0.01,\"tks\":\"B\",\"i\":1}"
                         % (json.dumps(sym), stub.trade_time(sym), px)) if px else ""
                body = ('{"trades":{%s}}' % inner).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_DELETE(self):
                kid = self._auth()
                if kid is None:
                    return
                oid = self.path.rsplit("/", 1)[-1]
                with stub.lock:
                    stub.deletes.append(oid)
                    for c, o in stub.orders.items():
                        if o["id"] == oid and stub.key_of.get(c) == kid:
                            if c in stub.fill_on_cancel:  # the fill wins the race
                                o.update(status="filled", filled_qty=o["qty"],
                                         filled_avg_price=o.get("limit_price") or "1")
                            if o["status"] in ("filled", "canceled", "expired", "rejected",
                                               "replaced"):
                                return self._reply(422, {"code": 42210000,
                                                         "message": "order is not cancelable"})
                            # Alpaca acknowledges a cancel at once and ends the order later.
                            o["status"] = ("pending_cancel" if c in stub.cancel_pending
                                           else "canceled")
                            break
                    else:
                        return self._reply(404, {"message": "order not found"})
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0") or 0)
                raw = self.rfile.read(n)
                kid = self._auth()
                if kid is None:
                    return
                if self.path != "/v2/orders":
                    return self._reply(404, {"message": "not found"})
                req = json.loads(raw or b"{}")
                coid = req.get("client_order_id", "")
                with stub.lock:
                    stub.posts[coid] = stub.posts.get(coid, 0) + 1
                    limited = stub.post_429 > 0
                    stub.post_429 -= 1 if limited else 0
                if limited:  # Alpaca's rate limit: not processed, come back at the reset
                    reset = str(int(time.time()) + 1)
                    return self._reply(429, {"code": 42910000, "message": "rate limit exceeded"},
                                       [("X-RateLimit-Limit", "200"),
                                        ("X-RateLimit-Remaining", "0"),
                                        ("X-RateLimit-Reset", reset)])
                with stub.lock:
                    plan = stub.plan_by_symbol.get(req.get("symbol"))
                    if plan is None:
                        plan = stub.post_plan.pop(0) if stub.post_plan else ("ok", 0)
                    if coid in stub.orders:
                        dup = True
                    else:
                        dup = False
                stub.post_started.set()
                if dup:
                    return self._reply(422, {"code": 40010001,
                                             "message": "client_order_id must be unique"})
                kind = plan[0]
                if kind == "403":
                    return self._reply(403, {"code": 40310000, "message": plan[1]})
                if kind == "late":
                    time.sleep(plan[1])
                create = kind in ("ok", "late") or (len(plan) > 1 and plan[1] is True)
                if create:
                    with stub.lock:
                        stub.seq += 1
                        o = {"id": "stub-%06d" % stub.seq, "client_order_id": coid,
                             "symbol": req.get("symbol"), "qty": req.get("qty"),
                             "filled_qty": "0", "filled_avg_price": None,
                             "limit_price": req.get("limit_price"), "type": req.get("type"),
                             "order_type": req.get("type"), "side": req.get("side"),
                             "time_in_force": req.get("time_in_force"), "status": "accepted",
                             "created_at": "2026-01-02T14:30:00.123456Z",
                             "updated_at": "2026-01-02T14:30:00.123456Z"}
                        stub.orders[coid] = o
                        stub.key_of[coid] = kid
                if kind == "late":
                    return self._reply(200, stub.orders[coid])
                if kind == "ok":
                    if plan[1]:
                        time.sleep(plan[1])
                    return self._reply(200, stub.orders[coid])
                if kind == "500":
                    return self._reply(500, {"message": "internal server error"})
                if kind == "hang":
                    time.sleep(plan[2])
                    o = stub.orders.get(coid)
                    return self._reply(200 if o else 500, o or {"message": "late"})
                return self._reply(500, {"message": "bad plan"})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def env(self):
        """tradewinkd settings that send both the Trading and the Market Data API here."""
        return {"TW_ALPACA_BASE_URL": self.url, "TW_ALPACA_DATA_URL": self.url}

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def fill(self, coid, price):
        """Mark an order filled at the stub (the reconciler picks it up)."""
        with self.lock:
            o = self.orders[coid]
            o["status"] = "filled"
            o["filled_qty"] = o["qty"]
            o["filled_avg_price"] = price

    def stream_listening(self, kid=None):
        """Stream connections authorised and listening to trade_updates (for kid, or any)."""
        with self.lock:
            return sum(1 for c in self.stream_conns
                       if c.listening and (kid is None or c.kid == kid))

    def stream_event(self, coid, event, **fields):
        """Sends one trade update (the order as the stub now holds it, plus fields such as
        timestamp, price, qty) to the listening connections of the order's key. Returns how
        many connections it was sent to."""
        with self.lock:
            order = dict(self.orders[coid])
            kid = self.key_of[coid]
            conns = [c for c in self.stream_conns if c.listening and c.kid == kid]
            self.stream_sent.append((kid, event, coid))
        msg = json.dumps({"stream": "trade_updates",
                          "data": dict(fields, event=event, order=order)}).encode()
        sent = 0
        for c in conns:
            sent += c.send(0x2, msg)
        return sent

    def stream_fill(self, coid, price, timestamp):
        """Fill the whole order at the stub and stream the fill at the broker's timestamp."""
        with self.lock:
            o = self.orders[coid]
            o.update(status="filled", filled_qty=o["qty"], filled_avg_price=price,
                     filled_at=timestamp, updated_at=timestamp)
            qty = o["qty"]
        return self.stream_event(coid, "fill", timestamp=timestamp, price=price, qty=qty,
                                 position_qty=qty, execution_id=str(uuid.uuid4()))

    def stream_drop(self, refuse=True):
        """Close every stream connection (a dropped stream); refuse new ones while refuse."""
        with self.lock:
            self.stream_refuse = refuse
            conns = list(self.stream_conns)
        for c in conns:
            c.close()

    def stream_allow(self):
        with self.lock:
            self.stream_refuse = False

    def trade_time(self, sym):
        t = self.trade_times.get(sym)
        return t or time.strftime("%Y-%m-%dT%H:%M:%S.123456789Z", time.gmtime())

    def set_status(self, coid, **fields):
        """Change fields of an order at the stub (status="done_for_day", filled_qty=...)."""
        with self.lock:
            self.orders[coid].update(fields)

    def replace(self, coid, **fields):
        """Replace the order the way Alpaca does: the old one becomes "replaced" with
        replaced_by, the new one has its own id AND its own client order id (returned)."""
        with self.lock:
            old = self.orders[coid]
            self.seq += 1
            new = dict(old, id="stub-%06d" % self.seq, client_order_id="alpaca-%06d" % self.seq,
                       replaces=old["id"], status="new")
            new.update(fields)
            old["status"] = "replaced"
            old["replaced_by"] = new["id"]
            self.orders[new["client_order_id"]] = new
            self.key_of[new["client_order_id"]] = self.key_of[coid]
            return new["client_order_id"]


class StubStreamConn:
    """One WebSocket connection of AlpacaStub's /stream (server side, frames by hand)."""

    def __init__(self, stub, sock, rfile):
        self.stub, self.sock, self.rfile = stub, sock, rfile
        self.wlock = threading.Lock()
        self.kid = None
        self.listening = False

    def send(self, opcode, payload):
        n = len(payload)
        if n < 126:
            head = bytes([0x80 | opcode, n])
        elif n < 65536:
            head = bytes([0x80 | opcode, 126]) + struct.pack(">H", n)
        else:
            head = bytes([0x80 | opcode, 127]) + struct.pack(">Q", n)
        try:
            with self.wlock:
                self.sock.sendall(head + payload)
            return 1
        except OSError:
            return 0

    def close(self):
        self.listening = False
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _frame(self):
        head = self.rfile.read(2)
        if len(head) < 2:
            return None
        fin, opcode = head[0] & 0x80, head[0] & 0x0F
        n = head[1] & 0x7F
        if n == 126:
            n = struct.unpack(">H", self.rfile.read(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self.rfile.read(8))[0]
        mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
        data = bytearray(self.rfile.read(n))
        if len(data) < n:
            return None
        for i in range(n):
            data[i] ^= mask[i % 4]
        return fin, opcode, bytes(data)

    def _reply(self, stream, data):
        self.send(0x2, json.dumps({"stream": stream, "data": data}).encode())

    def serve(self):
        msg = b""
        while True:
            try:
                f = self._frame()
            except OSError:
                f = None
            if f is None:
                return
            fin, opcode, data = f
            if opcode == 0x8:
                self.send(0x8, data[:2])
                return
            if opcode == 0x9:
                self.send(0xA, data)
                continue
            if opcode in (0x0, 0x1, 0x2):
                msg += data
                if not fin:
                    continue
                try:
                    m = json.loads(msg)
                except ValueError:
                    m = {}
                msg = b""
                action = m.get("action")
                if action == "auth":
                    kid, sec = m.get("key", ""), m.get("secret", "")
                    ok = bool(kid and sec)
                    with self.stub.lock:
                        if ok:
                            self.stub.secrets_seen.add((kid, sec))
                        self.stub.requests.append(("WS", "/stream auth", kid))
                    self.kid = kid if ok else None
                    self._reply("authorization", {"action": "authenticate",
                                                  "status": "authorized" if ok
                                                  else "unauthorized"})
                elif action == "listen" and self.kid:
                    streams = [x for x in m.get("data", {}).get("streams", [])
                               if x == "trade_updates"]
                    self._reply("listening", {"streams": streams})
                    self.listening = "trade_updates" in streams


# -- HTTPS JWKS provider of our own ---------------------------------------------------------------
def b64u_int(n):
    import base64
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class JwksProvider:
    """An HTTPS JWKS endpoint (own CA made with the openssl CLI) that can go down or slow."""

    def __init__(self):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        self.dir = tempfile.mkdtemp(prefix="twfault-jwks-")
        d = self.dir
        self._ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", d + "/ca.key",
                  "-out", d + "/ca.pem", "-days", "1", "-subj", "/CN=tw fault test CA")
        self._ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", d + "/srv.key", "-out",
                  d + "/srv.csr", "-subj", "/CN=127.0.0.1")
        with open(d + "/srv.ext", "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
        self._ssl("x509", "-req", "-in", d + "/srv.csr", "-CA", d + "/ca.pem", "-CAkey",
                  d + "/ca.key", "-CAcreateserial", "-out", d + "/srv.pem", "-days", "1",
                  "-extfile", d + "/srv.ext")
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_pem = self.key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())
        pub = self.key.public_key().public_numbers()
        self.kid = "fault-" + uuid.uuid4().hex[:8]
        self.jwks = json.dumps({"keys": [{"kty": "RSA", "kid": self.kid, "use": "sig",
                                          "alg": "RS256", "n": b64u_int(pub.n),
                                          "e": b64u_int(pub.e)}]}).encode()
        self.ca_file = d + "/ca.pem"
        self.mode = "up"  # up | down (connection reset) | slow
        self.slow_s = 6.0
        self.hits = 0
        self.httpd = None
        self.port = free_port()

    @staticmethod
    def _ssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    @property
    def url(self):
        return "https://127.0.0.1:%d/.well-known/jwks.json" % self.port

    def start(self):
        import ssl
        prov = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                prov.hits += 1
                if prov.mode == "slow":
                    time.sleep(prov.slow_s)
                body = prov.jwks
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.dir + "/srv.pem", self.dir + "/srv.key")
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.mode = "up"
        return self

    def down(self):
        """Close the listening socket: connections are refused."""
        self.httpd.shutdown()
        self.httpd.server_close()
        self.httpd = None

    def token(self, sub, issuer, ttl=600, role="user"):
        import jwt
        now = int(time.time())
        return jwt.encode({"sub": sub, "iss": issuer, "iat": now, "exp": now + ttl,
                           "role": role, "jti": uuid.uuid4().hex},
                          self.key_pem, algorithm="RS256", headers={"kid": self.kid})

    def cleanup(self):
        if self.httpd:
            self.down()
        shutil.rmtree(self.dir, ignore_errors=True)


# -- users, orders and checks ---------------------------------------------------------------------
def own_api(addr):
    """An Api on its own HTTP/2 connection (grpc python shares connections between channels
    to the same target unless told not to; tradewinkd serves one connection's calls on one
    worker thread, so separate clients need separate connections to run in parallel)."""
    api = Api(addr)
    api.channel.close()
    api.channel = grpc.insecure_channel(addr, options=[("grpc.use_local_subchannel_pool", 1)])
    return api


def set_clock_and_quotes(api, admin_tok, symbols, last="100"):
    """A trading-day sim clock and a quote per symbol (the reference price of sim orders; alpaca
    orders take theirs from the stub's latest trade, AlpacaStub.trades)."""
    monday_10am = 1796050800  # Monday 2026-11-30 10:00 New York
    api.call("Sim", "SetClock", token=admin_tok,
             time=timestamp_pb2.Timestamp(seconds=monday_10am))
    from decimal import Decimal
    lp = Decimal(last)
    api.call("Sim", "SetQuotes", token=admin_tok,
             quotes=[sim.Quote(symbol=s, bid=str(lp - Decimal("0.01")),
                               ask=str(lp + Decimal("0.01")), last=str(lp)) for s in symbols])


def add_alpaca_key(api, tok, key_id, secret):
    k = api.call("KeyVault", "PutBrokerKey", token=tok, broker="alpaca", environment=PAPER,
                 key_id=key_id, secret=secret).key
    api.call("Orders", "UpdateAccountSettings", token=tok,
             default_broker_key_id=wrappers_pb2.StringValue(value=k.id))
    return k.id


def submit(api, tok, coid, symbol="AAPL", qty="1", limit="100.00", type_=LIMIT, timeout=30,
           side=None):
    return api.call("Orders", "SubmitOrder", token=tok, timeout=timeout, client_order_id=coid,
                    symbol=symbol, side=BUY if side is None else side, type=type_, qty=qty,
                    limit_price=limit if type_ == LIMIT else "", time_in_force=DAY,
                    origin=USER).order


def list_orders(api, tok):
    out, page = [], ""
    while True:
        r = api.call("Orders", "ListOrders", token=tok, page_size=500, page_token=page)
        out.extend(r.orders)
        page = r.next_page_token
        if not page:
            return out


def list_events(api, tok):
    out, page = [], ""
    while True:
        r = api.call("Audit", "ListEvents", token=tok, page_size=500, page_token=page)
        out.extend(r.events)
        page = r.next_page_token
        if not page:
            return out


ENTRY_ACTIONS = {audit.AUDIT_ACTION_ORDER_ENTRY, audit.AUDIT_ACTION_ORDER_EXIT,
                 audit.AUDIT_ACTION_ORDER_REJECT}


def check_orders_and_audit(tc, api, tok, acked):
    """acked: {client_order_id: order id} acknowledged OK to the client. Asserts each is in the
    store exactly once, with exactly one admission audit event, and the chain verifies.
    Returns the user's orders."""
    ords = list_orders(api, tok)
    by_coid = {}
    for o in ords:
        by_coid.setdefault(o.client_order_id, []).append(o)
    for coid, oid in acked.items():
        got = by_coid.get(coid, [])
        tc.assertEqual(len(got), 1, "acknowledged order %s present %d times" % (coid, len(got)))
        tc.assertEqual(got[0].id, oid, coid)
    ids = [o.id for o in ords]
    tc.assertEqual(len(ids), len(set(ids)), "duplicate order ids in ListOrders")
    evs = list_events(api, tok)
    admissions = {}
    for e in evs:
        if e.action in ENTRY_ACTIONS and e.actor_type != audit.ACTOR_TYPE_SYSTEM:
            admissions[e.object_id] = admissions.get(e.object_id, 0) + 1
    for o in ords:
        tc.assertEqual(admissions.get(o.id, 0), 1,
                       "order %s (%s) has %d admission audit events"
                       % (o.id, o.client_order_id, admissions.get(o.id, 0)))
    tc.assertTrue(api.call("Audit", "VerifyChain", token=tok).ok, "audit chain broken")
    return ords


def sqlite_rows(workdir, sql):
    db = sqlite3.connect(os.path.join(workdir, "tradewink.db"))
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def rpc_code(e):
    return e.code() if isinstance(e, grpc.RpcError) else None

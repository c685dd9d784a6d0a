"""A broker secret does not outlive its request (issue 20 part 2): after PutBrokerKey returned,
and again after an order went to the broker through that key, no copy of the secret is left
anywhere in tradewinkd's memory — plaintext gRPC and TLS.

Design: the test runs as root and reads every readable mapping listed in /proc/PID/maps
through /proc/PID/mem (what gcore would dump, and more: [stack], anonymous pages, file-backed
writable pages), looking for the secret raw, as UTF-16, in hex, and in every base64 alignment
(standard and URL alphabets), as a substring of a longer base64 text would carry it. The key
is an Alpaca paper key and the broker is the loopback AlpacaStub of tests/fault, so the order
really decrypts the key and sends it in an HTTP header through libcurl. The client connection
stays open while the process is scanned (a web backend keeps its channel): a copy kept in a
live transport or TLS record buffer counts. A control scan while the call is in flight would
be racy, so instead the test first proves the scanner finds a marker it planted on purpose
(the key label, which the server keeps in the clear).

Without root (no /proc/PID/mem of another process), or against a build without the
wipe-on-free allocator (asan and fuzz builds: AddressSanitizer owns malloc and keeps freed
blocks in its quarantine), the test is skipped, never passed.
"""

import base64
import os
import re
import subprocess
import sys
import unittest

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fault"))
import faultlib  # noqa: E402
import tls_common  # noqa: E402
import twapi  # noqa: E402
import twserver  # noqa: E402
from faultlib import LIMIT, AlpacaStub, TwServer, status_name, submit  # noqa: E402

KEY_ID = "AKMEMSCAN0000001"
SECRET = "memscan-Secret-7Qw9Zr2Kx5Tb8Vn4"
LABEL = "label-visible-Jm3Hd8Qs"  # stored and returned in the clear: the scanner's control


def encodings(s):
    """Byte strings that betray s: raw, UTF-16LE, hex, and base64 at each of the three offsets
    it can sit at inside a longer base64 text (the characters that depend on neighbouring
    bytes cut off), in both alphabets."""
    b = s.encode()
    out = {b, s.encode("utf-16-le"), b.hex().encode(), b.hex().upper().encode()}
    for pad in range(3):
        for enc in (base64.b64encode, base64.urlsafe_b64encode):
            e = enc(b"\0" * pad + b).rstrip(b"=")
            # Skip the characters that mix in the pad bytes, and the last (mixes in what
            # follows); what is left depends on s alone.
            start = (pad * 8 + 5) // 6
            out.add(e[start:-1])
    return sorted(out, key=len)


def scan(pid, needles):
    """{needle: [(mapping name, offset)]} for every hit in every readable mapping of pid."""
    hits = {}
    pat = re.compile(b"|".join(re.escape(n) for n in needles))
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            parts = line.split()
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            if parts[1][0] != "r":
                continue
            name = parts[5] if len(parts) > 5 else "[anon]"
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except (OSError, ValueError, OverflowError):
                continue  # [vvar] and friends cannot be read; they hold no heap data
            for m in pat.finditer(data):
                hits.setdefault(m.group(0), []).append((name, m.start()))
    return hits


def wipes_on_free(binary):
    """Whether binary defines free itself (server/wipe_alloc.c is linked in)."""
    out = subprocess.run(["nm", "-D", "--defined-only", binary], capture_output=True,
                         text=True, check=True).stdout
    return any(ln.split()[-2:] == ["T", "free"] for ln in out.splitlines())


class TlsApi(twapi.Api):
    def __init__(self, addr, pki):
        self.channel = pki.channel(addr)


@unittest.skipUnless(os.geteuid() == 0, "reading another process's memory needs root")
@unittest.skipUnless(wipes_on_free(twserver.binary_path()),
                     "this build has no wipe-on-free allocator (AddressSanitizer owns malloc)")
class SecretMemoryTest(unittest.TestCase):
    tls = False

    def setUp(self):
        self.stub = AlpacaStub().start()
        self.stub.trades.update({"AAPL": "100.00"})
        env = dict(self.stub.env(), TW_SIM_ENABLED="0", TW_BROKER="alpaca")
        self.pki = tls_common.Pki() if self.tls else None
        if self.pki:
            env.update(self.pki.server_env())
        self.srv = TwServer(env=env).start()
        self.api = TlsApi(self.srv.addr, self.pki) if self.pki else twapi.Api(self.srv.addr)

    def tearDown(self):
        self.api.close()
        try:
            self.srv.stop_and_check(self)
        finally:
            self.srv.cleanup()
            self.stub.stop()
            if self.pki:
                self.pki.cleanup()

    def secretHits(self, when):
        # The reply reaches the client a moment before the server has unreffed the call and
        # freed its buffers: allow that moment (bounded), then the last scan decides.
        hits = faultlib.wait_until(lambda: not scan(self.srv.proc.pid, encodings(SECRET)), 3.0,
                                   interval=0.25)
        hits = {} if hits else scan(self.srv.proc.pid, encodings(SECRET))
        return ["%s: %s" % (when, {k.decode(): v[:8] for k, v in hits.items()})] if hits else []

    def test_no_copy_after_put_and_after_an_order(self):
        api = self.api
        tok = api.token("memscan-alice")
        k = api.call("KeyVault", "PutBrokerKey", token=tok, broker="alpaca", label=LABEL,
                     environment=faultlib.PAPER, key_id=KEY_ID, secret=SECRET).key
        # The scanner sees what is there: the label arrived in the same request.
        self.assertTrue(scan(self.srv.proc.pid, [LABEL.encode()]), "scanner found no control")
        left = self.secretHits("after PutBrokerKey returned")

        api.call("Orders", "UpdateAccountSettings", token=tok,
                 default_broker_key_id=faultlib.wrappers_pb2.StringValue(value=k.id))
        o = submit(api, tok, "memscan-1", symbol="AAPL", qty="1", limit="100.00", type_=LIMIT)
        self.assertEqual(status_name(o.status), "ACCEPTED", str(o))
        # The key really went to the broker, so it was decrypted and sent through libcurl.
        self.assertIn((KEY_ID, SECRET), self.stub.secrets_seen)
        left += self.secretHits("after an order used the key")
        self.assertEqual(left, [], "secret left in tradewinkd memory")


class SecretMemoryTlsTest(SecretMemoryTest):
    tls = True


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/python3
"""Writes the seed corpora under tests/fuzz/corpus/<target>/ (seed-* files; files the fuzzer
added with run.sh --merge are left alone).

usage: gen_corpus.py BUILD_DIR [--jwt-key PRIVATE_PEM]

BUILD_DIR holds a built tests/fuzz/fuzz_request_decode (its TW_FUZZ_LIST_ROUTES output maps
methods to the route byte). Request seeds are encoded with protoc from text format. The valid
fuzz_jwt seeds were signed with the private half of fuzz_jwt.c's TEST_PUBLIC_PEM, which is not
kept; without --jwt-key those seeds are left as they are. Needs Debian's python3-cryptography.
"""
import base64, hashlib, hmac, json, os, struct, subprocess, sys

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.asymmetric import rsa, padding, ec
from cryptography.hazmat.primitives import hashes, serialization

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NOW = 1700000000


def out(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


# ---- fuzz_request_decode ----
def request_seeds(build):
    exe = os.path.join(build, "tests", "fuzz", "fuzz_request_decode")
    probe = os.path.join(HERE, "corpus", "fuzz_request_decode", "seed-000-empty")
    os.makedirs(os.path.dirname(probe), exist_ok=True)
    with open(probe, "wb") as f:
        f.write(b"\x00")
    env = dict(os.environ, TW_FUZZ_LIST_ROUTES="1")
    res = subprocess.run([exe, probe], env=env, capture_output=True, text=True)
    routes = {}
    for line in res.stderr.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].isdigit() and parts[1].startswith("/"):
            routes[parts[1]] = (int(parts[0]), parts[2])
    if not routes:
        sys.exit("no routes listed by " + exe)
    for path, (i, _) in routes.items():
        out("fuzz_request_decode", "%03d-empty" % i, bytes([i]))
    texts = {
        "/tradewink.v1.Orders/SubmitOrder": [
            'client_order_id: "c-1" symbol: "AAPL" side: ORDER_SIDE_BUY type: ORDER_TYPE_LIMIT '
            'time_in_force: TIME_IN_FORCE_DAY qty: "10" limit_price: "187.25" origin: 1 '
            'note: "rebalance"',
            'client_order_id: "auto:42" symbol: "brk.b" side: ORDER_SIDE_SELL '
            'type: ORDER_TYPE_MARKET time_in_force: TIME_IN_FORCE_IOC qty: "0.5" origin: 2 '
            'broker_key_id: "01HZX"'],
        "/tradewink.v1.KeyVault/PutBrokerKey": [
            'broker: "alpaca" label: "paper" environment: 1 key_id: "PKAB12CD34EF9XQ2" '
            'secret: "s3cr3t-value-0123456789"'],
        "/tradewink.v1.Auth/IssueDevToken": ['subject: "alice@example.com" role: 1 ttl_seconds: 3600'],
        "/tradewink.v1.Orders/ListOrders": [
            'statuses: 1 statuses: 2 symbol: "MSFT" created_after { seconds: 1700000000 } '
            'page_size: 50 page_token: "abc"'],
        "/tradewink.v1.Orders/UpdateAccountSettings": [
            'trading_mode: 2 confirm_live: true autonomous_mode { value: true } '
            'default_broker_key_id { value: "" }'],
        "/tradewink.v1.Orders/CancelOrder": ['order_id: "01HZXY"'],
        "/tradewink.v1.Risk/SetLimits": [
            'user_id: "bob" daily_loss_pct { value: "2.5" } max_open_positions { value: 20 }'],
        "/tradewink.v1.Audit/ListEvents": [
            'user_id: "" all_users: true action: 1 start_time { seconds: 1 nanos: 5 } '
            'page_size: 10'],
        "/tradewink.v1.Sim/SetQuotes": [
            'quotes { symbol: "AAPL" bid: "187.20" ask: "187.30" last: "187.25" } '
            'quotes { symbol: "SPY" bid: "450" ask: "450.02" last: "450.01" }'],
        "/grpc.health.v1.Health/Check": ['service: "tradewink.v1.Orders"'],
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": [
            'list_services: ""', 'file_containing_symbol: "tradewink.v1.Orders"'],
    }
    protos = []
    for r, _, files in os.walk(os.path.join(ROOT, "proto", "tradewink")):
        protos += [os.path.relpath(os.path.join(r, f), os.path.join(ROOT, "proto"))
                   for f in files if f.endswith(".proto")]
    incs = ["-I" + os.path.join(ROOT, "proto"), "-I/usr/include", "-I/usr/share/grpc-proto"]
    extra = ["grpc/health/v1/health.proto", "grpc/reflection/v1/reflection.proto"]
    for path, variants in texts.items():
        if path not in routes:
            continue
        i, typ = routes[path]
        for k, t in enumerate(variants):
            enc = subprocess.run(["protoc"] + incs + ["--encode=" + typ] + sorted(protos) + extra,
                                 input=t.encode(), capture_output=True, check=True).stdout
            name = "%03d-%s-%d" % (i, path.rsplit("/", 1)[1], k)
            out("fuzz_request_decode", name, bytes([i]) + enc)


# ---- fuzz_jwt ----
def jwt_seeds(keyfile):
    hdr = {"alg": "RS256", "typ": "JWT"}
    good = {"iss": "https://issuer.fuzz.test", "sub": "alice", "aud": "tradewink",
            "role": "user", "iat": NOW - 10, "exp": NOW + 3600}
    if keyfile:
        with open(keyfile, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), None)

        def sign(h, c):
            si = b64u(json.dumps(h).encode()) + "." + b64u(json.dumps(c).encode())
            sig = key.sign(si.encode(), padding.PKCS1v15(), hashes.SHA256())
            return si + "." + b64u(sig)
        out("fuzz_jwt", "pem-valid", b"\x00" + sign(hdr, good).encode())
        out("fuzz_jwt", "pem-admin-aud-list", b"\x00" + sign(
            dict(hdr, kid="k1"), dict(good, role="admin", aud=["x", "twctl"], nbf=NOW)).encode())
        out("fuzz_jwt", "pem-expired", b"\x00" + sign(hdr, dict(good, exp=NOW - 100)).encode())
        t = sign(hdr, good)
        out("fuzz_jwt", "pem-bitflip", b"\x00" + (t[:-3] + ("A" if t[-3] != "A" else "B") + t[-2:]).encode())
        out("fuzz_jwt", "raw-lowercase-bearer", b"\x02bearer " + t.encode())
    out("fuzz_jwt", "alg-none", b"\x00" + (b64u(b'{"alg":"none"}') + "." + b64u(json.dumps(good).encode()) + ".").encode())
    out("fuzz_jwt", "alg-hs256", b"\x00" + (b64u(b'{"alg":"HS256","typ":"JWT"}') + "." + b64u(b"{}") + "." + b64u(b"x" * 32)).encode())
    out("fuzz_jwt", "raw-basic", b"\x02Basic YWxpY2U6cHc=")
    out("fuzz_jwt", "two-segments", b"\x00eyJhbGciOiJSUzI1NiJ9.e30")
    out("fuzz_jwt", "jku-header", b"\x00" + (b64u(b'{"alg":"RS256","jku":"https://evil"}') + ".e30.AAAA").encode())
    signed = [
        ({"alg": "RS256", "typ": "JWT"}, dict(good, role=None, app={"role": "admin"})),
        ({"alg": "RS256"}, dict(good, aud=["tradewink"], azp="twctl", nbf=NOW - 1)),
        ({"alg": "RS256", "kid": "x"}, {"sub": "bob", "exp": NOW + 5}),
        ({"alg": "RS256"}, dict(good, iss="https://other")),
        ({"alg": "RS256"}, dict(good, sub="")),
        ({"alg": "RS256"}, dict(good, exp="soon")),
    ]
    for k, (h, c) in enumerate(signed):
        c = {a: b for a, b in c.items() if b is not None}
        out("fuzz_jwt", "signed-%d" % k, b"\x01" + json.dumps(h).encode() + b"\x00" + json.dumps(c).encode())
    out("fuzz_jwt", "signed-default-header", b"\x01" + json.dumps(good).encode())
    out("fuzz_jwt", "signed-dup-keys", b"\x01" + b'{"sub":"a","sub":"b","exp":1700003600,"iss":"https://issuer.fuzz.test","aud":"tradewink"}')


# ---- fuzz_jwks ----
def jwk(key, **extra):
    n = key.public_key().public_numbers()
    d = {"kty": "RSA", "n": b64u(n.n.to_bytes((n.n.bit_length() + 7) // 8, "big")),
         "e": b64u(n.e.to_bytes(3, "big"))}
    d.update(extra)
    return d


def jwks_seeds():
    k1 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    k2 = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    ecn = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    eck = {"kty": "EC", "crv": "P-256", "kid": "ec1", "x": b64u(ecn.x.to_bytes(32, "big")),
           "y": b64u(ecn.y.to_bytes(32, "big"))}
    sets = {
        "two-keys": {"keys": [jwk(k1, kid="a", use="sig", alg="RS256"), jwk(k2, kid="b")]},
        "mixed": {"keys": [eck, jwk(k1, kid="a", key_ops=["verify"]), jwk(weak, kid="weak"),
                           jwk(k2, kid="enc", use="enc")]},
        "ps256-only": {"keys": [jwk(k1, kid="p", alg="PS256")]},
        "dup-kid": {"keys": [jwk(k1, kid="a"), jwk(k2, kid="a")]},
        "private-member": {"keys": [jwk(k1, kid="a", d="AAAA")]},
        "empty": {"keys": []},
        "not-a-set": [1, 2, 3],
    }
    for i, (name, s) in enumerate(sets.items()):
        out("fuzz_jwks", name, bytes([i % 4]) + json.dumps(s).encode())
    out("fuzz_jwks", "dup-json-key", b'\x00{"keys":[],"keys":[]}')


# ---- fuzz_fernet ----
FERNET_KEY = bytes([0x10, 0x21, 0x32, 0x43, 0x54, 0x65, 0x76, 0x87, 0x98, 0xa9, 0xba, 0xcb,
                    0xdc, 0xed, 0xfe, 0x0f, 0x5a, 0x4b, 0x3c, 0x2d, 0x1e, 0x0f, 0xf0, 0xe1,
                    0xd2, 0xc3, 0xb4, 0xa5, 0x96, 0x87, 0x78, 0x69])


def fernet_seeds():
    f = Fernet(base64.urlsafe_b64encode(FERNET_KEY))
    for name, msg, t, mode in [("short", b"PKAB12CD34EF9XQ2", NOW - 5, 0),
                               ("empty-msg", b"", NOW, 1),
                               ("block", b"x" * 16, NOW - 7200, 2),
                               ("future", b"secret", NOW + 3600, 0),
                               ("long", b"s" * 300, NOW - 100, 3)]:
        tok = f.encrypt_at_time(msg, t)
        out("fuzz_fernet", name, bytes([mode]) + tok)
        raw = base64.urlsafe_b64decode(tok)[:-32]
        out("fuzz_fernet", "body-" + name, bytes([4 | mode]) + raw)
    out("fuzz_fernet", "not-base64", b"\x00gAAAA!!!!")
    out("fuzz_fernet", "body-bad-padding", b"\x04\x80" + struct.pack(">Q", NOW) + b"\x00" * 16 + b"\x01" * 16)


# ---- fuzz_decimal ----
def decimal_seeds():
    vals = ["0", "-0", "12.5", "007.50", "187.250000", "0.000000001", "-9223372036854.775807",
            "9223372036854.775808", "1e5", ".5", "5.", "+1", " 1", "0.0000001", "1.0000000000"]
    for i, v in enumerate(vals):
        out("fuzz_decimal", "%02d" % i, bytes([i % 4 if i % 4 != 3 else (3 | (i << 2)) & 0xff]) + v.encode())
    out("fuzz_decimal", "generic-scale0", b"\x03" + b"-9223372036854775807")
    out("fuzz_decimal", "generic-nul", b"\x07" + b"1\x002")


# ---- fuzz_webhook ----
WH_KEYS = [b"0123456789abcdefghijklmn", b"fuzz-webhook-secret-two-32bytes!"]


def webhook_seeds():
    def delivery(flags, msg_id, ts, body, key=0, extra_sig=""):
        content = msg_id + b"." + ts + b"." + body
        sig = "v1," + base64.b64encode(hmac.new(WH_KEYS[key], content, hashlib.sha256).digest()).decode()
        sig = (extra_sig + " " + sig).strip()
        return bytes([flags]) + msg_id + b"\x00" + ts + b"\x00" + sig.encode() + b"\x00" + body
    ts = str(NOW).encode()
    body = b'{"type":"order.filled","data":{"order_id":"01HZX","qty":"10"}}'
    out("fuzz_webhook", "valid", delivery(0, b"msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", ts, body))
    out("fuzz_webhook", "valid-second-key", delivery(0, b"msg_1", ts, body, key=1, extra_sig="v1a,AAAA v2,xyz"))
    out("fuzz_webhook", "valid-release", delivery(0x10, b"msg_r", ts, b""))
    out("fuzz_webhook", "stale", delivery(0, b"msg_s", str(NOW - 301).encode(), body))
    out("fuzz_webhook", "harness-signed", b"\x08msg_h\x00" + ts + b"\x00v1,AAAA\x00" + body)
    out("fuzz_webhook", "harness-signed-key2", b"\x8cmsg_h\x00" + ts + b"\x00\x00" + body)
    out("fuzz_webhook", "no-secret-source", b"\x48msg_n\x00" + ts + b"\x00\x00" + body)
    out("fuzz_webhook", "missing-sig", b"\x04msg_m\x00" + ts + b"\x00\x00" + body)
    out("fuzz_webhook", "bad-ts", b"\x08msg_t\x00" + b"17e8" + b"\x00\x00" + body)
    out("fuzz_webhook", "secrets-spec", b"\x20alpaca:whsec_MDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1u whsec_ZnV6ei13ZWJob29rLXNlY3JldC10d28tMzJieXRlcyE=,stripe:whsec_")
    out("fuzz_webhook", "secrets-bad", b"\x20:whsec_,Bad Name:whsec_!!!,x:whsec_AAAA")


# ---- fuzz_config ----
CONFIG_ORDER = ["TW_LISTEN", "TW_OPS_LISTEN", "TW_DATABASE_URL", "TW_REDIS_URL", "TW_AUTH_MODE",
                "TW_JWKS_URL", "TW_JWKS_CA_FILE", "TW_JWT_PUBLIC_KEY_FILE", "TW_JWT_ISSUER",
                "TW_JWT_AUDIENCE", "TW_JWT_ROLE_CLAIM", "TW_JWT_CLOCK_SKEW_S",
                "TW_JWKS_CACHE_TTL_S", "TW_DEV_KEY_FILE", "TW_VAULT_MASTER_KEYS",
                "TW_VAULT_MASTER_KEY_FILE", "TW_PBKDF2_ITERATIONS", "TW_TLS_CERT_FILE",
                "TW_TLS_KEY_FILE", "TW_TLS_CLIENT_CA_FILE", "TW_WEBHOOK_SECRETS", "TW_WORKERS",
                "TW_LOG_LEVEL", "TW_MAX_MESSAGE_BYTES", "TW_SHUTDOWN_GRACE_MS", "TW_BROKER",
                "TW_SIM_ENABLED", "TW_SECTOR_MAP_FILE"]


def config_seeds():
    def cfg(**kv):
        return b"\x00".join((kv[n].encode() if n in kv else b"\xff") for n in CONFIG_ORDER)
    out("fuzz_config", "defaults", b"")
    out("fuzz_config", "dev-local", cfg(TW_LISTEN="127.0.0.1:0", TW_WORKERS="2", TW_LOG_LEVEL="debug"))
    out("fuzz_config", "jwks-prod", cfg(TW_LISTEN="0.0.0.0:50051", TW_AUTH_MODE="jwks",
                                        TW_JWKS_URL="https://idp.example/.well-known/jwks.json",
                                        TW_TLS_CERT_FILE="/etc/hostname", TW_TLS_KEY_FILE="/etc/hostname",
                                        TW_VAULT_MASTER_KEYS="v1:" + "A" * 44,
                                        TW_DATABASE_URL="postgres://u@db/tw?sslmode=verify-full",
                                        TW_REDIS_URL="redis://127.0.0.1:6379/0", TW_BROKER="alpaca",
                                        TW_SIM_ENABLED="false"))
    out("fuzz_config", "bad-values", cfg(TW_LISTEN="[::1]:99999", TW_AUTH_MODE="pem",
                                         TW_JWT_CLOCK_SKEW_S="-1", TW_PBKDF2_ITERATIONS="1000",
                                         TW_WORKERS="12abc", TW_REDIS_URL="rediss://x",
                                         TW_SIM_ENABLED="yes", TW_TLS_CLIENT_CA_FILE="/nonexistent"))
    out("fuzz_config", "overflow-int", cfg(TW_MAX_MESSAGE_BYTES="99999999999999999999999"))


# ---- fuzz_redact ----
def redact_seeds():
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
    lines = [
        (1, json.dumps({"ts": "2024-01-01T00:00:00Z", "level": "info", "msg": "order accepted",
                        "user": "alice", "authorization": "Bearer " + jwt, "api_key": 12345,
                        "nested": {"client_secret": ["a", "b"], "note": "token=abc123"}})),
        (1, '{"msg":"db","url":"postgres://tw:hunter2@db:5432/tw","depth":[[[[{"password":null}]]]]}'),
        (1, '{"msg":"escaped \\u0041 \\ud83d\\ude00 \\"q\\"","tokens_used":5,"author":"x"}'),
        (0, "GET /v1/orders Authorization: Bearer " + jwt + " from 10.0.0.1"),
        (0, "loaded key -----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY----- ok"),
        (0, "webhook secret whsec_MDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1u rotated; password=pa55 api-key: k"),
        (0, "fernet gAAAAABlU3v8" + "A" * 80 + "== stored"),
        (2, "prefix\x00suffix"),
        (3, '{"a":"x\x00","b":1}'),
    ]
    for i, (flags, text) in enumerate(lines):
        out("fuzz_redact", "%02d" % i, bytes([flags]) + text.encode())


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    key = None
    if "--jwt-key" in sys.argv:
        key = sys.argv[sys.argv.index("--jwt-key") + 1]
    request_seeds(sys.argv[1])
    jwt_seeds(key)
    jwks_seeds()
    fernet_seeds()
    decimal_seeds()
    webhook_seeds()
    config_seeds()
    redact_seeds()


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Independent JWT implementation (Debian python3-jwt) for tests/auth/test_auth_interop.c.

  pyjwt_interop.py mint KEYFILE SUB ROLE NOW   -> prints an RS256 dev token (kid = RFC 7638)
  pyjwt_interop.py verify KEYFILE TOKEN NOW    -> exit 0 and prints "sub role" if valid
"""
import base64
import hashlib
import json
import sys

import jwt
from cryptography.hazmat.primitives import serialization


def b64(n):
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def thumbprint(pub):
    nums = pub.public_numbers()
    canon = json.dumps({"e": b64(nums.e), "kty": "RSA", "n": b64(nums.n)},
                       separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canon.encode()).digest()).rstrip(b"=").decode()


def main():
    cmd, keyfile = sys.argv[1], sys.argv[2]
    with open(keyfile, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    if cmd == "mint":
        sub, role, now = sys.argv[3], sys.argv[4], int(sys.argv[5])
        tok = jwt.encode({"iss": "tradewink-dev", "sub": sub, "role": role, "iat": now,
                          "exp": now + 600}, key, algorithm="RS256",
                         headers={"kid": thumbprint(key.public_key())})
        print(tok)
        return 0
    if cmd == "verify":
        tok, now = sys.argv[3], int(sys.argv[4])
        hdr = jwt.get_unverified_header(tok)
        if hdr.get("kid") != thumbprint(key.public_key()) or hdr.get("alg") != "RS256":
            return 2
        claims = jwt.decode(tok, key.public_key(), algorithms=["RS256"], issuer="tradewink-dev",
                            options={"require": ["exp", "iat", "iss", "sub"], "verify_exp": False})
        if not (claims["iat"] <= now <= claims["exp"]):
            return 3
        print(claims["sub"], claims["role"])
        return 0
    return 64


sys.exit(main())

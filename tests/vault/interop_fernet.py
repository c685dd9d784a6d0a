"""Interop test: Python's cryptography (an independent implementation) and the vault agree.

For each iteration count (a fast one and the production 600,000): Python derives the per-user
key with its own PBKDF2HMAC and must get the same bytes as the vault; Python's Fernet decrypts
a token made by vault_encrypt_secret; the vault decrypts a token made by Python's Fernet.
Usage: interop_fernet.py PATH_TO_interop_fernet_BINARY
"""
import base64
import os
import subprocess
import sys

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC


def run(binary, *args):
    out = subprocess.run([binary, *args], check=True, capture_output=True, text=True)
    return out.stdout.splitlines()


def main():
    binary = sys.argv[1]
    master = os.urandom(32)
    master_b64 = base64.b64encode(master).decode()
    for iterations in (1000, 600000):
        salt = os.urandom(16)
        kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=iterations)
        py_key = base64.urlsafe_b64encode(kdf.derive(master))

        message = "PK-interop-%d-secret" % iterations
        key_line, token = run(binary, "enc", master_b64, salt.hex(), str(iterations), message)
        assert key_line.encode() == py_key, "derived keys differ at %d iterations" % iterations
        assert Fernet(py_key).decrypt(token.encode()).decode() == message, "python decrypt"

        py_message = "made-by-python-%d" % iterations
        py_token = Fernet(py_key).encrypt(py_message.encode()).decode()
        (plain,) = run(binary, "dec", master_b64, salt.hex(), str(iterations), py_token)
        assert plain == py_message, "vault decrypt of python token"

        # and a python token under a different key must be refused by the vault
        other = Fernet(Fernet.generate_key()).encrypt(b"x").decode()
        bad = subprocess.run([binary, "dec", master_b64, salt.hex(), str(iterations), other],
                             capture_output=True, text=True)
        assert bad.returncode != 0, "vault accepted a token under another key"
        print("ok: %d iterations, keys equal, tokens cross-decrypt" % iterations)


if __name__ == "__main__":
    main()

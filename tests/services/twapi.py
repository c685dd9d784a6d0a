"""Typed Python client for tradewink.v1, built at test time from proto/ with protoc --python_out.

Purpose: exercise tradewinkd's services through a client nobody in this project wrote
(Debian's python3-grpcio and python3-protobuf), with message classes generated from our own
contracts. Reuses tests/integration/twserver.py to start and stop the server.
"""

import atexit
import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import twserver  # noqa: E402

SOURCE_DIR = twserver.SOURCE_DIR
_gen = tempfile.mkdtemp(prefix="twapi-")
atexit.register(shutil.rmtree, _gen, True)
_protos = sorted(
    os.path.join("tradewink", "v1", f)
    for f in os.listdir(os.path.join(SOURCE_DIR, "proto", "tradewink", "v1"))
    if f.endswith(".proto")
)
subprocess.check_call(
    ["protoc", "-I", os.path.join(SOURCE_DIR, "proto"), "-I", "/usr/include",
     "--python_out", _gen] + _protos
)
sys.path.insert(0, _gen)
pb = {}
for p in _protos:
    name = os.path.basename(p)[:-6]
    pb[name] = importlib.import_module("tradewink.v1.%s_pb2" % name)
common = pb["common"]
auth = pb["auth"]
keyvault = pb["keyvault"]
orders = pb["orders"]
risk = pb["risk"]
audit = pb["audit"]
sim = pb["sim"]

_SERVICES = {"Auth": auth, "KeyVault": keyvault, "Orders": orders, "Risk": risk,
             "Audit": audit, "Sim": sim}


class Api:
    """api.call("Orders", "SubmitOrder", token=..., field=value...) -> response message."""

    def __init__(self, addr):
        self.channel = grpc.insecure_channel(addr)

    def close(self):
        self.channel.close()

    def call(self, service, method, token=None, timeout=30, metadata=(), **fields):
        mod = _SERVICES[service]
        req = getattr(mod, method + "Request")(**fields)
        resp_cls = getattr(mod, method + "Response")
        fn = self.channel.unary_unary(
            "/tradewink.v1.%s/%s" % (service, method),
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=resp_cls.FromString,
        )
        md = list(metadata)
        if token:
            md.append(("authorization", "Bearer " + token))
        return fn(req, metadata=md, timeout=timeout)

    def stream(self, service, method, token=None, timeout=30, **fields):
        mod = _SERVICES[service]
        req = getattr(mod, method + "Request")(**fields)
        resp_cls = getattr(mod, method + "Response")
        fn = self.channel.unary_stream(
            "/tradewink.v1.%s/%s" % (service, method),
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=resp_cls.FromString,
        )
        md = [("authorization", "Bearer " + token)] if token else []
        return fn(req, metadata=md, timeout=timeout)

    def token(self, subject, admin=False, ttl=3600):
        role = common.ROLE_ADMIN if admin else common.ROLE_USER
        return self.call("Auth", "IssueDevToken", subject=subject, role=role,
                         ttl_seconds=ttl).token


def code_of(fn, *args, **kwargs):
    """The gRPC status code a call ends with (OK when it returns)."""
    try:
        fn(*args, **kwargs)
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()

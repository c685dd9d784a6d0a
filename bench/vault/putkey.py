"""PutBrokerKey calls/s for one user with a warm derived-key cache, against the first (cold)
call that runs PBKDF2 (600,000 iterations). Usage: TW_BINARY=<tradewinkd> bench/vault/putkey.py"""
import os
import sys
import time
sys.argv=[sys.argv[0]]
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "..", "..", "tests", "services"), os.path.join(HERE, "..", "..", "tests", "integration")]
from twapi import Api, common
from twserver import TwServer
with TwServer(env={"TW_RATE_KEY_SUBMIT":"100000/s:100000"}) as srv:
    api=Api(srv.addr); tok=api.token("putter")
    def put(i):
        return api.call("KeyVault","PutBrokerKey",token=tok,broker="sim",environment=common.TRADING_MODE_PAPER,key_id="PKBENCH%08d"%i,secret="bench-secret-%d"%i)
    t0=time.perf_counter(); put(0); first=time.perf_counter()-t0
    n=200; t0=time.perf_counter()
    for i in range(1,n+1): put(i)
    dt=time.perf_counter()-t0
    tok2=api.token("putter2"); api2=api
    t1=time.perf_counter(); api.call("KeyVault","PutBrokerKey",token=tok2,broker="sim",environment=common.TRADING_MODE_PAPER,key_id="PKBENCHX0000001",secret="s2"); cold2=time.perf_counter()-t1
    print("first put (cold key derivation): %.1f ms; warm: %d puts in %.2f s = %.0f puts/s (%.2f ms each); another user's first put %.1f ms" % (first*1000, n, dt, n/dt, dt/n*1000, cold2*1000))
    api.close(); srv.stop()

#!/usr/bin/python3
"""Streams benchmark: --streams concurrent Orders/StreamOrderUpdates subscribers spread over
--users users (python3-grpcio's asyncio API holds them all on --channels channels), then one
market order per user (submitted together); fan-out latency = time from SubmitOrder's return
to the first update of that order arriving at each subscriber, plus the server's RSS idle,
with the streams open, and after the fan-out (VmRSS from /proc/PID/status).

Design. tradewinkd (SQLite store) in a fresh temp cwd on a free loopback port, stopped by PID.
The server publishes order updates from a feed that reads the audit table as soon as this
process commits audit events (and every 200 ms for other replicas' events), so the latency is
the commit-to-read wake-up, the read and the delivery to every subscriber. Bounded: the subscribers wait at most --wait seconds for
their update, the whole run has a deadline.
"""

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "orders"))
import twbench as tb  # noqa: E402

import grpc  # noqa: E402
from twapi import common, orders  # noqa: E402


async def run(args, srv, toks):
    chans = [grpc.aio.insecure_channel(srv.addr) for _ in range(args.channels)]
    got = {}  # (stream index) -> (order_id, arrival monotonic)
    opened = 0
    streams = []

    async def subscriber(i, tok):
        nonlocal opened
        ch = chans[i % len(chans)]
        fn = ch.unary_stream("/tradewink.v1.Orders/StreamOrderUpdates",
                             request_serializer=lambda m: m.SerializeToString(),
                             response_deserializer=orders.StreamOrderUpdatesResponse.FromString)
        call = fn(orders.StreamOrderUpdatesRequest(),
                  metadata=[("authorization", "Bearer " + tok)], timeout=args.deadline)
        streams.append(call)
        opened += 1
        try:
            async for msg in call:
                if i not in got:
                    got[i] = (msg.update.order.id, time.monotonic())
        except grpc.aio.AioRpcError as e:
            if e.code() != grpc.StatusCode.CANCELLED:
                got.setdefault(("error", i), e.code().name)

    tasks = []
    user_of = []
    for i in range(args.streams):
        u = i % len(toks)
        user_of.append(u)
        tasks.append(asyncio.ensure_future(subscriber(i, toks[u])))
    await asyncio.sleep(args.settle)  # let every stream reach the server
    rss_streams = srv.rss_kb()
    threads = srv.status().get("threads")

    submit = chans[0].unary_unary("/tradewink.v1.Orders/SubmitOrder",
                                  request_serializer=lambda m: m.SerializeToString(),
                                  response_deserializer=orders.SubmitOrderResponse.FromString)
    ret = {}

    async def one(u):
        t0 = time.monotonic()
        r = await submit(orders.SubmitOrderRequest(
            client_order_id="fan-%d" % u, symbol=tb.SYMBOL, side=common.ORDER_SIDE_BUY,
            type=common.ORDER_TYPE_MARKET, qty="1", time_in_force=common.TIME_IN_FORCE_DAY,
            origin=common.ORDER_ORIGIN_USER),
            metadata=[("authorization", "Bearer " + toks[u])], timeout=30)
        ret[u] = (r.order.id, t0, time.monotonic())

    t_submit = time.monotonic()
    await asyncio.gather(*(one(u) for u in range(len(toks))))
    deadline = time.monotonic() + args.wait
    while len([k for k in got if not isinstance(k, tuple)]) < args.streams and \
            time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    rss_after = srv.rss_kb()
    lat, lat_from_start, wrong = [], [], 0
    for i in range(args.streams):
        if i not in got:
            continue
        oid, t = got[i]
        want_oid, t0, t1 = ret[user_of[i]]
        if oid != want_oid:
            wrong += 1
            continue
        lat.append((t - t1) * 1000.0)
        lat_from_start.append((t - t0) * 1000.0)
    errors = {k[1]: v for k, v in got.items() if isinstance(k, tuple)}
    for c in streams:
        c.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for ch in chans:
        await ch.close()
    lat.sort()
    lat_from_start.sort()
    submit_ms = sorted((t1 - t0) * 1000.0 for _, t0, t1 in ret.values())
    return {"streams_opened": opened, "received": len(lat), "wrong_order": wrong,
            "stream_errors": errors, "rss_streams_kb": rss_streams, "rss_after_kb": rss_after,
            "server_threads": threads,
            "fanout_ms": {"p50": tb.percentile(lat, 50), "p99": tb.percentile(lat, 99),
                          "min": lat[0] if lat else None, "max": lat[-1] if lat else None,
                          "mean": statistics.mean(lat) if lat else None},
            "from_submit_start_ms": {"p50": tb.percentile(lat_from_start, 50),
                                     "p99": tb.percentile(lat_from_start, 99)},
            "submit_ms": {"p50": tb.percentile(submit_ms, 50), "max": submit_ms[-1]},
            "wave_s": time.monotonic() - t_submit}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--channels", type=int, default=10)
    ap.add_argument("--settle", type=float, default=3.0)
    ap.add_argument("--wait", type=float, default=10.0)
    ap.add_argument("--deadline", type=float, default=120.0)
    ap.add_argument("--out", default=os.path.join(tb.ROOT, "bench", "results"))
    ap.add_argument("--results-md", default=os.path.join(tb.ROOT, "bench", "RESULTS.md"))
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="twbench-streams-")
    srv = tb.TwServer(os.path.abspath(args.server), workdir=workdir).start()
    try:
        api = tb.Api(srv.addr)
        admin = api.token("bench-admin", admin=True, ttl=86400)
        tb.setup_market(api, admin)
        toks, _ = tb.setup_users(api, admin, args.users, prefix="st-u")
        api.close()
        rss_idle = srv.rss_kb()
        res = asyncio.run(asyncio.wait_for(run(args, srv, toks), args.deadline))
        res["rss_idle_kb"] = rss_idle
        res["server_command"] = srv.command()
    finally:
        res_exit = srv.stop()
    res.update({"scenario": "streams", "streams": args.streams, "users": args.users,
                "channels": args.channels, "server_exit": res_exit})
    rel = tb.save_json(args.out, "streams", res)
    f = res["fanout_ms"]
    cmd = "bench/streams/bench.py --server %s --streams %d --users %d --channels %d" % (
        os.path.relpath(os.path.abspath(args.server), tb.ROOT), args.streams, args.users,
        args.channels)
    print("streams: %d open, %d received, fan-out p50 %s p99 %s ms, RSS %s -> %s -> %s KiB" % (
        res["streams_opened"], res["received"], tb.fmt(f["p50"]), tb.fmt(f["p99"]),
        rss_idle, res["rss_streams_kb"], res["rss_after_kb"]))
    md = "\n".join([
        "## Streams: %d StreamOrderUpdates subscribers, one order per user" % args.streams, "",
        "%d subscribers over %d users (%d per user) on %d client channels (python3-grpcio "
        "asyncio), SQLite store; then one market order per user, all %d submitted together. "
        "Fan-out latency: from SubmitOrder's return to that order's first update at each "
        "subscriber. The server's update feed reads the database when this process commits "
        "audit events (and every 200 ms for other replicas' events); the baseline column is "
        "that 200 ms period, the latency a subscriber would see from polling alone." % (
            args.streams, args.users, args.streams // args.users, args.channels, args.users), "",
        "| scenario | ours | baseline | ratio | p50 / p99 ms | RSS MiB | command |",
        "|---|---|---|---|---|---|---|",
        "| fan-out, %d streams | %d/%d updates received (%d wrong order, stream errors %s); "
        "mean %s ms, min %s, max %s | poll period 200 ms | - | %s / %s (from submit start: "
        "%s / %s) | idle %.1f, %d streams open %.1f, after fan-out %.1f (%.1f KiB per stream) "
        "| `%s` |" % (
            args.streams, res["received"], args.streams, res["wrong_order"],
            res["stream_errors"] or "none", tb.fmt(f["mean"]), tb.fmt(f["min"]),
            tb.fmt(f["max"]), tb.fmt(f["p50"]), tb.fmt(f["p99"]),
            tb.fmt(res["from_submit_start_ms"]["p50"]), tb.fmt(res["from_submit_start_ms"]["p99"]),
            rss_idle / 1024.0, args.streams, res["rss_streams_kb"] / 1024.0,
            res["rss_after_kb"] / 1024.0,
            (res["rss_streams_kb"] - rss_idle) / float(args.streams), cmd), "",
        "Server: `%s`. Raw JSON: `%s`." % (res["server_command"], rel)])
    tb.write_section(args.results_md, "streams", md + "\n\nRun %s on %s." % (
        time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), tb.machine()))
    return 0 if res["received"] == args.streams else 1


if __name__ == "__main__":
    sys.exit(main())

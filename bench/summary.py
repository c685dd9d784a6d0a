#!/usr/bin/python3
"""Summary table at the top of bench/RESULTS.md, from the newest raw JSON of each service
scenario in bench/results/ (transport, authread, orders, streams, scaling). One row per
measured configuration: scenario, ours, baseline, ratio, p50/p99, RSS, command; the
per-scenario sections below it hold the details. Component benchmarks (auth, vault, risk)
print text; their sections are linked, not repeated."""

import glob
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "orders"))
import twbench as tb  # noqa: E402

RES = os.path.join(tb.ROOT, "bench", "results")


def newest(name):
    files = sorted(glob.glob(os.path.join(RES, name + "-*.json")))
    if not files:
        return None, None
    return json.load(open(files[-1])), os.path.relpath(files[-1], tb.ROOT)


def row(*cells):
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def main():
    rows = []
    tr, trp = newest("transport")
    if tr:
        sm = tr.get("summary", {})
        ours, cpp = sm.get("ours-warn"), sm.get("cpp")
        cmd = tr.get("meta", {}).get("commands", {}).get("ours-warn", {}).get("h2load", "")
        if ours and cpp:
            rows.append(row("1 transport: Health/Check", "%.0f QPS" % ours["qps_median"],
                            "C++ async %.0f QPS" % cpp["qps_median"],
                            "%.2f (target >= 1.0)" % (ours["qps_median"] / cpp["qps_median"]),
                            "%.1f / %.1f" % (ours["p50_ms_median"], ours["p99_ms_median"]),
                            "%.1f" % (ours["rss_kb_max"] / 1024.0), "`%s`" % cmd))
        else:
            rows.append(row("1 transport: Health/Check", "see section", "C++ async", "-", "-",
                            "-", "`bench/transport/run.sh` (%s)" % trp))
    ar, _ = newest("authread")
    if ar:
        for r in ar["rows"][1:]:
            if r.get("diagnostic"):
                continue
            rows.append(row("2 auth'd read: " + r["name"], "%.0f QPS" % r["qps"],
                            "Health/Check same server %.0f QPS" % ar["health_qps"],
                            "%.2f (target >= 0.8)" % r["ratio_vs_health"],
                            "%.1f / %.1f" % (r["p50_ms"], r["p99_ms"]),
                            "%.1f" % (r["rss_kb"] / 1024.0), "`%s`" % r["command"]))
    od, _ = newest("orders")
    if od:
        for r in od["runs"]:
            for pt in r.get("points", []):
                p50 = statistics.median(o["p50_ms"] for o in pt["ours"])
                p99 = statistics.median(o["p99_ms"] for o in pt["ours"])
                base = "floor %.0f orders/s" % pt["floor_peak"]
                if pt["replay_peak"]:
                    base += " (replay of our own SQL %.0f, ratio %.2f)" % (
                        pt["replay_peak"], pt["peak"] / pt["replay_peak"])
                rows.append(row("3 order path peak, %s, %d clients" % (r["backend"],
                                                                      pt["clients"]),
                                "%.0f orders/s; slowest call %.0f ms (target <= 100)" % (
                                    pt["peak"], pt["slowest_ms"]), base,
                                "%.2f of floor (target >= 0.7)" % (pt["peak"] / pt["floor_peak"]),
                                "%.1f / %.1f" % (p50, p99), "%.1f" % (r["rss_kb"] / 1024.0),
                                "`%s`" % pt["ours"][-1]["command"]))
            h = r["half_peak"]
            rows.append(row("3 order path at half peak, %s, users holding %d+ orders" % (
                                r["backend"], h["history"]["min"]),
                            "%.0f orders/s offered, %.0f achieved" % (h["rate"],
                                                                     h["orders_per_s"]),
                            "target p99 < 20 ms", "%s" % ("met" if h["p99_ms"] < 20 else
                                                         "missed by %.1f ms" %
                                                         (h["p99_ms"] - 20)),
                            "%.1f / %.1f%s" % (h["p50_ms"], h["p99_ms"],
                                               " (lower bounds: %d orders never sent)" %
                                               h["unsent"] if h.get("unsent") else ""),
                            "%.1f" % (h["rss_kb"] / 1024.0), "`%s`" % h["command"]))
    st, _ = newest("streams")
    if st:
        f = st["fanout_ms"]
        rows.append(row("7 streams: %d subscribers, fan-out" % st["streams"],
                        "%d/%d updates delivered" % (st["received"], st["streams"]),
                        "200 ms feed poll alone (no commit wake-up)", "-",
                        "%s / %s" % (tb.fmt(f["p50"]), tb.fmt(f["p99"])),
                        "%.1f idle, %.1f with streams, %.1f after" % (
                            st["rss_idle_kb"] / 1024.0, st["rss_streams_kb"] / 1024.0,
                            st["rss_after_kb"] / 1024.0), "`bench/streams/run.sh`"))
    sc, _ = newest("scaling")
    if sc:
        for r in sc["runs"]:
            curve = ", ".join("%d: %.0f" % (p["clients"], p["ours"]["orders_per_s"])
                              for p in r["points"])
            base = "-"
            ratio = "-"
            if r["points"] and "pgbench" in r["points"][0]:
                base = "pgbench replay of our SQL " + ", ".join("%d: %.0f" % (p["clients"],
                                                           p["pgbench"]["orders_per_s"])
                                              for p in r["points"])
                ratio = ", ".join("%.2f" % (p["ours"]["orders_per_s"] /
                                            p["pgbench"]["orders_per_s"]) for p in r["points"])
            rows.append(row("8 scaling, %s (clients: orders/s)" % r["backend"], curve, base,
                            ratio, "see section", "%.1f" % (r["rss_kb"] / 1024.0),
                            "`bench/scaling/run.sh`"))
    body = "\n".join([
        "## Summary", "",
        "Newest run of each scenario (details, all runs and exact server commands in the "
        "sections below; component benchmarks 4-6 — JWT, vault, risk — are in their own "
        "sections). Loopback only, 2-core VM shared with other work: differences under ~10% "
        "are noise.", "",
        "| scenario | ours | baseline | ratio | p50 / p99 ms | RSS MiB | command |",
        "|---|---|---|---|---|---|---|"] + rows)
    md = os.path.join(tb.ROOT, "bench", "RESULTS.md")
    text = open(md).read() if os.path.exists(md) else "# Benchmark results\n"
    begin = "<!-- summary:begin (generated by bench/run.sh) -->"
    if begin not in text:
        # the summary goes first, right after the title line and its intro
        head, sep, rest = text.partition("\n\n")
        text = head + "\n\n" + begin + "\n<!-- summary:end -->\n\n" + rest
        open(md, "w").write(text)
    tb.write_section(md, "summary", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Bytes of server RSS per idle keep-alive connection, for scripts/bench's idle scenario.

    idle-rss.py --port PORT --pid PID [--count N] [--path /hello] [--settle SECS] [--probe K]

Makes three warm-up requests, reads the RSS of PID and all its descendants (nginx's master and
workers; threads are counted once), opens N connections (from a random 127.0.0.x and up, 8000
per address; at most 100 connecting at once) that each send `GET PATH` and get their whole 200,
waits SETTLE seconds, reads the RSS again and prints

    connections: N
    rss before: BYTES
    rss after: BYTES
    bytes per connection: B

With --probe K, K new clients meanwhile (one at a time, each a fresh connection and one
`GET PATH`) and the latency of their answers:

    probe latency: p50 MS, p99 MS, max MS (K clients)

then closes them. Exit status 1 when fewer than N connections got their answer (the figure is
still printed). Reuses the connection opener of tools/torture/torture.py.
"""

import argparse
import os
import random
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(ROOT, "tools", "torture"))

import torture  # noqa: E402


def tree(pid):
    """PID and its descendants."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return pids


def rss_tree(pid):
    return sum(torture.rss(p) or 0 for p in tree(pid))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--path", default="/hello")
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--probe", type=int, default=0)
    args = ap.parse_args()
    addr = (torture.HOST, args.port)
    # Source addresses from a random 127.0.0.x on (up to 13 of them for 100,000 connections):
    # back-to-back runs do not meet their predecessors' ports in TIME_WAIT.
    torture.SOURCE_BASE = random.randrange(2, 240)
    for _ in range(3):
        torture.http_get(addr, args.path)
    time.sleep(0.3)
    before = rss_tree(args.pid)
    socks = torture.open_many(addr, args.count, torture.get_request(args.path), True,
                              torture.now() + 120)
    time.sleep(args.settle)
    after = rss_tree(args.pid)
    print(f"connections: {len(socks)}")
    print(f"rss before: {before}")
    print(f"rss after: {after}")
    print(f"bytes per connection: {(after - before) / max(len(socks), 1):.0f}")
    if args.probe:
        times = []
        for _ in range(args.probe):
            start = time.monotonic()
            status, _ = torture.http_get(addr, args.path)
            if status == 200:
                times.append((time.monotonic() - start) * 1000)
        times.sort()
        if times:
            pick = lambda q: times[min(len(times) - 1, int(q * len(times)))]  # noqa: E731
            print(f"probe latency: p50 {pick(0.5):.2f} ms, p99 {pick(0.99):.2f} ms, "
                  f"max {times[-1]:.2f} ms ({len(times)} of {args.probe} clients answered)")
        else:
            print(f"probe latency: none of {args.probe} clients answered")
    for s in socks:
        s.close()
    return 0 if len(socks) == args.count else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Server CPU time per round trip of a WebSocket echo load: less noisy than round trips per
second on a shared machine (a busy neighbour slows the rate, not the work per message).

    server-cpu.py [--rounds N] [--secs S] [-c CONNS] [-s BYTES] NAME=COMMAND ...

Each COMMAND is a server command line with {port} where its port goes (for example
`weft=target/release/weft serve --listen 127.0.0.1:{port} --workers 1 --quiet`). Per round,
each server in turn is started pinned to CPU 0, warmed up for 1 s, then driven by
target/release/ws-load (pinned to CPU 1) for S seconds on /ws/echo while its utime+stime
(/proc/PID/stat) is read before and after; it prints one line per measurement and, at the
end, per server the median and range of microseconds of server CPU per round trip.
"""

import argparse
import os
import shlex
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
WS_LOAD = os.path.join(ROOT, "target", "release", "ws-load")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ws_load(port, conns, size, secs):
    out = subprocess.run(["taskset", "-c", "1", WS_LOAD, "--url", f"ws://127.0.0.1:{port}/ws/echo",
                          "-c", str(conns), "-s", str(size), "-d", str(secs), "--timeout", "5"],
                         capture_output=True, text=True, timeout=secs + 30)
    for line in out.stdout.splitlines():
        if line.startswith("round trips:"):
            return int(line.split()[2])
    raise RuntimeError(f"ws-load: no round trips: {out.stdout} {out.stderr}")


def measure(command, args):
    port = free_port()
    argv = ["taskset", "-c", "0"] + [a.replace("{port}", str(port)) for a in shlex.split(command)]
    srv = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        ws_load(port, 16, 20, 1)
        before = cpu_seconds(srv.pid)
        trips = ws_load(port, args.c, args.s, args.secs)
        used = cpu_seconds(srv.pid) - before
        return used / max(trips, 1) * 1e6, trips
    finally:
        srv.terminate()
        srv.wait(timeout=10)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--secs", type=int, default=4)
    ap.add_argument("-c", type=int, default=50)
    ap.add_argument("-s", type=int, default=16384)
    ap.add_argument("servers", nargs="+", metavar="NAME=COMMAND")
    args = ap.parse_args()
    servers = [s.split("=", 1) for s in args.servers]
    results = {name: [] for name, _ in servers}
    for r in range(args.rounds):
        for name, command in servers:
            us, trips = measure(command, args)
            results[name].append(us)
            print(f"round {r + 1} {name}: {us:.2f} us of server CPU per round trip "
                  f"({trips} round trips in {args.secs} s)", flush=True)
    for name, values in results.items():
        print(f"{name}: median {statistics.median(values):.2f} us, "
              f"range {min(values):.2f}-{max(values):.2f} us per round trip")
    return 0


if __name__ == "__main__":
    sys.exit(main())

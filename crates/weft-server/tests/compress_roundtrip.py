#!/usr/bin/env python3
"""Round trips of weft's gzip and deflate responses through independent decoders: Python's
gzip and zlib modules (and curl --compressed when curl is installed).

usage: compress_roundtrip.py PORT SITE_DIR

Run by crates/weft-server/tests/compress_roundtrip.rs against the real weft binary serving
the conformance fixture site. Prints one line per check and `N passed, N failed`; exits 1 on
any failure.
"""
import gzip
import http.client
import os
import shutil
import socket
import subprocess
import sys
import time
import zlib

PORT = int(sys.argv[1])
SITE = sys.argv[2]
passed = 0
failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def get(path, accept=None, method="GET"):
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    headers = {} if accept is None else {"Accept-Encoding": accept}
    conn.request(method, path, headers=headers)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp, body


def decode(coding, body):
    if coding == "gzip":
        return gzip.decompress(body)
    if coding == "deflate":
        return zlib.decompress(body)  # the zlib format, with its Adler-32 check
    return body


FILES = ["lorem.txt", "compress/poem.txt", "compress/page.html", "compress/pre.txt",
         "compress/big.txt", "hello.txt", "data.json", "style.css"]

for name in FILES:
    with open(os.path.join(SITE, name), "rb") as f:
        want = f.read()
    for accept, coding in [("gzip", "gzip"), ("x-gzip", "gzip"), ("deflate", "deflate"),
                           ("identity;q=0, deflate", "deflate"), ("br", None)]:
        resp, body = get("/" + name, accept)
        got = resp.getheader("Content-Encoding")
        small = len(want) < 1024 and "identity;q=0" not in accept
        expected = None if small else coding
        label = f"{name} Accept-Encoding: {accept}"
        check(f"{label}: Content-Encoding {expected}", got == expected, f"got {got}")
        check(f"{label}: Vary", resp.getheader("Vary") == "Accept-Encoding",
              f"got {resp.getheader('Vary')}")
        try:
            check(f"{label}: decodes to the file", decode(got, body) == want)
        except Exception as e:  # a decoder error is a failed check
            check(f"{label}: decodes to the file", False, repr(e))
        head, hbody = get("/" + name, accept, "HEAD")
        check(f"{label}: HEAD has the GET's Content-Length and coding",
              head.getheader("Content-Length") == resp.getheader("Content-Length")
              and head.getheader("Content-Encoding") == got and hbody == b"")

# The sidecar is served as it is (Python's level 9 output, not weft's).
with open(os.path.join(SITE, "compress/pre.txt.gz"), "rb") as f:
    sidecar = f.read()
resp, body = get("/compress/pre.txt", "gzip")
check("pre.txt gzip is the sidecar's bytes", body == sidecar)


def read_chunked_stream(path, accept, decoder):
    """Reads a chunked response chunk by chunk; returns [(arrival, decoded text)]."""
    sock = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: {accept}\r\n"
                 "Connection: close\r\n\r\n".encode())
    start = time.monotonic()
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(65536)
    head, buf = buf.split(b"\r\n\r\n", 1)
    events = []
    while True:
        while b"\r\n" not in buf:
            more = sock.recv(65536)
            if not more:
                raise RuntimeError("stream cut")
            buf += more
        line, buf = buf.split(b"\r\n", 1)
        size = int(line.split(b";")[0], 16)
        while len(buf) < size + 2:
            more = sock.recv(65536)
            if not more:
                raise RuntimeError("stream cut")
            buf += more
        data, buf = buf[:size], buf[size + 2:]
        if size == 0:
            break
        events.append((time.monotonic() - start, decoder.decompress(data)))
    sock.close()
    return head, events, decoder.flush()


for accept, wbits in [("gzip", 16 + zlib.MAX_WBITS), ("deflate", zlib.MAX_WBITS)]:
    n, ms = 5, 300
    try:
        head, events, rest = read_chunked_stream(f"/sheep?n={n}&ms={ms}", accept,
                                                 zlib.decompressobj(wbits))
    except Exception as e:
        check(f"/sheep {accept}: streamed", False, repr(e))
        continue
    check(f"/sheep {accept}: Content-Encoding", f"Content-Encoding: {accept}".encode() in head)
    lines = [text for _, text in events if text]
    want = [f"{k} sheep\n".encode() for k in range(1, n + 1)]
    check(f"/sheep {accept}: each chunk decodes to the next whole line", lines == want,
          f"got {lines}")
    check(f"/sheep {accept}: nothing left after the end", rest == b"")
    times = [t for t, text in events if text]
    # The lines are produced (n-1)*ms apart in all: decoded as they are produced, the first
    # arrives long before the last (a server that buffered the compressed stream would deliver
    # them together). Half the span leaves room for a loaded machine's delays.
    spread = len(times) == n and times[-1] - times[0] >= (n - 1) * ms / 2000
    check(f"/sheep {accept}: lines arrive as produced ({[round(t, 2) for t in times]})", spread)

if shutil.which("curl"):
    for name in ["lorem.txt", "compress/page.html"]:
        with open(os.path.join(SITE, name), "rb") as f:
            want = f.read()
        out = subprocess.run(["curl", "-s", "--compressed", "-D", "-", "-o", "-",
                              f"http://127.0.0.1:{PORT}/{name}"], capture_output=True)
        head, _, body = out.stdout.partition(b"\r\n\r\n")
        check(f"curl --compressed {name}: gzip on the wire, decoded equal",
              out.returncode == 0 and b"Content-Encoding: gzip" in head and body == want)
else:
    print("skip curl --compressed: curl is not installed")

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)

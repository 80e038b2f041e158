"""An ASGI app for scripts/compare-servers, run by uvicorn (pinned by the script): a minimal
static file server over the fixture site (GET and HEAD, 404 for a missing file, 405 with Allow
otherwise) and a WebSocket echo on /echo. No ranges, conditionals or compression: what an
application on a bare ASGI server does. The fixture site is in WEFT_SITE."""
import os
import posixpath

ROOT = os.path.realpath(os.environ.get("WEFT_SITE", "."))
TYPES = {".txt": b"text/plain", ".html": b"text/html", ".json": b"application/json", ".css": b"text/css"}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        if scope["path"] != "/echo":
            await send({"type": "websocket.close"})
            return
        while True:
            msg = await receive()
            if msg["type"] == "websocket.connect":
                await send({"type": "websocket.accept"})
            elif msg["type"] == "websocket.receive":
                if msg.get("text") is not None:
                    await send({"type": "websocket.send", "text": msg["text"]})
                else:
                    await send({"type": "websocket.send", "bytes": msg["bytes"]})
            else:
                return
    if scope["type"] != "http":
        return
    # Drain the request content.
    more = True
    while more:
        msg = await receive()
        more = msg.get("more_body", False)
    method = scope["method"]
    if method not in ("GET", "HEAD"):
        await send({"type": "http.response.start", "status": 405,
                    "headers": [(b"allow", b"GET, HEAD"), (b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"method not allowed\n"})
        return
    p = posixpath.normpath(scope["path"])
    if scope["path"].endswith("/"):
        p = posixpath.join(p, "index.html")
    f = os.path.realpath(os.path.join(ROOT, p.lstrip("/")))
    if not f.startswith(ROOT + os.sep) or not os.path.isfile(f):
        await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"not found\n"})
        return
    with open(f, "rb") as fh:
        data = fh.read()
    ctype = TYPES.get(os.path.splitext(f)[1], b"application/octet-stream")
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else data})

"""demo_asgi: a small ASGI app with no framework, for the demo config.

etc/tutti.yaml mounts it under /asgi/ (doc/asgi.md has every key):

    - match: /asgi
      asgi: {app: "demo_asgi:app", root_path: /asgi}

With `root_path: /asgi` the app sees "/asgi" in scope["root_path"] and the
rest of the path in scope["path"], and builds its links from root_path.

    /asgi/         this page: a WebSocket echo you can type into
    /asgi/ws       the WebSocket endpoint: every message comes back
    /asgi/clock    server-sent events: the time, once a second, until you leave
    /asgi/scope    the scope tutti hands the app, as JSON

Only the standard library: the point is to show plain ASGI 3.0 (http,
websocket and lifespan scopes) on tutti's asyncio loop.
"""

import asyncio
import json
import time

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tutti: ASGI demo</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem}
#log{border:1px solid #ccc;padding:.5rem;height:12rem;overflow:auto;font-family:monospace}
input{width:70%%}</style></head>
<body>
<h1>ASGI on tutti</h1>
<p>This page is served by <code>etc/apps/demo_asgi.py</code>, an ASGI app running on the
asyncio loop inside tutti's worker. Type below: the WebSocket at
<code>%(root)s/ws</code> echoes every message.</p>
<form id="f"><input id="msg" autocomplete="off" placeholder="a message">
<button>Send</button></form>
<div id="log"></div>
<p>Also: <a href="%(root)s/clock">%(root)s/clock</a> (server-sent events) and
<a href="%(root)s/scope">%(root)s/scope</a> (the ASGI scope of your request).
Started at %(started)s (lifespan startup).</p>
<script>
const log = (t) => { const d = document.getElementById('log');
  d.textContent += t + "\\n"; d.scrollTop = d.scrollHeight; };
const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') +
                         location.host + '%(root)s/ws');
ws.onopen = () => log('connected');
ws.onmessage = (e) => log('< ' + e.data);
ws.onclose = (e) => log('closed ' + e.code);
document.getElementById('f').onsubmit = (e) => { e.preventDefault();
  const m = document.getElementById('msg'); ws.send(m.value); log('> ' + m.value); m.value = ''; };
</script>
</body></html>
"""


async def send_text(send, status, text, content_type="text/plain; charset=utf-8"):
    body = text.encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def lifespan(scope, receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            scope["state"]["started"] = time.strftime("%Y-%m-%d %H:%M:%S")
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def echo(scope, receive, send):
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif message["type"] == "websocket.receive":
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
        elif message["type"] == "websocket.disconnect":
            return


async def clock(receive, send):
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream"),
                            (b"cache-control", b"no-cache")]})
    async def disconnected():
        # the request (no body) comes first, then http.disconnect when the
        # client leaves, or when tutti stops this worker
        while (await receive())["type"] != "http.disconnect":
            pass

    gone = asyncio.ensure_future(disconnected())
    try:
        while not gone.done():
            line = "data: %s\n\n" % time.strftime("%H:%M:%S")
            await send({"type": "http.response.body", "body": line.encode(), "more_body": True})
            await asyncio.wait([gone], timeout=1)
    except OSError:
        return                                  # the client left while we wrote
    await send({"type": "http.response.body", "body": b""})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(scope, receive, send)
    root = scope["root_path"]
    path = scope["path"]
    if scope["type"] == "websocket":
        if path == "/ws":
            return await echo(scope, receive, send)
        await send({"type": "websocket.close", "code": 1008})
        return
    if path == "/":
        state = scope.get("state", {})
        page = PAGE % {"root": root, "started": state.get("started", "?")}
        return await send_text(send, 200, page, "text/html; charset=utf-8")
    if path == "/clock":
        return await clock(receive, send)
    if path == "/scope":
        shown = {k: v for k, v in scope.items() if k not in ("state",)}
        shown["headers"] = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]]
        shown["raw_path"] = scope["raw_path"].decode("latin-1")
        shown["query_string"] = scope["query_string"].decode("latin-1")
        return await send_text(send, 200, json.dumps(shown, indent=2, default=str) + "\n",
                               "application/json")
    await send_text(send, 404, "404 Not Found\n")

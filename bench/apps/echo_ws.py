"""A raw ASGI WebSocket echo for bench/run (scenario ws)."""


async def app(scope, receive, send):
    if scope["type"] != "websocket":
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", b"2")]})
            await send({"type": "http.response.body", "body": b"ok"})
        return
    while True:
        m = await receive()
        t = m["type"]
        if t == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif t == "websocket.receive":
            if m.get("text") is not None:
                await send({"type": "websocket.send", "text": m["text"]})
            else:
                await send({"type": "websocket.send", "bytes": m["bytes"]})
        else:
            return

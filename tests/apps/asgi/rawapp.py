"""A plain ASGI 3.0 app with one path per corner of the spec, for
tests/integration/test_asgi.py. It records what happens after a response
(disconnects, lifespan) in files under $ASGI_TEST_STATE."""
import asyncio
import hashlib
import json
import os
import time

STATE = os.environ.get("ASGI_TEST_STATE", "/tmp")


def record(name, text):
    with open(os.path.join(STATE, name), "a") as f:
        f.write(text + "\n")


def shown(scope):
    out = {}
    for k, v in scope.items():
        if k == "headers":
            out[k] = [[n.decode("latin-1"), val.decode("latin-1")] for n, val in v]
            out["header_types"] = sorted({type(n).__name__ + "/" + type(val).__name__
                                          for n, val in v})
        elif isinstance(v, bytes):
            out[k] = v.decode("latin-1")
            out[k + "_type"] = "bytes"
        elif isinstance(v, tuple):
            out[k] = list(v)
        else:
            out[k] = v
    return out


async def text(send, body, status=200, headers=()):
    body = body.encode() if isinstance(body, str) else body
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain")] + list(headers)})
    await send({"type": "http.response.body", "body": body})


async def read_all(receive):
    h, n, pieces = hashlib.sha256(), 0, 0
    while True:
        m = await receive()
        assert m["type"] == "http.request", m
        h.update(m["body"])
        n += len(m["body"])
        pieces += 1
        if not m.get("more_body"):
            return h.hexdigest(), n, pieces


async def lifespan(scope, receive, send):
    while True:
        m = await receive()
        if m["type"] == "lifespan.startup":
            scope["state"]["token"] = "from-lifespan"
            scope["state"]["items"] = []
            record("lifespan", "startup %d" % os.getpid())
            await send({"type": "lifespan.startup.complete"})
        elif m["type"] == "lifespan.shutdown":
            record("lifespan", "shutdown %d" % os.getpid())
            await send({"type": "lifespan.shutdown.complete"})
            return


async def websocket(scope, receive, send):
    path = scope["path"]
    m = await receive()
    assert m["type"] == "websocket.connect"
    if path == "/ws/deny":
        await send({"type": "websocket.close", "code": 1008})
        return
    if path == "/ws/http":
        await send({"type": "websocket.http.response.start", "status": 401,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "websocket.http.response.body", "body": b"no entry"})
        return
    if path == "/ws/scope":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": json.dumps(shown(scope))})
        await receive()
        return
    if path == "/ws/sub":
        subs = scope["subprotocols"]
        await send({"type": "websocket.accept", "subprotocol": subs[-1] if subs else None,
                    "headers": [(b"x-accepted", b"yes")]})
        await send({"type": "websocket.send", "text": ",".join(subs)})
        await receive()
        return
    if path == "/ws/badsub":
        await send({"type": "websocket.accept", "subprotocol": "never-offered"})
        await send({"type": "websocket.send", "text": "accepted"})
        await receive()
        return
    if path == "/ws/closeplain":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close"})     # code 1000, no reason
        m = await receive()
        record("wsdisconnect", "after-plain-close %s" % m.get("code"))
        return
    if path == "/ws/noaccept":
        return
    if path == "/ws/boom":
        await send({"type": "websocket.accept"})
        raise ValueError("websocket boom after accept")
    if path == "/ws/close4000":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4000, "reason": "done here"})
        m = await receive()
        record("wsdisconnect", "after-server-close %s" % m.get("code"))
        return
    await send({"type": "websocket.accept"})
    while True:
        m = await receive()
        if m["type"] == "websocket.disconnect":
            record("wsdisconnect", "%s %s" % (scope["query_string"].decode(), m.get("code")))
            return
        if m.get("text") is not None:
            await send({"type": "websocket.send", "text": m["text"]})
        else:
            await send({"type": "websocket.send", "bytes": m["bytes"]})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(scope, receive, send)
    if scope["type"] == "websocket":
        return await websocket(scope, receive, send)
    path = scope["path"]
    q = scope["query_string"].decode()
    if path.startswith("/scope"):
        st = scope.get("state")
        out = shown(scope)
        if st is not None:
            out["state_keys_before"] = sorted(st)
            st["items"].append(1)           # a shallow copy: shared list, own dict
            st["mine"] = True               # the next request must not see this
            out["state"] = dict(st)
        return await text(send, json.dumps(out), headers=[(b"content-type", b"application/json")])
    if path == "/echo":
        digest, n, pieces = await read_all(receive)
        return await text(send, json.dumps({"sha256": digest, "len": n, "pieces": pieces}))
    if path == "/slowread":
        h, n = hashlib.sha256(), 0
        while True:
            m = await receive()
            h.update(m["body"])
            n += len(m["body"])
            await asyncio.sleep(0.002)
            if not m.get("more_body"):
                break
        return await text(send, json.dumps({"sha256": h.hexdigest(), "len": n}))
    if path == "/stream":
        n, size = (int(x) for x in q.split(","))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(n):
            await send({"type": "http.response.body", "body": bytes([65 + i % 26]) * size,
                        "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/cl":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"10")]})
        await send({"type": "http.response.body", "body": b"01234", "more_body": True})
        await send({"type": "http.response.body", "body": b"56789"})
        return
    if path == "/pathsend":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        await send({"type": "http.response.pathsend", "path": q})
        return
    if path == "/trailers":
        await send({"type": "http.response.start", "status": 200, "headers": [],
                    "trailers": True})
        return
    if path == "/boom":
        raise ValueError("boom before start")
    if path == "/lateboom":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ValueError("boom after start")
    if path == "/noresponse":
        return
    if path == "/sse":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})

        async def watch():
            while True:
                m = await receive()
                if m["type"] == "http.disconnect":
                    record("sse", "disconnect " + q)
                    return

        watcher = asyncio.ensure_future(watch())
        try:
            for i in range(600):
                await send({"type": "http.response.body", "body": b"data: %d\n\n" % i,
                            "more_body": True})
                await asyncio.sleep(0.05)
                if watcher.done():
                    await asyncio.sleep(0.2)
        except Exception as e:
            record("sse", "send raised %s %s %s" % (type(e).__name__, isinstance(e, OSError), q))
            return
        return
    if path == "/events":
        # the usual SSE loop: stream until http.disconnect (a client that
        # left, or the worker stopping gracefully), then end the response
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        first = await receive()
        assert first["type"] == "http.request", first
        gone = asyncio.ensure_future(receive())
        for i in range(1200):
            if gone.done():
                record("events", "%s %s" % (gone.result()["type"], q))
                await send({"type": "http.response.body", "body": b"event: bye\n\n"})
                return
            await send({"type": "http.response.body", "body": b"data: %d\n\n" % i,
                        "more_body": True})
            await asyncio.sleep(0.05)
        gone.cancel()
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/uploadgone":
        # the client leaves in the middle of its upload
        n = 0
        while True:
            m = await receive()
            if m["type"] == "http.disconnect":
                record("uploadgone", "disconnect after %d %s" % (n, q))
                return
            n += len(m["body"])
            if not m.get("more_body"):
                record("uploadgone", "whole body %d %s" % (n, q))
                return await text(send, "got it all")
    if path == "/headers":
        await send({"type": "http.response.start", "status": 201,
                    "headers": [(b"x-one", b"1"), (b"set-cookie", b"a=1"),
                                (b"set-cookie", b"b=2"), (b"X-Mixed-Case", b"v")]})
        await send({"type": "http.response.body", "body": b"created"})
        return
    if path == "/badorder":
        await send({"type": "http.response.body", "body": b"no start first"})
        return
    if path == "/nap":
        await asyncio.sleep(float(q))
        return await text(send, "napped")
    if path == "/sleep":
        await asyncio.sleep(2)
        return await text(send, "slept")
    if path == "/block":
        time.sleep(2)
        return await text(send, "blocked")
    if path == "/print":
        print("hello from the app", q)
        return await text(send, "printed")
    if path == "/status":
        return await text(send, "", status=int(q))
    await text(send, "not found", status=404)

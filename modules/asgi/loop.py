# asgi — the Python half: one asyncio loop per worker on its own thread.
#
# The I/O thread (C, libevent) never runs Python while serving. What it
# has for the loop (a new request, body bytes, a WebSocket message, "the
# client left", "the client drained") waits in a queue; an eventfd
# registered with loop.add_reader wakes the loop, which takes everything
# queued at once (_tutti_asgi.take). What the app sends goes the other way
# through _tutti_asgi.push_*, which never blocks: it says whether the
# client is behind, and then send() waits for a "drained" event.
#
# This file is compiled into asgi.so; _tutti_asgi is the C side (bridge.c).

import asyncio
import collections
import sys

import _tutti_asgi as C

EV_HTTP, EV_WS, EV_BODY, EV_GONE, EV_DRAIN, EV_WS_MSG, EV_WS_CLOSE = range(7)


class ClientDisconnected(OSError):
    """send() after the client has gone (an OSError, as ASGI asks)."""


class _Conn:
    __slots__ = ("h", "scope", "events", "waiter", "send_waiter", "gone",
                 "started", "finished", "ws", "ws_state", "body_done", "more")

    def __init__(self, h, scope, ws):
        self.h = h
        self.scope = scope
        self.events = collections.deque()
        self.waiter = None          # a receive() waiting
        self.send_waiter = None     # a send() waiting for the client to drain
        self.gone = False
        self.started = False
        self.finished = False
        self.ws = ws
        self.ws_state = 0           # 0 connecting, 1 accepted, 2 closed
        self.body_done = False
        self.more = True

    def feed(self, message):
        w = self.waiter
        if w is not None:
            self.waiter = None
            if not w.done():
                w.set_result(message)
                return
        self.events.append(message)

    def wake_sender(self):
        w = self.send_waiter
        if w is not None:
            self.send_waiter = None
            if not w.done():
                w.set_result(None)


_loop = None
_conns = {}
_states = {}        # id(app) -> the state its lifespan made, copied into each scope
_lifespans = []     # (events queue, shutdown future) of each app with a lifespan


async def _wait_drain(c):
    fut = _loop.create_future()
    c.send_waiter = fut
    await fut
    if c.gone:
        raise ClientDisconnected("the client has disconnected")


# ------------------------------------------------------------------ http

async def _http_receive(c):
    if c.events:
        m = c.events.popleft()
    elif c.gone:
        return {"type": "http.disconnect"}
    else:
        fut = _loop.create_future()
        c.waiter = fut
        m = await fut
    if m["type"] == "http.request" and m["body"]:
        C.ack(c.h, len(m["body"]))
    return m


def _headers(message):
    headers = message.get("headers", ())
    out = []
    for pair in headers:
        name, value = pair
        if not isinstance(name, bytes) or not isinstance(value, bytes):
            raise TypeError("ASGI header names and values must be bytes, got %r" % (pair,))
        out.append((name, value))
    return out


async def _http_send(c, message):
    t = message["type"]
    if c.gone:
        raise ClientDisconnected("the client has disconnected")
    if t == "http.response.start":
        if c.started:
            raise RuntimeError("http.response.start sent twice")
        status = message["status"]
        if not isinstance(status, int) or not 100 <= status <= 999:
            raise ValueError("http.response.start: status must be an int from 100 to 999, got %r" % (status,))
        if message.get("trailers"):
            raise RuntimeError("http.response.start: trailers are not supported by tutti "
                               "(the scope has no http.response.trailers extension)")
        c.started = True
        C.push_start(c.h, status, _headers(message))
        return
    if t == "http.response.body":
        if not c.started:
            raise RuntimeError("http.response.body before http.response.start")
        if c.finished:
            raise RuntimeError("http.response.body after the response ended")
        body = message.get("body", b"")
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise TypeError("http.response.body: body must be bytes, got %s" % type(body).__name__)
        more = bool(message.get("more_body", False))
        if not more:
            c.finished = True
        if C.push_body(c.h, bytes(body), more):
            await _wait_drain(c)
        return
    if t == "http.response.pathsend":
        if not c.started or c.finished:
            raise RuntimeError("http.response.pathsend needs a started response without a body")
        path = message["path"]
        c.finished = True
        C.push_file(c.h, str(path))
        return
    if t == "http.response.trailers":
        raise RuntimeError("http.response.trailers: trailers are not supported by tutti")
    raise ValueError("unknown message type for an http scope: %r" % (t,))


# ------------------------------------------------------------------ websocket

async def _ws_receive(c):
    if c.events:
        m = c.events.popleft()
    elif c.gone and c.ws_state == 2:
        return {"type": "websocket.disconnect", "code": 1006}
    else:
        fut = _loop.create_future()
        c.waiter = fut
        m = await fut
    if m["type"] == "websocket.receive":
        C.ack(c.h, 1)
    return m


async def _ws_send(c, message):
    t = message["type"]
    if t == "websocket.accept":
        if c.ws_state != 0 or c.started:
            raise RuntimeError("websocket.accept after the handshake was answered")
        sub = message.get("subprotocol")
        if sub is not None and not isinstance(sub, str):
            raise TypeError("websocket.accept: subprotocol must be a str")
        c.ws_state = 1
        C.ws_accept(c.h, sub, _headers(message))
        return
    if t == "websocket.send":
        if c.ws_state != 1 or c.gone:
            raise ClientDisconnected("the WebSocket is not open")
        text = message.get("text")
        data = message.get("bytes")
        if text is not None:
            if C.ws_send(c.h, 1, text.encode("utf-8")):
                await _wait_drain(c)
        elif data is not None:
            if C.ws_send(c.h, 2, bytes(data)):
                await _wait_drain(c)
        else:
            raise ValueError("websocket.send needs 'bytes' or 'text'")
        return
    if t == "websocket.close":
        code = message.get("code", 1000)
        reason = message.get("reason") or ""
        if c.ws_state == 0 and not c.started:
            c.ws_state = 2
            C.ws_deny(c.h)      # closed before accept: 403
            c.feed({"type": "websocket.disconnect", "code": code})
            return
        if c.ws_state == 1:
            c.ws_state = 2
            C.ws_close(c.h, int(code), reason.encode("utf-8")[:123])
        return
    if t == "websocket.http.response.start":
        if c.ws_state != 0 or c.started:
            raise RuntimeError("websocket.http.response.start after the handshake was answered")
        c.ws_state = 2
        c.started = True
        C.push_start(c.h, int(message["status"]), _headers(message))
        return
    if t == "websocket.http.response.body":
        if not c.started or c.finished:
            raise RuntimeError("websocket.http.response.body without a started denial response")
        more = bool(message.get("more_body", False))
        if not more:
            c.finished = True
            c.feed({"type": "websocket.disconnect", "code": 1000})
        if C.push_body(c.h, bytes(message.get("body", b"")), more):
            await _wait_drain(c)
        return
    raise ValueError("unknown message type for a websocket scope: %r" % (t,))


# ------------------------------------------------------------------ requests

async def _run(app, c):
    send_impl = _ws_send if c.ws else _http_send
    recv_impl = _ws_receive if c.ws else _http_receive

    async def receive():
        return await recv_impl(c)

    async def send(message):
        return await send_impl(c, message)

    try:
        await app(c.scope, receive, send)
        if c.ws:
            if c.ws_state == 0 and not c.started:
                C.ws_deny(c.h)          # the app returned without accepting
            elif c.ws_state == 1:
                C.ws_close(c.h, 1000, b"")
        elif not c.finished:
            if c.started:
                C.push_abort(c.h)       # the response was never completed
            else:
                C.log_error("ASGI app %r returned without starting a response for %s %s"
                            % (C.app_name(c.h), c.scope.get("method"), c.scope.get("path")))
                C.push_fail(c.h)
    except BaseException as e:
        if isinstance(e, ClientDisconnected) or (c.gone and isinstance(e, OSError)):
            pass                        # the client left: nothing to tell anyone
        else:
            C.log_exception("ASGI app %r failed for %s %s" % (
                C.app_name(c.h), c.scope.get("method", "WEBSOCKET"), c.scope.get("path")), e)
            if c.ws and c.ws_state == 1:
                C.ws_close(c.h, 1011, b"")
            elif c.started:
                C.push_abort(c.h)
            else:
                C.push_fail(c.h)
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            pass                        # the worker decides when it stops
    finally:
        _conns.pop(c.h, None)
        C.done(c.h)


def _dispatch():
    for ev in C.take():
        kind = ev[0]
        if kind == EV_HTTP or kind == EV_WS:
            h, app, scope = ev[1], ev[2], ev[3]
            state = _states.get(id(app))
            if state is not None:
                scope["state"] = dict(state)
            c = _Conn(h, scope, kind == EV_WS)
            _conns[h] = c
            if kind == EV_WS:
                c.events.append({"type": "websocket.connect"})
            elif not ev[4]:
                # no body: the whole request is here already
                c.events.append({"type": "http.request", "body": b"", "more_body": False})
            _loop.create_task(_run(app, c))
            continue
        c = _conns.get(ev[1])
        if c is None:
            continue
        if kind == EV_BODY:
            c.feed({"type": "http.request", "body": ev[2], "more_body": ev[3]})
        elif kind == EV_GONE:
            c.gone = True
            if c.ws:
                if c.ws_state != 2:
                    c.ws_state = 2
                    c.feed({"type": "websocket.disconnect", "code": 1006})
            else:
                c.feed({"type": "http.disconnect"})
            c.wake_sender()
        elif kind == EV_DRAIN:
            c.wake_sender()
        elif kind == EV_WS_MSG:
            if ev[2] == 1:
                c.feed({"type": "websocket.receive", "text": ev[3]})
            else:
                c.feed({"type": "websocket.receive", "bytes": ev[3]})
        elif kind == EV_WS_CLOSE:
            c.ws_state = 2
            c.gone = True
            c.feed({"type": "websocket.disconnect", "code": ev[2], "reason": ev[3]})
            c.wake_sender()


# ------------------------------------------------------------------ lifespan

async def _lifespan(app, mode, spec):
    """One app's lifespan scope: startup now, shutdown at the end.
    Returns None once started, or why it failed."""
    state = {}
    events = asyncio.Queue()
    events.put_nowait({"type": "lifespan.startup"})
    outcome = {}
    done_startup = _loop.create_future()
    done_shutdown = _loop.create_future()

    async def receive():
        return await events.get()

    async def send(message):
        t = message["type"]
        if t == "lifespan.startup.complete":
            if not done_startup.done():
                done_startup.set_result(None)
        elif t == "lifespan.startup.failed":
            outcome["failed"] = message.get("message", "") or "lifespan.startup.failed"
            if not done_startup.done():
                done_startup.set_result(None)
        elif t == "lifespan.shutdown.complete":
            if not done_shutdown.done():
                done_shutdown.set_result(None)
        elif t == "lifespan.shutdown.failed":
            C.log_error("ASGI app %r: lifespan shutdown failed: %s"
                        % (spec, message.get("message", "")))
            if not done_shutdown.done():
                done_shutdown.set_result(None)
        else:
            raise ValueError("unknown lifespan message %r" % (t,))

    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.4"},
             "state": state}

    async def main():
        try:
            await app(scope, receive, send)
        except BaseException as e:
            if not done_startup.done():
                if mode == "auto":
                    C.log_info("ASGI app %r does not support lifespan (%s: %s); going on "
                               "without it" % (spec, type(e).__name__, e))
                    outcome["unsupported"] = True
                else:
                    outcome["failed"] = "%s: %s" % (type(e).__name__, e)
                    C.log_exception("ASGI app %r: lifespan startup failed" % (spec,), e)
                done_startup.set_result(None)
            else:
                C.log_exception("ASGI app %r: lifespan failed" % (spec,), e)
        finally:
            if not done_startup.done():
                if mode == "auto":
                    outcome["unsupported"] = True
                else:
                    outcome["failed"] = "the app returned before lifespan.startup.complete"
                done_startup.set_result(None)
            if not done_shutdown.done():
                done_shutdown.set_result(None)

    _loop.create_task(main())
    await done_startup
    if "failed" in outcome:
        return outcome["failed"]
    if not outcome.get("unsupported"):
        _states[id(app)] = state
        _lifespans.append((events, done_shutdown))
    return None


async def _startup(apps, started):
    for app, mode, spec in apps:
        if mode == "off":
            continue
        why = await _lifespan(app, mode, spec)
        if why is not None:
            started(why)
            return
    started(None)


async def _shutdown():
    for events, done in _lifespans:
        if not done.done():
            events.put_nowait({"type": "lifespan.shutdown"})
    for events, done in _lifespans:
        try:
            await asyncio.wait_for(asyncio.shield(done), 10)
        except asyncio.TimeoutError:
            C.log_error("ASGI lifespan shutdown did not complete in 10 s")


def stop():
    """From the I/O thread at worker exit: lifespan shutdown, then the loop stops."""
    fut = asyncio.run_coroutine_threadsafe(_shutdown(), _loop)
    try:
        fut.result(12)
    except BaseException:
        pass
    _loop.call_soon_threadsafe(_loop.stop)


def run(apps, use_uvloop, started):
    """The loop thread's body: set up, run the lifespan startups, serve."""
    global _loop
    loop = None
    if use_uvloop:
        try:
            import uvloop
            loop = uvloop.new_event_loop()
        except ImportError:
            loop = None
    if loop is None:
        loop = asyncio.new_event_loop()
    _loop = loop
    asyncio.set_event_loop(loop)
    loop.add_reader(C.fd(), _dispatch)
    loop.create_task(_startup(apps, started))
    try:
        loop.run_forever()
    finally:
        try:
            loop.remove_reader(C.fd())
        except Exception:
            pass

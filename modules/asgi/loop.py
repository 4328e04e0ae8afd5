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

import _tutti_asgi as C

EV_HTTP, EV_WS, EV_BODY, EV_GONE, EV_DRAIN, EV_WS_MSG, EV_WS_CLOSE, EV_STOP = range(8)


class ClientDisconnected(OSError):
    """send() after the client has gone (an OSError, as ASGI asks)."""


class _Conn:
    """One request or WebSocket session, as the app's receive and send see it."""

    __slots__ = ("h", "scope", "events", "waiter", "send_waiter", "gone",
                 "started", "finished", "ws", "ws_state", "head", "ctx")

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
        self.head = None            # http.response.start, held for the first body

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

    async def _wait_drain(self):
        fut = _loop.create_future()
        self.send_waiter = fut
        await fut
        if self.gone:
            raise ClientDisconnected("the client has disconnected")

    async def _next(self):
        fut = _loop.create_future()
        self.waiter = fut
        return await fut

    # -------------------------------------------------------------- receive

    async def receive(self):
        if self.ws:
            return await self._ws_receive()
        if self.events:
            m = self.events.popleft()
        elif self.gone:
            return {"type": "http.disconnect"}
        else:
            m = await self._next()
        if m["type"] == "http.request" and m["body"]:
            C.ack(self.h, len(m["body"]))
        return m

    async def _ws_receive(self):
        if self.events:
            m = self.events.popleft()
        elif self.gone and self.ws_state == 2:
            return {"type": "websocket.disconnect", "code": 1006}
        else:
            m = await self._next()
        if m["type"] == "websocket.receive":
            C.ack(self.h, 1)
        return m

    # -------------------------------------------------------------- send

    async def send(self, message):
        if self.ws:
            return await self._ws_send(message)
        t = message["type"]
        if self.gone:
            raise ClientDisconnected("the client has disconnected")
        if t == "http.response.body":
            if self.finished:
                raise RuntimeError("http.response.body after the response ended")
            head = self.head
            if head is None:
                raise RuntimeError("http.response.body before http.response.start")
            body = message.get("body", b"")
            if type(body) is not bytes:
                if not isinstance(body, (bytearray, memoryview)):
                    raise TypeError("http.response.body: body must be bytes, got %s"
                                    % type(body).__name__)
                body = bytes(body)
            more = bool(message.get("more_body", False))
            if not more:
                self.finished = True
            if head is not True:
                # the head and the first body leave together
                self.head = True
                wait = C.push_start(self.h, head[0], head[1], body, more)
            else:
                wait = C.push_body(self.h, body, more)
            if wait:
                await self._wait_drain()
            return
        if t == "http.response.start":
            if self.head is not None:
                raise RuntimeError("http.response.start sent twice")
            status = message["status"]
            if type(status) is not int or not 100 <= status <= 999:
                raise ValueError("http.response.start: status must be an int from 100 to "
                                 "999, got %r" % (status,))
            if message.get("trailers"):
                raise RuntimeError("http.response.start: trailers are not supported by "
                                   "tutti (the scope has no http.response.trailers extension)")
            self.started = True
            self.head = (status, message.get("headers", ()))
            return
        if t == "http.response.pathsend":
            head = self.head
            if head is None or head is True or self.finished:
                raise RuntimeError("http.response.pathsend needs a started response "
                                   "without a body")
            self.head = True
            self.finished = True
            C.push_start(self.h, head[0], head[1], b"", True)
            C.push_file(self.h, str(message["path"]))
            return
        if t == "http.response.trailers":
            raise RuntimeError("http.response.trailers: trailers are not supported by tutti")
        raise ValueError("unknown message type for an http scope: %r" % (t,))

    async def _ws_send(self, message):
        t = message["type"]
        if t == "websocket.send":
            if self.ws_state != 1 or self.gone:
                raise ClientDisconnected("the WebSocket is not open")
            text = message.get("text")
            if text is not None:
                wait = C.ws_send(self.h, 1, text.encode("utf-8"))
            else:
                data = message.get("bytes")
                if data is None:
                    raise ValueError("websocket.send needs 'bytes' or 'text'")
                wait = C.ws_send(self.h, 2, bytes(data))
            if wait:
                await self._wait_drain()
            return
        if t == "websocket.accept":
            if self.ws_state != 0 or self.started:
                raise RuntimeError("websocket.accept after the handshake was answered")
            sub = message.get("subprotocol")
            if sub is not None and not isinstance(sub, str):
                raise TypeError("websocket.accept: subprotocol must be a str")
            self.ws_state = 1
            C.ws_accept(self.h, sub, message.get("headers", ()))
            return
        if t == "websocket.close":
            code = message.get("code", 1000)
            reason = message.get("reason") or ""
            if self.ws_state == 0 and not self.started:
                self.ws_state = 2
                C.ws_deny(self.h)       # closed before accept: 403
                self.feed({"type": "websocket.disconnect", "code": code})
                return
            if self.ws_state == 1:
                self.ws_state = 2
                C.ws_close(self.h, int(code), reason.encode("utf-8")[:123])
            return
        if t == "websocket.http.response.start":
            if self.ws_state != 0 or self.started:
                raise RuntimeError("websocket.http.response.start after the handshake "
                                   "was answered")
            self.ws_state = 2
            self.started = True
            self.head = (int(message["status"]), message.get("headers", ()))
            return
        if t == "websocket.http.response.body":
            head = self.head
            if head is None or self.finished:
                raise RuntimeError("websocket.http.response.body without a started "
                                   "denial response")
            more = bool(message.get("more_body", False))
            body = bytes(message.get("body", b""))
            if not more:
                self.finished = True
                self.feed({"type": "websocket.disconnect", "code": 1000})
            if head is not True:
                self.head = True
                wait = C.push_start(self.h, head[0], head[1], body, more)
            else:
                wait = C.push_body(self.h, body, more)
            if wait:
                await self._wait_drain()
            return
        raise ValueError("unknown message type for a websocket scope: %r" % (t,))


_loop = None
_conns = {}
_states = {}        # id(app) -> the state its lifespan made, copied into each scope
_lifespans = []     # (events queue, shutdown future) of each app with a lifespan


# ------------------------------------------------------------------ requests

def _finish(c, err):
    """The app's call ended (err: what it raised, or None)."""
    _conns.pop(c.h, None)
    if err is None:
        if c.ws:
            if c.ws_state == 0 and not c.started:
                C.ws_deny(c.h)          # the app returned without accepting
            elif c.ws_state == 1:
                C.ws_close(c.h, 1000, b"")
            elif c.started and not c.finished:
                C.push_abort(c.h)
        elif not c.finished:
            if c.started:
                C.push_abort(c.h)       # the response was never completed
            else:
                C.log_error("ASGI app %r returned without starting a response for %s %s"
                            % (C.app_name(c.h), c.scope.get("method"), c.scope.get("path")))
                C.push_fail(c.h)
    elif isinstance(err, ClientDisconnected) or (c.gone and isinstance(err, OSError)):
        pass                            # the client left: nothing to tell anyone
    else:
        C.log_exception("ASGI app %r failed for %s %s" % (
            C.app_name(c.h), c.scope.get("method", "WEBSOCKET"), c.scope.get("path")), err)
        if c.ws and c.ws_state == 1:
            C.ws_close(c.h, 1011, b"")
        elif c.head is True or (c.started and c.ws):
            C.push_abort(c.h)           # after the response began: cut it
        else:
            C.push_fail(c.h)            # nothing sent yet: 500
    C.done(c.h)


async def _run(app, c):
    """The app's call, as a task of its own (so current_task(), and with it
    anyio and sniffio, work from its first line)."""
    err = None
    try:
        await app(c.scope, c.receive, c.send)
    except BaseException as e:
        err = e
    _finish(c, err)


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
        elif kind == EV_STOP:
            # the worker stops: a stream should end (its client reconnects
            # elsewhere); sending still works until it does
            c.feed({"type": "http.disconnect"})
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

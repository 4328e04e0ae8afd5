"""The `websocket` module (RFC 6455, RFC 7692) through the real daemon.

The endpoint is tests/modules/wsecho.c, a C echo module on the websocket
API, so these tests see the protocol with no Python app in between (the
asgi tests cover WebSocket through ASGI). Raw sockets check the handshake,
every protocol error and its close code; the `websockets` client checks
what a real client gets. Commands of wsecho: "close CODE REASON", "big N",
"pause MS"; it chooses the subprotocol "chat" when offered, and a plain GET
answers "wsecho\\n".

A few daemons are shared by the tests of this file, one per set of
`websocket:` settings; only the graceful stop starts one of its own."""
import asyncio
import base64
import hashlib
import os
import shutil
import signal
import socket
import struct
import time
import zlib
from pathlib import Path

import pytest
import requests
import websockets
from websockets.extensions.permessage_deflate import PerMessageDeflate

import harness
from harness import (SANITIZED, SLOW, assert_same_workers, broken_module, config_error_line,
                     rss_kb, run_tutti, wait_for)

T = 5 * SLOW                    # every socket read of this file is bounded by it
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
KEY = "dGhlIHNhbXBsZSBub25jZQ=="            # RFC 6455 section 1.3
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
RSV1, RSV2, RSV3 = 4, 2, 1      # as the rsv argument of frame()


# ---------------------------------------------------------------- daemons

def module_dir(tmp):
    """The installed modules plus wsecho.so (built, not installed), in a
    directory of our own."""
    d = Path(tmp) / "mods"
    d.mkdir(parents=True, exist_ok=True)
    installed = Path(harness.TUTTI_BIN).resolve().parents[1] / "lib" / "tutti" / "modules"
    sos = list(installed.glob("*.so"))
    assert any(so.name == "websocket.so" for so in sos), f"no websocket.so in {installed}"
    for so in sos:
        shutil.copy(so, d / so.name)
    src = broken_module("wsecho")
    assert src.exists(), f"test module {src} not built"
    shutil.copy(src, d / "wsecho.so")
    return d


def config(mods, top=None, **ws):
    section = {"max_message": "64KB", "idle_timeout": "120s", "ping_interval": "30s",
               "compression": True}
    section.update(ws)
    cfg = {"module_path": str(mods), "modules": ["websocket", "wsecho"], "workers": 1,
           "error_log": "error.log", "websocket": section,
           "servers": [{"routes": [{"match": "/ws", "wsecho": {}}]}]}
    cfg.update(top or {})
    return cfg


@pytest.fixture(scope="module")
def mods(tmp_path_factory):
    return module_dir(tmp_path_factory.mktemp("wsmods"))


@pytest.fixture(scope="module")
def start_shared(shared_daemon, mods):
    def start(**ws):
        d = shared_daemon(config(mods, **ws))
        d.first_workers = d.worker_pids()
        assert len(d.first_workers) == 1, d.first_workers
        return d
    return start


@pytest.fixture(scope="module")
def echo(start_shared):
    """max_message 64KB, compression on, timers far away."""
    return start_shared()


@pytest.fixture(scope="module")
def big(start_shared):
    return start_shared(max_message="2MB")


@pytest.fixture(scope="module")
def nocomp(start_shared):
    return start_shared(compression=False)


@pytest.fixture(scope="module")
def idle(start_shared):
    return start_shared(idle_timeout="1s", ping_interval=0)


@pytest.fixture(scope="module")
def pinger(start_shared):
    return start_shared(idle_timeout=0, ping_interval="300ms")


# ---------------------------------------------------------------- a raw client

def handshake(port, extra="", key=KEY, version="13", connection="Upgrade",
              upgrade="websocket", method="GET", proto="HTTP/1.1", tail=b""):
    """Send an opening handshake (and tail, in the same write); return the
    socket, the status, the response headers (lower-case names) and the
    bytes read past the head."""
    s = socket.create_connection(("127.0.0.1", port), timeout=T)
    req = f"{method} /ws {proto}\r\nHost: x\r\n"
    if upgrade is not None:
        req += f"Upgrade: {upgrade}\r\n"
    if connection is not None:
        req += f"Connection: {connection}\r\n"
    if key is not None:
        req += f"Sec-WebSocket-Key: {key}\r\n"
    if version is not None:
        req += f"Sec-WebSocket-Version: {version}\r\n"
    s.sendall((req + extra + "\r\n").encode() + tail)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk, f"connection closed before a response head; got {head!r}"
        head += chunk
    head, _, rest = head.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return s, status, headers, rest


def frame(opcode, payload=b"", fin=True, mask=True, rsv=0, length=None):
    """One client frame; length overrides the announced payload length."""
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload) if length is None else length
    m = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, m | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def close_frame(code, reason=b""):
    return frame(OP_CLOSE, struct.pack("!H", code) + reason)


def deflate(data):
    """A permessage-deflate payload: raw deflate, the 00 00 ff ff tail cut."""
    z = zlib.compressobj(wbits=-15)
    out = z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def inflate(payload):
    return zlib.decompressobj(wbits=-15).decompress(payload + b"\x00\x00\xff\xff")


class Reader:
    """Server frames from a socket: (opcode, fin, rsv, payload)."""

    def __init__(self, s, rest=b""):
        self.s, self.buf = s, rest

    def need(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise EOFError(f"connection closed with {len(self.buf)} of {n} bytes read")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def frame(self):
        b0, b1 = self.need(2)
        n = b1 & 0x7f
        if n == 126:
            n = struct.unpack("!H", self.need(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.need(8))[0]
        assert not b1 & 0x80, "a server must not mask its frames (RFC 6455 5.1)"
        return b0 & 0x0f, bool(b0 & 0x80), (b0 >> 4) & 7, self.need(n)

    def eof(self):
        """True once the server closed the TCP connection (within T), with
        nothing more sent before."""
        extra = b""
        try:
            while True:
                chunk = self.s.recv(4096)
                if not chunk:
                    break
                extra += chunk
        except ConnectionResetError:
            pass
        assert self.buf + extra == b"", f"bytes after the close frame: {(self.buf + extra)!r}"
        return True


def session(d, **kw):
    s, status, headers, rest = handshake(d.port, **kw)
    assert status == 101, (status, headers)
    return s, Reader(s, rest)


def expect_close(r, code):
    """The next frame (pings of the server's timer aside) is a close with
    code, then the server closes the TCP connection. Returns the reason."""
    op, fin, rsv, payload = r.frame()
    while op == OP_PING:
        op, fin, rsv, payload = r.frame()
    assert (op, fin, rsv) == (OP_CLOSE, True, 0), (op, fin, rsv, payload)
    assert len(payload) >= 2, f"a close frame without a code: {payload!r}"
    got = struct.unpack("!H", payload[:2])[0]
    assert got == code, f"close code {got} (reason {payload[2:]!r}), expected {code}"
    assert r.eof()
    return payload[2:]


# ---------------------------------------------------------------- the opening handshake

def test_handshake_accept_key_and_headers(echo):
    s, status, h, _ = handshake(echo.port)
    s.close()
    assert status == 101
    assert h["upgrade"].lower() == "websocket"
    assert h["connection"].lower() == "upgrade"
    assert h["sec-websocket-accept"] == ACCEPT


def test_accept_key_of_another_key(echo):
    key = base64.b64encode(os.urandom(16)).decode()
    s, status, h, _ = handshake(echo.port, key=key)
    s.close()
    want = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
    assert (status, h.get("sec-websocket-accept")) == (101, want)


@pytest.mark.parametrize("connection,upgrade", [
    ("keep-alive, Upgrade", "websocket"),
    ("Upgrade, keep-alive", "websocket"),
    ("upgrade", "WebSocket"),
])
def test_upgrade_tokens_are_found_in_lists_and_any_case(echo, connection, upgrade):
    s, status, h, _ = handshake(echo.port, connection=connection, upgrade=upgrade)
    s.close()
    assert (status, h.get("sec-websocket-accept")) == (101, ACCEPT)


def test_subprotocol_chosen_from_the_offer(echo):
    s, status, h, _ = handshake(echo.port, extra="Sec-WebSocket-Protocol: superchat, chat\r\n")
    s.close()
    assert (status, h.get("sec-websocket-protocol")) == (101, "chat")


@pytest.mark.parametrize("extra", ["", "Sec-WebSocket-Protocol: superchat\r\n"],
                         ids=["none-offered", "other-offered"])
def test_no_subprotocol_unless_chat_is_offered(echo, extra):
    s, status, h, _ = handshake(echo.port, extra=extra)
    s.close()
    assert status == 101 and "sec-websocket-protocol" not in h, h


@pytest.mark.parametrize("kw,status", [
    ({"version": "8"}, 426),
    ({"version": None}, 426),
    ({"key": "short"}, 400),
    ({"key": "dGhlIHNhbXBsZSBub25jZQ"}, 400),             # 22 characters, no padding
    ({"key": "dGhlIHNhbXBsZSBub25jZQ==AAAA"}, 400),       # 20 bytes
    ({"key": None}, 400),
    ({"connection": "keep-alive"}, 400),
    ({"connection": None}, 400),
    ({"method": "POST"}, 400),
    ({"proto": "HTTP/1.0"}, 400),
], ids=["version-8", "no-version", "short-key", "key-22", "key-20-bytes", "no-key",
        "connection-keep-alive", "no-connection", "post", "http10"])
def test_bad_handshakes_are_refused(echo, kw, status):
    s, got, h, _ = handshake(echo.port, **kw)
    s.close()
    assert got == status, (kw, got, h)
    assert "sec-websocket-accept" not in h
    if status == 426:
        assert h.get("sec-websocket-version") == "13", h


def test_plain_get_is_a_plain_request(echo):
    r = requests.get(echo.url + "/ws", timeout=T)
    assert (r.status_code, r.text) == (200, "wsecho\n")


def test_frames_sent_with_the_handshake_are_read(echo):
    s, status, _, rest = handshake(echo.port,
                                   tail=frame(OP_TEXT, b"early") + frame(OP_BINARY, b"bird"))
    assert status == 101
    r = Reader(s, rest)
    assert r.frame() == (OP_TEXT, True, 0, b"early")
    assert r.frame() == (OP_BINARY, True, 0, b"bird")
    s.close()


# ---------------------------------------------------------------- raw frames

@pytest.mark.parametrize("n", [0, 1, 125, 126, 65535, 65536])
def test_echo_sizes(echo, n):
    s, r = session(echo)
    data = os.urandom(n)
    s.sendall(frame(OP_BINARY, data))
    assert r.frame() == (OP_BINARY, True, 0, data)
    s.sendall(frame(OP_TEXT, b"a" * n))
    op, fin, rsv, payload = r.frame()
    # wsecho echoes as the module delivers; compression was not offered
    assert (op, fin, rsv, payload) == (OP_TEXT, True, 0, b"a" * n)
    s.close()


def test_fragments_with_a_ping_between(echo):
    s, r = session(echo)
    s.sendall(frame(OP_TEXT, b"one ", fin=False) + frame(OP_CONT, b"two ", fin=False) +
              frame(OP_PING, b"are you there") + frame(OP_CONT, b"three"))
    assert r.frame() == (OP_PONG, True, 0, b"are you there")
    assert r.frame() == (OP_TEXT, True, 0, b"one two three")
    s.close()


def test_fragments_one_write_each(echo):
    s, r = session(echo)
    for f in (frame(OP_BINARY, b"\x00" * 300, fin=False), frame(OP_CONT, b"", fin=False),
              frame(OP_CONT, b"\x01" * 60000)):
        s.sendall(f)
        time.sleep(0.01)
    assert r.frame() == (OP_BINARY, True, 0, b"\x00" * 300 + b"\x01" * 60000)
    s.close()


def test_utf8_split_across_fragments_is_fine(echo):
    s, r = session(echo)
    text = "héllo €".encode()
    s.sendall(frame(OP_TEXT, text[:2], fin=False) + frame(OP_CONT, text[2:8], fin=False) +
              frame(OP_CONT, text[8:]))
    assert r.frame() == (OP_TEXT, True, 0, text)
    s.close()


ERRORS = [
    ("unmasked", [frame(OP_TEXT, b"x", mask=False)], 1002),
    ("rsv2", [frame(OP_TEXT, b"x", rsv=RSV2)], 1002),
    ("rsv3", [frame(OP_TEXT, b"x", rsv=RSV3)], 1002),
    ("rsv1-no-deflate", [frame(OP_TEXT, b"x", rsv=RSV1)], 1002),
    ("opcode-3", [frame(0x3, b"x")], 1002),
    ("opcode-0xB", [frame(0xB, b"x")], 1002),
    ("ping-126", [frame(OP_PING, b"p" * 126)], 1002),
    ("ping-fragmented", [frame(OP_PING, b"p", fin=False)], 1002),
    ("continuation-alone", [frame(OP_CONT, b"x")], 1002),
    ("text-inside-fragmented", [frame(OP_TEXT, b"a", fin=False), frame(OP_TEXT, b"b")], 1002),
    ("utf8-invalid", [frame(OP_TEXT, b"ok \xff")], 1007),
    ("utf8-invalid-across-fragments",
     [frame(OP_TEXT, b"\xe2\x82", fin=False), frame(OP_CONT, b"(")], 1007),
    ("utf8-truncated-at-end", [frame(OP_TEXT, b"abc" + "€".encode()[:2])], 1007),
    ("utf8-truncated-at-end-of-fragments",
     [frame(OP_TEXT, b"abc", fin=False), frame(OP_CONT, "€".encode()[:2])], 1007),
    ("close-1-byte", [frame(OP_CLOSE, b"\x03")], 1002),
    ("close-reason-not-utf8", [close_frame(1000, b"\xff")], 1007),
    ("length-126-for-10", [b"\x81\xfe\x00\x0a" + b"\x00" * 4 + b"x" * 10], 1002),
    ("length-127-for-200", [b"\x82\xff" + struct.pack("!Q", 200) + b"\x00" * 4 +
                            b"x" * 200], 1002),
]


@pytest.mark.parametrize("frames,code", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_protocol_errors_close_with_the_code(echo, frames, code):
    s, r = session(echo)
    s.sendall(b"".join(frames))
    expect_close(r, code)
    s.close()


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1016, 2999, 5000, 65535])
def test_invalid_close_codes_are_1002(echo, code):
    s, r = session(echo)
    s.sendall(close_frame(code))
    expect_close(r, 1002)
    s.close()


@pytest.mark.parametrize("code,reason", [(1000, b"bye"), (4001, b""), (1001, b""),
                                         (3000, "€".encode())])
def test_client_close_is_echoed_with_its_code(echo, code, reason):
    s, r = session(echo)
    s.sendall(close_frame(code, reason))
    expect_close(r, code)
    s.close()
    wait_for(lambda: f"wsecho: closed {code} {reason.decode()}" in echo.error_log_text(), T,
             f"'wsecho: closed {code}' in the error log")


def test_close_without_a_code_is_answered(echo):
    s, r = session(echo)
    s.sendall(frame(OP_CLOSE))
    op, _, _, payload = r.frame()
    # RFC 6455 5.5.1: answer with a close frame; the body, if any, a valid code
    assert op == OP_CLOSE and payload[:2] in (b"", struct.pack("!H", 1000)), (op, payload)
    assert r.eof()
    s.close()


def test_too_big_is_1009_before_the_payload(echo):
    """The announced length decides, before the message is read: the
    header and its first byte bring the 1009 (wslay's frame parser reports
    a frame with its first payload byte), the other 99999 are never sent."""
    s, r = session(echo)
    head = frame(OP_BINARY, b"", length=100000)
    assert len(head) == 14              # 2 + 8 (length) + 4 (mask key), no payload
    s.sendall(head + b"x")
    expect_close(r, 1009)
    s.close()


def test_too_big_across_fragments_is_1009(echo):
    s, r = session(echo)
    s.sendall(frame(OP_BINARY, b"x" * 40000, fin=False))
    # 40000 + 40000 > 64KB: the second frame's header and a first few bytes
    s.sendall(frame(OP_CONT, b"", fin=False, length=40000) + b"y" * 100)
    expect_close(r, 1009)
    s.close()


def test_compressed_message_that_inflates_too_big_is_1009(echo):
    s, r = session(echo, extra="Sec-WebSocket-Extensions: permessage-deflate\r\n")
    data = deflate(b"\0" * 200000)
    assert len(data) < 64 * 1024        # small on the wire, 200 KB inflated
    s.sendall(frame(OP_BINARY, data, rsv=RSV1))
    expect_close(r, 1009)
    s.close()


def test_compressed_message_both_ways(echo):
    s, status, h, rest = handshake(echo.port,
                                   extra="Sec-WebSocket-Extensions: permessage-deflate\r\n")
    assert status == 101 and h["sec-websocket-extensions"].startswith("permessage-deflate"), h
    # the server's own window is capped (memory per connection), and says so
    assert "server_max_window_bits=12" in h["sec-websocket-extensions"]
    r = Reader(s, rest)
    text = ("tutti " * 2000).encode()
    s.sendall(frame(OP_TEXT, deflate(text), rsv=RSV1))
    op, fin, rsv, payload = r.frame()
    assert (op, fin, rsv) == (OP_TEXT, True, RSV1), "the echo comes back compressed"
    assert inflate(payload) == text
    # a small uncompressed message in the same session is fine too
    s.sendall(frame(OP_TEXT, b"plain"))
    assert r.frame() == (OP_TEXT, True, 0, b"plain")
    s.close()


def test_deflate_without_context_takeover(echo):
    """server_no_context_takeover: every message the server sends inflates on
    its own; client_no_context_takeover: the client compresses each message
    afresh."""
    s, status, h, rest = handshake(echo.port, extra=(
        "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; "
        "server_no_context_takeover\r\n"))
    ext = h.get("sec-websocket-extensions", "")
    assert status == 101 and "server_no_context_takeover" in ext and \
        "client_no_context_takeover" in ext, ext
    r = Reader(s, rest)
    text = ("no takeover " * 500).encode()
    for _ in range(3):
        s.sendall(frame(OP_TEXT, deflate(text), rsv=RSV1))
        op, fin, rsv, payload = r.frame()
        assert (op, rsv) == (OP_TEXT, RSV1)
        assert inflate(payload) == text
    s.close()


def test_server_initiated_close(echo):
    s, r = session(echo)
    s.sendall(frame(OP_TEXT, b"close 4002 enough"))
    op, _, _, payload = r.frame()
    assert (op, struct.unpack("!H", payload[:2])[0], payload[2:]) == (OP_CLOSE, 4002, b"enough")
    s.sendall(frame(OP_CLOSE, payload[:2]))
    assert r.eof()
    s.close()


# ---------------------------------------------------------------- the websockets client

def ws_url(d):
    return f"ws://127.0.0.1:{d.port}/ws"


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout * SLOW))


def test_client_echo_text_binary_and_big(echo):
    async def go():
        async with websockets.connect(ws_url(echo), open_timeout=T, close_timeout=T) as ws:
            await ws.send("hello ✓")
            assert await ws.recv() == "hello ✓"
            await ws.send(b"\x00\x01\x02")
            assert await ws.recv() == b"\x00\x01\x02"
            await ws.send("big 300000")
            got = await ws.recv()
            assert got == b"x" * 300000, (type(got), len(got))
    run(go())


@pytest.mark.parametrize("offer,chosen", [(["superchat", "chat"], "chat"),
                                          (["superchat"], None), (None, None)])
def test_client_subprotocols(echo, offer, chosen):
    async def go():
        async with websockets.connect(ws_url(echo), subprotocols=offer, open_timeout=T,
                                      close_timeout=T) as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
            return ws.subprotocol
    assert run(go()) == chosen


def test_client_sees_server_close_code(echo):
    async def go():
        async with websockets.connect(ws_url(echo), open_timeout=T, close_timeout=T) as ws:
            await ws.send("close 4001 bye")
            with pytest.raises(websockets.ConnectionClosed) as e:
                await ws.recv()
            return e.value
    e = run(go())
    assert (e.code, e.reason) == (4001, "bye")


def test_hundred_concurrent_connections(echo):
    async def one(i):
        async with websockets.connect(ws_url(echo), open_timeout=30 * SLOW,
                                      close_timeout=T) as ws:
            for k in range(20):
                msg = f"{i}:{k}" + "." * (k * 50)
                await ws.send(msg)
                assert await ws.recv() == msg
        return i

    async def go():
        return await asyncio.gather(*(one(i) for i in range(100)))
    assert run(go(), timeout=90) == list(range(100))


def test_compression_negotiated_by_default(big):
    text = "".join(f"line {i} of a compressible message\n" for i in range(3000))
    assert len(text) > 100 * 1000

    async def go():
        async with websockets.connect(ws_url(big), open_timeout=T, close_timeout=T) as ws:
            ext = ws.response_headers.get("Sec-WebSocket-Extensions", "")
            await ws.send(text)
            return ext, ws.extensions, await ws.recv()
    ext, exts, got = run(go())
    assert ext.startswith("permessage-deflate"), ext
    assert any(isinstance(e, PerMessageDeflate) for e in exts), exts
    assert got == text


def test_megabyte_both_ways(big):
    data = os.urandom(1024 * 1024)

    async def go():
        async with websockets.connect(ws_url(big), max_size=4 * 1024 * 1024,
                                      open_timeout=T, close_timeout=T) as ws:
            await ws.send(data)
            assert await ws.recv() == data
            await ws.send("big 1500000")
            assert await ws.recv() == b"x" * 1500000
    run(go())


def test_compression_off_raw(nocomp):
    s, status, h, rest = handshake(nocomp.port,
                                   extra="Sec-WebSocket-Extensions: permessage-deflate\r\n")
    assert status == 101 and "sec-websocket-extensions" not in h, h
    r = Reader(s, rest)
    s.sendall(frame(OP_TEXT, b"x", rsv=RSV1))       # RSV1 was not negotiated
    expect_close(r, 1002)
    s.close()


def test_compression_off_client(nocomp):
    async def go():
        async with websockets.connect(ws_url(nocomp), open_timeout=T, close_timeout=T) as ws:
            await ws.send("y" * 1000)
            assert await ws.recv() == "y" * 1000
            return ws.response_headers.get("Sec-WebSocket-Extensions"), ws.extensions
    assert run(go()) == (None, [])


# ---------------------------------------------------------------- timers

def test_idle_timeout_closes_with_1001(idle):
    s, r = session(idle)
    t0 = time.monotonic()
    expect_close(r, 1001)
    elapsed = time.monotonic() - t0
    assert 0.5 <= elapsed < 4 * SLOW, elapsed       # idle_timeout: 1s
    s.close()


def test_idle_timeout_is_reset_by_messages(idle):
    s, r = session(idle)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.8:
        s.sendall(frame(OP_TEXT, b"tick"))
        assert r.frame() == (OP_TEXT, True, 0, b"tick")
        time.sleep(0.2)
    expect_close(r, 1001)       # then, left alone, it goes
    s.close()


def test_server_pings(pinger):
    s, r = session(pinger)
    t0 = time.monotonic()
    op, fin, rsv, payload = r.frame()
    assert (op, fin, rsv) == (OP_PING, True, 0) and len(payload) <= 125, (op, payload)
    assert time.monotonic() - t0 < 3 * SLOW
    s.close()


def test_unanswered_pings_close_with_1011(pinger):
    s, r = session(pinger)
    op, _, _, _ = r.frame()
    assert op == OP_PING
    t0 = time.monotonic()
    expect_close(r, 1011)
    assert time.monotonic() - t0 < 3 * SLOW
    s.close()


def test_answered_pings_keep_the_session(pinger):
    s, r = session(pinger)
    s.settimeout(0.2)
    t0 = time.monotonic()
    pings = 0
    while time.monotonic() - t0 < 1.6:
        try:
            op, _, _, payload = r.frame()
        except socket.timeout:
            continue
        assert op == OP_PING, (op, payload)
        pings += 1
        s.sendall(frame(OP_PONG, payload))
    s.settimeout(T)
    s.sendall(frame(OP_TEXT, b"alive"))
    op, _, _, payload = r.frame()
    while op == OP_PING:
        s.sendall(frame(OP_PONG, payload))
        op, _, _, payload = r.frame()
    assert (op, payload) == (OP_TEXT, b"alive")
    assert pings >= 2, pings
    s.close()


# ---------------------------------------------------------------- backpressure

def test_pause_holds_messages_then_delivers_in_order(echo):
    s, r = session(echo)
    t0 = time.monotonic()
    s.sendall(frame(OP_TEXT, b"pause 500"))
    s.sendall(frame(OP_TEXT, b"m1") + frame(OP_TEXT, b"m2") + frame(OP_TEXT, b"m3"))
    first = r.frame()
    waited = time.monotonic() - t0
    got = [first, r.frame(), r.frame()]
    assert got == [(OP_TEXT, True, 0, m) for m in (b"m1", b"m2", b"m3")]
    assert waited >= 0.4, f"an echo after {waited:.3f}s of a 500 ms pause"
    s.close()


def test_slow_reader_is_backpressured(big):
    s, r = session(big)
    worker = big.worker_pids()[0]
    before = rss_kb(worker)
    for _ in range(20):
        s.sendall(frame(OP_TEXT, b"big 1000000"))
    time.sleep(1)
    during = rss_kb(worker)
    for i in range(20):
        op, fin, rsv, payload = r.frame()
        assert (op, fin, len(payload)) == (OP_BINARY, True, 1000000), (i, op, len(payload))
        assert payload == b"x" * 1000000
    s.close()
    # 20 MB were asked for while nobody read: the echo stops reading while a
    # reply waits, so the worker holds a message or two, not all of them.
    # (ASan keeps freed memory in quarantine: RSS means nothing there.)
    if not SANITIZED:
        assert during - before < 8 * 1024, f"RSS {before} kB -> {during} kB"


# ---------------------------------------------------------------- lifecycle

def test_client_that_vanishes_mid_message_leaves_the_worker_serving(echo):
    s, r = session(echo)
    s.sendall(frame(OP_TEXT, b"first part, ", fin=False))
    s.sendall(frame(OP_CONT, b"x" * 1000)[:500])        # half a frame, then gone
    s.close()
    wait_for(lambda: "wsecho: closed 1006" in echo.error_log_text(), T,
             "'wsecho: closed 1006' in the error log")
    s, r = session(echo)
    s.sendall(frame(OP_TEXT, b"still here"))
    assert r.frame() == (OP_TEXT, True, 0, b"still here")
    s.close()
    assert_same_workers(echo)


def test_access_log_has_101(echo):
    s, r = session(echo, extra="User-Agent: ws-access-probe\r\n")
    s.sendall(frame(OP_TEXT, b"x"))
    r.frame()
    s.sendall(close_frame(1000))
    expect_close(r, 1000)
    s.close()

    def line():
        for l in echo.access_lines():
            if "ws-access-probe" in l:
                return harness.parse_combined(l)
    got = wait_for(line, T, "the session's access log line")
    assert (got["method"], got["target"], got["proto"], got["status"]) == \
        ("GET", "/ws", "HTTP/1.1", "101"), got


def test_graceful_stop_sends_1001(tutti, mods):
    d = tutti(config(mods, top={"shutdown_timeout": "20s"}))
    s, r = session(d)
    s.sendall(frame(OP_TEXT, b"before"))
    assert r.frame()[3] == b"before"
    t0 = time.monotonic()
    d.signal(signal.SIGQUIT)
    op, _, _, payload = r.frame()
    assert (op, struct.unpack("!H", payload[:2])[0]) == (OP_CLOSE, 1001), (op, payload)
    assert time.monotonic() - t0 < 3 * SLOW
    s.sendall(frame(OP_CLOSE, payload[:2]))
    assert r.eof()
    s.close()
    assert d.wait_exit(10) == 0
    assert time.monotonic() - t0 < 5 * SLOW, "waited for shutdown_timeout (20 s)"


@pytest.mark.parametrize("line,col,message", [
    ("max_messag: 1MB", 3, "unknown key 'max_messag' in websocket"),
    ("max_message: 0", 16, "'max_message: 0'"),
    ("idle_timeout: soon", 17, "'idle_timeout: soon': expected a duration"),
    ("ping_interval: often", 18, "'ping_interval: often': expected a duration"),
    ("compression: maybe", 16, "'compression: maybe': expected true or false"),
], ids=["unknown-key", "max-message-0", "idle-timeout-soon", "ping-interval", "compression"])
def test_config_errors(tmp_path, mods, line, col, message):
    other = "idle_timeout: 30s" if line.startswith("ping") else "ping_interval: 30s"
    text = (f"module_path: {mods}\n"
            "modules: [websocket, wsecho]\n"
            "websocket:\n"
            f"  {other}\n")
    text += (f"  {line}\n"                                   # line 5
             "servers:\n"
             f"  - listen: 127.0.0.1:{harness.free_port()}\n"
             "    routes:\n"
             "      - match: /ws\n"
             "        wsecho: {}\n")
    (tmp_path / "tutti.yaml").write_text(text)
    res = run_tutti(["-t", "-c", "tutti.yaml"], tmp_path)
    got = config_error_line(res, [5])
    assert got.startswith(f"tutti: tutti.yaml:5:{col}: ") and message in got, got


def test_config_websocket_is_a_map(tmp_path, mods):
    text = (f"module_path: {mods}\nmodules: [websocket, wsecho]\nwebsocket: [1, 2]\n"
            f"servers:\n  - listen: 127.0.0.1:{harness.free_port()}\n    routes:\n"
            "      - match: /ws\n        wsecho: {}\n")
    (tmp_path / "tutti.yaml").write_text(text)
    got = config_error_line(run_tutti(["-t", "-c", "tutti.yaml"], tmp_path), [3])
    assert "'websocket' is a map" in got, got


def test_shared_daemons_kept_their_workers(echo, big):
    """Nothing above crashed a worker of the shared daemons."""
    assert_same_workers(echo)
    assert_same_workers(big)

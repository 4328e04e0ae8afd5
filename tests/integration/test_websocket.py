"""The `websocket` module (RFC 6455, RFC 7692) through the real daemon.

The endpoint is tests/modules/wsecho.c, a C echo module on the websocket
API, so these tests see the protocol with no Python app in between (the
asgi tests cover WebSocket through ASGI). Raw sockets check every protocol
error and its close code; the `websockets` client checks what a real
client gets. Commands of wsecho: "close CODE REASON", "big N", "pause MS"."""
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
import websockets

import harness
from harness import SANITIZED, SLOW, broken_module, rss_kb, run_tutti, wait_for

T = 5 * SLOW
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def module_dir(tmp):
    """The installed modules plus wsecho.so, in a directory of our own."""
    d = Path(tmp) / "mods"
    d.mkdir(parents=True, exist_ok=True)
    installed = Path(harness.TUTTI_BIN).resolve().parents[1] / "lib" / "tutti" / "modules"
    for so in installed.glob("*.so"):
        shutil.copy(so, d / so.name)
    src = broken_module("wsecho")
    assert src.exists(), f"test module {src} not built"
    shutil.copy(src, d / "wsecho.so")
    return d


def config(mods, **ws):
    section = {"max_message": "64KB", "idle_timeout": "120s", "ping_interval": "30s"}
    section.update(ws)
    return {"module_path": str(mods), "modules": ["websocket", "wsecho"],
            "error_log": "error.log", "websocket": section,
            "servers": [{"routes": [{"match": "/ws", "wsecho": {}}]}]}


@pytest.fixture(scope="module")
def mods(tmp_path_factory):
    return module_dir(tmp_path_factory.mktemp("wsmods"))


@pytest.fixture(scope="module")
def echo(shared_daemon, mods):
    return shared_daemon(config(mods))


# ---------------------------------------------------------------- raw protocol

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def handshake(port, extra="", key=KEY, version="13", connection="Upgrade",
              method="GET", proto="HTTP/1.1", tail=b""):
    s = socket.create_connection(("127.0.0.1", port), timeout=T)
    req = (f"{method} /ws {proto}\r\nHost: x\r\nUpgrade: websocket\r\n"
           f"Connection: {connection}\r\nSec-WebSocket-Key: {key}\r\n"
           f"Sec-WebSocket-Version: {version}\r\n{extra}\r\n").encode()
    s.sendall(req + tail)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            break
        head += chunk
    head, _, rest = head.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip().lower()] = v.strip()
    return s, status, headers, rest


def frame(opcode, payload=b"", fin=True, mask=True, rsv=0, length=None):
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload) if length is None else length
    if n < 126:
        head = struct.pack("!BB", b0, (0x80 if mask else 0) | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
    else:
        head = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class Reader:
    def __init__(self, s, rest=b""):
        self.s, self.buf = s, rest

    def need(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
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
        assert not b1 & 0x80, "server frames are never masked"
        return b0 & 0x0f, bool(b0 & 0x80), (b0 >> 4) & 7, self.need(n)

    def closed(self):
        """After a close frame: the server closes the TCP connection."""
        try:
            while self.s.recv(4096):
                pass
        except ConnectionResetError:
            pass
        return True


def session(d, **kw):
    s, status, headers, rest = handshake(d.port, **kw)
    assert status == 101, (status, headers)
    return s, Reader(s, rest)


def expect_close(r, code):
    op, fin, rsv, payload = r.frame()
    while op in (0x9, 0xA):         # a ping the server sent meanwhile
        op, fin, rsv, payload = r.frame()
    assert op == 0x8, (op, payload)
    got = struct.unpack("!H", payload[:2])[0]
    assert got == code, (got, payload[2:])
    assert r.closed()
    return payload[2:]


def test_handshake_accept_key_and_headers(echo):
    s, status, h, _ = handshake(echo.port)
    s.close()
    assert status == 101
    assert h["upgrade"].lower() == "websocket" and h["connection"].lower() == "upgrade"
    assert h["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert base64.b64encode(hashlib.sha1(KEY.encode() + GUID).digest()).decode() == \
        h["sec-websocket-accept"]
    assert "sec-websocket-protocol" not in h


def test_connection_keep_alive_upgrade_is_an_upgrade(echo):
    s, status, _, _ = handshake(echo.port, connection="keep-alive, Upgrade")
    s.close()
    assert status == 101


def test_subprotocol_chosen_from_the_offer(echo):
    s, status, h, _ = handshake(echo.port, extra="Sec-WebSocket-Protocol: superchat, chat\r\n")
    s.close()
    assert (status, h.get("sec-websocket-protocol")) == (101, "chat")


@pytest.mark.parametrize("kw,status", [
    ({"version": "8"}, 426),
    ({"key": "short"}, 400),
    ({"key": "dGhlIHNhbXBsZSBub25jZQ"}, 400),
    ({"connection": "keep-alive"}, 400),
    ({"method": "POST"}, 400),
    ({"proto": "HTTP/1.0"}, 400),
])
def test_bad_handshakes_are_refused(echo, kw, status):
    s, got, h, _ = handshake(echo.port, **kw)
    s.close()
    assert got == status, (kw, got)
    if status == 426:
        assert h["sec-websocket-version"] == "13"


def test_plain_get_is_a_plain_request(echo):
    import requests
    r = requests.get(echo.url + "/ws", timeout=T)
    assert (r.status_code, r.text) == (200, "wsecho\n")


def test_frames_sent_with_the_handshake_are_read(echo):
    s, status, _, rest = handshake(echo.port, tail=frame(0x1, b"early"))
    assert status == 101
    assert Reader(s, rest).frame() == (0x1, True, 0, b"early")
    s.close()


@pytest.mark.parametrize("n", [0, 1, 125, 126, 65535, 65536])
def test_echo_sizes(echo, n):
    s, r = session(echo)
    data = os.urandom(n)
    s.sendall(frame(0x2, data))
    assert r.frame() == (0x2, True, 0, data)
    s.sendall(frame(0x1, b"a" * n))
    assert r.frame() == (0x1, True, 0, b"a" * n)
    s.close()


def test_fragments_with_a_ping_between(echo):
    s, r = session(echo)
    s.sendall(frame(0x1, b"one ", fin=False) + frame(0x0, b"two ", fin=False) +
              frame(0x9, b"are you there") + frame(0x0, b"three"))
    assert r.frame() == (0xA, True, 0, b"are you there")
    assert r.frame() == (0x1, True, 0, b"one two three")
    s.close()


def test_utf8_split_across_fragments_is_fine(echo):
    s, r = session(echo)
    text = "héllo €".encode()
    s.sendall(frame(0x1, text[:2], fin=False) + frame(0x0, text[2:]))
    assert r.frame() == (0x1, True, 0, text)
    s.close()


@pytest.mark.parametrize("frames,code", [
    ([frame(0x1, b"x", mask=False)], 1002),                 # unmasked
    ([frame(0x1, b"x", rsv=2)], 1002),                      # RSV2
    ([frame(0x1, b"x", rsv=1)], 1002),                      # RSV3
    ([frame(0x1, b"x", rsv=4)], 1002),                      # RSV1, no deflate
    ([frame(0x3, b"x")], 1002),                             # reserved opcode
    ([frame(0xB, b"x")], 1002),                             # reserved control opcode
    ([frame(0x9, b"p" * 126)], 1002),                       # control frame > 125
    ([frame(0x9, b"p", fin=False)], 1002),                  # fragmented ping
    ([frame(0x0, b"x")], 1002),                             # continuation, no message
    ([frame(0x1, b"a", fin=False), frame(0x1, b"b")], 1002),  # new message inside one
    ([frame(0x1, b"\xff")], 1007),                          # invalid UTF-8
    ([frame(0x1, b"\xe2\x82", fin=False), frame(0x0, b"(")], 1007),  # bad across fragments
    ([frame(0x1, "€".encode()[:2])], 1007),                 # character cut at the end
    ([frame(0x8, b"\x03")], 1002),                          # close of one byte
    ([frame(0x8, struct.pack("!H", 1000) + b"\xff")], 1007),  # close reason not UTF-8
    ([b"\x81\xfe\x00\x0a" + b"\x00" * 4 + b"x" * 10], 1002),  # 126 with length 10
])
def test_protocol_errors_close_with_the_code(echo, frames, code):
    s, r = session(echo)
    s.sendall(b"".join(frames))
    expect_close(r, code)
    s.close()


@pytest.mark.parametrize("code", [999, 1004, 1005, 1006, 1016, 2999, 5000])
def test_invalid_close_codes_are_1002(echo, code):
    s, r = session(echo)
    s.sendall(frame(0x8, struct.pack("!H", code)))
    expect_close(r, 1002)
    s.close()


@pytest.mark.parametrize("code,reason", [(1000, b"bye"), (4001, b""), (3000, "€".encode())])
def test_client_close_is_echoed(echo, code, reason):
    s, r = session(echo)
    s.sendall(frame(0x8, struct.pack("!H", code) + reason))
    expect_close(r, code)
    s.close()
    wait_for(lambda: f"wsecho: closed {code}" in echo.error_log_text(), T, "the close logged")


def test_too_big_is_1009_before_the_payload(echo):
    s, r = session(echo)
    # a header announcing 100000 bytes and the first 100 of them: the answer
    # comes then, nothing of the message is held
    s.sendall(frame(0x2, b"", length=100000)[:14] + b"x" * 100)
    expect_close(r, 1009)
    s.close()


def test_compressed_message_that_inflates_too_big_is_1009(echo):
    s, r = session(echo, extra="Sec-WebSocket-Extensions: permessage-deflate\r\n")
    z = zlib.compressobj(wbits=-15)
    data = z.compress(b"\0" * 200000) + z.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(b"\x00\x00\xff\xff") and len(data) < 64 * 1024
    s.sendall(frame(0x2, data[:-4], rsv=4))
    expect_close(r, 1009)
    s.close()


def test_compressed_message_both_ways(echo):
    s, status, h, rest = handshake(echo.port,
                                   extra="Sec-WebSocket-Extensions: permessage-deflate\r\n")
    assert status == 101 and h["sec-websocket-extensions"].startswith("permessage-deflate")
    # the server's own window is capped (memory per connection), and says so
    assert "server_max_window_bits=12" in h["sec-websocket-extensions"]
    r = Reader(s, rest)
    text = ("tutti " * 2000).encode()
    z = zlib.compressobj(wbits=-15)
    data = z.compress(text) + z.flush(zlib.Z_SYNC_FLUSH)
    s.sendall(frame(0x1, data[:-4], rsv=4))
    op, fin, rsv, payload = r.frame()
    assert (op, fin, rsv) == (0x1, True, 4), "the echo comes back compressed"
    assert zlib.decompressobj(wbits=-15).decompress(payload + b"\x00\x00\xff\xff") == text
    s.close()


def test_server_initiated_close(echo):
    s, r = session(echo)
    s.sendall(frame(0x1, b"close 4002 enough"))
    op, _, _, payload = r.frame()
    assert (op, struct.unpack("!H", payload[:2])[0], payload[2:]) == (0x8, 4002, b"enough")
    s.sendall(frame(0x8, payload[:2]))
    assert r.closed()
    s.close()


def test_client_that_vanishes_leaves_the_worker_serving(echo):
    s, r = session(echo)
    s.sendall(frame(0x2, b"x" * 1000)[:500])      # half a frame, then gone
    s.close()
    wait_for(lambda: "wsecho: closed 1006" in echo.error_log_text(), T, "1006 logged")
    s, r = session(echo)
    s.sendall(frame(0x1, b"still here"))
    assert r.frame()[3] == b"still here"
    s.close()


def test_access_log_line_is_101(echo):
    s, r = session(echo)
    s.sendall(frame(0x1, b"x"))
    r.frame()
    s.sendall(frame(0x8, struct.pack("!H", 1000)))
    expect_close(r, 1000)
    s.close()
    wait_for(lambda: any('"GET /ws HTTP/1.1" 101 ' in l for l in echo.access_lines()), T,
             "a 101 access line")


def test_pause_holds_messages_then_delivers_in_order(echo):
    s, r = session(echo)
    s.sendall(frame(0x1, b"pause 500"))
    t0 = time.monotonic()
    s.sendall(frame(0x1, b"m1") + frame(0x1, b"m2") + frame(0x1, b"m3"))
    got = [r.frame()[3] for _ in range(3)]
    assert got == [b"m1", b"m2", b"m3"]
    assert time.monotonic() - t0 >= 0.4
    s.close()


# ---------------------------------------------------------------- the websockets client

def ws_url(d):
    return f"ws://127.0.0.1:{d.port}/ws"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60 * SLOW))


def test_client_echo_text_binary_and_subprotocol(echo):
    async def go():
        async with websockets.connect(ws_url(echo), subprotocols=["chat"]) as ws:
            assert ws.subprotocol == "chat"
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.send(b"\x00\x01\x02")
            assert await ws.recv() == b"\x00\x01\x02"
            await ws.send("big 300000")
            assert await ws.recv() == b"x" * 300000
    run(go())


def test_client_sees_server_close_code(echo):
    async def go():
        async with websockets.connect(ws_url(echo)) as ws:
            await ws.send("close 4001 bye")
            with pytest.raises(websockets.ConnectionClosed) as e:
                await ws.recv()
            return e.value
    e = run(go())
    assert (e.code, e.reason) == (4001, "bye")


def test_compression_is_negotiated_by_default(echo):
    async def go():
        async with websockets.connect(ws_url(echo)) as ws:
            ext = ws.response_headers.get("Sec-WebSocket-Extensions", "")
            text = "compressible " * 4000      # 52 KB, under max_message
            await ws.send(text)
            return ext, await ws.recv() == text
    ext, same = run(go())
    assert ext.startswith("permessage-deflate") and same


def test_hundred_concurrent_connections(echo):
    async def one(i):
        async with websockets.connect(ws_url(echo)) as ws:
            for k in range(20):
                msg = f"{i}:{k}"
                await ws.send(msg)
                assert await ws.recv() == msg
        return True

    async def go():
        return await asyncio.gather(*(one(i) for i in range(100)))
    assert all(run(go()))


def test_big_messages_with_a_larger_max(tutti, mods):
    d = tutti(config(mods, max_message="2MB"))

    async def go():
        async with websockets.connect(ws_url(d), max_size=4 * 1024 * 1024) as ws:
            data = os.urandom(1024 * 1024)
            await ws.send(data)
            assert await ws.recv() == data
            await ws.send("big 1500000")
            assert len(await ws.recv()) == 1500000
    run(go())


def test_compression_off(tutti, mods):
    d = tutti(config(mods, compression=False))
    s, status, h, _ = handshake(d.port, extra="Sec-WebSocket-Extensions: permessage-deflate\r\n")
    s.close()
    assert status == 101 and "sec-websocket-extensions" not in h


def test_slow_reader_is_backpressured(tutti, mods):
    d = tutti(config(mods, max_message="2MB"))
    s, r = session(d)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    worker = d.worker_pids()[0]
    before = rss_kb(worker)
    for _ in range(20):
        s.sendall(frame(0x1, b"big 1000000"))
    time.sleep(1)
    for _ in range(20):
        op, fin, _, payload = r.frame()
        assert (op, len(payload)) == (0x2, 1000000)
    # 20 MB went out; the echo stopped reading while its reply waited, so
    # the worker never held more than a message or two of it (ASan's
    # quarantine keeps freed memory: no RSS figure means anything there)
    if not SANITIZED:
        assert rss_kb(worker) - before < 8 * 1024
    s.close()


# ---------------------------------------------------------------- timers and stop

def test_idle_timeout_closes_with_1001(tutti, mods):
    d = tutti(config(mods, idle_timeout="1s", ping_interval=0))
    s, r = session(d)
    t0 = time.monotonic()
    expect_close(r, 1001)
    assert 0.8 <= time.monotonic() - t0 < 5 * SLOW
    s.close()


def test_unanswered_pings_close_with_1011(tutti, mods):
    d = tutti(config(mods, idle_timeout=0, ping_interval="300ms"))
    s, r = session(d)
    op, _, _, _ = r.frame()
    assert op == 0x9                      # the server pings
    t0 = time.monotonic()
    expect_close(r, 1011)                 # and gives up on the next tick
    assert time.monotonic() - t0 < 3 * SLOW
    s.close()


def test_answered_pings_keep_the_session(tutti, mods):
    d = tutti(config(mods, idle_timeout=0, ping_interval="300ms"))
    s, r = session(d)
    s.settimeout(0.2)
    end = time.monotonic() + 1.6
    pings = 0
    while time.monotonic() < end:
        try:
            op, _, _, payload = r.frame()
        except socket.timeout:
            continue
        assert op == 0x9
        pings += 1
        s.sendall(frame(0xA, payload))
    s.settimeout(T)
    s.sendall(frame(0x1, b"alive"))
    op, _, _, payload = r.frame()
    while op == 0x9:
        s.sendall(frame(0xA, payload))
        op, _, _, payload = r.frame()
    assert (op, payload) == (0x1, b"alive") and pings >= 3
    s.close()


def test_graceful_stop_sends_1001(tutti, mods):
    d = tutti(config(mods))
    s, r = session(d)
    t0 = time.monotonic()
    d.signal(signal.SIGQUIT)
    op, _, _, payload = r.frame()
    assert (op, struct.unpack("!H", payload[:2])[0]) == (0x8, 1001)
    s.sendall(frame(0x8, payload[:2]))
    assert r.closed()
    d.wait_exit(10 * SLOW)
    assert time.monotonic() - t0 < 5 * SLOW      # not shutdown_timeout (30 s)
    s.close()


@pytest.mark.parametrize("section,message", [
    ("{max_messag: 1MB}", "unknown key 'max_messag'"),
    ("{max_message: 0}", "'max_message: 0'"),
    ("{idle_timeout: soon}", "idle_timeout"),
    ("{compression: maybe}", "compression"),
    ("[1, 2]", "'websocket' is a map"),
])
def test_config_errors(tmp_path, mods, section, message):
    text = (f"module_path: {mods}\nmodules: [websocket, wsecho]\nwebsocket: {section}\n"
            f"servers:\n  - listen: 127.0.0.1:{harness.free_port()}\n    routes:\n"
            f"      - match: /ws\n        wsecho: {{}}\n")
    (tmp_path / "tutti.yaml").write_text(text)
    res = run_tutti(["-t", "-c", "tutti.yaml"], tmp_path)
    out = res.stderr + res.stdout
    assert res.returncode == 1, out
    assert "tutti.yaml:3:" in out and message in out, out


def test_deflate_without_context_takeover(echo):
    """server_no_context_takeover: every message the server sends inflates on
    its own; client_no_context_takeover: the server resets its inflater, so
    the client may compress each message afresh."""
    s, status, h, rest = handshake(echo.port, extra=(
        "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; "
        "server_no_context_takeover\r\n"))
    ext = h.get("sec-websocket-extensions", "")
    assert status == 101 and "server_no_context_takeover" in ext and \
        "client_no_context_takeover" in ext, ext
    r = Reader(s, rest)
    text = ("no takeover " * 500).encode()
    for _ in range(3):
        z = zlib.compressobj(wbits=-15)         # a fresh context for every message
        data = z.compress(text) + z.flush(zlib.Z_SYNC_FLUSH)
        s.sendall(frame(0x1, data[:-4], rsv=4))
        op, fin, rsv, payload = r.frame()
        assert (op, rsv) == (0x1, 4)
        # a fresh inflater for every message too
        assert zlib.decompressobj(wbits=-15).decompress(payload + b"\x00\x00\xff\xff") == text
    s.close()

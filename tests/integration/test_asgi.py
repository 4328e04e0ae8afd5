"""The `asgi` module: ASGI 3.0 apps on an asyncio loop per worker, through
the real daemon and real clients.

The apps live in tests/apps/asgi/ (rawapp: one path per corner of the spec;
starapp, fastapp, djasgi: Starlette, FastAPI, Django; lsfail: failing
lifespans). One daemon (module scope) mounts them; Django and the tests that
need their own config start their own. Apps record what happens after a
response (disconnects, lifespan) in files under a state directory."""
import asyncio
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import websockets

from harness import (SANITIZED, SLOW, assert_same_workers, free_port, rss_kb, run_tutti,
                     to_yaml, wait_for)
from rawhttp import Closed, Conn

APPS = Path(__file__).resolve().parents[1] / "apps" / "asgi"
T = 5 * SLOW


def token():
    return uuid.uuid4().hex[:12]


def site(state, static_dir, **ws):
    return {
        "modules": ["static", "websocket", "asgi"],
        "error_log": "error.log",
        "python": {"path": [str(APPS)], "env": {"ASGI_TEST_STATE": str(state)}},
        "websocket": {"max_message": "2MB", **ws},
        "limits": {"max_body_size": "100MB"},
        "servers": [{"routes": [
            {"match": "/static/", "static": {"alias": str(static_dir)}},
            {"match": "/api", "asgi": {"app": "rawapp:app", "root_path": "/api"}},
            {"match": "/star", "asgi": {"app": "starapp:app", "root_path": "/star"}},
            {"match": "/fast", "asgi": {"app": "fastapp:app", "root_path": "/fast"}},
            {"match": "/", "asgi": "rawapp:app"},
        ]}],
    }


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    return tmp_path_factory.mktemp("asgistate")


@pytest.fixture(scope="module")
def static_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("static")
    (d / "hello.txt").write_text("static hello\n")
    return d


@pytest.fixture(scope="module")
def d(shared_daemon, state, static_dir):
    d = shared_daemon(site(state, static_dir))
    d.first_workers = d.worker_pids()
    assert len(d.first_workers) == 1, d.first_workers
    return d


def read_state(state, name):
    p = Path(state) / name
    return p.read_text() if p.exists() else ""


def ws_url(d, path):
    return f"ws://127.0.0.1:{d.port}{path}"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60 * SLOW))


# ---------------------------------------------------------------- the http scope

def test_http_scope(d):
    with Conn(d.port) as c:
        c.send(b"GET /scope/caf%C3%A9%20x?a=1&b=%20 HTTP/1.1\r\nHost: x\r\n"
               b"X-Twice: 1\r\nAccept: */*\r\nx-twice: 2\r\n\r\n")
        r = c.read_response()
    s = json.loads(r.body)
    assert r.status == 200
    assert {"type", "asgi", "http_version", "method", "scheme", "path", "raw_path",
            "query_string", "root_path", "headers", "client", "server", "state",
            "extensions"} <= set(s), sorted(s)
    assert s["type"] == "http"
    assert s["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert (s["http_version"], s["method"], s["scheme"]) == ("1.1", "GET", "http")
    assert s["path"] == "/scope/café x"
    assert (s["raw_path"], s["raw_path_type"]) == ("/scope/caf%C3%A9%20x", "bytes")
    assert (s["query_string"], s["query_string_type"]) == ("a=1&b=%20", "bytes")
    assert s["root_path"] == ""
    assert s["header_types"] == ["bytes/bytes"]
    # every header, in the order sent, names lower-cased, duplicates kept
    assert s["headers"] == [["host", "x"], ["x-twice", "1"], ["accept", "*/*"], ["x-twice", "2"]]
    assert [v for n, v in s["headers"] if n == "x-twice"] == ["1", "2"]
    assert s["client"][0] == "127.0.0.1" and isinstance(s["client"][1], int)
    assert s["server"] == ["127.0.0.1", d.port]
    assert s["extensions"] == {"http.response.pathsend": {}}


def test_root_path_mounts_the_app(d):
    s = requests.get(d.url + "/api/scope?x", timeout=T).json()
    assert (s["root_path"], s["path"], s["raw_path"]) == ("/api", "/scope", "/api/scope")


def test_lifespan_state_is_copied_per_request(d):
    one = requests.get(d.url + "/scope", timeout=T).json()
    two = requests.get(d.url + "/scope", timeout=T).json()
    assert one["state"]["token"] == "from-lifespan"
    # each request gets its own dict: the app set "mine" in the first, the
    # second does not see it...
    assert one["state_keys_before"] == ["items", "token"]
    assert two["state_keys_before"] == ["items", "token"], two["state_keys_before"]
    assert two["state"]["token"] == "from-lifespan"
    # ...a shallow copy: the list inside is lifespan's own
    assert len(two["state"]["items"]) == len(one["state"]["items"]) + 1


def test_lifespan_startup_ran_before_serving(d, state):
    requests.get(d.url + "/scope", timeout=T)
    assert "startup" in read_state(state, "lifespan")


def test_http_10(d):
    with Conn(d.port) as c:
        c.send(b"GET /scope HTTP/1.0\r\nHost: x\r\n\r\n")
        resp = c.read_response()
    assert json.loads(resp.body)["http_version"] == "1.0"


# ---------------------------------------------------------------- request bodies

def test_body_small_and_chunked(d):
    r = requests.post(d.url + "/echo", data=b"hello", timeout=T).json()
    assert (r["len"], r["sha256"]) == (5, hashlib.sha256(b"hello").hexdigest())
    data = os.urandom(5 * 1024 * 1024)

    def gen():
        for i in range(0, len(data), 100000):
            yield data[i:i + 100000]
    r = requests.post(d.url + "/echo", data=gen(), timeout=60 * SLOW).json()
    assert (r["len"], r["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
    assert r["pieces"] > 1


def test_expect_100_continue(d):
    with Conn(d.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
               b"Expect: 100-continue\r\n\r\n")
        assert c.read_response(interim=True).status == 100
        c.send(b"hello")
        resp = c.read_response()
    assert json.loads(resp.body)["len"] == 5


def test_upload_with_curl_and_100_continue(d, tmp_path):
    f = tmp_path / "up.bin"
    data = os.urandom(2 * 1024 * 1024 + 3)
    f.write_bytes(data)
    res = subprocess.run(["curl", "-sS", "-v", "--max-time", str(int(30 * SLOW)),
                          "-H", "Expect: 100-continue", "--data-binary", f"@{f}",
                          d.url + "/echo"], capture_output=True, text=True, timeout=60 * SLOW)
    assert res.returncode == 0, res.stderr
    assert "HTTP/1.1 100 Continue" in res.stderr, res.stderr[-2000:]
    r = json.loads(res.stdout)
    assert (r["len"], r["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())


@pytest.mark.slow
def test_slow_app_reading_a_big_upload_keeps_memory_flat(d):
    worker = d.worker_pids()[0]
    before = rss_kb(worker)
    size = 20 * 1024 * 1024
    block = os.urandom(1024 * 1024)

    def gen():
        for _ in range(size // len(block)):
            yield block
    r = requests.post(d.url + "/slowread", data=gen(), timeout=120 * SLOW).json()
    assert r["len"] == size
    if not SANITIZED:
        assert rss_kb(worker) - before < 12 * 1024


# ---------------------------------------------------------------- responses

def test_single_body_gets_content_length(d):
    r = requests.get(d.url + "/status?200", timeout=T)
    assert r.headers.get("Content-Length") == "0" and "Transfer-Encoding" not in r.headers
    r = requests.get(d.url + "/scope", timeout=T)
    assert int(r.headers["Content-Length"]) == len(r.content)


def test_streamed_body_is_chunked_and_intact(d):
    r = requests.get(d.url + "/stream?50,1000", timeout=T)
    assert r.headers.get("Transfer-Encoding") == "chunked"
    assert r.content == b"".join(bytes([65 + i % 26]) * 1000 for i in range(50))


def test_app_content_length_is_honoured(d):
    r = requests.get(d.url + "/cl", timeout=T)
    assert (r.headers["Content-Length"], r.content) == ("10", b"0123456789")


def test_head(d):
    r = requests.head(d.url + "/scope", timeout=T)
    assert r.status_code == 200 and r.content == b""


def test_pathsend(d, tmp_path):
    f = tmp_path / "big.bin"
    data = os.urandom(3 * 1024 * 1024 + 7)
    f.write_bytes(data)
    r = requests.get(d.url + "/pathsend?" + str(f), timeout=30 * SLOW)
    assert r.status_code == 200 and r.content == data
    assert r.headers["Content-Length"] == str(len(data))


@pytest.mark.slow
def test_big_stream_to_a_slow_reader(d):
    worker = d.worker_pids()[0]
    before = rss_kb(worker)
    with requests.get(d.url + "/stream?160,65536", timeout=60 * SLOW, stream=True) as r:
        got = 0
        for chunk in r.iter_content(65536):
            got += len(chunk)
            if got < 2 * 1024 * 1024:
                time.sleep(0.01)
    assert got == 160 * 65536
    if not SANITIZED:
        assert rss_kb(worker) - before < 8 * 1024


def test_trailers_are_refused(d):
    r = requests.get(d.url + "/trailers", timeout=T)
    assert r.status_code == 500
    wait_for(lambda: "trailers are not supported" in d.error_log_text(), T, "the error logged")
    assert_same_workers(d)
    assert requests.get(d.url + "/status?200", timeout=T).status_code == 200


def test_response_headers_are_the_apps_in_order_with_duplicates(d):
    with Conn(d.port) as c:
        c.send(b"GET /headers HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
    assert (r.status, r.body) == (201, b"created")
    assert r.header_all("set-cookie") == ["a=1", "b=2"]
    assert (r.header("x-one"), r.header("x-mixed-case")) == ("1", "v")
    assert r.header("content-length") == "7"


def test_head_of_a_streamed_response_and_the_connection_goes_on(d):
    with Conn(d.port) as c:
        c.send(b"HEAD /stream?5,100 HTTP/1.1\r\nHost: x\r\n\r\n")
        h = c.read_response(head_request=True)
        c.send(b"GET /cl HTTP/1.1\r\nHost: x\r\n\r\n")
        g = c.read_response()
    assert h.status == 200 and h.body == b""
    assert (g.status, g.body) == (200, b"0123456789"), "bytes of the HEAD body leaked"


def test_streamed_response_to_http10_ends_with_the_connection(d):
    with Conn(d.port) as c:
        c.send(b"GET /stream?7,1000 HTTP/1.0\r\nHost: x\r\n\r\n")
        data = c.read_until_close(timeout=T)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n")[0], head
    assert b"transfer-encoding" not in head.lower(), head
    assert body == b"".join(bytes([65 + i % 26]) * 1000 for i in range(7))


def test_pathsend_of_a_missing_file_is_500(d, tmp_path):
    r = requests.get(d.url + "/pathsend?" + str(tmp_path / "nope.bin"), timeout=T)
    assert r.status_code == 500
    wait_for(lambda: "nope.bin" in d.error_log_text(), T, "the pathsend error logged")


def test_unread_body_does_not_break_the_connection(d):
    with Conn(d.port) as c:
        c.send(b"POST /cl HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
               + b"u" * 100000)
        r = c.read_response()
        assert (r.status, r.body) == (200, b"0123456789")
        if "close" in r.connection_tokens():
            return
        c.send(b"GET /cl HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        try:
            r2 = c.read_response()
        except Closed as e:
            assert e.partial == b"", f"stray bytes: {e.partial[:100]!r}"
            return
        assert (r2.status, r2.body) == (200, b"0123456789"), "the unread body was read as a request"


def test_many_requests_wait_concurrently_on_the_loop(d):
    """60 requests each awaiting asyncio.sleep(1) on one worker's loop finish
    together (one after the other would take 60 s)."""
    t0 = time.monotonic()
    with ThreadPoolExecutor(60) as ex:
        got = list(ex.map(lambda _: requests.get(d.url + "/nap?1", timeout=60 * SLOW).text,
                          range(60)))
    took = time.monotonic() - t0
    assert got == ["napped"] * 60
    assert took < 20 * SLOW, took


# ---------------------------------------------------------------- errors

def test_exception_before_start_is_500_with_traceback(d):
    r = requests.get(d.url + "/boom", timeout=T)
    assert r.status_code == 500
    log = wait_for(lambda: (lambda t: t if "boom before start" in t else None)(d.error_log_text()),
                   T, "the traceback")
    assert "ASGI app 'rawapp:app' failed for GET /boom" in log and "Traceback" in log
    assert requests.get(d.url + "/status?204", timeout=T).status_code == 204


def test_exception_after_start_cuts_the_connection(d):
    with Conn(d.port) as c:
        c.send(b"GET /lateboom HTTP/1.1\r\nHost: x\r\n\r\n")
        data = c.read_until_close()
    assert data.startswith(b"HTTP/1.1 200") and b"partial" in data
    assert not data.endswith(b"0\r\n\r\n"), "the body must not look complete"
    assert requests.get(d.url + "/status?200", timeout=T).status_code == 200


def test_no_response_is_500(d):
    assert requests.get(d.url + "/noresponse", timeout=T).status_code == 500
    wait_for(lambda: "returned without starting a response" in d.error_log_text(), T,
             "the mistake logged")


def test_body_before_start_is_500_and_logged(d):
    assert requests.get(d.url + "/badorder", timeout=T).status_code == 500
    wait_for(lambda: "http.response.body before http.response.start" in d.error_log_text(), T,
             "the mistake logged")
    assert requests.get(d.url + "/status?200", timeout=T).status_code == 200


def test_print_goes_to_the_error_log(d):
    t = token()
    requests.get(d.url + "/print?" + t, timeout=T)
    wait_for(lambda: f"hello from the app {t}" in d.error_log_text(), T, "the print")


# ---------------------------------------------------------------- disconnect

def test_disconnect_during_sse_reaches_the_app(d, state):
    t = token()
    s = socket.create_connection(("127.0.0.1", d.port), timeout=T)
    s.sendall(f"GET /sse?{t} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    got = b""
    while got.count(b"data:") < 3:
        got += s.recv(4096)
    s.close()
    text = wait_for(lambda: (lambda x: x if t in x and "send raised" in x else None)(
        read_state(state, "sse")), 10 * SLOW, "the app to see the disconnect")
    assert f"disconnect {t}" in text
    assert f"send raised ClientDisconnected True {t}" in text


def test_client_leaving_a_stream_ends_it_with_http_disconnect(d, state):
    """The common SSE loop (stream until receive() says http.disconnect)."""
    t = token()
    s = socket.create_connection(("127.0.0.1", d.port), timeout=T)
    s.sendall(f"GET /events?{t} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    got = b""
    while got.count(b"data:") < 2:
        got += s.recv(4096)
    s.close()
    wait_for(lambda: f"http.disconnect {t}" in read_state(state, "events"), 10 * SLOW,
             "the app to hear http.disconnect")


def test_client_leaving_mid_upload_reaches_the_app(d, state):
    t = token()
    with Conn(d.port) as c:
        c.send(f"POST /uploadgone?{t} HTTP/1.1\r\nHost: x\r\n"
               f"Content-Length: 1000000\r\n\r\n".encode())
        c.send(b"u" * 100000)
        time.sleep(0.3)
    text = wait_for(lambda: (lambda x: x if t in x else None)(read_state(state, "uploadgone")),
                    10 * SLOW, "the app to hear http.disconnect in the middle of the body")
    assert re.search(rf"disconnect after \d+ {t}", text), text
    assert requests.get(d.url + "/status?200", timeout=T).status_code == 200


# ---------------------------------------------------------------- isolation

def test_slow_app_does_not_slow_a_static_route(d):
    with ThreadPoolExecutor(2) as ex:
        slow = [ex.submit(requests.get, d.url + p, timeout=30 * SLOW) for p in ("/block", "/sleep")]
        time.sleep(0.3)
        t0 = time.monotonic()
        r = requests.get(d.url + "/static/hello.txt", timeout=T)
        took = time.monotonic() - t0
        assert r.text == "static hello\n"
        assert took < 1.0 * SLOW, took
        assert [f.result().text for f in slow] == ["blocked", "slept"]


# ---------------------------------------------------------------- websocket

def test_websocket_scope_has_no_method(d):
    async def go():
        async with websockets.connect(ws_url(d, "/ws/scope"), subprotocols=["a"]) as ws:
            return json.loads(await ws.recv())
    s = run(go())
    assert s["type"] == "websocket" and "method" not in s
    assert (s["scheme"], s["path"], s["subprotocols"]) == ("ws", "/ws/scope", ["a"])
    assert s["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert s["http_version"] == "1.1" and s["root_path"] == ""
    assert (s["raw_path"], s["raw_path_type"]) == ("/ws/scope", "bytes")
    assert (s["query_string"], s["query_string_type"]) == ("", "bytes")
    assert s["header_types"] == ["bytes/bytes"]
    names = [n for n, _ in s["headers"]]
    assert "upgrade" in names and "sec-websocket-key" in names
    assert all(n == n.lower() for n in names)
    assert s["client"][0] == "127.0.0.1" and s["server"] == ["127.0.0.1", d.port]
    assert s["state"]["token"] == "from-lifespan"
    assert s["extensions"] == {"websocket.http.response": {}}


def test_websocket_echo_text_binary_and_big(d):
    async def go():
        async with websockets.connect(ws_url(d, "/ws/echo"), max_size=4 << 20) as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.send(b"\x00\xff")
            assert await ws.recv() == b"\x00\xff"
            await ws.send("")
            assert await ws.recv() == ""
            await ws.send(b"")
            assert await ws.recv() == b""
            big = os.urandom(1024 * 1024)
            await ws.send(big)
            assert await ws.recv() == big
    run(go())


def test_websocket_subprotocol_and_headers(d):
    async def go():
        async with websockets.connect(ws_url(d, "/ws/sub"), subprotocols=["one", "two"]) as ws:
            return ws.subprotocol, ws.response_headers.get("x-accepted"), await ws.recv()
    assert run(go()) == ("two", "yes", "one,two")


def test_websocket_subprotocol_not_offered_is_left_out(d):
    async def go():
        async with websockets.connect(ws_url(d, "/ws/badsub"), subprotocols=["one"]) as ws:
            return ws.subprotocol, await ws.recv()
    assert run(go()) == (None, "accepted")
    wait_for(lambda: "subprotocol 'never-offered' was not offered" in d.error_log_text(), T,
             "the warning")


def test_websocket_close_before_accept_is_403(d):
    async def go():
        with pytest.raises(websockets.InvalidStatusCode) as e:
            async with websockets.connect(ws_url(d, "/ws/deny")):
                pass
        return e.value.status_code
    assert run(go()) == 403


def test_websocket_app_returning_without_accept_is_403(d):
    async def go():
        with pytest.raises(websockets.InvalidStatusCode) as e:
            async with websockets.connect(ws_url(d, "/ws/noaccept")):
                pass
        return e.value.status_code
    assert run(go()) == 403


def test_websocket_close_without_code_or_reason_is_1000(d, state):
    async def go():
        async with websockets.connect(ws_url(d, "/ws/closeplain")) as ws:
            with pytest.raises(websockets.ConnectionClosed) as e:
                await ws.recv()
            return e.value.code, e.value.reason
    assert run(go()) == (1000, "")
    wait_for(lambda: "after-plain-close" in read_state(state, "wsdisconnect"), T,
             "websocket.disconnect after the server's close")
    assert_same_workers(d)


def test_websocket_exception_after_accept_closes_1011(d):
    async def go():
        async with websockets.connect(ws_url(d, "/ws/boom")) as ws:
            with pytest.raises(websockets.ConnectionClosed) as e:
                await ws.recv()
            return e.value.code
    assert run(go()) == 1011
    wait_for(lambda: "websocket boom after accept" in d.error_log_text(), T, "the traceback")


def test_websocket_message_over_max_message_is_1009(d):
    async def go():
        async with websockets.connect(ws_url(d, "/ws/echo"), max_size=8 << 20) as ws:
            await ws.send(b"x" * (3 * 1024 * 1024))
            with pytest.raises(websockets.ConnectionClosed) as e:
                await ws.recv()
            return e.value.code
    assert run(go()) == 1009


def test_websocket_denial_response(d):
    r = requests.get(d.url + "/ws/http", timeout=T, headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert (r.status_code, r.text) == (401, "no entry")


def test_websocket_server_close_code_and_disconnect_after(d, state):
    async def go():
        async with websockets.connect(ws_url(d, "/ws/close4000")) as ws:
            with pytest.raises(websockets.ConnectionClosed) as e:
                await ws.recv()
            return e.value.code, e.value.reason
    assert run(go()) == (4000, "done here")
    wait_for(lambda: "after-server-close 4000" in read_state(state, "wsdisconnect"), T,
             "websocket.disconnect after the server's close")


def test_websocket_client_close_code_reaches_the_app(d, state):
    t = token()

    async def go():
        ws = await websockets.connect(ws_url(d, f"/ws/echo?{t}"))
        await ws.send("x")
        await ws.recv()
        await ws.close(code=4321)
    run(go())
    wait_for(lambda: f"{t} 4321" in read_state(state, "wsdisconnect"), T, "the close code")


def test_websocket_hundred_connections(d):
    async def one(i):
        async with websockets.connect(ws_url(d, "/ws/echo")) as ws:
            for k in range(10):
                await ws.send(f"{i}-{k}")
                assert await ws.recv() == f"{i}-{k}"
        return True

    async def go():
        return await asyncio.gather(*(one(i) for i in range(100)))
    assert all(run(go()))


# ---------------------------------------------------------------- frameworks

def test_starlette(d, state):
    r = requests.get(d.url + "/star/", timeout=T)
    assert r.json() == {"hello": "world", "path": "/star/", "greeting": "hello from lifespan"}
    r = requests.get(d.url + "/star/stream", timeout=T)
    assert r.text == "".join(f"line {i}\n" for i in range(5))
    data = os.urandom(2 * 1024 * 1024)
    r = requests.post(d.url + "/star/upload", data=iter([data[:1 << 20], data[1 << 20:]]),
                      timeout=30 * SLOW).json()
    assert r == {"sha256": hashlib.sha256(data).hexdigest(), "len": len(data)}
    t = token()
    assert requests.get(d.url + "/star/background?t=" + t, timeout=T).text == "queued"
    wait_for(lambda: t in read_state(state, "background"), T, "the background task")

    async def go():
        async with websockets.connect(ws_url(d, "/star/ws")) as ws:
            await ws.send("hi")
            return await ws.recv()
    assert run(go()) == "star:hi"


def test_fastapi(d):
    r = requests.post(d.url + "/fast/items", json={"name": "pen", "price": 1.5, "tags": ["a"]},
                      timeout=T)
    assert (r.status_code, r.json()) == (200, {"name": "pen", "total": 3.0, "tags": ["a"]})
    r = requests.post(d.url + "/fast/items", json={"name": "pen"}, timeout=T)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "price"
    assert requests.get(d.url + "/fast/items/7?q=x", timeout=T).json() == {"item_id": 7, "q": "x"}


def test_django(tutti):
    d = tutti({"modules": ["websocket", "asgi"], "error_log": "error.log",
               "python": {"path": [str(APPS)], "env": {"DJANGO_SETTINGS_MODULE": "djasgi"}},
               "servers": [{"routes": [{"match": "/", "asgi": "djasgi:application"}]}]})
    r = requests.get(d.url + "/hello", timeout=T)
    assert (r.status_code, r.text) == (200, "hello from django asgi")
    assert requests.get(d.url + "/info?q=1", timeout=T).json() == \
        {"path": "/info", "method": "GET", "q": "1"}
    assert requests.get(d.url + "/nothing", timeout=T).status_code == 404


def test_the_shared_worker_survived_everything(d):
    assert_same_workers(d)
    assert requests.get(d.url + "/static/hello.txt", timeout=T).text == "static hello\n"
    assert "Segmentation" not in d.stderr_text() + d.error_log_text()


# ---------------------------------------------------------------- start-up and lifespan

def one_app(tmp_path, app, **route):
    cfg = {"modules": ["websocket", "asgi"], "error_log": "error.log",
           "python": {"path": [str(APPS)], "env": {"ASGI_TEST_STATE": str(tmp_path)}},
           "servers": [{"listen": [f"127.0.0.1:{free_port()}"],
                        "routes": [{"match": "/", "asgi": {"app": app, **route}}]}]}
    (tmp_path / "tutti.yaml").write_text(to_yaml(cfg))
    return run_tutti(["-c", "tutti.yaml"], tmp_path, timeout=30)


@pytest.mark.parametrize("app,route,why", [
    ("nosuchmodule:app", {}, "ModuleNotFoundError: No module named 'nosuchmodule'"),
    ("brokensyntax:app", {}, "SyntaxError"),
    ("rawapp:nothere", {}, "AttributeError"),
    ("lsfail:raises", {"lifespan": "on"}, "lifespan startup failed: RuntimeError: database unreachable"),
    ("lsfail:refuses", {}, "lifespan startup failed: no config found"),
])
def test_start_up_failures(tmp_path, app, route, why):
    res = one_app(tmp_path, app, **route)
    out = res.stderr + res.stdout
    assert res.returncode == 2, out
    # where the app is named in tutti.yaml: "app: VALUE" -> VALUE's line and column
    yaml_lines = (tmp_path / "tutti.yaml").read_text().splitlines()
    line = next(i for i, l in enumerate(yaml_lines, 1) if l.lstrip().startswith("app: "))
    col = yaml_lines[line - 1].index("app: ") + len("app: ") + 1
    lines = [l for l in out.splitlines() if l.startswith("tutti: ") and f"asgi app '{app}'" in l]
    assert lines, out
    assert lines[0].startswith(f"tutti: tutti.yaml:{line}:{col}: asgi app '{app}': "), lines[0]
    assert why in lines[0], lines[0]


def test_lifespan_auto_goes_on_without_it(tutti):
    d = tutti({"modules": ["websocket", "asgi"], "error_log": "error.log",
               "python": {"path": [str(APPS)]},
               "servers": [{"routes": [{"match": "/", "asgi": "lsfail:nolifespan"}]}]})
    assert requests.get(d.url + "/", timeout=T).text == "fine"
    assert "does not support lifespan" in d.error_log_text()


def test_lifespan_shutdown_on_stop_and_reload(tutti, tmp_path):
    st = tmp_path / "ls"
    st.mkdir()
    d = tutti({"modules": ["websocket", "asgi"], "error_log": "error.log",
               "python": {"path": [str(APPS)], "env": {"ASGI_TEST_STATE": str(st)}},
               "servers": [{"routes": [{"match": "/", "asgi": "rawapp:app"}]}]})
    first = d.worker_pids()[0]
    wait_for(lambda: f"startup {first}" in read_state(st, "lifespan"), T, "startup")
    d.reload()
    wait_for(lambda: f"shutdown {first}" in read_state(st, "lifespan"), 10 * SLOW,
             "the old worker's shutdown")
    second = [p for p in d.worker_pids() if p != first][0]
    assert requests.get(d.url + "/status?200", timeout=T).status_code == 200
    d.signal(signal.SIGQUIT)
    assert d.wait_exit(15) == 0
    assert f"shutdown {second}" in read_state(st, "lifespan")


def test_graceful_reload_ends_a_stream_with_http_disconnect(tutti, tmp_path):
    """A worker stopping gracefully (HUP) tells a streaming app http.disconnect:
    the app ends its response (the client sees a whole chunked body) instead
    of holding the old worker until shutdown_timeout."""
    st = tmp_path / "ev"
    st.mkdir()
    d = tutti({"modules": ["websocket", "asgi"], "error_log": "error.log",
               "python": {"path": [str(APPS)], "env": {"ASGI_TEST_STATE": str(st)}},
               "servers": [{"routes": [{"match": "/", "asgi": "rawapp:app"}]}]})
    t = token()
    with Conn(d.port, timeout=20 * SLOW) as c:
        c.send(f"GET /events?{t} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        time.sleep(0.3)
        d.reload()
        r = c.read_response()           # a whole response: the chunked body ended
    assert r.status == 200 and r.body.endswith(b"event: bye\n\n"), r.body[-200:]
    assert f"http.disconnect {t}" in read_state(st, "events")


@pytest.mark.parametrize("route,message", [
    ({"app": "rawapp"}, "expected module:callable"),
    ({"app": "rawapp:app", "lifespan": "maybe"}, "'lifespan: maybe'"),
    ({"app": "rawapp:app", "root_path": "api"}, "'root_path: api'"),
    ({"app": "rawapp:app", "threads": 4}, "unknown key 'threads'"),
    ({"lifespan": "on"}, "'asgi' needs 'app'"),
])
def test_config_errors(tmp_path, route, message):
    cfg = {"modules": ["websocket", "asgi"],
           "servers": [{"listen": [f"127.0.0.1:{free_port()}"],
                        "routes": [{"match": "/", "asgi": route}]}]}
    (tmp_path / "tutti.yaml").write_text(to_yaml(cfg))
    res = run_tutti(["-t", "-c", "tutti.yaml"], tmp_path)
    out = res.stderr + res.stdout
    assert res.returncode == 1 and "tutti.yaml:" in out and message in out, out


def test_asgi_needs_websocket_first(tmp_path):
    (tmp_path / "tutti.yaml").write_text(
        f"modules: [asgi]\nservers:\n  - listen: 127.0.0.1:{free_port()}\n    routes:\n"
        "      - match: /\n        asgi: rawapp:app\n")
    res = run_tutti(["-t", "-c", "tutti.yaml"], tmp_path)
    assert res.returncode == 1
    assert "module 'asgi' needs module 'websocket'" in res.stderr + res.stdout


def test_two_workers_each_run_lifespan_and_serve(tutti, tmp_path):
    st = tmp_path / "w2"
    st.mkdir()
    d = tutti({"modules": ["websocket", "asgi"], "workers": 2, "error_log": "error.log",
               "python": {"path": [str(APPS)], "env": {"ASGI_TEST_STATE": str(st)}},
               "servers": [{"routes": [{"match": "/", "asgi": "rawapp:app"}]}]})
    d.wait_workers(2)
    pids = set(d.worker_pids())
    wait_for(lambda: all(f"startup {p}" in read_state(st, "lifespan") for p in pids), T,
             "a lifespan startup in each worker")
    with ThreadPoolExecutor(8) as ex:
        codes = list(ex.map(lambda _: requests.get(d.url + "/status?200", timeout=T).status_code,
                            range(200)))
    assert codes == [200] * 200

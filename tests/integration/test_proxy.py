"""The proxy module through the real daemon, against real upstreams started
here: tests/apps/proxy/backend.py (a threaded http.server that reports what
it got), gunicorn with a WSGI app, and tutti itself."""
import asyncio
import email.utils
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import websockets

import harness
import rawhttp
from harness import SANITIZED, SLOW, assert_same_workers, config_error_line, rss_kb, run_tutti, wait_for

T = 10 * SLOW
BACKEND = Path(__file__).resolve().parent.parent / "apps" / "proxy" / "backend.py"
PATTERN = bytes(range(256)) * 256


# ---------------------------------------------------------------- upstreams

class Backend:
    """backend.py in a process of its own, stopped by PID."""

    def __init__(self, name, where=None, idle=None):
        self.name = name
        self.where = where or str(harness.free_port())
        self.idle = idle
        self.proc = None
        self.start()

    def start(self):
        extra = [str(self.idle)] if self.idle else []
        self.proc = subprocess.Popen([sys.executable, str(BACKEND), self.name, self.where, *extra],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL)
        line = self.proc.stdout.readline()
        assert line.strip() == b"ready", f"backend {self.name} did not start"

    @property
    def addr(self):
        if self.where.startswith(("unix:", "[")):
            return self.where
        return f"127.0.0.1:{self.where}"

    @property
    def url(self):
        return f"http://{self.addr}"

    def conns(self):
        return requests.get(self.url + "/conns", timeout=T).json()["conns"]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def backends():
    made = []

    def make(name, where=None, idle=None):
        b = Backend(name, where, idle)
        made.append(b)
        return b
    yield make
    for b in made:
        b.stop()


@pytest.fixture
def dead():
    """dead() -> "127.0.0.1:PORT" where nothing listens (connections are
    refused); the port is held (bound, not listening) so nobody takes it."""
    held = []

    def make():
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        held.append(s)
        return f"127.0.0.1:{s.getsockname()[1]}"
    yield make
    for s in held:
        s.close()


def get_from(port, path, source):
    """GET path on a new connection made from the address source."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=T, source_address=(source, 0))
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.getheader("X-Backend"), r.read()
    finally:
        c.close()


def read_until_close(sock):
    data = b""
    while True:
        try:
            d = sock.recv(65536)
        except ConnectionResetError:
            d = b""
        if not d:
            return data
        data += d


@pytest.fixture(scope="module")
def pair():
    a, b = Backend("a"), Backend("b")
    yield a, b
    a.stop()
    b.stop()


def proxy_config(proxy, **top):
    cfg = {"modules": ["proxy", "websocket", "static"], "limits": {"max_body_size": "1GB"},
           "servers": [{"routes": [{"match": "/", "proxy": proxy}]}]}
    cfg.update(top)
    return cfg


def backend_of(r):
    return r.headers.get("X-Backend")


def log_fields(line):
    """The key=value fields a module added after the request time."""
    rest = harness.parse_combined(line)["rest"]
    out = {}
    parts = rest.strip()
    while parts:
        key, _, parts = parts.partition("=")
        if parts.startswith('"'):
            end = parts.index('"', 1)
            out[key.split()[-1]] = parts[1:end]
            parts = parts[end + 1:].strip()
        else:
            value, _, parts = parts.partition(" ")
            out[key.split()[-1]] = value
    return out


@pytest.fixture(scope="module")
def shared(shared_daemon, pair):
    """One daemon with a route per behaviour, over the two backends."""
    a, b = pair
    routes = [
        {"match": "/rr/", "proxy": {"upstreams": [a.addr, b.addr]}},
        {"match": "/strip/", "proxy": {"upstreams": [a.addr], "path": "/"}},
        {"match": "/swap/", "proxy": {"upstreams": [a.addr], "path": "/v2/"}},
        {"match": "/edit/", "proxy": {
            "upstreams": [a.addr], "via": True, "path": "/",
            "headers": {"X-Secret": None, "X-Added": "on", "X-Client": "$remote_addr via $scheme",
                        "Cookie": ""},
            "response_headers": {"X-Powered-By": None, "X-Frame-Options": "DENY"}}},
        {"match": "/noforward/", "proxy": {"upstreams": [a.addr], "forwarded": False}},
        {"match": "/hostup/", "proxy": {"upstreams": [a.addr], "host": "upstream"}},
        {"match": "/hostlit/", "proxy": {"upstreams": [a.addr], "host": "api.internal"}},
        {"match": "/sse/", "proxy": {"upstreams": [a.addr], "buffering": False, "path": "/"}},
        {"match": "/timeout/", "proxy": {"upstreams": [a.addr], "read_timeout": "1s",
                                         "path": "/"}},
        {"match": "/bad/", "proxy": {"upstreams": [a.addr], "path": "/"}},
        {"match": "/vars/", "proxy": {"upstreams": [a.addr], "path": "/", "headers": {
            "X-Vars": "$remote_addr:$remote_port|$host|$scheme|$server_port|$request_uri"}}},
        {"match": "/short/", "proxy": a.addr},
        {"match": "/scheme/", "proxy": {"upstreams": ["http://" + a.addr], "path": "/"}},
        {"match": "/", "proxy": {"upstreams": [a.addr]}},
    ]
    d = shared_daemon({"modules": ["proxy", "websocket"],
                       "limits": {"max_body_size": "1GB"},
                       "servers": [{"routes": routes}]})
    d.first_workers = d.worker_pids()
    return d


# ---------------------------------------------------------------- what the upstream sees

def test_round_robin_alternates(shared):
    seen = [backend_of(requests.get(shared.url + "/rr/echo", timeout=T)) for _ in range(10)]
    assert sorted(seen) == ["a"] * 5 + ["b"] * 5, seen
    assert all(seen[i] != seen[i + 1] for i in range(9)), seen


def test_forwarded_headers(shared):
    r = requests.get(shared.url + "/echo?x=1", timeout=T,
                     headers={"X-Forwarded-For": "203.0.113.7", "X-Real-IP": "1.2.3.4",
                              "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil"})
    seen = r.json()
    h = dict(seen["headers"])
    assert seen["path"] == "/echo?x=1"
    assert h["X-Forwarded-For"] == "203.0.113.7, 127.0.0.1"
    assert h["X-Real-IP"] == "127.0.0.1"
    assert h["X-Forwarded-Proto"] == "http"         # a client cannot claim https
    assert h["X-Forwarded-Host"] == f"127.0.0.1:{shared.port}"
    assert h["Host"] == f"127.0.0.1:{shared.port}"
    names = [k.lower() for k, _ in seen["headers"]]
    assert names.count("x-forwarded-for") == 1 and names.count("x-real-ip") == 1


def test_forwarded_off(shared):
    h = dict(requests.get(shared.url + "/noforward/echo", timeout=T,
                          headers={"X-Forwarded-For": "203.0.113.7"}).json()["headers"])
    assert h.get("X-Forwarded-For") == "203.0.113.7"    # passed as the client sent it
    assert "X-Real-IP" not in h and "X-Forwarded-Proto" not in h


def test_host_modes(shared, pair):
    a, _ = pair
    h = dict(requests.get(shared.url + "/hostup/echo", timeout=T).json()["headers"])
    assert h["Host"] == a.addr
    h = dict(requests.get(shared.url + "/hostlit/echo", timeout=T).json()["headers"])
    assert h["Host"] == "api.internal"


def test_header_edits_both_ways(shared):
    r = requests.get(shared.url + "/edit/hop", timeout=T,
                     headers={"X-Secret": "s3cret", "Cookie": "sid=1", "X-Other": "kept"})
    assert r.status_code == 200
    assert "X-Powered-By" not in r.headers
    # set replaces the upstream's SAMEORIGIN, it does not add a second one
    assert r.raw.headers.getlist("X-Frame-Options") == ["DENY"]
    assert r.headers["Via"] == "1.1 tutti"
    assert r.headers["X-Kept"] == "yes"
    assert r.raw.headers.getlist("Set-Cookie") == ["a=1", "b=2"]
    seen = requests.get(shared.url + "/edit/echo", timeout=T,
                        headers={"X-Secret": "s3cret", "Cookie": "sid=1",
                                 "X-Other": "kept", "X-Added": "mine"}).json()
    h = dict(seen["headers"])
    assert "X-Secret" not in h and "Cookie" not in h
    # set replaces what the client sent
    assert [v for k, v in seen["headers"] if k.lower() == "x-added"] == ["on"]
    assert h["X-Other"] == "kept"
    assert h["X-Client"] == "127.0.0.1 via http"
    assert h["Via"] == "1.1 tutti"


def test_hop_by_hop_stripped_both_ways(shared):
    with socket.create_connection(("127.0.0.1", shared.port), timeout=T) as s:
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Foo\r\n"
                  b"X-Foo: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n"
                  b"Proxy-Connection: keep-alive\r\nTrailer: X-Sum\r\nUpgrade: h2c\r\n"
                  b"X-Bar: 2\r\n\r\n")
        data = b""
        while b"}" not in data:
            data += s.recv(65536)
    body = json.loads(data.split(b"\r\n\r\n", 1)[1])
    names = {k.lower() for k, _ in body["headers"]}
    assert "x-bar" in names
    for gone in ("x-foo", "keep-alive", "te", "proxy-connection", "connection", "trailer",
                 "upgrade"):
        assert gone not in names, body["headers"]
    r = requests.get(shared.url + "/hop", timeout=T)
    assert "X-Secret-Hop" not in r.headers and "Keep-Alive" not in r.headers
    assert r.headers["Server"] == "tutti"            # not the upstream's
    assert r.headers["X-Powered-By"] == "backend"     # no edit on this route
    # the same with a list of names and the other hop-by-hop headers
    r = requests.get(shared.url + "/headers", timeout=T, params=[
        ("h", "Connection: X-One, X-Two"), ("h", "X-One: 1"), ("h", "X-Two: 2"),
        ("h", "Keep-Alive: timeout=5, max=100"), ("h", "Proxy-Connection: keep-alive"),
        ("h", "Trailer: X-Sum"), ("h", "Upgrade: h2c"), ("h", "X-Stays: 3")])
    assert (r.status_code, r.text) == (200, "headers")
    names = {k.lower() for k in r.headers}
    for gone in ("x-one", "x-two", "keep-alive", "proxy-connection", "trailer", "upgrade"):
        assert gone not in names, r.headers
    assert r.headers["X-Stays"] == "3" and r.headers.get("Connection", "keep-alive") == "keep-alive"


def test_date_and_server_are_tuttis(shared):
    r = requests.get(shared.url + "/echo", timeout=T)
    assert r.raw.headers.getlist("Server") == ["tutti"]
    dates = r.raw.headers.getlist("Date")
    assert len(dates) == 1 and dates[0] != "Sat, 01 Jan 2000 00:00:00 GMT", dates
    assert abs(email.utils.parsedate_to_datetime(dates[0]).timestamp() - time.time()) < 600


def test_header_variables(shared):
    c = http.client.HTTPConnection("127.0.0.1", shared.port, timeout=T)
    try:
        c.connect()
        my_port = c.sock.getsockname()[1]
        c.request("GET", "/vars/echo?a=1&b=%20", headers={"Host": "example.test"})
        seen = json.loads(c.getresponse().read())
    finally:
        c.close()
    assert seen["path"] == "/echo?a=1&b=%20"
    assert dict(seen["headers"])["X-Vars"] == \
        f"127.0.0.1:{my_port}|example.test|http|{shared.port}|/vars/echo?a=1&b=%20"


def test_short_form_and_http_scheme(shared):
    # proxy: ADDRESS: the path goes unchanged
    r = requests.get(shared.url + "/short/echo?z=9", timeout=T)
    assert backend_of(r) == "a" and r.json()["path"] == "/short/echo?z=9"
    r = requests.get(shared.url + "/scheme/echo", timeout=T)
    assert backend_of(r) == "a" and r.json()["path"] == "/echo"


def test_path_strip_and_replace(shared):
    assert requests.get(shared.url + "/strip/echo?q=1", timeout=T).json()["path"] == "/echo?q=1"
    assert requests.get(shared.url + "/swap/echo?q=%20", timeout=T).json()["path"] == \
        "/v2/echo?q=%20"
    # the rest of the path passes as the client wrote it
    assert requests.get(shared.url + "/strip/echo/a%20b", timeout=T).json()["path"] == \
        "/echo/a%20b"


def test_post_body_and_chunked_upload(shared):
    data = os.urandom(300_000)
    r = requests.post(shared.url + "/echo", data=data, timeout=T)
    assert (r.json()["body_len"], r.json()["body_sha"]) == (len(data), hashlib.sha256(data).hexdigest())
    h = dict(r.json()["headers"])
    assert h["Content-Length"] == str(len(data))

    def gen():
        for i in range(0, len(data), 7000):
            yield data[i:i + 7000]
    r = requests.post(shared.url + "/echo", data=gen(), timeout=T)
    seen = r.json()
    assert (seen["body_len"], seen["body_sha"]) == (len(data), hashlib.sha256(data).hexdigest())
    assert dict(seen["headers"])["Transfer-Encoding"] == "chunked"


def test_expect_100_continue(shared):
    with socket.create_connection(("127.0.0.1", shared.port), timeout=T) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue")
        s.sendall(b"hello")
        data = b""
        while b"}" not in data:
            data += s.recv(65536)
    seen = json.loads(data.split(b"\r\n\r\n", 1)[1])
    assert seen["body_len"] == 5
    assert "Expect" not in dict(seen["headers"])


def test_head_204_304_and_statuses(shared):
    r = requests.head(shared.url + "/echo", timeout=T)
    assert r.status_code == 200 and r.content == b""
    assert int(r.headers["Content-Length"]) > 0
    r = requests.get(shared.url + "/status/204", timeout=T)
    assert (r.status_code, r.content) == (204, b"")
    r = requests.get(shared.url + "/status/304", timeout=T)
    assert (r.status_code, r.content) == (304, b"")
    r = requests.get(shared.url + "/status/418", timeout=T)
    assert r.status_code == 418 and r.json()["status"] == 418
    r = requests.get(shared.url + "/status/503", timeout=T)   # passed on, not retried
    assert r.status_code == 503


def test_close_delimited_and_chunked_responses(shared):
    r = requests.get(shared.url + "/close", timeout=T)
    assert r.content == b"until the close " * 1000
    assert r.headers.get("Transfer-Encoding") == "chunked"
    r = requests.get(shared.url + "/bigchunked?mb=3", timeout=T)
    assert r.content == (PATTERN * 48)[: 3 << 20]


def test_interim_1xx_skipped(shared):
    with rawhttp.Conn(shared.port, timeout=T) as c:
        c.send(b"GET /early HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response(interim=True)      # the first answer, 1xx or not
        assert r.status == 200, r.raw_head
        assert r.header("Link") is None
        assert json.loads(r.body)["path"] == "/early"


def test_http10_client_gets_a_close_delimited_body(shared):
    for path in ("/bigchunked?mb=0.25", "/close"):
        r = rawhttp.get(shared.port, path, version="HTTP/1.0")
        assert r.status == 200
        assert "chunked" not in (r.header("Transfer-Encoding") or ""), r.raw_head
        want = PATTERN * 4 if path.startswith("/big") else b"until the close " * 1000
        assert r.body == want


def test_content_length_kept(shared):
    with requests.get(shared.url + "/big?mb=1", stream=True, timeout=T) as r:
        assert r.headers["Content-Length"] == str(1 << 20)
        assert "Transfer-Encoding" not in r.headers
        assert r.raw.read() == (PATTERN * 16)
    r = requests.post(shared.url + "/echo", data=b"x" * 1000, timeout=T)
    assert r.headers["Content-Length"] == str(len(r.content))


def test_upstream_close_keeps_the_client_connection(shared):
    # the upstream's Connection: close is about its own connection
    with rawhttp.Conn(shared.port, timeout=T) as c:
        c.send(b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        assert r.body == b"until the close " * 1000 and "close" not in r.connection_tokens()
        c.send(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and json.loads(r.body)["path"] == "/echo"


def test_keepalive_reuse(shared, pair):
    a, _ = pair
    before = a.conns()
    s = requests.Session()
    for _ in range(200):
        assert s.get(shared.url + "/echo", timeout=T).status_code == 200
    opened = a.conns() - before
    assert opened <= 5, f"{opened} upstream connections for 200 requests"


@pytest.mark.parametrize("route", ["/sse/", "/"])
def test_sse_event_by_event(shared, route):
    """buffering: false (/sse/) and the default alike: each event is readable
    before the upstream sends the next one."""
    with requests.get(shared.url + route + "sse?n=4&ms=500", stream=True, timeout=T) as r:
        assert r.headers["Content-Type"] == "text/event-stream"
        got = []
        for line in r.iter_lines(chunk_size=1):
            if line.startswith(b"data: "):
                got.append(time.monotonic())
        assert len(got) == 4
    # each event came when it was sent, not all at the end
    assert all(got[i + 1] - got[i] > 0.25 for i in range(3)), got


def test_read_timeout_504_then_next_request_fine(shared):
    t = time.monotonic()
    r = requests.get(shared.url + "/timeout/slow?ms=3000", timeout=T)
    took = time.monotonic() - t
    assert r.status_code == 504 and r.text == "504 Gateway Timeout\n"
    assert 0.9 < took < 2.5 * SLOW, took
    assert requests.get(shared.url + "/timeout/echo", timeout=T).status_code == 200


def test_upstream_cuts_body(shared):
    with socket.create_connection(("127.0.0.1", shared.port), timeout=T) as s:
        s.sendall(b"GET /cut HTTP/1.1\r\nHost: x\r\n\r\n")
        data = read_until_close(s)
    head, body = data.split(b"\r\n\r\n", 1)
    assert b"Content-Length: 1000" in head
    assert len(body) == 500          # cut, never completed with a fake end


def test_read_timeout_mid_body_cuts(shared):
    with socket.create_connection(("127.0.0.1", shared.port), timeout=T) as s:
        t = time.monotonic()
        s.sendall(b"GET /timeout/stall HTTP/1.1\r\nHost: x\r\n\r\n")
        data = read_until_close(s)
        took = time.monotonic() - t
    head, body = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 ") and b"Content-Length: 1000" in head
    assert body == b"x" * 500
    assert 0.8 < took < 5 * SLOW, took


def test_upstream_cuts_chunked_body(shared):
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(shared.url + "/cutchunked", timeout=T).content
    assert requests.get(shared.url + "/echo", timeout=T).status_code == 200


@pytest.mark.parametrize("what", ["halfhead", "empty"])
def test_upstream_closing_before_a_whole_head_502(shared, what):
    r = requests.get(shared.url + "/bad/" + what, timeout=T)
    assert r.status_code == 502 and r.text == "502 Bad Gateway\n"


def test_malformed_upstream_502(shared):
    r = requests.get(shared.url + "/malformed", timeout=T)
    assert r.status_code == 502 and r.text == "502 Bad Gateway\n"
    assert "malformed response head" in shared.error_log_text()


def test_websocket_through_the_proxy(shared):
    async def talk():
        uri = shared.url.replace("http://", "ws://") + "/ws"
        async with websockets.connect(uri, max_size=None, compression=None) as ws:
            h = ws.response_headers
            assert h["X-Backend"] == "a"
            assert h["Upgrade"].lower() == "websocket"
            assert "upgrade" in h["Connection"].lower()
            await ws.send("hello")
            assert await asyncio.wait_for(ws.recv(), T) == "hello"
            await ws.send("é" * 500_000)
            assert await asyncio.wait_for(ws.recv(), T) == "é" * 500_000
            await ws.send(b"\x00\xff" * 500_000)
            assert await asyncio.wait_for(ws.recv(), T) == b"\x00\xff" * 500_000
    asyncio.run(talk())
    line = [l for l in shared.wait_access_lines(1) if '"GET /ws ' in l]
    assert line and harness.parse_combined(line[-1])["status"] == "101"


def test_access_log_fields(shared, pair):
    a, _ = pair
    requests.get(shared.url + "/echo?log=1", timeout=T)
    line = wait_for(lambda: [l for l in shared.access_lines() if "/echo?log=1" in l],
                    5 * SLOW, "the access line")[-1]
    f = log_fields(line)
    assert f["upstream_addr"] == a.addr and f["upstream_status"] == "200"
    assert float(f["upstream_time"]) < 5
    assert len(f["upstream_time"].split(".")[1]) == 3       # seconds with milliseconds
    requests.get(shared.url + "/slow?ms=400&log=2", timeout=T)
    line = wait_for(lambda: [l for l in shared.access_lines() if "log=2" in l],
                    5 * SLOW, "the access line")[-1]
    assert 0.35 < float(log_fields(line)["upstream_time"]) < 5


def test_client_leaving_mid_download_keeps_the_worker(shared):
    s = requests.Session()
    for i in range(3):
        with socket.create_connection(("127.0.0.1", shared.port), timeout=T) as c:
            c.sendall(b"GET /big?mb=50 HTTP/1.1\r\nHost: x\r\n\r\n")
            c.recv(65536)
        # the upstream connection of the abandoned download is not reused:
        # the next requests get their own answers, whole
        for _ in range(3):
            r = s.get(shared.url + f"/echo?after={i}", timeout=T)
            assert r.status_code == 200 and r.json()["path"] == f"/echo?after={i}"
    assert shared.worker_pids() == shared.first_workers


def test_shared_daemon_kept_its_workers(shared):
    assert_same_workers(shared)


# ---------------------------------------------------------------- balancing and failures

def test_weights_and_smooth_order(tutti, backends):
    a, b, c = backends("a"), backends("b"), backends("c")
    d = tutti(proxy_config({"upstreams": [{"address": a.addr, "weight": 5}, b.addr, c.addr]}))
    seen = "".join(backend_of(requests.get(d.url + "/echo", timeout=T)) for _ in range(14))
    assert seen == "aabacaa" * 2, seen


def test_least_conn_avoids_the_busy_one(tutti, backends):
    a, b = backends("a"), backends("b")
    d = tutti(proxy_config({"upstreams": [a.addr, b.addr], "balance": "least_conn"}))
    # two slow requests pile up; which upstreams they sit on decides nothing
    # here: count the fast ones made while one upstream is busy
    slow = threading.Thread(target=lambda: requests.get(d.url + "/slow?ms=1500", timeout=T))
    slow.start()
    time.sleep(0.3)
    busy = None
    fast = [backend_of(requests.get(d.url + "/echo", timeout=T)) for _ in range(6)]
    slow.join()
    busy = {"a", "b"} - set(fast)
    assert len(set(fast)) == 1 and len(busy) == 1, fast


def test_ip_hash_is_stable(tutti, backends):
    bs = [backends(n) for n in "abcd"]
    d = tutti(proxy_config({"upstreams": [b.addr for b in bs], "balance": "ip_hash"}))
    seen = {backend_of(requests.get(d.url + "/echo", timeout=T)) for _ in range(10)}
    assert len(seen) == 1, seen
    # per client address, on new connections each time
    picks = {}
    for src in ("127.0.0.1", "127.0.0.2"):
        seen = set()
        for _ in range(6):
            status, who, body = get_from(d.port, "/echo", src)
            assert status == 200
            assert dict(json.loads(body)["headers"])["X-Real-IP"] == src
            seen.add(who)
        assert len(seen) == 1, (src, seen)
        picks[src] = seen.pop()
    # a client whose upstream is gone is served by another one (GETs are
    # retried); the other client keeps its own while that one is up
    victim = next(b for b in bs if b.name == picks["127.0.0.2"])
    victim.stop()
    for _ in range(6):
        status, who, _ = get_from(d.port, "/echo", "127.0.0.2")
        assert status == 200 and who != victim.name
    if picks["127.0.0.1"] != victim.name:
        assert {get_from(d.port, "/echo", "127.0.0.1")[1] for _ in range(6)} == \
            {picks["127.0.0.1"]}


def test_dead_upstream_502_fast(tutti):
    dead = harness.free_port()
    d = tutti(proxy_config({"upstreams": [f"127.0.0.1:{dead}"]}))
    t = time.monotonic()
    r = requests.get(d.url + "/x", timeout=T)
    assert r.status_code == 502 and time.monotonic() - t < 1 * SLOW
    assert f"proxy 127.0.0.1:{dead}: connect: Connection refused (GET /x)" in d.stderr_text()
    assert log_fields(d.wait_access_lines(1)[-1])["upstream_status"] == "502"


def test_killed_upstream_traffic_moves(tutti, backends):
    a, b, c = backends("a"), backends("b"), backends("c")
    d = tutti(proxy_config({"upstreams": [a.addr, b.addr, c.addr], "keepalive": 0}))
    s = requests.Session()
    for _ in range(6):
        assert s.get(d.url + "/echo", timeout=T).status_code == 200
    b.stop()
    before = len(d.wait_access_lines(6))
    codes = [s.get(d.url + "/echo", timeout=T) for _ in range(30)]
    assert all(r.status_code == 200 for r in codes), [r.status_code for r in codes]
    assert {backend_of(r) for r in codes} == {"a", "c"}
    # b was tried once, then left out for fail_timeout
    tried_b = [l for l in d.wait_access_lines(36)[before:] if b.addr in l]
    assert len(tried_b) == 1, tried_b
    f = log_fields(tried_b[0])
    assert f["upstream_addr"].startswith(b.addr + ", ") and f["upstream_status"] == "502, 200"


def test_backup_only_when_primaries_are_down(tutti, backends):
    a, b = backends("a"), backends("b")
    d = tutti(proxy_config({"upstreams": [a.addr, {"address": b.addr, "backup": True}],
                            "keepalive": 0}))
    assert {backend_of(requests.get(d.url + "/echo", timeout=T)) for _ in range(5)} == {"a"}
    a.stop()
    assert {backend_of(requests.get(d.url + "/echo", timeout=T)) for _ in range(5)} == {"b"}


def test_fail_timeout_brings_it_back(tutti, backends):
    a, b = backends("a"), backends("b")
    port_b = b.where
    d = tutti(proxy_config({"upstreams": [a.addr, {"address": b.addr, "fail_timeout": "2s"}],
                            "keepalive": 0}))
    b.stop()
    t = time.monotonic()
    for _ in range(6):
        assert backend_of(requests.get(d.url + "/echo", timeout=T)) == "a"
    assert time.monotonic() - t < 1.9, "too slow to stay within fail_timeout"
    # b was tried once (a connection refused, then a), then left alone
    lines = d.wait_access_lines(6)
    assert len([l for l in lines if b.addr in l]) == 1, lines
    backends("b", port_b)
    time.sleep(max(0.0, 2.3 - (time.monotonic() - t)))
    seen = {backend_of(requests.get(d.url + "/echo", timeout=T)) for _ in range(6)}
    assert seen == {"a", "b"}, seen


def test_max_fails(tutti, backends, dead):
    a = backends("a")
    three, never = dead(), dead()
    d = tutti({"modules": ["proxy"], "servers": [{"routes": [
        {"match": "/three/", "proxy": {"upstreams": [
            a.addr, {"address": three, "max_fails": 3, "fail_timeout": "30s"}], "keepalive": 0}},
        {"match": "/never/", "proxy": {"upstreams": [
            a.addr, {"address": never, "max_fails": 0}], "keepalive": 0}}]}]})
    for route in ("three", "never"):
        for _ in range(16):
            r = requests.get(f"{d.url}/{route}/echo", timeout=T)
            assert (r.status_code, backend_of(r)) == (200, "a")
    lines = d.wait_access_lines(32)
    tried = [log_fields(l)["upstream_addr"] for l in lines if "/three/" in l]
    assert len([x for x in tried if three in x]) == 3, tried
    # max_fails: 0 never leaves it out: every other request tries it first
    tried = [log_fields(l)["upstream_addr"] for l in lines if "/never/" in l]
    assert len([x for x in tried if x == f"{never}, {a.addr}"]) >= 6, tried


def test_next_upstream_http_502_503(tutti, backends):
    a, b = backends("a"), backends("b")
    a_kept = {"address": a.addr, "max_fails": 0}
    d = tutti({"modules": ["proxy"], "servers": [{"routes": [
        {"match": "/on/", "proxy": {"upstreams": [a_kept, b.addr], "path": "/",
                                    "next_upstream": ["error", "timeout", "http_502", "http_503"]}},
        {"match": "/default/", "proxy": {"upstreams": [a_kept, b.addr], "path": "/"}}]}]})
    # a answers 503 (then 502): listed, the request goes on to b
    for status in (503, 502):
        for _ in range(4):
            r = requests.get(f"{d.url}/on/failif?name=a&status={status}", timeout=T)
            assert (r.status_code, backend_of(r)) == (200, "b"), r.text
    fields = [log_fields(l) for l in d.wait_access_lines(8)]
    retried = {f["upstream_status"] for f in fields if "," in f["upstream_status"]}
    assert retried == {"503, 200", "502, 200"}, fields
    assert all(f["upstream_addr"] == f"{a.addr}, {b.addr}" for f in fields
               if "," in f["upstream_status"]), fields
    # every upstream answers 503: the client gets the last answer, both were tried
    r = requests.get(d.url + "/on/status/503", timeout=T)
    assert r.status_code == 503
    assert log_fields(d.wait_access_lines(9)[-1])["upstream_status"] == "503, 503"
    # not listed (the default): a's 503 is the answer
    got = [requests.get(f"{d.url}/default/failif?name=a&status=503", timeout=T).status_code
           for _ in range(4)]
    assert sorted(got) == [200, 200, 503, 503], got


def test_next_upstream_off_and_tries(tutti, backends, dead):
    a = backends("a")
    d1, d2, d3, d4 = dead(), dead(), dead(), dead()

    def kept(x):
        return {"address": x, "max_fails": 0}
    d = tutti({"modules": ["proxy"], "servers": [{"routes": [
        {"match": "/off/", "proxy": {"upstreams": [kept(d1), a.addr], "next_upstream": "off"}},
        {"match": "/two/", "proxy": {"upstreams": [kept(d2), kept(d3), kept(d4)],
                                     "next_upstream_tries": 2}},
        {"match": "/each/", "proxy": {"upstreams": [kept(d2), kept(d3), kept(d4)]}}]}]})
    got = sorted(requests.get(d.url + "/off/echo", timeout=T).status_code for _ in range(4))
    assert got == [200, 200, 502, 502], got
    for route, n in (("two", 2), ("each", 3)):
        for _ in range(3):
            assert requests.get(f"{d.url}/{route}/x", timeout=T).status_code == 502
    fields = [log_fields(l) for l in d.wait_access_lines(10)]
    assert all("," not in f["upstream_addr"] for f in fields[:4]), fields
    for f in fields[4:7]:
        assert len(f["upstream_addr"].split(", ")) == 2, f
        assert f["upstream_status"] == "502, 502", f
    for f in fields[7:]:
        assert sorted(f["upstream_addr"].split(", ")) == sorted([d2, d3, d4]), f


def stuck_listener():
    """A listening socket whose accept queue is full: a connect to it hangs
    (the kernel drops the SYNs), as to a host that does not answer."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    fillers = []
    for _ in range(4):
        c = socket.socket()
        c.settimeout(0.3)
        try:
            c.connect(srv.getsockname())
        except OSError:
            pass
        fillers.append(c)
    return srv, fillers


def test_connect_timeout(tutti, backends):
    a = backends("a")
    socks = []
    try:
        (s1, f1), (s2, f2) = stuck_listener(), stuck_listener()
        socks = [s1, s2, *f1, *f2]
        one = "127.0.0.1:%d" % s1.getsockname()[1]
        two = "127.0.0.1:%d" % s2.getsockname()[1]
        d = tutti({"modules": ["proxy"], "servers": [{"routes": [
            {"match": "/one/", "proxy": {"upstreams": [one], "connect_timeout": "500ms"}},
            {"match": "/", "proxy": {"upstreams": [two, a.addr], "connect_timeout": "500ms"}}]}]})
        t = time.monotonic()
        r = requests.get(d.url + "/one/x", timeout=T)
        took = time.monotonic() - t
        assert r.status_code == 502 and 0.4 < took < 3 * SLOW, (r.status_code, took)
        # with another upstream, the request goes on to it
        for _ in range(4):
            r = requests.get(d.url + "/echo", timeout=T)
            assert (r.status_code, backend_of(r)) == (200, "a")
        fields = [log_fields(l) for l in d.wait_access_lines(5)]
        assert [f["upstream_addr"] for f in fields[1:]].count(f"{two}, {a.addr}") == 1, fields
    finally:
        for s in socks:
            s.close()


def test_send_timeout_504(tutti, backends):
    """An upstream that stops taking the request body: 504 once nothing was
    written for send_timeout."""
    a = backends("a")
    d = tutti(proxy_config({"upstreams": [a.addr], "send_timeout": "1s"}))
    s = socket.create_connection(("127.0.0.1", d.port), timeout=T)
    stop = threading.Event()

    def push():
        chunk = b"z" * 65536
        try:
            while not stop.is_set():
                s.sendall(chunk)
        except OSError:
            pass
    try:
        s.sendall(b"POST /noread?ms=20000 HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: 1000000000\r\n\r\n")
        th = threading.Thread(target=push, daemon=True)
        th.start()
        t = time.monotonic()
        head = b""
        while b"\r\n\r\n" not in head:
            got = s.recv(4096)
            if not got:
                break
            head += got
        took = time.monotonic() - t
    finally:
        stop.set()
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()
    assert head.startswith(b"HTTP/1.1 504 "), head
    assert 0.9 < took < 10 * SLOW, took


def test_post_not_resent_after_a_timeout(tutti, backends):
    a, b = backends("a"), backends("b")
    d = tutti(proxy_config({"upstreams": [a.addr, b.addr], "read_timeout": "1s"}))
    t = time.monotonic()
    r = requests.post(d.url + "/slow?ms=2500", data=b"pay once", timeout=T)
    assert r.status_code == 504 and time.monotonic() - t < 5 * SLOW
    f = log_fields(d.wait_access_lines(1)[-1])
    assert "," not in f["upstream_addr"], f          # one upstream only
    # the other upstream never saw it: one POST in all
    seen = [requests.get(x.url + "/echo", timeout=T).json() for x in (a, b)]
    assert sum(x["conns"] for x in seen) == 3, seen     # 1 proxied + 2 asking


def test_get_goes_to_the_next_after_a_timeout(tutti, backends):
    a, b = backends("a"), backends("b")
    d = tutti(proxy_config({"upstreams": [a.addr, b.addr], "read_timeout": "1s"}))
    r = requests.get(d.url + "/slow?ms=2500", timeout=T)
    assert r.status_code == 504                       # both are slow
    f = log_fields(d.wait_access_lines(1)[-1])
    assert f["upstream_status"] == "504, 504", f


class OneShotUpstream:
    """An upstream that answers one request per connection and then, without
    saying so, closes the connection when the next request arrives on it: as
    an upstream closing its idle keep-alive connection as tutti reuses it.
    It answers with the number of body bytes it read."""

    def __init__(self):
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.srv.settimeout(0.2)
        self.port = self.srv.getsockname()[1]
        self.stop = threading.Event()
        self.accepted = 0
        self.th = threading.Thread(target=self.serve, daemon=True)
        self.th.start()

    def serve(self):
        while not self.stop.is_set():
            try:
                c, _ = self.srv.accept()
            except OSError:
                continue
            self.accepted += 1
            c.settimeout(0.2)
            with c:
                buf = b""
                while b"\r\n\r\n" not in buf and not self.stop.is_set():
                    try:
                        got = c.recv(65536)
                    except socket.timeout:
                        continue
                    except OSError:
                        break
                    if not got:
                        break
                    buf += got
                if b"\r\n\r\n" not in buf:
                    continue
                head, body = buf.split(b"\r\n\r\n", 1)
                want = 0
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        want = int(v)
                while len(body) < want:
                    got = c.recv(65536)
                    if not got:
                        break
                    body += got
                answer = b"ok %d" % len(body)
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                          % (len(answer), answer))
                while not self.stop.is_set():     # the next request: closed unanswered
                    try:
                        if c.recv(65536):
                            break
                    except socket.timeout:
                        continue
                    except OSError:
                        break
                    break

    def close(self):
        self.stop.set()
        self.th.join(timeout=5)
        self.srv.close()


def test_stale_pooled_connection_is_retried(tutti):
    up = OneShotUpstream()
    try:
        d = tutti(proxy_config({"upstreams": [f"127.0.0.1:{up.port}"]}))
        s = requests.Session()
        got = [s.get(d.url + "/x", timeout=T) for _ in range(10)]
        assert [(r.status_code, r.text) for r in got] == [(200, "ok 0")] * 10
        # any method without a body is sent again
        r = s.post(d.url + "/x", data=b"", timeout=T)
        assert (r.status_code, r.text) == (200, "ok 0")
        r = s.delete(d.url + "/x", timeout=T)
        assert (r.status_code, r.text) == (200, "ok 0")
        # a body already taken from the client cannot be sent again: 502
        with socket.create_connection(("127.0.0.1", d.port), timeout=T) as c:
            c.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
            data = b""
            while b"\r\n\r\n" not in data:
                data += c.recv(4096)
        assert data.startswith(b"HTTP/1.1 502 "), data
        # such failures do not take the upstream out
        assert s.get(d.url + "/x", timeout=T).text == "ok 0"
        assert "left out" not in d.stderr_text()
    finally:
        up.close()


def test_upstream_closing_idle_connections(tutti, backends):
    """An upstream that closes a kept-alive connection after 0.3 s idle:
    the next request, later, is not hurt."""
    a = backends("a", idle=0.3)
    d = tutti(proxy_config({"upstreams": [a.addr]}))
    s = requests.Session()
    conns = []
    for _ in range(4):
        r = s.get(d.url + "/echo", timeout=T)
        assert r.status_code == 200
        conns.append(r.json()["conns"])
        time.sleep(0.7)
    assert conns == [1, 2, 3, 4], conns


def test_keepalive_timeout_and_requests(tutti, backends):
    a, b = backends("a"), backends("b")
    d = tutti({"modules": ["proxy"], "servers": [{"routes": [
        {"match": "/kt/", "proxy": {"upstreams": [a.addr], "keepalive_timeout": "1s",
                                    "path": "/"}},
        {"match": "/kr/", "proxy": {"upstreams": [b.addr], "keepalive_requests": 3,
                                    "path": "/"}}]}]})
    s = requests.Session()
    # keepalive_requests: 3 requests on a connection, then a new one
    conns = [s.get(d.url + "/kr/echo", timeout=T).json()["conns"] for _ in range(10)]
    assert conns == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4], conns
    # keepalive_timeout: reused when idle a little, not after 1 s
    c1 = s.get(d.url + "/kt/echo", timeout=T).json()["conns"]
    time.sleep(0.3)
    c2 = s.get(d.url + "/kt/echo", timeout=T).json()["conns"]
    time.sleep(1.6)
    c3 = s.get(d.url + "/kt/echo", timeout=T).json()["conns"]
    assert (c1, c2, c3) == (1, 1, 2)


def test_keepalive_zero_closes_each(tutti, backends):
    a = backends("a")
    d = tutti(proxy_config({"upstreams": [a.addr], "keepalive": 0}))
    before = a.conns()
    s = requests.Session()
    for _ in range(10):
        h = dict(s.get(d.url + "/echo", timeout=T).json()["headers"])
        assert h["Connection"] == "close"
    assert a.conns() - before == 11         # and one for asking


def test_unix_upstream(tutti, backends, tmp_path):
    u = backends("u", f"unix:{tmp_path}/up.sock")
    d = tutti({"modules": ["proxy"], "servers": [{"routes": [
        {"match": "/u/", "proxy": {"upstreams": [u.addr], "path": "/"}}]}]})
    s = requests.Session()
    for _ in range(5):
        r = s.get(d.url + "/u/echo?v=1", timeout=T)
        assert backend_of(r) == "u" and r.json()["path"] == "/echo?v=1"
        assert dict(r.json()["headers"])["Host"] == f"127.0.0.1:{d.port}"
    data = os.urandom(200_000)
    seen = s.post(d.url + "/u/echo", data=data, timeout=T).json()
    assert seen["body_sha"] == hashlib.sha256(data).hexdigest()
    assert seen["conns"] == 1                    # kept alive over the socket too


def test_ipv6_upstream(tutti, backends):
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no ::1 on this machine")
    v6 = backends("v6", f"[::1]:{harness.free_port()}")
    d = tutti({"modules": ["proxy"], "servers": [{"routes": [
        {"match": "/", "proxy": {"upstreams": [v6.addr], "host": "upstream"}}]}]})
    r = requests.get(d.url + "/echo", timeout=T)
    assert backend_of(r) == "v6"
    assert dict(r.json()["headers"])["Host"] == v6.addr
    assert log_fields(d.wait_access_lines(1)[-1])["upstream_addr"] == v6.addr


@pytest.mark.slow
def test_big_download_and_upload_flat_rss(tutti, backends, tmp_path):
    a = backends("a")
    d = tutti(proxy_config({"upstreams": [a.addr]}))
    worker = d.worker_pids()[0]
    base = rss_kb(worker)
    h = hashlib.sha256()
    peak = 0
    with requests.get(d.url + "/big?mb=100", stream=True, timeout=T) as r:
        for i, chunk in enumerate(r.iter_content(1 << 16)):
            h.update(chunk)
            if i % 200 == 0:
                peak = max(peak, rss_kb(worker))
    want = hashlib.sha256()
    left = 100 << 20
    while left:
        want.update(PATTERN[:min(left, len(PATTERN))])
        left -= min(left, len(PATTERN))
    assert h.hexdigest() == want.hexdigest()
    # (ASan keeps freed memory in quarantine, up to 256 MB: RSS says nothing there)
    if not SANITIZED:
        assert peak - base < 30_000, (base, peak)

    upload = os.urandom(1 << 20)

    peak = 0

    def gen():
        nonlocal peak
        for i in range(100):
            if i % 10 == 5:
                peak = max(peak, rss_kb(worker))
            yield upload
    r = requests.post(d.url + "/echo", data=gen(), timeout=60 * SLOW)
    sha = hashlib.sha256()
    for _ in range(100):
        sha.update(upload)
    assert (r.json()["body_len"], r.json()["body_sha"]) == (100 << 20, sha.hexdigest())
    assert dict(r.json()["headers"])["Transfer-Encoding"] == "chunked"
    if not SANITIZED:
        assert max(peak, rss_kb(worker)) - base < 30_000, (base, peak)


@pytest.mark.slow
def test_slow_reader_keeps_rss_flat(tutti, backends):
    a = backends("a")
    d = tutti(proxy_config({"upstreams": [a.addr]}))
    worker = d.worker_pids()[0]
    base = rss_kb(worker)
    with socket.create_connection(("127.0.0.1", d.port), timeout=T) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.sendall(b"GET /big?mb=100 HTTP/1.1\r\nHost: x\r\n\r\n")
        for _ in range(20):
            s.recv(16384)
            time.sleep(0.1)
        grown = rss_kb(worker) - base
    if not SANITIZED:
        assert grown < 20_000, grown
    assert requests.get(d.url + "/echo", timeout=T).status_code == 200


def test_gunicorn_upstream(tutti, tmp_path):
    gunicorn = shutil.which("gunicorn") or "/usr/bin/gunicorn"
    assert os.path.exists(gunicorn), "gunicorn is missing: ./dev.sh installs Debian's"

    (tmp_path / "gapp.py").write_text(
        "import hashlib\n"
        "def app(environ, start_response):\n"
        "    data = environ['wsgi.input'].read()\n"
        "    body = (environ['PATH_INFO'] + ' ' + environ.get('HTTP_X_FORWARDED_FOR', '')).encode()\n"
        "    if data:\n"
        "        body = hashlib.sha256(data).hexdigest().encode()\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain'),\n"
        "                              ('Content-Length', str(len(body)))])\n"
        "    return [body]\n")
    port = harness.free_port()
    g = subprocess.Popen([gunicorn, "-b", f"127.0.0.1:{port}", "-w", "1", "gapp:app"],
                         cwd=str(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, 10 * SLOW,
                 "gunicorn")
        d = tutti(proxy_config({"upstreams": [f"127.0.0.1:{port}"]}))
        s = requests.Session()
        for i in range(20):
            r = s.get(d.url + f"/g{i}", timeout=T)
            assert r.text == f"/g{i} 127.0.0.1", r.text
            assert r.headers["Server"] == "tutti"
        data = os.urandom(1 << 20)
        r = s.post(d.url + "/up", data=data, timeout=T)
        assert r.text == hashlib.sha256(data).hexdigest()
        # gunicorn's sync worker closes after each answer: tutti keeps the
        # client's connection all the same
        assert "close" not in r.headers.get("Connection", "")
    finally:
        g.send_signal(signal.SIGTERM)
        try:
            g.wait(timeout=10)
        except subprocess.TimeoutExpired:
            g.kill()


def test_tutti_behind_tutti(tutti, tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    blob = os.urandom(300_000)
    (www / "blob.bin").write_bytes(blob)
    back = tutti({"modules": ["static"], "servers": [{"routes": [
        {"match": "/files/", "static": {"alias": str(www)}},
        {"match": "/", "return": {"status": 200, "body": "from the back\n"}}]}]}, subdir="back")
    front = tutti({"modules": ["proxy"], "servers": [{"routes": [
        {"match": "/", "proxy": {"upstreams": [f"127.0.0.1:{back.port}"], "keepalive": 4}}]}]},
        subdir="front")
    s = requests.Session()
    for _ in range(50):
        assert s.get(front.url + "/x", timeout=T).text == "from the back\n"
    # the back end saw one connection (or a few), the front end 50 requests
    remotes = {harness.parse_combined(l)["addr"] for l in back.access_lines()}
    assert remotes == {"127.0.0.1"} and len(back.access_lines()) == 50
    # a static file through the proxy: whole, then 304 and 206 as the back end answers
    r = s.get(front.url + "/files/blob.bin", timeout=T)
    assert r.status_code == 200 and r.content == blob
    etag = r.headers["ETag"]
    r = s.get(front.url + "/files/blob.bin", headers={"If-None-Match": etag}, timeout=T)
    assert (r.status_code, r.content) == (304, b"")
    r = s.get(front.url + "/files/blob.bin", headers={"Range": "bytes=100-199"}, timeout=T)
    assert r.status_code == 206 and r.content == blob[100:200]
    assert r.headers["Content-Range"] == f"bytes 100-199/{len(blob)}"


def test_two_workers(tutti, backends):
    a = backends("a")
    d = tutti(proxy_config({"upstreams": [a.addr]}, workers=2))
    workers = d.worker_pids()
    assert len(workers) == 2
    results = []

    def client(i):
        s = requests.Session()
        for j in range(15):
            r = s.get(d.url + f"/echo?c={i}&r={j}", timeout=T)
            results.append((r.status_code, r.json()["path"] == f"/echo?c={i}&r={j}"))
    ths = [threading.Thread(target=client, args=(i,)) for i in range(6)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(timeout=30)
    assert results == [(200, True)] * 90
    assert d.worker_pids() == workers          # none crashed


def test_json_access_log(tutti, backends):
    a = backends("a")
    d = tutti(proxy_config({"upstreams": [a.addr]}, access_log_format="json"))
    requests.get(d.url + "/echo", timeout=T)
    e = json.loads(d.wait_access_lines(1)[-1])
    assert (e["upstream_addr"], e["upstream_status"]) == (a.addr, "200")
    assert float(e["upstream_time"]) >= 0


# ---------------------------------------------------------------- config errors

@pytest.mark.parametrize("proxy,line,message", [
    ("{}", 6, "'proxy' needs 'upstreams'"),
    ("{upstreams: []}", 6, "'upstreams' is empty"),
    ("{upstreams: [nohost]}", 6, "upstream 'nohost': an upstream is host:port"),
    ("{upstreams: ['127.0.0.1:99999']}", 6, "the port must be a number from 1 to 65535"),
    ("{upstreams: ['https://a:1']}", 6, "only http:// upstreams"),
    ("{upstreams: ['a:1'], balance: fastest}", 6, "'balance: fastest': expected round_robin"),
    ("{upstreams: [{address: 'a:1', weight: 0}]}", 6, "weight"),
    ("{upstreams: ['a:1'], colour: red}", 6, "colour"),
    ("{upstreams: ['a:1'], next_upstream: [sometimes]}", 6, "'next_upstream: sometimes'"),
    ("{upstreams: ['a:1'], headers: {X-A: $nosuch}}", 6, "unknown variable"),
    ("{upstreams: ['a:1'], path: nope}", 6, "'path: nope'"),
    ("{upstreams: ['no-such-host.invalid:80']}", 6, "cannot resolve 'no-such-host.invalid'"),
    ("{upstreams: [{address: 'a:1', weight: 1001}]}", 6, "1000"),
    ("{upstreams: [{weight: 2}]}", 6, "needs 'address'"),
    ("{upstreams: [{address: 'a:1', backup: true}]}", 6, "backup"),
    ("{upstreams: ['a:1'], keepalive: 10001}", 6, "10000"),
    ("{upstreams: ['a:1'], read_timeout: soon}", 6, "soon"),
    ("{upstreams: ['a:1'], headers: [X-A]}", 6, "headers"),
])
def test_config_errors(tmp_path, proxy, line, message):
    text = ("modules: [proxy]\nservers:\n"
            f"  - listen: 127.0.0.1:{harness.free_port()}\n    routes:\n"
            f"      - match: /\n        proxy: {proxy}\n").replace("'a:1'", "'127.0.0.1:1'")
    (tmp_path / "tutti.yaml").write_text(text)
    got = config_error_line(run_tutti(["-t", "-c", "tutti.yaml"], tmp_path), [line])
    assert message in got, got


def test_tunnel_idle_timeout_from_the_websocket_section(tutti, backends):
    a = backends("a")
    d = tutti(proxy_config({"upstreams": [a.addr]}, websocket={"idle_timeout": "1s"}))
    with socket.create_connection(("127.0.0.1", d.port), timeout=T) as s:
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  b"Sec-WebSocket-Version: 13\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        assert head.startswith(b"HTTP/1.1 101 ")
        assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
        # a masked "hi" comes back unmasked: bytes pass both ways
        s.sendall(b"\x81\x82\x01\x02\x03\x04" + bytes([ord("h") ^ 1, ord("i") ^ 2]))
        assert s.recv(100) == b"\x81\x02hi"
        t = time.monotonic()
        assert s.recv(100) == b""          # closed for idleness
        assert 0.8 < time.monotonic() - t < 3 * SLOW
    assert "tunnel idle" in d.stderr_text()


def test_upgrade_refused_by_the_upstream_is_a_plain_answer(shared):
    # the upstream answers an upgrade request with a 200: the client gets it
    r = requests.get(shared.url + "/echo", timeout=T,
                     headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    assert r.status_code == 200
    h = dict(r.json()["headers"])
    assert (h["Upgrade"], h["Connection"]) == ("websocket", "upgrade")

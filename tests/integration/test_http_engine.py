"""The HTTP/1.1 engine as a client sees it: keep-alive, pipelining, HTTP/1.0,
HEAD, Date/Server, 100-continue, streaming bodies both ways, backpressure,
limits and timeouts."""
import email.utils
import hashlib
import os
import socket
import threading
import time

import pytest
import requests

from harness import SLOW, parse_combined
from rawhttp import Closed, Conn, chunked, exchange, get

T = 5 * SLOW


def sha(b):
    return hashlib.sha256(b).hexdigest()


def req(method, path, host="x", headers=(), body=b""):
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


@pytest.fixture(scope="module")
def srv(shared_daemon):
    return shared_daemon({
        "limits": {"max_body_size": "16MB"},
        "servers": [{"routes": [
            {"match": "/healthz", "return": {"status": 200, "body": "ok\n"}},
            {"match": "/hello/", "hello": {"greeting": "Hello"}},
            {"match": "/echo/", "hello": {"echo": True}},
        ]}]})


# ---------------------------------------------------------------- connections

def test_keep_alive_serves_several_requests_on_one_connection(srv):
    with Conn(srv.port) as c:
        for name in ("a", "b", "c", "d"):
            c.send(req("GET", f"/hello/{name}"))
            r = c.read_response()
            assert (r.status, r.body) == (200, f"Hello, {name}!\n".encode())
            assert "close" not in r.connection_tokens()
        assert c.open_after(0.3), "the server closed a keep-alive connection"


def test_keep_alive_connection_idle_a_while_still_serves(srv):
    # after a second idle tutti parks the connection on a bare read event
    # (doc/http.md); the next request must not notice
    with Conn(srv.port) as c:
        c.send(req("GET", "/hello/first"))
        assert c.read_response().body == b"Hello, first!\n"
        time.sleep(2.0)
        c.send(req("GET", "/hello/second"))
        assert c.read_response().body == b"Hello, second!\n"
        # and with a body, after another idle spell
        time.sleep(1.6)
        body = os.urandom(300000)
        c.send(req("POST", "/echo/", headers=[f"Content-Length: {len(body)}"], body=body))
        r = c.read_response()
        assert (r.status, sha(r.body)) == (200, sha(body))


def test_many_idle_connections_all_still_serve(srv):
    conns = [Conn(srv.port) for _ in range(50)]
    try:
        for i, c in enumerate(conns):
            c.send(req("GET", f"/hello/{i}"))
            assert c.read_response().status == 200
        time.sleep(1.6)
        for i, c in enumerate(conns):
            c.send(req("GET", f"/hello/again{i}"))
            assert c.read_response().body == f"Hello, again{i}!\n".encode()
    finally:
        for c in conns:
            c.close()


def test_pipelined_requests_are_answered_in_order(srv):
    with Conn(srv.port) as c:
        c.send(req("GET", "/hello/one") + req("GET", "/healthz") + req("GET", "/hello/three"))
        bodies = [c.read_response().body for _ in range(3)]
    assert bodies == [b"Hello, one!\n", b"ok\n", b"Hello, three!\n"]


def test_pipelined_requests_with_a_body_in_between(srv):
    with Conn(srv.port) as c:
        c.send(req("GET", "/hello/one")
               + req("POST", "/echo/", headers=["Content-Length: 5"], body=b"abcde")
               + req("GET", "/hello/three"))
        rs = [c.read_response() for _ in range(3)]
    assert [r.status for r in rs] == [200, 200, 200]
    assert [r.body for r in rs] == [b"Hello, one!\n", b"abcde", b"Hello, three!\n"]


def test_http10_closes_after_the_response(srv):
    with Conn(srv.port) as c:
        c.send(b"GET /hello/old HTTP/1.0\r\n\r\n")
        r = c.read_response()
        assert (r.status, r.body) == (200, b"Hello, old!\n")
        assert c.closed_within(2), "HTTP/1.0 without keep-alive must close"


def test_http10_keep_alive_when_asked(srv):
    with Conn(srv.port) as c:
        for name in ("a", "b"):
            c.send(f"GET /hello/{name} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            r = c.read_response()
            assert (r.status, r.body) == (200, f"Hello, {name}!\n".encode())
            assert "keep-alive" in r.connection_tokens(), r.headers
        assert c.open_after(0.3)


def test_connection_close_is_honored(srv):
    with Conn(srv.port) as c:
        c.send(req("GET", "/hello/bye", headers=["Connection: close"]))
        r = c.read_response()
        assert (r.status, r.body) == (200, b"Hello, bye!\n")
        assert "close" in r.connection_tokens()
        assert c.closed_within(2)


def test_head_has_the_headers_and_no_body(srv):
    g = get(srv.port, "/hello/h")
    with Conn(srv.port) as c:
        # the GET after the HEAD would be garbled if HEAD leaked a body
        c.send(req("HEAD", "/hello/h") + req("GET", "/hello/after"))
        h = c.read_response(head_request=True)
        assert h.status == 200
        assert h.header("Content-Length") == str(len(g.body))
        assert h.header("Content-Type") == g.header("Content-Type")
        after = c.read_response()
        assert (after.status, after.body) == (200, b"Hello, after!\n")


def test_head_of_return_route(srv):
    r = get(srv.port, "/healthz", method="HEAD")
    assert r.status == 200 and r.header("Content-Length") == "3"


def test_date_and_server_headers(srv):
    r = get(srv.port, "/healthz")
    assert (r.header("Server") or "").lower().startswith("tutti"), r.headers
    date = r.header("Date")
    assert date and date.endswith(" GMT"), r.headers
    when = email.utils.parsedate_to_datetime(date).timestamp()
    assert abs(when - time.time()) < 10
    # error pages carry them too
    r = get(srv.port, "/nowhere")
    assert r.status == 404 and r.header("Date") and r.header("Server")


def test_requests_library_round_trip(srv):
    with requests.Session() as s:
        for i in range(5):
            r = s.post(srv.url + "/echo/", data=b"x" * i * 100, timeout=T)
            assert r.status_code == 200 and r.content == b"x" * i * 100


# ---------------------------------------------------------------- request bodies

def test_expect_100_continue(srv):
    with Conn(srv.port) as c:
        c.send(req("POST", "/echo/", headers=["Content-Length: 11",
                                               "Expect: 100-continue"]))
        interim = c.read_response(interim=True)
        assert interim.status == 100
        assert interim.raw_head.startswith(b"HTTP/1.1 100 Continue")
        c.send(b"hello world")
        r = c.read_response()
        assert (r.status, r.body) == (200, b"hello world")


def test_expect_100_continue_with_curl(srv, tmp_path):
    import subprocess
    data = tmp_path / "body"
    data.write_bytes(os.urandom(2 * 1024 * 1024))
    out = tmp_path / "out"
    res = subprocess.run(["curl", "-sS", "--max-time", str(int(20 * SLOW)),
                          "-H", "Expect: 100-continue", "--data-binary", f"@{data}",
                          "-o", str(out), "-w", "%{http_code}", srv.url + "/echo/"],
                         capture_output=True, text=True, timeout=30 * SLOW)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "200"
    assert sha(out.read_bytes()) == sha(data.read_bytes())


def test_expect_100_continue_to_a_route_that_does_not_read(srv):
    with Conn(srv.port) as c:
        c.send(req("POST", "/healthz", headers=["Content-Length: 100000",
                                                 "Expect: 100-continue"]))
        r = c.read_response(interim=True)
        assert (r.status, r.body) == (200, b"ok\n"), "no 100 when the body is not wanted"


def _send_in_thread(c, data, piece=65536, delay=0.0, result=None):
    def run():
        try:
            for i in range(0, len(data), piece):
                c.sock.sendall(data[i:i + piece])
                if result is not None:
                    result["sent"] = i + len(data[i:i + piece])
                if delay:
                    time.sleep(delay)
            if result is not None:
                result["done"] = True
        except OSError as e:
            if result is not None:
                result["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_content_length_upload_is_echoed_intact(srv):
    body = os.urandom(5 * 1024 * 1024 + 17)
    with Conn(srv.port, timeout=20) as c:
        c.send(req("POST", "/echo/", headers=[f"Content-Length: {len(body)}"]))
        t = _send_in_thread(c, body)
        r = c.read_response()
        t.join(10)
    assert r.status == 200
    assert r.header("Content-Length") == str(len(body))
    assert sha(r.body) == sha(body)


def test_chunked_upload_is_echoed_intact(srv):
    body = os.urandom(4 * 1024 * 1024 + 3)
    with Conn(srv.port, timeout=20) as c:
        c.send(req("POST", "/echo/", headers=["Transfer-Encoding: chunked"]))
        t = _send_in_thread(c, chunked(body, [1, 100, 65536, 7, 300000, 4096]))
        r = c.read_response()
        t.join(10)
        assert r.status == 200
        assert r.header("Transfer-Encoding") == "chunked" or \
            r.header("Content-Length") == str(len(body))
        assert sha(r.body) == sha(body)
        # the connection is still usable afterwards
        c.send(req("GET", "/hello/next"))
        assert c.read_response().body == b"Hello, next!\n"


def test_chunked_upload_with_extensions_and_trailers(srv):
    raw = (b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n")
    with Conn(srv.port) as c:
        c.send(req("POST", "/echo/", headers=["Transfer-Encoding: chunked"]) + raw)
        r = c.read_response()
    assert (r.status, r.body) == (200, b"hello world")


def test_body_split_across_many_small_writes(srv):
    body = b"0123456789" * 50
    with Conn(srv.port) as c:
        c.send(req("POST", "/echo/", headers=[f"Content-Length: {len(body)}"]))
        for i in range(0, len(body), 37):
            c.send(body[i:i + 37])
            time.sleep(0.002)
        r = c.read_response()
    assert (r.status, r.body) == (200, body)


def test_unread_body_is_discarded_and_keep_alive_goes_on(srv):
    with Conn(srv.port) as c:
        c.send(req("POST", "/healthz", headers=["Content-Length: 70000"], body=b"z" * 70000)
               + req("GET", "/hello/after"))
        r1 = c.read_response()
        assert (r1.status, r1.body) == (200, b"ok\n")
        try:
            r2 = c.read_response()
        except Closed:
            pytest.fail("closed instead of discarding an unread body of a keep-alive request")
        assert (r2.status, r2.body) == (200, b"Hello, after!\n")


# ---------------------------------------------------------------- backpressure

def test_large_echo_to_a_slow_reader_is_intact_and_bounded(tutti):
    """The client does not read for a while: tutti must stop reading the upload
    (memory per connection stays bounded) and then finish intact."""
    d = tutti({"limits": {"max_body_size": "256MB", "send_timeout": "30s"},
               "servers": [{"routes": [{"match": "/echo/", "hello": {"echo": True}}]}]})
    total = 48 * 1024 * 1024
    body = os.urandom(1024 * 1024) * 48
    c = Conn(d.port, timeout=30)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    try:
        c.send(req("POST", "/echo/", headers=[f"Content-Length: {total}"]))
        progress = {"sent": 0}
        t = _send_in_thread(c, body, piece=256 * 1024, result=progress)
        time.sleep(1.5 * SLOW)
        stalled_at = progress["sent"]
        assert stalled_at < total - 24 * 1024 * 1024, \
            f"tutti took {stalled_at} bytes while the client read nothing: no backpressure"
        # now a slow reader: small reads with pauses, then full speed
        for _ in range(20):
            c.buf += c.sock.recv(4096)   # a few small reads, slowly
            time.sleep(0.01)
        r = c.read_response()
        t.join(20 * SLOW)
        assert progress.get("done"), progress
        assert r.status == 200
        assert len(r.body) == total
        assert sha(r.body) == sha(body)
    finally:
        c.close()


def test_send_timeout_closes_a_client_that_never_reads(tutti):
    d = tutti({"limits": {"max_body_size": "256MB", "send_timeout": "1s",
                          "body_timeout": "30s"},
               "servers": [{"routes": [{"match": "/echo/", "hello": {"echo": True}}]}]})
    body = os.urandom(1024 * 1024) * 64
    c = Conn(d.port, timeout=30)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    try:
        c.send(req("POST", "/echo/", headers=[f"Content-Length: {len(body)}"]))
        progress = {"sent": 0}
        t = _send_in_thread(c, body, piece=256 * 1024, result=progress)
        t.join(10 * SLOW)
        assert not t.is_alive(), "upload still blocked: tutti never gave up on the client"
        assert "error" in progress, "the whole upload went through a client that never reads"
    finally:
        c.close()


# ---------------------------------------------------------------- limits

@pytest.fixture
def small(tutti):
    return tutti({
        "limits": {"max_body_size": "1KB", "max_header_size": "2KB"},
        "servers": [{"routes": [
            {"match": "/echo/", "hello": {"echo": True}},
            {"match": "/healthz", "return": {"status": 200, "body": "ok\n"}},
        ]}]})


def test_content_length_over_max_body_size_is_413_before_the_body(small):
    with Conn(small.port) as c:
        c.send(req("POST", "/echo/", headers=["Content-Length: 2000"]))   # no body sent
        r = c.read_response()
        assert r.status == 413
        assert c.closed_within(3)


def test_413_instead_of_100_continue(small):
    with Conn(small.port) as c:
        c.send(req("POST", "/echo/", headers=["Content-Length: 2000", "Expect: 100-continue"]))
        r = c.read_response(interim=True)
        assert r.status == 413


def test_body_at_the_limit_is_accepted(small):
    body = b"b" * 1024
    r, c = exchange(small.port, req("POST", "/echo/", headers=["Content-Length: 1024"], body=body))
    c.close()
    assert (r.status, r.body) == (200, body)


def test_chunked_body_crossing_max_body_size_is_413(small):
    with Conn(small.port) as c:
        c.send(req("POST", "/echo/", headers=["Transfer-Encoding: chunked"])
               + chunked(b"c" * 4000, [4000]))
        try:
            r = c.read_response()
        except Closed as e:
            pytest.fail(f"connection closed without a 413; got {e.partial[:200]!r}")
        assert r.status == 413, (r, r.body[:100])
        assert c.closed_within(3)


def test_chunked_body_crossing_the_limit_in_small_chunks(small):
    """Many small chunks that only together cross the limit: the handler may
    have begun, but it never gets more than max_body_size: 413, or the
    response is cut off."""
    with Conn(small.port) as c:
        c.send(req("POST", "/echo/", headers=["Transfer-Encoding: chunked"]))
        data = chunked(b"d" * 3000, [100])
        try:
            c.send(data)
        except OSError:
            pass
        try:
            r = c.read_response()
        except Closed as e:
            assert len(e.partial) < 3000
            return
        assert r.status == 413, r


def test_header_section_over_max_header_size_is_431(small):
    r, c = exchange(small.port, req("GET", "/healthz", headers=["X-Big: " + "a" * 3000]))
    assert r.status == 431
    assert c.closed_within(3)
    c.close()


def test_many_headers_over_max_header_size_is_431(small):
    r, c = exchange(small.port, req("GET", "/healthz",
                                    headers=[f"X-H{i}: {'v' * 40}" for i in range(60)]))
    assert r.status == 431
    c.close()


def test_url_over_max_header_size_is_414(small):
    r, c = exchange(small.port, req("GET", "/healthz?" + "q" * 3000))
    assert r.status == 414
    assert c.closed_within(3)
    c.close()


def test_headers_just_under_the_limit_pass(small):
    r, c = exchange(small.port, req("GET", "/healthz", headers=["X-Big: " + "a" * 1500]))
    c.close()
    assert (r.status, r.body) == (200, b"ok\n")


# ---------------------------------------------------------------- timeouts

@pytest.fixture
def quick(tutti):
    return tutti({
        "limits": {"header_timeout": "1s", "body_timeout": "1s"},
        "servers": [{"routes": [
            {"match": "/echo/", "hello": {"echo": True}},
            {"match": "/healthz", "return": {"status": 200, "body": "ok\n"}},
        ]}]})


def _ends_with_408_or_close(c, within):
    """The server answers 408 (then closes) or just closes, within `within` s."""
    assert c.closed_within(within), f"still open after {within * SLOW:.1f}s"
    got = bytes(c.buf)
    if got:
        assert got.startswith(b"HTTP/1.1 408 "), got[:100]


def test_slowloris_partial_head_gets_408(quick):
    with Conn(quick.port) as c:
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        _ends_with_408_or_close(c, 3)
    e = parse_combined(quick.wait_access_lines(1)[0])
    assert (e["method"], e["target"], e["status"]) == ("GET", "/healthz", "408")


def test_header_timeout_covers_the_whole_head_not_the_gaps(quick):
    """A client trickling one header byte every 0.2 s never finishes its head."""
    with Conn(quick.port) as c:
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        start = time.monotonic()
        try:
            while time.monotonic() - start < 4 * SLOW:
                c.send(b"X-Slow: a\r\n")
                time.sleep(0.2)
                if not c.open_after(0.01):
                    break
        except OSError:
            pass
        elapsed = time.monotonic() - start
        assert elapsed < 3 * SLOW, f"the head was still being read after {elapsed:.1f}s"


def test_body_timeout_closes_a_stalled_upload(quick):
    with Conn(quick.port) as c:
        c.send(req("POST", "/echo/", headers=["Content-Length: 100"], body=b"x" * 10))
        assert c.closed_within(4), "a stalled upload was kept open past body_timeout"
        got = bytes(c.buf)
    if got:
        # 408 if the response had not begun; else the echo is cut short
        head, _, body = got.partition(b"\r\n\r\n")
        status = int(head.split()[1])
        assert status == 408 or (status == 200 and len(body) < 100), got[:200]


def test_server_still_serves_after_timeouts(quick):
    with Conn(quick.port) as c:
        c.send(b"GET /healthz HTTP/1.1\r\n")
        _ends_with_408_or_close(c, 3)
    r = get(quick.port, "/healthz")
    assert (r.status, r.body) == (200, b"ok\n")

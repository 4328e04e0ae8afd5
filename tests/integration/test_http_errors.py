"""Bad HTTP input: the right status with a short body, the connection closed
where the framing can no longer be trusted, an access-log line for each, and
never a crash (the worker that answered is still the same process)."""
import pytest

from harness import parse_combined
from rawhttp import Closed, Conn, get

H = "Host: x\r\n"


@pytest.fixture(scope="module")
def srv(shared_daemon):
    d = shared_daemon({
        "limits": {"max_header_size": "4KB", "max_body_size": "64KB"},
        "servers": [{"routes": [
            {"match": "/healthz", "return": {"status": 200, "body": "ok\n"}},
            {"match": "/echo/", "hello": {"echo": True}},
            {"match": {"path": "/rw", "methods": ["GET", "POST"]},
             "return": {"status": 200, "body": "rw\n"}},
        ]}]})
    d.first_workers = d.worker_pids()
    return d


# (id, raw request, status, method in the log or None, target in the log or None)
CASES = [
    ("cl-and-te",
     "POST /echo/ HTTP/1.1\r\n" + H + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
     "0\r\n\r\n", 400, "POST", "/echo/"),
    ("te-and-cl",
     "POST /echo/ HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
     "0\r\n\r\n", 400, "POST", "/echo/"),
    ("two-content-lengths",
     "POST /echo/ HTTP/1.1\r\n" + H + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
     400, "POST", "/echo/"),
    ("negative-content-length",
     "POST /echo/ HTTP/1.1\r\n" + H + "Content-Length: -1\r\n\r\n", 400, "POST", "/echo/"),
    ("content-length-not-a-number",
     "POST /echo/ HTTP/1.1\r\n" + H + "Content-Length: 5x\r\n\r\nhello", 400, "POST", "/echo/"),
    ("bad-chunk-size",
     "POST /echo/ HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
     400, "POST", "/echo/"),
    ("chunk-size-overflow",
     "POST /echo/ HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\n"
     "fffffffffffffffff1\r\nhello\r\n0\r\n\r\n", 400, "POST", "/echo/"),
    ("bare-cr-in-header",
     "GET /healthz HTTP/1.1\r\n" + H + "X-A: a\rb\r\n\r\n", 400, "GET", "/healthz"),
    ("bare-lf-ends-header",
     "GET /healthz HTTP/1.1\r\n" + H + "X-A: a\nX-B: b\r\n\r\n", 400, "GET", "/healthz"),
    ("bare-lf-ends-request-line",
     "GET /healthz HTTP/1.1\n" + H + "\r\n", 400, None, None),
    ("obs-fold",
     "GET /healthz HTTP/1.1\r\n" + H + "X-A: a\r\n folded\r\n\r\n", 400, "GET", "/healthz"),
    ("obs-fold-tab",
     "GET /healthz HTTP/1.1\r\n" + H + "X-A: a\r\n\tfolded\r\n\r\n", 400, "GET", "/healthz"),
    ("space-before-colon",
     "GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n", 400, "GET", "/healthz"),
    ("header-without-colon",
     "GET /healthz HTTP/1.1\r\n" + H + "NoColonHere\r\n\r\n", 400, "GET", "/healthz"),
    ("nul-in-header",
     "GET /healthz HTTP/1.1\r\n" + H + "X-A: a\x00b\r\n\r\n", 400, "GET", "/healthz"),
    ("lowercase-method",
     "get /healthz HTTP/1.1\r\n" + H + "\r\n", 400, None, None),
    ("method-junk",
     "G@T /healthz HTTP/1.1\r\n" + H + "\r\n", 400, None, None),
    ("missing-host",
     "GET /healthz HTTP/1.1\r\n\r\n", 400, "GET", "/healthz"),
    ("two-hosts",
     "GET /healthz HTTP/1.1\r\n" + H + "Host: y\r\n\r\n", 400, "GET", "/healthz"),
    ("encoded-nul",
     "GET /heal%00thz HTTP/1.1\r\n" + H + "\r\n", 400, "GET", "/heal%00thz"),
    ("encoded-slash",
     "GET /a%2F..%2Fhealthz HTTP/1.1\r\n" + H + "\r\n", 400, "GET", "/a%2F..%2Fhealthz"),
    ("encoded-slash-lowercase",
     "GET /a%2f..%2fhealthz HTTP/1.1\r\n" + H + "\r\n", 400, "GET", "/a%2f..%2fhealthz"),
    ("dot-dot-above-root",
     "GET /../healthz HTTP/1.1\r\n" + H + "\r\n", 400, "GET", "/../healthz"),
    ("dot-dot-above-root-deeper",
     "GET /a/../../etc/passwd HTTP/1.1\r\n" + H + "\r\n", 400, "GET", "/a/../../etc/passwd"),
    ("encoded-dot-dot-above-root",
     "GET /%2e%2e/healthz HTTP/1.1\r\n" + H + "\r\n", 400, "GET", "/%2e%2e/healthz"),
    ("bad-percent-escape",
     "GET /heal%zzthz HTTP/1.1\r\n" + H + "\r\n", 400, "GET", "/heal%zzthz"),
    ("target-without-slash",
     "GET healthz HTTP/1.1\r\n" + H + "\r\n", 400, None, None),
    ("control-byte-in-target",
     "GET /heal\x01thz HTTP/1.1\r\n" + H + "\r\n", 400, None, None),
    ("unknown-transfer-coding",
     "POST /echo/ HTTP/1.1\r\n" + H + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
     501, "POST", "/echo/"),
    ("transfer-coding-not-chunked",
     "POST /echo/ HTTP/1.1\r\n" + H + "Transfer-Encoding: gzip\r\n\r\nhello", 501, "POST", "/echo/"),
    ("http-2.0",
     "GET /healthz HTTP/2.0\r\n" + H + "\r\n", 505, None, None),
    ("http-3.1",
     "GET /healthz HTTP/3.1\r\n" + H + "\r\n", 505, None, None),
    ("header-too-big",
     "GET /healthz HTTP/1.1\r\n" + H + "X-Big: " + "a" * 5000 + "\r\n\r\n", 431, "GET", "/healthz"),
    ("url-too-long",
     "GET /healthz?" + "q" * 5000 + " HTTP/1.1\r\n" + H + "\r\n", 414, None, None),
    ("body-too-big",
     "POST /echo/ HTTP/1.1\r\n" + H + "Content-Length: 70000\r\n\r\n", 413, "POST", "/echo/"),
]


@pytest.mark.parametrize("raw,status,method,target",
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_request(srv, raw, status, method, target):
    before = len(srv.access_lines())
    with Conn(srv.port) as c:
        c.send(raw.encode("latin-1"))
        try:
            r = c.read_response()
        except Closed as e:
            pytest.fail(f"closed without a response; got {e.partial[:200]!r}")
        assert r.status == status, f"expected {status}, got {r.status} {r.reason}: {r.body[:200]!r}"
        assert 0 < len(r.body) < 1024, "an error has a short body"
        assert str(status) in r.body.decode("latin-1")
        assert "close" in r.connection_tokens(), r.headers
        assert c.closed_within(3), "the connection stays open after a framing error"

    lines = srv.wait_access_lines(before + 1)
    assert len(lines) == before + 1, f"expected one new access-log line, got {lines[before:]}"
    e = parse_combined(lines[-1])
    assert e["status"] == str(status), lines[-1]
    if method:
        assert e["method"] == method, lines[-1]
    if target:
        assert e["target"] == target, lines[-1]
    assert srv.worker_pids() == srv.first_workers, "a worker died (crashed?) on this request"


def test_smuggled_request_is_never_answered(srv):
    """CL + TE: 400 and close; the request hidden in the body gets no answer."""
    smuggled = ("POST /echo/ HTTP/1.1\r\n" + H + "Content-Length: 30\r\n"
                "Transfer-Encoding: chunked\r\n\r\n"
                "0\r\n\r\nGET /healthz HTTP/1.1\r\n" + H + "\r\n")
    with Conn(srv.port) as c:
        c.send(smuggled.encode())
        r = c.read_response()
        assert r.status == 400
        rest = c.read_until_close(3)
    assert b"HTTP/1.1" not in rest, f"a second response followed: {rest[:200]!r}"


def test_pipelined_request_after_a_bad_one_is_not_served(srv):
    with Conn(srv.port) as c:
        c.send(b"GET /heal%00thz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        assert r.status == 400
        rest = c.read_until_close(3)
    assert b"HTTP/1.1" not in rest


def test_405_lists_allowed_methods_and_keeps_the_connection(srv):
    before = len(srv.access_lines())
    with Conn(srv.port) as c:
        c.send(b"DELETE /rw HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        assert r.status == 405
        allow = {m.strip() for m in (r.header("Allow") or "").split(",")}
        assert {"GET", "POST"} <= allow, r.headers
        c.send(b"GET /rw HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.read_response().body == b"rw\n"
    lines = srv.wait_access_lines(before + 2)
    e = parse_combined(lines[before])
    assert (e["method"], e["target"], e["status"]) == ("DELETE", "/rw", "405")


def test_404_has_a_log_line(srv):
    before = len(srv.access_lines())
    r = get(srv.port, "/no/such/thing?q=1")
    assert r.status == 404
    e = parse_combined(srv.wait_access_lines(before + 1)[-1])
    assert (e["method"], e["target"], e["status"]) == ("GET", "/no/such/thing?q=1", "404")


def test_still_serving_after_all_that(srv):
    r = get(srv.port, "/healthz")
    assert (r.status, r.body) == (200, b"ok\n")
    assert srv.worker_pids() == srv.first_workers

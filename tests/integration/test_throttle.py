"""The `throttle` module (doc/throttle.md), through the real daemon: speed
limits per connection (download, upload, download_after), requests per
second per client key with a burst (429 + Retry-After), in-flight requests
per client key (503), whose address counts (the peer, or a header believed
only from trusted proxies), and what a bad `throttle:` block says.

Timings: only the ranges the issue states are asserted (a 2 MB download at
512KB/s takes 3.0-4.5 s, ...); "full speed" means far below the throttled
time. Each rate-limit test starts its own daemon, so no bucket is shared
between tests."""
import hashlib
import os
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness import SANITIZED, SLOW, free_port, parse_combined, rss_kb, run_tutti, wait_for
from harness import config_error_line as _error_line
from rawhttp import Closed, Conn, get as raw_get

T = 5 * SLOW

KB = 1024
MB = 1024 * 1024
BIG_SIZE = 2 * MB               # the file of the speed tests
SMALL_SIZE = 256 * KB
UPLOAD_SIZE = 768 * KB

# Sanitizers slow the daemon down: upper bounds of throttled times get that
# much more room (lower bounds never move: a limit cannot get faster).
SLACK = 2.0 * (SLOW - 1.0)
FULL_SPEED = 2.0 * SLOW         # a 2 MB file unthrottled: far below the 4 s throttled


def sha(b):
    return hashlib.sha256(b).hexdigest()


def ipv6_loopback():
    """True when this machine can listen on ::1."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


# ---------------------------------------------------------------- the tree

class Tree:
    pass


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    t = Tree()
    t.base = tmp_path_factory.mktemp("throttle-tree")
    t.files = t.base / "files"
    t.files.mkdir()
    t.big = os.urandom(BIG_SIZE)
    (t.files / "big.bin").write_bytes(t.big)
    t.small = os.urandom(SMALL_SIZE)
    (t.files / "small.bin").write_bytes(t.small)
    (t.files / "hello.txt").write_bytes(b"hello\n")
    return t


def static_route(match, tree, throttle=None):
    r = {"match": match, "static": {"alias": str(tree.files)}}
    if throttle is not None:
        r["throttle"] = throttle
    return r


def hello_route(match, throttle=None, echo=False):
    r = {"match": match, "hello": {"echo": True} if echo else {"greeting": "Hi"}}
    if throttle is not None:
        r["throttle"] = throttle
    return r


APPS = Path(__file__).resolve().parent.parent / "apps"


def wsgi_echo_route(match, throttle=None, threads=2):
    """The WSGI echo app (tests/apps/echo_wsgi.py): a real app's upload and
    download under the same limits as the hello echo."""
    r = {"match": match, "wsgi": {"app": "echo_wsgi:application", "threads": threads}}
    if throttle is not None:
        r["throttle"] = throttle
    return r


def config(routes, **top):
    cfg = {"modules": ["static", "hello", "throttle", "wsgi"], "python": {"path": [str(APPS)]}}
    cfg.update(top)
    cfg["servers"] = [{"routes": routes}]
    return cfg


# ---------------------------------------------------------------- clients

def request(path, headers=(), method="GET", body=b"", close=False):
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", *headers]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def timed_get(conn, path):
    """(response, seconds) of one GET on an open connection: from sending the
    request to the last byte of the body."""
    t0 = time.monotonic()
    conn.send(request(path))
    r = conn.read_response()
    return r, time.monotonic() - t0


def timed_download(port, path, host="127.0.0.1"):
    with Conn(port, timeout=T, host=host) as c:
        return timed_get(c, path)


def timed_echo(port, path, body):
    """POST body to an echo route, sending from a thread while the answer is
    read (the echo streams back as it reads, so one side alone would stall).
    Returns (response, seconds from the first byte sent to the last read)."""
    c = Conn(port, timeout=T)
    err = []

    def send():
        try:
            c.send(request(path, method="POST", body=body))
        except OSError as e:        # the read side reports what went wrong
            err.append(e)

    try:
        t0 = time.monotonic()
        th = threading.Thread(target=send, daemon=True)
        th.start()
        r = c.read_response()
        took = time.monotonic() - t0
        th.join(T)
    finally:
        c.close()
    assert not err, f"sending the body failed: {err[0]!r}"
    return r, took


def one(port, path, headers=(), host="127.0.0.1"):
    """One request on a new connection (closed after); returns the response."""
    with Conn(port, timeout=T, host=host) as c:
        c.send(request(path, headers=headers, close=True))
        return c.read_response()


def volley(port, path, n, headers=(), host="127.0.0.1"):
    """n requests sent as fast as we can, each on its own connection."""
    return [one(port, path, headers, host) for _ in range(n)]


def statuses(responses):
    return [r.status for r in responses]


def assert_retry_after(r):
    assert r.status == 429, r
    v = r.header("Retry-After")
    assert v is not None, f"429 without Retry-After: {r.raw_head!r}"
    assert re.fullmatch(r"[1-9][0-9]*", v), f"Retry-After {v!r} is not whole seconds >= 1"
    return int(v)


def assert_limited(responses, burst, what=""):
    """Of a volley against a bucket of `burst`: burst or burst + 1 got 200,
    every other one a 429 with Retry-After."""
    st = statuses(responses)
    ok = st.count(200)
    assert burst <= ok <= burst + 1, f"{what}{ok} of {len(st)} succeeded: {st}"
    assert set(st) <= {200, 429}, f"{what}unexpected statuses: {st}"
    for r in responses:
        if r.status == 429:
            assert_retry_after(r)
    return ok


# ================================================================ download / upload speed

@pytest.fixture(scope="module")
def speed(shared_daemon, tree):
    """One daemon for the speed tests: they share no bucket (speed limits are
    per connection)."""
    return shared_daemon(config([
        static_route("/slow/", tree, {"download": "512KB/s"}),
        static_route("/after/", tree, {"download": "512KB/s", "download_after": "1MB"}),
        hello_route("/up", {"upload": "256KB/s"}, echo=True),
        wsgi_echo_route("/wsgiup", {"upload": "256KB/s"}),
        wsgi_echo_route("/wsgidown", {"download": "512KB/s"}),
        wsgi_echo_route("/wsgiup0", {"upload": "256KB/s"}, threads=0),
        hello_route("/upfast", echo=True),
        hello_route("/downecho", {"download": "512KB/s"}, echo=True),
        hello_route("/afterecho", {"download": "512KB/s", "download_after": "1MB"}, echo=True),
        static_route("/fast/", tree),
    ]))


def test_download_at_512kb_per_second(speed, tree):
    # 2 MB at 512 KB/s: 4 s, or 3 s if a second's worth went out at once
    r, took = timed_download(speed.port, "/slow/big.bin")
    assert r.status == 200, r
    assert sha(r.body) == sha(tree.big), "body differs from the file"
    assert 3.0 <= took <= 4.5 + SLACK, f"2 MB at 512KB/s took {took:.2f}s (want 3.0-4.5)"


def test_download_first_second_is_at_most_one_burst(speed):
    """At most one second's worth goes out as an initial burst: after one
    second, no more than 2 s worth has arrived (burst + one second of rate,
    plus the socket buffers of loopback)."""
    with Conn(speed.port, timeout=T) as c:
        c.send(request("/slow/big.bin"))
        t0 = time.monotonic()
        got = 0
        while time.monotonic() - t0 < 1.0:
            c.sock.settimeout(max(0.01, 1.0 - (time.monotonic() - t0)))
            try:
                chunk = c.sock.recv(65536)
            except socket.timeout:
                break
            assert chunk, "closed early"
            got += len(chunk)
    assert got <= 2 * 512 * KB + 512 * KB, f"{got} bytes arrived in the first second"


def test_download_limit_is_per_connection(speed, tree):
    """Two connections at once each get the full 512KB/s."""
    with ThreadPoolExecutor(2) as ex:
        results = list(ex.map(lambda _: timed_download(speed.port, "/slow/big.bin"), range(2)))
    for r, took in results:
        assert r.status == 200 and sha(r.body) == sha(tree.big)
        assert 3.0 <= took <= 4.5 + SLACK, f"took {took:.2f}s (want 3.0-4.5 each)"


def test_download_after_first_megabyte_goes_at_once(speed, tree):
    # the first 1 MB immediately, the second at 512KB/s: about 2 s
    r, took = timed_download(speed.port, "/after/big.bin")
    assert r.status == 200 and sha(r.body) == sha(tree.big)
    assert 1.5 <= took <= 3.5 + SLACK, \
        f"2 MB with download_after 1MB at 512KB/s took {took:.2f}s (want 1.5-3.5)"


def test_download_after_covers_a_small_file_entirely(speed, tree):
    r, took = timed_download(speed.port, "/after/small.bin")
    assert r.status == 200 and r.body == tree.small
    assert took < FULL_SPEED, f"256 KB under download_after 1MB took {took:.2f}s"


def test_download_limit_on_a_streamed_response(speed):
    """The same limit on a response a handler streams (not a file): the
    echo of a 2 MB upload comes back at 512KB/s."""
    body = os.urandom(BIG_SIZE)
    r, took = timed_echo(speed.port, "/downecho", body)
    assert r.status == 200 and sha(r.body) == sha(body)
    assert 3.0 <= took <= 4.5 + SLACK, f"2 MB echoed at 512KB/s took {took:.2f}s (want 3.0-4.5)"


def test_download_after_on_a_streamed_response(speed):
    body = os.urandom(BIG_SIZE)
    r, took = timed_echo(speed.port, "/afterecho", body)
    assert r.status == 200 and sha(r.body) == sha(body)
    assert 1.5 <= took <= 3.5 + SLACK, \
        f"2 MB echoed with download_after 1MB at 512KB/s took {took:.2f}s (want 1.5-3.5)"


def test_upload_at_256kb_per_second(speed):
    body = os.urandom(UPLOAD_SIZE)
    r, took = timed_echo(speed.port, "/up", body)
    assert r.status == 200, r
    assert sha(r.body) == sha(body), "echo differs from the upload"
    assert 2.5 <= took <= 4.5 + SLACK, f"768 KB at 256KB/s took {took:.2f}s (want 2.5-4.5)"


@pytest.mark.parametrize("path", ["/wsgiup", "/wsgiup0"], ids=["threads", "threads-0"])
def test_upload_to_a_wsgi_app_at_256kb_per_second(speed, path):
    """A WSGI app reading wsgi.input sees the upload at the limit."""
    body = os.urandom(UPLOAD_SIZE)
    r, took = timed_echo(speed.port, path, body)
    assert r.status == 200, r
    assert sha(r.body) == sha(body), "echo differs from the upload"
    assert 2.5 <= took <= 4.5 + SLACK, f"768 KB at 256KB/s took {took:.2f}s (want 2.5-4.5)"


def test_download_from_a_wsgi_app_at_512kb_per_second(speed):
    """A WSGI app's streamed response goes out at the limit."""
    body = os.urandom(BIG_SIZE)
    r, took = timed_echo(speed.port, "/wsgidown", body)
    assert r.status == 200 and sha(r.body) == sha(body)
    assert 3.0 <= took <= 4.5 + SLACK, f"2 MB echoed at 512KB/s took {took:.2f}s (want 3.0-4.5)"


def test_upload_without_throttle_is_full_speed(speed):
    body = os.urandom(UPLOAD_SIZE)
    r, took = timed_echo(speed.port, "/upfast", body)
    assert r.status == 200 and sha(r.body) == sha(body)
    assert took < FULL_SPEED, f"768 KB unthrottled took {took:.2f}s"


def test_other_route_is_full_speed(speed, tree):
    r, took = timed_download(speed.port, "/fast/big.bin")
    assert r.status == 200 and sha(r.body) == sha(tree.big)
    assert took < FULL_SPEED, f"2 MB on a route without throttle took {took:.2f}s"


def test_keep_alive_after_a_throttled_request_is_full_speed(speed, tree):
    """The limit is lifted when the request ends: the next request on the
    same connection, to a route without throttle, goes at full speed."""
    with Conn(speed.port, timeout=T) as c:
        r, took1 = timed_get(c, "/slow/small.bin")
        assert r.status == 200 and r.body == tree.small
        assert "close" not in r.connection_tokens()
        r, took2 = timed_get(c, "/fast/big.bin")
        assert r.status == 200 and sha(r.body) == sha(tree.big)
        assert took2 < FULL_SPEED, \
            f"2 MB after a throttled request on the same connection took {took2:.2f}s"
        # and the throttled route is throttled again on the same connection
        r, took3 = timed_get(c, "/slow/big.bin")
        assert r.status == 200 and sha(r.body) == sha(tree.big)
        assert 3.0 <= took3 <= 4.5 + SLACK, f"took {took3:.2f}s (want 3.0-4.5)"


def test_throttled_download_leaves_the_worker_free(speed):
    """While one client downloads slowly, others are served at once."""
    with Conn(speed.port, timeout=T) as slow:
        slow.send(request("/slow/big.bin"))
        time.sleep(0.3)
        t0 = time.monotonic()
        r = one(speed.port, "/fast/hello.txt")
        assert (r.status, r.body) == (200, b"hello\n")
        assert time.monotonic() - t0 < 1.0 * SLOW
        r = slow.read_response()
        assert r.status == 200 and len(r.body) == BIG_SIZE


# ================================================================ requests per second

RL = {"requests": "5/s", "burst": 5}


def test_requests_over_the_rate_get_429_and_the_rate_recovers(tutti):
    d = tutti(config([hello_route("/rl/", RL), hello_route("/free/")]))
    rs = volley(d.port, "/rl/x", 20)
    assert_limited(rs, 5)
    wait = max(assert_retry_after(r) for r in rs if r.status == 429)
    # another route is not limited meanwhile
    assert statuses(volley(d.port, "/free/x", 10)) == [200] * 10
    # after Retry-After the client is welcome again
    time.sleep(wait + 0.2)
    assert one(d.port, "/rl/x").status == 200
    # and a second later the bucket holds a burst again
    time.sleep(1.2)
    st = statuses(volley(d.port, "/rl/x", 10))
    assert 4 <= st.count(200) <= 6, st
    assert set(st) <= {200, 429}, st


def test_steady_rate_under_the_limit_is_never_refused(tutti):
    d = tutti(config([hello_route("/rl/", RL)]))
    st = []
    t0 = time.monotonic()
    for i in range(12):                     # 4 per second for 3 s
        st.append(one(d.port, "/rl/x").status)
        time.sleep(max(0.0, t0 + (i + 1) * 0.25 - time.monotonic()))
    assert st == [200] * 12, st


def test_429_on_a_keep_alive_connection(tutti):
    """A refused request is answered; the client may go on (or is told to
    close) but never left hanging."""
    d = tutti(config([hello_route("/rl/", RL)]))
    with Conn(d.port, timeout=T) as c:
        got = []
        for _ in range(10):
            c.send(request("/rl/x"))
            try:
                r = c.read_response()
            except Closed:
                break
            got.append(r.status)
            if "close" in r.connection_tokens():
                break
    assert got[:5] == [200] * 5, got
    assert 429 in got or len(got) < 10, got


def test_untrusted_peer_cannot_escape_with_the_header(tutti):
    """The header is believed only from trusted_proxies: 127.0.0.1 is not
    one here, so every request counts against 127.0.0.1 whatever it says."""
    d = tutti(config([hello_route("/rl/", dict(RL, key="header:X-Real-IP",
                                               trusted_proxies=["10.0.0.0/8"]))]))
    rs = [one(d.port, "/rl/x", [f"X-Real-IP: 203.0.113.{i}"]) for i in range(20)]
    assert_limited(rs, 5, "spoofed X-Real-IP from an untrusted peer: ")


def test_trusted_header_gives_each_client_its_own_bucket(tutti):
    d = tutti(config([hello_route("/rl/", dict(RL, key="header:X-Real-IP",
                                               trusted_proxies=["127.0.0.1", "::1",
                                                                "10.0.0.0/8"]))]))
    by_client = {}
    for client in ("198.51.100.1", "198.51.100.2", "2001:db8::7"):
        by_client[client] = volley(d.port, "/rl/x", 10, [f"X-Real-IP: {client}"])
    for client, rs in by_client.items():
        assert_limited(rs, 5, f"X-Real-IP {client}: ")
    # the proxy's own address is a client of its own too (no header)
    assert_limited(volley(d.port, "/rl/x", 10), 5, "no header: ")


def test_trusted_proxy_by_cidr(tutti):
    """127.0.0.0/8 covers the peer: the header is believed."""
    d = tutti(config([hello_route("/rl/", dict(RL, key="header:X-Real-IP",
                                               trusted_proxies=["127.0.0.0/8"]))]))
    for i in range(3):
        assert_limited(volley(d.port, "/rl/x", 8, [f"X-Real-IP: 192.0.2.{i}"]), 5)


def test_trusted_header_that_is_not_an_address_counts_as_the_peer(tutti):
    """A header value that is no address gives no bucket of its own: the
    request counts against the peer, so junk values cannot fill the table."""
    d = tutti(config([hello_route("/rl/", dict(RL, key="header:X-Real-IP",
                                               trusted_proxies=["127.0.0.1"]))]))
    rs = [one(d.port, "/rl/x", [f"X-Real-IP: junk-{i}"]) for i in range(12)]
    assert_limited(rs, 5, "X-Real-IP that is not an address: ")
    # the peer's own bucket is the one they emptied
    assert one(d.port, "/rl/x").status == 429


def test_requests_limit_on_a_return_route(tutti):
    """Filters run before every handler, the core's `return` included."""
    d = tutti(config([{"match": "/r", "return": {"status": 200, "body": "ok\n"},
                       "throttle": RL}]))
    assert_limited(volley(d.port, "/r", 12), 5, "return route: ")


def test_429_body_type_and_access_log(tutti):
    d = tutti(config([hello_route("/rl/", RL)]))
    rs = volley(d.port, "/rl/x", 7)
    refused = [r for r in rs if r.status == 429]
    assert refused, statuses(rs)
    r = refused[0]
    assert r.body == b"429 Too Many Requests\n", r.body
    assert (r.header("Content-Type") or "").startswith("text/plain"), r.raw_head
    lines = d.wait_access_lines(7)
    st = [parse_combined(l)["status"] for l in lines]
    assert st.count("429") == len(refused), lines
    assert "throttle: 429 for 127.0.0.1" in d.error_log_text(), d.error_log_text()


def test_default_burst_is_one_second_of_the_rate(tutti):
    """requests: 600/m without burst: a burst of 10."""
    d = tutti(config([hello_route("/rl/", {"requests": "600/m"})]))
    assert_limited(volley(d.port, "/rl/x", 20), 10, "600/m: ")


def test_forwarded_for_list_takes_the_last_element(tutti):
    """The last element is what the trusted proxy appended; what comes
    before it the client wrote and cannot choose its bucket with."""
    d = tutti(config([hello_route("/rl/", dict(RL, key="header:X-Forwarded-For",
                                               trusted_proxies=["127.0.0.1"]))]))
    rs = [one(d.port, "/rl/x", [f"X-Forwarded-For: 198.51.100.{i}, 203.0.113.7"])
          for i in range(12)]
    assert_limited(rs, 5, "varying first element: ")
    # a different last element is a different client
    assert one(d.port, "/rl/x", ["X-Forwarded-For: 1.2.3.4, 203.0.113.8"]).status == 200


def test_spellings_of_one_address_are_one_client(tutti):
    d = tutti(config([hello_route("/rl/", dict(RL, key="header:X-Real-IP",
                                               trusted_proxies=["127.0.0.1"]))]))
    spellings = ["192.0.2.7", "::ffff:192.0.2.7", " 192.0.2.7 ", "::FFFF:192.0.2.7",
                 "2001:db8::1", "2001:0db8:0:0::1", "2001:DB8:0:0:0:0:0:1"]
    v4 = [one(d.port, "/rl/x", [f"X-Real-IP: {a}"]) for a in spellings[:4] * 3]
    assert_limited(v4, 5, "spellings of 192.0.2.7: ")
    v6 = [one(d.port, "/rl/x", [f"X-Real-IP: {a}"]) for a in spellings[4:] * 4]
    assert_limited(v6, 5, "spellings of 2001:db8::1: ")


def test_503_does_not_use_up_a_request(tutti):
    d = tutti(config([hello_route("/c/", {"connections": 1, "requests": "1/m", "burst": 2},
                                  echo=True)]))
    c = Conn(d.port, timeout=T)
    try:
        c.send(request("/c/", method="POST", body=b"q" * 10)[:-5])   # token 1 of 2
        time.sleep(0.3)
        for _ in range(5):
            r = one(d.port, "/c/")
            assert r.status == 503 and r.header("Retry-After") == "1", r
        c.send(b"qqqqq")
        assert c.read_response().status == 200
    finally:
        c.close()
    # the 503s took no token: the second of the burst is still there
    assert wait_for(lambda: (lambda s: s if s != 503 else None)(one(d.port, "/c/").status),
                    3 * SLOW, "the in-flight slot to be freed") == 200
    assert one(d.port, "/c/").status == 429


def test_requests_limit_is_divided_between_workers(tutti):
    """Buckets are per worker and each holds R/W: with 2 workers and
    10/s burst 10, a volley never gets more than one burst through in all."""
    d = tutti(config([hello_route("/rl/", {"requests": "10/s", "burst": 10})], workers=2))
    d.wait_workers(2)
    st = statuses(volley(d.port, "/rl/x", 40))
    assert set(st) <= {200, 429}, st
    assert 5 <= st.count(200) <= 12, f"{st.count(200)} of 40 went through: {st}"


# ================================================================ connections per client

def test_connections_over_the_limit_get_503(tutti):
    d = tutti(config([hello_route("/c/", {"connections": 2, "key": "header:X-Real-IP",
                                          "trusted_proxies": ["127.0.0.1"]}, echo=True)]))
    a_hdr = ["X-Real-IP: 192.0.2.1"]
    # two uploads in flight for client A: their bodies are half sent
    busy = []
    try:
        for _ in range(2):
            c = Conn(d.port, timeout=T)
            busy.append(c)
            c.send(request("/c/", a_hdr, method="POST", body=b"x" * 10)[:-5])
        time.sleep(0.3)
        # a third request from A at the same time: 503
        r = one(d.port, "/c/", a_hdr)
        assert r.status == 503, r
        # client B is not affected
        r = one(d.port, "/c/", ["X-Real-IP: 192.0.2.2"])
        assert r.status == 200, r
        # one of A's finishes: A may start another
        busy[0].send(b"xxxxx")
        r = busy[0].read_response()
        assert (r.status, r.body) == (200, b"x" * 10)
        wait_for(lambda: one(d.port, "/c/", a_hdr).status == 200, 3 * SLOW,
                 "a request from A once one of its two finished")
        busy[1].send(b"xxxxx")
        assert busy[1].read_response().status == 200
    finally:
        for c in busy:
            c.close()
    assert one(d.port, "/c/", a_hdr).status == 200


def test_connection_slot_freed_when_the_client_disconnects(tutti):
    d = tutti(config([hello_route("/c/", {"connections": 1}, echo=True)]))
    c = Conn(d.port, timeout=T)
    try:
        c.send(request("/c/", method="POST", body=b"y" * 10)[:-5])
        time.sleep(0.3)
        assert one(d.port, "/c/").status == 503
    finally:
        c.close()           # aborted mid-body
    wait_for(lambda: one(d.port, "/c/").status == 200, 3 * SLOW,
             "the slot of an aborted request to be freed")


# ================================================================ many clients

def _pipelined(port, keys, path="/many/x", batch=250):
    """One request per key, pipelined in batches, a connection per batch
    (the core closes a connection after its 1000th response); returns the
    statuses."""
    out = []
    for i in range(0, len(keys), batch):
        part = keys[i:i + batch]
        with Conn(port, timeout=T) as c:
            c.send(b"".join(request(path, [f"X-Real-IP: {k}"]) for k in part))
            for _ in part:
                out.append(c.read_response().status)
    return out


def _keys(n, start=0):
    return [f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}" for i in range(start, start + n)]


def test_ten_thousand_spoofed_keys_keep_memory_bounded(tutti):
    d = tutti(config([hello_route("/many/", {"requests": "5/s", "burst": 5,
                                             "key": "header:X-Real-IP",
                                             "trusted_proxies": ["127.0.0.1"],
                                             "clients": 10000})]))
    pid = d.worker_pids()[0]
    _pipelined(d.port, _keys(200, start=1 << 20))           # warm up
    before = rss_kb(pid)
    st = _pipelined(d.port, _keys(10000))
    assert st.count(200) == 10000, f"first requests of fresh keys refused: " \
        f"{ {s: st.count(s) for s in set(st)} }"
    mid = rss_kb(pid)
    # as many again: the table is full, older keys make room
    st = _pipelined(d.port, _keys(10000, start=10000))
    assert st.count(200) == 10000, f"fresh keys refused once the table was full: " \
        f"{ {s: st.count(s) for s in set(st)} }"
    after = rss_kb(pid)
    # ASan keeps freed memory in quarantine (tens of MB for 10,000 requests
    # on any route), so its bound is looser; the table itself is ~1.6 MB
    bound = (80 if SANITIZED else 20) * 1024
    assert mid - before < bound, f"worker RSS grew {before} -> {mid} kB for 10,000 keys"
    assert after - before < bound, f"worker RSS grew {before} -> {after} kB for 20,000 keys"
    # still answering, and still limiting
    assert d.worker_pids() == [pid], "the worker changed"
    assert_limited(volley(d.port, "/many/x", 10, ["X-Real-IP: 192.0.2.99"]), 5)


# ================================================================ IPv6

def test_ipv6_listener(tutti, tree):
    if not ipv6_loopback():
        pytest.skip("no IPv6 loopback on this machine")
    d = tutti(f"""\
modules: [hello, throttle]
access_log: "@ACCESS_LOG@"
servers:
  - listen: ["127.0.0.1:@PORT@", "[::1]:@PORT@"]
    routes:
      - match: /rl/
        hello: {{greeting: Hi}}
        throttle: {{requests: 5/s, burst: 5}}
      - match: /hdr/
        hello: {{greeting: Hi}}
        throttle: {{requests: 5/s, burst: 5, key: "header:X-Real-IP", trusted_proxies: ["::1"]}}
""")
    r = one(d.port, "/rl/x", host="::1")
    assert (r.status, r.body) == (200, b"Hi, x!\n")
    # ::1 has a bucket of its own, 127.0.0.1 another
    assert_limited([r] + volley(d.port, "/rl/x", 11, host="::1"), 5, "over ::1: ")
    assert_limited(volley(d.port, "/rl/x", 12), 5, "over 127.0.0.1 after ::1: ")
    # ::1 is a trusted proxy: its header is believed
    for client in ("2001:db8::1", "2001:db8::2"):
        assert_limited(volley(d.port, "/hdr/x", 8, [f"X-Real-IP: {client}"], host="::1"), 5,
                       f"X-Real-IP {client} over ::1: ")
    # 127.0.0.1 is not: spoofing from there lands in one bucket
    rs = [one(d.port, "/hdr/x", [f"X-Real-IP: 2001:db8::{i + 10:x}"]) for i in range(12)]
    assert_limited(rs, 5, "spoofed from 127.0.0.1: ")


# ================================================================ config errors

def _check(tmp_path, throttle_lines):
    """`tutti -t` on a config whose throttle key is at line 7 and whose block
    (throttle_lines) starts at line 8; given a str, `throttle: <that>`."""
    if isinstance(throttle_lines, str):
        block = f"        throttle: {throttle_lines}\n"                     # 7
    else:
        block = "        throttle:\n" + "".join(f"          {l}\n" for l in throttle_lines)
    text = ("modules: [hello, throttle]\n"                                   # 1
            "servers:\n"                                                      # 2
            f"  - listen: [\"127.0.0.1:{free_port()}\"]\n"                    # 3
            "    routes:\n"                                                   # 4
            "      - match: /\n"                                              # 5
            "        hello: {greeting: Hi}\n" + block)                        # 6, 7, 8...
    (tmp_path / "tutti.yaml").write_text(text)
    return run_tutti(["-t", "-c", "tutti.yaml"], tmp_path)


def test_config_ok(tmp_path):
    res = _check(tmp_path, ["download: 512KB/s", "download_after: 1MB", "upload: 256KB/s",
                            "requests: 5/s", "burst: 5", "key: header:X-Real-IP",
                            'trusted_proxies: [127.0.0.1, "::1", 10.0.0.0/8]',
                            "connections: 4", "clients: 10000"])
    out = res.stderr + res.stdout
    assert res.returncode == 0, out
    assert "configuration OK" in out
    for ok in (["requests: 600/m"], ["requests: 20/s"], ["download: 1MB/s"],
               ["connections: 1"]):
        res = _check(tmp_path, ok)
        assert res.returncode == 0, (ok, res.stderr + res.stdout)


# lines: the line of the throttle key (7) or of the offending value (8, 9)
@pytest.mark.parametrize("block,lines,words", [
    ("{}", {7}, ["throttle"]),
    (["burst: 5"], {7, 8}, ["requests"]),
    (["download: 1MB/s", "burst: 5"], {9}, ["burst", "requests"]),
    (["download: 5/s"], {8}, ["download"]),
    (["upload: 10"], {8}, ["upload"]),
    (["requests: 5KB/s"], {8}, ["requests"]),
    (["download: fast"], {8}, ["download"]),
    (["requests: 5/s", "key: header:X-Real-IP", "trusted_proxies: [10.0.0.0/33]"], {10},
     ["10.0.0.0/33"]),
    (["requests: 5/s", "key: header:X-Real-IP", "trusted_proxies: [10.0.0.300]"], {10},
     ["10.0.0.300"]),
    (["requests: 5/s", "key: header:X-Real-IP", "trusted_proxies: [localhost]"], {10},
     ["localhost"]),
    (["requests: 5/s", "key: cookie:sid"], {9}, ["key"]),
    (["requests: 5/s", "connections: -1"], {9}, ["connections"]),
    (["requests: 5/s", "key: header:X-Real-IP", "trusted_proxies: [10.0.0.1/8]"], {10},
     ["10.0.0.0/8"]),
    (["requests: 5/s", "key: header:X-Real-IP"], {9}, ["trusted_proxies"]),
    (["requests: 5/s", "trusted_proxies: [127.0.0.1]"], {9}, ["key"]),
    (["download_after: 1MB", "upload: 1MB/s"], {8}, ["download_after", "download"]),
], ids=["empty", "burst-alone", "burst-without-requests", "download-in-requests", "upload-no-unit",
        "requests-in-bytes", "download-word", "cidr-prefix", "bad-address", "hostname",
        "bad-key", "negative-connections", "host-bits", "header-without-proxies",
        "proxies-without-header", "after-without-download"])
def test_config_errors(tmp_path, block, lines, words):
    line = _error_line(_check(tmp_path, block), lines)
    for w in words:
        assert w in line, line


def test_config_unknown_key_suggests(tmp_path):
    line = _error_line(_check(tmp_path, ["downlod: 512KB/s"]), {8})
    assert "'downlod'" in line and "did you mean 'download'" in line, line
    line = _error_line(_check(tmp_path, ["requests: 5/s", "brust: 5"]), {9})
    assert "did you mean 'burst'" in line, line
    line = _error_line(_check(tmp_path, ["requests: 5/s", "trusted_proxy: [127.0.0.1]"]), {9})
    assert "did you mean 'trusted_proxies'" in line, line


def test_config_not_a_map(tmp_path):
    line = _error_line(_check(tmp_path, "512KB/s"), {7})
    assert "throttle" in line, line


def test_config_error_means_no_start(tmp_path):
    port = free_port()
    (tmp_path / "tutti.yaml").write_text(
        "modules: [hello, throttle]\nservers:\n"
        f"  - listen: [\"127.0.0.1:{port}\"]\n    routes:\n      - match: /\n"
        "        hello: {greeting: Hi}\n        throttle: {download: 5/s}\n")
    res = run_tutti(["-c", "tutti.yaml"], tmp_path)
    assert res.returncode == 1, res.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))

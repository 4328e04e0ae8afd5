"""The `keepalive` module (doc/keepalive.md), through the real daemon and raw
sockets: the idle timeout, max_requests (exactly the Nth response closes),
per-server overrides, max_idle (the oldest idle connections go first),
max_connections (the rest wait in the backlog), and the config errors.

Timings are bounds a slow machine cannot break: "closed within 3 s" for a
1 s timeout, "still open" only well inside the timeout. Each test starts its
own daemon, since every test needs its own limits."""
import errno
import re
import socket
import time

import pytest

from harness import SLOW, free_port, run_tutti, wait_for
from harness import config_error_line as _error_line
from rawhttp import Closed, Conn

T = 5 * SLOW
MODULES = ["hello", "keepalive"]


def config(keepalive=None, servers=None, **top):
    cfg = {"modules": MODULES}
    if keepalive is not None:
        cfg["keepalive"] = keepalive
    cfg.update(top)
    cfg["servers"] = servers or [{"routes": routes()}]
    return cfg


def routes():
    return [{"match": "/echo", "hello": {"echo": True}},
            {"match": "/", "hello": {"greeting": "Hi"}}]


def request(path="/x", host="localhost", extra=(), body=None):
    lines = [f"{'POST' if body is not None else 'GET'} {path} HTTP/1.1", f"Host: {host}", *extra]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def ask(c, name="x", host="localhost"):
    """One GET on an open connection; returns the response (checked 200)."""
    c.send(request(f"/{name}", host))
    r = c.read_response()
    assert (r.status, r.body) == (200, f"Hi, {name}!\n".encode()), r
    return r


def is_closed(c):
    """Without waiting: has the server closed this connection? (Bytes it sent
    are kept in the buffer.)"""
    # (a socket with a timeout would wait for readability first, flags or not)
    c.sock.setblocking(False)
    try:
        data = c.sock.recv(65536)
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
            return False
        return True
    finally:
        c.sock.settimeout(c.timeout)
    if not data:
        return True
    c.buf += data
    return False


def closed_within(c, timeout):
    """True when the server closes c within timeout; fails on data instead."""
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        c.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = c.sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            return True
        finally:
            c.sock.settimeout(c.timeout)
        if not data:
            return True
        raise AssertionError(f"unexpected bytes on an idle connection: {data[:80]!r}")
    return False


# ================================================================ timeout

def test_idle_connection_is_closed_after_the_timeout(tutti):
    d = tutti(config({"timeout": "1s"}))
    idle, busy = Conn(d.port, timeout=T), Conn(d.port, timeout=T)
    try:
        ask(idle, "idle")
        ask(busy, "busy0")
        t0 = time.monotonic()
        # the busy one asks every 0.5 s for 3 s and is never closed
        idle_closed_at = None
        i = 0
        while time.monotonic() - t0 < 3.0:
            time.sleep(0.5)
            i += 1
            r = ask(busy, f"busy{i}")
            assert "close" not in r.connection_tokens()
            if idle_closed_at is None and is_closed(idle):
                idle_closed_at = time.monotonic() - t0
            if i == 1:
                # well inside the timeout the idle one is still there
                assert idle_closed_at is None, \
                    f"the idle connection closed after {idle_closed_at:.2f}s, timeout 1s"
        if idle_closed_at is None and closed_within(idle, 3.0 - (time.monotonic() - t0)):
            idle_closed_at = time.monotonic() - t0
        assert idle_closed_at is not None, "an idle connection outlived timeout 1s by 2 s"
        assert not is_closed(busy), "the busy connection was closed"
    finally:
        idle.close()
        busy.close()


def test_timeout_zero_closes_after_each_response(tutti):
    d = tutti(config({"timeout": 0}))
    with Conn(d.port, timeout=T) as c:
        r = ask(c)
        assert closed_within(c, 2.0), "timeout 0: the connection stayed open"


def test_defaults_keep_the_connection(tutti):
    """The section left out: the module applies 15 s and 1000 requests."""
    d = tutti(config())
    with Conn(d.port, timeout=T) as c:
        for i in range(5):
            r = ask(c, f"n{i}")
            assert "close" not in r.connection_tokens()
        time.sleep(1.5)
        ask(c, "later")
        assert c.open_after(0.2)


# ================================================================ max_requests

def _check_max_requests(c, n, host="localhost"):
    for i in range(1, n):
        r = ask(c, f"r{i}", host)
        assert "close" not in r.connection_tokens(), f"response {i} of {n} closes"
    r = ask(c, f"r{n}", host)
    assert "close" in r.connection_tokens(), \
        f"response {n} (max_requests {n}) has no Connection: close: {r.raw_head!r}"
    assert closed_within(c, 2.0), f"the connection stayed open after response {n}"


def test_max_requests_closes_exactly_the_nth(tutti):
    d = tutti(config({"max_requests": 3}))
    with Conn(d.port, timeout=T) as c:
        _check_max_requests(c, 3)
    # and a new connection starts counting again
    with Conn(d.port, timeout=T) as c:
        _check_max_requests(c, 3)


def test_max_requests_with_pipelining(tutti):
    """Five pipelined: three answers, the third closes, the rest are dropped."""
    d = tutti(config({"max_requests": 3}))
    with Conn(d.port, timeout=T) as c:
        c.send(b"".join(request(f"/p{i}") for i in range(1, 6)))
        for i in range(1, 4):
            r = c.read_response()
            assert (r.status, r.body) == (200, f"Hi, p{i}!\n".encode())
            assert ("close" in r.connection_tokens()) == (i == 3), (i, r.raw_head)
        assert c.read_until_close(2.0) == b"", "bytes after the closing response"


def test_max_requests_one(tutti):
    d = tutti(config({"max_requests": 1}))
    with Conn(d.port, timeout=T) as c:
        _check_max_requests(c, 1)


def test_per_server_override_on_two_ports(tutti):
    other = free_port()
    d = tutti(config({"max_requests": 4, "timeout": "15s"}, servers=[
        {"keepalive": {"max_requests": 2, "timeout": "1s"}, "routes": routes()},
        {"listen": [f"127.0.0.1:{other}"], "routes": routes()},
    ]))
    with Conn(d.port, timeout=T) as c:
        _check_max_requests(c, 2)
    with Conn(other, timeout=T) as c:
        _check_max_requests(c, 4)
    # the timeout too: 1 s on the first server, 15 s (inherited) on the other
    a, b = Conn(d.port, timeout=T), Conn(other, timeout=T)
    try:
        ask(a)
        ask(b)
        assert closed_within(a, 3.0), "the server's own timeout 1s was not applied"
        assert not is_closed(b), "the second server did not keep the top-level 15s"
    finally:
        a.close()
        b.close()


def test_per_server_override_by_name_on_one_listener(tutti):
    """The values of the server that answered the request apply."""
    d = tutti(config({"max_requests": 5}, servers=[
        {"names": ["a.test"], "keepalive": {"max_requests": 2}, "routes": routes()},
        {"names": ["b.test"], "routes": routes()},
    ]))
    with Conn(d.port, timeout=T) as c:
        _check_max_requests(c, 2, host="a.test")
    with Conn(d.port, timeout=T) as c:
        _check_max_requests(c, 5, host="b.test")


# ================================================================ max_idle

def test_max_idle_closes_the_oldest_idle_connections(tutti):
    d = tutti(config({"max_idle": 10}))
    conns = []
    try:
        for i in range(30):
            c = Conn(d.port, timeout=T)
            conns.append(c)
            ask(c, f"c{i}")
        time.sleep(0.5)
        open_ = [i for i, c in enumerate(conns) if not is_closed(c)]
        assert len(open_) <= 12, f"{len(open_)} idle connections still open " \
            f"with max_idle 10: {open_}"
        assert len(open_) >= 8, f"only {open_} left open with max_idle 10"
        # the survivors are the ones used last
        assert min(open_) >= 18, f"older connections survived: {open_}"
        assert set(range(22, 30)) <= set(open_), f"recently used ones were closed: {open_}"
        # and they still serve
        for i in open_:
            ask(conns[i], f"again{i}")
    finally:
        for c in conns:
            c.close()


def test_max_idle_spares_a_connection_that_is_used_again(tutti):
    """Using an old connection makes it the most recent one."""
    d = tutti(config({"max_idle": 3}))
    conns = []
    try:
        for i in range(3):
            c = Conn(d.port, timeout=T)
            conns.append(c)
            ask(c, f"c{i}")
        ask(conns[0], "again")          # 0 is now the most recently used
        c = Conn(d.port, timeout=T)     # a fourth idle one: 1 goes
        conns.append(c)
        ask(c, "c3")
        time.sleep(0.3)
        assert [is_closed(c) for c in conns] == [False, True, False, False]
    finally:
        for c in conns:
            c.close()


def test_max_idle_does_not_touch_busy_connections(tutti):
    """Connections in the middle of a request are not idle."""
    d = tutti(config({"max_idle": 2}))
    busy, idle = [], []
    try:
        for i in range(4):
            c = Conn(d.port, timeout=T)
            busy.append(c)
            c.send(request("/echo", body=b"z" * 10)[:-5])     # body half sent
        for i in range(4):
            c = Conn(d.port, timeout=T)
            idle.append(c)
            ask(c, f"i{i}")
        time.sleep(0.3)
        assert sum(not is_closed(c) for c in idle) <= 3
        for c in busy:
            c.send(b"zzzzz")
            r = c.read_response()
            assert (r.status, r.body) == (200, b"z" * 10)
    finally:
        for c in busy + idle:
            c.close()


def test_max_idle_counts_parked_connections(tutti):
    """Connections idle long enough to be parked (doc/http.md: after half a
    second) still count, and the oldest of them goes first."""
    d = tutti(config({"max_idle": 3}))
    conns = []
    try:
        for i in range(3):
            c = Conn(d.port, timeout=T)
            conns.append(c)
            ask(c, f"old{i}")
        time.sleep(1.2)                 # parked by now
        for i in range(2):
            c = Conn(d.port, timeout=T)
            conns.append(c)
            ask(c, f"new{i}")
        time.sleep(0.3)
        assert [is_closed(c) for c in conns] == [True, True, False, False, False]
        ask(conns[2], "still")
    finally:
        for c in conns:
            c.close()


# ================================================================ max_connections

def test_max_connections_makes_the_next_wait_in_the_backlog(tutti):
    d = tutti(config({"max_connections": 5}))
    conns = []
    try:
        for i in range(3):
            c = Conn(d.port, timeout=T)
            conns.append(c)
            ask(c, f"c{i}")                                 # idle keep-alive
        for i in range(2):
            c = Conn(d.port, timeout=T)
            conns.append(c)
            c.send(request("/echo", body=b"w" * 10)[:-5])   # a request in flight
        time.sleep(0.2)
        sixth = Conn(d.port, timeout=T)                    # connects: the backlog
        try:
            sixth.send(request("/sixth"))
            assert sixth.open_after(1.0), \
                "the 6th connection was answered (or closed) while 5 were open"
            conns[0].close()                                # one of the five goes
            r = sixth.read_response()
            assert (r.status, r.body) == (200, b"Hi, sixth!\n")
            # the in-flight ones were never disturbed
            for c in conns[3:]:
                c.send(b"wwwww")
                assert c.read_response().body == b"w" * 10
        finally:
            sixth.close()
    finally:
        for c in conns:
            c.close()


def test_max_connections_serves_everyone_in_turn(tutti):
    """Twelve clients at once, five at a time: each is served once others
    leave."""
    d = tutti(config({"max_connections": 5}))
    conns = [Conn(d.port, timeout=T) for _ in range(12)]
    try:
        for i, c in enumerate(conns):
            c.send(request(f"/t{i}", extra=["Connection: close"]))
        for i, c in enumerate(conns):
            assert c.read_response().body == f"Hi, t{i}!\n".encode()
    finally:
        for c in conns:
            c.close()


def test_max_connections_counts_parked_connections(tutti):
    d = tutti(config({"max_connections": 2}))
    a, b = Conn(d.port, timeout=T), Conn(d.port, timeout=T)
    try:
        ask(a)
        ask(b)
        time.sleep(1.2)                 # both parked
        with Conn(d.port, timeout=T) as third:
            third.send(request("/third"))
            assert third.open_after(1.0), "a 3rd connection was served with 2 open"
            b.close()
            assert third.read_response().body == b"Hi, third!\n"
        ask(a, "a-again")
    finally:
        a.close()
        b.close()


def test_reload_applies_new_limits(tutti):
    d = tutti(config({"max_requests": 3}))
    with Conn(d.port, timeout=T) as c:
        _check_max_requests(c, 3)
    d.reload(config({"max_requests": 2}))
    # connections to the new workers get the new value
    wait_for(lambda: len(d.worker_pids()) == 1, 10 * SLOW, "the old worker to leave")
    with Conn(d.port, timeout=T) as c:
        _check_max_requests(c, 2)


# ================================================================ config errors

def _check(tmp_path, top_lines=(), server_lines=()):
    """`tutti -t`: top_lines at lines 3..., then the server (its keepalive
    block, when given, right after its listen line)."""
    text = "modules: [hello, keepalive]\n"                                  # 1
    text += "keepalive:\n" if top_lines else ""                             # 2
    text += "".join(f"  {l}\n" for l in top_lines)
    text += "servers:\n" f"  - listen: [\"127.0.0.1:{free_port()}\"]\n"
    if server_lines:
        text += "    keepalive:\n" + "".join(f"      {l}\n" for l in server_lines)
    text += "    routes:\n      - match: /\n        hello: {greeting: Hi}\n"
    (tmp_path / "tutti.yaml").write_text(text)
    return run_tutti(["-t", "-c", "tutti.yaml"], tmp_path)


def test_config_ok(tmp_path):
    res = _check(tmp_path, ["timeout: 15s", "max_requests: 1000", "max_idle: 512",
                            "max_connections: 10000"],
                 ["timeout: 5s", "max_requests: 100"])
    out = res.stderr + res.stdout
    assert res.returncode == 0, out
    assert "configuration OK" in out
    res = _check(tmp_path, ["timeout: 500ms", "max_idle: 0", "max_connections: 0"])
    assert res.returncode == 0, res.stderr + res.stdout


def test_config_bad_duration(tmp_path):
    line = _error_line(_check(tmp_path, ["timeout: 5 parsecs"]), {3})
    assert "timeout" in line, line
    # in a server block: line 3 listen, 4 keepalive, 5 the value
    line = _error_line(_check(tmp_path, server_lines=["timeout: soon"]), {5})
    assert "timeout" in line, line


def test_config_bad_numbers(tmp_path):
    for bad in ("max_requests: lots", "max_requests: -1", "max_idle: 1.5",
                "max_connections: many"):
        line = _error_line(_check(tmp_path, [bad]), {3})
        assert bad.split(":")[0] in line, line


@pytest.mark.parametrize("key", ["max_idle", "max_connections"])
def test_config_worker_wide_key_in_a_server_is_an_error(tmp_path, key):
    line = _error_line(_check(tmp_path, server_lines=[f"{key}: 10"]), {4, 5})
    assert key in line and ("top-level" in line or "top level" in line), line


def test_config_unknown_key_suggests(tmp_path):
    line = _error_line(_check(tmp_path, ["max_request: 5"]), {3})
    assert "'max_request'" in line and "did you mean 'max_requests'" in line, line
    line = _error_line(_check(tmp_path, server_lines=["timout: 5s"]), {5})
    assert "'timout'" in line and "did you mean 'timeout'" in line, line


def test_config_not_a_map(tmp_path):
    (tmp_path / "tutti.yaml").write_text(
        "modules: [hello, keepalive]\nkeepalive: 15s\nservers:\n"
        f"  - listen: [\"127.0.0.1:{free_port()}\"]\n    routes:\n      - match: /\n"
        "        hello: {greeting: Hi}\n")
    line = _error_line(run_tutti(["-t", "-c", "tutti.yaml"], tmp_path), {2})
    assert "keepalive" in line, line


def test_config_section_without_the_module(tmp_path):
    """`keepalive:` while the module is not in `modules`: an error, never
    silently ignored."""
    (tmp_path / "tutti.yaml").write_text(
        "modules: [hello]\nkeepalive: {timeout: 5s}\nservers:\n"
        f"  - listen: [\"127.0.0.1:{free_port()}\"]\n    routes:\n      - match: /\n"
        "        hello: {greeting: Hi}\n")
    res = run_tutti(["-t", "-c", "tutti.yaml"], tmp_path)
    out = res.stderr + res.stdout
    assert res.returncode == 1, out
    assert "keepalive" in out, out

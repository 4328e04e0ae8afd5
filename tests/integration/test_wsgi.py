"""The `wsgi` module: PEP 3333 apps on the CPython each worker embeds,
through the real daemon and real clients.

The apps live in tests/apps/wsgi/ (rawapp: one view per PEP 3333 corner;
validated: wsgiref's validator; flaskapp, djsite, bottleapp: the
frameworks; cext: C extension modules). One daemon (module scope) mounts
them on a route each (Django has a second one, of its own); tests that need
their own config (start-up errors, reload, workers: 2, limits) start their
own. Apps report what happens after a
response is over (close() calls, a slow view starting) in files under a
state directory the tests poll."""
import hashlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from harness import (SANITIZED, SLOW, assert_same_workers, config_error_line, free_port,
                     rss_kb, run_tutti, wait_for)
from rawhttp import Closed, Conn, chunked

APPS = Path(__file__).resolve().parents[1] / "apps" / "wsgi"

T = 5 * SLOW                    # timeout of one small request
BIG_T = 120 * SLOW              # timeout of one big transfer

BIG_FILE = 20 * 1024 * 1024     # served through wsgi.file_wrapper
UPLOAD_MB = 200                 # the streamed chunked upload
UPLOAD_RSS_MAX_KB = 64 * 1024   # what that upload may add to the worker's RSS


def pattern(n):
    """The bytes rawapp.pattern(n) makes."""
    block = bytes(range(256)) * 4
    return (block * (n // len(block) + 1))[:n]


def token():
    return uuid.uuid4().hex[:12]


# ---------------------------------------------------------------- the shared daemon

def python_section(state):
    return {"path": [str(APPS)],
            "env": {"WSGI_TEST_STATE": str(state), "DJANGO_SETTINGS_MODULE": "djsite"}}


def site_config(state):
    def wsgi(match, app, **kw):
        return {"match": match, "wsgi": {"app": app, **kw}}

    return {
        "modules": ["static", "wsgi"],
        "limits": {"max_body_size": "1GB"},        # the 200 MB upload
        "python": python_section(state),
        "servers": [{"routes": [
            wsgi("/raw/", "rawapp:application"),                 # threads: 4 (default)
            wsgi("/mnt", "rawapp:application", script_name="/mnt"),
            wsgi("/envmount", "rawapp:env", script_name="/envmount"),    # a view as the app
            wsgi("/t1/", "rawapp:application", threads=1),
            wsgi("/t0/", "rawapp:application", threads=0),
            wsgi("/busy/", "rawapp:application", threads=2),   # the busy test
            # big uploads and clients that leave mid-upload get routes of their
            # own: if one ever gets a Python thread stuck, the others go on
            wsgi("/up/", "rawapp:application"),
            wsgi("/leave/", "rawapp:application", threads=1),
            wsgi("/valid/", "validated:application"),
            wsgi("/valid0/", "validated:application", threads=0),
            wsgi("/flask/", "flaskapp:app", script_name="/flask"),
            wsgi("/bottle/", "bottleapp:app", script_name="/bottle"),
            wsgi("/cext/", "cext:application"),
            wsgi("/factory/", "rawapp:make_app()"),
            wsgi("/factory2/", "rawapp:make_app()"),           # the same app, shared
            {"match": "/short/", "wsgi": "rawapp:application"},    # wsgi: mod:app alone
            {"match": "/static/", "static": {"alias": str(state)}},
        ]}],
    }


@pytest.fixture(scope="module")
def django_site(shared_daemon, tmp_path_factory):
    """Django in a daemon of its own: with Flask in the same interpreter,
    LeakSanitizer reports libpython objects left at exit (see the report)."""
    st = tmp_path_factory.mktemp("wsgi-django")
    return shared_daemon({
        "modules": ["wsgi"],
        "python": python_section(st),
        "servers": [{"routes": [
            {"match": "/django/", "wsgi": {"app": "djsite:application", "script_name": "/django"}},
        ]}],
    })


@pytest.fixture(scope="module")
def site(shared_daemon, tmp_path_factory):
    st = tmp_path_factory.mktemp("wsgi-state")
    (st / "hello.txt").write_text("static hello\n")
    data = os.urandom(BIG_FILE)
    (st / "big.bin").write_bytes(data)
    d = shared_daemon(site_config(st))
    d.state = st
    d.big_sha = hashlib.sha256(data).hexdigest()
    d.big_offset_sha = hashlib.sha256(data[12345:]).hexdigest()
    d.first_workers = d.worker_pids()
    assert len(d.first_workers) == 1, d.first_workers
    return d


# ---------------------------------------------------------------- helpers

def request(site, target, method="GET", headers=(), body=None, chunk_sizes=None,
            version="HTTP/1.1", host="localhost"):
    """One request on a new connection (Connection: close). The target is
    sent as given; body goes with Content-Length, or chunked when
    chunk_sizes is given; host=None sends no Host header."""
    lines = [f"{method} {target} {version}", *([f"Host: {host}"] if host else []), *headers]
    data = b""
    if body is not None:
        if chunk_sizes:
            lines.append("Transfer-Encoding: chunked")
            data = chunked(body, chunk_sizes)
        else:
            lines.append(f"Content-Length: {len(body)}")
            data = body
    lines.append("Connection: close")
    with Conn(site.port) as c:
        c.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data)
        return c.read_response(head_request=(method == "HEAD"))


def environ_of(site, target, **kw):
    """The environ rawapp's env view saw, as {key: value-or-description}."""
    r = request(site, target, **kw)
    assert r.status == 200, (r, r.body[:500])
    return {k: (v["value"] if "value" in v else v) for k, v in json.loads(r.body).items()}


def raw_exchange(site, raw, timeout=T):
    """Send raw on a keep-alive connection and read everything until the
    server closes it; fails if the server keeps it open past timeout."""
    with Conn(site.port) as c:
        c.send(raw)
        return c.read_until_close(timeout)


def log_mark(d):
    return len(d.error_log_text())


def wait_log(d, mark, *needles, timeout=5):
    """Wait until everything in needles is in the error log after mark; return that part."""
    def check():
        text = d.error_log_text()[mark:]
        return text if all(n in text for n in needles) else None
    try:
        return wait_for(check, timeout * SLOW, f"{needles} in the error log")
    except AssertionError:
        raise AssertionError(f"{needles} not all in the error log; it has:\n"
                             f"{d.error_log_text()[mark:][-3000:]}") from None


def wait_file(path, what, timeout=5):
    """Wait until path exists and is not empty; return its text."""
    def check():
        try:
            return path.read_text() or None
        except OSError:
            return None
    return wait_for(check, timeout * SLOW, what)


def ok_after(site, route="/raw/"):
    """The route still answers, and the same worker does it."""
    r = request(site, route + "list")
    assert (r.status, r.body) == (200, b"one,two,three"), r
    assert_same_workers(site)


# ================================================================ the environ

def test_environ_has_every_pep3333_key_with_its_type(site):
    with Conn(site.port) as c:
        client_port = c.sock.getsockname()[1]
        c.send("GET /raw/env/x?a=1&b=two HTTP/1.1\r\nHost: localhost\r\n"
               "User-Agent: wsgi-test\r\nConnection: close\r\n\r\n")
        r = c.read_response()
    assert r.status == 200, r
    got = json.loads(r.body)
    e = {k: v.get("value") for k, v in got.items()}
    t = {k: v["type"] for k, v in got.items() if k != "_body"}

    assert e["REQUEST_METHOD"] == "GET"
    assert e["SCRIPT_NAME"] == ""
    assert e["PATH_INFO"] == "/raw/env/x"
    assert e["QUERY_STRING"] == "a=1&b=two"
    assert e["REQUEST_URI"] == "/raw/env/x?a=1&b=two"
    assert e["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert e["SERVER_PORT"] == str(site.port)
    assert e["SERVER_NAME"], "SERVER_NAME is empty"
    assert e["REMOTE_ADDR"] == "127.0.0.1"
    assert e["REMOTE_PORT"] == str(client_port)
    assert e["HTTP_HOST"] == "localhost"
    assert e["HTTP_USER_AGENT"] == "wsgi-test"
    assert "CONTENT_LENGTH" not in e, "a request without a body has no CONTENT_LENGTH"
    # every CGI variable is a native str
    cgi = [k for k in got if not k.startswith(("wsgi.", "_"))]
    assert {k: t[k] for k in cgi if t[k] != "str"} == {}

    assert (t["wsgi.version"], e["wsgi.version"]) == ("tuple", [1, 0])
    assert e["wsgi.url_scheme"] == "http"
    for key, value in (("wsgi.multithread", True), ("wsgi.multiprocess", False),
                       ("wsgi.run_once", False), ("wsgi.input_terminated", True)):
        assert (t[key], e[key]) == ("bool", value), key
    assert {"read", "readline", "readlines", "__iter__"} <= set(got["wsgi.input"]["methods"])
    assert {"write", "writelines", "flush"} <= set(got["wsgi.errors"]["methods"])
    assert got["wsgi.file_wrapper"]["callable"] is True


@pytest.mark.parametrize("target,path_info", [
    ("/raw/env/caf%C3%A9", "/raw/env/caf\u00c3\u00a9"),     # UTF-8 bytes, as latin-1 code points
    ("/raw/env/a%20b%2Bc+d", "/raw/env/a b+c+d"),
    ("/raw/env/%7Euser/%41", "/raw/env/~user/A"),
    ("/raw/env/caf\u00e9".encode().decode("latin-1"), "/raw/env/caf\u00c3\u00a9"),  # raw UTF-8
], ids=["utf8-escaped", "space-plus", "unreserved", "utf8-raw"])
def test_path_info_is_percent_decoded_latin1(site, target, path_info):
    e = environ_of(site, target + "?q=caf%C3%A9&x=a+b")
    assert e["PATH_INFO"] == path_info
    if "caf" in target:
        # the app gets the real string back the PEP 3333 way
        assert e["PATH_INFO"].encode("latin-1").decode("utf-8") == "/raw/env/caf\u00e9"
    # the query string and REQUEST_URI stay as they were sent
    assert e["QUERY_STRING"] == "q=caf%C3%A9&x=a+b"
    assert e["REQUEST_URI"] == target + "?q=caf%C3%A9&x=a+b"


def test_script_name_mounts_the_app(site):
    e = environ_of(site, "/mnt/env/caf%C3%A9?y=1")
    assert e["SCRIPT_NAME"] == "/mnt"
    assert e["PATH_INFO"] == "/env/caf\u00c3\u00a9"
    assert e["QUERY_STRING"] == "y=1"
    assert e["REQUEST_URI"] == "/mnt/env/caf%C3%A9?y=1"
    # without script_name the app sees the whole path
    e = environ_of(site, "/raw/env/z")
    assert (e["SCRIPT_NAME"], e["PATH_INFO"]) == ("", "/raw/env/z")


def test_the_mount_point_itself_reaches_the_app(site):
    """match: /envmount with script_name: /envmount takes the prefix itself
    (empty PATH_INFO) and what is under it, not /envmountx."""
    e = environ_of(site, "/envmount")
    assert (e["SCRIPT_NAME"], e["PATH_INFO"]) == ("/envmount", "")
    e = environ_of(site, "/envmount/")
    assert (e["SCRIPT_NAME"], e["PATH_INFO"]) == ("/envmount", "/")
    e = environ_of(site, "/envmount/a%20b?c=d")
    assert (e["SCRIPT_NAME"], e["PATH_INFO"], e["QUERY_STRING"]) == ("/envmount", "/a b", "c=d")
    assert request(site, "/envmountx").status == 404


def test_dot_segments_are_removed(site):
    e = environ_of(site, "/raw/env/a/../b/./c")
    assert e["PATH_INFO"] == "/raw/env/b/c"
    assert e["REQUEST_URI"] == "/raw/env/a/../b/./c"


def test_server_name_and_software(site):
    e = environ_of(site, "/raw/env", host="www.example.com:8080")
    assert (e["SERVER_NAME"], e["SERVER_PORT"]) == ("www.example.com", str(site.port))
    assert e["HTTP_HOST"] == "www.example.com:8080"
    assert e["SERVER_SOFTWARE"].startswith("tutti/")
    # HTTP/1.0 without Host: the listener's address (the server has no names)
    e = environ_of(site, "/raw/env", version="HTTP/1.0", host=None)
    assert e["SERVER_NAME"] == "127.0.0.1"
    assert "HTTP_HOST" not in e


def test_query_string_is_empty_without_a_query(site):
    e = environ_of(site, "/raw/env")
    assert e["QUERY_STRING"] == ""
    e = environ_of(site, "/raw/env?")
    assert e["QUERY_STRING"] == ""


def test_content_type_and_length(site):
    body = b'{"json": true}'
    e = environ_of(site, "/raw/env", method="POST", body=body,
                   headers=["Content-Type: application/json; charset=utf-8"])
    assert e["REQUEST_METHOD"] == "POST"
    assert e["CONTENT_TYPE"] == "application/json; charset=utf-8"
    assert e["CONTENT_LENGTH"] == str(len(body))
    assert "HTTP_CONTENT_TYPE" not in e and "HTTP_CONTENT_LENGTH" not in e
    assert e["_body"]["len"] == len(body)


def test_chunked_body_has_no_content_length(site):
    body = b"0123456789" * 100
    e = environ_of(site, "/raw/env", method="PUT", body=body, chunk_sizes=[7, 300],
                   headers=["Content-Type: text/plain"])
    assert "CONTENT_LENGTH" not in e
    assert e["wsgi.input_terminated"] is True
    assert e["_body"] == {"len": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def test_http_headers_become_http_keys(site):
    e = environ_of(site, "/raw/env", headers=[
        "X-Multi: a", "X-Dash-Name: dash", "x-lower-case: low", "X-Multi: b",
        "X_Under_Score: sneaky", "X-Empty:", "Cookie: c=1", "Accept: text/html", "Cookie: d=2"])
    assert e["HTTP_X_MULTI"] == "a,b"
    assert e["HTTP_X_DASH_NAME"] == "dash"
    assert e["HTTP_X_LOWER_CASE"] == "low"
    assert e["HTTP_COOKIE"] == "c=1; d=2", "cookies combine with '; '"
    assert e["HTTP_ACCEPT"] == "text/html"
    assert e.get("HTTP_X_EMPTY", "") == ""
    # a header with "_" in its name could pose as a dashed one: dropped, like nginx
    assert [k for k in e if "UNDER" in k] == []


def test_http10_request(site):
    e = environ_of(site, "/raw/env", version="HTTP/1.0")
    assert e["SERVER_PROTOCOL"] == "HTTP/1.0"


@pytest.mark.parametrize("route,multithread", [("/raw/", True), ("/busy/", True),
                                               ("/t1/", False), ("/t0/", False)])
def test_multithread_follows_threads(site, route, multithread):
    e = environ_of(site, route + "env")
    assert e["wsgi.multithread"] is multithread
    assert e["wsgi.multiprocess"] is False


# ================================================================ wsgiref's validator

@pytest.mark.parametrize("route", ["/valid/", "/valid0/"])
def test_validator_finds_nothing(site, route):
    mark = log_mark(site)
    body = b"first line\n" + bytes(range(256)) * 40
    want = hashlib.sha256(body).hexdigest().encode()

    r = request(site, route + "get")
    assert (r.status, r.body) == (200, b"validated get"), r
    r = request(site, route + "get", version="HTTP/1.0")
    assert (r.status, r.body) == (200, b"validated get"), r
    r = request(site, route + "get", method="HEAD")
    assert (r.status, r.body) == (200, b""), r
    r = request(site, route + "stream")
    assert (r.status, r.body) == (200, b"written one two"), r
    r = request(site, route + "error")
    assert (r.status, r.body) == (500, b"error page"), r
    r = request(site, route + "nocontent")
    assert (r.status, r.body) == (204, b""), r
    r = request(site, route + "post", method="POST", body=body,
                headers=["Content-Type: application/octet-stream"])
    assert (r.status, r.body) == (200, want), r
    r = request(site, route + "post", method="POST", body=body, chunk_sizes=[5, 1000],
                headers=["Content-Type: application/octet-stream"])
    assert (r.status, r.body) == (200, want), r

    # the POST views wrote to wsgi.errors, last: once both show, the log
    # has what the validator said about the requests before
    wait_for(lambda: site.error_log_text()[mark:].count("validated post read") >= 2,
             5 * SLOW, "both POSTs in the error log")
    log = site.error_log_text()[mark:]
    assert "AssertionError" not in log, log
    assert "WSGIWarning" not in log, log
    assert "Traceback" not in log, log


# ================================================================ what the app returns

def test_list_gets_a_content_length(site):
    r = request(site, "/raw/list")
    assert (r.status, r.body) == (200, b"one,two,three")
    assert r.header("Content-Length") == "13"
    assert r.header("Transfer-Encoding") is None


def test_generator_is_chunked(site):
    r = request(site, "/raw/gen?n=7&size=1000")
    assert (r.status, r.body) == (200, pattern(7000))
    assert (r.header("Transfer-Encoding") or "").lower() == "chunked"
    assert r.header("Content-Length") is None


def test_generator_to_an_http10_client_ends_with_the_connection(site):
    r = request(site, "/raw/gen?n=7&size=1000", version="HTTP/1.0")
    assert (r.status, r.body) == (200, pattern(7000))
    assert r.header("Transfer-Encoding") is None


def test_head_sends_no_body_and_the_connection_goes_on(site):
    with Conn(site.port) as c:
        c.send("HEAD /raw/gen?n=3&size=100 HTTP/1.1\r\nHost: x\r\n\r\n")
        h = c.read_response(head_request=True)
        c.send("GET /raw/list HTTP/1.1\r\nHost: x\r\n\r\n")
        g = c.read_response()
    assert h.status == 200
    assert (g.status, g.body) == (200, b"one,two,three"), "bytes of the HEAD body leaked"


def test_write_callable(site):
    r = request(site, "/raw/write")
    assert (r.status, r.body) == (200, b"written-1,written-2,returned")


def test_repeated_headers_are_kept(site):
    r = request(site, "/raw/headers")
    assert (r.status, r.body) == (299, b"headers")
    assert r.header_all("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert r.header("X-Odd-Value") == "spaced  out"


def test_the_status_reason_is_the_apps(site):
    """start_response("299 Quite Fine", ...): the client sees that line, as
    with gunicorn, uWSGI or NGINX Unit."""
    r = request(site, "/raw/headers")
    assert (r.status, r.reason) == (299, "Quite Fine")


def test_headers_wait_for_the_first_nonempty_chunk(site):
    r = request(site, "/raw/empty_then_data")
    assert (r.status, r.body) == (200, b"after empties")
    mark = log_mark(site)
    tok = token()
    # only b"" came before the error: nothing went out, so a whole 500
    r = request(site, f"/raw/empty_then_raise?token={tok}")
    assert r.status == 500, r
    wait_log(site, mark, f"empty_then_raise {tok}")
    ok_after(site)


def test_extra_bytes_beyond_content_length_are_dropped(site):
    with Conn(site.port) as c:
        c.send("GET /raw/cl_more HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        assert (r.status, r.header("Content-Length"), r.body) == (200, "5", b"01234")
        if "close" in r.connection_tokens():
            return
        # the connection goes on: the next response starts clean
        c.send("GET /raw/list HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        try:
            r2 = c.read_response()
        except Closed as e:
            assert e.partial == b"", f"stray bytes on the connection: {e.partial!r}"
            return
        assert (r2.status, r2.body) == (200, b"one,two,three"), r2


def test_fewer_bytes_than_content_length_close_the_connection(site):
    data = raw_exchange(site, b"GET /raw/cl_less HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), data[:200]
    assert b"\r\ncontent-length: 10" in head.lower()
    assert body == b"01234"
    ok_after(site)


# ---------------------------------------------------------------- start_response

def test_exc_info_replaces_the_status_before_output(site):
    r = request(site, "/raw/exc_replace")
    assert (r.status, r.body) == (503, b"replaced by the error page")
    assert r.header("X-First") is None, "headers of the first start_response went out"


def test_exc_info_reraises_once_output_started(site):
    r = request(site, "/raw/exc_after_sent")
    assert (r.status, r.body) == (200, b"partial|reraised=True")


def test_start_response_twice_without_exc_info_is_an_error(site):
    r = request(site, "/raw/start_twice")
    assert r.status == 200
    assert r.body.startswith(b"raised "), r.body


# ---------------------------------------------------------------- close()

@pytest.mark.parametrize("route", ["/raw/", "/t0/"])
def test_close_is_called_after_a_whole_response(site, route):
    tok = token()
    r = request(site, f"{route}close?token={tok}&mode=normal")
    assert (r.status, r.body) == (200, b"chunk 1\nchunk 2\nchunk 3\n")
    assert wait_file(site.state / f"close-{tok}", "close()") == "closed after 4\n"


@pytest.mark.parametrize("route", ["/raw/", "/t0/"])
def test_close_is_called_when_the_iterator_raises(site, route):
    tok = token()
    data = raw_exchange(site, f"GET {route}close?token={tok}&mode=raise HTTP/1.1\r\n"
                              "Host: x\r\n\r\n".encode())
    assert data.startswith(b"HTTP/1.1 200"), data[:200]
    assert b"chunk 1\n" in data
    assert not data.endswith(b"0\r\n\r\n"), "a failed response ended like a whole one"
    assert wait_file(site.state / f"close-{tok}", "close()") == "closed after 2\n"
    ok_after(site, route)


@pytest.mark.parametrize("route", ["/raw/", "/t0/"])
def test_close_is_called_when_the_client_leaves(site, route):
    for _ in range(2):
        tok = token()
        with socket.create_connection(("127.0.0.1", site.port), timeout=T) as s:
            s.sendall(f"GET {route}close?token={tok}&mode=endless HTTP/1.1\r\n"
                      "Host: x\r\n\r\n".encode())
            got = 0
            while got < 1 << 20:            # 1 MB of the endless body, then leave
                chunk = s.recv(65536)
                assert chunk, "the server closed an endless response"
                got += len(chunk)
        text = wait_file(site.state / f"close-{tok}", "close() after the client left")
        assert text.startswith("closed after "), text
    ok_after(site, route)


def _write_after_the_client_left(d, state, route):
    tok = token()
    with socket.create_connection(("127.0.0.1", d.port), timeout=T) as s:
        s.sendall(f"GET {route}write_forever?token={tok} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        got = 0
        while got < 1 << 20:
            chunk = s.recv(65536)
            assert chunk, "the server closed the response"
            got += len(chunk)
    assert wait_file(state / f"write-{tok}", "write() to fail") == "OSError\n"
    r = request(d, route + "list")
    assert (r.status, r.body) == (200, b"one,two,three")


def test_write_raises_when_the_client_leaves(site):
    _write_after_the_client_left(site, site.state, "/raw/")
    assert_same_workers(site)


def test_write_raises_when_the_client_leaves_threads_0(tutti, tmp_path):
    # a daemon of its own: write() on the event loop must not hold up the
    # worker, and if it does, only this test waits
    d = tutti({"modules": ["wsgi"], "python": python_section(tmp_path),
               "servers": [{"routes": [
                   {"match": "/", "wsgi": {"app": "rawapp:application", "threads": 0}}]}]})
    _write_after_the_client_left(d, tmp_path, "/")


# ---------------------------------------------------------------- wsgi.file_wrapper

def _download(url, timeout=BIG_T):
    h = hashlib.sha256()
    n = 0
    with requests.get(url, stream=True, timeout=timeout) as r:
        assert r.status_code == 200, r.text[:300]
        for chunk in r.iter_content(1 << 16):
            h.update(chunk)
            n += len(chunk)
        return n, h.hexdigest(), r.headers


@pytest.mark.parametrize("route", ["/raw/", "/t0/"])
def test_file_wrapper_sends_a_real_file_intact(site, route):
    tok = token()
    n, sha, headers = _download(f"{site.url}{route}file?name=big.bin&token={tok}")
    assert (n, sha) == (BIG_FILE, site.big_sha)
    assert headers["Content-Length"] == str(BIG_FILE)
    # the file wrapper's close() closes the file
    assert wait_file(site.state / f"close-{tok}", "the file closed") == "file closed\n"


@pytest.mark.parametrize("route", ["/raw/", "/t0/"])
def test_file_wrapper_starts_at_the_current_position(site, route):
    n, sha, headers = _download(f"{site.url}{route}file?name=big.bin&offset=12345")
    assert (n, sha) == (BIG_FILE - 12345, site.big_offset_sha)


def test_file_wrapper_without_content_length(site):
    n, sha, _ = _download(f"{site.url}/raw/file?name=big.bin&nolength=1")
    assert (n, sha) == (BIG_FILE, site.big_sha)


def test_file_wrapper_big_file_with_curl(site, tmp_path):
    out = tmp_path / "big.out"
    p = subprocess.run(["curl", "-sS", "--max-time", str(BIG_T), "-o", str(out),
                        "-w", "%{http_code}", f"{site.url}/raw/file?name=big.bin"],
                       capture_output=True, text=True, timeout=BIG_T + 5)
    assert p.stdout == "200", p.stderr
    assert hashlib.sha256(out.read_bytes()).hexdigest() == site.big_sha


@pytest.mark.parametrize("route", ["/raw/", "/t0/"])
def test_file_wrapper_on_bytesio(site, route):
    tok = token()
    r = request(site, f"{route}bytesio?size=300000&blksize=7000&token={tok}")
    assert (r.status, r.body) == (200, pattern(300000))
    assert wait_file(site.state / f"close-{tok}", "BytesIO closed") == "bytes closed\n"


# ================================================================ wsgi.input

INPUT_BODY = b"alpha\nbeta\n\ngamma \xff\x00 a longer line than n\nno newline at the end"
BIG_LINES = b"".join(b"line %06d of the big body\n" % i for i in range(40000))   # ~1 MB


def local_parts(mode, n, body):
    """What rawapp's input view gets, computed on an io.BytesIO: wsgi.input
    must behave like a file."""
    inp = io.BytesIO(body)
    if mode == "read":
        return [inp.read(), inp.read()]
    if mode == "read_minus_one":
        return [inp.read(-1)]
    if mode == "readlines":
        return inp.readlines()
    if mode == "iter":
        return list(inp)
    if mode == "mixed":
        return [inp.readline(), inp.read(3), inp.readline(), inp.read()]
    call = {"readn": lambda: inp.read(n), "readline": inp.readline,
            "readline_n": lambda: inp.readline(n)}[mode]
    parts = []
    while True:
        parts.append(call())
        if not parts[-1]:
            return parts


INPUT_MODES = [("read", 0), ("read_minus_one", 0), ("readn", 4), ("readn", 1000),
               ("readline", 0), ("readline_n", 3), ("readlines", 0), ("iter", 0),
               ("mixed", 0)]


@pytest.mark.parametrize("route", ["/raw/", "/t0/"])
@pytest.mark.parametrize("framing", ["length", "chunked"])
@pytest.mark.parametrize("mode,n", INPUT_MODES, ids=[f"{m}-{n}" for m, n in INPUT_MODES])
def test_input_reads_like_a_file(site, route, framing, mode, n):
    r = request(site, f"{route}input?mode={mode}&n={n}", method="POST", body=INPUT_BODY,
                chunk_sizes=[3, 5, 1] if framing == "chunked" else None)
    assert r.status == 200, (r, r.body[:500])
    got = json.loads(r.body)
    assert got["types"] == ["bytes"]
    assert [p.encode("latin-1") for p in got["parts"]] == local_parts(mode, n, INPUT_BODY)


@pytest.mark.parametrize("route", ["/up/", "/t0/"])
@pytest.mark.parametrize("mode,n", [("iter", 0), ("readline_n", 10), ("readn", 65536)])
def test_input_of_a_big_body(site, route, mode, n):
    r = request(site, f"{route}input?mode={mode}&n={n}", method="POST", body=BIG_LINES,
                chunk_sizes=[70000, 13])
    assert r.status == 200, (r, r.body[:500])
    got = [p.encode("latin-1") for p in json.loads(r.body)["parts"]]
    assert got == local_parts(mode, n, BIG_LINES)


@pytest.mark.parametrize("route", ["/raw/", "/t0/"])
@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_read_n_waits_for_n_bytes(site, route, framing):
    """read(n) returns n bytes even when they arrive in pieces (Django's
    request.body makes one read(CONTENT_LENGTH) and trusts it)."""
    body = os.urandom(300000)
    if framing == "length":
        head = (f"POST {route}read_exactly HTTP/1.1\r\nHost: x\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
        wire = body
    else:
        head = (f"POST {route}read_exactly?n={len(body)} HTTP/1.1\r\nHost: x\r\n"
                "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        wire = chunked(body, [100000])
    with Conn(site.port) as c:
        c.send(head)
        third = len(wire) // 3
        for i in range(3):
            c.send(wire[i * third:] if i == 2 else wire[i * third:(i + 1) * third])
            time.sleep(0.1)          # the app is already reading: it must wait, not return short
        r = c.read_response()
    assert r.status == 200, r
    assert json.loads(r.body) == {"first": len(body), "rest": 0,
                                  "sha256": hashlib.sha256(body).hexdigest()}


@pytest.mark.parametrize("route", ["/raw/", "/t0/"])
def test_chunked_upload_with_requests(site, route):
    pieces = [os.urandom(n) for n in (1, 100, 65536, 3, 200000, 7)]
    body = b"".join(pieces)
    r = requests.post(f"{site.url}{route}echo", data=iter(pieces), timeout=T,
                      headers={"Content-Type": "application/x-test"})
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/x-test"
    assert r.content == body


@pytest.mark.parametrize("route", ["/raw/", "/t0/"])
def test_100_continue(site, route):
    with Conn(site.port) as c:
        c.send(f"POST {route}echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n"
               "Content-Type: text/plain\r\nExpect: 100-continue\r\n\r\n")
        interim = c.read_response(interim=True)
        assert interim.status == 100, interim
        c.send(b"hello there")
        r = c.read_response()
    assert (r.status, r.body) == (200, b"hello there")


def test_no_100_continue_when_the_app_does_not_read(site):
    """The 100 comes when the app first reads: an app that answers without
    reading never invites the body."""
    with Conn(site.port) as c:
        c.send("POST /raw/list HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n"
               "Expect: 100-continue\r\n\r\n")
        r = c.read_response(interim=True)
    assert (r.status, r.body) == (200, b"one,two,three")


def test_100_continue_with_curl(site, tmp_path):
    up = tmp_path / "up.bin"
    data = os.urandom(2 * 1024 * 1024)
    up.write_bytes(data)
    out = tmp_path / "down.bin"
    # curl sends Expect: 100-continue for a body over 1 MB and waits for it
    p = subprocess.run(["curl", "-sS", "--max-time", str(T * 2), "--expect100-timeout", "30",
                        "-H", "Content-Type: application/octet-stream",
                        "--data-binary", f"@{up}", "-o", str(out), "-w", "%{http_code}",
                        f"{site.url}/up/echo"],
                       capture_output=True, text=True, timeout=T * 2 + 5)
    assert p.stdout == "200", p.stderr
    assert out.read_bytes() == data


def test_unread_body_does_not_break_the_connection(site):
    with Conn(site.port) as c:
        c.send(b"POST /raw/list HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
               + b"u" * 100000)
        r = c.read_response()
        assert (r.status, r.body) == (200, b"one,two,three")
        if "close" in r.connection_tokens():
            return
        c.send(b"GET /raw/list HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        try:
            r2 = c.read_response()
        except Closed as e:
            assert e.partial == b"", f"stray bytes: {e.partial[:100]!r}"
            return
        assert (r2.status, r2.body) == (200, b"one,two,three"), "the unread body was parsed as a request"


@pytest.mark.parametrize("size,sent", [(1000, 100), (2 << 20, 1 << 20)],
                         ids=["small", "big"])
def test_client_leaving_mid_upload_frees_the_thread(site, size, sent):
    """The app waits in wsgi.input.read() for a body that never comes: when
    the client leaves, the read fails and the thread is free again (the
    route has threads: 1, so one lost thread means no answer)."""
    mark = log_mark(site)
    for _ in range(3):
        with Conn(site.port) as c:
            c.send(f"POST /leave/sha HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n")
            c.send(b"u" * sent)
            time.sleep(0.2)      # let the app be in read(), waiting for more
    wait_log(site, mark, "Traceback")
    r = request(site, "/leave/list")
    assert (r.status, r.body) == (200, b"one,two,three")


# ================================================================ frameworks

def test_flask_json_and_script_root(site):
    r = requests.get(f"{site.url}/flask/json?x=1&y=%C3%A9", timeout=T)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == {"framework": "flask", "args": {"x": "1", "y": "\u00e9"},
                        "script_root": "/flask", "path": "/json"}


def test_flask_redirect_keeps_the_mount(site):
    r = requests.get(f"{site.url}/flask/redirect", timeout=T)
    assert [h.status_code for h in r.history] == [302]
    assert r.history[0].headers["Location"].endswith("/flask/json?came=redirect")
    assert r.status_code == 200
    assert r.json()["args"] == {"came": "redirect"}


def test_flask_form_post(site):
    r = requests.post(f"{site.url}/flask/form", data={"a": "1", "b": ["x", "y \u00e9"]},
                      timeout=T)
    assert r.status_code == 200
    assert r.json() == {"form": {"a": ["1"], "b": ["x", "y \u00e9"]}}


def test_flask_multipart_upload(site):
    data = os.urandom(3 * 1024 * 1024 + 17)
    r = requests.post(f"{site.url}/flask/upload", timeout=T * 2,
                      files={"file": ("blob.bin", data, "application/octet-stream")},
                      data={"note": "a note"})
    assert r.status_code == 200, r.text[:500]
    assert r.json() == {"filename": "blob.bin", "size": len(data),
                        "sha256": hashlib.sha256(data).hexdigest(), "note": "a note"}


def test_flask_chunked_body(site):
    pieces = [os.urandom(n) for n in (10, 70000, 1)]
    body = b"".join(pieces)
    r = requests.post(f"{site.url}/flask/raw", data=iter(pieces), timeout=T)
    assert r.status_code == 200
    assert r.json() == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def test_flask_streaming_response(site):
    with requests.get(f"{site.url}/flask/stream", stream=True, timeout=T) as r:
        assert r.status_code == 200
        assert r.headers.get("Transfer-Encoding") == "chunked"
        lines = list(r.iter_lines())
    assert lines == [f"line {i}".encode() for i in range(100)]


def test_flask_cookies(site):
    with requests.Session() as s:
        r = s.get(f"{site.url}/flask/cookie/set", timeout=T)
        assert r.status_code == 200
        assert r.json() == {"cookies": {"flavour": "oatmeal", "count": "3"}}
        assert len(r.history) == 1
        assert len(r.history[0].raw.headers.getlist("Set-Cookie")) == 2
        assert s.cookies.get("flavour") == "oatmeal"


def test_flask_error_is_logged(site):
    mark = log_mark(site)
    r = requests.get(f"{site.url}/flask/fail", timeout=T)
    assert r.status_code == 500
    # Flask logs the traceback to wsgi.errors, which is the error log
    wait_log(site, mark, "RuntimeError: flask view failed")
    assert requests.get(f"{site.url}/flask/json", timeout=T).status_code == 200


def test_django(django_site):
    r = requests.get(f"{django_site.url}/django/hello/?q=1", timeout=T)
    assert r.status_code == 200, r.text[:1000]
    assert r.json() == {"framework": "django", "path": "/django/hello/",
                        "path_info": "/hello/", "script_name": "/django",
                        "reverse": "/django/hello/", "q": "1"}
    r = requests.post(f"{django_site.url}/django/echo/", data={"a": ["1", "2"], "b": "\u00e9"},
                      timeout=T)
    assert r.status_code == 200, r.text[:1000]
    got = r.json()
    assert got["form"] == {"a": ["1", "2"], "b": ["\u00e9"]}
    assert got["content_type"] == "application/x-www-form-urlencoded"
    # Django reads the body with one read(CONTENT_LENGTH)
    body = os.urandom(500000)
    r = requests.post(f"{django_site.url}/django/echo/", data=body, timeout=T,
                      headers={"Content-Type": "application/octet-stream"})
    assert (r.json()["size"], r.json()["sha256"]) == (len(body), hashlib.sha256(body).hexdigest())
    r = requests.get(f"{django_site.url}/django/go/", timeout=T)
    assert [h.status_code for h in r.history] == [302]
    assert r.json()["q"] == "redirected"


def test_bottle(site):
    r = requests.get(f"{site.url}/bottle/hello/ada", timeout=T)
    assert (r.status_code, r.text) == (200, "Hello from bottle, ada!")
    r = requests.get(f"{site.url}/bottle/json?q=z", timeout=T)
    assert r.json() == {"framework": "bottle", "q": "z"}
    body = os.urandom(200000)
    r = requests.post(f"{site.url}/bottle/echo", data=body, timeout=T)
    assert (r.status_code, r.content) == (200, body)


def test_c_extension_modules_load(site):
    r = requests.get(f"{site.url}/cext/", timeout=T)
    assert r.status_code == 200, r.text[:2000]
    got = r.json()
    for name, path in got["files"].items():
        assert path.endswith(".so"), (name, path)
    assert got["decimal"] == "3.30" and got["decimal_is_c"] is True
    assert got["json_c_encoder"] is True
    assert got["sha256"] == hashlib.sha256(b"abc").hexdigest()
    assert got["openssl"].startswith("OpenSSL")
    assert got["sqlite"] == 2
    assert got["markupsafe"] == "&lt;a&gt;"


def test_factory_is_called_once_per_worker(site):
    for _ in range(3):
        r = request(site, "/factory/")
        assert (r.status, r.body) == (200, b"made by the factory; factory calls: 1")


def test_the_same_app_on_two_routes_is_imported_once(site):
    for path in ("/factory/", "/factory2/"):
        r = request(site, path)
        assert (r.status, r.body) == (200, b"made by the factory; factory calls: 1")


def test_short_form_wsgi_key(site):
    assert request(site, "/short/list").body == b"one,two,three"


def test_routes_reach_their_apps(site):
    assert request(site, "/raw/list").body == b"one,two,three"
    assert request(site, "/valid/get").body == b"validated get"
    assert requests.get(f"{site.url}/flask/json", timeout=T).json()["framework"] == "flask"
    assert requests.get(f"{site.url}/bottle/json", timeout=T).json()["framework"] == "bottle"
    assert request(site, "/static/hello.txt").body == b"static hello\n"


# ================================================================ errors

@pytest.mark.parametrize("route", ["/raw/", "/t0/"])
def test_exception_is_500_with_a_traceback_and_the_worker_goes_on(site, route):
    mark = log_mark(site)
    tok = token()
    r = request(site, f"{route}raise?token={tok}")
    assert r.status == 500, r
    assert tok.encode() not in r.body, "the exception leaked to the client"
    log = wait_log(site, mark, f"RuntimeError: raise_view {tok}")
    assert "Traceback (most recent call last)" in log
    assert "rawapp.py" in log
    ok_after(site, route)


@pytest.mark.parametrize("route", ["/raw/", "/t0/"])
@pytest.mark.parametrize("length", [False, True], ids=["chunked", "content-length"])
def test_exception_after_the_response_started_closes_the_connection(site, route, length):
    mark = log_mark(site)
    tok = token()
    q = f"token={tok}" + ("&length=1" if length else "")
    # keep-alive: the client would wait forever if the server did not close
    data = raw_exchange(site, f"GET {route}raise_late?{q} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), data[:200]
    assert b"a" * 1000 in body
    if length:
        assert len(body) < 100000
    else:
        assert not body.endswith(b"0\r\n\r\n"), "the cut response ended like a whole one"
    wait_log(site, mark, f"RuntimeError: raise_late {tok}")
    ok_after(site, route)


@pytest.mark.parametrize("view,words", [
    ("no_start", ["start_response"]),
    ("bad_status", ["status"]),
    ("bad_header", ["X-Number"]),
    ("nonlatin_header", ["latin-1"]),
])
def test_app_mistakes_are_500_and_named_in_the_log(site, view, words):
    mark = log_mark(site)
    r = request(site, f"/raw/{view}")
    assert r.status == 500, r
    log = wait_log(site, mark, f"failed on GET /raw/{view}")
    line = [l for l in log.splitlines() if f"failed on GET /raw/{view}" in l][0]
    for w in words:
        assert w in line, line
    ok_after(site)


def test_print_goes_to_the_error_log(site):
    mark = log_mark(site)
    tok = token()
    r = request(site, f"/raw/print?token={tok}")
    assert (r.status, r.body) == (200, b"printed")
    names = ["printed", "held-together", "two-lines-1", "two-lines-2", "stderr", "errors",
             "writelines"]
    log = wait_log(site, mark, *[f"{n}-{tok}" for n in names])
    lines = log.splitlines()
    # one entry per line, each with its level: stdout info, stderr and wsgi.errors warn
    for n, level in zip(names, ["info"] * 4 + ["warn"] * 3):
        hits = [l for l in lines if l.rstrip().endswith(f": {n}-{tok}")]
        assert len(hits) == 1, (n, log)
        assert f"[{level}]" in hits[0], hits[0]
    # print() writes the text and the newline separately: still one entry
    assert [l for l in lines if re.search(r"#worker \d+: $", l)] == [], log
    assert tok not in site.stdout_text()


# ================================================================ threads

def test_static_answers_while_every_python_thread_is_busy(site):
    tok = token()
    names = [f"{tok}-{i}" for i in range(2)]            # /busy/ has threads: 2

    def slow_request(name):
        with Conn(site.port, timeout=40) as c:
            c.send(f"GET /busy/slow?token={name} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return c.read_response()

    with ThreadPoolExecutor(2) as ex:
        futures = [ex.submit(slow_request, n) for n in names]
        try:
            wait_for(lambda: all((site.state / f"slow-started-{n}").exists() for n in names),
                     10 * SLOW, "both Python threads of /busy/ to be in the slow view")
            started = time.monotonic()
            r = request(site, "/static/hello.txt")
            took = time.monotonic() - started
            assert (r.status, r.body) == (200, b"static hello\n")
            assert not any(f.done() for f in futures), \
                "a slow view ended before the static answer: the test proved nothing"
            assert took < 2 * SLOW, f"the static file took {took:.2f}s while Python was busy"
        finally:
            for n in names:
                (site.state / f"release-{n}").touch()
        results = [f.result(timeout=40) for f in futures]
    assert [(r.status, r.body) for r in results] == [(200, b"slept")] * 2


def test_threads_0_runs_the_app(site):
    e = environ_of(site, "/t0/env", method="POST", body=b"on the loop")
    assert e["wsgi.multithread"] is False
    assert e["_body"]["len"] == len(b"on the loop")
    r = request(site, "/t0/gen?n=50&size=10000")
    assert (r.status, r.body) == (200, pattern(500000))


def test_concurrent_requests_on_one_route(site):
    def one(i):
        r = requests.post(f"{site.url}/raw/echo", data=b"req %d" % i * 1000, timeout=T * 2)
        return r.status_code, r.content
    with ThreadPoolExecutor(8) as ex:
        got = list(ex.map(one, range(32)))
    assert got == [(200, b"req %d" % i * 1000) for i in range(32)]


@pytest.mark.slow
@pytest.mark.parametrize("route,mb", [("/up/", UPLOAD_MB), ("/t0/", 96)],
                         ids=["threads", "threads-0"])
def test_big_chunked_upload_is_never_in_memory(site, route, mb):
    """The app reads a 200 MB chunked upload in 64 KiB pieces while it
    arrives: the checksum is right and the worker never holds the body. With
    threads: 0 the body is read before the call, into a file past 1 MiB."""
    pid = site.worker_pids()[0]
    request(site, "/up/list")
    before = rss_kb(pid)
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            try:
                peak[0] = max(peak[0], rss_kb(pid))
            except (OSError, AssertionError):
                return
            done.wait(0.02)

    h = hashlib.sha256()
    block = bytearray(os.urandom(1 << 20))

    def body():
        for i in range(mb):
            block[:8] = i.to_bytes(8, "big")
            piece = bytes(block)
            h.update(piece)
            yield piece

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        r = requests.post(f"{site.url}{route}sha?piece=65536", data=body(), timeout=BIG_T)
    finally:
        done.set()
        sampler.join()
    assert r.status_code == 200, r.text[:500]
    got = r.json()
    assert (got["len"], got["sha256"]) == (mb << 20, h.hexdigest())
    assert got["biggest"] <= 65536
    # (ASan keeps freed memory in quarantine, up to 256 MB: RSS says nothing there)
    if not SANITIZED:
        assert peak[0] - before < UPLOAD_RSS_MAX_KB, \
            f"worker RSS grew {before} -> {peak[0]} kB during a {mb} MB upload"
    assert_same_workers(site)


def test_the_worker_survived_everything(site):
    ok_after(site)
    r = request(site, "/static/hello.txt")
    assert (r.status, r.body) == (200, b"static hello\n")


# ================================================================ daemons of their own

def test_workers_2_are_multiprocess(tutti, tmp_path):
    d = tutti({"workers": 2, "modules": ["wsgi"], "python": python_section(tmp_path),
               "servers": [{"routes": [{"match": "/", "wsgi": {"app": "rawapp:application"}}]}]})
    d.wait_workers(2)
    e = environ_of(d, "/env")
    assert e["wsgi.multiprocess"] is True
    assert e["wsgi.multithread"] is True


ENV_APP = ("import os, sys\n"
           "def application(environ, start_response):\n"
           "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
           "    return [os.environ.get('GREETING', 'no greeting').encode()]\n")


def test_python_path_is_relative_to_the_config_and_env_is_set(tutti, tmp_path):
    base = tmp_path / "rel"
    (base / "myapps").mkdir(parents=True)
    (base / "myapps" / "envapp.py").write_text(ENV_APP)
    d = tutti({"modules": ["wsgi"],
               "python": {"path": ["./myapps"],
                          "env": {"GREETING": "hi from ${TUTTI_TEST_WHO:-nobody}"}},
               "servers": [{"routes": [{"match": "/", "wsgi": {"app": "envapp:application"}}]}]},
              subdir="rel", env={"TUTTI_TEST_WHO": "env"})
    r = request(d, "/")
    assert (r.status, r.body) == (200, b"hi from env")


def test_python_path_defaults_to_the_config_directory(tutti, tmp_path):
    (tmp_path / "here").mkdir()
    (tmp_path / "here" / "envapp.py").write_text(ENV_APP)
    d = tutti({"modules": ["wsgi"],
               "servers": [{"routes": [{"match": "/", "wsgi": {"app": "envapp:application"}}]}]},
              subdir="here")
    assert request(d, "/").body == b"no greeting"


def test_python_home_adds_a_virtualenv(tutti, tmp_path):
    base = tmp_path / "venvsite"
    venv = base / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip",
                    "--system-site-packages", str(venv)], check=True, timeout=60)
    site_packages = venv / "lib" / "python3.11" / "site-packages"
    (site_packages / "venvmod.py").write_text("WHERE = 'venv'\n")
    (base / "extra").mkdir()
    (base / "extra" / "pthmod.py").write_text("WHERE = 'pth'\n")
    (site_packages / "extra.pth").write_text(str(base / "extra") + "\n")   # read by addsitedir
    (base / "apps").mkdir()
    (base / "apps" / "venvapp.py").write_text(
        "import json, sys\n"
        "import flask, pthmod, venvmod\n"
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'application/json')])\n"
        "    return [json.dumps({'venv': venvmod.WHERE, 'pth': pthmod.WHERE,\n"
        "                        'flask': flask.__file__, 'path': sys.path}).encode()]\n")
    d = tutti({"modules": ["wsgi"], "python": {"home": "./venv", "path": ["./apps"]},
               "servers": [{"routes": [{"match": "/", "wsgi": {"app": "venvapp:application"}}]}]},
              subdir="venvsite")
    r = request(d, "/")
    assert r.status == 200, r
    got = json.loads(r.body)
    assert (got["venv"], got["pth"]) == ("venv", "pth")
    assert got["flask"].startswith("/usr/lib/python3/dist-packages/")
    path = [os.path.realpath(p) for p in got["path"]]
    where = {name: path.index(os.path.realpath(p)) for name, p in (
        ("apps", base / "apps"), ("venv", site_packages),
        ("debian", "/usr/lib/python3/dist-packages"))}
    assert where["apps"] < where["venv"] < where["debian"], got["path"]


def test_body_limits(tutti, tmp_path):
    """Over max_body_size: 413 before the app runs when Content-Length says
    so; a chunked body that grows past it makes the app's read fail."""
    d = tutti({"modules": ["wsgi"], "limits": {"max_body_size": "1MB"},
               "python": python_section(tmp_path),
               "servers": [{"routes": [{"match": "/", "wsgi": {"app": "rawapp:application"}}]}]})
    mark = log_mark(d)
    tok = token()
    with Conn(d.port) as c:
        c.send(f"POST /print?token={tok} HTTP/1.1\r\nHost: x\r\n"
               "Content-Length: 2000000\r\n\r\n")
        assert c.read_response().status == 413
    with Conn(d.port) as c:
        c.send("POST /sha HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(40):                 # 2.5 MB, in 64 KiB chunks
                c.send(b"10000\r\n" + b"c" * 0x10000 + b"\r\n")
        except OSError:
            pass                                # the server stopped reading: fine
        r = c.read_response()
    assert r.status == 413, r
    wait_log(d, mark, "OSError")
    assert tok not in d.error_log_text()[mark:], "the app ran for a body it could not have"
    assert request(d, "/list").body == b"one,two,three"


APP_V1 = ("def application(environ, start_response):\n"
          "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
          "    return [b'version 1']\n")
# longer than v1: a .pyc is trusted when the source's mtime (seconds) and size match
APP_V2 = APP_V1.replace("version 1", "version 2, reloaded")
APP_BROKEN = "raise ImportError('reloadme is broken on purpose')\n" + APP_V2


def _reload_daemon(tutti, tmp_path):
    base = tmp_path / "reload"
    (base / "apps").mkdir(parents=True)
    (base / "apps" / "reloadme.py").write_text(APP_V1)
    d = tutti({"modules": ["wsgi"], "python": {"path": ["./apps"]},
               "servers": [{"routes": [{"match": "/", "wsgi": {"app": "reloadme:application"}}]}]},
              subdir="reload")
    d.app_file = base / "apps" / "reloadme.py"
    return d


def _answer(d):
    try:
        r = request(d, "/")
    except (OSError, Closed):
        return None
    return r.body if r.status == 200 else None


def test_hup_reimports_a_changed_app(tutti, tmp_path):
    d = _reload_daemon(tutti, tmp_path)
    assert _answer(d) == b"version 1"
    d.app_file.write_text(APP_V2)
    d.reload()
    wait_for(lambda: _answer(d) == b"version 2, reloaded", 10 * SLOW, "the changed app after HUP")


def test_hup_with_an_app_that_no_longer_imports_keeps_the_old_workers(tutti, tmp_path):
    d = _reload_daemon(tutti, tmp_path)
    # the worker has imported v1 (it may still be importing when the port
    # first accepts: breaking the file before that would break the start)
    assert _answer(d) == b"version 1"
    old = d.worker_pids()
    mark = log_mark(d)
    d.app_file.write_text(APP_BROKEN)
    d.signal(signal.SIGHUP)
    wait_log(d, mark, "reloadme is broken on purpose", "reload refused", timeout=10)
    assert _answer(d) == b"version 1"
    # the new worker that failed is on its way out; the old one stays
    wait_for(lambda: d.worker_pids() == old, 5 * SLOW, f"only the old worker {old} left")
    assert _answer(d) == b"version 1"
    assert d.running()


# ---------------------------------------------------------------- start-up errors

def _startup(tmp_path, app):
    """Start tutti with one wsgi route whose `app: APP` is on line 9 (column
    11, the value at 16); it must fail. Returns (result, error line)."""
    port = free_port()
    text = ("modules: [wsgi]\n"                                 # 1
            "python:\n"                                         # 2
            f"  path: [{json.dumps(str(APPS))}]\n"              # 3
            "servers:\n"                                        # 4
            f"  - listen: [\"127.0.0.1:{port}\"]\n"             # 5
            "    routes:\n"                                     # 6
            "      - match: /\n"                                # 7
            "        wsgi:\n"                                   # 8
            f"          app: {json.dumps(app)}\n")              # 9
    (tmp_path / "tutti.yaml").write_text(text)
    res = run_tutti(["-c", "tutti.yaml"], tmp_path)
    out = res.stderr + res.stdout
    assert res.returncode == 2, f"exit {res.returncode}; output:\n{out}"
    lines = [l for l in out.splitlines()
             if l.startswith("tutti: ") and f"wsgi app '{app}'" in l]
    assert lines, f"no \"tutti: ... wsgi app '{app}'\" line in:\n{out}"
    m = re.match(r"tutti: tutti\.yaml:(\d+):(\d+): wsgi app ", lines[0])
    assert m, f"no file:line:col before the message: {lines[0]!r}"
    assert int(m.group(1)) == 9 and int(m.group(2)) in (11, 16), lines[0]
    # nothing kept the port
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
    return res, lines[0]


def test_missing_module_fails_the_start(tmp_path):
    _, line = _startup(tmp_path, "nosuchmod:application")
    assert line.endswith("wsgi app 'nosuchmod:application': "
                         "ModuleNotFoundError: No module named 'nosuchmod'"), line


def test_import_error_inside_the_app_fails_the_start(tmp_path):
    res, line = _startup(tmp_path, "brokenimport:application")
    assert "ModuleNotFoundError: No module named 'not_installed_dependency_xyz'" in line, line
    # the traceback goes to the error log (stderr here) and shows where
    assert "Traceback (most recent call last)" in res.stderr
    assert "brokenimport.py" in res.stderr


def test_missing_callable_fails_the_start(tmp_path):
    _, line = _startup(tmp_path, "rawapp:nope")
    assert "nope" in line.split("wsgi app 'rawapp:nope'", 1)[1], line


def test_callable_that_is_not_callable_fails_the_start(tmp_path):
    _, line = _startup(tmp_path, "rawapp:NOT_CALLABLE")
    assert "callable" in line.split("wsgi app 'rawapp:NOT_CALLABLE'", 1)[1], line


def test_missing_factory_fails_the_start(tmp_path):
    _, line = _startup(tmp_path, "rawapp:nope()")
    assert "nope" in line.split("wsgi app 'rawapp:nope()'", 1)[1], line


def test_factory_that_raises_fails_the_start(tmp_path):
    res, line = _startup(tmp_path, "rawapp:failing_factory()")
    assert line.endswith("RuntimeError: the factory failed on purpose"), line
    assert "Traceback (most recent call last)" in res.stderr


# ---------------------------------------------------------------- config errors (tutti -t)

def _check(tmp_path, wsgi_lines, python=None):
    """`tutti -t` on a config whose python section is the one line 2 and
    whose wsgi block starts at line 9."""
    (tmp_path / "apps").mkdir(exist_ok=True)
    python = python or f"{{path: [{json.dumps(str(APPS))}]}}"
    text = ("modules: [wsgi]\n"                                 # 1
            f"python: {python}\n"                               # 2
            "# the server\n"                                    # 3
            "servers:\n"                                        # 4
            f"  - listen: [\"127.0.0.1:{free_port()}\"]\n"      # 5
            "    routes:\n"                                     # 6
            "      - match: /\n"                                # 7
            "        wsgi:\n"                                   # 8
            + "".join(f"          {l}\n" for l in wsgi_lines))  # 9...
    (tmp_path / "tutti.yaml").write_text(text)
    return run_tutti(["-t", "-c", "tutti.yaml"], tmp_path)


def test_config_ok(tmp_path):
    for lines in (["app: rawapp:application"],
                  ["app: rawapp:application", "threads: 8", "script_name: /api"],
                  ["app: rawapp:application", "threads: 256"],
                  ["app: rawapp:make_app()", "threads: 0", "script_name: \"\""]):
        res = _check(tmp_path, lines)
        assert res.returncode == 0, (lines, res.stderr + res.stdout)
        assert "configuration OK" in res.stdout + res.stderr


def test_config_short_form_ok(tmp_path):
    text = ("modules: [wsgi]\n"
            "servers:\n"
            f"  - listen: [\"127.0.0.1:{free_port()}\"]\n"
            "    routes:\n"
            "      - match: /\n"
            "        wsgi: rawapp:application\n")
    (tmp_path / "tutti.yaml").write_text(text)
    res = run_tutti(["-t", "-c", "tutti.yaml"], tmp_path)
    assert res.returncode == 0, res.stderr + res.stdout


def test_config_check_does_not_import_the_app(tmp_path):
    """-t checks the config; Python only starts in the workers."""
    res = _check(tmp_path, ["app: nosuchmod:application"])
    assert res.returncode == 0, res.stderr + res.stdout


def test_config_python_section_ok(tmp_path):
    res = _check(tmp_path, ["app: rawapp:application"],
                 f"{{path: [./apps, {json.dumps(str(APPS))}], "
                 "env: {DJANGO_SETTINGS_MODULE: djsite, X: y}}")
    assert res.returncode == 0, res.stderr + res.stdout


def test_config_missing_app(tmp_path):
    line = config_error_line(_check(tmp_path, ["threads: 2"]), {8, 9})
    assert "app" in line, line


@pytest.mark.parametrize("value", ["-1", "257", "many", "2.5", "[4]"])
def test_config_bad_threads(tmp_path, value):
    line = config_error_line(_check(tmp_path, ["app: rawapp:application",
                                               f"threads: {value}"]), {10})
    assert "threads" in line, line


@pytest.mark.parametrize("app", ["rawapp", "rawapp:", ":application", "raw app:application"])
def test_config_bad_app_spec(tmp_path, app):
    line = config_error_line(_check(tmp_path, [f"app: {json.dumps(app)}"]), {9})
    assert "app" in line, line


def test_config_unknown_key_suggests(tmp_path):
    line = config_error_line(_check(tmp_path, ["app: rawapp:application", "thread: 4"]), {10})
    assert "'thread'" in line and "did you mean 'threads'" in line, line
    line = config_error_line(_check(tmp_path, ["app: rawapp:application", "scriptname: /x"]),
                             {10})
    assert "did you mean 'script_name'" in line, line


def test_config_unknown_python_key_suggests(tmp_path):
    line = config_error_line(_check(tmp_path, ["app: rawapp:application"], "{pth: [./apps]}"),
                             {2})
    assert "'pth'" in line and "did you mean 'path'" in line, line

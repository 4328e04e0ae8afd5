"""A plain PEP 3333 app for tests/integration/test_wsgi.py: no framework, so
the tests see exactly what tutti hands an application and exactly what it
does with the answer.

The view is the first segment of PATH_INFO that names one (so the same app
works under any route prefix and any script_name): GET /raw/env/x runs
env(). Query parameters steer the views. Views that must tell the test
something after the response is over (close() calls) append a line to a
file in $WSGI_TEST_STATE, which the test polls.
"""
import hashlib
import io
import json
import os
import sys
import time
from urllib.parse import parse_qs

STATE = os.environ.get("WSGI_TEST_STATE", "/tmp")

NOT_CALLABLE = "an app must be callable; this is a str"   # for the start-up error test


def record(name, line):
    """Append line to $WSGI_TEST_STATE/name (one write: lines never interleave)."""
    with open(os.path.join(STATE, name), "a") as f:
        f.write(line + "\n")


def query(environ):
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""),
                                          keep_blank_values=True).items()}


def text(start_response, body, status="200 OK", ctype="text/plain; charset=utf-8"):
    body = body.encode() if isinstance(body, str) else body
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [body]


def as_json(start_response, obj, status="200 OK"):
    return text(start_response, json.dumps(obj), status, "application/json")


def pattern(n):
    """n bytes the test can recompute (tests/integration/test_wsgi.py: pattern)."""
    block = bytes(range(256)) * 4
    return (block * (n // len(block) + 1))[:n]


# ---------------------------------------------------------------- the environ

def describe(v):
    if v is None or isinstance(v, (str, bool, int)):
        return {"type": type(v).__name__, "value": v}
    if isinstance(v, tuple):
        return {"type": "tuple", "value": list(v)}
    return {"type": type(v).__name__, "callable": callable(v),
            "methods": [m for m in ("read", "readline", "readlines", "__iter__",
                                    "write", "writelines", "flush") if hasattr(v, m)]}


def env(environ, start_response):
    """The environ as JSON: {key: {"type": ..., "value": ...}}; the body is
    read and summed up under "_body"."""
    out = {k: describe(v) for k, v in environ.items()}
    body = environ["wsgi.input"].read()
    out["_body"] = {"len": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    return as_json(start_response, out)


# ---------------------------------------------------------------- wsgi.input

def input_view(environ, start_response):
    """Read the body the way ?mode= says; answer the pieces as JSON
    (latin-1 strings), so the test sees where each call stopped."""
    q = query(environ)
    mode, n = q.get("mode", "read"), int(q.get("n", "0") or 0)
    inp = environ["wsgi.input"]
    parts = []
    if mode == "read":
        parts.append(inp.read())
        parts.append(inp.read())            # at the end: b""
    elif mode == "read_minus_one":
        parts.append(inp.read(-1))
    elif mode == "readn":
        while True:
            piece = inp.read(n)
            parts.append(piece)
            if not piece:
                break
    elif mode == "readline":
        while True:
            line = inp.readline()
            parts.append(line)
            if not line:
                break
    elif mode == "readline_n":
        while True:
            line = inp.readline(n)
            parts.append(line)
            if not line:
                break
    elif mode == "readlines":
        parts = inp.readlines()
    elif mode == "iter":
        parts = list(inp)
    elif mode == "mixed":
        parts = [inp.readline(), inp.read(3), inp.readline(), inp.read()]
    else:
        return text(start_response, f"unknown mode {mode}", "400 Bad Request")
    return as_json(start_response, {"parts": [p.decode("latin-1") for p in parts],
                                    "types": sorted({type(p).__name__ for p in parts})})


def echo(environ, start_response):
    body = environ["wsgi.input"].read()
    ctype = environ.get("CONTENT_TYPE") or "application/octet-stream"
    return text(start_response, body, ctype=ctype)


def read_exactly(environ, start_response):
    """One read(n) call for the whole body (n from ?n= or CONTENT_LENGTH):
    what Django's request.body does, so it must not come back short."""
    n = int(query(environ).get("n") or environ["CONTENT_LENGTH"])
    first = environ["wsgi.input"].read(n)
    rest = environ["wsgi.input"].read()
    return as_json(start_response, {"first": len(first), "rest": len(rest),
                                    "sha256": hashlib.sha256(first + rest).hexdigest()})


def sha(environ, start_response):
    """Read the body in pieces of ?piece= bytes; answer its length and sha256."""
    size = int(query(environ).get("piece", "65536"))
    h = hashlib.sha256()
    total = calls = biggest = 0
    inp = environ["wsgi.input"]
    while True:
        piece = inp.read(size)
        if not piece:
            break
        calls += 1
        total += len(piece)
        biggest = max(biggest, len(piece))
        h.update(piece)
    return as_json(start_response, {"len": total, "sha256": h.hexdigest(),
                                    "reads": calls, "biggest": biggest})


# ---------------------------------------------------------------- response shapes

def listview(environ, start_response):
    """A list without Content-Length: tutti computes it."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"one,", b"two,", b"", b"three"]


def gen(environ, start_response):
    """A generator: ?n= chunks of ?size= bytes of pattern(), no Content-Length."""
    q = query(environ)
    n, size = int(q.get("n", "5")), int(q.get("size", "10"))
    start_response("200 OK", [("Content-Type", "application/octet-stream")])

    def chunks():
        data = pattern(n * size)
        for i in range(n):
            yield data[i * size:(i + 1) * size]
    return chunks()


def write_view(environ, start_response):
    """write() before returning an iterable: the bytes go out in order."""
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"written-1,")
    write(b"")
    write(b"written-2,")
    return [b"returned"]


def headers_view(environ, start_response):
    """A status with its own reason and a header repeated."""
    start_response("299 Quite Fine", [("Content-Type", "text/plain"),
                                      ("Set-Cookie", "a=1; Path=/"),
                                      ("Set-Cookie", "b=2; Path=/"),
                                      ("X-Odd-Value", "  spaced  out")])
    return [b"headers"]


def empty_then_data(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def chunks():
        yield b""
        yield b""
        yield b"after empties"
    return chunks()


def empty_then_raise(environ, start_response):
    """Nothing but b"" before the error: the head was never sent, so the
    client must get a clean 500, not a 200 with a cut body."""
    start_response("200 OK", [("Content-Type", "text/plain")])

    def chunks():
        yield b""
        raise RuntimeError("empty_then_raise " + query(environ).get("token", ""))
    return chunks()


def cl_more(environ, start_response):
    """Declares 5 bytes, yields 10: the client gets exactly 5."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return iter([b"01234", b"56789"])


def cl_less(environ, start_response):
    """Declares 10 bytes, yields 5: the client sees a cut response."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
    return iter([b"01234"])


# ---------------------------------------------------------------- start_response and exc_info

def exc_replace(environ, start_response):
    """start_response(200), then an error before any byte went out: a
    second start_response with exc_info replaces the status."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-First", "yes")])
    try:
        raise ValueError("replace me")
    except ValueError:
        start_response("503 Service Unavailable", [("Content-Type", "text/plain")],
                       sys.exc_info())
    return [b"replaced by the error page"]


def exc_after_sent(environ, start_response):
    """Bytes already sent: start_response with exc_info re-raises that very
    exception (PEP 3333); the app swallows it here to report what it got."""
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"partial|")
    try:
        raise ValueError("too late")
    except ValueError as first:
        try:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")],
                           sys.exc_info())
            got = "no exception"
        except BaseException as second:
            got = f"reraised={second is first}"
    return [got.encode()]


def start_twice(environ, start_response):
    """A second start_response without exc_info is an error (PEP 3333)."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    try:
        start_response("201 Created", [("Content-Type", "text/plain")])
        got = "no exception"
    except Exception as e:
        got = "raised " + type(e).__name__
    return [got.encode()]


# ---------------------------------------------------------------- close()

class Recorded:
    """An iterable whose close() is recorded in $WSGI_TEST_STATE/close-TOKEN.
    mode: normal (3 chunks), raise (an error after 1 chunk), endless."""

    def __init__(self, token, mode):
        self.token, self.mode, self.i = token, mode, 0

    def __iter__(self):
        return self

    def __next__(self):
        self.i += 1
        if self.mode == "normal" and self.i > 3:
            raise StopIteration
        if self.mode == "raise" and self.i > 1:
            raise RuntimeError("Recorded raise " + self.token)
        return b"x" * 65536 if self.mode == "endless" else b"chunk %d\n" % self.i

    def close(self):
        record("close-" + self.token, f"closed after {self.i}")


def close_view(environ, start_response):
    q = query(environ)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return Recorded(q["token"], q.get("mode", "normal"))


# ---------------------------------------------------------------- wsgi.file_wrapper

class RecordedFile(io.FileIO):
    """A real file (it has fileno()) whose close() is recorded."""
    token = ""

    def close(self):
        if not self.closed and self.token:
            record("close-" + self.token, "file closed")
        super().close()


class RecordedBytes(io.BytesIO):
    token = ""

    def close(self):
        if not self.closed and self.token:
            record("close-" + self.token, "bytes closed")
        super().close()


def file_view(environ, start_response):
    """file_wrapper on $WSGI_TEST_STATE/?name=, from ?offset=; with
    Content-Length unless ?nolength=1."""
    q = query(environ)
    f = RecordedFile(os.path.join(STATE, q["name"]), "r")
    f.token = q.get("token", "")
    offset = int(q.get("offset", "0"))
    f.seek(offset)
    headers = [("Content-Type", "application/octet-stream")]
    if not q.get("nolength"):
        headers.append(("Content-Length", str(os.fstat(f.fileno()).st_size - offset)))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](f, 65536)


def bytesio_view(environ, start_response):
    """file_wrapper on something without a file descriptor."""
    q = query(environ)
    b = RecordedBytes(pattern(int(q.get("size", "100000"))))
    b.token = q.get("token", "")
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](b, int(q.get("blksize", "8192")))


# ---------------------------------------------------------------- errors and output

def raise_view(environ, start_response):
    raise RuntimeError("raise_view " + query(environ).get("token", ""))


def raise_late(environ, start_response):
    """The head and some bytes are out, then an error: the connection must
    close (chunked: no last chunk; with ?length=1: fewer bytes than said)."""
    headers = [("Content-Type", "text/plain")]
    if query(environ).get("length"):
        headers.append(("Content-Length", "100000"))
    start_response("200 OK", headers)

    def chunks():
        yield b"a" * 1000
        raise RuntimeError("raise_late " + query(environ).get("token", ""))
    return chunks()


def write_forever(environ, start_response):
    """write() up to 64 MB: the client leaves after the first one, and then
    write() must raise OSError (recorded in write-TOKEN), not block, nor
    swallow the bytes (which would record "never raised")."""
    token = query(environ)["token"]
    write = start_response("200 OK", [("Content-Type", "application/octet-stream")])
    try:
        for _ in range(1024):
            write(b"w" * 65536)
        record("write-" + token, "never raised")
    except OSError:
        record("write-" + token, "OSError")
    return []


def no_start(environ, start_response):
    return [b"a body without start_response"]


def bad_status(environ, start_response):
    start_response("OK", [("Content-Type", "text/plain")])
    return [b"bad status"]


def bad_header(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Number", 5)])
    return [b"bad header"]


def nonlatin_header(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Name", "\u540d\u524d")])
    return [b"bad header value"]


def print_view(environ, start_response):
    token = query(environ).get("token", "")
    print("printed-" + token)
    sys.stdout.write("held-")                       # no newline yet: one entry with the next
    sys.stdout.write("together-" + token + "\n")
    print("two-lines-1-" + token + "\ntwo-lines-2-" + token)
    sys.stdout.flush()
    sys.stderr.write("stderr-" + token + "\n")
    sys.stderr.flush()
    environ["wsgi.errors"].write("errors-" + token + "\n")
    environ["wsgi.errors"].writelines(["writelines-" + token + "\n"])
    environ["wsgi.errors"].flush()
    return text(start_response, "printed")


def slow(environ, start_response):
    """Occupies a Python thread: says it started (slow-started-TOKEN), then
    waits for the test to create release-TOKEN (at most 30 s)."""
    token = query(environ)["token"]
    record("slow-started-" + token, "started")
    deadline = time.monotonic() + 30
    release = os.path.join(STATE, "release-" + token)
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.02)
    return text(start_response, "slept")


VIEWS = {
    "env": env, "input": input_view, "echo": echo, "read_exactly": read_exactly,
    "sha": sha, "list": listview, "gen": gen, "write": write_view,
    "headers": headers_view, "empty_then_data": empty_then_data,
    "empty_then_raise": empty_then_raise, "cl_more": cl_more, "cl_less": cl_less,
    "exc_replace": exc_replace, "exc_after_sent": exc_after_sent,
    "start_twice": start_twice, "close": close_view, "file": file_view,
    "bytesio": bytesio_view, "raise": raise_view, "raise_late": raise_late,
    "print": print_view, "slow": slow, "write_forever": write_forever,
    "no_start": no_start, "bad_status": bad_status, "bad_header": bad_header,
    "nonlatin_header": nonlatin_header,
}


def application(environ, start_response):
    for segment in environ["PATH_INFO"].split("/"):
        if segment in VIEWS:
            return VIEWS[segment](environ, start_response)
    return text(start_response, "rawapp: no view in " + environ["PATH_INFO"], "404 Not Found")


# ---------------------------------------------------------------- module:factory()

FACTORY_CALLS = 0


def make_app():
    """For `app: rawapp:make_app()`: called once per worker, with no arguments."""
    global FACTORY_CALLS
    FACTORY_CALLS += 1

    def made(environ, start_response):
        return text(start_response, f"made by the factory; factory calls: {FACTORY_CALLS}")
    return made


def failing_factory():
    """For the start-up error test: a factory that raises."""
    raise RuntimeError("the factory failed on purpose")

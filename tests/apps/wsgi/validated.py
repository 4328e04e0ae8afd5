"""A small app wrapped in wsgiref.validate.validator: every check it makes of
the server (environ keys and types, wsgi.input and wsgi.errors methods, the
start_response protocol, close() on the result) fails with an
AssertionError, which tutti turns into a 500 and a traceback in the error
log. A clean run is 200s and no AssertionError anywhere."""
import hashlib
import sys
from wsgiref.validate import validator


def inner(environ, start_response):
    path = environ["PATH_INFO"]
    if path.endswith("/get"):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"validated get"]
    if path.endswith("/post"):
        # the validator allows only read(n), readline([n]), readlines(), iteration
        inp = environ["wsgi.input"]
        first = inp.readline()
        h = hashlib.sha256(first)
        while True:
            piece = inp.read(4096)
            if not piece:
                break
            h.update(piece)
        environ["wsgi.errors"].write("validated post read\n")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [h.hexdigest().encode()]
    if path.endswith("/stream"):
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        return iter([b"one ", b"", b"two"])
    if path.endswith("/error"):
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            1 / 0
        except ZeroDivisionError:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")],
                           sys.exc_info())
            return [b"error page"]
    if path.endswith("/nocontent"):
        start_response("204 No Content", [])
        return []
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]


application = validator(inner)

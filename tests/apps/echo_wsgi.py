"""A WSGI app that streams the request body back, piece by piece, as it
reads it: the throttle tests use it to see upload and download limits on a
real app (wsgi.input read while the client still sends)."""


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    body = environ["wsgi.input"]

    def pieces():
        while True:
            piece = body.read(65536)
            if not piece:
                return
            yield piece

    return pieces()

# The smallest WSGI app: a fixed answer with its length, the cost of the
# server's WSGI layer alone (bench/run wsgi).
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "14")])
    return [b"Hello, world!\n"]

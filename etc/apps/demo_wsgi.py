"""demo_wsgi: a small WSGI app with no framework, for the demo config.

etc/tutti.yaml mounts it under /wsgi/ (doc/wsgi.md has every key):

    python: {path: [apps]}                  # etc/apps is on sys.path
    ...
      - match: /wsgi                        # /wsgi itself, and all under /wsgi/
        wsgi: {app: "demo_wsgi:application", threads: 4, script_name: /wsgi}

With `script_name: /wsgi` the app sees SCRIPT_NAME "/wsgi" and the rest of
the path in PATH_INFO, so it never has to know where it is mounted: its own
links are built from SCRIPT_NAME.

    /wsgi/         this index
    /wsgi/env      the environ tutti hands the app, as a table
    /wsgi/form     a form: GET shows it, POST echoes what was sent
    /wsgi/stream   a response sent line by line as a generator yields them

Only the standard library: the point is to show plain WSGI (PEP 3333).
"""

import html
import os
import threading
import time
from urllib.parse import parse_qsl

# Bigger form posts are refused: the demo has no use for them, and reading
# an unbounded body into memory is the classic way to let a client eat it.
MAX_FORM_BYTES = 64 * 1024


def application(environ, start_response):
    """The WSGI entry point: dispatch on PATH_INFO (the path below /wsgi)."""
    path = environ.get("PATH_INFO", "")
    if path == "":
        # "/wsgi" without the slash: send the browser to "/wsgi/", so that
        # the page's links resolve under the mount point.
        return redirect(start_response, environ["SCRIPT_NAME"] + "/")
    page = PAGES.get(path)
    if page is None:
        return text(start_response, "404 Not Found", f"no page {path!r} here\n")
    return page(environ, start_response)


# ---------------------------------------------------------------- the pages

def index(environ, start_response):
    base = html.escape(environ["SCRIPT_NAME"])
    # Which process and thread answered (the ids `ps -eLf` shows): reload
    # the page to watch the route's `threads` (and the config's `workers`)
    # take turns.
    who = f"process {os.getpid()}, thread {threading.get_native_id()}"
    body = f"""
<h1>A WSGI app inside tutti</h1>
<p>This page comes from <code>etc/apps/demo_wsgi.py</code>, a plain WSGI
callable run by tutti's <code>wsgi</code> module ({html.escape(who)}).</p>
<ul>
  <li><a href="{base}/env">env</a> &mdash; the WSGI environ of your request</li>
  <li><a href="{base}/form">form</a> &mdash; a form, posted back to the app</li>
  <li><a href="{base}/stream">stream</a> &mdash; lines sent one by one as they are made</li>
</ul>
<p>The site itself is on <a href="/">/</a>, served by the <code>static</code> module.</p>
"""
    return page_response(start_response, "tutti: WSGI demo", body)


def env(environ, start_response):
    # Every value is escaped: headers are client input, and a page that
    # echoes them unescaped is a cross-site scripting hole.
    rows = "\n".join(
        f"<tr><th>{html.escape(key)}</th><td><code>{html.escape(shown(value))}</code></td></tr>"
        for key, value in sorted(environ.items()))
    body = f"""
<h1>environ</h1>
<p>What the app receives for this request. Add a query string or a header
(<code>curl -H 'X-Demo: 1' ...</code>) and look again.</p>
<table>
{rows}
</table>
<p><a href="{html.escape(environ['SCRIPT_NAME'])}/">back</a></p>
"""
    return page_response(start_response, "tutti: environ", body)


def form(environ, start_response):
    method = environ["REQUEST_METHOD"]
    if method in ("GET", "HEAD"):
        return page_response(start_response, "tutti: a form", FORM)
    if method != "POST":
        return text(start_response, "405 Method Not Allowed", "GET or POST\n",
                    [("Allow", "GET, HEAD, POST")])

    ctype = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return text(start_response, "415 Unsupported Media Type",
                    "post the form as application/x-www-form-urlencoded\n")
    body = read_body(environ)
    if body is None:
        return text(start_response, "413 Content Too Large",
                    f"a form of at most {MAX_FORM_BYTES} bytes, please\n")

    # parse_qsl keeps repeated fields and their order; keep_blank_values
    # shows a field left empty instead of dropping it.
    fields = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    rows = "\n".join(
        f"<tr><th>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>"
        for name, value in fields) or "<tr><td>(no fields)</td></tr>"
    body = f"""
<h1>You sent</h1>
<table>
{rows}
</table>
<p>{len(fields)} field(s), read from <code>wsgi.input</code>.
<a href="{html.escape(environ['SCRIPT_NAME'])}/form">Again</a></p>
"""
    return page_response(start_response, "tutti: form posted", body)


def stream(environ, start_response):
    # No Content-Length: tutti sends the lines with chunked encoding, each one
    # as soon as the generator yields it. `curl -N .../wsgi/stream` shows them
    # arrive a fifth of a second apart. The sleep is fine here because the
    # route has `threads: 4`: it holds one Python thread, never tutti's event
    # loop. With `threads: 0` it would stall every connection of the worker.
    start_response("200 OK", [
        ("Content-Type", "text/plain; charset=utf-8"),
        # Browsers otherwise may hold back a text/plain response to sniff it.
        ("X-Content-Type-Options", "nosniff"),
    ])
    return count_lines(10, 0.2)


def count_lines(n, pause):
    for i in range(1, n + 1):
        yield f"line {i} of {n}\n".encode()
        if i < n:
            time.sleep(pause)


PAGES = {"/": index, "/env": env, "/form": form, "/stream": stream}


# ---------------------------------------------------------------- helpers

FORM = """
<h1>A form</h1>
<form method="post">
  <p><label>Name <input name="name" value="Ada"></label></p>
  <p><label>Message <textarea name="message">Hello &amp; welcome</textarea></label></p>
  <p><label><input type="checkbox" name="likes" value="tea" checked> tea</label>
     <label><input type="checkbox" name="likes" value="coffee"> coffee</label></p>
  <p><button>Send</button></p>
</form>
"""


def read_body(environ):
    """The request body as bytes, or None when it is over MAX_FORM_BYTES."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    if length:
        if int(length) > MAX_FORM_BYTES:
            return None
        return stream.read(int(length))
    # No length: a chunked body. PEP 3333 lets the app read to the end only
    # when the server says the input ends there (tutti does); read one byte
    # past the limit to know whether the body is over it.
    if not environ.get("wsgi.input_terminated"):
        return b""
    body = stream.read(MAX_FORM_BYTES + 1)
    return None if len(body) > MAX_FORM_BYTES else body


def shown(value):
    """A str as it is, anything else (wsgi.input, the version tuple) as repr."""
    return value if isinstance(value, str) else repr(value)


def page_response(start_response, title, body):
    page = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{html.escape(title)}</title>
  <link rel="stylesheet" href="/style.css">
</head>
<body>
<main>{body}</main>
</body>
</html>
""".encode()
    # A list with a Content-Length: tutti sends it in one piece.
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                              ("Content-Length", str(len(page)))])
    return [page]


def text(start_response, status, message, headers=()):
    data = message.encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                            ("Content-Length", str(len(data))), *headers])
    return [data]


def redirect(start_response, location):
    start_response("301 Moved Permanently", [("Location", location),
                                             ("Content-Length", "0")])
    return [b""]

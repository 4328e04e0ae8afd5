"""The `static` module (doc/static.md), through the real daemon and real
clients: every key, every row of "What a request gets", the safety promises
(no way out of the directory, FIFOs and devices refused) and the speed ones
(a large file is never read into memory, a slow client costs only the socket
buffer).

One daemon (module scope) serves a tree built here, with a route per
feature; tests that change files work in directories of their own."""
import asyncio
import email.utils
import gzip
import hashlib
import html.parser
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote, unquote, urljoin, urlsplit

import pytest
import requests
import websockets

import harness
from harness import config_error_line as _error_line
from harness import SLOW, assert_same_workers, free_port, rss_kb, run_tutti, wait_for
from rawhttp import Closed, Conn, get as raw_get

T = 5 * SLOW                    # timeout of one small request
BIG_T = 120 * SLOW              # timeout of one 50 MB download

MTIME = 1_600_000_000           # Sun, 13 Sep 2020 12:26:40 GMT
BIG_SIZE = 50 * 1024 * 1024
RANGE_SIZE = 10_000             # small: its contents live in the open-file cache
MID_SIZE = 100_000              # over 16 KiB: sent from the descriptor

SECRET = b"TOPSECRET-" + os.urandom(8).hex().encode()
OUTSIDE = b"OUTSIDE-" + os.urandom(8).hex().encode()


def pattern(n, salt=0):
    return bytes((i * 7 + salt + i // 251) % 256 for i in range(n))


def http_date(t):
    return email.utils.formatdate(t, usegmt=True)


def rfc850_date(t):
    return time.strftime("%A, %d-%b-%y %H:%M:%S GMT", time.gmtime(t))


def asctime_date(t):
    return time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime(t))


# ---------------------------------------------------------------- the tree

class Tree:
    pass


def _write(path, data, mtime=MTIME):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def _make_socket_file(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(str(path))
    finally:
        s.close()


def build_tree(base):
    t = Tree()
    t.base = base
    _write(base / "secret.txt", SECRET + b"\n")
    _write(base / "outside" / "out.txt", OUTSIDE + b"\n")

    pub = t.public = base / "public"
    _write(pub / "index.html", "<h1>home</h1>\n")
    _write(pub / "hello.txt", "hello world\n")
    _write(pub / "style.css", "body { color: red }\n")
    _write(pub / "app.js", "console.log(1);\n")
    _write(pub / "img.png", b"\x89PNG\r\n\x1a\n" + bytes(100))
    _write(pub / "data.json", '{"a": 1}\n')
    _write(pub / "pic.svg", "<svg xmlns='http://www.w3.org/2000/svg'/>\n")
    _write(pub / "mod.wasm", b"\x00asm\x01\x00\x00\x00")
    _write(pub / "UPPER.PNG", b"\x89PNG\r\n\x1a\n")
    _write(pub / "blob.zzunknown", b"\x01\x02\x03")
    _write(pub / "noext", b"no extension\n")
    _write(pub / "thing.foo", b"foo\n")
    _write(pub / "empty.txt", b"")
    _write(pub / "dir" / "index.html", "<p>dir index</p>\n")
    _write(pub / "dir" / "page.txt", "page\n")
    _write(pub / "sub" / "file.txt", "in sub\n")           # no index.html
    _write(pub / "sp ace" / "index.html", "spaced\n")
    _write(pub / ".env", "SECRET_KEY=dotenv\n")
    _write(pub / ".git" / "config", "[core]\n")
    _write(pub / "sub" / ".hidden", "hidden\n")
    _write(pub / ".well-known" / "x", "well known x\n")
    _write(pub / ".well-known" / "acme-challenge" / "tok", "acme-token\n")
    t.range_data = pattern(RANGE_SIZE)
    _write(pub / "range.txt", t.range_data)
    t.mid_data = pattern(MID_SIZE, 3)
    _write(pub / "mid.bin", t.mid_data)
    t.big_data = os.urandom(BIG_SIZE)
    _write(pub / "big.bin", t.big_data)
    t.big_sha = hashlib.sha256(t.big_data).hexdigest()
    # symbolic links: out of the root (relative, absolute, a directory), and in
    os.symlink("../outside/out.txt", pub / "link_out")
    os.symlink("../secret.txt", pub / "link_secret")
    os.symlink(str(base / "outside" / "out.txt"), pub / "link_out_abs")
    os.symlink("../outside", pub / "link_dir_out")
    os.symlink("hello.txt", pub / "link_in")
    os.symlink("dir", pub / "link_dir_in")
    os.symlink("dir/page.txt", pub / "link_in_sub")
    # things that are not regular files
    os.mkfifo(pub / "fifo")
    _make_socket_file(pub / "sock")
    t.has_device = False
    try:
        os.mknod(pub / "zero", stat.S_IFCHR | 0o666, os.makedev(1, 5))   # /dev/zero
        t.has_device = True
    except OSError:
        pass

    # route /alias/ and /rootpfx/
    _write(base / "adir" / "a.txt", "alias a\n")
    _write(base / "adir" / "alias" / "a.txt", "WRONG: root semantics\n")
    _write(base / "adir" / "sub" / "b.txt", "alias b\n")
    _write(base / "rootdir" / "rootpfx" / "r.txt", "root r\n")
    _write(base / "rootdir" / "r.txt", "WRONG: alias semantics\n")

    # route /idx/
    _write(base / "idx" / "both" / "index.htm", "HTM\n")
    _write(base / "idx" / "both" / "default.html", "DEFAULT\n")
    _write(base / "idx" / "both" / "index.html", "HTML\n")
    _write(base / "idx" / "second" / "default.html", "DEFAULT\n")
    _write(base / "idx" / "second" / "index.html", "HTML\n")
    _write(base / "idx" / "none" / "other.html", "other\n")

    # route /auto/
    ls = t.listing = base / "listing"
    t.weird_name = '<b>&"x.txt'
    _write(ls / t.weird_name, "12345")
    _write(ls / "a-first.txt", "a")
    _write(ls / "sized.bin", bytes(12345), mtime=1_620_000_000)     # 2021-05-03
    _write(ls / "child" / "inner.txt", "inner\n")
    _write(ls / ".hidden", "hidden\n")
    _write(ls / "withindex" / "index.html", "listing index\n")
    t.odd_names = ["q?x.txt", "hash#x.txt", "pct%41.txt", "sp ace.txt", "ünï.txt",
                   "semi;x.txt", "tag<i>.txt"]
    for name in t.odd_names:
        _write(ls / "odd" / name, name)
    _write(Path(os.fsdecode(bytes(ls / "bin") + b"/\xff\xfe.bin")), "not utf-8")

    # route /pre/
    pre = base / "pre"
    t.a_plain = b"plain text A\n" * 200
    t.a_gz = gzip.compress(t.a_plain)
    t.a_br = b"BR-FAKE-" + os.urandom(64)      # opaque to the server
    _write(pre / "a.txt", t.a_plain)
    _write(pre / "a.txt.gz", t.a_gz)
    _write(pre / "a.txt.br", t.a_br)
    t.b_plain = b"plain text B\n" * 100
    t.b_gz = gzip.compress(t.b_plain)
    _write(pre / "b.txt", t.b_plain)
    _write(pre / "b.txt.gz", t.b_gz)
    _write(pre / "c.txt", b"only plain C\n")

    # route /spa/
    spa = base / "spa"
    _write(spa / "index.html", "<div id=app></div>\n")
    _write(spa / "real.txt", "real\n")
    _write(spa / ".env", "spa dotenv\n")
    os.mkfifo(spa / "fifo")
    os.symlink("../secret.txt", spa / "link_secret")

    # mutable trees: /nocache/ and /cache1s/
    (base / "mut0").mkdir()
    (base / "mut1").mkdir()
    return t


def site_config(t):
    b = t.base
    pub = str(t.public)

    def r(match, **static):
        return {"match": match, "static": static}

    return {"modules": ["static"], "servers": [{"routes": [
        r("/alias/", alias=str(b / "adir")),
        r("/rootpfx/", root=str(b / "rootdir")),
        r("/idx/", alias=str(b / "idx"), index=["index.htm", "default.html", "index.html"]),
        r("/noindex/", alias=pub, index=[]),
        r("/auto/", alias=str(t.listing), autoindex=True),
        r("/pre/", alias=str(b / "pre"), precompressed=True),
        r("/spa/", alias=str(b / "spa"), fallback="/index.html"),
        r("/follow/", alias=pub, follow_symlinks=True),
        r("/dots/", alias=pub, dotfiles="allow"),
        r("/exp/", alias=pub, expires="1h"),
        r("/exp30/", alias=pub, expires="30d"),
        r("/expoff/", alias=pub, expires="off"),
        r("/types/", alias=pub, types={"foo": "application/x-foo", "css": "text/x-special"},
          default_type="application/x-default"),
        r("/nocache/", alias=str(b / "mut0"), open_file_cache="off"),
        r("/cache1s/", alias=str(b / "mut1"), open_file_cache={"max": 1000, "valid": "1s"}),
        r("/", root=pub),
    ]}]}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return build_tree(tmp_path_factory.mktemp("static-tree"))


@pytest.fixture(scope="module")
def site(shared_daemon, tree):
    d = shared_daemon(site_config(tree))
    d.tree = tree
    d.first_workers = d.worker_pids()
    assert len(d.first_workers) == 1, d.first_workers
    return d


# ---------------------------------------------------------------- helpers

def get(site, path, headers=None, method="GET"):
    """One request on a raw socket (the path is sent exactly as given)."""
    hs = [f"{k}: {v}" for k, v in (headers or {}).items()]
    return raw_get(site.port, path, headers=hs, method=method)


def ctype(resp):
    return (resp.header("Content-Type") or "").lower().replace(" ", "")


_CR = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


def content_range(value):
    m = _CR.match(value or "")
    assert m, f"bad Content-Range {value!r}"
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def parse_multipart(resp, size):
    """[(first, last, bytes, part_headers)] of a multipart/byteranges body,
    checking its framing byte by byte."""
    ct = resp.header("Content-Type") or ""
    m = re.match(r'^multipart/byteranges;\s*boundary=(?:"([^"]+)"|([^\s;]+))\s*$', ct, re.I)
    assert m, f"not multipart/byteranges with a boundary: {ct!r}"
    delim = b"--" + (m.group(1) or m.group(2)).encode()
    body = resp.body
    assert len(body) == int(resp.header("Content-Length")), "body length != Content-Length"
    pos = body.find(delim)
    assert pos >= 0, "no boundary in the body"
    assert pos == 0 or body[pos - 2:pos] == b"\r\n", "boundary not at a line start"
    parts = []
    while True:
        pos += len(delim)
        if body[pos:pos + 2] == b"--":
            tail = body[pos + 2:]
            assert tail in (b"", b"\r\n"), f"bytes after the closing boundary: {tail[:40]!r}"
            break
        assert body[pos:pos + 2] == b"\r\n", f"boundary not followed by CRLF at {pos}"
        pos += 2
        hend = body.index(b"\r\n\r\n", pos)
        headers = {}
        for line in body[pos:hend].decode("latin-1").split("\r\n"):
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        pos = hend + 4
        first, last, total = content_range(headers.get("content-range"))
        assert total == size, f"part Content-Range total {total} != {size}"
        n = last - first + 1
        data = body[pos:pos + n]
        assert len(data) == n, "part shorter than its Content-Range"
        pos += n
        assert body[pos:pos + 2] == b"\r\n", f"part data not followed by CRLF at {pos}"
        pos += 2
        assert body.startswith(delim, pos), f"part not followed by the boundary at {pos}"
        parts.append((first, last, data, headers))
    assert parts, "multipart body without parts"
    return parts


def ranges_of(resp, size):
    """[(first, last, bytes)] of a 206, single part or multipart."""
    assert resp.status == 206, resp
    if ctype(resp).startswith("multipart/byteranges"):
        return [(f, l, d) for f, l, d, _ in parse_multipart(resp, size)]
    first, last, total = content_range(resp.header("Content-Range"))
    assert total == size
    assert len(resp.body) == last - first + 1 == int(resp.header("Content-Length"))
    return [(first, last, resp.body)]


def check_ranges(parts, data, requested):
    """Parts are sorted, disjoint, not adjacent, byte-exact, cover every
    requested byte, and add only small gaps between requested ranges."""
    for f, l, d in parts:
        assert 0 <= f <= l < len(data)
        assert d == data[f:l + 1], f"bytes {f}-{l} differ from the file"
    for (f1, l1, _), (f2, l2, _) in zip(parts, parts[1:]):
        assert l1 + 1 < f2, f"parts {f1}-{l1} and {f2}-{l2} not sorted, overlap or touch"
    for f, l in requested:
        assert any(pf <= f and l <= pl for pf, pl, _ in parts), f"{f}-{l} not sent"
    union = set()
    for f, l in requested:
        union.update(range(f, l + 1))
    sent = sum(l - f + 1 for f, l, _ in parts)
    assert sent <= len(union) + 100 * len(requested), \
        f"{sent} bytes sent for {len(union)} requested"


class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            for k, v in attrs:
                if k == "href" and v is not None:
                    self.hrefs.append(v)


# ================================================================ GET and HEAD

def test_file_has_the_documented_headers(site):
    r = get(site, "/hello.txt")
    assert (r.status, r.body) == (200, b"hello world\n")
    assert ctype(r) == "text/plain;charset=utf-8"
    assert r.header("Content-Length") == "12"
    assert r.header("Last-Modified") == http_date(MTIME)
    etag = r.header("ETag")
    assert etag and re.fullmatch(r'"[^"\s]+"', etag), f"not a strong ETag: {etag!r}"
    assert r.header("Accept-Ranges") == "bytes"
    assert r.header("Cache-Control") is None, "expires defaults to off"
    assert r.header("Vary") is None, "precompressed defaults to false"
    assert r.header("Content-Encoding") is None


def test_etag_is_stable_and_differs_between_files(site):
    a1 = get(site, "/hello.txt").header("ETag")
    a2 = get(site, "/hello.txt").header("ETag")
    b = get(site, "/style.css").header("ETag")
    assert a1 == a2
    assert a1 != b


def test_head_has_the_same_headers_and_no_body(site):
    for path in ("/hello.txt", "/big.bin", "/mid.bin", "/dir/"):
        g = get(site, path)
        with Conn(site.port) as c:
            c.send(f"HEAD {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            h = c.read_response(head_request=True)
            rest = c.read_until_close()
        assert h.status == g.status == 200, (path, h, g)
        assert rest == b"", f"HEAD {path}: {len(rest)} body bytes followed the head"
        gh = {k.lower(): v for k, v in g.headers if k.lower() != "date"}
        hh = {k.lower(): v for k, v in h.headers if k.lower() != "date"}
        gh.pop("connection", None)
        hh.pop("connection", None)
        assert gh == hh, f"HEAD {path} headers differ from GET"


def test_head_then_get_on_one_connection(site):
    with Conn(site.port) as c:
        c.send("HEAD /range.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
        h = c.read_response(head_request=True)
        c.send("GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        g = c.read_response()
        rest = c.read_until_close()
    assert h.status == 200 and h.header("Content-Length") == str(RANGE_SIZE)
    assert (g.status, g.body, rest) == (200, b"hello world\n", b"")


def test_http10_get(site):
    with Conn(site.port) as c:
        c.send("GET /hello.txt HTTP/1.0\r\n\r\n")
        r = c.read_response()
    assert (r.status, r.body) == (200, b"hello world\n")


def test_empty_file(site):
    r = get(site, "/empty.txt")
    assert (r.status, r.body, r.header("Content-Length")) == (200, b"", "0")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_are_405_with_allow(site, method):
    r = requests.request(method, site.url + "/hello.txt", data=b"x" if method != "OPTIONS" else None,
                         timeout=T)
    assert r.status_code == 405, (method, r.status_code)
    allow = [m.strip() for m in r.headers.get("Allow", "").split(",")]
    assert sorted(allow) == ["GET", "HEAD"], r.headers.get("Allow")
    assert r.headers.get("Allow").replace(" ", "") == "GET,HEAD"
    assert b"hello world" not in r.content


def test_405_on_a_directory_and_the_connection_goes_on(site):
    with Conn(site.port) as c:
        c.send("POST /dir/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc")
        r1 = c.read_response()
        c.send("GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        r2 = c.read_response()
    assert r1.status == 405 and r1.header("Allow").replace(" ", "") == "GET,HEAD"
    assert (r2.status, r2.body) == (200, b"hello world\n")


def test_curl_downloads_a_file(site, tmp_path):
    out = tmp_path / "hello.out"
    p = subprocess.run(["curl", "-sS", "--max-time", str(T), "-o", str(out), "-w", "%{http_code}",
                        site.url + "/hello.txt"], capture_output=True, text=True, timeout=T + 5)
    assert p.stdout == "200", p.stderr
    assert out.read_bytes() == b"hello world\n"


# ================================================================ Content-Type

@pytest.mark.parametrize("path,want", [
    ("/index.html", "text/html;charset=utf-8"),
    ("/style.css", "text/css;charset=utf-8"),
    ("/hello.txt", "text/plain;charset=utf-8"),
    ("/img.png", "image/png"),
    ("/UPPER.PNG", "image/png"),
    ("/mod.wasm", "application/wasm"),
    ("/blob.zzunknown", "application/octet-stream"),
    ("/noext", "application/octet-stream"),
])
def test_content_type(site, path, want):
    r = get(site, path)
    assert r.status == 200
    assert ctype(r) == want, (path, r.header("Content-Type"))


def test_content_type_js_json_svg(site):
    js = ctype(get(site, "/app.js"))
    assert js in ("text/javascript;charset=utf-8", "application/javascript;charset=utf-8"), js
    assert ctype(get(site, "/data.json")).startswith("application/json")
    assert ctype(get(site, "/pic.svg")).startswith("image/svg+xml")


def test_types_override_and_default_type(site):
    assert ctype(get(site, "/types/thing.foo")).startswith("application/x-foo")
    assert ctype(get(site, "/types/style.css")).startswith("text/x-special")
    assert ctype(get(site, "/types/blob.zzunknown")) == "application/x-default"
    assert ctype(get(site, "/types/noext")) == "application/x-default"
    # a type not overridden keeps its usual one
    assert ctype(get(site, "/types/img.png")) == "image/png"
    assert ctype(get(site, "/types/hello.txt")) == "text/plain;charset=utf-8"
    # and the override is only for that route
    assert ctype(get(site, "/thing.foo")) == "application/octet-stream"
    assert ctype(get(site, "/style.css")) == "text/css;charset=utf-8"


# ================================================================ root, alias, index, directories

def test_root_appends_the_whole_path(site):
    r = get(site, "/rootpfx/r.txt")
    assert (r.status, r.body) == (200, b"root r\n")


def test_alias_appends_the_path_after_the_prefix(site):
    assert get(site, "/alias/a.txt").body == b"alias a\n"
    assert get(site, "/alias/sub/b.txt").body == b"alias b\n"


def test_missing_file_is_404(site):
    for path in ("/nope.txt", "/nodir/nope.txt", "/alias/nope", "/hello.txt/x"):
        r = get(site, path)
        assert r.status == 404, (path, r)


def test_directory_index(site):
    r = get(site, "/dir/")
    assert (r.status, r.body) == (200, b"<p>dir index</p>\n")
    assert ctype(r) == "text/html;charset=utf-8"
    assert get(site, "/").body == b"<h1>home</h1>\n"


def test_index_list_is_tried_in_order(site):
    assert get(site, "/idx/both/").body == b"HTM\n"
    assert get(site, "/idx/second/").body == b"DEFAULT\n"
    assert get(site, "/idx/none/").status == 403


def test_empty_index_list_and_no_autoindex_is_403(site):
    r = get(site, "/noindex/dir/")
    assert r.status == 403
    assert b"dir index" not in r.body
    assert get(site, "/noindex/dir/page.txt").status == 200


def test_directory_without_index_is_403(site):
    r = get(site, "/sub/")
    assert r.status == 403
    assert b"file.txt" not in r.body


def _location_path_query(r):
    """Path and query of the Location (relative or absolute, both are fine)."""
    loc = r.header("Location")
    assert loc, f"no Location in {r.headers}"
    u = urlsplit(loc)
    return u.path, u.query


@pytest.mark.parametrize("path,want_path,want_query", [
    ("/dir", "/dir/", ""),
    ("/dir?x=1&y=a%20b", "/dir/", "x=1&y=a%20b"),
    ("/alias/sub", "/alias/sub/", ""),
    ("/alias/sub?q", "/alias/sub/", "q"),
    ("/idx/both?a=b", "/idx/both/", "a=b"),
    ("/sp%20ace", "/sp%20ace/", ""),
])
def test_directory_without_slash_redirects_keeping_the_query(site, path, want_path, want_query):
    r = get(site, path)
    assert r.status == 301, (path, r)
    assert _location_path_query(r) == (want_path, want_query), r.header("Location")
    assert b"dir index" not in r.body


def test_redirect_target_is_served(site):
    r = requests.get(site.url + "/sp%20ace?z=1", timeout=T)
    assert (r.status_code, r.text) == (200, "spaced\n")
    assert r.history and r.history[0].status_code == 301


# ================================================================ autoindex

def test_autoindex_lists_the_directory(site):
    t = site.tree
    r = get(site, "/auto/")
    assert r.status == 200
    assert ctype(r).startswith("text/html")
    page = r.body.decode("utf-8")
    links = Links()
    links.feed(page)
    entries = []                # (name as listed, path to request), in page order
    for h in links.hrefs:
        u = urlsplit(urljoin("http://x/auto/", h))
        if u.netloc != "x" or u.query or not u.path.startswith("/auto/") or u.path == "/auto/":
            continue            # parent link, sort links
        entries.append((unquote(u.path[len("/auto/"):]), u.path))
    names = [n for n, _ in entries]
    assert sorted(names) == sorted(["child/", "withindex/", "odd/", "bin/", "a-first.txt",
                                    "sized.bin", t.weird_name]), names
    # names escaped: the raw name never appears as markup
    assert t.weird_name not in page
    assert "&lt;b&gt;" in page and "&amp;" in page
    # directories carry a trailing slash, and come first
    assert names.index("child/") < names.index("a-first.txt"), names
    assert names.index("withindex/") < names.index(t.weird_name), names
    # dotfiles are not listed with dotfiles: deny
    assert ".hidden" not in page
    # sizes and modification dates
    assert re.search(r"12345|12(\.\d)?\s?K|13\s?K", page), "no size for sized.bin"
    assert "2021" in page, "no modification date for sized.bin"
    # every link works, the odd name included
    files = {"a-first.txt": b"a", "sized.bin": bytes(12345), t.weird_name: b"12345"}
    for name, path in entries:
        target = quote(path, safe="/%:@&=+$,;~!*'()")        # as a browser sends it
        rr = get(site, target)
        assert rr.status == 200, (name, target, rr)
        if not name.endswith("/"):
            assert rr.body == files[name], (name, rr.body[:40])


def _listing_links(page, base):
    """(name, target a browser would send) for the entries under base."""
    links = Links()
    links.feed(page)
    out = []
    for h in links.hrefs:
        u = urlsplit(urljoin("http://x" + base, h))
        if u.netloc != "x" or not u.path.startswith(base) or u.path == base:
            continue
        target = quote(u.path, safe="/%:@&=+$,;~!*'()") + ("?" + u.query if u.query else "")
        out.append((unquote(u.path[len(base):]), target))
    return out


def test_autoindex_links_work_for_odd_names(site):
    t = site.tree
    r = get(site, "/auto/odd/")
    assert r.status == 200
    page = r.body.decode("utf-8")
    assert "<i>" not in page
    entries = _listing_links(page, "/auto/odd/")
    assert sorted(n for n, _ in entries) == sorted(t.odd_names), entries
    for name, target in entries:
        rr = get(site, target)
        assert (rr.status, rr.body) == (200, name.encode()), (name, target, rr)


def test_autoindex_of_names_that_are_not_utf8(site):
    r = get(site, "/auto/bin/")
    assert r.status == 200
    entries = _listing_links(r.body.decode("utf-8", "replace"), "/auto/bin/")
    assert len(entries) == 1, entries
    rr = get(site, entries[0][1])
    assert (rr.status, rr.body) == (200, b"not utf-8"), entries


def test_autoindex_uses_the_index_when_there_is_one(site):
    r = get(site, "/auto/withindex/")
    assert (r.status, r.body) == (200, b"listing index\n")


def test_autoindex_of_a_subdirectory(site):
    r = get(site, "/auto/child/")
    assert r.status == 200
    assert "inner.txt" in r.body.decode()


def test_autoindex_directory_without_slash_redirects(site):
    r = get(site, "/auto/child")
    assert r.status == 301
    assert _location_path_query(r) == ("/auto/child/", "")


# ================================================================ expires

def test_expires(site):
    assert get(site, "/exp/hello.txt").header("Cache-Control") == "max-age=3600"
    assert get(site, "/exp30/hello.txt").header("Cache-Control") == "max-age=2592000"
    assert get(site, "/expoff/hello.txt").header("Cache-Control") is None
    assert get(site, "/hello.txt").header("Cache-Control") is None


def test_expires_on_304_and_206(site):
    etag = get(site, "/exp/hello.txt").header("ETag")
    r = get(site, "/exp/hello.txt", {"If-None-Match": etag})
    assert r.status == 304
    assert r.header("Cache-Control") == "max-age=3600"
    r = get(site, "/exp/hello.txt", {"Range": "bytes=0-1"})
    assert r.status == 206 and r.header("Cache-Control") == "max-age=3600"


# ================================================================ dotfiles

@pytest.mark.parametrize("path", ["/.env", "/.git/config", "/sub/.hidden", "/.nope",
                                  "/.nodir/x", "/dir/.x/y", "/alias/.a", "/.well-known/../.env",
                                  "/spa/.env", "/spa/.missing"])
def test_dotfiles_are_403(site, path):
    r = get(site, path)
    assert r.status == 403, (path, r)
    assert b"dotenv" not in r.body and b"[core]" not in r.body


def test_well_known_is_served(site):
    r = get(site, "/.well-known/x")
    assert (r.status, r.body) == (200, b"well known x\n")
    r = get(site, "/.well-known/acme-challenge/tok")
    assert (r.status, r.body) == (200, b"acme-token\n")
    assert get(site, "/.well-known/missing").status == 404


def test_dotfiles_allow(site):
    r = get(site, "/dots/.env")
    assert (r.status, r.body) == (200, b"SECRET_KEY=dotenv\n")
    assert get(site, "/dots/.git/config").body == b"[core]\n"
    assert get(site, "/dots/sub/.hidden").body == b"hidden\n"
    assert get(site, "/dots/.nope").status == 404


# ================================================================ fallback

def test_fallback_for_a_missing_file(site):
    for path in ("/spa/missing", "/spa/a/b/c", "/spa/missing.js"):
        r = get(site, path)
        assert (r.status, r.body) == (200, b"<div id=app></div>\n"), path
        assert ctype(r) == "text/html;charset=utf-8", path
    assert get(site, "/spa/real.txt").body == b"real\n"


def test_fallback_does_not_cover_forbidden(site):
    for path in ("/spa/fifo", "/spa/link_secret", "/spa/.env"):
        r = get(site, path)
        assert r.status == 403, (path, r)
        assert SECRET not in r.body


# ================================================================ symlinks, FIFOs, devices

@pytest.mark.parametrize("path", ["/link_out", "/link_secret", "/link_out_abs",
                                  "/link_dir_out/out.txt", "/link_dir_out/"])
def test_symlink_leading_out_is_403(site, path):
    r = get(site, path)
    assert r.status == 403, (path, r)
    assert OUTSIDE not in r.body and SECRET not in r.body


def test_symlink_inside_is_followed(site):
    assert get(site, "/link_in").body == b"hello world\n"
    assert get(site, "/link_in_sub").body == b"page\n"
    assert get(site, "/link_dir_in/page.txt").body == b"page\n"


def test_follow_symlinks_true_goes_outside(site):
    r = get(site, "/follow/link_out")
    assert (r.status, r.body) == (200, OUTSIDE + b"\n")
    r = get(site, "/follow/link_dir_out/out.txt")
    assert (r.status, r.body) == (200, OUTSIDE + b"\n")
    assert get(site, "/follow/link_out_abs").body == OUTSIDE + b"\n"


def _unstick_fifo(path):
    """If a worker blocks opening the FIFO for reading, opening it for writing
    releases it; returns True when someone was blocked on it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return False
    os.close(fd)
    return True


@pytest.mark.parametrize("name", ["fifo", "sock", "zero"])
def test_special_files_are_403_and_the_worker_goes_on(site, name):
    t = site.tree
    if name == "zero" and not t.has_device:
        pytest.skip("cannot mknod a device here")
    path = t.public / name
    try:
        r = get(site, "/" + name)
    except (OSError, Closed) as e:
        blocked = name == "fifo" and _unstick_fifo(path)
        pytest.fail(f"GET /{name} got no answer ({e!r}); "
                    f"a reader was blocked on the FIFO: {blocked}")
    if name == "fifo":
        assert not _unstick_fifo(path), "the worker still holds the FIFO open for reading"
    assert r.status == 403, (name, r)
    assert get(site, "/hello.txt").body == b"hello world\n"
    # twice in a row, and interleaved with other requests
    assert get(site, "/" + name).status == 403
    assert get(site, "/hello.txt").status == 200
    assert_same_workers(site)


# ================================================================ traversal

TRAVERSALS = [
    "/../secret.txt",
    "/../../secret.txt",
    "/..",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/.%2e/secret.txt",
    "/%2e./secret.txt",
    "/..%2fsecret.txt",
    "/%2e%2e%2fsecret.txt",
    "/..%2Fsecret.txt",
    "/dir/..%2f..%2fsecret.txt",
    "/..%5csecret.txt",
    "/..\\secret.txt",
    "/dir\\..\\..\\secret.txt",
    "/%5c..%5csecret.txt",
    "//../secret.txt",
    "//secret.txt",
    "///..//secret.txt",
    "/./../secret.txt",
    "/dir/../../secret.txt",
    "/dir/./../../secret.txt",
    "/%00/../secret.txt",
    "/secret.txt%00",
    "/hello.txt%00.html",
    "/link_secret%00",
    "/...//secret.txt",
    "/..;/secret.txt",
    "/%252e%252e/secret.txt",
    "/%252e%252e%252fsecret.txt",
    "/%c0%ae%c0%ae/secret.txt",
    "/%c0%af../secret.txt",
    "/alias/../secret.txt",
    "/alias/..%2f..%2fsecret.txt",
    "/alias/%2e%2e/%2e%2e/secret.txt",
    "/alias/../..",
    "/follow/../secret.txt",
    "/follow/%2e%2e/secret.txt",
    "/auto/../../secret.txt",
    "/spa/../secret.txt",
    "/spa/..%2fsecret.txt",
    "/rootpfx/../secret.txt",
    "/link_dir_out/../secret.txt",
    "/link_dir_out/%2e%2e/secret.txt",
    "/etc/passwd",
    "//etc/passwd",
    "/%2fetc/passwd",
    "/%2Fetc%2Fpasswd",
    "/../../../../../../../../etc/passwd",
    "/" + "a/" * 2000 + "../" * 2001 + "secret.txt",
    "/" + "%2e%2e/" * 1000 + "secret.txt",
    "/" + "x" * 300,
    "/" + "x/" * 3000 + "hello.txt",
    "/" + "./" * 3000 + "../secret.txt",
]


def test_traversal_never_leaves_the_root(site):
    t = site.tree
    paths = TRAVERSALS + [str(t.base / "secret.txt"),        # absolute-looking
                          "/" + str(t.base / "secret.txt"),
                          str(t.base / "public" / ".." / "secret.txt"),
                          "/public/../secret.txt"]
    for path in paths:
        r = get(site, path)
        assert SECRET not in r.body, f"{path!r} leaked the secret"
        assert b"root:x:0:0" not in r.body, f"{path!r} leaked /etc/passwd"
        assert r.status in (400, 403, 404, 414), (path[:80], r)
    assert_same_workers(site)


@pytest.mark.parametrize("target", [
    "http://localhost/../secret.txt",
    "http://localhost/%2e%2e/secret.txt",
    "secret.txt",
    "../secret.txt",
    "*",
])
def test_odd_request_targets(site, target):
    with Conn(site.port) as c:
        c.send(f"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        r = c.read_response()
    assert SECRET not in r.body
    assert r.status in (400, 403, 404), (target, r)


def test_traversal_with_curl_path_as_is(site):
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/alias/../../secret.txt",
                 "/dir/..%2f..%2fsecret.txt"):
        p = subprocess.run(["curl", "-sS", "--path-as-is", "--max-time", str(T),
                            "-w", "\n%{http_code}", site.url + path],
                           capture_output=True, timeout=T + 5)
        body, _, code = p.stdout.rpartition(b"\n")
        assert SECRET not in p.stdout, path
        assert code in (b"400", b"403", b"404"), (path, code, p.stderr)


def test_alias_does_not_escape_through_its_prefix(site):
    # /alias/../secret.txt is /secret.txt for the core: the root route, no file
    assert get(site, "/alias/../secret.txt").status == 404
    # /alias/.. is / for the core: the root route's index
    assert get(site, "/alias/..").body == b"<h1>home</h1>\n"
    # the directory beside alias's (adir/alias/a.txt) is not reachable as root semantics
    assert get(site, "/alias/a.txt").body == b"alias a\n"
    assert get(site, "/rootpfx/r.txt").body == b"root r\n"


# ================================================================ conditional requests

def _validators(site, path="/hello.txt"):
    r = get(site, path)
    assert r.status == 200
    return r.header("ETag"), r.header("Last-Modified")


def _is_304(r, etag):
    assert r.status == 304, r
    assert r.body == b""
    assert r.header("ETag") == etag
    assert r.header("Last-Modified") == http_date(MTIME)


def test_if_none_match(site):
    etag, _ = _validators(site)
    _is_304(get(site, "/hello.txt", {"If-None-Match": etag}), etag)
    _is_304(get(site, "/hello.txt", {"If-None-Match": "*"}), etag)
    _is_304(get(site, "/hello.txt", {"If-None-Match": f'"nope", {etag}, "other"'}), etag)
    _is_304(get(site, "/hello.txt", {"If-None-Match": f'"nope",{etag}'}), etag)
    _is_304(get(site, "/hello.txt", {"If-None-Match": "W/" + etag}), etag)
    r = get(site, "/hello.txt", {"If-None-Match": '"nope", "other"'})
    assert (r.status, r.body) == (200, b"hello world\n")
    r = get(site, "/hello.txt", {"If-None-Match": etag[:-2] + '"'})
    assert r.status == 200


def test_head_with_if_none_match(site):
    etag, _ = _validators(site)
    r = get(site, "/hello.txt", {"If-None-Match": etag}, method="HEAD")
    assert r.status == 304


def test_304_carries_no_body_on_the_wire(site):
    etag, _ = _validators(site, "/mid.bin")
    with Conn(site.port) as c:
        c.send(f"GET /mid.bin HTTP/1.1\r\nHost: localhost\r\nIf-None-Match: {etag}\r\n\r\n")
        r1 = c.read_response()
        c.send("GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        r2 = c.read_response()
        rest = c.read_until_close()
    assert r1.status == 304
    assert (r2.status, r2.body, rest) == (200, b"hello world\n", b"")


def test_if_modified_since(site):
    etag, lm = _validators(site)
    _is_304(get(site, "/hello.txt", {"If-Modified-Since": lm}), etag)
    _is_304(get(site, "/hello.txt", {"If-Modified-Since": http_date(MTIME + 3600)}), etag)
    _is_304(get(site, "/hello.txt", {"If-Modified-Since": rfc850_date(MTIME)}), etag)
    _is_304(get(site, "/hello.txt", {"If-Modified-Since": asctime_date(MTIME)}), etag)
    r = get(site, "/hello.txt", {"If-Modified-Since": http_date(MTIME - 1)})
    assert (r.status, r.body) == (200, b"hello world\n")
    for garbage in ("yesterday", "Sun, 13 Sep 2020 12:26:40", "0", "",
                    "Sun, 99 Foo 2020 99:99:99 GMT"):
        r = get(site, "/hello.txt", {"If-Modified-Since": garbage})
        assert (r.status, r.body) == (200, b"hello world\n"), garbage


def test_if_none_match_wins_over_if_modified_since(site):
    _, lm = _validators(site)
    r = get(site, "/hello.txt", {"If-None-Match": '"other"', "If-Modified-Since": lm})
    assert r.status == 200


def test_if_match(site):
    etag, _ = _validators(site)
    for v in (etag, "*", f'"a", {etag}'):
        r = get(site, "/hello.txt", {"If-Match": v})
        assert (r.status, r.body) == (200, b"hello world\n"), v
    for v in ('"nope"', "W/" + etag, '"a", "b"'):
        r = get(site, "/hello.txt", {"If-Match": v})
        assert r.status == 412, v
        assert b"hello world" not in r.body


def test_if_unmodified_since(site):
    _, lm = _validators(site)
    r = get(site, "/hello.txt", {"If-Unmodified-Since": http_date(MTIME - 60)})
    assert r.status == 412
    for v in (lm, http_date(MTIME + 60)):
        r = get(site, "/hello.txt", {"If-Unmodified-Since": v})
        assert (r.status, r.body) == (200, b"hello world\n"), v
    r = get(site, "/hello.txt", {"If-Unmodified-Since": "garbage"})
    assert r.status == 200


def test_conditional_order(site):
    etag, lm = _validators(site)
    # If-Match passes: If-Unmodified-Since is not looked at
    r = get(site, "/hello.txt", {"If-Match": etag,
                                 "If-Unmodified-Since": http_date(MTIME - 60)})
    assert r.status == 200
    # If-Match fails before If-None-Match would say 304
    r = get(site, "/hello.txt", {"If-Match": '"nope"', "If-None-Match": etag})
    assert r.status == 412
    # If-Unmodified-Since fails before If-Modified-Since
    r = get(site, "/hello.txt", {"If-Unmodified-Since": http_date(MTIME - 60),
                                 "If-Modified-Since": lm})
    assert r.status == 412
    # 304 wins over Range
    r = get(site, "/hello.txt", {"If-None-Match": etag, "Range": "bytes=0-1"})
    assert r.status == 304
    # 412 wins over Range
    r = get(site, "/hello.txt", {"If-Match": '"nope"', "Range": "bytes=0-1"})
    assert r.status == 412


# ================================================================ ranges

def test_single_ranges(site):
    data = site.tree.range_data
    n = len(data)
    for spec, (f, l) in [("0-99", (0, 99)), ("0-0", (0, 0)), ("9990-", (9990, 9999)),
                         ("-10", (9990, 9999)), ("9990-99999", (9990, 9999)),
                         ("-20000", (0, 9999)), ("5000-5000", (5000, 5000)),
                         ("0-18446744073709551615", (0, 9999)),
                         ("0-99999999999999999999999", (0, 9999))]:
        r = get(site, "/range.txt", {"Range": "bytes=" + spec})
        assert r.status == 206, (spec, r)
        assert content_range(r.header("Content-Range")) == (f, l, n), spec
        assert r.body == data[f:l + 1], spec
        assert r.header("Content-Length") == str(l - f + 1)
        assert ctype(r) == "text/plain;charset=utf-8"
        assert r.header("ETag") and r.header("Last-Modified")


def test_ranges_of_a_file_not_in_the_cache(site):
    data = site.tree.mid_data
    r = get(site, "/mid.bin", {"Range": "bytes=50000-50099"})
    assert ranges_of(r, MID_SIZE) == [(50000, 50099, data[50000:50100])]
    r = get(site, "/mid.bin", {"Range": "bytes=-1"})
    assert ranges_of(r, MID_SIZE) == [(MID_SIZE - 1, MID_SIZE - 1, data[-1:])]


def test_range_unit_and_syntax_errors_are_ignored(site):
    for v in ("items=0-10", "bytes 0-10", "bytes=abc", "bytes=5-1", "bytes=--1", "bytes=",
              "bytes=1-2-3", "bytes=0x10-0x20", "bytes=-", "bytes=1 -2"):
        r = get(site, "/range.txt", {"Range": v})
        assert (r.status, r.body) == (200, site.tree.range_data), v
        assert r.header("Content-Range") is None


def test_range_unit_is_case_insensitive(site):
    r = get(site, "/range.txt", {"Range": "BYTES=0-9"})
    assert r.status == 206 and r.body == site.tree.range_data[:10]


@pytest.mark.parametrize("path,size", [("/range.txt", RANGE_SIZE), ("/mid.bin", MID_SIZE),
                                       ("/empty.txt", 0)])
def test_unsatisfiable_range_is_416(site, path, size):
    for spec in (f"{size}-", f"{size + 10}-{size + 20}", "-0", f"{size}-{size}"):
        r = get(site, path, {"Range": "bytes=" + spec})
        assert r.status == 416, (path, spec, r)
        assert r.header("Content-Range") == f"bytes */{size}", (path, spec)
        assert len(r.body) < 1000


def test_several_ranges_are_multipart(site):
    data = site.tree.range_data
    r = get(site, "/range.txt", {"Range": "bytes=0-9,5000-5009,-5"})
    parts = parse_multipart(r, RANGE_SIZE)
    assert [(f, l) for f, l, _, _ in parts] == [(0, 9), (5000, 5009), (9995, 9999)]
    for f, l, d, h in parts:
        assert d == data[f:l + 1]
        assert h.get("content-type", "").replace(" ", "") == "text/plain;charset=utf-8", h
    assert r.header("Content-Range") is None


def test_multipart_ranges_are_sorted(site):
    data = site.tree.mid_data
    r = get(site, "/mid.bin", {"Range": "bytes=90000-90009, 100-199 ,-3,40000-40000"})
    parts = ranges_of(r, MID_SIZE)
    assert [(f, l) for f, l, _ in parts] == [(100, 199), (40000, 40000), (90000, 90009),
                                            (MID_SIZE - 3, MID_SIZE - 1)]
    check_ranges(parts, data, [(100, 199), (40000, 40000), (90000, 90009),
                               (MID_SIZE - 3, MID_SIZE - 1)])


@pytest.mark.parametrize("spec,requested,single", [
    ("0-99,50-149", [(0, 99), (50, 149)], True),
    ("50-149,0-99", [(0, 99), (50, 149)], True),
    ("0-9,10-19", [(0, 9), (10, 19)], True),
    ("0-9,12-19", [(0, 9), (12, 19)], False),
    ("100-200,150-160,0-50,5000-5100,5050-", [(100, 200), (150, 160), (0, 50), (5000, 5100),
                                              (5050, 9999)], False),
    ("0-9999,0-9999,0-9999,0-9999", [(0, 9999)], True),
    (",".join(["0-9999"] * 100), [(0, 9999)], True),
    (",".join(["-10000"] * 50 + ["0-"] * 50), [(0, 9999)], True),
    (",".join(f"{i}-{i + 500}" for i in range(0, 9000, 100)), [(0, 9400)], True),
], ids=["overlap", "overlap-reversed", "adjacent", "near", "mixed", "same4", "same100",
        "suffix-and-open", "staircase"])
def test_overlapping_ranges_are_merged(site, spec, requested, single):
    data = site.tree.range_data
    r = get(site, "/range.txt", {"Range": "bytes=" + spec})
    parts = ranges_of(r, RANGE_SIZE)
    check_ranges(parts, data, requested)
    assert len(r.body) <= RANGE_SIZE + 200 * len(parts), len(r.body)
    if single:
        assert len(parts) == 1, [(f, l) for f, l, _ in parts]


def test_32_separate_ranges_are_served(site):
    data = site.tree.mid_data
    req = [(i * 900, i * 900 + 9) for i in range(32)]
    r = get(site, "/mid.bin", {"Range": "bytes=" + ",".join(f"{f}-{l}" for f, l in req)})
    parts = ranges_of(r, MID_SIZE)
    assert [(f, l) for f, l, _ in parts] == req
    check_ranges(parts, data, req)


def test_more_than_32_separate_ranges_get_the_whole_file(site):
    data = site.tree.mid_data
    req = [(i * 900, i * 900 + 9) for i in range(100)]
    r = get(site, "/mid.bin", {"Range": "bytes=" + ",".join(f"{f}-{l}" for f, l in req)})
    assert (r.status, r.body) == (200, data)


def test_100_ranges_that_merge_are_served(site):
    data = site.tree.mid_data
    # 100 specs, each overlapping the next: one part after merging
    req = ",".join(f"{i * 10}-{i * 10 + 19}" for i in range(100))
    r = get(site, "/mid.bin", {"Range": "bytes=" + req})
    assert r.status == 206
    assert r.header("Content-Range") == f"bytes 0-1009/{MID_SIZE}"
    assert r.body == data[0:1010]


def test_more_than_100_ranges_are_ignored(site):
    data = site.tree.mid_data
    req = [(i * 900, i * 900 + 9) for i in range(101)]
    r = get(site, "/mid.bin", {"Range": "bytes=" + ",".join(f"{f}-{l}" for f, l in req)})
    assert (r.status, r.body) == (200, data)
    r = get(site, "/mid.bin", {"Range": "bytes=" + ",".join(["0-0"] * 101)})
    assert (r.status, len(r.body)) == (200, MID_SIZE)


def test_if_range(site):
    data = site.tree.range_data
    etag, lm = _validators(site, "/range.txt")
    r = get(site, "/range.txt", {"Range": "bytes=10-19", "If-Range": etag})
    assert (r.status, r.body) == (206, data[10:20])
    r = get(site, "/range.txt", {"Range": "bytes=10-19", "If-Range": '"stale"'})
    assert (r.status, r.body) == (200, data)
    r = get(site, "/range.txt", {"Range": "bytes=10-19", "If-Range": "W/" + etag})
    assert (r.status, r.body) == (200, data)
    r = get(site, "/range.txt", {"Range": "bytes=10-19", "If-Range": lm})
    assert (r.status, r.body) == (206, data[10:20])
    r = get(site, "/range.txt", {"Range": "bytes=10-19", "If-Range": http_date(MTIME + 60)})
    assert (r.status, r.body) == (200, data)
    r = get(site, "/range.txt", {"Range": "bytes=10-19", "If-Range": http_date(MTIME - 60)})
    assert (r.status, r.body) == (200, data)
    # If-Range without Range changes nothing
    r = get(site, "/range.txt", {"If-Range": '"stale"'})
    assert (r.status, r.body) == (200, data)


def test_head_with_range(site):
    with Conn(site.port) as c:
        c.send("HEAD /range.txt HTTP/1.1\r\nHost: localhost\r\nRange: bytes=0-9\r\n"
               "Connection: close\r\n\r\n")
        r = c.read_response(head_request=True)
        rest = c.read_until_close()
    assert r.status == 206
    assert r.header("Content-Range") == f"bytes 0-9/{RANGE_SIZE}"
    assert rest == b""


def test_ranges_with_requests_and_curl(site, tmp_path):
    data = site.tree.mid_data
    r = requests.get(site.url + "/mid.bin", headers={"Range": "bytes=1000-1999"}, timeout=T)
    assert (r.status_code, r.content) == (206, data[1000:2000])
    out = tmp_path / "part"
    p = subprocess.run(["curl", "-sS", "--max-time", str(T), "-r", "500-999", "-o", str(out),
                        "-w", "%{http_code}", site.url + "/mid.bin"],
                       capture_output=True, text=True, timeout=T + 5)
    assert p.stdout == "206", p.stderr
    assert out.read_bytes() == data[500:1000]


# ================================================================ precompressed

def _pre(site, path, ae, extra=None):
    h = {} if ae is None else {"Accept-Encoding": ae}
    h.update(extra or {})
    return get(site, path, h)


def _vary_ae(r):
    vary = [v.strip().lower() for v in ",".join(r.header_all("Vary")).split(",")]
    return "accept-encoding" in vary


@pytest.mark.parametrize("ae,enc", [
    ("gzip, br", "br"),
    ("br", "br"),
    ("br, gzip", "br"),
    ("gzip, deflate, br, zstd", "br"),
    ("gzip", "gzip"),
    ("br;q=0, gzip", "gzip"),
    ("br; q=0 , gzip", "gzip"),
    ("gzip;q=0.5, br;q=0", "gzip"),
    ("br;q=0, gzip;q=0", None),
    ("deflate", None),
    ("identity", None),
    ("", None),
    (None, None),
])
def test_precompressed_choice(site, ae, enc):
    t = site.tree
    r = _pre(site, "/pre/a.txt", ae)
    want = {"br": t.a_br, "gzip": t.a_gz, None: t.a_plain}[enc]
    assert r.status == 200
    assert r.header("Content-Encoding") == enc, (ae, r.header("Content-Encoding"))
    assert r.body == want, ae
    assert r.header("Content-Length") == str(len(want))
    assert ctype(r) == "text/plain;charset=utf-8", "the type is the original file's"
    assert _vary_ae(r), r.headers


def test_precompressed_gzip_only(site):
    t = site.tree
    r = _pre(site, "/pre/b.txt", "gzip, br")
    assert (r.header("Content-Encoding"), r.body) == ("gzip", t.b_gz)
    assert gzip.decompress(r.body) == t.b_plain
    r = _pre(site, "/pre/b.txt", "br")
    assert (r.header("Content-Encoding"), r.body) == (None, t.b_plain)
    r = _pre(site, "/pre/b.txt", "gzip;q=0")
    assert (r.header("Content-Encoding"), r.body) == (None, t.b_plain)
    r = _pre(site, "/pre/c.txt", "gzip, br")
    assert (r.header("Content-Encoding"), r.body) == (None, b"only plain C\n")
    assert _vary_ae(r)


def test_precompressed_coding_names_are_case_insensitive(site):
    r = _pre(site, "/pre/b.txt", "GZip")
    assert r.header("Content-Encoding") == "gzip"


def test_precompressed_with_requests_decodes(site):
    r = requests.get(site.url + "/pre/b.txt", headers={"Accept-Encoding": "gzip"}, timeout=T)
    assert r.headers.get("Content-Encoding") == "gzip"
    assert r.content == site.tree.b_plain


def test_precompressed_etags_differ_per_encoding(site):
    tags = {enc: _pre(site, "/pre/a.txt", ae).header("ETag")
            for enc, ae in (("br", "br"), ("gzip", "gzip"), (None, "identity"))}
    assert len(set(tags.values())) == 3, tags
    for tag in tags.values():
        assert re.fullmatch(r'"[^"\s]+"', tag), tag
    # each tag validates its own encoding
    r = _pre(site, "/pre/a.txt", "br", {"If-None-Match": tags["br"]})
    assert r.status == 304
    assert r.header("ETag") == tags["br"]
    assert _vary_ae(r), "304 must carry Vary"
    r = _pre(site, "/pre/a.txt", "gzip", {"If-None-Match": tags["br"]})
    assert (r.status, r.header("Content-Encoding")) == (200, "gzip")
    r = _pre(site, "/pre/a.txt", None, {"If-None-Match": tags["gzip"]})
    assert (r.status, r.body) == (200, site.tree.a_plain)


def test_precompressed_range_is_on_the_variant(site):
    t = site.tree
    r = _pre(site, "/pre/a.txt", "gzip", {"Range": "bytes=0-9"})
    assert r.status == 206
    assert r.header("Content-Encoding") == "gzip"
    assert r.header("Content-Range") == f"bytes 0-9/{len(t.a_gz)}"
    assert r.body == t.a_gz[:10]
    assert _vary_ae(r)
    n = len(t.a_gz)
    r = _pre(site, "/pre/a.txt", "gzip", {"Range": "bytes=-5,0-1"})
    check_ranges(ranges_of(r, n), t.a_gz, [(0, 1), (n - 5, n - 1)])   # merged or not
    assert r.header("Content-Encoding") == "gzip"
    r = _pre(site, "/pre/a.txt", "gzip", {"Range": f"bytes={len(t.a_gz)}-"})
    assert (r.status, r.header("Content-Range")) == (416, f"bytes */{len(t.a_gz)}")
    r = _pre(site, "/pre/a.txt", None, {"Range": "bytes=0-9"})
    assert r.header("Content-Range") == f"bytes 0-9/{len(t.a_plain)}"
    assert r.body == t.a_plain[:10]


def test_precompressed_head(site):
    t = site.tree
    with Conn(site.port) as c:
        c.send("HEAD /pre/a.txt HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: br\r\n"
               "Connection: close\r\n\r\n")
        r = c.read_response(head_request=True)
        rest = c.read_until_close()
    assert (r.status, r.header("Content-Encoding"), rest) == (200, "br", b"")
    assert r.header("Content-Length") == str(len(t.a_br))


@pytest.mark.parametrize("path,headers,status", [
    ("/pre/a.txt", {"Range": "bytes=999999-"}, 416),
    ("/pre/a.txt", {"If-Match": '"nope"'}, 412),
    ("/pre/missing.txt", {}, 404),
    ("/pre/.env", {}, 403),
])
def test_vary_on_every_precompressed_response(site, path, headers, status):
    """doc: "every response for the route carries Vary: Accept-Encoding"."""
    r = get(site, path, dict(headers, **{"Accept-Encoding": "gzip"}))
    assert r.status == status
    assert _vary_ae(r), f"{status} on a precompressed route without Vary: {r.headers}"


def test_no_vary_without_precompressed(site):
    r = get(site, "/hello.txt", {"Accept-Encoding": "gzip, br"})
    assert r.header("Vary") is None
    assert r.header("Content-Encoding") is None


# ================================================================ big files and memory

def _download_sha(url, timeout=BIG_T):
    h = hashlib.sha256()
    n = 0
    with requests.get(url, stream=True, timeout=timeout) as r:
        assert r.status_code == 200
        assert r.headers.get("Content-Length") == str(BIG_SIZE)
        for chunk in r.iter_content(1 << 16):
            h.update(chunk)
            n += len(chunk)
    return n, h.hexdigest()


def test_big_file_intact_and_rss_flat(site):
    pid = site.worker_pids()[0]
    get(site, "/hello.txt")
    before = rss_kb(pid)
    n, sha = _download_sha(site.url + "/big.bin")
    after = rss_kb(pid)
    assert (n, sha) == (BIG_SIZE, site.tree.big_sha)
    assert after - before < 16 * 1024, f"worker RSS grew {before} -> {after} kB for a 50 MB file"
    assert_same_workers(site)


def test_big_file_with_curl(site, tmp_path):
    out = tmp_path / "big.out"
    p = subprocess.run(["curl", "-sS", "--max-time", str(BIG_T), "-o", str(out),
                        "-w", "%{http_code}", site.url + "/big.bin"],
                       capture_output=True, text=True, timeout=BIG_T + 5)
    assert p.stdout == "200", p.stderr
    h = hashlib.sha256()
    with open(out, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    assert h.hexdigest() == site.tree.big_sha


def test_slow_reader_costs_only_the_socket_buffer(site):
    pid = site.worker_pids()[0]
    get(site, "/hello.txt")
    before = rss_kb(pid)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10 * SLOW)
        s.connect(("127.0.0.1", site.port))
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(4096)
            assert chunk, "closed before the head"
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        h = hashlib.sha256(body)
        got = len(body)
        peak = before
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            chunk = s.recv(4096)
            assert chunk, "closed early"
            h.update(chunk)
            got += len(chunk)
            time.sleep(0.01)
            peak = max(peak, rss_kb(pid))
        assert got < BIG_SIZE // 2, "not slow enough to mean anything"
        # the worker serves others meanwhile
        r = get(site, "/hello.txt")
        assert (r.status, r.body) == (200, b"hello world\n")
        peak = max(peak, rss_kb(pid))
        # the rest, fast
        s.settimeout(BIG_T)
        while True:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            h.update(chunk)
            got += len(chunk)
    finally:
        s.close()
    assert (got, h.hexdigest()) == (BIG_SIZE, site.tree.big_sha)
    assert peak - before < 16 * 1024, \
        f"worker RSS grew {before} -> {peak} kB while a slow client read a 50 MB file"
    assert_same_workers(site)


def test_concurrent_downloads_of_one_file(site):
    pid = site.worker_pids()[0]
    before = rss_kb(pid)
    with ThreadPoolExecutor(8) as ex:
        results = list(ex.map(lambda _: _download_sha(site.url + "/big.bin"), range(8)))
    after = rss_kb(pid)
    assert results == [(BIG_SIZE, site.tree.big_sha)] * 8
    assert after - before < 32 * 1024, f"worker RSS grew {before} -> {after} kB"
    assert_same_workers(site)


def test_client_leaving_mid_download(site):
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", site.port), timeout=T)
        try:
            s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
            got = 0
            while got < 1 << 20:
                chunk = s.recv(65536)
                assert chunk
                got += len(chunk)
        finally:
            s.close()
    r = get(site, "/hello.txt")
    assert (r.status, r.body) == (200, b"hello world\n")
    assert_same_workers(site)


def test_ranges_of_the_big_file(site):
    data = site.tree.big_data
    r = get(site, "/big.bin", {"Range": "bytes=30000000-30000099"})
    assert ranges_of(r, BIG_SIZE) == [(30000000, 30000099, data[30000000:30000100])]
    r = get(site, "/big.bin", {"Range": f"bytes=0-99,{BIG_SIZE - 100}-"})
    parts = ranges_of(r, BIG_SIZE)
    assert [(f, l) for f, l, _ in parts] == [(0, 99), (BIG_SIZE - 100, BIG_SIZE - 1)]
    check_ranges(parts, data, [(0, 99), (BIG_SIZE - 100, BIG_SIZE - 1)])
    r = get(site, "/big.bin", {"Range": f"bytes={BIG_SIZE - 1000000}-"})
    assert ranges_of(r, BIG_SIZE)[0][2] == data[-1000000:]


# ================================================================ files that change

def test_last_modified_is_the_file_mtime(site):
    t = site.tree
    p = t.base / "mut0" / "lm.txt"
    _write(p, "lm\n", mtime=1_500_000_123)
    r = get(site, "/nocache/lm.txt")
    assert r.header("Last-Modified") == http_date(1_500_000_123)
    assert r.header("Last-Modified") == http_date(int(os.stat(p).st_mtime))


def test_open_file_cache_off_sees_every_change(site):
    p = site.tree.base / "mut0" / "f.txt"
    _write(p, "version one\n", mtime=None)
    r1 = get(site, "/nocache/f.txt")
    assert r1.body == b"version one\n"
    _write(p, "version two, longer\n", mtime=None)
    r2 = get(site, "/nocache/f.txt")
    assert r2.body == b"version two, longer\n"
    assert r2.header("ETag") != r1.header("ETag")
    # same size, only the mtime differs
    st = os.stat(p)
    _write(p, "version three, same\n", mtime=None)
    assert os.stat(p).st_size == st.st_size
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    r3 = get(site, "/nocache/f.txt")
    assert r3.body == b"version three, same\n"
    assert r3.header("ETag") not in (r1.header("ETag"), r2.header("ETag"))
    # the old ETag no longer gives 304; the new one does
    assert get(site, "/nocache/f.txt", {"If-None-Match": r2.header("ETag")}).status == 200
    assert get(site, "/nocache/f.txt", {"If-None-Match": r3.header("ETag")}).status == 304
    # replaced by a rename (how deploys do it)
    tmp = p.with_name("f.txt.new")
    _write(tmp, "version four\n", mtime=None)
    os.replace(tmp, p)
    assert get(site, "/nocache/f.txt").body == b"version four\n"
    # deleted
    p.unlink()
    assert get(site, "/nocache/f.txt").status == 404


def _eventually(site, path, pred, what):
    """Wait past `valid` (1 s) and poll with a generous deadline."""
    time.sleep(1.5)
    last = []

    def check():
        r = get(site, path)
        last[:] = [r]
        return pred(r)
    try:
        wait_for(check, 5 * SLOW, what, interval=0.2)
    except AssertionError:
        raise AssertionError(f"{what}: still {last[0]!r} {last[0].body[:60]!r}")
    return last[0]


def test_cached_file_is_reread_after_valid(site):
    p = site.tree.base / "mut1" / "c.txt"
    _write(p, "cached one\n", mtime=None)
    r1 = get(site, "/cache1s/c.txt")
    assert r1.body == b"cached one\n"
    get(site, "/cache1s/c.txt")
    _write(p, "cached two, longer\n", mtime=None)
    r2 = _eventually(site, "/cache1s/c.txt", lambda r: r.body == b"cached two, longer\n",
                     "the new content")
    assert r2.header("ETag") != r1.header("ETag")
    assert r2.header("Content-Length") == str(len(b"cached two, longer\n"))


def test_cached_file_replaced_by_rename_is_seen(site):
    p = site.tree.base / "mut1" / "r.txt"
    _write(p, "renamed one\n", mtime=None)
    r1 = get(site, "/cache1s/r.txt")
    assert r1.body == b"renamed one\n"
    tmp = p.with_name("r.txt.new")
    _write(tmp, "renamed two\n", mtime=None)
    os.replace(tmp, p)
    r2 = _eventually(site, "/cache1s/r.txt", lambda r: r.body == b"renamed two\n",
                     "the content of the file renamed over the cached one")
    assert r2.header("ETag") != r1.header("ETag")


def test_cached_file_deleted_is_404_after_valid(site):
    p = site.tree.base / "mut1" / "d.txt"
    _write(p, "to be deleted\n", mtime=None)
    assert get(site, "/cache1s/d.txt").status == 200
    p.unlink()
    _eventually(site, "/cache1s/d.txt", lambda r: r.status == 404, "404 for a deleted file")


def test_big_cached_file_changed_is_seen_whole(site):
    """A file over 16 KiB (its descriptor cached, not its bytes) rewritten with
    a different size: the response must match its Content-Length."""
    p = site.tree.base / "mut1" / "grow.bin"
    one = pattern(40_000, 1)
    _write(p, one, mtime=None)
    assert get(site, "/cache1s/grow.bin").body == one
    two = pattern(60_000, 2)
    _write(p, two, mtime=None)
    r = _eventually(site, "/cache1s/grow.bin", lambda r: r.body == two, "the grown file")
    assert r.header("Content-Length") == str(len(two))


def test_cached_big_file_shrinking_under_the_worker(site):
    """A file over 16 KiB whose descriptor is cached shrinks: within `valid`
    the worker may still believe the old size, but it must then end the
    response (close), never hang, and keep serving."""
    p = site.tree.base / "mut1" / "shrink.bin"
    data = pattern(200_000, 5)
    _write(p, data, mtime=None)
    assert get(site, "/cache1s/shrink.bin").body == data
    with open(p, "r+b") as f:
        f.truncate(1000)
    try:
        r = get(site, "/cache1s/shrink.bin")
        assert r.body in (data[:1000], data) or len(r.body) == int(r.header("Content-Length"))
    except Closed:
        pass                    # a short response, cut off: what HTTP/1.1 allows
    r = get(site, "/hello.txt")
    assert (r.status, r.body) == (200, b"hello world\n")
    _eventually(site, "/cache1s/shrink.bin", lambda r: r.body == data[:1000], "the shrunk file")
    assert_same_workers(site)


def test_the_worker_survived_everything(site):
    assert_same_workers(site)
    r = get(site, "/hello.txt")
    assert (r.status, r.body) == (200, b"hello world\n")


# ================================================================ permissions

@pytest.fixture(scope="module")
def perm_site():
    """A tree the worker may only partly read. Root reads everything, so
    when the tests run as root the daemon drops to `user: nobody`; the tree
    then lives in a directory nobody may enter (pytest's tmp dirs are 0700)."""
    euid = os.geteuid()
    cfg_user = None
    if euid == 0:
        try:
            pwd.getpwnam("nobody")
        except KeyError:
            pytest.skip("running as root and there is no user 'nobody' to drop to")
        cfg_user = "nobody"
    base = Path(tempfile.mkdtemp(prefix="tutti-static-perm-"))
    d = None
    try:
        os.chmod(base, 0o755)
        www = base / "www"
        _write(www / "ok.txt", "readable\n")
        _write(www / "locked.txt", "LOCKED CONTENT\n")
        os.chmod(www / "locked.txt", 0o000)
        _write(www / "closed" / "inner.txt", "CLOSED CONTENT\n")
        os.chmod(www / "closed", 0o700 if euid == 0 else 0o000)
        _write(www / "noindex" / "index.html", "NOINDEX CONTENT\n")
        os.chmod(www / "noindex" / "index.html", 0o000)
        _write(www / "index.html", "spa\n")
        for p in (base, www):
            os.chmod(p, 0o755)
        ddir = base / "daemon"
        ddir.mkdir()
        os.chmod(ddir, 0o777)
        cfg = {"modules": ["static"], "servers": [{"routes": [
            {"match": "/spa/", "static": {"alias": str(www), "fallback": "/index.html"}},
            {"match": "/", "static": {"root": str(www)}},
        ]}]}
        if cfg_user:
            cfg["user"] = cfg_user
        d = harness.Daemon(ddir, cfg)
        d.start()
        yield d
    finally:
        if d is not None:
            d.stop()
        report = d.sanitizer_report() if d is not None else ""
        for p in (base / "www" / "closed",):
            if p.exists():
                os.chmod(p, 0o755)
        shutil.rmtree(base, ignore_errors=True)
        if report:
            pytest.fail(f"sanitizer report from tutti:\n{report}", pytrace=False)


def test_worker_runs_as_the_configured_user(perm_site):
    if os.geteuid() != 0:
        pytest.skip("not root: no user to drop to")
    pid = perm_site.worker_pids()[0]
    with open(f"/proc/{pid}/status") as f:
        uid = [l for l in f if l.startswith("Uid:")][0].split()[1:]
    assert set(uid) == {str(pwd.getpwnam("nobody").pw_uid)}, uid


def test_unreadable_file_is_403(perm_site):
    r = get(perm_site, "/ok.txt")
    assert (r.status, r.body) == (200, b"readable\n")
    for path, secret in (("/locked.txt", b"LOCKED"), ("/closed/inner.txt", b"CLOSED"),
                         ("/noindex/", b"NOINDEX"), ("/spa/locked.txt", b"LOCKED")):
        r = get(perm_site, path)
        assert r.status == 403, (path, r)
        assert secret not in r.body
    # fallback still covers what is missing
    r = get(perm_site, "/spa/missing")
    assert (r.status, r.body) == (200, b"spa\n")
    assert get(perm_site, "/ok.txt").status == 200


# ================================================================ config errors

def _check(tmp_path, static_lines, extra_files=()):
    """`tutti -t` on a config whose static block (at line 7) is static_lines."""
    (tmp_path / "public").mkdir(exist_ok=True)
    for name in extra_files:
        (tmp_path / name).write_text("x")
    text = ("modules: [static]\n"                               # 1
            "servers:\n"                                        # 2
            f"  - listen: [\"127.0.0.1:{free_port()}\"]\n"      # 3
            "    routes:\n"                                     # 4
            "      - match: /\n"                                # 5
            "        static:\n"                                 # 6
            + "".join(f"          {l}\n" for l in static_lines))   # 7...
    (tmp_path / "tutti.yaml").write_text(text)
    return run_tutti(["-t", "-c", "tutti.yaml"], tmp_path)


def test_config_ok(tmp_path):
    res = _check(tmp_path, ["root: ./public", "index: [index.html, index.htm]",
                            "autoindex: true", "expires: 30d", "precompressed: true",
                            "fallback: /index.html", "follow_symlinks: false",
                            "dotfiles: allow", "types: {wasm: application/wasm}",
                            "default_type: text/plain",
                            "open_file_cache: {max: 10, valid: 2s}"])
    assert res.returncode == 0, res.stderr + res.stdout
    assert "configuration OK" in res.stdout + res.stderr
    res = _check(tmp_path, ["alias: ./public", "open_file_cache: off", "expires: off",
                            "index: []"])
    assert res.returncode == 0, res.stderr + res.stdout


def test_config_root_and_alias_both(tmp_path):
    line = _error_line(_check(tmp_path, ["root: ./public", "alias: ./public"]), {6, 7, 8})
    assert "root" in line and "alias" in line, line


def test_config_neither_root_nor_alias(tmp_path):
    line = _error_line(_check(tmp_path, ["autoindex: true"]), {6, 7})
    assert "root" in line and "alias" in line, line


def test_config_root_that_does_not_exist(tmp_path):
    line = _error_line(_check(tmp_path, ["root: ./nowhere"]), {7})
    assert "nowhere" in line, line


def test_config_root_that_is_a_file(tmp_path):
    line = _error_line(_check(tmp_path, ["alias: ./afile"], ["afile"]), {7})
    assert "afile" in line, line


def test_config_unknown_key_suggests(tmp_path):
    line = _error_line(_check(tmp_path, ["root: ./public", "autoindx: true"]), {8})
    assert "'autoindx'" in line and "did you mean 'autoindex'" in line, line
    line = _error_line(_check(tmp_path, ["root: ./public", "follow_symlink: true"]), {8})
    assert "did you mean 'follow_symlinks'" in line, line


def test_config_bad_expires(tmp_path):
    for bad in ("soon", "10 parsecs", "-1h"):
        line = _error_line(_check(tmp_path, ["root: ./public", f"expires: {bad}"]), {8})
        assert "expires" in line, line


@pytest.mark.parametrize("lines,word", [
    (["root: ./public", "dotfiles: maybe"], "dotfiles"),
    (["root: ./public", "autoindex: perhaps"], "autoindex"),
    (["root: ./public", "precompressed: [gzip]"], "precompressed"),
    (["root: ./public", "open_file_cache: {max: 10, vaild: 1s}"], "valid"),
    (["root: ./public", "open_file_cache: sometimes"], "open_file_cache"),
    (["root: ./public", "types: [wasm]"], "types"),
], ids=["dotfiles", "autoindex", "precompressed", "ofc-key", "ofc-value", "types"])
def test_config_bad_values(tmp_path, lines, word):
    line = _error_line(_check(tmp_path, lines), {8})
    assert word in line, line


def test_config_error_means_no_start(tmp_path):
    (tmp_path / "public").mkdir()
    port = free_port()
    (tmp_path / "tutti.yaml").write_text(
        "modules: [static]\nservers:\n"
        f"  - listen: [\"127.0.0.1:{port}\"]\n    routes:\n      - match: /\n"
        "        static: {root: ./public, alias: ./public}\n")
    res = run_tutti(["-c", "tutti.yaml"], tmp_path)
    assert res.returncode == 1, res.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


# ---------------------------------------------------------------- the demo

def test_demo_config_serves_the_demo_site(tutti, tmp_path):
    """etc/tutti.yaml, the config `./dev.sh run` serves, on a free port."""
    src = Path(harness.SRC_DIR) / "etc"
    shutil.copytree(src / "site", tmp_path / "demo" / "site")
    shutil.copytree(src / "apps", tmp_path / "demo" / "apps")
    text = (src / "tutti.yaml").read_text()
    assert "127.0.0.1:8080" in text
    text = text.replace("127.0.0.1:8080", "127.0.0.1:@PORT@")
    text = re.sub(r"(?m)^pid_file:.*$", "pid_file: @DIR@/tutti.pid", text)
    d = tutti(text, subdir="demo")
    page = requests.get(d.url + "/", timeout=5)
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.content == (src / "site" / "index.html").read_bytes()
    assert page.headers["Cache-Control"] == "max-age=3600"
    for name, ctype in (("style.css", "text/css; charset=utf-8"), ("logo.png", "image/png")):
        r = requests.get(f"{d.url}/{name}", timeout=5)
        assert (r.status_code, r.headers["Content-Type"]) == (200, ctype)
        assert r.content == (src / "site" / name).read_bytes()
    assert requests.get(d.url + "/healthz", timeout=5).text == "ok\n"
    assert requests.get(d.url + "/hello/ada", timeout=5).text == "Hello, ada!\n"
    assert requests.get(d.url + "/no-such-page", timeout=5).status_code == 404
    # the demo WSGI app (etc/apps/demo_wsgi.py), mounted at /wsgi
    r = requests.get(d.url + "/wsgi", timeout=5, allow_redirects=False)
    assert (r.status_code, r.headers.get("Location", "").endswith("/wsgi/")) == (301, True), r
    r = requests.get(d.url + "/wsgi/", timeout=5)
    assert r.status_code == 200 and "text/html" in r.headers["Content-Type"]
    r = requests.post(d.url + "/wsgi/form", data={"name": "ada <3"}, timeout=5)
    assert r.status_code == 200 and "ada &lt;3" in r.text
    r = requests.get(d.url + "/wsgi/stream", timeout=10)
    assert r.status_code == 200 and r.headers.get("Transfer-Encoding") == "chunked"
    # the demo ASGI app (etc/apps/demo_asgi.py), mounted at /asgi, with its
    # lifespan startup, its WebSocket echo and its server-sent events
    r = requests.get(d.url + "/asgi/", timeout=5)
    assert r.status_code == 200 and "text/html" in r.headers["Content-Type"], r
    assert "WebSocket" in r.text and "Started at ?" not in r.text
    scope = requests.get(d.url + "/asgi/scope?x=1", timeout=5).json()
    assert (scope["root_path"], scope["path"], scope["query_string"]) == ("/asgi", "/scope", "x=1")
    with requests.get(d.url + "/asgi/clock", timeout=10, stream=True) as r:
        assert r.headers["Content-Type"] == "text/event-stream"
        first = next(r.iter_lines())
        assert first.startswith(b"data: "), first

    async def echo():
        uri = d.url.replace("http://", "ws://") + "/asgi/ws"
        async with websockets.connect(uri) as ws:
            await ws.send("hello, tutti")
            return await asyncio.wait_for(ws.recv(), 5)
    assert asyncio.run(echo()) == "hello, tutti"
    # the demo proxy route: /proxy/X is /X fetched from the same server,
    # with the response header the route adds, and the upstream logged
    r = requests.get(d.url + "/proxy/hello/ada", timeout=5)
    assert (r.status_code, r.text, r.headers.get("X-Proxied-By")) == (200, "Hello, ada!\n", "tutti")
    r = requests.get(d.url + "/proxy/asgi/scope?y=2", timeout=5)
    assert r.json()["query_string"] == "y=2"
    seen = dict(r.json()["headers"])
    assert (seen["x-forwarded-for"], seen["x-real-ip"]) == ("127.0.0.1", "127.0.0.1"), seen

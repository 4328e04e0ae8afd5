"""A small HTTP/1.x client on a raw socket, for what real clients refuse to
send (smuggling attempts, bare CR, obs-fold, pipelining) and for reading
exactly what the server wrote. Every read has a timeout."""
import socket
import time

from harness import SLOW


class Response:
    def __init__(self, version, status, reason, headers, body, raw_head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers          # [(name, value)] in order
        self.body = body
        self.raw_head = raw_head

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def connection_tokens(self):
        v = self.header("Connection") or ""
        return {t.strip().lower() for t in v.split(",") if t.strip()}

    def __repr__(self):
        return f"<Response {self.status} {self.reason!r} {len(self.body)} bytes>"


class Closed(Exception):
    """The server closed the connection before a whole response arrived."""

    def __init__(self, msg, partial):
        super().__init__(msg)
        self.partial = partial


class Conn:
    def __init__(self, port, timeout=5.0, host="127.0.0.1"):
        self.timeout = timeout * SLOW
        self.sock = socket.create_connection((host, port), timeout=self.timeout)
        self.sock.settimeout(self.timeout)
        self.buf = bytearray()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise Closed("connection closed by the server", bytes(self.buf))
        self.buf += chunk

    def _read_line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        i = self.buf.index(b"\r\n")
        line = bytes(self.buf[:i])
        del self.buf[:i + 2]
        return line

    def _read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_response(self, head_request=False, interim=False):
        """One response. 1xx responses are returned (interim=True) or skipped."""
        while True:
            while b"\r\n\r\n" not in self.buf:
                self._fill()
            i = self.buf.index(b"\r\n\r\n")
            raw_head = bytes(self.buf[:i])
            del self.buf[:i + 4]
            lines = raw_head.decode("latin-1").split("\r\n")
            version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
            headers = []
            for l in lines[1:]:
                k, _, v = l.partition(":")
                headers.append((k, v.strip()))
            status = int(status)
            if 100 <= status < 200:
                resp = Response(version, status, reason, headers, b"", raw_head)
                if interim:
                    return resp
                continue
            break
        resp = Response(version, status, reason, headers, b"", raw_head)
        if head_request or status in (204, 304):
            return resp
        te = (resp.header("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            resp.body = self._read_chunked()
        elif resp.header("Content-Length") is not None:
            resp.body = self._read_exact(int(resp.header("Content-Length")))
        else:
            resp.body = self.read_until_close()
        return resp

    def _read_chunked(self):
        body = []
        while True:
            size = int(self._read_line().split(b";")[0], 16)
            if size == 0:
                while self._read_line():        # trailers, up to the empty line
                    pass
                return b"".join(body)
            body.append(self._read_exact(size))
            if self._read_exact(2) != b"\r\n":
                raise AssertionError("chunk not followed by CRLF")

    def read_until_close(self, timeout=None):
        """Everything until EOF; fails if the server keeps it open past timeout."""
        deadline = time.monotonic() + (timeout * SLOW if timeout else self.timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("server did not close the connection in time")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            except socket.timeout:
                raise AssertionError("server did not close the connection in time")
            finally:
                self.sock.settimeout(self.timeout)
            if not chunk:
                data = bytes(self.buf)
                self.buf = bytearray()
                return data
            self.buf += chunk

    def closed_within(self, timeout):
        """True when the server closes within timeout (extra bytes are kept)."""
        try:
            self.read_until_close(timeout)
            return True
        except AssertionError:
            return False

    def open_after(self, wait):
        """True when, after wait seconds, the server has neither closed nor
        sent anything more."""
        self.sock.settimeout(wait)
        try:
            chunk = self.sock.recv(1)
        except socket.timeout:
            return True
        except OSError:
            return False
        finally:
            self.sock.settimeout(self.timeout)
        if chunk:
            self.buf += chunk
        return False


def exchange(port, raw, head_request=False, timeout=5.0):
    """Send raw on a new connection and read one response; returns (resp, conn)."""
    c = Conn(port, timeout)
    c.send(raw)
    return c.read_response(head_request=head_request), c


def get(port, path, host="localhost", headers=(), method="GET", version="HTTP/1.1"):
    """One request on a new connection, closed afterwards."""
    lines = [f"{method} {path} {version}", f"Host: {host}", *headers, "Connection: close"]
    resp, c = exchange(port, "\r\n".join(lines) + "\r\n\r\n",
                       head_request=(method == "HEAD"))
    c.close()
    return resp


def chunked(data, sizes):
    """data framed as chunks of the given sizes (cycled), plus the last chunk."""
    out, i, k = [], 0, 0
    while i < len(data):
        n = sizes[k % len(sizes)]
        k += 1
        piece = data[i:i + n]
        i += n
        out.append(b"%x\r\n" % len(piece) + piece + b"\r\n")
    out.append(b"0\r\n\r\n")
    return b"".join(out)

"""An upstream for the proxy tests: tells what it received, and misbehaves on
request.

    /usr/bin/python3 backend.py NAME PORT|unix:/path|[::1]:PORT [IDLE_SECONDS]

With IDLE_SECONDS, a kept-alive connection idle that long is closed. Every
answer carries X-Backend: NAME, and a Date fixed in 2000 (so a client can tell
it from the proxy's own). Paths:
  /echo...        JSON: name, method, path (with query), headers (pairs in
                  order), body length and sha256, conns (connections accepted)
  /status/N       answers N
  /slow?ms=N      waits N ms before the head
  /big?mb=N       N MiB of a repeating pattern, with Content-Length
  /bigchunked?mb=N the same, chunked
  /sse?n=N&ms=M   N events, M ms apart, chunked
  /hop            response headers that must not pass a proxy
  /headers?h=N:V  response headers as given (h repeats)
  /failif?name=X&status=N  answers N when this backend is X, else /echo
  /early          a 103 and a 100 before the final answer (the /echo JSON)
  /close          a close-delimited body (no length, Connection: close)
  /stall          a head, half the body, then nothing
  /cut            a head, half the body, then a close
  /cutchunked     a chunked head, one chunk, then a close
  /malformed      garbage for a head
  /halfhead       part of a head, then a close
  /empty          a close, nothing sent
  /noread?ms=N    reads the head, not the body, sleeps N ms, then closes
  /ws             a WebSocket echo (RFC 6455, enough for the tests)
  /conns          the number of connections accepted so far
"""
import base64
import hashlib
import json
import os
import socket
import socketserver
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit

NAME = sys.argv[1]
WHERE = sys.argv[2]
IDLE = float(sys.argv[3]) if len(sys.argv) > 3 else None
FIXED_DATE = "Sat, 01 Jan 2000 00:00:00 GMT"
CONNS = 0
LOCK = threading.Lock()
PATTERN = bytes(range(256)) * 256                  # 64 KiB


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "backend"
    timeout = IDLE            # StreamRequestHandler: a socket timeout, then a close
    # a head and a body go in two writes: no 40 ms wait for an ACK (TCP only)
    disable_nagle_algorithm = not WHERE.startswith("unix:")

    def date_time_string(self, timestamp=None):
        return FIXED_DATE

    def setup(self):
        global CONNS
        with LOCK:
            CONNS += 1
        super().setup()

    def log_message(self, *a):
        pass

    def address_string(self):
        return "unix"

    def read_body(self):
        h = hashlib.sha256()
        n = 0
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                left = size
                while left:
                    d = self.rfile.read(min(left, 1 << 16))
                    h.update(d)
                    n += len(d)
                    left -= len(d)
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left:
                d = self.rfile.read(min(left, 1 << 16))
                if not d:
                    break
                h.update(d)
                n += len(d)
                left -= len(d)
        return n, h.hexdigest()

    def send(self, status, body, ctype="application/json", extra=()):
        self.send_response(status)
        self.send_header("X-Backend", NAME)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        u = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        if u.path == "/ws":
            return self.websocket()
        if u.path == "/noread":
            time.sleep(int(q.get("ms", "30000")) / 1000)
            self.close_connection = True
            return
        n, sha = self.read_body()
        if u.path == "/failif":
            if q.get("name") == NAME:
                code = int(q.get("status", "503"))
                return self.send(code, json.dumps({"name": NAME, "status": code}).encode())
            u = urlsplit("/echo")
        if u.path.startswith("/status/"):
            code = int(u.path.split("/")[2])
            return self.send(code, b"" if code in (204, 304) else
                             json.dumps({"name": NAME, "status": code}).encode())
        if u.path == "/slow":
            time.sleep(int(q.get("ms", "1000")) / 1000)
        if u.path in ("/big", "/bigchunked"):
            size = int(float(q.get("mb", "1")) * (1 << 20))
            self.send_response(200)
            self.send_header("X-Backend", NAME)
            if u.path == "/big":
                self.send_header("Content-Length", str(size))
            else:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            left = size
            while left:
                piece = PATTERN[:min(left, len(PATTERN))]
                if u.path == "/big":
                    self.wfile.write(piece)
                else:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                left -= len(piece)
            if u.path == "/bigchunked":
                self.wfile.write(b"0\r\n\r\n")
            return
        if u.path == "/sse":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(int(q.get("n", "3"))):
                ev = f"data: {i} {time.monotonic():.6f}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(ev), ev))
                self.wfile.flush()
                time.sleep(int(q.get("ms", "300")) / 1000)
            self.wfile.write(b"0\r\n\r\n")
            return
        if u.path == "/hop":
            return self.send(200, b"hop", "text/plain", extra=(
                ("Connection", "X-Secret-Hop"), ("X-Secret-Hop", "1"), ("Keep-Alive", "timeout=5"),
                ("X-Powered-By", "backend"), ("X-Kept", "yes"), ("X-Frame-Options", "SAMEORIGIN"),
                ("Set-Cookie", "a=1"),
                ("Set-Cookie", "b=2")))
        if u.path == "/headers":
            return self.send(200, b"headers", "text/plain", extra=[
                tuple(x.strip() for x in h.split(":", 1)) for h in parse_qs(u.query).get("h", [])])
        if u.path == "/early":
            self.wfile.write(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
                             b"HTTP/1.1 100 Continue\r\n\r\n")
            self.wfile.flush()
        if u.path == "/cutchunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"1f4\r\n" + b"y" * 500 + b"\r\n")
            self.wfile.flush()
            self.close_connection = True
            return
        if u.path in ("/halfhead", "/empty"):
            if u.path == "/halfhead":
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Le")
                self.wfile.flush()
            self.close_connection = True
            return
        if u.path == "/close":
            self.send_response(200)
            self.send_header("X-Backend", NAME)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until the close " * 1000)
            self.close_connection = True
            return
        if u.path in ("/stall", "/cut"):
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 500)
            self.wfile.flush()
            if u.path == "/stall":
                time.sleep(30)
            self.close_connection = True
            return
        if u.path == "/malformed":
            self.wfile.write(b"HTTP/1.1 abc\r\n\r\n")
            self.close_connection = True
            return
        if u.path == "/conns":
            return self.send(200, json.dumps({"conns": CONNS}).encode())
        self.send(200, json.dumps({
            "name": NAME, "method": self.command, "path": self.path,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body_len": n, "body_sha": sha, "conns": CONNS}).encode())

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = handle_any

    def websocket(self):
        self.close_connection = True
        key = self.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1(
            key.encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.send_header("X-Backend", NAME)
        self.end_headers()
        self.wfile.flush()
        rf, wf = self.rfile, self.wfile
        while True:
            hdr = rf.read(2)
            if len(hdr) < 2:
                return
            op, ln = hdr[0] & 0x0F, hdr[1] & 0x7F
            if ln == 126:
                ln = struct.unpack("!H", rf.read(2))[0]
            elif ln == 127:
                ln = struct.unpack("!Q", rf.read(8))[0]
            mask = rf.read(4) if hdr[1] & 0x80 else b"\0\0\0\0"
            data = bytearray(rf.read(ln))
            for i in range(len(data)):
                data[i] ^= mask[i % 4]
            if op == 8:
                wf.write(b"\x88" + bytes([len(data)]) + bytes(data))
                wf.flush()
                return
            if op in (1, 2):
                if ln < 126:
                    head = bytes([0x80 | op, ln])
                elif ln < 65536:
                    head = bytes([0x80 | op, 126]) + struct.pack("!H", ln)
                else:
                    head = bytes([0x80 | op, 127]) + struct.pack("!Q", ln)
                wf.write(head + bytes(data))
                wf.flush()


class TCPServer(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        sock, _ = self.socket.accept()
        return sock, ("unix", 0)


def main():
    if WHERE.startswith("unix:"):
        path = WHERE[5:]
        if os.path.exists(path):
            os.unlink(path)
        srv = UnixServer(path, Handler)
    elif WHERE.startswith("["):
        class V6(TCPServer):
            address_family = socket.AF_INET6
        srv = V6(("::1", int(WHERE.rsplit(":", 1)[1])), Handler)
    else:
        srv = TCPServer(("127.0.0.1", int(WHERE)), Handler)
    print("ready", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()

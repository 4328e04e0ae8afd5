"""HTTPS listeners through the real daemon: certificates made here (a CA and
its leaves, with python3-cryptography), clients from curl, Python's ssl and
http.client, requests, websockets, openssl s_client and testssl.sh."""
import asyncio
import datetime
import ipaddress
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
import websockets
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import harness
from harness import SLOW, config_error_line, run_tutti, wait_for

T = 10 * SLOW


# ---------------------------------------------------------------- certificates

class PKI:
    """A CA and leaf certificates signed by it, as PEM files in a directory."""

    def __init__(self, d):
        self.dir = Path(d)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tutti test CA")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.ca_cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                        .public_key(self.ca_key.public_key())
                        .serial_number(x509.random_serial_number())
                        .not_valid_before(now - datetime.timedelta(days=1))
                        .not_valid_after(now + datetime.timedelta(days=30))
                        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                        .sign(self.ca_key, hashes.SHA256()))
        self.ca = self.dir / "ca.pem"
        self.ca.write_bytes(self.ca_cert.public_bytes(serialization.Encoding.PEM))

    def leaf(self, stem, names, *, expired=False, password=None, serial=None):
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=30)
        if expired:
            start, end = now - datetime.timedelta(days=60), now - datetime.timedelta(days=1)
        alt = []
        for n in names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                alt.append(x509.DNSName(n))
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
                .issuer_name(self.ca_cert.subject).public_key(key.public_key())
                .serial_number(serial or x509.random_serial_number())
                .not_valid_before(start).not_valid_after(end)
                .add_extension(x509.SubjectAlternativeName(alt), False)
                .sign(self.ca_key, hashes.SHA256()))
        crt, kf = self.dir / f"{stem}.pem", self.dir / f"{stem}.key"
        # the chain file: the leaf, then the CA (as an intermediate would go)
        crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM) +
                        self.ca_cert.public_bytes(serialization.Encoding.PEM))
        enc = (serialization.BestAvailableEncryption(password.encode()) if password
               else serialization.NoEncryption())
        kf.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8, enc))
        return crt, kf, cert.serial_number


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = PKI(tmp_path_factory.mktemp("pki"))
    p.a = p.leaf("a", ["a.test", "localhost", "127.0.0.1"])
    p.b = p.leaf("b", ["b.test"])
    return p


def client_ctx(pki, **kw):
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def tls_conn(port, ctx, name="localhost"):
    s = socket.create_connection(("127.0.0.1", port), timeout=T)
    return ctx.wrap_socket(s, server_hostname=name)


def get(port, path, ctx, name="localhost", session=None):
    """One HTTPS request on a fresh connection: (status, headers, body, ssl socket info)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=T)
    t = ctx.wrap_socket(s, server_hostname=name, session=session)
    t.sendall(f"GET {path} HTTP/1.1\r\nHost: {name}:{port}\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while True:
        d = t.recv(65536)
        if not d:
            break
        data += d
    info = {"reused": t.session_reused, "session": t.session, "version": t.version(),
            "alpn": t.selected_alpn_protocol(), "cert": t.getpeercert()}
    t.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(l.split(": ", 1) for l in lines[1:])
    return int(lines[0].split()[1]), headers, body, info


def serial(got):
    # (getpeercert writes it in hex, with a leading 0 when the first byte is small)
    return int(got[3]["cert"]["serialNumber"], 16)


def cn_of(info):
    return dict(x[0] for x in info["cert"]["subject"])["commonName"]


def tls_server(pki, routes, *, cert=None, names=None, **tls):
    crt, key, _ = cert or pki.a
    server = {"tls": {"cert": str(crt), "key": str(key), **tls}, "routes": routes}
    if names:
        server["names"] = names
    return server


def hello_routes(text="hello over tls\n"):
    return [{"match": "/", "return": {"status": 200, "body": text,
                                      "headers": {"Content-Type": "text/plain"}}}]


# ---------------------------------------------------------------- serving

@pytest.fixture(scope="module")
def apps(tmp_path_factory):
    d = tmp_path_factory.mktemp("tlsapps")
    (d / "site").mkdir()
    (d / "site" / "index.html").write_text("static over tls\n")
    (d / "site" / "big.bin").write_bytes(os.urandom(3 << 20))
    (d / "wapp.py").write_text(
        "def app(environ, start_response):\n"
        "    body = environ['wsgi.url_scheme'].encode()\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [body]\n")
    (d / "aapp.py").write_text(
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': scope['scheme'].encode()})\n")
    return d


def test_https_static_wsgi_asgi(tutti, pki, apps):
    d = tutti({"modules": ["static", "wsgi", "websocket", "asgi"],
               "python": {"path": [str(apps)]},
               "servers": [tls_server(pki, [
                   {"match": "/w/", "wsgi": {"app": "wapp:app", "script_name": "/w"}},
                   {"match": "/a/", "asgi": {"app": "aapp:app", "lifespan": "off"}},
                   {"match": "/", "static": {"root": str(apps / "site")}}])]})
    base = f"https://127.0.0.1:{d.port}"
    r = requests.get(base + "/", verify=str(pki.ca), timeout=T)
    assert (r.status_code, r.text) == (200, "static over tls\n")
    # a file bigger than one read buffer, which cannot go by sendfile here
    r = requests.get(base + "/big.bin", verify=str(pki.ca), timeout=T)
    assert r.content == (apps / "site" / "big.bin").read_bytes()
    assert requests.get(base + "/w/x", verify=str(pki.ca), timeout=T).text == "https"
    assert requests.get(base + "/a/x", verify=str(pki.ca), timeout=T).text == "https"
    # keep-alive over one TLS session
    s = requests.Session()
    for _ in range(20):
        assert s.get(base + "/", verify=str(pki.ca), timeout=T).status_code == 200
    # curl, the other client people use
    out = subprocess.run(["curl", "-s", "--cacert", str(pki.ca), base + "/"],
                         capture_output=True, timeout=T)
    assert out.stdout == b"static over tls\n"
    # a plain-HTTP request on the TLS port is not answered as HTTP
    with socket.create_connection(("127.0.0.1", d.port), timeout=T) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            got = s.recv(4096)
        except ConnectionResetError:
            got = b""
        assert not got.startswith(b"HTTP/"), got
    assert requests.get(base + "/", verify=str(pki.ca), timeout=T).status_code == 200


def test_sni_picks_the_certificate(tutti, pki):
    d = tutti({"servers": [tls_server(pki, hello_routes("a\n"), names=["a.test", "localhost"]),
                           tls_server(pki, hello_routes("b\n"), cert=pki.b, names=["b.test"])]})
    ctx = client_ctx(pki)
    status, _, body, info = get(d.port, "/", ctx, name="b.test")
    assert (status, body, cn_of(info)) == (200, b"b\n", "b.test")
    status, _, body, info = get(d.port, "/", ctx, name="a.test")
    assert (body, cn_of(info)) == (b"a\n", "a.test")
    # an unknown name gets the first server's certificate
    loose = client_ctx(pki, check_hostname=False)
    _, _, body, info = get(d.port, "/", loose, name="other.test")
    assert cn_of(info) == "a.test"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")   # TLS 1.0/1.1 on purpose
def test_old_protocols_refused_new_ones_served(tutti, pki):
    d = tutti({"servers": [tls_server(pki, hello_routes())]})
    for top in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        ctx = client_ctx(pki, minimum_version=ssl.TLSVersion.TLSv1, maximum_version=top)
        ctx.set_ciphers("DEFAULT@SECLEVEL=0")    # let the client itself offer them
        with pytest.raises(ssl.SSLError) as e:
            get(d.port, "/", ctx)
        assert "PROTOCOL_VERSION" in str(e.value).upper() or "VERSION" in str(e.value).upper()
    for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = client_ctx(pki, minimum_version=v, maximum_version=v)
        status, _, _, info = get(d.port, "/", ctx)
        assert status == 200 and info["version"] == v.name.replace("_", ".")


def test_alpn_http11(tutti, pki):
    d = tutti({"servers": [tls_server(pki, hello_routes())]})
    ctx = client_ctx(pki)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    assert get(d.port, "/", ctx)[3]["alpn"] == "http/1.1"
    ctx = client_ctx(pki)
    ctx.set_alpn_protocols(["h2"])
    status, _, _, info = get(d.port, "/", ctx)
    assert status == 200 and info["alpn"] is None


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_session_resumption_across_workers(tutti, pki, version):
    d = tutti({"workers": 2, "servers": [tls_server(pki, hello_routes())]})
    v = getattr(ssl.TLSVersion, version)
    ctx = client_ctx(pki, minimum_version=v, maximum_version=v)
    session = get(d.port, "/", ctx)[3]["session"]
    reused = [get(d.port, "/", ctx, session=session)[3]["reused"] for _ in range(12)]
    assert all(reused), reused
    # and openssl s_client's own check (its -reconnect closes before a TLS
    # 1.3 ticket arrives, so it can only judge 1.2)
    if version == "TLSv1_2":
        out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{d.port}",
                              "-reconnect", "-CAfile", str(pki.ca), "-tls1_2"],
                             input=b"", capture_output=True, timeout=T)
        assert out.stdout.count(b"Reused, TLS") >= 4, out.stdout[-2000:]


def test_renewed_certificate_after_hup_no_failures(tutti, pki, tmp_path):
    crt, key = tmp_path / "live.pem", tmp_path / "live.key"
    old = pki.leaf("old", ["localhost", "127.0.0.1"])
    shutil.copy(old[0], crt)
    shutil.copy(old[1], key)
    d = tutti({"servers": [{"tls": {"cert": str(crt), "key": str(key)},
                            "routes": hello_routes()}]})
    ctx = client_ctx(pki)
    assert serial(get(d.port, "/", ctx)) == old[2]
    failures, served, stop = [], [0], threading.Event()

    def loop():
        while not stop.is_set():
            try:
                status = get(d.port, "/", ctx)[0]
                if status != 200:
                    failures.append(status)
                served[0] += 1
            except Exception as e:            # noqa: BLE001 - any failure counts
                failures.append(repr(e))
    th = threading.Thread(target=loop)
    th.start()
    try:
        time.sleep(0.5)
        new = pki.leaf("new", ["localhost", "127.0.0.1"])
        shutil.copy(new[0], crt)
        shutil.copy(new[1], key)
        d.reload()
        wait_for(lambda: serial(get(d.port, "/", ctx)) == new[2], 10 * SLOW,
                 "the renewed certificate")
        time.sleep(0.5)
    finally:
        stop.set()
        th.join(timeout=T)
    assert served[0] > 10 and failures == [], (served, failures[:5])


def test_wss_websocket_echo(tutti, pki, tmp_path):
    from test_websocket import module_dir
    mods = module_dir(tmp_path / "m")
    d = tutti({"module_path": str(mods), "modules": ["websocket", "wsecho"],
               "servers": [tls_server(pki, [{"match": "/ws", "wsecho": {}}])]})

    async def talk():
        async with websockets.connect(f"wss://localhost:{d.port}/ws",
                                      ssl=client_ctx(pki), max_size=None) as ws:
            await ws.send("hello over wss")
            assert await asyncio.wait_for(ws.recv(), T) == "hello over wss"
            await ws.send(b"\x01" * 300_000)
            assert await asyncio.wait_for(ws.recv(), T) == b"\x01" * 300_000
    asyncio.run(talk())


def test_stalled_handshake_is_cut_off(tutti, pki):
    """A client that never finishes its handshake is closed at header_timeout."""
    d = tutti({"limits": {"header_timeout": "1s"},
               "servers": [tls_server(pki, hello_routes())]})
    for first in (b"", b"\x16\x03\x01"):     # nothing, or the start of a ClientHello
        with socket.create_connection(("127.0.0.1", d.port), timeout=T) as s:
            t = time.monotonic()
            s.sendall(first)
            while s.recv(100):
                pass
            took = time.monotonic() - t
        assert 0.5 < took < 4 * SLOW, took
    assert get(d.port, "/", client_ctx(pki))[0] == 200


def test_clients_without_close_notify_log_nothing(tutti, pki):
    d = tutti({"error_log": "error.log", "servers": [tls_server(pki, hello_routes())]})
    ctx = client_ctx(pki)
    for _ in range(5):
        t = tls_conn(d.port, ctx)
        t.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        t.recv(4096)
        # drop the TCP connection under the TLS session: no close_notify
        raw = socket.socket(fileno=os.dup(t.fileno()))
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        raw.close()
        t.close()
    # and one that says goodbye properly gets close_notify back
    t = tls_conn(d.port, ctx)
    t.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    while t.recv(4096):
        pass
    t.close()
    time.sleep(0.3)
    assert get(d.port, "/", ctx)[0] == 200
    log = d.error_log_text()
    bad = [l for l in log.splitlines() if "[error]" in l or "[warn]" in l]
    assert bad == [], bad


def test_redirect_http_and_hsts(tutti, pki):
    d = tutti({"servers": [
        tls_server(pki, hello_routes(), hsts={"max_age": "365d", "include_subdomains": True}),
    ]})
    plain_port = harness.free_port()
    tutti({"servers": [{"listen": [f"127.0.0.1:{plain_port}"], "redirect_http": d.port,
                            "routes": [{"match": "/.well-known/acme-challenge/",
                                        "return": {"status": 200, "body": "token\n"}}]}]},
              port=plain_port)
    r = requests.get(f"http://localhost:{plain_port}/some/path?q=1", allow_redirects=False,
                     timeout=T)
    assert r.status_code == 301
    assert r.headers["Location"] == f"https://localhost:{d.port}/some/path?q=1"
    r = requests.get(f"http://localhost:{plain_port}/.well-known/acme-challenge/x", timeout=T)
    assert (r.status_code, r.text) == (200, "token\n")
    # followed: it lands on the TLS server, which says HSTS
    r = requests.get(f"http://localhost:{plain_port}/x", verify=str(pki.ca), timeout=T)
    assert r.status_code == 200 and r.url.startswith("https://")
    assert r.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_proxy_says_https_upstream(tutti, pki):
    from test_proxy import Backend
    b = Backend("b")
    try:
        d = tutti({"modules": ["proxy"], "servers": [tls_server(pki, [
            {"match": "/", "proxy": {"upstreams": [b.addr],
                                     "headers": {"X-Seen-Scheme": "$scheme"}}}])]})
        r = requests.get(f"https://127.0.0.1:{d.port}/echo", verify=str(pki.ca), timeout=T,
                         headers={"X-Forwarded-Proto": "http"})
        h = dict(r.json()["headers"])
        assert (h["X-Forwarded-Proto"], h["X-Seen-Scheme"]) == ("https", "https"), h
    finally:
        b.stop()


# ---------------------------------------------------------------- config errors

def write(tmp_path, tls, extra=""):
    text = ("servers:\n"
            f"  - listen: 127.0.0.1:{harness.free_port()}\n"
            f"    tls: {tls}\n"
            "    routes: [{match: /, return: 200}]\n" + extra)
    (tmp_path / "tutti.yaml").write_text(text)
    return run_tutti(["-t", "-c", "tutti.yaml"], tmp_path)


def test_config_errors(tmp_path, pki):
    a_crt, a_key, _ = pki.a
    _, b_key, _ = pki.b
    enc = pki.leaf("enc", ["localhost"], password="s3cret")
    (tmp_path / "pw").write_text("s3cret\n")
    (tmp_path / "badpw").write_text("wrong\n")
    cases = [
        ("{cert: nope.pem, key: nope.key}", "cannot read the certificate chain"),
        (f"{{cert: {a_crt}, key: nope.key}}", "cannot read the key"),
        (f"{{cert: {a_crt}, key: {b_key}}}", "does not belong to the certificate"),
        (f"{{cert: {a_key}, key: {a_key}}}", "is not a PEM certificate chain"),
        (f"{{cert: {enc[0]}, key: {enc[1]}}}", "it is encrypted: add password_file"),
        (f"{{cert: {enc[0]}, key: {enc[1]}, password_file: badpw}}",
         "is password_file's first line its password?"),
        (f"{{cert: {a_crt}, key: {a_key}, protocols: [SSLv3]}}", "is broken and not offered"),
        (f"{{cert: {a_crt}, key: {a_key}, ciphers: NOPE-NOTHING}}", "OpenSSL knows none"),
        (f"{{cert: {a_crt}, key: {a_key}, colour: red}}", "colour"),
        (f"{{cert: {a_crt}}}", "'tls' needs 'cert'"),
    ]
    for tls, message in cases:
        got = config_error_line(write(tmp_path, tls), [3])
        assert message in got, (tls, got)
    # the right password opens the key
    res = write(tmp_path, f"{{cert: {enc[0]}, key: {enc[1]}, password_file: pw}}")
    assert res.returncode == 0, res.stderr


def test_config_mixed_address_and_redirect_on_tls(tmp_path, pki):
    a_crt, a_key, _ = pki.a
    port = harness.free_port()
    text = ("servers:\n"
            f"  - listen: 127.0.0.1:{port}\n"
            f"    tls: {{cert: {a_crt}, key: {a_key}}}\n"
            "    routes: [{match: /, return: 200}]\n"
            f"  - listen: 127.0.0.1:{port}\n"
            "    names: [other.test]\n"
            "    routes: [{match: /, return: 200}]\n")
    (tmp_path / "tutti.yaml").write_text(text)
    got = config_error_line(run_tutti(["-t", "-c", "tutti.yaml"], tmp_path), [5])
    assert "one address speaks HTTPS for all its servers or for none" in got
    text = ("servers:\n"
            f"  - listen: 127.0.0.1:{port}\n"
            f"    tls: {{cert: {a_crt}, key: {a_key}}}\n"
            "    redirect_http: true\n"
            "    routes: [{match: /, return: 200}]\n")
    (tmp_path / "tutti.yaml").write_text(text)
    got = config_error_line(run_tutti(["-t", "-c", "tutti.yaml"], tmp_path), [4])
    assert "this server has 'tls' itself" in got
    (tmp_path / "tutti.yaml").write_text(
        "servers:\n"
        f"  - listen: 127.0.0.1:{port}\n"
        "    redirect_http: soon\n"
        "    routes: [{match: /, return: 200}]\n")
    got = config_error_line(run_tutti(["-t", "-c", "tutti.yaml"], tmp_path), [3])
    assert got.startswith("tutti: tutti.yaml:3:20: 'redirect_http: soon': expected true, false, "
                          "or the HTTPS port such as 8443"), got


def test_expired_certificate_is_a_warning(tutti, pki):
    old = pki.leaf("expired", ["localhost"], expired=True)
    d = tutti({"servers": [tls_server(pki, hello_routes(), cert=old)]})
    assert "has expired" in d.stderr_text()
    loose = client_ctx(pki, check_hostname=False, verify_mode=ssl.CERT_NONE)
    assert get(d.port, "/", loose)[0] == 200


# ---------------------------------------------------------------- testssl.sh

def test_testssl_finds_nothing(tutti, pki):
    testssl = shutil.which("testssl") or shutil.which("testssl.sh")
    assert testssl, "testssl.sh is missing: ./dev.sh installs Debian's package"
    d = tutti({"servers": [tls_server(pki, hello_routes(), hsts="365d")]})
    out = subprocess.run([testssl, "--quiet", "--color", "0", "--warnings", "off",
                          "--openssl-timeout", "5", "-p", "-s", "-U", "-h",
                          f"127.0.0.1:{d.port}"],
                         capture_output=True, text=True, timeout=600)
    text = out.stdout + out.stderr
    bad = [l for l in text.splitlines() if "VULNERABLE" in l and "not vulnerable" not in l]
    bad += [l for l in text.splitlines() if "NOT ok" in l]
    assert "TLS 1.3" in text, text[-3000:]
    assert bad == [], "\n".join(bad)


def test_ticket_keys_rotate_and_stay_shared(tutti, pki):
    """Tickets open on every worker; after a rotation the previous key still
    opens them (and a new ticket comes), after two they are refused."""
    d = tutti({"workers": 2, "servers": [tls_server(pki, hello_routes())]},
              env={"TUTTI_TICKET_ROTATE_MS": "1500"})
    ctx = client_ctx(pki, minimum_version=ssl.TLSVersion.TLSv1_2,
                     maximum_version=ssl.TLSVersion.TLSv1_2)
    first = get(d.port, "/", ctx)[3]["session"]
    assert all(get(d.port, "/", ctx, session=first)[3]["reused"] for _ in range(6))
    time.sleep(1.7)                         # one rotation: the previous key
    assert get(d.port, "/", ctx, session=first)[3]["reused"]
    time.sleep(1.7)                         # two: the key is gone
    assert not get(d.port, "/", ctx, session=first)[3]["reused"]
    # a fresh session resumes again, on both workers
    fresh = get(d.port, "/", ctx)[3]["session"]
    assert all(get(d.port, "/", ctx, session=fresh)[3]["reused"] for _ in range(6))


def ocsp_response(pki, leaf_pem, path, *, days=1, status="good"):
    from cryptography.x509 import ocsp
    leaf = x509.load_pem_x509_certificate(Path(leaf_pem).read_bytes())  # the first of the chain
    now = datetime.datetime.now(datetime.timezone.utc)
    cert_status = ocsp.OCSPCertStatus.GOOD if status == "good" else ocsp.OCSPCertStatus.REVOKED
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=leaf, issuer=pki.ca_cert, algorithm=hashes.SHA1(), cert_status=cert_status,
        this_update=now - datetime.timedelta(hours=1),
        next_update=now + datetime.timedelta(days=days),
        revocation_time=now if status != "good" else None,
        revocation_reason=None).responder_id(ocsp.OCSPResponderEncoding.HASH, pki.ca_cert)
    resp = builder.sign(pki.ca_key, hashes.SHA256())
    Path(path).write_bytes(resp.public_bytes(serialization.Encoding.DER))
    return path


def test_ocsp_stapling(tutti, pki, tmp_path):
    der = ocsp_response(pki, pki.a[0], tmp_path / "a.ocsp")
    d = tutti({"servers": [tls_server(pki, hello_routes(), ocsp=str(der))]})
    for flag in ("-tls1_2", "-tls1_3"):
        out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{d.port}",
                              "-status", flag, "-CAfile", str(pki.ca)],
                             input=b"", capture_output=True, timeout=T).stdout.decode()
        assert "OCSP Response Status: successful" in out, out[-2000:]
        assert "Cert Status: good" in out, out[-2000:]
    # no -status, no staple
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{d.port}",
                          "-CAfile", str(pki.ca)],
                         input=b"", capture_output=True, timeout=T).stdout.decode()
    assert "OCSP response" not in out
    # a stale one warns and is still served; one about another certificate is an error
    stale = ocsp_response(pki, pki.a[0], tmp_path / "stale.ocsp", days=-1)
    d2 = tutti({"servers": [tls_server(pki, hello_routes(), ocsp=str(stale))]})
    assert "past its next update" in d2.stderr_text()
    other = ocsp_response(pki, pki.b[0], tmp_path / "b.ocsp")
    (tmp_path / "c").mkdir()
    res = write(tmp_path / "c", f"{{cert: {pki.a[0]}, key: {pki.a[1]}, ocsp: {other}}}")
    assert "is not about the certificate" in config_error_line(res, [3])
    (tmp_path / "junk.ocsp").write_bytes(b"not DER at all")
    res = write(tmp_path / "c", f"{{cert: {pki.a[0]}, key: {pki.a[1]}, "
                                f"ocsp: {tmp_path / 'junk.ocsp'}}}")
    assert "is not a successful OCSP response" in config_error_line(res, [3])


def test_ciphers_and_server_preference(tutti, pki):
    only = "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384"
    d = tutti({"servers": [tls_server(pki, hello_routes(), ciphers=only,
                                      prefer_server_ciphers=True)]})
    ctx = client_ctx(pki, maximum_version=ssl.TLSVersion.TLSv1_2)
    # the client prefers AES-256-GCM; the server's order wins
    ctx.set_ciphers("ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305")
    t = tls_conn(d.port, ctx)
    assert t.cipher()[0] == "ECDHE-ECDSA-CHACHA20-POLY1305", t.cipher()
    t.close()
    # a client with none of them is refused
    ctx = client_ctx(pki, maximum_version=ssl.TLSVersion.TLSv1_2)
    ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    with pytest.raises(ssl.SSLError):
        tls_conn(d.port, ctx)

"""Logs: the access log (combined + request time, or JSON; a file, stdout or
off), USR1 reopening it, and the error log."""
import json
import os
import re
import signal
import time

import requests

from harness import SLOW, parse_combined, wait_for
from rawhttp import Conn, get

T = 5 * SLOW


def site(**top):
    return {**top, "servers": [{"routes": [
        {"match": "/v", "return": {"status": 200, "body": "12345"}},
        {"match": "/hello/", "hello": {}},
    ]}]}


def test_combined_line_with_request_time(tutti):
    d = tutti(site())
    r = get(d.port, "/v?x=1", headers=["Referer: http://ref.test/page",
                                       "User-Agent: pytest-agent/1.0"])
    assert r.status == 200
    (line,) = d.wait_access_lines(1)
    e = parse_combined(line)
    assert e["addr"] == "127.0.0.1"
    assert (e["method"], e["target"], e["proto"]) == ("GET", "/v?x=1", "HTTP/1.1")
    assert (e["status"], e["bytes"]) == ("200", "5")
    assert (e["referer"], e["ua"]) == ("http://ref.test/page", "pytest-agent/1.0")
    # nginx-style time: [10/Oct/2000:13:55:36 +0000]
    time.strptime(e["time"], "%d/%b/%Y:%H:%M:%S %z")
    # then the request time, in seconds
    rest = e["rest"].split()
    assert rest, f"no request time after the combined fields: {line!r}"
    assert 0 <= float(rest[-1]) < 10, line


def test_combined_line_of_http10_and_missing_headers(tutti):
    d = tutti(site())
    with Conn(d.port) as c:
        c.send(b"GET /hello/x HTTP/1.0\r\n\r\n")
        assert c.read_response().status == 200
    e = parse_combined(d.wait_access_lines(1)[0])
    assert (e["method"], e["target"], e["proto"]) == ("GET", "/hello/x", "HTTP/1.0")
    assert (e["referer"], e["ua"]) == ("-", "-")
    assert e["bytes"] == str(len("Hello, x!\n"))


def test_head_logs_zero_body_bytes(tutti):
    d = tutti(site())
    assert get(d.port, "/v", method="HEAD").status == 200
    e = parse_combined(d.wait_access_lines(1)[0])
    assert e["method"] == "HEAD" and e["bytes"] in ("0", "-")


def test_one_line_per_request_in_order(tutti):
    d = tutti(site())
    with Conn(d.port) as c:
        for i in range(5):
            c.send(f"GET /hello/n{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            c.read_response()
    lines = d.wait_access_lines(5)
    assert [parse_combined(l)["target"] for l in lines] == [f"/hello/n{i}" for i in range(5)]


def test_json_format(tutti):
    d = tutti(site(access_log_format="json"))
    get(d.port, "/v?q=2", headers=["User-Agent: json-agent"])
    get(d.port, "/missing")
    lines = d.wait_access_lines(2)
    entries = [json.loads(l) for l in lines]
    for e in entries:
        assert isinstance(e, dict)
    values = [set(map(str, e.values())) for e in entries]
    assert "200" in values[0] and "404" in values[1], entries
    assert any("/v?q=2" in v or v == "/v" for v in values[0]), entries[0]
    assert "GET" in values[0] and "json-agent" in values[0], entries[0]
    assert "127.0.0.1" in values[0], entries[0]


def test_json_escapes_what_the_client_sent(tutti):
    d = tutti(site(access_log_format="json"))
    get(d.port, "/v", headers=['User-Agent: evil"agent\\'])
    (line,) = d.wait_access_lines(1)
    e = json.loads(line)
    assert any("evil" in str(v) for v in e.values())


def test_combined_escapes_quotes(tutti):
    d = tutti(site())
    get(d.port, "/v", headers=['User-Agent: a"b'])
    (line,) = d.wait_access_lines(1)
    assert 'a"b' not in line, f"a client's quote ends the field early: {line}"
    e = parse_combined(line)
    assert e["status"] == "200" and e["ua"].startswith("a") and e["ua"].endswith("b")


def test_access_log_defaults_to_stdout(tutti):
    d = tutti(site(), access_log=False)
    get(d.port, "/v")
    wait_for(lambda: '"GET /v HTTP/1.1" 200' in d.stdout_text(), 5 * SLOW,
             "the access log line on stdout")


def test_access_log_off(tutti):
    d = tutti(site(access_log="off"))
    assert get(d.port, "/v").status == 200
    time.sleep(0.5)
    assert "GET /v" not in d.stdout_text()
    assert "GET /v" not in d.stderr_text()
    assert not d.access_log.exists() or not d.access_lines()


def test_access_log_relative_path_is_beside_the_config(tutti, tmp_path):
    (tmp_path / "site" / "logs").mkdir(parents=True)
    d = tutti(site(access_log="logs/access.log"), subdir="site")
    get(d.port, "/v")
    log = tmp_path / "site" / "logs" / "access.log"
    wait_for(lambda: log.exists() and "GET /v" in log.read_text(), 5 * SLOW, str(log))


def test_usr1_reopens_the_access_log(tutti):
    d = tutti(site(workers=2))
    get(d.port, "/hello/before")
    d.wait_access_lines(1)
    moved = d.access_log.with_name("access.log.1")
    os.rename(d.access_log, moved)
    d.signal(signal.SIGUSR1)
    wait_for(d.access_log.exists, 5 * SLOW, "a new access.log after USR1")
    # both workers must have reopened: several connections reach both
    for i in range(6):
        get(d.port, f"/hello/after{i}")
    lines = d.wait_access_lines(6)
    assert [parse_combined(l)["target"] for l in lines] == [f"/hello/after{i}" for i in range(6)]
    old = moved.read_text()
    assert "/hello/before" in old and "/hello/after" not in old


def test_error_log_to_a_file(tutti):
    d = tutti(site(error_log="error.log"))
    d.config_path.write_text("servers: [")       # a broken config for the reload
    d.signal(signal.SIGHUP)
    log = d.dir / "error.log"
    wait_for(lambda: log.exists() and "tutti.yaml:" in log.read_text(), 5 * SLOW,
             "the refused config in error.log")
    assert "tutti.yaml:" not in d.stderr_text()
    assert requests.get(d.url + "/v", timeout=T).text == "12345"


def test_error_log_lines_have_level_and_time(tutti):
    d = tutti(site(log_level="info"))
    d.config_path.write_text("servers: [")
    d.signal(signal.SIGHUP)
    wait_for(lambda: "tutti.yaml:" in d.stderr_text(), 5 * SLOW, "the error on stderr")
    line = next(l for l in d.stderr_text().splitlines() if "tutti.yaml:" in l)
    assert re.search(r"\b(error|warn|warning|crit|emerg|alert)\b", line, re.I), line
    assert re.search(r"\d\d:\d\d:\d\d", line), f"no time in the line: {line}"
    assert requests.get(d.url + "/v", timeout=T).text == "12345"

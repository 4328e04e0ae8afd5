"""Routing (server by Host, routes in order, prefixes at segment boundaries,
methods), the core's `return` handler and the example module `hello`."""
import pytest
import requests

from harness import SLOW, free_port
from rawhttp import exchange, get

T = 5 * SLOW      # request timeout


def ret(body, status=200, **extra):
    return {"status": status, "body": body, **extra}


@pytest.fixture
def site(tutti):
    return tutti({"servers": [{"routes": [
        {"match": "/hello/", "hello": {"greeting": "Hello", "echo": False}},
        {"match": "/hi", "hello": {"greeting": "Hi"}},
        {"match": "/api/special", "return": ret("special\n")},
        {"match": "/api/", "return": ret("api\n")},
        {"match": {"path": "/rw", "methods": ["GET", "POST"]}, "return": ret("rw\n")},
        {"match": "/gone", "return": 410},
        {"match": "/old", "return": {"status": 301, "location": "/new"}},
        {"match": "/typed", "return": {"status": 200, "body": "{}",
                                       "headers": {"Content-Type": "application/json",
                                                   "X-Extra": "yes"}}},
        {"match": "/healthz", "return": ret("ok\n")},
    ]}]})


def test_hello_greets_the_rest_of_the_path(site):
    r = requests.get(site.url + "/hello/alice", timeout=T)
    assert (r.status_code, r.text) == (200, "Hello, alice!\n")


def test_hello_greets_world_without_a_name(site):
    r = requests.get(site.url + "/hello/", timeout=T)
    assert (r.status_code, r.text) == (200, "Hello, world!\n")


def test_hello_greeting_is_configurable(site):
    r = requests.get(site.url + "/hi/bob", timeout=T)
    assert (r.status_code, r.text) == (200, "Hi, bob!\n")
    assert int(r.headers["Content-Length"]) == len("Hi, bob!\n")


def test_prefix_matches_only_at_a_segment_boundary(site):
    assert requests.get(site.url + "/hix", timeout=T).status_code == 404
    assert requests.get(site.url + "/hellox", timeout=T).status_code == 404
    assert requests.get(site.url + "/healthzz", timeout=T).status_code == 404
    assert requests.get(site.url + "/healthz/", timeout=T).status_code == 200
    assert requests.get(site.url + "/healthz/deeper", timeout=T).text == "ok\n"


def test_first_matching_route_wins(site):
    assert requests.get(site.url + "/api/special", timeout=T).text == "special\n"
    assert requests.get(site.url + "/api/special/x", timeout=T).text == "special\n"
    assert requests.get(site.url + "/api/other", timeout=T).text == "api\n"
    assert requests.get(site.url + "/api/specialx", timeout=T).text == "api\n"


def test_no_route_is_404_with_a_short_body(site):
    r = requests.get(site.url + "/nothing/here", timeout=T)
    assert r.status_code == 404
    assert 0 < len(r.content) < 512
    assert "404" in r.text


def test_method_mismatch_is_405_with_allow(site):
    r = requests.delete(site.url + "/rw", timeout=T)
    assert r.status_code == 405
    allow = {m.strip() for m in r.headers.get("Allow", "").split(",")}
    assert {"GET", "POST"} <= allow, r.headers
    assert "DELETE" not in allow
    assert requests.post(site.url + "/rw", data=b"x", timeout=T).text == "rw\n"
    assert requests.get(site.url + "/rw", timeout=T).text == "rw\n"


def test_method_mismatch_on_unmatched_path_is_404(site):
    assert requests.delete(site.url + "/nope", timeout=T).status_code == 404


def test_return_short_form(site):
    r = requests.get(site.url + "/gone", timeout=T)
    assert r.status_code == 410


def test_return_location(site):
    r = requests.get(site.url + "/old", timeout=T, allow_redirects=False)
    assert r.status_code == 301
    assert r.headers["Location"] == "/new"


def test_return_headers_and_body(site):
    r = requests.get(site.url + "/typed", timeout=T)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["X-Extra"] == "yes"
    assert r.text == "{}"


def test_return_body_without_type_is_text(site):
    r = requests.get(site.url + "/healthz", timeout=T)
    assert r.headers["Content-Type"].startswith("text/plain")


def test_dot_segments_are_removed_before_routing(site):
    r = get(site.port, "/a/../healthz")
    assert (r.status, r.body) == (200, b"ok\n")
    r = get(site.port, "/hello/./x/../carol")
    assert (r.status, r.body) == (200, b"Hello, carol!\n")
    r = get(site.port, "/%68ealthz")          # percent-decoded before routing
    assert (r.status, r.body) == (200, b"ok\n")


def test_query_string_is_not_part_of_the_route(site):
    r = requests.get(site.url + "/healthz?x=1", timeout=T)
    assert (r.status_code, r.text) == (200, "ok\n")


# ---------------------------------------------------------------- servers by Host

@pytest.fixture
def vhosts(tutti):
    return tutti({"servers": [
        {"names": ["a.test"], "routes": [{"match": "/", "return": ret("a\n")}]},
        {"names": ["b.test", "www.b.test"], "routes": [{"match": "/", "return": ret("b\n")}]},
    ]})


@pytest.mark.parametrize("host,body", [
    ("a.test", b"a\n"),
    ("b.test", b"b\n"),
    ("www.b.test", b"b\n"),
    ("B.Test", b"b\n"),                 # Host is case-insensitive
    ("b.test:8080", b"b\n"),            # the port is not part of the name
    ("unknown.test", b"a\n"),           # the first server is the default
    ("127.0.0.1", b"a\n"),
])
def test_server_is_chosen_by_host(vhosts, host, body):
    r = get(vhosts.port, "/", host=host)
    assert (r.status, r.body) == (200, body)


def test_http10_without_host_goes_to_the_default_server(vhosts):
    resp, c = exchange(vhosts.port, b"GET / HTTP/1.0\r\n\r\n")
    c.close()
    assert (resp.status, resp.body) == (200, b"a\n")


# ---------------------------------------------------------------- config values

def test_env_expansion_with_default(tutti):
    d = tutti({"servers": [{"routes": [
        {"match": "/set", "return": ret("${TUTTI_TEST_GREETING}")},
        {"match": "/unset", "return": ret("${TUTTI_TEST_NOT_SET:-fallback}")},
    ]}]}, env={"TUTTI_TEST_GREETING": "from-env"})
    assert requests.get(d.url + "/set", timeout=T).text == "from-env"
    assert requests.get(d.url + "/unset", timeout=T).text == "fallback"


def test_listen_on_two_addresses(tutti):
    other = free_port()
    d = tutti({"servers": [{"listen": ["127.0.0.1:@PORT@", f"127.0.0.1:{other}"],
                            "routes": [{"match": "/", "return": ret("x\n")}]}]})
    for port in (d.port, other):
        r = requests.get(f"http://127.0.0.1:{port}/", timeout=T)
        assert (r.status_code, r.text) == (200, "x\n"), port

"""Processes and signals: workers, pid_file, HUP reload (also under load, and
with a bad new config), QUIT graceful, TERM fast, a killed worker respawned."""
import os
import signal
import threading
import time

import pytest
import requests

from harness import SLOW, alive, free_port, proc_stat, wait_for
from rawhttp import Conn, get

T = 5 * SLOW


def body_config(body, **top):
    return {**top, "servers": [{"routes": [
        {"match": "/v", "return": {"status": 200, "body": body}},
        {"match": "/echo/", "hello": {"echo": True}},
    ]}]}


# ---------------------------------------------------------------- workers

def test_one_worker_by_default(tutti):
    d = tutti(body_config("x"))
    d.wait_workers(1)
    time.sleep(0.3)
    assert len(d.worker_pids()) == 1


def test_two_workers(tutti):
    d = tutti(body_config("x", workers=2))
    pids = d.wait_workers(2)
    for p in pids:
        assert proc_stat(p)[0] == d.pid


def test_workers_auto_is_one_per_cpu(tutti):
    d = tutti(body_config("x", workers="auto"))
    cpus = {os.cpu_count(), len(os.sched_getaffinity(0))}
    wait_for(lambda: len(d.worker_pids()) in cpus, 10 * SLOW, f"{cpus} workers")
    time.sleep(0.3)
    assert len(d.worker_pids()) in cpus


def test_killed_worker_is_replaced_and_serving_goes_on(tutti):
    d = tutti(body_config("alive", workers=2))
    pids = d.wait_workers(2)
    victim = pids[0]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: not alive(victim), 5 * SLOW, "the killed worker to go")
    new = d.wait_workers(2, exclude=[victim])
    assert pids[1] in new
    assert victim not in new
    for _ in range(20):
        assert requests.get(d.url + "/v", timeout=T).text == "alive"
    assert d.running()


def test_killed_single_worker_is_replaced(tutti):
    d = tutti(body_config("alive"))
    (victim,) = d.wait_workers(1)
    os.kill(victim, signal.SIGKILL)
    d.wait_workers(1, exclude=[victim])
    wait_for(lambda: get(d.port, "/v").body == b"alive", 5 * SLOW, "serving again")


def _uid(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_user_drops_privileges_in_workers(tutti, tmp_path):
    import pwd
    nobody = pwd.getpwnam("nobody")
    os.chmod(tmp_path, 0o755)
    d = tutti(body_config("x", user="nobody"))
    (w,) = d.wait_workers(1)
    # the worker shows up in /proc a moment before it has dropped root
    wait_for(lambda: _uid(w) == nobody.pw_uid, 5 * SLOW, "the worker running as nobody")
    assert requests.get(d.url + "/v", timeout=T).text == "x"
    wait_for(lambda: d.access_lines(), 5 * SLOW, "the access log line written by the worker")


# ---------------------------------------------------------------- pid_file

def test_pid_file_beside_the_config_by_default(tutti):
    d = tutti(body_config("x"))
    pid_file = d.config_path.parent / "tutti.pid"
    wait_for(pid_file.exists, 5 * SLOW, "tutti.pid beside the config")
    assert int(pid_file.read_text().strip()) == d.pid


def test_pid_file_is_relative_to_the_config(tutti, tmp_path):
    run = tmp_path / "site" / "run"
    run.mkdir(parents=True)
    d = tutti(body_config("x", pid_file="run/my.pid"), subdir="site")
    wait_for((run / "my.pid").exists, 5 * SLOW, "run/my.pid relative to the config")
    assert int((run / "my.pid").read_text().strip()) == d.pid
    d.signal(signal.SIGTERM)
    assert d.wait_exit(10) == 0
    assert not (run / "my.pid").exists()


# ---------------------------------------------------------------- reload

def test_hup_reload_applies_the_new_config(tutti):
    d = tutti(body_config("one"))
    assert requests.get(d.url + "/v", timeout=T).text == "one"
    old = d.worker_pids()
    d.reload(body_config("two"))
    wait_for(lambda: requests.get(d.url + "/v", timeout=T).text == "two", 5 * SLOW,
             "the new body")
    wait_for(lambda: not any(alive(p) for p in old), 10 * SLOW, "the old workers to exit")
    assert d.running()


def test_reload_can_change_workers(tutti):
    d = tutti(body_config("x", workers=1))
    d.wait_workers(1)
    d.reload(body_config("x", workers=2))
    d.wait_workers(2)


def test_reload_under_load_loses_no_request(tutti):
    d = tutti(body_config("v0", workers=2))
    failures, bodies = [], []
    stop = threading.Event()

    def client():
        while not stop.is_set():
            try:
                r = requests.get(d.url + "/v", timeout=T)
                if r.status_code != 200:
                    failures.append(f"status {r.status_code}")
                bodies.append(r.text)
            except requests.RequestException as e:
                failures.append(repr(e))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        d.reload(body_config("v1", workers=2))
        time.sleep(1.0)
        d.reload(body_config("v2", workers=2))
        time.sleep(1.5)
    finally:
        stop.set()
        for t in threads:
            t.join(T + 1)
    assert not failures, f"{len(failures)} failed requests during reload, e.g. {failures[:3]}"
    assert len(bodies) > 20, "the clients hardly ran"
    assert set(bodies) <= {"v0", "v1", "v2"}
    assert bodies[-1] == "v2" and bodies[-2] == "v2"
    assert requests.get(d.url + "/v", timeout=T).text == "v2"


def test_bad_config_on_reload_is_refused_and_old_one_serves(tutti):
    d = tutti(body_config("good", workers=2))
    workers = d.wait_workers(2)
    d.config_path.write_text("servers:\n  - listen: [\"127.0.0.1:1\"]\n    routes:\n"
                             "      - match: /\n        return: 200\n        hello: {}\n")
    d.signal(signal.SIGHUP)
    wait_for(lambda: "tutti.yaml:" in d.error_log_text(), 5 * SLOW,
             "the config error in the error log")
    log = d.error_log_text()
    assert "tutti.yaml:4:9:" in log or "tutti.yaml:5:9:" in log or "tutti.yaml:6:9:" in log, log
    time.sleep(0.3)
    assert d.running()
    assert sorted(d.worker_pids()) == sorted(workers), "workers were replaced by a refused config"
    for _ in range(10):
        assert requests.get(d.url + "/v", timeout=T).text == "good"
    # and a good config after that still works
    d.reload(body_config("better", workers=2))
    wait_for(lambda: requests.get(d.url + "/v", timeout=T).text == "better", 5 * SLOW,
             "the next good config")


def test_reload_finishes_in_flight_request_on_old_worker(tutti):
    d = tutti(body_config("one"))
    with Conn(d.port, timeout=10) as c:
        c.send(b"POST /echo/ HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
        time.sleep(0.2)
        d.reload(body_config("two"))
        time.sleep(0.3)
        c.send(b"world")
        r = c.read_response()
        assert (r.status, r.body) == (200, b"helloworld")
    wait_for(lambda: requests.get(d.url + "/v", timeout=T).text == "two", 5 * SLOW, "new config")


def test_reload_can_add_a_listener(tutti):
    other = free_port()
    d = tutti(body_config("x"))
    cfg = body_config("x")
    cfg["servers"][0]["listen"] = ["127.0.0.1:@PORT@", f"127.0.0.1:{other}"]
    d.reload(cfg)
    wait_for(lambda: _answers(other), 5 * SLOW, f"the new listener on {other}")
    assert requests.get(d.url + "/v", timeout=T).text == "x"


def _answers(port):
    try:
        return requests.get(f"http://127.0.0.1:{port}/v", timeout=1).text == "x"
    except requests.RequestException:
        return False


# ---------------------------------------------------------------- stopping

def test_term_stops_fast_with_status_0(tutti):
    d = tutti(body_config("x", shutdown_timeout="30s"))
    with Conn(d.port, timeout=10) as c:
        c.send(b"POST /echo/ HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
        time.sleep(0.2)
        workers = d.worker_pids()
        start = time.monotonic()
        d.signal(signal.SIGTERM)
        assert d.wait_exit(5) == 0
        assert time.monotonic() - start < 3 * SLOW, "TERM waited for an in-flight request"
        assert c.closed_within(2)
    wait_for(lambda: not any(alive(p) for p in workers), 3 * SLOW, "workers to exit")


def test_int_stops_fast(tutti):
    d = tutti(body_config("x"))
    d.signal(signal.SIGINT)
    assert d.wait_exit(5) == 0


def test_quit_finishes_the_in_flight_response_then_exits_0(tutti):
    d = tutti(body_config("x", shutdown_timeout="20s"))
    with Conn(d.port, timeout=15) as c:
        c.send(b"POST /echo/ HTTP/1.1\r\nHost: x\r\nContent-Length: 15\r\n\r\nslow-")
        time.sleep(0.2)
        d.signal(signal.SIGQUIT)
        for piece in (b"body-", b"done!"):
            time.sleep(0.4)
            c.send(piece)
        r = c.read_response()
        assert (r.status, r.body) == (200, b"slow-body-done!")
        # its head left before QUIT, so it may not say close; but it must close
        assert c.closed_within(3)
    assert d.wait_exit(10) == 0


def test_quit_closes_idle_keep_alive_connections(tutti):
    d = tutti(body_config("x", shutdown_timeout="20s"))
    with Conn(d.port) as idle:
        idle.send(b"GET /v HTTP/1.1\r\nHost: x\r\n\r\n")
        assert idle.read_response().body == b"x"
        d.signal(signal.SIGQUIT)
        assert idle.closed_within(3), "an idle keep-alive connection kept QUIT waiting"
    assert d.wait_exit(10) == 0


def test_quit_is_bounded_by_shutdown_timeout(tutti):
    d = tutti(body_config("x", shutdown_timeout="1s"))
    with Conn(d.port, timeout=10) as c:
        c.send(b"POST /echo/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nnever-finished")
        time.sleep(0.2)
        start = time.monotonic()
        d.signal(signal.SIGQUIT)
        rc = d.wait_exit(8)
        elapsed = time.monotonic() - start
    assert rc == 0
    assert elapsed < 4 * SLOW, f"QUIT took {elapsed:.1f}s with shutdown_timeout 1s"

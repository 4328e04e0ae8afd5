"""The command line: -V -h -t -s -d, exit statuses, and the config errors a
user sees ("tutti: file:line:col: what is wrong, what to write")."""
import os
import re
import shutil
import socket
from pathlib import Path

import pytest
import requests

from harness import BUILD_DIR, SLOW, alive, broken_module, free_port, proc_stat, run_tutti, sanitizer_findings, wait_for

OK_CONFIG = """\
servers:
  - listen: ["127.0.0.1:{port}"]
    routes:
      - match: /healthz
        return: {{status: 200, body: "ok\\n"}}
"""


def write(tmp_path, text, name="tutti.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def tutti_lines(res):
    """The lines tutti printed that start with its name."""
    return [l for l in (res.stderr + res.stdout).splitlines() if l.startswith("tutti: ")]


def assert_config_error(res, positions, message):
    """Exit 1 and one line "tutti: tutti.yaml:L:C: message" at one of positions."""
    out = res.stderr + res.stdout
    assert res.returncode == 1, f"exit status {res.returncode}, output:\n{out}"
    wanted = [f"tutti: tutti.yaml:{p}: {message}" for p in positions]
    got = tutti_lines(res)
    assert any(l in wanted for l in got), \
        "expected one of\n  " + "\n  ".join(wanted) + f"\ngot:\n{out}"


# ---------------------------------------------------------------- -V -h, bad options

def test_version_names_version_abi_and_modules(tmp_path):
    res = run_tutti(["-V"], tmp_path)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert re.search(r"\b\d+\.\d+\.\d+\b", out), f"no version number in:\n{out}"
    assert re.search(r"ABI\D{0,10}\b1\b", out, re.I), f"no module ABI version in:\n{out}"
    assert re.search(r"\bhello\b", out), f"module hello not listed in:\n{out}"


def test_help_lists_every_option(tmp_path):
    res = run_tutti(["-h"], tmp_path)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    for opt in ("-c", "-t", "-V", "-s", "-d", "-h"):
        assert opt in out, f"{opt} missing from usage:\n{out}"


def test_unknown_option_exits_1_with_usage(tmp_path):
    res = run_tutti(["-Z"], tmp_path)
    assert res.returncode == 1
    assert res.stderr.strip(), "nothing on stderr for a bad option"


def test_missing_config_file_exits_1_naming_it(tmp_path):
    res = run_tutti(["-t", "-c", "nowhere.yaml"], tmp_path)
    assert res.returncode == 1
    assert "nowhere.yaml" in res.stderr + res.stdout


def test_default_config_is_tutti_yaml_in_cwd(tmp_path):
    write(tmp_path, OK_CONFIG.format(port=free_port()))
    res = run_tutti(["-t"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "configuration OK" in res.stdout + res.stderr


# ---------------------------------------------------------------- -t

def test_check_ok(tmp_path):
    write(tmp_path, OK_CONFIG.format(port=free_port()))
    res = run_tutti(["-t", "-c", "tutti.yaml"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "configuration OK" in res.stdout + res.stderr


def test_check_does_not_bind_or_start(tmp_path):
    """-t only checks: the port stays free and nothing keeps running."""
    port = free_port()
    write(tmp_path, OK_CONFIG.format(port=port))
    res = run_tutti(["-t", "-c", "tutti.yaml"], tmp_path)
    assert res.returncode == 0, res.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
    assert not (tmp_path / "tutti.pid").exists()


def test_check_bad_yaml_syntax(tmp_path):
    write(tmp_path, "servers:\n  - listen: [\"127.0.0.1:1\"\n    routes: []\n")
    res = run_tutti(["-t", "-c", "tutti.yaml"], tmp_path)
    assert res.returncode == 1
    assert any(re.match(r"tutti: tutti\.yaml:\d+:\d+: \S", l) for l in tutti_lines(res)), \
        res.stderr


def test_servers_is_required(tmp_path):
    write(tmp_path, "workers: 1\n")
    res = run_tutti(["-t", "-c", "tutti.yaml"], tmp_path)
    assert res.returncode == 1
    lines = tutti_lines(res)
    assert any(l.startswith("tutti: tutti.yaml:") and "servers" in l for l in lines), \
        res.stderr


TWO_HANDLERS = """\
servers:
  - listen: ["127.0.0.1:{port}"]
    routes:
      - match: /
        return: 200
        hello: {{greeting: Hi}}
"""

NOT_IN_MODULES = """\
modules: []
servers:
  - listen: ["127.0.0.1:{port}"]
    routes:
      - match: /
        hello: {{greeting: Hi}}
"""

SIZE_WITH_SPACE = """\
limits:
  max_body_size: 10 MB
servers:
  - listen: ["127.0.0.1:{port}"]
    routes:
      - match: /
        return: 200
"""


@pytest.mark.parametrize("text,positions,message", [
    # the second handler, at 6:9
    (TWO_HANDLERS, ["6:9"],
     "route has two handlers, 'return' and 'hello'; a route has exactly one"),
    # the `modules` list (1:10) or the route key naming the module (6:9)
    (NOT_IN_MODULES, ["1:10", "6:9"],
     "module 'hello' is named in routes but not in 'modules'; add it to 'modules'"),
    (SIZE_WITH_SPACE, ["2:18"],
     "'max_body_size: 10 MB': expected a size such as 10MB"),
], ids=["two-handlers", "not-in-modules", "size-with-space"])
def test_config_error_examples(tmp_path, text, positions, message):
    write(tmp_path, text.format(port=free_port()))
    assert_config_error(run_tutti(["-t", "-c", "tutti.yaml"], tmp_path), positions, message)


def test_config_error_stops_start_up_with_exit_1(tmp_path):
    """A bad config never starts, never half-starts: no port, no pid file."""
    port = free_port()
    write(tmp_path, TWO_HANDLERS.format(port=port))
    res = run_tutti(["-c", "tutti.yaml"], tmp_path)
    assert_config_error(res, ["6:9"],
                        "route has two handlers, 'return' and 'hello'; a route has exactly one")
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
    assert not (tmp_path / "tutti.pid").exists()


def test_unknown_key_suggests_the_right_one(tmp_path):
    write(tmp_path, "worker: 2\n" + OK_CONFIG.format(port=free_port()))
    res = run_tutti(["-t", "-c", "tutti.yaml"], tmp_path)
    assert res.returncode == 1
    lines = [l for l in tutti_lines(res) if l.startswith("tutti: tutti.yaml:1:1: ")]
    assert lines, f"no error at tutti.yaml:1:1:\n{res.stderr}"
    assert "'worker'" in lines[0] and "did you mean 'workers'" in lines[0], lines[0]


def test_unknown_key_in_a_route_suggests(tmp_path):
    text = OK_CONFIG.format(port=free_port()).replace("      - match: /healthz",
                                                      "      - mach: /healthz")
    write(tmp_path, text)
    res = run_tutti(["-t", "-c", "tutti.yaml"], tmp_path)
    assert res.returncode == 1
    lines = [l for l in tutti_lines(res) if l.startswith("tutti: tutti.yaml:4:9: ")]
    assert lines and "did you mean 'match'" in lines[0], res.stderr


def test_bad_duration_names_line_and_column(tmp_path):
    write(tmp_path, "shutdown_timeout: 10 parsecs\n" + OK_CONFIG.format(port=free_port()))
    res = run_tutti(["-t", "-c", "tutti.yaml"], tmp_path)
    assert res.returncode == 1
    assert any(re.match(r"tutti: tutti\.yaml:1:(1|19): .*shutdown_timeout.*10s", l)
               for l in tutti_lines(res)), res.stderr


def test_unset_env_variable_is_an_error(tmp_path):
    text = OK_CONFIG.format(port=free_port()).replace('"ok\\n"', '"${TUTTI_TEST_UNSET_VAR}"')
    write(tmp_path, text)
    res = run_tutti(["-t", "-c", "tutti.yaml"], tmp_path, unset=["TUTTI_TEST_UNSET_VAR"])
    assert res.returncode == 1
    assert any(l.startswith("tutti: tutti.yaml:5:") and "TUTTI_TEST_UNSET_VAR" in l
               for l in tutti_lines(res)), res.stderr
    # once it is set, the same file is fine
    res = run_tutti(["-t", "-c", "tutti.yaml"], tmp_path, env={"TUTTI_TEST_UNSET_VAR": "x"})
    assert res.returncode == 0, res.stderr


# ---------------------------------------------------------------- modules

def module_dir_with(tmp_path, *names):
    d = tmp_path / "modules"
    d.mkdir(exist_ok=True)
    for n in names:
        src = broken_module(n)
        assert src.exists(), f"test module {src} not built"
        shutil.copy(src, d / f"{n}.so")
    return d


def test_wrong_abi_module_is_refused(tmp_path):
    mdir = module_dir_with(tmp_path, "badabi")
    text = f"module_path: {mdir}\nmodules: [badabi]\n" + OK_CONFIG.format(port=free_port())
    write(tmp_path, text)
    res = run_tutti(["-t", "-c", "tutti.yaml"], tmp_path)
    out = res.stderr + res.stdout
    assert res.returncode == 1, out
    assert "badabi.so: module ABI 999, this tutti speaks ABI 1; rebuild the module" in out, out


def test_wrong_abi_module_fails_start_up_with_exit_2(tmp_path):
    """Start-up (not -t) with a module that cannot load: exit 2, nothing runs."""
    mdir = module_dir_with(tmp_path, "badabi")
    port = free_port()
    write(tmp_path, f"module_path: {mdir}\nmodules: [badabi]\n" + OK_CONFIG.format(port=port))
    res = run_tutti(["-c", "tutti.yaml"], tmp_path)
    out = res.stderr + res.stdout
    assert res.returncode == 2, f"exit {res.returncode}:\n{out}"
    assert "badabi.so: module ABI 999, this tutti speaks ABI 1; rebuild the module" in out, out
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_wrong_signature_module_is_refused(tmp_path):
    mdir = module_dir_with(tmp_path, "badsig")
    write(tmp_path, f"module_path: {mdir}\nmodules: [badsig]\n" + OK_CONFIG.format(port=free_port()))
    res = run_tutti(["-t", "-c", "tutti.yaml"], tmp_path)
    out = res.stderr + res.stdout
    assert res.returncode == 1, out
    assert "badsig.so" in out and "rebuild the module" in out, out


def test_module_needing_a_missing_module_is_refused(tmp_path):
    mdir = module_dir_with(tmp_path, "needy")
    write(tmp_path, f"module_path: {mdir}\nmodules: [needy]\n" + OK_CONFIG.format(port=free_port()))
    res = run_tutti(["-t", "-c", "tutti.yaml"], tmp_path)
    out = res.stderr + res.stdout
    assert res.returncode == 1, out
    lines = [l for l in tutti_lines(res) if "needy" in l]
    assert lines, out


def test_unknown_module_name(tmp_path):
    write(tmp_path, "modules: [hello, nosuchmod]\n" + OK_CONFIG.format(port=free_port()))
    res = run_tutti(["-t", "-c", "tutti.yaml"], tmp_path)
    assert res.returncode == 1
    assert any(l.startswith("tutti: tutti.yaml:1:") and "nosuchmod" in l
               for l in tutti_lines(res)), res.stderr


def test_module_with_its_dependency_loads_and_serves(tmp_path, tutti):
    mdir = module_dir_with(tmp_path, "needy")
    hello = Path(BUILD_DIR) / "modules" / "hello" / ".libs" / "hello.so"
    shutil.copy(hello, mdir / "hello.so")
    d = tutti({"module_path": str(mdir), "modules": ["hello", "needy"],
               "servers": [{"routes": [{"match": "/n", "needy": {}},
                                       {"match": "/h/", "hello": {}}]}]})
    assert requests.get(d.url + "/n", timeout=5 * SLOW).text == "needy\n"
    assert requests.get(d.url + "/h/x", timeout=5 * SLOW).text == "Hello, x!\n"


# ---------------------------------------------------------------- start-up failures

def test_port_in_use_exits_2_naming_cause_and_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        write(tmp_path, OK_CONFIG.format(port=port))
        res = run_tutti(["-c", "tutti.yaml"], tmp_path)
    out = res.stderr + res.stdout
    assert res.returncode == 2, f"exit {res.returncode}:\n{out}"
    lines = [l for l in out.splitlines() if "in use" in l.lower()]
    assert len(lines) == 1, f"expected one line naming the cause:\n{out}"
    assert re.search(r"tutti\.yaml:2:\d+:", lines[0]), \
        f"the line does not name the listen line (tutti.yaml:2:...): {lines[0]}"
    assert f"127.0.0.1:{port}" in lines[0], lines[0]
    assert not (tmp_path / "tutti.pid").exists()


# ---------------------------------------------------------------- -s

def test_signal_reload_and_stop_through_pid_file(tutti):
    d = tutti({"servers": [{"routes": [{"match": "/v", "return": {"status": 200, "body": "one"}}]}]})
    pid_file = d.config_path.parent / "tutti.pid"
    wait_for(pid_file.exists, 5 * SLOW, "the pid file")
    assert int(pid_file.read_text().strip()) == d.pid

    old = set(d.worker_pids())
    d.write_config({"servers": [{"routes": [{"match": "/v", "return": {"status": 200, "body": "two"}}]}]})
    res = run_tutti(["-s", "reload", "-c", str(d.config_path)], d.dir)
    assert res.returncode == 0, res.stderr
    wait_for(lambda: set(d.worker_pids()) - old, 10 * SLOW, "new workers")
    wait_for(lambda: requests.get(d.url + "/v", timeout=5).text == "two", 5 * SLOW,
             "the reloaded body")

    res = run_tutti(["-s", "stop", "-c", str(d.config_path)], d.dir)
    assert res.returncode == 0, res.stderr
    assert d.wait_exit(10) == 0
    assert not pid_file.exists(), "pid file left behind after a clean stop"


def test_signal_quit_through_pid_file(tutti):
    d = tutti({"servers": [{"routes": [{"match": "/", "return": 204}]}]})
    wait_for((d.dir / "tutti.pid").exists, 5 * SLOW, "the pid file")
    res = run_tutti(["-s", "quit", "-c", str(d.config_path)], d.dir)
    assert res.returncode == 0, res.stderr
    assert d.wait_exit(10) == 0


def test_signal_without_running_master_fails(tmp_path):
    write(tmp_path, OK_CONFIG.format(port=free_port()))
    res = run_tutti(["-s", "stop", "-c", "tutti.yaml"], tmp_path)
    assert res.returncode != 0
    assert "pid" in (res.stderr + res.stdout).lower(), res.stderr


def test_signal_unknown_name_is_a_usage_error(tmp_path):
    write(tmp_path, OK_CONFIG.format(port=free_port()))
    res = run_tutti(["-s", "explode", "-c", "tutti.yaml"], tmp_path)
    assert res.returncode == 1
    assert "explode" in res.stderr + res.stdout


# ---------------------------------------------------------------- -d

@pytest.mark.parametrize("how", ["-d", "daemon: true"])
def test_detach(tmp_path, foreign, how):
    port = free_port()
    extra = "daemon: true\n" if how == "daemon: true" else ""
    write(tmp_path, OK_CONFIG.format(port=port) + extra +
          f"error_log: {tmp_path}/error.log\naccess_log: {tmp_path}/access.log\n")
    args = ["-d"] if how == "-d" else []
    res = run_tutti([*args, "-c", "tutti.yaml"], tmp_path, timeout=15)
    pid_file = tmp_path / "tutti.pid"
    if pid_file.exists():
        foreign(int(pid_file.read_text().strip()))
    assert res.returncode == 0, res.stderr
    assert pid_file.exists(), "no pid file after -d"
    pid = int(pid_file.read_text().strip())
    st = proc_stat(pid)
    assert st is not None, "the pid in the pid file is not running"
    assert st[0] != os.getpid(), "the master is still our child: it did not detach"
    r = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5 * SLOW)
    assert (r.status_code, r.text) == (200, "ok\n")

    res = run_tutti(["-s", "stop", "-c", "tutti.yaml"], tmp_path)
    assert res.returncode == 0, res.stderr
    wait_for(lambda: not alive(pid, st[1]), 10 * SLOW, "the detached master to exit")
    report = (tmp_path / "error.log").read_text(errors="replace") \
        if (tmp_path / "error.log").exists() else ""
    assert not sanitizer_findings(report), report


def test_detach_with_bad_port_reports_and_exits_2(tmp_path, foreign):
    """-d returns only after start-up succeeded: a failure is seen by the caller."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        write(tmp_path, OK_CONFIG.format(port=port))
        res = run_tutti(["-d", "-c", "tutti.yaml"], tmp_path, timeout=15)
    pid_file = tmp_path / "tutti.pid"
    if pid_file.exists():
        foreign(int(pid_file.read_text().strip()))
    assert res.returncode == 2, res.stderr
    assert "in use" in (res.stderr + res.stdout).lower()

"""Fixtures of the integration suite: the real tutti daemon on a loopback port.

Run by `./dev.sh test` as `/usr/bin/python3 -m pytest -q tests/integration`
with TUTTI_BIN (an installed tutti whose module path holds hello.so),
TUTTI_BUILD_DIR, TUTTI_SRC_DIR and, for the ASan+UBSan build, TUTTI_SANITIZED=1.
"""
import os

import pytest

import harness


def pytest_configure(config):
    if not harness.TUTTI_BIN or not os.access(harness.TUTTI_BIN, os.X_OK):
        raise pytest.UsageError(
            "TUTTI_BIN must name the tutti binary (installed, so its module path holds "
            "hello.so); run the suite through ./dev.sh test")
    config.addinivalue_line("markers", "slow: a long test (big transfers); CI runs it too")


def _check_sanitizers(d):
    report = d.sanitizer_report()
    if report:
        pytest.fail(f"sanitizer report from tutti (config {d.config_path}):\n{report}",
                    pytrace=False)


@pytest.fixture
def tutti(tmp_path):
    """Factory: tutti(config, **kw) starts a daemon and returns a harness.Daemon
    with .url .port .pid .config_path .access_log .stderr_text() .reload()
    .signal(sig) .worker_pids(). Each call gets its own directory under
    tmp_path; every daemon is stopped at the end (TERM, then KILL)."""
    daemons = []

    def start(config, *, wait=True, port=None, subdir=None, **kw):
        d = harness.Daemon(tmp_path / (subdir or f"d{len(daemons)}"), config, **kw)
        daemons.append(d)
        return d.start(port=port, wait=wait)

    start.daemons = daemons
    yield start
    for d in daemons:
        d.stop()
    for d in daemons:
        _check_sanitizers(d)


@pytest.fixture
def foreign(tmp_path):
    """For daemons that detach (-d): adopt(pid) makes sure they are stopped."""
    adopted = []

    def adopt(pid):
        st = harness.proc_stat(pid)
        if st is not None:
            adopted.append((pid, st[1]))

    yield adopt
    for pid, starttime in adopted:
        harness.stop_foreign(pid, starttime)


@pytest.fixture(scope="module")
def shared_daemon(tmp_path_factory):
    """Factory for one daemon shared by the tests of a module (many requests,
    one start-up). Tests must not change its config or signal it."""
    daemons = []

    def start(config, **kw):
        d = harness.Daemon(tmp_path_factory.mktemp("shared"), config, **kw)
        daemons.append(d)
        return d.start()

    yield start
    for d in daemons:
        d.stop()
    for d in daemons:
        _check_sanitizers(d)

"""Start the real tutti daemon on a loopback port and drive it.

Everything here is bounded in time: every wait has a deadline, every socket a
timeout, and every process this module starts is stopped by its PID (never by
name) when the test ends, also when it fails.
"""
import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

TUTTI_BIN = os.environ.get("TUTTI_BIN", "")
BUILD_DIR = os.environ.get("TUTTI_BUILD_DIR", "")
SRC_DIR = os.environ.get("TUTTI_SRC_DIR", "")
SANITIZED = os.environ.get("TUTTI_SANITIZED") == "1"

# Sanitizers slow everything down; deadlines grow with them.
SLOW = 3.0 if SANITIZED else 1.0

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def broken_module(name):
    """Path of a module that is broken on purpose (badabi, badsig, needy)."""
    return Path(BUILD_DIR) / "tests" / "modules" / ".libs" / f"{name}.so"


def free_port():
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, what, interval=0.05):
    """Poll pred() until it returns something truthy; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


def rss_kb(pid):
    """The resident memory of a process, in kB (VmRSS)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def assert_same_workers(d):
    """The workers d started with (d.first_workers) still serve: none
    crashed or was replaced."""
    now = d.worker_pids()
    assert now == d.first_workers, \
        f"workers changed from {d.first_workers} to {now}; stderr:\n{d.stderr_text()[-3000:]}"


def config_error_line(res, lines):
    """The `tutti -t` error line of res (a failed check of tutti.yaml) that
    points at one of lines, as "tutti: tutti.yaml:LINE:COL: ..."."""
    out = res.stderr + res.stdout
    assert res.returncode == 1, f"exit {res.returncode}; output:\n{out}"
    got = [l for l in out.splitlines()
           if re.match(r"^tutti: tutti\.yaml:(\d+):(\d+): \S", l)]
    assert got, f"no 'tutti: tutti.yaml:LINE:COL: ...' line in:\n{out}"
    hits = [l for l in got if int(re.match(r"^tutti: tutti\.yaml:(\d+):", l).group(1)) in lines]
    assert hits, f"error not at line(s) {lines}:\n{out}"
    return hits[0]


def sanitizer_findings(text):
    """The sanitizer reports in text, or '' when there are none."""
    if not SANITIZED:
        return ""
    hits = [m for m in SANITIZER_MARKERS if m in text]
    return text if hits else ""


# ---------------------------------------------------------------- YAML

class Quoted(str):
    """A string that must be written quoted in the YAML."""


_PLAIN = re.compile(r"^[A-Za-z0-9_/.$][^\n\r\t#\"'{}\[\],&*!|>%@`]*\Z")


def _scalar(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return str(v)
    s = str(v)
    if (not isinstance(v, Quoted) and _PLAIN.match(s) and ": " not in s
            and not s.endswith((":", " ")) and " #" not in s):
        return s
    return json.dumps(s)  # a JSON string is a valid double-quoted YAML scalar


def to_yaml(obj, indent=0):
    """Block-style YAML for dicts, lists and scalars, as a person writes it."""
    pad = "  " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                out.append(f"{pad}{_scalar(k)}:\n{to_yaml(v, indent + 1)}")
            elif isinstance(v, dict):
                out.append(f"{pad}{_scalar(k)}: {{}}\n")
            elif isinstance(v, list):
                out.append(f"{pad}{_scalar(k)}: []\n")
            else:
                out.append(f"{pad}{_scalar(k)}: {_scalar(v)}\n")
        return "".join(out)
    if isinstance(obj, list):
        for item in obj:
            if isinstance(item, dict) and item:
                block = to_yaml(item, indent + 1)
                out.append(pad + "- " + block[len(pad) + 2:])
            elif isinstance(item, list) and item:
                out.append(f"{pad}- [{', '.join(_scalar(x) for x in item)}]\n")
            else:
                out.append(f"{pad}- {_scalar(item)}\n")
        return "".join(out)
    return f"{pad}{_scalar(obj)}\n"


# ---------------------------------------------------------------- /proc

def proc_stat(pid):
    """(ppid, starttime, state) of a live process, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    # comm may hold spaces and parentheses: split after the last ')'
    rest = data[data.rindex(")") + 2:].split()
    state, ppid, starttime = rest[0], int(rest[1]), int(rest[19])
    if state in ("Z", "X"):
        return None
    return ppid, starttime, state


def children_of(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        st = proc_stat(int(entry))
        if st is not None and st[0] == pid:
            kids.append(int(entry))
    return sorted(kids)


def alive(pid, starttime=None):
    st = proc_stat(pid)
    return st is not None and (starttime is None or st[1] == starttime)


def kill_quietly(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


# ---------------------------------------------------------------- the CLI

def run_tutti(args, cwd, timeout=20, env=None, unset=()):
    """Run `tutti ARGS` to completion; returns CompletedProcess (text).

    If it does not end in time (it started serving by mistake), it and its
    children are killed and the test fails."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    for name in unset:
        full_env.pop(name, None)
    p = subprocess.Popen([TUTTI_BIN, *args], cwd=str(cwd), env=full_env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=timeout * SLOW)
    except subprocess.TimeoutExpired:
        kids = children_of(p.pid)
        p.kill()
        for k in kids:
            kill_quietly(k, signal.SIGKILL)
        out, err = p.communicate()
        raise AssertionError(f"`tutti {' '.join(args)}` did not exit within "
                             f"{timeout * SLOW:.0f}s; stderr:\n{err}")
    report = sanitizer_findings(out + err)
    assert not report, f"sanitizer report from `tutti {' '.join(args)}`:\n{report}"
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def stop_foreign(pid, starttime):
    """Stop a daemon we did not fork ourselves (tutti -d): TERM, then KILL."""
    if not alive(pid, starttime):
        return
    kids = [(k, proc_stat(k)) for k in children_of(pid)]
    kill_quietly(pid, signal.SIGTERM)
    try:
        wait_for(lambda: not alive(pid, starttime), STOP_TIMEOUT, f"pid {pid} to exit")
    except AssertionError:
        kill_quietly(pid, signal.SIGKILL)
    for k, st in kids:
        if st is not None and alive(k, st[1]):
            kill_quietly(k, signal.SIGKILL)


# ---------------------------------------------------------------- the daemon

class StartError(AssertionError):
    pass


class Daemon:
    """One tutti master started with `tutti -c CONFIG` in a temp directory.

    config: a dict (written as YAML; servers without `listen` get the
    daemon's loopback port, and `access_log` defaults to a file in the
    directory) or text (with @PORT@, @DIR@ and @ACCESS_LOG@ replaced)."""

    def __init__(self, directory, config, *, name="tutti.yaml", env=None,
                 args=(), access_log=True):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.dir / name
        self.access_log = self.dir / "access.log"
        self.stdout_path = self.dir / "tutti.stdout"
        self.stderr_path = self.dir / "tutti.stderr"
        self.env = env or {}
        self.args = list(args)
        self._want_access_log = access_log
        self._config = config
        self.port = None
        self.proc = None
        self.returncode = None
        self._seen = {}             # worker pid -> starttime, for cleanup
        self.error_log_path = None

    # ---- config

    def render(self, config):
        """Turn config (dict or text) into the YAML text for this daemon."""
        if not isinstance(config, str):
            config = self._render_dict(config)
        text = config.replace("@PORT@", str(self.port))
        text = text.replace("@DIR@", str(self.dir))
        return text.replace("@ACCESS_LOG@", str(self.access_log))

    def _render_dict(self, config):
        cfg = json.loads(json.dumps(config))     # deep copy
        for s in cfg.get("servers", []):
            s.setdefault("listen", [f"127.0.0.1:{self.port}"])
        if self._want_access_log:
            cfg.setdefault("access_log", str(self.access_log))
        el = cfg.get("error_log")
        if el and el != "stderr":
            self.error_log_path = Path(el) if os.path.isabs(el) else self.dir / el
        return to_yaml(cfg)

    def write_config(self, config=None):
        if config is not None:
            self._config = config
        self.config_path.write_text(self.render(self._config))

    # ---- life

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self):
        return self.proc.pid

    def start(self, port=None, wait=True):
        """Start; with wait, return once the port accepts connections and a
        worker exists (or raise StartError with the daemon's stderr)."""
        for _ in range(3):
            self.port = port or free_port()
            self.write_config()
            env = dict(os.environ)
            env.update(self.env)
            with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
                self.proc = subprocess.Popen(
                    [TUTTI_BIN, *self.args, "-c", str(self.config_path)],
                    cwd=str(self.dir), env=env, stdin=subprocess.DEVNULL,
                    stdout=out, stderr=err)
            if not wait:
                return self
            try:
                self._wait_ready()
                return self
            except StartError:
                # another process grabbed our free port in the meantime
                if port is None and self.proc.poll() is not None and \
                        "in use" in self.stderr_text().lower():
                    continue
                raise
        raise StartError("could not find a free port in 3 tries")

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT * SLOW
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.returncode = rc
                raise StartError(f"tutti exited with status {rc} during start-up; "
                                 f"stderr:\n{self.stderr_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                if self.worker_pids():
                    return
            except OSError:
                pass
            if time.monotonic() >= deadline:
                raise StartError(f"tutti did not accept on port {self.port} within "
                                 f"{START_TIMEOUT * SLOW:.0f}s; stderr:\n{self.stderr_text()}")
            time.sleep(0.05)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout):
        """The master's exit status; fails if it is still running after timeout."""
        try:
            self.returncode = self.proc.wait(timeout=timeout * SLOW)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"tutti (pid {self.proc.pid}) still running after "
                                 f"{timeout * SLOW:.1f}s; stderr:\n{self.stderr_text()}")
        return self.returncode

    def signal(self, sig):
        self.proc.send_signal(sig)

    def worker_pids(self):
        """PIDs of the master's children (its workers), sorted."""
        if self.proc is None:
            return []
        pids = children_of(self.proc.pid)
        for p in pids:
            st = proc_stat(p)
            if st is not None:
                self._seen.setdefault(p, st[1])
        return pids

    def wait_workers(self, n, timeout=10, exclude=()):
        """Wait until exactly n workers run that are not in exclude."""
        def check():
            now = [p for p in self.worker_pids() if p not in exclude]
            return now if len(now) == n else None
        return wait_for(check, timeout * SLOW, f"{n} worker(s) besides {sorted(exclude)}")

    def reload(self, config=None, timeout=10):
        """Write config (if given), send HUP, and wait until new workers run."""
        old = set(self.worker_pids())
        if config is not None:
            self.write_config(config)
        self.signal(signal.SIGHUP)
        wait_for(lambda: set(self.worker_pids()) - old, timeout * SLOW,
                 "new workers after SIGHUP")

    def stop(self):
        """TERM, up to 10 s, then KILL; then any worker left behind."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.worker_pids()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.returncode = self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.returncode = self.proc.wait(timeout=STOP_TIMEOUT)
        else:
            self.returncode = self.proc.returncode
        # workers die with their master; give them a moment, then make sure
        leftovers = [(p, t) for p, t in self._seen.items() if alive(p, t)]
        deadline = time.monotonic() + 2 * SLOW
        while leftovers and time.monotonic() < deadline:
            time.sleep(0.05)
            leftovers = [(p, t) for p, t in leftovers if alive(p, t)]
        for p, _ in leftovers:
            kill_quietly(p, signal.SIGKILL)

    # ---- what it printed

    def stderr_text(self):
        return _read(self.stderr_path)

    def stdout_text(self):
        return _read(self.stdout_path)

    def error_log_text(self):
        return _read(self.error_log_path) if self.error_log_path else self.stderr_text()

    def access_lines(self):
        return [l for l in _read(self.access_log).splitlines() if l.strip()]

    def wait_access_lines(self, n, timeout=5):
        """Wait until the access log holds at least n lines; return them all."""
        return wait_for(lambda: (lambda ls: ls if len(ls) >= n else None)(self.access_lines()),
                        timeout * SLOW, f"{n} access log line(s) in {self.access_log}")

    def sanitizer_report(self):
        text = self.stderr_text() + self.stdout_text()
        if self.error_log_path:
            text += _read(self.error_log_path)
        return sanitizer_findings(text)


def _read(path):
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


# ---------------------------------------------------------------- access log

_QUOTED = r'(?:[^"\\]|\\.)*'       # inside a quoted field: \" and \xNN escapes
COMBINED = re.compile(
    r'^(?P<addr>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] '
    r'"(?P<method>\S+) (?P<target>\S+) (?P<proto>[^"]+)" '
    r'(?P<status>\d{3}) (?P<bytes>\d+|-) "(?P<referer>' + _QUOTED + r')" "(?P<ua>' + _QUOTED + r')"'
    r'(?P<rest>.*)$')


def parse_combined(line):
    m = COMBINED.match(line)
    assert m, f"not a combined access log line: {line!r}"
    return m.groupdict()

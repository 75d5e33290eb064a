"""Reusable helpers for resumelb's end-to-end tests (worker and load-balancer alike).

Run the tests with Debian's /usr/bin/python3 (not the pyenv python3 on PATH): the worker
embeds Debian's CPython and the test apps need Debian's Flask/Django/PasteDeploy.

* Binaries are looked up in $RLB_BUILD_DIR (default: ../../build relative to this file):
  ``binary('zkworker')``.
* ``Process`` starts a binary with args/env/cwd, sends its stdout+stderr to a log file,
  waits for a regex in that log with a deadline (polling, no fixed sleeps), and stops it
  with a deadline, returning the exit code.
* ``Sandbox`` is a temp dir plus the processes started in it; ``cleanup()`` kills whatever
  is still running and removes the dir.
* ``E2ETestCase`` gives each test a sandbox (``self.sandbox``, created on first use) and
  each class a shared one (``cls.class_sandbox()``), both cleaned up automatically. On a
  failure the tail of every process log is printed (and the dir kept if RLB_E2E_KEEP=1).
* ``wait_for(predicate, timeout)`` polls until the predicate is truthy.
* ``free_port()`` returns a TCP port nobody uses (at the time of the call), below the
  ephemeral range so that a server can be restarted on it.
* ``environ(...)`` builds a CGI environ the way a load balancer sends it, and
  ``request(conn, rno, ...)`` sends one request and reads its response.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from typing import Callable, Iterable, Mapping, Optional, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.abspath(os.path.join(HERE, "..", ".."))
APPS_DIR = os.path.join(SOURCE_DIR, "tests", "apps")
PYTHON = "/usr/bin/python3"

sys.path.insert(0, HERE)
import rlbproto  # noqa: E402

DEFAULT_TIMEOUT = float(os.environ.get("RLB_E2E_TIMEOUT", "20"))
LISTENING_RE = (r"zkworker listening on (?P<host>[^\s:]+|\[[^\]]+\]):(?P<port>\d+) "
                r"\(pid (?P<pid>\d+)")

# Where each executable lives under the build dir (searched first; then a walk).
_KNOWN_LOCATIONS = {
    "zkworker": "zkworker/zkworker",
    "get-worker-resume": "zkworker/get-worker-resume",
    "resumelb": "zklb/resumelb",
    "zkresumelb": "zklb/zkresumelb",
    "get-lb-status": "status/get-lb-status",
}


# --------------------------------------------------------------------------- locating

def build_dir() -> str:
    d = os.environ.get("RLB_BUILD_DIR") or os.path.join(SOURCE_DIR, "build")
    return os.path.abspath(d)


def binary(name: str) -> str:
    """The path of executable `name` in the build dir; raises if it is not built."""
    root = build_dir()
    known = _KNOWN_LOCATIONS.get(name)
    if known and os.access(os.path.join(root, known), os.X_OK):
        return os.path.join(root, known)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "CMakeFiles" and not d.startswith(".")]
        if name in filenames:
            path = os.path.join(dirpath, name)
            if os.access(path, os.X_OK) and os.path.isfile(path):
                return path
    raise FileNotFoundError(f"{name} not found under {root} (set RLB_BUILD_DIR or build it)")


# --------------------------------------------------------------------------- polling

class WaitTimeout(AssertionError):
    """wait_for gave up (an AssertionError, so a test reports it as a failure)."""


def wait_for(predicate: Callable[[], object], timeout: float = DEFAULT_TIMEOUT,
             interval: float = 0.01, message: str | Callable[[], str] = "") -> object:
    """Polls predicate() until it returns something truthy and returns that value.

    Exceptions from the predicate count as "not yet" until the deadline, after which the
    last one is chained to the WaitTimeout. The poll interval grows from `interval` to
    at most 0.1 s.
    """
    deadline = time.monotonic() + timeout
    last_exc = None
    delay = interval
    while True:
        try:
            value = predicate()
            if value:
                return value
            last_exc = None
        except Exception as e:  # noqa: BLE001 - polled condition
            last_exc = e
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise WaitTimeout(f"timed out after {timeout} s waiting for "
                              f"{text or getattr(predicate, '__name__', 'a condition')}"
                              + (f" (last error: {last_exc!r})" if last_exc else "")) from last_exc
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 0.1)


def _port_span() -> range:
    """The ports below the kernel's ephemeral range (ip_local_port_range), from 10000."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return range(10000, max(low, 10001))


_next_port = None  # walks _port_span() from a random start, one step per free_port()


def free_port(host: str = "127.0.0.1") -> int:
    """A port no one uses right now (bound and released), below the ephemeral range.

    Tests restart servers on the same port (a worker after SIGTERM or SIGKILL). A port in
    the ephemeral range can be taken in between by any outgoing connection that happens to
    get it as its local port: a test client's, or the LB's own reconnect to that very port
    (a loopback self-connect). Below the range only an explicit bind takes a port; walking
    the span from a random start keeps concurrent processes' choices apart."""
    global _next_port
    span = _port_span()
    if _next_port is None:
        _next_port = random.SystemRandom().randrange(len(span))
    for _ in range(1000):
        port = span[_next_port % len(span)]
        _next_port += 1
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {span}")


def read_text(path: str, default: str = "") -> str:
    """The file's text, or `default` if it does not exist (yet)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return default


def port_refuses(port: int, host: str = "127.0.0.1") -> bool:
    """True if connecting to host:port is refused."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


# --------------------------------------------------------------------------- processes

def _die_with_parent() -> None:
    """preexec_fn: the child gets SIGKILL if the test runner dies (e.g. a ctest timeout),
    so no worker outlives its test."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort
        pass


def kill_group(popen: subprocess.Popen) -> None:
    """SIGKILL to a running child's process group (the child itself if the group is gone),
    then reaps it (waiting at most 10 s)."""
    try:
        os.killpg(popen.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            popen.kill()
        except ProcessLookupError:
            pass
    try:
        popen.wait(10)
    except subprocess.TimeoutExpired:
        pass


class Process:
    """A child process whose stdout+stderr go to a log file.

    The child runs in its own process group (so stray grandchildren can be killed) with
    stdin from /dev/null, and is killed if the test runner dies.
    """

    def __init__(self, argv: Sequence[str], log_path: str, env: Optional[Mapping[str, str]] = None,
                 cwd: Optional[str] = None, name: Optional[str] = None):
        self.argv = [str(a) for a in argv]
        self.name = name or os.path.basename(self.argv[0])
        self.log_path = log_path
        self._log = open(log_path, "wb")
        full_env = dict(os.environ)
        if env:
            for k, v in env.items():
                if v is None:
                    full_env.pop(k, None)
                else:
                    full_env[k] = str(v)
        self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                      stderr=subprocess.STDOUT, env=full_env, cwd=cwd,
                                      start_new_session=True, preexec_fn=_die_with_parent)
        self.pid = self.popen.pid

    # -- state --
    @property
    def returncode(self) -> Optional[int]:
        return self.popen.poll()

    def alive(self) -> bool:
        return self.popen.poll() is None

    # -- the log --
    def output(self) -> str:
        """Everything the process has written so far (decoded leniently)."""
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def mark(self) -> int:
        """A position in the log: pass it as `since` to only look at later output."""
        return os.path.getsize(self.log_path)

    def output_since(self, since: int) -> str:
        with open(self.log_path, "rb") as f:
            f.seek(since)
            return f.read().decode("utf-8", "replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def wait_for_log(self, pattern: str, timeout: float = DEFAULT_TIMEOUT, since: int = 0,
                     flags: int = re.MULTILINE) -> re.Match:
        """Waits until `pattern` (a regex) appears in the log after position `since`.

        Fails early (with the log tail) if the process exits without printing it.
        """
        rx = re.compile(pattern, flags)
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            exited = self.popen.poll() is not None
            m = rx.search(self.output_since(since))
            if m:
                return m
            if exited:
                raise AssertionError(f"{self.name} exited with {self.popen.returncode} before "
                                     f"logging /{pattern}/; log tail:\n{self.tail()}")
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"{self.name} did not log /{pattern}/ within {timeout} s; "
                                  f"log tail:\n{self.tail()}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.05)

    def log_lines(self, pattern: str, since: int = 0) -> list[str]:
        rx = re.compile(pattern)
        return [line for line in self.output_since(since).splitlines() if rx.search(line)]

    # -- /proc --
    def fd_count(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def fd_targets(self) -> list[str]:
        out = []
        for fd in os.listdir(f"/proc/{self.pid}/fd"):
            try:
                out.append(os.readlink(f"/proc/{self.pid}/fd/{fd}"))
            except OSError:
                pass
        return out

    def thread_count(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
        raise RuntimeError("no Threads: line")

    # -- stopping --
    def send_signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)

    def wait(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        """Waits for the exit; raises WaitTimeout (leaving it running) on the deadline."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise WaitTimeout(f"{self.name} (pid {self.pid}) still running after {timeout} s; "
                              f"log tail:\n{self.tail()}") from None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = DEFAULT_TIMEOUT) -> int:
        """Sends `sig` and waits for the exit code; on the deadline kills it and raises."""
        if self.popen.poll() is not None:
            return self.popen.returncode
        self.popen.send_signal(sig)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise WaitTimeout(f"{self.name} (pid {self.pid}) did not exit within {timeout} s "
                              f"of signal {sig}; killed it. Log tail:\n{self.tail()}") from None

    def kill(self) -> None:
        """SIGKILL to its process group; reaps it."""
        if self.popen.poll() is None:
            kill_group(self.popen)
        else:
            # The leader is gone; its group may not be.
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def close_log(self) -> None:
        if not self._log.closed:
            self._log.close()


class Sandbox:
    """A private temp dir and the processes started in it."""

    def __init__(self, prefix: str = "rlb-e2e-"):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.processes: list[Process] = []
        self.connections: list[rlbproto.Connection] = []
        self._names: dict[str, int] = {}

    def path(self, *parts: str) -> str:
        return os.path.join(self.dir, *parts)

    def mkdir(self, *parts: str) -> str:
        p = self.path(*parts)
        os.makedirs(p, exist_ok=True)
        return p

    def write(self, name: str, text: str | bytes) -> str:
        p = self.path(name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(text.encode() if isinstance(text, str) else text)
        return p

    def _unique(self, name: str) -> str:
        n = self._names.get(name, 0) + 1
        self._names[name] = n
        return name if n == 1 else f"{name}-{n}"

    def start(self, argv: Sequence[str], name: Optional[str] = None,
              env: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None) -> Process:
        name = self._unique(name or os.path.basename(str(argv[0])))
        proc = Process(argv, self.path(name + ".log"), env=env, cwd=cwd or self.dir, name=name)
        self.processes.append(proc)
        return proc

    def start_worker(self, app: Optional[str] = "plain_app:application", threads: int = 1,
                     extra_args: Iterable[str] = (), env: Optional[Mapping[str, str]] = None,
                     config: Optional[str] = None, pythonpath: Optional[str] = APPS_DIR,
                     cwd: Optional[str] = None, name: str = "zkworker",
                     timeout: float = DEFAULT_TIMEOUT) -> tuple[Process, int]:
        """Starts zkworker on 127.0.0.1:free_port() and waits for its 'listening' line (a
        port outside the ephemeral range, so the worker can be restarted on it).

        With `config` (a Paste Deploy ini path) the worker is started as
        `zkworker CONFIG` and `app`/`threads`/address come from the file unless given in
        extra_args. Returns (process, port).
        """
        argv = [binary("zkworker")]
        if config is not None:
            argv.append(config)
        else:
            argv += [f"--app={app}", f"--address=127.0.0.1:{free_port()}",
                     f"--threads={threads}"]
        if pythonpath:
            argv.append(f"--pythonpath={pythonpath}")
        argv += list(extra_args)
        proc = self.start(argv, name=name, env=env, cwd=cwd)
        m = proc.wait_for_log(LISTENING_RE, timeout=timeout)
        if int(m.group("pid")) != proc.pid:
            raise AssertionError(f"listening line names pid {m.group('pid')}, not {proc.pid}")
        return proc, int(m.group("port"))

    def connect(self, port: int, host: str = "127.0.0.1", timeout: float = DEFAULT_TIMEOUT,
                handshake: bool = True, **kwargs) -> rlbproto.Connection:
        """An LB-side connection (closed at cleanup); with handshake, the worker's HELLO and
        first RESUME are read (conn.hello, conn.first_resume)."""
        conn = rlbproto.Connection(host, port, timeout=timeout, **kwargs)
        self.connections.append(conn)
        if handshake:
            conn.hello, conn.first_resume = conn.read_hello_and_resume()
        return conn

    def dump(self, stream=None, lines: int = 60) -> None:
        stream = stream or sys.stderr
        for p in self.processes:
            try:
                tail = p.tail(lines)
            except OSError:
                continue
            stream.write(f"\n----- {p.name} (pid {p.pid}, exit {p.returncode}) "
                         f"log {p.log_path}, last {lines} lines -----\n{tail}\n")
        stream.flush()

    def cleanup(self, keep: bool = False) -> None:
        for c in self.connections:
            c.close()
        for p in self.processes:
            p.kill()
            p.close_log()
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def run_command(argv: Sequence[str], timeout: float = DEFAULT_TIMEOUT,
                env: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None,
                ) -> subprocess.CompletedProcess:
    """Runs a short-lived command; stdout and stderr captured separately as text."""
    full_env = dict(os.environ)
    if env:
        full_env.update({k: str(v) for k, v in env.items()})
    return subprocess.run([str(a) for a in argv], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, errors="replace", timeout=timeout,
                          env=full_env, cwd=cwd)


# --------------------------------------------------------------------------- requests

def environ(path: str = "/", method: str = "GET", query: str = "",
            body: Optional[bytes] = None, headers: Optional[Mapping[str, str]] = None,
            content_length: Optional[bool] = None, **extra: str) -> dict:
    """A CGI environ as an LB sends it (all values strings). `headers` become HTTP_*;
    CONTENT_LENGTH is set for a body unless content_length=False."""
    env = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "localhost:8080",
    }
    if body is not None and content_length is not False:
        env["CONTENT_LENGTH"] = str(len(body))
    if content_length is True and body is None:
        env["CONTENT_LENGTH"] = "0"
    for k, v in (headers or {}).items():
        key = k.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            env[key] = v
        else:
            env["HTTP_" + key] = v
    env.update(extra)
    return env


def split_path(url: str) -> tuple[str, str]:
    path, _, query = url.partition("?")
    return path, query


def request(conn: rlbproto.Connection, rno: int, url: str, method: str = "GET",
            body: Optional[bytes] = None, rclass: Optional[str] = None,
            headers: Optional[Mapping[str, str]] = None, timeout: Optional[float] = None,
            **extra: str):
    """Sends one whole request for `url` (path?query) and reads its response: a Response
    (status, header_list, headers {lower name: last value}, body, outcome, code)."""
    path, query = split_path(url)
    env = environ(path, method=method, query=query, body=body, headers=headers, **extra)
    conn.send_request(rno, rclass if rclass is not None else path, env, body=body)
    status, hdrs, data, outcome = conn.read_response(rno, timeout=timeout)
    return Response(status, hdrs, data, outcome)


class Response:
    def __init__(self, status, header_list, body, outcome):
        self.status = status
        self.header_list = header_list
        self.headers = {k.lower(): v for k, v in header_list}
        self.body = body
        self.outcome = outcome

    @property
    def code(self) -> Optional[int]:
        return int(self.status[:3]) if self.status else None

    def __repr__(self):
        return (f"Response({self.status!r}, {self.header_list!r}, {self.body[:200]!r}"
                f"{'...' if len(self.body) > 200 else ''}, {self.outcome!r})")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- app data

_SEED = hashlib.sha256(b"resumelb").digest() * 2048   # plain_app's /big pattern (64 KiB)


def big_sha256(size: int, chunk: int = 65536) -> str:
    """sha256 of plain_app's /big?size=SIZE&chunk=CHUNK answer (each chunk is the start of
    the same 64 KiB pattern)."""
    h = hashlib.sha256()
    left = size
    while left > 0:
        n = min(left, chunk, len(_SEED))
        h.update(_SEED[:n])
        left -= n
    return h.hexdigest()


def big_body(size: int, chunk: int = 65536) -> bytes:
    piece = _SEED[:min(chunk, len(_SEED))]
    reps = size // len(piece) + 1
    return (piece * reps)[:size]


def drain_until(conn: rlbproto.Connection, predicate, timeout: float = DEFAULT_TIMEOUT):
    """Reads frames (pending ones first) until predicate(frame) is true; returns
    (that frame, the frames read before it)."""
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise WaitTimeout(f"no matching frame within {timeout} s; saw {seen[-10:]!r}")
        frame = conn.read_frame(timeout=left)
        if predicate(frame):
            return frame, seen
        seen.append(frame)


def keepalive_roundtrip(conn: rlbproto.Connection, timeout: float = DEFAULT_TIMEOUT):
    """Sends KEEPALIVE and returns the frames that arrived before the KEEPALIVE answer
    (the worker answers in order, so everything queued before it is flushed first)."""
    conn.send_keepalive()
    _, before = drain_until(conn, lambda f: f[0] == 0 and f[1] == "KEEPALIVE", timeout)
    return before


# --------------------------------------------------------------------------- test case

class E2ETestCase(unittest.TestCase):
    """Base class: a per-test sandbox (self.sandbox) and a per-class one
    (cls.class_sandbox()), cleaned up (processes killed, dirs removed) automatically."""

    maxDiff = None

    @property
    def sandbox(self) -> Sandbox:
        sb = self.__dict__.get("_sandbox")
        if sb is None:
            sb = Sandbox(prefix=f"rlb-{type(self).__name__}-{self._testMethodName}-"[:60])
            self.__dict__["_sandbox"] = sb
            self.addCleanup(self._cleanup_sandbox)
        return sb

    @classmethod
    def class_sandbox(cls) -> Sandbox:
        sb = cls.__dict__.get("_class_sandbox")
        if sb is None:
            sb = Sandbox(prefix=f"rlb-{cls.__name__}-")
            cls._class_sandbox = sb

            def cleanup():
                sb.cleanup(keep=bool(os.environ.get("RLB_E2E_KEEP")))
                cls._class_sandbox = None
            cls.addClassCleanup(cleanup)
        return sb

    def _failed(self) -> bool:
        # Only meaningful before the cleanups run (each cleanup resets outcome.success).
        outcome = getattr(self, "_outcome", None)
        return outcome is not None and not getattr(outcome, "success", True)

    def _cleanup_sandbox(self) -> None:
        sb = self.__dict__.pop("_sandbox")
        keep = bool(os.environ.get("RLB_E2E_KEEP"))
        if self.__dict__.get("_test_failed", False):
            sb.dump()
            sys.stderr.write(f"(sandbox {sb.dir} {'kept' if keep else 'removed'})\n")
        sb.cleanup(keep=keep)

    def doCleanups(self):
        self.__dict__["_test_failed"] = self._failed()
        if self._test_failed:
            csb = type(self).__dict__.get("_class_sandbox")
            if csb is not None:
                csb.dump()
        return super().doCleanups()

    # -- conveniences --
    def start_worker(self, app: str = "plain_app:application", threads: int = 1,
                     extra_args: Iterable[str] = (), env: Optional[Mapping[str, str]] = None,
                     **kwargs) -> tuple[Process, int]:
        return self.sandbox.start_worker(app=app, threads=threads, extra_args=extra_args,
                                         env=env, **kwargs)

    def connect(self, port: int, **kwargs) -> rlbproto.Connection:
        return self.sandbox.connect(port, **kwargs)

    def assertComplete(self, resp: Response, code: int = 200, body: Optional[bytes] = None):
        self.assertEqual(resp.outcome, "complete", resp)
        self.assertEqual(resp.code, code, resp)
        if body is not None:
            self.assertEqual(resp.body, body, resp)


def start_worker(app: str = "plain_app:application", threads: int = 1,
                 extra_args: Iterable[str] = (), env: Optional[Mapping[str, str]] = None,
                 sandbox: Optional[Sandbox] = None, **kwargs) -> tuple[Process, int]:
    """Module-level form: starts a worker in `sandbox` (a new one if None; the caller
    cleans it up via proc.sandbox.cleanup())."""
    sb = sandbox or Sandbox()
    proc, port = sb.start_worker(app=app, threads=threads, extra_args=extra_args, env=env,
                                 **kwargs)
    proc.sandbox = sb
    return proc, port

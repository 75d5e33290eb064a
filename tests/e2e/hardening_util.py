"""Helpers shared by the hardening suites (test_abuse_http, test_faults, test_soak_short).

Built on harness.py / lb_harness.py (which they do not change):

* ``start_lb_with_nofile(sandbox, ports, args, nofile)``: resumelb under
  ``bash -c 'ulimit -n N; exec resumelb ...'`` (same pid as the bash).
* ``raise_nofile(n)``: raises this process's RLIMIT_NOFILE soft limit (returns the old one).
* ``rss_kb(pid)``, ``fd_count(pid)``, ``threads(pid)``, ``fds_under(pid, dir)``.
* ``late_worker_cluster(...)``: an LB with two worker addresses of which only the first
  runs; requests go to it until ``start_second()`` starts the other one on its reserved
  port (so a test knows which worker has a request in flight).
* ``HARDENING_APP``: the --app/--pythonpath arguments for hardening_app.
"""

from __future__ import annotations

import os
import re
import resource
import shlex
import socket
from typing import Optional, Sequence

import harness
import lb_harness
from harness import DEFAULT_TIMEOUT, Sandbox

HERE = os.path.dirname(os.path.abspath(__file__))
APP_PATH = f"{HERE}:{harness.APPS_DIR}"


def app_args(raw: bool = False) -> list[str]:
    """Worker arguments that run hardening_app (raw: unvalidated, for --tracelog)."""
    return [f"--app=hardening_app:{'raw_application' if raw else 'application'}",
            f"--pythonpath={APP_PATH}"]


def start_worker(sandbox: Sandbox, threads: int = 1, raw: bool = False,
                 extra_args: Sequence[str] = (), port: int = 0, env=None):
    """A zkworker running hardening_app on 127.0.0.1:PORT (0: a free one)."""
    app = f"hardening_app:{'raw_application' if raw else 'application'}"
    extra = [f"--address=127.0.0.1:{port}"] if port else []
    return sandbox.start_worker(app=app, threads=threads, pythonpath=APP_PATH,
                                extra_args=[*extra, *extra_args], env=env)


# ------------------------------------------------------------------------ /proc

def _status_number(pid: int, field: str) -> int:
    """A numeric field ("VmRSS", "Threads", ...) of /proc/PID/status."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (from /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    return _status_number(pid, "VmRSS")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def threads(pid: int) -> int:
    return _status_number(pid, "Threads")


def fds_under(pid: int, directory: str) -> list[str]:
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            t = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if t.startswith(directory.rstrip("/") + "/"):
            out.append(t)
    return out


def raise_nofile(n: int) -> tuple[int, int]:
    """Raises the soft RLIMIT_NOFILE to min(n, hard); returns the old (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n if hard == resource.RLIM_INFINITY else min(n, hard)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return soft, hard


# ------------------------------------------------------------------------ LB launch

def start_lb_with_nofile(sandbox: Sandbox, worker_ports: Sequence[int], extra_args=(),
                         nofile: int = 1024, name: str = "resumelb",
                         timeout: float = DEFAULT_TIMEOUT):
    """resumelb started as `bash -c 'ulimit -n NOFILE && exec resumelb -LINFO -a
    127.0.0.1:0 ARGS... WORKERS...'`; waits for it to listen and connect every worker."""
    argv = [lb_harness.lb_binary(), "-LINFO", "-a", "127.0.0.1:0", *extra_args,
            *[lb_harness.worker_name(p) for p in worker_ports]]
    script = f"ulimit -n {int(nofile)} && exec " + " ".join(shlex.quote(a) for a in argv)
    proc = sandbox.start(["bash", "-c", script], name=name)
    m = proc.wait_for_log(lb_harness.LB_LISTENING_RE, timeout=timeout)
    for p in worker_ports:
        proc.wait_for_log(r"worker connected " + re.escape(lb_harness.worker_name(p)) + r"\b",
                          timeout=timeout)
    return proc, int(m.group("port"))


class LateWorkerCluster:
    """An LB with workers A (running) and B (address reserved, started on demand)."""

    def __init__(self, sandbox: Sandbox, threads: int = 2, lb_args: Sequence[str] = (),
                 worker_args: Sequence[str] = ()):
        self.sandbox = sandbox
        self.threads = threads
        self.worker_args = list(worker_args)
        self.a, self.a_port = start_worker(sandbox, threads, extra_args=worker_args)
        self.b_port = harness.free_port()
        self.b = None
        self.status_path = sandbox.path(f"status-{len(sandbox.processes)}.sock")
        self.lb, self.port = lb_harness.start_lb(
            sandbox, [self.a_port], ["-s", self.status_path, *lb_args],
            worker_addrs=[lb_harness.worker_name(self.a_port),
                          lb_harness.worker_name(self.b_port)])
        self.a_name = lb_harness.worker_name(self.a_port)
        self.b_name = lb_harness.worker_name(self.b_port)

    def status(self) -> dict:
        return lb_harness.read_status(self.status_path)

    def start_second(self, timeout: float = DEFAULT_TIMEOUT):
        mark = self.lb.mark()
        self.b, _ = start_worker(self.sandbox, self.threads, extra_args=self.worker_args,
                                 port=self.b_port)
        # The LB retries with a back-off of at most 2 s.
        self.lb.wait_for_log(r"worker connected " + re.escape(self.b_name) + r"\b",
                             timeout=timeout, since=mark)
        harness.wait_for(lambda: lb_harness.worker_entry(self.status(), self.b_name), timeout,
                         message="worker B in the pool")
        return self.b

    def in_flight(self, name: str) -> int:
        d = lb_harness.worker_detail(self.status(), name)
        return d["in_flight"] if d else 0


# ------------------------------------------------------------------------ sockets

def connect_raw(port: int, timeout: float = 10.0) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_all(sock: socket.socket, timeout: float = 10.0) -> tuple[bytes, Optional[str]]:
    """Everything until EOF or an error: (data, None | 'reset' | 'timeout')."""
    sock.settimeout(timeout)
    chunks = []
    while True:
        try:
            d = sock.recv(262144)
        except ConnectionResetError:
            return b"".join(chunks), "reset"
        except socket.timeout:
            return b"".join(chunks), "timeout"
        if not d:
            return b"".join(chunks), None
        chunks.append(d)


def chunked_complete(body: bytes) -> Optional[bytes]:
    """The de-chunked body if `body` (after the head) is a complete chunked message,
    else None (cut off: no terminating 0-chunk)."""
    out, pos = [], 0
    while True:
        eol = body.find(b"\r\n", pos)
        if eol < 0:
            return None
        try:
            size = int(body[pos:eol].split(b";")[0], 16)
        except ValueError:
            return None
        pos = eol + 2
        if size == 0:
            return b"".join(out) if body[pos:pos + 2] == b"\r\n" else None
        if len(body) < pos + size + 2:
            return None
        out.append(body[pos:pos + size])
        pos += size + 2


def split_head(data: bytes) -> tuple[int, dict, bytes]:
    """(status code, {lower name: value}, rest) of a raw response; raises if no head."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        raise AssertionError(f"no complete response head in {data[:200]!r}")
    lines = head.decode("latin-1").split("\r\n")
    code = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return code, headers, rest

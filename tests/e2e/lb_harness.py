"""Helpers for resumelb's (the HTTP load balancer's) end-to-end tests.

Built on harness.py (Sandbox, Process, wait_for, ...):

* ``start_lb(sandbox, worker_ports, extra_args)`` starts resumelb on 127.0.0.1:0 and
  waits for its "listening" line (and, by default, for every worker to be connected);
  returns (Process, port).
* ``start_cluster(sandbox, n_workers, ...)`` starts n zkworkers and one LB in front of
  them, with a status socket; returns a ``Cluster``.
* ``read_status(path)`` reads the status document from the LB's unix socket.
* ``RawConn`` is a raw-socket HTTP/1.x client (pipelining, half-close, malformed input)
  with a small response parser; ``http_request`` is a one-shot http.client request.
* ``big_body(size, chunk)`` / ``big_sha256(size, chunk)``: what plain_app's /big answers
  (defined in harness.py, re-exported here).
* ``Background(fn, ...)`` runs a blocking call (e.g. a request) in a thread.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import re
import select
import socket
import subprocess
from typing import Iterable, Optional, Sequence

import harness
from harness import DEFAULT_TIMEOUT, Process, Sandbox
from harness import big_body, big_sha256, sha256  # noqa: F401  (plain_app's data; re-exported)

LB_LISTENING_RE = (r"resumelb listening on (?P<host>\S*):(?P<port>\d+) "
                   r"\(pid (?P<pid>\d+)")

# The original's 502 page (zc.resumelb's default disconnect message, 159 bytes).
DEFAULT_DISCONNECT_MESSAGE = (
    b"\n<html><meta http-equiv=\"refresh\" content=\"1\"><body>\n"
    b"The server was unable to handle your request due to a transient failure.\n"
    b"Please try again.\n</body></html>\n")


def lb_binary() -> str:
    return harness.binary("resumelb")


# --------------------------------------------------------------------------- processes

def worker_name(port: int) -> str:
    return f"127.0.0.1:{port}"


def start_lb(sandbox: Sandbox, worker_ports: Iterable[int], extra_args: Sequence[str] = (),
             address: str = "127.0.0.1:0", wait_workers: bool = True,
             worker_addrs: Optional[Sequence[str]] = None, name: str = "resumelb",
             timeout: float = DEFAULT_TIMEOUT) -> tuple[Process, int]:
    """Starts `resumelb -LINFO -a ADDRESS EXTRA... 127.0.0.1:WPORT...`; returns (proc, port).

    With wait_workers, waits until the LB logged "worker connected" for every port.
    `worker_addrs` replaces the addresses built from worker_ports (e.g. unreachable ones).
    """
    ports = list(worker_ports)
    addrs = list(worker_addrs) if worker_addrs is not None else [worker_name(p) for p in ports]
    argv = [lb_binary(), "-LINFO", "-a", address, *extra_args, *addrs]
    proc = sandbox.start(argv, name=name)
    m = proc.wait_for_log(LB_LISTENING_RE, timeout=timeout)
    if int(m.group("pid")) != proc.pid:
        raise AssertionError(f"listening line names pid {m.group('pid')}, not {proc.pid}")
    if wait_workers:
        for p in ports:
            proc.wait_for_log(r"worker connected " + re.escape(worker_name(p)) + r"\b",
                              timeout=timeout)
    return proc, int(m.group("port"))


class Cluster:
    """Workers plus one LB (see start_cluster)."""

    def __init__(self, sandbox, lb, port, workers, status_path):
        self.sandbox = sandbox
        self.lb = lb
        self.port = port
        self.workers = workers            # [(Process, port)]
        self.status_path = status_path

    def status(self) -> dict:
        return read_status(self.status_path)

    def worker_by_name(self, name: str) -> Process:
        for proc, port in self.workers:
            if worker_name(port) == name:
                return proc
        raise KeyError(name)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def start_workers(sandbox: Sandbox, n: int, threads: int = 1,
                  extra_args: Sequence[str] = ()) -> list[tuple[Process, int]]:
    return [sandbox.start_worker(threads=threads, extra_args=extra_args) for _ in range(n)]


def start_cluster(sandbox: Sandbox, n_workers: int = 1, threads: int = 1,
                  lb_args: Sequence[str] = (), worker_args: Sequence[str] = (),
                  status: bool = True, workers=None) -> Cluster:
    """Starts n_workers zkworkers (unless `workers` is given) and an LB with a status
    socket (sandbox/status.sock, unless status=False) in front of them."""
    workers = workers if workers is not None else start_workers(sandbox, n_workers, threads,
                                                                worker_args)
    args = list(lb_args)
    status_path = None
    if status:
        status_path = sandbox.path(f"status-{len(sandbox.processes)}.sock")
        args = ["-s", status_path] + args
    lb, port = start_lb(sandbox, [p for _, p in workers], args)
    return Cluster(sandbox, lb, port, workers, status_path)


def run_lb(args: Sequence[str], timeout: float = 10) -> subprocess.CompletedProcess:
    """Runs resumelb with `args` to completion (for bad-flag tests)."""
    return harness.run_command([lb_binary(), *args], timeout=timeout)


# --------------------------------------------------------------------------- status

def read_status(path: str, timeout: float = 5) -> dict:
    """The LB's status document (one JSON object, then the server closes)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
    return json.loads(b"".join(chunks))


def worker_entry(status: dict, name: str) -> Optional[list]:
    """The status document's `workers` row for `name`, or None."""
    for row in status["workers"]:
        if row[0] == name:
            return row
    return None


def worker_detail(status: dict, name: str) -> Optional[dict]:
    for d in status.get("worker_details", []):
        if d["name"] == name:
            return d
    return None


# --------------------------------------------------------------------------- HTTP

def http_request(port: int, path: str, method: str = "GET", body=None,
                 headers: Optional[dict] = None, timeout: float = DEFAULT_TIMEOUT):
    """One request on a new http.client connection: (status, header dict (lower-case
    names), body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


class RawResponse:
    def __init__(self, version, code, reason, headers, body, framing):
        self.version = version
        self.code = code
        self.reason = reason
        self.header_list = headers
        self.body = body
        self.framing = framing   # "length", "chunked", "close" or "none"

    def header(self, name: str, default=None):
        vals = [v for k, v in self.header_list if k.lower() == name.lower()]
        return vals[-1] if vals else default

    def headers_named(self, name: str) -> list[str]:
        return [v for k, v in self.header_list if k.lower() == name.lower()]

    def __repr__(self):
        return (f"RawResponse({self.version} {self.code} {self.reason!r}, {self.header_list!r}, "
                f"{self.body[:200]!r}{'...' if len(self.body) > 200 else ''}, {self.framing})")


class RawConn:
    """A raw TCP connection to the LB, with a buffered HTTP/1.x response parser."""

    def __init__(self, port: int, timeout: float = DEFAULT_TIMEOUT, rcvbuf: Optional[int] = None,
                 host: str = "127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buf = b""
        self.eof = False

    @property
    def local_port(self) -> int:
        return self.sock.getsockname()[1]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data: bytes | str):
        self.sock.sendall(data.encode("latin-1") if isinstance(data, str) else data)

    def shut_wr(self):
        self.sock.shutdown(socket.SHUT_WR)

    def settimeout(self, t: float):
        self.sock.settimeout(t)

    # -- reading --
    def _fill(self) -> bool:
        if self.eof:
            return False
        try:
            data = self.sock.recv(262144)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _read_line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionError(f"connection closed mid-line (have {self.buf[:200]!r})")
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise ConnectionError(f"connection closed with {len(self.buf)} of {n} bytes")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_until_close(self) -> bytes:
        while self._fill():
            pass
        out, self.buf = self.buf, b""
        return out

    def read_head(self):
        """(version, code, reason, [(name, value)]) of the next response head."""
        if not self.buf and not self._fill():
            raise ConnectionError("connection closed before a response")
        status = self._read_line().decode("latin-1")
        m = re.match(r"(HTTP/\d\.\d) (\d{3})(?: (.*))?$", status)
        if not m:
            raise AssertionError(f"bad status line {status!r}")
        headers = []
        while True:
            line = self._read_line().decode("latin-1")
            if not line:
                break
            name, _, value = line.partition(":")
            headers.append((name, value.strip()))
        return m.group(1), int(m.group(2)), m.group(3) or "", headers

    def read_response(self, head: bool = False, skip_interim: bool = True) -> RawResponse:
        """The next response; its body framed as the headers say (HEAD: no body)."""
        while True:
            version, code, reason, headers = self.read_head()
            if code >= 200 or not skip_interim:
                break
        resp = RawResponse(version, code, reason, headers, b"", "none")
        te = resp.header("Transfer-Encoding")
        cl = resp.header("Content-Length")
        if head or code < 200 or code in (204, 304):
            return resp
        if te is not None and "chunked" in te.lower():
            resp.framing = "chunked"
            parts = []
            while True:
                size_line = self._read_line().decode("latin-1")
                size = int(size_line.split(";")[0].strip(), 16)
                if size == 0:
                    while self._read_line():   # trailers, then the blank line
                        pass
                    break
                parts.append(self._read_exact(size))
                if self._read_exact(2) != b"\r\n":
                    raise AssertionError("chunk not followed by CRLF")
            resp.body = b"".join(parts)
        elif cl is not None:
            resp.framing = "length"
            resp.body = self._read_exact(int(cl))
        else:
            resp.framing = "close"
            resp.body = self.read_until_close()
        return resp

    def closed_by_peer(self, timeout: float = 5) -> bool:
        """True if the peer closes (EOF or reset) within `timeout` with no more data."""
        if self.buf:
            return False
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        finally:
            self.sock.settimeout(old)
        if data:
            self.buf += data
            return False
        self.eof = True
        return True

    def readable_within(self, timeout: float) -> bool:
        """True if something (data or EOF) arrives within `timeout`."""
        if self.buf:
            return True
        r, _, _ = select.select([self.sock], [], [], timeout)
        return bool(r)


class RawConnTestCase(harness.E2ETestCase):
    """A test case whose class sets `cls.port` (the LB's); raw() opens a RawConn to it that
    is closed when the test ends."""

    port: int

    def raw(self, **kw) -> RawConn:
        c = RawConn(self.port, **kw)
        self.addCleanup(c.close)
        return c


def request_bytes(method: str, path: str, headers: Optional[Sequence[tuple[str, str]]] = None,
                  body: bytes = b"", version: str = "HTTP/1.1", host: str = "lb.test") -> bytes:
    """A request in wire format; Host first (unless host is None), Content-Length added for
    a body unless a Content-Length or Transfer-Encoding header is given."""
    lines = [f"{method} {path} {version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    hdrs = list(headers or [])
    names = {k.lower() for k, _ in hdrs}
    if body and "content-length" not in names and "transfer-encoding" not in names:
        hdrs.append(("Content-Length", str(len(body))))
    lines += [f"{k}: {v}" for k, v in hdrs]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(parts: Iterable[bytes]) -> bytes:
    out = b""
    for p in parts:
        if p:
            out += b"%x\r\n" % len(p) + p + b"\r\n"
    return out + b"0\r\n\r\n"


# --------------------------------------------------------------------------- threads

class Background:
    """Runs a function in a thread; .result(timeout) gives its value or raises."""

    def __init__(self, fn, *args, **kwargs):
        self._pool = concurrent.futures.ThreadPoolExecutor(1)
        self._future = self._pool.submit(fn, *args, **kwargs)

    def result(self, timeout=30):
        try:
            return self._future.result(timeout)
        finally:
            self._pool.shutdown(wait=False)

    def done(self):
        return self._future.done()


# --------------------------------------------------------------------------- app data

def pid_answer(body: bytes) -> tuple[int, str]:
    """plain_app's /pid answer: (pid, request class)."""
    text = body.decode()
    assert text.endswith("\n"), text
    pid, _, rclass = text[:-1].partition(" ")
    return int(pid), rclass

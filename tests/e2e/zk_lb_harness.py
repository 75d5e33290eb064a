"""Helpers for the ZooKeeper end-to-end tests (zkresumelb and zkworker in ZooKeeper mode).

Built on harness.py (Sandbox, Process, wait_for), lb_harness.py (status socket, HTTP) and
zk_harness.py (ZooKeeperServer, kazoo):

* ``start_zklb(sandbox, hosts, path, ...)`` starts ``zkresumelb -LINFO -a 127.0.0.1:0 -s
  SOCK ... HOSTS PATH`` and waits for its "listening" line; returns a ``ZkLb`` (process,
  HTTP port, status(), pool_names(), get()).
* ``start_zkworker(sandbox, hosts, path, ...)`` starts a zkworker in ZooKeeper mode
  (``--zookeeper --path``, plain_app) on 127.0.0.1:0; returns a ``ZkWorker`` (process,
  port, name "127.0.0.1:PORT", node path).
* ``RequestLoop(port, ...)`` issues GET /pid through the LB from a thread until stopped
  and records every outcome (to assert that no request failed during a fault).
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Iterable, Optional, Sequence

import harness
import lb_harness
from harness import DEFAULT_TIMEOUT, Process, Sandbox, wait_for

ZKLB_LISTENING_RE = (r"zkresumelb listening on (?P<host>\S*):(?P<port>\d+) "
                     r"\(pid (?P<pid>\d+)")


def zkresumelb_binary() -> str:
    return harness.binary("zkresumelb")


def join(path: str, *parts: str) -> str:
    out = path.rstrip("/")
    for p in parts:
        out += "/" + p.strip("/")
    return out or "/"


# --------------------------------------------------------------------------- the LB

class ZkLb:
    def __init__(self, proc: Process, port: int, status_path: Optional[str], path: str):
        self.proc = proc
        self.port = port
        self.status_path = status_path
        self.path = path                       # the LB's ZooKeeper PATH
        self.name = f"127.0.0.1:{port}"
        self.node = join(path, "providers", self.name)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def status(self) -> dict:
        return lb_harness.read_status(self.status_path)

    def pool_names(self) -> list[str]:
        """The names in the status document's "workers" list (the active pool)."""
        return sorted(row[0] for row in self.status()["workers"])

    def detail(self, name: str) -> Optional[dict]:
        return lb_harness.worker_detail(self.status(), name)

    def get(self, path: str = "/pid", host: str = "lb.test", timeout: float = DEFAULT_TIMEOUT):
        return lb_harness.http_request(self.port, path, headers={"Host": host}, timeout=timeout)

    def pid_of_answer(self, path: str = "/pid", host: str = "lb.test") -> int:
        code, _, body = self.get(path, host)
        if code != 200:
            raise AssertionError(f"GET {path} (Host {host}) answered {code}: {body!r}")
        return lb_harness.pid_answer(body)[0]

    def host_served_by(self, pid: int, prefix: str = "probe", tries: int = 64) -> str:
        """A Host whose new class this LB gives to the worker process `pid`: the default pool
        places a new class by consistent hashing, so a new worker gets some new classes, not
        necessarily a given one. Each try is a new class; with n workers a try hits with
        probability ~1/n."""
        seen = set()
        for i in range(tries):
            host = f"{prefix}{i}.test"
            answered = self.pid_of_answer(host=host)
            if answered == pid:
                return host
            seen.add(answered)
        raise AssertionError(f"worker {pid} answered none of {tries} new classes "
                             f"(answered by {sorted(seen)})")

    def wait_pool(self, names: Iterable[str], timeout: float = DEFAULT_TIMEOUT) -> dict:
        """Waits until the pool is exactly `names`; returns that status document."""
        want = sorted(names)
        last: list = [None]

        def check():
            st = self.status()
            last[0] = sorted(row[0] for row in st["workers"])
            return st if last[0] == want else None
        return wait_for(check, timeout,
                        message=lambda: f"pool {want} (last: {last[0]}) in {self.proc.name}")


def start_zklb(sandbox: Sandbox, hosts: str, path: str, extra_args: Sequence[str] = (),
               address: str = "127.0.0.1:0", status: bool = True,
               session_timeout: Optional[float] = None, single_version: bool = False,
               name: str = "zkresumelb", timeout: float = DEFAULT_TIMEOUT,
               prefix: Sequence[str] = ()) -> ZkLb:
    """Starts zkresumelb and waits for its listening line (not for ZooKeeper). `prefix`
    is a command that execs it (e.g. ["prlimit", "--nofile=128:128"])."""
    argv = [*prefix, zkresumelb_binary(), "-LINFO", "-a", address]
    status_path = None
    if status:
        status_path = sandbox.path(f"{name}-{len(sandbox.processes)}.sock")
        argv += ["-s", status_path]
    if single_version:
        argv.append("-v")
    if session_timeout is not None:
        argv.append(f"--zookeeper_session_timeout={session_timeout}")
    argv += [*extra_args, hosts, path]
    proc = sandbox.start(argv, name=name)
    m = proc.wait_for_log(ZKLB_LISTENING_RE, timeout=timeout)
    if int(m.group("pid")) != proc.pid:
        raise AssertionError(f"listening line names pid {m.group('pid')}, not {proc.pid}")
    lb = ZkLb(proc, int(m.group("port")), status_path, path)
    if status_path:
        wait_for(lambda: os.path.exists(status_path), timeout,
                 message=f"status socket {status_path}")
    return lb


# --------------------------------------------------------------------------- workers

class ZkWorker:
    def __init__(self, proc: Process, port: int, path: str):
        self.proc = proc
        self.port = port
        self.path = path                       # the worker's ZooKeeper path
        self.name = f"127.0.0.1:{port}"
        self.node = join(path, "providers", self.name)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def connected_lines(self, since: int = 0) -> list[str]:
        """The worker's "load balancer connected PEER(ID)" log lines (one per LB connection)."""
        return self.proc.log_lines(r"\bload balancer connected \S+\(\d+\)", since)


def start_zkworker(sandbox: Sandbox, hosts: str, path: str, version: Optional[str] = None,
                   description: Optional[str] = None, session_timeout: Optional[float] = None,
                   extra_args: Sequence[str] = (), name: str = "zkworker",
                   timeout: float = DEFAULT_TIMEOUT) -> ZkWorker:
    """Starts a ZooKeeper-mode zkworker (plain_app) on 127.0.0.1:0; waits until it listens
    (not until it is registered)."""
    args = [f"--zookeeper={hosts}", f"--path={path}"]
    if version is not None:
        args.append(f"--app_version={version}")
    if description is not None:
        args.append(f"--description={description}")
    if session_timeout is not None:
        args.append(f"--zookeeper_session_timeout={session_timeout}")
    proc, port = sandbox.start_worker(extra_args=[*args, *extra_args], name=name,
                                      timeout=timeout)
    return ZkWorker(proc, port, path)


def node_data(zk_server, path: str) -> dict:
    return json.loads(zk_server.get_data(path).decode())


def node_owner(zk_server, path: str) -> Optional[int]:
    """The node's ephemeralOwner (session id), None if the node does not exist."""
    stat = zk_server.zk.retry(zk_server.zk.exists, path)
    return None if stat is None else stat.ephemeralOwner


def wait_node(zk_server, path: str, timeout: float = DEFAULT_TIMEOUT,
              owner_not: Optional[int] = None) -> int:
    """Waits until the node exists (with an owner other than `owner_not`); returns the
    owner."""
    def check():
        o = node_owner(zk_server, path)
        if o is None or (owner_not is not None and o == owner_not):
            return None
        return o
    return wait_for(check, timeout, message=f"node {path}"
                    + (f" owned by a session other than 0x{owner_not:x}" if owner_not else ""))


def wait_no_node(zk_server, path: str, timeout: float = DEFAULT_TIMEOUT) -> None:
    wait_for(lambda: node_owner(zk_server, path) is None, timeout,
             message=f"node {path} to disappear")


# --------------------------------------------------------------------------- traffic

# Enough request classes that consistent-hash placement gives each of up to ~4 workers some.
SPREAD_HOSTS = tuple(f"h{i}.test" for i in range(24))


class RequestLoop:
    """GET /pid through the LB, one request after the other, from a thread, until stop().

    Each outcome is recorded as (time, status or None, pid or None, error text or None).
    Classes cycle through `hosts` (the LB's default classifier uses the Host header). The
    default pool places new classes by consistent hashing, a balls-into-bins spread: 24
    classes reach every one of a handful of workers (3 workers: all but ~1 in 5,000 runs).
    """

    def __init__(self, port: int, hosts: Sequence[str] = SPREAD_HOSTS,
                 path: str = "/pid", pace: float = 0.002, timeout: float = 30.0):
        self.port = port
        self.hosts = list(hosts)
        self.path = path
        self.pace = pace
        self.timeout = timeout
        self.results: list[tuple[float, Optional[int], Optional[int], Optional[str]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        i = 0
        while not self._stop.is_set():
            host = self.hosts[i % len(self.hosts)]
            i += 1
            try:
                code, _, body = lb_harness.http_request(self.port, self.path,
                                                        headers={"Host": host},
                                                        timeout=self.timeout)
                pid = lb_harness.pid_answer(body)[0] if code == 200 else None
                rec = (time.monotonic(), code, pid, None if code == 200 else body[:200].decode(
                    "latin-1"))
            except Exception as e:  # noqa: BLE001 - recorded as a failure
                rec = (time.monotonic(), None, None, repr(e))
            with self._lock:
                self.results.append(rec)
            if self.pace:
                self._stop.wait(self.pace)

    def count(self) -> int:
        with self._lock:
            return len(self.results)

    def wait_more(self, n: int = 20, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Waits until `n` more requests have completed."""
        target = self.count() + n
        wait_for(lambda: self.count() >= target, timeout,
                 message=f"{n} more requests through the LB (have {self.count()})")

    def snapshot(self) -> list:
        with self._lock:
            return list(self.results)

    def stop(self) -> list:
        self._stop.set()
        self._thread.join(self.timeout + 5)
        return self.snapshot()

    @staticmethod
    def failures(results) -> list:
        return [r for r in results if r[1] != 200]

